//! Node verdicts: the operator's expectations (`health.expect`), peer
//! comparison among a node's ports (`port_outlier`), and the one-word
//! verdict schedulers act on.
//!
//! - `expectation_unmet` (critical, or the rule's `severity`): a
//!   `health.expect` rule covers the ports of the devices its `match` glob
//!   names with its `link_layer`; a covered port is *good* when it is ACTIVE
//!   at `min_rate_gbps` or more and `min_width` lanes or more. The rule is
//!   unmet when fewer than `ports` covered ports are good (without `ports`:
//!   when any covered port is not good, or none is covered). The finding's
//!   `subject` is the rule's name; its evidence lists each covered port that
//!   is not good and why, and how many ports are missing.
//! - `port_outlier` (warning), without configuration: ports are grouped by
//!   HCA type (`hca_type`, else the driver) and link layer; a group needs two
//!   ACTIVE ports. A port is an outlier when
//!   - its rate or width is below the group's typical one (the most common
//!     rate and width; a tie goes to the faster), or
//!   - its error rate (PMA error counters, per second) or retransmission
//!     rate (the responder/requester sequence and timeout counters) is above
//!     `health.outlier_min_per_second` and at least `health.outlier_factor`
//!     times the median of its siblings' rates.
//! - The verdict: `unhealthy` with any critical finding, `degraded` with any
//!   warning, `healthy` otherwise (info findings do not count).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::analysis::findings::KeyedHit;
use crate::config::health::{ExpectSeverity, Expectation, Health, glob_match};
use crate::model::finding::{Finding, Severity};
use crate::snapshot::{CounterView, PortView, Positions, Snapshot};

const STATE_ACTIVE: u8 = 4;

/// Error counters of the PMA (`counters/`, IBTA PortCounters), per second summed.
const ERROR_COUNTERS: &[&str] = &[
    "symbol_error",
    "port_rcv_errors",
    "link_error_recovery",
    "link_downed",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "port_rcv_remote_physical_errors",
];

/// Counters that move when packets are sent again: the catalog's for the
/// `retransmission_rate` finding (one table for the finding, its alert,
/// `top` and this comparison: a driver added there counts here).
/// Looked up once: the catalog has a hundred entries, a port a handful.
pub(crate) fn retransmit_counters() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| crate::catalog::hw_files_used_by("retransmission_rate").collect())
}

/// The counters the peer comparison reads: [`ERROR_COUNTERS`], then
/// [`retransmit_counters`], in one list for one `Positions` per port.
fn peer_counters() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let retransmits = retransmit_counters().iter();
        ERROR_COUNTERS.iter().chain(retransmits).copied().collect()
    })
}

/// Where each port's error and retransmission counters sit, by the port's
/// place among the snapshot's ports: kept by the findings engine from
/// cycle to cycle, so a port whose counter lists did not change is summed
/// without looking a name up (`snapshot::Positions`).
#[derive(Debug, Default)]
pub struct PeerPositions(Vec<Positions>);

/// Rules keyed by a netdev, not an RDMA device.
const NETDEV_RULES: &[&str] = &[
    "pfc_pause_storm",
    "transceiver_threshold",
    "priority_drops",
    "phy_ber",
];

/// Rules keyed by something else: a configuration rule, an HCA type, a
/// configuration item ("netdev eth0 pause", "module mlx5_core ..."), a fabric
/// port or cable (both ends named).
const SUBJECT_RULES: &[&str] = &[
    "expectation_unmet",
    "firmware_mismatch",
    "configuration_changed",
    "fabric_transmit_wait",
    // findings/fabric_verdicts.rs: the subject names the cable's or port's ends.
    "fabric_link_lost",
    "fabric_node_lost",
    "fabric_link_degraded",
    "fabric_link_added",
    "fabric_port_unreadable",
    "fabric_port_errors",
    "fabric_expected_topology_invalid",
];

/// Where a finding's key points: `(device, netdev, subject)`. The `device`
/// label is only ever an RDMA device, `netdev` only a netdev; anything else
/// goes in `subject`.
pub fn place(id: &str, key_where: &str) -> (String, Option<String>, Option<String>) {
    // A kernel log line that names no RDMA device of this node is about a
    // subject ("pci 0000:08:00.0", "driver irdma"): device names have no space.
    if NETDEV_RULES.contains(&id) {
        (String::new(), Some(key_where.to_string()), None)
    } else if SUBJECT_RULES.contains(&id) || (id == "kernel_log_event" && key_where.contains(' ')) {
        (String::new(), None, Some(key_where.to_string()))
    } else {
        (key_where.to_string(), None, None)
    }
}

