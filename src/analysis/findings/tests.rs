//! Each rule on sequences of samples: flaps, single blips, ports that stay
//! down, counter resets and saturation, rates over thresholds.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::detect::Transport;
use crate::model::Rate;
use crate::model::{DeviceInfo, Enumerated, PortInfo, PortOrigin};
use crate::snapshot::{CounterView, DeviceView, NameMap, Snapshot};

fn state(v: u8) -> Option<Enumerated> {
    let name = match v {
        1 => "DOWN",
        4 => "ACTIVE",
        _ => "INIT",
    };
    Some(Enumerated {
        value: v,
        name: name.into(),
    })
}

fn port(st: u8, counters: &[(&str, CounterView)]) -> PortView {
    PortView {
        port: 1,
        transport: Transport::Ib,
        state: state(st),
        phys_state: Some(Enumerated {
            value: if st == 4 { 5 } else { 2 },
            name: if st == 4 {
                "LinkUp".into()
            } else {
                "Polling".into()
            },
        }),
        rate: Some(Rate {
            gbit_per_sec: 100.0,
            width: Some(4),
            speed: Some("EDR".into()),
        }),
        info: Arc::new(PortInfo::default()),
        throughput: None,
        origin: PortOrigin::default(),
        counters: counters
            .iter()
            .map(|(n, v)| (Arc::from(*n), v.clone()))
            .collect(),
        hw_counters: NameMap::default(),
        unsupported: Vec::new(),
    }
}

fn cv(value: u64, delta: Option<u64>, rate: Option<f64>, flag: Option<Flag>) -> CounterView {
    CounterView {
        value,
        delta,
        rate,
        flag,
    }
}

fn snap_of(devices: Vec<(&str, Option<&str>, Vec<PortView>)>) -> Snapshot {
    let devices = devices
        .into_iter()
        .map(|(name, fw, ports)| DeviceView {
            info: Arc::new(DeviceInfo {
                name: name.into(),
                fw_ver: fw.map(str::to_string),
                hca_type: Some("MT4123".into()),
                ..DeviceInfo::default()
            }),
            hw_counters: NameMap::default(),
            ports,
            resources: BTreeMap::new(),
            qp_counters: Vec::new(),
        })
        .collect();
    Snapshot::of_devices(devices, Some(10.0))
}

fn one(st: u8, counters: &[(&str, CounterView)]) -> Snapshot {
    snap_of(vec![("mlx5_0", Some("20.1"), vec![port(st, counters)])])
}

fn engine() -> Findings {
    Findings::new(Config::defaults().analysis)
}

fn ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.id).collect()
}

/// Runs a sequence of port states, 10 s apart; returns the findings after each.
fn run(states: &[u8]) -> Vec<Vec<Finding>> {
    let mut e = engine();
    states
        .iter()
        .enumerate()
        .map(|(i, s)| e.evaluate(&one(*s, &[]), i as u64 * 10_000).0)
        .collect()
}

#[test]
fn a_flap_raises_one_finding_that_clears_later() {
    let mut e = engine();
    let mut t = 0;
    let mut step = |st: u8, e: &mut Findings| {
        t += 10_000;
        e.evaluate(&one(st, &[]), t).0
    };
    for st in [4, 4, 1, 4, 1] {
        step(st, &mut e);
    }
    let f = step(4, &mut e);
    assert_eq!(
        f.iter().filter(|f| f.id == "link_flapping").count(),
        1,
        "{:?}",
        ids(&f)
    );
    let flap = f.iter().find(|f| f.id == "link_flapping").unwrap();
    assert_eq!(flap.severity, Severity::Critical);
    assert_eq!(flap.evidence["transitions"], 2);
    let first = flap.first_seen_unix_ms;
    // Still flapping a cycle later: the same finding, first_seen kept.
    let f = step(4, &mut e);
    assert_eq!(
        f.iter()
            .find(|f| f.id == "link_flapping")
            .unwrap()
            .first_seen_unix_ms,
        first
    );
    // Stable past the window: cleared.
    for _ in 0..31 {
        step(4, &mut e);
    }
    assert!(!ids(&step(4, &mut e)).contains(&"link_flapping"));
}

#[test]
fn a_single_blip_is_not_a_flap() {
    let seq = run(&[4, 4, 1, 4, 4, 4]);
    assert!(seq.iter().all(|f| !ids(f).contains(&"link_flapping")));
    assert!(ids(&seq[2]).contains(&"port_down"));
    assert_eq!(seq[2][0].severity, Severity::Critical, "it was up before");
    assert!(seq[3].is_empty(), "{:?}", seq[3]);
}

#[test]
fn a_port_that_stays_down_is_down_not_flapping() {
    let seq = run(&[4, 1, 1, 1, 1]);
    for f in &seq[1..] {
        assert_eq!(ids(f), ["port_down"]);
    }
    // Never up since the agent started: a warning, not critical.
    let seq = run(&[1, 1]);
    assert_eq!(seq[1][0].severity, Severity::Warning);
}

