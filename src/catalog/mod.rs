//! The one counter knowledge base: every counter the agent knows by name,
//! from every driver (IB PMA fields, `hw_counters/` of each RDMA driver,
//! `ethtool -S` statistics of each Ethernet driver), with the family it is
//! exported under, its unit, where it saturates and the findings that read
//! it. Everything not listed is still exported, under the generic families
//! (`rdma_port_hw_stat_total`, `rdma_port_pma_stat_total`,
//! `rdma_netdev_ethtool_stat`): nothing is dropped. A counter with a curated
//! family is exported there only, never also in the generic bucket.
//!
//! One file per driver; adding a driver is a file and one line in
//! [`HW_TABLES`] (RDMA `hw_counters/`) or [`ethtool::TABLES`] (`ethtool -S`).
//! This module imports only `model` (layers: model ← sources ← catalog ←
//! collectors/analysis).
//!
//! AMD/Pensando ionic (drivers/infiniband/hw/ionic, Linux 6.18) has no table:
//! its `hw_counters/` names are not in the driver but asked from the
//! firmware at probe time (`IONIC_V1_ADMIN_STATS_HDRS`, ionic_hw_stats.c),
//! and no published list of them was found; its counters stay in the
//! generic families until a captured name list exists.

use std::sync::OnceLock;

mod bnxt;
mod efa;
pub mod ethtool;
mod hfi1;
mod irdma;
mod mlx5;
mod pma;
mod rxe;
pub mod xmit_wait;

/// Where a counter was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `ports/N/counters/`: the IBTA PortCounters / PortCountersExtended set.
    Pma,
    /// `hw_counters/`: driver counters.
    Hw,
}

/// Which collector exports a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Performance,
    LinkStatus,
    Congestion,
    /// RoCE/IB transport: retransmissions, timeouts, sequence and QP errors.
    Transport,
}

#[derive(Debug)]
pub struct Known {
    pub source: Source,
    pub file: &'static str,
    pub area: Area,
    pub metric: &'static str,
    pub help: &'static str,
    /// Multiplier to the metric's base unit: IB data counters count 4-byte words.
    pub scale: u64,
    /// Raw values at which the counter stops (IBTA PortCounters fields saturate, they don't wrap).
    pub saturates_at: &'static [u64],
    /// The family for the same counter of a port elsewhere on the fabric (PMA counters only).
    pub fabric_metric: Option<&'static str>,
    /// A driver counter that carries a PMA counter's meaning on ports that have
    /// no PMA (EFA, bnxt_re): exported under that family only when the port
    /// lacks this PMA file, else it stays in the generic driver family.
    pub stands_in_for: Option<&'static str>,
    /// Fixed labels of the series (`kind`, `side`) besides `device` and `port`.
    pub labels: &'static [(&'static str, &'static str)],
    /// Whether the series carries the driver's own name as `counter`
    /// (families that gather several drivers' names for one meaning).
    pub counter_label: bool,
    /// Ids of the findings that read this counter.
    pub findings: &'static [&'static str],
}

pub(crate) const U4: u64 = 0xf;
pub(crate) const U8: u64 = 0xff;
pub(crate) const U16: u64 = 0xffff;
pub(crate) const U32: u64 = 0xffff_ffff;
pub(crate) const U64: u64 = u64::MAX;
/// 32 bits in PortCounters, 64 in PortCountersExtended: the kernel uses whichever the port has.
pub(crate) const DATA: &[u64] = &[U32, U64];

/// Saturation values for a counter the catalog doesn't know.
pub const UNKNOWN_SATURATION: &[u64] = &[U32, U64];