/// What schedulers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Healthy, Verdict::Degraded, Verdict::Unhealthy];

    pub fn of(findings: &[Finding]) -> Verdict {
        let worst = findings.iter().map(|f| f.severity).min();
        match worst {
            Some(Severity::Critical) => Verdict::Unhealthy,
            Some(Severity::Warning) => Verdict::Degraded,
            Some(Severity::Info) | None => Verdict::Healthy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
        }
    }

    /// `rdma-monitor check`'s exit status for this verdict.
    pub fn exit_code(self) -> u8 {
        self as u8
    }
}

/// One line that says the verdict and how many findings of each severity.
pub fn verdict_line(findings: &[Finding]) -> String {
    let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{}: {} critical, {} warning, {} info",
        Verdict::of(findings).as_str(),
        n(Severity::Critical),
        n(Severity::Warning),
        n(Severity::Info)
    )
}

/// One finding as one line: severity, rule, where, what.
pub fn finding_line(f: &Finding) -> String {
    let mut place = String::new();
    if !f.device.is_empty() {
        place.push_str(&format!(" device={}", f.device));
    }
    if let Some(n) = &f.netdev {
        place.push_str(&format!(" netdev={n}"));
    }
    if let Some(p) = f.port {
        place.push_str(&format!(" port={p}"));
    }
    if let Some(p) = f.priority {
        place.push_str(&format!(" priority={p}"));
    }
    if let Some(s) = &f.subject {
        place.push_str(&format!(" subject={s}"));
    }
    let summary = crate::config::escape(&f.summary);
    format!(
        "{} {}{place}: {summary}",
        f.severity.as_str().to_uppercase(),
        f.id
    )
}

/// `rdma_node_health{verdict}`: 1 for the current verdict, 0 for the others
/// (a state set: an alert on `rdma_node_health{verdict="unhealthy"} == 1`).
pub fn export(findings: &[Finding], out: &mut crate::metrics::Builder) {
    let now = Verdict::of(findings);
    for v in Verdict::ALL {
        out.gauge_u64(
            "rdma_node_health",
            "The node's verdict from its active findings, 1 for the current one: unhealthy with a critical finding, degraded with a warning, else healthy.",
            &[("verdict", v.as_str())],
            (v == now).into(),
        );
    }
}

/// The hits of every rule of this module on one snapshot.
pub fn hits(snap: &Snapshot, cfg: &Health, positions: &mut PeerPositions) -> Vec<KeyedHit> {
    let mut out = expectation_hits(snap, &cfg.expect);
    out.extend(outlier_hits(snap, cfg, positions));
    out
}

fn is_active(p: &PortView) -> bool {
    p.state.as_ref().is_some_and(|s| s.value == STATE_ACTIVE)
}

fn same_link_layer(want: &str, p: &PortView) -> bool {
    p.info
        .link_layer
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case(want))
}

/// "InfiniBand ports of mlx5_*: 8 at >= 400 Gb/s, >= 4X".
fn describe(e: &Expectation) -> String {
    let mut s = format!(
        "{} ports",
        e.link_layer.as_deref().unwrap_or("all link layers:")
    );
    if let Some(m) = &e.device_match {
        s.push_str(&format!(" of {m}"));
    }
    s.push_str(": ");
    s.push_str(&match e.ports {
        Some(n) => format!("{n} ACTIVE"),
        None => "all ACTIVE".to_string(),
    });
    if let Some(r) = e.min_rate_gbps {
        s.push_str(&format!(", >= {r} Gb/s"));
    }
    if let Some(w) = e.min_width {
        s.push_str(&format!(", >= {w}X"));
    }
    s
}

/// Why a covered port is not good, or `None` when it is.
fn shortfall(e: &Expectation, p: &PortView) -> Option<String> {
    if !is_active(p) {
        return Some(match &p.state {
            Some(s) => s.name.clone(),
            None => "state unknown".to_string(),
        });
    }
    let mut why = Vec::new();
    match (&p.rate, e.min_rate_gbps) {
        (Some(r), Some(min)) if r.gbit_per_sec < min => {
            why.push(format!("{} Gb/s < {min} Gb/s", r.gbit_per_sec));
        }
        (None, Some(_)) => why.push("rate unknown".to_string()),
        _ => {}
    }
    match (p.rate.as_ref().and_then(|r| r.width), e.min_width) {
        (Some(w), Some(min)) if w < min => why.push(format!("{w}X < {min}X")),
        (None, Some(_)) => why.push("width unknown".to_string()),
        _ => {}
    }
    (!why.is_empty()).then(|| why.join(", "))
}

