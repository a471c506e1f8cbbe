//! AI analysis on a side thread: the collection loop drops its latest
//! snapshot into a one-slot mailbox (an atomic pointer swap, never a wait)
//! and wakes the worker; the worker posts a compact context to an
//! OpenAI-compatible chat-completions API and to a Dify workflow on its own
//! schedule, keeps the answers, and counts what happened. A slow or dead
//! endpoint only ever costs this thread.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use serde_json::{Value, json};

use super::context;
use crate::clock::unix_ms;
use crate::config::{Config, REDACTED};
use crate::metrics::Builder;
use crate::snapshot::SnapshotDoc;

/// Replies longer than this are refused with an error that says so: an
/// answer is a few KiB, and the agent's memory stays bounded whatever an
/// endpoint sends.
pub const MAX_REPLY_BYTES: u64 = 1 << 20;

/// A token count above this for one call is not believed (the largest
/// context windows are ~10^7 tokens): it is counted as an anomaly and left
/// out of `rdma_monitor_ai_tokens_total`.
pub const MAX_TOKENS_PER_CALL: u64 = 1 << 32;

/// How far past its timeout a call may run before the worker counts as
/// stuck. The HTTP client's own deadline bounds a call, so only a bug or a
/// blocked disk (the answer file is written in the same step) trips this.
pub const STUCK_MARGIN: Duration = Duration::from_secs(30);

/// The longest wait the worker ever schedules: `Instant` cannot hold any
/// `Duration` (a `Retry-After: 18446744073709551615` overflowed it).
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// `now + d`, with `d` capped at [`LONGEST`]; never panics.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(LONGEST)).unwrap_or(now)
}

/// Seconds from the config as a `Duration`, capped at [`LONGEST`]; never panics.
fn seconds(v: f64) -> Duration {
    Duration::try_from_secs_f64(v)
        .unwrap_or(if v > 0.0 { LONGEST } else { Duration::ZERO })
        .min(LONGEST)
}

/// `text` with every occurrence of `key` replaced, in any ASCII letter case:
/// an error body may echo the key upper-cased. ASCII case folding keeps byte
/// offsets, so a match in the folded text is a match in `text`.
fn scrub_key(text: &str, key: &str) -> String {
    if key.is_empty() {
        return text.to_string();
    }
    let folded = text.to_ascii_lowercase();
    let needle = key.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (i, _) in folded.match_indices(&needle) {
        out.push_str(&text[from..i]);
        out.push_str(REDACTED);
        from = i + needle.len();
    }
    out.push_str(&text[from..]);
    out
}

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Llm,
    Dify,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Llm => "llm",
            Service::Dify => "dify",
        }
    }
}

/// One service's settings, from the `llm` or `dify` section.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub service: Service,
    pub url: String,
    pub api_key: String,
    pub model: String,
    pub user: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_calls_per_hour: u32,
    pub max_context_bytes: usize,
    pub ca_file: String,
}

impl Endpoint {
    pub fn from_config(c: &Config, hostname: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if c.llm.enabled {
            out.push(Endpoint {
                service: Service::Llm,
                url: c.llm.api_url.clone(),
                api_key: c.llm.api_key.clone(),
                model: c.llm.model.clone(),
                user: String::new(),
                interval: seconds(c.llm.interval),
                timeout: seconds(c.llm.timeout),
                max_calls_per_hour: c.llm.max_calls_per_hour,
                max_context_bytes: c.llm.max_context_bytes as usize,
                ca_file: c.llm.ca_file.clone(),
            });
        }
        if c.dify.enabled {
            let base = c.dify.api_url.trim_end_matches('/');
            let url = if c.dify.workflow_id.is_empty() {
                format!("{base}/workflows/run")
            } else {
                format!("{base}/workflows/{}/run", c.dify.workflow_id)
            };
            out.push(Endpoint {
                service: Service::Dify,
                url,
                api_key: c.dify.api_key.clone(),
                model: String::new(),
                user: if c.dify.user.is_empty() {
                    format!("rdma-monitor@{hostname}")
                } else {
                    c.dify.user.clone()
                },
                interval: seconds(c.dify.interval),
                timeout: seconds(c.dify.timeout),
                max_calls_per_hour: c.dify.max_calls_per_hour,
                max_context_bytes: c.dify.max_context_bytes as usize,
                ca_file: c.dify.ca_file.clone(),
            });
        }
        out
    }

