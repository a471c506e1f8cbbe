//! `rdma-monitor check` on the bundled trees: the verdict as the exit status
//! (0 healthy, 1 degraded, 2 unhealthy, 3 cannot judge; with `--npd` 0 / 1 /
//! 2 as node-problem-detector reads them) and one line per finding.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");

fn tree(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sysfs")
        .join(name)
}

/// A config file in `dir`: the fixture `tree_name`, no listener, `health` as the health section.
fn write_config(dir: &Path, tree_name: &str, health: &str) -> PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "general:\n  sysfs_root: {}\n  snapshot_dir: {}\nprometheus:\n  enabled: false\n{health}",
            tree(tree_name).display(),
            dir.join("snapshots").display()
        ),
    )
    .unwrap();
    config
}

/// Runs `rdma-monitor check <args>` on `tree` with `health` as the health section.
fn check(tree_name: &str, health: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), tree_name, health);
    let out: Output = Command::new(BIN)
        .env_clear()
        .arg("check")
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_healthy_node_exits_0() {
    let health = "health:\n  expect:\n    - {link_layer: Ethernet, ports: 16, min_rate_gbps: 400, min_width: 4}\n";
    let (code, out, err) = check("node-16hca", health, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "healthy: 0 critical, 0 warning, 0 info\n");
}

#[test]
fn an_unmet_expectation_exits_2_and_names_the_rule() {
    let health = "health:\n  expect:\n    - {name: ndr, link_layer: Ethernet, ports: 17}\n";
    let (code, out, err) = check("node-16hca", health, &[]);
    assert_eq!(code, 2, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "unhealthy: 1 critical, 0 warning, 0 info");
    assert!(
        lines[1].starts_with("CRITICAL expectation_unmet subject=ndr: "),
        "{out}"
    );
    assert!(lines[1].contains("1 port(s) missing"), "{out}");
    assert_eq!(lines.len(), 2);
    // node-problem-detector: 1 is "problem".
    let (code, _, _) = check("node-16hca", health, &["--npd"]);
    assert_eq!(code, 1);
}

#[test]
fn warnings_only_exit_1_and_npd_calls_that_ok() {
    // node-mixed: two saturated counters (warning), a disabled port (info).
    let (code, out, err) = check("node-mixed", "", &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.starts_with("degraded: 0 critical, 2 warning, 1 info\n"));
    let (code, _, _) = check("node-mixed", "", &["--npd"]);
    assert_eq!(code, 0);
}

#[test]
fn what_cannot_be_judged_is_not_a_verdict() {
    // A broken rule: 3 (2 would read as "unhealthy").
    let (code, out, err) = check("node-16hca", "health:\n  expect: [{min_width: 0}]\n", &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("min_width"), "{err}");
    let (code, _, _) = check(
        "node-16hca",
        "health:\n  expect: [{min_width: 0}]\n",
        &["--npd"],
    );
    assert_eq!(code, 2);
    // Nothing to read: 3, unless a rule says what should be there.
    let (code, _, err) = check("no-such-tree", "", &[]);
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = check("no-such-tree", "health:\n  expect: [{ports: 8}]\n", &[]);
    assert_eq!(code, 2, "{out}");
    // A bad argument.
    let out = Command::new(BIN)
        .args(["check", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// The NHC module, sourced by bash with NHC's `die` and `log` stubbed, on
/// the real binary: unhealthy dies with the finding, the rest pass.
#[test]
fn the_nhc_module_drains_only_an_unhealthy_node() {
    let nhc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/rdma_monitor.nhc");
    let run = |tree_name: &str, health: &str| -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), tree_name, health);
        let script = format!(
            "die() {{ echo \"DIE $*\"; }}; log() {{ echo \"LOG $*\"; }}; . '{}'; check_rdma_monitor '{}'",
            nhc.display(),
            config.display()
        );
        let out = Command::new("bash")
            .env_clear()
            .env("RDMA_MONITOR", BIN)
            .args(["-c", &script])
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let (rc, out) = run(
        "node-16hca",
        "health:\n  expect: [{name: ndr, ports: 17}]\n",
    );
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.starts_with("DIE 1 check_rdma_monitor: CRITICAL expectation_unmet subject=ndr: "),
        "{out}"
    );
    let (rc, out) = run("node-mixed", "");
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.starts_with("LOG check_rdma_monitor: degraded: WARNING counter_saturated"),
        "{out}"
    );
    assert_eq!(run("node-16hca", ""), (0, String::new()));
}

/// The node-problem-detector plugin config runs `check --npd` (NPD reads 1
/// as a problem, anything but 0 and 1 as unknown).
#[test]
fn the_npd_plugin_config_runs_check_npd() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes/node-problem-detector/rdma-monitor-plugin.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["plugin"], "custom");
    let rule = &v["rules"][0];
    assert_eq!(rule["condition"], v["conditions"][0]["type"]);
    let args: Vec<&str> = rule["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..2], ["check", "--npd"]);
}
