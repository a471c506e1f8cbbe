//! Test servers on 127.0.0.1, one OpenAI-compatible, one Dify-compatible,
//! that check method, path, headers and body shape and answer with canned
//! replies, 429 + Retry-After, 500, garbage JSON, or never.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use crate::metrics::Builder;

use super::*;
use crate::config::Config;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    Json(u16, Vec<(&'static str, String)>, String),
    Hang,
}

/// What a test server saw: the requests, and every I/O error it met.
#[derive(Default)]
pub struct Seen {
    requests: Mutex<Vec<Request>>,
    errors: Mutex<Vec<String>>,
}

impl Seen {
    /// The requests; a server-side I/O error fails the test here (it would
    /// otherwise only show as some other failure at the client, or not at all).
    pub fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "test server: {errors:?}");
        self.requests.lock().unwrap()
    }
}

/// Serves each connection with `handler`; returns the base URL and what it saw.
pub fn serve<F>(handler: F) -> (String, Arc<Seen>)
where
    F: Fn(&Request, usize) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let served = stream.and_then(|stream| {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let req = read_request(&stream)?;
                let reply = handler(&req, n);
                seen2.requests.lock().unwrap().push(req);
                match reply {
                    Reply::Hang => {
                        // Keep the connection open and say nothing.
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(600));
                            drop(stream);
                        });
                        Ok(())
                    }
                    Reply::Json(status, headers, body) => {
                        let mut s = stream;
                        let mut head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        s.write_all(head.as_bytes())?;
                        s.write_all(body.as_bytes())
                    }
                }
            });
            if let Err(e) = served {
                seen2.errors.lock().unwrap().push(e.to_string());
            }
        }
    });
    (url, seen)
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v
            .parse()
            .map_err(|e| std::io::Error::other(format!("content-length {v:?}: {e}")))?,
        None => 0,
    };
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        // Not JSON: Null, which every handler's shape check refuses.
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

const KEY: &str = "sk-test-SECRET-12345";

fn endpoint(service: Service, url: &str, timeout: Duration) -> Endpoint {
    Endpoint {
        service,
        url: url.to_string(),
        api_key: KEY.into(),
        model: "test-model".into(),
        user: "rdma-monitor@test".into(),
        interval: Duration::from_secs(300),
        timeout,
        max_calls_per_hour: 12,
        max_context_bytes: 16000,
        ca_file: String::new(),
    }
}

fn doc() -> SnapshotDoc {
    let mut config = Config::defaults();
    config.general.sysfs_root =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed");
    let published = Arc::new(crate::exporters::Published::new(config.poll_interval()));
    let mut agent = crate::agent::Agent::with_netlink(config, published, None);
    agent.cycle();
    let d = agent.cycle();
    SnapshotDoc::new(d.snapshot.clone(), d.collectors.clone(), d.findings.clone())
}

fn schedule(e: Endpoint) -> Schedule {
    Schedule {
        agent: http_agent(&e),
        endpoint: e,
        next: None,
        calls: VecDeque::new(),
    }
}

/// One call to `url` with a 5 s timeout and fresh counters.
fn call_once(service: Service, url: &str) -> (Answer, ServiceStats) {
    let stats = ServiceStats::default();
    let s = schedule(endpoint(service, url, Duration::from_secs(5)));
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).expect("not shutting down");
    (a, stats)
}

fn llm_ok(req: &Request, _: usize) -> Reply {
    let ok = req.method == "POST"
        && req.path == "/v1/chat/completions"
        && req.header("authorization") == Some(&format!("Bearer {KEY}"))
        && req.header("content-type") == Some("application/json")
        && req.body["model"] == "test-model"
        && req.body["messages"][0]["role"] == "system"
        && req.body["messages"][1]["role"] == "user"
        && req.body["messages"][1]["content"]
            .as_str()
            .is_some_and(|c| c.contains("findings"));
    if !ok {
        return Reply::Json(
            400,
            vec![],
            r#"{"error":{"message":"bad request shape"}}"#.into(),
        );
    }
    Reply::Json(
        200,
        vec![],
        r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"mlx4_0 port 2 is down."},"finish_reason":"stop"}],"usage":{"prompt_tokens":900,"completion_tokens":12,"total_tokens":912}}"#.into(),
    )
}

