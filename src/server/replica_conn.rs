//! Replica connections on the master's side of the event loop.
//!
//! A connection that `PSYNC`/`SYNC` turned into a replica stays on the core that accepted it.
//! Its life here, after the command left a [`Handoff`]:
//!
//! 1. **Waiting** for the snapshot (full resync): the `+FULLRESYNC` line and a `\n` keep-alive
//!    every second go out through the connection's ordinary output.
//! 2. **Sending the file** ([`ReplicaEvent::SendSnapshot`]): `$<len>\r\n` through the ordinary
//!    output, then the file with io_uring `splice`, file → pipe → socket, never copied through
//!    user space. Each round splices up to a pipe's capacity into the pipe, linked to a splice
//!    of the same length into the socket; a short splice breaks the link, and the bytes left
//!    in the pipe are sent by the next round. The socket is non-blocking: `EAGAIN` arms a
//!    `POLLOUT` and the round resumes on its completion.
//!    **Or the diskless pipe** ([`ReplicaEvent::SendPipe`], `repl-diskless-sync yes`): a fork
//!    child writes the `$EOF:`-framed snapshot into a pipe made for this replica; the core
//!    moves it into the socket with `splice(SPLICE_F_NONBLOCK)` on its own thread (zero-copy,
//!    never blocking; no io_uring worker sits on an empty pipe). An empty pipe arms a
//!    `POLLIN` on the pipe, a full socket a `POLLOUT` on the socket. End of file is reported
//!    to [`master::diskless::pipe_drained`]; the stream then waits for the replica's first
//!    `REPLCONF ACK` ([`ReplicaEvent::Stream`]). A socket that stays full for `repl-timeout`
//!    closes the replica (the child then drops its pipe and goes on for the others).
//! 3. **Online**: the stream, straight from the backlog mapping: take a [`Grant`] from the
//!    replica's cursor, `sendmsg(MSG_DONTWAIT)` its slices, advance by what the kernel took,
//!    drop the grant (never held across anything that can block). When the socket is full, a
//!    `POLLOUT` is armed. The core is woken once per batch of writes
//!    ([`CoreHandle::notify_replication`](super::shared::CoreHandle::notify_replication)).
//!    `rdb-only` replicas are closed instead.
//!
//! Replies to whatever a replica sends (it sends `REPLCONF ACK`) are suppressed once it is a
//! replica, so its socket carries only the snapshot and the stream. The output-buffer limit
//! of the `replica` class applies to the stream it is owed (its cursor's lag), and a cursor
//! the backlog overran closes the connection: the replica then needs a full resync.
//!
//! [`Grant`]: crate::replication::backlog::Grant

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use super::{conn_mut, Core};
use crate::log;
use crate::replication::backlog::Reader;
use crate::replication::master::{self, Handoff, ReplicaEvent};
use crate::server::client::ReplyMode;
use crate::server::shared::{unix_time_ms, Stats};
use crate::server::uring::{self, OpKind};

/// Most bytes granted (and offered to one `sendmsg`) at a time.
const STREAM_CHUNK: usize = 1 << 20;
/// Stream sends per replica per pump before others get a turn.
const STREAM_ROUNDS_MAX: usize = 64;
/// Pipe size asked for the snapshot transfer (Linux's default `pipe-max-size`).
const PIPE_SIZE: usize = 1 << 20;
/// Socket send buffer asked for replicas (the kernel caps it at `wmem_max` unless
/// privileged): larger buffers mean fewer, larger splices and stream sends.
const SEND_BUFFER: usize = 8 << 20;
/// Kernel worker threads per ring for splices (bounded, unbounded).
const IO_WORKERS: (u32, u32) = (4, 4);
/// Splices (of up to [`PIPE_SIZE`] bytes) per diskless replica per pump.
const PIPE_ROUNDS_MAX: usize = 16;

