//! Skipped parts made visible (the shell side is tests/skips.sh). A test that
//! cannot run here calls `skip(part, why)`: under CI (`CI` set) the test
//! fails; elsewhere the reason goes to stderr, which libtest hides for a
//! passing test, and to the skip file that `make test` prints at its end.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `RDMA_MON_SKIPS` (the Makefile sets it), else `target/test-skips.txt`.
fn skip_file() -> PathBuf {
    std::env::var_os("RDMA_MON_SKIPS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/test-skips.txt"
            ))
        },
        PathBuf::from,
    )
}

/// Records that `part` did not run, and why; fails the test under CI.
pub fn skip(part: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{part} must run under CI, but: {why}"
    );
    eprintln!("\n*** SKIPPED {part}: {why} ***\n");
    let file = skip_file();
    record(&file, part, why)
        .unwrap_or_else(|e| panic!("recording the skip of {part} in {}: {e}", file.display()));
}

fn record(file: &Path, part: &str, why: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // One line, one write on an O_APPEND file: tests skipping in parallel
    // do not interleave.
    let line = format!("{part}: {}\n", why.replace('\n', " "));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?
        .write_all(line.as_bytes())
}

#[test]
fn skips_are_recorded_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/skips.txt");
    record(&file, "promtool check metrics", "promtool not found").unwrap();
    record(&file, "netdev test", "not\nroot").unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "promtool check metrics: promtool not found\nnetdev test: not root\n"
    );
}
