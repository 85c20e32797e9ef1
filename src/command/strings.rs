//! String commands: GET/SET and their variants, multi-key MGET/MSET, in-place edits
//! (APPEND, SETRANGE, GETRANGE), and the counters (INCR family, INCRBYFLOAT).
//!
//! Replies, error texts and propagation follow Redis 7.0's `t_string.c`:
//! - a relative or absolute expiry given to SET/SETEX/PSETEX is propagated as
//!   `SET key value PXAT <unix-ms>`, so replicas and the AOF never see a relative time;
//! - SET ... GET without an expiry is propagated without its GET arguments;
//! - GETEX is propagated as `PEXPIREAT`, `PERSIST` or `DEL`, GETDEL as `DEL`, GETSET as `SET`;
//! - INCRBYFLOAT is propagated as `SET key <result> KEEPTTL`, so float formatting can never
//!   make a replica diverge.
//!
//! Counters keep the key's TTL (Redis overwrites the value in place); SET, GETSET and MSET
//! drop it unless `KEEPTTL` is given.

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::spec;
use crate::storage::{Bstr, Value};

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "get",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @string @fast",
        get
    ),
    spec!(
        "set",
        -3,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @string @slow",
        set
    ),
    spec!(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        setnx
    ),
    spec!(
        "setex",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @string @slow",
        setex
    ),
    spec!(
        "psetex",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @string @slow",
        psetex
    ),
    spec!(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        getset
    ),
    spec!(
        "getdel",
        2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        getdel
    ),
    spec!(
        "getex",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        getex
    ),
    spec!(
        "mget",
        -2,
        READONLY | FAST,
        1,
        -1,
        1,
        "@read @string @fast",
        mget
    ),
    spec!(
        "mset",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        2,
        "@write @string @slow",
        mset
    ),
    spec!(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        2,
        "@write @string @slow",
        msetnx
    ),
    spec!(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        append
    ),
    spec!(
        "strlen",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @string @fast",
        strlen
    ),
    spec!(
        "getrange",
        4,
        READONLY,
        1,
        1,
        1,
        "@read @string @slow",
        getrange
    ),
    spec!(
        "substr",
        4,
        READONLY,
        1,
        1,
        1,
        "@read @string @slow",
        getrange
    ),
    spec!(
        "setrange",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @string @slow",
        setrange
    ),
    spec!(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        incr
    ),
    spec!(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        decr
    ),
    spec!(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        incrby
    ),
    spec!(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        decrby
    ),
    spec!(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @string @fast",
        incrbyfloat
    ),
];

/// `ERR invalid expire time in '<command>' command`.
fn invalid_expire_time(command: &[u8]) -> CmdError {
    CmdError::new(format!(
        "ERR invalid expire time in '{}' command",
        String::from_utf8_lossy(command).to_lowercase()
    ))
}

/// The string stored at `key`: `Ok(None)` if missing, WRONGTYPE for other types.
fn read_string<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Bstr>, CmdError> {
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    match db.lookup(key, now) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Looks `key` up for a read command, counting the hit or miss.
fn read_string_counted<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Bstr>, CmdError> {
    let exists = {
        let now = ctx.now_ms;
        ctx.db().lookup(key, now).is_some()
    };
    if exists {
        ctx.hit();
    } else {
        ctx.miss();
    }
    read_string(ctx, key)
}

/// GET semantics shared by GET, GETSET, SET ... GET and GETDEL: replies the value or nil,
/// or fails with WRONGTYPE (writing nothing).
fn reply_get(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    match read_string_counted(ctx, key)? {
        Some(s) => {
            let s = s.clone();
            ctx.reply.bulk(&s);
            Ok(true)
        }
        None => {
            ctx.reply.null();
            Ok(false)
        }
    }
}

fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_get(ctx, args[1]).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// SET and its options
// ---------------------------------------------------------------------------------------

/// How an expiry argument is to be read (Redis' EX, PX, EXAT, PXAT).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpireUnit {
    /// Relative seconds.
    Ex,
    /// Relative milliseconds.
    Px,
    /// Absolute unix seconds.
    ExAt,
    /// Absolute unix milliseconds.
    PxAt,
}