/// A replica connection's transfer state (lives in its `Conn`).
pub(super) struct ReplicaConn {
    phase: Phase,
    /// A POLLOUT is in flight (the socket was full).
    poll_armed: bool,
    /// Splices in flight (0, 1 or 2).
    splices: u8,
    /// When the stream owed first went over the soft output limit (unix ms).
    soft_limit_since: Option<u64>,
    client_id: u64,
}

enum Phase {
    /// Waiting for the snapshot to be made.
    Waiting,
    /// Sending the snapshot file.
    File(FileSend),
    /// Sending what a diskless child writes into the pipe.
    Pipe(PipeSend),
    /// Diskless transfer complete: waiting for the master to start the stream.
    AwaitStream,
    /// Streaming from the backlog.
    Online(Reader),
}

struct FileSend {
    file: Arc<File>,
    len: u64,
    /// Bytes of the file moved into the pipe so far.
    file_pos: u64,
    /// Bytes in the pipe not yet in the socket.
    in_pipe: u64,
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    pipe_capacity: usize,
}

struct PipeSend {
    /// Read end; the child holds the write end until it is done.
    pipe: OwnedFd,
    /// Unix ms of the last splice that moved bytes.
    last_write_ms: u64,
    /// The armed poll waits for the socket (full), not for the pipe (empty): the
    /// `repl-timeout` clock runs.
    socket_full: bool,
    /// Bytes moved so far.
    sent: u64,
}

/// Where a round of pipe splices stopped.
enum PipeStep {
    /// The round budget is spent: continue on the next loop turn.
    More,
    /// Wait for `events` on `fd` (the pipe or the socket).
    Wait {
        fd: i32,
        events: u32,
    },
    /// End of file: the child is done with this pipe.
    Eof,
    Failed(std::io::Error),
}

impl ReplicaConn {
    /// Whether the kernel still holds an operation of this transfer (the slot and the fds
    /// must live until it completes).
    pub(super) fn busy(&self) -> bool {
        self.poll_armed || self.splices > 0
    }

    /// Whether a POLLOUT is in flight (close cancels it).
    pub(super) fn poll_armed(&self) -> bool {
        self.poll_armed
    }
}

/// This core's replica connections.
#[derive(Default)]
pub(super) struct CoreReplicas {
    /// Slots of the connections with a [`ReplicaConn`].
    slots: Vec<u32>,
    /// Next once-a-second pass (keep-alives, limits), unix ms.
    next_second_ms: u64,
    /// The ring's splice workers were capped.
    workers_capped: bool,
}

impl Core {
    /// After a batch of commands: takes over a connection that just became a replica.
    pub(super) fn replica_after_input(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(handoff) = conn
            .client
            .replica
            .as_mut()
            .and_then(|hello| hello.handoff.take())
        else {
            return;
        };
        // From now on the socket carries only the snapshot and the stream.
        conn.client.reply_mode = ReplyMode::Off;
        let borrowed = BorrowedSocket(conn.fd);
        let _ = socket2::SockRef::from(&borrowed).set_send_buffer_size(SEND_BUFFER);
        let (phase, resume) = match handoff {
            Handoff::Stream(reader) => (Phase::Online(reader), None),
            Handoff::AwaitSnapshot => (Phase::Waiting, None),
            Handoff::Resume { file, len, from } => (Phase::Waiting, Some((file, len, from))),
        };
        conn.replica = Some(Box::new(ReplicaConn {
            phase,
            poll_armed: false,
            splices: 0,
            soft_limit_since: None,
            client_id: conn.client.id,
        }));
        if !self.replicas.slots.contains(&slot) {
            self.replicas.slots.push(slot);
        }
        match resume {
            Some((file, len, from)) => self.begin_file_send(slot, file, len, from),
            None => self.replica_pump(slot),
        }
    }

    /// A message from another core about one of our replicas.
    pub(super) fn on_replica_event(&mut self, token: u64, event: ReplicaEvent) {
        let (file, len) = match event {
            ReplicaEvent::SendSnapshot { file, len } => (file, len),
            other => return self.on_diskless_event(token, other),
        };
        let Some((slot, _)) = self.conn_by_token(token) else {
            return;
        };
        self.begin_file_send(slot, file, len, 0);
    }

