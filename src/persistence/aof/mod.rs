//! The append-only file, in Redis 7.0's multi-part layout.
//!
//! ```text
//! <dir>/<appenddirname>/
//!     <appendfilename>.manifest           which files make up the AOF (see [`manifest`])
//!     <appendfilename>.<n>.base.rdb       snapshot from the last rewrite (RDB preamble)
//!        or .<n>.base.aof                  ... or as commands (aof-use-rdb-preamble no)
//!     <appendfilename>.<m>.incr.aof       commands since then, oldest first
//! ```
//!
//! **Appending.** Every write command is encoded once, into the replication stream
//! ([`crate::replication::Propagation`]), inside the keyspace lock. When the critical section
//! ends ([`Store::end_batch`]) the AOF takes the batch's bytes ([`Aof::feed`]) and hands them
//! to the kernel through its own io_uring ([`io::Ring`]), still under the lock, so files hold
//! commands in execution order. The fsync policy decides the rest:
//! - `always`: batches are kept until an event loop is about to send replies; then, with the
//!   keyspace locked, everything kept (from every core) is written with one write linked to
//!   one fdatasync, waited for ([`sync_for_replies`]). No reply leaves before the writes it
//!   acknowledges are on disk, and one sync serves all clients of the turn (Redis' one
//!   write and fsync per event loop turn). An error stops the process, because replies
//!   would otherwise claim durability that is not there.
//! - `everysec`: batches are kept the same way and written, all together, before the next
//!   reply leaves (group commit), with one `pwrite` waited for — a buffered io_uring file
//!   write is handed to a kernel worker here and costs ~45 µs, the syscall under 1 µs (see
//!   `Aof::write_for_replies`) — so a `kill -9` never loses an acknowledged write, as with
//!   Redis. At most once a second an fdatasync starts in the background on the AOF's ring;
//!   while it runs, new data waits for up to two seconds (Redis' postponed flush, counted in
//!   `aof_delayed_fsync` when given up). Forced flushes (file switches, shutdown) still use
//!   the ring's asynchronous appends, whose completions wake event loop 0 ([`pump`]).
//! - `no`: like `everysec` without the fsyncs.
//!
//! A failed or short write keeps the data (what landed past the last complete write is cut
//! off the file), sets `aof_last_write_status:err` and makes write commands fail with
//! `-MISCONF` until a retry (each batch, and from cron) succeeds.
//!
//! **Rewriting** ([`rewrite`]): `BGREWRITEAOF` opens a new incr file at the fork, so later
//! writes go there; the child writes a new base; when it succeeds the parent renames it in,
//! writes a manifest naming the new base and the incr files opened since the fork, and
//! deletes what became history. A failed rewrite leaves the old manifest valid.
//!
//! **Loading** ([`load`]): at start, the manifest's base then incr files, commands replayed
//! through the command table; an old single-file `appendonly.aof` is migrated into the
//! directory as Redis 7.0 does.

pub mod io;
pub mod load;
pub mod manifest;
pub mod rewrite;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::command::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::config::{AppendFsync, Config};
use crate::log;
use crate::persistence::files;
use crate::server::shared::{unix_time_ms, Shared};
use crate::storage::Store;
use manifest::Manifest;

pub use load::load_at_start;
pub use rewrite::{rewrite_finished, start_rewrite};

/// Whether the AOF is being written (Redis' `aof_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Off,
    On,
    /// Turned on at run time: the first rewrite must create the base before the AOF counts
    /// as on. Writes meanwhile go to a temporary incr file.
    WaitRewrite,
}

/// The incr file being appended to.
struct IncrFile {
    file: File,
    name: String,
}

/// Knobs read from the configuration where the AOF cannot see it (inside `end_batch`).
#[derive(Clone, Debug)]
struct Settings {
    fsync: AppendFsync,
    no_fsync_on_rewrite: bool,
    timestamps: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            fsync: AppendFsync::EverySec,
            no_fsync_on_rewrite: false,
            timestamps: false,
        }
    }
}

/// A rewrite child in progress.
#[derive(Clone, Copy, Debug)]
struct RunningRewrite {
    pid: i32,
    started_unix: u64,
    /// The base is an RDB image (`aof-use-rdb-preamble` when the rewrite started).
    rdb_format: bool,
}

/// Redis' back-off for automatic rewrites after repeated failures (`aofRewriteLimited`).
#[derive(Clone, Copy, Debug, Default)]
struct RewriteLimit {
    next_delay_minutes: u64,
    next_rewrite_unix: u64,
}

