//! Opcodes, value types and encodings of the RDB format, as Redis 7.0 writes it and Redis 7.4
//! (RDB 12) extends it. Every number here was checked against Redis' `rdb.h`, `listpack.c`,
//! `ziplist.c`, `intset.c`, `zipmap.c` and `quicklist.h` at tags 7.0.15 and 7.4.
//!
//! # The file
//! ```text
//! "REDIS" + 4 ASCII digits of version ("REDIS0010")
//! { AUX(250)  string key  string value }*                 redis-ver, redis-bits, ctime, ...
//! { FUNCTION2(245)  string library-code }*                 (7.0+, only when functions exist)
//! { MODULE_AUX(247) ... }*
//! for each non-empty database:
//!     SELECTDB(254)  length db-number
//!     RESIZEDB(251)  length keys  length keys-with-ttl
//!     for each key:
//!         [ EXPIRETIME_MS(252)  u64 LE unix-ms ]           (or EXPIRETIME(253) u32 LE seconds,
//!         [ IDLE(248) length | FREQ(249) u8 ]               only in very old files)
//!         type-byte  string key  value (layout depends on the type)
//! EOF(255)
//! u64 LE CRC-64 of every byte before it (0 when the writer had rdbchecksum off; versions >= 5)
//! ```
//!
//! # A length
//! The two top bits of the first byte pick the form:
//! ```text
//! 00LLLLLL                          6-bit length (0..63)
//! 01LLLLLL LLLLLLLL                 14-bit length, big-endian (64..16383)
//! 10000000 [4 bytes big-endian]     32-bit length
//! 10000001 [8 bytes big-endian]     64-bit length
//! 11EEEEEE                          not a length: a specially encoded string follows (ENC_*)
//! ```
//! Writers use the shortest form that fits.
//!
//! # A string
//! ```text
//! length  bytes...                                  raw
//! 11000000  i8                                      ENC_INT8   (decimal text of the integer)
//! 11000001  i16 LE                                  ENC_INT16
//! 11000010  i32 LE                                  ENC_INT32
//! 11000011  length compressed  length original  LZF bytes...          ENC_LZF
//! ```
//! Redis writes the integer forms only for strings of at most 11 bytes that are the canonical
//! decimal form of an integer fitting the width, and LZF only for strings longer than 20
//! bytes whose compression saves at least 4 bytes.
//!
//! # A listpack (hash, zset and list nodes since 7.0; stream nodes)
//! ```text
//! u32 LE total-bytes | u16 LE count (65535: count it) | entry* | 0xFF
//! entry = encoding [data] backlen
//! ```
//! Encodings (first byte):
//! ```text
//! 0xxxxxxx                     7-bit unsigned int 0..127
//! 10LLLLLL  bytes              string of 0..63 bytes
//! 110xxxxx  xxxxxxxx           13-bit signed int, big-endian two's complement (-4096..4095)
//! 1110LLLL  LLLLLLLL  bytes    string of 64..4095 bytes (length big-endian)
//! 11110000  u32 LE  bytes      string of 4096+ bytes
//! 0xF1 i16 LE | 0xF2 i24 LE | 0xF3 i32 LE | 0xF4 i64 LE       wider ints
//! 0xFF                         end of listpack
//! ```
//! `backlen` is the size of encoding+data, written so it can be read backwards: 1 to 5 bytes,
//! 7 bits each, most significant group first; every byte but the first (leftmost) has its top
//! bit set. A value below 128 is one byte; then 2 bytes below 16383, 3 below 2097151, 4 below
//! 268435455, else 5. A string that is the canonical decimal form of an i64 is stored as an int.
//!
//! # A ziplist (RDB 10.. replaced by listpacks; still found in older files)
//! ```text
//! u32 LE total-bytes | u32 LE offset-of-last-entry | u16 LE count (65535: count it) | entry* | 0xFF
//! entry = prevlen encoding [data]
//! prevlen  = u8 (< 254) | 0xFE u32 LE
//! 00LLLLLL                             string 0..63 bytes
//! 01LLLLLL LLLLLLLL                    string, 14-bit big-endian length
//! 10000000 u32 big-endian              string, 32-bit length
//! 0xC0 i16 LE | 0xD0 i32 LE | 0xE0 i64 LE | 0xF0 i24 LE | 0xFE i8
//! 0xF1..=0xFD                          immediate int 0..12 (low nibble - 1)
//! ```
//!
//! # An intset (SET_INTSET)
//! ```text
//! u32 LE width (2, 4 or 8) | u32 LE count | count integers of that width, LE, ascending
//! ```
//! The width is the smallest that holds every member.
//!
//! # A zipmap (HASH_ZIPMAP, Redis 2.x)
//! ```text
//! u8 count (254+: count it) | { len key len u8-free value free-bytes }* | 0xFF
//! len = u8 (< 254) | 0xFE u32 LE
//! ```
//!
//! # Value layouts by type
//! ```text
//! STRING            string
//! LIST, SET         length n, n strings
//! ZSET              length n, n x (string member, old double: u8 len | 253 nan 254 +inf 255 -inf, ASCII)
//! ZSET_2            length n, n x (string member, f64 LE)
//! HASH              length n, n x (string field, string value)
//! *_ZIPLIST, *_LISTPACK, SET_INTSET, HASH_ZIPMAP     one string holding the blob
//! LIST_QUICKLIST    length nodes, each a string holding a ziplist
//! LIST_QUICKLIST_2  length nodes, each: length container (PLAIN 1 | PACKED 2), string
//!                   (PACKED: a listpack; PLAIN: one element's bytes)
//! ```

