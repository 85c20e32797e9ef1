//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! A hash is an insertion-ordered [`Map`] of field → value.
//!
//! # Order of whole-hash replies
//! Redis 7.0 keeps a hash of at most 128 fields whose fields and values are at most 64 bytes
//! as a *listpack*: HGETALL, HKEYS, HVALS and HSCAN then return fields in insertion order, and
//! deleting a field keeps the order of the others. We reproduce that: below the listpack size a
//! field is removed with `shift_remove` (O(n), n ≤ 128), above it with the O(1)
//! `swap_remove` (Redis' order is then hash-table order, which clients cannot rely on). Both
//! removals keep SCAN's guarantee (see `Db::scan`): elements only ever move to lower
//! positions, which the downward cursor has not visited yet.
//!
//! # HINCRBYFLOAT
//! Redis computes HINCRBYFLOAT (and INCRBYFLOAT) in C `long double`, x87 80-bit extended
//! precision on x86-64, and prints the result with `%.17Lf` stripped of trailing zeros; so
//! `HINCRBYFLOAT h f 0.1` stores `0.1`, where a 64-bit double would print
//! `0.10000000000000001`. [`long_double`] reproduces the three operations needed — parse, add,
//! print — exactly, with big integers, for any input length (`storage::long_double`, used by
//! INCRBYFLOAT, rounds inputs of more than 19 significant digits inexactly, and HINCRBYFLOAT
//! results of 20+ digits are common). The command propagates
//! as `HSET key field <result>` so replicas never redo the float arithmetic.

use super::flags::*;
use super::sets::{parse_cursor, parse_scan_options, reply_scan, signed_count};
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::{Reply, Resp};
use crate::server::shared::Stats;
use crate::spec;
use crate::storage::db::scan_positions;
use crate::storage::value::Map;
use crate::storage::{Bstr, Value};

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "hset",
        -4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hset
    ),
    spec!(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hsetnx
    ),
    spec!(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hset
    ),
    spec!(
        "hget",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @hash @fast",
        hget
    ),
    spec!(
        "hmget",
        -3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @hash @fast",
        hmget
    ),
    spec!(
        "hdel",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hdel
    ),
    spec!(
        "hlen",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @hash @fast",
        hlen
    ),
    spec!(
        "hstrlen",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @hash @fast",
        hstrlen
    ),
    spec!(
        "hexists",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @hash @fast",
        hexists
    ),
    spec!("hkeys", 2, READONLY, 1, 1, 1, "@read @hash @slow", hkeys),
    spec!("hvals", 2, READONLY, 1, 1, 1, "@read @hash @slow", hvals),
    spec!(
        "hgetall",
        2,
        READONLY,
        1,
        1,
        1,
        "@read @hash @slow",
        hgetall
    ),
    spec!(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hincrby
    ),
    spec!(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @hash @fast",
        hincrbyfloat
    ),
    spec!(
        "hrandfield",
        -2,
        READONLY,
        1,
        1,
        1,
        "@read @hash @slow",
        hrandfield
    ),
    spec!("hscan", -3, READONLY, 1, 1, 1, "@read @hash @slow", hscan),
];

/// Largest hash Redis 7.0 keeps as a listpack (`hash-max-listpack-entries`, default 128).
const LISTPACK_ENTRIES_MAX: usize = 128;
/// Longest field or value a listpack hash holds (`hash-max-listpack-value`, default 64).
const LISTPACK_VALUE_MAX: usize = 64;

// ---------------------------------------------------------------------------------------------
// LOOKUP
// ---------------------------------------------------------------------------------------------

/// A hash found for reading (None: no such key) and the reply buffer to answer with.
type HashAndReply<'c> = (Option<&'c Map<Bstr, Bstr>>, &'c mut Reply);

