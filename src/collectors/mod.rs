//! Collectors turn one cycle into metric families, one area each: the
//! reading, the state derived from it (deltas, rates, flags) and the
//! findings. A new collector is a file here plus one line in [`REGISTRY`].

use crate::catalog;

mod attribution;
mod configuration;
mod congestion;
mod ethtool_stats;
mod fabric;
mod findings;
pub mod inputs;
mod link_status;
mod netdev;
mod performance;
mod resources;
pub mod self_metrics;
mod topology;
mod transport;
mod xmit_wait;

#[cfg(test)]
mod dashboard_tests;

use crate::config::{Config, NetworkMode};
use crate::detect::{self, Transport};
use crate::metrics::{Builder, Kind, Prefixed, Tail, Tails, Value};
use crate::model::finding::Finding;
use crate::model::netdev::NetdevReading;
use crate::model::{DeviceReading, NodeReading, PortReading};
use crate::snapshot::Snapshot;

/// What a collector sees of one cycle.
pub struct Cycle<'a> {
    pub node: &'a NodeReading,
    pub mode: NetworkMode,
    /// The MAD worker's latest view (local PMA, fabric), when MADs are on.
    pub mad: Option<&'a crate::mad_worker::MadView>,
    /// The last resource dumps grouped by consumer, when attribution is on.
    pub attribution: Option<&'a crate::model::consumers::Attribution>,
    /// The state derived from the reading (deltas, rates, flags); the
    /// netdevs and read errors have moved here from `node`.
    pub snapshot: &'a Snapshot,
    /// The findings the engine returned for `snapshot`.
    pub findings: &'a [Finding],
    /// Each port's counters in the catalog, looked up on first use.
    pub known: KnownCounters,
}

/// The catalog entry of every counter of every port (`counters/` then
/// `hw_counters/`, port after port in [`Cycle::ports`] order), looked up
/// once per cycle: four collectors export the catalogued counters of their
/// area and the performance one the rest, so each counter's lookup was
/// made five to six times a cycle. With each entry, the series' labels
/// after `device` and `port`, rendered ([`Tails`]).
///
/// Kept from cycle to cycle ([`KnownCounters::next`]): while every port has
/// the same names in the same places, last cycle's entries and tails stand
/// and nothing is looked up or rendered. Sources hand out the same `Arc`
/// for a name every cycle, so the pointer settles it; where one makes new
/// ones (the MAD merge) the text does.
#[derive(Default)]
pub struct KnownCounters {
    now: std::cell::OnceCell<Entries>,
    /// The names `kept` was looked up for, port after port, and each port's
    /// (`counters`, `hw_counters`) lengths.
    names: std::cell::RefCell<Vec<std::sync::Arc<str>>>,
    shape: std::cell::RefCell<Vec<(usize, usize)>>,
    kept: std::cell::RefCell<Entries>,
    /// How many times the entries were looked up afresh.
    #[cfg(test)]
    look_ups: std::cell::Cell<usize>,
}

#[derive(Default)]
struct Entries {
    known: Vec<Entry>,
    tails: Tails,
}

/// A counter's catalog entry and the index of its series' tail.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub known: Option<&'static catalog::Known>,
    tail: usize,
}

/// A port with its counters' entries ([`Cycle::ports_known`]).
pub struct KnownPort<'a> {
    pub dev: &'a DeviceReading,
    pub port: &'a PortReading,
    /// The entries of `port.counters`, in its order.
    pub pma: &'a [Entry],
    /// The entries of `port.hw_counters`, in its order.
    pub hw: &'a [Entry],
    tails: &'a Tails,
}

