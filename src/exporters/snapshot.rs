//! Snapshot files: `snapshot-<sequence>-<UTC time>.json` in the snapshot
//! directory, written to a hidden temporary file and renamed (a reader never
//! sees a partial file), the oldest pruned past the retention count.
//!
//! "Oldest" is the agent's own write order, the sequence number, never the
//! wall clock: after the clock is stepped back, newer files carry older times,
//! and pruning by time would delete the files just written.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".json";
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
#[error("snapshot {path}: {source}")]
pub struct SnapshotError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl SnapshotError {
    /// The kind of failure, to tell a repeat from a new one ("StorageFull").
    pub fn kind(&self) -> String {
        format!("{:?}", self.source.kind())
    }
}

/// Limits beside the count, for the fabric detail files: a file older than
/// `max_age` (by its mtime) goes, and the oldest go while all of them
/// together exceed `max_bytes`. The file just written always stays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

pub struct SnapshotWriter {
    dir: PathBuf,
    keep: usize,
    retention: Retention,
    prefix: String,
    /// The sequence number of the next file (at least one above any on disk).
    next_seq: u64,
    prune_failures: u64,
    /// Files that could not be removed, named in the log once each.
    said: HashSet<String>,
}

/// One file of this writer in the directory, in write order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// `None`: named before sequence numbers (`<prefix><time>.json`), older than any numbered one.
    seq: Option<u64>,
    name: String,
}

impl SnapshotWriter {
    /// `keep` = 0 keeps every file.
    pub fn new(dir: &Path, keep: u32) -> SnapshotWriter {
        SnapshotWriter::with_prefix(dir, keep, PREFIX)
    }

    /// Files named `<prefix><seq>-<time>.json` (other kinds of files beside the snapshots).
    pub fn with_prefix(dir: &Path, keep: u32, prefix: &str) -> SnapshotWriter {
        SnapshotWriter {
            dir: dir.to_owned(),
            keep: keep as usize,
            retention: Retention::default(),
            prefix: prefix.to_string(),
            next_seq: 1,
            prune_failures: 0,
            said: HashSet::new(),
        }
    }

    /// Age and size limits on top of the count (the count still applies).
    pub fn with_retention(mut self, retention: Retention) -> SnapshotWriter {
        self.retention = retention;
        self
    }

    /// Old files that could not be deleted, counted over every attempt.
    pub fn prune_failures(&self) -> u64 {
        self.prune_failures
    }

    /// Removes the temporary files a crash left behind (this writer's prefix
    /// only: nothing else writes them, so any found are leftovers).
    pub fn remove_leftovers(&mut self) {
        if let Ok(entries) = self.scan() {
            self.note_sequence(&entries);
        }
    }

