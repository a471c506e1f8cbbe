//! One attribution pass: the QP, MR, CQ and PD dumps of every device (one
//! dump per type and device), the PIDs in them resolved to consumers through
//! `/proc` ([`super::cgroup`]), the bound per-PID counters of the cycle's
//! netlink reading summed per consumer. Dumps on the first cycle, at least
//! every `attribution.interval`, and at once when a device's resource
//! summary (the cycle's RES_GET counts) differs from the one the last dump
//! went with; in between, the last dump stands (regrouped each cycle when
//! bound per-PID counters are there, so their values stay current).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup::{Resolver, Unresolved};
use super::netlink::NlTransport as Transport;
use super::netlink::nldev::Client;
use super::netlink::nldev::poll::NetlinkReading;
use super::netlink::nldev::res::{Budget, ResKind};
use crate::model::Counter;
use crate::model::consumers::{self, Attribution, AttributionStatus, PidCounter, ResDump};

pub struct AttributionSource {
    resolver: Resolver,
    proc_root: PathBuf,
    interval: Duration,
    max_consumers: usize,
    last: Option<Instant>,
    /// Is the agent in the host's (initial) PID namespace? `None`: cannot tell.
    host_pid_ns: Option<bool>,
    /// The last dump, what its pass said, and the resource summary of each
    /// device (index, counts) of the reading it went with.
    last_dump: Option<LastDump>,
    last_summary: Vec<(u32, Vec<Counter>)>,
    /// The last pass grouped bound per-PID counters.
    had_pid_counters: bool,
    /// The processes of the last dump, watched for their exit.
    exits: ExitWatch,
}

struct LastDump {
    dump: ResDump,
    status: AttributionStatus,
    /// The uptime (clock ticks) read just after the dump: a process that
    /// started later cannot own what it listed, however late it is grouped.
    not_after: Option<u64>,
}

/// Opens a pidfd for a PID; `Err(errno)`.
type OpenPidfd = Box<dyn Fn(u32) -> Result<OwnedFd, i32> + Send>;

/// PIDs watched at most (one pidfd each), and never more than a quarter of
/// the agent's open-file limit.
const MAX_WATCHED_PIDS: usize = 1024;

/// The owners of the last dump's resources, one pidfd each: a pidfd polls
/// readable once its process exits, so one `poll(2)` with timeout 0 a cycle
/// tells whether the dump still names only live processes. A job that ends
/// and another that starts with equal resource counts leave the RES_GET
/// summary as it was; without this the ended job's consumer would be
/// published with the new job's QPs until the interval. When the set cannot
/// be watched whole (more PIDs than the budget; no pidfd_open: Linux < 5.3,
/// ENOSYS, or EPERM under a seccomp filter; a thread's TID before Linux
/// 6.9), every cycle dumps, as with `attribution.interval: 0`.
struct ExitWatch {
    open: OpenPidfd,
    budget: usize,
    fds: Vec<OwnedFd>,
    polled: Vec<libc::pollfd>,
    /// Every PID of the last dump is watched.
    complete: bool,
    /// A PID of the last dump had already exited when it was to be watched.
    gone: bool,
}

impl ExitWatch {
    fn new(open: OpenPidfd) -> ExitWatch {
        ExitWatch {
            open,
            budget: MAX_WATCHED_PIDS.min(open_file_limit() / 4),
            fds: Vec::new(),
            polled: Vec::new(),
            complete: false,
            gone: false,
        }
    }

    /// Closes the last set.
    fn clear(&mut self) {
        self.fds.clear();
        self.polled.clear();
        self.complete = false;
        self.gone = false;
    }

