//! One core's event loop: its ring, its listeners, its connections.
//!
//! A turn of the loop: take messages from other cores, flush pending output (one `send` per
//! connection with everything its last read produced), sleep in `io_uring_enter` until a
//! completion or the next timer, then handle at most [`COMPLETIONS_PER_TURN_MAX`]
//! completions. A `recv` completion parses and executes every whole command in the
//! connection's buffer under one store lock, appending all replies to one output buffer.
//!
//! Connection lifecycle: `accept` → slot in [`Core::conns`] → `recv`/`send` in flight at most
//! one each → on close, cancel what is in flight, and free the slot (and close the fd) only
//! when neither is, because the kernel writes into the slot's buffers until then.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use io_uring::{types, IoUring};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

#[path = "replica_conn.rs"]
mod replica_conn;

use super::client::ClientState;
use super::shared::{unix_time_ms, ClientInfo, ClientKind, CoreMessage, Shared, Stats};
use super::uring::{self, OpKind};
use crate::command::{self, Ctx, Propagate};
use crate::config::Config;
use crate::log;
use crate::protocol::parser::{self, Parsed};
use crate::protocol::{Reply, Resp};

// The replica's link to its master: an `impl Core` block in its own file, a child module so
// it reaches the connection slab (replication issue, R2).
#[path = "master_link.rs"]
mod master_link;

/// Completions handled per loop turn before other work gets a chance.
const COMPLETIONS_PER_TURN_MAX: usize = 4096;
/// Submission queue size of each ring.
const RING_ENTRIES: u32 = 4096;
/// Bytes asked for per `recv` (Redis' PROTO_IOBUF_LEN).
const READ_CHUNK: usize = 16 * 1024;
/// A read buffer this large with little in it is shrunk back after use.
const READ_BUFFER_KEEP_MAX: usize = 64 * 1024;
/// Commands run for one connection per turn before others get served (fairness bound).
const COMMANDS_PER_READ_MAX: usize = 100_000;
/// Reply bytes one connection may produce per turn. Past this its remaining commands wait
/// until the output is sent: a client that pipelines big replies and reads slowly is served at
/// its reading speed (TCP pushes back on it), holds the keyspace lock only briefly, and costs
/// at most this much output memory.
const OUTPUT_PER_TURN_MAX: usize = 4 * 1024 * 1024;

/// One connection.
struct Conn {
    fd: i32,
    generation: u32,
    /// Bytes received; `inbuf[read_pos..]` is not yet executed.
    inbuf: Vec<u8>,
    read_pos: usize,
    recv_in_flight: bool,
    /// Output being sent by the kernel (owned by the in-flight send).
    sending: Vec<u8>,
    send_offset: usize,
    send_in_flight: bool,
    /// Replies produced and not yet handed to the kernel.
    out: Reply,
    client: ClientState,
    /// Close requested: stop reading, free once no operation is in flight.
    closing: bool,
    /// When the output first went above the soft limit (unix ms).
    soft_limit_since: Option<u64>,
    /// Input waits for the output to drain ([`OUTPUT_PER_TURN_MAX`]); no recv meanwhile.
    input_paused: bool,
    /// Another reader owns the socket's input (the helper thread of a split sync's stream
    /// connection, `master_link`): no `recv` is armed until it hands over.
    recv_elsewhere: bool,
    peer_closed: bool,
    /// Set once the connection is a replica (see `replica_conn`).
    replica: Option<Box<replica_conn::ReplicaConn>>,
}

impl Conn {
    fn pending_output(&self) -> usize {
        debug_assert!(self.send_offset <= self.sending.len());
        self.out.len() + self.sending.len() - self.send_offset
    }
}

/// One core's loop state.
pub struct Core {
    id: usize,
    shared: Arc<Shared>,
    ring: IoUring,
    listeners: Vec<Socket>,
    conns: Vec<Option<Conn>>,
    free_slots: Vec<u32>,
    generations: Vec<u32>,
    config: Arc<Config>,
    config_epoch: u64,
    /// Target of the eventfd read; boxed so its address is stable while the read is in flight.
    wake_counter: Box<u64>,
    /// Slots with output to flush this turn.
    dirty: Vec<u32>,
    next_cron_ms: u64,
    /// (deadline unix ms, connection token) of clients blocked with a timeout, earliest first.
    /// Entries go stale when a client is served first; they are checked on expiry.
    blocked_deadlines: BinaryHeap<Reverse<(u64, u64)>>,
    /// When this core last returned freed memory to the OS (unix ms).
    last_memory_release_ms: u64,
    /// Connections with whole commands left in their buffer after their per-turn budget.
    resume: Vec<u32>,
    /// Replica connections owned by this core.
    replicas: replica_conn::CoreReplicas,
    /// The link to our master when this server is a replica (core 0 only).
    replica_link: master_link::ReplicaLink,
}

