//! The master side: this server's replicas, the snapshots made for them, and what the
//! replication stream owes them.
//!
//! # Who holds what
//! - [`MasterSide`] lives in the keyspace ([`ReplicationState::master_side`]), so every state
//!   change happens under the keyspace lock, in the same critical section as the data and the
//!   stream offsets it refers to: one [`Replica`] record per replica (state, capabilities,
//!   acknowledged offset, the offset its stream starts at), the snapshot child being made for
//!   them, the clients blocked in `WAIT`, the sync counters of INFO stats.
//! - The connection itself stays on the core that accepted it
//!   (`server::event_loop::replica_conn`): the keep-alives, the snapshot transfer (io_uring
//!   splice, file → pipe → socket) and the online stream, sent straight from the backlog
//!   mapping through the replica's own cursor. No replica owns a copy of the stream.
//! - The per-connection `REPLCONF` settings a client announced before `PSYNC`/`SYNC` live in
//!   its `ClientState` ([`ReplicaHello`]).
//!
//! # States, as INFO names them
//! `wait_bgsave` (waiting for a snapshot child to start, or to end), `send_bulk` (the file is
//! on its way), `online` (streaming from the backlog). A partial resync (`+CONTINUE`) goes
//! online at once.
//!
//! # Full resync: to disk by default, diskless when configured
//! A full resync forks an RDB child that writes `dbfilename` (as a `BGSAVE` does, and counted
//! as one); every replica arriving while it runs, with the same requirements, shares it. The
//! `+FULLRESYNC` offset is the master offset at the fork, taken after the pending stream bytes
//! were handed to the backlog, and the replica's cursor starts right after it: the writes made
//! meanwhile are simply the backlog from there. If the backlog overruns that cursor before the
//! replica is online, it is disconnected and needs another full sync.
//!
//! With `repl-diskless-sync yes`, replicas that announced `capa eof` get the snapshot straight
//! from the child through one pipe each, `$EOF:<mark>` framed ([`diskless`]: the delay that
//! lets replicas share one child, going online on the first `REPLCONF ACK`). Others (no
//! `capa eof`, e.g. a bare `SYNC`) still get the disk snapshot, as in Redis, and one of them
//! waiting turns the whole shared child into a disk one. **ringkv's default is `no`** where
//! Redis 7.0's is `yes`: the disk file is written once by the child and sent zero-copy with
//! `splice` to every replica sharing it, and a transfer never holds the child back (a slow
//! replica costs neither a longer-lived fork nor copy-on-write memory); a diskless child
//! writes at the pace of its slowest replica. A `redis.conf` saying `yes` (Debian's) gets
//! diskless.
//!
//! # The stream beside the snapshot (ringkv replicas)
//! A ringkv replica announces `REPLCONF snapshot-only 1` on the connection it syncs with. On
//! a `+FULLRESYNC` that connection is treated like `rdb-only`: it gets the snapshot, is owed
//! no stream (so it is exempt from the backlog overrun and output limit checks) and is closed
//! after the file. At the same time the replica opens a second connection and asks
//! `PSYNC <replid> <fork offset + 1>`, a plain partial resync that goes online at once, and
//! receives the stream as it is written while the snapshot is made, sent and loaded (it
//! spools it to its own disk). A large snapshot under a heavy write load therefore never
//! makes this master hold gigabytes for a replica, nor drop it into a resync loop. Real
//! Redis replicas never send the option and get the one-connection protocol.
//!
//! # Resuming a broken transfer
//! The last snapshot made for replicas is kept (its open file) for
//! `repl-resume-snapshot-ttl` seconds; see [`resume`].
//!
//! # The backlog is the replicas' output buffer
//! A replica is owed the stretch of backlog between its cursor and the end of the stream;
//! `client-output-buffer-limit replica` applies to that lag. A replica lagging by more than
//! the ring holds is overrun and must resync in full, so `repl-backlog-size` (default 1mb, as
//! in Redis; the ring is a file mapping, so gigabytes are fine) must cover what is written
//! while a replica is slow or while a full resync is made and sent; otherwise a loaded master
//! sends replicas into a resync loop sooner than Redis would with its 256mb replica buffers.
//! A new `repl-backlog-size` takes effect when the backlog is next created (after
//! `repl-backlog-ttl` without replicas); INFO's `repl_backlog_size` shows the ring's size.
//!
//! # Stream bookkeeping
//! [`feed_stream`] runs in `Store::end_batch`: the batch's bytes go into the backlog when there
//! is one (advancing `master_repl_offset`), and the cores owning online replicas are woken once
//! per batch ([`after_batch`]). Without a backlog nothing here runs. `PING` (every
//! `repl-ping-replica-period`) and `REPLCONF GETACK *` (once per batch of `WAIT`s) go into the
//! backlog only, never into the AOF, as in Redis.

pub mod commands;
pub mod diskless;
pub mod limits;
pub mod resume;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::backlog::Reader;
use super::state::{ReplicationState, NO_REPLID};
use crate::log;
use crate::persistence::fork::{self, ChildKind};
use crate::persistence::{rdb, snapshot};
use crate::protocol::Resp;
use crate::server::shared::{unix_time_ms, CoreHandle, CoreMessage, Shared};
use crate::storage::Store;

/// `PING` as it appears in the stream.
pub const STREAM_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
/// `REPLCONF GETACK *` as it appears in the stream.
pub const STREAM_GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