fn expectation_hits(snap: &Snapshot, rules: &[Expectation]) -> Vec<KeyedHit> {
    let mut out = Vec::new();
    for (i, e) in rules.iter().enumerate() {
        let mut covered = 0usize;
        let mut good = 0usize;
        let mut problems: Vec<String> = Vec::new();
        for d in &snap.devices {
            if e.device_match
                .as_deref()
                .is_some_and(|g| !glob_match(g, &d.info.name))
            {
                continue;
            }
            for p in &d.ports {
                if e.link_layer
                    .as_deref()
                    .is_some_and(|ll| !same_link_layer(ll, p))
                {
                    continue;
                }
                covered += 1;
                match shortfall(e, p) {
                    None => good += 1,
                    Some(why) => problems.push(format!("{}/{}: {why}", d.info.name, p.port)),
                }
            }
        }
        let required = e.ports.map_or(covered.max(1), |n| n as usize);
        if good >= required {
            continue;
        }
        let missing = required.saturating_sub(covered);
        let name = e.label(i);
        let mut seen = problems.clone();
        if missing > 0 {
            seen.push(format!(
                "{missing} port(s) missing ({covered} covered of {required} required)"
            ));
        }
        let severity = match e.severity {
            Some(ExpectSeverity::Warning) => Severity::Warning,
            _ => Severity::Critical,
        };
        let mut evidence: BTreeMap<&'static str, Value> = BTreeMap::new();
        evidence.insert("rule", describe(e).into());
        evidence.insert("required", required.into());
        evidence.insert("good", good.into());
        evidence.insert("covered", covered.into());
        evidence.insert("missing", missing.into());
        evidence.insert("not_good", problems.into());
        out.push((
            ("expectation_unmet", name.clone(), None, None),
            severity,
            format!(
                "expectation {name} unmet ({}): {good} of {required} ports good; {}",
                describe(e),
                seen.join("; ")
            ),
            evidence,
        ));
    }
    out
}

/// A port with what the peer comparison looks at.
struct Peer<'a> {
    /// Its group: HCA type (or driver) and link layer.
    group: (&'a str, &'a str),
    /// Its place among the node's active ports.
    order: usize,
    device: &'a str,
    port: &'a PortView,
    errors: Option<f64>,
    retransmits: Option<f64>,
}

/// The rates of some counters summed, each looked for among the PMA
/// counters first, then the driver's: `(in counters, in hw_counters)` per name.
fn rate_sum<'a>(
    found: impl Iterator<Item = (Option<&'a CounterView>, Option<&'a CounterView>)>,
) -> Option<f64> {
    found
        .filter_map(|(pma, hw)| pma.or(hw).and_then(|c| c.rate))
        .reduce(|a, b| a + b)
}

/// The median of `sorted` (sorted by `f64::total_cmp`) without one entry
/// equal to `v`: a port's siblings' median, from one sorted list of the
/// group instead of a list per port.
fn median_without(sorted: &[f64], v: f64) -> Option<f64> {
    let skip = sorted.iter().position(|x| x.total_cmp(&v).is_eq())?;
    let n = sorted.len() - 1;
    if n == 0 {
        return None;
    }
    let at = |k: usize| sorted[if k < skip { k } else { k + 1 }];
    let mid = n / 2;
    Some(if n.is_multiple_of(2) {
        (at(mid - 1) + at(mid)) / 2.0
    } else {
        at(mid)
    })
}

/// The entry of peer `i` in a per-peer list that is made (one per peer of
/// the group) only when some peer has something to say.
fn of_peer<T: Clone + Default>(v: &mut Vec<T>, peers: usize, i: usize) -> &mut T {
    if v.is_empty() {
        v.resize(peers, T::default());
    }
    &mut v[i]
}

