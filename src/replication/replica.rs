//! The replica side: this server following a master (`REPLICAOF host port`).
//!
//! # The link, step by step
//! A replica first only records its master's address (state [`LinkState::Connect`]); the
//! replication cron on core 0 then connects and walks the handshake, one reply at a time:
//!
//! ```text
//!  None ──REPLICAOF host port──▶ Connect ──cron──▶ Connecting ──connected──▶ ReceivePong
//!   ▲                              ▲  ▲                                        │ +PONG / -NOAUTH
//!   │ REPLICAOF NO ONE             │  │ error, timeout                         ▼
//!   │ (from any state)             │  └──────── ReceiveAuth ◀── AUTH, REPLCONF listening-port,
//!   │                              │            ReceivePort       REPLCONF capa eof capa psync2
//!   │                              │            ReceiveIp         (pipelined, replies read in
//!   │                              │            ReceiveCapa ──▶   order; only AUTH must succeed)
//!   │                              │                              PSYNC <replid> <offset+1>
//!   │                              │            ReceivePsync ◀────┘ (`? -1` without history)
//!   │                              │              │ +FULLRESYNC id off   │ +CONTINUE [id]
//!   │                              │              ▼ (or -ERR → SYNC)     │
//!   │                              │            Transfer ──loaded──▶ Connected ◀─┘
//!   │                              └── link lost: the master's history is cached ─┘
//! ```
//!
//! With a broken transfer to resume ([`ReplicaSide::resumable`]), `ReceiveCapa` sends
//! `REPLCONF rdb-resume ...` first and waits in `ReceiveResume`; a master answering the PSYNC
//! with `+RESUME` then sends only the rest of that snapshot into the kept temp file
//! ([`crate::replication::master::resume`] has the protocol).
//!
//! A master that accepts `REPLCONF snapshot-only 1` (a ringkv master; Redis refuses it, and
//! so does a ringkv master after a split sync with it failed, [`ReplicaSide::split_disabled`])
//! gets a split full sync: after `+FULLRESYNC <replid> <offset>` core 0 also opens a stream
//! connection, `PSYNC <replid> <offset+1>`, whose bytes a helper thread spools to disk while
//! the snapshot is received and loaded; once the data is swapped in, the spool is applied in
//! chunks and the stream connection becomes the link (`server::stream_fetch`).
//!
//! `Transfer` receives the snapshot (`$<len>` or diskless `$EOF:<mark>` framing) into a temp
//! file, then a helper thread loads it into a fresh keyspace while the old one keeps serving
//! reads (`replica-serve-stale-data yes`); the swap happens under the keyspace lock. In
//! `Connected` the master's commands run as the "master client": they are obeyed even though
//! the replica is read-only, get no replies (except `REPLCONF GETACK`), and the replication
//! offset grows by the bytes of each command fully applied. Those same bytes are fed,
//! unchanged, to this server's own backlog, so chained replicas and PSYNC offsets see exactly
//! the master's stream.
//!
//! # Who holds what
//! [`ReplicaSide`] lives in the keyspace ([`Store::replication`]), so the data, the offset and
//! the link state change in one critical section, and any core can answer REPLICAOF, INFO and
//! ROLE. The socket, the buffers, the temp file and the loader thread belong to core 0
//! (`server::master_link`), which follows [`ReplicaSide::epoch`]: a REPLICAOF bumps it, and a
//! link made for an older epoch is dropped without touching the state.
//!
//! # History (PSYNC)
//! [`MasterHistory`] is Redis' master client reduced to what PSYNC needs: replication ID,
//! applied offset, selected database. When the link breaks it becomes the cached master, and
//! the next handshake asks `PSYNC <replid> <offset+1>`. A server that turns into a replica
//! caches its own history (PSYNC2: its new master may have been its replica). A replica
//! saves its master's ID and its offset in its RDB aux fields ([`save_info`]) and restores
//! them at start ([`restore_at_start`]), so a restarted replica resyncs partially.

use std::fmt::Write as _;

use super::master::resume::ResumeRequest;
use super::state::{ReplicationState, NO_REPLID};
use crate::command::{flags, CmdError, CmdResult, Ctx};
use crate::config::Config;
use crate::log;
use crate::persistence::rdb::SaveInfo;
use crate::protocol::Reply;
use crate::server::shared::new_run_id;
use crate::storage::{Db, Store};

/// Length of replication IDs and of the diskless EOF mark (Redis' `CONFIG_RUN_ID_SIZE`).
pub const REPLID_LEN: usize = 40;

/// Where the link to the master stands (Redis' `repl_state`; the order is the handshake's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkState {
    /// Not a replica.
    #[default]
    None,
    /// A master is configured; the replication cron connects.
    Connect,
    /// A non-blocking connect is in flight.
    Connecting,
    /// `PING` sent; waiting for `+PONG` (or `-NOAUTH`, which is fine too).
    ReceivePong,
    /// About to send `AUTH` and the `REPLCONF`s (transient, inside one step).
    SendHandshake,
    /// Waiting for the reply to `AUTH [masteruser] masterauth`.
    ReceiveAuth,
    /// Waiting for the reply to `REPLCONF listening-port`.
    ReceivePort,
    /// Waiting for the reply to `REPLCONF ip-address` (only with `replica-announce-ip`).
    ReceiveIp,
    /// Waiting for the reply to `REPLCONF capa eof capa psync2`.
    ReceiveCapa,
    /// Waiting for the reply to `REPLCONF snapshot-only 1` (ringkv's own; sent unless a
    /// split sync failed with this master, see [`ReplicaSide::split`]).
    ReceiveSplit,
    /// Waiting for the reply to `REPLCONF rdb-resume` (only with a broken transfer to
    /// resume, see [`ReplicaSide::resumable`]).
    ReceiveResume,
    /// About to send `PSYNC` (transient, inside one step).
    SendPsync,
    /// `PSYNC` sent; waiting for `+FULLRESYNC`, `+CONTINUE` or an error.
    ReceivePsync,
    /// Receiving the snapshot, then loading it.
    Transfer,
    /// Applying the master's stream.
    Connected,
}

impl LinkState {
    /// True from the PING until the PSYNC reply (Redis' `slaveIsInHandshakeState`).
    pub fn in_handshake(self) -> bool {
        matches!(
            self,
            LinkState::ReceivePong
                | LinkState::SendHandshake
                | LinkState::ReceiveAuth
                | LinkState::ReceivePort
                | LinkState::ReceiveIp
                | LinkState::ReceiveCapa
                | LinkState::ReceiveSplit
                | LinkState::ReceiveResume
                | LinkState::SendPsync
                | LinkState::ReceivePsync
        )
    }

    /// The state as ROLE names it.
    pub fn role_name(self) -> &'static str {
        match self {
            _ if self.in_handshake() => "handshake",
            LinkState::None => "none",
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
            _ => "unknown",
        }
    }
}

/// The master's address (`masterhost`, `masterport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterAddress {
    pub host: String,
    pub port: u16,
}

/// What a replica knows of its master's stream: Redis' master client, or cached master once
/// the link broke, reduced to what PSYNC, INFO and the RDB aux fields need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterHistory {
    /// The master's replication ID.
    pub replid: String,
    /// Offset of the last stream byte applied (`reploff`; `slave_repl_offset`).
    pub offset: i64,
    /// Offset of the last stream byte received (`read_reploff`; `slave_read_repl_offset`).
    pub read_offset: i64,
    /// Database the stream last selected (the master client's `SELECT`).
    pub db: usize,
    /// Unix ms of the last byte from the master (`lastinteraction`).
    pub last_interaction_ms: u64,
    /// The master did not tell its offset (old `SYNC`): no ACKs are sent to it.
    pub pre_psync: bool,
}

/// Progress of a snapshot transfer (INFO `master_sync_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferProgress {
    /// Payload size announced by `$<len>`; -1 before the header, 0 with an EOF mark.
    pub size: i64,
    /// Payload bytes received so far.
    pub read: u64,
    /// Unix ms of the last byte received (`repl_transfer_lastio`).
    pub last_io_ms: u64,
    /// The payload is complete and a helper thread is loading it.
    pub loading: bool,
}

