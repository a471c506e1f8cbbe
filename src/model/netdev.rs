//! The Ethernet side of a port as the reading and the snapshot carry it:
//! link counters, ethtool statistics and settings, DCB, devlink, the
//! transceiver. The decoders fill these types directly: the JSON schema
//! `SCHEMA_VERSION` protects is defined here, not in a decoder.

use std::sync::Arc;

use serde::Serialize;

use super::Counter;

/// What changes only with configuration or hardware: read at rescans.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetdevStatic {
    pub drvinfo: Option<DrvInfo>,
    pub features: Vec<Feature>,
    pub pause: Option<Pause>,
    pub link_settings: Option<LinkSettings>,
    pub module: Option<Module>,
    /// Why the module could not be read, when a module seemed to be there.
    pub module_error: Option<String>,
    /// (role: "np"/"rp", priority, enabled) from `/sys/class/net/<if>/ecn`.
    pub ecn: Vec<(&'static str, u8, bool)>,
    /// PFC, ETS and trust configuration (dcbnl IEEE), where the driver has DCB.
    pub dcb: Option<Dcb>,
    /// `devlink dev info` of the netdev's device (matched by bus address).
    pub devlink: Option<DevlinkInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetdevReading {
    pub name: String,
    pub link: Option<Link>,
    pub ethtool_stats: Vec<Counter>,
    /// Pause and FEC statistics and link-down events from ethtool netlink.
    pub ethtool_nl: Option<EthtoolNl>,
    #[serde(flatten)]
    pub info: Arc<NetdevStatic>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrvInfo {
    pub driver: String,
    pub version: String,
    pub fw_version: String,
    pub bus_info: String,
    pub erom_version: String,
    pub n_stats: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    pub name: String,
    pub available: bool,
    pub requested: bool,
    pub active: bool,
    /// It cannot be changed (`[fixed]` in `ethtool -k`): not available, or never to change.
    pub fixed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub autoneg: bool,
    pub rx: bool,
    pub tx: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkSettings {
    /// Mb/s; None when unknown (SPEED_UNKNOWN).
    pub speed_mbps: Option<u32>,
    /// 0 half, 1 full; None when unknown.
    pub duplex: Option<u8>,
    pub autoneg: bool,
    pub port: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standard {
    Sff8472,
    Sff8636,
    Cmis,
}

/// Alarm and warning thresholds of one sensor, in the sensor's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub high_alarm: f64,
    pub low_alarm: f64,
    pub high_warning: f64,
    pub low_warning: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Module {
    pub standard: Option<Standard>,
    pub identifier: u8,
    pub identifier_name: &'static str,
    pub vendor: String,
    pub part_number: String,
    pub revision: String,
    pub serial: String,
    pub date_code: String,
    /// Nominal wavelength, nm (0 for copper).
    pub wavelength_nm: Option<f64>,
    /// Longest supported link length over any medium, meters.
    pub length_m: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub supply_voltage_volts: Option<f64>,
    /// Per lane, amperes and watts.
    pub tx_bias_amperes: Vec<f64>,
    pub tx_power_watts: Vec<f64>,
    pub rx_power_watts: Vec<f64>,
    pub temperature_thresholds: Option<Thresholds>,
    pub voltage_thresholds: Option<Thresholds>,
    pub tx_bias_thresholds: Option<Thresholds>,
    pub tx_power_thresholds: Option<Thresholds>,
    pub rx_power_thresholds: Option<Thresholds>,
}

/// Field names of struct rtnl_link_stats64 (linux/if_link.h), in order.
pub const STATS64_FIELDS: [&str; 25] = [
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
    "rx_otherhost_dropped",
];

/// struct rtnl_link_stats64 as the kernel sent it: the values of the fields
/// it has, in the header's order (an older kernel sends fewer), held in
/// place: a list per link was a heap block per netdev a cycle, which musl
/// maps and unmaps in groups. In the JSON, `[name, value]` pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats64 {
    values: [u64; STATS64_FIELDS.len()],
    len: usize,
}

impl Stats64 {
    /// The struct's first fields, as many as are named (a newer kernel's
    /// further fields are left out).
    pub fn of(values: impl IntoIterator<Item = u64>) -> Stats64 {
        let mut s = Stats64::default();
        for (slot, v) in s.values.iter_mut().zip(values) {
            *slot = v;
            s.len += 1;
        }
        s
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        STATS64_FIELDS
            .iter()
            .copied()
            .zip(self.values[..self.len].iter().copied())
    }
    pub fn get(&self, field: &str) -> Option<u64> {
        self.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Serialize for Stats64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub mtu: Option<u32>,
    /// IF_OPER_* (6 = up, 2 = down).
    pub operstate: Option<u8>,
    pub carrier_changes: Option<u32>,
    pub carrier_up_count: Option<u32>,
    pub carrier_down_count: Option<u32>,
    /// struct rtnl_link_stats64, by field name, in the header's order
    /// (`[name, value]` pairs in the JSON).
    pub stats64: Stats64,
}

/// The DCB configuration of a netdev (RTM_GETDCB, DCB_CMD_IEEE_GET): PFC per
/// priority and the ETS priority → traffic-class map, as `dcb pfc show` /
/// `mlnx_qos` show them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dcb {
    /// Priorities with PFC enabled (bit p = priority p).
    pub pfc_enabled: Option<u8>,
    pub pfc_cap: Option<u8>,
    /// PFC frames sent (requests) and received (indications) per priority, where the driver counts them.
    pub pfc_requests: Vec<u64>,
    pub pfc_indications: Vec<u64>,
    /// Traffic class of each priority, and each class's share of bandwidth (%).
    pub prio_tc: Vec<u8>,
    pub tc_bw: Vec<u8>,
    /// Entries of the APP table (selector 5 = DSCP: the port trusts DSCP).
    pub app_entries: u32,
    pub dscp_trust: bool,
}

/// Ethernet statistics from ethtool netlink that the ioctls lack.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EthtoolNl {
    pub pause_tx_frames: Option<u64>,
    pub pause_rx_frames: Option<u64>,
    /// FEC blocks corrected / uncorrectable and bits corrected: the total the
    /// kernel sends first, then each lane's count where the driver has lanes.
    pub fec_corrected: Option<u64>,
    pub fec_corrected_lanes: Vec<u64>,
    pub fec_uncorrectable: Option<u64>,
    pub fec_uncorrectable_lanes: Vec<u64>,
    pub fec_corrected_bits: Option<u64>,
    pub fec_corrected_bits_lanes: Vec<u64>,
    pub link_up: Option<bool>,
    /// Link-down events the driver counted (ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT, 6.2+).
    pub link_down_events: Option<u64>,
}

/// `devlink dev info` of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DevlinkInfo {
    pub bus: String,
    pub device: String,
    pub driver: Option<String>,
    pub serial: Option<String>,
    pub board_serial: Option<String>,
    /// (kind: fixed/running/stored, name, value): e.g. ("running", "fw.version", "22.36.1010").
    pub versions: Vec<(&'static str, String, String)>,
}
