//! Server commands: INFO, CONFIG, COMMAND, DEBUG, TIME, LASTSAVE, SHUTDOWN, MONITOR, ROLE,
//! WAIT, SLOWLOG, LATENCY, MEMORY.
//!
//! Replies, error texts and INFO field names follow Redis 7.0.15 exactly: monitoring tools,
//! Sentinel and `redis-cli` parse them. Where ringkv does not have the machinery a field
//! describes yet (persistence, replicas, Lua, the slow log) the field is still present with
//! the value an idle Redis reports, so parsers keep working; the sections below say which.
//!
//! Container commands (CONFIG, COMMAND, MEMORY, SLOWLOG, LATENCY) check their subcommand and
//! its arity against [`SUBCOMMANDS`], which is also what COMMAND INFO and COMMAND LIST show,
//! so the `config|set` style names in arity errors match Redis'.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx, Propagate};
use crate::config::REDIS_COMPAT_VERSION;
use crate::protocol::Reply;
use crate::server::shared::Counter;
use crate::server::shared::{unix_time_ms, unix_time_us, CoreMessage, Stats};
use crate::spec;
use crate::storage::memory::{bytes_to_human, resident_set_size, used_memory};
use crate::storage::{digest, Bstr, Db, Value};

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "info",
        -1,
        LOADING | STALE,
        0,
        0,
        0,
        "@slow @dangerous",
        info
    ),
    spec!(
        "config",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "@slow",
        config
    ),
    spec!(
        "command",
        -1,
        LOADING | STALE,
        0,
        0,
        0,
        "@slow @connection",
        command
    ),
    spec!(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        debug
    ),
    spec!("time", 1, LOADING | STALE | FAST, 0, 0, 0, "@fast", time),
    spec!(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        save
    ),
    spec!(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        bgsave
    ),
    spec!(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        0,
        0,
        0,
        "@admin @fast @dangerous",
        lastsave
    ),
    spec!(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        shutdown
    ),
    spec!(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        monitor
    ),
    spec!(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        0,
        0,
        0,
        "@admin @fast @dangerous",
        role
    ),
    spec!("wait", 3, NOSCRIPT, 0, 0, 0, "@slow @connection", wait),
    spec!(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        crate::replication::replica::replicaof_command
    ),
    spec!(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        crate::replication::replica::replicaof_command
    ),
    spec!(
        "slowlog",
        -2,
        ADMIN | LOADING | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        slowlog
    ),
    spec!(
        "latency",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        latency
    ),
    spec!("memory", -2, 0, 0, 0, 0, "@slow", memory),
];

/// A subcommand of a container command, as COMMAND INFO lists it and as the arity check
/// names it (`config|set`).
pub struct Subcommand {
    pub container: &'static str,
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub group: &'static str,
    /// First key position (0 = no keys); last = first, step 1.
    pub first_key: i32,
}

const fn sub(
    container: &'static str,
    name: &'static str,
    arity: i32,
    flags: u32,
    group: &'static str,
    first_key: i32,
) -> Subcommand {
    Subcommand {
        container,
        name,
        arity,
        flags,
        group,
        first_key,
    }
}