/// Builds a [`Known`]: `Pma` (IBTA field, with its fabric family), `Hw` (a
/// driver counter in an area's family), `Hw ... for` (a driver counter
/// standing in for a PMA one), `Hw ... transport` (one of the transport
/// families, with fixed labels and the driver's name as `counter`).
macro_rules! known {
    (Pma, $file:literal, $area:ident, $suffix:literal, $scale:literal, $sat:expr, $help:expr, [$($f:literal),*]) => {
        $crate::catalog::Known {
            source: $crate::catalog::Source::Pma,
            file: $file,
            area: $crate::catalog::Area::$area,
            metric: concat!("rdma_port_", $suffix),
            help: $help,
            scale: $scale,
            saturates_at: $sat,
            fabric_metric: Some(concat!("rdma_fabric_port_", $suffix)),
            stands_in_for: None,
            labels: &[],
            counter_label: false,
            findings: &[$($f),*],
        }
    };
    (Hw, $file:literal, $area:ident, $metric:literal, $help:expr, [$($f:literal),*]) => {
        $crate::catalog::Known {
            source: $crate::catalog::Source::Hw,
            file: $file,
            area: $crate::catalog::Area::$area,
            metric: $metric,
            help: $help,
            scale: 1,
            saturates_at: $crate::catalog::UNKNOWN_SATURATION,
            fabric_metric: None,
            stands_in_for: None,
            labels: &[],
            counter_label: false,
            findings: &[$($f),*],
        }
    };
    (Hw, $file:literal, for $pma:literal, $metric:literal, $help:expr) => {
        $crate::catalog::Known {
            source: $crate::catalog::Source::Hw,
            file: $file,
            area: $crate::catalog::Area::Performance,
            metric: $metric,
            help: $help,
            scale: 1,
            saturates_at: &[$crate::catalog::U64],
            fabric_metric: None,
            stands_in_for: Some($pma),
            labels: &[],
            counter_label: false,
            findings: &[],
        }
    };
    (Hw, $file:literal, transport $family:ident, [$($l:literal = $v:literal),*], [$($f:literal),*]) => {
        $crate::catalog::Known {
            source: $crate::catalog::Source::Hw,
            file: $file,
            area: $crate::catalog::Area::Transport,
            metric: $crate::catalog::$family.0,
            help: $crate::catalog::$family.1,
            scale: 1,
            saturates_at: $crate::catalog::UNKNOWN_SATURATION,
            fabric_metric: None,
            stands_in_for: None,
            labels: &[$(($l, $v)),*],
            counter_label: true,
            findings: &[$($f),*],
        }
    };
}
pub(crate) use known;

/// The transport families: (metric, help). One family per meaning; the
/// driver's own name is the `counter` label, what it counts is `kind`.
pub const RETRANSMISSIONS: (&str, &str) = (
    "rdma_transport_retransmissions_total",
    "Retransmission events of the RDMA transport by kind (adaptive, timeout, RNR NAK, packet), under the driver's own counter name (mlx5 roce_adp_retrans, bnxt_re to_retransmits, EFA retrans_pkts, ...).",
);
pub const TIMEOUTS: (&str, &str) = (
    "rdma_transport_timeouts_total",
    "Transport timer expiries by kind (ack: the requester's ACK timer, adaptive_retransmission, retransmission), under the driver's own counter name (mlx5 local_ack_timeout_err, EFA retrans_timeout_events, ...).",
);
pub const SEQUENCE_ERRORS: (&str, &str) = (
    "rdma_transport_sequence_errors_total",
    "Packet sequence problems by kind (out_of_sequence, nak_received, nak: a NAK the driver does not say was sent or received, implied_nak, duplicate_request), under the driver's own counter name (mlx5 out_of_sequence, bnxt_re seq_err_naks_rcvd, ...).",
);
pub const ERRORS: (&str, &str) = (
    "rdma_transport_errors_total",
    "Transport errors that end a work request, by side (requester, responder) and kind, under the driver's own counter name (mlx5 req_cqe_error, bnxt_re res_*, EFA rdma_read_wr_err, ...).",
);

/// RoCE slow restart of mlx5 (lossy RoCE acceleration). The meanings are
/// those of the commit that added the counters (torvalds/linux d7fab916374c,
/// "IB/mlx5: Expose RoCE accelerator counters", January 2020): how often slow
/// restart was used and how often a QP changed state into it. Neither counts
/// a retransmitted packet. The third, the CNPs it generated, counts packets:
/// it is in the congestion area (`rdma_congestion_slow_restart_cnps_total`).
pub const SLOW_RESTART: (&str, &str) = (
    "rdma_transport_slow_restart_events_total",
    "RoCE slow restart events by kind (used: slow restart was used; entered: a QP changed state to slow restart), under the driver's own counter name (mlx5 roce_slow_restart, roce_slow_restart_trans).",
);