    /// Any text that could carry the key, with the key taken out.
    fn scrub(&self, text: &str) -> String {
        scrub_key(text, &self.api_key)
    }

    /// A reply value with the key taken out of every string, object key and
    /// number (a numeric key echoed as a number).
    fn scrub_value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.scrub(&s)),
            Value::Number(n) if self.scrub(&n.to_string()) != n.to_string() => {
                Value::String(REDACTED.into())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.scrub_value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (self.scrub(&k), self.scrub_value(x)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Outcome counters of one service, readable by the collection loop.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub ok: AtomicU64,
    pub http_error: AtomicU64,
    pub transport_error: AtomicU64,
    pub bad_reply: AtomicU64,
    /// Posts skipped because `max_calls_per_hour` was reached.
    pub capped: AtomicU64,
    pub retries: AtomicU64,
    pub tokens: AtomicU64,
    /// Token counts not believed (over [`MAX_TOKENS_PER_CALL`]) or that
    /// would have taken `tokens` past `u64::MAX`.
    pub token_anomalies: AtomicU64,
    pub last_success_unix_ms: AtomicU64,
    pub last_latency_us: AtomicU64,
    pub last_context_bytes: AtomicU64,
}

impl ServiceStats {
    /// Adds a reported token count: saturating, and an implausible count is
    /// counted as an anomaly instead of being added.
    fn add_tokens(&self, n: u64) {
        if n > MAX_TOKENS_PER_CALL {
            self.token_anomalies.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(n))
            })
            .unwrap_or_else(|t| t);
        if before.checked_add(n).is_none() {
            self.token_anomalies.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The answer of one service, kept and served at `/analysis`.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub service: Service,
    pub timestamp: String,
    pub snapshot_timestamp: String,
    pub ok: bool,
    /// The model's text (LLM) or the workflow's `data.outputs` (Dify).
    pub answer: Option<Value>,
    pub error: Option<String>,
    pub latency_seconds: f64,
    pub tokens: Option<u64>,
    pub context_bytes: usize,
}

/// Shared between the loop (writer of `latest`) and the worker.
pub struct Mailbox {
    latest: ArcSwapOption<SnapshotDoc>,
    news: AtomicBool,
    stop: AtomicBool,
    worker: Mutex<Option<Thread>>,
    pub stats: Vec<(Service, ServiceStats)>,
    /// The newest answer of each service, as JSON, for `/analysis`.
    pub answers: Arc<ArcSwapOption<Vec<u8>>>,
    /// Calls that panicked and were caught (the worker lives on).
    pub panics: AtomicU64,
    /// Liveness: the start of the running step in ms after `epoch`, plus 1
    /// (0: idle), the service it runs for, and when it counts as stuck.
    epoch: Instant,
    busy_since_ms: AtomicU64,
    busy_service: AtomicUsize,
    busy_limit_ms: AtomicU64,
    /// Set when the worker thread ends, however it ends.
    exited: AtomicBool,
}

/// Whether the worker is doing its job, for `/healthz` and
/// `rdma_monitor_ai_worker_up`.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    Up,
    /// The thread is gone without a shutdown.
    Dead,
    /// A call has run past its timeout by more than [`STUCK_MARGIN`].
    Stuck {
        service: Service,
        running: Duration,
        timeout: Duration,
    },
}

