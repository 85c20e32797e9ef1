//! A small RESP2/RESP3 client for protocol-level tests: sends commands as multibulk and reads
//! replies of any type, so tests can compare exact reply shapes with a real redis-server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Server;

/// A raw connection that sends commands as multibulk and reads replies of any RESP version.
pub struct Raw {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    pub fn new(server: &Server) -> Raw {
        Raw::connect(server.port)
    }

    pub fn connect(port: u16) -> Raw {
        Raw::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{}\r\n", arg.len(), arg));
        }
        self.writer.write_all(out.as_bytes()).unwrap();
    }

    pub fn read(&mut self) -> Value {
        read_value(&mut self.reader)
    }

    pub fn call(&mut self, args: &[&str]) -> Value {
        self.send(args);
        self.read()
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        self.writer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// One reply, in either protocol version.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
    Set(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Push(Vec<Value>),
    Double(String),
    Boolean(bool),
    Verbatim(String),
}

pub use Value::{Array, Bulk, Int, Map, Nil, Status};

pub fn ok() -> Value {
    Status("OK".into())
}

pub fn bulk(text: &str) -> Value {
    Bulk(text.as_bytes().to_vec())
}

/// Reads one RESP2/RESP3 value.
pub fn read_value(reader: &mut impl BufRead) -> Value {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).expect("reply line");
    assert!(line.ends_with(b"\r\n"), "bad reply line {line:?}");
    line.truncate(line.len() - 2);
    let rest = String::from_utf8_lossy(&line[1..]).into_owned();
    let number = || rest.parse::<i64>().expect("length");
    let items = |reader: &mut dyn FnMut() -> Value| (0..number()).map(|_| reader()).collect();
    match line[0] {
        b'+' => Status(rest),
        b'-' => Value::Error(rest),
        b':' => Int(number()),
        b'$' | b'*' if number() < 0 => Nil,
        b'$' | b'=' => {
            let mut data = vec![0u8; number() as usize + 2];
            reader.read_exact(&mut data).expect("bulk");
            data.truncate(data.len() - 2);
            if line[0] == b'=' {
                Value::Verbatim(String::from_utf8_lossy(&data[4..]).into_owned())
            } else {
                Bulk(data)
            }
        }
        b'*' => Array(items(&mut || read_value(reader))),
        b'~' => Value::Set(items(&mut || read_value(reader))),
        b'>' => Value::Push(items(&mut || read_value(reader))),
        b'%' => Map((0..number())
            .map(|_| (read_value(reader), read_value(reader)))
            .collect()),
        b'_' => Nil,
        b'#' => Value::Boolean(rest == "t"),
        b',' => Value::Double(rest),
        other => panic!("unknown reply type {:?}", other as char),
    }
}

pub fn text(value: &Value) -> String {
    match value {
        Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Status(s) | Value::Error(s) | Value::Verbatim(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

pub fn error(value: &Value) -> String {
    match value {
        Value::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Reads one RESP2/RESP3 reply from `reader` and renders it as compact text, e.g. `~2[$a,$b]`.
pub fn read_compact(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply line");
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | "-" | ":" | "," | "#" | "_" => line.to_string(),
        "$" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return "$-1".into();
            }
            let mut data = vec![0u8; len as usize + 2];
            reader.read_exact(&mut data).unwrap();
            format!("${}", String::from_utf8_lossy(&data[..len as usize]))
        }
        "*" | "~" | "%" | ">" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return format!("{kind}-1");
            }
            let items = if kind == "%" { 2 * n } else { n };
            let parts: Vec<String> = (0..items).map(|_| read_compact(reader)).collect();
            format!("{kind}{n}[{}]", parts.join(","))
        }
        other => panic!("unexpected reply type {other:?} in {line:?}"),
    }
}

pub fn compact_command(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    args: &[&str],
) -> String {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    read_compact(reader)
}
