//! Test support: real ringkv-server (and redis-server) processes on free loopback ports.
//!
//! Every server a test starts is stopped by its PID when the handle drops, and runs in its
//! own temporary directory.

#![allow(dead_code)]

pub mod proxy;
pub mod resp;
pub mod workload;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start answering PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// Path of the ringkv-server binary cargo built for these tests.
pub fn ringkv_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringkv-server"))
}

/// Path of a program from Debian's redis packages, or a panic saying what to install.
pub fn redis_program(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is not installed: run `apt-get install -y redis-server redis-tools redis-sentinel` (Debian's Redis 7.0.15)");
}

/// A server process (ringkv or redis) listening on 127.0.0.1:`port`.
pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    log_path: PathBuf,
    /// Password [`client`](Self::client) authenticates with (see [`authenticated`](Self::authenticated)).
    password: Option<String>,
}

impl Server {
    /// ringkv-server with test-friendly defaults plus `extra` arguments (`["--hz", "100"]`).
    pub fn start(extra: &[&str]) -> Server {
        Server::spawn(ringkv_binary(), extra)
    }

    /// A real redis-server 7.0 with the same defaults, for side-by-side comparisons.
    pub fn start_redis(extra: &[&str]) -> Server {
        Server::spawn(redis_program("redis-server"), extra)
    }

    fn spawn(binary: PathBuf, extra: &[&str]) -> Server {
        Server::spawn_in(binary, tempfile::tempdir().expect("temp dir"), extra)
    }

