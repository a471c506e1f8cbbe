//! The kernel sources of one cycle, in one table. Each [`Source`] reads its
//! part into the cycle's [`NodeReading`] (re-discovering at its own rescan
//! interval) and then states what that cost. A new kernel interface is a
//! decoder module in `src/sources/`, its `Source` here, and one line in
//! [`SOURCES`].

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::config::Config;
use crate::exporters::unix_ms;
use crate::mad_worker::MadView;
use crate::merge;
use crate::model::consumers::Attribution;
use crate::model::{DeviceFilter, NodeReading, Param, ReadError};
use crate::snapshot::Sources;
use crate::sources::attribution::AttributionSource;
use crate::sources::netdev::{NetdevSource, NetdevStats};
use crate::sources::netlink::nldev::poll::{NetlinkReading, NetlinkSource};
use crate::sources::netlink::nldev::settings::{self, OptIns};
use crate::sources::netlink::{NlTransport, TransportStats};
use crate::sources::sysfs::SysfsSource;

/// One kernel interface as the loop sees it.
pub trait Source: Send {
    /// Reads what the sources before it in the table need this cycle,
    /// before any of them polls (the link dump: the RDMA ports' rate rule).
    fn prepare(&mut self, _cycle: &mut Reading) {}
    /// Reads this source's part of the cycle into `cycle.node`.
    fn poll(&mut self, cycle: &mut Reading);
    /// Adds what the last `poll` cost, and this source's totals, to the accounts.
    fn account(&self, into: &mut Accounts);
    /// An event said the devices changed: rediscover at the next poll.
    fn rescan_soon(&mut self) {}
}

/// A source's line in [`SOURCES`]: how it is built from the configuration
/// (`None`: off here).
pub struct Registration {
    pub name: &'static str,
    pub open: fn(&Config, &mut Opening) -> Option<Box<dyn Source>>,
}

/// Every source, in the order they are read: a later one may use what an
/// earlier one put in the reading (the netdevs are those of the RDMA ports).
pub const SOURCES: &[Registration] = &[
    Registration {
        name: "rdma",
        open: Rdma::open,
    },
    Registration {
        name: "kmod",
        open: Kmod::open,
    },
    Registration {
        name: "netdev",
        open: Netdev::open,
    },
];

/// What a source may take when it is built, besides the configuration.
pub struct Opening {
    /// RDMA netlink: `None` off, `Some(Err)` when it could not be opened.
    pub netlink: Option<Result<Box<dyn NlTransport>, String>>,
}

/// One cycle's reading while the sources fill it.
pub struct Reading {
    pub now: Instant,
    pub node: NodeReading,
    /// The MAD worker's latest view: its PMA counters win over sysfs.
    pub mad: Option<Arc<MadView>>,
    /// The latest resource dumps grouped by consumer, when attribution is on.
    pub consumers: Option<Arc<Attribution>>,
    /// (ifindex, carrier changes) of the links whose count tells a speed
    /// change, from this cycle's link dump (when the netdev source runs).
    pub carriers: Option<Vec<(u32, u32)>>,
}

/// What reading the sources cost: the snapshot's `sources` (with this
/// cycle's cost in `last_cycle`) and the totals self-metrics export.
#[derive(Default)]
pub struct Accounts {
    pub sources: Sources,
    pub rdma_netlink_available: bool,
    pub rdma_netlink_errors: u64,
    pub netdev: Option<NetdevStats>,
}

/// The sources of the table that are on, read in order.
pub struct Table {
    sources: Vec<Box<dyn Source>>,
}

impl Table {
    pub fn open(config: &Config, mut opening: Opening) -> Table {
        let sources = SOURCES
            .iter()
            .filter_map(|r| (r.open)(config, &mut opening))
            .collect();
        Table { sources }
    }

    /// Reads every source into one reading, built in `spare` (an earlier
    /// cycle's reading handed back, or an empty one): the sources write over
    /// its storage instead of allocating afresh.
    pub fn read(
        &mut self,
        now: Instant,
        mad: Option<Arc<MadView>>,
        mut spare: NodeReading,
    ) -> Reading {
        spare.errors.clear();
        spare.netdevs.clear();
        let mut cycle = Reading {
            now,
            node: spare,
            mad,
            consumers: None,
            carriers: None,
        };
        for s in &mut self.sources {
            s.prepare(&mut cycle);
        }
        for s in &mut self.sources {
            s.poll(&mut cycle);
        }
        cycle
    }

    /// Every source rediscovers at its next poll (a device event arrived).
    pub fn rescan_soon(&mut self) {
        for s in &mut self.sources {
            s.rescan_soon();
        }
    }

    pub fn accounts(&self) -> Accounts {
        let mut a = Accounts::default();
        for s in &self.sources {
            s.account(&mut a);
        }
        a
    }
}