impl Mailbox {
    fn new(stats: Vec<(Service, ServiceStats)>, answers: Arc<ArcSwapOption<Vec<u8>>>) -> Mailbox {
        Mailbox {
            latest: ArcSwapOption::empty(),
            news: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            worker: Mutex::new(None),
            stats,
            answers,
            panics: AtomicU64::new(0),
            epoch: Instant::now(),
            busy_since_ms: AtomicU64::new(0),
            busy_service: AtomicUsize::new(0),
            busy_limit_ms: AtomicU64::new(0),
            exited: AtomicBool::new(false),
        }
    }

    /// Hands over the latest snapshot; never blocks on the worker.
    pub fn offer(&self, doc: Arc<SnapshotDoc>, findings_news: bool) {
        self.latest.store(Some(doc));
        if findings_news {
            self.news.store(true, Ordering::Release);
        }
        if let Ok(g) = self.worker.try_lock()
            && let Some(t) = g.as_ref()
        {
            t.unpark();
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(g) = self.worker.try_lock()
            && let Some(t) = g.as_ref()
        {
            t.unpark();
        }
    }

    pub fn stats_of(&self, s: Service) -> Option<&ServiceStats> {
        self.stats.iter().find(|(x, _)| *x == s).map(|(_, st)| st)
    }

    fn ms_since_epoch(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks the start (`Some`) or the end (`None`) of one service's step.
    fn busy(&self, step: Option<(usize, Duration)>) {
        match step {
            Some((service, timeout)) => {
                self.busy_service.store(service, Ordering::Relaxed);
                let limit = timeout.saturating_add(STUCK_MARGIN).as_millis();
                self.busy_limit_ms
                    .store(u64::try_from(limit).unwrap_or(u64::MAX), Ordering::Relaxed);
                let since = self.ms_since_epoch(Instant::now()).saturating_add(1);
                self.busy_since_ms.store(since, Ordering::Release);
            }
            None => self.busy_since_ms.store(0, Ordering::Release),
        }
    }

    pub fn liveness(&self) -> Liveness {
        self.liveness_at(Instant::now())
    }

    /// Liveness as seen at `now` (a parameter so a test needs no waiting).
    fn liveness_at(&self, now: Instant) -> Liveness {
        if self.exited.load(Ordering::Acquire) && !self.stop.load(Ordering::Acquire) {
            return Liveness::Dead;
        }
        let since = self.busy_since_ms.load(Ordering::Acquire);
        if since == 0 {
            return Liveness::Up;
        }
        let running = self.ms_since_epoch(now).saturating_sub(since - 1);
        let limit = self.busy_limit_ms.load(Ordering::Relaxed);
        match self.stats.get(self.busy_service.load(Ordering::Relaxed)) {
            Some((service, _)) if running > limit => Liveness::Stuck {
                service: *service,
                running: Duration::from_millis(running),
                timeout: Duration::from_millis(limit).saturating_sub(STUCK_MARGIN),
            },
            _ => Liveness::Up,
        }
    }

    /// `None` while the worker is up, else one line saying what is wrong.
    pub fn problem(&self) -> Option<String> {
        match self.liveness() {
            Liveness::Up => None,
            Liveness::Dead => Some("ai worker: dead (the thread has ended)".into()),
            Liveness::Stuck {
                service,
                running,
                timeout,
            } => Some(format!(
                "ai worker: stuck ({} call running for {} s, timeout {} s)",
                service.as_str(),
                running.as_secs(),
                timeout.as_secs()
            )),
        }
    }

    /// The worker's self-metrics.
    pub fn export(&self, out: &mut Builder) {
        use std::sync::atomic::Ordering::Relaxed;
        out.gauge_u64(
            "rdma_monitor_ai_worker_up",
            "1 while the AI worker thread runs and no call is past its timeout by 30 s; 0 otherwise (see /healthz).",
            &[],
            (self.liveness() == Liveness::Up).into(),
        );
        out.counter(
            "rdma_monitor_ai_worker_panics_total",
            "AI calls that panicked; the worker caught each and went on.",
            &[],
            self.panics.load(Relaxed),
        );
        for (service, st) in &self.stats {
            let svc = service.as_str();
            for (outcome, n) in [
                ("ok", st.ok.load(Relaxed)),
                ("http_error", st.http_error.load(Relaxed)),
                ("transport_error", st.transport_error.load(Relaxed)),
                ("bad_reply", st.bad_reply.load(Relaxed)),
                ("capped", st.capped.load(Relaxed)),
            ] {
                out.counter(
                    "rdma_monitor_ai_requests_total",
                    "AI analysis posts by service and outcome (capped: skipped by max_calls_per_hour).",
                    &[("service", svc), ("outcome", outcome)],
                    n,
                );
            }
            out.counter(
                "rdma_monitor_ai_retries_total",
                "AI analysis retries (429, 5xx, transport errors).",
                &[("service", svc)],
                st.retries.load(Relaxed),
            );
            out.counter(
                "rdma_monitor_ai_tokens_total",
                "Tokens the AI service reported using (saturating; implausible counts left out).",
                &[("service", svc)],
                st.tokens.load(Relaxed),
            );
            out.counter(
                "rdma_monitor_ai_token_anomalies_total",
                "Token counts left out of rdma_monitor_ai_tokens_total: over 2^32 in one reply, or the total would pass 2^64.",
                &[("service", svc)],
                st.token_anomalies.load(Relaxed),
            );
            let last = st.last_success_unix_ms.load(Relaxed);
            if last > 0 {
                out.gauge(
                    "rdma_monitor_ai_last_success_timestamp_seconds",
                    "Unix time of the last successful AI analysis.",
                    &[("service", svc)],
                    last as f64 / 1000.0,
                );
            }
            out.gauge(
                "rdma_monitor_ai_last_latency_seconds",
                "How long the last AI analysis call took, retries included.",
                &[("service", svc)],
                st.last_latency_us.load(Relaxed) as f64 / 1e6,
            );
            out.gauge_u64(
                "rdma_monitor_ai_last_context_bytes",
                "Size of the last context sent.",
                &[("service", svc)],
                st.last_context_bytes.load(Relaxed),
            );
        }
    }
}

fn http_agent(e: &Endpoint) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if !e.ca_file.is_empty() {
        // Bounded and non-blocking like every file the agent reads: /dev/zero
        // or a FIFO here must not eat memory or hang the worker's start.
        use crate::sources::file::{CONFIG_MAX, Follow, read};
        let pem = read(std::path::Path::new(&e.ca_file), CONFIG_MAX, Follow::Yes)
            .map_err(|err| format!("{}.ca_file {}: {err}", e.service.as_str(), e.ca_file))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!(
                "{}.ca_file {}: no certificate in it",
                e.service.as_str(),
                e.ca_file
            ));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(e.timeout.min(Duration::from_secs(10))))
        .proxy(ureq::Proxy::try_from_env())
        .tls_config(tls.build())
        .user_agent(concat!("rdma-monitor/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.new_agent())
}

/// The request body for one service.
fn body(e: &Endpoint, ctx: &str) -> Value {
    match e.service {
        Service::Llm => json!({
            "model": e.model,
            "messages": [
                {"role": "system", "content": context::SYSTEM_PROMPT},
                {"role": "user", "content": ctx},
            ],
            "temperature": 0.2,
        }),
        Service::Dify => json!({
            "inputs": {"context": ctx, "system_prompt": context::SYSTEM_PROMPT},
            "response_mode": "blocking",
            "user": e.user,
        }),
    }
}

/// (answer, tokens) from a reply body.
fn parse_reply(service: Service, v: &Value) -> Result<(Value, Option<u64>), String> {
    match service {
        Service::Llm => {
            let content = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or("reply has no choices[0].message.content")?;
            Ok((
                Value::String(content.to_string()),
                v.pointer("/usage/total_tokens").and_then(Value::as_u64),
            ))
        }
        Service::Dify => {
            let data = v.get("data").ok_or("reply has no data")?;
            if let Some(err) = data
                .get("error")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Err(format!("workflow failed: {err}"));
            }
            let outputs = data.get("outputs").ok_or("reply has no data.outputs")?;
            Ok((
                outputs.clone(),
                data.get("total_tokens").and_then(Value::as_u64),
            ))
        }
    }
}

enum Failure {
    Http(u16, String),
    Transport(String),
    BadReply(String),
}

/// Reads a reply body as text, at most [`MAX_REPLY_BYTES`] (an HTTP error
/// body only for its excerpt, so its read error becomes the excerpt).
fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> Result<String, Failure> {
    match resp
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .lossy_utf8(true)
        .read_to_string()
    {
        Ok(text) => Ok(text),
        Err(ureq::Error::BodyExceedsLimit(n)) => Err(Failure::BadReply(format!(
            "reply is larger than the {n}-byte limit"
        ))),
        Err(err) => Err(Failure::Transport(format!("reading the reply: {err}"))),
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Result<(Value, Option<u64>), Failure>),
    /// Worth another try, after the server's `Retry-After` when it gave one.
    Again(Failure, Option<u64>),
}

fn attempt(
    req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    e: &Endpoint,
    payload: &str,
) -> Attempt {
    let mut resp = match req.send(payload.as_bytes()) {
        Ok(resp) => resp,
        Err(err) => return Attempt::Again(Failure::Transport(e.scrub(&err.to_string())), None),
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Attempt::Done(read_body(&mut resp).and_then(|text| {
            let v: Value = serde_json::from_str(&text)
                .map_err(|err| Failure::BadReply(format!("reply is not JSON: {err}")))?;
            parse_reply(e.service, &v).map_err(Failure::BadReply)
        }));
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let excerpt: String = match read_body(&mut resp) {
        Ok(text) => e.scrub(&text).chars().take(200).collect(),
        Err(Failure::BadReply(m) | Failure::Transport(m) | Failure::Http(_, m)) => {
            format!("({})", e.scrub(&m))
        }
    };
    let failure = Failure::Http(status, excerpt);
    if status == 429 || status >= 500 {
        Attempt::Again(failure, retry_after)
    } else {
        Attempt::Done(Err(failure))
    }
}

/// Posts with retries on 429 and 5xx (honouring Retry-After) and on
/// transport errors, all within `e.timeout`: a wait that would pass the
/// deadline ends the call with the last failure instead.
fn post(
    agent: &ureq::Agent,
    e: &Endpoint,
    body: &Value,
    stats: &ServiceStats,
    stop: &AtomicBool,
) -> Result<(Value, Option<u64>), Failure> {
    let deadline = after(Instant::now(), e.timeout);
    let payload = body.to_string();
    let mut backoff = Duration::from_millis(500);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Transport(format!(
                "no answer within {:?}",
                e.timeout
            )));
        }
        let mut req = agent
            .post(&e.url)
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Content-Type", "application/json");
        if !e.api_key.is_empty() {
            req = req.header("Authorization", &format!("Bearer {}", e.api_key));
        }
        let (failure, retry_after) = match attempt(req, e, &payload) {
            Attempt::Done(result) => return result,
            Attempt::Again(failure, retry_after) => (failure, retry_after),
        };
        if attempts >= 4 {
            return Err(failure);
        }
        let wait = retry_after.map_or(backoff, Duration::from_secs);
        let left = deadline.saturating_duration_since(Instant::now());
        if wait >= left {
            let why = format!(
                "gave up: the next try (in {} s) would pass the {} s timeout",
                wait.as_secs_f64(),
                e.timeout.as_secs_f64()
            );
            return Err(match failure {
                Failure::Http(status, excerpt) => {
                    Failure::Http(status, format!("{excerpt} ({why})"))
                }
                Failure::Transport(m) => Failure::Transport(format!("{m} ({why})")),
                bad @ Failure::BadReply(_) => bad,
            });
        }
        stats.retries.fetch_add(1, Ordering::Relaxed);
        backoff = backoff.saturating_mul(2);
        let until = after(Instant::now(), wait);
        // Sleep in small steps so a shutdown is not held up.
        while Instant::now() < until {
            if stop.load(Ordering::Acquire) {
                return Err(Failure::Transport("shutting down".into()));
            }
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
    }
}