/// Creates the listening sockets for `config.bind` and `port` with SO_REUSEPORT, so every
/// core gets its own accept queue on the same address.
pub fn listen(config: &Config, port: u16) -> std::io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    let mut first_error = None;
    for bind in &config.bind {
        let (optional, address) = match bind.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, bind.as_str()),
        };
        let ip: std::net::IpAddr = match address {
            "*" => std::net::Ipv4Addr::UNSPECIFIED.into(),
            "::*" => std::net::Ipv6Addr::UNSPECIFIED.into(),
            other => match other.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("invalid bind address '{other}'"),
                    ))
                }
            },
        };
        let address = SocketAddr::new(ip, port);
        match bind_one(address, config.tcp_backlog) {
            Ok(socket) => sockets.push(socket),
            Err(error) if optional => {
                log!(
                    Verbose,
                    "Could not create optional listener on {address}: {error}"
                );
            }
            Err(error) => {
                first_error.get_or_insert(std::io::Error::new(
                    error.kind(),
                    format!("{address}: {error}"),
                ));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(sockets)
}

fn bind_one(address: SocketAddr, backlog: u32) -> std::io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(address))?;
    socket.listen(backlog as i32)?;
    Ok(socket)
}

impl Core {
    pub fn new(id: usize, shared: Arc<Shared>, listeners: Vec<Socket>) -> Result<Core, String> {
        let ring = uring::new_ring(RING_ENTRIES)?;
        let config = shared.config();
        Ok(Core {
            id,
            config_epoch: shared.config_epoch.load(Ordering::Acquire),
            shared,
            ring,
            listeners,
            conns: Vec::new(),
            free_slots: Vec::new(),
            generations: Vec::new(),
            config,
            wake_counter: Box::new(0),
            dirty: Vec::new(),
            next_cron_ms: 0,
            blocked_deadlines: BinaryHeap::new(),
            last_memory_release_ms: 0,
            resume: Vec::new(),
            replicas: Default::default(),
            replica_link: Default::default(),
        })
    }

    /// Runs until shutdown is requested.
    pub fn run(mut self) {
        for index in 0..self.listeners.len() {
            let fd = self.listeners[index].as_raw_fd();
            uring::accept_multishot(&mut self.ring, fd, index as u32);
        }
        self.arm_wake();
        self.shared.safe_point.enter_loop(self.id);
        loop {
            self.shared.safe_point.park_if_requested();
            self.refresh_config();
            self.drain_inbox();
            if self.id == 0 {
                self.replication_soon();
            }
            if self.id == 0 && crate::persistence::aof::held_back() {
                crate::persistence::aof::pump(&mut self.shared.lock_store());
            }
            for slot in std::mem::take(&mut self.resume) {
                self.process_input(slot);
                self.arm_recv(slot);
            }
            self.replication_turn();
            self.flush_output();
            let signal = super::SIGNALLED.swap(0, Ordering::SeqCst);
            if signal != 0 {
                let name = if signal == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                log!(Warning, "Received {name} scheduling shutdown...");
                let saved = {
                    let mut store = self.shared.lock_store();
                    crate::persistence::snapshot::save_for_shutdown(
                        &self.shared,
                        &mut store,
                        false,
                        false,
                    )
                };
                match saved {
                    Ok(()) => self.shared.request_shutdown(),
                    Err(_) => log!(
                        Warning,
                        "{name} received but errors trying to shut down the server, check the logs for more information"
                    ),
                }
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                break;
            }
            let now = unix_time_ms();
            if now >= self.next_cron_ms {
                self.cron(now);
                self.next_cron_ms = now + (1000 / self.config.hz.max(1) as u64);
                self.flush_output();
            }
            self.time_out_blocked(unix_time_ms());
            let mut wake_at = self.next_cron_ms;
            if let Some(Reverse((deadline, _))) = self.blocked_deadlines.peek() {
                wake_at = wake_at.min(*deadline);
            }
            if self.resume.is_empty() {
                let wait_ms = wake_at.saturating_sub(unix_time_ms()).max(1);
                self.wait(wait_ms);
            } else {
                let _ = self.ring.submit();
            }
            self.handle_completions();
        }
        self.close_all();
        self.shared.safe_point.leave_loop();
    }

