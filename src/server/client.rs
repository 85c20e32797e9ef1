//! Per-connection command state: what a client has selected, queued, watched, subscribed to.
//!
//! This lives with the connection on its core and is only ever touched by that core; the
//! parts other cores must read (CLIENT LIST) are mirrored into its [`ClientInfo`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::server::shared::ClientInfo;
use crate::storage::{Bstr, WatchFlag};

/// A MULTI block being queued.
#[derive(Debug, Default)]
pub struct MultiState {
    /// Queued commands, each as its arguments.
    pub commands: Vec<Vec<Vec<u8>>>,
    /// A queued command was rejected (unknown, wrong arity): EXEC will answer EXECABORT.
    pub aborted: bool,
}

/// State of one client connection.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    /// Core owning the connection, and the connection's token on it.
    pub core: usize,
    pub conn: u64,
    /// Selected database.
    pub db: usize,
    /// Passed AUTH (or no password is required).
    pub authenticated: bool,
    pub multi: Option<MultiState>,
    /// Running the commands of an EXEC: blocking commands must not block.
    pub in_exec: bool,
    /// Keys this client WATCHes, and the flag the store sets when one changes.
    pub watched: Vec<(usize, Bstr)>,
    pub watch_dirty: WatchFlag,
    pub channels: HashSet<Bstr>,
    pub patterns: HashSet<Bstr>,
    /// In MONITOR mode: only receives the command feed.
    pub monitor: bool,
    /// Close once the pending output is sent (QUIT, protocol error).
    pub close_after_reply: bool,
    /// Blocked in BLPOP & co; absolute deadline in unix ms (0 = forever).
    pub blocked: Option<u64>,
    /// Replies are suppressed (CLIENT REPLY OFF/SKIP).
    pub reply_mode: ReplyMode,
    /// What the client announced with REPLCONF, and whether it became a replica.
    pub replica: Option<Box<crate::replication::master::ReplicaHello>>,
    /// This is a replica's link to its master (Redis' `CLIENT_MASTER`): its writes are
    /// obeyed on a read-only replica and it gets no replies.
    pub is_master: bool,
    pub info: Arc<ClientInfo>,
}

/// CLIENT REPLY modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// Skip set by the previous command: suppress this command's reply.
    SkipThis,
}

impl ClientState {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> ClientState {
        ClientState {
            id: info.id,
            core: info.core,
            conn: info.conn,
            db: 0,
            authenticated,
            multi: None,
            in_exec: false,
            watched: Vec::new(),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            monitor: false,
            close_after_reply: false,
            blocked: None,
            reply_mode: ReplyMode::On,
            replica: None,
            is_master: false,
            info,
        }
    }

    /// Subscribed to any channel or pattern (RESP2 clients are then in pub/sub mode).
    pub fn in_pubsub(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn watch_is_dirty(&self) -> bool {
        self.watch_dirty.load(Ordering::Acquire)
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }
}
