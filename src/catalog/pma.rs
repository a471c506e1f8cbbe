//! IBTA PortCounters and PortCountersExtended (IBTA vol. 1 §16.1.3.5 /
//! §16.1.4.11), read from `ports/N/counters/` or by MAD, and the
//! PortRcvErrorDetails / PortXmitDiscardDetails fields (§16.1.4.2-3).

use super::{DATA, Known, U4, U8, U16, U32, U64, known};

/// Help of the volume families, shared with the driver counters that stand in for them.
pub(crate) const XMIT_DATA: &str = "Data octets transmitted on the port: PortXmitData (4-byte words, exported in bytes), or on ports without PMA counters driver counters (EFA and bnxt_re tx_bytes, mlx5's optional rdma_tx_bytes, irdma ip4OutOctets + ip6OutOctets; rdma_port_volume_origin says which).";
pub(crate) const RCV_DATA: &str = "Data octets received on the port: PortRcvData (4-byte words, exported in bytes), or on ports without PMA counters driver counters (EFA and bnxt_re rx_bytes, mlx5's optional rdma_rx_bytes, irdma ip4InOctets + ip6InOctets; rdma_port_volume_origin says which).";
pub(crate) const XMIT_PACKETS: &str = "Packets transmitted on the port: PortXmitPkts, or on ports without PMA counters driver counters (EFA and bnxt_re tx_pkts, mlx5's optional rdma_tx_packets, irdma ip4OutPkts + ip6OutPkts; rdma_port_volume_origin says which).";
pub(crate) const RCV_PACKETS: &str = "Packets received on the port: PortRcvPkts, or on ports without PMA counters driver counters (EFA and bnxt_re rx_pkts, mlx5's optional rdma_rx_packets, irdma ip4InPkts + ip6InPkts; rdma_port_volume_origin says which).";

