//! mlx5 `hw_counters/` (drivers/infiniband/hw/mlx5/counters.c, torvalds/linux:
//! `basic_q_cnts`, `out_of_seq_q_cnts`, `retrans_q_cnts`, `cong_cnts`,
//! `extended_err_cnts`, `roce_accl_cnts`), meanings from
//! Documentation/networking/device_drivers/ethernet/mellanox/mlx5/counters.rst
//! ("RDMA counters") and rdma-core's docs. The Ethernet side (`ethtool -S`)
//! is in [`super::ethtool::mlx5`].

use super::pma::{RCV_DATA, RCV_PACKETS, XMIT_DATA, XMIT_PACKETS};
use super::{Known, known};

const CNP_SENT: &str = "Congestion notification packets sent by the notification point (mlx5 np_cnp_sent, irdma cnpSent).";
pub(crate) const CNP_HANDLED: &str = "Congestion notification packets handled by the reaction point (mlx5 rp_cnp_handled, irdma cnpHandled).";
pub(crate) const CNP_IGNORED: &str = "Congestion notification packets received and ignored by the reaction point (mlx5 rp_cnp_ignored, irdma cnpIgnored).";
pub(crate) const ECN_MARKED: &str = "RoCE packets received with the ECN congestion-experienced mark (mlx5 np_ecn_marked_roce_packets, irdma RxECNMrkd).";
pub(crate) const CNP_SENT_HELP: &str = CNP_SENT;

