//! The small unsafe core of the io_uring driver: building the ring and pushing operations.
//!
//! Every operation that points at memory is pushed through a function here whose caller
//! promises, by the contract written on it, that the memory outlives the operation. The
//! event loop keeps that promise structurally: a connection's buffers live in its slot, and a
//! slot is never freed or its in-flight buffer touched while the kernel still holds an
//! operation on it (`recv_in_flight` / `send_in_flight`).

use io_uring::{opcode, squeue, types, IoUring};

/// What a completion is about (the low byte of `user_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Wake = 4,
    Cancel = 5,
    /// Replica snapshot transfer: file → pipe.
    SpliceFile = 6,
    /// Replica snapshot transfer: pipe → socket.
    SplicePipe = 7,
    /// A replica's socket became writable again.
    PollOut = 8,
    /// The replica's connect to its master (`server::master_link`).
    Connect = 20,
}

impl OpKind {
    fn from_u8(value: u8) -> Option<OpKind> {
        Some(match value {
            1 => OpKind::Accept,
            2 => OpKind::Recv,
            3 => OpKind::Send,
            4 => OpKind::Wake,
            5 => OpKind::Cancel,
            6 => OpKind::SpliceFile,
            7 => OpKind::SplicePipe,
            8 => OpKind::PollOut,
            20 => OpKind::Connect,
            _ => return None,
        })
    }
}

/// Packs (kind, connection slot, generation) into a completion's `user_data`.
#[inline]
pub fn user_data(kind: OpKind, slot: u32, generation: u32) -> u64 {
    (kind as u64) | ((generation as u64 & 0xff_ffff) << 8) | ((slot as u64) << 32)
}

/// Unpacks [`user_data`].
#[inline]
pub fn decode(user_data: u64) -> Option<(OpKind, u32, u32)> {
    let kind = OpKind::from_u8(user_data as u8)?;
    Some((
        kind,
        (user_data >> 32) as u32,
        ((user_data >> 8) & 0xff_ffff) as u32,
    ))
}

/// Builds a ring for one core's loop. Explains how to fix the common causes of failure.
pub fn new_ring(entries: u32) -> Result<IoUring, String> {
    let mut builder = IoUring::builder();
    builder.setup_single_issuer().setup_coop_taskrun();
    builder.build(entries).or_else(|_| IoUring::new(entries)).map_err(|error| {
        let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let hint = match (error.raw_os_error(), disabled.as_str()) {
            (_, "1") | (_, "2") => {
                "io_uring is disabled by kernel.io_uring_disabled; run `sysctl -w kernel.io_uring_disabled=0` \
                 (or add this user to kernel.io_uring_group)"
            }
            (Some(libc::EPERM), _) => {
                "io_uring_setup was refused (EPERM): a seccomp profile (Docker, systemd SystemCallFilter) \
                 blocks it; allow io_uring_setup/io_uring_enter/io_uring_register for ringkv"
            }
            (Some(libc::ENOSYS), _) => "this kernel has no io_uring (Linux 5.19 or newer is required)",
            (Some(libc::ENOMEM), _) => {
                "not enough locked memory for the ring; raise the memlock limit (ulimit -l / LimitMEMLOCK=infinity)"
            }
            _ => "check kernel.io_uring_disabled, seccomp profiles and the memlock limit (see tuning.md)",
        };
        format!("cannot create an io_uring instance: {error}. {hint}")
    })
}

/// Pushes `entry`, submitting first if the submission queue is full.
///
/// # Safety
/// Every buffer and fd `entry` refers to must stay valid until its completion is reaped.
pub unsafe fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    loop {
        // SAFETY: the caller guarantees the entry's resources outlive the operation.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return;
        }
        // Queue full: hand what we have to the kernel and retry. Errors here (EBUSY with a
        // full completion queue) resolve once completions are reaped; do not spin forever.
        if ring.submit().is_err() {
            std::thread::yield_now();
        }
    }
}