#[test]
fn llm_request_shape_and_answer() {
    let (url, seen) = serve(llm_ok);
    let s = schedule(endpoint(
        Service::Llm,
        &format!("{url}/v1/chat/completions"),
        Duration::from_secs(5),
    ));
    let stats = ServiceStats::default();
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).unwrap();
    assert!(a.ok, "{:?}", a.error);
    assert_eq!(
        a.answer,
        Some(Value::String("mlx4_0 port 2 is down.".into()))
    );
    assert_eq!(a.tokens, Some(912));
    assert!(a.context_bytes > 0 && a.context_bytes <= 16000);
    assert_eq!(stats.ok.load(Ordering::Relaxed), 1);
    let seen = seen.requests();
    let ctx: Value =
        serde_json::from_str(seen[0].body["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert!(
        ctx["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "findings first: {ctx}"
    );
}

#[test]
fn dify_request_shape_and_outputs() {
    let (url, _) = serve(|req, _| {
        let ok = req.method == "POST"
            && req.path == "/v1/workflows/run"
            && req.header("authorization") == Some(&format!("Bearer {KEY}"))
            && req.body["response_mode"] == "blocking"
            && req.body["user"] == "rdma-monitor@test"
            && req.body["inputs"]["context"].is_string();
        if !ok {
            return Reply::Json(400, vec![], r#"{"code":"invalid_param"}"#.into());
        }
        Reply::Json(
            200,
            vec![],
            r#"{"workflow_run_id":"r1","task_id":"t1","data":{"id":"r1","workflow_id":"w1","status":"succeeded","outputs":{"text":"healthy"},"error":null,"elapsed_time":0.5,"total_tokens":77,"total_steps":3}}"#.into(),
        )
    });
    let mut c = Config::defaults();
    c.dify.enabled = true;
    c.dify.api_url = format!("{url}/v1/");
    c.dify.api_key = KEY.into();
    let mut e = Endpoint::from_config(&c, "test").remove(0);
    e.user = "rdma-monitor@test".into();
    assert_eq!(e.url, format!("{url}/v1/workflows/run"));
    let stats = ServiceStats::default();
    let a = call(&schedule(e), &doc(), &stats, &AtomicBool::new(false)).unwrap();
    assert!(a.ok, "{:?}", a.error);
    assert_eq!(a.answer, Some(json!({"text": "healthy"})));
    assert_eq!(a.tokens, Some(77));
    // The workflow-specific route.
    c.dify.workflow_id = "w1".into();
    assert_eq!(
        Endpoint::from_config(&c, "test")[0].url,
        format!("{url}/v1/workflows/w1/run")
    );
}

#[test]
fn retries_429_honouring_retry_after_then_succeeds() {
    let (url, seen) = serve(|req, n| {
        if n == 0 {
            Reply::Json(
                429,
                vec![("Retry-After", "1".into())],
                r#"{"error":"slow down"}"#.into(),
            )
        } else {
            llm_ok(req, n)
        }
    });
    let s = schedule(endpoint(
        Service::Llm,
        &format!("{url}/v1/chat/completions"),
        Duration::from_secs(10),
    ));
    let stats = ServiceStats::default();
    let t = Instant::now();
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).unwrap();
    assert!(a.ok, "{:?}", a.error);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        t.elapsed()
    );
    assert_eq!(stats.retries.load(Ordering::Relaxed), 1);
    assert_eq!(seen.requests().len(), 2);
}

