//! Rules over the counters issue 13 curates, each reading its names from the
//! catalog (`catalog::used_by`, `catalog::ethtool::used_by`):
//! - `retransmission_rate`: a port's transport retransmissions per second
//!   above `retransmissions_per_second` (1 by default: no vendor publishes a
//!   limit; config.yaml gives the reasoning).
//! - `priority_drops`: a priority DCB reports PFC-enabled (mlx5
//!   rx_prioN_discards) dropping more than `priority_drops_per_second`. bnxt
//!   CoS queues (rx_discard_packets_cosN) stay metrics only: their
//!   priorities are the firmware's mapping, so a lossy queue (which may drop
//!   by design) cannot be told from a lossless one.
//! - `phy_ber`: a netdev's pre-FEC bit error ratio (corrected bits / received
//!   bits, or / (speed × interval) where the driver has no received-bits
//!   counter) above `pre_fec_ber` (warning), or symbol errors FEC could not
//!   correct (critical).

use std::collections::BTreeMap;

use super::{KeyedHit, PerNetdev, Severity, ev};
use crate::catalog::ethtool;
use crate::config::Analysis;
use crate::snapshot::Snapshot;

/// Raw values of the netdev statistics these rules read, from the last cycle.
#[derive(Default)]
pub(super) struct CounterRules {
    /// By netdev, then (statistic, index).
    last: PerNetdev<(&'static str, Option<u8>)>,
}

/// The increase of a statistic since the last cycle; None on the first sight
/// or when it went down (a reset is not a rate).
fn step(
    last: &mut PerNetdev<(&'static str, Option<u8>)>,
    netdev: &str,
    key: (&'static str, Option<u8>),
    value: u64,
) -> Option<u64> {
    last.replace(netdev, key, value)
        .and_then(|b| value.checked_sub(b))
}

impl CounterRules {
    pub(super) fn evaluate(&mut self, th: &Analysis, snap: &Snapshot) -> Vec<KeyedHit> {
        let mut out = Vec::new();
        retransmissions(th, snap, &mut out);
        let interval = snap.interval_seconds.filter(|s| *s > 0.0);
        for nd in &snap.netdevs {
            let pfc = nd.info.dcb.as_ref().and_then(|d| d.pfc_enabled);
            let mut corrected = None;
            let mut received = None;
            let mut uncorrected = None;
            for c in &nd.ethtool_stats {
                let Some(hit) = ethtool::lookup(&c.name) else {
                    continue;
                };
                let s = hit.stat;
                let reads_drops = s.findings.contains(&"priority_drops");
                let reads_ber = s.findings.contains(&"phy_ber");
                if !reads_drops && !reads_ber {
                    continue;
                }
                let Some(d) = step(&mut self.last, &nd.name, (s.name, hit.index), c.value) else {
                    continue;
                };
                if reads_ber {
                    // The three roles of the BER statistics, by their family.
                    match s.family.map(|f| f.metric) {
                        Some(m) if m == ethtool::PHY_RECEIVED_BITS.metric => received = Some(d),
                        Some(m) if m == ethtool::PHY_ERRORS.metric => {
                            uncorrected = Some((d, &*c.name))
                        }
                        _ => corrected = Some(d),
                    }
                }
                let (Some(secs), true) = (interval, reads_drops) else {
                    continue;
                };
                let index = hit.index.unwrap_or(0);
                // A priority without PFC (or with PFC state unknown) may drop
                // by design: only known-lossless priorities count.
                if s.index != Some("priority") || pfc.is_none_or(|m| m >> index & 1 == 0) {
                    continue;
                }
                let rate = d as f64 / secs;
                if rate > th.priority_drops_per_second {
                    let what = s.index.unwrap_or("priority");
                    out.push((
                        ("priority_drops", nd.name.clone(), None, Some(index)),
                        Severity::Warning,
                        format!(
                            "{} {what} {index}: {} at {rate:.1}/s (threshold {}/s)",
                            nd.name, c.name, th.priority_drops_per_second
                        ),
                        ev(&[
                            ("counter", c.name.to_string().into()),
                            ("per_second", rate.into()),
                            ("threshold", th.priority_drops_per_second.into()),
                        ]),
                    ));
                }
            }
            if corrected.is_none()
                && let Some(v) = nd.ethtool_nl.as_ref().and_then(|e| e.fec_corrected_bits)
            {
                corrected = step(&mut self.last, &nd.name, ("fec_corrected_bits", None), v);
            }
            let speed_bits = nd
                .info
                .link_settings
                .and_then(|l| l.speed_mbps)
                .map(|m| f64::from(m) * 1e6);
            out.extend(ber(
                th,
                &nd.name,
                corrected,
                received,
                speed_bits,
                interval,
                uncorrected,
            ));
        }
        out
    }
}

/// Sum of the retransmission rates the catalog names for `retransmission_rate`, per port.
fn retransmissions(th: &Analysis, snap: &Snapshot, out: &mut Vec<KeyedHit>) {
    for d in &snap.devices {
        for p in &d.ports {
            let rates = || {
                crate::analysis::health::retransmit_counters()
                    .iter()
                    .filter_map(|f| Some((*f, p.hw_counters.get(f)?.rate?)))
            };
            // Summed first: the evidence (a map, a heap block per port) only
            // for a port over the threshold.
            let (n, total) = rates().fold((0, 0.0), |(n, t), (_, r)| (n + 1, t + r));
            if n == 0 || total <= th.retransmissions_per_second {
                continue;
            }
            let seen: BTreeMap<&'static str, serde_json::Value> =
                rates().map(|(f, r)| (f, r.into())).collect();
            let mut evidence = ev(&[
                ("per_second", total.into()),
                ("threshold", th.retransmissions_per_second.into()),
            ]);
            evidence.insert("counters", serde_json::to_value(&seen).unwrap_or_default());
            out.push((
                (
                    "retransmission_rate",
                    d.info.name.to_string(),
                    Some(p.port),
                    None,
                ),
                Severity::Warning,
                format!(
                    "{}/{}: transport retransmissions at {total:.1}/s (threshold {}/s)",
                    d.info.name, p.port, th.retransmissions_per_second
                ),
                evidence,
            ));
        }
    }
}

/// The pre-FEC BER of one netdev over the last interval, and uncorrected errors.
fn ber(
    th: &Analysis,
    netdev: &str,
    corrected: Option<u64>,
    received: Option<u64>,
    speed_bits: Option<f64>,
    interval: Option<f64>,
    uncorrected: Option<(u64, &str)>,
) -> Vec<KeyedHit> {
    let mut out = Vec::new();
    if let Some((n, name)) = uncorrected.filter(|(n, _)| *n > 0) {
        out.push((
            ("phy_ber", netdev.to_string(), None, None),
            Severity::Critical,
            format!("{netdev}: {name} +{n}: symbol errors FEC did not correct (traffic lost)"),
            ev(&[("counter", name.into()), ("delta", n.into())]),
        ));
        return out;
    }
    let bits = match (received, speed_bits.zip(interval)) {
        (Some(r), _) if r > 0 => r as f64,
        (None, Some((speed, secs))) => speed * secs,
        _ => return out,
    };
    let Some(c) = corrected else { return out };
    let ber = c as f64 / bits;
    if ber > th.pre_fec_ber {
        out.push((
            ("phy_ber", netdev.to_string(), None, None),
            Severity::Warning,
            format!(
                "{netdev}: pre-FEC bit error ratio {ber:.2e} (threshold {:.2e})",
                th.pre_fec_ber
            ),
            ev(&[
                ("pre_fec_ber", ber.into()),
                ("corrected_bits", c.into()),
                ("bits", bits.into()),
                ("threshold", th.pre_fec_ber.into()),
            ]),
        ));
    }
    out
}
