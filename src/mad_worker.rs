//! MADs on their own thread: a sweep can take seconds and a dead fabric
//! means timeouts, so none of it runs on the collection path. The worker
//! owns the umad devices (umad2sim and the kernel both want one receiver
//! per class), reads the local IB ports' PMA counters and those of the
//! switch port at the far end of each local link every poll interval,
//! sweeps the fabric and reads every port's counters on the fabric interval,
//! and hands each result over through a single latest-value slot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::catalog::xmit_wait::WaitClock;
use crate::config::Config;
use crate::model::Saturation;
use crate::sources::file;
use crate::sources::mad::discovery::{self, Fabric, NODE_SWITCH};
use crate::sources::mad::pma::{self, PortCounters, Target};
use crate::sources::mad::samples;
use crate::sources::mad::{Engine, Limits, MadPort, MadStats, Query, Umad, layout as mad};

/// The counters of one port somewhere on the fabric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FabricPort {
    pub node_guid: u64,
    pub node_desc: String,
    pub node_type: u8,
    pub lid: u16,
    pub port: u8,
    #[serde(flatten)]
    pub counters: Reading,
    /// What PortXmitWait needs to become time (ASIC, PortSamplesControl.Tick,
    /// link), when all of it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_clock: Option<WaitClock>,
}

/// PMA counters of a port, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    #[serde(rename = "pma")]
    Counters {
        #[serde(flatten)]
        counters: PortCounters,
        /// Counters sitting at their saturation value (IBTA error counters stop, they don't wrap).
        saturated: Vec<&'static str>,
    },
    Error(String),
}

impl Reading {
    fn from(r: Result<PortCounters, crate::sources::mad::QueryError>, sat: Saturation) -> Reading {
        match r {
            Ok(counters) => {
                let saturated = counters
                    .counters
                    .iter()
                    .filter(|(n, v)| sat(n).contains(v))
                    .map(|(n, _)| *n)
                    .collect();
                Reading::Counters {
                    counters,
                    saturated,
                }
            }
            Err(e) => Reading::Error(e.to_string()),
        }
    }

    pub fn ok(&self) -> Option<&PortCounters> {
        match self {
            Reading::Counters { counters, .. } => Some(counters),
            Reading::Error(_) => None,
        }
    }
}

/// A local IB port read by MAD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalPort {
    pub umad_device: String,
    /// The RDMA device and port the umad device belongs to, when sysfs says.
    pub ibdev: Option<String>,
    pub port: u8,
    pub lid: u16,
    #[serde(flatten)]
    pub counters: Reading,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_clock: Option<WaitClock>,
    /// The switch (or HCA) port at the other end of the cable.
    pub peer: Option<FabricPort>,
}

/// What the worker hands over. The main snapshot holds the local ports and
/// [`FabricSummary`]; the sweep and every fabric port's counters are in
/// memory for the collectors and findings, and on disk in the sweep's own
/// detail file ([`FabricDetail`]), so the snapshot written every cycle stays
/// small whatever the fabric's size.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MadView {
    pub local: Vec<LocalPort>,
    #[serde(skip)]
    pub fabric: Option<Arc<Fabric>>,
    #[serde(skip)]
    pub fabric_counters: Vec<FabricPort>,
    /// The last sweep in numbers, and the detail file that holds it whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fabric_summary: Option<FabricSummary>,
    /// Devices that could not be opened, and why (once per device).
    pub unavailable: Vec<String>,
    pub stats: MadStats,
    /// Seconds the last fabric counter read took.
    pub fabric_counters_seconds: Option<f64>,
    /// When the last fabric counters were read (rates between sweeps).
    pub fabric_counters_unix_ms: Option<u64>,
}

/// The last sweep in a few numbers, for the main snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FabricSummary {
    /// When the sweep (and the counter read after it) ended, ms since the epoch.
    pub sweep_unix_ms: u64,
    pub sweep_seconds: f64,
    pub sweep_mads: u64,
    pub nodes: usize,
    pub switches: usize,
    pub cas: usize,
    pub links: usize,
    /// Queries of the sweep without a usable answer.
    pub sweep_errors: usize,
    /// Paths left when the sweep budget ran out, a node not wholly read
    /// counting as one (0: a whole sweep).
    pub unexplored_paths: usize,
    /// Fabric ports whose counters were asked this round, and how many did not answer.
    pub counter_ports: usize,
    pub counter_errors: usize,
    /// The detail file of this sweep, as written (relative to the agent's
    /// working directory when `general.snapshot_dir` is); absent when it
    /// could not be written (`detail_error` says why) or none is kept.
    pub detail_file: Option<PathBuf>,
    pub detail_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_error: Option<String>,
    /// Detail files that could not be written, and old ones that could not
    /// be deleted, since the start.
    pub detail_write_failures: u64,
    pub detail_prune_failures: u64,
}