/// RDMA netlink, when the kernel has it and the configuration wants it.
enum Netlink {
    Off,
    Unavailable(String),
    On(Box<NetlinkSource<Box<dyn NlTransport>>>),
}

/// The RDMA devices: netlink first (when on), then sysfs for what netlink
/// and the MAD worker did not cover, merged into one reading; the
/// resource dumps for attribution go over the same netlink socket.
struct Rdma {
    sysfs: SysfsSource,
    netlink: Netlink,
    opt_ins: OptIns,
    last_netlink_error: Option<String>,
    netlink_errors: u64,
    attribution: Option<AttributionSource>,
    consumers: Option<Arc<Attribution>>,
    /// Totals when the last poll began, for its cost.
    before: (crate::sources::sysfs::SourceStats, TransportStats),
}

impl Rdma {
    fn open(config: &Config, opening: &mut Opening) -> Option<Box<dyn Source>> {
        let filter = DeviceFilter {
            include: config.network.devices.clone(),
            exclude: config.network.exclude_devices.clone(),
        };
        let netlink = match opening.netlink.take() {
            None => Netlink::Off,
            Some(Err(why)) => {
                log::warn!("RDMA netlink unavailable ({why}): reading everything from sysfs");
                Netlink::Unavailable(why)
            }
            Some(Ok(t)) => Netlink::On(Box::new(NetlinkSource::new(
                t,
                filter.clone(),
                config.rescan_interval(),
            ))),
        };
        let attribution =
            (config.attribution.enabled && matches!(netlink, Netlink::On(_))).then(|| {
                AttributionSource::new(
                    &config.general.proc_root,
                    &config.attribution.host_root,
                    std::time::Duration::from_secs_f64(config.attribution.interval),
                    config.attribution.max_consumers as usize,
                )
            });
        Some(Box::new(Rdma {
            sysfs: SysfsSource::new(&config.general.sysfs_root, filter, config.rescan_interval()),
            netlink,
            opt_ins: OptIns {
                optional_counters: config.network.optional_counters.clone(),
                auto_mode_mask: config.network.auto_mode_mask(),
            },
            last_netlink_error: None,
            netlink_errors: 0,
            attribution,
            consumers: None,
            before: Default::default(),
        }))
    }

    fn netlink_stats(&self) -> Option<TransportStats> {
        match &self.netlink {
            Netlink::On(src) => Some(src.stats()),
            _ => None,
        }
    }

    /// One netlink pass; the operator's opt-in counter settings are written
    /// to ports seen for the first time (`settings`, the only kernel writes).
    fn poll_netlink(&mut self, now: Instant) -> Option<NetlinkReading> {
        let Netlink::On(src) = &mut self.netlink else {
            return None;
        };
        match settings::poll_applying(src, &self.opt_ins, now) {
            Ok(r) => {
                self.last_netlink_error = None;
                Some(r)
            }
            Err(e) => {
                self.netlink_errors += 1;
                let msg = e.to_string();
                // Say it once, not every cycle.
                if self.last_netlink_error.as_deref() != Some(msg.as_str()) {
                    log::warn!("RDMA netlink: {msg}; this cycle reads sysfs only");
                    self.last_netlink_error = Some(msg);
                }
                None
            }
        }
    }
}

impl Source for Rdma {
    fn poll(&mut self, cycle: &mut Reading) {
        let now = cycle.now;
        self.before = (self.sysfs.stats(), self.netlink_stats().unwrap_or_default());
        let nl_reading = self.poll_netlink(now);
        if let (Netlink::On(src), Some(r), Some(a)) =
            (&mut self.netlink, &nl_reading, &mut self.attribution)
            && let Some(done) = a.poll(now, || unix_ms(SystemTime::now()), src.client_mut(), r)
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
        if let Some(view) = &cycle.mad {
            merge::covered_by_mad(view, &mut covered);
        }
        // Each port's netdev as netlink names it this cycle, with its carrier count.
        for (d, p) in nl_reading
            .iter()
            .flat_map(|r| &r.devices)
            .flat_map(|d| d.ports.iter().map(move |p| (d, p)))
        {
            let carrier = cycle
                .carriers
                .iter()
                .flatten()
                .find(|c| Some(c.0) == p.port.netdev_index);
            if let Some(&c) = carrier {
                covered.set_carrier(&d.device.name, p.port.port, c);
            }
        }
        // The loop's spare reading: sysfs writes over it, earlier sources' errors kept.
        let mut reading = std::mem::take(&mut cycle.node);
        let earlier = std::mem::take(&mut reading.errors);
        self.sysfs.poll_into(now, &covered, &mut reading);
        cycle.node.errors = earlier;
        if let Some(mut nl) = nl_reading {
            for e in nl.errors.drain(..) {
                self.netlink_errors += 1;
                reading.errors.push(ReadError {
                    path: "rdma_netlink".into(),
                    reason: e,
                });
            }
            merge::merge(&mut reading, nl);
        }
        if let Some(view) = &cycle.mad {
            merge::merge_mad(&mut reading, view);
        }
        reading.errors.append(&mut cycle.node.errors);
        cycle.node = reading;
        cycle.consumers = self.consumers.clone();
    }

