//! Writes RDB files (version 10) and DUMP payloads, byte for byte as Redis 7.0 with its
//! default encoding thresholds would write the same data.
//!
//! # Encodings chosen (see [`super::format`] for the layouts)
//! - string: an integer form when it is the canonical decimal text of an integer that fits
//!   32 bits (and is at most 11 bytes), LZF when compression is on and it is longer than 20
//!   bytes and shrinks by 4 bytes or more, else raw.
//! - list: `LIST_QUICKLIST_2`, split into listpack nodes the way `RPUSH` fills them with
//!   `list-max-listpack-size -2` (a node takes another element while its size plus the
//!   element's length plus 8 stays within 8 KiB); an element of 1 GiB or more is a PLAIN node.
//! - hash: `HASH_LISTPACK` up to 128 fields with every field and value at most 64 bytes, in
//!   insertion order; else `HASH`.
//! - set: `SET_INTSET` for up to 512 members that are all canonical 64-bit integers (sorted,
//!   narrowest width); else `SET`. Never `SET_LISTPACK`: Redis 7.0 cannot read it.
//! - sorted set: `ZSET_LISTPACK` up to 128 members of at most 64 bytes, ascending, each score
//!   an integer entry when it is integral within ±2^62 and otherwise its `%.17g` text
//!   (`inf`, `-inf`), as Redis' listpack zsets store them; else `ZSET_2`, members from the
//!   highest score down (the order Redis writes its skiplist) with binary LE doubles.
//!
//! # Speed
//! A save streams through one fixed buffer ([`CHUNK`] bytes) that is checksummed and written
//! whenever it fills, so a multi-gigabyte file is a series of large sequential writes. Values
//! are encoded straight into that buffer; listpacks, intsets and LZF output are built in
//! scratch buffers reused from key to key, so a save allocates nothing per key.

use std::io::{self, Write};

use super::format::*;
use super::{crc64, lzf, SaveInfo, SaveOptions, RDB_VERSION};
use crate::protocol::parser::parse_i64;
use crate::storage::list::List;
use crate::storage::value::{Map, Set};
use crate::storage::zset::ZSet;
use crate::storage::{Bstr, Db, Value};

/// Size of the write buffer; each full buffer is one `write` call.
pub const CHUNK: usize = 2 << 20;

/// What a save wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaveStats {
    pub bytes: u64,
    pub keys: u64,
}

/// Writes every database in `dbs` as one RDB file to `out` (header, aux fields, databases,
/// EOF, checksum). `now_ms` is the `ctime`; `used-mem` is the allocator's current count.
pub fn save<W: Write>(
    dbs: &[Db],
    out: W,
    options: &SaveOptions,
    info: &SaveInfo,
    now_ms: u64,
) -> io::Result<SaveStats> {
    let used_mem = crate::storage::memory::used_memory();
    save_with_used_mem(dbs, out, options, info, now_ms, used_mem)
}

/// [`save`] with the `used-mem` aux field given, so tests can pin a file's exact bytes.
pub fn save_with_used_mem<W: Write>(
    dbs: &[Db],
    out: W,
    options: &SaveOptions,
    info: &SaveInfo,
    now_ms: u64,
    used_mem: u64,
) -> io::Result<SaveStats> {
    let mut sink = FileSink::new(out, options.checksum);
    let mut enc = Encoder::new(options.compression);
    let mut delay = KeyDelay::new(options.key_save_delay_us);

    sink.put(MAGIC);
    sink.put(format!("{RDB_VERSION:04}").as_bytes());
    write_aux_fields(&mut sink, &mut enc, info, now_ms, used_mem);

    let mut keys = 0u64;
    for (index, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        sink.byte(OPCODE_SELECTDB);
        put_len(&mut sink, index as u64);
        sink.byte(OPCODE_RESIZEDB);
        put_len(&mut sink, db.len() as u64);
        put_len(&mut sink, db.expires_len() as u64);
        let has_expires = db.expires_len() > 0;
        for (key, value) in db.iter() {
            if has_expires {
                if let Some(at_ms) = db.expire_at(key) {
                    sink.byte(OPCODE_EXPIRETIME_MS);
                    sink.put(&at_ms.to_le_bytes());
                }
            }
            sink.byte(value_type(value));
            enc.string(&mut sink, key);
            enc.value(&mut sink, value);
            keys += 1;
            if let Some(error) = sink.error.take() {
                return Err(error);
            }
            delay.after_key();
        }
    }
    sink.byte(OPCODE_EOF);
    let bytes = sink.finish()?;
    Ok(SaveStats { bytes, keys })
}