/// Stores one answer as a file beside the snapshots: `(prefix, timestamp,
/// json)`. The agent hands in the exporters' writer (analysis sits below the
/// exporters and does not import them).
pub type StoreFn = Box<dyn FnMut(&str, &str, &[u8]) -> Result<(), String> + Send>;

/// Starts the worker; `None` when no service is enabled.
pub fn spawn(
    config: &Config,
    hostname: &str,
    store: StoreFn,
    answers: Arc<ArcSwapOption<Vec<u8>>>,
) -> Option<Arc<Mailbox>> {
    let endpoints = Endpoint::from_config(config, hostname);
    if endpoints.is_empty() {
        return None;
    }
    start(endpoints, store, answers, call)
}

/// The signature of [`call`], which a test replaces to inject a fault.
type CallFn = fn(&Schedule, &SnapshotDoc, &ServiceStats, &AtomicBool) -> Option<Answer>;

fn start(
    endpoints: Vec<Endpoint>,
    store: StoreFn,
    answers: Arc<ArcSwapOption<Vec<u8>>>,
    call: CallFn,
) -> Option<Arc<Mailbox>> {
    let stats = endpoints
        .iter()
        .map(|e| (e.service, ServiceStats::default()))
        .collect();
    let mailbox = Arc::new(Mailbox::new(stats, answers));
    let mb = mailbox.clone();
    let spawned = std::thread::Builder::new()
        .name("ai".into())
        .spawn(move || {
            let _exit = ExitFlag(&mb);
            run(endpoints, &mb, store, call);
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(err) => {
            log::error!("cannot start the AI worker thread, llm/dify are off: {err}");
            return None;
        }
    };
    if let Ok(mut g) = mailbox.worker.lock() {
        *g = Some(handle.thread().clone());
    }
    Some(mailbox)
}

/// Marks the worker as ended when its thread ends, a panic included.
struct ExitFlag<'a>(&'a Mailbox);

