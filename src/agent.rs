//! The collection loop, one cycle: read the sources (their table:
//! `agent/sources.rs`) into one reading → derive deltas, rates and flags
//! (the snapshot) → evaluate the findings on it → render every collector's
//! metrics from the reading, the derived state and the findings, then
//! self-metrics → publish metrics and snapshot in one swap. Snapshot files
//! are written on their own interval (`agent/run.rs`).

mod collect;
mod repeated;
mod run;
pub mod sources;
mod workers;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::analysis::findings::Findings;
use crate::collectors::Cycle;
use crate::collectors::self_metrics::{self, SelfReport};
use crate::config::Config;
use crate::exporters::snapshot::SnapshotWriter;
use crate::exporters::{Published, unix_ms};
use crate::mad_worker::MadView;
use crate::model::NodeReading;
use crate::snapshot::{self, Flag, Snapshot, SnapshotDoc};
use crate::sources::netlink::{NetlinkSocket, NlTransport};
use arc_swap::ArcSwapOption;

pub use repeated::{Repeated, Say};
pub use run::{Control, RELOADABLE_KEYS};
pub use workers::answer_store;

/// Totals the agent keeps about itself.
#[derive(Default)]
struct SelfStats {
    cycles: u64,
    last_cycle_seconds: f64,
    snapshots_written: u64,
    snapshot_errors: u64,
    /// Failed snapshot writes, said once per kind of failure.
    snapshot_failure: Repeated,
    /// Prune failures of snapshot writers replaced by a reload.
    prune_failures_before: u64,
    counter_resets: u64,
}

pub struct Agent {
    config: Config,
    /// The kernel sources that are on, in table order.
    sources: sources::Table,
    /// The MAD worker's latest view, and how to stop it.
    mad: Arc<ArcSwapOption<MadView>>,
    mad_stop: Option<std::sync::mpsc::Sender<()>>,
    findings: Findings,
    /// The findings engine's state file (general.state_dir), when kept.
    memory: Option<crate::analysis::state::Memory>,
    /// The AI worker's mailbox, when llm or dify is enabled.
    ai: Option<Arc<crate::analysis::ai::Mailbox>>,
    collectors: collect::Collectors,
    /// The catalog entries of the last cycle's counters (collectors::KnownCounters).
    known: crate::collectors::KnownCounters,
    /// Failed reads seen lately: they fail the collectors that depend on them.
    failures: crate::collectors::inputs::Failures,
    prev: Option<(NodeReading, Instant)>,
    /// The reading before `prev`, handed back to the sources to fill again.
    spare: Option<NodeReading>,
    published: Arc<Published>,
    writer: SnapshotWriter,
    stats: SelfStats,
    hostname: String,
    /// Link, RDMA monitor and kernel log events (the live system only).
    events: Option<crate::analysis::events::EventWatch>,
}

impl Agent {
    pub fn new(config: Config, published: Arc<Published>) -> Agent {
        let transport: Option<Result<Box<dyn NlTransport>, String>> =
            config.use_netlink().then(|| {
                NetlinkSocket::open()
                    .map(|s| Box::new(s) as Box<dyn NlTransport>)
                    .map_err(|e| e.to_string())
            });
        Agent::with_netlink(config, published, transport)
    }

    /// `transport`: `None` for sysfs only, `Some(Err)` when netlink could not be opened.
    pub fn with_netlink(
        config: Config,
        published: Arc<Published>,
        transport: Option<Result<Box<dyn NlTransport>, String>>,
    ) -> Agent {
        let sources = sources::Table::open(&config, sources::Opening { netlink: transport });
        let writer =
            SnapshotWriter::new(&config.general.snapshot_dir, config.general.snapshot_keep);
        let mut findings = Findings::new(config.analysis.clone());
        findings.set_health(config.health.clone());
        findings.set_expected_topology(&config.fabric.expected_topology);
        let live = config.general.sysfs_root == std::path::Path::new("/sys");
        let events = live.then(|| crate::analysis::events::EventWatch::open(&config.events));
        let memory = crate::analysis::state::Memory::open(&config, &mut findings);
        Agent {
            collectors: collect::Collectors::new(&config),
            known: Default::default(),
            config,
            sources,
            mad: Arc::new(ArcSwapOption::empty()),
            mad_stop: None,
            findings,
            memory,
            ai: None,
            failures: Default::default(),
            prev: None,
            spare: None,
            published,
            writer,
            stats: SelfStats::default(),
            hostname: hostname(),
            events,
        }
    }

