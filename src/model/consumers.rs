//! Who uses the fabric: the RDMA resources of one cycle (QPs, MRs, CQs, PDs
//! from the `RES_*_GET` dumps) grouped by the consumer that owns them — a
//! Slurm job step, a Kubernetes pod, a systemd unit or a process — with the
//! bound QP counters summed per consumer where the kernel keeps them.
//!
//! The types that leave the decoders live here (sources fill them), and so
//! does the grouping: it is pure, so the tests and the benchmark run it on
//! recorded dumps and replayed `/proc` trees.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Who owns a resource, as RDMA netlink says (`fill_res_name_pid` in
/// drivers/infiniband/core/nldev.c): a user resource carries `RES_PID` (in
/// the caller's PID namespace), a kernel one `RES_KERN_NAME`. A resource whose
/// owner the caller's PID namespace cannot see is left out of the dump by the
/// kernel (`rdma_is_visible_in_pid_ns`); `Unknown` is an entry with neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Pid(u32),
    Kernel(String),
    Unknown,
}

/// One entry of `RDMA_NLDEV_CMD_RES_QP_GET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResQp {
    pub dev_index: u32,
    /// `PORT_INDEX`: absent for a QP not yet bound to a port (RESET state).
    pub port: Option<u32>,
    pub lqpn: u32,
    /// `RES_TYPE`: the kernel's `enum ib_qp_type`.
    pub qp_type: Option<u8>,
    /// `RES_STATE`: the kernel's `enum ib_qp_state`.
    pub state: Option<u8>,
    pub owner: Owner,
}

/// One entry of `RES_MR_GET`, `RES_CQ_GET` or `RES_PD_GET`: what attribution
/// needs (the owner, and for an MR its length: memory pinned for RDMA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResObject {
    pub dev_index: u32,
    /// `RES_MRN`, `RES_CQN` or `RES_PDN`.
    pub id: Option<u32>,
    /// `RES_MRLEN` (MRs only).
    pub mrlen: Option<u64>,
    pub owner: Owner,
}

/// The per-object resources of the node in one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResDump {
    /// `dev_index` → device name.
    pub devices: BTreeMap<u32, String>,
    pub qps: Vec<ResQp>,
    pub mrs: Vec<ResObject>,
    pub cqs: Vec<ResObject>,
    pub pds: Vec<ResObject>,
}

/// A counter bound to the QPs of one process (auto mode by PID), as
/// `RDMA_NLDEV_CMD_STAT_GET` with `STAT_RES = RES_QP` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidCounter {
    pub dev_index: u32,
    pub port: u32,
    pub pid: u32,
    pub counters: Vec<(String, u64)>,
}

/// What a process is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SlurmJob,
    Pod,
    Unit,
    Process,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SlurmJob => "slurm_job",
            Kind::Pod => "pod",
            Kind::Unit => "unit",
            Kind::Process => "process",
        }
    }
}

/// The labels of a consumer; each is absent when the node does not show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Labels {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}

/// A consumer as resolved from one process: its kind, its stable id (the
/// job id and step, the pod uid, the unit, the process name) and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub kind: Kind,
    pub id: String,
    pub labels: Labels,
}

/// QPs of one consumer on one port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortUse {
    pub device: String,
    pub port: u32,
    pub qps: u64,
    /// By type name (`RC`, `UD`, `GSI`...; `type_<n>` for one this agent does not know).
    pub qps_by_type: BTreeMap<String, u64>,
    /// By state name (`RTS`, `ERR`...).
    pub qps_by_state: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    pub comm: Option<String>,
}

/// One entry of the snapshot's `consumers` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumer {
    pub kind: Kind,
    pub id: String,
    pub labels: Labels,
    pub ports: Vec<PortUse>,
    pub mrs: u64,
    /// Sum of `mrlen` of its MRs but the implicit ODP ones: memory registered
    /// for RDMA (pinned, unless the MR uses on-demand paging, which the dump
    /// does not say).
    pub mr_bytes: u64,
    /// Implicit on-demand-paging MRs (`mrlen` = u64::MAX: the whole address
    /// space, faulted in on use, not pinned): counted in `mrs`, not in `mr_bytes`.
    pub odp_mrs: u64,
    pub cqs: u64,
    pub pds: u64,
    /// Bound QP counters summed over its processes, by device/port then
    /// counter name; empty when the kernel keeps none for it (no auto mode
    /// by PID, or a driver without counter binding).
    pub counters: Vec<PortCounters>,
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub device: String,
    pub port: u32,
    pub values: BTreeMap<String, u64>,
}

