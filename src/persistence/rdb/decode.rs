//! Reads RDB files, versions 1 to 12, and DUMP payloads.
//!
//! # How
//! The file is one byte slice (usually a read-only mapping of it), read front to back by a
//! cursor ([`Reader`]). Keys and elements become [`Bstr`]s built straight from slices of the
//! file, with no intermediate buffer; only LZF-compressed strings are decompressed into a
//! buffer of their own, which then becomes the string. Containers Redis stores as one blob
//! (listpack, ziplist, intset, zipmap) are validated entry by entry while they are unpacked,
//! with the checks of Redis 7.0's deep sanitization: header sizes and counts, every entry
//! within the blob, listpack back-lengths and ziplist previous-entry lengths, terminators,
//! sorted unique intsets, no duplicate fields or members.
//!
//! Databases that are empty when the load starts (the usual case) are filled in bulk: keys
//! are appended to the key table unindexed and indexed once at the end, table by table while
//! each table is in cache, instead of paying two cache misses per key on a big index.
//!
//! # Bad input
//! Nothing here panics or loops on corrupt input: every loop iteration consumes at least one
//! byte, every length is checked against the bytes left before it is used, and capacities
//! reserved ahead of time are capped by what the remaining bytes could hold (a length of
//! 2^60 fails at the first missing byte without allocating). Every error is a [`LoadError`]
//! with the byte offset of the problem: the offset in the file, or for a problem inside a
//! blob, the offset of the blob (the reason gives the position inside it).
//!
//! # Checksum
//! From version 5 on, the 8 bytes after the EOF opcode are the CRC64 of everything before
//! them (zero: not computed, accepted as Redis does). For big files the CRC runs on a helper
//! thread while the keys are decoded, recording its state every [`CRC_CHECKPOINT`] bytes;
//! once the decoder knows where the data ends, the last checkpoint is extended to there.
//! Verification thus costs no wall time, and the helper also faults the mapping's pages in
//! ahead of the decoder.
//!
//! # What is refused
//! Streams, module values and module aux data, Redis functions, and hashes whose fields have
//! their own TTL (Redis 7.4 `HEXPIRE`): ringkv has none of these, and dropping them silently
//! would lose data. Each refusal says what the file contains.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{crc64, format, lzf, LoadError, LoadOptions, Loaded, RDB_VERSION_MAX};
use crate::storage::value::{Map, Set};
use crate::storage::zset::ZSet;
use crate::storage::{Bstr, Db, List, Value};

/// The CRC helper thread records its state every this many bytes.
pub const CRC_CHECKPOINT: usize = 4 << 20;
/// Files at least this big get their CRC computed on a helper thread.
const PARALLEL_CRC_MIN: usize = 16 << 20;
/// The most LZF can expand its input: a 3-byte back reference yields up to 264 bytes.
const LZF_EXPANSION_MAX: u64 = 90;
/// Key names in error messages are cut to this many bytes.
const NAME_PREVIEW_MAX: usize = 64;
/// Most elements reserved ahead for one container; bigger ones grow as they are read, so a
/// corrupt count costs no more than this.
const RESERVE_MAX: u64 = 1 << 20;
/// Bytes per key assumed when capping a RESIZEDB hint by the bytes left.
const KEY_BYTES_MIN: usize = 16;

/// Loads a whole RDB file from `bytes` into `dbs` (their count is the `databases` limit).
pub fn load(bytes: &[u8], dbs: &mut [Db], options: &LoadOptions) -> Result<Loaded, LoadError> {
    let version = read_header(bytes)?;
    if version < 5 || options.skip_checksum {
        let body = decode_keys(bytes, version, dbs, options)?;
        return Ok(body.loaded);
    }
    if bytes.len() < PARALLEL_CRC_MIN {
        let body = decode_keys(bytes, version, dbs, options)?;
        let computed = crc64::update(0, &bytes[..body.checksum_at]);
        return finish(body, computed);
    }
    let limit = AtomicUsize::new(usize::MAX);
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("rdb-crc".into())
            .spawn_scoped(scope, || crc_checkpoints(bytes, &limit));
        let decoded = decode_keys(bytes, version, dbs, options);
        let end = decoded.as_ref().map_or(0, |body| body.checksum_at);
        limit.store(end, Ordering::Release);
        let checkpoints = helper.ok().and_then(|h| h.join().ok());
        let body = decoded?;
        let computed = match checkpoints {
            Some(checkpoints) => crc_through(bytes, &checkpoints, body.checksum_at),
            None => crc64::update(0, &bytes[..body.checksum_at]),
        };
        finish(body, computed)
    })
}

/// Decodes a `DUMP` payload (checks the version trailer and the CRC64).
pub fn restore_payload(payload: &[u8]) -> Result<Value, LoadError> {
    decode_payload_value(check_payload(payload)?)
}

/// Checks a `DUMP` payload's 10-byte footer (RDB version, 2 bytes LE, at most
/// [`RDB_VERSION_MAX`]; CRC64 of everything before the CRC, 8 bytes LE) and returns the body
/// before the footer. A zero CRC is not special here: Redis' RESTORE always verifies it.
pub fn check_payload(payload: &[u8]) -> Result<&[u8], LoadError> {
    const FOOTER: usize = 10;
    if payload.len() < FOOTER {
        return Err(error_at(
            0,
            format!(
                "DUMP payload of {} bytes is shorter than its {FOOTER}-byte footer",
                payload.len()
            ),
        ));
    }
    let footer = payload.len() - FOOTER;
    let version = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    if version > RDB_VERSION_MAX {
        return Err(error_at(
            footer,
            format!(
                "DUMP payload has RDB version {version}, newer than this server supports \
                 ({RDB_VERSION_MAX})"
            ),
        ));
    }
    let crc_at = payload.len() - 8;
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&payload[crc_at..]);
    let stored = u64::from_le_bytes(stored);
    let computed = crc64::update(0, &payload[..crc_at]);
    if stored != computed {
        return Err(error_at(
            crc_at,
            format!(
                "DUMP payload checksum mismatch: payload says {stored:016x}, computed \
                 {computed:016x}"
            ),
        ));
    }
    Ok(&payload[..footer])
}

/// Decodes the body of a `DUMP` payload: one type byte and one value that fills it exactly.
/// Offsets in errors are within `body`.
pub fn decode_payload_value(body: &[u8]) -> Result<Value, LoadError> {
    let mut r = Reader::new(body);
    let kind = r.byte("the value type")?;
    if !is_value_type(kind) {
        return Err(error_at(0, format!("unknown value type {kind}")));
    }
    let value = read_value(&mut r, kind)?;
    if r.pos != body.len() {
        return Err(error_at(
            r.pos,
            format!("{} bytes left over after the value", body.len() - r.pos),
        ));
    }
    value.ok_or_else(|| error_at(0, "the value is an empty container".to_string()))
}

// ---------------------------------------------------------------------------------------
// The file: header, opcodes, keys, checksum
// ---------------------------------------------------------------------------------------

