//! `make bench`: building and rendering a large scrape, the cost of one collection
//! cycle over the bundled sysfs tree, and the findings engine over many findings.

#[path = "../tests/support/rxe_cycle.rs"]
mod rxe_cycle;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma_monitor::agent::Agent;
use rdma_monitor::analysis::findings::Findings;
use rdma_monitor::config::{Config, NetworkMode};
use rdma_monitor::exporters::Published;
use rdma_monitor::metrics::Registry;
use rdma_monitor::model::{
    DeviceFilter, DeviceInfo, DeviceReading, Enumerated, NodeReading, PortInfo, PortReading,
};
use rdma_monitor::snapshot::{self, Snapshot};
use rdma_monitor::sources::netlink::Replay;
use rdma_monitor::sources::netlink::nldev::poll::NetlinkSource;
use rdma_monitor::sources::sysfs::SysfsSource;

fn main() {
    divan::main();
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// The labels of 20,000 series shaped like a big node: 16 HCAs × 2 ports ×
/// ~625 driver counters.
fn big_labels() -> Vec<(String, &'static str, String)> {
    let mut labels = Vec::new();
    'outer: for dev in 0..16 {
        for port in ["1", "2"] {
            for c in 0..700 {
                labels.push((
                    format!("mlx5_{dev}"),
                    port,
                    format!("rx_prio{}_counter_{c}", c % 8),
                ));
                if labels.len() == 20_000 {
                    break 'outer;
                }
            }
        }
    }
    labels
}

