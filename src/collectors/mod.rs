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
use crate::metrics::Builder;
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
/// made five to six times a cycle.
///
/// Kept from cycle to cycle ([`KnownCounters::next`]): a source hands out
/// the same `Arc` for a counter name every cycle, so while every port's
/// names are the same pointers in the same places, last cycle's entries
/// stand and nothing is looked up.
#[derive(Default)]
pub struct KnownCounters {
    now: std::cell::OnceCell<Vec<Option<&'static catalog::Known>>>,
    /// The names `kept` was looked up for, port after port, and each port's
    /// (`counters`, `hw_counters`) lengths.
    names: std::cell::RefCell<Vec<std::sync::Arc<str>>>,
    shape: std::cell::RefCell<Vec<(usize, usize)>>,
    kept: std::cell::RefCell<Vec<Option<&'static catalog::Known>>>,
}

impl KnownCounters {
    /// What the next cycle starts from: this cycle's entries and names.
    pub fn next(self) -> KnownCounters {
        let KnownCounters {
            now,
            names,
            shape,
            kept,
        } = self;
        if let Some(v) = now.into_inner() {
            *kept.borrow_mut() = v;
        }
        KnownCounters {
            now: Default::default(),
            names,
            shape,
            kept,
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
    #[allow(clippy::type_complexity)]
    pub fn ports_known(
        &self,
    ) -> impl Iterator<
        Item = (
            &DeviceReading,
            &PortReading,
            &[Option<&'static catalog::Known>],
            &[Option<&'static catalog::Known>],
        ),
    > {
        let known = self.known.now.get_or_init(|| {
            use catalog::{Source, known_on_port};
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
                && kept.len() == names.len()
                && names.len() == counters().count()
                && counters()
                    .zip(names.iter())
                    .all(|(c, n)| std::sync::Arc::ptr_eq(&c.name, n));
            if same {
                return std::mem::take(&mut *kept);
            }
            names.clear();
            names.extend(counters().map(|c| c.name.clone()));
            shape.clear();
            shape.extend(
                self.ports()
                    .map(|(_, p)| (p.counters.len(), p.hw_counters.len())),
            );
            let mut v = Vec::with_capacity(names.len());
            for (_, p) in self.ports() {
                for (source, set) in [(Source::Pma, &p.counters), (Source::Hw, &p.hw_counters)] {
                    v.extend(
                        set.iter()
                            .map(|c| known_on_port(source, &c.name, &p.counters)),
                    );
                }
            }
            v
        });
        let mut at = 0;
        self.ports().map(move |(d, p)| {
            let (pma, rest) = known[at..].split_at(p.counters.len());
            let hw = &rest[..p.hw_counters.len()];
            at += p.counters.len() + p.hw_counters.len();
            (d, p, pma, hw)
        })
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
    for (dev, port, pma, hw) in cycle.ports_known() {
        let mut port_label = itoa::Buffer::new();
        // device and port: rendered once for all of the port's series.
        let mut out = out.prefixed(&[
            ("device", &*dev.info.name),
            ("port", port_label.format(port.port)),
        ]);
        let sets = [(pma, &port.counters), (hw, &port.hw_counters)];
        for (known, counters) in sets {
            for (c, k) in counters.iter().zip(known) {
                let Some(k) = k.filter(|k| k.area == area) else {
                    continue;
                };
                // At most two fixed labels and counter: on the stack.
                let mut buf = [("", ""); 3];
                let mut n = 0;
                for l in k.labels.iter().take(2) {
                    buf[n] = *l;
                    n += 1;
                }
                if k.counter_label {
                    buf[n] = ("counter", &c.name);
                    n += 1;
                }
                let labels = &buf[..n];
                match c.value.checked_mul(k.scale) {
                    Some(v) => out.counter(k.metric, k.help, labels, v),
                    // Past 2^64 bytes only a float can carry it.
                    None => out.push(
                        k.metric,
                        k.help,
                        crate::metrics::Kind::Counter,
                        labels,
                        crate::metrics::Value::F64(c.value as f64 * k.scale as f64),
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod known_tests {
    use super::*;

    /// The catalog entries of every counter, as `ports_known` gives them.
    fn entries(cycle: &Cycle) -> Vec<(String, Option<&'static str>)> {
        let mut out = Vec::new();
        for (_, p, pma, hw) in cycle.ports_known() {
            let names = p.counters.iter().chain(&p.hw_counters);
            for (c, k) in names.zip(pma.iter().chain(hw)) {
                out.push((c.name.to_string(), k.map(|k| k.metric)));
            }
        }
        out
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
        for step in 0..4 {
            if step == 2 {
                // The same Arcs, one counter moved from `counters` to `hw_counters`.
                let p = &mut node.devices[0].ports[0];
                let moved = p.counters.remove(0);
                p.hw_counters.insert(0, moved);
            }
            if step == 3 {
                node.devices = vec![stand_in.clone()];
            }
            let fresh = entries(&test_cycle(&node, &snapshot));
            let mut cycle = test_cycle(&node, &snapshot);
            cycle.known = std::mem::take(&mut kept);
            assert_eq!(entries(&cycle), fresh, "step {step}");
            kept = cycle.known.next();
        }
        let tx = |e: &[(String, Option<&'static str>)]| {
            e.iter().find(|(n, _)| n == "tx_bytes").unwrap().1
        };
        assert_eq!(
            tx(&entries(&test_cycle(&node, &snapshot))),
            Some("rdma_port_transmit_bytes_total")
        );
    }
}
