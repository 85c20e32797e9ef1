//! List commands, checked byte for byte on the wire, and blocking pops across connections.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::Server;

/// A connection speaking raw RESP: each reply comes back as its exact bytes, so `$-1` and
/// `*-1`, `-ERR ...` texts and array shapes are all compared exactly.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let stream = server.raw();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n{}\r\n", arg.len(), arg).as_bytes());
        }
        self.writer.write_all(&request).unwrap();
    }

    /// Reads one whole reply (nested aggregates included) as text.
    fn read(&mut self) -> String {
        let mut out = String::new();
        self.read_into(&mut out);
        out
    }

    fn read_into(&mut self, out: &mut String) {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reply line");
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        out.push_str(&line);
        let n: i64 = line[1..line.len() - 2].parse().unwrap_or(0);
        match line.as_bytes()[0] {
            b'$' if n >= 0 => {
                let mut body = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut body).unwrap();
                out.push_str(&String::from_utf8_lossy(&body));
            }
            b'*' | b'~' | b'>' => (0..n).for_each(|_| self.read_into(out)),
            b'%' => (0..2 * n).for_each(|_| self.read_into(out)),
            _ => {}
        }
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }
}

/// Expected encodings.
fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn bulks(items: &[&str]) -> String {
    let mut out = format!("*{}\r\n", items.len());
    for item in items {
        out.push_str(&bulk(item));
    }
    out
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn err(text: &str) -> String {
    format!("-{text}\r\n")
}

const NIL: &str = "$-1\r\n";
const NIL_ARRAY: &str = "*-1\r\n";
const EMPTY: &str = "*0\r\n";
const OK: &str = "+OK\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// Makes `key` hold a string, if this build has SET yet (the strings family may be merged
/// later); false means the caller should skip its wrong-type checks.
fn make_string(raw: &mut Raw, key: &str) -> bool {
    let reply = raw.cmd(&["SET", key, "x"]);
    if reply.starts_with("-ERR unknown command") {
        eprintln!("SET is not available in this build: skipping wrong-type checks");
        return false;
    }
    assert_eq!(reply, OK);
    true
}

/// Waits until `n` clients are blocked, when INFO is available; otherwise waits long enough
/// for a command already written on another connection to have been executed.
fn wait_blocked(raw: &mut Raw, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = raw.cmd(&["INFO", "clients"]);
        if info.starts_with('-') {
            thread::sleep(Duration::from_millis(250));
            return;
        }
        let wanted = format!("blocked_clients:{n}\r\n");
        if info.contains(&wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// NON-BLOCKING COMMANDS
// ---------------------------------------------------------------------------------------------

#[test]
fn pushes_reply_the_new_length_and_keep_argument_order() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]), int(2));
    assert_eq!(c.cmd(&["LPUSH", "l", "x", "y"]), int(4));
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulks(&["y", "x", "a", "b"])
    );
    assert_eq!(c.cmd(&["LPUSHX", "missing", "a"]), int(0));
    assert_eq!(c.cmd(&["RPUSHX", "missing", "a"]), int(0));
    assert_eq!(c.cmd(&["LLEN", "missing"]), int(0));
    assert_eq!(c.cmd(&["RPUSHX", "l", "z"]), int(5));
    assert_eq!(c.cmd(&["LPUSHX", "l", "w"]), int(6));
    assert_eq!(c.cmd(&["LLEN", "l"]), int(6));
    assert_eq!(
        c.cmd(&["LPUSH", "l"]),
        err("ERR wrong number of arguments for 'lpush' command")
    );
}

