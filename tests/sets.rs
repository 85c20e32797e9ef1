//! Set commands over TCP: replies, errors, RESP3 shapes, randomness sanity, SSCAN, and a
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

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
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
fn sadd_counts_new_members_and_srem_deletes_emptied_sets() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["SADD", "s", "a", "b", "a"]), 2);
    assert_eq!(int(&mut con, &["SADD", "s", "b", "c"]), 1);
    assert_eq!(int(&mut con, &["SCARD", "s"]), 3);
    assert_eq!(int(&mut con, &["SREM", "s", "a", "x"]), 1);
    assert_eq!(int(&mut con, &["SREM", "missing", "a"]), 0);
    assert_eq!(int(&mut con, &["SREM", "s", "b", "c"]), 2);
    assert_eq!(int(&mut con, &["SCARD", "s"]), 0);
}

#[test]
fn membership_queries_treat_missing_keys_as_empty() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "s", "a", "b"]);
    assert_eq!(int(&mut con, &["SISMEMBER", "s", "a"]), 1);
    assert_eq!(int(&mut con, &["SISMEMBER", "s", "z"]), 0);
    assert_eq!(int(&mut con, &["SISMEMBER", "nope", "a"]), 0);
    assert_eq!(
        query(&mut con, &["SMISMEMBER", "s", "a", "z", "b"]),
        Ok(Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            Value::Int(1)
        ]))
    );
    assert_eq!(
        query(&mut con, &["SMISMEMBER", "nope", "a"]),
        Ok(Value::Array(vec![Value::Int(0)]))
    );
    assert_eq!(int(&mut con, &["SCARD", "nope"]), 0);
    assert_eq!(
        sorted(strings(query(&mut con, &["SMEMBERS", "s"]).unwrap())),
        vec!["a", "b"]
    );
    assert!(strings(query(&mut con, &["SMEMBERS", "nope"]).unwrap()).is_empty());
}

#[test]
fn integer_sets_list_members_in_numeric_order() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "s", "10", "-5", "3", "200"]);
    assert_eq!(
        strings(query(&mut con, &["SMEMBERS", "s"]).unwrap()),
        vec!["-5", "3", "10", "200"]
    );
}

#[test]
fn set_commands_reject_other_types() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["HSET", "str", "f", "v"]);
    int(&mut con, &["SADD", "s", "a"]);
    for args in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "2"],
        &["SRANDMEMBER", "str"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
        &["SINTER", "s", "str"],
        &["SINTER", "missing", "str"],
        &["SINTERCARD", "2", "s", "str"],
        &["SINTERSTORE", "d", "s", "str"],
        &["SUNION", "s", "str"],
        &["SDIFF", "s", "str"],
        &["SSCAN", "str", "0"],
    ] {
        assert!(error(&mut con, args).contains("WRONGTYPE"), "{args:?}");
    }
}

#[test]
fn argument_errors_match_redis_wording() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "s", "a", "b"]);
    assert!(
        error(&mut con, &["SPOP", "s", "-1"]).contains("value is out of range, must be positive")
    );
    assert!(error(&mut con, &["SPOP", "s", "1", "2"]).contains("syntax error"));
    assert!(error(&mut con, &["SRANDMEMBER", "s", "x"]).contains("not an integer"));
    assert!(error(&mut con, &["SRANDMEMBER", "s", "1", "2"]).contains("syntax error"));
    assert!(error(&mut con, &["SRANDMEMBER", "s", "-9223372036854775808"])
        .contains("value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    assert!(error(&mut con, &["SINTERCARD", "0", "s"]).contains("numkeys should be greater than 0"));
    assert!(error(&mut con, &["SINTERCARD", "3", "s"])
        .contains("Number of keys can't be greater than number of args"));
    assert!(error(&mut con, &["SINTERCARD", "1", "s", "LIMIT", "-1"])
        .contains("LIMIT can't be negative"));
    assert!(error(&mut con, &["SINTERCARD", "1", "s", "LIMIT"]).contains("syntax error"));
    assert!(error(&mut con, &["SSCAN", "s", "x"]).contains("invalid cursor"));
    assert!(error(&mut con, &["SSCAN", "s", "0", "COUNT", "0"]).contains("syntax error"));
    assert!(
        error(&mut con, &["SADD", "s"]).contains("wrong number of arguments for 'sadd' command")
    );
}

#[test]
fn spop_removes_what_it_returns() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(query(&mut con, &["SPOP", "nope"]), Ok(Value::Nil));
    assert!(strings(query(&mut con, &["SPOP", "nope", "3"]).unwrap()).is_empty());
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    int(&mut con, &sadd);
    let one = match query(&mut con, &["SPOP", "s"]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(int(&mut con, &["SISMEMBER", "s", &one]), 0);
    let popped = strings(query(&mut con, &["SPOP", "s", "10"]).unwrap());
    assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 10);
    assert_eq!(int(&mut con, &["SCARD", "s"]), 39);
    assert!(strings(query(&mut con, &["SPOP", "s", "0"]).unwrap()).is_empty());
    let rest = strings(query(&mut con, &["SPOP", "s", "100"]).unwrap());
    assert_eq!(rest.len(), 39);
    assert_eq!(int(&mut con, &["SCARD", "s"]), 0);
    let mut all: HashSet<String> = rest.into_iter().chain(popped).collect();
    all.insert(one);
    assert_eq!(all, members.into_iter().collect());
}

