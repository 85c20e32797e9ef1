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
//! scratch buffers reused from key to key, so a save allocates nothing per key (the one
//! exception: the `%.17g` text of a non-integral score in a listpack-encoded sorted set).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{Map, Set};

    fn b(s: &[u8]) -> Bstr {
        Bstr::new(s)
    }

    /// The RDB bytes of `value` after its type byte, with its type byte checked.
    fn encoded(value: &Value, compression: bool, expected_type: u8) -> Vec<u8> {
        let mut out = Vec::new();
        encode_object(value, compression, &mut out);
        assert_eq!(out[0], expected_type, "type byte");
        out.split_off(1)
    }

    fn string_bytes(s: &[u8]) -> Vec<u8> {
        encoded(&Value::Str(Bstr::new(s)), true, TYPE_STRING)
    }

    #[test]
    fn lengths_use_the_shortest_form() {
        let len = |n: u64| {
            let mut v = Vec::new();
            put_len(&mut v, n);
            v
        };
        assert_eq!(len(0), [0x00]);
        assert_eq!(len(63), [0x3F]);
        assert_eq!(len(64), [0x40, 0x40]);
        assert_eq!(len(16383), [0x7F, 0xFF]);
        assert_eq!(len(16384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(len(u32::MAX as u64), [0x80, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            len(1 << 32),
            [0x81, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]
        );
    }

    #[test]
    fn strings_int_lzf_raw() {
        assert_eq!(string_bytes(b"12"), [0xC0, 12]);
        assert_eq!(string_bytes(b"-128"), [0xC0, 0x80]);
        assert_eq!(string_bytes(b"-129"), [0xC1, 0x7F, 0xFF]);
        assert_eq!(string_bytes(b"2147483647"), [0xC2, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(string_bytes(b"-2147483648"), [0xC2, 0x00, 0x00, 0x00, 0x80]);
        // Too wide for 32 bits, not canonical, or empty: raw.
        assert_eq!(string_bytes(b"2147483648"), b"\x0a2147483648");
        assert_eq!(string_bytes(b"007"), b"\x03007");
        assert_eq!(string_bytes(b"-0"), b"\x02-0");
        assert_eq!(string_bytes(b""), [0x00]);
        // 50 x 'a': the LZF stream worked out in lzf.rs, after ENC_LZF, 9 and 50.
        let mut lzf = vec![0xC3, 9, 50];
        lzf.extend_from_slice(&[0x01, b'a', b'a', 0xE0, 37, 0x00, 0x01, b'a', b'a']);
        assert_eq!(string_bytes(&[b'a'; 50]), lzf);
        // Same without compression.
        let raw = encoded(&Value::Str(Bstr::new(&[b'a'; 50])), false, TYPE_STRING);
        assert_eq!(raw[0], 50);
        assert_eq!(&raw[1..], &[b'a'; 50]);
    }

    #[test]
    fn hash_as_listpack() {
        let mut h: Map<Bstr, Bstr> = Map::default();
        h.insert(b(b"a"), b(b"1"));
        h.insert(b(b"bb"), b(b"-4096"));
        let out = encoded(&Value::Hash(Box::new(h)), true, TYPE_HASH_LISTPACK);
        #[rustfmt::skip]
        let lp = [
            19, 0, 0, 0, 4, 0,          // 19 bytes, 4 entries
            0x81, b'a', 2,              // "a"
            0x01, 1,                    // 1 (7-bit uint)
            0x82, b'b', b'b', 3,        // "bb"
            0xD0, 0x00, 2,              // -4096 (13-bit: 0x1000)
            0xFF,
        ];
        let mut expected = vec![lp.len() as u8];
        expected.extend_from_slice(&lp);
        assert_eq!(out, expected);
    }

    #[test]
    fn big_hash_is_a_plain_hash() {
        let mut h: Map<Bstr, Bstr> = Map::default();
        h.insert(b(b"f"), Bstr::from_vec(vec![b'v'; 65]));
        let out = encoded(&Value::Hash(Box::new(h)), false, TYPE_HASH);
        let mut expected = vec![1, 1, b'f', 0x40, 65];
        expected.extend_from_slice(&[b'v'; 65]);
        assert_eq!(out, expected);
    }

    #[test]
    fn intset_sorted_in_the_narrowest_width() {
        let set = |members: &[&[u8]]| {
            let mut s: Set<Bstr> = Set::default();
            for m in members {
                s.insert(b(m));
            }
            Value::Set(Box::new(s))
        };
        let out = encoded(&set(&[b"3", b"1", b"-2"]), true, TYPE_SET_INTSET);
        #[rustfmt::skip]
        assert_eq!(out, [
            14,
            2, 0, 0, 0, 3, 0, 0, 0,
            0xFE, 0xFF, 0x01, 0x00, 0x03, 0x00,
        ]);
        let out = encoded(&set(&[b"70000", b"1"]), true, TYPE_SET_INTSET);
        assert_eq!(
            out,
            [16, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0x70, 0x11, 0x01, 0]
        );
        let out = encoded(&set(&[b"-9223372036854775808"]), true, TYPE_SET_INTSET);
        assert_eq!(out, [16, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
        // A member that is not a canonical integer makes it a plain set.
        let out = encoded(&set(&[b"1", b"01"]), true, TYPE_SET);
        assert_eq!(out, [2, 0xC0, 1, 2, b'0', b'1']);
    }

    #[test]
    fn zset_listpack_scores() {
        let z = zset_of(&[
            (b"a", 1.0),
            (b"b", 1.5),
            (b"c", f64::NEG_INFINITY),
            (b"d", 4611686018427387904.0), // 2^62: still an integer entry
            (b"e", 9223372036854775808.0), // 2^63: text
        ]);
        let text = b"9.2233720368547758e+18";
        let mut lp: Vec<u8> = vec![0; 6];
        lp.extend_from_slice(&[0x81, b'c', 2, 0x84, b'-', b'i', b'n', b'f', 5]);
        lp.extend_from_slice(&[0x81, b'a', 2, 0x01, 1]);
        lp.extend_from_slice(&[0x81, b'b', 2, 0x83, b'1', b'.', b'5', 4]);
        lp.extend_from_slice(&[0x81, b'd', 2, 0xF4, 0, 0, 0, 0, 0, 0, 0, 0x40, 9]);
        lp.extend_from_slice(&[0x81, b'e', 2, 0x80 | text.len() as u8]);
        lp.extend_from_slice(text);
        lp.push(1 + text.len() as u8);
        lp.push(0xFF);
        let total = lp.len() as u32;
        lp[..4].copy_from_slice(&total.to_le_bytes());
        lp[4..6].copy_from_slice(&10u16.to_le_bytes());

        let value = Value::ZSet(Box::new(z));
        let raw = encoded(&value, false, TYPE_ZSET_LISTPACK);
        assert_eq!(lp.len(), 69);
        assert_eq!(&raw[..2], &[0x40, 69], "14-bit length");
        assert_eq!(&raw[2..], &lp[..]);
        // LZF cannot save 4 bytes on this one, so compression leaves it raw.
        assert_eq!(encoded(&value, true, TYPE_ZSET_LISTPACK), raw);
    }

    fn zset_of(members: &[(&[u8], f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in members {
            z.insert(m, *s);
        }
        z
    }

    #[test]
    fn zset_skiplist_highest_first_binary_scores() {
        let members: Vec<(Vec<u8>, f64)> = (0..129)
            .map(|i| (format!("m{i}").into_bytes(), i as f64 * 0.5))
            .collect();
        let refs: Vec<(&[u8], f64)> = members.iter().map(|(m, s)| (&m[..], *s)).collect();
        let out = encoded(&Value::ZSet(Box::new(zset_of(&refs))), false, TYPE_ZSET_2);
        let mut expected = vec![0x40, 129];
        expected.extend_from_slice(b"\x04m128");
        expected.extend_from_slice(&64.0f64.to_le_bytes());
        expected.extend_from_slice(b"\x04m127");
        assert_eq!(&out[..expected.len()], &expected[..]);
    }

    #[test]
    fn list_as_quicklist_of_listpacks() {
        let list: List = [b(b"a"), b(b"b"), b(b"300")].into_iter().collect();
        let out = encoded(&Value::List(Box::new(list)), true, TYPE_LIST_QUICKLIST_2);
        #[rustfmt::skip]
        let expected = [
            1,                          // one node
            2,                          // PACKED
            16,                         // listpack of 16 bytes, stored raw
            16, 0, 0, 0, 3, 0,
            0x81, b'a', 2,
            0x81, b'b', 2,
            0xC1, 0x2C, 2,              // 300 as a 13-bit int
            0xFF,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn list_nodes_split_at_eight_kilobytes() {
        // 100-byte elements take 103 bytes each in a listpack: a node starts at 7 bytes and
        // takes another element while size + 100 + 8 <= 8192, so 79 elements per node.
        let list: List = (0..200)
            .map(|i| Bstr::from_vec(vec![b'a' + (i % 26) as u8; 100]))
            .collect();
        let mut out = Vec::new();
        encode_object(&Value::List(Box::new(list)), false, &mut out);
        assert_eq!(out[1], 3, "three nodes");
        assert_eq!(out[2], QUICKLIST_NODE_PACKED as u8);
        // 14-bit length of the first node's listpack: 7 + 79 * 103 = 8144 bytes.
        let size = ((out[3] as usize & 0x3F) << 8) | out[4] as usize;
        assert_eq!(size, 8144);
        assert_eq!(u16::from_le_bytes([out[5 + 4], out[5 + 5]]), 79);
    }

    #[test]
    fn listpack_backlen_and_wide_encodings() {
        let mut lp = Vec::new();
        lp_push_backlen(&mut lp, 127);
        lp_push_backlen(&mut lp, 128);
        lp_push_backlen(&mut lp, 16382);
        lp_push_backlen(&mut lp, 16383);
        assert_eq!(lp, [127, 0x01, 0x80, 0x7F, 0xFE, 0x00, 0xFF, 0xFF]);
        for (v, bytes) in [
            (127i64, vec![0x7F, 1]),
            (128, vec![0xC0, 0x80, 2]),
            (-1, vec![0xDF, 0xFF, 2]),
            (4096, vec![0xF1, 0x00, 0x10, 3]),
            (-32768, vec![0xF1, 0x00, 0x80, 3]),
            (32768, vec![0xF2, 0x00, 0x80, 0x00, 4]),
            (-8388609, vec![0xF3, 0xFF, 0xFF, 0x7F, 0xFF, 5]),
            (1 << 31, vec![0xF4, 0, 0, 0, 0x80, 0, 0, 0, 0, 9]),
        ] {
            let mut lp = Vec::new();
            lp_push(&mut lp, v.to_string().as_bytes());
            assert_eq!(lp, bytes, "{v}");
            assert_eq!(lp_entry_len(v.to_string().as_bytes()), bytes.len(), "{v}");
        }
        let mut lp = Vec::new();
        lp_push(&mut lp, &[b'x'; 100]);
        assert_eq!(&lp[..2], &[0xE0, 100]);
        assert_eq!(&lp[102..], &[102]);
        let mut lp = Vec::new();
        lp_push(&mut lp, &[b'x'; 5000]);
        assert_eq!(&lp[..5], &[0xF0, 0x88, 0x13, 0, 0]);
        // backlen of 5005 = 39 * 128 + 13
        assert_eq!(&lp[5005..], &[39, 0x80 | 13]);
        assert_eq!(lp_entry_len(&[b'x'; 5000]), lp.len());
    }

    #[test]
    fn dump_payload_trailer() {
        let payload = dump_payload(&Value::Str(b(b"hello")), true);
        assert_eq!(&payload[..7], b"\x00\x05hello");
        assert_eq!(&payload[7..9], &[10, 0]);
        let crc = crc64::update(0, &payload[..9]);
        assert_eq!(&payload[9..], &crc.to_le_bytes());
    }

    #[test]
    fn whole_file_golden() {
        let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
        dbs[2].set(b"k", Value::Str(b(b"v")));
        dbs[2].set_expire_at(b"k", 0x0102_0304_0506_0708);
        let info = SaveInfo {
            aof_base: true,
            ..SaveInfo::default()
        };
        let mut file = Vec::new();
        let stats = save_with_used_mem(
            &dbs,
            &mut file,
            &SaveOptions::default(),
            &info,
            1_700_000_000_999,
            1_000_000,
        )
        .unwrap();
        let mut expected: Vec<u8> = b"REDIS0010".to_vec();
        expected.extend_from_slice(b"\xFA\x09redis-ver\x067.0.15");
        expected.extend_from_slice(b"\xFA\x0Aredis-bits\xC0\x40");
        expected.extend_from_slice(b"\xFA\x05ctime\xC2\x00\xF1\x53\x65");
        expected.extend_from_slice(b"\xFA\x08used-mem\xC2\x40\x42\x0F\x00");
        expected.extend_from_slice(b"\xFA\x08aof-base\xC0\x01");
        expected.extend_from_slice(b"\xFE\x02\xFB\x01\x01");
        expected.extend_from_slice(b"\xFC\x08\x07\x06\x05\x04\x03\x02\x01");
        expected.extend_from_slice(b"\x00\x01k\x01v");
        expected.push(0xFF);
        let crc = crc64::update(0, &expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(file, expected);
        assert_eq!(stats.bytes, expected.len() as u64);
        assert_eq!(stats.keys, 1);

        // Checksum off: zeros.
        let mut file = Vec::new();
        let options = SaveOptions {
            checksum: false,
            ..SaveOptions::default()
        };
        save_with_used_mem(
            &dbs,
            &mut file,
            &options,
            &info,
            1_700_000_000_999,
            1_000_000,
        )
        .unwrap();
        assert_eq!(&file[file.len() - 8..], &[0; 8]);
        assert_eq!(&file[..file.len() - 8], &expected[..expected.len() - 8]);
    }

    #[test]
    fn replication_aux_fields_in_order() {
        let dbs: Vec<Db> = (0..1).map(|_| Db::default()).collect();
        let info = SaveInfo {
            repl_stream_db: Some(3),
            repl_id: Some("abc".into()),
            repl_offset: Some(-1),
            aof_base: false,
        };
        let mut file = Vec::new();
        save_with_used_mem(&dbs, &mut file, &SaveOptions::default(), &info, 0, 0).unwrap();
        let tail = b"\xFA\x0Erepl-stream-db\xC0\x03\xFA\x07repl-id\x03abc\
\xFA\x0Brepl-offset\xC0\xFF\xFA\x08aof-base\xC0\x00\xFF";
        let body = &file[..file.len() - 8];
        assert!(body.ends_with(tail), "{body:?}");
    }

    /// Records the size of every write.
    struct Recorder {
        data: Vec<u8>,
        writes: Vec<usize>,
        fail_after: Option<usize>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(limit) = self.fail_after {
                if self.data.len() + buf.len() > limit {
                    return Err(io::Error::other("disk full"));
                }
            }
            self.data.extend_from_slice(buf);
            self.writes.push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn many_keys() -> Vec<Db> {
        let mut db = Db::default();
        for i in 0..200_000u32 {
            db.set(
                format!("key:{i}").as_bytes(),
                Value::Str(Bstr::from_vec(format!("value:{i}").into_bytes())),
            );
        }
        // Bigger than a chunk: written around the buffer.
        let mut seed = 1u64;
        let noise: Vec<u8> = (0..CHUNK + 12345)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        db.set(b"big", Value::Str(Bstr::from_vec(noise)));
        vec![db]
    }

    #[test]
    fn large_saves_are_few_large_writes_with_a_valid_checksum() {
        let dbs = many_keys();
        let mut rec = Recorder {
            data: Vec::new(),
            writes: Vec::new(),
            fail_after: None,
        };
        let stats = save_with_used_mem(
            &dbs,
            &mut rec,
            &SaveOptions::default(),
            &SaveInfo::default(),
            0,
            0,
        )
        .unwrap();
        assert_eq!(stats.keys, 200_001);
        assert_eq!(stats.bytes, rec.data.len() as u64);
        assert!(rec.writes.len() <= 12, "{} writes", rec.writes.len());
        assert!(rec.writes.iter().all(|&w| w <= CHUNK + 12345));
        let n = rec.data.len();
        let crc = crc64::update(0, &rec.data[..n - 8]);
        assert_eq!(rec.data[n - 8..], crc.to_le_bytes());
    }

    #[test]
    fn write_errors_stop_the_save() {
        let dbs = many_keys();
        let mut rec = Recorder {
            data: Vec::new(),
            writes: Vec::new(),
            fail_after: Some(CHUNK + 10),
        };
        let err = save_with_used_mem(
            &dbs,
            &mut rec,
            &SaveOptions::default(),
            &SaveInfo::default(),
            0,
            0,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn key_save_delay_sleeps_per_key() {
        let mut db = Db::default();
        for i in 0..20 {
            db.set(format!("k{i}").as_bytes(), Value::Str(b(b"v")));
        }
        let options = SaveOptions {
            key_save_delay_us: 5_000,
            ..SaveOptions::default()
        };
        let start = std::time::Instant::now();
        save_with_used_mem(&[db], io::sink(), &options, &SaveInfo::default(), 0, 0).unwrap();
        assert!(start.elapsed() >= std::time::Duration::from_millis(100));
    }
}
