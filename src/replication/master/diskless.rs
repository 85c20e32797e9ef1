//! Diskless full resync (`repl-diskless-sync yes`): the snapshot goes from the fork child to
//! the replicas' sockets without a file.
//!
//! # The transfer
//! 1. **Waiting.** A replica that announced `capa eof` and must resync in full waits in
//!    `wait_bgsave` (`\n` keep-alives) for `repl-diskless-sync-delay` seconds counted from
//!    the oldest waiting replica, so that replicas arriving together share one child; the
//!    child starts at once when `repl-diskless-sync-max-replicas` (0 = no cap) are waiting.
//!    The master cron checks this on every turn ([`ready_to_start`]). If any replica waiting
//!    for the same child lacks `capa eof`, the child writes to disk for all (as Redis does).
//! 2. **The child.** One pipe per replica is made before the fork (grown to 1 MiB); the
//!    parent closes the write ends right after it and hands each read end to the core owning
//!    the replica ([`ReplicaEvent::SendPipe`]). The child closes its copies of the read ends
//!    (the parent's is then the only reader, so a replica that goes away is `EPIPE`, with
//!    `SIGPIPE` ignored), and writes `$EOF:<40 random hex chars>\r\n`, the RDB (same aux
//!    fields as the disk path: the fork offset and the replication ID) and the 40 chars again
//!    to every pipe with blocking writes ([`FanOut`]). A pipe whose reader vanished is dropped
//!    and the others go on; the child fails only when none is left. It is an RDB child, as in
//!    Redis (`rdb_bgsave_in_progress`, `total_forks`), but makes no file: `rdb_last_bgsave_status`,
//!    `rdb_changes_since_last_save` and `rdb_last_save_time` are left alone.
//! 3. **The cores.** Each owning core splices its pipe into the socket (`splice` with
//!    `SPLICE_F_NONBLOCK` on its own thread: no copy, never blocking; an empty pipe arms a
//!    `POLLIN` on the pipe, a full socket a `POLLOUT` on the socket) until end of file. No `\n`
//!    keep-alives once the pipe transfer started: the socket carries the payload. The child
//!    therefore goes at the pace of the slowest replica, as in Redis; a replica whose socket
//!    stays full for `repl-timeout` is dropped by its core ("timedout replica (full sync)").
//! 4. **Online on the first ACK.** When a replica's pipe reached end of file *and* the child
//!    exited successfully (either may come first: [`pipe_drained`], [`finished`]), the replica
//!    is `online` but gets no stream yet: a replica finds the end of a `$EOF:` payload by its
//!    last 40 bytes, so nothing may follow them until it has loaded and sent its first
//!    `REPLCONF ACK` ([`after_ack`]); then its core streams from the backlog, from the fork
//!    offset + 1, exactly as after a disk transfer. While it loads it sends `\n` once a second,
//!    which refreshes its ACK time, so `repl-timeout` does not drop a replica loading a big
//!    snapshot; meanwhile the backlog stretch it is owed is held to the output-buffer limit by
//!    the master cron. An ACK that arrives before the child was reaped is remembered.
//!
//! An `rdb-only` client (`redis-cli --rdb`) and a ringkv replica's `snapshot-only` connection
//! (it takes the stream on a second connection) are closed once their payload is complete.
//!
//! INFO shows such a replica as `wait_bgsave` until the transfer is complete, then `online`
//! (Redis 7.0 never shows `send_bulk` for a diskless transfer). `sync_full` counts one per
//! replica, as for the disk path.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use super::{
    fail_waiting, fullresync_line, MasterSide, Replica, ReplicaEvent, ReplicaState, SyncSnapshot,
};
use crate::config::Config;
use crate::log;
use crate::persistence::fork::{self, ChildKind};
use crate::persistence::{rdb, snapshot};
use crate::replication::backlog::{Backlog, Reader};
use crate::server::shared::{new_run_id, unix_time_ms, CoreMessage, Shared};
use crate::server::uring;
use crate::storage::{Db, Store};

