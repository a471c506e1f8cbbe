//! The `health` section: what the operator expects of this node's ports
//! (`expect`) and how far a port may stray from its siblings before it is an
//! outlier. The rules that use them are in `analysis::health`.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub expect: Vec<Expectation>,
    pub outlier_factor: f64,
    pub outlier_min_per_second: f64,
}

/// One expectation: the ports it covers (`match`, `link_layer`) and what
/// they must be. Every field is optional; an absent one is not checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Names the rule in the finding; `expect[<index>]` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RDMA device names, a glob (`*` any run of characters, `?` one).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub device_match: Option<String>,
    /// `InfiniBand` or `Ethernet` (as sysfs `link_layer` spells it; any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_layer: Option<String>,
    /// How many covered ports must be active and fast enough; absent: all
    /// the covered ports, and at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rate_gbps: Option<f64>,
    /// Lanes (4 for 4X).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_width: Option<u8>,
    /// `critical` (default) or `warning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<ExpectSeverity>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExpectSeverity {
    Critical,
    Warning,
}

impl Expectation {
    /// The name the finding gives this rule.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("expect[{index}]"))
    }
}

impl Health {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| ConfigError::OutOfRange { key, reason };
        if !(self.outlier_factor.is_finite() && self.outlier_factor >= 1.0) {
            return Err(bad(
                "health.outlier_factor",
                format!("must be a number >= 1, got {}", self.outlier_factor),
            ));
        }
        if !(self.outlier_min_per_second.is_finite() && self.outlier_min_per_second >= 0.0) {
            return Err(bad(
                "health.outlier_min_per_second",
                format!("must be a number >= 0, got {}", self.outlier_min_per_second),
            ));
        }
        for (i, e) in self.expect.iter().enumerate() {
            let name = e.label(i);
            if let Some(ll) = &e.link_layer
                && !["infiniband", "ethernet"].contains(&ll.to_ascii_lowercase().as_str())
            {
                return Err(bad(
                    "health.expect",
                    format!("{name}: link_layer must be InfiniBand or Ethernet, got {ll:?}"),
                ));
            }
            if let Some(r) = e.min_rate_gbps
                && !(r.is_finite() && r >= 0.0)
            {
                return Err(bad(
                    "health.expect",
                    format!("{name}: min_rate_gbps must be a number >= 0, got {r}"),
                ));
            }
            if e.min_width == Some(0) {
                return Err(bad(
                    "health.expect",
                    format!("{name}: min_width must be at least 1 lane"),
                ));
            }
            if e.device_match.as_deref() == Some("") {
                return Err(bad(
                    "health.expect",
                    format!("{name}: match must not be empty (leave it out to cover every device)"),
                ));
            }
        }
        Ok(())
    }
}

/// `name` matches `pattern`: `*` is any run of characters (also none), `?`
/// exactly one; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_star_and_question_mark() {
        assert!(glob_match("mlx5_*", "mlx5_0"));
        assert!(glob_match("mlx5_*", "mlx5_"));
        assert!(glob_match("mlx5_?", "mlx5_7"));
        assert!(!glob_match("mlx5_?", "mlx5_10"));
        assert!(glob_match("*_1?", "mlx5_10"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("mlx5_*", "mlx4_0"));
        assert!(glob_match("m*x*_*0", "mlx5_10"));
        assert!(!glob_match("m*x*_*2", "mlx5_10"));
        assert!(glob_match("irdma0", "irdma0"));
        assert!(!glob_match("irdma0", "irdma01"));
    }
}