/// Everything about the AOF, kept in the keyspace ([`Store::aof`]) so it changes in the same
/// critical section as the data it records.
#[derive(Default)]
pub struct Aof {
    pub status: Status,
    settings: Settings,
    /// The manifest as last written (or read at start).
    pub manifest: Manifest,
    file: Option<IncrFile>,
    ring: Option<io::Ring>,
    /// Bytes not written yet (Redis' `aof_buf`): empty except while a flush is postponed or
    /// after a failed write.
    buf: Vec<u8>,
    /// Bytes of the base and incr files (`aof_current_size`).
    pub current_size: u64,
    /// Bytes of the incr file known written (the contiguous part; appends in flight not
    /// counted).
    last_incr_size: u64,
    /// Where the next append goes (after every append submitted).
    next_offset: u64,
    /// Emptied buffers of finished appends, reused for the next batches.
    spare: Vec<Vec<u8>>,
    /// When the last append was submitted (the coalescing window starts there).
    last_submit: Option<std::time::Instant>,
    /// How much of that file the last fsync covered.
    last_incr_fsync_offset: u64,
    /// `aof_current_size` after the last rewrite (`aof_base_size`; growth is measured from it).
    pub rewrite_base_size: u64,
    /// Unix seconds of the last fsync started (Redis' `aof_last_fsync`).
    last_fsync_unix: u64,
    /// When a flush started waiting for a background fsync (0 = not waiting).
    flush_postponed_unix: u64,
    /// Flushes that gave up waiting for a slow fsync (`aof_delayed_fsync`).
    pub delayed_fsync: u64,
    /// errno of the failed write that keeps `aof_last_write_status:err`.
    write_error: Option<i32>,
    last_write_error_log_unix: u64,
    /// Second of the last retry of a failed write.
    last_write_retry_unix: u64,
    /// Second of the last `#TS:` annotation written.
    timestamp_unix: u64,
    pub rewrite_scheduled: bool,
    rewrite: Option<RunningRewrite>,
    /// Duration of the last rewrite (`aof_last_rewrite_time_sec`, -1 = none yet).
    rewrite_time_last: Option<u64>,
    last_bgrewrite_failed: bool,
    /// Rewrites started (`aof_rewrites`).
    pub rewrites: u64,
    /// Failed rewrites in a row (`aof_rewrites_consecutive_failures`).
    pub consecutive_failures: u64,
    limit: RewriteLimit,
    /// A fork child of any kind runs (fsyncs wait when `no-appendfsync-on-rewrite yes`).
    child_active: bool,
    /// eventfd of the event loop that finishes held-back appends ([`pump`]).
    notify_fd: Option<std::os::fd::RawFd>,
}

/// Set when data waits behind an append in flight (or a slow fsync): the completion wakes
/// event loop 0, which then calls [`pump`]. Without it, the tail of a burst of writes would
/// wait for the next batch or the next cron turn.
static HELD_BACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set (under the keyspace lock) when `appendfsync always` data was taken and not yet
/// written and synced; cleared (under the lock) once it is.
static SYNC_OWED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True when replies must wait for [`sync_for_replies`] (one atomic load per send).
#[inline]
pub fn replies_wait_for_sync() -> bool {
    SYNC_OWED.load(std::sync::atomic::Ordering::Acquire)
}

