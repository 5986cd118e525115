//! One attempt to hand a notification to its integration over HTTP: the payload in the
//! receiver's format, its headers (bearer token, HMAC signature), and what the answer means.
//! Error messages never carry URLs, which may hold tokens.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use crate::config::AlertingConfig;
use crate::outbox::Pending;
use crate::payload::{self, PagerDutyOptions, Severity, SlackOptions};
use crate::postable::PostableAlert;
use crate::retry::{Outcome, classify};

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The extra certificate authorities could not be read.
    #[error("ca_file {path}: {source}")]
    CaFile {
        /// The file named in the configuration.
        path: PathBuf,
        /// What went wrong reading it.
        source: std::io::Error,
    },
    /// The extra certificate authorities are not PEM certificates.
    #[error("ca_file {path}: {source}")]
    CaPem {
        /// The file named in the configuration.
        path: PathBuf,
        /// Why the PEM was refused.
        source: reqwest::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Sends notifications over HTTP or HTTPS (system roots plus any extra authorities).
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
}

/// A request ready to go: where, what and with which extra headers.
struct Request {
    url: String,
    body: Result<Vec<u8>, serde_json::Error>,
    headers: Vec<(&'static str, String)>,
}

impl Sender {
    /// A sender whose attempts give up after `timeout` and that trusts the system's
    /// certificate authorities plus those in the PEM file `ca_file`.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Sender, SenderError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("Vigil/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| SenderError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                SenderError::CaPem {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            if certs.is_empty() {
                return Err(SenderError::CaFile {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "no PEM certificate in the file",
                    ),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Sender {
            client: builder.build()?,
        })
    }

    /// One attempt to deliver `pending` with the integration's current settings.
    pub async fn send(&self, config: &AlertingConfig, pending: &Pending) -> Outcome {
        let Some(request) = request(config, pending) else {
            return Outcome::Permanent {
                error: format!(
                    "integration {} is no longer configured",
                    pending.integration
                ),
            };
        };
        let body = match request.body {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Permanent {
                    error: format!("payload could not be encoded: {e}"),
                };
            }
        };
        let mut builder = self
            .client
            .post(&request.url)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        match builder.body(body).send().await {
            Err(e) => Outcome::Retry {
                error: with_causes(&e.without_url()),
                after: None,
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = response.text().await.unwrap_or_default();
                classify(status, retry_after.as_deref(), &text, Utc::now())
            }
        }
    }
}

/// `error: cause: cause`, so a refused certificate or connection says so (reqwest's own
/// message is only "error sending request").
fn with_causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The request for `pending` under `config`, if its integration still exists.
fn request(config: &AlertingConfig, pending: &Pending) -> Option<Request> {
    let receiver = config.receiver(&pending.integration.receiver)?;
    let index = pending.integration.index;
    let n = &pending.notification;
    let request = match pending.integration.kind.as_str() {
        "webhook" => {
            let c = receiver.webhook_configs.get(index)?;
            let body = serde_json::to_vec(&payload::webhook::message(n));
            let mut headers = Vec::new();
            if let Some(token) = &c.bearer_token {
                headers.push(("authorization", format!("Bearer {}", token.expose())));
            }
            if let (Some(secret), Ok(bytes)) = (&c.hmac_secret, &body) {
                headers.push((
                    payload::SIGNATURE_HEADER,
                    payload::webhook::signature(secret.expose().as_bytes(), bytes),
                ));
            }
            Request {
                url: c.url.expose().to_string(),
                body,
                headers,
            }
        }
        "slack" => {
            let c = receiver.slack_configs.get(index)?;
            let options = SlackOptions {
                channel: c.channel.clone(),
                username: c.username.clone(),
                icon_emoji: c.icon_emoji.clone(),
            };
            Request {
                url: c.api_url.expose().to_string(),
                body: serde_json::to_vec(&payload::slack::message(n, &options)),
                headers: Vec::new(),
            }
        }
        "pagerduty" => {
            let c = receiver.pagerduty_configs.get(index)?;
            let options = PagerDutyOptions {
                routing_key: c.routing_key.expose().to_string(),
                severity: c.severity.as_deref().and_then(Severity::from_label),
            };
            Request {
                url: c.url.expose().to_string(),
                body: serde_json::to_vec(&payload::pagerduty::event(n, &options)),
                headers: Vec::new(),
            }
        }
        "alertmanager" => {
            let c = receiver.alertmanager_configs.get(index)?;
            let alerts: Vec<PostableAlert> = n
                .alerts
                .iter()
                .map(|a| PostableAlert::from_alert(a, payload::alert_url(&n.external_url, a)))
                .collect();
            Request {
                url: format!("{}/api/v2/alerts", c.url.expose().trim_end_matches('/')),
                body: serde_json::to_vec(&alerts),
                headers: Vec::new(),
            }
        }
        _ => return None,
    };
    Some(request)
}
