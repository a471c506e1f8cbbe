//! PID → cgroup → consumer: which Slurm job step, Kubernetes pod (container),
//! systemd unit or process a PID belongs to, from `<proc_root>/<pid>/cgroup`
//! (cgroup v2 `0::<path>`, v1 `<id>:<controllers>:<path>`), its start time
//! and name from `<proc_root>/<pid>/stat`, user names from
//! `<host_root>/etc/passwd`, pod names from `<host_root>/var/log/pods/
//! <namespace>_<name>_<uid>/` (the kubelet's log directories: no API call).
//!
//! Parsing is pure (`parse_*`, `classify`); [`Resolver`] does the reads and
//! keeps each PID's answer while its start time stays the same, so a steady
//! node costs one `stat` read per PID and cycle, and a reused PID is resolved
//! again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::consumers::{Identity, Kind, Labels, ProcessInfo};
use crate::sources::file::{self, Follow};

/// `/proc/<pid>/cgroup`: one line per hierarchy; a few KiB even with every v1 controller.
const CGROUP_MAX: usize = 64 << 10;
/// `/etc/passwd` can be large on a node with many local users.
const PASSWD_MAX: usize = 4 << 20;
/// Pod log directories looked at, at most (a node runs at most a few hundred pods).
const PODS_MAX: usize = 4096;

/// Fields of `/proc/<pid>/stat` (proc(5)): `comm` (2) and `starttime` (22,
/// clock ticks after boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub starttime: u64,
}

/// `comm` sits in parentheses and may itself hold `)` and spaces: the
/// fields after it start after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Field 3 (state) is the first after ")", so starttime (22) is the 20th.
    let starttime = text
        .get(close + 1..)?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    Some(Stat { comm, starttime })
}

/// The cgroup paths of a process: the v2 one first, then the v1 ones (the
/// `name=systemd` hierarchy last: it names units, not jobs or pods).
pub fn parse_cgroup(text: &str) -> Vec<&str> {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    let mut systemd = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2.push(path);
        } else if controllers == "name=systemd" {
            systemd.push(path);
        } else {
            v1.push(path);
        }
    }
    v2.extend(v1);
    v2.extend(systemd);
    v2
}

/// How specific a placement is: a Slurm job or a pod names the workload, a
/// unit only the service that started it. On a systemd hybrid host a Slurm
/// cgroup v1 job's `0::` path is `slurmd.service` while its v1 hierarchies
/// hold `job_<id>`: the most specific placement over all hierarchies wins.
fn specificity(p: &Placement) -> u8 {
    match p {
        Placement::Slurm { .. } | Placement::Pod { .. } => 2,
        Placement::Unit(_) => 1,
    }
}

/// The most specific placement of a process's cgroup paths; among equals the
/// first (v2, then v1, then `name=systemd`: see [`parse_cgroup`]).
pub fn classify_process(cgroup: &str) -> Option<Placement> {
    let mut best: Option<Placement> = None;
    for p in parse_cgroup(cgroup).into_iter().filter_map(classify) {
        if best
            .as_ref()
            .is_none_or(|b| specificity(&p) > specificity(b))
        {
            best = Some(p);
        }
    }
    best
}

/// What a cgroup path says about its process, before names are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Slurm {
        job_id: String,
        step: Option<String>,
        /// v1 paths carry `uid_<uid>`.
        uid: Option<u32>,
    },
    Pod {
        /// Canonical, dashed.
        pod_uid: String,
        container_id: Option<String>,
    },
    Unit(String),
}

/// Container runtime prefixes of a systemd-driver scope (`cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `docker-<id>.scope`); cgroupfs names carry the bare id,
/// or with CRI-O `crio-<id>`.
const RUNTIME_PREFIXES: [&str; 4] = ["cri-containerd-", "crio-", "docker-", "containerd-"];

fn container_id(seg: &str) -> Option<String> {
    let s = seg.strip_suffix(".scope").unwrap_or(seg);
    let s = RUNTIME_PREFIXES
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    // CRI-O's conmon sits beside the container (`crio-conmon-<id>.scope`): not the workload.
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_string())
}

