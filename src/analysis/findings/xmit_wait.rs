//! IB congestion as time, from the MAD worker's readings:
//! - `transmit_wait`: a local IB port waited (had data, sent nothing) more
//!   than `transmit_wait_share` of the time between its last two readings
//!   (0.2 by default, as `pfc_pause_share`: no vendor publishes a limit, and
//!   rdma-core's `PortXmitWait=1000` in error_thresholds counts raw ticks
//!   since a clear, not a share; config.yaml gives the reasoning).
//! - `fabric_transmit_wait`: the same on a port elsewhere on the fabric
//!   (the switch port at the far end of a local link, or any port in fabric
//!   mode); its place is a subject ("node description, GUID"), not a device.
//!
//! Only ports whose ASIC's tick length is documented count
//! (`catalog::xmit_wait`); a saturated 32-bit PortXmitWait (it stops at
//! 2^32 − 1) or a counter that went down gives no share, never a 0.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{KeyedHit, Severity, ev};
use crate::catalog::xmit_wait::{WaitClock, seconds_per_tick, wait_saturated};
use crate::config::Analysis;
use crate::snapshot::Snapshot;
use crate::sources::mad::pma::PortCounters;

struct Last {
    ticks: u64,
    at: Instant,
    /// The share between the two readings before this one, kept until the
    /// next reading (MADs come at the worker's pace, cycles more often).
    share: Option<f64>,
}

/// The last reading of each port's wait counter.
#[derive(Default)]
pub(super) struct WaitRule {
    last: HashMap<(u64, String, u8), Last>,
}

/// A port to judge: (guid or 0, device or description, port), its reading and clock.
type Seen<'a> = ((u64, String, u8), &'a PortCounters, &'a WaitClock);

impl WaitRule {
    pub(super) fn evaluate(&mut self, th: &Analysis, snap: &Snapshot) -> Vec<KeyedHit> {
        let Some(view) = snap.mad.as_deref() else {
            self.last.clear();
            return Vec::new();
        };
        let mut seen: Vec<Seen> = Vec::new();
        let mut fabric: HashSet<(u64, u8)> = HashSet::new();
        let peers = view.local.iter().filter_map(|l| l.peer.as_ref());
        for p in view.fabric_counters.iter().chain(peers) {
            if let (Some(pc), Some(c)) = (p.counters.ok(), p.wait_clock.as_ref())
                && fabric.insert((p.node_guid, p.port))
            {
                seen.push(((p.node_guid, p.node_desc.clone(), p.port), pc, c));
            }
        }
        for l in &view.local {
            if let (Some(pc), Some(c)) = (l.counters.ok(), l.wait_clock.as_ref()) {
                let dev = l.ibdev.clone().unwrap_or_else(|| l.umad_device.clone());
                seen.push(((0, dev, l.port), pc, c));
            }
        }
        let mut out = Vec::new();
        let mut last = HashMap::with_capacity(seen.len());
        for (key, pc, clock) in seen {
            let (Some(ticks), Some(spt), Some(at)) = (
                pc.counters
                    .iter()
                    .find(|(n, _)| *n == "port_xmit_wait")
                    .map(|(_, v)| *v),
                seconds_per_tick(clock),
                pc.read_at,
            ) else {
                continue;
            };
            let share = match self.last.remove(&key) {
                Some(prev) if prev.at == at => prev.share,
                Some(prev) => share(prev.ticks, prev.at, ticks, at, spt),
                None => None,
            };
            if let Some(s) = share.filter(|s| *s > th.transmit_wait_share) {
                out.push(hit(th, &key, s, spt, clock));
            }
            last.insert(key, Last { ticks, at, share });
        }
        // Ports no longer read are forgotten: the map holds what the view holds.
        self.last = last;
        out
    }
}

/// Share of the time between two readings the port waited.
fn share(before: u64, t0: Instant, after: u64, t1: Instant, spt: f64) -> Option<f64> {
    let secs = t1.checked_duration_since(t0)?.as_secs_f64();
    if secs <= 0.0 || after < before || wait_saturated(after) {
        return None;
    }
    Some((after - before) as f64 * spt / secs)
}

fn hit(
    th: &Analysis,
    (guid, place, port): &(u64, String, u8),
    share: f64,
    spt: f64,
    clock: &WaitClock,
) -> KeyedHit {
    let (id, place) = if *guid == 0 {
        ("transmit_wait", place.clone())
    } else {
        ("fabric_transmit_wait", format!("{place} {guid:#018x}"))
    };
    (
        (id, place.clone(), Some(u32::from(*port)), None),
        Severity::Warning,
        format!(
            "{place} port {port}: waited to transmit {:.0} % of the time (threshold {:.0} %)",
            share * 100.0,
            th.transmit_wait_share * 100.0
        ),
        ev(&[
            ("share", share.into()),
            ("threshold", th.transmit_wait_share.into()),
            ("tick_seconds", spt.into()),
            ("tick", clock.tick.into()),
            ("device_id", clock.device_id.into()),
        ]),
    )
}
