//! Connection commands: AUTH, HELLO, RESET, SELECT and CLIENT, checked against Redis 7.0.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Server;

use support::resp::{bulk, error, ok, text, Array, Bulk, Int, Map, Nil, Raw, Status, Value};
/// `field=value` pairs of one CLIENT LIST / CLIENT INFO line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.trim_end()
        .split(' ')
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("field=value");
            (key.to_string(), value.to_string())
        })
        .collect()
}

fn field(line: &str, name: &str) -> String {
    fields(line)
        .into_iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .1
}

/// Replaces the per-connection `id` value of a HELLO reply, which differs between servers.
fn hello_without_id(value: Value) -> Value {
    let strip = |pairs: Vec<(Value, Value)>| -> Vec<(Value, Value)> {
        pairs
            .into_iter()
            .map(|(k, v)| if k == bulk("id") { (k, Int(0)) } else { (k, v) })
            .collect()
    };
    match value {
        Map(pairs) => Map(strip(pairs)),
        Array(items) => {
            let mut items = items;
            for i in (0..items.len()).step_by(2) {
                if items[i] == bulk("id") {
                    items[i + 1] = Int(0);
                }
            }
            Array(items)
        }
        other => other,
    }
}

/// Runs the same commands on a fresh connection to each server and returns both replies.
fn same_on_both(ringkv: &Server, redis: &Server, commands: &[&[&str]]) {
    let mut ours = Raw::new(ringkv);
    let mut theirs = Raw::new(redis);
    for command in commands {
        let a = hello_without_id(ours.call(command));
        let b = hello_without_id(theirs.call(command));
        assert_eq!(a, b, "reply to {command:?}");
    }
}

