//! Transport: retransmissions, timeouts, sequence errors and work-request
//! errors of the RoCE/IB transport, from each driver's `hw_counters/` under
//! one family per meaning (the catalog's `Area::Transport`), and the origin
//! of each port's RDMA volume.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration, export_known};
use crate::catalog::{self, Area, Source};
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "transport",
    reads: &[Input::Counters, Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Transport),
};

struct Transport;

impl Collector for Transport {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        export_known(cycle, out, Area::Transport);
        volume(cycle, out);
        Ok(())
    }
}

/// Where each port's RDMA volume (`rdma_port_{transmit,receive}_*_total`)
/// comes from: the PMA, a driver counter standing in for it (EFA, bnxt_re),
/// a sum of driver counters (irdma's IPv4 + IPv6), or, on a port with none, the netdev's vport RDMA statistics (mlx5
/// `*_vport_rdma_unicast_*`), which this exports under the port families.
fn volume(cycle: &Cycle, out: &mut Builder) {
    const PMA: [&str; 4] = [
        "port_xmit_data",
        "port_rcv_data",
        "port_xmit_packets",
        "port_rcv_packets",
    ];
    for (dev, port) in cycle.ports() {
        let p = port.port.to_string();
        let netdev = port
            .info
            .netdev
            .as_deref()
            .and_then(|n| cycle.netdevs().iter().find(|nd| nd.name == n));
        for pma in PMA {
            let Some(k) = catalog::lookup(Source::Pma, pma) else {
                continue;
            };
            let (origin, counter, value) = if port.counters.iter().any(|c| &*c.name == pma) {
                ("pma", pma, None)
            } else if let Some(c) = port.hw_counters.iter().find(|c| {
                catalog::lookup(Source::Hw, &c.name).is_some_and(|k| k.stands_in_for == Some(pma))
            }) {
                ("hw_counters", &*c.name, None)
            } else if let Some((names, v)) = catalog::sums()
                .filter(|s| s.stands_in_for == pma)
                .find_map(|s| sum(&port.hw_counters, s.parts).map(|v| (s.label, v)))
            {
                ("hw_counters", names, Some(v))
            } else if let Some(c) = netdev.and_then(|nd| {
                nd.ethtool_stats.iter().find(|c| {
                    catalog::ethtool::lookup(&c.name)
                        .is_some_and(|h| h.stat.stands_in_for == Some(pma))
                })
            }) {
                ("ethtool", &*c.name, Some(c.value))
            } else {
                continue;
            };
            if let Some(v) = value {
                out.counter(
                    k.metric,
                    k.help,
                    &[("device", &dev.info.name), ("port", &p)],
                    v,
                );
            }
            out.gauge_u64(
                "rdma_port_volume_origin",
                "Where the port's volume family (metric label) comes from: origin pma (ports/N/counters), hw_counters (a driver counter such as EFA tx_bytes) or ethtool (mlx5 *_vport_rdma_unicast_*, on a port with neither); counter is the source's name, parts of a sum joined by + (irdma ip4OutOctets+ip6OutOctets); value is always 1.",
                &[
                    ("device", &dev.info.name),
                    ("port", &p),
                    ("metric", k.metric),
                    ("origin", origin),
                    ("counter", counter),
                ],
                1,
            );
        }
    }
}

