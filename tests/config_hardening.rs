//! The binary against hostile and careless configuration and arguments:
//! out-of-range durations exit 2 with one line, echoed values cannot forge
//! log lines, a file that is not a config is not quoted, URL credentials are
//! redacted, and `--once` says (and exits 3) when it read nothing at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn with_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Exit 2 and exactly one line on stderr; returns that line.
fn refused(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    err
}

#[test]
fn huge_durations_exit_2_naming_key_and_range() {
    let dir = tempfile::tempdir().unwrap();
    for (key, section, name) in [
        ("general.poll_interval", "general", "poll_interval"),
        ("general.snapshot_interval", "general", "snapshot_interval"),
        ("general.rescan_interval", "general", "rescan_interval"),
        ("fabric.sweep_budget", "fabric", "sweep_budget"),
        ("fabric.interval", "fabric", "interval"),
        ("llm.interval", "llm", "interval"),
        ("llm.timeout", "llm", "timeout"),
        ("dify.timeout", "dify", "timeout"),
        ("analysis.flap_window", "analysis", "flap_window"),
    ] {
        let path = with_file(
            dir.path(),
            "c.yaml",
            &format!("{section}:\n  {name}: 1e30\n"),
        );
        // Both the check and a real start refuse it (a start used to panic, exit 101).
        for mode in ["--check-config", "--once"] {
            let out = run(
                &["--config", &path, mode],
                &[("RDMA_MON_GENERAL__SYSFS_ROOT", "/nonexistent")],
            );
            let err = refused(&out);
            assert!(
                err.starts_with(&format!("rdma-monitor: {key}: must be ")),
                "{err}"
            );
            assert!(err.contains(" to ") && err.contains("got 1e30"), "{err}");
        }
    }
    let out = run(
        &["--check-config"],
        &[("RDMA_MON_GENERAL__POLL_INTERVAL", "1e30")],
    );
    assert_eq!(
        refused(&out).trim_end(),
        "rdma-monitor: general.poll_interval: must be 0.05 s to 86400 s (1 day), got 1e30"
    );
}

#[test]
fn echoed_values_cannot_forge_lines_or_escape_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_file(
        dir.path(),
        "c.yaml",
        "general:\n  log_level: \"info\\nrdma-monitor: error: forged \\e[31mred\"\n",
    );
    let err = refused(&run(&["--config", &path, "--check-config"], &[]));
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(err.contains("\\nrdma-monitor: error: forged"), "{err}");
    let err = refused(&run(
        &["--check-config"],
        &[(
            "RDMA_MON_NETWORK__MODE",
            "roce\n\x1b[2Jrdma-monitor: info: ok",
        )],
    ));
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn a_file_that_is_not_a_config_is_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    // What /etc/shadow looks like to a YAML parser, and a broken YAML line.
    for text in [
        "root:$y$j9T$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
        "password: [SECRETHASH\n",
        "\"SECRETHASH\n",
    ] {
        let path = with_file(dir.path(), "shadow", text);
        let err = refused(&run(&["--config", &path, "--check-config"], &[]));
        // No part of any line of the file (the old message quoted one, `daemon:*:19000:…`).
        for part in ["SECRETHASH", "root:", "daemon", "19000"] {
            assert!(!err.contains(part), "{err}");
        }
    }
}

#[test]
fn check_config_redacts_credentials_in_urls() {
    let out = run(
        &["--check-config"],
        &[
            (
                "RDMA_MON_LLM__API_URL",
                "http://user:sk-SECRET@llm.local:8000/v1/chat/completions",
            ),
            (
                "RDMA_MON_DIFY__API_URL",
                "https://:app-SECRET@dify.local/v1",
            ),
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("SECRET"), "{text}");
    assert!(
        text.contains("llm.local:8000/v1/chat/completions"),
        "{text}"
    );
}

#[test]
fn once_and_check_config_together_are_refused() {
    for args in [
        ["--once", "--check-config"],
        ["--check-config", "topology"],
        ["topology", "--once"],
    ] {
        let err = refused(&run(
            &args,
            &[("RDMA_MON_GENERAL__SYSFS_ROOT", "/nonexistent")],
        ));
        assert!(err.contains("cannot be combined"), "{err}");
    }
}

#[test]
fn once_on_a_missing_sysfs_root_warns_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-root");
    let out = run(
        &["--once"],
        &[("RDMA_MON_GENERAL__SYSFS_ROOT", missing.to_str().unwrap())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    // Still a snapshot on stdout, saying what it saw.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["devices"].as_array().unwrap().len(), 0);
    // An empty root (the wrong tree): said too.
    let out = run(
        &["--once"],
        &[("RDMA_MON_GENERAL__SYSFS_ROOT", dir.path().to_str().unwrap())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("class/infiniband does not exist"), "{err}");
    // A tree with devices is a success.
    let out = run(
        &["--once"],
        &[("RDMA_MON_GENERAL__SYSFS_ROOT", tree().to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
