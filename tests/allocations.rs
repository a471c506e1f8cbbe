//! Heap allocations per steady cycle, counted by a global allocator that
//! counts the calling thread's allocations (tests run on parallel threads).
//! The agent runs a cycle a second for months: what the hot path allocates
//! every cycle is paid in allocator time (musl's is slow) and fragmentation.

#[path = "support/rxe_cycle.rs"]
mod rxe_cycle;

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma_monitor::agent::Agent;
use rdma_monitor::analysis::findings::Findings;
use rdma_monitor::config::Config;
use rdma_monitor::exporters::Published;
use rdma_monitor::metrics::Builder;
use rdma_monitor::model::netdev::{
    Dcb, DrvInfo, EthtoolNl, Feature, Link, NetdevReading, NetdevStatic, Pause,
};
use rdma_monitor::model::{Counter, DeviceFilter, NodeReading};
use rdma_monitor::snapshot::{self, DeviceView, Snapshot};
use rdma_monitor::sources::netdev::NetdevSource;
use rdma_monitor::sources::netlink::nldev::poll::NetlinkSource;
use rdma_monitor::sources::netlink::{NlError, NlTransport, TransportStats};
use rdma_monitor::sources::sysfs::{Covered, SysfsSource};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: a thread being torn down still allocates; it is not counted.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed on to System unchanged; only a thread-local
// counter (const-initialised, so it never allocates) is added.
unsafe impl GlobalAlloc for Counting {
    // SAFETY: a trait method; GlobalAlloc's contract, passed on to System.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is System's.
        unsafe { System.alloc(layout) }
    }
    // SAFETY: a trait method; GlobalAlloc's contract, passed on to System.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System with this layout (every alloc goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    // SAFETY: a trait method; GlobalAlloc's contract, passed on to System.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc_zeroed` is System's.
        unsafe { System.alloc_zeroed(layout) }
    }
    // SAFETY: a trait method; GlobalAlloc's contract, passed on to System.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: ptr came from System with this layout; the caller's contract holds.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCS.with(Cell::get);
    let out = f();
    (ALLOCS.with(Cell::get) - before, out)
}

fn tree16() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca")
}

/// The sysfs source of the 16-HCA tree (no rescan within a test).
fn source16() -> SysfsSource {
    SysfsSource::new(
        &tree16(),
        DeviceFilter::default(),
        Duration::from_secs(3600),
    )
}

/// A steady sysfs cycle on the 16-HCA tree (848 attributes, every one held
/// open after the first cycle), read into the reading of the cycle before
/// (the loop hands it back: agent.rs).
#[test]
fn sysfs_poll_allocations() {
    let mut s = source16();
    let mut reading = NodeReading::default();
    s.poll_into(Instant::now(), &Covered::default(), &mut reading);
    s.poll_into(Instant::now(), &Covered::default(), &mut reading);
    let (n, ()) = allocations(|| s.poll_into(Instant::now(), &Covered::default(), &mut reading));
    let ports: usize = reading.devices.iter().map(|d| d.ports.len()).sum();
    eprintln!(
        "sysfs poll, {} devices, {ports} ports: {n} allocations",
        reading.devices.len()
    );
    assert_eq!(ports, 16);
    assert!(reading.errors.is_empty(), "{:?}", reading.errors);
    // Was 233: a Vec per counter list, the state names, the rate's speed,
    // the class listing. Now the class is listed into kept buffers and the
    // reading is written over in place.
    assert_eq!(n, 0, "{n} allocations in a steady sysfs poll");
}

