//! RDB persistence through real processes: SAVE, BGSAVE, save points, restarts, SHUTDOWN and
//! SIGTERM saving, DEBUG RELOAD, MISCONF, files moved between ringkv and redis-server 7.0,
//! corrupt files refused untouched, kill -9 during a background save, and a fork storm under
//! a write load from many connections.

mod support;

use std::time::{Duration, Instant};

use support::workload::{apply, commands, digest};
use support::{query, run, start_must_fail, Server};

fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}:\n{text}"))
        .trim()
        .to_string()
}

/// Waits (bounded) until no background save runs.
fn wait_bgsave_done(con: &mut redis::Connection, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while info_field(con, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(
            Instant::now() < deadline,
            "BGSAVE still running after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn error_of(con: &mut redis::Connection, args: &[&str]) -> String {
    match run(con, args) {
        Err(error) => error.to_string(),
        Ok(value) => panic!("{args:?} should fail, got {value:?}"),
    }
}

#[test]
fn save_and_restart_keep_every_type_ttl_and_database() {
    let server = Server::start(&[]);
    apply(&server, &commands());
    let mut con = server.client();
    let _: () = query(&mut con, &["SET", "ttl-key", "v", "PX", "3600000"]);
    let before = digest(&server);
    let lastsave_before: i64 = query(&mut con, &["LASTSAVE"]);
    std::thread::sleep(Duration::from_millis(1100));
    let reply: String = query(&mut con, &["SAVE"]);
    assert_eq!(reply, "OK");
    let lastsave_after: i64 = query(&mut con, &["LASTSAVE"]);
    assert!(lastsave_after > lastsave_before);
    assert_eq!(
        info_field(&mut con, "persistence", "rdb_changes_since_last_save"),
        "0"
    );
    assert!(server.dir.path().join("dump.rdb").exists());

    let server = server.restart(&[]);
    assert_eq!(
        digest(&server),
        before,
        "the dataset changed across a restart"
    );
    let mut con = server.client();
    let ttl: i64 = query(&mut con, &["PTTL", "ttl-key"]);
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "TTL not kept: {ttl}");
    assert!(server.log().contains("DB loaded from disk"));
}

#[test]
fn bgsave_forks_writes_the_file_and_reports_in_info() {
    let server = Server::start(&["--hz", "100"]);
    apply(&server, &commands());
    let before = digest(&server);
    let mut con = server.client();
    let reply: String = query(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    wait_bgsave_done(&mut con, Duration::from_secs(20));
    assert_eq!(
        info_field(&mut con, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    assert_eq!(info_field(&mut con, "persistence", "rdb_saves"), "1");
    assert_eq!(info_field(&mut con, "stats", "total_forks"), "1");
    let fork_usec: u64 = info_field(&mut con, "stats", "latest_fork_usec")
        .parse()
        .unwrap();
    assert!(fork_usec > 0, "latest_fork_usec not measured");
    assert!(server
        .log()
        .contains("Background saving terminated with success"));

    // A second BGSAVE while one runs is refused; SCHEDULE is only for other children.
    let _: () = query(&mut con, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
    let reply: String = query(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    assert_eq!(
        info_field(&mut con, "persistence", "rdb_bgsave_in_progress"),
        "1"
    );
    assert!(error_of(&mut con, &["BGSAVE"]).contains("Background save already in progress"));
    assert!(error_of(&mut con, &["SAVE"]).contains("Background save already in progress"));
    assert!(error_of(&mut con, &["BGSAVE", "NOW"]).contains("syntax error"));
    let _: () = query(&mut con, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_bgsave_done(&mut con, Duration::from_secs(60));

    let server = server.restart(&[]);
    assert_eq!(digest(&server), before);
}

#[test]
fn save_points_trigger_a_background_save() {
    let server = Server::start(&["--save", "1 3", "--hz", "100"]);
    let mut con = server.client();
    for i in 0..3 {
        let _: () = query(&mut con, &["SET", &format!("k{i}"), "v"]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "persistence", "rdb_saves") == "0" {
        assert!(Instant::now() < deadline, "save point did not fire");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.log().contains("3 changes in 1 seconds. Saving..."));
    wait_bgsave_done(&mut con, Duration::from_secs(10));
    assert_eq!(
        info_field(&mut con, "persistence", "rdb_changes_since_last_save"),
        "0"
    );
}

#[test]
fn shutdown_and_sigterm_save_as_redis_does() {
    // SIGTERM with save points set: the final snapshot is written.
    let mut server = Server::start(&["--save", "3600 1"]);
    let mut con = server.client();
    let _: () = query(&mut con, &["SET", "a", "1"]);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(server
        .log()
        .contains("Saving the final RDB snapshot before exiting."));
    let server = server.restart(&[]);
    let mut con = server.client();
    let value: String = query(&mut con, &["GET", "a"]);
    assert_eq!(value, "1");

    // SHUTDOWN NOSAVE writes nothing, even with save points.
    let _: () = query(&mut con, &["SET", "a", "2"]);
    let _ = run(&mut con, &["SHUTDOWN", "NOSAVE"]);
    let server = server.restart(&["--save", "3600 1"]);
    let mut con = server.client();
    let value: String = query(&mut con, &["GET", "a"]);
    assert_eq!(value, "1", "SHUTDOWN NOSAVE must not save");

    // SHUTDOWN SAVE saves even without save points.
    let _: () = query(&mut con, &["CONFIG", "SET", "save", ""]);
    let _: () = query(&mut con, &["SET", "a", "3"]);
    let _ = run(&mut con, &["SHUTDOWN", "SAVE"]);
    let server = server.restart(&[]);
    let mut con = server.client();
    let value: String = query(&mut con, &["GET", "a"]);
    assert_eq!(value, "3");
}

#[test]
fn debug_reload_keeps_data_run_id_and_replication_id() {
    let server = Server::start(&[]);
    apply(&server, &commands());
    let before = digest(&server);
    let mut con = server.client();
    let run_id = info_field(&mut con, "server", "run_id");
    let replid = info_field(&mut con, "replication", "master_replid");
    let reply: String = query(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(reply, "OK");
    assert_eq!(digest(&server), before);
    assert_eq!(info_field(&mut con, "server", "run_id"), run_id);
    assert_eq!(info_field(&mut con, "replication", "master_replid"), replid);
}

#[test]
fn failed_background_save_refuses_writes_until_a_save_succeeds() {
    let server = Server::start(&["--hz", "100", "--enable-protected-configs", "yes"]);
    let mut con = server.client();
    let doomed = server.dir.path().join("doomed");
    std::fs::create_dir(&doomed).unwrap();
    let _: () = query(&mut con, &["CONFIG", "SET", "save", "3600 1"]);
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "dir", doomed.to_str().unwrap()],
    );
    std::fs::remove_dir(&doomed).unwrap();
    let _: () = query(&mut con, &["SET", "k", "v"]);
    let reply: String = query(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    wait_bgsave_done(&mut con, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut con, "persistence", "rdb_last_bgsave_status") != "err" {
        assert!(Instant::now() < deadline, "failed BGSAVE not reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    let error = error_of(&mut con, &["SET", "k", "v2"]);
    assert!(error.starts_with("MISCONF"), "{error}");
    // Reads still work; a SAVE that succeeds lifts the refusal.
    let value: String = query(&mut con, &["GET", "k"]);
    assert_eq!(value, "v");
    // The working directory was deleted: point `dir` at a live one again.
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "dir", server.dir.path().to_str().unwrap()],
    );
    let reply: String = query(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    wait_bgsave_done(&mut con, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut con, "persistence", "rdb_last_bgsave_status") != "ok" {
        assert!(Instant::now() < deadline, "successful BGSAVE not reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _: () = query(&mut con, &["SET", "k", "v3"]);
}

#[test]
fn rdb_files_move_between_ringkv_and_redis_in_both_directions() {
    // ringkv writes, redis-server 7.0 loads.
    let server = Server::start(&[]);
    apply(&server, &commands());
    let ours = digest(&server);
    let mut con = server.client();
    let _: () = query(&mut con, &["SAVE"]);
    let redis = server.restart_as_redis(&[]);
    assert_eq!(
        digest(&redis),
        ours,
        "redis-server loaded a different dataset"
    );

    // redis-server writes (after more changes), ringkv loads.
    let mut con = redis.client();
    let _: () = query(&mut con, &["SELECT", "7"]);
    let _: () = query(&mut con, &["SET", "from-redis", "yes"]);
    let _: () = query(&mut con, &["SAVE"]);
    let theirs = digest(&redis);
    let server = redis.restart(&[]);
    assert_eq!(digest(&server), theirs, "ringkv loaded a different dataset");
}

/// Starts must fail on a damaged file, naming it, and leave it byte for byte as it was.
#[test]
fn corrupt_rdb_files_stop_the_start_and_are_left_untouched() {
    let server = Server::start(&[]);
    apply(&server, &commands());
    let mut con = server.client();
    let _: () = query(&mut con, &["SAVE"]);
    let dir = server.into_dir();
    let path = dir.path().join("dump.rdb");
    let good = std::fs::read(&path).unwrap();
    assert!(good.len() > 1000);

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x5a;
    cases.push(("flipped byte", flipped));
    cases.push(("truncated", good[..good.len() * 2 / 3].to_vec()));
    let mut bad_checksum = good.clone();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 1;
    cases.push(("wrong checksum", bad_checksum));
    let mut newer = good.clone();
    newer[5..9].copy_from_slice(b"0099");
    cases.push(("newer version", newer));
    let mut unknown_type = good[..9].to_vec();
    unknown_type.extend_from_slice(&[0xfe, 0x00, 77, 1, b'k', 1, b'v', 0xff]);
    unknown_type.extend_from_slice(&[0; 8]);
    cases.push(("unknown type", unknown_type));
    cases.push(("not an rdb", b"hello world, not a dump".to_vec()));

    for (name, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let (status, stderr, log) = start_must_fail(dir.path(), &[]);
        assert_ne!(status, 0, "{name}: the start should fail");
        let text = format!("{stderr}\n{log}");
        assert!(
            text.contains("dump.rdb"),
            "{name}: message must name the file: {text}"
        );
        assert!(
            text.contains("offset"),
            "{name}: message must give the offset: {text}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: file was modified"
        );
    }
    std::fs::write(&path, &good).unwrap();
    let server = Server::start_in(dir, &[]);
    assert_eq!(digest(&server), {
        let reference = Server::start(&[]);
        apply(&reference, &commands());
        digest(&reference)
    });
}

/// Every child of `pid` (read from /proc).
fn children_of(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                found.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    found
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_file_loadable() {
    let server = Server::start(&["--hz", "100"]);
    let mut con = server.client();
    for i in 0..500 {
        let _: () = query(&mut con, &["SET", &format!("old{i}"), "v"]);
    }
    let _: () = query(&mut con, &["SAVE"]);
    let saved = digest(&server);
    for i in 0..2000 {
        let _: () = query(&mut con, &["SET", &format!("new{i}"), "v"]);
    }
    // 1 ms per key: the child is still writing when both processes die.
    let _: () = query(&mut con, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    let reply: String = query(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    // Kill both processes once the child is writing its temp file (2000 keys at 1 ms each:
    // it is still far from done).
    let temp_files = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while temp_files(server.dir.path()) == 0 {
        assert!(Instant::now() < deadline, "the child never started writing");
        std::thread::sleep(Duration::from_millis(5));
    }
    let children = children_of(server.pid());
    assert!(!children.is_empty(), "no BGSAVE child found");
    for child in &children {
        // SAFETY: kill(2) on the pid of our server's own child process.
        unsafe { libc::kill(*child, libc::SIGKILL) };
    }
    server.signal(libc::SIGKILL);
    let dir = server.into_dir();
    assert_eq!(
        temp_files(dir.path()),
        1,
        "the half-written temp file is left behind"
    );
    let server = Server::start_in(dir, &[]);
    assert_eq!(
        digest(&server),
        saved,
        "the previous good file did not load"
    );
}

/// The fork safe point under load: hundreds of forks while many connections write. A child
/// that inherited a lock held by another thread would hang (the save never finishes) or
/// crash (the save fails); both show up here.
#[test]
fn hundreds_of_forks_under_a_write_load_from_many_connections() {
    const FORKS: usize = 200;
    const WRITERS: usize = 8;
    let server = Server::start(&["--hz", "500", "--server-threads", "2"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut con = server.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && Instant::now() < deadline
                    && n < 2_000_000
                {
                    let mut pipe = redis::pipe();
                    for i in 0..32 {
                        let key = format!("w{w}:{}", (n + i) % 5000);
                        match i % 4 {
                            0 => pipe.cmd("SET").arg(&key).arg(n).ignore(),
                            1 => pipe.cmd("RPUSH").arg(format!("l{w}")).arg(n).ignore(),
                            2 => pipe
                                .cmd("HSET")
                                .arg(format!("h{w}"))
                                .arg(&key)
                                .arg(n)
                                .ignore(),
                            _ => pipe
                                .cmd("LTRIM")
                                .arg(format!("l{w}"))
                                .arg(-200)
                                .arg(-1)
                                .ignore(),
                        };
                    }
                    let _: () = pipe.query(&mut con).expect("write during forks");
                    n += 32;
                }
                n
            })
        })
        .collect();
    let mut con = server.client();
    for fork in 0..FORKS {
        assert!(
            Instant::now() < deadline,
            "only {fork} forks within the time bound"
        );
        let reply: String = query(&mut con, &["BGSAVE"]);
        assert_eq!(reply, "Background saving started");
        wait_bgsave_done(&mut con, Duration::from_secs(20));
        assert_eq!(
            info_field(&mut con, "persistence", "rdb_last_bgsave_status"),
            "ok",
            "fork {fork} failed"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(written > 0);
    assert_eq!(
        info_field(&mut con, "persistence", "rdb_saves"),
        FORKS.to_string()
    );
    assert_eq!(
        info_field(&mut con, "stats", "total_forks"),
        FORKS.to_string()
    );
    // The last file is a consistent snapshot: it loads.
    let _: () = query(&mut con, &["SAVE"]);
    let saved = digest(&server);
    let server = server.restart(&[]);
    assert_eq!(digest(&server), saved);
}