/// Options of SET and GETEX, parsed with Redis' compatibility rules.
#[derive(Default, Debug)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expire: Option<(ExpireUnit, &'a [u8])>,
}

/// Which command the options belong to: SET takes NX/XX/GET/KEEPTTL, GETEX takes PERSIST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionsFor {
    Set,
    GetEx,
}

/// Parses `options` the way Redis' `parseExtendedStringArgumentsOrReply` does: an option
/// conflicting with one already seen is a syntax error; repeating the same expiry option
/// is allowed (the last value wins).
fn parse_string_options<'a>(
    options: &[&'a [u8]],
    command: OptionsFor,
) -> Result<StringOptions<'a>, CmdError> {
    let mut parsed = StringOptions::default();
    let is_set = command == OptionsFor::Set;
    let mut j = 0;
    while j < options.len() {
        let option = options[j];
        let next = options.get(j + 1).copied();
        let unit = parsed.expire.map(|(unit, _)| unit);
        let other_expire = |allowed: ExpireUnit| unit.is_some_and(|u| u != allowed);
        if args::is(option, "NX") && !parsed.xx && is_set {
            parsed.nx = true;
        } else if args::is(option, "XX") && !parsed.nx && is_set {
            parsed.xx = true;
        } else if args::is(option, "GET") && is_set {
            parsed.get = true;
        } else if args::is(option, "KEEPTTL") && !parsed.persist && unit.is_none() && is_set {
            parsed.keep_ttl = true;
        } else if args::is(option, "PERSIST") && !is_set && unit.is_none() && !parsed.keep_ttl {
            parsed.persist = true;
        } else if let (Some(this), Some(value)) = (expire_unit(option), next) {
            if parsed.keep_ttl || parsed.persist || other_expire(this) {
                return Err(CmdError::SYNTAX);
            }
            parsed.expire = Some((this, value));
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    Ok(parsed)
}

fn expire_unit(option: &[u8]) -> Option<ExpireUnit> {
    if args::is(option, "EX") {
        Some(ExpireUnit::Ex)
    } else if args::is(option, "PX") {
        Some(ExpireUnit::Px)
    } else if args::is(option, "EXAT") {
        Some(ExpireUnit::ExAt)
    } else if args::is(option, "PXAT") {
        Some(ExpireUnit::PxAt)
    } else {
        None
    }
}

/// Converts an expiry argument into absolute unix milliseconds (Redis'
/// `getExpireMillisecondsOrReply`): it must be a positive integer, and the result must not
/// overflow.
fn expire_at_ms(
    unit: ExpireUnit,
    value: &[u8],
    now_ms: u64,
    command: &[u8],
) -> Result<i64, CmdError> {
    let number = args::int(value)?;
    let seconds = matches!(unit, ExpireUnit::Ex | ExpireUnit::ExAt);
    if number <= 0 || (seconds && number > i64::MAX / 1000) {
        return Err(invalid_expire_time(command));
    }
    let ms = if seconds { number * 1000 } else { number };
    let at = match unit {
        ExpireUnit::Ex | ExpireUnit::Px => ms.checked_add(now_ms as i64),
        ExpireUnit::ExAt | ExpireUnit::PxAt => Some(ms),
    };
    match at {
        Some(at) if at > 0 => Ok(at),
        _ => Err(invalid_expire_time(command)),
    }
}

/// What SET-like commands reply when they set, and when NX/XX stopped them.
struct SetReplies {
    /// `+OK` (SET, SETEX, PSETEX) or `:1` (SETNX).
    done_is_ok: bool,
}

/// The common core of SET, SETNX, SETEX and PSETEX (Redis' `setGenericCommand`).
/// Returns whether the key was written.
fn set_generic(
    ctx: &mut Ctx<'_>,
    options: &StringOptions<'_>,
    key: &[u8],
    value: &[u8],
    command: &[u8],
    replies: SetReplies,
) -> Result<bool, CmdError> {
    let expire_at = match options.expire {
        Some((unit, text)) => Some(expire_at_ms(unit, text, ctx.now_ms, command)?),
        None => None,
    };
    if options.get {
        reply_get(ctx, key)?;
    }
    let now = ctx.now_ms;
    let found = ctx.db().lookup(key, now).is_some();
    if (options.nx && found) || (options.xx && !found) {
        if !options.get {
            if replies.done_is_ok {
                ctx.reply.null();
            } else {
                ctx.reply.int(0);
            }
        }
        return Ok(false);
    }
    let value_stored = Value::Str(Bstr::new(value));
    if options.keep_ttl {
        ctx.db().set_keep_ttl(key, value_stored);
    } else {
        ctx.db().set(key, value_stored);
    }
    ctx.touch(key);
    if let Some(at) = expire_at {
        // A time in the past is stored as is: the key then expires on its next access,
        // exactly as Redis 7.0 does for SET (only GETEX/EXPIRE delete eagerly).
        ctx.db().set_expire_at(key, at.max(0) as u64);
        ctx.propagate_as(vec![vec![
            b"SET".to_vec(),
            key.to_vec(),
            value.to_vec(),
            b"PXAT".to_vec(),
            at.to_string().into_bytes(),
        ]]);
    }
    if !options.get {
        if replies.done_is_ok {
            ctx.reply.ok();
        } else {
            ctx.reply.int(1);
        }
    }
    Ok(true)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts-ms|KEEPTTL]
fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let options = parse_string_options(&args[3..], OptionsFor::Set)?;
    let written = set_generic(
        ctx,
        &options,
        args[1],
        args[2],
        args[0],
        SetReplies { done_is_ok: true },
    )?;
    if written && options.get && options.expire.is_none() {
        // Propagated without its GET arguments, as Redis does (GET needs no replay).
        let kept: Vec<Vec<u8>> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !args::is(a, "GET"))
            .map(|(_, a)| a.to_vec())
            .collect();
        ctx.propagate_as(vec![kept]);
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let options = StringOptions {
        nx: true,
        ..StringOptions::default()
    };
    set_generic(
        ctx,
        &options,
        args[1],
        args[2],
        args[0],
        SetReplies { done_is_ok: false },
    )
    .map(|_| ())
}