impl Consumer {
    pub fn qps(&self) -> u64 {
        self.ports.iter().map(|p| p.qps).sum()
    }
}

/// Resources no consumer could be named for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unattributed {
    /// Kernel QPs (GSI/SMI and kernel ULPs such as IPoIB, NVMe-oF, SMB Direct).
    pub kernel_qps: u64,
    /// User QPs whose process could not be read: it exited between the dump
    /// and the `/proc` read, or `/proc` is not the agent's namespace's.
    pub user_qps: u64,
    pub mrs: u64,
    /// Implicit ODP MRs excluded (see [`Consumer::odp_mrs`]).
    pub mr_bytes: u64,
    pub odp_mrs: u64,
}

/// How the last attribution went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttributionStatus {
    /// Unix ms of the dumps the `consumers` section shows.
    pub timestamp_unix_ms: u64,
    pub unattributed: Unattributed,
    /// Consumers as exported (a Slurm job, a pod, a unit, a process name:
    /// steps and containers are one), before the `max_consumers` cut.
    pub consumers: u64,
    /// Of those, folded into the overflow bucket (beyond `attribution.max_consumers`).
    pub overflowed: u64,
    /// Processes whose `/proc/<pid>` vanished between the dump and the read.
    pub vanished: u64,
    /// Dump entries past the per-dump record limit: counted, not attributed.
    pub truncated: u64,
    /// Whether the agent sees the host's PID namespace. `false`: the kernel
    /// left the resources of processes outside the agent's namespace out of
    /// the dumps (they are in no number here); absent: could not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_pid_namespace: Option<bool>,
    /// Why no dump backs this status (the netlink reading failed this
    /// cycle): `consumers` is empty rather than the last dump's, stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Dump requests that failed, with the reason.
    pub errors: Vec<String>,
    /// Wall time of the dumps and the `/proc` reads.
    pub duration_seconds: f64,
    /// Netlink requests made for it.
    pub round_trips: u64,
    pub pid_counters: bool,
}

/// The `consumers` section of a snapshot and how it was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribution {
    /// Shared with the snapshots that show it until the next dump.
    pub consumers: std::sync::Arc<Vec<Consumer>>,
    pub status: AttributionStatus,
}

/// The overflow bucket's id: consumers past `max_consumers`, summed.
pub const OVERFLOW_ID: &str = "_other";

/// Names of `enum ib_qp_type` (include/rdma/ib_verbs.h; the names iproute2
/// `rdma/res-qp.c` prints).
pub fn qp_type_name(t: u8) -> std::borrow::Cow<'static, str> {
    let name = match t {
        0 => "SMI",
        1 => "GSI",
        2 => "RC",
        3 => "UC",
        4 => "UD",
        5 => "RAW_IPV6",
        6 => "RAW_ETHERTYPE",
        8 => "RAW_PACKET",
        9 => "XRC_INI",
        10 => "XRC_TGT",
        0xff => "DRIVER",
        n => return format!("type_{n}").into(),
    };
    name.into()
}

/// Names of `enum ib_qp_state` (include/rdma/ib_verbs.h).
pub fn qp_state_name(s: u8) -> std::borrow::Cow<'static, str> {
    let name = match s {
        0 => "RESET",
        1 => "INIT",
        2 => "RTR",
        3 => "RTS",
        4 => "SQD",
        5 => "SQE",
        6 => "ERR",
        n => return format!("state_{n}").into(),
    };
    name.into()
}

/// A resolved process: its consumer and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub identity: Identity,
    pub comm: Option<String>,
}

/// An implicit on-demand-paging MR: registered with length `SIZE_MAX` from
/// address 0 (`ibv_reg_mr(pd, NULL, SIZE_MAX, IBV_ACCESS_ON_DEMAND)`, mlx5),
/// and so reported with `RES_MRLEN` = u64::MAX.
pub const IMPLICIT_ODP_MRLEN: u64 = u64::MAX;

/// The consumer a series is exported for: a Slurm job (its steps summed), a
/// pod (its containers summed), a unit, a process name. `max_consumers`
/// counts these, so a kept job is never cut in part.
pub fn export_key(id: &Identity) -> (Kind, &str) {
    let l = &id.labels;
    let key = match id.kind {
        Kind::SlurmJob => l.job_id.as_deref(),
        Kind::Pod => l.pod_uid.as_deref(),
        Kind::Unit => l.unit.as_deref(),
        Kind::Process => l.comm.as_deref(),
    };
    (id.kind, key.unwrap_or(&id.id))
}

