//! The master link, driven by core 0: connect, handshake, snapshot transfer and load, and the
//! master's stream (the I/O half of [`crate::replication::replica`], which holds the state).
//!
//! This is a child module of `event_loop` (an `impl Core` block), so the link is an ordinary
//! connection of core 0's slab once connected: `recv`/`send`, CLIENT LIST, CLIENT KILL TYPE
//! master and close all work as for any client. Its input never goes through
//! `process_input`: every byte goes to [`Core::master_link_input`], which reads the handshake
//! replies, the snapshot, or the stream depending on the [`Stage`].
//!
//! # What runs where
//! - The replication tick (every cron turn of core 0, [`Core::replication_tick`]) drops a link
//!   made for an older epoch
//!   ([`ReplicaSide::epoch`](crate::replication::replica::ReplicaSide::epoch)), picks up a
//!   finished load, connects when asked to, and once a second enforces `repl-timeout`, sends
//!   `REPLCONF ACK <offset>` and (while loading) a `\n` keep-alive to the master.
//! - The snapshot goes from the socket into `temp-<time>.<pid>.rdb` in `dir` with plain
//!   writes from this thread (the page cache absorbs them; writeback starts every 8 MB so the
//!   final fsync is short), then a helper thread fsyncs it, maps it and decodes it into a
//!   fresh `Vec<Db>`. Meanwhile the old data keeps serving reads; the link reads nothing
//!   more (the master's stream waits in the socket, as in Redis). The swap, the rename of the
//!   file to `dbfilename` (as Redis keeps the received file as its own dump) and the new
//!   history happen in one critical section.
//! - The stream: every whole command runs as the master client under one store lock per
//!   read batch, with expired keys kept live ([`ExpiryMode::Keep`]); the bytes of each fully
//!   applied command (a MULTI counts when its EXEC ran, as Redis counts it) advance the
//!   offset and go unchanged to our own backlog.

use std::fs::File;
use std::io::Write as _;
use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use super::*;
use crate::persistence::{files, rdb};
use crate::replication::replica::{
    self, BulkHeader, EofMark, HandshakeSettings, LinkState, Reaction,
};
use crate::server::stream_fetch::StreamFetch;
use crate::storage::{Db, ExpiryMode};

/// Receive buffer reserved while the snapshot streams in: one `recv` takes up to this much.
const TRANSFER_RECV_BYTES: usize = 1024 * 1024;
/// Start writeback of the temp file every this many bytes (Redis' `REPL_MAX_WRITTEN_BEFORE_FSYNC`),
/// so the fsync before loading has little left to do.
const TRANSFER_WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;
/// A handshake reply line longer than this is not from a Redis master.
const REPLY_LINE_MAX: usize = 64 * 1024;
/// Handshake and header lines handled per input event (each is one step of the machine).
const LINK_STEPS_MAX: usize = 64;
/// The replication cron's period.
const REPLICATION_CRON_MS: u64 = 1000;

/// Core 0's half of the master link. Empty on other cores.
#[derive(Default)]
pub(super) struct ReplicaLink {
    current: Option<Link>,
    next_cron_ms: u64,
    /// The temp file of a snapshot transfer that broke, kept while the keyspace's
    /// `ReplicaSide::resumable` describes it (the next handshake asks to resume it).
    kept: Option<TransferFile>,
    /// A link was lost: reconnect at the end of this loop turn, not at the next cron turn
    /// (at most once a second, so a master that keeps refusing is not hammered).
    tick_soon: bool,
    quick_not_before_ms: u64,
}

/// One attempt to follow the master, made for one
/// [`ReplicaSide::epoch`](crate::replication::replica::ReplicaSide::epoch).
struct Link {
    epoch: u64,
    phase: Phase,
}

enum Phase {
    /// `connect` in flight: the op owns the socket and the address until its completion.
    Connecting {
        socket: Socket,
        address: Box<SockAddr>,
        /// Cancelled: drop everything when the completion arrives.
        abandoned: bool,
    },
    /// Connected: the socket is a connection in the slab.
    Open(Open),
}

struct Open {
    slot: u32,
    client_id: u64,
    stage: Stage,
    /// Bytes at the start of the input that ran inside a MULTI whose EXEC has not come yet:
    /// executed (queued), not yet counted in the offset.
    queued_in_multi: usize,
    /// Input length after the last batch (to count the bytes received since).
    buffered: usize,
    /// A split full sync's stream connection, receiving while the snapshot comes through
    /// this one (`crate::server::stream_fetch`).
    stream: Option<Box<StreamFetch>>,
}

/// How long the load's end waits for the stream connection's handshake (it started when the
/// snapshot did; this only matters for a tiny snapshot on a slow network).
const STREAM_HANDSHAKE_WAIT: Duration = Duration::from_secs(5);
/// Stream spool read into the link's input at a time, once less than the low water mark of
/// it is left unapplied.
const SPOOL_CHUNK: usize = 16 << 20;
const SPOOL_LOW_WATER: usize = 1 << 20;

/// `Open::slot` of a link whose snapshot connection was closed after a split sync's
/// snapshot arrived, until the stream connection takes its place.
const DETACHED: u32 = u32::MAX;

/// What the link's input is expected to hold next.
enum Stage {
    /// Handshake reply lines (the keyspace's `ReplicaSide::state` says which).
    Handshake,
    /// After `+FULLRESYNC` (or `SYNC`): `$<len>` or `$EOF:<mark>`, newlines before it.
    BulkHeader(TransferFile),
    /// The snapshot's bytes.
    Payload(TransferFile, PayloadEnd),
    /// The snapshot is complete and a helper thread loads it.
    Loading {
        path: PathBuf,
        results: mpsc::Receiver<Result<LoadedSnapshot, String>>,
    },
    /// The master's command stream.
    Streaming,
}

/// How the snapshot's end is found.
enum PayloadEnd {
    /// `$<len>`: bytes still to come.
    Length(u64),
    /// `$EOF:<mark>`: scan for the mark.
    Mark(EofMark),
}

/// The temp file the snapshot is written to.
struct TransferFile {
    file: File,
    path: PathBuf,
    written: u64,
    writeback_started_at: u64,
}

