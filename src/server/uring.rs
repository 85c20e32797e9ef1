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