/// Bumped when a field of the detail file changes meaning or goes away.
pub const DETAIL_SCHEMA_VERSION: u32 = 1;

/// The fabric detail file of one sweep (`fabric-<seq>-<time>.json` beside the
/// snapshots; also `/fabric`): every node, link and port counter.
#[derive(Debug, Serialize)]
pub struct FabricDetail<'a> {
    pub schema_version: u32,
    pub sweep_unix_ms: u64,
    pub fabric: &'a Fabric,
    pub fabric_counters: &'a [FabricPort],
    pub fabric_counters_seconds: Option<f64>,
    pub fabric_counters_unix_ms: Option<u64>,
}

impl MadView {
    /// The detail document of the last sweep (None before the first).
    pub fn detail_json(&self) -> Option<Vec<u8>> {
        let fabric = self.fabric.as_deref()?;
        let detail = FabricDetail {
            schema_version: DETAIL_SCHEMA_VERSION,
            sweep_unix_ms: self.fabric_summary.as_ref().map_or(0, |s| s.sweep_unix_ms),
            fabric,
            fabric_counters: &self.fabric_counters,
            fabric_counters_seconds: self.fabric_counters_seconds,
            fabric_counters_unix_ms: self.fabric_counters_unix_ms,
        };
        // Compact: the file is for programs, and at 648 HCAs pretty-printing doubles it.
        let mut v = serde_json::to_vec(&detail)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
        v.push(b'\n');
        Some(v)
    }
}

/// Where each sweep's detail file goes (the agent's snapshot writer with the
/// fabric retention); the worker only knows this much of it.
pub trait DetailStore: Send {
    /// Writes `json` atomically under a name made from `timestamp` (RFC 3339)
    /// and prunes by the retention; the path written, or why not.
    fn store(&mut self, timestamp: &str, json: &[u8]) -> Result<PathBuf, String>;
    /// Old files that could not be deleted, since the start.
    fn prune_failures(&self) -> u64;
}

/// The summary of `fabric` and its counters, without the detail file yet.
fn summarise(fabric: &Fabric, counters: &[FabricPort], at_ms: u64) -> FabricSummary {
    FabricSummary {
        sweep_unix_ms: at_ms,
        sweep_seconds: fabric.duration_seconds,
        sweep_mads: fabric.mads.sent,
        nodes: fabric.nodes.len(),
        switches: fabric
            .nodes
            .iter()
            .filter(|n| n.node_type == NODE_SWITCH)
            .count(),
        cas: fabric
            .nodes
            .iter()
            .filter(|n| n.node_type == discovery::NODE_CA)
            .count(),
        links: fabric.links.len(),
        sweep_errors: fabric.errors.len(),
        unexplored_paths: fabric.unexplored_paths,
        counter_ports: counters.len(),
        counter_errors: counters
            .iter()
            .filter(|p| p.counters.ok().is_none())
            .count(),
        ..FabricSummary::default()
    }
}

/// Writes the view's detail file and records the outcome in its summary.
fn write_detail(view: &mut MadView, store: &mut dyn DetailStore) {
    let Some(json) = view.detail_json() else {
        return;
    };
    let Some(summary) = view.fabric_summary.as_mut() else {
        return;
    };
    let wall = std::time::UNIX_EPOCH + Duration::from_millis(summary.sweep_unix_ms);
    let stamp = humantime::format_rfc3339_millis(wall).to_string();
    match store.store(&stamp, &json) {
        Ok(path) => {
            summary.detail_error = None;
            summary.detail_file = Some(path);
            summary.detail_bytes = Some(json.len() as u64);
        }
        Err(e) => {
            summary.detail_write_failures += 1;
            // Once per new reason: a full disk must not log every sweep.
            if summary.detail_error.as_deref() != Some(e.as_str()) {
                log::warn!(
                    "fabric detail file not written: {e} (counted in rdma_fabric_detail_write_failures_total)"
                );
            }
            summary.detail_error = Some(e);
        }
    }
    summary.detail_prune_failures = store.prune_failures();
}

