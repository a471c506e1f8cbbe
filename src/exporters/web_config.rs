//! The web configuration file of Prometheus' exporter-toolkit
//! (`--web.config.file`): TLS with rustls, basic auth with bcrypt hashes,
//! extra response headers. The same file works with node_exporter; a
//! setting the agent cannot honour is an error when the file is loaded,
//! never silently dropped.
//!
//! The file (and the certificate files it names) is checked for changes
//! once per second, by their stat(2) stamps, on a thread of its own (never
//! on the thread that handles connections); a changed set is loaded anew.
//! An invalid one is logged once and the previous configuration stays in
//! force; loading is retried on a back-off even if nothing changes again
//! (a new file the broken one names may appear later). Every file is read
//! non-blocking, bounded, and only if it is a regular file: a FIFO named as
//! `cert_file` is an error, not a hang.
//!
//! Basic auth follows exporter-toolkit's defences against a flood of wrong
//! passwords: results are remembered (a verified password per user, and
//! recent failed attempts, both as HMACs under a per-process key, never the
//! password itself), and at most one bcrypt runs at a time: a request that
//! would need a second one is answered 503 at once instead of queueing, so
//! a flood occupies one worker at most.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use ring::hmac;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::sources::file::{self, Follow};

/// How often the files are stat(2)ed for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// After a failed load, the first retry (doubling up to [`RETRY_MAX`]).
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(16);
/// The web config file and each PEM file: a CA bundle of every public root
/// is ~220 KB, a web.yml a few hundred bytes.
pub const FILE_MAX: usize = 1 << 20;
/// Failed (user, hash, password) attempts remembered; the oldest goes first.
const FAILED_CACHE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("{path}: `{key}` {reason}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    tls_server_config: Option<TlsDoc>,
    http_server_config: Option<HttpDoc>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsDoc {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<IgnoredAny>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpDoc {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// One loaded web configuration.
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    /// User → bcrypt hash; empty: no basic auth.
    users: HashMap<String, String>,
    /// Added to every answer.
    pub headers: Vec<(String, String)>,
    /// The files whose change means a reload (the config file first).
    watched: Vec<PathBuf>,
}

/// The headers exporter-toolkit lets a web config set, with the values it
/// accepts (`None`: any value).
const HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Content-Security-Policy", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Strict-Transport-Security", None),
];

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text =
            file::read_text(path, FILE_MAX, Follow::Yes).map_err(|e| WebConfigError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let doc: FileDoc = serde_saphyr::from_str(&text).map_err(|e| WebConfigError::Syntax {
            path: path.to_owned(),
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
        let invalid = |key: &'static str, reason: String| WebConfigError::Invalid {
            path: path.to_owned(),
            key,
            reason,
        };
        if doc.rate_limit.is_some() {
            return Err(invalid(
                "rate_limit",
                "is not supported by rdma-monitor".into(),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut watched = vec![path.to_owned()];
        let tls = match doc.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(t, dir, &mut watched, &invalid)?)),
            None => None,
        };
        let mut headers = Vec::new();
        if let Some(http) = doc.http_server_config {
            if http.http2 == Some(true) {
                return Err(invalid(
                    "http_server_config.http2",
                    "true is not supported: rdma-monitor speaks HTTP/1.1 only (set false or remove it)".into(),
                ));
            }
            for (name, value) in http.headers.unwrap_or_default() {
                let Some((_, allowed)) = HEADERS.iter().find(|(h, _)| *h == name) else {
                    return Err(invalid(
                        "http_server_config.headers",
                        format!(
                            "{name:?} cannot be configured (only {:?})",
                            HEADERS.map(|h| h.0)
                        ),
                    ));
                };
                if value.is_empty() {
                    continue;
                }
                if value.bytes().any(|b| b.is_ascii_control()) {
                    return Err(invalid(
                        "http_server_config.headers",
                        format!("{name}: control characters in the value"),
                    ));
                }
                if let Some(ok) = allowed
                    && !ok.iter().any(|v| v.eq_ignore_ascii_case(&value))
                {
                    return Err(invalid(
                        "http_server_config.headers",
                        format!("{name}: {value:?} is not one of {ok:?}"),
                    ));
                }
                headers.push((name, value));
            }
        }
        let users: HashMap<String, String> = doc
            .basic_auth_users
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(invalid(
                    "basic_auth_users",
                    format!("{user:?}: a user name cannot contain ':'"),
                ));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(invalid(
                    "basic_auth_users",
                    format!(
                        "{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                    ),
                ));
            }
        }
        Ok(WebConfig {
            tls,
            users,
            headers,
            watched,
        })
    }

    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }
}

