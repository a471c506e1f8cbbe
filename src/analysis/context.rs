//! The compact picture sent for AI analysis: active findings first, then
//! what moved (rates and deltas, busiest first), then the node's
//! configuration and fabric summary — cut to a size budget, dropping the
//! least useful parts first. The full snapshot of a 16-HCA node is far too
//! big to send every few minutes.

use serde_json::{Value, json};

use crate::snapshot::{Snapshot, SnapshotDoc};

/// Counters listed per port, busiest first, before the budget trims further.
const MAX_COUNTERS_PER_PORT: usize = 24;

fn port_entries(snap: &Snapshot, per_port: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for d in &snap.devices {
        for p in &d.ports {
            let mut moved: Vec<(&str, u64, f64)> = p
                .counters
                .iter()
                .chain(p.hw_counters.iter())
                .filter_map(|(n, v)| match (v.delta, v.rate) {
                    (Some(delta), Some(rate)) if delta > 0 => Some((&**n, delta, rate)),
                    _ => None,
                })
                .collect();
            moved.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
            let flagged: Vec<String> = p
                .counters
                .iter()
                .chain(p.hw_counters.iter())
                .filter_map(|(n, v)| {
                    v.flag.map(|f| match f {
                        crate::snapshot::Flag::Reset => format!("{n}:reset"),
                        crate::snapshot::Flag::Saturated => format!("{n}:saturated"),
                    })
                })
                .collect();
            let mut e = json!({
                "port": format!("{}/{}", d.info.name, p.port),
                "transport": p.transport,
                "state": p.state.as_ref().map(|s| s.name.as_str()),
                "phys": p.phys_state.as_ref().map(|s| s.name.as_str()),
                "rate_gbps": p.rate.as_ref().map(|r| r.gbit_per_sec),
                "width": p.rate.as_ref().and_then(|r| r.width),
            });
            if let Some(t) = &p.throughput {
                e["tx_Bps"] = json!(t.transmit_bytes_per_second.map(f64::round));
                e["rx_Bps"] = json!(t.receive_bytes_per_second.map(f64::round));
            }
            if !moved.is_empty() {
                let counters: serde_json::Map<String, Value> = moved
                    .iter()
                    .take(per_port)
                    .map(|(n, d, r)| {
                        (
                            (*n).to_string(),
                            json!({"delta": d, "per_s": (r * 1000.0).round() / 1000.0}),
                        )
                    })
                    .collect();
                e["moved"] = Value::Object(counters);
                if moved.len() > per_port {
                    e["moved_not_listed"] = json!(moved.len() - per_port);
                }
            }
            if !flagged.is_empty() {
                e["flags"] = json!(flagged);
            }
            out.push(e);
        }
    }
    out
}

fn devices(snap: &Snapshot) -> Vec<Value> {
    snap.devices
        .iter()
        .map(|d| {
            json!({
                "name": &*d.info.name,
                "fw": d.info.fw_ver,
                "board": d.info.board_id,
                "hca": d.info.hca_type,
                "driver": d.info.driver,
                "ports": d.ports.len(),
            })
        })
        .collect()
}

fn fabric(snap: &Snapshot) -> Option<Value> {
    let f = snap.mad.as_ref()?.fabric.as_ref()?;
    Some(json!({
        "nodes": f.nodes.len(),
        "switches": f.nodes.iter().filter(|n| n.node_type == 2).count(),
        "links": f.links.len(),
        "sweep_errors": f.errors.len(),
    }))
}

/// The largest consumers of the fabric (Slurm jobs, pods, units,
/// processes), by QPs: kind, id, labels, QPs per port, pinned MR bytes.
fn top_consumers(snap: &Snapshot) -> Vec<Value> {
    snap.consumers
        .iter()
        .take(TOP_CONSUMERS)
        .map(|c| {
            json!({
                "kind": c.kind, "id": c.id, "labels": c.labels,
                "qps": c.ports.iter().map(|p| json!({"port": format!("{}/{}", p.device, p.port), "qps": p.qps, "by_state": p.qps_by_state})).collect::<Vec<_>>(),
                "mr_bytes": c.mr_bytes,
            })
        })
        .collect()
}

const TOP_CONSUMERS: usize = 5;

