//! The only place the agent writes to the kernel: the counter settings an
//! operator opted in to (`network.optional_counters`,
//! `network.qp_counter_auto_mode`), sent as RDMA_NLDEV_CMD_STAT_SET once per
//! port, as `rdma statistic set` / `rdma statistic qp set ... auto` would.
//! Without an opt-in nothing here runs; decoders and the poll only read.

use std::time::Instant;

use super::poll::{NetlinkReading, NetlinkSource};
use super::{Client, Device, REQUEST, nldev_type};
use crate::sources::netlink::wire::MessageBuilder;
use crate::sources::netlink::{NlError, NlTransport};
use crate::sys::*;

/// Counter settings an operator asked for; applied once per port, never as a
/// side effect of monitoring.
#[derive(Debug, Clone, Default)]
pub struct OptIns {
    /// Optional hw counters to enable (by name, e.g. `cc_rx_ce_pkts`).
    pub optional_counters: Vec<String>,
    /// Put ports in counter auto mode with this mask (RDMA_COUNTER_MASK_*).
    pub auto_mode_mask: Option<u32>,
}

/// Enables exactly `indices` among the port's optional counters (the kernel
/// disables every optional counter not listed).
pub fn set_optional_counters(seq: u32, dev: u32, port: u32, indices: &[u32]) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_STAT_SET), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
        .nested_u32s(
            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
            RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX,
            indices,
        )
        .finish()
}

/// Auto mode: the kernel binds each new QP to a counter by `mask`
/// (RDMA_COUNTER_MASK_QP_TYPE, RDMA_COUNTER_MASK_PID), as `rdma statistic qp set ... auto`.
pub fn set_auto_mode(seq: u32, dev: u32, port: u32, mask: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_STAT_SET), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
        .u32(RDMA_NLDEV_ATTR_STAT_RES, RDMA_NLDEV_ATTR_RES_QP)
        .u32(RDMA_NLDEV_ATTR_STAT_MODE, RDMA_COUNTER_MODE_AUTO)
        .u32(RDMA_NLDEV_ATTR_STAT_AUTO_MODE_MASK, mask)
        .finish()
}

impl<T: NlTransport> Client<T> {
    pub fn set_optional_counters(
        &mut self,
        dev: u32,
        port: u32,
        indices: &[u32],
    ) -> Result<(), NlError> {
        self.run(|s| set_optional_counters(s, dev, port, indices), |_| Ok(()))
            .map(|_| ())
    }
    pub fn set_auto_mode(&mut self, dev: u32, port: u32, mask: u32) -> Result<(), NlError> {
        self.run(|s| set_auto_mode(s, dev, port, mask), |_| Ok(()))
            .map(|_| ())
    }
}

/// One netlink cycle that writes the opt-ins to each port the first time it
/// is seen, before its counter status and counters are read (so the first
/// reading already shows what was enabled). Without opt-ins it is the
/// read-only poll.
pub fn poll_applying<T: NlTransport>(
    src: &mut NetlinkSource<T>,
    opt_ins: &OptIns,
    now: Instant,
) -> Result<NetlinkReading, NlError> {
    if opt_ins.optional_counters.is_empty() && opt_ins.auto_mode_mask.is_none() {
        return src.poll(now);
    }
    src.poll_with(now, &mut |client, device, port, errors| {
        apply(client, opt_ins, device, port, errors)
    })
}

/// Applies the opt-ins to one port.
fn apply<T: NlTransport>(
    client: &mut Client<T>,
    opt_ins: &OptIns,
    device: &Device,
    port: u32,
    errors: &mut Vec<String>,
) {
    if let Some(mask) = opt_ins.auto_mode_mask
        && let Err(e) = client.set_auto_mode(device.index, port, mask)
    {
        errors.push(format!("{}/{port}: counter auto mode: {e}", device.name));
    }
    if opt_ins.optional_counters.is_empty() {
        return;
    }
    let status = match client.stat_status(device.index, port) {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("{}/{port}: optional counters: {e}", device.name));
            return;
        }
    };
    for name in &opt_ins.optional_counters {
        if !status
            .iter()
            .any(|c| &c.name == name && c.optional_enabled.is_some())
        {
            errors.push(format!(
                "{}/{port}: optional counter {name:?} is not an optional counter of this port",
                device.name
            ));
        }
    }
    // Keep what is already on (the kernel turns off every optional counter not listed).
    let mut wanted: Vec<u32> = status
        .iter()
        .filter(|c| {
            c.optional_enabled == Some(true)
                || (c.optional_enabled.is_some() && opt_ins.optional_counters.contains(&c.name))
        })
        .map(|c| c.index)
        .collect();
    wanted.sort_unstable();
    let already: Vec<u32> = status
        .iter()
        .filter(|c| c.optional_enabled == Some(true))
        .map(|c| c.index)
        .collect();
    if wanted.len() == already.len() {
        return;
    }
    if let Err(e) = client.set_optional_counters(device.index, port, &wanted) {
        errors.push(format!(
            "{}/{port}: enabling optional counters: {e}",
            device.name
        ));
    }
}