/// One umad device with its engine and what it learned.
pub struct PortWorker<P: MadPort> {
    pub device: String,
    pub ibdev: Option<String>,
    engine: Engine<P>,
    caps: HashMap<u16, pma::Caps>,
    /// Far end identity (guid, desc, type, lid, port), refreshed on rescan.
    peer: Option<(u64, String, u8, u16, u8)>,
    peer_checked: Option<Instant>,
    /// The local port number and LID, refreshed with the peer.
    local: Option<(u8, u16)>,
    /// PortSamplesControl.Tick per LID, asked once (again after a rescan
    /// interval when the PMA did not answer).
    ticks: HashMap<u16, samples::Asked>,
    /// (VendorID, DeviceID) of the local node and of the peer, and the
    /// local link's (width, speed, extended speed): the same on both ends.
    local_asic: Option<(u32, u16)>,
    peer_asic: Option<(u32, u16)>,
    link: Option<(u8, u8, u8)>,
}

/// The wait clock of a port, when its ASIC, tick and link are all known.
fn clock(
    asic: Option<(u32, u16)>,
    tick: Option<u8>,
    link: Option<(u8, u8, u8)>,
) -> Option<WaitClock> {
    let ((vendor_id, device_id), tick, (w, s, se)) = (asic?, tick?, link?);
    Some(WaitClock {
        vendor_id,
        device_id,
        tick,
        width_active: w,
        speed_active: s,
        speed_ext_active: se,
    })
}

fn limits(c: &Config) -> Limits {
    Limits {
        max_outstanding: c.fabric.max_outstanding as usize,
        timeout: Duration::from_millis(u64::from(c.fabric.timeout_ms)),
        retries: c.fabric.retries,
        budget: Duration::from_secs_f64(c.fabric.sweep_budget),
    }
}

fn dr_get(attr: u16, attr_mod: u32, path: &[u8]) -> Option<Query> {
    mad::smp_dr_get(0, attr, attr_mod, path)
        .ok()
        .map(|m| Query {
            mad: m,
            lid: 0xffff,
        })
}

fn field(
    reply: &mad::Reply,
    table: &'static [crate::sources::mad::fields::Field],
    name: &str,
) -> u64 {
    discovery::get(&reply.data, table, name)
}

impl<P: MadPort> PortWorker<P> {
    pub fn new(device: String, ibdev: Option<String>, port: P, limits: Limits) -> Self {
        PortWorker {
            device,
            ibdev,
            engine: Engine::new(port, limits),
            caps: HashMap::new(),
            peer: None,
            peer_checked: None,
            local: None,
            ticks: HashMap::new(),
            local_asic: None,
            peer_asic: None,
            link: None,
        }
    }

    pub fn stats(&self) -> MadStats {
        self.engine.stats()
    }

