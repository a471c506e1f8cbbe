//! Snapshot files: `snapshot-<UTC time>.json` in the snapshot directory,
//! written to a hidden temporary file and renamed (a reader never sees a
//! partial file), the oldest pruned past the retention count.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".json";

#[derive(Debug, thiserror::Error)]
#[error("snapshot {path}: {source}")]
pub struct SnapshotError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub struct SnapshotWriter {
    dir: PathBuf,
    keep: usize,
    prefix: String,
}

impl SnapshotWriter {
    /// `keep` = 0 keeps every file.
    pub fn new(dir: &Path, keep: u32) -> SnapshotWriter {
        SnapshotWriter::with_prefix(dir, keep, PREFIX)
    }

    /// Files named `<prefix><time>.json` (other kinds of files beside the snapshots).
    pub fn with_prefix(dir: &Path, keep: u32, prefix: &str) -> SnapshotWriter {
        SnapshotWriter {
            dir: dir.to_owned(),
            keep: keep as usize,
            prefix: prefix.to_string(),
        }
    }

    /// Writes `json` under a name made from `timestamp` (RFC 3339, UTC).
    pub fn write(&self, timestamp: &str, json: &[u8]) -> Result<PathBuf, SnapshotError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(err(&self.dir))?;
        // 2026-11-25T18:13:18.123Z → 20261125T181318.123Z: sorts by time, no colons.
        let stamp: String = timestamp
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let name = format!("{}{stamp}{SUFFIX}", self.prefix);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(json)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(&path)(e));
        }
        self.prune().map_err(err(&self.dir))?;
        Ok(path)
    }

    fn prune(&self) -> io::Result<()> {
        if self.keep == 0 {
            return Ok(());
        }
        let mut files: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&self.prefix) && n.ends_with(SUFFIX))
            .collect();
        if files.len() <= self.keep {
            return Ok(());
        }
        files.sort();
        for old in &files[..files.len() - self.keep] {
            std::fs::remove_file(self.dir.join(old))?;
        }
        Ok(())
    }
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

    #[test]
    fn writes_whole_files_and_prunes_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("snaps");
        let w = SnapshotWriter::new(&sub, 2);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("unrelated.txt"), "keep me").unwrap();
        for (i, ts) in [
            "2026-11-25T18:00:00.000Z",
            "2026-11-25T18:00:30.000Z",
            "2026-11-25T18:01:00.000Z",
        ]
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
                "snapshot-20261125T180030.000Z.json",
                "snapshot-20261125T180100.000Z.json",
                "unrelated.txt"
            ]
        );
    }

    #[test]
    fn unwritable_dir_is_an_error_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let w = SnapshotWriter::new(&file.join("sub"), 2);
        let e = w.write("2026-11-25T18:00:00.000Z", b"{}").unwrap_err();
        assert!(e.to_string().contains("file/sub"), "{e}");
    }
}