/// Multishot accept on a listening socket.
pub fn accept_multishot(ring: &mut IoUring, listener_fd: i32, listener_index: u32) {
    let entry = opcode::AcceptMulti::new(types::Fd(listener_fd))
        .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        .build()
        .user_data(user_data(OpKind::Accept, listener_index, 0));
    // SAFETY: no buffer involved; the listener fd lives as long as the loop.
    unsafe { push(ring, &entry) }
}

/// Receives into `buffer[..capacity]`.
///
/// # Safety
/// `buffer` must stay allocated, unmoved and unread by anyone else until the completion.
pub unsafe fn recv(ring: &mut IoUring, fd: i32, buffer: *mut u8, capacity: usize, data: u64) {
    let entry = opcode::Recv::new(types::Fd(fd), buffer, capacity as u32)
        .build()
        .user_data(data);
    // SAFETY: forwarded from the caller's contract.
    unsafe { push(ring, &entry) }
}

/// Sends `buffer[..len]`.
///
/// # Safety
/// `buffer` must stay allocated and unmodified until the completion.
pub unsafe fn send(ring: &mut IoUring, fd: i32, buffer: *const u8, len: usize, data: u64) {
    let entry = opcode::Send::new(types::Fd(fd), buffer, len as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(data);
    // SAFETY: forwarded from the caller's contract.
    unsafe { push(ring, &entry) }
}

/// Reads the 8-byte counter of an eventfd into `*target`.
///
/// # Safety
/// `target` must stay valid until the completion.
pub unsafe fn read_eventfd(ring: &mut IoUring, fd: i32, target: *mut u64) {
    let entry = opcode::Read::new(types::Fd(fd), target as *mut u8, 8)
        .build()
        .user_data(user_data(OpKind::Wake, 0, 0));
    // SAFETY: forwarded from the caller's contract.
    unsafe { push(ring, &entry) }
}

/// Connects the socket `fd` to the address `address[..len]` (the socket may be non-blocking:
/// the ring waits for the handshake and completes with its outcome).
///
/// # Safety
/// `address` must stay valid and unmodified until the completion is reaped, and `fd` open.
pub unsafe fn connect(
    ring: &mut IoUring,
    fd: i32,
    address: *const libc::sockaddr,
    len: libc::socklen_t,
    data: u64,
) {
    let entry = opcode::Connect::new(types::Fd(fd), address, len)
        .build()
        .user_data(data);
    // SAFETY: forwarded from the caller's contract.
    unsafe { push(ring, &entry) }
}

/// Cancels the operation with `target` user data.
pub fn cancel(ring: &mut IoUring, target: u64) {
    let entry = opcode::AsyncCancel::new(target)
        .build()
        .user_data(user_data(OpKind::Cancel, 0, 0));
    // SAFETY: no buffer involved.
    unsafe { push(ring, &entry) }
}

/// Moves up to `len` bytes from `fd_in` (at `off_in`, or its position / a pipe when -1) to
/// `fd_out` (likewise) without copying through user space. With `link`, the next pushed entry
/// runs only if this one moves all `len` bytes (a short splice cancels it).
///
/// # Safety
/// Both fds must stay open, and refer to the same files, until the completion is reaped: the
/// kernel resolves them when the operation runs, which may be after this call returns.
#[allow(clippy::too_many_arguments)]
pub unsafe fn splice(
    ring: &mut IoUring,
    fd_in: i32,
    off_in: i64,
    fd_out: i32,
    off_out: i64,
    len: u32,
    link: bool,
    data: u64,
) {
    let mut entry = opcode::Splice::new(types::Fd(fd_in), off_in, types::Fd(fd_out), off_out, len)
        .build()
        .user_data(data);
    if link {
        entry = entry.flags(squeue::Flags::IO_LINK);
    }
    // SAFETY: no memory involved; the caller keeps both fds open until the completion.
    unsafe { push(ring, &entry) }
}

/// One-shot poll for `events` (`libc::POLLOUT`...) on `fd`.
///
/// # Safety
/// `fd` must stay open until the completion is reaped.
pub unsafe fn poll(ring: &mut IoUring, fd: i32, events: u32, data: u64) {
    let entry = opcode::PollAdd::new(types::Fd(fd), events)
        .build()
        .user_data(data);
    // SAFETY: no memory involved; the caller keeps the fd open until the completion.
    unsafe { push(ring, &entry) }
}

/// Caps the kernel worker threads that run this ring's blocking operations (splice runs
/// there): `[bounded, unbounded]`, 0 leaves a kind unchanged.
pub fn limit_workers(ring: &IoUring, bounded: u32, unbounded: u32) -> std::io::Result<()> {
    let mut max = [bounded, unbounded];
    ring.submitter().register_iowq_max_workers(&mut max)
}

/// `sendmsg(fd, slices, MSG_DONTWAIT | MSG_NOSIGNAL)`: sends what fits in the socket buffer
/// right now, never blocks. `Err(WouldBlock)` when nothing fits.
pub fn send_now(fd: i32, slices: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (documented guarantee).
    message.msg_iov = slices.as_ptr() as *mut libc::iovec;
    message.msg_iovlen = slices.len() as _;
    // SAFETY: `message` points at `slices`, which are live, readable buffers for the whole
    // call; the kernel only reads them.
    let sent = unsafe { libc::sendmsg(fd, &message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// A non-blocking, close-on-exec pipe grown towards `size` bytes (to the system's
/// `pipe-max-size` at most). Returns (read end, write end, capacity).
pub fn pipe(size: usize) -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd, usize)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we pass; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (read, write) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: fcntl on our own open pipe; a refusal leaves the default size, asked below.
    let grown = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, size as libc::c_int) };
    let capacity = if grown > 0 {
        grown as usize
    } else {
        // SAFETY: as above, a query only.
        let current = unsafe { libc::fcntl(fds[1], libc::F_GETPIPE_SZ) };
        if current > 0 {
            current as usize
        } else {
            64 * 1024
        }
    };
    Ok((read, write, capacity))
}