#[test]
fn server_errors_garbage_and_client_errors() {
    let (url, seen) = serve(|_, _| {
        Reply::Json(
            500,
            vec![],
            format!(r#"{{"error":"boom, your key {KEY} is odd"}}"#),
        )
    });
    let s = schedule(endpoint(Service::Llm, &url, Duration::from_secs(20)));
    let stats = ServiceStats::default();
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).unwrap();
    assert!(!a.ok);
    let err = a.error.unwrap();
    assert!(err.starts_with("HTTP 500"), "{err}");
    assert!(!err.contains(KEY), "the key never shows: {err}");
    assert_eq!(seen.requests().len(), 4, "1 try + 3 retries");

    let (url, _) = serve(|_, _| Reply::Json(200, vec![], "this is not json".into()));
    let (a, stats) = call_once(Service::Llm, &url);
    assert!(a.error.unwrap().contains("not JSON"));
    assert_eq!(stats.bad_reply.load(Ordering::Relaxed), 1);

    let (url, seen) = serve(|_, _| Reply::Json(401, vec![], r#"{"error":"bad key"}"#.into()));
    let (a, _) = call_once(Service::Llm, &url);
    assert!(a.error.unwrap().starts_with("HTTP 401"));
    assert_eq!(seen.requests().len(), 1, "a 4xx is not retried");
}

#[test]
fn a_hung_server_costs_at_most_the_timeout() {
    let (url, _) = serve(|_, _| Reply::Hang);
    let s = schedule(endpoint(Service::Llm, &url, Duration::from_secs(2)));
    let stats = ServiceStats::default();
    let t = Instant::now();
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).unwrap();
    assert!(!a.ok);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(stats.transport_error.load(Ordering::Relaxed), 1);
}

#[test]
fn the_context_fits_its_budget_findings_first() {
    let d = doc();
    let big = context::build(&d, 1_000_000);
    for budget in [16_000, 4_000, 2_000] {
        let ctx = context::build(&d, budget);
        assert!(
            ctx.len() <= budget || ctx.len() < big.len(),
            "{budget}: {}",
            ctx.len()
        );
        let v: Value = serde_json::from_str(&ctx).unwrap();
        assert_eq!(v["findings"].as_array().unwrap().len(), d.findings.len());
    }
    let tiny: Value = serde_json::from_str(&context::build(&d, 2_000)).unwrap();
    assert!(
        tiny.get("devices").is_none(),
        "devices dropped before findings"
    );
}

const DIFY_OK: &str = r#"{"workflow_run_id":"r1","task_id":"t1","data":{"id":"r1","workflow_id":"w1","status":"succeeded","outputs":{"text":"healthy"},"error":null,"elapsed_time":0.5,"total_tokens":77,"total_steps":3}}"#;

/// A 429 whose Retry-After no `Instant` can hold.
fn huge_retry_after(_: &Request, _: usize) -> Reply {
    Reply::Json(
        429,
        vec![("Retry-After", u64::MAX.to_string())],
        r#"{"error":"slow down"}"#.into(),
    )
}

/// Polls `done` until it holds, or fails the test after 30 s.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A worker on `endpoints` with a fresh doc (with rates) in its mailbox.
fn worker(endpoints: Vec<Endpoint>, call: CallFn) -> (Arc<Mailbox>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mb = start(
        endpoints,
        crate::agent::answer_store(dir.path().to_path_buf(), 3),
        Arc::new(ArcSwapOption::empty()),
        call,
    )
    .unwrap();
    let d = doc();
    assert!(d.snapshot.interval_seconds.is_some());
    mb.offer(Arc::new(d), false);
    (mb, dir)
}

fn fast(mut e: Endpoint) -> Endpoint {
    e.interval = Duration::from_millis(50);
    e.max_calls_per_hour = 10_000;
    e
}

#[test]
fn a_huge_retry_after_ends_the_call_without_a_panic() {
    let (url, seen) = serve(huge_retry_after);
    let s = schedule(endpoint(Service::Llm, &url, Duration::from_secs(5)));
    let stats = ServiceStats::default();
    let a = call(&s, &doc(), &stats, &AtomicBool::new(false)).unwrap();
    let err = a.error.unwrap();
    assert!(err.starts_with("HTTP 429"), "{err}");
    assert!(err.contains("would pass the 5 s timeout"), "{err}");
    assert_eq!(stats.http_error.load(Ordering::Relaxed), 1);
    assert_eq!(seen.requests().len(), 1, "no retry past the deadline");
}

#[test]
fn a_huge_retry_after_leaves_llm_and_dify_going() {
    let (llm, llm_seen) = serve(huge_retry_after);
    let (dify, _) = serve(|_, _| Reply::Json(200, vec![], DIFY_OK.into()));
    let (mb, _dir) = worker(
        vec![
            fast(endpoint(Service::Llm, &llm, Duration::from_secs(5))),
            fast(endpoint(Service::Dify, &dify, Duration::from_secs(5))),
        ],
        call,
    );
    let ok = |s| mb.stats_of(s).unwrap().ok.load(Ordering::Relaxed);
    let http_error = |s| mb.stats_of(s).unwrap().http_error.load(Ordering::Relaxed);
    wait_for("3 LLM 429s and 3 Dify answers", || {
        http_error(Service::Llm) >= 3 && ok(Service::Dify) >= 3
    });
    assert!(llm_seen.requests().len() >= 3);
    assert_eq!(mb.liveness(), Liveness::Up);
    assert_eq!(mb.panics.load(Ordering::Relaxed), 0);
    mb.stop();
}

/// Panics on its first call, answers like `call` after that.
fn panics_once(
    s: &Schedule,
    d: &SnapshotDoc,
    st: &ServiceStats,
    stop: &AtomicBool,
) -> Option<Answer> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        panic!("injected fault, key {KEY}");
    }
    call(s, d, st, stop)
}

