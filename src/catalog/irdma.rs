//! Intel irdma `hw_counters/` (drivers/infiniband/hw/irdma/verbs.c,
//! torvalds/linux: `irdma_hw_stat_names`, `irdma_hw_stat_descs` since 6.16).
//! The Ethernet side (ice) is in [`ICE_ETHTOOL`].
//!
//! Two namings. "RDMA/irdma: Add GEN3 HW statistics support" (the GEN3 /
//! IPU E2000 series, v3 2025-02-07; for 6.16 as far as we know, the first tag not checked here) renamed the TCP and iWARP counters of
//! every generation (`tcpRetransSegs` → `RetransSegs`, `tcpInSegs` →
//! `InSegs`, `iwInRdmaReads` → `InRdmaReads`, ...) and added GEN3's RoCE
//! transport counters, whose names have spaces (`RTO`, `RNR received`,
//! `Nak Sequence Error`, ...). Both namings are here, in the same families;
//! a port has one or the other. The IPv4/IPv6 names did not change.
//! Name lists: fixtures/hw_counters/irdma.txt (before), irdma-6.16.txt.

use super::mlx5::{CNP_HANDLED, CNP_IGNORED, CNP_SENT_HELP, ECN_MARKED};
use super::{Known, Sum, known};

pub const KNOWN: &[Known] = &[
    known!(
        Hw,
        "cnpSent",
        Congestion,
        "rdma_congestion_cnp_sent_total",
        CNP_SENT_HELP,
        ["cnp_rate"]
    ),
    known!(
        Hw,
        "cnpHandled",
        Congestion,
        "rdma_congestion_cnp_handled_total",
        CNP_HANDLED,
        ["cnp_rate"]
    ),
    known!(
        Hw,
        "cnpIgnored",
        Congestion,
        "rdma_congestion_cnp_ignored_total",
        CNP_IGNORED,
        []
    ),
    known!(
        Hw,
        "RxECNMrkd",
        Congestion,
        "rdma_congestion_ecn_marked_packets_total",
        ECN_MARKED,
        []
    ),
    // The RNIC's TCP retransmitted segments (iWARP) before 6.16. The new
    // name is every generation's since, GEN3's too, and GEN3 is RoCE only
    // (ig3rdma sets IRDMA_ROCE_PROTOCOL_ONLY): no TCP there, so the new
    // name gets the neutral `packet` (on an iWARP port a packet is a TCP
    // segment; on GEN3 a RoCE packet).
    known!(Hw, "tcpRetransSegs", transport RETRANSMISSIONS, ["kind" = "tcp_segment"], ["retransmission_rate"]),
    known!(Hw, "RetransSegs", transport RETRANSMISSIONS, ["kind" = "packet"], ["retransmission_rate"]),
    // GEN3 (6.16), RoCE. RNR NAKs received: each makes the requester retry
    // (as bnxt_re rnr_naks_rcvd); not loss, so not in retransmission_rate.
    known!(Hw, "RNR received", transport RETRANSMISSIONS, ["kind" = "rnr_nak"], []),
    // The retransmission timer (RTO) expired: the requester's ACK timer.
    // Not in retransmission_rate: the driver does not say whether
    // RetransSegs already counts the packets an RTO resends.
    known!(Hw, "RTO", transport TIMEOUTS, ["kind" = "ack"], []),
    // NAK sequence errors; the driver does not say sent or received, so
    // the kind says neither.
    known!(Hw, "Nak Sequence Error", transport SEQUENCE_ERRORS, ["kind" = "nak"], []),
    known!(Hw, "Nak Sequence Error Implied", transport SEQUENCE_ERRORS, ["kind" = "implied_nak"], []),
    known!(Hw, "Rcvd Out of order packets", transport SEQUENCE_ERRORS, ["kind" = "out_of_sequence"], []),
];

/// RoCE/iWARP volume of the RDMA engine: irdma has no PMA `counters/` and
/// counts its IP traffic per IP version (`irdma_hw_stat_descs`: ip4InOctets,
/// ip6InOctets, ip4OutOctets, ... — octets and packets of the IP datagrams
/// the RDMA engine sent and received), so the port's volume is the sum of
/// both versions.
pub const SUMS: &[Sum] = &[
    Sum::new(
        "port_xmit_data",
        "ip4OutOctets+ip6OutOctets",
        &["ip4OutOctets", "ip6OutOctets"],
    ),
    Sum::new(
        "port_rcv_data",
        "ip4InOctets+ip6InOctets",
        &["ip4InOctets", "ip6InOctets"],
    ),
    Sum::new(
        "port_xmit_packets",
        "ip4OutPkts+ip6OutPkts",
        &["ip4OutPkts", "ip6OutPkts"],
    ),
    Sum::new(
        "port_rcv_packets",
        "ip4InPkts+ip6InPkts",
        &["ip4InPkts", "ip6InPkts"],
    ),
];

use super::ethtool::{GLOBAL_PAUSE_XOFF, PFC_FRAMES, PHY_ERRORS, Stat};

/// ice `ethtool -S` names (drivers/net/ethernet/intel/ice/ice_ethtool.c,
/// torvalds/linux: `ice_gstrings_pfc_stats`, "%s_priority_%u_xoff.nic";
/// `ice_gstrings_pf_stats`, `ICE_PF_STAT("link_xoff_rx.nic", ...)`).
pub const ICE_ETHTOOL: &[Stat] = &[
    Stat::new("rx_priority_{N}_xoff.nic", &PFC_FRAMES)
        .labels(&[("direction", "rx")])
        .index("priority"),
    Stat::new("tx_priority_{N}_xoff.nic", &PFC_FRAMES)
        .labels(&[("direction", "tx")])
        .index("priority"),
    // Link-level pause: XOFF alone (stats.link_xoff_rx/tx); the kernel's
    // pause statistics are XON + XOFF (ice_get_pause_stats).
    Stat::new("link_xoff_rx.nic", &GLOBAL_PAUSE_XOFF).labels(&[("direction", "rx")]),
    Stat::new("link_xoff_tx.nic", &GLOBAL_PAUSE_XOFF).labels(&[("direction", "tx")]),
    // stats.crc_errors: frames received with a bad FCS.
    Stat::new("rx_crc_errors.nic", &PHY_ERRORS)
        .labels(&[("kind", "crc")])
        .stat_label(),
];