#[test]
fn spop_and_srandmember_pick_every_member_roughly_evenly() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "s", "a", "b", "c", "d", "e"]);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for member in strings(query(&mut con, &["SRANDMEMBER", "s", "-5000"]).unwrap()) {
        *counts.entry(member).or_default() += 1;
    }
    assert_eq!(counts.len(), 5);
    for (member, n) in &counts {
        // Expected 1000 each; 700..1300 is many standard deviations wide.
        assert!((700..1300).contains(n), "{member} drawn {n} times");
    }
    let mut pops: HashMap<String, usize> = HashMap::new();
    for _ in 0..500 {
        int(&mut con, &["SADD", "p", "a", "b", "c", "d", "e"]);
        if let Value::BulkString(b) = query(&mut con, &["SPOP", "p"]).unwrap() {
            *pops.entry(String::from_utf8(b).unwrap()).or_default() += 1;
        }
    }
    assert_eq!(pops.len(), 5);
    for (member, n) in &pops {
        assert!((50..150).contains(n), "{member} popped {n} times");
    }
}

#[test]
fn srandmember_count_returns_distinct_members_unless_negative() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    int(&mut con, &sadd);
    for count in ["1", "5", "15", "19", "20", "100"] {
        let got = strings(query(&mut con, &["SRANDMEMBER", "s", count]).unwrap());
        let expected = count.parse::<usize>().unwrap().min(20);
        assert_eq!(got.len(), expected);
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            expected,
            "count {count}"
        );
    }
    assert_eq!(
        strings(query(&mut con, &["SRANDMEMBER", "s", "-30"]).unwrap()).len(),
        30
    );
    assert!(strings(query(&mut con, &["SRANDMEMBER", "s", "0"]).unwrap()).is_empty());
    assert!(strings(query(&mut con, &["SRANDMEMBER", "nope", "5"]).unwrap()).is_empty());
    assert_eq!(query(&mut con, &["SRANDMEMBER", "nope"]), Ok(Value::Nil));
    assert_eq!(int(&mut con, &["SCARD", "s"]), 20);
}

#[test]
fn smove_moves_members_between_sets() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "a", "x", "y"]);
    assert_eq!(int(&mut con, &["SMOVE", "a", "b", "x"]), 1);
    assert_eq!(int(&mut con, &["SMOVE", "a", "b", "nope"]), 0);
    assert_eq!(int(&mut con, &["SMOVE", "missing", "b", "x"]), 0);
    assert_eq!(int(&mut con, &["SMOVE", "a", "a", "y"]), 1);
    assert_eq!(int(&mut con, &["SMOVE", "a", "b", "y"]), 1);
    assert_eq!(int(&mut con, &["SCARD", "a"]), 0);
    assert_eq!(
        sorted(strings(query(&mut con, &["SMEMBERS", "b"]).unwrap())),
        vec!["x", "y"]
    );
}