    /// Watches the owners of `dump` in place of the last dump's.
    fn watch(&mut self, dump: &ResDump) {
        self.clear();
        let mut pids: Vec<u32> = (dump.qps.iter().map(|q| &q.owner))
            .chain(
                dump.mrs
                    .iter()
                    .chain(&dump.cqs)
                    .chain(&dump.pds)
                    .map(|o| &o.owner),
            )
            .filter_map(|o| match o {
                consumers::Owner::Pid(p) if *p > 0 => Some(*p),
                _ => None,
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        if pids.len() > self.budget {
            return;
        }
        for pid in pids {
            match (self.open)(pid) {
                Ok(fd) => {
                    self.polled.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    self.fds.push(fd);
                }
                // Exited between the dump and here: the dump is stale already.
                Err(libc::ESRCH) => self.gone = true,
                Err(_) => {
                    self.clear();
                    return;
                }
            }
        }
        self.complete = true;
    }

    /// Whether a process of the last dump has exited (or it cannot be told).
    fn any_exited(&mut self) -> bool {
        if !self.complete || self.gone {
            return true;
        }
        !self.polled.is_empty() && poll_now(&mut self.polled) != 0
    }
}

/// `PIDFD_THREAD` (include/uapi/linux/pidfd.h, Linux 6.9, newer than the
/// 6.1 headers): a pidfd for a thread, not only a thread-group leader. RDMA
/// netlink names the task that created a resource (`task_pid_vnr`), which
/// may be a thread of the process.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// `pidfd_open(pid, 0)`, for a thread `PIDFD_THREAD`; `Err(errno)`.
fn pidfd_open(pid: u32) -> Result<OwnedFd, i32> {
    let open = |flags: u32| {
        // SAFETY: pidfd_open takes a PID and flags, passes no memory, and
        // returns a new descriptor or -1 with errno set.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    };
    // EINVAL with flags 0: not a thread-group leader.
    open(0).or_else(|e| {
        if e == libc::EINVAL {
            open(PIDFD_THREAD)
        } else {
            Err(e)
        }
    })
}

/// One `poll(2)` with timeout 0: how many descriptors are ready (a pidfd:
/// its process exited); a failed poll counts as ready (cannot tell).
fn poll_now(fds: &mut [libc::pollfd]) -> usize {
    // SAFETY: `fds` is valid for reads and writes of `fds.len()` pollfds for
    // the whole call; timeout 0 never blocks.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    if n < 0 { fds.len().max(1) } else { n as usize }
}

/// RLIMIT_NOFILE's soft limit (0 when it cannot be read).
fn open_file_limit() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit for getrlimit to write.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if rc < 0 {
        0
    } else {
        usize::try_from(r.rlim_cur).unwrap_or(usize::MAX)
    }
}

/// What a cycle's attribution does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Dump every device again.
    Dump,
    /// Group the last dump with this cycle's bound counters.
    Regroup,
    /// The last pass stands.
    Nothing,
}

/// Entries kept per dump (one device, one kind), at most: a dump's records
/// are bounded whatever the workload's QP or MR count (a ResQp is 40 bytes:
/// at most ~10 MiB per dump); the rest are counted in `truncated`.
pub const MAX_RECORDS_PER_DUMP: usize = 1 << 18;

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`,
/// include/linux/proc_ns.h, fixed since Linux 3.8): `readlink
/// /proc/self/ns/pid` reads `pid:[4026531836]` only in the host's namespace.
pub const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;

/// `pid:[<inode>]`, the text of a `/proc/<pid>/ns/pid` link.
pub fn parse_ns_link(text: &str) -> Option<u64> {
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// `NSpid:` of `/proc/<pid>/status`: the PID in each namespace from the
/// procfs's own down to the process's; more than one means the process sits
/// in a namespace nested below the procfs's.
pub fn parse_nspid(status: &str) -> Option<usize> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

/// Whether the agent is in the host's PID namespace, from `<proc_root>/self`.
/// RDMA netlink answers in the caller's PID namespace and leaves the
/// resources of processes it cannot see out of the dump altogether
/// (`res_get_common_dumpit` skips what `rdma_is_visible_in_pid_ns` rejects,
/// drivers/infiniband/core/nldev.c), so in a nested namespace their QPs and
/// MRs are missing, not "unattributed".
pub fn host_pid_namespace(proc_root: &Path) -> Option<bool> {
    let self_dir = proc_root.join("self");
    if let Ok(link) = std::fs::read_link(self_dir.join("ns/pid"))
        && let Some(ino) = link.to_str().and_then(parse_ns_link)
    {
        return Some(ino == PROC_PID_INIT_INO);
    }
    // No ns link (an old or restricted procfs): NSpid can still prove nesting
    // when `proc_root` is an ancestor namespace's procfs; one entry proves nothing.
    let status =
        super::file::read_text(&self_dir.join("status"), 64 << 10, super::file::Follow::Yes)
            .ok()?;
    (parse_nspid(&status)? > 1).then_some(false)
}

/// The bound per-PID counters of a reading (none: no allocation).
fn pid_counters(reading: &NetlinkReading) -> Vec<PidCounter> {
    reading
        .devices
        .iter()
        .flat_map(|d| &d.bound_counters)
        .filter_map(|c| {
            Some(PidCounter {
                dev_index: c.dev_index,
                port: c.port,
                pid: c.pid?,
                counters: c
                    .counters
                    .iter()
                    .map(|n| (n.name.clone(), n.value))
                    .collect(),
            })
        })
        .collect()
}

/// `/proc/uptime`'s first field in clock ticks (USER_HZ), the unit of
/// `stat`'s start time.
fn uptime_ticks(proc_root: &Path, ticks_per_second: u64) -> Option<u64> {
    let t = super::file::read_text(
        &proc_root.join("uptime"),
        super::file::ATTR_MAX,
        super::file::Follow::No,
    )
    .ok()?;
    let secs: f64 = t.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some((secs * ticks_per_second as f64) as u64)
}

/// USER_HZ: what `stat`'s times count in.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant of the C library; no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as u64 } else { 100 }
}

impl AttributionSource {
    pub fn new(
        proc_root: &Path,
        host_root: &Path,
        interval: Duration,
        max_consumers: usize,
    ) -> AttributionSource {
        let host_pid_ns = host_pid_namespace(proc_root);
        if host_pid_ns == Some(false) {
            log::warn!(
                "attribution: the agent is not in the host's PID namespace: RDMA netlink leaves the QPs and MRs of processes outside it out of its dumps, so per-job and per-pod numbers cover only this namespace (run with hostPID: true)"
            );
        }
        AttributionSource {
            resolver: Resolver::new(proc_root, host_root),
            proc_root: proc_root.to_owned(),
            interval,
            max_consumers,
            last: None,
            host_pid_ns,
            last_dump: None,
            last_summary: Vec::new(),
            had_pid_counters: false,
            exits: ExitWatch::new(Box::new(pidfd_open)),
        }
    }