/// Redis 7.0's subcommands of the containers this file implements, arities and flags as
/// `COMMAND INFO` shows them.
pub static SUBCOMMANDS: &[Subcommand] = &[
    sub(
        "config",
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "config",
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "config",
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "config",
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub("config", "help", 2, LOADING | STALE, "@slow", 0),
    sub(
        "command",
        "count",
        2,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "command",
        "list",
        -2,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "command",
        "info",
        -2,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "command",
        "docs",
        -2,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "command",
        "getkeys",
        -4,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "command",
        "help",
        2,
        LOADING | STALE,
        "@slow @connection",
        0,
    ),
    sub(
        "slowlog",
        "get",
        -2,
        ADMIN | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "slowlog",
        "len",
        2,
        ADMIN | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "slowlog",
        "reset",
        2,
        ADMIN | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub("slowlog", "help", 2, LOADING | STALE, "@slow", 0),
    sub(
        "latency",
        "latest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "latency",
        "history",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "latency",
        "reset",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub(
        "latency",
        "doctor",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        "@admin @slow @dangerous",
        0,
    ),
    sub("latency", "help", 2, LOADING | STALE, "@slow", 0),
    sub("memory", "usage", -3, READONLY, "@read @slow", 2),
    sub("memory", "stats", 2, 0, "@slow", 0),
    sub("memory", "doctor", 2, 0, "@slow", 0),
    sub("memory", "purge", 2, 0, "@slow", 0),
    sub("memory", "malloc-stats", 2, 0, "@slow", 0),
    sub("memory", "help", 2, LOADING | STALE, "@slow", 0),
];

/// Finds `args[1]` among `container`'s subcommands and checks its arity. Errors are Redis':
/// `unknown subcommand '<x>'. Try CONFIG HELP.` and `wrong number of arguments for
/// 'config|set' command`.
fn subcommand(container: &str, args: &[&[u8]]) -> Result<&'static Subcommand, CmdError> {
    let name = args[1];
    let Some(found) = SUBCOMMANDS
        .iter()
        .find(|s| s.container == container && args::is(name, s.name))
    else {
        return Err(CmdError::new(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            args::text(name),
            container.to_ascii_uppercase()
        )));
    };
    let argc = args.len() as i32;
    if (found.arity > 0 && argc != found.arity) || argc < -found.arity {
        return Err(CmdError::new(format!(
            "ERR wrong number of arguments for '{}|{}' command",
            found.container, found.name
        )));
    }
    Ok(found)
}

/// Writes a HELP reply: the usage line, the subcommand lines, then HELP's own two lines.
fn reply_help(reply: &mut Reply, container: &str, lines: &[&str]) {
    reply.array(lines.len() + 3);
    reply.simple(&format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for line in lines {
        reply.simple(line);
    }
    reply.simple("HELP");
    reply.simple("    Prints this help.");
}

/// True if the client is connected over loopback (or a unix socket, which has no address):
/// what `enable-debug-command local` and `enable-protected-configs local` allow.
fn client_is_local(ctx: &Ctx<'_>) -> bool {
    let addr = &ctx.client.info.addr;
    if addr.is_empty() {
        return true;
    }
    addr.parse::<SocketAddr>()
        .map(|a| match a.ip() {
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            ip => ip.is_loopback(),
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------------------

/// Sections of `INFO` / `INFO default`, in Redis' order.
const SECTIONS_DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Every section (`INFO all`, `INFO everything`), in Redis' order.
const SECTIONS_ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Highest `used_memory` seen by INFO / MEMORY STATS since start or CONFIG RESETSTAT.
static USED_MEMORY_PEAK: AtomicU64 = AtomicU64::new(0);
/// `used_memory` the first time anyone looked (close to what an empty server uses).
static USED_MEMORY_STARTUP: OnceLock<u64> = OnceLock::new();

/// Samples `used_memory`, updating the peak; returns (used, peak, startup).
fn memory_sample() -> (u64, u64, u64) {
    let used = used_memory();
    let startup = *USED_MEMORY_STARTUP.get_or_init(|| used);
    let peak = USED_MEMORY_PEAK
        .fetch_max(used, Ordering::Relaxed)
        .max(used);
    (used, peak, startup.min(used))
}

/// Counters at one instant, for the `instantaneous_*` rates.
#[derive(Clone, Copy)]
struct RateSample {
    at: Instant,
    commands: u64,
    input_bytes: u64,
    output_bytes: u64,
}

/// Last sample and the rates computed from it: (ops/sec, input kbps, output kbps).
static RATES: Mutex<Option<(RateSample, u64, f64, f64)>> = Mutex::new(None);

/// Shortest interval over which rates are recomputed, so back-to-back INFOs stay stable.
const RATE_INTERVAL_MIN: Duration = Duration::from_millis(100);

fn instantaneous_rates(stats: &Stats) -> (u64, f64, f64) {
    let now = RateSample {
        at: Instant::now(),
        commands: stats.total_commands_processed.get(),
        input_bytes: stats.total_net_input_bytes.get(),
        output_bytes: stats.total_net_output_bytes.get(),
    };
    let mut guard = RATES.lock();
    match *guard {
        None => {
            *guard = Some((now, 0, 0.0, 0.0));
            (0, 0.0, 0.0)
        }
        Some((previous, ops, input, output)) => {
            let elapsed = now.at.duration_since(previous.at);
            if elapsed < RATE_INTERVAL_MIN {
                return (ops, input, output);
            }
            let seconds = elapsed.as_secs_f64();
            let ops = (now.commands.saturating_sub(previous.commands) as f64 / seconds) as u64;
            let input =
                now.input_bytes.saturating_sub(previous.input_bytes) as f64 / seconds / 1024.0;
            let output =
                now.output_bytes.saturating_sub(previous.output_bytes) as f64 / seconds / 1024.0;
            *guard = Some((now, ops, input, output));
            (ops, input, output)
        }
    }
}

/// INFO [section ...]: Redis 7.0's report, sections in Redis' order whatever the order asked.
/// Unknown section names are ignored; a lone unknown name gives an empty reply.
fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut wanted: Vec<&str> = Vec::new();
    if args.len() == 1 {
        wanted.extend(SECTIONS_DEFAULT);
    }
    for arg in &args[1..] {
        let name = String::from_utf8_lossy(arg).to_ascii_lowercase();
        match name.as_str() {
            "default" => wanted.extend(SECTIONS_DEFAULT),
            "all" | "everything" => wanted.extend(SECTIONS_ALL),
            other => {
                if let Some(known) = SECTIONS_ALL.iter().find(|s| **s == other) {
                    wanted.push(known);
                }
            }
        }
    }
    let text = info_text(ctx, &wanted);
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

/// Builds the INFO text for the `wanted` sections (any order, duplicates allowed).
pub fn info_text(ctx: &Ctx<'_>, wanted: &[&str]) -> String {
    let mut out = String::with_capacity(4096);
    let mut first = true;
    for section in SECTIONS_ALL.iter().filter(|s| wanted.contains(s)) {
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        match *section {
            "server" => info_server(ctx, &mut out),
            "clients" => info_clients(ctx, &mut out),
            "memory" => info_memory(ctx, &mut out),
            "persistence" => info_persistence(ctx, &mut out),
            "stats" => info_stats(ctx, &mut out),
            "replication" => info_replication(ctx, &mut out),
            "cpu" => info_cpu(&mut out),
            "modules" => out.push_str("# Modules\r\n"),
            // Per-command, per-error and latency statistics are not tracked (yet): the
            // headers stay so parsers see the sections they expect.
            "commandstats" => out.push_str("# Commandstats\r\n"),
            "errorstats" => out.push_str("# Errorstats\r\n"),
            "latencystats" => out.push_str("# Latencystats\r\n"),
            "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            "keyspace" => info_keyspace(ctx, &mut out),
            other => unreachable!("section {other} listed but not written"),
        }
    }
    out
}

/// Appends `name:value\r\n`.
macro_rules! field {
    ($out:expr, $name:expr, $($value:tt)*) => {{
        let _ = write!($out, "{}:", $name);
        let _ = write!($out, $($value)*);
        $out.push_str("\r\n");
    }};
}

/// `uname -s -r -m`, as Redis prints it for `os`.
fn os_name() -> String {
    // SAFETY: utsname is plain old data; uname fills it and we read NUL-terminated fields.
    unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return "Linux".into();
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&name.sysname),
            field(&name.release),
            field(&name.machine)
        )
    }
}

/// A stable 16-hex build id derived from the crate version (Redis hashes its build info).
fn build_id() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in env!("CARGO_PKG_VERSION").bytes().chain(*b"ringkv") {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:x}")
}

fn info_server(ctx: &Ctx<'_>, out: &mut String) {
    let shared = ctx.shared;
    let config = shared.config();
    let uptime = shared.started.elapsed().as_secs();
    let port = match shared.bound_port.load(Ordering::Relaxed) {
        0 => config.port as usize,
        bound => bound,
    };
    let config_file = config
        .config_file
        .as_ref()
        .map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .unwrap_or_default();
    out.push_str("# Server\r\n");
    field!(out, "redis_version", "{REDIS_COMPAT_VERSION}");
    field!(out, "ringkv_version", "{}", env!("CARGO_PKG_VERSION"));
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", "0");
    field!(out, "redis_build_id", "{}", build_id());
    field!(out, "redis_mode", "standalone");
    field!(out, "os", "{}", os_name());
    field!(out, "arch_bits", "{}", usize::BITS);
    field!(out, "monotonic_clock", "POSIX clock_gettime");
    field!(out, "multiplexing_api", "io_uring");
    field!(out, "atomicvar_api", "c11-builtin");
    field!(out, "gcc_version", "0.0.0");
    field!(out, "process_id", "{}", std::process::id());
    field!(out, "process_supervised", "no");
    field!(out, "run_id", "{}", shared.run_id);
    field!(out, "tcp_port", "{port}");
    field!(out, "server_time_usec", "{}", unix_time_us());
    field!(out, "uptime_in_seconds", "{uptime}");
    field!(out, "uptime_in_days", "{}", uptime / 86_400);
    field!(out, "hz", "{}", config.hz);
    field!(out, "configured_hz", "{}", config.hz);
    field!(
        out,
        "lru_clock",
        "{}",
        (unix_time_ms() / 1000) & ((1 << 24) - 1)
    );
    field!(out, "executable", "{}", shared.executable);
    field!(out, "config_file", "{config_file}");
    field!(out, "io_threads_active", "0");
}

/// (largest query buffer, largest output buffer, sum of both) over connected clients.
fn client_buffers(ctx: &Ctx<'_>) -> (usize, usize, usize) {
    let clients = ctx.shared.clients.lock();
    let mut input_max = 0;
    let mut output_max = 0;
    let mut total = 0;
    for client in clients.values() {
        let input = client.query_buffer.load(Ordering::Relaxed);
        let output = client.output_memory.load(Ordering::Relaxed);
        input_max = input_max.max(input);
        output_max = output_max.max(output);
        total += input + output;
    }
    (input_max, output_max, total)
}

fn info_clients(ctx: &Ctx<'_>, out: &mut String) {
    let config = ctx.shared.config();
    let (input_max, output_max, _) = client_buffers(ctx);
    out.push_str("# Clients\r\n");
    field!(
        out,
        "connected_clients",
        "{}",
        ctx.shared.connected_clients.load(Ordering::Relaxed)
    );
    field!(out, "cluster_connections", "0");
    field!(out, "maxclients", "{}", config.maxclients);
    field!(out, "client_recent_max_input_buffer", "{input_max}");
    field!(out, "client_recent_max_output_buffer", "{output_max}");
    field!(
        out,
        "blocked_clients",
        "{}",
        ctx.store.blocking.len() + ctx.store.replication.master_side.waiting.len()
    );
    field!(out, "tracking_clients", "0");
    field!(out, "clients_in_timeout_table", "0");
}

/// Total memory of the machine, from /proc/meminfo.
fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// Estimated bookkeeping bytes per key (table slot, key header, expiry slot): what Redis
/// counts as dataset overhead rather than data.
const KEY_OVERHEAD_BYTES: u64 = 56;

/// Ratio `a / b` with Redis' guard against division by zero.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn info_memory(ctx: &Ctx<'_>, out: &mut String) {
    let config = ctx.shared.config();
    let (used, peak, startup) = memory_sample();
    let rss = resident_set_size();
    let (_, _, clients_memory) = client_buffers(ctx);
    let keys: u64 = ctx.store.dbs.iter().map(|db| db.len() as u64).sum();
    let overhead = (startup + clients_memory as u64 + keys * KEY_OVERHEAD_BYTES).min(used);
    let dataset = used - overhead;
    let system = total_system_memory();
    out.push_str("# Memory\r\n");
    field!(out, "used_memory", "{used}");
    field!(out, "used_memory_human", "{}", bytes_to_human(used));
    field!(out, "used_memory_rss", "{rss}");
    field!(out, "used_memory_rss_human", "{}", bytes_to_human(rss));
    field!(out, "used_memory_peak", "{peak}");
    field!(out, "used_memory_peak_human", "{}", bytes_to_human(peak));
    field!(
        out,
        "used_memory_peak_perc",
        "{:.2}%",
        ratio(used, peak) * 100.0
    );
    field!(out, "used_memory_overhead", "{overhead}");
    field!(out, "used_memory_startup", "{startup}");
    field!(out, "used_memory_dataset", "{dataset}");
    field!(
        out,
        "used_memory_dataset_perc",
        "{:.2}%",
        ratio(dataset, used - startup) * 100.0
    );
    // mimalloc's own figures are not exposed; the allocator is reported as the counter sees it.
    field!(out, "allocator_allocated", "{used}");
    field!(out, "allocator_active", "{used}");
    field!(out, "allocator_resident", "{rss}");
    field!(out, "total_system_memory", "{system}");
    field!(
        out,
        "total_system_memory_human",
        "{}",
        bytes_to_human(system)
    );
    // No scripting engine: every Lua / function figure is zero.
    field!(out, "used_memory_lua", "0");
    field!(out, "used_memory_vm_eval", "0");
    field!(out, "used_memory_lua_human", "0B");
    field!(out, "used_memory_scripts_eval", "0");
    field!(out, "number_of_cached_scripts", "0");
    field!(out, "number_of_functions", "0");
    field!(out, "number_of_libraries", "0");
    field!(out, "used_memory_vm_functions", "0");
    field!(out, "used_memory_vm_total", "0");
    field!(out, "used_memory_vm_total_human", "0B");
    field!(out, "used_memory_functions", "0");
    field!(out, "used_memory_scripts", "0");
    field!(out, "used_memory_scripts_human", "0B");
    field!(out, "maxmemory", "{}", config.maxmemory);
    field!(
        out,
        "maxmemory_human",
        "{}",
        bytes_to_human(config.maxmemory)
    );
    field!(
        out,
        "maxmemory_policy",
        "{}",
        config.maxmemory_policy.name()
    );
    field!(out, "allocator_frag_ratio", "1.00");
    field!(out, "allocator_frag_bytes", "0");
    field!(out, "allocator_rss_ratio", "{:.2}", ratio(rss, used));
    field!(out, "allocator_rss_bytes", "{}", rss as i64 - used as i64);
    field!(out, "rss_overhead_ratio", "1.00");
    field!(out, "rss_overhead_bytes", "0");
    field!(out, "mem_fragmentation_ratio", "{:.2}", ratio(rss, used));
    field!(
        out,
        "mem_fragmentation_bytes",
        "{}",
        rss as i64 - used as i64
    );
    field!(out, "mem_not_counted_for_evict", "0");
    field!(out, "mem_replication_backlog", "0");
    field!(out, "mem_total_replication_buffers", "0");
    field!(out, "mem_clients_slaves", "0");
    field!(out, "mem_clients_normal", "{clients_memory}");
    field!(out, "mem_cluster_links", "0");
    field!(out, "mem_aof_buffer", "0");
    field!(out, "mem_allocator", "mimalloc");
    field!(out, "active_defrag_running", "0");
    field!(out, "lazyfree_pending_objects", "0");
    field!(out, "lazyfreed_objects", "0");
}

