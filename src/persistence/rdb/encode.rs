//! Writes RDB files (version 10) and DUMP payloads.

use super::{SaveInfo, SaveOptions};
use crate::storage::{Db, Value};

/// What a save wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaveStats {
    pub bytes: u64,
    pub keys: u64,
}

/// Writes every database in `dbs` as one RDB file to `out` (header, aux fields, databases,
/// EOF, checksum). `now_ms` is the `ctime`.
pub fn save<W: std::io::Write>(
    dbs: &[Db],
    out: W,
    options: &SaveOptions,
    info: &SaveInfo,
    now_ms: u64,
) -> std::io::Result<SaveStats> {
    let _ = (dbs, out, options, info, now_ms);
    todo!("H1")
}

/// The `DUMP` payload of `value`: type byte, RDB-encoded value, RDB version (2 bytes LE),
/// CRC64 (8 bytes LE).
pub fn dump_payload(value: &Value, compression: bool) -> Vec<u8> {
    let _ = (value, compression);
    todo!("H1")
}
