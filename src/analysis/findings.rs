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
//! - `pfc_pause_storm`: a priority paused more than `pfc_pause_share` of the
//!   last interval (from the pause-duration statistics), per netdev and priority.
//! - `configuration_changed` (info, for an hour): firmware, driver, offloads,
//!   pause settings, the PFC enable mask, a DCQCN parameter or a module
//!   parameter changed since the last read.
//! - `transceiver_threshold`: a module reading past the module's own alarm
//!   (critical) or warning (warning) threshold.
//! - Carrier changes of a port's netdev count as link transitions for
//!   `link_flapping` (two changes, down and up, make one).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use crate::config::Analysis;
use crate::snapshot::{CounterView, Flag, PortView, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub device: String,
    pub port: Option<u32>,
    pub priority: Option<u8>,
    /// What the finding is about when that is not an RDMA device (a `health.expect` rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub summary: String,
    pub evidence: BTreeMap<&'static str, serde_json::Value>,
    pub first_seen_unix_ms: u64,
    pub last_seen_unix_ms: u64,
}

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
}

pub struct Findings {
    th: Analysis,
    active: HashMap<Key, Finding>,
    ports: HashMap<(String, u32), PortHistory>,
    /// Fingerprint of each thing's configuration, and when and how it last changed.
    config: HashMap<String, String>,
    changed: HashMap<String, (u64, String)>,
    /// Pause duration (µs) per (netdev, direction, priority) at the last cycle.
    pause_us: HashMap<(String, &'static str, u8), u64>,
    /// Last carrier-change count and driver link-down count per netdev.
    carrier: HashMap<String, u32>,
    link_downs: HashMap<String, u64>,
    /// Expectations and peer comparison (analysis::health), when configured.
    health: Option<crate::config::Health>,
    /// First-seen times from a state saved before a restart, claimed by the
    /// first evaluation (a finding still there keeps its time and is no news).
    restored: HashMap<(String, String, Option<u32>, Option<u8>), u64>,
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
            active: HashMap::new(),
            ports: HashMap::new(),
            config: HashMap::new(),
            changed: HashMap::new(),
            carrier: HashMap::new(),
            link_downs: HashMap::new(),
            pause_us: HashMap::new(),
            health: None,
            restored: HashMap::new(),
        }
    }

    /// What the engine carries from cycle to cycle, to be saved (crate::state).
    pub fn save_state(&self) -> crate::state::EngineState {
        use crate::state::{SavedFinding, SavedPort};
        crate::state::EngineState {
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
                    device: device.clone(),
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
    pub fn restore_state(&mut self, s: crate::state::EngineState) {
        for p in s.ports {
            self.ports.insert(
                (p.device, p.port),
                PortHistory {
                    was_active: false,
                    ever_active: p.ever_active,
                    best_width: p.best_width,
                    best_rate: p.best_rate,
                    transitions: p.transitions.into_iter().collect(),
                    down_pending: p.down_pending,
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

    /// Turns on the rules of analysis::health with this configuration.
    pub fn set_health(&mut self, health: crate::config::Health) {
        self.health = Some(health);
    }

    /// Evaluates every rule on one cycle; returns the active findings, most
    /// severe first, and whether a warning or critical one is new this cycle.
    pub fn evaluate(&mut self, snap: &Snapshot, now_ms: u64) -> (Vec<Finding>, bool) {
        let mut hits: Vec<KeyedHit> = Vec::new();
        // Carrier flaps of each netdev, to add to its port's transitions.
        let mut carrier_flaps: HashMap<String, u64> = HashMap::new();
        for nd in &snap.netdevs {
            if let Some(c) = nd.link.as_ref().and_then(|l| l.carrier_changes) {
                let before = self.carrier.insert(nd.name.clone(), c);
                if let Some(b) = before
                    && c > b
                {
                    carrier_flaps.insert(nd.name.clone(), u64::from(c - b) / 2);
                }
            }
            // The driver's own link-down count, where ethtool netlink has it.
            if let Some(d) = nd.ethtool_nl.as_ref().and_then(|e| e.link_down_events) {
                let before = self.link_downs.insert(nd.name.clone(), d);
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
        hits.extend(transceiver_rules(snap));
        for d in &snap.devices {
            for p in &d.ports {
                let flaps = p
                    .info
                    .netdev
                    .as_deref()
                    .and_then(|n| carrier_flaps.get(n))
                    .copied()
                    .unwrap_or(0);
                for (id, sev, summary, evidence) in self.port_rules(&d.info.name, p, now_ms, flaps)
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
        hits.extend(self.firmware_rule(snap));
        if let Some(h) = &self.health {
            hits.extend(crate::analysis::health::hits(snap, h));
        }
        // Several device-wide counters can hit one (rule, device): one finding
        // that names each with its own value, not the last one alone.
        let hits = merge_same_key(hits);

        let mut new_serious = false;
        let mut seen: Vec<Key> = Vec::with_capacity(hits.len());
        for (key, severity, summary, evidence) in hits {
            seen.push(key.clone());
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
                    let (device, subject) = crate::analysis::health::place(key.0, &key.1);
                    let f = Finding {
                        id: key.0,
                        severity,
                        device,
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
        out.sort_by(|a, b| {
            (a.severity, &a.device, a.port, a.id).cmp(&(b.severity, &b.device, b.port, b.id))
        });
        (out, new_serious)
    }

    fn port_rules(
        &mut self,
        device: &str,
        p: &PortView,
        now_ms: u64,
        carrier_flaps: u64,
    ) -> Vec<Hit> {
        let th = &self.th;
        let h = self.ports.entry((device.to_string(), p.port)).or_default();
        let mut hits = Vec::new();
        let c = |n: &str| p.counters.get(n);
        let hw = |n: &str| p.hw_counters.get(n);
        let name = format!("{device}/{}", p.port);

        // State, and the transitions that make a flap.
        let active = p.state.as_ref().is_some_and(|s| s.value == STATE_ACTIVE);
        let downed = delta_of(c("link_downed"))
            .max(delta_of(hw("link_downed")))
            .max(carrier_flaps);
        if p.state.is_some() {
            if !active {
                h.down_pending = true;
            }
            if active && (h.down_pending || downed > 0) {
                // Each down the counter saw is one transition; a down the samples
                // caught without the counter moving counts once.
                let n = downed.max(u64::from(h.down_pending)).min(64);
                for _ in 0..n {
                    h.transitions.push_back(now_ms);
                }
                h.down_pending = false;
            }
        }
        let window_ms = (th.flap_window * 1000.0) as u64;
        while h
            .transitions
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > window_ms)
        {
            h.transitions.pop_front();
        }
        if active && h.transitions.len() >= th.flap_transitions.max(1) as usize {
            hits.push((
                "link_flapping",
                Severity::Critical,
                format!(
                    "{name} went down and up {} times in {} s",
                    h.transitions.len(),
                    th.flap_window
                ),
                ev(&[
                    ("transitions", h.transitions.len().into()),
                    ("window_seconds", th.flap_window.into()),
                ]),
            ));
        }
        if let Some(state) = &p.state
            && !active
        {
            let disabled = p
                .phys_state
                .as_ref()
                .is_some_and(|s| s.value == PHYS_DISABLED);
            let sev = if disabled {
                Severity::Info
            } else if h.ever_active {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let phys = p.phys_state.as_ref().map_or("?", |s| s.name.as_str());
            hits.push((
                "port_down",
                sev,
                format!("{name} is {} (physical {phys})", state.name),
                ev(&[
                    ("state", state.name.clone().into()),
                    ("phys_state", phys.into()),
                ]),
            ));
        }
        h.was_active = active;
        h.ever_active |= active;

        if active && let Some(rate) = &p.rate {
            let width = rate.width.unwrap_or(0);
            if width < h.best_width || rate.gbit_per_sec < h.best_rate {
                hits.push((
                    "link_degraded",
                    Severity::Warning,
                    format!(
                        "{name} runs at {} Gb/s {}X, it ran at {} Gb/s {}X",
                        rate.gbit_per_sec, width, h.best_rate, h.best_width
                    ),
                    ev(&[
                        ("gbit_per_sec", rate.gbit_per_sec.into()),
                        ("width", width.into()),
                        ("best_gbit_per_sec", h.best_rate.into()),
                        ("best_width", h.best_width.into()),
                    ]),
                ));
            }
            h.best_width = h.best_width.max(width);
            h.best_rate = h.best_rate.max(rate.gbit_per_sec);
        }

        for (file, id) in [
            ("link_downed", "link_downed"),
            ("link_error_recovery", "link_error_recovery"),
        ] {
            let d = delta_of(c(file)).max(delta_of(hw(file)));
            if d > 0 {
                hits.push((
                    id,
                    Severity::Warning,
                    format!("{name}: {file} +{d}"),
                    ev(&[("delta", d.into())]),
                ));
            }
        }
        let per_minute = [
            ("symbol_error", "symbol_errors", th.symbol_errors_per_minute),
            (
                "port_rcv_errors",
                "receive_errors",
                th.receive_errors_per_minute,
            ),
        ];
        for (file, id, limit) in per_minute {
            if let Some(r) = rate_of(c(file))
                && r * 60.0 > limit
            {
                hits.push((
                    id,
                    Severity::Warning,
                    format!(
                        "{name}: {file} at {:.1}/min (threshold {limit}/min)",
                        r * 60.0
                    ),
                    ev(&[
                        ("per_minute", (r * 60.0).into()),
                        ("threshold", limit.into()),
                    ]),
                ));
            }
        }
        let per_second: [(Option<f64>, &'static str, &str, f64); 3] = [
            (
                rate_of(c("port_xmit_discards")),
                "transmit_discards",
                "port_xmit_discards",
                th.transmit_discards_per_second,
            ),
            (
                rate_of(hw("out_of_buffer")).or(rate_of(hw("rx_out_of_buffer"))),
                "out_of_buffer",
                "out_of_buffer",
                th.out_of_buffer_per_second,
            ),
            (
                [
                    hw("rp_cnp_handled"),
                    hw("np_cnp_sent"),
                    hw("cnpHandled"),
                    hw("cnpSent"),
                ]
                .into_iter()
                .filter_map(rate_of)
                .reduce(f64::max),
                "cnp_rate",
                "CNPs",
                th.cnp_per_second,
            ),
        ];
        for (rate, id, what, limit) in per_second {
            if let Some(r) = rate
                && r > limit
            {
                hits.push((
                    id,
                    Severity::Warning,
                    format!("{name}: {what} at {r:.1}/s (threshold {limit}/s)"),
                    ev(&[("per_second", r.into()), ("threshold", limit.into())]),
                ));
            }
        }
        for (n, v) in p.counters.iter().chain(p.hw_counters.iter()) {
            if let Some(flag) = v.flag {
                let (id, sev, what) = match flag {
                    Flag::Saturated => (
                        "counter_saturated",
                        Severity::Warning,
                        "is saturated: it no longer counts",
                    ),
                    Flag::Reset => (
                        "counter_reset",
                        Severity::Info,
                        "went down (device reset or counters cleared)",
                    ),
                };
                hits.push((
                    id,
                    sev,
                    format!("{name}: {n} {what}"),
                    ev(&[("counter", n.to_string().into()), ("value", v.value.into())]),
                ));
            }
        }
        // One finding per (rule, port): several saturated counters share it.
        merge_same_key(hits)
    }

    /// Pause storms: the share of the last interval a priority spent paused.
    fn pfc_rules(&mut self, snap: &Snapshot) -> Vec<KeyedHit> {
        let mut out = Vec::new();
        let Some(interval) = snap.interval_seconds.filter(|s| *s > 0.0) else {
            // No interval yet: remember the values for the next cycle.
            for nd in &snap.netdevs {
                for c in &nd.ethtool_stats {
                    if let Some(("duration_us", dir, prio)) =
                        crate::sources::netdev::pfc_stat(&c.name)
                    {
                        self.pause_us.insert((nd.name.clone(), dir, prio), c.value);
                    }
                }
            }
            return out;
        };
        for nd in &snap.netdevs {
            for c in &nd.ethtool_stats {
                let Some(("duration_us", dir, prio)) = crate::sources::netdev::pfc_stat(&c.name)
                else {
                    continue;
                };
                let before = self.pause_us.insert((nd.name.clone(), dir, prio), c.value);
                let Some(b) = before.filter(|b| c.value >= *b) else {
                    continue;
                };
                let share = (c.value - b) as f64 / 1e6 / interval;
                if share > self.th.pfc_pause_share {
                    out.push((
                        ("pfc_pause_storm", nd.name.clone(), None, Some(prio)),
                        Severity::Critical,
                        format!(
                            "{} priority {prio} paused {:.0} % of the time ({dir})",
                            nd.name,
                            share * 100.0
                        ),
                        ev(&[
                            ("paused_share", share.into()),
                            ("direction", dir.into()),
                            ("threshold", self.th.pfc_pause_share.into()),
                        ]),
                    ));
                }
            }
        }
        out
    }

    /// Fingerprints what configures each device and netdev, and reports what changed.
    fn config_rules(&mut self, snap: &Snapshot, now_ms: u64) -> Vec<KeyedHit> {
        let mut current: Vec<(String, String)> = Vec::new();
        for d in &snap.devices {
            current.push((
                format!("device {}", d.info.name),
                format!("firmware {}", d.info.fw_ver.as_deref().unwrap_or("?")),
            ));
            for (param, v) in &d.info.dcqcn {
                current.push((
                    format!("device {} dcqcn {param}", d.info.name),
                    v.to_string(),
                ));
            }
        }
        for nd in &snap.netdevs {
            if let Some(di) = &nd.info.drvinfo {
                current.push((
                    format!("netdev {} driver", nd.name),
                    format!("{} {} firmware {}", di.driver, di.version, di.fw_version),
                ));
            }
            let on: Vec<&str> = nd
                .info
                .features
                .iter()
                .filter(|f| f.active)
                .map(|f| f.name.as_str())
                .collect();
            if !on.is_empty() {
                current.push((format!("netdev {} offloads", nd.name), on.join(",")));
            }
            if let Some(p) = nd.info.pause {
                current.push((
                    format!("netdev {} pause", nd.name),
                    format!("rx {} tx {}", p.rx, p.tx),
                ));
            }
            if let Some(mask) = nd.info.dcb.as_ref().and_then(|d| d.pfc_enabled) {
                let prios: Vec<String> = (0..8u8)
                    .filter(|p| mask >> p & 1 == 1)
                    .map(|p| p.to_string())
                    .collect();
                current.push((
                    format!("netdev {} pfc", nd.name),
                    format!("priorities [{}]", prios.join(",")),
                ));
            }
        }
        for m in snap.module_params.iter() {
            current.push((format!("module {} {}", m.module, m.name), m.value.clone()));
        }
        for (thing, print) in current {
            match self.config.insert(thing.clone(), print.clone()) {
                Some(before) if before != print => {
                    self.changed
                        .insert(thing, (now_ms, format!("{before} -> {print}")));
                }
                _ => {}
            }
        }
        self.changed
            .retain(|_, (t, _)| now_ms.saturating_sub(*t) < CHANGE_MS);
        self.changed
            .iter()
            .map(|(thing, (t, what))| {
                let short: String = what.chars().take(300).collect();
                (
                    ("configuration_changed", thing.clone(), None, None),
                    Severity::Info,
                    format!("{thing} changed: {short}"),
                    ev(&[
                        ("change", short.clone().into()),
                        ("changed_unix_ms", (*t).into()),
                    ]),
                )
            })
            .collect()
    }

    fn firmware_rule(&self, snap: &Snapshot) -> Vec<KeyedHit> {
        let mut by_type: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for d in &snap.devices {
            if let (Some(t), Some(fw)) = (d.info.hca_type.as_deref(), d.info.fw_ver.as_deref()) {
                by_type
                    .entry(t)
                    .or_default()
                    .entry(fw)
                    .or_default()
                    .push(&d.info.name);
            }
        }
        let mut out = Vec::new();
        for (hca_type, versions) in by_type {
            if versions.len() < 2 {
                continue;
            }
            let listing: Vec<String> = versions
                .iter()
                .map(|(fw, devs)| format!("{fw}: {}", devs.join(",")))
                .collect();
            out.push((
                ("firmware_mismatch", hca_type.to_string(), None, None),
                Severity::Warning,
                format!(
                    "{hca_type} HCAs run different firmware ({})",
                    listing.join("; ")
                ),
                ev(&[(
                    "versions",
                    serde_json::to_value(&versions).unwrap_or_default(),
                )]),
            ));
        }
        out
    }
}

/// A module reading past the module's own thresholds.
fn transceiver_rules(snap: &Snapshot) -> Vec<KeyedHit> {
    let mut out = Vec::new();
    for nd in &snap.netdevs {
        let Some(m) = &nd.info.module else { continue };
        let mut readings: Vec<(
            &str,
            usize,
            f64,
            Option<crate::sources::ethtool::module::Thresholds>,
        )> = Vec::new();
        readings.extend(
            m.temperature_celsius
                .map(|v| ("temperature", 0, v, m.temperature_thresholds)),
        );
        readings.extend(
            m.supply_voltage_volts
                .map(|v| ("voltage", 0, v, m.voltage_thresholds)),
        );
        for (sensor, values, th) in [
            ("tx_bias", &m.tx_bias_amperes, m.tx_bias_thresholds),
            ("tx_power", &m.tx_power_watts, m.tx_power_thresholds),
            ("rx_power", &m.rx_power_watts, m.rx_power_thresholds),
        ] {
            readings.extend(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (sensor, i + 1, *v, th)),
            );
        }
        let crossed: Vec<String> = readings
            .iter()
            .filter_map(|(sensor, lane, v, th)| {
                th.and_then(|t| t.crossed(*v)).map(|level| {
                    if *lane == 0 {
                        format!("{sensor} {v:.6} {level}")
                    } else {
                        format!("{sensor} lane {lane} {v:.6} {level}")
                    }
                })
            })
            .collect();
        if crossed.is_empty() {
            continue;
        }
        let sev = if crossed.iter().any(|c| c.contains("alarm")) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push((
            ("transceiver_threshold", nd.name.clone(), None, None),
            sev,
            format!(
                "{} transceiver {} {}: {}",
                nd.name,
                m.vendor,
                m.part_number,
                crossed.join("; ")
            ),
            ev(&[("crossed", crossed.into())]),
        ));
    }
    out
}

/// One hit per key: the summaries of hits with the same key are joined and
/// their counters' evidence folded together.
fn merge_same_key<K: PartialEq, S>(
    hits: Vec<(K, S, String, BTreeMap<&'static str, serde_json::Value>)>,
) -> Vec<(K, S, String, BTreeMap<&'static str, serde_json::Value>)> {
    let mut merged: Vec<(K, S, String, _)> = Vec::with_capacity(hits.len());
    for hit in hits {
        match merged.iter_mut().find(|m| m.0 == hit.0) {
            Some(m) => {
                m.2 = format!("{}; {}", m.2, hit.2);
                merge_counter_evidence(&mut m.3, &hit.3);
            }
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

#[cfg(test)]
mod tests;
