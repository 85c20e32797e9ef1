//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.
//!
//! A subscription lives in two places kept in step here: the shared [`PubSub`] registry
//! (who to deliver to, on which core, in which protocol version) and the connection's own
//! `channels`/`patterns` sets (what to drop when it unsubscribes or closes), with the counts
//! mirrored into its `ClientInfo` for CLIENT LIST. The registry has its own lock, always
//! taken after the store's (a handler already runs under the store lock).
//!
//! Confirmations are push frames, one per channel: `["subscribe", channel, count]` where
//! count is the connection's total of channel and pattern subscriptions afterwards.
//!
//! [`PubSub`]: crate::pubsub::PubSub

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::pubsub::Subscriber;
use crate::spec;
use crate::storage::Bstr;

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@pubsub @slow",
        subscribe
    ),
    spec!(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@pubsub @slow",
        unsubscribe
    ),
    spec!(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@pubsub @slow",
        psubscribe
    ),
    spec!(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        0,
        0,
        0,
        "@pubsub @slow",
        punsubscribe
    ),
    spec!(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        0,
        0,
        0,
        "@pubsub @fast",
        publish
    ),
    spec!("pubsub", -2, 0, 0, 0, 0, "@slow", pubsub),
];

/// Channel or pattern: the two kinds of subscription differ only in their registry, their
/// connection-side set, their CLIENT LIST counter and their reply words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
        }
    }
}

fn subscriber(ctx: &Ctx<'_>) -> Subscriber {
    Subscriber {
        client_id: ctx.client.id,
        core: ctx.client.core,
        conn: ctx.client.conn,
        resp: ctx.reply.resp,
    }
}

/// Mirrors the connection's subscription counts into its `ClientInfo`.
fn publish_counts(ctx: &Ctx<'_>) {
    let info = &ctx.client.info;
    info.subscriptions
        .store(ctx.client.channels.len(), Ordering::Relaxed);
    info.pattern_subscriptions
        .store(ctx.client.patterns.len(), Ordering::Relaxed);
}

fn confirm(ctx: &mut Ctx<'_>, word: &[u8], name: Option<&[u8]>) {
    let count = ctx.client.subscription_count();
    ctx.reply.push(3);
    ctx.reply.bulk(word);
    match name {
        Some(name) => ctx.reply.bulk(name),
        None => ctx.reply.null(),
    }
    ctx.reply.int(count as i64);
}

fn add(ctx: &mut Ctx<'_>, kind: Kind, names: &[&[u8]]) {
    let who = subscriber(ctx);
    for &name in names {
        let set = match kind {
            Kind::Channel => &mut ctx.client.channels,
            Kind::Pattern => &mut ctx.client.patterns,
        };
        if set.insert(Bstr::new(name)) {
            let mut registry = ctx.shared.pubsub.lock();
            match kind {
                Kind::Channel => registry.subscribe(name, who),
                Kind::Pattern => registry.psubscribe(name, who),
            };
        }
        publish_counts(ctx);
        confirm(ctx, kind.subscribe_word(), Some(name));
    }
}

/// Removes `names` (all of the kind when empty), confirming each; with nothing to remove
/// and no names, one confirmation with a nil name.
fn remove(ctx: &mut Ctx<'_>, kind: Kind, names: &[&[u8]]) {
    let owned: Vec<Bstr>;
    let names: Vec<&[u8]> = if names.is_empty() {
        let set = match kind {
            Kind::Channel => &ctx.client.channels,
            Kind::Pattern => &ctx.client.patterns,
        };
        let mut all: Vec<Bstr> = set.iter().cloned().collect();
        all.sort();
        owned = all;
        if owned.is_empty() {
            confirm(ctx, kind.unsubscribe_word(), None);
            return;
        }
        owned.iter().map(|b| &b[..]).collect()
    } else {
        names.to_vec()
    };
    for name in names {
        let set = match kind {
            Kind::Channel => &mut ctx.client.channels,
            Kind::Pattern => &mut ctx.client.patterns,
        };
        if set.remove(name) {
            let client_id = ctx.client.id;
            let mut registry = ctx.shared.pubsub.lock();
            match kind {
                Kind::Channel => registry.unsubscribe(name, client_id),
                Kind::Pattern => registry.punsubscribe(name, client_id),
            };
        }
        publish_counts(ctx);
        confirm(ctx, kind.unsubscribe_word(), Some(name));
    }
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    add(ctx, Kind::Channel, &args[1..]);
    Ok(())
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    add(ctx, Kind::Pattern, &args[1..]);
    Ok(())
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    remove(ctx, Kind::Channel, &args[1..]);
    Ok(())
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    remove(ctx, Kind::Pattern, &args[1..]);
    Ok(())
}

