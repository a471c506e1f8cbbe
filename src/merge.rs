//! Puts an RDMA netlink reading over the sysfs one: states, hw counters,
//! resources and QP counters from netlink where it answered, sysfs for the
//! rest (rate, link layer, GIDs, PMA counters, device-wide hw counters).
//! A device netlink sees but sysfs doesn't (a container without /sys) still
//! shows, built from netlink alone.

use std::sync::Arc;

use crate::model::{
    Counter, DeviceInfo, DeviceReading, Enumerated, NodeReading, Origin, PortInfo, PortReading,
    QpCounter,
};
use crate::sources::netlink::nldev::poll::{self, NetlinkReading};
use crate::sources::netlink::nldev::{BoundCounter, Device};
use crate::sources::sysfs::Covered;

/// Names the kernel's sysfs prints for IB PortState (`ib_port_state`), so a
/// value reads the same whichever interface it came from.
pub fn port_state_name(v: u8) -> &'static str {
    match v {
        0 => "NOP",
        1 => "DOWN",
        2 => "INIT",
        3 => "ARMED",
        4 => "ACTIVE",
        5 => "ACTIVE_DEFER",
        _ => "UNKNOWN",
    }
}

/// Names sysfs prints for PortPhysicalState (`phys_state_to_str`).
pub fn phys_state_name(v: u8) -> &'static str {
    match v {
        1 => "Sleep",
        2 => "Polling",
        3 => "Disabled",
        4 => "PortConfigurationTraining",
        5 => "LinkUp",
        6 => "LinkErrorRecovery",
        7 => "Phy Test",
        _ => "<unknown>",
    }
}

/// Names sysfs prints for `node_type`.
fn node_type_name(v: u8) -> &'static str {
    match v {
        1 => "CA",
        2 => "switch",
        3 => "router",
        4 => "RNIC",
        5 => "usNIC",
        6 => "usNIC UDP",
        7 => "unspecified",
        _ => "<unknown>",
    }
}

fn enumerated(v: u8, name: &'static str) -> Enumerated {
    Enumerated {
        value: v,
        name: name.to_string(),
    }
}

/// The ports netlink read state and hw counters for: sysfs skips them.
pub fn covered(nl: &NetlinkReading) -> Covered {
    let mut c = Covered::default();
    for d in &nl.devices {
        for p in &d.ports {
            // A port netlink has no hw counters for is read whole from sysfs.
            if let (Some(state), Some(_)) = (p.port.state, &p.hw_counters) {
                c.insert(&d.device.name, p.port.port, state);
            }
        }
    }
    // The device dump is the kernel's list (sysfs lists the same devices);
    // a reading with failures leaves the listing to sysfs.
    if nl.errors.is_empty() {
        c.set_devices(
            nl.devices
                .iter()
                .map(|d| (d.device.name.clone(), d.device.index))
                .collect(),
        );
    }
    c
}

fn qp_counter(b: &BoundCounter, counters: Vec<Counter>) -> QpCounter {
    QpCounter {
        port: b.port,
        id: b.id,
        mode: b.mode.map(|m| match m {
            1 => "auto",
            2 => "manual",
            _ => "none",
        }),
        qp_type: b.qp_type,
        pid: b.pid,
        qpns: b.qpns.clone(),
        counters,
    }
}

fn device_from_netlink(d: &Device) -> DeviceReading {
    let info = DeviceInfo {
        name: d.name.as_str().into(),
        node_type: d.node_type.map(|t| enumerated(t, node_type_name(t))),
        node_guid: d.node_guid,
        sys_image_guid: d.sys_image_guid,
        fw_ver: d.fw_version.clone(),
        ..DeviceInfo::default()
    };
    DeviceReading {
        info: Arc::new(info),
        hw_counters: Vec::new(),
        ports: Vec::new(),
        resources: Vec::new(),
        qp_counters: Vec::new(),
    }
}

