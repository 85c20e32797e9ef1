//! Keyspace operations: inserts, lookups, expiry sampling on one database.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringkv::storage::{Bstr, Db, Value};

fn filled(count: usize) -> Db {
    let mut db = Db::default();
    for i in 0..count {
        db.set(
            format!("key:{i:012}").as_bytes(),
            Value::Str(Bstr::new(b"xxx")),
        );
    }
    db
}

fn bench_keyspace(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    let mut group = c.benchmark_group("keyspace");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("set_100k_new_keys", |b| {
        b.iter_batched(
            Db::default,
            |mut db| {
                for key in &keys {
                    db.set(key, Value::Str(Bstr::new(b"xxx")));
                }
                db
            },
            BatchSize::LargeInput,
        )
    });
    let mut db = filled(keys.len());
    group.bench_function("get_100k_hits", |b| {
        b.iter(|| {
            let mut found = 0;
            for key in &keys {
                found += db.lookup(black_box(key), 0).is_some() as usize;
            }
            found
        })
    });
    group.finish();

    let mut group = c.benchmark_group("expiry");
    group.bench_function("active_expire_sample_500_of_100k", |b| {
        b.iter_batched(
            || {
                let mut db = filled(100_000);
                for (i, key) in keys.iter().enumerate() {
                    db.set_expire_at(key, if i % 4 == 0 { 1 } else { u64::MAX });
                }
                db
            },
            |mut db| db.active_expire(10, 500),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_keyspace);
criterion_main!(benches);