    /// Sleeps in the kernel until a completion arrives or `wait_ms` pass.
    fn wait(&mut self, wait_ms: u64) {
        let handle = &self.shared.cores[self.id];
        if !handle.prepare_sleep() {
            let _ = self.ring.submit();
            return;
        }
        let timeout = types::Timespec::from(Duration::from_millis(wait_ms));
        let args = types::SubmitArgs::new().timespec(&timeout);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(error) => {
                // Unexpected: report it and back off instead of spinning on the error.
                log!(
                    Warning,
                    "io_uring_enter failed on core {}: {error}",
                    self.id
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        handle.awake();
    }

    fn refresh_config(&mut self) {
        let epoch = self.shared.config_epoch.load(Ordering::Acquire);
        if epoch != self.config_epoch {
            self.config = self.shared.config();
            self.config_epoch = epoch;
        }
    }

    fn arm_wake(&mut self) {
        let fd = self.shared.cores[self.id].wake_fd;
        let target: *mut u64 = &mut *self.wake_counter;
        // SAFETY: `wake_counter` is a Box owned by this Core, which outlives the ring's use
        // (the ring is dropped with the Core); only this read ever writes it.
        unsafe { uring::read_eventfd(&mut self.ring, fd, target) };
    }

    fn handle_completions(&mut self) {
        let mut handled = 0;
        while handled < COMPLETIONS_PER_TURN_MAX {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            handled += 1;
            let result = cqe.result();
            let more = io_uring::cqueue::more(cqe.flags());
            let Some((kind, slot, generation)) = uring::decode(cqe.user_data()) else {
                continue;
            };
            match kind {
                OpKind::Accept => {
                    if result >= 0 {
                        self.accept(result);
                    } else if result != -libc::ECANCELED {
                        log!(
                            Verbose,
                            "Accepting client connection: {}",
                            std::io::Error::from_raw_os_error(-result)
                        );
                    }
                    if !more && !self.shared.shutdown.load(Ordering::Acquire) {
                        let fd = self.listeners[slot as usize].as_raw_fd();
                        uring::accept_multishot(&mut self.ring, fd, slot);
                    }
                }
                OpKind::Recv => self.on_recv(slot, generation, result),
                OpKind::Send => self.on_send(slot, generation, result),
                OpKind::Wake => self.arm_wake(),
                OpKind::Cancel => {}
                OpKind::SpliceFile | OpKind::SplicePipe | OpKind::PollOut => {
                    self.on_replica_completion(kind, slot, generation, result)
                }
                OpKind::Connect => self.on_master_connect(result),
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // CONNECTIONS
    // ---------------------------------------------------------------------------------------

    fn accept(&mut self, fd: i32) {
        // SAFETY: the kernel just handed us this fd; we take sole ownership of it.
        let socket = unsafe { Socket::from_raw_fd(fd) };
        Stats::add(&self.shared.stats.total_connections_received, 1);
        let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        let connected = self.shared.connected_clients.fetch_add(1, Ordering::AcqRel);
        if connected >= self.config.maxclients {
            self.shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
            Stats::add(&self.shared.stats.rejected_connections, 1);
            let _ = socket.send(b"-ERR max number of clients reached\r\n");
            return;
        }
        if let Some(reason) = self.protected_mode_refusal(peer) {
            self.shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
            Stats::add(&self.shared.stats.rejected_connections, 1);
            let _ = socket.send(reason.as_bytes());
            return;
        }
        let _ = socket.set_tcp_nodelay(true);
        if self.config.tcp_keepalive_secs > 0 {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(self.config.tcp_keepalive_secs));
            let _ = socket.set_tcp_keepalive(&keepalive);
        }
        let fd = socket.into_raw_fd();
        let authenticated = self.config.requirepass.is_none();
        let slot = self.insert_conn(fd, peer, local, ClientKind::Normal, authenticated);
        if let Some(Some(conn)) = self.conns.get(slot as usize) {
            let info = conn.client.info.clone();
            self.shared.clients.lock().insert(info.id, info);
        }
        self.arm_recv(slot);
    }

    /// Puts a connected socket (`fd`, owned from now on) in the slab as a new connection
    /// whose client is of `kind`; returns its slot. Accepted clients and the master link
    /// both come in here.
    pub(super) fn insert_conn(
        &mut self,
        fd: i32,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        kind: ClientKind,
        authenticated: bool,
    ) -> u32 {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.generations.push(0);
                (self.conns.len() - 1) as u32
            }
        };
        let generation = (self.generations[slot as usize] + 1) & 0xff_ffff;
        self.generations[slot as usize] = generation;
        let token = ((generation as u64) << 32) | slot as u64;
        let info = Arc::new(ClientInfo::new(
            self.shared.next_client_id(),
            self.id,
            token,
            fd,
            peer.map(|a| a.to_string()).unwrap_or_default(),
            local.map(|a| a.to_string()).unwrap_or_default(),
            kind,
        ));
        self.conns[slot as usize] = Some(Conn {
            fd,
            generation,
            inbuf: Vec::new(),
            read_pos: 0,
            recv_in_flight: false,
            sending: Vec::new(),
            send_offset: 0,
            send_in_flight: false,
            out: Reply::new(Resp::V2),
            client: ClientState::new(info, authenticated),
            closing: false,
            soft_limit_since: None,
            input_paused: false,
            recv_elsewhere: false,
            peer_closed: false,
            replica: None,
        });
        slot
    }

    /// Redis' protected mode: with no password and the default bind, only loopback clients.
    fn protected_mode_refusal(&self, peer: Option<SocketAddr>) -> Option<&'static str> {
        if !self.config.protected_mode || self.config.requirepass.is_some() {
            return None;
        }
        let default_bind = self
            .config
            .bind
            .iter()
            .all(|b| b == "*" || b == "-::*" || b == "::*");
        if !default_bind {
            return None;
        }
        let loopback = peer.is_none_or(|p| p.ip().is_loopback());
        if loopback {
            return None;
        }
        Some(PROTECTED_MODE_MESSAGE)
    }

    fn conn_by_token(&mut self, token: u64) -> Option<(u32, &mut Conn)> {
        let slot = token as u32;
        let generation = (token >> 32) as u32;
        conn_mut(&mut self.conns, slot, generation).map(|c| (slot, c))
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if conn.recv_in_flight
            || conn.closing
            || conn.peer_closed
            || conn.input_paused
            || conn.recv_elsewhere
        {
            return;
        }
        if conn.inbuf.capacity() - conn.inbuf.len() < READ_CHUNK / 4 {
            conn.inbuf.reserve(READ_CHUNK);
        }
        let spare = conn.inbuf.capacity() - conn.inbuf.len();
        // SAFETY: the pointer is to the spare capacity of `conn.inbuf`; the buffer is not
        // touched (no push, no reallocation, no read of the spare part) while
        // `recv_in_flight` is set, and the slot is not freed until the recv completes.
        unsafe {
            let target = conn.inbuf.as_mut_ptr().add(conn.inbuf.len());
            uring::recv(
                &mut self.ring,
                conn.fd,
                target,
                spare,
                uring::user_data(OpKind::Recv, slot, conn.generation),
            );
        }
        conn.recv_in_flight = true;
    }

    fn on_recv(&mut self, slot: u32, generation: u32, result: i32) {
        let Some(conn) = conn_mut(&mut self.conns, slot, generation) else {
            return;
        };
        conn.recv_in_flight = false;
        if result <= 0 {
            if result == -libc::EAGAIN || result == -libc::EINTR {
                self.arm_recv(slot);
                return;
            }
            conn.peer_closed = true;
            self.close(slot);
            return;
        }
        let received = result as usize;
        debug_assert!(conn.inbuf.len() + received <= conn.inbuf.capacity());
        // SAFETY: the kernel wrote `received` bytes into the spare capacity we gave it.
        unsafe { conn.inbuf.set_len(conn.inbuf.len() + received) };
        Stats::add(&self.shared.stats.total_net_input_bytes, received as u64);
        Stats::add(&self.shared.stats.total_reads_processed, 1);
        conn.client
            .info
            .last_interaction_ms
            .store(unix_time_ms(), Ordering::Relaxed);
        if conn.closing {
            return self.close(slot);
        }
        self.process_input(slot);
        self.arm_recv(slot);
    }

    /// Parses and executes every whole command in the connection's buffer.
    fn process_input(&mut self, slot: u32) {
        if matches!(self.conns.get(slot as usize), Some(Some(conn)) if conn.client.is_master) {
            return self.master_link_input(slot);
        }
        let shared = self.shared.clone();
        let config = self.config.clone();
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let blocked_before = conn.client.blocked.is_some();
        let bulk_len_max = config.proto_max_bulk_len as i64;
        let mut store = None;
        let mut executed = 0;
        let mut arg_slices: Vec<&[u8]> = Vec::with_capacity(8);
        let mut close_reason: Option<String> = None;
        let mut grow_by = 0;
        let mut budget_spent = false;
        loop {
            if conn.client.blocked.is_some() || conn.client.close_after_reply {
                break;
            }
            if executed >= COMMANDS_PER_READ_MAX {
                budget_spent = true;
                break;
            }
            if conn.out.len() >= OUTPUT_PER_TURN_MAX {
                conn.input_paused = true;
                break;
            }
            let pending = &conn.inbuf[conn.read_pos..];
            if pending.is_empty() {
                break;
            }
            match parser::parse(pending, bulk_len_max) {
                Ok(Parsed::Incomplete { needed }) => {
                    if needed as u64 > config.client_query_buffer_limit {
                        close_reason =
                            Some("closing client that reached max query buffer length".into());
                        Stats::add(&shared.stats.client_qbuf_limit_disconnections, 1);
                    } else if needed > conn.inbuf.len() - conn.read_pos {
                        // Grow once to what the request needs (bounded by what the client
                        // has actually sent plus one chunk, so a big header alone costs nothing).
                        grow_by =
                            (needed - (conn.inbuf.len() - conn.read_pos)).min(4 * 1024 * 1024);
                    }
                    break;
                }
                Err(error) => {
                    conn.out.error(&format!("ERR Protocol error: {error}"));
                    conn.client.close_after_reply = true;
                    log!(
                        Verbose,
                        "Protocol error ({error}) from client: id={} addr={}",
                        conn.client.id,
                        conn.client.info.addr
                    );
                    break;
                }
                Ok(Parsed::QuotedInline { consumed }) => {
                    let start = conn.read_pos;
                    conn.read_pos += consumed;
                    let owned =
                        parser::parse_inline_owned(&conn.inbuf[start..]).unwrap_or_default();
                    if owned.is_empty() {
                        continue;
                    }
                    let slices: Vec<&[u8]> = owned.iter().map(|a| a.as_slice()).collect();
                    let guard = store.get_or_insert_with(|| shared.lock_store());
                    run_command(
                        &shared,
                        &config,
                        guard,
                        &mut conn.client,
                        &mut conn.out,
                        &slices,
                    );
                    executed += 1;
                }
                Ok(Parsed::Command { args, consumed }) => {
                    let start = conn.read_pos;
                    conn.read_pos += consumed;
                    if args.is_empty() {
                        if conn.replica.is_some() {
                            // A replica's `\n` while it loads the snapshot keeps it alive
                            // (`repl-timeout`), as in Redis.
                            let guard = store.get_or_insert_with(|| shared.lock_store());
                            crate::replication::master::replica_newline(guard, conn.client.id);
                        }
                        continue;
                    }
                    arg_slices.clear();
                    let buffer = &conn.inbuf[start..];
                    arg_slices.extend(args.iter().map(|r| &buffer[r.clone()]));
                    let guard = store.get_or_insert_with(|| shared.lock_store());
                    run_command(
                        &shared,
                        &config,
                        guard,
                        &mut conn.client,
                        &mut conn.out,
                        &arg_slices,
                    );
                    executed += 1;
                }
            }
        }
        drop(store);
        drop(arg_slices);
        if grow_by > 0 {
            conn.inbuf.reserve(grow_by);
        }
        // Compact the buffer: drop executed bytes, release a large buffer once idle.
        if conn.read_pos == conn.inbuf.len() {
            conn.inbuf.clear();
            conn.read_pos = 0;
            if conn.inbuf.capacity() > READ_BUFFER_KEEP_MAX {
                conn.inbuf = Vec::new();
            }
        } else if conn.read_pos > 0 {
            conn.inbuf.drain(..conn.read_pos);
            conn.read_pos = 0;
        }
        conn.client
            .info
            .query_buffer
            .store(conn.inbuf.len(), Ordering::Relaxed);
        if let (false, Some(deadline)) = (blocked_before, conn.client.blocked) {
            if deadline > 0 {
                let token = ((conn.generation as u64) << 32) | slot as u64;
                self.blocked_deadlines.push(Reverse((deadline, token)));
            }
        }
        if let Some(reason) = close_reason {
            log!(
                Warning,
                "{reason}: id={} addr={}",
                conn.client.id,
                conn.client.info.addr
            );
            self.close(slot);
            return;
        }
        if budget_spent {
            // More may be waiting in the buffer: come back next turn without a new recv.
            self.resume.push(slot);
        }
        self.replica_after_input(slot);
        self.mark_dirty(slot);
    }

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(Some(conn)) = self.conns.get(slot as usize) {
            if !conn.out.is_empty() || conn.client.close_after_reply {
                self.dirty.push(slot);
            }
        }
    }

