//! Self-metrics: what the agent says about itself each cycle (its
//! collectors' runs, cycles, what reading the sources cost, snapshot files,
//! counters flagged reset or saturated). Unlike the collectors of the table
//! it runs last, since it reports on their runs.

use super::Cycle;
use crate::metrics::Builder;
use crate::snapshot::{CollectorStatus, Flag};
use crate::sources::netdev::NetdevStats;

/// What the loop knows about itself that the cycle's reading does not carry.
pub struct SelfReport<'a> {
    /// This cycle's run of each collector of the table, and each one's failures since start.
    pub statuses: &'a [CollectorStatus],
    pub collector_errors: &'a [u64],
    pub cycles: u64,
    /// Wall time of the previous complete cycle.
    pub last_cycle_seconds: f64,
    pub counter_resets: u64,
    pub snapshots_written: u64,
    pub snapshot_errors: u64,
    pub snapshot_prune_failures: u64,
    pub rdma_netlink_available: bool,
    pub rdma_netlink_errors: u64,
    /// The netdev source's totals, when it runs.
    pub netdev: Option<NetdevStats>,
    pub ai: Option<&'a crate::analysis::ai::Mailbox>,
}

pub fn collect(cycle: &Cycle, r: &SelfReport, out: &mut Builder) {
    let snap = cycle.snapshot;
    for (status, errors_total) in r.statuses.iter().zip(r.collector_errors) {
        let l = [("collector", status.name)];
        out.gauge(
            "rdma_monitor_collector_duration_seconds",
            "Time the collector took in the last cycle: the cycle's span on the monotonic clock shared out by a clock read at each collector's start where the clocksource has a vDSO read, else by the CPU's cycle counter (TSC, CNTVCT) read there.",
            &l,
            status.duration_seconds,
        );
        out.gauge_u64(
            "rdma_monitor_collector_success",
            "1 when the collector's last run succeeded.",
            &l,
            status.success.into(),
        );
        out.counter(
            "rdma_monitor_collector_errors_total",
            "Collector runs that failed.",
            &l,
            *errors_total,
        );
    }
    out.gauge_u64(
        "rdma_monitor_build_info",
        "Build of the running agent (value is always 1).",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.counter(
        "rdma_monitor_cycles_total",
        "Collection cycles run.",
        &[],
        r.cycles,
    );
    out.gauge(
        "rdma_monitor_cycle_duration_seconds",
        "Wall time of the previous complete collection cycle, on the monotonic clock from its start to its end; the end is a clock read where the clocksource has a vDSO read, else told by the CPU's cycle counter at the rate it ran during the cycle's collectors.",
        &[],
        r.last_cycle_seconds,
    );
    out.gauge(
        "rdma_monitor_last_cycle_timestamp_seconds",
        "Unix time the last cycle started.",
        &[],
        snap.timestamp_unix_ms as f64 / 1000.0,
    );
    let s = snap.sources.sysfs;
    out.counter(
        "rdma_monitor_sysfs_reads_total",
        "sysfs attribute reads (a held file: one pread; otherwise open, read, close).",
        &[],
        s.file_reads,
    );
    out.counter(
        "rdma_monitor_sysfs_read_errors_total",
        "sysfs reads that failed for a reason other than the attribute being unsupported.",
        &[],
        s.read_failures,
    );
    out.counter(
        "rdma_monitor_sysfs_rescans_total",
        "Full re-discoveries of the RDMA devices in sysfs.",
        &[],
        s.rescans,
    );
    let c = snap.sources.last_cycle;
    for (source, syscalls) in [
        ("sysfs", c.sysfs_syscalls),
        ("rdma_netlink", c.rdma_netlink_syscalls),
    ] {
        out.gauge_u64(
            "rdma_monitor_cycle_syscalls",
            "System calls the last cycle made to read each source.",
            &[("source", source)],
            syscalls,
        );
    }
    let total = [
        ("sysfs", s.syscalls),
        (
            "rdma_netlink",
            snap.sources.rdma_netlink.map_or(0, |n| n.syscalls),
        ),
    ];
    for (source, syscalls) in total {
        out.counter(
            "rdma_monitor_syscalls_total",
            "System calls made to read each source since start.",
            &[("source", source)],
            syscalls,
        );
    }
    if let Some(nd) = &r.netdev {
        out.counter(
            "rdma_monitor_ethtool_ioctls_total",
            "SIOCETHTOOL ioctls made (a count query and a GSTATS per netdev a cycle; the rest at rescans).",
            &[],
            nd.ioctls,
        );
        out.counter(
            "rdma_monitor_ethtool_stat_name_rereads_total",
            "ethtool statistic names read again because the driver's statistic count changed (mlx5: channels, PTP, XDP).",
            &[],
            nd.ethtool_stat_name_rereads,
        );
        out.counter(
            "rdma_monitor_rtnetlink_round_trips_total",
            "rtnetlink link dumps (one a cycle, for every netdev).",
            &[],
            nd.netlink_round_trips,
        );
    }
    out.gauge_u64(
        "rdma_monitor_rdma_netlink_available",
        "1 when RDMA netlink is in use (0: off by configuration, or the kernel lacks it).",
        &[],
        r.rdma_netlink_available.into(),
    );
    if let Some(n) = snap.sources.rdma_netlink {
        out.counter(
            "rdma_monitor_rdma_netlink_round_trips_total",
            "RDMA netlink requests made (each a complete request/reply exchange).",
            &[],
            n.round_trips,
        );
    }
    out.counter(
        "rdma_monitor_rdma_netlink_errors_total",
        "RDMA netlink requests that failed (the value is then read from sysfs or left out).",
        &[],
        r.rdma_netlink_errors,
    );
    out.counter(
        "rdma_monitor_netlink_malformed_attributes_total",
        "Netlink attributes (or table entries) of the wrong size for their type, skipped (RDMA netlink, rtnetlink, DCB, ethtool netlink, devlink).",
        &[],
        crate::sources::netlink::wire::malformed_attributes(),
    );
    for d in &snap.devices {
        for p in &d.ports {
            let port = p.port.to_string();
            for (data, origin) in [
                ("state", p.origin.state),
                ("hw_counters", p.origin.hw_counters),
                ("counters", p.origin.counters),
            ] {
                out.gauge_u64(
                    "rdma_monitor_port_data_origin",
                    "Which interface a port's data came from this cycle (value is always 1).",
                    &[
                        ("device", &d.info.name),
                        ("port", &port),
                        ("data", data),
                        ("origin", origin.as_str()),
                    ],
                    1,
                );
            }
        }
    }
    if let Some(view) = &snap.mad {
        let m = view.stats;
        for (outcome, n) in [
            ("answered", m.answered),
            ("timeout", m.timeouts),
            ("retry", m.retries),
            ("error", m.errors),
        ] {
            out.counter(
                "rdma_monitor_mads_total",
                "MADs sent through umad, by outcome (sent = answered + timeout + error + retry).",
                &[("outcome", outcome)],
                n,
            );
        }
        out.gauge_u64(
            "rdma_monitor_umad_unavailable",
            "umad devices that could not be opened (the reason is in the snapshot and the log).",
            &[],
            view.unavailable.len() as u64,
        );
    }
    if let Some(ai) = r.ai {
        ai.export(out);
    }
    out.gauge_u64(
        "rdma_monitor_rdma_class_present",
        "1 when /sys/class/infiniband exists (the RDMA core is loaded).",
        &[],
        snap.rdma_class_present.into(),
    );
    for d in &snap.devices {
        if !d.info.unsupported.is_empty() {
            out.gauge_u64(
                "rdma_monitor_unsupported_attributes",
                "Attribute files skipped because the kernel does not provide them here (not exported as 0).",
                &[("device", &d.info.name), ("port", "")],
                d.info.unsupported.len() as u64,
            );
        }
        for p in &d.ports {
            if !p.unsupported.is_empty() {
                let port = p.port.to_string();
                out.gauge_u64(
                    "rdma_monitor_unsupported_attributes",
                    "Attribute files skipped because the kernel does not provide them here (not exported as 0).",
                    &[("device", &d.info.name), ("port", &port)],
                    p.unsupported.len() as u64,
                );
            }
        }
    }
    for (d, port, counter, flag) in snap.flagged() {
        match flag {
            Flag::Saturated => {
                let port = port.map(|p| p.to_string()).unwrap_or_default();
                out.gauge_u64(
                    "rdma_stat_saturated",
                    "1 for a counter sitting at its saturation value: it no longer counts.",
                    &[
                        ("device", &d.info.name),
                        ("port", &port),
                        ("counter", counter),
                    ],
                    1,
                );
            }
            // Counted by the loop, which keeps the total.
            Flag::Reset => {}
        }
    }
    out.counter(
        "rdma_monitor_stat_resets_total",
        "Counters seen going down between cycles (device reset or counters cleared).",
        &[],
        r.counter_resets,
    );
    out.counter(
        "rdma_monitor_snapshots_written_total",
        "JSON snapshot files written.",
        &[],
        r.snapshots_written,
    );
    out.counter(
        "rdma_monitor_snapshot_errors_total",
        "JSON snapshot files that could not be written.",
        &[],
        r.snapshot_errors,
    );
    out.counter(
        "rdma_monitor_snapshot_prune_failures_total",
        "Attempts to delete an old snapshot file past snapshot_keep that failed (the file is skipped).",
        &[],
        r.snapshot_prune_failures,
    );
}