#[test]
fn pops_with_and_without_count() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    assert_eq!(c.cmd(&["LPOP", "missing"]), NIL);
    assert_eq!(c.cmd(&["LPOP", "missing", "2"]), NIL_ARRAY);
    assert_eq!(c.cmd(&["RPOP", "missing", "0"]), NIL_ARRAY);
    c.cmd(&["RPUSH", "l", "a", "b", "c", "d", "e"]);
    assert_eq!(c.cmd(&["LPOP", "l"]), bulk("a"));
    assert_eq!(c.cmd(&["RPOP", "l"]), bulk("e"));
    assert_eq!(c.cmd(&["LPOP", "l", "0"]), EMPTY);
    assert_eq!(c.cmd(&["RPOP", "l", "2"]), bulks(&["d", "c"]));
    assert_eq!(c.cmd(&["LPOP", "l", "10"]), bulks(&["b"]));
    assert_eq!(c.cmd(&["LLEN", "l"]), int(0));
    assert_eq!(c.cmd(&["LPOP", "l"]), NIL);
    let positive = err("ERR value is out of range, must be positive");
    assert_eq!(c.cmd(&["LPOP", "l", "-1"]), positive);
    assert_eq!(c.cmd(&["LPOP", "l", "abc"]), positive);
    assert_eq!(
        c.cmd(&["LPOP", "l", "1", "2"]),
        err("ERR wrong number of arguments for 'lpop' command")
    );
}

#[test]
fn index_range_and_set() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(c.cmd(&["LINDEX", "l", "0"]), bulk("a"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-1"]), bulk("c"));
    assert_eq!(c.cmd(&["LINDEX", "l", "3"]), NIL);
    assert_eq!(c.cmd(&["LINDEX", "l", "-4"]), NIL);
    assert_eq!(c.cmd(&["LINDEX", "missing", "abc"]), NIL);
    assert_eq!(
        c.cmd(&["LINDEX", "l", "abc"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["LRANGE", "l", "1", "100"]), bulks(&["b", "c"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "-100", "0"]), bulks(&["a"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "2", "1"]), EMPTY);
    assert_eq!(c.cmd(&["LRANGE", "missing", "0", "-1"]), EMPTY);
    assert_eq!(
        c.cmd(&["LRANGE", "missing", "x", "1"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["LSET", "l", "1", "B"]), OK);
    assert_eq!(c.cmd(&["LSET", "l", "-1", "C"]), OK);
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["a", "B", "C"]));
    assert_eq!(
        c.cmd(&["LSET", "l", "3", "x"]),
        err("ERR index out of range")
    );
    assert_eq!(
        c.cmd(&["LSET", "missing", "0", "x"]),
        err("ERR no such key")
    );
}

#[test]
fn insert_remove_and_trim() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "l", "a", "b", "a", "c", "a"]);
    assert_eq!(c.cmd(&["LINSERT", "l", "BEFORE", "b", "x"]), int(6));
    assert_eq!(c.cmd(&["LINSERT", "l", "after", "c", "y"]), int(7));
    assert_eq!(c.cmd(&["LINSERT", "l", "after", "zz", "y"]), int(-1));
    assert_eq!(c.cmd(&["LINSERT", "missing", "after", "a", "y"]), int(0));
    assert_eq!(
        c.cmd(&["LINSERT", "l", "middle", "a", "y"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulks(&["a", "x", "b", "a", "c", "y", "a"])
    );
    assert_eq!(c.cmd(&["LREM", "l", "-2", "a"]), int(2));
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulks(&["a", "x", "b", "c", "y"])
    );
    assert_eq!(c.cmd(&["LREM", "l", "0", "nothing"]), int(0));
    assert_eq!(c.cmd(&["LREM", "missing", "0", "a"]), int(0));
    c.cmd(&["RPUSH", "l", "b", "b"]);
    assert_eq!(c.cmd(&["LREM", "l", "2", "b"]), int(2));
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulks(&["a", "x", "c", "y", "b"])
    );
    assert_eq!(c.cmd(&["LTRIM", "l", "1", "-2"]), OK);
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["x", "c", "y"]));
    assert_eq!(c.cmd(&["LTRIM", "missing", "0", "1"]), OK);
    assert_eq!(c.cmd(&["LTRIM", "l", "5", "10"]), OK);
    assert_eq!(c.cmd(&["LLEN", "l"]), int(0));
    c.cmd(&["RPUSH", "r", "a", "a"]);
    assert_eq!(c.cmd(&["LREM", "r", "0", "a"]), int(2));
    assert_eq!(c.cmd(&["LPOP", "r"]), NIL);
}

