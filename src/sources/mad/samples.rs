//! PortSamplesControl (PerfMgt attribute 0x0010, IBTA vol. 1 §16.1.3.2;
//! `struct ib_pma_portsamplescontrol` in include/rdma/ib_pma.h; what
//! `perfquery -c` prints). The agent reads one field of it: `Tick`, the
//! sampling tick in which PortXmitWait counts — (Tick + 1) symbol times,
//! where a symbol time is the time one byte takes on one lane (4 ns at SDR;
//! NVIDIA ibdiagnet manual, "Congestion Assessment on InfiniBand Links").
//! Nothing is ever written: the agent sends Get only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fields::{self, Field};
use super::layout as mad;
use super::{Engine, MadPort, Query, QueryError};

pub const ATTR_PORT_SAMPLES_CONTROL: u16 = 0x0010;

const fn f(name: &'static str, bit: usize, width: usize) -> Field {
    Field { name, bit, width }
}

/// The fixed part of PortSamplesControl, as libibmad's fields.c and
/// ib_pma.h lay it out (CounterSelect0..14 and the masks after them are
/// not read).
pub const PORT_SAMPLES_CONTROL: &[Field] = &[
    f("OpCode", 0, 8),
    f("PortSelect", 8, 8),
    f("Tick", 16, 8),
    f("CounterWidth", 29, 3),
    f("SampleMechanisms", 80, 8),
    f("SampleStatus", 94, 2),
    f("OptionMask", 96, 64),
    f("SampleStart", 224, 32),
    f("SampleInterval", 256, 32),
    f("Tag", 288, 16),
];

/// What the agent keeps of a PortSamplesControl reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SamplesControl {
    pub port_select: u8,
    /// PortXmitWait counts in units of (tick + 1) symbol times (or, on some
    /// ASICs, of tick + 1 byte times of the whole port: see `catalog::xmit_wait`).
    pub tick: u8,
    pub counter_width: u8,
    pub sample_status: u8,
}

fn get(data: &[u8], name: &str) -> Option<u64> {
    fields::get(data, fields::by_name(PORT_SAMPLES_CONTROL, name)?)
}

/// Decodes the attribute data of a reply (192 bytes; shorter is `None`).
pub fn decode(data: &[u8]) -> Option<SamplesControl> {
    if data.len() < 40 {
        return None;
    }
    Some(SamplesControl {
        port_select: get(data, "PortSelect")? as u8,
        tick: get(data, "Tick")? as u8,
        counter_width: get(data, "CounterWidth")? as u8,
        sample_status: get(data, "SampleStatus")? as u8,
    })
}

/// A Get(PortSamplesControl) for `port` of the PMA at `lid`.
pub fn query(lid: u16, port: u8) -> Query {
    let mut data = [0u8; 2];
    fields::set(
        &mut data,
        fields::by_name(PORT_SAMPLES_CONTROL, "PortSelect").expect("fixed table"),
        u64::from(port),
    );
    Query {
        mad: mad::perf_get(0, ATTR_PORT_SAMPLES_CONTROL, &data),
        lid,
    }
}

/// What is known of a PMA's Tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The PMA answered: its Tick, or None when it refused the attribute
    /// (MAD status "unsupported"). Never asked again.
    Answered(Option<u8>),
    /// No answer (timeout, I/O): asked again once `retry` has passed.
    Unanswered(Instant),
}

/// The Tick of each target's PMA. A PMA is asked once per LID: its answer,
/// or its refusal, is kept in `cache` for as long as the caller keeps it (a
/// PMA costs one MAD, not one a cycle); a PMA that did not answer at all
/// (a dropped MAD, ibsim) is asked again after `retry`.
pub fn ticks<P: MadPort>(
    engine: &mut Engine<P>,
    targets: &[(u16, u8)],
    cache: &mut HashMap<u16, Asked>,
    retry: Duration,
) -> Vec<Option<u8>> {
    let mut ask: Vec<(u16, u8)> = Vec::new();
    for &(lid, port) in targets {
        let due = match cache.get(&lid) {
            None => true,
            Some(Asked::Answered(_)) => false,
            Some(Asked::Unanswered(at)) => at.elapsed() >= retry,
        };
        if due && !ask.iter().any(|(l, _)| *l == lid) {
            ask.push((lid, port));
        }
    }
    let queries: Vec<Query> = ask.iter().map(|&(l, p)| query(l, p)).collect();
    for ((lid, _), answer) in ask.iter().zip(engine.run(&queries)) {
        let asked = match answer {
            Ok(r) if r.attr_id == ATTR_PORT_SAMPLES_CONTROL => {
                Asked::Answered(decode(&r.data).map(|s| s.tick))
            }
            Ok(_) | Err(QueryError::Mad(_)) => Asked::Answered(None),
            Err(_) => Asked::Unanswered(Instant::now()),
        };
        cache.insert(*lid, asked);
    }
    targets
        .iter()
        .map(|(lid, _)| match cache.get(lid) {
            Some(Asked::Answered(t)) => *t,
            _ => None,
        })
        .collect()
}