fn setex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Ex)
}

fn psetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Px)
}

/// SETEX / PSETEX key ttl value.
fn set_with_ttl(ctx: &mut Ctx<'_>, args: &[&[u8]], unit: ExpireUnit) -> CmdResult {
    let options = StringOptions {
        expire: Some((unit, args[2])),
        ..StringOptions::default()
    };
    set_generic(
        ctx,
        &options,
        args[1],
        args[3],
        args[0],
        SetReplies { done_is_ok: true },
    )
    .map(|_| ())
}

/// GETSET key value: the old value (or nil), and the key set without TTL; propagated as SET.
fn getset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_get(ctx, args[1])?;
    ctx.db().set(args[1], Value::Str(Bstr::new(args[2])));
    ctx.touch(args[1]);
    ctx.propagate_as(vec![vec![
        b"SET".to_vec(),
        args[1].to_vec(),
        args[2].to_vec(),
    ]]);
    Ok(())
}

/// GETDEL key: the value (or nil), then the key is deleted; propagated as DEL (UNLINK with
/// `lazyfree-lazy-user-del`, as Redis does).
fn getdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if reply_get(ctx, args[1])? {
        ctx.db().remove(args[1]);
        ctx.touch(args[1]);
        let deletion: &[u8] = if ctx.config.lazyfree_lazy_user_del {
            b"UNLINK"
        } else {
            b"DEL"
        };
        ctx.propagate_as(vec![vec![deletion.to_vec(), args[1].to_vec()]]);
    }
    Ok(())
}

