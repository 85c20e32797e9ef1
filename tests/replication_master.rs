//! A ringkv master serving real Redis 7.0 replicas (and `redis-cli --rdb`): full and partial
//! resync, the backlog's limits, WAIT, min-replicas-to-write, INFO replication and ROLE, and
//! a slow replica under a write storm. Every process is real and on loopback; every wait is
//! bounded.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{
    assert_replicas_match, field, field_u64, query, replicas_of, wait_caught_up, wait_for,
    workload, Server,
};

fn info(server: &Server, section: &str) -> String {
    let mut con = server.client();
    redis::cmd("INFO").arg(section).query(&mut con).unwrap()
}

/// `name:value` fields of an INFO text, in order.
fn fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(':'))
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

fn start_replica_of(master: &Server, extra: &[&str]) -> Server {
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    Server::start_redis(&args)
}

/// Waits until `count` replicas are online on the master.
fn wait_online(master: &Server, count: usize) {
    wait_for(
        &format!("{count} online replica(s)"),
        Duration::from_secs(30),
        || {
            let replicas = replicas_of(master);
            replicas.len() == count && replicas.iter().all(|r| r["state"] == "online")
        },
    );
}

/// Commands with relative TTLs and keys that expire during the test: the master must
/// propagate them as absolute times and as deletions.
fn ttl_commands() -> Vec<Vec<String>> {
    let text: &[&[&str]] = &[
        &["SELECT", "7"],
        &["SET", "ttl:ex", "v", "EX", "1000"],
        &["SET", "ttl:px", "v", "PX", "900000"],
        &["SETEX", "ttl:setex", "500", "v"],
        &["SET", "ttl:rel", "v"],
        &["EXPIRE", "ttl:rel", "2000"],
        &["PEXPIRE", "ttl:rel2", "100"],
        &["SET", "ttl:short", "v", "PX", "150"],
        &["RPUSH", "ttl:list", "a", "b"],
        &["EXPIRE", "ttl:list", "3000"],
        &["SELECT", "0"],
    ];
    text.iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn a_redis_replica_syncs_fully_and_follows_the_stream() {
    let master = Server::start(&[]);
    let commands = workload::commands();
    let split = commands
        .iter()
        .position(|c| c[0] == "SELECT" && c[1] == "5")
        .expect("workload has a db 5 part");
    workload::apply(&master, &commands[..split]);
    workload::apply(&master, &ttl_commands());

    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    // Writes after the sync, with TTLs, reach the replica through the stream.
    workload::apply(&master, &commands[split..]);
    workload::apply(&master, &ttl_commands());
    std::thread::sleep(Duration::from_millis(300)); // ttl:short expires on the master
    let mut con = master.client();
    let _: Option<String> = query(&mut con, &["GET", "ttl:short"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_ne!(
        workload::digest(&master),
        "0000000000000000000000000000000000000000"
    );

    // INFO and ROLE describe the replica, with its acknowledged offset.
    wait_for(
        "the replica's ACK of the last offset",
        Duration::from_secs(5),
        || {
            let offset = field(&master, "replication", "master_repl_offset");
            replicas_of(&master)[0]["offset"] == offset
        },
    );
    let entry = &replicas_of(&master)[0];
    assert_eq!(entry["ip"], "127.0.0.1");
    assert_eq!(entry["port"], replica.port.to_string());
    assert_eq!(entry["state"], "online");
    assert!(entry["lag"].parse::<u64>().unwrap() <= 2, "{entry:?}");
    assert_eq!(field(&master, "replication", "connected_slaves"), "1");
    assert_eq!(field(&master, "replication", "repl_backlog_active"), "1");
    let offset = field_u64(&master, "replication", "master_repl_offset");
    assert!(offset > 1000, "stream offset {offset}");
    assert_eq!(
        field(&master, "replication", "master_replid"),
        field(&replica, "replication", "master_replid")
    );
    let first = field_u64(&master, "replication", "repl_backlog_first_byte_offset");
    let histlen = field_u64(&master, "replication", "repl_backlog_histlen");
    assert_eq!(first + histlen, offset + 1);
    let role: redis::Value = support::run(&mut con, &["ROLE"]).unwrap();
    let expected = redis::Value::Array(vec![
        redis::Value::BulkString(b"master".to_vec()),
        redis::Value::Int(offset as i64),
        redis::Value::Array(vec![redis::Value::Array(vec![
            redis::Value::BulkString(b"127.0.0.1".to_vec()),
            redis::Value::BulkString(replica.port.to_string().into_bytes()),
            redis::Value::BulkString(offset.to_string().into_bytes()),
        ])]),
    ]);
    assert_eq!(role, expected);
    assert_eq!(field(&master, "stats", "sync_full"), "1");
    // CLIENT LIST marks the replica with S.
    let list: String = query(&mut con, &["CLIENT", "LIST", "TYPE", "replica"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.contains(" flags=S "), "{list}");
}

#[test]
fn info_replication_has_redis_fields_in_redis_order() {
    let ours = Server::start(&[]);
    let theirs = Server::start_redis(&[]);
    let _ours_replica = start_replica_of(&ours, &[]);
    let _their_replica = start_replica_of(&theirs, &[]);
    wait_online(&ours, 1);
    wait_online(&theirs, 1);
    let names = |server: &Server| -> Vec<String> {
        fields(&info(server, "replication"))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(names(&ours), names(&theirs));
    let keys = |server: &Server| -> Vec<String> {
        let entry = fields(&info(server, "replication"))
            .into_iter()
            .find(|(k, _)| k == "slave0")
            .unwrap()
            .1;
        entry
            .split(',')
            .map(|kv| kv.split_once('=').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(keys(&ours), keys(&theirs));
    // With min-replicas-to-write both show min_slaves_good_slaves in the same place.
    for server in [&ours, &theirs] {
        let mut con = server.client();
        let _: () = query(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    }
    wait_for("good replica counts", Duration::from_secs(5), || {
        field(&ours, "replication", "min_slaves_good_slaves") == "1"
    });
    assert_eq!(names(&ours), names(&theirs));
    // INFO stats carries the sync counters under Redis' names.
    for name in ["sync_full", "sync_partial_ok", "sync_partial_err"] {
        assert_eq!(
            field(&ours, "stats", name),
            field(&theirs, "stats", name),
            "{name}"
        );
    }
}

#[test]
fn a_killed_replica_link_resumes_with_a_partial_resync() {
    let master = Server::start(&[]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    let mut con = master.client();
    for i in 0..100 {
        let _: () = query(&mut con, &["SET", &format!("before:{i}"), "x"]);
    }
    wait_caught_up(&master, &replica);
    let killed: i64 = query(&mut con, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    // Writes while the replica reconnects are sent from the backlog.
    for i in 0..100 {
        let _: () = query(&mut con, &["SET", &format!("after:{i}"), "y"]);
    }
    wait_for("a partial resync", Duration::from_secs(20), || {
        field_u64(&master, "stats", "sync_partial_ok") == 1
    });
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    assert_eq!(field_u64(&master, "stats", "sync_full"), 1);
    assert_eq!(field_u64(&master, "stats", "sync_partial_err"), 0);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert!(master
        .log()
        .contains("Partial resynchronization request from 127.0.0.1:"));
}

#[test]
fn a_backlog_overrun_forces_a_full_resync() {
    // The ring is at least the replica hard output limit: lower both.
    let master = Server::start(&[
        "--repl-backlog-size",
        "16kb",
        "--client-output-buffer-limit",
        "replica 16kb 0 0",
    ]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    // Freeze the replica, cut its link, and write far more than the backlog holds.
    replica.signal(libc::SIGSTOP);
    let mut con = master.client();
    let killed: i64 = query(&mut con, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    let value = "v".repeat(1000);
    for i in 0..200 {
        let _: () = query(&mut con, &["SET", &format!("k{i}"), &value]);
    }
    replica.signal(libc::SIGCONT);
    wait_for("a second full resync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_full") == 2
    });
    assert_eq!(field_u64(&master, "stats", "sync_partial_err"), 1);
    assert_eq!(field_u64(&master, "stats", "sync_partial_ok"), 0);
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
}

#[test]
fn replicas_arriving_during_a_snapshot_share_it() {
    // 1 ms per key makes the snapshot last about a second.
    let master = Server::start(&["--rdb-key-save-delay", "1000"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "1000"]);
    let first = start_replica_of(&master, &[]);
    wait_for(
        "the first replica to wait for the snapshot",
        Duration::from_secs(10),
        || {
            replicas_of(&master)
                .first()
                .is_some_and(|r| r["state"] == "wait_bgsave")
        },
    );
    let second = start_replica_of(&master, &[]);
    wait_online(&master, 2);
    assert_eq!(field(&master, "stats", "total_forks"), "1");
    assert_eq!(field(&master, "stats", "sync_full"), "2");
    let _: () = query(&mut con, &["SET", "after", "sync"]);
    wait_caught_up(&master, &first);
    wait_caught_up(&master, &second);
    let digest = workload::digest(&master);
    assert_eq!(digest, workload::digest(&first));
    assert_eq!(digest, workload::digest(&second));
}

#[test]
fn wait_counts_acknowledging_replicas() {
    let master = Server::start(&[]);
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "k", "v"]);
    let started = Instant::now();
    let none: i64 = query(&mut con, &["WAIT", "1", "200"]);
    assert_eq!(none, 0);
    assert!(started.elapsed() >= Duration::from_millis(190));
    let zero_needed: i64 = query(&mut con, &["WAIT", "0", "0"]);
    assert_eq!(zero_needed, 0);

    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    let _: () = query(&mut con, &["SET", "k2", "v2"]);
    let started = Instant::now();
    let one: i64 = query(&mut con, &["WAIT", "1", "5000"]);
    assert_eq!(one, 1);
    // Answered by the GETACK round trip, not by the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut replica_con = replica.client();
    let value: String = query(&mut replica_con, &["GET", "k2"]);
    assert_eq!(value, "v2");
    // Asking for more replicas than exist waits for the timeout and reports those that acked.
    let started = Instant::now();
    let still_one: i64 = query(&mut con, &["WAIT", "2", "300"]);
    assert_eq!(still_one, 1);
    assert!(started.elapsed() >= Duration::from_millis(290));
    // A WAIT blocked forever is released when the client disconnects (no leak, no crash).
    let mut raw = master.raw();
    raw.write_all(b"WAIT 5 0\r\n").unwrap();
    drop(raw);
    let pong: String = query(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}

#[test]
fn min_replicas_to_write_refuses_writes_without_enough_replicas() {
    let master = Server::start(&[
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "10",
    ]);
    let mut con = master.client();
    let refused = support::run(&mut con, &["SET", "k", "v"]).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "NOREPLICAS: Not enough good replicas to write."
    );
    // Reads still work.
    let missing: Option<String> = query(&mut con, &["GET", "k"]);
    assert_eq!(missing, None);
    // A write queued in MULTI makes EXEC abort.
    let _: () = query(&mut con, &["MULTI"]);
    assert!(support::run(&mut con, &["SET", "k", "v"]).is_err());
    let exec = support::run(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(exec.kind(), redis::ErrorKind::ExecAbortError, "{exec}");

    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    wait_for("a good replica", Duration::from_secs(10), || {
        support::run(&mut con, &["SET", "k", "v"]).is_ok()
    });
    wait_caught_up(&master, &replica);
    let mut replica_con = replica.client();
    let value: String = query(&mut replica_con, &["GET", "k"]);
    assert_eq!(value, "v");
    // Writes queued while the replica was there are refused at EXEC once it is gone.
    let _: () = query(&mut con, &["MULTI"]);
    let queued: String = query(&mut con, &["SET", "k", "w"]);
    assert_eq!(queued, "QUEUED");
    drop(replica_con);
    drop(replica);
    wait_for("the replica to go", Duration::from_secs(10), || {
        field(&master, "replication", "connected_slaves") == "0"
    });
    let exec = support::run(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(exec.kind(), redis::ErrorKind::ExecAbortError, "{exec}");
    assert!(exec.to_string().contains("NOREPLICAS"), "{exec}");
    let value: String = query(&mut con, &["GET", "k"]);
    assert_eq!(value, "v");
}

#[test]
fn redis_cli_rdb_downloads_a_loadable_snapshot() {
    let master = Server::start(&[]);
    workload::apply(&master, &workload::commands());
    support::assert_redis_cli_rdb_fetches_the_data(&master);
}

#[test]
fn a_stopped_replica_under_a_write_storm_costs_no_memory_and_is_dropped() {
    let master = Server::start(&[]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    let used_before = field_u64(&master, "memory", "used_memory");
    replica.signal(libc::SIGSTOP);
    // 300 MB of writes to one key: beyond the ring (sized like the 256 MB replica hard
    // output limit) and every socket buffer.
    let value = "x".repeat(100 * 1024);
    let mut con = master.client();
    let mut used_max = 0;
    for round in 0..100 {
        let mut pipe = redis::pipe();
        for _ in 0..30 {
            pipe.cmd("SET").arg("storm").arg(&value).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        if round % 10 == 0 {
            used_max = used_max.max(field_u64(&master, "memory", "used_memory"));
        }
    }
    used_max = used_max.max(field_u64(&master, "memory", "used_memory"));
    assert!(
        used_max < used_before + 16 * 1024 * 1024,
        "master memory grew from {used_before} to {used_max} with a stopped replica"
    );
    // The replica fell out of the backlog: dropped while still stopped.
    wait_for(
        "the stopped replica to be dropped",
        Duration::from_secs(10),
        || field(&master, "replication", "connected_slaves") == "0",
    );
    let log = master.log();
    assert!(
        log.contains("it needs a full resync")
            || log.contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "{log}"
    );
    replica.signal(libc::SIGCONT);
    wait_for("the replica's full resync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_full") >= 2
    });
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
}

#[test]
fn the_replica_output_limit_drops_a_replica_that_lags_too_far() {
    // A big backlog, so the output limit, not an overrun, is what drops the replica.
    let master = Server::start(&[
        "--repl-backlog-size",
        "256mb",
        "--client-output-buffer-limit",
        "replica 4mb 1mb 1",
    ]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    replica.signal(libc::SIGSTOP);
    let value = "x".repeat(100 * 1024);
    let mut con = master.client();
    for _ in 0..40 {
        let mut pipe = redis::pipe();
        for _ in 0..30 {
            pipe.cmd("SET").arg("storm").arg(&value).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    wait_for(
        "the output limit to drop the replica",
        Duration::from_secs(10),
        || {
            master
                .log()
                .contains("scheduled to be closed ASAP for overcoming of output buffer limits")
        },
    );
    wait_for("the replica to be gone", Duration::from_secs(10), || {
        field(&master, "replication", "connected_slaves") == "0"
    });
    // With the same limit it would be dropped again as soon as it resumes (the backlog it is
    // owed is over the limit), as a Redis master would; lift the limit and it catches up.
    let _: () = query(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 0 0 0",
        ],
    );
    replica.signal(libc::SIGCONT);
    wait_for("a partial resync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_partial_ok") >= 1
    });
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
}

#[test]
fn without_replicas_there_is_no_stream_and_pings_start_with_one() {
    let master = Server::start(&["--repl-ping-replica-period", "1"]);
    let mut con = master.client();
    for i in 0..50 {
        let _: () = query(&mut con, &["SET", &format!("k{i}"), "v"]);
    }
    // No consumer: nothing is encoded, the offset stays where Redis keeps it.
    assert_eq!(field(&master, "replication", "master_repl_offset"), "0");
    assert_eq!(field(&master, "replication", "repl_backlog_active"), "0");
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    wait_caught_up(&master, &replica);
    // Idle, the master only PINGs (14 bytes each) through the stream, once a second.
    let before = field_u64(&master, "replication", "master_repl_offset");
    std::thread::sleep(Duration::from_millis(3500));
    let after = field_u64(&master, "replication", "master_repl_offset");
    let grown = after - before;
    assert!(
        grown.is_multiple_of(14) && (28..=70).contains(&grown),
        "grew by {grown}"
    );
    wait_caught_up(&master, &replica);
}

#[test]
fn a_silent_replica_is_dropped_after_repl_timeout() {
    let master = Server::start(&["--repl-timeout", "2"]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    replica.signal(libc::SIGSTOP);
    wait_for(
        "the timed-out replica to be dropped",
        Duration::from_secs(10),
        || field(&master, "replication", "connected_slaves") == "0",
    );
    replica.signal(libc::SIGCONT);
    assert!(master
        .log()
        .contains("Disconnecting timedout replica (streaming sync): 127.0.0.1:"));
    wait_online(&master, 1);
}

#[test]
fn the_backlog_is_freed_after_its_ttl_without_replicas() {
    let master = Server::start(&["--repl-backlog-ttl", "1"]);
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    let replid = field(&master, "replication", "master_replid");
    assert!(master.dir.path().join("dump.rdb.backlog").exists());
    drop(replica);
    wait_for("the backlog to be freed", Duration::from_secs(10), || {
        field(&master, "replication", "repl_backlog_active") == "0"
    });
    // The history ended: a new replication ID, nothing in replid2.
    assert_ne!(field(&master, "replication", "master_replid"), replid);
    assert_eq!(
        field(&master, "replication", "master_replid2"),
        "0000000000000000000000000000000000000000"
    );
    assert!(!master.dir.path().join("dump.rdb.backlog").exists());
    // A new replica gets a new backlog and a full sync.
    let _again = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    assert_eq!(field(&master, "replication", "repl_backlog_active"), "1");
    assert_eq!(field(&master, "stats", "sync_full"), "2");
}

#[test]
fn client_unblock_releases_a_wait() {
    let master = Server::start(&[]);
    let _replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    let mut waiter = master.client();
    let id: i64 = query(&mut waiter, &["CLIENT", "ID"]);
    let handle = std::thread::spawn(move || {
        let count: i64 = query(&mut waiter, &["WAIT", "3", "0"]);
        count
    });
    let mut con = master.client();
    wait_for("the WAIT to block", Duration::from_secs(5), || {
        field(&master, "clients", "blocked_clients") == "1"
    });
    let unblocked: i64 = query(&mut con, &["CLIENT", "UNBLOCK", &id.to_string()]);
    assert_eq!(unblocked, 1);
    assert_eq!(handle.join().unwrap(), 1);
    assert_eq!(field(&master, "clients", "blocked_clients"), "0");
}

#[test]
fn a_large_snapshot_streams_to_a_replica_under_writes() {
    let master = Server::start(&["--rdbcompression", "no"]);
    let mut con = master.client();
    // About 60 MB of RDB: many pipe-sized splices, with the socket filling up.
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "120000", "key", "500"]);
    let replica = start_replica_of(&master, &[]);
    // Writes while the snapshot is made and sent follow it through the backlog.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while replicas_of(&master)
        .first()
        .is_none_or(|r| r["state"] != "online")
    {
        assert!(Instant::now() < deadline, "the replica never came online");
        let _: () = query(&mut con, &["INCR", "during"]);
        let _: () = query(&mut con, &["SET", &format!("during:{i}"), "x"]);
        i += 1;
    }
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    let sent = field_u64(&master, "stats", "total_net_repl_output_bytes");
    assert!(sent > 50_000_000, "sent {sent} bytes");
}

#[test]
fn the_aof_and_replicas_both_get_the_stream() {
    let master = Server::start(&["--appendonly", "yes", "--repl-backlog-ttl", "1"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "before", "1"]);
    // The AOF alone does not move the replication offset (Redis counts it for replicas).
    assert_eq!(field(&master, "replication", "master_repl_offset"), "0");
    let replica = start_replica_of(&master, &[]);
    wait_online(&master, 1);
    workload::apply(&master, &workload::commands());
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    // Without replicas the backlog goes after its TTL; the AOF keeps receiving writes.
    drop(replica);
    wait_for("the backlog to be freed", Duration::from_secs(10), || {
        field(&master, "replication", "repl_backlog_active") == "0"
    });
    let _: () = query(&mut con, &["SET", "after", "2"]);
    let digest = workload::digest(&master);
    drop(con);
    let restarted = master.restart(&["--appendonly", "yes"]);
    assert_eq!(workload::digest(&restarted), digest);
}

/// Every file of a Redis AOF directory, concatenated (the replica logs its master's stream).
fn aof_text(server: &Server) -> String {
    let dir = server.dir.path().join("appendonlydir");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "aof"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

#[test]
fn deletions_are_propagated_as_unlink_with_lazyfree_as_redis_does() {
    let master = Server::start(&[
        "--lazyfree-lazy-expire",
        "yes",
        "--lazyfree-lazy-user-del",
        "yes",
    ]);
    let replica = start_replica_of(&master, &["--appendonly", "yes"]);
    wait_online(&master, 1);
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "expiring", "1", "PX", "50"]);
    let _: () = query(&mut con, &["SET", "getdel", "1"]);
    let _: Option<String> = query(&mut con, &["GETDEL", "getdel"]);
    let _: () = query(&mut con, &["SET", "expire", "1"]);
    let _: i64 = query(&mut con, &["EXPIRE", "expire", "-1"]);
    let _: () = query(&mut con, &["SET", "getex", "1"]);
    let _: Option<String> = query(&mut con, &["GETEX", "getex", "PXAT", "1"]);
    wait_for(
        "the key to expire on the master",
        Duration::from_secs(10),
        || {
            let _: Option<String> = query(&mut con, &["GET", "expiring"]);
            field_u64(&master, "stats", "expired_keys") >= 1
        },
    );
    let _: () = query(&mut con, &["SET", "last", "1"]);
    wait_caught_up(&master, &replica);
    wait_for(
        "the replica's AOF to hold the stream",
        Duration::from_secs(10),
        || aof_text(&replica).contains("last"),
    );
    let aof = aof_text(&replica);
    assert_eq!(aof.matches("\r\nUNLINK\r\n").count(), 4, "{aof}");
    assert_eq!(aof.matches("\r\nDEL\r\n").count(), 0, "{aof}");
}

#[test]
fn masters_sharing_a_dir_with_their_own_dbfilename_each_keep_a_backlog() {
    // Redis allows servers to share `dir` when each has its own `dbfilename`; the backlog
    // file is named after it, so each master has its own ring and serves partial resyncs.
    let first = Server::start(&["--dbfilename", "first.rdb"]);
    let shared_dir = first.dir.path().display().to_string();
    let second = Server::start(&["--dir", &shared_dir, "--dbfilename", "second.rdb"]);
    let replicas = [
        start_replica_of(&first, &[]),
        start_replica_of(&second, &[]),
    ];
    for (master, replica) in [&first, &second].into_iter().zip(&replicas) {
        wait_online(master, 1);
        workload::apply(master, &workload::commands());
        let mut con = master.client();
        let _: () = query(&mut con, &["CLIENT", "KILL", "TYPE", "replica"]);
        let _: () = query(&mut con, &["SET", "after-the-kill", "v"]);
        wait_for("a partial resync", Duration::from_secs(30), || {
            field(master, "stats", "sync_partial_ok") == "1"
        });
        assert_replicas_match(master, &[replica]);
    }
    for name in ["first.rdb.backlog", "second.rdb.backlog"] {
        assert!(first.dir.path().join(name).exists(), "{name}");
    }
    assert!(!first.log().contains("Could not"), "{}", first.log());
    assert!(!second.log().contains("Could not"), "{}", second.log());
}
