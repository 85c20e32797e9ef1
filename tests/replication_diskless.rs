//! Diskless full resync on a ringkv master (`repl-diskless-sync yes`): real redis-server 7.0
//! and ringkv replicas receiving `$EOF:`-framed snapshots straight from the fork child, the
//! delay and max-replicas knobs sharing one child, a replica dying mid-transfer, clients
//! without `capa eof` still served from disk, and the disk default. Every process is real and
//! on loopback; every wait is bounded.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{field, field_u64, query, replicas_of, wait_caught_up, wait_for, workload, Server};

/// A ringkv master with `repl-diskless-sync yes` and this `repl-diskless-sync-delay`.
fn diskless_master(delay: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        delay,
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn wait_online(master: &Server, count: usize, timeout: Duration) {
    wait_for(&format!("{count} online replica(s)"), timeout, || {
        let replicas = replicas_of(master);
        replicas.len() == count && replicas.iter().all(|r| r["state"] == "online")
    });
}

fn redis_replica_of(master: &Server, extra: &[&str]) -> Server {
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    Server::start_redis(&args)
}

fn ringkv_replica_of(master: &Server, extra: &[&str]) -> Server {
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Reads one `\n`-terminated line, skipping the bare `\n` keep-alives before it.
fn read_header_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).expect("reading a header line");
        if byte[0] == b'\n' {
            if line.is_empty() {
                continue;
            }
            break;
        }
        line.push(byte[0]);
        assert!(line.len() < 1024, "no line end in {line:?}");
    }
    String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_string()
}