/// What [`group`] returns.
#[derive(Debug, Default)]
pub struct Grouped {
    pub consumers: Vec<Consumer>,
    pub unattributed: Unattributed,
    /// Exported consumers (see [`export_key`]) before the cut.
    pub exported: u64,
    /// Exported consumers folded into the overflow bucket.
    pub overflowed: u64,
}

/// Groups one cycle's resources by consumer. `resolve` names the consumer
/// of a PID (`None`: the process could not be read). The `max_consumers`
/// largest exported consumers ([`export_key`]) by QPs (then MR bytes, then
/// key) are kept with all their steps or containers; the rest are summed into
/// one `_other` consumer, counted in `overflowed`.
pub fn group(
    dump: &ResDump,
    pid_counters: &[PidCounter],
    max_consumers: usize,
    mut resolve: impl FnMut(u32) -> Option<ProcessInfo>,
) -> Grouped {
    let mut g = Grouper {
        resolved: HashMap::new(),
        by_id: HashMap::new(),
        accs: Vec::new(),
        resolve: &mut resolve,
    };
    let mut un = Unattributed::default();
    let dev_name = |i: u32| {
        dump.devices
            .get(&i)
            .cloned()
            .unwrap_or_else(|| format!("dev{i}"))
    };
    for qp in &dump.qps {
        match g.acc(&qp.owner) {
            Some(acc) => {
                let p = acc
                    .ports
                    .entry((qp.dev_index, qp.port.unwrap_or(0)))
                    .or_default();
                p.qps += 1;
                let t = qp.qp_type.map_or("unknown".into(), qp_type_name);
                *p.qps_by_type.entry(t.into_owned()).or_default() += 1;
                let s = qp.state.map_or("unknown".into(), qp_state_name);
                *p.qps_by_state.entry(s.into_owned()).or_default() += 1;
            }
            None if matches!(qp.owner, Owner::Kernel(_)) => un.kernel_qps += 1,
            None => un.user_qps += 1,
        }
    }
    for mr in &dump.mrs {
        let (mrs, bytes, odp) = match g.acc(&mr.owner) {
            Some(acc) => (&mut acc.mrs, &mut acc.mr_bytes, &mut acc.odp_mrs),
            None => (&mut un.mrs, &mut un.mr_bytes, &mut un.odp_mrs),
        };
        *mrs += 1;
        match mr.mrlen {
            Some(IMPLICIT_ODP_MRLEN) => *odp += 1,
            // Saturating still: explicit lengths near 2^64 are hostile, not real.
            Some(len) => *bytes = bytes.saturating_add(len),
            None => {}
        }
    }
    for cq in &dump.cqs {
        if let Some(acc) = g.acc(&cq.owner) {
            acc.cqs += 1;
        }
    }
    for pd in &dump.pds {
        if let Some(acc) = g.acc(&pd.owner) {
            acc.pds += 1;
        }
    }
    for c in pid_counters {
        if let Some(acc) = g.acc(&Owner::Pid(c.pid)) {
            let values = acc.counters.entry((c.dev_index, c.port)).or_default();
            for (name, v) in &c.counters {
                *values.entry(name.clone()).or_default() += v;
            }
        }
    }
    let mut all = g.accs;
    // Totals per exported consumer: the cut ranks these, not steps or containers.
    let mut totals: HashMap<(Kind, String), (u64, u64)> = HashMap::new();
    for (id, a) in &all {
        let (k, key) = export_key(id);
        let t = totals.entry((k, key.to_string())).or_default();
        t.0 += a.qps();
        t.1 = t.1.saturating_add(a.mr_bytes);
    }
    let exported = totals.len() as u64;
    let mut ranked: Vec<((Kind, String), (u64, u64))> = totals.into_iter().collect();
    ranked.sort_by(|(ka, (qa, ba)), (kb, (qb, bb))| qb.cmp(qa).then(bb.cmp(ba)).then(ka.cmp(kb)));
    let rank: HashMap<(Kind, String), usize> = ranked
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k, i))
        .collect();
    let rank_of = |id: &Identity| {
        let (k, key) = export_key(id);
        rank[&(k, key.to_string())]
    };
    // Largest exported consumer first, its steps or containers together.
    all.sort_by_cached_key(|(id, a)| (rank_of(id), std::cmp::Reverse(a.qps()), id.clone()));
    let mut overflowed = 0;
    if exported > max_consumers as u64 {
        let cut = all.partition_point(|(id, _)| rank_of(id) < max_consumers);
        let rest = all.split_off(cut);
        overflowed = exported - max_consumers as u64;
        let mut other = Acc::default();
        for (_, a) in rest {
            other.absorb(a);
        }
        all.push((
            Identity {
                kind: Kind::Process,
                id: OVERFLOW_ID.into(),
                labels: Labels::default(),
            },
            other,
        ));
    }
    let consumers = all
        .into_iter()
        .map(|(id, a)| a.into_consumer(id, &dev_name))
        .collect();
    Grouped {
        consumers,
        unattributed: un,
        exported,
        overflowed,
    }
}