    /// Runs one cycle and publishes its metrics and snapshot.
    pub fn cycle(&mut self) -> Arc<SnapshotDoc> {
        self.cycle_at(Instant::now()).0
    }

    /// [`Agent::cycle`] begun at `started` (the loop's clock read); also
    /// returns when it ended. The clock is read at the start, for the wall
    /// time and after the collectors (the cycle's end is told from there by
    /// the cycle counter): where it has no vDSO read (hpet) each read is a
    /// syscall.
    fn cycle_at(&mut self, started: Instant) -> (Arc<SnapshotDoc>, Instant) {
        let mark = self.collectors.mark(started);
        let wall = SystemTime::now();
        let mad = self.mad.load_full();
        let spare = self.spare.take().unwrap_or_default();
        let mut reading = self.sources.read(started, mad.clone(), spare);
        let accounts = self.sources.accounts();
        let keep = self
            .config
            .rescan_interval()
            .saturating_add(self.config.poll_interval().saturating_mul(2));
        self.failures.update(
            started,
            keep,
            &reading.node.errors,
            reading
                .node
                .netdevs
                .iter()
                .flat_map(|n| n.errors.iter().map(|e| (&*n.name, e.as_str()))),
        );
        for e in &reading.node.errors {
            log::debug!("sysfs: {e}");
        }
        let mut snapshot = self.derive(&mut reading, accounts.sources, started, wall);
        let now_ms = snapshot.timestamp_unix_ms;
        if let Some(e) = &mut self.events
            && e.cycle(&mut snapshot, &mut self.findings, now_ms)
        {
            self.sources.rescan_soon();
        }
        self.stats.counter_resets += snapshot
            .flagged()
            .filter(|(.., f)| *f == Flag::Reset)
            .count() as u64;
        let (findings, news) = self
            .findings
            .evaluate(&snapshot, snapshot.timestamp_unix_ms);
        self.stats.cycles += 1;

        let cycle = Cycle {
            node: &reading.node,
            mode: self.config.network.mode,
            mad: mad.as_deref(),
            attribution: reading.consumers.as_deref(),
            snapshot: &snapshot,
            findings: &findings,
            known: std::mem::take(&mut self.known),
        };
        let mut out = self.published.metrics.builder();
        let (statuses, clocked) = self.collectors.run(&cycle, &self.failures, &mut out, mark);
        let report = SelfReport {
            statuses: &statuses,
            collector_errors: &self.collectors.errors_total,
            cycles: self.stats.cycles,
            last_cycle_seconds: self.stats.last_cycle_seconds,
            counter_resets: self.stats.counter_resets,
            snapshots_written: self.stats.snapshots_written,
            snapshot_errors: self.stats.snapshot_errors,
            snapshot_prune_failures: self.stats.prune_failures_before
                + self.writer.prune_failures()
                + mad
                    .as_ref()
                    .and_then(|m| m.fabric_summary.as_ref())
                    .map_or(0, |f| f.detail_prune_failures),
            rdma_netlink_available: accounts.rdma_netlink_available,
            rdma_netlink_errors: accounts.rdma_netlink_errors,
            netdev: accounts.netdev,
            ai: self.ai.as_deref(),
        };
        self_metrics::collect(&cycle, &report, &mut out);
        if let Some(e) = &self.events {
            e.export(&mut out);
        }
        self.known = cycle.known.next();
        let ended = clocked.now();
        self.stats.last_cycle_seconds = ended.duration_since(started).as_secs_f64();

        let doc = Arc::new(SnapshotDoc::new(snapshot, statuses, findings));
        self.published.publish(out.finish(), doc.clone(), ended);
        if let Some(ai) = &self.ai {
            ai.offer(doc.clone(), news);
        }
        self.spare = self.prev.replace((reading.node, started)).map(|(r, _)| r);
        (doc, ended)
    }

