//! Outputs: what the collection loop publishes and who reads it.

pub mod deflate;
pub mod http;
pub mod ibnetdiscover;
pub mod prometheus;
pub mod snapshot;
pub mod web_config;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::metrics::Registry;
use crate::snapshot::SnapshotDoc;

/// The hand-over point between the loop (the only writer) and readers.
pub struct Published {
    pub metrics: Registry,
    pub snapshot: ArcSwapOption<SnapshotDoc>,
    /// The latest AI answers (JSON), written by the analysis worker.
    pub analysis: Arc<ArcSwapOption<Vec<u8>>>,
    /// The AI worker, when llm or dify is on: its liveness shows in `/healthz`.
    pub ai_worker: ArcSwapOption<crate::analysis::ai::Mailbox>,
    /// Monotonic time of the last completed cycle, in ms since `epoch`, plus
    /// one (0: none yet). Monotonic, so a clock step cannot hide a stall.
    last_cycle_mono_ms: AtomicU64,
    epoch: Instant,
    /// No completed cycle for this long makes scrapes stale and `/healthz` fail.
    stale_after: Duration,
}

/// How recent the published data is, at the moment of asking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    /// Time since the last cycle completed; `None` before the first one.
    pub age: Option<Duration>,
    pub stale_after: Duration,
}

impl Freshness {
    pub fn stale(&self) -> bool {
        self.age.is_none_or(|a| a > self.stale_after)
    }
}

/// One line of `/healthz`: the endpoint is healthy when every check is.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Three poll intervals, but never under this: a 50 ms interval must not
/// flap on one scheduling hiccup.
const MIN_STALE_AFTER: Duration = Duration::from_secs(1);

impl Published {
    pub fn new(poll_interval: Duration) -> Published {
        Published {
            metrics: Registry::default(),
            snapshot: ArcSwapOption::empty(),
            analysis: Arc::new(ArcSwapOption::empty()),
            ai_worker: ArcSwapOption::empty(),
            last_cycle_mono_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            stale_after: poll_interval
                .checked_mul(3)
                .unwrap_or(Duration::MAX)
                .max(MIN_STALE_AFTER),
        }
    }

    /// Publishes a cycle that ended `at` (the loop's clock read: no read of
    /// its own, a syscall where the clocksource has no vDSO).
    pub fn publish(&self, metrics: crate::metrics::MetricSet, doc: Arc<SnapshotDoc>, at: Instant) {
        self.metrics.publish(metrics);
        self.snapshot.store(Some(doc));
        let ms = at.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last_cycle_mono_ms
            .store(ms.saturating_add(1), Ordering::Release);
    }

    pub fn freshness(&self) -> Freshness {
        let last = self.last_cycle_mono_ms.load(Ordering::Acquire);
        let now = self.epoch.elapsed().as_millis() as u64;
        Freshness {
            age: (last != 0).then(|| Duration::from_millis(now.saturating_sub(last - 1))),
            stale_after: self.stale_after,
        }
    }

    /// What `/healthz` reports, one check per line. A new liveness check (a
    /// worker thread, a source) is one more entry here.
    pub fn health(&self) -> Vec<Check> {
        let f = self.freshness();
        let collection = Check {
            name: "collection",
            ok: !f.stale(),
            detail: match f.age {
                None => "no cycle has completed yet".to_string(),
                Some(age) => format!(
                    "last cycle completed {:.1} s ago (stale after {:.1} s)",
                    age.as_secs_f64(),
                    f.stale_after.as_secs_f64()
                ),
            },
        };
        let mut checks = vec![collection];
        // A dead or stuck AI worker fails the check too, and says why.
        if let Some(ai) = self.ai_worker.load().as_ref() {
            let problem = ai.problem();
            checks.push(Check {
                name: "ai worker",
                ok: problem.is_none(),
                detail: problem.map_or_else(
                    || "up".to_string(),
                    |p| p.trim_start_matches("ai worker: ").to_string(),
                ),
            });
        }
        checks
    }

    /// The node's verdict and its findings, one line each (`/healthz?verbose`).
    pub fn verdict_lines(&self) -> String {
        use crate::analysis::health::{finding_line, verdict_line};
        match self.snapshot.load().as_ref() {
            None => "verdict: no cycle has completed yet\n".to_string(),
            Some(doc) => {
                let f = &doc.findings;
                let mut s = format!("verdict: {}\n", verdict_line(f));
                for line in f.iter().map(finding_line) {
                    s.push_str(&line);
                    s.push('\n');
                }
                s
            }
        }
    }

    /// Every health check passes.
    pub fn healthy(&self) -> bool {
        self.health().iter().all(|c| c.ok)
    }
}

pub use crate::clock::unix_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_before_the_first_cycle_and_after_three_intervals() {
        let p = Published::new(Duration::from_secs(2));
        assert_eq!(p.freshness().age, None);
        assert!(p.freshness().stale());
        let health = p.health();
        assert!(!health[0].ok);
        assert_eq!(health[0].detail, "no cycle has completed yet");
        let f = Freshness {
            age: Some(Duration::from_millis(6000)),
            stale_after: Duration::from_secs(6),
        };
        assert!(!f.stale());
        assert!(
            Freshness {
                age: Some(Duration::from_millis(6001)),
                ..f
            }
            .stale()
        );
    }

    #[test]
    fn stale_after_is_three_intervals_with_a_floor() {
        assert_eq!(
            Published::new(Duration::from_secs(10))
                .freshness()
                .stale_after,
            Duration::from_secs(30)
        );
        assert_eq!(
            Published::new(Duration::from_millis(50))
                .freshness()
                .stale_after,
            Duration::from_secs(1)
        );
        assert_eq!(
            Published::new(Duration::MAX).freshness().stale_after,
            Duration::MAX
        );
    }
}
