//! Keyspace commands: deletion and existence, expiry (EXPIRE family, TTL family, PERSIST),
//! renaming and moving keys between databases, iteration (KEYS, SCAN, RANDOMKEY), whole-
//! database operations (DBSIZE, FLUSHDB, FLUSHALL, SWAPDB), OBJECT introspection and DUMP.
//!
//! Replies, errors and propagation follow Redis 7.0 (`db.c`, `expire.c`, `object.c`):
//! relative expiries are propagated as `PEXPIREAT <unix-ms>` (keeping NX/XX/GT/LT), and an
//! expiry already in the past deletes the key and is propagated as `DEL`.
//!
//! OBJECT IDLETIME always answers 0: ringkv keeps no per-key access clock (an LRU field
//! would grow every key), and with the `noeviction` policy nothing depends on it.

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::spec;
use crate::storage::{Bstr, Value};

pub static COMMANDS: &[CommandSpec] = &[
    spec!("del", -2, WRITE, 1, -1, 1, "@keyspace @write @slow", del),
    spec!(
        "unlink",
        -2,
        WRITE | FAST,
        1,
        -1,
        1,
        "@keyspace @write @fast",
        del
    ),
    spec!(
        "exists",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "@keyspace @read @fast",
        exists
    ),
    spec!(
        "type",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@keyspace @read @fast",
        type_
    ),
    spec!(
        "touch",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "@keyspace @read @fast",
        touch
    ),
    spec!(
        "expire",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        expire
    ),
    spec!(
        "pexpire",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        pexpire
    ),
    spec!(
        "expireat",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        expireat
    ),
    spec!(
        "pexpireat",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        pexpireat
    ),
    spec!(
        "ttl",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@keyspace @read @fast",
        ttl
    ),
    spec!(
        "pttl",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@keyspace @read @fast",
        pttl
    ),
    spec!(
        "expiretime",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@keyspace @read @fast",
        expiretime
    ),
    spec!(
        "pexpiretime",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@keyspace @read @fast",
        pexpiretime
    ),
    spec!(
        "persist",
        2,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        persist
    ),
    spec!(
        "rename",
        3,
        WRITE,
        1,
        2,
        1,
        "@keyspace @write @slow",
        rename
    ),
    spec!(
        "renamenx",
        3,
        WRITE | FAST,
        1,
        2,
        1,
        "@keyspace @write @fast",
        renamenx
    ),
    spec!(
        "keys",
        2,
        READONLY,
        0,
        0,
        0,
        "@keyspace @read @slow @dangerous",
        keys
    ),
    spec!("scan", -2, READONLY, 0, 0, 0, "@keyspace @read @slow", scan),
    spec!(
        "randomkey",
        1,
        READONLY,
        0,
        0,
        0,
        "@keyspace @read @slow",
        randomkey
    ),
    spec!(
        "dbsize",
        1,
        READONLY | FAST,
        0,
        0,
        0,
        "@keyspace @read @fast",
        dbsize
    ),
    spec!(
        "flushdb",
        -1,
        WRITE,
        0,
        0,
        0,
        "@keyspace @write @slow @dangerous",
        flushdb
    ),
    spec!(
        "flushall",
        -1,
        WRITE,
        0,
        0,
        0,
        "@keyspace @write @slow @dangerous",
        flushall
    ),
    spec!(
        "swapdb",
        3,
        WRITE | FAST,
        0,
        0,
        0,
        "@keyspace @write @fast @dangerous",
        swapdb
    ),
    spec!(
        "move",
        3,
        WRITE | FAST,
        1,
        1,
        1,
        "@keyspace @write @fast",
        move_
    ),
    spec!(
        "copy",
        -3,
        WRITE | DENYOOM,
        1,
        2,
        1,
        "@keyspace @write @slow",
        copy
    ),
    spec!(
        "restore",
        -4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@keyspace @write @slow @dangerous",
        restore
    ),
    spec!("object", -2, 0, 0, 0, 0, "@slow", object),
    spec!("dump", 2, READONLY, 1, 1, 1, "@keyspace @read @slow", dump),
];