/// Size each pipe is grown to (Linux's default `pipe-max-size`).
const PIPE_SIZE: usize = 1 << 20;

/// Where a replica served by a diskless child stands, from the fork until its stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// The child `pid` writes into this replica's pipe, its core splices it to the socket.
    Sending {
        pid: i32,
        /// The core reached the pipe's end of file.
        drained: bool,
        /// The child exited successfully.
        child_ok: bool,
        /// A `REPLCONF ACK` already came (the replica loaded before the child was reaped).
        acked: bool,
    },
    /// Complete and online: the stream starts on the first `REPLCONF ACK`.
    AwaitAck,
}

/// Whether this replica is online but not streaming yet (waiting for its first ACK).
pub fn awaits_stream(replica: &Replica) -> bool {
    replica.state == ReplicaState::Online && replica.diskless == Some(Transfer::AwaitAck)
}

/// Whether the next child for the replicas waiting with `no_compress` streams to their
/// sockets: diskless is on and every one of them understands `$EOF:` framing.
pub fn chosen(config: &Config, side: &MasterSide, no_compress: bool) -> bool {
    config.repl_diskless_sync
        && waiting(side, no_compress).all(|r| r.capa_eof)
        && waiting(side, no_compress).next().is_some()
}

fn waiting(side: &MasterSide, no_compress: bool) -> impl Iterator<Item = &Replica> {
    side.replicas
        .iter()
        .filter(move |r| r.state == ReplicaState::WaitBgsaveStart && r.shares_snapshot(no_compress))
}

/// Whether a child for the replicas waiting with `no_compress` may start now: always when
/// diskless sync is off; otherwise once the oldest has waited `repl-diskless-sync-delay`
/// seconds, or `repl-diskless-sync-max-replicas` (when not 0) are waiting.
pub fn ready_to_start(config: &Config, side: &MasterSide, no_compress: bool, now_ms: u64) -> bool {
    let mut count = 0u64;
    let mut oldest = u64::MAX;
    for replica in waiting(side, no_compress) {
        count += 1;
        oldest = oldest.min(replica.asked_ms);
    }
    if count == 0 {
        return false;
    }
    if !config.repl_diskless_sync {
        return true;
    }
    let max = config.repl_diskless_sync_max_replicas;
    (max > 0 && count >= max)
        || now_ms.saturating_sub(oldest) >= config.repl_diskless_sync_delay_secs * 1000
}

/// `SYNC`/`PSYNC` with no child running: whether this replica waits for the diskless delay
/// (the master cron starts the child) instead of starting a child now. Only a replica that
/// can take a diskless transfer waits; one that cannot starts a disk child at once.
pub fn delays_start(config: &Config, side: &MasterSide, client_id: u64, now_ms: u64) -> bool {
    let Some(replica) = side.find(client_id) else {
        return false;
    };
    config.repl_diskless_sync
        && replica.capa_eof
        && !ready_to_start(config, side, replica.no_compress, now_ms)
}

/// Whether `pid` is a diskless child (it made no file: the save bookkeeping is not touched).
pub fn owns_child(store: &Store, pid: i32) -> bool {
    store
        .replication
        .master_side
        .snapshot
        .as_ref()
        .is_some_and(|s| s.pid == pid && s.diskless)
}

