//! The collection loop: read the sources once, run every collector over the
//! reading, add self-metrics, publish metrics and snapshot in one swap, write
//! snapshot files on their own interval.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::analysis::findings::Findings;
use crate::catalog;
use crate::collectors::{self, Collector, Cycle};
use crate::config::Config;
use crate::exporters::snapshot::SnapshotWriter;
use crate::exporters::{Published, unix_ms};
use crate::mad_worker::{self, MadView, Plan};
use crate::merge;
use crate::metrics::Builder;
use crate::model::ReadError;
use crate::model::finding::Severity;
use crate::model::{DeviceFilter, NodeReading};
use crate::snapshot::{self, CollectorStatus, CycleCost, Flag, Snapshot, SnapshotDoc, Sources};
use crate::sources::netlink::nldev::poll::NetlinkSource;
use crate::sources::netlink::nldev::settings::OptIns;
use crate::sources::netlink::{NetlinkSocket, NlTransport, TransportStats};
use crate::sources::sysfs::{SourceStats, SysfsSource};
use arc_swap::ArcSwapOption;

struct Registered {
    name: &'static str,
    reads: &'static [collectors::inputs::Input],
    collector: Box<dyn Collector>,
    errors_total: u64,
    failure: Repeated,
}

/// What the loop is told from outside (signals). The signal thread never
/// logs itself (a blocked stderr must not keep it from a second SIGTERM):
/// the loop says what happened.
pub enum Control {
    /// Write a last snapshot and return.
    Stop,
    /// The configuration file read again (SIGHUP): the new configuration, or
    /// why it was refused (the running one is kept).
    Reload(Result<Box<Config>, String>),
    /// A signal that is only noted (its default action would kill the agent).
    Ignored(i32),
}

/// The configuration keys a reload applies; every other key takes effect
/// at the next start (the listener, the sources and the workers are built
/// once, and `/healthz` judges staleness by the starting `poll_interval`).
/// The web config file's content is not a key: it is re-read when it
/// changes (and on SIGHUP); only its path needs a restart.
pub const RELOADABLE_KEYS: &[&str] = &[
    "general.log_level",
    "general.snapshot_interval",
    "general.snapshot_dir",
    "general.snapshot_keep",
];

/// A failure that may repeat every cycle: logged the first time (and when
/// its kind changes) with how often the previous kind repeated, then once
/// more when it clears, instead of a line per occurrence.
#[derive(Default)]
pub struct Repeated {
    current: Option<(String, u64)>,
}

/// What to say about one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// A new kind of failure; `previous` is the kind it replaces and its count.
    First {
        previous: Option<(String, u64)>,
    },
    /// The same kind again: nothing to log.
    Again,
    /// It worked after `count` failures of `kind`.
    Cleared {
        kind: String,
        count: u64,
    },
    Nothing,
}

impl Repeated {
    pub fn fail(&mut self, kind: &str) -> Say {
        if let Some((k, n)) = &mut self.current
            && k == kind
        {
            *n += 1;
            return Say::Again;
        }
        let previous = self.current.replace((kind.to_string(), 1));
        Say::First { previous }
    }

    pub fn ok(&mut self) -> Say {
        match self.current.take() {
            Some((kind, count)) => Say::Cleared { kind, count },
            None => Say::Nothing,
        }
    }

    /// Logs `msg` for a failure of `kind` under `what`, as [`Repeated::fail`] decides.
    fn log_fail(&mut self, what: &str, kind: &str, msg: &dyn std::fmt::Display) {
        if let Say::First { previous } = self.fail(kind) {
            if let Some((k, n)) = previous {
                log::warn!("{what}: the previous failure ({k}) happened {n} time(s)");
            }
            log::error!("{msg} (said once: repeats are counted until it clears)");
        }
    }

    fn log_ok(&mut self, what: &str) {
        if let Say::Cleared { kind, count } = self.ok() {
            log::info!("{what}: working again after {count} failure(s) ({kind})");
        }
    }
}

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
    netlink_errors: u64,
}