type Invalid<'a> = dyn Fn(&'static str, String) -> WebConfigError + 'a;

fn tls_config(
    t: TlsDoc,
    dir: &Path,
    watched: &mut Vec<PathBuf>,
    invalid: &Invalid<'_>,
) -> Result<ServerConfig, WebConfigError> {
    if t.client_allowed_sans.is_some() {
        return Err(invalid(
            "tls_server_config.client_allowed_sans",
            "is not supported by rdma-monitor".into(),
        ));
    }
    // Like exporter-toolkit, which refuses to start with "Client CA's have
    // been configured without a Client Auth Policy": a CA that verifies
    // nothing would let clients without a certificate in.
    let ca_set =
        t.client_ca.is_some() || t.client_ca_file.as_deref().is_some_and(|f| !f.is_empty());
    if ca_set
        && matches!(
            t.client_auth_type.as_deref(),
            None | Some("" | "NoClientCert")
        )
    {
        return Err(invalid(
            "tls_server_config.client_ca_file",
            "is set but client_auth_type does not verify client certificates (set RequireAndVerifyClientCert or VerifyClientCertIfGiven)".into(),
        ));
    }
    let mut pem = |key: &'static str,
                   inline: Option<String>,
                   file: Option<String>|
     -> Result<Option<Vec<u8>>, WebConfigError> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(invalid(key, "and its inline form are both set".into())),
            (Some(text), None) => Ok(Some(text.into_bytes())),
            (None, Some(file)) if !file.is_empty() => {
                let p = dir.join(file);
                let bytes = file::read(&p, FILE_MAX, Follow::Yes)
                    .map_err(|e| invalid(key, format!("{}: {e}", p.display())))?;
                watched.push(p);
                Ok(Some(bytes))
            }
            _ => Ok(None),
        }
    };
    let cert = pem("tls_server_config.cert_file", t.cert, t.cert_file)?
        .ok_or_else(|| invalid("tls_server_config.cert_file", "is missing".into()))?;
    let key = pem("tls_server_config.key_file", t.key, t.key_file)?
        .ok_or_else(|| invalid("tls_server_config.key_file", "is missing".into()))?;
    let ca = pem(
        "tls_server_config.client_ca_file",
        t.client_ca,
        t.client_ca_file,
    )?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            invalid(
                "tls_server_config.cert_file",
                format!("not PEM certificates: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(invalid(
            "tls_server_config.cert_file",
            "holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        invalid(
            "tls_server_config.key_file",
            format!("no PEM private key: {e}"),
        )
    })?;

    let provider = provider(t.cipher_suites, t.curve_preferences, invalid)?;
    let version = |key: &'static str, v: &Option<String>, default: u8| match v.as_deref() {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(2),
        Some("TLS13") => Ok(3),
        Some(other @ ("TLS10" | "TLS11")) => Err(invalid(
            key,
            format!("{other}: rustls implements TLS 1.2 and 1.3 only (use TLS12)"),
        )),
        Some(other) => Err(invalid(key, format!("{other:?} is not TLS12 or TLS13"))),
    };
    let min = version("tls_server_config.min_version", &t.min_version, 2)?;
    let max = version("tls_server_config.max_version", &t.max_version, 3)?;
    if min > max {
        return Err(invalid(
            "tls_server_config.min_version",
            "is above max_version".into(),
        ));
    }
    let versions: Vec<&'static SupportedProtocolVersion> =
        [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let provider = Arc::new(provider);
    let roots = |ca: &Option<Vec<u8>>| -> Result<Arc<RootCertStore>, WebConfigError> {
        let key = "tls_server_config.client_ca_file";
        let ca = ca
            .as_ref()
            .ok_or_else(|| invalid(key, "is required to verify client certificates".into()))?;
        let mut store = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            let c = c.map_err(|e| invalid(key, format!("not PEM certificates: {e}")))?;
            store.add(c).map_err(|e| invalid(key, e.to_string()))?;
        }
        if store.is_empty() {
            return Err(invalid(key, "holds no certificate".into()));
        }
        Ok(Arc::new(store))
    };
    let auth_key = "tls_server_config.client_auth_type";
    let verifier: Arc<dyn ClientCertVerifier> = match t.client_auth_type.as_deref() {
        None | Some("" | "NoClientCert") => WebPkiClientVerifier::no_client_auth(),
        Some("RequireAndVerifyClientCert") => {
            WebPkiClientVerifier::builder_with_provider(roots(&ca)?, provider.clone())
                .build()
                .map_err(|e| invalid(auth_key, e.to_string()))?
        }
        Some("VerifyClientCertIfGiven") => {
            WebPkiClientVerifier::builder_with_provider(roots(&ca)?, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| invalid(auth_key, e.to_string()))?
        }
        Some(other @ ("RequestClientCert" | "RequireAnyClientCert")) => {
            return Err(invalid(
                auth_key,
                format!(
                    "{other} accepts unverified certificates and is not supported (use RequireAndVerifyClientCert)"
                ),
            ));
        }
        Some(other) => {
            return Err(invalid(
                auth_key,
                format!("{other:?} is not a client auth type"),
            ));
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("tls_server_config", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| invalid("tls_server_config.key_file", e.to_string()))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The ring provider restricted to `cipher_suites` (TLS 1.2 names; the TLS
/// 1.3 suites always stay, as in Go) and `curve_preferences`.
fn provider(
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    invalid: &Invalid<'_>,
) -> Result<CryptoProvider, WebConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    // Like Go, the list restricts TLS 1.2 and TLS 1.3 suites are always on;
    // an empty list is Go's default set, not "no TLS 1.2 suite".
    if let Some(names) = cipher_suites.filter(|n| !n.is_empty()) {
        let mut keep = Vec::new();
        for name in &names {
            let found = provider
                .cipher_suites
                .iter()
                .find(|s| format!("{:?}", s.suite()) == *name);
            match found {
                Some(s) => keep.push(*s),
                None => {
                    return Err(invalid(
                        "tls_server_config.cipher_suites",
                        format!(
                            "{name} is not available in rustls (available: {:?})",
                            suite_names(&provider)
                        ),
                    ));
                }
            }
        }
        let tls13: Vec<_> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        keep.retain(|s| s.version() != &rustls::version::TLS13);
        keep.extend(tls13);
        provider.cipher_suites = keep;
    }
    if let Some(curves) = curve_preferences {
        let mut groups = Vec::new();
        for c in &curves {
            let group = match c.as_str() {
                "X25519" => rustls::crypto::ring::kx_group::X25519,
                "CurveP256" => rustls::crypto::ring::kx_group::SECP256R1,
                "CurveP384" => rustls::crypto::ring::kx_group::SECP384R1,
                _ => {
                    return Err(invalid(
                        "tls_server_config.curve_preferences",
                        format!("{c} is not supported (X25519, CurveP256, CurveP384)"),
                    ));
                }
            };
            groups.push(group);
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

fn suite_names(p: &CryptoProvider) -> Vec<String> {
    p.cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}

/// What identifies a file's content cheaply.
type Stamp = Option<(SystemTime, u64, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.dev()))
}

/// The configuration in force, reloaded when its files change.
pub struct WebConfigSource {
    path: PathBuf,
    current: ArcSwap<WebConfig>,
    state: Mutex<ReloadState>,
    /// Loads that failed (the previous configuration stayed in force).
    reload_failures: AtomicU64,
    /// Whether the last load succeeded.
    last_reload_ok: AtomicBool,
    /// user → (bcrypt hash, HMAC of the password last verified against it).
    verified: Mutex<HashMap<String, (String, hmac::Tag)>>,
    /// Recent failed attempts, as [`WebConfigSource::attempt`] tags.
    failed: Mutex<Failed>,
    /// Held while bcrypt runs: one at a time.
    bcrypt: Mutex<()>,
    /// A per-process key, so the cached tags mean nothing outside it.
    key: hmac::Key,
}

struct ReloadState {
    checked: Instant,
    stamps: Vec<Stamp>,
    /// While the files do not load: when to try again, and the back-off.
    retry: Option<(Instant, Duration)>,
    /// The error last logged, so a retry that fails the same way is quiet.
    error: Option<String>,
}

/// A bounded set of failed attempts; the oldest is forgotten first.
#[derive(Default)]
struct Failed {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Failed {
    fn insert(&mut self, tag: [u8; 32]) {
        if !self.set.insert(tag) {
            return;
        }
        self.order.push_back(tag);
        if self.order.len() > FAILED_CACHE
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
    }
}

/// What a reload check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Nothing changed and no retry was due.
    Unchanged,
    Reloaded,
    /// The files did not load; `logged`: the error was new and logged.
    Failed {
        logged: bool,
    },
}

/// The outcome of a basic auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Granted,
    Denied,
    /// The password needs bcrypt and another one is being checked: answered
    /// at once (503) rather than queued behind a flood.
    Busy,
}

impl WebConfigSource {
    /// Loads the file now: an invalid one is a startup error.
    pub fn open(path: &Path) -> Result<WebConfigSource, WebConfigError> {
        let config = WebConfig::load(path)?;
        let stamps = config.watched.iter().map(|p| stamp(p)).collect();
        let rng = ring::rand::SystemRandom::new();
        let key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| WebConfigError::Read {
                path: path.to_owned(),
                reason: "no random numbers for the password cache key".into(),
            })?;
        Ok(WebConfigSource {
            path: path.to_owned(),
            current: ArcSwap::from_pointee(config),
            state: Mutex::new(ReloadState {
                checked: Instant::now(),
                stamps,
                retry: None,
                error: None,
            }),
            reload_failures: AtomicU64::new(0),
            last_reload_ok: AtomicBool::new(true),
            verified: Mutex::new(HashMap::new()),
            failed: Mutex::new(Failed::default()),
            bcrypt: Mutex::new(()),
            key,
        })
    }

    /// The configuration in force. Never reads a file: [`Self::watch`]'s
    /// thread does.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current.load_full()
    }

    /// Checks the files every [`RELOAD_CHECK`] on a thread of its own, which
    /// ends when the source is dropped.
    pub fn watch(self: &Arc<Self>) -> io::Result<()> {
        let source = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("web-config".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                loop {
                    std::thread::sleep(RELOAD_CHECK);
                    let Some(source) = source.upgrade() else {
                        return;
                    };
                    source.refresh(Instant::now(), false);
                }
            })?;
        Ok(())
    }

    /// (loads that failed since start, whether the last one succeeded).
    pub fn reload_status(&self) -> (u64, bool) {
        (
            self.reload_failures.load(Relaxed),
            self.last_reload_ok.load(Relaxed),
        )
    }

    /// Reloads if a watched file changed, or a failed load is due for a
    /// retry; `force` (SIGHUP, tests) skips the rate limit and the back-off.
    pub fn refresh(&self, now: Instant, force: bool) -> Reload {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !force && now.saturating_duration_since(st.checked) < RELOAD_CHECK {
            return Reload::Unchanged;
        }
        st.checked = now;
        let cur = self.current.load();
        let stamps: Vec<Stamp> = cur.watched.iter().map(|p| stamp(p)).collect();
        let changed = stamps != st.stamps;
        let due = st.retry.is_some_and(|(at, _)| force || now >= at);
        if !changed && !due {
            return Reload::Unchanged;
        }
        st.stamps = stamps;
        match WebConfig::load(&self.path) {
            Ok(new) => {
                st.stamps = new.watched.iter().map(|p| stamp(p)).collect();
                self.current.store(Arc::new(new));
                st.retry = None;
                st.error = None;
                self.last_reload_ok.store(true, Relaxed);
                log::info!("web config {} reloaded", self.path.display());
                Reload::Reloaded
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Relaxed);
                self.last_reload_ok.store(false, Relaxed);
                let backoff = match st.retry {
                    Some((_, b)) if !changed => (b * 2).min(RETRY_MAX),
                    _ => RETRY_MIN,
                };
                st.retry = Some((now + backoff, backoff));
                let text = e.to_string();
                let logged = changed || st.error.as_deref() != Some(text.as_str());
                if logged {
                    log::error!(
                        "web config: {text}; keeping the previous configuration (retried every {}s at most)",
                        RETRY_MAX.as_secs()
                    );
                }
                st.error = Some(text);
                Reload::Failed { logged }
            }
        }
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Failed> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache key of one attempt: an HMAC of the user, the hash it is
    /// checked against and the password (length-prefixed, so no two
    /// attempts share an input).
    fn attempt(&self, user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [user, hash] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        ctx.update(password.as_bytes());
        let mut tag = [0u8; 32];
        tag.copy_from_slice(ctx.sign().as_ref());
        tag
    }

    /// Checks an `Authorization` header value against `config`'s users.
    /// A password verified once is remembered, and so is a failed attempt,
    /// so that neither pays bcrypt's cost again; a new attempt runs bcrypt
    /// only if no other does ([`Auth::Busy`] otherwise).
    pub fn authorize(&self, config: &WebConfig, authorization: Option<&str>) -> Auth {
        let Some(any) = config.users.values().next() else {
            return Auth::Granted;
        };
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Auth::Denied;
        };
        let known = config.users.get(&user);
        if let Some(hash) = known {
            let cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((h, cached)) = cache.get(&user)
                && h == hash
                && hmac::verify(&self.key, password.as_bytes(), cached.as_ref()).is_ok()
            {
                return Auth::Granted;
            }
        }
        // An unknown user is checked against a real hash (the same cost), so
        // timing does not tell which user names exist.
        let hash = known.unwrap_or(any);
        let attempt = self.attempt(&user, hash, &password);
        if self.failed().set.contains(&attempt) {
            return Auth::Denied;
        }
        let ok = {
            let _one = match self.bcrypt.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return Auth::Busy,
            };
            bcrypt::verify(&password, hash).unwrap_or(false)
        };
        match known {
            Some(hash) if ok => {
                let tag = hmac::sign(&self.key, password.as_bytes());
                let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                cache.insert(user, (hash.clone(), tag));
                Auth::Granted
            }
            _ => {
                self.failed().insert(attempt);
                Auth::Denied
            }
        }
    }
}

/// bcrypt cost of `hash-password`: what `htpasswd -B` uses by default, and what
/// exporter-toolkit's documentation shows.
pub const HASH_COST: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the password is empty")]
    Empty,
    #[error(
        "the password is {0} bytes; bcrypt reads only the first 72, so the rest would not count"
    )]
    TooLong(usize),
    #[error("{0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// The bcrypt hash for `basic_auth_users`. Refuses what bcrypt would
/// silently weaken: an empty password, or one past its 72-byte input.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    match password.len() {
        0 => Err(HashError::Empty),
        n if n > 72 => Err(HashError::TooLong(n)),
        _ => Ok(bcrypt::hash(password, HASH_COST)?),
    }
}

/// `Basic base64(user:password)` → (user, password).
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl From<WebConfigError> for io::Error {
    fn from(e: WebConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

#[cfg(test)]
#[path = "web_config/tests.rs"]
mod tests;
