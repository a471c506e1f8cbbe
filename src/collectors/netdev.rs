//! The Ethernet side of RoCE ports (and configured extra netdevs): link
//! counters and carrier changes, driver and firmware, offloads, pause and
//! link settings, PFC per priority, discards, ECN switches, and the
//! transceiver's diagnostics against the module's own thresholds. Every
//! ethtool statistic without a dedicated family stays, unmapped, under
//! `rdma_netdev_ethtool_stat`: nothing is dropped.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;
use crate::model::netdev::Thresholds;

pub const REGISTRATION: Registration = Registration {
    name: "netdev",
    reads: &[Input::Netdev],
    factory: |_: &Config| Box::new(Netdev),
};

struct Netdev;

/// rtnl_link_stats64 fields with their own family; the rest go to a labelled one.
const LINK: &[(&str, &str, &str)] = &[
    (
        "rx_bytes",
        "rdma_netdev_receive_bytes_total",
        "Bytes received by the netdev (IFLA_STATS64 rx_bytes).",
    ),
    (
        "tx_bytes",
        "rdma_netdev_transmit_bytes_total",
        "Bytes sent by the netdev (IFLA_STATS64 tx_bytes).",
    ),
    (
        "rx_packets",
        "rdma_netdev_receive_packets_total",
        "Packets received by the netdev (IFLA_STATS64 rx_packets).",
    ),
    (
        "tx_packets",
        "rdma_netdev_transmit_packets_total",
        "Packets sent by the netdev (IFLA_STATS64 tx_packets).",
    ),
    (
        "rx_errors",
        "rdma_netdev_receive_errors_total",
        "Receive errors (IFLA_STATS64 rx_errors).",
    ),
    (
        "tx_errors",
        "rdma_netdev_transmit_errors_total",
        "Transmit errors (IFLA_STATS64 tx_errors).",
    ),
    (
        "rx_dropped",
        "rdma_netdev_receive_dropped_total",
        "Received packets dropped (IFLA_STATS64 rx_dropped).",
    ),
    (
        "tx_dropped",
        "rdma_netdev_transmit_dropped_total",
        "Packets dropped on transmit (IFLA_STATS64 tx_dropped).",
    ),
];

fn thresholds_crossed(
    out: &mut Builder,
    netdev: &str,
    sensor: &str,
    lane: &str,
    value: f64,
    t: Option<Thresholds>,
) {
    if let Some(level) = t.and_then(|t| t.crossed(value)) {
        out.gauge_u64(
            "rdma_transceiver_threshold_crossed",
            "1 while a transceiver reading is past one of the module's own alarm or warning thresholds.",
            &[("netdev", netdev), ("sensor", sensor), ("lane", lane), ("level", level)],
            1,
        );
    }
}

