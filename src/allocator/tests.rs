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
