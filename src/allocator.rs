//! The static build's allocator: dlmalloc for the many small, short-lived
//! allocations of a cycle, the C library's `malloc` for large ones.
//!
//! musl's mallocng unmaps a size class's group once its last slot is freed
//! and maps it again at the next cycle: 10+ mmap/munmap pairs a cycle, each
//! munmap a TLB shootdown across the agent's threads. dlmalloc keeps freed
//! chunks for reuse instead. It also keeps the memory of a large buffer once
//! freed (a snapshot's JSON grows to 1 MiB at 64 HCAs every 30 s), so an
//! allocation of [`LARGE`] or more goes to `malloc`, which gives its pages
//! back when it is freed (musl: `strace` shows an mmap/munmap pair for each
//! block of 33 KiB and more allocated and freed; glibc: from its mmap
//! threshold).
//!
//! dlmalloc's lock is not reset in a child after `fork` (musl's malloc's
//! is): the agent never forks; code that does must call
//! `dlmalloc::enable_alloc_after_fork` in the child first.

use std::alloc::{GlobalAlloc, Layout};

/// From this size on, `malloc`. The trade: a block `malloc` maps is
/// faulted in again each time it is allocated, where dlmalloc keeps what it
/// once held. What comes here in a steady agent is transient and big: a
/// gzip scrape's compressor (miniz_oxide's window, hash chains and buffers,
/// ~310 KiB in five blocks of 33 to 85 KiB) and compressed text, and the
/// snapshot's JSON (1 MiB at 64 HCAs every 30 s); the cycle's buffers are
/// reused and stay with dlmalloc. At 256 KiB dlmalloc kept the compressor's
/// blocks once freed: at 64 HCAs with a gzip scrape a second 5.68 MiB
/// resident against 5.25–5.34 at 32 KiB, for six mmap/munmap pairs a
/// second (all the compressor's and the compressed text's) and CPU within
/// 1 % (6.85 against 6.90 ms/s; 2026-11-30 23:35). Earlier, at 512 KiB,
/// the scrape's text, then rendered into a new buffer for each set, had
/// kept 7.28 MiB resident; that text now lives in buffers reused set to set.
pub const LARGE: usize = 32 * 1024;

/// `malloc` aligns to 16 bytes (x86_64, aarch64); a larger alignment stays
/// with dlmalloc whatever the size.
const MALLOC_ALIGN: usize = 16;

pub struct Allocator;

/// Which allocator holds a block of `layout`: decided by size and alignment
/// alone, so `dealloc` and `realloc` find the one `alloc` used.
fn is_large(size: usize, align: usize) -> bool {
    size >= LARGE && align <= MALLOC_ALIGN
}

/// Each method hands a block to exactly one allocator, chosen by
/// `is_large` of its layout, and gives it back to the same one: `dealloc`
/// and `realloc` receive the layout the block was allocated with, so they
/// choose as `alloc` did. A realloc that crosses `LARGE` allocates in the
/// other allocator, copies the smaller of the two sizes and frees the old
/// block. The methods are calls, not inlined copies: dlmalloc's are
/// `#[inline]`, and inlined at every allocation site under LTO they add
/// ~270 KB of code.
// SAFETY: blocks valid for their sizes, aligned as asked (malloc: 16, see `is_large`).
unsafe impl GlobalAlloc for Allocator {
    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: malloc has no precondition; null is the failure both report.
            unsafe { libc::malloc(layout.size()).cast() }
        } else {
            // SAFETY: the caller's guarantees for `alloc` are passed on.
            unsafe { dlmalloc::GlobalDlmalloc.alloc(layout) }
        }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: a large layout's block came from malloc (see `alloc`).
            unsafe { libc::free(ptr.cast()) }
        } else {
            // SAFETY: a small layout's block came from dlmalloc with `layout`.
            unsafe { dlmalloc::GlobalDlmalloc.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: calloc has no precondition; null is the failure both report.
            unsafe { libc::calloc(1, layout.size()).cast() }
        } else {
            // SAFETY: the caller's guarantees for `alloc_zeroed` are passed on.
            unsafe { dlmalloc::GlobalDlmalloc.alloc_zeroed(layout) }
        }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was = is_large(layout.size(), layout.align());
        let will = is_large(new_size, layout.align());
        match (was, will) {
            // SAFETY: `ptr` came from malloc (large layout), `new_size` is non-zero.
            (true, true) => unsafe { libc::realloc(ptr.cast(), new_size).cast() },
            // SAFETY: `ptr` came from dlmalloc with `layout` (small layout).
            (false, false) => unsafe { dlmalloc::GlobalDlmalloc.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees `new_size` with `layout`'s
                // alignment is a valid layout (GlobalAlloc::realloc).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a valid, non-zero-sized layout.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and
                    // distinct (the old one is still allocated); the old
                    // one is freed with its own layout.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests;
