//! The AOF's own small io_uring: appends, `fdatasync`s, and background fsync-then-close.
//!
//! The ring is used only under the keyspace lock, so one thread at a time, but not always the
//! same thread (whichever core runs the batch), which is why it is built without
//! `IORING_SETUP_SINGLE_ISSUER`.
//!
//! Three kinds of operations:
//! - **Appends** ([`Ring::submit_write`]): the ring takes the buffer and keeps it until the
//!   completion is reaped; the caller does not wait. Each write carries its file offset, so
//!   the file's contents do not depend on the order writes finish in (the kernel runs the
//!   buffered writes of one file in order anyway). Completions are handed back in
//!   submission order ([`Ring::pop_completed_write`]); a short write is continued from where
//!   it stopped before it is reported.
//! - **Waited** (`appendfsync always` writes linked to their fdatasync, shutdown syncs):
//!   pushed, submitted and waited for before the call returns, so the buffer they point at
//!   is borrowed only for the call. A write linked to its fdatasync costs one
//!   `io_uring_enter`.
//! - **Background syncs** (`everysec`, and the last sync of a file a rewrite switched away
//!   from): they point at no memory, only at a file the ring keeps open (`closing`) until
//!   the completion is reaped.
//!
//! Why appends are not waited for: on this kind of host a buffered file write through
//! io_uring is handed to a kernel worker (ext4 and tmpfs do not complete it inline), and the
//! round trip costs tens of microseconds where `write(2)` costs one. Waiting under the
//! keyspace lock would cap every client at that rate; submitting costs one `io_uring_enter`
//! per batch and nothing more.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{opcode, squeue, types, IoUring};

use crate::log;

/// Submission queue entries.
const RING_ENTRIES: u32 = 256;
/// Appends in flight at which [`Ring::can_submit_write`] says to hold new data back: it is
/// then written, coalesced, by the first flush after one finishes.
const WRITES_IN_FLIGHT_MAX: usize = 1;
/// Largest single write request.
const WRITE_CHUNK_MAX: usize = 1 << 30;

/// What a completion is for (low 3 bits of `user_data`; the rest is a sequence number).
const TAG_WAITED: u64 = 0;
const TAG_BACKGROUND_FSYNC: u64 = 1;
const TAG_FSYNC_AND_CLOSE: u64 = 2;
const TAG_APPEND: u64 = 3;
const TAG_TIMER: u64 = 4;
const TAG_BITS: u32 = 3;

/// An append the kernel holds. `data` must not be touched (moved out, dropped, resized)
/// until `result` is set: the kernel reads it.
struct Append {
    user_data: u64,
    fd: RawFd,
    offset: u64,
    data: Vec<u8>,
    /// Bytes written so far (short writes are continued).
    written: usize,
    /// The kernel holds the current attempt.
    in_kernel: bool,
    /// Interrupted or short: to be pushed again for the rest.
    again: bool,
    /// Finished: 0, or the negative errno that stopped it.
    outcome: Option<i32>,
}

/// A finished append, in submission order.
#[derive(Debug)]
pub struct CompletedWrite {
    /// The buffer, returned for reuse (or to put back in line after an error).
    pub data: Vec<u8>,
    /// Bytes written.
    pub written: usize,
    /// Why it stopped short of `data.len()`.
    pub error: Option<io::Error>,
}

/// Outcome of [`Ring::write_at`].
#[derive(Debug)]
pub struct Written {
    /// Bytes written (all of them unless `error` is set).
    pub bytes: usize,
    /// Why the write stopped early.
    pub error: Option<io::Error>,
    /// Result of the fdatasync linked to the write, when one was asked for and ran.
    pub synced: Option<io::Result<()>>,
}