    /// Hands every connection's pending output to the kernel, one send each.
    fn flush_output(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for slot in dirty {
            self.start_send(slot);
        }
    }

    fn start_send(&mut self, slot: u32) {
        // `appendfsync always`: no reply leaves before the writes it acknowledges are synced.
        if crate::persistence::aof::replies_wait_for_sync() {
            crate::persistence::aof::sync_for_replies(&mut self.shared.lock_store());
        }
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let waiting = conn.send_in_flight;
        if conn.out.is_empty() {
            if conn.client.close_after_reply && !conn.closing && !waiting {
                self.close(slot);
            }
            return;
        }
        // Checked even while a send is in flight: a reader that stops reading keeps its send
        // pending forever, and its new replies pile up behind it.
        if self.check_output_limits(slot) || waiting {
            return;
        }
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        conn.sending.clear();
        std::mem::swap(&mut conn.sending, &mut conn.out.buf);
        conn.send_offset = 0;
        self.submit_send(slot);
    }

    fn submit_send(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let remaining = &conn.sending[conn.send_offset..];
        // SAFETY: `conn.sending` is not modified while `send_in_flight` is set, and the slot
        // is not freed until the send completes.
        unsafe {
            uring::send(
                &mut self.ring,
                conn.fd,
                remaining.as_ptr(),
                remaining.len(),
                uring::user_data(OpKind::Send, slot, conn.generation),
            );
        }
        conn.send_in_flight = true;
        conn.client
            .info
            .output_memory
            .store(conn.sending.len() + conn.out.len(), Ordering::Relaxed);
    }