/// `ERR source and destination objects are the same`.
fn same_object() -> CmdError {
    CmdError::new("ERR source and destination objects are the same")
}

/// Looks `key` up for a read command in the selected db, counting the hit or miss.
fn exists_counted(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    let now = ctx.now_ms;
    let found = ctx.db().lookup(key, now).is_some();
    if found {
        ctx.hit();
    } else {
        ctx.miss();
    }
    found
}

/// Wakes clients blocked on `key` in `db` if it now holds a type they wait for.
fn signal_if_blockable(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) {
    if matches!(
        ctx.store.dbs[db].peek(key),
        Some(Value::List(_) | Value::ZSet(_))
    ) {
        ctx.store.blocking.signal_ready(db, key);
    }
}

/// Parses a database index as `getIntFromObjectOrReply` + `selectDb` do.
fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let index = args::int(arg)?;
    if index < i32::MIN as i64 || index > i32::MAX as i64 {
        return Err(CmdError::NOT_INTEGER);
    }
    if index < 0 || index as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DB_INDEX_OUT_OF_RANGE);
    }
    Ok(index as usize)
}

// ---------------------------------------------------------------------------------------
// DEL, EXISTS, TYPE, TOUCH
// ---------------------------------------------------------------------------------------

/// DEL / UNLINK key...: the number of keys removed (freeing is never deferred here).
fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms;
    let mut removed = 0;
    for key in &args[1..] {
        ctx.db().expire_if_needed(key, now, false);
        if ctx.db().remove(key).is_some() {
            ctx.touch(key);
            removed += 1;
        }
    }
    ctx.reply.int(removed);
    Ok(())
}

/// EXISTS key...: counts every argument that names a live key, duplicates included.
fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let count = args[1..]
        .iter()
        .filter(|key| exists_counted(ctx, key))
        .count();
    ctx.reply.int(count as i64);
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    exists(ctx, args)
}

fn type_(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms;
    let name = ctx
        .db()
        .lookup(args[1], now)
        .map_or("none", Value::type_name);
    if name == "none" {
        ctx.miss();
    } else {
        ctx.hit();
    }
    ctx.reply.simple(name);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

/// The condition options of the EXPIRE family.
#[derive(Default, Debug, Clone, Copy)]
struct ExpireConditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_conditions(options: &[&[u8]]) -> Result<ExpireConditions, CmdError> {
    let mut parsed = ExpireConditions::default();
    for option in options {
        if args::is(option, "NX") {
            parsed.nx = true;
        } else if args::is(option, "XX") {
            parsed.xx = true;
        } else if args::is(option, "GT") {
            parsed.gt = true;
        } else if args::is(option, "LT") {
            parsed.lt = true;
        } else {
            return Err(CmdError::new(format!(
                "ERR Unsupported option {}",
                args::text(option)
            )));
        }
    }
    if parsed.nx && (parsed.xx || parsed.gt || parsed.lt) {
        return Err(CmdError::new(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if parsed.gt && parsed.lt {
        return Err(CmdError::new(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(parsed)
}

fn expire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, true)
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, false)
}

fn expireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 0, true)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 0, false)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]: `basetime_ms` is now for the
/// relative forms and 0 for the absolute ones (Redis' `expireGenericCommand`).
fn expire_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], basetime_ms: i64, seconds: bool) -> CmdResult {
    let key = args[1];
    let conditions = parse_expire_conditions(&args[3..])?;
    let mut when = args::int(args[2])?;
    let invalid = || {
        CmdError::new(format!(
            "ERR invalid expire time in '{}' command",
            String::from_utf8_lossy(args[0]).to_lowercase()
        ))
    };
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    when = when.checked_add(basetime_ms).ok_or_else(invalid)?;
    let now = ctx.now_ms;
    if ctx.db().lookup(key, now).is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    let current = ctx.db().expire_at(key).map(|at| at as i64);
    let refused = (conditions.nx && current.is_some())
        || (conditions.xx && current.is_none())
        || (conditions.gt && current.is_none_or(|c| when <= c))
        || (conditions.lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.reply.int(0);
        return Ok(());
    }
    if when <= now as i64 {
        ctx.db().remove(key);
        ctx.touch(key);
        let deletion = super::expiry_deletion(ctx.config);
        ctx.propagate_as(vec![vec![deletion.to_vec(), key.to_vec()]]);
    } else {
        ctx.db().set_expire_at(key, when as u64);
        ctx.touch(key);
        let mut rewritten: Vec<Vec<u8>> = vec![
            b"PEXPIREAT".to_vec(),
            key.to_vec(),
            when.to_string().into_bytes(),
        ];
        rewritten.extend(args[3..].iter().map(|a| a.to_vec()));
        ctx.propagate_as(vec![rewritten]);
    }
    ctx.reply.int(1);
    Ok(())
}

