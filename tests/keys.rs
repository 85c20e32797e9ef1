//! Keyspace commands over TCP, with a side-by-side comparison against redis-server 7.0.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redis::Value;
use support::{run, Server};

fn int(con: &mut redis::Connection, args: &[&str]) -> i64 {
    match run(con, args).unwrap() {
        Value::Int(n) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn del_exists_and_touch_count_keys() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["MSET", "a", "1", "b", "2"]).unwrap();
    assert_eq!(int(&mut con, &["EXISTS", "a", "a", "b", "nope"]), 3);
    assert_eq!(int(&mut con, &["TOUCH", "a", "nope"]), 1);
    assert_eq!(int(&mut con, &["DEL", "a", "a", "nope"]), 1);
    assert_eq!(int(&mut con, &["UNLINK", "b"]), 1);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
}

#[test]
fn expire_options_follow_nx_xx_gt_lt_rules() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "NX"]), 1);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "50", "GT"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "200", "GT"]), 1);
    assert_eq!(int(&mut con, &["PEXPIRE", "k", "50000", "LT"]), 1);
    assert_eq!(int(&mut con, &["TTL", "k"]), 50);
    assert!(int(&mut con, &["PTTL", "k"]) > 49_000);
    let at = int(&mut con, &["PEXPIRETIME", "k"]);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), (at + 500) / 1000);
    assert_eq!(int(&mut con, &["PERSIST", "k"]), 1);
    assert_eq!(int(&mut con, &["PERSIST", "k"]), 0);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    assert_eq!(int(&mut con, &["TTL", "nope"]), -2);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "-1"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
}

#[test]
fn active_expiry_removes_keys_never_accessed() {
    let server = Server::start(&[]);
    let mut con = server.client();
    for i in 0..20 {
        run(&mut con, &["SET", &format!("k{i}"), "v", "PX", "50"]).unwrap();
    }
    run(&mut con, &["SET", "stays", "v"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if int(&mut con, &["DBSIZE"]) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "active expiry did not remove the keys"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rename_keeps_ttl_and_renamenx_refuses_existing() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "a", "1", "EX", "100"]).unwrap();
    assert_eq!(run(&mut con, &["RENAME", "a", "b"]).unwrap(), Value::Okay);
    assert_eq!(int(&mut con, &["TTL", "b"]), 100);
    run(&mut con, &["SET", "c", "3"]).unwrap();
    assert_eq!(int(&mut con, &["RENAMENX", "b", "c"]), 0);
    let error = run(&mut con, &["RENAME", "nope", "x"]).unwrap_err();
    assert_eq!(error.detail(), Some("no such key"));
}

