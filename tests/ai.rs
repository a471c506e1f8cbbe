//! The AI worker inside the running agent: answers kept and served, a hung
//! endpoint that costs the collection loop nothing, a prompt shutdown, and
//! the API key in no output at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");
const KEY: &str = "sk-e2e-SECRET-98765";

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// A fake endpoint: the URL, how many requests it has read, and every I/O
/// error it met (a test checks them: a swallowed error would hide a fault).
struct Endpoint {
    url: String,
    requests: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Endpoint {
    fn requests(&self) -> usize {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "{}: {errors:?}", self.url);
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and body) from `s`.
fn read_request(s: &TcpStream) -> std::io::Result<()> {
    let mut r = BufReader::new(s);
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v
                .trim()
                .parse()
                .map_err(|e| std::io::Error::other(format!("content-length {v:?}: {e}")))?;
        }
    }
    r.read_exact(&mut vec![0; len])
}

/// A server answering every request with `status`, `headers` (each line
/// ending in CRLF) and `body`; `None`: read the request and never answer.
fn server(reply: Option<(u16, String, String)>) -> Endpoint {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = Endpoint {
        url: format!("http://{}", l.local_addr().unwrap()),
        requests: Arc::new(AtomicUsize::new(0)),
        errors: Arc::new(Mutex::new(Vec::new())),
    };
    let (requests, errors) = (ep.requests.clone(), ep.errors.clone());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let served = s.and_then(|mut s| {
                read_request(&s)?;
                requests.fetch_add(1, Ordering::SeqCst);
                match &reply {
                    Some((status, headers, body)) => write!(
                        s,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                        body.len()
                    ),
                    None => {
                        held.push(s);
                        Ok(())
                    }
                }
            });
            if let Err(e) = served {
                errors.lock().unwrap().push(e.to_string());
            }
        }
    });
    ep
}

