//! The RDB file format, as Redis 7.0 reads and writes it.
//!
//! - [`format`]: opcodes, value types, length and string encodings, drawn out.
//! - [`crc64`]: the Jones CRC-64 Redis puts at the end of files and DUMP payloads.
//! - [`lzf`]: the LZF compression Redis applies to strings longer than 20 bytes.
//! - [`encode`]: writes whole files (version 10) and single values (`DUMP`).
//! - [`decode`]: reads versions 1 to 12, every encoding Redis 7.x produces.

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod format;
pub mod lzf;

/// The RDB version ringkv writes: Redis 7.0's, so Redis 7.0 loads our files.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version ringkv reads (Redis 7.4).
pub const RDB_VERSION_MAX: u16 = 12;

/// Replication and AOF facts stored in a file's aux fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveInfo {
    /// `repl-stream-db`: the database the replication stream last selected.
    pub repl_stream_db: Option<i64>,
    /// `repl-id`: the replication ID the data belongs to.
    pub repl_id: Option<String>,
    /// `repl-offset`: the replication offset the data ends at.
    pub repl_offset: Option<i64>,
    /// `aof-base`: the file is the base of a multi-part AOF.
    pub aof_base: bool,
}

/// How a file is written.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    /// LZF-compress strings longer than 20 bytes (`rdbcompression`).
    pub compression: bool,
    /// Write the CRC64 trailer (`rdbchecksum`); zero when off, as Redis does.
    pub checksum: bool,
    /// Microseconds to sleep after each key (`rdb-key-save-delay`, for tests).
    pub key_save_delay_us: i64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            compression: true,
            checksum: true,
            key_save_delay_us: 0,
        }
    }
}

/// How a file is loaded.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Wall-clock time used to drop keys whose TTL passed (when `drop_expired`).
    pub now_ms: u64,
    /// Skip keys already expired (a master loading its own file); a replica keeps them.
    pub drop_expired: bool,
    /// Microseconds to sleep after each key (`key-load-delay`, for tests).
    pub key_load_delay_us: i64,
    /// Do not verify the CRC64 trailer (`rdbchecksum no`, as Redis skips it then).
    pub skip_checksum: bool,
}

/// What a load found besides the keys.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The aux fields ringkv acts on.
    pub info: SaveInfo,
    /// RDB version of the file.
    pub version: u16,
    /// `redis-ver` aux field, if present.
    pub redis_ver: Option<String>,
    /// `ctime` aux field (unix seconds), if present.
    pub ctime: Option<i64>,
    /// Keys inserted.
    pub keys: u64,
    /// Keys skipped because their TTL had passed.
    pub expired_skipped: u64,
    /// Bytes consumed, through the EOF opcode and checksum (an AOF with an RDB preamble goes
    /// on with commands after them).
    pub consumed: usize,
}

/// Why a file could not be loaded: where, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// Byte offset in the file where the problem was found.
    pub offset: u64,
    /// What was wrong, in words for the log.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte offset {})", self.reason, self.offset)
    }
}

impl std::error::Error for LoadError {}
