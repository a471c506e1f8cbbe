//! End to end: the built binary on the bundled sysfs tree. Every counter file
//! in the tree must show up in the scrape with the value the file holds
//! (×4 for IB data words), the scrape must match the golden file and pass
//! `promtool check metrics`, and the process must behave on signals and bad
//! configuration.
//!
//! `UPDATE_GOLDEN=1 cargo test --test e2e` rewrites fixtures/golden/node-mixed.prom.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tree() -> PathBuf {
    repo().join("fixtures/sysfs/node-mixed")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Agent {
    child: Child,
    port: u16,
    _snapshots: tempfile::TempDir,
    snapshot_dir: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra_env: &[(&str, &str)]) -> Agent {
    let port = free_port();
    let snapshots = tempfile::tempdir().unwrap();
    let snapshot_dir = snapshots.path().join("out");
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", tree())
        .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", &snapshot_dir)
        .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
        .env("RDMA_MON_PROMETHEUS__PORT", port.to_string())
        .env("RDMA_MON_GENERAL__POLL_INTERVAL", "0.2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let agent = Agent {
        child,
        port,
        _snapshots: snapshots,
        snapshot_dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, _)) = get(port, "/healthz") {
            return agent;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("agent did not become healthy on port {port}");
}

fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `name{labels}` → value, from a text exposition.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The expected metric of each PMA counter file: written here from the
/// metric naming spec, independently of the agent's catalog.
fn pma_metric(file: &str) -> (&'static str, u64) {
    match file {
        "port_xmit_data" => ("rdma_port_transmit_bytes_total", 4),
        "port_rcv_data" => ("rdma_port_receive_bytes_total", 4),
        "port_xmit_packets" => ("rdma_port_transmit_packets_total", 1),
        "port_rcv_packets" => ("rdma_port_receive_packets_total", 1),
        "unicast_xmit_packets" => ("rdma_port_unicast_transmit_packets_total", 1),
        "unicast_rcv_packets" => ("rdma_port_unicast_receive_packets_total", 1),
        "multicast_xmit_packets" => ("rdma_port_multicast_transmit_packets_total", 1),
        "multicast_rcv_packets" => ("rdma_port_multicast_receive_packets_total", 1),
        "symbol_error" => ("rdma_port_symbol_errors_total", 1),
        "link_error_recovery" => ("rdma_port_link_error_recovery_total", 1),
        "link_downed" => ("rdma_port_link_downed_total", 1),
        "local_link_integrity_errors" => ("rdma_port_local_link_integrity_errors_total", 1),
        "port_rcv_errors" => ("rdma_port_receive_errors_total", 1),
        "port_rcv_remote_physical_errors" => ("rdma_port_receive_remote_physical_errors_total", 1),
        "port_rcv_switch_relay_errors" => ("rdma_port_receive_switch_relay_errors_total", 1),
        "port_rcv_constraint_errors" => ("rdma_port_receive_constraint_errors_total", 1),
        "port_xmit_constraint_errors" => ("rdma_port_transmit_constraint_errors_total", 1),
        "VL15_dropped" => ("rdma_port_vl15_dropped_total", 1),
        "port_xmit_discards" => ("rdma_port_transmit_discards_total", 1),
        "port_xmit_wait" => ("rdma_port_transmit_wait_total", 1),
        "excessive_buffer_overrun_errors" => ("rdma_port_excessive_buffer_overrun_errors_total", 1),
        other => panic!("fixture has a counter the test does not know: {other}"),
    }
}

