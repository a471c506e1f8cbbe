//! Configuration rules: what configures each device and netdev changed.

use super::*;

impl Findings {
    /// Fingerprints what configures each device and netdev, and reports what changed.
    pub(super) fn config_rules(&mut self, snap: &Snapshot, now_ms: u64) -> Vec<KeyedHit> {
        for d in &snap.devices {
            self.note_config(
                now_ms,
                format_args!("device {}", d.info.name),
                format_args!("firmware {}", d.info.fw_ver.as_deref().unwrap_or("?")),
            );
            for (param, v) in &d.info.dcqcn {
                self.note_config(
                    now_ms,
                    format_args!("device {} dcqcn {param}", d.info.name),
                    format_args!("{v}"),
                );
            }
        }
        for nd in &snap.netdevs {
            if let Some(di) = &nd.info.drvinfo {
                self.note_config(
                    now_ms,
                    format_args!("netdev {} driver", nd.name),
                    format_args!("{} {} firmware {}", di.driver, di.version, di.fw_version),
                );
            }
            let on = || {
                nd.info
                    .features
                    .iter()
                    .filter(|f| f.active)
                    .map(|f| f.name.as_str())
            };
            if on().next().is_some() {
                self.note_config(
                    now_ms,
                    format_args!("netdev {} offloads", nd.name),
                    format_args!("{}", Joined(on)),
                );
            }
            if let Some(p) = nd.info.pause {
                self.note_config(
                    now_ms,
                    format_args!("netdev {} pause", nd.name),
                    format_args!("rx {} tx {}", p.rx, p.tx),
                );
            }
            if let Some(mask) = nd.info.dcb.as_ref().and_then(|d| d.pfc_enabled) {
                let prios = || (0..8u8).filter(move |p| mask >> p & 1 == 1);
                self.note_config(
                    now_ms,
                    format_args!("netdev {} pfc", nd.name),
                    format_args!("priorities [{}]", Joined(prios)),
                );
            }
        }
        for m in snap.module_params.iter() {
            self.note_config(
                now_ms,
                format_args!("module {} {}", m.module, m.name),
                format_args!("{}", m.value),
            );
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

    /// Compares one thing's fingerprint with the one it had, both written
    /// into kept buffers: a thing that did not change (nearly all, nearly
    /// always) costs no allocation.
    fn note_config(
        &mut self,
        now_ms: u64,
        thing: std::fmt::Arguments<'_>,
        print: std::fmt::Arguments<'_>,
    ) {
        use std::fmt::Write;
        let (t, p) = &mut self.scratch;
        t.clear();
        p.clear();
        // Writing into a String cannot fail.
        let _ = t.write_fmt(thing);
        let _ = p.write_fmt(print);
        match self.config.get_mut(t.as_str()) {
            Some(before) if *before == *p => {}
            Some(before) => {
                let change = format!("{before} -> {p}");
                before.clone_from(p);
                self.changed.insert(t.clone(), (now_ms, change));
            }
            None => {
                self.config.insert(t.clone(), p.clone());
            }
        }
    }
}

/// The items an iterator gives, joined by commas, written where they are
/// formatted (no list or string made for them).
struct Joined<F>(F);

impl<F, I> std::fmt::Display for Joined<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: std::fmt::Display,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, item) in (self.0)().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}
