use super::*;
use crate::catalog::xmit_wait::WaitClock;
use crate::mad_worker::{LocalPort, MadView, Reading};
use crate::metrics::Value;
use crate::model::NodeReading;

fn reading(wait: u64) -> Reading {
    Reading::Counters {
        counters: PortCounters {
            lid: 1,
            port: 1,
            capability_mask: 0x1200,
            extended: true,
            counters: vec![("symbol_error", 0), ("port_xmit_wait", wait)],
            details_error: None,
            read_at: None,
        },
        saturated: Vec::new(),
    }
}

/// HDR 4x (LinkWidthActive 2 = 4x, LinkSpeedExtActive 4 = HDR) on a device.
fn clock(device_id: u16, tick: u8) -> Option<WaitClock> {
    Some(WaitClock {
        vendor_id: 0x02c9,
        device_id,
        tick,
        width_active: 2,
        speed_active: 0,
        speed_ext_active: 4,
    })
}

fn port(guid: u64, port: u8, wait: u64, clock: Option<WaitClock>) -> FabricPort {
    FabricPort {
        node_guid: guid,
        node_desc: "MF0;leaf1:MQM8700/U1".into(),
        node_type: 2,
        lid: 1,
        port,
        counters: reading(wait),
        wait_clock: clock,
    }
}

fn collect(view: &MadView) -> crate::metrics::MetricSet {
    let node = NodeReading::default();
    let snapshot = crate::collectors::test_snapshot(&node);
    let cycle = Cycle {
        node: &node,
        mode: crate::config::NetworkMode::Auto,
        mad: Some(view),
        attribution: None,
        snapshot: &snapshot,
        findings: &[],
        known: Default::default(),
    };
    let mut b = Builder::new();
    XmitWait.collect(&cycle, &mut b).unwrap();
    b.finish()
}

/// A Quantum (HDR 4x, Tick 7) port: 10^9 ticks × 8 bytes at 200 Gb/s =
/// 0.32 s, NVIDIA's "lost bytes = counter × (tick + 1)". A ConnectX-6
/// (device 4123) reads its tick, but how it counts is documented nowhere:
/// no seconds, no tick length, only the raw Tick.
#[test]
fn seconds_where_the_asic_is_documented_and_absent_elsewhere() {
    let view = MadView {
        local: vec![LocalPort {
            umad_device: "/dev/infiniband/umad0".into(),
            ibdev: Some("mlx5_0".into()),
            port: 1,
            lid: 3,
            counters: reading(5_000),
            wait_clock: clock(4123, 7),
            peer: Some(port(0xa, 1, 1_000_000_000, clock(54000, 7))),
        }],
        fabric_counters: vec![port(0xb, 3, 100, None)],
        ..MadView::default()
    };
    let set = collect(&view);
    let peer = [
        ("node_guid", "0x000000000000000a"),
        ("node_desc", "MF0;leaf1:MQM8700/U1"),
        ("lid", "1"),
        ("port", "1"),
    ];
    match set.get(FABRIC_SECONDS, &peer) {
        Some(Value::F64(s)) => assert!((s - 0.32).abs() < 1e-12, "{s}"),
        other => panic!("{other:?}"),
    }
    match set.get(FABRIC_TICK, &peer) {
        Some(Value::F64(s)) => assert!((s - 0.32e-9).abs() < 1e-21, "{s}"),
        other => panic!("{other:?}"),
    }
    let local = [("device", "mlx5_0"), ("port", "1")];
    assert_eq!(set.get(RAW, &local), Some(Value::U64(7)));
    assert_eq!(set.get(SECONDS, &local), None, "ConnectX: not documented");
    assert_eq!(set.get(TICK, &local), None);
    // No clock (the PMA did not answer PortSamplesControl): nothing at all.
    let text = String::from_utf8(set.text().to_vec()).unwrap();
    assert!(!text.contains("0x000000000000000b"), "{text}");
}

/// A umad device whose RDMA device is not known: its series carry the path
/// as `umad`, never as `device` (which names RDMA devices only).
#[test]
fn an_unknown_ibdev_is_no_device() {
    let local = |ibdev: Option<&str>| LocalPort {
        umad_device: "/dev/infiniband/umad0".into(),
        ibdev: ibdev.map(str::to_string),
        port: 1,
        lid: 3,
        counters: reading(5_000),
        wait_clock: clock(54000, 7),
        peer: None,
    };
    let view = MadView {
        local: vec![local(None)],
        ..MadView::default()
    };
    let set = collect(&view);
    let umad = [("umad", "/dev/infiniband/umad0"), ("port", "1")];
    assert!(set.get(SECONDS, &umad).is_some());
    let text = String::from_utf8(set.text().to_vec()).unwrap();
    assert!(!text.contains("device="), "{text}");
    let view = MadView {
        local: vec![local(Some("mlx5_0"))],
        ..MadView::default()
    };
    let set = collect(&view);
    assert!(
        set.get(SECONDS, &[("device", "mlx5_0"), ("port", "1")])
            .is_some()
    );
}

/// No driver's `TxWait` hw counter becomes seconds (catalog::hfi1 says why):
/// neither hfi1's, whose conversion depends on link width and speed, nor
/// the same name on another driver.
#[test]
fn no_hw_counter_tx_wait_gives_seconds() {
    let dev = |name: &str, hw: &[(&str, u64)]| crate::collectors::test_device(name, None, &[], hw);
    let node = NodeReading {
        devices: vec![
            dev("hfi1_0", &[("TxWait", 1_610_000_000), ("RcResend", 3)]),
            dev("mlx5_0", &[("TxWait", 805_000_000)]),
        ],
        ..NodeReading::default()
    };
    let set = crate::collectors::test_collect(&mut XmitWait, &node);
    let secs = |d: &str| set.get(SECONDS, &[("device", d), ("port", "1")]);
    assert_eq!(secs("hfi1_0"), None);
    assert_eq!(secs("mlx5_0"), None);
}

/// A 32-bit PortXmitWait sitting at 2^32 − 1 has stopped: its seconds would
/// be a flat line that `rate()` reads as 0 % waited, so none are exported
/// (the tick length and the raw Tick stay); one tick below still counts.
#[test]
fn a_saturated_wait_counter_gives_no_seconds() {
    let mut saturated = port(0xa, 5, u64::from(u32::MAX), clock(54000, 7));
    if let Reading::Counters { counters, .. } = &mut saturated.counters {
        counters.extended = false;
    }
    let view = MadView {
        fabric_counters: vec![
            saturated,
            port(0xa, 6, u64::from(u32::MAX) - 1, clock(54000, 7)),
        ],
        ..MadView::default()
    };
    let set = collect(&view);
    let labels = |p: &'static str| {
        [
            ("node_guid", "0x000000000000000a"),
            ("node_desc", "MF0;leaf1:MQM8700/U1"),
            ("lid", "1"),
            ("port", p),
        ]
    };
    assert_eq!(set.get(FABRIC_SECONDS, &labels("5")), None);
    assert!(set.get(FABRIC_TICK, &labels("5")).is_some());
    assert_eq!(set.get(FABRIC_RAW, &labels("5")), Some(Value::U64(7)));
    assert!(set.get(FABRIC_SECONDS, &labels("6")).is_some());
}
