//! AWS EFA `hw_counters/` (drivers/infiniband/hw/efa/efa_verbs.c,
//! torvalds/linux: `EFA_DEFINE_PORT_STATS` and `EFA_DEFINE_DEVICE_STATS`).
//! EFA ports have no PMA `counters/`: their volume is the driver's.
//! bnxt_re (drivers/infiniband/hw/bnxt_re/hw_counters.c, `bnxt_re_stat_descs`)
//! uses the same four volume names with the same meaning (RoCE unicast
//! bytes and packets), so they are listed once, here.

use super::pma::{RCV_DATA, RCV_PACKETS, XMIT_DATA, XMIT_PACKETS};
use super::{Known, known};

pub const KNOWN: &[Known] = &[
    known!(Hw, "tx_bytes", for "port_xmit_data", "rdma_port_transmit_bytes_total", XMIT_DATA),
    known!(Hw, "rx_bytes", for "port_rcv_data", "rdma_port_receive_bytes_total", RCV_DATA),
    known!(Hw, "tx_pkts", for "port_xmit_packets", "rdma_port_transmit_packets_total", XMIT_PACKETS),
    known!(Hw, "rx_pkts", for "port_rcv_packets", "rdma_port_receive_packets_total", RCV_PACKETS),
    // Added with the network stats (efa_verbs.c: retrans_bytes, retrans_pkts,
    // retrans_timeout_events, unresponsive_remote_events, impaired_remote_conn_events).
    known!(Hw, "retrans_pkts", transport RETRANSMISSIONS, ["kind" = "packet"], ["retransmission_rate"]),
    known!(Hw, "retrans_timeout_events", transport TIMEOUTS, ["kind" = "retransmission"], []),
    known!(Hw, "rdma_read_wr_err", transport ERRORS, ["side" = "requester", "kind" = "rdma_read_wr"], []),
    known!(Hw, "rdma_write_wr_err", transport ERRORS, ["side" = "requester", "kind" = "rdma_write_wr"], []),
];
