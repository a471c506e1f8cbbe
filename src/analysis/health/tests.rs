//! Expectations and peer comparison on fixture trees: `node-16hca` (16
//! ConnectX-7 RoCE ports at 400 Gb/s 4X NDR) and `node-mixed`, copied and
//! changed where a test needs a slow, down or erring port.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::analysis::findings::Findings;
use crate::config::{Config, NetworkMode};
use crate::model::{DeviceFilter, NodeReading};
use crate::sources::sysfs::SysfsSource;

const SIXTEEN: &str = "fixtures/sysfs/node-16hca";
const MIXED: &str = "fixtures/sysfs/node-mixed";

fn copy(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(Path::new(fixture), dir.path());
    dir
}

/// Writes `text` into a port attribute of the copied tree.
fn set(root: &Path, device: &str, attr: &str, text: &str) {
    let p = root.join("class/infiniband").join(device).join(attr);
    std::fs::write(p, text).unwrap();
}

fn snapshot(
    now: &NodeReading,
    prev: Option<&NodeReading>,
    elapsed: f64,
) -> crate::snapshot::Snapshot {
    let devices = crate::snapshot::devices(now, prev, elapsed, NetworkMode::Auto);
    crate::snapshot::Snapshot::of_devices(devices, prev.map(|_| elapsed))
}

fn read(root: &Path) -> NodeReading {
    SysfsSource::new(root, DeviceFilter::default(), Duration::from_secs(60)).poll(Instant::now())
}

fn health(expect: &str) -> Health {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("health:\n  expect: {expect}\n")).unwrap();
    Config::load(Some(file.path()), std::iter::empty())
        .unwrap()
        .health
}

/// The findings of one evaluation with these expectations.
fn findings_of(root: &Path, expect: &str) -> Vec<Finding> {
    let mut engine = Findings::new(Config::defaults().analysis);
    engine.set_health(health(expect));
    engine.evaluate(&snapshot(&read(root), None, 0.0), 1_000).0
}

/// node-16hca with mlx5_3 at 200 Gb/s (HDR) among 400 Gb/s siblings.
fn one_at_hdr() -> tempfile::TempDir {
    let tree = copy(SIXTEEN);
    set(
        tree.path(),
        "mlx5_3",
        "ports/1/rate",
        "200 Gb/sec (4X HDR)\n",
    );
    tree
}

fn of_rule<'a>(f: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.id == id).collect()
}

const SIXTEEN_NDR: &str = "[{name: gpu-roce, match: \"mlx5_*\", link_layer: Ethernet, \
                         ports: 16, min_rate_gbps: 400, min_width: 4}]";

#[test]
fn a_met_expectation_raises_nothing() {
    let f = findings_of(Path::new(SIXTEEN), SIXTEEN_NDR);
    assert!(of_rule(&f, "expectation_unmet").is_empty(), "{f:#?}");
    assert_eq!(Verdict::of(&f), Verdict::Healthy);
}

#[test]
fn an_unmet_expectation_names_the_rule_and_each_port_that_falls_short() {
    let tree = one_at_hdr();
    set(
        tree.path(),
        "mlx5_7",
        "ports/1/rate",
        "400 Gb/sec (2X XDR)\n",
    );
    set(tree.path(), "mlx5_9", "ports/1/state", "1: DOWN\n");
    let f = findings_of(tree.path(), SIXTEEN_NDR);
    let unmet = of_rule(&f, "expectation_unmet");
    assert_eq!(unmet.len(), 1, "{f:#?}");
    let u = unmet[0];
    assert_eq!(u.subject.as_deref(), Some("gpu-roce"));
    assert_eq!(u.device, "", "a rule is not an RDMA device");
    assert_eq!(u.severity, Severity::Critical);
    assert_eq!(u.evidence["good"], 13);
    assert_eq!(u.evidence["required"], 16);
    assert_eq!(
        u.evidence["not_good"],
        serde_json::json!([
            "mlx5_3/1: 200 Gb/s < 400 Gb/s",
            "mlx5_7/1: 2X < 4X",
            "mlx5_9/1: DOWN"
        ])
    );
    assert!(u.summary.contains("13 of 16 ports good"), "{}", u.summary);
    assert_eq!(Verdict::of(&f), Verdict::Unhealthy);
}