/// The aux fields Redis 7.0 writes after the header, in its order.
fn write_aux_fields<O: Out>(
    out: &mut O,
    enc: &mut Encoder,
    info: &SaveInfo,
    now_ms: u64,
    used_mem: u64,
) {
    let mut aux = |out: &mut O, name: &str, value: &[u8]| {
        out.byte(OPCODE_AUX);
        enc.string(out, name.as_bytes());
        enc.string(out, value);
    };
    let mut num = itoa::Buffer::new();
    aux(
        out,
        "redis-ver",
        crate::config::REDIS_COMPAT_VERSION.as_bytes(),
    );
    aux(out, "redis-bits", b"64");
    aux(out, "ctime", num.format(now_ms / 1000).as_bytes());
    aux(out, "used-mem", num.format(used_mem).as_bytes());
    if let Some(db) = info.repl_stream_db {
        aux(out, "repl-stream-db", num.format(db).as_bytes());
    }
    if let Some(id) = &info.repl_id {
        aux(out, "repl-id", id.as_bytes());
    }
    if let Some(offset) = info.repl_offset {
        aux(out, "repl-offset", num.format(offset).as_bytes());
    }
    aux(out, "aof-base", if info.aof_base { b"1" } else { b"0" });
}

/// The `DUMP` payload of `value`: type byte, RDB-encoded value, RDB version (2 bytes LE),
/// CRC64 (8 bytes LE).
pub fn dump_payload(value: &Value, compression: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_object(value, compression, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends `value`'s type byte and its RDB encoding to `out` (what follows a key in a file).
pub fn encode_object(value: &Value, compression: bool, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(compression);
    out.push(value_type(value));
    enc.value(out, value);
}

/// The RDB type byte Redis 7.0 would write for `value`.
pub fn value_type(value: &Value) -> u8 {
    match value {
        Value::Str(_) => TYPE_STRING,
        Value::List(_) => TYPE_LIST_QUICKLIST_2,
        Value::Hash(h) if hash_fits_listpack(h) => TYPE_HASH_LISTPACK,
        Value::Hash(_) => TYPE_HASH,
        Value::Set(s) if set_fits_intset(s) => TYPE_SET_INTSET,
        Value::Set(_) => TYPE_SET,
        Value::ZSet(z) if zset_fits_listpack(z) => TYPE_ZSET_LISTPACK,
        Value::ZSet(_) => TYPE_ZSET_2,
    }
}

fn hash_fits_listpack(h: &Map<Bstr, Bstr>) -> bool {
    h.len() <= HASH_MAX_LISTPACK_ENTRIES
        && h.iter()
            .all(|(f, v)| f.len() <= HASH_MAX_LISTPACK_VALUE && v.len() <= HASH_MAX_LISTPACK_VALUE)
}

fn set_fits_intset(s: &Set<Bstr>) -> bool {
    s.len() <= SET_MAX_INTSET_ENTRIES && s.iter().all(|m| parse_i64(m).is_some())
}

fn zset_fits_listpack(z: &ZSet) -> bool {
    z.len() <= ZSET_MAX_LISTPACK_ENTRIES
        && z.iter().all(|(m, _)| m.len() <= ZSET_MAX_LISTPACK_VALUE)
}

// ---------------------------------------------------------------------------------------
// Output

/// Where encoded bytes go: a `Vec` (DUMP) or a buffered, checksummed file ([`FileSink`]).
trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn byte(&mut self, b: u8);
}

impl Out for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// Buffers output in one [`CHUNK`]-sized buffer, checksumming each chunk as it is written.
/// Write errors are kept (the first one) rather than returned from every `put`, so encoding
/// code stays straight-line; the save loop checks after each key.
struct FileSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: u64,
    checksum: bool,
    written: u64,
    error: Option<io::Error>,
}

impl<W: Write> FileSink<W> {
    fn new(out: W, checksum: bool) -> Self {
        FileSink {
            out,
            buf: Vec::with_capacity(CHUNK),
            crc: 0,
            checksum,
            written: 0,
            error: None,
        }
    }