/// How the TTL family reports an expiry.
#[derive(Clone, Copy)]
enum TtlOutput {
    /// Remaining seconds, rounded (TTL).
    RemainingSeconds,
    /// Remaining milliseconds (PTTL).
    RemainingMs,
    /// Absolute unix seconds, rounded like TTL (EXPIRETIME).
    AbsoluteSeconds,
    /// Absolute unix milliseconds (PEXPIRETIME).
    AbsoluteMs,
}

/// -2 for a missing key, -1 for a key without expiry, otherwise the time asked for.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], output: TtlOutput) -> CmdResult {
    if !exists_counted(ctx, key) {
        ctx.reply.int(-2);
        return Ok(());
    }
    let now = ctx.now_ms as i64;
    let Some(at) = ctx.db().expire_at(key) else {
        ctx.reply.int(-1);
        return Ok(());
    };
    let at = at as i64;
    let value = match output {
        TtlOutput::RemainingSeconds => ((at - now).max(0) + 500) / 1000,
        TtlOutput::RemainingMs => (at - now).max(0),
        TtlOutput::AbsoluteSeconds => (at + 500) / 1000,
        TtlOutput::AbsoluteMs => at,
    };
    ctx.reply.int(value);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], TtlOutput::RemainingSeconds)
}

fn pttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], TtlOutput::RemainingMs)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], TtlOutput::AbsoluteSeconds)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], TtlOutput::AbsoluteMs)
}

fn persist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms;
    let key = args[1];
    let removed = ctx.db().lookup(key, now).is_some() && ctx.db().persist(key);
    if removed {
        ctx.touch(key);
    }
    ctx.reply.int(removed as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// RENAME, MOVE, COPY
// ---------------------------------------------------------------------------------------

fn rename(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// RENAME / RENAMENX source destination: the value moves with its TTL.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) -> CmdResult {
    let (source, destination) = (args[1], args[2]);
    let now = ctx.now_ms;
    if ctx.db().lookup(source, now).is_none() {
        return Err(CmdError::NO_SUCH_KEY);
    }
    let reply_done = |ctx: &mut Ctx<'_>, done: bool| {
        if nx {
            ctx.reply.int(done as i64);
        } else {
            ctx.reply.ok();
        }
    };
    if source == destination {
        reply_done(ctx, false);
        return Ok(());
    }
    if ctx.db().lookup(destination, now).is_some() && nx {
        reply_done(ctx, false);
        return Ok(());
    }
    let expire_at = ctx.db().expire_at(source);
    let value = ctx.db().remove(source).expect("looked up above");
    ctx.db().set(destination, value);
    if let Some(at) = expire_at {
        ctx.db().set_expire_at(destination, at);
    }
    ctx.touch(source);
    ctx.touch(destination);
    // One change for Redis' dirty counter, however many keys it touched.
    ctx.store.dirty -= 1;
    let db = ctx.client.db;
    signal_if_blockable(ctx, db, destination);
    reply_done(ctx, true);
    Ok(())
}

/// MOVE key db: 1 if moved (with its TTL), 0 if missing here or present there.
fn move_(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let source = ctx.client.db;
    let target = db_index(ctx, args[2])?;
    if source == target {
        return Err(same_object());
    }
    let now = ctx.now_ms;
    if ctx.store.dbs[source].lookup(key, now).is_none()
        || ctx.store.dbs[target].lookup(key, now).is_some()
    {
        ctx.reply.int(0);
        return Ok(());
    }
    let expire_at = ctx.store.dbs[source].expire_at(key);
    let value = ctx.store.dbs[source].remove(key).expect("looked up above");
    ctx.store.dbs[target].set(key, value);
    if let Some(at) = expire_at {
        ctx.store.dbs[target].set_expire_at(key, at);
    }
    ctx.touch(key);
    ctx.store.touch(target, key);
    signal_if_blockable(ctx, target, key);
    ctx.reply.int(1);
    Ok(())
}