#[test]
fn link_downed_deltas_count_as_transitions() {
    let mut e = engine();
    let f = e
        .evaluate(
            &one(4, &[("link_downed", cv(7, Some(2), Some(0.2), None))]),
            10_000,
        )
        .0;
    assert!(ids(&f).contains(&"link_flapping"), "{:?}", ids(&f));
    assert!(ids(&f).contains(&"link_downed"));
    let f = e
        .evaluate(
            &one(4, &[("link_downed", cv(7, Some(0), Some(0.0), None))]),
            20_000,
        )
        .0;
    assert!(
        !ids(&f).contains(&"link_downed"),
        "cleared when the counter holds still"
    );
}

#[test]
fn rates_over_thresholds() {
    let mut e = engine();
    let (f, new) = e.evaluate(
        &one(4, &[("symbol_error", cv(100, Some(5), Some(0.5), None))]),
        10_000,
    );
    assert_eq!(ids(&f), ["symbol_errors"]);
    assert!(new, "a new warning is news");
    let (_, new) = e.evaluate(
        &one(4, &[("symbol_error", cv(105, Some(5), Some(0.5), None))]),
        20_000,
    );
    assert!(!new, "the same warning again is not");
    let f = e
        .evaluate(
            &one(4, &[("symbol_error", cv(105, Some(0), Some(0.01), None))]),
            30_000,
        )
        .0;
    assert!(f.is_empty(), "0.6/min is under the threshold");
    let f = e
        .evaluate(
            &one(
                4,
                &[("port_xmit_discards", cv(9, Some(90), Some(9.0), None))],
            ),
            40_000,
        )
        .0;
    assert_eq!(ids(&f), ["transmit_discards"]);
}

#[test]
fn saturated_and_reset_counters() {
    let mut e = engine();
    let f = e
        .evaluate(
            &one(
                4,
                &[
                    ("symbol_error", cv(65535, None, None, Some(Flag::Saturated))),
                    ("VL15_dropped", cv(65535, None, None, Some(Flag::Saturated))),
                    ("port_rcv_data", cv(3, None, None, Some(Flag::Reset))),
                ],
            ),
            10_000,
        )
        .0;
    assert_eq!(ids(&f), ["counter_saturated", "counter_reset"]);
    assert_eq!(f[0].evidence["counter"], "VL15_dropped,symbol_error");
    assert!(f.iter().all(|f| !f.summary.is_empty()));
}

#[test]
fn a_finding_over_several_counters_carries_each_value() {
    let mut e = engine();
    let f = e
        .evaluate(
            &one(
                4,
                &[
                    (
                        "excessive_buffer_overrun_errors",
                        cv(255, None, None, Some(Flag::Saturated)),
                    ),
                    ("link_downed", cv(254, None, None, Some(Flag::Saturated))),
                    ("symbol_error", cv(65535, None, None, Some(Flag::Saturated))),
                ],
            ),
            10_000,
        )
        .0;
    assert_eq!(ids(&f), ["counter_saturated"]);
    let ev = &f[0].evidence;
    assert_eq!(
        ev["values"],
        serde_json::json!({
            "excessive_buffer_overrun_errors": 255,
            "link_downed": 254,
            "symbol_error": 65535,
        })
    );
    assert!(
        !ev.contains_key("value"),
        "one value for three counters: {ev:?}"
    );
}

#[test]
fn a_degraded_link_and_firmware_mismatch() {
    let mut e = engine();
    e.evaluate(&one(4, &[]), 10_000);
    let mut s = one(4, &[]);
    s.devices[0].ports[0].rate = Some(Rate {
        gbit_per_sec: 25.0,
        width: Some(1),
        speed: Some("EDR".into()),
    });
    let f = e.evaluate(&s, 20_000).0;
    assert_eq!(ids(&f), ["link_degraded"]);
    let s = snap_of(vec![
        ("mlx5_0", Some("20.1"), vec![port(4, &[])]),
        ("mlx5_1", Some("20.2"), vec![port(4, &[])]),
    ]);
    let f = Findings::new(Config::defaults().analysis).evaluate(&s, 1).0;
    assert_eq!(ids(&f), ["firmware_mismatch"]);
    assert!(
        f[0].summary.contains("20.1: mlx5_0") && f[0].summary.contains("20.2: mlx5_1"),
        "{}",
        f[0].summary
    );
}

fn with_netdev(
    mut s: Snapshot,
    carrier: u32,
    module: Option<crate::model::netdev::Module>,
) -> Snapshot {
    use crate::model::netdev::Link;
    use crate::model::netdev::{NetdevReading, NetdevStatic};
    s.devices[0].ports[0].info = Arc::new(PortInfo {
        netdev: Some("eth2".into()),
        ..PortInfo::default()
    });
    s.netdevs = vec![NetdevReading {
        name: "eth2".into(),
        link: Some(Link {
            name: "eth2".into(),
            carrier_changes: Some(carrier),
            ..Link::default()
        }),
        ethtool_stats: Vec::new(),
        ethtool_nl: None,
        info: Arc::new(NetdevStatic {
            module,
            ..NetdevStatic::default()
        }),
        errors: Vec::new(),
    }];
    s
}