#[test]
fn lpos_finds_ranks_counts_and_bounds() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "l", "a", "b", "c", "a", "b", "c", "a"]);
    assert_eq!(c.cmd(&["LPOS", "l", "b"]), int(1));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "2"]), int(3));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "-1"]), int(6));
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK", "-2"]), int(3));
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "COUNT", "0"]),
        "*3\r\n:0\r\n:3\r\n:6\r\n"
    );
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "COUNT", "2", "RANK", "-1"]),
        "*2\r\n:6\r\n:3\r\n"
    );
    assert_eq!(c.cmd(&["LPOS", "l", "c", "MAXLEN", "2"]), NIL);
    assert_eq!(
        c.cmd(&["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "3"]),
        "*1\r\n:2\r\n"
    );
    assert_eq!(c.cmd(&["LPOS", "l", "zz"]), NIL);
    assert_eq!(c.cmd(&["LPOS", "l", "zz", "COUNT", "1"]), EMPTY);
    assert_eq!(c.cmd(&["LPOS", "missing", "a"]), NIL);
    assert_eq!(c.cmd(&["LPOS", "missing", "a", "COUNT", "1"]), EMPTY);
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "RANK", "0"]),
        err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
    );
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "COUNT", "-1"]),
        err("ERR COUNT can't be negative")
    );
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "MAXLEN", "x"]),
        err("ERR MAXLEN can't be negative")
    );
    assert_eq!(c.cmd(&["LPOS", "l", "a", "RANK"]), err("ERR syntax error"));
    assert_eq!(
        c.cmd(&["LPOS", "l", "a", "FOO", "1"]),
        err("ERR syntax error")
    );
}

#[test]
fn lmove_and_rpoplpush_move_one_element() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), bulk("a"));
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "right", "left"]), bulk("c"));
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["c", "a"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), bulk("b"));
    assert_eq!(c.cmd(&["LLEN", "src"]), int(0));
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), NIL);
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "LEFT"]), NIL);
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "dst", "UP", "LEFT"]),
        err("ERR syntax error")
    );
    // Rotation in place.
    assert_eq!(c.cmd(&["LMOVE", "dst", "dst", "RIGHT", "LEFT"]), bulk("a"));
    assert_eq!(
        c.cmd(&["LRANGE", "dst", "0", "-1"]),
        bulks(&["a", "b", "c"])
    );
    c.cmd(&["RPUSH", "one", "x"]);
    assert_eq!(c.cmd(&["RPOPLPUSH", "one", "one"]), bulk("x"));
    assert_eq!(c.cmd(&["LRANGE", "one", "0", "-1"]), bulks(&["x"]));
}

#[test]
fn lmpop_pops_from_the_first_non_empty_key() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "b", "1", "2", "3"]);
    assert_eq!(
        c.cmd(&["LMPOP", "2", "a", "b", "LEFT"]),
        format!("*2\r\n{}{}", bulk("b"), bulks(&["1"]))
    );
    assert_eq!(
        c.cmd(&["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "5"]),
        format!("*2\r\n{}{}", bulk("b"), bulks(&["3", "2"]))
    );
    assert_eq!(c.cmd(&["LMPOP", "2", "a", "b", "LEFT"]), NIL_ARRAY);
    let numkeys = err("ERR numkeys should be greater than 0");
    assert_eq!(c.cmd(&["LMPOP", "0", "a", "LEFT"]), numkeys);
    assert_eq!(c.cmd(&["LMPOP", "x", "a", "LEFT"]), numkeys);
    assert_eq!(c.cmd(&["LMPOP", "5", "a", "LEFT"]), err("ERR syntax error"));
    assert_eq!(c.cmd(&["LMPOP", "1", "a", "UP"]), err("ERR syntax error"));
    assert_eq!(
        c.cmd(&["LMPOP", "1", "a", "LEFT", "COUNT", "0"]),
        err("ERR count should be greater than 0")
    );
    assert_eq!(
        c.cmd(&["LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"]),
        err("ERR syntax error")
    );
}

#[test]
fn list_commands_refuse_other_types() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    if !make_string(&mut c, "s") {
        return;
    }
    c.cmd(&["RPUSH", "l", "a"]);
    for command in [
        &["LPUSH", "s", "a"][..],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "1"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "-1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "l", "LEFT", "LEFT"],
        &["LMOVE", "l", "s", "LEFT", "LEFT"],
        &["RPOPLPUSH", "l", "s"],
        &["LMPOP", "2", "missing", "s", "LEFT"],
        &["BLPOP", "missing", "s", "0"],
        &["BLMPOP", "0", "1", "s", "LEFT"],
        &["BLMOVE", "s", "l", "LEFT", "LEFT", "0"],
        &["BRPOPLPUSH", "l", "s", "0"],
    ] {
        assert_eq!(c.cmd(command), WRONGTYPE, "{command:?}");
    }
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), bulks(&["a"]));
}

