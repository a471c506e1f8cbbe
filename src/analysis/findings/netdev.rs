//! Netdev rules: PFC pause storms, transceiver thresholds.

use super::*;

impl Findings {
    /// Pause storms: the share of the last interval a priority spent paused.
    pub(super) fn pfc_rules(&mut self, snap: &Snapshot) -> Vec<KeyedHit> {
        let mut out = Vec::new();
        let Some(interval) = snap.interval_seconds.filter(|s| *s > 0.0) else {
            // No interval yet: remember the values for the next cycle.
            for nd in &snap.netdevs {
                for c in &nd.ethtool_stats {
                    if let Some((dir, prio)) = pause_duration(&c.name) {
                        self.pause_us.replace(&nd.name, (dir, prio), c.value);
                    }
                }
            }
            return out;
        };
        for nd in &snap.netdevs {
            for c in &nd.ethtool_stats {
                let Some((dir, prio)) = pause_duration(&c.name) else {
                    continue;
                };
                let before = self.pause_us.replace(&nd.name, (dir, prio), c.value);
                let Some(b) = before.filter(|b| c.value >= *b) else {
                    continue;
                };
                let share = (c.value - b) as f64 / 1e6 / interval;
                if share > self.th.pfc_pause_share {
                    out.push((
                        ("pfc_pause_storm", nd.name.clone(), None, prio),
                        Severity::Critical,
                        format!(
                            "{} {} paused {:.0} % of the time ({dir})",
                            nd.name,
                            prio.map_or("link-level pause".to_string(), |p| format!(
                                "priority {p}"
                            )),
                            share * 100.0
                        ),
                        ev(&[
                            ("paused_share", share.into()),
                            ("direction", dir.into()),
                            ("threshold", self.th.pfc_pause_share.into()),
                        ]),
                    ));
                }
            }
        }
        out
    }
}

/// A module reading past the module's own thresholds.
/// A pause-duration statistic (µs) of the catalog: (direction, priority;
/// None for link-level pause).
fn pause_duration(name: &str) -> Option<(&'static str, Option<u8>)> {
    let hit = crate::catalog::ethtool::lookup(name)?;
    if !hit.stat.findings.contains(&"pfc_pause_storm") {
        return None;
    }
    Some((hit.direction()?, hit.index))
}

pub(super) fn transceiver_rules(snap: &Snapshot) -> Vec<KeyedHit> {
    let mut out = Vec::new();
    for nd in &snap.netdevs {
        let Some(m) = &nd.info.module else { continue };
        let mut readings: Vec<(&str, usize, f64, Option<crate::model::netdev::Thresholds>)> =
            Vec::new();
        readings.extend(
            m.temperature_celsius
                .map(|v| ("temperature", 0, v, m.temperature_thresholds)),
        );
        readings.extend(
            m.supply_voltage_volts
                .map(|v| ("voltage", 0, v, m.voltage_thresholds)),
        );
        for (sensor, values, th) in [
            ("tx_bias", &m.tx_bias_amperes, m.tx_bias_thresholds),
            ("tx_power", &m.tx_power_watts, m.tx_power_thresholds),
            ("rx_power", &m.rx_power_watts, m.rx_power_thresholds),
        ] {
            readings.extend(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (sensor, i + 1, *v, th)),
            );
        }
        let crossed: Vec<String> = readings
            .iter()
            .filter_map(|(sensor, lane, v, th)| {
                th.and_then(|t| t.crossed(*v)).map(|level| {
                    if *lane == 0 {
                        format!("{sensor} {v:.6} {level}")
                    } else {
                        format!("{sensor} lane {lane} {v:.6} {level}")
                    }
                })
            })
            .collect();
        if crossed.is_empty() {
            continue;
        }
        let sev = if crossed.iter().any(|c| c.contains("alarm")) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push((
            ("transceiver_threshold", nd.name.clone(), None, None),
            sev,
            format!(
                "{} transceiver {} {}: {}",
                nd.name,
                m.vendor,
                m.part_number,
                crossed.join("; ")
            ),
            ev(&[("crossed", crossed.into())]),
        ));
    }
    out
}