    /// Opens the pidfds of the dumped PIDs with `open` (tests: PIDs of a
    /// recorded dump stand for processes of the test).
    #[cfg(test)]
    pub(crate) fn with_pidfd_opener(mut self, open: OpenPidfd) -> AttributionSource {
        self.exits = ExitWatch::new(open);
        self
    }

    /// What the cycle publishes when the netlink reading failed: no
    /// consumers (the last dump's are not current) and why. The next
    /// reading dumps again at once.
    pub fn unavailable(&mut self, wall_unix_ms: u64, reason: &str) -> Attribution {
        self.last = None;
        self.last_dump = None;
        self.exits.clear();
        Attribution {
            consumers: Default::default(),
            status: AttributionStatus {
                timestamp_unix_ms: wall_unix_ms,
                unavailable: Some(reason.to_string()),
                host_pid_namespace: self.host_pid_ns,
                ..AttributionStatus::default()
            },
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|t| now.duration_since(t) >= self.interval)
    }

    /// Whether this cycle's resource summary differs from the last dump's:
    /// a QP, CQ, MR, PD (or context, CM ID, SRQ) created or destroyed
    /// changes a count in RES_GET (`fill_res_info`, drivers/infiniband/core/
    /// nldev.c, counts the same restrack tables the dumps walk). A device
    /// whose summary did not read cannot be judged: changed.
    fn summary_changed(&self, reading: &NetlinkReading) -> bool {
        reading.devices.len() != self.last_summary.len()
            || reading
                .devices
                .iter()
                .zip(&self.last_summary)
                .any(|(d, (index, counts))| {
                    d.device.index != *index || d.resources.is_empty() || d.resources != *counts
                })
    }

    fn pass(&mut self, now: Instant, reading: &NetlinkReading, pid_counters: bool) -> Pass {
        let failed = self
            .last_dump
            .as_ref()
            .is_none_or(|d| !d.status.errors.is_empty());
        // The poll last: only when nothing else already calls for a dump.
        if failed || self.due(now) || self.summary_changed(reading) || self.exits.any_exited() {
            Pass::Dump
        } else if pid_counters || self.had_pid_counters {
            Pass::Regroup
        } else {
            Pass::Nothing
        }
    }

