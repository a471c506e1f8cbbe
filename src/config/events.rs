//! The `events` section: what the agent listens to between polls (link and
//! RDMA netlink events, the kernel log) and the kernel log patterns that
//! become `kernel_log_event` findings. The listeners are in
//! `analysis::events`, the built-in patterns in `analysis::kernel_log`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Events {
    pub link_events: bool,
    pub rdma_monitor: bool,
    pub kernel_log: bool,
    pub kmsg_path: PathBuf,
    pub kmsg_max_records_per_cycle: u32,
    pub kernel_log_hold: f64,
    pub builtin_patterns: bool,
    pub patterns: Vec<Pattern>,
}

/// A kernel log pattern: a record matches when its text holds every string
/// of `contains`, in that order, and (when given) its first word is `driver`
/// and its level is `max_level` or more severe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default)]
    pub contains: Vec<String>,
    /// Syslog level, 0 (emerg) to 7 (debug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<u8>,
    pub severity: PatternSeverity,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PatternSeverity {
    Critical,
    Warning,
    Info,
}

impl Events {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| ConfigError::OutOfRange { key, reason };
        if !(1..=100_000).contains(&self.kmsg_max_records_per_cycle) {
            return Err(bad(
                "events.kmsg_max_records_per_cycle",
                format!("must be 1-100000, got {}", self.kmsg_max_records_per_cycle),
            ));
        }
        if !(self.kernel_log_hold.is_finite()
            && (1.0..=7.0 * 86400.0).contains(&self.kernel_log_hold))
        {
            return Err(bad(
                "events.kernel_log_hold",
                format!("must be 1 to 604800 seconds, got {}", self.kernel_log_hold),
            ));
        }
        for p in &self.patterns {
            if p.name.is_empty() || (p.contains.iter().all(String::is_empty) && p.driver.is_none())
            {
                return Err(bad(
                    "events.patterns",
                    format!(
                        "pattern {:?} needs a name and a driver or a non-empty `contains`",
                        p.name
                    ),
                ));
            }
            if p.max_level.is_some_and(|l| l > 7) {
                return Err(bad(
                    "events.patterns",
                    format!("pattern {:?}: max_level is 0-7", p.name),
                ));
            }
        }
        Ok(())
    }
}