/// Looks `key` up for reading (counting a keyspace hit or miss) and returns the hash with the
/// reply buffer, so a handler can walk the hash while writing its reply.
fn read_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<HashAndReply<'c>, CmdError> {
    let db = &mut ctx.store.dbs[ctx.client.db];
    let value = db.lookup(key, ctx.now_ms);
    let stats = &ctx.shared.stats;
    Stats::add(
        if value.is_some() {
            &stats.keyspace_hits
        } else {
            &stats.keyspace_misses
        },
        1,
    );
    match value {
        None => Ok((None, &mut *ctx.reply)),
        Some(Value::Hash(hash)) => Ok((Some(&**hash), &mut *ctx.reply)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Looks `key` up for writing (no hit/miss accounting).
fn write_hash<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Map<Bstr, Bstr>>, CmdError> {
    let now_ms = ctx.now_ms;
    match ctx.db().lookup_mut(key, now_ms) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(&mut **hash)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// The hash at `key`, created empty if missing. The caller must add a field before returning
/// (Redis never keeps an empty hash).
fn write_or_create_hash<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<&'c mut Map<Bstr, Bstr>, CmdError> {
    let now_ms = ctx.now_ms;
    match ctx.db().entry_or_insert_with(key, now_ms, Value::new_hash) {
        Value::Hash(hash) => Ok(&mut **hash),
        _ => Err(CmdError::WRONG_TYPE),
    }
}

/// True if Redis 7.0 would keep `hash` as a listpack (see the module doc).
fn is_listpack(hash: &Map<Bstr, Bstr>) -> bool {
    hash.len() <= LISTPACK_ENTRIES_MAX
        && hash
            .iter()
            .all(|(f, v)| f.len() <= LISTPACK_VALUE_MAX && v.len() <= LISTPACK_VALUE_MAX)
}

/// Removes `field`, keeping insertion order while the hash is listpack-sized.
fn remove_field(hash: &mut Map<Bstr, Bstr>, field: &[u8]) -> bool {
    if hash.len() <= LISTPACK_ENTRIES_MAX {
        hash.shift_remove(field).is_some()
    } else {
        hash.swap_remove(field).is_some()
    }
}

/// Sets `field` to `value`; true if the field is new.
fn set_field(hash: &mut Map<Bstr, Bstr>, field: &[u8], value: Bstr) -> bool {
    match hash.get_mut(field) {
        Some(slot) => {
            *slot = value;
            false
        }
        None => {
            hash.insert(Bstr::new(field), value);
            true
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WRITES
// ---------------------------------------------------------------------------------------------

/// HSET key field value [field value ...]: the number of new fields.
/// HMSET (same handler): `+OK`.
fn hset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::arity(args[0]));
    }
    let key = args[1];
    let hash = write_or_create_hash(ctx, key)?;
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        created += set_field(hash, pair[0], Bstr::new(pair[1])) as i64;
    }
    // Redis counts every HSET as a change, even one that rewrote identical values.
    ctx.touch(key);
    if args[0].eq_ignore_ascii_case(b"hmset") {
        ctx.reply.ok();
    } else {
        ctx.reply.int(created);
    }
    Ok(())
}

/// HSETNX key field value: 1 if the field was set, 0 if it already existed.
fn hsetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let hash = write_or_create_hash(ctx, key)?;
    if hash.contains_key(args[2]) {
        ctx.reply.int(0);
        return Ok(());
    }
    hash.insert(Bstr::new(args[2]), Bstr::new(args[3]));
    ctx.touch(key);
    ctx.reply.int(1);
    Ok(())
}

/// HDEL key field [field ...]: the number of fields removed; an emptied hash is deleted.
fn hdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let Some(hash) = write_hash(ctx, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut removed = 0;
    for field in &args[2..] {
        if remove_field(hash, field) {
            removed += 1;
            if hash.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.db().remove_if_empty(key);
        ctx.touch(key);
    }
    ctx.reply.int(removed);
    Ok(())
}

/// HINCRBY key field increment: the new value.
fn hincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (args[1], args[2]);
    let increment = args::int(args[3])?;
    let hash = write_or_create_hash(ctx, key)?;
    let current = match hash.get(field) {
        None => 0,
        Some(text) => crate::protocol::parser::parse_i64(text)
            .ok_or(CmdError::new("ERR hash value is not an integer"))?,
    };
    let Some(value) = current.checked_add(increment) else {
        return Err(CmdError::OVERFLOW);
    };
    set_field(hash, field, Bstr::from_i64(value));
    ctx.touch(key);
    ctx.reply.int(value);
    Ok(())
}