#[test]
fn a_panicking_call_is_caught_counted_and_the_worker_goes_on() {
    let (url, _) = serve(llm_ok);
    let (mb, _dir) = worker(
        vec![fast(endpoint(
            Service::Llm,
            &format!("{url}/v1/chat/completions"),
            Duration::from_secs(5),
        ))],
        panics_once,
    );
    wait_for("2 answers after the panic", || {
        mb.stats_of(Service::Llm)
            .unwrap()
            .ok
            .load(Ordering::Relaxed)
            >= 2
    });
    assert_eq!(mb.panics.load(Ordering::Relaxed), 1);
    assert_eq!(mb.liveness(), Liveness::Up);
    let mut out = Builder::new();
    mb.export(&mut out);
    let text = String::from_utf8(out.finish().text().to_vec()).unwrap();
    assert!(text.contains("rdma_monitor_ai_worker_up 1\n"), "{text}");
    assert!(
        text.contains("rdma_monitor_ai_worker_panics_total 1\n"),
        "{text}"
    );
    mb.stop();
}

/// Blocks while `STUCK` is set.
static STUCK: AtomicBool = AtomicBool::new(true);
fn blocks(_: &Schedule, _: &SnapshotDoc, _: &ServiceStats, _: &AtomicBool) -> Option<Answer> {
    while STUCK.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn a_call_past_its_timeout_shows_the_worker_stuck_and_a_dead_one_dead() {
    let timeout = Duration::from_secs(2);
    let (mb, _dir) = worker(
        vec![endpoint(Service::Dify, "http://127.0.0.1:9", timeout)],
        blocks,
    );
    wait_for("the call to start", || {
        mb.busy_since_ms.load(Ordering::SeqCst) != 0
    });
    let later = Instant::now() + timeout + STUCK_MARGIN + Duration::from_secs(1);
    match mb.liveness_at(later) {
        Liveness::Stuck {
            service,
            timeout: t,
            ..
        } => {
            assert_eq!((service, t), (Service::Dify, timeout));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        mb.liveness_at(Instant::now()),
        Liveness::Up,
        "within the margin"
    );
    STUCK.store(false, Ordering::SeqCst);
    wait_for("the call to end", || {
        mb.busy_since_ms.load(Ordering::SeqCst) == 0
    });
    assert_eq!(mb.liveness_at(later), Liveness::Up);

    // A worker thread that ended without a shutdown is dead, however it ended.
    let dead = Arc::new(Mailbox::new(Vec::new(), Arc::new(ArcSwapOption::empty())));
    std::thread::scope(|s| {
        s.spawn(|| {
            let _exit = ExitFlag(&dead);
            panic!("outside catch_unwind");
        })
        .join()
        .unwrap_err();
    });
    assert_eq!(dead.liveness(), Liveness::Dead);
    assert_eq!(
        dead.problem().unwrap(),
        "ai worker: dead (the thread has ended)"
    );
    let mut out = Builder::new();
    dead.export(&mut out);
    let text = String::from_utf8(out.finish().text().to_vec()).unwrap();
    assert!(text.contains("rdma_monitor_ai_worker_up 0\n"), "{text}");
    // ... and /healthz says so.
    let published = Arc::new(crate::exporters::Published::new(Duration::from_secs(1)));
    published.ai_worker.store(Some(dead));
    let addr = "127.0.0.1:0".parse().unwrap();
    let http = crate::exporters::prometheus::spawn(addr, published).unwrap();
    let mut conn = TcpStream::connect(http.local_addr).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.ends_with("ai worker: FAILING: dead (the thread has ended)\n"),
        "{reply}"
    );
    mb.stop();
}

#[test]
fn a_reply_over_the_size_limit_says_so() {
    let big = "x".repeat(MAX_REPLY_BYTES as usize + 1000);
    let (url, _) = serve(move |_, _| {
        Reply::Json(
            200,
            vec![],
            format!(r#"{{"choices":[{{"message":{{"content":"{big}"}}}}]}}"#),
        )
    });
    let (a, stats) = call_once(Service::Llm, &url);
    let err = a.error.unwrap();
    assert_eq!(
        err,
        format!("reply is larger than the {MAX_REPLY_BYTES}-byte limit")
    );
    assert_eq!(stats.bad_reply.load(Ordering::Relaxed), 1);
}

#[test]
fn a_token_count_near_2_pow_64_neither_wraps_nor_counts() {
    let (url, _) = serve(|req, n| match n {
        0 => llm_ok(req, n),
        _ => Reply::Json(
            200,
            vec![],
            format!(
                r#"{{"choices":[{{"message":{{"content":"ok"}}}}],"usage":{{"total_tokens":{}}}}}"#,
                u64::MAX - 5
            ),
        ),
    });
    let s = schedule(endpoint(
        Service::Llm,
        &format!("{url}/v1/chat/completions"),
        Duration::from_secs(5),
    ));
    let stats = ServiceStats::default();
    for _ in 0..2 {
        assert!(
            call(&s, &doc(), &stats, &AtomicBool::new(false))
                .unwrap()
                .ok
        );
    }
    assert_eq!(stats.tokens.load(Ordering::Relaxed), 912);
    assert_eq!(stats.token_anomalies.load(Ordering::Relaxed), 1);
    // Plausible counts saturate rather than wrap.
    stats.tokens.store(u64::MAX - 10, Ordering::Relaxed);
    stats.add_tokens(100);
    assert_eq!(stats.tokens.load(Ordering::Relaxed), u64::MAX);
    assert_eq!(stats.token_anomalies.load(Ordering::Relaxed), 2);
}

#[test]
fn a_key_echoed_in_another_case_is_scrubbed() {
    let upper = KEY.to_ascii_uppercase();
    let mixed: String = KEY
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let no_key = |text: &str| {
        !text
            .to_ascii_lowercase()
            .contains(&KEY.to_ascii_lowercase())
    };
    let body = format!(r#"{{"error":"invalid key {upper}"}}"#);
    let (url, _) = serve(move |_, _| Reply::Json(401, vec![], body.clone()));
    let (a, _) = call_once(Service::Llm, &url);
    let err = a.error.unwrap();
    assert!(
        err.contains("invalid key <redacted>") && no_key(&err),
        "{err}"
    );

    let reply = format!(
        r#"{{"data":{{"outputs":{{"text":"you sent {mixed}","{upper}":[1,"{KEY}"]}},"total_tokens":1}}}}"#
    );
    let (url, _) = serve(move |_, _| Reply::Json(200, vec![], reply.clone()));
    let (a, _) = call_once(Service::Dify, &url);
    let answer = a.answer.unwrap().to_string();
    assert!(
        answer.contains("you sent <redacted>") && no_key(&answer),
        "{answer}"
    );
    assert_eq!(scrub_key("a-KeY-b-key", "key"), "a-<redacted>-b-<redacted>");
    assert_eq!(scrub_key("ünïcode KEY", "key"), "ünïcode <redacted>");
}

#[test]
fn durations_no_instant_can_hold_do_not_panic() {
    let mut c = Config::defaults();
    c.llm.enabled = true;
    c.llm.interval = 1e30;
    c.llm.timeout = f64::MAX;
    let e = Endpoint::from_config(&c, "test").remove(0);
    assert_eq!((e.interval, e.timeout), (LONGEST, LONGEST));
    let now = Instant::now();
    assert!(after(now, Duration::MAX) > now);
    assert_eq!(seconds(f64::NAN), Duration::ZERO);
}

#[test]
fn a_ca_file_that_is_not_a_file_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for path in ["/dev/zero", fifo.to_str().unwrap()] {
        let mut e = endpoint(
            Service::Llm,
            "http://127.0.0.1:9/v1",
            Duration::from_secs(1),
        );
        e.ca_file = path.to_string();
        let Err(err) = http_agent(&e) else {
            panic!("{path} accepted as a CA file")
        };
        assert!(err.contains("not a regular file"), "{path}: {err}");
    }
}
