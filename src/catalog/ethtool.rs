//! `ethtool -S` statistics known by name: the family each one is exported
//! under, its labels and unit. The per-driver tables sit in the driver files
//! (`mlx5.rs`, `bnxt.rs`, `irdma.rs` for ice) and in [`GENERIC`]; adding a
//! driver is one line in [`TABLES`]. A name may hold `{N}` once: a decimal
//! index (priority, lane, CoS queue) that becomes the stat's `index` label.

use std::sync::OnceLock;

/// A curated family of netdev statistics. Every series has `netdev`.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    pub metric: &'static str,
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Count,
    /// Microseconds, exported in seconds.
    Microseconds,
    Bits,
    Bytes,
}

#[derive(Debug)]
pub struct Stat {
    pub name: &'static str,
    /// `None`: known (unit, findings), but the kernel exports the same
    /// counter through another API that already has a family (`same_as`),
    /// so this name stays in the generic `rdma_netdev_ethtool_stat`.
    pub family: Option<&'static Family>,
    /// Fixed labels (`direction`, `kind`, `event`) besides `netdev`.
    pub labels: &'static [(&'static str, &'static str)],
    /// The label `{N}` of the name becomes (`priority`, `lane`, `cos`).
    pub index: Option<&'static str>,
    pub unit: Unit,
    /// Whether the series carries the driver's name as `stat`.
    pub stat_label: bool,
    /// The family that has this counter from another kernel API.
    pub same_as: Option<&'static str>,
    /// The PMA counter whose port family this feeds when the port has no PMA.
    pub stands_in_for: Option<&'static str>,
    pub findings: &'static [&'static str],
}

impl Stat {
    pub const fn new(name: &'static str, family: &'static Family) -> Stat {
        Stat {
            name,
            family: Some(family),
            labels: &[],
            index: None,
            unit: Unit::Count,
            stat_label: false,
            same_as: None,
            stands_in_for: None,
            findings: &[],
        }
    }
    /// A known name without a family of its own (see [`Stat::family`]).
    pub const fn known(name: &'static str, unit: Unit) -> Stat {
        Stat {
            name,
            family: None,
            labels: &[],
            index: None,
            unit,
            stat_label: false,
            same_as: None,
            stands_in_for: None,
            findings: &[],
        }
    }
    pub const fn labels(mut self, labels: &'static [(&'static str, &'static str)]) -> Stat {
        self.labels = labels;
        self
    }
    pub const fn index(mut self, label: &'static str) -> Stat {
        self.index = Some(label);
        self
    }
    pub const fn unit(mut self, unit: Unit) -> Stat {
        self.unit = unit;
        self
    }
    pub const fn stat_label(mut self) -> Stat {
        self.stat_label = true;
        self
    }
    pub const fn same_as(mut self, family: &'static str) -> Stat {
        self.same_as = Some(family);
        self
    }
    pub const fn stands_in_for(mut self, pma: &'static str) -> Stat {
        self.stands_in_for = Some(pma);
        self
    }
    pub const fn findings(mut self, f: &'static [&'static str]) -> Stat {
        self.findings = f;
        self
    }
}

/// A statistic found in the catalog, with the index its name carried.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub stat: &'static Stat,
    pub index: Option<u8>,
}

impl Hit {
    pub fn direction(&self) -> Option<&'static str> {
        self.stat
            .labels
            .iter()
            .find(|(k, _)| *k == "direction")
            .map(|(_, v)| *v)
    }
}

