//! Link status: port state, physical state, negotiated rate and width, and
//! the link error counters (symbol errors, recoveries, link downed...).

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration, export_known};
use crate::catalog::Area;
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "link_status",
    reads: &[Input::PortState, Input::RdmaNetlink],
    factory: |_: &Config| Box::new(LinkStatus),
};

struct LinkStatus;

/// IBTA PortState ACTIVE and PortPhysicalState LinkUp.
const STATE_ACTIVE: u8 = 4;
const PHYS_LINK_UP: u8 = 5;

impl Collector for LinkStatus {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        export_known(cycle, out, Area::LinkStatus);
        for (dev, port) in cycle.ports() {
            let mut p = itoa::Buffer::new();
            let labels = [("device", &*dev.info.name), ("port", p.format(port.port))];
            if let Some(s) = &port.state {
                out.gauge_u64(
                    "rdma_port_state",
                    "Logical port state (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER).",
                    &labels,
                    s.value.into(),
                );
            }
            if let Some(s) = &port.phys_state {
                out.gauge_u64(
                    "rdma_port_physical_state",
                    "Physical port state (1 Sleep, 2 Polling, 3 Disabled, 4 PortConfigurationTraining, 5 LinkUp, 6 LinkErrorRecovery, 7 PhyTest).",
                    &labels,
                    s.value.into(),
                );
            }
            if let (Some(s), Some(ps)) = (&port.state, &port.phys_state) {
                let up = s.value == STATE_ACTIVE && ps.value == PHYS_LINK_UP;
                out.gauge_u64(
                    "rdma_port_up",
                    "1 when the port is ACTIVE and its physical link is LinkUp.",
                    &labels,
                    up.into(),
                );
            }
            if let Some(r) = &port.rate {
                out.gauge(
                    "rdma_port_rate_bytes_per_second",
                    "Negotiated port data rate, from the port's rate attribute.",
                    &labels,
                    r.gbit_per_sec * 1e9 / 8.0,
                );
                if let Some(w) = r.width {
                    out.gauge_u64(
                        "rdma_port_link_width_lanes",
                        "Negotiated link width in lanes (1X, 2X, 4X, 8X, 12X).",
                        &labels,
                        w.into(),
                    );
                }
            }
        }
        Ok(())
    }
}
