//! The JSON snapshot: everything one cycle read, with deltas and per-second
//! rates against the cycle before. Counters keep the value the kernel shows
//! (what `cat` and `rdma statistic` print); a counter that went down (reset)
//! or sits at its saturation value gets a flag instead of a delta or rate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::catalog;
use crate::config::NetworkMode;
use crate::detect::{self, Transport};
use crate::model::{
    Counter, DeviceInfo, DeviceReading, Enumerated, NodeReading, PortInfo, PortReading, Rate,
    ReadError,
};
use crate::model::{PortOrigin, QpCounter, Saturation};
use crate::sources::netlink::TransportStats;
use crate::sources::sysfs::SourceStats;

mod names;
pub use names::{NameMap, Positions};

/// Bumped when a field changes meaning or goes away; adding fields keeps it.
/// 2 (2026-11-30): `mad.fabric` and `mad.fabric_counters` moved to the
/// sweep's detail file, `mad.fabric_summary` names it.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Lower than last cycle: the device was reset or the counter cleared.
    Reset,
    /// At the value where the counter stops counting.
    Saturated,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterView {
    pub value: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<u64>,
    /// Per second, over the time between the two cycles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<Flag>,
}

/// Compares a counter with its previous reading.
pub fn change(prev: Option<u64>, now: u64, elapsed_secs: f64, saturates_at: &[u64]) -> CounterView {
    let mut v = CounterView {
        value: now,
        delta: None,
        rate: None,
        flag: None,
    };
    if saturates_at.contains(&now) {
        v.flag = Some(Flag::Saturated);
        return v;
    }
    let Some(prev) = prev else { return v };
    if now < prev {
        v.flag = Some(Flag::Reset);
        return v;
    }
    let delta = now - prev;
    v.delta = Some(delta);
    if elapsed_secs > 0.0 {
        v.rate = Some(delta as f64 / elapsed_secs);
    }
    v
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub transmit_bytes_per_second: Option<f64>,
    pub receive_bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    pub port: u32,
    pub transport: Transport,
    pub state: Option<Enumerated>,
    pub phys_state: Option<Enumerated>,
    pub rate: Option<Rate>,
    #[serde(flatten)]
    pub info: Arc<PortInfo>,
    /// From `port_xmit_data`/`port_rcv_data` (4-byte words) × 4.
    pub throughput: Option<Throughput>,
    /// Where the state and the hw counters were read this cycle.
    pub origin: PortOrigin,
    pub counters: NameMap<CounterView>,
    pub hw_counters: NameMap<CounterView>,
    /// Attribute files of this port the kernel does not provide here (left out, not zero).
    pub unsupported: Vec<Arc<str>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    #[serde(flatten)]
    pub info: Arc<DeviceInfo>,
    pub hw_counters: NameMap<CounterView>,
    pub ports: Vec<PortView>,
    /// Current resource counts (RDMA netlink RES_GET); empty without netlink.
    pub resources: BTreeMap<Arc<str>, u64>,
    /// Counters bound to QPs (`rdma statistic qp`), as the kernel reports them.
    pub qp_counters: Vec<QpCounter>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectorStatus {
    pub name: &'static str,
    pub success: bool,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub schema_version: u32,
    pub agent: &'static str,
    pub version: &'static str,
    pub hostname: String,
    pub timestamp: String,
    pub timestamp_unix_ms: u64,
    /// Seconds since the previous cycle; absent on the first.
    pub interval_seconds: Option<f64>,
    pub sysfs_root: String,
    pub rdma_class_present: bool,
    pub devices: Vec<DeviceView>,
    pub read_errors: Vec<ReadError>,
    /// Local IB ports and the fabric as MADs saw them (absent without umad).
    pub mad: Option<Arc<crate::mad_worker::MadView>>,
    /// The Ethernet side: link counters, ethtool statistics, offloads, PFC, ECN, transceivers.
    pub netdevs: Vec<crate::model::netdev::NetdevReading>,
    /// RDMA kernel module parameters.
    pub module_params: Arc<Vec<crate::model::Param>>,
    /// Who uses the fabric: consumers by QPs, largest first (empty when
    /// attribution is off or has not run).
    pub consumers: Arc<Vec<crate::model::consumers::Consumer>>,
    /// How the dumps behind `consumers` went, and when they were taken.
    pub attribution: Option<crate::model::consumers::AttributionStatus>,
    /// Link, RDMA monitor and kernel log listeners and this cycle's events
    /// (absent when not listening: analysis::events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<crate::model::events::EventsStatus>,
    pub sources: Sources,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    pub sysfs: SourceStats,
    /// Absent when RDMA netlink is off or unavailable.
    pub rdma_netlink: Option<TransportStats>,
    /// Why RDMA netlink could not be used, when it could not.
    pub rdma_netlink_unavailable: Option<String>,
    pub last_cycle: CycleCost,
}

/// What reading the sources cost in the last cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CycleCost {
    pub sysfs_syscalls: u64,
    pub sysfs_file_reads: u64,
    pub rdma_netlink_syscalls: u64,
    pub rdma_netlink_round_trips: u64,
    /// The netdev side: ethtool ioctls and rtnetlink dumps (2+ syscalls each).
    pub ethtool_ioctls: u64,
    pub rtnetlink_round_trips: u64,
    pub netdevs: u64,
}

