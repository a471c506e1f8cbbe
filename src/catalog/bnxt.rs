//! Broadcom bnxt_re `hw_counters/` (drivers/infiniband/hw/bnxt_re/hw_counters.c,
//! torvalds/linux: `bnxt_re_stat_descs`). The volume names (tx_bytes, ...)
//! are shared with EFA and listed in [`super::efa`]; the Ethernet side
//! (bnxt_en) is in [`ETHTOOL`].

use super::{Known, known};

/// The table: other entries, then the responder error counters (`res_*`)
/// as (file, kind), all under `rdma_transport_errors_total{side="responder"}`.
macro_rules! table {
    ([$($other:expr),* $(,)?], [$($file:literal => $kind:literal),* $(,)?]) => {
        &[
            $($other,)*
            $(known!(Hw, $file, transport ERRORS, ["side" = "responder", "kind" = $kind], []),)*
        ]
    };
}

pub const KNOWN: &[Known] = table!(
    [
    known!(Hw, "to_retransmits", transport RETRANSMISSIONS, ["kind" = "timeout"], ["retransmission_rate"]),
    known!(Hw, "rnr_naks_rcvd", transport RETRANSMISSIONS, ["kind" = "rnr_nak"], []),
    known!(Hw, "missing_resp", transport TIMEOUTS, ["kind" = "missing_response"], []),
    known!(Hw, "seq_err_naks_rcvd", transport SEQUENCE_ERRORS, ["kind" = "nak_received"], []),
    known!(Hw, "dup_req", transport SEQUENCE_ERRORS, ["kind" = "duplicate_request"], []),
    known!(Hw, "oos_drop_count", transport SEQUENCE_ERRORS, ["kind" = "out_of_sequence"], []),
    known!(Hw, "max_retry_exceeded", transport ERRORS, ["side" = "requester", "kind" = "retry_exceeded"], []),
    known!(Hw, "unrecoverable_err", transport ERRORS, ["side" = "requester", "kind" = "unrecoverable"], []),
    known!(Hw, "bad_resp_err", transport ERRORS, ["side" = "requester", "kind" = "bad_response"], []),
    known!(Hw, "local_qp_op_err", transport ERRORS, ["side" = "requester", "kind" = "local_qp_operation"], []),
    known!(Hw, "local_protection_err", transport ERRORS, ["side" = "requester", "kind" = "local_protection"], []),
    known!(Hw, "remote_invalid_req_err", transport ERRORS, ["side" = "requester", "kind" = "remote_invalid_request"], []),
    known!(Hw, "remote_access_err", transport ERRORS, ["side" = "requester", "kind" = "remote_access"], []),
    known!(Hw, "remote_op_err", transport ERRORS, ["side" = "requester", "kind" = "remote_operation"], []),
    known!(
        Hw,
        "rx_out_of_buffer",
        Congestion,
        "rdma_congestion_out_of_buffer_total",
        "Packets dropped because no receive WQE was posted (mlx5 out_of_buffer, bnxt_re rx_out_of_buffer).",
        ["out_of_buffer"]
    ),
    ],
    [
    "res_exceed_max" => "exceed_max",
    "res_length_mismatch" => "length_mismatch",
    "res_exceeds_wqe" => "exceeds_wqe",
    "res_opcode_err" => "opcode",
    "res_rx_invalid_rkey" => "rx_invalid_rkey",
    "res_rx_domain_err" => "rx_domain",
    "res_rx_no_perm" => "rx_no_permission",
    "res_rx_range_err" => "rx_range",
    "res_tx_invalid_rkey" => "tx_invalid_rkey",
    "res_tx_domain_err" => "tx_domain",
    "res_tx_no_perm" => "tx_no_permission",
    "res_tx_range_err" => "tx_range",
    "res_irrq_oflow" => "irrq_overflow",
    "res_unsup_opcode" => "unsupported_opcode",
    "res_unaligned_atomic" => "unaligned_atomic",
    "res_rem_inv_err" => "remote_invalidate",
    "res_mem_err" => "memory",
    "res_srq_err" => "srq",
    "res_cmp_err" => "completion",
    "res_invalid_dup_rkey" => "invalid_duplicate_rkey",
    "res_wqe_format_err" => "wqe_format",
    "res_cq_load_err" => "cq_load",
    "res_srq_load_err" => "srq_load",
    "res_tx_pci_err" => "tx_pci",
    "res_rx_pci_err" => "rx_pci",
    ]
);

