//! Starting from configuration files the way redis-server does.

mod support;

use std::time::Duration;

use support::{query, ringkv_binary, run_program, Server};

#[test]
fn debians_redis_conf_starts_ringkv_with_warnings_for_ignored_directives() {
    let conf = std::path::Path::new("/etc/redis/redis.conf");
    assert!(
        conf.exists(),
        "/etc/redis/redis.conf missing: apt-get install -y redis-server"
    );
    // Debian's file daemonizes and writes under /var; the flags after it win, as in Redis.
    let server = Server::start(&[
        "/etc/redis/redis.conf",
        "--daemonize",
        "no",
        "--pidfile",
        "",
        "--supervised",
        "no",
    ]);
    let mut con = server.client();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let port: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query(&mut con)
        .unwrap();
    assert_eq!(port, vec!["port".to_string(), server.port.to_string()]);
    let log = server.log();
    assert!(log.contains("Configuration loaded from"), "{log}");
}

#[test]
fn unknown_directive_stops_the_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.conf");
    std::fs::write(&path, "port 7777\n# a comment\nno-such-directive yes\n").unwrap();
    let (code, _out, err) = run_program(
        &ringkv_binary(),
        &[path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_ne!(code, 0);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("no-such-directive"), "{err}");
    assert!(err.contains("bad.conf"), "{err}");
}

#[test]
fn malformed_value_stops_the_start() {
    let (code, _out, err) = run_program(
        &ringkv_binary(),
        &["--port", "notanumber"],
        Duration::from_secs(10),
    );
    assert_ne!(code, 0);
    assert!(err.contains("port"), "{err}");
}

#[test]
fn command_line_flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringkv.conf");
    std::fs::write(&path, "databases 4\nhz 20\n").unwrap();
    let server = Server::start(&[path.to_str().unwrap(), "--hz", "50"]);
    let mut con = server.client();
    let hz: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query(&mut con)
        .unwrap();
    assert_eq!(hz[1], "50");
    let error = redis::cmd("SELECT")
        .arg(4)
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        error.to_string().contains("DB index is out of range"),
        "{error}"
    );
}

/// `THP_enabled` of a process, from `/proc/<pid>/status`.
fn thp_enabled(server: &Server) -> String {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .unwrap_or_else(|| panic!("no THP_enabled in /proc/<pid>/status:\n{status}"))
        .trim()
        .to_string()
}

#[test]
fn disable_thp_turns_transparent_huge_pages_off_for_the_process() {
    let default = Server::start(&[]);
    let mut con = default.client();
    let value: Vec<String> = query(&mut con, &["CONFIG", "GET", "disable-thp"]);
    assert_eq!(value, ["disable-thp", "no"]);
    assert_eq!(thp_enabled(&default), "1");

    let disabled = Server::start(&["--disable-thp", "yes"]);
    let mut con = disabled.client();
    let value: Vec<String> = query(&mut con, &["CONFIG", "GET", "disable-thp"]);
    assert_eq!(value, ["disable-thp", "yes"]);
    assert_eq!(thp_enabled(&disabled), "0");
    // Set at start only, as in Redis.
    let error = redis::cmd("CONFIG")
        .arg("SET")
        .arg("disable-thp")
        .arg("no")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        error.to_string().contains("can't set immutable config"),
        "{error}"
    );
    assert!(
        !disabled.log().contains("disable-thp"),
        "{}",
        disabled.log()
    );
}
