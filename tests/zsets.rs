//! Sorted set commands: behaviour, errors, blocking pops, and replies identical to
//! redis-server 7.0.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::Value;
use support::Server;

/// A minimal RESP2 client over a raw socket, one request at a time. (The redis crate
/// pipelines `CLIENT SETINFO` on connect, which this branch's server does not survive yet.)
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn connect(server: &Server) -> Client {
    let stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Client {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
    }
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Result<Value, String> {
    let mut header = String::new();
    reader.read_line(&mut header).expect("reply");
    let (kind, rest) = header.trim_end().split_at(1);
    match kind {
        "+" => Ok(Value::SimpleString(rest.to_string())),
        "-" => Err(rest.to_string()),
        ":" => Ok(Value::Int(rest.parse().unwrap())),
        "$" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return Ok(Value::Nil);
            }
            let mut data = vec![0u8; len as usize + 2];
            reader.read_exact(&mut data).unwrap();
            data.truncate(len as usize);
            Ok(Value::BulkString(data))
        }
        "*" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return Ok(Value::Nil);
            }
            let items = (0..len)
                .map(|_| {
                    read_reply(reader).unwrap_or_else(|e| Value::SimpleString(format!("-{e}")))
                })
                .collect();
            Ok(Value::Array(items))
        }
        other => panic!("unexpected reply type {other:?}"),
    }
}

/// Runs one command given as words; server errors become `Err(text)`.
fn run(con: &mut Client, words: &[&str]) -> Result<Value, String> {
    let mut request = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        request.extend_from_slice(format!("${}\r\n{}\r\n", word.len(), word).as_bytes());
    }
    con.writer.write_all(&request).unwrap();
    read_reply(&mut con.reader)
}

/// Runs a whitespace-separated command line.
fn line(con: &mut Client, text: &str) -> Result<Value, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    run(con, &words)
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn bulks(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| bulk(s)).collect())
}

fn err(text: &str) -> Result<Value, String> {
    Err(text.to_string())
}

