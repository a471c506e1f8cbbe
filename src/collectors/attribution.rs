//! Who uses the fabric: QPs per port, pinned MR bytes and bound counters per
//! Slurm job, pod, systemd unit or process (the snapshot's `consumers`).
//! Cardinality is bounded: at most `attribution.max_consumers` consumers,
//! the rest summed in `rdma_attribution_overflow_*`; never a `pid` label.
//! Steps of one job and containers of one pod are summed into the job's and
//! the pod's series.

use std::collections::BTreeMap;

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration};
use crate::config::Config;
use crate::metrics::Builder;
use crate::model::consumers::{Consumer, Kind, OVERFLOW_ID};

pub const REGISTRATION: Registration = Registration {
    name: "attribution",
    reads: &[Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Attribution),
};

struct Attribution;

/// Series of each family: QPs per port, MRs, MR bytes, implicit ODP MRs,
/// bound counters per port, and the byte and packet counters of mlx5's
/// optional per-QP counters (see [`TRAFFIC`]).
const QPS: usize = 0;
const MRS: usize = 1;
const MR_BYTES: usize = 2;
const ODP_MRS: usize = 3;
const BOUND: usize = 4;
const TX_BYTES: usize = 5;
const RX_BYTES: usize = 6;
const TX_PACKETS: usize = 7;
const RX_PACKETS: usize = 8;
const NAMES: [[&str; 9]; 5] = [
    [
        "rdma_job_qps",
        "rdma_job_mrs",
        "rdma_job_mr_bytes",
        "rdma_job_odp_mrs",
        "rdma_job_bound_counter",
        "rdma_job_transmit_bytes_total",
        "rdma_job_receive_bytes_total",
        "rdma_job_transmit_packets_total",
        "rdma_job_receive_packets_total",
    ],
    [
        "rdma_pod_qps",
        "rdma_pod_mrs",
        "rdma_pod_mr_bytes",
        "rdma_pod_odp_mrs",
        "rdma_pod_bound_counter",
        "rdma_pod_transmit_bytes_total",
        "rdma_pod_receive_bytes_total",
        "rdma_pod_transmit_packets_total",
        "rdma_pod_receive_packets_total",
    ],
    [
        "rdma_unit_qps",
        "rdma_unit_mrs",
        "rdma_unit_mr_bytes",
        "rdma_unit_odp_mrs",
        "rdma_unit_bound_counter",
        "rdma_unit_transmit_bytes_total",
        "rdma_unit_receive_bytes_total",
        "rdma_unit_transmit_packets_total",
        "rdma_unit_receive_packets_total",
    ],
    [
        "rdma_process_qps",
        "rdma_process_mrs",
        "rdma_process_mr_bytes",
        "rdma_process_odp_mrs",
        "rdma_process_bound_counter",
        "rdma_process_transmit_bytes_total",
        "rdma_process_receive_bytes_total",
        "rdma_process_transmit_packets_total",
        "rdma_process_receive_packets_total",
    ],
    [
        "rdma_attribution_overflow_qps",
        "rdma_attribution_overflow_mrs",
        "rdma_attribution_overflow_mr_bytes",
        "rdma_attribution_overflow_odp_mrs",
        "rdma_attribution_overflow_bound_counter",
        "rdma_attribution_overflow_transmit_bytes_total",
        "rdma_attribution_overflow_receive_bytes_total",
        "rdma_attribution_overflow_transmit_packets_total",
        "rdma_attribution_overflow_receive_packets_total",
    ],
];
const HELP: [&str; 9] = [
    QPS_HELP,
    MRS_HELP,
    MR_HELP,
    ODP_HELP,
    BOUND_HELP,
    TX_BYTES_HELP,
    RX_BYTES_HELP,
    TX_PACKETS_HELP,
    RX_PACKETS_HELP,
];

