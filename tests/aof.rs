//! The append-only file, whole-server: restarts, exchange of AOF directories with a real
//! redis-server 7.0 in both directions, rewrites under load, truncated and corrupt files,
//! `appendfsync always` against `kill -9`, write errors.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::resp::{Int, Raw, Status, Value};
use support::{workload, Server};

const AOF_DIR: &str = "appendonlydir";

fn aof_dir(server: &Server) -> PathBuf {
    server.dir.path().join(AOF_DIR)
}

fn info_field(server: &Server, name: &str) -> String {
    let mut con = server.client();
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut con)
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO persistence has no {name}:\n{info}"))
        .to_string()
}

/// Waits (bounded) until no rewrite runs and `aof_rewrites` reached `count`.
fn wait_rewrite_done(server: &Server, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let rewrites: u64 = info_field(server, "aof_rewrites").parse().unwrap();
        if rewrites >= count
            && info_field(server, "aof_rewrite_in_progress") == "0"
            && info_field(server, "aof_rewrite_scheduled") == "0"
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "rewrite {count} did not finish within 60 s; log:\n{}",
        server.log()
    );
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap_or_default()
}

/// The workload shared with the snapshot tests, plus TTLs given in every relative form.
fn commands() -> Vec<Vec<String>> {
    let mut commands = workload::commands();
    let extra: &[&[&str]] = &[
        &["SELECT", "7"],
        &["SET", "ttl:ex", "v", "EX", "100000"],
        &["SET", "ttl:px", "v", "PX", "100000000"],
        &["SETEX", "ttl:setex", "100000", "v"],
        &["RPUSH", "ttl:list", "a", "b"],
        &["EXPIRE", "ttl:list", "100000"],
        &["HSET", "ttl:hash", "f", "v"],
        &["PEXPIREAT", "ttl:hash", "4102444800000"],
        &["MULTI"],
        &["INCR", "in-multi"],
        &["SADD", "in-multi-set", "x"],
        &["EXEC"],
    ];
    commands.extend(
        extra
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect()),
    );
    commands
}

/// Stops a server with SHUTDOWN NOSAVE (which writes and fsyncs what the AOF holds) and
/// waits for it to exit. Tests that are not about `kill -9` stop servers this way: under
/// `everysec` an acknowledged write may still be on its way to the kernel for a fraction of
/// a millisecond, which a SIGKILL at that instant would lose (as `everysec` allows).
fn shut_down(mut server: Server) -> Server {
    let mut raw = Raw::new(&server);
    raw.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(raw.closed_by_server());
    assert_eq!(
        server.wait_exit(Duration::from_secs(20)),
        Some(0),
        "log:\n{}",
        server.log()
    );
    server
}