pub const KNOWN: &[Known] = &[
    // Congestion control (cong_cnts).
    known!(
        Hw,
        "np_cnp_sent",
        Congestion,
        "rdma_congestion_cnp_sent_total",
        CNP_SENT,
        ["cnp_rate"]
    ),
    known!(
        Hw,
        "rp_cnp_handled",
        Congestion,
        "rdma_congestion_cnp_handled_total",
        CNP_HANDLED,
        ["cnp_rate"]
    ),
    known!(
        Hw,
        "rp_cnp_ignored",
        Congestion,
        "rdma_congestion_cnp_ignored_total",
        CNP_IGNORED,
        []
    ),
    known!(
        Hw,
        "np_ecn_marked_roce_packets",
        Congestion,
        "rdma_congestion_ecn_marked_packets_total",
        ECN_MARKED,
        []
    ),
    known!(
        Hw,
        "out_of_buffer",
        Congestion,
        "rdma_congestion_out_of_buffer_total",
        "Packets dropped because no receive WQE was posted (mlx5 out_of_buffer, bnxt_re rx_out_of_buffer).",
        ["out_of_buffer"]
    ),
    // Optional counters (packets_op_cnts, kernel 6.15, "RDMA/mlx5: Add optional
    // counters for RDMA_TX/RX_packets/bytes"): all RDMA traffic of the link.
    // Present only when the operator enabled them (`rdma statistic set link
    // ... optional-counters ...`); the agent never turns them on.
    known!(Hw, "rdma_tx_bytes", for "port_xmit_data", "rdma_port_transmit_bytes_total", XMIT_DATA),
    known!(Hw, "rdma_rx_bytes", for "port_rcv_data", "rdma_port_receive_bytes_total", RCV_DATA),
    known!(Hw, "rdma_tx_packets", for "port_xmit_packets", "rdma_port_transmit_packets_total", XMIT_PACKETS),
    known!(Hw, "rdma_rx_packets", for "port_rcv_packets", "rdma_port_receive_packets_total", RCV_PACKETS),
    // Retransmission (roce_accl_cnts, retrans_q_cnts).
    known!(Hw, "roce_adp_retrans", transport RETRANSMISSIONS, ["kind" = "adaptive"], ["retransmission_rate"]),
    // "received RNR NAK packets; the QP retry limit was not exceeded": each is a retry.
    known!(Hw, "rnr_nak_retry_err", transport RETRANSMISSIONS, ["kind" = "rnr_nak"], []),
    known!(Hw, "roce_adp_retrans_to", transport TIMEOUTS, ["kind" = "adaptive_retransmission"], []),
    known!(Hw, "local_ack_timeout_err", transport TIMEOUTS, ["kind" = "ack"], ["retransmission_rate"]),
    // Slow restart (roce_accl_cnts): events of the lossy-RoCE recovery, not
    // retransmitted packets (see catalog::SLOW_RESTART).
    known!(Hw, "roce_slow_restart", transport SLOW_RESTART, ["kind" = "used"], []),
    known!(Hw, "roce_slow_restart_trans", transport SLOW_RESTART, ["kind" = "entered"], []),
    known!(Hw, "roce_slow_restart_cnps", transport SLOW_RESTART, ["kind" = "cnp_generated"], []),
    // Sequence (out_of_seq_q_cnts, retrans_q_cnts).
    known!(Hw, "out_of_sequence", transport SEQUENCE_ERRORS, ["kind" = "out_of_sequence"], []),
    known!(Hw, "packet_seq_err", transport SEQUENCE_ERRORS, ["kind" = "nak_received"], []),
    known!(Hw, "implied_nak_seq_err", transport SEQUENCE_ERRORS, ["kind" = "implied_nak"], []),
    known!(Hw, "duplicate_request", transport SEQUENCE_ERRORS, ["kind" = "duplicate_request"], []),
    // Errors (extended_err_cnts).
    known!(Hw, "req_cqe_error", transport ERRORS, ["side" = "requester", "kind" = "cqe"], []),
    known!(Hw, "req_cqe_flush_error", transport ERRORS, ["side" = "requester", "kind" = "cqe_flush"], []),
    known!(Hw, "req_remote_access_errors", transport ERRORS, ["side" = "requester", "kind" = "remote_access"], []),
    known!(Hw, "req_remote_invalid_request", transport ERRORS, ["side" = "requester", "kind" = "remote_invalid_request"], []),
    known!(Hw, "resp_cqe_error", transport ERRORS, ["side" = "responder", "kind" = "cqe"], []),
    known!(Hw, "resp_cqe_flush_error", transport ERRORS, ["side" = "responder", "kind" = "cqe_flush"], []),
    known!(Hw, "resp_local_length_error", transport ERRORS, ["side" = "responder", "kind" = "local_length"], []),
    known!(Hw, "resp_remote_access_errors", transport ERRORS, ["side" = "responder", "kind" = "remote_access"], []),
    // extended_err_cnts additions (patch by Patrisious Haddad, counters.c +
    // mlx5_ifc.h query_q_counter_out): the requester gave up after its
    // transport retries / RNR NAK retries ran out.
    known!(Hw, "req_transport_retries_exceeded", transport ERRORS, ["side" = "requester", "kind" = "retry_exceeded"], []),
    known!(Hw, "req_rnr_retries_exceeded", transport ERRORS, ["side" = "requester", "kind" = "rnr_retry_exceeded"], []),
];

use super::ethtool::{
    BUFFER_THRESHOLD, DISCARDS, GLOBAL_PAUSE_DURATION, GLOBAL_PAUSE_TRANSITIONS, PAUSE_STORM,
    PFC_DURATION, PFC_FRAMES, PFC_TRANSITIONS, PHY_ERRORS, PHY_LANE_CORRECTED_BITS,
    PHY_RECEIVED_BITS, PRIORITY_DISCARDS, PRIORITY_MARKED, Stat, Unit,
};

const RX: &[(&str, &str)] = &[("direction", "rx")];
const TX: &[(&str, &str)] = &[("direction", "tx")];

