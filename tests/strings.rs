//! String commands over TCP, with a side-by-side comparison against redis-server 7.0.

mod support;

use std::time::Duration;

use redis::Value;
use support::{run, Server};

fn error_text(result: redis::RedisResult<Value>) -> String {
    let error = result.expect_err("expected an error reply");
    format!(
        "{} {}",
        error.code().unwrap_or(""),
        error.detail().unwrap_or("")
    )
}

#[test]
fn set_and_get_round_trip_binary_values() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let value: &[u8] = b"a\r\nb\0c";
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg(value)
        .query(&mut con)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(got, value);
    assert_eq!(run(&mut con, &["GET", "missing"]).unwrap(), Value::Nil);
}

#[test]
fn set_options_nx_xx_get_and_keepttl() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(run(&mut con, &["SET", "k", "1", "XX"]).unwrap(), Value::Nil);
    assert_eq!(
        run(&mut con, &["SET", "k", "1", "NX"]).unwrap(),
        Value::Okay
    );
    assert_eq!(run(&mut con, &["SET", "k", "2", "NX"]).unwrap(), Value::Nil);
    assert_eq!(
        run(&mut con, &["SET", "k", "3", "XX", "GET"]).unwrap(),
        Value::BulkString(b"1".to_vec())
    );
    assert_eq!(
        run(&mut con, &["SET", "k", "4", "EX", "100"]).unwrap(),
        Value::Okay
    );
    assert_eq!(
        run(&mut con, &["SET", "k", "5", "KEEPTTL"]).unwrap(),
        Value::Okay
    );
    assert_eq!(run(&mut con, &["TTL", "k"]).unwrap(), Value::Int(100));
    assert_eq!(run(&mut con, &["SET", "k", "6"]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &["TTL", "k"]).unwrap(), Value::Int(-1));
}

#[test]
fn set_rejects_conflicting_options_and_bad_times() {
    let server = Server::start(&[]);
    let mut con = server.client();
    for bad in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "FOO"],
    ] {
        assert_eq!(
            error_text(run(&mut con, bad)),
            "ERR syntax error",
            "{bad:?}"
        );
    }
    assert_eq!(
        error_text(run(&mut con, &["SET", "k", "v", "EX", "0"])),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        error_text(run(&mut con, &["SETEX", "k", "-1", "v"])),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        error_text(run(&mut con, &["SET", "k", "v", "PX", "abc"])),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn key_with_px_ttl_is_gone_after_it_passes() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(
        run(&mut con, &["SET", "k", "v", "PX", "100"]).unwrap(),
        Value::Okay
    );
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(run(&mut con, &["GET", "k"]).unwrap(), Value::Nil);
}

