//! The replication backlog: one lock-free ring in a memory-mapped file, shared by all cores.
//!
//! Every byte of the replication stream is written here once. Replica senders (and the AOF
//! writer) are readers, each with its own cursor; they send straight from the mapping, so no
//! replica costs a copy of the stream and a slow replica costs no memory beyond the ring.
//!
//! # Offsets
//! Offsets are replication offsets as Redis counts them. Bytes are numbered from 1; the
//! master offset (`master_repl_offset`) is the number of the last byte produced. A backlog
//! created at master offset `S` ([`Backlog::create`]'s `start_offset`) stores byte `S + 1`
//! first. Internally three counters, all "bytes produced so far" in the master-offset sense:
//!
//! - `reserved`: claimed by writers (`fetch_add`), possibly not yet written;
//! - `committed`: written and published, in order; equals `master_repl_offset`;
//! - `tail`: bytes at or below it may be overwritten; the ring holds `tail+1 ..= committed`.
//!
//! Byte `n` lives at ring index `(n - 1) % capacity`. [`Backlog::first_offset`] is Redis'
//! `repl_backlog->offset` (`tail + 1`) and [`Backlog::end_offset`] is `repl_backlog->offset +
//! histlen` (`committed + 1`): the PSYNC offsets served are `first_offset ..= end_offset`
//! (see [`super::psync`]). A reader's cursor is a PSYNC-style offset: the next byte it needs.
//!
//! # Writers
//! [`Backlog::reserve`] claims `len` bytes with one `fetch_add`. Before copying, the writer
//! makes room: it waits until the bytes it will overwrite are committed, raises `tail` past
//! them (by up to [`tail_step`] more, so most writers find it done and skip this), and waits
//! for any reader still holding a grant on them (below). [`Reservation::copy`]
//! fills the claim (splitting at the ring's end); [`Reservation::commit`] publishes it.
//! Commits happen in offset order: a writer whose predecessor has not committed waits for it.
//! That wait is short and bounded in ringkv because reservations are taken inside the keyspace
//! critical section ([`Store::end_batch`](crate::storage::Store::end_batch)): the predecessor
//! is a writer that already ran its command and is copying bytes, never one waiting for a
//! lock; and the reservation order is the execution order, so the stream is too.
//!
//! A record larger than the capacity is refused ([`RecordTooLarge`]): it would overwrite its
//! own beginning, so no reader could ever be given it whole, and splitting it would only make
//! every reader miss part of it. The caller must cut the history instead (readers then need a
//! full resync), or — better — keep `repl-backlog-size` above the largest write batch.
//!
//! # Readers, and why a byte is never overwritten while granted
//! A reader calls [`Reader::read`] and gets a [`Grant`]: up to two slices of committed bytes
//! (two when they wrap), valid while the grant lives. We chose *writers never overwrite
//! granted bytes* over *readers validate after use* (seqlock): a sender hands the bytes to
//! `send()`, which cannot be taken back, so checking afterwards would let a replica receive
//! and execute torn commands before the link is dropped; and a Rust slice over bytes that are
//! being changed is undefined behaviour. With grants, whatever a reader sends is intact.
//!
//! The handshake is Dekker-style, all sequentially consistent: a reader publishes its cursor
//! as a pin, then loads `tail`; a writer raises `tail`, then loads every pin. Either the reader
//! sees the new tail (and reports [`Overrun`] without touching the bytes) or the writer sees
//! the pin and waits until the grant is dropped. A reader that is not holding a grant pins
//! nothing: a slow replica never slows writers, it is overrun (the replica output-buffer limit
//! of ringkv) and needs a full resync.
//!
//! A writer only ever waits for a grant on bytes a full ring behind, and only for as long as
//! that grant is held. So a grant must be held for a non-blocking copy or syscall only:
//! `writev`/`send` with `MSG_DONTWAIT` on a socket, a `write` to a file — never across a
//! blocking call, an `await`, an io_uring submission whose completion comes later, or a
//! keyspace lock (a writer holding that lock might be waiting for the grant: deadlock). A
//! thread holding a grant must not reserve (debug builds assert this).
//!
//! # A sender, with zero per-replica copies
//! ```no_run
//! # use ringkv::replication::backlog::Backlog;
//! # use std::io::Write;
//! # fn send(backlog: &Backlog, psync_offset: u64, socket: &mut std::net::TcpStream) {
//! let mut reader = backlog.reader(psync_offset).expect("offset came from psync::decide");
//! loop {
//!     let grant = match reader.read(256 << 10) {
//!         Ok(grant) => grant,
//!         Err(_overrun) => return, // disconnect: the replica needs a full resync
//!     };
//!     if grant.is_empty() {
//!         break; // wait for more commits (the event loop is woken after end_batch)
//!     }
//!     // Non-blocking socket: the kernel copies what fits from the mapping, then we let go.
//!     match socket.write_vectored(&grant.io_slices()) {
//!         Ok(sent) => grant.advance(sent),
//!         Err(_would_block) => break, // grant dropped; retry when writable
//!     }
//! }
//! # }
//! ```
//!
//! # Memory and the page cache
//! The ring is a `MAP_SHARED` file mapping, so its size is bounded by disk, not heap: many-GB
//! backlogs are fine. Its pages live in the page cache; the kernel writes dirty pages back in
//! the background (nothing here fsyncs except [`Backlog::flush`]). Costs to know:
//! - First touch of a page faults (≈ 2 GB/s on the reference machine). [`Backlog::create`]
//!   allocates the file's blocks up front (`posix_fallocate`, so a full disk is an error at
//!   creation rather than `SIGBUS` on a later write) and pre-faults, writable, the
//!   [`PREFAULT_AHEAD`] bytes writers will touch next (`MADV_POPULATE_WRITE`, or `WILLNEED`
//!   on older kernels). Further pages fault on first use.
//! - After writeback cleans a page the kernel write-protects it again, so the next write
//!   takes a minor fault (no I/O) — once per page per writeback cycle.
//! - Under memory pressure clean pages can be evicted; writing an evicted page then reads it
//!   from disk first. Keep the backlog well below free RAM, or place it on tmpfs when
//!   surviving a reboot does not matter (it still survives a process restart there).
//! - The mapping is `MADV_DONTFORK`: a fork child (snapshots) does not inherit it, so the
//!   child can never write the stream, and `fork` has less to copy.
//!
//! # Surviving a restart
//! The first 4 KiB page of the file is a header: magic, version, capacity, start offset, the
//! replication ID, and the live `committed` and `tail` counters themselves (atomics in the
//! mapping), so the file always says which offsets the ring holds. Stores reach the page cache
//! immediately, so a killed process loses nothing committed; after an OS crash only what
//! [`Backlog::flush`] made durable can be trusted. [`Backlog::open_existing`] validates the
//! header and resumes writing at `committed` (bytes reserved but never committed are gone).
//! The file is `flock`ed while open: two owners would corrupt it.

use std::cell::Cell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::utils::CachePadded;

/// Bytes of header before the ring data.
pub const HEADER_LEN: usize = 4096;
/// Most readers a backlog serves at once (replicas plus the AOF writer).
pub const MAX_READERS: usize = 256;
/// How much of the ring ahead of the writers is pre-faulted at creation and reopening.
pub const PREFAULT_AHEAD: u64 = 64 << 20;
/// Length of a replication ID (Redis' `CONFIG_RUN_ID_SIZE`).
pub const REPLID_LEN: usize = 40;

