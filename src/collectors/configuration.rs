//! Configuration: what each device and port is (firmware, board, GUIDs,
//! link layer, netdev, capabilities) as `_info` series, and the driver's
//! counter cache lifespan.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;
use crate::sources::sysfs::parse::GuidText;

pub const REGISTRATION: Registration = Registration {
    name: "configuration",
    reads: &[Input::Attributes],
    factory: |_: &Config| Box::new(Configuration),
};

struct Configuration;

impl Collector for Configuration {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        for dev in &cycle.node.devices {
            let i = &dev.info;
            let guid = |g: Option<u64>| g.map(GuidText::new);
            let (node_guid, sys_image_guid) = (guid(i.node_guid), guid(i.sys_image_guid));
            let node_type = i.node_type.as_ref().map_or("", |t| &*t.name);
            let s = text_or_empty;
            out.gauge_u64(
                "rdma_device_info",
                "RDMA device identity: firmware, board, HCA type, GUIDs, driver (value is always 1).",
                &[
                    ("device", &i.name),
                    ("node_type", node_type),
                    ("fw_ver", s(&i.fw_ver)),
                    ("board_id", s(&i.board_id)),
                    ("hca_type", s(&i.hca_type)),
                    ("node_guid", node_guid.as_ref().map_or("", GuidText::as_str)),
                    (
                        "sys_image_guid",
                        sys_image_guid.as_ref().map_or("", GuidText::as_str),
                    ),
                    ("node_desc", s(&i.node_desc)),
                    ("driver", s(&i.driver)),
                ],
                1,
            );
            for (param, v) in &i.dcqcn {
                out.gauge_u64(
                    "rdma_dcqcn_parameter",
                    "DCQCN congestion-control parameter of an mlx5 RoCE device (debugfs mlx5/<pci>/cc_params: rp_* reaction point, np_* notification point).",
                    &[("device", &i.name), ("parameter", param)],
                    *v,
                );
            }
        }
        for m in cycle.node.module_params.iter() {
            out.gauge_u64(
                "rdma_kernel_module_parameter_info",
                "A parameter of an RDMA kernel module (/sys/module/<module>/parameters; value is always 1).",
                &[("module", m.module), ("parameter", &m.name), ("value", &m.value)],
                1,
            );
        }
        for (dev, port) in cycle.ports() {
            let mut p = itoa::Buffer::new();
            let p = p.format(port.port);
            let info = &port.info;
            out.gauge_u64(
                "rdma_port_info",
                "RDMA port identity: link layer, detected transport, netdev (value is always 1).",
                &[
                    ("device", &dev.info.name),
                    ("port", p),
                    ("link_layer", info.link_layer.as_deref().unwrap_or("")),
                    ("transport", cycle.transport(dev, port).as_str()),
                    ("netdev", info.netdev.as_deref().unwrap_or("")),
                ],
                1,
            );
            let labels = [("device", &*dev.info.name), ("port", p)];
            if let Some(mask) = info.cap_mask {
                out.gauge_u64(
                    "rdma_port_capability_mask",
                    "PortInfo CapabilityMask of the port (bit field, IBTA vol. 1 §14.2.5.6).",
                    &labels,
                    mask,
                );
            }
            if let Some(ms) = info.hw_counters_lifespan_ms {
                out.gauge(
                    "rdma_port_hw_counters_lifespan_seconds",
                    "How long the driver caches hw_counters values before querying the device again.",
                    &labels,
                    ms as f64 / 1000.0,
                );
            }
        }
        Ok(())
    }
}

/// An attribute's text, empty when absent (an `_info` label is never left out).
fn text_or_empty(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}