/// `splice(fd_in → fd_out, len, SPLICE_F_NONBLOCK)` on the calling thread: moves what the
/// pipe `fd_in` holds into `fd_out` (a non-blocking socket) without copying through user
/// space, never blocks. `Ok(0)` is end of file (the pipe is empty and its writers are gone);
/// `Err(WouldBlock)` when the pipe is empty or the socket full ([`readable_bytes`] tells
/// which).
pub fn splice_now(fd_in: i32, fd_out: i32, len: usize) -> std::io::Result<usize> {
    // SAFETY: no memory is passed (null offsets: both fds use their own position / are a
    // pipe and a socket); the kernel validates the fds, which the caller keeps open.
    let moved = unsafe {
        libc::splice(
            fd_in,
            std::ptr::null_mut(),
            fd_out,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    if moved < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}

/// Bytes waiting to be read in a pipe or socket (`FIONREAD`), 0 on error.
pub fn readable_bytes(fd: i32) -> usize {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into the live `count`.
    let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count as *mut libc::c_int) };
    if result < 0 {
        0
    } else {
        count.max(0) as usize
    }
}

/// Clears `O_NONBLOCK` on `fd` (the write end of a pipe a fork child writes to with plain,
/// blocking writes).
pub fn set_blocking(fd: i32) -> std::io::Result<()> {
    // SAFETY: fcntl queries and sets the status flags of an fd the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// In a fork child: closes the child's copies of fds that belong to the parent (so, for a
/// pipe, the parent's read end is the only reader left), and makes sure a write to a pipe
/// without readers is an `EPIPE` error, not a fatal `SIGPIPE`.
pub fn child_close_inherited(fds: &[i32]) {
    // SAFETY: only called in a single-threaded fork child, on its own copies of the fds,
    // which nothing else in the child uses; setting a signal disposition affects only it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for &fd in fds {
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        let data = user_data(OpKind::Send, 123_456, 0xabcdef);
        assert_eq!(decode(data), Some((OpKind::Send, 123_456, 0xabcdef)));
        assert_eq!(decode(0), None);
    }
}
