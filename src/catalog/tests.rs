use super::*;

#[test]
fn names_follow_conventions() {
    let known: Vec<&Known> = all().collect();
    for k in &known {
        assert!(k.metric.starts_with("rdma_"), "{}", k.metric);
        assert!(
            k.metric.ends_with("_total"),
            "counters end in _total: {}",
            k.metric
        );
        if k.scale == 4 {
            assert!(k.metric.contains("_bytes"), "{}", k.metric);
        }
        assert!(k.help.ends_with('.'), "{}", k.metric);
    }
    // One file is known once.
    let mut keys: Vec<_> = known.iter().map(|k| (k.source, k.file)).collect();
    keys.sort_by_key(|(s, f)| (*s as u8, *f));
    keys.dedup();
    assert_eq!(keys.len(), known.len());
    // Aliases of one metric share its help text (Prometheus keeps one HELP per family).
    for a in &known {
        for b in known.iter().filter(|b| b.metric == a.metric) {
            assert_eq!(a.help, b.help, "{}", a.metric);
        }
    }
}

#[test]
fn driver_volume_stands_in_only_where_the_port_has_no_pma() {
    use crate::model::Counter;
    let efa = known_on_port(Source::Hw, "tx_bytes", &[]).expect("EFA tx_bytes");
    assert_eq!(efa.metric, "rdma_port_transmit_bytes_total");
    assert_eq!(efa.scale, 1, "bytes, not 4-byte words");
    let pma = [Counter {
        name: "port_xmit_data".into(),
        value: 1,
    }];
    // Both would land in one family for one port: the PMA counter wins,
    // the driver's stays in the generic family.
    assert!(known_on_port(Source::Hw, "tx_bytes", &pma).is_none());
    assert!(known_on_port(Source::Hw, "rx_bytes", &pma).is_some());
}

#[test]
fn lookup_by_source() {
    assert_eq!(lookup(Source::Pma, "port_xmit_data").unwrap().scale, 4);
    assert!(lookup(Source::Hw, "port_xmit_data").is_none());
    assert_eq!(saturation(Source::Pma, "link_downed"), &[255]);
    assert_eq!(saturation(Source::Hw, "whatever"), UNKNOWN_SATURATION);
}

/// Reads a fixture name table (one name a line, `#` comments).
fn names(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/ethtool/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// (family, labels, unit) of one series.
type Series = (&'static str, Vec<(&'static str, String)>, ethtool::Unit);

/// The family, labels and unit one ethtool name lands in.
fn family_of(name: &str) -> Option<Series> {
    let hit = ethtool::lookup(name)?;
    let fam = hit.stat.family?;
    let mut labels: Vec<(&str, String)> = hit
        .stat
        .labels
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    if let (Some(l), Some(i)) = (hit.stat.index, hit.index) {
        labels.push((l, i.to_string()));
    }
    if hit.stat.stat_label {
        labels.push(("stat", name.to_string()));
    }
    Some((fam.metric, labels, hit.stat.unit))
}

#[test]
fn pfc_names_of_three_drivers() {
    use ethtool::Unit::*;
    let l = |d: &str, p: &str| vec![("direction", d.to_string()), ("priority", p.to_string())];
    for (name, metric, labels, unit) in [
        (
            "rx_prio3_pause",
            "rdma_pfc_pause_frames_total",
            l("rx", "3"),
            Count,
        ),
        (
            "tx_prio0_pause_duration",
            "rdma_pfc_pause_duration_seconds_total",
            l("tx", "0"),
            Microseconds,
        ),
        (
            "rx_prio7_pause_transition",
            "rdma_pfc_pause_transitions_total",
            l("rx", "7"),
            Count,
        ),
        (
            "rx_pfc_ena_frames_pri5",
            "rdma_pfc_pause_frames_total",
            l("rx", "5"),
            Count,
        ),
        (
            "pfc_pri3_tx_transitions",
            "rdma_pfc_pause_transitions_total",
            l("tx", "3"),
            Count,
        ),
        (
            "pfc_pri2_rx_duration_us",
            "rdma_pfc_pause_duration_seconds_total",
            l("rx", "2"),
            Microseconds,
        ),
        (
            "tx_priority_4_xoff.nic",
            "rdma_pfc_pause_frames_total",
            l("tx", "4"),
            Count,
        ),
    ] {
        assert_eq!(family_of(name), Some((metric, labels, unit)), "{name}");
    }
    for other in [
        "rx_prio9_pause",
        "rx_prio3_bytes",
        "rx_priority_4_xon.nic",
        "rx_prio",
        "pfc_pri3_x",
        "rx_prio300_pause",
        "rx0_packets",
    ] {
        assert!(family_of(other).is_none(), "{other}");
    }
    // Known, but exported through the kernel's pause statistics: no family here.
    let h = ethtool::lookup("rx_pause_ctrl_phy").unwrap();
    assert_eq!(
        (h.stat.family, h.stat.same_as),
        (None, Some("rdma_netdev_pause_frames_total"))
    );
}

