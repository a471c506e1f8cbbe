//! AI analysis on a side thread: the collection loop drops its latest
//! snapshot into a one-slot mailbox (an atomic pointer swap, never a wait)
//! and wakes the worker; the worker posts a compact context to an
//! OpenAI-compatible chat-completions API and to a Dify workflow on its own
//! schedule, keeps the answers, and counts what happened. A slow or dead
//! endpoint only ever costs this thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use serde_json::{Value, json};

use super::context;
use crate::config::{Config, REDACTED};
use crate::exporters::unix_ms;
use crate::snapshot::SnapshotDoc;

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
                interval: Duration::from_secs_f64(c.llm.interval),
                timeout: Duration::from_secs_f64(c.llm.timeout),
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
                interval: Duration::from_secs_f64(c.dify.interval),
                timeout: Duration::from_secs_f64(c.dify.timeout),
                max_calls_per_hour: c.dify.max_calls_per_hour,
                max_context_bytes: c.dify.max_context_bytes as usize,
                ca_file: c.dify.ca_file.clone(),
            });
        }
        out
    }

    /// Any text that could carry the key, with the key taken out.
    fn scrub(&self, text: &str) -> String {
        if self.api_key.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.api_key, REDACTED)
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
    pub last_success_unix_ms: AtomicU64,
    pub last_latency_us: AtomicU64,
    pub last_context_bytes: AtomicU64,
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
}

impl Mailbox {
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
}

fn http_agent(e: &Endpoint) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if !e.ca_file.is_empty() {
        let pem = std::fs::read(&e.ca_file)
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

/// Posts with retries on 429 and 5xx (honouring Retry-After) and on
/// transport errors, all within `e.timeout`.
fn post(
    agent: &ureq::Agent,
    e: &Endpoint,
    body: &Value,
    stats: &ServiceStats,
    stop: &AtomicBool,
) -> Result<(Value, Option<u64>), Failure> {
    let deadline = crate::clock::from_now(e.timeout);
    let payload = body.to_string();
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
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
        let wait = match req.send(payload.as_bytes()) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                if (200..300).contains(&status) {
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|err| Failure::BadReply(format!("reply is not JSON: {err}")))?;
                    return parse_reply(e.service, &v).map_err(Failure::BadReply);
                }
                let excerpt: String = e.scrub(&text).chars().take(200).collect();
                if status != 429 && status < 500 {
                    return Err(Failure::Http(status, excerpt));
                }
                if attempt >= 4 {
                    return Err(Failure::Http(status, excerpt));
                }
                retry_after.unwrap_or(backoff)
            }
            Err(err) => {
                if attempt >= 4 {
                    return Err(Failure::Transport(e.scrub(&err.to_string())));
                }
                backoff
            }
        };
        stats.retries.fetch_add(1, Ordering::Relaxed);
        backoff *= 2;
        let until = crate::clock::from_now(wait);
        if until >= deadline {
            return Err(Failure::Transport(format!(
                "gave up: the next try (in {wait:?}) would pass the {:?} timeout",
                e.timeout
            )));
        }
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

/// Starts the worker; `None` when no service is enabled.
pub fn spawn(
    config: &Config,
    hostname: &str,
    answers_dir: std::path::PathBuf,
    keep: u32,
    answers: Arc<ArcSwapOption<Vec<u8>>>,
) -> Option<Arc<Mailbox>> {
    let endpoints = Endpoint::from_config(config, hostname);
    if endpoints.is_empty() {
        return None;
    }
    let mailbox = Arc::new(Mailbox {
        latest: ArcSwapOption::empty(),
        news: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        worker: Mutex::new(None),
        stats: endpoints
            .iter()
            .map(|e| (e.service, ServiceStats::default()))
            .collect(),
        answers,
    });
    let mb = mailbox.clone();
    let handle = std::thread::Builder::new()
        .name("ai".into())
        .spawn(move || run(endpoints, mb, answers_dir, keep))
        .ok()?;
    if let Ok(mut g) = mailbox.worker.lock() {
        *g = Some(handle.thread().clone());
    }
    Some(mailbox)
}

struct Schedule {
    endpoint: Endpoint,
    agent: Result<ureq::Agent, String>,
    next: Option<Instant>,
    calls: VecDeque<Instant>,
}

fn run(endpoints: Vec<Endpoint>, mb: Arc<Mailbox>, dir: std::path::PathBuf, keep: u32) {
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
            for s in sched.iter_mut() {
                let due = s.next.is_none_or(|t| now >= t) || news;
                if !due {
                    continue;
                }
                while s
                    .calls
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600))
                {
                    s.calls.pop_front();
                }
                let stats = mb
                    .stats_of(s.endpoint.service)
                    .expect("one stats entry per endpoint");
                if s.calls.len() >= s.endpoint.max_calls_per_hour as usize {
                    stats.capped.fetch_add(1, Ordering::Relaxed);
                    s.next = Some(crate::clock::after(now, s.endpoint.interval));
                    continue;
                }
                s.calls.push_back(now);
                s.next = Some(crate::clock::after(now, s.endpoint.interval));
                let answer = call(s, doc, stats, &mb.stop);
                if answer.is_none() {
                    continue;
                }
                let answer = answer.expect("checked");
                answers.retain(|a| a.service != answer.service);
                answers.push(answer.clone());
                if let Ok(json) = serde_json::to_vec_pretty(&answers) {
                    mb.answers.store(Some(Arc::new(json)));
                }
                if let Ok(json) = serde_json::to_vec_pretty(&answer) {
                    let prefix = format!("analysis-{}-", answer.service.as_str());
                    let mut writer = crate::exporters::snapshot::SnapshotWriter::with_prefix(
                        &dir, keep, &prefix,
                    );
                    if let Err(err) = writer.write(&answer.timestamp, &json) {
                        log::warn!("analysis answer not stored: {err}");
                    }
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

fn call(
    s: &Schedule,
    doc: &SnapshotDoc,
    stats: &ServiceStats,
    stop: &AtomicBool,
) -> Option<Answer> {
    let e = &s.endpoint;
    let ctx = context::build(&doc.snapshot, e.max_context_bytes);
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
            stats
                .tokens
                .fetch_add(tokens.unwrap_or(0), Ordering::Relaxed);
            stats
                .last_success_unix_ms
                .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
            // A reply that echoes the key is stored without it.
            let a = serde_json::from_str(&e.scrub(&a.to_string())).unwrap_or(a);
            (true, Some(a), None, tokens)
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
            (false, None, Some(m), None)
        }
        Err(Failure::BadReply(m)) => {
            stats.bad_reply.fetch_add(1, Ordering::Relaxed);
            (false, None, Some(e.scrub(&m)), None)
        }
    };
    if let Some(err) = &error {
        log::warn!("{} analysis failed: {err}", e.service.as_str());
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
