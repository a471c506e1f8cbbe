//! Configuration rules: what configures each device and netdev changed.

use super::*;

impl Findings {
    /// Fingerprints what configures each device and netdev, and reports what changed.
    pub(super) fn config_rules(&mut self, snap: &Snapshot, now_ms: u64) -> Vec<KeyedHit> {
        let mut current: Vec<(String, String)> = Vec::new();
        for d in &snap.devices {
            current.push((
                format!("device {}", d.info.name),
                format!("firmware {}", d.info.fw_ver.as_deref().unwrap_or("?")),
            ));
            for (param, v) in &d.info.dcqcn {
                current.push((
                    format!("device {} dcqcn {param}", d.info.name),
                    v.to_string(),
                ));
            }
        }
        for nd in &snap.netdevs {
            if let Some(di) = &nd.info.drvinfo {
                current.push((
                    format!("netdev {} driver", nd.name),
                    format!("{} {} firmware {}", di.driver, di.version, di.fw_version),
                ));
            }
            let on: Vec<&str> = nd
                .info
                .features
                .iter()
                .filter(|f| f.active)
                .map(|f| f.name.as_str())
                .collect();
            if !on.is_empty() {
                current.push((format!("netdev {} offloads", nd.name), on.join(",")));
            }
            if let Some(p) = nd.info.pause {
                current.push((
                    format!("netdev {} pause", nd.name),
                    format!("rx {} tx {}", p.rx, p.tx),
                ));
            }
            if let Some(mask) = nd.info.dcb.as_ref().and_then(|d| d.pfc_enabled) {
                let prios: Vec<String> = (0..8u8)
                    .filter(|p| mask >> p & 1 == 1)
                    .map(|p| p.to_string())
                    .collect();
                current.push((
                    format!("netdev {} pfc", nd.name),
                    format!("priorities [{}]", prios.join(",")),
                ));
            }
        }
        for m in snap.module_params.iter() {
            current.push((format!("module {} {}", m.module, m.name), m.value.clone()));
        }
        for (thing, print) in current {
            match self.config.insert(thing.clone(), print.clone()) {
                Some(before) if before != print => {
                    self.changed
                        .insert(thing, (now_ms, format!("{before} -> {print}")));
                }
                _ => {}
            }
        }
        self.changed
            .retain(|_, (t, _)| now_ms.saturating_sub(*t) < CHANGE_MS);
        self.changed
            .iter()
            .map(|(thing, (t, what))| {
                let short: String = what.chars().take(300).collect();
                (
                    ("configuration_changed", thing.clone(), None, None),
                    Severity::Info,
                    format!("{thing} changed: {short}"),
                    ev(&[
                        ("change", short.clone().into()),
                        ("changed_unix_ms", (*t).into()),
                    ]),
                )
            })
            .collect()
    }
}
