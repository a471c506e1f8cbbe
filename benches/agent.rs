//! `make bench`: render cost of a large scrape and the cost of one collection
//! cycle over the bundled sysfs tree.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma_monitor::agent::Agent;
use rdma_monitor::config::Config;
use rdma_monitor::exporters::Published;
use rdma_monitor::metrics::{Builder, MetricSet};
use rdma_monitor::model::DeviceFilter;
use rdma_monitor::sources::netlink::Replay;
use rdma_monitor::sources::netlink::nldev::poll::NetlinkSource;
use rdma_monitor::sources::netlink::nldev::settings::OptIns;
use rdma_monitor::sources::sysfs::SysfsSource;

fn main() {
    divan::main();
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// 20,000 series shaped like a big node: 16 HCAs × 2 ports × ~625 driver counters.
fn big_set() -> MetricSet {
    let mut b = Builder::new();
    let mut n = 0u64;
    'outer: for dev in 0..16 {
        let device = format!("mlx5_{dev}");
        for port in ["1", "2"] {
            for c in 0..700 {
                let counter = format!("rx_prio{}_counter_{c}", c % 8);
                b.counter(
                    "rdma_port_hw_stat_total",
                    "Driver counter.",
                    &[("device", &device), ("port", port), ("counter", &counter)],
                    n * 7919,
                );
                n += 1;
                if n == 20_000 {
                    break 'outer;
                }
            }
        }
    }
    let set = b.finish();
    assert_eq!(set.len(), 20_000);
    set
}

#[divan::bench]
fn render_20k_series(bencher: divan::Bencher) {
    let set = big_set();
    let mut out = Vec::with_capacity(2 << 20);
    bencher.bench_local(|| {
        out.clear();
        set.render(&mut out);
        divan::black_box(out.len())
    });
}

#[divan::bench]
fn sysfs_poll_fixture(bencher: divan::Bencher) {
    let mut s = SysfsSource::new(
        &fixture(),
        DeviceFilter::default(),
        Duration::from_secs(3600),
    );
    s.poll(Instant::now());
    bencher.bench_local(|| divan::black_box(s.poll(Instant::now())));
}

#[divan::bench]
fn full_cycle_fixture(bencher: divan::Bencher) {
    let mut config = Config::defaults();
    config.general.sysfs_root = fixture();
    let published = Arc::new(Published::new(config.poll_interval()));
    let mut agent = Agent::new(config, published);
    agent.cycle();
    bencher.bench_local(|| divan::black_box(agent.cycle()));
}

/// Decoding one steady netlink cycle of the rxe VM (2 devices) from the
/// recorded replies: the CPU side of a netlink cycle, without the syscalls.
#[divan::bench]
fn netlink_decode_rxe_cycle(bencher: divan::Bencher) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1");
    let f = |n: &str| std::fs::read(dir.join(n)).expect("recorded reply");
    let first = [
        "02-get-dump.bin",
        "01-sys.bin",
        "03-res-dump.bin",
        "04-port-dump-rxe0.bin",
        "06-stat-status-rxe0-1.bin",
        "05-stat-rxe0-1.bin",
        "07-stat-qp-dump-rxe0.bin",
        "08-port-dump-rxe1.bin",
        "10-stat-status-rxe1-1.bin",
        "09-stat-rxe1-1.bin",
        "11-stat-qp-dump-rxe1.bin",
    ];
    let steady = [
        "02-get-dump.bin",
        "03-res-dump.bin",
        "04-port-dump-rxe0.bin",
        "05-stat-rxe0-1.bin",
        "07-stat-qp-dump-rxe0.bin",
        "08-port-dump-rxe1.bin",
        "09-stat-rxe1-1.bin",
        "11-stat-qp-dump-rxe1.bin",
    ];
    let replay = Replay::looping(first.map(f), steady.map(f).to_vec());
    let mut src = NetlinkSource::new(
        replay,
        DeviceFilter::default(),
        OptIns::default(),
        Duration::from_secs(3600),
    );
    let r = src.poll(Instant::now()).expect("first cycle");
    assert_eq!(r.devices.len(), 2);
    bencher.bench_local(|| {
        let r = src.poll(Instant::now()).expect("steady cycle");
        assert!(r.errors.is_empty());
        divan::black_box(r)
    });
}

/// One full cycle over the 16-HCA tree (16 mlx5 RoCE ports, ~60 counters each).
#[divan::bench]
fn full_cycle_16hca(bencher: divan::Bencher) {
    let mut config = Config::defaults();
    config.general.sysfs_root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca");
    let published = Arc::new(Published::new(config.poll_interval()));
    let mut agent = Agent::new(config, published);
    agent.cycle();
    bencher.bench_local(|| divan::black_box(agent.cycle()));
}