    fn rescan_soon(&mut self) {
        self.sysfs.rescan_soon();
    }

    fn account(&self, into: &mut Accounts) {
        let (sysfs, nl) = (self.sysfs.stats(), self.netlink_stats());
        let (sysfs_before, nl_before) = self.before;
        let nl_now = nl.unwrap_or_default();
        let c = &mut into.sources.last_cycle;
        c.sysfs_syscalls = sysfs.syscalls - sysfs_before.syscalls;
        c.sysfs_file_reads = sysfs.file_reads - sysfs_before.file_reads;
        c.rdma_netlink_syscalls = nl_now.syscalls - nl_before.syscalls;
        c.rdma_netlink_round_trips = nl_now.round_trips - nl_before.round_trips;
        // Module-parameter failures (kmod) are added to the sysfs read failures.
        let failures = into.sources.sysfs.read_failures;
        into.sources.sysfs = sysfs;
        into.sources.sysfs.read_failures += failures;
        into.sources.rdma_netlink = nl;
        into.sources.rdma_netlink_unavailable = match &self.netlink {
            Netlink::Unavailable(why) => Some(why.clone()),
            _ => None,
        };
        into.rdma_netlink_available = matches!(self.netlink, Netlink::On(_));
        into.rdma_netlink_errors = self.netlink_errors;
    }
}

/// RDMA kernel module parameters, re-read at rescans.
struct Kmod {
    sysfs_root: std::path::PathBuf,
    rescan: std::time::Duration,
    last: Option<Instant>,
    params: Arc<Vec<Param>>,
    /// Failed reads since start (counted with the sysfs read failures).
    failures: u64,
}

impl Kmod {
    fn open(config: &Config, _: &mut Opening) -> Option<Box<dyn Source>> {
        Some(Box::new(Kmod {
            sysfs_root: config.general.sysfs_root.clone(),
            rescan: config.rescan_interval(),
            last: None,
            params: Arc::new(Vec::new()),
            failures: 0,
        }))
    }
}

impl Source for Kmod {
    fn poll(&mut self, cycle: &mut Reading) {
        let now = cycle.now;
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.rescan)
        {
            let (params, errors) = crate::sources::kmod::read_params(&self.sysfs_root);
            self.failures += errors.len() as u64;
            // Listed in this cycle's snapshot with the other read errors.
            cycle.node.errors.extend(errors);
            self.last = Some(now);
            self.params = Arc::new(params);
        }
        cycle.node.module_params = self.params.clone();
    }

    fn account(&self, into: &mut Accounts) {
        into.sources.sysfs.read_failures += self.failures;
    }
}

/// The Ethernet side of the ports; on when reading the live /sys or when
/// netdevs are named in the configuration.
struct Netdev {
    source: NetdevSource,
    /// Netdevs named in the configuration, read besides the ports' own.
    extra: Vec<String>,
    /// Totals when the last poll began, and the netdevs it read.
    before: NetdevStats,
    netdevs: u64,
}

impl Netdev {
    fn open(config: &Config, _: &mut Opening) -> Option<Box<dyn Source>> {
        let live = config.general.sysfs_root == std::path::Path::new("/sys");
        (live || !config.network.netdevs.is_empty()).then(|| {
            Box::new(Netdev {
                source: NetdevSource::open(&config.general.sysfs_root, config.rescan_interval()),
                extra: config.network.netdevs.clone(),
                before: NetdevStats::default(),
                netdevs: 0,
            }) as Box<dyn Source>
        })
    }
}

impl Source for Netdev {
    fn prepare(&mut self, cycle: &mut Reading) {
        self.before = self.source.stats;
        cycle.carriers = Some(self.source.dump_links());
    }

    fn poll(&mut self, cycle: &mut Reading) {
        let mut names: Vec<String> = cycle
            .node
            .devices
            .iter()
            .flat_map(|d| d.ports.iter().filter_map(|p| p.info.netdev.clone()))
            .chain(self.extra.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        // Read by the RDMA source (polled before this one); its storage
        // serves the next cycle's dump.
        if let Some(carriers) = cycle.carriers.take() {
            self.source.keep_carriers(carriers);
        }
        cycle.node.netdevs = self.source.poll(&names, cycle.now);
        self.netdevs = names.len() as u64;
    }

    fn account(&self, into: &mut Accounts) {
        let (now, before) = (self.source.stats, self.before);
        let c = &mut into.sources.last_cycle;
        c.ethtool_ioctls = now.ioctls - before.ioctls;
        c.rtnetlink_round_trips = now.netlink_round_trips - before.netlink_round_trips;
        c.netdevs = self.netdevs;
        into.netdev = Some(now);
    }
}