impl Collector for Netdev {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        for nd in cycle.netdevs() {
            let n = nd.name.as_str();
            if let Some(l) = &nd.link {
                for (field, v) in l.stats64.iter() {
                    match LINK.iter().find(|(f, _, _)| *f == field) {
                        Some((_, metric, help)) => out.counter(metric, help, &[("netdev", n)], v),
                        None => out.counter(
                            "rdma_netdev_link_stat_total",
                            "Other IFLA_STATS64 counters of the netdev, by field name (stat label).",
                            &[("netdev", n), ("stat", field)],
                            v,
                        ),
                    }
                }
                if let Some(c) = l.carrier_changes {
                    out.counter(
                        "rdma_netdev_carrier_changes_total",
                        "Carrier changes of the netdev (IFLA_CARRIER_CHANGES): a flapping link counts up by two per flap.",
                        &[("netdev", n)],
                        c.into(),
                    );
                }
                if let Some(c) = l.carrier_down_count {
                    out.counter(
                        "rdma_netdev_carrier_down_total",
                        "Times the carrier went down (IFLA_CARRIER_DOWN_COUNT).",
                        &[("netdev", n)],
                        c.into(),
                    );
                }
                if let Some(s) = l.operstate {
                    out.gauge_u64(
                        "rdma_netdev_up",
                        "1 when the netdev's operational state is UP (IF_OPER_UP).",
                        &[("netdev", n)],
                        u64::from(s == 6),
                    );
                }
                if let Some(m) = l.mtu {
                    out.gauge_u64(
                        "rdma_netdev_mtu_bytes",
                        "MTU of the netdev.",
                        &[("netdev", n)],
                        m.into(),
                    );
                }
            }
            for c in &nd.ethtool_stats {
                if !super::ethtool_stats::export(out, n, c) {
                    out.gauge_u64(
                        "rdma_netdev_ethtool_stat",
                        "Every other ethtool statistic (ethtool -S), by the driver's name; whether it is a counter is the driver's to say.",
                        &[("netdev", n), ("stat", &c.name)],
                        c.value,
                    );
                }
            }
            if let Some(e) = &nd.ethtool_nl {
                for (dir, v) in [("tx", e.pause_tx_frames), ("rx", e.pause_rx_frames)] {
                    if let Some(v) = v {
                        out.counter(
                            "rdma_netdev_pause_frames_total",
                            "Link-level pause frames (ethtool netlink pause statistics, ethtool -I -a).",
                            &[("netdev", n), ("direction", dir)],
                            v,
                        );
                    }
                }
                // The kernel's total, and each lane apart in its own family:
                // summing a family must never count a block twice.
                for (total, lanes, name, lane_name, help, lane_help) in [
                    (
                        e.fec_corrected,
                        &e.fec_corrected_lanes,
                        "rdma_netdev_fec_corrected_blocks_total",
                        "rdma_netdev_fec_lane_corrected_blocks_total",
                        "FEC blocks corrected (ethtool netlink FEC statistics, ethtool -I --show-fec).",
                        "FEC blocks corrected per lane, where the driver counts lanes.",
                    ),
                    (
                        e.fec_uncorrectable,
                        &e.fec_uncorrectable_lanes,
                        "rdma_netdev_fec_uncorrectable_blocks_total",
                        "rdma_netdev_fec_lane_uncorrectable_blocks_total",
                        "FEC blocks that could not be corrected (ethtool netlink FEC statistics).",
                        "FEC blocks that could not be corrected per lane, where the driver counts lanes.",
                    ),
                    (
                        e.fec_corrected_bits,
                        &e.fec_corrected_bits_lanes,
                        "rdma_netdev_fec_corrected_bits_total",
                        "rdma_netdev_fec_lane_corrected_bits_total",
                        "Bits FEC corrected (ethtool netlink FEC statistics).",
                        "Bits FEC corrected per lane, where the driver counts lanes.",
                    ),
                ] {
                    if let Some(v) = total {
                        out.counter(name, help, &[("netdev", n)], v);
                    }
                    for (lane, v) in lanes.iter().enumerate() {
                        out.counter(
                            lane_name,
                            lane_help,
                            &[("netdev", n), ("lane", &lane.to_string())],
                            *v,
                        );
                    }
                }
                if let Some(v) = e.link_down_events {
                    out.counter(
                        "rdma_netdev_link_down_events_total",
                        "Link-down events the driver counted (ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT).",
                        &[("netdev", n)],
                        v,
                    );
                }
            }
            let i = &nd.info;
            if let Some(d) = &i.dcb {
                if let Some(en) = d.pfc_enabled {
                    for prio in 0..8u8 {
                        let p = prio.to_string();
                        out.gauge_u64(
                            "rdma_pfc_enabled",
                            "1 when PFC is enabled on the priority (dcbnl IEEE PFC, as dcb pfc show / mlnx_qos).",
                            &[("netdev", n), ("priority", &p)],
                            u64::from(en >> prio & 1),
                        );
                    }
                }
                for (prio, tc) in d.prio_tc.iter().enumerate() {
                    out.gauge_u64(
                        "rdma_dcb_priority_traffic_class",
                        "Traffic class each priority maps to (dcbnl IEEE ETS prio_tc).",
                        &[("netdev", n), ("priority", &prio.to_string())],
                        (*tc).into(),
                    );
                }
                for (tc, bw) in d.tc_bw.iter().enumerate() {
                    out.gauge_u64(
                        "rdma_dcb_traffic_class_bandwidth_percent",
                        "ETS bandwidth share of each traffic class.",
                        &[("netdev", n), ("tc", &tc.to_string())],
                        (*bw).into(),
                    );
                }
                for (metric, help, values) in [
                    (
                        "rdma_dcb_pfc_requests_total",
                        "PFC frames sent per priority, as dcbnl reports them (requests).",
                        &d.pfc_requests,
                    ),
                    (
                        "rdma_dcb_pfc_indications_total",
                        "PFC frames received per priority, as dcbnl reports them (indications).",
                        &d.pfc_indications,
                    ),
                ] {
                    for (prio, v) in values.iter().enumerate() {
                        out.counter(
                            metric,
                            help,
                            &[("netdev", n), ("priority", &prio.to_string())],
                            *v,
                        );
                    }
                }
                out.gauge_u64(
                    "rdma_dcb_dscp_trust",
                    "1 when the port trusts DSCP (DSCP entries in the dcbnl APP table), 0 for PCP.",
                    &[("netdev", n)],
                    d.dscp_trust.into(),
                );
            }
            if let Some(dl) = &i.devlink {
                // `device` is only ever an RDMA device: the devlink handle
                // is `devlink` (bus/name, as `devlink dev info` prints it),
                // its PCI address `pci`.
                let handle = format!("{}/{}", dl.bus, dl.device);
                let pci = if dl.bus == "pci" { &*dl.device } else { "" };
                out.gauge_u64(
                    "rdma_devlink_info",
                    "devlink dev info of the netdev's device: driver and serial (value is always 1).",
                    &[("netdev", n), ("devlink", &handle), ("pci", pci), ("driver", dl.driver.as_deref().unwrap_or("")), ("serial", dl.serial.as_deref().unwrap_or(""))],
                    1,
                );
                for (kind, name, value) in &dl.versions {
                    out.gauge_u64(
                        "rdma_devlink_version_info",
                        "A version of the device (devlink dev info): fixed (board, PSID), running and stored (firmware waiting for a reset).",
                        &[("netdev", n), ("kind", kind), ("name", name), ("value", value)],
                        1,
                    );
                }
            }
            if let Some(d) = &i.drvinfo {
                out.gauge_u64(
                    "rdma_netdev_info",
                    "Driver, driver version, firmware and bus of the netdev (ethtool -i; value is always 1).",
                    &[("netdev", n), ("driver", &d.driver), ("driver_version", &d.version), ("firmware", &d.fw_version), ("bus_info", &d.bus_info)],
                    1,
                );
            }
            for f in i.features.iter().filter(|f| f.available || f.active) {
                out.gauge_u64(
                    "rdma_netdev_feature_enabled",
                    "1 when the offload or feature is on (ethtool -k); fixed=\"true\" when it cannot be changed.",
                    &[("netdev", n), ("feature", &f.name), ("fixed", if f.fixed { "true" } else { "false" })],
                    f.active.into(),
                );
            }
            if let Some(p) = i.pause {
                for (dir, on) in [("rx", p.rx), ("tx", p.tx)] {
                    out.gauge_u64(
                        "rdma_netdev_pause_enabled",
                        "1 when link-level (global) pause is on in that direction (ethtool -a).",
                        &[("netdev", n), ("direction", dir)],
                        on.into(),
                    );
                }
            }
            if let Some(speed) = i.link_settings.and_then(|l| l.speed_mbps) {
                out.gauge(
                    "rdma_netdev_speed_bytes_per_second",
                    "Negotiated Ethernet speed of the netdev (ethtool link settings).",
                    &[("netdev", n)],
                    f64::from(speed) * 1e6 / 8.0,
                );
            }
            for (role, prio, on) in &i.ecn {
                let p = prio.to_string();
                out.gauge_u64(
                    "rdma_ecn_enabled",
                    "1 when RoCE ECN is on for the priority, as notification point (np) or reaction point (rp) (mlx5 /sys/class/net/<if>/ecn).",
                    &[("netdev", n), ("role", role), ("priority", &p)],
                    (*on).into(),
                );
            }
            if let Some(m) = &i.module {
                out.gauge_u64(
                    "rdma_transceiver_info",
                    "The transceiver in the netdev's cage (value is always 1).",
                    &[
                        ("netdev", n),
                        ("identifier", m.identifier_name),
                        ("vendor", &m.vendor),
                        ("part_number", &m.part_number),
                        ("serial", &m.serial),
                        ("revision", &m.revision),
                    ],
                    1,
                );
                if let Some(t) = m.temperature_celsius {
                    out.gauge(
                        "rdma_transceiver_temperature_celsius",
                        "Module temperature.",
                        &[("netdev", n)],
                        t,
                    );
                    thresholds_crossed(out, n, "temperature", "", t, m.temperature_thresholds);
                }
                if let Some(v) = m.supply_voltage_volts {
                    out.gauge(
                        "rdma_transceiver_supply_voltage_volts",
                        "Module supply voltage.",
                        &[("netdev", n)],
                        v,
                    );
                    thresholds_crossed(out, n, "voltage", "", v, m.voltage_thresholds);
                }
                let lanes = [
                    (
                        "rdma_transceiver_tx_bias_amperes",
                        "Laser bias current per lane.",
                        "tx_bias",
                        &m.tx_bias_amperes,
                        m.tx_bias_thresholds,
                    ),
                    (
                        "rdma_transceiver_tx_power_watts",
                        "Transmit optical power per lane.",
                        "tx_power",
                        &m.tx_power_watts,
                        m.tx_power_thresholds,
                    ),
                    (
                        "rdma_transceiver_rx_power_watts",
                        "Receive optical power per lane.",
                        "rx_power",
                        &m.rx_power_watts,
                        m.rx_power_thresholds,
                    ),
                ];
                for (metric, help, sensor, values, th) in lanes {
                    for (lane, v) in values.iter().enumerate() {
                        let l = (lane + 1).to_string();
                        out.gauge(metric, help, &[("netdev", n), ("lane", &l)], *v);
                        thresholds_crossed(out, n, sensor, &l, *v, th);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Value;
    use crate::model::NodeReading;
    use crate::model::netdev::EthtoolNl;
    use crate::model::netdev::NetdevReading;

    /// FEC: the kernel's total under the netdev, each lane in a family of its
    /// own; a statistic the driver does not count is not exported.
    #[test]
    fn fec_total_and_lanes() {
        let mut node = NodeReading::default();
        node.netdevs.push(NetdevReading {
            name: "eth2".into(),
            link: None,
            ethtool_stats: Vec::new(),
            ethtool_nl: Some(EthtoolNl {
                fec_corrected: Some(100),
                fec_corrected_lanes: vec![10, 20, 30, 40],
                fec_uncorrectable: Some(7),
                ..EthtoolNl::default()
            }),
            info: Default::default(),
            errors: Vec::new(),
        });
        let snapshot = super::super::test_snapshot(&node);
        let cycle = Cycle {
            node: &node,
            mode: crate::config::NetworkMode::Auto,
            mad: None,
            attribution: None,
            snapshot: &snapshot,
            findings: &[],
            known: Default::default(),
        };
        let mut b = Builder::new();
        Netdev.collect(&cycle, &mut b).unwrap();
        let set = b.finish();
        let eth2 = [("netdev", "eth2")];
        let get = |name: &str, labels: &[(&str, &str)]| set.get(name, labels);
        assert_eq!(
            get("rdma_netdev_fec_corrected_blocks_total", &eth2),
            Some(Value::U64(100))
        );
        assert_eq!(
            get(
                "rdma_netdev_fec_lane_corrected_blocks_total",
                &[("netdev", "eth2"), ("lane", "3")]
            ),
            Some(Value::U64(40))
        );
        assert_eq!(
            get("rdma_netdev_fec_uncorrectable_blocks_total", &eth2),
            Some(Value::U64(7))
        );
        assert_eq!(get("rdma_netdev_fec_corrected_bits_total", &eth2), None);
    }
}
