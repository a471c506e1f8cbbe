//! Test servers on 127.0.0.1, one OpenAI-compatible, one Dify-compatible,
//! that check method, path, headers and body shape and answer with canned
//! replies, 429 + Retry-After, 500, garbage JSON, or never.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

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

/// Serves each connection with `handler`; returns the base URL and the requests seen.
pub fn serve<F>(handler: F) -> (String, Arc<Mutex<Vec<Request>>>)
where
    F: Fn(&Request, usize) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let req = read_request(&stream);
            let reply = handler(&req, n);
            seen2.lock().unwrap().push(req);
            match reply {
                Reply::Hang => {
                    // Keep the connection open and say nothing.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(600));
                        drop(stream);
                    });
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
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body.as_bytes());
                }
            }
        }
    });
    (url, seen)
}

fn read_request(stream: &TcpStream) -> Request {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    Request {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
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
    SnapshotDoc::new(d.snapshot.clone())
}

fn schedule(e: Endpoint) -> Schedule {
    Schedule {
        agent: http_agent(&e),
        endpoint: e,
        next: None,
        calls: VecDeque::new(),
    }
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
    let seen = seen.lock().unwrap();
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
    assert_eq!(seen.lock().unwrap().len(), 2);
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
    assert_eq!(seen.lock().unwrap().len(), 4, "1 try + 3 retries");

    let (url, _) = serve(|_, _| Reply::Json(200, vec![], "this is not json".into()));
    let stats = ServiceStats::default();
    let a = call(
        &schedule(endpoint(Service::Llm, &url, Duration::from_secs(5))),
        &doc(),
        &stats,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(a.error.unwrap().contains("not JSON"));
    assert_eq!(stats.bad_reply.load(Ordering::Relaxed), 1);

    let (url, seen) = serve(|_, _| Reply::Json(401, vec![], r#"{"error":"bad key"}"#.into()));
    let a = call(
        &schedule(endpoint(Service::Llm, &url, Duration::from_secs(5))),
        &doc(),
        &ServiceStats::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(a.error.unwrap().starts_with("HTTP 401"));
    assert_eq!(seen.lock().unwrap().len(), 1, "a 4xx is not retried");
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
    let big = context::build(&d.snapshot, 1_000_000);
    for budget in [16_000, 4_000, 2_000] {
        let ctx = context::build(&d.snapshot, budget);
        assert!(
            ctx.len() <= budget || ctx.len() < big.len(),
            "{budget}: {}",
            ctx.len()
        );
        let v: Value = serde_json::from_str(&ctx).unwrap();
        assert_eq!(
            v["findings"].as_array().unwrap().len(),
            d.snapshot.findings.len()
        );
    }
    let tiny: Value = serde_json::from_str(&context::build(&d.snapshot, 2_000)).unwrap();
    assert!(
        tiny.get("devices").is_none(),
        "devices dropped before findings"
    );
}