/// Forks the diskless child for the replicas waiting with `no_compress` (the caller has
/// flushed the batch into the backlog) and hands each its pipe. `own` is the calling
/// connection (its `+FULLRESYNC` or error goes in the reply). On failure they get an error
/// and are closed.
pub(super) fn start(
    shared: &Shared,
    store: &mut Store,
    no_compress: bool,
    own: Option<(u64, &mut Vec<u8>)>,
) -> bool {
    let config = shared.config();
    log!(
        Notice,
        "Starting BGSAVE for SYNC with target: replicas sockets"
    );
    let own_id = own.as_ref().map(|(id, _)| *id);
    let mut own_reply = own.map(|(_, reply)| reply);
    let targets: Vec<(u64, String)> = waiting(&store.replication.master_side, no_compress)
        .map(|r| (r.client_id, r.name()))
        .collect();
    let mut readers = Vec::with_capacity(targets.len());
    let mut writers = Vec::with_capacity(targets.len());
    let mut piece = PIPE_SIZE;
    for _ in &targets {
        let made = uring::pipe(PIPE_SIZE).and_then(|(read, write, capacity)| {
            uring::set_blocking(write.as_raw_fd())?;
            Ok((read, write, capacity))
        });
        match made {
            Ok((read, write, capacity)) => {
                readers.push(read);
                writers.push(write);
                piece = piece.min((capacity / 2).max(4096));
            }
            Err(error) => {
                log!(
                    Warning,
                    "Can't create a pipe for the diskless transfer: {error}"
                );
                log!(Warning, "BGSAVE for replication failed");
                fail_waiting(shared, store, no_compress, own_id, own_reply);
                return false;
            }
        }
    }
    let reader_fds: Vec<i32> = readers.iter().map(AsRawFd::as_raw_fd).collect();
    let sinks: Vec<(OwnedFd, String)> = writers
        .into_iter()
        .zip(targets.iter().map(|(_, name)| name.clone()))
        .collect();
    let mark = new_run_id();
    let (offset, info) = super::sync_save_info(&store.replication);
    let mut options = snapshot::save_options(&config);
    if no_compress {
        options.compression = false;
    }
    // The closure owns the write ends: in the parent it is dropped unrun when `start_child`
    // returns, which closes them; only the child writes.
    let started = fork::start_child(shared, store, ChildKind::Rdb, move |store| {
        uring::child_close_inherited(&reader_fds);
        let mut out = FanOut::new(sinks, piece);
        let bytes = send_payload(&store.dbs, &mut out, mark.as_bytes(), &options, &info)
            .map_err(|error| format!("diskless transfer to replicas failed: {error}"))?;
        log!(
            Notice,
            "Diskless transfer of {bytes} RDB bytes written for {} replica(s)",
            out.live()
        );
        Ok(())
    });
    let pid = match started {
        Ok(pid) => pid,
        Err(error) => {
            log!(Warning, "Can't save in background: {error}");
            log!(Warning, "BGSAVE for replication failed");
            fail_waiting(shared, store, no_compress, own_id, own_reply);
            return false;
        }
    };
    log!(Notice, "Background RDB transfer started by pid {pid}");
    store.replication.master_side.snapshot = Some(SyncSnapshot {
        pid,
        replid: store.replication.replid.clone(),
        offset,
        no_compress,
        diskless: true,
    });
    let replid = store.replication.replid.clone();
    for ((client_id, _), pipe) in targets.into_iter().zip(readers) {
        let Some(replica) = store.replication.master_side.find_mut(client_id) else {
            continue;
        };
        replica.state = ReplicaState::WaitBgsaveEnd;
        replica.stream_start = offset + 1;
        replica.diskless = Some(Transfer::Sending {
            pid,
            drained: false,
            child_ok: false,
            acked: false,
        });
        if !replica.pre_psync {
            let line = fullresync_line(&replid, offset);
            match own_reply.as_deref_mut() {
                Some(reply) if Some(client_id) == own_id => reply.extend_from_slice(&line),
                _ => shared.cores[replica.core].send(CoreMessage::Deliver {
                    conn: replica.conn,
                    bytes: line,
                }),
            }
        }
        // After the `+FULLRESYNC` line (same inbox, in order; the core sends its ordinary
        // output before splicing).
        shared.cores[replica.core].send(CoreMessage::Replica {
            conn: replica.conn,
            event: ReplicaEvent::SendPipe { pipe },
        });
    }
    true
}

