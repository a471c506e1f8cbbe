//! Configuration: the embedded `config.yaml` defaults, an optional file over
//! them, and `RDMA_MON_<SECTION>__<KEY>` environment variables over both.
//!
//! Layers are merged as YAML trees before anything is typed, so the default
//! file is also the schema: a key it does not have is unknown, and an
//! environment string is converted to the type its default has (which keeps
//! `RDMA_MON_LLM__API_KEY=12345` a string).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod events;
pub mod health;
pub use events::Events;
pub use health::{Expectation, Health};

/// The documented defaults, compiled in.
pub const DEFAULT_YAML: &str = include_str!("../config.yaml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "RDMA_MON_";

/// Every echoed name, value and path goes through [`escape`]: an error is one
/// line, and a value cannot forge a log line or colour the terminal.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("config file {}: cannot read: {}", escape(&.path.display().to_string()), escape(.reason))]
    Unreadable { path: PathBuf, reason: String },
    #[error("config file {}: not valid YAML: {}", escape(&.path.display().to_string()), escape(.reason))]
    Syntax { path: PathBuf, reason: String },
    #[error("{}: unknown section {} (expected one of: {expected})", escape(.origin), shown_name(.section))]
    UnknownSection {
        origin: String,
        section: String,
        expected: String,
    },
    #[error("{}: unknown key {} (expected one of: {expected})", escape(.origin), shown_name(.key))]
    UnknownKey {
        origin: String,
        key: String,
        expected: String,
    },
    #[error("{}: `{}` must be {expected}, got {}", escape(.origin), escape(.key), escape(&format!("{:?}", .got)))]
    WrongType {
        origin: String,
        key: String,
        expected: &'static str,
        got: String,
    },
    #[error("{}: {}", escape(.origin), escape(.reason))]
    Invalid { origin: String, reason: String },
    #[error("{key}: {}", escape(.reason))]
    OutOfRange { key: &'static str, reason: String },
}

/// `s` with control characters (newline, ESC, C1) and bidirectional
/// overrides written as Rust escapes (`\n`, `\u{1b}`): what an error or a log
/// line echoes stays on one line and cannot drive the terminal.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A section or key name as an error shows it: only when it looks like a
/// name. A file that is not a config (`--config /etc/shadow`) parses as a
/// mapping whose "keys" are its lines, and those must not be printed.
fn shown_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        format!("`{name}`")
    } else {
        "(a name that is not an identifier, not shown)".to_string()
    }
}

/// `url` with the user-info part (`user:KEY@`) replaced by [`REDACTED`].
pub fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return std::borrow::Cow::Borrowed(url);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => std::borrow::Cow::Owned(format!(
            "{}{REDACTED}{}",
            &url[..scheme_end + 3],
            &rest[at..]
        )),
        None => std::borrow::Cow::Borrowed(url),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub general: General,
    pub network: Network,
    pub fabric: Fabric,
    pub attribution: Attribution,
    pub prometheus: Prometheus,
    pub analysis: Analysis,
    pub health: Health,
    pub events: Events,
    pub llm: Llm,
    pub dify: Dify,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    pub flap_transitions: u32,
    pub flap_window: f64,
    pub symbol_errors_per_minute: f64,
    pub receive_errors_per_minute: f64,
    pub transmit_discards_per_second: f64,
    pub out_of_buffer_per_second: f64,
    pub cnp_per_second: f64,
    pub pfc_pause_share: f64,
    pub retransmissions_per_second: f64,
    pub priority_drops_per_second: f64,
    pub pre_fec_ber: f64,
    pub transmit_wait_share: f64,
    /// Fabric ports (fabric mode): counter increases per minute between sweeps.
    pub fabric_symbol_errors_per_minute: f64,
    pub fabric_link_downed_per_minute: f64,
    pub fabric_receive_errors_per_minute: f64,
    pub fabric_relay_errors_per_minute: f64,
    pub fabric_transmit_discards_per_minute: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct General {
    pub poll_interval: f64,
    pub snapshot_interval: f64,
    pub snapshot_dir: PathBuf,
    pub snapshot_keep: u32,
    pub sysfs_root: PathBuf,
    pub proc_root: PathBuf,
    pub rescan_interval: f64,
    pub log_level: LogLevel,
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Auto,
    Ib,
    Roce,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub mode: NetworkMode,
    pub devices: Vec<String>,
    pub exclude_devices: Vec<String>,
    pub netdevs: Vec<String>,
    pub netlink: NetlinkUse,
    pub optional_counters: Vec<String>,
    pub qp_counter_auto_mode: Vec<AutoModeCriterion>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetlinkUse {
    Auto,
    Always,
    Never,
}

/// `rdma statistic qp set ... auto` criteria.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AutoModeCriterion {
    Type,
    Pid,
}

