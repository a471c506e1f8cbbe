//! PerfMgt (class 0x04) counters of a port, as `perfquery` and `perfquery -x`
//! read them: ClassPortInfo once per LID (are 64-bit counters there?), then
//! PortCounters and, where supported, PortCountersExtended; optionally
//! PortRcvErrorDetails and PortXmitDiscardDetails. Counters come out under
//! the names sysfs gives them (`counters/symbol_error`...), so a local port
//! reads the same whichever way it was read. Nothing is ever reset.

use std::collections::HashMap;

use serde::Serialize;

use super::fields::{self, Field};
use super::layout as mad;
use super::{Engine, MadPort, Query, QueryError};

/// ClassPortInfo.CapabilityMask bits (IBTA vol. 1 §16.1.2 / libibmad).
pub const CAP_ALL_PORT_SELECT: u16 = 1 << 8;
pub const CAP_EXT_WIDTH: u16 = 1 << 9;
pub const CAP_EXT_WIDTH_NOIETF: u16 = 1 << 10;
pub const CAP_XMIT_WAIT: u16 = 1 << 12;
/// ClassPortInfo.CapabilityMask2 bit 1: PortCountersExtended carries the
/// 64-bit error counters and PortXmitWait too (libibmad
/// `IB_PM_IS_ADDL_PORT_CTRS_EXT_SUP`).
pub const CAP2_ADDL_PORT_COUNTERS_EXT: u32 = 1 << 1;

/// What a PMA's ClassPortInfo says it can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    /// CapabilityMask.
    pub mask: u16,
    /// CapabilityMask2 (27 bits).
    pub mask2: u32,
}

impl Caps {
    /// PortCountersExtended answers (64-bit traffic counters).
    pub fn extended(&self) -> bool {
        self.mask & (CAP_EXT_WIDTH | CAP_EXT_WIDTH_NOIETF) != 0 || self.additional()
    }

    /// PortCountersExtended also has the 64-bit PortXmitWait: at HDR a
    /// 32-bit PortXmitWait fills in seconds (2^32 ticks of 0.32 ns).
    pub fn additional(&self) -> bool {
        self.mask2 & CAP2_ADDL_PORT_COUNTERS_EXT != 0
    }
}

