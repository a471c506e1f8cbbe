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
    // A reply that is not HTTP fails the test (status 0 and an empty body
    // would slip past a check that ignores the status).
    let status = resp
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3)?.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status line: {resp:?}"));
    let (_, body) = resp
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no end of head: {resp:?}"));
    Ok((status, body.to_string()))
}

/// `name{labels}` → value, from a text exposition.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A counter file's value; `None` for what the agent must leave absent (not
/// a number, or a directory where a file belongs). Any other read error
/// fails the test.
fn read_u64(path: &Path) -> Option<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
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

/// The dedicated family of a port's driver counter, if it has one, with the
/// labels it adds after device and port. `port` is the port's directory:
/// EFA/bnxt_re volume counters stand in for the PMA ones only on a port
/// without them. The transport families (issue 13) are written here from
/// mlx5's counters.rst and the drivers' names, not from the agent's catalog.
fn hw_metric(port: &Path, file: &str) -> Option<(&'static str, Vec<(&'static str, String)>)> {
    let transport = |metric: &'static str, fixed: &[(&'static str, &str)]| {
        let mut l: Vec<(&'static str, String)> =
            fixed.iter().map(|(k, v)| (*k, v.to_string())).collect();
        l.push(("counter", file.to_string()));
        Some((metric, l))
    };
    let (req, resp) = ("requester", "responder");
    let err = "rdma_transport_errors_total";
    let seq = "rdma_transport_sequence_errors_total";
    match file {
        "roce_adp_retrans" => {
            return transport(
                "rdma_transport_retransmissions_total",
                &[("kind", "adaptive")],
            );
        }
        // Kernel commit d7fab916374c (IB/mlx5: Expose RoCE accelerator counters).
        // roce_slow_restart_cnps counts CNP packets: a congestion family below.
        "roce_slow_restart" | "roce_slow_restart_trans" => {
            let kind = match file {
                "roce_slow_restart" => "used",
                _ => "entered",
            };
            return transport(
                "rdma_transport_slow_restart_events_total",
                &[("kind", kind)],
            );
        }
        "rnr_nak_retry_err" => {
            return transport(
                "rdma_transport_retransmissions_total",
                &[("kind", "rnr_nak")],
            );
        }
        "roce_adp_retrans_to" => {
            return transport(
                "rdma_transport_timeouts_total",
                &[("kind", "adaptive_retransmission")],
            );
        }
        "local_ack_timeout_err" => {
            return transport("rdma_transport_timeouts_total", &[("kind", "ack")]);
        }
        "out_of_sequence" => return transport(seq, &[("kind", "out_of_sequence")]),
        "packet_seq_err" => return transport(seq, &[("kind", "nak_received")]),
        "implied_nak_seq_err" => return transport(seq, &[("kind", "implied_nak")]),
        "duplicate_request" => return transport(seq, &[("kind", "duplicate_request")]),
        "req_cqe_error" => return transport(err, &[("side", req), ("kind", "cqe")]),
        "req_cqe_flush_error" => return transport(err, &[("side", req), ("kind", "cqe_flush")]),
        "req_remote_access_errors" => {
            return transport(err, &[("side", req), ("kind", "remote_access")]);
        }
        "req_remote_invalid_request" => {
            return transport(err, &[("side", req), ("kind", "remote_invalid_request")]);
        }
        "resp_cqe_error" => return transport(err, &[("side", resp), ("kind", "cqe")]),
        "resp_cqe_flush_error" => return transport(err, &[("side", resp), ("kind", "cqe_flush")]),
        "resp_local_length_error" => {
            return transport(err, &[("side", resp), ("kind", "local_length")]);
        }
        "resp_remote_access_errors" => {
            return transport(err, &[("side", resp), ("kind", "remote_access")]);
        }
        "tcpRetransSegs" => {
            return transport(
                "rdma_transport_retransmissions_total",
                &[("kind", "tcp_segment")],
            );
        }
        "rdma_read_wr_err" => return transport(err, &[("side", req), ("kind", "rdma_read_wr")]),
        _ => {}
    }
    let no_pma = |f: &str| !port.join("counters").join(f).exists();
    Some((
        match file {
            "tx_bytes" if no_pma("port_xmit_data") => "rdma_port_transmit_bytes_total",
            "rx_bytes" if no_pma("port_rcv_data") => "rdma_port_receive_bytes_total",
            "tx_pkts" if no_pma("port_xmit_packets") => "rdma_port_transmit_packets_total",
            "rx_pkts" if no_pma("port_rcv_packets") => "rdma_port_receive_packets_total",
            "np_cnp_sent" | "cnpSent" => "rdma_congestion_cnp_sent_total",
            "rp_cnp_handled" | "cnpHandled" => "rdma_congestion_cnp_handled_total",
            "rp_cnp_ignored" | "cnpIgnored" => "rdma_congestion_cnp_ignored_total",
            "np_ecn_marked_roce_packets" | "RxECNMrkd" => {
                "rdma_congestion_ecn_marked_packets_total"
            }
            "out_of_buffer" => "rdma_congestion_out_of_buffer_total",
            "roce_slow_restart_cnps" => "rdma_congestion_slow_restart_cnps_total",
            _ => return None,
        },
        Vec::new(),
    ))
}

