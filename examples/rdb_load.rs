//! Loads an RDB file with ringkv's decoder and prints how long it took:
//! `cargo run --release --example rdb_load -- dump.rdb`.

use std::time::Instant;

use ringkv::persistence::files::Mapped;
use ringkv::persistence::rdb::{decode, LoadOptions};
use ringkv::storage::Db;

// The server's allocator, so the timing is the server's.
#[global_allocator]
static GLOBAL: ringkv::storage::memory::CountingAllocator =
    ringkv::storage::memory::CountingAllocator;

fn main() {
    let path = std::env::args().nth(1).expect("usage: rdb_load <file.rdb>");
    let started = Instant::now();
    let mapped = Mapped::open(std::path::Path::new(&path)).expect("open");
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    let loaded = decode::load(mapped.bytes(), &mut dbs, &LoadOptions::default()).expect("load");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} keys, {} bytes in {seconds:.3} s ({:.0} MB/s)",
        loaded.keys,
        loaded.consumed,
        loaded.consumed as f64 / seconds / 1e6
    );
}