    /// Dumps and groups when the last dump is out of date (see the module
    /// comment), regroups it with fresh bound counters when there are any;
    /// `None` when the last pass stands. The wall clock is read only for a
    /// dump (its timestamp).
    pub fn poll<T: Transport>(
        &mut self,
        now: Instant,
        wall_unix_ms: impl FnOnce() -> u64,
        client: &mut Client<T>,
        reading: &NetlinkReading,
    ) -> Option<Attribution> {
        let pid_counters = pid_counters(reading);
        match self.pass(now, reading, !pid_counters.is_empty()) {
            Pass::Nothing => return None,
            Pass::Regroup => {
                let started = Instant::now();
                let last = self.last_dump.take()?;
                self.had_pid_counters = !pid_counters.is_empty();
                let mut a = self.group(
                    &last.dump,
                    &pid_counters,
                    last.status.clone(),
                    last.not_after,
                );
                a.status.duration_seconds = started.elapsed().as_secs_f64();
                self.last_dump = Some(last);
                return Some(a);
            }
            Pass::Dump => {}
        }
        self.last = Some(now);
        let started = Instant::now();
        let before = client.stats().round_trips;
        let mut status = AttributionStatus {
            timestamp_unix_ms: wall_unix_ms(),
            ..AttributionStatus::default()
        };
        let mut dump = ResDump::default();
        for d in &reading.devices {
            let (index, name) = (d.device.index, &d.device.name);
            dump.devices.insert(index, name.clone());
            let budget = Budget::new(MAX_RECORDS_PER_DUMP);
            match client.res_qps_within(index, &budget) {
                Ok(q) => dump.qps.extend(q),
                Err(e) => status.errors.push(format!("{name}: {e}")),
            }
            status.truncated += budget.dropped();
            for (kind, into) in [
                (ResKind::Mr, &mut dump.mrs),
                (ResKind::Cq, &mut dump.cqs),
                (ResKind::Pd, &mut dump.pds),
            ] {
                let budget = Budget::new(MAX_RECORDS_PER_DUMP);
                match client.res_objects_within(index, kind, &budget) {
                    Ok(o) => into.extend(o),
                    Err(e) => status.errors.push(format!("{name}: {e}")),
                }
                status.truncated += budget.dropped();
            }
        }
        status.round_trips = client.stats().round_trips - before;
        self.last_summary = reading
            .devices
            .iter()
            .map(|d| (d.device.index, d.resources.clone()))
            .collect();
        self.had_pid_counters = !pid_counters.is_empty();
        // Read after the dumps: whatever they listed had started by now.
        let not_after = uptime_ticks(&self.proc_root, clock_ticks());
        self.exits.watch(&dump);
        let mut a = self.group(&dump, &pid_counters, status.clone(), not_after);
        a.status.duration_seconds = started.elapsed().as_secs_f64();
        self.last_dump = Some(LastDump {
            dump,
            status,
            not_after,
        });
        Some(a)
    }

    /// Resolves and groups a dump (the replay tests and the benchmark enter
    /// here). `not_after`: the uptime in clock ticks read just after the
    /// dump; a PID whose process started later was reused.
    pub fn group(
        &mut self,
        dump: &ResDump,
        pid_counters: &[PidCounter],
        mut status: AttributionStatus,
        not_after: Option<u64>,
    ) -> Attribution {
        let started = Instant::now();
        self.resolver.begin_cycle();
        let mut vanished = 0;
        let resolver = &mut self.resolver;
        let g = consumers::group(dump, pid_counters, self.max_consumers, |pid| match resolver
            .resolve(pid, not_after)
        {
            Ok(info) => Some(info),
            Err(Unresolved::Vanished | Unresolved::Reused) => {
                vanished += 1;
                None
            }
        });
        status.unattributed = g.unattributed;
        status.consumers = g.exported;
        status.overflowed = g.overflowed;
        status.vanished = vanished;
        status.host_pid_namespace = self.host_pid_ns;
        status.pid_counters = !pid_counters.is_empty();
        status.duration_seconds = started.elapsed().as_secs_f64();
        Attribution {
            consumers: g.consumers.into(),
            status,
        }
    }
}

#[cfg(test)]
#[path = "attribution_tests.rs"]
pub(crate) mod tests;
