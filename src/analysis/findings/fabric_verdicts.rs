//! Fabric verdicts: each fabric sweep (fabric mode, or `fabric.discovery_interval`)
//! compared with the sweeps before it and with `fabric.expected_topology`,
//! and each fabric port's counters compared with the previous sweep's.
//!
//! - `fabric_link_lost`: a cable seen in an earlier sweep, or listed in the
//!   expected topology, is not in this sweep. It stays until the cable is
//!   back (or the agent restarts, which forgets the earlier sweeps; the
//!   expected topology does not forget).
//! - `fabric_node_lost`: the same for a node (switch, HCA, router).
//! - `fabric_link_degraded`: a cable's active width or speed is below what
//!   both ends support and are enabled for (PortInfo Supported ∩ Enabled),
//!   below the best this cable showed in an earlier sweep, or below the rate
//!   the expected topology gives it (`4xEDR`).
//! - `fabric_link_added` (info): a cable the expected topology does not
//!   list; without one, a cable the previous sweep did not have.
//! - `fabric_port_unreadable`: a port's PMA counters could not be read (a
//!   LID route through a dead link, a MAD timeout, a bad status).
//! - `fabric_port_errors`: a port's symbol errors, link downs, receive
//!   errors, switch relay discards or transmit discards grew faster than the
//!   `analysis.fabric_*_per_minute` thresholds between two sweeps.
//! - `fabric_expected_topology_invalid`: the expected topology cannot be
//!   read or parsed (sweeps are then compared with earlier sweeps only).
//!
//! Every finding's `subject` names the node description, node GUID and port
//! of both ends of a cable (one end for a port or node), so an alert says
//! which cable to check. All are warnings (or info): the fabric-mode node
//! reports other nodes' cables, and its own verdict must not become
//! unhealthy (drained) for them. A sweep cut short by `fabric.sweep_budget`
//! changes no verdict: what it did not reach is not lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{KeyedHit, ev};
use crate::config::Analysis;
use crate::mad_worker::{MadView, Reading};
use crate::model::finding::Severity;
use crate::snapshot::Snapshot;
use crate::sources::ibnetdiscover::{self, Topology};
use crate::sources::mad::discovery::{Fabric, PortRecord, speed, width};