/// `REDIS` and four decimal digits; the version must be 1..=RDB_VERSION_MAX.
fn read_header(bytes: &[u8]) -> Result<u16, LoadError> {
    if bytes.len() < 9 {
        return Err(error_at(
            bytes.len(),
            format!(
                "unexpected end of file while reading the 9-byte header ({} bytes)",
                bytes.len()
            ),
        ));
    }
    if &bytes[..5] != b"REDIS" {
        return Err(error_at(
            0,
            format!(
                "not an RDB file: it starts with \"{}\", not \"REDIS\"",
                bytes[..5].escape_ascii()
            ),
        ));
    }
    let digits = &bytes[5..9];
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(error_at(
            5,
            format!("RDB version \"{}\" is not a number", digits.escape_ascii()),
        ));
    }
    let version = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if version == 0 {
        return Err(error_at(5, "RDB version 0 does not exist".to_string()));
    }
    if version > RDB_VERSION_MAX {
        return Err(error_at(
            5,
            format!("RDB version {version} is newer than this server supports ({RDB_VERSION_MAX})"),
        ));
    }
    Ok(version)
}

/// What [`decode_body`] found.
struct Body {
    loaded: Loaded,
    /// Offset of the checksum (the end of the checksummed data).
    checksum_at: usize,
    /// The checksum the file carries (version 5 on).
    stored_checksum: Option<u64>,
}

fn finish(body: Body, computed: u64) -> Result<Loaded, LoadError> {
    if let Some(stored) = body.stored_checksum {
        if stored != 0 && stored != computed {
            return Err(error_at(
                body.checksum_at,
                format!("checksum mismatch: file says {stored:016x}, computed {computed:016x}"),
            ));
        }
    }
    Ok(body.loaded)
}

/// CRC64 states at every multiple of [`CRC_CHECKPOINT`] (index i: the CRC of the first
/// `i * CRC_CHECKPOINT` bytes), stopping once past `limit` (set when decoding ends).
fn crc_checkpoints(bytes: &[u8], limit: &AtomicUsize) -> Vec<u64> {
    let mut checkpoints = vec![0u64];
    let mut crc = 0;
    let mut start = 0;
    while start + CRC_CHECKPOINT <= bytes.len()
        && start + CRC_CHECKPOINT <= limit.load(Ordering::Acquire)
    {
        crc = crc64::update(crc, &bytes[start..start + CRC_CHECKPOINT]);
        start += CRC_CHECKPOINT;
        checkpoints.push(crc);
    }
    checkpoints
}

/// The CRC of `bytes[..end]`, extending the last checkpoint at or before `end`.
fn crc_through(bytes: &[u8], checkpoints: &[u64], end: usize) -> u64 {
    let index = (end / CRC_CHECKPOINT).min(checkpoints.len().saturating_sub(1));
    let start = index * CRC_CHECKPOINT;
    let crc = checkpoints.get(index).copied().unwrap_or(0);
    crc64::update(crc, &bytes[start..end])
}

/// Decodes everything after the header. Databases that start empty are filled in bulk:
/// keys are appended unindexed and indexed once at the end (see [`Db::push_loaded`]), which
/// is several times faster than inserting them one by one. A duplicate key found then is
/// located by decoding again with one-by-one inserts, whose error names its offset.
fn decode_keys(
    bytes: &[u8],
    version: u16,
    dbs: &mut [Db],
    options: &LoadOptions,
) -> Result<Body, LoadError> {
    let empty: Vec<bool> = dbs.iter().map(Db::is_empty).collect();
    match decode_body(bytes, version, dbs, options, &empty) {
        Ok(body) => Ok(body),
        Err(Stop::Error(error)) => Err(error),
        Err(Stop::DuplicateInBulk) => {
            for (db, was_empty) in dbs.iter_mut().zip(&empty) {
                if *was_empty {
                    db.clear();
                }
            }
            let one_by_one = vec![false; dbs.len()];
            match decode_body(bytes, version, dbs, options, &one_by_one) {
                Ok(body) => Ok(body),
                Err(Stop::Error(error)) => Err(error),
                Err(Stop::DuplicateInBulk) => Err(error_at(
                    0,
                    "duplicate key found in RDB file (position unknown)".to_string(),
                )),
            }
        }
    }
}

/// Why [`decode_body`] stopped early.
enum Stop {
    Error(LoadError),
    /// Indexing a bulk-loaded database met a key twice.
    DuplicateInBulk,
}

impl From<LoadError> for Stop {
    fn from(error: LoadError) -> Stop {
        Stop::Error(error)
    }
}

