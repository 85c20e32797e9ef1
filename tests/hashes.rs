//! Hash commands over TCP: replies, errors, RESP3 shapes, randomness sanity, HSCAN, and a
//! side-by-side run against a real redis-server 7.0.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::BufReader;

use redis::Value;
use support::resp::compact_command;
use support::Server;

fn query(con: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query::<Value>(con).map_err(|e| e.to_string())
}

fn strings(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn int(con: &mut redis::Connection, args: &[&str]) -> i64 {
    match query(con, args) {
        Ok(Value::Int(n)) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn error(con: &mut redis::Connection, args: &[&str]) -> String {
    match query(con, args) {
        Err(e) => e,
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
    }
}

#[test]
fn hset_counts_new_fields_and_hmset_replies_ok() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["HSET", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(int(&mut con, &["HSET", "h", "a", "10", "c", "3"]), 1);
    assert_eq!(query(&mut con, &["HMSET", "h", "d", "4"]), Ok(Value::Okay));
    assert_eq!(int(&mut con, &["HLEN", "h"]), 4);
    assert_eq!(
        query(&mut con, &["HGET", "h", "a"]),
        Ok(Value::BulkString(b"10".to_vec()))
    );
    assert_eq!(query(&mut con, &["HGET", "h", "nope"]), Ok(Value::Nil));
    assert_eq!(query(&mut con, &["HGET", "nope", "a"]), Ok(Value::Nil));
    assert!(error(&mut con, &["HSET", "h", "a", "1", "b"])
        .contains("wrong number of arguments for 'hset' command"));
    assert!(error(&mut con, &["HMSET", "h", "a"])
        .contains("wrong number of arguments for 'hmset' command"));
}

#[test]
fn hsetnx_only_sets_missing_fields() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["HSETNX", "h", "a", "1"]), 1);
    assert_eq!(int(&mut con, &["HSETNX", "h", "a", "2"]), 0);
    assert_eq!(
        query(&mut con, &["HGET", "h", "a"]),
        Ok(Value::BulkString(b"1".to_vec()))
    );
}

#[test]
fn field_queries_treat_missing_keys_as_empty() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["HSET", "h", "a", "hello", "b", ""]);
    assert_eq!(
        query(&mut con, &["HMGET", "h", "a", "x", "b"]),
        Ok(Value::Array(vec![
            Value::BulkString(b"hello".to_vec()),
            Value::Nil,
            Value::BulkString(vec![])
        ]))
    );
    assert_eq!(
        query(&mut con, &["HMGET", "nope", "a"]),
        Ok(Value::Array(vec![Value::Nil]))
    );
    assert_eq!(int(&mut con, &["HSTRLEN", "h", "a"]), 5);
    assert_eq!(int(&mut con, &["HSTRLEN", "h", "x"]), 0);
    assert_eq!(int(&mut con, &["HEXISTS", "h", "b"]), 1);
    assert_eq!(int(&mut con, &["HEXISTS", "h", "x"]), 0);
    assert_eq!(int(&mut con, &["HEXISTS", "nope", "x"]), 0);
    assert_eq!(int(&mut con, &["HLEN", "nope"]), 0);
    assert!(strings(query(&mut con, &["HKEYS", "nope"]).unwrap()).is_empty());
    assert!(strings(query(&mut con, &["HVALS", "nope"]).unwrap()).is_empty());
    assert!(strings(query(&mut con, &["HGETALL", "nope"]).unwrap()).is_empty());
}

#[test]
fn small_hashes_keep_insertion_order_across_deletes() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(
        &mut con,
        &["HSET", "h", "z", "1", "y", "2", "x", "3", "w", "4"],
    );
    assert_eq!(int(&mut con, &["HDEL", "h", "y", "nope"]), 1);
    assert_eq!(
        strings(query(&mut con, &["HKEYS", "h"]).unwrap()),
        vec!["z", "x", "w"]
    );
    assert_eq!(
        strings(query(&mut con, &["HVALS", "h"]).unwrap()),
        vec!["1", "3", "4"]
    );
    assert_eq!(
        strings(query(&mut con, &["HGETALL", "h"]).unwrap()),
        vec!["z", "1", "x", "3", "w", "4"]
    );
}

