//! The fabric verdicts on sweeps made from ibnetdiscover output recorded
//! under ibsim (fixtures/ibnetdiscover/README.md), through the findings engine.

use std::sync::Arc;

use crate::analysis::findings::Findings;
use crate::config::Config;
use crate::mad_worker::{FabricPort, MadView, Reading};
use crate::model::finding::{Finding, Severity};
use crate::snapshot::Snapshot;
use crate::sources::ibnetdiscover::{self, Topology};
use crate::sources::mad::discovery::{Fabric, Link, Node, PortRecord};
use crate::sources::mad::pma::PortCounters;

const GOOD: &str = include_str!("../../../fixtures/ibnetdiscover/ibsim-good.txt");
const UNLINKED: &str = include_str!("../../../fixtures/ibnetdiscover/ibsim-unlinked.txt");
const DEGRADED: &str = include_str!("../../../fixtures/ibnetdiscover/ibsim-degraded.txt");

const ISL: &str = "MF0;leaf1:MSB7800/U1 (0x248a0703009c0a10) port 7 <-> MF0;leaf2:MSB7800/U1 (0x248a0703009c0b20) port 7";
const NODE03_LINK: &str =
    "node03 HCA-1 (0x0c42a10300e1a030) port 1 <-> MF0;leaf2:MSB7800/U1 (0x248a0703009c0b20) port 1";

/// What the sweep would have found on the fabric the file describes: ports
/// as ibsim reports them (supported 1x-12x; enabled up to the file's width
/// and speed, as ibsim sets them from its topology).
fn fabric_of(text: &str) -> Fabric {
    let t: Topology = ibnetdiscover::parse(text).unwrap();
    let mut nodes: Vec<Node> = t
        .nodes
        .iter()
        .map(|n| Node {
            guid: n.guid,
            node_type: n.node_type,
            num_ports: n.num_ports,
            description: n.description.clone(),
            ports: if n.node_type == 2 {
                vec![PortRecord {
                    port: 0,
                    lid: 1,
                    ..PortRecord::default()
                }]
            } else {
                Vec::new()
            },
            ..Node::default()
        })
        .collect();
    for l in &t.links {
        let (lanes, speed) = l.rate.clone().unwrap();
        let (w, wmask) = if lanes == 1 { (1, 1) } else { (2, 3) };
        let (s, smask) = if speed == "FDR" { (1, 1) } else { (2, 3) };
        for (g, p) in [l.a, l.b] {
            let n = nodes.iter_mut().find(|n| n.guid == g).unwrap();
            n.ports.push(PortRecord {
                port: p,
                lid: 10,
                state: 4,
                phys_state: 5,
                width_active: w,
                speed_ext_active: s,
                width_supported: 0x1f,
                width_enabled: wmask,
                speed_ext_supported: 7,
                speed_ext_enabled: smask,
                ..PortRecord::default()
            });
        }
    }
    Fabric {
        nodes,
        links: t.links.iter().map(|l| Link { a: l.a, b: l.b }).collect(),
        ..Fabric::default()
    }
}

fn snap(fabric: Fabric, counters: Vec<FabricPort>, at_ms: u64) -> Snapshot {
    let mut s = Snapshot::of_devices(Vec::new(), Some(1.0));
    s.timestamp_unix_ms = at_ms;
    s.mad = Some(Arc::new(MadView {
        fabric: Some(Arc::new(fabric)),
        fabric_counters: counters,
        fabric_counters_unix_ms: Some(at_ms),
        ..MadView::default()
    }));
    s
}

fn engine(expected: &str) -> Findings {
    let mut e = Findings::new(Config::defaults().analysis);
    e.set_expected_topology(expected);
    e
}

fn of<'a>(found: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    found.iter().filter(|f| f.id == id).collect()
}

