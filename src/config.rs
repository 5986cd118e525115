//! The `vigil serve` configuration: a TOML file with `${ENV}` expansion, then `VIGIL_*`
//! environment variables and command-line flags on top, then limits derived from the memory budget.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use vigil_collector::CollectorConfig;
use vigil_dashboards::ApiConfig;
use vigil_detectors::anomaly::runner::AnomalyConfig;
use vigil_store::StoreConfig;
use vigil_store::units::{ByteSize, HumanDuration};

/// `[limits]`: the memory budget everything else is sized from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Memory Vigil may use for data in flight, in its in-memory tail, for writing Parquet
    /// and for queries. 25% goes to requests being decoded (requests beyond it are refused
    /// with OTLP's retryable codes), 30% to the tail (which is flushed to Parquet early once
    /// it reaches 8%), 10% to the file being written by a flush or compaction, 3/16 to users'
    /// queries and 3/32 to the rule engine's and anomaly detector's queries (beyond their
    /// share, queries spill to disk or fail).
    pub memory_limit: ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            memory_limit: ByteSize(512 << 20),
        }
    }
}

impl LimitsConfig {
    /// Bytes of decoded requests allowed in flight.
    pub fn in_flight_budget(&self) -> usize {
        (self.memory_limit.0 / 4) as usize
    }
}

/// `[log]`: what Vigil logs about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `vigil_store=debug,info`; `VIGIL_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// `[rules]`: SLA rules and SLOs to evaluate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule files, or directories whose `*.yaml`/`*.yml` files are all read. Changes are
    /// picked up within 2 s; an invalid file keeps the last good rules in force.
    pub files: Vec<std::path::PathBuf>,
}

/// `[alerting]`: where notifications about alerts go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingSection {
    /// The routing file: route tree, receivers, inhibition rules and time intervals in
    /// Alertmanager's YAML shape (see config/alerting.example.yml). Without one, alerts are
    /// grouped and can be silenced, but nobody is notified. Edits are picked up within 2 s
    /// and on SIGHUP; an invalid file keeps the last good routing in force.
    pub file: Option<PathBuf>,
    /// Vigil's address as people reach it, for links in notifications
    /// (default: `http://` and the query API's address).
    pub external_url: Option<String>,
    /// Longest one delivery attempt may take.
    pub timeout: HumanDuration,
    /// Longest wait between two attempts to deliver a notification (the waits double from 1 s
    /// up to this, with ±20% jitter, and are never shorter than the receiver's Retry-After).
    pub max_backoff: HumanDuration,
    /// Certificate authorities (a PEM file) trusted for HTTPS receivers in addition to the
    /// system's, for receivers behind an internal CA.
    pub ca_file: Option<PathBuf>,
    /// Longest a firing alert waits for its root-cause analysis (top suspects, report and
    /// trace links, added to its annotations) before it is sent without it.
    pub rca_timeout: HumanDuration,
}

impl Default for AlertingSection {
    fn default() -> Self {
        AlertingSection {
            file: None,
            external_url: None,
            timeout: HumanDuration(std::time::Duration::from_secs(10)),
            max_backoff: HumanDuration(std::time::Duration::from_secs(60)),
            ca_file: None,
            rca_timeout: HumanDuration(std::time::Duration::from_secs(3)),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VigilConfig {
    /// OTLP receivers.
    pub otlp: CollectorConfig,
    /// Query API.
    pub api: ApiConfig,
    /// Storage.
    pub store: StoreConfig,
    /// Memory budget.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Rule evaluation.
    pub rules: RulesConfig,
    /// The live anomaly detector.
    pub anomaly: AnomalyConfig,
    /// Notifications.
    pub alerting: AlertingSection,
}

impl VigilConfig {
    /// Parses TOML text after expanding `${VAR}` / `${VAR:-default}` from `env`.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<VigilConfig> {
        let expanded = expand_env(text, env)?;
        toml::from_str(&expanded).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<VigilConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        VigilConfig::parse(&text, |k| std::env::var(k).ok())
            .with_context(|| format!("in {}", path.display()))
    }

    /// Sets the limits that follow from `limits.memory_limit`.
    pub fn derive_limits(&mut self) {
        let budget = self.limits.memory_limit.0;
        self.store.tail_limit = ByteSize(budget / 10 * 3);
        self.store.flush_size = ByteSize(budget / 100 * 8);
        self.store.write_memory = ByteSize(budget / 10);
        self.store.query_memory = ByteSize(budget / 16 * 3);
        self.store.internal_query_memory = ByteSize(budget / 32 * 3);
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` outside comments; an unset variable without a default is an error.
pub fn expand_env(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                bail!("line {}: unterminated ${{ in {line:?}", n + 1)
            };
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, d)) => (name, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("line {}: invalid variable name {name:?}", n + 1);
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => bail!("line {}: environment variable {name} is not set", n + 1),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detectors::rules::selector::Aggregation;

    #[test]
    fn env_references_expand_and_missing_ones_are_errors() {
        let env = |k: &str| (k == "DIR").then(|| "/data".to_string());
        assert_eq!(
            expand_env("a = \"${DIR}/x\"\n", env).unwrap(),
            "a = \"/data/x\"\n"
        );
        assert_eq!(expand_env("a = \"${NOPE:-d}\"", env).unwrap(), "a = \"d\"");
        assert_eq!(expand_env("# ${NOPE}\n", env).unwrap(), "# ${NOPE}\n");
        let err = expand_env("x\na = \"${NOPE}\"", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("NOPE"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_location() {
        let err = VigilConfig::parse("[store]\nfsink = \"always\"\n", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fsink") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_example_configuration_parses_and_matches_the_defaults() {
        let text = include_str!("../config/vigil.example.toml");
        let env = |k: &str| (k == "VIGIL_DATA_DIR").then(|| "./vigil-data".to_string());
        let parsed = VigilConfig::parse(text, env).unwrap();
        assert_eq!(parsed, VigilConfig::default());
        // Its commented-out example of a watched metric parses as written.
        let watched: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [[anomaly.metrics]]"))
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        let parsed = VigilConfig::parse(&watched, env).unwrap();
        let m = &parsed.anomaly.metrics[..];
        assert_eq!(m.len(), 1, "{watched}");
        assert_eq!(m[0].aggregation, Aggregation::Rate);
        assert_eq!(m[0].labels["outcome"], "dead_lettered");
        assert_eq!(m[0].group_by, ["messaging.destination.name"]);
    }
}
