//! Sorted set commands.
//!
//! Every command follows the same three steps: parse (all argument errors before the key is
//! looked up, in Redis' order), apply to the [`ZSet`], reply. Replies follow Redis 7.0 in
//! both protocols: scores are bulk strings (`%.17g`) in RESP2 and doubles in RESP3; a
//! `WITHSCORES` range is a flat `[member, score, ...]` array in RESP2 and an array of
//! `[member, score]` pairs in RESP3.
//!
//! Complexity: the ordered index is a B-tree without rank counts, so a rank lookup
//! (`ZRANK`) is O(n), a rank range is O(min(start, len - end) + count), score and lex
//! ranges are O(log n + count), and counts (`ZCOUNT`, `ZLEXCOUNT`) are O(log n + count).

use super::args::{self, is};
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::reply::format_double;
use crate::protocol::{Reply, Resp};
use crate::spec;
use crate::storage::blocking::{BlockOp, Waiter};
use crate::storage::value::Set;
use crate::storage::zset::{Entry, LexBound, LexRange, ScoreRange, ZSet};
use crate::storage::{Bstr, Db, Value};

use super::flags::*;

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @sortedset @fast",
        zadd
    ),
    spec!(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        "@write @sortedset @fast",
        zincrby
    ),
    spec!(
        "zrem",
        -3,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @sortedset @fast",
        zrem
    ),
    spec!(
        "zcard",
        2,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zcard
    ),
    spec!(
        "zscore",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zscore
    ),
    spec!(
        "zmscore",
        -3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zmscore
    ),
    spec!(
        "zrank",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zrank
    ),
    spec!(
        "zrevrank",
        3,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zrevrank
    ),
    spec!(
        "zcount",
        4,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zcount
    ),
    spec!(
        "zlexcount",
        4,
        READONLY | FAST,
        1,
        1,
        1,
        "@read @sortedset @fast",
        zlexcount
    ),
    spec!(
        "zrange",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrange
    ),
    spec!(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        1,
        2,
        1,
        "@write @sortedset @slow",
        zrangestore
    ),
    spec!(
        "zrevrange",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrevrange
    ),
    spec!(
        "zrangebyscore",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrangebyscore
    ),
    spec!(
        "zrevrangebyscore",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrevrangebyscore
    ),
    spec!(
        "zrangebylex",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrangebylex
    ),
    spec!(
        "zrevrangebylex",
        -4,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrevrangebylex
    ),
    spec!(
        "zremrangebyrank",
        4,
        WRITE,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zremrangebyrank
    ),
    spec!(
        "zremrangebyscore",
        4,
        WRITE,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zremrangebyscore
    ),
    spec!(
        "zremrangebylex",
        4,
        WRITE,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zremrangebylex
    ),
    spec!(
        "zpopmin",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @sortedset @fast",
        zpopmin
    ),
    spec!(
        "zpopmax",
        -2,
        WRITE | FAST,
        1,
        1,
        1,
        "@write @sortedset @fast",
        zpopmax
    ),
    spec!(
        "zmpop",
        -4,
        WRITE | MOVABLEKEYS,
        0,
        0,
        0,
        "@write @sortedset @slow",
        zmpop
    ),
    spec!(
        "zrandmember",
        -2,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zrandmember
    ),
    spec!(
        "zscan",
        -3,
        READONLY,
        1,
        1,
        1,
        "@read @sortedset @slow",
        zscan
    ),
    spec!(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zunionstore
    ),
    spec!(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zinterstore
    ),
    spec!(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        1,
        1,
        1,
        "@write @sortedset @slow",
        zdiffstore
    ),
    spec!(
        "zunion",
        -3,
        READONLY | MOVABLEKEYS,
        0,
        0,
        0,
        "@read @sortedset @slow",
        zunion
    ),
    spec!(
        "zinter",
        -3,
        READONLY | MOVABLEKEYS,
        0,
        0,
        0,
        "@read @sortedset @slow",
        zinter
    ),
    spec!(
        "zdiff",
        -3,
        READONLY | MOVABLEKEYS,
        0,
        0,
        0,
        "@read @sortedset @slow",
        zdiff
    ),
    spec!(
        "zintercard",
        -3,
        READONLY | MOVABLEKEYS,
        0,
        0,
        0,
        "@read @sortedset @slow",
        zintercard
    ),
    spec!(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        1,
        -2,
        1,
        "@write @sortedset @fast @blocking",
        bzpopmin
    ),
    spec!(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        1,
        -2,
        1,
        "@write @sortedset @fast @blocking",
        bzpopmax
    ),
    spec!(
        "bzmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        0,
        0,
        0,
        "@write @sortedset @slow @blocking",
        bzmpop
    ),
];

const ERR_NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const ERR_NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";

/* ---------------------------------------------------------------------------------------
 * Lookups and replies shared by the commands
 * ------------------------------------------------------------------------------------- */

