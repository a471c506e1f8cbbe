//! Memory across restarts: what the findings engine knows beyond one cycle
//! (each finding's first-seen time, the flap history and best rate of each
//! port, the counts and fingerprints it compares against) in
//! `general.state_dir/findings-state.json`, keyed by the kernel's boot id
//! (`/proc/sys/kernel/random/boot_id`): the same boot resumes, a new boot
//! (every counter and link starts over) starts fresh.
//!
//! Written like the snapshots: a temporary file created
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, synced, renamed over the old one; read through
//! `sources::file` (a regular file, bounded).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::escape;

pub const FILE: &str = "findings-state.json";
const TMP: &str = ".findings-state.json.tmp";
/// A state file larger than this is refused (a node's state is kilobytes).
const MAX: usize = 4 << 20;

/// A finding that was active: its key and when it was first seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedFinding {
    pub id: String,
    /// The key's place: an RDMA device, a netdev, a rule name (as the engine keys it).
    pub place: String,
    pub port: Option<u32>,
    pub priority: Option<u8>,
    pub first_seen_unix_ms: u64,
}

/// One port's history: the flap state machine and the best link it has shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPort {
    pub device: String,
    pub port: u32,
    pub ever_active: bool,
    pub best_width: u8,
    pub best_rate: f64,
    /// Times (Unix ms) of the down→up transitions still in the flap window.
    pub transitions: Vec<u64>,
    pub down_pending: bool,
}

/// What the findings engine carries from one cycle to the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub findings: Vec<SavedFinding>,
    pub ports: Vec<SavedPort>,
    /// Carrier-change and driver link-down counts per netdev (the baselines of their deltas).
    pub carrier: BTreeMap<String, u32>,
    pub link_downs: BTreeMap<String, u64>,
    /// Configuration fingerprints, and the changes still reported.
    pub config: BTreeMap<String, String>,
    pub changed: BTreeMap<String, (u64, String)>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    boot_id: String,
    engine: EngineState,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {}: {reason}", escape(&.path.display().to_string()))]
    Read { path: PathBuf, reason: String },
    #[error("state file {}: {source}", escape(&.path.display().to_string()))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// This boot's id (a UUID the kernel makes at boot), or why it cannot be read.
pub fn boot_id(proc_root: &Path) -> Result<String, StateError> {
    let path = proc_root.join("sys/kernel/random/boot_id");
    crate::sources::file::read_attr(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| StateError::Read {
            path,
            reason: e.to_string(),
        })
}

/// The saved state of this boot: `None` without a file or when it is from another boot.
pub fn load(dir: &Path, boot_id: &str) -> Result<Option<EngineState>, StateError> {
    let path = dir.join(FILE);
    let text = match crate::sources::file::read_text(&path, MAX, crate::sources::file::Follow::No) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(StateError::Read {
                path,
                reason: e.to_string(),
            });
        }
    };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| StateError::Read {
        path: path.clone(),
        reason: format!("not a state file: {e}"),
    })?;
    Ok((file.boot_id == boot_id).then_some(file.engine))
}

/// Replaces the saved state with `engine`, atomically.
pub fn save(dir: &Path, boot_id: &str, engine: &EngineState) -> Result<(), StateError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let (path, tmp) = (dir.join(FILE), dir.join(TMP));
    let json = serde_json::to_vec(&StateFile {
        boot_id: boot_id.to_string(),
        engine: engine.clone(),
    })
    .map_err(|e| err(&path)(std::io::Error::other(e)))?;
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let write = || -> std::io::Result<()> {
        let mut f = match create() {
            // Left over from a crash, or planted (a symlink): remove the name, never follow it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                create()?
            }
            other => other?,
        };
        f.write_all(&json)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(&path)(e)
    })
}

#[cfg(test)]
mod tests;

/// The state file of a running agent: where, for which boot, and whether a
/// failure to save has been said.
pub struct Memory {
    dir: PathBuf,
    boot_id: String,
    save_failing: bool,
}

impl Memory {
    /// With `general.state_dir` set: resumes `findings` from this boot's
    /// saved state, if there is one. A state that cannot be read is said
    /// once and the engine starts fresh.
    pub fn open(
        config: &crate::config::Config,
        findings: &mut crate::analysis::findings::Findings,
    ) -> Option<Memory> {
        let dir = &config.general.state_dir;
        if dir.as_os_str().is_empty() {
            return None;
        }
        let boot_id = match boot_id(&config.general.proc_root) {
            Ok(id) => id,
            Err(e) => {
                log::warn!("{e}: findings are not kept across restarts");
                return None;
            }
        };
        match load(dir, &boot_id) {
            Ok(Some(s)) => {
                log::info!(
                    "resuming {} finding(s) and {} port histories from {}",
                    s.findings.len(),
                    s.ports.len(),
                    dir.join(FILE).display()
                );
                findings.restore_state(s);
            }
            Ok(None) => {}
            Err(e) => log::warn!("{e}; starting fresh"),
        }
        Some(Memory {
            dir: dir.clone(),
            boot_id,
            save_failing: false,
        })
    }

    /// Saves the engine's state; a failure is said once until a save works.
    pub fn save(&mut self, findings: &crate::analysis::findings::Findings) {
        match save(&self.dir, &self.boot_id, &findings.save_state()) {
            Ok(()) => self.save_failing = false,
            Err(e) if !self.save_failing => {
                self.save_failing = true;
                log::error!("{e} (said once until a save works)");
            }
            Err(_) => {}
        }
    }
}