impl Drop for ExitFlag<'_> {
    fn drop(&mut self) {
        self.0.exited.store(true, Ordering::Release);
    }
}

struct Schedule {
    endpoint: Endpoint,
    agent: Result<ureq::Agent, String>,
    next: Option<Instant>,
    calls: VecDeque<Instant>,
}

fn run(endpoints: Vec<Endpoint>, mb: &Mailbox, mut store: StoreFn, call: CallFn) {
    let mut sched: Vec<Schedule> = endpoints
        .into_iter()
        .map(|e| Schedule {
            agent: http_agent(&e),
            endpoint: e,
            next: None,
            calls: VecDeque::new(),
        })
        .collect();
    let mut answers: Vec<Answer> = Vec::new();
    loop {
        if mb.stop.load(Ordering::Acquire) {
            return;
        }
        let news = mb.news.swap(false, Ordering::AcqRel);
        let doc = mb.latest.load_full();
        let now = Instant::now();
        // The first post follows the first cycle that has rates.
        let ready = doc
            .as_ref()
            .filter(|d| d.snapshot.interval_seconds.is_some());
        if let Some(doc) = ready {
            // `stats` was built from the same endpoints, in the same order.
            for (i, (s, (_, stats))) in sched.iter_mut().zip(&mb.stats).enumerate() {
                let due = s.next.is_none_or(|t| now >= t) || news;
                if !due {
                    continue;
                }
                while s
                    .calls
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) > Duration::from_secs(3600))
                {
                    s.calls.pop_front();
                }
                s.next = Some(after(now, s.endpoint.interval));
                if s.calls.len() >= s.endpoint.max_calls_per_hour as usize {
                    stats.capped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                s.calls.push_back(now);
                mb.busy(Some((i, s.endpoint.timeout)));
                // The last line of defence: whatever a reply does to the
                // code, the worker and the other service go on.
                let step = catch_unwind(AssertUnwindSafe(|| {
                    if let Some(answer) = call(s, doc, stats, &mb.stop) {
                        keep_answer(answer, &mut answers, mb, &mut store);
                    }
                }));
                mb.busy(None);
                if let Err(panic) = step {
                    mb.panics.fetch_add(1, Ordering::Relaxed);
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    log::error!(
                        "{} analysis call panicked, the worker goes on: {}",
                        s.endpoint.service.as_str(),
                        s.endpoint.scrub(&what).escape_debug()
                    );
                }
            }
        }
        let wake = sched.iter().filter_map(|s| s.next).min();
        match wake {
            Some(t) => std::thread::park_timeout(
                t.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
            ),
            None => std::thread::park_timeout(Duration::from_secs(60)),
        }
    }
}

