//! PortXmitWait as time: the seconds a port had data to send and could not
//! (no credits, no arbitration), from the counter, the PMA's
//! PortSamplesControl.Tick, the ASIC and the link (`catalog::xmit_wait`).
//! `rate(..._transmit_wait_seconds_total[1m])` is the share of the last
//! minute the port waited. Ports whose ASIC counts in a way no vendor
//! documents get no seconds (their ticks stay in `..._transmit_wait_total`).

use std::collections::HashSet;

use super::{CollectError, Collector, Cycle, Registration};
use crate::catalog::xmit_wait::{WaitClock, seconds_per_tick, wait_saturated};
use crate::config::Config;
use crate::mad_worker::{FabricPort, LocalPort};
use crate::metrics::{Builder, Kind, Value};
use crate::sources::mad::pma::PortCounters;

pub const REGISTRATION: Registration = Registration {
    name: "xmit_wait",
    reads: &[],
    factory: |_: &Config| Box::new(XmitWait),
};

struct XmitWait;

const SECONDS: &str = "rdma_port_transmit_wait_seconds_total";
const SECONDS_HELP: &str = "Time the port had data to transmit but sent nothing (PortXmitWait × the tick length of its ASIC and link; rate() of it is the share of time waited). Absent where the ASIC's tick is not documented.";
const FABRIC_SECONDS: &str = "rdma_fabric_port_transmit_wait_seconds_total";
const FABRIC_SECONDS_HELP: &str = "Time a fabric port had data to transmit but sent nothing (PortXmitWait × the tick length of its ASIC and link; rate() of it is the share of time waited). Absent where the ASIC's tick is not documented.";
const TICK: &str = "rdma_port_transmit_wait_tick_seconds";
const TICK_HELP: &str = "Seconds one PortXmitWait increment stands for on this port (from PortSamplesControl.Tick, the ASIC and the link speed and width).";
const FABRIC_TICK: &str = "rdma_fabric_port_transmit_wait_tick_seconds";
const FABRIC_TICK_HELP: &str = "Seconds one PortXmitWait increment stands for on this fabric port (from PortSamplesControl.Tick, the ASIC and the link speed and width).";
const RAW: &str = "rdma_port_pma_sample_tick";
const RAW_HELP: &str = "PortSamplesControl.Tick of the port's PMA as read (PortXmitWait counts in Tick + 1 symbol times).";
const FABRIC_RAW: &str = "rdma_fabric_port_pma_sample_tick";
const FABRIC_RAW_HELP: &str = "PortSamplesControl.Tick of a fabric port's PMA as read (PortXmitWait counts in Tick + 1 symbol times).";

/// The label naming a local MAD port: `device` (its RDMA device) when the
/// umad device's ibdev is known, else `umad` (the /dev/infiniband path):
/// `device` means an RDMA device and nothing else.
pub(super) fn local_port_label(l: &LocalPort) -> (&'static str, &str) {
    match &l.ibdev {
        Some(dev) => ("device", dev),
        None => ("umad", &l.umad_device),
    }
}

/// The wait counter of a reading and the seconds one tick stands for.
pub fn wait(pc: &PortCounters, clock: &WaitClock) -> Option<(u64, f64)> {
    let ticks = pc
        .counters
        .iter()
        .find(|(n, _)| *n == "port_xmit_wait")
        .map(|(_, v)| *v)?;
    Some((ticks, seconds_per_tick(clock)?))
}

fn export(
    out: &mut Builder,
    names: [(&'static str, &'static str); 3],
    labels: &[(&str, &str)],
    pc: &PortCounters,
    clock: &WaitClock,
) {
    let [(seconds, seconds_help), (tick, tick_help), (raw, raw_help)] = names;
    out.gauge_u64(raw, raw_help, labels, clock.tick.into());
    if let Some((ticks, spt)) = wait(pc, clock) {
        // The tick length stays true (it also reads the raw ticks family);
        // the seconds of a stopped counter would be a flat line that rate()
        // reads as 0 % waited, as the finding gives no share there.
        out.gauge(tick, tick_help, labels, spt);
        if wait_saturated(ticks) {
            return;
        }
        out.push(
            seconds,
            seconds_help,
            Kind::Counter,
            labels,
            Value::F64(ticks as f64 * spt),
        );
    }
}

fn export_fabric(out: &mut Builder, p: &FabricPort) {
    let (Some(pc), Some(clock)) = (p.counters.ok(), p.wait_clock.as_ref()) else {
        return;
    };
    // The labels of rdma_fabric_port_* (collectors/fabric.rs).
    let ids = [
        format!("{:#018x}", p.node_guid),
        p.lid.to_string(),
        p.port.to_string(),
    ];
    let labels = [
        ("node_guid", &*ids[0]),
        ("node_desc", &*p.node_desc),
        ("lid", &*ids[1]),
        ("port", &*ids[2]),
    ];
    export(
        out,
        [
            (FABRIC_SECONDS, FABRIC_SECONDS_HELP),
            (FABRIC_TICK, FABRIC_TICK_HELP),
            (FABRIC_RAW, FABRIC_RAW_HELP),
        ],
        &labels,
        pc,
        clock,
    );
}

impl Collector for XmitWait {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        let Some(view) = cycle.mad else { return Ok(()) };
        let mut done: HashSet<(u64, u8)> = HashSet::new();
        for p in &view.fabric_counters {
            export_fabric(out, p);
            done.insert((p.node_guid, p.port));
        }
        for l in &view.local {
            if let (Some(pc), Some(clock)) = (l.counters.ok(), l.wait_clock.as_ref()) {
                let port = l.port.to_string();
                export(
                    out,
                    [(SECONDS, SECONDS_HELP), (TICK, TICK_HELP), (RAW, RAW_HELP)],
                    &[local_port_label(l), ("port", &port)],
                    pc,
                    clock,
                );
            }
            if let Some(peer) = &l.peer
                && done.insert((peer.node_guid, peer.port))
            {
                export_fabric(out, peer);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "xmit_wait_tests.rs"]
mod tests;
