//! `rdma_monitor_collector_success` is what the shipped `RdmaMonitorCollectorFailing`
//! alert watches: it must drop when a collector's source fails and stay up when
//! there is merely no data (node_exporter's ErrNoData rule).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// One cycle over `root`: each collector's (success, error).
fn collectors(root: &Path) -> Vec<(String, bool, Option<String>)> {
    let out = Command::new(BIN)
        .arg("--once")
        .env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", root)
        .output()
        .expect("run the agent");
    // 3: `--once` read nothing at all (a node without RDMA); the snapshot is still printed.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "--once failed: {out:?}"
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON snapshot");
    snap["collectors"]
        .as_array()
        .expect("collectors in the snapshot")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["success"].as_bool().unwrap(),
                c["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn status<'a>(
    all: &'a [(String, bool, Option<String>)],
    name: &str,
) -> &'a (String, bool, Option<String>) {
    all.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no collector {name} in {all:?}"))
}

#[test]
fn a_failing_counter_file_fails_the_counter_collectors_only() {
    // The bundled tree has an irdma hw counter that is a directory (EISDIR)
    // and one that holds "garbage".
    let all = collectors(&tree());
    let perf = status(&all, "performance");
    assert!(
        !perf.1,
        "performance must fail on broken counter files: {perf:?}"
    );
    let why = perf.2.as_deref().unwrap_or_default();
    assert!(why.contains("irdma0/ports/1/hw_counters/"), "{why}");
    for ok in ["link_status", "topology", "resources", "fabric", "netdev"] {
        assert!(
            status(&all, ok).1,
            "{ok} reads nothing that failed: {all:?}"
        );
    }
}

#[test]
fn no_data_is_not_a_failure() {
    // Same tree without the broken files: every collector succeeds, including
    // over the ports with unsupported (N/A, missing) attributes.
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .args(["-a", "--"])
        .arg(tree())
        .arg(dir.path().join("t"))
        .status()
        .unwrap();
    assert!(ok.success());
    let root = dir.path().join("t");
    let hw = root.join("class/infiniband/irdma0/ports/1/hw_counters");
    std::fs::remove_dir_all(hw.join("ip4InDiscards")).unwrap();
    std::fs::remove_file(hw.join("tcpRetransSegs")).unwrap();
    let all = collectors(&root);
    assert!(all.iter().all(|c| c.1), "{all:?}");

    // A node without any RDMA device: no data, still success.
    let empty = dir.path().join("empty/class/infiniband");
    std::fs::create_dir_all(&empty).unwrap();
    let all = collectors(&dir.path().join("empty"));
    assert!(all.iter().all(|c| c.1), "{all:?}");
}
