//! List commands: pushes and pops at both ends, index and range access, LPOS, LMOVE, LMPOP,
//! and the blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP).
//!
//! A list is a [`List`] (a deque stored in bounded chunks); index 0 is the head ("left"). Redis never keeps an empty
//! list: every command that removes elements deletes the key once the list is empty, so a
//! missing key and an empty list are the same thing to every reader.
//!
//! Blocking pops first behave like their non-blocking form when any of their keys has data
//! (and are propagated as that form: BLPOP as LPOP, BLMOVE as LMOVE, BLMPOP as `LPOP key n`).
//! Otherwise the client is registered in the store's blocking registry and gets no reply yet;
//! pushes signal their key ready, and [`serve_blocked`] later performs the pop on the
//! waiter's behalf, first come first served, propagating what it did.
//!
//! Replies, error strings and argument-parsing order follow Redis 7.0's `t_list.c`.

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx, Propagate};
use crate::protocol::Reply;
use crate::server::shared::{Shared, Stats};
use crate::spec;
use crate::storage::blocking::{BlockOp, Waiter};
use crate::storage::{Bstr, List, Store, Value, WRONGTYPE};

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        lpush
    ),
    spec!(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        rpush
    ),
    spec!(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        lpushx
    ),
    spec!(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        rpushx
    ),
    spec!(
        "lpop",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        lpop
    ),
    spec!(
        "rpop",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @list @fast",
        rpop
    ),
    spec!(
        "llen",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @list @fast",
        llen
    ),
    spec!("lrange", 4, READONLY, 1, 1, 1, "@read @list @slow", lrange),
    spec!("lindex", 3, READONLY, 1, 1, 1, "@read @list @slow", lindex),
    spec!(
        "lset",
        4,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @list @slow",
        lset
    ),
    spec!(
        "linsert",
        5,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "@write @list @slow",
        linsert
    ),
    spec!("lrem", 4, WRITE, 1, 1, 1, "@write @list @slow", lrem),
    spec!("ltrim", 4, WRITE, 1, 1, 1, "@write @list @slow", ltrim),
    spec!("lpos", -3, READONLY, 1, 1, 1, "@read @list @slow", lpos),
    spec!(
        "lmove",
        5,
        WRITE | DENYOOM,
        1,
        2,
        1,
        "@write @list @slow",
        lmove
    ),
    spec!(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        1,
        2,
        1,
        "@write @list @slow",
        rpoplpush
    ),
    // LMPOP and BLMPOP have movable keys (numkeys); Redis shows 0 0 0 for them too.
    spec!(
        "lmpop",
        -4,
        WRITE | MOVABLEKEYS,
        0,
        0,
        0,
        "@write @list @slow",
        lmpop
    ),
    spec!(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        1,
        -2,
        1,
        "@write @list @slow @blocking",
        blpop
    ),
    spec!(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        1,
        -2,
        1,
        "@write @list @slow @blocking",
        brpop
    ),
    spec!(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        1,
        2,
        1,
        "@write @list @slow @blocking",
        blmove
    ),
    spec!(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        1,
        2,
        1,
        "@write @list @slow @blocking",
        brpoplpush
    ),
    spec!(
        "blmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        0,
        0,
        0,
        "@write @list @slow @blocking",
        blmpop
    ),
];

// ---------------------------------------------------------------------------------------------
// LOOKUPS AND SHARED HELPERS
// ---------------------------------------------------------------------------------------------

