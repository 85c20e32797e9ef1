//! Pub/sub: subscriptions across connections on every core, patterns, introspection, and
//! the RESP2 subscribed-mode restriction, checked against Redis 7.0.

#![allow(dead_code)]

mod support;

use std::time::{Duration, Instant};

use support::Server;

use support::resp::{bulk, text, Array, Int, Nil, Raw, Value};
fn push(items: &[Value]) -> Value {
    Value::Push(items.to_vec())
}

/// Waits (bounded) until PUBSUB NUMSUB reports `expected` subscribers of `channel`.
fn wait_numsub(client: &mut Raw, channel: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = client.call(&["PUBSUB", "NUMSUB", channel]);
        if reply == Array(vec![bulk(channel), Int(expected)]) {
            return;
        }
        assert!(Instant::now() < deadline, "NUMSUB stuck at {reply:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn publish_reaches_subscribers_on_every_core() {
    let server = Server::start(&["--server-threads", "2"]);
    let mut subscribers: Vec<Raw> = (0..12).map(|_| Raw::new(&server)).collect();
    for subscriber in &mut subscribers {
        assert_eq!(
            subscriber.call(&["SUBSCRIBE", "news"]),
            Array(vec![bulk("subscribe"), bulk("news"), Int(1)])
        );
    }
    let mut publisher = Raw::new(&server);
    for round in 0..3 {
        let message = format!("hello {round}");
        assert_eq!(publisher.call(&["PUBLISH", "news", &message]), Int(12));
        for subscriber in &mut subscribers {
            assert_eq!(
                subscriber.read(),
                Array(vec![bulk("message"), bulk("news"), bulk(&message)])
            );
        }
    }
    assert_eq!(publisher.call(&["PUBLISH", "other", "x"]), Int(0));
}

#[test]
fn pattern_subscribers_get_pmessages_and_count_in_publish() {
    let server = Server::start(&[]);
    let mut both = Raw::new(&server);
    assert_eq!(
        both.call(&["SUBSCRIBE", "news.tech"]),
        Array(vec![bulk("subscribe"), bulk("news.tech"), Int(1)])
    );
    assert_eq!(
        both.call(&["PSUBSCRIBE", "news.*"]),
        Array(vec![bulk("psubscribe"), bulk("news.*"), Int(2)])
    );
    let mut publisher = Raw::new(&server);
    assert_eq!(publisher.call(&["PUBLISH", "news.tech", "rust"]), Int(2));
    assert_eq!(
        both.read(),
        Array(vec![bulk("message"), bulk("news.tech"), bulk("rust")])
    );
    assert_eq!(
        both.read(),
        Array(vec![
            bulk("pmessage"),
            bulk("news.*"),
            bulk("news.tech"),
            bulk("rust")
        ])
    );
    assert_eq!(publisher.call(&["PUBLISH", "news.art", "paint"]), Int(1));
    assert_eq!(
        both.read(),
        Array(vec![
            bulk("pmessage"),
            bulk("news.*"),
            bulk("news.art"),
            bulk("paint")
        ])
    );
    assert_eq!(
        both.call(&["PUNSUBSCRIBE", "news.*"]),
        Array(vec![bulk("punsubscribe"), bulk("news.*"), Int(1)])
    );
    assert_eq!(publisher.call(&["PUBLISH", "news.art", "paint"]), Int(0));
}

#[test]
fn pubsub_introspection_counts_channels_subscribers_and_patterns() {
    let server = Server::start(&[]);
    let mut a = Raw::new(&server);
    let mut b = Raw::new(&server);
    a.send(&["SUBSCRIBE", "alpha", "beta"]);
    a.read();
    a.read();
    b.call(&["SUBSCRIBE", "alpha"]);
    b.call(&["PSUBSCRIBE", "a*"]);
    a.call(&["PSUBSCRIBE", "a*"]);
    a.call(&["PSUBSCRIBE", "b*"]);
    let mut observer = Raw::new(&server);
    assert_eq!(
        observer.call(&["PUBSUB", "CHANNELS"]),
        Array(vec![bulk("alpha"), bulk("beta")])
    );
    assert_eq!(
        observer.call(&["PUBSUB", "CHANNELS", "b*"]),
        Array(vec![bulk("beta")])
    );
    assert_eq!(
        observer.call(&["PUBSUB", "NUMSUB", "alpha", "beta", "gamma"]),
        Array(vec![
            bulk("alpha"),
            Int(2),
            bulk("beta"),
            Int(1),
            bulk("gamma"),
            Int(0)
        ])
    );
    assert_eq!(observer.call(&["PUBSUB", "NUMSUB"]), Array(vec![]));
    assert_eq!(observer.call(&["PUBSUB", "NUMPAT"]), Int(2));
    drop(a);
    wait_numsub(&mut observer, "alpha", 1);
    assert_eq!(
        observer.call(&["PUBSUB", "NUMSUB", "beta"]),
        Array(vec![bulk("beta"), Int(0)])
    );
    assert_eq!(observer.call(&["PUBSUB", "NUMPAT"]), Int(1));
}

/// Runs the same script on a fresh connection to each server; replies must be equal.
fn same_on_both(ringkv: &Server, redis: &Server, script: &[(&[&str], usize)]) {
    let mut ours = Raw::new(ringkv);
    let mut theirs = Raw::new(redis);
    for (command, replies) in script {
        ours.send(command);
        theirs.send(command);
        for _ in 0..*replies {
            assert_eq!(ours.read(), theirs.read(), "reply to {command:?}");
        }
    }
}

#[test]
fn subscribe_replies_and_resp2_subscribed_mode_match_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    same_on_both(
        &ringkv,
        &redis,
        &[
            (&["PUBSUB", "NOSUCH"], 1),
            (&["PUBSUB", "NUMPAT", "x"], 1),
            (&["PUBSUB", "CHANNELS", "a", "b"], 1),
            (&["UNSUBSCRIBE"], 1),
            (&["PUNSUBSCRIBE"], 1),
            (&["UNSUBSCRIBE", "never"], 1),
            (&["SUBSCRIBE", "a", "b", "a"], 3),
            (&["PSUBSCRIBE", "p*"], 1),
            (&["ECHO", "x"], 1),
            (&["PUBLISH", "a", "m"], 1),
            (&["PING"], 1),
            (&["PING", "hello"], 1),
            (&["SUBSCRIBE"], 1),
            (&["UNSUBSCRIBE", "b"], 1),
            (&["PUNSUBSCRIBE"], 1),
            (&["UNSUBSCRIBE"], 1),
            (&["UNSUBSCRIBE"], 1),
            (&["ECHO", "free again"], 1),
            (&["PUBSUB", "HELP"], 1),
            (&["PUBSUB", "SHARDNUMSUB", "a"], 1),
            (&["PUBSUB", "SHARDCHANNELS"], 1),
        ],
    );
}