/// Every per-priority pause counter of mlx5's documented names maps to one
/// series; nothing else named like one is left out.
#[test]
fn mlx5_documented_names() {
    let names = names("mlx5-stat-names.txt");
    let mut mapped = std::collections::BTreeSet::new();
    for n in &names {
        match family_of(n) {
            Some(m) => assert!(
                mapped.insert(m.clone()),
                "{n} maps onto a series another name has"
            ),
            None => assert!(
                !(n.contains("_pause") && n.contains("prio")),
                "{n} should be a PFC statistic"
            ),
        }
    }
    let count = |metric: &str| mapped.iter().filter(|m| m.0 == metric).count();
    // 8 priorities x (rx frames, tx frames), (rx, tx duration), rx transitions.
    assert_eq!(count("rdma_pfc_pause_frames_total"), 16);
    assert_eq!(count("rdma_pfc_pause_duration_seconds_total"), 16);
    assert_eq!(count("rdma_pfc_pause_transitions_total"), 8);
    // 8 priorities x (any, buffer, congestion); marks; 4 lanes.
    assert_eq!(count("rdma_netdev_priority_discards_total"), 24);
    assert_eq!(count("rdma_netdev_priority_ecn_marked_packets_total"), 8);
    assert_eq!(count("rdma_netdev_phy_lane_corrected_bits_total"), 4);
    assert_eq!(count("rdma_netdev_global_pause_duration_seconds_total"), 2);
    // rx_err_lane_N_phy is PPCNT phy_corrected_bits_laneN: bits, not errors.
    let lane = family_of("rx_err_lane_2_phy").unwrap();
    assert_eq!(
        (lane.0, lane.2),
        (
            "rdma_netdev_phy_lane_corrected_bits_total",
            ethtool::Unit::Bits
        )
    );
    // A threshold crossing is not a drop.
    assert_eq!(
        family_of("rx_buffer_passed_thres_phy").unwrap().0,
        "rdma_netdev_buffer_threshold_events_total"
    );
    assert_eq!(
        family_of("rx_discards_phy").unwrap().0,
        "rdma_netdev_discards_total"
    );
}

/// bnxt_en's names (fixtures/ethtool/bnxt-stat-names.txt, from bnxt_ethtool.c):
/// each family it has, with the right unit and index label.
#[test]
fn bnxt_documented_names() {
    use ethtool::Unit::*;
    let names = names("bnxt-stat-names.txt");
    let got: Vec<_> = names
        .iter()
        .filter_map(|n| family_of(n).map(|f| (n.as_str(), f)))
        .collect();
    let find = |n: &str| got.iter().find(|(g, _)| *g == n).map(|(_, f)| f.clone());
    assert_eq!(
        find("pfc_pri3_tx_duration_us"),
        Some((
            "rdma_pfc_pause_duration_seconds_total",
            vec![("direction", "tx".into()), ("priority", "3".into())],
            Microseconds
        ))
    );
    assert_eq!(
        find("rx_discard_packets_cos2"),
        Some((
            "rdma_netdev_cos_discards_total",
            vec![("cos", "2".into())],
            Count
        ))
    );
    assert_eq!(
        find("continuous_roce_pause_events").unwrap().0,
        "rdma_netdev_pause_storm_events_total"
    );
    assert_eq!(
        find("rx_pcs_symbol_err").unwrap().0,
        "rdma_netdev_phy_errors_total"
    );
    assert_eq!(find("rx_bits").unwrap().2, Bits);
    assert_eq!(
        find("rx_stat_discard").unwrap().0,
        "rdma_netdev_discards_total"
    );
    // rx_discard_bytes_cosN is bytes, not packets: not in the packets family.
    assert_eq!(find("rx_discard_bytes_cos2"), None);
    let series: std::collections::BTreeSet<_> = got.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(series.len(), got.len(), "two names on one series");
}