#[test]
fn set_algebra_and_store_variants() {
    let server = Server::start(&[]);
    let mut con = server.client();
    int(&mut con, &["SADD", "a", "1", "2", "3", "x"]);
    int(&mut con, &["SADD", "b", "2", "3", "4", "x"]);
    int(&mut con, &["SADD", "c", "3", "x", "9"]);
    assert_eq!(
        sorted(strings(
            query(&mut con, &["SINTER", "a", "b", "c"]).unwrap()
        )),
        vec!["3", "x"]
    );
    assert!(strings(query(&mut con, &["SINTER", "a", "missing"]).unwrap()).is_empty());
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "b"]), 3);
    assert_eq!(
        int(&mut con, &["SINTERCARD", "2", "a", "b", "LIMIT", "2"]),
        2
    );
    assert_eq!(
        int(&mut con, &["SINTERCARD", "2", "a", "b", "limit", "0"]),
        3
    );
    assert_eq!(
        sorted(strings(
            query(&mut con, &["SUNION", "a", "b", "missing"]).unwrap()
        )),
        vec!["1", "2", "3", "4", "x"]
    );
    assert_eq!(
        sorted(strings(query(&mut con, &["SDIFF", "a", "b", "c"]).unwrap())),
        vec!["1"]
    );
    assert!(strings(query(&mut con, &["SDIFF", "a", "a"]).unwrap()).is_empty());
    assert!(strings(query(&mut con, &["SDIFF", "missing", "a"]).unwrap()).is_empty());

    // STORE replaces any destination value, of any type.
    int(&mut con, &["HSET", "d", "f", "v"]);
    assert_eq!(int(&mut con, &["SINTERSTORE", "d", "a", "b"]), 3);
    assert_eq!(
        sorted(strings(query(&mut con, &["SMEMBERS", "d"]).unwrap())),
        vec!["2", "3", "x"]
    );
    assert_eq!(int(&mut con, &["SUNIONSTORE", "d", "a", "c"]), 5);
    assert_eq!(int(&mut con, &["SDIFFSTORE", "d", "a", "b"]), 1);
    assert_eq!(
        strings(query(&mut con, &["SMEMBERS", "d"]).unwrap()),
        vec!["1"]
    );
    // An empty result deletes the destination.
    assert_eq!(int(&mut con, &["SINTERSTORE", "d", "a", "missing"]), 0);
    assert_eq!(int(&mut con, &["SCARD", "d"]), 0);
    assert_eq!(int(&mut con, &["SDIFFSTORE", "d", "a", "a"]), 0);
    assert_eq!(int(&mut con, &["SCARD", "d"]), 0);
}

#[test]
fn sscan_visits_every_member_of_a_large_set() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let members: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    for chunk in members.chunks(100) {
        let mut sadd = vec!["SADD", "s"];
        sadd.extend(chunk.iter().map(String::as_str));
        int(&mut con, &sadd);
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let reply = query(&mut con, &["SSCAN", "s", &cursor, "COUNT", "37"]).unwrap();
        let Value::Array(mut parts) = reply else {
            panic!("{reply:?}")
        };
        let elements = strings(parts.pop().unwrap());
        let Value::BulkString(next) = parts.pop().unwrap() else {
            panic!()
        };
        cursor = String::from_utf8(next).unwrap();
        seen.extend(elements);
        calls += 1;
        assert!(calls < 1000, "SSCAN does not terminate");
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, members.iter().cloned().collect());

    // MATCH filters; a small integer set comes back whole with cursor 0.
    let reply = query(
        &mut con,
        &["SSCAN", "s", "0", "MATCH", "member:99*", "COUNT", "2000"],
    )
    .unwrap();
    let Value::Array(mut parts) = reply else {
        panic!()
    };
    assert_eq!(
        sorted(strings(parts.pop().unwrap())),
        vec![
            "member:99",
            "member:990",
            "member:991",
            "member:992",
            "member:993",
            "member:994",
            "member:995",
            "member:996",
            "member:997",
            "member:998",
            "member:999"
        ]
    );
    int(&mut con, &["SADD", "ints", "3", "1", "2"]);
    assert_eq!(
        query(&mut con, &["SSCAN", "ints", "0", "COUNT", "1"]),
        Ok(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"1".to_vec()),
                Value::BulkString(b"2".to_vec()),
                Value::BulkString(b"3".to_vec()),
            ])
        ]))
    );
    assert_eq!(
        query(&mut con, &["SSCAN", "missing", "0"]),
        Ok(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![])
        ]))
    );
}

#[test]
fn resp3_clients_get_sets_for_set_replies() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Needs HELLO (connection commands); fails until that family is merged.
    let hello = compact_command(&mut stream, &mut reader, &["HELLO", "3"]);
    assert!(hello.starts_with('%'), "HELLO 3 replied {hello}");
    compact_command(&mut stream, &mut reader, &["SADD", "s", "1", "2"]);
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SMEMBERS", "s"]),
        "~2[$1,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SMEMBERS", "nope"]),
        "~0[]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SINTER", "s", "s"]),
        "~2[$1,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SUNION", "s"]),
        "~2[$1,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SPOP", "nope", "1"]),
        "~0[]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SPOP", "nope"]),
        "_"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SRANDMEMBER", "s", "5"]),
        "*2[$1,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SPOP", "s", "5"]),
        "~2[$1,$2]"
    );
}

