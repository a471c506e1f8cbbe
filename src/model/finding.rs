//! A finding as the snapshot and the scrape carry it: the analysis engine
//! returns these; the snapshot serialises them and collectors render them.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    /// The RDMA device it is about; empty when it is about something else.
    pub device: String,
    /// The netdev it is about (PFC, transceiver, FEC, priority drops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
    pub port: Option<u32>,
    pub priority: Option<u8>,
    /// What the finding is about when that is neither an RDMA device nor a
    /// netdev: a `health.expect` rule, an HCA type, a configuration item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub summary: String,
    pub evidence: BTreeMap<&'static str, serde_json::Value>,
    pub first_seen_unix_ms: u64,
    pub last_seen_unix_ms: u64,
}

impl Finding {
    /// Where it is, as one word: the RDMA device, else the netdev, else the subject.
    pub fn place(&self) -> &str {
        place(
            &self.device,
            self.netdev.as_deref(),
            self.subject.as_deref(),
        )
    }
}

/// Where a finding is, as one word: the RDMA device, else the netdev, else
/// the subject (also for findings read back from a snapshot document).
pub fn place<'a>(device: &'a str, netdev: Option<&'a str>, subject: Option<&'a str>) -> &'a str {
    if !device.is_empty() {
        return device;
    }
    netdev.or(subject).unwrap_or_default()
}
