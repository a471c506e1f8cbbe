//! The fabric as MADs see it: the switch port at the far end of each local
//! link (always, when umad is there), and in fabric mode every node, link
//! and port counter of the subnet, labelled by node GUID and description.

use std::collections::HashSet;

use super::{CollectError, Collector, Cycle, Registration};
use crate::catalog::{Source, lookup};
use crate::config::Config;
use crate::mad_worker::FabricPort;
use crate::metrics::{Builder, Kind, Value};
use crate::sources::mad::discovery::{NODE_CA, NODE_SWITCH, speed, width};
use crate::sources::mad::pma::PortCounters;

pub const REGISTRATION: Registration = Registration {
    name: "fabric",
    reads: &[],
    factory: |_: &Config| Box::new(FabricCollector),
};

struct FabricCollector;

fn node_type_name(t: u8) -> &'static str {
    match t {
        NODE_CA => "ca",
        NODE_SWITCH => "switch",
        3 => "router",
        _ => "other",
    }
}

fn export_port(out: &mut Builder, p: &FabricPort, pc: &PortCounters) {
    let guid = format!("{:#018x}", p.node_guid);
    let (lid, port) = (p.lid.to_string(), p.port.to_string());
    let labels = [
        ("node_guid", guid.as_str()),
        ("node_desc", p.node_desc.as_str()),
        ("lid", lid.as_str()),
        ("port", port.as_str()),
    ];
    for (name, value) in &pc.counters {
        match lookup(Source::Pma, name).and_then(|k| k.fabric_metric.map(|m| (k, m))) {
            Some((k, metric)) => match value.checked_mul(k.scale) {
                Some(v) => out.counter(metric, k.help, &labels, v),
                None => out.push(
                    metric,
                    k.help,
                    Kind::Counter,
                    &labels,
                    Value::F64(*value as f64 * k.scale as f64),
                ),
            },
            None => {
                let mut l = labels.to_vec();
                l.push(("counter", name));
                out.counter(
                    "rdma_fabric_port_pma_stat_total",
                    "PMA counter of a fabric port without a dedicated metric (counter label).",
                    &l,
                    *value,
                );
            }
        }
    }
    for (name, value) in &pc.counters {
        if crate::catalog::saturation(Source::Pma, name).contains(value) {
            let mut l = labels.to_vec();
            l.push(("counter", name));
            out.gauge_u64(
                "rdma_fabric_port_stat_saturated",
                "1 for a fabric port counter sitting at its saturation value: it no longer counts.",
                &l,
                1,
            );
        }
    }
    out.gauge_u64(
        "rdma_fabric_port_extended_counters",
        "1 when the port's PMA has 64-bit PortCountersExtended (else traffic counters are 32-bit and saturate).",
        &labels,
        pc.extended.into(),
    );
}

impl Collector for FabricCollector {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        let Some(view) = cycle.mad else { return Ok(()) };
        let mut done: HashSet<(u64, u8)> = HashSet::new();
        for p in &view.fabric_counters {
            let guid = format!("{:#018x}", p.node_guid);
            let port = p.port.to_string();
            out.gauge_u64(
                "rdma_fabric_port_counters_readable",
                "1 when the port's PMA answered this round (0: timeout or error, see the snapshot).",
                &[("node_guid", &guid), ("node_desc", &p.node_desc), ("port", &port)],
                p.counters.ok().is_some().into(),
            );
            if let Some(pc) = p.counters.ok() {
                export_port(out, p, pc);
                done.insert((p.node_guid, p.port));
            }
        }
        for l in &view.local {
            let port = l.port.to_string();
            if let Some(peer) = &l.peer {
                out.gauge_u64(
                    "rdma_port_peer_info",
                    "The port at the far end of a local IB link (value is always 1).",
                    &[
                        super::xmit_wait::local_port_label(l),
                        ("port", &port),
                        ("peer_guid", &format!("{:#018x}", peer.node_guid)),
                        ("peer_port", &peer.port.to_string()),
                        ("peer_desc", &peer.node_desc),
                        ("peer_lid", &peer.lid.to_string()),
                    ],
                    1,
                );
                if let Some(pc) = peer.counters.ok()
                    && done.insert((peer.node_guid, peer.port))
                {
                    export_port(out, peer, pc);
                }
            }
        }
        if let Some(s) = &view.fabric_summary {
            out.counter(
                "rdma_fabric_detail_write_failures_total",
                "Fabric detail files (one per sweep, beside the snapshots) that could not be written.",
                &[],
                s.detail_write_failures,
            );
            if let Some(bytes) = s.detail_bytes {
                out.gauge_u64(
                    "rdma_fabric_detail_bytes",
                    "Size of the last fabric detail file written.",
                    &[],
                    bytes,
                );
            }
        }
        if let Some(f) = &view.fabric {
            for t in [NODE_SWITCH, NODE_CA] {
                out.gauge_u64(
                    "rdma_fabric_nodes",
                    "Nodes found by the last fabric sweep, by type.",
                    &[("type", node_type_name(t))],
                    f.nodes.iter().filter(|n| n.node_type == t).count() as u64,
                );
            }
            out.gauge_u64(
                "rdma_fabric_links",
                "Links found by the last fabric sweep.",
                &[],
                f.links.len() as u64,
            );
            out.gauge(
                "rdma_fabric_sweep_duration_seconds",
                "How long the last fabric sweep took.",
                &[],
                f.duration_seconds,
            );
            out.gauge_u64(
                "rdma_fabric_sweep_mads",
                "MADs the last fabric sweep sent.",
                &[],
                f.mads.sent,
            );
            out.gauge_u64(
                "rdma_fabric_sweep_errors",
                "Queries of the last sweep that got no usable answer.",
                &[],
                f.errors.len() as u64,
            );
            for n in &f.nodes {
                out.gauge_u64(
                    "rdma_fabric_node_info",
                    "A node found by the fabric sweep (value is always 1).",
                    &[
                        ("node_guid", &format!("{:#018x}", n.guid)),
                        ("type", node_type_name(n.node_type)),
                        ("node_desc", &n.description),
                        ("ports", &n.num_ports.to_string()),
                        ("vendor_id", &format!("{:#x}", n.vendor_id)),
                        ("device_id", &format!("{:#x}", n.device_id)),
                    ],
                    1,
                );
            }
            for link in &f.links {
                for (me, peer) in [(link.a, link.b), (link.b, link.a)] {
                    let Some(node) = f.node(me.0) else { continue };
                    let rate = node
                        .port(me.1)
                        .map(|p| format!("{}{}", width(p.width_active), speed(p)))
                        .unwrap_or_default();
                    out.gauge_u64(
                        "rdma_fabric_link_info",
                        "A cabled port and its far end, with the active width and speed (value is always 1).",
                        &[
                            ("node_guid", &format!("{:#018x}", me.0)),
                            ("port", &me.1.to_string()),
                            ("peer_guid", &format!("{:#018x}", peer.0)),
                            ("peer_port", &peer.1.to_string()),
                            ("rate", &rate),
                        ],
                        1,
                    );
                }
            }
        }
        Ok(())
    }
}
