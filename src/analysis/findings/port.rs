//! Port rules: state, link width and rate, flapping, error counters and
//! rates, saturated and reset counters.

use super::*;

impl Findings {
    pub(super) fn port_rules(
        &mut self,
        device: &Arc<str>,
        p: &PortView,
        now_ms: u64,
        carrier_flaps: u64,
        event_ups: &[u64],
    ) -> Vec<Hit> {
        let th = &self.th;
        let h = self.ports.entry((device.clone(), p.port)).or_default();
        h.seen = self.evaluations;
        let mut hits = Vec::new();
        // The counters the rules read, found by name once (rule_files).
        let files = rule_files();
        h.at.refresh(&files.port_names, &p.counters, &p.hw_counters);
        let at = &h.at;
        let c = |k: usize| at.first(k, &p.counters);
        let hw = |k: usize| at.second(k, &p.hw_counters);
        // Written out only into a hit's summary: most ports have none.
        let name = PortName(device, p.port);

        // State, and the transitions that make a flap.
        let active = p.state.as_ref().is_some_and(|s| s.value == STATE_ACTIVE);
        let downed = delta_of(c(LINK_DOWNED))
            .max(delta_of(hw(LINK_DOWNED)))
            .max(carrier_flaps);
        if p.state.is_some() {
            // A down→up a link event saw is a finished transition at its time,
            // even when the port is down again at this poll (a flap across it).
            let ups = &event_ups[..event_ups.len().min(64)];
            h.transitions.extend(ups.iter().copied());
            if !active {
                h.down_pending = true;
                h.event_ups_pending += ups.len() as u64;
            }
            if active && (h.down_pending || downed > 0) {
                // Each down the counter saw is one transition; a down the samples
                // caught without the counter moving counts once. Those the link
                // events gave since (the larger count, never the sum) are not
                // counted again.
                let n = downed.max(u64::from(h.down_pending)).min(64);
                let given = ups.len() as u64 + h.event_ups_pending;
                for _ in given..n {
                    h.transitions.push_back(now_ms);
                }
                h.down_pending = false;
            }
            if active {
                h.event_ups_pending = 0;
            }
        }
        let window_ms = (th.flap_window * 1000.0) as u64;
        while h
            .transitions
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > window_ms)
        {
            h.transitions.pop_front();
        }
        if active && h.transitions.len() >= th.flap_transitions.max(1) as usize {
            hits.push((
                "link_flapping",
                Severity::Critical,
                format!(
                    "{name} went down and up {} times in {} s",
                    h.transitions.len(),
                    th.flap_window
                ),
                ev(&[
                    ("transitions", h.transitions.len().into()),
                    ("window_seconds", th.flap_window.into()),
                ]),
            ));
        }
        if let Some(state) = &p.state
            && !active
        {
            let disabled = p
                .phys_state
                .as_ref()
                .is_some_and(|s| s.value == PHYS_DISABLED);
            let sev = if disabled {
                Severity::Info
            } else if h.ever_active {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let phys = p.phys_state.as_ref().map_or("?", |s| s.name.as_str());
            hits.push((
                "port_down",
                sev,
                format!("{name} is {} (physical {phys})", state.name),
                ev(&[
                    ("state", state.name.clone().into()),
                    ("phys_state", phys.into()),
                ]),
            ));
        }
        h.was_active = active;
        h.ever_active |= active;

        if active && let Some(rate) = &p.rate {
            let width = rate.width.unwrap_or(0);
            if width < h.best_width || rate.gbit_per_sec < h.best_rate {
                hits.push((
                    "link_degraded",
                    Severity::Warning,
                    format!(
                        "{name} runs at {} Gb/s {}X, it ran at {} Gb/s {}X",
                        rate.gbit_per_sec, width, h.best_rate, h.best_width
                    ),
                    ev(&[
                        ("gbit_per_sec", rate.gbit_per_sec.into()),
                        ("width", width.into()),
                        ("best_gbit_per_sec", h.best_rate.into()),
                        ("best_width", h.best_width.into()),
                    ]),
                ));
            }
            h.best_width = h.best_width.max(width);
            h.best_rate = h.best_rate.max(rate.gbit_per_sec);
        }

        for (k, file, id) in [
            (LINK_DOWNED, "link_downed", "link_downed"),
            (
                LINK_ERROR_RECOVERY,
                "link_error_recovery",
                "link_error_recovery",
            ),
        ] {
            let d = delta_of(c(k)).max(delta_of(hw(k)));
            if d > 0 {
                hits.push((
                    id,
                    Severity::Warning,
                    format!("{name}: {file} +{d}"),
                    ev(&[("delta", d.into())]),
                ));
            }
        }
        let per_minute = [
            (
                "symbol_errors",
                files.symbol_errors,
                th.symbol_errors_per_minute,
            ),
            (
                "receive_errors",
                files.receive_errors,
                th.receive_errors_per_minute,
            ),
        ];
        for (id, file, limit) in per_minute {
            let Some((file, k)) = file else {
                continue;
            };
            if let Some(r) = rate_of(c(k))
                && r * 60.0 > limit
            {
                hits.push((
                    id,
                    Severity::Warning,
                    format!(
                        "{name}: {file} at {:.1}/min (threshold {limit}/min)",
                        r * 60.0
                    ),
                    ev(&[
                        ("per_minute", (r * 60.0).into()),
                        ("threshold", limit.into()),
                    ]),
                ));
            }
        }
        let per_second: [(Option<f64>, &'static str, &str, f64); 3] = [
            (
                files.transmit_discards.and_then(|(_, k)| rate_of(c(k))),
                "transmit_discards",
                "port_xmit_discards",
                th.transmit_discards_per_second,
            ),
            (
                files.out_of_buffer.clone().find_map(|k| rate_of(hw(k))),
                "out_of_buffer",
                "out_of_buffer",
                th.out_of_buffer_per_second,
            ),
            (
                files
                    .cnp_rate
                    .clone()
                    .filter_map(|k| rate_of(hw(k)))
                    .reduce(f64::max),
                "cnp_rate",
                "CNPs",
                th.cnp_per_second,
            ),
        ];
        for (rate, id, what, limit) in per_second {
            if let Some(r) = rate
                && r > limit
            {
                hits.push((
                    id,
                    Severity::Warning,
                    format!("{name}: {what} at {r:.1}/s (threshold {limit}/s)"),
                    ev(&[("per_second", r.into()), ("threshold", limit.into())]),
                ));
            }
        }
        for (n, v) in p.counters.iter().chain(p.hw_counters.iter()) {
            if let Some(flag) = v.flag {
                let (id, sev, what) = match flag {
                    Flag::Saturated => (
                        "counter_saturated",
                        Severity::Warning,
                        "is saturated: it no longer counts",
                    ),
                    Flag::Reset => (
                        "counter_reset",
                        Severity::Info,
                        "went down (device reset or counters cleared)",
                    ),
                };
                hits.push((
                    id,
                    sev,
                    format!("{name}: {n} {what}"),
                    ev(&[("counter", n.to_string().into()), ("value", v.value.into())]),
                ));
            }
        }
        // One finding per (rule, port): several saturated counters share it.
        merge_same_key(hits)
    }
}

/// "device/port", as a hit's summary names the port.
struct PortName<'a>(&'a str, u32);

impl std::fmt::Display for PortName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}