/// mlx5's optional counters `rdma_tx_bytes`, `rdma_rx_bytes`,
/// `rdma_tx_packets`, `rdma_rx_packets` (drivers/infiniband/hw/mlx5/counters.c,
/// "RDMA/mlx5: Add optional counters for RDMA_TX/RX_packets/bytes"), bound
/// per QP since "RDMA/mlx5: Support optional-counters binding for QPs" (both
/// Linux 6.15). Present in a bound counter only when the operator turned them
/// on (`rdma statistic qp set link <dev>/<port> auto pid on optional-counters on`
/// after `rdma statistic set link <dev>/<port> optional-counters ...`).
const TRAFFIC: [(&str, usize); 4] = [
    ("rdma_tx_bytes", TX_BYTES),
    ("rdma_rx_bytes", RX_BYTES),
    ("rdma_tx_packets", TX_PACKETS),
    ("rdma_rx_packets", RX_PACKETS),
];

/// The family (a row of [`NAMES`]) and identifying labels of a consumer's series.
fn family(c: &Consumer) -> (usize, Vec<(&'static str, String)>) {
    let l = &c.labels;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    if c.id == OVERFLOW_ID {
        return (4, Vec::new());
    }
    match c.kind {
        Kind::SlurmJob => (0, vec![("job_id", v(&l.job_id))]),
        Kind::Pod => (
            1,
            vec![
                ("namespace", v(&l.namespace)),
                ("pod", v(&l.pod)),
                ("pod_uid", v(&l.pod_uid)),
            ],
        ),
        Kind::Unit => (2, vec![("unit", v(&l.unit))]),
        Kind::Process => (3, vec![("comm", v(&l.comm))]),
    }
}

const QPS_HELP: &str =
    "QPs held on the port (RDMA netlink RES_QP_GET, grouped by owning PID's cgroup).";
const MR_HELP: &str = "Bytes of memory registered for RDMA (sum of MR lengths, RES_MR_GET; implicit ODP MRs excluded): pinned unless the MR uses on-demand paging.";
const MRS_HELP: &str = "Memory regions registered (RES_MR_GET), implicit ODP ones included.";
const ODP_HELP: &str = "Implicit on-demand-paging MRs (RES_MRLEN = 2^64-1: the whole address space, faulted in on use): not pinned, not in _mr_bytes.";
const TX_BYTES_HELP: &str = "RDMA bytes sent by the consumer's QPs (mlx5 optional counter rdma_tx_bytes bound per PID, Linux >= 6.15, operator opt-in), summed over its processes: drops when a process exits.";
const RX_BYTES_HELP: &str = "RDMA bytes received by the consumer's QPs (mlx5 optional counter rdma_rx_bytes bound per PID, Linux >= 6.15, operator opt-in), summed over its processes: drops when a process exits.";
const TX_PACKETS_HELP: &str = "RDMA packets sent by the consumer's QPs (mlx5 optional counter rdma_tx_packets bound per PID, Linux >= 6.15, operator opt-in), summed over its processes.";
const RX_PACKETS_HELP: &str = "RDMA packets received by the consumer's QPs (mlx5 optional counter rdma_rx_packets bound per PID, Linux >= 6.15, operator opt-in), summed over its processes.";
const BOUND_HELP: &str = "hw counters bound to the consumer's QPs (counter auto mode by PID), summed over its processes: drops when a process exits.";

type Key = Vec<(&'static str, String)>;

fn emit(out: &mut Builder, name: &'static str, help: &'static str, sums: BTreeMap<Key, u64>) {
    for (labels, v) in sums {
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.gauge_u64(name, help, &l, v);
    }
}

impl Collector for Attribution {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        let Some(a) = cycle.attribution else {
            return Ok(());
        };
        let s = &a.status;
        if let Some(host) = s.host_pid_namespace {
            out.gauge_u64(
                "rdma_monitor_attribution_pid_namespace_host",
                "1 when the agent is in the host's PID namespace; 0 when not: RDMA netlink then leaves the resources of processes outside the agent's namespace out of its dumps, and no rdma_*_qps series counts them (run with hostPID: true).",
                &[],
                u64::from(host),
            );
        }
        if let Some(why) = &s.unavailable {
            // No dump backs this cycle: the last one's consumers are not current.
            return Err(CollectError::Failed(format!(
                "no resource dump this cycle: {why}"
            )));
        }
        // name → labels → value: one series per label set, however many consumers share it.
        let mut sums: BTreeMap<(usize, usize), BTreeMap<Key, u64>> = BTreeMap::new();
        let mut add = |family: usize, what: usize, labels: Key, v: u64| {
            let sum = sums
                .entry((family, what))
                .or_default()
                .entry(labels)
                .or_default();
            *sum = sum.saturating_add(v);
        };
        for c in a.consumers.iter() {
            let (prefix, ids) = family(c);
            for p in &c.ports {
                let mut l = vec![("device", p.device.clone()), ("port", p.port.to_string())];
                l.extend(ids.iter().cloned());
                add(prefix, QPS, l, p.qps);
            }
            add(prefix, MRS, ids.clone(), c.mrs);
            add(prefix, MR_BYTES, ids.clone(), c.mr_bytes);
            add(prefix, ODP_MRS, ids.clone(), c.odp_mrs);
            for pc in &c.counters {
                let mut port = vec![("device", pc.device.clone()), ("port", pc.port.to_string())];
                port.extend(ids.iter().cloned());
                for (name, v) in &pc.values {
                    if let Some((_, what)) = TRAFFIC.iter().find(|(n, _)| n == name) {
                        add(prefix, *what, port.clone(), *v);
                    }
                    let mut l = port.clone();
                    l.push(("counter", name.clone()));
                    add(prefix, BOUND, l, *v);
                }
            }
        }
        for ((family, what), s) in sums {
            emit(out, NAMES[family][what], HELP[what], s);
        }
        let un = &a.status.unattributed;
        let help = "QPs no consumer was named for: owner=kernel (kernel ULPs, GSI/SMI), owner=unknown (a process that exited or whose PID was reused before it was read). Resources of processes outside the agent's PID namespace are not in the kernel's dump at all: they are not counted here (see rdma_monitor_attribution_pid_namespace_host).";
        out.gauge_u64(
            "rdma_unattributed_qps",
            help,
            &[("owner", "kernel")],
            un.kernel_qps,
        );
        out.gauge_u64(
            "rdma_unattributed_qps",
            help,
            &[("owner", "unknown")],
            un.user_qps,
        );
        out.gauge_u64(
            "rdma_unattributed_mr_bytes",
            "Bytes of MRs whose process could not be read (it exited). MRs of processes outside the agent's PID namespace are not in the kernel's dump at all.",
            &[],
            un.mr_bytes,
        );
        out.gauge_u64(
            "rdma_monitor_attribution_consumers",
            "Consumers (Slurm jobs, pods, units, process names) seen in the last resource dump, before the max_consumers cut.",
            &[],
            s.consumers,
        );
        out.gauge_u64(
            "rdma_monitor_attribution_truncated_records",
            "Resource dump entries past the per-dump record limit in the last pass: counted, in no consumer.",
            &[],
            s.truncated,
        );
        out.gauge_u64(
            "rdma_monitor_attribution_overflow_consumers",
            "Consumers past attribution.max_consumers, summed into rdma_attribution_overflow_*.",
            &[],
            s.overflowed,
        );
        out.gauge_u64(
            "rdma_monitor_attribution_vanished_processes",
            "PIDs of the last dump whose /proc entry was gone or belonged to a newer process.",
            &[],
            s.vanished,
        );
        out.gauge(
            "rdma_monitor_attribution_duration_seconds",
            "Wall time of the last attribution pass (resource dumps and /proc reads).",
            &[],
            s.duration_seconds,
        );
        out.gauge_u64(
            "rdma_monitor_attribution_timestamp_seconds",
            "When the resource dumps behind the rdma_*_qps series were taken (Unix time).",
            &[],
            s.timestamp_unix_ms / 1000,
        );
        if !s.errors.is_empty() {
            return Err(CollectError::Failed(s.errors.join("; ")));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "attribution_tests.rs"]
mod tests;