#[test]
fn hdel_deletes_emptied_hashes() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(int(&mut con, &["HDEL", "nope", "a"]), 0);
    assert_eq!(int(&mut con, &["HDEL", "h", "a", "b", "a"]), 2);
    assert_eq!(int(&mut con, &["HLEN", "h"]), 0);
    // The key is gone, so it can now hold a set.
    assert_eq!(int(&mut con, &["SADD", "h", "m"]), 1);
}

#[test]
fn hincrby_adds_and_checks_overflow() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(int(&mut con, &["HINCRBY", "h", "n", "-7"]), -2);
    int(
        &mut con,
        &["HSET", "h", "s", "abc", "big", "9223372036854775800"],
    );
    assert!(error(&mut con, &["HINCRBY", "h", "s", "1"]).contains("hash value is not an integer"));
    assert!(error(&mut con, &["HINCRBY", "h", "big", "100"])
        .contains("increment or decrement would overflow"));
    assert!(error(&mut con, &["HINCRBY", "h", "n", "1.5"])
        .contains("value is not an integer or out of range"));
}

#[test]
fn hincrbyfloat_prints_like_redis_long_double() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut incr = |field: &str, by: &str| match query(&mut con, &["HINCRBYFLOAT", "h", field, by])
    {
        Ok(Value::BulkString(b)) => String::from_utf8(b).unwrap(),
        other => format!("{other:?}"),
    };
    assert_eq!(incr("f", "10.50"), "10.5");
    assert_eq!(incr("f", "0.1"), "10.6");
    assert_eq!(incr("g", "5.0e3"), "5000");
    assert_eq!(incr("g", "-5000"), "0");
    assert_eq!(incr("i", "0.1"), "0.1");
    assert_eq!(incr("i", "0.2"), "0.3");
    assert!(incr("f", "abc").contains("value is not a valid float"));
    assert!(incr("f", "inf").contains("value is NaN or Infinity"));
    int(&mut con, &["HSET", "h", "s", "x", "huge", "1e4932"]);
    assert!(error(&mut con, &["HINCRBYFLOAT", "h", "s", "1"]).contains("hash value is not a float"));
    assert!(error(&mut con, &["HINCRBYFLOAT", "h", "huge", "1e4932"])
        .contains("increment would produce NaN or Infinity"));
}

#[test]
fn hash_commands_reject_other_types() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "s", "a"]);
    for args in [
        &["HSET", "s", "f", "v"][..],
        &["HSETNX", "s", "f", "v"],
        &["HMSET", "s", "f", "v"],
        &["HGET", "s", "f"],
        &["HMGET", "s", "f"],
        &["HDEL", "s", "f"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HGETALL", "s"],
        &["HINCRBY", "s", "f", "1"],
        &["HINCRBYFLOAT", "s", "f", "1"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "2"],
        &["HSCAN", "s", "0"],
    ] {
        assert!(error(&mut con, args).contains("WRONGTYPE"), "{args:?}");
    }
}

#[test]
fn hrandfield_counts_values_and_errors() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let fields: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let mut hset = vec!["HSET", "h"];
    for field in &fields {
        hset.push(field);
        hset.push(field);
    }
    int(&mut con, &hset);
    for count in ["1", "5", "15", "20", "50"] {
        let got = strings(query(&mut con, &["HRANDFIELD", "h", count]).unwrap());
        let expected = count.parse::<usize>().unwrap().min(20);
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            expected,
            "count {count}"
        );
    }
    let pairs = strings(query(&mut con, &["HRANDFIELD", "h", "-30", "WITHVALUES"]).unwrap());
    assert_eq!(pairs.len(), 60);
    for pair in pairs.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    assert!(strings(query(&mut con, &["HRANDFIELD", "h", "0"]).unwrap()).is_empty());
    assert!(strings(query(&mut con, &["HRANDFIELD", "nope", "3"]).unwrap()).is_empty());
    assert_eq!(query(&mut con, &["HRANDFIELD", "nope"]), Ok(Value::Nil));
    assert!(error(&mut con, &["HRANDFIELD", "h", "1", "WITHSCORES"]).contains("syntax error"));
    assert!(error(&mut con, &["HRANDFIELD", "h", "1", "WITHVALUES", "x"]).contains("syntax error"));
    assert!(error(&mut con, &["HRANDFIELD", "h", "x"]).contains("not an integer"));
    assert!(error(
        &mut con,
        &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]
    )
    .contains("value is out of range"));
}