/// `$EOF:<mark>\r\n`, the RDB, `<mark>`: the whole diskless payload. Returns its RDB size.
pub fn send_payload<W: Write>(
    dbs: &[Db],
    out: &mut W,
    mark: &[u8],
    options: &rdb::SaveOptions,
    info: &rdb::SaveInfo,
) -> io::Result<u64> {
    let mut header = Vec::with_capacity(mark.len() + 7);
    header.extend_from_slice(b"$EOF:");
    header.extend_from_slice(mark);
    header.extend_from_slice(b"\r\n");
    out.write_all(&header)?;
    let stats = rdb::encode::save(dbs, &mut *out, options, info, unix_time_ms())?;
    out.write_all(mark)?;
    out.flush()?;
    Ok(stats.bytes)
}

/// The child's output: every write goes whole to every pipe still read, in pieces of at
/// most half a pipe taken in turn, so one pipe drains while the child fills the next. A pipe
/// that fails (its replica went away: `EPIPE`) is closed and forgotten; the write fails only
/// when no pipe is left.
pub struct FanOut {
    sinks: Vec<(Option<File>, String)>,
    piece: usize,
}

impl FanOut {
    /// Pipes (blocking write ends) with the replica names used in logs; `piece` bytes go to
    /// one pipe before the next gets its turn.
    pub fn new(sinks: Vec<(OwnedFd, String)>, piece: usize) -> FanOut {
        FanOut {
            sinks: sinks
                .into_iter()
                .map(|(fd, name)| (Some(File::from(fd)), name))
                .collect(),
            piece: piece.max(1),
        }
    }

    /// Pipes still written to.
    pub fn live(&self) -> usize {
        self.sinks.iter().filter(|(s, _)| s.is_some()).count()
    }
}

impl Write for FanOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.chunks(self.piece) {
            for (sink, name) in &mut self.sinks {
                let Some(file) = sink else {
                    continue;
                };
                if let Err(error) = file.write_all(piece) {
                    log!(
                        Warning,
                        "Diskless rdb transfer, write error sending DB to replica {name}: {error}; going on with the others"
                    );
                    *sink = None;
                }
            }
        }
        if self.live() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "every replica of the transfer went away",
            ));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the owning core does once a replica's pipe reached end of file.
#[derive(Debug)]
pub enum Drained {
    /// Nothing more to send: wait (for the child's exit status, then the first ACK).
    Wait,
    /// Stream from this cursor now (the ACK already came).
    Stream(Reader),
    /// Close the connection (an `rdb-only` client is done, or it can't go online).
    Close,
}

/// Online after a complete transfer; the stream waits for the first ACK unless it came.
fn put_online(replica: &mut Replica, backlog: Option<&Backlog>, now_secs: u64) -> Drained {
    if replica.wanted_only_the_snapshot() {
        return Drained::Close;
    }
    log!(
        Notice,
        "Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming",
        replica.name()
    );
    let acked = matches!(
        replica.diskless,
        Some(Transfer::Sending { acked: true, .. })
    );
    replica.state = ReplicaState::Online;
    replica.ack_time = now_secs;
    replica.diskless = Some(Transfer::AwaitAck);
    log!(
        Notice,
        "Synchronization with replica {} succeeded",
        replica.name()
    );
    if acked {
        start_stream(replica, backlog)
    } else {
        Drained::Wait
    }
}

/// The stream's cursor at the fork offset + 1, or `Close` when the backlog lost it.
fn start_stream(replica: &mut Replica, backlog: Option<&Backlog>) -> Drained {
    match backlog.map(|b| b.reader(replica.stream_start)) {
        Some(Ok(reader)) => {
            replica.diskless = None;
            Drained::Stream(reader)
        }
        Some(Err(error)) => {
            log!(
                Warning,
                "Replica {} can't go online after the snapshot: {error}; it needs a new full sync",
                replica.name()
            );
            Drained::Close
        }
        None => {
            log!(
                Warning,
                "Replica {} can't go online: the replication backlog was freed",
                replica.name()
            );
            Drained::Close
        }
    }
}