/// The AOF's ring and its background operations.
pub struct Ring {
    ring: IoUring,
    next_sequence: u64,
    /// Completed waited operations not yet claimed: (user_data, result).
    done: Vec<(u64, i32)>,
    /// Background fsyncs in flight (INFO `aof_pending_bio_fsync`).
    background_fsyncs: u32,
    /// Files whose last fsync is in flight; closed when it completes.
    closing: Vec<(u64, File)>,
    /// errno of the last failed background fsync, cleared by the next successful one (Redis'
    /// `aof_bio_fsync_status`).
    pub background_error: Option<i32>,
    /// Appends not yet handed back, oldest first.
    appends: VecDeque<Append>,
    /// A timeout is pending; it points at `timer_spec`.
    timer_armed: bool,
    /// The pending timeout's duration (the kernel reads it; boxed so it never moves).
    timer_spec: Box<types::Timespec>,
}

impl Ring {
    /// A ring whose completions, if `notify` is given, also write to that eventfd (the
    /// event loop that finishes held-back appends watches it). Every completion counts: the
    /// window timer's completes outside the kernel's workers, which the "async only"
    /// registration would not report.
    pub fn new(notify: Option<RawFd>) -> Result<Ring, String> {
        let ring = IoUring::new(RING_ENTRIES)
            .map_err(|error| format!("cannot create the AOF's io_uring instance: {error}"))?;
        if let Some(fd) = notify {
            ring.submitter().register_eventfd(fd).map_err(|error| {
                format!("cannot register the AOF's completion eventfd: {error}")
            })?;
        }
        Ok(Ring {
            ring,
            next_sequence: 0,
            done: Vec::new(),
            background_fsyncs: 0,
            closing: Vec::new(),
            background_error: None,
            appends: VecDeque::new(),
            timer_armed: false,
            timer_spec: Box::new(types::Timespec::new()),
        })
    }