#[test]
fn resp3_subscriber_can_run_any_command_and_gets_push_frames() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    client.call(&["HELLO", "3"]);
    assert_eq!(
        client.call(&["SUBSCRIBE", "ch"]),
        push(&[bulk("subscribe"), bulk("ch"), Int(1)])
    );
    assert_eq!(client.call(&["ECHO", "still here"]), bulk("still here"));
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), Nil);
    let mut publisher = Raw::new(&server);
    assert_eq!(publisher.call(&["PUBLISH", "ch", "hi"]), Int(1));
    assert_eq!(
        client.read(),
        push(&[bulk("message"), bulk("ch"), bulk("hi")])
    );
    assert_eq!(
        client.call(&["UNSUBSCRIBE"]),
        push(&[bulk("unsubscribe"), bulk("ch"), Int(0)])
    );
    assert_eq!(
        client.call(&["UNSUBSCRIBE"]),
        push(&[bulk("unsubscribe"), Nil, Int(0)])
    );
}

#[test]
fn hello_while_subscribed_switches_the_encoding_of_later_messages() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    client.call(&["HELLO", "3"]);
    client.call(&["SUBSCRIBE", "ch"]);
    let mut publisher = Raw::new(&server);
    publisher.call(&["PUBLISH", "ch", "one"]);
    assert_eq!(
        client.read(),
        push(&[bulk("message"), bulk("ch"), bulk("one")])
    );
    let Array(_) = client.call(&["HELLO", "2"]) else {
        panic!("HELLO 2 answers an array");
    };
    publisher.call(&["PUBLISH", "ch", "two"]);
    assert_eq!(
        client.read(),
        Array(vec![bulk("message"), bulk("ch"), bulk("two")])
    );
}

#[test]
fn unsubscribe_without_arguments_drops_every_channel() {
    let server = Server::start(&[]);
    let mut client = Raw::new(&server);
    client.send(&["SUBSCRIBE", "x", "y", "z"]);
    for expected in 1..=3 {
        let Array(reply) = client.read() else {
            panic!()
        };
        assert_eq!(reply[2], Int(expected));
    }
    client.send(&["UNSUBSCRIBE"]);
    let mut gone = Vec::new();
    for remaining in (0..3).rev() {
        let Array(reply) = client.read() else {
            panic!()
        };
        assert_eq!(reply[0], bulk("unsubscribe"));
        assert_eq!(reply[2], Int(remaining));
        gone.push(text(&reply[1]));
    }
    gone.sort();
    assert_eq!(gone, ["x", "y", "z"]);
    let mut publisher = Raw::new(&server);
    assert_eq!(publisher.call(&["PUBLISH", "y", "m"]), Int(0));
    assert_eq!(publisher.call(&["PUBSUB", "CHANNELS"]), Array(vec![]));
    // Out of subscribed mode: ordinary commands work again.
    assert_eq!(client.call(&["ECHO", "back"]), bulk("back"));
}

#[test]
fn closing_a_subscriber_forgets_its_subscriptions() {
    let server = Server::start(&[]);
    let mut observer = Raw::new(&server);
    {
        let mut client = Raw::new(&server);
        client.call(&["SUBSCRIBE", "gone"]);
        client.call(&["PSUBSCRIBE", "g*"]);
        wait_numsub(&mut observer, "gone", 1);
    }
    wait_numsub(&mut observer, "gone", 0);
    assert_eq!(observer.call(&["PUBSUB", "NUMPAT"]), Int(0));
    assert_eq!(observer.call(&["PUBLISH", "gone", "x"]), Int(0));
}
