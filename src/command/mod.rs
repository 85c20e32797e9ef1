//! The command table and the one function every request goes through, [`call`].
//!
//! Each family of commands has its own file exporting a static slice of [`CommandSpec`]; a
//! handler follows the same three steps everywhere: parse its arguments (errors become
//! `-ERR ...` replies through [`CmdError`]), apply them to the store, write its reply with
//! the typed methods of [`Reply`]. [`call`] does what is common to all commands, in Redis'
//! order: lookup, arity, authentication, MULTI queueing, pub/sub context, `maxmemory`,
//! execution, statistics, propagation of writes, and serving clients blocked on keys the
//! command filled.

pub mod args;
pub mod blocking;
pub mod connection;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod strings;
pub mod transactions;
pub mod zsets;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::config::Config;
use crate::protocol::Reply;
use crate::server::client::{ClientState, ReplyMode};
use crate::server::shared::{Shared, Stats};
use crate::storage::{Db, Store, WRONGTYPE};

/// Command flags (Redis' `CMD_*`), as shown by COMMAND INFO.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const FAST: u32 = 1 << 10;
    pub const NO_AUTH: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    /// May produce a different result on a replica / is random.
    pub const MAY_REPLICATE: u32 = 1 << 14;
    /// Allowed while a RESP2 client is in subscribed mode.
    pub const PUBSUB_CONTEXT: u32 = 1 << 15;
    /// Keys are found by parsing the arguments (numkeys), not by first/last/step.
    pub const MOVABLEKEYS: u32 = 1 << 16;
    /// Refused while a replica loads its snapshot asynchronously (PSYNC, SYNC).
    pub const NO_ASYNC_LOADING: u32 = 1 << 17;

    /// Names in COMMAND INFO order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (MAY_REPLICATE, "may_replicate"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// A command's handler: `args[0]` is the command name as sent.
pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]) -> CmdResult;

/// One row of the command table.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: `n > 0` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step; 0,0,0 for none.
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    /// ACL categories COMMAND INFO shows (e.g. `@string`).
    pub group: &'static str,
    pub handler: Handler,
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Positions of the key arguments of `args` per first/last/step.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            argc as i64 + self.last_key as i64
        } else {
            self.last_key as i64
        };
        let step = self.key_step.max(1) as usize;
        let last = if first == 0 { 0 } else { last.max(0) as usize };
        (first..=last)
            .step_by(step)
            .filter(move |&i| i > 0 && i < argc)
    }
}

/// Builds a [`CommandSpec`] tersely: `spec!("get", 2, READONLY | FAST, 1, 1, 1, "string", get)`.
#[macro_export]
macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:expr, $handler:expr) => {
        $crate::command::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            key_step: $step,
            group: $group,
            handler: $handler,
        }
    };
}

/// An error reply. The text is everything after `-`, including the code (`ERR`, `WRONGTYPE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

pub type CmdResult = Result<(), CmdError>;

impl CmdError {
    pub const SYNTAX: CmdError = CmdError(Cow::Borrowed("ERR syntax error"));
    pub const WRONG_TYPE: CmdError = CmdError(Cow::Borrowed(WRONGTYPE));
    pub const NOT_INTEGER: CmdError =
        CmdError(Cow::Borrowed("ERR value is not an integer or out of range"));
    pub const NOT_FLOAT: CmdError = CmdError(Cow::Borrowed("ERR value is not a valid float"));
    pub const NO_SUCH_KEY: CmdError = CmdError(Cow::Borrowed("ERR no such key"));
    pub const OVERFLOW: CmdError =
        CmdError(Cow::Borrowed("ERR increment or decrement would overflow"));
    pub const INDEX_OUT_OF_RANGE: CmdError = CmdError(Cow::Borrowed("ERR index out of range"));
    pub const DB_INDEX_OUT_OF_RANGE: CmdError =
        CmdError(Cow::Borrowed("ERR DB index is out of range"));
    pub const TIMEOUT_NOT_FLOAT: CmdError =
        CmdError(Cow::Borrowed("ERR timeout is not a float or out of range"));
    pub const TIMEOUT_NEGATIVE: CmdError = CmdError(Cow::Borrowed("ERR timeout is negative"));

    pub fn new(text: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError(text.into())
    }

    /// `ERR wrong number of arguments for '<name>' command`.
    pub fn arity(name: &[u8]) -> CmdError {
        CmdError::new(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(name).to_lowercase()
        ))
    }
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to put in the replication stream for the command just executed.
#[derive(Debug, Default)]
pub enum Propagate {
    /// Its own arguments, if it changed anything (the dirty counter moved).
    #[default]
    AsIs,
    /// Nothing.
    Nothing,
    /// These commands instead (SPOP as SREM, relative TTLs as absolute, ...).
    Rewritten(Vec<Vec<Vec<u8>>>),
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub config: &'a Config,
    pub store: &'a mut Store,
    pub client: &'a mut ClientState,
    pub reply: &'a mut Reply,
    /// Unix time in ms, fixed for the whole command (Redis' "command time snapshot").
    pub now_ms: u64,
    pub propagate: Propagate,
}