/// This server as a replica: its master and the link's state.
#[derive(Debug, Default)]
pub struct ReplicaSide {
    /// The master to follow; `None` when this server is a master.
    pub master: Option<MasterAddress>,
    pub state: LinkState,
    /// Bumped by every REPLICAOF that changes the master (or stops replication): core 0
    /// drops a link made for an older epoch.
    pub epoch: u64,
    /// Connect at the next cron tick instead of the next once-a-second run (a new master,
    /// a link that just broke), as Redis reconnects at once in those cases.
    pub connect_now: bool,
    /// The connected master (Redis' `server.master`), in [`LinkState::Connected`].
    pub master_link: Option<MasterHistory>,
    /// The master's history kept across a disconnection, for PSYNC (`server.cached_master`).
    pub cached: Option<MasterHistory>,
    /// `+FULLRESYNC <replid> <offset>` being served; `None` with legacy SYNC.
    pub fullresync: Option<(String, i64)>,
    /// A snapshot transfer that broke, whose first bytes core 0 kept in the temp file: the
    /// next handshake asks the master to send only the rest (ringkv's own, see
    /// [`crate::replication::master::resume`]).
    pub resumable: Option<ResumeRequest>,
    /// The master accepted `REPLCONF snapshot-only 1` on this link: after `+FULLRESYNC` (or
    /// `+RESUME`) the stream comes through a second connection, `PSYNC <replid> <offset+1>`,
    /// received while the snapshot is transferred and loaded, so the master never holds it
    /// for us (no resync loop under a heavy write load). Real Redis refuses the option.
    pub split: bool,
    /// A split sync failed: the next attempts use the one connection, as Redis does.
    pub split_disabled: bool,
    pub transfer: TransferProgress,
    /// Unix ms of the last handshake progress (connect, replies), for `repl-timeout`.
    pub handshake_last_io_ms: u64,
    /// Unix ms the link went down (`repl_down_since`); 0 when it never was up.
    pub down_since_ms: u64,
}

impl ReplicaSide {
    /// True when this server follows a master.
    pub fn is_replica(&self) -> bool {
        self.master.is_some()
    }