/// The published document of one cycle: the derived state, then what the
/// loop made of it (each collector's run, the findings), and its JSON,
/// serialised at most once. The findings are returned by the engine and
/// kept here, beside the snapshot they were computed from, never written
/// back into it.
#[derive(Debug, Serialize)]
pub struct SnapshotDoc {
    #[serde(flatten)]
    pub snapshot: Snapshot,
    pub collectors: Vec<CollectorStatus>,
    /// Active findings, most severe first (see analysis::findings).
    pub findings: Vec<crate::model::finding::Finding>,
    #[serde(skip)]
    json: OnceLock<Vec<u8>>,
}

impl SnapshotDoc {
    pub fn new(
        snapshot: Snapshot,
        collectors: Vec<CollectorStatus>,
        findings: Vec<crate::model::finding::Finding>,
    ) -> SnapshotDoc {
        SnapshotDoc {
            snapshot,
            collectors,
            findings,
            json: OnceLock::new(),
        }
    }

    pub fn json(&self) -> &[u8] {
        // Sized from the last document (they differ by a few values): grown
        // by doubling from nothing, a 1 MiB document (64 HCAs) left a chain
        // of freed 128 and 256 KiB blocks behind in the allocator each time.
        static LAST_LEN: AtomicUsize = AtomicUsize::new(0);
        self.json.get_or_init(|| {
            let last = LAST_LEN.load(Relaxed);
            let mut v = Vec::with_capacity(last + last / 16);
            if let Err(e) = serde_json::to_writer_pretty(&mut v, self) {
                v = format!("{{\"error\":\"{e}\"}}").into_bytes();
            }
            v.push(b'\n');
            LAST_LEN.store(v.len(), Relaxed);
            v
        })
    }
}

/// Counter views of one list against the previous cycle's list (both sorted by name).
/// `saturation`: the catalog's widths (a value no catalog width has is
/// never looked up).
fn views(
    now: &[Counter],
    prev: Option<&[Counter]>,
    elapsed: f64,
    saturation: Saturation,
) -> NameMap<CounterView> {
    let prev = prev.unwrap_or(&[]);
    let mut j = 0;
    now.iter()
        .map(|c| {
            // Both lists come sorted by file name; walk them together. A
            // source hands out the same name each cycle: the pointer
            // settles most steps without comparing the text.
            let same = |p: &Counter| Arc::ptr_eq(&p.name, &c.name) || p.name == c.name;
            while j < prev.len() && !same(&prev[j]) && *prev[j].name < *c.name {
                j += 1;
            }
            // After a match the walk goes on past it: the next name's match
            // is further on (without the step, every counter's walk began
            // with a text comparison against the counter before it). A name
            // listed twice (netlink lists are not deduplicated) finds its
            // match one back.
            let at = prev.get(j).filter(|p| same(p));
            j += usize::from(at.is_some());
            let before = at
                .or_else(|| prev.get(j.checked_sub(1)?).filter(|p| same(p)))
                .map(|p| p.value);
            // Only a value some counter saturates at needs the name looked up.
            let saturates_at = if saturation_values().contains(&c.value) {
                saturation(&c.name)
            } else {
                &[]
            };
            (
                c.name.clone(),
                change(before, c.value, elapsed, saturates_at),
            )
        })
        .collect()
}

