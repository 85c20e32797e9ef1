//! A ringkv replica following a real redis-server 7.0 master, over TCP: full sync from a
//! disk-based and from a diskless master, the write stream of every type with TTLs, reads
//! served during a sync, the read-only refusal, partial resyncs after a killed link and
//! after a replica restart, a master restart, wrong `masterauth`, promotion with
//! `REPLICAOF NO ONE`, and INFO replication / ROLE in the shape a real Redis replica shows.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::workload::{apply, commands};
use support::{free_port, query, redis_program, run, Server};

/// How long a sync may take on a loaded 2-core machine before a test gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

fn info(con: &mut redis::Connection, section: &str) -> String {
    query(con, &["INFO", section])
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .map(|value| value.trim().to_string())
}

/// The `name:` fields of an INFO text, in order.
fn field_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && line.contains(':'))
        .map(|line| line.split(':').next().unwrap().to_string())
        .collect()
}

fn stat(con: &mut redis::Connection, name: &str) -> u64 {
    field(&info(con, "stats"), name)
        .unwrap_or_else(|| panic!("INFO stats has no {name}"))
        .parse()
        .unwrap()
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the replica's link is up, its offset equals the master's and the datasets
/// have the same DEBUG DIGEST (retried: the master may expire keys meanwhile).
fn wait_in_sync(master: &mut redis::Connection, replica: &mut redis::Connection) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let theirs = info(master, "replication");
        let ours = info(replica, "replication");
        let master_offset = field(&theirs, "master_repl_offset");
        let replica_offset = field(&ours, "slave_repl_offset");
        let mut state = format!("master offset {master_offset:?}, replica:\n{ours}");
        if field(&ours, "master_link_status").as_deref() == Some("up")
            && master_offset == replica_offset
        {
            let master_digest: String = query(master, &["DEBUG", "DIGEST"]);
            let replica_digest: String = query(replica, &["DEBUG", "DIGEST"]);
            if master_digest == replica_digest {
                return;
            }
            state = format!("digests differ: master {master_digest}, replica {replica_digest}");
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not catch up: {state}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes of every type, relative and absolute TTLs (propagated as absolute times), keys
/// that expire on the master within a few milliseconds (their DEL reaches the replica),
/// non-deterministic commands Redis rewrites, MULTI/EXEC, and database moves.
fn mixed_writes(con: &mut redis::Connection, round: usize) {
    let r = round.to_string();
    let k = |name: &str| format!("{name}:{r}");
    let script: Vec<Vec<String>> = vec![
        vec!["SELECT".into(), "0".into()],
        vec![
            "SET".into(),
            k("str"),
            "v".into(),
            "EX".into(),
            "1000".into(),
        ],
        vec!["SETEX".into(), k("sx"), "500".into(), "v".into()],
        vec!["PSETEX".into(), k("px"), "500000".into(), "v".into()],
        vec!["SET".into(), k("plain"), "hello".into()],
        vec!["EXPIRE".into(), k("plain"), "900".into()],
        vec!["GETEX".into(), k("str"), "EX".into(), "2000".into()],
        vec!["APPEND".into(), k("plain"), "-x".into()],
        vec!["SETRANGE".into(), k("plain"), "1".into(), "EE".into()],
        vec!["INCRBYFLOAT".into(), k("float"), "1.5".into()],
        vec!["INCRBYFLOAT".into(), k("float"), "0.1".into()],
        vec!["INCR".into(), "counter".into()],
        vec![
            "HSET".into(),
            k("h"),
            "a".into(),
            "1".into(),
            "b".into(),
            "2".into(),
        ],
        vec!["HINCRBYFLOAT".into(), k("h"), "a".into(), "0.25".into()],
        vec!["HDEL".into(), k("h"), "b".into()],
        vec![
            "SADD".into(),
            k("s"),
            "1".into(),
            "2".into(),
            "3".into(),
            "x".into(),
            "y".into(),
        ],
        vec!["SPOP".into(), k("s")],
        vec!["SPOP".into(), k("s"), "2".into()],
        vec![
            "RPUSH".into(),
            k("l"),
            "a".into(),
            "b".into(),
            "c".into(),
            "d".into(),
        ],
        vec![
            "LMOVE".into(),
            k("l"),
            k("l2"),
            "LEFT".into(),
            "RIGHT".into(),
        ],
        vec!["RPOPLPUSH".into(), k("l"), k("l2")],
        vec!["RPUSH".into(), k("bl"), "x".into(), "y".into()],
        vec!["BLPOP".into(), k("bl"), "1".into()],
        vec![
            "ZADD".into(),
            k("z"),
            "1".into(),
            "a".into(),
            "2.5".into(),
            "b".into(),
            "3".into(),
            "c".into(),
        ],
        vec!["ZINCRBY".into(), k("z"), "2.5".into(), "b".into()],
        vec!["ZPOPMIN".into(), k("z")],
        vec!["MULTI".into()],
        vec!["INCR".into(), "in-multi".into()],
        vec!["LPUSH".into(), k("ml"), "a".into()],
        vec!["EXEC".into()],
        vec!["COPY".into(), k("h"), k("h-copy")],
        vec!["RENAME".into(), k("sx"), k("sx-renamed")],
        vec!["PERSIST".into(), k("px")],
        vec!["SET".into(), k("gone"), "v".into()],
        vec!["UNLINK".into(), k("gone")],
        vec!["SELECT".into(), "2".into()],
        vec![
            "SET".into(),
            k("short"),
            "v".into(),
            "PX".into(),
            "30".into(),
        ],
        vec!["SET".into(), k("moved"), "v".into()],
        vec!["MOVE".into(), k("moved"), "4".into()],
        vec!["SELECT".into(), "8".into()],
        vec!["SET".into(), k("flushed"), "v".into()],
        vec!["FLUSHDB".into()],
        vec!["SELECT".into(), "6".into()],
        vec!["SADD".into(), k("swapped"), "m".into()],
        vec!["SWAPDB".into(), "6".into(), "7".into()],
        vec!["SELECT".into(), "0".into()],
    ];
    for command in script {
        let mut cmd = redis::cmd(&command[0]);
        for arg in &command[1..] {
            cmd.arg(arg);
        }
        let _: redis::Value = cmd
            .query(con)
            .unwrap_or_else(|e| panic!("{command:?} on the master: {e}"));
    }
}

/// The first reply line to an inline command, exactly as sent (`-READONLY ...`).
fn raw_line(server: &Server, command: &str) -> String {
    let mut stream = server.raw();
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn replicaof(replica: &mut redis::Connection, port: u16) {
    let reply: String = query(replica, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    assert_eq!(reply, "OK");
}

/// Full sync, then a stream of writes of every type, then equal digests.
fn follow_master(master_args: &[&str]) {
    let master = Server::start_redis(master_args);
    apply(&master, &commands());
    let replica = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    for round in 0..5 {
        mixed_writes(&mut to_master, round);
    }
    wait_in_sync(&mut to_master, &mut to_replica);
    // Let the short TTLs pass: the master's expiry reaches the replica as DEL.
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_replica);
    let dbsize_master: i64 = query(&mut to_master, &["DBSIZE"]);
    let dbsize_replica: i64 = query(&mut to_replica, &["DBSIZE"]);
    assert_eq!(dbsize_master, dbsize_replica);
    assert_eq!(
        raw_line(&replica, "SET k v"),
        "-READONLY You can't write against a read only replica."
    );
    let log = replica.log();
    assert!(
        log.contains("MASTER <-> REPLICA sync: Finished with success"),
        "{log}"
    );
    // The received file became the replica's dump, and no temp file is left.
    assert_eq!(dir_files(&replica, "temp-"), Vec::<String>::new());
    assert_eq!(dir_files(&replica, "dump.rdb"), ["dump.rdb"]);
}

/// Names in the server's directory starting with `prefix`, except the replication backlog
/// (`dump.rdb.backlog`, which a replica keeps for its own replicas).
fn dir_files(server: &Server, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix) && name != "dump.rdb.backlog")
        .collect();
    names.sort();
    names
}

#[test]
fn rdb_del_sync_files_leaves_no_copy_on_a_replica_without_persistence() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let replica = Server::start(&["--rdb-del-sync-files", "yes"]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    assert_eq!(dir_files(&replica, "dump.rdb"), Vec::<String>::new());
    assert_eq!(dir_files(&replica, "temp-"), Vec::<String>::new());
    assert!(replica.log().contains(
        "Removing the RDB file obtained from the master. This replica has persistence disabled"
    ));
}

#[test]
fn replica_follows_a_disk_based_redis_master() {
    follow_master(&["--repl-diskless-sync", "no"]);
}

#[test]
fn replica_follows_a_diskless_redis_master() {
    // Redis 7.0's default is diskless (`$EOF:<mark>` framing); a short delay keeps the test
    // quick without changing the framing.
    follow_master(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "1",
    ]);
}