/// PortCounters fields and their sysfs names.
const FROM_PORT_COUNTERS: &[(&str, &str)] = &[
    ("SymbolErrorCounter", "symbol_error"),
    ("LinkErrorRecoveryCounter", "link_error_recovery"),
    ("LinkDownedCounter", "link_downed"),
    ("PortRcvErrors", "port_rcv_errors"),
    (
        "PortRcvRemotePhysicalErrors",
        "port_rcv_remote_physical_errors",
    ),
    ("PortRcvSwitchRelayErrors", "port_rcv_switch_relay_errors"),
    ("PortXmitDiscards", "port_xmit_discards"),
    ("PortXmitConstraintErrors", "port_xmit_constraint_errors"),
    ("PortRcvConstraintErrors", "port_rcv_constraint_errors"),
    ("LocalLinkIntegrityErrors", "local_link_integrity_errors"),
    (
        "ExcessiveBufferOverrunErrors",
        "excessive_buffer_overrun_errors",
    ),
    ("VL15Dropped", "VL15_dropped"),
    ("PortXmitWait", "port_xmit_wait"),
];
/// 32-bit traffic counters of PortCounters, used when there is no Extended.
const DATA_32: &[(&str, &str)] = &[
    ("PortXmitData", "port_xmit_data"),
    ("PortRcvData", "port_rcv_data"),
    ("PortXmitPkts", "port_xmit_packets"),
    ("PortRcvPkts", "port_rcv_packets"),
];
const FROM_EXTENDED: &[(&str, &str)] = &[
    ("PortXmitData", "port_xmit_data"),
    ("PortRcvData", "port_rcv_data"),
    ("PortXmitPkts", "port_xmit_packets"),
    ("PortRcvPkts", "port_rcv_packets"),
    ("PortUnicastXmitPkts", "unicast_xmit_packets"),
    ("PortUnicastRcvPkts", "unicast_rcv_packets"),
    ("PortMulticastXmitPkts", "multicast_xmit_packets"),
    ("PortMulticastRcvPkts", "multicast_rcv_packets"),
];
/// The additional 64-bit counters read (CapabilityMask2 bit 1).
const FROM_EXTENDED_ADDL: &[(&str, &str)] = &[("PortXmitWait", "port_xmit_wait")];
const FROM_DETAILS: &[(&str, &[Field], &str)] = &[
    (
        "PortLocalPhysicalErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_local_physical_errors",
    ),
    (
        "PortMalformedPacketErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_malformed_packet_errors",
    ),
    (
        "PortBufferOverrunErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_buffer_overrun_errors",
    ),
    (
        "PortDLIDMappingErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_dlid_mapping_errors",
    ),
    (
        "PortVLMappingErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_vl_mapping_errors",
    ),
    (
        "PortLoopingErrors",
        fields::PORT_RCV_ERROR_DETAILS,
        "port_looping_errors",
    ),
    (
        "PortInactiveDiscards",
        fields::PORT_XMIT_DISCARD_DETAILS,
        "port_inactive_discards",
    ),
    (
        "PortNeighborMTUDiscards",
        fields::PORT_XMIT_DISCARD_DETAILS,
        "port_neighbor_mtu_discards",
    ),
    (
        "PortSwLifetimeLimitDiscards",
        fields::PORT_XMIT_DISCARD_DETAILS,
        "port_sw_lifetime_limit_discards",
    ),
    (
        "PortSwHOQLifetimeLimitDiscards",
        fields::PORT_XMIT_DISCARD_DETAILS,
        "port_sw_hoq_lifetime_limit_discards",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Target {
    pub lid: u16,
    pub port: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortCounters {
    pub lid: u16,
    pub port: u8,
    /// ClassPortInfo.CapabilityMask of the port's PMA.
    pub capability_mask: u16,
    /// The traffic counters are 64-bit (PortCountersExtended).
    pub extended: bool,
    /// (sysfs-style name, value), in a fixed order.
    #[serde(serialize_with = "as_map")]
    pub counters: Vec<(&'static str, u64)>,
    /// Why the detail attributes are missing, when asked for and not answered.
    pub details_error: Option<String>,
    /// When the counters were read: rates over MAD readings, which come at
    /// the worker's pace, not the agent's cycle.
    #[serde(skip)]
    pub read_at: Option<std::time::Instant>,
}

fn as_map<S: serde::Serializer>(v: &[(&'static str, u64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, v)| (k, v)))
}

fn field(table: &'static [Field], name: &str) -> &'static Field {
    fields::by_name(table, name).expect("field names are fixed in this module")
}

fn perf_query(attr: u16, port: u8, lid: u16) -> Query {
    let mut data = [0u8; 4];
    fields::set(&mut data, &fields::PORT_COUNTERS[0], u64::from(port)); // PortSelect at bit 8
    Query {
        mad: mad::perf_get(0, attr, &data),
        lid,
    }
}

/// Reads the counters of `targets`. `caps` caches ClassPortInfo per LID
/// across calls (a PMA's capabilities don't change while it is up).
pub fn read<P: MadPort>(
    engine: &mut Engine<P>,
    targets: &[Target],
    details: bool,
    caps: &mut HashMap<u16, Caps>,
) -> Vec<Result<PortCounters, QueryError>> {
    let mut lids: Vec<u16> = targets
        .iter()
        .map(|t| t.lid)
        .filter(|l| !caps.contains_key(l))
        .collect();
    lids.sort_unstable();
    lids.dedup();
    let cpi: Vec<Query> = lids
        .iter()
        .map(|&lid| Query {
            mad: mad::perf_get(0, mad::ATTR_CLASS_PORT_INFO, &[]),
            lid,
        })
        .collect();
    let mut cap_errors: HashMap<u16, QueryError> = HashMap::new();
    for (lid, answer) in lids.iter().zip(engine.run(&cpi)) {
        match answer {
            Ok(r) => {
                let get = |name| fields::get(&r.data, field(fields::CLASS_PORT_INFO, name));
                let mask = get("CapabilityMask").unwrap_or(0) as u16;
                let mask2 = get("CapabilityMask2").unwrap_or(0) as u32;
                caps.insert(*lid, Caps { mask, mask2 });
            }
            Err(e) => {
                cap_errors.insert(*lid, e);
            }
        }
    }

    // Per target: PortCounters, maybe Extended, maybe the two detail attributes.
    let mut queries = Vec::new();
    let mut plan: Vec<(usize, u16)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let Some(&cap) = caps.get(&t.lid) else {
            continue;
        };
        let mut attrs = vec![mad::ATTR_PORT_COUNTERS];
        if cap.extended() {
            attrs.push(mad::ATTR_PORT_COUNTERS_EXT);
        }
        if details {
            attrs.push(mad::ATTR_PORT_RCV_ERROR_DETAILS);
            attrs.push(mad::ATTR_PORT_XMIT_DISCARD_DETAILS);
        }
        for a in attrs {
            queries.push(perf_query(a, t.port, t.lid));
            plan.push((i, a));
        }
    }
    let answers = engine.run(&queries);
    let read_at = Some(std::time::Instant::now());
    let mut out: Vec<Result<PortCounters, QueryError>> = targets
        .iter()
        .map(|t| match cap_errors.get(&t.lid) {
            Some(e) => Err(e.clone()),
            None => Ok(PortCounters {
                lid: t.lid,
                port: t.port,
                capability_mask: caps.get(&t.lid).map_or(0, |c| c.mask),
                extended: false,
                counters: Vec::new(),
                details_error: None,
                read_at,
            }),
        })
        .collect();
    let mut ext_data: HashMap<usize, [u8; 192]> = HashMap::new();
    for ((i, attr), answer) in plan.into_iter().zip(answers) {
        let Ok(pc) = &mut out[i] else { continue };
        match (attr, answer) {
            (mad::ATTR_PORT_COUNTERS, Ok(r)) => {
                for (f, name) in FROM_PORT_COUNTERS.iter().chain(DATA_32) {
                    if let Some(v) = fields::get(&r.data, field(fields::PORT_COUNTERS, f)) {
                        pc.counters.push((name, v));
                    }
                }
            }
            (mad::ATTR_PORT_COUNTERS_EXT, Ok(r)) => {
                ext_data.insert(i, r.data);
            }
            (mad::ATTR_PORT_RCV_ERROR_DETAILS | mad::ATTR_PORT_XMIT_DISCARD_DETAILS, Ok(r)) => {
                let table = if attr == mad::ATTR_PORT_RCV_ERROR_DETAILS {
                    fields::PORT_RCV_ERROR_DETAILS
                } else {
                    fields::PORT_XMIT_DISCARD_DETAILS
                };
                for (f, t, name) in FROM_DETAILS
                    .iter()
                    .filter(|(_, t, _)| std::ptr::eq(*t, table))
                {
                    if let Some(v) = fields::get(&r.data, field(t, f)) {
                        pc.counters.push((name, v));
                    }
                }
            }
            (mad::ATTR_PORT_COUNTERS, Err(e)) => out[i] = Err(e),
            (mad::ATTR_PORT_COUNTERS_EXT, Err(_)) => {} // keep the 32-bit ones
            (_, Err(e)) => pc.details_error = Some(e.to_string()),
            (_, Ok(_)) => {}
        }
    }
    for (i, data) in ext_data {
        let Ok(pc) = &mut out[i] else { continue };
        pc.extended = true;
        let addl = caps.get(&targets[i].lid).is_some_and(Caps::additional);
        let wide: &[(&str, &str)] = if addl { FROM_EXTENDED_ADDL } else { &[] };
        // 64-bit values replace the 32-bit ones of the same name.
        pc.counters
            .retain(|(n, _)| !FROM_EXTENDED.iter().chain(wide).any(|(_, e)| e == n));
        for (f, name) in FROM_EXTENDED.iter().chain(wide) {
            if let Some(v) = fields::get(&data, field(fields::PORT_COUNTERS_EXT, f)) {
                pc.counters.push((name, v));
            }
        }
    }
    out
}
