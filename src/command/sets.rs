//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE, the algebra (SINTER, SINTERCARD, SUNION, SDIFF and their STORE forms) and SSCAN.
//!
//! A set is an insertion-ordered [`Set`] of [`Bstr`] with O(1) membership, removal
//! (`swap_remove`) and access by position, which serves random sampling and SSCAN cursors.
//!
//! # Order of whole-set replies
//! Redis 7.0 keeps a set of at most 512 integers as a sorted *intset*, so SMEMBERS, SSCAN and
//! every other whole-set walk of such a set come out in numeric order; larger or non-integer
//! sets come out in hash-table order, which clients cannot rely on. [`members_in_order`]
//! reproduces the first case and uses insertion order for the second.
//!
//! # Propagation
//! SPOP is random, so it is never propagated as sent: a single pop becomes `SREM key member`,
//! a counted pop one `SREM` per popped member, and a counted pop that empties the set `DEL key`
//! (Redis 7.0's `spopWithCountCommand`). The STORE commands propagate as sent: their result
//! depends only on the keyspace.

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::Reply;
use crate::server::shared::Stats;
use crate::spec;
use crate::storage::db::scan_positions;
use crate::storage::value::Set;
use crate::storage::{Bstr, Value};

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @set @fast",
        sadd
    ),
    spec!("srem", -3, WRITE | FAST, 1, 1, 1, "@write @set @fast", srem),
    spec!(
        "smembers",
        2,
        READONLY,
        1,
        1,
        1,
        "@read @set @slow",
        smembers
    ),
    spec!(
        "sismember",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @set @fast",
        sismember
    ),
    spec!(
        "smismember",
        -3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @set @fast",
        smismember
    ),
    spec!(
        "scard",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @set @fast",
        scard
    ),
    spec!("spop", -2, WRITE | FAST, 1, 1, 1, "@write @set @fast", spop),
    spec!(
        "srandmember",
        -2,
        READONLY,
        1,
        1,
        1,
        "@read @set @slow",
        srandmember
    ),
    spec!(
        "smove",
        4,
        WRITE | FAST,
        1,
        2,
        1,
        "@write @set @fast",
        smove
    ),
    spec!("sinter", -2, READONLY, 1, -1, 1, "@read @set @slow", sinter),
    spec!(
        "sintercard",
        -3,
        READONLY | MOVABLEKEYS,
        0,
        0,
        0,
        "@read @set @slow",
        sintercard
    ),
    spec!(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        1,
        "@write @set @slow",
        sinterstore
    ),
    spec!("sunion", -2, READONLY, 1, -1, 1, "@read @set @slow", sunion),
    spec!(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        1,
        "@write @set @slow",
        sunionstore
    ),
    spec!("sdiff", -2, READONLY, 1, -1, 1, "@read @set @slow", sdiff),
    spec!(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        1,
        -1,
        1,
        "@write @set @slow",
        sdiffstore
    ),
    spec!("sscan", -3, READONLY, 1, 1, 1, "@read @set @slow", sscan),
];

/// Largest set Redis 7.0 keeps as an intset (`set-max-intset-entries`, default 512).
const INTSET_ENTRIES_MAX: usize = 512;

// ---------------------------------------------------------------------------------------------
// LOOKUP
// ---------------------------------------------------------------------------------------------