fn outlier_hits(snap: &Snapshot, cfg: &Health, positions: &mut PeerPositions) -> Vec<KeyedHit> {
    // Every active port in one list, then grouped by sorting (unstable
    // sort allocates nothing; the groups keep the devices' order).
    let ports = snap.devices.iter().map(|d| d.ports.len()).sum();
    positions.0.resize_with(ports, Default::default);
    let mut places = positions.0.iter_mut();
    let mut all: Vec<Peer> = Vec::with_capacity(ports);
    for d in &snap.devices {
        let kind = d.info.hca_type.as_deref().or(d.info.driver.as_deref());
        for p in &d.ports {
            let Some(at) = places.next() else {
                break;
            };
            let (Some(kind), true, Some(ll)) = (kind, is_active(p), p.info.link_layer.as_deref())
            else {
                continue;
            };
            let mut found = at.find(peer_counters(), &p.counters, &p.hw_counters);
            let errors = rate_sum(found.by_ref().take(ERROR_COUNTERS.len()));
            all.push(Peer {
                group: (kind, ll),
                order: all.len(),
                device: &d.info.name,
                port: p,
                errors,
                retransmits: rate_sum(found),
            });
        }
    }
    all.sort_unstable_by_key(|p| (p.group, p.order));
    let mut out = Vec::new();
    for peers in all.chunk_by(|a, b| a.group == b.group) {
        let (kind, ll) = peers[0].group;
        if peers.len() < 2 {
            continue;
        }
        // Made only for a group where some port is an outlier.
        let mut reasons: Vec<Vec<String>> = Vec::new();
        let mut evidence: Vec<BTreeMap<&'static str, Value>> = Vec::new();
        // The typical rate and width: the most common, a tie to the faster
        // (a group is a node's ports: counted pairwise, nothing allocated).
        let key = |r: &crate::model::Rate| (r.gbit_per_sec.to_bits(), r.width.unwrap_or(0));
        let rates = || peers.iter().filter_map(|p| p.port.rate.as_ref());
        let typical = rates()
            .map(|r| (key(r), rates().filter(|q| key(q) == key(r)).count()))
            .max_by(|a, b| {
                a.1.cmp(&b.1).then(
                    f64::from_bits(a.0.0)
                        .total_cmp(&f64::from_bits(b.0.0))
                        .then(a.0.1.cmp(&b.0.1)),
                )
            })
            .map(|((g, w), n)| (f64::from_bits(g), w, n));
        if let Some((gbit, width, n)) = typical {
            for (i, p) in peers.iter().enumerate() {
                let Some(r) = &p.port.rate else { continue };
                let w = r.width.unwrap_or(0);
                if r.gbit_per_sec < gbit || (w > 0 && width > 0 && w < width) {
                    of_peer(&mut reasons, peers.len(), i).push(format!(
                        "runs at {} Gb/s {w}X, {n} of its {} {kind} {ll} siblings at {gbit} Gb/s {width}X",
                        r.gbit_per_sec,
                        peers.len()
                    ));
                    let ev = of_peer(&mut evidence, peers.len(), i);
                    ev.insert("gbit_per_sec", r.gbit_per_sec.into());
                    ev.insert("width", w.into());
                    ev.insert("typical_gbit_per_sec", gbit.into());
                    ev.insert("typical_width", width.into());
                }
            }
        }
        for (what, key, get) in [
            (
                "error",
                "errors_per_second",
                (|p: &Peer| p.errors) as fn(&Peer) -> Option<f64>,
            ),
            ("retransmission", "retransmits_per_second", |p: &Peer| {
                p.retransmits
            }),
        ] {
            // Only a port above the floor can be an outlier; on most
            // cycles none is, and no median is needed.
            if !peers
                .iter()
                .any(|p| get(p).is_some_and(|v| v > cfg.outlier_min_per_second))
            {
                continue;
            }
            let mut sorted: Vec<f64> = peers.iter().filter_map(get).collect();
            sorted.sort_by(f64::total_cmp);
            for (i, p) in peers.iter().enumerate() {
                let Some(v) = get(p) else { continue };
                let Some(m) = median_without(&sorted, v) else {
                    continue;
                };
                if v > cfg.outlier_min_per_second && v >= cfg.outlier_factor * m {
                    of_peer(&mut reasons, peers.len(), i).push(format!(
                        "{what} rate {v:.3}/s, its siblings' median {m:.3}/s"
                    ));
                    let ev = of_peer(&mut evidence, peers.len(), i);
                    ev.insert(key, v.into());
                    ev.insert(
                        if what == "error" {
                            "sibling_median_errors_per_second"
                        } else {
                            "sibling_median_retransmits_per_second"
                        },
                        m.into(),
                    );
                }
            }
        }
        if reasons.is_empty() {
            continue;
        }
        evidence.resize(peers.len(), BTreeMap::new());
        for ((p, why), mut ev) in peers.iter().zip(reasons).zip(evidence) {
            if why.is_empty() {
                continue;
            }
            ev.insert("hca_type", kind.into());
            ev.insert("link_layer", ll.into());
            ev.insert("siblings", (peers.len() - 1).into());
            out.push((
                (
                    "port_outlier",
                    p.device.to_string(),
                    Some(p.port.port),
                    None,
                ),
                Severity::Warning,
                format!("{}/{}: {}", p.device, p.port.port, why.join("; ")),
                ev,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
