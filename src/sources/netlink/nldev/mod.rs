//! RDMA netlink (`NETLINK_RDMA`, `RDMA_NL_NLDEV`): devices, ports, every
//! port hw counter in one `STAT_GET`, resource counts, optional and bound
//! (per-QP) counters — what `rdma dev/link/res/statistic` read.
//!
//! Here: the request builders and typed decoders of the replies
//! (drivers/infiniband/core/nldev.c fills them; attribute ids and types from
//! rdma/rdma_netlink.h; unknown attributes are skipped). `client.rs` runs
//! them over a transport, `poll.rs` is one cycle, `settings.rs` holds the
//! opt-in writes (STAT_SET), the only place the agent writes to the kernel.

mod client;
pub mod poll;
pub mod res;
pub mod settings;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use client::{Client, Queued};

use super::wire::{MessageBuilder, NlAttr, WireError, attrs, count_malformed, skip};
use crate::sys::*;

/// `RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, op)`.
pub const fn nldev_type(op: u32) -> u16 {
    ((RDMA_NL_NLDEV << 10) + op) as u16
}

/// The command name of an NLDEV message type, for errors.
pub fn command_name(kind: u16) -> &'static str {
    match u32::from(kind) & 0x3ff {
        RDMA_NLDEV_CMD_GET => "RDMA_NLDEV_CMD_GET",
        RDMA_NLDEV_CMD_PORT_GET => "RDMA_NLDEV_CMD_PORT_GET",
        RDMA_NLDEV_CMD_SYS_GET => "RDMA_NLDEV_CMD_SYS_GET",
        RDMA_NLDEV_CMD_RES_GET => "RDMA_NLDEV_CMD_RES_GET",
        RDMA_NLDEV_CMD_RES_QP_GET => "RDMA_NLDEV_CMD_RES_QP_GET",
        RDMA_NLDEV_CMD_RES_MR_GET => "RDMA_NLDEV_CMD_RES_MR_GET",
        RDMA_NLDEV_CMD_RES_CQ_GET => "RDMA_NLDEV_CMD_RES_CQ_GET",
        RDMA_NLDEV_CMD_RES_PD_GET => "RDMA_NLDEV_CMD_RES_PD_GET",
        RDMA_NLDEV_CMD_STAT_GET => "RDMA_NLDEV_CMD_STAT_GET",
        RDMA_NLDEV_CMD_STAT_SET => "RDMA_NLDEV_CMD_STAT_SET",
        RDMA_NLDEV_CMD_STAT_GET_STATUS => "RDMA_NLDEV_CMD_STAT_GET_STATUS",
        _ => "RDMA_NLDEV command",
    }
}

const REQUEST: u16 = NLM_F_REQUEST as u16;
const DUMP: u16 = (NLM_F_REQUEST | NLM_F_DUMP) as u16;

pub fn get_devices(seq: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_GET), DUMP, seq).finish()
}

/// PORT_GET dumps need the device index (nldev_port_get_dumpit).
pub fn get_ports(seq: u32, dev: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_PORT_GET), DUMP, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .finish()
}

/// PORT_GET of one port (a doit, nldev_port_get_doit): the same reply as
/// one entry of the dump, and unlike the dump it can share a batch.
pub fn get_port(seq: u32, dev: u32, port: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_PORT_GET), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
        .finish()
}

/// RES_GET of one device (a doit, nldev_res_get_doit): its entry of the dump.
pub fn get_device_resources(seq: u32, dev: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_RES_GET), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .finish()
}

/// STAT_GET without STAT_RES: the port's default hw counters (a doit).
pub fn get_port_stats(seq: u32, dev: u32, port: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_STAT_GET), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
        .finish()
}

pub fn get_stat_status(seq: u32, dev: u32, port: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_STAT_GET_STATUS), REQUEST, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
        .finish()
}

/// The counters bound to QPs (`rdma statistic qp`): a dump per device.
pub fn get_bound_counters(seq: u32, dev: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_STAT_GET), DUMP, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .u32(RDMA_NLDEV_ATTR_STAT_RES, RDMA_NLDEV_ATTR_RES_QP)
        .finish()
}

pub fn get_resources(seq: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_RES_GET), DUMP, seq).finish()
}

pub fn get_sys(seq: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(RDMA_NLDEV_CMD_SYS_GET), REQUEST, seq).finish()
}