#[test]
fn a_redis_replica_receives_an_eof_framed_snapshot_and_the_writes_made_meanwhile() {
    // The child takes about 2 s (2000 keys × 1 ms), so writes land while it streams.
    let master = diskless_master("0", &["--rdb-key-save-delay", "1000"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "2000", "base", "64"]);
    workload::apply(&master, &workload::commands());
    let forks_before = field_u64(&master, "stats", "total_forks");
    let dirty_before = field_u64(&master, "persistence", "rdb_changes_since_last_save");
    let saved_at = field(&master, "persistence", "rdb_last_save_time");
    assert_eq!(
        field(&master, "persistence", "rdb_last_bgsave_time_sec"),
        "-1"
    );

    let replica = redis_replica_of(&master, &[]);
    let mut states = Vec::new();
    wait_for("the child to start", Duration::from_secs(20), || {
        field(&master, "persistence", "rdb_bgsave_in_progress") == "1"
    });
    // Writes of every kind while the child streams: they follow the snapshot.
    for i in 0..200 {
        let _: () = query(&mut con, &["SET", &format!("during:{i}"), &i.to_string()]);
    }
    let _: i64 = query(&mut con, &["RPUSH", "during:list", "a", "b", "c"]);
    let _: i64 = query(&mut con, &["DEL", "base:7"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replicas = replicas_of(&master);
        if let Some(first) = replicas.first() {
            let state = first["state"].clone();
            if states.last() != Some(&state) {
                states.push(state.clone());
            }
            if state == "online" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never online; states {states:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // As Redis 7.0 shows a diskless transfer: wait_bgsave, then online (never send_bulk).
    assert_eq!(states, vec!["wait_bgsave", "online"], "{}", master.log());
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&replica), workload::digest(&master));

    let replica_log = replica.log();
    assert!(
        replica_log.contains("receiving streamed RDB from master with EOF"),
        "{replica_log}"
    );
    let log = master.log();
    assert!(
        log.contains("Starting BGSAVE for SYNC with target: replicas sockets"),
        "{log}"
    );
    assert!(
        log.contains("Waiting for REPLCONF ACK from slave to enable streaming"),
        "{log}"
    );
    // One RDB child, counted as Redis counts it; no file was made, so the save bookkeeping
    // is untouched.
    assert_eq!(field_u64(&master, "stats", "total_forks"), forks_before + 1);
    assert_eq!(field_u64(&master, "stats", "sync_full"), 1);
    assert_eq!(
        field(&master, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    assert!(
        field_u64(&master, "persistence", "rdb_changes_since_last_save") >= dirty_before,
        "a diskless transfer is not a save"
    );
    // As redis-server 7.0 reports a diskless transfer: not a save, but a timed RDB child.
    assert_eq!(
        field(&master, "persistence", "rdb_last_save_time"),
        saved_at
    );
    assert_eq!(field_u64(&master, "persistence", "rdb_saves"), 0);
    assert_ne!(
        field(&master, "persistence", "rdb_last_bgsave_time_sec"),
        "-1"
    );
    assert!(!master.dir.path().join("dump.rdb").exists());
    // The stream keeps flowing after the sync.
    let _: () = query(&mut con, &["SET", "after", "1"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&replica), workload::digest(&master));
}

#[test]
fn two_ringkv_replicas_share_one_child_thanks_to_the_delay() {
    let master = diskless_master("5", &[]);
    workload::apply(&master, &workload::commands());
    let forks_before = field_u64(&master, "stats", "total_forks");
    let first = ringkv_replica_of(&master, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let second = ringkv_replica_of(&master, &[]);
    wait_for("both replicas to ask", Duration::from_secs(10), || {
        replicas_of(&master).len() == 2
    });
    // Within the delay nothing was forked yet; the replicas get keep-alives.
    assert_eq!(field_u64(&master, "stats", "total_forks"), forks_before);
    assert!(replicas_of(&master)
        .iter()
        .all(|r| r["state"] == "wait_bgsave"));
    wait_online(&master, 2, Duration::from_secs(30));
    assert_eq!(
        field_u64(&master, "stats", "total_forks"),
        forks_before + 1,
        "one child for both"
    );
    // As Redis: one full sync per replica.
    assert_eq!(field_u64(&master, "stats", "sync_full"), 2);
    let log = master.log();
    assert_eq!(
        count(
            &log,
            "Starting BGSAVE for SYNC with target: replicas sockets"
        ),
        1,
        "{log}"
    );
    assert_eq!(
        count(&log, "Delay next BGSAVE for diskless SYNC"),
        2,
        "{log}"
    );
    workload::apply(&master, &workload::commands());
    support::assert_replicas_match(&master, &[&first, &second]);
}

#[test]
fn max_replicas_starts_the_child_without_waiting_out_the_delay() {
    let master = diskless_master("60", &[]);
    // CONFIG SET works for the cap.
    let mut con = master.client();
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "repl-diskless-sync-max-replicas", "2"],
    );
    let got: Vec<String> = query(
        &mut con,
        &["CONFIG", "GET", "repl-diskless-sync-max-replicas"],
    );
    assert_eq!(got, vec!["repl-diskless-sync-max-replicas", "2"]);
    workload::apply(&master, &workload::commands());
    let started = Instant::now();
    let first = redis_replica_of(&master, &[]);
    wait_for("the first replica to ask", Duration::from_secs(10), || {
        replicas_of(&master).len() == 1
    });
    std::thread::sleep(Duration::from_millis(1500));
    // One of two: still waiting for the 60 s delay.
    assert_eq!(replicas_of(&master)[0]["state"], "wait_bgsave");
    assert!(!master.log().contains("Starting BGSAVE for SYNC"));
    let second = ringkv_replica_of(&master, &[]);
    wait_online(&master, 2, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(40));
    support::assert_replicas_match(&master, &[&first, &second]);
    assert_eq!(
        count(
            &master.log(),
            "Starting BGSAVE for SYNC with target: replicas sockets"
        ),
        1
    );
}

#[test]
fn a_replica_killed_mid_transfer_does_not_break_the_other() {
    // About 4 s of child (20000 keys × 200 µs) writing 20 MB (uncompressed), far more than
    // the pipes and socket buffers hold, sent to two replicas sharing it.
    let master = diskless_master(
        "1",
        &["--rdb-key-save-delay", "200", "--rdbcompression", "no"],
    );
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "20000", "key", "1000"]);
    let doomed = redis_replica_of(&master, &[]);
    let survivor = redis_replica_of(&master, &[]);
    wait_for("the shared child to start", Duration::from_secs(20), || {
        field(&master, "persistence", "rdb_bgsave_in_progress") == "1"
    });
    // Let some of the payload through, then kill one replica.
    wait_for(
        "part of the payload to be sent",
        Duration::from_secs(20),
        || field_u64(&master, "stats", "total_net_repl_output_bytes") > 4_000_000,
    );
    assert_eq!(field(&master, "persistence", "rdb_bgsave_in_progress"), "1");
    doomed.signal(libc::SIGKILL);
    let _: () = query(&mut con, &["SET", "written", "during"]);
    wait_online(&master, 1, Duration::from_secs(40));
    wait_caught_up(&master, &survivor);
    assert_eq!(workload::digest(&survivor), workload::digest(&master));
    let log = master.log();
    // The child dropped the dead replica's pipe and finished for the other one.
    assert!(
        log.contains("Diskless rdb transfer, write error sending DB to replica"),
        "{log}"
    );
    assert!(
        log.contains("Background RDB transfer terminated with success"),
        "{log}"
    );
    assert!(log.contains("written for 1 replica(s)"), "{log}");
}

#[test]
fn clients_without_capa_eof_get_the_disk_payload_even_when_diskless() {
    let master = diskless_master("0", &[]);
    workload::apply(&master, &workload::commands());
    // The legacy SYNC: no +FULLRESYNC line, a `$<len>` bulk from disk.
    let mut sync = master.raw();
    sync.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sync.write_all(b"SYNC\r\n").unwrap();
    let header = read_header_line(&mut sync);
    assert!(header.starts_with('$'), "{header}");
    assert!(
        header[1..].parse::<u64>().is_ok(),
        "expected a $<len> disk payload, got {header}"
    );
    drop(sync);
    // PSYNC without capa eof: +FULLRESYNC, then `$<len>`.
    let mut psync = master.raw();
    psync
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    psync.write_all(b"PSYNC ? -1\r\n").unwrap();
    let line = read_header_line(&mut psync);
    assert!(line.starts_with("+FULLRESYNC "), "{line}");
    let header = read_header_line(&mut psync);
    assert!(
        header.starts_with('$') && header[1..].parse::<u64>().is_ok(),
        "expected a $<len> disk payload, got {header}"
    );
    drop(psync);
    // With capa eof: `$EOF:<40 chars>`, an RDB, and the same 40 chars at the end.
    let mut eof = master.raw();
    eof.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    eof.write_all(b"REPLCONF capa eof capa psync2\r\n").unwrap();
    assert_eq!(read_header_line(&mut eof), "+OK");
    eof.write_all(b"PSYNC ? -1\r\n").unwrap();
    let line = read_header_line(&mut eof);
    assert!(line.starts_with("+FULLRESYNC "), "{line}");
    let header = read_header_line(&mut eof);
    let mark = header
        .strip_prefix("$EOF:")
        .unwrap_or_else(|| panic!("expected $EOF:, got {header}"));
    assert_eq!(mark.len(), 40);
    let mut payload = Vec::new();
    let mut chunk = [0u8; 65536];
    while !payload.ends_with(mark.as_bytes()) {
        let n = eof.read(&mut chunk).expect("payload");
        assert!(n > 0, "connection closed before the end mark");
        payload.extend_from_slice(&chunk[..n]);
        assert!(payload.len() < 64 << 20);
    }
    assert!(payload.starts_with(b"REDIS0010"));
    let log = master.log();
    assert_eq!(
        count(&log, "Starting BGSAVE for SYNC with target: disk"),
        2,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            "Starting BGSAVE for SYNC with target: replicas sockets"
        ),
        1,
        "{log}"
    );
}

