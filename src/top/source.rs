//! Where frames come from: the agent's own cycle run in this process
//! (local), or a running agent's `/snapshot` over HTTP(S) (remote). Both
//! hand over the snapshot JSON document, so `top` depends on its schema only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::doc::{self, Doc};
use crate::agent::Agent;
use crate::config::Config;
use crate::exporters::Published;

/// The largest `/snapshot` body accepted (a 16-HCA node's is ~100 KiB).
const MAX_BODY: u64 = 64 << 20;

/// The last sweep's detail (the counters of every fabric port), fetched
/// once per sweep and put back into each document, where `top` reads it.
#[derive(Default)]
pub struct Detail {
    sweep_unix_ms: Option<u64>,
    mad: doc::Mad,
}

impl Detail {
    /// Fills `doc` from the detail of its sweep; `fetch` is called only for
    /// a sweep not seen before. A document without a summary (an agent
    /// before 2026-11-30, or no sweep yet) is left as it is.
    pub fn fill(
        &mut self,
        doc: &mut Doc,
        fetch: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<(), String> {
        let Some(mad) = doc.mad.as_mut() else {
            return Ok(());
        };
        let Some(sweep) = mad.fabric_summary.as_ref().map(|s| s.sweep_unix_ms) else {
            return Ok(());
        };
        if self.sweep_unix_ms != Some(sweep) {
            self.mad = doc::parse_detail(&fetch()?)?;
            self.sweep_unix_ms = Some(sweep);
        }
        mad.fabric_counters = self.mad.fabric_counters.clone();
        mad.fabric_counters_unix_ms = self.mad.fabric_counters_unix_ms;
        Ok(())
    }
}

pub trait Frames {
    /// The next document, or why there is none this time.
    fn next(&mut self) -> Result<Doc, String>;
    /// Where the frames come from, for the header line.
    fn origin(&self) -> String;
}

/// The agent's collection cycle, in this process.
pub struct Local {
    agent: Agent,
    root: String,
    detail: Detail,
}

impl Local {
    pub fn new(config: Config) -> Local {
        let root = config.general.sysfs_root.display().to_string();
        let published = Arc::new(Published::new(config.poll_interval()));
        let mut agent = Agent::new(config, published);
        // MAD reads (fabric mode) on their own thread, as in the agent.
        agent.start_mad(true);
        Local {
            agent,
            root,
            detail: Detail::default(),
        }
    }
}

impl Frames for Local {
    fn next(&mut self) -> Result<Doc, String> {
        let published = self.agent.cycle();
        let mut doc = doc::parse(published.json())?;
        let mad = published.snapshot.mad.as_ref();
        self.detail.fill(&mut doc, || {
            mad.and_then(|m| m.detail_json())
                .ok_or_else(|| "no fabric detail in this cycle".to_string())
        })?;
        Ok(doc)
    }
    fn origin(&self) -> String {
        format!("local {}", self.root)
    }
}

/// TLS and basic auth for `--url`; the password comes from the environment.
#[derive(Debug, Default, Clone)]
pub struct RemoteOptions {
    pub ca_file: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
}

pub struct Remote {
    agent: ureq::Agent,
    url: String,
    /// `/fabric`: the last sweep's detail.
    fabric_url: String,
    authorization: Option<String>,
    detail: Detail,
}

fn read_pem(path: &str, what: &str) -> Result<Vec<u8>, String> {
    // Bounded and non-blocking, like every file the agent reads.
    use crate::sources::file::{CONFIG_MAX, Follow, read};
    read(Path::new(path), CONFIG_MAX, Follow::Yes).map_err(|e| format!("{what} {path}: {e}"))
}

fn certificates(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

impl Remote {
    pub fn new(url: &str, o: &RemoteOptions) -> Result<Remote, String> {
        let base = url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--url {url}: want http://host:port or https://host:port"
            ));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &o.ca_file {
            let certs = certificates(&read_pem(ca, "--ca-file")?);
            if certs.is_empty() {
                return Err(format!("--ca-file {ca}: no certificate in it"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        match (&o.cert, &o.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(&read_pem(cert, "--cert")?);
                if chain.is_empty() {
                    return Err(format!("--cert {cert}: no certificate in it"));
                }
                let key_pem = read_pem(key, "--key")?;
                let key = ureq::tls::PrivateKey::from_pem(&key_pem)
                    .map_err(|e| format!("--key {key}: {e}"))?
                    .to_owned();
                tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
            }
            (None, None) => {}
            _ => return Err("--cert and --key go together".into()),
        }
        let authorization = match (&o.user, &o.password) {
            (Some(u), Some(p)) => {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                Some(format!("Basic {b}"))
            }
            (Some(_), None) => {
                return Err(format!(
                    "--user needs the password in ${}",
                    super::PASSWORD_ENV
                ));
            }
            _ => None,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .tls_config(tls.build())
            .user_agent(concat!("rdma-monitor-top/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Remote {
            agent,
            url: format!("{base}/snapshot"),
            fabric_url: format!("{base}/fabric"),
            authorization,
            detail: Detail::default(),
        })
    }
}

impl Remote {
    /// GET `url` (with the credentials), the body bounded.
    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut req = self.agent.get(url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| format!("{url}: reading the body: {e}"))
    }
}

impl Frames for Remote {
    fn next(&mut self) -> Result<Doc, String> {
        let mut doc = doc::parse(&self.get(&self.url)?)?;
        let mut detail = std::mem::take(&mut self.detail);
        let filled = detail.fill(&mut doc, || self.get(&self.fabric_url));
        self.detail = detail;
        filled?;
        Ok(doc)
    }
    fn origin(&self) -> String {
        self.url.clone()
    }
}
