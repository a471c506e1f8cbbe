//! The static build's allocator: dlmalloc for the many small, short-lived
//! allocations of a cycle, the C library's `malloc` for large ones.
//!
//! musl's mallocng unmaps a size class's group once its last slot is freed
//! and maps it again at the next cycle: 10+ mmap/munmap pairs a cycle, each
//! munmap a TLB shootdown across the agent's threads. dlmalloc keeps freed
//! chunks for reuse instead. It also keeps the memory of a large buffer once
//! freed (a snapshot's JSON grows to 1 MiB at 64 HCAs every 30 s), so an
//! allocation of [`LARGE`] or more goes to `malloc`, which maps such a block
//! on its own and unmaps it when freed (musl: from 128 KiB; glibc: its mmap
//! threshold).
//!
//! A block of [`SHORT_LIVED`] or more below [`LARGE`] allocated afresh by a
//! thread marked with [`short_lived_blocks`] (the HTTP workers) goes to
//! `malloc` too, when a slot of [`Noted`] is free, and is noted there so
//! that `dealloc` and `realloc`, which see only the layout, send it back:
//! the compressed set of a gzip scrape (kept until a gzip scrape meets a
//! newer set). This was made for miniz_oxide's compressor (~310 KiB in
//! blocks of 33 to 83 KiB, made afresh per set), which dlmalloc kept: at 64
//! HCAs with a gzip scrape a second 6.18 MiB resident, against 5.83 MiB
//! when it was given back (`make bench-cadence`, 2026-12-01); the agent's
//! own deflater keeps its 48 KiB from set to set
//! (`exporters::deflate::Deflater`). Other threads' blocks of that size
//! stay with dlmalloc, such as the ethtool statistics of a NIC with
//! thousands of them, made each cycle: through `malloc`, each would be an
//! mmap/munmap pair a cycle.
//!
//! dlmalloc sits behind std's futex `Mutex` rather than the pthread mutex
//! of its `global` feature: musl's `pthread_mutex_unlock` alone ran ~45
//! instructions a call, and the collection thread allocates some 460 times
//! a cycle. Neither lock is reset in a child after `fork` (musl's malloc's
//! is): the agent never forks; code that does must not allocate in the
//! child before `exec`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The blocks below [`LARGE`] (see the module's note on the lock).
static DLMALLOC: Mutex<dlmalloc::Dlmalloc> = Mutex::new(dlmalloc::Dlmalloc::new());

/// dlmalloc, locked. Poison is ignored rather than checked: a panic inside
/// dlmalloc (its `validate_size` asserts on a block freed with the wrong
/// size) allocates its payload on the thread that holds this lock and hangs
/// there, as it did under the pthread mutex, before any guard could poison.
#[inline(always)]
fn dl() -> MutexGuard<'static, dlmalloc::Dlmalloc> {
    DLMALLOC.lock().unwrap_or_else(PoisonError::into_inner)
}

/// From this size on, `malloc`. The trade: a block `malloc` maps is
/// faulted in again each time it is allocated, where dlmalloc keeps what it
/// once held. At 64 HCAs with moving counters, 512 KiB kept 7.28 MiB
/// resident (the RSS target is 6) against 5.93 MiB at 128 KiB, but the
/// scrape thread went from 0.65 to 1.08 ms/s: the scrape's text, then
/// rendered into a new buffer for each set (~420 KiB there), was mapped and
/// faulted in each time (`make bench-cadence`, 2026-11-30 14:45); 256 KiB
/// kept the 16-HCA text (~120 KiB) with dlmalloc (the scrape thread 0.36 →
/// 0.53 ms/s at 128 KiB, 14:50). Since, the text lives in the families'
/// buffers, reused set to set, and a scrape allocates none: what goes to
/// `malloc` each time is the snapshot's JSON (1 MiB at 64 HCAs, every 30 s).
pub const LARGE: usize = 256 * 1024;

/// From this size on (below [`LARGE`]), a block a short-lived-blocks
/// thread allocates goes to `malloc`, when a slot of [`Noted`] is free.
pub const SHORT_LIVED: usize = 32 * 1024;

/// Where the blocks below [`LARGE`] that `malloc` holds are noted: a
/// block's address in a slot while it lives. A few live at once (a
/// compressor's five blocks, a compressed set or two, the failed-password
/// set a worker keeps under a password flood); when every slot is taken, a
/// new block goes to dlmalloc.
struct Noted([AtomicUsize; NOTED_SLOTS]);

const NOTED_SLOTS: usize = 32;

static FROM_MALLOC: Noted = Noted([const { AtomicUsize::new(0) }; NOTED_SLOTS]);