/// HINCRBYFLOAT key field increment: the new value as a bulk string, computed in long double
/// precision (see the module doc); propagated as HSET.
fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, field) = (args[1], args[2]);
    let increment = long_double::parse(args[3]).ok_or(CmdError::NOT_FLOAT)?;
    if increment.is_infinite() {
        return Err(CmdError::new("ERR value is NaN or Infinity"));
    }
    let hash = write_or_create_hash(ctx, key)?;
    let current = match hash.get(field) {
        None => long_double::LongDouble::ZERO,
        Some(text) => {
            long_double::parse(text).ok_or(CmdError::new("ERR hash value is not a float"))?
        }
    };
    let sum = long_double::add(current, increment);
    if sum.is_infinite() {
        return Err(CmdError::new("ERR increment would produce NaN or Infinity"));
    }
    let text = sum.to_human_string();
    set_field(hash, field, Bstr::new(text.as_bytes()));
    ctx.touch(key);
    ctx.reply.bulk(text.as_bytes());
    ctx.propagate_as(vec![vec![
        b"HSET".to_vec(),
        key.to_vec(),
        field.to_vec(),
        text.into_bytes(),
    ]]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// READS
// ---------------------------------------------------------------------------------------------

fn hget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    match hash.and_then(|h| h.get(args[2])) {
        Some(value) => reply.bulk(value),
        None => reply.null(),
    }
    Ok(())
}

/// HMGET key field [field ...]: a value or null per field; a missing key is an empty hash.
fn hmget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    reply.array(args.len() - 2);
    for field in &args[2..] {
        match hash.and_then(|h| h.get(*field)) {
            Some(value) => reply.bulk(value),
            None => reply.null(),
        }
    }
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    reply.int(hash.map_or(0, |h| h.len() as i64));
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    reply.int(
        hash.and_then(|h| h.get(args[2]))
            .map_or(0, |v| v.len() as i64),
    );
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    reply.int(hash.is_some_and(|h| h.contains_key(args[2])) as i64);
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    let Some(hash) = hash else {
        reply.array(0);
        return Ok(());
    };
    reply.array(hash.len());
    for field in hash.keys() {
        reply.bulk(field);
    }
    Ok(())
}

fn hvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    let Some(hash) = hash else {
        reply.array(0);
        return Ok(());
    };
    reply.array(hash.len());
    for value in hash.values() {
        reply.bulk(value);
    }
    Ok(())
}