    /// The local port (and its peer): identity by SMP, counters by PMA.
    pub fn read_local(&mut self, rescan: Duration, details: bool, sat: Saturation) -> LocalPort {
        use crate::sources::mad::fields::{NODE_INFO, PORT_INFO};
        let (device, ibdev) = (self.device.clone(), self.ibdev.clone());
        let fail = |lid, port, e: String| LocalPort {
            umad_device: device.clone(),
            ibdev: ibdev.clone(),
            port,
            lid,
            counters: Reading::Error(e),
            wait_clock: None,
            peer: None,
        };
        let due = self.peer_checked.is_none_or(|t| t.elapsed() >= rescan);
        if due || self.local.is_none() {
            // Who we are on the fabric: re-learned on rescan (an SM can move LIDs).
            let ni = match self
                .engine
                .run(
                    &dr_get(mad::ATTR_NODE_INFO, 0, &[])
                        .into_iter()
                        .collect::<Vec<_>>(),
                )
                .pop()
            {
                Some(Ok(r)) => r,
                Some(Err(e)) => return fail(0, 0, format!("local NodeInfo: {e}")),
                None => return fail(0, 0, "local NodeInfo: not sent".into()),
            };
            let local_port = field(&ni, NODE_INFO, "LocalPortNum") as u8;
            self.local_asic = Some((
                field(&ni, NODE_INFO, "VendorID") as u32,
                field(&ni, NODE_INFO, "DeviceID") as u16,
            ));
            let pi = match self
                .engine
                .run(
                    &dr_get(mad::ATTR_PORT_INFO, u32::from(local_port), &[])
                        .into_iter()
                        .collect::<Vec<_>>(),
                )
                .pop()
            {
                Some(Ok(r)) => r,
                Some(Err(e)) => return fail(0, local_port, format!("local PortInfo: {e}")),
                None => return fail(0, local_port, "local PortInfo: not sent".into()),
            };
            self.local = Some((local_port, field(&pi, PORT_INFO, "LID") as u16));
            self.link = Some((
                field(&pi, PORT_INFO, "LinkWidthActive") as u8,
                field(&pi, PORT_INFO, "LinkSpeedActive") as u8,
                field(&pi, PORT_INFO, "LinkSpeedExtActive") as u8,
            ));
            self.peer = self.find_peer(local_port, mad::SMP_DATA_LEN);
            self.peer_checked = Some(Instant::now());
        }
        let Some((local_port, lid)) = self.local else {
            return fail(0, 0, "local port unknown".into());
        };
        let mut targets = vec![Target {
            lid,
            port: local_port,
        }];
        if let Some((_, _, _, plid, pport)) = &self.peer {
            targets.push(Target {
                lid: *plid,
                port: *pport,
            });
        }
        let mut read = pma::read(&mut self.engine, &targets, details, &mut self.caps).into_iter();
        let lids: Vec<(u16, u8)> = targets.iter().map(|t| (t.lid, t.port)).collect();
        let mut ticks =
            samples::ticks(&mut self.engine, &lids, &mut self.ticks, rescan).into_iter();
        let local_tick = ticks.next().flatten();
        let peer_tick = ticks.next().flatten();
        let first = read
            .next()
            .unwrap_or(Err(crate::sources::mad::QueryError::Budget));
        if first.is_err() {
            self.peer_checked = None;
        }
        let counters = Reading::from(first, sat);
        let peer = self
            .peer
            .clone()
            .map(|(guid, desc, node_type, plid, pport)| {
                let c = read
                    .next()
                    .unwrap_or(Err(crate::sources::mad::QueryError::Budget));
                if c.is_err() {
                    // Re-learn who is where next time: the cable may have moved.
                    self.peer_checked = None;
                }
                FabricPort {
                    node_guid: guid,
                    node_desc: desc,
                    node_type,
                    lid: plid,
                    port: pport,
                    counters: Reading::from(c, sat),
                    wait_clock: clock(self.peer_asic, peer_tick, self.link),
                }
            });
        LocalPort {
            umad_device: self.device.clone(),
            ibdev: self.ibdev.clone(),
            port: local_port,
            lid,
            counters,
            wait_clock: clock(self.local_asic, local_tick, self.link),
            peer,
        }
    }

