//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET and CLIENT.
//!
//! Everything here acts on the calling connection's [`ClientState`] (owned by its core) or,
//! for CLIENT LIST / KILL / UNBLOCK, on other connections through what every core can see:
//! the client registry (`shared.clients`, id → [`ClientInfo`]) for reading, and the owning
//! core's inbox ([`CoreMessage`]) for acting. A connection is never touched from another
//! core directly.
//!
//! [`ClientState`]: crate::server::client::ClientState

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::{Reply, Resp};
use crate::server::client::ReplyMode;
use crate::server::shared::{unix_time_ms, ClientInfo, ClientKind, CoreMessage};
use crate::spec;
use crate::storage::blocking::BlockOp;

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
    spec!(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        0,
        0,
        0,
        "@fast @connection",
        auth
    ),
    spec!(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        0,
        0,
        0,
        "@fast @connection",
        hello
    ),
    spec!(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@fast @connection",
        reset
    ),
    spec!("client", -2, 0, 0, 0, 0, "@slow", client),
];

/// What HELLO reports as the server version (the Redis version ringkv is compatible with).
const REDIS_VERSION: &str = "7.0.15";

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

/// QUIT: `+OK`, then the connection closes once the reply is sent (which also drops its
/// watches, subscriptions and registry entry).
fn quit(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    // Redis parses the index as a C int.
    let index = args::int(args[1])?;
    if i32::try_from(index).is_err() {
        return Err(CmdError::new(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if index < 0 || index as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.client.set_db(index as usize);
    ctx.reply.ok();
    Ok(())
}

// -------------------------------------------------------------------------------------------
// AUTHENTICATION AND PROTOCOL
// -------------------------------------------------------------------------------------------

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks `username`/`password` against the only user ringkv has, `default`, whose
/// password is `requirepass` (none configured = `nopass`: any password is accepted, as
/// Redis' default user does).
fn credentials_valid(ctx: &Ctx<'_>, username: &[u8], password: &[u8]) -> bool {
    if username != b"default" {
        return false;
    }
    match &ctx.config.requirepass {
        None => true,
        Some(expected) => constant_time_eq(expected, password),
    }
}

/// Compares without an early exit on the first differing byte (no timing oracle on the
/// password's prefix).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AUTH [username] password.
fn auth(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (username, password): (&[u8], &[u8]) = match args.len() {
        2 => {
            if ctx.config.requirepass.is_none() {
                return Err(CmdError::new(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (b"default", args[1])
        }
        3 => (args[1], args[2]),
        _ => return Err(CmdError::SYNTAX),
    };
    if !credentials_valid(ctx, username, password) {
        return Err(CmdError::new(WRONGPASS));
    }
    ctx.client.authenticated = true;
    ctx.reply.ok();
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]: optionally authenticates,
/// names the connection and switches its protocol, then describes the server in the new
/// protocol.
fn hello(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut version = None;
    if let Some(arg) = args.get(1) {
        let requested = args::int(arg)
            .map_err(|_| CmdError::new("ERR Protocol version is not an integer or out of range"))?;
        version = match requested {
            2 => Some(Resp::V2),
            3 => Some(Resp::V3),
            _ => return Err(CmdError::new("NOPROTO unsupported protocol version")),
        };
    }
    let mut credentials = None;
    let mut name = None;
    let mut index = 2;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = args[index];
        if args::is(option, "AUTH") && more >= 2 {
            credentials = Some((args[index + 1], args[index + 2]));
            index += 3;
        } else if args::is(option, "SETNAME") && more >= 1 {
            name = Some(args[index + 1]);
            index += 2;
        } else {
            return Err(CmdError::new(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if let Some((username, password)) = credentials {
        if !credentials_valid(ctx, username, password) {
            return Err(CmdError::new(WRONGPASS));
        }
        ctx.client.authenticated = true;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::new(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        set_client_name(ctx, name)?;
    }
    if let Some(version) = version {
        set_protocol(ctx, version);
    }
    ctx.reply.map(7);
    ctx.reply.bulk(b"server");
    ctx.reply.bulk(b"redis");
    ctx.reply.bulk(b"version");
    ctx.reply.bulk(REDIS_VERSION.as_bytes());
    ctx.reply.bulk(b"proto");
    ctx.reply.int(match ctx.reply.resp {
        Resp::V2 => 2,
        Resp::V3 => 3,
    });
    ctx.reply.bulk(b"id");
    ctx.reply.int(ctx.client.id as i64);
    ctx.reply.bulk(b"mode");
    ctx.reply.bulk(b"standalone");
    ctx.reply.bulk(b"role");
    let replica = ctx.store.replica_mode;
    ctx.reply.bulk(if replica { b"replica" } else { b"master" });
    ctx.reply.bulk(b"modules");
    ctx.reply.array(0);
    Ok(())
}

/// Switches the connection's protocol; its subscriptions are re-registered so published
/// messages reach it encoded in the new version.
fn set_protocol(ctx: &mut Ctx<'_>, version: Resp) {
    if ctx.reply.resp == version {
        return;
    }
    ctx.reply.resp = version;
    ctx.client.info.resp.store(
        match version {
            Resp::V2 => 2,
            Resp::V3 => 3,
        },
        Ordering::Relaxed,
    );
    if ctx.client.in_pubsub() {
        super::pubsub::reregister(ctx);
    }
}

/// RESET: the connection's state back to that of a new connection (no transaction, no
/// watches, no subscriptions, db 0, RESP2, no name, replies on, not authenticated if a
/// password is required), replying `+RESET`.
fn reset(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    super::transactions::discard_state(ctx);
    super::pubsub::unsubscribe_everything(ctx);
    if ctx.client.monitor {
        let mut monitors = ctx.shared.monitor_list.lock();
        monitors.retain(|(id, _, _)| *id != ctx.client.id);
        ctx.shared.monitors.store(monitors.len(), Ordering::Relaxed);
        ctx.client.monitor = false;
        ctx.client.info.monitor.store(false, Ordering::Relaxed);
    }
    ctx.client.set_db(0);
    set_protocol(ctx, Resp::V2);
    *ctx.client.info.name.lock() = None;
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.authenticated = ctx.config.requirepass.is_none();
    ctx.reply.simple("RESET");
    Ok(())
}

// -------------------------------------------------------------------------------------------
// CLIENT
// -------------------------------------------------------------------------------------------

/// One CLIENT subcommand: name as in `client|<name>` (what CLIENT LIST's `cmd=` shows and
/// arity errors name), Redis arity counting `CLIENT` itself, handler.
struct Subcommand {
    full_name: &'static str,
    arity: i32,
    handler: super::Handler,
}

const CLIENT_SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        full_name: "client|id",
        arity: 2,
        handler: client_id,
    },
    Subcommand {
        full_name: "client|info",
        arity: 2,
        handler: client_info,
    },
    Subcommand {
        full_name: "client|list",
        arity: -2,
        handler: client_list,
    },
    Subcommand {
        full_name: "client|getname",
        arity: 2,
        handler: client_getname,
    },
    Subcommand {
        full_name: "client|setname",
        arity: 3,
        handler: client_setname,
    },
    Subcommand {
        full_name: "client|kill",
        arity: -3,
        handler: client_kill,
    },
    Subcommand {
        full_name: "client|reply",
        arity: 3,
        handler: client_reply,
    },
    Subcommand {
        full_name: "client|no-evict",
        arity: 3,
        handler: client_no_evict,
    },
    Subcommand {
        full_name: "client|unblock",
        arity: -3,
        handler: client_unblock,
    },
    Subcommand {
        full_name: "client|unpause",
        arity: 2,
        handler: client_unpause,
    },
    Subcommand {
        full_name: "client|help",
        arity: 2,
        handler: client_help,
    },
];

fn client(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let wanted = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    let Some(sub) = CLIENT_SUBCOMMANDS
        .iter()
        .find(|s| s.full_name["client|".len()..] == wanted)
    else {
        return Err(CmdError::new(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )));
    };
    let argc = args.len() as i32;
    if (sub.arity > 0 && argc != sub.arity) || argc < -sub.arity {
        return Err(CmdError::new(format!(
            "ERR wrong number of arguments for '{}' command",
            sub.full_name
        )));
    }
    *ctx.client.info.last_command.lock() = sub.full_name;
    (sub.handler)(ctx, args)
}

fn client_id(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.int(ctx.client.id as i64);
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let name = ctx.client.info.name.lock().clone();
    match name {
        Some(name) => ctx.reply.bulk(&name),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    set_client_name(ctx, args[2])?;
    ctx.reply.ok();
    Ok(())
}

/// Names the connection (an empty name removes it). Names are printable ASCII without
/// spaces, so CLIENT LIST stays parseable.
fn set_client_name(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::new(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    *ctx.client.info.name.lock() = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

fn client_info(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let mut text = String::new();
    let info = ctx.client.info.clone();
    describe_client(ctx, &info, &mut text);
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id ...].
fn client_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let clients: Vec<Arc<ClientInfo>> = if args.len() == 4 && args::is(args[2], "TYPE") {
        let kind = parse_client_kind(args[3])?;
        let mut clients = all_clients(ctx);
        clients.retain(|c| client_kind(c) == kind);
        clients
    } else if args.len() > 3 && args::is(args[2], "ID") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for arg in &args[3..] {
            match args::int(arg) {
                Ok(id) if id >= 1 => ids.push(id as u64),
                _ => return Err(CmdError::new("ERR Invalid client ID")),
            }
        }
        let registry = ctx.shared.clients.lock();
        ids.iter()
            .filter_map(|id| registry.get(id).cloned())
            .collect()
    } else if args.len() != 2 {
        return Err(CmdError::SYNTAX);
    } else {
        all_clients(ctx)
    };
    let mut text = String::new();
    for info in &clients {
        describe_client(ctx, info, &mut text);
    }
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

/// Every registered client, oldest first (Redis lists them in connection order).
fn all_clients(ctx: &Ctx<'_>) -> Vec<Arc<ClientInfo>> {
    let mut clients: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
    clients.sort_by_key(|c| c.id);
    clients
}

fn parse_client_kind(arg: &[u8]) -> Result<ClientKind, CmdError> {
    let lower = arg.to_ascii_lowercase();
    match lower.as_slice() {
        b"normal" => Ok(ClientKind::Normal),
        b"master" => Ok(ClientKind::Master),
        b"replica" | b"slave" => Ok(ClientKind::Replica),
        b"pubsub" => Ok(ClientKind::PubSub),
        _ => Err(CmdError::new(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(arg)
        ))),
    }
}

/// A client's type as Redis' `getClientType` sees it: master and replica links first, then
/// subscribed clients, everything else (MONITOR included) normal.
fn client_kind(info: &ClientInfo) -> ClientKind {
    match *info.kind.lock() {
        ClientKind::Master => ClientKind::Master,
        ClientKind::Replica if !info.monitor.load(Ordering::Relaxed) => ClientKind::Replica,
        _ if info.subscriptions.load(Ordering::Relaxed) > 0
            || info.pattern_subscriptions.load(Ordering::Relaxed) > 0 =>
        {
            ClientKind::PubSub
        }
        _ => ClientKind::Normal,
    }
}

/// Appends one CLIENT LIST line (with its `\n`) in Redis 7.0's field order. Buffer sizes
/// describe ringkv's own buffers; the calling client's MULTI and WATCH state is exact, other
/// clients' is what their [`ClientInfo`] mirrors.
pub(crate) fn describe_client(ctx: &Ctx<'_>, info: &ClientInfo, out: &mut String) {
    let own = info.id == ctx.client.id;
    let now_ms = unix_time_ms();
    let idle_secs = if own {
        0
    } else {
        now_ms.saturating_sub(info.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    };
    let subscriptions = info.subscriptions.load(Ordering::Relaxed);
    let pattern_subscriptions = info.pattern_subscriptions.load(Ordering::Relaxed);
    let (multi, multi_mem) = if own {
        match &ctx.client.multi {
            Some(m) => (
                m.commands.len() as i64,
                m.commands.iter().flatten().map(Vec::len).sum::<usize>(),
            ),
            None => (-1, 0),
        }
    } else {
        (info.in_multi.load(Ordering::Relaxed), 0)
    };
    let mut flags = String::new();
    match *info.kind.lock() {
        ClientKind::Replica if info.monitor.load(Ordering::Relaxed) => flags.push('O'),
        ClientKind::Replica => flags.push('S'),
        ClientKind::Master => flags.push('M'),
        _ if info.monitor.load(Ordering::Relaxed) => flags.push('O'),
        _ => {}
    }
    if subscriptions + pattern_subscriptions > 0 {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if info.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if own && !ctx.client.watched.is_empty() && ctx.client.watch_is_dirty() {
        flags.push('d');
    }
    if own && ctx.client.close_after_reply {
        flags.push('c');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let query_buffer = info.query_buffer.load(Ordering::Relaxed);
    let output_memory = info.output_memory.load(Ordering::Relaxed);
    let name = info.name.lock().clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem={} rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events={} cmd={} user=default redir=-1 resp={}",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        String::from_utf8_lossy(&name),
        info.created.elapsed().as_secs(),
        idle_secs,
        flags,
        info.db.load(Ordering::Relaxed),
        subscriptions,
        pattern_subscriptions,
        multi,
        query_buffer,
        multi_mem,
        query_buffer,
        query_buffer,
        output_memory,
        query_buffer + output_memory + multi_mem,
        if output_memory > 0 { "rw" } else { "r" },
        *info.last_command.lock(),
        info.resp.load(Ordering::Relaxed),
    );
}

/// CLIENT KILL ip:port (old form: `+OK` or an error) or CLIENT KILL <filter> <value> ...
/// (new form: the number of clients killed). Other connections are closed by their own core
/// (a [`CoreMessage::Kill`]); the caller itself, when it matches, after this reply.
fn client_kill(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    #[derive(Default)]
    struct Filter<'a> {
        id: Option<u64>,
        addr: Option<&'a [u8]>,
        laddr: Option<&'a [u8]>,
        kind: Option<ClientKind>,
        skip_me: bool,
    }
    let old_form = args.len() == 3;
    let mut filter = Filter {
        skip_me: !old_form,
        ..Filter::default()
    };
    if old_form {
        filter.addr = Some(args[2]);
    } else {
        let mut index = 2;
        while index < args.len() {
            let Some(&value) = args.get(index + 1) else {
                return Err(CmdError::SYNTAX);
            };
            let option = args[index];
            if args::is(option, "ID") {
                match args::int(value) {
                    Ok(id) if id > 0 => filter.id = Some(id as u64),
                    _ => {
                        return Err(CmdError::new("ERR client-id should be greater than 0"));
                    }
                }
            } else if args::is(option, "TYPE") {
                filter.kind = Some(parse_client_kind(value)?);
            } else if args::is(option, "ADDR") {
                filter.addr = Some(value);
            } else if args::is(option, "LADDR") {
                filter.laddr = Some(value);
            } else if args::is(option, "USER") {
                if value != b"default" {
                    return Err(CmdError::new(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(value)
                    )));
                }
            } else if args::is(option, "SKIPME") {
                if args::is(value, "YES") {
                    filter.skip_me = true;
                } else if args::is(value, "NO") {
                    filter.skip_me = false;
                } else {
                    return Err(CmdError::SYNTAX);
                }
            } else {
                return Err(CmdError::SYNTAX);
            }
            index += 2;
        }
    }
    let victims: Vec<Arc<ClientInfo>> = all_clients(ctx)
        .into_iter()
        .filter(|c| {
            filter.id.is_none_or(|id| c.id == id)
                && filter.addr.is_none_or(|a| c.addr.as_bytes() == a)
                && filter.laddr.is_none_or(|a| c.laddr.as_bytes() == a)
                && filter.kind.is_none_or(|k| client_kind(c) == k)
                && !(filter.skip_me && c.id == ctx.client.id)
        })
        .collect();
    for victim in &victims {
        if victim.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            ctx.shared.cores[victim.core].send(CoreMessage::Kill { conn: victim.conn });
        }
    }
    if old_form {
        if victims.is_empty() {
            return Err(CmdError::new("ERR No such client"));
        }
        ctx.reply.ok();
    } else {
        ctx.reply.int(victims.len() as i64);
    }
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP. Only ON replies; OFF and SKIP are silent, as in Redis.
fn client_reply(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args::is(args[2], "ON") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if args::is(args[2], "OFF") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if args::is(args[2], "SKIP") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::Skip;
        }
    } else {
        return Err(CmdError::SYNTAX);
    }
    Ok(())
}

/// CLIENT NO-EVICT ON|OFF. ringkv never evicts clients, so this only validates.
fn client_no_evict(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if !args::is(args[2], "ON") && !args::is(args[2], "OFF") {
        return Err(CmdError::SYNTAX);
    }
    ctx.reply.ok();
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: wakes a client blocked in BLPOP & co as if it timed
/// out (default) or with an `-UNBLOCKED` error. `:1` if it was blocked, `:0` otherwise.
fn client_unblock(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let id = args::int(args[2])?;
    let as_error = match args.get(3) {
        None => false,
        Some(reason) if args.len() == 4 && args::is(reason, "TIMEOUT") => false,
        Some(reason) if args.len() == 4 && args::is(reason, "ERROR") => true,
        Some(_) => {
            return Err(CmdError::new(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let waiter = if id > 0 {
        ctx.store.blocking.remove(id as u64)
    } else {
        None
    };
    let Some(waiter) = waiter else {
        let wait = (id > 0)
            .then(|| crate::replication::master::commands::unblock_wait(ctx.store, id as u64))
            .flatten();
        if let Some((core, conn, resp, acked)) = wait {
            let mut reply = Reply::new(resp);
            if as_error {
                reply.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
            } else {
                reply.int(acked);
            }
            ctx.shared.cores[core].send(CoreMessage::Unblocked {
                conn,
                bytes: reply.buf,
            });
            ctx.reply.int(1);
            return Ok(());
        }
        ctx.reply.int(0);
        return Ok(());
    };
    let mut reply = Reply::new(waiter.resp);
    if as_error {
        reply.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else {
        match waiter.op {
            BlockOp::ListMove { .. } => reply.null(),
            _ => reply.null_array(),
        }
    }
    ctx.shared.cores[waiter.core].send(CoreMessage::Unblocked {
        conn: waiter.conn,
        bytes: reply.buf,
    });
    ctx.reply.int(1);
    Ok(())
}

/// CLIENT UNPAUSE: ringkv has no CLIENT PAUSE, so nothing is ever paused.
fn client_unpause(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.ok();
    Ok(())
}

fn client_help(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    const HELP: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.reply.array(HELP.len());
    for line in HELP {
        ctx.reply.simple(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_by_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn client_types_parse_case_insensitively_with_redis_error() {
        assert_eq!(parse_client_kind(b"NORMAL").unwrap(), ClientKind::Normal);
        assert_eq!(parse_client_kind(b"slave").unwrap(), ClientKind::Replica);
        assert_eq!(parse_client_kind(b"PubSub").unwrap(), ClientKind::PubSub);
        assert_eq!(
            parse_client_kind(b"foo").unwrap_err().0,
            "ERR Unknown client type 'foo'"
        );
    }
}
