//! State shared by all cores, and how a core reaches it.
//!
//! # Shard-access design
//! ringkv runs one event loop per core. Each loop owns its connections outright (their
//! sockets, buffers and per-client state never cross cores), but the keyspace is one
//! [`Store`] behind one mutex, taken **once per read batch**: every command parsed from one
//! `recv` on one connection runs under a single acquisition, so a pipelined client pays one
//! lock round trip per 16 or 100 commands, not per command.
//!
//! Why not per-shard locks or shard ownership with message passing (Dragonfly's design)?
//! * Atomicity comes free: MULTI/EXEC, multi-key commands, SWAPDB, FLUSHALL and blocking pops
//!   that serve waiters need no cross-shard protocol.
//! * The fork safe point for BGSAVE is "hold the store lock and wait for the loops to be idle
//!   between batches": microseconds, and no core is ever inside a command when the child is
//!   born.
//! * Replication order equals execution order by construction: commands are appended to the
//!   propagation stream inside the critical section, so two commands on the same key (or on
//!   any keys) are propagated in the order they ran, and `SELECT` is always right.
//! * On a 2-core machine the work outside the lock (syscalls, parsing, reply encoding) is
//!   the larger share of a request, so the lock is rarely contended. Message passing costs a
//!   cross-core wakeup per remote key, which is more than an uncontended mutex.
//!
//! Measured here (2 cores, `cargo bench --bench shard_access`): a batch of 16 GETs costs
//! 1.8 µs under the shared lock while a second thread hammers the same lock non-stop, and
//! 3.2 µs when handed to an owner thread over a channel (and that owner was spinning, never
//! sleeping: a real owner core woken through its ring costs more). The lock's worst case is
//! cheaper than message passing's best case at this core count.
//!
//! The choice is confined to this module and [`crate::server::event_loop::Core::lock_store`]:
//! going to N shard locks (hash slot → shard) later changes only how a command's keys map to
//! guards, not the command code, which already sees a `&mut Store`.
//!
//! Everything else shared is small and off the hot path: the client registry (CLIENT LIST,
//! KILL), pub/sub subscriptions, statistics (relaxed atomics), and each core's inbox through
//! which other cores hand it replies (pub/sub messages, served blocking pops) and orders
//! (kill a client, shut down), with an eventfd to wake it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam::queue::SegQueue;
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::pubsub::PubSub;
use crate::storage::Store;

/// A message from any core to the core that owns a connection.
#[derive(Debug)]
pub enum CoreMessage {
    /// Append bytes to a connection's output (pub/sub message, MONITOR line).
    Deliver { conn: u64, bytes: Vec<u8> },
    /// A blocked client was served (or unblocked): append its reply and resume its input.
    Unblocked { conn: u64, bytes: Vec<u8> },
    /// Close a connection (CLIENT KILL); `after_reply` lets queued output go first.
    Kill { conn: u64 },
    /// Replication work for a replica connection (its snapshot is ready).
    Replica {
        conn: u64,
        event: crate::replication::master::ReplicaEvent,
    },
    /// Stop the loop.
    Shutdown,
}

/// How other cores reach one core.
pub struct CoreHandle {
    inbox: SegQueue<CoreMessage>,
    /// eventfd the core's ring keeps a read on; a write wakes the loop.
    pub wake_fd: i32,
    /// Set while the core sleeps in the kernel with an empty inbox (avoids needless wakes).
    sleeping: AtomicBool,
    /// The replication stream grew and this core owns online replicas to feed.
    replication_ready: AtomicBool,
}

