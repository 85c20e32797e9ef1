//! Memory accounting: the global allocator is mimalloc wrapped in a counter of live bytes, the
//! figure INFO reports as `used_memory` and `maxmemory` is checked against.
//!
//! Counting must not add contention on the allocation path, so each thread adds to its own
//! cache-line-sized slot (relaxed atomics on a line no other thread writes); readers sum the
//! slots. A thread past the last slot shares the overflow slot, which is still correct, just
//! slower. The sum is exact: every allocation and free is counted once, on whichever thread
//! performs it (a free on another thread makes that slot negative, which the sum absorbs).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use mimalloc::MiMalloc;

/// Per-thread counter slots; threads beyond this share the last one.
const SLOTS: usize = 64;

#[repr(align(128))]
struct Slot(AtomicI64);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO_SLOT: Slot = Slot(AtomicI64::new(0));
static SLOT_BYTES: [Slot; SLOTS] = [ZERO_SLOT; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn my_slot() -> usize {
    MY_SLOT
        .try_with(|slot| {
            let mut index = slot.get();
            if index == usize::MAX {
                index = NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1);
                slot.set(index);
            }
            index
        })
        // During thread teardown the thread-local is gone: use the shared overflow slot.
        .unwrap_or(SLOTS - 1)
}

/// mimalloc plus a live-bytes counter.
pub struct CountingAllocator;

// SAFETY: every method forwards to MiMalloc, a correct GlobalAlloc, with the caller's own
// arguments; the counters only observe sizes and never touch the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc::alloc's contract.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            SLOT_BYTES[my_slot()]
                .0
                .fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            SLOT_BYTES[my_slot()]
                .0
                .fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        SLOT_BYTES[my_slot()]
            .0
            .fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` was returned by this allocator with `layout` (caller's contract).
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc::realloc's contract.
        let new_ptr = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            SLOT_BYTES[my_slot()]
                .0
                .fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        new_ptr
    }
}

/// Returns freed memory to the operating system now. mimalloc otherwise keeps freed pages
/// until later allocator activity purges them, so after a big deletion (or the growth of a
/// large table, which frees the old one) RSS would stay high on an idle server. Costs about a
/// millisecond after large frees, microseconds otherwise; each core calls it once a second.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own structures for the calling thread and its
    // arenas; it has no preconditions.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Bytes currently allocated through the global allocator (INFO `used_memory`).
pub fn used_memory() -> u64 {
    let total: i64 = SLOT_BYTES.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    total.max(0) as u64
}

/// Resident set size of this process in bytes (INFO `used_memory_rss`), from /proc.
pub fn resident_set_size() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page_size
}

/// Formats bytes as Redis' `bytesToHuman` does (`1.50M`, `912B`).
pub fn bytes_to_human(bytes: u64) -> String {
    let b = bytes as f64;
    const K: f64 = 1024.0;
    if b < K {
        format!("{bytes}B")
    } else if b < K * K {
        format!("{:.2}K", b / K)
    } else if b < K * K * K {
        format!("{:.2}M", b / (K * K))
    } else if b < K * K * K * K {
        format!("{:.2}G", b / (K * K * K))
    } else if b < K * K * K * K * K {
        format!("{:.2}T", b / (K * K * K * K))
    } else {
        format!("{:.2}P", b / (K * K * K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_redis() {
        assert_eq!(bytes_to_human(912), "912B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(3 * 1024 * 1024), "3.00M");
    }

    #[test]
    fn rss_is_read_from_proc() {
        assert!(resident_set_size() > 0);
    }
}
