//! A ringkv master keeps its replication backlog across a restart (issue 4 item 6(b)): after a
//! shutdown that saved, its replicas continue with a partial resync; after a `kill -9` (the
//! RDB on disk is older than the backlog) or with an RDB that is not the one it saved, they
//! need a full sync. Every process is real and on loopback; every wait is bounded.

mod support;

use std::time::{Duration, Instant};

use support::{field, field_u64, wait_caught_up, wait_for, workload, Server};

/// A ringkv master with one ringkv replica, the workload applied and replicated.
fn master_and_replica() -> (Server, Server) {
    let master = Server::start(&[]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    workload::apply(&master, &workload::commands());
    wait_caught_up(&master, &replica);
    (master, replica)
}

/// A few writes in two databases, distinct per `round`.
fn more_writes(master: &Server, round: u32) {
    let mut con = master.client();
    for db in ["0", "3"] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut con).unwrap();
        for i in 0..20 {
            let _: () = redis::cmd("SET")
                .arg(format!("restart:{round}:{i}"))
                .arg(format!("value {round} {i}"))
                .query(&mut con)
                .unwrap();
        }
        let _: i64 = redis::cmd("RPUSH")
            .arg(format!("restart:list:{round}"))
            .arg("a")
            .arg("b")
            .query(&mut con)
            .unwrap();
    }
}

/// Sends `SHUTDOWN SAVE` and waits for the process to exit.
fn shutdown_save(master: &mut Server) {
    let mut con = master.client();
    let _ = support::run(&mut con, &["SHUTDOWN", "SAVE"]);
    drop(con);
    assert!(
        master.wait_exit(Duration::from_secs(20)).is_some(),
        "SHUTDOWN SAVE did not stop the master"
    );
}

fn assert_same_data(master: &Server, replica: &Server) {
    wait_caught_up(master, replica);
    assert_eq!(workload::digest(master), workload::digest(replica));
}

/// The replica came back with a partial resync (and no full one), and writes made afterwards
/// (round `round` of [`more_writes`]) reach it.
fn assert_partial_resync(master: &Server, replica: &Server, round: u32) {
    wait_for("the replica to resync", Duration::from_secs(30), || {
        field_u64(master, "stats", "sync_partial_ok") == 1
    });
    assert_eq!(field_u64(master, "stats", "sync_full"), 0);
    more_writes(master, round);
    assert_same_data(master, replica);
    assert_eq!(field_u64(master, "stats", "sync_full"), 0);
}

#[test]
fn a_master_restarted_after_shutdown_save_serves_its_replica_a_partial_resync() {
    let (mut master, replica) = master_and_replica();
    more_writes(&master, 1);
    wait_caught_up(&master, &replica);
    let old_id = field(&master, "replication", "master_replid");
    let old_offset = field_u64(&master, "replication", "master_repl_offset");
    shutdown_save(&mut master);
    assert!(master.dir.path().join("dump.rdb.backlog").exists());

    let master = master.restart_on_same_port(&[]);
    let log = master.log();
    assert!(
        log.contains("replication ID and offset restored"),
        "the backlog was not restored:\n{log}"
    );
    assert_eq!(field(&master, "replication", "master_replid2"), old_id);
    assert_eq!(
        field_u64(&master, "replication", "second_repl_offset"),
        old_offset + 1
    );
    assert_ne!(field(&master, "replication", "master_replid"), old_id);
    assert_eq!(
        field_u64(&master, "replication", "master_repl_offset"),
        old_offset
    );

    // Writes after the restart replicate, the first one with its SELECT.
    assert_partial_resync(&master, &replica, 2);
    assert_eq!(
        field(&replica, "replication", "master_replid"),
        field(&master, "replication", "master_replid")
    );
}