#[test]
fn redis_cli_rdb_fetches_a_diskless_snapshot() {
    let master = diskless_master("0", &[]);
    workload::apply(&master, &workload::commands());
    support::assert_redis_cli_rdb_fetches_the_data(&master);
    assert!(master
        .log()
        .contains("Starting BGSAVE for SYNC with target: replicas sockets"));
}

#[test]
fn the_default_is_disk_and_config_set_turns_diskless_on() {
    let master = Server::start(&[]);
    let mut con = master.client();
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "repl-diskless-sync*"]);
    let got: HashMap<_, _> = got
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(got["repl-diskless-sync"], "no");
    assert_eq!(got["repl-diskless-sync-delay"], "5");
    assert_eq!(got["repl-diskless-sync-max-replicas"], "0");
    workload::apply(&master, &workload::commands());
    let disk = redis_replica_of(&master, &[]);
    wait_online(&master, 1, Duration::from_secs(30));
    assert!(disk.log().contains("MASTER <-> REPLICA sync: receiving"));
    assert!(!disk.log().contains("streamed RDB"), "{}", disk.log());
    assert!(master
        .log()
        .contains("Starting BGSAVE for SYNC with target: disk"));

    let _: () = query(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "repl-diskless-sync",
            "yes",
            "repl-diskless-sync-delay",
            "0",
        ],
    );
    let diskless = redis_replica_of(&master, &[]);
    wait_online(&master, 2, Duration::from_secs(30));
    assert!(
        diskless
            .log()
            .contains("receiving streamed RDB from master with EOF"),
        "{}",
        diskless.log()
    );
    workload::apply(&master, &workload::commands());
    support::assert_replicas_match(&master, &[&disk, &diskless]);
}

