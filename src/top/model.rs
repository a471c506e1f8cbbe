//! Rates from two consecutive snapshot documents, and the history behind the
//! sparklines. `top` keeps its own history: the document carries absolute
//! counters, and a rate is their difference over the documents' timestamps.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::doc::{Counter, Doc, Finding, Mad, Port};

/// Samples of throughput kept per port (5 minutes at the default 1 s refresh).
pub const HISTORY: usize = 300;

/// PMA counters whose sum is the ERR/s column (IBTA PortCounters error fields).
pub const ERROR_COUNTERS: &[&str] = &[
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_xmit_discards",
    "port_xmit_constraint_errors",
    "port_rcv_constraint_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "VL15_dropped",
];

/// hw_counters whose sum is the RETX/s column: the catalog's for the
/// `retransmission_rate` finding, which the alert checks against too (one
/// table: a driver added there counts here).
pub fn retransmit_counters() -> impl Iterator<Item = &'static str> {
    crate::catalog::hw_files_used_by("retransmission_rate")
}

/// CNPs sent (notification point) and handled (reaction point): mlx5, irdma.
pub const CNP_COUNTERS: &[&str] = &["np_cnp_sent", "rp_cnp_handled", "cnpSent", "cnpHandled"];

/// ECN-marked packets received: mlx5, irdma.
pub const ECN_COUNTERS: &[&str] = &["np_ecn_marked_roce_packets", "RxECNMrkd"];

/// One counter of a port in the detail pane.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterRate {
    pub name: String,
    pub value: u64,
    /// None on the first document, after a reset, or when saturated.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortRow {
    pub device: String,
    pub port: u32,
    pub netdev: String,
    pub link_layer: String,
    pub state: String,
    /// e.g. `400G 4x`.
    pub speed: String,
    /// Bytes per second (PMA data counters × 4).
    pub tx: Option<f64>,
    pub rx: Option<f64>,
    pub pkts: Option<f64>,
    pub errors: Option<f64>,
    pub retransmits: Option<f64>,
    pub cnp: Option<f64>,
    pub ecn: Option<f64>,
    /// Largest share (percent) of the interval any priority of the port's
    /// netdev was paused, in either direction.
    pub pause_percent: Option<f64>,
    pub counters: Vec<CounterRate>,
}