impl Network {
    /// RDMA_COUNTER_MASK_* bits for the configured auto mode, if any.
    pub fn auto_mode_mask(&self) -> Option<u32> {
        if self.qp_counter_auto_mode.is_empty() {
            return None;
        }
        Some(self.qp_counter_auto_mode.iter().fold(0, |m, c| {
            m | match c {
                AutoModeCriterion::Type => crate::sys::RDMA_COUNTER_MASK_QP_TYPE,
                AutoModeCriterion::Pid => crate::sys::RDMA_COUNTER_MASK_PID,
            }
        }))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub enabled: bool,
    pub interval: f64,
    pub counters: bool,
    pub max_outstanding: u32,
    pub timeout_ms: u32,
    pub retries: u32,
    pub sweep_budget: f64,
    pub discovery_interval: f64,
    pub local_counters: bool,
    pub error_details: bool,
    pub umad_device: String,
    /// A topology in ibnetdiscover's format each sweep is compared with ("" = none).
    pub expected_topology: String,
    /// Retention of the per-sweep detail files (`fabric-*.json` in snapshot_dir).
    pub detail_keep: u32,
    pub detail_max_age: f64,
    pub detail_max_bytes: u64,
}

/// Who uses the fabric: QPs, MRs, CQs, PDs per Slurm job, pod, unit or process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    pub enabled: bool,
    /// Seconds between resource dumps; 0: every cycle.
    pub interval: f64,
    pub max_consumers: u32,
    /// Where `etc/passwd` and `var/log/pods` are read (the host's root).
    pub host_root: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    pub enabled: bool,
    pub listen_address: IpAddr,
    /// Kept wide so an out-of-range value gets a range error, not a type error.
    pub port: i64,
    /// exporter-toolkit web config (TLS, basic auth, headers); empty: none.
    pub web_config_file: String,
    pub endpoints: Endpoints,
    /// A loopback `address:port` serving `/healthz` only, plain HTTP, for
    /// kubelet probes; empty: none.
    pub health_listen: String,
}

/// Optional endpoints an operator may turn off (answered 404 then).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub snapshot: bool,
    pub analysis: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Llm {
    pub enabled: bool,
    pub api_url: String,
    pub api_key: String,
    pub model: String,
    pub interval: f64,
    pub max_calls_per_hour: u32,
    pub timeout: f64,
    pub max_context_bytes: u32,
    pub ca_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dify {
    pub enabled: bool,
    pub api_url: String,
    pub api_key: String,
    pub workflow_id: String,
    pub interval: f64,
    pub max_calls_per_hour: u32,
    pub timeout: f64,
    pub max_context_bytes: u32,
    pub ca_file: String,
    pub user: String,
}

impl Prometheus {
    pub fn port(&self) -> u16 {
        // validate() guarantees the range.
        u16::try_from(self.port).unwrap_or(9090)
    }

    /// `health_listen` parsed; `Err` names what is wrong.
    pub fn health_listen(&self) -> Result<Option<std::net::SocketAddr>, String> {
        if self.health_listen.is_empty() {
            return Ok(None);
        }
        match self.health_listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Ok(Some(a)),
            Ok(a) => Err(format!(
                "must be a loopback address (plain HTTP, no auth), got {a}"
            )),
            Err(_) => Err(format!(
                "must be address:port, e.g. 127.0.0.1:9880, got {:?}",
                self.health_listen
            )),
        }
    }
}

