use super::*;

/// Fills `n` bytes at `p` with a pattern of `seed`.
fn fill(p: *mut u8, n: usize, seed: u8) {
    // SAFETY: the tests call it on blocks of at least `n` bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(p, n) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
}

fn holds(p: *const u8, n: usize, seed: u8) -> bool {
    // SAFETY: the tests call it on blocks of at least `n` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(p, n) };
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i as u8).wrapping_mul(31).wrapping_add(seed))
}

/// A block grown and shrunk across `LARGE` keeps its bytes, whichever
/// allocator holds it at each step, and each is freed by the one that holds it.
#[test]
fn a_block_keeps_its_bytes_across_the_large_threshold() {
    let a = Allocator;
    let steps = [
        16,
        LARGE - 1,
        LARGE,
        LARGE + 1,
        4 * LARGE,
        LARGE,
        LARGE - 1,
        100,
        3 * LARGE,
        8,
    ];
    for align in [1, 8, 16, 64, 4096] {
        let mut layout = Layout::from_size_align(steps[0], align).unwrap();
        // SAFETY: a valid, non-zero-sized layout.
        let mut p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        fill(p, layout.size(), 7);
        for &next in &steps[1..] {
            // SAFETY: `p` was allocated with `layout`; `next` is non-zero.
            let q = unsafe { a.realloc(p, layout, next) };
            assert!(!q.is_null(), "{} -> {next} at {align}", layout.size());
            assert_eq!(q as usize % align, 0, "alignment {align}");
            let kept = layout.size().min(next);
            assert!(holds(q, kept, 7), "{} -> {next} at {align}", layout.size());
            layout = Layout::from_size_align(next, align).unwrap();
            fill(q, next, 7);
            p = q;
        }
        // SAFETY: `p` was allocated (last by realloc) with `layout`.
        unsafe { a.dealloc(p, layout) };
    }
}

#[test]
fn zeroed_blocks_are_zero_on_both_sides_of_the_threshold() {
    let a = Allocator;
    for size in [1, 4096, LARGE - 1, LARGE, 2 * LARGE + 3] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a valid, non-zero-sized layout.
        let p = unsafe { a.alloc_zeroed(layout) };
        assert!(!p.is_null());
        // SAFETY: `p` holds `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p, size) };
        assert!(bytes.iter().all(|&b| b == 0));
        // SAFETY: allocated just above with `layout`.
        unsafe { a.dealloc(p, layout) };
    }
}

#[test]
fn only_large_blocks_with_mallocs_alignment_go_to_malloc() {
    assert!(!is_large(LARGE - 1, 1));
    assert!(is_large(LARGE, 16));
    assert!(!is_large(LARGE, 32));
    assert!(!is_large(10 * LARGE, 4096));
}

/// A zeroed block between `SHORT_LIVED` and `LARGE` is calloc's and noted
/// while it lives, found again by `dealloc` and `realloc` (which moves it
/// out of calloc and forgets it); a block of the same size allocated
/// plainly is dlmalloc's and never noted, unless its thread is marked with
/// `short_lived_blocks`.
/// The slots are shared: a test that fills them must not run beside one
/// that needs a free slot.
static SLOTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn zeroed_blocks_below_large_are_noted_while_they_live() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let a = Allocator;
    let layout = Layout::from_size_align(SHORT_LIVED + 100, 8).unwrap();
    // SAFETY: a valid, non-zero-sized layout.
    let z = unsafe { a.alloc_zeroed(layout) };
    assert!(!z.is_null());
    assert!(FROM_MALLOC.holds(z as usize), "a zeroed block of {} bytes is calloc's", layout.size());
    // SAFETY: as above.
    let plain = unsafe { a.alloc(layout) };
    assert!(!FROM_MALLOC.holds(plain as usize));
    fill(z, layout.size(), 3);
    // SAFETY: `z` was allocated with `layout`; the new size is non-zero.
    let moved = unsafe { a.realloc(z, layout, 2 * SHORT_LIVED) };
    assert!(!moved.is_null());
    assert!(holds(moved, layout.size(), 3));
    assert!(!FROM_MALLOC.holds(moved as usize), "a moved block is not calloc's any more");
    let grown = Layout::from_size_align(2 * SHORT_LIVED, 8).unwrap();
    // SAFETY: each with the layout it was (re)allocated with.
    unsafe {
        a.dealloc(moved, grown);
        a.dealloc(plain, layout);
    }
    // SAFETY: as above.
    let z = unsafe { a.alloc_zeroed(layout) };
    assert!(FROM_MALLOC.holds(z as usize));
    // SAFETY: allocated just above with `layout`.
    unsafe { a.dealloc(z, layout) };
    assert!(!FROM_MALLOC.holds(z as usize), "a freed block is forgotten");
}

/// With every slot taken, a zeroed block goes to dlmalloc, and is zero.
#[test]
fn zeroed_blocks_go_to_dlmalloc_when_no_slot_is_free() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let a = Allocator;
    let layout = Layout::from_size_align(SHORT_LIVED, 16).unwrap();
    let mut noted = Vec::new();
    let mut unnoted = None;
    for _ in 0..=NOTED_SLOTS {
        // SAFETY: a valid, non-zero-sized layout.
        let p = unsafe { a.alloc_zeroed(layout) };
        assert!(!p.is_null());
        if FROM_MALLOC.holds(p as usize) {
            noted.push(p);
        } else {
            unnoted = Some(p);
            break;
        }
    }
    let p = unnoted.expect("more zeroed blocks than slots: one is dlmalloc's");
    // SAFETY: `p` holds `layout.size()` bytes.
    assert!(unsafe { std::slice::from_raw_parts(p, layout.size()) }.iter().all(|&b| b == 0));
    // SAFETY: each allocated above with `layout`.
    unsafe {
        a.dealloc(p, layout);
        for q in noted {
            a.dealloc(q, layout);
        }
    }
}

#[test]
fn a_short_lived_threads_blocks_are_noted() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let layout = Layout::from_size_align(SHORT_LIVED + 8, 8).unwrap();
    let small = Layout::from_size_align(SHORT_LIVED - 1, 8).unwrap();
    let (p, q) = std::thread::spawn(move || {
        short_lived_blocks();
        let a = Allocator;
        // SAFETY: valid, non-zero-sized layouts.
        let (p, q) = unsafe { (a.alloc(layout), a.alloc(small)) };
        assert!(FROM_MALLOC.holds(p as usize), "a marked thread's block of {} bytes", layout.size());
        assert!(!FROM_MALLOC.holds(q as usize), "below SHORT_LIVED: dlmalloc's");
        fill(p, layout.size(), 5);
        (p as usize, q as usize)
    })
    .join()
    .unwrap();
    let (p, q) = (p as *mut u8, q as *mut u8);
    // Freed on another thread, unmarked: found by its note.
    assert!(holds(p, layout.size(), 5));
    // SAFETY: allocated above with these layouts.
    unsafe {
        Allocator.dealloc(p, layout);
        Allocator.dealloc(q, small);
    }
    assert!(!FROM_MALLOC.holds(p as usize));
}
