//! Limits and hostile clients: none of them stops the server or slows other clients for more
//! than a moment.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{raw_exchange, Server};

/// PING round trip on a fresh connection; panics if the server does not answer within 2 s.
fn ping_latency(server: &Server) -> Duration {
    let mut stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let start = Instant::now();
    let reply = raw_exchange(&mut stream, b"PING\r\n", 7);
    assert_eq!(reply, b"+PONG\r\n", "server stopped answering");
    start.elapsed()
}

fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn huge_bulk_header_is_a_protocol_error_and_costs_nothing() {
    let server = Server::start(&[]);
    let mut bad = server.raw();
    bad.write_all(b"*1\r\n$600000000\r\n").unwrap();
    let reply = read_all(&mut bad);
    assert_eq!(reply, b"-ERR Protocol error: invalid bulk length\r\n");
    ping_latency(&server);
    let mut con = server.client();
    let used: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let used_memory: u64 = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        used_memory < 100 * 1024 * 1024,
        "a bulk header allocated memory: {used_memory}"
    );
}

#[test]
fn a_big_announced_bulk_below_the_limit_is_not_preallocated() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    // 500 MB announced, 10 bytes sent: the server must wait, not allocate 500 MB.
    stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\n0123456789")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss_kb < 200 * 1024,
        "RSS grew to {rss_kb} kB for an announced bulk"
    );
    ping_latency(&server);
}

#[test]
fn binary_junk_closes_only_that_connection() {
    let server = Server::start(&[]);
    let mut junk = server.raw();
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut payload = b"*2\r\n".to_vec();
    payload.extend_from_slice(&bytes);
    let _ = junk.write_all(&payload);
    let reply = read_all(&mut junk);
    assert!(
        reply.starts_with(b"-ERR Protocol error"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    ping_latency(&server);
}

#[test]
fn maxclients_refuses_extra_connections_with_redis_error() {
    let server = Server::start(&["--maxclients", "5"]);
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..5 {
        let mut stream = server.raw();
        assert_eq!(raw_exchange(&mut stream, b"PING\r\n", 7), b"+PONG\r\n");
        held.push(stream);
    }
    let mut extra = server.raw();
    let reply = read_all(&mut extra);
    assert_eq!(reply, b"-ERR max number of clients reached\r\n");
    held.pop();
    // A slot frees up once the server notices the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = server.raw();
        if raw_exchange(&mut again, b"PING\r\n", 7) == b"+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "closed slot was never reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn thousands_of_connections_do_not_stop_other_clients() {
    const CONNECTIONS: usize = 5000;
    let server = Server::start(&[]);
    let started = Instant::now();
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        match TcpStream::connect(("127.0.0.1", server.port)) {
            Ok(stream) => held.push(stream),
            Err(error) => panic!("connect #{} failed: {error}", held.len()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "flood took too long"
        );
    }
    let latency = ping_latency(&server);
    assert!(
        latency < Duration::from_secs(1),
        "PING took {latency:?} under a connection flood"
    );
    // Every connection is accepted (the last ones may still sit in the accept queue).
    let mut con = server.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        let connected: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        if connected > CONNECTIONS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {connected} of {CONNECTIONS} connections accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    ping_latency(&server);
}

#[test]
fn slow_reader_is_disconnected_at_its_output_limit_and_others_are_unaffected() {
    let server = Server::start(&["--client-output-buffer-limit", "normal 1mb 512kb 1"]);
    let mut con = server.client();
    let value = "x".repeat(64 * 1024);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut con)
        .unwrap();
    let mut slow = server.raw();
    slow.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Ask for ~64 MB of replies and never read them.
    let request = b"GET big\r\n".repeat(1000);
    let _ = slow.write_all(&request);
    std::thread::sleep(Duration::from_millis(300));
    let latency = ping_latency(&server);
    assert!(
        latency < Duration::from_millis(500),
        "PING took {latency:?} beside a slow reader"
    );
    // The server drops it: reading what was buffered ends in EOF, well short of 64 MB.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let received = read_all(&mut slow).len();
    assert!(
        received < 64 * 1024 * 1000,
        "slow reader got everything ({received} bytes)"
    );
    assert!(
        server
            .log()
            .contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "no disconnection logged: {}",
        server.log()
    );
    let _: () = redis::cmd("PING").query(&mut con).unwrap();
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let server = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut stream = server.raw();
    // A request that needs 2 MB of buffer, sent whole.
    let mut request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'v', 1_500_000));
    let _ = stream.write_all(&request);
    let reply = read_all(&mut stream);
    assert!(!reply.starts_with(b"+OK"), "oversized request was executed");
    ping_latency(&server);
    let mut con = server.client();
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let server = Server::start(&["--timeout", "1"]);
    let mut idle = server.raw();
    assert_eq!(raw_exchange(&mut idle, b"PING\r\n", 7), b"+PONG\r\n");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let rest = read_all(&mut idle);
    assert!(rest.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[test]
fn half_sent_command_waits_for_the_rest() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    ping_latency(&server);
    assert_eq!(raw_exchange(&mut stream, b"lo\r\n", 5), b"+OK\r\n");
}

#[test]
fn big_pipelined_replies_reach_a_slow_reader_whole_while_others_are_served() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let value = "v".repeat(64 * 1024);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut con)
        .unwrap();
    let mut reader = server.raw();
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    const REQUESTS: usize = 200;
    reader.write_all(&b"GET big\r\n".repeat(REQUESTS)).unwrap();
    let one_reply = format!("$65536\r\n{value}\r\n").into_bytes();
    let mut received = Vec::with_capacity(one_reply.len() * REQUESTS);
    let mut buf = vec![0u8; 16 * 1024];
    let started = Instant::now();
    while received.len() < one_reply.len() * REQUESTS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replies stalled at {} bytes",
            received.len()
        );
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed after {} bytes", received.len());
        received.extend_from_slice(&buf[..n]);
        if received.len() < one_reply.len() * 10 {
            // Read slowly at first, and check other clients are served meanwhile.
            std::thread::sleep(Duration::from_millis(20));
            assert!(ping_latency(&server) < Duration::from_millis(500));
        }
    }
    assert_eq!(received.len(), one_reply.len() * REQUESTS);
    assert!(received
        .chunks(one_reply.len())
        .all(|chunk| chunk == one_reply.as_slice()));
}

#[test]
fn a_pipeline_longer_than_one_turn_budget_is_answered_whole() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    const COMMANDS: usize = 150_000;
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || stream.write_all(&b"PING\r\n".repeat(COMMANDS)).unwrap())
    };
    let expected = b"+PONG\r\n".len() * COMMANDS;
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while received < expected {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed after {received} of {expected} bytes");
        received += n;
    }
    writer.join().unwrap();
    assert_eq!(received, expected);
}