/// RDMA_NLDEV_CMD_GET: one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Device {
    pub index: u32,
    pub name: String,
    /// Number of ports (PORT_INDEX in a device reply is the last port).
    pub ports: Option<u32>,
    pub cap_flags: Option<u64>,
    pub fw_version: Option<String>,
    pub node_guid: Option<u64>,
    pub sys_image_guid: Option<u64>,
    pub node_type: Option<u8>,
    /// "ib", "roce", "iw", "opa", "usnic".
    pub protocol: Option<String>,
}

/// RDMA_NLDEV_CMD_PORT_GET: one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Port {
    pub dev_index: u32,
    pub port: u32,
    pub state: Option<u8>,
    pub phys_state: Option<u8>,
    /// IB only (fill_port_info puts them for rdma_protocol_ib ports).
    pub cap_flags: Option<u64>,
    pub subnet_prefix: Option<u64>,
    pub lid: Option<u32>,
    pub sm_lid: Option<u32>,
    pub lmc: Option<u8>,
    pub netdev_index: Option<u32>,
    pub netdev: Option<String>,
}

/// A counter name and value (STAT_HWCOUNTER_ENTRY, RES_SUMMARY_ENTRY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    pub name: String,
    pub value: u64,
}

/// RDMA_NLDEV_CMD_STAT_GET (default counters of a port).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortStats {
    pub dev_index: u32,
    pub port: u32,
    pub counters: Vec<Named>,
}

/// One entry of RDMA_NLDEV_CMD_STAT_GET_STATUS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterStatus {
    pub name: String,
    pub index: u32,
    /// Present only for optional counters: whether it is enabled.
    pub optional_enabled: Option<bool>,
}

/// RDMA_NLDEV_CMD_RES_GET: resource counts of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    pub dev_index: u32,
    pub name: String,
    pub entries: Vec<Named>,
}

/// RDMA_NLDEV_CMD_SYS_GET.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sys {
    pub netns_shared: Option<bool>,
    pub copy_on_fork: Option<bool>,
}

/// A counter bound to QPs (STAT_GET with STAT_RES = RES_QP).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BoundCounter {
    pub dev_index: u32,
    pub port: u32,
    pub id: u32,
    /// RDMA_COUNTER_MODE_AUTO (1) or _MANUAL (2).
    pub mode: Option<u32>,
    /// In auto mode by QP type: the IB QP type (2 RC, 3 UC, 4 UD...).
    pub qp_type: Option<u8>,
    pub pid: Option<u32>,
    pub qpns: Vec<u32>,
    pub counters: Vec<Named>,
}

fn malformed(what: &'static str, detail: &str) -> WireError {
    WireError::Malformed {
        what,
        detail: detail.into(),
    }
}

fn each<'a>(
    payload: &'a [u8],
    mut f: impl FnMut(NlAttr<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for a in attrs(payload) {
        f(a?)?;
    }
    Ok(())
}

// Each attribute is read as the type iproute2's `rdma/utils.c` policy table
// (nldev_policy) gives it; one of the wrong size is counted and skipped
// (`skip`), so it reads as absent.

pub fn decode_device(payload: &[u8]) -> Result<Device, WireError> {
    let mut d = Device::default();
    let (mut index, mut name) = (None, None);
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => index = skip(a.u32()),
            RDMA_NLDEV_ATTR_DEV_NAME => name = skip(a.str()),
            RDMA_NLDEV_ATTR_PORT_INDEX => d.ports = skip(a.u32()),
            RDMA_NLDEV_ATTR_CAP_FLAGS => d.cap_flags = skip(a.u64()),
            RDMA_NLDEV_ATTR_FW_VERSION => d.fw_version = skip(a.str()).map(str::to_string),
            RDMA_NLDEV_ATTR_NODE_GUID => d.node_guid = skip(a.u64()),
            RDMA_NLDEV_ATTR_SYS_IMAGE_GUID => d.sys_image_guid = skip(a.u64()),
            RDMA_NLDEV_ATTR_DEV_NODE_TYPE => d.node_type = skip(a.u8()),
            RDMA_NLDEV_ATTR_DEV_PROTOCOL => d.protocol = skip(a.str()).map(str::to_string),
            _ => {}
        }
        Ok(())
    })?;
    let (Some(index), Some(name)) = (index, name) else {
        return Err(malformed("device reply", "no DEV_INDEX or DEV_NAME"));
    };
    d.index = index;
    d.name = name.to_string();
    Ok(d)
}

