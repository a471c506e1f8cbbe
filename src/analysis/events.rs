//! Listening between polls: link events, RDMA monitor events and the kernel
//! log, taken once a cycle on the collection thread. Link events become
//! down→up transitions with their times for `link_flapping`; RDMA monitor
//! events ask for a rescan; kernel log records matching a pattern
//! (`analysis::kernel_log`) become `kernel_log_event` findings, held for
//! `events.kernel_log_hold` after the last matching line.

use std::collections::{BTreeMap, HashMap};

use crate::analysis::findings::{Findings, KeyedHit};
use crate::analysis::kernel_log::{self, Names};
use crate::config::events::Pattern;
use crate::metrics::Builder;
use crate::model::events::{EventsStatus, KmsgRecord, LinkEvent, ListenerStatus, RdmaEvent};
use crate::model::finding::Severity;
use crate::snapshot::Snapshot;
use crate::sources::kmsg::{Kmsg, KmsgError};
use crate::sources::netlink::events::{self as nl, Listener};

/// How a listener is doing; the detail of a failure is said once, at start.
enum State<T> {
    Off,
    On(T),
    /// Not there; (status word, why).
    Down(&'static str, String),
}

impl<T> State<T> {
    fn status(&self, received: u64, lost: u64) -> ListenerStatus {
        let (state, detail) = match self {
            State::Off => ("off", None),
            State::On(_) => ("listening", None),
            State::Down(s, why) => (*s, Some(why.clone())),
        };
        ListenerStatus {
            state,
            detail,
            received_total: received,
            lost_total: lost,
        }
    }
}

/// Matching lines of one place (device or subject) still held.
struct Held {
    /// Per pattern: (severity, matching lines, last time).
    patterns: BTreeMap<String, (Severity, u64, u64)>,
    last_line: String,
    last_level: u8,
    last_facility: u32,
    last_ms: u64,
}

/// A netlink listener when `on`; a refusal is said once (`say`) and kept as `down`.
fn listen<T>(
    on: bool,
    open: impl FnOnce() -> Result<T, crate::sources::netlink::NlError>,
    down: &'static str,
    say: impl FnOnce(&crate::sources::netlink::NlError),
) -> State<T> {
    if !on {
        return State::Off;
    }
    match open() {
        Ok(l) => State::On(l),
        Err(e) => {
            say(&e);
            State::Down(down, e.to_string())
        }
    }
}

pub struct EventWatch {
    hold_ms: u64,
    max_records: usize,
    patterns: Vec<Pattern>,
    links: State<Listener<LinkEvent>>,
    rdma: State<Listener<RdmaEvent>>,
    kmsg: State<Kmsg>,
    link_counts: (u64, u64),
    rdma_counts: (u64, u64),
    matched_total: u64,
    /// The last carrier seen per netdev, to tell a down→up from a repeat.
    carrier: HashMap<String, bool>,
    held: HashMap<String, Held>,
    records: Vec<KmsgRecord>,
}

impl EventWatch {
    /// Starts what `events` asks for. A listener the kernel refuses is said
    /// once here and in the status; the agent goes on without it.
    pub fn open(cfg: &crate::config::Events) -> EventWatch {
        let links = listen(cfg.link_events, nl::listen_links, "failed", |e| {
            log::warn!(
                "link events (RTNLGRP_LINK) unavailable ({e}): carrier changes are counted per poll only"
            )
        });
        let absent = nl::kernel_release().and_then(|r| nl::monitor_absent(&r));
        let rdma = match absent {
            Some(why) if cfg.rdma_monitor => {
                log::info!("{why}: device changes are found by the periodic rescan");
                State::Down("polling", why)
            }
            _ => listen(cfg.rdma_monitor, nl::listen_rdma, "polling", |e| {
                log::info!(
                    "RDMA netlink monitor events unavailable ({e}; they need Linux 6.12): device changes are found by the periodic rescan"
                )
            }),
        };
        let kmsg = if cfg.kernel_log {
            match Kmsg::open(&cfg.kmsg_path) {
                Ok(k) => State::On(k),
                Err(e @ KmsgError::Permission { .. }) => {
                    log::warn!("{e}: no kernel_log_event findings");
                    State::Down("no_permission", e.to_string())
                }
                Err(e) => {
                    log::warn!("kernel log: {e}: no kernel_log_event findings");
                    State::Down("failed", e.to_string())
                }
            }
        } else {
            State::Off
        };
        EventWatch {
            hold_ms: (cfg.kernel_log_hold * 1000.0) as u64,
            max_records: cfg.kmsg_max_records_per_cycle as usize,
            patterns: kernel_log::patterns(&cfg.patterns, cfg.builtin_patterns),
            links,
            rdma,
            kmsg,
            link_counts: (0, 0),
            rdma_counts: (0, 0),
            matched_total: 0,
            carrier: HashMap::new(),
            held: HashMap::new(),
            records: Vec::new(),
        }
    }