/// What a client announced with `REPLCONF` before (and after) asking to sync. Kept with the
/// connection (`ClientState::replica`), created on its first `REPLCONF`, `PSYNC` or `SYNC`.
#[derive(Debug, Default)]
pub struct ReplicaHello {
    /// `listening-port`: the port the replica serves clients on (INFO, ROLE).
    pub listening_port: i64,
    /// `ip-address`: the address to show instead of the peer address.
    pub ip_address: Option<String>,
    /// `capa eof`: understands `$EOF:` framing (diskless); recorded, not needed by ringkv.
    pub capa_eof: bool,
    /// `capa psync2`: understands `+CONTINUE <replid>`.
    pub capa_psync2: bool,
    /// `rdb-only 1`: wants the snapshot and nothing after it (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// `snapshot-only 1` (ringkv's own): like `rdb-only`, because the replica takes the
    /// stream through a second connection (see the module doc).
    pub snapshot_only: bool,
    /// `sync-stream 1` (ringkv's own): this is that second connection; its `PSYNC` is part of
    /// a full sync, not a partial resync of its own (`sync_partial_ok` does not count it).
    pub sync_stream: bool,
    /// `rdb-no-compress 1` (ringkv's own): the snapshot should skip LZF compression.
    pub no_compress: bool,
    /// `rdb-resume` (ringkv's own): the broken transfer this replica wants to resume,
    /// accepted when it was announced.
    pub resume: Option<resume::ResumeRequest>,
    /// Became a replica (`PSYNC`/`SYNC` accepted): later `SYNC`s are ignored.
    pub registered: bool,
    /// Set by `PSYNC`/`SYNC` for the owning core to take over the connection after the batch.
    pub handoff: Option<Handoff>,
}

/// What the core does with a connection that just became a replica.
#[derive(Debug)]
pub enum Handoff {
    /// `+CONTINUE` was queued: stream from this cursor once it is sent.
    Stream(Reader),
    /// `+FULLRESYNC` was queued, or will be when a snapshot starts: wait for the file
    /// ([`ReplicaEvent::SendSnapshot`]) and send `\n` keep-alives meanwhile.
    AwaitSnapshot,
    /// `+RESUME` was queued: send the rest of the snapshot file, from byte `from`, then go
    /// online ([`resume`]).
    Resume {
        file: Arc<File>,
        len: u64,
        from: u64,
    },
}

/// A replica's state, as INFO `slaveN:...,state=` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Waiting for a snapshot child to start.
    WaitBgsaveStart,
    /// Attached to the running snapshot child.
    WaitBgsaveEnd,
    /// The snapshot file is being sent.
    SendBulk,
    /// Receiving the stream.
    Online,
}

impl ReplicaState {
    /// The word INFO prints.
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsaveStart | ReplicaState::WaitBgsaveEnd => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One replica, as the master tracks it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub client_id: u64,
    /// Core owning the connection, and the connection's token there.
    pub core: usize,
    pub conn: u64,
    /// Address shown in INFO/ROLE: `REPLCONF ip-address`, else the peer's IP.
    pub ip: String,
    /// `REPLCONF listening-port` (0 when not announced).
    pub listening_port: i64,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    pub rdb_only: bool,
    pub snapshot_only: bool,
    /// The stream connection of a split full sync (`REPLCONF sync-stream 1`).
    pub sync_stream: bool,
    /// Whether it holds the data set, so it may count for `min-replicas-to-write`: false
    /// for a stream connection until its replica has the whole snapshot (its other
    /// connection sent the last byte, or it sent a `REPLCONF ACK`, which it does only after
    /// loading). Redis counts a replica from the end of its transfer on; this keeps a
    /// replica whose snapshot is still being made or sent from counting earlier.
    pub has_snapshot: bool,
    /// A `snapshot-only` connection that sent the whole snapshot.
    pub snapshot_delivered: bool,
    pub no_compress: bool,
    /// Came with the old `SYNC`: no `+FULLRESYNC`, no ACKs expected.
    pub pre_psync: bool,
    pub state: ReplicaState,
    /// Highest offset the replica acknowledged (`REPLCONF ACK`).
    pub ack_offset: i64,
    /// Unix seconds of the last ACK (or of going online).
    pub ack_time: u64,
    /// First stream offset this replica needs (PSYNC-style); meaningful from
    /// `WaitBgsaveEnd` on.
    pub stream_start: u64,
    /// When the pending stream first went over the soft output limit (unix ms), while not
    /// online (the owning core tracks it once online).
    pub soft_limit_since: Option<u64>,
    /// When it asked to sync (unix ms): `repl-diskless-sync-delay` counts from the oldest.
    pub asked_ms: u64,
    /// Its diskless transfer, from the fork until the stream starts.
    pub diskless: Option<diskless::Transfer>,
}

impl Replica {
    /// `ip:port` (or `ip:<unknown-replica-port>`), for logs.
    pub fn name(&self) -> String {
        replica_name(&self.ip, self.listening_port)
    }

    /// Whether INFO and ROLE list it. A stream connection whose replica does not have the
    /// snapshot yet is left out: its snapshot connection stands for the replica meanwhile
    /// (`wait_bgsave`, `send_bulk`), so a syncing replica is listed once, as in Redis, and
    /// afterwards the stream connection is (`online`).
    pub fn listed(&self) -> bool {
        !self.sync_stream || self.has_snapshot
    }

    /// Called when the whole snapshot was sent. A client that wanted only the snapshot
    /// (`snapshot-only`, `rdb-only`) is done: this logs it and returns true, and the
    /// connection is to close. A `snapshot-only` one is marked delivered, so its stream
    /// connection counts for min-replicas from the next recount on. False for a replica that
    /// goes on to the stream.
    pub fn wanted_only_the_snapshot(&mut self) -> bool {
        if self.snapshot_only {
            log!(
                Notice,
                "Snapshot sent to replica {}, which takes the stream through its other connection",
                self.name()
            );
            self.snapshot_delivered = true;
            return true;
        }
        if self.rdb_only {
            log!(
                Notice,
                "RDB transfer completed, rdb only replica ({}) should be disconnected asap",
                self.name()
            );
            return true;
        }
        false
    }

    /// Whether this replica needs the snapshot a child with `no_compress` makes.
    fn shares_snapshot(&self, no_compress: bool) -> bool {
        self.no_compress == no_compress
    }
}

/// `ip:port` for logs, as Redis names replicas.
pub fn replica_name(ip: &str, listening_port: i64) -> String {
    if listening_port != 0 {
        if ip.contains(':') {
            format!("[{ip}]:{listening_port}")
        } else {
            format!("{ip}:{listening_port}")
        }
    } else {
        format!("{ip}:<unknown-replica-port>")
    }
}

