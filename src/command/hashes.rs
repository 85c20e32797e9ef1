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
//! `0.10000000000000001`. [`crate::storage::long_double`] reproduces the three operations
//! needed — parse, add, print — exactly, with big integers, for any input length. The command
//! propagates
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
    let increment = crate::storage::long_double::parse(args[3]).ok_or(CmdError::NOT_FLOAT)?;
    if increment.is_infinite() {
        return Err(CmdError::new("ERR value is NaN or Infinity"));
    }
    let hash = write_or_create_hash(ctx, key)?;
    let current = match hash.get(field) {
        None => crate::storage::long_double::LongDouble::ZERO,
        Some(text) => crate::storage::long_double::parse(text)
            .ok_or(CmdError::new("ERR hash value is not a float"))?,
    };
    let sum = crate::storage::long_double::add(current, increment);
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
