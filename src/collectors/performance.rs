//! Performance: data and packet counters of each port, and every driver
//! counter (`hw_counters/`) under one generic family labelled by name.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration, export_known};
use crate::catalog::Area;
use crate::config::Config;
use crate::metrics::{Builder, Value};

pub const REGISTRATION: Registration = Registration {
    name: "performance",
    reads: &[Input::Counters, Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Performance),
};

struct Performance;

const HW_PORT: &str = "rdma_port_hw_stat_total";
const HW_PORT_HELP: &str = "Driver counter from ports/N/hw_counters, by the driver's own name (counter label), as the kernel reports it.";
const HW_DEVICE: &str = "rdma_device_hw_stat_total";
const HW_DEVICE_HELP: &str =
    "Device-wide driver counter from hw_counters, by the driver's own name (counter label).";
const PMA_OTHER: &str = "rdma_port_pma_stat_total";
const PMA_OTHER_HELP: &str = "Port counter from ports/N/counters that the agent has no dedicated metric for (counter label).";

impl Collector for Performance {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        export_known(cycle, out, Area::Performance);
        for dev in &cycle.node.devices {
            for c in &dev.hw_counters {
                out.counter(
                    HW_DEVICE,
                    HW_DEVICE_HELP,
                    &[("device", &dev.info.name), ("counter", &c.name)],
                    c.value,
                );
            }
        }
        for port in cycle.ports_known() {
            let mut out = port.prefixed(out);
            // The driver counters and the PMA ones the catalog has no
            // family for: labelled with their own names (their tail).
            let unknown = [
                (HW_PORT, HW_PORT_HELP, &port.port.hw_counters, port.hw),
                (PMA_OTHER, PMA_OTHER_HELP, &port.port.counters, port.pma),
            ];
            for (family, help, counters, entries) in unknown {
                for (c, e) in counters.iter().zip(entries) {
                    if e.known.is_none() {
                        port.push(&mut out, family, help, &c.name, *e, Value::U64(c.value));
                    }
                }
            }
        }
        Ok(())
    }
}