impl TransferFile {
    fn create() -> std::io::Result<TransferFile> {
        // A kept file from a broken transfer may exist beside a new one: the sequence number
        // keeps their names apart.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let path = PathBuf::from(format!(
            "temp-{}.{}.{}.rdb",
            unix_time_ms() / 1000,
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(TransferFile {
            file,
            path,
            written: 0,
            writeback_started_at: 0,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        if self.written - self.writeback_started_at >= TRANSFER_WRITEBACK_BYTES {
            // SAFETY: sync_file_range on our own open file; it only starts writeback.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.writeback_started_at as libc::off64_t,
                    (self.written - self.writeback_started_at) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.writeback_started_at = self.written;
        }
        Ok(())
    }

    /// Drops the last `bytes` written (the start of an EOF mark that spanned two reads).
    fn cut(&mut self, bytes: u64) -> std::io::Result<()> {
        self.written -= bytes;
        self.file.set_len(self.written)?;
        use std::io::Seek;
        self.file.seek(std::io::SeekFrom::Start(self.written))?;
        Ok(())
    }

    fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the loader thread hands back.
struct LoadedSnapshot {
    dbs: Vec<Db>,
    stream_db: usize,
    keys: u64,
}

/// Takes one reply line (without `\r\n` or `\n`) from the start of the connection's input.
fn take_line(conn: &mut Conn) -> Result<Option<Vec<u8>>, ()> {
    let pending = &conn.inbuf[conn.read_pos..];
    let Some(end) = memchr::memchr(b'\n', pending) else {
        return if pending.len() > REPLY_LINE_MAX {
            Err(())
        } else {
            Ok(None)
        };
    };
    let mut line = &pending[..end];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let line = line.to_vec();
    conn.read_pos += end + 1;
    Ok(Some(line))
}

/// Drops the input bytes before `read_pos`.
fn compact(conn: &mut Conn) {
    if conn.read_pos > 0 {
        conn.inbuf.drain(..conn.read_pos);
        conn.read_pos = 0;
    }
}

/// `REPLCONF ACK <offset>`.
fn ack_command(offset: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let offset = offset.to_string();
    crate::replication::propagate::encode(&mut bytes, &["REPLCONF", "ACK", &offset]);
    bytes
}

/// `REPLCONF GETACK ...`: the master asks for our offset (WAIT).
fn is_getack(args: &[&[u8]]) -> bool {
    args.len() >= 2
        && args[0].eq_ignore_ascii_case(b"replconf")
        && args[1].eq_ignore_ascii_case(b"getack")
}

impl Core {
    // ---------------------------------------------------------------------------------------
    // REPLICATION TICK
    // ---------------------------------------------------------------------------------------

    /// Every loop turn of core 0: picks up a finished load, and reconnects after a lost link,
    /// without waiting for the next cron turn (partial resyncs and loads end sooner).
    pub(super) fn replication_soon(&mut self) {
        let loading = matches!(
            &self.replica_link.current,
            Some(Link {
                phase: Phase::Open(Open {
                    stage: Stage::Loading { .. },
                    ..
                }),
                ..
            })
        );
        if !loading && !self.replica_link.tick_soon {
            return;
        }
        let now = unix_time_ms();
        if loading {
            self.master_link_check_load(now);
        }
        if self.replica_link.tick_soon && now >= self.replica_link.quick_not_before_ms {
            self.replica_link.tick_soon = false;
            self.replica_link.quick_not_before_ms = now + 1000;
            self.replication_tick(now);
        }
    }

    /// Every cron turn of core 0: follows REPLICAOF changes, finishes loads, connects; once a
    /// second the replication cron proper.
    pub(super) fn replication_tick(&mut self, now: u64) {
        self.master_link_check_load(now);
        let (epoch, state, connect_now, replica) = {
            let store = self.shared.lock_store();
            let side = &store.replication.replica_side;
            (side.epoch, side.state, side.connect_now, side.is_replica())
        };
        let stale = self.replica_link.current.as_ref().is_some_and(|link| {
            link.epoch != epoch
                && !matches!(
                    link.phase,
                    Phase::Connecting {
                        abandoned: true,
                        ..
                    }
                )
        });
        if stale {
            self.master_link_drop();
        }
        let cron_due = now >= self.replica_link.next_cron_ms;
        if cron_due {
            self.replica_link.next_cron_ms = now + REPLICATION_CRON_MS;
        }
        if !replica {
            return;
        }
        if cron_due {
            self.replication_cron(now);
        } else if state == LinkState::Connect && connect_now && self.replica_link.current.is_none()
        {
            self.master_connect(now, true);
        }
    }

    /// Redis' `replicationCron`, replica half: timeouts, reconnection, ACKs, keep-alives.
    fn replication_cron(&mut self, now: u64) {
        let timeout_ms = self.config.repl_timeout_secs * 1000;
        let (state, handshake_io, transfer, link) = {
            let store = self.shared.lock_store();
            let side = &store.replication.replica_side;
            (
                side.state,
                side.handshake_last_io_ms,
                side.transfer.clone(),
                side.master_link.clone(),
            )
        };
        if (state == LinkState::Connecting || state.in_handshake())
            && now.saturating_sub(handshake_io) > timeout_ms
        {
            log!(Warning, "Timeout connecting to the MASTER...");
            self.master_link_abort(true);
            return;
        }
        // While the snapshot comes (afterwards a failure shows when the spool runs out).
        let fetch_failed = state == LinkState::Transfer
            && matches!(
                &self.replica_link.current,
                Some(Link { phase: Phase::Open(Open { stream: Some(fetch), .. }), .. }) if fetch.failed()
            );
        if fetch_failed {
            let error = match self.open_link().and_then(|(_, open)| open.stream.take()) {
                Some(fetch) => fetch.finish(&mut Vec::new()).err().unwrap_or_default(),
                None => String::new(),
            };
            self.split_sync_failed(&error);
            return;
        }
        if state == LinkState::Transfer
            && !transfer.loading
            && now.saturating_sub(transfer.last_io_ms) > timeout_ms
        {
            log!(
                Warning,
                "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."
            );
            self.master_link_abort(true);
            return;
        }
        if let (LinkState::Connected, Some(link)) = (state, &link) {
            if now.saturating_sub(link.last_interaction_ms) > timeout_ms {
                log!(Warning, "MASTER timeout: no data nor PING received...");
                self.master_link_abort(true);
                return;
            }
        }
        if state == LinkState::Connect && self.replica_link.current.is_none() {
            self.master_connect(now, false);
            return;
        }
        let Some(slot) = self.master_link_slot() else {
            return;
        };
        if let (LinkState::Connected, Some(link)) = (state, &link) {
            if !link.pre_psync {
                self.master_link_send(slot, &ack_command(link.offset));
            }
        } else if transfer.loading {
            // The master must not time us out while we load (Redis sends the same newline).
            self.master_link_send(slot, b"\n");
        }
    }

    fn master_link_slot(&self) -> Option<u32> {
        match &self.replica_link.current {
            Some(Link {
                phase: Phase::Open(open),
                ..
            }) => Some(open.slot),
            _ => None,
        }
    }

    fn master_link_send(&mut self, slot: u32, bytes: &[u8]) {
        if let Some(Some(conn)) = self.conns.get_mut(slot as usize) {
            conn.out.raw(bytes);
            self.dirty.push(slot);
        }
    }

    // ---------------------------------------------------------------------------------------
    // CONNECT
    // ---------------------------------------------------------------------------------------

    /// Starts a non-blocking connect to the configured master: from the cron, or at once
    /// (`immediate`) after REPLICAOF or a lost link, whose own log line said so.
    fn master_connect(&mut self, now: u64, immediate: bool) {
        let (epoch, master) = {
            let store = self.shared.lock_store();
            let side = &store.replication.replica_side;
            match (&side.master, side.state) {
                (Some(master), LinkState::Connect) => (side.epoch, master.clone()),
                _ => return,
            }
        };
        if !immediate {
            log!(
                Notice,
                "Connecting to MASTER {}:{}",
                master.host,
                master.port
            );
        }
        let started = (|| -> std::io::Result<(Socket, Box<SockAddr>)> {
            let address = (master.host.as_str(), master.port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no address for {}", master.host),
                    )
                })?;
            let socket = Socket::new(
                Domain::for_address(address),
                Type::STREAM.nonblocking().cloexec(),
                Some(Protocol::TCP),
            )?;
            Ok((socket, Box::new(SockAddr::from(address))))
        })();
        let mut store = self.shared.lock_store();
        if store.replication.replica_side.epoch != epoch {
            return;
        }
        let (socket, address) = match started {
            Ok(started) => started,
            Err(error) => {
                log!(
                    Warning,
                    "Unable to connect to MASTER: {}",
                    crate::config::os_error_text(&error)
                );
                replica::link_lost(&mut store, now, false);
                return;
            }
        };
        // SAFETY: the address is boxed in `Phase::Connecting`, which is kept (even when the
        // link is abandoned) until this op's completion is reaped; the socket stays open as
        // long too.
        unsafe {
            uring::connect(
                &mut self.ring,
                socket.as_raw_fd(),
                address.as_ptr() as *const libc::sockaddr,
                address.len(),
                uring::user_data(OpKind::Connect, 0, 0),
            );
        }
        let side = &mut store.replication.replica_side;
        side.state = LinkState::Connecting;
        side.connect_now = false;
        side.handshake_last_io_ms = now;
        drop(store);
        self.replica_link.current = Some(Link {
            epoch,
            phase: Phase::Connecting {
                socket,
                address,
                abandoned: false,
            },
        });
        log!(Notice, "MASTER <-> REPLICA sync started");
    }

    /// The connect completed: on success the socket joins the slab and the handshake starts.
    pub(super) fn on_master_connect(&mut self, result: i32) {
        let Some(link) = self.replica_link.current.take() else {
            return;
        };
        let Phase::Connecting {
            socket, abandoned, ..
        } = link.phase
        else {
            self.replica_link.current = Some(link);
            return;
        };
        if abandoned {
            return;
        }
        let now = unix_time_ms();
        let mut store = self.shared.lock_store();
        let side = &mut store.replication.replica_side;
        if side.epoch != link.epoch || side.state != LinkState::Connecting {
            return;
        }
        if result < 0 {
            log!(
                Warning,
                "Error condition on socket for SYNC: {}",
                crate::config::os_error_text(&std::io::Error::from_raw_os_error(-result))
            );
            replica::link_lost(&mut store, now, false);
            return;
        }
        let ping = side.start_handshake(now);
        drop(store);
        let (slot, client_id) = self.insert_master_conn(socket);
        self.replica_link.current = Some(Link {
            epoch: link.epoch,
            phase: Phase::Open(Open {
                slot,
                client_id,
                stage: Stage::Handshake,
                queued_in_multi: 0,
                buffered: 0,
                stream: None,
            }),
        });
        self.master_link_send(slot, &ping);
        self.arm_recv(slot);
    }

    /// Puts the connected socket in the slab as the master client (registered for CLIENT
    /// LIST / KILL once the link is up, as Redis lists its master only then).
    fn insert_master_conn(&mut self, socket: Socket) -> (u32, u64) {
        let _ = socket.set_tcp_nodelay(true);
        let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        self.shared.connected_clients.fetch_add(1, Ordering::AcqRel);
        let fd = socket.into_raw_fd();
        let slot = self.insert_conn(fd, peer, local, ClientKind::Master, true);
        let conn = self.conns[slot as usize]
            .as_mut()
            .expect("insert_conn filled the slot");
        conn.client.is_master = true;
        (slot, conn.client.id)
    }

    // ---------------------------------------------------------------------------------------
    // ENDING A LINK
    // ---------------------------------------------------------------------------------------

    /// Ends the current link because it failed here (the state is updated now, so the close
    /// that follows is not mistaken for a lost master). `reconnect_now` retries at the next
    /// tick instead of the next cron second.
    fn master_link_abort(&mut self, reconnect_now: bool) {
        let Some(mut link) = self.replica_link.current.take() else {
            return;
        };
        // A `$<len>` payload cut short: its first bytes are kept for a resume.
        let received = match &link.phase {
            Phase::Open(Open {
                stage: Stage::Payload(file, PayloadEnd::Length(_)),
                ..
            }) => Some(file.written),
            _ => None,
        };
        let mut keep = false;
        {
            let mut store = self.shared.lock_store();
            if store.replication.replica_side.epoch == link.epoch {
                if let Some(received) = received {
                    keep = replica::keep_for_resume(&mut store.replication.replica_side, received);
                }
                replica::link_lost(&mut store, unix_time_ms(), reconnect_now);
            }
        }
        if reconnect_now {
            self.replica_link.tick_soon = true;
            // The next turn must not sleep until the cron timer.
            self.shared.cores[self.id].wake();
        }
        if keep {
            if let Phase::Open(open) = &mut link.phase {
                if let Stage::Payload(file, _) =
                    std::mem::replace(&mut open.stage, Stage::Handshake)
                {
                    log!(
                        Notice,
                        "Keeping the {} bytes of the snapshot received so far, to resume the transfer",
                        file.written
                    );
                    if let Some(old) = self.replica_link.kept.replace(file) {
                        old.discard();
                    }
                }
            }
        }
        self.master_link_dispose(link);
    }

    /// The stream connection of a split sync failed during the transfer or the load: this
    /// attempt ends, and the next ones use the one-connection protocol.
    fn split_sync_failed(&mut self, error: &str) {
        log!(
            Warning,
            "MASTER <-> REPLICA sync: the stream connection failed: {error}; the next sync uses one connection"
        );
        self.shared
            .lock_store()
            .replication
            .replica_side
            .split_disabled = true;
        self.master_link_abort(true);
    }

    /// Deletes the kept partial snapshot unless the keyspace still wants it resumed.
    fn master_link_sync_kept(&mut self, resumable: bool) {
        if !resumable {
            if let Some(file) = self.replica_link.kept.take() {
                file.discard();
            }
        }
    }

    /// Drops a link made for an older epoch (REPLICAOF changed): the state already moved on,
    /// and a kept partial snapshot belongs to the old master.
    fn master_link_drop(&mut self) {
        if let Some(link) = self.replica_link.current.take() {
            self.master_link_dispose(link);
        }
        self.master_link_sync_kept(false);
    }

    /// Releases a link's resources: cancels a connect, closes the connection, removes a
    /// half-received snapshot.
    fn master_link_dispose(&mut self, link: Link) {
        match link.phase {
            Phase::Connecting {
                socket, address, ..
            } => {
                uring::cancel(&mut self.ring, uring::user_data(OpKind::Connect, 0, 0));
                // The op still owns the socket and the address until its completion.
                self.replica_link.current = Some(Link {
                    epoch: link.epoch,
                    phase: Phase::Connecting {
                        socket,
                        address,
                        abandoned: true,
                    },
                });
            }
            Phase::Open(open) => {
                match open.stage {
                    Stage::BulkHeader(file) | Stage::Payload(file, _) => file.discard(),
                    Stage::Loading { path, .. } => {
                        // The loader maps the file; unlinking it is safe, its result unread.
                        let _ = std::fs::remove_file(path);
                    }
                    Stage::Handshake | Stage::Streaming => {}
                }
                self.close(open.slot);
            }
        }
    }

    /// Hook from `release`: a connection was freed. If it was the live master link (peer
    /// closed, I/O error, CLIENT KILL), the master is lost: its history is cached and the
    /// replica reconnects at once to try a partial resync.
    pub(super) fn master_link_released(&mut self, client_id: u64) {
        let is_link = matches!(
            &self.replica_link.current,
            Some(Link { phase: Phase::Open(open), .. }) if open.client_id == client_id
        );
        if is_link {
            self.master_link_abort(true);
        }
    }

    // ---------------------------------------------------------------------------------------
    // INPUT
    // ---------------------------------------------------------------------------------------

    /// Everything the master link receives comes here (from `process_input`).
    pub(super) fn master_link_input(&mut self, slot: u32) {
        let live = matches!(
            &self.replica_link.current,
            Some(Link { phase: Phase::Open(open), .. }) if open.slot == slot
        );
        if !live {
            // A link being closed: what it still receives is dropped unread.
            if let Some(Some(conn)) = self.conns.get_mut(slot as usize) {
                conn.inbuf.clear();
                conn.read_pos = 0;
            }
            return;
        }
        for _ in 0..LINK_STEPS_MAX {
            let Some(Link {
                phase: Phase::Open(open),
                ..
            }) = &self.replica_link.current
            else {
                return;
            };
            let progressed = match open.stage {
                Stage::Handshake => self.link_handshake_step(slot),
                Stage::BulkHeader(_) => self.link_bulk_header_step(slot),
                Stage::Payload(..) => self.link_payload_step(slot),
                Stage::Loading { .. } => {
                    // Nothing is read until the snapshot is in place.
                    if let Some(Some(conn)) = self.conns.get_mut(slot as usize) {
                        conn.input_paused = true;
                    }
                    false
                }
                Stage::Streaming => {
                    self.link_apply_stream(slot);
                    false
                }
            };
            if !progressed {
                return;
            }
        }
        // More lines than one turn's budget (a master flooding newlines): continue later.
        self.resume.push(slot);
    }

    fn open_link(&mut self) -> Option<(u64, &mut Open)> {
        match &mut self.replica_link.current {
            Some(Link {
                epoch,
                phase: Phase::Open(open),
            }) => Some((*epoch, open)),
            _ => None,
        }
    }

    /// The master's next reply line, taken out of the link's buffer; `None` while no whole
    /// line has arrived, or when a line runs past [`REPLY_LINE_MAX`]: then `overflow` is
    /// logged and the link aborted (retried at once with `reconnect_now`).
    fn link_next_line(
        &mut self,
        slot: u32,
        overflow: &str,
        reconnect_now: bool,
    ) -> Option<Vec<u8>> {
        let conn = self.conns.get_mut(slot as usize)?.as_mut()?;
        match take_line(conn) {
            Ok(Some(line)) => {
                compact(conn);
                Some(line)
            }
            Ok(None) => None,
            Err(()) => {
                log!(Warning, "{overflow}");
                self.master_link_abort(reconnect_now);
                None
            }
        }
    }

    /// One handshake reply. Returns true if a reply was handled.
    fn link_handshake_step(&mut self, slot: u32) -> bool {
        let Some(line) = self.link_next_line(
            slot,
            "Master did not respond to command during SYNC handshake",
            false,
        ) else {
            return false;
        };
        let settings = HandshakeSettings::from_config(
            &self.config,
            self.shared.bound_port.load(Ordering::Relaxed) as u16,
        );
        let now = unix_time_ms();
        let epoch = self.replica_link.current.as_ref().map_or(0, |l| l.epoch);
        let mut store = self.shared.lock_store();
        if store.replication.replica_side.epoch != epoch {
            drop(store);
            self.master_link_drop();
            return false;
        }
        let reaction = store
            .replication
            .replica_side
            .on_handshake_reply(&line, &settings, now);
        let resumable = store.replication.replica_side.resumable.is_some();
        let split = {
            let side = &store.replication.replica_side;
            match (&reaction, &side.master, &side.fullresync) {
                (Reaction::FullResync | Reaction::Resume, Some(master), Some((replid, offset)))
                    if side.split =>
                {
                    Some((master.clone(), replid.clone(), *offset as u64 + 1))
                }
                _ => None,
            }
        };
        if let Some((master, replid, first_offset)) = split {
            let started = StreamFetch::start(
                master.host,
                master.port,
                settings.clone(),
                replid,
                first_offset,
                Duration::from_secs(self.config.repl_timeout_secs.max(1)),
            );
            match started {
                Ok(fetch) => {
                    if let Some(Link {
                        phase: Phase::Open(open),
                        ..
                    }) = &mut self.replica_link.current
                    {
                        open.stream = Some(Box::new(fetch));
                    }
                }
                Err(error) => {
                    log!(
                        Warning,
                        "Can't start the thread for the stream connection: {}",
                        crate::config::os_error_text(&error)
                    );
                    store.replication.replica_side.split_disabled = true;
                    drop(store);
                    self.master_link_abort(true);
                    return false;
                }
            }
        }
        if reaction != Reaction::Resume && !resumable {
            // Before any new temp file: the kept one goes unless a resume is still possible.
            if let Some(file) = self.replica_link.kept.take() {
                file.discard();
            }
        }
        match reaction {
            Reaction::Wait => true,
            Reaction::Send(bytes) => {
                drop(store);
                self.master_link_send(slot, &bytes);
                true
            }
            Reaction::FullResync | Reaction::Sync(_) => {
                drop(store);
                if let Reaction::Sync(bytes) = &reaction {
                    self.master_link_send(slot, bytes);
                }
                match TransferFile::create() {
                    Ok(file) => {
                        if let Some((_, open)) = self.open_link() {
                            open.stage = Stage::BulkHeader(file);
                        }
                        true
                    }
                    Err(error) => {
                        log!(
                            Warning,
                            "Opening the temp file needed for MASTER <-> REPLICA synchronization: {}",
                            crate::config::os_error_text(&error)
                        );
                        self.master_link_abort(false);
                        false
                    }
                }
            }
            Reaction::Resume => {
                drop(store);
                match self.replica_link.kept.take() {
                    Some(file) => {
                        if let Some((_, open)) = self.open_link() {
                            open.stage = Stage::BulkHeader(file);
                        }
                        true
                    }
                    None => {
                        log!(Warning, "The partial snapshot to resume is gone");
                        self.master_link_abort(true);
                        false
                    }
                }
            }
            Reaction::Continue { new_replid } => {
                self.list_master_client(slot);
                replica::continue_partial(&mut store, new_replid, &self.config, now);
                let db = store
                    .replication
                    .replica_side
                    .master_link
                    .as_ref()
                    .map_or(0, |link| link.db);
                drop(store);
                self.master_link_up(slot, db);
                true
            }
            Reaction::Fail => {
                drop(store);
                self.master_link_abort(false);
                false
            }
        }
    }

    /// Puts the master client in CLIENT LIST. Called with the keyspace locked, before the
    /// link state says `up`, so whoever sees the link up also finds the client (CLIENT KILL
    /// TYPE master right after INFO said up).
    fn list_master_client(&self, slot: u32) {
        if let Some(Some(conn)) = self.conns.get(slot as usize) {
            let info = conn.client.info.clone();
            self.shared.clients.lock().insert(info.id, info);
        }
    }

    /// The link is up (after a partial or a full sync): the master client starts in the
    /// stream's database and appears in CLIENT LIST.
    fn master_link_up(&mut self, slot: u32, db: usize) {
        if let Some((_, open)) = self.open_link() {
            open.stage = Stage::Streaming;
            open.queued_in_multi = 0;
        }
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        conn.client.set_db(db);
        conn.input_paused = false;
        let info = conn.client.info.clone();
        self.shared.clients.lock().insert(info.id, info);
        if let Some((_, open)) = self.open_link() {
            open.buffered = 0;
        }
    }

    /// The line before the snapshot. Returns true if one was handled.
    fn link_bulk_header_step(&mut self, slot: u32) -> bool {
        let Some(line) = self.link_next_line(
            slot,
            &format!("Bad protocol from MASTER, the first byte is not '$' (we received a line of more than {REPLY_LINE_MAX} bytes), are you sure the host and port are right?"),
            true,
        ) else {
            return false;
        };
        let now = unix_time_ms();
        let end = match replica::parse_bulk_header(&line) {
            BulkHeader::KeepAlive => None,
            BulkHeader::Error(error) => {
                log!(Warning, "MASTER aborted replication with an error: {error}");
                self.master_link_abort(true);
                return false;
            }
            BulkHeader::Bad(text) => {
                log!(
                    Warning,
                    "Bad protocol from MASTER, the first byte is not '$' (we received '{text}'), are you sure the host and port are right?"
                );
                self.master_link_abort(true);
                return false;
            }
            BulkHeader::Length(len) => {
                log!(
                    Notice,
                    "MASTER <-> REPLICA sync: receiving {len} bytes from master to disk"
                );
                Some(PayloadEnd::Length(len))
            }
            BulkHeader::EofMark(mark) => {
                log!(
                    Notice,
                    "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
                );
                Some(PayloadEnd::Mark(EofMark::new(mark)))
            }
        };
        let already = match self.open_link() {
            Some((
                _,
                Open {
                    stage: Stage::BulkHeader(file),
                    ..
                },
            )) => file.written,
            _ => 0,
        };
        {
            let mut store = self.shared.lock_store();
            let transfer = &mut store.replication.replica_side.transfer;
            transfer.last_io_ms = now;
            match &end {
                // A resumed transfer announces only the bytes left.
                Some(PayloadEnd::Length(len)) => transfer.size = (*len + already) as i64,
                Some(PayloadEnd::Mark(_)) => transfer.size = 0,
                None => {}
            }
        }
        if let Some(end) = end {
            if let Some((_, open)) = self.open_link() {
                if let Stage::BulkHeader(file) =
                    std::mem::replace(&mut open.stage, Stage::Streaming)
                {
                    open.stage = Stage::Payload(file, end);
                }
            }
            if let Some(Some(conn)) = self.conns.get_mut(slot as usize) {
                if conn.inbuf.capacity() < TRANSFER_RECV_BYTES {
                    conn.inbuf.reserve(TRANSFER_RECV_BYTES - conn.inbuf.len());
                }
            }
        }
        true
    }

    /// Snapshot bytes into the temp file. Returns true when the snapshot is complete (the
    /// loader is started and the rest of the input waits).
    fn link_payload_step(&mut self, slot: u32) -> bool {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return false;
        };
        let Some(Link {
            phase: Phase::Open(open),
            ..
        }) = &mut self.replica_link.current
        else {
            return false;
        };
        let Stage::Payload(file, end) = &mut open.stage else {
            return false;
        };
        let available = &conn.inbuf[conn.read_pos..];
        if available.is_empty() {
            return false;
        }
        let (payload, consumed, done, overshoot) = match end {
            PayloadEnd::Length(left) => {
                let take = (*left).min(available.len() as u64) as usize;
                *left -= take as u64;
                (take, take, *left == 0, 0)
            }
            PayloadEnd::Mark(mark) => {
                let scan = mark.feed(available);
                (
                    scan.payload,
                    scan.consumed,
                    scan.done,
                    scan.payload_overshoot,
                )
            }
        };
        let written = file.append(&available[..payload]).and_then(|()| {
            if overshoot > 0 {
                file.cut(overshoot)
            } else {
                Ok(())
            }
        });
        conn.read_pos += consumed;
        compact(conn);
        if conn.inbuf.capacity() < TRANSFER_RECV_BYTES {
            conn.inbuf.reserve(TRANSFER_RECV_BYTES - conn.inbuf.len());
        }
        let now = unix_time_ms();
        {
            let mut store = self.shared.lock_store();
            let transfer = &mut store.replication.replica_side.transfer;
            transfer.read += consumed as u64;
            transfer.last_io_ms = now;
            if done && written.is_ok() {
                transfer.loading = true;
            }
        }
        if let Err(error) = written {
            log!(
                Warning,
                "Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA synchronization: {}",
                crate::config::os_error_text(&error)
            );
            self.master_link_abort(true);
            return false;
        }
        if !done {
            return true;
        }
        self.start_snapshot_load(slot);
        true
    }