impl KnownPort<'_> {
    /// `out` with this port's `device` and `port` labels rendered once, for
    /// every series of the port pushed through it ([`KnownPort::push`]).
    pub fn prefixed<'b>(&self, out: &'b mut Builder) -> Prefixed<'b> {
        let mut port = itoa::Buffer::new();
        out.prefixed(&[
            ("device", &*self.dev.info.name),
            ("port", port.format(self.port.port)),
        ])
    }

    /// A counter's series under `name`: the port's labels (`out`, from
    /// [`KnownPort::prefixed`]), then the tail of its entry `e` (one of
    /// this port's, this cycle).
    pub fn push(
        &self,
        out: &mut Prefixed<'_>,
        name: &'static str,
        help: &'static str,
        counter: &str,
        e: Entry,
        value: Value,
    ) {
        match self.tail(e) {
            Some(tail) => out.push_tail(name, help, Kind::Counter, tail, value),
            // Entries and tails are made together: a bug, which stops debug
            // builds and tests; a release build leaves the series out.
            None if cfg!(debug_assertions) => panic!("no tail for counter {counter}"),
            None => {}
        }
    }

    /// The labels after `device` and `port` of the series of the counter
    /// whose entry `e` is, as [`series_labels`] gives them, rendered.
    fn tail(&self, e: Entry) -> Option<Tail<'_>> {
        self.tails.get(e.tail)
    }
}

/// The labels a port counter's series has after `device` and `port`: its
/// catalog entry's fixed ones (at most two) and `counter` where the entry
/// has it; `counter` alone where the catalog has no entry.
fn series_labels<'a>(
    known: Option<&'static catalog::Known>,
    counter: &'a str,
    buf: &'a mut [(&'a str, &'a str); 3],
) -> &'a [(&'a str, &'a str)] {
    let Some(k) = known else {
        buf[0] = ("counter", counter);
        return &buf[..1];
    };
    let mut n = 0;
    for l in k.labels.iter().take(2) {
        buf[n] = *l;
        n += 1;
    }
    if k.counter_label {
        buf[n] = ("counter", counter);
        n += 1;
    }
    &buf[..n]
}

impl KnownCounters {
    /// What the next cycle starts from: this cycle's entries and names.
    pub fn next(self) -> KnownCounters {
        let KnownCounters {
            now,
            names,
            shape,
            kept,
            #[cfg(test)]
            look_ups,
        } = self;
        if let Some(v) = now.into_inner() {
            *kept.borrow_mut() = v;
        }
        KnownCounters {
            now: Default::default(),
            names,
            shape,
            kept,
            #[cfg(test)]
            look_ups,
        }
    }
}

