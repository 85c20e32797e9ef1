//! The wire protocol at its edges: malformed requests, inline commands, pipelining and
//! requests split across reads — compared byte for byte with Redis 7.0 where it answers
//! deterministically.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Server;

/// Reads until `expected` bytes arrived (or the connection closed / timed out).
fn read_exactly(stream: &mut TcpStream, expected: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < expected && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// True if the server closed the connection within a few seconds.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).unwrap();
    let got = read_exactly(stream, expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Malformed requests: the error Redis sends, then the connection is closed; the server
/// and its other clients carry on.
#[test]
fn protocol_errors_close_only_the_offending_connection() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$600000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"SET \"abc\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"ECHO 'ab\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    let mut bystander = ringkv.raw();
    exchange(&mut bystander, b"PING\r\n", b"+PONG\r\n");
    for (request, expected) in cases {
        for server in [&ringkv, &redis] {
            let mut stream = server.raw();
            exchange(&mut stream, request, expected);
            assert!(
                closed_by_server(&mut stream),
                "port {} kept the connection",
                server.port
            );
        }
        exchange(&mut bystander, b"PING\r\n", b"+PONG\r\n");
    }
    let mut fresh = ringkv.raw();
    exchange(&mut fresh, b"ECHO ok\r\n", b"$2\r\nok\r\n");
}

#[test]
fn binary_junk_is_an_unknown_inline_command_and_the_connection_survives() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    stream.write_all(b"\x01\x02\xfe\xff junk\r\n").unwrap();
    let reply = read_exactly(&mut stream, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reply = reply;
    while !reply.ends_with(b"\r\n") && Instant::now() < deadline {
        reply.extend(read_exactly(&mut stream, 1));
    }
    assert!(
        reply.starts_with(b"-ERR unknown command '"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    exchange(&mut stream, b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn inline_commands_unquote_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let requests: &[&[u8]] = &[
        b"PING\r\n",
        b"ping\n",
        b"ECHO \"hello world\"\r\n",
        b"ECHO 'it''s'\r\n",
        b"ECHO 'a\\'b'\r\n",
        b"ECHO \"\\x41\\x42\\n\\t\"\r\n",
        b"   ECHO    spaced   \r\n",
        b"ECHO \"a\" \"b\"\r\n",
        b"ECHO \"\"\r\n",
    ];
    for request in requests {
        let mut ours = ringkv.raw();
        let mut theirs = redis.raw();
        ours.write_all(request).unwrap();
        theirs.write_all(request).unwrap();
        // Replies here are short; give both time to arrive whole.
        std::thread::sleep(Duration::from_millis(50));
        ours.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let a = read_exactly(&mut ours, usize::MAX);
        let b = read_exactly(&mut theirs, usize::MAX);
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn empty_lines_and_empty_multibulks_are_ignored() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    exchange(&mut stream, b"\r\n\r\n\n  \r\n*0\r\nPING\r\n", b"+PONG\r\n");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(read_exactly(&mut stream, 1).is_empty(), "extra reply");
}

#[test]
fn a_thousand_pipelined_commands_get_a_thousand_replies_in_order() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let arg = format!("msg-{i}");
        request.extend_from_slice(
            format!("*2\r\n$4\r\nECHO\r\n${}\r\n{arg}\r\n", arg.len()).as_bytes(),
        );
        expected.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        if i % 100 == 0 {
            request.extend_from_slice(b"PING\r\n");
            expected.extend_from_slice(b"+PONG\r\n");
        }
    }
    exchange(&mut stream, &request, &expected);
}

#[test]
fn a_request_split_across_writes_completes_when_the_rest_arrives() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let request = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
    for split in [1, 3, 5, 12, 20, request.len() - 1] {
        stream.write_all(&request[..split]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        exchange(&mut stream, &request[split..], b"$11\r\nhello world\r\n");
    }
    // Byte by byte.
    for byte in request.iter() {
        stream.write_all(&[*byte]).unwrap();
    }
    assert_eq!(read_exactly(&mut stream, 18), b"$11\r\nhello world\r\n");
    // An inline command split mid-word.
    stream.write_all(b"PI").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    exchange(&mut stream, b"NG\r\n", b"+PONG\r\n");
}

#[test]
fn a_large_bulk_argument_arrives_intact() {
    let server = Server::start(&[]);
    let mut stream = server.raw();
    let payload = vec![b'x'; 3 * 1024 * 1024 + 7];
    let mut request = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", payload.len()).into_bytes();
    request.extend_from_slice(&payload);
    request.extend_from_slice(b"\r\n");
    let mut expected = format!("${}\r\n", payload.len()).into_bytes();
    expected.extend_from_slice(&payload);
    expected.extend_from_slice(b"\r\n");
    let writer = {
        let mut clone = stream.try_clone().unwrap();
        std::thread::spawn(move || clone.write_all(&request).unwrap())
    };
    let got = read_exactly(&mut stream, expected.len());
    writer.join().unwrap();
    assert!(got == expected, "payload corrupted ({} bytes)", got.len());
}