#[test]
fn a_partially_met_count_says_how_many_ports_are_missing() {
    // 20 ports wanted, 16 exist and all are good: 4 missing.
    let f = findings_of(
        Path::new(SIXTEEN),
        "[{link_layer: Ethernet, ports: 20, severity: warning}]",
    );
    let u = of_rule(&f, "expectation_unmet");
    assert_eq!(u.len(), 1, "{f:#?}");
    assert_eq!(u[0].subject.as_deref(), Some("expect[0]"));
    assert_eq!(u[0].severity, Severity::Warning);
    assert_eq!(u[0].evidence["missing"], 4);
    assert_eq!(u[0].evidence["covered"], 16);
    assert_eq!(Verdict::of(&f), Verdict::Degraded);
    // Fewer wanted than exist, one down: still met.
    let tree = copy(SIXTEEN);
    set(tree.path(), "mlx5_9", "ports/1/state", "1: DOWN\n");
    let f = findings_of(tree.path(), "[{ports: 15, min_rate_gbps: 400}]");
    assert!(of_rule(&f, "expectation_unmet").is_empty(), "{f:#?}");
}

#[test]
fn the_glob_and_the_link_layer_choose_the_ports() {
    let root = Path::new(MIXED);
    // mlx5_0 (IB HDR 200) and mlx5_1 (RoCE 100): only mlx5_0 is InfiniBand.
    let f = findings_of(
        root,
        "[{match: \"mlx5_?\", link_layer: infiniband, ports: 1, min_rate_gbps: 200}]",
    );
    assert!(of_rule(&f, "expectation_unmet").is_empty(), "{f:#?}");
    // Both mlx5 ports at 200: the RoCE one is at 100.
    let f = findings_of(root, "[{match: \"mlx5_*\", min_rate_gbps: 200}]");
    let u = of_rule(&f, "expectation_unmet");
    assert_eq!(u.len(), 1, "{f:#?}");
    assert_eq!(
        u[0].evidence["not_good"],
        serde_json::json!(["mlx5_1/1: 100 Gb/s < 200 Gb/s"])
    );
    // mlx4_0 has an IB port (ACTIVE) and an Ethernet one (DOWN).
    let f = findings_of(root, "[{match: \"mlx4*\", link_layer: Ethernet}]");
    let u = of_rule(&f, "expectation_unmet");
    assert_eq!(
        u[0].evidence["not_good"],
        serde_json::json!(["mlx4_0/2: DOWN"])
    );
    // A glob that matches nothing: the device is missing.
    let f = findings_of(root, "[{match: \"bnxt_re*\"}]");
    let u = of_rule(&f, "expectation_unmet");
    assert_eq!(u[0].evidence["covered"], 0);
    assert_eq!(u[0].evidence["missing"], 1);
}

#[test]
fn a_broken_expectation_is_a_configuration_error() {
    for (expect, says) in [
        ("[{link_layer: OmniPath}]", "link_layer"),
        ("[{min_width: 0}]", "min_width"),
        ("[{match: \"\"}]", "match"),
        ("[{min_rate: 400}]", "unknown field"),
    ] {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("health:\n  expect: {expect}\n")).unwrap();
        let e = Config::load(Some(file.path()), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{expect}: {e}");
    }
}

#[test]
fn a_port_slower_than_its_siblings_is_an_outlier() {
    let tree = one_at_hdr();
    let f = findings_of(tree.path(), "[]");
    let o = of_rule(&f, "port_outlier");
    assert_eq!(o.len(), 1, "{f:#?}");
    assert_eq!((o[0].device.as_str(), o[0].port), ("mlx5_3", Some(1)));
    assert!(
        o[0].summary
            .contains("15 of its 16 MT4129 Ethernet siblings at 400 Gb/s 4X"),
        "{}",
        o[0].summary
    );
    // The untouched tree has none; node-mixed has no two ports of one type and link layer.
    assert!(of_rule(&findings_of(Path::new(SIXTEEN), "[]"), "port_outlier").is_empty());
    assert!(of_rule(&findings_of(Path::new(MIXED), "[]"), "port_outlier").is_empty());
}

/// Adds `by` to a port-1 counter file (`counters/...`, `hw_counters/...`) of
/// the copied tree.
fn bump(root: &Path, device: &str, file: &str, by: u64) {
    let p = root
        .join("class/infiniband")
        .join(device)
        .join("ports/1")
        .join(file);
    let v: u64 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
    std::fs::write(&p, format!("{}\n", v + by)).unwrap();
}

