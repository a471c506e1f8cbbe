//! What arrives between polls: rtnetlink link events, RDMA netlink monitor
//! events and kernel log records, and how their listeners are doing (the
//! snapshot's `events` section).

use serde::Serialize;

/// One RTM_NEWLINK/RTM_DELLINK multicast (RTNLGRP_LINK), stamped when it was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkEvent {
    pub unix_ms: u64,
    pub ifindex: i32,
    pub netdev: String,
    /// IFF_LOWER_UP: carrier, and the netdev administratively up.
    pub carrier: bool,
    /// IFLA_OPERSTATE (RFC 2863 value, IF_OPER_*).
    pub operstate: Option<u8>,
    /// RTM_DELLINK: the netdev is gone.
    pub deleted: bool,
}

/// `enum rdma_nl_notify_event_type` (include/uapi/rdma/rdma_netlink.h, newer than 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RdmaEventKind {
    Register,
    Unregister,
    NetdevAttach,
    NetdevDetach,
    Rename,
    NetdevRename,
    /// A type newer than the ones known here.
    Other(u8),
}

/// One RDMA_NLDEV_CMD_MONITOR multicast (RDMA_NL_GROUP_NOTIFY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RdmaEvent {
    pub unix_ms: u64,
    pub kind: RdmaEventKind,
    pub dev_index: Option<u32>,
    pub dev_name: Option<String>,
    pub port: Option<u32>,
    pub netdev_index: Option<u32>,
    pub netdev_name: Option<String>,
}

/// One /dev/kmsg record (Documentation/ABI/testing/dev-kmsg).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KmsgRecord {
    pub seq: u64,
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub level: u8,
    /// Syslog facility: 0 kernel, 1 user (a line written to /dev/kmsg from user space).
    pub facility: u32,
    /// Time since boot (CLOCK_MONOTONIC), µs.
    pub ts_usec: u64,
    /// The text, escapes (`\x0a`) as the kernel wrote them.
    pub message: String,
    /// The `DEVICE=` dictionary entry (`+pci:0000:08:00.0`, `+infiniband:rxe0`), when sent.
    pub device: Option<String>,
}

/// How one listener is doing, said in the snapshot and by a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerStatus {
    /// `listening`, `off` (configuration), `polling` (the kernel has no such
    /// events: rescans stand in), `no_permission`, `failed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Events (records) received since the agent started.
    pub received_total: u64,
    /// Events the kernel dropped (ENOBUFS, overwritten kmsg records) or
    /// the agent's bounded queue had no room for.
    pub lost_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsStatus {
    pub link_events: ListenerStatus,
    pub rdma_monitor: ListenerStatus,
    pub kernel_log: ListenerStatus,
    /// Kernel log records that matched a pattern since the agent started.
    pub kernel_log_matched_total: u64,
    /// Link events of this cycle (carrier changes between polls).
    pub link_changes: Vec<LinkEvent>,
    /// RDMA monitor events of this cycle.
    pub rdma_changes: Vec<RdmaEvent>,
}
