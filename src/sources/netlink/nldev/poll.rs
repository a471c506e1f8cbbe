//! One cycle over RDMA netlink: the device list (arrivals and removals), each
//! device's ports with state, each port's hw counters in one STAT_GET, the
//! resource summary of every device in one dump, and bound (per-QP)
//! counters. Optional-counter status and the system settings are read at
//! discovery and rescans only. Nothing here writes to the kernel: the
//! opt-in counter settings are applied by `settings::poll_applying`, which
//! drives the same steps and writes to each port the first time it is seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{BoundCounter, Client, CounterStatus, Device, Named, Port, Sys};
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

pub struct NetlinkSource<T: NlTransport> {
    client: Client<T>,
    filter: DeviceFilter,
    rescan_every: Duration,
    last_rescan: Option<Instant>,
    names: NameCache,
    /// Ports whose STAT_GET said "no counters": not asked again until a rescan.
    no_stats: HashSet<(String, u32)>,
    status: HashMap<(String, u32), Arc<Vec<CounterStatus>>>,
    /// Ports already offered to the opt-in writer (by device name and port).
    configured: HashSet<(String, u32)>,
    known_devices: Vec<String>,
    sys: Option<Sys>,
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
            sys: None,
        }
    }

    pub fn stats(&self) -> TransportStats {
        self.client.stats()
    }

    pub fn client_mut(&mut self) -> &mut Client<T> {
        &mut self.client
    }

    fn counters(&mut self, named: Vec<Named>) -> Vec<Counter> {
        named
            .into_iter()
            .map(|n| Counter {
                name: self.names.get(&n.name),
                value: n.value,
            })
            .collect()
    }

    /// One cycle, read only. An error here means the device list itself
    /// could not be read: the caller falls back to sysfs for everything.
    pub fn poll(&mut self, now: Instant) -> Result<NetlinkReading, NlError> {
        let mut pass = self.begin(now)?;
        while let Some((device, ports)) = self.next_device(&mut pass) {
            self.read_device(&mut pass, device, ports);
        }
        Ok(pass.reading)
    }

    /// The first step of a cycle: the device list, the system settings at
    /// rescans, the resource summary.
    pub fn begin(&mut self, now: Instant) -> Result<Pass, NlError> {
        let mut reading = NetlinkReading::default();
        let devices: Vec<Device> = self
            .client
            .devices()?
            .into_iter()
            .filter(|d| self.filter.accepts(&d.name))
            .collect();
        let names: Vec<String> = devices.iter().map(|d| d.name.clone()).collect();
        let due = self
            .last_rescan
            .is_none_or(|t| now.duration_since(t) >= self.rescan_every);
        if due || names != self.known_devices {
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

        let mut resources: HashMap<u32, Vec<Counter>> = HashMap::new();
        match self.client.resources() {
            Ok(all) => {
                for r in all {
                    let entries = self.counters(r.entries);
                    resources.insert(r.dev_index, entries);
                }
            }
            Err(e) => reading.errors.push(e.to_string()),
        }
        let mut devices = devices;
        devices.reverse();
        Ok(Pass {
            reading,
            devices,
            resources,
        })
    }

    /// The next device of the pass with its ports (a device whose ports
    /// cannot be read is noted in the errors and skipped).
    pub fn next_device(&mut self, pass: &mut Pass) -> Option<(Device, Vec<Port>)> {
        while let Some(device) = pass.devices.pop() {
            match self.client.ports(device.index) {
                Ok(p) => return Some((device, p)),
                Err(e) => {
                    // Gone between the device list and now, most likely.
                    pass.reading.errors.push(format!("{}: {e}", device.name));
                }
            }
        }
        None
    }

    /// The ports of `device` not offered to the opt-in writer before; they
    /// count as offered from now on (until the device goes away).
    pub fn first_seen(&mut self, device: &Device, ports: &[Port]) -> Vec<u32> {
        ports
            .iter()
            .filter(|p| self.configured.insert((device.name.clone(), p.port)))
            .map(|p| p.port)
            .collect()
    }

    /// Reads one device's ports (status, hw counters) and bound counters into the pass.
    pub fn read_device(&mut self, pass: &mut Pass, device: Device, ports: Vec<Port>) {
        let reading = &mut pass.reading;
        let mut port_readings = Vec::with_capacity(ports.len());
        for port in ports {
            let key = (device.name.clone(), port.port);
            let counter_status = match self.status.get(&key) {
                Some(s) => Some(s.clone()),
                None => match self.client.stat_status(device.index, port.port) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        self.status.insert(key.clone(), s.clone());
                        Some(s)
                    }
                    // Kernels before 5.18 have no STAT_GET_STATUS; not an error.
                    Err(e) if e.is_unsupported() => None,
                    Err(e) => {
                        reading
                            .errors
                            .push(format!("{}/{}: {e}", device.name, port.port));
                        None
                    }
                },
            };
            let hw_counters = if self.no_stats.contains(&key) {
                None
            } else {
                match self.client.port_stats(device.index, port.port) {
                    Ok(s) => Some(self.counters(s.counters)),
                    Err(e) if e.is_unsupported() => {
                        self.no_stats.insert(key);
                        None
                    }
                    Err(e) => {
                        reading
                            .errors
                            .push(format!("{}/{}: {e}", device.name, port.port));
                        None
                    }
                }
            };
            port_readings.push(NldevPortReading {
                port,
                hw_counters,
                counter_status,
            });
        }
        let bound_counters = match self.client.bound_counters(device.index) {
            Ok(b) => b,
            Err(e) if e.is_unsupported() => Vec::new(),
            Err(e) => {
                reading.errors.push(format!("{}: {e}", device.name));
                Vec::new()
            }
        };
        reading.devices.push(NldevDeviceReading {
            resources: pass.resources.remove(&device.index).unwrap_or_default(),
            device,
            ports: port_readings,
            bound_counters,
        });
    }
}

/// One cycle in progress: what has been read, the devices still to read.
pub struct Pass {
    pub reading: NetlinkReading,
    /// Still to read, last first.
    devices: Vec<Device>,
    resources: HashMap<u32, Vec<Counter>>,
}

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