pub fn decode_port(payload: &[u8]) -> Result<Port, WireError> {
    let mut p = Port::default();
    let (mut dev, mut port) = (None, None);
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => dev = skip(a.u32()),
            RDMA_NLDEV_ATTR_PORT_INDEX => port = skip(a.u32()),
            RDMA_NLDEV_ATTR_PORT_STATE => p.state = skip(a.u8()),
            RDMA_NLDEV_ATTR_PORT_PHYS_STATE => p.phys_state = skip(a.u8()),
            RDMA_NLDEV_ATTR_CAP_FLAGS => p.cap_flags = skip(a.u64()),
            RDMA_NLDEV_ATTR_SUBNET_PREFIX => p.subnet_prefix = skip(a.u64()),
            RDMA_NLDEV_ATTR_LID => p.lid = skip(a.u32()),
            RDMA_NLDEV_ATTR_SM_LID => p.sm_lid = skip(a.u32()),
            RDMA_NLDEV_ATTR_LMC => p.lmc = skip(a.u8()),
            RDMA_NLDEV_ATTR_NDEV_INDEX => p.netdev_index = skip(a.u32()),
            RDMA_NLDEV_ATTR_NDEV_NAME => p.netdev = skip(a.str()).map(str::to_string),
            _ => {}
        }
        Ok(())
    })?;
    let (Some(dev), Some(port)) = (dev, port) else {
        return Err(malformed("port reply", "no DEV_INDEX or PORT_INDEX"));
    };
    (p.dev_index, p.port) = (dev, port);
    Ok(p)
}

/// The members of one table entry (a name and a value): an entry missing one,
/// or holding one of the wrong size, is one malformed entry, counted and skipped.
fn entry<A, B>(a: Option<Result<A, WireError>>, b: Option<Result<B, WireError>>) -> Option<(A, B)> {
    match (a, b) {
        (Some(Ok(a)), Some(Ok(b))) => Some((a, b)),
        _ => {
            count_malformed();
            None
        }
    }
}

/// A STAT_HWCOUNTERS table: name/value entries.
fn decode_hwcounters(table: NlAttr, out: &mut Vec<Named>) -> Result<(), WireError> {
    hwcounter_entries(table, |n, v| {
        out.push(Named {
            name: n.to_string(),
            value: v,
        })
    })
}

/// Each name/value entry of a STAT_HWCOUNTERS table, the name borrowed from
/// the reply (a steady poll maps it to a kept name without allocating).
fn hwcounter_entries(table: NlAttr, mut f: impl FnMut(&str, u64)) -> Result<(), WireError> {
    for e in table.nested() {
        let e = e?;
        if u32::from(e.kind) != RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY {
            continue;
        }
        let (mut name, mut value) = (None, None);
        each(e.payload, |a| {
            match u32::from(a.kind) {
                RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME => name = Some(a.str()),
                RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_VALUE => value = Some(a.u64()),
                _ => {}
            }
            Ok(())
        })?;
        if let Some((n, v)) = entry(name, value) {
            f(n, v);
        }
    }
    Ok(())
}

/// The hw counters of a STAT_GET reply, entry by entry (`decode_port_stats`
/// without the copies).
pub fn each_port_counter(payload: &[u8], mut f: impl FnMut(&str, u64)) -> Result<(), WireError> {
    each(payload, |a| {
        if u32::from(a.kind) == RDMA_NLDEV_ATTR_STAT_HWCOUNTERS {
            hwcounter_entries(a, &mut f)?;
        }
        Ok(())
    })
}

/// The resource counts of a RES_GET reply, entry by entry.
pub fn each_resource(payload: &[u8], mut f: impl FnMut(&str, u64)) -> Result<(), WireError> {
    each(payload, |a| {
        if u32::from(a.kind) != RDMA_NLDEV_ATTR_RES_SUMMARY {
            return Ok(());
        }
        for e in a.nested() {
            let e = e?;
            let (mut name, mut curr) = (None, None);
            each(e.payload, |m| {
                match u32::from(m.kind) {
                    RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME => name = Some(m.str()),
                    RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR => curr = Some(m.u64()),
                    _ => {}
                }
                Ok(())
            })?;
            if let Some((n, c)) = entry(name, curr) {
                f(n, c);
            }
        }
        Ok(())
    })
}

