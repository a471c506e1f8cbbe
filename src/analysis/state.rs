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

/// The fabric verdicts' memory of earlier sweeps (`fabric-memory.json`): not
/// tied to this node's boot, the fabric does not reboot with it.
pub const FABRIC_FILE: &str = "fabric-memory.json";
const FABRIC_TMP: &str = ".fabric-memory.json.tmp";
/// 2,048 nodes and their cables take about 0.5 MiB.
const FABRIC_MAX: usize = 16 << 20;

/// Every node and cable seen in a whole fabric sweep, with when it was last seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedFabric {
    pub nodes: Vec<SavedFabricNode>,
    pub links: Vec<SavedFabricLink>,
    /// The cables of the last whole sweep (`fabric_link_added` compares with it).
    pub last_sweep: Option<Vec<[(u64, u8); 2]>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedFabricNode {
    pub guid: u64,
    pub description: String,
    pub node_type: u8,
    pub last_seen_unix_ms: u64,
}

/// A cable by its ends (node GUID, port), the LIDs at those ends, and the
/// widest and fastest it ran at (lanes, speed rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedFabricLink {
    pub a: (u64, u8),
    pub b: (u64, u8),
    pub lids: (u16, u16),
    pub best: (u8, u8),
    pub last_seen_unix_ms: u64,
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
    let file: Option<StateFile> = read_json(&dir.join(FILE), MAX)?;
    Ok(file.and_then(|f| (f.boot_id == boot_id).then_some(f.engine)))
}

/// Replaces the saved state with `engine`, atomically.
pub fn save(dir: &Path, boot_id: &str, engine: &EngineState) -> Result<(), StateError> {
    let file = StateFile {
        boot_id: boot_id.to_string(),
        engine: engine.clone(),
    };
    write_json(dir, FILE, TMP, &file)
}

/// The saved fabric memory: `None` without a file.
pub fn load_fabric(dir: &Path) -> Result<Option<SavedFabric>, StateError> {
    read_json(&dir.join(FABRIC_FILE), FABRIC_MAX)
}

/// Replaces the saved fabric memory, atomically.
pub fn save_fabric(dir: &Path, fabric: &SavedFabric) -> Result<(), StateError> {
    write_json(dir, FABRIC_FILE, FABRIC_TMP, fabric)
}

/// A JSON file of at most `max` bytes (never through a symlink); `None` when absent.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    max: usize,
) -> Result<Option<T>, StateError> {
    let text = match crate::sources::file::read_text(path, max, crate::sources::file::Follow::No) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Read {
            path: path.to_owned(),
            reason: format!("not a state file: {e}"),
        })
}

/// Writes `value` as `dir/name` whole or not at all (through `tmp`, never
/// following a symlink planted there).
fn write_json<T: Serialize>(
    dir: &Path,
    name: &str,
    tmp: &str,
    value: &T,
) -> Result<(), StateError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let (path, tmp) = (dir.join(name), dir.join(tmp));
    let json = serde_json::to_vec(value).map_err(|e| err(&path)(std::io::Error::other(e)))?;
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
        // The fabric's memory is not this boot's: resumed even when the rest is not.
        match load_fabric(dir) {
            Ok(Some(f)) => {
                log::info!(
                    "resuming the fabric memory of {} node(s) and {} cable(s) from {}",
                    f.nodes.len(),
                    f.links.len(),
                    dir.join(FABRIC_FILE).display()
                );
                findings
                    .restore_fabric_memory(f, crate::clock::unix_ms(std::time::SystemTime::now()));
            }
            Ok(None) => {}
            Err(e) => log::warn!("{e}; the fabric verdicts start without earlier sweeps"),
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
    pub fn save(&mut self, findings: &mut crate::analysis::findings::Findings) {
        let fabric = findings
            .take_fabric_memory()
            .map_or(Ok(()), |f| save_fabric(&self.dir, &f));
        let saved = save(&self.dir, &self.boot_id, &findings.save_state()).and(fabric);
        match saved {
            Ok(()) => self.save_failing = false,
            Err(e) if !self.save_failing => {
                self.save_failing = true;
                log::error!("{e} (said once until a save works)");
            }
            Err(_) => {}
        }
    }
}