/// A cycle's metrics as the loop builds them (the builder reuses the set
/// the last publish replaced) and their text joined into one buffer: the
/// text is written as the set is built, so rendering alone would leave most
/// of the work out.
#[divan::bench]
fn build_and_render_20k_series(bencher: divan::Bencher) {
    let labels = big_labels();
    let registry = Registry::default();
    let mut out = Vec::with_capacity(2 << 20);
    bencher.bench_local(|| {
        let mut b = registry.builder();
        for (n, (device, port, counter)) in labels.iter().enumerate() {
            b.counter(
                "rdma_port_hw_stat_total",
                "Driver counter.",
                &[("device", device), ("port", port), ("counter", counter)],
                n as u64 * 7919,
            );
        }
        let set = b.finish();
        out.clear();
        set.render(&mut out);
        registry.publish(set);
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
    let (first, steady) = rxe_cycle::rxe_cycle_replies();
    let replay = Replay::looping(first, steady);
    let mut src = NetlinkSource::new(replay, DeviceFilter::default(), Duration::from_secs(3600));
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

/// The findings engine in steady state over `n` ports that are down, a
/// finding each: a fabric can raise thousands, and each finding used to be
/// looked for among all the others (the cost grew with the square of `n`).
#[divan::bench(args = [100, 1000, 4000])]
fn findings_ports_down(bencher: divan::Bencher, n: usize) {
    let mut node = NodeReading::default();
    for i in 0..n {
        let mut port = PortReading::new(1, Arc::new(PortInfo::default()));
        port.state = Some(Enumerated {
            value: 1,
            name: "DOWN".into(),
        });
        node.devices.push(DeviceReading {
            info: Arc::new(DeviceInfo {
                name: format!("mlx5_{i}").into(),
                ..DeviceInfo::default()
            }),
            hw_counters: Vec::new(),
            ports: vec![port],
            resources: Vec::new(),
            qp_counters: Vec::new(),
        });
    }
    let views = snapshot::devices(&node, None, 1.0, NetworkMode::Auto);
    let snap = Snapshot::of_devices(views, Some(1.0));
    let mut findings = Findings::new(Config::defaults().analysis);
    let mut now_ms = 1_000;
    assert_eq!(findings.evaluate(&snap, now_ms).0.len(), n);
    bencher.bench_local(|| {
        now_ms += 1_000;
        divan::black_box(findings.evaluate(&snap, now_ms))
    });
}

/// A netlink attribute (header, payload, padding to 4).
fn nla(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(&(kind as u16).to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// A dump reply of `entries` in messages of 100 (a netlink attribute holds
/// at most 64 KiB, so the kernel splits large tables across messages too), then NLMSG_DONE.
fn dump_reply(cmd: u32, table: u32, entry: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    use rdma_monitor::sys::*;
    let mut out = Vec::new();
    let mut msg = |kind: u16, flags: u16, payload: &[u8]| {
        out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(payload);
    };
    for chunk in entries.chunks(100) {
        let mut p = nla(RDMA_NLDEV_ATTR_DEV_INDEX, &0u32.to_ne_bytes());
        p.extend(nla(RDMA_NLDEV_ATTR_DEV_NAME, b"mlx5_0\0"));
        let t: Vec<u8> = chunk.iter().flat_map(|e| nla(entry, e)).collect();
        p.extend(nla(table, &t));
        msg(
            rdma_monitor::sources::netlink::nldev::nldev_type(cmd),
            NLM_F_MULTI as u16,
            &p,
        );
    }
    msg(NLMSG_DONE as u16, NLM_F_MULTI as u16, &0u32.to_ne_bytes());
    out
}

/// Attribution on a node with 10,000 QPs and 2,000 MRs held by 500 processes
/// in 50 Slurm jobs: decoding the dumps (QPs laid out as the rxe VM recorded
/// them: fixtures/netlink/rxe-6.1-res), one `stat` read per PID (the cgroup
/// answer is cached while the start time holds), grouping. The syscalls of the
/// dumps themselves are not in it.
#[divan::bench(sample_count = 20)]
fn attribution_10k_qps(bencher: divan::Bencher) {
    use rdma_monitor::sources::attribution::AttributionSource;
    use rdma_monitor::sources::netlink::nldev::Client;
    use rdma_monitor::sources::netlink::nldev::Device;
    use rdma_monitor::sources::netlink::nldev::poll::{
        NetlinkReading, NldevDeviceReading as DeviceReading,
    };
    use rdma_monitor::sys::*;
    let tmp = tempfile::tempdir().expect("tempdir");
    let proc_root = tmp.path().join("proc");
    std::fs::create_dir_all(&proc_root).unwrap();
    std::fs::write(proc_root.join("uptime"), "100000.00 1.00\n").unwrap();
    for pid in 1000..1500u32 {
        let d = proc_root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("stat"),
            format!("{pid} (app) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n"),
        )
        .unwrap();
        std::fs::write(d.join("status"), "Uid:\t1000\t1000\t1000\t1000\n").unwrap();
        std::fs::write(
            d.join("cgroup"),
            format!(
                "0::/system.slice/slurmstepd.scope/job_{}/step_0/user/task_{pid}\n",
                pid % 50
            ),
        )
        .unwrap();
    }
    let u32b = |v: u32| v.to_ne_bytes();
    let qps: Vec<Vec<u8>> = (0..10_000u32)
        .map(|n| {
            [
                nla(RDMA_NLDEV_ATTR_PORT_INDEX, &u32b(1)),
                nla(RDMA_NLDEV_ATTR_RES_LQPN, &u32b(100 + n)),
                nla(RDMA_NLDEV_ATTR_RES_PDN, &u32b(1)),
                nla(RDMA_NLDEV_ATTR_RES_PID, &u32b(1000 + n % 500)),
                nla(RDMA_NLDEV_ATTR_RES_RQPN, &u32b(n)),
                nla(RDMA_NLDEV_ATTR_RES_RQ_PSN, &u32b(n)),
                nla(RDMA_NLDEV_ATTR_RES_SQ_PSN, &u32b(n)),
                nla(RDMA_NLDEV_ATTR_RES_PATH_MIG_STATE, &[0]),
                nla(RDMA_NLDEV_ATTR_RES_TYPE, &[2]),
                nla(RDMA_NLDEV_ATTR_RES_STATE, &[3]),
            ]
            .concat()
        })
        .collect();
    let mrs: Vec<Vec<u8>> = (0..2_000u32)
        .map(|n| {
            [
                nla(RDMA_NLDEV_ATTR_RES_MRLEN, &(1u64 << 21).to_ne_bytes()),
                nla(RDMA_NLDEV_ATTR_RES_MRN, &u32b(n)),
                nla(RDMA_NLDEV_ATTR_RES_PID, &u32b(1000 + n % 500)),
            ]
            .concat()
        })
        .collect();
    let empty = |cmd, table, entry| dump_reply(cmd, table, entry, &[]);
    let replies = vec![
        dump_reply(
            RDMA_NLDEV_CMD_RES_QP_GET,
            RDMA_NLDEV_ATTR_RES_QP,
            RDMA_NLDEV_ATTR_RES_QP_ENTRY,
            &qps,
        ),
        dump_reply(
            RDMA_NLDEV_CMD_RES_MR_GET,
            RDMA_NLDEV_ATTR_RES_MR,
            RDMA_NLDEV_ATTR_RES_MR_ENTRY,
            &mrs,
        ),
        empty(
            RDMA_NLDEV_CMD_RES_CQ_GET,
            RDMA_NLDEV_ATTR_RES_CQ,
            RDMA_NLDEV_ATTR_RES_CQ_ENTRY,
        ),
        empty(
            RDMA_NLDEV_CMD_RES_PD_GET,
            RDMA_NLDEV_ATTR_RES_PD,
            RDMA_NLDEV_ATTR_RES_PD_ENTRY,
        ),
    ];
    let mut client = Client::new(Replay::looping(Vec::new(), replies));
    let reading = NetlinkReading {
        devices: vec![DeviceReading {
            device: Device {
                index: 0,
                name: "mlx5_0".into(),
                ..Device::default()
            },
            ports: Vec::new(),
            resources: Vec::new(),
            bound_counters: Vec::new(),
        }],
        ..NetlinkReading::default()
    };
    let mut src = AttributionSource::new(&proc_root, tmp.path(), Duration::ZERO, 256);
    let first = src
        .poll(Instant::now(), || 0, &mut client, &reading)
        .expect("due");
    assert_eq!(first.consumers.len(), 50);
    assert_eq!(first.consumers.iter().map(|c| c.qps()).sum::<u64>(), 10_000);
    bencher.bench_local(|| divan::black_box(src.poll(Instant::now(), || 0, &mut client, &reading)));
}

/// The 16-HCA set's text (~120 KB in ~150 pieces) as a gzip scrape
/// compresses it: once per set, and at a scrape a second once per scrape.
fn sixteen_hca_texts() -> Vec<Vec<u8>> {
    let mut config = Config::defaults();
    config.general.sysfs_root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca");
    let published = Arc::new(Published::new(config.poll_interval()));
    let mut agent = Agent::new(config, published.clone());
    agent.cycle();
    published
        .metrics
        .load()
        .texts()
        .map(<[u8]>::to_vec)
        .collect()
}

#[divan::bench]
fn deflate_16hca_set(bencher: divan::Bencher) {
    let texts = sixteen_hca_texts();
    let pieces: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    // Kept from set to set, as the agent keeps it.
    let mut deflater = rdma_monitor::exporters::deflate::Deflater::default();
    bencher.bench_local(|| {
        let mut out = Vec::with_capacity(32 * 1024);
        deflater.deflate(&pieces, &mut out);
        out
    });
}

/// The crate the agent used before its own deflate, at the same level of
/// effort (level 1), for the comparison in README.
#[divan::bench]
fn deflate_16hca_set_miniz_oxide(bencher: divan::Bencher) {
    let texts = sixteen_hca_texts();
    bencher.bench_local(|| {
        let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut out = Vec::with_capacity(32 * 1024);
        for t in &texts {
            let mut taken = 0;
            while taken < t.len() {
                if out.capacity() - out.len() < 1024 {
                    out.reserve(out.capacity());
                }
                let before = c.total_in();
                let _ = c.compress_vec(&t[taken..], &mut out, flate2::FlushCompress::None);
                taken += (c.total_in() - before) as usize;
            }
        }
        loop {
            out.reserve(4096);
            let _ = c.compress_vec(&[], &mut out, flate2::FlushCompress::Sync);
            if out.len() < out.capacity() {
                break out;
            }
        }
    });
}