/// A port's volume as the sum of driver counters that split it (irdma
/// counts IPv4 and IPv6 apart): exported under the PMA field's family on a
/// port that lacks that field, and only when every part is in the same
/// reading (a sum of absolute values is an absolute value; a sum missing a
/// part would be too small, so then there is none).
#[derive(Debug)]
pub struct Sum {
    /// The PMA counter file this sum stands in for.
    pub stands_in_for: &'static str,
    /// The parts joined by `+`: the `counter` label of the port's volume
    /// origin, written out so no cycle builds it.
    pub label: &'static str,
    pub parts: &'static [&'static str],
}

impl Sum {
    /// Panics (at compile time, in a const table) when `label` is not
    /// `parts` joined by `+`.
    pub const fn new(
        stands_in_for: &'static str,
        label: &'static str,
        parts: &'static [&'static str],
    ) -> Sum {
        assert!(
            joined(label.as_bytes(), parts),
            "label is not the parts joined by +"
        );
        Sum {
            stands_in_for,
            label,
            parts,
        }
    }
}

/// Whether `label` is `parts` joined by `+` (const: checked where tables are built).
const fn joined(label: &[u8], parts: &[&str]) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        if i > 0 {
            if at >= label.len() || label[at] != b'+' {
                return false;
            }
            at += 1;
        }
        let p = parts[i].as_bytes();
        let mut j = 0;
        while j < p.len() {
            if at >= label.len() || label[at] != p[j] {
                return false;
            }
            at += 1;
            j += 1;
        }
        i += 1;
    }
    at == label.len()
}

/// Every table of driver sums. Adding a driver is one line here.
pub const SUM_TABLES: &[&[Sum]] = &[irdma::SUMS];

/// Every driver sum, over all tables.
pub fn sums() -> impl Iterator<Item = &'static Sum> {
    SUM_TABLES.iter().flat_map(|t| t.iter())
}

/// Every table of IB counters: the PMA fields, then one per RDMA driver.
/// Adding a driver is one line here.
pub const HW_TABLES: &[&[Known]] = &[
    pma::KNOWN,
    efa::KNOWN,
    mlx5::KNOWN,
    irdma::KNOWN,
    bnxt::KNOWN,
    rxe::KNOWN,
    hfi1::KNOWN,
];

/// Every known IB counter, over all tables.
pub fn all() -> impl Iterator<Item = &'static Known> {
    HW_TABLES.iter().flat_map(|t| t.iter())
}

/// The catalog entry for a counter file, if the agent knows it.
pub fn lookup(source: Source, file: &str) -> Option<&'static Known> {
    // Fx, not SipHash: every counter of every port is looked up each cycle,
    // and the keys are our own names, not attacker-chosen.
    static INDEX: OnceLock<rustc_hash::FxHashMap<(Source, &'static str), &'static Known>> =
        OnceLock::new();
    INDEX
        .get_or_init(|| all().map(|k| ((k.source, k.file), k)).collect())
        .get(&(source, file))
        .copied()
}

/// The catalog entry a port's counter is exported under, if any: a stand-in
/// driver counter counts only on a port that lacks the PMA counter it stands
/// in for (else the same family would get the port twice).
pub fn known_on_port(
    source: Source,
    file: &str,
    pma: &[crate::model::Counter],
) -> Option<&'static Known> {
    lookup(source, file).filter(|k| {
        k.stands_in_for
            .is_none_or(|f| !pma.iter().any(|c| &*c.name == f))
    })
}

/// Values at which `file` from `source` saturates.
pub fn saturation(source: Source, file: &str) -> &'static [u64] {
    lookup(source, file).map_or(UNKNOWN_SATURATION, |k| k.saturates_at)
}

/// The counters a finding reads, from every table: findings look names up
/// here and nowhere else.
pub fn used_by(finding: &str) -> impl Iterator<Item = &'static Known> + '_ {
    all().filter(move |k| k.findings.contains(&finding))
}

/// The `hw_counters/` file names a finding reads.
pub fn hw_files_used_by(finding: &str) -> impl Iterator<Item = &'static str> + '_ {
    used_by(finding)
        .filter(|k| k.source == Source::Hw)
        .map(|k| k.file)
}

#[cfg(test)]
mod tests;