/// The snapshot child running for replicas.
#[derive(Debug, Clone)]
pub struct SyncSnapshot {
    pub pid: i32,
    /// Replication ID at the fork (with `offset`, the history the file belongs to).
    pub replid: String,
    /// Master offset at the fork: what `+FULLRESYNC` reports.
    pub offset: u64,
    /// Written without LZF (`REPLCONF rdb-no-compress`).
    pub no_compress: bool,
    /// Streams to the replicas' sockets (no file): nobody can join it once started.
    pub diskless: bool,
}

/// A client blocked in `WAIT`.
#[derive(Debug, Clone)]
pub struct WaitingClient {
    pub client_id: u64,
    pub core: usize,
    pub conn: u64,
    /// The offset replicas must have acknowledged.
    pub offset: u64,
    pub numreplicas: i64,
    pub resp: Resp,
}

/// Counters INFO stats shows.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    /// `sync_full`: full resyncs served (SYNC, or PSYNC that could not continue).
    pub full: u64,
    /// `sync_partial_ok`: PSYNCs answered `+CONTINUE`.
    pub partial_ok: u64,
    /// `sync_partial_err`: PSYNCs refused (not counting `PSYNC ? -1`).
    pub partial_err: u64,
}

/// An order for the core that owns a replica connection.
#[derive(Debug)]
pub enum ReplicaEvent {
    /// The snapshot is on disk: send `$<len>\r\n` and the file, then go online.
    SendSnapshot { file: Arc<File>, len: u64 },
    /// A diskless child writes the framed snapshot into this pipe: splice it into the socket
    /// until end of file, then report ([`diskless::pipe_drained`]).
    SendPipe { pipe: OwnedFd },
    /// The diskless replica acknowledged: stream from this cursor.
    Stream { reader: Reader },
}

/// This server's replicas and the snapshot being made for them.
#[derive(Debug)]
pub struct MasterSide {
    /// Every replica, in the order they attached (INFO's `slaveN` order).
    pub replicas: Vec<Replica>,
    /// The snapshot child running for replicas, if any.
    pub snapshot: Option<SyncSnapshot>,
    /// The last snapshot made for replicas, kept so a broken transfer can resume.
    pub retained: Option<resume::RetainedSnapshot>,
    pub stats: SyncStats,
    /// Clients blocked in WAIT, in arrival order.
    pub waiting: Vec<WaitingClient>,
    /// Unix seconds since when there are no replicas (for `repl-backlog-ttl`).
    pub no_replicas_since: u64,
    /// Online replicas whose last ACK is at most `min-replicas-max-lag` old.
    pub good_replicas: usize,
    /// A WAIT asked for `REPLCONF GETACK *` at the end of this batch.
    getack_requested: bool,
    /// Stream bytes were appended in this batch: wake `online_cores` when it ends.
    wake_pending: bool,
    /// Cores owning at least one online replica.
    online_cores: Vec<usize>,
    /// Connections to close at the end of the batch (the backlog lost their history).
    kill_pending: Vec<(usize, u64)>,
    /// Replication cron: next run (unix ms) and runs so far.
    next_cron_ms: u64,
    cron_runs: u64,
}

impl Default for MasterSide {
    fn default() -> Self {
        MasterSide {
            replicas: Vec::new(),
            snapshot: None,
            retained: None,
            stats: SyncStats::default(),
            waiting: Vec::new(),
            no_replicas_since: unix_time_ms() / 1000,
            good_replicas: 0,
            getack_requested: false,
            wake_pending: false,
            online_cores: Vec::new(),
            kill_pending: Vec::new(),
            next_cron_ms: 0,
            cron_runs: 0,
        }
    }
}

impl MasterSide {
    pub fn find(&self, client_id: u64) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.client_id == client_id)
    }

    pub fn find_mut(&mut self, client_id: u64) -> Option<&mut Replica> {
        self.replicas.iter_mut().find(|r| r.client_id == client_id)
    }

    /// Online replicas that acknowledged `offset` (WAIT).
    pub fn count_acks(&self, offset: u64) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Online && r.ack_offset >= offset as i64)
            .count()
    }

    /// Recounts `good_replicas` (online, holding the data set, lag ≤ `max_lag` seconds).
    /// First, a stream connection whose snapshot connection (same address and listening
    /// port) delivered the snapshot now holds it.
    pub fn refresh_good_replicas(&mut self, max_lag_secs: u64, now_secs: u64) {
        let delivered: Vec<(String, i64)> = self
            .replicas
            .iter()
            .filter(|r| r.snapshot_only && r.snapshot_delivered)
            .map(|r| (r.ip.clone(), r.listening_port))
            .collect();
        for replica in self.replicas.iter_mut().filter(|r| r.sync_stream) {
            if delivered
                .iter()
                .any(|(ip, port)| *ip == replica.ip && *port == replica.listening_port)
            {
                replica.has_snapshot = true;
            }
        }
        self.good_replicas = self
            .replicas
            .iter()
            .filter(|r| {
                r.state == ReplicaState::Online
                    && r.has_snapshot
                    && now_secs.saturating_sub(r.ack_time) <= max_lag_secs
            })
            .count();
    }

    fn recompute_online_cores(&mut self) {
        self.online_cores.clear();
        for replica in &self.replicas {
            if replica.state == ReplicaState::Online && !self.online_cores.contains(&replica.core) {
                self.online_cores.push(replica.core);
            }
        }
    }

    /// Closes every replica at the end of the batch (see [`disconnect_replicas`]).
    pub fn disconnect_all(&mut self) {
        for replica in &self.replicas {
            self.kill_pending.push((replica.core, replica.conn));
        }
    }

    /// Asks for `REPLCONF GETACK *` to be sent at the end of this batch.
    pub fn request_acks(&mut self) {
        self.getack_requested = true;
    }
}

/// Whether `min-replicas-to-write` refuses writes right now (`-NOREPLICAS`).
pub fn writes_refused(config: &crate::config::Config, store: &Store) -> bool {
    config.min_replicas_to_write > 0
        && config.min_replicas_max_lag_secs > 0
        && !store.replica_mode
        && (store.replication.master_side.good_replicas as u64) < config.min_replicas_to_write
}

