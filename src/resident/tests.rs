use super::*;

/// One /proc/self/smaps entry (the fields `releasable` reads).
fn entry(range: &str, perms: &str, inode: u32, path: &str, rss: u64, anon: u64) -> String {
    format!(
        "{range} {perms} 00000000 fd:01 {inode}    {path}\nSize: 64 kB\nRss: {rss} kB\nAnonymous: {anon} kB\n"
    )
}

/// Three mappings of the executable (inode 42) as a static-pie musl binary
/// has them, a relocated read-only one, a writable one, a heap and another
/// file's mapping.
fn smaps() -> String {
    let exe = "/usr/bin/rdma-monitor";
    [
        entry("7f0000000000-7f0000001000", "r--p", 42, exe, 4, 0),
        entry("7f0000001000-7f0000100000", "r-xp", 42, exe, 800, 0),
        entry("7f0000100000-7f0000180000", "r--p", 42, exe, 100, 0),
        entry("7f0000180000-7f0000190000", "r--p", 42, exe, 64, 64),
        entry("7f0000190000-7f00001a0000", "rw-p", 42, exe, 64, 64),
        entry(
            "7f00001a0000-7f00001b0000",
            "r--p",
            43,
            "/usr/lib/other.so",
            64,
            0,
        ),
        entry("7f00001b0000-7f00001c0000", "rw-p", 0, "[heap]", 64, 64),
    ]
    .concat()
}

#[test]
fn only_the_executables_unwritten_read_only_pages_are_released() {
    let got = releasable(&smaps(), 0x7f0000002345);
    assert_eq!(
        got,
        vec![
            FileMapping {
                start: 0x7f0000000000,
                end: 0x7f0000001000,
                rss_kib: 4
            },
            FileMapping {
                start: 0x7f0000001000,
                end: 0x7f0000100000,
                rss_kib: 800
            },
            FileMapping {
                start: 0x7f0000100000,
                end: 0x7f0000180000,
                rss_kib: 100
            },
        ]
    );
}

#[test]
fn nothing_is_released_when_the_anchor_is_in_no_file_mapping() {
    assert!(releasable(&smaps(), 0x7f00001b0010).is_empty());
    assert!(releasable(&smaps(), 0x1000).is_empty());
    assert!(releasable("", 0x7f0000002345).is_empty());
}

#[test]
fn a_mapping_whose_anonymous_count_is_missing_is_kept() {
    let smaps = "7f0000001000-7f0000100000 r-xp 00001000 fd:01 42 /x\nRss: 800 kB\n";
    assert!(releasable(smaps, 0x7f0000002345).is_empty());
}

/// The real thing, on this test binary: its code pages leave the resident
/// set and the code still runs (faulted back from the page cache).
#[test]
fn releasing_lowers_this_processs_file_pages_and_the_code_runs_on() {
    fn file_rss_kib() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let anchor = release_file_pages as fn() -> io::Result<Released> as usize;
        releasable(&smaps, anchor).iter().map(|m| m.rss_kib).sum()
    }
    let before = file_rss_kib();
    assert!(before > 0, "the test binary has resident code");
    let parsed = releasable(&smaps(), 0x7f0000002345);
    let done = release_file_pages().unwrap();
    assert!(done.mappings >= 1);
    assert!(done.kib > 0);
    let after = file_rss_kib();
    assert!(
        after < before,
        "resident file pages {before} KiB -> {after} KiB"
    );
    // Code released above runs again (faulted back) and answers as before.
    assert_eq!(releasable(&smaps(), 0x7f0000002345), parsed);
}