/// Serves `answer` at `/analysis` and stores it next to the snapshots.
fn keep_answer(answer: Answer, answers: &mut Vec<Answer>, mb: &Mailbox, store: &mut StoreFn) {
    answers.retain(|a| a.service != answer.service);
    answers.push(answer.clone());
    if let Ok(json) = serde_json::to_vec_pretty(&answers) {
        mb.answers.store(Some(Arc::new(json)));
    }
    if let Ok(json) = serde_json::to_vec_pretty(&answer) {
        let prefix = format!("analysis-{}-", answer.service.as_str());
        if let Err(err) = store(&prefix, &answer.timestamp, &json) {
            log::warn!("analysis answer not stored: {err}");
        }
    }
}

fn call(
    s: &Schedule,
    doc: &SnapshotDoc,
    stats: &ServiceStats,
    stop: &AtomicBool,
) -> Option<Answer> {
    let e = &s.endpoint;
    let ctx = context::build(doc, e.max_context_bytes);
    stats
        .last_context_bytes
        .store(ctx.len() as u64, Ordering::Relaxed);
    let started = Instant::now();
    let result = match &s.agent {
        Ok(agent) => post(agent, e, &body(e, &ctx), stats, stop),
        Err(err) => Err(Failure::Transport(err.clone())),
    };
    let latency = started.elapsed();
    stats
        .last_latency_us
        .store(latency.as_micros() as u64, Ordering::Relaxed);
    let (ok, answer, error, tokens) = match result {
        Ok((a, tokens)) => {
            stats.ok.fetch_add(1, Ordering::Relaxed);
            stats.add_tokens(tokens.unwrap_or(0));
            stats
                .last_success_unix_ms
                .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
            // A reply that echoes the key is stored without it.
            (true, Some(e.scrub_value(a)), None, tokens)
        }
        Err(Failure::Http(status, excerpt)) => {
            stats.http_error.fetch_add(1, Ordering::Relaxed);
            (false, None, Some(format!("HTTP {status}: {excerpt}")), None)
        }
        Err(Failure::Transport(m)) => {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            stats.transport_error.fetch_add(1, Ordering::Relaxed);
            (false, None, Some(e.scrub(&m)), None)
        }
        Err(Failure::BadReply(m)) => {
            stats.bad_reply.fetch_add(1, Ordering::Relaxed);
            (false, None, Some(e.scrub(&m)), None)
        }
    };
    if let Some(err) = &error {
        // Escaped: an error body must not forge log lines.
        log::warn!(
            "{} analysis failed: {}",
            e.service.as_str(),
            err.escape_debug()
        );
    }
    Some(Answer {
        service: e.service,
        timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        snapshot_timestamp: doc.snapshot.timestamp.clone(),
        ok,
        answer,
        error,
        latency_seconds: latency.as_secs_f64(),
        tokens,
        context_bytes: ctx.len(),
    })
}

#[cfg(test)]
mod tests;
