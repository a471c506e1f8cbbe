//! The node as the agent sees it in one cycle: devices, ports, counters and
//! where each value came from. Sources fill it (sysfs first, then RDMA
//! netlink over it); collectors and the snapshot read it.

pub mod consumers;
pub mod events;
pub mod finding;
pub mod netdev;

use std::sync::Arc;

use serde::Serialize;

/// Where in the tree a failure happened, relative to `class/infiniband`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ReadError {
    pub path: String,
    pub reason: String,
}

/// A counter that read and parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counter {
    pub name: Arc<str>,
    pub value: u64,
}

/// A numbered enumeration the kernel prints as `<n>: <name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enumerated {
    pub value: u8,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GidEntry {
    pub index: u32,
    pub gid: String,
    /// `gid_attrs/types/N`: "IB/RoCE v1" or "RoCE v2".
    pub gid_type: Option<String>,
    /// `gid_attrs/ndevs/N`: the netdev a RoCE GID belongs to.
    pub netdev: Option<String>,
}

/// Device attributes; re-read at each rescan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub name: Arc<str>,
    pub node_type: Option<Enumerated>,
    pub node_guid: Option<u64>,
    pub sys_image_guid: Option<u64>,
    pub fw_ver: Option<String>,
    pub board_id: Option<String>,
    pub hca_type: Option<String>,
    pub node_desc: Option<String>,
    /// Basename of the `device/driver` link (mlx5_core, hfi1, ...); virtual devices have none.
    pub driver: Option<String>,
    /// DCQCN parameters of an mlx5 RoCE device, by `cc_params/` file name
    /// (debugfs, read at rescans; empty when there is no debugfs or it is root's).
    pub dcqcn: std::collections::BTreeMap<String, u64>,
    pub unsupported: Vec<Arc<str>>,
}

/// Port attributes that change only with a fabric event; re-read at each rescan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortInfo {
    pub link_layer: Option<String>,
    pub lid: Option<u64>,
    pub sm_lid: Option<u64>,
    pub lmc: Option<u64>,
    pub cap_mask: Option<u64>,
    pub netdev: Option<String>,
    pub gids: Vec<GidEntry>,
    /// Whether `counters/` (PMA) and `hw_counters/` directories exist at all.
    pub has_counters: bool,
    pub has_hw_counters: bool,
    /// `hw_counters/lifespan`: how long (ms) the driver caches hw counter values.
    pub hw_counters_lifespan_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortReading {
    pub port: u32,
    pub info: Arc<PortInfo>,
    pub state: Option<Enumerated>,
    pub phys_state: Option<Enumerated>,
    pub rate: Option<Rate>,
    pub counters: Vec<Counter>,
    pub hw_counters: Vec<Counter>,
    /// Attributes skipped this cycle because they are unsupported here.
    pub unsupported: Vec<Arc<str>>,
    /// Where the state and the hw counters came from this cycle.
    pub origin: PortOrigin,
}

impl PortReading {
    /// A port with nothing read yet.
    pub fn new(port: u32, info: Arc<PortInfo>) -> PortReading {
        PortReading {
            port,
            info,
            state: None,
            phys_state: None,
            rate: None,
            counters: Vec::new(),
            hw_counters: Vec::new(),
            unsupported: Vec::new(),
            origin: PortOrigin::default(),
        }
    }
}

/// The interface a value was read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Sysfs,
    RdmaNetlink,
    /// PerfMgt MADs through /dev/infiniband/umadN.
    Mad,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Sysfs => "sysfs",
            Origin::RdmaNetlink => "rdma_netlink",
            Origin::Mad => "mad",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortOrigin {
    pub state: Origin,
    pub hw_counters: Origin,
    /// The PMA counters (`counters/`): sysfs, or MADs.
    pub counters: Origin,
}

/// A hw counter set bound to QPs (`rdma statistic qp`), from RDMA netlink.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QpCounter {
    pub port: u32,
    pub id: u32,
    /// "auto" or "manual".
    pub mode: Option<&'static str>,
    /// IB QP type number when auto mode binds by type (2 RC, 3 UC, 4 UD, ...).
    pub qp_type: Option<u8>,
    pub pid: Option<u32>,
    pub qpns: Vec<u32>,
    pub counters: Vec<Counter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceReading {
    pub info: Arc<DeviceInfo>,
    /// Device-wide `hw_counters/` (some drivers keep counters per device, not per port).
    pub hw_counters: Vec<Counter>,
    pub ports: Vec<PortReading>,
    /// Resource counts (qp, cq, mr, pd, ctx, cm_id, srq) from RDMA netlink RES_GET.
    pub resources: Vec<Counter>,
    pub qp_counters: Vec<QpCounter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeReading {
    /// RDMA netlink answered this cycle (values may come from it).
    pub netlink: bool,
    /// The Ethernet side: netdevs of the ports and the configured extras.
    pub netdevs: Vec<netdev::NetdevReading>,
    /// RDMA kernel module parameters (re-read at rescans).
    pub module_params: std::sync::Arc<Vec<Param>>,
    /// `/sys/class/infiniband` exists (the RDMA core is loaded).
    pub class_present: bool,
    pub devices: Vec<DeviceReading>,
    pub errors: Vec<ReadError>,
}

/// A port's `rate`: "100 Gb/sec (4X EDR)", "2.5 Gb/sec (1X SDR)", "10 Gb/sec (4X)".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub gbit_per_sec: f64,
    pub width: Option<u8>,
    /// Lane speed name (SDR, DDR, QDR, FDR10, FDR, EDR, HDR, NDR, XDR); absent for SDR on old kernels.
    pub speed: Option<String>,
}

/// An RDMA kernel module parameter (`/sys/module/<m>/parameters/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub module: &'static str,
    pub name: String,
    pub value: String,
}

/// The values at which a counter saturates, by counter name (IBTA error
/// counters stop at their maximum; the counter catalog knows each width).
pub type Saturation = fn(&str) -> &'static [u64];

/// Which devices to read, by name.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl DeviceFilter {
    pub fn accepts(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|d| d == name))
            && !self.exclude.iter().any(|d| d == name)
    }
}