    /// This writer's files in the directory, oldest first; leftover
    /// temporary files are removed on the way.
    fn scan(&self) -> io::Result<Vec<Entry>> {
        let tmp_prefix = format!(".{}", self.prefix);
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let Ok(name) = e?.file_name().into_string() else {
                continue;
            };
            if name.starts_with(&tmp_prefix) && name.ends_with(TMP_SUFFIX) {
                match std::fs::remove_file(self.dir.join(&name)) {
                    Ok(()) => log::info!("removed {name}, left by an interrupted write"),
                    Err(e) => log::debug!("cannot remove leftover {name}: {e}"),
                }
                continue;
            }
            let Some(middle) = name
                .strip_prefix(&self.prefix)
                .and_then(|m| m.strip_suffix(SUFFIX))
            else {
                continue;
            };
            let seq = middle
                .split_once('-')
                .and_then(|(n, _)| n.parse::<u64>().ok());
            entries.push(Entry { seq, name });
        }
        entries.sort();
        Ok(entries)
    }

    fn note_sequence(&mut self, entries: &[Entry]) {
        if let Some(max) = entries.iter().filter_map(|e| e.seq).max() {
            self.next_seq = self.next_seq.max(max.saturating_add(1));
        }
    }

    /// Writes `json` under a name made from `timestamp` (RFC 3339, UTC).
    /// Pruning never fails the write: what cannot be removed is skipped and counted.
    pub fn write(&mut self, timestamp: &str, json: &[u8]) -> Result<PathBuf, SnapshotError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(err(&self.dir))?;
        let existing = match self.scan() {
            Ok(entries) => Some(entries),
            Err(e) => {
                self.prune_failures += 1;
                if self.said.insert(self.dir.display().to_string()) {
                    log::warn!(
                        "cannot list {}: {e}; old snapshots are not pruned",
                        self.dir.display()
                    );
                }
                None
            }
        };
        if let Some(entries) = &existing {
            self.note_sequence(entries);
        }
        // 2026-11-25T18:13:18.123Z → 20261125T181318.123Z: no colons.
        let stamp: String = timestamp
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        // Zero-padded so `ls` lists files in write order too.
        let name = format!("{}{seq:08}-{stamp}{SUFFIX}", self.prefix);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}{TMP_SUFFIX}"));
        let write = || -> io::Result<()> {
            let mut f = match create_new(&tmp) {
                // Planted (a symlink) or left over: remove the name, never follow it.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    std::fs::remove_file(&tmp)?;
                    create_new(&tmp)?
                }
                other => other?,
            };
            f.write_all(json)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(&path)(e));
        }
        if let Some(entries) = existing {
            self.prune(entries, &name);
        }
        Ok(path)
    }

    /// Deletes the oldest of `entries` (the files before this write) so that
    /// `keep` remain with the one just written, and (with a [`Retention`])
    /// those past its age or size; a file that cannot be deleted is skipped
    /// and does not count.
    fn prune(&mut self, entries: Vec<Entry>, written: &str) {
        let Retention { max_age, max_bytes } = self.retention;
        if self.keep == 0 && max_age.is_none() && max_bytes.is_none() {
            return;
        }
        // Sizes and times only when a limit needs them: the main snapshot's
        // pruning stays one listing.
        let stat = |name: &str| {
            std::fs::symlink_metadata(self.dir.join(name))
                .map(|m| (m.len(), m.modified().ok()))
                .unwrap_or((0, None))
        };
        let limited = max_age.is_some() || max_bytes.is_some();
        let stats: Vec<(u64, Option<SystemTime>)> = if limited {
            entries.iter().map(|e| stat(&e.name)).collect()
        } else {
            Vec::new()
        };
        let mut total: u64 = stats.iter().map(|s| s.0).sum::<u64>() + stat(written).0;
        let cutoff = max_age.and_then(|a| SystemTime::now().checked_sub(a));
        let mut left = entries.len() + 1;
        for (i, e) in entries.into_iter().enumerate() {
            if e.name == written {
                continue;
            }
            let (size, mtime) = stats.get(i).copied().unwrap_or((0, None));
            let by_count = self.keep != 0 && left > self.keep;
            let by_age = matches!((cutoff, mtime), (Some(c), Some(m)) if m < c);
            let by_size = max_bytes.is_some_and(|b| total > b);
            if !(by_count || by_age || by_size) {
                // Oldest first: nothing newer is past the count or the size;
                // only the age test can still hit a later file.
                if max_age.is_none() {
                    break;
                }
                continue;
            }
            left -= 1;
            total = total.saturating_sub(size);
            match std::fs::remove_file(self.dir.join(&e.name)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    self.prune_failures += 1;
                    if self.said.insert(e.name.clone()) {
                        log::warn!(
                            "cannot delete old snapshot {}: {err}; skipped (counted in rdma_monitor_snapshot_prune_failures_total)",
                            self.dir.join(&e.name).display()
                        );
                    }
                }
            }
        }
    }
}