#[test]
fn carrier_changes_feed_flap_detection() {
    let mut e = engine();
    e.evaluate(&with_netdev(one(4, &[]), 10, None), 10_000);
    // Four carrier changes since the last cycle: down, up, down, up.
    let f = e.evaluate(&with_netdev(one(4, &[]), 14, None), 20_000).0;
    assert!(ids(&f).contains(&"link_flapping"), "{:?}", ids(&f));
    // Two changes only (one blip): no flap.
    let mut e = engine();
    e.evaluate(&with_netdev(one(4, &[]), 10, None), 10_000);
    assert!(
        !ids(&e.evaluate(&with_netdev(one(4, &[]), 12, None), 20_000).0).contains(&"link_flapping")
    );
}

#[test]
fn configuration_changes_are_noticed_for_an_hour() {
    let mut e = engine();
    assert!(e.evaluate(&one(4, &[]), 10_000).0.is_empty());
    let mut s = one(4, &[]);
    s.devices[0].info = Arc::new(DeviceInfo {
        name: "mlx5_0".into(),
        fw_ver: Some("20.2".into()),
        hca_type: Some("MT4123".into()),
        ..DeviceInfo::default()
    });
    let f = e.evaluate(&s, 20_000).0;
    assert_eq!(ids(&f), ["configuration_changed"]);
    assert!(
        f[0].summary.contains("firmware 20.1 -> firmware 20.2"),
        "{}",
        f[0].summary
    );
    assert_eq!(f[0].severity, Severity::Info);
    assert!(
        e.evaluate(&s, 20_000 + 3_600_000).0.is_empty(),
        "cleared after an hour"
    );
}

#[test]
fn transceiver_past_its_own_thresholds() {
    use crate::model::netdev::{Module, Thresholds};
    let th = Thresholds {
        high_alarm: 2e-3,
        low_alarm: 30e-6,
        high_warning: 1.5e-3,
        low_warning: 60e-6,
    };
    let module = Module {
        vendor: "Mellanox".into(),
        part_number: "MMA1B00-C100D".into(),
        rx_power_watts: vec![700e-6, 0.0, 50e-6, 800e-6],
        rx_power_thresholds: Some(th),
        ..Module::default()
    };
    let f = engine()
        .evaluate(&with_netdev(one(4, &[]), 0, Some(module)), 10_000)
        .0;
    assert_eq!(ids(&f), ["transceiver_threshold"]);
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(
        f[0].summary.contains("rx_power lane 2") && f[0].summary.contains("low_alarm"),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].summary.contains("lane 3") && f[0].summary.contains("low_warning"),
        "{}",
        f[0].summary
    );
}

/// `device` is only ever an RDMA device: a finding about a netdev names it
/// in `netdev`, one about an HCA type in `subject`.
#[test]
fn findings_about_a_netdev_or_an_hca_type_leave_device_empty() {
    use crate::model::Counter;
    let mk = |us: u64| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        s.netdevs[0].ethtool_stats = vec![Counter {
            name: "rx_prio3_pause_duration".into(),
            value: us,
        }];
        s
    };
    let mut e = engine();
    e.evaluate(&mk(1_000_000), 10_000);
    let f = e.evaluate(&mk(5_000_000), 20_000).0;
    assert_eq!(ids(&f), ["pfc_pause_storm"]);
    let netdev = s_of(&mk(0));
    assert_eq!(
        (
            f[0].device.as_str(),
            f[0].netdev.as_deref(),
            f[0].subject.as_deref()
        ),
        ("", Some(netdev.as_str()), None)
    );
    let s = snap_of(vec![
        ("mlx5_0", Some("20.1"), vec![port(4, &[])]),
        ("mlx5_1", Some("20.2"), vec![port(4, &[])]),
    ]);
    let f = Findings::new(Config::defaults().analysis).evaluate(&s, 1).0;
    assert_eq!(ids(&f), ["firmware_mismatch"]);
    let hca = s.devices[0].info.hca_type.clone();
    assert_eq!(
        (
            f[0].device.as_str(),
            f[0].netdev.as_deref(),
            f[0].subject.as_deref()
        ),
        ("", None, hca.as_deref())
    );
}

fn s_of(s: &crate::snapshot::Snapshot) -> String {
    s.netdevs[0].name.clone()
}

#[test]
fn a_pfc_pause_storm_per_priority() {
    use crate::model::Counter;
    let mk = |us: u64| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        let nd = &mut s.netdevs[0];
        nd.ethtool_stats = vec![
            Counter {
                name: "rx_prio3_pause_duration".into(),
                value: us,
            },
            Counter {
                name: "rx_prio0_pause_duration".into(),
                value: 5,
            },
        ];
        s
    };
    let mut e = engine();
    e.evaluate(&mk(1_000_000), 10_000);
    // 4 s of pause in a 10 s interval on priority 3: 40 %.
    let f = e.evaluate(&mk(5_000_000), 20_000).0;
    assert_eq!(ids(&f), ["pfc_pause_storm"]);
    assert_eq!(
        (f[0].priority, f[0].severity),
        (Some(3), Severity::Critical)
    );
    assert!(f[0].summary.contains("40 %"), "{}", f[0].summary);
    // 1 s in 10 s: under the 20 % threshold, cleared.
    assert!(e.evaluate(&mk(6_000_000), 30_000).0.is_empty());
}