// ---- Opcodes (bytes that take the place of a type byte) ----

/// Cluster slot info (Redis 7.4+, cluster mode): slot id, slot size, expires size.
pub const OPCODE_SLOT_INFO: u8 = 244;
/// A function library (Redis 7.0 GA and later): its code as a string.
pub const OPCODE_FUNCTION2: u8 = 245;
/// A function library in the format of 7.0 release candidates.
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Module auxiliary data.
pub const OPCODE_MODULE_AUX: u8 = 247;
/// LRU idle time of the next key (a length, seconds).
pub const OPCODE_IDLE: u8 = 248;
/// LFU frequency of the next key (one byte).
pub const OPCODE_FREQ: u8 = 249;
/// Auxiliary field: two strings, name and value.
pub const OPCODE_AUX: u8 = 250;
/// Size hints for the database that follows: two lengths, keys and keys with a TTL.
pub const OPCODE_RESIZEDB: u8 = 251;
/// Expire time of the next key: u64 LE unix milliseconds.
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
/// Expire time of the next key: u32 LE unix seconds (old files).
pub const OPCODE_EXPIRETIME: u8 = 253;
/// The database the following keys belong to (a length).
pub const OPCODE_SELECTDB: u8 = 254;
/// End of the data; the checksum follows.
pub const OPCODE_EOF: u8 = 255;

// ---- Value types ----

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
/// Sorted set with binary (f64 LE) scores.
pub const TYPE_ZSET_2: u8 = 5;
/// Module value from 4.0 release candidates.
pub const TYPE_MODULE_PRE_GA: u8 = 6;
/// Module value with annotations.
pub const TYPE_MODULE_2: u8 = 7;
// 8 is unused.
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// Hash as one listpack: field, value, field, value...
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// Sorted set as one listpack: member, score, member, score... in score order.
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// List as quicklist nodes with a container kind each (Redis 7.0).
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Set as one listpack (Redis 7.2+; Redis 7.0 never writes it).
pub const TYPE_SET_LISTPACK: u8 = 20;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;
/// Hash with field expiry, hashtable form, 7.4 release candidates.
pub const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
/// Hash with field expiry, listpack form, 7.4 release candidates.
pub const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
/// Hash with field expiry, hashtable form (Redis 7.4).
pub const TYPE_HASH_METADATA: u8 = 24;
/// Hash with field expiry, listpack form (Redis 7.4).
pub const TYPE_HASH_LISTPACK_EX: u8 = 25;