    /// True if completions wait to be reaped (a look at shared memory, no system call).
    pub fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
    }

    /// Background fsyncs still running.
    pub fn background_fsyncs(&self) -> u32 {
        self.background_fsyncs
    }

    fn next_user_data(&mut self, tag: u64) -> u64 {
        self.next_sequence += 1;
        (self.next_sequence << TAG_BITS) | tag
    }

    /// Arms a timeout of `after` unless one is pending; its completion (async) wakes the
    /// registered eventfd, so data held back by the coalescing window is written on time.
    pub fn arm_timer(&mut self, after: std::time::Duration) {
        if self.timer_armed {
            return;
        }
        *self.timer_spec = types::Timespec::from(after);
        let spec: *const types::Timespec = &*self.timer_spec;
        let data = self.next_user_data(TAG_TIMER);
        let entry = opcode::Timeout::new(spec).build().user_data(data);
        // SAFETY: `timer_spec` is a Box owned by the ring, not changed while `timer_armed`
        // is set (cleared only by the timeout's completion), and drop waits for it.
        unsafe { self.push(&entry) };
        self.timer_armed = true;
        self.submit_now();
    }

    /// True unless so many appends are in flight that new data should wait.
    pub fn can_submit_write(&self) -> bool {
        self.appends.len() < WRITES_IN_FLIGHT_MAX
    }

    /// Starts writing `data` at `offset` of `fd` without waiting. The ring owns `data`
    /// until [`Ring::pop_completed_write`] returns it; `fd` must stay open until then.
    pub fn submit_write(&mut self, fd: RawFd, offset: u64, data: Vec<u8>) {
        let append = Append {
            user_data: 0,
            fd,
            offset,
            data,
            written: 0,
            in_kernel: false,
            again: false,
            outcome: None,
        };
        self.appends.push_back(append);
        let index = self.appends.len() - 1;
        self.push_append(index);
        self.submit_now();
    }

    /// Pushes (or pushes again, after a short write) the remaining part of append `index`.
    fn push_append(&mut self, index: usize) {
        let user_data = self.next_user_data(TAG_APPEND);
        let append = &mut self.appends[index];
        append.user_data = user_data;
        append.in_kernel = true;
        append.again = false;
        let rest = &append.data[append.written..];
        let len = rest.len().min(WRITE_CHUNK_MAX);
        let entry = opcode::Write::new(types::Fd(append.fd), rest.as_ptr(), len as u32)
            .offset(append.offset + append.written as u64)
            .build()
            .user_data(user_data);
        // SAFETY: the buffer belongs to `append.data`, a heap allocation owned by the ring
        // that is neither read, resized nor freed before this operation's completion is
        // reaped (`pop_completed_write` only releases appends whose result is in, and drop
        // waits for or leaks the rest). The caller keeps `fd` open until then.
        unsafe { self.push(&entry) };
    }

    /// The oldest append, once it finished (whole, or stopped by an error).
    pub fn pop_completed_write(&mut self) -> Option<CompletedWrite> {
        let outcome = self.appends.front()?.outcome?;
        let append = self.appends.pop_front()?;
        let error = match outcome {
            0 => None,
            errno if errno < 0 => Some(io::Error::from_raw_os_error(-errno)),
            _ => Some(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
        };
        Some(CompletedWrite {
            written: append.written,
            data: append.data,
            error,
        })
    }

    /// Waits until every append finished (they are then handed back by
    /// [`Ring::pop_completed_write`]).
    pub fn wait_writes(&mut self) {
        loop {
            self.reap();
            if self.appends.iter().all(|a| a.outcome.is_some()) {
                return;
            }
            self.enter(1);
        }
    }

    /// Records an append's completion: finished, or to be continued.
    fn append_completed(&mut self, user_data: u64, result: i32) {
        let Some(append) = self.appends.iter_mut().find(|a| a.user_data == user_data) else {
            return;
        };
        append.in_kernel = false;
        if result == -libc::EINTR || result == -libc::EAGAIN {
            append.again = true;
        } else if result < 0 {
            append.outcome = Some(result);
        } else if result == 0 {
            append.outcome = Some(1);
        } else {
            append.written += result as usize;
            if append.written < append.data.len() {
                // Short write: go on from where it stopped, as Redis' aofWrite does.
                append.again = true;
            } else {
                append.outcome = Some(0);
            }
        }
    }

    /// Writes all of `data` at `offset` of `fd`, retrying short writes and interrupted
    /// calls like Redis' `aofWrite`. With `sync`, an fdatasync is linked after the last
    /// chunk (it runs only if that chunk is written whole).
    pub fn write_at(&mut self, fd: RawFd, offset: u64, data: &[u8], sync: bool) -> Written {
        let mut written = 0;
        let mut synced = None;
        while written < data.len() {
            let chunk = &data[written..(written + WRITE_CHUNK_MAX).min(data.len())];
            let last = written + chunk.len() == data.len();
            let link_sync = sync && last;
            if link_sync {
                // Both halves of the link must go to the kernel in one submission.
                let queue = self.ring.submission();
                let free = queue.capacity() - queue.len();
                drop(queue);
                if free < 2 {
                    self.enter(0);
                }
            }
            let write_data = self.next_user_data(TAG_WAITED);
            let mut write = opcode::Write::new(types::Fd(fd), chunk.as_ptr(), chunk.len() as u32)
                .offset(offset + written as u64)
                .build()
                .user_data(write_data);
            if link_sync {
                write = write.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: `chunk` borrows `data`, which outlives this call, and the call waits
            // below for the write's completion before returning or touching `data` again.
            unsafe { self.push(&write) };
            let sync_data = if link_sync {
                let data = self.next_user_data(TAG_WAITED);
                let fsync = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(data);
                // SAFETY: no memory involved; `fd` stays open for the call.
                unsafe { self.push(&fsync) };
                Some(data)
            } else {
                None
            };
            let result = self.wait_for(write_data);
            let sync_result = sync_data.map(|data| self.wait_for(data));
            if result < 0 {
                if result == -libc::EINTR || result == -libc::EAGAIN {
                    continue;
                }
                return Written {
                    bytes: written,
                    error: Some(io::Error::from_raw_os_error(-result)),
                    synced: None,
                };
            }
            if result == 0 {
                return Written {
                    bytes: written,
                    error: Some(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                    synced: None,
                };
            }
            written += result as usize;
            if let Some(sync_result) = sync_result {
                // A short write severs the link: the sync reports ECANCELED and is retried
                // after the rest of the data.
                if sync_result != -libc::ECANCELED {
                    synced = Some(errno_result(sync_result));
                }
            }
        }
        Written {
            bytes: written,
            error: None,
            synced,
        }
    }

    /// fdatasync of `fd`, waited for.
    pub fn sync(&mut self, fd: RawFd) -> io::Result<()> {
        loop {
            let data = self.next_user_data(TAG_WAITED);
            let fsync = opcode::Fsync::new(types::Fd(fd))
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(data);
            // SAFETY: no memory involved; `fd` stays open for the call.
            unsafe { self.push(&fsync) };
            let result = self.wait_for(data);
            if result == -libc::EINTR {
                continue;
            }
            return errno_result(result);
        }
    }

    /// Starts an fdatasync of `fd` without waiting (Redis' bio fsync job). The caller keeps
    /// `fd` open: it is the file being appended to.
    pub fn sync_in_background(&mut self, fd: RawFd) {
        let data = self.next_user_data(TAG_BACKGROUND_FSYNC);
        let fsync = opcode::Fsync::new(types::Fd(fd))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(data);
        // SAFETY: no memory involved. The fd is the open AOF file; should it be closed while
        // the sync runs, the kernel holds its own reference to the file for the operation.
        unsafe { self.push(&fsync) };
        self.background_fsyncs += 1;
        self.submit_now();
    }

    /// Syncs `file` in the background and closes it when done (a file a rewrite switched
    /// away from).
    pub fn sync_and_close_in_background(&mut self, file: File) {
        let data = self.next_user_data(TAG_FSYNC_AND_CLOSE);
        let fsync = opcode::Fsync::new(types::Fd(file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(data);
        // SAFETY: no memory involved; `file` is kept open in `closing` until the completion.
        unsafe { self.push(&fsync) };
        self.closing.push((data, file));
        self.submit_now();
    }

    /// Handles every completion already posted, without blocking, and continues appends
    /// that stopped short.
    pub fn reap(&mut self) {
        self.drain_completions();
        let mut pushed = false;
        for index in 0..self.appends.len() {
            if self.appends[index].again {
                self.push_append(index);
                pushed = true;
            }
        }
        if pushed {
            self.submit_now();
        }
    }

    fn drain_completions(&mut self) {
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                return;
            };
            self.handle(cqe.user_data(), cqe.result());
        }
    }

    /// Waits until every background operation finished (shutdown, ring drop).
    pub fn drain(&mut self) {
        const ROUNDS_MAX: usize = 10_000;
        for _ in 0..ROUNDS_MAX {
            self.reap();
            if self.background_fsyncs == 0 && self.closing.is_empty() {
                return;
            }
            self.enter(1);
        }
        log!(
            Warning,
            "AOF background fsyncs did not finish in time; exiting without waiting for them"
        );
    }

    fn handle(&mut self, user_data: u64, result: i32) {
        match user_data & ((1 << TAG_BITS) - 1) {
            TAG_BACKGROUND_FSYNC => {
                self.background_fsyncs = self.background_fsyncs.saturating_sub(1);
                // EBADF/EINVAL mean the file went away, not that the disk failed (as Redis).
                if result < 0 && result != -libc::EBADF && result != -libc::EINVAL {
                    if self.background_error.is_none() {
                        log!(
                            Warning,
                            "Fail to fsync the AOF file: {}",
                            crate::config::os_error_text(&io::Error::from_raw_os_error(-result))
                        );
                    }
                    self.background_error = Some(-result);
                } else {
                    self.background_error = None;
                }
            }
            TAG_FSYNC_AND_CLOSE => {
                // The file is closed whatever the sync said, as Redis' close job does.
                self.closing.retain(|(data, _)| *data != user_data);
            }
            TAG_APPEND => self.append_completed(user_data, result),
            TAG_TIMER => self.timer_armed = false,
            _ => self.done.push((user_data, result)),
        }
    }

    /// Waits for the waited operation `user_data` and returns its result.
    fn wait_for(&mut self, user_data: u64) -> i32 {
        loop {
            self.drain_completions();
            if let Some(index) = self.done.iter().position(|(data, _)| *data == user_data) {
                return self.done.swap_remove(index).1;
            }
            self.enter(1);
        }
    }

    /// Submits queued entries and waits for `want` completions. Transient errors are retried;
    /// anything else means the ring is unusable while the kernel may still hold our buffers,
    /// so the process stops (as Redis stops on an AOF it cannot write under `always`).
    fn enter(&mut self, want: usize) {
        match self.ring.submit_and_wait(want) {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ETIME)
                ) => {}
            Err(error) => {
                log!(
                    Warning,
                    "The AOF's io_uring failed ({error}); exiting to keep the append only file consistent"
                );
                std::process::exit(1);
            }
        }
    }

    fn submit_now(&mut self) {
        if let Err(error) = self.ring.submit() {
            if !matches!(
                error.raw_os_error(),
                Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
            ) {
                log!(Warning, "Submitting an AOF fsync failed: {error}");
            }
        }
    }

    /// Pushes `entry`, making room by submitting and reaping when the queue is full.
    ///
    /// # Safety
    /// Every buffer and fd `entry` refers to must stay valid until its completion is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: forwarded from the caller's contract.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            self.enter(0);
            self.drain_completions();
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.wait_writes();
        self.drain();
        const TIMER_ROUNDS_MAX: usize = 1000;
        for _ in 0..TIMER_ROUNDS_MAX {
            self.drain_completions();
            if !self.timer_armed {
                break;
            }
            self.enter(1);
        }
        if self.timer_armed {
            // Never free what the kernel may still read.
            std::mem::forget(std::mem::replace(
                &mut self.timer_spec,
                Box::new(types::Timespec::new()),
            ));
        }
        // Anything still held by the kernel (only if waiting was impossible) is leaked rather
        // than freed under it.
        for append in std::mem::take(&mut self.appends) {
            if append.in_kernel {
                std::mem::forget(append.data);
            }
        }
    }
}