#[test]
fn device_wide_counters_share_one_finding_with_their_values() {
    let mut s = one(4, &[]);
    let hw = &mut s.devices[0].hw_counters;
    hw.insert(
        "rq_num_oos".into(),
        cv(u64::MAX, None, None, Some(Flag::Saturated)),
    );
    hw.insert(
        "rq_num_dup".into(),
        cv(7, None, None, Some(Flag::Saturated)),
    );
    let f = engine().evaluate(&s, 10_000).0;
    assert_eq!(ids(&f), ["counter_saturated"]);
    assert_eq!(f[0].evidence["counter"], "rq_num_dup,rq_num_oos");
    assert_eq!(
        f[0].evidence["values"],
        serde_json::json!({"rq_num_dup": 7, "rq_num_oos": u64::MAX})
    );
}

/// A DCQCN parameter and the PFC enable mask are configuration: a change of
/// either raises `configuration_changed`, naming what changed.
#[test]
fn dcqcn_and_pfc_changes_are_configuration_changes() {
    use crate::model::netdev::Dcb;
    let with = |rp_ai_rate: u64, pfc: u8| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        s.devices[0].info = Arc::new(DeviceInfo {
            name: "mlx5_0".into(),
            fw_ver: Some("20.1".into()),
            hca_type: Some("MT4123".into()),
            dcqcn: [("rp_ai_rate".to_string(), rp_ai_rate)].into(),
            ..DeviceInfo::default()
        });
        let mut info = (*s.netdevs[0].info).clone();
        info.dcb = Some(Dcb {
            pfc_enabled: Some(pfc),
            ..Dcb::default()
        });
        s.netdevs[0].info = Arc::new(info);
        s
    };
    let mut e = engine();
    assert!(e.evaluate(&with(5, 0x08), 10_000).0.is_empty());
    assert!(e.evaluate(&with(5, 0x08), 20_000).0.is_empty());
    let f = e.evaluate(&with(10, 0x08), 30_000).0;
    assert_eq!(ids(&f), ["configuration_changed"]);
    assert_eq!(
        f[0].summary,
        "device mlx5_0 dcqcn rp_ai_rate changed: 5 -> 10"
    );
    let f = e.evaluate(&with(10, 0x18), 40_000).0;
    let summaries: Vec<&str> = f.iter().map(|f| f.summary.as_str()).collect();
    assert!(
        summaries.contains(&"netdev eth2 pfc changed: priorities [3] -> priorities [3,4]"),
        "{summaries:?}"
    );
}

/// The active offloads are one fingerprint, the names joined by commas.
#[test]
fn an_offload_change_names_the_offloads_before_and_after() {
    use crate::model::netdev::Feature;
    let with = |active: &[(&str, bool)]| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        let mut info = (*s.netdevs[0].info).clone();
        info.features = active
            .iter()
            .map(|(n, on)| Feature {
                name: n.to_string(),
                available: true,
                requested: *on,
                active: *on,
                fixed: false,
            })
            .collect();
        s.netdevs[0].info = Arc::new(info);
        s
    };
    let mut e = engine();
    let before = [("rx-checksum", true), ("tso", false), ("gro", true)];
    assert!(e.evaluate(&with(&before), 10_000).0.is_empty());
    assert!(e.evaluate(&with(&before), 20_000).0.is_empty());
    let f = e
        .evaluate(
            &with(&[("rx-checksum", true), ("tso", true), ("gro", true)]),
            30_000,
        )
        .0;
    assert_eq!(ids(&f), ["configuration_changed"]);
    assert_eq!(
        f[0].summary,
        "netdev eth2 offloads changed: rx-checksum,gro -> rx-checksum,tso,gro"
    );
}

/// The storm rule reads every pause-duration name the catalog knows: bnxt's
/// `pfc_priN_rx_duration_us` and mlx5's link-level `tx_global_pause_duration`.
#[test]
fn a_pause_storm_on_bnxt_and_on_link_level_pause() {
    use crate::model::Counter;
    for (name, want) in [
        ("pfc_pri5_rx_duration_us", Some(5)),
        ("tx_global_pause_duration", None),
    ] {
        let mk = |us: u64| {
            let mut s = with_netdev(one(4, &[]), 0, None);
            s.netdevs[0].ethtool_stats = vec![Counter {
                name: name.into(),
                value: us,
            }];
            s
        };
        let mut e = engine();
        e.evaluate(&mk(0), 10_000);
        let f = e.evaluate(&mk(5_000_000), 20_000).0;
        assert_eq!(ids(&f), ["pfc_pause_storm"], "{name}");
        assert_eq!(f[0].priority, want, "{name}");
        assert!(f[0].summary.contains("50 %"), "{}", f[0].summary);
    }
}

