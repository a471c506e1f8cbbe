//! What each collector reads, and which failed reads fail it.
//!
//! `rdma_monitor_collector_success` follows node_exporter's rule: a collector
//! fails when a source it reads fails; "no data here" (a missing or unsupported
//! attribute, a node without RDMA) is not a failure. A failing sysfs file is
//! only read again at the next rescan, so a failure counts until it has not
//! been seen for a rescan interval plus two polls: success stays 0 while the
//! file keeps failing, and comes back once it reads again.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::model::ReadError;

/// One kind of kernel input a collector depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// PMA `counters/` and driver `hw_counters/` files.
    Counters,
    /// A port's `state`, `phys_state`, `rate`.
    PortState,
    /// Device and port attributes (GUIDs, firmware, LIDs, GIDs, link layer).
    Attributes,
    /// RDMA netlink requests (STAT_GET, RES_GET, ...).
    RdmaNetlink,
    /// ethtool ioctls and rtnetlink for the ports' netdevs.
    Netdev,
}

/// The inputs a failed read belongs to, from where it happened.
pub fn classify(e: &ReadError) -> &'static [Input] {
    let p = e.path.as_str();
    if p == "rdma_netlink" {
        &[Input::RdmaNetlink]
    } else if p.starts_with('/') {
        // The class directory itself: every sysfs-read input failed.
        &[Input::Counters, Input::PortState, Input::Attributes]
    } else if p.contains("/counters/") || p.contains("/hw_counters/") {
        &[Input::Counters]
    } else if ["/state", "/phys_state", "/rate"]
        .iter()
        .any(|f| p.ends_with(f))
    {
        &[Input::PortState]
    } else {
        &[Input::Attributes]
    }
}

/// Entries kept at most: a tree with thousands of broken files still costs a bounded map.
const MAX_TRACKED: usize = 1024;

/// Failed reads seen recently, by place.
#[derive(Debug, Default)]
pub struct Failures {
    seen: FxHashMap<Box<str>, Seen>,
}

/// The last failure at one place: what it fails, why, when.
type Seen = (&'static [Input], Box<str>, Instant);

impl Failures {
    /// Records this cycle's failed reads (sysfs and netlink `errors`, and one
    /// entry per netdev that reported errors), then forgets what has not failed
    /// for `keep`.
    pub fn update<'a>(
        &mut self,
        now: Instant,
        keep: Duration,
        errors: &[ReadError],
        netdev_errors: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        for e in errors {
            self.note(&e.path, classify(e), &e.reason, now);
        }
        for (netdev, reason) in netdev_errors {
            self.note(netdev, &[Input::Netdev], reason, now);
        }
        if !self.seen.is_empty() {
            self.seen
                .retain(|_, (_, _, last)| now.saturating_duration_since(*last) <= keep);
        }
    }

    fn note(&mut self, place: &str, inputs: &'static [Input], reason: &str, now: Instant) {
        if let Some(entry) = self.seen.get_mut(place) {
            *entry = (inputs, reason.into(), now);
        } else if self.seen.len() < MAX_TRACKED {
            self.seen.insert(place.into(), (inputs, reason.into(), now));
        }
    }

    /// Why a collector reading `reads` failed, or `None` when none of its inputs failed.
    pub fn failure_of(&self, reads: &[Input]) -> Option<String> {
        let mut hits = self
            .seen
            .iter()
            .filter(|(_, (inputs, _, _))| inputs.iter().any(|i| reads.contains(i)));
        let (place, (_, reason, _)) = hits.next()?;
        let more = hits.count();
        Some(if more == 0 {
            format!("read failed: {place}: {reason}")
        } else {
            format!("{} reads failed, e.g. {place}: {reason}", more + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &str) -> ReadError {
        ReadError {
            path: path.into(),
            reason: "EIO".into(),
        }
    }

    #[test]
    fn reads_are_classified_by_place() {
        assert_eq!(
            classify(&err("mlx5_0/ports/1/counters/symbol_error")),
            &[Input::Counters]
        );
        assert_eq!(
            classify(&err("irdma0/ports/1/hw_counters/ip4InDiscards")),
            &[Input::Counters]
        );
        assert_eq!(classify(&err("mlx5_0/hw_counters/x")), &[Input::Counters]);
        assert_eq!(classify(&err("mlx5_0/ports/1/state")), &[Input::PortState]);
        assert_eq!(classify(&err("mlx5_0/fw_ver")), &[Input::Attributes]);
        assert_eq!(classify(&err("rdma_netlink")), &[Input::RdmaNetlink]);
        assert_eq!(classify(&err("/sys/class/infiniband")).len(), 3);
    }

    #[test]
    fn a_failure_lasts_until_it_was_not_seen_for_keep() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(10);
        let mut f = Failures::default();
        f.update(
            t0,
            keep,
            &[err("mlx5_0/ports/1/counters/x")],
            std::iter::empty(),
        );
        let why = f.failure_of(&[Input::Counters]).expect("counters failed");
        assert!(why.contains("mlx5_0/ports/1/counters/x: EIO"), "{why}");
        assert_eq!(f.failure_of(&[Input::PortState, Input::Netdev]), None);
        // Not re-read (skipped until the rescan): still failing.
        f.update(t0 + Duration::from_secs(5), keep, &[], std::iter::empty());
        assert!(f.failure_of(&[Input::Counters]).is_some());
        // A rescan read it fine: forgotten after `keep`.
        f.update(t0 + Duration::from_secs(11), keep, &[], std::iter::empty());
        assert_eq!(f.failure_of(&[Input::Counters]), None);
    }

    #[test]
    fn netdev_errors_fail_netdev_readers_and_count() {
        let t0 = Instant::now();
        let mut f = Failures::default();
        let errs = [
            ("eth0", "ETHTOOL_GSTATS: EIO"),
            ("eth1", "rtnetlink: EBUSY"),
        ];
        f.update(t0, Duration::from_secs(1), &[], errs.into_iter());
        let why = f.failure_of(&[Input::Netdev]).expect("netdev failed");
        assert!(why.starts_with("2 reads failed"), "{why}");
    }

    #[test]
    fn the_map_is_bounded() {
        let t0 = Instant::now();
        let mut f = Failures::default();
        let errs: Vec<ReadError> = (0..5000)
            .map(|i| err(&format!("d/ports/1/counters/c{i}")))
            .collect();
        f.update(t0, Duration::from_secs(1), &errs, std::iter::empty());
        assert_eq!(f.seen.len(), MAX_TRACKED);
    }
}