/// Redis' `lookupKeyRead` for a list in the client's database: counts a keyspace hit or
/// miss, `WRONGTYPE` for another type, `None` for a missing key. Borrows only the store, so
/// the caller can write the reply while holding the list.
fn read_list<'s>(
    store: &'s mut Store,
    shared: &Shared,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s List>, CmdError> {
    let value = store.dbs[db].lookup(key, now_ms);
    let counter = if value.is_some() {
        &shared.stats.keyspace_hits
    } else {
        &shared.stats.keyspace_misses
    };
    Stats::add(counter, 1);
    match value {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(list)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Redis' `lookupKeyWrite` for a list: no hit/miss statistics, `WRONGTYPE` for another type.
fn write_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut List>, CmdError> {
    let now_ms = ctx.now_ms;
    match ctx.db().lookup_mut(key, now_ms) {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(list)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// The list at `key` in the selected database, created empty if missing. The caller has
/// checked that the key holds no other type.
fn list_or_create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> &'c mut List {
    let now_ms = ctx.now_ms;
    match ctx.db().entry_or_insert_with(key, now_ms, Value::new_list) {
        Value::List(list) => list,
        other => panic!("list_or_create on a {}", other.type_name()),
    }
}

/// Redis' `getRangeLongFromObjectOrReply` with a message: any unparsable or out-of-range
/// value gets the same error, `ERR <message>`.
fn int_at_least(arg: &[u8], min: i64, message: &'static str) -> Result<i64, CmdError> {
    match crate::protocol::parser::parse_i64(arg) {
        Some(n) if n >= min => Ok(n),
        _ => Err(CmdError::new(message)),
    }
}

/// `LEFT` or `RIGHT` → pops/pushes at the head (true) or the tail (false).
fn parse_side(arg: &[u8]) -> Result<bool, CmdError> {
    if args::is(arg, "left") {
        Ok(true)
    } else if args::is(arg, "right") {
        Ok(false)
    } else {
        Err(CmdError::SYNTAX)
    }
}

fn side_name(left: bool) -> &'static [u8] {
    if left {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// Resolves Redis' inclusive `start..=end` range (negative counts from the tail) against a
/// list of `len` elements; `None` when the range is empty.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// Resolves a single index (negative counts from the tail).
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (index >= 0 && (index as usize) < len).then_some(index as usize)
}

/// Pops up to `count` elements from one end, in pop order.
fn pop_many(list: &mut List, from_left: bool, count: usize) -> Vec<Bstr> {
    let n = count.min(list.len());
    let mut popped = Vec::with_capacity(n);
    for _ in 0..n {
        let value = if from_left {
            list.pop_front()
        } else {
            list.pop_back()
        };
        popped.push(value.expect("n <= len"));
    }
    popped
}

fn reply_bulks(reply: &mut Reply, values: &[Bstr]) {
    reply.array(values.len());
    for value in values {
        reply.bulk(value);
    }
}

fn pop_command_name(from_left: bool) -> &'static [u8] {
    if from_left {
        b"LPOP"
    } else {
        b"RPOP"
    }
}

// ---------------------------------------------------------------------------------------------
// PUSH
// ---------------------------------------------------------------------------------------------

/// LPUSH / RPUSH / LPUSHX / RPUSHX: pushes every element in argument order; replies the new
/// length. The X forms do nothing (reply 0) when the key is missing.
fn push(ctx: &mut Ctx<'_>, args: &[&[u8]], to_left: bool, only_if_exists: bool) -> CmdResult {
    let key = args[1];
    if write_list(ctx, key)?.is_none() && only_if_exists {
        ctx.reply.int(0);
        return Ok(());
    }
    let list = list_or_create(ctx, key);
    for element in &args[2..] {
        if to_left {
            list.push_front(Bstr::new(element));
        } else {
            list.push_back(Bstr::new(element));
        }
    }
    let len = list.len();
    ctx.reply.int(len as i64);
    ctx.touch(key);
    ctx.signal_ready(key);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, false, true)
}

// ---------------------------------------------------------------------------------------------
// POP
// ---------------------------------------------------------------------------------------------

/// LPOP / RPOP key [count]: without a count one bulk (nil if missing); with a count an array
/// of up to `count` elements (null array if missing, empty array for count 0).
fn pop(ctx: &mut Ctx<'_>, args: &[&[u8]], from_left: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::arity(args[0]));
    }
    let count = match args.get(2) {
        Some(arg) => {
            Some(int_at_least(arg, 0, "ERR value is out of range, must be positive")? as usize)
        }
        None => None,
    };
    let key = args[1];
    let Some(list) = write_list(ctx, key)? else {
        match count {
            Some(_) => ctx.reply.null_array(),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    match count {
        Some(0) => {
            ctx.reply.array(0);
            return Ok(());
        }
        Some(count) => {
            let popped = pop_many(list, from_left, count);
            reply_bulks(ctx.reply, &popped);
        }
        None => {
            let popped = pop_many(list, from_left, 1);
            ctx.reply.bulk(&popped[0]);
        }
    }
    ctx.db().remove_if_empty(key);
    ctx.touch(key);
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, false)
}

// ---------------------------------------------------------------------------------------------
// READS: LLEN, LRANGE, LINDEX, LPOS
// ---------------------------------------------------------------------------------------------

fn llen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let list = read_list(ctx.store, ctx.shared, ctx.client.db, args[1], ctx.now_ms)?;
    let len = list.map_or(0, |list| list.len());
    ctx.reply.int(len as i64);
    Ok(())
}

