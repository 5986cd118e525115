//! The CLI's side of Vigil's and the sample services' HTTP APIs: one JSON request, and the
//! answer or the error the server gave.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;

/// Sends `body` (if any) to `url` and returns the JSON answer; a refusal is an error with
/// the server's message. `what` names the API in errors.
pub async fn call(
    method: Method,
    url: &str,
    body: Option<Value>,
    what: &str,
) -> anyhow::Result<Value> {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {what} at {url}"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!(
            "{} ({status})",
            answer["error"].as_str().unwrap_or("request refused")
        );
    }
    Ok(answer)
}