/// The whole cycle (sources, collectors, snapshot, findings, publish) on the
/// 16-HCA tree, sysfs only.
#[test]
fn cycle_allocations() {
    let mut config = Config::defaults();
    config.general.sysfs_root = tree16();
    let published = Arc::new(Published::new(config.poll_interval()));
    let mut agent = Agent::new(config, published.clone());
    agent.cycle();
    agent.cycle();
    let (n, _) = allocations(|| agent.cycle());
    let series = published.metrics.load().len();
    eprintln!("whole cycle, {series} series: {n} allocations");
    // Before the builder kept a family's labels in one string: 3,203 (two per
    // series and the rest); before it reused the storage of the set two
    // cycles back and the collectors looked each counter up once: 1,632.
    // Then 1,057 for 1,183 series; since the sysfs poll writes over the
    // reading of two cycles back (0 of its own), the catalog entries are
    // kept from cycle to cycle and the builder keeps its indexes with the
    // set: 851. Since each counter list of the snapshot is one vector (not
    // a BTreeMap's nodes) and the findings allocate nothing for a port
    // below every threshold (derive_and_findings_allocations): 463.
    assert!(
        n <= 470,
        "{n} allocations a cycle for {series} series (463 expected)"
    );
}

/// A snapshot of these devices and netdevs, as the loop derives it.
fn snapshot_of(devices: Vec<DeviceView>, netdevs: Vec<NetdevReading>) -> Snapshot {
    Snapshot {
        schema_version: snapshot::SCHEMA_VERSION,
        agent: "t",
        version: "t",
        hostname: "h".into(),
        timestamp: String::new(),
        timestamp_unix_ms: 0,
        interval_seconds: Some(1.0),
        sysfs_root: String::new(),
        rdma_class_present: true,
        devices,
        read_errors: Vec::new(),
        mad: None,
        netdevs,
        module_params: Arc::new(Vec::new()),
        consumers: Arc::new(Vec::new()),
        attribution: None,
        events: None,
        sources: Default::default(),
    }
}

/// A ConnectX netdev with the statistics the findings read every cycle
/// (PFC pause durations and drops per priority, FEC), its carrier count,
/// driver, offloads, pause and PFC settings.
fn mlx5_netdev(i: usize, tick: u64) -> NetdevReading {
    let mut stats = Vec::new();
    for p in 0..8 {
        for (name, per_tick) in [
            (format!("rx_prio{p}_pause_duration"), 10),
            (format!("tx_prio{p}_pause_duration"), 10),
            (format!("rx_prio{p}_discards"), 0),
        ] {
            stats.push(Counter {
                name: name.into(),
                value: 1_000 + per_tick * tick,
            });
        }
    }
    stats.push(Counter {
        name: "rx_pcs_symbol_err_phy".into(),
        value: 0,
    });
    stats.sort_by(|a, b| a.name.cmp(&b.name));
    let feature = |name: &str, active: bool| Feature {
        name: name.into(),
        available: true,
        requested: active,
        active,
        fixed: false,
    };
    NetdevReading {
        name: format!("eth{i}"),
        link: Some(Link {
            name: format!("eth{i}"),
            carrier_changes: Some(2),
            ..Link::default()
        }),
        ethtool_stats: stats,
        ethtool_nl: Some(EthtoolNl {
            fec_corrected_bits: Some(5 * tick),
            link_down_events: Some(1),
            ..EthtoolNl::default()
        }),
        info: Arc::new(NetdevStatic {
            drvinfo: Some(DrvInfo {
                driver: "mlx5_core".into(),
                version: "6.1".into(),
                fw_version: "28.39.1002".into(),
                ..DrvInfo::default()
            }),
            features: vec![feature("rx-checksum", true), feature("tso", true)],
            pause: Some(Pause {
                autoneg: false,
                rx: true,
                tx: true,
            }),
            dcb: Some(Dcb {
                pfc_enabled: Some(0x08),
                ..Dcb::default()
            }),
            ..NetdevStatic::default()
        }),
        errors: Vec::new(),
    }
}