use super::ethtool::{
    BUFFER_THRESHOLD, COS_DISCARDS, DISCARDS, PAUSE_STORM, PFC_ALL_FRAMES, PFC_DURATION,
    PFC_FRAMES, PFC_TRANSITIONS, PHY_ERRORS, PHY_RECEIVED_BITS, Stat, Unit,
};

const RX: &[(&str, &str)] = &[("direction", "rx")];
const TX: &[(&str, &str)] = &[("direction", "tx")];

/// bnxt_en `ethtool -S` names (drivers/net/ethernet/broadcom/bnxt/bnxt_ethtool.c,
/// torvalds/linux: `bnxt_port_stats_arr`, `bnxt_port_stats_ext_arr`,
/// `bnxt_tx_port_stats_ext_arr`, the `BNXT_*_STATS_EXT_PFC_ENTRY` and
/// `BNXT_RX_STATS_EXT_DISCARD_COS_ENTRY` macros).
pub const ETHTOOL: &[Stat] = &[
    Stat::new("rx_pfc_ena_frames_pri{N}", &PFC_FRAMES)
        .labels(RX)
        .index("priority"),
    Stat::new("tx_pfc_ena_frames_pri{N}", &PFC_FRAMES)
        .labels(TX)
        .index("priority"),
    Stat::new("pfc_pri{N}_rx_duration_us", &PFC_DURATION)
        .labels(RX)
        .index("priority")
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("pfc_pri{N}_tx_duration_us", &PFC_DURATION)
        .labels(TX)
        .index("priority")
        .unit(Unit::Microseconds)
        .findings(&["pfc_pause_storm"]),
    Stat::new("pfc_pri{N}_rx_transitions", &PFC_TRANSITIONS)
        .labels(RX)
        .index("priority"),
    Stat::new("pfc_pri{N}_tx_transitions", &PFC_TRANSITIONS)
        .labels(TX)
        .index("priority"),
    Stat::new("rx_pfc_frames", &PFC_ALL_FRAMES).labels(RX),
    Stat::new("tx_pfc_frames", &PFC_ALL_FRAMES).labels(TX),
    // bnxt reports these through the kernel's pause statistics too.
    Stat::known("rx_pause_frames", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::known("tx_pause_frames", Unit::Count).same_as("rdma_netdev_pause_frames_total"),
    Stat::new("continuous_pause_events", &PAUSE_STORM)
        .labels(&[("event", "continuous")])
        .stat_label(),
    Stat::new("continuous_roce_pause_events", &PAUSE_STORM)
        .labels(&[("event", "continuous_roce")])
        .stat_label(),
    Stat::new("rx_stat_discard", &DISCARDS).stat_label(),
    Stat::new("tx_stat_discard", &DISCARDS).stat_label(),
    // Not in `priority_drops`: which priorities a CoS queue carries is the
    // firmware's queue mapping (bnxt_en pri2cos), which no interface the
    // agent reads shows, so a lossy queue cannot be told from a lossless one.
    Stat::new("rx_discard_packets_cos{N}", &COS_DISCARDS).index("cos"),
    Stat::new("rx_buffer_passed_threshold", &BUFFER_THRESHOLD).stat_label(),
    Stat::new("rx_fcs_err_frames", &PHY_ERRORS)
        .labels(&[("kind", "crc")])
        .stat_label(),
    Stat::new("rx_pcs_symbol_err", &PHY_ERRORS)
        .labels(&[("kind", "pcs_symbol")])
        .stat_label()
        .findings(&["phy_ber"]),
    Stat::new("rx_bits", &PHY_RECEIVED_BITS)
        .unit(Unit::Bits)
        .findings(&["phy_ber"]),
    Stat::known("rx_corrected_bits", Unit::Bits).findings(&["phy_ber"]),
    // The kernel's FEC and link statistics (ethtool netlink) carry these.
    Stat::known("rx_fec_corrected_blocks", Unit::Count)
        .same_as("rdma_netdev_fec_corrected_blocks_total"),
    Stat::known("rx_fec_uncorrectable_blocks", Unit::Count)
        .same_as("rdma_netdev_fec_uncorrectable_blocks_total"),
    Stat::known("link_down_events", Unit::Count).same_as("rdma_netdev_link_down_events_total"),
];
