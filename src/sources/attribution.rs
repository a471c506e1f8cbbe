//! One attribution pass: the QP, MR, CQ and PD dumps of every device (one
//! dump per type and device), the PIDs in them resolved to consumers through
//! `/proc` ([`super::cgroup`]), the bound per-PID counters of the cycle's
//! netlink reading summed per consumer. Runs every `attribution.interval`,
//! and always on the first cycle.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup::{Resolver, Unresolved};
use super::netlink::NlTransport as Transport;
use super::netlink::nldev::Client;
use super::netlink::nldev::poll::NetlinkReading;
use super::netlink::nldev::res::ResKind;
use crate::model::consumers::{self, Attribution, AttributionStatus, PidCounter, ResDump};

pub struct AttributionSource {
    resolver: Resolver,
    proc_root: PathBuf,
    interval: Duration,
    max_consumers: usize,
    last: Option<Instant>,
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
        AttributionSource {
            resolver: Resolver::new(proc_root, host_root),
            proc_root: proc_root.to_owned(),
            interval,
            max_consumers,
            last: None,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|t| now.duration_since(t) >= self.interval)
    }

    /// Dumps and groups, when due; `None` when not.
    pub fn poll<T: Transport>(
        &mut self,
        now: Instant,
        wall_unix_ms: u64,
        client: &mut Client<T>,
        reading: &NetlinkReading,
    ) -> Option<Attribution> {
        if !self.due(now) {
            return None;
        }
        self.last = Some(now);
        let started = Instant::now();
        let before = client.stats().round_trips;
        let mut status = AttributionStatus {
            timestamp_unix_ms: wall_unix_ms,
            ..AttributionStatus::default()
        };
        let mut dump = ResDump::default();
        for d in &reading.devices {
            let (index, name) = (d.device.index, &d.device.name);
            dump.devices.insert(index, name.clone());
            match client.res_qps(index) {
                Ok(q) => dump.qps.extend(q),
                Err(e) => status.errors.push(format!("{name}: {e}")),
            }
            for (kind, into) in [
                (ResKind::Mr, &mut dump.mrs),
                (ResKind::Cq, &mut dump.cqs),
                (ResKind::Pd, &mut dump.pds),
            ] {
                match client.res_objects(index, kind) {
                    Ok(o) => into.extend(o),
                    Err(e) => status.errors.push(format!("{name}: {e}")),
                }
            }
        }
        let pid_counters: Vec<PidCounter> = reading
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
            .collect();
        status.round_trips = client.stats().round_trips - before;
        let mut a = self.group(&dump, &pid_counters, status);
        a.status.duration_seconds = started.elapsed().as_secs_f64();
        Some(a)
    }

    /// Resolves and groups a dump (the replay tests and the benchmark enter here).
    pub fn group(
        &mut self,
        dump: &ResDump,
        pid_counters: &[PidCounter],
        mut status: AttributionStatus,
    ) -> Attribution {
        let started = Instant::now();
        // Read after the dumps: whatever they listed had started by now.
        let not_after = uptime_ticks(&self.proc_root, clock_ticks());
        self.resolver.begin_cycle();
        let mut vanished = 0;
        let resolver = &mut self.resolver;
        let (consumers, unattributed, overflowed) =
            consumers::group(dump, pid_counters, self.max_consumers, |pid| match resolver
                .resolve(pid, not_after)
            {
                Ok(info) => Some(info),
                Err(Unresolved::Vanished | Unresolved::Reused) => {
                    vanished += 1;
                    None
                }
            });
        status.unattributed = unattributed;
        status.overflowed = overflowed;
        status.vanished = vanished;
        status.pid_counters = !pid_counters.is_empty();
        status.duration_seconds = started.elapsed().as_secs_f64();
        Attribution {
            consumers: consumers.into(),
            status,
        }
    }
}

#[cfg(test)]
#[path = "attribution_tests.rs"]
mod tests;
