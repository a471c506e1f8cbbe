//! Counters the agent knows by name: which area exports them, under which
//! metric, in which unit, and where they saturate. Everything not listed is
//! still exported, under the generic per-source families of the performance
//! collector: nothing is dropped.

use std::sync::OnceLock;

/// Where a counter was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `ports/N/counters/`: the IBTA PortCounters / PortCountersExtended set.
    Pma,
    /// `hw_counters/`: driver counters.
    Hw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Performance,
    LinkStatus,
    Congestion,
}

#[derive(Debug)]
pub struct Known {
    pub source: Source,
    pub file: &'static str,
    pub area: Area,
    pub metric: &'static str,
    pub help: &'static str,
    /// Multiplier to the metric's base unit: IB data counters count 4-byte words.
    pub scale: u64,
    /// Raw values at which the counter stops (IBTA PortCounters fields saturate, they don't wrap).
    pub saturates_at: &'static [u64],
    /// The family for the same counter of a port elsewhere on the fabric (PMA counters only).
    pub fabric_metric: Option<&'static str>,
    /// A driver counter that carries a PMA counter's meaning on ports that have
    /// no PMA (EFA, bnxt_re): exported under that family only when the port
    /// lacks this PMA file, else it stays in the generic driver family.
    pub stands_in_for: Option<&'static str>,
}

const U4: u64 = 0xf;
const U8: u64 = 0xff;
const U16: u64 = 0xffff;
const U32: u64 = 0xffff_ffff;
const U64: u64 = u64::MAX;
/// 32 bits in PortCounters, 64 in PortCountersExtended: the kernel uses whichever the port has.
const DATA: &[u64] = &[U32, U64];

/// Saturation values for a counter the catalog doesn't know.
pub const UNKNOWN_SATURATION: &[u64] = &[U32, U64];

macro_rules! known {
    (Pma, $file:literal, $area:ident, $suffix:literal, $scale:literal, $sat:expr, $help:literal) => {
        Known {
            source: Source::Pma,
            file: $file,
            area: Area::$area,
            metric: concat!("rdma_port_", $suffix),
            help: $help,
            scale: $scale,
            saturates_at: $sat,
            fabric_metric: Some(concat!("rdma_fabric_port_", $suffix)),
            stands_in_for: None,
        }
    };
    (Hw, $file:literal, $area:ident, $metric:literal, $scale:literal, $sat:expr, $help:literal) => {
        Known {
            source: Source::Hw,
            file: $file,
            area: Area::$area,
            metric: $metric,
            help: $help,
            scale: $scale,
            saturates_at: $sat,
            fabric_metric: None,
            stands_in_for: None,
        }
    };
    (Hw, $file:literal, for $pma:literal, $metric:literal, $help:literal) => {
        Known {
            source: Source::Hw,
            file: $file,
            area: Area::Performance,
            metric: $metric,
            help: $help,
            scale: 1,
            saturates_at: &[U64],
            fabric_metric: None,
            stands_in_for: Some($pma),
        }
    };
}