pub const KNOWN: &[Known] = &[
    // PortCounters(Extended), IBTA vol. 1 §16.1.3.5 / §16.1.4.11.
    known!(
        Pma,
        "port_xmit_data",
        Performance,
        "transmit_bytes_total",
        4,
        DATA,
        XMIT_DATA,
        []
    ),
    known!(
        Pma,
        "port_rcv_data",
        Performance,
        "receive_bytes_total",
        4,
        DATA,
        RCV_DATA,
        []
    ),
    known!(
        Pma,
        "port_xmit_packets",
        Performance,
        "transmit_packets_total",
        1,
        DATA,
        XMIT_PACKETS,
        []
    ),
    known!(
        Pma,
        "port_rcv_packets",
        Performance,
        "receive_packets_total",
        1,
        DATA,
        RCV_PACKETS,
        []
    ),
    known!(
        Pma,
        "unicast_xmit_packets",
        Performance,
        "unicast_transmit_packets_total",
        1,
        DATA,
        "Unicast packets transmitted (PortUnicastXmitPkts).",
        []
    ),
    known!(
        Pma,
        "unicast_rcv_packets",
        Performance,
        "unicast_receive_packets_total",
        1,
        DATA,
        "Unicast packets received (PortUnicastRcvPkts).",
        []
    ),
    known!(
        Pma,
        "multicast_xmit_packets",
        Performance,
        "multicast_transmit_packets_total",
        1,
        DATA,
        "Multicast packets transmitted (PortMulticastXmitPkts).",
        []
    ),
    known!(
        Pma,
        "multicast_rcv_packets",
        Performance,
        "multicast_receive_packets_total",
        1,
        DATA,
        "Multicast packets received (PortMulticastRcvPkts).",
        []
    ),
    known!(
        Pma,
        "symbol_error",
        LinkStatus,
        "symbol_errors_total",
        1,
        &[U16],
        "Minor link errors detected on a physical lane (SymbolErrorCounter, 16-bit, saturates).",
        ["symbol_errors"]
    ),
    known!(
        Pma,
        "link_error_recovery",
        LinkStatus,
        "link_error_recovery_total",
        1,
        &[U8],
        "Successful link error recovery processes (LinkErrorRecoveryCounter, 8-bit, saturates).",
        ["link_error_recovery"]
    ),
    known!(
        Pma,
        "link_downed",
        LinkStatus,
        "link_downed_total",
        1,
        &[U8],
        "Times the link error recovery failed and the link went down (LinkDownedCounter, 8-bit, saturates).",
        ["link_downed", "link_flapping"]
    ),
    known!(
        Pma,
        "local_link_integrity_errors",
        LinkStatus,
        "local_link_integrity_errors_total",
        1,
        &[U4],
        "Times local physical errors exceeded the threshold (LocalLinkIntegrityErrors, 4-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_rcv_errors",
        LinkStatus,
        "receive_errors_total",
        1,
        &[U16],
        "Packets received with errors (PortRcvErrors, 16-bit, saturates).",
        ["receive_errors"]
    ),
    known!(
        Pma,
        "port_rcv_remote_physical_errors",
        LinkStatus,
        "receive_remote_physical_errors_total",
        1,
        &[U16],
        "Packets received marked with the EBP delimiter (PortRcvRemotePhysicalErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_rcv_switch_relay_errors",
        LinkStatus,
        "receive_switch_relay_errors_total",
        1,
        &[U16],
        "Packets discarded because they could not be forwarded (PortRcvSwitchRelayErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_rcv_constraint_errors",
        LinkStatus,
        "receive_constraint_errors_total",
        1,
        &[U8],
        "Packets discarded by inbound partition or raw enforcement (PortRcvConstraintErrors, 8-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_xmit_constraint_errors",
        LinkStatus,
        "transmit_constraint_errors_total",
        1,
        &[U8],
        "Packets not sent due to outbound partition or raw enforcement (PortXmitConstraintErrors, 8-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "VL15_dropped",
        LinkStatus,
        "vl15_dropped_total",
        1,
        &[U16],
        "Subnet management packets dropped for lack of buffers (VL15Dropped, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_xmit_discards",
        Congestion,
        "transmit_discards_total",
        1,
        &[U16],
        "Outbound packets discarded because the port was down or congested (PortXmitDiscards, 16-bit, saturates).",
        ["transmit_discards"]
    ),
    known!(
        Pma,
        "port_xmit_wait",
        Congestion,
        "transmit_wait_total",
        1,
        &[U32, U64],
        "Ticks during which the port had data to send but no flow-control credits (PortXmitWait).",
        ["transmit_wait"]
    ),
    known!(
        Pma,
        "excessive_buffer_overrun_errors",
        Congestion,
        "excessive_buffer_overrun_errors_total",
        1,
        &[U4],
        "Times consecutive flow-control update periods had buffer overruns (ExcessiveBufferOverrunErrors, 4-bit, saturates).",
        []
    ),
    // PortRcvErrorDetails / PortXmitDiscardDetails (IBTA vol. 1 §16.1.4.2-3), read by MAD when asked.
    known!(
        Pma,
        "port_local_physical_errors",
        LinkStatus,
        "local_physical_errors_total",
        1,
        &[U16],
        "Packets received with physical errors: ICRC, VCRC, FCCRC (PortLocalPhysicalErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_malformed_packet_errors",
        LinkStatus,
        "malformed_packet_errors_total",
        1,
        &[U16],
        "Malformed packets received (PortMalformedPacketErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_buffer_overrun_errors",
        Congestion,
        "buffer_overrun_errors_total",
        1,
        &[U16],
        "Packets dropped for receive buffer overrun (PortBufferOverrunErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_dlid_mapping_errors",
        LinkStatus,
        "dlid_mapping_errors_total",
        1,
        &[U16],
        "Packets dropped because the DLID could not be mapped (PortDLIDMappingErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_vl_mapping_errors",
        LinkStatus,
        "vl_mapping_errors_total",
        1,
        &[U16],
        "Packets dropped because the VL could not be mapped (PortVLMappingErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_looping_errors",
        LinkStatus,
        "looping_errors_total",
        1,
        &[U16],
        "Packets dropped because they would loop back out the port (PortLoopingErrors, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_inactive_discards",
        Congestion,
        "inactive_discards_total",
        1,
        &[U16],
        "Outbound packets discarded because the port was not active (PortInactiveDiscards, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_neighbor_mtu_discards",
        Congestion,
        "neighbor_mtu_discards_total",
        1,
        &[U16],
        "Outbound packets discarded for exceeding the neighbor MTU (PortNeighborMTUDiscards, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_sw_lifetime_limit_discards",
        Congestion,
        "switch_lifetime_limit_discards_total",
        1,
        &[U16],
        "Packets discarded for exceeding the switch lifetime limit (PortSwLifetimeLimitDiscards, 16-bit, saturates).",
        []
    ),
    known!(
        Pma,
        "port_sw_hoq_lifetime_limit_discards",
        Congestion,
        "switch_hoq_lifetime_limit_discards_total",
        1,
        &[U16],
        "Packets discarded for exceeding the head-of-queue lifetime (PortSwHOQLifetimeLimitDiscards, 16-bit, saturates).",
        []
    ),
];