#[test]
fn a_replica_loading_longer_than_repl_timeout_is_kept() {
    // A real redis-server replica takes about 5 s to load (5000 keys × 1 ms) while the
    // master's repl-timeout is 2 s: it is online from the end of the transfer, waiting for its
    // first ACK, and its `\n` keep-alives while loading must keep it.
    let master = diskless_master("0", &["--repl-timeout", "2"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "5000", "key", "10"]);
    let replica = redis_replica_of(
        &master,
        &[
            "--key-load-delay",
            "1000",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    wait_for("the replica to load", Duration::from_secs(20), || {
        replica.log().contains("Loading DB in memory")
    });
    let _: () = query(&mut con, &["SET", "while", "loading"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&replica), workload::digest(&master));
    let log = master.log();
    assert!(!log.contains("timedout"), "{log}");
    assert_eq!(field_u64(&master, "stats", "sync_full"), 1);
    let replica_log = replica.log();
    let loaded_in = replica_log
        .lines()
        .find_map(|l| l.split("Done loading RDB").nth(1).map(str::to_string))
        .unwrap_or_default();
    assert!(!loaded_in.is_empty(), "{replica_log}");
}

#[test]
fn a_stalled_replica_is_dropped_after_repl_timeout_and_the_other_completes() {
    // 20 MB (uncompressed) is far more than a pipe and the socket buffers hold: the child
    // blocks on the stopped replica's pipe until its core drops it (socket full for longer
    // than repl-timeout), then finishes for the other replica.
    let master = diskless_master("1", &["--repl-timeout", "2", "--rdbcompression", "no"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "20000", "key", "1000"]);
    let stalled = redis_replica_of(&master, &[]);
    let survivor = redis_replica_of(&master, &[]);
    wait_for("both replicas to ask", Duration::from_secs(10), || {
        replicas_of(&master).len() == 2
    });
    stalled.signal(libc::SIGSTOP);
    wait_for(
        "the stalled replica to be dropped",
        Duration::from_secs(30),
        || {
            master
                .log()
                .contains("Disconnecting timedout replica (full sync)")
        },
    );
    wait_online(&master, 1, Duration::from_secs(30));
    wait_caught_up(&master, &survivor);
    assert_eq!(workload::digest(&survivor), workload::digest(&master));
    let log = master.log();
    assert!(log.contains("written for 1 replica(s)"), "{log}");
    assert_eq!(field_u64(&master, "stats", "total_forks"), 1);
    stalled.signal(libc::SIGCONT);
}