    /// The whole snapshot is in the temp file: a helper thread fsyncs and loads it into a
    /// fresh keyspace while the old one keeps serving.
    fn start_snapshot_load(&mut self, slot: u32) {
        let Some((_, open)) = self.open_link() else {
            return;
        };
        let Stage::Payload(file, _) = std::mem::replace(&mut open.stage, Stage::Streaming) else {
            return;
        };
        let (sender, results) = mpsc::channel();
        let path = file.path.clone();
        let options = rdb::LoadOptions {
            now_ms: unix_time_ms(),
            drop_expired: false,
            key_load_delay_us: self.config.key_load_delay,
            skip_checksum: !self.config.rdbchecksum,
        };
        let databases = self.config.databases;
        let shared = self.shared.clone();
        log!(Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
        let spawned = std::thread::Builder::new()
            .name("ringkv-repl-load".into())
            .spawn(move || {
                let result = load_snapshot(file, databases, &options);
                let _ = sender.send(result);
                shared.cores[0].wake();
            });
        if let Err(error) = spawned {
            log!(
                Warning,
                "Cannot start the thread that loads the MASTER snapshot: {}",
                crate::config::os_error_text(&error)
            );
            let _ = std::fs::remove_file(&path);
            self.master_link_abort(true);
            return;
        }
        let mut detach = false;
        if let Some((_, open)) = self.open_link() {
            open.stage = Stage::Loading { path, results };
            if open.stream.is_some() {
                // Split sync: this connection carried only the snapshot (the master closes
                // it too); the stream connection takes its place once the data is loaded.
                open.slot = DETACHED;
                open.client_id = 0;
                detach = true;
            }
        }
        if detach {
            self.close(slot);
        } else if let Some(Some(conn)) = self.conns.get_mut(slot as usize) {
            conn.input_paused = true;
        }
    }

    /// Swaps a finished load in (or gives up on a failed one).
    fn master_link_check_load(&mut self, now: u64) {
        let Some((epoch, open)) = self.open_link() else {
            return;
        };
        let Stage::Loading { results, .. } = &open.stage else {
            return;
        };
        let outcome = match results.try_recv() {
            Ok(outcome) => outcome,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                Err("the thread loading the MASTER snapshot stopped without a result".into())
            }
        };
        let slot = open.slot;
        let Stage::Loading { path, .. } = std::mem::replace(&mut open.stage, Stage::Streaming)
        else {
            return;
        };
        let stream = open.stream.take();
        let snapshot = match outcome {
            Ok(snapshot) => snapshot,
            Err(error) => {
                log!(Warning, "{error}");
                let _ = std::fs::remove_file(&path);
                self.master_link_abort(true);
                return;
            }
        };
        // A split sync: the stream connection becomes the link. Its thread goes on spooling
        // until the spool is applied (`link_feed_spool`); the event loop only sends on it
        // meanwhile.
        let mut slot = slot;
        let spooling = stream.is_some();
        if let Some(stream) = stream {
            let Some(socket) = stream.socket(STREAM_HANDSHAKE_WAIT) else {
                let error = if stream.failed() {
                    stream.finish(&mut Vec::new()).err().unwrap_or_default()
                } else {
                    "its handshake did not finish in time".to_string()
                };
                let _ = std::fs::remove_file(&path);
                self.split_sync_failed(&error);
                return;
            };
            log!(
                Notice,
                "MASTER <-> REPLICA sync: {} bytes of stream received while loading",
                stream.behind()
            );
            let (new_slot, client_id) = self.insert_master_conn(Socket::from(socket));
            if let Some(Some(conn)) = self.conns.get_mut(new_slot as usize) {
                conn.recv_elsewhere = true;
            }
            if let Some((_, open)) = self.open_link() {
                open.slot = new_slot;
                open.client_id = client_id;
                open.stream = Some(stream);
            }
            slot = new_slot;
        }
        let config = self.config.clone();
        let target = crate::persistence::snapshot::rdb_path(&config);
        let mut store = self.shared.lock_store();
        if store.replication.replica_side.epoch != epoch {
            drop(store);
            let _ = std::fs::remove_file(&path);
            self.master_link_drop();
            return;
        }
        // A save of the old data must not land over the file we keep as our dump.
        if store.persistence.child_kind() == Some(crate::persistence::fork::ChildKind::Rdb) {
            let pid = store.persistence.child.as_ref().map_or(0, |c| c.pid);
            log!(
                Notice,
                "Replica is about to load the RDB file received from the master, but there is a pending RDB child running. Killing process {pid} and removing its temp file to avoid any race"
            );
            crate::persistence::fork::kill_child(&mut store);
            let _ = std::fs::remove_file(files::temp_path_for_pid(&target, pid));
        }
        if let Err(error) = std::fs::rename(&path, &target) {
            drop(store);
            log!(
                Warning,
                "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {}",
                target.display(),
                crate::config::os_error_text(&error)
            );
            let _ = std::fs::remove_file(&path);
            self.master_link_abort(true);
            return;
        }
        log!(
            Notice,
            "MASTER <-> REPLICA sync: Swapping active DB with loaded DB"
        );
        store.persistence.last_load_keys_loaded = snapshot.keys;
        store.persistence.last_load_keys_expired = 0;
        self.list_master_client(slot);
        let old =
            replica::finish_full_sync(&mut store, snapshot.dbs, snapshot.stream_db, &config, now);
        if let Err(error) = crate::persistence::aof::restart_after_sync(&self.shared, &mut store) {
            log!(
                Warning,
                "Failed enabling the AOF after successful master synchronization! {error}"
            );
        }
        let ack = store
            .replication
            .replica_side
            .master_link
            .as_ref()
            .filter(|link| !link.pre_psync)
            .map(|link| ack_command(link.offset));
        drop(store);
        if let Err(error) = files::sync_directory(files::parent_of(&target)) {
            log!(
                Warning,
                "Failed trying to sync DB directory {} in MASTER <-> REPLICA synchronization: {}",
                target.display(),
                crate::config::os_error_text(&error)
            );
        }
        // Redis' `rdb-del-sync-files`: a replica without persistence keeps no copy.
        if config.rdb_del_sync_files && config.save.is_empty() && !config.appendonly {
            log!(
                Notice,
                "Removing the RDB file obtained from the master. This replica has persistence disabled"
            );
            let _ = std::fs::remove_file(&target);
        }
        if old.iter().any(|db| !db.is_empty()) {
            log!(
                Notice,
                "MASTER <-> REPLICA sync: Discarding old DB in background"
            );
            let _ = std::thread::Builder::new()
                .name("ringkv-free-old-db".into())
                .spawn(move || drop(old));
        }
        self.master_link_up(slot, snapshot.stream_db);
        // A diskless master waits for this first ACK to put us online.
        if let Some(ack) = ack {
            self.master_link_send(slot, &ack);
        }
        if spooling {
            self.link_feed_spool(slot);
        } else {
            self.master_link_input(slot);
            self.arm_recv(slot);
        }
    }