#[test]
fn resp2_clients_get_arrays_for_set_replies() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    compact_command(&mut stream, &mut reader, &["SADD", "s", "1", "2"]);
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SMEMBERS", "s"]),
        "*2[$1,$2]"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SPOP", "nope"]),
        "$-1"
    );
    assert_eq!(
        compact_command(&mut stream, &mut reader, &["SPOP", "nope", "2"]),
        "*0[]"
    );
}

/// Commands whose replies are deterministic up to element order (the sorted flag).
const SIDE_BY_SIDE: &[(bool, &[&str])] = &[
    (false, &["SADD", "a", "1", "2", "3", "4", "x", "y"]),
    (false, &["SADD", "a", "1", "z"]),
    (false, &["SADD", "b", "3", "4", "5", "y"]),
    (false, &["SADD", "ints", "30", "-2", "7", "100"]),
    (false, &["SMEMBERS", "ints"]),
    (false, &["SSCAN", "ints", "0", "COUNT", "1"]),
    (false, &["SSCAN", "ints", "0", "MATCH", "*0"]),
    (false, &["SSCAN", "nope", "0"]),
    (false, &["SSCAN", "ints", "abc"]),
    (false, &["SSCAN", "ints", "0", "COUNT", "0"]),
    (false, &["SSCAN", "ints", "0", "BADOPT"]),
    (true, &["SMEMBERS", "a"]),
    (false, &["SMEMBERS", "nope"]),
    (false, &["SCARD", "a"]),
    (false, &["SISMEMBER", "a", "x"]),
    (false, &["SMISMEMBER", "a", "x", "nope", "1"]),
    (true, &["SINTER", "a", "b"]),
    (false, &["SINTER", "a", "nope"]),
    (false, &["SINTERCARD", "2", "a", "b"]),
    (false, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
    (false, &["SINTERCARD", "0", "a"]),
    (false, &["SINTERCARD", "5", "a"]),
    (false, &["SINTERCARD", "1", "a", "LIMIT", "-3"]),
    (false, &["SINTERCARD", "1", "a", "FOO"]),
    (true, &["SUNION", "a", "b", "nope"]),
    (true, &["SDIFF", "a", "b"]),
    (false, &["SDIFF", "a", "a"]),
    (false, &["SINTERSTORE", "dst", "a", "b"]),
    (true, &["SMEMBERS", "dst"]),
    (false, &["SUNIONSTORE", "dst", "a", "ints"]),
    (false, &["SDIFFSTORE", "dst", "ints", "a"]),
    (false, &["SMEMBERS", "dst"]),
    (false, &["SINTERSTORE", "dst", "a", "nope"]),
    (false, &["SCARD", "dst"]),
    (false, &["SMOVE", "a", "c", "x"]),
    (false, &["SMOVE", "a", "c", "x"]),
    (false, &["SMOVE", "nope", "c", "x"]),
    (false, &["SMOVE", "c", "c", "x"]),
    (false, &["SREM", "a", "1", "2", "nope"]),
    (false, &["SPOP", "nope"]),
    (false, &["SPOP", "a", "0"]),
    (false, &["SPOP", "a", "-1"]),
    (false, &["SPOP", "a", "1", "2"]),
    (false, &["SPOP", "ints", "10"]),
    (false, &["SCARD", "ints"]),
    (false, &["SRANDMEMBER", "nope"]),
    (false, &["SRANDMEMBER", "nope", "3"]),
    (false, &["SRANDMEMBER", "a", "0"]),
    (false, &["SRANDMEMBER", "a", "-9223372036854775808"]),
    (false, &["SRANDMEMBER", "c"]),
    (false, &["HSET", "str", "f", "v"]),
    (false, &["SADD", "str", "a"]),
    (false, &["SINTER", "nope", "str"]),
    (false, &["SMOVE", "nope", "str", "a"]),
    (false, &["SMOVE", "a", "str", "a"]),
    (false, &["SINTERSTORE", "str", "a", "b"]),
    (false, &["HGETALL", "str"]),
    (false, &["SADD", "s"]),
    (false, &["SCARD", "a", "b"]),
];

#[test]
fn set_replies_match_redis_side_by_side() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    for (unordered, args) in SIDE_BY_SIDE {
        let mut mine = query(&mut ours, args);
        let mut reference = query(&mut theirs, args);
        if *unordered {
            mine = mine.map(|v| {
                Value::Array(
                    sorted(strings(v))
                        .into_iter()
                        .map(|s| Value::BulkString(s.into_bytes()))
                        .collect(),
                )
            });
            reference = reference.map(|v| {
                Value::Array(
                    sorted(strings(v))
                        .into_iter()
                        .map(|s| Value::BulkString(s.into_bytes()))
                        .collect(),
                )
            });
        }
        assert_eq!(mine, reference, "{args:?}");
    }
}