    fn find_peer(&mut self, local_port: u8, desc_len: usize) -> Option<(u64, String, u8, u16, u8)> {
        use crate::sources::mad::fields::{NODE_INFO, PORT_INFO};
        let path = [local_port];
        let qs: Vec<Query> = [
            dr_get(mad::ATTR_NODE_INFO, 0, &path),
            dr_get(mad::ATTR_NODE_DESC, 0, &path),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut r = self.engine.run(&qs).into_iter();
        let ni = r.next()?.ok()?;
        let desc = r.next()?.ok()?;
        let guid = field(&ni, NODE_INFO, "NodeGUID");
        self.peer_asic = Some((
            field(&ni, NODE_INFO, "VendorID") as u32,
            field(&ni, NODE_INFO, "DeviceID") as u16,
        ));
        let node_type = field(&ni, NODE_INFO, "NodeType") as u8;
        let pport = field(&ni, NODE_INFO, "LocalPortNum") as u8;
        // A switch answers on its port 0 LID; an HCA on the port's own.
        let lid_port = if node_type == NODE_SWITCH { 0 } else { pport };
        let pi = self
            .engine
            .run(
                &dr_get(mad::ATTR_PORT_INFO, u32::from(lid_port), &path)
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
            .pop()?
            .ok()?;
        let plid = field(&pi, PORT_INFO, "LID") as u16;
        let raw = &desc.data[..desc_len];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Some((
            guid,
            String::from_utf8_lossy(&raw[..end]).into_owned(),
            node_type,
            plid,
            pport,
        ))
    }

    pub fn sweep(&mut self, budget: Duration) -> Fabric {
        discovery::sweep(&mut self.engine, budget)
    }

    /// Counters of every connected port of the fabric (switch port 0 too,
    /// where the switch has an enhanced port 0).
    pub fn fabric_counters(
        &mut self,
        fabric: &Fabric,
        details: bool,
        sat: Saturation,
        retry: Duration,
    ) -> Vec<FabricPort> {
        let mut targets = Vec::new();
        let mut owners = Vec::new();
        for n in &fabric.nodes {
            let mut ports: Vec<u8> = (1..=n.num_ports)
                .filter(|p| fabric.peer(n.guid, *p).is_some())
                .collect();
            if n.node_type == NODE_SWITCH && n.enhanced_port0 {
                ports.insert(0, 0);
            }
            for p in ports {
                let lid = n.lid_of(p);
                if lid == 0 {
                    continue;
                }
                targets.push(Target { lid, port: p });
                owners.push(n);
            }
        }
        let results = pma::read(&mut self.engine, &targets, details, &mut self.caps);
        let lids: Vec<(u16, u8)> = targets.iter().map(|t| (t.lid, t.port)).collect();
        let ticks = samples::ticks(&mut self.engine, &lids, &mut self.ticks, retry);
        targets
            .iter()
            .zip(owners)
            .zip(results)
            .zip(ticks)
            .map(|(((t, n), r), tick)| FabricPort {
                node_guid: n.guid,
                node_desc: n.description.clone(),
                node_type: n.node_type,
                lid: t.lid,
                port: t.port,
                counters: Reading::from(r, sat),
                wait_clock: clock(
                    Some((n.vendor_id, n.device_id)),
                    tick,
                    n.port(t.port)
                        .map(|p| (p.width_active, p.speed_active, p.speed_ext_active)),
                ),
            })
            .collect()
    }
}

/// The umad devices of the node's IB ports: `/sys/class/infiniband_mad/umadN`
/// gives each one's RDMA device and port; Ethernet (RoCE) ports are left out.
pub fn local_umad_devices(sysfs_root: &Path) -> Vec<(String, Option<String>)> {
    let dir = sysfs_root.join("class/infiniband_mad");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("umad") {
            continue;
        }
        // Bounded, non-blocking reads: a FIFO here must not stall the worker.
        let read = |f: &str| file::read_attr(&dir.join(&name).join(f)).ok();
        let (Some(ibdev), Some(port)) = (read("ibdev"), read("port")) else {
            continue;
        };
        let ll = file::read_attr(
            &sysfs_root.join(format!("class/infiniband/{ibdev}/ports/{port}/link_layer")),
        )
        .unwrap_or_default();
        if ll == "InfiniBand" {
            out.push((format!("/dev/infiniband/{name}"), Some(ibdev)));
        }
    }
    out.sort();
    out
}

/// The worker's plan, from the configuration.
pub struct Plan {
    pub poll: Duration,
    pub rescan: Duration,
    pub local_counters: bool,
    pub fabric_mode: bool,
    pub fabric_every: Duration,
    pub fabric_counters: bool,
    /// Sweep period outside fabric mode (None = never).
    pub discovery_every: Option<Duration>,
    pub budget: Duration,
    pub details: bool,
}

/// The values at which a PMA counter saturates, by name (the counter catalog's).
fn pma_saturation(name: &str) -> &'static [u64] {
    crate::catalog::saturation(crate::catalog::Source::Pma, name)
}

impl Plan {
    pub fn from_config(c: &Config) -> Plan {
        Plan {
            poll: c.poll_interval(),
            rescan: c.rescan_interval(),
            local_counters: c.fabric.local_counters,
            fabric_mode: c.fabric.enabled,
            fabric_every: Duration::from_secs_f64(c.fabric.interval),
            fabric_counters: c.fabric.counters,
            discovery_every: (c.fabric.discovery_interval > 0.0)
                .then(|| Duration::from_secs_f64(c.fabric.discovery_interval)),
            budget: Duration::from_secs_f64(c.fabric.sweep_budget),
            details: c.fabric.error_details,
        }
    }

    /// Whether the worker has anything to do at all.
    pub fn active(&self) -> bool {
        self.local_counters || self.fabric_mode || self.discovery_every.is_some()
    }
}