/// INFO persistence, in Redis 7.0's order. ringkv loads before it serves, so `loading` is 0
/// whenever a client can ask.
fn info_persistence(ctx: &Ctx<'_>, out: &mut String) {
    use crate::persistence::fork::ChildKind;
    let state = &ctx.store.persistence;
    let rdb_child = state.child.as_ref().filter(|c| c.kind == ChildKind::Rdb);
    out.push_str("# Persistence\r\n");
    field!(out, "loading", "0");
    field!(out, "async_loading", "0");
    field!(out, "current_cow_peak", "0");
    field!(out, "current_cow_size", "0");
    field!(out, "current_cow_size_age", "0");
    field!(out, "current_fork_perc", "0.00");
    field!(out, "current_save_keys_processed", "0");
    field!(out, "current_save_keys_total", "0");
    field!(out, "rdb_changes_since_last_save", "{}", ctx.store.dirty);
    field!(
        out,
        "rdb_bgsave_in_progress",
        "{}",
        rdb_child.is_some() as u8
    );
    field!(out, "rdb_last_save_time", "{}", state.lastsave_unix);
    field!(
        out,
        "rdb_last_bgsave_status",
        "{}",
        if state.last_bgsave_ok { "ok" } else { "err" }
    );
    field!(
        out,
        "rdb_last_bgsave_time_sec",
        "{}",
        state.last_bgsave_time_sec
    );
    field!(
        out,
        "rdb_current_bgsave_time_sec",
        "{}",
        rdb_child.map_or(-1, |c| c.started.elapsed().as_secs() as i64)
    );
    field!(out, "rdb_saves", "{}", state.rdb_saves);
    field!(out, "rdb_last_cow_size", "{}", state.rdb_last_cow_size);
    field!(
        out,
        "rdb_last_load_keys_expired",
        "{}",
        state.last_load_keys_expired
    );
    field!(
        out,
        "rdb_last_load_keys_loaded",
        "{}",
        state.last_load_keys_loaded
    );
    let (aof_lines, aof_on_lines) = crate::persistence::aof::info_lines(ctx.store, ctx.now_ms);
    out.push_str(&aof_lines);
    field!(out, "module_fork_in_progress", "0");
    field!(out, "module_fork_last_cow_size", "0");
    out.push_str(&aof_on_lines);
}