/// Redis' name for a value type byte (its `RDB_TYPE_` suffix), or None for a byte that is not
/// a value type.
pub const fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        TYPE_STRING => "STRING",
        TYPE_LIST => "LIST",
        TYPE_SET => "SET",
        TYPE_ZSET => "ZSET",
        TYPE_HASH => "HASH",
        TYPE_ZSET_2 => "ZSET_2",
        TYPE_MODULE_PRE_GA => "MODULE_PRE_GA",
        TYPE_MODULE_2 => "MODULE_2",
        TYPE_HASH_ZIPMAP => "HASH_ZIPMAP",
        TYPE_LIST_ZIPLIST => "LIST_ZIPLIST",
        TYPE_SET_INTSET => "SET_INTSET",
        TYPE_ZSET_ZIPLIST => "ZSET_ZIPLIST",
        TYPE_HASH_ZIPLIST => "HASH_ZIPLIST",
        TYPE_LIST_QUICKLIST => "LIST_QUICKLIST",
        TYPE_STREAM_LISTPACKS => "STREAM_LISTPACKS",
        TYPE_HASH_LISTPACK => "HASH_LISTPACK",
        TYPE_ZSET_LISTPACK => "ZSET_LISTPACK",
        TYPE_LIST_QUICKLIST_2 => "LIST_QUICKLIST_2",
        TYPE_STREAM_LISTPACKS_2 => "STREAM_LISTPACKS_2",
        TYPE_SET_LISTPACK => "SET_LISTPACK",
        TYPE_STREAM_LISTPACKS_3 => "STREAM_LISTPACKS_3",
        TYPE_HASH_METADATA_PRE_GA => "HASH_METADATA_PRE_GA",
        TYPE_HASH_LISTPACK_EX_PRE_GA => "HASH_LISTPACK_EX_PRE_GA",
        TYPE_HASH_METADATA => "HASH_METADATA",
        TYPE_HASH_LISTPACK_EX => "HASH_LISTPACK_EX",
        _ => return None,
    })
}

// ---- Header ----

/// Every file starts with these 5 bytes, then 4 ASCII digits of version.
pub const MAGIC: &[u8; 5] = b"REDIS";
/// Length of magic plus version digits.
pub const HEADER_LEN: usize = 9;

// ---- Lengths ----

/// Top two bits `00`: the length is the low 6 bits.
pub const LEN_6BIT: u8 = 0;
/// Top two bits `01`: 14 bits, the low 6 of this byte then the next byte.
pub const LEN_14BIT: u8 = 1;
/// Whole byte: a 32-bit big-endian length follows.
pub const LEN_32BIT: u8 = 0x80;
/// Whole byte: a 64-bit big-endian length follows.
pub const LEN_64BIT: u8 = 0x81;
/// Top two bits `11`: a special string encoding, in the low 6 bits.
pub const LEN_ENCVAL: u8 = 3;

/// String stored as an i8.
pub const ENC_INT8: u8 = 0;
/// String stored as an i16 LE.
pub const ENC_INT16: u8 = 1;
/// String stored as an i32 LE.
pub const ENC_INT32: u8 = 2;
/// String stored LZF-compressed: compressed length, original length, data.
pub const ENC_LZF: u8 = 3;

/// Strings longer than this are candidates for LZF (see [`super::lzf::compress`]).
pub const LZF_MIN_LEN: usize = super::lzf::MIN_COMPRESS_LEN;
/// Only strings up to this many bytes are tried as integers (ENC_INT*).
pub const INT_ENCODING_MAX_LEN: usize = 11;

// ---- Old-style (ZSET, type 3) double lengths ----

/// The score is NaN.
pub const DOUBLE_NAN: u8 = 253;
/// The score is +inf.
pub const DOUBLE_POS_INF: u8 = 254;
/// The score is -inf.
pub const DOUBLE_NEG_INF: u8 = 255;

// ---- Listpack ----

/// Header: u32 total bytes, u16 count.
pub const LP_HEADER_LEN: usize = 6;
/// Count value meaning "65535 or more: walk the entries".
pub const LP_COUNT_UNKNOWN: u16 = u16::MAX;
/// Terminator byte.
pub const LP_EOF: u8 = 0xFF;
/// `0xxxxxxx`: 7-bit unsigned int; mask and tag.
pub const LP_ENC_7BIT_UINT_MASK: u8 = 0x80;
pub const LP_ENC_7BIT_UINT: u8 = 0x00;
/// `10LLLLLL`: string up to 63 bytes.
pub const LP_ENC_6BIT_STR_MASK: u8 = 0xC0;
pub const LP_ENC_6BIT_STR: u8 = 0x80;
/// `110xxxxx xxxxxxxx`: 13-bit signed int.
pub const LP_ENC_13BIT_INT_MASK: u8 = 0xE0;
pub const LP_ENC_13BIT_INT: u8 = 0xC0;
/// `1110LLLL LLLLLLLL`: string up to 4095 bytes.
pub const LP_ENC_12BIT_STR_MASK: u8 = 0xF0;
pub const LP_ENC_12BIT_STR: u8 = 0xE0;
/// Whole-byte encodings.
pub const LP_ENC_32BIT_STR: u8 = 0xF0;
pub const LP_ENC_16BIT_INT: u8 = 0xF1;
pub const LP_ENC_24BIT_INT: u8 = 0xF2;
pub const LP_ENC_32BIT_INT: u8 = 0xF3;
pub const LP_ENC_64BIT_INT: u8 = 0xF4;
/// Longest backlen field.
pub const LP_MAX_BACKLEN_LEN: usize = 5;