pub const PFC_FRAMES: Family = Family {
    metric: "rdma_pfc_pause_frames_total",
    help: "PFC pause frames per priority and direction (mlx5 *_prioN_pause, bnxt *_pfc_ena_frames_priN, ice *_priority_N_xoff).",
};
pub const PFC_DURATION: Family = Family {
    metric: "rdma_pfc_pause_duration_seconds_total",
    help: "Time a priority was paused (mlx5 *_prioN_pause_duration, bnxt pfc_priN_*_duration_us; microseconds, exported in seconds).",
};
pub const PFC_TRANSITIONS: Family = Family {
    metric: "rdma_pfc_pause_transitions_total",
    help: "Transitions into the paused state per priority (mlx5 *_prioN_pause_transition, bnxt pfc_priN_*_transitions).",
};
pub const PFC_ALL_FRAMES: Family = Family {
    metric: "rdma_pfc_frames_total",
    help: "PFC frames of any priority per direction, where the driver counts them apart from the per-priority ones (bnxt rx/tx_pfc_frames); one frame can pause several priorities.",
};
pub const GLOBAL_PAUSE_DURATION: Family = Family {
    metric: "rdma_netdev_global_pause_duration_seconds_total",
    help: "Time the port was paused by link-level (802.3x) pause (mlx5 *_global_pause_duration; microseconds, exported in seconds).",
};
pub const GLOBAL_PAUSE_TRANSITIONS: Family = Family {
    metric: "rdma_netdev_global_pause_transitions_total",
    help: "Transitions into the link-level (802.3x) paused state (mlx5 rx_global_pause_transition).",
};
/// ice counts link-level XOFF and XON frames apart (ice_ethtool.c
/// `ice_gstrings_pf_stats`: link_xoff_rx.nic, ...); the kernel's pause
/// statistics it reports (`ice_get_pause_stats`) are their sum, so the XOFF
/// frames alone are a meaning of their own: requests to stop sending.
pub const GLOBAL_PAUSE_XOFF: Family = Family {
    metric: "rdma_netdev_global_pause_xoff_frames_total",
    help: "Link-level (802.3x) XOFF pause frames per direction, counted apart from XON (ice link_xoff_rx.nic, link_xoff_tx.nic); rdma_netdev_pause_frames_total counts XON and XOFF together.",
};
pub const PAUSE_STORM: Family = Family {
    metric: "rdma_netdev_pause_storm_events_total",
    help: "Pause-storm events: the NIC sent pause for too long (event: warning, error = pause transmission disabled, drops possible; mlx5 tx_pause_storm_*_events) or saw continuous pause (bnxt continuous_*pause_events).",
};
pub const DISCARDS: Family = Family {
    metric: "rdma_netdev_discards_total",
    help: "Packets the NIC discarded, by the driver's statistic name (rx_discards_phy, rx_out_of_buffer, bnxt rx_stat_discard, ...).",
};
pub const PRIORITY_DISCARDS: Family = Family {
    metric: "rdma_netdev_priority_discards_total",
    help: "Received packets discarded per priority, by kind (buffer: no receive buffer, congestion: congestion control, any: all reasons), under the driver's name (mlx5 rx_prioN_discards, rx_prioN_buf_discard, rx_prioN_cong_discard).",
};
pub const PRIORITY_MARKED: Family = Family {
    metric: "rdma_netdev_priority_ecn_marked_packets_total",
    help: "Received packets ECN-marked per priority (mlx5 rx_prioN_marked).",
};
pub const COS_DISCARDS: Family = Family {
    metric: "rdma_netdev_cos_discards_total",
    help: "Received packets discarded per CoS queue (bnxt rx_discard_packets_cosN; a queue holds the priorities the driver maps to it).",
};
pub const BUFFER_THRESHOLD: Family = Family {
    metric: "rdma_netdev_buffer_threshold_events_total",
    help: "Times the port's receive buffer passed its fill threshold (mlx5 rx_buffer_passed_thres_phy: 85 %; bnxt rx_buffer_passed_threshold): a warning, not a drop.",
};
pub const PHY_ERRORS: Family = Family {
    metric: "rdma_netdev_phy_errors_total",
    help: "Physical-layer errors by kind (crc: frames with a bad FCS, symbol: symbol errors, pcs_symbol: symbol errors FEC did not correct), under the driver's name (mlx5 rx_*_phy, bnxt rx_pcs_symbol_err, rx_fcs_err_frames, ice rx_crc_errors.nic).",
};
/// mlx5's rx_err_lane_N_phy is PPCNT phy_corrected_bits_laneN (en_stats.c
/// `pport_phy_statistical_err_lanes_stats_desc`): bits FEC corrected, not errors.
pub const PHY_LANE_CORRECTED_BITS: Family = Family {
    metric: "rdma_netdev_phy_lane_corrected_bits_total",
    help: "Bits FEC corrected per lane (mlx5 rx_err_lane_N_phy, PPCNT phy_corrected_bits_laneN): a lane's share of the pre-FEC bit errors.",
};
pub const PHY_RECEIVED_BITS: Family = Family {
    metric: "rdma_netdev_phy_received_bits_total",
    help: "Bits the PHY could have received (mlx5 rx_bits_phy, bnxt rx_bits): the denominator of the bit error ratio.",
};

/// Names several drivers share (the kernel's own names or common ones).
pub const GENERIC: &[Stat] = &[
    Stat::new("rx_dropped", &DISCARDS).stat_label(),
    Stat::new("tx_dropped", &DISCARDS).stat_label(),
    Stat::new("rx_fifo_errors", &DISCARDS).stat_label(),
];

/// Every ethtool table. Adding a driver is one line here.
pub const TABLES: &[&[Stat]] = &[
    GENERIC,
    super::mlx5::ETHTOOL,
    super::bnxt::ETHTOOL,
    super::irdma::ICE_ETHTOOL,
];

pub fn all() -> impl Iterator<Item = &'static Stat> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// ETH_GSTRING_LEN: no statistic name is longer.
const NAME_MAX: usize = 32;

/// The catalog entry of an ethtool statistic, with the index its name
/// carries (`rx_prio3_pause` → `rx_prio{N}_pause`, 3). Indexes past 7
/// (more than 8 priorities, lanes or queues) are not ours.
pub fn lookup(name: &str) -> Option<Hit> {
    // Fx, not SipHash: every statistic of every netdev is looked up each cycle.
    static INDEX: OnceLock<rustc_hash::FxHashMap<&'static str, &'static Stat>> = OnceLock::new();
    let index = INDEX.get_or_init(|| all().map(|s| (s.name, s)).collect());
    if let Some(s) = index.get(name) {
        return Some(Hit {
            stat: s,
            index: None,
        });
    }
    // The first run of digits becomes `{N}`, built on the stack: no
    // allocation per statistic per cycle.
    let b = name.as_bytes();
    let start = b.iter().position(u8::is_ascii_digit)?;
    let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    let n: u8 = name[start..start + len].parse().ok().filter(|n| *n < 8)?;
    let mut buf = [0u8; NAME_MAX + 3];
    let pattern_len = b.len() - len + 3;
    if pattern_len > buf.len() {
        return None;
    }
    buf[..start].copy_from_slice(&b[..start]);
    buf[start..start + 3].copy_from_slice(b"{N}");
    buf[start + 3..pattern_len].copy_from_slice(&b[start + len..]);
    let pattern = std::str::from_utf8(&buf[..pattern_len]).ok()?;
    index
        .get(pattern)
        .filter(|s| s.index.is_some())
        .map(|s| Hit {
            stat: s,
            index: Some(n),
        })
}

/// The statistics a finding reads.
pub fn used_by(finding: &str) -> impl Iterator<Item = &'static Stat> + '_ {
    all().filter(move |s| s.findings.contains(&finding))
}
