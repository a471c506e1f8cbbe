//! One cycle over RDMA netlink: the device list (arrivals and removals), each
//! device's ports with state, each port's hw counters in one STAT_GET, the
//! resource summary of every device in one dump, and bound (per-QP)
//! counters. Optional-counter status and the system settings are read at
//! discovery and rescans only. The poll itself only reads: the opt-in
//! counter settings are written by `settings::poll_applying`, which hands
//! the poll a writer called once per port first seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{BoundCounter, Client, CounterStatus, Device, Port, Queued, Sys};
use crate::model::{Counter, DeviceFilter};
use crate::sources::netlink::{NlError, NlTransport, TransportStats};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NldevPortReading {
    pub port: Port,
    /// `None` when the port has no hw counters (STAT_GET answers EINVAL/EOPNOTSUPP).
    pub hw_counters: Option<Vec<Counter>>,
    /// Which counters exist and which optional ones are enabled (STAT_GET_STATUS).
    pub counter_status: Option<Arc<Vec<CounterStatus>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NldevDeviceReading {
    pub device: Device,
    pub ports: Vec<NldevPortReading>,
    /// RES_GET summary: current count of each resource (qp, cq, mr, pd, ctx, cm_id, srq).
    pub resources: Vec<Counter>,
    pub bound_counters: Vec<BoundCounter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetlinkReading {
    pub devices: Vec<NldevDeviceReading>,
    pub sys: Option<Sys>,
    /// Per-device or per-port failures; the rest of the reading stands.
    pub errors: Vec<String>,
}

/// Called once per port first seen: may write settings to the kernel.
pub(super) type PortWriter<'a, T> = dyn FnMut(&mut Client<T>, &Device, u32, &mut Vec<String>) + 'a;

pub struct NetlinkSource<T: NlTransport> {
    client: Client<T>,
    filter: DeviceFilter,
    rescan_every: Duration,
    last_rescan: Option<Instant>,
    names: NameCache,
    /// Ports whose STAT_GET said "no counters": not asked again until a rescan.
    no_stats: HashSet<(String, u32)>,
    status: HashMap<(String, u32), Arc<Vec<CounterStatus>>>,
    /// Ports offered to the opt-in writer (by device name and port).
    configured: HashSet<(String, u32)>,
    known_devices: Vec<String>,
    sys: Option<Sys>,
    /// The device list's storage, kept from cycle to cycle (empty between).
    devices: Vec<Device>,
}

impl<T: NlTransport> NetlinkSource<T> {
    pub fn new(transport: T, filter: DeviceFilter, rescan_every: Duration) -> Self {
        NetlinkSource {
            client: Client::new(transport),
            filter,
            rescan_every,
            last_rescan: None,
            names: NameCache::default(),
            no_stats: HashSet::new(),
            status: HashMap::new(),
            configured: HashSet::new(),
            known_devices: Vec::new(),
            devices: Vec::new(),
            sys: None,
        }
    }

    pub fn stats(&self) -> TransportStats {
        self.client.stats()
    }

    pub fn client_mut(&mut self) -> &mut Client<T> {
        &mut self.client
    }

    /// One cycle, read only. An error here means the device list itself
    /// could not be read: the caller falls back to sysfs for everything.
    pub fn poll(&mut self, now: Instant) -> Result<NetlinkReading, NlError> {
        self.poll_with(now, &mut |_, _, _, _| {})
    }

    /// One cycle; `first_seen` is called once for each port not seen since
    /// the last rescan, before its counter status is read (the only place a
    /// caller can write to the kernel: see `settings::poll_applying`).
    pub(super) fn poll_with(
        &mut self,
        now: Instant,
        first_seen: &mut PortWriter<'_, T>,
    ) -> Result<NetlinkReading, NlError> {
        let mut reading = NetlinkReading::default();
        // The device list is received into the last cycle's (kept: a list
        // of a few KiB is a fresh mapping under musl each time).
        let mut devices = std::mem::take(&mut self.devices);
        if let Err(e) = self.client.devices_into(&mut devices) {
            self.keep_devices(devices);
            return Err(e);
        }
        devices.retain(|d| self.filter.accepts(&d.name));
        let due = self
            .last_rescan
            .is_none_or(|t| now.duration_since(t) >= self.rescan_every);
        let same = devices.len() == self.known_devices.len()
            && devices
                .iter()
                .zip(&self.known_devices)
                .all(|(d, k)| d.name == *k);
        if due || !same {
            let names: Vec<String> = devices.iter().map(|d| d.name.clone()).collect();
            self.no_stats.clear();
            self.status.retain(|(d, _), _| names.contains(d));
            self.configured.retain(|(d, _)| names.contains(d));
            match self.client.sys() {
                Ok(s) => self.sys = Some(s),
                Err(e) => reading.errors.push(e.to_string()),
            }
            self.last_rescan = Some(now);
            self.known_devices = names;
        }
        reading.sys = self.sys.clone();

        // Ports by number from the device reply; a device without the
        // count (never seen on a kernel with NLDEV) has its ports dumped.
        let mut ports: Vec<Vec<u32>> = Vec::with_capacity(devices.len());
        for device in &devices {
            ports.push(match port_numbers(device) {
                Some(range) => range.collect(),
                None => match self.client.ports(device.index) {
                    Ok(p) => p.into_iter().map(|p| p.port).collect(),
                    Err(e) => {
                        reading.errors.push(format!("{}: {e}", device.name));
                        Vec::new()
                    }
                },
            });
        }
        // Once per port (and again after a rescan): the opt-ins and which
        // counters exist, one exchange each.
        let mut status: Vec<Vec<Option<Arc<Vec<CounterStatus>>>>> = Vec::new();
        for (device, numbers) in devices.iter().zip(&ports) {
            let mut of_device = Vec::with_capacity(numbers.len());
            for &port in numbers {
                of_device.push(self.port_status(device, port, first_seen, &mut reading.errors));
            }
            status.push(of_device);
        }

        // Everything read every cycle, in one batch: each port's state and
        // hw counters, each device's resource summary and bound counters.
        let mut queued = Vec::with_capacity(devices.len());
        for (device, numbers) in devices.iter().zip(&ports) {
            let port_gets: Vec<Queued> = numbers
                .iter()
                .map(|&p| self.client.queue_port(device.index, p))
                .collect();
            let stat_gets: Vec<Option<Queued>> = numbers
                .iter()
                .map(|&p| {
                    let asked = !self.no_stats.contains(&(device.name.clone(), p));
                    asked.then(|| self.client.queue_port_stats(device.index, p))
                })
                .collect();
            let res = self.client.queue_resources(device.index);
            let bound = self.client.queue_bound_counters(device.index);
            queued.push((port_gets, stat_gets, res, bound));
        }
        if let Err(e) = self.client.send_batch() {
            self.keep_devices(devices);
            return Err(e);
        }

        reading.devices.reserve(devices.len());
        for ((device, status), (port_gets, stat_gets, res, bound)) in
            devices.drain(..).zip(status).zip(queued)
        {
            let mut port_readings = Vec::with_capacity(port_gets.len());
            let mut gone = None;
            for ((q, stat), counter_status) in port_gets.into_iter().zip(stat_gets).zip(status) {
                let port = match self.client.port_answer(q) {
                    Ok(p) => p,
                    Err(e) => {
                        // Gone between the device list and now, most likely.
                        gone = Some(e);
                        break;
                    }
                };
                let mut counters = Vec::new();
                let names = &mut self.names;
                let answer = stat.map(|q| {
                    self.client.port_counters_answer(q, |name, value| {
                        counters.push(Counter {
                            name: names.get(name),
                            value,
                        })
                    })
                });
                let hw_counters = match answer {
                    None => None,
                    Some(Ok(())) => Some(counters),
                    Some(Err(e)) if e.is_unsupported() => {
                        self.no_stats.insert((device.name.clone(), port.port));
                        None
                    }
                    Some(Err(e)) => {
                        reading
                            .errors
                            .push(format!("{}/{}: {e}", device.name, port.port));
                        None
                    }
                };
                port_readings.push(NldevPortReading {
                    port,
                    hw_counters,
                    counter_status,
                });
            }
            if let Some(e) = gone {
                reading.errors.push(format!("{}: {e}", device.name));
                continue;
            }
            let mut resources = Vec::new();
            let names = &mut self.names;
            let answer = self.client.resources_answer(res, |name, value| {
                resources.push(Counter {
                    name: names.get(name),
                    value,
                })
            });
            match answer {
                Ok(()) => {}
                Err(e) => {
                    reading.errors.push(format!("{}: {e}", device.name));
                    resources.clear();
                }
            }
            let bound_counters = match self.client.bound_counters_answer(bound) {
                Ok(b) => b,
                // A dump the kernel could not start while the one before it
                // in the batch was still running: asked again on its own.
                Err(NlError::Kernel { errno, .. }) if errno == libc::EBUSY => {
                    self.bound_counters_alone(&device, &mut reading.errors)
                }
                Err(e) if e.is_unsupported() => Vec::new(),
                Err(e) => {
                    reading.errors.push(format!("{}: {e}", device.name));
                    Vec::new()
                }
            };
            reading.devices.push(NldevDeviceReading {
                resources,
                device,
                ports: port_readings,
                bound_counters,
            });
        }
        self.devices = devices;
        Ok(reading)
    }

    /// Room of the kept device list.
    #[cfg(test)]
    pub(super) fn kept_devices(&self) -> usize {
        self.devices.capacity()
    }

    /// The device list's storage back for the next cycle, empty, when the
    /// cycle ends early.
    fn keep_devices(&mut self, mut devices: Vec<Device>) {
        devices.clear();
        self.devices = devices;
    }

    fn bound_counters_alone(
        &mut self,
        device: &Device,
        errors: &mut Vec<String>,
    ) -> Vec<BoundCounter> {
        match self.client.bound_counters(device.index) {
            Ok(b) => b,
            Err(e) if e.is_unsupported() => Vec::new(),
            Err(e) => {
                errors.push(format!("{}: {e}", device.name));
                Vec::new()
            }
        }
    }

    /// The writer offered each port once, and the counter status read once,
    /// per port between rescans.
    fn port_status(
        &mut self,
        device: &Device,
        port: u32,
        first_seen: &mut PortWriter<'_, T>,
        errors: &mut Vec<String>,
    ) -> Option<Arc<Vec<CounterStatus>>> {
        let key = (device.name.clone(), port);
        if !self.configured.contains(&key) {
            first_seen(&mut self.client, device, port, errors);
            self.configured.insert(key.clone());
        }
        if let Some(s) = self.status.get(&key) {
            return Some(s.clone());
        }
        match self.client.stat_status(device.index, port) {
            Ok(s) => {
                let s = Arc::new(s);
                self.status.insert(key, s.clone());
                Some(s)
            }
            // Kernels before 5.18 have no STAT_GET_STATUS; not an error.
            Err(e) if e.is_unsupported() => None,
            Err(e) => {
                errors.push(format!("{}/{port}: {e}", device.name));
                None
            }
        }
    }
}

/// The port numbers of a device: PORT_INDEX in its reply is the last port
/// (rdma_end_port); a switch has port 0 only, a CA ports 1 to the last.
fn port_numbers(device: &Device) -> Option<std::ops::RangeInclusive<u32>> {
    let last = device.ports?;
    Some(if device.node_type == Some(RDMA_NODE_IB_SWITCH) {
        0..=0
    } else {
        1..=last
    })
}

/// rdma_node_type (include/rdma/ib_verbs.h, not in the UAPI headers).
const RDMA_NODE_IB_SWITCH: u8 = 2;

/// Names of hw counters kept from one cycle to the next, so a steady port
/// allocates no strings per cycle.
#[derive(Default)]
pub struct NameCache {
    names: HashMap<String, std::sync::Arc<str>>,
}

impl NameCache {
    pub fn get(&mut self, name: &str) -> std::sync::Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: std::sync::Arc<str> = name.into();
        self.names.insert(name.to_string(), n.clone());
        n
    }
}