// ---------------------------------------------------------------------------------------------
// BLOCKING COMMANDS
// ---------------------------------------------------------------------------------------------

#[test]
fn blocking_pops_answer_at_once_when_data_is_there() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    c.cmd(&["RPUSH", "k2", "a", "b"]);
    assert_eq!(
        c.cmd(&["BLPOP", "k1", "k2", "k3", "0"]),
        bulks(&["k2", "a"])
    );
    assert_eq!(c.cmd(&["BRPOP", "k1", "k2", "0"]), bulks(&["k2", "b"]));
    c.cmd(&["RPUSH", "k3", "x", "y", "z"]);
    assert_eq!(
        c.cmd(&["BLMPOP", "0", "2", "k1", "k3", "RIGHT", "COUNT", "2"]),
        format!("*2\r\n{}{}", bulk("k3"), bulks(&["z", "y"]))
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "k3", "d", "LEFT", "LEFT", "0"]),
        bulk("x")
    );
    c.cmd(&["RPUSH", "k4", "p"]);
    assert_eq!(c.cmd(&["BRPOPLPUSH", "k4", "d", "0"]), bulk("p"));
    assert_eq!(c.cmd(&["LRANGE", "d", "0", "-1"]), bulks(&["p", "x"]));
}

#[test]
fn blocking_argument_errors() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    let not_float = err("ERR timeout is not a float or out of range");
    let negative = err("ERR timeout is negative");
    assert_eq!(c.cmd(&["BLPOP", "k", "abc"]), not_float);
    assert_eq!(c.cmd(&["BRPOP", "k", "-1"]), negative);
    assert_eq!(
        c.cmd(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "x"]),
        not_float
    );
    assert_eq!(
        c.cmd(&["BLMOVE", "a", "b", "UP", "RIGHT", "0"]),
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["BRPOPLPUSH", "a", "b", "-0.5"]), negative);
    assert_eq!(c.cmd(&["BLMPOP", "x", "1", "k", "LEFT"]), not_float);
    // numkeys is checked before the timeout, as Redis does.
    assert_eq!(
        c.cmd(&["BLMPOP", "x", "0", "k", "LEFT"]),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        c.cmd(&["BLPOP", "k"]),
        err("ERR wrong number of arguments for 'blpop' command")
    );
}

#[test]
fn blpop_waits_and_is_served_by_a_push_from_another_connection() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    waiter.send(&["BLPOP", "q", "5"]);
    wait_blocked(&mut pusher, 1);
    let started = Instant::now();
    let handle = thread::spawn(move || waiter.read());
    assert_eq!(pusher.cmd(&["RPUSH", "q", "job1", "job2"]), int(2));
    assert_eq!(handle.join().unwrap(), bulks(&["q", "job1"]));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(pusher.cmd(&["LRANGE", "q", "0", "-1"]), bulks(&["job2"]));
}

