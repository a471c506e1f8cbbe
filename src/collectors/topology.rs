//! Topology: what the node holds (devices, ports by transport), each port's
//! addresses on the fabric (LID, SM LID, LMC) and its GID table.

use std::collections::BTreeMap;

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "topology",
    reads: &[Input::Attributes],
    factory: |_: &Config| Box::new(Topology),
};

struct Topology;

impl Collector for Topology {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        out.gauge_u64(
            "rdma_devices",
            "RDMA devices watched on this node.",
            &[],
            cycle.node.devices.len() as u64,
        );
        let mut by_transport: BTreeMap<&str, u64> = BTreeMap::new();
        for (dev, port) in cycle.ports() {
            *by_transport
                .entry(cycle.transport(dev, port).as_str())
                .or_default() += 1;
            let p = port.port.to_string();
            let labels = [("device", &*dev.info.name), ("port", p.as_str())];
            let info = &port.info;
            // LIDs only mean something on InfiniBand; RoCE ports report 0.
            let ib_addresses = [
                (
                    "rdma_port_lid",
                    "Base LID assigned to the port by the subnet manager.",
                    info.lid,
                ),
                (
                    "rdma_port_sm_lid",
                    "LID of the port's master subnet manager.",
                    info.sm_lid,
                ),
                (
                    "rdma_port_lmc",
                    "LID mask control: the port answers 2^LMC LIDs.",
                    info.lmc,
                ),
            ];
            for (name, help, value) in ib_addresses {
                if let Some(v) = value {
                    out.gauge_u64(name, help, &labels, v);
                }
            }
            for g in &info.gids {
                let index = g.index.to_string();
                out.gauge_u64(
                    "rdma_port_gid_info",
                    "A populated entry of the port's GID table (value is always 1).",
                    &[
                        ("device", &dev.info.name),
                        ("port", &p),
                        ("index", &index),
                        ("gid", &g.gid),
                        ("gid_type", g.gid_type.as_deref().unwrap_or("")),
                        ("netdev", g.netdev.as_deref().unwrap_or("")),
                    ],
                    1,
                );
            }
        }
        for (transport, n) in by_transport {
            out.gauge_u64(
                "rdma_ports",
                "RDMA ports on this node by transport (ib, roce, iwarp, other).",
                &[("transport", transport)],
                n,
            );
        }
        Ok(())
    }
}
