//! Connection commands: PING, ECHO, QUIT, SELECT.

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::spec;

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "ping",
        -1,
        FAST | STALE | LOADING | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@fast @connection",
        ping
    ),
    spec!(
        "echo",
        2,
        FAST | STALE | LOADING,
        0,
        0,
        0,
        "@fast @connection",
        echo
    ),
    spec!(
        "quit",
        -1,
        FAST | STALE | LOADING | NO_AUTH | ALLOW_BUSY | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@fast @connection",
        quit
    ),
    spec!(
        "select",
        2,
        FAST | STALE | LOADING,
        0,
        0,
        0,
        "@fast @connection",
        select
    ),
];

/// PING [message]: `+PONG`, or the message as a bulk string; in RESP2 subscribed mode
/// `["pong", message]`, as Redis does.
fn ping(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::arity(args[0]));
    }
    if ctx.client.in_pubsub() && ctx.reply.resp == crate::protocol::Resp::V2 {
        ctx.reply.array(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(args.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match args.get(1) {
        Some(message) => ctx.reply.bulk(message),
        None => ctx.reply.simple("PONG"),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ctx.reply.bulk(args[1]);
    Ok(())
}

/// QUIT: `+OK`, then the connection closes once the reply is sent.
fn quit(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let index = args::int(args[1]).map_err(|_| CmdError::new("ERR invalid DB index"))?;
    if index < 0 || index as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.client.set_db(index as usize);
    ctx.reply.ok();
    Ok(())
}