impl Cycle<'_> {
    pub fn transport(&self, dev: &DeviceReading, port: &PortReading) -> Transport {
        detect::transport(&dev.info, &port.info, self.mode)
    }

    /// The Ethernet side of the ports (moved from the reading into the snapshot).
    pub fn netdevs(&self) -> &[NetdevReading] {
        &self.snapshot.netdevs
    }

    /// Every port with its device, in tree order.
    pub fn ports(&self) -> impl Iterator<Item = (&DeviceReading, &PortReading)> {
        self.node
            .devices
            .iter()
            .flat_map(|d| d.ports.iter().map(move |p| (d, p)))
    }

    /// Every port with the catalog entries of its `counters` and of its
    /// `hw_counters` (`known_on_port`: a stand-in driver counter counts only
    /// where the PMA counter is missing), in [`Cycle::ports`] order.
    pub fn ports_known(&self) -> impl Iterator<Item = KnownPort<'_>> {
        let entries = self.known.now.get_or_init(|| {
            let (mut names, mut shape) =
                (self.known.names.borrow_mut(), self.known.shape.borrow_mut());
            let mut kept = self.known.kept.borrow_mut();
            let counters = || {
                self.ports()
                    .flat_map(|(_, p)| p.counters.iter().chain(&p.hw_counters))
            };
            let same = shape.len() == self.ports().count()
                && self
                    .ports()
                    .zip(shape.iter())
                    .all(|((_, p), s)| *s == (p.counters.len(), p.hw_counters.len()))
                && kept.known.len() == names.len()
                && names.len() == counters().count()
                && counters()
                    .zip(names.iter())
                    .all(|(c, n)| std::sync::Arc::ptr_eq(&c.name, n) || c.name == *n);
            let mut entries = std::mem::take(&mut *kept);
            if same {
                return entries;
            }
            names.clear();
            names.extend(counters().map(|c| c.name.clone()));
            shape.clear();
            shape.extend(
                self.ports()
                    .map(|(_, p)| (p.counters.len(), p.hw_counters.len())),
            );
            self.look_up(&mut entries);
            #[cfg(test)]
            self.known.look_ups.set(self.known.look_ups.get() + 1);
            entries
        });
        let mut at = 0;
        self.ports().map(move |(dev, port)| {
            let (pma, rest) = entries.known[at..].split_at(port.counters.len());
            let hw = &rest[..port.hw_counters.len()];
            at += port.counters.len() + port.hw_counters.len();
            KnownPort {
                dev,
                port,
                pma,
                hw,
                tails: &entries.tails,
            }
        })
    }

    /// Every counter's catalog entry and tail, looked up and rendered
    /// afresh into `entries`' storage. Ports of one driver have the same
    /// tails: each distinct one is rendered once.
    fn look_up(&self, entries: &mut Entries) {
        use catalog::{Source, known_on_port};
        entries.known.clear();
        entries.tails.clear();
        // By the entry's address and the name (when it is a label).
        let mut seen: rustc_hash::FxHashMap<(usize, Option<&str>), usize> = Default::default();
        for (_, p) in self.ports() {
            for (source, set) in [(Source::Pma, &p.counters), (Source::Hw, &p.hw_counters)] {
                for c in set {
                    let known = known_on_port(source, &c.name, &p.counters);
                    let key = match known {
                        Some(k) => (
                            std::ptr::from_ref(k) as usize,
                            k.counter_label.then_some(&*c.name),
                        ),
                        None => (0, Some(&*c.name)),
                    };
                    let tail = *seen.entry(key).or_insert_with(|| {
                        let mut buf = [("", ""); 3];
                        entries.tails.add(series_labels(known, &c.name, &mut buf))
                    });
                    entries.known.push(Entry { known, tail });
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Failed(String),
}

pub trait Collector: Send {
    /// Adds this area's families for the cycle. "No data here" is `Ok`.
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError>;
}

/// A collector's entry in the table: its name and how to build it.
pub struct Registration {
    pub name: &'static str,
    /// The inputs whose failed reads fail this collector (`rdma_monitor_collector_success`).
    pub reads: &'static [inputs::Input],
    pub factory: fn(&Config) -> Box<dyn Collector>,
}

/// Every collector, in the order they run.
pub const REGISTRY: &[Registration] = &[
    performance::REGISTRATION,
    link_status::REGISTRATION,
    congestion::REGISTRATION,
    topology::REGISTRATION,
    configuration::REGISTRATION,
    resources::REGISTRATION,
    fabric::REGISTRATION,
    netdev::REGISTRATION,
    transport::REGISTRATION,
    attribution::REGISTRATION,
    xmit_wait::REGISTRATION,
    findings::REGISTRATION,
];

/// The derived state a collector test needs: the reading's netdevs, nothing else.
#[cfg(test)]
pub(crate) fn test_snapshot(node: &NodeReading) -> Snapshot {
    let mut s = Snapshot::of_devices(Vec::new(), None);
    s.netdevs = node.netdevs.clone();
    s
}

/// Counters from (name, value) pairs.
#[cfg(test)]
pub(crate) fn test_counters(c: &[(&str, u64)]) -> Vec<crate::model::Counter> {
    c.iter()
        .map(|(n, v)| crate::model::Counter {
            name: (*n).into(),
            value: *v,
        })
        .collect()
}

/// A device with one port (port 1), its netdev, PMA and driver counters.
#[cfg(test)]
pub(crate) fn test_device(
    name: &str,
    netdev: Option<&str>,
    pma: &[(&str, u64)],
    hw: &[(&str, u64)],
) -> DeviceReading {
    use std::sync::Arc;

    use crate::model::{DeviceInfo, PortInfo};
    DeviceReading {
        info: Arc::new(DeviceInfo {
            name: name.into(),
            ..DeviceInfo::default()
        }),
        hw_counters: Vec::new(),
        ports: vec![PortReading {
            port: 1,
            info: Arc::new(PortInfo {
                netdev: netdev.map(str::to_string),
                ..PortInfo::default()
            }),
            state: None,
            phys_state: None,
            rate: None,
            counters: test_counters(pma),
            hw_counters: test_counters(hw),
            unsupported: Vec::new(),
            origin: Default::default(),
        }],
        resources: Vec::new(),
        qp_counters: Vec::new(),
    }
}

/// A cycle over `node` in auto mode with no MAD, attribution or findings.
#[cfg(test)]
pub(crate) fn test_cycle<'a>(node: &'a NodeReading, snapshot: &'a Snapshot) -> Cycle<'a> {
    Cycle {
        node,
        mode: NetworkMode::Auto,
        mad: None,
        attribution: None,
        snapshot,
        findings: &[],
        known: Default::default(),
    }
}

/// One collector over `node` in the plain test cycle: the set it builds.
#[cfg(test)]
pub(crate) fn test_collect(c: &mut dyn Collector, node: &NodeReading) -> crate::metrics::MetricSet {
    let snapshot = test_snapshot(node);
    let cycle = test_cycle(node, &snapshot);
    let mut b = Builder::new();
    c.collect(&cycle, &mut b).unwrap();
    b.finish()
}

/// Exports the catalogued counters of `area` for every port, under their own metric names.
fn export_known(cycle: &Cycle, out: &mut Builder, area: catalog::Area) {
    for port in cycle.ports_known() {
        let mut out = port.prefixed(out);
        let sets = [
            (port.pma, &port.port.counters),
            (port.hw, &port.port.hw_counters),
        ];
        for (entries, counters) in sets {
            for (c, e) in counters.iter().zip(entries) {
                let Some(k) = e.known.filter(|k| k.area == area) else {
                    continue;
                };
                let value = match c.value.checked_mul(k.scale) {
                    Some(v) => Value::U64(v),
                    // Past 2^64 bytes only a float can carry it.
                    None => Value::F64(c.value as f64 * k.scale as f64),
                };
                port.push(&mut out, k.metric, k.help, &c.name, *e, value);
            }
        }
    }
}

#[cfg(test)]
mod known_tests {
    use super::*;

    /// The catalog entries of every counter, as `ports_known` gives them.
    /// With each its rendered tail.
    fn entries(cycle: &Cycle) -> Vec<(String, Option<&'static str>, String)> {
        let mut out = Vec::new();
        for p in cycle.ports_known() {
            let names = p.port.counters.iter().chain(&p.port.hw_counters);
            for (c, e) in names.zip(p.pma.iter().chain(p.hw)) {
                let tail = p.tail(*e).map(|t| t.as_bytes()).unwrap_or_default();
                let tail = String::from_utf8_lossy(tail).into_owned();
                out.push((c.name.to_string(), e.known.map(|k| k.metric), tail));
            }
        }
        out
    }

    /// Each counter's tail is its own labels rendered, however many ports
    /// and counters share a driver's tails: catalogued counters with their
    /// entry's labels, the rest by name.
    #[test]
    fn tails_are_each_counters_labels() {
        let dev = |name| {
            test_device(
                name,
                None,
                &[("port_xmit_data", 1), ("symbol_error", 0)],
                &[
                    ("roce_adp_retrans", 4),
                    ("rx_a_unknown", 1),
                    ("rx_b_unknown", 2),
                    ("tx_bytes", 3),
                ],
            )
        };
        let node = NodeReading {
            devices: vec![dev("mlx5_0"), dev("mlx5_1")],
            ..NodeReading::default()
        };
        let snapshot = test_snapshot(&node);
        let cycle = test_cycle(&node, &snapshot);
        let mut seen = 0;
        for p in cycle.ports_known() {
            let sets = [(p.pma, &p.port.counters), (p.hw, &p.port.hw_counters)];
            for (entries, counters) in sets {
                for (c, e) in counters.iter().zip(entries) {
                    let mut buf = [("", ""); 3];
                    let mut want = Tails::default();
                    let i = want.add(series_labels(e.known, &c.name, &mut buf));
                    let got = p.tail(*e).unwrap().as_bytes();
                    assert_eq!(got, want.get(i).unwrap().as_bytes(), "{}", c.name);
                    let text = |want: &str| {
                        assert_eq!(String::from_utf8_lossy(got), want);
                        1
                    };
                    seen += match &*c.name {
                        "rx_b_unknown" => text(",counter=\"rx_b_unknown\"}"),
                        // A catalog entry with a fixed label and `counter`.
                        "roce_adp_retrans" => {
                            text(",kind=\"adaptive\",counter=\"roce_adp_retrans\"}")
                        }
                        _ => 0,
                    };
                }
            }
        }
        assert_eq!(seen, 4);
        // The second device's six counters share the first's tails.
        let rendered = cycle.known.now.get().unwrap().tails.len();
        assert_eq!(rendered, 6);
    }

    /// Entries kept from the cycle before are those a fresh lookup gives:
    /// the same names again (kept), the same names in other places (a PMA
    /// counter gone from one port makes its stand-in count there), new names.
    #[test]
    fn kept_entries_are_the_fresh_ones() {
        let pma = [("port_xmit_data", 1)];
        let hw = [("tx_bytes", 2)];
        let both = test_device("efa_0", None, &pma, &hw);
        let stand_in = test_device(
            "efa_0",
            None,
            &[],
            &[("port_xmit_data", 1), ("tx_bytes", 2)],
        );
        let mut kept = KnownCounters::default();
        let mut node = NodeReading {
            devices: vec![both],
            ..NodeReading::default()
        };
        let snapshot = test_snapshot(&node);
        for step in 0..5 {
            if step == 2 {
                // The same names in new Arcs, as the MAD merge makes them.
                node.devices = vec![test_device("efa_0", None, &pma, &hw)];
            }
            if step == 3 {
                // The same Arcs, one counter moved from `counters` to `hw_counters`.
                let p = &mut node.devices[0].ports[0];
                let moved = p.counters.remove(0);
                p.hw_counters.insert(0, moved);
            }
            if step == 4 {
                node.devices = vec![stand_in.clone()];
            }
            let fresh = entries(&test_cycle(&node, &snapshot));
            let mut cycle = test_cycle(&node, &snapshot);
            cycle.known = std::mem::take(&mut kept);
            let before = cycle.known.look_ups.get();
            assert_eq!(entries(&cycle), fresh, "step {step}");
            assert!(fresh.iter().all(|(.., tail)| tail.ends_with('}')));
            // Looked up in the first cycle and after the move, kept for the
            // same names in the same places, in the same Arcs or not (step 4
            // is step 3's layout in new Arcs).
            let looked_up = cycle.known.look_ups.get() - before;
            assert_eq!(looked_up, usize::from(matches!(step, 0 | 3)), "step {step}");
            let tails = cycle.known.now.get().unwrap().tails.len();
            assert_eq!(tails, 2, "step {step}: the tails of this cycle only");
            kept = cycle.known.next();
        }
        let tx = |e: &[(String, Option<&'static str>, String)]| {
            e.iter().find(|(n, ..)| n == "tx_bytes").unwrap().1
        };
        assert_eq!(
            tx(&entries(&test_cycle(&node, &snapshot))),
            Some("rdma_port_transmit_bytes_total")
        );
    }
}
