//! Server commands against a real ringkv-server, compared with a real redis-server 7.0 where
//! exactness matters: INFO's sections and field order, CONFIG, COMMAND, DEBUG, MONITOR,
//! SHUTDOWN and signals.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::Server;

/// Encodes `args` as a RESP multibulk request.
fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", arg.len(), arg).as_bytes());
    }
    out
}

/// Reads one whole reply and returns its raw protocol text.
fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply line");
    assert!(line.ends_with("\r\n"), "truncated reply: {line:?}");
    let mut out = line.clone();
    let body = &line[1..line.len() - 2];
    match line.as_bytes()[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' => {}
        b'$' | b'=' => {
            let len: i64 = body.parse().unwrap();
            if len >= 0 {
                let mut data = vec![0u8; len as usize + 2];
                reader.read_exact(&mut data).unwrap();
                out.push_str(&String::from_utf8_lossy(&data));
            }
        }
        b'*' | b'~' | b'>' => {
            let n: i64 = body.parse().unwrap();
            for _ in 0..n.max(0) {
                out.push_str(&read_reply(reader));
            }
        }
        b'%' => {
            let n: i64 = body.parse().unwrap();
            for _ in 0..2 * n {
                out.push_str(&read_reply(reader));
            }
        }
        other => panic!("unexpected reply type {:?}", other as char),
    }
    out
}

/// Runs `commands` on one fresh connection and returns each raw reply.
fn raw_replies(server: &Server, commands: &[&[&str]]) -> Vec<String> {
    let stream = server.raw();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    commands
        .iter()
        .map(|command| {
            writer.write_all(&request(command)).unwrap();
            read_reply(&mut reader)
        })
        .collect()
}

/// INFO text → [(section header, [field names])], in order.
fn info_layout(text: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.split("\r\n") {
        if let Some(header) = line.strip_prefix("# ") {
            sections.push((header.to_string(), Vec::new()));
        } else if let Some((name, _)) = line.split_once(':') {
            sections
                .last_mut()
                .expect("field before any section")
                .1
                .push(name.to_string());
        }
    }
    sections
}

fn info(server: &Server, sections: &[&str]) -> String {
    let mut con = server.client();
    let mut cmd = redis::cmd("INFO");
    for s in sections {
        cmd.arg(*s);
    }
    cmd.query::<String>(&mut con).unwrap()
}

/// True if `needles` appear in `haystack` in the same relative order.
fn is_subsequence(needles: &[String], haystack: &[String]) -> Result<(), String> {
    let mut rest = haystack.iter();
    for needle in needles {
        if !rest.any(|h| h == needle) {
            return Err(format!("{needle} missing or out of order"));
        }
    }
    Ok(())
}

#[test]
fn info_everything_has_redis_sections_and_fields_in_redis_order() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for server in [&ringkv, &redis] {
        let mut con = server.client();
        redis::cmd("DEBUG")
            .arg("POPULATE")
            .arg(10)
            .query::<()>(&mut con)
            .unwrap();
    }
    let ours = info_layout(&info(&ringkv, &["everything"]));
    let theirs = info_layout(&info(&redis, &["everything"]));
    let our_headers: Vec<&String> = ours.iter().map(|(h, _)| h).collect();
    let their_headers: Vec<&String> = theirs.iter().map(|(h, _)| h).collect();
    assert_eq!(our_headers, their_headers);
    for section in [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Cluster",
        "Keyspace",
    ] {
        let fields = |layout: &[(String, Vec<String>)]| {
            layout
                .iter()
                .find(|(h, _)| h == section)
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        let (our_fields, their_fields) = (fields(&ours), fields(&theirs));
        if let Err(problem) = is_subsequence(&their_fields, &our_fields) {
            panic!("section {section}: {problem}\nours: {our_fields:?}\nredis: {their_fields:?}");
        }
    }
}

#[test]
fn info_sections_follow_redis_selection_rules() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for args in [
        vec![],
        vec!["default"],
        vec!["all"],
        vec!["keyspace", "SERVER"],
        vec!["cpu", "modules"],
        vec!["nosuch"],
    ] {
        let headers = |server: &Server| -> Vec<String> {
            info_layout(&info(server, &args))
                .into_iter()
                .map(|(h, _)| h)
                .collect()
        };
        assert_eq!(headers(&ringkv), headers(&redis), "INFO {args:?}");
    }
    assert_eq!(info(&ringkv, &["nosuch"]), "");
    let server = info(&ringkv, &["server"]);
    assert!(
        server.starts_with("# Server\r\nredis_version:7.0.15\r\n"),
        "{server}"
    );
    assert!(server.contains("\r\nringkv_version:"));
    assert!(server.contains(&format!("\r\ntcp_port:{}\r\n", ringkv.port)));
    let replication = info(&ringkv, &["replication"]);
    let replid = replication
        .split("\r\n")
        .find_map(|l| l.strip_prefix("master_replid:"))
        .unwrap();
    assert_eq!(replid.len(), 40);
    assert!(replication.contains("\r\nrole:master\r\nconnected_slaves:0\r\n"));
}