/// ice's names (fixtures/ethtool/ice-stat-names.txt, from ice_ethtool.c):
/// link-level XOFF frames and CRC errors in their families, with a
/// direction and a kind; XON frames stay generic.
#[test]
fn ice_documented_names() {
    use ethtool::Unit::*;
    let names = names("ice-stat-names.txt");
    let find = |n: &str| {
        assert!(
            names.iter().any(|g| g == n),
            "{n} not in ice-stat-names.txt"
        );
        family_of(n)
    };
    assert_eq!(
        find("link_xoff_rx.nic"),
        Some((
            "rdma_netdev_global_pause_xoff_frames_total",
            vec![("direction", "rx".into())],
            Count
        ))
    );
    assert_eq!(
        find("link_xoff_tx.nic").unwrap().1,
        vec![("direction", "tx".to_string())]
    );
    assert_eq!(
        find("rx_crc_errors.nic"),
        Some((
            "rdma_netdev_phy_errors_total",
            vec![("kind", "crc".into()), ("stat", "rx_crc_errors.nic".into())],
            Count
        ))
    );
    assert_eq!(find("link_xon_rx.nic"), None);
    // A CRC error of each vendor lands in the PHY family as kind crc.
    for n in [
        "rx_crc_errors_phy",
        "rx_fcs_err_frames",
        "rx_crc_errors.nic",
    ] {
        let (metric, labels, _) = family_of(n).unwrap();
        assert_eq!(metric, "rdma_netdev_phy_errors_total", "{n}");
        assert!(labels.contains(&("kind", "crc".into())), "{n}");
    }
}

/// One name (or pattern) is known once over every ethtool table, and every
/// pattern has the label its `{N}` fills.
#[test]
fn ethtool_tables_are_consistent() {
    let mut seen = std::collections::BTreeSet::new();
    for s in ethtool::all() {
        assert!(seen.insert(s.name), "{} twice", s.name);
        assert_eq!(s.name.contains("{N}"), s.index.is_some(), "{}", s.name);
        assert!(
            s.family.is_some()
                || s.same_as.is_some()
                || s.stands_in_for.is_some()
                || !s.findings.is_empty(),
            "{}",
            s.name
        );
        if let Some(f) = s.family {
            assert!(
                f.metric.starts_with("rdma_") && f.metric.ends_with("_total"),
                "{}",
                f.metric
            );
            assert!(f.help.ends_with('.'), "{}", f.metric);
        }
    }
}