/// Called by the owning core when the replica's pipe reached end of file.
pub fn pipe_drained(store: &mut Store, client_id: u64, max_lag_secs: u64) -> Drained {
    let now = unix_time_ms() / 1000;
    let replication = &mut store.replication;
    let backlog = replication.backlog.as_ref();
    let side = &mut replication.master_side;
    let Some(replica) = side.replicas.iter_mut().find(|r| r.client_id == client_id) else {
        return Drained::Close;
    };
    let child_ok = match &mut replica.diskless {
        Some(Transfer::Sending {
            drained, child_ok, ..
        }) => {
            *drained = true;
            *child_ok
        }
        _ => return Drained::Close,
    };
    let next = if child_ok {
        put_online(replica, backlog, now)
    } else {
        Drained::Wait
    };
    side.recompute_online_cores();
    side.refresh_good_replicas(max_lag_secs, now);
    next
}

/// The diskless child `snapshot` exited (reaped by the persistence cron, or gone): its
/// replicas whose pipe is drained go online, the others when it is; on failure they are
/// closed.
pub(super) fn finished(shared: &Shared, store: &mut Store, snapshot: &SyncSnapshot, ok: bool) {
    if ok {
        log!(Notice, "Background RDB transfer terminated with success");
    } else {
        log!(Warning, "Background transfer error");
    }
    let now = unix_time_ms() / 1000;
    let replication = &mut store.replication;
    let backlog = replication.backlog.as_ref();
    let side = &mut replication.master_side;
    for replica in &mut side.replicas {
        let Some(Transfer::Sending {
            pid,
            drained,
            child_ok,
            ..
        }) = &mut replica.diskless
        else {
            continue;
        };
        if *pid != snapshot.pid {
            continue;
        }
        if !ok {
            log!(Warning, "SYNC failed. BGSAVE child returned an error");
            shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn });
            continue;
        }
        *child_ok = true;
        if !*drained {
            continue;
        }
        match put_online(replica, backlog, now) {
            Drained::Wait => {}
            Drained::Stream(reader) => shared.cores[replica.core].send(CoreMessage::Replica {
                conn: replica.conn,
                event: ReplicaEvent::Stream { reader },
            }),
            Drained::Close => {
                shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn })
            }
        }
    }
    side.recompute_online_cores();
    side.refresh_good_replicas(shared.config().min_replicas_max_lag_secs, now);
}