#[test]
fn a_lagging_replica_continues_from_the_restored_backlog_after_sigterm() {
    // The replica is stopped while the master keeps writing, so when it comes back after the
    // master's restart it needs bytes from before the restart: only the kept backlog has them.
    let master = Server::start(&["--save", "3600 1"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    workload::apply(&master, &workload::commands());
    wait_caught_up(&master, &replica);
    let mut to_replica = replica.client();
    let _ = support::run(&mut to_replica, &["SHUTDOWN", "SAVE"]);
    drop(to_replica);
    let mut replica = replica;
    assert!(replica.wait_exit(Duration::from_secs(20)).is_some());
    more_writes(&master, 1);

    let mut master = master;
    master.signal(libc::SIGTERM);
    assert!(
        master.wait_exit(Duration::from_secs(20)).is_some(),
        "SIGTERM did not stop the master"
    );
    let master = master.restart_on_same_port(&["--save", "3600 1"]);
    assert!(
        master.log().contains("replication ID and offset restored"),
        "{}",
        master.log()
    );
    let replica = Server::start_in(replica.into_dir(), &["--replicaof", "127.0.0.1", &port]);
    assert_partial_resync(&master, &replica, 2);
}

#[test]
fn a_master_killed_with_sigkill_does_not_restore_its_backlog() {
    let (master, replica) = master_and_replica();
    // The replica stops first, so its offset is below the RDB's: a wrongly restored backlog
    // would let it continue and miss the writes made after the SAVE.
    let mut to_replica = replica.client();
    let _ = support::run(&mut to_replica, &["SHUTDOWN", "SAVE"]);
    drop(to_replica);
    let mut replica = replica;
    assert!(replica.wait_exit(Duration::from_secs(20)).is_some());
    more_writes(&master, 1);
    // An RDB with replication info exists, but the backlog goes on past it.
    let mut con = master.client();
    let _ = support::run(&mut con, &["SAVE"]);
    drop(con);
    more_writes(&master, 2);
    assert!(master.dir.path().join("dump.rdb.backlog").exists());

    let master = master.restart_on_same_port(&[]); // SIGKILL, then start
    let log = master.log();
    assert!(
        log.contains("not restored: the RDB file ends at offset"),
        "{log}"
    );
    assert!(!log.contains("replication ID and offset restored"), "{log}");
    let port = master.port.to_string();
    let replica = Server::start_in(replica.into_dir(), &["--replicaof", "127.0.0.1", &port]);
    wait_for("the replica to full sync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_full") == 1
    });
    assert_eq!(field_u64(&master, "stats", "sync_partial_ok"), 0);
    more_writes(&master, 3);
    assert_same_data(&master, &replica);
}

#[test]
fn keys_expired_while_the_master_was_down_prevent_the_restore() {
    let (mut master, replica) = master_and_replica();
    let mut con = master.client();
    let _: () = redis::cmd("SET")
        .arg("short-lived")
        .arg("v")
        .arg("PX")
        .arg("1500")
        .query(&mut con)
        .unwrap();
    drop(con);
    wait_caught_up(&master, &replica);
    shutdown_save(&mut master);
    std::thread::sleep(Duration::from_millis(1700));

    let master = master.restart_on_same_port(&[]);
    let log = master.log();
    assert!(
        log.contains("not restored: 1 keys expired while the server was down"),
        "{log}"
    );
    wait_for("the replica to full sync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_full") == 1
    });
    assert_same_data(&master, &replica);
}

#[test]
fn a_master_restarted_with_another_rdb_needs_a_full_sync() {
    let (mut master, replica) = master_and_replica();
    shutdown_save(&mut master);
    // Another server's RDB (another replication ID, other data) put in place by hand.
    let other = Server::start(&[]);
    let mut con = other.client();
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("data")
        .query(&mut con)
        .unwrap();
    let _ = support::run(&mut con, &["SAVE"]);
    drop(con);
    std::fs::copy(
        other.dir.path().join("dump.rdb"),
        master.dir.path().join("dump.rdb"),
    )
    .unwrap();

    let master = master.restart_on_same_port(&[]);
    let log = master.log();
    assert!(log.contains("not restored"), "{log}");
    wait_for("the replica to full sync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_full") == 1
    });
    assert_eq!(field_u64(&master, "stats", "sync_partial_ok"), 0);
    assert_same_data(&master, &replica);
    let mut con = replica.client();
    let value: String = redis::cmd("GET").arg("other").query(&mut con).unwrap();
    assert_eq!(value, "data");
}

