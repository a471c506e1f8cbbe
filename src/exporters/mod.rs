//! Outputs: what the collection loop publishes and who reads it.

pub mod ibnetdiscover;
pub mod prometheus;
pub mod snapshot;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    last_cycle_unix_ms: AtomicU64,
    /// A cycle older than this makes `/healthz` fail.
    stale_after: Duration,
}

impl Published {
    pub fn new(poll_interval: Duration) -> Published {
        Published {
            metrics: Registry::default(),
            snapshot: ArcSwapOption::empty(),
            analysis: Arc::new(ArcSwapOption::empty()),
            ai_worker: ArcSwapOption::empty(),
            last_cycle_unix_ms: AtomicU64::new(0),
            stale_after: (poll_interval * 3).max(Duration::from_secs(30)),
        }
    }

    pub fn publish(&self, metrics: crate::metrics::MetricSet, doc: Arc<SnapshotDoc>) {
        self.metrics.publish(metrics);
        self.snapshot.store(Some(doc));
        self.last_cycle_unix_ms
            .store(unix_ms(SystemTime::now()), Ordering::Release);
    }

    /// A cycle completed recently.
    pub fn healthy(&self) -> bool {
        let last = self.last_cycle_unix_ms.load(Ordering::Acquire);
        last != 0
            && unix_ms(SystemTime::now()).saturating_sub(last)
                <= self.stale_after.as_millis() as u64
    }
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
