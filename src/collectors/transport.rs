//! Transport: retransmissions, timeouts, sequence errors and work-request
//! errors of the RoCE/IB transport, from each driver's `hw_counters/` under
//! one family per meaning (the catalog's `Area::Transport`), and the origin
//! of each port's RDMA volume.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration, export_known};
use crate::catalog::{self, Area, Source};
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "transport",
    reads: &[Input::Counters, Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Transport),
};

struct Transport;

impl Collector for Transport {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        export_known(cycle, out, Area::Transport);
        volume(cycle, out);
        Ok(())
    }
}

/// Where each port's RDMA volume (`rdma_port_{transmit,receive}_*_total`)
/// comes from: the PMA, a driver counter standing in for it (EFA, bnxt_re),
/// or, on a port with neither, the netdev's vport RDMA statistics (mlx5
/// `*_vport_rdma_unicast_*`), which this exports under the port families.
fn volume(cycle: &Cycle, out: &mut Builder) {
    const PMA: [&str; 4] = [
        "port_xmit_data",
        "port_rcv_data",
        "port_xmit_packets",
        "port_rcv_packets",
    ];
    for (dev, port) in cycle.ports() {
        let p = port.port.to_string();
        let netdev = port
            .info
            .netdev
            .as_deref()
            .and_then(|n| cycle.node.netdevs.iter().find(|nd| nd.name == n));
        for pma in PMA {
            let Some(k) = catalog::lookup(Source::Pma, pma) else {
                continue;
            };
            let (origin, counter, value) = if port.counters.iter().any(|c| &*c.name == pma) {
                ("pma", pma.to_string(), None)
            } else if let Some(c) = port.hw_counters.iter().find(|c| {
                catalog::lookup(Source::Hw, &c.name).is_some_and(|k| k.stands_in_for == Some(pma))
            }) {
                ("hw_counters", c.name.to_string(), None)
            } else if let Some(c) = netdev.and_then(|nd| {
                nd.ethtool_stats.iter().find(|c| {
                    catalog::ethtool::lookup(&c.name)
                        .is_some_and(|h| h.stat.stands_in_for == Some(pma))
                })
            }) {
                ("ethtool", c.name.to_string(), Some(c.value))
            } else {
                continue;
            };
            if let Some(v) = value {
                out.counter(
                    k.metric,
                    k.help,
                    &[("device", &dev.info.name), ("port", &p)],
                    v,
                );
            }
            out.gauge_u64(
                "rdma_port_volume_origin",
                "Where the port's volume family (metric label) comes from: origin pma (ports/N/counters), hw_counters (a driver counter such as EFA tx_bytes) or ethtool (mlx5 *_vport_rdma_unicast_*, on a port with neither); counter is the source's name (value is always 1).",
                &[
                    ("device", &dev.info.name),
                    ("port", &p),
                    ("metric", k.metric),
                    ("origin", origin),
                    ("counter", &counter),
                ],
                1,
            );
        }
    }
}