/// `bulk[i]`: database i is filled with unindexed appends, indexed at the end.
fn decode_body(
    bytes: &[u8],
    version: u16,
    dbs: &mut [Db],
    options: &LoadOptions,
    bulk: &[bool],
) -> Result<Body, Stop> {
    let mut r = Reader::new(bytes);
    r.pos = 9;
    let mut loaded = Loaded {
        version,
        ..Loaded::default()
    };
    let mut db_index = 0usize;
    // Per-key attributes set by opcodes before the key.
    let mut expire_at: Option<i64> = None;
    let mut keys_seen = 0u64;
    loop {
        let at = r.pos;
        let kind = r.byte("an opcode or value type")?;
        match kind {
            format::OPCODE_EXPIRETIME_MS => {
                expire_at = Some(i64::from_le_bytes(r.fixed("an expire time (ms)")?));
            }
            format::OPCODE_EXPIRETIME => {
                let seconds = i32::from_le_bytes(r.fixed("an expire time (s)")?);
                expire_at = Some(i64::from(seconds) * 1000);
            }
            format::OPCODE_FREQ => {
                r.byte("an LFU frequency")?;
            }
            format::OPCODE_IDLE => {
                r.length("an LRU idle time")?;
            }
            format::OPCODE_EOF => break,
            format::OPCODE_SELECTDB => {
                let index = r.length("a database number")?;
                if index >= dbs.len() as u64 {
                    return Err(Stop::Error(error_at(
                        at,
                        format!(
                            "the file selects database {index}, but this server has only {} \
                             databases (the databases setting)",
                            dbs.len()
                        ),
                    )));
                }
                db_index = index as usize;
            }
            format::OPCODE_RESIZEDB => {
                let keys = r.length("the key count of RESIZEDB")?;
                let expires = r.length("the expire count of RESIZEDB")?;
                // Capped by what the rest of the file could hold, so a corrupt hint cannot
                // reserve more than a small multiple of the file size.
                let room = (r.remaining() / KEY_BYTES_MIN) as u64;
                if let Some(db) = dbs.get_mut(db_index) {
                    db.reserve(keys.min(room) as usize, expires.min(room) as usize);
                }
            }
            format::OPCODE_SLOT_INFO => {
                r.length("the slot of SLOT_INFO")?;
                r.length("the slot size of SLOT_INFO")?;
                r.length("the slot expires size of SLOT_INFO")?;
            }
            format::OPCODE_AUX => {
                let key = r.string()?.into_bytes();
                let value = r.string()?.into_bytes();
                apply_aux(&mut loaded, &key, &value);
            }
            format::OPCODE_MODULE_AUX => {
                return Err(Stop::Error(error_at(
                    at,
                    "the file contains module data (MODULE_AUX opcode), which ringkv does not \
                     support"
                        .to_string(),
                )));
            }
            format::OPCODE_FUNCTION2 | format::OPCODE_FUNCTION_PRE_GA => {
                return Err(Stop::Error(error_at(
                    at,
                    "the file contains Redis functions (FUNCTION opcode), which ringkv does not \
                     support"
                        .to_string(),
                )));
            }
            240..=243 => return Err(Stop::Error(error_at(at, format!("unknown opcode {kind}")))),
            _ => {
                if !is_value_type(kind) {
                    return Err(Stop::Error(error_at(
                        at,
                        format!("unknown value type {kind}"),
                    )));
                }
                let key_at = r.pos;
                let key = r.string()?.into_bstr();
                if let Some(what) = unsupported_type(kind) {
                    return Err(Stop::Error(error_at(
                        at,
                        format!(
                            "key '{}' holds {what} (value type {kind}), which ringkv does not \
                             support",
                            preview(&key)
                        ),
                    )));
                }
                let value = read_value(&mut r, kind)?;
                let expire = expire_at.take();
                if let Some(value) = value {
                    if options.drop_expired && expire.is_some_and(|ms| ms < options.now_ms as i64) {
                        loaded.expired_skipped += 1;
                    } else {
                        let Some(db) = dbs.get_mut(db_index) else {
                            return Err(Stop::Error(error_at(
                                key_at,
                                "the file has keys but no database was given to load them into"
                                    .to_string(),
                            )));
                        };
                        let expire = expire.map(|ms| ms.max(0) as u64);
                        if bulk.get(db_index).copied().unwrap_or(false) {
                            db.push_loaded(key, value, expire);
                        } else if db.insert_loaded(key.clone(), value, expire).is_err() {
                            return Err(Stop::Error(error_at(
                                key_at,
                                format!(
                                    "duplicate key '{}' in database {db_index}: Duplicate key \
                                     found in RDB file",
                                    preview(&key)
                                ),
                            )));
                        }
                        loaded.keys += 1;
                    }
                }
                // An empty container is skipped, as Redis skips empty keys on load.
                keys_seen += 1;
                key_load_delay(options.key_load_delay_us, keys_seen);
            }
        }
    }
    for (db, in_bulk) in dbs.iter_mut().zip(bulk) {
        if *in_bulk && db.index_loaded(0).is_err() {
            return Err(Stop::DuplicateInBulk);
        }
    }
    let checksum_at = r.pos;
    let stored_checksum = if version >= 5 {
        Some(u64::from_le_bytes(r.fixed("the checksum")?))
    } else {
        None
    };
    loaded.consumed = r.pos;
    Ok(Body {
        loaded,
        checksum_at,
        stored_checksum,
    })
}

/// `key-load-delay`: positive, microseconds after every key; negative `-n`, one microsecond
/// after every n-th key (Redis sleeps with probability 1/n; a counter is as good for tests).
fn key_load_delay(delay_us: i64, keys_seen: u64) {
    if delay_us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(delay_us as u64));
    } else if delay_us < 0 && keys_seen.is_multiple_of(delay_us.unsigned_abs()) {
        std::thread::sleep(std::time::Duration::from_micros(1));
    }
}

/// Records the aux fields ringkv acts on; every other field is ignored, as the format asks.
fn apply_aux(loaded: &mut Loaded, key: &[u8], value: &[u8]) {
    let text = || String::from_utf8_lossy(value).into_owned();
    if key.eq_ignore_ascii_case(b"redis-ver") {
        loaded.redis_ver = Some(text());
    } else if key.eq_ignore_ascii_case(b"ctime") {
        loaded.ctime = leading_integer(value);
    } else if key.eq_ignore_ascii_case(b"repl-stream-db") {
        loaded.info.repl_stream_db = Some(leading_integer(value).unwrap_or(0));
    } else if key.eq_ignore_ascii_case(b"repl-id") {
        // A replication ID is 40 hex characters; Redis ignores anything else.
        if value.len() == 40 {
            loaded.info.repl_id = Some(text());
        }
    } else if key.eq_ignore_ascii_case(b"repl-offset") {
        loaded.info.repl_offset = Some(leading_integer(value).unwrap_or(0));
    } else if key.eq_ignore_ascii_case(b"aof-base") {
        loaded.info.aof_base = leading_integer(value).unwrap_or(0) != 0;
    }
}