fn hw_metric(file: &str) -> Option<&'static str> {
    Some(match file {
        "np_cnp_sent" | "cnpSent" => "rdma_congestion_cnp_sent_total",
        "rp_cnp_handled" | "cnpHandled" => "rdma_congestion_cnp_handled_total",
        "rp_cnp_ignored" | "cnpIgnored" => "rdma_congestion_cnp_ignored_total",
        "np_ecn_marked_roce_packets" | "RxECNMrkd" => "rdma_congestion_ecn_marked_packets_total",
        "out_of_buffer" => "rdma_congestion_out_of_buffer_total",
        _ => return None,
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn scrape_has_every_counter_with_its_value() {
    let agent = start(&[]);
    let (status, text) = get(agent.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    let got = samples(&text);
    let class = tree().join("class/infiniband");
    let mut checked = 0;
    let mut absent = 0;
    for dev in names(&class) {
        for file in names(&class.join(&dev).join("hw_counters")) {
            if file == "lifespan" {
                continue;
            }
            let v = read_u64(&class.join(&dev).join("hw_counters").join(&file)).unwrap();
            let key = format!("rdma_device_hw_stat_total{{device=\"{dev}\",counter=\"{file}\"}}");
            assert_eq!(got.get(&key), Some(&v.to_string()), "{key}");
            checked += 1;
        }
        for port in names(&class.join(&dev).join("ports")) {
            let pdir = class.join(&dev).join("ports").join(&port);
            let labels = format!("device=\"{dev}\",port=\"{port}\"");
            for file in names(&pdir.join("counters")) {
                let (metric, scale) = pma_metric(&file);
                let key = format!("{metric}{{{labels}}}");
                match read_u64(&pdir.join("counters").join(&file)) {
                    Some(v) => {
                        assert_eq!(got.get(&key), Some(&(v * scale).to_string()), "{key}");
                        checked += 1;
                    }
                    None => {
                        // N/A or unreadable: absent, never 0.
                        assert_eq!(got.get(&key), None, "{key} must be absent");
                        absent += 1;
                    }
                }
            }
            for file in names(&pdir.join("hw_counters")) {
                if file == "lifespan" {
                    continue;
                }
                let key = match hw_metric(&file) {
                    Some(m) => format!("{m}{{{labels}}}"),
                    None => format!("rdma_port_hw_stat_total{{{labels},counter=\"{file}\"}}"),
                };
                match read_u64(&pdir.join("hw_counters").join(&file)) {
                    Some(v) => {
                        assert_eq!(got.get(&key), Some(&v.to_string()), "{key}");
                        checked += 1;
                    }
                    None => {
                        assert_eq!(got.get(&key), None, "{key} must be absent");
                        absent += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 195, "counters in the tree with a value");
    assert_eq!(absent, 3, "N/A (no PMA), EISDIR and garbage");
    // States, rate, info.
    assert_eq!(got["rdma_port_state{device=\"mlx4_0\",port=\"2\"}"], "1");
    assert_eq!(got["rdma_port_up{device=\"mlx4_0\",port=\"2\"}"], "0");
    assert_eq!(got["rdma_port_up{device=\"mlx5_0\",port=\"1\"}"], "1");
    assert_eq!(
        got["rdma_port_rate_bytes_per_second{device=\"mlx5_0\",port=\"1\"}"],
        "25000000000"
    );
    assert_eq!(got["rdma_port_lid{device=\"mlx5_0\",port=\"1\"}"], "18");
    assert_eq!(
        got["rdma_stat_saturated{device=\"hfi1_0\",port=\"1\",counter=\"symbol_error\"}"],
        "1"
    );
    assert_eq!(
        got["rdma_stat_saturated{device=\"mlx4_0\",port=\"1\",counter=\"port_xmit_data\"}"],
        "1"
    );
    assert_eq!(got["rdma_ports{transport=\"ib\"}"], "3");
    assert_eq!(got["rdma_ports{transport=\"roce\"}"], "3");
    assert_eq!(got["rdma_ports{transport=\"other\"}"], "1");
    assert!(got.contains_key(
        "rdma_port_info{device=\"mlx4_0\",port=\"2\",link_layer=\"Ethernet\",transport=\"roce\",netdev=\"eth3\"}"
    ));
    // hfi1: `N/A (no PMA)` and no hw_counters/; efa: no counters/.
    assert_eq!(
        got["rdma_monitor_unsupported_attributes{device=\"hfi1_0\",port=\"1\"}"],
        "2"
    );
    assert_eq!(
        got["rdma_monitor_unsupported_attributes{device=\"efa_0\",port=\"1\"}"],
        "1"
    );
}

/// Series whose values change from run to run (time, durations, cycle counts).
fn volatile(line: &str) -> bool {
    [
        "rdma_monitor_collector_duration_seconds",
        "rdma_monitor_cycle_duration_seconds",
        "rdma_monitor_last_cycle_timestamp_seconds",
        "rdma_monitor_cycles_total",
        "rdma_monitor_sysfs_reads_total",
        "rdma_monitor_sysfs_rescans_total",
        "rdma_monitor_cycle_syscalls",
        "rdma_monitor_syscalls_total",
        "rdma_monitor_snapshots_written_total",
        "rdma_monitor_build_info",
    ]
    .iter()
    .any(|m| line.starts_with(m))
}

#[test]
fn scrape_matches_golden_and_promtool() {
    let agent = start(&[]);
    let (_, text) = get(agent.port, "/metrics").unwrap();
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !volatile(l))
        .collect();
    lines.sort();
    let normalized = lines.join("\n") + "\n";
    let golden = repo().join("fixtures/golden/node-mixed.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &normalized).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    if want != normalized {
        let diff: Vec<String> = want
            .lines()
            .filter(|l| !normalized.contains(l))
            .map(|l| format!("- {l}"))
            .chain(
                normalized
                    .lines()
                    .filter(|l| !want.contains(l))
                    .map(|l| format!("+ {l}")),
            )
            .take(40)
            .collect();
        panic!(
            "scrape differs from {}:\n{}",
            golden.display(),
            diff.join("\n")
        );
    }

    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let report = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && report.trim().is_empty(),
                "promtool check metrics:\n{report}"
            );
        }
        Err(e) => common::skip(
            "promtool check metrics",
            &format!("promtool not found ({e}); install Debian's prometheus"),
        ),
    }
}

#[test]
fn snapshot_endpoint_file_and_sigterm() {
    let mut agent = start(&[
        ("RDMA_MON_GENERAL__SNAPSHOT_INTERVAL", "0.3"),
        ("RDMA_MON_GENERAL__SNAPSHOT_KEEP", "2"),
    ]);
    // Two cycles at least, so rates exist.
    std::thread::sleep(Duration::from_millis(900));
    let (status, body) = get(agent.port, "/snapshot").unwrap();
    assert_eq!(status, 200);
    let snap: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snap["schema_version"], 1);
    assert!(snap["interval_seconds"].as_f64().unwrap() > 0.0);
    let mlx5_0 = snap["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "mlx5_0")
        .unwrap();
    let xmit = &mlx5_0["ports"][0]["counters"]["port_xmit_data"];
    assert_eq!(xmit["value"], 9_876_543_210_123u64);
    assert_eq!(xmit["delta"], 0);
    assert_eq!(xmit["rate"], 0.0);
    assert_eq!(mlx5_0["ports"][0]["transport"], "ib");
    let hfi = snap["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "hfi1_0")
        .unwrap();
    assert_eq!(
        hfi["ports"][0]["counters"]["symbol_error"]["flag"],
        "saturated"
    );

    // SIGTERM: a last snapshot, exit 0; retention holds.
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let files: Vec<String> = names(&agent.snapshot_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert!(f.starts_with("snapshot-") && f.ends_with(".json"), "{f}");
        let text = std::fs::read_to_string(agent.snapshot_dir.join(f)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["devices"].as_array().unwrap().len(), 6);
    }
}

#[test]
fn once_prints_a_snapshot() {
    let out = Command::new(BIN)
        .env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", tree())
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["devices"].as_array().unwrap().len(), 6);
    assert_eq!(v["read_errors"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_config_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("prometheus:\n  port: 70000\n", &[], "prometheus.port"),
        (
            "general:\n  poll_interval: 0\n",
            &[],
            "general.poll_interval",
        ),
        ("bogus:\n  x: 1\n", &[], "unknown section `bogus`"),
        (
            "general:\n  pol_interval: 3\n",
            &[],
            "unknown key `general.pol_interval`",
        ),
        (
            "",
            &[("RDMA_MON_PROMETHEUS__PORT", "abc")],
            "RDMA_MON_PROMETHEUS__PORT",
        ),
        ("network:\n  mode: [1\n", &[], "not valid YAML"),
    ];
    for (i, (yaml, env, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(BIN)
            .env_clear()
            .envs(env.iter().copied())
            .args(["--config", path.to_str().unwrap(), "--check-config"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{yaml:?}: {err}");
        assert!(err.contains(want), "{yaml:?}: {err}");
    }
    let out = Command::new(BIN)
        .env_clear()
        .args(["--config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_redacts_secrets() {
    let out = Command::new(BIN)
        .env_clear()
        .env("RDMA_MON_LLM__API_KEY", "12345")
        .env("RDMA_MON_DIFY__API_KEY", "app-xyz")
        .env("RDMA_MON_PROMETHEUS__PORT", "9100")
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("12345") && !text.contains("app-xyz"),
        "{text}"
    );
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("9100"), "{text}");
}
