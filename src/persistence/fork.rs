//! Forking at a safe point: the child sees one instant of the whole keyspace.
//!
//! `fork()` copies only the calling thread. Whatever another thread held at that instant (an
//! allocator lock, the log's mutex, half-updated allocator metadata) stays held forever in the
//! child. So before forking, every other event loop is brought to a **safe point**, a place
//! where it holds nothing:
//!
//! - **parked** at the top of its loop, between batches ([`SafePoint::park_if_requested`]);
//! - or **waiting for the keyspace lock** ([`SafePoint::before_store_lock`]), which the forking
//!   thread holds: it cannot get further until the fork is over.
//!
//! The forking thread holds the keyspace lock (it is inside a command or its cron), raises
//! the request, wakes every loop through its eventfd and waits until each is at one of those
//! two places. Then it forks, which costs what the kernel needs to copy the page tables, and
//! lets the loops go. The whole stop is reported as `latest_fork_usec`.
//!
//! Why this is race-free: a loop publishes its state with a sequentially consistent store and
//! then reads the request; the forker publishes the request and then reads the states. In
//! that order at least one side sees the other, so a loop is never running free while the
//! forker believes it is stopped. States only move from "running" to "safe" on the loop's own
//! thread, and a parked loop leaves only when the request is withdrawn.
//!
//! The child ([`start_child`]) resets the signal handlers, closes the listening sockets,
//! runs its job against the keyspace it inherited, reports its private dirty memory
//! (copy-on-write cost) through a pipe, and `_exit`s without running destructors: it never
//! touches the io_uring rings, the other threads' state or anything they owned.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use crate::log;
use crate::server::shared::Shared;
use crate::storage::Store;

/// What a background child does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    /// BGSAVE, a save point, or a snapshot for replicas.
    Rdb,
    /// BGREWRITEAOF: writes a new AOF base.
    AofRewrite,
}

impl ChildKind {
    /// The word Redis logs for this kind of child ("RDB", "AOF").
    pub fn name(self) -> &'static str {
        match self {
            ChildKind::Rdb => "RDB",
            ChildKind::AofRewrite => "AOF",
        }
    }
}

/// A running child, as the parent tracks it.
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub kind: ChildKind,
    pub started: Instant,
    /// Read end of the pipe the child reports its copy-on-write size through.
    pub report_fd: i32,
}

/// A loop's state, as the forker sees it.
const RUNNING: u8 = 0;
/// Parked at the top of its loop.
const PARKED: u8 = 1;
/// Blocked acquiring the keyspace lock.
const WAITING_STORE: u8 = 2;
/// Not running a loop (not started yet, or stopped).
const OFFLINE: u8 = 3;

