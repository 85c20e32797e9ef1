//! RESP request parsing and reply encoding throughput.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringkv::protocol::parser::{parse, Parsed};
use ringkv::protocol::{Reply, Resp};

fn pipeline_of_sets(count: usize) -> Vec<u8> {
    let mut buffer = Vec::new();
    for i in 0..count {
        let key = format!("key:{i:012}");
        buffer.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n$3\r\nxxx\r\n",
                key.len(),
                key
            )
            .as_bytes(),
        );
    }
    buffer
}

fn parse_all(buffer: &[u8]) -> usize {
    let mut position = 0;
    let mut commands = 0;
    while position < buffer.len() {
        match parse(&buffer[position..], 512 * 1024 * 1024) {
            Ok(Parsed::Command { consumed, args }) => {
                black_box(args);
                position += consumed;
                commands += 1;
            }
            _ => break,
        }
    }
    commands
}

fn bench_parser(c: &mut Criterion) {
    let buffer = pipeline_of_sets(16);
    let mut group = c.benchmark_group("parser");
    group.throughput(Throughput::Elements(16));
    group.bench_function("multibulk_set_x16", |b| {
        b.iter(|| parse_all(black_box(&buffer)))
    });
    let inline = b"PING\r\n".repeat(16);
    group.bench_function("inline_ping_x16", |b| {
        b.iter(|| parse_all(black_box(&inline)))
    });
    let big = {
        let value = vec![b'v'; 64 * 1024];
        let mut request =
            format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n");
        request
    };
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("set_64k_value", |b| b.iter(|| parse_all(black_box(&big))));
    group.finish();

    let mut group = c.benchmark_group("reply");
    group.throughput(Throughput::Elements(100));
    group.bench_function("lrange_100_bulks", |b| {
        let mut reply = Reply::new(Resp::V2);
        b.iter(|| {
            reply.buf.clear();
            reply.array(100);
            for _ in 0..100 {
                reply.bulk(b"xxx");
            }
            black_box(reply.buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parser);
criterion_main!(benches);