/// The port outliers after 10 s in which `change` bumped counters.
fn outliers_after(change: impl FnOnce(&Path)) -> Vec<Finding> {
    let tree = copy(SIXTEEN);
    let before = read(tree.path());
    change(tree.path());
    let after = read(tree.path());
    let mut engine = Findings::new(Config::defaults().analysis);
    engine.set_health(Config::defaults().health);
    let f = engine
        .evaluate(&snapshot(&after, Some(&before), 10.0), 1_000)
        .0;
    f.into_iter().filter(|f| f.id == "port_outlier").collect()
}

#[test]
fn a_port_with_many_more_errors_than_its_siblings_is_an_outlier() {
    // Over 10 s: mlx5_5 +500 symbol errors (50/s); three others +1 (0.1/s).
    let o = outliers_after(|root| {
        bump(root, "mlx5_5", "counters/symbol_error", 500);
        for d in ["mlx5_1", "mlx5_2", "mlx5_3"] {
            bump(root, d, "counters/symbol_error", 1);
        }
    });
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!(o[0].device, "mlx5_5");
    assert_eq!(o[0].evidence["errors_per_second"], 50.0);
    assert_eq!(o[0].evidence["sibling_median_errors_per_second"], 0.0);
}

/// The retransmissions compared are the `retransmission_rate` finding's
/// (catalog): mlx5's adaptive retransmissions count, sequence errors do not.
#[test]
fn a_port_retransmitting_more_than_its_siblings_is_an_outlier() {
    // Over 10 s: mlx5_5 +300 adaptive retransmissions (30/s); mlx5_6 +300
    // NAK sequence errors (not in the finding's table: no outlier).
    let o = outliers_after(|root| {
        bump(root, "mlx5_5", "hw_counters/roce_adp_retrans", 300);
        bump(root, "mlx5_6", "hw_counters/packet_seq_err", 300);
    });
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!(o[0].device, "mlx5_5");
    assert_eq!(o[0].evidence["retransmits_per_second"], 30.0);
    assert_eq!(o[0].evidence["sibling_median_retransmits_per_second"], 0.0);
}

#[test]
fn the_verdict_follows_the_worst_finding_and_check_prints_one_line_each() {
    let tree = one_at_hdr();
    let f = findings_of(tree.path(), "[]");
    assert_eq!(Verdict::of(&f), Verdict::Degraded);
    assert_eq!(Verdict::of(&f).exit_code(), 1);
    assert_eq!(Verdict::of(&[]).exit_code(), 0);
    assert_eq!(Verdict::Unhealthy.exit_code(), 2);
    assert_eq!(verdict_line(&f), "degraded: 0 critical, 1 warning, 0 info");
    assert!(
        finding_line(&f[0]).starts_with(
            "WARNING port_outlier device=mlx5_3 port=1: mlx5_3/1: runs at 200 Gb/s 4X"
        ),
        "{}",
        finding_line(&f[0])
    );
}

/// The siblings' median from the group's one sorted list equals the median
/// of a list of the siblings made per port (what it replaced).
#[test]
fn the_median_without_a_port_is_its_siblings_median() {
    fn naive(all: &[f64], i: usize) -> Option<f64> {
        let mut v: Vec<f64> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len().is_multiple_of(2) {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        })
    }
    for group in [
        &[3.0][..],
        &[1.0, 50.0][..],
        &[0.0, 0.0, 0.1, 50.0][..],
        &[5.0, 1.0, 1.0, 0.0, 7.5][..],
        &[2.0, 2.0, 2.0, 9.0, 0.5, 0.25, 100.0, 2.0][..],
    ] {
        let mut sorted = group.to_vec();
        sorted.sort_by(f64::total_cmp);
        for (i, v) in group.iter().enumerate() {
            assert_eq!(
                median_without(&sorted, *v),
                naive(group, i),
                "{group:?} {i}"
            );
        }
    }
}

#[test]
fn an_outlier_is_measured_against_its_siblings_median_when_they_err_too() {
    // Over 10 s: mlx5_5 +500 symbol errors (50/s), nine others +10 (1/s):
    // its siblings' median is 1/s (eight at 1/s, six at 0, one at 50/s
    // for each of the nine: not 10 times theirs).
    let o = outliers_after(|root| {
        bump(root, "mlx5_5", "counters/symbol_error", 500);
        for d in 6..15 {
            bump(root, &format!("mlx5_{d}"), "counters/symbol_error", 10);
        }
    });
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!(o[0].device, "mlx5_5");
    assert_eq!(o[0].evidence["errors_per_second"], 50.0);
    assert_eq!(o[0].evidence["sibling_median_errors_per_second"], 1.0);
}
