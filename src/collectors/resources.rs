//! Resources: how many QPs, CQs, MRs, PDs, contexts, CM IDs and SRQs each
//! device holds (a leak shows as a count that only grows), and the hw
//! counters bound to QPs (`rdma statistic qp`). Both come from RDMA netlink.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "resources",
    reads: &[Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Resources),
};

struct Resources;

impl Collector for Resources {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        for dev in &cycle.node.devices {
            for r in &dev.resources {
                out.gauge_u64(
                    "rdma_device_resources",
                    "Resources the device currently holds, by kind (qp, cq, mr, pd, ctx, cm_id, srq).",
                    &[("device", &dev.info.name), ("resource", &r.name)],
                    r.value,
                );
            }
            for q in &dev.qp_counters {
                let (port, id) = (q.port.to_string(), q.id.to_string());
                let qp_type = q.qp_type.map(|t| t.to_string()).unwrap_or_default();
                let pid = q.pid.map(|p| p.to_string()).unwrap_or_default();
                for c in &q.counters {
                    out.counter(
                        "rdma_qp_counter_stat_total",
                        "hw counter of a counter bound to QPs (rdma statistic qp): by counter id, binding mode, QP type and process.",
                        &[
                            ("device", &dev.info.name),
                            ("port", &port),
                            ("counter_id", &id),
                            ("mode", q.mode.unwrap_or("")),
                            ("qp_type", &qp_type),
                            ("pid", &pid),
                            ("counter", &c.name),
                        ],
                        c.value,
                    );
                }
            }
        }
        Ok(())
    }
}