/// The integer at the start of `text` as `strtoll` reads it (spaces, sign, digits), if any.
fn leading_integer(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let count = digits.iter().take_while(|d| d.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in &digits[..count] {
        let digit = i64::from(d - b'0');
        value = value.saturating_mul(10);
        value = if negative {
            value.saturating_sub(digit)
        } else {
            value.saturating_add(digit)
        };
    }
    Some(value)
}

/// True for the value types of Redis 7.x (0–7, 9–25), supported or not.
fn is_value_type(kind: u8) -> bool {
    matches!(kind, 0..=7 | 9..=25)
}

/// What a value type ringkv refuses holds, in words.
fn unsupported_type(kind: u8) -> Option<&'static str> {
    match kind {
        format::TYPE_STREAM_LISTPACKS
        | format::TYPE_STREAM_LISTPACKS_2
        | format::TYPE_STREAM_LISTPACKS_3 => Some("a stream"),
        format::TYPE_MODULE_PRE_GA | format::TYPE_MODULE_2 => Some("a module value"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The cursor: lengths and strings
// ---------------------------------------------------------------------------------------

fn error_at(offset: usize, reason: String) -> LoadError {
    LoadError {
        offset: offset as u64,
        reason,
    }
}

/// Printable, bounded form of a key or element for error messages.
fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(NAME_PREVIEW_MAX)];
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > NAME_PREVIEW_MAX {
        text.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    text
}

/// A length, or the special string encoding a `11xxxxxx` first byte announces.
enum Length {
    Plain(u64),
    Encoded(u8),
}

/// A string as stored: a slice of the file, a decompressed buffer, or an integer.
enum RdbStr<'a> {
    Slice(&'a [u8]),
    Owned(Vec<u8>),
    Int(i64),
}

impl<'a> RdbStr<'a> {
    #[inline]
    fn into_bstr(self) -> Bstr {
        match self {
            RdbStr::Slice(bytes) => Bstr::new(bytes),
            RdbStr::Owned(bytes) => Bstr::from_vec(bytes),
            RdbStr::Int(n) => Bstr::from_i64(n),
        }
    }

    /// The bytes (an integer as its decimal text, as Redis reads it where a blob belongs).
    fn into_bytes(self) -> Cow<'a, [u8]> {
        match self {
            RdbStr::Slice(bytes) => Cow::Borrowed(bytes),
            RdbStr::Owned(bytes) => Cow::Owned(bytes),
            RdbStr::Int(n) => Cow::Owned(n.to_string().into_bytes()),
        }
    }
}

/// A cursor over the file (or a DUMP payload).
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[cold]
    fn truncated(&self, what: &str, needed: Option<u64>) -> LoadError {
        let reason = match needed {
            Some(n) => format!(
                "unexpected end of file while reading {what} of {n} bytes ({} left)",
                self.remaining()
            ),
            None => format!("unexpected end of file while reading {what}"),
        };
        error_at(self.pos, reason)
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Result<u8, LoadError> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(what, None)),
        }
    }

    #[inline]
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], LoadError> {
        if n > self.remaining() as u64 {
            return Err(self.truncated(what, Some(n)));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.data[start..self.pos])
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], LoadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    /// `00xxxxxx`: 6 bits; `01xxxxxx yyyyyyyy`: 14 bits; `0x80` + 4 bytes BE; `0x81` + 8
    /// bytes BE; `11xxxxxx`: a special string encoding follows.
    #[inline]
    fn length_or_encoding(&mut self, what: &'static str) -> Result<Length, LoadError> {
        let at = self.pos;
        let first = self.byte(what)?;
        Ok(match first >> 6 {
            0 => Length::Plain(u64::from(first & 0x3f)),
            1 => {
                let low = self.byte(what)?;
                Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(low))
            }
            2 => match first {
                0x80 => Length::Plain(u64::from(u32::from_be_bytes(self.fixed(what)?))),
                0x81 => Length::Plain(u64::from_be_bytes(self.fixed(what)?)),
                _ => {
                    return Err(error_at(
                        at,
                        format!("unknown length encoding 0x{first:02x} in {what}"),
                    ))
                }
            },
            _ => Length::Encoded(first & 0x3f),
        })
    }

    #[inline]
    fn length(&mut self, what: &'static str) -> Result<u64, LoadError> {
        let at = self.pos;
        match self.length_or_encoding(what)? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(e) => Err(error_at(
                at,
                format!(
                    "{what} is a string encoding (0x{:02x}), not a length",
                    0xc0 | e
                ),
            )),
        }
    }

    /// A string: raw (length + bytes), an integer (8, 16 or 32 bits LE), or LZF-compressed.
    #[inline]
    fn string(&mut self) -> Result<RdbStr<'a>, LoadError> {
        let at = self.pos;
        match self.length_or_encoding("a string length")? {
            Length::Plain(n) => Ok(RdbStr::Slice(self.take(n, "a string")?)),
            Length::Encoded(format::ENC_INT8) => {
                Ok(RdbStr::Int(i64::from(self.byte("an 8-bit integer")? as i8)))
            }
            Length::Encoded(format::ENC_INT16) => Ok(RdbStr::Int(i64::from(i16::from_le_bytes(
                self.fixed("a 16-bit integer")?,
            )))),
            Length::Encoded(format::ENC_INT32) => Ok(RdbStr::Int(i64::from(i32::from_le_bytes(
                self.fixed("a 32-bit integer")?,
            )))),
            Length::Encoded(format::ENC_LZF) => self.lzf_string(at).map(RdbStr::Owned),
            Length::Encoded(other) => Err(error_at(at, format!("unknown string encoding {other}"))),
        }
    }

    /// Compressed length, uncompressed length, compressed bytes.
    fn lzf_string(&mut self, at: usize) -> Result<Vec<u8>, LoadError> {
        let compressed_len = self.length("the compressed length of an LZF string")?;
        let len = self.length("the length of an LZF string")?;
        let data = self.take(compressed_len, "LZF data")?;
        if len > (data.len() as u64).saturating_mul(LZF_EXPANSION_MAX) {
            return Err(error_at(
                at,
                format!(
                    "LZF data of {} bytes cannot decompress to the {len} bytes announced",
                    data.len()
                ),
            ));
        }
        lzf::decompress(data, len as usize).map_err(|problem| {
            error_at(
                at,
                format!(
                    "LZF string ({} bytes compressed, {len} announced): {problem}",
                    data.len()
                ),
            )
        })
    }

    /// A string holding a container blob, with its offset.
    fn blob(&mut self) -> Result<(usize, Cow<'a, [u8]>), LoadError> {
        let at = self.pos;
        Ok((at, self.string()?.into_bytes()))
    }

    /// A score of the old ZSET type: a length byte and that many characters of `%.17g`
    /// text, or 253 (NaN), 254 (+inf), 255 (-inf).
    fn text_double(&mut self) -> Result<f64, LoadError> {
        let at = self.pos;
        match self.byte("a score")? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => {
                let text = self.take(u64::from(len), "a score")?;
                parse_score(text).ok_or_else(|| {
                    error_at(at, format!("score \"{}\" is not a number", preview(text)))
                })
            }
        }
    }
}