#[test]
fn info_counts_clients_commands_and_keys() {
    let ringkv = Server::start(&[]);
    let mut con = ringkv.client();
    let _second = ringkv.client();
    redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(25)
        .query::<()>(&mut con)
        .unwrap();
    let text = info(&ringkv, &["clients", "stats", "keyspace"]);
    assert!(text.contains("\r\nconnected_clients:3\r\n"), "{text}");
    assert!(
        text.contains("\r\ndb0:keys=25,expires=0,avg_ttl=0\r\n"),
        "{text}"
    );
    let processed: u64 = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(processed >= 2, "{text}");
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query::<()>(&mut con)
        .unwrap();
    // After the reset only the new connection's own commands count: the redis crate's
    // CLIENT SETINFO handshake (an error on 7.0, but executed) and the INFO itself.
    let text = info(&ringkv, &["stats"]);
    let processed: u64 = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&processed), "{text}");
}

#[test]
fn config_get_and_set_round_trip_all_or_nothing() {
    let ringkv = Server::start(&[]);
    let mut con = ringkv.client();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .arg("timeout")
        .arg("30")
        .query(&mut con)
        .unwrap();
    let got: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .arg("timeout")
        .arg("timeou*")
        .query(&mut con)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["maxmemory-policy"], "allkeys-lru");
    assert_eq!(got["timeout"], "30");
    // One bad pair: nothing changes.
    let error = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("5")
        .arg("hz")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(error.to_string().contains("CONFIG SET failed"), "{error}");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("timeout")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, vec!["timeout", "30"]);
    let text = info(&ringkv, &["memory"]);
    assert!(
        text.contains("\r\nmaxmemory_policy:allkeys-lru\r\n"),
        "{text}"
    );
}

#[test]
fn config_and_server_errors_match_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let commands: &[&[&str]] = &[
        &["CONFIG", "GET"],
        &["CONFIG", "SET", "hz"],
        &["CONFIG", "SET", "hz", "10", "timeout"],
        &["CONFIG", "SET", "hz", "10", "hz", "11"],
        &["CONFIG", "SET", "nosuch", "1"],
        &["CONFIG", "SET", "databases", "4"],
        &["CONFIG", "SET", "timeout", "x"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "GET", "nosuch*"],
        &["CONFIG", "REWRITE"],
        &["CONFIG", "nosuch"],
        &["CONFIG", "HELP"],
        &["COMMAND", "nosuch"],
        &["COMMAND", "COUNT", "x"],
        &["COMMAND", "GETKEYS", "nosuch", "a"],
        &["COMMAND", "GETKEYS", "ping", "x"],
        &["COMMAND", "GETKEYS", "echo"],
        &["COMMAND", "INFO", "nosuchcommand"],
        &["DEBUG", "nosuch"],
        &["DEBUG", "POPULATE", "-1"],
        &["DEBUG", "OBJECT", "nokey"],
        &["DEBUG", "DIGEST"],
        &["DEBUG", "DIGEST-VALUE", "nokey"],
        &["DEBUG", "SLEEP", "0"],
        &["DEBUG", "SET-ACTIVE-EXPIRE", "1"],
        &["SHUTDOWN", "ABORT"],
        &["SHUTDOWN", "bogus"],
        &["ROLE"],
        &["WAIT", "0", "0"],
        &["WAIT", "x", "0"],
        &["TIME", "x"],
        &["SLOWLOG", "GET"],
        &["SLOWLOG", "LEN"],
        &["SLOWLOG", "RESET"],
        &["SLOWLOG", "nosuch"],
        &["LATENCY", "LATEST"],
        &["LATENCY", "nosuch"],
        &["MEMORY", "USAGE", "nokey"],
        &["MEMORY", "nosuch"],
        &["INFO", "nosuch"],
    ];
    let ours = raw_replies(&ringkv, commands);
    let theirs = raw_replies(&redis, commands);
    for ((command, our), their) in commands.iter().zip(&ours).zip(&theirs) {
        assert_eq!(our, their, "{command:?}");
    }
    // Redis lists in hash-table order: compare as sets.
    let list = |server: &Server| -> Vec<String> {
        let mut names: Vec<String> = redis::cmd("COMMAND")
            .arg("LIST")
            .arg("FILTERBY")
            .arg("PATTERN")
            .arg("conf*")
            .query(&mut server.client())
            .unwrap();
        names.sort();
        names
    };
    assert_eq!(list(&ringkv), list(&redis));
}

#[test]
fn command_info_matches_redis_for_server_commands() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut ours).unwrap();
    assert!(count > 5, "{count}");
    for name in [
        "info", "time", "lastsave", "role", "monitor", "debug", "shutdown", "wait",
    ] {
        let info = |con: &mut redis::Connection| -> Vec<redis::Value> {
            let reply: Vec<Vec<redis::Value>> = redis::cmd("COMMAND")
                .arg("INFO")
                .arg(name)
                .query(con)
                .unwrap();
            // name, arity, flags, first, last, step, ACL categories.
            reply[0][..7].to_vec()
        };
        assert_eq!(info(&mut ours), info(&mut theirs), "COMMAND INFO {name}");
    }
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut ours).unwrap();
    assert_eq!(all.len() as i64, count);
    let docs: redis::Value = redis::cmd("COMMAND").arg("DOCS").query(&mut ours).unwrap();
    match docs {
        redis::Value::Array(items) | redis::Value::Set(items) => {
            assert_eq!(items.len() as i64, 2 * count)
        }
        redis::Value::Map(pairs) => assert_eq!(pairs.len() as i64, count),
        other => panic!("COMMAND DOCS: {other:?}"),
    }
}