pub const KNOWN: &[Known] = &[
    // PortCounters(Extended), IBTA vol. 1 §16.1.3.5 / §16.1.4.11.
    known!(
        Pma,
        "port_xmit_data",
        Performance,
        "transmit_bytes_total",
        4,
        DATA,
        "Data octets transmitted on the port: PortXmitData (4-byte words, exported in bytes), or on ports without PMA counters the driver's tx_bytes (EFA, bnxt_re)."
    ),
    known!(
        Pma,
        "port_rcv_data",
        Performance,
        "receive_bytes_total",
        4,
        DATA,
        "Data octets received on the port: PortRcvData (4-byte words, exported in bytes), or on ports without PMA counters the driver's rx_bytes (EFA, bnxt_re)."
    ),
    known!(
        Pma,
        "port_xmit_packets",
        Performance,
        "transmit_packets_total",
        1,
        DATA,
        "Packets transmitted on the port: PortXmitPkts, or on ports without PMA counters the driver's tx_pkts (EFA, bnxt_re)."
    ),
    known!(
        Pma,
        "port_rcv_packets",
        Performance,
        "receive_packets_total",
        1,
        DATA,
        "Packets received on the port: PortRcvPkts, or on ports without PMA counters the driver's rx_pkts (EFA, bnxt_re)."
    ),
    known!(
        Pma,
        "unicast_xmit_packets",
        Performance,
        "unicast_transmit_packets_total",
        1,
        DATA,
        "Unicast packets transmitted (PortUnicastXmitPkts)."
    ),
    known!(
        Pma,
        "unicast_rcv_packets",
        Performance,
        "unicast_receive_packets_total",
        1,
        DATA,
        "Unicast packets received (PortUnicastRcvPkts)."
    ),
    known!(
        Pma,
        "multicast_xmit_packets",
        Performance,
        "multicast_transmit_packets_total",
        1,
        DATA,
        "Multicast packets transmitted (PortMulticastXmitPkts)."
    ),
    known!(
        Pma,
        "multicast_rcv_packets",
        Performance,
        "multicast_receive_packets_total",
        1,
        DATA,
        "Multicast packets received (PortMulticastRcvPkts)."
    ),
    known!(
        Pma,
        "symbol_error",
        LinkStatus,
        "symbol_errors_total",
        1,
        &[U16],
        "Minor link errors detected on a physical lane (SymbolErrorCounter, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "link_error_recovery",
        LinkStatus,
        "link_error_recovery_total",
        1,
        &[U8],
        "Successful link error recovery processes (LinkErrorRecoveryCounter, 8-bit, saturates)."
    ),
    known!(
        Pma,
        "link_downed",
        LinkStatus,
        "link_downed_total",
        1,
        &[U8],
        "Times the link error recovery failed and the link went down (LinkDownedCounter, 8-bit, saturates)."
    ),
    known!(
        Pma,
        "local_link_integrity_errors",
        LinkStatus,
        "local_link_integrity_errors_total",
        1,
        &[U4],
        "Times local physical errors exceeded the threshold (LocalLinkIntegrityErrors, 4-bit, saturates)."
    ),
    known!(
        Pma,
        "port_rcv_errors",
        LinkStatus,
        "receive_errors_total",
        1,
        &[U16],
        "Packets received with errors (PortRcvErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_rcv_remote_physical_errors",
        LinkStatus,
        "receive_remote_physical_errors_total",
        1,
        &[U16],
        "Packets received marked with the EBP delimiter (PortRcvRemotePhysicalErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_rcv_switch_relay_errors",
        LinkStatus,
        "receive_switch_relay_errors_total",
        1,
        &[U16],
        "Packets discarded because they could not be forwarded (PortRcvSwitchRelayErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_rcv_constraint_errors",
        LinkStatus,
        "receive_constraint_errors_total",
        1,
        &[U8],
        "Packets discarded by inbound partition or raw enforcement (PortRcvConstraintErrors, 8-bit, saturates)."
    ),
    known!(
        Pma,
        "port_xmit_constraint_errors",
        LinkStatus,
        "transmit_constraint_errors_total",
        1,
        &[U8],
        "Packets not sent due to outbound partition or raw enforcement (PortXmitConstraintErrors, 8-bit, saturates)."
    ),
    known!(
        Pma,
        "VL15_dropped",
        LinkStatus,
        "vl15_dropped_total",
        1,
        &[U16],
        "Subnet management packets dropped for lack of buffers (VL15Dropped, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_xmit_discards",
        Congestion,
        "transmit_discards_total",
        1,
        &[U16],
        "Outbound packets discarded because the port was down or congested (PortXmitDiscards, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_xmit_wait",
        Congestion,
        "transmit_wait_total",
        1,
        &[U32, U64],
        "Ticks during which the port had data to send but no flow-control credits (PortXmitWait)."
    ),
    known!(
        Pma,
        "excessive_buffer_overrun_errors",
        Congestion,
        "excessive_buffer_overrun_errors_total",
        1,
        &[U4],
        "Times consecutive flow-control update periods had buffer overruns (ExcessiveBufferOverrunErrors, 4-bit, saturates)."
    ),
    // PortRcvErrorDetails / PortXmitDiscardDetails (IBTA vol. 1 §16.1.4.2-3), read by MAD when asked.
    known!(
        Pma,
        "port_local_physical_errors",
        LinkStatus,
        "local_physical_errors_total",
        1,
        &[U16],
        "Packets received with physical errors: ICRC, VCRC, FCCRC (PortLocalPhysicalErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_malformed_packet_errors",
        LinkStatus,
        "malformed_packet_errors_total",
        1,
        &[U16],
        "Malformed packets received (PortMalformedPacketErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_buffer_overrun_errors",
        Congestion,
        "buffer_overrun_errors_total",
        1,
        &[U16],
        "Packets dropped for receive buffer overrun (PortBufferOverrunErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_dlid_mapping_errors",
        LinkStatus,
        "dlid_mapping_errors_total",
        1,
        &[U16],
        "Packets dropped because the DLID could not be mapped (PortDLIDMappingErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_vl_mapping_errors",
        LinkStatus,
        "vl_mapping_errors_total",
        1,
        &[U16],
        "Packets dropped because the VL could not be mapped (PortVLMappingErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_looping_errors",
        LinkStatus,
        "looping_errors_total",
        1,
        &[U16],
        "Packets dropped because they would loop back out the port (PortLoopingErrors, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_inactive_discards",
        Congestion,
        "inactive_discards_total",
        1,
        &[U16],
        "Outbound packets discarded because the port was not active (PortInactiveDiscards, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_neighbor_mtu_discards",
        Congestion,
        "neighbor_mtu_discards_total",
        1,
        &[U16],
        "Outbound packets discarded for exceeding the neighbor MTU (PortNeighborMTUDiscards, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_sw_lifetime_limit_discards",
        Congestion,
        "switch_lifetime_limit_discards_total",
        1,
        &[U16],
        "Packets discarded for exceeding the switch lifetime limit (PortSwLifetimeLimitDiscards, 16-bit, saturates)."
    ),
    known!(
        Pma,
        "port_sw_hoq_lifetime_limit_discards",
        Congestion,
        "switch_hoq_lifetime_limit_discards_total",
        1,
        &[U16],
        "Packets discarded for exceeding the head-of-queue lifetime (PortSwHOQLifetimeLimitDiscards, 16-bit, saturates)."
    ),
    // Port volume from drivers without a PMA: EFA (efa_verbs.c, EFA_DEFINE_PORT_STATS:
    // tx_bytes, tx_pkts, rx_bytes, rx_pkts, 64-bit from the device's basic stats)
    // and bnxt_re (hw_counters.c: the same names, RoCE unicast bytes and packets).
    known!(
        Hw,
        "tx_bytes",
        for "port_xmit_data",
        "rdma_port_transmit_bytes_total",
        "Data octets transmitted on the port: PortXmitData (4-byte words, exported in bytes), or on ports without PMA counters the driver's tx_bytes (EFA, bnxt_re)."
    ),
    known!(
        Hw,
        "rx_bytes",
        for "port_rcv_data",
        "rdma_port_receive_bytes_total",
        "Data octets received on the port: PortRcvData (4-byte words, exported in bytes), or on ports without PMA counters the driver's rx_bytes (EFA, bnxt_re)."
    ),
    known!(
        Hw,
        "tx_pkts",
        for "port_xmit_packets",
        "rdma_port_transmit_packets_total",
        "Packets transmitted on the port: PortXmitPkts, or on ports without PMA counters the driver's tx_pkts (EFA, bnxt_re)."
    ),
    known!(
        Hw,
        "rx_pkts",
        for "port_rcv_packets",
        "rdma_port_receive_packets_total",
        "Packets received on the port: PortRcvPkts, or on ports without PMA counters the driver's rx_pkts (EFA, bnxt_re)."
    ),
    // Driver counters for RoCE congestion control (mlx5 counters.c, irdma verbs.c).
    known!(
        Hw,
        "np_cnp_sent",
        Congestion,
        "rdma_congestion_cnp_sent_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets sent by the notification point (mlx5 np_cnp_sent, irdma cnpSent)."
    ),
    known!(
        Hw,
        "cnpSent",
        Congestion,
        "rdma_congestion_cnp_sent_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets sent by the notification point (mlx5 np_cnp_sent, irdma cnpSent)."
    ),
    known!(
        Hw,
        "rp_cnp_handled",
        Congestion,
        "rdma_congestion_cnp_handled_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets handled by the reaction point (mlx5 rp_cnp_handled, irdma cnpHandled)."
    ),
    known!(
        Hw,
        "cnpHandled",
        Congestion,
        "rdma_congestion_cnp_handled_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets handled by the reaction point (mlx5 rp_cnp_handled, irdma cnpHandled)."
    ),
    known!(
        Hw,
        "rp_cnp_ignored",
        Congestion,
        "rdma_congestion_cnp_ignored_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets received and ignored by the reaction point (mlx5 rp_cnp_ignored, irdma cnpIgnored)."
    ),
    known!(
        Hw,
        "cnpIgnored",
        Congestion,
        "rdma_congestion_cnp_ignored_total",
        1,
        UNKNOWN_SATURATION,
        "Congestion notification packets received and ignored by the reaction point (mlx5 rp_cnp_ignored, irdma cnpIgnored)."
    ),
    known!(
        Hw,
        "np_ecn_marked_roce_packets",
        Congestion,
        "rdma_congestion_ecn_marked_packets_total",
        1,
        UNKNOWN_SATURATION,
        "RoCE packets received with the ECN congestion-experienced mark (mlx5 np_ecn_marked_roce_packets, irdma RxECNMrkd)."
    ),
    known!(
        Hw,
        "RxECNMrkd",
        Congestion,
        "rdma_congestion_ecn_marked_packets_total",
        1,
        UNKNOWN_SATURATION,
        "RoCE packets received with the ECN congestion-experienced mark (mlx5 np_ecn_marked_roce_packets, irdma RxECNMrkd)."
    ),
    known!(
        Hw,
        "out_of_buffer",
        Congestion,
        "rdma_congestion_out_of_buffer_total",
        1,
        UNKNOWN_SATURATION,
        "Packets dropped because no receive WQE was posted (mlx5 out_of_buffer)."
    ),
];

