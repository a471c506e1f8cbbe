//! Intel irdma `hw_counters/` (drivers/infiniband/hw/irdma/verbs.c,
//! torvalds/linux: `irdma_hw_stat_descs`). The Ethernet side (ice) is in
//! [`super::ethtool::ice`].

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
    // iWARP only: the RNIC's TCP retransmitted segments.
    known!(Hw, "tcpRetransSegs", transport RETRANSMISSIONS, ["kind" = "tcp_segment"], ["retransmission_rate"]),
];

/// RoCE/iWARP volume of the RDMA engine: irdma has no PMA `counters/` and
/// counts its IP traffic per IP version (`irdma_hw_stat_descs`: ip4InOctets,
/// ip6InOctets, ip4OutOctets, ... — octets and packets of the IP datagrams
/// the RDMA engine sent and received), so the port's volume is the sum of
/// both versions.
pub const SUMS: &[Sum] = &[
    Sum::new("port_xmit_data", "ip4OutOctets+ip6OutOctets", &["ip4OutOctets", "ip6OutOctets"]),
    Sum::new("port_rcv_data", "ip4InOctets+ip6InOctets", &["ip4InOctets", "ip6InOctets"]),
    Sum::new("port_xmit_packets", "ip4OutPkts+ip6OutPkts", &["ip4OutPkts", "ip6OutPkts"]),
    Sum::new("port_rcv_packets", "ip4InPkts+ip6InPkts", &["ip4InPkts", "ip6InPkts"]),
];

use super::ethtool::{PFC_FRAMES, Stat};

/// ice `ethtool -S` names (drivers/net/ethernet/intel/ice/ice_ethtool.c,
/// torvalds/linux: `ice_gstrings_pfc_stats`, "%s_priority_%u_xoff.nic").
pub const ICE_ETHTOOL: &[Stat] = &[
    Stat::new("rx_priority_{N}_xoff.nic", &PFC_FRAMES)
        .labels(&[("direction", "rx")])
        .index("priority"),
    Stat::new("tx_priority_{N}_xoff.nic", &PFC_FRAMES)
        .labels(&[("direction", "tx")])
        .index("priority"),
];