fn port_view(
    dev: &DeviceReading,
    port: &PortReading,
    prev: Option<&PortReading>,
    elapsed: f64,
    mode: NetworkMode,
) -> PortView {
    let counters = views(
        &port.counters,
        prev.map(|p| &p.counters[..]),
        elapsed,
        pma_width,
    );
    let hw_counters = views(
        &port.hw_counters,
        prev.map(|p| &p.hw_counters[..]),
        elapsed,
        hw_width,
    );
    let bytes_rate = |name: &str| counters.get(name).and_then(|c| c.rate).map(|r| r * 4.0);
    let throughput = (counters.contains_key("port_xmit_data")
        || counters.contains_key("port_rcv_data"))
    .then(|| Throughput {
        transmit_bytes_per_second: bytes_rate("port_xmit_data"),
        receive_bytes_per_second: bytes_rate("port_rcv_data"),
    });
    PortView {
        port: port.port,
        transport: detect::transport(&dev.info, &port.info, mode),
        state: port.state.clone(),
        phys_state: port.phys_state.clone(),
        rate: port.rate.clone(),
        info: port.info.clone(),
        throughput,
        origin: port.origin,
        counters,
        hw_counters,
        unsupported: port.unsupported.clone(),
    }
}

/// Where a PMA (`counters/`) counter saturates, by name.
/// Every value at which some counter of the catalog saturates (a handful:
/// 2^n - 1 for the IBTA field widths): a value that is none of them needs
/// no lookup of its counter's widths.
fn saturation_values() -> &'static [u64] {
    static VALUES: OnceLock<Vec<u64>> = OnceLock::new();
    VALUES.get_or_init(|| {
        let mut v: Vec<u64> = catalog::all()
            .flat_map(|k| k.saturates_at)
            .chain(catalog::UNKNOWN_SATURATION)
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

fn pma_width(name: &str) -> &'static [u64] {
    catalog::saturation(catalog::Source::Pma, name)
}

/// Where a driver (`hw_counters/`) counter saturates, by name.
fn hw_width(name: &str) -> &'static [u64] {
    catalog::saturation(catalog::Source::Hw, name)
}

/// Devices with rates against `prev` (the previous cycle's reading, `elapsed` seconds ago).
pub fn devices(
    now: &NodeReading,
    prev: Option<&NodeReading>,
    elapsed: f64,
    mode: NetworkMode,
) -> Vec<DeviceView> {
    now.devices
        .iter()
        .map(|dev| {
            let prev_dev =
                prev.and_then(|p| p.devices.iter().find(|d| d.info.name == dev.info.name));
            DeviceView {
                info: dev.info.clone(),
                hw_counters: views(
                    &dev.hw_counters,
                    prev_dev.map(|d| &d.hw_counters[..]),
                    elapsed,
                    hw_width,
                ),
                ports: dev
                    .ports
                    .iter()
                    .map(|p| {
                        let prev_port =
                            prev_dev.and_then(|d| d.ports.iter().find(|q| q.port == p.port));
                        port_view(dev, p, prev_port, elapsed, mode)
                    })
                    .collect(),
                resources: dev
                    .resources
                    .iter()
                    .map(|c| (c.name.clone(), c.value))
                    .collect(),
                qp_counters: dev.qp_counters.clone(),
            }
        })
        .collect()
}

impl Snapshot {
    /// A snapshot of these devices and nothing else, for rule tests and
    /// benches (the agent's own come from [`crate::agent`]): placeholder
    /// identity (agent "t", host "h").
    #[doc(hidden)]
    pub fn of_devices(devices: Vec<DeviceView>, interval_seconds: Option<f64>) -> Snapshot {
        Snapshot {
            schema_version: SCHEMA_VERSION,
            agent: "t",
            version: "t",
            hostname: "h".into(),
            timestamp: String::new(),
            timestamp_unix_ms: 0,
            interval_seconds,
            sysfs_root: String::new(),
            rdma_class_present: true,
            devices,
            read_errors: Vec::new(),
            mad: None,
            netdevs: Vec::new(),
            module_params: Arc::new(Vec::new()),
            events: None,
            consumers: Arc::new(Vec::new()),
            attribution: None,
            sources: Sources {
                sysfs: SourceStats::default(),
                rdma_netlink: None,
                rdma_netlink_unavailable: None,
                last_cycle: Default::default(),
            },
        }
    }
}