#[test]
fn a_real_redis_replica_continues_after_the_ringkv_master_restarts() {
    let master = Server::start(&[]);
    let port = master.port.to_string();
    let replica = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    workload::apply(&master, &workload::commands());
    wait_caught_up(&master, &replica);
    let mut master = master;
    shutdown_save(&mut master);

    let master = master.restart_on_same_port(&[]);
    assert!(
        master.log().contains("replication ID and offset restored"),
        "{}",
        master.log()
    );
    assert_partial_resync(&master, &replica, 1);
    assert_eq!(
        field(&replica, "replication", "master_replid"),
        field(&master, "replication", "master_replid")
    );
}

/// Sends `request` on a raw connection and reads until the server closes it or two `+OK`
/// replies arrived (bounded by time).
fn send_pipeline(master: &Server, request: &[u8]) {
    use std::io::{Read, Write};
    let mut stream = master.raw();
    stream.write_all(request).unwrap();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while Instant::now() < deadline && !got.ends_with(b"+OK\r\n+OK\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
    }
}

#[test]
fn a_write_pipelined_before_shutdown_save_is_in_both_the_rdb_and_the_backlog() {
    let (mut master, replica) = master_and_replica();
    send_pipeline(
        &master,
        b"*3\r\n$3\r\nSET\r\n$9\r\npipelined\r\n$1\r\nv\r\n*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n",
    );
    assert!(master.wait_exit(Duration::from_secs(20)).is_some());
    let master = master.restart_on_same_port(&[]);
    assert!(
        master.log().contains("replication ID and offset restored"),
        "{}",
        master.log()
    );
    wait_for("the replica to resync", Duration::from_secs(30), || {
        field_u64(&master, "stats", "sync_partial_ok") == 1
    });
    assert_same_data(&master, &replica);
    let mut con = replica.client();
    let value: String = redis::cmd("GET").arg("pipelined").query(&mut con).unwrap();
    assert_eq!(value, "v");
    assert_eq!(field_u64(&master, "stats", "sync_full"), 0);
}

#[test]
fn a_save_in_a_pipeline_counts_the_writes_before_it_in_its_offset() {
    // SET and SAVE in one batch: the RDB holds the SET, whose stream bytes reach the backlog
    // only when the batch ends. The RDB's offset must count them: then, after a kill -9
    // with no later write, the files agree and the replica continues with exactly that data.
    // No keep-alive PING may enter the stream after the SAVE on a slow machine.
    let master = Server::start(&["--repl-ping-replica-period", "3600"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    workload::apply(&master, &workload::commands());
    wait_caught_up(&master, &replica);
    send_pipeline(
        &master,
        b"*3\r\n$3\r\nSET\r\n$9\r\npipelined\r\n$1\r\nv\r\n*1\r\n$4\r\nSAVE\r\n",
    );
    wait_caught_up(&master, &replica);
    let master = master.restart_on_same_port(&[]); // SIGKILL, then start
    assert!(
        master.log().contains("replication ID and offset restored"),
        "{}",
        master.log()
    );
    assert_partial_resync(&master, &replica, 1);
}

#[test]
fn a_restored_backlog_is_freed_after_repl_backlog_ttl_counted_from_the_restart() {
    let (mut master, replica) = master_and_replica();
    let mut to_replica = replica.client();
    let _ = support::run(&mut to_replica, &["SHUTDOWN", "NOSAVE"]);
    drop((to_replica, replica));
    shutdown_save(&mut master);

    let master = master.restart_on_same_port(&["--repl-backlog-ttl", "2"]);
    let started = Instant::now();
    assert!(
        master.log().contains("replication ID and offset restored"),
        "{}",
        master.log()
    );
    let restored_id = field(&master, "replication", "master_replid");
    assert_eq!(field(&master, "replication", "repl_backlog_active"), "1");
    wait_for("the backlog to be freed", Duration::from_secs(15), || {
        field(&master, "replication", "repl_backlog_active") == "0"
    });
    // At least 2 s after the restore, which came a little before `started`.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "freed after {:?}, before the TTL counted from the restart",
        started.elapsed()
    );
    assert!(master
        .log()
        .contains("Replication backlog freed after 2 seconds"));
    assert!(!master.dir.path().join("dump.rdb.backlog").exists());
    assert_ne!(field(&master, "replication", "master_replid"), restored_id);
}