/// HGETALL key: a RESP3 map (a flat field, value array in RESP2).
fn hgetall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (hash, reply) = read_hash(ctx, args[1])?;
    let Some(hash) = hash else {
        reply.map(0);
        return Ok(());
    };
    reply.map(hash.len());
    for (field, value) in hash {
        reply.bulk(field);
        reply.bulk(value);
    }
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]: random fields; a negative count allows repeats. With
/// WITHVALUES, RESP2 gets a flat field, value array and RESP3 an array of pairs.
fn hrandfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut count = None;
    let mut with_values = false;
    if args.len() >= 3 {
        let parsed = signed_count(args[2])?;
        if args.len() > 4 || (args.len() == 4 && !args::is(args[3], "WITHVALUES")) {
            return Err(CmdError::SYNTAX);
        }
        if args.len() == 4 {
            with_values = true;
            if parsed.unsigned_abs() > (i64::MAX / 2) as u64 {
                return Err(CmdError::new("ERR value is out of range"));
            }
        }
        count = Some(parsed);
    }
    let (hash, reply) = read_hash(ctx, args[1])?;
    let Some(count) = count else {
        match hash {
            Some(hash) => {
                let index = rand::random::<usize>() % hash.len();
                reply.bulk(hash.get_index(index).expect("index within len").0);
            }
            None => reply.null(),
        }
        return Ok(());
    };
    let Some(hash) = hash else {
        reply.array(0);
        return Ok(());
    };
    let wanted = count.unsigned_abs() as usize;
    let indexes: Vec<usize> = if count < 0 || wanted == 1 {
        (0..wanted)
            .map(|_| rand::random::<usize>() % hash.len())
            .collect()
    } else if wanted >= hash.len() {
        (0..hash.len()).collect()
    } else {
        rand::seq::index::sample(&mut rand::thread_rng(), hash.len(), wanted).into_vec()
    };
    let pairs_nested = with_values && reply.resp == Resp::V3;
    reply.array(if with_values && !pairs_nested {
        indexes.len() * 2
    } else {
        indexes.len()
    });
    for index in indexes {
        let (field, value) = hash.get_index(index).expect("index within len");
        if pairs_nested {
            reply.array(2);
        }
        reply.bulk(field);
        if with_values {
            reply.bulk(value);
        }
    }
    Ok(())
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]: `[cursor, [field, value, ...]]`. A
/// listpack-sized hash is returned whole with cursor 0, as Redis does; larger hashes are walked
/// by position (see `Db::scan`).
fn hscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[2])?;
    let (hash, reply) = read_hash(ctx, args[1])?;
    let Some(hash) = hash else {
        reply_scan(reply, 0, &[]);
        return Ok(());
    };
    let options = parse_scan_options(&args[3..])?;
    let mut positions = Vec::new();
    let next = if is_listpack(hash) {
        positions.extend(0..hash.len());
        0
    } else {
        scan_positions(hash.len(), cursor, options.count, |i| positions.push(i))
    };
    let mut elements: Vec<&[u8]> = Vec::with_capacity(positions.len() * 2);
    for index in positions {
        let (field, value) = hash.get_index(index).expect("index within len");
        if options.matches(field) {
            elements.push(field);
            elements.push(value);
        }
    }
    reply_scan(reply, next, &elements);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// LONG DOUBLE
// ---------------------------------------------------------------------------------------------

/// Exact emulation of the x87 80-bit `long double` operations HINCRBYFLOAT needs: glibc's
/// `strtold` (as Redis' `string2ld` filters it), addition rounded to nearest-even, and
/// `%.17Lf` printing with Redis' trailing-zero stripping (`ld2string` in human mode).
///
/// A finite value is `±significand × 2^exponent` with a 64-bit significand, the x87 format's
/// precision; arithmetic is done exactly on big integers and rounded once.
pub(crate) mod long_double {
    use std::cmp::Ordering;

    /// Significand width of the x87 extended format (explicit integer bit included).
    const SIGNIFICAND_BITS: i64 = 64;
    /// Exponent of the lowest bit of the smallest subnormal, 2^-16445.
    const LSB_EXPONENT_MIN: i64 = -16445;
    /// Finite values are below 2^16384.
    const MAGNITUDE_EXPONENT_LIMIT: i64 = 16384;
    /// `MAX_LONG_DOUBLE_CHARS` in Redis: longer inputs are rejected.
    const TEXT_LEN_MAX: usize = 5 * 1024;
    /// Digits after the point in `%.17Lf`.
    const FRACTION_DIGITS: u32 = 17;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct LongDouble {
        negative: bool,
        infinite: bool,
        significand: u64,
        exponent: i64,
    }

    impl LongDouble {
        pub const ZERO: LongDouble = LongDouble {
            negative: false,
            infinite: false,
            significand: 0,
            exponent: 0,
        };

        fn infinity(negative: bool) -> LongDouble {
            LongDouble {
                negative,
                infinite: true,
                significand: 0,
                exponent: 0,
            }
        }

        pub fn is_infinite(&self) -> bool {
            self.infinite
        }

