//! The parts of the snapshot JSON document that `top` shows, read loosely:
//! every field defaults, so a document from an older or newer agent (or one
//! whose model was reorganised) still renders what it has.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Doc {
    pub hostname: String,
    pub timestamp_unix_ms: u64,
    pub devices: Vec<Device>,
    pub netdevs: Vec<Netdev>,
    pub findings: Vec<Finding>,
    /// Absent (not empty) when the agent has no attribution.
    pub consumers: Option<Vec<Consumer>>,
    pub mad: Option<Mad>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Device {
    pub name: String,
    pub ports: Vec<Port>,
    pub hw_counters: BTreeMap<String, Counter>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Named {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LinkRate {
    pub gbit_per_sec: Option<f64>,
    pub width: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Port {
    pub port: u32,
    pub netdev: Option<String>,
    pub link_layer: Option<String>,
    pub state: Option<Named>,
    pub rate: Option<LinkRate>,
    pub counters: BTreeMap<String, Counter>,
    pub hw_counters: BTreeMap<String, Counter>,
}

/// A counter as the kernel shows it; `flag` set when the agent saw it
/// saturated (no rate can be had from it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Counter {
    pub value: u64,
    pub flag: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Netdev {
    pub name: String,
    pub ethtool_stats: Vec<NameValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NameValue {
    pub name: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Finding {
    pub id: String,
    pub severity: String,
    pub device: String,
    /// Set instead of `device` when the finding is about a netdev.
    pub netdev: Option<String>,
    /// Set instead of `device` when it is about something else (a rule, an HCA type).
    pub subject: Option<String>,
    pub port: Option<u32>,
    pub priority: Option<u8>,
    pub summary: String,
    pub first_seen_unix_ms: u64,
    pub last_seen_unix_ms: u64,
}

impl Finding {
    /// Where it is: the RDMA device, else the netdev, else the subject.
    pub fn place(&self) -> &str {
        crate::model::finding::place(
            &self.device,
            self.netdev.as_deref(),
            self.subject.as_deref(),
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Consumer {
    pub kind: String,
    pub id: String,
    /// job_id, step, user, namespace, pod, pod_uid, container_id, unit, comm.
    pub labels: BTreeMap<String, serde_json::Value>,
    pub ports: Vec<ConsumerPort>,
    pub mr_bytes: Option<u64>,
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsumerPort {
    pub device: String,
    pub port: Option<u32>,
    pub qps: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Process {
    pub pid: Option<u32>,
    pub comm: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Mad {
    /// Inline in the snapshot of agents before 2026-11-30; since then in the
    /// sweep's detail document (`/fabric`, the `fabric-*.json` file), which
    /// parses as this same struct.
    pub fabric_counters: Vec<FabricPort>,
    /// When the agent read them; absent from agents before 2026-11-30.
    pub fabric_counters_unix_ms: Option<u64>,
    /// The last sweep in numbers (agents since 2026-11-30): its time says
    /// when the detail is new.
    pub fabric_summary: Option<FabricSummary>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FabricSummary {
    pub sweep_unix_ms: u64,
}

/// One fabric port's PMA counters (`pma`), or why there are none (`error`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FabricPort {
    pub node_guid: u64,
    pub node_desc: String,
    pub node_type: u8,
    pub lid: u16,
    pub port: u8,
    pub pma: Option<Pma>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pma {
    pub counters: BTreeMap<String, u64>,
    pub saturated: Vec<String>,
}

/// Reads a snapshot document; the error says where it went wrong.
pub fn parse(bytes: &[u8]) -> Result<Doc, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("snapshot JSON: {e}"))
}

/// A fabric detail document (the counters of every fabric port).
pub fn parse_detail(bytes: &[u8]) -> Result<Mad, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("fabric detail JSON: {e}"))
}
