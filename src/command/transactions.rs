//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI opens a queue; the dispatcher ([`super::call`]) queues every later command except
//! those of [`runs_inside_multi`], and marks the queue aborted when one is rejected (unknown
//! command, wrong arity). EXEC then runs the queue in one go — atomically, because the whole
//! read batch already holds the store lock — and replies with one array of the queued
//! commands' replies; a command failing at run time is one error element, not an abort.
//!
//! WATCH is optimistic locking: each watched key points at the connection's `watch_dirty`
//! flag, which [`Ctx::touch`] sets when any client modifies the key; EXEC then answers a
//! null array and runs nothing. EXEC, DISCARD, RESET and closing the connection drop all
//! watches.
//!
//! Replication: when the queue holds a write command, the commands it propagates are
//! wrapped in `MULTI` ... `EXEC` in the stream, so a replica applies them atomically too.

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{lookup, unknown_command, CmdError, CmdResult, CommandSpec, Ctx, Propagate};
use crate::server::client::MultiState;
use crate::server::shared::Stats;
use crate::spec;

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        0,
        0,
        0,
        "@fast @transaction",
        multi
    ),
    spec!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "@slow @transaction",
        exec
    ),
    spec!(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        0,
        0,
        0,
        "@fast @transaction",
        discard
    ),
    spec!(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        1,
        -1,
        1,
        "@fast @transaction",
        watch
    ),
    spec!(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        0,
        0,
        0,
        "@fast @transaction",
        unwatch
    ),
];

/// Commands that run immediately inside a MULTI block instead of being queued.
pub fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::new("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.client.info.in_multi.store(0, Ordering::Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// Drops the connection's watches and clears its dirty flag.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    for (db, key) in std::mem::take(&mut ctx.client.watched) {
        ctx.store.unwatch(db, &key, &ctx.client.watch_dirty);
    }
    ctx.client.watch_dirty.store(false, Ordering::Release);
}

/// Leaves MULTI (if in it) and drops all watches (DISCARD, RESET).
pub fn discard_state(ctx: &mut Ctx<'_>) {
    ctx.client.multi = None;
    ctx.client.info.in_multi.store(-1, Ordering::Relaxed);
    unwatch_all(ctx);
}

/// True if a watched key has expired since it was watched: Redis 7.0 counts that as a
/// change. (Keys already expired when watched were deleted by WATCH, see [`watch`].)
fn watched_key_expired(ctx: &Ctx<'_>) -> bool {
    ctx.client.watched.iter().any(|(db, key)| {
        ctx.store.dbs[*db]
            .expire_at(key)
            .is_some_and(|at| at <= ctx.now_ms)
    })
}

fn exec(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.propagate = Propagate::Nothing;
    let Some(queued) = ctx.client.multi.take() else {
        return Err(CmdError::new("ERR EXEC without MULTI"));
    };
    ctx.client.info.in_multi.store(-1, Ordering::Relaxed);
    let changed = ctx.client.watch_is_dirty() || watched_key_expired(ctx);
    unwatch_all(ctx);
    if queued.aborted {
        return Err(CmdError::new(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if changed {
        ctx.reply.null_array();
        return Ok(());
    }
    let writes = queued
        .commands
        .iter()
        .any(|command| lookup(&command[0]).is_some_and(|spec| spec.has(WRITE)));
    if writes {
        ctx.store
            .propagation
            .feed(ctx.client.db, &[b"MULTI".as_slice()]);
    }
    ctx.client.in_exec = true;
    ctx.reply.array(queued.commands.len());
    for command in &queued.commands {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let result = match lookup(args[0]) {
            Some(spec) => super::execute(ctx, spec, &args),
            None => Err(unknown_command(&args)),
        };
        if let Err(error) = result {
            Stats::add(&ctx.shared.stats.total_error_replies, 1);
            ctx.reply.error(&error.0);
        }
    }
    ctx.client.in_exec = false;
    if writes {
        ctx.store
            .propagation
            .feed(ctx.client.db, &[b"EXEC".as_slice()]);
    }
    *ctx.client.info.last_command.lock() = "exec";
    ctx.propagate = Propagate::Nothing;
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::new("ERR DISCARD without MULTI"));
    }
    discard_state(ctx);
    ctx.reply.ok();
    Ok(())
}

/// WATCH key [key ...]. A key that is already logically expired is deleted first (and that
/// deletion propagated, as any lazy expiry is), so that its later removal is not mistaken
/// for a change — in Redis 7.0 an already-expired watched key that goes away does not fail
/// the EXEC.
fn watch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::new("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    let replica = ctx.store.replica_mode;
    for key in &args[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k)| *d == db && &k[..] == *key)
        {
            continue;
        }
        ctx.store.dbs[db].expire_if_needed(key, ctx.now_ms, replica);
        ctx.store.watch(db, key, &ctx.client.watch_dirty);
        ctx.client
            .watched
            .push((db, crate::storage::Bstr::new(key)));
    }
    ctx.reply.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    unwatch_all(ctx);
    ctx.reply.ok();
    Ok(())
}