fn subjects(found: &[Finding], id: &str) -> Vec<String> {
    let mut v: Vec<String> = of(found, id)
        .iter()
        .map(|f| f.subject.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

#[test]
fn pulled_cables_are_lost_with_both_ends_named_and_clear_when_back() {
    let mut e = engine("");
    let (first, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    assert!(first.is_empty(), "{first:?}");
    let (cut, news) = e.evaluate(&snap(fabric_of(UNLINKED), Vec::new(), 2_000), 2_000);
    assert!(news, "lost cables are news");
    assert_eq!(
        subjects(&cut, "fabric_link_lost"),
        vec![ISL.to_string(), NODE03_LINK.to_string()]
    );
    assert_eq!(
        subjects(&cut, "fabric_node_lost"),
        vec!["node03 HCA-1 (0x0c42a10300e1a030)".to_string()]
    );
    for f in &cut {
        assert_eq!(f.device, "", "{f:?}: the subject names it, not device");
        assert_eq!(f.severity, Severity::Warning);
    }
    let isl = of(&cut, "fabric_link_lost")
        .into_iter()
        .find(|f| f.subject.as_deref() == Some(ISL))
        .unwrap();
    let ends = &isl.evidence["ends"];
    assert_eq!(ends[0]["node_guid"], "0x248a0703009c0a10");
    assert_eq!(ends[0]["port"], 7);
    assert_eq!(ends[1]["node_desc"], "MF0;leaf2:MSB7800/U1");
    assert_eq!(
        isl.evidence["known_from"],
        serde_json::json!(["earlier_sweep"])
    );
    // Still gone a sweep later: the finding stays.
    let (still, _) = e.evaluate(&snap(fabric_of(UNLINKED), Vec::new(), 3_000), 3_000);
    assert_eq!(of(&still, "fabric_link_lost").len(), 2);
    // Cables back: the losses clear; the returning cables are news of their own.
    let (back, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 4_000), 4_000);
    assert!(of(&back, "fabric_link_lost").is_empty(), "{back:?}");
    assert!(of(&back, "fabric_node_lost").is_empty());
    assert_eq!(
        subjects(&back, "fabric_link_added"),
        vec![ISL.to_string(), NODE03_LINK.to_string()]
    );
    assert!(
        of(&back, "fabric_link_added")
            .iter()
            .all(|f| f.severity == Severity::Info)
    );
}

#[test]
fn the_same_sweep_object_is_judged_once() {
    let mut e = engine("");
    let good = snap(fabric_of(GOOD), Vec::new(), 1_000);
    e.evaluate(&good, 1_000);
    let cut = snap(fabric_of(UNLINKED), Vec::new(), 2_000);
    let (a, _) = e.evaluate(&cut, 2_000);
    // Later cycles see the same sweep (same Arc) until the next one.
    let (b, _) = e.evaluate(&cut, 2_500);
    assert_eq!(of(&a, "fabric_link_lost").len(), 2);
    assert_eq!(of(&b, "fabric_link_lost").len(), 2);
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn an_expected_topology_with_one_link_more_raises_exactly_that_link() {
    let dir = tempfile::tempdir().unwrap();
    // The fabric lacks the ISL and node03's cable; the file has only the
    // ISL more than a fabric that lacks just node03: build that fabric.
    let mut fabric = fabric_of(GOOD);
    fabric
        .links
        .retain(|l| !(l.a == (0x248a_0703_009c_0a10, 7) || l.b == (0x248a_0703_009c_0a10, 7)));
    let path = write(&dir, "expected.topo", GOOD);
    let mut e = engine(&path);
    let (found, _) = e.evaluate(&snap(fabric, Vec::new(), 1_000), 1_000);
    assert_eq!(subjects(&found, "fabric_link_lost"), vec![ISL.to_string()]);
    let lost = of(&found, "fabric_link_lost")[0];
    assert_eq!(
        lost.evidence["known_from"],
        serde_json::json!(["expected_topology"])
    );
    assert!(of(&found, "fabric_node_lost").is_empty(), "{found:?}");
    assert!(of(&found, "fabric_link_added").is_empty(), "{found:?}");
}

#[test]
fn the_expected_topology_names_lost_nodes_and_added_cables() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&write(&dir, "good.topo", GOOD));
    let (found, _) = e.evaluate(&snap(fabric_of(UNLINKED), Vec::new(), 1_000), 1_000);
    assert_eq!(
        subjects(&found, "fabric_link_lost"),
        vec![ISL.to_string(), NODE03_LINK.to_string()]
    );
    assert_eq!(of(&found, "fabric_node_lost").len(), 1);
    // The other way round: the fabric has two cables the file does not list.
    let mut e = engine(&write(&dir, "cut.topo", UNLINKED));
    let (found, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    assert_eq!(
        subjects(&found, "fabric_link_added"),
        vec![ISL.to_string(), NODE03_LINK.to_string()]
    );
    assert!(of(&found, "fabric_link_lost").is_empty());
}

#[test]
fn a_narrower_link_is_degraded_against_its_past_and_the_expected_file() {
    let mut e = engine("");
    e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    let (found, _) = e.evaluate(&snap(fabric_of(DEGRADED), Vec::new(), 2_000), 2_000);
    let d = of(&found, "fabric_link_degraded");
    assert_eq!(d.len(), 1, "{found:?}");
    assert_eq!(d[0].subject.as_deref(), Some(ISL));
    assert_eq!(d[0].evidence["active"], "1xEDR");
    assert_eq!(d[0].evidence["best_seen"], "4xEDR");
    assert!(d[0].summary.contains("earlier sweep"), "{}", d[0].summary);
    let (back, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 3_000), 3_000);
    assert!(of(&back, "fabric_link_degraded").is_empty());

    // A fresh agent knows no past: the expected file says 4xEDR.
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(&write(&dir, "good.topo", GOOD));
    let (found, _) = e.evaluate(&snap(fabric_of(DEGRADED), Vec::new(), 1_000), 1_000);
    let d = of(&found, "fabric_link_degraded");
    assert_eq!(d.len(), 1, "{found:?}");
    assert_eq!(d[0].evidence["expected"], "4xEDR");
    // node02's cable runs at 4xFDR, as the file says: not degraded.
    assert!(!d[0].summary.contains("node02"));
}

#[test]
fn a_link_below_what_both_ends_support_is_degraded_without_history() {
    let mut f = fabric_of(GOOD);
    // Both ends of the ISL enabled for 4x but trained at 1x (a lane lost).
    for n in &mut f.nodes {
        for p in &mut n.ports {
            if p.port == 7 && n.node_type == 2 {
                p.width_active = 1;
            }
        }
    }
    let mut e = engine("");
    let (found, _) = e.evaluate(&snap(f, Vec::new(), 1_000), 1_000);
    let d = of(&found, "fabric_link_degraded");
    assert_eq!(d.len(), 1, "{found:?}");
    assert_eq!(d[0].evidence["capable"], "4xEDR");
    assert!(
        d[0].summary.contains("both ends support 4xEDR"),
        "{}",
        d[0].summary
    );
}

#[test]
fn a_broken_expected_file_is_a_finding_and_sweeps_are_still_compared() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "broken.topo",
        "caguid=0x1\nCa 1 \"H-1\"\n[1] \"nobody\"[1]\n",
    );
    let mut e = engine(&path);
    let (found, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    let bad = of(&found, "fabric_expected_topology_invalid");
    assert_eq!(bad.len(), 1, "{found:?}");
    assert_eq!(bad[0].subject.as_deref(), Some(path.as_str()));
    assert!(bad[0].summary.contains("line 3"), "{}", bad[0].summary);
    let (cut, _) = e.evaluate(&snap(fabric_of(UNLINKED), Vec::new(), 2_000), 2_000);
    assert_eq!(of(&cut, "fabric_link_lost").len(), 2);
    // Fixed file: read again at the next sweep, the finding clears.
    std::fs::write(&path, UNLINKED).unwrap();
    let (fixed, _) = e.evaluate(&snap(fabric_of(UNLINKED), Vec::new(), 3_000), 3_000);
    assert!(
        of(&fixed, "fabric_expected_topology_invalid").is_empty(),
        "{fixed:?}"
    );
    // A missing file is one too.
    let mut e = engine(&dir.path().join("none").display().to_string());
    let (found, _) = e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    assert!(
        of(&found, "fabric_expected_topology_invalid")[0]
            .summary
            .contains("ENOENT")
    );
}