/// The `-NOREPLICAS` error text.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

// ---------------------------------------------------------------------------------------
// THE STREAM
// ---------------------------------------------------------------------------------------

/// Hands one batch of propagated bytes to the backlog (called from `Store::end_batch`, lock
/// held). Nothing happens without a backlog, as Redis keeps `master_repl_offset` still then.
pub fn feed_stream(replication: &mut ReplicationState, bytes: &[u8]) {
    if replication.backlog.is_none() || bytes.is_empty() {
        return;
    }
    append(replication, bytes);
}

/// Appends bytes that go to replicas only (PING, GETACK), or a propagated batch.
fn append(replication: &mut ReplicationState, bytes: &[u8]) {
    replication.feed(bytes);
    let side = &mut replication.master_side;
    if replication.backlog.is_none() {
        // The batch did not fit in the ring: the history is cut, so every replica's
        // cursor is lost. They reconnect and resync.
        for replica in &side.replicas {
            side.kill_pending.push((replica.core, replica.conn));
        }
        side.online_cores.clear();
        return;
    }
    if !side.online_cores.is_empty() {
        side.wake_pending = true;
    }
}

/// End-of-batch work that must not reach the AOF: `REPLCONF GETACK *` for this batch's
/// WAITs. Called from `Store::end_batch` after the propagated bytes.
#[inline]
pub fn end_of_batch(replication: &mut ReplicationState) {
    if replication.master_side.getack_requested {
        replication.master_side.getack_requested = false;
        if replication.backlog.is_some() && !replication.master_side.replicas.is_empty() {
            append(replication, STREAM_GETACK);
        }
    }
}

/// After the keyspace lock's batch: wakes the cores owning online replicas (once per batch)
/// and closes the replicas the backlog dropped.
#[inline]
pub fn after_batch(store: &mut Store, cores: &[CoreHandle]) {
    let side = &mut store.replication.master_side;
    if !side.wake_pending && side.kill_pending.is_empty() {
        return;
    }
    after_batch_slow(side, cores);
}

#[cold]
fn after_batch_slow(side: &mut MasterSide, cores: &[CoreHandle]) {
    if std::mem::take(&mut side.wake_pending) {
        for &core in &side.online_cores {
            if let Some(handle) = cores.get(core) {
                handle.notify_replication();
            }
        }
    }
    for (core, conn) in side.kill_pending.drain(..) {
        if let Some(handle) = cores.get(core) {
            handle.send(CoreMessage::Kill { conn });
        }
    }
}

/// Closes every replica at the end of the batch (Redis' `disconnectSlaves`): a server that
/// becomes a replica, or whose replication ID changes on promotion, makes its replicas
/// reconnect so they learn the new history (with a partial resync when it allows).
pub fn disconnect_replicas(store: &mut Store) {
    store.replication.master_side.disconnect_all();
}

/// Turns propagation on (a backlog exists now) and makes the next command carry a SELECT.
fn enable_propagation(store: &mut Store) {
    store.propagation.enabled = true;
    store.propagation.reset_selected_db();
}

/// The ring's size: `repl-backlog-size`, but at least the replica hard output limit (see
/// [`create_backlog`]); a replica's own backlog (replica side) is sized the same way.
pub fn backlog_capacity(config: &crate::config::Config) -> u64 {
    config
        .repl_backlog_size
        .max(config.client_output_buffer_limit.replica.hard_bytes)
        .max(16 * 1024)
}