/// mlx5e `ethtool -S` names (counters.rst, "Physical Port Counters" and
/// "Priority Port Counters"; en_stats.c `pport_per_prio_pfc_stats_desc`,
/// `pport_pfc_stall_stats_desc`).
pub const ETHTOOL: &[Stat] = &[
    // PFC per priority.
    Stat::new("rx_prio{N}_pause", &PFC_FRAMES)
        .labels(RX)
        .index("priority"),
    Stat::new("tx_prio{N}_pause", &PFC_FRAMES)
        .labels(TX)
        .index("priority"),
    Stat::new("rx_prio{N}_pause_duration", &PFC_DURATION)
        .labels(RX)
        .index("priority")
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("tx_prio{N}_pause_duration", &PFC_DURATION)
        .labels(TX)
        .index("priority")
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("rx_prio{N}_pause_transition", &PFC_TRANSITIONS)
        .labels(RX)
        .index("priority"),
    // Link-level (802.3x) pause: the frames are the same PPCNT counters the
    // kernel's pause statistics give (ethtool netlink, rdma_netdev_pause_frames_total).
    Stat::known("rx_pause_ctrl_phy", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::known("tx_pause_ctrl_phy", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::known("rx_global_pause", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::known("tx_global_pause", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::new("rx_global_pause_duration", &GLOBAL_PAUSE_DURATION)
        .labels(RX)
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("tx_global_pause_duration", &GLOBAL_PAUSE_DURATION)
        .labels(TX)
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("rx_global_pause_transition", &GLOBAL_PAUSE_TRANSITIONS).labels(RX),
    Stat::new("tx_pause_storm_warning_events", &PAUSE_STORM)
        .labels(&[("event", "warning")])
        .stat_label(),
    Stat::new("tx_pause_storm_error_events", &PAUSE_STORM)
        .labels(&[("event", "error")])
        .stat_label(),
    // Drops and marks.
    Stat::new("rx_discards_phy", &DISCARDS).stat_label(),
    Stat::new("tx_discards_phy", &DISCARDS).stat_label(),
    Stat::new("rx_out_of_buffer", &DISCARDS).stat_label(),
    Stat::new("rx_prio{N}_discards", &PRIORITY_DISCARDS)
        .labels(&[("kind", "any")])
        .index("priority")
        .stat_label()
        .findings(&["priority_drops"]),
    Stat::new("rx_prio{N}_buf_discard", &PRIORITY_DISCARDS)
        .labels(&[("kind", "buffer")])
        .index("priority")
        .stat_label(),
    Stat::new("rx_prio{N}_cong_discard", &PRIORITY_DISCARDS)
        .labels(&[("kind", "congestion")])
        .index("priority")
        .stat_label(),
    Stat::new("rx_prio{N}_marked", &PRIORITY_MARKED).index("priority"),
    Stat::new("rx_buffer_passed_thres_phy", &BUFFER_THRESHOLD).stat_label(),
    // PHY.
    Stat::new("rx_crc_errors_phy", &PHY_ERRORS)
        .labels(&[("kind", "crc")])
        .stat_label(),
    Stat::new("rx_symbol_err_phy", &PHY_ERRORS)
        .labels(&[("kind", "symbol")])
        .stat_label(),
    Stat::new("rx_pcs_symbol_err_phy", &PHY_ERRORS)
        .labels(&[("kind", "pcs_symbol")])
        .stat_label()
        .findings(&["phy_ber"]),
    Stat::new("rx_err_lane_{N}_phy", &PHY_LANE_CORRECTED_BITS)
        .index("lane")
        .unit(Unit::Bits),
    Stat::new("rx_bits_phy", &PHY_RECEIVED_BITS)
        .unit(Unit::Bits)
        .findings(&["phy_ber"]),
    // The FEC statistics of ethtool netlink read the same PPCNT counter.
    Stat::known("rx_corrected_bits_phy", Unit::Bits)
        .same_as("rdma_netdev_fec_corrected_bits_total")
        .findings(&["phy_ber"]),
    Stat::known("link_down_events_phy", Unit::Count).same_as("rdma_netdev_link_down_events_total"),
    // RoCE volume of the vport: the port's volume when it has no PMA counters.
    Stat::known("tx_vport_rdma_unicast_bytes", Unit::Bytes).stands_in_for("port_xmit_data"),
    Stat::known("rx_vport_rdma_unicast_bytes", Unit::Bytes).stands_in_for("port_rcv_data"),
    Stat::known("tx_vport_rdma_unicast_packets", Unit::Count).stands_in_for("port_xmit_packets"),
    Stat::known("rx_vport_rdma_unicast_packets", Unit::Count).stands_in_for("port_rcv_packets"),
];