/// RDMA netlink, when the kernel has it and the configuration wants it.
enum Netlink {
    Off,
    Unavailable(String),
    On(Box<NetlinkSource<Box<dyn NlTransport>>>),
}

pub struct Agent {
    config: Config,
    sysfs: SysfsSource,
    netlink: Netlink,
    last_netlink_error: Option<String>,
    cost: CycleCost,
    /// The Ethernet side of the ports; on when reading the live /sys or
    /// when netdevs are named in the configuration.
    netdev: Option<crate::sources::netdev::NetdevSource>,
    /// Kernel module parameters and when they were read.
    module_params: (Option<Instant>, Arc<Vec<crate::model::Param>>),
    /// The MAD worker's latest view, and how to stop it.
    mad: Arc<ArcSwapOption<MadView>>,
    mad_stop: Option<std::sync::mpsc::Sender<()>>,
    findings: Findings,
    /// The findings engine's state file (general.state_dir), when kept.
    memory: Option<crate::analysis::state::Memory>,
    /// The AI worker's mailbox, when llm or dify is enabled.
    ai: Option<Arc<crate::analysis::ai::Mailbox>>,
    /// The last cycle raised a new warning or critical finding.
    last_findings_news: bool,
    collectors: Vec<Registered>,
    /// Failed reads seen lately: they fail the collectors that depend on them.
    failures: collectors::inputs::Failures,
    prev: Option<(NodeReading, Instant)>,
    published: Arc<Published>,
    writer: SnapshotWriter,
    stats: SelfStats,
    hostname: String,
    /// Who uses the fabric: the resource dumps, when on, and their last result.
    attribution: Option<crate::sources::attribution::AttributionSource>,
    consumers: Option<Arc<crate::model::consumers::Attribution>>,
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
        let filter = DeviceFilter {
            include: config.network.devices.clone(),
            exclude: config.network.exclude_devices.clone(),
        };
        let netlink = match transport {
            None => Netlink::Off,
            Some(Err(why)) => {
                log::warn!("RDMA netlink unavailable ({why}): reading everything from sysfs");
                Netlink::Unavailable(why)
            }
            Some(Ok(t)) => Netlink::On(Box::new(NetlinkSource::new(
                t,
                filter.clone(),
                OptIns {
                    optional_counters: config.network.optional_counters.clone(),
                    auto_mode_mask: config.network.auto_mode_mask(),
                },
                config.rescan_interval(),
            ))),
        };
        let sysfs = SysfsSource::new(&config.general.sysfs_root, filter, config.rescan_interval());
        let attribution =
            (config.attribution.enabled && matches!(netlink, Netlink::On(_))).then(|| {
                crate::sources::attribution::AttributionSource::new(
                    &config.general.proc_root,
                    &config.attribution.host_root,
                    std::time::Duration::from_secs_f64(config.attribution.interval),
                    config.attribution.max_consumers as usize,
                )
            });
        let collectors = collectors::REGISTRY
            .iter()
            .map(|r| Registered {
                name: r.name,
                reads: r.reads,
                collector: (r.factory)(&config),
                errors_total: 0,
                failure: Repeated::default(),
            })
            .collect();
        let writer =
            SnapshotWriter::new(&config.general.snapshot_dir, config.general.snapshot_keep);
        let mut findings = Findings::new(config.analysis.clone());
        findings.set_health(config.health.clone());
        findings.set_expected_topology(&config.fabric.expected_topology);
        let memory = crate::analysis::state::Memory::open(&config, &mut findings);
        let live = config.general.sysfs_root == std::path::Path::new("/sys");
        let events = live.then(|| crate::analysis::events::EventWatch::open(&config.events));
        let netdev = (live || !config.network.netdevs.is_empty()).then(|| {
            crate::sources::netdev::NetdevSource::open(
                &config.general.sysfs_root,
                config.rescan_interval(),
            )
        });
        Agent {
            config,
            sysfs,
            netlink,
            last_netlink_error: None,
            cost: CycleCost::default(),
            netdev,
            module_params: (None, Arc::new(Vec::new())),
            mad: Arc::new(ArcSwapOption::empty()),
            mad_stop: None,
            findings,
            memory,
            ai: None,
            last_findings_news: false,
            collectors,
            failures: Default::default(),
            prev: None,
            published,
            writer,
            stats: SelfStats::default(),
            hostname: hostname(),
            attribution,
            consumers: None,
            events,
        }
    }

    /// Runs one cycle and publishes its metrics and snapshot.
    pub fn cycle(&mut self) -> Arc<SnapshotDoc> {
        let started = Instant::now();
        let wall = SystemTime::now();
        let mut reading = self.read_sources(started);
        let keep = self
            .config
            .rescan_interval()
            .saturating_add(self.config.poll_interval().saturating_mul(2));
        self.failures.update(
            started,
            keep,
            &reading.errors,
            reading
                .netdevs
                .iter()
                .flat_map(|n| n.errors.iter().map(|e| (&*n.name, e.as_str()))),
        );
        let mad = self.mad.load_full();
        let cycle = Cycle {
            node: &reading,
            mode: self.config.network.mode,
            mad: mad.as_deref(),
            attribution: self.consumers.as_deref(),
        };
        let mut out = Builder::new();
        let mut statuses = Vec::with_capacity(self.collectors.len());
        for c in &mut self.collectors {
            let t = Instant::now();
            // A collector bug costs its own area for one cycle, not the agent.
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                c.collector.collect(&cycle, &mut out)
            }));
            let error = match result {
                Ok(Ok(())) => self.failures.failure_of(c.reads),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("collector panicked".to_string()),
            };
            match &error {
                Some(e) => {
                    c.errors_total += 1;
                    let what = format!("collector {}", c.name);
                    c.failure.log_fail(&what, e, &format_args!("{what}: {e}"));
                }
                None => c.failure.log_ok(&format!("collector {}", c.name)),
            }
            statuses.push(CollectorStatus {
                name: c.name,
                success: error.is_none(),
                duration_seconds: t.elapsed().as_secs_f64(),
                error,
            });
        }

        let (prev, elapsed) = match &self.prev {
            Some((r, t)) => (Some(r), Some(started.duration_since(*t).as_secs_f64())),
            None => (None, None),
        };
        let devices = snapshot::devices(
            &reading,
            prev,
            elapsed.unwrap_or(0.0),
            self.config.network.mode,
            &snapshot::Widths {
                pma: |n| catalog::saturation(catalog::Source::Pma, n),
                hw: |n| catalog::saturation(catalog::Source::Hw, n),
            },
        );
        for e in &reading.errors {
            log::debug!("sysfs: {e}");
        }
        let snapshot = Snapshot {
            schema_version: snapshot::SCHEMA_VERSION,
            agent: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            hostname: self.hostname.clone(),
            timestamp: humantime::format_rfc3339_millis(wall).to_string(),
            timestamp_unix_ms: unix_ms(wall),
            interval_seconds: elapsed,
            sysfs_root: self.config.general.sysfs_root.display().to_string(),
            rdma_class_present: reading.class_present,
            devices,
            collectors: statuses,
            // Moved, not copied: the next cycle's rates need only `devices`.
            read_errors: std::mem::take(&mut reading.errors),
            mad: mad.clone(),
            netdevs: std::mem::take(&mut reading.netdevs),
            module_params: reading.module_params.clone(),
            findings: Vec::new(),
            events: None,
            consumers: self
                .consumers
                .as_ref()
                .map_or_else(Default::default, |a| a.consumers.clone()),
            attribution: self.consumers.as_ref().map(|a| a.status.clone()),
            sources: Sources {
                sysfs: self.sysfs.stats(),
                rdma_netlink: self.netlink_stats(),
                rdma_netlink_unavailable: match &self.netlink {
                    Netlink::Unavailable(why) => Some(why.clone()),
                    _ => None,
                },
                last_cycle: self.cost,
            },
        };
        let mut snapshot = snapshot;
        let now_ms = snapshot.timestamp_unix_ms;
        if let Some(e) = &mut self.events
            && e.cycle(&mut snapshot, &mut self.findings, now_ms)
        {
            self.sysfs.rescan_soon();
        }
        let (findings, news) = self
            .findings
            .evaluate(&snapshot, snapshot.timestamp_unix_ms);
        snapshot.findings = findings;
        self.last_findings_news = news;
        self.stats.cycles += 1;
        self.finding_metrics(&snapshot, &mut out);
        if let Some(e) = &self.events {
            e.export(&mut out);
        }
        self.self_metrics(&snapshot, &mut out);
        self.stats.last_cycle_seconds = started.elapsed().as_secs_f64();
        let doc = Arc::new(SnapshotDoc::new(snapshot));
        self.published.publish(out.finish(), doc.clone());
        if let Some(ai) = &self.ai {
            ai.offer(doc.clone(), self.last_findings_news);
        }
        self.prev = Some((reading, started));
        doc
    }

    /// Starts the MAD work the configuration asks for (local PMA counters,
    /// fabric sweeps): on its own thread, or once, right now, for `--once`.
    pub fn start_mad(&mut self, background: bool) {
        let plan = Plan::from_config(&self.config, |name| {
            catalog::saturation(catalog::Source::Pma, name)
        });
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

    fn netlink_stats(&self) -> Option<TransportStats> {
        match &self.netlink {
            Netlink::On(src) => Some(src.stats()),
            _ => None,
        }
    }

    /// RDMA netlink first (when on), then sysfs for what netlink did not
    /// cover, merged into one reading; the cost of each is recorded.
    fn read_sources(&mut self, now: Instant) -> NodeReading {
        let sysfs_before = self.sysfs.stats();
        let nl_before = self.netlink_stats().unwrap_or_default();
        let nl_reading = match &mut self.netlink {
            Netlink::On(src) => match src.poll(now) {
                Ok(r) => {
                    self.last_netlink_error = None;
                    Some(r)
                }
                Err(e) => {
                    self.stats.netlink_errors += 1;
                    let msg = e.to_string();
                    // Say it once, not every cycle.
                    if self.last_netlink_error.as_deref() != Some(msg.as_str()) {
                        log::warn!("RDMA netlink: {msg}; this cycle reads sysfs only");
                        self.last_netlink_error = Some(msg);
                    }
                    None
                }
            },
            _ => None,
        };
        if let (Netlink::On(src), Some(r), Some(a)) =
            (&mut self.netlink, &nl_reading, &mut self.attribution)
            && let Some(done) = a.poll(now, unix_ms(SystemTime::now()), src.client_mut(), r)
        {
            self.consumers = Some(Arc::new(done));
        }
        // Netlink failed: the last dump's consumers must not stay published as current.
        if let (None, Some(a)) = (&nl_reading, &mut self.attribution) {
            let why = self
                .last_netlink_error
                .as_deref()
                .unwrap_or("RDMA netlink failed");
            self.consumers = Some(Arc::new(a.unavailable(unix_ms(SystemTime::now()), why)));
        }
        let mut covered = nl_reading.as_ref().map(merge::covered).unwrap_or_default();
        let mad = self.mad.load_full();
        if let Some(view) = &mad {
            merge::covered_by_mad(view, &mut covered);
        }
        let mut reading = self.sysfs.poll_covered(now, &covered);
        if let Some(mut nl) = nl_reading {
            for e in nl.errors.drain(..) {
                self.stats.netlink_errors += 1;
                reading.errors.push(ReadError {
                    path: "rdma_netlink".into(),
                    reason: e,
                });
            }
            merge::merge(&mut reading, nl);
        }
        if let Some(view) = &mad {
            merge::merge_mad(&mut reading, view);
        }
        if self
            .module_params
            .0
            .is_none_or(|t| now.duration_since(t) >= self.config.rescan_interval())
        {
            let (params, errors) =
                crate::sources::kmod::read_params(&self.config.general.sysfs_root);
            // Counted with the other sysfs read errors; listed in this cycle's snapshot.
            self.sysfs.note_read_failures(errors.len());
            reading.errors.extend(errors);
            self.module_params = (Some(now), Arc::new(params));
        }
        reading.module_params = self.module_params.1.clone();
        let mut netdev_cost = (0, 0, 0);
        if let Some(nd) = &mut self.netdev {
            let mut names: Vec<String> = reading
                .devices
                .iter()
                .flat_map(|d| d.ports.iter().filter_map(|p| p.info.netdev.clone()))
                .chain(self.config.network.netdevs.iter().cloned())
                .collect();
            names.sort();
            names.dedup();
            let before = nd.stats;
            reading.netdevs = nd.poll(&names, now);
            netdev_cost = (
                nd.stats.ioctls - before.ioctls,
                nd.stats.netlink_round_trips - before.netlink_round_trips,
                names.len() as u64,
            );
        }
        let sysfs_after: SourceStats = self.sysfs.stats();
        let nl_after = self.netlink_stats().unwrap_or_default();
        self.cost = CycleCost {
            sysfs_syscalls: sysfs_after.syscalls - sysfs_before.syscalls,
            sysfs_file_reads: sysfs_after.file_reads - sysfs_before.file_reads,
            rdma_netlink_syscalls: nl_after.syscalls - nl_before.syscalls,
            rdma_netlink_round_trips: nl_after.round_trips - nl_before.round_trips,
            ethtool_ioctls: netdev_cost.0,
            rtnetlink_round_trips: netdev_cost.1,
            netdevs: netdev_cost.2,
        };
        reading
    }

    fn finding_metrics(&self, snap: &Snapshot, out: &mut Builder) {
        for f in &snap.findings {
            let port = f.port.map(|p| p.to_string()).unwrap_or_default();
            let priority = f.priority.map(|p| p.to_string()).unwrap_or_default();
            out.gauge_u64(
                "rdma_finding",
                "An active finding (value is always 1): rule id, severity, where.",
                &[
                    ("id", f.id),
                    ("severity", f.severity.as_str()),
                    ("device", &f.device),
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
                snap.findings.iter().filter(|f| f.severity == sev).count() as u64,
            );
        }
        crate::analysis::health::export(&snap.findings, out);
    }

    fn self_metrics(&mut self, snap: &Snapshot, out: &mut Builder) {
        for (c, status) in self.collectors.iter().zip(&snap.collectors) {
            let l = [("collector", c.name)];
            out.gauge(
                "rdma_monitor_collector_duration_seconds",
                "Time the collector took in the last cycle.",
                &l,
                status.duration_seconds,
            );
            out.gauge_u64(
                "rdma_monitor_collector_success",
                "1 when the collector's last run succeeded.",
                &l,
                status.success.into(),
            );
            out.counter(
                "rdma_monitor_collector_errors_total",
                "Collector runs that failed.",
                &l,
                c.errors_total,
            );
        }
        out.gauge_u64(
            "rdma_monitor_build_info",
            "Build of the running agent (value is always 1).",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        out.counter(
            "rdma_monitor_cycles_total",
            "Collection cycles run.",
            &[],
            self.stats.cycles,
        );
        out.gauge(
            "rdma_monitor_cycle_duration_seconds",
            "Wall time of the previous complete collection cycle.",
            &[],
            self.stats.last_cycle_seconds,
        );
        out.gauge(
            "rdma_monitor_last_cycle_timestamp_seconds",
            "Unix time the last cycle started.",
            &[],
            snap.timestamp_unix_ms as f64 / 1000.0,
        );
        let s = snap.sources.sysfs;
        out.counter(
            "rdma_monitor_sysfs_reads_total",
            "sysfs attribute reads (a held file: one pread; otherwise open, read, close).",
            &[],
            s.file_reads,
        );
        out.counter(
            "rdma_monitor_sysfs_read_errors_total",
            "sysfs reads that failed for a reason other than the attribute being unsupported.",
            &[],
            s.read_failures,
        );
        out.counter(
            "rdma_monitor_sysfs_rescans_total",
            "Full re-discoveries of the RDMA devices in sysfs.",
            &[],
            s.rescans,
        );
        let c = self.cost;
        for (source, syscalls) in [
            ("sysfs", c.sysfs_syscalls),
            ("rdma_netlink", c.rdma_netlink_syscalls),
        ] {
            out.gauge_u64(
                "rdma_monitor_cycle_syscalls",
                "System calls the last cycle made to read each source.",
                &[("source", source)],
                syscalls,
            );
        }
        let total = [
            ("sysfs", s.syscalls),
            (
                "rdma_netlink",
                snap.sources.rdma_netlink.map_or(0, |n| n.syscalls),
            ),
        ];
        for (source, syscalls) in total {
            out.counter(
                "rdma_monitor_syscalls_total",
                "System calls made to read each source since start.",
                &[("source", source)],
                syscalls,
            );
        }
        if let Some(nd) = &self.netdev {
            out.counter(
                "rdma_monitor_ethtool_ioctls_total",
                "SIOCETHTOOL ioctls made (a count query and a GSTATS per netdev a cycle; the rest at rescans).",
                &[],
                nd.stats.ioctls,
            );
            out.counter(
                "rdma_monitor_ethtool_stat_name_rereads_total",
                "ethtool statistic names read again because the driver's statistic count changed (mlx5: channels, PTP, XDP).",
                &[],
                nd.stats.ethtool_stat_name_rereads,
            );
            out.counter(
                "rdma_monitor_rtnetlink_round_trips_total",
                "rtnetlink link dumps (one a cycle, for every netdev).",
                &[],
                nd.stats.netlink_round_trips,
            );
        }
        out.gauge_u64(
            "rdma_monitor_rdma_netlink_available",
            "1 when RDMA netlink is in use (0: off by configuration, or the kernel lacks it).",
            &[],
            matches!(self.netlink, Netlink::On(_)).into(),
        );
        if let Some(n) = snap.sources.rdma_netlink {
            out.counter(
                "rdma_monitor_rdma_netlink_round_trips_total",
                "RDMA netlink requests made (each a complete request/reply exchange).",
                &[],
                n.round_trips,
            );
        }
        out.counter(
            "rdma_monitor_rdma_netlink_errors_total",
            "RDMA netlink requests that failed (the value is then read from sysfs or left out).",
            &[],
            self.stats.netlink_errors,
        );
        out.counter(
            "rdma_monitor_netlink_malformed_attributes_total",
            "Netlink attributes (or table entries) of the wrong size for their type, skipped (RDMA netlink, rtnetlink, DCB, ethtool netlink, devlink).",
            &[],
            crate::sources::netlink::wire::malformed_attributes(),
        );
        for d in &snap.devices {
            for p in &d.ports {
                let port = p.port.to_string();
                for (data, origin) in [
                    ("state", p.origin.state),
                    ("hw_counters", p.origin.hw_counters),
                    ("counters", p.origin.counters),
                ] {
                    out.gauge_u64(
                        "rdma_monitor_port_data_origin",
                        "Which interface a port's data came from this cycle (value is always 1).",
                        &[
                            ("device", &d.info.name),
                            ("port", &port),
                            ("data", data),
                            ("origin", origin.as_str()),
                        ],
                        1,
                    );
                }
            }
        }
        if let Some(view) = &snap.mad {
            let m = view.stats;
            for (outcome, n) in [
                ("answered", m.answered),
                ("timeout", m.timeouts),
                ("retry", m.retries),
                ("error", m.errors),
            ] {
                out.counter(
                    "rdma_monitor_mads_total",
                    "MADs sent through umad, by outcome (sent = answered + timeout + error + retry).",
                    &[("outcome", outcome)],
                    n,
                );
            }
            out.gauge_u64(
                "rdma_monitor_umad_unavailable",
                "umad devices that could not be opened (the reason is in the snapshot and the log).",
                &[],
                view.unavailable.len() as u64,
            );
        }
        if let Some(ai) = &self.ai {
            ai.export(out);
        }
        out.gauge_u64(
            "rdma_monitor_rdma_class_present",
            "1 when /sys/class/infiniband exists (the RDMA core is loaded).",
            &[],
            snap.rdma_class_present.into(),
        );
        for d in &snap.devices {
            if !d.info.unsupported.is_empty() {
                out.gauge_u64(
                    "rdma_monitor_unsupported_attributes",
                    "Attribute files skipped because the kernel does not provide them here (not exported as 0).",
                    &[("device", &d.info.name), ("port", "")],
                    d.info.unsupported.len() as u64,
                );
            }
            for p in &d.ports {
                if !p.unsupported.is_empty() {
                    let port = p.port.to_string();
                    out.gauge_u64(
                        "rdma_monitor_unsupported_attributes",
                        "Attribute files skipped because the kernel does not provide them here (not exported as 0).",
                        &[("device", &d.info.name), ("port", &port)],
                        p.unsupported.len() as u64,
                    );
                }
            }
        }
        for (d, port, counter, flag) in snap.flagged() {
            match flag {
                Flag::Saturated => {
                    let port = port.map(|p| p.to_string()).unwrap_or_default();
                    out.gauge_u64(
                        "rdma_stat_saturated",
                        "1 for a counter sitting at its saturation value: it no longer counts.",
                        &[
                            ("device", &d.info.name),
                            ("port", &port),
                            ("counter", counter),
                        ],
                        1,
                    );
                }
                Flag::Reset => self.stats.counter_resets += 1,
            }
        }
        out.counter(
            "rdma_monitor_stat_resets_total",
            "Counters seen going down between cycles (device reset or counters cleared).",
            &[],
            self.stats.counter_resets,
        );
        out.counter(
            "rdma_monitor_snapshots_written_total",
            "JSON snapshot files written.",
            &[],
            self.stats.snapshots_written,
        );
        out.counter(
            "rdma_monitor_snapshot_errors_total",
            "JSON snapshot files that could not be written.",
            &[],
            self.stats.snapshot_errors,
        );
        out.counter(
            "rdma_monitor_snapshot_prune_failures_total",
            "Attempts to delete an old snapshot file past snapshot_keep that failed (the file is skipped).",
            &[],
            self.stats.prune_failures_before + self.writer.prune_failures(),
        );
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

    /// Applies what a reload can change (see [`RELOADABLE_KEYS`]) and keeps
    /// the new configuration; returns the changed keys that need a restart.
    pub fn reload(&mut self, new: Config) -> Vec<String> {
        let changed = crate::config::changed_keys(&self.config, &new);
        let g = &new.general;
        log::set_max_level(g.log_level.filter());
        if g.snapshot_dir != self.config.general.snapshot_dir
            || g.snapshot_keep != self.config.general.snapshot_keep
        {
            self.stats.prune_failures_before += self.writer.prune_failures();
            self.writer = SnapshotWriter::new(&g.snapshot_dir, g.snapshot_keep);
            self.writer.remove_leftovers();
        }
        let restart: Vec<String> = changed
            .into_iter()
            .filter(|k| !RELOADABLE_KEYS.contains(&k.as_str()))
            .collect();
        // What is not applied stays as it runs, so the agent reports (and
        // its next reload compares against) the configuration in effect.
        let mut effective = self.config.clone();
        effective.general.log_level = g.log_level;
        effective.general.snapshot_interval = g.snapshot_interval;
        effective.general.snapshot_dir = g.snapshot_dir.clone();
        effective.general.snapshot_keep = g.snapshot_keep;
        self.config = effective;
        restart
    }

    /// Cycles until told to stop: every `poll_interval`, a snapshot file
    /// every `snapshot_interval`, and a last snapshot on the way out.
    pub fn run(&mut self, control: &std::sync::mpsc::Receiver<Control>) {
        // Temporary files of a write cut short by a crash.
        self.writer.remove_leftovers();
        let poll = self.config.poll_interval();
        let mut snapshot_every = self.config.snapshot_interval();
        let mut next_cycle = Instant::now();
        let mut next_snapshot = crate::clock::from_now(snapshot_every);
        let mut last = None;
        loop {
            let now = Instant::now();
            if now >= next_cycle {
                last = Some(self.cycle());
                // Fixed cadence; after a stall, skip missed cycles instead of bursting.
                next_cycle = crate::clock::after(next_cycle, poll);
                if next_cycle <= Instant::now() {
                    next_cycle = crate::clock::from_now(poll);
                }
            }
            if Instant::now() >= next_snapshot {
                if let Some(doc) = &last {
                    self.write_snapshot(doc);
                }
                next_snapshot = crate::clock::after(next_snapshot, snapshot_every);
                if next_snapshot <= Instant::now() {
                    next_snapshot = crate::clock::from_now(snapshot_every);
                }
            }
            let wait = next_cycle
                .min(next_snapshot)
                .saturating_duration_since(Instant::now());
            match control.recv_timeout(wait.max(Duration::from_millis(1))) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Ok(Control::Ignored(sig)) => {
                    log::info!(
                        "signal {sig} ignored (SIGHUP reloads the configuration, SIGTERM/SIGINT/SIGQUIT stop)"
                    );
                }
                Ok(Control::Reload(Err(why))) => {
                    log::error!("configuration not reloaded, the running one is kept: {why}");
                }
                Ok(Control::Reload(Ok(new))) => {
                    let restart = self.reload(*new);
                    if self.config.snapshot_interval() != snapshot_every {
                        snapshot_every = self.config.snapshot_interval();
                        next_snapshot = crate::clock::from_now(snapshot_every);
                    }
                    if restart.is_empty() {
                        log::info!("configuration reloaded");
                    } else {
                        log::warn!(
                            "configuration reloaded; changes that take effect after a restart only: {}",
                            restart.join(", ")
                        );
                    }
                }
                // Told to stop, or the sender gone: write what we have and leave.
                Ok(Control::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    log::info!("stopping: writing a last snapshot");
                    break;
                }
            }
        }
        let doc = match last {
            Some(doc) => doc,
            None => self.cycle(),
        };
        self.write_snapshot(&doc);
        if let Some(stop) = self.mad_stop.take() {
            let _ = stop.send(());
        }
        // The AI thread is not waited for: an HTTP call in flight must not hold up the exit.
        if let Some(ai) = &self.ai {
            ai.stop();
        }
    }
}

fn hostname() -> String {
    crate::sources::file::read_attr(std::path::Path::new("/proc/sys/kernel/hostname"))
        .unwrap_or_default()
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

    #[test]
    fn a_repeated_failure_is_said_once_then_when_it_clears() {
        let mut r = Repeated::default();
        assert_eq!(r.ok(), Say::Nothing);
        assert_eq!(r.fail("StorageFull"), Say::First { previous: None });
        for _ in 0..97 {
            assert_eq!(r.fail("StorageFull"), Say::Again);
        }
        // A different kind is news, with the count of the one before.
        assert_eq!(
            r.fail("PermissionDenied"),
            Say::First {
                previous: Some(("StorageFull".into(), 98))
            }
        );
        assert_eq!(
            r.ok(),
            Say::Cleared {
                kind: "PermissionDenied".into(),
                count: 1
            }
        );
        assert_eq!(r.ok(), Say::Nothing);
    }

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