    /// Checksums and writes `bytes`, bypassing the buffer.
    fn write_through(&mut self, bytes: &[u8]) {
        if self.checksum {
            self.crc = crc64::update(self.crc, bytes);
        }
        self.written += bytes.len() as u64;
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    fn flush_buf(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.write_through(&buf);
            self.buf = buf;
            self.buf.clear();
        }
    }

    /// Writes the checksum (zeros when checksums are off) and flushes; returns the file size.
    fn finish(mut self) -> io::Result<u64> {
        self.flush_buf();
        let crc = if self.checksum { self.crc } else { 0 };
        self.write_through(&crc.to_le_bytes());
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

impl<W: Write> Out for FileSink<W> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() > CHUNK - self.buf.len() {
            self.flush_buf();
            if bytes.len() >= CHUNK / 2 {
                self.write_through(bytes);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if self.buf.len() == CHUNK {
            self.flush_buf();
        }
        self.buf.push(b);
    }
}

/// `rdb-key-save-delay`: a positive value sleeps that many microseconds after each key; a
/// negative value -N sleeps one microsecond after one key in N on average (as Redis does).
struct KeyDelay {
    us: i64,
    seed: u64,
}

impl KeyDelay {
    fn new(us: i64) -> Self {
        KeyDelay {
            us,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    #[inline]
    fn after_key(&mut self) {
        if self.us == 0 {
            return;
        }
        let us = if self.us > 0 {
            self.us as u64
        } else {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            u64::from(self.seed.is_multiple_of(self.us.unsigned_abs()))
        };
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lengths and strings

/// Writes `len` in the shortest RDB length form.
#[inline]
fn put_len<O: Out>(out: &mut O, len: u64) {
    if len < 1 << 6 {
        out.byte(len as u8);
    } else if len < 1 << 14 {
        out.put(&[(LEN_14BIT << 6) | (len >> 8) as u8, len as u8]);
    } else if len <= u32::MAX as u64 {
        let b = (len as u32).to_be_bytes();
        out.put(&[LEN_32BIT, b[0], b[1], b[2], b[3]]);
    } else {
        out.byte(LEN_64BIT);
        out.put(&len.to_be_bytes());
    }
}

/// The ENC_INT* form of `s` when Redis would use one: returns the buffer and its used length.
#[inline]
fn int_encoding(s: &[u8]) -> Option<([u8; 5], usize)> {
    if s.len() > INT_ENCODING_MAX_LEN {
        return None;
    }
    let v = parse_i64(s)?;
    let tag = LEN_ENCVAL << 6;
    if let Ok(v) = i8::try_from(v) {
        Some(([tag | ENC_INT8, v as u8, 0, 0, 0], 2))
    } else if let Ok(v) = i16::try_from(v) {
        let b = v.to_le_bytes();
        Some(([tag | ENC_INT16, b[0], b[1], 0, 0], 3))
    } else if let Ok(v) = i32::try_from(v) {
        let b = v.to_le_bytes();
        Some(([tag | ENC_INT32, b[0], b[1], b[2], b[3]], 5))
    } else {
        None
    }
}

/// Scratch space reused from value to value.
struct Encoder {
    compression: bool,
    /// LZF output.
    lzf: Vec<u8>,
    /// The listpack or intset being built.
    blob: Vec<u8>,
    /// Members of an intset being built.
    ints: Vec<i64>,
    /// (element count, plain) of each quicklist node.
    nodes: Vec<(usize, bool)>,
}

/// Scratch buffers grown past this are released after use, so one huge value does not pin
/// its size in memory for the rest of the save.
const SCRATCH_KEEP: usize = 16 << 20;

impl Encoder {
    fn new(compression: bool) -> Self {
        Encoder {
            compression,
            lzf: Vec::new(),
            blob: Vec::new(),
            ints: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Writes `s` as an RDB string: integer form, LZF, or raw (see the module docs).
    #[inline]
    fn string<O: Out>(&mut self, out: &mut O, s: &[u8]) {
        write_string(out, &mut self.lzf, self.compression, s);
    }

    fn value<O: Out>(&mut self, out: &mut O, value: &Value) {
        match value {
            Value::Str(s) => self.string(out, s),
            Value::List(list) => self.list(out, list),
            Value::Hash(h) => {
                if hash_fits_listpack(h) {
                    let lp = &mut self.blob;
                    lp_begin(lp);
                    for (f, v) in h.iter() {
                        lp_push(lp, f);
                        lp_push(lp, v);
                    }
                    lp_end(lp, h.len() * 2);
                    write_string(out, &mut self.lzf, self.compression, lp);
                } else {
                    put_len(out, h.len() as u64);
                    for (f, v) in h.iter() {
                        self.string(out, f);
                        self.string(out, v);
                    }
                }
            }
            Value::Set(s) => {
                if set_fits_intset(s) {
                    self.ints.clear();
                    self.ints.extend(s.iter().filter_map(|m| parse_i64(m)));
                    self.ints.sort_unstable();
                    intset_build(&mut self.blob, &self.ints);
                    write_string(out, &mut self.lzf, self.compression, &self.blob);
                } else {
                    put_len(out, s.len() as u64);
                    for m in s.iter() {
                        self.string(out, m);
                    }
                }
            }
            Value::ZSet(z) => {
                if zset_fits_listpack(z) {
                    let lp = &mut self.blob;
                    lp_begin(lp);
                    for (m, score) in z.iter() {
                        lp_push(lp, m);
                        lp_push_score(lp, score);
                    }
                    lp_end(lp, z.len() * 2);
                    write_string(out, &mut self.lzf, self.compression, lp);
                } else {
                    put_len(out, z.len() as u64);
                    for (m, score) in z.iter().rev() {
                        self.string(out, m);
                        out.put(&score.to_le_bytes());
                    }
                }
            }
        }
        self.trim();
    }

    /// A list as quicklist nodes: first decide where `RPUSH` would have split it, then write
    /// the node count and each node.
    fn list<O: Out>(&mut self, out: &mut O, list: &List) {
        self.nodes.clear();
        // (size in bytes of the open node's listpack, it is packed)
        let mut tail: Option<usize> = None;
        for e in list.iter() {
            if e.len() >= LIST_PACKED_THRESHOLD {
                self.nodes.push((1, true));
                tail = None;
                continue;
            }
            match tail {
                Some(size) if size + e.len() + 8 <= LIST_MAX_LISTPACK_BYTES => {
                    tail = Some(size + lp_entry_len(e));
                    self.nodes.last_mut().expect("open node").0 += 1;
                }
                _ => {
                    tail = Some(LP_HEADER_LEN + 1 + lp_entry_len(e));
                    self.nodes.push((1, false));
                }
            }
        }
        put_len(out, self.nodes.len() as u64);
        let mut elements = list.iter();
        for &(count, plain) in &self.nodes {
            if plain {
                let e = elements
                    .next()
                    .expect("node counts add up to the list length");
                put_len(out, QUICKLIST_NODE_PLAIN);
                write_string(out, &mut self.lzf, self.compression, e);
            } else {
                lp_begin(&mut self.blob);
                for e in elements.by_ref().take(count) {
                    lp_push(&mut self.blob, e);
                }
                lp_end(&mut self.blob, count);
                put_len(out, QUICKLIST_NODE_PACKED);
                write_string(out, &mut self.lzf, self.compression, &self.blob);
            }
        }
    }

    fn trim(&mut self) {
        for buf in [&mut self.lzf, &mut self.blob] {
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
        }
        if self.ints.capacity() > SCRATCH_KEEP / 8 {
            self.ints = Vec::new();
        }
    }
}

/// Writes `s` as an RDB string, compressing through `lzf_buf` when allowed and worth it.
#[inline]
fn write_string<O: Out>(out: &mut O, lzf_buf: &mut Vec<u8>, compression: bool, s: &[u8]) {
    if let Some((enc, n)) = int_encoding(s) {
        out.put(&enc[..n]);
        return;
    }
    if compression && s.len() > LZF_MIN_LEN {
        lzf_buf.clear();
        if lzf::compress(s, lzf_buf) {
            out.byte((LEN_ENCVAL << 6) | ENC_LZF);
            put_len(out, lzf_buf.len() as u64);
            put_len(out, s.len() as u64);
            out.put(lzf_buf);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.put(s);
}

// ---------------------------------------------------------------------------------------
// Listpacks and intsets

fn lp_begin(lp: &mut Vec<u8>) {
    lp.clear();
    lp.extend_from_slice(&[0; LP_HEADER_LEN]);
}

/// Terminates `lp` and fills in its header.
fn lp_end(lp: &mut Vec<u8>, count: usize) {
    lp.push(LP_EOF);
    let total = lp.len() as u32;
    lp[..4].copy_from_slice(&total.to_le_bytes());
    let count = count.min(LP_COUNT_UNKNOWN as usize) as u16;
    lp[4..6].copy_from_slice(&count.to_le_bytes());
}

/// Size of the integer encoding of `v` (without backlen).
#[inline]
fn lp_int_len(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

/// Size of the string encoding of `len` bytes (without backlen).
#[inline]
fn lp_str_len(len: usize) -> usize {
    if len < 64 {
        1 + len
    } else if len < 4096 {
        2 + len
    } else {
        5 + len
    }
}

/// Size of the backlen field for an entry of `len` bytes.
#[inline]
fn lp_backlen_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

/// Bytes `s` takes as a listpack entry, backlen included.
#[inline]
fn lp_entry_len(s: &[u8]) -> usize {
    let body = match parse_i64(s) {
        Some(v) => lp_int_len(v),
        None => lp_str_len(s.len()),
    };
    body + lp_backlen_len(body)
}

/// Appends the backlen of an entry of `len` bytes: 7-bit groups, most significant first,
/// every byte after the first marked with the top bit.
#[inline]
fn lp_push_backlen(lp: &mut Vec<u8>, len: usize) {
    let n = lp_backlen_len(len);
    for i in (0..n).rev() {
        let group = ((len >> (7 * i)) & 0x7f) as u8;
        lp.push(if i == n - 1 { group } else { group | 0x80 });
    }
}

/// Appends `s`, as an integer entry when it is the canonical text of an i64.
#[inline]
fn lp_push(lp: &mut Vec<u8>, s: &[u8]) {
    match parse_i64(s) {
        Some(v) => lp_push_int(lp, v),
        None => lp_push_str(lp, s),
    }
}

fn lp_push_int(lp: &mut Vec<u8>, v: i64) {
    let start = lp.len();
    match lp_int_len(v) {
        1 => lp.push(v as u8),
        2 => {
            let u = (v as u16) & 0x1fff;
            lp.push(LP_ENC_13BIT_INT | (u >> 8) as u8);
            lp.push(u as u8);
        }
        3 => {
            lp.push(LP_ENC_16BIT_INT);
            lp.extend_from_slice(&(v as i16).to_le_bytes());
        }
        4 => {
            lp.push(LP_ENC_24BIT_INT);
            lp.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        5 => {
            lp.push(LP_ENC_32BIT_INT);
            lp.extend_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            lp.push(LP_ENC_64BIT_INT);
            lp.extend_from_slice(&v.to_le_bytes());
        }
    }
    let len = lp.len() - start;
    lp_push_backlen(lp, len);
}

fn lp_push_str(lp: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 64 {
        lp.push(LP_ENC_6BIT_STR | len as u8);
    } else if len < 4096 {
        lp.push(LP_ENC_12BIT_STR | (len >> 8) as u8);
        lp.push(len as u8);
    } else {
        lp.push(LP_ENC_32BIT_STR);
        lp.extend_from_slice(&(len as u32).to_le_bytes());
    }
    lp.extend_from_slice(s);
    lp_push_backlen(lp, lp_str_len(len));
}

/// Appends a sorted-set score the way Redis' listpack zsets store it: integral scores within
/// ±2^62 as integers, others as `%.17g` text (`inf`, `-inf`).
fn lp_push_score(lp: &mut Vec<u8>, score: f64) {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&score) && score.fract() == 0.0 {
        lp_push_int(lp, score as i64);
    } else {
        let text = crate::protocol::reply::format_double(score);
        lp_push_str(lp, text.as_bytes());
    }
}

/// Builds an intset of the sorted `ints` in `blob`, in the narrowest width that holds all.
fn intset_build(blob: &mut Vec<u8>, ints: &[i64]) {
    let (min, max) = match (ints.first(), ints.last()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (0, 0),
    };
    let width = if i16::try_from(min).is_ok() && i16::try_from(max).is_ok() {
        INTSET_ENC_INT16
    } else if i32::try_from(min).is_ok() && i32::try_from(max).is_ok() {
        INTSET_ENC_INT32
    } else {
        INTSET_ENC_INT64
    };
    blob.clear();
    blob.extend_from_slice(&width.to_le_bytes());
    blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for &v in ints {
        match width {
            INTSET_ENC_INT16 => blob.extend_from_slice(&(v as i16).to_le_bytes()),
            INTSET_ENC_INT32 => blob.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => blob.extend_from_slice(&v.to_le_bytes()),
        }
    }
}