    /// One cycle: takes what arrived since the last, puts it in the
    /// snapshot's `events` section and hands the findings engine the link
    /// transitions and kernel log hits. Returns true when an RDMA device or
    /// its netdev changed (the caller rescans).
    pub fn cycle(&mut self, snap: &mut Snapshot, findings: &mut Findings, now_ms: u64) -> bool {
        let mut names: Option<Names> = None;
        let mut link_events = Vec::new();
        if let State::On(l) = &self.links {
            let (received, lost, failed) = l.take(&mut link_events);
            self.link_counts = (received, lost);
            if let Some(why) = failed {
                log::warn!("link events stopped: {why}");
                self.links = State::Down("failed", why);
            }
        }
        let mut rdma_events = Vec::new();
        if let State::On(l) = &self.rdma {
            let (received, lost, failed) = l.take(&mut rdma_events);
            self.rdma_counts = (received, lost);
            if let Some(why) = failed {
                log::warn!("RDMA monitor events stopped: {why}");
                self.rdma = State::Down("failed", why);
            }
        }
        let mut ups: HashMap<String, Vec<u64>> = HashMap::new();
        if !link_events.is_empty() {
            let n = names.get_or_insert_with(|| Names::of(snap));
            link_events.retain(|e| n.is_rdma_netdev(&e.netdev));
            ups = self.transitions(&link_events);
        }
        for e in &rdma_events {
            log::info!("RDMA monitor event: {e:?}");
        }
        self.read_kernel_log(snap, &mut names, now_ms);
        self.held
            .retain(|_, h| now_ms.saturating_sub(h.last_ms) <= self.hold_ms);
        findings.feed_events(ups, self.hits());
        snap.events = Some(EventsStatus {
            link_events: self.links.status(self.link_counts.0, self.link_counts.1),
            rdma_monitor: self.rdma.status(self.rdma_counts.0, self.rdma_counts.1),
            kernel_log: self.kmsg_status(),
            kernel_log_matched_total: self.matched_total,
            link_changes: link_events,
            rdma_changes: rdma_events.clone(),
        });
        !rdma_events.is_empty()
    }

    fn kmsg_status(&self) -> ListenerStatus {
        let s = match &self.kmsg {
            State::On(k) => k.stats(),
            _ => Default::default(),
        };
        self.kmsg.status(s.read, s.lost)
    }

    /// Down→up transitions per netdev, at the times the up arrived.
    fn transitions(&mut self, events: &[LinkEvent]) -> HashMap<String, Vec<u64>> {
        let mut ups: HashMap<String, Vec<u64>> = HashMap::new();
        for e in events {
            if e.deleted {
                self.carrier.remove(&e.netdev);
                continue;
            }
            let before = self.carrier.insert(e.netdev.clone(), e.carrier);
            if e.carrier && before == Some(false) {
                ups.entry(e.netdev.clone()).or_default().push(e.unix_ms);
            }
        }
        ups
    }