    /// A split sync's catch-up: moves the next chunk of the stream spool into the link's
    /// input once most of it was applied, and hands the socket over to the event loop when
    /// the spool is all read (the helper thread stops; what it spooled last comes too).
    fn link_feed_spool(&mut self, slot: u32) {
        let Some(Link {
            phase: Phase::Open(open),
            ..
        }) = &mut self.replica_link.current
        else {
            return;
        };
        let Some(stream) = open.stream.as_mut() else {
            return;
        };
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        // The spool goes in after whatever the input holds, in order.
        if conn.inbuf.len() - conn.read_pos >= SPOOL_LOW_WATER {
            self.resume.push(slot);
            return;
        }
        let fed = match stream.read_spool(&mut conn.inbuf, SPOOL_CHUNK) {
            Ok(0) => {
                let stream = open.stream.take().expect("checked above");
                stream.finish(&mut conn.inbuf).map(|()| 0)
            }
            Ok(fed) => Ok(fed),
            Err(error) => Err(format!("reading the stream spool: {error}")),
        };
        match fed {
            Ok(0) => {
                // Caught up: the socket is an ordinary master link from now on.
                log!(
                    Notice,
                    "MASTER <-> REPLICA sync: caught up with the stream received during the sync"
                );
                let borrowed = BorrowedSocket(conn.fd);
                let socket = socket2::SockRef::from(&borrowed);
                let _ = socket.set_read_timeout(None);
                let _ = socket.set_nonblocking(true);
                conn.recv_elsewhere = false;
                self.master_link_input(slot);
                self.arm_recv(slot);
            }
            // Applied at the next turn: other clients get theirs in between.
            Ok(_) => self.resume.push(slot),
            Err(error) => {
                log!(
                    Warning,
                    "MASTER <-> REPLICA sync: the stream connection failed while catching up: {error}"
                );
                self.master_link_abort(true);
            }
        }
    }