/// A transport counter from each RDMA driver lands in its family with the
/// labels that say what it counts.
#[test]
fn transport_names_of_each_driver() {
    for (file, metric, labels) in [
        (
            "roce_adp_retrans",
            "rdma_transport_retransmissions_total",
            &[("kind", "adaptive")][..],
        ),
        (
            "to_retransmits",
            "rdma_transport_retransmissions_total",
            &[("kind", "timeout")],
        ),
        (
            "retrans_pkts",
            "rdma_transport_retransmissions_total",
            &[("kind", "packet")],
        ),
        (
            "tcpRetransSegs",
            "rdma_transport_retransmissions_total",
            &[("kind", "tcp_segment")],
        ),
        (
            "RetransSegs",
            "rdma_transport_retransmissions_total",
            &[("kind", "packet")],
        ),
        (
            "RNR received",
            "rdma_transport_retransmissions_total",
            &[("kind", "rnr_nak")],
        ),
        (
            "local_ack_timeout_err",
            "rdma_transport_timeouts_total",
            &[("kind", "ack")],
        ),
        ("RTO", "rdma_transport_timeouts_total", &[("kind", "ack")]),
        (
            "Nak Sequence Error",
            "rdma_transport_sequence_errors_total",
            &[("kind", "nak")],
        ),
        (
            "Rcvd Out of order packets",
            "rdma_transport_sequence_errors_total",
            &[("kind", "out_of_sequence")],
        ),
        (
            "retrans_timeout_events",
            "rdma_transport_timeouts_total",
            &[("kind", "retransmission")],
        ),
        (
            "out_of_sequence",
            "rdma_transport_sequence_errors_total",
            &[("kind", "out_of_sequence")],
        ),
        (
            "seq_err_naks_rcvd",
            "rdma_transport_sequence_errors_total",
            &[("kind", "nak_received")],
        ),
        (
            "req_cqe_error",
            "rdma_transport_errors_total",
            &[("side", "requester"), ("kind", "cqe")],
        ),
        (
            "res_rx_no_perm",
            "rdma_transport_errors_total",
            &[("side", "responder"), ("kind", "rx_no_permission")],
        ),
        (
            "rdma_read_wr_err",
            "rdma_transport_errors_total",
            &[("side", "requester"), ("kind", "rdma_read_wr")],
        ),
        // hfi1 (Omni-Path): rdmavt's counters under chip.c's names.
        (
            "RcResend",
            "rdma_transport_retransmissions_total",
            &[("kind", "packet")],
        ),
        (
            "RcTimeOut",
            "rdma_transport_timeouts_total",
            &[("kind", "ack")],
        ),
        (
            "RcSeqNak",
            "rdma_transport_sequence_errors_total",
            &[("kind", "out_of_sequence")],
        ),
        (
            "OtherNak",
            "rdma_transport_errors_total",
            &[("side", "requester"), ("kind", "remote_nak")],
        ),
    ] {
        let k = lookup(Source::Hw, file).unwrap_or_else(|| panic!("{file}"));
        assert_eq!(k.scale, 1, "{file}: events, counted as they are");
        assert_eq!(
            (k.metric, k.labels, k.area, k.counter_label),
            (metric, labels, Area::Transport, true),
            "{file}"
        );
    }
}

#[test]
fn findings_read_names_from_here() {
    let files = |f: &str| -> Vec<&str> { used_by(f).map(|k| k.file).collect() };
    assert_eq!(
        files("cnp_rate"),
        ["np_cnp_sent", "rp_cnp_handled", "cnpSent", "cnpHandled"]
    );
    assert_eq!(
        files("out_of_buffer"),
        ["out_of_buffer", "rx_out_of_buffer"]
    );
    let durations: Vec<&str> = ethtool::used_by("pfc_pause_storm")
        .map(|s| s.name)
        .collect();
    assert!(
        durations.contains(&"pfc_pri{N}_rx_duration_us"),
        "{durations:?}"
    );
    assert!(
        durations.contains(&"tx_global_pause_duration"),
        "{durations:?}"
    );
}