/// GETEX key [EX s|PX ms|EXAT ts|PXAT ts-ms|PERSIST]: the value, and its TTL changed.
fn getex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let options = parse_string_options(&args[2..], OptionsFor::GetEx)?;
    let Some(value) = read_string_counted(ctx, key)?.cloned() else {
        ctx.reply.null();
        return Ok(());
    };
    let expire_at = match options.expire {
        Some((unit, text)) => Some((unit, expire_at_ms(unit, text, ctx.now_ms, args[0])?)),
        None => None,
    };
    ctx.reply.bulk(&value);
    let now = ctx.now_ms;
    match expire_at {
        Some((ExpireUnit::ExAt | ExpireUnit::PxAt, at)) if at as u64 <= now => {
            ctx.db().remove(key);
            ctx.touch(key);
            let deletion = super::expiry_deletion(ctx.config);
            ctx.propagate_as(vec![vec![deletion.to_vec(), key.to_vec()]]);
        }
        Some((_, at)) => {
            ctx.db().set_expire_at(key, at as u64);
            ctx.touch(key);
            ctx.propagate_as(vec![vec![
                b"PEXPIREAT".to_vec(),
                key.to_vec(),
                at.to_string().into_bytes(),
            ]]);
        }
        None => {
            if options.persist && ctx.db().persist(key) {
                ctx.touch(key);
                ctx.propagate_as(vec![vec![b"PERSIST".to_vec(), key.to_vec()]]);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Multi-key
// ---------------------------------------------------------------------------------------

/// MGET key...: one entry per key, nil for missing keys and for non-strings.
fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = &args[1..];
    ctx.reply.array(keys.len());
    for key in keys {
        let now = ctx.now_ms;
        let value = match ctx.db().lookup(key, now) {
            Some(Value::Str(s)) => Some(s.clone()),
            Some(_) => None,
            None => None,
        };
        match value {
            Some(s) => {
                ctx.hit();
                ctx.reply.bulk(&s);
            }
            None => {
                ctx.miss();
                ctx.reply.null();
            }
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, args, false)
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, args, true)
}

/// MSET / MSETNX key value [key value ...]; MSETNX sets nothing if any key exists.
fn mset_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::arity(args[0]));
    }
    let now = ctx.now_ms;
    if nx
        && args[1..]
            .chunks(2)
            .any(|pair| ctx.db().contains(pair[0], now))
    {
        ctx.reply.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks(2) {
        ctx.db().set(pair[0], Value::Str(Bstr::new(pair[1])));
        ctx.touch(pair[0]);
    }
    if nx {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// In-place edits and ranges
// ---------------------------------------------------------------------------------------

/// Redis' `checkStringLength`: a string may not grow past `proto-max-bulk-len`.
fn check_string_length(ctx: &Ctx<'_>, size: u64, append: u64) -> CmdResult {
    match size.checked_add(append) {
        Some(total) if total <= ctx.config.proto_max_bulk_len => Ok(()),
        _ => Err(CmdError::new(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// Replaces the string at `key` keeping its TTL.
fn overwrite_string(ctx: &mut Ctx<'_>, key: &[u8], bytes: Vec<u8>) {
    ctx.db()
        .set_keep_ttl(key, Value::Str(Bstr::from_vec(bytes)));
    ctx.touch(key);
}

/// APPEND key value: the new length.
fn append(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, suffix) = (args[1], args[2]);
    let current = read_string(ctx, key)?.map(|s| s.to_vec());
    let total = match current {
        None => {
            ctx.db().set(key, Value::Str(Bstr::new(suffix)));
            ctx.touch(key);
            suffix.len()
        }
        Some(mut bytes) => {
            check_string_length(ctx, bytes.len() as u64, suffix.len() as u64)?;
            bytes.extend_from_slice(suffix);
            let total = bytes.len();
            overwrite_string(ctx, key, bytes);
            total
        }
    };
    ctx.reply.int(total as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let length = read_string_counted(ctx, args[1])?.map_or(0, |s| s.len());
    ctx.reply.int(length as i64);
    Ok(())
}

/// GETRANGE / SUBSTR key start end, inclusive, negative indexes from the end.
fn getrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut start = args::int(args[2])?;
    let mut end = args::int(args[3])?;
    let Some(value) = read_string_counted(ctx, args[1])? else {
        ctx.reply.bulk(b"");
        return Ok(());
    };
    let length = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.reply.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += length;
    }
    if end < 0 {
        end += length;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= length {
        end = length - 1;
    }
    if start > end || length == 0 {
        ctx.reply.bulk(b"");
    } else {
        let slice = value[start as usize..=end as usize].to_vec();
        ctx.reply.bulk(&slice);
    }
    Ok(())
}

/// SETRANGE key offset value: overwrite at `offset`, zero-padding; the new length.
fn setrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (key, patch) = (args[1], args[3]);
    let offset = args::int(args[2])?;
    if offset < 0 {
        return Err(CmdError::new("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let current = read_string(ctx, key)?.map(|s| s.to_vec());
    let mut bytes = match current {
        None => {
            if patch.is_empty() {
                ctx.reply.int(0);
                return Ok(());
            }
            check_string_length(ctx, offset, patch.len() as u64)?;
            Vec::new()
        }
        Some(bytes) => {
            if patch.is_empty() {
                ctx.reply.int(bytes.len() as i64);
                return Ok(());
            }
            check_string_length(ctx, offset, patch.len() as u64)?;
            bytes
        }
    };
    let offset = offset as usize;
    let end = offset + patch.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(patch);
    let total = bytes.len();
    overwrite_string(ctx, key, bytes);
    ctx.reply.int(total as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------

fn incr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let increment = args::int(args[2])?;
    incr_by(ctx, args[1], increment)
}

fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let decrement = args::int(args[2])?;
    if decrement == i64::MIN {
        return Err(CmdError::new("ERR decrement would overflow"));
    }
    incr_by(ctx, args[1], -decrement)
}

/// Adds `increment` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], increment: i64) -> CmdResult {
    let current = match read_string(ctx, key)? {
        None => 0,
        Some(s) => args::int(s)?,
    };
    let value = current.checked_add(increment).ok_or(CmdError::OVERFLOW)?;
    ctx.db()
        .set_keep_ttl(key, Value::Str(Bstr::from_i64(value)));
    ctx.touch(key);
    ctx.reply.int(value);
    Ok(())
}

/// INCRBYFLOAT key increment: computed in x87 extended precision (emulated exactly) and formatted as Redis'
/// `%.17Lf` with trailing zeros removed; propagated as `SET key result KEEPTTL`.
fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let current = match read_string(ctx, key)? {
        None => crate::storage::long_double::LongDouble::ZERO,
        Some(s) => crate::storage::long_double::parse(s).ok_or(CmdError::NOT_FLOAT)?,
    };
    let increment = crate::storage::long_double::parse(args[2]).ok_or(CmdError::NOT_FLOAT)?;
    let sum = crate::storage::long_double::add(current, increment);
    if sum.is_infinite() {
        return Err(CmdError::new("ERR increment would produce NaN or Infinity"));
    }
    let text = sum.to_human_string();
    ctx.db()
        .set_keep_ttl(key, Value::Str(Bstr::new(text.as_bytes())));
    ctx.touch(key);
    ctx.reply.bulk(text.as_bytes());
    ctx.propagate_as(vec![vec![
        b"SET".to_vec(),
        key.to_vec(),
        text.into_bytes(),
        b"KEEPTTL".to_vec(),
    ]]);
    Ok(())
}