    /// ringkv-server started in an existing directory (a restart keeps its files).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::spawn_in(ringkv_binary(), dir, extra)
    }

    /// redis-server started in an existing directory.
    pub fn start_redis_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::spawn_in(redis_program("redis-server"), dir, extra)
    }

    /// A real redis-sentinel 7.0 in `dir`; `extra` starts with its config file, which must be
    /// in `dir` (Sentinel rewrites it).
    pub fn start_sentinel_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::spawn_in(redis_program("redis-sentinel"), dir, extra)
    }

    /// Stops this process (SIGKILL unless it already exited) and starts ringkv again in the
    /// same directory with `extra`.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        self.stop_and_stderr();
        Server::start_in(self.dir_take(), extra)
    }

    /// The same, starting a real redis-server in this directory.
    pub fn restart_as_redis(mut self, extra: &[&str]) -> Server {
        self.stop_and_stderr();
        Server::start_redis_in(self.dir_take(), extra)
    }

    /// Takes the directory of a stopped server (the process is killed if still running).
    pub fn into_dir(mut self) -> tempfile::TempDir {
        self.stop_and_stderr();
        self.dir_take()
    }

    /// Stops this process (SIGKILL unless it already exited) and starts ringkv again in the
    /// same directory on the same port (its replicas reconnect to that address), retrying for
    /// a few seconds while the port is still taken.
    pub fn restart_on_same_port(mut self, extra: &[&str]) -> Server {
        self.stop_and_stderr();
        let port = self.port;
        Server::spawn_at(ringkv_binary(), self.dir_take(), extra, Some(port))
    }

    fn spawn_in(binary: PathBuf, dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::spawn_at(binary, dir, extra, None)
    }

    /// Starts `binary` in `dir` on `fixed_port`, or on a free port when `None`.
    fn spawn_at(
        binary: PathBuf,
        mut dir: tempfile::TempDir,
        extra: &[&str],
        fixed_port: Option<u16>,
    ) -> Server {
        let attempts = if fixed_port.is_some() { 25 } else { 5 };
        for _attempt in 0..attempts {
            let log_path = dir.path().join("server.log");
            let port = fixed_port.unwrap_or_else(free_port);
            let port_text = port.to_string();
            let mut args: Vec<String> = vec![
                "--port".into(),
                port_text.clone(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.path().display().to_string(),
                "--save".into(),
                "".into(),
                "--enable-debug-command".into(),
                "yes".into(),
                "--logfile".into(),
                log_path.display().to_string(),
            ];
            // A config file given first must stay first.
            let (file, rest): (Vec<&str>, Vec<&str>) = match extra.first() {
                Some(first) if !first.starts_with("--") => (vec![*first], extra[1..].to_vec()),
                _ => (vec![], extra.to_vec()),
            };
            let mut all: Vec<String> = file.iter().map(|s| s.to_string()).collect();
            all.append(&mut args);
            all.extend(rest.iter().map(|s| s.to_string()));
            let child = Command::new(&binary)
                .args(&all)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut server = Server {
                port,
                dir,
                child: Some(child),
                log_path,
                password: None,
            };
            if server.wait_ready() {
                return server;
            }
            // Port stolen between probe and bind, or the server failed: retry on another port.
            let log = server.log();
            let stderr = server.stop_and_stderr();
            if !stderr.contains("Address already in use") && !log.contains("Address already in use")
            {
                panic!(
                    "{} did not start:\nstderr: {stderr}\nlog: {log}",
                    binary.display()
                );
            }
            dir = server.dir_take();
            if fixed_port.is_some() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        panic!("could not find a free port for {}", binary.display());
    }

    fn dir_take(mut self) -> tempfile::TempDir {
        let replacement = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, replacement)
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut line = String::new();
                    // A server with requirepass answers -NOAUTH: it is up all the same.
                    if BufReader::new(&stream).read_line(&mut line).is_ok()
                        && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
                    {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// From now on [`client`](Self::client) (and every helper using it) sends `AUTH
    /// password`: for a server started with `--requirepass`.
    pub fn authenticated(mut self, password: &str) -> Server {
        self.password = Some(password.to_string());
        self
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// A new client connection (redis crate).
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("client");
        let connection = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .expect("connect");
        connection
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        connection
    }

    /// A raw TCP connection for protocol-level tests.
    pub fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `signal` to the server's PID.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions; the PID is our own child's.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stop_and_stderr(&mut self) -> String {
        let mut stderr = String::new();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
        }
        stderr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Stop by PID: Child::kill sends SIGKILL to exactly this process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a command that must succeed and converts its reply (panics naming the command).
pub fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    run(con, args)
        .and_then(|v| redis::from_redis_value(&v))
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Polls `check` every 50 ms until it is true or `timeout` passes; panics with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// One `name:value` field of `INFO <section>` (panics if absent).
pub fn field(server: &Server, section: &str, name: &str) -> String {
    let mut con = server.client();
    let text: String = redis::cmd("INFO").arg(section).query(&mut con).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}:\n{text}"))
}

/// [`field`] as a number.
pub fn field_u64(server: &Server, section: &str, name: &str) -> u64 {
    field(server, section, name).parse().unwrap()
}

/// Waits until the replica's link is up and it applied everything the master produced.
pub fn wait_caught_up(master: &Server, replica: &Server) {
    wait_for(
        "the replica to reach the master offset",
        Duration::from_secs(30),
        || {
            let target = field_u64(master, "replication", "master_repl_offset");
            field(replica, "replication", "master_link_status") == "up"
                && field_u64(replica, "replication", "slave_repl_offset") == target
        },
    );
}

/// Waits until every replica caught up with `master`, then checks they all hold its data
/// (`DEBUG DIGEST`).
pub fn assert_replicas_match(master: &Server, replicas: &[&Server]) {
    for replica in replicas {
        wait_caught_up(master, replica);
    }
    let expected = workload::digest(master);
    for (index, replica) in replicas.iter().enumerate() {
        assert_eq!(workload::digest(replica), expected, "replica {index}");
    }
}

/// `redis-cli --rdb` against `master`: the transfer succeeds, the rdb-only client leaves, and
/// a real redis-server loads the file with the master's data.
pub fn assert_redis_cli_rdb_fetches_the_data(master: &Server) {
    let expected = workload::digest(master);
    let target = tempfile::tempdir().unwrap();
    let file = target.path().join("fetched.rdb");
    let port = master.port.to_string();
    let file_text = file.display().to_string();
    let (status, _stdout, stderr) = run_program(
        &redis_program("redis-cli"),
        &["-p", &port, "--rdb", &file_text],
        Duration::from_secs(30),
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stderr.contains("Transfer finished with success"),
        "{stderr}"
    );
    wait_for(
        "the rdb-only client to leave",
        Duration::from_secs(5),
        || field(master, "replication", "connected_slaves") == "0",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, dir.path().join("dump.rdb")).unwrap();
    let loaded = Server::start_redis_in(dir, &["--dbfilename", "dump.rdb"]);
    assert_eq!(workload::digest(&loaded), expected);
}

/// The `slaveN` entries of a master's INFO replication, as maps.
pub fn replicas_of(master: &Server) -> Vec<std::collections::HashMap<String, String>> {
    let mut con = master.client();
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()))
        .map(|(_, v)| {
            v.trim()
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Starts ringkv in `dir` expecting it to refuse to start; returns (exit code, stderr, log).
pub fn start_must_fail(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let log_path = dir.join("server.log");
    let _ = std::fs::remove_file(&log_path);
    let port = free_port().to_string();
    let dir_text = dir.display().to_string();
    let log_text = log_path.display().to_string();
    let mut args = vec![
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir_text,
        "--save",
        "",
        "--logfile",
        &log_text,
    ];
    args.extend_from_slice(extra);
    let (status, _stdout, stderr) = run_program(&ringkv_binary(), &args, START_TIMEOUT);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    (status, stderr, log)
}

/// Runs a program to completion with a bound on its run time; returns (status, stdout, stderr).
pub fn run_program(program: &Path, args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {:?} did not finish within {:?}",
                program.display(),
                args,
                timeout
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends raw bytes and reads until `expect_len` bytes or the connection closes or times out.
pub fn raw_exchange(stream: &mut TcpStream, request: &[u8], expect_len: usize) -> Vec<u8> {
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < expect_len {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Runs one command through the redis crate.
pub fn run(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(con)
}

/// Runs `script` on both connections in order and asserts every reply, error text included,
/// is the same on ringkv (`ours`) as on redis-server (`theirs`).
pub fn assert_same_replies(
    ours: &mut redis::Connection,
    theirs: &mut redis::Connection,
    script: &[&[&str]],
) {
    for command in script {
        let expected = run(theirs, command);
        let got = run(ours, command);
        match (&expected, &got) {
            (Ok(e), Ok(g)) => assert_eq!(g, e, "{command:?}"),
            (Err(e), Err(g)) => assert_eq!(g.to_string(), e.to_string(), "{command:?}"),
            _ => panic!("{command:?}: redis {expected:?}, ringkv {got:?}"),
        }
    }
}
