//! Per-object resource dumps: `RDMA_NLDEV_CMD_RES_{QP,MR,CQ,PD}_GET` (what
//! `rdma res show qp|mr|cq|pd` print), one dump per device and type. Each
//! reply message holds `DEV_INDEX`, `DEV_NAME` and one table
//! (`RES_QP` of `RES_QP_ENTRY`...); a large table spans several messages.
//! Filled by `fill_res_qp_entry`, `fill_res_mr_entry`, `fill_res_cq_entry`,
//! `fill_res_pd_entry` and `fill_res_name_pid` in drivers/infiniband/core/nldev.c.
//! Attribute sizes as iproute2's `nldev_policy` gives them; a wrong-sized
//! one is counted (`wire::skip`) and reads as absent, and an entry without
//! its number is one malformed entry, skipped.

use std::cell::Cell;

use super::{Client, nldev_type};
use crate::model::consumers::{Owner, ResObject, ResQp};
use crate::sources::netlink::wire::{
    MessageBuilder, NlAttr as Attr, WireError, attrs, count_malformed, skip,
};
use crate::sources::netlink::{NlError, NlTransport as Transport};
use crate::sys::*;

const DUMP: u16 = (NLM_F_REQUEST | NLM_F_DUMP) as u16;

/// The object kinds this module dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResKind {
    Qp,
    Mr,
    Cq,
    Pd,
}

impl ResKind {
    fn command(self) -> u32 {
        match self {
            ResKind::Qp => RDMA_NLDEV_CMD_RES_QP_GET,
            ResKind::Mr => RDMA_NLDEV_CMD_RES_MR_GET,
            ResKind::Cq => RDMA_NLDEV_CMD_RES_CQ_GET,
            ResKind::Pd => RDMA_NLDEV_CMD_RES_PD_GET,
        }
    }
    /// The table attribute and its entry attribute.
    fn table(self) -> (u32, u32) {
        match self {
            ResKind::Qp => (RDMA_NLDEV_ATTR_RES_QP, RDMA_NLDEV_ATTR_RES_QP_ENTRY),
            ResKind::Mr => (RDMA_NLDEV_ATTR_RES_MR, RDMA_NLDEV_ATTR_RES_MR_ENTRY),
            ResKind::Cq => (RDMA_NLDEV_ATTR_RES_CQ, RDMA_NLDEV_ATTR_RES_CQ_ENTRY),
            ResKind::Pd => (RDMA_NLDEV_ATTR_RES_PD, RDMA_NLDEV_ATTR_RES_PD_ENTRY),
        }
    }
    /// The attribute that numbers an object of this kind.
    fn id_attr(self) -> u32 {
        match self {
            ResKind::Qp => RDMA_NLDEV_ATTR_RES_LQPN,
            ResKind::Mr => RDMA_NLDEV_ATTR_RES_MRN,
            ResKind::Cq => RDMA_NLDEV_ATTR_RES_CQN,
            ResKind::Pd => RDMA_NLDEV_ATTR_RES_PDN,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ResKind::Qp => "RDMA_NLDEV_CMD_RES_QP_GET",
            ResKind::Mr => "RDMA_NLDEV_CMD_RES_MR_GET",
            ResKind::Cq => "RDMA_NLDEV_CMD_RES_CQ_GET",
            ResKind::Pd => "RDMA_NLDEV_CMD_RES_PD_GET",
        }
    }
}

/// The dump of one kind of object of one device (the kernel wants `DEV_INDEX`:
/// `res_get_common_dumpit` answers EINVAL without it).
pub fn get_res(seq: u32, kind: ResKind, dev: u32) -> Vec<u8> {
    MessageBuilder::new(nldev_type(kind.command()), DUMP, seq)
        .u32(RDMA_NLDEV_ATTR_DEV_INDEX, dev)
        .finish()
}

/// The owner attributes of an entry, as `fill_res_name_pid` puts them.
#[derive(Default)]
struct OwnerAttrs<'a> {
    pid: Option<u32>,
    kern: Option<&'a str>,
}

impl<'a> OwnerAttrs<'a> {
    fn take(&mut self, a: &Attr<'a>) -> bool {
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_RES_PID => self.pid = skip(a.u32()),
            RDMA_NLDEV_ATTR_RES_KERN_NAME => self.kern = skip(a.str()),
            _ => return false,
        }
        true
    }
    fn owner(self) -> Owner {
        match (self.pid, self.kern) {
            (Some(pid), _) => Owner::Pid(pid),
            (None, Some(k)) => Owner::Kernel(k.to_string()),
            (None, None) => Owner::Unknown,
        }
    }
}

/// Walks one reply: the device index and each entry of the table of `kind`.
fn each_entry<'a>(
    payload: &'a [u8],
    kind: ResKind,
    mut f: impl FnMut(u32, &'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let (table, entry) = kind.table();
    let mut dev = None;
    let mut tables = Vec::new();
    for a in attrs(payload) {
        let a = a?;
        match u32::from(a.kind) {
            RDMA_NLDEV_ATTR_DEV_INDEX => dev = skip(a.u32()),
            t if t == table => tables.push(a),
            _ => {}
        }
    }
    let Some(dev) = dev else {
        return Err(WireError::Malformed {
            what: "resource dump reply",
            detail: "no DEV_INDEX".into(),
        });
    };
    for t in tables {
        for e in t.nested() {
            let e = e?;
            if u32::from(e.kind) == entry {
                f(dev, e.payload)?;
            }
        }
    }
    Ok(())
}