/// `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`: never opens what is already
/// there, a symlink planted at the name included.
fn create_new(path: &Path) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    const T0: &str = "2026-11-25T18:00:00.000Z";

    #[test]
    fn writes_whole_files_and_prunes_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("snaps");
        let mut w = SnapshotWriter::new(&sub, 2);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("unrelated.txt"), "keep me").unwrap();
        for (i, ts) in [T0, "2026-11-25T18:00:30.000Z", "2026-11-25T18:01:00.000Z"]
            .iter()
            .enumerate()
        {
            let p = w.write(ts, format!("{{\"n\":{i}}}").as_bytes()).unwrap();
            assert_eq!(
                std::fs::read_to_string(p).unwrap(),
                format!("{{\"n\":{i}}}")
            );
        }
        assert_eq!(
            listing(&sub),
            vec![
                "snapshot-00000002-20261125T180030.000Z.json",
                "snapshot-00000003-20261125T180100.000Z.json",
                "unrelated.txt"
            ]
        );
        // A new writer (a restart) continues the sequence.
        let mut w = SnapshotWriter::new(&sub, 2);
        let p = w.write(T0, b"{}").unwrap();
        assert!(
            p.ends_with("snapshot-00000004-20261125T180000.000Z.json"),
            "{p:?}"
        );
    }

    #[test]
    fn retention_by_age_and_by_size_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let at = |i: u32| format!("2026-11-25T18:00:{i:02}.000Z");
        // Size: 100-byte files, at most 250 bytes in all: two stay.
        let mut w =
            SnapshotWriter::with_prefix(dir.path(), 100, "fabric-").with_retention(Retention {
                max_age: None,
                max_bytes: Some(250),
            });
        for i in 0..5 {
            w.write(&at(i), &[b' '; 100]).unwrap();
        }
        assert_eq!(
            listing(dir.path()),
            vec![
                "fabric-00000004-20261125T180003.000Z.json",
                "fabric-00000005-20261125T180004.000Z.json",
            ]
        );
        // One file larger than the limit on its own: the newest always stays.
        w.write(&at(5), &[b' '; 300]).unwrap();
        assert_eq!(
            listing(dir.path()),
            vec!["fabric-00000006-20261125T180005.000Z.json"]
        );
        // Age: a file last written two hours ago goes, whatever the count.
        let old = dir.path().join("fabric-00000006-20261125T180005.000Z.json");
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let mut w =
            SnapshotWriter::with_prefix(dir.path(), 100, "fabric-").with_retention(Retention {
                max_age: Some(Duration::from_secs(3600)),
                max_bytes: None,
            });
        w.write(&at(6), b"{}").unwrap();
        w.write(&at(7), b"{}").unwrap();
        assert_eq!(
            listing(dir.path()),
            vec![
                "fabric-00000007-20261125T180006.000Z.json",
                "fabric-00000008-20261125T180007.000Z.json",
            ]
        );
        // Another prefix's files are never counted or pruned.
        let mut main = SnapshotWriter::new(dir.path(), 1);
        main.write(&at(8), b"{}").unwrap();
        assert_eq!(listing(dir.path()).len(), 3);
    }

    #[test]
    fn unwritable_dir_is_an_error_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let mut w = SnapshotWriter::new(&file.join("sub"), 2);
        let e = w.write(T0, b"{}").unwrap_err();
        assert!(e.to_string().contains("file/sub"), "{e}");
        assert_eq!(e.kind(), "NotADirectory");
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let sub = dir.path().join("snaps");
        std::fs::create_dir_all(&sub).unwrap();
        // The temporary names this writer (and the one before it) would use.
        for name in [
            ".snapshot-00000001-20261125T180000.000Z.json.tmp",
            ".snapshot-20261125T180000.000Z.json.tmp",
        ] {
            std::os::unix::fs::symlink(&victim, sub.join(name)).unwrap();
        }
        let mut w = SnapshotWriter::new(&sub, 0);
        let p = w.write(T0, b"{\"new\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"new\":1}");
        // The open itself refuses a name that exists, a symlink included.
        let link = sub.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = create_new(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn an_entry_that_cannot_be_deleted_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be removed with unlink (even by root).
        let stuck = dir.path().join("snapshot-19700101T000000.000Z.json");
        std::fs::create_dir(&stuck).unwrap();
        let mut w = SnapshotWriter::new(dir.path(), 2);
        for i in 0..6 {
            w.write(&format!("2026-11-25T18:00:0{i}.000Z"), b"{}")
                .expect("pruning never fails a good write");
        }
        assert_eq!(
            listing(dir.path()),
            vec![
                "snapshot-00000005-20261125T180004.000Z.json",
                "snapshot-00000006-20261125T180005.000Z.json",
                "snapshot-19700101T000000.000Z.json",
            ]
        );
        assert!(w.prune_failures() >= 1);
    }

    #[test]
    fn future_dated_names_never_cost_a_new_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        // Written before the clock was stepped back, by an older version and by this one.
        std::fs::write(dir.path().join("snapshot-20991231T000000.000Z.json"), "{}").unwrap();
        let mut w = SnapshotWriter::new(dir.path(), 1);
        w.write("2099-12-31T00:00:01.000Z", b"{}").unwrap();
        let p = w.write(T0, b"{\"latest\":1}").unwrap();
        assert_eq!(
            listing(dir.path()),
            vec!["snapshot-00000002-20261125T180000.000Z.json"]
        );
        assert_eq!(std::fs::read_to_string(p).unwrap(), "{\"latest\":1}");
    }

    #[test]
    fn leftover_temporary_files_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".snapshot-00000007-20261125T180000.000Z.json.tmp",
            ".snapshot-20261125T180000.000Z.json.tmp",
            ".analysis-llm-00000001-x.json.tmp",
            "snapshot-00000007-20261125T175930.000Z.json",
        ] {
            std::fs::write(dir.path().join(name), "partial").unwrap();
        }
        let mut w = SnapshotWriter::new(dir.path(), 0);
        w.remove_leftovers();
        assert_eq!(
            listing(dir.path()),
            vec![
                // Another writer's: not this one's to remove.
                ".analysis-llm-00000001-x.json.tmp",
                "snapshot-00000007-20261125T175930.000Z.json",
            ]
        );
        let p = w.write(T0, b"{}").unwrap();
        assert!(
            p.ends_with("snapshot-00000008-20261125T180000.000Z.json"),
            "{p:?}"
        );
    }
}