    /// The history the next PSYNC asks for, and the request's offset argument.
    fn psync_request(&self) -> (String, String) {
        match &self.cached {
            Some(cached) => (cached.replid.clone(), (cached.offset + 1).to_string()),
            None => ("?".to_string(), "-1".to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// HANDSHAKE (a pure step function; the driver does the I/O)
// ---------------------------------------------------------------------------------------

/// What the handshake sends, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct HandshakeSettings {
    pub masterauth: Option<Vec<u8>>,
    pub masteruser: Option<String>,
    /// `replica-announce-port`, else this server's port.
    pub listening_port: u16,
    /// `replica-announce-ip`, when set.
    pub announce_ip: Option<String>,
}

impl HandshakeSettings {
    pub fn from_config(config: &Config, bound_port: u16) -> HandshakeSettings {
        let announce_port = config
            .value_of("replica-announce-port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|&p| p != 0);
        let announce_ip = config
            .value_of("replica-announce-ip")
            .filter(|ip| !ip.is_empty());
        HandshakeSettings {
            masterauth: config.masterauth.clone(),
            masteruser: config.masteruser.clone().filter(|u| !u.is_empty()),
            listening_port: announce_port.unwrap_or(if config.port != 0 {
                config.port
            } else {
                bound_port
            }),
            announce_ip,
        }
    }
}

/// What the driver must do after a handshake reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Nothing to send; read the next reply.
    Wait,
    /// Send these bytes, then read the next reply.
    Send(Vec<u8>),
    /// `+FULLRESYNC`: the snapshot follows ([`ReplicaSide::fullresync`] is set).
    FullResync,
    /// PSYNC was refused with an error: send these bytes (`SYNC`) and receive a snapshot.
    Sync(Vec<u8>),
    /// `+CONTINUE`: the stream resumes after the cached offset (a new replication ID when the
    /// master changed it).
    Continue { new_replid: Option<String> },
    /// `+RESUME`: the rest of the broken transfer follows, as `$<bytes left>`; the kept
    /// temp file continues.
    Resume,
    /// This attempt failed (the reason is logged): close the link and retry later.
    Fail,
}

/// The first handshake bytes once connected: `PING`.
pub const PING_COMMAND: &[u8] = b"*1\r\n$4\r\nPING\r\n";

impl ReplicaSide {
    /// The link is connected: sends PING, waits for its reply.
    pub fn start_handshake(&mut self, now_ms: u64) -> Vec<u8> {
        log!(Notice, "Non blocking connect for SYNC fired the event.");
        self.state = LinkState::ReceivePong;
        self.handshake_last_io_ms = now_ms;
        PING_COMMAND.to_vec()
    }

    /// One step of the handshake: `reply` is a reply line without its line ending. Every
    /// transition of the handshake is in this one `match`.
    pub fn on_handshake_reply(
        &mut self,
        reply: &[u8],
        settings: &HandshakeSettings,
        now_ms: u64,
    ) -> Reaction {
        self.handshake_last_io_ms = now_ms;
        let text = String::from_utf8_lossy(reply);
        let is_error = reply.first() == Some(&b'-');
        match self.state {
            LinkState::ReceivePong => {
                let accepted = reply.first() == Some(&b'+')
                    || reply.starts_with(b"-NOAUTH")
                    || reply.starts_with(b"-NOPERM")
                    || reply.starts_with(b"-ERR operation not permitted");
                if !accepted {
                    log!(Warning, "Error reply to PING from master: '{text}'");
                    return Reaction::Fail;
                }
                log!(
                    Notice,
                    "Master replied to PING, replication can continue..."
                );
                self.state = LinkState::SendHandshake;
                self.split = false;
                let bytes = handshake_commands(settings, !self.split_disabled);
                self.state = if settings.masterauth.is_some() {
                    LinkState::ReceiveAuth
                } else {
                    LinkState::ReceivePort
                };
                Reaction::Send(bytes)
            }
            LinkState::ReceiveAuth => {
                if is_error {
                    log!(Warning, "Unable to AUTH to MASTER: {text}");
                    return Reaction::Fail;
                }
                self.state = LinkState::ReceivePort;
                Reaction::Wait
            }
            LinkState::ReceivePort => {
                if is_error {
                    log!(
                        Notice,
                        "(Non critical) Master does not understand REPLCONF listening-port: {text}"
                    );
                }
                self.state = if settings.announce_ip.is_some() {
                    LinkState::ReceiveIp
                } else {
                    LinkState::ReceiveCapa
                };
                Reaction::Wait
            }
            LinkState::ReceiveIp => {
                if is_error {
                    log!(
                        Notice,
                        "(Non critical) Master does not understand REPLCONF ip-address: {text}"
                    );
                }
                self.state = LinkState::ReceiveCapa;
                Reaction::Wait
            }
            LinkState::ReceiveCapa => {
                if is_error {
                    log!(
                        Notice,
                        "(Non critical) Master does not understand REPLCONF capa: {text}"
                    );
                }
                if !self.split_disabled {
                    self.state = LinkState::ReceiveSplit;
                    return Reaction::Wait;
                }
                self.resume_or_psync()
            }
            LinkState::ReceiveSplit => {
                self.split = !is_error;
                if self.split {
                    log!(
                        Notice,
                        "The master sends snapshots on their own: a full sync will take the stream through a second connection"
                    );
                }
                self.resume_or_psync()
            }
            LinkState::ReceiveResume => {
                if is_error {
                    log!(
                        Notice,
                        "The master can't resume the broken snapshot transfer: {text}"
                    );
                    self.resumable = None;
                }
                self.send_psync()
            }
            LinkState::ReceivePsync => self.on_psync_reply(reply, &text, now_ms),
            _ => {
                log!(
                    Warning,
                    "syncWithMaster(): state machine error, state is {:?}",
                    self.state
                );
                Reaction::Fail
            }
        }
    }

    /// After the `REPLCONF` replies: asks to resume a broken transfer, or sends `PSYNC`.
    fn resume_or_psync(&mut self) -> Reaction {
        {
            if let Some(request) = &self.resumable {
                log!(
                    Notice,
                    "Asking the master to resume the broken snapshot transfer at byte {} of {}",
                    request.received,
                    request.size
                );
                let mut bytes = Vec::new();
                super::propagate::encode(
                    &mut bytes,
                    &["REPLCONF", "rdb-resume", &request.encode()],
                );
                self.state = LinkState::ReceiveResume;
                return Reaction::Send(bytes);
            }
            self.send_psync()
        }
    }

    /// Sends `PSYNC` for the cached history (or `PSYNC ? -1`).
    fn send_psync(&mut self) -> Reaction {
        {
            self.state = LinkState::SendPsync;
            let (replid, offset) = self.psync_request();
            if self.cached.is_some() {
                log!(
                    Notice,
                    "Trying a partial resynchronization (request {replid}:{offset})."
                );
            } else {
                log!(
                    Notice,
                    "Partial resynchronization not possible (no cached master)"
                );
            }
            let mut bytes = Vec::new();
            super::propagate::encode(&mut bytes, &["PSYNC", &replid, &offset]);
            self.state = LinkState::ReceivePsync;
            Reaction::Send(bytes)
        }
    }

    fn on_psync_reply(&mut self, reply: &[u8], text: &str, now_ms: u64) -> Reaction {
        if reply.is_empty() {
            // Newlines the master sends to keep the link alive before it answers.
            return Reaction::Wait;
        }
        // Whatever the answer, the partial file is useless unless it is `+RESUME` for it.
        let resumable = self.resumable.take();
        if reply.starts_with(b"+RESUME ") {
            let granted = parse_resume(reply);
            let Some(request) =
                resumable.filter(|r| granted == Some((r.replid.clone(), r.offset, r.received)))
            else {
                log!(
                    Warning,
                    "Master resumed a snapshot transfer this replica did not ask for: {text}"
                );
                return Reaction::Fail;
            };
            log!(
                Notice,
                "Resuming the snapshot transfer from master: {}:{} at byte {}",
                request.replid,
                request.offset,
                request.received
            );
            self.fullresync = Some((request.replid.clone(), request.offset as i64));
            self.begin_transfer(now_ms);
            self.transfer.size = request.size as i64;
            self.transfer.read = request.received;
            return Reaction::Resume;
        }
        if reply.starts_with(b"+FULLRESYNC") {
            self.fullresync = match parse_fullresync(reply) {
                Some((replid, offset)) => {
                    log!(Notice, "Full resync from master: {replid}:{offset}");
                    Some((replid, offset))
                }
                None => {
                    log!(Warning, "Master replied with wrong +FULLRESYNC syntax.");
                    None
                }
            };
            self.begin_transfer(now_ms);
            return Reaction::FullResync;
        }
        if reply.starts_with(b"+CONTINUE") {
            if self.cached.is_none() {
                log!(
                    Warning,
                    "Master accepted a partial resynchronization this replica did not ask for: {text}"
                );
                return Reaction::Fail;
            }
            log!(Notice, "Successful partial resynchronization with master.");
            return Reaction::Continue {
                new_replid: parse_continue(reply),
            };
        }
        if reply.starts_with(b"-NOMASTERLINK") || reply.starts_with(b"-LOADING") {
            log!(
                Notice,
                "Master is currently unable to PSYNC but should be in the future: {text}"
            );
            return Reaction::Fail;
        }
        if reply.starts_with(b"-ERR") {
            log!(
                Notice,
                "Master does not support PSYNC or is in error state (reply: {text})"
            );
        } else {
            log!(Warning, "Unexpected reply to PSYNC from master: {text}");
        }
        log!(Notice, "Retrying with SYNC...");
        self.fullresync = None;
        self.begin_transfer(now_ms);
        Reaction::Sync(b"SYNC\r\n".to_vec())
    }

    fn begin_transfer(&mut self, now_ms: u64) {
        self.state = LinkState::Transfer;
        self.transfer = TransferProgress {
            size: -1,
            read: 0,
            last_io_ms: now_ms,
            loading: false,
        };
    }
}

/// `AUTH`, `REPLCONF listening-port`, `REPLCONF ip-address` (when announced) and `REPLCONF
/// capa eof capa psync2`, pipelined.
fn handshake_commands(settings: &HandshakeSettings, split: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(password) = &settings.masterauth {
        match &settings.masteruser {
            Some(user) => super::propagate::encode(
                &mut bytes,
                &[b"AUTH".as_slice(), user.as_bytes(), password],
            ),
            None => super::propagate::encode(&mut bytes, &[b"AUTH".as_slice(), password]),
        }
    }
    let port = settings.listening_port.to_string();
    super::propagate::encode(&mut bytes, &["REPLCONF", "listening-port", &port]);
    if let Some(ip) = &settings.announce_ip {
        super::propagate::encode(&mut bytes, &["REPLCONF", "ip-address", ip]);
    }
    super::propagate::encode(&mut bytes, &["REPLCONF", "capa", "eof", "capa", "psync2"]);
    if split {
        super::propagate::encode(&mut bytes, &["REPLCONF", "snapshot-only", "1"]);
    }
    bytes
}

/// The commands that open the stream connection of a split sync: first `AUTH`, `REPLCONF
/// listening-port`, [`REPLCONF ip-address`], `REPLCONF capa` and `REPLCONF sync-stream 1`
/// (so the master does not count it as a partial resync), pipelined; then, once their
/// replies are in (a master refuses `PSYNC` with replies pending), `PSYNC <replid> <offset>`,
/// which must be answered `+CONTINUE`.
pub fn stream_handshake(
    settings: &HandshakeSettings,
    replid: &str,
    offset: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut first = handshake_commands(settings, false);
    super::propagate::encode(&mut first, &["REPLCONF", "sync-stream", "1"]);
    let mut psync = Vec::new();
    super::propagate::encode(&mut psync, &["PSYNC", replid, &offset.to_string()]);
    (first, psync)
}

/// `+RESUME <replid> <offset> <received>` → the request it grants (size left unknown: 0
/// here, the caller compares the rest).
fn parse_resume(reply: &[u8]) -> Option<(String, u64, u64)> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut words = text.split(' ');
    if words.next()? != "+RESUME" {
        return None;
    }
    let replid = words.next()?.to_string();
    let offset = words.next()?.parse().ok()?;
    let received = words.next()?.parse().ok()?;
    words.next().is_none().then_some((replid, offset, received))
}

/// The link broke while receiving a `$<len>` snapshot with `received` bytes in the temp
/// file: remembers it for a resume, and returns whether core 0 must keep the file.
pub fn keep_for_resume(side: &mut ReplicaSide, received: u64) -> bool {
    let keep = match (&side.fullresync, side.state) {
        (Some((replid, offset)), LinkState::Transfer)
            if !side.transfer.loading
                && *offset >= 0
                && side.transfer.size > 0
                && received > 0
                && received < side.transfer.size as u64 =>
        {
            side.resumable = Some(ResumeRequest {
                replid: replid.clone(),
                offset: *offset as u64,
                size: side.transfer.size as u64,
                received,
            });
            true
        }
        _ => false,
    };
    if !keep {
        side.resumable = None;
    }
    keep
}

/// `+FULLRESYNC <40-char replid> <offset>` → (replid, offset).
pub fn parse_fullresync(reply: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut words = text.split(' ');
    words.next()?;
    let replid = words.next()?;
    let offset = words.next()?.trim_end().parse::<i64>().ok()?;
    if replid.len() != REPLID_LEN || offset < 0 {
        return None;
    }
    Some((replid.to_string(), offset))
}

/// The new replication ID of `+CONTINUE <replid>`, if the master sent one.
pub fn parse_continue(reply: &[u8]) -> Option<String> {
    let rest = reply.strip_prefix(b"+CONTINUE")?.strip_prefix(b" ")?;
    let end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n' || b == 0)
        .unwrap_or(rest.len());
    let id = &rest[..end];
    (id.len() == REPLID_LEN)
        .then(|| String::from_utf8(id.to_vec()).ok())
        .flatten()
}

/// The line that precedes the snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum BulkHeader {
    /// A bare newline: the master is alive, still making the snapshot.
    KeepAlive,
    /// `$<len>`: this many payload bytes follow.
    Length(u64),
    /// `$EOF:<mark>`: the payload ends with these 40 bytes (diskless masters).
    EofMark([u8; REPLID_LEN]),
    /// `-<error>`: the master aborted.
    Error(String),
    /// Anything else: wrong host or port, or a broken master.
    Bad(String),
}

/// Classifies the line before the snapshot (without its line ending).
pub fn parse_bulk_header(line: &[u8]) -> BulkHeader {
    let text = || String::from_utf8_lossy(line).into_owned();
    match line.first() {
        None => BulkHeader::KeepAlive,
        Some(b'-') => BulkHeader::Error(String::from_utf8_lossy(&line[1..]).into_owned()),
        Some(b'$') => {
            if let Some(mark) = line[1..].strip_prefix(b"EOF:") {
                if mark.len() >= REPLID_LEN {
                    let mut eof = [0u8; REPLID_LEN];
                    eof.copy_from_slice(&mark[..REPLID_LEN]);
                    return BulkHeader::EofMark(eof);
                }
                return BulkHeader::Bad(text());
            }
            match std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(len) => BulkHeader::Length(len),
                None => BulkHeader::Bad(text()),
            }
        }
        Some(_) => BulkHeader::Bad(text()),
    }
}

/// Finds the end of an `$EOF:<mark>` payload as bytes arrive, however they are split.
#[derive(Clone, Debug)]
pub struct EofMark {
    mark: [u8; REPLID_LEN],
    /// The last bytes seen (up to `REPLID_LEN - 1`), for a mark split across chunks.
    tail: Vec<u8>,
}

