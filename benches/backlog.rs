//! The replication backlog ring (`src/replication/backlog.rs`): appending 100-byte records from
//! one and two threads (one reservation per record, and one per batch of 64 as `end_batch`
//! does), and reading the ring back through grants.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringkv::replication::backlog::Backlog;

const CAPACITY: u64 = 64 << 20;
const RECORD: usize = 100;
const BATCH: usize = 64;
const ID: &str = "0123456789abcdef0123456789abcdef01234567";

fn ring(dir: &tempfile::TempDir) -> Backlog {
    Backlog::create(&dir.path().join("backlog"), CAPACITY, ID, 0).unwrap()
}

/// `threads` threads each append `per_thread` reservations of `records` 100-byte records.
fn append_from(backlog: &Backlog, threads: usize, per_thread: u64, records: usize) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (backlog, barrier) = (backlog.clone(), barrier.clone());
            thread::spawn(move || {
                let record = [t as u8; RECORD];
                barrier.wait();
                for _ in 0..per_thread {
                    let mut reservation = backlog.reserve(RECORD * records).unwrap();
                    for _ in 0..records {
                        reservation.copy(&record);
                    }
                    reservation.commit();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for worker in workers {
        worker.join().unwrap();
    }
    start.elapsed()
}

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let backlog = ring(&dir);
    let mut group = c.benchmark_group("backlog_append_100B");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Elements(1));
    let record = [7u8; RECORD];
    group.bench_function("1_thread", |b| {
        b.iter(|| backlog.append(black_box(&record)).unwrap())
    });
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| append_from(&backlog, 2, iters.div_ceil(2), 1))
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("2_threads_batches_of_64", |b| {
        b.iter_custom(|iters| append_from(&backlog, 2, iters.div_ceil(2), BATCH))
    });
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let backlog = ring(&dir);
    let record = [9u8; RECORD];
    while backlog.histlen() + (RECORD as u64) <= CAPACITY {
        backlog.append(&record).unwrap();
    }
    let held = backlog.histlen();
    let mut group = c.benchmark_group("backlog_read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(held));

    // What a sender does: grants of 256 KiB, each copied out once (the kernel's copy into the
    // socket), simulated here by a memcpy into a reused buffer.
    let mut out = vec![0u8; 256 << 10];
    group.bench_function("whole_ring_copied_out_256KiB_grants", |b| {
        b.iter(|| {
            let mut reader = backlog.reader(backlog.first_offset()).unwrap();
            loop {
                let grant = reader.read(out.len()).unwrap();
                if grant.is_empty() {
                    break;
                }
                let (head, tail) = grant.slices();
                out[..head.len()].copy_from_slice(head);
                if let Some(tail) = tail {
                    out[head.len()..head.len() + tail.len()].copy_from_slice(tail);
                }
                black_box(&out);
                let n = grant.len();
                grant.advance(n);
            }
        })
    });

    // The ring's own cost per grant (pin, bounds, unpin), bytes untouched.
    group.bench_function("whole_ring_grants_only_4KiB", |b| {
        b.iter(|| {
            let mut reader = backlog.reader(backlog.first_offset()).unwrap();
            loop {
                let grant = reader.read(4096).unwrap();
                if grant.is_empty() {
                    break;
                }
                black_box(grant.slices());
                let n = grant.len();
                grant.advance(n);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