thread_local! {
    /// Set by [`short_lived_blocks`].
    static SHORT_LIVED_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one whose blocks of [`SHORT_LIVED`] or more
/// live briefly (an HTTP worker: a compressed text per set): those it allocates afresh (not those it grows with `realloc`) go
/// to `malloc`, which gives their pages back when they are freed, whichever
/// thread frees them.
pub fn short_lived_blocks() {
    SHORT_LIVED_THREAD.with(|t| t.set(true));
}

/// Whether a new block of `size` and `align` goes to `malloc` and is noted.
fn goes_to_malloc_noted(size: usize, align: usize) -> bool {
    may_be_noted(size, align) && SHORT_LIVED_THREAD.try_with(Cell::get).unwrap_or(false)
}

impl Noted {
    /// Notes `addr`; false when every slot is taken.
    fn note(&self, addr: usize) -> bool {
        // Read first: a failed compare-exchange still takes the cache line.
        self.0.iter().any(|slot| {
            slot.load(Relaxed) == 0 && slot.compare_exchange(0, addr, AcqRel, Relaxed).is_ok()
        })
    }

    /// Whether `addr` is noted. A block's address is in at most one slot,
    /// no other live block has it, and only its owner frees or moves it, so
    /// the answer stands until the owner acts.
    fn holds(&self, addr: usize) -> bool {
        self.0.iter().any(|slot| slot.load(Acquire) == addr)
    }

    /// Forgets `addr` if it was noted, and says whether it was.
    fn take(&self, addr: usize) -> bool {
        self.0.iter().any(|slot| {
            slot.load(Relaxed) == addr && slot.compare_exchange(addr, 0, AcqRel, Relaxed).is_ok()
        })
    }
}

/// `p`, a block just from `malloc` or `calloc` below [`LARGE`], noted; null
/// (the failure both report) as it is; `None` when no slot is free, `p`
/// freed then.
///
/// # Safety
/// `p` is null or a live block from `malloc`/`calloc` that nothing else holds.
// SAFETY: callers pass what `# Safety` says; the block is either returned noted or freed, never both.
unsafe fn noted(p: *mut u8) -> Option<*mut u8> {
    if p.is_null() || FROM_MALLOC.note(p as usize) {
        return Some(p);
    }
    // SAFETY: the caller's: from malloc or calloc, handed to no one.
    unsafe { libc::free(p.cast()) };
    None
}

/// `alloc` (`zeroed`: `alloc_zeroed`): `malloc` (`calloc`) for a large
/// block or a short-lived thread's noted one, dlmalloc otherwise.
///
/// # Safety
/// `layout` has a non-zero size (GlobalAlloc's contract for both).
#[inline(always)]
// SAFETY: callers pass what `# Safety` says; every block goes to one allocator.
unsafe fn allocate(layout: Layout, zeroed: bool) -> *mut u8 {
    let from_c = || -> *mut u8 {
        // SAFETY: malloc and calloc have no precondition; null is the failure both report.
        unsafe {
            match zeroed {
                true => libc::calloc(1, layout.size()).cast(),
                false => libc::malloc(layout.size()).cast(),
            }
        }
    };
    if is_large(layout.size(), layout.align()) {
        return from_c();
    }
    if goes_to_malloc_noted(layout.size(), layout.align()) {
        // SAFETY: a block just from malloc or calloc, as `noted` asks.
        if let Some(p) = unsafe { noted(from_c()) } {
            return p;
        }
    }
    // SAFETY: the caller's non-zero layout, for dlmalloc's `malloc` and `calloc` alike.
    unsafe {
        match zeroed {
            true => dl().calloc(layout.size(), layout.align()),
            false => dl().malloc(layout.size(), layout.align()),
        }
    }
}

/// Whether a block of `size` and `align` may be a noted one.
fn may_be_noted(size: usize, align: usize) -> bool {
    (SHORT_LIVED..LARGE).contains(&size) && align <= MALLOC_ALIGN
}

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
/// choose as `alloc` did, except for a block below `LARGE` that `malloc`
/// holds, found among the noted ones. A realloc that crosses `LARGE`, or
/// moves a noted block, allocates where `alloc` would, copies the smaller of
/// the two sizes and frees the old block. The methods are calls, not inlined copies: dlmalloc's are
/// `#[inline]`, and inlined at every allocation site under LTO they add
/// ~270 KB of code.
// SAFETY: blocks valid for their sizes, aligned as asked (malloc: 16, see `is_large`).
unsafe impl GlobalAlloc for Allocator {
    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc` are passed on.
        unsafe { allocate(layout, false) }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align())
            || (may_be_noted(layout.size(), layout.align()) && FROM_MALLOC.take(ptr as usize))
        {
            // SAFETY: a large layout's block came from malloc (see `allocate`),
            // a noted one from malloc or calloc (see `allocate`).
            unsafe { libc::free(ptr.cast()) }
        } else {
            // SAFETY: any other block came from dlmalloc with `layout`.
            unsafe { dl().free(ptr, layout.size(), layout.align()) }
        }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc_zeroed` are passed on.
        unsafe { allocate(layout, true) }
    }

    #[inline(never)]
    // SAFETY: a trait method; its contract is GlobalAlloc's, its blocks as the impl says.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was = is_large(layout.size(), layout.align());
        let will = is_large(new_size, layout.align());
        let is_noted =
            may_be_noted(layout.size(), layout.align()) && FROM_MALLOC.holds(ptr as usize);
        match (is_noted, was, will) {
            // SAFETY: `ptr` came from malloc (large layout), `new_size` is non-zero.
            (false, true, true) => unsafe { libc::realloc(ptr.cast(), new_size).cast() },
            // SAFETY: `ptr` came from dlmalloc with `layout` (small, not noted).
            (false, false, false) => unsafe {
                dl().realloc(ptr, layout.size(), layout.align(), new_size)
            },
            // Across `LARGE`, or a noted block: moved to where `alloc` puts
            // the new size; `dealloc` frees the old one where it is.
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