#[test]
fn hrandfield_picks_every_field_roughly_evenly() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(
        &mut con,
        &["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for field in strings(query(&mut con, &["HRANDFIELD", "h", "-4000"]).unwrap()) {
        *counts.entry(field).or_default() += 1;
    }
    assert_eq!(counts.len(), 4);
    for (field, n) in &counts {
        assert!((700..1300).contains(n), "{field} drawn {n} times");
    }
}

#[test]
fn hscan_visits_every_field_of_a_large_hash() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let fields: Vec<String> = (0..1000).map(|i| format!("field:{i}")).collect();
    for chunk in fields.chunks(100) {
        let mut hset = vec!["HSET", "h"];
        for field in chunk {
            hset.push(field);
            hset.push("v");
        }
        int(&mut con, &hset);
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let reply = query(&mut con, &["HSCAN", "h", &cursor, "COUNT", "33"]).unwrap();
        let Value::Array(mut parts) = reply else {
            panic!("{reply:?}")
        };
        let elements = strings(parts.pop().unwrap());
        for pair in elements.chunks(2) {
            assert_eq!(pair[1], "v");
            seen.insert(pair[0].clone());
        }
        let Value::BulkString(next) = parts.pop().unwrap() else {
            panic!()
        };
        cursor = String::from_utf8(next).unwrap();
        calls += 1;
        assert!(calls < 1000, "HSCAN does not terminate");
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, fields.iter().cloned().collect());
    let reply = query(
        &mut con,
        &["HSCAN", "h", "0", "MATCH", "field:99?", "COUNT", "5000"],
    )
    .unwrap();
    let Value::Array(mut parts) = reply else {
        panic!()
    };
    assert_eq!(strings(parts.pop().unwrap()).len(), 20);
    assert!(error(&mut con, &["HSCAN", "h", "x"]).contains("invalid cursor"));
    assert!(error(&mut con, &["HSCAN", "h", "0", "COUNT", "0"]).contains("syntax error"));
}

#[test]
fn resp3_clients_get_maps_and_pairs_for_hash_replies() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Needs HELLO (connection commands); fails until that family is merged.
    let hello = compact_command(&mut stream, &mut reader, &["HELLO", "3"]);
    assert!(hello.starts_with('%'), "HELLO 3 replied {hello}");
    compact_command(&mut stream, &mut reader, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HGETALL", "h"]),
        "%2[$a,$1,$b,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HGETALL", "nope"]),
        "%0[]"
    );
    assert_eq!(
        compact_command(
            &mut stream,
            &mut reader,
            &["HRANDFIELD", "h", "5", "WITHVALUES"]
        ),
        "*2[*2[$a,$1],*2[$b,$2]]"
    );
    let one = compact_command(
        &mut stream,
        &mut reader,
        &["HRANDFIELD", "h", "-1", "WITHVALUES"],
    );
    assert!(one == "*1[*2[$a,$1]]" || one == "*1[*2[$b,$2]]", "{one}");
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HRANDFIELD", "nope"]),
        "_"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HGET", "h", "x"]),
        "_"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HSCAN", "h", "0"]),
        "*2[$0,*4[$a,$1,$b,$2]]"
    );
}