/// The catalog entry for a counter file, if the agent knows it.
pub fn lookup(source: Source, file: &str) -> Option<&'static Known> {
    // Fx, not SipHash: every counter of every port is looked up each cycle,
    // and the keys are our own names, not attacker-chosen.
    static INDEX: OnceLock<rustc_hash::FxHashMap<(Source, &'static str), &'static Known>> =
        OnceLock::new();
    INDEX
        .get_or_init(|| KNOWN.iter().map(|k| ((k.source, k.file), k)).collect())
        .get(&(source, file))
        .copied()
}

/// The catalog entry a port's counter is exported under, if any: a stand-in
/// driver counter counts only on a port that lacks the PMA counter it stands
/// in for (else the same family would get the port twice).
pub fn known_on_port(
    source: Source,
    file: &str,
    pma: &[crate::model::Counter],
) -> Option<&'static Known> {
    lookup(source, file).filter(|k| {
        k.stands_in_for
            .is_none_or(|f| !pma.iter().any(|c| &*c.name == f))
    })
}

/// Values at which `file` from `source` saturates.
pub fn saturation(source: Source, file: &str) -> &'static [u64] {
    lookup(source, file).map_or(UNKNOWN_SATURATION, |k| k.saturates_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        for k in KNOWN {
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
        let mut keys: Vec<_> = KNOWN.iter().map(|k| (k.source, k.file)).collect();
        keys.sort_by_key(|(s, f)| (*s as u8, *f));
        keys.dedup();
        assert_eq!(keys.len(), KNOWN.len());
        // Aliases of one metric share its help text (Prometheus keeps one HELP per family).
        for a in KNOWN {
            for b in KNOWN.iter().filter(|b| b.metric == a.metric) {
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
}