/// Retransmissions: the rates of every counter the catalog names for the
/// rule, summed per port, against the threshold (1/s by default).
#[test]
fn retransmissions_over_the_threshold() {
    let with = |adp: f64, to: f64| {
        let mut s = one(4, &[]);
        let p = &mut s.devices[0].ports[0];
        p.hw_counters.insert(
            Arc::from("roce_adp_retrans"),
            cv(10, Some(5), Some(adp), None),
        );
        p.hw_counters.insert(
            Arc::from("local_ack_timeout_err"),
            cv(3, Some(1), Some(to), None),
        );
        // A counter outside the rule does not count.
        p.hw_counters.insert(
            Arc::from("out_of_sequence"),
            cv(9, Some(9), Some(90.0), None),
        );
        s
    };
    let mut e = engine();
    assert!(e.evaluate(&with(0.5, 0.4), 10_000).0.is_empty());
    let f = e.evaluate(&with(0.5, 0.7), 20_000).0;
    assert_eq!(ids(&f), ["retransmission_rate"]);
    assert_eq!(f[0].evidence["per_second"], serde_json::json!(1.2));
}

fn netdev_stats(s: &mut Snapshot, stats: &[(&str, u64)]) {
    s.netdevs[0].ethtool_stats = stats
        .iter()
        .map(|(n, v)| crate::model::Counter {
            name: (*n).into(),
            value: *v,
        })
        .collect();
}

/// Drops on a PFC priority; a priority without PFC, or with PFC state
/// unknown, may drop, and so may a bnxt CoS queue whose priorities the agent
/// cannot see (lossy queues drop by design): neither is this rule's.
#[test]
fn drops_on_a_lossless_priority_and_a_cos_queue() {
    use crate::model::netdev::Dcb;
    use crate::model::netdev::NetdevStatic;
    let mk_pfc = |d3: u64, d1: u64, cos: u64, pfc: Option<u8>| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        s.netdevs[0].info = Arc::new(NetdevStatic {
            dcb: Some(Dcb {
                pfc_enabled: pfc,
                ..Dcb::default()
            }),
            ..NetdevStatic::default()
        });
        netdev_stats(
            &mut s,
            &[
                ("rx_prio3_discards", d3),
                ("rx_prio1_discards", d1),
                ("rx_discard_packets_cos2", cos),
            ],
        );
        s
    };
    let mk = |d3: u64, d1: u64, cos: u64| mk_pfc(d3, d1, cos, Some(1 << 3));
    let mut e = engine();
    assert!(e.evaluate(&mk(0, 0, 0), 10_000).0.is_empty());
    // Priority 1 has no PFC: its drops are not this rule's.
    assert!(e.evaluate(&mk(0, 500, 0), 20_000).0.is_empty());
    let f = e.evaluate(&mk(10, 900, 4), 30_000).0;
    let got: Vec<_> = f.iter().map(|f| (f.id, f.priority)).collect();
    assert_eq!(got, [("priority_drops", Some(3))], "the CoS queue is not");
    // PFC state unknown: no priority is known to be lossless.
    let mut e = engine();
    e.evaluate(&mk_pfc(0, 0, 0, None), 10_000);
    assert!(e.evaluate(&mk_pfc(10, 0, 4, None), 20_000).0.is_empty());
}

/// Pre-FEC BER from corrected over received bits (mlx5 names), and from
/// ethtool netlink's corrected bits over speed × time where the driver has
/// no received-bits counter; uncorrected symbol errors are critical.
#[test]
fn phy_ber_from_either_source() {
    let mut e = engine();
    let mk = |corr: u64, bits: u64, pcs: u64| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        netdev_stats(
            &mut s,
            &[
                ("rx_corrected_bits_phy", corr),
                ("rx_bits_phy", bits),
                ("rx_pcs_symbol_err_phy", pcs),
            ],
        );
        s
    };
    e.evaluate(&mk(0, 0, 0), 10_000);
    // 1e-6: under 2.4e-4.
    assert!(
        e.evaluate(&mk(1_000, 1_000_000_000, 0), 20_000)
            .0
            .is_empty()
    );
    // 1e-3 over the last interval.
    let f = e.evaluate(&mk(1_001_000, 2_000_000_000, 0), 30_000).0;
    assert_eq!(
        (ids(&f), f[0].severity),
        (vec!["phy_ber"], Severity::Warning)
    );
    assert_eq!(f[0].evidence["pre_fec_ber"], serde_json::json!(1e-3));
    let f = e.evaluate(&mk(1_001_000, 3_000_000_000, 2), 40_000).0;
    assert_eq!(f[0].severity, Severity::Critical);

    // Netlink corrected bits, 100 Gb/s for 10 s = 1e12 bits: 5e-4.
    let mut e = engine();
    let nl = |bits: u64| {
        let mut s = with_netdev(one(4, &[]), 0, None);
        s.netdevs[0].ethtool_nl = Some(crate::model::netdev::EthtoolNl {
            fec_corrected_bits: Some(bits),
            ..Default::default()
        });
        s.netdevs[0].info = Arc::new(crate::model::netdev::NetdevStatic {
            link_settings: Some(crate::model::netdev::LinkSettings {
                speed_mbps: Some(100_000),
                duplex: Some(1),
                autoneg: false,
                port: 0,
            }),
            ..Default::default()
        });
        s
    };
    e.evaluate(&nl(0), 10_000);
    let f = e.evaluate(&nl(500_000_000), 20_000).0;
    assert_eq!(ids(&f), ["phy_ber"]);
    assert_eq!(f[0].evidence["pre_fec_ber"], serde_json::json!(5e-4));
}

