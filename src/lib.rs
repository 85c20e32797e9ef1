//! ringkv: a Redis-compatible storage server built around fast, safe replication.
//!
//! # The map, in the order a request's bytes travel
//! 1. [`server`]: one event loop per core (`server-threads`), each with its own io_uring ring,
//!    its own `SO_REUSEPORT` listener and the connections it accepted. `recv` completions feed
//!    the parser; replies to everything parsed from one read leave in one `send`.
//! 2. [`protocol`]: RESP2/RESP3 — the incremental request parser (where `Incomplete` is a
//!    value, not an error) and the typed reply writer.
//! 3. [`command`]: the command table and [`command::call`], which every request goes through
//!    (arity, auth, MULTI queueing, pub/sub context, maxmemory, execution, propagation), and
//!    one file per command family.
//! 4. [`storage`]: the keyspace — 16 databases of compact values, lazy and active expiry, the
//!    clients blocked on keys, memory accounting, `DEBUG DIGEST`. How cores reach it (one lock
//!    taken per read batch) is explained, with the measurements behind it, in
//!    [`server::shared`].
//! 5. [`replication`]: every write is encoded once, in execution order, inside the keyspace's
//!    critical section ([`replication::propagate`]); when the critical section ends
//!    ([`storage::Store::end_batch`]) the bytes go into the lock-free mmapped backlog
//!    ([`replication::backlog`]), which every replica reads with its own cursor straight from
//!    the mapping, and into the AOF. PSYNC decisions are a pure function
//!    ([`replication::psync`]); full resyncs send a fork snapshot with io_uring splice (or
//!    diskless, through pipes), resume a broken transfer from the byte it reached
//!    ([`replication::master::resume`]), and between ringkv servers carry the stream on a
//!    second connection meanwhile, so a loaded master never holds it for a syncing replica.
//! 6. [`persistence`]: RDB files in Redis' format (written v10, read v1–12), background saves
//!    by `fork()` at a safe point where every other loop is parked or blocked on the keyspace
//!    lock ([`persistence::fork`]), the multi-part AOF of Redis 7.0, crash-safe file
//!    replacement.
//! 7. [`pubsub`]: subscriptions shared by all cores; messages travel to the subscriber's core
//!    through its inbox.
//!
//! Around them: [`config`] (every knob, with Redis' names and defaults) and [`log`] (Redis'
//! log format).

pub mod command;
pub mod config;
pub mod log;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod storage;