/// A ringkv-server with `requirepass` set. `support::Server` waits for `+PONG`, which a
/// password-protected server never gives, so this one waits for `-NOAUTH` instead. Stopped
/// by PID on drop.
struct PasswordServer {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PasswordServer {
    fn start(password: &str) -> PasswordServer {
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = support::free_port();
            let child = std::process::Command::new(support::ringkv_binary())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--dir", &dir.path().display().to_string(), "--save", ""])
                .args(["--requirepass", password])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start ringkv-server");
            let mut server = PasswordServer {
                port,
                child,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                    let mut raw = Raw::from_stream(stream);
                    if matches!(raw.call(&["PING"]), Value::Error(e) if e.starts_with("NOAUTH")) {
                        return server;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("password-protected ringkv-server did not start");
    }
}

impl Drop for PasswordServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn requirepass_demands_auth_and_rejects_wrong_passwords() {
    let server = PasswordServer::start("s3cret");
    let mut client = Raw::connect(server.port);
    assert_eq!(
        error(&client.call(&["PING"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        error(&client.call(&["AUTH", "nope"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        error(&client.call(&["AUTH", "someone", "s3cret"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        error(&client.call(&["AUTH", "a", "b", "c"])),
        "ERR syntax error"
    );
    assert_eq!(
        error(&client.call(&["ECHO", "x"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(client.call(&["AUTH", "s3cret"]), ok());
    assert_eq!(client.call(&["PING"]), Status("PONG".into()));

    let mut other = Raw::connect(server.port);
    assert_eq!(other.call(&["AUTH", "default", "s3cret"]), ok());
    assert_eq!(other.call(&["ECHO", "hi"]), bulk("hi"));
}

#[test]
fn auth_without_a_configured_password_behaves_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            &["AUTH", "x"],
            &["AUTH", "default", "anything"],
            &["AUTH", "nobody", "x"],
            &["AUTH", "a", "b", "c"],
        ],
    );
}

#[test]
fn hello_3_switches_to_resp3_and_hello_2_switches_back() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let Map(pairs) = client.call(&["HELLO", "3"]) else {
        panic!("HELLO 3 must answer a RESP3 map");
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == bulk(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("proto"), Int(3));
    assert_eq!(get("server"), bulk("redis"));
    assert_eq!(get("version"), bulk("7.0.15"));
    let id = client.call(&["CLIENT", "ID"]);
    assert_eq!(get("id"), id);
    // RESP3 types now: a null is `_`, CLIENT INFO is verbatim text.
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), Nil);
    let info = client.call(&["CLIENT", "INFO"]);
    assert!(matches!(info, Value::Verbatim(_)), "{info:?}");
    assert_eq!(field(&text(&info), "resp"), "3");

    let back = client.call(&["HELLO", "2"]);
    let Array(items) = back else {
        panic!("HELLO 2 must answer a flat array, got {back:?}");
    };
    assert_eq!(items.len(), 14);
    let info = client.call(&["CLIENT", "INFO"]);
    assert!(matches!(info, Bulk(_)));
    assert_eq!(field(&text(&info), "resp"), "2");
}

#[test]
fn hello_replies_and_errors_match_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            &["HELLO"],
            &["HELLO", "4"],
            &["HELLO", "1"],
            &["HELLO", "abc"],
            &["HELLO", "3", "FOO"],
            &["HELLO", "3", "AUTH", "default"],
            &["HELLO", "3", "SETNAME", "bad name"],
            &["HELLO", "3", "SETNAME", "good"],
            &["CLIENT", "GETNAME"],
            &["HELLO", "2", "AUTH", "default", "whatever"],
            &["HELLO", "2", "AUTH", "nobody", "whatever"],
        ],
    );
}

#[test]
fn hello_auth_authenticates_and_names_the_connection() {
    let server = PasswordServer::start("pw");
    let mut client = Raw::connect(server.port);
    let refused = error(&client.call(&["HELLO", "3"]));
    assert!(
        refused.starts_with("NOAUTH HELLO must be called"),
        "{refused}"
    );
    assert_eq!(
        error(&client.call(&["HELLO", "3", "AUTH", "default", "wrong"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let reply = client.call(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "worker"]);
    assert!(matches!(reply, Map(_)), "{reply:?}");
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), bulk("worker"));
}

#[test]
fn client_setname_getname_and_id() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", "has space"],
            &["CLIENT", "SETNAME", "new\nline"],
            &["CLIENT", "SETNAME", "café"],
            &["CLIENT", "SETNAME", "ok-name_1"],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", ""],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "ID", "x"],
            &["CLIENT", "SETNAME"],
            &["CLIENT", "NOSUCH"],
            &["CLIENT", "REPLY", "MAYBE"],
            &["CLIENT", "NO-EVICT", "MAYBE"],
            &["CLIENT", "NO-EVICT", "on"],
            &["CLIENT", "UNBLOCK", "abc"],
            &["CLIENT", "UNBLOCK", "12345"],
            &["CLIENT", "UNBLOCK", "12345", "SOMETIMES"],
            &["CLIENT", "LIST", "TYPE", "foo"],
            &["CLIENT", "LIST", "ID", "abc"],
            &["CLIENT", "LIST", "ID", "999999"],
            &["CLIENT", "LIST", "FOO"],
            &["CLIENT", "KILL", "1.2.3.4:5"],
            &["CLIENT", "KILL", "ID", "999999"],
            &["CLIENT", "KILL", "ID", "abc"],
            &["CLIENT", "KILL", "ID", "1", "TYPE"],
            &["CLIENT", "KILL", "TYPE", "foo"],
            &["CLIENT", "KILL", "USER", "nobody"],
            &["CLIENT", "KILL", "SKIPME", "maybe"],
            &["CLIENT", "KILL", "FOO", "bar"],
        ],
    );
    let mut client = Raw::new(&ringkv);
    let Int(id) = client.call(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID is an integer");
    };
    let info = text(&client.call(&["CLIENT", "INFO"]));
    assert_eq!(field(&info, "id"), id.to_string());
}

#[test]
fn client_list_has_redis_fields_in_redis_order() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let names = |server: &Server| {
        let mut client = Raw::new(server);
        client.call(&["CLIENT", "SETNAME", "me"]);
        let list = text(&client.call(&["CLIENT", "LIST"]));
        let info = text(&client.call(&["CLIENT", "INFO"]));
        assert!(list.ends_with('\n') && info.ends_with('\n'));
        let mine = list
            .lines()
            .find(|l| field(l, "name") == "me")
            .unwrap()
            .to_string();
        let keys: Vec<String> = fields(&mine).into_iter().map(|(k, _)| k).collect();
        let info_keys: Vec<String> = fields(&info).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, info_keys);
        (keys, mine)
    };
    let (ours, line) = names(&ringkv);
    let (theirs, _) = names(&redis);
    assert_eq!(ours, theirs);
    assert_eq!(field(&line, "flags"), "N");
    assert_eq!(field(&line, "cmd"), "client|list");
    assert_eq!(field(&line, "user"), "default");
    assert_eq!(field(&line, "multi"), "-1");
    assert_eq!(field(&line, "db"), "0");
    assert_eq!(field(&line, "laddr"), format!("127.0.0.1:{}", ringkv.port));
}

#[test]
fn client_list_reflects_db_multi_and_subscriptions() {
    let server = Server::start(&[]);
    let mut subscriber = Raw::new(&server);
    subscriber.call(&["CLIENT", "SETNAME", "sub"]);
    subscriber.call(&["SUBSCRIBE", "a", "b"]);
    subscriber.read();
    subscriber.call(&["PSUBSCRIBE", "p*"]);

    let mut client = Raw::new(&server);
    client.call(&["CLIENT", "SETNAME", "tx"]);
    client.call(&["SELECT", "3"]);
    let Int(id) = client.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    client.call(&["MULTI"]);
    let mut observer = Raw::new(&server);
    let line = text(&observer.call(&["CLIENT", "LIST", "ID", &id.to_string()]));
    assert_eq!(field(&line, "flags"), "x");
    assert_eq!(field(&line, "multi"), "0");
    assert_eq!(field(&line, "db"), "3");
    assert_eq!(field(&line, "cmd"), "multi");
    assert_eq!(client.call(&["DISCARD"]), ok());

    let list = text(&client.call(&["CLIENT", "LIST", "TYPE", "pubsub"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 1, "{list}");
    assert_eq!(field(lines[0], "name"), "sub");
    assert_eq!(field(lines[0], "flags"), "P");
    assert_eq!(field(lines[0], "sub"), "2");
    assert_eq!(field(lines[0], "psub"), "1");
    let normal = text(&client.call(&["CLIENT", "LIST", "TYPE", "normal"]));
    assert!(normal.lines().all(|l| field(l, "name") != "sub"));
    assert!(normal.lines().any(|l| field(l, "name") == "tx"));

    let by_id = text(&client.call(&["CLIENT", "LIST", "ID", &id.to_string(), "999999"]));
    assert_eq!(by_id.lines().count(), 1);
    assert_eq!(field(by_id.lines().next().unwrap(), "name"), "tx");
}

/// Waits (bounded) until no CLIENT LIST line has `name`.
fn wait_gone(killer: &mut redis::Connection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(killer).unwrap();
        if !list.lines().any(|l| field(l, "name") == name) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} still listed:\n{list}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_kill_closes_the_victims_and_spares_the_killer() {
    let server = Server::start(&["--server-threads", "2"]);
    let mut victims: Vec<(Raw, i64, String)> = (0..6)
        .map(|i| {
            let mut raw = Raw::new(&server);
            raw.call(&["CLIENT", "SETNAME", &format!("victim{i}")]);
            let Int(id) = raw.call(&["CLIENT", "ID"]) else {
                panic!()
            };
            let addr = field(&text(&raw.call(&["CLIENT", "INFO"])), "addr");
            (raw, id, addr)
        })
        .collect();
    let mut killer = server.client();

    let (mut by_id, id, _) = victims.remove(0);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut killer)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(by_id.closed_by_server());
    wait_gone(&mut killer, "victim0");

    let (mut by_addr, _, addr) = victims.remove(0);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ADDR")
        .arg(&addr)
        .query(&mut killer)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(by_addr.closed_by_server());
    wait_gone(&mut killer, "victim1");

    let (mut old_form, _, addr) = victims.remove(0);
    let ok: String = redis::cmd("CLIENT")
        .arg("KILL")
        .arg(&addr)
        .query(&mut killer)
        .unwrap();
    assert_eq!(ok, "OK");
    assert!(old_form.closed_by_server());
    wait_gone(&mut killer, "victim2");

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut killer)
        .unwrap();
    assert_eq!(killed, 3);
    for (mut victim, _, _) in victims {
        assert!(victim.closed_by_server());
    }
    let pong: String = redis::cmd("PING").query(&mut killer).unwrap();
    assert_eq!(pong, "PONG");
    let nobody: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut killer)
        .unwrap();
    assert_eq!(nobody, 0);
}

#[test]
fn client_kill_skipme_no_closes_the_caller_after_its_reply() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let Int(id) = client.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    let id = id.to_string();
    assert_eq!(client.call(&["CLIENT", "KILL", "ID", &id]), Int(0));
    assert_eq!(
        client.call(&["CLIENT", "KILL", "ID", &id, "SKIPME", "no"]),
        Int(1)
    );
    assert!(client.closed_by_server());
}

#[test]
fn client_reply_off_and_skip_suppress_replies() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    client.send(&["CLIENT", "REPLY", "OFF"]);
    client.send(&["ECHO", "hidden1"]);
    client.send(&["ECHO", "hidden2"]);
    client.send(&["CLIENT", "REPLY", "ON"]);
    assert_eq!(client.read(), ok());
    client.send(&["CLIENT", "REPLY", "SKIP"]);
    client.send(&["ECHO", "skipped"]);
    client.send(&["ECHO", "shown"]);
    assert_eq!(client.read(), bulk("shown"));
    assert_eq!(client.call(&["PING"]), Status("PONG".into()));
}

#[test]
fn select_errors_match_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            &["SELECT", "16"],
            &["SELECT", "-1"],
            &["SELECT", "abc"],
            &["SELECT", "1.5"],
            &["SELECT", "99999999999"],
            &["SELECT", "15"],
            &["SELECT"],
        ],
    );
}

