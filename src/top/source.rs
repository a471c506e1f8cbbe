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
}

impl Local {
    pub fn new(config: Config) -> Local {
        let root = config.general.sysfs_root.display().to_string();
        let published = Arc::new(Published::new(config.poll_interval()));
        let mut agent = Agent::new(config, published);
        // MAD reads (fabric mode) on their own thread, as in the agent.
        agent.start_mad(true);
        Local { agent, root }
    }
}

impl Frames for Local {
    fn next(&mut self) -> Result<Doc, String> {
        doc::parse(self.agent.cycle().json())
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
    authorization: Option<String>,
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
            authorization,
        })
    }
}

impl Frames for Remote {
    fn next(&mut self) -> Result<Doc, String> {
        let mut req = self.agent.get(&self.url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| format!("{}: {e}", self.url))?;
        let status = resp.status();
        if status != 200 {
            return Err(format!("{}: HTTP {status}", self.url));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| format!("{}: reading the body: {e}", self.url))?;
        doc::parse(&body)
    }
    fn origin(&self) -> String {
        self.url.clone()
    }
}