#[test]
fn blocked_clients_on_one_key_are_served_first_come_first_served() {
    let server = Server::start(&[]);
    let mut first = Raw::connect(&server);
    let mut second = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    first.send(&["BRPOP", "q", "5"]);
    wait_blocked(&mut pusher, 1);
    second.send(&["BRPOP", "q", "5"]);
    wait_blocked(&mut pusher, 2);
    assert_eq!(pusher.cmd(&["LPUSH", "q", "one", "two"]), int(2));
    // BRPOP takes from the tail: "one" is the tail after LPUSH q one two.
    assert_eq!(first.read(), bulks(&["q", "one"]));
    assert_eq!(second.read(), bulks(&["q", "two"]));
    assert_eq!(pusher.cmd(&["LLEN", "q"]), int(0));
}

#[test]
fn blpop_on_several_keys_is_served_by_whichever_gets_data() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    waiter.send(&["BLPOP", "a", "b", "c", "5"]);
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "b", "vb"]);
    assert_eq!(waiter.read(), bulks(&["b", "vb"]));
    // The waiter is gone from every key it waited on.
    pusher.cmd(&["RPUSH", "a", "va"]);
    assert_eq!(pusher.cmd(&["LLEN", "a"]), int(1));
}

#[test]
fn blpop_times_out_with_a_null_array() {
    let server = Server::start(&[]);
    let mut c = Raw::connect(&server);
    let started = Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.3"]), NIL_ARRAY);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // The connection works normally afterwards.
    assert_eq!(c.cmd(&["LLEN", "nothing"]), int(0));
    let started = Instant::now();
    assert_eq!(
        c.cmd(&["BLMOVE", "nothing", "d", "LEFT", "LEFT", "0.2"]),
        NIL
    );
    assert_eq!(c.cmd(&["BLMPOP", "0.2", "1", "nothing", "LEFT"]), NIL_ARRAY);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn blmove_is_served_and_fills_the_destination() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    pusher.cmd(&["RPUSH", "dst", "old"]);
    waiter.send(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "5"]);
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "src", "a", "b"]);
    assert_eq!(waiter.read(), bulk("b"));
    assert_eq!(pusher.cmd(&["LRANGE", "src", "0", "-1"]), bulks(&["a"]));
    assert_eq!(
        pusher.cmd(&["LRANGE", "dst", "0", "-1"]),
        bulks(&["b", "old"])
    );
}

#[test]
fn blmove_chain_serves_a_client_blocked_on_the_destination() {
    let server = Server::start(&[]);
    let mut mover = Raw::connect(&server);
    let mut popper = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    mover.send(&["BRPOPLPUSH", "src", "dst", "5"]);
    wait_blocked(&mut pusher, 1);
    popper.send(&["BLPOP", "dst", "5"]);
    wait_blocked(&mut pusher, 2);
    pusher.cmd(&["LPUSH", "src", "v"]);
    assert_eq!(mover.read(), bulk("v"));
    assert_eq!(popper.read(), bulks(&["dst", "v"]));
    assert_eq!(pusher.cmd(&["LLEN", "dst"]), int(0));
}

#[test]
fn blmpop_is_served_with_up_to_count_elements() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    waiter.send(&["BLMPOP", "5", "2", "x", "y", "LEFT", "COUNT", "2"]);
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "y", "1", "2", "3"]);
    assert_eq!(
        waiter.read(),
        format!("*2\r\n{}{}", bulk("y"), bulks(&["1", "2"]))
    );
    assert_eq!(pusher.cmd(&["LRANGE", "y", "0", "-1"]), bulks(&["3"]));
}

#[test]
fn a_push_in_another_database_does_not_serve_a_blocked_client() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut pusher = Raw::connect(&server);
    assert_eq!(waiter.cmd(&["SELECT", "1"]), OK);
    waiter.send(&["BLPOP", "k", "5"]);
    wait_blocked(&mut pusher, 1);
    assert_eq!(pusher.cmd(&["RPUSH", "k", "db0"]), int(1));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(pusher.cmd(&["LLEN", "k"]), int(1));
    assert_eq!(pusher.cmd(&["SELECT", "1"]), OK);
    assert_eq!(pusher.cmd(&["RPUSH", "k", "db1"]), int(1));
    assert_eq!(waiter.read(), bulks(&["k", "db1"]));
    assert_eq!(pusher.cmd(&["LLEN", "k"]), int(0));
    assert_eq!(pusher.cmd(&["SELECT", "0"]), OK);
    assert_eq!(pusher.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["db0"]));
}