#[test]
fn resp2_clients_get_flat_arrays_for_hash_replies() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    compact_command(&mut stream, &mut reader, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HGETALL", "h"]),
        "*4[$a,$1,$b,$2]"
    );
    assert_eq!(
        compact_command(
            &mut stream,
            &mut reader,
            &["HRANDFIELD", "h", "5", "WITHVALUES"]
        ),
        "*4[$a,$1,$b,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["HGET", "h", "x"]),
        "$-1"
    );
}

/// Deterministic hash commands; small hashes reply in insertion order on both servers.
const SIDE_BY_SIDE: &[&[&str]] = &[
    &["HSET", "h", "a", "1", "b", "2", "c", "3"],
    &["HSET", "h", "a", "9"],
    &["HSET", "h", "a"],
    &["HMSET", "h", "d", "4"],
    &["HSETNX", "h", "d", "5"],
    &["HSETNX", "h", "e", "5"],
    &["HGET", "h", "a"],
    &["HGET", "h", "zz"],
    &["HMGET", "h", "a", "zz", "e"],
    &["HMGET", "nope", "a"],
    &["HDEL", "h", "b", "zz"],
    &["HGETALL", "h"],
    &["HKEYS", "h"],
    &["HVALS", "h"],
    &["HGETALL", "nope"],
    &["HLEN", "h"],
    &["HSTRLEN", "h", "a"],
    &["HEXISTS", "h", "a"],
    &["HINCRBY", "h", "n", "10"],
    &["HINCRBY", "h", "n", "-3"],
    &["HINCRBY", "h", "a", "x"],
    &["HINCRBY", "h", "n", "9223372036854775807"],
    &["HINCRBYFLOAT", "h", "fl", "3.14"],
    &["HINCRBYFLOAT", "h", "fl", "-1.04"],
    &["HINCRBYFLOAT", "h", "fl", "1e3"],
    &["HINCRBYFLOAT", "h", "fl", "0.0000001"],
    &["HINCRBYFLOAT", "h", "fl", "nan"],
    &["HINCRBYFLOAT", "h", "fl", "+inf"],
    &["HINCRBYFLOAT", "h", "n", "2.5"],
    &["HGETALL", "h"],
    &["HSCAN", "h", "0"],
    &["HSCAN", "h", "0", "MATCH", "f*", "COUNT", "1"],
    &["HSCAN", "nope", "0"],
    &["HSCAN", "h", "-"],
    &["HSCAN", "h", "0", "COUNT"],
    &["HRANDFIELD", "nope"],
    &["HRANDFIELD", "nope", "2"],
    &["HRANDFIELD", "h", "0"],
    &["HRANDFIELD", "h", "1", "WITHVALUES", "extra"],
    &["HRANDFIELD", "h", "-9223372036854775808"],
    &["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"],
    &["HDEL", "h", "a", "c", "d", "e", "n", "fl"],
    &["HLEN", "h"],
    &["SADD", "s", "x"],
    &["HGET", "s", "x"],
    &["HMGET", "s", "x"],
    &["HGETALL", "s", "extra"],
];

#[test]
fn hash_replies_match_redis_side_by_side() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    for args in SIDE_BY_SIDE {
        assert_eq!(query(&mut ours, args), query(&mut theirs, args), "{args:?}");
    }
}

#[test]
fn hincrbyfloat_matches_redis_over_a_long_chain_of_increments() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    // A fixed pseudo-random walk: results soon have 20+ significant digits, which must be
    // re-parsed exactly on the next step for the digits to keep matching.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for step in 0..300 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mantissa = (state >> 33) % 2_000_000;
        let exponent = ((state >> 20) % 15) as i32 - 10;
        let sign = if state & 1 == 0 { "" } else { "-" };
        let increment = format!("{sign}{mantissa}e{exponent}");
        let field = format!("f{}", step % 3);
        let args = ["HINCRBYFLOAT", "h", field.as_str(), increment.as_str()];
        assert_eq!(
            query(&mut ours, &args),
            query(&mut theirs, &args),
            "step {step}: {args:?}"
        );
    }
}
