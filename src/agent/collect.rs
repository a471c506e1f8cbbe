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
    /// What the collector took when it was last timed.
    last_duration: f64,
}

/// Collectors are timed on the first run and then every this many runs: a
/// collector works on data already read, in microseconds, and two clock reads
/// for each of them every cycle were most of the agent's `clock_gettime`
/// calls (each one a syscall where the clocksource has no vDSO, e.g. hpet).
/// The cycle as a whole is timed every cycle.
pub const TIMED_EVERY: u64 = 10;

/// The collectors of [`collectors::REGISTRY`], built once.
pub struct Collectors {
    table: Vec<Registered>,
    /// Failed runs of each collector since start, in table order.
    pub errors_total: Vec<u64>,
    runs: u64,
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
                last_duration: 0.0,
            })
            .collect();
        let errors_total = vec![0; table.len()];
        Collectors {
            table,
            errors_total,
            runs: 0,
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
        let timed = self.runs.is_multiple_of(TIMED_EVERY);
        self.runs += 1;
        // One clock read per collector on a timed run: each end is the next start.
        let mut mark = timed.then(Instant::now);
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
            if let Some(start) = mark {
                let end = Instant::now();
                c.last_duration = end.duration_since(start).as_secs_f64();
                mark = Some(end);
            }
            statuses.push(CollectorStatus {
                name: c.name,
                success: error.is_none(),
                duration_seconds: c.last_duration,
                error,
            });
        }
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeReading;

    /// Durations are measured on the first run and every `TIMED_EVERY`th
    /// after it; the runs between carry the last measurement.
    #[test]
    fn collectors_are_timed_every_tenth_run() {
        let config = Config::defaults();
        let mut collectors = Collectors::new(&config);
        let node = NodeReading::default();
        let snapshot = crate::collectors::test_snapshot(&node);
        let cycle = crate::collectors::test_cycle(&node, &snapshot);
        let failures = collectors::inputs::Failures::default();
        let durations = |c: &mut Collectors| -> Vec<u64> {
            let mut out = Builder::new();
            c.run(&cycle, &failures, &mut out)
                .iter()
                .map(|s| s.duration_seconds.to_bits())
                .collect()
        };
        let first = durations(&mut collectors);
        assert!(first.iter().all(|d| f64::from_bits(*d) > 0.0), "timed");
        for _ in 1..TIMED_EVERY {
            assert_eq!(durations(&mut collectors), first, "not timed again");
        }
        assert_ne!(durations(&mut collectors), first, "timed again");
    }
}