fn port_from_netlink(p: &poll::NldevPortReading) -> PortReading {
    let info = PortInfo {
        lid: p.port.lid.map(u64::from),
        sm_lid: p.port.sm_lid.map(u64::from),
        lmc: p.port.lmc.map(u64::from),
        cap_mask: p.port.cap_flags.map(|c| c & 0xffff_ffff),
        netdev: p.port.netdev.clone(),
        ..PortInfo::default()
    };
    PortReading::new(p.port.port, Arc::new(info))
}

pub fn merge(node: &mut NodeReading, nl: NetlinkReading) {
    node.netlink = true;
    for nd in nl.devices {
        let idx = match node
            .devices
            .iter()
            .position(|d| *d.info.name == nd.device.name)
        {
            Some(i) => i,
            None => {
                node.devices.push(device_from_netlink(&nd.device));
                node.devices.len() - 1
            }
        };
        let dev = &mut node.devices[idx];
        dev.resources = nd.resources;
        dev.qp_counters = nd
            .bound_counters
            .iter()
            .map(|b| {
                let counters = b
                    .counters
                    .iter()
                    .map(|n| Counter {
                        name: n.name.as_str().into(),
                        value: n.value,
                    })
                    .collect();
                qp_counter(b, counters)
            })
            .collect();
        for np in nd.ports {
            let pidx = match dev.ports.iter().position(|p| p.port == np.port.port) {
                Some(i) => i,
                None => {
                    dev.ports.push(port_from_netlink(&np));
                    dev.ports.sort_by_key(|p| p.port);
                    dev.ports
                        .iter()
                        .position(|p| p.port == np.port.port)
                        .unwrap_or(0)
                }
            };
            let port = &mut dev.ports[pidx];
            if let Some(s) = np.port.state {
                port.state = Some(enumerated(s, port_state_name(s)));
                port.origin.state = Origin::RdmaNetlink;
            }
            if let Some(s) = np.port.phys_state {
                port.phys_state = Some(enumerated(s, phys_state_name(s)));
            }
            if let Some(mut hw) = np.hw_counters {
                // sysfs lists files sorted by name; keep one order whatever the source.
                hw.sort_by(|a, b| a.name.cmp(&b.name));
                port.hw_counters = hw;
                port.origin.hw_counters = Origin::RdmaNetlink;
            }
        }
    }
    node.devices.sort_by(|a, b| a.info.name.cmp(&b.info.name));
}

/// The local ports the MAD worker read PMA counters for: sysfs skips their `counters/`.
pub fn covered_by_mad(view: &crate::mad_worker::MadView, covered: &mut Covered) {
    for l in &view.local {
        if let (Some(dev), Some(_)) = (&l.ibdev, l.counters.ok()) {
            covered.insert_pma(dev, u32::from(l.port));
        }
    }
}