type End = (u64, u8);
type LinkKey = (End, End);
/// A port's counters as read: (name, value).
type Counters = Vec<(&'static str, u64)>;

fn link_key(a: End, b: End) -> LinkKey {
    if a <= b { (a, b) } else { (b, a) }
}

/// IBTA LinkWidth bits → lanes (1x, 4x, 8x, 12x, 2x).
fn lanes(bit: u8) -> u8 {
    match bit {
        1 => 1,
        2 => 4,
        4 => 8,
        8 => 12,
        16 => 2,
        _ => 0,
    }
}

/// The widest width of a LinkWidth mask, in lanes.
fn best_lanes(mask: u8) -> u8 {
    (0..5).map(|i| lanes(mask & (1 << i))).max().unwrap_or(0)
}

/// Speeds in order; the rank is the index + 1 (0: unknown).
const SPEEDS: &[&str] = &[
    "SDR", "DDR", "QDR", "FDR10", "FDR", "EDR", "HDR", "NDR", "XDR",
];

fn rank(name: &str) -> u8 {
    SPEEDS
        .iter()
        .position(|s| *s == name)
        .map_or(0, |i| i as u8 + 1)
}

/// The fastest speed of LinkSpeedExt (bits FDR, EDR, HDR, NDR, XDR) or, without
/// extended speeds, LinkSpeed (SDR, DDR, QDR) masks.
fn best_speed(ext: u8, base: u8) -> u8 {
    let top = |mask: u8, names: &[&str]| {
        (0..names.len())
            .rev()
            .find(|i| mask & (1 << i) != 0)
            .map_or(0, |i| rank(names[i]))
    };
    match top(ext, &["FDR", "EDR", "HDR", "NDR", "XDR"]) {
        0 => top(base, &["SDR", "DDR", "QDR"]),
        r => r,
    }
}

/// What a port can train to: (lanes, speed rank), 0 where it does not say.
fn capability(p: &PortRecord) -> (u8, u8) {
    (
        best_lanes(p.width_supported & p.width_enabled),
        best_speed(
            p.speed_ext_supported & p.speed_ext_enabled,
            p.speed_supported & p.speed_enabled,
        ),
    )
}

fn active(p: &PortRecord) -> (u8, u8) {
    (lanes(p.width_active), rank(speed(p)))
}

fn rate_text((l, r): (u8, u8)) -> String {
    let s = SPEEDS.get(usize::from(r).wrapping_sub(1)).unwrap_or(&"?");
    format!("{l}x{s}")
}

#[derive(Default)]
struct LinkMemo {
    lids: (u16, u16),
    /// The widest and fastest this cable has been.
    best: (u8, u8),
}

/// The fabric verdicts' memory from sweep to sweep.
#[derive(Default)]
pub(super) struct FabricVerdicts {
    expected_path: Option<PathBuf>,
    expected: Option<Result<Topology, String>>,
    expected_stamp: Option<(Option<std::time::SystemTime>, u64)>,
    last: Option<Arc<Fabric>>,
    /// Every node and cable seen in a whole sweep: (description, type) and memo.
    nodes: BTreeMap<u64, (String, u8)>,
    links: BTreeMap<LinkKey, LinkMemo>,
    prev_links: Option<BTreeSet<LinkKey>>,
    /// The verdicts of the last sweep, repeated each cycle until the next one.
    structural: Vec<KeyedHit>,
    ports: Vec<KeyedHit>,
    /// Counters of each port at the last sweep, and when they were read.
    counters: HashMap<End, (u64, Counters)>,
}

impl FabricVerdicts {
    pub(super) fn set_expected(&mut self, path: &str) {
        self.expected_path = (!path.is_empty()).then(|| PathBuf::from(path));
        self.expected = None;
        self.expected_stamp = None;
    }

    /// The fabric findings of this cycle: worked out when a new sweep
    /// arrives, repeated until the next one.
    pub(super) fn hits(&mut self, snap: &Snapshot, th: &Analysis) -> Vec<KeyedHit> {
        let Some(view) = snap.mad.as_deref() else {
            return Vec::new();
        };
        let Some(fabric) = view.fabric.as_ref() else {
            return Vec::new();
        };
        if self.last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, fabric)) {
            self.last = Some(fabric.clone());
            self.load_expected();
            self.judge_sweep(fabric);
            self.judge_ports(fabric, view, th, snap.timestamp_unix_ms);
        }
        let mut out = self.structural.clone();
        out.extend(self.ports.iter().cloned());
        if let (Some(Err(e)), Some(path)) = (&self.expected, &self.expected_path) {
            out.push((
                (
                    "fabric_expected_topology_invalid",
                    path.display().to_string(),
                    None,
                    None,
                ),
                Severity::Warning,
                format!(
                    "fabric.expected_topology {}: {e}; sweeps are compared with earlier sweeps only",
                    path.display()
                ),
                ev(&[("error", e.clone().into())]),
            ));
        }
        out
    }

    /// (Re)reads the expected topology when it is new or its file changed.
    fn load_expected(&mut self) {
        let Some(path) = &self.expected_path else {
            return;
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()));
        if self.expected.is_some() && stamp.is_some() && stamp == self.expected_stamp {
            return;
        }
        let before = self.expected.take();
        let now = ibnetdiscover::read(path).map_err(|e| e.to_string());
        if before.as_ref() != Some(&now) {
            match &now {
                Ok(t) => log::info!(
                    "fabric.expected_topology {}: {} nodes, {} links",
                    path.display(),
                    t.nodes.len(),
                    t.links.len()
                ),
                Err(e) => log::error!("fabric.expected_topology {}: {e}", path.display()),
            }
        }
        self.expected_stamp = stamp;
        self.expected = Some(now);
    }

    fn expected(&self) -> Option<&Topology> {
        self.expected.as_ref().and_then(|e| e.as_ref().ok())
    }

    /// "desc (0xguid) port N", from this sweep, an earlier one or the expected file.
    fn end_text(&self, f: &Fabric, (guid, port): End) -> String {
        format!("{} ({guid:#018x}) port {port}", self.description(f, guid))
    }

    fn description(&self, f: &Fabric, guid: u64) -> String {
        f.node(guid)
            .map(|n| n.description.clone())
            .or_else(|| self.nodes.get(&guid).map(|n| n.0.clone()))
            .or_else(|| {
                self.expected()
                    .and_then(|t| t.node(guid))
                    .map(|n| n.description.clone())
            })
            .unwrap_or_default()
    }

    fn end_value(&self, f: &Fabric, (guid, port): End, lid: Option<u16>) -> Value {
        json!({
            "node_desc": self.description(f, guid),
            "node_guid": format!("{guid:#018x}"),
            "port": port,
            "lid": lid,
        })
    }

    fn link_hit(
        &self,
        f: &Fabric,
        id: &'static str,
        severity: Severity,
        (a, b): LinkKey,
        what: &str,
        mut evidence: BTreeMap<&'static str, Value>,
    ) -> KeyedHit {
        let lids = self.links.get(&(a, b)).map(|m| m.lids);
        let lid_of = |(g, p): End| {
            f.node(g)
                .map(|n| n.lid_of(p))
                .filter(|&l| l != 0)
                .or(lids.map(|l| if (g, p) == a { l.0 } else { l.1 }))
        };
        let subject = format!("{} <-> {}", self.end_text(f, a), self.end_text(f, b));
        evidence.insert(
            "ends",
            json!([
                self.end_value(f, a, lid_of(a)),
                self.end_value(f, b, lid_of(b))
            ]),
        );
        let summary = format!("fabric link {subject} {what}");
        ((id, subject, None, None), severity, summary, evidence)
    }

    fn judge_sweep(&mut self, f: &Fabric) {
        if f.unexplored_paths > 0 {
            log::warn!(
                "fabric sweep incomplete ({} paths not explored): fabric verdicts keep the last whole sweep's",
                f.unexplored_paths
            );
            return;
        }
        // Looked up per cable: an index, not Fabric::node's walk (700 nodes at 648 HCAs).
        let idx: HashMap<u64, &crate::sources::mad::discovery::Node> =
            f.nodes.iter().map(|n| (n.guid, n)).collect();
        let current: BTreeMap<LinkKey, (End, End)> = f
            .links
            .iter()
            .map(|l| (link_key(l.a, l.b), (l.a, l.b)))
            .collect();
        let expected_links: BTreeMap<LinkKey, Option<(u8, String)>> = self
            .expected()
            .map(|t| {
                t.links
                    .iter()
                    .map(|l| (link_key(l.a, l.b), l.rate.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut hits = Vec::new();

        // Lost cables: seen before or expected, not here now.
        let candidates: BTreeSet<LinkKey> = self
            .links
            .keys()
            .chain(expected_links.keys())
            .copied()
            .collect();
        for k in candidates.into_iter().filter(|k| !current.contains_key(k)) {
            let mut known = Vec::new();
            if self.links.contains_key(&k) {
                known.push("earlier_sweep");
            }
            if expected_links.contains_key(&k) {
                known.push("expected_topology");
            }
            hits.push(self.link_hit(
                f,
                "fabric_link_lost",
                Severity::Warning,
                k,
                "is gone: the sweep did not find this cable",
                ev(&[("known_from", json!(known))]),
            ));
        }

        // Lost nodes.
        let mut expected_nodes: BTreeMap<u64, u8> = BTreeMap::new();
        if let Some(t) = self.expected() {
            expected_nodes.extend(t.nodes.iter().map(|n| (n.guid, n.node_type)));
        }
        let lost: BTreeSet<u64> = self
            .nodes
            .keys()
            .chain(expected_nodes.keys())
            .copied()
            .filter(|g| !idx.contains_key(g))
            .collect();
        for guid in lost {
            let desc = self.description(f, guid);
            let node_type = self
                .nodes
                .get(&guid)
                .map(|n| n.1)
                .or(expected_nodes.get(&guid).copied());
            let subject = format!("{desc} ({guid:#018x})");
            hits.push((
                ("fabric_node_lost", subject.clone(), None, None),
                Severity::Warning,
                format!("fabric node {subject} is gone: the sweep did not find it"),
                ev(&[
                    ("node_desc", desc.into()),
                    ("node_guid", format!("{guid:#018x}").into()),
                    ("node_type", json!(node_type)),
                ]),
            ));
        }

        // Degraded and added cables.
        for (&k, &(a, b)) in &current {
            let rec = |(g, p): End| idx.get(&g).and_then(|n| n.port(p));
            let (Some(ra), Some(rb)) = (rec(a), rec(b)) else {
                continue;
            };
            let (aa, ab) = (active(ra), active(rb));
            let now = (aa.0.min(ab.0), aa.1.min(ab.1));
            let (ca, cb) = (capability(ra), capability(rb));
            let can = (ca.0.min(cb.0), ca.1.min(cb.1));
            let best = self.links.get(&k).map(|m| m.best);
            let want = expected_links
                .get(&k)
                .and_then(|r| r.as_ref())
                .map(|(l, s)| (*l, rank(s)));
            let mut why: Vec<String> = Vec::new();
            let below =
                |ref_: (u8, u8)| (ref_.0 != 0 && now.0 < ref_.0) || (ref_.1 != 0 && now.1 < ref_.1);
            if below(can) {
                why.push(format!("both ends support {}", rate_text(can)));
            }
            if let Some(b) = best
                && below(b)
            {
                why.push(format!("it ran at {} in an earlier sweep", rate_text(b)));
            }
            if let Some(w) = want
                && below(w)
            {
                why.push(format!("the expected topology says {}", rate_text(w)));
            }
            if !why.is_empty() && now.0 != 0 {
                let active_text = format!("{}{}", width(ra.width_active), speed(ra));
                hits.push(self.link_hit(
                    f,
                    "fabric_link_degraded",
                    Severity::Warning,
                    k,
                    &format!("runs at {active_text}, but {}", why.join("; ")),
                    ev(&[
                        ("active", active_text.into()),
                        ("capable", rate_text(can).into()),
                        ("best_seen", json!(best.map(rate_text))),
                        ("expected", json!(want.map(rate_text))),
                    ]),
                ));
            }
            let added = if self.expected().is_some() {
                (!expected_links.contains_key(&k)).then_some("expected_topology")
            } else {
                self.prev_links
                    .as_ref()
                    .filter(|p| !p.contains(&k))
                    .map(|_| "previous_sweep")
            };
            if let Some(than) = added {
                hits.push(self.link_hit(
                    f,
                    "fabric_link_added",
                    Severity::Info,
                    k,
                    &format!("is new (not in the {})", than.replace('_', " ")),
                    ev(&[("new_to", than.into())]),
                ));
            }
        }

        // Remember this sweep.
        for n in &f.nodes {
            self.nodes
                .insert(n.guid, (n.description.clone(), n.node_type));
        }
        for (&k, &(a, b)) in &current {
            let lid = |(g, p): End| idx.get(&g).map_or(0, |n| n.lid_of(p));
            let rec = |(g, p): End| idx.get(&g).and_then(|n| n.port(p)).map(active);
            let now = match (rec(a), rec(b)) {
                (Some(x), Some(y)) => (x.0.min(y.0), x.1.min(y.1)),
                _ => (0, 0),
            };
            let (la, lb) = if k.0 == a {
                (lid(a), lid(b))
            } else {
                (lid(b), lid(a))
            };
            let m = self.links.entry(k).or_default();
            m.lids = (la, lb);
            m.best = (m.best.0.max(now.0), m.best.1.max(now.1));
        }
        self.prev_links = Some(current.into_keys().collect());
        self.structural = hits;
    }

    fn judge_ports(&mut self, f: &Fabric, view: &MadView, th: &Analysis, now_ms: u64) {
        let at = view.fabric_counters_unix_ms.unwrap_or(now_ms);
        let limits: [(&'static str, f64); 5] = [
            ("symbol_error", th.fabric_symbol_errors_per_minute),
            ("link_downed", th.fabric_link_downed_per_minute),
            ("port_rcv_errors", th.fabric_receive_errors_per_minute),
            (
                "port_rcv_switch_relay_errors",
                th.fabric_relay_errors_per_minute,
            ),
            ("port_xmit_discards", th.fabric_transmit_discards_per_minute),
        ];
        let mut hits = Vec::new();
        let mut seen = HashMap::new();
        for fp in &view.fabric_counters {
            let end = (fp.node_guid, fp.port);
            // Names and the far end only for a port that has a finding.
            let subject = || self.end_text(f, end);
            let peer = || f.peer(fp.node_guid, fp.port);
            let where_ = |mut e: BTreeMap<&'static str, Value>| {
                e.insert("port", self.end_value(f, end, Some(fp.lid)));
                e.insert(
                    "peer",
                    peer().map_or(Value::Null, |p| {
                        let lid = f.node(p.0).map(|n| n.lid_of(p.1));
                        self.end_value(f, p, lid)
                    }),
                );
                e
            };
            let counters = match &fp.counters {
                Reading::Error(e) => {
                    let on = peer().map_or(String::new(), |p| {
                        format!(" (cable to {})", self.end_text(f, p))
                    });
                    let subject = subject();
                    hits.push((
                        ("fabric_port_unreadable", subject.clone(), None, None),
                        Severity::Warning,
                        format!(
                            "fabric port {subject}{on}: counters unreadable at LID {}: {e}",
                            fp.lid
                        ),
                        where_(ev(&[("error", e.clone().into())])),
                    ));
                    continue;
                }
                Reading::Counters { counters, .. } => &counters.counters,
            };
            if let Some((t0, before)) = self.counters.get(&end)
                && fp.port != 0
                && at > *t0
            {
                let minutes = (at - t0) as f64 / 60_000.0;
                for (name, limit) in limits {
                    let value = |v: &[(&str, u64)]| v.iter().find(|(n, _)| *n == name).map(|x| x.1);
                    // A counter that went down was reset: no rate this time.
                    let (Some(old), Some(new)) = (value(before), value(counters)) else {
                        continue;
                    };
                    let delta = new.saturating_sub(old);
                    let per_minute = delta as f64 / minutes;
                    if delta > 0 && per_minute > limit {
                        let subject = subject();
                        hits.push((
                            ("fabric_port_errors", subject.clone(), None, None),
                            Severity::Warning,
                            format!(
                                "fabric port {subject}: {name} at {per_minute:.1}/min (threshold {limit}/min)"
                            ),
                            where_(ev(&[
                                ("counter", name.into()),
                                ("value", json!(per_minute)),
                                ("increase", delta.into()),
                            ])),
                        ));
                    }
                }
            }
            seen.insert(end, (at, counters.clone()));
        }
        self.counters = seen;
        self.ports = hits;
    }
}

#[cfg(test)]
#[path = "fabric_verdicts_tests.rs"]
mod tests;