/// The context as JSON text of at most `budget` bytes: trimmed in this
/// order — counters per port, the fabric summary, the device list, the
/// findings' evidence, the least severe findings, then the quietest ports.
pub fn build(doc: &SnapshotDoc, budget: usize) -> String {
    let snap = &doc.snapshot;
    let finding = |f: &crate::model::finding::Finding, with_evidence: bool| {
        let mut v = json!({
            "id": f.id, "severity": f.severity, "where": match f.port {
                Some(p) => format!("{}/{p}", f.place()),
                None => f.place().to_string(),
            },
            "summary": f.summary,
        });
        if with_evidence {
            v["evidence"] = json!(f.evidence);
        }
        v
    };
    let mut with_evidence = true;
    let mut max_findings = usize::MAX;
    let mut per_port = MAX_COUNTERS_PER_PORT;
    let mut with_devices = true;
    let mut with_fabric = true;
    let mut with_consumers = true;
    let mut max_ports = usize::MAX;
    loop {
        let mut ports = port_entries(snap, per_port);
        // Ports with findings or flags first, then the busiest.
        ports.sort_by_key(|p| {
            let name = p["port"].as_str().unwrap_or("").to_string();
            let has_finding = doc
                .findings
                .iter()
                .any(|f| f.port.is_some_and(|n| format!("{}/{n}", f.device) == name));
            (
                !has_finding,
                p.get("flags").is_none(),
                p.get("moved").is_none(),
            )
        });
        let total_ports = ports.len();
        ports.truncate(max_ports);
        // Findings are sorted most severe first: the tail is what a cut loses.
        let findings: Vec<Value> = doc
            .findings
            .iter()
            .take(max_findings)
            .map(|f| finding(f, with_evidence))
            .collect();
        let mut ctx = json!({
            "host": snap.hostname,
            "time": snap.timestamp,
            "interval_s": snap.interval_seconds,
            "findings": findings,
            "ports": ports,
        });
        if doc.findings.len() > max_findings {
            ctx["findings_not_listed"] = json!(doc.findings.len() - max_findings);
        }
        if total_ports > max_ports {
            ctx["ports_not_listed"] = json!(total_ports - max_ports);
        }
        if with_devices {
            ctx["devices"] = json!(devices(snap));
        }
        if with_consumers && !snap.consumers.is_empty() {
            ctx["top_consumers"] = json!(top_consumers(snap));
        }
        if with_fabric && let Some(f) = fabric(snap) {
            ctx["fabric"] = f;
        }
        let text = ctx.to_string();
        if text.len() <= budget {
            return text;
        }
        // Trim, least useful first.
        if per_port > 4 {
            per_port /= 2;
        } else if with_fabric {
            with_fabric = false;
        } else if with_consumers {
            with_consumers = false;
        } else if with_devices {
            with_devices = false;
        } else if with_evidence {
            with_evidence = false;
        } else if max_findings > 8 && doc.findings.len() > 8 {
            max_findings = max_findings.min(doc.findings.len()) / 2;
        } else if max_ports > 1 && total_ports > 0 {
            max_ports = max_ports.min(total_ports) / 2;
        } else {
            return text; // as small as it gets
        }
    }
}

/// The system prompt: an RDMA fabric expert reading the agent's context.
pub const SYSTEM_PROMPT: &str = "You are an expert in RDMA networks (InfiniBand and RoCE) on HPC and AI \
clusters: HCAs, switches, cables and transceivers, subnet management, PFC/ECN/DCQCN congestion \
control, and the Linux RDMA stack. You receive a JSON summary from rdma-monitor, an agent on one \
compute node: active findings (deterministic rules) first, then per-port state, link rate, and the \
counters that moved in the last interval with per-second rates, then device firmware and a fabric \
summary. Explain what is wrong and why, most urgent first, citing the counters that show it; say \
what an operator should check or do next; say plainly when everything looks healthy. Be concise.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Agent;
    use crate::config::Config;
    use crate::exporters::Published;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// Moves every counter of the tree by a different amount.
    fn bump(dir: &Path, n: &mut u64) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                bump(&p, n);
            } else if p
                .parent()
                .is_some_and(|d| d.ends_with("counters") || d.ends_with("hw_counters"))
                && !p.ends_with("lifespan")
                && let Ok(v) = std::fs::read_to_string(&p).map(|s| s.trim().parse::<u64>())
                && let Ok(v) = v
            {
                *n += 7;
                std::fs::write(&p, format!("{}\n", v + *n)).unwrap();
            }
        }
    }

    /// The 16-HCA fixture with every counter moving: the context stays
    /// inside its budget, and says how much it left out.
    #[test]
    fn sixteen_hcas_fit_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca");
        crate::testutil::copy_tree(&src, dir.path());
        let mut config = Config::defaults();
        config.general.sysfs_root = dir.path().to_path_buf();
        let mut agent = Agent::with_netlink(
            config,
            Arc::new(Published::new(std::time::Duration::from_secs(10))),
            None,
        );
        agent.cycle();
        let mut n = 0;
        bump(&dir.path().join("devices"), &mut n);
        let doc = agent.cycle();
        let full = build(&doc, usize::MAX);
        let snapshot_json = doc.json().len();
        let ctx = build(&doc, 16_000);
        eprintln!(
            "16-HCA fixture: snapshot {snapshot_json} B, untrimmed context {} B, context at the 16000 B budget {} B",
            full.len(),
            ctx.len()
        );
        assert!(ctx.len() <= 16_000, "{}", ctx.len());
        assert!(
            full.len() > 16_000,
            "the fixture is big enough to need trimming"
        );
        let v: Value = serde_json::from_str(&ctx).unwrap();
        let listed = v["ports"].as_array().unwrap().len() as u64;
        assert_eq!(
            listed + v["ports_not_listed"].as_u64().unwrap_or(0),
            16,
            "ports accounted for"
        );
        let findings = v["findings"].as_array().unwrap().len() as u64;
        assert_eq!(
            findings + v["findings_not_listed"].as_u64().unwrap_or(0),
            doc.findings.len() as u64
        );
        eprintln!(
            "  {} findings ({} listed), {listed} ports listed",
            doc.findings.len(),
            findings
        );
    }
}