/// How many more entries a dump may keep: the records of one dump are
/// bounded, whatever the workload's QP or MR count; the entries past the
/// limit are counted, not kept.
#[derive(Debug)]
pub struct Budget {
    left: Cell<usize>,
    dropped: Cell<u64>,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            left: Cell::new(limit),
            dropped: Cell::new(0),
        }
    }
    /// Entries past the limit.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
    fn take(&self) -> bool {
        match self.left.get() {
            0 => {
                self.dropped.set(self.dropped.get() + 1);
                false
            }
            n => {
                self.left.set(n - 1);
                true
            }
        }
    }
}

/// One reply of a `RES_QP_GET` dump.
pub fn decode_qps(payload: &[u8]) -> Result<Vec<ResQp>, WireError> {
    decode_qps_within(payload, &Budget::new(usize::MAX))
}

/// [`decode_qps`], keeping at most what `budget` has left.
pub fn decode_qps_within(payload: &[u8], budget: &Budget) -> Result<Vec<ResQp>, WireError> {
    let mut out = Vec::new();
    each_entry(payload, ResKind::Qp, |dev, entry| {
        let mut owner = OwnerAttrs::default();
        let (mut port, mut lqpn, mut qp_type, mut state) = (None, None, None, None);
        for a in attrs(entry) {
            let a = a?;
            if owner.take(&a) {
                continue;
            }
            match u32::from(a.kind) {
                RDMA_NLDEV_ATTR_PORT_INDEX => port = skip(a.u32()),
                RDMA_NLDEV_ATTR_RES_LQPN => lqpn = Some(a.u32()),
                RDMA_NLDEV_ATTR_RES_TYPE => qp_type = skip(a.u8()),
                RDMA_NLDEV_ATTR_RES_STATE => state = skip(a.u8()),
                _ => {}
            }
        }
        match lqpn {
            Some(Ok(_)) if !budget.take() => {}
            Some(Ok(lqpn)) => out.push(ResQp {
                dev_index: dev,
                port,
                lqpn,
                qp_type,
                state,
                owner: owner.owner(),
            }),
            _ => count_malformed(),
        }
        Ok(())
    })?;
    Ok(out)
}

/// One reply of a `RES_MR_GET`, `RES_CQ_GET` or `RES_PD_GET` dump.
pub fn decode_objects(payload: &[u8], kind: ResKind) -> Result<Vec<ResObject>, WireError> {
    decode_objects_within(payload, kind, &Budget::new(usize::MAX))
}

/// [`decode_objects`], keeping at most what `budget` has left.
pub fn decode_objects_within(
    payload: &[u8],
    kind: ResKind,
    budget: &Budget,
) -> Result<Vec<ResObject>, WireError> {
    let id_attr = kind.id_attr();
    let mut out = Vec::new();
    each_entry(payload, kind, |dev, entry| {
        let mut owner = OwnerAttrs::default();
        let (mut id, mut mrlen) = (None, None);
        let mut bad = false;
        for a in attrs(entry) {
            let a = a?;
            if owner.take(&a) {
                continue;
            }
            match u32::from(a.kind) {
                k if k == id_attr => id = skip(a.u32()),
                RDMA_NLDEV_ATTR_RES_MRLEN if kind == ResKind::Mr => match a.u64() {
                    Ok(v) => mrlen = Some(v),
                    // An MR whose length cannot be read would under-count pinned memory: skip it whole.
                    Err(_) => bad = true,
                },
                _ => {}
            }
        }
        if bad {
            count_malformed();
        } else if budget.take() {
            out.push(ResObject {
                dev_index: dev,
                id,
                mrlen,
                owner: owner.owner(),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

impl<T: Transport> Client<T> {
    pub fn res_qps(&mut self, dev: u32) -> Result<Vec<ResQp>, NlError> {
        self.res_qps_within(dev, &Budget::new(usize::MAX))
    }

    /// The QPs of one device, at most what `budget` has left.
    pub fn res_qps_within(&mut self, dev: u32, budget: &Budget) -> Result<Vec<ResQp>, NlError> {
        Ok(self
            .run(
                |s| get_res(s, ResKind::Qp, dev),
                |p| decode_qps_within(p, budget),
            )?
            .into_iter()
            .flatten()
            .collect())
    }

    /// MRs, CQs or PDs of one device.
    pub fn res_objects(&mut self, dev: u32, kind: ResKind) -> Result<Vec<ResObject>, NlError> {
        self.res_objects_within(dev, kind, &Budget::new(usize::MAX))
    }

    /// [`Client::res_objects`], at most what `budget` has left.
    pub fn res_objects_within(
        &mut self,
        dev: u32,
        kind: ResKind,
        budget: &Budget,
    ) -> Result<Vec<ResObject>, NlError> {
        Ok(self
            .run(
                |s| get_res(s, kind, dev),
                |p| decode_objects_within(p, kind, budget),
            )?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[cfg(test)]
#[path = "res_tests.rs"]
pub(crate) mod tests;