impl EofMark {
    pub fn new(mark: [u8; REPLID_LEN]) -> EofMark {
        EofMark {
            mark,
            tail: Vec::with_capacity(REPLID_LEN),
        }
    }

    /// Feeds the next chunk. Returns the number of bytes of `chunk` that belong to the
    /// payload and whether the mark ended in this chunk (the mark itself is not payload;
    /// bytes after it are not consumed). Mark bytes carried over from earlier chunks were
    /// reported as payload then: `payload_overshoot` tells how many to cut from the file.
    pub fn feed(&mut self, chunk: &[u8]) -> EofScan {
        let mut window = std::mem::take(&mut self.tail);
        let carried = window.len();
        window.extend_from_slice(&chunk[..chunk.len().min(REPLID_LEN - 1)]);
        if let Some(at) = memchr::memmem::find(&window, &self.mark) {
            // The mark starts inside the carried bytes (or right at the chunk's start).
            let overshoot = carried - at.min(carried);
            let consumed = at + REPLID_LEN - carried;
            return EofScan {
                payload: 0,
                consumed,
                done: true,
                payload_overshoot: overshoot as u64,
            };
        }
        if let Some(at) = memchr::memmem::find(chunk, &self.mark) {
            return EofScan {
                payload: at,
                consumed: at + REPLID_LEN,
                done: true,
                payload_overshoot: 0,
            };
        }
        let keep = REPLID_LEN - 1;
        if chunk.len() >= keep {
            self.tail = chunk[chunk.len() - keep..].to_vec();
        } else {
            let start = (carried + chunk.len()).saturating_sub(keep);
            let mut tail: Vec<u8> = window[..carried].to_vec();
            tail.extend_from_slice(chunk);
            self.tail = tail[start..].to_vec();
        }
        EofScan {
            payload: chunk.len(),
            consumed: chunk.len(),
            done: false,
            payload_overshoot: 0,
        }
    }
}

/// The outcome of [`EofMark::feed`].
#[derive(Debug, PartialEq, Eq)]
pub struct EofScan {
    /// Bytes of the chunk to append to the payload.
    pub payload: usize,
    /// Bytes of the chunk used (payload plus mark).
    pub consumed: usize,
    /// The mark was found.
    pub done: bool,
    /// Bytes already written as payload that were the start of the mark.
    pub payload_overshoot: u64,
}

// ---------------------------------------------------------------------------------------
// ROLE CHANGES AND LINK EVENTS (each under the keyspace lock)
// ---------------------------------------------------------------------------------------

/// Redis' `shiftReplicationId`: the current history becomes `replid2`, valid up to the next
/// offset (a former sibling asking for offset + 1 has the same bytes), and a new ID starts.
pub fn shift_replication_id(replication: &mut ReplicationState) {
    replication.replid2 = std::mem::replace(&mut replication.replid, new_run_id());
    replication.second_replid_offset = replication.master_repl_offset as i64 + 1;
    if let Some(backlog) = &replication.backlog {
        if let Err(error) = backlog.set_replid(&replication.replid) {
            log!(
                Warning,
                "Could not write the new replication ID into the backlog file: {error}"
            );
        }
    }
    log!(
        Warning,
        "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
        replication.replid2,
        replication.second_replid_offset,
        replication.replid
    );
}

/// This server's own history as a cached master (Redis' `replicationCacheMasterUsingMyself`).
fn cache_myself(replication: &ReplicationState, db: usize) -> MasterHistory {
    log!(
        Notice,
        "Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer."
    );
    let offset = replication.master_repl_offset as i64;
    MasterHistory {
        replid: replication.replid.clone(),
        offset,
        read_offset: offset,
        db,
        last_interaction_ms: 0,
        pre_psync: false,
    }
}

/// `REPLICAOF host port`: follow a new master. The connection is made by core 0.
pub fn set_master(store: &mut Store, host: &str, port: u16) {
    let side = &mut store.replication.replica_side;
    let was_master = side.master.is_none();
    if side.state == LinkState::Connected {
        // The old master's history stays usable: after a failover the new master may
        // accept it (PSYNC2).
        if let Some(link) = side.master_link.take() {
            log!(Warning, "Connection with master lost.");
            log!(Notice, "Caching the disconnected master state.");
            side.cached = Some(link);
        }
    }
    side.master_link = None;
    side.master = Some(MasterAddress {
        host: host.to_string(),
        port,
    });
    side.epoch += 1;
    side.state = LinkState::Connect;
    side.connect_now = true;
    side.fullresync = None;
    side.resumable = None;
    // A new master gets a split sync tried again.
    side.split_disabled = false;
    side.transfer = TransferProgress::default();
    if was_master {
        if side.cached.take().is_some() {
            log!(Notice, "Discarding previously cached master state.");
        }
        let myself = cache_myself(&store.replication, 0);
        store.replication.replica_side.cached = Some(myself);
    }
    store.set_replica_mode(true);
    crate::log::set_role(b'S');
    log!(Notice, "Connecting to MASTER {host}:{port}");
}

/// `REPLICAOF NO ONE`: stop following; the data stays, the history continues as `replid2`
/// (so former siblings can PSYNC with us) under a new replication ID.
pub fn unset_master(store: &mut Store) {
    let side = &mut store.replication.replica_side;
    if side.master.is_none() {
        return;
    }
    side.master = None;
    side.master_link = None;
    if side.cached.take().is_some() {
        log!(Notice, "Discarding previously cached master state.");
    }
    side.epoch += 1;
    side.state = LinkState::None;
    side.connect_now = false;
    side.fullresync = None;
    side.resumable = None;
    side.transfer = TransferProgress::default();
    side.down_since_ms = 0;
    shift_replication_id(&mut store.replication);
    // Our replicas learn the new ID by reconnecting; they continue with a partial resync.
    store.replication.master_side.disconnect_all();
    // The next command propagated must start with SELECT: replicas continuing with our new
    // history do not know which database our stream had selected.
    store.propagation.reset_selected_db();
    // Our own writes now feed the backlog we kept.
    store.propagation.enabled |= store.replication.backlog.is_some();
    store.set_replica_mode(false);
    crate::log::set_role(b'M');
}

/// The link broke (or an attempt failed). A connected master's history is cached for
/// PSYNC; `reconnect_now` skips the wait for the next once-a-second cron.
pub fn link_lost(store: &mut Store, now_ms: u64, reconnect_now: bool) {
    let side = &mut store.replication.replica_side;
    if side.state == LinkState::Connected {
        if let Some(mut link) = side.master_link.take() {
            log!(Warning, "Connection with master lost.");
            log!(Notice, "Caching the disconnected master state.");
            // Bytes received but not applied are dropped with the connection's buffer.
            link.read_offset = link.offset;
            side.cached = Some(link);
        }
        side.down_since_ms = now_ms;
    }
    side.fullresync = None;
    side.transfer = TransferProgress::default();
    if let Some(master) = &side.master {
        side.state = LinkState::Connect;
        side.connect_now = reconnect_now;
        if reconnect_now {
            log!(
                Notice,
                "Reconnecting to MASTER {}:{}",
                master.host,
                master.port
            );
        }
    } else {
        side.state = LinkState::None;
    }
}

/// `+CONTINUE [replid]`: the cached history becomes the live master again. A new
/// replication ID (the master was promoted) becomes ours, the old one our `replid2`.
pub fn continue_partial(
    store: &mut Store,
    new_replid: Option<String>,
    config: &Config,
    now_ms: u64,
) {
    let replication = &mut store.replication;
    let Some(mut link) = replication.replica_side.cached.take() else {
        return;
    };
    if let Some(new_replid) = new_replid.filter(|id| *id != link.replid) {
        log!(Warning, "Master replication ID changed to {new_replid}");
        replication.replid2 = std::mem::replace(&mut link.replid, new_replid.clone());
        replication.second_replid_offset = replication.master_repl_offset as i64 + 1;
        replication.replid = new_replid;
        // Our replicas must learn the new ID (they continue partially after reconnecting).
        replication.master_side.disconnect_all();
        if let Some(backlog) = &replication.backlog {
            if let Err(error) = backlog.set_replid(&replication.replid) {
                log!(
                    Warning,
                    "Could not write the new replication ID into the backlog file: {error}"
                );
            }
        }
    }
    debug_assert_eq!(link.offset, replication.master_repl_offset as i64);
    link.last_interaction_ms = now_ms;
    link.read_offset = link.offset;
    let side = &mut replication.replica_side;
    side.master_link = Some(link);
    side.state = LinkState::Connected;
    side.down_since_ms = 0;
    side.connect_now = false;
    if replication.backlog.is_none() {
        // A replica restarted from its RDB has a history but no backlog yet.
        if let Err(error) = replication.create_backlog(
            &super::state::backlog_path(config),
            super::master::backlog_capacity(config),
        ) {
            log!(Warning, "Could not create the replication backlog: {error}");
        }
    }
    log!(
        Notice,
        "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."
    );
}