impl Ctx<'_> {
    /// The client's selected database.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        &mut self.store.dbs[self.client.db]
    }

    /// Records a change to `key` in the selected database: one more dirty write, watchers of
    /// the key invalidated.
    #[inline]
    pub fn touch(&mut self, key: &[u8]) {
        self.store.dirty += 1;
        self.store.touch(self.client.db, key);
    }

    /// Records that `key` got elements clients may be blocked waiting for.
    #[inline]
    pub fn signal_ready(&mut self, key: &[u8]) {
        self.store.blocking.signal_ready(self.client.db, key);
    }

    /// Propagate `commands` instead of the command as sent.
    pub fn propagate_as(&mut self, commands: Vec<Vec<Vec<u8>>>) {
        self.propagate = Propagate::Rewritten(commands);
    }

    pub fn hit(&self) {
        Stats::add(&self.shared.stats.keyspace_hits, 1);
    }

    pub fn miss(&self) {
        Stats::add(&self.shared.stats.keyspace_misses, 1);
    }
}

/// Every command family's table, in the order COMMAND lists them.
fn families() -> [&'static [CommandSpec]; 13] {
    [
        strings::COMMANDS,
        keys::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        pubsub::COMMANDS,
        transactions::COMMANDS,
        blocking::COMMANDS,
        crate::persistence::aof::COMMANDS,
        crate::replication::master::commands::COMMANDS,
    ]
}

/// The command table's map type (foldhash: lookups are on the hot path of every request).
pub type Table = HashMap<&'static [u8], &'static CommandSpec, crate::storage::value::Hasher>;

static TABLE: OnceLock<Table> = OnceLock::new();

/// The command table, name → spec.
pub fn table() -> &'static Table {
    TABLE.get_or_init(|| {
        let mut map = Table::default();
        for family in families() {
            for spec in family {
                let previous = map.insert(spec.name.as_bytes(), spec);
                assert!(previous.is_none(), "command {} defined twice", spec.name);
            }
        }
        map
    })
}

/// Looks a command up by name, case-insensitively.
#[inline]
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    const NAME_LEN_MAX: usize = 32;
    if name.len() > NAME_LEN_MAX {
        return None;
    }
    let mut lower = [0u8; NAME_LEN_MAX];
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    table().get(&lower[..name.len()]).copied()
}

/// The error for an unknown command, with Redis' argument preview.
pub fn unknown_command(args: &[&[u8]]) -> CmdError {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        preview(args[0])
    );
    for arg in args.iter().skip(1).take(127) {
        text.push_str(&format!("'{}' ", preview(arg)));
    }
    CmdError::new(text)
}

fn preview(arg: &[u8]) -> String {
    const PREVIEW_MAX: usize = 128;
    String::from_utf8_lossy(&arg[..arg.len().min(PREVIEW_MAX)]).replace(['\r', '\n'], " ")
}

/// Runs one request: the common checks, the handler, then propagation and blocked-client
/// service. Writes exactly one reply (or none under CLIENT REPLY OFF/SKIP).
pub fn call(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    debug_assert!(!args.is_empty());
    let reply_start = ctx.reply.buf.len();
    let result = call_checked(ctx, args);
    if let Err(error) = result {
        Stats::add(&ctx.shared.stats.total_error_replies, 1);
        ctx.reply.error(&error.0);
    }
    // Clients blocked on keys this command (or, for EXEC, the whole transaction) filled are
    // served now, after it, as Redis does.
    if !ctx.store.blocking.is_empty() {
        blocking::serve_ready_keys(ctx);
    }
    match ctx.client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => ctx.reply.buf.truncate(reply_start),
        ReplyMode::Skip => ctx.client.reply_mode = ReplyMode::SkipThis,
        ReplyMode::SkipThis => {
            ctx.reply.buf.truncate(reply_start);
            ctx.client.reply_mode = ReplyMode::On;
        }
    }
}

