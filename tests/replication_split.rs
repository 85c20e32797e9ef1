//! A full sync between ringkv servers takes the stream through a second connection while the
//! snapshot is transferred and loaded (`REPLCONF snapshot-only 1`, then `PSYNC <replid>
//! <offset+1>` beside it), so a master under a heavy write load never holds the stream for
//! the replica: with replica output limits far below what is written during the sync, the
//! sync still completes once, where the one-connection protocol drops the replica and starts
//! over (a resync loop).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{field, field_u64, query, wait_caught_up, wait_for, workload, Server};

/// Writes pipelined SETs to `url` until `stop`, for at most `limit`; returns how many.
fn write_load(url: String, stop: Arc<AtomicBool>, limit: Duration) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let value = "v".repeat(100);
    let started = Instant::now();
    let mut written = 0u64;
    while !stop.load(Ordering::SeqCst) && started.elapsed() < limit {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("SET")
                .arg(format!("load:{}", (written + i) % 50_000))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        written += 500;
    }
    written
}

fn sync_under_load(master: &Server, replica_args: &[&str]) -> (Server, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url) = (stop.clone(), master.url());
        std::thread::spawn(move || write_load(url, stop, Duration::from_secs(60)))
    };
    std::thread::sleep(Duration::from_millis(300));
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(replica_args);
    let replica = Server::start(&args);
    // The load goes on until the replica is up, or for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && field(&replica, "replication", "master_link_status") != "up"
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // More load with the link up (a replica the master is about to drop goes first), then
    // stop.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    (replica, written)
}

/// A master whose replica limits are tiny next to what the load writes during a sync.
fn tight_master() -> Server {
    let master = Server::start(&[
        "--rdbcompression",
        "no",
        "--repl-backlog-size",
        "1mb",
        "--client-output-buffer-limit",
        "replica 1mb 512kb 60",
    ]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "30000", "key", "300"]);
    master
}

#[test]
fn a_full_sync_under_a_write_load_beyond_the_replica_limits_completes_once() {
    let master = tight_master();
    // A slow load: the stream spooled meanwhile is applied in several chunks while the
    // replica acknowledges (each ACK is a send on the socket the spooling thread reads).
    let (replica, written) = sync_under_load(&master, &["--key-load-delay", "1"]);
    assert_eq!(
        field(&replica, "replication", "master_link_status"),
        "up",
        "master:\n{}\nreplica:\n{}",
        master.log(),
        replica.log()
    );
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_eq!(
        field_u64(&master, "stats", "sync_full"),
        1,
        "{}",
        master.log()
    );
    assert_eq!(field_u64(&master, "stats", "total_forks"), 1);
    // The stream connection's PSYNC is part of the full sync, not a partial resync.
    assert_eq!(field_u64(&master, "stats", "sync_partial_ok"), 0);
    // The load really was beyond the limits: more stream than the replica limit and the
    // backlog were written while the replica synced.
    let stream = field_u64(&master, "replication", "master_repl_offset");
    assert!(
        stream > 4 << 20,
        "only {stream} stream bytes ({written} writes): the load was too light to matter"
    );
    let log = replica.log();
    assert!(
        log.contains("bytes of stream received while loading")
            && log.contains("caught up with the stream received during the sync"),
        "{log}"
    );
    assert!(!log.contains("CRITICAL"), "{log}");
    // The link is an ordinary one afterwards: writes flow, the replica acknowledges.
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "after", "sync"]);
    wait_caught_up(&master, &replica);
    wait_for(
        "an ACK at the master's offset",
        Duration::from_secs(10),
        || {
            let offset = field_u64(&master, "replication", "master_repl_offset");
            field(&master, "replication", "slave0").contains(&format!("offset={offset},"))
        },
    );
}

#[test]
fn the_split_sync_is_refused_by_redis_and_a_redis_replica_is_served_as_usual() {
    // A real redis-server replica of ringkv never asks for it; a ringkv replica of a real
    // redis-server master is refused it and syncs on one connection.
    let master = Server::start(&[]);
    workload::apply(&master, &workload::commands());
    let port = master.port.to_string();
    let redis_replica = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    wait_caught_up(&master, &redis_replica);
    assert_eq!(workload::digest(&master), workload::digest(&redis_replica));
    assert!(!master
        .log()
        .contains("takes the stream through its other connection"));

    let redis_master = Server::start_redis(&["--repl-diskless-sync", "no"]);
    workload::apply(&redis_master, &workload::commands());
    let port = redis_master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    wait_caught_up(&redis_master, &replica);
    assert_eq!(workload::digest(&redis_master), workload::digest(&replica));
    assert!(!replica
        .log()
        .contains("a full sync will take the stream through a second connection"));
    assert_eq!(field_u64(&redis_master, "stats", "sync_full"), 1);
}