/// A Slurm job holding `qps` QPs on port 1 of `device`, and nothing else.
fn job_on(id: &str, device: &str, qps: u64) -> crate::model::consumers::Consumer {
    use crate::model::consumers::{Consumer, Kind, Labels, PortUse};
    Consumer {
        kind: Kind::SlurmJob,
        id: id.into(),
        labels: Labels {
            job_id: Some(id.into()),
            ..Labels::default()
        },
        ports: vec![PortUse {
            device: device.into(),
            port: 1,
            qps,
            ..PortUse::default()
        }],
        mrs: 0,
        mr_bytes: 0,
        odp_mrs: 0,
        cqs: 0,
        pds: 0,
        counters: Vec::new(),
        processes: Vec::new(),
    }
}

/// A port with a serious finding where one job holds most of the attributed
/// QPs names the job; a port without one, or a job with half or less, does not.
#[test]
fn a_dominant_consumer_of_a_troubled_port_is_named() {
    use crate::model::consumers::Consumer;
    let consumer = |id: &str, qps: u64| job_on(id, "mlx5_0", qps);
    let with = |st: u8, c: Vec<Consumer>| {
        let mut s = one(st, &[]);
        s.consumers = Arc::new(c);
        s
    };
    let mut e = engine();
    let f = e
        .evaluate(&with(4, vec![consumer("42", 9), consumer("7", 1)]), 0)
        .0;
    assert!(
        !ids(&f).contains(&"port_dominant_consumer"),
        "healthy port: {:?}",
        ids(&f)
    );
    let f = e
        .evaluate(&with(1, vec![consumer("42", 9), consumer("7", 1)]), 10_000)
        .0;
    let d = f
        .iter()
        .find(|f| f.id == "port_dominant_consumer")
        .expect("named");
    assert_eq!((d.device.as_str(), d.port), ("mlx5_0", Some(1)));
    assert_eq!(d.evidence["consumer"], "42");
    assert_eq!(d.evidence["qps"], 9);
    assert!(d.summary.contains("port_down"), "{}", d.summary);
    let f = e
        .evaluate(&with(1, vec![consumer("42", 5), consumer("7", 5)]), 20_000)
        .0;
    assert!(
        !ids(&f).contains(&"port_dominant_consumer"),
        "half is not most"
    );
}

#[test]
fn each_troubled_port_names_its_own_dominant_consumer_with_all_its_findings() {
    let mut s = one(4, &[]);
    s.consumers = Arc::new(vec![
        job_on("1", "mlx5_0", 9),
        job_on("2", "mlx5_1", 9),
        job_on("3", "mlx5_0", 1),
        job_on("3", "mlx5_1", 1),
    ]);
    let hit = |id: &'static str, device: &str| {
        (
            (id, device.to_string(), Some(1), None),
            Severity::Warning,
            String::new(),
            BTreeMap::new(),
        )
    };
    // The two ports' hits interleaved: each port keeps its own, in order.
    let hits = [
        hit("cnp_rate", "mlx5_0"),
        hit("cnp_rate", "mlx5_1"),
        hit("retransmission_rate", "mlx5_0"),
        hit("link_flapping", "mlx5_1"),
    ];
    let got: Vec<(String, serde_json::Value, serde_json::Value)> = dominant::hits(&s, &hits)
        .into_iter()
        .map(|((id, device, port, _), _, _, ev)| {
            assert_eq!((id, port), ("port_dominant_consumer", Some(1)));
            (device, ev["consumer"].clone(), ev["findings"].clone())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "mlx5_0".to_string(),
                serde_json::json!("1"),
                serde_json::json!(["cnp_rate", "retransmission_rate"])
            ),
            (
                "mlx5_1".to_string(),
                serde_json::json!("2"),
                serde_json::json!(["cnp_rate", "link_flapping"])
            ),
        ]
    );
}