impl Snapshot {
    /// Every counter view with where it is, for self-metrics.
    pub fn flagged(&self) -> impl Iterator<Item = (&DeviceView, Option<u32>, &str, Flag)> {
        self.devices.iter().flat_map(|d| {
            let dev_level = d
                .hw_counters
                .iter()
                .filter_map(move |(n, v)| v.flag.map(|f| (d, None, &**n, f)));
            let ports = d.ports.iter().flat_map(move |p| {
                p.counters
                    .iter()
                    .chain(p.hw_counters.iter())
                    .filter_map(move |(n, v)| v.flag.map(|f| (d, Some(p.port), &**n, f)))
            });
            dev_level.chain(ports)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{self, Source};

    #[test]
    fn rate_and_delta() {
        let v = change(Some(100), 350, 10.0, &[u64::MAX]);
        assert_eq!(v.delta, Some(250));
        assert_eq!(v.rate, Some(25.0));
        assert_eq!(v.flag, None);
        let first = change(None, 350, 0.0, &[u64::MAX]);
        assert_eq!((first.delta, first.rate, first.flag), (None, None, None));
    }

    #[test]
    fn reset_is_flagged_not_negative() {
        let v = change(Some(1_000), 10, 10.0, &[u64::MAX]);
        assert_eq!(v.flag, Some(Flag::Reset));
        assert_eq!((v.delta, v.rate), (None, None));
        assert_eq!(v.value, 10);
    }

    #[test]
    fn saturation_is_flagged_not_huge() {
        let v = change(Some(65_000), 65_535, 10.0, &[0xffff]);
        assert_eq!(v.flag, Some(Flag::Saturated));
        assert_eq!((v.delta, v.rate), (None, None));
        let v = change(Some(0), u64::MAX, 10.0, catalog::UNKNOWN_SATURATION);
        assert_eq!(v.flag, Some(Flag::Saturated));
        // Same value on a wider counter is just a value.
        let v = change(Some(65_000), 65_535, 10.0, &[u64::MAX]);
        assert_eq!(v.flag, None);
        assert_eq!(v.delta, Some(535));
    }

    #[test]
    fn sequence_over_a_reset() {
        // 100 → 200 → 50 (reset) → 80: rates 10, none, 3.
        let mut prev = None;
        let mut out = Vec::new();
        for now in [100u64, 200, 50, 80] {
            out.push(change(prev, now, 10.0, &[u64::MAX]));
            prev = Some(now);
        }
        let rates: Vec<_> = out.iter().map(|v| v.rate).collect();
        assert_eq!(rates, vec![None, Some(10.0), None, Some(3.0)]);
        assert_eq!(out[2].flag, Some(Flag::Reset));
    }

    #[test]
    fn views_flag_the_catalog_widths() {
        let c = |n: &str, v: u64| Counter {
            name: n.into(),
            value: v,
        };
        let now = [
            c("port_xmit_data", 65_535),
            c("symbol_error", 65_535),
            c("some_driver_counter", 0xffff_ffff),
            c("link_downed", 254),
        ];
        let v = views(&now, None, 1.0, pma_width);
        assert_eq!(v["symbol_error"].flag, Some(Flag::Saturated));
        assert_eq!(v["port_xmit_data"].flag, None);
        assert_eq!(v["some_driver_counter"].flag, Some(Flag::Saturated));
        assert_eq!(v["link_downed"].flag, None);
    }

    #[test]
    fn views_match_by_name_across_missing_entries() {
        let c = |n: &str, v: u64| Counter {
            name: n.into(),
            value: v,
        };
        let prev = [c("a", 1), c("b", 2), c("d", 4)];
        let now = [c("a", 11), c("c", 30), c("d", 44)];
        let v = views(&now, Some(&prev), 1.0, |n| {
            catalog::saturation(Source::Hw, n)
        });
        assert_eq!(v["a"].delta, Some(10));
        assert_eq!(v["c"].delta, None);
        assert_eq!(v["d"].delta, Some(40));
    }

    /// A name listed twice in one cycle (each copy) is matched as before the
    /// walk stepped past matches: the map keeps the last copy, with its delta.
    #[test]
    fn views_match_a_name_listed_twice() {
        let c = |n: &str, v: u64| Counter {
            name: n.into(),
            value: v,
        };
        let prev = [c("a", 1), c("b", 2)];
        let now = [c("a", 5), c("a", 7), c("b", 3)];
        let v = views(&now, Some(&prev), 1.0, pma_width);
        assert_eq!(v["a"].delta, Some(6));
        assert_eq!(v["b"].delta, Some(1));
    }
}