#[test]
fn maxmemory_makes_a_big_set_fail_with_redis_oom_text() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let big = "x".repeat(2 << 20);
    let commands: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory", "1mb"],
        &["CONFIG", "GET", "maxmemory"],
        &["SET", "big", &big],
    ];
    let ours = raw_replies(&ringkv, commands);
    let theirs = raw_replies(&redis, commands);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours[2],
        "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
}

#[test]
fn debug_digest_is_zero_when_empty_and_tracks_writes_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let digest = |server: &Server| -> String {
        let mut con = server.client();
        redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap()
    };
    assert_eq!(digest(&ringkv), "0".repeat(40));
    let commands: &[&[&str]] = &[
        &["DEBUG", "POPULATE", "50", "k", "12"],
        &["DEBUG", "DIGEST"],
        &["DEBUG", "DIGEST-VALUE", "k:1", "k:49", "missing"],
        &["DEBUG", "POPULATE", "60", "k"],
        &["DEBUG", "DIGEST"],
    ];
    let ours = raw_replies(&ringkv, commands);
    assert_ne!(ours[1], format!("+{}\r\n", "0".repeat(40)));
    assert_eq!(ours, raw_replies(&redis, commands));
}

#[test]
fn debug_is_refused_when_disabled_with_redis_text() {
    let ringkv = Server::start(&["--enable-debug-command", "no"]);
    let redis = Server::start_redis(&["--enable-debug-command", "no"]);
    let commands: &[&[&str]] = &[&["DEBUG", "DIGEST"], &["DEBUG", "SLEEP", "0"]];
    let ours = raw_replies(&ringkv, commands);
    assert_eq!(ours, raw_replies(&redis, commands));
    assert!(
        ours[0].starts_with("-ERR DEBUG command not allowed."),
        "{}",
        ours[0]
    );
    let local = Server::start(&["--enable-debug-command", "local"]);
    assert_eq!(
        raw_replies(&local, &[&["DEBUG", "SLEEP", "0"]]),
        vec!["+OK\r\n"]
    );
}

#[test]
fn debug_populate_creates_keys_and_skips_existing_ones() {
    let ringkv = Server::start(&[]);
    let mut con = ringkv.client();
    let () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(150)
        .query(&mut con)
        .unwrap();
    assert!(info(&ringkv, &["keyspace"]).contains("db0:keys=150,expires=0"));
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 150);
}

#[test]
fn debug_sleep_stops_the_whole_server() {
    let ringkv = Server::start(&[]);
    let mut sleeper = ringkv.raw();
    sleeper
        .write_all(&request(&["DEBUG", "SLEEP", "0.5"]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let mut con = ringkv.client();
    let _: String = redis::cmd("PING").query(&mut con).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let mut reply = [0u8; 5];
    sleeper.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
}

#[test]
fn monitor_receives_commands_of_other_connections() {
    let ringkv = Server::start(&[]);
    let monitor = ringkv.raw();
    let mut writer = monitor.try_clone().unwrap();
    let mut reader = BufReader::new(monitor);
    writer.write_all(b"MONITOR\r\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    let mut con = ringkv.client();
    let _: String = redis::cmd("ECHO")
        .arg("hello \"x\"")
        .query(&mut con)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "no MONITOR line");
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.contains("\"ECHO\"") {
            break;
        }
    }
    assert!(line.starts_with('+'), "{line}");
    assert!(
        line.ends_with("] \"ECHO\" \"hello \\\"x\\\"\"\r\n"),
        "{line}"
    );
    assert!(line.contains(" [0 127.0.0.1:"), "{line}");
}

#[test]
fn shutdown_nosave_exits_with_status_zero() {
    let mut ringkv = Server::start(&[]);
    let mut stream = ringkv.raw();
    stream.write_all(b"SHUTDOWN NOSAVE\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert_eq!(ringkv.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(ringkv.log().contains("User requested shutdown..."));
}

#[test]
fn sigterm_exits_with_status_zero() {
    let mut ringkv = Server::start(&[]);
    ringkv.signal(libc::SIGTERM);
    assert_eq!(ringkv.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(ringkv
        .log()
        .contains("Received SIGTERM scheduling shutdown..."));
}

#[test]
fn time_and_lastsave_report_unix_seconds() {
    let ringkv = Server::start(&[]);
    let mut con = ringkv.client();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(seconds.abs_diff(now) <= 2);
    assert!(micros < 1_000_000);
    let lastsave: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(lastsave <= seconds && seconds - lastsave < 60);
}
