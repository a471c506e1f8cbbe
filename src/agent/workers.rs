//! The workers beside the loop: MADs (local PMA counters, fabric sweeps) and
//! the AI worker (LLM, Dify).

use std::sync::Arc;

use super::Agent;
use crate::exporters::snapshot::{Retention, SnapshotWriter};
use crate::mad_worker::{self, DetailStore, MadView, Plan};

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
        let mut detail = fabric_detail_store(&self.config);
        if background {
            let (tx, rx) = std::sync::mpsc::channel();
            let slot = self.mad.clone();
            let detail: Box<dyn DetailStore> = Box::new(detail);
            let spawned = std::thread::Builder::new()
                .name("mad".into())
                .spawn(move || mad_worker::run(workers, unavailable, plan, Some(detail), slot, rx));
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
                Some(&mut detail),
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

/// Each sweep's detail file: `fabric-<seq>-<time>.json` beside the
/// snapshots, kept by the `fabric.detail_*` retention.
pub fn fabric_detail_store(c: &crate::config::Config) -> SnapshotWriter {
    let f = &c.fabric;
    let mut w = SnapshotWriter::with_prefix(&c.general.snapshot_dir, f.detail_keep, "fabric-")
        .with_retention(Retention {
            max_age: (f.detail_max_age > 0.0)
                .then(|| std::time::Duration::from_secs_f64(f.detail_max_age)),
            max_bytes: (f.detail_max_bytes > 0).then_some(f.detail_max_bytes),
        });
    w.remove_leftovers();
    w
}

impl DetailStore for SnapshotWriter {
    fn store(&mut self, timestamp: &str, json: &[u8]) -> Result<std::path::PathBuf, String> {
        self.write(timestamp, json).map_err(|e| e.to_string())
    }
    fn prune_failures(&self) -> u64 {
        SnapshotWriter::prune_failures(self)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::exporters::Published;
    use crate::mad_worker::{PortWorker, Schedule};
    use crate::sources::mad::Limits;
    use crate::sources::mad::sim::SimFabric;

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Three sweeps with `fabric.detail_keep` 2: the two newest detail files
    /// stay, each the whole sweep; the snapshot of the next cycle has the
    /// summary that names the newest, and no node, link or port counter.
    #[test]
    fn each_sweep_has_its_detail_file_and_the_snapshot_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snaps");
        let env = [
            (
                "GENERAL__SYSFS_ROOT",
                dir.path().join("none").display().to_string(),
            ),
            ("GENERAL__SNAPSHOT_DIR", snaps.display().to_string()),
            ("FABRIC__ENABLED", "true".into()),
            ("FABRIC__DETAIL_KEEP", "2".into()),
        ]
        .map(|(k, v)| (format!("RDMA_MON_{k}"), v));
        let config = Config::load(None, env).unwrap();
        let plan = Plan::from_config(&config);
        let mut workers = vec![PortWorker::new(
            "/dev/infiniband/umad0".into(),
            None,
            SimFabric::default(),
            Limits::default(),
        )];
        let mut store = fabric_detail_store(&config);
        let mut view = MadView::default();
        for _ in 0..3 {
            // A new schedule: every kind of work is due at once.
            let sched = &mut Schedule::default();
            mad_worker::step(&mut workers, &plan, sched, &mut view, Some(&mut store));
        }
        let files = names(&snaps);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].starts_with("fabric-00000002-"), "{files:?}");
        assert!(files[1].starts_with("fabric-00000003-"), "{files:?}");

        let mut agent = Agent::with_netlink(
            config.clone(),
            Arc::new(Published::new(config.poll_interval())),
            None,
        );
        agent.mad.store(Some(Arc::new(view)));
        let doc = agent.cycle();
        let main: serde_json::Value = serde_json::from_slice(doc.json()).unwrap();
        let mad = &main["mad"];
        assert_eq!(mad.get("fabric"), None, "the sweep is in the detail file");
        assert_eq!(mad.get("fabric_counters"), None);
        let s = &mad["fabric_summary"];
        for (k, v) in [
            ("nodes", 3),
            ("switches", 1),
            ("cas", 2),
            ("links", 2),
            ("counter_ports", 5),
            ("counter_errors", 0),
            ("detail_write_failures", 0),
        ] {
            assert_eq!(s[k], v, "{k} in {s}");
        }
        let newest = snaps.join(&files[1]);
        assert_eq!(s["detail_file"], newest.display().to_string());
        let bytes = std::fs::read(&newest).unwrap();
        assert_eq!(s["detail_bytes"], bytes.len());
        let detail: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(detail["sweep_unix_ms"], s["sweep_unix_ms"]);
        assert_eq!(detail["fabric"]["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(detail["fabric"]["links"].as_array().unwrap().len(), 2);
        let ports = detail["fabric_counters"].as_array().unwrap();
        assert_eq!(
            ports.len(),
            5,
            "two CA ports, the switch's two cabled ports and its port 0"
        );
        assert!(ports.iter().all(|p| p.get("pma").is_some()), "{ports:?}");
    }
}
