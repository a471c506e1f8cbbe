//! The workers beside the loop: MADs (local PMA counters, fabric sweeps) and
//! the AI worker (LLM, Dify).

use std::sync::Arc;

use super::Agent;
use crate::exporters::snapshot::SnapshotWriter;
use crate::mad_worker::{self, MadView, Plan};

impl Agent {
    /// Starts the MAD work the configuration asks for (local PMA counters,
    /// fabric sweeps): on its own thread, or once, right now, for `--once`.
    pub fn start_mad(&mut self, background: bool) {
        let plan = Plan::from_config(&self.config);
        if !plan.active() {
            return;
        }
        let (mut workers, unavailable) = mad_worker::open_workers(&self.config);
        for why in &unavailable {
            log::warn!("umad unavailable ({why}): IB counters from sysfs, no fabric view");
        }
        if workers.is_empty() && unavailable.is_empty() {
            return; // no IB port here
        }
        if background {
            let (tx, rx) = std::sync::mpsc::channel();
            let slot = self.mad.clone();
            let spawned = std::thread::Builder::new()
                .name("mad".into())
                .spawn(move || mad_worker::run(workers, unavailable, plan, slot, rx));
            match spawned {
                Ok(_) => self.mad_stop = Some(tx),
                Err(e) => log::error!("cannot start the MAD thread: {e}"),
            }
        } else {
            let mut view = MadView {
                unavailable,
                ..MadView::default()
            };
            mad_worker::step(
                &mut workers,
                &plan,
                &mut mad_worker::Schedule::default(),
                &mut view,
            );
            self.mad.store(Some(Arc::new(view)));
        }
    }

    /// Starts the AI worker (LLM, Dify) when the configuration enables one.
    pub fn start_ai(&mut self) {
        self.ai = crate::analysis::ai::spawn(
            &self.config,
            &self.hostname,
            answer_store(
                self.config.general.snapshot_dir.clone(),
                self.config.general.snapshot_keep,
            ),
            self.published.analysis.clone(),
        );
        self.published.ai_worker.store(self.ai.clone());
    }
}

/// The AI worker's answers, kept beside the snapshots as
/// `analysis-<service>-<seq>-<time>.json`, `keep` of each kind.
pub fn answer_store(dir: std::path::PathBuf, keep: u32) -> crate::analysis::ai::StoreFn {
    Box::new(move |prefix, timestamp, json| {
        SnapshotWriter::with_prefix(&dir, keep, prefix)
            .write(timestamp, json)
            .map(drop)
            .map_err(|e| e.to_string())
    })
}