/// Creates the backlog for the first replica, with a new history (new replid, no replid2),
/// as Redis does when it has no history to continue.
fn create_backlog(shared: &Shared, store: &mut Store) -> Result<(), String> {
    let replication = &mut store.replication;
    if replication.backlog.is_some() {
        return Ok(());
    }
    if !store.replica_mode {
        replication.replid = crate::server::shared::new_run_id();
        replication.replid2 = NO_REPLID.to_string();
        replication.second_replid_offset = -1;
    }
    // The ring is also every replica's output buffer (a replica is a cursor into it, nothing
    // is copied per replica), so it is at least the replica hard output limit
    // (`client-output-buffer-limit replica`, 256mb by default): a lagging replica is then
    // dropped where Redis would drop it, not at the much smaller `repl-backlog-size`. The
    // ring is a file mapping: its pages are page cache, written back and reclaimable.
    let config = shared.config();
    replication
        .create_backlog(
            &super::state::backlog_path(&config),
            backlog_capacity(&config),
        )
        .map_err(|e| format!("can't create the replication backlog: {e}"))?;
    enable_propagation(store);
    log!(
        Notice,
        "Replication backlog created, my new replication IDs are '{}' and '{}'",
        store.replication.replid,
        store.replication.replid2
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// FULL RESYNC
// ---------------------------------------------------------------------------------------

/// The fork offset a replication snapshot is made at (the master offset now) and the aux
/// fields it carries: that offset and the replication ID, stream database 0 (the stream after
/// it starts with a SELECT).
fn sync_save_info(replication: &ReplicationState) -> (u64, rdb::SaveInfo) {
    let offset = replication.master_repl_offset;
    let info = rdb::SaveInfo {
        repl_stream_db: Some(0),
        repl_id: Some(replication.replid.clone()),
        repl_offset: Some(offset as i64),
        aof_base: false,
    };
    (offset, info)
}

/// `+FULLRESYNC <replid> <offset>\r\n`.
fn fullresync_line(replid: &str, offset: u64) -> Vec<u8> {
    format!("+FULLRESYNC {replid} {offset}\r\n").into_bytes()
}

/// Forks the snapshot child for the replicas waiting in `WaitBgsaveStart` that need a
/// snapshot with `no_compress`, attaches them and tells each its `+FULLRESYNC` offset (the
/// caller's own connection gets it in `own_reply`, the others through their cores). On
/// failure those replicas get an error and are closed.
fn start_snapshot(
    shared: &Shared,
    store: &mut Store,
    no_compress: bool,
    own: Option<(u64, &mut Vec<u8>)>,
) -> bool {
    // Everything executed so far goes into the backlog first, so the fork offset is exactly
    // where the snapshot's data ends; the next command then carries a SELECT.
    store.end_batch();
    store.propagation.reset_selected_db();
    let config = shared.config();
    if diskless::chosen(&config, &store.replication.master_side, no_compress) {
        return diskless::start(shared, store, no_compress, own);
    }
    log!(Notice, "Starting BGSAVE for SYNC with target: disk");
    let path = snapshot::rdb_path(&config);
    let mut options = snapshot::save_options(&config);
    if no_compress {
        options.compression = false;
    }
    let (offset, info) = sync_save_info(&store.replication);
    store.persistence.last_bgsave_try_unix = unix_time_ms() / 1000;
    let dirty = store.dirty;
    let started = fork::start_child(shared, store, ChildKind::Rdb, move |store| {
        snapshot::write_rdb(&store.dbs, &path, &options, &info).map(|_| {
            log!(Notice, "DB saved on disk");
        })
    });
    let own_id = own.as_ref().map(|(id, _)| *id);
    let mut own_reply = own.map(|(_, reply)| reply);
    match started {
        Ok(pid) => {
            store.persistence.dirty_at_fork = dirty;
            log!(Notice, "Background saving started by pid {pid}");
            store.replication.master_side.snapshot = Some(SyncSnapshot {
                pid,
                replid: store.replication.replid.clone(),
                offset,
                no_compress,
                diskless: false,
            });
            let replid = store.replication.replid.clone();
            for replica in &mut store.replication.master_side.replicas {
                if replica.state != ReplicaState::WaitBgsaveStart
                    || !replica.shares_snapshot(no_compress)
                {
                    continue;
                }
                replica.state = ReplicaState::WaitBgsaveEnd;
                replica.stream_start = offset + 1;
                if replica.pre_psync {
                    continue;
                }
                let line = fullresync_line(&replid, offset);
                match own_reply.as_deref_mut() {
                    Some(reply) if Some(replica.client_id) == own_id => {
                        reply.extend_from_slice(&line)
                    }
                    _ => shared.cores[replica.core].send(CoreMessage::Deliver {
                        conn: replica.conn,
                        bytes: line,
                    }),
                }
            }
            true
        }
        Err(error) => {
            log!(Warning, "Can't save in background: {error}");
            log!(Warning, "BGSAVE for replication failed");
            store.persistence.last_bgsave_ok = false;
            fail_waiting(shared, store, no_compress, own_id, own_reply);
            false
        }
    }
}

/// A snapshot for the replicas waiting for one (those sharing `no_compress`) could not
/// start: each gets an error and is closed (the caller's own connection through
/// `own_reply`).
fn fail_waiting(
    shared: &Shared,
    store: &mut Store,
    no_compress: bool,
    own_id: Option<u64>,
    mut own_reply: Option<&mut Vec<u8>>,
) {
    let side = &mut store.replication.master_side;
    let mut kept = Vec::with_capacity(side.replicas.len());
    for replica in side.replicas.drain(..) {
        if replica.state == ReplicaState::WaitBgsaveStart && replica.shares_snapshot(no_compress) {
            let error = b"-ERR BGSAVE failed, replication can't continue\r\n".to_vec();
            match own_reply.as_deref_mut() {
                Some(reply) if Some(replica.client_id) == own_id => reply.extend_from_slice(&error),
                _ => shared.cores[replica.core].send(CoreMessage::Deliver {
                    conn: replica.conn,
                    bytes: error,
                }),
            }
            shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn });
        } else {
            kept.push(replica);
        }
    }
    side.replicas = kept;
    if side.replicas.is_empty() {
        side.no_replicas_since = unix_time_ms() / 1000;
    }
}

/// Starts a snapshot for replicas waiting for one, when no child runs (Redis'
/// `replicationStartPendingFork`).
fn start_pending_snapshot(shared: &Shared, store: &mut Store) {
    if store.persistence.child.is_some() {
        return;
    }
    let Some(no_compress) = store
        .replication
        .master_side
        .replicas
        .iter()
        .find(|r| r.state == ReplicaState::WaitBgsaveStart)
        .map(|r| r.no_compress)
    else {
        return;
    };
    let config = shared.config();
    if !diskless::ready_to_start(
        &config,
        &store.replication.master_side,
        no_compress,
        unix_time_ms(),
    ) {
        return;
    }
    start_snapshot(shared, store, no_compress, None);
}

/// Called by `snapshot::cron` when an RDB child exits: if it was made for replicas, hand the
/// file to them (opened once here, so the inode stays theirs even if `dbfilename` is
/// replaced), or drop them if it failed; then start the next one if replicas still wait.
pub fn snapshot_finished(shared: &Shared, store: &mut Store, pid: i32, ok: bool) {
    let side = &mut store.replication.master_side;
    let Some(snapshot) = side.snapshot.take_if(|s| s.pid == pid) else {
        start_pending_snapshot(shared, store);
        return;
    };
    if snapshot.diskless {
        diskless::finished(shared, store, &snapshot, ok);
        start_pending_snapshot(shared, store);
        return;
    }
    let config = shared.config();
    let file = if ok {
        let path = snapshot::rdb_path(&config);
        match File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len()))) {
            Ok((file, len)) => Some((Arc::new(file), len)),
            Err(error) => {
                log!(
                    Warning,
                    "SYNC failed. Can't open/stat DB after BGSAVE: {error}"
                );
                None
            }
        }
    } else {
        log!(Warning, "SYNC failed. BGSAVE child returned an error");
        None
    };
    if let Some((file, len)) = &file {
        resume::retain(
            side,
            &snapshot.replid,
            snapshot.offset,
            file,
            *len,
            unix_time_ms(),
            config.repl_resume_snapshot_ttl_secs,
        );
    }
    for replica in &mut side.replicas {
        if replica.state != ReplicaState::WaitBgsaveEnd
            || replica.stream_start != snapshot.offset + 1
            || !replica.shares_snapshot(snapshot.no_compress)
        {
            continue;
        }
        match &file {
            Some((file, len)) => {
                replica.state = ReplicaState::SendBulk;
                shared.cores[replica.core].send(CoreMessage::Replica {
                    conn: replica.conn,
                    event: ReplicaEvent::SendSnapshot {
                        file: file.clone(),
                        len: *len,
                    },
                });
            }
            None => shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn }),
        }
    }
    start_pending_snapshot(shared, store);
}

