//! Transactions: MULTI/EXEC atomicity and replies, queue-time and run-time errors, WATCH,
//! DISCARD, compared with Redis 7.0.

#![allow(dead_code)]

mod support;

use std::time::Duration;

use support::Server;

use support::resp::{bulk, ok, text, Array, Int, Nil, Raw, Status, Value};
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
