//! Rules across devices: HCAs of one type running different firmware.

use super::*;

impl Findings {
    pub(super) fn firmware_rule(&self, snap: &Snapshot) -> Vec<KeyedHit> {
        // Nearly always each type runs one firmware: told by comparing each
        // device with the first of its type, before any listing is built.
        let versions = || {
            snap.devices
                .iter()
                .filter_map(|d| d.info.hca_type.as_deref().zip(d.info.fw_ver.as_deref()))
        };
        let differs = |(t, fw): (&str, &str)| {
            versions()
                .find(|(u, _)| *u == t)
                .is_some_and(|(_, first)| first != fw)
        };
        if !versions().any(differs) {
            return Vec::new();
        }
        let mut by_type: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for d in &snap.devices {
            if let (Some(t), Some(fw)) = (d.info.hca_type.as_deref(), d.info.fw_ver.as_deref()) {
                by_type
                    .entry(t)
                    .or_default()
                    .entry(fw)
                    .or_default()
                    .push(&d.info.name);
            }
        }
        let mut out = Vec::new();
        for (hca_type, versions) in by_type {
            if versions.len() < 2 {
                continue;
            }
            let listing: Vec<String> = versions
                .iter()
                .map(|(fw, devs)| format!("{fw}: {}", devs.join(",")))
                .collect();
            out.push((
                ("firmware_mismatch", hca_type.to_string(), None, None),
                Severity::Warning,
                format!(
                    "{hca_type} HCAs run different firmware ({})",
                    listing.join("; ")
                ),
                ev(&[(
                    "versions",
                    serde_json::to_value(&versions).unwrap_or_default(),
                )]),
            ));
        }
        out
    }
}