/// The driver's own names (fixtures/hw_counters/, from each driver's source).
fn hw_names(driver: &str) -> Vec<String> {
    std::fs::read_to_string(format!(
        "{}/fixtures/hw_counters/{driver}.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

/// Every driver counter the catalog names is a name some driver's source
/// gives (a typo here would never match a file), and each driver's
/// retransmission-type counters reach the transport families.
#[test]
fn catalog_hw_names_come_from_the_drivers() {
    // Each table against its own driver's list: a name of another driver
    // in a table would be looked up on the wrong hardware.
    for (table, driver) in [
        (mlx5::KNOWN, "mlx5"),
        (bnxt::KNOWN, "bnxt_re"),
        (efa::KNOWN, "efa"),
        (irdma::KNOWN, "irdma"),
        (rxe::KNOWN, "rxe"),
        (hfi1::KNOWN, "hfi1"),
    ] {
        let mut own = hw_names(driver);
        // irdma's names before and since the GEN3 series (6.16).
        if driver == "irdma" {
            own.extend(hw_names("irdma-6.16"));
        }
        for k in table.iter().filter(|k| k.source == Source::Hw) {
            assert!(
                own.iter().any(|n| n == k.file),
                "{} is not in {driver}.txt",
                k.file
            );
        }
    }
    // Every table with driver counters is one of those above.
    let checked = 6;
    let with_hw = HW_TABLES
        .iter()
        .filter(|t| t.iter().any(|k| k.source == Source::Hw))
        .count();
    assert_eq!(
        with_hw, checked,
        "a driver table is not checked against its list"
    );
    let transport = |d: &str| {
        hw_names(d)
            .into_iter()
            .filter(|n| lookup(Source::Hw, n).is_some_and(|k| k.area == Area::Transport))
            .count()
    };
    assert_eq!(transport("mlx5"), 20);
    // mlx5's transport counters as counters.c names them (retrans_q_cnts,
    // out_of_seq_q_cnts, extended_err_cnts, roce_accl_cnts), written out
    // here rather than read from the fixture, so a name missing from both
    // the fixture and the catalog still fails.
    for n in [
        "duplicate_request",
        "rnr_nak_retry_err",
        "packet_seq_err",
        "implied_nak_seq_err",
        "local_ack_timeout_err",
        "out_of_sequence",
        "req_cqe_error",
        "req_cqe_flush_error",
        "req_remote_access_errors",
        "req_remote_invalid_request",
        "req_transport_retries_exceeded",
        "req_rnr_retries_exceeded",
        "resp_cqe_error",
        "resp_cqe_flush_error",
        "resp_local_length_error",
        "resp_remote_access_errors",
        "roce_adp_retrans",
        "roce_adp_retrans_to",
        "roce_slow_restart",
        "roce_slow_restart_trans",
    ] {
        assert!(
            hw_names("mlx5").iter().any(|h| h == n),
            "{n} not in mlx5.txt"
        );
        assert!(
            lookup(Source::Hw, n).is_some_and(|k| k.area == Area::Transport),
            "{n} is not curated as transport"
        );
    }
    let retry = lookup(Source::Hw, "req_transport_retries_exceeded").unwrap();
    assert!(
        retry.labels.contains(&("kind", "retry_exceeded")),
        "{:?}",
        retry.labels
    );
    assert_eq!(transport("bnxt_re"), 39);
    assert_eq!(transport("efa"), 4);
    // irdma before 6.16: tcpRetransSegs. Since: its new name and GEN3's
    // RNR received, RTO, the two NAK sequence errors and out-of-order packets.
    assert_eq!(transport("irdma"), 1);
    assert_eq!(transport("irdma-6.16"), 6);
    // The rename keeps the family and the finding; the new name, GEN3's
    // too (RoCE only: IRDMA_ROCE_PROTOCOL_ONLY), is no TCP segment.
    let (o, n) = (
        lookup(Source::Hw, "tcpRetransSegs").unwrap(),
        lookup(Source::Hw, "RetransSegs").unwrap(),
    );
    assert_eq!((o.metric, o.findings), (n.metric, n.findings));
    assert_eq!(o.labels, &[("kind", "tcp_segment")]);
    assert_eq!(n.labels, &[("kind", "packet")]);
    // Six of its own, and duplicate_request with mlx5's name.
    assert_eq!(transport("rxe"), 7);
    // rdmavt's RC counters; the hardware (Tx*, Rx*) ones stay generic.
    assert_eq!(transport("hfi1"), 8);
    // Slow restart is a family of its own (kernel commit d7fab916374c gives
    // the meanings), not retransmissions; the CNPs it generated are packets,
    // in a congestion family of their own, not among the events.
    for (n, kind) in [
        ("roce_slow_restart", "used"),
        ("roce_slow_restart_trans", "entered"),
    ] {
        let k = lookup(Source::Hw, n).unwrap();
        assert_eq!(k.metric, "rdma_transport_slow_restart_events_total", "{n}");
        assert_eq!(k.labels, &[("kind", kind)][..], "{n}");
    }
    let cnps = lookup(Source::Hw, "roce_slow_restart_cnps").unwrap();
    assert_eq!(
        (cnps.area, cnps.metric),
        (Area::Congestion, "rdma_congestion_slow_restart_cnps_total")
    );
    // irdma's volume sums: each part is one of irdma's own names, and the
    // four PMA volume fields are each covered once.
    // Both namings (before and since 6.16) have every part.
    for list in ["irdma", "irdma-6.16"] {
        let irdma = hw_names(list);
        for s in irdma::SUMS {
            assert_eq!(s.parts.len(), 2, "{s:?}");
            for p in s.parts {
                assert!(irdma.iter().any(|n| n == p), "{p} is not in {list}.txt");
            }
        }
    }
    let mut covered: Vec<_> = super::sums().map(|s| s.stands_in_for).collect();
    covered.sort_unstable();
    assert_eq!(
        covered,
        [
            "port_rcv_data",
            "port_rcv_packets",
            "port_xmit_data",
            "port_xmit_packets"
        ]
    );
    // mlx5's optional volume counters stand in for the PMA's on a port without it.
    let k = known_on_port(Source::Hw, "rdma_tx_bytes", &[]).unwrap();
    assert_eq!((k.metric, k.scale), ("rdma_port_transmit_bytes_total", 1));
}

/// NVIDIA's worked conversions (ibdiagnet manual, "Congestion Assessment on
/// InfiniBand Links") and the IBTA symbol time, as seconds per increment.
#[test]
fn xmit_wait_ticks_as_seconds() {
    use xmit_wait::{WaitClock, seconds_per_tick};
    let c = |device_id, tick, width_active, speed_active, speed_ext_active| WaitClock {
        vendor_id: xmit_wait::VENDOR_MELLANOX,
        device_id,
        tick,
        width_active,
        speed_active,
        speed_ext_active,
    };
    let close = |a: Option<f64>, b: f64| {
        let a = a.expect("a tick length");
        assert!((a - b).abs() < b * 1e-12, "{a} != {b}");
    };
    // Quantum HDR 4x, Tick 7: 8 bytes of a 200 Gb/s port = 0.32 ns.
    close(seconds_per_tick(&c(54000, 7, 2, 0, 4)), 0.32e-9);
    // Quantum-2 NDR 4x: 8 bytes at 400 Gb/s.
    close(seconds_per_tick(&c(54002, 7, 2, 0, 8)), 0.16e-9);
    // Switch-IB EDR 4x, Tick 31: 32 bytes per lane × 4 lanes at 100 Gb/s
    // ("lost bytes = counter × (tick + 1) × lanes") = 10.24 ns.
    close(seconds_per_tick(&c(52000, 31, 2, 0, 2)), 10.24e-9);
    // The IBTA definition at SDR: Tick 0 is one symbol time, 4 ns, any width.
    close(seconds_per_tick(&c(53000, 0, 8, 1, 0)), 4e-9);
    close(seconds_per_tick(&c(53000, 0, 1, 1, 0)), 4e-9);
    // FDR: 14.0625 GBd, 64b/66b.
    close(
        seconds_per_tick(&c(53000, 0, 2, 0, 1)),
        8.0 * 66.0 / (64.0 * 14.0625e9),
    );
    // Unknown ASIC, another vendor, an unknown width or speed: absent. Every
    // ConnectX HCA (ConnectX-4 to ConnectX-8, 0x1013 to 0x1023 as mlx5_core's
    // PCI table and ibstat's "MT4123" name them) stays absent even reporting
    // the Tick of a Quantum: NVIDIA documents how no HCA counts (see
    // catalog::xmit_wait).
    for hca in [4115, 4117, 4119, 4121, 4123, 4125, 4127, 4129, 4131] {
        assert_eq!(seconds_per_tick(&c(hca, 7, 2, 0, 4)), None, "{hca}");
    }
    assert_eq!(
        seconds_per_tick(&WaitClock {
            vendor_id: 0x1175,
            ..c(54000, 7, 2, 0, 4)
        }),
        None
    );
    assert_eq!(seconds_per_tick(&c(54000, 7, 3, 0, 4)), None);
    assert_eq!(seconds_per_tick(&c(54000, 7, 2, 0, 0)), None);
}

/// Every ethtool name a driver's table curates is a name that driver's own
/// list gives (a `{N}` pattern: some index of it): a typo, or a name of
/// another driver, in a table would never match a real `ethtool -S`.
#[test]
fn catalog_ethtool_names_are_in_their_drivers_list() {
    for (table, file) in [
        (mlx5::ETHTOOL, "mlx5-stat-names.txt"),
        (bnxt::ETHTOOL, "bnxt-stat-names.txt"),
        (irdma::ICE_ETHTOOL, "ice-stat-names.txt"),
    ] {
        let list = names(file);
        let missing: Vec<&str> = table
            .iter()
            .map(|s| s.name)
            .filter(|n| {
                let candidates: Vec<String> = if n.contains("{N}") {
                    (0..8).map(|i| n.replace("{N}", &i.to_string())).collect()
                } else {
                    vec![n.to_string()]
                };
                !candidates.iter().any(|c| list.contains(c))
            })
            .collect();
        assert!(missing.is_empty(), "{file} lacks {missing:?}");
    }
}