const MAGIC: [u8; 8] = *b"RKVBKLOG";
const VERSION: u32 = 1;
const AT_VERSION: usize = 8;
const AT_CAPACITY: usize = 16;
const AT_START: usize = 24;
const AT_REPLID: usize = 32;
/// `committed` and `tail` live in the header, each on its own cache line.
const AT_COMMITTED: usize = 128;
const AT_TAIL: usize = 192;
/// Bytes of the header that carry meaning (read before mapping to validate the file).
const HEADER_USED: usize = AT_TAIL + 8;

const UNPINNED: u64 = u64::MAX;

thread_local! {
    /// Grants held by this thread; reserving while holding one could deadlock.
    static GRANTS_HELD: Cell<u32> = const { Cell::new(0) };
}

/// A record longer than the ring: refused, nothing was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTooLarge {
    pub len: usize,
    pub capacity: u64,
}

impl fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {}-byte record does not fit in a {}-byte replication backlog",
            self.len, self.capacity
        )
    }
}

impl std::error::Error for RecordTooLarge {}

/// The reader's cursor fell behind the ring: the bytes it needs were, or may be being,
/// overwritten. Permanent for this reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    /// PSYNC-style offset the reader needed.
    pub cursor: u64,
    /// Oldest offset the ring holds now.
    pub first_offset: u64,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replication backlog overrun: reader needs offset {} but the oldest byte held is {}",
            self.cursor, self.first_offset
        )
    }
}

impl std::error::Error for Overrun {}

/// Why [`Backlog::reader`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderError {
    /// The offset is not in `first ..= end`.
    OutOfRange { offset: u64, first: u64, end: u64 },
    /// [`MAX_READERS`] readers are attached already.
    NoFreeSlot,
}

impl fmt::Display for ReaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaderError::OutOfRange { offset, first, end } => write!(
                f,
                "offset {offset} is outside the replication backlog (it holds {first}..={end})"
            ),
            ReaderError::NoFreeSlot => write!(
                f,
                "replication backlog already has {MAX_READERS} readers attached"
            ),
        }
    }
}

impl std::error::Error for ReaderError {}

/// One reader's published state.
struct Slot {
    taken: AtomicBool,
    /// The cursor (as a counter: bytes before it) while a grant is held, else `UNPINNED`.
    pin: AtomicU64,
}

struct Inner {
    /// Start of the mapping: header, then `capacity` bytes of ring.
    base: *mut u8,
    map_len: usize,
    capacity: u64,
    reserved: CachePadded<AtomicU64>,
    slots: Box<[CachePadded<Slot>]>,
    /// Slots ever taken (high-water mark): writers scan only these.
    slots_used: AtomicUsize,
    replid: Mutex<String>,
    /// Keeps the `flock` for as long as the mapping lives.
    _file: File,
    /// Where the file was opened (relative to `dir`), to remove it when the history ends.
    path: PathBuf,
}

// SAFETY: `base` points into a shared mapping owned by `Inner` and unmapped only in its
// `Drop`. All shared mutable state in the mapping is either accessed through atomics (the
// counters) or protected by the reservation/grant protocol described in the module doc (ring
// bytes: one writer per byte range, never overwritten while granted) or by `replid`'s mutex
// (the header's ID bytes).
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

impl Inner {
    fn counter(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at.is_multiple_of(8) && at + 8 <= HEADER_LEN);
        // SAFETY: `base` is page-aligned and `at` is 8-aligned inside the header, so the
        // pointer is aligned and in bounds for the mapping's whole life (which outlives
        // `&self`). These header words are only ever accessed as atomics once the backlog is
        // shared.
        unsafe { &*(self.base.add(at) as *const AtomicU64) }
    }

    fn committed(&self) -> &AtomicU64 {
        self.counter(AT_COMMITTED)
    }

    fn tail(&self) -> &AtomicU64 {
        self.counter(AT_TAIL)
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the mapping is `HEADER_LEN + capacity` bytes long.
        unsafe { self.base.add(HEADER_LEN) }
    }

    fn index(&self, counter: u64) -> usize {
        (counter % self.capacity) as usize
    }

    /// Ring index ranges of `len` bytes starting after `counter` bytes: at most two.
    fn ranges(&self, counter: u64, len: u64) -> [(usize, usize); 2] {
        let at = self.index(counter);
        let first = len.min(self.capacity - at as u64) as usize;
        [(at, first), (0, len as usize - first)]
    }

    /// Makes the ring bytes of `[end - capacity, end)` safe to overwrite: they are committed,
    /// below `tail`, and no reader holds a grant on them.
    ///
    /// `tail` moves in steps of up to [`tail_step`] bytes (never past `committed`), so most
    /// writers find it already far enough and skip the shared read-modify-write and the wait
    /// for predecessors; a full ring then holds between `capacity - tail_step` and `capacity`
    /// bytes of history (Redis trims its backlog in 16 KiB blocks the same way).
    fn make_room(&self, end: u64) {
        let overwrite_to = end.saturating_sub(self.capacity);
        if overwrite_to == 0 {
            return;
        }
        // A sequentially consistent load is enough to skip the update: whoever raised `tail`
        // did it with a SeqCst RMW, so the reader/writer handshake still holds (module doc).
        if self.tail().load(Ordering::SeqCst) < overwrite_to {
            // The bytes overwritten are another writer's until it commits. It is a predecessor
            // (len <= capacity), so this never waits for itself or a successor.
            wait_until(|| self.committed().load(Ordering::Acquire) >= overwrite_to);
            let committed = self.committed().load(Ordering::Acquire);
            let step = tail_step(self.capacity);
            let target = overwrite_to.max(committed.min(overwrite_to + step));
            self.tail().fetch_max(target, Ordering::SeqCst);
        }
        // Grants on bytes this writer overwrites must be released first, even when another
        // writer raised the tail: that writer may not have finished its own scan.
        let used = self.slots_used.load(Ordering::SeqCst);
        for slot in &self.slots[..used] {
            wait_until(|| {
                let pin = slot.pin.load(Ordering::SeqCst);
                pin == UNPINNED || pin >= overwrite_to
            });
        }
    }

    /// Copies `bytes` into the ring after `counter` bytes.
    ///
    /// Safety: the caller owns those ring bytes (a reservation for which `make_room` ran).
    unsafe fn write_ring(&self, counter: u64, bytes: &[u8]) {
        let [(at, first), (_, rest)] = self.ranges(counter, bytes.len() as u64);
        // SAFETY: both ranges lie inside the ring (`ranges` splits at its end), `bytes` is a
        // separate allocation, and per the caller's contract nobody else reads or writes
        // these ring bytes until the reservation commits.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.data(), rest);
        }
    }

    /// `(tail, committed)`, consistent: `tail <= committed <= tail + capacity`.
    fn span(&self) -> (u64, u64) {
        let tail = self.tail().load(Ordering::SeqCst);
        let committed = self.committed().load(Ordering::Acquire);
        (tail.max(committed.saturating_sub(self.capacity)), committed)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped at construction; every borrow of it
        // (reservations, grants, readers) holds a reference to `Inner`, so none is alive.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.map_len) };
    }
}

/// How far `tail` may advance at once: 1/64 of the ring in whole 4 KiB pages (16 KiB for
/// the default 1 MiB backlog; rings under 256 KiB advance exactly).
pub fn tail_step(capacity: u64) -> u64 {
    capacity / 64 / 4096 * 4096
}

/// Spins briefly, then yields, until `done()`.
fn wait_until(mut done: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 64 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// The replication backlog. Cheap to clone: clones share one ring.
#[derive(Clone)]
pub struct Backlog {
    inner: Arc<Inner>,
}

impl fmt::Debug for Backlog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("capacity", &self.inner.capacity)
            .field("first_offset", &self.first_offset())
            .field("end_offset", &self.end_offset())
            .finish()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn check_replid(replid: &[u8]) -> Result<(), String> {
    if replid.len() != REPLID_LEN || !replid.iter().all(u8::is_ascii_alphanumeric) {
        return Err(format!(
            "replication ID must be {REPLID_LEN} ASCII letters or digits, got {:?}",
            String::from_utf8_lossy(replid)
        ));
    }
    Ok(())
}

fn lock(file: &File, path: &Path) -> io::Result<()> {
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "replication backlog {} is already open (locked by another owner)",
                path.display()
            ),
        ),
        std::fs::TryLockError::Error(e) => e,
    })
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

