//! Reads RDB files, versions 1 to 12, and DUMP payloads.

use super::{LoadError, LoadOptions, Loaded};
use crate::storage::{Db, Value};

/// Loads a whole RDB file from `bytes` into `dbs` (their count is the `databases` limit).
pub fn load(bytes: &[u8], dbs: &mut [Db], options: &LoadOptions) -> Result<Loaded, LoadError> {
    let _ = (bytes, dbs, options);
    todo!("H2")
}

/// Decodes a `DUMP` payload (checks the version trailer and the CRC64).
pub fn restore_payload(payload: &[u8]) -> Result<Value, LoadError> {
    let _ = payload;
    todo!("H2")
}