fn info_stats(ctx: &Ctx<'_>, out: &mut String) {
    let stats = &ctx.shared.stats;
    let get = |counter: &Counter| counter.get();
    let (ops, input_kbps, output_kbps) = instantaneous_rates(stats);
    let (channels, patterns) = {
        let pubsub = ctx.shared.pubsub.lock();
        (pubsub.channel_count(), pubsub.pattern_count())
    };
    out.push_str("# Stats\r\n");
    field!(
        out,
        "total_connections_received",
        "{}",
        get(&stats.total_connections_received)
    );
    field!(
        out,
        "total_commands_processed",
        "{}",
        get(&stats.total_commands_processed)
    );
    field!(out, "instantaneous_ops_per_sec", "{ops}");
    field!(
        out,
        "total_net_input_bytes",
        "{}",
        get(&stats.total_net_input_bytes)
    );
    field!(
        out,
        "total_net_output_bytes",
        "{}",
        get(&stats.total_net_output_bytes)
    );
    field!(out, "total_net_repl_input_bytes", "0");
    field!(
        out,
        "total_net_repl_output_bytes",
        "{}",
        get(&stats.total_net_repl_output_bytes)
    );
    field!(out, "instantaneous_input_kbps", "{input_kbps:.2}");
    field!(out, "instantaneous_output_kbps", "{output_kbps:.2}");
    field!(out, "instantaneous_input_repl_kbps", "0.00");
    field!(out, "instantaneous_output_repl_kbps", "0.00");
    field!(
        out,
        "rejected_connections",
        "{}",
        get(&stats.rejected_connections)
    );
    let sync = ctx.store.replication.master_side.stats;
    field!(out, "sync_full", "{}", sync.full);
    field!(out, "sync_partial_ok", "{}", sync.partial_ok);
    field!(out, "sync_partial_err", "{}", sync.partial_err);
    field!(out, "expired_keys", "{}", ctx.store.expired_total());
    field!(
        out,
        "expired_stale_perc",
        "{:.2}",
        get(&stats.expired_stale_perc) as f64 / 100.0
    );
    field!(out, "expired_time_cap_reached_count", "0");
    field!(out, "expire_cycle_cpu_milliseconds", "0");
    field!(out, "evicted_keys", "{}", get(&stats.evicted_keys));
    field!(out, "evicted_clients", "0");
    field!(out, "total_eviction_exceeded_time", "0");
    field!(out, "current_eviction_exceeded_time", "0");
    field!(out, "keyspace_hits", "{}", get(&stats.keyspace_hits));
    field!(out, "keyspace_misses", "{}", get(&stats.keyspace_misses));
    field!(out, "pubsub_channels", "{channels}");
    field!(out, "pubsub_patterns", "{patterns}");
    field!(out, "pubsubshard_channels", "0");
    field!(
        out,
        "latest_fork_usec",
        "{}",
        ctx.store.persistence.latest_fork_usec
    );
    field!(out, "total_forks", "{}", ctx.store.persistence.total_forks);
    field!(out, "migrate_cached_sockets", "0");
    field!(out, "slave_expires_tracked_keys", "0");
    field!(out, "active_defrag_hits", "0");
    field!(out, "active_defrag_misses", "0");
    field!(out, "active_defrag_key_hits", "0");
    field!(out, "active_defrag_key_misses", "0");
    field!(out, "total_active_defrag_time", "0");
    field!(out, "current_active_defrag_time", "0");
    field!(out, "tracking_total_keys", "0");
    field!(out, "tracking_total_items", "0");
    field!(out, "tracking_total_prefixes", "0");
    field!(
        out,
        "unexpected_error_replies",
        "{}",
        get(&stats.unexpected_error_replies)
    );
    field!(
        out,
        "total_error_replies",
        "{}",
        get(&stats.total_error_replies)
    );
    field!(out, "dump_payload_sanitizations", "0");
    field!(
        out,
        "total_reads_processed",
        "{}",
        get(&stats.total_reads_processed)
    );
    field!(
        out,
        "total_writes_processed",
        "{}",
        get(&stats.total_writes_processed)
    );
    field!(
        out,
        "io_threaded_reads_processed",
        "{}",
        get(&stats.io_threaded_reads_processed)
    );
    field!(out, "io_threaded_writes_processed", "0");
    field!(out, "reply_buffer_shrinks", "0");
    field!(out, "reply_buffer_expands", "0");
}

/// INFO replication, in Redis 7.0's order: the role (and, on a replica, its master link),
/// the replicas, then the history (IDs, offsets, backlog).
fn info_replication(ctx: &Ctx<'_>, out: &mut String) {
    let config = ctx.shared.config();
    out.push_str("# Replication\r\n");
    let replica = ctx.store.replication.replica_side.is_replica();
    field!(out, "role", "{}", if replica { "slave" } else { "master" });
    crate::replication::replica::info_fields(ctx.store, &config, unix_time_ms(), out);
    crate::replication::master::info_replicas(&config, ctx.store, out);
    crate::replication::master::info_history(&config, ctx.store, out);
}

/// `getrusage(who)` user and system time as Redis prints them (`%ld.%06ld`).
fn cpu_times(who: libc::c_int) -> (String, String) {
    // SAFETY: rusage is plain old data that getrusage fills.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let format = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (format(usage.ru_stime), format(usage.ru_utime))
}

fn info_cpu(out: &mut String) {
    let (system, user) = cpu_times(libc::RUSAGE_SELF);
    let (system_children, user_children) = cpu_times(libc::RUSAGE_CHILDREN);
    let (system_thread, user_thread) = cpu_times(libc::RUSAGE_THREAD);
    out.push_str("# CPU\r\n");
    field!(out, "used_cpu_sys", "{system}");
    field!(out, "used_cpu_user", "{user}");
    field!(out, "used_cpu_sys_children", "{system_children}");
    field!(out, "used_cpu_user_children", "{user_children}");
    field!(out, "used_cpu_sys_main_thread", "{system_thread}");
    field!(out, "used_cpu_user_main_thread", "{user_thread}");
}

/// Keys sampled per database to estimate `avg_ttl`.
const AVG_TTL_SAMPLES: usize = 64;

/// Estimated average remaining time to live (ms) of the keys of `db` that have one, from
/// up to [`AVG_TTL_SAMPLES`] keys spread over the table (Redis also reports an estimate).
fn average_ttl_ms(db: &Db, now_ms: u64) -> u64 {
    if db.expires_len() == 0 || db.is_empty() {
        return 0;
    }
    let len = db.len();
    let step = (len / AVG_TTL_SAMPLES).max(1);
    let mut total: u128 = 0;
    let mut count: u128 = 0;
    for index in (0..len).step_by(step).take(AVG_TTL_SAMPLES) {
        let Some((key, _)) = db.entry_at(index) else {
            break;
        };
        if let Some(at) = db.expire_at(key) {
            total += at.saturating_sub(now_ms) as u128;
            count += 1;
        }
    }
    total.checked_div(count).unwrap_or(0) as u64
}

fn info_keyspace(ctx: &Ctx<'_>, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    for (index, db) in ctx.store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        field!(
            out,
            format!("db{index}"),
            "keys={},expires={},avg_ttl={}",
            db.len(),
            db.expires_len(),
            average_ttl_ms(db, ctx.now_ms)
        );
    }
}

// ---------------------------------------------------------------------------------------
// CONFIG
// ---------------------------------------------------------------------------------------