/// A pod UID as the kubelet writes it: canonical dashed (8-4-4-4-12 hex) for
/// API pods, or 32 hex digits without dashes for static and mirror pods (the
/// kubelet hashes the manifest). Lower case; `None` for anything else.
pub fn canonical_pod_uid(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let ok = match b.len() {
        32 => b.iter().all(u8::is_ascii_hexdigit),
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        _ => false,
    };
    ok.then(|| raw.to_ascii_lowercase())
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid(seg: &str) -> Option<String> {
    let raw = if let Some(s) = seg.strip_suffix(".slice") {
        s.rsplit_once("-pod")?.1
    } else {
        seg.strip_prefix("pod")?
    };
    canonical_pod_uid(&raw.replace('_', "-"))
}

fn is_slurm_root(seg: &str) -> bool {
    // v2: `slurmstepd.scope` or `<node>_slurmstepd.scope` (multiple slurmd
    // per host); v1: `slurm` or `slurm_<node>`.
    seg == "slurmstepd.scope"
        || seg.ends_with("_slurmstepd.scope")
        || seg == "slurm"
        || seg.starts_with("slurm_")
}

/// Classifies one cgroup path.
pub fn classify(path: &str) -> Option<Placement> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(root) = segs.iter().position(|s| is_slurm_root(s)) {
        let mut uid = None;
        let mut job = None;
        let mut step = None;
        for s in &segs[root + 1..] {
            if let Some(u) = s.strip_prefix("uid_") {
                uid = u.parse().ok();
            } else if let Some(j) = s.strip_prefix("job_") {
                job = Some(j.to_string());
            } else if let Some(st) = s.strip_prefix("step_")
                && job.is_some()
            {
                step = Some(st.to_string());
                break;
            }
        }
        if let Some(job_id) = job {
            return Some(Placement::Slurm { job_id, step, uid });
        }
    }
    // In a private cgroup namespace (cgroupfs driver, the agent in a pod of
    // its own) another pod's path is relative to the agent's container:
    // `/../../pod<uid>/<id>`, with no `kubepods` left to see.
    if segs.iter().any(|s| s.starts_with("kubepods")) || segs.first() == Some(&"..") {
        for (i, s) in segs.iter().enumerate() {
            if let Some(pod_uid) = pod_uid(s) {
                let container_id = segs.get(i + 1).and_then(|c| container_id(c));
                return Some(Placement::Pod {
                    pod_uid,
                    container_id,
                });
            }
        }
    }
    segs.iter()
        .rev()
        .find(|s| s.ends_with(".service") || s.ends_with(".scope"))
        .map(|s| Placement::Unit(s.to_string()))
}

/// The real uid: the first number of `Uid:` in `/proc/<pid>/status`.
pub fn parse_status_uid(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `name:x:uid:...` lines → uid → name.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, name.to_string()))
        })
        .collect()
}

/// `<namespace>_<name>_<uid>`: neither a namespace nor a pod name can hold `_`.
pub fn parse_pod_dir(name: &str) -> Option<(String, String, String)> {
    let mut it = name.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    let uid = canonical_pod_uid(uid)?;
    (!ns.is_empty() && !pod.is_empty()).then(|| (ns.to_string(), pod.to_string(), uid))
}

/// Why a PID was not resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// `/proc/<pid>` is gone (or never was, in this PID namespace).
    Vanished,
    /// The process started after the dump: the PID was reused, the dump's
    /// owner is gone.
    Reused,
}

/// Resolves PIDs against a `/proc` and a host root; caches by PID and start time.
pub struct Resolver {
    proc_root: PathBuf,
    host_root: PathBuf,
    cache: HashMap<u32, (u64, ProcessInfo)>,
    passwd: Option<HashMap<u32, String>>,
    /// Pod uid → (namespace, name); rescanned when an unknown uid is asked,
    /// at most once per [`Resolver::begin_cycle`].
    pods: HashMap<String, (String, String)>,
    pods_scanned: bool,
    /// PIDs seen this cycle (the cache keeps only these at the next cycle).
    seen: Vec<u32>,
}

impl Resolver {
    pub fn new(proc_root: &Path, host_root: &Path) -> Resolver {
        Resolver {
            proc_root: proc_root.to_owned(),
            host_root: host_root.to_owned(),
            cache: HashMap::new(),
            passwd: None,
            pods: HashMap::new(),
            pods_scanned: false,
            seen: Vec::new(),
        }
    }

    /// Forgets the PIDs the last cycle did not ask for, and lets names be re-read.
    pub fn begin_cycle(&mut self) {
        if !self.seen.is_empty() || !self.cache.is_empty() {
            let seen: std::collections::HashSet<u32> = self.seen.drain(..).collect();
            self.cache.retain(|pid, _| seen.contains(pid));
        }
        self.passwd = None;
        self.pods_scanned = false;
    }