/// A score written as text, read as `strtod` reads it (surrounding spaces, `inf`, `nan`).
fn parse_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?.trim_ascii();
    let lower = text.to_ascii_lowercase();
    match lower.trim_start_matches('+') {
        "inf" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    lower.parse::<f64>().ok()
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// A hash map for `len` entries of at least `min_bytes` each, capped by what is left.
fn hash_capacity(len: u64, r: &Reader<'_>, min_bytes: usize) -> usize {
    len.min((r.remaining() / min_bytes) as u64).min(RESERVE_MAX) as usize
}

fn new_map(capacity: usize) -> Map<Bstr, Bstr> {
    Map::with_capacity_and_hasher(capacity, Default::default())
}

fn new_set(capacity: usize) -> Set<Bstr> {
    Set::with_capacity_and_hasher(capacity, Default::default())
}

/// Reads the value of type `kind`. `None`: an empty container, which Redis skips on load
/// (`RESTORE` refuses it).
fn read_value(r: &mut Reader<'_>, kind: u8) -> Result<Option<Value>, LoadError> {
    let value = match kind {
        format::TYPE_STRING => Value::Str(r.string()?.into_bstr()),
        format::TYPE_LIST => {
            let len = r.length("the length of a list")?;
            let mut list = List::new();
            for _ in 0..len {
                list.push_back(r.string()?.into_bstr());
            }
            Value::List(Box::new(list))
        }
        format::TYPE_SET => {
            let len = r.length("the size of a set")?;
            let mut set = new_set(hash_capacity(len, r, 1));
            for _ in 0..len {
                let at = r.pos;
                let (index, added) = set.insert_full(r.string()?.into_bstr());
                if !added {
                    return Err(error_at(
                        at,
                        format!("duplicate set member '{}'", preview(&set[index])),
                    ));
                }
            }
            Value::Set(Box::new(set))
        }
        format::TYPE_ZSET | format::TYPE_ZSET_2 => {
            let len = r.length("the size of a sorted set")?;
            let mut zset = ZSet::default();
            for _ in 0..len {
                let at = r.pos;
                let member = r.string()?.into_bstr();
                let score = if kind == format::TYPE_ZSET_2 {
                    f64::from_le_bytes(r.fixed("a binary score")?)
                } else {
                    r.text_double()?
                };
                add_to_zset(&mut zset, &member, score).map_err(|reason| error_at(at, reason))?;
            }
            Value::ZSet(Box::new(zset))
        }
        format::TYPE_HASH => {
            let len = r.length("the size of a hash")?;
            let mut map = new_map(hash_capacity(len, r, 2));
            for _ in 0..len {
                let at = r.pos;
                let field = r.string()?.into_bstr();
                let value = r.string()?.into_bstr();
                let (index, previous) = map.insert_full(field, value);
                if previous.is_some() {
                    return Err(error_at(
                        at,
                        format!("duplicate hash field '{}'", preview(map_key(&map, index))),
                    ));
                }
            }
            Value::Hash(Box::new(map))
        }
        format::TYPE_HASH_ZIPMAP => {
            let (at, blob) = r.blob()?;
            Value::Hash(Box::new(in_blob(at, hash_from_zipmap(&blob))?))
        }
        format::TYPE_LIST_ZIPLIST => {
            let (at, blob) = r.blob()?;
            let mut list = List::new();
            in_blob(
                at,
                ziplist(&blob).and_then(|z| append_to_list(z, &mut list)),
            )?;
            Value::List(Box::new(list))
        }
        format::TYPE_SET_INTSET => {
            let (at, blob) = r.blob()?;
            Value::Set(Box::new(in_blob(at, set_from_intset(&blob))?))
        }
        format::TYPE_ZSET_ZIPLIST => {
            let (at, blob) = r.blob()?;
            let zset = in_blob(
                at,
                ziplist(&blob).and_then(|z| zset_from(z, "sorted set ziplist")),
            )?;
            Value::ZSet(Box::new(zset))
        }
        format::TYPE_HASH_ZIPLIST => {
            let (at, blob) = r.blob()?;
            let map = in_blob(
                at,
                ziplist(&blob).and_then(|z| hash_from(z, "hash ziplist")),
            )?;
            Value::Hash(Box::new(map))
        }
        format::TYPE_LIST_QUICKLIST | format::TYPE_LIST_QUICKLIST_2 => {
            Value::List(Box::new(read_quicklist(r, kind)?))
        }
        format::TYPE_HASH_LISTPACK => {
            let (at, blob) = r.blob()?;
            let map = in_blob(
                at,
                listpack(&blob).and_then(|l| hash_from(l, "hash listpack")),
            )?;
            Value::Hash(Box::new(map))
        }
        format::TYPE_ZSET_LISTPACK => {
            let (at, blob) = r.blob()?;
            let zset = in_blob(
                at,
                listpack(&blob).and_then(|l| zset_from(l, "sorted set listpack")),
            )?;
            Value::ZSet(Box::new(zset))
        }
        format::TYPE_SET_LISTPACK => {
            let (at, blob) = r.blob()?;
            Value::Set(Box::new(in_blob(at, listpack(&blob).and_then(set_from))?))
        }
        format::TYPE_HASH_METADATA_PRE_GA | format::TYPE_HASH_METADATA => {
            Value::Hash(Box::new(read_hash_with_field_ttls(r, kind)?))
        }
        format::TYPE_HASH_LISTPACK_EX_PRE_GA | format::TYPE_HASH_LISTPACK_EX => {
            if kind == format::TYPE_HASH_LISTPACK_EX {
                r.fixed::<8>("the earliest field expiry of a hash")?;
            }
            let (at, blob) = r.blob()?;
            let map = in_blob(at, listpack(&blob).and_then(hash_from_triples))?;
            Value::Hash(Box::new(map))
        }
        other => {
            let at = r.pos.saturating_sub(1);
            return Err(error_at(
                at,
                match unsupported_type(other) {
                    Some(what) => {
                        format!("the value is {what} (type {other}), which ringkv does not support")
                    }
                    None => format!("unknown value type {other}"),
                },
            ));
        }
    };
    Ok(if value.is_empty_container() {
        None
    } else {
        Some(value)
    })
}

fn map_key(map: &Map<Bstr, Bstr>, index: usize) -> &[u8] {
    map.get_index(index).map_or(&[], |(k, _)| k.as_bytes())
}

/// A problem found inside a blob, reported at the blob's offset.
fn in_blob<T>(at: usize, result: Result<T, String>) -> Result<T, LoadError> {
    result.map_err(|reason| error_at(at, reason))
}

fn add_to_zset(zset: &mut ZSet, member: &[u8], score: f64) -> Result<(), String> {
    if score.is_nan() {
        return Err(format!(
            "sorted set member '{}' has a NaN score",
            preview(member)
        ));
    }
    if zset.score(member).is_some() {
        return Err(format!("duplicate sorted set member '{}'", preview(member)));
    }
    zset.insert(member, score);
    Ok(())
}

/// LIST_QUICKLIST (ziplist nodes) and LIST_QUICKLIST_2 (PLAIN or PACKED listpack nodes).
fn read_quicklist(r: &mut Reader<'_>, kind: u8) -> Result<List, LoadError> {
    let nodes = r.length("the node count of a quicklist")?;
    let mut list = List::new();
    for _ in 0..nodes {
        let container = if kind == format::TYPE_LIST_QUICKLIST_2 {
            let at = r.pos;
            let container = r.length("a quicklist node container")?;
            if container != format::QUICKLIST_NODE_PLAIN
                && container != format::QUICKLIST_NODE_PACKED
            {
                return Err(error_at(
                    at,
                    format!(
                        "quicklist node container {container} is neither PLAIN (1) nor PACKED (2)"
                    ),
                ));
            }
            container
        } else {
            format::QUICKLIST_NODE_PACKED
        };
        let (at, blob) = r.blob()?;
        if blob.is_empty() {
            return Err(error_at(at, "empty quicklist node".to_string()));
        }
        if container == format::QUICKLIST_NODE_PLAIN {
            list.push_back(match blob {
                Cow::Borrowed(bytes) => Bstr::new(bytes),
                Cow::Owned(bytes) => Bstr::from_vec(bytes),
            });
        } else if kind == format::TYPE_LIST_QUICKLIST_2 {
            in_blob(
                at,
                listpack(&blob).and_then(|l| append_to_list(l, &mut list)),
            )?;
        } else {
            // Empty ziplist nodes are skipped, as Redis does.
            in_blob(
                at,
                ziplist(&blob).and_then(|z| append_to_list(z, &mut list)),
            )?;
        }
    }
    Ok(list)
}

/// HASH_METADATA(_PRE_GA), Redis 7.4: per field a TTL (a length, 0 for none) then field and
/// value; the GA type starts with the earliest expiry (8 bytes). ringkv has no field TTLs,
/// so a field that carries one stops the load.
fn read_hash_with_field_ttls(r: &mut Reader<'_>, kind: u8) -> Result<Map<Bstr, Bstr>, LoadError> {
    if kind == format::TYPE_HASH_METADATA {
        r.fixed::<8>("the earliest field expiry of a hash")?;
    }
    let len = r.length("the size of a hash")?;
    let mut map = new_map(hash_capacity(len, r, 3));
    for _ in 0..len {
        let at = r.pos;
        let ttl = r.length("a hash field TTL")?;
        let field = r.string()?.into_bstr();
        let value = r.string()?.into_bstr();
        if ttl != 0 {
            return Err(error_at(at, field_ttl_refusal(&field)));
        }
        let (index, previous) = map.insert_full(field, value);
        if previous.is_some() {
            return Err(error_at(
                at,
                format!("duplicate hash field '{}'", preview(map_key(&map, index))),
            ));
        }
    }
    Ok(map)
}

fn field_ttl_refusal(field: &[u8]) -> String {
    format!(
        "hash field '{}' has its own TTL (Redis 7.4 hash field expiration), which ringkv does \
         not support",
        preview(field)
    )
}

// ---------------------------------------------------------------------------------------
// Blobs: listpack, ziplist, intset, zipmap
// ---------------------------------------------------------------------------------------

/// One element of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Packed<'b> {
    Bytes(&'b [u8]),
    Int(i64),
}

impl Packed<'_> {
    #[inline]
    fn to_bstr(self) -> Bstr {
        match self {
            Packed::Bytes(bytes) => Bstr::new(bytes),
            Packed::Int(n) => Bstr::from_i64(n),
        }
    }

    fn describe(self) -> String {
        match self {
            Packed::Bytes(bytes) => preview(bytes),
            Packed::Int(n) => n.to_string(),
        }
    }

    fn score(self) -> Option<f64> {
        match self {
            Packed::Int(n) => Some(n as f64),
            Packed::Bytes(text) => parse_score(text),
        }
    }
}