impl CoreHandle {
    pub fn new() -> std::io::Result<CoreHandle> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(CoreHandle {
            inbox: SegQueue::new(),
            wake_fd: fd,
            sleeping: AtomicBool::new(false),
            replication_ready: AtomicBool::new(false),
        })
    }

    /// Queues `message` and wakes the core if it sleeps.
    pub fn send(&self, message: CoreMessage) {
        self.inbox.push(message);
        if self.sleeping.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Writes to the eventfd.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe { libc::write(self.wake_fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    /// Tells the core the replication stream grew (once per batch, from any core).
    pub fn notify_replication(&self) {
        // Always a release store (never skipped when already set): the core's `take` must
        // synchronize with it to see the bytes committed before this call.
        self.replication_ready.store(true, Ordering::SeqCst);
        if self.sleeping.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Takes the "stream grew" flag.
    #[inline]
    pub fn take_replication_ready(&self) -> bool {
        self.replication_ready.load(Ordering::Relaxed)
            && self.replication_ready.swap(false, Ordering::AcqRel)
    }

    pub fn pop(&self) -> Option<CoreMessage> {
        self.inbox.pop()
    }

    /// Announces that the core is about to sleep; returns false if messages are waiting.
    pub fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if !self.inbox.is_empty() || self.replication_ready.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

impl Drop for CoreHandle {
    fn drop(&mut self) {
        // SAFETY: we own this fd and close it once.
        unsafe { libc::close(self.wake_fd) };
    }
}

/// Kind of client, as CLIENT LIST `flags` and CLIENT KILL TYPE see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Normal,
    Replica,
    Master,
    PubSub,
}

/// What CLIENT LIST / CLIENT INFO / CLIENT KILL need to know about a connection, readable
/// from any core. The owning core updates the atomics as the client works.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub core: usize,
    pub conn: u64,
    pub fd: i32,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<Option<Vec<u8>>>,
    pub last_interaction_ms: AtomicU64,
    pub db: AtomicUsize,
    pub subscriptions: AtomicUsize,
    pub pattern_subscriptions: AtomicUsize,
    pub in_multi: AtomicI64,
    pub query_buffer: AtomicUsize,
    pub output_memory: AtomicUsize,
    pub resp: AtomicUsize,
    pub kind: Mutex<ClientKind>,
    pub monitor: AtomicBool,
    pub blocked: AtomicBool,
    pub last_command: Mutex<&'static str>,
}

impl ClientInfo {
    /// A fresh client: database 0, RESP2, no name, no subscriptions. `conn` is the owning
    /// core's connection token, `fd` -1 for internal clients (AOF loading, tests).
    pub fn new(
        id: u64,
        core: usize,
        conn: u64,
        fd: i32,
        addr: String,
        laddr: String,
        kind: ClientKind,
    ) -> ClientInfo {
        ClientInfo {
            id,
            core,
            conn,
            fd,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            last_interaction_ms: AtomicU64::new(unix_time_ms()),
            db: AtomicUsize::new(0),
            subscriptions: AtomicUsize::new(0),
            pattern_subscriptions: AtomicUsize::new(0),
            in_multi: AtomicI64::new(-1),
            query_buffer: AtomicUsize::new(0),
            output_memory: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            kind: Mutex::new(kind),
            monitor: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            last_command: Mutex::new("NULL"),
        }
    }
}

/// Slots of a [`Counter`]; threads share them round robin.
const COUNTER_SLOTS: usize = 8;

/// A statistics counter bumped from every core without contention: each thread adds to its
/// own cache line, readers sum the lines.
#[derive(Default, Debug)]
pub struct Counter {
    slots: [crossbeam::utils::CachePadded<AtomicU64>; COUNTER_SLOTS],
}

static NEXT_COUNTER_SLOT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTER_SLOT: usize = NEXT_COUNTER_SLOT.fetch_add(1, Ordering::Relaxed) % COUNTER_SLOTS;
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        let slot = COUNTER_SLOT.try_with(|s| *s).unwrap_or(0);
        self.slots[slot].fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }

    /// CONFIG RESETSTAT. Concurrent adds may survive the reset; the figure stays monotonic
    /// from there on, as Redis' own reset is only as exact as its single thread.
    pub fn reset(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// Server statistics for INFO stats, bumped from any core.
#[derive(Default, Debug)]
pub struct Stats {
    pub total_connections_received: Counter,
    pub total_commands_processed: Counter,
    pub rejected_connections: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub total_net_input_bytes: Counter,
    pub total_net_output_bytes: Counter,
    /// Bytes sent to replicas (snapshots and stream), INFO `total_net_repl_output_bytes`.
    pub total_net_repl_output_bytes: Counter,
    pub evicted_keys: Counter,
    pub expired_stale_perc: Counter,
    pub client_qbuf_limit_disconnections: Counter,
    pub client_outbuf_limit_disconnections: Counter,
    pub total_error_replies: Counter,
    pub unexpected_error_replies: Counter,
    pub total_reads_processed: Counter,
    pub total_writes_processed: Counter,
    pub io_threaded_reads_processed: Counter,
    pub pubsub_channels: Counter,
}

impl Stats {
    #[inline]
    pub fn add(counter: &Counter, n: u64) {
        counter.add(n);
    }
}

/// Everything the cores share.
pub struct Shared {
    config: RwLock<Arc<Config>>,
    /// Bumped on every CONFIG SET so cores refresh their cached [`Config`].
    pub config_epoch: AtomicU64,
    /// The keyspace; see the module doc for why one lock. Reached through
    /// [`Shared::lock_store`] only, so every critical section ends with [`Store::end_batch`].
    store: Mutex<Store>,
    pub pubsub: Mutex<PubSub>,
    pub clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    pub connected_clients: AtomicUsize,
    next_client_id: AtomicU64,
    pub cores: Vec<CoreHandle>,
    pub stats: Stats,
    /// Number of connections in MONITOR mode (checked before formatting MONITOR lines).
    pub monitors: AtomicUsize,
    /// The MONITOR connections: (client id, core, connection token).
    pub monitor_list: Mutex<Vec<(u64, usize, u64)>>,
    /// 40 hex chars, new every start (INFO `run_id`).
    pub run_id: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub shutdown: AtomicBool,
    pub shutdown_exit_code: AtomicI64,
    /// Whether the active expire cycle runs (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire_enabled: AtomicBool,
    /// TCP port actually bound (for INFO when `port 0` is asked, and CLIENT LIST laddr).
    pub bound_port: AtomicUsize,
    /// Path of the executable, for INFO `executable`.
    pub executable: String,
    /// Where the event loops stop while a fork is made.
    pub safe_point: crate::persistence::fork::SafePoint,
}

impl Shared {
    pub fn new(config: Config, cores: usize) -> std::io::Result<Shared> {
        let databases = config.databases;
        Ok(Shared {
            config: RwLock::new(Arc::new(config)),
            config_epoch: AtomicU64::new(0),
            store: Mutex::new(Store::new(databases)),
            pubsub: Mutex::new(PubSub::default()),
            clients: Mutex::new(HashMap::new()),
            connected_clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            cores: (0..cores)
                .map(|_| CoreHandle::new())
                .collect::<Result<_, _>>()?,
            stats: Stats::default(),
            monitors: AtomicUsize::new(0),
            monitor_list: Mutex::new(Vec::new()),
            run_id: new_run_id(),
            started: Instant::now(),
            started_unix_ms: unix_time_ms(),
            shutdown: AtomicBool::new(false),
            shutdown_exit_code: AtomicI64::new(0),
            active_expire_enabled: AtomicBool::new(true),
            bound_port: AtomicUsize::new(0),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            safe_point: crate::persistence::fork::SafePoint::new(cores),
        })
    }

    /// Takes the keyspace lock. When the guard drops, [`Store::end_batch`] hands the writes of
    /// the critical section to their consumers (the AOF, later the replication backlog) while
    /// the lock is still held, so they reach them in execution order.
    ///
    /// Never call it while holding another lock: a loop blocked here counts as stopped at a
    /// fork safe point ([`crate::persistence::fork`]).
    pub fn lock_store(&self) -> StoreGuard<'_> {
        self.safe_point.before_store_lock();
        let guard = self.store.lock();
        self.safe_point.after_store_lock();
        StoreGuard(guard, &self.cores)
    }

    /// The current configuration (cheap: clones an `Arc`).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Applies `change` to a copy of the configuration and publishes it to every core.
    pub fn update_config<T>(&self, change: impl FnOnce(&mut Config) -> T) -> T {
        let mut guard = self.config.write();
        let mut next = (**guard).clone();
        let result = change(&mut next);
        *guard = Arc::new(next);
        self.config_epoch.fetch_add(1, Ordering::Release);
        result
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Asks every core to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for core in &self.cores {
            core.send(CoreMessage::Shutdown);
            core.wake();
        }
    }
}

/// The keyspace lock, held. Dereferences to the [`Store`]. Knows the cores so that the end of
/// the batch can wake those owning replicas the batch's writes must reach.
pub struct StoreGuard<'a>(parking_lot::MutexGuard<'a, Store>, &'a [CoreHandle]);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.0
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        self.0.end_batch();
        crate::replication::master::after_batch(&mut self.0, self.1);
    }
}

/// Current unix time in milliseconds.
#[inline]
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Current unix time in microseconds.
pub fn unix_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// 40 random hex characters (run ids, replication ids).
pub fn new_run_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