fn config(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = subcommand("config", args)?;
    match sub.name {
        "get" => config_get(ctx, &args[2..]),
        "set" => config_set(ctx, &args[2..]),
        "resetstat" => {
            reset_stats(ctx);
            ctx.reply.ok();
            Ok(())
        }
        "rewrite" => config_rewrite(ctx),
        "help" => {
            reply_help(
                ctx.reply,
                "CONFIG",
                &[
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                    "REWRITE",
                    "    Rewrite the configuration file.",
                ],
            );
            Ok(())
        }
        other => unreachable!("config subcommand {other} without handler"),
    }
}

/// CONFIG GET pattern [pattern ...]: a map of every matching directive (each name once).
fn config_get(ctx: &mut Ctx<'_>, patterns: &[&[u8]]) -> CmdResult {
    let config = ctx.shared.config();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pattern in patterns {
        for (name, value) in config.get(pattern) {
            if !pairs.iter().any(|(n, _)| *n == name) {
                pairs.push((name, value));
            }
        }
    }
    ctx.reply.map(pairs.len());
    for (name, value) in pairs {
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.bulk(value.as_bytes());
    }
    Ok(())
}

/// CONFIG SET name value [name value ...]: all or nothing; every core picks the new
/// configuration up on its next loop turn.
fn config_set(ctx: &mut Ctx<'_>, rest: &[&[u8]]) -> CmdResult {
    if !rest.len().is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    let pairs: Vec<(String, String)> = rest
        .chunks(2)
        .map(|pair| (args::text(pair[0]), args::text(pair[1])))
        .collect();
    let local = client_is_local(ctx);
    // Validate everything first (a refused change must not move the working directory).
    let mut candidate = (*ctx.shared.config()).clone();
    candidate
        .set_many_as(&pairs, local)
        .map_err(CmdError::new)?;
    // `dir` takes effect by changing the working directory, which can fail: try it before
    // publishing so a bad directory leaves the configuration untouched, as in Redis.
    if let Some((_, dir)) = pairs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("dir"))
    {
        std::env::set_current_dir(dir).map_err(|error| {
            CmdError::new(format!(
                "ERR CONFIG SET failed (possibly related to argument 'dir') - {}",
                crate::config::os_error_text(&error)
            ))
        })?;
    }
    ctx.shared
        .update_config(|config| config.set_many_as(&pairs, local))
        .map_err(CmdError::new)?;
    // The rest of the knobs are read where they are used (accept, cron, parser, limits);
    // the log level lives in the logger.
    crate::log::set_level(ctx.shared.config().loglevel);
    crate::persistence::aof::config_changed(ctx)?;
    ctx.reply.ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx<'_>) -> CmdResult {
    let config = ctx.shared.config();
    let Some(path) = config.config_file.as_ref() else {
        return Err(CmdError::new(
            "ERR The server is running without a config file",
        ));
    };
    match config.rewrite(path) {
        Ok(()) => {
            crate::log!(Notice, "CONFIG REWRITE executed with success.");
            ctx.reply.ok();
            Ok(())
        }
        Err(error) => {
            crate::log!(Warning, "CONFIG REWRITE failed: {error}");
            Err(CmdError::new(format!("ERR Rewriting config file: {error}")))
        }
    }
}

/// CONFIG RESETSTAT: zeroes INFO's counters, the memory peak and the expired-keys counts.
fn reset_stats(ctx: &mut Ctx<'_>) {
    let stats = &ctx.shared.stats;
    for counter in [
        &stats.total_connections_received,
        &stats.total_commands_processed,
        &stats.rejected_connections,
        &stats.keyspace_hits,
        &stats.keyspace_misses,
        &stats.total_net_input_bytes,
        &stats.total_net_output_bytes,
        &stats.total_net_repl_output_bytes,
        &stats.evicted_keys,
        &stats.expired_stale_perc,
        &stats.client_qbuf_limit_disconnections,
        &stats.client_outbuf_limit_disconnections,
        &stats.total_error_replies,
        &stats.unexpected_error_replies,
        &stats.total_reads_processed,
        &stats.total_writes_processed,
        &stats.io_threaded_reads_processed,
    ] {
        counter.reset();
    }
    for db in ctx.store.dbs.iter_mut() {
        db.expired_total = 0;
    }
    crate::replication::master::reset_stats(ctx.store);
    USED_MEMORY_PEAK.store(used_memory(), Ordering::Relaxed);
    *RATES.lock() = None;
}

// ---------------------------------------------------------------------------------------
// COMMAND
// ---------------------------------------------------------------------------------------

/// All commands, sorted by name (a stable order for COMMAND and COMMAND LIST).
fn all_commands() -> Vec<&'static CommandSpec> {
    let mut specs: Vec<&'static CommandSpec> = super::table().values().copied().collect();
    specs.sort_by_key(|s| s.name);
    specs
}

