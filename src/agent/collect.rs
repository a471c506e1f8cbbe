//! Running the collectors' table over one cycle: each in turn, a panic or
//! an error costing its own area for one cycle, not the agent.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use super::repeated::Repeated;
use crate::collectors::{self, Collector, Cycle};
use crate::config::Config;
use crate::metrics::Builder;
use crate::snapshot::CollectorStatus;

struct Registered {
    name: &'static str,
    reads: &'static [collectors::inputs::Input],
    collector: Box<dyn Collector>,
    failure: Repeated,
}

/// The collectors of [`collectors::REGISTRY`], built once.
pub struct Collectors {
    table: Vec<Registered>,
    /// Failed runs of each collector since start, in table order.
    pub errors_total: Vec<u64>,
}

impl Collectors {
    pub fn new(config: &Config) -> Collectors {
        let table: Vec<Registered> = collectors::REGISTRY
            .iter()
            .map(|r| Registered {
                name: r.name,
                reads: r.reads,
                collector: (r.factory)(config),
                failure: Repeated::default(),
            })
            .collect();
        let errors_total = vec![0; table.len()];
        Collectors {
            table,
            errors_total,
        }
    }

    /// Runs every collector; a collector whose inputs failed lately
    /// (`failures`) is reported failed even when it rendered.
    pub fn run(
        &mut self,
        cycle: &Cycle,
        failures: &collectors::inputs::Failures,
        out: &mut Builder,
    ) -> Vec<CollectorStatus> {
        let mut statuses = Vec::with_capacity(self.table.len());
        // One clock read per collector (each end is the next start), not two:
        // where the clocksource has no vDSO (hpet) every read is a syscall.
        let mut mark = Instant::now();
        for (c, errors_total) in self.table.iter_mut().zip(&mut self.errors_total) {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| c.collector.collect(cycle, out)));
            let error = match result {
                Ok(Ok(())) => failures.failure_of(c.reads),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("collector panicked".to_string()),
            };
            match &error {
                Some(e) => {
                    *errors_total += 1;
                    let what = format!("collector {}", c.name);
                    c.failure.log_fail(&what, e, &format_args!("{what}: {e}"));
                }
                None => c.failure.log_ok(&format!("collector {}", c.name)),
            }
            let end = Instant::now();
            statuses.push(CollectorStatus {
                name: c.name,
                success: error.is_none(),
                duration_seconds: end.duration_since(mark).as_secs_f64(),
                error,
            });
            mark = end;
        }
        statuses
    }
}
