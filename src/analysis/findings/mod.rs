//! Deterministic findings, computed every cycle from the snapshot's states,
//! deltas and rates. A finding has an id (the rule), a severity, where it
//! is, the evidence, when it was first and last seen; it clears when its
//! condition is gone.
//!
//! Rules and their meaning:
//! - `port_down`: the port is not ACTIVE (critical when it was active earlier
//!   in the agent's life, info when the port is administratively Disabled).
//! - `link_degraded`: width or rate below the best this port has shown (4x → 1x).
//! - `link_flapping`: at least `flap_transitions` down→up transitions within
//!   `flap_window` seconds, counted from state samples and `link_downed`
//!   deltas, while the port is up. One blip is not a flap; a port that stays
//!   down is `port_down`, not a flap.
//! - `link_downed`, `link_error_recovery`: the counter moved this cycle.
//! - `symbol_errors`, `receive_errors`: per-minute rate above its threshold.
//! - `transmit_discards`, `out_of_buffer`, `cnp_rate`: per-second rate above its threshold.
//! - `counter_saturated`: a counter stopped at its maximum; `counter_reset`: one went down.
//! - `firmware_mismatch`: HCAs of one type run different firmware.
//! - `pfc_pause_storm`: a priority (or link-level pause: no priority) paused more than `pfc_pause_share` of the
//!   last interval (from the pause-duration statistics), per netdev and priority.
//! - `configuration_changed` (info, for an hour): firmware, driver, offloads,
//!   pause settings, the PFC enable mask, a DCQCN parameter or a module
//!   parameter changed since the last read.
//! - `transceiver_threshold`: a module reading past the module's own alarm
//!   (critical) or warning (warning) threshold.
//! - `retransmission_rate`, `priority_drops`, `phy_ber`: see `findings/counters.rs`.
//! - `transmit_wait`, `fabric_transmit_wait`: see `findings/xmit_wait.rs`.
//! - `fabric_link_lost`, `fabric_node_lost`, `fabric_link_degraded`,
//!   `fabric_link_added`, `fabric_port_unreadable`, `fabric_port_errors`:
//!   see `findings/fabric_verdicts.rs`.
//! - Carrier changes of a port's netdev count as link transitions for
//!   `link_flapping` (two changes, down and up, make one); so do link
//!   events between polls, at the times they arrived (analysis::events).
//! - `kernel_log_event`: kernel log lines matching a pattern (analysis::kernel_log).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use rustc_hash::{FxHashMap, FxHashSet};

mod configuration;
mod dominant;
mod fabric;
mod fabric_verdicts;
mod netdev;
mod port;

use crate::config::Analysis;
use crate::model::finding::{Finding, Severity};
use crate::snapshot::{CounterView, Flag, PortView, Snapshot};