/// Opens the configured (or every local IB) umad device.
pub fn open_workers(c: &Config) -> (Vec<PortWorker<Umad>>, Vec<String>) {
    let devices = if c.fabric.umad_device.is_empty() {
        local_umad_devices(&c.general.sysfs_root)
    } else {
        let ibdev = local_umad_devices(&c.general.sysfs_root)
            .into_iter()
            .find(|(d, _)| *d == c.fabric.umad_device)
            .and_then(|(_, i)| i);
        vec![(c.fabric.umad_device.clone(), ibdev)]
    };
    let mut workers = Vec::new();
    let mut unavailable = Vec::new();
    for (dev, ibdev) in devices {
        match Umad::open(&dev, &[mad::CLASS_SMP_DR, mad::CLASS_PERF]) {
            Ok(u) => workers.push(PortWorker::new(dev, ibdev, u, limits(c))),
            Err(e) => unavailable.push(e.to_string()),
        }
    }
    (workers, unavailable)
}

/// When each kind of work is next due.
pub struct Schedule {
    next_local: Instant,
    next_fabric: Instant,
    next_discovery: Instant,
}

impl Default for Schedule {
    fn default() -> Self {
        let now = Instant::now();
        Schedule {
            next_local: now,
            next_fabric: now,
            next_discovery: now,
        }
    }
}

/// One round of everything that is due, into `view`; a sweep's detail goes
/// to `detail` (None: kept in memory only).
pub fn step<P: MadPort>(
    workers: &mut [PortWorker<P>],
    plan: &Plan,
    sched: &mut Schedule,
    view: &mut MadView,
    detail: Option<&mut dyn DetailStore>,
) {
    let now = Instant::now();
    if plan.local_counters && now >= sched.next_local {
        view.local = workers
            .iter_mut()
            .map(|w| w.read_local(plan.rescan, plan.details, pma_saturation))
            .collect();
        sched.next_local = crate::clock::after(now, plan.poll);
    }
    let sweep_due = if plan.fabric_mode {
        now >= sched.next_fabric
    } else {
        plan.discovery_every.is_some() && now >= sched.next_discovery
    };
    if sweep_due && let Some(w) = workers.first_mut() {
        let fabric = Arc::new(w.sweep(plan.budget));
        view.fabric_counters.clear();
        if plan.fabric_mode && plan.fabric_counters {
            let t = Instant::now();
            view.fabric_counters =
                w.fabric_counters(&fabric, plan.details, pma_saturation, plan.rescan);
            view.fabric_counters_seconds = Some(t.elapsed().as_secs_f64());
            view.fabric_counters_unix_ms =
                Some(crate::clock::unix_ms(std::time::SystemTime::now()));
        }
        let at_ms = crate::clock::unix_ms(std::time::SystemTime::now());
        let before = view.fabric_summary.take().unwrap_or_default();
        view.fabric_summary = Some(FabricSummary {
            detail_error: before.detail_error,
            detail_write_failures: before.detail_write_failures,
            detail_prune_failures: before.detail_prune_failures,
            ..summarise(&fabric, &view.fabric_counters, at_ms)
        });
        view.fabric = Some(fabric);
        if let Some(store) = detail {
            write_detail(view, store);
        }
        sched.next_fabric = crate::clock::after(now, plan.fabric_every);
        if let Some(every) = plan.discovery_every {
            sched.next_discovery = crate::clock::after(now, every);
        }
    }
    view.stats = workers.iter().fold(MadStats::default(), |a, w| {
        let s = w.stats();
        MadStats {
            sent: a.sent + s.sent,
            answered: a.answered + s.answered,
            timeouts: a.timeouts + s.timeouts,
            retries: a.retries + s.retries,
            errors: a.errors + s.errors,
        }
    });
}