fn ok_server(body: &str) -> Endpoint {
    server(Some((200, String::new(), body.to_string())))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn try_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The whole response to `GET path`; a refused connection, a failed read or
/// a reply that is not HTTP fails the test (an empty string would pass
/// every "does not contain" check).
fn get(port: u16, path: &str) -> String {
    let out = try_get(port, path).unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"));
    assert!(
        out.starts_with("HTTP/1.1 "),
        "GET {path}: not HTTP: {out:?}"
    );
    out
}

/// Waits until the agent answers HTTP on `port` (any status).
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match try_get(port, "/healthz") {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => panic!("agent not listening on {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Polls `/metrics` until every (series, at least) holds; 20 s at most.
fn wait_metrics(port: u16, want: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = get(port, "/metrics");
        if want.iter().all(|(name, min)| metric(&text, name) >= *min) {
            return text;
        }
        assert!(Instant::now() < deadline, "{want:?} never held:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let child = cmd.spawn().unwrap();
    wait_listening(port);
    child
}

/// Sends SIGTERM and waits for the exit, 20 s at most (well above the 5 s
/// shutdown grace, so a loaded machine cannot fail it). Status 0 means the
/// last snapshot was written within the grace: the agent exits 1 when not.
fn stop(child: Child) -> String {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on our own child, which has not been waited for.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let Ok(out) = rx.recv_timeout(Duration::from_secs(20)) else {
        // SAFETY: kill(2) on our own child, which the waiting thread has not
        // reaped: it is still blocked in wait.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("the agent did not exit within 20 s of SIGTERM");
    };
    let out = out.unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn all_files(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        s += &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    s
}

/// The key shows nowhere, in any letter case.
fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text
            .to_ascii_lowercase()
            .contains(&KEY.to_ascii_lowercase()),
        "the API key leaked into {what}"
    );
}

/// Everything the live agent serves that could carry the key.
fn served(port: u16) -> Vec<(&'static str, String)> {
    ["/metrics", "/snapshot", "/analysis", "/healthz"]
        .into_iter()
        .map(|p| (p, get(port, p)))
        .collect()
}

#[test]
fn answers_from_llm_and_dify_are_kept_and_served() {
    let llm = ok_server(
        r#"{"choices":[{"message":{"role":"assistant","content":"hfi1_0 symbol errors saturated"}}],"usage":{"total_tokens":321}}"#,
    );
    let dify =
        ok_server(r#"{"data":{"status":"succeeded","outputs":{"summary":"ok"},"total_tokens":5}}"#);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        &[
            ("RDMA_MON_LLM__ENABLED", "true".into()),
            (
                "RDMA_MON_LLM__API_URL",
                format!("{}/v1/chat/completions", llm.url),
            ),
            ("RDMA_MON_LLM__API_KEY", KEY.into()),
            ("RDMA_MON_DIFY__ENABLED", "true".into()),
            ("RDMA_MON_DIFY__API_URL", format!("{}/v1", dify.url)),
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
    let metrics = wait_metrics(
        port,
        &[("rdma_monitor_ai_tokens_total{service=\"llm\"}", 321.0)],
    );
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
    assert_eq!(metric(&metrics, "rdma_monitor_ai_worker_up"), 1.0);
    let live = served(port);
    assert!(llm.requests() >= 1 && dify.requests() >= 1);
    let output = stop(child);
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
    assert_no_key("the output", &output);
    assert_no_key("the files", &all_files(dir.path()));
    for (path, text) in &live {
        assert_no_key(path, text);
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
                format!("{}/v1/chat/completions", hung.url),
            ),
            ("RDMA_MON_LLM__API_KEY", KEY.into()),
            ("RDMA_MON_LLM__TIMEOUT", "600".into()),
        ],
        dir.path(),
        port,
    );
    // The call reaches the endpoint, which never answers: it hangs for the
    // whole test (its timeout is 600 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while hung.requests() == 0 {
        assert!(Instant::now() < deadline, "no request reached the endpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    // While it hangs, cycles go on completing: five more of them.
    let first = metric(
        &wait_metrics(port, &[("rdma_monitor_cycles_total", 1.0)]),
        "rdma_monitor_cycles_total",
    );
    let metrics = wait_metrics(port, &[("rdma_monitor_cycles_total", first + 5.0)]);
    // Still the one call, still in flight; within its timeout it is not a
    // stuck worker.
    assert_eq!(hung.requests(), 1);
    assert_eq!(metric(&metrics, "rdma_monitor_ai_worker_up"), 1.0);
    assert!(get(port, "/healthz").starts_with("HTTP/1.1 200 OK"));
    // Read while the agent serves: after it stopped there is nothing to read.
    let live = served(port);
    // With the call in flight, SIGTERM still ends in a clean exit.
    let output = stop(child);
    assert_no_key("the output", &output);
    assert_no_key("the files", &all_files(dir.path()));
    for (path, text) in &live {
        assert_no_key(path, text);
    }
    let check = Command::new(BIN)
        .env_clear()
        .env("RDMA_MON_LLM__API_KEY", KEY)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_no_key("--check-config", &String::from_utf8_lossy(&check.stdout));
}

/// The done-when of issue 10: a 429 whose Retry-After overflows `Instant`
/// (it killed the shared worker thread) leaves both services going, and the
/// key the error body echoes upper-cased shows nowhere.
#[test]
fn a_hostile_429_leaves_llm_and_dify_going() {
    let llm = server(Some((
        429,
        format!("Retry-After: {}\r\n", u64::MAX),
        format!(r#"{{"error":"slow down, {}"}}"#, KEY.to_ascii_uppercase()),
    )));
    let dify =
        ok_server(r#"{"data":{"status":"succeeded","outputs":{"summary":"ok"},"total_tokens":5}}"#);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        &[
            ("RDMA_MON_LLM__ENABLED", "true".into()),
            (
                "RDMA_MON_LLM__API_URL",
                format!("{}/v1/chat/completions", llm.url),
            ),
            ("RDMA_MON_LLM__API_KEY", KEY.into()),
            ("RDMA_MON_LLM__INTERVAL", "1".into()),
            ("RDMA_MON_DIFY__ENABLED", "true".into()),
            ("RDMA_MON_DIFY__API_URL", format!("{}/v1", dify.url)),
            ("RDMA_MON_DIFY__API_KEY", KEY.into()),
            ("RDMA_MON_DIFY__INTERVAL", "1".into()),
        ],
        dir.path(),
        port,
    );
    let metrics = wait_metrics(
        port,
        &[
            (
                "rdma_monitor_ai_requests_total{service=\"llm\",outcome=\"http_error\"}",
                3.0,
            ),
            (
                "rdma_monitor_ai_requests_total{service=\"dify\",outcome=\"ok\"}",
                3.0,
            ),
        ],
    );
    assert_eq!(metric(&metrics, "rdma_monitor_ai_worker_up"), 1.0);
    assert_eq!(metric(&metrics, "rdma_monitor_ai_worker_panics_total"), 0.0);
    assert!(llm.requests() >= 3 && dify.requests() >= 3);
    let live = served(port);
    let analysis = &live[2].1;
    assert!(analysis.contains("HTTP 429"), "{analysis}");
    assert!(
        analysis.contains("would pass the 60 s timeout"),
        "{analysis}"
    );
    assert!(live[3].1.starts_with("HTTP/1.1 200 OK"), "{}", live[3].1);
    let output = stop(child);
    assert!(output.contains("llm analysis failed: HTTP 429"), "{output}");
    assert_no_key("the output", &output);
    assert_no_key("the files", &all_files(dir.path()));
    for (path, text) in &live {
        assert_no_key(path, text);
    }
}
