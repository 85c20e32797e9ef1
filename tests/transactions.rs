//! Transactions: MULTI/EXEC atomicity and replies, queue-time and run-time errors, WATCH,
//! DISCARD, compared with Redis 7.0.

#![allow(dead_code)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::Server;

/// A raw connection that sends commands as multibulk and reads replies of any RESP version.
struct Raw {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn new(server: &Server) -> Raw {
        Raw::connect(server.port)
    }

    fn connect(port: u16) -> Raw {
        Raw::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    fn from_stream(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{}\r\n", arg.len(), arg));
        }
        self.writer.write_all(out.as_bytes()).unwrap();
    }

    fn read(&mut self) -> Value {
        read_value(&mut self.reader)
    }

    fn call(&mut self, args: &[&str]) -> Value {
        self.send(args);
        self.read()
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    fn closed_by_server(&mut self) -> bool {
        self.writer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// One reply, in either protocol version.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
    Set(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Push(Vec<Value>),
    Double(String),
    Boolean(bool),
    Verbatim(String),
}

use Value::{Array, Bulk, Int, Map, Nil, Status};

fn ok() -> Value {
    Status("OK".into())
}

fn bulk(text: &str) -> Value {
    Bulk(text.as_bytes().to_vec())
}

/// Reads one RESP2/RESP3 value.
fn read_value(reader: &mut impl BufRead) -> Value {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).expect("reply line");
    assert!(line.ends_with(b"\r\n"), "bad reply line {line:?}");
    line.truncate(line.len() - 2);
    let rest = String::from_utf8_lossy(&line[1..]).into_owned();
    let number = || rest.parse::<i64>().expect("length");
    let items = |reader: &mut dyn FnMut() -> Value| (0..number()).map(|_| reader()).collect();
    match line[0] {
        b'+' => Status(rest),
        b'-' => Value::Error(rest),
        b':' => Int(number()),
        b'$' | b'*' if number() < 0 => Nil,
        b'$' | b'=' => {
            let mut data = vec![0u8; number() as usize + 2];
            reader.read_exact(&mut data).expect("bulk");
            data.truncate(data.len() - 2);
            if line[0] == b'=' {
                Value::Verbatim(String::from_utf8_lossy(&data[4..]).into_owned())
            } else {
                Bulk(data)
            }
        }
        b'*' => Array(items(&mut || read_value(reader))),
        b'~' => Value::Set(items(&mut || read_value(reader))),
        b'>' => Value::Push(items(&mut || read_value(reader))),
        b'%' => Map((0..number())
            .map(|_| (read_value(reader), read_value(reader)))
            .collect()),
        b'_' => Nil,
        b'#' => Value::Boolean(rest == "t"),
        b',' => Value::Double(rest),
        other => panic!("unknown reply type {:?}", other as char),
    }
}

fn text(value: &Value) -> String {
    match value {
        Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Status(s) | Value::Error(s) | Value::Verbatim(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn error(value: &Value) -> String {
    match value {
        Value::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn queued() -> Value {
    Status("QUEUED".into())
}

/// Runs the same commands on a fresh connection to each server and compares every reply.
fn same_on_both(ringkv: &Server, redis: &Server, commands: &[&[&str]]) {
    let mut ours = Raw::new(ringkv);
    let mut theirs = Raw::new(redis);
    for command in commands {
        assert_eq!(
            ours.call(command),
            theirs.call(command),
            "reply to {command:?}"
        );
    }
}

#[test]
fn exec_replies_with_every_queued_reply_in_order() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    assert_eq!(client.call(&["MULTI"]), ok());
    assert_eq!(client.call(&["SET", "counter", "1"]), queued());
    assert_eq!(client.call(&["INCR", "counter"]), queued());
    assert_eq!(client.call(&["GET", "counter"]), queued());
    assert_eq!(client.call(&["ECHO", "done"]), queued());
    assert_eq!(
        client.call(&["EXEC"]),
        Array(vec![ok(), Int(2), bulk("2"), bulk("done")])
    );
    assert_eq!(client.call(&["GET", "counter"]), bulk("2"));
    assert_eq!(client.call(&["MULTI"]), ok());
    assert_eq!(client.call(&["EXEC"]), Array(vec![]));
}

#[test]
fn a_transaction_is_atomic_for_other_clients() {
    let server = Server::start(&["--server-threads", "2"]);
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = server.client();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let (a, b): (i64, i64) = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("a")
                        .cmd("INCR")
                        .arg("b")
                        .query(&mut client)
                        .unwrap();
                    assert_eq!(a, b, "another transaction ran between the two INCRs");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let mut client = server.client();
    let (a, b): (i64, i64) = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .query(&mut client)
        .unwrap();
    assert_eq!((a, b), (800, 800));
}

#[test]
fn queue_time_errors_abort_and_run_time_errors_are_elements() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            &["EXEC"],
            &["DISCARD"],
            &["MULTI"],
            &["MULTI"],
            &["WATCH", "k"],
            &["SET", "k"],
            &["NOSUCHCOMMAND", "x"],
            &["SET", "k", "v"],
            &["EXEC"],
            &["EXISTS", "k"],
            &["MULTI"],
            &["SET", "s", "text"],
            &["INCR", "s"],
            &["LPUSH", "s", "x"],
            &["SET", "after", "1"],
            &["EXEC"],
            &["GET", "after"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "discarded", "1"],
            &["DISCARD"],
            &["EXISTS", "discarded"],
            &["MULTI"],
            &["SELECT", "2"],
            &["SET", "in2", "x"],
            &["EXEC"],
            &["GET", "in2"],
            &["UNWATCH"],
        ],
    );
}

#[test]
fn watch_fails_exec_when_another_client_changes_the_key() {
    let server = Server::start(&["--server-threads", "2"]);
    let mut client = Raw::new(&server);
    let mut other = Raw::new(&server);
    assert_eq!(client.call(&["SET", "balance", "10"]), ok());
    assert_eq!(client.call(&["WATCH", "balance", "other"]), ok());
    assert_eq!(other.call(&["INCRBY", "balance", "5"]), Int(15));
    client.call(&["MULTI"]);
    client.call(&["SET", "balance", "0"]);
    assert_eq!(client.call(&["EXEC"]), Nil);
    assert_eq!(client.call(&["GET", "balance"]), bulk("15"));
    // Watches are gone after EXEC: the next transaction runs.
    client.call(&["MULTI"]);
    client.call(&["SET", "balance", "0"]);
    assert_eq!(client.call(&["EXEC"]), Array(vec![ok()]));
}

#[test]
fn watch_on_untouched_keys_lets_exec_run() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let mut other = Raw::new(&server);
    client.call(&["SET", "watched", "1"]);
    client.call(&["WATCH", "watched", "missing"]);
    other.call(&["SET", "unrelated", "1"]);
    other.call(&["GET", "watched"]);
    // Same key name in another database is another key.
    other.call(&["SELECT", "1"]);
    other.call(&["SET", "watched", "2"]);
    client.call(&["MULTI"]);
    client.call(&["INCR", "watched"]);
    assert_eq!(client.call(&["EXEC"]), Array(vec![Int(2)]));
}

#[test]
fn creating_or_deleting_a_watched_key_counts_as_a_change() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let mut other = Raw::new(&server);
    client.call(&["WATCH", "fresh"]);
    other.call(&["SET", "fresh", "1"]);
    client.call(&["MULTI"]);
    client.call(&["GET", "fresh"]);
    assert_eq!(client.call(&["EXEC"]), Nil);

    client.call(&["WATCH", "fresh"]);
    other.call(&["DEL", "fresh"]);
    client.call(&["MULTI"]);
    client.call(&["GET", "fresh"]);
    assert_eq!(client.call(&["EXEC"]), Nil);
}

#[test]
fn unwatch_discard_and_reset_forget_watched_keys() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let mut other = Raw::new(&server);
    for forget in [&["UNWATCH"][..], &["RESET"][..]] {
        client.call(&["WATCH", "k"]);
        client.call(forget);
        other.call(&["SET", "k", "changed"]);
        client.call(&["MULTI"]);
        client.call(&["GET", "k"]);
        assert_eq!(
            client.call(&["EXEC"]),
            Array(vec![bulk("changed")]),
            "{forget:?}"
        );
    }
    client.call(&["WATCH", "k"]);
    client.call(&["MULTI"]);
    assert_eq!(client.call(&["DISCARD"]), ok());
    other.call(&["SET", "k", "again"]);
    client.call(&["MULTI"]);
    client.call(&["GET", "k"]);
    assert_eq!(client.call(&["EXEC"]), Array(vec![bulk("again")]));
}