pub(crate) type Key = (&'static str, String, Option<u32>, Option<u8>);

/// A rule's hit with where it is: (key, severity, summary, evidence).
pub(crate) type KeyedHit = (
    Key,
    Severity,
    String,
    BTreeMap<&'static str, serde_json::Value>,
);

#[derive(Default)]
struct PortHistory {
    was_active: bool,
    ever_active: bool,
    best_width: u8,
    best_rate: f64,
    /// Times (ms) of down→up transitions.
    transitions: VecDeque<u64>,
    /// A down seen by sample or counter, waiting for the port to come back.
    down_pending: bool,
    /// Link-event ups counted while the port was down at the polls since.
    event_ups_pending: u64,
    /// Where the counters the port rules read sit in its counter lists.
    at: crate::snapshot::Positions,
    /// The evaluation that last saw the port ([`Findings::evaluations`]).
    seen: u64,
}

pub struct Findings {
    th: Analysis,
    active: FxHashMap<Key, Finding>,
    /// Keyed by the reading's own device name (a shared string: no copy per port a cycle).
    ports: HashMap<(Arc<str>, u32), PortHistory>,
    /// Evaluations so far: a port's history not seen in the last one lets
    /// go of the counter names its positions hold (the history stays).
    evaluations: u64,
    /// Fingerprint of each thing's configuration, and when and how it last changed.
    config: HashMap<String, String>,
    changed: HashMap<String, (u64, String)>,
    /// A thing's name and fingerprint, written each cycle to compare with `config`.
    scratch: (String, String),
    /// Pause duration (µs) per netdev and (direction, priority; None: link-level pause) at the last cycle.
    pause_us: PerNetdev<(&'static str, Option<u8>)>,
    /// Last carrier-change count and driver link-down count per netdev.
    carrier: HashMap<String, u32>,
    link_downs: HashMap<String, u64>,
    /// Expectations and peer comparison (analysis::health), when configured.
    health: Option<crate::config::Health>,
    peer_positions: crate::analysis::health::PeerPositions,
    /// First-seen times from a state saved before a restart, claimed by the
    /// first evaluation (a finding still there keeps its time and is no news).
    restored: HashMap<(String, String, Option<u32>, Option<u8>), u64>,
    counters: counters::CounterRules,
    xmit_wait: xmit_wait::WaitRule,
    fabric: fabric_verdicts::FabricVerdicts,
    /// Down→up times per netdev from link events, and kernel log hits, for
    /// the next evaluation (analysis::events).
    events: (HashMap<String, Vec<u64>>, Vec<KeyedHit>),
}

/// How long a configuration change stays a finding.
const CHANGE_MS: u64 = 3_600_000;

const STATE_ACTIVE: u8 = 4;
const PHYS_DISABLED: u8 = 3;

fn rate_of(c: Option<&CounterView>) -> Option<f64> {
    c.and_then(|c| c.rate)
}

fn delta_of(c: Option<&CounterView>) -> u64 {
    c.and_then(|c| c.delta).unwrap_or(0)
}

/// Puts `value` under `name`, returning the value it replaced; the name
/// is copied only the first time it is seen (the maps keyed by netdev are
/// updated for every netdev every cycle).
fn replace<V>(map: &mut HashMap<String, V>, name: &str, value: V) -> Option<V> {
    match map.get_mut(name) {
        Some(v) => Some(std::mem::replace(v, value)),
        None => map.insert(name.to_string(), value),
    }
}

/// Last values of statistics per netdev, by key within the netdev.
pub(super) struct PerNetdev<K>(HashMap<String, HashMap<K, u64>>);

impl<K> Default for PerNetdev<K> {
    fn default() -> Self {
        PerNetdev(HashMap::new())
    }
}

impl<K: Eq + std::hash::Hash> PerNetdev<K> {
    /// Stores `value`, returning the one it replaced.
    pub(super) fn replace(&mut self, netdev: &str, key: K, value: u64) -> Option<u64> {
        if let Some(per) = self.0.get_mut(netdev) {
            return per.insert(key, value);
        }
        self.0
            .entry(netdev.to_string())
            .or_default()
            .insert(key, value)
    }
}

/// The counter files the port rules read, from the catalog
/// (`catalog::used_by`), found once: the catalog has a hundred entries and
/// every port is judged every cycle.
struct RuleFiles {
    /// Every name the port rules read, in one list (`snapshot::Positions`):
    /// `link_downed`, `link_error_recovery`, then the files below.
    port_names: Vec<&'static str>,
    /// The PMA file of each per-minute or per-second PMA rule, and where it
    /// is in `port_names`.
    symbol_errors: Option<(&'static str, usize)>,
    receive_errors: Option<(&'static str, usize)>,
    transmit_discards: Option<(&'static str, usize)>,
    /// Where every file (in catalog order) of the rules that read driver
    /// counters is in `port_names`.
    out_of_buffer: std::ops::Range<usize>,
    cnp_rate: std::ops::Range<usize>,
}

/// Where `link_downed` and `link_error_recovery` are in `RuleFiles::port_names`.
const LINK_DOWNED: usize = 0;
const LINK_ERROR_RECOVERY: usize = 1;

fn rule_files() -> &'static RuleFiles {
    use crate::catalog::{Source, used_by};
    static FILES: OnceLock<RuleFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut names = vec!["link_downed", "link_error_recovery"];
        let mut pma = |id: &str| {
            let file = used_by(id).find(|k| k.source == Source::Pma)?.file;
            names.push(file);
            Some((file, names.len() - 1))
        };
        let (symbol_errors, receive_errors, transmit_discards) = (
            pma("symbol_errors"),
            pma("receive_errors"),
            pma("transmit_discards"),
        );
        let mut all = |id: &str| {
            let start = names.len();
            names.extend(used_by(id).map(|k| k.file));
            start..names.len()
        };
        let (out_of_buffer, cnp_rate) = (all("out_of_buffer"), all("cnp_rate"));
        RuleFiles {
            port_names: names,
            symbol_errors,
            receive_errors,
            transmit_discards,
            out_of_buffer,
            cnp_rate,
        }
    })
}

/// What the rules saw on one port: (id, severity, summary, evidence).
type Hit = (
    &'static str,
    Severity,
    String,
    BTreeMap<&'static str, serde_json::Value>,
);

fn ev(pairs: &[(&'static str, serde_json::Value)]) -> BTreeMap<&'static str, serde_json::Value> {
    pairs.iter().cloned().collect()
}

impl Findings {
    pub fn new(th: Analysis) -> Findings {
        Findings {
            th,
            active: FxHashMap::default(),
            ports: HashMap::new(),
            evaluations: 0,
            config: HashMap::new(),
            changed: HashMap::new(),
            scratch: Default::default(),
            carrier: HashMap::new(),
            link_downs: HashMap::new(),
            pause_us: PerNetdev::default(),
            counters: Default::default(),
            xmit_wait: Default::default(),
            fabric: Default::default(),
            health: None,
            peer_positions: Default::default(),
            restored: HashMap::new(),
            events: Default::default(),
        }
    }

    /// What arrived between polls, for the next evaluation: down→up times
    /// per netdev (link events) and kernel log hits.
    pub fn feed_events(&mut self, link_ups: HashMap<String, Vec<u64>>, hits: Vec<KeyedHit>) {
        self.events = (link_ups, hits);
    }
    /// What the engine carries from cycle to cycle, to be saved (crate::state).
    pub fn save_state(&self) -> crate::analysis::state::EngineState {
        use crate::analysis::state::{SavedFinding, SavedPort};
        crate::analysis::state::EngineState {
            findings: self
                .active
                .iter()
                .map(|(k, f)| SavedFinding {
                    id: k.0.to_string(),
                    place: k.1.clone(),
                    port: k.2,
                    priority: k.3,
                    first_seen_unix_ms: f.first_seen_unix_ms,
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|((device, port), h)| SavedPort {
                    device: device.to_string(),
                    port: *port,
                    ever_active: h.ever_active,
                    best_width: h.best_width,
                    best_rate: h.best_rate,
                    transitions: h.transitions.iter().copied().collect(),
                    down_pending: h.down_pending,
                })
                .collect(),
            carrier: self.carrier.clone().into_iter().collect(),
            link_downs: self.link_downs.clone().into_iter().collect(),
            config: self.config.clone().into_iter().collect(),
            changed: self.changed.clone().into_iter().collect(),
        }
    }

    /// Resumes from a saved state (same boot): port histories and baselines
    /// as they were, first-seen times for the findings that are still there.
    pub fn restore_state(&mut self, s: crate::analysis::state::EngineState) {
        for p in s.ports {
            self.ports.insert(
                (p.device.into(), p.port),
                PortHistory {
                    was_active: false,
                    ever_active: p.ever_active,
                    best_width: p.best_width,
                    best_rate: p.best_rate,
                    transitions: p.transitions.into_iter().collect(),
                    down_pending: p.down_pending,
                    event_ups_pending: 0,
                    at: Default::default(),
                    seen: 0,
                },
            );
        }
        self.carrier.extend(s.carrier);
        self.link_downs.extend(s.link_downs);
        self.config.extend(s.config);
        self.changed.extend(s.changed);
        self.restored = s
            .findings
            .into_iter()
            .map(|f| ((f.id, f.place, f.port, f.priority), f.first_seen_unix_ms))
            .collect();
    }

    /// Compares fabric sweeps with this topology file too ("" = none).
    pub fn set_expected_topology(&mut self, path: &str) {
        self.fabric.set_expected(path);
    }

    /// Turns on the rules of analysis::health with this configuration.
    pub fn set_health(&mut self, health: crate::config::Health) {
        self.health = Some(health);
    }

    /// Evaluates every rule on one cycle; returns the active findings, most
    /// severe first, and whether a warning or critical one is new this cycle.
    pub fn evaluate(&mut self, snap: &Snapshot, now_ms: u64) -> (Vec<Finding>, bool) {
        let (link_ups, mut hits) = std::mem::take(&mut self.events);
        // Carrier flaps of each netdev, to add to its port's transitions.
        let mut carrier_flaps: HashMap<String, u64> = HashMap::new();
        for nd in &snap.netdevs {
            if let Some(c) = nd.link.as_ref().and_then(|l| l.carrier_changes) {
                let before = replace(&mut self.carrier, &nd.name, c);
                if let Some(b) = before
                    && c > b
                {
                    carrier_flaps.insert(nd.name.clone(), u64::from(c - b) / 2);
                }
            }
            // The driver's own link-down count, where ethtool netlink has it.
            if let Some(d) = nd.ethtool_nl.as_ref().and_then(|e| e.link_down_events) {
                let before = replace(&mut self.link_downs, &nd.name, d);
                if let Some(b) = before
                    && d > b
                {
                    let e = carrier_flaps.entry(nd.name.clone()).or_default();
                    *e = (*e).max(d - b);
                }
            }
        }
        hits.extend(self.pfc_rules(snap));
        hits.extend(self.config_rules(snap, now_ms));
        hits.extend(netdev::transceiver_rules(snap));
        hits.extend(self.counters.evaluate(&self.th, snap));
        hits.extend(self.xmit_wait.evaluate(&self.th, snap));
        for d in &snap.devices {
            for p in &d.ports {
                let netdev = p.info.netdev.as_deref();
                let flaps = netdev.and_then(|n| carrier_flaps.get(n)).copied();
                let ups = netdev
                    .and_then(|n| link_ups.get(n))
                    .map_or(&[][..], Vec::as_slice);
                for (id, sev, summary, evidence) in
                    self.port_rules(&d.info.name, p, now_ms, flaps.unwrap_or(0), ups)
                {
                    hits.push((
                        (id, d.info.name.to_string(), Some(p.port), None),
                        sev,
                        summary,
                        evidence,
                    ));
                }
            }
            let dev_flags = d
                .hw_counters
                .iter()
                .filter_map(|(n, v)| v.flag.map(|f| (n, v, f)));
            for (name, v, flag) in dev_flags {
                let (id, sev) = match flag {
                    Flag::Saturated => ("counter_saturated", Severity::Warning),
                    Flag::Reset => ("counter_reset", Severity::Info),
                };
                hits.push((
                    (id, d.info.name.to_string(), None, None),
                    sev,
                    format!(
                        "{}: counter {name} {}",
                        d.info.name,
                        if id == "counter_reset" {
                            "went down (reset)"
                        } else {
                            "is saturated"
                        }
                    ),
                    ev(&[
                        ("counter", name.to_string().into()),
                        ("value", v.value.into()),
                    ]),
                ));
            }
        }
        // A port gone from the reading (a device removed or renamed) keeps
        // its history but not its counters' names.
        let this = self.evaluations;
        for h in self.ports.values_mut().filter(|h| h.seen != this) {
            h.at = Default::default();
        }
        self.evaluations += 1;
        hits.extend(self.firmware_rule(snap));
        hits.extend(self.fabric.hits(snap, &self.th));
        if let Some(h) = &self.health {
            hits.extend(crate::analysis::health::hits(
                snap,
                h,
                &mut self.peer_positions,
            ));
        }
        let dominant = dominant::hits(snap, &hits);
        hits.extend(dominant);
        // Several device-wide counters can hit one (rule, device): one finding
        // that names each with its own value, not the last one alone.
        let hits = merge_same_key(hits);

        let mut new_serious = false;
        // A set, not a list: a fabric can raise thousands of findings, and
        // each would be looked for among all the others.
        let mut seen: FxHashSet<Key> = FxHashSet::default();
        seen.reserve(hits.len());
        for (key, severity, summary, evidence) in hits {
            seen.insert(key.clone());
            match self.active.get_mut(&key) {
                Some(f) => {
                    if severity < f.severity {
                        new_serious |= severity <= Severity::Warning;
                    }
                    f.severity = severity;
                    f.summary = summary;
                    f.evidence = evidence;
                    f.last_seen_unix_ms = now_ms;
                }
                None => {
                    let restored =
                        self.restored
                            .remove(&(key.0.to_string(), key.1.clone(), key.2, key.3));
                    new_serious |= restored.is_none() && severity <= Severity::Warning;
                    let (device, netdev, subject) = crate::analysis::health::place(key.0, &key.1);
                    let f = Finding {
                        id: key.0,
                        severity,
                        device,
                        netdev,
                        subject,
                        port: key.2,
                        priority: key.3,
                        summary,
                        evidence,
                        first_seen_unix_ms: restored.unwrap_or(now_ms),
                        last_seen_unix_ms: now_ms,
                    };
                    self.active.insert(key, f);
                }
            }
        }
        // Saved findings not there after the restart are gone.
        self.restored.clear();
        // A condition that is gone clears its finding.
        self.active.retain(|k, _| seen.contains(k));
        let mut out: Vec<Finding> = self.active.values().cloned().collect();
        // A total order (a key is (id, place, port, priority)): the findings'
        // order never depends on the map's.
        out.sort_by(|a, b| {
            (a.severity, a.place(), a.port, a.id, a.priority).cmp(&(
                b.severity,
                b.place(),
                b.port,
                b.id,
                b.priority,
            ))
        });
        (out, new_serious)
    }
}

/// For each key, the place of its group among the distinct keys in the
/// order they first appear (a, b, a → 0, 1, 0), found by hashing: a search
/// of the groups for each key grows with the square of a fabric's findings.
fn first_appearance<K: Eq + std::hash::Hash>(keys: impl Iterator<Item = K>) -> Vec<usize> {
    let mut place: FxHashMap<K, usize> = FxHashMap::default();
    keys.map(|k| {
        let next = place.len();
        *place.entry(k).or_insert(next)
    })
    .collect()
}

/// One hit per key, in the order keys first appear: the summaries of hits
/// with the same key are joined and their counters' evidence folded
/// together.
fn merge_same_key<K: Eq + std::hash::Hash, S>(
    hits: Vec<(K, S, String, BTreeMap<&'static str, serde_json::Value>)>,
) -> Vec<(K, S, String, BTreeMap<&'static str, serde_json::Value>)> {
    let places = first_appearance(hits.iter().map(|hit| &hit.0));
    let mut merged: Vec<(K, S, String, _)> = Vec::with_capacity(hits.len());
    for (hit, at) in hits.into_iter().zip(places) {
        match merged.get_mut(at) {
            Some(m) => {
                m.2.push_str("; ");
                m.2.push_str(&hit.2);
                merge_counter_evidence(&mut m.3, &hit.3);
            }
            // Places are given in order of first appearance: a new key's is
            // the next one.
            None => merged.push(hit),
        }
    }
    merged
}

/// Folds a second counter's evidence into a finding that already names one:
/// `counter` lists both, and each counter keeps its own value in `values`
/// (a single `value` would be the first counter's only).
fn merge_counter_evidence(
    into: &mut BTreeMap<&'static str, serde_json::Value>,
    from: &BTreeMap<&'static str, serde_json::Value>,
) {
    use serde_json::Value;
    let (Some(Value::String(a)), Some(Value::String(b))) =
        (into.get("counter").cloned(), from.get("counter"))
    else {
        return;
    };
    let mut values = match into.remove("values") {
        Some(Value::Object(m)) => m,
        _ => {
            let mut m = serde_json::Map::new();
            if let Some(v) = into.remove("value") {
                m.insert(a.clone(), v);
            }
            m
        }
    };
    if let Some(v) = from.get("value") {
        values.insert(b.clone(), v.clone());
    }
    if !values.is_empty() {
        into.insert("values", Value::Object(values));
    }
    into.insert("counter", format!("{a},{b}").into());
}

mod counters;
#[cfg(test)]
mod tests;
mod xmit_wait;
