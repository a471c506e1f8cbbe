//! MADs on their own thread: a sweep can take seconds and a dead fabric
//! means timeouts, so none of it runs on the collection path. The worker
//! owns the umad devices (umad2sim and the kernel both want one receiver
//! per class), reads the local IB ports' PMA counters and those of the
//! switch port at the far end of each local link every poll interval,
//! sweeps the fabric and reads every port's counters on the fabric interval,
//! and hands each result over through a single latest-value slot.

use std::collections::HashMap;
use std::path::Path;
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

/// What the worker hands over.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MadView {
    pub local: Vec<LocalPort>,
    pub fabric: Option<Arc<Fabric>>,
    pub fabric_counters: Vec<FabricPort>,
    /// Devices that could not be opened, and why (once per device).
    pub unavailable: Vec<String>,
    pub stats: MadStats,
    /// Seconds the last fabric counter read took.
    pub fabric_counters_seconds: Option<f64>,
    /// When the last fabric counters were read (rates between sweeps).
    pub fabric_counters_unix_ms: Option<u64>,
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

/// One round of everything that is due; returns the new view.
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

pub fn step<P: MadPort>(
    workers: &mut [PortWorker<P>],
    plan: &Plan,
    sched: &mut Schedule,
    view: &mut MadView,
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
        if plan.fabric_mode && plan.fabric_counters {
            let t = Instant::now();
            view.fabric_counters =
                w.fabric_counters(&fabric, plan.details, pma_saturation, plan.rescan);
            view.fabric_counters_seconds = Some(t.elapsed().as_secs_f64());
            view.fabric_counters_unix_ms =
                Some(crate::clock::unix_ms(std::time::SystemTime::now()));
        }
        view.fabric = Some(fabric);
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
    slot: Arc<ArcSwapOption<MadView>>,
    stop: Receiver<()>,
) {
    let mut sched = Schedule::default();
    let mut view = MadView {
        unavailable,
        ..MadView::default()
    };
    loop {
        step(&mut workers, &plan, &mut sched, &mut view);
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