/// The sorted names in `dir`; none when it does not exist (a device without
/// `hw_counters/`). Any other error fails the test.
fn names(dir: &Path) -> Vec<String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    let mut v: Vec<String> = rd
        .map(|e| {
            let name = e
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .file_name();
            name.into_string()
                .unwrap_or_else(|n| panic!("{}: {n:?} is not UTF-8", dir.display()))
        })
        .collect();
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
                let key = match hw_metric(&pdir, &file) {
                    Some((m, extra)) => {
                        let extra: String =
                            extra.iter().map(|(k, v)| format!(",{k}=\"{v}\"")).collect();
                        format!("{m}{{{labels}{extra}}}")
                    }
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
    assert_eq!(checked, 199, "counters in the tree with a value");
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
    // DCQCN: every cc_params file of the RoCE mlx5 device, with its value.
    let cc = tree().join("kernel/debug/mlx5/0000:5e:00.0/cc_params");
    let files = names(&cc);
    assert_eq!(files.len(), 22, "mlx5_ib_dbg_cc_name[] has 22 names");
    for file in &files {
        let v = read_u64(&cc.join(file)).unwrap();
        let key = format!("rdma_dcqcn_parameter{{device=\"mlx5_1\",parameter=\"{file}\"}}");
        assert_eq!(got.get(&key), Some(&v.to_string()), "{key}");
    }
    // Only for the mlx5 RoCE device.
    let dcqcn = got
        .keys()
        .filter(|k| k.starts_with("rdma_dcqcn_parameter{"));
    assert_eq!(dcqcn.count(), files.len());
}

/// Series whose values change from run to run (time, durations, cycle counts).
fn volatile(line: &str) -> bool {
    [
        "rdma_monitor_collector_duration_seconds",
        "rdma_monitor_cycle_duration_seconds",
        "rdma_monitor_last_cycle_timestamp_seconds",
        "rdma_monitor_last_cycle_age_seconds",
        "rdma_monitor_http_requests_total",
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
    let (status, body) = get(agent.port, "/fabric").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            "no fabric sweep yet (fabric mode off, or not swept yet)\n"
        ),
        "no umad on the fixture tree: no sweep"
    );
    let (status, body) = get(agent.port, "/snapshot").unwrap();
    assert_eq!(status, 200);
    let snap: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snap["schema_version"], 2);
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

/// One series of a text exposition: family name and its labels, in order.
type Series = (String, Vec<(String, String)>);

fn parse_series(key: &str) -> Series {
    let Some((name, rest)) = key.split_once('{') else {
        return (key.to_string(), Vec::new());
    };
    let mut labels = Vec::new();
    let mut rest = rest.strip_suffix('}').unwrap_or(rest);
    while let Some((k, v)) = rest.split_once("=\"") {
        // Fixture values hold no escaped quotes.
        let (v, tail) = v.split_once('"').expect("closed label value");
        labels.push((k.to_string(), v.to_string()));
        rest = tail.strip_prefix(',').unwrap_or(tail);
    }
    (name.to_string(), labels)
}

/// A file that not every device has (`lifespan`, `dev_port`): absent is `None`.
fn optional_u64(path: &Path) -> Option<u64> {
    path.exists().then(|| read_u64(path)).flatten()
}

fn text(path: &Path) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

