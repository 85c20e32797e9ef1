//! The measurement behind the shard-access design (see `src/server/shared.rs`): what it costs a
//! core to run one batch of commands against the keyspace when
//! (a) it takes the one store lock itself, with another core doing the same at full speed, versus
//! (b) it hands the batch to the core that owns the shard and waits for the answer
//!     (message passing, Dragonfly-style), the cheapest form: a spinning owner, no sleep/wake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use crossbeam::channel;
use parking_lot::Mutex;
use ringkv::storage::{Bstr, Db, Value};

const BATCH: usize = 16;

fn filled() -> Db {
    let mut db = Db::default();
    for i in 0..10_000 {
        db.set(format!("key:{i}").as_bytes(), Value::Str(Bstr::new(b"v")));
    }
    db
}

fn run_batch(db: &mut Db, round: usize) -> usize {
    let mut found = 0;
    for i in 0..BATCH {
        let key = format!("key:{}", (round * BATCH + i) % 10_000);
        found += db.lookup(key.as_bytes(), 0).is_some() as usize;
    }
    found
}

fn bench_shard_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_of_16_gets");

    // (a) one lock, contended by a second thread hammering the same lock.
    let store = Arc::new(Mutex::new(filled()));
    let stop = Arc::new(AtomicBool::new(false));
    let rival = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                black_box(run_batch(&mut store.lock(), round));
                round += 1;
            }
        })
    };
    let mut round = 0;
    group.bench_function("shared_lock_contended", |b| {
        b.iter(|| {
            round += 1;
            run_batch(&mut store.lock(), round)
        })
    });
    stop.store(true, Ordering::Relaxed);
    rival.join().unwrap();

    // (b) the owner thread runs the batch for us; we wait for its reply.
    let (request_tx, request_rx) = channel::bounded::<usize>(1);
    let (reply_tx, reply_rx) = channel::bounded::<usize>(1);
    let owner = thread::spawn(move || {
        let mut db = filled();
        while let Ok(round) = request_rx.recv() {
            if reply_tx.send(run_batch(&mut db, round)).is_err() {
                return;
            }
        }
    });
    let mut round = 0;
    group.bench_function("message_to_owner_core", |b| {
        b.iter(|| {
            round += 1;
            request_tx.send(round).unwrap();
            reply_rx.recv().unwrap()
        })
    });
    drop(request_tx);
    owner.join().unwrap();
    group.finish();
}

criterion_group!(benches, bench_shard_access);
criterion_main!(benches);