/// The derived state and the findings of a steady cycle on the 16-HCA tree
/// (16 netdevs beside it): a counter list is one vector, and a port or
/// netdev below every threshold costs the findings engine nothing.
#[test]
fn derive_and_findings_allocations() {
    let mut s = source16();
    let mut before = NodeReading::default();
    let mut now = NodeReading::default();
    s.poll_into(Instant::now(), &Covered::default(), &mut before);
    s.poll_into(Instant::now(), &Covered::default(), &mut now);
    let config = Config::defaults();
    let mut engine = Findings::new(config.analysis.clone());
    engine.set_health(config.health.clone());
    let mut counts = Vec::new();
    for tick in 0..3u64 {
        let (derived, devices) =
            allocations(|| snapshot::devices(&now, Some(&before), 1.0, config.network.mode));
        let netdevs = (0..16).map(|i| mlx5_netdev(i, tick)).collect();
        let snap = snapshot_of(devices, netdevs);
        let (evaluated, (findings, _)) = allocations(|| engine.evaluate(&snap, 1_000 * (tick + 1)));
        assert!(findings.is_empty(), "{findings:#?}");
        let (dropped, ()) = allocations(|| drop(snap));
        assert_eq!(dropped, 0);
        counts.push((derived, evaluated));
    }
    eprintln!("derive, findings allocations per cycle: {counts:?}");
    let (derived, evaluated) = counts[2];
    // Was 209 while each counter list was a BTreeMap (its nodes); now per
    // device the port list, its two counter lists and the list of
    // unsupported attributes, and the device list: 16 × 6 + 1.
    assert!(derived <= 97, "{derived} allocations deriving 16 devices");
    // Was 1,352: 92 without the netdevs (a name per port, four strings per
    // device fingerprint, the groups and medians of the peer comparison),
    // the rest a copy of the netdev's name per statistic read. Now the
    // peer list alone.
    assert!(
        evaluated <= 1,
        "{evaluated} allocations evaluating the findings"
    );
}

/// Building a family of many series.
#[test]
fn builder_allocations() {
    let labels: Vec<String> = (0..2000).map(|i| format!("c{i}")).collect();
    let (n, set) = allocations(|| {
        let mut b = Builder::new();
        for (i, l) in labels.iter().enumerate() {
            b.counter(
                "rdma_x_total",
                "X.",
                &[("device", "mlx5_0"), ("counter", l)],
                i as u64,
            );
        }
        b.finish()
    });
    eprintln!("2000 series in one family: {n} allocations");
    assert_eq!(set.len(), 2000);
    // One per series (the labels) was 4,013: two per series.
    assert!(n < 64, "{n} allocations for one family of 2000 series");
}

/// Replays recorded NLDEV replies without allocating (the `Replay` of the
/// unit tests copies each reply): what is counted is the poll's own.
struct Looped {
    first: std::collections::VecDeque<Vec<u8>>,
    steady: Vec<Vec<u8>>,
    next: usize,
}

impl NlTransport for Looped {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        match self.first.pop_front() {
            Some(r) => out.extend_from_slice(&r),
            None => {
                out.extend_from_slice(&self.steady[self.next]);
                self.next = (self.next + 1) % self.steady.len();
            }
        }
        // The recording's seqs become this request's, as the kernel's would be.
        let seq: [u8; 4] = request[8..12].try_into().expect("a request header");
        let mut at = 0;
        while at + 16 <= out.len() {
            let len = u32::from_ne_bytes(out[at..at + 4].try_into().expect("4 bytes")) as usize;
            out[at + 8..at + 12].copy_from_slice(&seq);
            at += (len.max(16) + 3) & !3;
        }
        Ok(())
    }
    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }
}

/// A steady RDMA netlink cycle of the rxe VM (2 devices, recorded replies).
#[test]
fn netlink_poll_allocations() {
    let (first, steady) = rxe_cycle::rxe_cycle_replies();
    let transport = Looped {
        first: first.into(),
        steady,
        next: 0,
    };
    let mut src = NetlinkSource::new(
        transport,
        DeviceFilter::default(),
        Duration::from_secs(3600),
    );
    src.poll(Instant::now()).expect("first cycle");
    src.poll(Instant::now()).expect("second cycle");
    let (n, reading) = allocations(|| src.poll(Instant::now()));
    let reading = reading.expect("steady cycle");
    assert!(reading.errors.is_empty(), "{:?}", reading.errors);
    let ports: usize = reading.devices.iter().map(|d| d.ports.len()).sum();
    eprintln!(
        "netlink poll, {} devices, {ports} ports: {n} allocations",
        reading.devices.len()
    );
    assert_eq!(ports, 2);
    assert!(n <= 60, "{n} allocations for {ports} ports");
}