/// `REPLCONF ACK` from a replica (after its ACK was recorded): the first one after a
/// diskless transfer starts its stream; one arriving before the transfer was declared
/// complete is remembered.
pub fn after_ack(shared: &Shared, store: &mut Store, client_id: u64) {
    let replication = &mut store.replication;
    let backlog = replication.backlog.as_ref();
    let Some(replica) = replication.master_side.find_mut(client_id) else {
        return;
    };
    match &mut replica.diskless {
        Some(Transfer::Sending { acked, .. }) => *acked = true,
        Some(Transfer::AwaitAck) => match start_stream(replica, backlog) {
            Drained::Stream(reader) => shared.cores[replica.core].send(CoreMessage::Replica {
                conn: replica.conn,
                event: ReplicaEvent::Stream { reader },
            }),
            Drained::Close => {
                shared.cores[replica.core].send(CoreMessage::Kill { conn: replica.conn })
            }
            Drained::Wait => {}
        },
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Bstr, Value};
    use std::io::Read;

    fn replica(id: u64, state: ReplicaState, capa_eof: bool, asked_ms: u64) -> Replica {
        Replica {
            capa_eof,
            asked_ms,
            ..crate::replication::master::tests::test_replica(id, state)
        }
    }

    fn diskless_config(delay: u64, max: u64) -> Config {
        let mut config = Config::default();
        config.repl_diskless_sync = true;
        config.repl_diskless_sync_delay_secs = delay;
        config.repl_diskless_sync_max_replicas = max;
        config
    }

    #[test]
    fn the_child_waits_for_the_delay_from_the_oldest_replica() {
        let config = diskless_config(5, 0);
        let mut side = MasterSide::default();
        assert!(!ready_to_start(&config, &side, false, 10_000));
        side.replicas
            .push(replica(1, ReplicaState::WaitBgsaveStart, true, 1_000));
        side.replicas
            .push(replica(2, ReplicaState::WaitBgsaveStart, true, 4_000));
        assert!(!ready_to_start(&config, &side, false, 5_999));
        assert!(ready_to_start(&config, &side, false, 6_000));
        // Replicas wanting another kind of snapshot do not count.
        assert!(!ready_to_start(&config, &side, true, 6_000));
        // Disk mode starts at once.
        let disk = Config::default();
        assert!(ready_to_start(&disk, &side, false, 1_000));
        // No delay: at once.
        assert!(ready_to_start(&diskless_config(0, 0), &side, false, 1_000));
    }

    #[test]
    fn enough_waiting_replicas_start_the_child_at_once() {
        let config = diskless_config(60, 2);
        let mut side = MasterSide::default();
        side.replicas
            .push(replica(1, ReplicaState::WaitBgsaveStart, true, 1_000));
        side.replicas
            .push(replica(9, ReplicaState::Online, true, 0));
        assert!(!ready_to_start(&config, &side, false, 1_000));
        assert!(delays_start(&config, &side, 1, 1_000));
        side.replicas
            .push(replica(2, ReplicaState::WaitBgsaveStart, true, 1_100));
        assert!(ready_to_start(&config, &side, false, 1_100));
        assert!(!delays_start(&config, &side, 2, 1_100));
    }

    #[test]
    fn one_replica_without_capa_eof_makes_the_child_write_to_disk() {
        let config = diskless_config(5, 0);
        let mut side = MasterSide::default();
        assert!(!chosen(&config, &side, false));
        side.replicas
            .push(replica(1, ReplicaState::WaitBgsaveStart, true, 0));
        assert!(chosen(&config, &side, false));
        assert!(!chosen(&Config::default(), &side, false));
        side.replicas
            .push(replica(2, ReplicaState::WaitBgsaveStart, false, 0));
        assert!(!chosen(&config, &side, false));
        // A replica that can't take `$EOF:` never waits for the delay.
        assert!(!delays_start(&config, &side, 2, 0));
    }

    fn sample_dbs() -> Vec<Db> {
        let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
        for i in 0..100 {
            let key = format!("key:{i}");
            dbs[0].set(
                key.as_bytes(),
                Value::Str(Bstr::new(format!("value {i}").as_bytes())),
            );
        }
        dbs[3].set(b"other", Value::Str(Bstr::new(b"db")));
        dbs
    }

    fn save_info() -> rdb::SaveInfo {
        rdb::SaveInfo {
            repl_stream_db: Some(0),
            repl_id: Some("a".repeat(40)),
            repl_offset: Some(1234),
            aof_base: false,
        }
    }

    fn options() -> rdb::SaveOptions {
        rdb::SaveOptions {
            compression: true,
            checksum: true,
            key_save_delay_us: 0,
        }
    }

    #[test]
    fn the_payload_is_eof_framed_and_holds_a_loadable_rdb() {
        let dbs = sample_dbs();
        let mark = new_run_id();
        let mut out = Vec::new();
        let bytes = send_payload(&dbs, &mut out, mark.as_bytes(), &options(), &save_info())
            .expect("payload");
        let header = format!("$EOF:{mark}\r\n");
        assert!(out.starts_with(header.as_bytes()));
        assert!(out.ends_with(mark.as_bytes()));
        let rdb_bytes = &out[header.len()..out.len() - mark.len()];
        assert_eq!(rdb_bytes.len() as u64, bytes);
        let mut loaded: Vec<Db> = (0..16).map(|_| Db::default()).collect();
        let options = rdb::LoadOptions {
            now_ms: unix_time_ms(),
            drop_expired: true,
            key_load_delay_us: 0,
            skip_checksum: false,
        };
        let result = rdb::decode::load(rdb_bytes, &mut loaded, &options).expect("load");
        assert_eq!(result.keys, 101);
        assert_eq!(result.info.repl_offset, Some(1234));
        assert_eq!(
            crate::storage::digest::dataset_digest(&loaded),
            crate::storage::digest::dataset_digest(&dbs)
        );
    }

    #[test]
    fn a_vanished_reader_is_dropped_and_the_others_get_everything() {
        uring::child_close_inherited(&[]); // SIGPIPE ignored in this test process too
        let (read_a, write_a, _) = uring::pipe(64 * 1024).unwrap();
        let (read_b, write_b, _) = uring::pipe(64 * 1024).unwrap();
        uring::set_blocking(write_a.as_raw_fd()).unwrap();
        uring::set_blocking(write_b.as_raw_fd()).unwrap();
        drop(read_a);
        uring::set_blocking(read_b.as_raw_fd()).unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            File::from(read_b).read_to_end(&mut all).unwrap();
            all
        });
        let mut out = FanOut::new(vec![(write_a, "a".into()), (write_b, "b".into())], 1000);
        let dbs = sample_dbs();
        let mut expected = Vec::new();
        send_payload(&dbs, &mut expected, b"m", &options(), &save_info()).unwrap();
        out.write_all(&expected).unwrap();
        assert_eq!(out.live(), 1);
        drop(out);
        assert_eq!(reader.join().unwrap(), expected);
    }

    #[test]
    fn every_reader_gets_the_whole_payload_in_order_piece_by_piece() {
        let mut sinks = Vec::new();
        let mut readers = Vec::new();
        for name in ["a", "b", "c"] {
            let (read, write, _) = uring::pipe(4096).unwrap();
            uring::set_blocking(write.as_raw_fd()).unwrap();
            uring::set_blocking(read.as_raw_fd()).unwrap();
            sinks.push((write, name.to_string()));
            readers.push(std::thread::spawn(move || {
                let mut all = Vec::new();
                File::from(read).read_to_end(&mut all).unwrap();
                all
            }));
        }
        // Far more than a pipe holds, in pieces smaller than one.
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = FanOut::new(sinks, 1500);
        out.write_all(&payload[..100_000]).unwrap();
        out.write_all(&payload[100_000..]).unwrap();
        assert_eq!(out.live(), 3);
        drop(out);
        for reader in readers {
            assert_eq!(reader.join().unwrap(), payload);
        }
    }

    #[test]
    fn the_write_fails_when_every_reader_is_gone() {
        uring::child_close_inherited(&[]);
        let (read_a, write_a, _) = uring::pipe(64 * 1024).unwrap();
        uring::set_blocking(write_a.as_raw_fd()).unwrap();
        drop(read_a);
        let mut out = FanOut::new(vec![(write_a, "a".into())], 1000);
        let error = out.write_all(b"data").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(out.live(), 0);
    }

    #[test]
    fn online_waits_for_both_the_drained_pipe_and_the_child() {
        let mut r = replica(1, ReplicaState::WaitBgsaveEnd, true, 0);
        r.diskless = Some(Transfer::Sending {
            pid: 7,
            drained: true,
            child_ok: true,
            acked: false,
        });
        assert!(matches!(put_online(&mut r, None, 50), Drained::Wait));
        assert_eq!(r.state, ReplicaState::Online);
        assert_eq!(r.ack_time, 50);
        assert!(awaits_stream(&r));
        // Without a backlog an early ACK can't start a stream: closed.
        let mut early = replica(2, ReplicaState::WaitBgsaveEnd, true, 0);
        early.diskless = Some(Transfer::Sending {
            pid: 7,
            drained: true,
            child_ok: true,
            acked: true,
        });
        assert!(matches!(put_online(&mut early, None, 50), Drained::Close));
        // rdb-only clients are done once the payload is sent.
        let mut rdb_only = replica(3, ReplicaState::WaitBgsaveEnd, true, 0);
        rdb_only.rdb_only = true;
        assert!(matches!(
            put_online(&mut rdb_only, None, 50),
            Drained::Close
        ));
    }
}