/// The entries of a listpack or a ziplist, validated as they are read.
trait Entries<'b> {
    /// The next entry; `None` once the end was reached and the trailer checks passed.
    fn next_entry(&mut self) -> Result<Option<Packed<'b>>, String>;
    /// Entries the header announces, bounded by the blob size (a capacity hint).
    fn hint(&self) -> usize;
}

fn append_to_list<'b>(mut entries: impl Entries<'b>, list: &mut List) -> Result<(), String> {
    while let Some(entry) = entries.next_entry()? {
        list.push_back(entry.to_bstr());
    }
    Ok(())
}

fn set_from<'b>(mut entries: impl Entries<'b>) -> Result<Set<Bstr>, String> {
    let mut set = new_set(entries.hint());
    while let Some(entry) = entries.next_entry()? {
        if !set.insert(entry.to_bstr()) {
            return Err(format!(
                "set listpack: duplicate member '{}'",
                entry.describe()
            ));
        }
    }
    Ok(set)
}

fn hash_from<'b>(mut entries: impl Entries<'b>, what: &str) -> Result<Map<Bstr, Bstr>, String> {
    let mut map = new_map(entries.hint() / 2);
    while let Some(field) = entries.next_entry()? {
        let Some(value) = entries.next_entry()? else {
            return Err(format!("{what}: field '{}' has no value", field.describe()));
        };
        if map.insert(field.to_bstr(), value.to_bstr()).is_some() {
            return Err(format!("{what}: duplicate field '{}'", field.describe()));
        }
    }
    Ok(map)
}

/// (field, value, TTL) triples of a Redis 7.4 hash listpack; a TTL of 0 means none.
fn hash_from_triples<'b>(mut entries: impl Entries<'b>) -> Result<Map<Bstr, Bstr>, String> {
    const WHAT: &str = "hash listpack with field TTLs";
    let mut map = new_map(entries.hint() / 3);
    while let Some(field) = entries.next_entry()? {
        let (Some(value), Some(ttl)) = (entries.next_entry()?, entries.next_entry()?) else {
            return Err(format!(
                "{WHAT}: field '{}' lacks its value or TTL",
                field.describe()
            ));
        };
        match ttl {
            Packed::Int(0) => {}
            Packed::Int(_) => return Err(field_ttl_refusal(&field.to_bstr())),
            Packed::Bytes(_) => {
                return Err(format!(
                    "{WHAT}: the TTL of field '{}' is not an integer",
                    field.describe()
                ))
            }
        }
        if map.insert(field.to_bstr(), value.to_bstr()).is_some() {
            return Err(format!("{WHAT}: duplicate field '{}'", field.describe()));
        }
    }
    Ok(map)
}

fn zset_from<'b>(mut entries: impl Entries<'b>, what: &str) -> Result<ZSet, String> {
    let mut zset = ZSet::default();
    while let Some(member) = entries.next_entry()? {
        let Some(score) = entries.next_entry()? else {
            return Err(format!(
                "{what}: member '{}' has no score",
                member.describe()
            ));
        };
        let Some(score_value) = score.score() else {
            return Err(format!(
                "{what}: score '{}' of member '{}' is not a number",
                score.describe(),
                member.describe()
            ));
        };
        let member = member.to_bstr();
        add_to_zset(&mut zset, &member, score_value)
            .map_err(|reason| format!("{what}: {reason}"))?;
    }
    Ok(zset)
}

#[inline]
fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

#[inline]
fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[inline]
fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// A listpack:
/// ```text
/// <total bytes: u32 LE> <count: u16 LE, 65535 = unknown> <entry>* <0xFF>
/// entry = <encoding + data> <back-length: size of encoding + data, 1-5 bytes, read backwards>
/// encodings: 0xxxxxxx 7-bit uint | 10xxxxxx 6-bit-length string | 110xxxxx +1 13-bit int
///            | 1110xxxx +1 12-bit-length string | F0 +4 32-bit-length string
///            | F1/F2/F3/F4 16/24/32/64-bit int LE
/// ```
struct Listpack<'b> {
    lp: &'b [u8],
    pos: usize,
    found: usize,
    declared: u16,
}

fn listpack(lp: &[u8]) -> Result<Listpack<'_>, String> {
    if lp.len() < format::LP_HEADER_LEN + 1 {
        return Err(format!(
            "listpack: blob of {} bytes is shorter than the 7-byte minimum",
            lp.len()
        ));
    }
    let total = le_u32(lp, 0) as usize;
    if total != lp.len() {
        return Err(format!(
            "listpack: header says {total} bytes, the blob has {}",
            lp.len()
        ));
    }
    if lp[lp.len() - 1] != 0xff {
        return Err("listpack: the last byte is not the 0xFF terminator".to_string());
    }
    Ok(Listpack {
        lp,
        pos: format::LP_HEADER_LEN,
        found: 0,
        declared: le_u16(lp, 4),
    })
}