/// Drops every subscription silently (RESET).
pub fn unsubscribe_everything(ctx: &mut Ctx<'_>) {
    if !ctx.client.in_pubsub() {
        return;
    }
    let channels = std::mem::take(&mut ctx.client.channels);
    let patterns = std::mem::take(&mut ctx.client.patterns);
    {
        let mut registry = ctx.shared.pubsub.lock();
        for channel in &channels {
            registry.unsubscribe(channel, ctx.client.id);
        }
        for pattern in &patterns {
            registry.punsubscribe(pattern, ctx.client.id);
        }
    }
    publish_counts(ctx);
}

/// Registers the connection's subscriptions again under its current protocol version
/// (after HELLO switched it), so messages are encoded the way it now reads them.
pub fn reregister(ctx: &mut Ctx<'_>) {
    let who = subscriber(ctx);
    let mut registry = ctx.shared.pubsub.lock();
    for channel in &ctx.client.channels {
        registry.unsubscribe(channel, who.client_id);
        registry.subscribe(channel, who);
    }
    for pattern in &ctx.client.patterns {
        registry.punsubscribe(pattern, who.client_id);
        registry.psubscribe(pattern, who);
    }
}

/// PUBLISH channel message: the number of subscribers (channel and pattern) it was handed
/// to. Propagated to replicas, as Redis does, so their own subscribers receive it too.
fn publish(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let receivers = ctx
        .shared
        .pubsub
        .lock()
        .publish(args[1], args[2], &ctx.shared.cores);
    ctx.propagate_as(vec![args.iter().map(|a| a.to_vec()).collect()]);
    ctx.reply.int(receivers as i64);
    Ok(())
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern] |
/// SHARDNUMSUB [channel ...] | HELP.
fn pubsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let arity_error = |name: &str| {
        CmdError::new(format!(
            "ERR wrong number of arguments for 'pubsub|{name}' command"
        ))
    };
    match sub.as_slice() {
        b"channels" => {
            if args.len() > 3 {
                return Err(CmdError::new(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                    String::from_utf8_lossy(args[1])
                )));
            }
            let mut channels = ctx.shared.pubsub.lock().channels(args.get(2).copied());
            channels.sort();
            ctx.reply.array(channels.len());
            for channel in &channels {
                ctx.reply.bulk(channel);
            }
        }
        b"numsub" => {
            let registry = ctx.shared.pubsub.lock();
            ctx.reply.array(2 * (args.len() - 2));
            for channel in &args[2..] {
                ctx.reply.bulk(channel);
                ctx.reply.int(registry.subscriber_count(channel) as i64);
            }
        }
        // No shard channels exist (SSUBSCRIBE is not implemented), so these are empty.
        b"shardchannels" => {
            if args.len() > 3 {
                return Err(CmdError::new(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                    String::from_utf8_lossy(args[1])
                )));
            }
            ctx.reply.array(0);
        }
        b"shardnumsub" => {
            ctx.reply.array(2 * (args.len() - 2));
            for channel in &args[2..] {
                ctx.reply.bulk(channel);
                ctx.reply.int(0);
            }
        }
        b"numpat" => {
            if args.len() != 2 {
                return Err(arity_error("numpat"));
            }
            let count = ctx.shared.pubsub.lock().pattern_count();
            ctx.reply.int(count as i64);
        }
        b"help" => {
            if args.len() != 2 {
                return Err(arity_error("help"));
            }
            const HELP: &[&str] = &[
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ];
            ctx.reply.array(HELP.len());
            for line in HELP {
                ctx.reply.simple(line);
            }
        }
        _ => {
            return Err(CmdError::new(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
            )))
        }
    }
    Ok(())
}