/// A steady netdev cycle allocates for the watched netdevs only, not for
/// every link of the node: the link dump is walked, and only the watched
/// links decoded (a decoded link is a name and a list of 25 counters: under
/// musl, lists of a few KiB are mapped and unmapped each cycle). In a
/// network namespace of this test's thread: its own links, root needed.
#[test]
fn netdev_poll_allocates_for_watched_links_only() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return common::skip("netdev allocations", "not root");
    }
    // SAFETY: unshare takes no pointers; CLONE_NEWNET moves this thread only
    // (the test's own) into a new network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let why = std::io::Error::last_os_error();
        return common::skip(
            "netdev allocations",
            &format!("unshare(CLONE_NEWNET): {why}"),
        );
    }
    let ip = |args: &str| {
        // The child is forked from this thread: it runs in its namespace.
        let ok = std::process::Command::new("ip")
            .args(args.split(' '))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {args}");
    };
    ip("link set lo up");
    let root = tempfile::tempdir().unwrap();
    let mut src = NetdevSource::open(root.path(), Duration::from_secs(3600));
    let names = ["lo".to_string()];
    // As the agent's cycle: the carrier list is handed back once read.
    let mut cycle = || {
        let carriers = src.dump_links();
        let r = src.poll(&names, Instant::now());
        src.keep_carriers(carriers);
        r
    };
    cycle();
    cycle();
    let (alone, r) = allocations(&mut cycle);
    assert!(r[0].link.is_some(), "lo read: {:?}", r[0].errors);
    for i in 0..4 {
        ip(&format!(
            "link add rdmamon-v{i} type veth peer name rdmamon-p{i}"
        ));
    }
    cycle();
    let (among, r) = allocations(&mut cycle);
    assert!(r[0].link.is_some());
    eprintln!(
        "netdev cycle of lo: {alone} allocations alone, {among} beside 8 more links (4 veth pairs)"
    );
    assert_eq!(among, alone, "allocations for links nobody watches");
}

/// The link dump's carrier list, handed back after each cycle, is refilled
/// in place (veth links: their carrier count tells their fixed speed), and
/// a RoCE port's carrier is noted on its covered entry without a copy of
/// the device's name: nothing of it allocates in a steady cycle.
#[test]
fn the_carriers_of_a_cycle_allocate_nothing() {
    let mut covered = rdma_monitor::sources::sysfs::Covered::default();
    let names: Vec<String> = (0..16).map(|i| format!("rxe{i}")).collect();
    for n in &names {
        covered.insert(n, 1, 4);
    }
    let (n, _) = allocations(|| {
        for (i, name) in names.iter().enumerate() {
            covered.set_carrier(name, 1, (i as u32, 2));
        }
    });
    assert_eq!(n, 0, "allocations to note 16 ports' carriers");
}

/// A decoded link (rtnetlink, recorded in the rxe VM) is one allocation,
/// its name: its IFLA_STATS64 counters are held in place, not in a list of
/// their own per netdev a cycle.
#[test]
fn a_decoded_link_allocates_its_name_only() {
    let dump = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/netlink/rxe-6.1-net/01-getlink-dump.bin"),
    )
    .unwrap();
    let payloads: Vec<&[u8]> = rdma_monitor::sources::netlink::wire::messages(&dump)
        .map(|m| m.unwrap())
        .filter(|m| u32::from(m.kind) == rdma_monitor::sys::RTM_NEWLINK)
        .map(|m| m.payload)
        .collect();
    let (n, links) = allocations(|| {
        payloads
            .iter()
            .map(|p| rdma_monitor::sources::netlink::rtnetlink::decode_link(p).unwrap())
            .fold(0, |seen, l| seen + usize::from(l.stats64.len() == 25))
    });
    assert_eq!(links, payloads.len(), "every link with its 25 counters");
    assert_eq!(n as usize, payloads.len(), "allocations for {links} links");
}
