//! One attempt to hand a notification to its integration over HTTP: the payload in the
//! receiver's format, its headers (bearer token, HMAC signature), and what the answer means.
//! Error messages never carry URLs, which may hold tokens.

use std::time::Duration;

use chrono::Utc;

use crate::config::AlertingConfig;
use crate::outbox::Pending;
use crate::payload::{self, PagerDutyOptions, Severity, SlackOptions};
use crate::postable::PostableAlert;
use crate::retry::{Outcome, classify};

/// Sends notifications.
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
    /// A sender whose attempts give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("Vigil/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client })
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
                error: e.without_url().to_string(),
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