/// The snapshot is loaded: swaps it in, adopts the master's history and offset, and starts a
/// new backlog there. Returns the old databases (to be freed off the lock).
pub fn finish_full_sync(
    store: &mut Store,
    dbs: Vec<Db>,
    stream_db: usize,
    config: &Config,
    now_ms: u64,
) -> Vec<Db> {
    // Our replicas followed the old history: they must resync with us (Redis'
    // `replicationAttachToNewMaster`).
    store.replication.master_side.disconnect_all();
    let old = std::mem::replace(&mut store.dbs, dbs);
    store.set_replica_mode(true);
    store.touch_all(None);
    let replication = &mut store.replication;
    let side = &mut replication.replica_side;
    if side.cached.take().is_some() {
        log!(Notice, "Discarding previously cached master state.");
    }
    let (replid, offset, pre_psync) = match side.fullresync.take() {
        Some((replid, offset)) => (replid, offset, false),
        // Legacy SYNC: the master never said where its stream stands.
        None => (new_run_id(), 0, true),
    };
    side.master_link = Some(MasterHistory {
        replid: replid.clone(),
        offset,
        read_offset: offset,
        db: stream_db,
        last_interaction_ms: now_ms,
        pre_psync,
    });
    side.state = LinkState::Connected;
    side.down_since_ms = 0;
    side.connect_now = false;
    side.transfer = TransferProgress::default();
    replication.replid = replid;
    replication.master_repl_offset = offset as u64;
    replication.replid2 = NO_REPLID.to_string();
    replication.second_replid_offset = -1;
    // A new history: the old backlog's bytes belong to another one. Its file is unlinked
    // first: readers still holding the old ring keep their inode (and its lock) until they
    // let go, and the new ring is a new file at the same path.
    if let Some(backlog) = replication.backlog.take() {
        let _ = std::fs::remove_file(backlog.path());
    }
    if let Err(error) = replication.create_backlog(
        &super::state::backlog_path(config),
        super::master::backlog_capacity(config),
    ) {
        log!(Warning, "Could not create the replication backlog: {error}");
    }
    log!(Notice, "MASTER <-> REPLICA sync: Finished with success");
    old
}

/// Stream bytes were applied: the offset grows by exactly their length, and they go,
/// unchanged, to our own backlog (chained replicas, and PSYNC after a promotion).
/// `received` counts the bytes read from the master since the last call.
pub fn applied(store: &mut Store, raw: &[u8], received: usize, db: usize, now_ms: u64) {
    let replication = &mut store.replication;
    let Some(link) = replication.replica_side.master_link.as_mut() else {
        return;
    };
    link.offset += raw.len() as i64;
    link.read_offset = (link.read_offset + received as i64).max(link.offset);
    link.db = db;
    link.last_interaction_ms = now_ms;
    if replication.backlog.is_some() {
        // Through the master side, so the cores of our own replicas are woken.
        super::master::feed_stream(replication, raw);
    } else {
        replication.feed(raw);
    }
    debug_assert_eq!(
        replication
            .replica_side
            .master_link
            .as_ref()
            .map(|l| l.offset),
        Some(replication.master_repl_offset as i64),
        "a replica's offset is the bytes it applied"
    );
}

// ---------------------------------------------------------------------------------------
// PERSISTENCE (RDB aux fields)
// ---------------------------------------------------------------------------------------

/// What a replica writes in its RDB aux fields: the master's replication ID (ours since the
/// sync), the offset the data ends at, and the database the stream had selected. `None`
/// when the replica has no history to offer (Redis' `rdbPopulateSaveInfo` returns NULL).
pub fn save_info(store: &Store) -> Option<SaveInfo> {
    let side = &store.replication.replica_side;
    let history = side.master_link.as_ref().or(side.cached.as_ref())?;
    Some(SaveInfo {
        repl_stream_db: Some(history.db as i64),
        repl_id: Some(store.replication.replid.clone()),
        repl_offset: Some(store.replication.master_repl_offset as i64),
        aof_base: false,
    })
}

/// At start, before loading: a `replicaof` in the configuration makes this a replica (so the
/// load keeps keys whose TTL passed: the master will delete them).
pub fn configure_at_start(store: &mut Store, config: &Config) {
    if let Some((host, port)) = &config.replicaof {
        let side = &mut store.replication.replica_side;
        side.master = Some(MasterAddress {
            host: host.clone(),
            port: *port,
        });
        side.state = LinkState::Connect;
        // The first replication cron connects (and says so), as at a Redis start.
        side.connect_now = false;
        side.epoch += 1;
        store.set_replica_mode(true);
        crate::log::set_role(b'S');
    }
}

/// After loading the RDB at start: a replica whose file names its history (ID, offset and
/// stream database all valid) resumes it as a cached master, to PSYNC from there.
pub fn restore_at_start(store: &mut Store, info: &SaveInfo) {
    if !store.replication.replica_side.is_replica() {
        return;
    }
    let (Some(replid), Some(offset), Some(db)) =
        (&info.repl_id, info.repl_offset, info.repl_stream_db)
    else {
        return;
    };
    if replid.len() != REPLID_LEN || offset < 0 || db < 0 || db as usize >= store.dbs.len() {
        return;
    }
    store.replication.replid = replid.clone();
    store.replication.master_repl_offset = offset as u64;
    let myself = cache_myself(&store.replication, db as usize);
    store.replication.replica_side.cached = Some(myself);
}

// ---------------------------------------------------------------------------------------
// CLIENT-FACING: refusals, INFO, ROLE, REPLICAOF
// ---------------------------------------------------------------------------------------

/// The refusal of `SYNC`/`PSYNC` from a sub-replica while this replica has no live link:
/// its data is not yet (or no longer) its master's, so it has nothing consistent to offer.
pub fn sync_refusal(store: &Store) -> Option<&'static str> {
    let side = &store.replication.replica_side;
    (side.is_replica() && side.state != LinkState::Connected)
        .then_some("NOMASTERLINK Can't SYNC while not connected with my master")
}

