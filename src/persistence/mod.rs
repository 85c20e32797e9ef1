//! Persistence: RDB snapshots in Redis' format, the append-only file, and the fork that
//! makes background saves a point-in-time copy of every shard.
//!
//! - [`rdb`]: the RDB format (version 10 written, 1–12 read), its CRC64 and LZF, the encoder
//!   (whole files and `DUMP` payloads) and the decoder.
//! - [`files`]: crash-safe file replacement (temp name, fsync, rename, directory fsync) and
//!   read-only file mappings for loading.
//! - [`fork`]: stops every event loop at a safe point, forks with the keyspace locked, lets
//!   the loops go; the child writes its file and `_exit`s.
//! - [`snapshot`]: SAVE, BGSAVE, save points, LASTSAVE, loading at start, INFO persistence.
//! - [`aof`]: the multi-part append-only file (Redis 7.0 layout), fsync policies, rewrites.

pub mod aof;
pub mod files;
pub mod fork;
pub mod rdb;
pub mod snapshot;
