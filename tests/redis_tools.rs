//! Real Redis programs (`redis-cli`, `redis-benchmark`) working against ringkv.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{redis_program, run_program, Server};

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn cli(server: &Server, args: &[&str]) -> String {
    let port = server.port.to_string();
    let mut all = vec!["-p", port.as_str()];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run_program(&redis_program("redis-cli"), &all, TOOL_TIMEOUT);
    assert_eq!(status, 0, "redis-cli {args:?}: {stdout} {stderr}");
    stdout
}

#[test]
fn redis_cli_ping_set_get_and_info() {
    let ringkv = Server::start(&[]);
    assert_eq!(cli(&ringkv, &["ping"]), "PONG\n");
    assert_eq!(cli(&ringkv, &["set", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&ringkv, &["get", "greeting"]), "hello world\n");
    let info = cli(&ringkv, &["info", "server"]);
    assert!(info.contains("redis_version:7.0.15"), "{info}");
}

#[test]
fn redis_cli_scan_lists_every_key() {
    let ringkv = Server::start(&[]);
    assert_eq!(cli(&ringkv, &["debug", "populate", "300", "item"]), "OK\n");
    let out = cli(&ringkv, &["--scan"]);
    let mut keys: Vec<&str> = out.lines().collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 300, "{out}");
    assert!(keys.iter().all(|k| k.starts_with("item:")));
}

#[test]
fn redis_cli_pipe_mass_insertion_reports_no_errors() {
    let ringkv = Server::start(&[]);
    const KEYS: usize = 5000;
    let mut protocol = Vec::new();
    for i in 0..KEYS {
        let key = format!("mass:{i}");
        let value = format!("value:{i}");
        protocol.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                key.len(),
                key,
                value.len(),
                value
            )
            .as_bytes(),
        );
    }
    let mut child = Command::new(redis_program("redis-cli"))
        .args(["-p", &ringkv.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Error replies are printed on stderr, one line each: discard them so the pipe
        // cannot fill up; the summary line on stdout counts them.
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&protocol).unwrap();
    });
    // Drain stdout while it runs.
    let mut out_pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out_pipe, &mut text);
        text
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redis-cli --pipe did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    let stdout = reader.join().unwrap();
    let tail: String = stdout.lines().rev().take(5).collect::<Vec<_>>().join("\n");
    assert!(status.success(), "{tail}");
    assert!(
        stdout.contains(&format!("errors: 0, replies: {KEYS}")),
        "{tail}"
    );
    assert_eq!(cli(&ringkv, &["get", "mass:4999"]), "value:4999\n");
}

#[test]
fn redis_benchmark_runs_every_test_without_errors() {
    let ringkv = Server::start(&[]);
    let port = ringkv.port.to_string();
    let tests =
        "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset";
    let (status, stdout, stderr) = run_program(
        &redis_program("redis-benchmark"),
        &["-p", &port, "-t", tests, "-n", "2000", "-c", "10", "-q"],
        TOOL_TIMEOUT,
    );
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains("rror"), "{stdout}");
    assert!(!stderr.contains("rror"), "{stderr}");
    // With -q the progress lines end in '\r'; the results are the last part of each line.
    let results: Vec<&str> = stdout
        .split(['\n', '\r'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    for name in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LPUSH (needed to benchmark LRANGE)",
        "LRANGE_100 (first 100 elements)",
        "MSET (10 keys)",
    ] {
        let prefix = format!("{name}: ");
        assert!(
            results.iter().any(|l| l.trim_start().starts_with(&prefix)),
            "no result for {name}:\n{stdout}"
        );
    }
}

#[test]
fn redis_benchmark_ping_runs_without_errors() {
    let ringkv = Server::start(&[]);
    let port = ringkv.port.to_string();
    let (status, stdout, stderr) = run_program(
        &redis_program("redis-benchmark"),
        &["-p", &port, "-t", "ping", "-n", "2000", "-c", "10", "-q"],
        TOOL_TIMEOUT,
    );
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("PING_INLINE: ") && stdout.contains("PING_MBULK: "),
        "{stdout}"
    );
}