#[test]
fn a_client_disconnecting_while_blocked_leaves_no_waiter() {
    let server = Server::start(&[]);
    let mut pusher = Raw::connect(&server);
    {
        let mut waiter = Raw::connect(&server);
        waiter.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut pusher, 1);
        waiter.writer.shutdown(std::net::Shutdown::Both).unwrap();
    }
    wait_blocked(&mut pusher, 0);
    assert_eq!(pusher.cmd(&["RPUSH", "k", "kept"]), int(1));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(pusher.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["kept"]));
}

#[test]
fn a_waiter_stays_blocked_while_its_key_holds_another_type() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut other = Raw::connect(&server);
    waiter.send(&["BLPOP", "k", "5"]);
    wait_blocked(&mut other, 1);
    if !make_string(&mut other, "k") {
        assert_eq!(other.cmd(&["RPUSH", "k", "v"]), int(1));
        assert_eq!(waiter.read(), bulks(&["k", "v"]));
        return;
    }
    assert_eq!(other.cmd(&["DEL", "k"]), int(1));
    assert_eq!(other.cmd(&["RPUSH", "k", "v"]), int(1));
    assert_eq!(waiter.read(), bulks(&["k", "v"]));
}

#[test]
fn served_blmove_with_a_wrong_type_destination_gets_wrongtype() {
    let server = Server::start(&[]);
    let mut waiter = Raw::connect(&server);
    let mut other = Raw::connect(&server);
    if !make_string(&mut other, "dst") {
        return;
    }
    waiter.send(&["BLMOVE", "src", "dst", "LEFT", "LEFT", "5"]);
    wait_blocked(&mut other, 1);
    other.cmd(&["RPUSH", "src", "v"]);
    assert_eq!(waiter.read(), WRONGTYPE);
    assert_eq!(other.cmd(&["LRANGE", "src", "0", "-1"]), bulks(&["v"]));
}

// ---------------------------------------------------------------------------------------------
// SIDE BY SIDE WITH REDIS 7.0
// ---------------------------------------------------------------------------------------------