fn ringkv_aof(extra: &[&str]) -> Server {
    let mut args = vec!["--appendonly", "yes"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn restart_and_compare(server: Server, extra: &[&str]) -> Server {
    let before = workload::digest(&server);
    let mut args = vec!["--appendonly", "yes"];
    args.extend_from_slice(extra);
    let server = shut_down(server).restart(&args);
    assert_eq!(
        workload::digest(&server),
        before,
        "digest changed over a restart; log:\n{}",
        server.log()
    );
    server
}

#[test]
fn restart_keeps_every_type_and_ttl_with_commands_base() {
    let server = ringkv_aof(&["--aof-use-rdb-preamble", "no"]);
    workload::apply(&server, &commands());
    std::thread::sleep(Duration::from_millis(20));
    let server = restart_and_compare(server, &["--aof-use-rdb-preamble", "no"]);
    let mut raw = Raw::new(&server);
    raw.call(&["SELECT", "7"]);
    let Int(ttl) = raw.call(&["TTL", "ttl:ex"]) else {
        panic!("TTL is not an integer");
    };
    assert!((99_000..=100_000).contains(&ttl), "ttl {ttl}");
    assert!(server.log().contains("DB loaded from append only file"));
}

#[test]
fn keys_that_expired_while_down_stay_expired() {
    let server = ringkv_aof(&["--aof-use-rdb-preamble", "no"]);
    let mut raw = Raw::new(&server);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 400;
    raw.call(&["RPUSH", "list", "a"]);
    raw.call(&["PEXPIREAT", "list", &now_ms.to_string()]);
    raw.call(&["RPUSH", "list", "b"]);
    raw.call(&["SET", "short", "v", "PX", "300"]);
    raw.call(&["SET", "kept", "v"]);
    std::thread::sleep(Duration::from_millis(600));
    // Replayed after their TTL passed, the commands must still act on the same keys (Redis
    // expires nothing while loading), so the list comes back with its TTL and then expires.
    let server = shut_down(server).restart(&["--appendonly", "yes"]);
    let mut raw = Raw::new(&server);
    assert_eq!(raw.call(&["EXISTS", "list"]), Int(0));
    assert_eq!(raw.call(&["EXISTS", "short"]), Int(0));
    assert_eq!(raw.call(&["EXISTS", "kept"]), Int(1));
}

#[test]
fn restart_keeps_every_type_and_ttl_with_rdb_base() {
    let server = ringkv_aof(&[]);
    workload::apply(&server, &commands());
    restart_and_compare(server, &[]);
}

#[test]
fn redis_loads_the_aof_directory_ringkv_wrote() {
    for preamble in ["no", "yes"] {
        let server = ringkv_aof(&["--aof-use-rdb-preamble", preamble]);
        workload::apply(&server, &commands());
        if preamble == "yes" {
            // Base from a rewrite plus commands after it.
            run(&server, &["BGREWRITEAOF"]);
            wait_rewrite_done(&server, 1);
            run(&server, &["SET", "after-rewrite", "1"]);
        }
        let expected = workload::digest(&server);
        let redis = shut_down(server).restart_as_redis(&["--appendonly", "yes"]);
        assert_eq!(
            workload::digest(&redis),
            expected,
            "preamble {preamble}; redis log:\n{}",
            redis.log()
        );
    }
}

#[test]
fn redis_check_aof_finds_ringkv_directories_valid() {
    let checker = support::redis_program("redis-check-aof");
    for preamble in ["no", "yes"] {
        let server = ringkv_aof(&["--aof-use-rdb-preamble", preamble]);
        workload::apply(&server, &commands()[..500]);
        run(&server, &["BGREWRITEAOF"]);
        wait_rewrite_done(&server, 1);
        workload::apply(&server, &commands()[500..]);
        let server = shut_down(server);
        let manifest_path = aof_dir(&server).join("appendonly.aof.manifest");
        let (status, stdout, stderr) = support::run_program(
            &checker,
            &[manifest_path.to_str().unwrap()],
            Duration::from_secs(60),
        );
        assert_eq!(status, 0, "preamble {preamble}: {stdout}{stderr}");
        assert!(
            stdout.contains("All AOF files and manifest are valid"),
            "preamble {preamble}: {stdout}"
        );
    }
}

#[test]
fn ringkv_loads_the_aof_directory_redis_wrote() {
    for preamble in ["no", "yes"] {
        let redis =
            Server::start_redis(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        workload::apply(&redis, &commands()[..commands().len() / 2]);
        run(&redis, &["BGREWRITEAOF"]);
        wait_rewrite_done(&redis, 1);
        workload::apply(&redis, &commands()[commands().len() / 2..]);
        let expected = workload::digest(&redis);
        let ours = shut_down(redis).restart(&["--appendonly", "yes"]);
        assert_eq!(
            workload::digest(&ours),
            expected,
            "preamble {preamble}; log:\n{}",
            ours.log()
        );
        // And ringkv goes on appending to Redis' files.
        run(&ours, &["SET", "more", "1"]);
        let expected = workload::digest(&ours);
        let again = shut_down(ours).restart(&["--appendonly", "yes"]);
        assert_eq!(workload::digest(&again), expected);
    }
}

fn run(server: &Server, args: &[&str]) -> redis::Value {
    let mut con = server.client();
    support::run(&mut con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Writers on several connections until `stop`; returns their handles.
fn start_writers(
    server: &Server,
    count: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    (0..count)
        .map(|index| {
            let mut con = server.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && done < 200_000 {
                    let key = format!("w{index}:{}", done % 500);
                    let result: redis::RedisResult<()> = redis::pipe()
                        .cmd("INCR")
                        .arg(format!("counter{index}"))
                        .ignore()
                        .cmd("RPUSH")
                        .arg(&key)
                        .arg(done)
                        .ignore()
                        .cmd("HSET")
                        .arg(format!("h{index}"))
                        .arg(done % 300)
                        .arg(done)
                        .ignore()
                        .query(&mut con);
                    if result.is_err() {
                        break;
                    }
                    done += 1;
                }
                done
            })
        })
        .collect()
}

#[test]
fn bgrewriteaof_under_writes_then_restart() {
    for preamble in ["no", "yes"] {
        let server = ringkv_aof(&["--aof-use-rdb-preamble", preamble]);
        workload::apply(&server, &commands());
        let stop = Arc::new(AtomicBool::new(false));
        let writers = start_writers(&server, 3, &stop);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            Raw::new(&server).call(&["BGREWRITEAOF"]),
            Status("Background append only file rewriting started".into())
        );
        wait_rewrite_done(&server, 1);
        std::thread::sleep(Duration::from_millis(200));
        run(&server, &["BGREWRITEAOF"]);
        wait_rewrite_done(&server, 2);
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(written > 0);
        let dir = aof_dir(&server);
        let text = manifest(&dir);
        let suffix = if preamble == "yes" { "rdb" } else { "aof" };
        assert!(
            text.starts_with(&format!(
                "file appendonly.aof.3.base.{suffix} seq 3 type b\n"
            )),
            "{text}"
        );
        assert!(
            text.ends_with("file appendonly.aof.3.incr.aof seq 3 type i\n"),
            "{text}"
        );
        assert!(!text.contains("type h"), "{text}");
        // History files are gone (deleted on a helper thread: allow it a moment).
        let deadline = Instant::now() + Duration::from_secs(10);
        while dir.join("appendonly.aof.1.incr.aof").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!dir.join("appendonly.aof.1.incr.aof").exists());
        assert!(!dir.join(format!("appendonly.aof.1.base.{suffix}")).exists());
        assert_eq!(info_field(&server, "aof_last_bgrewrite_status"), "ok");
        restart_and_compare(server, &["--aof-use-rdb-preamble", preamble]);
    }
}

#[test]
fn bgrewriteaof_replies_like_redis() {
    let server = ringkv_aof(&[
        "--aof-use-rdb-preamble",
        "no",
        "--rdb-key-save-delay",
        "2000",
    ]);
    for i in 0..500 {
        run(&server, &["SET", &format!("k{i}"), "v"]);
    }
    let mut raw = Raw::new(&server);
    assert_eq!(
        raw.call(&["BGREWRITEAOF"]),
        Status("Background append only file rewriting started".into())
    );
    assert_eq!(
        raw.call(&["BGREWRITEAOF"]),
        Value::Error("ERR Background append only file rewriting already in progress".into())
    );
    assert_eq!(info_field(&server, "aof_rewrite_in_progress"), "1");
    wait_rewrite_done(&server, 1);
    // Inside MULTI a rewrite is scheduled, and cron starts it.
    raw.call(&["MULTI"]);
    raw.call(&["BGREWRITEAOF"]);
    assert_eq!(
        raw.call(&["EXEC"]),
        Value::Array(vec![Status(
            "Background append only file rewriting scheduled".into()
        )])
    );
    wait_rewrite_done(&server, 2);
    assert_eq!(info_field(&server, "aof_last_bgrewrite_status"), "ok");
}

#[test]
fn bgrewriteaof_is_scheduled_while_bgsave_runs() {
    let server = ringkv_aof(&["--rdb-key-save-delay", "2000"]);
    for i in 0..1000 {
        run(&server, &["SET", &format!("k{i}"), "v"]);
    }
    let mut raw = Raw::new(&server);
    assert_eq!(
        raw.call(&["BGSAVE"]),
        Status("Background saving started".into())
    );
    assert_eq!(
        raw.call(&["BGREWRITEAOF"]),
        Status("Background append only file rewriting scheduled".into())
    );
    assert_eq!(info_field(&server, "aof_rewrite_scheduled"), "1");
    wait_rewrite_done(&server, 1);
    restart_and_compare(server, &[]);
}

#[test]
fn config_set_appendonly_creates_the_aof_by_rewrite() {
    for preamble in ["no", "yes"] {
        let server = Server::start(&["--aof-use-rdb-preamble", preamble]);
        workload::apply(&server, &commands());
        assert!(!aof_dir(&server).exists());
        assert_eq!(info_field(&server, "aof_enabled"), "0");
        run(&server, &["CONFIG", "SET", "appendonly", "yes"]);
        assert_eq!(info_field(&server, "aof_enabled"), "1");
        // Writes while the first rewrite runs land in the temporary incr file.
        run(&server, &["SET", "during", "1"]);
        wait_rewrite_done(&server, 1);
        run(&server, &["SET", "after", "1"]);
        let text = manifest(&aof_dir(&server));
        let suffix = if preamble == "yes" { "rdb" } else { "aof" };
        assert_eq!(
            text,
            format!("file appendonly.aof.1.base.{suffix} seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
        );
        let server = restart_and_compare(server, &["--aof-use-rdb-preamble", preamble]);
        // Turning it off stops appending.
        run(&server, &["CONFIG", "SET", "appendonly", "no"]);
        assert_eq!(info_field(&server, "aof_enabled"), "0");
        let incr = aof_dir(&server).join("appendonly.aof.1.incr.aof");
        let size = std::fs::metadata(&incr).unwrap().len();
        run(&server, &["SET", "not-logged", "1"]);
        assert_eq!(std::fs::metadata(&incr).unwrap().len(), size);
    }
}

/// Writes a few commands, stops the server, and returns its directory and digest.
fn small_aof() -> (tempfile::TempDir, String, Vec<u8>) {
    let server = ringkv_aof(&["--aof-use-rdb-preamble", "no"]);
    for i in 0..20 {
        run(&server, &["SET", &format!("k{i}"), &format!("value-{i}")]);
        run(&server, &["RPUSH", "list", &i.to_string()]);
    }
    let digest = workload::digest(&server);
    let dir = shut_down(server).into_dir();
    let incr = std::fs::read(dir.path().join(AOF_DIR).join("appendonly.aof.1.incr.aof")).unwrap();
    (dir, digest, incr)
}

#[test]
fn truncated_last_command_is_dropped_with_aof_load_truncated_yes() {
    let (dir, digest, incr) = small_aof();
    let path = dir.path().join(AOF_DIR).join("appendonly.aof.1.incr.aof");
    let mut damaged = incr.clone();
    damaged.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nval");
    std::fs::write(&path, &damaged).unwrap();
    let server = Server::start_in(dir, &["--appendonly", "yes", "--aof-load-truncated", "yes"]);
    assert_eq!(workload::digest(&server), digest);
    let log = server.log();
    assert!(
        log.contains(
            "!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"
        ),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {} !!!",
            incr.len()
        )),
        "{log}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), incr);
    // Appending goes on after the cut.
    run(&server, &["SET", "after", "1"]);
    let expected = workload::digest(&server);
    let server = shut_down(server).restart(&["--appendonly", "yes"]);
    assert_eq!(workload::digest(&server), expected);
}

#[test]
fn incomplete_multi_at_the_end_is_reverted() {
    let (dir, digest, incr) = small_aof();
    let path = dir.path().join(AOF_DIR).join("appendonly.aof.1.incr.aof");
    let mut damaged = incr.clone();
    damaged.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n");
    std::fs::write(&path, &damaged).unwrap();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    assert_eq!(workload::digest(&server), digest);
    assert!(server.log().contains(
        "Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"
    ));
    assert_eq!(std::fs::read(&path).unwrap(), incr);
}

#[test]
fn truncated_file_is_refused_with_aof_load_truncated_no() {
    let (dir, _digest, incr) = small_aof();
    let path = dir.path().join(AOF_DIR).join("appendonly.aof.1.incr.aof");
    let mut damaged = incr.clone();
    damaged.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nval");
    std::fs::write(&path, &damaged).unwrap();
    let (status, stderr, log) = support::start_must_fail(
        dir.path(),
        &["--appendonly", "yes", "--aof-load-truncated", "no"],
    );
    assert_eq!(status, 1, "stderr: {stderr}\nlog: {log}");
    let expected = format!(
        "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof at offset {} (argument of 5 bytes cut short)",
        incr.len() + 27
    );
    assert!(log.contains(&expected), "{log}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "file must be untouched"
    );
}

#[test]
fn corrupt_middle_is_refused_and_left_untouched() {
    let (dir, _digest, incr) = small_aof();
    let path = dir.path().join(AOF_DIR).join("appendonly.aof.1.incr.aof");
    // The first byte of a command in the middle of the file.
    let middle = incr.len() / 2;
    let offset = middle
        + incr[middle..]
            .windows(3)
            .position(|w| w == b"\n*3")
            .unwrap()
        + 1;
    let mut damaged = incr.clone();
    damaged[offset] = b'?';
    std::fs::write(&path, &damaged).unwrap();
    for truncated_ok in ["yes", "no"] {
        let (status, stderr, log) = support::start_must_fail(
            dir.path(),
            &["--appendonly", "yes", "--aof-load-truncated", truncated_ok],
        );
        assert_eq!(status, 1, "stderr: {stderr}\nlog: {log}");
        let expected = format!(
            "Bad file format reading the append only file appendonly.aof.1.incr.aof at offset {offset}: expected '*' starting a command, found '?'"
        );
        assert!(log.contains(&expected), "{log}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damaged,
            "file must be untouched"
        );
    }
}

#[test]
fn bad_manifest_is_refused_naming_the_line() {
    let (dir, _digest, _incr) = small_aof();
    let path = dir.path().join(AOF_DIR).join("appendonly.aof.manifest");
    let text = "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type z\n";
    std::fs::write(&path, text).unwrap();
    let (status, _stderr, log) = support::start_must_fail(dir.path(), &["--appendonly", "yes"]);
    assert_eq!(status, 1);
    assert!(
        log.contains(
            "Unknown AOF file type at line 2: 'file appendonly.aof.1.incr.aof seq 1 type z'"
        ),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn old_single_file_aof_is_migrated_into_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let old = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$5\r\nvalue\r\n*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\nx\r\n";
    std::fs::write(dir.path().join("appendonly.aof"), old).unwrap();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut con = server.client();
    let value: String = redis::cmd("GET").arg("old").query(&mut con).unwrap();
    assert_eq!(value, "value");
    assert!(server
        .log()
        .contains("Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."));
    assert!(!server.dir.path().join("appendonly.aof").exists());
    assert_eq!(
        manifest(&aof_dir(&server)),
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let expected = workload::digest(&server);
    let redis = shut_down(server).restart_as_redis(&["--appendonly", "yes"]);
    assert_eq!(workload::digest(&redis), expected);
}

#[test]
fn old_single_file_aof_with_an_rdb_preamble_loads_both_parts() {
    // An RDB preamble as ringkv writes it for a base, followed by commands: the layout of a
    // Redis 4-6 `appendonly.aof` with aof-use-rdb-preamble.
    let source = ringkv_aof(&[]);
    run(&source, &["SET", "from-rdb", "1"]);
    run(&source, &["RPUSH", "list", "a", "b"]);
    run(&source, &["BGREWRITEAOF"]);
    wait_rewrite_done(&source, 1);
    let base = std::fs::read(aof_dir(&source).join("appendonly.aof.2.base.rdb")).unwrap();
    assert!(base.starts_with(b"REDIS"));
    let mut old = base;
    old.extend_from_slice(
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$9\r\nfrom-tail\r\n$1\r\n2\r\n*3\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n$1\r\nc\r\n",
    );
    drop(shut_down(source));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("appendonly.aof"), &old).unwrap();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut raw = Raw::new(&server);
    assert_eq!(raw.call(&["GET", "from-rdb"]), Value::Bulk(b"1".to_vec()));
    assert_eq!(raw.call(&["GET", "from-tail"]), Value::Bulk(b"2".to_vec()));
    assert_eq!(
        raw.call(&["LRANGE", "list", "0", "-1"]),
        Value::Array(vec![
            Value::Bulk(b"a".to_vec()),
            Value::Bulk(b"b".to_vec()),
            Value::Bulk(b"c".to_vec())
        ])
    );
    let log = server.log();
    assert!(
        log.contains("Reading RDB preamble from AOF file..."),
        "{log}"
    );
    assert!(log.contains("Reading the remaining AOF tail..."), "{log}");
}

#[test]
fn bgrewriteaof_with_appendonly_off_writes_a_base_and_manifest() {
    let server = Server::start(&[]);
    workload::apply(&server, &commands());
    let expected = workload::digest(&server);
    assert_eq!(
        Raw::new(&server).call(&["BGREWRITEAOF"]),
        Status("Background append only file rewriting started".into())
    );
    wait_rewrite_done(&server, 1);
    assert_eq!(
        manifest(&aof_dir(&server)),
        "file appendonly.aof.1.base.rdb seq 1 type b\n"
    );
    let server = shut_down(server).restart(&["--appendonly", "yes"]);
    assert_eq!(workload::digest(&server), expected);
    assert_eq!(
        manifest(&aof_dir(&server)),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}

#[test]
fn appendfsync_always_loses_no_acknowledged_write_on_kill_9() {
    let server = ringkv_aof(&["--appendfsync", "always", "--aof-use-rdb-preamble", "no"]);
    let pid = server.pid() as i32;
    const WRITERS: usize = 4;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| {
            let mut con = server.client();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                for _ in 0..1_000_000 {
                    if Instant::now() > deadline {
                        break;
                    }
                    match redis::cmd("INCR")
                        .arg(format!("c{index}"))
                        .query::<u64>(&mut con)
                    {
                        Ok(value) => acked[index].store(value, Ordering::SeqCst),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // Let every writer get going, then kill in the middle of the stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 50) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    for writer in writers {
        writer.join().unwrap();
    }
    let server = server.restart(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.client();
    for index in 0..WRITERS {
        let acknowledged = acked[index].load(Ordering::SeqCst);
        assert!(acknowledged >= 50, "writer {index} barely ran");
        let stored: u64 = redis::cmd("GET")
            .arg(format!("c{index}"))
            .query::<Option<u64>>(&mut con)
            .unwrap()
            .unwrap_or(0);
        assert!(
            stored >= acknowledged && stored <= acknowledged + 1,
            "writer {index}: acknowledged {acknowledged}, found {stored}"
        );
    }
}

#[test]
fn everysec_hands_every_acknowledged_write_to_the_kernel_within_milliseconds() {
    // hz 1: cron runs once a second, so only the completion-driven pump can write the tail
    // of the burst before the kill.
    let server = ringkv_aof(&["--aof-use-rdb-preamble", "no", "--hz", "1"]);
    let pid = server.pid() as i32;
    // Each writer keeps its connection open until after the kill: a connection closing
    // would take the keyspace lock and write what was held back.
    let writers: Vec<_> = (0..4)
        .map(|index| {
            let mut raw = Raw::new(&server);
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_millis(300);
                let mut acked = 0u64;
                while Instant::now() < deadline && acked < 1_000_000 {
                    match raw.call(&["INCR", &format!("counter{index}")]) {
                        Int(value) => acked = value as u64,
                        other => panic!("INCR: {other:?}"),
                    }
                }
                (acked, raw)
            })
        })
        .collect();
    // No request after the writers' last one: nothing but the AOF's own wake-up can write
    // what the last batches left behind.
    let finished: Vec<(u64, Raw)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let acknowledged: Vec<u64> = finished.iter().map(|(acked, _)| *acked).collect();
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    drop(finished);
    let server = server.restart(&["--appendonly", "yes"]);
    let mut raw = Raw::new(&server);
    for (index, acked) in acknowledged.iter().enumerate() {
        assert!(*acked > 0);
        assert_eq!(
            raw.call(&["GET", &format!("counter{index}")]),
            Value::Bulk(acked.to_string().into_bytes()),
            "writer {index}"
        );
    }
}

#[test]
fn kill_9_during_a_rewrite_leaves_a_loadable_aof() {
    for preamble in ["no", "yes"] {
        let server = ringkv_aof(&[
            "--aof-use-rdb-preamble",
            preamble,
            "--rdb-key-save-delay",
            "1000",
        ]);
        workload::apply(&server, &commands());
        run(&server, &["BGREWRITEAOF"]);
        assert_eq!(info_field(&server, "aof_rewrite_in_progress"), "1");
        // Writes after the fork go to the new incr file.
        for i in 0..100 {
            run(&server, &["SET", &format!("late{i}"), "v"]);
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(info_field(&server, "aof_rewrite_in_progress"), "1");
        let expected = workload::digest(&server);
        let dir = aof_dir(&server);
        let text = manifest(&dir);
        assert!(
            text.contains("appendonly.aof.2.incr.aof seq 2 type i"),
            "{text}"
        );
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
        let server = server.restart(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        assert_eq!(
            workload::digest(&server),
            expected,
            "log:\n{}",
            server.log()
        );
    }
}

#[test]
fn write_errors_refuse_writes_with_misconf() {
    // An AOF whose incr file is /dev/full: every write fails with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join(AOF_DIR);
    std::fs::create_dir(&aof).unwrap();
    std::fs::write(aof.join("appendonly.aof.1.base.aof"), b"").unwrap();
    std::os::unix::fs::symlink("/dev/full", aof.join("appendonly.aof.1.incr.aof")).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut raw = Raw::new(&server);
    // The first write is applied and answered (as in Redis); once its failure is known
    // (its completion arrives within microseconds), writes are refused.
    assert_eq!(raw.call(&["SET", "a", "1"]), Status("OK".into()));
    let misconf =
        Value::Error("MISCONF Errors writing to the AOF file: No space left on device".into());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reply = raw.call(&["SET", "b", "1"]);
    while reply != misconf && Instant::now() < deadline {
        assert_eq!(reply, Status("OK".into()));
        std::thread::sleep(Duration::from_millis(1));
        reply = raw.call(&["SET", "b", "1"]);
    }
    assert_eq!(reply, misconf);
    assert_eq!(raw.call(&["SET", "c", "1"]), misconf);
    assert_eq!(raw.call(&["PING"]), misconf);
    assert_eq!(raw.call(&["GET", "a"]), Value::Bulk(b"1".to_vec()));
    // Retries (each batch, and once a second from cron) keep failing: still refused.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(raw.call(&["SET", "c", "1"]), misconf);
    assert_eq!(info_field(&server, "aof_last_write_status"), "err");
    assert!(server
        .log()
        .contains("Error writing to the AOF file: No space left on device"));
}

#[test]
fn write_error_under_appendfsync_always_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join(AOF_DIR);
    std::fs::create_dir(&aof).unwrap();
    std::fs::write(aof.join("appendonly.aof.1.base.aof"), b"").unwrap();
    std::os::unix::fs::symlink("/dev/full", aof.join("appendonly.aof.1.incr.aof")).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let mut server = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut raw = Raw::new(&server);
    // No reply may claim a write that is not on disk: the connection closes instead.
    raw.send(&["SET", "a", "1"]);
    assert!(raw.closed_by_server());
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(1));
    assert!(server.log().contains(
        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
    ));
}

#[test]
fn info_reports_sizes_and_fsync_state() {
    let server = ringkv_aof(&["--aof-use-rdb-preamble", "no"]);
    run(&server, &["SET", "k", "v"]);
    let size: u64 = info_field(&server, "aof_current_size").parse().unwrap();
    // The write may still be completing in the kernel: the file catches up at once.
    let incr_path = aof_dir(&server).join("appendonly.aof.1.incr.aof");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&incr_path).unwrap().len() < size && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(size, std::fs::metadata(&incr_path).unwrap().len());
    assert_eq!(info_field(&server, "aof_base_size"), "0");
    assert_eq!(info_field(&server, "aof_buffer_length"), "0");
    assert_eq!(info_field(&server, "aof_last_write_status"), "ok");
    assert_eq!(info_field(&server, "aof_rewrites"), "0");
    let mut con = server.client();
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut con)
        .unwrap();
    let names: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| n.starts_with("aof_") || n.starts_with("module_fork"))
        .collect();
    assert_eq!(
        names,
        [
            "aof_enabled",
            "aof_rewrite_in_progress",
            "aof_rewrite_scheduled",
            "aof_last_rewrite_time_sec",
            "aof_current_rewrite_time_sec",
            "aof_last_bgrewrite_status",
            "aof_rewrites",
            "aof_rewrites_consecutive_failures",
            "aof_last_write_status",
            "aof_last_cow_size",
            "module_fork_in_progress",
            "module_fork_last_cow_size",
            "aof_current_size",
            "aof_base_size",
            "aof_pending_rewrite",
            "aof_buffer_length",
            "aof_pending_bio_fsync",
            "aof_delayed_fsync"
        ]
    );
}

#[test]
fn automatic_rewrite_fires_on_growth() {
    let server = ringkv_aof(&[
        "--aof-use-rdb-preamble",
        "no",
        "--auto-aof-rewrite-percentage",
        "100",
        "--auto-aof-rewrite-min-size",
        "10000",
    ]);
    let value = "x".repeat(100);
    for i in 0..200 {
        run(&server, &["SET", &format!("k{}", i % 10), &value]);
    }
    wait_rewrite_done(&server, 1);
    assert!(server
        .log()
        .contains("Starting automatic rewriting of AOF on"));
    // The rewrite compacted the writes made before it into at most 10 keys. The base file is
    // measured, not `aof_base_size`: that field adds the incremental file's size at the moment
    // the rewrite finished (as in Redis), which depends on how many writes ran meanwhile.
    let dir = aof_dir(&server);
    let text = manifest(&dir);
    let base_name = text
        .lines()
        .find(|line| line.ends_with("type b"))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no base in the manifest:\n{text}"));
    let base = std::fs::metadata(dir.join(base_name)).unwrap().len();
    assert!(base < 10 * 200, "base file {base_name} is {base} bytes");
    let info_base: u64 = info_field(&server, "aof_base_size").parse().unwrap();
    assert!(
        info_base >= base,
        "aof_base_size {info_base} < base file {base}"
    );
}