fn command(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args.len() == 1 {
        let specs = all_commands();
        ctx.reply.array(specs.len());
        for spec in specs {
            reply_command_info(ctx.reply, spec);
        }
        return Ok(());
    }
    let sub = subcommand("command", args)?;
    match sub.name {
        "count" => {
            ctx.reply.int(super::table().len() as i64);
            Ok(())
        }
        "list" => command_list(ctx, &args[2..]),
        "info" => {
            let specs: Vec<Option<&'static CommandSpec>> = if args.len() == 2 {
                all_commands().into_iter().map(Some).collect()
            } else {
                args[2..].iter().map(|name| super::lookup(name)).collect()
            };
            ctx.reply.array(specs.len());
            for spec in specs {
                match spec {
                    Some(spec) => reply_command_info(ctx.reply, spec),
                    None => ctx.reply.null(),
                }
            }
            Ok(())
        }
        "docs" => {
            let specs: Vec<&'static CommandSpec> = if args.len() == 2 {
                all_commands()
            } else {
                args[2..].iter().filter_map(|n| super::lookup(n)).collect()
            };
            ctx.reply.map(specs.len());
            for spec in specs {
                ctx.reply.bulk(spec.name.as_bytes());
                reply_command_docs(ctx.reply, spec);
            }
            Ok(())
        }
        "getkeys" => command_getkeys(ctx, &args[2..]),
        "help" => {
            reply_help(
                ctx.reply,
                "COMMAND",
                &[
                    "(no subcommand)",
                    "    Return details about all Redis commands.",
                    "COUNT",
                    "    Return the total number of commands in this Redis server.",
                    "LIST",
                    "    Return a list of all commands in this Redis server.",
                    "INFO [<command-name> ...]",
                    "    Return details about multiple Redis commands.",
                    "    If no command names are given, documentation details for all",
                    "    commands are returned.",
                    "DOCS [<command-name> ...]",
                    "    Return documentation details about multiple Redis commands.",
                    "    If no command names are given, documentation details for all",
                    "    commands are returned.",
                    "GETKEYS <full-command>",
                    "    Return the keys from a full Redis command.",
                ],
            );
            Ok(())
        }
        other => unreachable!("command subcommand {other} without handler"),
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
fn command_list(ctx: &mut Ctx<'_>, rest: &[&[u8]]) -> CmdResult {
    let mut names: Vec<String> = Vec::new();
    for spec in all_commands() {
        names.push(spec.name.to_string());
        for sub in SUBCOMMANDS.iter().filter(|s| s.container == spec.name) {
            names.push(format!("{}|{}", sub.container, sub.name));
        }
    }
    let names: Vec<String> = match rest {
        [] => names,
        [filterby, kind, value] if args::is(filterby, "FILTERBY") => {
            if args::is(kind, "PATTERN") {
                names
                    .into_iter()
                    .filter(|n| crate::config::string_match(value, n.as_bytes(), true))
                    .collect()
            } else if args::is(kind, "ACLCAT") {
                let category = format!("@{}", args::text(value).to_ascii_lowercase());
                all_commands()
                    .into_iter()
                    .filter(|s| s.group.split_whitespace().any(|g| g == category))
                    .map(|s| s.name.to_string())
                    .collect()
            } else if args::is(kind, "MODULE") {
                Vec::new()
            } else {
                return Err(CmdError::SYNTAX);
            }
        }
        _ => return Err(CmdError::SYNTAX),
    };
    ctx.reply.array(names.len());
    for name in names {
        ctx.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS command arg...: the key arguments per the command's key positions.
fn command_getkeys(ctx: &mut Ctx<'_>, full: &[&[u8]]) -> CmdResult {
    let Some(spec) = super::lookup(full[0]) else {
        return Err(CmdError::new("ERR Invalid command specified"));
    };
    let argc = full.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(CmdError::new(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let positions: Vec<usize> = spec.key_positions(full.len()).collect();
    if positions.is_empty() {
        return Err(CmdError::new("ERR The command has no key arguments"));
    }
    ctx.reply.array(positions.len());
    for position in positions {
        ctx.reply.bulk(full[position]);
    }
    Ok(())
}

/// Writes the flags of `flags` as a set of status replies, in COMMAND INFO order.
fn reply_flags(reply: &mut Reply, flags: u32) {
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    reply.set(names.len());
    for name in names {
        reply.simple(name);
    }
}

/// Writes one key specification derived from first/last/step positions.
fn reply_key_spec(reply: &mut Reply, flags: u32, first: i32, last: i32, step: i32) {
    reply.map(3);
    reply.bulk(b"flags");
    let key_flags: &[&str] = if flags & WRITE != 0 {
        &["RW", "update"]
    } else {
        &["RO", "access"]
    };
    reply.set(key_flags.len());
    for flag in key_flags {
        reply.simple(flag);
    }
    reply.bulk(b"begin_search");
    reply.map(2);
    reply.bulk(b"type");
    reply.bulk(b"index");
    reply.bulk(b"spec");
    reply.map(1);
    reply.bulk(b"index");
    reply.int(first as i64);
    reply.bulk(b"find_keys");
    reply.map(2);
    reply.bulk(b"type");
    reply.bulk(b"range");
    reply.bulk(b"spec");
    reply.map(3);
    reply.bulk(b"lastkey");
    reply.int(if last < 0 { last } else { last - first } as i64);
    reply.bulk(b"keystep");
    reply.int(step as i64);
    reply.bulk(b"limit");
    reply.int(0);
}

/// The 10-element COMMAND INFO entry Redis 7.0 replies:
/// [name, arity, flags, first key, last key, step, ACL categories, tips, key specs, subcommands].
fn reply_command_info(reply: &mut Reply, spec: &CommandSpec) {
    reply.array(10);
    reply.bulk(spec.name.as_bytes());
    reply.int(spec.arity as i64);
    reply_flags(reply, spec.flags);
    reply.int(spec.first_key as i64);
    reply.int(spec.last_key as i64);
    reply.int(spec.key_step as i64);
    reply_categories(reply, spec.group);
    reply.set(0);
    if spec.first_key > 0 {
        reply.array(1);
        reply_key_spec(
            reply,
            spec.flags,
            spec.first_key,
            spec.last_key,
            spec.key_step,
        );
    } else {
        reply.array(0);
    }
    let subs: Vec<&Subcommand> = SUBCOMMANDS
        .iter()
        .filter(|s| s.container == spec.name)
        .collect();
    reply.array(subs.len());
    for sub in subs {
        reply.array(10);
        reply.bulk(format!("{}|{}", sub.container, sub.name).as_bytes());
        reply.int(sub.arity as i64);
        reply_flags(reply, sub.flags);
        reply.int(sub.first_key as i64);
        reply.int(sub.first_key as i64);
        reply.int((sub.first_key > 0) as i64);
        reply_categories(reply, sub.group);
        reply.set(0);
        if sub.first_key > 0 {
            reply.array(1);
            reply_key_spec(reply, sub.flags, sub.first_key, sub.first_key, 1);
        } else {
            reply.array(0);
        }
        reply.array(0);
    }
}

fn reply_categories(reply: &mut Reply, group: &str) {
    let categories: Vec<&str> = group.split_whitespace().collect();
    reply.set(categories.len());
    for category in categories {
        reply.simple(category);
    }
}

/// The documentation group Redis files a command under, guessed from its ACL categories.
fn docs_group(spec: &CommandSpec) -> &'static str {
    const GROUPS: &[(&str, &str)] = &[
        ("@string", "string"),
        ("@list", "list"),
        ("@hash", "hash"),
        ("@set", "set"),
        ("@sortedset", "sorted-set"),
        ("@pubsub", "pubsub"),
        ("@transaction", "transactions"),
        ("@connection", "connection"),
        ("@keyspace", "generic"),
    ];
    let categories: Vec<&str> = spec.group.split_whitespace().collect();
    GROUPS
        .iter()
        .find(|(category, _)| categories.contains(category))
        .map(|(_, group)| *group)
        .unwrap_or("server")
}

/// Minimal COMMAND DOCS entry: summary, since, group, complexity (enough for redis-cli's
/// interactive help, which reads these and tolerates missing arguments).
fn reply_command_docs(reply: &mut Reply, spec: &CommandSpec) {
    reply.map(4);
    reply.bulk(b"summary");
    reply.bulk(format!("The {} command", spec.name.to_ascii_uppercase()).as_bytes());
    reply.bulk(b"since");
    reply.bulk(b"1.0.0");
    reply.bulk(b"group");
    reply.bulk(docs_group(spec).as_bytes());
    reply.bulk(b"complexity");
    reply.bulk(b"");
}

// ---------------------------------------------------------------------------------------
// DEBUG
// ---------------------------------------------------------------------------------------

/// Longest DEBUG SLEEP accepted, so a typo cannot freeze the server for days.
const DEBUG_SLEEP_MAX: Duration = Duration::from_secs(3600);

fn debug(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let local = client_is_local(ctx);
    if !ctx.shared.config().enable_debug_command.allows(local) {
        return Err(CmdError::new(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    // DEBUG changes nothing replicas should see (POPULATE is documented as not propagated).
    ctx.propagate = Propagate::Nothing;
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("help", 2) => {
            reply_help(ctx.reply, "DEBUG", DEBUG_HELP);
            Ok(())
        }
        ("sleep", 3) => {
            let seconds = args::parse_float(args[2]).unwrap_or(0.0).max(0.0);
            let duration = Duration::from_secs_f64(seconds.min(DEBUG_SLEEP_MAX.as_secs_f64()));
            // The store lock is held: like Redis, the whole server stops for the duration.
            std::thread::sleep(duration);
            ctx.reply.ok();
            Ok(())
        }
        ("populate", 3..=5) => debug_populate(ctx, args),
        ("set-active-expire", 3) => {
            let enabled = args::int(args[2]).unwrap_or(0) != 0;
            ctx.shared
                .active_expire_enabled
                .store(enabled, Ordering::Relaxed);
            ctx.reply.ok();
            Ok(())
        }
        ("digest", 2) => {
            let text = digest::dataset_digest(&ctx.store.dbs);
            ctx.reply.simple(&text);
            Ok(())
        }
        ("digest-value", _) => {
            let db = &ctx.store.dbs[ctx.client.db];
            let digests: Vec<String> = args[2..]
                .iter()
                .map(|key| digest::key_value_digest_hex(db, key))
                .collect();
            ctx.reply.array(digests.len());
            for text in digests {
                ctx.reply.simple(&text);
            }
            Ok(())
        }
        ("object", 3) => debug_object(ctx, args[2]),
        ("log", 3) => {
            crate::log!(Warning, "DEBUG LOG: {}", args::text(args[2]));
            ctx.reply.ok();
            Ok(())
        }
        ("error", 3) => Err(CmdError::new(args::text(args[2]))),
        ("reload", _) => {
            crate::persistence::snapshot::debug_reload(ctx.shared, ctx.store)
                .map_err(CmdError::new)?;
            ctx.reply.ok();
            Ok(())
        }
        _ => Err(CmdError::new(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            args::text(args[1])
        ))),
    }
}

const DEBUG_HELP: &[&str] = &[
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

/// DEBUG POPULATE count [prefix] [size]: string keys `<prefix>:<n>` holding `value:<n>`
/// (cut or zero-padded to `size` bytes when given). Existing keys are left alone. Not
/// counted as changes and not propagated, as in Redis.
fn debug_populate(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let out_of_range = || CmdError::new("ERR value is out of range, must be positive");
    let count = args::int(args[2]).map_err(|_| out_of_range())?;
    if count < 0 {
        return Err(out_of_range());
    }
    let prefix: &[u8] = args.get(3).copied().unwrap_or(b"key");
    let size = match args.get(4) {
        Some(arg) => {
            let size = args::int(arg).map_err(|_| out_of_range())?;
            if size < 0 {
                return Err(out_of_range());
            }
            Some(size as usize)
        }
        None => None,
    };
    let db = ctx.client.db;
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for n in 0..count as u64 {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        if ctx.store.dbs[db].peek(&key).is_some() {
            continue;
        }
        let mut value = format!("value:{n}").into_bytes();
        if let Some(size) = size {
            value.resize(size, 0);
        }
        ctx.store.dbs[db].set(&key, Value::Str(Bstr::from_vec(value)));
        ctx.store.touch(db, &key);
    }
    ctx.reply.ok();
    Ok(())
}

/// DEBUG OBJECT key: a line in Redis' shape, with the encoding Redis would pick.
fn debug_object(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let db = &ctx.store.dbs[ctx.client.db];
    let Some(value) = db.peek(key) else {
        return Err(CmdError::NO_SUCH_KEY);
    };
    let encoding = value.encoding_name();
    let length = match value {
        Value::Str(s) => s.len(),
        Value::List(list) => list.len(),
        Value::Hash(hash) => hash.len(),
        Value::Set(set) => set.len(),
        Value::ZSet(zset) => zset.len(),
    };
    let line = format!(
        "Value at:{:p} refcount:1 encoding:{encoding} serializedlength:{} lru:{} lru_seconds_idle:0",
        value as *const Value,
        length + 1,
        (unix_time_ms() / 1000) & ((1 << 24) - 1),
    );
    ctx.reply.simple(&line);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TIME, LASTSAVE, SHUTDOWN, MONITOR, ROLE, WAIT
// ---------------------------------------------------------------------------------------

/// TIME: [unix seconds, microseconds] as bulk strings.
fn time(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let now = unix_time_us();
    ctx.reply.array(2);
    ctx.reply.bulk_int((now / 1_000_000) as i64);
    ctx.reply.bulk_int((now % 1_000_000) as i64);
    Ok(())
}

/// LASTSAVE: unix seconds of the last successful save (the start time before any).
fn lastsave(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.int(ctx.store.persistence.lastsave_unix as i64);
    Ok(())
}

/// SAVE: writes the RDB in the foreground; every client waits, as in Redis.
fn save(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    crate::persistence::snapshot::save(ctx.shared, ctx.store).map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]: forks a child that writes the RDB.
fn bgsave(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    use crate::persistence::fork::ChildKind;
    let schedule = match args.len() {
        1 => false,
        2 if args::is(args[1], "SCHEDULE") => true,
        _ => return Err(CmdError::SYNTAX),
    };
    match ctx.store.persistence.child_kind() {
        Some(ChildKind::Rdb) => {
            return Err(CmdError::new("ERR Background save already in progress"))
        }
        Some(_) if schedule => {
            ctx.store.persistence.bgsave_scheduled = true;
            ctx.reply.simple("Background saving scheduled");
            return Ok(());
        }
        Some(_) => {
            return Err(CmdError::new(
                "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            ))
        }
        None => {}
    }
    match crate::persistence::snapshot::bgsave(ctx.shared, ctx.store) {
        Ok(_) => {
            ctx.reply.simple("Background saving started");
            Ok(())
        }
        Err(error) => {
            crate::log!(Warning, "Can't save in background: {error}");
            Err(CmdError::new("ERR"))
        }
    }
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the server; no reply, the connection
/// closes as the process exits with status 0.
///
/// A running child is stopped; the RDB is saved when SAVE is given or save points are set
/// (not with NOSAVE). A failed save refuses the shutdown unless FORCE. ABORT replies
/// `No shutdown in progress.` since shutdowns here are immediate.
fn shutdown(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let mut save = false;
    let mut nosave = false;
    let mut abort = false;
    let mut force = false;
    for arg in &args[1..] {
        if args::is(arg, "NOSAVE") {
            nosave = true;
        } else if args::is(arg, "SAVE") {
            save = true;
        } else if args::is(arg, "FORCE") {
            force = true;
        } else if args::is(arg, "NOW") {
        } else if args::is(arg, "ABORT") {
            abort = true;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    if (abort && args.len() != 2) || (save && nosave) {
        return Err(CmdError::SYNTAX);
    }
    if abort {
        return Err(CmdError::new("ERR No shutdown in progress."));
    }
    crate::log!(Warning, "User requested shutdown...");
    if let Err(error) =
        crate::persistence::snapshot::save_for_shutdown(ctx.shared, ctx.store, save, nosave)
    {
        if !force {
            return Err(CmdError::new(error));
        }
    }
    ctx.shared.shutdown_exit_code.store(0, Ordering::SeqCst);
    ctx.shared.request_shutdown();
    ctx.propagate = Propagate::Nothing;
    Ok(())
}

/// MONITOR: from now on the connection receives every command the server runs.
fn monitor(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.monitor {
        ctx.reply.ok();
        return Ok(());
    }
    {
        let mut monitors = ctx.shared.monitor_list.lock();
        monitors.push((ctx.client.id, ctx.client.core, ctx.client.conn));
        ctx.shared.monitors.store(monitors.len(), Ordering::Relaxed);
    }
    ctx.client.monitor = true;
    ctx.client.info.monitor.store(true, Ordering::Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// ROLE on a master: `["master", <offset>, [[ip, port, acked offset], ...]]`.
fn role(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if crate::replication::replica::role_reply(ctx.store, ctx.reply) {
        return Ok(());
    }
    crate::replication::master::reply_role(ctx.store, ctx.reply);
    Ok(())
}

/// WAIT numreplicas timeout: blocks until enough replicas acknowledged this client's writes
/// (see [`crate::replication::master::commands::wait`]).
fn wait(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    crate::replication::master::commands::wait(ctx, args)
}

// ---------------------------------------------------------------------------------------
// SLOWLOG, LATENCY, MEMORY
// ---------------------------------------------------------------------------------------

/// SLOWLOG: no command is recorded yet, so the log is always empty.
fn slowlog(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = subcommand("slowlog", args)?;
    match sub.name {
        "get" => {
            if let Some(count) = args.get(2) {
                let count = args::int(count).map_err(|_| {
                    CmdError::new("ERR count should be greater than or equal to -1")
                })?;
                if count < -1 {
                    return Err(CmdError::new(
                        "ERR count should be greater than or equal to -1",
                    ));
                }
            }
            ctx.reply.array(0);
        }
        "len" => ctx.reply.int(0),
        "reset" => ctx.reply.ok(),
        _ => reply_help(
            ctx.reply,
            "SLOWLOG",
            &[
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
            ],
        ),
    }
    Ok(())
}

/// LATENCY: latency monitoring is off (`latency-monitor-threshold 0`), so nothing is ever
/// sampled.
fn latency(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = subcommand("latency", args)?;
    match sub.name {
        "latest" | "history" => ctx.reply.array(0),
        "reset" => ctx.reply.int(0),
        "doctor" => ctx.reply.verbatim(
            b"Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep better tonight.\n",
        ),
        _ => reply_help(
            ctx.reply,
            "LATENCY",
            &[
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
            ],
        ),
    }
    Ok(())
}

/// Estimated bytes a value uses: its payload plus per-element bookkeeping.
fn value_memory(value: &Value) -> usize {
    const ELEMENT_OVERHEAD: usize = 24;
    let element = |b: &Bstr| ELEMENT_OVERHEAD + if b.len() > 22 { b.len() } else { 0 };
    match value {
        Value::Str(s) => 16 + if s.len() > 22 { s.len() } else { 0 },
        Value::List(list) => {
            // The list header, then one 32-byte deque header per chunk.
            40 + 32 * list.chunk_count() + list.iter().map(element).sum::<usize>()
        }
        Value::Set(set) => 64 + set.iter().map(element).sum::<usize>(),
        Value::Hash(hash) => {
            64 + hash
                .iter()
                .map(|(f, v)| element(f) + element(v))
                .sum::<usize>()
        }
        Value::ZSet(zset) => {
            64 + zset
                .iter()
                .map(|(member, _)| 2 * ELEMENT_OVERHEAD + member.len())
                .sum::<usize>()
        }
    }
}

fn memory(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let sub = subcommand("memory", args)?;
    match sub.name {
        "usage" => {
            match args.get(3..) {
                None | Some([]) => {}
                Some([keyword, count]) if args::is(keyword, "SAMPLES") => {
                    let _ = args::int(count)?;
                }
                _ => return Err(CmdError::SYNTAX),
            }
            let now_ms = ctx.now_ms;
            let key = args[2];
            match ctx.db().lookup(key, now_ms) {
                Some(value) => {
                    let bytes = KEY_OVERHEAD_BYTES as usize + key.len() + value_memory(value);
                    ctx.reply.int(bytes as i64);
                }
                None => ctx.reply.null(),
            }
        }
        "stats" => memory_stats(ctx),
        "doctor" => ctx.reply.verbatim(b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"),
        "malloc-stats" => ctx.reply.verbatim(b"Stats not supported for the current allocator\n"),
        "purge" => ctx.reply.ok(),
        _ => reply_help(
            ctx.reply,
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        ),
    }
    Ok(())
}

/// MEMORY STATS: the main figures of INFO memory as a map, in Redis' key names.
fn memory_stats(ctx: &mut Ctx<'_>) {
    let (used, peak, startup) = memory_sample();
    let rss = resident_set_size();
    let (_, _, clients_memory) = client_buffers(ctx);
    let keys: u64 = ctx.store.dbs.iter().map(|db| db.len() as u64).sum();
    let overhead = (startup + clients_memory as u64 + keys * KEY_OVERHEAD_BYTES).min(used);
    let dataset = used - overhead;
    let integers: [(&str, u64); 10] = [
        ("peak.allocated", peak),
        ("total.allocated", used),
        ("startup.allocated", startup),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", clients_memory as u64),
        ("aof.buffer", 0),
        ("overhead.total", overhead),
        ("keys.count", keys),
        ("dataset.bytes", dataset),
    ];
    ctx.reply.map(integers.len() + 3);
    for (name, value) in integers {
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.int(value as i64);
    }
    ctx.reply.bulk(b"dataset.percentage");
    ctx.reply
        .double(ratio(dataset, used - startup.min(used)) * 100.0);
    ctx.reply.bulk(b"peak.percentage");
    ctx.reply.double(ratio(used, peak) * 100.0);
    ctx.reply.bulk(b"fragmentation");
    ctx.reply.double(ratio(rss, used));
}

// ---------------------------------------------------------------------------------------
// MONITOR feed
// ---------------------------------------------------------------------------------------

/// Sends the MONITOR line for a command about to run to every monitoring client:
/// `+<unix seconds>.<micros> [<db> <addr>] "<arg>" "<arg>"...`.
pub fn feed_monitors(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = unix_time_us();
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now / 1_000_000,
        now % 1_000_000,
        ctx.client.db,
        ctx.client.info.addr
    );
    for arg in args {
        line.push_str(" \"");
        for &byte in *arg {
            match byte {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                0x20..=0x7e => line.push(byte as char),
                other => {
                    let _ = write!(line, "\\x{other:02x}");
                }
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    let monitors = ctx.shared.monitor_list.lock();
    for &(client_id, core, conn) in monitors.iter() {
        if client_id == ctx.client.id {
            continue;
        }
        ctx.shared.cores[core].send(CoreMessage::Deliver {
            conn,
            bytes: line.as_bytes().to_vec(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_belongs_to_a_command_of_this_file() {
        for sub in SUBCOMMANDS {
            assert!(
                COMMANDS.iter().any(|c| c.name == sub.container),
                "{}|{}",
                sub.container,
                sub.name
            );
            assert_ne!(sub.arity, 0);
        }
    }

    #[test]
    fn subcommand_errors_match_redis() {
        let error = subcommand("config", &[b"config", b"nosuch"]).err().unwrap();
        assert_eq!(error.0, "ERR unknown subcommand 'nosuch'. Try CONFIG HELP.");
        let error = subcommand("config", &[b"config", b"SET", b"hz"])
            .err()
            .unwrap();
        assert_eq!(
            error.0,
            "ERR wrong number of arguments for 'config|set' command"
        );
        assert!(subcommand("config", &[b"config", b"get", b"*"]).is_ok());
    }

    #[test]
    fn help_reply_frames_lines_like_redis() {
        let mut reply = Reply::default();
        reply_help(&mut reply, "X", &["A", "    does a"]);
        assert_eq!(
            reply.buf,
            b"*5\r\n+X <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+A\r\n+    does a\r\n+HELP\r\n+    Prints this help.\r\n"
        );
    }
}