pub fn decode_port_stats(payload: &[u8]) -> Result<PortStats, WireError> {
    let mut s = PortStats::default();
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => s.dev_index = skip(a.u32()).unwrap_or(s.dev_index),
            RDMA_NLDEV_ATTR_PORT_INDEX => s.port = skip(a.u32()).unwrap_or(s.port),
            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS => decode_hwcounters(a, &mut s.counters)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

pub fn decode_stat_status(payload: &[u8]) -> Result<Vec<CounterStatus>, WireError> {
    let mut out = Vec::new();
    each(payload, |a| {
        if u32::from(a.kind) != RDMA_NLDEV_ATTR_STAT_HWCOUNTERS {
            return Ok(());
        }
        for e in a.nested() {
            let e = e?;
            let (mut name, mut index, mut dynamic) = (None, None, None);
            each(e.payload, |m| {
                match u32::from(m.kind) {
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME => name = Some(m.str()),
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX => index = Some(m.u32()),
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTER_DYNAMIC => dynamic = skip(m.u8()),
                    _ => {}
                }
                Ok(())
            })?;
            if let Some((n, i)) = entry(name, index) {
                out.push(CounterStatus {
                    name: n.to_string(),
                    index: i,
                    optional_enabled: dynamic.map(|d| d != 0),
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

pub fn decode_resources(payload: &[u8]) -> Result<Resources, WireError> {
    let mut r = Resources::default();
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => r.dev_index = skip(a.u32()).unwrap_or(r.dev_index),
            RDMA_NLDEV_ATTR_DEV_NAME => {
                if let Some(n) = skip(a.str()) {
                    r.name = n.to_string();
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    each_resource(payload, |n, c| {
        r.entries.push(Named {
            name: n.to_string(),
            value: c,
        })
    })?;
    Ok(r)
}

pub fn decode_sys(payload: &[u8]) -> Result<Sys, WireError> {
    let mut s = Sys::default();
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_SYS_ATTR_NETNS_MODE => s.netns_shared = skip(a.u8()).map(|v| v != 0),
            RDMA_NLDEV_SYS_ATTR_COPY_ON_FORK => s.copy_on_fork = skip(a.u8()).map(|v| v != 0),
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

/// One reply of the bound-counter dump: a device and its STAT_COUNTER table.
pub fn decode_bound_counters(payload: &[u8]) -> Result<Vec<BoundCounter>, WireError> {
    let mut dev_index = 0;
    let mut out = Vec::new();
    each(payload, |a| {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => dev_index = skip(a.u32()).unwrap_or(dev_index),
            RDMA_NLDEV_ATTR_STAT_COUNTER => {
                for entry in a.nested() {
                    let mut c = BoundCounter::default();
                    each(entry?.payload, |e| {
                        match u32::from(e.kind) {
                            RDMA_NLDEV_ATTR_PORT_INDEX => c.port = skip(e.u32()).unwrap_or(c.port),
                            RDMA_NLDEV_ATTR_STAT_COUNTER_ID => c.id = skip(e.u32()).unwrap_or(c.id),
                            RDMA_NLDEV_ATTR_STAT_MODE => c.mode = skip(e.u32()),
                            RDMA_NLDEV_ATTR_RES_TYPE => c.qp_type = skip(e.u8()),
                            RDMA_NLDEV_ATTR_RES_PID => c.pid = skip(e.u32()),
                            RDMA_NLDEV_ATTR_RES_QP => {
                                for qp in e.nested() {
                                    each(qp?.payload, |q| {
                                        if u32::from(q.kind) == RDMA_NLDEV_ATTR_RES_LQPN {
                                            c.qpns.extend(skip(q.u32()));
                                        }
                                        Ok(())
                                    })?;
                                }
                            }
                            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS => {
                                decode_hwcounters(e, &mut c.counters)?
                            }
                            _ => {}
                        }
                        Ok(())
                    })?;
                    out.push(c);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    for c in &mut out {
        c.dev_index = dev_index;
    }
    Ok(out)
}
