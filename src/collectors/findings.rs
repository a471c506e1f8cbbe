//! Findings: the active findings the engine returned this cycle, one series
//! each, their count by severity, and the node's verdict.

use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;
use crate::model::finding::Severity;

pub const REGISTRATION: Registration = Registration {
    name: "findings",
    // Evaluated on the derived snapshot: no kernel input of its own.
    reads: &[],
    factory: |_: &Config| Box::new(Findings),
};

struct Findings;

impl Collector for Findings {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        for f in cycle.findings {
            let port = f.port.map(|p| p.to_string()).unwrap_or_default();
            let priority = f.priority.map(|p| p.to_string()).unwrap_or_default();
            out.gauge_u64(
                "rdma_finding",
                "An active finding (value is always 1): rule id, severity, where.",
                &[
                    ("id", f.id),
                    ("severity", f.severity.as_str()),
                    ("device", &f.device),
                    ("netdev", f.netdev.as_deref().unwrap_or_default()),
                    ("port", &port),
                    ("priority", &priority),
                    ("subject", f.subject.as_deref().unwrap_or_default()),
                ],
                1,
            );
        }
        for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
            out.gauge_u64(
                "rdma_findings",
                "Active findings by severity.",
                &[("severity", sev.as_str())],
                cycle.findings.iter().filter(|f| f.severity == sev).count() as u64,
            );
        }
        crate::analysis::health::export(cycle.findings, out);
        Ok(())
    }
}
