//! The keyspace: all logical databases plus the bookkeeping that must change atomically with
//! them (watched keys, clients blocked on keys, the change counter).
//!
//! # Shard access
//! Every core reaches the keyspace through one lock, taken once per *read batch* (all the
//! commands parsed from one `recv`), not per command; see [`crate::server::shared`] for why
//! this beats per-shard locks and message passing on the machines we target, and for the
//! single place where that choice is made.
//!
//! # Pieces
//! - [`db`]: one database — the key table ([`dense::DenseMap`], built for memory per key),
//!   the expiry table, lazy and active expiry, SCAN cursors.
//! - [`value`], [`bstr`], [`list`], [`zset`]: the values (five types, short strings inline,
//!   lists in chunks so growth never copies more than one chunk).
//! - [`blocking`]: clients blocked on keys, served first come first served.
//! - [`memory`]: the counting global allocator behind `used_memory` and `maxmemory`.
//! - [`digest`]: `DEBUG DIGEST`, bit-identical to Redis 7.0's.
//! - [`long_double`]: the x87 extended precision Redis' INCRBYFLOAT/HINCRBYFLOAT compute in,
//!   emulated exactly.

pub mod blocking;
pub mod bstr;
pub mod db;
pub mod dense;
pub mod digest;
pub mod list;
pub mod long_double;
pub mod memory;
pub mod value;
pub mod zset;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use bstr::Bstr;
pub use db::{Db, ExpiryMode};
pub use list::List;
pub use value::{Value, WRONGTYPE};

/// Default number of logical databases (`databases`).
pub const DATABASES_DEFAULT: usize = 16;

/// Shared flag a client's WATCH registrations point at; set when a watched key changes.
pub type WatchFlag = Arc<AtomicBool>;

/// All databases and what must change in the same critical section as them.
pub struct Store {
    pub dbs: Vec<Db>,
    /// Writes since the last successful save (INFO `rdb_changes_since_last_save`).
    pub dirty: u64,
    /// (db, key) → flags of the clients watching it.
    watched: HashMap<(usize, Bstr), Vec<WatchFlag>>,
    /// Clients blocked on keys (BLPOP and friends).
    pub blocking: blocking::Registry,
    /// True on a replica: keys are never expired locally, only hidden.
    pub replica_mode: bool,
    /// The replication stream; written in the same critical section as the keyspace.
    pub propagation: crate::replication::Propagation,
    /// Snapshot bookkeeping (running child, last save, save counters).
    pub persistence: crate::persistence::snapshot::State,
    /// The append-only file: fed from the stream at the end of every batch.
    pub aof: crate::persistence::aof::Aof,
    /// Replication identity, backlog, replicas and master link.
    pub replication: crate::replication::ReplicationState,
}

impl Store {
    pub fn new(databases: usize) -> Store {
        Store {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            dirty: 0,
            watched: HashMap::new(),
            blocking: blocking::Registry::default(),
            replica_mode: false,
            propagation: crate::replication::Propagation::default(),
            persistence: crate::persistence::snapshot::State::default(),
            aof: crate::persistence::aof::Aof::default(),
            replication: crate::replication::ReplicationState::default(),
        }
    }

    /// Records that `key` in `db` was modified: marks watchers dirty. Every write command calls
    /// this (through `Ctx::touch`) for each key it changes.
    #[inline]
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(flags) = self.watched.get(&(db, Bstr::new(key))) {
            for flag in flags {
                flag.store(true, Ordering::Release);
            }
        }
    }

    /// Marks every watcher of `db` dirty (FLUSHDB, SWAPDB); `None` marks all databases.
    pub fn touch_all(&mut self, db: Option<usize>) {
        for ((watched_db, _), flags) in &self.watched {
            if db.is_none() || db == Some(*watched_db) {
                for flag in flags {
                    flag.store(true, Ordering::Release);
                }
            }
        }
    }

    pub fn watch(&mut self, db: usize, key: &[u8], flag: &WatchFlag) {
        let list = self.watched.entry((db, Bstr::new(key))).or_default();
        if !list.iter().any(|f| Arc::ptr_eq(f, flag)) {
            list.push(flag.clone());
        }
    }

    pub fn unwatch(&mut self, db: usize, key: &Bstr, flag: &WatchFlag) {
        let slot = (db, key.clone());
        if let Some(list) = self.watched.get_mut(&slot) {
            list.retain(|f| !Arc::ptr_eq(f, flag));
            if list.is_empty() {
                self.watched.remove(&slot);
            }
        }
    }

    /// Ends a critical section: hands the writes it propagated to their consumers, in
    /// execution order, while the keyspace lock is still held. Called by the guard's `Drop`.
    pub fn end_batch(&mut self) {
        if self.propagation.has_pending() || self.aof.has_buffered() {
            let bytes = self.propagation.take();
            // Replication first (backlog and offset, only while a backlog exists, as Redis
            // counts `master_repl_offset`), then the AOF, which keeps the buffer. A replica's
            // stream is its master's, fed unchanged by the master link (`replica::applied`)
            // so offsets match the master's byte for byte; what its own execution propagated
            // (the master's commands re-encoded) goes to the AOF only.
            if !self.replication.replica_side.is_replica() {
                crate::replication::master::feed_stream(&mut self.replication, &bytes);
            }
            let spare = self.aof.feed(bytes);
            self.propagation.give_back(spare);
        }
        if !self.replication.replica_side.is_replica() {
            crate::replication::master::end_of_batch(&mut self.replication);
        }
    }

    /// Turns replica behaviour on or off: a replica never expires keys itself, it hides
    /// them from its clients until its master's `DEL` arrives.
    pub fn set_replica_mode(&mut self, replica: bool) {
        self.replica_mode = replica;
        let mode = if replica {
            ExpiryMode::Hide
        } else {
            ExpiryMode::Delete
        };
        self.set_expiry_mode(mode);
    }

    /// Sets how every database's lookups treat expired keys (the master link switches to
    /// [`ExpiryMode::Keep`] while it applies its master's commands).
    pub fn set_expiry_mode(&mut self, mode: ExpiryMode) {
        for db in &mut self.dbs {
            db.expiry_mode = mode;
        }
    }

    /// Total keys over all databases.
    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Total keys deleted by expiry (INFO `expired_keys`).
    pub fn expired_total(&self) -> u64 {
        self.dbs.iter().map(|d| d.expired_total).sum()
    }
}