    fn on_send(&mut self, slot: u32, generation: u32, result: i32) {
        let Some(conn) = conn_mut(&mut self.conns, slot, generation) else {
            return;
        };
        conn.send_in_flight = false;
        if result < 0 {
            if result == -libc::EAGAIN || result == -libc::EINTR {
                return self.submit_send(slot);
            }
            return self.close(slot);
        }
        Stats::add(&self.shared.stats.total_net_output_bytes, result as u64);
        Stats::add(&self.shared.stats.total_writes_processed, 1);
        conn.send_offset += result as usize;
        if conn.closing {
            return self.close(slot);
        }
        if conn.send_offset < conn.sending.len() {
            return self.submit_send(slot);
        }
        conn.sending.clear();
        conn.send_offset = 0;
        if conn.sending.capacity() > READ_BUFFER_KEEP_MAX {
            conn.sending = Vec::new();
        }
        if conn.input_paused && conn.out.is_empty() {
            conn.input_paused = false;
            self.process_input(slot);
            self.arm_recv(slot);
        }
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if !conn.out.is_empty() || conn.client.close_after_reply {
            self.start_send(slot);
        } else if conn.replica.is_some() {
            self.replica_pump(slot);
        }
    }

    /// Applies `client-output-buffer-limit`; true if the connection was closed.
    fn check_output_limits(&mut self, slot: u32) -> bool {
        let config = self.config.clone();
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return false;
        };
        let class = if conn.client.in_pubsub() {
            &config.client_output_buffer_limit.pubsub
        } else {
            &config.client_output_buffer_limit.normal
        };
        let pending = conn.pending_output() as u64;
        let now = unix_time_ms();
        let hard = class.hard_bytes > 0 && pending >= class.hard_bytes;
        let soft = class.soft_bytes > 0 && pending >= class.soft_bytes && {
            let since = *conn.soft_limit_since.get_or_insert(now);
            now - since >= class.soft_seconds * 1000
        };
        if class.soft_bytes > 0 && pending < class.soft_bytes {
            conn.soft_limit_since = None;
        }
        if hard || soft {
            log!(
                Warning,
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                conn.client.id,
                conn.client.info.addr
            );
            Stats::add(&self.shared.stats.client_outbuf_limit_disconnections, 1);
            conn.out.buf = Vec::new();
            self.close(slot);
            return true;
        }
        false
    }

    /// Starts closing a connection; frees it once no operation is in flight.
    fn close(&mut self, slot: u32) {
        let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if !conn.closing {
            conn.closing = true;
            // Wake an in-flight recv/send so the slot can be freed promptly.
            // SAFETY: shutdown on our own open fd; no memory involved.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        }
        if conn.recv_in_flight {
            uring::cancel(
                &mut self.ring,
                uring::user_data(OpKind::Recv, slot, conn.generation),
            );
            return;
        }
        if let Some(replica) = conn.replica.as_ref().filter(|r| r.busy()) {
            if replica.poll_armed() {
                uring::cancel(
                    &mut self.ring,
                    uring::user_data(OpKind::PollOut, slot, conn.generation),
                );
            }
            return;
        }
        if conn.send_in_flight {
            return;
        }
        let conn = self.conns[slot as usize]
            .take()
            .expect("slot checked above");
        self.release(conn);
        self.free_slots.push(slot);
    }

    /// Forgets a connection everywhere it is registered, then closes its socket.
    fn release(&mut self, conn: Conn) {
        if conn.client.is_master {
            self.master_link_released(conn.client.id);
        }
        let client = &conn.client;
        {
            let mut store = self.shared.lock_store();
            if client.blocked.is_some() {
                store.blocking.remove(client.id);
            }
            if client.blocked.is_some() || client.replica.is_some() {
                crate::replication::master::forget_client(&self.shared, &mut store, client.id);
            }
            for (db, key) in &client.watched {
                store.unwatch(*db, key, &client.watch_dirty);
            }
        }
        if client.in_pubsub() {
            let mut pubsub = self.shared.pubsub.lock();
            for channel in &client.channels {
                pubsub.unsubscribe(channel, client.id);
            }
            for pattern in &client.patterns {
                pubsub.punsubscribe(pattern, client.id);
            }
        }
        if client.monitor {
            let mut monitors = self.shared.monitor_list.lock();
            monitors.retain(|(id, _, _)| *id != client.id);
            self.shared
                .monitors
                .store(monitors.len(), Ordering::Relaxed);
        }
        if conn.replica.is_some() {
            self.replica_released(client.conn as u32);
        }
        self.shared.clients.lock().remove(&client.id);
        self.shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: no operation on this fd is in flight (checked by `close`), and we own it.
        unsafe { libc::close(conn.fd) };
    }

    /// Closes every connection at shutdown. Sockets are shut down so in-flight receives
    /// complete; completions are reaped (bounded) until no operation holds a buffer, and only
    /// then are the connections freed. A connection still busy after that (a send the peer
    /// never drains) is leaked on purpose: the process is exiting, and freeing a buffer the
    /// kernel may still write would be unsound.
    fn close_all(&mut self) {
        const DRAIN_ROUNDS_MAX: usize = 100;
        for slot in 0..self.conns.len() as u32 {
            self.close(slot);
        }
        for _ in 0..DRAIN_ROUNDS_MAX {
            if self.conns.iter().all(Option::is_none) {
                return;
            }
            self.wait(10);
            self.handle_completions();
        }
        for conn in self.conns.iter_mut().filter_map(Option::take) {
            std::mem::forget(conn);
        }
    }

    // ---------------------------------------------------------------------------------------
    // INBOX AND CRON
    // ---------------------------------------------------------------------------------------

    fn drain_inbox(&mut self) {
        const MESSAGES_PER_TURN_MAX: usize = 65_536;
        for _ in 0..MESSAGES_PER_TURN_MAX {
            let Some(message) = self.shared.cores[self.id].pop() else {
                break;
            };
            match message {
                CoreMessage::Deliver { conn, bytes } => {
                    if let Some((slot, conn)) = self.conn_by_token(conn) {
                        conn.out.raw(&bytes);
                        self.dirty.push(slot);
                    }
                }
                CoreMessage::Unblocked { conn, bytes } => {
                    if let Some((slot, conn)) = self.conn_by_token(conn) {
                        conn.out.raw(&bytes);
                        conn.client.blocked = None;
                        conn.client.info.blocked.store(false, Ordering::Relaxed);
                        self.process_input(slot);
                        self.dirty.push(slot);
                    }
                }
                CoreMessage::Kill { conn } => {
                    if let Some((slot, conn)) = self.conn_by_token(conn) {
                        conn.client.close_after_reply = true;
                        self.dirty.push(slot);
                    }
                }
                CoreMessage::Replica { conn, event } => self.on_replica_event(conn, event),
                CoreMessage::Shutdown => {}
            }
        }
    }

    /// Periodic work: blocked-client timeouts, idle timeouts, active expiry (core 0).
    fn cron(&mut self, now: u64) {
        let timeout_ms = self.config.timeout_secs * 1000;
        let mut idle = Vec::new();
        for (slot, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else { continue };
            if conn.client.blocked.is_some() || conn.client.is_master {
                continue;
            }
            if timeout_ms > 0
                && !conn.client.in_pubsub()
                && conn.replica.is_none()
                && now.saturating_sub(conn.client.info.last_interaction_ms.load(Ordering::Relaxed))
                    > timeout_ms
            {
                idle.push(slot as u32);
            }
        }
        for slot in idle {
            log!(Verbose, "Closing idle client");
            self.close(slot);
        }
        const MEMORY_RELEASE_INTERVAL_MS: u64 = 1000;
        if now - self.last_memory_release_ms >= MEMORY_RELEASE_INTERVAL_MS {
            crate::storage::memory::release_free_memory();
            self.last_memory_release_ms = now;
        }
        if self.id == 0 && self.shared.active_expire_enabled.load(Ordering::Relaxed) {
            self.active_expire(now);
        }
        if self.id == 0 {
            let mut store = self.shared.lock_store();
            crate::persistence::snapshot::cron(&self.shared, &mut store);
            crate::persistence::aof::cron(&self.shared, &mut store, now);
            crate::replication::master::cron(&self.shared, &mut store, now);
        }
        self.replicas_cron(now);
        if self.id == 0 {
            self.replication_tick(now);
        }
    }

    /// Answers the clients whose blocking timeout has passed (null array, or null bulk for
    /// BLMOVE/BRPOPLPUSH) and resumes their pipelined input.
    fn time_out_blocked(&mut self, now: u64) {
        while let Some(&Reverse((deadline, token))) = self.blocked_deadlines.peek() {
            if deadline > now {
                return;
            }
            self.blocked_deadlines.pop();
            let slot = token as u32;
            let Some(conn) = conn_mut(&mut self.conns, slot, (token >> 32) as u32) else {
                continue;
            };
            if conn.client.blocked != Some(deadline) {
                continue;
            }
            let mut store = self.shared.lock_store();
            if let Some(acked) =
                crate::replication::master::commands::wait_timed_out(&mut store, conn.client.id)
            {
                drop(store);
                conn.out.int(acked);
                conn.client.blocked = None;
                conn.client.info.blocked.store(false, Ordering::Relaxed);
                self.process_input(slot);
                self.dirty.push(slot);
                continue;
            }
            // Only time out if nobody served us meanwhile (then a reply is on its way).
            let Some(waiter) = store.blocking.remove(conn.client.id) else {
                continue;
            };
            drop(store);
            match waiter.op {
                crate::storage::blocking::BlockOp::ListMove { .. } => conn.out.null(),
                _ => conn.out.null_array(),
            }
            conn.client.blocked = None;
            conn.client.info.blocked.store(false, Ordering::Relaxed);
            self.process_input(slot);
            self.dirty.push(slot);
        }
    }

    /// Redis' active expire cycle: sample keys with a TTL in every database, bounded per run.
    fn active_expire(&mut self, now: u64) {
        const KEYS_PER_LOOP: usize = 20;
        let effort = self.config.active_expire_effort.clamp(1, 10) as usize;
        let budget = KEYS_PER_LOOP * 25 * effort;
        let deletion = crate::command::expiry_deletion(&self.config);
        let mut store = self.shared.lock_store();
        if store.replica_mode {
            return;
        }
        for index in 0..store.dbs.len() {
            if store.dbs[index].expires_len() == 0 {
                continue;
            }
            store.dbs[index].active_expire(now, budget);
            let expired = std::mem::take(&mut store.dbs[index].expired);
            for key in expired {
                store.touch(index, &key);
                store.propagation.feed(index, &[deletion, key.as_bytes()]);
            }
        }
    }
}

/// Runs one parsed command for a connection, under the store lock the caller holds.
fn run_command(
    shared: &Shared,
    config: &Config,
    store: &mut crate::storage::Store,
    client: &mut ClientState,
    out: &mut Reply,
    args: &[&[u8]],
) {
    let mut ctx = Ctx {
        shared,
        config,
        store,
        client,
        reply: out,
        now_ms: unix_time_ms(),
        propagate: Propagate::AsIs,
    };
    command::call(&mut ctx, args);
}

/// The live connection in `slot` if its generation matches (stale completions find none).
fn conn_mut(conns: &mut [Option<Conn>], slot: u32, generation: u32) -> Option<&mut Conn> {
    match conns.get_mut(slot as usize) {
        Some(Some(conn)) if conn.generation == generation => Some(conn),
        _ => None,
    }
}

/// What Redis 7.0 tells a remote client in protected mode, before closing.
const PROTECTED_MODE_MESSAGE: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