/// COPY source destination [DB index] [REPLACE]: a deep copy of the value and its TTL.
fn copy(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (source_key, destination_key) = (args[1], args[2]);
    let source = ctx.client.db;
    let mut target = source;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if args::is(args[j], "REPLACE") {
            replace = true;
        } else if args::is(args[j], "DB") && j + 1 < args.len() {
            target = db_index(ctx, args[j + 1])?;
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    if source == target && source_key == destination_key {
        return Err(same_object());
    }
    if !exists_counted(ctx, source_key) {
        ctx.reply.int(0);
        return Ok(());
    }
    let now = ctx.now_ms;
    let value = ctx.db().peek(source_key).cloned().expect("looked up above");
    let expire_at = ctx.db().expire_at(source_key);
    if ctx.store.dbs[target].lookup(destination_key, now).is_some() && !replace {
        ctx.reply.int(0);
        return Ok(());
    }
    let destination = &mut ctx.store.dbs[target];
    destination.set(destination_key, value);
    if let Some(at) = expire_at {
        destination.set_expire_at(destination_key, at);
    }
    ctx.store.dirty += 1;
    ctx.store.touch(target, destination_key);
    signal_if_blockable(ctx, target, destination_key);
    ctx.reply.int(1);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// RESTORE
// ---------------------------------------------------------------------------------------

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`:
/// creates `key` from a `DUMP` payload, with Redis 7.0's checks in Redis' order (options,
/// existing key, TTL, payload footer, payload body) and its replies.
///
/// A relative TTL is propagated as an absolute one (`ABSTTL` appended); a TTL already in the
/// past creates nothing and, if REPLACE deleted a key, is propagated as `DEL`. IDLETIME and
/// FREQ are validated and then have no effect: ringkv keeps no per-key LRU clock or LFU
/// counter (see the module notes on OBJECT IDLETIME).
fn restore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    use crate::persistence::rdb::decode;
    let key = args[1];
    let mut replace = false;
    let mut absttl = false;
    let mut idle_given = false;
    let mut freq_given = false;
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        if args::is(args[j], "REPLACE") {
            replace = true;
        } else if args::is(args[j], "ABSTTL") {
            absttl = true;
        } else if args::is(args[j], "IDLETIME") && more >= 1 && !freq_given {
            if args::int(args[j + 1])? < 0 {
                return Err(CmdError::new("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle_given = true;
            j += 1;
        } else if args::is(args[j], "FREQ") && more >= 1 && !idle_given {
            if !(0..=255).contains(&args::int(args[j + 1])?) {
                return Err(CmdError::new(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq_given = true;
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    let now = ctx.now_ms;
    if !replace && ctx.db().lookup(key, now).is_some() {
        return Err(CmdError::new("BUSYKEY Target key name already exists."));
    }
    let mut ttl = args::int(args[2])?;
    if ttl < 0 {
        return Err(CmdError::new("ERR Invalid TTL value, must be >= 0"));
    }
    let body = decode::check_payload(args[3])
        .map_err(|_| CmdError::new("ERR DUMP payload version or checksum are wrong"))?;
    let value =
        decode::decode_payload_value(body).map_err(|_| CmdError::new("ERR Bad data format"))?;
    let deleted = replace && ctx.db().remove(key).is_some();
    if ttl > 0 && !absttl {
        ttl = ttl.saturating_add(now as i64);
    }
    // A replica keeps what its master sends, expired or not, and waits for the master's DEL.
    if ttl > 0 && ttl <= now as i64 && !ctx.store.replica_mode {
        if deleted {
            ctx.touch(key);
            ctx.propagate_as(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        }
        ctx.reply.ok();
        return Ok(());
    }
    ctx.db().set(key, value);
    if ttl > 0 {
        ctx.db().set_expire_at(key, ttl as u64);
        if !absttl {
            let mut rewritten: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
            rewritten[2] = ttl.to_string().into_bytes();
            rewritten.push(b"ABSTTL".to_vec());
            ctx.propagate_as(vec![rewritten]);
        }
    }
    ctx.touch(key);
    let db = ctx.client.db;
    signal_if_blockable(ctx, db, key);
    ctx.reply.ok();
    Ok(())
}

#[cfg(test)]
mod restore_tests;

// ---------------------------------------------------------------------------------------
// Iteration
// ---------------------------------------------------------------------------------------

/// KEYS pattern: every live key matching the glob.
fn keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let pattern = args[1];
    let all = pattern == b"*";
    let now = ctx.now_ms;
    let db = ctx.client.db;
    let candidates: Vec<Bstr> = ctx.store.dbs[db]
        .iter()
        .filter(|(key, _)| all || crate::config::string_match(pattern, key, false))
        .map(|(key, _)| key.clone())
        .collect();
    let live: Vec<Bstr> = candidates
        .into_iter()
        .filter(|key| !key_is_expired(ctx, db, key, now))
        .collect();
    ctx.reply.array(live.len());
    for key in &live {
        ctx.reply.bulk(key);
    }
    Ok(())
}

/// True if `key` has a TTL in the past (without deleting it, like Redis' `keyIsExpired`).
fn key_is_expired(ctx: &Ctx<'_>, db: usize, key: &[u8], now_ms: u64) -> bool {
    matches!(ctx.store.dbs[db].expire_at(key), Some(at) if at <= now_ms)
}

/// Parses a SCAN cursor (`strtoul`-style decimal; `ERR invalid cursor` otherwise).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::new("ERR invalid cursor");
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(invalid)
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type].
fn scan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[1])?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args::is(args[i], "COUNT") && has_value {
            let n = args::int(args[i + 1])?;
            if n < 1 {
                return Err(CmdError::SYNTAX);
            }
            count = n as usize;
        } else if args::is(args[i], "MATCH") && has_value {
            pattern = Some(args[i + 1]).filter(|p| *p != b"*");
        } else if args::is(args[i], "TYPE") && has_value {
            type_filter = Some(args[i + 1]);
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 2;
    }
    let db = ctx.client.db;
    let mut batch: Vec<(Bstr, &'static str)> = Vec::new();
    let next = ctx.store.dbs[db].scan(cursor, count, |key, value| {
        batch.push((key.clone(), value.type_name()));
    });
    let now = ctx.now_ms;
    let mut found: Vec<Bstr> = Vec::with_capacity(batch.len());
    for (key, type_name) in batch {
        if pattern.is_some_and(|p| !crate::config::string_match(p, &key, false)) {
            continue;
        }
        if type_filter.is_some_and(|t| !t.eq_ignore_ascii_case(type_name.as_bytes())) {
            continue;
        }
        if ctx.store.dbs[db].expire_if_needed(&key, now, false) {
            continue;
        }
        found.push(key);
    }
    ctx.reply.array(2);
    ctx.reply.bulk_int(next as i64);
    ctx.reply.array(found.len());
    for key in &found {
        ctx.reply.bulk(key);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms;
    match ctx.db().random_key(now, false) {
        Some(key) => ctx.reply.bulk(&key),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let size = ctx.db().len();
    ctx.reply.int(size as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Whole databases
// ---------------------------------------------------------------------------------------

/// The optional `ASYNC` / `SYNC` of FLUSHDB and FLUSHALL (both free synchronously here).
fn parse_flush_mode(args: &[&[u8]]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if args::is(args[1], "SYNC") || args::is(args[1], "ASYNC") => Ok(()),
        _ => Err(CmdError::SYNTAX),
    }
}

/// FLUSHDB [ASYNC|SYNC]: always propagated, even when the database was already empty.
fn flushdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    parse_flush_mode(args)?;
    let db = ctx.client.db;
    let removed = ctx.store.dbs[db].len() as u64;
    ctx.store.dbs[db].clear();
    ctx.store.dirty += removed;
    ctx.store.touch_all(Some(db));
    ctx.propagate_as(vec![args.iter().map(|a| a.to_vec()).collect()]);
    ctx.reply.ok();
    Ok(())
}

/// FLUSHALL [ASYNC|SYNC]: empties every database; always propagated.
fn flushall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    parse_flush_mode(args)?;
    let mut removed = 0u64;
    for db in ctx.store.dbs.iter_mut() {
        removed += db.len() as u64;
        db.clear();
    }
    ctx.store.dirty += removed + 1;
    ctx.store.touch_all(None);
    ctx.propagate_as(vec![args.iter().map(|a| a.to_vec()).collect()]);
    ctx.reply.ok();
    Ok(())
}

/// SWAPDB a b: exchanges two databases; clients blocked or watching in either are woken.
fn swapdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let parse = |arg: &[u8], error: &'static str| -> Result<i64, CmdError> {
        match args::int(arg) {
            Ok(n) if n >= i32::MIN as i64 && n <= i32::MAX as i64 => Ok(n),
            _ => Err(CmdError::new(error)),
        }
    };
    let first = parse(args[1], "ERR invalid first DB index")?;
    let second = parse(args[2], "ERR invalid second DB index")?;
    let databases = ctx.store.dbs.len() as i64;
    if !(0..databases).contains(&first) || !(0..databases).contains(&second) {
        return Err(CmdError::DB_INDEX_OUT_OF_RANGE);
    }
    let (first, second) = (first as usize, second as usize);
    if first != second {
        ctx.store.dbs.swap(first, second);
        ctx.store.touch_all(Some(first));
        ctx.store.touch_all(Some(second));
        ctx.store.blocking.signal_all_in_db(first);
        ctx.store.blocking.signal_all_in_db(second);
    }
    ctx.store.dirty += 1;
    ctx.reply.ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// OBJECT
// ---------------------------------------------------------------------------------------

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Refcount Redis reports for its shared small integers (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis shares string objects holding the integers 0..OBJ_SHARED_INTEGERS.
const SHARED_INTEGERS: i64 = 10_000;

/// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP.
fn object(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = args[1];
    let known = ["help", "encoding", "refcount", "idletime", "freq"];
    let Some(name) = known.iter().find(|n| args::is(sub, n)) else {
        return Err(CmdError::new(format!(
            "ERR unknown subcommand '{}'. Try OBJECT HELP.",
            args::text(sub)
        )));
    };
    let arity = if *name == "help" { 2 } else { 3 };
    if args.len() != arity {
        return Err(CmdError::new(format!(
            "ERR wrong number of arguments for 'object|{name}' command"
        )));
    }
    if *name == "help" {
        ctx.reply.array(OBJECT_HELP.len());
        for line in OBJECT_HELP {
            ctx.reply.simple(line);
        }
        return Ok(());
    }
    let key = args[2];
    if !exists_counted(ctx, key) {
        ctx.reply.null();
        return Ok(());
    }
    let value = ctx.db().peek(key).expect("looked up above");
    match *name {
        "encoding" => {
            let encoding = value.encoding_name();
            ctx.reply.bulk(encoding.as_bytes());
        }
        "refcount" => {
            let shared = matches!(value, Value::Str(s)
                if crate::protocol::parser::parse_i64(s)
                    .is_some_and(|n| (0..SHARED_INTEGERS).contains(&n)));
            ctx.reply.int(if shared { SHARED_REFCOUNT } else { 1 });
        }
        "idletime" => ctx.reply.int(0),
        _ => {
            return Err(CmdError::new(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// DUMP
// ---------------------------------------------------------------------------------------

/// `DUMP key`: the value serialized as Redis 7.0 does (RDB encoding, version 10, CRC64), or
/// nil for a missing key. Compressed as the `rdbcompression` setting says, like Redis.
fn dump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    if !exists_counted(ctx, key) {
        ctx.reply.null();
        return Ok(());
    }
    let compression = ctx.shared.config().rdbcompression;
    let value = ctx.db().peek(key).expect("looked up above");
    let payload = crate::persistence::rdb::encode::dump_payload(value, compression);
    ctx.reply.bulk(&payload);
    Ok(())
}