    fn read_kernel_log(&mut self, snap: &Snapshot, names: &mut Option<Names>, now_ms: u64) {
        let State::On(k) = &mut self.kmsg else {
            return;
        };
        self.records.clear();
        if let Err(e) = k.read_some(self.max_records, &mut self.records) {
            log::warn!("kernel log: {e}; no longer read");
            self.kmsg = State::Down("failed", e.to_string());
            return;
        }
        for r in &self.records {
            let Some(p) = kernel_log::matching(&self.patterns, r) else {
                continue;
            };
            self.matched_total += 1;
            let n = names.get_or_insert_with(|| Names::of(snap));
            let place = kernel_log::place_of(r, n);
            let h = self.held.entry(place).or_insert_with(|| Held {
                patterns: BTreeMap::new(),
                last_line: String::new(),
                last_level: 0,
                last_facility: 0,
                last_ms: 0,
            });
            let e = h.patterns.entry(p.name.clone()).or_insert((
                kernel_log::severity(p.severity),
                0,
                0,
            ));
            e.1 += 1;
            e.2 = now_ms;
            h.last_line.clone_from(&r.message);
            h.last_level = r.level;
            h.last_facility = r.facility;
            h.last_ms = now_ms;
        }
    }

    /// One `kernel_log_event` per place: the worst pattern's severity, each
    /// pattern with its count, the last line as evidence.
    fn hits(&self) -> Vec<KeyedHit> {
        self.held
            .iter()
            .map(|(place, h)| {
                let severity = h
                    .patterns
                    .values()
                    .map(|p| p.0)
                    .min()
                    .unwrap_or(Severity::Info);
                let counts: serde_json::Map<String, serde_json::Value> = h
                    .patterns
                    .iter()
                    .map(|(n, p)| (n.clone(), p.1.into()))
                    .collect();
                let names: Vec<&str> = h.patterns.keys().map(String::as_str).collect();
                let mut evidence = BTreeMap::new();
                evidence.insert("patterns", serde_json::Value::Object(counts));
                evidence.insert("line", h.last_line.clone().into());
                evidence.insert("level", h.last_level.into());
                // 1: written from user space (echo > /dev/kmsg), not by a driver.
                evidence.insert("facility", h.last_facility.into());
                evidence.insert("last_unix_ms", h.last_ms.into());
                (
                    ("kernel_log_event", place.clone(), None, None),
                    severity,
                    format!(
                        "{place}: kernel log ({}): {}",
                        names.join(", "),
                        h.last_line
                    ),
                    evidence,
                )
            })
            .collect()
    }

    pub fn export(&self, out: &mut Builder) {
        let kmsg = match &self.kmsg {
            State::On(k) => Some(k.stats()),
            _ => None,
        };
        for (listener, on, counts) in [
            (
                "link",
                matches!(self.links, State::On(_)),
                (!matches!(self.links, State::Off)).then_some(self.link_counts),
            ),
            (
                "rdma_monitor",
                matches!(self.rdma, State::On(_)),
                (!matches!(self.rdma, State::Off)).then_some(self.rdma_counts),
            ),
            ("kernel_log", kmsg.is_some(), kmsg.map(|s| (s.read, s.lost))),
        ] {
            out.gauge_u64(
                "rdma_monitor_events_listening",
                "1 when the agent listens to these events (0: off, no permission, or the kernel lacks them; see the snapshot's events section).",
                &[("listener", listener)],
                on.into(),
            );
            if let Some((received, lost)) = counts {
                out.counter(
                    "rdma_monitor_events_received_total",
                    "Events (kernel log records) received between polls since the agent started.",
                    &[("listener", listener)],
                    received,
                );
                out.counter(
                    "rdma_monitor_events_lost_total",
                    "Events the kernel dropped before the agent read them (socket overrun, overwritten kernel log records), or its bounded queue had no room for.",
                    &[("listener", listener)],
                    lost,
                );
            }
        }
        if kmsg.is_some() {
            out.counter(
                "rdma_monitor_kernel_log_records_matched_total",
                "Kernel log records that matched a pattern (kernel_log_event findings).",
                &[],
                self.matched_total,
            );
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