thread_local! {
    /// Index of the event loop running on this thread, if any.
    static CORE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Listening socket fds, closed in children so a child never holds the port.
static LISTENER_FDS: OnceLock<Vec<i32>> = OnceLock::new();

/// Records the listening sockets (once, at start) for children to close.
pub fn set_listener_fds(fds: Vec<i32>) {
    let _ = LISTENER_FDS.set(fds);
}

/// The rendezvous between the forking thread and the other event loops.
pub struct SafePoint {
    requested: AtomicBool,
    states: Vec<CachePadded<AtomicU8>>,
    gate: Mutex<()>,
    resumed: Condvar,
}

impl SafePoint {
    pub fn new(cores: usize) -> SafePoint {
        SafePoint {
            requested: AtomicBool::new(false),
            states: (0..cores)
                .map(|_| CachePadded::new(AtomicU8::new(OFFLINE)))
                .collect(),
            gate: Mutex::new(()),
            resumed: Condvar::new(),
        }
    }

    /// Called by an event loop thread when it starts: from here on a fork waits for it.
    pub fn enter_loop(&self, core: usize) {
        CORE.with(|c| c.set(Some(core)));
        self.states[core].store(RUNNING, Ordering::SeqCst);
        self.park_if_requested();
    }

    /// Called by an event loop thread when it stops for good.
    pub fn leave_loop(&self) {
        if let Some(core) = CORE.with(|c| c.take()) {
            self.states[core].store(OFFLINE, Ordering::SeqCst);
        }
    }

    /// The top of every loop turn: parks here while a fork is being made.
    #[inline]
    pub fn park_if_requested(&self) {
        if self.requested.load(Ordering::SeqCst) {
            self.park();
        }
    }

    #[cold]
    fn park(&self) {
        let Some(core) = CORE.with(|c| c.get()) else {
            return;
        };
        self.states[core].store(PARKED, Ordering::SeqCst);
        let mut gate = self.gate.lock();
        while self.requested.load(Ordering::SeqCst) {
            self.resumed.wait(&mut gate);
        }
        drop(gate);
        self.states[core].store(RUNNING, Ordering::SeqCst);
    }

    /// Called just before blocking on the keyspace lock: a loop blocked there is safe.
    #[inline]
    pub fn before_store_lock(&self) {
        if let Some(core) = CORE.with(|c| c.get()) {
            self.states[core].store(WAITING_STORE, Ordering::SeqCst);
        }
    }

    /// Called once the keyspace lock is held.
    #[inline]
    pub fn after_store_lock(&self) {
        if let Some(core) = CORE.with(|c| c.get()) {
            self.states[core].store(RUNNING, Ordering::SeqCst);
        }
    }

    /// Brings every other loop to a safe point. The caller holds the keyspace lock.
    fn stop_others(&self, shared: &Shared) {
        let me = CORE.with(|c| c.get());
        self.requested.store(true, Ordering::SeqCst);
        for (index, core) in shared.cores.iter().enumerate() {
            if Some(index) != me {
                core.wake();
            }
        }
        let started = Instant::now();
        let mut warned = false;
        loop {
            let all_safe =
                self.states.iter().enumerate().all(|(index, state)| {
                    Some(index) == me || state.load(Ordering::SeqCst) != RUNNING
                });
            if all_safe {
                return;
            }
            if !warned && started.elapsed() > Duration::from_secs(1) {
                log!(
                    Warning,
                    "Waiting more than 1s for event loops to reach a fork safe point"
                );
                warned = true;
            }
            std::thread::yield_now();
        }
    }

    /// Lets the parked loops go.
    fn resume_others(&self) {
        let _gate = self.gate.lock();
        self.requested.store(false, Ordering::SeqCst);
        self.resumed.notify_all();
    }
}

/// Forks a child that sees the keyspace exactly as it is now.
///
/// Call with the keyspace locked (`ctx.store` in a command, a `lock_store()` guard in cron).
/// The other loops are parked first; the child runs `child_main` and `_exit`s with 0 when it
/// returns `Ok` (1 otherwise, after logging the error). The parent records the child in
/// `store.persistence` and gets its pid.
pub fn start_child(
    shared: &Shared,
    store: &mut Store,
    kind: ChildKind,
    child_main: impl FnOnce(&Store) -> Result<(), String>,
) -> Result<i32, String> {
    if let Some(child) = &store.persistence.child {
        return Err(format!(
            "another child process is active ({}, pid {})",
            child.kind.name(),
            child.pid
        ));
    }
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we pass; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "can't create the child report pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    let [report_read, report_write] = fds;
    let stop_started = Instant::now();
    shared.safe_point.stop_others(shared);
    let fork_started = Instant::now();
    // SAFETY: every other event loop is parked or blocked on the keyspace lock we hold, so no
    // thread is inside the allocator or holds a lock the child could need. The child only
    // runs `child_main` on the keyspace it inherited and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        run_child(store, kind, report_read, report_write, child_main);
    }
    let fork_usec = fork_started.elapsed().as_micros() as u64;
    shared.safe_point.resume_others();
    let pause_usec = stop_started.elapsed().as_micros() as u64;
    // SAFETY: closing the write end we own; the child has its own copy.
    unsafe { libc::close(report_write) };
    if pid < 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: closing the read end we own; no child will write to it.
        unsafe { libc::close(report_read) };
        return Err(format!("fork failed: {error}"));
    }
    let state = &mut store.persistence;
    state.latest_fork_usec = pause_usec;
    state.total_forks += 1;
    state.child = Some(Child {
        pid,
        kind,
        started: Instant::now(),
        report_fd: report_read,
    });
    log!(
        Verbose,
        "Fork for {} child {pid}: loops stopped in {} us, fork took {fork_usec} us",
        kind.name(),
        pause_usec - fork_usec
    );
    Ok(pid)
}

