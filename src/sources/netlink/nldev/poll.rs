//! One cycle over RDMA netlink: the device list (arrivals and removals), each
//! device's ports with state, each port's hw counters in one STAT_GET, the
//! resource summary of every device in one dump, and bound (per-QP)
//! counters. Optional-counter status and the system settings are read at
//! discovery and rescans only. The opt-in counter settings are applied
//! through `settings`, once per port.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::settings::{self, OptIns};
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
    opt_ins: OptIns,
    rescan_every: Duration,
    last_rescan: Option<Instant>,
    names: NameCache,
    /// Ports whose STAT_GET said "no counters": not asked again until a rescan.
    no_stats: HashSet<(String, u32)>,
    status: HashMap<(String, u32), Arc<Vec<CounterStatus>>>,
    /// Ports the opt-ins were applied to (by device name and port).
    configured: HashSet<(String, u32)>,
    known_devices: Vec<String>,
    sys: Option<Sys>,
}

impl<T: NlTransport> NetlinkSource<T> {
    pub fn new(
        transport: T,
        filter: DeviceFilter,
        opt_ins: OptIns,
        rescan_every: Duration,
    ) -> Self {
        NetlinkSource {
            client: Client::new(transport),
            filter,
            opt_ins,
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

    /// One cycle. An error here means the device list itself could not be
    /// read: the caller falls back to sysfs for everything.
    pub fn poll(&mut self, now: Instant) -> Result<NetlinkReading, NlError> {
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

        for device in devices {
            let ports = match self.client.ports(device.index) {
                Ok(p) => p,
                Err(e) => {
                    // Gone between the device list and now, most likely.
                    reading.errors.push(format!("{}: {e}", device.name));
                    continue;
                }
            };
            let mut port_readings = Vec::with_capacity(ports.len());
            for port in ports {
                let key = (device.name.clone(), port.port);
                if !self.configured.contains(&key) {
                    settings::apply(
                        &mut self.client,
                        &self.opt_ins,
                        &device,
                        port.port,
                        &mut reading.errors,
                    );
                    self.configured.insert(key.clone());
                }
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
                resources: resources.remove(&device.index).unwrap_or_default(),
                device,
                ports: port_readings,
                bound_counters,
            });
        }
        Ok(reading)
    }
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