#[test]
fn getex_getdel_getset_change_ttl_and_value() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(
        run(&mut con, &["GETEX", "k", "PX", "50000"]).unwrap(),
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(run(&mut con, &["TTL", "k"]).unwrap(), Value::Int(50));
    run(&mut con, &["GETEX", "k", "PERSIST"]).unwrap();
    assert_eq!(run(&mut con, &["TTL", "k"]).unwrap(), Value::Int(-1));
    run(&mut con, &["GETEX", "k", "EXAT", "1"]).unwrap();
    assert_eq!(run(&mut con, &["EXISTS", "k"]).unwrap(), Value::Int(0));
    run(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(
        run(&mut con, &["GETSET", "k", "w"]).unwrap(),
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(
        run(&mut con, &["GETDEL", "k"]).unwrap(),
        Value::BulkString(b"w".to_vec())
    );
    assert_eq!(run(&mut con, &["GETDEL", "k"]).unwrap(), Value::Nil);
}

#[test]
fn setrange_refuses_strings_past_proto_max_bulk_len() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(
        error_text(run(&mut con, &["SETRANGE", "k", "536870911", "xx"])),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(
        run(&mut con, &["SETRANGE", "k", "3", "ab"]).unwrap(),
        Value::Int(5)
    );
    assert_eq!(
        run(&mut con, &["GET", "k"]).unwrap(),
        Value::BulkString(b"\0\0\0ab".to_vec())
    );
}

#[test]
fn counters_keep_ttl_and_report_overflow() {
    let server = Server::start(&[]);
    let mut con = server.client();
    run(&mut con, &["SET", "n", "10", "EX", "100"]).unwrap();
    assert_eq!(
        run(&mut con, &["INCRBY", "n", "5"]).unwrap(),
        Value::Int(15)
    );
    assert_eq!(run(&mut con, &["TTL", "n"]).unwrap(), Value::Int(100));
    run(&mut con, &["SET", "n", "9223372036854775807"]).unwrap();
    assert_eq!(
        error_text(run(&mut con, &["INCR", "n"])),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        error_text(run(&mut con, &["DECRBY", "n", "-9223372036854775808"])),
        "ERR decrement would overflow"
    );
}

/// The same commands against ringkv and redis-server 7.0 give identical replies.
#[test]
fn string_commands_reply_exactly_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let script: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["GET", "s"],
        &["SET", "s", "x", "NX", "GET"],
        &["SET", "s", "y", "XX", "GET", "PX", "100000"],
        &["SET", "s", "z", "EX", "10", "EX", "20"],
        &["SET", "s", "v", "NX", "XX"],
        &["SET", "s", "v", "PERSIST"],
        &["SET", "s", "v", "EX", "-5"],
        &["SET", "s", "v", "EX", "9223372036854775807"],
        &["SET", "s", "v", "PXAT", "9223372036854775807"],
        &["SETNX", "s", "a"],
        &["SETNX", "new", "a"],
        &["SETEX", "s", "100", "b"],
        &["PSETEX", "s", "0", "b"],
        &["GETEX", "s", "PERSIST", "EX", "10"],
        &["GETEX", "s", "KEEPTTL"],
        &["GETEX", "missing", "EX", "-1"],
        &["GETEX", "s", "EX", "-1"],
        &["MSET", "a", "1", "b", "2"],
        &["MSET", "a", "1", "b"],
        &["MSETNX", "a", "1", "c", "3"],
        &["MSETNX", "c", "1", "d", "3"],
        &["MGET", "a", "b", "missing", "c"],
        &["APPEND", "a", "23"],
        &["APPEND", "fresh", "xyz"],
        &["STRLEN", "a"],
        &["STRLEN", "missing"],
        &["GETRANGE", "s", "0", "-1"],
        &["GETRANGE", "s", "-100", "100"],
        &["GETRANGE", "s", "5", "2"],
        &["GETRANGE", "s", "-1", "-5"],
        &["GETRANGE", "missing", "0", "5"],
        &["SUBSTR", "a", "1", "2"],
        &["SETRANGE", "a", "1", "ZZ"],
        &["SETRANGE", "a", "-1", "ZZ"],
        &["SETRANGE", "missing", "5", ""],
        &["SETRANGE", "a", "10", ""],
        &["INCR", "counter"],
        &["INCRBY", "counter", "41"],
        &["DECR", "counter"],
        &["DECRBY", "counter", "10"],
        &["INCRBY", "counter", "abc"],
        &["INCR", "s"],
        &["INCRBY", "counter", "9223372036854775807"],
        &["SET", "f", "10.5"],
        &["INCRBYFLOAT", "f", "0.1"],
        &["INCRBYFLOAT", "f", "-5"],
        &["INCRBYFLOAT", "f2", "0.1"],
        &["INCRBYFLOAT", "f2", "0.2"],
        &["INCRBYFLOAT", "f3", "5.0e3"],
        &["INCRBYFLOAT", "f3", "1.23456789012345678"],
        &["INCRBYFLOAT", "f4", "17179869184"],
        &["INCRBYFLOAT", "f4", "0.000001"],
        &["INCRBYFLOAT", "f", "abc"],
        &["INCRBYFLOAT", "f", "inf"],
        &["INCRBYFLOAT", "f", "nan"],
        &["INCRBYFLOAT", "s", "1"],
        &["INCRBYFLOAT", "f5", "-0.0"],
        &["GET", "f5"],
        &["GETDEL", "a"],
        &["GETDEL", "a"],
        &["GETSET", "b", "new"],
        &["GETSET", "missing2", "v"],
        &["SET"],
        &["GET", "a", "b"],
    ];
    support::assert_same_replies(&mut ours, &mut theirs, script);
}
