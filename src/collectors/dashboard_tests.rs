//! The Grafana dashboard against a scrape that has netdevs. The fixture tree
//! the deploy test scrapes has none (the agent reads netdevs from live
//! interfaces), so here every collector runs on netdevs whose `ethtool -S`
//! names are the drivers' own (fixtures/ethtool/, from mlx5 counters.rst,
//! bnxt_ethtool.c, ice_ethtool.c) with the ethtool netlink statistics and
//! link settings a real port has; every netdev family the dashboard queries
//! must come out of that scrape. It runs in `cargo test --all-targets` (make
//! unit-test); tests/deploy/run.sh checks the rest of the dashboard against
//! the binary's real scrape.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::REGISTRY;
use crate::config::Config;
use crate::metrics::Builder;
use crate::model::netdev::{EthtoolNl, LinkSettings, NetdevReading, NetdevStatic};
use crate::model::{Counter, NodeReading};

fn fixture(name: &str) -> String {
    let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A netdev of `driver` with every name of its fixture list, each a distinct value.
fn netdev(name: &str, list: &str, base: u64) -> NetdevReading {
    let ethtool_stats = fixture(list)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| Counter {
            name: l.trim().into(),
            value: base + i as u64,
        })
        .collect();
    NetdevReading {
        name: name.into(),
        link: None,
        ethtool_stats,
        ethtool_nl: Some(EthtoolNl {
            pause_tx_frames: Some(base),
            pause_rx_frames: Some(base + 1),
            fec_corrected: Some(base + 2),
            fec_uncorrectable: Some(0),
            fec_corrected_bits: Some(base + 3),
            link_up: Some(true),
            link_down_events: Some(1),
            ..EthtoolNl::default()
        }),
        info: Arc::new(NetdevStatic {
            link_settings: Some(LinkSettings {
                speed_mbps: Some(400_000),
                duplex: Some(1),
                autoneg: false,
                port: 0,
            }),
            ..NetdevStatic::default()
        }),
        errors: Vec::new(),
    }
}

/// The `rdma_*` names the dashboard's queries and variables use.
fn dashboard_metrics() -> BTreeSet<String> {
    let dash: serde_json::Value =
        serde_json::from_str(&fixture("deploy/grafana/rdma-monitor.json")).unwrap();
    let mut exprs: Vec<&str> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.extend(t["expr"].as_str());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        exprs.extend(v["query"].as_str());
    }
    let mut out = BTreeSet::new();
    for e in exprs {
        let mut rest = e;
        while let Some(at) = rest.find("rdma_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            // A name, not the tail of another identifier.
            let starts =
                at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if starts {
                out.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn dashboard_netdev_families_are_in_a_scrape_with_netdevs() {
    let node = NodeReading {
        netdevs: vec![
            netdev("eth_mlx5", "fixtures/ethtool/mlx5-stat-names.txt", 1000),
            netdev("eth_bnxt", "fixtures/ethtool/bnxt-stat-names.txt", 2000),
            netdev("eth_ice", "fixtures/ethtool/ice-stat-names.txt", 3000),
        ],
        ..NodeReading::default()
    };
    let snapshot = super::test_snapshot(&node);
    let cycle = super::test_cycle(&node, &snapshot);
    let config = Config::defaults();
    let mut b = Builder::new();
    for r in REGISTRY {
        (r.factory)(&config)
            .collect(&cycle, &mut b)
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
    let mut text = Vec::new();
    b.finish().render(&mut text);
    let text = String::from_utf8(text).unwrap();
    let scraped: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or(""))
        .collect();
    let netdev: Vec<String> = dashboard_metrics()
        .into_iter()
        .filter(|m| m.starts_with("rdma_netdev_") || m.starts_with("rdma_pfc_"))
        .collect();
    assert!(netdev.len() >= 10, "{netdev:?}");
    let missing: Vec<&String> = netdev
        .iter()
        .filter(|m| !scraped.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries netdev families no scrape has: {missing:?}"
    );
}