    /// Sends `$<len - from>\r\n`, then the snapshot file from byte `from` on (0 for a whole
    /// file, more when a broken transfer resumes).
    fn begin_file_send(&mut self, slot: u32, file: Arc<File>, len: u64, from: u64) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        let (pipe_read, pipe_write, pipe_capacity) = match uring::pipe(PIPE_SIZE) {
            Ok(pipe) => pipe,
            Err(error) => {
                log!(
                    Warning,
                    "SYNC failed. Can't create a pipe to send the DB: {error}"
                );
                return self.close(slot);
            }
        };
        replica.phase = Phase::File(FileSend {
            file,
            len,
            file_pos: from,
            in_pipe: 0,
            pipe_read,
            pipe_write,
            pipe_capacity,
        });
        conn.out.raw(format!("${}\r\n", len - from).as_bytes());
        self.dirty.push(slot);
        if !self.replicas.workers_capped {
            self.replicas.workers_capped = true;
            if let Err(error) = uring::limit_workers(&self.ring, IO_WORKERS.0, IO_WORKERS.1) {
                log!(Verbose, "Can't cap io_uring workers: {error}");
            }
        }
    }

    /// Drives a replica's transfer as far as it goes without blocking.
    pub(super) fn replica_pump(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        if conn.closing {
            return;
        }
        // Ordinary output (the first line, keep-alives, `$<len>`) goes first, and nothing is
        // started twice. A stream waiting for POLLOUT is still held to its limits meanwhile.
        if replica.busy() || conn.send_in_flight || !conn.out.is_empty() {
            if matches!(replica.phase, Phase::Online(_)) {
                self.replica_check_limits(slot);
            }
            return;
        }
        let fd = conn.fd;
        let generation = conn.generation;
        match &mut replica.phase {
            Phase::Waiting => {}
            Phase::File(send) => {
                if send.in_pipe > 0 {
                    // SAFETY: the pipe and the socket stay open while the splice is in flight
                    // (`busy()` keeps the slot, and with it the pipe, alive).
                    unsafe {
                        uring::splice(
                            &mut self.ring,
                            send.pipe_read.as_raw_fd(),
                            -1,
                            fd,
                            -1,
                            send.in_pipe as u32,
                            false,
                            uring::user_data(OpKind::SplicePipe, slot, generation),
                        );
                    }
                    replica.splices = 1;
                } else if send.file_pos < send.len {
                    let round = (send.len - send.file_pos).min(send.pipe_capacity as u64) as u32;
                    // SAFETY: the file (an Arc held by this transfer), the pipe and the socket
                    // stay open until both completions are reaped, as above.
                    unsafe {
                        uring::splice(
                            &mut self.ring,
                            send.file.as_raw_fd(),
                            send.file_pos as i64,
                            send.pipe_write.as_raw_fd(),
                            -1,
                            round,
                            true,
                            uring::user_data(OpKind::SpliceFile, slot, generation),
                        );
                        uring::splice(
                            &mut self.ring,
                            send.pipe_read.as_raw_fd(),
                            -1,
                            fd,
                            -1,
                            round,
                            false,
                            uring::user_data(OpKind::SplicePipe, slot, generation),
                        );
                    }
                    replica.splices = 2;
                } else {
                    self.replica_file_sent(slot);
                }
            }
            Phase::Online(_) => self.replica_stream(slot),
            Phase::Pipe(_) => self.replica_pipe(slot),
            Phase::AwaitStream => {}
        }
    }

    /// A diskless transfer's pipe, or the order to start streaming after it.
    fn on_diskless_event(&mut self, token: u64, event: ReplicaEvent) {
        // A connection gone meanwhile drops the pipe here: the child sees EPIPE for it.
        let Some((slot, conn)) = self.conn_by_token(token) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        if replica.busy() {
            // Not expected (nothing is in flight between phases); never swap a pipe the
            // kernel may still poll.
            log!(
                Warning,
                "Replica id={}: diskless transfer event while an operation is in flight",
                replica.client_id
            );
            return self.close(slot);
        }
        match event {
            ReplicaEvent::SendPipe { pipe } => {
                replica.phase = Phase::Pipe(PipeSend {
                    pipe,
                    last_write_ms: unix_time_ms(),
                    socket_full: false,
                    sent: 0,
                });
            }
            ReplicaEvent::Stream { reader } => replica.phase = Phase::Online(reader),
            ReplicaEvent::SendSnapshot { .. } => return,
        }
        self.replica_pump(slot);
    }

    /// Moves what the diskless child wrote from the pipe into the socket, as far as it goes
    /// without blocking.
    fn replica_pipe(&mut self, slot: u32) {
        let stats = &self.shared.stats;
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let fd = conn.fd;
        let generation = conn.generation;
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        let client_id = replica.client_id;
        let Phase::Pipe(send) = &mut replica.phase else {
            return;
        };
        let pipe = send.pipe.as_raw_fd();
        let mut step = PipeStep::More;
        for _ in 0..PIPE_ROUNDS_MAX {
            match uring::splice_now(pipe, fd, PIPE_SIZE) {
                Ok(0) => {
                    step = PipeStep::Eof;
                    break;
                }
                Ok(moved) => {
                    send.sent += moved as u64;
                    send.last_write_ms = unix_time_ms();
                    Stats::add(&stats.total_net_repl_output_bytes, moved as u64);
                    Stats::add(&stats.total_net_output_bytes, moved as u64);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    // Either side may be the reason: bytes waiting in the pipe mean the
                    // socket is full.
                    send.socket_full = uring::readable_bytes(pipe) > 0;
                    step = if send.socket_full {
                        PipeStep::Wait {
                            fd,
                            events: libc::POLLOUT as u32,
                        }
                    } else {
                        PipeStep::Wait {
                            fd: pipe,
                            events: libc::POLLIN as u32,
                        }
                    };
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    step = PipeStep::Failed(error);
                    break;
                }
            }
        }
        let sent = send.sent;
        match step {
            PipeStep::More => self.shared.cores[self.id].notify_replication(),
            PipeStep::Wait { fd, events } => {
                // SAFETY: the socket and the pipe (owned by this phase, which is not replaced
                // while a poll is in flight) stay open until the completion (`busy()`).
                unsafe {
                    uring::poll(
                        &mut self.ring,
                        fd,
                        events,
                        uring::user_data(OpKind::PollOut, slot, generation),
                    );
                }
                replica.poll_armed = true;
            }
            PipeStep::Failed(error) => {
                log!(
                    Warning,
                    "Diskless rdb transfer, write error sending DB to replica id={client_id}: {error}"
                );
                self.close(slot);
            }
            PipeStep::Eof => {
                log!(
                    Verbose,
                    "Diskless transfer to replica id={client_id} done reading from pipe ({sent} bytes)"
                );
                let next = {
                    let mut store = self.shared.lock_store();
                    master::diskless::pipe_drained(
                        &mut store,
                        client_id,
                        self.config.min_replicas_max_lag_secs,
                    )
                };
                let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
                    return;
                };
                let Some(replica) = conn.replica.as_mut() else {
                    return;
                };
                match next {
                    master::diskless::Drained::Wait => replica.phase = Phase::AwaitStream,
                    master::diskless::Drained::Stream(reader) => {
                        replica.phase = Phase::Online(reader);
                        self.replica_stream(slot);
                    }
                    master::diskless::Drained::Close => self.close(slot),
                }
            }
        }
    }

    /// The whole file is in the socket: online (or closed, for rdb-only replicas).
    fn replica_file_sent(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        let client_id = replica.client_id;
        let reader = {
            let mut store = self.shared.lock_store();
            master::snapshot_sent(&mut store, client_id, self.config.min_replicas_max_lag_secs)
        };
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        match reader {
            Some(reader) => {
                replica.phase = Phase::Online(reader);
                self.replica_stream(slot);
            }
            None => self.close(slot),
        }
    }

    /// Sends the stream owed to an online replica from the backlog mapping.
    fn replica_stream(&mut self, slot: u32) {
        let stats = &self.shared.stats;
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let fd = conn.fd;
        let generation = conn.generation;
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        let Phase::Online(reader) = &mut replica.phase else {
            return;
        };
        let mut close = false;
        let mut arm_poll = false;
        let mut more = false;
        for round in 0..=STREAM_ROUNDS_MAX {
            if round == STREAM_ROUNDS_MAX {
                more = true;
                break;
            }
            let grant = match reader.read(STREAM_CHUNK) {
                Ok(grant) => grant,
                Err(overrun) => {
                    log!(
                        Warning,
                        "Disconnecting replica id={}: {overrun}; it needs a full resync",
                        replica.client_id
                    );
                    close = true;
                    break;
                }
            };
            if grant.is_empty() {
                break;
            }
            let len = grant.len();
            match uring::send_now(fd, &grant.io_slices()) {
                Ok(sent) => {
                    grant.advance(sent);
                    Stats::add(&stats.total_net_repl_output_bytes, sent as u64);
                    Stats::add(&stats.total_net_output_bytes, sent as u64);
                    if sent < len {
                        arm_poll = true;
                        break;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    drop(grant);
                    arm_poll = true;
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    drop(grant);
                    log!(
                        Verbose,
                        "Error writing to replica id={}: {error}",
                        replica.client_id
                    );
                    close = true;
                    break;
                }
            }
        }
        if close {
            return self.close(slot);
        }
        if self.replica_check_limits(slot) {
            return;
        }
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        if arm_poll {
            // SAFETY: the socket stays open while the poll is in flight (`busy()`).
            unsafe {
                uring::poll(
                    &mut self.ring,
                    fd,
                    libc::POLLOUT as u32,
                    uring::user_data(OpKind::PollOut, slot, generation),
                );
            }
            replica.poll_armed = true;
        } else if more {
            // Others get a turn; come back on the next loop turn.
            self.shared.cores[self.id].notify_replication();
        }
    }

    /// Closes an online replica whose cursor the backlog overran, or that is owed more than
    /// the `replica` output-buffer limit allows. True if it was closed.
    fn replica_check_limits(&mut self, slot: u32) -> bool {
        let limit = self.config.client_output_buffer_limit.replica;
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return false;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return false;
        };
        let Phase::Online(reader) = &replica.phase else {
            return false;
        };
        // CLIENT LIST `omem` of a replica: the stream it is owed.
        conn.client.info.output_memory.store(
            reader.pending() as usize,
            std::sync::atomic::Ordering::Relaxed,
        );
        if reader.is_overrun() {
            log!(
                Warning,
                "Disconnecting replica id={} addr={}: the replication backlog overran its cursor at offset {}; it needs a full resync",
                conn.client.id,
                conn.client.info.addr,
                reader.offset()
            );
        } else if master::limits::exceeded(
            reader.pending(),
            &limit,
            &mut replica.soft_limit_since,
            unix_time_ms(),
        ) {
            log!(
                Warning,
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                conn.client.id,
                conn.client.info.addr
            );
            Stats::add(&self.shared.stats.client_outbuf_limit_disconnections, 1);
        } else {
            return false;
        }
        self.close(slot);
        true
    }

    /// Completion of a splice or poll of a replica transfer.
    pub(super) fn on_replica_completion(
        &mut self,
        kind: OpKind,
        slot: u32,
        generation: u32,
        result: i32,
    ) {
        let stats = &self.shared.stats;
        let Some(conn) = conn_mut(&mut self.conns, slot, generation) else {
            return;
        };
        let Some(replica) = conn.replica.as_mut() else {
            return;
        };
        let mut failed: Option<String> = None;
        match kind {
            OpKind::PollOut => replica.poll_armed = false,
            OpKind::SpliceFile => {
                replica.splices = replica.splices.saturating_sub(1);
                if let Phase::File(send) = &mut replica.phase {
                    if result > 0 {
                        send.file_pos += result as u64;
                        send.in_pipe += result as u64;
                    } else if result == 0 {
                        failed = Some("premature EOF".into());
                    } else if result != -libc::ECANCELED {
                        failed = Some(std::io::Error::from_raw_os_error(-result).to_string());
                    }
                }
            }
            OpKind::SplicePipe => {
                replica.splices = replica.splices.saturating_sub(1);
                if let Phase::File(send) = &mut replica.phase {
                    if result > 0 {
                        let sent = (result as u64).min(send.in_pipe);
                        send.in_pipe -= sent;
                        Stats::add(&stats.total_net_repl_output_bytes, sent);
                        Stats::add(&stats.total_net_output_bytes, sent);
                    } else if result == -libc::EAGAIN {
                        if !conn.closing && !replica.poll_armed {
                            // SAFETY: the socket stays open while the poll is in flight.
                            unsafe {
                                uring::poll(
                                    &mut self.ring,
                                    conn.fd,
                                    libc::POLLOUT as u32,
                                    uring::user_data(OpKind::PollOut, slot, generation),
                                );
                            }
                            replica.poll_armed = true;
                        }
                    } else if result != -libc::ECANCELED && result != -libc::EINTR {
                        failed = Some(if result == 0 {
                            "connection closed".into()
                        } else {
                            std::io::Error::from_raw_os_error(-result).to_string()
                        });
                    }
                }
            }
            _ => {}
        }
        if conn.closing {
            if !replica.busy() {
                self.close(slot);
            }
            return;
        }
        if let Some(error) = failed {
            log!(Warning, "Write error sending DB to replica: {error}");
            return self.close(slot);
        }
        if !replica.busy() {
            self.replica_pump(slot);
        }
    }

    /// Once per loop turn: feeds the online replicas if the stream grew.
    pub(super) fn replication_turn(&mut self) {
        if self.replicas.slots.is_empty() || !self.shared.cores[self.id].take_replication_ready() {
            return;
        }
        for index in 0..self.replicas.slots.len() {
            let slot = self.replicas.slots[index];
            self.replica_pump(slot);
        }
    }

    /// Once a second: keep-alives for replicas waiting for their snapshot, and a pass over
    /// the online ones (limits, overrun, anything a lost wake left unsent).
    pub(super) fn replicas_cron(&mut self, now: u64) {
        if self.replicas.slots.is_empty() || now < self.replicas.next_second_ms {
            return;
        }
        self.replicas.next_second_ms = now + 1000;
        for index in 0..self.replicas.slots.len() {
            let slot = self.replicas.slots[index];
            let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
                continue;
            };
            let Some(replica) = conn.replica.as_ref() else {
                continue;
            };
            match &replica.phase {
                Phase::Waiting => {
                    conn.out.raw(b"\n");
                    self.dirty.push(slot);
                }
                Phase::Online(_) => self.replica_pump(slot),
                Phase::Pipe(send) => {
                    // As Redis' "last partial write": a socket full for longer than
                    // repl-timeout holds the child back for every replica.
                    let timeout_ms = self.config.repl_timeout_secs * 1000;
                    if replica.poll_armed
                        && send.socket_full
                        && now.saturating_sub(send.last_write_ms) > timeout_ms
                    {
                        log!(
                            Warning,
                            "Disconnecting timedout replica (full sync): id={} addr={}",
                            conn.client.id,
                            conn.client.info.addr
                        );
                        self.close(slot);
                    }
                }
                Phase::File(_) | Phase::AwaitStream => {}
            }
        }
    }

    /// Forgets a released connection's slot.
    pub(super) fn replica_released(&mut self, slot: u32) {
        self.replicas.slots.retain(|&s| s != slot);
    }
}

/// An fd borrowed for socket options (socket2 needs `AsFd`).
struct BorrowedSocket(i32);

impl std::os::fd::AsFd for BorrowedSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the connection's fd stays open for as long as this short-lived wrapper
        // (used within one call on the owning core, which closes fds only in `release`).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}