/// A MAD view with one local port (ConnectX-6: tick read, length not
/// documented) and its switch port (Quantum, HDR 4x, Tick 7: 0.32 ns a
/// tick), both read at `at` with PortXmitWait = `wait`.
fn wait_view(wait: u64, at: std::time::Instant) -> crate::mad_worker::MadView {
    use crate::catalog::xmit_wait::WaitClock;
    use crate::mad_worker::{FabricPort, LocalPort, MadView, Reading};
    use crate::sources::mad::pma::PortCounters;
    let reading = || Reading::Counters {
        counters: PortCounters {
            lid: 1,
            port: 1,
            capability_mask: 0x1200,
            extended: true,
            counters: vec![("port_xmit_wait", wait)],
            details_error: None,
            read_at: Some(at),
        },
        saturated: Vec::new(),
    };
    let clock = |device_id| {
        Some(WaitClock {
            vendor_id: 0x02c9,
            device_id,
            tick: 7,
            width_active: 2,
            speed_active: 0,
            speed_ext_active: 4,
        })
    };
    MadView {
        local: vec![LocalPort {
            umad_device: "/dev/infiniband/umad0".into(),
            ibdev: Some("mlx5_0".into()),
            port: 1,
            lid: 3,
            counters: reading(),
            wait_clock: clock(4123),
            peer: Some(FabricPort {
                node_guid: 0xa,
                node_desc: "leaf1".into(),
                node_type: 2,
                lid: 1,
                port: 7,
                counters: reading(),
                wait_clock: clock(54000),
            }),
        }],
        ..MadView::default()
    }
}

#[test]
fn switch_port_waiting_over_the_share() {
    use std::time::Duration;
    let t0 = std::time::Instant::now();
    let at = |s| crate::clock::after(t0, Duration::from_secs(s));
    let with = |wait, t| {
        let mut s = one(4, &[]);
        s.mad = Some(Arc::new(wait_view(wait, t)));
        s
    };
    // Readings 10 s apart (the worker's poll): 37 % of 10 s at 0.32 ns a
    // tick is 1.156 × 10^10 ticks, more than a 32-bit PortXmitWait holds
    // (2^32 ticks = 1.37 s): only the 64-bit PortCountersExtended one
    // (sources::mad::pma, CapabilityMask2 bit 1) can say it.
    let mut e = engine();
    let start = 5_000_000_000u64;
    assert!(e.evaluate(&with(start, at(0)), 10_000).0.is_empty());
    let waited = start + 11_562_500_000;
    let f = e.evaluate(&with(waited, at(10)), 20_000).0;
    assert_eq!(ids(&f), ["fabric_transmit_wait"]);
    assert_eq!(f[0].subject.as_deref(), Some("leaf1 0x000000000000000a"));
    assert_eq!(f[0].device, "");
    assert_eq!(f[0].port, Some(7));
    let share = f[0].evidence["share"].as_f64().unwrap();
    assert!((share - 0.37).abs() < 1e-9, "{share}");
    // The worker has not read again: the finding stays.
    let f = e.evaluate(&with(waited, at(10)), 30_000).0;
    assert_eq!(ids(&f), ["fabric_transmit_wait"]);
    // 10^9 ticks in the next 10 s: 3.2 %, gone.
    assert!(
        e.evaluate(&with(waited + 1_000_000_000, at(20)), 40_000)
            .0
            .is_empty()
    );
    // A saturated 32-bit counter says nothing, not 0 % and not 100 %.
    let mut e = engine();
    e.evaluate(&with(0, at(0)), 10_000);
    assert!(
        e.evaluate(&with(u64::from(u32::MAX), at(10)), 50_000)
            .0
            .is_empty()
    );
    // The limit is the configuration's.
    let mut th = Config::defaults().analysis;
    th.transmit_wait_share = 0.5;
    let mut e = Findings::new(th);
    e.evaluate(&with(start, at(0)), 10_000);
    assert!(e.evaluate(&with(waited, at(10)), 20_000).0.is_empty());
}

/// A flap across a poll, as the rxe VM showed it (tests/vm/events.sh): down,
/// up, down before the poll (the port is down at it), up after. The link
/// event's up before the poll is a finished transition and counts at its
/// time; the pending down is the second. A single blip whose port is not
/// yet active at the poll after its up counts once, not twice.
#[test]
fn event_ups_count_when_the_port_is_down_at_the_poll() {
    let ups = |t: u64| HashMap::from([("eth2".to_string(), vec![t])]);
    let at = |st: u8| with_netdev(one(st, &[]), 10, None);
    let mut e = engine();
    e.evaluate(&at(4), 10_000);
    e.feed_events(ups(11_000), Vec::new());
    e.evaluate(&at(1), 12_000);
    e.feed_events(ups(12_500), Vec::new());
    let f = e.evaluate(&at(4), 14_000).0;
    let flap = f.iter().find(|f| f.id == "link_flapping");
    assert_eq!(flap.expect("flap across a poll").evidence["transitions"], 2);

    let mut e = engine();
    e.evaluate(&at(4), 10_000);
    e.feed_events(ups(11_000), Vec::new());
    e.evaluate(&at(1), 12_000);
    assert!(!ids(&e.evaluate(&at(4), 14_000).0).contains(&"link_flapping"));
    assert!(!ids(&e.evaluate(&at(4), 16_000).0).contains(&"link_flapping"));
}