/// `0c42:a103:0071:6a10` → `0x0c42a10300716a10`.
fn guid(path: &Path) -> String {
    format!("0x{}", text(path).unwrap().replace(':', ""))
}

fn hex(path: &Path) -> Option<u64> {
    u64::from_str_radix(text(path)?.trim_start_matches("0x"), 16).ok()
}

/// The number before `: ` in `4: ACTIVE`.
fn enum_value(path: &Path) -> Option<u64> {
    text(path)?.split(':').next()?.trim().parse().ok()
}

/// Every family of the golden scrape, recomputed from the tree's files by code
/// written here (the golden file itself is regenerated from the agent, so on
/// its own it proves only that nothing changed).
#[test]
fn every_golden_family_matches_the_tree() {
    let golden = std::fs::read_to_string(repo().join("fixtures/golden/node-mixed.prom")).unwrap();
    let mut got: BTreeMap<String, BTreeMap<Vec<(String, String)>, String>> = BTreeMap::new();
    for (k, v) in samples(&golden) {
        let (name, labels) = parse_series(&k);
        got.entry(name).or_default().insert(labels, v);
    }
    let mut want: BTreeMap<String, BTreeMap<Vec<(String, String)>, String>> = BTreeMap::new();
    let mut put = |name: &str, labels: &[(&str, &str)], v: String| {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.entry(name.to_string()).or_default().insert(labels, v);
    };
    let class = tree().join("class/infiniband");
    // IBTA PortCounters widths: a value at 2^w - 1 has stopped counting.
    let width = |c: &str| match c {
        "symbol_error"
        | "port_rcv_errors"
        | "port_rcv_remote_physical_errors"
        | "port_rcv_switch_relay_errors"
        | "port_xmit_discards"
        | "VL15_dropped" => 16,
        "link_error_recovery"
        | "link_downed"
        | "port_xmit_constraint_errors"
        | "port_rcv_constraint_errors" => 8,
        "local_link_integrity_errors" | "excessive_buffer_overrun_errors" => 4,
        _ => 32,
    };
    let (mut ports_by, mut read_errors, mut counters_broken) = (BTreeMap::new(), 0, false);
    let mut findings: Vec<(&str, &str, String, String)> = Vec::new();
    let devs = names(&class);
    put("rdma_devices", &[], devs.len().to_string());
    put("rdma_monitor_rdma_class_present", &[], "1".into());
    for dev in &devs {
        let d = class.join(dev);
        let driver = std::fs::read_link(d.join("device/driver"))
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .unwrap_or_default();
        let node_type = text(&d.join("node_type")).unwrap();
        let node_type = node_type.split_once(": ").unwrap().1;
        let (fw, board, hca, desc) = (
            text(&d.join("fw_ver")).unwrap_or_default(),
            text(&d.join("board_id")).unwrap_or_default(),
            text(&d.join("hca_type")).unwrap_or_default(),
            text(&d.join("node_desc")).unwrap_or_default(),
        );
        let (ng, sg) = (guid(&d.join("node_guid")), guid(&d.join("sys_image_guid")));
        put(
            "rdma_device_info",
            &[
                ("device", dev),
                ("node_type", node_type),
                ("fw_ver", &fw),
                ("board_id", &board),
                ("hca_type", &hca),
                ("node_guid", &ng),
                ("sys_image_guid", &sg),
                ("node_desc", &desc),
                ("driver", &driver),
            ],
            "1".into(),
        );
        for file in names(&d.join("hw_counters"))
            .into_iter()
            .filter(|f| f != "lifespan")
        {
            let v = read_u64(&d.join("hw_counters").join(&file)).unwrap();
            put(
                "rdma_device_hw_stat_total",
                &[("device", dev), ("counter", &file)],
                v.to_string(),
            );
        }
        // netdev of a port: device/net/<if>/dev_port holds port - 1.
        let mut netdev_of = BTreeMap::new();
        for nd in names(&d.join("device/net")) {
            if let Some(p) = optional_u64(&d.join("device/net").join(&nd).join("dev_port")) {
                netdev_of.insert(p + 1, nd);
            }
        }
        for port in names(&d.join("ports")) {
            let p = d.join("ports").join(&port);
            let l = [("device", dev.as_str()), ("port", port.as_str())];
            let state = enum_value(&p.join("state")).unwrap();
            put("rdma_port_state", &l, state.to_string());
            put("rdma_port_up", &l, u64::from(state == 4).to_string());
            put(
                "rdma_port_physical_state",
                &l,
                enum_value(&p.join("phys_state")).unwrap().to_string(),
            );
            // `200 Gb/sec (4X HDR)`.
            let rate = text(&p.join("rate")).unwrap();
            let gbit: f64 = rate.split(' ').next().unwrap().parse().unwrap();
            put(
                "rdma_port_rate_bytes_per_second",
                &l,
                format!("{}", gbit * 1e9 / 8.0),
            );
            let lanes = rate.split('(').nth(1).unwrap().split('X').next().unwrap();
            put("rdma_port_link_width_lanes", &l, lanes.to_string());
            for (f, m) in [("lid", "rdma_port_lid"), ("sm_lid", "rdma_port_sm_lid")] {
                put(m, &l, hex(&p.join(f)).unwrap().to_string());
            }
            put("rdma_port_lmc", &l, text(&p.join("lmc")).unwrap());
            if let Some(cap) = hex(&p.join("cap_mask")) {
                put("rdma_port_capability_mask", &l, cap.to_string());
            }
            if let Some(ms) = optional_u64(&p.join("hw_counters/lifespan")) {
                put(
                    "rdma_port_hw_counters_lifespan_seconds",
                    &l,
                    format!("{}", ms as f64 / 1000.0),
                );
            }
            let ll = text(&p.join("link_layer")).unwrap();
            let transport = match (ll.as_str(), node_type) {
                ("InfiniBand", _) => "ib",
                ("Ethernet", "RNIC") => "iwarp",
                ("Ethernet", _) => "roce",
                _ => "other",
            };
            *ports_by.entry(transport).or_insert(0) += 1;
            let netdev = netdev_of
                .get(&port.parse::<u64>().unwrap())
                .cloned()
                .unwrap_or_default();
            put(
                "rdma_port_info",
                &[
                    l[0],
                    l[1],
                    ("link_layer", &ll),
                    ("transport", transport),
                    ("netdev", &netdev),
                ],
                "1".into(),
            );
            for index in names(&p.join("gids")) {
                let gid = text(&p.join("gids").join(&index)).unwrap();
                if gid.chars().all(|c| c == '0' || c == ':') {
                    continue;
                }
                let ty = text(&p.join("gid_attrs/types").join(&index)).unwrap_or_default();
                let nd = text(&p.join("gid_attrs/ndevs").join(&index)).unwrap_or_default();
                put(
                    "rdma_port_gid_info",
                    &[
                        l[0],
                        l[1],
                        ("index", &index),
                        ("gid", &gid),
                        ("gid_type", &ty),
                        ("netdev", &nd),
                    ],
                    "1".into(),
                );
            }
            for origin in ["counters", "hw_counters", "state"] {
                put(
                    "rdma_monitor_port_data_origin",
                    &[l[0], l[1], ("data", origin), ("origin", "sysfs")],
                    "1".into(),
                );
            }
            let mut saturated = false;
            for file in names(&p.join("counters")) {
                let (metric, scale) = pma_metric(&file);
                let Some(v) = read_u64(&p.join("counters").join(&file)) else {
                    continue; // N/A (no PMA): unsupported, not an error
                };
                put(metric, &l, (v * scale).to_string());
                if v == (1u64 << width(&file)) - 1 {
                    saturated = true;
                    put(
                        "rdma_stat_saturated",
                        &[l[0], l[1], ("counter", &file)],
                        "1".into(),
                    );
                }
            }
            for file in names(&p.join("hw_counters"))
                .into_iter()
                .filter(|f| f != "lifespan")
            {
                let Some(v) = read_u64(&p.join("hw_counters").join(&file)) else {
                    // A directory or garbage where a number belongs: a read error.
                    read_errors += 1;
                    counters_broken = true;
                    continue;
                };
                match hw_metric(&p, &file) {
                    Some((m, extra)) => {
                        let mut all = l.to_vec();
                        all.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                        put(m, &all, v.to_string())
                    }
                    None => put(
                        "rdma_port_hw_stat_total",
                        &[l[0], l[1], ("counter", &file)],
                        v.to_string(),
                    ),
                }
            }
            // Where each port's volume comes from: the PMA file, else the
            // driver's stand-in (EFA/bnxt_re names), else nothing (no netdev here).
            // irdma (verbs.c irdma_hw_stat_descs) splits it by IP version:
            // the sum of both halves, when both are there.
            for (pma, hw, (v4, v6), metric) in [
                (
                    "port_xmit_data",
                    "tx_bytes",
                    ("ip4OutOctets", "ip6OutOctets"),
                    "rdma_port_transmit_bytes_total",
                ),
                (
                    "port_rcv_data",
                    "rx_bytes",
                    ("ip4InOctets", "ip6InOctets"),
                    "rdma_port_receive_bytes_total",
                ),
                (
                    "port_xmit_packets",
                    "tx_pkts",
                    ("ip4OutPkts", "ip6OutPkts"),
                    "rdma_port_transmit_packets_total",
                ),
                (
                    "port_rcv_packets",
                    "rx_pkts",
                    ("ip4InPkts", "ip6InPkts"),
                    "rdma_port_receive_packets_total",
                ),
            ] {
                let readable = |f: &Path| f.exists() && read_u64(f).is_some();
                let hw_dir = p.join("hw_counters");
                let half = |f: &str| {
                    let f = hw_dir.join(f);
                    if f.exists() { read_u64(&f) } else { None }
                };
                let both = half(v4).zip(half(v6));
                let summed = format!("{v4}+{v6}");
                let origin = if readable(&p.join("counters").join(pma)) {
                    Some(("pma", pma))
                } else if readable(&hw_dir.join(hw)) {
                    Some(("hw_counters", hw))
                } else if let Some((a, b)) = both {
                    put(metric, &[l[0], l[1]], (a + b).to_string());
                    Some(("hw_counters", summed.as_str()))
                } else {
                    None
                };
                if let Some((o, c)) = origin {
                    put(
                        "rdma_port_volume_origin",
                        &[
                            l[0],
                            l[1],
                            ("metric", metric),
                            ("origin", o),
                            ("counter", c),
                        ],
                        "1".into(),
                    );
                }
            }
            if saturated {
                findings.push(("counter_saturated", "warning", dev.clone(), port.clone()));
            }
            if state == 1 {
                findings.push(("port_down", "info", dev.clone(), port.clone()));
            }
        }
    }
    for (t, n) in [("ib", 0), ("roce", 0), ("other", 0)] {
        put(
            "rdma_ports",
            &[("transport", t)],
            (ports_by.get(t).copied().unwrap_or(n)).to_string(),
        );
    }
    put(
        "rdma_monitor_sysfs_read_errors_total",
        &[],
        read_errors.to_string(),
    );
    for sev in ["critical", "warning", "info"] {
        let n = findings.iter().filter(|f| f.1 == sev).count();
        put("rdma_findings", &[("severity", sev)], n.to_string());
    }
    for (id, sev, dev, port) in &findings {
        put(
            "rdma_finding",
            &[
                ("id", id),
                ("severity", sev),
                ("device", dev),
                // These findings are about RDMA devices: no netdev.
                ("netdev", ""),
                ("port", port),
                ("priority", ""),
                ("subject", ""),
            ],
            "1".into(),
        );
    }
    // The verdict follows the worst finding derived from the files.
    let worst = ["critical", "warning"]
        .into_iter()
        .find(|sev| findings.iter().any(|f| f.1 == *sev));
    let now = match worst {
        Some("critical") => "unhealthy",
        Some(_) => "degraded",
        None => "healthy",
    };
    for v in ["healthy", "degraded", "unhealthy"] {
        put(
            "rdma_node_health",
            &[("verdict", v)],
            u8::from(v == now).to_string(),
        );
    }
    // The collectors that read counter files fail while one is broken.
    for c in [
        "attribution",
        "configuration",
        "congestion",
        "fabric",
        // Renders the findings the engine returned: reads no kernel input.
        "findings",
        "link_status",
        "netdev",
        "performance",
        "resources",
        "topology",
        "transport",
        // Reads only the MAD worker's view (none here): never fails.
        "xmit_wait",
    ] {
        let fails =
            counters_broken && (c == "performance" || c == "congestion" || c == "transport");
        put(
            "rdma_monitor_collector_success",
            &[("collector", c)],
            u64::from(!fails).to_string(),
        );
        put(
            "rdma_monitor_collector_errors_total",
            &[("collector", c)],
            u64::from(fails).to_string(),
        );
    }
    // Not /sys: no netlink; one cycle: nothing reset, no snapshot written yet.
    for zero in [
        "rdma_monitor_rdma_netlink_available",
        "rdma_monitor_rdma_netlink_errors_total",
        "rdma_monitor_netlink_malformed_attributes_total",
        "rdma_monitor_snapshot_errors_total",
        "rdma_monitor_snapshot_prune_failures_total",
        "rdma_monitor_stat_resets_total",
    ] {
        put(zero, &[], "0".into());
    }

    // DCQCN parameters from debugfs, by the PCI address behind each device link.
    let debug = tree().join("kernel/debug/mlx5");
    for dev in &devs {
        let Ok(link) = std::fs::read_link(class.join(dev).join("device")) else {
            continue;
        };
        let pci = link.file_name().unwrap().to_string_lossy().to_string();
        let cc = debug.join(&pci).join("cc_params");
        for param in names(&cc) {
            let v = read_u64(&cc.join(&param)).unwrap();
            put(
                "rdma_dcqcn_parameter",
                &[("device", dev), ("parameter", &param)],
                v.to_string(),
            );
        }
    }

    // A fresh agent polling every 0.2 s, scraped once: fresh data (stale after
    // max(3 × 0.2 s, 1 s)), and the HTTP server refused nothing.
    put("rdma_monitor_scrape_stale", &[], "0".into());
    put("rdma_monitor_stale_after_seconds", &[], "1".into());
    put("rdma_monitor_http_accept_errors_total", &[], "0".into());
    for reason in [
        "auth_busy",
        "bad_request",
        "busy",
        "evicted",
        "head_timeout",
        "tls",
        "unauthorized",
    ] {
        put(
            "rdma_monitor_http_rejected_total",
            &[("reason", reason)],
            "0".into(),
        );
    }
    // One scrape, read at once: no answer was cut off or evicted.
    for reason in ["evicted", "timeout"] {
        put(
            "rdma_monitor_http_write_failures_total",
            &[("reason", reason)],
            "0".into(),
        );
    }
    // Plain HTTP on loopback: the worker's one write took every answer so far whole.
    put(
        "rdma_monitor_http_answers_handed_back_total",
        &[],
        "0".into(),
    );

    // rdma_monitor_unsupported_attributes counts what the agent chose to skip; its
    // independent check is in scrape_has_every_counter_with_its_value (N/A files).
    let only_agent = ["rdma_monitor_unsupported_attributes"];
    let mut unchecked = Vec::new();
    for (family, series) in &got {
        if only_agent.contains(&family.as_str()) {
            continue;
        }
        match want.get(family) {
            Some(w) => assert_eq!(series, w, "{family}: golden vs the tree's files"),
            None => unchecked.push(family.clone()),
        }
    }
    assert!(
        unchecked.is_empty(),
        "golden families with no independent check: {unchecked:?}"
    );
    let missing: Vec<_> = want.keys().filter(|f| !got.contains_key(*f)).collect();
    assert!(
        missing.is_empty(),
        "expected from the tree, absent from golden: {missing:?}"
    );
}

#[test]
fn healthz_verbose_shows_the_verdict_and_metrics_export_it() {
    let agent = start(&[]);
    // node-mixed: two saturated counters (warning) and a disabled port (info).
    let (status, body) = get(agent.port, "/healthz?verbose").unwrap();
    assert_eq!(
        status, 200,
        "a degraded node is not a failing agent: {body}"
    );
    assert!(
        body.contains("\nverdict: degraded: 0 critical, 2 warning, 1 info\n"),
        "{body}"
    );
    assert!(
        body.contains("WARNING counter_saturated device=hfi1_0 port=1: "),
        "{body}"
    );
    let (_, plain) = get(agent.port, "/healthz").unwrap();
    assert!(!plain.contains("verdict"), "{plain}");
    let (_, metrics) = get(agent.port, "/metrics").unwrap();
    let s = samples(&metrics);
    assert_eq!(s["rdma_node_health{verdict=\"degraded\"}"], "1");
    assert_eq!(s["rdma_node_health{verdict=\"healthy\"}"], "0");
    assert_eq!(s["rdma_node_health{verdict=\"unhealthy\"}"], "0");
}
