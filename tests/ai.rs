//! The AI worker inside the running agent: answers kept and served, a hung
//! endpoint that costs the collection loop nothing, a prompt shutdown, and
//! the API key in no output at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");
const KEY: &str = "sk-e2e-SECRET-98765";

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// A server answering every request with `reply` (None: accept and never answer).
fn server(reply: Option<&'static str>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            match reply {
                Some(text) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                }
                None => held.push(s),
            }
        }
    });
    url
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn start(env: &[(&str, String)], snapshots: &Path, port: u16) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", tree())
        .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", snapshots)
        .env("RDMA_MON_GENERAL__POLL_INTERVAL", "0.2")
        .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
        .env("RDMA_MON_PROMETHEUS__PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn stop(child: Child) -> (Duration, String) {
    let t = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (t.elapsed(), text)
}

fn all_files(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        s += &std::fs::read_to_string(e.path()).unwrap_or_default();
    }
    s
}

#[test]
fn answers_from_llm_and_dify_are_kept_and_served() {
    let llm = server(Some(
        r#"{"choices":[{"message":{"role":"assistant","content":"hfi1_0 symbol errors saturated"}}],"usage":{"total_tokens":321}}"#,
    ));
    let dify = server(Some(
        r#"{"data":{"status":"succeeded","outputs":{"summary":"ok"},"total_tokens":5}}"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        &[
            ("RDMA_MON_LLM__ENABLED", "true".into()),
            (
                "RDMA_MON_LLM__API_URL",
                format!("{llm}/v1/chat/completions"),
            ),
            ("RDMA_MON_LLM__API_KEY", KEY.into()),
            ("RDMA_MON_DIFY__ENABLED", "true".into()),
            ("RDMA_MON_DIFY__API_URL", format!("{dify}/v1")),
            ("RDMA_MON_DIFY__API_KEY", KEY.into()),
        ],
        dir.path(),
        port,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut analysis = String::new();
    while Instant::now() < deadline {
        analysis = get(port, "/analysis");
        if analysis.contains("saturated") && analysis.contains("\"summary\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        analysis.contains("hfi1_0 symbol errors saturated"),
        "{analysis}"
    );
    assert!(analysis.contains("\"summary\": \"ok\""), "{analysis}");
    // The counts show in the scrape of the next cycle.
    let mut metrics = String::new();
    while Instant::now() < deadline {
        metrics = get(port, "/metrics");
        if metric(&metrics, "rdma_monitor_ai_tokens_total{service=\"llm\"}") == 321.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        metric(
            &metrics,
            "rdma_monitor_ai_requests_total{service=\"llm\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "rdma_monitor_ai_tokens_total{service=\"llm\"}"),
        321.0
    );
    let (_, output) = stop(child);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("analysis-llm-")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("analysis-dify-")),
        "{files:?}"
    );
    for text in [&output, &all_files(dir.path()), &metrics, &analysis] {
        assert!(!text.contains(KEY), "the API key leaked");
    }
}

#[test]
fn a_hung_endpoint_costs_the_loop_nothing_and_shutdown_is_prompt() {
    let hung = server(None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        &[
            ("RDMA_MON_LLM__ENABLED", "true".into()),
            (
                "RDMA_MON_LLM__API_URL",
                format!("{hung}/v1/chat/completions"),
            ),
            ("RDMA_MON_LLM__API_KEY", KEY.into()),
            ("RDMA_MON_LLM__TIMEOUT", "600".into()),
        ],
        dir.path(),
        port,
    );
    // Wait for the first scrape, then count cycles over two seconds.
    let t0 = Instant::now();
    let mut first = f64::NAN;
    while t0.elapsed() < Duration::from_secs(10) {
        first = metric(&get(port, "/metrics"), "rdma_monitor_cycles_total");
        if first >= 2.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let metrics = get(port, "/metrics");
    let cycles = metric(&metrics, "rdma_monitor_cycles_total") - first;
    let per_cycle = metric(&metrics, "rdma_monitor_cycle_duration_seconds");
    let expected = t1.elapsed().as_secs_f64() / 0.2;
    assert!(
        cycles >= expected - 2.0,
        "{cycles} cycles in {:?} at 0.2 s",
        t1.elapsed()
    );
    assert!(
        per_cycle < 0.05,
        "cycle took {per_cycle} s with the LLM call hung"
    );
    assert!(get(port, "/healthz").contains("200 OK"));
    let (took, output) = stop(child);
    assert!(
        took < Duration::from_secs(2),
        "shutdown took {took:?} with a call in flight"
    );
    for text in [
        &output,
        &all_files(dir.path()),
        &metrics,
        &get(port, "/snapshot"),
    ] {
        assert!(!text.contains(KEY), "the API key leaked");
    }
    let check = Command::new(BIN)
        .env_clear()
        .env("RDMA_MON_LLM__API_KEY", KEY)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&check.stdout).contains(KEY));
}