fn errno_result(result: i32) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_land_at_their_offsets_and_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut ring = Ring::new(None).unwrap();
        let first = ring.write_at(file.as_raw_fd(), 0, b"hello ", false);
        assert_eq!((first.bytes, first.error.is_none()), (6, true));
        assert!(first.synced.is_none());
        let second = ring.write_at(file.as_raw_fd(), 6, b"world", true);
        assert_eq!(second.bytes, 5);
        assert!(matches!(second.synced, Some(Ok(()))));
        ring.sync(file.as_raw_fd()).unwrap();
        ring.sync_in_background(file.as_raw_fd());
        ring.sync_and_close_in_background(file);
        ring.drain();
        assert_eq!(ring.background_fsyncs(), 0);
        assert!(ring.background_error.is_none());
        let mut text = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello world");
    }

    #[test]
    fn appends_complete_in_order_and_hand_their_buffers_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut ring = Ring::new(None).unwrap();
        let mut offset = 0;
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let data = vec![b'a' + i % 26; 100 + i as usize];
            expected.extend_from_slice(&data);
            let len = data.len() as u64;
            ring.submit_write(file.as_raw_fd(), offset, data);
            offset += len;
        }
        ring.wait_writes();
        let mut total = 0;
        while let Some(done) = ring.pop_completed_write() {
            assert!(done.error.is_none());
            assert_eq!(done.written, done.data.len());
            total += done.written;
        }
        assert_eq!(total, expected.len());
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        ring.arm_timer(std::time::Duration::from_millis(1));
        drop(ring);
    }

    #[test]
    fn a_full_device_reports_the_error() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut ring = Ring::new(None).unwrap();
        let result = ring.write_at(full.as_raw_fd(), 0, b"data", false);
        assert_eq!(result.bytes, 0);
        assert_eq!(result.error.unwrap().raw_os_error(), Some(libc::ENOSPC));
        ring.submit_write(full.as_raw_fd(), 0, b"more".to_vec());
        ring.wait_writes();
        let done = ring.pop_completed_write().unwrap();
        assert_eq!(done.written, 0);
        assert_eq!(done.error.unwrap().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(done.data, b"more");
    }
}