// ---------------------------------------------------------------------------------------
// REPLICA LIFECYCLE (called by the owning core)
// ---------------------------------------------------------------------------------------

/// The snapshot was sent: the replica goes online (or, `rdb-only`, is done). Returns its
/// stream cursor, or `None` when the connection must close (rdb-only, or the backlog no longer
/// holds its start: it needs another full sync).
pub fn snapshot_sent(store: &mut Store, client_id: u64, max_lag_secs: u64) -> Option<Reader> {
    let now = unix_time_ms() / 1000;
    let replication = &mut store.replication;
    let replica = replication.master_side.find_mut(client_id)?;
    if replica.wanted_only_the_snapshot() {
        replication
            .master_side
            .refresh_good_replicas(max_lag_secs, now);
        return None;
    }
    let start = replica.stream_start;
    let reader = match replication.backlog.as_ref().map(|b| b.reader(start)) {
        Some(Ok(reader)) => reader,
        Some(Err(error)) => {
            log!(
                Warning,
                "Replica {} can't go online after the snapshot: {error}; it needs a new full sync",
                replica.name()
            );
            return None;
        }
        None => {
            log!(
                Warning,
                "Replica {} can't go online: the replication backlog was freed",
                replica.name()
            );
            return None;
        }
    };
    replica.state = ReplicaState::Online;
    replica.ack_time = now;
    log!(
        Notice,
        "Synchronization with replica {} succeeded",
        replica.name()
    );
    let side = &mut replication.master_side;
    side.recompute_online_cores();
    side.refresh_good_replicas(max_lag_secs, now);
    Some(reader)
}

/// A replica sent an empty line (`\n` once a second while it loads the snapshot): it is
/// alive, so `repl-timeout` counts from now.
pub fn replica_newline(store: &mut Store, client_id: u64) {
    if let Some(replica) = store.replication.master_side.find_mut(client_id) {
        replica.ack_time = unix_time_ms() / 1000;
    }
}