/// Bytes of the back-length of an entry of `len` bytes.
fn backlen_size(len: u64) -> u64 {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

impl<'b> Entries<'b> for Listpack<'b> {
    fn next_entry(&mut self) -> Result<Option<Packed<'b>>, String> {
        let lp = self.lp;
        let end = lp.len() - 1;
        let p = self.pos;
        if p >= end {
            if self.declared != format::LP_COUNT_UNKNOWN && usize::from(self.declared) != self.found
            {
                return Err(format!(
                    "listpack: header counts {} entries, the blob has {}",
                    self.declared, self.found
                ));
            }
            return Ok(None);
        }
        let overrun = || format!("listpack: entry at byte {p} overruns the blob");
        let b = lp[p];
        // Bytes of header to read before the data: (header size, data size, value).
        let need = |n: usize| if p + n <= end { Ok(()) } else { Err(overrun()) };
        let (header, data_len, int): (usize, u64, Option<i64>) = if b & 0x80 == 0 {
            (1, 0, Some(i64::from(b & 0x7f)))
        } else if b & 0xc0 == 0x80 {
            (1, u64::from(b & 0x3f), None)
        } else if b & 0xe0 == 0xc0 {
            need(2)?;
            let raw = (u16::from(b & 0x1f) << 8) | u16::from(lp[p + 1]);
            // 13-bit two's complement.
            let value = if raw >= 1 << 12 {
                i64::from(raw) - (1 << 13)
            } else {
                i64::from(raw)
            };
            (2, 0, Some(value))
        } else if b & 0xf0 == 0xe0 {
            need(2)?;
            (2, (u64::from(b & 0x0f) << 8) | u64::from(lp[p + 1]), None)
        } else {
            match b {
                0xf0 => {
                    need(5)?;
                    (5, u64::from(le_u32(lp, p + 1)), None)
                }
                0xf1 => {
                    need(3)?;
                    (3, 0, Some(i64::from(le_u16(lp, p + 1) as i16)))
                }
                0xf2 => {
                    need(4)?;
                    let raw = u32::from(le_u16(lp, p + 1)) | (u32::from(lp[p + 3]) << 16);
                    // Sign-extend 24 bits.
                    (4, 0, Some(i64::from(((raw << 8) as i32) >> 8)))
                }
                0xf3 => {
                    need(5)?;
                    (5, 0, Some(i64::from(le_u32(lp, p + 1) as i32)))
                }
                0xf4 => {
                    need(9)?;
                    (9, 0, Some(le_u64(lp, p + 1) as i64))
                }
                0xff => {
                    return Err(format!(
                        "listpack: terminator at byte {p} before the end of the blob ({} bytes)",
                        lp.len()
                    ))
                }
                other => {
                    return Err(format!(
                        "listpack: unknown entry encoding 0x{other:02x} at byte {p}"
                    ))
                }
            }
        };
        let entry_len = header as u64 + data_len;
        let backlen = backlen_size(entry_len);
        if p as u64 + entry_len + backlen > end as u64 {
            return Err(overrun());
        }
        let next = p + (entry_len + backlen) as usize;
        // The back-length, read backwards from its last byte: 7 bits per byte, the high bit
        // set on every byte but the first one written.
        let mut value: u64 = 0;
        let mut shift = 0;
        let mut q = next - 1;
        loop {
            let byte = lp[q];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 || q == p {
                return Err(format!(
                    "listpack: bad back-length of the entry at byte {p}"
                ));
            }
            q -= 1;
        }
        if value != entry_len {
            return Err(format!(
                "listpack: entry at byte {p} has a back-length of {value}, its size is {entry_len}"
            ));
        }
        self.pos = next;
        self.found += 1;
        Ok(Some(match int {
            Some(n) => Packed::Int(n),
            None => Packed::Bytes(&lp[p + header..p + entry_len as usize]),
        }))
    }

    fn hint(&self) -> usize {
        usize::from(self.declared).min(self.lp.len())
    }
}

/// A ziplist (Redis before 7.0):
/// ```text
/// <total bytes: u32 LE> <offset of the last entry: u32 LE> <count: u16 LE, 65535 = unknown>
/// <entry>* <0xFF>
/// entry = <previous entry size: 1 byte < 254, or 0xFE + u32 LE> <encoding> <data>
/// encodings: 00xxxxxx 6-bit-length string | 01xxxxxx +1 14-bit-length string (BE)
///            | 10xxxxxx +4 32-bit-length string (BE) | C0/D0/E0 16/32/64-bit int LE
///            | F0 24-bit int | FE 8-bit int | F1..FD the integer 0..12 in the low nibble
/// ```
struct Ziplist<'b> {
    zl: &'b [u8],
    pos: usize,
    found: usize,
    declared: u16,
    tail: usize,
    previous_size: usize,
    last_entry: Option<usize>,
}

fn ziplist(zl: &[u8]) -> Result<Ziplist<'_>, String> {
    if zl.len() < format::ZL_HEADER_LEN + 1 {
        return Err(format!(
            "ziplist: blob of {} bytes is shorter than the 11-byte minimum",
            zl.len()
        ));
    }
    let total = le_u32(zl, 0) as usize;
    if total != zl.len() {
        return Err(format!(
            "ziplist: header says {total} bytes, the blob has {}",
            zl.len()
        ));
    }
    if zl[zl.len() - 1] != 0xff {
        return Err("ziplist: the last byte is not the 0xFF terminator".to_string());
    }
    let tail = le_u32(zl, 4) as usize;
    if tail > zl.len() - 1 {
        return Err(format!(
            "ziplist: tail offset {tail} is past the end of the blob ({} bytes)",
            zl.len()
        ));
    }
    Ok(Ziplist {
        zl,
        pos: format::ZL_HEADER_LEN,
        found: 0,
        declared: le_u16(zl, 8),
        tail,
        previous_size: 0,
        last_entry: None,
    })
}