/// The sorted set at `key` for reading: `Ok(None)` when missing, WRONGTYPE for other types.
/// Counts a keyspace hit or miss.
fn read_zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, CmdError> {
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    match db.lookup(key, now) {
        None => {
            crate::server::shared::Stats::add(&ctx.shared.stats.keyspace_misses, 1);
            Ok(None)
        }
        Some(Value::ZSet(z)) => {
            crate::server::shared::Stats::add(&ctx.shared.stats.keyspace_hits, 1);
            Ok(Some(z))
        }
        Some(_) => {
            crate::server::shared::Stats::add(&ctx.shared.stats.keyspace_hits, 1);
            Err(CmdError::WRONG_TYPE)
        }
    }
}

/// The sorted set at `key` in `db` for writing: `Ok(None)` when missing.
fn write_zset<'a>(
    db: &'a mut Db,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a mut ZSet>, CmdError> {
    match db.lookup_mut(key, now_ms) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(CmdError::WRONG_TYPE),
    }
}

/// Writes `entries` as a range reply: members only, or with scores (flat in RESP2, pairs in
/// RESP3).
fn reply_entries<'a>(
    reply: &mut Reply,
    entries: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) {
    let n = entries.len();
    if withscores && reply.resp == Resp::V2 {
        reply.array(n * 2);
    } else {
        reply.array(n);
    }
    for (member, score) in entries {
        if withscores && reply.resp == Resp::V3 {
            reply.array(2);
        }
        reply.bulk(member);
        if withscores {
            reply.double(score);
        }
    }
}

/// Parses a score range bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.split_first() {
        Some((b'(', rest)) => args::parse_float(rest).map(|v| (v, true)),
        _ => args::parse_float(arg).map(|v| (v, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let ((min, min_exclusive), (max, max_exclusive)) =
        match (parse_score_bound(min), parse_score_bound(max)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(CmdError::new(ERR_NOT_FLOAT_RANGE)),
        };
    Ok(ScoreRange {
        min,
        max,
        min_exclusive,
        max_exclusive,
    })
}

/// Parses a lex range bound: `-`, `+`, `[member`, `(member`.
fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg.split_first()? {
        (b'-', []) => Some(LexBound::Min),
        (b'+', []) => Some(LexBound::Max),
        (b'[', rest) => Some(LexBound::Inclusive(rest.to_vec())),
        (b'(', rest) => Some(LexBound::Exclusive(rest.to_vec())),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::new(ERR_NOT_LEX_RANGE)),
    }
}

/// Records a write to `key` that changed `changes` elements (dirty counts each, as Redis).
fn touch_n(ctx: &mut Ctx<'_>, key: &[u8], changes: usize) {
    debug_assert!(changes > 0);
    ctx.touch(key);
    ctx.store.dirty += changes as u64 - 1;
}

/* ---------------------------------------------------------------------------------------
 * ZADD, ZINCRBY, ZREM
 * ------------------------------------------------------------------------------------- */

