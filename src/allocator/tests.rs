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
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
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

/// The slots are shared: a test that fills them, or counts them, must not
/// run beside another that uses them.
static SLOTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn slots_taken() -> usize {
    FROM_MALLOC
        .0
        .iter()
        .filter(|s| s.load(Acquire) != 0)
        .count()
}

/// Runs `f` on a new thread marked with `short_lived_blocks`.
fn on_marked_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        short_lived_blocks();
        f()
    })
    .join()
    .unwrap()
}

/// A marked thread's blocks between `SHORT_LIVED` and `LARGE`, plain or
/// zeroed, are malloc's and noted while they live, found again by `dealloc`
/// on another thread; below `SHORT_LIVED`, above 16-byte alignment, or on
/// an unmarked thread, a block is dlmalloc's and never noted.
#[test]
fn a_marked_threads_blocks_are_noted_while_they_live() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let before = slots_taken();
    let layout = Layout::from_size_align(SHORT_LIVED + 8, 8).unwrap();
    let small = Layout::from_size_align(SHORT_LIVED - 1, 8).unwrap();
    let aligned = Layout::from_size_align(SHORT_LIVED + 8, 64).unwrap();
    let blocks = on_marked_thread(move || {
        let a = Allocator;
        // SAFETY: valid, non-zero-sized layouts.
        let (p, z, q, w) = unsafe {
            (
                a.alloc(layout),
                a.alloc_zeroed(layout),
                a.alloc(small),
                a.alloc_zeroed(aligned),
            )
        };
        assert!(
            FROM_MALLOC.holds(p as usize),
            "a marked thread's {} bytes",
            layout.size()
        );
        assert!(FROM_MALLOC.holds(z as usize), "zeroed, too");
        // SAFETY: `z` holds `layout.size()` bytes.
        let zeroed = unsafe { std::slice::from_raw_parts(z, layout.size()) };
        assert!(zeroed.iter().all(|&b| b == 0));
        assert!(
            !FROM_MALLOC.holds(q as usize),
            "below SHORT_LIVED: dlmalloc's"
        );
        assert!(
            !FROM_MALLOC.holds(w as usize),
            "64-byte aligned: dlmalloc's"
        );
        assert_eq!(w as usize % 64, 0);
        fill(p, layout.size(), 5);
        [p as usize, z as usize, q as usize, w as usize]
    });
    let [p, z, q, w] = blocks.map(|b| b as *mut u8);
    assert_eq!(slots_taken(), before + 2);
    // SAFETY: as above.
    let unmarked = unsafe { Allocator.alloc_zeroed(layout) };
    assert!(
        !FROM_MALLOC.holds(unmarked as usize),
        "an unmarked thread's block"
    );
    assert!(holds(p, layout.size(), 5));
    // SAFETY: each allocated above with its layout, freed here, on another thread.
    unsafe {
        Allocator.dealloc(p, layout);
        Allocator.dealloc(z, layout);
        Allocator.dealloc(q, small);
        Allocator.dealloc(w, aligned);
        Allocator.dealloc(unmarked, layout);
    }
    assert_eq!(slots_taken(), before, "freed blocks are forgotten");
}

/// `realloc` moves a noted block to where `alloc` puts the new size (and
/// frees its slot), whatever the size: within the noted range, past
/// `LARGE`, below `SHORT_LIVED`; the bytes go along.
#[test]
fn realloc_moves_a_noted_block_out_with_its_bytes() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let before = slots_taken();
    let layout = Layout::from_size_align(SHORT_LIVED + 100, 16).unwrap();
    for new_size in [2 * SHORT_LIVED, 2 * LARGE, 100] {
        let p = on_marked_thread(move || {
            // SAFETY: a valid, non-zero-sized layout.
            let p = unsafe { Allocator.alloc(layout) };
            fill(p, layout.size(), 9);
            p as usize
        }) as *mut u8;
        assert!(FROM_MALLOC.holds(p as usize));
        // SAFETY: `p` was allocated with `layout`; `new_size` is non-zero.
        let moved = unsafe { Allocator.realloc(p, layout, new_size) };
        assert!(!moved.is_null());
        assert!(
            holds(moved, layout.size().min(new_size), 9),
            "to {new_size}"
        );
        assert_eq!(
            slots_taken(),
            before,
            "to {new_size}: the old block's slot is free"
        );
        assert!(!FROM_MALLOC.holds(moved as usize));
        // SAFETY: `moved` holds `new_size` bytes with `layout`'s alignment.
        unsafe { Allocator.dealloc(moved, Layout::from_size_align(new_size, 16).unwrap()) };
    }
}

/// With every slot taken, a marked thread's block goes to dlmalloc, and a
/// zeroed one is zero.
#[test]
fn blocks_go_to_dlmalloc_when_no_slot_is_free() {
    let _slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let layout = Layout::from_size_align(SHORT_LIVED, 16).unwrap();
    let (noted, unnoted) = on_marked_thread(move || {
        let mut noted = Vec::new();
        for _ in 0..=NOTED_SLOTS {
            // SAFETY: a valid, non-zero-sized layout.
            let p = unsafe { Allocator.alloc_zeroed(layout) };
            assert!(!p.is_null());
            if !FROM_MALLOC.holds(p as usize) {
                return (noted, Some(p as usize));
            }
            noted.push(p as usize);
        }
        (noted, None)
    });
    let p = unnoted.expect("more blocks than slots: one is dlmalloc's") as *mut u8;
    assert_eq!(slots_taken(), NOTED_SLOTS);
    // SAFETY: `p` holds `layout.size()` bytes.
    let zeroed = unsafe { std::slice::from_raw_parts(p, layout.size()) };
    assert!(zeroed.iter().all(|&b| b == 0));
    // SAFETY: each allocated above with `layout`.
    unsafe {
        Allocator.dealloc(p, layout);
        for q in noted {
            Allocator.dealloc(q as *mut u8, layout);
        }
    }
}