/// Puts the MAD worker's local port counters in place of sysfs `counters/`.
pub fn merge_mad(node: &mut NodeReading, view: &crate::mad_worker::MadView) {
    for l in &view.local {
        let (Some(dev), Some(pc)) = (&l.ibdev, l.counters.ok()) else {
            continue;
        };
        let Some(d) = node.devices.iter_mut().find(|d| *d.info.name == **dev) else {
            continue;
        };
        let Some(p) = d.ports.iter_mut().find(|p| p.port == u32::from(l.port)) else {
            continue;
        };
        let mut counters: Vec<Counter> = pc
            .counters
            .iter()
            .map(|(n, v)| Counter {
                name: (*n).into(),
                value: *v,
            })
            .collect();
        counters.sort_by(|a, b| a.name.cmp(&b.name));
        p.counters = counters;
        p.origin.counters = Origin::Mad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceFilter, PortOrigin};
    use crate::sources::netlink::nldev::{Named, Port};
    use crate::sources::sysfs::SysfsSource;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    fn nl_port(port: u32, state: u8, hw: Option<Vec<(&str, u64)>>) -> poll::NldevPortReading {
        poll::NldevPortReading {
            port: Port {
                port,
                state: Some(state),
                phys_state: Some(5),
                ..Port::default()
            },
            hw_counters: hw.map(|v| {
                v.into_iter()
                    .map(|(n, value)| Counter {
                        name: n.into(),
                        value,
                    })
                    .collect()
            }),
            counter_status: None,
        }
    }

    fn nl_device(name: &str, ports: Vec<poll::NldevPortReading>) -> poll::NldevDeviceReading {
        poll::NldevDeviceReading {
            device: Device {
                name: name.into(),
                node_type: Some(1),
                ..Device::default()
            },
            ports,
            resources: vec![Counter {
                name: "qp".into(),
                value: 3,
            }],
            bound_counters: vec![BoundCounter {
                port: 1,
                id: 2,
                mode: Some(1),
                qp_type: Some(2),
                counters: vec![Named {
                    name: "rx_write_requests".into(),
                    value: 9,
                }],
                ..BoundCounter::default()
            }],
        }
    }

    #[test]
    fn netlink_values_win_and_sysfs_keeps_the_rest() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed");
        let mut sysfs = SysfsSource::new(&root, DeviceFilter::default(), Duration::from_secs(60));
        let nl = NetlinkReading {
            devices: vec![
                nl_device(
                    "mlx5_0",
                    vec![nl_port(1, 1, Some(vec![("zeta", 5), ("alpha", 7)]))],
                ),
                nl_device("rxe9", vec![nl_port(1, 4, Some(vec![("sent_pkts", 1)]))]),
            ],
            ..NetlinkReading::default()
        };
        let cov = covered(&nl);
        let mut node = sysfs.poll_covered(Instant::now(), &cov);
        let mlx = node
            .devices
            .iter()
            .find(|d| &*d.info.name == "mlx5_0")
            .unwrap();
        assert!(
            mlx.ports[0].state.is_none() && mlx.ports[0].hw_counters.is_empty(),
            "skipped in sysfs"
        );
        assert!(
            !mlx.ports[0].counters.is_empty(),
            "PMA counters still from sysfs"
        );
        merge(&mut node, nl);
        let mlx = node
            .devices
            .iter()
            .find(|d| &*d.info.name == "mlx5_0")
            .unwrap();
        let p = &mlx.ports[0];
        assert_eq!(p.state.as_ref().unwrap().name, "DOWN");
        assert_eq!(p.origin.state, Origin::RdmaNetlink);
        assert_eq!(p.origin.hw_counters, Origin::RdmaNetlink);
        let names: Vec<&str> = p.hw_counters.iter().map(|c| &*c.name).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert!(p.rate.is_some(), "rate stays from sysfs");
        assert_eq!(mlx.resources[0].value, 3);
        assert_eq!(mlx.qp_counters[0].mode, Some("auto"));
        // A device only netlink sees.
        let rxe = node
            .devices
            .iter()
            .find(|d| &*d.info.name == "rxe9")
            .unwrap();
        assert_eq!(rxe.ports[0].state.as_ref().unwrap().name, "ACTIVE");
        assert_eq!(rxe.info.node_type.as_ref().unwrap().name, "CA");
        // Untouched devices keep their sysfs origin.
        let hfi = node
            .devices
            .iter()
            .find(|d| &*d.info.name == "hfi1_0")
            .unwrap();
        assert_eq!(hfi.ports[0].origin, PortOrigin::default());
        assert!(node.netlink);
    }

    #[test]
    fn a_port_without_netlink_counters_is_read_from_sysfs() {
        let nl = NetlinkReading {
            devices: vec![nl_device("mlx4_0", vec![nl_port(1, 4, None)])],
            ..NetlinkReading::default()
        };
        assert!(covered(&nl).is_empty());
    }
}