impl Config {
    /// Defaults, then the file at `path` (if any), then the environment.
    pub fn load<I>(path: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut tree = parse_yaml(DEFAULT_YAML, Path::new("<embedded config.yaml>"))?;
        let schema = tree.clone();
        if let Some(path) = path {
            // Non-blocking, a regular file, a few MiB at most: `--config /dev/zero`
            // or a FIFO is an error, not a hang or a GB of memory.
            let text = crate::sources::file::read_text(
                path,
                crate::sources::file::CONFIG_MAX,
                crate::sources::file::Follow::Yes,
            )
            .map_err(|e| ConfigError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let file_tree = parse_yaml(&text, path)?;
            merge_file(&mut tree, file_tree, &schema, &path.display().to_string())?;
        }
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        // Deterministic order, so the same environment always gives the same error.
        overrides.sort();
        for (name, value) in overrides {
            apply_env(&mut tree, &schema, &name, &value)?;
        }
        let origin = path.map_or_else(
            || "configuration".to_string(),
            |p| format!("config file {}", p.display()),
        );
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            // A secret given with the wrong type is not echoed back.
            let reason = if key.ends_with("api_key") {
                format!("`{key}`: must be a string (the value is not shown)")
            } else {
                format!("`{key}`: {}", e.inner())
            };
            ConfigError::Invalid {
                origin: origin.clone(),
                reason,
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults only.
    pub fn defaults() -> Config {
        Config::load(None, std::iter::empty()).expect("the embedded config.yaml is valid")
    }

    /// Every duration key with its value: checked against [`DURATION_RANGES`].
    fn durations(&self) -> [(&'static str, f64); 14] {
        [
            ("general.poll_interval", self.general.poll_interval),
            ("general.snapshot_interval", self.general.snapshot_interval),
            ("general.rescan_interval", self.general.rescan_interval),
            ("fabric.interval", self.fabric.interval),
            ("fabric.sweep_budget", self.fabric.sweep_budget),
            ("fabric.discovery_interval", self.fabric.discovery_interval),
            ("fabric.detail_max_age", self.fabric.detail_max_age),
            ("llm.interval", self.llm.interval),
            ("llm.timeout", self.llm.timeout),
            ("dify.interval", self.dify.interval),
            ("dify.timeout", self.dify.timeout),
            ("analysis.flap_window", self.analysis.flap_window),
            ("attribution.interval", self.attribution.interval),
            (
                "fabric.timeout_ms",
                f64::from(self.fabric.timeout_ms) / 1000.0,
            ),
        ]
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in self.durations() {
            let range = DURATION_RANGES
                .iter()
                .find(|r| r.key == key)
                .expect("every duration key has a range");
            range.check(v)?;
        }
        for (key, url, on) in [
            ("llm.api_url", &self.llm.api_url, self.llm.enabled),
            ("dify.api_url", &self.dify.api_url, self.dify.enabled),
        ] {
            if on && !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::OutOfRange {
                    key,
                    reason: format!(
                        "must be an http:// or https:// URL, got {:?}",
                        redact_url(url)
                    ),
                });
            }
        }
        if !(1..=256).contains(&self.fabric.max_outstanding) {
            return Err(ConfigError::OutOfRange {
                key: "fabric.max_outstanding",
                reason: format!("must be 1-256, got {}", self.fabric.max_outstanding),
            });
        }
        if !(1..=100_000).contains(&self.fabric.detail_keep) {
            return Err(ConfigError::OutOfRange {
                key: "fabric.detail_keep",
                reason: format!("must be 1-100000, got {}", self.fabric.detail_keep),
            });
        }
        if !(1..=100_000).contains(&self.attribution.max_consumers) {
            return Err(ConfigError::OutOfRange {
                key: "attribution.max_consumers",
                reason: format!("must be 1-100000, got {}", self.attribution.max_consumers),
            });
        }
        if !(1..=65535).contains(&self.prometheus.port) {
            return Err(ConfigError::OutOfRange {
                key: "prometheus.port",
                reason: format!("must be a TCP port 1-65535, got {}", self.prometheus.port),
            });
        }
        if let Err(reason) = self.prometheus.health_listen() {
            return Err(ConfigError::OutOfRange {
                key: "prometheus.health_listen",
                reason,
            });
        }
        if self.general.snapshot_dir.as_os_str().is_empty() {
            return Err(ConfigError::OutOfRange {
                key: "general.snapshot_dir",
                reason: "must not be empty".into(),
            });
        }
        self.health.validate()?;
        self.events.validate()?;
        Ok(())
    }

    /// The effective configuration as YAML, secrets replaced.
    pub fn to_redacted_yaml(&self) -> String {
        let mut copy = self.clone();
        for secret in [&mut copy.llm.api_key, &mut copy.dify.api_key] {
            if !secret.is_empty() {
                *secret = REDACTED.to_string();
            }
        }
        for url in [&mut copy.llm.api_url, &mut copy.dify.api_url] {
            *url = redact_url(url).into_owned();
        }
        serde_saphyr::to_string(&copy).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.general.poll_interval)
    }
    pub fn snapshot_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.general.snapshot_interval)
    }
    /// Whether to use RDMA netlink: `auto` only when reading the live /sys
    /// (a captured tree and the live kernel would disagree).
    pub fn use_netlink(&self) -> bool {
        match self.network.netlink {
            NetlinkUse::Always => true,
            NetlinkUse::Never => false,
            NetlinkUse::Auto => self.general.sysfs_root == Path::new("/sys"),
        }
    }

    pub fn rescan_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.general.rescan_interval)
    }
}

pub const REDACTED: &str = "<redacted>";

/// The `section.key` names whose values differ between `a` and `b`.
pub fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (section, body) in &a {
        let (Value::Object(x), Some(Value::Object(y))) = (body, b.get(section)) else {
            continue;
        };
        for (key, v) in x {
            if y.get(key) != Some(v) {
                out.push(format!("{section}.{key}"));
            }
        }
    }
    out
}