#[test]
fn move_copy_and_swapdb_cross_databases() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "k", "v", "EX", "100"]).unwrap();
    assert_eq!(int(&mut con, &["COPY", "k", "k2", "DB", "3"]), 1);
    assert_eq!(int(&mut con, &["MOVE", "k", "1"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    run(&mut con, &["SELECT", "1"]).unwrap();
    assert_eq!(int(&mut con, &["TTL", "k"]), 100);
    assert_eq!(run(&mut con, &["SWAPDB", "1", "3"]).unwrap(), Value::Okay);
    assert_eq!(int(&mut con, &["EXISTS", "k", "k2"]), 1);
    assert_eq!(int(&mut con, &["TTL", "k2"]), 100);
    run(&mut con, &["FLUSHALL", "ASYNC"]).unwrap();
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
}

#[test]
fn scan_visits_every_key_at_least_once() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut expected = HashSet::new();
    for i in 0..500 {
        let key = format!("key:{i}");
        run(&mut con, &["SET", &key, "v"]).unwrap();
        expected.insert(key);
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    for _round in 0..10_000 {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(7)
            .query(&mut con)
            .unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "scan did not finish");
    assert!(expected.is_subset(&seen));
    let (_, matched): (String, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("key:1?")
        .arg("COUNT")
        .arg(1000)
        .arg("TYPE")
        .arg("string")
        .query(&mut con)
        .unwrap();
    assert_eq!(matched.len(), 10);
}

#[test]
fn keys_and_randomkey_skip_expired_keys() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "live", "v"]).unwrap();
    run(&mut con, &["SET", "dead", "v", "PX", "1"]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(keys, vec!["live".to_string()]);
    assert_eq!(
        run(&mut con, &["RANDOMKEY"]).unwrap(),
        Value::BulkString(b"live".to_vec())
    );
}

/// The same commands against ringkv and redis-server 7.0 give identical replies.
#[test]
fn keyspace_commands_reply_exactly_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let script: &[&[&str]] = &[
        &[
            "MSET",
            "a",
            "1",
            "b",
            "hello",
            "c",
            "12345",
            "long",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ],
        &["EXISTS", "a", "a", "zz"],
        &["TYPE", "a"],
        &["TYPE", "zz"],
        &["EXPIRE", "a", "100", "NX", "XX"],
        &["EXPIRE", "a", "100", "GT", "LT"],
        &["EXPIRE", "a", "100", "FOO"],
        &["EXPIRE", "a", "abc"],
        &["EXPIRE", "a", "9223372036854775807"],
        &["PEXPIRE", "a", "9223372036854775807"],
        &["EXPIRE", "zz", "100"],
        &["EXPIRE", "a", "100"],
        &["TTL", "a"],
        &["EXPIRE", "a", "100", "NX"],
        &["EXPIRE", "a", "50", "GT"],
        &["EXPIRE", "a", "500", "LT"],
        &["EXPIREAT", "a", "1"],
        &["EXISTS", "a"],
        &["TTL", "b"],
        &["PTTL", "zz"],
        &["EXPIRETIME", "b"],
        &["PEXPIREAT", "b", "99999999999999"],
        &["PEXPIRETIME", "b"],
        &["EXPIRETIME", "b"],
        &["PERSIST", "b"],
        &["PERSIST", "b"],
        &["RENAME", "zz", "x"],
        &["RENAME", "b", "b"],
        &["RENAMENX", "b", "b"],
        &["RENAMENX", "b", "c"],
        &["RENAME", "b", "d"],
        &["GET", "d"],
        &["MOVE", "d", "0"],
        &["MOVE", "d", "99"],
        &["MOVE", "d", "abc"],
        &["MOVE", "d", "2"],
        &["MOVE", "zz", "2"],
        &["COPY", "c", "c"],
        &["COPY", "c", "c2", "DB", "99"],
        &["COPY", "c", "c2", "FOO"],
        &["COPY", "c", "c2"],
        &["COPY", "c", "c2"],
        &["COPY", "c", "c2", "REPLACE"],
        &["COPY", "zz", "c3"],
        &["OBJECT", "ENCODING", "c"],
        &["OBJECT", "ENCODING", "long"],
        &["OBJECT", "ENCODING", "c2"],
        &["OBJECT", "ENCODING", "zz"],
        &["OBJECT", "REFCOUNT", "long"],
        &["OBJECT", "FREQ", "c"],
        &["OBJECT", "FOO", "c"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "HELP"],
        &["SCAN", "abc"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "FOO"],
        &["SCAN", "0", "TYPE"],
        &["KEYS", "zzz*"],
        &["DBSIZE"],
        &["SWAPDB", "0", "99"],
        &["SWAPDB", "a", "0"],
        &["SWAPDB", "0", "b"],
        &["SWAPDB", "0", "2"],
        &["GET", "d"],
        &["SWAPDB", "0", "2"],
        &["FLUSHDB", "FOO"],
        &["FLUSHDB", "ASYNC", "SYNC"],
        &["FLUSHALL", "SYNC"],
        &["DBSIZE"],
        &["RANDOMKEY"],
        &["DEL", "a", "b"],
    ];
    support::assert_same_replies(&mut ours, &mut theirs, script);
}

#[test]
fn object_encoding_matches_redis_7_0_for_every_type() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let script: &[&[&str]] = &[
        &["SET", "int", "12345"],
        &["SET", "short", "hello"],
        &["SET", "long", &"x".repeat(60)],
        &["RPUSH", "list", "a", "b"],
        &["HSET", "hash", "f", "v"],
        &["SADD", "ints", "1", "2", "3"],
        &["SADD", "strings", "a", "b"],
        &["ZADD", "zset", "1", "a"],
        &["OBJECT", "ENCODING", "int"],
        &["OBJECT", "ENCODING", "short"],
        &["OBJECT", "ENCODING", "long"],
        &["OBJECT", "ENCODING", "list"],
        &["OBJECT", "ENCODING", "hash"],
        &["OBJECT", "ENCODING", "ints"],
        &["OBJECT", "ENCODING", "strings"],
        &["OBJECT", "ENCODING", "zset"],
    ];
    support::assert_same_replies(&mut ours, &mut theirs, script);
}