#[test]
fn a_watched_key_that_expires_before_exec_fails_it() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for server in [&ringkv, &redis] {
        let mut client = Raw::new(server);
        client.call(&["SET", "short", "1", "PX", "100"]);
        client.call(&["WATCH", "short"]);
        std::thread::sleep(Duration::from_millis(200));
        client.call(&["MULTI"]);
        client.call(&["ECHO", "x"]);
        assert_eq!(client.call(&["EXEC"]), Nil, "port {}", server.port);
    }
}

#[test]
fn a_key_already_expired_when_watched_does_not_fail_exec() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for server in [&ringkv, &redis] {
        let mut client = Raw::new(server);
        client.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        client.call(&["SET", "old", "1", "PX", "50"]);
        std::thread::sleep(Duration::from_millis(100));
        client.call(&["WATCH", "old"]);
        let mut other = Raw::new(server);
        assert_eq!(other.call(&["EXISTS", "old"]), Int(0));
        client.call(&["MULTI"]);
        client.call(&["ECHO", "x"]);
        assert_eq!(
            client.call(&["EXEC"]),
            Array(vec![bulk("x")]),
            "port {}",
            server.port
        );
    }
}

#[test]
fn client_list_shows_a_transaction_in_progress() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    let Int(id) = client.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    client.call(&["MULTI"]);
    let mut observer = Raw::new(&server);
    let line = text(&observer.call(&["CLIENT", "LIST", "ID", &id.to_string()]));
    assert!(line.contains(" flags=x "), "{line}");
    assert!(!line.contains("multi=-1"), "{line}");
    client.call(&["EXEC"]);
    let line = text(&observer.call(&["CLIENT", "LIST", "ID", &id.to_string()]));
    assert!(
        line.contains(" flags=N ") && line.contains(" multi=-1 "),
        "{line}"
    );
    assert!(line.contains(" cmd=exec "), "{line}");
}