/// Looks `key` up for reading (counting a keyspace hit or miss) and returns the set with the
/// reply buffer, so a handler can walk the set while writing its reply.
fn read_set<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<(Option<&'c Set<Bstr>>, &'c mut Reply), CmdError> {
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
        Some(Value::Set(set)) => Ok((Some(&**set), &mut *ctx.reply)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Looks `key` up for writing (no hit/miss accounting).
fn write_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut Set<Bstr>>, CmdError> {
    let now_ms = ctx.now_ms;
    match ctx.db().lookup_mut(key, now_ms) {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(&mut **set)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Expires and type-checks every key of a multi-set command in argument order, as Redis does:
/// the first non-set key fails the command even if an earlier key is missing. Returns whether
/// each key exists; the sets themselves are then reached with `Db::peek`.
fn check_sets(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> Result<Vec<bool>, CmdError> {
    let now_ms = ctx.now_ms;
    let mut present = Vec::with_capacity(keys.len());
    for key in keys {
        let found = match ctx.db().lookup(key, now_ms) {
            None => false,
            Some(Value::Set(_)) => true,
            Some(_) => return Err(CmdError::WRONG_TYPE),
        };
        if found {
            ctx.hit();
        } else {
            ctx.miss();
        }
        present.push(found);
    }
    Ok(present)
}

/// The set at `key` after [`check_sets`] said it exists.
fn peek_set<'d>(db: &'d crate::storage::Db, key: &[u8]) -> &'d Set<Bstr> {
    match db.peek(key) {
        Some(Value::Set(set)) => set,
        _ => unreachable!("check_sets verified the key holds a set"),
    }
}

/// True if Redis 7.0 would keep these members as an intset (all canonical 64-bit integers,
/// at most [`INTSET_ENTRIES_MAX`] of them).
fn is_intset<'m>(len: usize, mut members: impl Iterator<Item = &'m Bstr>) -> bool {
    len <= INTSET_ENTRIES_MAX && members.all(|m| crate::protocol::parser::parse_i64(m).is_some())
}

/// The members of `set` in the order Redis 7.0 walks them (see the module doc).
pub(crate) fn members_in_order(set: &Set<Bstr>) -> Vec<&Bstr> {
    let mut members: Vec<&Bstr> = set.iter().collect();
    if is_intset(set.len(), set.iter()) {
        members.sort_by_key(|m| crate::protocol::parser::parse_i64(m).expect("intset member"));
    }
    members
}

fn reply_set(reply: &mut Reply, set: &Set<Bstr>) {
    reply.set(set.len());
    for member in members_in_order(set) {
        reply.bulk(member);
    }
}

/// Parses a count the way Redis' `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` does.
pub(crate) fn signed_count(arg: &[u8]) -> Result<i64, CmdError> {
    let count = args::int(arg)?;
    if count == i64::MIN {
        return Err(CmdError::new(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------------
// SINGLE-SET COMMANDS
// ---------------------------------------------------------------------------------------------

/// SADD key member [member ...]: how many members were new.
fn sadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let now_ms = ctx.now_ms;
    let value = ctx.db().entry_or_insert_with(key, now_ms, Value::new_set);
    let Value::Set(set) = value else {
        return Err(CmdError::WRONG_TYPE);
    };
    let mut added = 0;
    for member in &args[2..] {
        if !set.contains(*member) {
            set.insert(Bstr::new(member));
            added += 1;
        }
    }
    if added > 0 {
        ctx.touch(key);
    }
    ctx.reply.int(added);
    Ok(())
}

/// SREM key member [member ...]: how many members were removed; an emptied set is deleted.
fn srem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let Some(set) = write_set(ctx, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut removed = 0;
    for member in &args[2..] {
        if set.swap_remove(*member) {
            removed += 1;
            if set.is_empty() {
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

/// SMEMBERS key: the whole set (a RESP3 set).
fn smembers(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match read_set(ctx, args[1])? {
        (Some(set), reply) => reply_set(reply, set),
        (None, reply) => reply.set(0),
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (set, reply) = read_set(ctx, args[1])?;
    reply.int(set.is_some_and(|s| s.contains(args[2])) as i64);
    Ok(())
}

/// SMISMEMBER key member [member ...]: 1 or 0 per member; a missing key is an empty set.
fn smismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (set, reply) = read_set(ctx, args[1])?;
    reply.array(args.len() - 2);
    for member in &args[2..] {
        reply.int(set.is_some_and(|s| s.contains(*member)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (set, reply) = read_set(ctx, args[1])?;
    reply.int(set.map_or(0, |s| s.len() as i64));
    Ok(())
}

/// SPOP key [count]: removes and returns random members (see the module doc for propagation).
fn spop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match args.len() {
        2 => spop_one(ctx, args[1]),
        3 => spop_count(ctx, args[1], args::positive(args[2])?),
        _ => Err(CmdError::SYNTAX),
    }
}

fn spop_one(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let Some(set) = write_set(ctx, key)? else {
        ctx.reply.null();
        return Ok(());
    };
    debug_assert!(!set.is_empty(), "empty sets are deleted");
    let index = rand::random::<usize>() % set.len();
    let member = set.swap_remove_index(index).expect("index within len");
    ctx.reply.bulk(&member);
    ctx.db().remove_if_empty(key);
    ctx.touch(key);
    ctx.propagate_as(vec![vec![b"SREM".to_vec(), key.to_vec(), member.to_vec()]]);
    Ok(())
}

fn spop_count(ctx: &mut Ctx<'_>, key: &[u8], count: usize) -> CmdResult {
    let Some(set) = write_set(ctx, key)? else {
        ctx.reply.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.set(0);
        return Ok(());
    }
    if count >= set.len() {
        // The whole set: reply with it, delete the key, propagate as DEL.
        let set = std::mem::take(set);
        reply_set(ctx.reply, &set);
        ctx.db().remove(key);
        ctx.touch(key);
        ctx.propagate_as(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        return Ok(());
    }
    let mut popped = Vec::with_capacity(count);
    for _ in 0..count {
        let index = rand::random::<usize>() % set.len();
        popped.push(set.swap_remove_index(index).expect("index within len"));
    }
    debug_assert!(!set.is_empty());
    ctx.reply.set(popped.len());
    let mut commands = Vec::with_capacity(popped.len());
    for member in &popped {
        ctx.reply.bulk(member);
        commands.push(vec![b"SREM".to_vec(), key.to_vec(), member.to_vec()]);
    }
    ctx.touch(key);
    ctx.propagate_as(commands);
    Ok(())
}

/// SRANDMEMBER key [count]: random members; a negative count allows repeats.
fn srandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::SYNTAX);
    }
    let count = args.get(2).map(|a| signed_count(a)).transpose()?;
    let (set, reply) = read_set(ctx, args[1])?;
    let Some(count) = count else {
        match set {
            Some(set) => reply.bulk(&set[rand::random::<usize>() % set.len()]),
            None => reply.null(),
        }
        return Ok(());
    };
    let Some(set) = set else {
        reply.array(0);
        return Ok(());
    };
    let wanted = count.unsigned_abs() as usize;
    if count < 0 || wanted == 1 {
        reply.array(wanted);
        for _ in 0..wanted {
            reply.bulk(&set[rand::random::<usize>() % set.len()]);
        }
    } else if wanted >= set.len() {
        reply.array(set.len());
        for member in members_in_order(set) {
            reply.bulk(member);
        }
    } else {
        reply.array(wanted);
        let mut rng = rand::thread_rng();
        for index in rand::seq::index::sample(&mut rng, set.len(), wanted) {
            reply.bulk(&set[index]);
        }
    }
    Ok(())
}

/// SMOVE source destination member: 1 if the member was moved (or is in source == destination).
fn smove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (source, destination, member) = (args[1], args[2], args[3]);
    let now_ms = ctx.now_ms;
    let source_is_set = match ctx.db().lookup(source, now_ms) {
        None => {
            ctx.reply.int(0);
            return Ok(());
        }
        Some(value) => matches!(value, Value::Set(_)),
    };
    let destination_ok = matches!(
        ctx.db().lookup(destination, now_ms),
        None | Some(Value::Set(_))
    );
    if !source_is_set || !destination_ok {
        return Err(CmdError::WRONG_TYPE);
    }
    let source_set = write_set(ctx, source)?.expect("checked above");
    if source == destination {
        let found = source_set.contains(member);
        ctx.reply.int(found as i64);
        return Ok(());
    }
    if !source_set.swap_remove(member) {
        ctx.reply.int(0);
        return Ok(());
    }
    ctx.db().remove_if_empty(source);
    ctx.touch(source);
    let Value::Set(destination_set) =
        ctx.db()
            .entry_or_insert_with(destination, now_ms, Value::new_set)
    else {
        unreachable!("destination checked to be a set or missing");
    };
    if destination_set.insert(Bstr::new(member)) {
        ctx.touch(destination);
    }
    ctx.reply.int(1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SET ALGEBRA
// ---------------------------------------------------------------------------------------------

/// The intersection of the sets at `keys`, walking the smallest set in Redis order and
/// stopping after `limit` members (0: no limit). Missing keys make it empty.
fn intersection(ctx: &mut Ctx<'_>, keys: &[&[u8]], limit: usize) -> Result<Vec<Bstr>, CmdError> {
    let present = check_sets(ctx, keys)?;
    if present.iter().any(|p| !p) {
        return Ok(Vec::new());
    }
    let db = &ctx.store.dbs[ctx.client.db];
    let mut sets: Vec<&Set<Bstr>> = keys.iter().map(|k| peek_set(db, k)).collect();
    sets.sort_by_key(|s| s.len());
    let mut result = Vec::new();
    for member in members_in_order(sets[0]) {
        if sets[1..].iter().all(|s| s.contains(member.as_bytes())) {
            result.push(member.clone());
            if limit != 0 && result.len() >= limit {
                break;
            }
        }
    }
    Ok(result)
}

/// Which of Redis' `sunionDiffGenericCommand` operations to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Algebra {
    /// Members in any of the sets.
    Union,
    /// Members of the first set in none of the others.
    Diff,
}

fn union_or_diff(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: Algebra) -> Result<Set<Bstr>, CmdError> {
    let present = check_sets(ctx, keys)?;
    let db = &ctx.store.dbs[ctx.client.db];
    let sets: Vec<Option<&Set<Bstr>>> = keys
        .iter()
        .zip(&present)
        .map(|(k, &p)| p.then(|| peek_set(db, k)))
        .collect();
    let mut result = Set::default();
    match op {
        Algebra::Union => {
            for set in sets.iter().flatten() {
                result.extend(set.iter().cloned());
            }
        }
        Algebra::Diff => {
            if let Some(first) = sets[0] {
                for member in first {
                    if !sets[1..]
                        .iter()
                        .flatten()
                        .any(|s| s.contains(member.as_bytes()))
                    {
                        result.insert(member.clone());
                    }
                }
            }
        }
    }
    Ok(result)
}

/// Stores `members` at `destination` (replacing any value and its TTL), or deletes
/// `destination` if there are none; replies with the stored cardinality.
fn store(ctx: &mut Ctx<'_>, destination: &[u8], members: Set<Bstr>) -> CmdResult {
    let now_ms = ctx.now_ms;
    let len = members.len();
    if len > 0 {
        ctx.db().set(destination, Value::Set(Box::new(members)));
        ctx.touch(destination);
    } else if ctx.db().contains(destination, now_ms) {
        ctx.db().remove(destination);
        ctx.touch(destination);
    }
    ctx.reply.int(len as i64);
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = intersection(ctx, &args[1..], 0)?;
    ctx.reply.set(members.len());
    for member in &members {
        ctx.reply.bulk(member);
    }
    Ok(())
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let numkeys = match args::int(args[1]) {
        Ok(n) if n >= 1 => n as usize,
        _ => return Err(CmdError::new("ERR numkeys should be greater than 0")),
    };
    if numkeys > args.len() - 2 {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0;
    let mut index = 2 + numkeys;
    while index < args.len() {
        if args::is(args[index], "LIMIT") && index + 1 < args.len() {
            limit = match args::int(args[index + 1]) {
                Ok(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::new("ERR LIMIT can't be negative")),
            };
            index += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let members = intersection(ctx, &args[2..2 + numkeys], limit)?;
    ctx.reply.int(members.len() as i64);
    Ok(())
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = intersection(ctx, &args[2..], 0)?;
    store(ctx, args[1], members.into_iter().collect())
}

fn sunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = union_or_diff(ctx, &args[1..], Algebra::Union)?;
    reply_set(ctx.reply, &members);
    Ok(())
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = union_or_diff(ctx, &args[2..], Algebra::Union)?;
    store(ctx, args[1], members)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = union_or_diff(ctx, &args[1..], Algebra::Diff)?;
    reply_set(ctx.reply, &members);
    Ok(())
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let members = union_or_diff(ctx, &args[2..], Algebra::Diff)?;
    store(ctx, args[1], members)
}

// ---------------------------------------------------------------------------------------------
// SSCAN (the option parsing and cursor are shared with HSCAN)
// ---------------------------------------------------------------------------------------------

/// Options of HSCAN/SSCAN/ZSCAN after the cursor.
#[derive(Debug)]
pub(crate) struct ScanOptions<'a> {
    /// Positions to visit per call (`COUNT`, default 10).
    pub count: usize,
    /// Glob the returned elements must match (`MATCH`); `None` when absent or `*`.
    pub pattern: Option<&'a [u8]>,
}

/// Parses a SCAN cursor like Redis' `strtoul`-based `parseScanCursorOrReply`: decimal digits
/// with an optional sign (a `-` wraps around), nothing else (`ERR invalid cursor`).
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::new("ERR invalid cursor");
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul parses nothing and the whole (empty) string is consumed only if it is empty.
        return if arg.is_empty() {
            Ok(0)
        } else {
            Err(invalid())
        };
    }
    let mut cursor: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        cursor = cursor
            .checked_mul(10)
            .and_then(|c| c.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if negative {
        cursor.wrapping_neg()
    } else {
        cursor
    })
}

/// Parses `[MATCH pattern] [COUNT count]` in any order (repeats allowed, the last wins).
pub(crate) fn parse_scan_options<'a>(options: &[&'a [u8]]) -> Result<ScanOptions<'a>, CmdError> {
    let mut parsed = ScanOptions {
        count: 10,
        pattern: None,
    };
    let mut index = 0;
    while index < options.len() {
        let has_value = index + 1 < options.len();
        if args::is(options[index], "COUNT") && has_value {
            let count = args::int(options[index + 1])?;
            if count < 1 {
                return Err(CmdError::SYNTAX);
            }
            parsed.count = count as usize;
        } else if args::is(options[index], "MATCH") && has_value {
            let pattern = options[index + 1];
            parsed.pattern = (pattern != b"*").then_some(pattern);
        } else {
            return Err(CmdError::SYNTAX);
        }
        index += 2;
    }
    Ok(parsed)
}

impl ScanOptions<'_> {
    pub(crate) fn matches(&self, element: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| crate::config::string_match(p, element, false))
    }
}

/// Writes a SCAN-family reply: `[cursor, [elements...]]`.
pub(crate) fn reply_scan(reply: &mut Reply, cursor: u64, elements: &[&[u8]]) {
    reply.array(2);
    reply.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    reply.array(elements.len());
    for element in elements {
        reply.bulk(element);
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. An intset-sized set is returned whole with
/// cursor 0, as Redis does; larger sets are walked by position (see `Db::scan`).
fn sscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[2])?;
    let (set, reply) = read_set(ctx, args[1])?;
    let Some(set) = set else {
        reply_scan(reply, 0, &[]);
        return Ok(());
    };
    let options = parse_scan_options(&args[3..])?;
    let mut elements: Vec<&[u8]> = Vec::new();
    let next = if is_intset(set.len(), set.iter()) {
        elements.extend(members_in_order(set).into_iter().map(|m| m.as_bytes()));
        0
    } else {
        scan_positions(set.len(), cursor, options.count, |i| elements.push(&set[i]))
    };
    elements.retain(|e| options.matches(e));
    reply_scan(reply, next, &elements);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b"+17"), Ok(17));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert!(parse_cursor(b"1x").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"-").is_err());
        assert!(parse_cursor(b"99999999999999999999").is_err());
    }

    #[test]
    fn scan_options_validate_count_and_keywords() {
        let parsed = parse_scan_options(&[b"match", b"a*", b"COUNT", b"5"]).unwrap();
        assert_eq!(parsed.count, 5);
        assert!(parsed.matches(b"abc") && !parsed.matches(b"bc"));
        assert!(parse_scan_options(&[b"*"]).unwrap_err() == CmdError::SYNTAX);
        assert!(parse_scan_options(&[b"count", b"0"]).unwrap_err() == CmdError::SYNTAX);
        assert!(parse_scan_options(&[b"count", b"x"]).unwrap_err() == CmdError::NOT_INTEGER);
        assert!(parse_scan_options(&[b"count"]).unwrap_err() == CmdError::SYNTAX);
        assert!(parse_scan_options(&[b"match", b"*"])
            .unwrap()
            .pattern
            .is_none());
    }

    #[test]
    fn integer_sets_walk_in_numeric_order_like_an_intset() {
        let set: Set<Bstr> = ["10", "-3", "2"]
            .iter()
            .map(|s| Bstr::new(s.as_bytes()))
            .collect();
        let order: Vec<&[u8]> = members_in_order(&set)
            .into_iter()
            .map(|m| m.as_bytes())
            .collect();
        assert_eq!(order, vec![b"-3".as_slice(), b"2", b"10"]);
        let mixed: Set<Bstr> = ["10", "a", "2"]
            .iter()
            .map(|s| Bstr::new(s.as_bytes()))
            .collect();
        let order: Vec<&[u8]> = members_in_order(&mixed)
            .into_iter()
            .map(|m| m.as_bytes())
            .collect();
        assert_eq!(order, vec![b"10".as_slice(), b"a", b"2"]);
    }
}
