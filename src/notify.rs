//! The notification service as `vigil serve` runs it: the routing file read with `${ENV}`
//! expansion, re-read through the reload loop (`reload.rs`), and the last good routing kept
//! in force when an edit is invalid.

use std::path::{Path, PathBuf};

use anyhow::Context;
use vigil_alerting::config::AlertingConfig;
use vigil_alerting::retry::Backoff;
use vigil_alerting::service::{Notifier, ServiceOptions};
use vigil_store::file_stamp::FileStamp;

use crate::config::{AlertingSection, expand_env};
use crate::reload::Reload;

/// Reads, expands and checks a routing file.
pub fn load(path: &Path) -> anyhow::Result<AlertingConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let expanded = expand_env(&text, |k| std::env::var(k).ok())
        .with_context(|| format!("in {}", path.display()))?;
    Ok(AlertingConfig::parse(
        &path.display().to_string(),
        &expanded,
    )?)
}

/// Starts the notification service (its files under `data_dir/notifications`, linking to
/// Vigil at `external_url`), with the reload of its routing file when there is one.
pub fn start(
    section: &AlertingSection,
    data_dir: &Path,
    external_url: String,
) -> anyhow::Result<(Notifier, Option<Reload>)> {
    // Stamped before reading, so an edit made while starting is picked up.
    let seen = section.file.as_deref().and_then(|p| FileStamp::of(p).ok());
    let config = match &section.file {
        Some(path) => load(path)?,
        None => AlertingConfig::empty(),
    };
    let notifier = Notifier::start(
        config,
        ServiceOptions {
            dir: data_dir.join("notifications"),
            external_url,
            timeout: section.timeout.0,
            ca_file: section.ca_file.clone(),
            backoff: Backoff {
                max: section.max_backoff.0,
                ..Backoff::default()
            },
        },
    )
    .context("starting notifications")?;
    let reload = section
        .file
        .clone()
        .map(|path| reloader(path, seen, notifier.clone()));
    Ok((notifier, reload))
}

/// Re-reads the routing file at `path` (as `seen` when last read) into `notifier` when it
/// changed, or when `forced`.
fn reloader(path: PathBuf, mut seen: Option<FileStamp>, notifier: Notifier) -> Reload {
    Box::new(move |forced| {
        let now = FileStamp::of(&path).ok();
        if !forced && now == seen {
            return;
        }
        seen = now;
        match load(&path) {
            Ok(config) => {
                tracing::info!(file = %path.display(), "notification routing reloaded");
                notifier.reload(config);
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::warn!(error = %message, "notification routing reload failed; keeping the last good routing");
                notifier.reload_failed(message);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_routing_parses_with_its_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/alerting.example.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        let expanded = expand_env(&text, |_| None).unwrap();
        let config = AlertingConfig::parse("alerting.example.yml", &expanded).unwrap();
        assert_eq!(config.route.receiver, "team-webhook");
        assert_eq!(config.route.routes.len(), 3);
        let oncall = config.receiver("oncall-pagerduty").unwrap();
        assert_eq!(oncall.integrations().len(), 2);
        assert_eq!(config.inhibit_rules.len(), 1);
        assert_eq!(config.time_intervals[0].name, "sunday-maintenance");
    }
}