/// The accepted range of one duration key, in seconds. The bounds keep every
/// `Duration`/`Instant` computed from a key far from overflow (the largest is
/// a day), and the smallest keep the agent from spinning.
pub struct DurationRange {
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    /// 0 is also accepted, meaning "never".
    pub zero_is_never: bool,
    /// 0 is also accepted, meaning "every cycle".
    pub zero_is_every_cycle: bool,
}

const DAY: f64 = 86_400.0;
const HOUR: f64 = 3_600.0;

/// Documented in config.yaml next to each key.
pub const DURATION_RANGES: &[DurationRange] = &[
    DurationRange::new("general.poll_interval", 0.05, DAY),
    DurationRange::new("general.snapshot_interval", 0.05, DAY),
    DurationRange::new("general.rescan_interval", 0.05, DAY),
    DurationRange::new("fabric.interval", 1.0, DAY),
    // A budget shorter than one MAD round trip is useless but harmless: it is how a
    // test cuts a sweep short on purpose (tests/ibsim).
    DurationRange::new("fabric.sweep_budget", 0.000_001, HOUR),
    DurationRange {
        zero_is_never: true,
        ..DurationRange::new("fabric.discovery_interval", 1.0, DAY)
    },
    DurationRange::new("fabric.timeout_ms", 0.001, 60.0),
    DurationRange {
        zero_is_never: true,
        ..DurationRange::new("fabric.detail_max_age", 60.0, 366.0 * DAY)
    },
    DurationRange::new("llm.interval", 1.0, DAY),
    DurationRange::new("llm.timeout", 0.1, HOUR),
    DurationRange::new("dify.interval", 1.0, DAY),
    DurationRange::new("dify.timeout", 0.1, HOUR),
    DurationRange::new("analysis.flap_window", 1.0, DAY),
    DurationRange {
        zero_is_every_cycle: true,
        ..DurationRange::new("attribution.interval", 0.05, DAY)
    },
];

impl DurationRange {
    const fn new(key: &'static str, min: f64, max: f64) -> DurationRange {
        DurationRange {
            key,
            min,
            max,
            zero_is_never: false,
            zero_is_every_cycle: false,
        }
    }

    fn check(&self, v: f64) -> Result<(), ConfigError> {
        // NaN fails both comparisons, so it is refused too.
        if (self.min..=self.max).contains(&v)
            || ((self.zero_is_never || self.zero_is_every_cycle) && v == 0.0)
        {
            return Ok(());
        }
        let (scale, unit) = if self.key.ends_with("_ms") {
            (1000.0, "ms")
        } else {
            (1.0, "s")
        };
        let never = if self.zero_is_never {
            "0 (never) or "
        } else if self.zero_is_every_cycle {
            "0 (every cycle) or "
        } else {
            ""
        };
        Err(ConfigError::OutOfRange {
            key: self.key,
            reason: format!(
                "must be {never}{} {unit} to {} {unit}{}, got {}",
                self.min * scale,
                self.max * scale,
                if self.max == DAY {
                    " (1 day)"
                } else if self.max == HOUR {
                    " (1 hour)"
                } else {
                    ""
                },
                number(v * scale)
            ),
        })
    }
}

/// A number as a person reads it: `1e30`, not thirty-one digits.
fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        // The library's message can span lines with a source snippet: keep
        // the first line (where and what), without any quoted text of the file.
        reason: unquoted(
            e.without_snippet()
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .trim(),
        ),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        other => Err(ConfigError::Syntax {
            path: path.to_owned(),
            reason: format!(
                "the top level must be a mapping of sections, got {}",
                kind(&other)
            ),
        }),
    }
}