        /// `%.17Lf` without trailing zeros (and without a trailing point); `-0` prints `0`.
        pub fn to_human_string(self) -> String {
            if self.infinite {
                return if self.negative { "-inf" } else { "inf" }.to_string();
            }
            let mut scaled = Big::from_u128(self.significand as u128);
            for _ in 0..FRACTION_DIGITS {
                scaled.mul_small(10);
            }
            let fixed = if self.exponent >= 0 {
                scaled.shl(self.exponent as u64)
            } else {
                shift_right_rounded(&scaled, (-self.exponent) as u64)
            };
            let mut digits = fixed.to_decimal();
            while digits.len() <= FRACTION_DIGITS as usize {
                digits.insert(0, '0');
            }
            let point = digits.len() - FRACTION_DIGITS as usize;
            let mut text = String::with_capacity(digits.len() + 2);
            if self.negative {
                text.push('-');
            }
            text.push_str(&digits[..point]);
            let fraction = digits[point..].trim_end_matches('0');
            if !fraction.is_empty() {
                text.push('.');
                text.push_str(fraction);
            }
            if text == "-0" {
                text = "0".to_string();
            }
            text
        }
    }

    /// `n >> shift`, rounded to nearest, ties to even.
    fn shift_right_rounded(n: &Big, shift: u64) -> Big {
        let mut quotient = n.shr(shift);
        let half = shift > 0 && n.bit(shift - 1);
        let rest = shift > 1 && n.any_below(shift - 1);
        if half && (rest || quotient.bit(0)) {
            quotient.add_small(1);
        }
        quotient
    }

    /// Rounds `±(n + sticky) × 2^exponent` to the format, where `sticky` means "plus a
    /// nonzero amount below the lowest bit of n".
    fn round(n: &Big, sticky: bool, exponent: i64, negative: bool) -> LongDouble {
        if n.is_zero() {
            return LongDouble {
                negative,
                ..LongDouble::ZERO
            };
        }
        let len = n.bit_len() as i64;
        let mut shift = (len - SIGNIFICAND_BITS).max(LSB_EXPONENT_MIN - exponent);
        let mut significand: u128;
        if shift <= 0 {
            significand = n.low_u128() << (-shift) as u32;
        } else {
            significand = n.shr(shift as u64).low_u128();
            let half = n.bit(shift as u64 - 1);
            let rest = sticky || (shift > 1 && n.any_below(shift as u64 - 1));
            if half && (rest || significand & 1 == 1) {
                significand += 1;
                if significand == 1u128 << SIGNIFICAND_BITS {
                    significand >>= 1;
                    shift += 1;
                }
            }
        }
        debug_assert!(significand < 1u128 << SIGNIFICAND_BITS);
        let exponent = exponent + shift;
        if significand == 0 {
            return LongDouble {
                negative,
                ..LongDouble::ZERO
            };
        }
        let magnitude = (128 - significand.leading_zeros()) as i64 + exponent;
        if magnitude > MAGNITUDE_EXPONENT_LIMIT {
            return LongDouble::infinity(negative);
        }
        LongDouble {
            negative,
            infinite: false,
            significand: significand as u64,
            exponent,
        }
    }