    /// The derived state of this cycle: deltas, rates and flags against the
    /// previous reading. The netdevs and read errors move into it (the next
    /// cycle's rates need only the devices).
    fn derive(
        &self,
        reading: &mut sources::Reading,
        sources: snapshot::Sources,
        started: Instant,
        wall: SystemTime,
    ) -> Snapshot {
        let node = &mut reading.node;
        let (prev, elapsed) = match &self.prev {
            Some((r, t)) => (Some(r), Some(started.duration_since(*t).as_secs_f64())),
            None => (None, None),
        };
        let devices =
            snapshot::devices(node, prev, elapsed.unwrap_or(0.0), self.config.network.mode);
        Snapshot {
            schema_version: snapshot::SCHEMA_VERSION,
            agent: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            hostname: self.hostname.clone(),
            timestamp: humantime::format_rfc3339_millis(wall).to_string(),
            timestamp_unix_ms: unix_ms(wall),
            interval_seconds: elapsed,
            sysfs_root: self.config.general.sysfs_root.display().to_string(),
            rdma_class_present: node.class_present,
            devices,
            read_errors: std::mem::take(&mut node.errors),
            mad: reading.mad.clone(),
            netdevs: std::mem::take(&mut node.netdevs),
            module_params: node.module_params.clone(),
            consumers: reading
                .consumers
                .as_ref()
                .map_or_else(Default::default, |a| a.consumers.clone()),
            attribution: reading.consumers.as_ref().map(|a| a.status.clone()),
            events: None,
            sources,
        }
    }

    /// Writes `doc` to the snapshot directory; failures are counted, and
    /// logged once per kind of failure until one succeeds.
    pub fn write_snapshot(&mut self, doc: &SnapshotDoc) {
        if let Some(m) = &mut self.memory {
            m.save(&self.findings);
        }
        match self.writer.write(&doc.snapshot.timestamp, doc.json()) {
            Ok(path) => {
                self.stats.snapshots_written += 1;
                self.stats.snapshot_failure.log_ok("snapshot files");
                log::debug!("snapshot written: {}", path.display());
            }
            Err(e) => {
                self.stats.snapshot_errors += 1;
                let kind = e.kind();
                self.stats
                    .snapshot_failure
                    .log_fail("snapshot files", &kind, &e);
            }
        }
    }
}

fn hostname() -> String {
    crate::sources::file::read_attr(std::path::Path::new("/proc/sys/kernel/hostname"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_applies_what_it_can_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(
            None,
            [(
                "RDMA_MON_GENERAL__SYSFS_ROOT".to_string(),
                dir.path().join("none").display().to_string(),
            )],
        )
        .unwrap();
        let mut agent = Agent::with_netlink(
            config.clone(),
            Arc::new(Published::new(config.poll_interval())),
            None,
        );
        let mut new = config.clone();
        new.general.snapshot_dir = dir.path().join("elsewhere");
        new.general.snapshot_keep = 3;
        new.general.poll_interval = 1.0;
        new.prometheus.port = 9999;
        let restart = agent.reload(new);
        assert_eq!(restart, vec!["general.poll_interval", "prometheus.port"]);
        assert_eq!(agent.config.general.snapshot_keep, 3);
        assert_eq!(
            agent.config.general.poll_interval,
            config.general.poll_interval
        );
        let doc = agent.cycle();
        agent.write_snapshot(&doc);
        assert_eq!(agent.stats.snapshots_written, 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("elsewhere"))
                .unwrap()
                .count(),
            1
        );
    }
}