impl<'b> Entries<'b> for Ziplist<'b> {
    fn next_entry(&mut self) -> Result<Option<Packed<'b>>, String> {
        let zl = self.zl;
        let end = zl.len() - 1;
        let p = self.pos;
        if p >= end {
            if let Some(last) = self.last_entry {
                if last != self.tail {
                    return Err(format!(
                        "ziplist: tail offset {} does not point at the last entry ({last})",
                        self.tail
                    ));
                }
            }
            if self.declared != format::ZL_COUNT_UNKNOWN && usize::from(self.declared) != self.found
            {
                return Err(format!(
                    "ziplist: header counts {} entries, the blob has {}",
                    self.declared, self.found
                ));
            }
            return Ok(None);
        }
        if zl[p] == 0xff {
            return Err(format!(
                "ziplist: terminator at byte {p} before the end of the blob ({} bytes)",
                zl.len()
            ));
        }
        let overrun = || format!("ziplist: entry at byte {p} overruns the blob");
        let need = |n: usize| if p + n <= end { Ok(()) } else { Err(overrun()) };
        let (prev_size, prev_len) = if zl[p] < 254 {
            (1, usize::from(zl[p]))
        } else {
            need(5)?;
            (5, le_u32(zl, p + 1) as usize)
        };
        if prev_len != self.previous_size {
            return Err(format!(
                "ziplist: entry at byte {p} says the previous entry has {prev_len} bytes, it has {}",
                self.previous_size
            ));
        }
        let q = p + prev_size;
        need(prev_size + 1)?;
        let encoding = zl[q];
        let (len_size, data_len, int): (usize, u64, Option<i64>) = match encoding >> 6 {
            0 => (1, u64::from(encoding & 0x3f), None),
            1 => {
                need(prev_size + 2)?;
                (
                    2,
                    (u64::from(encoding & 0x3f) << 8) | u64::from(zl[q + 1]),
                    None,
                )
            }
            2 => {
                need(prev_size + 5)?;
                let len = u32::from_be_bytes([zl[q + 1], zl[q + 2], zl[q + 3], zl[q + 4]]);
                (5, u64::from(len), None)
            }
            _ => {
                let size = match encoding {
                    0xc0 => 2,
                    0xd0 => 4,
                    0xe0 => 8,
                    0xf0 => 3,
                    0xfe => 1,
                    0xf1..=0xfd => 0,
                    other => {
                        return Err(format!(
                            "ziplist: unknown entry encoding 0x{other:02x} at byte {q}"
                        ))
                    }
                };
                need(prev_size + 1 + size)?;
                let d = q + 1;
                let value = match encoding {
                    0xc0 => i64::from(le_u16(zl, d) as i16),
                    0xd0 => i64::from(le_u32(zl, d) as i32),
                    0xe0 => le_u64(zl, d) as i64,
                    0xf0 => {
                        let raw = u32::from(le_u16(zl, d)) | (u32::from(zl[d + 2]) << 16);
                        i64::from(((raw << 8) as i32) >> 8)
                    }
                    0xfe => i64::from(zl[d] as i8),
                    immediate => i64::from(immediate & 0x0f) - 1,
                };
                (1, size as u64, Some(value))
            }
        };
        let entry_len = (prev_size + len_size) as u64 + data_len;
        if p as u64 + entry_len > end as u64 {
            return Err(overrun());
        }
        let entry_len = entry_len as usize;
        self.previous_size = entry_len;
        self.last_entry = Some(p);
        self.pos = p + entry_len;
        self.found += 1;
        Ok(Some(match int {
            Some(n) => Packed::Int(n),
            None => Packed::Bytes(&zl[q + len_size..p + entry_len]),
        }))
    }

    fn hint(&self) -> usize {
        usize::from(self.declared).min(self.zl.len())
    }
}

/// An intset: `<element size: u32 LE, 2/4/8> <count: u32 LE> <elements LE, ascending>`.
fn set_from_intset(blob: &[u8]) -> Result<Set<Bstr>, String> {
    if blob.len() < 8 {
        return Err(format!(
            "intset: blob of {} bytes is shorter than its 8-byte header",
            blob.len()
        ));
    }
    let size = le_u32(blob, 0);
    if !matches!(size, 2 | 4 | 8) {
        return Err(format!("intset: element size {size} is not 2, 4 or 8"));
    }
    let size = size as usize;
    let count = le_u32(blob, 4) as usize;
    if 8 + count as u64 * size as u64 != blob.len() as u64 {
        return Err(format!(
            "intset: {count} elements of {size} bytes do not fill the {}-byte blob",
            blob.len()
        ));
    }
    if count == 0 {
        return Err("intset: empty".to_string());
    }
    let mut set = new_set(count);
    let mut previous: Option<i64> = None;
    for element in blob[8..].chunks_exact(size) {
        let value = match size {
            2 => i64::from(i16::from_le_bytes([element[0], element[1]])),
            4 => i64::from(le_u32(element, 0) as i32),
            _ => le_u64(element, 0) as i64,
        };
        if previous.is_some_and(|p| value <= p) {
            return Err(format!(
                "intset: {value} follows {} (not ascending or duplicate)",
                previous.unwrap_or_default()
            ));
        }
        previous = Some(value);
        set.insert(Bstr::from_i64(value));
    }
    Ok(set)
}

/// A zipmap (Redis before 2.6):
/// ```text
/// <count: 1 byte, 254 = unknown> (<len> field <len> <free: 1 byte> value <free bytes>)* <0xFF>
/// len = 1 byte < 254, or 254 + u32 LE
/// ```
fn hash_from_zipmap(zm: &[u8]) -> Result<Map<Bstr, Bstr>, String> {
    if zm.len() < 2 {
        return Err(format!(
            "zipmap: blob of {} bytes is shorter than the 2-byte minimum",
            zm.len()
        ));
    }
    let end = zm.len() - 1;
    if zm[end] != 0xff {
        return Err("zipmap: the last byte is not the 0xFF terminator".to_string());
    }
    // Reads a length at `p`; returns (length, bytes used).
    let length_at = |p: usize| -> Result<(u64, usize), String> {
        if zm[p] < 254 {
            Ok((u64::from(zm[p]), 1))
        } else if p + 5 <= end {
            Ok((u64::from(le_u32(zm, p + 1)), 5))
        } else {
            Err(format!("zipmap: length at byte {p} overruns the blob"))
        }
    };
    let mut map = new_map(usize::from(zm[0]).min(zm.len() / 4));
    let mut p = 1;
    while zm[p] != 0xff {
        let (field_len, used) = length_at(p)?;
        let field_start = p + used;
        let field_end = field_start as u64 + field_len;
        if field_end >= end as u64 {
            return Err(format!("zipmap: field at byte {p} overruns the blob"));
        }
        let field = &zm[field_start..field_end as usize];
        let v = field_end as usize;
        let (value_len, used) = length_at(v)?;
        // One byte of free-space count follows the value length.
        let free_at = v + used;
        if free_at >= end {
            return Err(format!("zipmap: value at byte {v} overruns the blob"));
        }
        let free = u64::from(zm[free_at]);
        let value_start = free_at + 1;
        let value_end = value_start as u64 + value_len;
        let next = value_end + free;
        if next > end as u64 {
            return Err(format!("zipmap: value at byte {v} overruns the blob"));
        }
        let value = &zm[value_start..value_end as usize];
        if map.insert(Bstr::new(field), Bstr::new(value)).is_some() {
            return Err(format!("zipmap: duplicate field '{}'", preview(field)));
        }
        p = next as usize;
    }
    if p != end {
        return Err(format!(
            "zipmap: terminator at byte {p} before the end of the blob ({} bytes)",
            zm.len()
        ));
    }
    if map.is_empty() {
        return Err("zipmap: empty".to_string());
    }
    if zm[0] != 254 && usize::from(zm[0]) != map.len() {
        return Err(format!(
            "zipmap: header counts {} entries, the blob has {}",
            zm[0],
            map.len()
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests;