impl PortRow {
    pub fn key(&self) -> (String, u32) {
        (self.device.clone(), self.port)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FabricRow {
    pub node_desc: String,
    pub lid: u16,
    pub port: u8,
    /// XmitWait ticks per second.
    pub xmit_wait: Option<f64>,
    pub errors: Option<f64>,
    pub tx: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub doc: Doc,
    prev: Option<Doc>,
    /// Seconds between the two documents the rates come from.
    pub interval: Option<f64>,
    pub ports: Vec<PortRow>,
    pub fabric: Vec<FabricRow>,
    /// The last fabric counter read and the one before it: they come every
    /// `fabric.interval`, so their rates are over their own read times, not
    /// over the documents'.
    fabric_reads: (Option<Mad>, Option<Mad>),
    /// Seconds between those two reads.
    pub fabric_interval: Option<f64>,
    /// TX+RX bytes/s per port, oldest first.
    pub history: HashMap<(String, u32), VecDeque<f64>>,
    /// Documents taken so far.
    pub frames: u64,
}

fn rate(prev: Option<&Counter>, now: &Counter, secs: f64) -> Option<f64> {
    if now.flag.as_deref() == Some("saturated") || secs <= 0.0 {
        return None;
    }
    let prev = prev?;
    // A counter that went down was reset: no rate this time.
    (now.value >= prev.value).then(|| (now.value - prev.value) as f64 / secs)
}

/// Sum of the rates of the named counters that exist; None if none has a rate.
fn sum<'a>(
    rates: &BTreeMap<&str, Option<f64>>,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<f64> {
    names
        .into_iter()
        .filter_map(|n| rates.get(n).copied().flatten())
        .fold(None, |acc, r| Some(acc.unwrap_or(0.0) + r))
}

/// `rx_prio3_pause_duration` → true for a pause duration in µs (mlx5 names).
fn is_pause_duration(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("rx_prio")
        .or_else(|| name.strip_prefix("tx_prio"))
    else {
        return false;
    };
    rest.strip_suffix("_pause_duration")
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn pause_percent(doc: &Doc, prev: Option<&Doc>, netdev: &str, secs: f64) -> Option<f64> {
    let now = doc.netdevs.iter().find(|n| n.name == netdev)?;
    let before = prev?.netdevs.iter().find(|n| n.name == netdev)?;
    now.ethtool_stats
        .iter()
        .filter(|s| is_pause_duration(&s.name))
        .filter_map(|s| {
            let b = before.ethtool_stats.iter().find(|p| p.name == s.name)?;
            (s.value >= b.value && secs > 0.0)
                .then(|| (s.value - b.value) as f64 / 1e6 / secs * 100.0)
        })
        .reduce(f64::max)
}

fn speed(p: &Port) -> String {
    match &p.rate {
        Some(r) => {
            let g = r.gbit_per_sec.map(|g| format!("{g:.0}G"));
            let w = r.width.map(|w| format!("{w}x"));
            [g, w].into_iter().flatten().collect::<Vec<_>>().join(" ")
        }
        None => String::new(),
    }
}

fn port_row(doc: &Doc, prev: Option<&Doc>, device: &str, p: &Port, secs: f64) -> PortRow {
    let prev_port = prev
        .and_then(|d| d.devices.iter().find(|x| x.name == device))
        .and_then(|d| d.ports.iter().find(|x| x.port == p.port));
    let mut counters = Vec::new();
    let mut rates: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    // hw_counters apart too: the finding reads its names there only.
    let mut hw_rates: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (set, prev_set, hw) in [
        (&p.counters, prev_port.map(|x| &x.counters), false),
        (&p.hw_counters, prev_port.map(|x| &x.hw_counters), true),
    ] {
        for (name, c) in set {
            let r = rate(prev_set.and_then(|s| s.get(name)), c, secs);
            rates.insert(name, r);
            if hw {
                hw_rates.insert(name, r);
            }
            counters.push(CounterRate {
                name: name.clone(),
                value: c.value,
                rate: r,
            });
        }
    }
    let bytes = |n: &str| rates.get(n).copied().flatten().map(|r| r * 4.0);
    let netdev = p.netdev.clone().unwrap_or_default();
    PortRow {
        device: device.to_string(),
        port: p.port,
        link_layer: match p.link_layer.as_deref() {
            Some("InfiniBand") => "IB".into(),
            Some("Ethernet") => "Eth".into(),
            Some(o) => o.chars().take(3).collect(),
            None => String::new(),
        },
        state: p
            .state
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_default(),
        speed: speed(p),
        tx: bytes("port_xmit_data"),
        rx: bytes("port_rcv_data"),
        pkts: sum(&rates, ["port_xmit_packets", "port_rcv_packets"]),
        errors: sum(&rates, ERROR_COUNTERS.iter().copied()),
        retransmits: sum(&hw_rates, retransmit_counters()),
        cnp: sum(&rates, CNP_COUNTERS.iter().copied()),
        ecn: sum(&rates, ECN_COUNTERS.iter().copied()),
        pause_percent: (!netdev.is_empty())
            .then(|| pause_percent(doc, prev, &netdev, secs))
            .flatten(),
        netdev,
        counters,
    }
}

fn fabric_rows(mad: &Mad, before: Option<&Mad>, secs: f64) -> Vec<FabricRow> {
    mad.fabric_counters
        .iter()
        // Switch ports (node type 2): where congestion shows as XmitWait.
        .filter(|f| f.node_type == 2)
        .filter_map(|f| {
            let pma = f.pma.as_ref()?;
            let old = before
                .and_then(|b| {
                    b.fabric_counters
                        .iter()
                        .find(|o| o.node_guid == f.node_guid && o.port == f.port)
                })
                .and_then(|o| o.pma.as_ref());
            let r = |name: &str| -> Option<f64> {
                if pma.saturated.iter().any(|s| s == name) {
                    return None;
                }
                let now = Counter {
                    value: *pma.counters.get(name)?,
                    flag: None,
                };
                let then = old.and_then(|o| o.counters.get(name)).map(|v| Counter {
                    value: *v,
                    flag: None,
                });
                rate(then.as_ref(), &now, secs)
            };
            let errors = ERROR_COUNTERS
                .iter()
                .filter_map(|n| r(n))
                .fold(None, |acc: Option<f64>, x| Some(acc.unwrap_or(0.0) + x));
            Some(FabricRow {
                node_desc: f.node_desc.clone(),
                lid: f.lid,
                port: f.port,
                xmit_wait: r("port_xmit_wait"),
                errors,
                tx: r("port_xmit_data").map(|x| x * 4.0),
            })
        })
        .collect()
}

impl Model {
    /// A fabric counter read not seen before moves the pair on and gives new
    /// rates; the same read again (a document between two reads) keeps them.
    /// A read without its time (an older agent) has no rates.
    fn update_fabric(&mut self) {
        let Some(mad) = &self.doc.mad else {
            self.fabric.clear();
            self.fabric_reads = (None, None);
            self.fabric_interval = None;
            return;
        };
        let stamp = |m: &Option<Mad>| m.as_ref().and_then(|m| m.fabric_counters_unix_ms);
        let new = mad.fabric_counters_unix_ms.is_none()
            || mad.fabric_counters_unix_ms != stamp(&self.fabric_reads.1);
        if !new && !self.fabric.is_empty() {
            return;
        }
        let last = self.fabric_reads.1.take();
        self.fabric_reads = (last, Some(mad.clone()));
        self.fabric_interval = match (stamp(&self.fabric_reads.0), mad.fabric_counters_unix_ms) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e3),
            _ => None,
        };
        let secs = self.fabric_interval.unwrap_or(0.0);
        self.fabric = fabric_rows(mad, self.fabric_reads.0.as_ref(), secs);
    }

    /// Takes the next document. One with the same timestamp as the current
    /// (a remote agent polls less often than `top` refreshes) changes nothing.
    pub fn update(&mut self, doc: Doc) {
        if self.frames > 0 {
            if doc.timestamp_unix_ms == self.doc.timestamp_unix_ms {
                return;
            }
            self.prev = Some(std::mem::replace(&mut self.doc, doc));
        } else {
            self.doc = doc;
        }
        self.frames += 1;
        let prev = self.prev.as_ref();
        let secs = prev
            .map(|p| {
                (self
                    .doc
                    .timestamp_unix_ms
                    .saturating_sub(p.timestamp_unix_ms)) as f64
                    / 1e3
            })
            .filter(|s| *s > 0.0);
        self.interval = secs;
        let s = secs.unwrap_or(0.0);
        self.ports = self
            .doc
            .devices
            .iter()
            .flat_map(|d| {
                d.ports
                    .iter()
                    .map(|p| port_row(&self.doc, prev, &d.name, p, s))
            })
            .collect();
        self.update_fabric();
        let mut seen = Vec::with_capacity(self.ports.len());
        for row in &self.ports {
            let key = row.key();
            if let Some(t) = row.tx.map(|t| t + row.rx.unwrap_or(0.0)) {
                let h = self.history.entry(key.clone()).or_default();
                if h.len() == HISTORY {
                    h.pop_front();
                }
                h.push_back(t);
            }
            seen.push(key);
        }
        // Ports gone from the node take their history with them.
        self.history.retain(|k, _| seen.contains(k));
    }

    pub fn findings(&self) -> &[Finding] {
        &self.doc.findings
    }
}
