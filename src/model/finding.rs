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
    pub device: String,
    pub port: Option<u32>,
    pub priority: Option<u8>,
    /// What the finding is about when that is not an RDMA device (a `health.expect` rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub summary: String,
    pub evidence: BTreeMap<&'static str, serde_json::Value>,
    pub first_seen_unix_ms: u64,
    pub last_seen_unix_ms: u64,
}