// ---- Ziplist ----

/// Header: u32 total bytes, u32 tail offset, u16 count.
pub const ZL_HEADER_LEN: usize = 10;
/// Count value meaning "65535 or more: walk the entries".
pub const ZL_COUNT_UNKNOWN: u16 = u16::MAX;
/// Terminator byte.
pub const ZL_END: u8 = 0xFF;
/// prevlen first byte announcing a u32 LE previous-entry length.
pub const ZL_BIG_PREVLEN: u8 = 0xFE;
/// The top two bits of a string encoding (anything below `11`).
pub const ZL_STR_MASK: u8 = 0xC0;
pub const ZL_STR_06B: u8 = 0x00;
pub const ZL_STR_14B: u8 = 0x40;
pub const ZL_STR_32B: u8 = 0x80;
pub const ZL_INT_16B: u8 = 0xC0;
pub const ZL_INT_32B: u8 = 0xD0;
pub const ZL_INT_64B: u8 = 0xE0;
pub const ZL_INT_24B: u8 = 0xF0;
pub const ZL_INT_8B: u8 = 0xFE;
/// Immediate ints 0..=12 are the encodings 0xF1..=0xFD (value = low nibble - 1).
pub const ZL_INT_IMM_MIN: u8 = 0xF1;
pub const ZL_INT_IMM_MAX: u8 = 0xFD;

// ---- Intset ----

/// Header: u32 LE width, u32 LE count.
pub const INTSET_HEADER_LEN: usize = 8;
pub const INTSET_ENC_INT16: u32 = 2;
pub const INTSET_ENC_INT32: u32 = 4;
pub const INTSET_ENC_INT64: u32 = 8;

// ---- Zipmap ----

/// Length byte announcing a u32 LE length; as the count byte, "count it".
pub const ZIPMAP_BIGLEN: u8 = 254;
/// Terminator byte.
pub const ZIPMAP_END: u8 = 255;

// ---- Quicklist (LIST_QUICKLIST_2) ----

/// Node holding one element verbatim (elements too big for a listpack).
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// Node holding a listpack of elements.
pub const QUICKLIST_NODE_PACKED: u64 = 2;

// ---- Thresholds Redis 7.0 uses by default when choosing encodings ----

/// `hash-max-listpack-entries`.
pub const HASH_MAX_LISTPACK_ENTRIES: usize = 128;
/// `hash-max-listpack-value`.
pub const HASH_MAX_LISTPACK_VALUE: usize = 64;
/// `zset-max-listpack-entries`.
pub const ZSET_MAX_LISTPACK_ENTRIES: usize = 128;
/// `zset-max-listpack-value`.
pub const ZSET_MAX_LISTPACK_VALUE: usize = 64;
/// `set-max-intset-entries`.
pub const SET_MAX_INTSET_ENTRIES: usize = 512;
/// `list-max-listpack-size -2`: a list node's listpack stays within 8 KiB.
pub const LIST_MAX_LISTPACK_BYTES: usize = 8192;
/// Elements at least this big get a PLAIN quicklist node (`packed_threshold`, 1 GiB).
pub const LIST_PACKED_THRESHOLD: usize = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_byte_has_one_name() {
        let named: Vec<u8> = (0..=255u8).filter(|&t| type_name(t).is_some()).collect();
        let expected: Vec<u8> = (0..=7).chain(9..=25).collect();
        assert_eq!(named, expected);
        assert_eq!(type_name(TYPE_LIST_QUICKLIST_2), Some("LIST_QUICKLIST_2"));
        assert_eq!(type_name(8), None);
        assert_eq!(type_name(OPCODE_EOF), None);
    }
}