/// Forgets a closed connection: its replica record (logging the loss) and any WAIT it was
/// blocked in. Called with the keyspace locked when a connection is released.
pub fn forget_client(shared: &Shared, store: &mut Store, client_id: u64) {
    let side = &mut store.replication.master_side;
    side.waiting.retain(|w| w.client_id != client_id);
    let Some(index) = side.replicas.iter().position(|r| r.client_id == client_id) else {
        return;
    };
    let replica = side.replicas.remove(index);
    log!(Warning, "Connection with replica {} lost.", replica.name());
    if replica.state == ReplicaState::Online {
        side.recompute_online_cores();
    }
    if side.replicas.is_empty() {
        side.no_replicas_since = unix_time_ms() / 1000;
    }
    let config = shared.config();
    side.refresh_good_replicas(config.min_replicas_max_lag_secs, unix_time_ms() / 1000);
    // Nobody else waits for the running snapshot and nothing else wants the file: stop it
    // (Redis does the same when no save points are configured, and always for a diskless
    // child, which makes no file).
    let diskless = side.snapshot.as_ref().is_some_and(|s| s.diskless);
    // A diskless replica that already has the whole payload (a snapshot-only connection
    // closes then) leaves a child that is finishing on its own.
    let served = matches!(
        replica.diskless,
        Some(diskless::Transfer::Sending { drained: true, .. })
    );
    let orphaned = replica.state == ReplicaState::WaitBgsaveEnd
        && !served
        && (config.save.is_empty() || diskless)
        && side.snapshot.is_some()
        && !side
            .replicas
            .iter()
            .any(|r| r.state == ReplicaState::WaitBgsaveEnd);
    if orphaned {
        let snapshot = side.snapshot.take();
        if let Some(snapshot) = snapshot {
            if store.persistence.child.as_ref().map(|c| c.pid) == Some(snapshot.pid) {
                if snapshot.diskless {
                    log!(
                        Warning,
                        "Diskless rdb transfer, last replica dropped, killing fork child."
                    );
                    fork::kill_child(store);
                    return;
                }
                log!(
                    Notice,
                    "Background RDB child for replication is no longer needed; killing it"
                );
                fork::kill_child(store);
                let temp = crate::persistence::files::temp_path_for_pid(
                    &snapshot::rdb_path(&config),
                    snapshot.pid,
                );
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CRON
// ---------------------------------------------------------------------------------------

/// The master side of Redis' `replicationCron`, on core 0 under the keyspace lock. The
/// once-a-second part (pings, timeouts, the backlog's TTL, good replica count) runs when a
/// second has passed; a pending snapshot starts at any call.
pub fn cron(shared: &Shared, store: &mut Store, now_ms: u64) {
    // A snapshot child that went away without being reaped through `snapshot_finished`
    // (stopped by a shutdown or a newer child): its replicas can never get the file.
    if let Some(snapshot) = &store.replication.master_side.snapshot {
        if store.persistence.child.as_ref().map(|c| c.pid) != Some(snapshot.pid) {
            let pid = snapshot.pid;
            snapshot_finished(shared, store, pid, false);
        }
    }
    start_pending_snapshot(shared, store);
    let side = &mut store.replication.master_side;
    if now_ms < side.next_cron_ms {
        return;
    }
    side.next_cron_ms = now_ms + 1000;
    let runs = side.cron_runs;
    side.cron_runs += 1;
    let config = shared.config();
    let now = now_ms / 1000;

    // PING the replicas through the stream every repl-ping-replica-period seconds.
    let period = config.repl_ping_replica_period_secs.max(1);
    if runs.is_multiple_of(period)
        && !side.replicas.is_empty()
        && store.replication.backlog.is_some()
        && !store.replica_mode
    {
        store.end_batch();
        append(&mut store.replication, STREAM_PING);
    }

    let side = &mut store.replication.master_side;
    let timeout = config.repl_timeout_secs;
    let backlog_first = store.replication.backlog.as_ref().map(|b| b.first_offset());
    let master_offset = store.replication.master_repl_offset;
    for replica in &mut side.replicas {
        let timed_out = replica.state == ReplicaState::Online
            && !replica.pre_psync
            && now.saturating_sub(replica.ack_time) > timeout;
        if timed_out {
            log!(
                Warning,
                "Disconnecting timedout replica (streaming sync): {}",
                replica.name()
            );
        }
        // Whose stretch of the backlog is held to the output limits here: a replica still
        // syncing, and one online after a diskless transfer but not streaming yet (no cursor
        // on its core). A snapshot-only connection is owed no stream.
        let owes_stream = match replica.state {
            ReplicaState::Online => diskless::awaits_stream(replica),
            ReplicaState::WaitBgsaveEnd | ReplicaState::SendBulk => !replica.rdb_only,
            ReplicaState::WaitBgsaveStart => false,
        };
        let kill = timed_out
            || (owes_stream
                && backlog_owed_too_much(
                    shared,
                    replica,
                    backlog_first,
                    master_offset,
                    &config,
                    now_ms,
                ));
        if kill {
            shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn });
        }
    }

    // Free the backlog after repl-backlog-ttl seconds without replicas; the history it
    // described ends, so the replication ID changes (Redis' reasoning: a former replica must
    // not PSYNC into writes this master made without counting them).
    let ttl = config.repl_backlog_ttl_secs;
    if side.replicas.is_empty()
        && ttl > 0
        && store.replication.backlog.is_some()
        && !store.replica_mode
        && now.saturating_sub(side.no_replicas_since) > ttl
    {
        store.end_batch();
        let replication = &mut store.replication;
        replication.replid = crate::server::shared::new_run_id();
        replication.replid2 = NO_REPLID.to_string();
        replication.second_replid_offset = -1;
        if let Some(backlog) = replication.backlog.take() {
            let path = backlog.path().to_path_buf();
            drop(backlog);
            let _ = std::fs::remove_file(path);
        }
        store.propagation.enabled = propagation_needed_without_backlog(store);
        log!(
            Notice,
            "Replication backlog freed after {ttl} seconds without connected replicas."
        );
    }

    resume::expire(&mut store.replication, now_ms);
    let side = &mut store.replication.master_side;
    side.refresh_good_replicas(config.min_replicas_max_lag_secs, now);
}

/// For a replica whose cursor waits in the backlog (syncing, or online after a diskless
/// transfer until its first ACK): overrun means a new full sync; the bytes owed count against
/// the replica output-buffer limit. True (logged) when it must be closed.
fn backlog_owed_too_much(
    shared: &Shared,
    replica: &mut Replica,
    backlog_first: Option<u64>,
    master_offset: u64,
    config: &crate::config::Config,
    now_ms: u64,
) -> bool {
    let overrun = backlog_first.is_none_or(|first| replica.stream_start < first);
    let owed = (master_offset + 1).saturating_sub(replica.stream_start);
    let over_limit = limits::exceeded(
        owed,
        &config.client_output_buffer_limit.replica,
        &mut replica.soft_limit_since,
        now_ms,
    );
    if overrun {
        log!(
            Warning,
            "Replica {} fell out of the replication backlog before going online; it needs a new full sync",
            replica.name()
        );
    } else if over_limit {
        log!(
            Warning,
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            replica.client_id,
            replica.name()
        );
        crate::server::shared::Stats::add(&shared.stats.client_outbuf_limit_disconnections, 1);
    }
    overrun || over_limit
}

/// Whether the stream still has a consumer once the backlog is gone (the AOF).
fn propagation_needed_without_backlog(store: &Store) -> bool {
    store.aof.is_on()
}

// ---------------------------------------------------------------------------------------
// INFO AND ROLE
// ---------------------------------------------------------------------------------------

/// The replica lines of INFO replication (`connected_slaves` through the last `slaveN`).
pub fn info_replicas(config: &crate::config::Config, store: &Store, out: &mut String) {
    use std::fmt::Write;
    let side = &store.replication.master_side;
    let listed: Vec<&Replica> = side.replicas.iter().filter(|r| r.listed()).collect();
    let _ = write!(out, "connected_slaves:{}\r\n", listed.len());
    if config.min_replicas_to_write > 0 && config.min_replicas_max_lag_secs > 0 {
        let _ = write!(out, "min_slaves_good_slaves:{}\r\n", side.good_replicas);
    }
    let now = unix_time_ms() / 1000;
    for (index, replica) in listed.into_iter().enumerate() {
        let lag = if replica.state == ReplicaState::Online {
            now.saturating_sub(replica.ack_time)
        } else {
            0
        };
        let _ = write!(
            out,
            "slave{index}:ip={},port={},state={},offset={},lag={lag}\r\n",
            replica.ip,
            replica.listening_port,
            replica.state.name(),
            replica.ack_offset
        );
    }
}

/// The lines of INFO replication after the replicas, from `master_failover_state` on.
pub fn info_history(config: &crate::config::Config, store: &Store, out: &mut String) {
    use std::fmt::Write;
    let replication = &store.replication;
    let (active, first, histlen) = match &replication.backlog {
        Some(backlog) => (1, backlog.first_offset(), backlog.histlen()),
        None => (0, 0, 0),
    };
    let size = replication
        .backlog
        .as_ref()
        .map_or(config.repl_backlog_size, |b| b.capacity());
    let _ = write!(
        out,
        "master_failover_state:no-failover\r\n\
         master_replid:{}\r\n\
         master_replid2:{}\r\n\
         master_repl_offset:{}\r\n\
         second_repl_offset:{}\r\n\
         repl_backlog_active:{active}\r\n\
         repl_backlog_size:{size}\r\n\
         repl_backlog_first_byte_offset:{first}\r\n\
         repl_backlog_histlen:{histlen}\r\n",
        replication.replid,
        replication.replid2,
        replication.master_repl_offset,
        replication.second_replid_offset,
    );
}

/// ROLE on a master: `["master", offset, [[ip, port, acked offset], ...]]`, online
/// replicas only.
pub fn reply_role(store: &Store, reply: &mut crate::protocol::Reply) {
    let replication = &store.replication;
    reply.array(3);
    reply.bulk(b"master");
    reply.int(replication.master_repl_offset as i64);
    let online: Vec<&Replica> = replication
        .master_side
        .replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Online && r.listed())
        .collect();
    reply.array(online.len());
    for replica in online {
        reply.array(3);
        reply.bulk(replica.ip.as_bytes());
        reply.bulk(replica.listening_port.to_string().as_bytes());
        reply.bulk(replica.ack_offset.to_string().as_bytes());
    }
}

/// CONFIG RESETSTAT's share: the sync counters.
pub fn reset_stats(store: &mut Store) {
    store.replication.master_side.stats = SyncStats::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PSYNC2 replica at 127.0.0.1:6380 on core 0 (connection `id`), with nothing
    /// acknowledged yet, for the unit tests here and in `diskless`.
    pub(super) fn test_replica(id: u64, state: ReplicaState) -> Replica {
        Replica {
            client_id: id,
            core: 0,
            conn: id,
            ip: "127.0.0.1".into(),
            listening_port: 6380,
            capa_eof: true,
            capa_psync2: true,
            rdb_only: false,
            snapshot_only: false,
            sync_stream: false,
            has_snapshot: true,
            snapshot_delivered: false,
            no_compress: false,
            pre_psync: false,
            state,
            ack_offset: 0,
            ack_time: 0,
            stream_start: 0,
            soft_limit_since: None,
            asked_ms: 0,
            diskless: None,
        }
    }

    fn replica(id: u64, state: ReplicaState, ack: i64, ack_time: u64) -> Replica {
        Replica {
            ack_offset: ack,
            ack_time,
            stream_start: 1,
            ..test_replica(id, state)
        }
    }

    #[test]
    fn acks_count_only_online_replicas_at_or_past_the_offset() {
        let mut side = MasterSide::default();
        side.replicas.push(replica(1, ReplicaState::Online, 100, 0));
        side.replicas.push(replica(2, ReplicaState::Online, 99, 0));
        side.replicas
            .push(replica(3, ReplicaState::SendBulk, 500, 0));
        assert_eq!(side.count_acks(100), 1);
        assert_eq!(side.count_acks(99), 2);
        assert_eq!(side.count_acks(0), 2);
    }

    #[test]
    fn good_replicas_are_online_with_a_recent_ack() {
        let mut side = MasterSide::default();
        side.replicas.push(replica(1, ReplicaState::Online, 0, 100));
        side.replicas.push(replica(2, ReplicaState::Online, 0, 89));
        side.replicas
            .push(replica(3, ReplicaState::WaitBgsaveEnd, 0, 100));
        side.refresh_good_replicas(10, 100);
        assert_eq!(side.good_replicas, 1);
        side.refresh_good_replicas(11, 100);
        assert_eq!(side.good_replicas, 2);
    }

    #[test]
    fn a_stream_connection_counts_once_its_replica_has_the_snapshot() {
        let mut side = MasterSide::default();
        let mut stream = replica(1, ReplicaState::Online, 0, 100);
        stream.sync_stream = true;
        stream.has_snapshot = false;
        side.replicas.push(stream);
        let mut snapshot = replica(2, ReplicaState::SendBulk, 0, 100);
        snapshot.snapshot_only = true;
        side.replicas.push(snapshot);
        // Another replica's snapshot (another listening port) proves nothing.
        let mut other = replica(3, ReplicaState::SendBulk, 0, 100);
        other.snapshot_only = true;
        other.listening_port = 6381;
        other.snapshot_delivered = true;
        side.replicas.push(other);
        side.refresh_good_replicas(10, 100);
        assert_eq!(side.good_replicas, 0);
        side.replicas[1].snapshot_delivered = true;
        side.refresh_good_replicas(10, 100);
        assert_eq!(side.good_replicas, 1);
        // It stays counted after the snapshot connection is gone.
        side.replicas.retain(|r| !r.snapshot_only);
        side.refresh_good_replicas(10, 100);
        assert_eq!(side.good_replicas, 1);
    }

    #[test]
    fn names_and_states_read_like_redis() {
        assert_eq!(replica_name("10.0.0.1", 6380), "10.0.0.1:6380");
        assert_eq!(replica_name("::1", 6380), "[::1]:6380");
        assert_eq!(
            replica_name("10.0.0.1", 0),
            "10.0.0.1:<unknown-replica-port>"
        );
        assert_eq!(ReplicaState::WaitBgsaveStart.name(), "wait_bgsave");
        assert_eq!(ReplicaState::WaitBgsaveEnd.name(), "wait_bgsave");
        assert_eq!(ReplicaState::SendBulk.name(), "send_bulk");
        assert_eq!(ReplicaState::Online.name(), "online");
    }

    #[test]
    fn online_cores_follow_the_online_replicas() {
        let mut side = MasterSide::default();
        let mut a = replica(1, ReplicaState::Online, 0, 0);
        a.core = 1;
        let mut b = replica(2, ReplicaState::WaitBgsaveEnd, 0, 0);
        b.core = 0;
        let mut c = replica(3, ReplicaState::Online, 0, 0);
        c.core = 1;
        side.replicas = vec![a, b, c];
        side.recompute_online_cores();
        assert_eq!(side.online_cores, vec![1]);
    }

    #[test]
    fn stream_commands_are_valid_resp() {
        let mut ping = Vec::new();
        crate::replication::propagate::encode(&mut ping, &["PING"]);
        assert_eq!(ping, STREAM_PING);
        let mut getack = Vec::new();
        crate::replication::propagate::encode(&mut getack, &["REPLCONF", "GETACK", "*"]);
        assert_eq!(getack, STREAM_GETACK);
    }
}
