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
//! 5. [`replication`]: the propagation hook every write goes through, encoded once in
//!    execution order inside the keyspace's critical section.
//! 6. [`pubsub`]: subscriptions shared by all cores; messages travel to the subscriber's core
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
