//! The curated families of `ethtool -S` statistics (PFC and link-level
//! pause, pause storms, drops and marks per priority, PHY health), from the
//! catalog's per-driver tables. Called by the netdev collector for each
//! statistic; what it does not export stays in `rdma_netdev_ethtool_stat`.

use crate::catalog::ethtool::{self, Unit};
use crate::metrics::{Builder, Kind, Value};
use crate::model::Counter;

/// Exports `c` of `netdev` under its curated family; false when it has none.
pub(super) fn export(out: &mut Builder, netdev: &str, c: &Counter) -> bool {
    let Some(hit) = ethtool::lookup(&c.name) else {
        return false;
    };
    let Some(family) = hit.stat.family else {
        return false;
    };
    let index = hit.index.map(|i| i.to_string());
    // netdev, at most two fixed labels, the index and stat: on the stack.
    let mut buf = [("", ""); 5];
    buf[0] = ("netdev", netdev);
    let mut n = 1;
    for l in hit.stat.labels.iter().take(2) {
        buf[n] = *l;
        n += 1;
    }
    if let (Some(label), Some(i)) = (hit.stat.index, index.as_deref()) {
        buf[n] = (label, i);
        n += 1;
    }
    if hit.stat.stat_label {
        buf[n] = ("stat", &c.name);
        n += 1;
    }
    let labels = &buf[..n];
    match hit.stat.unit {
        Unit::Microseconds => out.push(
            family.metric,
            family.help,
            Kind::Counter,
            labels,
            Value::F64(c.value as f64 / 1e6),
        ),
        Unit::Count | Unit::Bits | Unit::Bytes => {
            out.counter(family.metric, family.help, labels, c.value)
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricSet;

    fn render(stats: &[(&str, u64)]) -> MetricSet {
        let mut b = Builder::new();
        for (name, value) in stats {
            let c = Counter {
                name: (*name).into(),
                value: *value,
            };
            if !export(&mut b, "eth2", &c) {
                b.gauge_u64(
                    "rdma_netdev_ethtool_stat",
                    "other",
                    &[("netdev", "eth2"), ("stat", name)],
                    *value,
                );
            }
        }
        b.finish()
    }

    /// A named statistic of each Ethernet driver lands in its family with
    /// its unit (durations in seconds); what the driver lacks is absent, not 0.
    #[test]
    fn each_vendor_lands_in_its_family() {
        let set = render(&[
            ("rx_prio3_pause_duration", 2_500_000),  // mlx5, µs
            ("pfc_pri3_tx_duration_us", 1_000_000),  // bnxt, µs
            ("tx_priority_3_xoff.nic", 7),           // ice
            ("tx_pause_storm_error_events", 2),      // mlx5
            ("continuous_roce_pause_events", 4),     // bnxt
            ("rx_prio5_buf_discard", 11),            // mlx5
            ("rx_discard_packets_cos1", 12),         // bnxt
            ("rx_err_lane_2_phy", 13),               // mlx5
            ("rx_pcs_symbol_err", 14),               // bnxt
            ("rx_buffer_passed_thres_phy", 15),      // mlx5
            ("tx_global_pause_duration", 3_000_000), // mlx5, µs
            ("rx_pause_ctrl_phy", 16),               // known, exported by netlink: generic
        ]);
        fn p<'a>(d: &'a str, pr: &'a str) -> [(&'a str, &'a str); 3] {
            [("netdev", "eth2"), ("direction", d), ("priority", pr)]
        }
        assert_eq!(
            set.get("rdma_pfc_pause_duration_seconds_total", &p("rx", "3")),
            Some(Value::F64(2.5))
        );
        assert_eq!(
            set.get("rdma_pfc_pause_duration_seconds_total", &p("tx", "3")),
            Some(Value::F64(1.0))
        );
        // Absent, not 0: no bnxt rx duration, no mlx5 tx duration was read.
        assert_eq!(
            set.get("rdma_pfc_pause_duration_seconds_total", &p("rx", "4")),
            None
        );
        assert_eq!(
            set.get("rdma_pfc_pause_frames_total", &p("tx", "3")),
            Some(Value::U64(7))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_pause_storm_events_total",
                &[
                    ("netdev", "eth2"),
                    ("event", "error"),
                    ("stat", "tx_pause_storm_error_events")
                ]
            ),
            Some(Value::U64(2))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_pause_storm_events_total",
                &[
                    ("netdev", "eth2"),
                    ("event", "continuous_roce"),
                    ("stat", "continuous_roce_pause_events")
                ]
            ),
            Some(Value::U64(4))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_priority_discards_total",
                &[
                    ("netdev", "eth2"),
                    ("kind", "buffer"),
                    ("priority", "5"),
                    ("stat", "rx_prio5_buf_discard")
                ]
            ),
            Some(Value::U64(11))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_cos_discards_total",
                &[("netdev", "eth2"), ("cos", "1")]
            ),
            Some(Value::U64(12))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_phy_lane_corrected_bits_total",
                &[("netdev", "eth2"), ("lane", "2")]
            ),
            Some(Value::U64(13))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_phy_errors_total",
                &[
                    ("netdev", "eth2"),
                    ("kind", "pcs_symbol"),
                    ("stat", "rx_pcs_symbol_err")
                ]
            ),
            Some(Value::U64(14))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_buffer_threshold_events_total",
                &[("netdev", "eth2"), ("stat", "rx_buffer_passed_thres_phy")]
            ),
            Some(Value::U64(15))
        );
        // A threshold crossing is no longer a discard.
        assert_eq!(
            set.get(
                "rdma_netdev_discards_total",
                &[("netdev", "eth2"), ("stat", "rx_buffer_passed_thres_phy")]
            ),
            None
        );
        assert_eq!(
            set.get(
                "rdma_netdev_global_pause_duration_seconds_total",
                &[("netdev", "eth2"), ("direction", "tx")]
            ),
            Some(Value::F64(3.0))
        );
        assert_eq!(
            set.get(
                "rdma_netdev_ethtool_stat",
                &[("netdev", "eth2"), ("stat", "rx_pause_ctrl_phy")]
            ),
            Some(Value::U64(16))
        );
    }
}