/// Runs the worker until `stop` says so, publishing into `slot`.
pub fn run(
    mut workers: Vec<PortWorker<Umad>>,
    unavailable: Vec<String>,
    plan: Plan,
    mut detail: Option<Box<dyn DetailStore>>,
    slot: Arc<ArcSwapOption<MadView>>,
    stop: Receiver<()>,
) {
    let mut sched = Schedule::default();
    let mut view = MadView {
        unavailable,
        ..MadView::default()
    };
    loop {
        step(
            &mut workers,
            &plan,
            &mut sched,
            &mut view,
            detail.as_deref_mut().map(|d| d as &mut dyn DetailStore),
        );
        slot.store(Some(Arc::new(view.clone())));
        let mut next = sched.next_local.min(sched.next_fabric);
        if !plan.fabric_mode {
            next = if plan.discovery_every.is_some() {
                sched.next_local.min(sched.next_discovery)
            } else {
                sched.next_local
            };
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(50));
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sources::mad::sim::SimFabric;

    fn worker(sim: SimFabric) -> PortWorker<SimFabric> {
        PortWorker::new(
            "/dev/infiniband/umad0".into(),
            Some("mlx5_0".into()),
            sim,
            Limits {
                max_outstanding: 4,
                timeout: Duration::from_millis(20),
                retries: 0,
                budget: Duration::from_secs(5),
            },
        )
    }

    fn no_saturation(_: &str) -> &'static [u64] {
        &[]
    }

    /// A store that fails the first `fail` writes (a full disk), then keeps them.
    #[derive(Default)]
    struct Disk {
        fail: usize,
        files: Vec<(String, Vec<u8>)>,
    }

    impl DetailStore for Disk {
        fn store(&mut self, timestamp: &str, json: &[u8]) -> Result<PathBuf, String> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err("snapshot dir/fabric-1.json: No space left on device".into());
            }
            self.files.push((timestamp.to_string(), json.to_vec()));
            Ok(PathBuf::from(format!("fabric-{}.json", self.files.len())))
        }
        fn prune_failures(&self) -> u64 {
            0
        }
    }

    fn fabric_plan() -> Plan {
        let mut c = Config::defaults();
        c.fabric.enabled = true;
        Plan::from_config(&c)
    }

    #[test]
    fn a_detail_file_that_cannot_be_written_is_counted_and_said() {
        let mut workers = vec![worker(SimFabric::default())];
        let (plan, mut disk, mut view) = (
            fabric_plan(),
            Disk {
                fail: 2,
                ..Disk::default()
            },
            MadView::default(),
        );
        for _ in 0..3 {
            step(
                &mut workers,
                &plan,
                &mut Schedule::default(),
                &mut view,
                Some(&mut disk),
            );
            let s = view.fabric_summary.as_ref().unwrap();
            if disk.files.is_empty() {
                assert_eq!(s.detail_file, None);
                assert!(
                    s.detail_error.as_deref().unwrap().contains("No space left"),
                    "{s:?}"
                );
            }
        }
        let s = view.fabric_summary.as_ref().unwrap();
        assert_eq!(s.detail_write_failures, 2, "counted over the sweeps");
        assert_eq!(s.detail_error, None, "cleared by the write that worked");
        assert_eq!(s.detail_file, Some(PathBuf::from("fabric-1.json")));
        // The file holds the sweep whole, the view's JSON only the summary.
        let (stamp, json) = &disk.files[0];
        let detail: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(detail["fabric"]["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(detail["sweep_unix_ms"], s.sweep_unix_ms);
        let wall = std::time::UNIX_EPOCH + Duration::from_millis(s.sweep_unix_ms);
        assert_eq!(*stamp, humantime::format_rfc3339_millis(wall).to_string());
        let main = serde_json::to_value(&view).unwrap();
        assert_eq!(main.get("fabric"), None);
        assert_eq!(main.get("fabric_counters"), None);
        assert_eq!(main["fabric_summary"]["nodes"], 3);
    }

    /// The sim's switch is a Switch-IB 2 (DeviceID 0xcf08) on a 4x EDR link
    /// that answers PortSamplesControl with Tick 31; the local CA refuses it.
    #[test]
    fn the_peer_gets_its_asic_tick_and_link_the_local_port_no_tick() {
        let mut w = worker(SimFabric {
            switch_tick: Some(31),
            ..SimFabric::default()
        });
        let l = w.read_local(Duration::from_secs(60), false, no_saturation);
        assert_eq!(l.wait_clock, None, "the CA answered no tick");
        let peer = l.peer.expect("the switch port");
        assert_eq!(
            peer.wait_clock,
            Some(WaitClock {
                vendor_id: 0x2c9,
                device_id: 0xcf08,
                tick: 31,
                width_active: 2,
                speed_active: 1,
                speed_ext_active: 2,
            })
        );
        let reading = peer.counters.ok().expect("counters");
        assert!(reading.read_at.is_some());
        // The tick is asked once: a second round sends only the counters.
        let sent = w.stats().sent;
        w.read_local(Duration::from_secs(60), false, no_saturation);
        let again = w.stats().sent - sent;
        assert_eq!(again, 4, "PortCounters and Extended, local and peer");
    }
}