/// Each PID is resolved once per cycle, and each resource costs a hash lookup by PID.
struct Grouper<'r> {
    /// PID → index in `accs` (`None`: unreadable).
    resolved: HashMap<u32, Option<usize>>,
    by_id: HashMap<Identity, usize>,
    accs: Vec<(Identity, Acc)>,
    resolve: &'r mut dyn FnMut(u32) -> Option<ProcessInfo>,
}

impl Grouper<'_> {
    /// The accumulator of a user resource's consumer; `None` for a kernel
    /// resource or a process that could not be read (counted unattributed).
    fn acc(&mut self, owner: &Owner) -> Option<&mut Acc> {
        let Owner::Pid(pid) = owner else { return None };
        let at = match self.resolved.get(pid) {
            Some(at) => (*at)?,
            None => {
                let at = (self.resolve)(*pid).map(|info| {
                    let at = *self.by_id.entry(info.identity.clone()).or_insert_with(|| {
                        self.accs.push((info.identity, Acc::default()));
                        self.accs.len() - 1
                    });
                    self.accs[at].1.pids.insert(*pid, info.comm);
                    at
                });
                self.resolved.insert(*pid, at);
                at?
            }
        };
        Some(&mut self.accs[at].1)
    }
}

#[derive(Default)]
struct Acc {
    ports: BTreeMap<(u32, u32), PortAcc>,
    mrs: u64,
    mr_bytes: u64,
    odp_mrs: u64,
    cqs: u64,
    pds: u64,
    counters: BTreeMap<(u32, u32), BTreeMap<String, u64>>,
    pids: BTreeMap<u32, Option<String>>,
}

#[derive(Default)]
struct PortAcc {
    qps: u64,
    qps_by_type: BTreeMap<String, u64>,
    qps_by_state: BTreeMap<String, u64>,
}

fn add_all(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

impl Acc {
    fn qps(&self) -> u64 {
        self.ports.values().map(|p| p.qps).sum()
    }

    fn absorb(&mut self, o: Acc) {
        for (k, p) in o.ports {
            let mine = self.ports.entry(k).or_default();
            mine.qps += p.qps;
            add_all(&mut mine.qps_by_type, p.qps_by_type);
            add_all(&mut mine.qps_by_state, p.qps_by_state);
        }
        self.mrs += o.mrs;
        self.mr_bytes = self.mr_bytes.saturating_add(o.mr_bytes);
        self.odp_mrs += o.odp_mrs;
        self.cqs += o.cqs;
        self.pds += o.pds;
        for (k, c) in o.counters {
            add_all(self.counters.entry(k).or_default(), c);
        }
        self.pids.extend(o.pids);
    }

    fn into_consumer(self, id: Identity, dev_name: &impl Fn(u32) -> String) -> Consumer {
        Consumer {
            kind: id.kind,
            id: id.id,
            labels: id.labels,
            ports: self
                .ports
                .into_iter()
                .map(|((dev, port), p)| PortUse {
                    device: dev_name(dev),
                    port,
                    qps: p.qps,
                    qps_by_type: p.qps_by_type,
                    qps_by_state: p.qps_by_state,
                })
                .collect(),
            mrs: self.mrs,
            mr_bytes: self.mr_bytes,
            odp_mrs: self.odp_mrs,
            cqs: self.cqs,
            pds: self.pds,
            counters: self
                .counters
                .into_iter()
                .map(|((dev, port), values)| PortCounters {
                    device: dev_name(dev),
                    port,
                    values,
                })
                .collect(),
            processes: self
                .pids
                .into_iter()
                .map(|(pid, comm)| Process { pid, comm })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