/// The default retransmission threshold at its boundary: one per second
/// over the default poll interval lets exactly that many through, one more
/// fires.
#[test]
fn retransmission_rate_fires_just_above_the_default_threshold() {
    let c = Config::defaults();
    let cycle = c.general.poll_interval;
    let at_limit = (c.analysis.retransmissions_per_second * cycle) as u64;
    let with = |events: u64| {
        let mut s = one(4, &[]);
        s.devices[0].ports[0].hw_counters.insert(
            Arc::from("roce_adp_retrans"),
            cv(events, Some(events), Some(events as f64 / cycle), None),
        );
        s
    };
    let mut e = engine();
    assert!(e.evaluate(&with(at_limit), 10_000).0.is_empty());
    assert_eq!(
        ids(&e.evaluate(&with(at_limit + 1), 20_000).0),
        ["retransmission_rate"]
    );
}

/// The RdmaTransportRetransmissions alert sums exactly the counters the
/// retransmission_rate finding reads, each under its own family: no RNR
/// NAKs (not loss), and the ACK timeouts the finding counts.
#[test]
fn retransmission_alert_reads_the_findings_counters() {
    let rules = include_str!("../../../deploy/prometheus/alerts.yml");
    let start = rules.find("- alert: RdmaTransportRetransmissions").unwrap();
    let rule = &rules[start..];
    let rule = &rule[..rule[1..].find("- alert:").map_or(rule.len(), |e| e + 1)];
    let expr = &rule[rule.find("expr:").unwrap()..];
    let mut alert = std::collections::BTreeSet::new();
    for part in expr.split("rate(").skip(1) {
        let (metric, rest) = part.split_once("{counter=~\"").unwrap();
        let names = &rest[..rest.find('"').unwrap()];
        for n in names.split('|') {
            alert.insert((metric.to_string(), n.to_string()));
        }
    }
    let finding: std::collections::BTreeSet<(String, String)> =
        crate::catalog::used_by("retransmission_rate")
            .map(|k| (k.metric.to_string(), k.file.to_string()))
            .collect();
    assert_eq!(alert, finding);
}

/// A port gone from the reading (its device removed) lets go of its
/// counters' names: a node whose devices come and go under new names does
/// not keep every name it ever read.
#[test]
fn a_port_gone_from_the_reading_lets_go_of_its_counter_names() {
    let mut e = engine();
    let with = one(4, &[("symbol_error", cv(0, Some(0), Some(0.0), None))]);
    let name = with.devices[0].ports[0]
        .counters
        .keys()
        .next()
        .unwrap()
        .clone();
    e.evaluate(&with, 0);
    drop(with);
    assert!(
        Arc::strong_count(&name) > 1,
        "the port's positions hold the name"
    );
    e.evaluate(&snap_of(vec![]), 10_000);
    assert_eq!(Arc::strong_count(&name), 1);
}

/// The second cycle of a port whose counters are the same strings (as a
/// source hands them out) reads its counters through the positions found in
/// the first: a rule fires on the value at the right place, in both lists.
#[test]
fn rules_read_the_counters_through_kept_positions() {
    let mut e = engine();
    let quiet = one(
        4,
        &[
            ("link_downed", cv(0, Some(0), Some(0.0), None)),
            ("port_rcv_errors", cv(0, Some(0), Some(0.0), None)),
            ("symbol_error", cv(100, Some(0), Some(0.0), None)),
        ],
    );
    assert!(e.evaluate(&quiet, 0).0.is_empty());
    let mut busy = quiet.clone();
    let p = &mut busy.devices[0].ports[0];
    let name = p.counters.keys().nth(2).unwrap().clone();
    assert_eq!(&*name, "symbol_error");
    // The same Arc, a new value: the kept position is confirmed by pointer.
    p.counters.insert(name, cv(105, Some(5), Some(0.5), None));
    let (f, _) = e.evaluate(&busy, 10_000);
    assert_eq!(ids(&f), ["symbol_errors"]);
    assert!(f[0].summary.contains("mlx5_0"), "{}", f[0].summary);
}

#[test]
fn hits_with_one_key_merge_in_the_order_keys_first_appear() {
    let hit = |key: &str, severity: Severity, summary: &str| {
        (
            key.to_string(),
            severity,
            summary.to_string(),
            BTreeMap::new(),
        )
    };
    // The first hit of a key sets its severity (phy_ber pushes the critical
    // one first).
    let merged = merge_same_key(vec![
        hit("a", Severity::Critical, "a1"),
        hit("b", Severity::Info, "b1"),
        hit("a", Severity::Warning, "a2"),
        hit("c", Severity::Warning, "c1"),
        hit("b", Severity::Critical, "b2"),
    ]);
    let got: Vec<(String, Severity, String)> = merged
        .into_iter()
        .map(|(k, sev, s, _)| (k, sev, s))
        .collect();
    let want = [
        ("a", Severity::Critical, "a1; a2"),
        ("b", Severity::Info, "b1; b2"),
        ("c", Severity::Warning, "c1"),
    ];
    assert_eq!(
        got,
        want.map(|(k, sev, s)| (k.to_string(), sev, s.to_string()))
    );
}
