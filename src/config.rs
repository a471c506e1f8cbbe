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

/// The documented defaults, compiled in.
pub const DEFAULT_YAML: &str = include_str!("../config.yaml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "RDMA_MON_";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("config file {path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config file {path}: not valid YAML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("{origin}: unknown section `{section}` (expected one of: {expected})")]
    UnknownSection {
        origin: String,
        section: String,
        expected: String,
    },
    #[error("{origin}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        origin: String,
        key: String,
        expected: String,
    },
    #[error("{origin}: `{key}` must be {expected}, got {got:?}")]
    WrongType {
        origin: String,
        key: String,
        expected: &'static str,
        got: String,
    },
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("{key}: {reason}")]
    OutOfRange { key: &'static str, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub general: General,
    pub network: Network,
    pub fabric: Fabric,
    pub prometheus: Prometheus,
    pub analysis: Analysis,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct General {
    pub poll_interval: f64,
    pub snapshot_interval: f64,
    pub snapshot_dir: PathBuf,
    pub snapshot_keep: u32,
    pub sysfs_root: PathBuf,
    pub rescan_interval: f64,
    pub log_level: LogLevel,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
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
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
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
            ConfigError::Invalid {
                origin: origin.clone(),
                reason: format!("`{key}`: {}", e.inner()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults only.
    pub fn defaults() -> Config {
        Config::load(None, std::iter::empty()).expect("the embedded config.yaml is valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let interval = |key: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    key,
                    reason: format!("must be a number of seconds greater than 0, got {v}"),
                })
            }
        };
        interval("general.poll_interval", self.general.poll_interval)?;
        interval("general.snapshot_interval", self.general.snapshot_interval)?;
        interval("general.rescan_interval", self.general.rescan_interval)?;
        interval("fabric.interval", self.fabric.interval)?;
        interval("llm.interval", self.llm.interval)?;
        interval("llm.timeout", self.llm.timeout)?;
        interval("dify.interval", self.dify.interval)?;
        interval("dify.timeout", self.dify.timeout)?;
        interval("analysis.flap_window", self.analysis.flap_window)?;
        for (key, url, on) in [
            ("llm.api_url", &self.llm.api_url, self.llm.enabled),
            ("dify.api_url", &self.dify.api_url, self.dify.enabled),
        ] {
            if on && !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::OutOfRange {
                    key,
                    reason: format!("must be an http:// or https:// URL, got {url:?}"),
                });
            }
        }
        interval("fabric.sweep_budget", self.fabric.sweep_budget)?;
        if !(self.fabric.discovery_interval.is_finite() && self.fabric.discovery_interval >= 0.0) {
            return Err(ConfigError::OutOfRange {
                key: "fabric.discovery_interval",
                reason: format!(
                    "must be 0 (never) or a number of seconds, got {}",
                    self.fabric.discovery_interval
                ),
            });
        }
        if !(1..=256).contains(&self.fabric.max_outstanding) {
            return Err(ConfigError::OutOfRange {
                key: "fabric.max_outstanding",
                reason: format!("must be 1-256, got {}", self.fabric.max_outstanding),
            });
        }
        if !(1..=60_000).contains(&self.fabric.timeout_ms) {
            return Err(ConfigError::OutOfRange {
                key: "fabric.timeout_ms",
                reason: format!("must be 1-60000, got {}", self.fabric.timeout_ms),
            });
        }
        if !(1..=65535).contains(&self.prometheus.port) {
            return Err(ConfigError::OutOfRange {
                key: "prometheus.port",
                reason: format!("must be a TCP port 1-65535, got {}", self.prometheus.port),
            });
        }
        if self.general.snapshot_dir.as_os_str().is_empty() {
            return Err(ConfigError::OutOfRange {
                key: "general.snapshot_dir",
                reason: "must not be empty".into(),
            });
        }
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

fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        // The library's message can span lines with a source snippet: keep the first.
        reason: e
            .to_string()
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
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
    let Some(default) = section_schema.get(&key) else {
        return Err(ConfigError::UnknownKey {
            origin,
            key: format!("{section}.{key}"),
            expected: names(section_schema),
        });
    };
    let full_key = format!("{section}.{key}");
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
    tree[section.as_str()][key.as_str()] = value;
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
}