/// Redis' read-only and stale-data refusals for a command with `command_flags` from a client
/// that is not our master.
pub fn command_refusal(
    config: &Config,
    store: &Store,
    command_flags: u32,
    from_master: bool,
) -> Option<&'static str> {
    let side = &store.replication.replica_side;
    if from_master || !side.is_replica() {
        return None;
    }
    if config.replica_read_only && command_flags & flags::WRITE != 0 {
        return Some("READONLY You can't write against a read only replica.");
    }
    if side.state != LinkState::Connected
        && !config.replica_serve_stale_data
        && command_flags & flags::STALE == 0
    {
        return Some(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    None
}

/// The replica part of INFO replication (from `master_host` to `replica_announced`, in Redis
/// 7.0's order and conditions); nothing on a master.
pub fn info_fields(store: &Store, config: &Config, now_ms: u64, out: &mut String) {
    let side = &store.replication.replica_side;
    let Some(master) = &side.master else {
        return;
    };
    let seconds = |since_ms: u64| (now_ms.saturating_sub(since_ms) / 1000) as i64;
    let (applied, read) = match side.master_link.as_ref().or(side.cached.as_ref()) {
        Some(history) => (history.offset, history.read_offset),
        None => (1, 1),
    };
    let _ = write!(
        out,
        "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
        master.host,
        master.port,
        if side.state == LinkState::Connected { "up" } else { "down" },
        side.master_link
            .as_ref()
            .map_or(-1, |link| seconds(link.last_interaction_ms)),
        (side.state == LinkState::Transfer) as u8,
        read,
        applied,
    );
    if side.state == LinkState::Transfer {
        let transfer = &side.transfer;
        let perc = if transfer.size > 0 {
            transfer.read as f64 / transfer.size as f64 * 100.0
        } else {
            0.0
        };
        let _ = write!(
            out,
            "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
            transfer.size,
            transfer.read,
            transfer.size - transfer.read as i64,
            perc,
            seconds(transfer.last_io_ms),
        );
    }
    if side.state != LinkState::Connected {
        let down = if side.down_since_ms > 0 {
            seconds(side.down_since_ms)
        } else {
            -1
        };
        let _ = write!(out, "master_link_down_since_seconds:{down}\r\n");
    }
    let announced = config
        .value_of("replica-announced")
        .is_none_or(|value| value == "yes");
    let _ = write!(
        out,
        "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
        config.replica_priority, config.replica_read_only as u8, announced as u8,
    );
}

/// ROLE on a replica: `slave`, host, port, link state, applied offset (-1 when unlinked).
pub fn role_reply(store: &Store, reply: &mut Reply) -> bool {
    let side = &store.replication.replica_side;
    let Some(master) = &side.master else {
        return false;
    };
    reply.array(5);
    reply.bulk(b"slave");
    reply.bulk(master.host.as_bytes());
    reply.int(master.port as i64);
    reply.bulk(side.state.role_name().as_bytes());
    reply.int(side.master_link.as_ref().map_or(-1, |link| link.offset));
    true
}

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (alias `SLAVEOF`).
pub fn replicaof_command(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if ctx.store.replication.replica_side.is_replica() {
            unset_master(ctx.store);
            ctx.shared.update_config(|config| config.replicaof = None);
            log!(
                Notice,
                "MASTER MODE enabled (user request from '{}')",
                client_description(ctx)
            );
        }
        ctx.reply.ok();
        return Ok(());
    }
    if *ctx.client.info.kind.lock() == crate::server::shared::ClientKind::Replica {
        return Err(CmdError::new(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    let port = crate::command::args::int(args[2])
        .ok()
        .filter(|port| (0..=65535).contains(port))
        .ok_or_else(|| CmdError::new("ERR Invalid master port"))? as u16;
    let host = String::from_utf8_lossy(args[1]).into_owned();
    if let Some(master) = &ctx.store.replication.replica_side.master {
        if master.host.eq_ignore_ascii_case(&host) && master.port == port {
            log!(
                Notice,
                "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed."
            );
            ctx.reply.simple("OK Already connected to specified master");
            return Ok(());
        }
    }
    set_master(ctx.store, &host, port);
    unblock_all_clients(ctx);
    let setting = (host.clone(), port);
    ctx.shared
        .update_config(|config| config.replicaof = Some(setting));
    log!(
        Notice,
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        client_description(ctx)
    );
    ctx.reply.ok();
    Ok(())
}

/// Redis' `disconnectAllBlockedClients`: clients blocked on keys of a master that becomes a
/// replica get an error and are closed (their pops will never be served by writes here).
fn unblock_all_clients(ctx: &mut Ctx<'_>) {
    const UNBLOCKED: &[u8] =
        b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";
    for waiter in ctx.store.blocking.remove_all() {
        let core = &ctx.shared.cores[waiter.core];
        core.send(crate::server::shared::CoreMessage::Unblocked {
            conn: waiter.conn,
            bytes: UNBLOCKED.to_vec(),
        });
        core.send(crate::server::shared::CoreMessage::Kill { conn: waiter.conn });
    }
}

/// The client as CLIENT LIST shows it, for the log.
fn client_description(ctx: &Ctx<'_>) -> String {
    let mut line = String::new();
    crate::command::connection::describe_client(ctx, &ctx.client.info, &mut line);
    line.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn settings(auth: bool) -> HandshakeSettings {
        HandshakeSettings {
            masterauth: auth.then(|| b"secret".to_vec()),
            masteruser: None,
            listening_port: 6380,
            announce_ip: None,
        }
    }

    fn side_in(state: LinkState) -> ReplicaSide {
        ReplicaSide {
            master: Some(MasterAddress {
                host: "127.0.0.1".into(),
                port: 6379,
            }),
            state,
            ..Default::default()
        }
    }

    fn history(replid: &str, offset: i64) -> MasterHistory {
        MasterHistory {
            replid: replid.into(),
            offset,
            read_offset: offset,
            db: 0,
            last_interaction_ms: 0,
            pre_psync: false,
        }
    }

    #[test]
    fn ping_replies_that_let_the_handshake_go_on() {
        let table: &[(&[u8], bool)] = &[
            (b"+PONG", true),
            (b"-NOAUTH Authentication required.", true),
            (b"-NOPERM this user has no permissions", true),
            (b"-ERR operation not permitted", true),
            (
                b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                false,
            ),
            (b"-LOADING Redis is loading the dataset in memory", false),
            (b"-ERR unknown command", false),
        ];
        for (reply, goes_on) in table {
            let mut side = side_in(LinkState::ReceivePong);
            let reaction = side.on_handshake_reply(reply, &settings(false), 1);
            assert_eq!(
                matches!(reaction, Reaction::Send(_)),
                *goes_on,
                "{}",
                String::from_utf8_lossy(reply)
            );
            if *goes_on {
                assert_eq!(side.state, LinkState::ReceivePort);
            }
        }
    }

    #[test]
    fn handshake_sends_auth_and_replconfs_pipelined_then_psync() {
        let mut side = side_in(LinkState::ReceivePong);
        let Reaction::Send(bytes) = side.on_handshake_reply(b"+PONG", &settings(true), 1) else {
            panic!("expected the handshake commands");
        };
        assert_eq!(
            bytes,
            b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n\
*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n6380\r\n\
*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n\
*3\r\n$8\r\nREPLCONF\r\n$13\r\nsnapshot-only\r\n$1\r\n1\r\n"
        );
        assert_eq!(side.state, LinkState::ReceiveAuth);
        assert_eq!(
            side.on_handshake_reply(b"+OK", &settings(true), 2),
            Reaction::Wait
        );
        assert_eq!(side.state, LinkState::ReceivePort);
        // listening-port and capa errors are not fatal (old masters).
        assert_eq!(
            side.on_handshake_reply(b"-ERR unknown", &settings(true), 3),
            Reaction::Wait
        );
        assert_eq!(
            side.on_handshake_reply(b"+OK", &settings(true), 4),
            Reaction::Wait
        );
        assert_eq!(side.state, LinkState::ReceiveSplit);
        // Redis refuses snapshot-only: one connection, as usual.
        let Reaction::Send(psync) = side.on_handshake_reply(
            b"-ERR Unrecognized REPLCONF option: snapshot-only",
            &settings(true),
            5,
        ) else {
            panic!("expected PSYNC");
        };
        assert!(!side.split);
        assert_eq!(psync, b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n");
        assert_eq!(side.state, LinkState::ReceivePsync);
        assert_eq!(side.handshake_last_io_ms, 5);
    }

    #[test]
    fn a_master_accepting_snapshot_only_gets_a_split_sync_unless_one_failed() {
        let mut side = side_in(LinkState::ReceiveSplit);
        let Reaction::Send(_) = side.on_handshake_reply(b"+OK", &settings(false), 1) else {
            panic!("expected PSYNC");
        };
        assert!(side.split);
        let mut side = side_in(LinkState::ReceivePong);
        side.split_disabled = true;
        let Reaction::Send(bytes) = side.on_handshake_reply(b"+PONG", &settings(false), 1) else {
            panic!();
        };
        assert!(!String::from_utf8_lossy(&bytes).contains("snapshot-only"));
        side.on_handshake_reply(b"+OK", &settings(false), 2);
        let Reaction::Send(psync) = side.on_handshake_reply(b"+OK", &settings(false), 3) else {
            panic!("expected PSYNC right after capa");
        };
        assert!(psync.starts_with(b"*3\r\n$5\r\nPSYNC"));
        assert!(!side.split);
        let (first, psync) = stream_handshake(&settings(true), ID_A, 101);
        let text = String::from_utf8_lossy(&first);
        assert!(text.starts_with("*2\r\n$4\r\nAUTH"), "{text}");
        assert!(
            !text.contains("snapshot-only") && !text.contains("PSYNC"),
            "{text}"
        );
        assert_eq!(
            psync,
            format!("*3\r\n$5\r\nPSYNC\r\n$40\r\n{ID_A}\r\n$3\r\n101\r\n").as_bytes()
        );
    }

    #[test]
    fn auth_with_masteruser_and_failed_auth() {
        let mut with_user = settings(true);
        with_user.masteruser = Some("repl".into());
        let mut side = side_in(LinkState::ReceivePong);
        let Reaction::Send(bytes) = side.on_handshake_reply(b"+PONG", &with_user, 1) else {
            panic!();
        };
        assert!(bytes.starts_with(b"*3\r\n$4\r\nAUTH\r\n$4\r\nrepl\r\n$6\r\nsecret\r\n"));
        assert_eq!(
            side.on_handshake_reply(b"-WRONGPASS invalid username-password pair", &with_user, 2),
            Reaction::Fail
        );
    }

    #[test]
    fn psync_asks_for_the_byte_after_the_cached_offset() {
        let mut side = side_in(LinkState::ReceiveCapa);
        side.split_disabled = true;
        side.cached = Some(history(ID_A, 1234));
        let Reaction::Send(psync) = side.on_handshake_reply(b"+OK", &settings(false), 1) else {
            panic!();
        };
        let expected = format!("*3\r\n$5\r\nPSYNC\r\n$40\r\n{ID_A}\r\n$4\r\n1235\r\n");
        assert_eq!(psync, expected.as_bytes());
    }

    #[test]
    fn a_broken_transfer_is_kept_and_resumed_only_when_the_master_grants_it() {
        let mut side = side_in(LinkState::ReceivePsync);
        let full = format!("+FULLRESYNC {ID_B} 777");
        assert_eq!(
            side.on_handshake_reply(full.as_bytes(), &settings(false), 1),
            Reaction::FullResync
        );
        side.transfer.size = 1000;
        // Nothing received, or everything: nothing to resume.
        assert!(!keep_for_resume(&mut side, 0));
        assert!(!keep_for_resume(&mut side, 1000));
        assert!(keep_for_resume(&mut side, 400));
        let request = side.resumable.clone().unwrap();
        assert_eq!(
            (
                request.replid.as_str(),
                request.offset,
                request.size,
                request.received
            ),
            (ID_B, 777, 1000, 400)
        );
        // The next handshake asks for it before PSYNC.
        side.state = LinkState::ReceiveSplit;
        let Reaction::Send(bytes) = side.on_handshake_reply(b"+OK", &settings(false), 2) else {
            panic!();
        };
        let value = format!("{ID_B}:777:1000:400");
        assert!(String::from_utf8_lossy(&bytes).contains(&value));
        assert_eq!(side.state, LinkState::ReceiveResume);
        let Reaction::Send(bytes) = side.on_handshake_reply(b"+OK", &settings(false), 3) else {
            panic!();
        };
        assert!(bytes.starts_with(b"*3\r\n$5\r\nPSYNC"));
        // A grant for another byte is refused; the right one continues the transfer.
        let mut wrong = side_in(LinkState::ReceivePsync);
        wrong.resumable = side.resumable.clone();
        let reply = format!("+RESUME {ID_B} 777 401");
        assert_eq!(
            wrong.on_handshake_reply(reply.as_bytes(), &settings(false), 4),
            Reaction::Fail
        );
        let reply = format!("+RESUME {ID_B} 777 400");
        assert_eq!(
            side.on_handshake_reply(reply.as_bytes(), &settings(false), 4),
            Reaction::Resume
        );
        assert_eq!(side.state, LinkState::Transfer);
        assert_eq!((side.transfer.size, side.transfer.read), (1000, 400));
        assert_eq!(side.fullresync, Some((ID_B.to_string(), 777)));
        // A master that can't resume: the request is forgotten, PSYNC goes on as usual.
        let mut refused = side_in(LinkState::ReceiveResume);
        refused.resumable = Some(request);
        let Reaction::Send(_) = refused.on_handshake_reply(
            b"-ERR Unrecognized REPLCONF option: rdb-resume",
            &settings(false),
            5,
        ) else {
            panic!();
        };
        assert_eq!(refused.resumable, None);
        assert_eq!(refused.state, LinkState::ReceivePsync);
    }

    #[test]
    fn psync_replies() {
        let full = format!("+FULLRESYNC {ID_B} 777");
        let cases: Vec<(Vec<u8>, Reaction)> = vec![
            (b"".to_vec(), Reaction::Wait),
            (full.into_bytes(), Reaction::FullResync),
            (
                b"+CONTINUE".to_vec(),
                Reaction::Continue { new_replid: None },
            ),
            (
                format!("+CONTINUE {ID_B}").into_bytes(),
                Reaction::Continue {
                    new_replid: Some(ID_B.into()),
                },
            ),
            (b"-LOADING Redis is loading".to_vec(), Reaction::Fail),
            (
                b"-NOMASTERLINK Can't SYNC while not connected".to_vec(),
                Reaction::Fail,
            ),
            (
                b"-ERR unknown command 'PSYNC'".to_vec(),
                Reaction::Sync(b"SYNC\r\n".to_vec()),
            ),
        ];
        for (reply, expected) in cases {
            let mut side = side_in(LinkState::ReceivePsync);
            side.cached = Some(history(ID_A, 10));
            let reaction = side.on_handshake_reply(&reply, &settings(false), 5);
            assert_eq!(reaction, expected, "{}", String::from_utf8_lossy(&reply));
            match reaction {
                Reaction::FullResync => {
                    assert_eq!(side.fullresync, Some((ID_B.to_string(), 777)));
                    assert_eq!(side.state, LinkState::Transfer);
                    assert_eq!(side.transfer.size, -1);
                }
                Reaction::Sync(_) => {
                    assert_eq!(side.fullresync, None);
                    assert_eq!(side.state, LinkState::Transfer);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn fullresync_and_continue_parsing() {
        assert_eq!(
            parse_fullresync(format!("+FULLRESYNC {ID_A} 0").as_bytes()),
            Some((ID_A.to_string(), 0))
        );
        assert_eq!(parse_fullresync(b"+FULLRESYNC short 5"), None);
        assert_eq!(
            parse_fullresync(format!("+FULLRESYNC {ID_A}").as_bytes()),
            None
        );
        assert_eq!(
            parse_fullresync(format!("+FULLRESYNC {ID_A} x").as_bytes()),
            None
        );
        assert_eq!(parse_continue(b"+CONTINUE"), None);
        assert_eq!(parse_continue(b"+CONTINUE abc"), None);
        assert_eq!(
            parse_continue(format!("+CONTINUE {ID_A}").as_bytes()),
            Some(ID_A.to_string())
        );
    }

    #[test]
    fn bulk_headers() {
        assert_eq!(parse_bulk_header(b""), BulkHeader::KeepAlive);
        assert_eq!(parse_bulk_header(b"$12345"), BulkHeader::Length(12345));
        assert_eq!(
            parse_bulk_header(format!("$EOF:{ID_A}").as_bytes()),
            BulkHeader::EofMark(ID_A.as_bytes().try_into().unwrap())
        );
        assert!(matches!(
            parse_bulk_header(b"$EOF:short"),
            BulkHeader::Bad(_)
        ));
        assert!(matches!(parse_bulk_header(b"$-1"), BulkHeader::Bad(_)));
        assert!(matches!(parse_bulk_header(b"+OK"), BulkHeader::Bad(_)));
        assert_eq!(
            parse_bulk_header(b"-ERR oops"),
            BulkHeader::Error("ERR oops".into())
        );
    }

    /// Splits `payload + mark + trailing` at every pair of positions and checks that the
    /// payload is recovered exactly and the trailing bytes are left unconsumed.
    #[test]
    fn eof_mark_is_found_however_the_bytes_are_split() {
        let mark: [u8; REPLID_LEN] = ID_B.as_bytes().try_into().unwrap();
        let payload: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        let mut stream = payload.clone();
        stream.extend_from_slice(&mark);
        stream.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        for first in 0..stream.len() {
            for second in first..stream.len().min(first + 45) {
                let mut eof = EofMark::new(mark);
                let mut file: Vec<u8> = Vec::new();
                let mut used = 0;
                let mut done = false;
                for chunk in [&stream[..first], &stream[first..second], &stream[second..]] {
                    if done {
                        break;
                    }
                    let scan = eof.feed(chunk);
                    file.extend_from_slice(&chunk[..scan.payload]);
                    file.truncate(file.len() - scan.payload_overshoot as usize);
                    used += scan.consumed;
                    done = scan.done;
                }
                assert!(done, "split at {first}/{second}");
                assert_eq!(file, payload, "split at {first}/{second}");
                assert_eq!(
                    used,
                    payload.len() + REPLID_LEN,
                    "split at {first}/{second}"
                );
            }
        }
    }

    /// A config whose backlog file goes to a temporary directory.
    fn scratch_config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.dbfilename = dir.path().join("dump.rdb").display().to_string();
        (dir, config)
    }

    fn replica_store() -> Store {
        let mut store = Store::new(4);
        set_master(&mut store, "127.0.0.1", 6379);
        store
    }

    #[test]
    fn becoming_a_replica_caches_our_own_history_for_psync2() {
        let mut store = Store::new(4);
        store.replication.master_repl_offset = 500;
        let own = store.replication.replid.clone();
        set_master(&mut store, "10.0.0.1", 6379);
        let side = &store.replication.replica_side;
        assert_eq!(side.state, LinkState::Connect);
        assert_eq!(side.cached, Some(history(&own, 500)));
        assert!(store.replica_mode);
        assert!(store
            .dbs
            .iter()
            .all(|db| db.expiry_mode == crate::storage::ExpiryMode::Hide));
    }

    #[test]
    fn promotion_keeps_the_history_as_replid2() {
        let mut store = replica_store();
        store.replication.master_repl_offset = 1000;
        let before = store.replication.replid.clone();
        let epoch = store.replication.replica_side.epoch;
        unset_master(&mut store);
        assert_eq!(store.replication.replid2, before);
        assert_eq!(store.replication.second_replid_offset, 1001);
        assert_ne!(store.replication.replid, before);
        assert_eq!(store.replication.replica_side.state, LinkState::None);
        assert!(store.replication.replica_side.epoch > epoch);
        assert!(!store.replica_mode);
    }

    #[test]
    fn a_lost_link_becomes_the_cached_master_and_continue_resurrects_it() {
        let mut store = replica_store();
        store.replication.replica_side.cached = None;
        store.replication.replid = ID_A.into();
        store.replication.master_repl_offset = 100;
        {
            let side = &mut store.replication.replica_side;
            side.state = LinkState::Connected;
            side.master_link = Some(history(ID_A, 100));
        }
        applied(&mut store, b"*1\r\n$4\r\nPING\r\n", 14, 2, 7);
        assert_eq!(store.replication.master_repl_offset, 114);
        link_lost(&mut store, 9000, true);
        let side = &store.replication.replica_side;
        assert_eq!(side.state, LinkState::Connect);
        assert!(side.connect_now);
        assert_eq!(side.down_since_ms, 9000);
        let cached = side.cached.clone().unwrap();
        assert_eq!((cached.offset, cached.db), (114, 2));
        assert_eq!(save_info(&store).unwrap().repl_offset, Some(114));
        assert_eq!(save_info(&store).unwrap().repl_stream_db, Some(2));
        let (dir, config) = scratch_config();
        continue_partial(&mut store, Some(ID_B.into()), &config, 10_000);
        assert!(dir.path().join("dump.rdb.backlog").exists());
        assert_eq!(store.replication.replid, ID_B);
        assert_eq!(store.replication.replid2, ID_A);
        assert_eq!(store.replication.second_replid_offset, 115);
        let side = &store.replication.replica_side;
        assert_eq!(side.state, LinkState::Connected);
        assert_eq!(side.master_link.as_ref().unwrap().replid, ID_B);
        assert_eq!(side.down_since_ms, 0);
    }

    #[test]
    fn a_full_sync_adopts_the_masters_history() {
        let mut store = replica_store();
        store.replication.replid2 = ID_A.into();
        store.replication.replica_side.fullresync = Some((ID_B.into(), 4242));
        store.replication.replica_side.state = LinkState::Transfer;
        let mut fresh: Vec<Db> = (0..4).map(|_| Db::default()).collect();
        fresh[1].set(
            b"k",
            crate::storage::Value::Str(crate::storage::Bstr::new(b"v")),
        );
        let (dir, config) = scratch_config();
        let old = finish_full_sync(&mut store, fresh, 1, &config, 5);
        let backlog = store.replication.backlog.as_ref().unwrap();
        assert_eq!(backlog.path(), dir.path().join("dump.rdb.backlog"));
        assert_eq!(old.len(), 4);
        assert_eq!(store.dbs[1].len(), 1);
        assert_eq!(store.dbs[1].expiry_mode, crate::storage::ExpiryMode::Hide);
        assert_eq!(store.replication.replid, ID_B);
        assert_eq!(store.replication.master_repl_offset, 4242);
        assert_eq!(store.replication.replid2, NO_REPLID);
        assert_eq!(store.replication.second_replid_offset, -1);
        let side = &store.replication.replica_side;
        assert_eq!(side.state, LinkState::Connected);
        assert_eq!(side.cached, None);
        assert_eq!(side.master_link.as_ref().unwrap().db, 1);
    }

    #[test]
    fn history_is_restored_from_aux_fields_only_when_complete() {
        let complete = SaveInfo {
            repl_stream_db: Some(3),
            repl_id: Some(ID_A.into()),
            repl_offset: Some(99),
            aof_base: false,
        };
        let mut store = replica_store();
        restore_at_start(&mut store, &complete);
        assert_eq!(store.replication.replid, ID_A);
        assert_eq!(store.replication.master_repl_offset, 99);
        let cached = store.replication.replica_side.cached.clone().unwrap();
        assert_eq!(
            (cached.replid.as_str(), cached.offset, cached.db),
            (ID_A, 99, 3)
        );
        for broken in [
            SaveInfo {
                repl_offset: Some(-1),
                ..complete.clone()
            },
            SaveInfo {
                repl_stream_db: None,
                ..complete.clone()
            },
            SaveInfo {
                repl_id: Some("short".into()),
                ..complete.clone()
            },
        ] {
            let mut store = replica_store();
            store.replication.replica_side.cached = None;
            restore_at_start(&mut store, &broken);
            assert_eq!(store.replication.replica_side.cached, None, "{broken:?}");
        }
        // A master ignores it (that is the master side's business).
        let mut master = Store::new(4);
        restore_at_start(&mut master, &complete);
        assert_ne!(master.replication.replid, ID_A);
    }

    #[test]
    fn sub_replicas_wait_until_the_link_is_up() {
        let mut store = replica_store();
        assert!(sync_refusal(&store).unwrap().starts_with("NOMASTERLINK"));
        store.replication.replica_side.state = LinkState::Connected;
        assert_eq!(sync_refusal(&store), None);
        assert_eq!(sync_refusal(&Store::new(1)), None);
    }

    #[test]
    fn refusals_on_a_replica() {
        let mut config = Config::default();
        let mut store = replica_store();
        let write = flags::WRITE;
        let read = flags::READONLY;
        let stale = flags::STALE;
        assert_eq!(
            command_refusal(&config, &store, write, false),
            Some("READONLY You can't write against a read only replica.")
        );
        assert_eq!(command_refusal(&config, &store, write, true), None);
        assert_eq!(command_refusal(&config, &store, read, false), None);
        config.replica_serve_stale_data = false;
        assert!(command_refusal(&config, &store, read, false)
            .unwrap()
            .starts_with("MASTERDOWN"));
        assert_eq!(command_refusal(&config, &store, read | stale, false), None);
        store.replication.replica_side.state = LinkState::Connected;
        assert_eq!(command_refusal(&config, &store, read, false), None);
        config.replica_read_only = false;
        assert_eq!(command_refusal(&config, &store, write, false), None);
        assert_eq!(command_refusal(&config, &Store::new(1), write, false), None);
    }

    #[test]
    fn info_fields_follow_the_link_state() {
        let config = Config::default();
        let mut store = replica_store();
        store.replication.replica_side.cached = None;
        let mut out = String::new();
        info_fields(&store, &config, 10_000, &mut out);
        assert_eq!(
            out,
            "master_host:127.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\n\
master_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:1\r\n\
slave_repl_offset:1\r\nmaster_link_down_since_seconds:-1\r\nslave_priority:100\r\n\
slave_read_only:1\r\nreplica_announced:1\r\n"
        );
        let side = &mut store.replication.replica_side;
        side.state = LinkState::Transfer;
        side.transfer = TransferProgress {
            size: 200,
            read: 50,
            last_io_ms: 8_000,
            loading: false,
        };
        let mut out = String::new();
        info_fields(&store, &config, 10_000, &mut out);
        assert!(out.contains(
            "master_sync_in_progress:1\r\nslave_read_repl_offset:1\r\nslave_repl_offset:1\r\n\
master_sync_total_bytes:200\r\nmaster_sync_read_bytes:50\r\nmaster_sync_left_bytes:150\r\n\
master_sync_perc:25.00\r\nmaster_sync_last_io_seconds_ago:2\r\nmaster_link_down_since_seconds:-1\r\n"
        ));
        let side = &mut store.replication.replica_side;
        side.state = LinkState::Connected;
        side.master_link = Some(MasterHistory {
            last_interaction_ms: 7_000,
            ..history(ID_A, 55)
        });
        let mut out = String::new();
        info_fields(&store, &config, 10_000, &mut out);
        assert!(out.contains("master_link_status:up\r\nmaster_last_io_seconds_ago:3\r\n"));
        assert!(out.contains("slave_repl_offset:55\r\n"));
        assert!(!out.contains("master_link_down_since_seconds"));
    }

    #[test]
    fn role_names() {
        assert_eq!(LinkState::Connect.role_name(), "connect");
        assert_eq!(LinkState::Connecting.role_name(), "connecting");
        assert_eq!(LinkState::ReceiveCapa.role_name(), "handshake");
        assert_eq!(LinkState::Transfer.role_name(), "sync");
        assert_eq!(LinkState::Connected.role_name(), "connected");
    }
}