fn call_checked(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let Some(spec) = lookup(args[0]) else {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return Err(unknown_command(args));
    };
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return Err(CmdError::arity(args[0]));
    }
    if !ctx.client.authenticated && !spec.has(flags::NO_AUTH) {
        return Err(CmdError::new("NOAUTH Authentication required."));
    }
    if ctx.client.multi.is_some() && spec.has(flags::NO_MULTI) {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return Err(CmdError::new(
            "ERR Command not allowed inside a transaction",
        ));
    }
    // Our master's writes are obeyed whatever our own persistence state (as in Redis).
    if (spec.has(flags::WRITE) || spec.name == "ping") && !ctx.client.is_master {
        let refusal = crate::persistence::snapshot::write_refusal(ctx.config, ctx.store)
            .map(Cow::Borrowed)
            .or_else(|| crate::persistence::aof::write_refusal(ctx.store).map(Cow::Owned));
        if let Some(refusal) = refusal {
            if let Some(multi) = ctx.client.multi.as_mut() {
                multi.aborted = true;
            }
            return Err(CmdError(refusal));
        }
        if crate::replication::master::writes_refused(ctx.config, ctx.store) && spec.name != "ping"
        {
            if let Some(multi) = ctx.client.multi.as_mut() {
                multi.aborted = true;
            }
            return Err(CmdError::new(crate::replication::master::NOREPLICAS));
        }
    }
    // An EXEC whose queue writes is refused as a whole when the good replicas went away
    // after the writes were queued (Redis discards the transaction).
    if spec.name == "exec"
        && crate::replication::master::writes_refused(ctx.config, ctx.store)
        && ctx.client.multi.as_ref().is_some_and(|multi| {
            multi
                .commands
                .iter()
                .any(|command| lookup(&command[0]).is_some_and(|s| s.has(flags::WRITE)))
        })
    {
        transactions::discard_state(ctx);
        return Err(CmdError::new(format!(
            "EXECABORT Transaction discarded because of: {}",
            crate::replication::master::NOREPLICAS
        )));
    }
    if let Some(refusal) = crate::replication::replica::command_refusal(
        ctx.config,
        ctx.store,
        spec.flags,
        ctx.client.is_master,
    ) {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return Err(CmdError::new(refusal));
    }
    if let Some(multi) = ctx
        .client
        .multi
        .as_mut()
        .filter(|_| !transactions::runs_inside_multi(spec))
    {
        multi
            .commands
            .push(args.iter().map(|a| a.to_vec()).collect());
        let queued = multi.commands.len() as i64;
        ctx.client.info.in_multi.store(queued, Ordering::Relaxed);
        ctx.reply.simple("QUEUED");
        return Ok(());
    }
    if ctx.client.in_pubsub()
        && ctx.reply.resp == crate::protocol::Resp::V2
        && !spec.has(flags::PUBSUB_CONTEXT)
    {
        return Err(CmdError::new(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    execute(ctx, spec, args)
}

/// Executes an already-checked command (also used by EXEC for each queued command).
pub fn execute(ctx: &mut Ctx<'_>, spec: &'static CommandSpec, args: &[&[u8]]) -> CmdResult {
    // A replica never refuses its master's writes for memory (`replica-ignore-maxmemory`).
    if spec.has(flags::DENYOOM) && ctx.config.maxmemory > 0 && !ctx.client.is_master {
        let used = crate::storage::memory::used_memory();
        if used > ctx.config.maxmemory {
            return Err(CmdError::new(
                "OOM command not allowed when used memory > 'maxmemory'.",
            ));
        }
    }
    if ctx.shared.monitors.load(Ordering::Relaxed) > 0
        && !spec.has(flags::SKIP_MONITOR | flags::ADMIN)
    {
        server::feed_monitors(ctx, args);
    }
    let dirty_before = ctx.store.dirty;
    ctx.propagate = Propagate::AsIs;
    *ctx.client.info.last_command.lock() = spec.name;
    Stats::add(&ctx.shared.stats.total_commands_processed, 1);
    let result = (spec.handler)(ctx, args);
    after_command(ctx, spec, args, dirty_before);
    result
}

/// The command an expired key is propagated as: `UNLINK` with `lazyfree-lazy-expire`, else
/// `DEL` (Redis' `propagateDeletion`).
pub fn expiry_deletion(config: &crate::config::Config) -> &'static [u8] {
    if config.lazyfree_lazy_expire {
        b"UNLINK"
    } else {
        b"DEL"
    }
}

/// Propagation after a command ran (expired keys first, then the command or its rewrite).
fn after_command(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[&[u8]], dirty_before: u64) {
    let db = ctx.client.db;
    // Keys lazily expired by this command are propagated before it, as Redis does: as DEL,
    // or UNLINK with `lazyfree-lazy-expire`.
    let deletion = expiry_deletion(ctx.config);
    for index in 0..ctx.store.dbs.len() {
        if !ctx.store.dbs[index].expired.is_empty() {
            let expired = std::mem::take(&mut ctx.store.dbs[index].expired);
            for key in expired {
                ctx.store
                    .propagation
                    .feed(index, &[deletion, key.as_bytes()]);
            }
        }
    }
    match std::mem::take(&mut ctx.propagate) {
        Propagate::AsIs => {
            if ctx.store.dirty != dirty_before && spec.has(flags::WRITE) {
                ctx.store.propagation.feed(db, args);
            }
        }
        Propagate::Nothing => {}
        Propagate::Rewritten(commands) => {
            for command in commands {
                ctx.store.propagation.feed(db, &command);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_rejects_unknown_names() {
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn every_command_has_a_sane_spec() {
        for spec in table().values() {
            assert_eq!(spec.name, spec.name.to_lowercase(), "{}", spec.name);
            assert!(spec.arity != 0, "{}", spec.name);
            assert!(
                !(spec.has(flags::WRITE) && spec.has(flags::READONLY)),
                "{} is both write and readonly",
                spec.name
            );
        }
    }

    #[test]
    fn unknown_command_error_previews_arguments() {
        let error = unknown_command(&[b"foo", b"a", b"b"]);
        assert_eq!(
            error.0,
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(1).count(), 0);
    }
}