/// The child's whole life. Never returns.
fn run_child(
    store: &Store,
    kind: ChildKind,
    report_read: i32,
    report_write: i32,
    child_main: impl FnOnce(&Store) -> Result<(), String>,
) -> ! {
    // SAFETY: the child is single-threaded; restoring default signal dispositions and closing
    // fds it inherited (the report pipe's read end, the listening sockets) affects only it.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGUSR1, libc::SIG_DFL);
        libc::close(report_read);
        for &fd in LISTENER_FDS.get().map(Vec::as_slice).unwrap_or(&[]) {
            libc::close(fd);
        }
    }
    crate::log::set_role(b'C');
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child_main(store)));
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(error)) => {
            log!(Warning, "{} child failed: {error}", kind.name());
            1
        }
        Err(_) => 1,
    };
    let dirty = private_dirty_bytes();
    if dirty > 0 {
        log!(
            Notice,
            "Fork CoW for {}: current {} MB, peak {} MB, average {} MB",
            kind.name(),
            dirty >> 20,
            dirty >> 20,
            dirty >> 20
        );
    }
    let report = dirty.to_le_bytes();
    // SAFETY: writes 8 bytes from a live array to the pipe we own, then leaves without running
    // any destructor (they belong to the parent's threads and rings).
    unsafe {
        libc::write(report_write, report.as_ptr() as *const libc::c_void, 8);
        libc::_exit(code)
    }
}

/// The process' private dirty memory in bytes (`Private_Dirty` of /proc/self/smaps_rollup):
/// in a fork child, the pages copied because the parent or the child wrote them.
pub fn private_dirty_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .filter(|line| line.starts_with("Private_Dirty:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Reads the child's copy-on-write report (8 bytes LE) if it is there.
pub fn read_report(fd: i32) -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live array from a pipe fd we own.
    let n = unsafe { libc::read(fd, bytes.as_mut_ptr() as *mut libc::c_void, 8) };
    if n == 8 {
        u64::from_le_bytes(bytes)
    } else {
        0
    }
}

/// Outcome of a finished child.
#[derive(Clone, Copy, Debug)]
pub struct Finished {
    pub kind: ChildKind,
    pub ok: bool,
    /// Killed by a signal (SIGUSR1 means it was asked to stop: not an error in Redis).
    pub signal: Option<i32>,
    pub cow_bytes: u64,
    pub duration: Duration,
}

/// Reaps the running child if it has exited; `None` while it still runs.
pub fn reap(store: &mut Store) -> Option<Finished> {
    let child = store.persistence.child.as_ref()?;
    let mut status = 0;
    // SAFETY: waitpid on our own child's pid with WNOHANG; `status` is a live int.
    let result = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
    if result == 0 {
        return None;
    }
    let child = store.persistence.child.take()?;
    let cow_bytes = read_report(child.report_fd);
    // SAFETY: closing the read end of the report pipe, which we own.
    unsafe { libc::close(child.report_fd) };
    let (ok, signal) = if result < 0 {
        (false, None)
    } else if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status) == 0, None)
    } else if libc::WIFSIGNALED(status) {
        (false, Some(libc::WTERMSIG(status)))
    } else {
        (false, None)
    };
    Some(Finished {
        kind: child.kind,
        ok,
        signal,
        cow_bytes,
        duration: child.started.elapsed(),
    })
}

/// Stops the running child (SIGUSR1, as Redis does) and waits for it; used at shutdown and
/// when a newer child must replace it.
pub fn kill_child(store: &mut Store) -> Option<ChildKind> {
    let child = store.persistence.child.take()?;
    // SAFETY: signals and reaps our own child; the pid cannot have been reused because we
    // have not reaped it yet. Closing the report fd we own.
    unsafe {
        libc::kill(child.pid, libc::SIGUSR1);
        let mut status = 0;
        libc::waitpid(child.pid, &mut status, 0);
        libc::close(child.report_fd);
    }
    Some(child.kind)
}