#[test]
fn zadd_options_and_errors() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    assert_eq!(line(&mut con, "ZADD z 1 a 2 b"), Ok(Value::Int(2)));
    assert_eq!(line(&mut con, "ZADD z NX 5 a 3 c"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZSCORE z a"), Ok(bulk("1")));
    assert_eq!(line(&mut con, "ZADD z XX 7 a 9 d"), Ok(Value::Int(0)));
    assert_eq!(line(&mut con, "ZSCORE z d"), Ok(Value::Nil));
    assert_eq!(line(&mut con, "ZADD z GT CH 8 a 0 b"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZSCORE z a"), Ok(bulk("8")));
    assert_eq!(line(&mut con, "ZADD z LT CH 1 a 10 b"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZADD z INCR 2.5 a"), Ok(bulk("3.5")));
    assert_eq!(line(&mut con, "ZADD z NX INCR 1 a"), Ok(Value::Nil));
    assert_eq!(line(&mut con, "ZINCRBY z -0.5 a"), Ok(bulk("3")));
    assert_eq!(
        line(&mut con, "ZADD z NX XX 1 a"),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        line(&mut con, "ZADD z GT LT 1 a"),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        line(&mut con, "ZADD z INCR 1 a 2 b"),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(line(&mut con, "ZADD z 1 a 2"), err("ERR syntax error"));
    assert_eq!(
        line(&mut con, "ZADD z x a"),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        line(&mut con, "ZADD z nan a"),
        err("ERR value is not a valid float")
    );
    assert_eq!(line(&mut con, "ZADD inf +inf m"), Ok(Value::Int(1)));
    assert_eq!(
        line(&mut con, "ZINCRBY inf -inf m"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(line(&mut con, "ZADD neg -0 m"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZSCORE neg m"), Ok(bulk("0")));
}

#[test]
fn point_reads_and_zrem() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD z 1 a 2 b 3 c").unwrap();
    assert_eq!(line(&mut con, "ZCARD z"), Ok(Value::Int(3)));
    assert_eq!(line(&mut con, "ZCARD nokey"), Ok(Value::Int(0)));
    assert_eq!(
        line(&mut con, "ZMSCORE z a x c"),
        Ok(Value::Array(vec![bulk("1"), Value::Nil, bulk("3")]))
    );
    assert_eq!(line(&mut con, "ZRANK z c"), Ok(Value::Int(2)));
    assert_eq!(line(&mut con, "ZREVRANK z c"), Ok(Value::Int(0)));
    assert_eq!(line(&mut con, "ZRANK z x"), Ok(Value::Nil));
    assert_eq!(line(&mut con, "ZCOUNT z (1 +inf"), Ok(Value::Int(2)));
    assert_eq!(
        line(&mut con, "ZCOUNT z x 1"),
        err("ERR min or max is not a float")
    );
    assert_eq!(line(&mut con, "ZREM z a x b"), Ok(Value::Int(2)));
    assert_eq!(line(&mut con, "ZREM z c"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZCARD z"), Ok(Value::Int(0)));
    line(&mut con, "ZADD l 0 a 0 b 0 c 0 d").unwrap();
    assert_eq!(line(&mut con, "ZLEXCOUNT l (a [c"), Ok(Value::Int(2)));
    assert_eq!(line(&mut con, "ZLEXCOUNT l - +"), Ok(Value::Int(4)));
    assert_eq!(
        line(&mut con, "ZLEXCOUNT l a +"),
        err("ERR min or max not valid string range item")
    );
}

#[test]
fn zrange_variants_with_bounds_limit_and_rev() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD z 1 a 2 b 3 c 4 d 5 e").unwrap();
    assert_eq!(line(&mut con, "ZRANGE z 1 -2"), Ok(bulks(&["b", "c", "d"])));
    assert_eq!(
        line(&mut con, "ZRANGE z 0 1 REV WITHSCORES"),
        Ok(bulks(&["e", "5", "d", "4"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE z (1 3 BYSCORE"),
        Ok(bulks(&["b", "c"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE z (4 (1 BYSCORE REV"),
        Ok(bulks(&["c", "b"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE z -inf +inf BYSCORE LIMIT 1 2"),
        Ok(bulks(&["b", "c"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE z -inf +inf BYSCORE LIMIT -1 2"),
        Ok(bulks(&[]))
    );
    assert_eq!(
        line(&mut con, "ZRANGEBYSCORE z 2 +inf LIMIT 0 -1"),
        Ok(bulks(&["b", "c", "d", "e"]))
    );
    assert_eq!(
        line(&mut con, "ZREVRANGEBYSCORE z 4 (2 WITHSCORES"),
        Ok(bulks(&["d", "4", "c", "3"]))
    );
    assert_eq!(line(&mut con, "ZREVRANGE z 0 0"), Ok(bulks(&["e"])));
    assert_eq!(
        line(&mut con, "ZRANGE z 0 1 LIMIT 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    line(&mut con, "ZADD l 0 a 0 b 0 c 0 d").unwrap();
    assert_eq!(
        line(&mut con, "ZRANGE l [b (d BYLEX"),
        Ok(bulks(&["b", "c"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE l + - BYLEX REV LIMIT 1 2"),
        Ok(bulks(&["c", "b"]))
    );
    assert_eq!(line(&mut con, "ZRANGEBYLEX l - (c"), Ok(bulks(&["a", "b"])));
    assert_eq!(
        line(&mut con, "ZREVRANGEBYLEX l [c -"),
        Ok(bulks(&["c", "b", "a"]))
    );
    assert_eq!(
        line(&mut con, "ZRANGE l - + BYLEX WITHSCORES"),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(
        line(&mut con, "ZRANGEBYLEX l b +"),
        err("ERR min or max not valid string range item")
    );
    assert_eq!(
        line(&mut con, "ZRANGESTORE dst z 1 3 BYSCORE"),
        Ok(Value::Int(3))
    );
    assert_eq!(
        line(&mut con, "ZRANGE dst 0 -1"),
        Ok(bulks(&["a", "b", "c"]))
    );
    assert_eq!(line(&mut con, "ZRANGESTORE dst z 10 20"), Ok(Value::Int(0)));
    assert_eq!(line(&mut con, "ZCARD dst"), Ok(Value::Int(0)));
}

#[test]
fn zremrange_commands() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD z 1 a 2 b 3 c 4 d 5 e").unwrap();
    assert_eq!(line(&mut con, "ZREMRANGEBYRANK z 0 1"), Ok(Value::Int(2)));
    assert_eq!(
        line(&mut con, "ZREMRANGEBYSCORE z (3 +inf"),
        Ok(Value::Int(2))
    );
    assert_eq!(line(&mut con, "ZRANGE z 0 -1"), Ok(bulks(&["c"])));
    line(&mut con, "ZADD l 0 a 0 b 0 c").unwrap();
    assert_eq!(line(&mut con, "ZREMRANGEBYLEX l [b +"), Ok(Value::Int(2)));
    assert_eq!(line(&mut con, "ZREMRANGEBYLEX l - +"), Ok(Value::Int(1)));
    assert_eq!(line(&mut con, "ZCARD l"), Ok(Value::Int(0)));
}

#[test]
fn pops_with_counts() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD z 1 a 2 b 3 c 4 d").unwrap();
    assert_eq!(line(&mut con, "ZPOPMIN z"), Ok(bulks(&["a", "1"])));
    assert_eq!(
        line(&mut con, "ZPOPMAX z 2"),
        Ok(bulks(&["d", "4", "c", "3"]))
    );
    assert_eq!(line(&mut con, "ZPOPMIN z 0"), Ok(bulks(&[])));
    assert_eq!(
        line(&mut con, "ZPOPMIN z -1"),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        line(&mut con, "ZMPOP 2 nokey z MIN COUNT 10"),
        Ok(Value::Array(vec![
            bulk("z"),
            Value::Array(vec![bulks(&["b", "2"])])
        ]))
    );
    assert_eq!(line(&mut con, "ZMPOP 1 z MIN"), Ok(Value::Nil));
    assert_eq!(
        line(&mut con, "ZMPOP 0 z MIN"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        line(&mut con, "ZMPOP 1 z MIN COUNT 0"),
        err("ERR count should be greater than 0")
    );
    assert_eq!(line(&mut con, "ZMPOP 1 z LEFT"), err("ERR syntax error"));
    assert_eq!(line(&mut con, "ZPOPMIN nokey"), Ok(bulks(&[])));
}

#[test]
fn zrandmember_and_zscan() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD z 1 a 2 b 3 c").unwrap();
    let Ok(Value::Array(items)) = line(&mut con, "ZRANDMEMBER z 2 WITHSCORES") else {
        panic!("array expected");
    };
    assert_eq!(items.len(), 4);
    let Ok(Value::Array(items)) = line(&mut con, "ZRANDMEMBER z -7") else {
        panic!("array expected");
    };
    assert_eq!(items.len(), 7);
    let Ok(Value::Array(items)) = line(&mut con, "ZRANDMEMBER z 10") else {
        panic!("array expected");
    };
    assert_eq!(items.len(), 3);
    assert_eq!(line(&mut con, "ZRANDMEMBER nokey"), Ok(Value::Nil));
    assert_eq!(line(&mut con, "ZRANDMEMBER z 1 x"), err("ERR syntax error"));
    assert_eq!(
        line(&mut con, "ZSCAN z 0 MATCH [ab]"),
        Ok(Value::Array(vec![bulk("0"), bulks(&["a", "1", "b", "2"])]))
    );
    assert_eq!(line(&mut con, "ZSCAN z x"), err("ERR invalid cursor"));
    // A large set is scanned in steps; every member comes back.
    let mut words = vec!["ZADD", "big"];
    let names: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    for name in &names {
        words.push("1");
        words.push(name);
    }
    run(&mut con, &words).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    for _round in 0..1000 {
        let Ok(Value::Array(reply)) = run(&mut con, &["ZSCAN", "big", &cursor, "COUNT", "50"])
        else {
            panic!("array expected");
        };
        let Value::BulkString(next) = &reply[0] else {
            panic!()
        };
        let Value::Array(items) = &reply[1] else {
            panic!()
        };
        for pair in items.chunks(2) {
            seen.insert(format!("{:?}", pair[0]));
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
}

#[test]
fn set_operations_with_weights_and_aggregates() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    line(&mut con, "ZADD a 1 x 2 y 3 z").unwrap();
    line(&mut con, "ZADD b 10 y 20 z 30 w").unwrap();
    assert_eq!(
        line(&mut con, "ZUNION 2 a b WEIGHTS 2 1 WITHSCORES"),
        Ok(bulks(&["x", "2", "y", "14", "z", "26", "w", "30"]))
    );
    assert_eq!(
        line(&mut con, "ZINTER 2 a b AGGREGATE MAX WITHSCORES"),
        Ok(bulks(&["y", "10", "z", "20"]))
    );
    assert_eq!(
        line(&mut con, "ZINTER 2 a b AGGREGATE MIN WITHSCORES"),
        Ok(bulks(&["y", "2", "z", "3"]))
    );
    assert_eq!(
        line(&mut con, "ZDIFF 2 a b WITHSCORES"),
        Ok(bulks(&["x", "1"]))
    );
    assert_eq!(line(&mut con, "ZUNIONSTORE u 2 a b"), Ok(Value::Int(4)));
    assert_eq!(
        line(&mut con, "ZINTERSTORE i 2 a b WEIGHTS 1 0.5"),
        Ok(Value::Int(2))
    );
    assert_eq!(line(&mut con, "ZSCORE i z"), Ok(bulk("13")));
    assert_eq!(line(&mut con, "ZDIFFSTORE d 2 a a"), Ok(Value::Int(0)));
    assert_eq!(line(&mut con, "ZINTERCARD 2 a b"), Ok(Value::Int(2)));
    assert_eq!(
        line(&mut con, "ZINTERCARD 2 a b LIMIT 1"),
        Ok(Value::Int(1))
    );
    assert_eq!(
        line(&mut con, "ZINTERCARD 2 a b LIMIT -1"),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(
        line(&mut con, "ZUNIONSTORE u 0 a"),
        err("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(line(&mut con, "ZUNION 3 a b"), err("ERR syntax error"));
    assert_eq!(
        line(&mut con, "ZUNION 2 a b WEIGHTS 1 x"),
        err("ERR weight value is not a float")
    );
    assert_eq!(
        line(&mut con, "ZDIFF 2 a b WEIGHTS 1 1"),
        err("ERR syntax error")
    );
    assert_eq!(
        line(&mut con, "ZUNION 1 a AGGREGATE AVG"),
        err("ERR syntax error")
    );
}

#[test]
fn bzpopmin_is_served_by_zadd_from_another_connection() {
    let server = Server::start(&[]);
    let mut blocked = connect(&server);
    let mut writer = connect(&server);
    let waiter = std::thread::spawn(move || line(&mut blocked, "BZPOPMIN empty other 5"));
    // Give the waiter time to block; it must still be waiting (its timeout is 5 s).
    std::thread::sleep(Duration::from_millis(150));
    assert!(!waiter.is_finished(), "BZPOPMIN returned before any data");
    line(&mut writer, "ZADD other 7 m 8 n").unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(bulks(&["other", "m", "7"])));
    assert_eq!(line(&mut writer, "ZRANGE other 0 -1"), Ok(bulks(&["n"])));

    let mut blocked = connect(&server);
    let waiter = std::thread::spawn(move || line(&mut blocked, "BZMPOP 5 1 mp MAX COUNT 5"));
    std::thread::sleep(Duration::from_millis(150));
    line(&mut writer, "ZADD mp 1 a 2 b").unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        Ok(Value::Array(vec![
            bulk("mp"),
            Value::Array(vec![bulks(&["b", "2"]), bulks(&["a", "1"])])
        ]))
    );
    assert_eq!(line(&mut writer, "ZCARD mp"), Ok(Value::Int(0)));
}

#[test]
fn bzpopmin_times_out_and_serves_at_once_when_data_exists() {
    let server = Server::start(&[]);
    let mut con = connect(&server);
    let started = Instant::now();
    assert_eq!(line(&mut con, "BZPOPMAX nothing 0.2"), Ok(Value::Nil));
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(5));
    line(&mut con, "ZADD z 1 a 2 b").unwrap();
    assert_eq!(
        line(&mut con, "BZPOPMAX nothing z 1"),
        Ok(bulks(&["z", "b", "2"]))
    );
    assert_eq!(
        line(&mut con, "BZPOPMIN z -1"),
        err("ERR timeout is negative")
    );
    assert_eq!(line(&mut con, "BZMPOP 0.1 1 nothing MIN"), Ok(Value::Nil));
}

/// Deterministic commands run against both servers; every reply must be identical.
const SIDE_BY_SIDE: &[&str] = &[
    "ZADD z 1.1 a 2 b -inf c 1e-7 d 12345678901234567 e 3.0 f +inf g",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z a",
    "ZSCORE z e",
    "ZMSCORE z a b c d nosuch",
    "ZINCRBY z 0.1 a",
    "ZINCRBY z 1e300 b",
    "ZADD z INCR -1.5 f",
    "ZADD z CH GT 100 f 0 a",
    "ZADD z XX LT CH -1 b 5 zz",
    "ZADD z NX CH 1 a 42 new",
    "ZRANK z new",
    "ZREVRANK z new",
    "ZCOUNT z -inf +inf",
    "ZCOUNT z (1e-7 (100",
    "ZCOUNT z 5 1",
    "ZRANGE z (1 100 BYSCORE WITHSCORES",
    "ZRANGE z 100 (1 BYSCORE REV WITHSCORES LIMIT 1 2",
    "ZRANGE z -3 -1 REV",
    "ZRANGE z 5 100",
    "ZRANGEBYSCORE z -inf 2 WITHSCORES LIMIT 0 3",
    "ZREVRANGEBYSCORE z +inf -inf LIMIT 2 -1",
    "ZRANGEBYSCORE z (-inf (+inf",
    "ZRANGEBYSCORE z 1 x",
    "ZREVRANGE z 0 2 WITHSCORES",
    "ZRANGE z 0 1 BYLEX",
    "ZRANGE z 0 -1 REV REV",
    "ZRANGE z 0 -1 LIMIT 0",
    "ZADD lex 0 alpha 0 beta 0 gamma 0 delta 0 epsilon 0 a 0 b",
    "ZRANGEBYLEX lex - +",
    "ZRANGEBYLEX lex [b (gamma",
    "ZREVRANGEBYLEX lex (gamma [b LIMIT 1 2",
    "ZRANGE lex [alpha + BYLEX LIMIT 2 10",
    "ZLEXCOUNT lex (a [delta",
    "ZLEXCOUNT lex + -",
    "ZRANGEBYLEX lex alpha +",
    "ZRANGESTORE dst z 0 2",
    "ZRANGE dst 0 -1 WITHSCORES",
    "ZRANGESTORE dst lex [b [d BYLEX",
    "ZRANGE dst 0 -1",
    "ZRANGESTORE dst z 0 1 WITHSCORES",
    "ZADD w1 1 x 2 y 3 z",
    "ZADD w2 4 y 5 z 6 q",
    "ZUNION 2 w1 w2 WITHSCORES",
    "ZUNION 2 w1 w2 WEIGHTS 1.5 -2 AGGREGATE MIN WITHSCORES",
    "ZINTER 2 w1 w2 WEIGHTS 0 inf WITHSCORES",
    "ZINTER 3 w1 w2 nosuch",
    "ZDIFF 2 w2 w1 WITHSCORES",
    "ZUNIONSTORE out 2 w1 w2 AGGREGATE MAX",
    "ZRANGE out 0 -1 WITHSCORES",
    "ZINTERSTORE out 2 w1 w2 WEIGHTS 2 3",
    "ZRANGE out 0 -1 WITHSCORES",
    "ZDIFFSTORE out 1 nosuch",
    "ZCARD out",
    "ZINTERCARD 2 w1 w2 LIMIT 0",
    "ZUNION 2 w1 w2 WITHSCORES WEIGHTS 1",
    "ZSCAN w1 0",
    "ZSCAN w1 0 MATCH *z COUNT 1",
    "ZSCAN nosuch 0",
    "ZREMRANGEBYRANK z -2 -1",
    "ZREMRANGEBYSCORE z (1 3",
    "ZREMRANGEBYLEX lex (alpha [delta",
    "ZREMRANGEBYRANK z 10 20",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZPOPMIN z",
    "ZPOPMAX z 2",
    "ZPOPMIN z 0",
    "ZMPOP 2 nosuch lex MAX COUNT 2",
    "ZMPOP 1 lex MIN",
    "ZMPOP 1 lex MIN COUNT",
    "ZMPOP 1 lex",
    "ZREM lex alpha nosuch b",
    "ZRANGE lex 0 -1",
    "ZADD neg -0 m -2.5 n",
    "ZRANGE neg 0 -1 WITHSCORES",
    "ZADD big 9007199254740993 m 1e20 n -1e-300 o 0.1 p",
    "ZRANGE big 0 -1 WITHSCORES",
    "ZRANDMEMBER nosuch 3",
    "ZRANDMEMBER big 0",
    "ZADD z",
    "ZADD z NX",
    "ZADD z 1",
    "ZINCRBY z x a",
    "ZRANK nosuch a",
    "ZPOPMIN a b c",
    "BZPOPMIN big 0",
    "BZPOPMAX nosuch big 0",
    "BZMPOP 0 2 nosuch big MAX COUNT 3",
];

#[test]
fn replies_match_redis_7_0() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut a = connect(&ours);
    let mut b = connect(&redis);
    for command in SIDE_BY_SIDE {
        let expected = line(&mut b, command);
        let actual = line(&mut a, command);
        assert_eq!(actual, expected, "{command}");
    }
}