    /// Parses `text` as Redis' `string2ld` accepts it: `strtold` syntax (sign, decimal digits
    /// with an optional point and exponent, `inf`/`infinity`) covering the whole text, not NaN,
    /// not overflowing, not underflowing to zero. Hexadecimal floats are not supported.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= TEXT_LEN_MAX {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::infinity(negative));
        }
        let mut mantissa = Big::default();
        let mut exponent10: i64 = 0;
        let mut digits = 0usize;
        let mut index = 0;
        while index < body.len() && body[index].is_ascii_digit() {
            mantissa.mul_small(10);
            mantissa.add_small((body[index] - b'0') as u32);
            digits += 1;
            index += 1;
        }
        if index < body.len() && body[index] == b'.' {
            index += 1;
            while index < body.len() && body[index].is_ascii_digit() {
                mantissa.mul_small(10);
                mantissa.add_small((body[index] - b'0') as u32);
                exponent10 -= 1;
                digits += 1;
                index += 1;
            }
        }
        if digits == 0 {
            return None;
        }
        if index < body.len() && (body[index] == b'e' || body[index] == b'E') {
            index += 1;
            let exponent_negative = match body.get(index) {
                Some(b'-') => {
                    index += 1;
                    true
                }
                Some(b'+') => {
                    index += 1;
                    false
                }
                _ => false,
            };
            let start = index;
            let mut exponent: i64 = 0;
            while index < body.len() && body[index].is_ascii_digit() {
                exponent = (exponent * 10 + (body[index] - b'0') as i64).min(1 << 40);
                index += 1;
            }
            if index == start {
                return None;
            }
            exponent10 += if exponent_negative {
                -exponent
            } else {
                exponent
            };
        }
        if index != body.len() {
            return None;
        }
        if mantissa.is_zero() {
            return Some(LongDouble {
                negative,
                ..LongDouble::ZERO
            });
        }
        // Decimal magnitude: the largest finite value is about 1.19e4932, the smallest
        // subnormal about 3.65e-4951. Far outside that, answer without big arithmetic.
        let magnitude10 = exponent10 + (mantissa.bit_len() as i64 * 30103 / 100000) + 1;
        if magnitude10 > 4940 {
            return None;
        }
        if magnitude10 < -4960 {
            return None;
        }
        let value = if exponent10 >= 0 {
            let mut n = mantissa;
            for _ in 0..exponent10 {
                n.mul_small(10);
            }
            round(&n, false, 0, negative)
        } else {
            // m / 10^k = m / 5^k × 2^-k; divide with enough quotient bits to round correctly.
            let k = (-exponent10) as u64;
            let mut power = Big::from_u128(1);
            for _ in 0..k {
                power.mul_small(5);
            }
            let extra = (power.bit_len() as i64 - mantissa.bit_len() as i64 + SIGNIFICAND_BITS + 2)
                .max(0) as u64;
            let (quotient, remainder_nonzero) = mantissa.shl(extra).div_rem(&power);
            round(
                &quotient,
                remainder_nonzero,
                -(k as i64) - extra as i64,
                negative,
            )
        };
        if value.infinite || value.significand == 0 {
            return None; // ERANGE: overflow to HUGE_VAL or underflow to zero.
        }
        Some(value)
    }

    /// `a + b` rounded to nearest-even; infinite if it overflows (or either input is).
    pub fn add(a: LongDouble, b: LongDouble) -> LongDouble {
        if a.infinite || b.infinite {
            return LongDouble::infinity(if a.infinite { a.negative } else { b.negative });
        }
        if a.significand == 0 {
            return if b.significand == 0 {
                LongDouble {
                    negative: a.negative && b.negative,
                    ..LongDouble::ZERO
                }
            } else {
                b
            };
        }
        if b.significand == 0 {
            return a;
        }
        let exponent = a.exponent.min(b.exponent);
        let big_a = Big::from_u128(a.significand as u128).shl((a.exponent - exponent) as u64);
        let big_b = Big::from_u128(b.significand as u128).shl((b.exponent - exponent) as u64);
        if a.negative == b.negative {
            return round(&big_a.add(&big_b), false, exponent, a.negative);
        }
        match big_a.cmp(&big_b) {
            Ordering::Equal => LongDouble::ZERO,
            Ordering::Greater => round(&big_a.sub(&big_b), false, exponent, a.negative),
            Ordering::Less => round(&big_b.sub(&big_a), false, exponent, b.negative),
        }
    }

    /// A minimal unsigned big integer: little-endian 32-bit limbs, no trailing zero limbs.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u128(mut n: u128) -> Big {
            let mut limbs = Vec::new();
            while n != 0 {
                limbs.push(n as u32);
                n >>= 32;
            }
            Big(limbs)
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        fn bit_len(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
            }
        }

        fn bit(&self, index: u64) -> bool {
            let limb = (index / 32) as usize;
            limb < self.0.len() && self.0[limb] >> (index % 32) & 1 == 1
        }

        /// True if any bit below `index` is set.
        fn any_below(&self, index: u64) -> bool {
            let full = ((index / 32) as usize).min(self.0.len());
            if self.0[..full].iter().any(|&l| l != 0) {
                return true;
            }
            let bits = index % 32;
            full < self.0.len() && bits > 0 && self.0[full] & ((1u32 << bits) - 1) != 0
        }

        /// The low 128 bits.
        fn low_u128(&self) -> u128 {
            self.0
                .iter()
                .take(4)
                .enumerate()
                .fold(0, |acc, (i, &l)| acc | (l as u128) << (32 * i))
        }

        fn mul_small(&mut self, factor: u32) {
            let mut carry = 0u64;
            for limb in &mut self.0 {
                let product = *limb as u64 * factor as u64 + carry;
                *limb = product as u32;
                carry = product >> 32;
            }
            if carry != 0 {
                self.0.push(carry as u32);
            }
        }

        fn add_small(&mut self, addend: u32) {
            let mut carry = addend as u64;
            for limb in &mut self.0 {
                if carry == 0 {
                    return;
                }
                let sum = *limb as u64 + carry;
                *limb = sum as u32;
                carry = sum >> 32;
            }
            if carry != 0 {
                self.0.push(carry as u32);
            }
        }

        fn shl(&self, bits: u64) -> Big {
            if self.is_zero() {
                return Big::default();
            }
            let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
            let mut out = vec![0u32; limbs];
            let mut carry = 0u32;
            for &limb in &self.0 {
                if bits == 0 {
                    out.push(limb);
                } else {
                    out.push(limb << bits | carry);
                    carry = limb >> (32 - bits);
                }
            }
            if carry != 0 {
                out.push(carry);
            }
            Big(out)
        }

        fn shr(&self, bits: u64) -> Big {
            let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
            if limbs >= self.0.len() {
                return Big::default();
            }
            let source = &self.0[limbs..];
            let mut out: Vec<u32> = (0..source.len())
                .map(|i| {
                    let high = source.get(i + 1).copied().unwrap_or(0);
                    if bits == 0 {
                        source[i]
                    } else {
                        source[i] >> bits | high << (32 - bits)
                    }
                })
                .collect();
            out.truncate(source.len());
            let mut big = Big(out);
            big.trim();
            big
        }

        fn cmp(&self, other: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&other.0.len())
                .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
        }

        fn add(&self, other: &Big) -> Big {
            let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
            let mut carry = 0u64;
            for i in 0..self.0.len().max(other.0.len()) {
                let sum = *self.0.get(i).unwrap_or(&0) as u64
                    + *other.0.get(i).unwrap_or(&0) as u64
                    + carry;
                out.push(sum as u32);
                carry = sum >> 32;
            }
            if carry != 0 {
                out.push(carry as u32);
            }
            Big(out)
        }

        /// `self - other`; `self` must not be smaller.
        fn sub(&self, other: &Big) -> Big {
            debug_assert!(self.cmp(other) != Ordering::Less);
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let mut difference =
                    self.0[i] as i64 - *other.0.get(i).unwrap_or(&0) as i64 - borrow;
                borrow = 0;
                if difference < 0 {
                    difference += 1 << 32;
                    borrow = 1;
                }
                out.push(difference as u32);
            }
            debug_assert_eq!(borrow, 0);
            let mut big = Big(out);
            big.trim();
            big
        }

        /// `(self / divisor, self % divisor != 0)` by binary long division; the quotient is
        /// small here (about 66 bits), so this is cheap.
        fn div_rem(&self, divisor: &Big) -> (Big, bool) {
            debug_assert!(!divisor.is_zero());
            let mut remainder = self.clone();
            let mut quotient = Big::default();
            if self.cmp(divisor) == Ordering::Less {
                return (quotient, !self.is_zero());
            }
            let top = self.bit_len() - divisor.bit_len();
            for shift in (0..=top).rev() {
                let shifted = divisor.shl(shift);
                if remainder.cmp(&shifted) != Ordering::Less {
                    remainder = remainder.sub(&shifted);
                    quotient = quotient.add(&Big::from_u128(1).shl(shift));
                }
            }
            (quotient, !remainder.is_zero())
        }

        fn to_decimal(&self) -> String {
            const CHUNK: u64 = 1_000_000_000;
            let mut limbs = self.0.clone();
            let mut chunks = Vec::new();
            while !limbs.is_empty() {
                let mut remainder = 0u64;
                for limb in limbs.iter_mut().rev() {
                    let current = remainder << 32 | *limb as u64;
                    *limb = (current / CHUNK) as u32;
                    remainder = current % CHUNK;
                }
                while limbs.last() == Some(&0) {
                    limbs.pop();
                }
                chunks.push(remainder);
            }
            let mut text = chunks.pop().map_or("0".to_string(), |c| c.to_string());
            for chunk in chunks.iter().rev() {
                text.push_str(&format!("{chunk:09}"));
            }
            text
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn incr(current: &str, increment: &str) -> String {
            add(
                parse(current.as_bytes()).unwrap(),
                parse(increment.as_bytes()).unwrap(),
            )
            .to_human_string()
        }

        #[test]
        fn prints_like_percent_17lf_without_trailing_zeros() {
            let cases = [
                ("0.1", "0.1"),
                ("10.5", "10.5"),
                ("3", "3"),
                ("-0", "0"),
                ("-1e-20", "0"),
                ("5.0e3", "5000"),
                ("1.5e-7", "0.00000015"),
                ("123456789012345678", "123456789012345678"),
                ("1e30", "1000000000000000000024696061952"),
                ("2.5e-18", "0"),
                ("-3.7", "-3.7"),
            ];
            for (text, printed) in cases {
                assert_eq!(
                    parse(text.as_bytes()).unwrap().to_human_string(),
                    printed,
                    "{text}"
                );
            }
        }

        #[test]
        fn adds_in_extended_precision() {
            // Values checked against redis-server 7.0 on x86-64.
            assert_eq!(incr("10.50", "0.1"), "10.6");
            assert_eq!(incr("0.1", "0.2"), "0.3");
            assert_eq!(incr("5.0e3", "2.0e2"), "5200");
            assert_eq!(incr("1", "-1"), "0");
            assert_eq!(incr("17179869184", "1.5"), "17179869185.5");
            assert_eq!(incr("1.1", "0"), "1.1");
            // 21 significant digits: needs an exact parse (checked against redis-server 7.0).
            assert_eq!(
                incr("1002.09999999999999998", "0.0000001"),
                "1002.10000009999999998"
            );
        }

        #[test]
        fn rejects_what_string2ld_rejects() {
            for bad in [
                "", " 1", "1 ", "abc", "nan", "1e", "1.5e+", ".", "-", "1x", "1e99999",
            ] {
                assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
            }
            assert!(parse(b"1e-99999").is_none(), "underflow to zero");
            assert!(parse(b"inf").unwrap().is_infinite());
            assert!(parse(b"-Infinity").unwrap().is_infinite());
            assert!(parse(b".5").is_some() && parse(b"5.").is_some() && parse(b"+1E3").is_some());
        }

        #[test]
        fn overflow_becomes_infinite() {
            let big = parse(b"1e4932").unwrap();
            assert!(!big.is_infinite());
            assert!(add(big, big).is_infinite());
        }

        #[test]
        fn big_integer_division_and_decimal_round_trip() {
            let n = Big::from_u128(123_456_789_012_345_678_901_234_567_890);
            assert_eq!(n.to_decimal(), "123456789012345678901234567890");
            let (q, inexact) = n.div_rem(&Big::from_u128(10));
            assert_eq!(q.to_decimal(), "12345678901234567890123456789");
            assert!(!inexact);
            assert_eq!(n.shl(70).shr(70), n);
        }
    }
}
