//! The notification service as `vigil serve` runs it: the routing file read with `${ENV}`
//! expansion, watched for edits (every 2 s) and SIGHUP, and the last good routing kept in
//! force when an edit is invalid.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::Notify;
use vigil_alerting::config::AlertingConfig;
use vigil_alerting::retry::Backoff;
use vigil_alerting::service::{Notifier, ServiceOptions};

use crate::config::{AlertingSection, expand_env};

/// How often the routing file is checked for edits.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

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

/// Starts the notification service (its files under `data_dir/notifications`) and, with a
/// routing file, the task that reloads it until `shutdown`.
pub fn start(
    section: &AlertingSection,
    data_dir: &Path,
    external_url: String,
    shutdown: Arc<Notify>,
) -> anyhow::Result<Notifier> {
    let config = match &section.file {
        Some(path) => load(path)?,
        None => AlertingConfig::empty(),
    };
    let notifier = Notifier::start(
        config,
        ServiceOptions {
            dir: data_dir.join("notifications"),
            external_url: section.external_url.clone().unwrap_or(external_url),
            timeout: section.timeout.0,
            ca_file: section.ca_file.clone(),
            backoff: Backoff {
                max: section.max_backoff.0,
                ..Backoff::default()
            },
        },
    )
    .context("starting notifications")?;
    if let Some(path) = section.file.clone() {
        tokio::spawn(watch(path, notifier.clone(), shutdown));
    }
    Ok(notifier)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the routing file when it changes or on SIGHUP.
async fn watch(path: PathBuf, notifier: Notifier, shutdown: Arc<Notify>) {
    let stop = shutdown.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = modified(&path);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        let forced = tokio::select! {
            () = tokio::time::sleep(RELOAD_CHECK) => false,
            _ = hup => true,
            () = &mut stop => return,
        };
        let now = modified(&path);
        if !forced && now == seen {
            continue;
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
    }
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