    /// Runs the master's commands in the input as the master client, under one store lock.
    fn link_apply_stream(&mut self, slot: u32) {
        let shared = self.shared.clone();
        let config = self.config.clone();
        let Some(Link {
            epoch,
            phase: Phase::Open(open),
        }) = &mut self.replica_link.current
        else {
            return;
        };
        let epoch = *epoch;
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let received = conn.inbuf.len().saturating_sub(open.buffered);
        let mut store = shared.lock_store();
        if store.replication.replica_side.epoch != epoch {
            drop(store);
            self.master_link_drop();
            return;
        }
        let now = unix_time_ms();
        let base_offset = store
            .replication
            .replica_side
            .master_link
            .as_ref()
            .map_or(0, |link| link.offset);
        // The master decides when keys expire: what it sends applies to keys it still has.
        store.set_expiry_mode(ExpiryMode::Keep);
        let bulk_len_max = config.proto_max_bulk_len as i64;
        let mut position = open.queued_in_multi;
        let mut applied_end = 0;
        let mut acks = Vec::new();
        let mut replies = Reply::new(Resp::V2);
        let mut executed = 0;
        let mut protocol_error = None;
        let mut budget_spent = false;
        let mut grow_by = 0;
        loop {
            if executed >= COMMANDS_PER_READ_MAX {
                budget_spent = true;
                break;
            }
            let pending = &conn.inbuf[position..];
            if pending.is_empty() {
                break;
            }
            let owned: Vec<Vec<u8>>;
            let mut slices: Vec<&[u8]> = Vec::new();
            match parser::parse(pending, bulk_len_max) {
                Ok(Parsed::Incomplete { needed }) => {
                    grow_by = needed.saturating_sub(pending.len());
                    break;
                }
                Err(error) => {
                    protocol_error = Some(error.to_string());
                    break;
                }
                Ok(Parsed::QuotedInline { consumed }) => {
                    owned = parser::parse_inline_owned(&pending[..consumed]).unwrap_or_default();
                    slices.extend(owned.iter().map(|a| a.as_slice()));
                    position += consumed;
                }
                Ok(Parsed::Command { args, consumed }) => {
                    slices.extend(args.iter().map(|r| &pending[r.clone()]));
                    position += consumed;
                }
            }
            if !slices.is_empty() {
                executed += 1;
                if is_getack(&slices) {
                    // The offset of everything before this command, as Redis acknowledges.
                    acks.push(base_offset + applied_end as i64);
                } else if !slices[0].eq_ignore_ascii_case(b"replconf") {
                    run_command(
                        &shared,
                        &config,
                        &mut store,
                        &mut conn.client,
                        &mut replies,
                        &slices,
                    );
                    if replies.buf.first() == Some(&b'-') {
                        let error = String::from_utf8_lossy(&replies.buf[1..]);
                        log!(
                            Warning,
                            "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{}'",
                            error.trim_end(),
                            String::from_utf8_lossy(slices[0]).to_lowercase()
                        );
                    }
                    replies.buf.clear();
                }
            }
            if conn.client.multi.is_none() {
                applied_end = position;
            }
        }
        store.set_expiry_mode(ExpiryMode::Hide);
        replica::applied(
            &mut store,
            &conn.inbuf[..applied_end],
            received,
            conn.client.db,
            now,
        );
        drop(store);
        conn.inbuf.drain(..applied_end);
        conn.read_pos = 0;
        open.queued_in_multi = position - applied_end;
        open.buffered = conn.inbuf.len();
        if grow_by > 0 {
            conn.inbuf.reserve(grow_by);
        } else if conn.inbuf.is_empty() && conn.inbuf.capacity() > TRANSFER_RECV_BYTES {
            conn.inbuf = Vec::new();
        }
        conn.client
            .info
            .query_buffer
            .store(conn.inbuf.len(), Ordering::Relaxed);
        for offset in acks {
            conn.out.raw(&ack_command(offset));
        }
        if !conn.out.is_empty() {
            self.dirty.push(slot);
        }
        if let Some(error) = protocol_error {
            log!(
                Warning,
                "Protocol error ({error}) from client: id={} addr={} (our master): closing the link",
                conn.client.id,
                conn.client.info.addr
            );
            self.master_link_abort(true);
            return;
        }
        if budget_spent {
            self.resume.push(slot);
        } else if open.stream.is_some() {
            self.link_feed_spool(slot);
        }
    }
}