#[test]
fn a_replica_loading_longer_than_repl_timeout_keeps_its_stream_connection() {
    // The stream connection is online at the master from the start; while the replica
    // loads, newlines on it keep the master's repl-timeout from dropping it.
    let master = Server::start(&["--repl-timeout", "2"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "2000", "key", "100"]);
    let port = master.port.to_string();
    let replica = Server::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--key-load-delay",
        "2000",
    ]);
    let started = Instant::now();
    wait_caught_up(&master, &replica);
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the load was not slow enough to matter"
    );
    let _: () = query(&mut con, &["SET", "after", "load"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_eq!(
        field_u64(&master, "stats", "sync_full"),
        1,
        "{}",
        master.log()
    );
    assert!(!master.log().contains("timedout"), "{}", master.log());
}

#[test]
fn a_split_sync_from_a_diskless_master() {
    let master = Server::start(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    workload::apply(&master, &workload::commands());
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    wait_caught_up(&master, &replica);
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "after", "sync"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_eq!(field_u64(&master, "stats", "sync_full"), 1);
    let log = replica.log();
    assert!(
        log.contains("receiving streamed RDB from master with EOF"),
        "{log}"
    );
    assert!(
        log.contains("caught up with the stream received during the sync"),
        "{log}"
    );
}

#[test]
fn transfer_files_of_a_dead_replica_are_removed_at_start() {
    // A PID that existed and is gone: a child that already exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let names = [
        format!("temp-stream-{dead}.77.spool"),
        format!("temp-1700000000.{dead}.0.rdb"),
        format!("temp-stream-{live}.77.spool"),
        // Redis' own temp name: not ours to remove.
        format!("temp-1700000000.{dead}.rdb"),
    ];
    for name in &names {
        std::fs::write(dir.path().join(name), b"partial").unwrap();
    }
    let server = Server::start_in(dir, &[]);
    let exists = |name: &str| server.dir.path().join(name).exists();
    assert!(!exists(&names[0]) && !exists(&names[1]), "{}", server.log());
    assert!(exists(&names[2]) && exists(&names[3]));
    assert!(server
        .log()
        .contains(&format!("Removed {}, left by a replica transfer", names[0])));
}

#[test]
fn the_stream_connection_authenticates_like_the_first() {
    let master = Server::start(&["--requirepass", "secret"]);
    let url = format!("redis://:secret@127.0.0.1:{}/", master.port);
    let mut to_master = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = query(&mut to_master, &["DEBUG", "POPULATE", "1000", "key", "10"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port, "--masterauth", "secret"]);
    let master_offset = |con: &mut redis::Connection| -> u64 {
        let text: String = query(con, &["INFO", "replication"]);
        text.lines()
            .find_map(|l| l.strip_prefix("master_repl_offset:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let _: () = query(&mut to_master, &["SET", "after", "auth"]);
    wait_for("the replica to catch up", Duration::from_secs(30), || {
        let target = master_offset(&mut to_master);
        field(&replica, "replication", "master_link_status") == "up"
            && field_u64(&replica, "replication", "slave_repl_offset") == target
    });
    let expected: String = query(&mut to_master, &["DEBUG", "DIGEST"]);
    assert_eq!(workload::digest(&replica), expected);
    let log = replica.log();
    assert!(
        log.contains("caught up with the stream received during the sync"),
        "{log}"
    );
}

#[test]
fn a_syncing_replica_is_listed_once_and_counts_for_min_replicas_once_it_has_the_snapshot() {
    // The stream connection is online from the start of the full sync, but its replica has
    // no data until the snapshot arrives: like Redis, which counts a replica from the end of
    // its transfer, writes are refused meanwhile.
    let master = Server::start(&[
        "--min-replicas-to-write",
        "1",
        "--rdb-key-save-delay",
        "1000",
    ]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "3000", "key", "100"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    wait_for(
        "the stream connection to be online while the snapshot is made",
        Duration::from_secs(20),
        || {
            field(&master, "persistence", "rdb_bgsave_in_progress") == "1"
                && master
                    .log()
                    .contains("takes the stream of its full sync from offset")
        },
    );
    let refused = support::run(&mut con, &["SET", "during", "snapshot"]).unwrap_err();
    assert_eq!(refused.code(), Some("NOREPLICAS"), "{refused}");
    assert_eq!(field(&master, "replication", "min_slaves_good_slaves"), "0");
    // INFO lists the syncing replica once, as Redis would: by its snapshot connection.
    let listed = support::replicas_of(&master);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "wait_bgsave");
    assert_eq!(field(&master, "replication", "connected_slaves"), "1");
    let role: Vec<redis::Value> = query(&mut con, &["ROLE"]);
    let online: Vec<redis::Value> = redis::from_redis_value(&role[2]).unwrap();
    assert!(online.is_empty(), "{role:?}");

    wait_caught_up(&master, &replica);
    wait_for("the replica to count", Duration::from_secs(10), || {
        field(&master, "replication", "min_slaves_good_slaves") == "1"
    });
    // Then it is listed once, online, by its stream connection.
    let listed = support::replicas_of(&master);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "online");
    assert_eq!(listed[0]["port"], replica.port.to_string());
    let _: () = query(&mut con, &["SET", "after", "sync"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert!(master
        .log()
        .contains("which takes the stream through its other connection"));
}