fn zadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], and ZINCRBY.
fn zadd_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], zincrby: bool) -> CmdResult {
    let key = args[1];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, zincrby);
    let mut index = 2;
    while index < args.len() {
        let opt = args[index];
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "ch") {
            ch = true;
        } else if is(opt, "incr") {
            incr = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            break;
        }
        index += 1;
    }
    let pairs = &args[index..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    if nx && xx {
        return Err(CmdError::new(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::new(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() > 2 {
        return Err(CmdError::new(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let scores = pairs
        .chunks(2)
        .map(|pair| args::float(pair[0]))
        .collect::<Result<Vec<f64>, _>>()?;

    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    let exists = write_zset(db, key, now)?.is_some();
    let (mut added, mut updated, mut processed) = (0usize, 0usize, 0usize);
    let mut last_score = 0.0;
    let mut nan = false;
    if exists || !xx {
        let Value::ZSet(z) = db.entry_or_insert_with(key, now, Value::new_zset) else {
            unreachable!("type checked above");
        };
        for (pair, &score) in pairs.chunks(2).zip(&scores) {
            let member = pair[1];
            match z.score(member) {
                Some(current) => {
                    if nx {
                        continue;
                    }
                    let new = if incr { current + score } else { score };
                    if new.is_nan() {
                        nan = true;
                        break;
                    }
                    if (lt && new >= current) || (gt && new <= current) {
                        continue;
                    }
                    processed += 1;
                    last_score = new;
                    if new != current {
                        z.insert(member, new);
                        updated += 1;
                    }
                }
                None => {
                    if xx {
                        continue;
                    }
                    z.insert(member, score);
                    added += 1;
                    processed += 1;
                    last_score = score;
                }
            }
        }
        db.remove_if_empty(key);
    }
    if added + updated > 0 {
        touch_n(ctx, key, added + updated);
        ctx.signal_ready(key);
    }
    if nan {
        return Err(CmdError::new(ERR_NAN));
    }
    if incr {
        if processed > 0 {
            ctx.reply
                .double(if last_score == 0.0 { 0.0 } else { last_score });
        } else {
            ctx.reply.null();
        }
    } else {
        ctx.reply
            .int((if ch { added + updated } else { added }) as i64);
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    let Some(z) = write_zset(db, key, now)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for member in &args[2..] {
        if z.remove(member).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    db.remove_if_empty(key);
    if deleted > 0 {
        touch_n(ctx, key, deleted);
    }
    ctx.reply.int(deleted as i64);
    Ok(())
}

/* ---------------------------------------------------------------------------------------
 * Point reads: ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT
 * ------------------------------------------------------------------------------------- */

fn zcard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let len = read_zset(ctx, args[1])?.map_or(0, ZSet::len);
    ctx.reply.int(len as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    match read_zset(ctx, args[1])?.and_then(|z| z.score(args[2])) {
        Some(score) => ctx.reply.double(score),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let scores: Vec<Option<f64>> = match read_zset(ctx, args[1])? {
        Some(z) => args[2..].iter().map(|m| z.score(m)).collect(),
        None => vec![None; args.len() - 2],
    };
    ctx.reply.array(scores.len());
    for score in scores {
        match score {
            Some(score) => ctx.reply.double(score),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

/// ZRANK / ZREVRANK: O(n) (the tree keeps no rank counts).
fn zrank_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], reverse: bool) -> CmdResult {
    let rank = read_zset(ctx, args[1])?.and_then(|z| {
        z.rank(args[2])
            .map(|rank| if reverse { z.len() - 1 - rank } else { rank })
    });
    match rank {
        Some(rank) => ctx.reply.int(rank as i64),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let range = parse_score_range(args[2], args[3])?;
    let count = read_zset(ctx, args[1])?.map_or(0, |z| z.range_by_score(&range).count());
    ctx.reply.int(count as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let range = parse_lex_range(args[2], args[3])?;
    let count = read_zset(ctx, args[1])?.map_or(0, |z| z.range_by_lex(&range, false).count());
    ctx.reply.int(count as i64);
    Ok(())
}

/* ---------------------------------------------------------------------------------------
 * Ranges: ZRANGE and its older forms, ZRANGESTORE
 * ------------------------------------------------------------------------------------- */

/// How a range command selects elements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    /// Not fixed by the command name (ZRANGE, ZRANGESTORE): BYSCORE/BYLEX may choose.
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
enum RangeSpec {
    Rank { start: i64, end: i64 },
    Score(ScoreRange),
    Lex(LexRange),
}

/// Elements `spec` selects, in reply order. `offset`/`limit` apply to score and lex ranges
/// (a negative offset selects nothing, a negative limit means no limit, as in Redis).
fn select_range<'a>(
    z: &'a ZSet,
    spec: &'a RangeSpec,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> Vec<&'a Entry> {
    let len = z.len() as i64;
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    match spec {
        RangeSpec::Rank { start, end } => {
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            start = start.max(0);
            if start > end || start >= len {
                return Vec::new();
            }
            end = end.min(len - 1);
            let (low, high) = if reverse {
                (len - 1 - end, len - 1 - start)
            } else {
                (start, end)
            };
            z.range_by_rank(low as usize, high as usize, reverse)
        }
        _ if offset < 0 || (offset > 0 && offset >= len) => Vec::new(),
        RangeSpec::Score(range) => {
            let offset = offset as usize;
            if reverse {
                z.range_by_score(range)
                    .rev()
                    .skip(offset)
                    .take(take)
                    .collect()
            } else {
                z.range_by_score(range).skip(offset).take(take).collect()
            }
        }
        RangeSpec::Lex(range) => z
            .range_by_lex(range, reverse)
            .skip(offset as usize)
            .take(take)
            .collect(),
    }
}

fn zrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Auto, None)
}

fn zrangestore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 2, Some(args[1]), RangeKind::Auto, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeKind::Lex, Some(true))
}

/// All range commands: `args[source_index]` is the source key, followed by min, max and
/// options. `kind`/`reverse` are fixed by the older command names, chosen by options for
/// ZRANGE and ZRANGESTORE. With `destination` the result is stored instead of returned.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    source_index: usize,
    destination: Option<&[u8]>,
    mut kind: RangeKind,
    mut reverse: Option<bool>,
) -> CmdResult {
    let key = args[source_index];
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut index = source_index + 3;
    while index < args.len() {
        let opt = args[index];
        let left = args.len() - index - 1;
        if destination.is_none() && is(opt, "withscores") {
            withscores = true;
        } else if is(opt, "limit") && left >= 2 {
            offset = args::int(args[index + 1])?;
            limit = args::int(args[index + 2])?;
            index += 2;
        } else if reverse.is_none() && is(opt, "rev") {
            reverse = Some(true);
        } else if kind == RangeKind::Auto && is(opt, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(opt, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(CmdError::SYNTAX);
        }
        index += 1;
    }
    let reverse = reverse.unwrap_or(false);
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit != -1 && kind == RangeKind::Rank {
        return Err(CmdError::new(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(CmdError::new(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (args[source_index + 1], args[source_index + 2]);
    if reverse && kind != RangeKind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let spec = match kind {
        RangeKind::Rank => RangeSpec::Rank {
            start: args::int(min)?,
            end: args::int(max)?,
        },
        RangeKind::Score => RangeSpec::Score(parse_score_range(min, max)?),
        RangeKind::Lex => RangeSpec::Lex(parse_lex_range(min, max)?),
        RangeKind::Auto => unreachable!("resolved above"),
    };

    let Some(destination) = destination else {
        let Ctx {
            store,
            client,
            reply,
            shared,
            now_ms,
            ..
        } = ctx;
        let z = match store.dbs[client.db].lookup(key, *now_ms) {
            None => {
                crate::server::shared::Stats::add(&shared.stats.keyspace_misses, 1);
                reply.array(0);
                return Ok(());
            }
            Some(Value::ZSet(z)) => z,
            Some(_) => return Err(CmdError::WRONG_TYPE),
        };
        crate::server::shared::Stats::add(&shared.stats.keyspace_hits, 1);
        let selected = select_range(z, &spec, reverse, offset, limit);
        reply_entries(
            reply,
            selected.iter().map(|e| (e.member.as_bytes(), e.score)),
            withscores,
        );
        return Ok(());
    };
    let result = match read_zset(ctx, key)? {
        None => ZSet::default(),
        Some(z) => {
            let mut out = ZSet::default();
            for entry in select_range(z, &spec, reverse, offset, limit) {
                out.insert(&entry.member, entry.score);
            }
            out
        }
    };
    store_result(ctx, destination, result);
    Ok(())
}

/// Stores `result` at `destination` (replacing any value and TTL) and replies its length; an
/// empty result deletes `destination` instead.
fn store_result(ctx: &mut Ctx<'_>, destination: &[u8], result: ZSet) {
    let len = result.len();
    let db = &mut ctx.store.dbs[ctx.client.db];
    if len > 0 {
        db.set(destination, Value::ZSet(Box::new(result)));
        ctx.touch(destination);
        ctx.signal_ready(destination);
    } else if db.remove(destination).is_some() {
        ctx.touch(destination);
    }
    ctx.reply.int(len as i64);
}

/* ---------------------------------------------------------------------------------------
 * ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX
 * ------------------------------------------------------------------------------------- */

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let spec = RangeSpec::Rank {
        start: args::int(args[2])?,
        end: args::int(args[3])?,
    };
    zremrange_generic(ctx, args[1], spec)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let spec = RangeSpec::Score(parse_score_range(args[2], args[3])?);
    zremrange_generic(ctx, args[1], spec)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let spec = RangeSpec::Lex(parse_lex_range(args[2], args[3])?);
    zremrange_generic(ctx, args[1], spec)
}

fn zremrange_generic(ctx: &mut Ctx<'_>, key: &[u8], spec: RangeSpec) -> CmdResult {
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    let Some(z) = write_zset(db, key, now)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let doomed: Vec<Bstr> = select_range(z, &spec, false, 0, -1)
        .into_iter()
        .map(|e| e.member.clone())
        .collect();
    for member in &doomed {
        z.remove(member);
    }
    db.remove_if_empty(key);
    if !doomed.is_empty() {
        touch_n(ctx, key, doomed.len());
    }
    ctx.reply.int(doomed.len() as i64);
    Ok(())
}

/* ---------------------------------------------------------------------------------------
 * Pops: ZPOPMIN, ZPOPMAX, ZMPOP and the blocking BZPOPMIN, BZPOPMAX, BZMPOP
 * ------------------------------------------------------------------------------------- */

/// How a pop's reply is shaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopReply {
    /// ZPOPMIN/ZPOPMAX: `[member, score, ...]` (pairs in RESP3 when a count was given).
    Plain { nested: bool },
    /// BZPOPMIN/BZPOPMAX: `[key, member, score]`.
    WithKey,
    /// ZMPOP/BZMPOP: `[key, [[member, score], ...]]`.
    Nested,
}

/// Pops up to `count` elements from the zset at `key` in `db` (which must exist and be
/// non-empty), writes the reply, deletes the key if emptied. Returns how many were popped.
fn pop_and_reply(
    db: &mut Db,
    key: &[u8],
    now_ms: u64,
    max: bool,
    count: usize,
    shape: PopReply,
    reply: &mut Reply,
) -> usize {
    let Some(Value::ZSet(z)) = db.lookup_mut(key, now_ms) else {
        unreachable!("caller checked the key holds a zset");
    };
    let n = count.min(z.len());
    debug_assert!(n > 0);
    match shape {
        PopReply::Plain { nested: true } => reply.array(n),
        PopReply::Plain { nested: false } => reply.array(n * 2),
        PopReply::WithKey => {
            reply.array(n * 2 + 1);
            reply.bulk(key);
        }
        PopReply::Nested => {
            reply.array(2);
            reply.bulk(key);
            reply.array(n);
        }
    }
    let nested = matches!(shape, PopReply::Nested | PopReply::Plain { nested: true });
    for _ in 0..n {
        let entry = z.pop(max).expect("n <= len");
        if nested {
            reply.array(2);
        }
        reply.bulk(&entry.member);
        reply.double(entry.score);
    }
    db.remove_if_empty(key);
    n
}

fn pop_command_name(max: bool) -> &'static [u8] {
    if max {
        b"ZPOPMAX"
    } else {
        b"ZPOPMIN"
    }
}

fn zpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, args, true)
}

/// ZPOPMIN/ZPOPMAX key [count].
fn zpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::SYNTAX);
    }
    let count = match args.get(2) {
        Some(arg) => Some(args::positive(arg)?),
        None => None,
    };
    let key = args[1];
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    if write_zset(db, key, now)?.is_none() || count == Some(0) {
        ctx.reply.array(0);
        return Ok(());
    }
    let nested = ctx.reply.resp == Resp::V3 && count.is_some();
    let popped = pop_and_reply(
        db,
        key,
        now,
        max,
        count.unwrap_or(1),
        PopReply::Plain { nested },
        ctx.reply,
    );
    touch_n(ctx, key, popped);
    Ok(())
}

/// Parses `numkeys key... MIN|MAX [COUNT count]` starting at `args[numkeys_index]`; returns
/// (keys, max, count).
fn parse_mpop<'a>(
    args: &[&'a [u8]],
    numkeys_index: usize,
) -> Result<(Vec<&'a [u8]>, bool, usize), CmdError> {
    let numkeys = match args::int(args[numkeys_index]) {
        Ok(n) if n >= 1 => n as usize,
        _ => return Err(CmdError::new("ERR numkeys should be greater than 0")),
    };
    let where_index = numkeys_index.saturating_add(numkeys).saturating_add(1);
    if where_index >= args.len() {
        return Err(CmdError::SYNTAX);
    }
    let max = if is(args[where_index], "min") {
        false
    } else if is(args[where_index], "max") {
        true
    } else {
        return Err(CmdError::SYNTAX);
    };
    let mut count = None;
    let mut index = where_index + 1;
    while index < args.len() {
        if count.is_none() && is(args[index], "count") && index + 1 < args.len() {
            count = match args::int(args[index + 1]) {
                Ok(n) if n >= 1 => Some(n as usize),
                _ => return Err(CmdError::new("ERR count should be greater than 0")),
            };
            index += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let keys = args[numkeys_index + 1..where_index].to_vec();
    Ok((keys, max, count.unwrap_or(1)))
}

/// The first of `keys` holding a non-empty zset; WRONGTYPE if a key before it (or it) holds
/// another type.
fn first_nonempty<'a>(
    db: &mut Db,
    keys: &[&'a [u8]],
    now_ms: u64,
) -> Result<Option<&'a [u8]>, CmdError> {
    for &key in keys {
        if let Some(z) = write_zset(db, key, now_ms)? {
            if !z.is_empty() {
                return Ok(Some(key));
            }
        }
    }
    Ok(None)
}

/// Pops from the first non-empty key for ZMPOP/BZPOPMIN/BZMPOP served at once, and sets
/// the propagation to `ZPOPMIN key [n]` as Redis 7.0 does. Returns false if no key had data.
fn mpop_now(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: Option<usize>,
) -> Result<bool, CmdError> {
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[ctx.client.db];
    let Some(key) = first_nonempty(db, keys, now)? else {
        return Ok(false);
    };
    let shape = if count.is_some() {
        PopReply::Nested
    } else {
        PopReply::WithKey
    };
    let popped = pop_and_reply(db, key, now, max, count.unwrap_or(1), shape, ctx.reply);
    touch_n(ctx, key, popped);
    let mut command = vec![pop_command_name(max).to_vec(), key.to_vec()];
    if count.is_some() {
        command.push(popped.to_string().into_bytes());
    }
    ctx.propagate_as(vec![command]);
    Ok(true)
}

fn zmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 1)?;
    if !mpop_now(ctx, &keys, max, Some(count))? {
        ctx.reply.null_array();
    }
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args[1..args.len() - 1].to_vec();
    blocking_pop(ctx, args[args.len() - 1], &keys, false, None)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let keys = args[1..args.len() - 1].to_vec();
    blocking_pop(ctx, args[args.len() - 1], &keys, true, None)
}

fn bzmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 2)?;
    blocking_pop(ctx, args[1], &keys, max, Some(count))
}

/// BZPOPMIN/BZPOPMAX (`count: None`) and BZMPOP: pop at once if a key has data (or inside
/// EXEC, where a client cannot block: null array), otherwise block on all `keys`.
fn blocking_pop(
    ctx: &mut Ctx<'_>,
    timeout: &[u8],
    keys: &[&[u8]],
    max: bool,
    count: Option<usize>,
) -> CmdResult {
    let deadline = args::timeout_deadline(timeout, ctx.now_ms)?;
    if mpop_now(ctx, keys, max, count)? {
        return Ok(());
    }
    if ctx.client.in_exec {
        ctx.reply.null_array();
        return Ok(());
    }
    ctx.store.blocking.block(Waiter {
        client_id: ctx.client.id,
        core: ctx.client.core,
        conn: ctx.client.conn,
        db: ctx.client.db,
        keys: keys.iter().map(|k| Bstr::new(k)).collect(),
        op: BlockOp::ZSetPop { max, count },
        resp: ctx.reply.resp,
    });
    ctx.client.blocked = Some(deadline);
    ctx.client
        .info
        .blocked
        .store(true, std::sync::atomic::Ordering::Relaxed);
    ctx.propagate = super::Propagate::Nothing;
    Ok(())
}

/// Serves one waiter blocked on `key` (which may now hold data). Returns false, changing
/// nothing, if `key` has nothing for it; otherwise performs the pop (propagating it), writes
/// the reply into `reply`, and returns true.
pub fn serve_blocked(ctx: &mut Ctx<'_>, waiter: &Waiter, key: &Bstr, reply: &mut Reply) -> bool {
    let BlockOp::ZSetPop { max, count } = waiter.op else {
        debug_assert!(false, "zset service asked for a list waiter");
        return false;
    };
    let now = ctx.now_ms;
    let db = &mut ctx.store.dbs[waiter.db];
    match db.lookup(key, now) {
        Some(Value::ZSet(z)) if !z.is_empty() => {}
        _ => return false,
    }
    let shape = if count.is_some() {
        PopReply::Nested
    } else {
        PopReply::WithKey
    };
    let popped = pop_and_reply(db, key, now, max, count.unwrap_or(1), shape, reply);
    let mut command = vec![pop_command_name(max).to_vec(), key.to_vec()];
    if count.is_some() {
        command.push(popped.to_string().into_bytes());
    }
    ctx.store.propagation.feed(waiter.db, &command);
    ctx.store.touch(waiter.db, key);
    ctx.store.dirty += popped as u64;
    true
}

/* ---------------------------------------------------------------------------------------
 * ZRANDMEMBER, ZSCAN
 * ------------------------------------------------------------------------------------- */

fn zrandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let Some(count_arg) = args.get(2) else {
        match read_zset(ctx, args[1])? {
            Some(z) => {
                let index = rand::random::<usize>() % z.len();
                let member = z.scores().get_index(index).expect("in range").0.clone();
                ctx.reply.bulk(&member);
            }
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let count = args::int(count_arg)?;
    if count == i64::MIN {
        return Err(CmdError::new(format!(
            "ERR value is out of range, must be between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let withscores = match args.len() {
        3 => false,
        4 if is(args[3], "withscores") => true,
        _ => return Err(CmdError::SYNTAX),
    };
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::new("ERR value is out of range"));
    }
    let picked: Vec<(Bstr, f64)> = match read_zset(ctx, args[1])? {
        None => Vec::new(),
        Some(z) => {
            let scores = z.scores();
            let size = scores.len();
            let at = |i: usize| {
                let (m, s) = scores.get_index(i).expect("in range");
                (m.clone(), *s)
            };
            if count < 0 {
                let mut rng = rand::thread_rng();
                (0..count.unsigned_abs())
                    .map(|_| at(rand::Rng::gen_range(&mut rng, 0..size)))
                    .collect()
            } else if count as usize >= size {
                z.iter().map(|(m, s)| (m.clone(), s)).collect()
            } else {
                rand::seq::index::sample(&mut rand::thread_rng(), size, count as usize)
                    .into_iter()
                    .map(at)
                    .collect()
            }
        }
    };
    reply_entries(
        ctx.reply,
        picked.iter().map(|(m, s)| (m.as_bytes(), *s)),
        withscores,
    );
    Ok(())
}

/// Sorted sets small enough for Redis' listpack encoding (`zset-max-listpack-entries` 128,
/// `zset-max-listpack-value` 64): ZSCAN returns them whole, in order, with cursor 0.
fn is_small(z: &ZSet) -> bool {
    const LISTPACK_ENTRIES_MAX: usize = 128;
    const LISTPACK_VALUE_MAX: usize = 64;
    z.len() <= LISTPACK_ENTRIES_MAX && z.iter().all(|(m, _)| m.len() <= LISTPACK_VALUE_MAX)
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count].
fn zscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let cursor = std::str::from_utf8(args[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| CmdError::new("ERR invalid cursor"))?;
    let Some(z) = read_zset(ctx, args[1])? else {
        ctx.reply.array(2);
        ctx.reply.bulk(b"0");
        ctx.reply.array(0);
        return Ok(());
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut index = 3;
    while index < args.len() {
        let left = args.len() - index - 1;
        if is(args[index], "count") && left >= 1 {
            let n = args::int(args[index + 1])?;
            if n < 1 {
                return Err(CmdError::SYNTAX);
            }
            count = n as usize;
            index += 2;
        } else if is(args[index], "match") && left >= 1 {
            pattern = Some(args[index + 1]).filter(|p| *p != b"*");
            index += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let mut found: Vec<(Bstr, f64)> = Vec::new();
    let next = if is_small(z) {
        found.extend(z.iter().map(|(m, s)| (m.clone(), s)));
        0
    } else {
        let scores = z.scores();
        crate::storage::db::scan_positions(scores.len(), cursor, count, |i| {
            let (m, s) = scores.get_index(i).expect("in range");
            found.push((m.clone(), *s));
        })
    };
    if let Some(pattern) = pattern {
        found.retain(|(m, _)| crate::config::string_match(pattern, m, false));
    }
    ctx.reply.array(2);
    ctx.reply.bulk(next.to_string().as_bytes());
    ctx.reply.array(found.len() * 2);
    for (member, score) in &found {
        ctx.reply.bulk(member);
        ctx.reply.bulk(format_double(*score).as_bytes());
    }
    Ok(())
}

/* ---------------------------------------------------------------------------------------
 * Set operations: ZUNION[STORE], ZINTER[STORE], ZDIFF[STORE], ZINTERCARD
 * ------------------------------------------------------------------------------------- */

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Combines two weighted scores; an undefined sum (`inf + -inf`) is 0, as in Redis.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => *target = target.min(value),
            Aggregate::Max => *target = target.max(value),
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (every member scores 1), or a
/// missing key (empty).
#[derive(Clone, Copy)]
enum Source<'a> {
    Missing,
    ZSet(&'a ZSet),
    Set(&'a Set<Bstr>),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::ZSet(z) => z.len(),
            Source::Set(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::ZSet(z) => z.score(member),
            Source::Set(s) => s.contains(member).then_some(1.0),
        }
    }

    fn members(&self) -> Box<dyn Iterator<Item = (&'a Bstr, f64)> + 'a> {
        match *self {
            Source::Missing => Box::new(std::iter::empty()),
            Source::ZSet(z) => Box::new(z.scores().iter().map(|(m, s)| (m, *s))),
            Source::Set(s) => Box::new(s.iter().map(|m| (m, 1.0))),
        }
    }
}

fn zunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 2, Some(args[1]), SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 2, Some(args[1]), SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 2, Some(args[1]), SetOp::Diff, false)
}

fn zunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 1, None, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 1, None, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 1, None, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    zsetop_generic(ctx, args, 1, None, SetOp::Inter, true)
}

/// The set operations: `args[numkeys_index]` is numkeys, the keys follow, then options
/// (WEIGHTS and AGGREGATE except for DIFF, WITHSCORES when not storing, LIMIT for
/// ZINTERCARD). Keys are type-checked before options are parsed, as in Redis.
fn zsetop_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    numkeys_index: usize,
    destination: Option<&[u8]>,
    op: SetOp,
    cardinality_only: bool,
) -> CmdResult {
    let numkeys = args::int(args[numkeys_index])?;
    if numkeys < 1 {
        return Err(CmdError::new(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(args[0]).to_lowercase()
        )));
    }
    if numkeys > (args.len() - numkeys_index - 1) as i64 {
        return Err(CmdError::SYNTAX);
    }
    let numkeys = numkeys as usize;
    let keys = &args[numkeys_index + 1..numkeys_index + 1 + numkeys];
    for key in keys {
        let now = ctx.now_ms;
        let found = ctx.store.dbs[ctx.client.db].lookup(key, now);
        let wrong = matches!(found, Some(v) if !matches!(v, Value::ZSet(_) | Value::Set(_)));
        if found.is_some() {
            ctx.hit();
        } else {
            ctx.miss();
        }
        if wrong {
            return Err(CmdError::WRONG_TYPE);
        }
    }
    let mut weights = vec![1.0; numkeys];
    let mut aggregate = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut index = numkeys_index + 1 + numkeys;
    while index < args.len() {
        let remaining = args.len() - index;
        let opt = args[index];
        if op != SetOp::Diff && !cardinality_only && remaining > numkeys && is(opt, "weights") {
            for (i, weight) in weights.iter_mut().enumerate() {
                *weight = args::parse_float(args[index + 1 + i])
                    .ok_or_else(|| CmdError::new("ERR weight value is not a float"))?;
            }
            index += 1 + numkeys;
        } else if op != SetOp::Diff && !cardinality_only && remaining >= 2 && is(opt, "aggregate") {
            let which = args[index + 1];
            aggregate = if is(which, "sum") {
                Aggregate::Sum
            } else if is(which, "min") {
                Aggregate::Min
            } else if is(which, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::SYNTAX);
            };
            index += 2;
        } else if destination.is_none() && !cardinality_only && is(opt, "withscores") {
            withscores = true;
            index += 1;
        } else if cardinality_only && remaining >= 2 && is(opt, "limit") {
            limit = match args::int(args[index + 1]) {
                Ok(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::new("ERR LIMIT can't be negative")),
            };
            index += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }

    let db = &ctx.store.dbs[ctx.client.db];
    let mut sources: Vec<(Source<'_>, f64)> = keys
        .iter()
        .zip(&weights)
        .map(|(key, &weight)| {
            let source = match db.peek(key) {
                Some(Value::ZSet(z)) => Source::ZSet(z),
                Some(Value::Set(s)) => Source::Set(s),
                _ => Source::Missing,
            };
            (source, weight)
        })
        .collect();
    if op != SetOp::Diff {
        sources.sort_by_key(|(source, _)| source.len());
    }
    let weighted = |score: f64, weight: f64| {
        let value = score * weight;
        if value.is_nan() {
            0.0
        } else {
            value
        }
    };
    let mut result = ZSet::default();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            let (first, first_weight) = sources[0];
            'members: for (member, score) in first.members() {
                let mut total = weighted(score, first_weight);
                for (other, weight) in &sources[1..] {
                    match other.score(member) {
                        Some(s) => aggregate.apply(&mut total, s * weight),
                        None => continue 'members,
                    }
                }
                if cardinality_only {
                    cardinality += 1;
                    if limit > 0 && cardinality >= limit {
                        break;
                    }
                } else {
                    result.insert(member, total);
                }
            }
        }
        SetOp::Union => {
            let mut totals: crate::storage::value::Map<&Bstr, f64> = Default::default();
            for (source, weight) in &sources {
                for (member, score) in source.members() {
                    let value = weighted(score, *weight);
                    match totals.get_mut(member) {
                        Some(total) => aggregate.apply(total, value),
                        None => {
                            totals.insert(member, value);
                        }
                    }
                }
            }
            for (member, total) in totals {
                result.insert(member, total);
            }
        }
        SetOp::Diff => {
            let (first, _) = sources[0];
            for (member, score) in first.members() {
                if sources[1..]
                    .iter()
                    .all(|(other, _)| other.score(member).is_none())
                {
                    result.insert(member, score);
                }
            }
        }
    }

    if let Some(destination) = destination {
        store_result(ctx, destination, result);
    } else if cardinality_only {
        ctx.reply.int(cardinality as i64);
    } else {
        reply_entries(
            ctx.reply,
            result
                .ordered()
                .iter()
                .map(|e| (e.member.as_bytes(), e.score)),
            withscores,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_replies_are_flat_in_resp2_and_pairs_in_resp3() {
        let entries = [(&b"a"[..], 1.5), (&b"b"[..], f64::NEG_INFINITY)];
        let mut r2 = Reply::new(Resp::V2);
        reply_entries(&mut r2, entries.iter().copied(), true);
        assert_eq!(
            r2.buf,
            b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$4\r\n-inf\r\n"
        );
        let mut r3 = Reply::new(Resp::V3);
        reply_entries(&mut r3, entries.iter().copied(), true);
        assert_eq!(
            r3.buf,
            b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,-inf\r\n"
        );
        let mut members = Reply::new(Resp::V3);
        reply_entries(&mut members, entries.iter().copied(), false);
        assert_eq!(members.buf, b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    #[test]
    fn pops_shape_replies_like_redis() {
        let mut db = Db::default();
        let mut z = ZSet::default();
        z.insert(b"a", 1.0);
        z.insert(b"b", 2.0);
        db.set(b"k", Value::ZSet(Box::new(z)));
        let mut r3 = Reply::new(Resp::V3);
        pop_and_reply(&mut db, b"k", 0, false, 1, PopReply::WithKey, &mut r3);
        assert_eq!(r3.buf, b"*3\r\n$1\r\nk\r\n$1\r\na\r\n,1\r\n");
        let mut r2 = Reply::new(Resp::V2);
        pop_and_reply(&mut db, b"k", 0, true, 5, PopReply::Nested, &mut r2);
        assert_eq!(
            r2.buf,
            b"*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert!(db.peek(b"k").is_none(), "emptied key is deleted");
    }

    #[test]
    fn sets_count_as_score_one_in_set_operations() {
        let mut set = Set::default();
        set.insert(Bstr::new(b"x"));
        let source = Source::Set(&set);
        assert_eq!(source.score(b"x"), Some(1.0));
        assert_eq!(source.members().count(), 1);
    }

    #[test]
    fn range_bounds_parse_like_redis() {
        assert!(parse_score_range(b"(1", b"+inf").is_ok());
        assert!(parse_score_range(b"((1", b"2").is_err());
        assert!(parse_score_range(b"nan", b"2").is_err());
        assert!(parse_lex_range(b"[a", b"(b").is_ok());
        assert!(parse_lex_range(b"a", b"+").is_err());
        assert!(parse_lex_range(b"-x", b"+").is_err());
    }
}