#[test]
fn a_sweep_cut_short_loses_nothing() {
    let mut e = engine("");
    e.evaluate(&snap(fabric_of(GOOD), Vec::new(), 1_000), 1_000);
    let mut cut = fabric_of(UNLINKED);
    cut.unexplored_paths = 3;
    let (found, _) = e.evaluate(&snap(cut, Vec::new(), 2_000), 2_000);
    assert!(found.is_empty(), "{found:?}");
}

fn port(guid: u64, port: u8, counters: &[(&'static str, u64)]) -> FabricPort {
    FabricPort {
        node_guid: guid,
        node_desc: String::new(),
        node_type: 2,
        lid: 1,
        port,
        counters: Reading::Counters {
            counters: PortCounters {
                lid: 1,
                port,
                capability_mask: 0,
                extended: true,
                counters: counters.to_vec(),
                details_error: None,
                read_at: None,
            },
            saturated: Vec::new(),
        },
        wait_clock: None,
    }
}

const LEAF1: u64 = 0x248a_0703_009c_0a10;

#[test]
fn switch_port_hot_spots_over_the_thresholds() {
    let mut e = engine("");
    let base = [
        ("symbol_error", 100),
        ("link_downed", 2),
        ("port_rcv_errors", 0),
        ("port_xmit_discards", 1000),
    ];
    let (first, _) = e.evaluate(&snap(fabric_of(GOOD), vec![port(LEAF1, 7, &base)], 0), 0);
    assert!(first.is_empty(), "no rate from one reading: {first:?}");
    // One minute later: 11 symbol errors (> 10/min), one link down (> 0),
    // 50 discards (< 100/min), receive errors unchanged.
    let later = [
        ("symbol_error", 111),
        ("link_downed", 3),
        ("port_rcv_errors", 0),
        ("port_xmit_discards", 1050),
    ];
    let (found, _) = e.evaluate(
        &snap(fabric_of(GOOD), vec![port(LEAF1, 7, &later)], 60_000),
        60_000,
    );
    let hot = of(&found, "fabric_port_errors");
    assert_eq!(hot.len(), 1, "{found:?}");
    assert_eq!(
        hot[0].subject.as_deref(),
        Some("MF0;leaf1:MSB7800/U1 (0x248a0703009c0a10) port 7")
    );
    assert_eq!(hot[0].evidence["counter"], "symbol_error,link_downed");
    assert_eq!(hot[0].evidence["peer"]["node_desc"], "MF0;leaf2:MSB7800/U1");
    // Quiet since: it clears. A counter that went down (cleared) is no rate.
    let reset = [("symbol_error", 0), ("link_downed", 0)];
    let (quiet, _) = e.evaluate(
        &snap(fabric_of(GOOD), vec![port(LEAF1, 7, &reset)], 120_000),
        120_000,
    );
    assert!(of(&quiet, "fabric_port_errors").is_empty(), "{quiet:?}");
}

#[test]
fn a_port_whose_counters_cannot_be_read_is_a_finding() {
    let mut e = engine("");
    let dead = FabricPort {
        counters: Reading::Error("PortCounters to LID 5: timed out".into()),
        ..port(0x248a_0703_009c_0b20, 1, &[])
    };
    let (found, _) = e.evaluate(&snap(fabric_of(GOOD), vec![dead], 1_000), 1_000);
    let u = of(&found, "fabric_port_unreadable");
    assert_eq!(u.len(), 1, "{found:?}");
    assert_eq!(
        u[0].subject.as_deref(),
        Some("MF0;leaf2:MSB7800/U1 (0x248a0703009c0b20) port 1")
    );
    assert!(
        u[0].summary.contains("cable to node03 HCA-1"),
        "{}",
        u[0].summary
    );
    assert!(u[0].summary.contains("timed out"));
    assert_eq!(u[0].evidence["peer"]["node_guid"], "0x0c42a10300e1a030");
}