#[test]
fn non_blocking_list_commands_reply_exactly_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = Raw::connect(&ringkv);
    let mut theirs = Raw::connect(&redis);
    let script: &[&[&str]] = &[
        &[
            "RPUSH", "l", "a", "b", "c", "a", "b", "c", "a", "1", "2", "-3",
        ],
        &["LPUSH", "l", "z", "y"],
        &["LPUSHX", "nope", "a"],
        &["RPUSHX", "l", "tail"],
        &["LLEN", "l"],
        &["LLEN", "nope"],
        &["LRANGE", "l", "0", "-1"],
        &["LRANGE", "l", "-3", "-2"],
        &["LRANGE", "l", "5", "2"],
        &["LRANGE", "l", "-100", "100"],
        &["LRANGE", "l", "9223372036854775807", "-9223372036854775808"],
        &["LRANGE", "l", "1", "x"],
        &["LINDEX", "l", "3"],
        &["LINDEX", "l", "-1"],
        &["LINDEX", "l", "100"],
        &["LINDEX", "l", "1.5"],
        &["LINDEX", "nope", "0"],
        &["LSET", "l", "0", "Z"],
        &["LSET", "l", "-100", "Z"],
        &["LSET", "nope", "0", "Z"],
        &["LSET", "l", "x", "Z"],
        &["LINSERT", "l", "BEFORE", "c", "before-c"],
        &["LINSERT", "l", "AFTER", "-3", "after"],
        &["LINSERT", "l", "AFTER", "missing", "x"],
        &["LINSERT", "nope", "AFTER", "a", "x"],
        &["LINSERT", "l", "NEAR", "a", "x"],
        &["LPOS", "l", "a"],
        &["LPOS", "l", "a", "RANK", "-1"],
        &["LPOS", "l", "a", "RANK", "3"],
        &["LPOS", "l", "a", "RANK", "4"],
        &["LPOS", "l", "a", "COUNT", "0"],
        &["LPOS", "l", "a", "COUNT", "2", "RANK", "2"],
        &["LPOS", "l", "a", "COUNT", "0", "RANK", "-2", "MAXLEN", "8"],
        &["LPOS", "l", "a", "RANK", "-9223372036854775808"],
        &["LPOS", "l", "a", "MAXLEN", "1"],
        &["LPOS", "l", "a", "RANK", "0"],
        &["LPOS", "l", "a", "RANK", "x"],
        &["LPOS", "l", "a", "COUNT", "-1"],
        &["LPOS", "l", "a", "MAXLEN", "-1"],
        &["LPOS", "l", "a", "COUNT"],
        &["LPOS", "nope", "a"],
        &["LPOS", "nope", "a", "COUNT", "0"],
        &["LREM", "l", "1", "a"],
        &["LREM", "l", "-1", "b"],
        &["LREM", "l", "0", "c"],
        &["LREM", "l", "x", "c"],
        &["LRANGE", "l", "0", "-1"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "3"],
        &["LPOP", "l", "0"],
        &["LPOP", "l", "-2"],
        &["LPOP", "l", "abc"],
        &["LPOP", "nope"],
        &["LPOP", "nope", "3"],
        &["LPOP", "nope", "0"],
        &["RPOP", "l", "1", "2"],
        &["LMOVE", "l", "m", "LEFT", "RIGHT"],
        &["LMOVE", "l", "m", "right", "left"],
        &["LMOVE", "l", "l", "LEFT", "RIGHT"],
        &["LMOVE", "nope", "m", "LEFT", "RIGHT"],
        &["LMOVE", "l", "m", "LEFT", "UP"],
        &["RPOPLPUSH", "l", "m"],
        &["RPOPLPUSH", "nope", "m"],
        &["LRANGE", "m", "0", "-1"],
        &["LMPOP", "3", "nope", "m", "l", "LEFT"],
        &["LMPOP", "2", "nope", "l", "RIGHT", "COUNT", "2"],
        &["LMPOP", "1", "nope", "LEFT"],
        &["LMPOP", "0", "l", "LEFT"],
        &["LMPOP", "-1", "l", "LEFT"],
        &["LMPOP", "3", "l", "LEFT"],
        &["LMPOP", "1", "l", "MIDDLE"],
        &["LMPOP", "1", "l", "LEFT", "COUNT"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "x"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "1"],
        &["LMPOP", "1", "l", "LEFT", "EXTRA"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "1", "-1"],
        &["LTRIM", "l", "0", "x"],
        &["LTRIM", "nope", "0", "1"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "-1", "-2"],
        &["LLEN", "l"],
        &["LPOP", "l"],
        &["RPUSH", "q", "x", "y", "z"],
        &["BLPOP", "nope", "q", "0"],
        &["BRPOP", "q", "1.5"],
        &["BLMPOP", "0", "1", "q", "LEFT", "COUNT", "9"],
        &["BLPOP", "q", "x"],
        &["BLPOP", "q", "-1"],
        &["BLMPOP", "0", "0", "q", "LEFT"],
        &["BLMOVE", "m", "q", "LEFT", "LEFT", "0"],
        &["BRPOPLPUSH", "m", "q", "0"],
        &["LRANGE", "q", "0", "-1"],
        &["LPUSH", "l"],
        &["LLEN"],
        &["LRANGE", "l", "0"],
        &["LINSERT", "l", "BEFORE", "a"],
        &["LMOVE", "a", "b", "LEFT"],
        &["BLMOVE", "a", "b", "LEFT", "LEFT"],
    ];
    for command in script {
        let expected = theirs.cmd(command);
        let got = ours.cmd(command);
        assert_eq!(got, expected, "{command:?}");
    }
}