#[test]
fn reads_are_served_from_the_old_data_while_the_snapshot_loads() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    let mut to_master = master.client();
    let _: () = query(&mut to_master, &["DEBUG", "POPULATE", "20000", "fresh"]);
    // 150 µs per key: the load takes about 3 seconds.
    let replica = Server::start(&["--key-load-delay", "150"]);
    let mut to_replica = replica.client();
    let _: () = query(&mut to_replica, &["SET", "old", "still-here"]);
    replicaof(&mut to_replica, master.port);
    wait_until(SYNC_TIMEOUT, "the sync to start", || {
        field(
            &info(&mut to_replica, "replication"),
            "master_sync_in_progress",
        )
        .as_deref()
            == Some("1")
    });
    let syncing = |con: &mut redis::Connection| {
        field(&info(con, "replication"), "master_sync_in_progress").as_deref() == Some("1")
    };
    let mut served = 0;
    let mut refused = false;
    // A reply counts only if the sync was still running after it was given: the swap may
    // come between any two commands.
    for _ in 0..100_000 {
        let value: Option<String> = query(&mut to_replica, &["GET", "old"]);
        if !syncing(&mut to_replica) {
            break;
        }
        assert_eq!(value.as_deref(), Some("still-here"));
        served += 1;
        if served == 3 {
            let _: () = query(
                &mut to_replica,
                &["CONFIG", "SET", "replica-serve-stale-data", "no"],
            );
            let reply = raw_line(&replica, "GET old");
            if syncing(&mut to_replica) {
                assert_eq!(
                    reply,
                    "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                );
                refused = true;
            }
            let _: () = query(
                &mut to_replica,
                &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        served >= 10 && refused,
        "only {served} reads during the sync"
    );
    wait_in_sync(&mut to_master, &mut to_replica);
    let value: Option<String> = query(&mut to_replica, &["GET", "old"]);
    assert_eq!(value, None);
    let keys: i64 = query(&mut to_replica, &["DBSIZE"]);
    assert_eq!(keys, 20000);
}

#[test]
fn a_killed_link_resyncs_partially() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let replica = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    let full = stat(&mut to_master, "sync_full");
    let partial = stat(&mut to_master, "sync_partial_ok");

    // From the replica's side.
    let killed: i64 = query(&mut to_replica, &["CLIENT", "KILL", "TYPE", "master"]);
    assert_eq!(killed, 1);
    mixed_writes(&mut to_master, 0);
    wait_in_sync(&mut to_master, &mut to_replica);
    assert_eq!(stat(&mut to_master, "sync_partial_ok"), partial + 1);

    // From the master's side.
    let killed: i64 = query(&mut to_master, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    mixed_writes(&mut to_master, 1);
    wait_in_sync(&mut to_master, &mut to_replica);
    assert_eq!(stat(&mut to_master, "sync_partial_ok"), partial + 2);
    assert_eq!(stat(&mut to_master, "sync_full"), full);
    let log = replica.log();
    assert!(
        log.contains("Caching the disconnected master state."),
        "{log}"
    );
    assert!(
        log.contains("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."),
        "{log}"
    );
}

#[test]
fn a_restarted_replica_resyncs_partially_from_its_rdb() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let replica = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    mixed_writes(&mut to_master, 0);
    wait_in_sync(&mut to_master, &mut to_replica);
    let full = stat(&mut to_master, "sync_full");
    let partial = stat(&mut to_master, "sync_partial_ok");

    let _ = run(&mut to_replica, &["SHUTDOWN", "SAVE"]);
    drop(to_replica);
    let mut replica = replica;
    assert!(
        replica.wait_exit(Duration::from_secs(20)).is_some(),
        "SHUTDOWN SAVE did not stop the replica"
    );
    mixed_writes(&mut to_master, 1);
    let port = master.port.to_string();
    let replica = Server::start_in(replica.into_dir(), &["--replicaof", "127.0.0.1", &port]);
    let mut to_replica = replica.client();
    wait_in_sync(&mut to_master, &mut to_replica);
    assert_eq!(stat(&mut to_master, "sync_partial_ok"), partial + 1);
    assert_eq!(stat(&mut to_master, "sync_full"), full);
    let log = replica.log();
    assert!(
        log.contains("Trying a partial resynchronization (request"),
        "{log}"
    );
}

/// A redis-server on a port chosen by the test, so it can be restarted on the same address.
struct FixedPortRedis {
    child: Child,
}

impl FixedPortRedis {
    fn start(port: u16, dir: &Path, extra: &[&str]) -> FixedPortRedis {
        let port_text = port.to_string();
        let dir_text = dir.display().to_string();
        let log = dir.join("master.log").display().to_string();
        let mut args = vec![
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir_text,
            "--enable-debug-command",
            "yes",
            "--logfile",
            &log,
        ];
        args.extend_from_slice(extra);
        let child = Command::new(redis_program("redis-server"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut server = FixedPortRedis { child };
        wait_until(Duration::from_secs(20), "redis-server to answer", || {
            if let Ok(Some(_)) = server.child.try_wait() {
                panic!("redis-server exited at start");
            }
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            stream.write_all(b"PING\r\n").is_ok()
                && BufReader::new(&stream).read_line(&mut line).is_ok()
                && line.starts_with("+PONG")
        });
        let _ = &mut server;
        server
    }

    fn client(port: u16) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let con = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        con
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FixedPortRedis {
    fn drop(&mut self) {
        // Stopped by PID: Child::kill signals exactly this process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_restarted_master_is_followed_again() {
    const MASTER_ARGS: &[&str] = &[
        "--repl-diskless-sync",
        "no",
        "--repl-ping-replica-period",
        "3600",
    ];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let master = FixedPortRedis::start(port, dir.path(), MASTER_ARGS);
    let mut to_master = FixedPortRedis::client(port);
    for command in commands() {
        let mut cmd = redis::cmd(&command[0]);
        for arg in &command[1..] {
            cmd.arg(arg);
        }
        let _: redis::RedisResult<redis::Value> = cmd.query(&mut to_master);
    }
    let replica = Server::start(&[]);
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, port);
    wait_in_sync(&mut to_master, &mut to_replica);
    mixed_writes(&mut to_master, 0);
    // No stream after the SAVE below (short TTLs gone, PINGs rare), so the saved offset is
    // the replica's and the restarted master can continue it.
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_replica);

    let _: () = query(&mut to_master, &["SAVE"]);
    drop(to_master);
    master.stop();
    wait_until(
        Duration::from_secs(20),
        "the replica to see the link down",
        || {
            field(&info(&mut to_replica, "replication"), "master_link_status").as_deref()
                == Some("down")
        },
    );
    let value: Option<String> = query(&mut to_replica, &["GET", "counter"]);
    assert!(value.is_some(), "reads are served while the master is down");
    let _master = FixedPortRedis::start(port, dir.path(), MASTER_ARGS);
    let mut to_master = FixedPortRedis::client(port);
    mixed_writes(&mut to_master, 1);
    wait_in_sync(&mut to_master, &mut to_replica);
    let log = replica.log();
    assert!(log.contains("Connection with master lost."), "{log}");
    // Redis 7.0 restores its history from its RDB as replid2 and answers +CONTINUE with a
    // new ID, which the replica adopts.
    assert!(log.contains("Master replication ID changed to "), "{log}");
}

#[test]
fn wrong_masterauth_is_logged_and_retried_until_fixed() {
    let master = Server::start_redis(&["--requirepass", "secret", "--repl-diskless-sync", "no"]);
    let client =
        redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", master.port)).unwrap();
    let mut to_master = client.get_connection().unwrap();
    for command in commands() {
        let mut cmd = redis::cmd(&command[0]);
        for arg in &command[1..] {
            cmd.arg(arg);
        }
        let _: redis::RedisResult<redis::Value> = cmd.query(&mut to_master);
    }
    let replica = Server::start(&["--masterauth", "wrong"]);
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_until(Duration::from_secs(30), "two failed AUTH attempts", || {
        replica
            .log()
            .matches("Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair or user is disabled.")
            .count()
            >= 2
    });
    let status = field(&info(&mut to_replica, "replication"), "master_link_status");
    assert_eq!(status.as_deref(), Some("down"));
    mixed_writes(&mut to_master, 0);
    let _: () = query(&mut to_replica, &["CONFIG", "SET", "masterauth", "secret"]);
    wait_in_sync(&mut to_master, &mut to_replica);
    let counter: Option<String> = query(&mut to_replica, &["GET", "counter"]);
    assert_eq!(counter.as_deref(), Some("1"));
}

#[test]
fn promotion_keeps_the_data_and_the_history_as_replid2() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let replica = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    mixed_writes(&mut to_master, 0);
    wait_in_sync(&mut to_master, &mut to_replica);
    // Let the short TTLs pass and their DELs arrive: nothing but PINGs follows.
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_replica);
    let before = info(&mut to_replica, "replication");
    let digest: String = query(&mut to_replica, &["DEBUG", "DIGEST"]);
    let reply: String = query(&mut to_replica, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(reply, "OK");
    let after = info(&mut to_replica, "replication");
    assert_eq!(field(&after, "role").as_deref(), Some("master"));
    assert_eq!(
        field(&after, "master_replid2"),
        field(&before, "master_replid")
    );
    assert_ne!(
        field(&after, "master_replid"),
        field(&before, "master_replid")
    );
    // The master's PINGs may have moved the stream on since `before`; promotion itself
    // keeps the offset.
    let offset: i64 = field(&after, "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        field(&after, "second_repl_offset"),
        Some((offset + 1).to_string())
    );
    let now: String = query(&mut to_replica, &["DEBUG", "DIGEST"]);
    assert_eq!(now, digest, "promotion keeps the data");
    let _: () = query(&mut to_replica, &["SET", "written-after-promotion", "yes"]);
    let role: Vec<redis::Value> = query(&mut to_replica, &["ROLE"]);
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    assert!(replica
        .log()
        .contains("MASTER MODE enabled (user request from 'id="));
}

/// The keys of INFO replication and the shape of ROLE, side by side with a real redis-server
/// replica of the same master: connected, then with the master gone.
#[test]
fn info_replication_and_role_look_like_a_redis_replica() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let ours = Server::start(&[]);
    let theirs = Server::start_redis(&[]);
    let mut to_master = master.client();
    let mut to_ours = ours.client();
    let mut to_theirs = theirs.client();
    replicaof(&mut to_ours, master.port);
    replicaof(&mut to_theirs, master.port);
    wait_in_sync(&mut to_master, &mut to_ours);
    wait_in_sync(&mut to_master, &mut to_theirs);
    let port = master.port.to_string();
    support::assert_same_replies(
        &mut to_ours,
        &mut to_theirs,
        &[
            &["REPLICAOF", "127.0.0.1", &port],
            &["SLAVEOF", "127.0.0.1", &port],
            &["REPLICAOF", "127.0.0.1", "70000"],
            &["REPLICAOF", "127.0.0.1", "port"],
            &["REPLICAOF", "127.0.0.1"],
            &["SET", "x", "y"],
            &["CONFIG", "GET", "replicaof"],
        ],
    );
    let compare =
        |to_ours: &mut redis::Connection, to_theirs: &mut redis::Connection, same_state: bool| {
            let ours_info = info(to_ours, "replication");
            let theirs_info = info(to_theirs, "replication");
            assert_eq!(
                field_names(&ours_info),
                field_names(&theirs_info),
                "\nours:\n{ours_info}\ntheirs:\n{theirs_info}"
            );
            for name in [
                "role",
                "master_host",
                "master_port",
                "master_link_status",
                "slave_read_only",
            ] {
                assert_eq!(field(&ours_info, name), field(&theirs_info, name), "{name}");
            }
            let ours_role: Vec<redis::Value> = query(to_ours, &["ROLE"]);
            let theirs_role: Vec<redis::Value> = query(to_theirs, &["ROLE"]);
            assert_eq!(ours_role.len(), 5);
            let compared = if same_state { 4 } else { 3 };
            assert_eq!(ours_role[..compared], theirs_role[..compared]);
            assert!(matches!(ours_role[4], redis::Value::Int(_)));
            assert!(matches!(theirs_role[4], redis::Value::Int(_)));
        };
    compare(&mut to_ours, &mut to_theirs, true);
    assert_eq!(
        field(&info(&mut to_ours, "replication"), "slave_repl_offset"),
        field(&info(&mut to_theirs, "replication"), "slave_repl_offset"),
    );
    drop(to_master);
    drop(master);
    wait_until(
        Duration::from_secs(20),
        "both replicas to see the link down",
        || {
            info(&mut to_ours, "replication").contains("master_link_status:down")
                && info(&mut to_theirs, "replication").contains("master_link_status:down")
        },
    );
    // The link state itself flickers between connect and connecting while both retry.
    compare(&mut to_ours, &mut to_theirs, false);
}

#[test]
fn a_replica_with_aof_on_keeps_the_synced_data_and_the_stream_in_its_aof() {
    let master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    apply(&master, &commands());
    let replica = Server::start(&["--appendonly", "yes"]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    let _: () = query(
        &mut to_replica,
        &["SET", "before-sync", "dropped by the sync"],
    );
    replicaof(&mut to_replica, master.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    mixed_writes(&mut to_master, 0);
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_replica);
    wait_until(SYNC_TIMEOUT, "the AOF rewrite after the sync", || {
        let text = info(&mut to_replica, "persistence");
        field(&text, "aof_rewrite_in_progress").as_deref() == Some("0")
            && field(&text, "aof_rewrite_scheduled").as_deref() == Some("0")
            && field(&text, "aof_rewrites").is_none_or(|n| n != "0")
    });
    let expected: String = query(&mut to_master, &["DEBUG", "DIGEST"]);
    let _ = run(&mut to_replica, &["SHUTDOWN", "NOSAVE"]);
    drop(to_replica);
    let mut replica = replica;
    assert!(replica.wait_exit(Duration::from_secs(20)).is_some());
    // Started alone, as a master, from its AOF.
    let restarted = Server::start_in(replica.into_dir(), &["--appendonly", "yes"]);
    let mut con = restarted.client();
    let digest: String = query(&mut con, &["DEBUG", "DIGEST"]);
    assert_eq!(digest, expected);
    let stale: Option<String> = query(&mut con, &["GET", "before-sync"]);
    assert_eq!(stale, None);
}

#[test]
fn clients_blocked_on_keys_are_unblocked_when_the_server_becomes_a_replica() {
    let master = Server::start_redis(&[]);
    let port = master.port.to_string();
    let ours = Server::start(&[]);
    let theirs = Server::start_redis(&[]);
    let mut replies = Vec::new();
    for server in [&ours, &theirs] {
        let mut blocked = server.raw();
        blocked.write_all(b"BLPOP nothing 0\r\n").unwrap();
        let mut con = server.client();
        wait_until(Duration::from_secs(10), "the client to block", || {
            field(&info(&mut con, "clients"), "blocked_clients").as_deref() == Some("1")
        });
        let _: String = query(&mut con, &["REPLICAOF", "127.0.0.1", &port]);
        let mut reply = String::new();
        let mut reader = BufReader::new(&blocked);
        reader.read_line(&mut reply).unwrap();
        let mut rest = String::new();
        // Closed after the reply: the next read sees the end of the stream.
        assert_eq!(reader.read_line(&mut rest).unwrap(), 0, "{rest}");
        replies.push(reply);
    }
    assert_eq!(replies[0], replies[1]);
    assert!(replies[0].starts_with("-UNBLOCKED force unblock"));
}

/// Reads one command a replica sends (RESP multibulk or an inline line) as its arguments.
fn read_command(reader: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("a command from the replica");
    let line = line.trim_end().to_string();
    let Some(count) = line.strip_prefix('*') else {
        return line.split(' ').map(str::to_string).collect();
    };
    let count: usize = count.parse().unwrap();
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let len: usize = header.trim_end()[1..].parse().unwrap();
        let mut arg = vec![0u8; len + 2];
        std::io::Read::read_exact(reader, &mut arg).unwrap();
        arg.truncate(len);
        args.push(String::from_utf8(arg).unwrap());
    }
    args
}

/// A scripted master: answers the handshake and returns the connection and what the replica
/// asked for with PSYNC.
fn accept_handshake(
    listener: &std::net::TcpListener,
    psync_reply: &str,
) -> (TcpStream, BufReader<TcpStream>, Vec<String>) {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert_eq!(read_command(&mut reader), ["PING"]);
    writer.write_all(b"+PONG\r\n").unwrap();
    let port = read_command(&mut reader);
    assert_eq!(port[..2], ["REPLCONF", "listening-port"]);
    let capa = read_command(&mut reader);
    assert_eq!(capa, ["REPLCONF", "capa", "eof", "capa", "psync2"]);
    // ringkv's own option, refused as Redis refuses it: the sync uses one connection.
    assert_eq!(
        read_command(&mut reader),
        ["REPLCONF", "snapshot-only", "1"]
    );
    writer
        .write_all(b"+OK\r\n+OK\r\n-ERR Unrecognized REPLCONF option: snapshot-only\r\n")
        .unwrap();
    let psync = read_command(&mut reader);
    assert_eq!(psync[0], "PSYNC");
    writer.write_all(psync_reply.as_bytes()).unwrap();
    (writer, reader, psync)
}

#[test]
fn scripted_master_sync_fallback_corrupt_snapshot_and_split_eof_mark() {
    // A real snapshot to send.
    let source = Server::start_redis(&[]);
    let mut con = source.client();
    let _: () = query(&mut con, &["SET", "k1", "v1"]);
    let _: () = query(&mut con, &["HSET", "h", "f", "v"]);
    let _: () = query(&mut con, &["SAVE"]);
    let rdb = std::fs::read(source.dir.path().join("dump.rdb")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let replica = Server::start(&[]);
    let mut to_replica = replica.client();
    replicaof(&mut to_replica, port);

    // 1. PSYNC refused: the replica falls back to SYNC; the snapshot is corrupt.
    let (mut writer, mut reader, psync) =
        accept_handshake(&listener, "-ERR unknown command 'PSYNC'\r\n");
    // A server turning into a replica offers its own history (PSYNC2), from offset 1.
    assert_eq!((psync[1].len(), psync[2].as_str()), (40, "1"));
    assert_eq!(read_command(&mut reader), ["SYNC"]);
    let mut corrupt = rdb.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x5a;
    writer.write_all(b"\n\n").unwrap();
    writer
        .write_all(format!("${}\r\n", corrupt.len()).as_bytes())
        .unwrap();
    writer.write_all(&corrupt).unwrap();
    wait_until(
        Duration::from_secs(20),
        "the corrupt snapshot to be refused",
        || {
            replica
                .log()
                .contains("Failed trying to load the MASTER synchronization DB from disk")
        },
    );

    // 2. The replica reconnects on its own; a diskless snapshot arrives in pieces that split
    // the EOF mark, then the stream.
    let replid = "0123456789abcdef0123456789abcdef01234567";
    let mark = "fedcba9876543210fedcba9876543210fedcba98";
    let (mut writer, mut reader, _) =
        accept_handshake(&listener, &format!("+FULLRESYNC {replid} 100\r\n"));
    let mut payload = format!("$EOF:{mark}\r\n").into_bytes();
    payload.extend_from_slice(&rdb);
    payload.extend_from_slice(mark.as_bytes());
    for piece in payload.chunks(payload.len() / 5 + 7) {
        writer.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    // After a diskless transfer the replica acknowledges at once.
    assert_eq!(read_command(&mut reader), ["REPLCONF", "ACK", "100"]);
    let stream = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$2\r\nv2\r\n";
    writer.write_all(stream).unwrap();
    writer
        .write_all(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n")
        .unwrap();
    let expected = (100 + stream.len()).to_string();
    // The answer to GETACK counts everything before it (periodic ACKs may come first).
    wait_until(Duration::from_secs(10), "the GETACK answer", || {
        read_command(&mut reader) == ["REPLCONF", "ACK", expected.as_str()]
    });
    let text = info(&mut to_replica, "replication");
    assert_eq!(field(&text, "master_replid").as_deref(), Some(replid));
    let getack_len = 37;
    assert_eq!(
        field(&text, "slave_repl_offset"),
        Some((100 + stream.len() + getack_len).to_string())
    );
    let values: Vec<Option<String>> = query(&mut to_replica, &["MGET", "k1", "k2"]);
    assert_eq!(values, [Some("v1".into()), Some("v2".into())]);
    let field_value: Option<String> = query(&mut to_replica, &["HGET", "h", "f"]);
    assert_eq!(field_value.as_deref(), Some("v"));

    // 3. The link breaks inside a MULTI: what was queued is not counted, so the replica asks
    // to continue from the MULTI and applies the transaction once.
    let mut offset = 100 + stream.len() + getack_len;
    let set_a = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
    let multi = b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nm\r\n";
    writer.write_all(set_a).unwrap();
    writer.write_all(multi).unwrap();
    wait_until(
        Duration::from_secs(10),
        "INCR to be queued in the MULTI",
        || {
            let clients: String = query(&mut to_replica, &["CLIENT", "LIST", "TYPE", "master"]);
            clients.contains(" flags=Mx ") && clients.contains(" multi=1 ")
        },
    );
    let value: Option<String> = query(&mut to_replica, &["GET", "a"]);
    assert_eq!(value.as_deref(), Some("1"));
    offset += set_a.len();
    drop(writer);
    drop(reader);
    let (mut writer, _reader, psync) = accept_handshake(&listener, "+CONTINUE\r\n");
    assert_eq!(psync, ["PSYNC", replid, &(offset + 1).to_string()]);
    let exec = b"*1\r\n$4\r\nEXEC\r\n";
    writer.write_all(multi).unwrap();
    writer.write_all(exec).unwrap();
    offset += multi.len() + exec.len();
    // 4. A protocol error from the master: the link is dropped and resumed after the last
    // whole command.
    writer.write_all(b"*x\r\n").unwrap();
    let (_writer, _reader, psync) = accept_handshake(&listener, "+CONTINUE\r\n");
    assert_eq!(psync, ["PSYNC", replid, &(offset + 1).to_string()]);
    let counter: Option<String> = query(&mut to_replica, &["GET", "m"]);
    assert_eq!(counter.as_deref(), Some("1"));
    let log = replica.log();
    assert!(log.contains("Protocol error"), "{log}");
}

/// ringkv all the way: a ringkv master, a ringkv replica, and a ringkv replica of that
/// replica (chained: it receives the master's stream relayed unchanged, same offsets).
#[test]
fn ringkv_master_ringkv_replica_and_a_chained_replica_stay_identical() {
    let master = Server::start(&[]);
    apply(&master, &commands());
    let replica = Server::start(&[]);
    let chained = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_replica = replica.client();
    let mut to_chained = chained.client();
    replicaof(&mut to_replica, master.port);
    // Possibly attached while its own master still syncs: then `-NOMASTERLINK` until the
    // link is up, and the chained replica retries.
    replicaof(&mut to_chained, replica.port);
    wait_in_sync(&mut to_master, &mut to_replica);
    wait_in_sync(&mut to_replica, &mut to_chained);
    for round in 0..3 {
        mixed_writes(&mut to_master, round);
    }
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_replica);
    wait_in_sync(&mut to_replica, &mut to_chained);
    let offsets: Vec<Option<String>> = [&mut to_master, &mut to_replica, &mut to_chained]
        .into_iter()
        .map(|con| field(&info(con, "replication"), "master_repl_offset"))
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{offsets:?}");
    let digest: String = query(&mut to_master, &["DEBUG", "DIGEST"]);
    let chained_digest: String = query(&mut to_chained, &["DEBUG", "DIGEST"]);
    assert_eq!(digest, chained_digest);
    let replicas = field(&info(&mut to_replica, "replication"), "connected_slaves");
    assert_eq!(replicas.as_deref(), Some("1"));
}

/// PSYNC2 between ringkv servers: after the master dies, a promoted replica keeps the old
/// history as replid2 and its former sibling continues with a partial resync.
#[test]
fn a_sibling_resyncs_partially_with_a_promoted_replica() {
    let master = Server::start(&[]);
    apply(&master, &commands());
    let first = Server::start(&[]);
    let second = Server::start(&[]);
    let mut to_master = master.client();
    let mut to_first = first.client();
    let mut to_second = second.client();
    replicaof(&mut to_first, master.port);
    replicaof(&mut to_second, master.port);
    wait_in_sync(&mut to_master, &mut to_first);
    wait_in_sync(&mut to_master, &mut to_second);
    mixed_writes(&mut to_master, 0);
    std::thread::sleep(Duration::from_millis(300));
    wait_in_sync(&mut to_master, &mut to_first);
    wait_in_sync(&mut to_master, &mut to_second);
    drop(to_master);
    drop(master);
    let _: String = query(&mut to_first, &["REPLICAOF", "NO", "ONE"]);
    let _: () = query(&mut to_first, &["SET", "after-promotion", "1"]);
    replicaof(&mut to_second, first.port);
    wait_in_sync(&mut to_first, &mut to_second);
    assert_eq!(stat(&mut to_first, "sync_partial_ok"), 1);
    assert_eq!(stat(&mut to_first, "sync_full"), 0);
    let value: Option<String> = query(&mut to_second, &["GET", "after-promotion"]);
    assert_eq!(value.as_deref(), Some("1"));
}