/// The sum of `parts` in one reading; None when any part is missing (a
/// partial sum would be too small) or the sum does not fit in 64 bits.
fn sum(counters: &[crate::model::Counter], parts: &[&str]) -> Option<u64> {
    parts.iter().try_fold(0u64, |acc, part| {
        let c = counters.iter().find(|c| &*c.name == *part)?;
        acc.checked_add(c.value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Value;
    use crate::model::NodeReading;
    use crate::model::netdev::NetdevReading;

    use crate::collectors::test_device as device;

    /// A transport counter of each RDMA driver lands in its family with the
    /// driver's name as `counter`; each port's volume says where it came
    /// from, and mlx5's vport RDMA statistics feed a port without PMA counters.
    #[test]
    fn each_driver_and_the_volume_origin() {
        let node = NodeReading {
            devices: vec![
                device(
                    "mlx5_0",
                    None,
                    &[("port_xmit_data", 10)],
                    &[("roce_adp_retrans", 3)],
                ),
                device(
                    "bnxt_re0",
                    None,
                    &[],
                    &[("to_retransmits", 4), ("tx_bytes", 1000)],
                ),
                device("efa_0", None, &[], &[("retrans_pkts", 5)]),
                device("rxe0", None, &[], &[("completer_retry_err", 6)]),
                device(
                    "irdma0",
                    None,
                    &[],
                    &[
                        ("tcpRetransSegs", 7),
                        ("ip4OutOctets", 100),
                        ("ip6OutOctets", 23),
                    ],
                ),
                device(
                    "irdma1",
                    None,
                    &[],
                    &[("ip4InOctets", 1), ("ip4OutOctets", 5), ("ip6OutOctets", 6)],
                ),
                // A GEN3 port on 6.16: the renamed and the new counters.
                device(
                    "irdma2",
                    None,
                    &[],
                    &[
                        ("RetransSegs", 21),
                        ("RTO", 22),
                        ("RNR received", 23),
                        ("Nak Sequence Error", 24),
                        ("ip4OutOctets", 1000),
                        ("ip6OutOctets", 24),
                    ],
                ),
                device(
                    "hfi1_0",
                    None,
                    &[("port_xmit_data", 1)],
                    &[("RcResend", 8), ("TxWait", 9)],
                ),
                device("mlx5_1", Some("eth2"), &[], &[]),
                device(
                    "mlx5_2",
                    None,
                    &[("port_xmit_data", 1)],
                    &[
                        ("roce_slow_restart", 11),
                        ("roce_slow_restart_trans", 12),
                        ("roce_slow_restart_cnps", 13),
                    ],
                ),
            ],
            netdevs: vec![NetdevReading {
                name: "eth2".into(),
                link: None,
                ethtool_stats: crate::collectors::test_counters(&[(
                    "tx_vport_rdma_unicast_bytes",
                    7777,
                )]),
                ethtool_nl: None,
                info: Default::default(),
                errors: Vec::new(),
            }],
            ..NodeReading::default()
        };
        let set = super::super::test_collect(&mut Transport, &node);
        let retrans = |dev: &str, kind: &str, counter: &str| {
            set.get(
                "rdma_transport_retransmissions_total",
                &[
                    ("device", dev),
                    ("port", "1"),
                    ("kind", kind),
                    ("counter", counter),
                ],
            )
        };
        assert_eq!(
            retrans("mlx5_0", "adaptive", "roce_adp_retrans"),
            Some(Value::U64(3))
        );
        assert_eq!(
            retrans("bnxt_re0", "timeout", "to_retransmits"),
            Some(Value::U64(4))
        );
        assert_eq!(
            retrans("efa_0", "packet", "retrans_pkts"),
            Some(Value::U64(5))
        );
        assert_eq!(
            retrans("rxe0", "completer_retry", "completer_retry_err"),
            Some(Value::U64(6))
        );
        assert_eq!(
            retrans("irdma0", "tcp_segment", "tcpRetransSegs"),
            Some(Value::U64(7))
        );
        assert_eq!(
            retrans("irdma2", "packet", "RetransSegs"),
            Some(Value::U64(21))
        );
        assert_eq!(
            retrans("irdma2", "rnr_nak", "RNR received"),
            Some(Value::U64(23))
        );
        let in_family = |metric: &str, dev: &str, kind: &str, counter: &str| {
            set.get(
                metric,
                &[
                    ("device", dev),
                    ("port", "1"),
                    ("kind", kind),
                    ("counter", counter),
                ],
            )
        };
        assert_eq!(
            in_family("rdma_transport_timeouts_total", "irdma2", "ack", "RTO"),
            Some(Value::U64(22))
        );
        assert_eq!(
            in_family(
                "rdma_transport_sequence_errors_total",
                "irdma2",
                "nak",
                "Nak Sequence Error"
            ),
            Some(Value::U64(24))
        );
        assert_eq!(retrans("hfi1_0", "packet", "RcResend"), Some(Value::U64(8)));
        // hfi1 read no RNR NAK counter here: no series, not a 0.
        assert_eq!(retrans("hfi1_0", "rnr_nak", "RnrNak"), None);
        // Slow restart is not a retransmission: its own family, by kind.
        assert_eq!(retrans("mlx5_2", "slow_restart", "roce_slow_restart"), None);
        let slow_on = |dev: &str, kind: &str, counter: &str| {
            set.get(
                "rdma_transport_slow_restart_events_total",
                &[
                    ("device", dev),
                    ("port", "1"),
                    ("kind", kind),
                    ("counter", counter),
                ],
            )
        };
        let slow = |kind: &str, counter: &str| slow_on("mlx5_2", kind, counter);
        assert_eq!(slow("used", "roce_slow_restart"), Some(Value::U64(11)));
        assert_eq!(
            slow("entered", "roce_slow_restart_trans"),
            Some(Value::U64(12))
        );
        // CNPs are packets: not among the slow-restart events.
        assert_eq!(slow("cnp_generated", "roce_slow_restart_cnps"), None);
        // Absent, not 0: mlx5_0 has no slow-restart counter.
        assert_eq!(slow_on("mlx5_0", "used", "roce_slow_restart"), None);
        let origin = |dev: &str, metric: &str, origin: &str, counter: &str| {
            set.get(
                "rdma_port_volume_origin",
                &[
                    ("device", dev),
                    ("port", "1"),
                    ("metric", metric),
                    ("origin", origin),
                    ("counter", counter),
                ],
            )
        };
        let tx = "rdma_port_transmit_bytes_total";
        assert_eq!(
            origin("mlx5_0", tx, "pma", "port_xmit_data"),
            Some(Value::U64(1))
        );
        assert_eq!(
            origin("bnxt_re0", tx, "hw_counters", "tx_bytes"),
            Some(Value::U64(1))
        );
        assert_eq!(
            origin("mlx5_1", tx, "ethtool", "tx_vport_rdma_unicast_bytes"),
            Some(Value::U64(1))
        );
        assert_eq!(
            set.get(tx, &[("device", "mlx5_1"), ("port", "1")]),
            Some(Value::U64(7777))
        );
        // irdma on 6.16 (GEN3 naming): the same IPv4 + IPv6 sum.
        assert_eq!(
            set.get(tx, &[("device", "irdma2"), ("port", "1")]),
            Some(Value::U64(1024))
        );
        // irdma: IPv4 + IPv6 of one reading, the parts named in the origin.
        assert_eq!(
            set.get(tx, &[("device", "irdma0"), ("port", "1")]),
            Some(Value::U64(100 + 23))
        );
        assert_eq!(
            origin("irdma0", tx, "hw_counters", "ip4OutOctets+ip6OutOctets"),
            Some(Value::U64(1))
        );
        // irdma1 lacks ip6InOctets: no receive volume (a partial sum would be
        // too small), no origin; its transmit side still has both halves.
        let rx = "rdma_port_receive_bytes_total";
        assert_eq!(set.get(rx, &[("device", "irdma1"), ("port", "1")]), None);
        assert_eq!(
            origin("irdma1", rx, "hw_counters", "ip4InOctets+ip6InOctets"),
            None
        );
        assert_eq!(
            set.get(tx, &[("device", "irdma1"), ("port", "1")]),
            Some(Value::U64(5 + 6))
        );
        // No volume anywhere for EFA's receive side here: no origin, no series.
        assert_eq!(
            set.get(
                "rdma_port_receive_bytes_total",
                &[("device", "efa_0"), ("port", "1")]
            ),
            None
        );
    }
}