impl Backlog {
    /// Creates (or replaces) the backlog file at `path` with a ring of `capacity` bytes, for
    /// the history `replid` whose master offset is `start_offset` now: the first byte written
    /// will be offset `start_offset + 1`.
    pub fn create(
        path: &Path,
        capacity: u64,
        replid: &str,
        start_offset: u64,
    ) -> io::Result<Backlog> {
        let bad_input = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        check_replid(replid.as_bytes()).map_err(bad_input)?;
        if capacity == 0 {
            return Err(bad_input(
                "replication backlog capacity must be at least 1 byte".into(),
            ));
        }
        if start_offset > i64::MAX as u64 / 2 {
            return Err(bad_input(format!(
                "replication offset {start_offset} is too large for a backlog"
            )));
        }
        let total = (HEADER_LEN as u64)
            .checked_add(capacity)
            .filter(|&t| t <= isize::MAX as u64)
            .ok_or_else(|| {
                bad_input(format!(
                    "replication backlog of {capacity} bytes is too large"
                ))
            })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        lock(&file, path)?;
        file.set_len(0)?;
        file.set_len(total)?;
        // SAFETY: plain syscall on an open descriptor we own.
        let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, total as libc::off_t) };
        if err != 0 && err != libc::EOPNOTSUPP && err != libc::EINVAL {
            return Err(io::Error::from_raw_os_error(err));
        }
        let base = map(&file, total as usize)?;
        let mut header = [0u8; HEADER_USED];
        header[..8].copy_from_slice(&MAGIC);
        header[AT_VERSION..AT_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        header[AT_CAPACITY..AT_CAPACITY + 8].copy_from_slice(&capacity.to_le_bytes());
        header[AT_START..AT_START + 8].copy_from_slice(&start_offset.to_le_bytes());
        header[AT_REPLID..AT_REPLID + REPLID_LEN].copy_from_slice(replid.as_bytes());
        header[AT_COMMITTED..AT_COMMITTED + 8].copy_from_slice(&start_offset.to_le_bytes());
        header[AT_TAIL..AT_TAIL + 8].copy_from_slice(&start_offset.to_le_bytes());
        // SAFETY: the mapping is at least HEADER_LEN > HEADER_USED bytes and nobody else can
        // see it yet.
        unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), base, HEADER_USED) };
        let backlog =
            Backlog::from_parts(base, total as usize, capacity, replid.into(), file, path);
        backlog.prefault(start_offset);
        Ok(backlog)
    }

    /// Reopens the backlog file a previous run left at `path`. `Ok(None)` when there is no
    /// file; an error naming the problem when it is not a valid backlog. Writing resumes at
    /// the last committed offset.
    pub fn open_existing(path: &Path) -> io::Result<Option<Backlog>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        lock(&file, path)?;
        let size = file.metadata()?.len();
        let name = path.display();
        if size < HEADER_LEN as u64 {
            return Err(invalid(format!(
                "replication backlog {name} is {size} bytes, shorter than its {HEADER_LEN}-byte header"
            )));
        }
        let mut header = [0u8; HEADER_USED];
        file.read_exact_at(&mut header, 0)?;
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
        if header[..8] != MAGIC {
            return Err(invalid(format!(
                "{name} is not a ringkv replication backlog (bad magic)"
            )));
        }
        let version = u32::from_le_bytes(header[AT_VERSION..AT_VERSION + 4].try_into().unwrap());
        if version != VERSION {
            return Err(invalid(format!(
                "replication backlog {name} has version {version}, this build reads {VERSION}"
            )));
        }
        let capacity = word(AT_CAPACITY);
        if capacity == 0 || (HEADER_LEN as u64).checked_add(capacity) != Some(size) {
            return Err(invalid(format!(
                "replication backlog {name} claims a {capacity}-byte ring but the file is {size} bytes"
            )));
        }
        if size > isize::MAX as u64 {
            return Err(invalid(format!(
                "replication backlog {name} is too large to map"
            )));
        }
        let replid = &header[AT_REPLID..AT_REPLID + REPLID_LEN];
        check_replid(replid).map_err(|m| invalid(format!("replication backlog {name}: {m}")))?;
        let (start, committed, tail) = (word(AT_START), word(AT_COMMITTED), word(AT_TAIL));
        let sane = start <= tail
            && tail <= committed
            && committed - tail <= capacity
            && committed <= i64::MAX as u64 / 2;
        if !sane {
            return Err(invalid(format!(
                "replication backlog {name} has inconsistent offsets (start {start}, tail \
                 {tail}, committed {committed}, capacity {capacity})"
            )));
        }
        let replid = String::from_utf8(replid.to_vec()).expect("checked ASCII");
        let base = map(&file, size as usize)?;
        let backlog = Backlog::from_parts(base, size as usize, capacity, replid, file, path);
        // Readers about to resync will want the history; writers the bytes after it.
        backlog.advise(tail, committed - tail, libc::MADV_WILLNEED);
        backlog.prefault(committed);
        Ok(Some(backlog))
    }

    fn from_parts(
        base: *mut u8,
        map_len: usize,
        capacity: u64,
        replid: String,
        file: File,
        path: &Path,
    ) -> Backlog {
        let inner = Inner {
            base,
            map_len,
            capacity,
            reserved: CachePadded::new(AtomicU64::new(0)),
            slots: (0..MAX_READERS)
                .map(|_| {
                    CachePadded::new(Slot {
                        taken: AtomicBool::new(false),
                        pin: AtomicU64::new(UNPINNED),
                    })
                })
                .collect(),
            slots_used: AtomicUsize::new(0),
            replid: Mutex::new(replid),
            _file: file,
            path: path.to_path_buf(),
        };
        let committed = inner.committed().load(Ordering::Relaxed);
        inner.reserved.store(committed, Ordering::Relaxed);
        Backlog {
            inner: Arc::new(inner),
        }
    }

    /// Pre-faults, writable, the ring bytes writers will fill next.
    fn prefault(&self, after: u64) {
        let len = self.inner.capacity.min(PREFAULT_AHEAD);
        if !self.advise(after, len, libc::MADV_POPULATE_WRITE) {
            self.advise(after, len, libc::MADV_WILLNEED);
        }
    }

    /// `madvise` over the ring bytes of `len` bytes after `counter`; false if refused.
    fn advise(&self, counter: u64, len: u64, advice: libc::c_int) -> bool {
        let page = page_size();
        let mut ok = true;
        for (at, n) in self.inner.ranges(counter, len) {
            if n == 0 {
                continue;
            }
            let start = (HEADER_LEN + at) / page * page;
            let end = (HEADER_LEN + at + n).div_ceil(page) * page;
            let end = end.min(self.inner.map_len.div_ceil(page) * page);
            // SAFETY: advice on whole pages of our own mapping (the last page may extend past
            // the file's end within the mapping's final page, which the kernel accepts);
            // advice never changes the contents.
            let rc = unsafe {
                libc::madvise(
                    self.inner.base.add(start) as *mut libc::c_void,
                    end - start,
                    advice,
                )
            };
            ok &= rc == 0;
        }
        ok
    }

    /// The file this ring lives in, as it was opened (relative to `dir`).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The replication ID this history belongs to.
    pub fn replid(&self) -> String {
        self.inner.replid.lock().unwrap().clone()
    }

    /// Records a new replication ID for the history (e.g. on promotion, when the old ID moves
    /// to `replid2`); persisted in the header.
    pub fn set_replid(&self, replid: &str) -> io::Result<()> {
        check_replid(replid.as_bytes())
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
        let mut current = self.inner.replid.lock().unwrap();
        // SAFETY: the ID bytes are inside the header and only written here, under the mutex;
        // nothing in this process reads them through the mapping after opening.
        unsafe {
            std::ptr::copy_nonoverlapping(
                replid.as_ptr(),
                self.inner.base.add(AT_REPLID),
                REPLID_LEN,
            )
        };
        *current = replid.to_owned();
        Ok(())
    }

    /// Offset of the oldest byte held (Redis' `repl_backlog->offset`).
    pub fn first_offset(&self) -> u64 {
        self.inner.span().0 + 1
    }

    /// One past the newest committed byte (Redis' `repl_backlog->offset + histlen`): the
    /// largest PSYNC offset that can continue.
    pub fn end_offset(&self) -> u64 {
        self.inner.committed().load(Ordering::Acquire) + 1
    }

    /// Offset of the newest committed byte (`master_repl_offset`).
    pub fn master_offset(&self) -> u64 {
        self.inner.committed().load(Ordering::Acquire)
    }

    /// Bytes of history held (Redis' `repl_backlog_histlen`).
    pub fn histlen(&self) -> u64 {
        let (tail, committed) = self.inner.span();
        committed - tail
    }

    /// Claims `len` bytes at the end of the stream. Fill them with [`Reservation::copy`] and
    /// publish them with [`Reservation::commit`].
    pub fn reserve(&self, len: usize) -> Result<Reservation<'_>, RecordTooLarge> {
        let inner = &*self.inner;
        if len as u64 > inner.capacity {
            return Err(RecordTooLarge {
                len,
                capacity: inner.capacity,
            });
        }
        debug_assert_eq!(
            GRANTS_HELD.with(Cell::get),
            0,
            "reserving while this thread holds a backlog grant can deadlock"
        );
        let start = inner.reserved.fetch_add(len as u64, Ordering::Relaxed);
        let end = start + len as u64;
        inner.make_room(end);
        debug_assert!(end - inner.tail().load(Ordering::Relaxed) <= inner.capacity);
        Ok(Reservation {
            inner,
            start,
            len: len as u64,
            written: 0,
            committed: false,
        })
    }

    /// Appends one record: reserve, copy, commit. Returns the master offset after it.
    pub fn append(&self, bytes: &[u8]) -> Result<u64, RecordTooLarge> {
        let mut reservation = self.reserve(bytes.len())?;
        reservation.copy(bytes);
        let end = reservation.start + reservation.len;
        reservation.commit();
        Ok(end)
    }

    /// Attaches a reader whose next byte is `offset` (a PSYNC offset): any offset in
    /// `first_offset() ..= end_offset()`.
    pub fn reader(&self, offset: u64) -> Result<Reader, ReaderError> {
        let inner = &*self.inner;
        let (tail, committed) = inner.span();
        if offset == 0 || offset - 1 < tail || offset - 1 > committed {
            return Err(ReaderError::OutOfRange {
                offset,
                first: tail + 1,
                end: committed + 1,
            });
        }
        let slot = inner
            .slots
            .iter()
            .position(|slot| {
                slot.taken
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
            .ok_or(ReaderError::NoFreeSlot)?;
        // Sequentially consistent so that a writer that does not see this slot in its scan
        // ran its tail update before any read through it (see `make_room`).
        inner.slots_used.fetch_max(slot + 1, Ordering::SeqCst);
        Ok(Reader {
            inner: self.inner.clone(),
            slot,
            position: offset - 1,
        })
    }

    /// Writes the mapping back to disk (data first, then the header that describes it), so
    /// the file survives an OS crash. Not needed to survive a process crash.
    pub fn flush(&self) -> io::Result<()> {
        // Data pages first, then the header page, when the page size lets them be told apart.
        let split = HEADER_LEN / page_size() * page_size();
        let ranges = if split == 0 {
            [(0, self.inner.map_len), (0, 0)]
        } else {
            [(split, self.inner.map_len - split), (0, split)]
        };
        for (start, len) in ranges {
            if len == 0 {
                continue;
            }
            // SAFETY: msync of a page-aligned range inside our mapping.
            let rc = unsafe {
                libc::msync(
                    self.inner.base.add(start) as *mut libc::c_void,
                    len,
                    libc::MS_SYNC,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Checks the ring's invariants on a snapshot of its counters:
    /// `tail <= committed <= reserved`, `committed - tail <= capacity`, every pinned reader
    /// cursor at or below `committed`; and when no writer is in flight, `reserved - tail <=
    /// capacity`. (That no byte is overwritten while granted is asserted by the stress tests,
    /// which check granted bytes do not change while held.)
    pub fn check_invariants(&self) -> Result<(), String> {
        let inner = &*self.inner;
        let committed_before = inner.committed().load(Ordering::Acquire);
        let tail = inner.tail().load(Ordering::SeqCst);
        let committed = inner.committed().load(Ordering::Acquire);
        let reserved = inner.reserved.load(Ordering::Acquire);
        if tail > committed {
            return Err(format!("tail {tail} is past committed {committed}"));
        }
        if committed > reserved {
            return Err(format!("committed {committed} is past reserved {reserved}"));
        }
        // `tail` was loaded after `committed_before`, and a commit raises tail first.
        if committed_before.saturating_sub(tail) > inner.capacity {
            return Err(format!(
                "ring holds {} bytes, more than its capacity {}",
                committed_before - tail,
                inner.capacity
            ));
        }
        if reserved == committed && reserved - tail > inner.capacity {
            return Err(format!(
                "reserved {reserved} is more than capacity {} past tail {tail}",
                inner.capacity
            ));
        }
        let used = inner.slots_used.load(Ordering::SeqCst);
        for (i, slot) in inner.slots[..used].iter().enumerate() {
            let pin = slot.pin.load(Ordering::SeqCst);
            let now = inner.committed().load(Ordering::Acquire);
            if pin != UNPINNED && pin > now {
                return Err(format!(
                    "reader {i} is pinned at {pin}, past committed {now}"
                ));
            }
        }
        Ok(())
    }
}

/// Creates the shared read-write mapping of `len` bytes of `file`, excluded from forks.
fn map(file: &File, len: usize) -> io::Result<*mut u8> {
    // SAFETY: maps `len` bytes of a regular file we opened read-write and sized to `len`;
    // checked against MAP_FAILED. The mapping outlives the call and is unmapped by `Inner`.
    // Nobody truncates the file while mapped: it is flocked by its single owner.
    let pointer = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if pointer == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: advice on the mapping just created, for its exact length; it only changes what
    // a fork child inherits.
    unsafe { libc::madvise(pointer, len, libc::MADV_DONTFORK) };
    Ok(pointer as *mut u8)
}

/// Bytes claimed by one writer. Must be filled and committed: dropping it uncommitted would
/// leave a hole every later writer waits on forever, so it aborts the process.
#[must_use = "a reservation must be committed"]
pub struct Reservation<'a> {
    inner: &'a Inner,
    /// Counter before the first claimed byte (its offset is `start + 1`).
    start: u64,
    len: u64,
    written: u64,
    committed: bool,
}

impl Reservation<'_> {
    /// Replication offset of the first claimed byte.
    pub fn first_offset(&self) -> u64 {
        self.start + 1
    }

    /// Appends `bytes` to the claimed region.
    ///
    /// Panics if more bytes than reserved are copied.
    pub fn copy(&mut self, bytes: &[u8]) {
        let len = bytes.len() as u64;
        assert!(
            len <= self.len - self.written,
            "copying {len} bytes into a reservation with {} of {} bytes left",
            self.len - self.written,
            self.len
        );
        debug_assert!(
            self.start + self.written + len - self.inner.tail().load(Ordering::Relaxed)
                <= self.inner.capacity
        );
        // SAFETY: these bytes belong to this reservation: `reserve` ran `make_room` for its
        // whole range and no other writer claims them; readers are only granted committed
        // bytes, and these are not committed.
        unsafe { self.inner.write_ring(self.start + self.written, bytes) };
        self.written += len;
    }

    /// Publishes the bytes, after every earlier reservation has been published.
    ///
    /// Panics if the reservation was not filled completely.
    pub fn commit(mut self) {
        assert_eq!(
            self.written, self.len,
            "committing a reservation with {} of {} bytes copied",
            self.written, self.len
        );
        let committed = self.inner.committed();
        wait_until(|| committed.load(Ordering::Acquire) == self.start);
        debug_assert!(
            self.inner.tail().load(Ordering::Relaxed) <= self.start,
            "tail passed an uncommitted reservation"
        );
        committed.store(self.start + self.len, Ordering::Release);
        self.committed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            eprintln!(
                "fatal: replication backlog reservation at offset {} ({} bytes) dropped \
                 without commit; the stream cannot continue",
                self.start + 1,
                self.len
            );
            std::process::abort();
        }
    }
}

/// One consumer's cursor into the stream (a replica sender, the AOF writer).
pub struct Reader {
    inner: Arc<Inner>,
    slot: usize,
    /// Bytes of the stream before the cursor; the next byte is offset `position + 1`.
    position: u64,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("offset", &self.offset())
            .finish()
    }
}

impl Reader {
    /// The next offset this reader needs (what it would send as a PSYNC offset).
    pub fn offset(&self) -> u64 {
        self.position + 1
    }

    /// Committed bytes not yet consumed (the replica's backlog lag).
    pub fn pending(&self) -> u64 {
        self.inner
            .committed()
            .load(Ordering::Acquire)
            .saturating_sub(self.position)
    }

    /// Whether the bytes this reader needs next are gone.
    pub fn is_overrun(&self) -> bool {
        self.position < self.inner.tail().load(Ordering::SeqCst)
    }

    /// Grants up to `max_len` committed bytes from the cursor (possibly none). The bytes stay
    /// intact until the grant is dropped; consume them with [`Grant::advance`]. Hold a grant
    /// only across non-blocking work (see the module doc).
    pub fn read(&mut self, max_len: usize) -> Result<Grant<'_>, Overrun> {
        let inner = &*self.inner;
        let slot = &inner.slots[self.slot];
        slot.pin.store(self.position, Ordering::SeqCst);
        let committed = inner.committed().load(Ordering::Acquire);
        let tail = inner.tail().load(Ordering::SeqCst);
        if self.position < tail {
            slot.pin.store(UNPINNED, Ordering::Release);
            return Err(Overrun {
                cursor: self.position + 1,
                first_offset: tail + 1,
            });
        }
        debug_assert!(self.position <= committed, "reader past committed");
        let len = (committed - self.position).min(max_len as u64);
        GRANTS_HELD.with(|held| held.set(held.get() + 1));
        Ok(Grant {
            reader: self,
            len,
            _not_send: std::marker::PhantomData,
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let slot = &self.inner.slots[self.slot];
        slot.pin.store(UNPINNED, Ordering::Release);
        slot.taken.store(false, Ordering::Release);
    }
}

/// Committed bytes lent to a reader; writers will not overwrite them until it is dropped.
/// Not `Send`: a grant is released on the thread that took it.
pub struct Grant<'a> {
    reader: &'a mut Reader,
    len: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Grant<'_> {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replication offset of the first granted byte.
    pub fn offset(&self) -> u64 {
        self.reader.position + 1
    }

    /// The granted bytes: one slice, or two when they wrap around the ring's end.
    pub fn slices(&self) -> (&[u8], Option<&[u8]>) {
        let inner = &*self.reader.inner;
        let [(at, first), (_, rest)] = inner.ranges(self.reader.position, self.len);
        // SAFETY: both ranges are inside the ring and hold committed bytes (the reader saw
        // `committed` with Acquire, so their contents are visible). No writer modifies them
        // while this grant's pin is published (`make_room` waits for it), and the slices
        // borrow `self`, so they cannot outlive the pin.
        unsafe {
            let head = std::slice::from_raw_parts(inner.data().add(at), first);
            let tail = std::slice::from_raw_parts(inner.data(), rest);
            (head, (rest > 0).then_some(tail))
        }
    }

    /// The granted bytes as `IoSlice`s for `write_vectored` (the second may be empty).
    pub fn io_slices(&self) -> [IoSlice<'_>; 2] {
        let (head, tail) = self.slices();
        [IoSlice::new(head), IoSlice::new(tail.unwrap_or(&[]))]
    }

    /// Moves the cursor past the first `consumed` granted bytes and releases the grant.
    ///
    /// Panics if `consumed` exceeds the grant.
    pub fn advance(self, consumed: usize) {
        assert!(
            consumed as u64 <= self.len,
            "advancing {consumed} bytes past a {}-byte grant",
            self.len
        );
        self.reader.position += consumed as u64;
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let slot = &self.reader.inner.slots[self.reader.slot];
        slot.pin.store(UNPINNED, Ordering::Release);
        GRANTS_HELD.with(|held| held.set(held.get() - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicU32;
    use std::time::{Duration, Instant};

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";
    const ID2: &str = "fedcba9876543210fedcba9876543210fedcba98";

    fn fresh(capacity: u64, start: u64) -> (tempfile::TempDir, Backlog) {
        let dir = tempfile::tempdir().unwrap();
        let backlog = Backlog::create(&dir.path().join("backlog"), capacity, ID, start).unwrap();
        (dir, backlog)
    }

    /// Reads everything committed after the reader's cursor.
    fn drain(reader: &mut Reader, max_len: usize) -> Result<Vec<u8>, Overrun> {
        let mut out = Vec::new();
        loop {
            let grant = reader.read(max_len)?;
            if grant.is_empty() {
                return Ok(out);
            }
            let (head, tail) = grant.slices();
            out.extend_from_slice(head);
            out.extend_from_slice(tail.unwrap_or(&[]));
            let n = grant.len();
            grant.advance(n);
        }
    }

    /// Waits (bounded) until `done`, failing the test with `what` otherwise.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn offsets_follow_redis_numbering() {
        let (_dir, backlog) = fresh(1024, 1000);
        assert_eq!(
            (
                backlog.first_offset(),
                backlog.end_offset(),
                backlog.master_offset()
            ),
            (1001, 1001, 1000)
        );
        assert_eq!(backlog.histlen(), 0);
        assert_eq!(backlog.append(b"hello"), Ok(1005));
        assert_eq!(
            (
                backlog.first_offset(),
                backlog.end_offset(),
                backlog.master_offset()
            ),
            (1001, 1006, 1005)
        );
        assert_eq!(backlog.histlen(), 5);
        assert_eq!(
            drain(&mut backlog.reader(1001).unwrap(), 64).unwrap(),
            b"hello"
        );
        assert_eq!(
            drain(&mut backlog.reader(1003).unwrap(), 64).unwrap(),
            b"llo"
        );
        assert_eq!(drain(&mut backlog.reader(1006).unwrap(), 64).unwrap(), b"");
        for offset in [0, 1000, 1007] {
            assert_eq!(
                backlog.reader(offset).unwrap_err(),
                ReaderError::OutOfRange {
                    offset,
                    first: 1001,
                    end: 1006
                }
            );
        }
        backlog.check_invariants().unwrap();
    }

    #[test]
    fn wrap_around_keeps_the_newest_capacity_bytes() {
        for start in [0u64, 1_000_003] {
            let (_dir, backlog) = fresh(64, start);
            let mut reader = backlog.reader(start + 1).unwrap();
            let mut stream = Vec::new();
            for i in 0..20u8 {
                let record: Vec<u8> = (0..10).map(|j| i * 10 + j).collect();
                backlog.append(&record).unwrap();
                stream.extend_from_slice(&record);
                // A reader that keeps up gets every record intact, wrapped or not.
                assert_eq!(drain(&mut reader, 7).unwrap(), record);
                backlog.check_invariants().unwrap();
            }
            assert_eq!(backlog.histlen(), 64);
            assert_eq!(backlog.first_offset(), start + 200 - 64 + 1);
            assert_eq!(backlog.end_offset(), start + 201);
            let mut late = backlog.reader(backlog.first_offset()).unwrap();
            assert_eq!(drain(&mut late, 1000).unwrap(), &stream[200 - 64..]);
        }
    }

    #[test]
    fn a_large_ring_drops_history_in_steps() {
        let capacity = 1 << 20;
        let step = tail_step(capacity);
        assert_eq!(step, 16 << 10);
        let (_dir, backlog) = fresh(capacity, 0);
        let record = [3u8; 1000];
        let mut lowest = u64::MAX;
        for _ in 0..3000 {
            backlog.append(&record).unwrap();
            let held = backlog.histlen();
            if backlog.end_offset() > capacity + 1 {
                assert!(held + step >= capacity && held <= capacity, "holds {held}");
                lowest = lowest.min(held);
            }
            backlog.check_invariants().unwrap();
        }
        assert!(
            lowest < capacity - step / 2,
            "tail never stepped ahead: {lowest}"
        );
        let first = backlog.first_offset();
        assert_eq!(
            drain(&mut backlog.reader(first).unwrap(), 1 << 20)
                .unwrap()
                .len() as u64,
            backlog.histlen()
        );
        // Records nearly as large as the ring: the step must stop at `committed`.
        for fill in [4u8, 5, 6] {
            let big = vec![fill; capacity as usize - 10];
            backlog.append(&big).unwrap();
            backlog.check_invariants().unwrap();
            let mut reader = backlog
                .reader(backlog.end_offset() - big.len() as u64)
                .unwrap();
            assert_eq!(drain(&mut reader, 1 << 20).unwrap(), big);
        }
    }

    #[test]
    fn a_grant_across_the_ring_end_is_two_slices() {
        let (_dir, backlog) = fresh(64, 0);
        backlog.append(&[1; 60]).unwrap();
        let mut reader = backlog.reader(61).unwrap();
        backlog.append(&[2; 10]).unwrap(); // ring indices 60..64 then 0..6
        let grant = reader.read(100).unwrap();
        assert_eq!(grant.offset(), 61);
        let (head, tail) = grant.slices();
        assert_eq!(head, &[2; 4]);
        assert_eq!(tail, Some(&[2u8; 6][..]));
        let io = grant.io_slices();
        assert_eq!((io[0].len(), io[1].len()), (4, 6));
        grant.advance(5);
        let grant = reader.read(100).unwrap();
        assert_eq!(grant.slices(), (&[2u8; 5][..], None));
    }

    #[test]
    fn a_reservation_filled_in_pieces_across_the_end() {
        let (_dir, backlog) = fresh(16, 10);
        backlog.append(&[0; 12]).unwrap();
        let mut reservation = backlog.reserve(9).unwrap();
        assert_eq!(reservation.first_offset(), 23);
        reservation.copy(b"abc");
        reservation.copy(b"");
        reservation.copy(b"defghi");
        reservation.commit();
        assert_eq!(
            drain(&mut backlog.reader(23).unwrap(), 100).unwrap(),
            b"abcdefghi"
        );
        assert_eq!(backlog.first_offset(), 31 - 16 + 1);
    }

    #[test]
    #[should_panic(expected = "copying 4 bytes into a reservation with 3 of 3 bytes left")]
    fn overfilling_a_reservation_panics() {
        let (_dir, backlog) = fresh(16, 0);
        // ManuallyDrop: the panic must not reach the abort of an uncommitted drop.
        let mut reservation = std::mem::ManuallyDrop::new(backlog.reserve(3).unwrap());
        reservation.copy(b"abcd");
    }

    #[test]
    fn records_larger_than_the_ring_are_refused() {
        let (_dir, backlog) = fresh(64, 0);
        assert_eq!(
            backlog.reserve(65).err(),
            Some(RecordTooLarge {
                len: 65,
                capacity: 64
            })
        );
        assert_eq!(backlog.end_offset(), 1, "a refused record reserves nothing");
        backlog.append(&[7; 64]).unwrap();
        assert_eq!((backlog.first_offset(), backlog.end_offset()), (1, 65));
        backlog.append(&[8; 64]).unwrap();
        assert_eq!((backlog.first_offset(), backlog.end_offset()), (65, 129));
        assert_eq!(
            drain(&mut backlog.reader(65).unwrap(), 64).unwrap(),
            [8; 64]
        );
    }

    #[test]
    fn a_reader_left_behind_is_overrun() {
        let (_dir, backlog) = fresh(64, 0);
        let mut reader = backlog.reader(1).unwrap();
        for i in 0..10u8 {
            backlog.append(&[i; 10]).unwrap();
        }
        assert!(reader.is_overrun());
        assert_eq!(
            reader.read(10).err(),
            Some(Overrun {
                cursor: 1,
                first_offset: 37
            })
        );
        assert_eq!(
            reader.offset(),
            1,
            "an overrun read does not move the cursor"
        );
        let mut current = backlog.reader(37).unwrap();
        assert!(!current.is_overrun());
        assert_eq!(current.pending(), 64);
        assert_eq!(drain(&mut current, 64).unwrap().len(), 64);
        assert_eq!(current.pending(), 0);
        backlog.check_invariants().unwrap();
    }

    #[test]
    fn writers_wait_for_a_grant_on_bytes_they_would_overwrite() {
        let (_dir, backlog) = fresh(64, 0);
        let original: Vec<u8> = (0..64).collect();
        backlog.append(&original).unwrap();
        let mut reader = backlog.reader(1).unwrap();
        let grant = reader.read(64).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (backlog, done) = (backlog.clone(), done.clone());
            std::thread::spawn(move || {
                backlog.append(&[0xee; 10]).unwrap();
                done.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            !done.load(Ordering::SeqCst),
            "writer overwrote granted bytes"
        );
        assert_eq!(grant.slices(), (&original[..], None));
        drop(grant);
        wait_for("the writer after the grant was dropped", || {
            done.load(Ordering::SeqCst)
        });
        writer.join().unwrap();
        assert_eq!(
            reader.read(64).err(),
            Some(Overrun {
                cursor: 1,
                first_offset: 11
            })
        );
    }

    #[test]
    fn writers_do_not_wait_for_grants_they_do_not_overwrite() {
        let (_dir, backlog) = fresh(64, 0);
        backlog.append(&[1; 64]).unwrap();
        let mut reader = backlog.reader(21).unwrap();
        let grant = reader.read(64).unwrap();
        let writer = {
            let backlog = backlog.clone();
            std::thread::spawn(move || backlog.append(&[2; 20]).unwrap())
        };
        wait_for("a writer clear of the grant", || writer.is_finished());
        assert_eq!(writer.join().unwrap(), 84);
        assert_eq!(grant.slices(), (&[1u8; 44][..], None));
    }

    #[test]
    fn commits_publish_in_offset_order() {
        let (_dir, backlog) = fresh(1024, 0);
        let mut reader = backlog.reader(1).unwrap();
        // ManuallyDrop: a failed assertion below must not become an abort.
        let mut first = std::mem::ManuallyDrop::new(backlog.reserve(3).unwrap());
        let second = {
            let backlog = backlog.clone();
            std::thread::spawn(move || {
                let mut reservation = backlog.reserve(3).unwrap();
                reservation.copy(b"def");
                reservation.commit();
            })
        };
        wait_for("the second reservation", || {
            backlog.inner.reserved.load(Ordering::SeqCst) == 6
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!second.is_finished(), "committed before its predecessor");
        assert_eq!(backlog.end_offset(), 1);
        assert!(reader.read(10).unwrap().is_empty());
        first.copy(b"abc");
        std::mem::ManuallyDrop::into_inner(first).commit();
        wait_for("the second commit", || second.is_finished());
        second.join().unwrap();
        assert_eq!(drain(&mut reader, 10).unwrap(), b"abcdef");
    }

    #[test]
    fn the_history_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backlog");
        assert!(Backlog::open_existing(&path).unwrap().is_none());
        let backlog = Backlog::create(&path, 100, ID, 500).unwrap();
        let stream: Vec<u8> = (0..250u32).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in stream.chunks(30) {
            backlog.append(chunk).unwrap();
        }
        backlog.set_replid(ID2).unwrap();
        let (first, end) = (backlog.first_offset(), backlog.end_offset());
        assert_eq!((first, end), (651, 751));
        backlog.flush().unwrap();
        drop(backlog);

        let reopened = Backlog::open_existing(&path).unwrap().expect("file exists");
        assert_eq!(reopened.capacity(), 100);
        assert_eq!(reopened.replid(), ID2);
        assert_eq!(
            (reopened.first_offset(), reopened.end_offset()),
            (first, end)
        );
        let mut reader = reopened.reader(first).unwrap();
        assert_eq!(drain(&mut reader, 1000).unwrap(), &stream[150..]);
        let mut middle = reopened.reader(700).unwrap();
        assert_eq!(drain(&mut middle, 1000).unwrap(), &stream[199..]);
        // Writing continues at the same offsets.
        assert_eq!(reopened.append(b"more"), Ok(754));
        assert_eq!(drain(&mut middle, 1000).unwrap(), b"more");
        reopened.check_invariants().unwrap();
    }

    #[test]
    fn one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backlog");
        let _owner = Backlog::create(&path, 64, ID, 0).unwrap();
        let err = Backlog::create(&path, 64, ID, 0).unwrap_err();
        assert!(err.to_string().contains("already open"), "{err}");
        let err = Backlog::open_existing(&path).unwrap_err();
        assert!(err.to_string().contains("already open"), "{err}");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backlog");
        for (capacity, replid, start) in [
            (0, ID, 0),
            (64, "abc", 0),
            (64, "0123456789abcdef0123456789abcdef0123456!", 0),
            (64, ID, u64::MAX),
            (u64::MAX, ID, 0),
        ] {
            let err = Backlog::create(&path, capacity, replid, start).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backlog");
        let backlog = Backlog::create(&path, 64, ID, 10).unwrap();
        backlog.append(&[5; 50]).unwrap();
        backlog.append(&[6; 50]).unwrap();
        drop(backlog);
        let good = std::fs::read(&path).unwrap();
        let broken = dir.path().join("broken");

        let mut sizes: Vec<usize> = (0..=HEADER_USED + 8).collect();
        sizes.extend([HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 63, good.len() + 1]);
        for size in sizes {
            let mut bytes = good.clone();
            bytes.resize(size, 0);
            std::fs::write(&broken, &bytes).unwrap();
            let err = Backlog::open_existing(&broken).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "size {size}: {err}");
        }

        for at in 0..HEADER_USED {
            let mut bytes = good.clone();
            bytes[at] ^= 0xff;
            std::fs::write(&broken, &bytes).unwrap();
            match Backlog::open_existing(&broken) {
                Err(err) => assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {at}"),
                Ok(opened) => {
                    let opened = opened.unwrap();
                    opened.check_invariants().unwrap();
                    let first = opened.first_offset();
                    drain(&mut opened.reader(first).unwrap(), 64).unwrap();
                    opened.append(b"x").unwrap();
                }
            }
        }
    }

    #[test]
    fn capacity_of_many_gigabytes() {
        const GIB: u64 = 1 << 30;
        let capacity = 5 * GIB;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backlog");
        let backlog = Backlog::create(&path, capacity, ID, capacity - 50).unwrap();
        let record: Vec<u8> = (0..100).collect();
        backlog.append(&record).unwrap();
        let mut reader = backlog.reader(capacity - 49).unwrap();
        {
            let grant = reader.read(1000).unwrap();
            assert_eq!(grant.slices(), (&record[..50], Some(&record[50..])));
        }
        drop(reader);
        drop(backlog);
        let reopened = Backlog::open_existing(&path).unwrap().unwrap();
        assert_eq!(reopened.capacity(), capacity);
        let mut reader = reopened.reader(capacity - 49).unwrap();
        assert_eq!(drain(&mut reader, 1000).unwrap(), record);
    }

    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf29ce484222325, |hash, &b| {
            (hash ^ b as u64).wrapping_mul(0x100000001b3)
        })
    }

    const RECORD_MAGIC: u32 = 0xB10C_5EED;
    const RECORD_HEAD: usize = 24;

    /// `magic u32, len u32, writer u32, pad u32, seq u64, payload, fnv64 of all before`.
    fn record(writer: u32, seq: u64, max_payload: u64) -> Vec<u8> {
        let payload = (seq.wrapping_mul(2654435761) ^ writer as u64) % (max_payload + 1);
        let len = RECORD_HEAD + payload as usize + 8;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&writer.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend((0..payload).map(|i| (i as u8) ^ (seq as u8)));
        out.extend_from_slice(&fnv(&out).to_le_bytes());
        out
    }

    /// Parses whole records off the front of `buf`, checking each; returns how many.
    fn check_records(
        buf: &mut Vec<u8>,
        last_seq: &mut [Option<u64>],
        at_offset: u64,
        max_payload: usize,
    ) -> u64 {
        let mut used = 0;
        let mut count = 0;
        while buf.len() - used >= RECORD_HEAD {
            let word =
                |at: usize| u32::from_le_bytes(buf[used + at..used + at + 4].try_into().unwrap());
            assert_eq!(
                word(0),
                RECORD_MAGIC,
                "bad magic at offset {}",
                at_offset + used as u64
            );
            let len = word(4) as usize;
            assert!(
                (RECORD_HEAD + 8..=RECORD_HEAD + 8 + max_payload).contains(&len),
                "bad length {len}"
            );
            if buf.len() - used < len {
                break;
            }
            let rec = &buf[used..used + len];
            let sum = u64::from_le_bytes(rec[len - 8..].try_into().unwrap());
            assert_eq!(
                sum,
                fnv(&rec[..len - 8]),
                "torn record at offset {}",
                at_offset + used as u64
            );
            let writer = word(8) as usize;
            let seq = u64::from_le_bytes(rec[16..24].try_into().unwrap());
            if let Some(last) = last_seq[writer] {
                assert_eq!(seq, last + 1, "writer {writer}'s records out of order");
            }
            last_seq[writer] = Some(seq);
            used += len;
            count += 1;
        }
        buf.drain(..used);
        count
    }

    /// Writers append checksummed, numbered records; readers (one of them slow, so it lives
    /// near the tail and is overrun often) check every record they get is intact and in order,
    /// and that granted bytes never change while held.
    fn stress(capacity: u64, max_payload: u64, per_writer: u64) {
        const WRITERS: u32 = 3;
        const READERS: usize = 3;
        let deadline = Instant::now() + Duration::from_secs(20);
        let (_dir, backlog) = fresh(capacity, 12_345);
        let writers_done = Arc::new(AtomicU32::new(0));
        // Attached before any write, so each starts at a record boundary.
        let cursors: Vec<Reader> = (0..READERS)
            .map(|_| backlog.reader(12_346).unwrap())
            .collect();

        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (backlog, writers_done) = (backlog.clone(), writers_done.clone());
                std::thread::spawn(move || {
                    let mut seq = 0;
                    while seq < per_writer && Instant::now() < deadline {
                        let bytes = record(writer, seq, max_payload);
                        let mut reservation = backlog.reserve(bytes.len()).unwrap();
                        // Three copies, so records straddle the ring end mid-copy too.
                        reservation.copy(&bytes[..RECORD_HEAD]);
                        reservation.copy(&bytes[RECORD_HEAD..bytes.len() - 8]);
                        reservation.copy(&bytes[bytes.len() - 8..]);
                        reservation.commit();
                        seq += 1;
                    }
                    writers_done.fetch_add(1, Ordering::SeqCst);
                    seq
                })
            })
            .collect();

        let readers: Vec<_> = cursors
            .into_iter()
            .enumerate()
            .map(|(r, mut reader)| {
                let (backlog, writers_done) = (backlog.clone(), writers_done.clone());
                std::thread::spawn(move || {
                    let max_len = [8 << 10, 997, 300][r];
                    let slow = r == 2;
                    let mut buf = Vec::new();
                    let mut buf_offset = reader.offset();
                    let mut last_seq = vec![None; WRITERS as usize];
                    let (mut records, mut overruns, mut rounds) = (0u64, 0u64, 0u64);
                    loop {
                        rounds += 1;
                        if rounds.is_multiple_of(1000) {
                            backlog.check_invariants().unwrap();
                        }
                        let all_written = writers_done.load(Ordering::SeqCst) == WRITERS;
                        // Ok(true): bytes copied; Ok(false): nothing new.
                        let outcome = match reader.read(max_len) {
                            Ok(grant) if grant.is_empty() => Ok(false),
                            Ok(grant) => {
                                let (head, tail) = grant.slices();
                                let tail = tail.unwrap_or(&[]);
                                let at = buf.len();
                                buf.extend_from_slice(head);
                                buf.extend_from_slice(tail);
                                // Hold the grant a while, then check nothing changed under it.
                                std::thread::yield_now();
                                assert_eq!(
                                    &buf[at..at + head.len()],
                                    head,
                                    "granted bytes changed"
                                );
                                assert_eq!(&buf[at + head.len()..], tail, "granted bytes changed");
                                let n = grant.len();
                                grant.advance(n);
                                Ok(true)
                            }
                            Err(overrun) => Err(overrun),
                        };
                        let copied = match outcome {
                            Ok(copied) => copied,
                            Err(overrun) => {
                                assert!(overrun.first_offset > overrun.cursor);
                                overruns += 1;
                                // `end_offset` is always a record boundary: commits are whole.
                                // With a ring this small, writers may lap it between reading
                                // the end and opening the reader: then take the new end.
                                reader = loop {
                                    if let Ok(fresh) = backlog.reader(backlog.end_offset()) {
                                        break fresh;
                                    }
                                };
                                buf.clear();
                                buf_offset = reader.offset();
                                last_seq.iter_mut().for_each(|s| *s = None);
                                continue;
                            }
                        };
                        if !copied {
                            if all_written && reader.offset() == backlog.end_offset() {
                                break;
                            }
                            std::thread::yield_now();
                        } else {
                            let before = buf.len();
                            records += check_records(
                                &mut buf,
                                &mut last_seq,
                                buf_offset,
                                max_payload as usize,
                            );
                            buf_offset += (before - buf.len()) as u64;
                            if slow {
                                std::thread::sleep(Duration::from_micros(20));
                            }
                        }
                        assert!(
                            Instant::now() < deadline + Duration::from_secs(10),
                            "reader stuck"
                        );
                    }
                    assert!(buf.is_empty(), "stream ended mid-record");
                    (records, overruns)
                })
            })
            .collect();

        let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let read: Vec<(u64, u64)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        eprintln!("stress: {written} records written, (records, overruns) per reader: {read:?}");
        backlog.check_invariants().unwrap();
        assert!(
            written >= 1000,
            "writers made too little progress: {written}"
        );
        let total: u64 = read.iter().map(|(records, _)| records).sum();
        assert!(total > 0, "no reader validated anything");
        for (records, overruns) in read {
            if overruns == 0 {
                assert_eq!(
                    records, written,
                    "a reader never overrun must see every record"
                );
            }
        }
    }

    #[test]
    fn stress_writers_and_readers() {
        stress(512 << 10, 200, 100_000);
    }

    /// Three writers in flight can hold more than this ring: writers must wait for their
    /// predecessors' commits before overwriting.
    #[test]
    fn stress_a_ring_smaller_than_the_writes_in_flight() {
        stress(1 << 10, 400, 20_000);
    }

    #[test]
    fn a_sender_streams_from_the_mapping_into_a_socket() {
        use std::os::unix::net::UnixStream;
        const TOTAL: u64 = 8 << 20;
        let byte_at = |offset: u64| (offset.wrapping_mul(131) ^ (offset >> 9)) as u8;
        let (_dir, backlog) = fresh(256 << 10, 0);
        let (mut send_end, mut recv_end) = UnixStream::pair().unwrap();
        send_end.set_nonblocking(true).unwrap();
        let sent_to = Arc::new(AtomicU64::new(1));
        let deadline = Instant::now() + Duration::from_secs(30);

        let writer = {
            let (backlog, sent_to) = (backlog.clone(), sent_to.clone());
            std::thread::spawn(move || {
                let mut offset = 1;
                while offset <= TOTAL {
                    // Stay within half a ring of the sender: this test is about intact bytes.
                    while offset - sent_to.load(Ordering::SeqCst) > (128 << 10) {
                        assert!(Instant::now() < deadline, "sender stalled");
                        std::thread::yield_now();
                    }
                    let len = 1 + (offset % 3000);
                    let bytes: Vec<u8> = (offset..offset + len).map(byte_at).collect();
                    offset = backlog.append(&bytes).unwrap() + 1;
                }
            })
        };
        let receiver = std::thread::spawn(move || {
            let mut offset = 1u64;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = recv_end.read(&mut buf).unwrap();
                if n == 0 {
                    return offset - 1;
                }
                for &b in &buf[..n] {
                    assert_eq!(b, byte_at(offset), "wrong byte at offset {offset}");
                    offset += 1;
                }
            }
        });

        let mut reader = backlog.reader(1).unwrap();
        while !writer.is_finished() || reader.offset() < backlog.end_offset() {
            assert!(Instant::now() < deadline, "sender timed out");
            let grant = reader
                .read(64 << 10)
                .expect("the writer never laps the sender");
            if grant.is_empty() {
                drop(grant);
                std::thread::yield_now();
                continue;
            }
            match send_end.write_vectored(&grant.io_slices()) {
                Ok(sent) => grant.advance(sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(grant);
                    std::thread::yield_now();
                }
                Err(e) => panic!("send failed: {e}"),
            }
            sent_to.store(reader.offset(), Ordering::SeqCst);
        }
        writer.join().unwrap();
        let end = backlog.master_offset();
        drop(send_end);
        assert_eq!(receiver.join().unwrap(), end);
        assert!(end >= TOTAL);
    }
}