    fn stat(&self, pid: u32) -> Option<Stat> {
        let bytes = file::read(
            &self.proc_root.join(pid.to_string()).join("stat"),
            file::ATTR_MAX,
            Follow::No,
        )
        .ok()?;
        // `comm` is whatever the process set (prctl PR_SET_NAME): not always UTF-8.
        parse_stat(&String::from_utf8_lossy(&bytes))
    }

    /// The consumer of `pid`. `not_after`: the start time (clock ticks after
    /// boot, as `/proc/<pid>/stat` counts) of the dump the PID came from; a
    /// process started later cannot own what the dump listed.
    pub fn resolve(&mut self, pid: u32, not_after: Option<u64>) -> Result<ProcessInfo, Unresolved> {
        self.seen.push(pid);
        let stat = self.stat(pid).ok_or(Unresolved::Vanished)?;
        if not_after.is_some_and(|t| stat.starttime > t) {
            return Err(Unresolved::Reused);
        }
        if let Some((start, info)) = self.cache.get(&pid)
            && *start == stat.starttime
        {
            return Ok(info.clone());
        }
        let dir = self.proc_root.join(pid.to_string());
        // Cgroup directory names are bytes too (a job's own sub-cgroups).
        let cgroup = file::read(&dir.join("cgroup"), CGROUP_MAX, Follow::No)
            .map_err(|_| Unresolved::Vanished)?;
        let cgroup = String::from_utf8_lossy(&cgroup);
        // The same process still? A PID reused between the two reads would mix two processes.
        match self.stat(pid) {
            Some(again) if again.starttime == stat.starttime => {}
            _ => return Err(Unresolved::Vanished),
        }
        let placement = classify_process(&cgroup);
        let identity = self.identity(placement, &stat.comm, &dir);
        let info = ProcessInfo {
            identity,
            comm: Some(stat.comm.clone()),
        };
        self.cache.insert(pid, (stat.starttime, info.clone()));
        Ok(info)
    }

    fn user(&mut self, uid: u32) -> String {
        let host = &self.host_root;
        let passwd = self.passwd.get_or_insert_with(|| {
            file::read_text(&host.join("etc/passwd"), PASSWD_MAX, Follow::Yes)
                .map(|t| parse_passwd(&t))
                .unwrap_or_default()
        });
        passwd.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }

    fn pod_name(&mut self, uid: &str) -> Option<(String, String)> {
        if !self.pods.contains_key(uid) && !self.pods_scanned {
            self.pods_scanned = true;
            self.pods.clear();
            if let Ok(dir) = std::fs::read_dir(self.host_root.join("var/log/pods")) {
                for e in dir.take(PODS_MAX).flatten() {
                    if let Some((ns, name, u)) = e.file_name().to_str().and_then(parse_pod_dir) {
                        self.pods.insert(u, (ns, name));
                    }
                }
            }
        }
        self.pods.get(uid).cloned()
    }

    fn identity(&mut self, placement: Option<Placement>, comm: &str, dir: &Path) -> Identity {
        match placement {
            Some(Placement::Slurm { job_id, step, uid }) => {
                // v2 paths carry no uid: the task's real uid from `status`.
                let uid = uid.or_else(|| {
                    file::read_text(&dir.join("status"), CGROUP_MAX, Follow::No)
                        .ok()
                        .and_then(|t| parse_status_uid(&t))
                });
                let user = uid.map(|u| self.user(u));
                let id = match &step {
                    Some(s) => format!("{job_id}.{s}"),
                    None => job_id.clone(),
                };
                Identity {
                    kind: Kind::SlurmJob,
                    id,
                    labels: Labels {
                        job_id: Some(job_id),
                        step,
                        user,
                        ..Labels::default()
                    },
                }
            }
            Some(Placement::Pod {
                pod_uid,
                container_id,
            }) => {
                let names = self.pod_name(&pod_uid);
                let id = match &container_id {
                    Some(c) => format!("{pod_uid}/{c}"),
                    None => pod_uid.clone(),
                };
                let (namespace, pod) = names.unzip();
                Identity {
                    kind: Kind::Pod,
                    id,
                    labels: Labels {
                        namespace,
                        pod,
                        pod_uid: Some(pod_uid),
                        container_id,
                        ..Labels::default()
                    },
                }
            }
            Some(Placement::Unit(unit)) => Identity {
                kind: Kind::Unit,
                id: unit.clone(),
                labels: Labels {
                    unit: Some(unit),
                    ..Labels::default()
                },
            },
            None => Identity {
                kind: Kind::Process,
                id: comm.to_string(),
                labels: Labels {
                    comm: Some(comm.to_string()),
                    ..Labels::default()
                },
            },
        }
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