/// `msg` with every quoted span longer than 3 characters replaced: a parser
/// quotes the text it choked on, and that text may be a secret (a config
/// path pointed at the wrong file). Short spans (`','`, `'}'`) stay.
fn unquoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(start) = rest.find(['`', '\'', '"']) {
        let quote = rest[start..].chars().next().expect("found");
        let after = &rest[start + 1..];
        out.push_str(&rest[..start]);
        match after.find(quote) {
            Some(end) if after[..end].chars().count() <= 3 => {
                out.push_str(&rest[start..start + 2 + end]);
                rest = &after[end + 1..];
            }
            Some(end) => {
                out.push_str("(text not shown)");
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("(text not shown)");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn names(map: &Map<String, Value>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Overlays a parsed file on the tree; every section and key must exist in the schema.
fn merge_file(
    tree: &mut Value,
    file: Value,
    schema: &Value,
    origin: &str,
) -> Result<(), ConfigError> {
    let (Value::Object(tree), Value::Object(file), Value::Object(schema)) = (tree, file, schema)
    else {
        unreachable!("parse_yaml returns mappings")
    };
    for (section, body) in file {
        let Some(Value::Object(section_schema)) = schema.get(&section) else {
            return Err(ConfigError::UnknownSection {
                origin: origin.into(),
                section,
                expected: names(schema),
            });
        };
        let body = match body {
            Value::Null => continue,
            Value::Object(m) => m,
            other => {
                return Err(ConfigError::WrongType {
                    origin: origin.into(),
                    key: section,
                    expected: "a mapping of keys",
                    got: kind(&other).into(),
                });
            }
        };
        let Some(Value::Object(target)) = tree.get_mut(&section) else {
            unreachable!("tree starts as a copy of the schema")
        };
        for (key, value) in body {
            if !section_schema.contains_key(&key) {
                return Err(ConfigError::UnknownKey {
                    origin: origin.into(),
                    key: format!("{section}.{key}"),
                    expected: names(section_schema),
                });
            }
            target.insert(key, value);
        }
    }
    Ok(())
}

/// Applies one `RDMA_MON_SECTION__KEY=value`, typed by the key's default.
fn apply_env(tree: &mut Value, schema: &Value, name: &str, raw: &str) -> Result<(), ConfigError> {
    let rest = &name[ENV_PREFIX.len()..];
    // Only RDMA_MON_<SECTION>__<KEY> is an override; other RDMA_MON_* names
    // (RDMA_MON_TESTBED for the test scripts) belong to someone else.
    let Some((section, key)) = rest.split_once("__") else {
        return Ok(());
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let origin = format!("environment {name}");
    let Some(Value::Object(section_schema)) = schema.get(&section) else {
        return Err(ConfigError::UnknownSection {
            origin,
            section,
            expected: names(schema.as_object().expect("schema is a mapping")),
        });
    };
    // A key of a nested mapping is named with `__` too:
    // RDMA_MON_PROMETHEUS__ENDPOINTS__SNAPSHOT is prometheus.endpoints.snapshot.
    let path: Vec<&str> = key.split("__").collect();
    let mut level = section_schema;
    let mut default = None;
    for (i, part) in path.iter().enumerate() {
        let unknown = || ConfigError::UnknownKey {
            origin: origin.clone(),
            key: format!("{section}.{}", path[..=i].join(".")),
            expected: names(level),
        };
        let found = level.get(*part).ok_or_else(unknown)?;
        match found {
            Value::Object(inner) if i + 1 < path.len() => level = inner,
            // A mapping is set key by key.
            Value::Object(inner) => {
                return Err(ConfigError::UnknownKey {
                    origin: origin.clone(),
                    key: format!("{section}.{}", path.join(".")),
                    expected: inner
                        .keys()
                        .map(|k| format!("{name}__{}", k.to_ascii_uppercase()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            _ if i + 1 < path.len() => return Err(unknown()),
            v => default = Some(v),
        }
    }
    let Some(default) = default else {
        return Ok(());
    };
    let full_key = format!("{section}.{}", path.join("."));
    let wrong = |expected: &'static str| ConfigError::WrongType {
        origin: origin.clone(),
        key: full_key.clone(),
        expected,
        got: raw.to_string(),
    };
    let value = match default {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(wrong("a boolean (true/false)")),
        },
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            // Integers may still be given as 2.5 where the field is a float; the
            // typed pass decides. Here only "is it a number" is checked.
            let t = raw.trim();
            if let Ok(i) = t.parse::<i64>() {
                Value::from(i)
            } else if let Ok(f) = t.parse::<f64>() {
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| wrong("a number"))?
            } else {
                return Err(wrong("a number"));
            }
        }
        Value::Number(_) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| wrong("a number"))?,
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => Value::String(raw.to_string()),
    };
    let mut slot = &mut tree[section.as_str()];
    for part in &path {
        slot = &mut slot[*part];
    }
    *slot = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let f = file(text);
        Config::load(Some(f.path()), std::iter::empty())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::defaults();
        assert_eq!(c.general.poll_interval, 10.0);
        assert_eq!(c.general.snapshot_interval, 30.0);
        assert_eq!(c.general.snapshot_dir, PathBuf::from("./snapshots"));
        assert_eq!(c.general.sysfs_root, PathBuf::from("/sys"));
        assert_eq!(c.network.mode, NetworkMode::Auto);
        assert!(c.network.devices.is_empty());
        assert!(c.prometheus.enabled);
        assert_eq!(c.prometheus.port(), 9090);
        assert!(!c.llm.enabled);
        assert!(!c.dify.enabled);
        assert_eq!(c.network.netlink, NetlinkUse::Auto);
        assert!(c.use_netlink(), "auto on /sys");
        assert_eq!(c.network.auto_mode_mask(), None);
    }

    #[test]
    fn fabric_section() {
        let c = Config::defaults();
        assert!(!c.fabric.enabled);
        assert_eq!(c.fabric.discovery_interval, 0.0);
        let c = Config::load(
            None,
            env(&[
                ("RDMA_MON_FABRIC__ENABLED", "true"),
                ("RDMA_MON_FABRIC__TIMEOUT_MS", "50"),
            ]),
        )
        .unwrap();
        assert!(c.fabric.enabled);
        assert_eq!(c.fabric.timeout_ms, 50);
        let e = load_text("fabric:\n  max_outstanding: 0\n").unwrap_err();
        assert!(e.to_string().starts_with("fabric.max_outstanding"), "{e}");
        // The detail files are always bounded by a count; an age is at least a minute.
        for (text, key) in [
            ("fabric:\n  detail_keep: 0\n", "fabric.detail_keep"),
            ("fabric:\n  detail_max_age: 10\n", "fabric.detail_max_age"),
        ] {
            let e = load_text(text).unwrap_err();
            assert!(e.to_string().starts_with(key), "{e}");
        }
        assert!(load_text("fabric:\n  detail_max_age: 0\n").is_ok());
    }

    #[test]
    fn netlink_auto_follows_the_sysfs_root() {
        let c = Config::load(None, env(&[("RDMA_MON_GENERAL__SYSFS_ROOT", "fixtures/x")])).unwrap();
        assert!(!c.use_netlink());
        let c = Config::load(
            None,
            env(&[
                ("RDMA_MON_GENERAL__SYSFS_ROOT", "fixtures/x"),
                ("RDMA_MON_NETWORK__NETLINK", "always"),
                ("RDMA_MON_NETWORK__QP_COUNTER_AUTO_MODE", "type,pid"),
            ]),
        )
        .unwrap();
        assert!(c.use_netlink());
        assert_eq!(c.network.auto_mode_mask(), Some(3));
        let e = Config::load(
            None,
            env(&[("RDMA_MON_NETWORK__QP_COUNTER_AUTO_MODE", "qpn")]),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("network.qp_counter_auto_mode"),
            "{e}"
        );
    }

    #[test]
    fn file_overrides_only_what_it_names() {
        let c = load_text("prometheus:\n  port: 9100\nnetwork:\n  mode: roce\n").unwrap();
        assert_eq!(c.prometheus.port(), 9100);
        assert_eq!(c.network.mode, NetworkMode::Roce);
        assert_eq!(c.general.poll_interval, 10.0);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(load_text("").unwrap(), Config::defaults());
    }

    #[test]
    fn env_sets_keys_of_nested_mappings() {
        let c = Config::load(
            None,
            env(&[
                ("RDMA_MON_PROMETHEUS__ENDPOINTS__SNAPSHOT", "false"),
                ("RDMA_MON_PROMETHEUS__HEALTH_LISTEN", "127.0.0.1:9880"),
            ]),
        )
        .unwrap();
        assert!(!c.prometheus.endpoints.snapshot);
        assert!(c.prometheus.endpoints.analysis);
        assert_eq!(
            c.prometheus.health_listen(),
            Ok(Some("127.0.0.1:9880".parse().unwrap()))
        );
        let e = Config::load(None, env(&[("RDMA_MON_PROMETHEUS__ENDPOINTS", "x")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("RDMA_MON_PROMETHEUS__ENDPOINTS__SNAPSHOT"),
            "{e}"
        );
        let e = Config::load(
            None,
            env(&[("RDMA_MON_PROMETHEUS__ENDPOINTS__METRICS", "false")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("snapshot"), "{e}");
        let e = Config::load(
            None,
            env(&[("RDMA_MON_PROMETHEUS__HEALTH_LISTEN", "0.0.0.0:9880")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn env_overrides_file_and_keeps_strings_strings() {
        let f = file("prometheus:\n  port: 9100\n");
        let c = Config::load(
            Some(f.path()),
            env(&[
                ("RDMA_MON_PROMETHEUS__PORT", "9200"),
                ("RDMA_MON_LLM__API_KEY", "12345"),
                ("RDMA_MON_NETWORK__DEVICES", "mlx5_0, mlx5_1"),
                ("RDMA_MON_GENERAL__POLL_INTERVAL", "0.5"),
                ("RDMA_MON_PROMETHEUS__ENABLED", "false"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.prometheus.port(), 9200);
        assert_eq!(c.llm.api_key, "12345");
        assert_eq!(c.network.devices, vec!["mlx5_0", "mlx5_1"]);
        assert_eq!(c.general.poll_interval, 0.5);
        assert!(!c.prometheus.enabled);
    }

    #[test]
    fn unknown_section_is_named() {
        let e = load_text("metrics:\n  port: 1\n").unwrap_err();
        assert!(matches!(&e, ConfigError::UnknownSection { section, .. } if section == "metrics"));
        assert!(e.to_string().contains("unknown section `metrics`"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_text("general:\n  poll_intervall: 5\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown key `general.poll_intervall`"),
            "{e}"
        );
        let e = Config::load(None, env(&[("RDMA_MON_LLM__APIKEY", "x")])).unwrap_err();
        assert!(e.to_string().contains("RDMA_MON_LLM__APIKEY"), "{e}");
        assert!(e.to_string().contains("unknown key `llm.apikey`"), "{e}");
        let e = Config::load(None, env(&[("RDMA_MON_FOO__BAR", "x")])).unwrap_err();
        assert!(e.to_string().contains("unknown section `foo`"), "{e}");
        // Not an override at all: left alone.
        assert!(Config::load(None, env(&[("RDMA_MON_TESTBED", "../shared/testbed")])).is_ok());
    }

    #[test]
    fn wrong_types_are_named() {
        let e = load_text("prometheus:\n  port: ninety\n").unwrap_err();
        assert!(e.to_string().contains("`prometheus.port`"), "{e}");
        let e = load_text("network:\n  mode: ethernet\n").unwrap_err();
        assert!(e.to_string().contains("`network.mode`"), "{e}");
        assert!(e.to_string().contains("roce"), "{e}");
        let e = load_text("network:\n  devices: mlx5_0\n").unwrap_err();
        assert!(e.to_string().contains("`network.devices`"), "{e}");
        let e = load_text("general: 5\n").unwrap_err();
        assert!(e.to_string().contains("`general` must be a mapping"), "{e}");
        let e = load_text("prometheus:\n  listen_address: here\n").unwrap_err();
        assert!(e.to_string().contains("`prometheus.listen_address`"), "{e}");
        let e = Config::load(None, env(&[("RDMA_MON_PROMETHEUS__PORT", "x1")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("RDMA_MON_PROMETHEUS__PORT: `prometheus.port` must be a number"),
            "{e}"
        );
        let e = Config::load(None, env(&[("RDMA_MON_PROMETHEUS__ENABLED", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("a boolean"), "{e}");
    }

    #[test]
    fn ranges_are_checked() {
        for (text, key) in [
            ("prometheus:\n  port: 70000\n", "prometheus.port"),
            ("prometheus:\n  port: 0\n", "prometheus.port"),
            ("general:\n  poll_interval: 0\n", "general.poll_interval"),
            ("general:\n  poll_interval: -3\n", "general.poll_interval"),
            (
                "general:\n  snapshot_interval: 0\n",
                "general.snapshot_interval",
            ),
            (
                "general:\n  rescan_interval: -1\n",
                "general.rescan_interval",
            ),
        ] {
            let e = load_text(text).unwrap_err();
            assert!(e.to_string().starts_with(key), "{text}: {e}");
        }
    }

    #[test]
    fn unreadable_and_malformed_files() {
        let e =
            Config::load(Some(Path::new("/nonexistent/x.yaml")), std::iter::empty()).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        let e = load_text("general: [unclosed\n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        let e = load_text("- a\n- b\n").unwrap_err();
        assert!(e.to_string().contains("top level must be a mapping"), "{e}");
    }

    #[test]
    fn every_error_is_one_line() {
        for text in [
            "general: [unclosed\n",
            "x: 1\n",
            "general:\n  nope: 1\n",
            "prometheus:\n  port: [1]\n",
        ] {
            let e = load_text(text).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{text:?} gave {e:?}");
        }
    }

    #[test]
    fn redaction_hides_secrets_and_round_trips() {
        let c = Config::load(
            None,
            env(&[
                ("RDMA_MON_LLM__API_KEY", "sk-very-secret"),
                ("RDMA_MON_DIFY__API_KEY", "app-secret"),
            ]),
        )
        .unwrap();
        let text = c.to_redacted_yaml();
        assert!(!text.contains("sk-very-secret"), "{text}");
        assert!(!text.contains("app-secret"), "{text}");
        assert!(text.contains(REDACTED));
        // The printed config is itself a valid config file.
        let back = load_text(&text).unwrap();
        assert_eq!(back.prometheus, c.prometheus);
        assert_eq!(back.llm.api_key, REDACTED);
    }

    fn yaml_for(key: &str, value: &str) -> String {
        let (section, name) = key.split_once('.').unwrap();
        format!("{section}:\n  {name}: {value}\n")
    }

    #[test]
    fn every_duration_key_has_a_range_checked_at_load() {
        let c = Config::defaults();
        // The table covers every duration key the config has, and the defaults pass.
        assert_eq!(c.durations().len(), DURATION_RANGES.len());
        for r in DURATION_RANGES {
            let ms = r.key.ends_with("_ms");
            let scale = if ms { 1000.0 } else { 1.0 };
            let fmt = |v: f64| {
                if ms {
                    format!("{}", v as u64)
                } else {
                    format!("{v}")
                }
            };
            for ok in [r.min * scale, r.max * scale] {
                let text = yaml_for(r.key, &fmt(ok));
                assert!(load_text(&text).is_ok(), "{text}");
            }
            let mut bad = vec![r.max * scale * 2.0, -1.0];
            if !ms {
                bad.extend([1e30, r.min / 2.0]);
            }
            if !r.zero_is_never && !r.zero_is_every_cycle {
                bad.push(0.0);
            }
            for v in bad {
                let text = yaml_for(r.key, &fmt(v));
                let e = load_text(&text).unwrap_err().to_string();
                assert!(e.starts_with(r.key), "{text}: {e}");
                if v >= 0.0 {
                    // One line naming the key and its range.
                    assert!(e.contains(" to "), "{text}: {e}");
                    assert!(!e.contains('\n'), "{e}");
                }
            }
        }
        let e = load_text("general:\n  poll_interval: 1e30\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "general.poll_interval: must be 0.05 s to 86400 s (1 day), got 1e30"
        );
        let e = Config::load(None, env(&[("RDMA_MON_LLM__TIMEOUT", "1e30")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("llm.timeout: must be 0.1 s to 3600 s"),
            "{e}"
        );
        assert!(load_text("fabric:\n  discovery_interval: 0\n").is_ok());
    }

    #[test]
    fn echoed_values_are_escaped_to_one_line() {
        let forged = "general:\n  log_level: \"info\\nrdma-monitor: error: forged \\x1b[31mred\"\n";
        let e = load_text(forged).unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\x1b'), "{e:?}");
        assert!(e.contains("info\\nrdma-monitor"), "{e}");
        assert!(e.contains("\\u{1b}[31m"), "{e}");
        let e = Config::load(None, env(&[("RDMA_MON_PROMETHEUS__PORT", "1\n\u{1b}[2J")]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && !e.contains('\x1b'), "{e:?}");
        let e = Config::load(
            Some(Path::new("/nonexistent/a\nb\u{1b}.yaml")),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains('\n') && !e.contains('\x1b'), "{e:?}");
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\r\n\u{202e}b"), "a\\r\\n\\u{202e}b");
    }

    #[test]
    fn file_contents_are_not_echoed() {
        // What `--config /etc/shadow` parses as: a mapping whose keys are lines.
        for text in [
            "root:$y$j9T$hunter2hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
            "general:\n  bad key hunter2: 1\n",
            "general:\n  poll_interval: 1\nsecret: hunter2 [\n",
            "llm:\n  api_key: 4242424242\n",
        ] {
            let e = load_text(text).unwrap_err().to_string();
            assert!(
                !e.contains("hunter2") && !e.contains("4242"),
                "{text:?} gave {e}"
            );
        }
        // A name that is a name is still shown: typos must stay easy to find.
        let e = load_text("general:\n  poll_intervall: 5\n").unwrap_err();
        assert!(e.to_string().contains("`general.poll_intervall`"), "{e}");
    }

    #[test]
    fn parser_quotes_are_not_echoed() {
        assert_eq!(
            unquoted("found `root:$y$hash` near ',' and \"abc"),
            "found (text not shown) near ',' and (text not shown)"
        );
        assert_eq!(unquoted("unclosed quote"), "unclosed quote");
    }

    #[test]
    fn urls_with_credentials_are_redacted() {
        assert_eq!(
            redact_url("http://user:KEY@host:8080/v1?x=1"),
            format!("http://{REDACTED}@host:8080/v1?x=1")
        );
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
        let c = Config::load(
            None,
            env(&[
                (
                    "RDMA_MON_LLM__API_URL",
                    "http://user:sk-KEY@llm.local/v1/chat/completions",
                ),
                ("RDMA_MON_DIFY__API_URL", "https://:app-KEY@dify.local/v1"),
            ]),
        )
        .unwrap();
        let text = c.to_redacted_yaml();
        assert!(!text.contains("KEY"), "{text}");
        assert!(text.contains("llm.local/v1/chat/completions"), "{text}");
        let e = Config::load(
            None,
            env(&[
                ("RDMA_MON_LLM__ENABLED", "true"),
                ("RDMA_MON_LLM__API_URL", "ftp://user:sk-KEY@llm.local/"),
            ]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("KEY"), "{e}");
    }
}