/// Writes and syncs every batch taken so far (`appendfsync always`). Called by an event loop,
/// keyspace locked, before it sends replies: when this returns, every write any reply
/// acknowledges is on disk. One write and one fdatasync cover all batches since the last
/// call, from every core.
pub fn sync_for_replies(store: &mut Store) {
    if store.aof.settings.fsync == AppendFsync::Always {
        store.aof.flush(false);
    } else {
        store.aof.write_for_replies();
    }
    if store.aof.buf.is_empty() {
        SYNC_OWED.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// True when [`pump`] has work (checked by event loop 0 on every turn; one atomic load).
#[inline]
pub fn held_back() -> bool {
    HELD_BACK.load(std::sync::atomic::Ordering::Acquire)
}

/// Writes data held back while an append was in flight. Called by event loop 0, with the
/// keyspace locked, after an AOF completion woke it.
pub fn pump(store: &mut Store) {
    HELD_BACK.store(false, std::sync::atomic::Ordering::Release);
    store.aof.flush(false);
}

/// True once [`COALESCE_WINDOW`] passed since the last append was submitted (or `held`
/// bytes are many); otherwise arms the ring's timer for the rest of the window.
fn window_passed(
    last_submit: Option<std::time::Instant>,
    held: usize,
    ring: &mut io::Ring,
) -> bool {
    let Some(last) = last_submit else {
        return true;
    };
    let elapsed = last.elapsed();
    if elapsed >= COALESCE_WINDOW || held >= COALESCE_BYTES_MAX {
        return true;
    }
    ring.arm_timer(COALESCE_WINDOW - elapsed);
    false
}

/// Remembers which eventfd the AOF's completions should wake (event loop 0's).
pub fn attach(shared: &Shared, store: &mut Store) {
    store.aof.notify_fd = shared.cores.first().map(|core| core.wake_fd);
}

/// Seconds Redis waits for a slow background fsync before writing anyway.
const POSTPONE_SECS_MAX: u64 = 2;
/// Seconds between two logs of the same write error.
const WRITE_ERROR_LOG_INTERVAL_SECS: u64 = 30;
/// A buffer larger than this is freed rather than kept for reuse after a flush.
const BUFFER_KEEP_MAX: usize = 1 << 20;
/// Emptied write buffers kept for reuse.
const SPARE_BUFFERS_MAX: usize = 4;
/// Shortest time between two appends under `everysec`/`no`: batches in between are written
/// together (group commit). Each append costs a hand-off to a kernel worker (see [`io`]);
/// this bounds them to a few thousand a second whatever the request rate, and bounds how
/// long an acknowledged write waits to be handed to the kernel.
const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_micros(200);
/// Held-back data this large is written at once, window or not.
const COALESCE_BYTES_MAX: usize = 4 << 20;

fn unix_secs() -> u64 {
    unix_time_ms() / 1000
}

/// `strerror` text of an errno.
fn errno_text(errno: i32) -> String {
    crate::config::os_error_text(&std::io::Error::from_raw_os_error(errno))
}

impl Aof {
    /// True while commands are being appended (on, or waiting for its first rewrite).
    pub fn is_on(&self) -> bool {
        self.status != Status::Off
    }

    /// Bytes waiting to be written (INFO `aof_buffer_length`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True if a previous flush left data behind (postponed, or a failed write to retry).
    #[inline]
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    fn refresh_settings(&mut self, config: &Config) {
        self.settings = Settings {
            fsync: config.appendfsync,
            no_fsync_on_rewrite: config.no_appendfsync_on_rewrite,
            timestamps: config.aof_timestamp_enabled,
        };
    }

    /// Takes one batch of the replication stream and writes it (Redis' `feedAppendOnlyFile`
    /// followed by `flushAppendOnlyFile`). Returns an empty buffer for the stream to reuse.
    pub fn feed(&mut self, mut bytes: Vec<u8>) -> Vec<u8> {
        if self.file.is_none() {
            // Off, or waiting for a scheduled rewrite: the rewrite's snapshot will hold it.
            bytes.clear();
            return bytes;
        }
        if !bytes.is_empty() {
            if self.settings.timestamps {
                let now = unix_secs();
                if now > self.timestamp_unix {
                    self.timestamp_unix = now;
                    self.buf
                        .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
                }
            }
            if self.buf.is_empty() {
                std::mem::swap(&mut self.buf, &mut bytes);
            } else {
                self.buf.extend_from_slice(&bytes);
                bytes.clear();
            }
        }
        // Written (and under `always` synced) once for all the batches before the next reply
        // goes out ([`sync_for_replies`]): group commit, as Redis' one write (and fsync) per
        // event loop turn. No reply acknowledges a write the kernel does not have yet, so a
        // `kill -9` loses no acknowledged write under any policy, as with Redis.
        if !self.buf.is_empty() {
            SYNC_OWED.store(true, std::sync::atomic::Ordering::Release);
        }
        if bytes.capacity() == 0 {
            if let Some(spare) = self.spare.pop() {
                return spare;
            }
        }
        bytes
    }

    /// Writes the buffer and syncs as the policy says (Redis' `flushAppendOnlyFile`).
    ///
    /// `always`: the write and its fdatasync are waited for. `everysec` and `no`: the write
    /// is submitted and the call returns; its completion is collected by a later flush.
    /// `force` writes even while a background fsync runs, and waits until every write is
    /// done (before switching files, stopping, exiting).
    fn flush(&mut self, force: bool) {
        let Some(fd) = self.file.as_ref().map(|incr| incr.file.as_raw_fd()) else {
            return;
        };
        let policy = self.settings.fsync;
        // Under `always` nothing may be in flight behind the synced write (the policy may
        // have just changed from another one).
        self.collect_writes(force || policy == AppendFsync::Always);
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let now = unix_secs();
        let sync_in_progress = policy == AppendFsync::EverySec && ring.background_fsyncs() > 0;
        let skip_sync = self.settings.no_fsync_on_rewrite && self.child_active;
        let mut synced = false;
        if self.buf.is_empty() {
            let unsynced = self.last_incr_fsync_offset != self.last_incr_size;
            let due = match policy {
                AppendFsync::EverySec => {
                    unsynced && now > self.last_fsync_unix && !sync_in_progress
                }
                AppendFsync::Always => unsynced,
                AppendFsync::No => false,
            };
            if !due {
                return;
            }
        } else {
            // After a failed write, retry once a second (each attempt costs a round trip to
            // a kernel worker); the data waits meanwhile and writes are refused.
            if self.write_error.is_some() && !force && policy != AppendFsync::Always {
                if now <= self.last_write_retry_unix {
                    return;
                }
                self.last_write_retry_unix = now;
            }
            if policy == AppendFsync::EverySec && !force && sync_in_progress {
                HELD_BACK.store(true, std::sync::atomic::Ordering::Release);
                if self.flush_postponed_unix == 0 {
                    self.flush_postponed_unix = now;
                    return;
                }
                if now - self.flush_postponed_unix < POSTPONE_SECS_MAX {
                    return;
                }
                self.delayed_fsync += 1;
                log!(
                    Notice,
                    "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis."
                );
            }
            self.flush_postponed_unix = 0;
            if policy == AppendFsync::Always {
                // Everything submitted before is complete (collected above): this write
                // and its sync are the last word on the file.
                let written = ring.write_at(fd, self.next_offset, &self.buf, !skip_sync);
                if written.bytes != self.buf.len() {
                    self.always_write_failed(written.bytes, written.error);
                }
                self.next_offset += written.bytes as u64;
                self.wrote(written.bytes as u64);
                self.buf.clear();
                if let Some(result) = written.synced {
                    Self::always_sync_outcome(result);
                    synced = true;
                }
            } else if force
                || (ring.can_submit_write()
                    && window_passed(self.last_submit, self.buf.len(), ring))
            {
                self.last_submit = Some(std::time::Instant::now());
                let len = self.buf.len() as u64;
                let next = self.spare.pop().unwrap_or_default();
                let data = std::mem::replace(&mut self.buf, next);
                ring.submit_write(fd, self.next_offset, data);
                self.next_offset += len;
                if force {
                    self.collect_writes(true);
                }
            } else {
                // Group commit: this data goes, with what follows, when the append in flight
                // completes or the window closes; either wakes event loop 0 to [`pump`].
                HELD_BACK.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        if skip_sync {
            return;
        }
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        match policy {
            AppendFsync::Always => {
                if !synced {
                    Self::always_sync_outcome(ring.sync(fd));
                }
                self.last_incr_fsync_offset = self.last_incr_size;
                self.last_fsync_unix = now;
            }
            AppendFsync::EverySec if now > self.last_fsync_unix => {
                if !sync_in_progress {
                    // Covers what is written by now; writes still in flight are covered by
                    // the next one (`last_incr_fsync_offset` says how far this one goes).
                    ring.sync_in_background(fd);
                    self.last_incr_fsync_offset = self.last_incr_size;
                }
                self.last_fsync_unix = now;
            }
            _ => {}
        }
    }

    /// `everysec` / `no`: writes everything held, waiting for the kernel to take it (not for
    /// the disk); the once-a-second fdatasync stays in the background on the AOF's ring
    /// ([`Aof::flush`]).
    ///
    /// This one write is a plain `pwrite(2)`, not an io_uring write: on the kernels and
    /// filesystems measured here (ext4, tmpfs) a buffered file write submitted to io_uring is
    /// always handed to a kernel worker, a ~45 µs round trip, against under 1 µs for the
    /// syscall; waiting for that under the keyspace lock halved unpipelined throughput
    /// (38k vs 77k requests/s for redis-server), and not waiting would let a `kill -9` lose
    /// writes already acknowledged, which Redis never does. The fsyncs, `always`'s linked
    /// write + fdatasync and the rewrites' I/O go through the ring.
    fn write_for_replies(&mut self) {
        use std::os::unix::fs::FileExt;
        if self.file.is_none() {
            self.buf.clear();
            return;
        }
        self.collect_writes(true);
        if self.buf.is_empty() {
            return;
        }
        let Some(incr) = self.file.as_ref() else {
            return;
        };
        let mut done = 0usize;
        let mut failure = None;
        while done < self.buf.len() {
            match incr
                .file
                .write_at(&self.buf[done..], self.next_offset + done as u64)
            {
                Ok(0) => {
                    failure = Some(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "write returned 0",
                    ));
                    break;
                }
                Ok(n) => done += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let written = io::Written {
            bytes: done,
            error: failure,
            synced: None,
        };
        if let Some(error) = written.error {
            // Kept and retried (and writes refused meanwhile), as for a failed append.
            let data = std::mem::take(&mut self.buf);
            self.append_failed(written.bytes, data, error);
            return;
        }
        self.next_offset += written.bytes as u64;
        self.wrote(written.bytes as u64);
        self.buf.clear();
        // The background fdatasync, at most once a second.
        self.flush(false);
    }

    /// Counts `bytes` as written to the incr file.
    fn wrote(&mut self, bytes: u64) {
        self.current_size += bytes;
        self.last_incr_size += bytes;
        if bytes > 0 && self.write_error.take().is_some() {
            log!(
                Warning,
                "AOF write error looks solved, Redis can write again."
            );
        }
    }

    /// Takes the results of finished appends, in order (all of them, waiting, with `wait`).
    fn collect_writes(&mut self, wait: bool) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        if wait {
            ring.wait_writes();
        } else {
            ring.reap();
        }
        while let Some(done) = self.ring.as_mut().and_then(io::Ring::pop_completed_write) {
            if let Some(error) = done.error {
                self.append_failed(done.written, done.data, error);
                return;
            }
            self.wrote(done.written as u64);
            let mut data = done.data;
            if data.capacity() <= BUFFER_KEEP_MAX && self.spare.len() < SPARE_BUFFERS_MAX {
                data.clear();
                self.spare.push(data);
            }
        }
    }

    /// An append stopped short: everything from it on is taken back (after the writes still
    /// in flight finish), cut off the file, and kept to be written again; writes are refused
    /// with `-MISCONF` meanwhile (Redis' error branch of `flushAppendOnlyFile`).
    fn append_failed(&mut self, written: usize, data: Vec<u8>, error: std::io::Error) {
        let now = unix_secs();
        let can_log = self.last_write_error_log_unix == 0
            || now.saturating_sub(self.last_write_error_log_unix) > WRITE_ERROR_LOG_INTERVAL_SECS;
        if can_log {
            self.last_write_error_log_unix = now;
        }
        let errno = if written == 0 {
            if can_log {
                log!(
                    Warning,
                    "Error writing to the AOF file: {}",
                    crate::config::os_error_text(&error)
                );
            }
            error.raw_os_error().unwrap_or(libc::EIO)
        } else {
            if can_log {
                log!(
                    Warning,
                    "Short write while writing to the AOF file: (nwritten={written}, expected={})",
                    data.len()
                );
            }
            libc::ENOSPC
        };
        let mut pending = data;
        if let Some(ring) = self.ring.as_mut() {
            ring.wait_writes();
            while let Some(later) = ring.pop_completed_write() {
                pending.extend_from_slice(&later.data);
            }
        }
        pending.extend_from_slice(&self.buf);
        self.buf = pending;
        // Whatever landed past the last complete write goes; the next attempt rewrites it.
        let truncated = self
            .file
            .as_ref()
            .map(|incr| incr.file.set_len(self.last_incr_size));
        if let Some(Err(error)) = truncated {
            if can_log {
                log!(
                    Warning,
                    "Could not remove short write from the append-only file.  Redis may refuse to load the AOF the next time it starts.  ftruncate: {}",
                    crate::config::os_error_text(&error)
                );
            }
        }
        self.next_offset = self.last_incr_size;
        self.write_error = Some(errno);
    }

    /// Under `appendfsync always` a failed sync cannot be reported to the clients already
    /// answered: Redis exits, and so do we.
    fn always_sync_outcome(result: std::io::Result<()>) {
        if let Err(error) = result {
            log!(
                Warning,
                "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                crate::config::os_error_text(&error)
            );
            std::process::exit(1);
        }
    }

    /// A failed write under `appendfsync always`: the commands are applied and their replies
    /// wait, so the write cannot be retried later; Redis exits, and so do we.
    fn always_write_failed(&self, written: usize, error: Option<std::io::Error>) {
        match error {
            Some(error) if written == 0 => log!(
                Warning,
                "Error writing to the AOF file: {}",
                crate::config::os_error_text(&error)
            ),
            _ => log!(
                Warning,
                "Short write while writing to the AOF file: (nwritten={written}, expected={})",
                self.buf.len()
            ),
        }
        log!(
            Warning,
            "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
        );
        std::process::exit(1);
    }

    /// Makes `file` (named `name`, holding `size` bytes) the incr file appended to. The
    /// previous one, if any, is synced and closed in the background.
    fn set_incr_file(&mut self, file: File, name: String, size: u64) -> Result<(), String> {
        if self.ring.is_none() {
            self.ring = Some(io::Ring::new(self.notify_fd)?);
        }
        if let Some(previous) = self.file.take() {
            if let Some(ring) = self.ring.as_mut() {
                ring.sync_and_close_in_background(previous.file);
            }
            self.last_fsync_unix = unix_secs();
        }
        self.file = Some(IncrFile { file, name });
        self.last_incr_size = size;
        self.next_offset = size;
        self.last_incr_fsync_offset = size;
        Ok(())
    }

    /// `aof_current_size` counting appends handed to the kernel and not completed yet (Redis
    /// counts a write once `write(2)` returned; ours return later).
    pub fn size_with_in_flight(&self) -> u64 {
        self.current_size + self.next_offset.saturating_sub(self.last_incr_size)
    }

    /// Name of the incr file being written.
    pub fn incr_name(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.name.as_str())
    }

    /// True while a rewrite child runs.
    pub fn rewrite_in_progress(&self) -> bool {
        self.rewrite.is_some()
    }
}

/// The AOF directory, relative to the working directory (`dir`).
pub fn dir_path(config: &Config) -> PathBuf {
    PathBuf::from(&config.appenddirname)
}

/// Writes the manifest (atomically: temp file, fsync, rename, directory fsync) if it changed.
fn persist_manifest(dir: &Path, filename: &str, manifest: &mut Manifest) -> Result<(), String> {
    if !manifest.dirty {
        return Ok(());
    }
    let path = dir.join(manifest::manifest_name(filename));
    let text = manifest.to_bytes();
    files::replace_atomically(&path, |file| std::io::Write::write_all(file, &text)).map_err(
        |error| {
            let message = format!(
                "Error trying to write the AOF manifest file {}: {}",
                path.display(),
                crate::config::os_error_text(&error)
            );
            log!(Warning, "{message}");
            message
        },
    )?;
    manifest.dirty = false;
    Ok(())
}

/// Opens (creating) an incr file for appending; returns it and its current size.
fn open_incr(path: &Path, truncate: bool) -> std::io::Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o644)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// Deletes the history files the manifest lists and writes the manifest without them (Redis'
/// `aofDelHistoryFiles`). The unlinks run on a helper thread: a large file can take a while.
fn delete_history(config: &Config, aof: &mut Aof) {
    if aof.manifest.history.is_empty() || config.aof_disable_auto_gc {
        return;
    }
    let dir = dir_path(config);
    let mut doomed = Vec::new();
    for info in std::mem::take(&mut aof.manifest.history) {
        log!(
            Notice,
            "Removing the history file {} in the background",
            info.name
        );
        doomed.push(dir.join(&info.name));
    }
    aof.manifest.dirty = true;
    // The manifest no longer names them before they go, so a crash in between leaves only
    // unreferenced files.
    let _ = persist_manifest(&dir, &config.appendfilename, &mut aof.manifest);
    unlink_in_background(doomed);
}

/// Removes files on a helper thread (Redis' `bg_unlink`).
fn unlink_in_background(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ringkv-aof-unlink".into())
        .spawn({
            let paths = paths.clone();
            move || {
                for path in paths {
                    let _ = std::fs::remove_file(path);
                }
            }
        });
    if spawned.is_err() {
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether any fork child runs (an RDB save or a rewrite).
fn child_running(store: &Store) -> bool {
    store.persistence.child.is_some()
}

/// The `-MISCONF` refusal of writes while the AOF cannot be written (or synced). Looks at
/// finished appends first (no system call), so a failure is known as soon as it happened.
pub fn write_refusal(store: &mut Store) -> Option<String> {
    let aof = &mut store.aof;
    if !aof.is_on() {
        return None;
    }
    if aof.ring.as_mut().is_some_and(|ring| ring.has_completions()) {
        aof.collect_writes(false);
    }
    let errno = aof
        .write_error
        .or_else(|| aof.ring.as_ref().and_then(|r| r.background_error))?;
    Some(format!(
        "MISCONF Errors writing to the AOF file: {}",
        errno_text(errno)
    ))
}

/// Once per cron turn on core 0, under the keyspace lock: refreshes the knobs, reaps fsync
/// completions, retries postponed or failed writes, the idle-time fsync, and starts
/// scheduled and automatic rewrites.
pub fn cron(shared: &Shared, store: &mut Store, now_ms: u64) {
    let config = shared.config();
    let now = now_ms / 1000;
    store.aof.refresh_settings(&config);
    store.aof.child_active = child_running(store);
    if let Some(ring) = store.aof.ring.as_mut() {
        ring.reap();
    }
    if store.aof.rewrite_scheduled
        && !child_running(store)
        && !rewrite::limited(&mut store.aof, now)
    {
        if let Err(error) = start_rewrite(shared, store) {
            log!(
                Warning,
                "Can't rewrite append only file in background: {error}"
            );
        }
    }
    if store.aof.is_on()
        && !child_running(store)
        && config.auto_aof_rewrite_percentage > 0
        && store.aof.size_with_in_flight() > config.auto_aof_rewrite_min_size
        && store.aof.status == Status::On
    {
        let base = store.aof.rewrite_base_size.max(1);
        let growth = (store.aof.size_with_in_flight() * 100 / base) as i64 - 100;
        if growth >= config.auto_aof_rewrite_percentage as i64
            && !rewrite::limited(&mut store.aof, now)
        {
            log!(
                Notice,
                "Starting automatic rewriting of AOF on {growth}% growth"
            );
            if let Err(error) = start_rewrite(shared, store) {
                log!(
                    Warning,
                    "Can't rewrite append only file in background: {error}"
                );
            }
        }
    }
    // Postponed flushes, retries after a write error, and the fsync of data written by
    // batches since the last one (everysec) are all decided by the flush itself.
    store.aof.flush(false);
}

/// The INFO persistence lines Redis 7.0 prints for the AOF: first `aof_enabled` through
/// `aof_last_cow_size`, then the lines shown only while the AOF is on.
pub fn info_lines(store: &Store, now_ms: u64) -> (String, String) {
    let aof = &store.aof;
    let now = now_ms / 1000;
    let write_ok = aof.write_error.is_none()
        && aof
            .ring
            .as_ref()
            .is_none_or(|ring| ring.background_error.is_none());
    let always = format!(
        "aof_enabled:{}\r\n\
aof_rewrite_in_progress:{}\r\n\
aof_rewrite_scheduled:{}\r\n\
aof_last_rewrite_time_sec:{}\r\n\
aof_current_rewrite_time_sec:{}\r\n\
aof_last_bgrewrite_status:{}\r\n\
aof_rewrites:{}\r\n\
aof_rewrites_consecutive_failures:{}\r\n\
aof_last_write_status:{}\r\n\
aof_last_cow_size:{}\r\n",
        aof.is_on() as u8,
        aof.rewrite.is_some() as u8,
        aof.rewrite_scheduled as u8,
        aof.rewrite_time_last.map_or(-1, |t| t as i64),
        aof.rewrite
            .map_or(-1, |r| now.saturating_sub(r.started_unix) as i64),
        if aof.last_bgrewrite_failed {
            "err"
        } else {
            "ok"
        },
        aof.rewrites,
        aof.consecutive_failures,
        if write_ok { "ok" } else { "err" },
        store.persistence.aof_last_cow_size,
    );
    let when_on = if aof.is_on() {
        format!(
            "aof_current_size:{}\r\n\
aof_base_size:{}\r\n\
aof_pending_rewrite:{}\r\n\
aof_buffer_length:{}\r\n\
aof_pending_bio_fsync:{}\r\n\
aof_delayed_fsync:{}\r\n",
            aof.size_with_in_flight(),
            aof.rewrite_base_size,
            aof.rewrite_scheduled as u8,
            aof.buf.len(),
            aof.ring.as_ref().map_or(0, |r| r.background_fsyncs()),
            aof.delayed_fsync,
        )
    } else {
        String::new()
    };
    (always, when_on)
}

/// At shutdown: writes what is buffered and fsyncs the file (Redis' "Calling fsync() on the
/// AOF file."), then waits for background fsyncs.
pub fn flush_at_shutdown(store: &mut Store) {
    if !store.aof.is_on() {
        return;
    }
    store.end_batch();
    log!(Notice, "Calling fsync() on the AOF file.");
    let aof = &mut store.aof;
    aof.flush(true);
    if let (Some(incr), Some(ring)) = (aof.file.as_ref(), aof.ring.as_mut()) {
        if let Err(error) = ring.sync(incr.file.as_raw_fd()) {
            log!(
                Warning,
                "Fail to fsync the AOF file: {}.",
                crate::config::os_error_text(&error)
            );
        }
        ring.drain();
    }
}

/// `CONFIG SET appendonly yes` while off: the AOF is created by a rewrite (scheduled if
/// another child runs or inside MULTI). Redis' `startAppendOnly`.
fn start_appending(shared: &Shared, store: &mut Store, in_exec: bool) -> Result<(), String> {
    store.aof.status = Status::WaitRewrite;
    let kind = store.persistence.child_kind();
    if kind.is_some() && kind != Some(crate::persistence::fork::ChildKind::AofRewrite) {
        store.aof.rewrite_scheduled = true;
        log!(
            Warning,
            "AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible."
        );
    } else if in_exec {
        store.aof.rewrite_scheduled = true;
        log!(
            Warning,
            "AOF was enabled during a transaction. An AOF background was scheduled to start when possible."
        );
    } else {
        if kind == Some(crate::persistence::fork::ChildKind::AofRewrite) {
            log!(
                Warning,
                "AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now."
            );
            kill_rewrite_child(&shared.config(), store);
        }
        if let Err(error) = start_rewrite(shared, store) {
            store.aof.status = Status::Off;
            log!(Warning, "{error}");
            log!(
                Warning,
                "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error."
            );
            return Err("Unable to turn on AOF. Check server logs.".into());
        }
    }
    store.propagation.enabled = true;
    store.aof.last_fsync_unix = unix_secs();
    if let Some(ring) = store.aof.ring.as_mut() {
        if ring.background_error.take().is_some() {
            log!(
                Warning,
                "AOF reopen, just ignore the AOF fsync error in bio job"
            );
        }
    }
    if store.aof.write_error.take().is_some() {
        log!(Warning, "AOF reopen, just ignore the last error.");
    }
    Ok(())
}

/// Stops a running rewrite child and forgets it (its temporary file is removed).
fn kill_rewrite_child(config: &Config, store: &mut Store) {
    if store.persistence.child_kind() != Some(crate::persistence::fork::ChildKind::AofRewrite) {
        return;
    }
    if let Some(pid) = store.persistence.child.as_ref().map(|c| c.pid) {
        log!(Notice, "Killing running AOF rewrite child: {pid}");
        crate::persistence::fork::kill_child(store);
        rewrite::remove_temp_files(config, pid);
    }
    store.aof.rewrite = None;
}

/// `CONFIG SET appendonly no` while on: final write and fsync, close, stop (Redis'
/// `stopAppendOnly`).
fn stop_appending(config: &Config, store: &mut Store) {
    store.end_batch();
    let aof = &mut store.aof;
    aof.flush(true);
    if let (Some(incr), Some(ring)) = (aof.file.as_ref(), aof.ring.as_mut()) {
        match ring.sync(incr.file.as_raw_fd()) {
            Ok(()) => aof.last_fsync_unix = unix_secs(),
            Err(error) => log!(
                Warning,
                "Fail to fsync the AOF file: {}",
                crate::config::os_error_text(&error)
            ),
        }
    }
    aof.file = None;
    aof.status = Status::Off;
    aof.rewrite_scheduled = false;
    aof.last_incr_size = 0;
    aof.last_incr_fsync_offset = 0;
    aof.buf = Vec::new();
    kill_rewrite_child(config, store);
    // The stream stays on while the replication backlog consumes it.
    store.propagation.enabled = store.replication.backlog.is_some();
    store.propagation.reset_selected_db();
}

/// Redis' `restartAOFAfterSYNC`: a replica swapped in its master's snapshot, so the AOF's
/// history no longer leads to the data. Appending stops and starts again with a rewrite
/// whose base is the new data (called under the keyspace lock, right after the swap).
pub fn restart_after_sync(shared: &Shared, store: &mut Store) -> Result<(), String> {
    if !store.aof.is_on() {
        return Ok(());
    }
    stop_appending(&shared.config(), store);
    start_appending(shared, store, false)
}

/// Applies a `CONFIG SET` to the AOF: knobs, and turning it on or off. Called by CONFIG SET
/// after the new configuration is published; a failure to turn it on reverts `appendonly`.
pub fn config_changed(ctx: &mut Ctx<'_>) -> CmdResult {
    let config = ctx.shared.config();
    ctx.store.aof.refresh_settings(&config);
    let on = ctx.store.aof.is_on();
    if !config.appendonly && on {
        stop_appending(&config, ctx.store);
    } else if config.appendonly && !on {
        if let Err(error) = start_appending(ctx.shared, ctx.store, ctx.client.in_exec) {
            ctx.shared.update_config(|c| c.appendonly = false);
            return Err(CmdError::new(format!(
                "ERR CONFIG SET failed (possibly related to argument 'appendonly') - {error}"
            )));
        }
    }
    Ok(())
}

pub static COMMANDS: &[CommandSpec] = &[crate::spec!(
    "bgrewriteaof",
    1,
    crate::command::flags::ADMIN | crate::command::flags::NOSCRIPT,
    0,
    0,
    0,
    "@admin @slow @dangerous",
    bgrewriteaof
)];

/// BGREWRITEAOF: starts a rewrite now, or schedules it when another child runs (or inside
/// MULTI).
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    let kind = ctx.store.persistence.child_kind();
    if kind == Some(crate::persistence::fork::ChildKind::AofRewrite) {
        return Err(CmdError::new(
            "ERR Background append only file rewriting already in progress",
        ));
    }
    if kind.is_some() || ctx.client.in_exec {
        ctx.store.aof.rewrite_scheduled = true;
        // A manual request is not held back by the failure back-off.
        ctx.store.aof.consecutive_failures = 0;
        ctx.reply
            .simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    match start_rewrite(ctx.shared, ctx.store) {
        Ok(_) => {
            ctx.reply
                .simple("Background append only file rewriting started");
            Ok(())
        }
        Err(error) => {
            log!(Warning, "{error}");
            Err(CmdError::new(
                "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ))
        }
    }
}