/// The link's socket, borrowed for socket options.
struct BorrowedSocket(i32);

impl std::os::fd::AsFd for BorrowedSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the fd belongs to a connection of the slab, which closes fds only in
        // `release`; this wrapper lives within one call on the owning core.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

/// The loader thread's work: make the file durable, map it, decode it into fresh databases.
fn load_snapshot(
    file: TransferFile,
    databases: usize,
    options: &rdb::LoadOptions,
) -> Result<LoadedSnapshot, String> {
    // The file becomes our dump.rdb, so it must be durable before the rename; decoding does
    // not need that, so the fsync runs beside the decode (from the page cache) instead of
    // before it.
    let path = file.path;
    let syncer = std::thread::Builder::new()
        .name("ringkv-repl-fsync".into())
        .spawn(move || file.file.sync_all())
        .map_err(|error| {
            format!(
                "Cannot start the thread that syncs the MASTER snapshot to disk: {}",
                crate::config::os_error_text(&error)
            )
        })?;
    let decoded = files::Mapped::open(&path)
        .map_err(|error| {
            format!(
                "Failed trying to load the MASTER synchronization DB from disk: {}",
                crate::config::os_error_text(&error)
            )
        })
        .and_then(|mapped| {
            let mut dbs: Vec<Db> = (0..databases).map(|_| Db::default()).collect();
            rdb::decode::load(mapped.bytes(), &mut dbs, options)
                .map(|loaded| (dbs, loaded))
                .map_err(|error| {
                    format!(
                        "Failed trying to load the MASTER synchronization DB from disk: {error}"
                    )
                })
        });
    let synced = syncer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the fsync thread panicked")));
    let (dbs, loaded) = decoded?;
    synced.map_err(|error| {
        format!(
            "Failed trying to sync the temp DB to disk in MASTER <-> REPLICA synchronization: {}",
            crate::config::os_error_text(&error)
        )
    })?;
    log!(
        Notice,
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys,
        loaded.expired_skipped
    );
    let stream_db = loaded
        .info
        .repl_stream_db
        .filter(|&db| db >= 0 && (db as usize) < databases)
        .unwrap_or(0) as usize;
    Ok(LoadedSnapshot {
        dbs,
        stream_db,
        keys: loaded.keys,
    })
}