/// LRANGE key start stop (indexes parsed before the key is looked up, as Redis does).
fn lrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let start = args::int(args[2])?;
    let end = args::int(args[3])?;
    let list = read_list(ctx.store, ctx.shared, ctx.client.db, args[1], ctx.now_ms)?;
    match list.and_then(|list| Some((list, resolve_range(start, end, list.len())?))) {
        None => ctx.reply.array(0),
        Some((list, (first, last))) => {
            ctx.reply.array(last - first + 1);
            for element in list.range(first..=last) {
                ctx.reply.bulk(element);
            }
        }
    }
    Ok(())
}

/// LINDEX key index: the key is looked up before the index is parsed (a missing key answers
/// nil even for a malformed index), as Redis does.
fn lindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let list = read_list(ctx.store, ctx.shared, ctx.client.db, args[1], ctx.now_ms)?;
    let Some(list) = list else {
        ctx.reply.null();
        return Ok(());
    };
    let index = args::int(args[2])?;
    match resolve_index(index, list.len()) {
        Some(position) => ctx.reply.bulk(&list[position]),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
fn lpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let element = args[2];
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args::is(args[i], "rank") && has_value {
            rank = args::int(args[i + 1])?;
            if rank == 0 {
                return Err(CmdError::new(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if args::is(args[i], "count") && has_value {
            count = Some(int_at_least(args[i + 1], 0, "ERR COUNT can't be negative")?);
        } else if args::is(args[i], "maxlen") && has_value {
            maxlen = int_at_least(args[i + 1], 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 2;
    }
    // A negative rank searches from the tail. Redis negates in C `long` arithmetic, so
    // i64::MIN stays negative: every match then qualifies; wrapping ops mimic that.
    let from_tail = rank < 0;
    let rank = if from_tail { rank.wrapping_neg() } else { rank };

    let list = read_list(ctx.store, ctx.shared, ctx.client.db, args[1], ctx.now_ms)?;
    let Some(list) = list else {
        match count {
            Some(_) => ctx.reply.array(0),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let len = list.len();
    let mut found: Vec<i64> = Vec::new();
    let mut matches: i64 = 0;
    let scan_max = if maxlen == 0 {
        len
    } else {
        len.min(maxlen as usize)
    };
    // One iterator walked from the chosen end: indexing each position would walk chunks.
    let mut elements = list.iter();
    for step in 0..scan_max {
        let position = if from_tail { len - 1 - step } else { step };
        let candidate = if from_tail {
            elements.next_back()
        } else {
            elements.next()
        };
        if candidate.expect("step < len").as_bytes() != element {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(position as i64);
        match count {
            None => break,
            Some(count) => {
                if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                    break;
                }
            }
        }
    }
    match count {
        Some(_) => {
            ctx.reply.array(found.len());
            for position in found {
                ctx.reply.int(position);
            }
        }
        None => match found.first() {
            Some(&position) => ctx.reply.int(position),
            None => ctx.reply.null(),
        },
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// IN-PLACE WRITES: LSET, LINSERT, LREM, LTRIM
// ---------------------------------------------------------------------------------------------

/// LSET key index element.
fn lset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let Some(list) = write_list(ctx, key)? else {
        return Err(CmdError::NO_SUCH_KEY);
    };
    let index = args::int(args[2])?;
    let Some(position) = resolve_index(index, list.len()) else {
        return Err(CmdError::INDEX_OUT_OF_RANGE);
    };
    list[position] = Bstr::new(args[3]);
    ctx.reply.ok();
    ctx.touch(key);
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 if the pivot is absent, 0 if
/// the key is missing.
fn linsert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let after = if args::is(args[2], "after") {
        true
    } else if args::is(args[2], "before") {
        false
    } else {
        return Err(CmdError::SYNTAX);
    };
    let key = args[1];
    let Some(list) = write_list(ctx, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let Some(pivot) = list.iter().position(|e| e.as_bytes() == args[3]) else {
        ctx.reply.int(-1);
        return Ok(());
    };
    list.insert(pivot + after as usize, Bstr::new(args[4]));
    let len = list.len();
    ctx.reply.int(len as i64);
    ctx.touch(key);
    Ok(())
}

/// LREM key count element: removes the first `count` matches (from the tail if negative, all
/// if 0); replies how many were removed.
fn lrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let count = args::int(args[2])?;
    let key = args[1];
    let element = args[3];
    let Some(list) = write_list(ctx, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let limit = count.unsigned_abs();
    // The matches to remove are exactly those at or after `first` (from the tail) or before
    // `end` (from the head): find that boundary, then remove in one pass.
    let (first, end) = if count < 0 {
        let mut seen = 0;
        let mut first = 0;
        for (position, candidate) in list.iter().enumerate().rev() {
            if candidate.as_bytes() == element {
                seen += 1;
                if seen == limit {
                    first = position;
                    break;
                }
            }
        }
        (first, list.len())
    } else {
        (0, list.len())
    };
    let mut removed: u64 = 0;
    let mut position = 0;
    list.retain(|e| {
        let here = position;
        position += 1;
        let take = here >= first
            && here < end
            && e.as_bytes() == element
            && (count <= 0 || removed < limit);
        removed += take as u64;
        !take
    });
    if removed > 0 {
        ctx.db().remove_if_empty(key);
        ctx.touch(key);
    }
    ctx.reply.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop: keeps only the range; deletes the key if nothing is left.
fn ltrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let start = args::int(args[2])?;
    let end = args::int(args[3])?;
    let key = args[1];
    let Some(list) = write_list(ctx, key)? else {
        ctx.reply.ok();
        return Ok(());
    };
    let len = list.len();
    let (keep_from, keep_to) = match resolve_range(start, end, len) {
        Some((first, last)) => (first, last + 1),
        None => (len, len),
    };
    list.truncate(keep_to);
    list.remove_front(keep_from);
    let removed = len - list.len();
    ctx.db().remove_if_empty(key);
    if removed > 0 {
        ctx.touch(key);
    } else {
        // Redis signals the key modified even when nothing was trimmed (WATCH fires), but
        // the dirty counter does not move, so nothing is propagated.
        let db = ctx.client.db;
        ctx.store.touch(db, key);
    }
    ctx.reply.ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// LMOVE, RPOPLPUSH, LMPOP
// ---------------------------------------------------------------------------------------------

/// Outcome of [`move_element`].
enum Moved {
    /// The source is missing: nothing moved.
    SourceMissing,
    /// The element moved.
    Element(Bstr),
}

/// Pops from `source`, pushes onto `destination` (which may be the same list) in the
/// selected database. `WRONGTYPE` (changing nothing) if either key holds another type.
fn move_element(
    ctx: &mut Ctx<'_>,
    source: &[u8],
    destination: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Moved, CmdError> {
    if write_list(ctx, source)?.is_none() {
        return Ok(Moved::SourceMissing);
    }
    write_list(ctx, destination)?;
    let list = write_list(ctx, source)?.expect("checked above");
    let value = pop_many(list, from_left, 1)
        .pop()
        .expect("lists are never empty");
    let destination_list = list_or_create(ctx, destination);
    if to_left {
        destination_list.push_front(value.clone());
    } else {
        destination_list.push_back(value.clone());
    }
    ctx.db().remove_if_empty(source);
    ctx.touch(source);
    ctx.touch(destination);
    ctx.signal_ready(destination);
    Ok(Moved::Element(value))
}

fn lmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let from_left = parse_side(args[3])?;
    let to_left = parse_side(args[4])?;
    match move_element(ctx, args[1], args[2], from_left, to_left)? {
        Moved::SourceMissing => ctx.reply.null(),
        Moved::Element(value) => ctx.reply.bulk(&value),
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match move_element(ctx, args[1], args[2], false, true)? {
        Moved::SourceMissing => ctx.reply.null(),
        Moved::Element(value) => ctx.reply.bulk(&value),
    }
    Ok(())
}

/// Parsed `numkeys key [key ...] LEFT|RIGHT [COUNT count]` of LMPOP and BLMPOP.
struct MultiPop<'a> {
    keys: &'a [&'a [u8]],
    from_left: bool,
    count: usize,
}

/// Parses LMPOP's arguments starting at `numkeys_at`, with Redis' checks in Redis' order.
fn parse_multi_pop<'a>(args: &'a [&'a [u8]], numkeys_at: usize) -> Result<MultiPop<'a>, CmdError> {
    let numkeys = int_at_least(args[numkeys_at], 1, "ERR numkeys should be greater than 0")?;
    let side_at = (numkeys as u64).saturating_add(numkeys_at as u64 + 1);
    if side_at >= args.len() as u64 {
        return Err(CmdError::SYNTAX);
    }
    let side_at = side_at as usize;
    let from_left = parse_side(args[side_at])?;
    let mut count: Option<usize> = None;
    let mut i = side_at + 1;
    while i < args.len() {
        if count.is_none() && args::is(args[i], "count") && i + 1 < args.len() {
            count =
                Some(int_at_least(args[i + 1], 1, "ERR count should be greater than 0")? as usize);
            i += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    Ok(MultiPop {
        keys: &args[numkeys_at + 1..side_at],
        from_left,
        count: count.unwrap_or(1),
    })
}

/// Pops up to `count` elements from the first non-empty list among `keys`; replies
/// `[key, [elements]]` and propagates `LPOP|RPOP key n`. Returns false (no reply written)
/// when every key is missing.
fn multi_pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    from_left: bool,
    count: usize,
) -> Result<bool, CmdError> {
    for &key in keys {
        let Some(list) = write_list(ctx, key)? else {
            continue;
        };
        let popped = pop_many(list, from_left, count);
        ctx.reply.array(2);
        ctx.reply.bulk(key);
        reply_bulks(ctx.reply, &popped);
        ctx.db().remove_if_empty(key);
        ctx.touch(key);
        ctx.propagate_as(vec![vec![
            pop_command_name(from_left).to_vec(),
            key.to_vec(),
            popped.len().to_string().into_bytes(),
        ]]);
        return Ok(true);
    }
    Ok(false)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn lmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let parsed = parse_multi_pop(args, 1)?;
    if !multi_pop_first(ctx, parsed.keys, parsed.from_left, parsed.count)? {
        ctx.reply.null_array();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// BLOCKING POPS
// ---------------------------------------------------------------------------------------------

/// Registers the client as waiting on `keys` until `deadline_ms` (0 = forever). No reply is
/// written and nothing is propagated; the event loop times the wait out, or
/// [`serve_blocked`] serves it.
fn block(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: BlockOp, deadline_ms: u64) {
    let mut unique: Vec<Bstr> = Vec::with_capacity(keys.len());
    for &key in keys {
        if !unique.iter().any(|k| k.as_bytes() == key) {
            unique.push(Bstr::new(key));
        }
    }
    ctx.store.blocking.block(Waiter {
        client_id: ctx.client.id,
        core: ctx.client.core,
        conn: ctx.client.conn,
        db: ctx.client.db,
        keys: unique,
        op,
        resp: ctx.reply.resp,
    });
    ctx.client.blocked = Some(deadline_ms);
    ctx.client.info.blocked.store(true, Ordering::Relaxed);
    ctx.propagate = Propagate::Nothing;
}

/// BLPOP / BRPOP key [key ...] timeout.
fn blocking_pop(ctx: &mut Ctx<'_>, args: &[&[u8]], from_left: bool) -> CmdResult {
    let deadline_ms = args::timeout_deadline(args[args.len() - 1], ctx.now_ms)?;
    let keys = &args[1..args.len() - 1];
    for &key in keys {
        let Some(list) = write_list(ctx, key)? else {
            continue;
        };
        let value = pop_many(list, from_left, 1)
            .pop()
            .expect("lists are never empty");
        ctx.reply.array(2);
        ctx.reply.bulk(key);
        ctx.reply.bulk(&value);
        ctx.db().remove_if_empty(key);
        ctx.touch(key);
        ctx.propagate_as(vec![vec![
            pop_command_name(from_left).to_vec(),
            key.to_vec(),
        ]]);
        return Ok(());
    }
    if ctx.client.in_exec {
        ctx.reply.null_array();
        return Ok(());
    }
    let op = BlockOp::ListPop {
        from_left,
        count: None,
    };
    block(ctx, keys, op, deadline_ms);
    Ok(())
}

fn blpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, false)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]. Redis checks numkeys, the
/// side and COUNT before the timeout.
fn blmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let parsed = parse_multi_pop(args, 2)?;
    let deadline_ms = args::timeout_deadline(args[1], ctx.now_ms)?;
    if multi_pop_first(ctx, parsed.keys, parsed.from_left, parsed.count)? {
        return Ok(());
    }
    if ctx.client.in_exec {
        ctx.reply.null_array();
        return Ok(());
    }
    let op = BlockOp::ListPop {
        from_left: parsed.from_left,
        count: Some(parsed.count),
    };
    block(ctx, parsed.keys, op, deadline_ms);
    Ok(())
}

/// The shared body of BLMOVE and BRPOPLPUSH once their arguments are parsed; `propagated`
/// is the non-blocking command to propagate when an element moves right away.
fn blocking_move(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    from_left: bool,
    to_left: bool,
    deadline_ms: u64,
    propagated: Vec<Vec<u8>>,
) -> CmdResult {
    let (source, destination) = (args[1], args[2]);
    match move_element(ctx, source, destination, from_left, to_left)? {
        Moved::Element(value) => {
            ctx.reply.bulk(&value);
            ctx.propagate_as(vec![propagated]);
        }
        Moved::SourceMissing if ctx.client.in_exec => ctx.reply.null(),
        Moved::SourceMissing => {
            let op = BlockOp::ListMove {
                destination: Bstr::new(destination),
                from_left,
                to_left,
            };
            block(ctx, &[source], op, deadline_ms);
        }
    }
    Ok(())
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
fn blmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let from_left = parse_side(args[3])?;
    let to_left = parse_side(args[4])?;
    let deadline_ms = args::timeout_deadline(args[5], ctx.now_ms)?;
    let propagated = [b"LMOVE".as_slice(), args[1], args[2], args[3], args[4]]
        .iter()
        .map(|a| a.to_vec())
        .collect();
    blocking_move(ctx, args, from_left, to_left, deadline_ms, propagated)
}

/// BRPOPLPUSH source destination timeout.
fn brpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let deadline_ms = args::timeout_deadline(args[3], ctx.now_ms)?;
    let propagated = vec![b"RPOPLPUSH".to_vec(), args[1].to_vec(), args[2].to_vec()];
    blocking_move(ctx, args, false, true, deadline_ms, propagated)
}

/// Serves one waiter blocked on `key` (which may now hold data). Returns false, changing
/// nothing, if `key` has nothing for it; otherwise performs the pop (propagating it), writes
/// the reply into `reply`, and returns true.
///
/// Everything happens in the waiter's database, which need not be the current client's.
/// As in Redis 7.0: a key that now holds another type leaves the waiter blocked; a BLMOVE
/// whose destination holds another type is answered `WRONGTYPE` (and unblocked) without
/// popping.
pub fn serve_blocked(ctx: &mut Ctx<'_>, waiter: &Waiter, key: &Bstr, reply: &mut Reply) -> bool {
    let db = waiter.db;
    let now_ms = ctx.now_ms;
    let has_data = matches!(
        ctx.store.dbs[db].lookup(key, now_ms),
        Some(Value::List(list)) if !list.is_empty()
    );
    if !has_data {
        return false;
    }
    match &waiter.op {
        BlockOp::ListPop { from_left, count } => {
            let from_left = *from_left;
            let Some(Value::List(list)) = ctx.store.dbs[db].lookup_mut(key, now_ms) else {
                unreachable!("checked above");
            };
            let popped = pop_many(list, from_left, count.unwrap_or(1));
            reply.array(2);
            reply.bulk(key);
            let mut propagated = vec![pop_command_name(from_left).to_vec(), key.to_vec()];
            match count {
                Some(_) => {
                    reply_bulks(reply, &popped);
                    propagated.push(popped.len().to_string().into_bytes());
                }
                None => reply.bulk(&popped[0]),
            }
            ctx.store.dbs[db].remove_if_empty(key);
            ctx.store.dirty += 1;
            ctx.store.touch(db, key);
            ctx.store.propagation.feed(db, &propagated);
        }
        BlockOp::ListMove {
            destination,
            from_left,
            to_left,
        } => {
            let (from_left, to_left) = (*from_left, *to_left);
            let destination_ok = matches!(
                ctx.store.dbs[db].lookup(destination, now_ms),
                None | Some(Value::List(_))
            );
            if !destination_ok {
                Stats::add(&ctx.shared.stats.total_error_replies, 1);
                reply.error(WRONGTYPE);
                return true;
            }
            let Some(Value::List(list)) = ctx.store.dbs[db].lookup_mut(key, now_ms) else {
                unreachable!("checked above");
            };
            let value = pop_many(list, from_left, 1)
                .pop()
                .expect("checked non-empty");
            let Value::List(destination_list) =
                ctx.store.dbs[db].entry_or_insert_with(destination, now_ms, Value::new_list)
            else {
                unreachable!("checked above");
            };
            if to_left {
                destination_list.push_front(value.clone());
            } else {
                destination_list.push_back(value.clone());
            }
            reply.bulk(&value);
            ctx.store.dbs[db].remove_if_empty(key);
            ctx.store.dirty += 2;
            ctx.store.touch(db, key);
            ctx.store.touch(db, destination);
            ctx.store.blocking.signal_ready(db, destination);
            ctx.store.propagation.feed(
                db,
                &[
                    b"LMOVE".as_slice(),
                    key.as_bytes(),
                    destination.as_bytes(),
                    side_name(from_left),
                    side_name(to_left),
                ],
            );
        }
        BlockOp::ZSetPop { .. } => {
            debug_assert!(false, "zset waiter handed to the list server");
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_redis() {
        // (start, end, len) -> inclusive positions
        type Case = (i64, i64, usize, Option<(usize, usize)>);
        let table: &[Case] = &[
            (0, -1, 3, Some((0, 2))),
            (0, 100, 3, Some((0, 2))),
            (-100, 1, 3, Some((0, 1))),
            (2, 1, 3, None),
            (3, 5, 3, None),
            (0, -4, 3, None),
            (-1, -1, 3, Some((2, 2))),
            (0, 0, 0, None),
            (i64::MIN, i64::MAX, 2, Some((0, 1))),
        ];
        for &(start, end, len, expected) in table {
            assert_eq!(
                resolve_range(start, end, len),
                expected,
                "{start} {end} {len}"
            );
        }
    }

    #[test]
    fn indexes_resolve_like_redis() {
        assert_eq!(resolve_index(0, 3), Some(0));
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-3, 3), Some(0));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
    }

    #[test]
    fn multi_pop_arguments_are_checked_in_redis_order() {
        let parse = |args: &[&[u8]]| parse_multi_pop(args, 1).map(|p| (p.keys.len(), p.count));
        assert_eq!(parse(&[b"lmpop", b"2", b"a", b"b", b"left"]), Ok((2, 1)));
        assert_eq!(
            parse(&[b"lmpop", b"1", b"a", b"right", b"count", b"5"]),
            Ok((1, 5))
        );
        assert_eq!(
            parse(&[b"lmpop", b"0", b"a", b"left"]).unwrap_err().0,
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(
            parse(&[b"lmpop", b"9223372036854775807", b"a", b"left"]),
            Err(CmdError::SYNTAX)
        );
        assert_eq!(
            parse(&[b"lmpop", b"1", b"a", b"left", b"count", b"1", b"count", b"2"]),
            Err(CmdError::SYNTAX)
        );
        assert_eq!(
            parse(&[b"lmpop", b"1", b"a", b"left", b"count", b"0"])
                .unwrap_err()
                .0,
            "ERR count should be greater than 0"
        );
    }
}