#[test]
fn reset_returns_the_connection_to_its_initial_state() {
    let server = PasswordServer::start("pw");
    let mut client = Raw::connect(server.port);
    client.call(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "named"]);
    client.call(&["SELECT", "5"]);
    client.call(&["SUBSCRIBE", "chan"]);
    client.call(&["MULTI"]);
    assert_eq!(client.call(&["RESET"]), Status("RESET".into()));
    assert_eq!(
        error(&client.call(&["PING"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(client.call(&["AUTH", "pw"]), ok());
    let info = text(&client.call(&["CLIENT", "INFO"]));
    assert!(matches!(client.call(&["CLIENT", "GETNAME"]), Nil));
    assert_eq!(field(&info, "resp"), "2");
    assert_eq!(field(&info, "db"), "0");
    assert_eq!(field(&info, "sub"), "0");
    assert_eq!(field(&info, "multi"), "-1");
    assert_eq!(field(&info, "flags"), "N");
    let mut publisher = Raw::connect(server.port);
    publisher.call(&["AUTH", "pw"]);
    assert_eq!(publisher.call(&["PUBLISH", "chan", "x"]), Int(0));
}

#[test]
fn client_help_lists_subcommands() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let Array(lines) = client.call(&["CLIENT", "HELP"]) else {
        panic!()
    };
    assert!(text(&lines[0]).starts_with("CLIENT <subcommand>"));
    assert!(lines.iter().any(|l| text(l) == "SETNAME <name>"));
}

#[test]
fn client_unblock_wakes_a_blocked_client_with_timeout_or_error() {
    let server = Server::start(&["--server-threads", "2"]);
    let mut blocked = Raw::new(&server);
    let Int(id) = blocked.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    let id = id.to_string();
    let mut other = Raw::new(&server);
    let wait_blocked = |other: &mut Raw| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let line = text(&other.call(&["CLIENT", "LIST", "ID", &id]));
            if field(&line, "flags") == "b" {
                return;
            }
            assert!(Instant::now() < deadline, "never blocked: {line}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    blocked.send(&["BLPOP", "nothing", "0"]);
    wait_blocked(&mut other);
    assert_eq!(other.call(&["CLIENT", "UNBLOCK", &id]), Int(1));
    assert_eq!(blocked.read(), Nil);
    assert_eq!(other.call(&["CLIENT", "UNBLOCK", &id]), Int(0));

    blocked.send(&["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut other);
    assert_eq!(other.call(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), Int(1));
    assert_eq!(blocked.read(), Nil);

    blocked.send(&["BLPOP", "nothing", "0"]);
    wait_blocked(&mut other);
    assert_eq!(other.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Int(1));
    assert_eq!(
        error(&blocked.read()),
        "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    );
    // The unblocked client carries on, and nothing was left registered on the key.
    assert_eq!(blocked.call(&["PING"]), Status("PONG".into()));
    assert_eq!(other.call(&["RPUSH", "nothing", "x"]), Int(1));
    assert_eq!(other.call(&["LLEN", "nothing"]), Int(1));
}
