//! `vigil silence`: creates, lists and expires silences through Vigil's API.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use vigil_alerting::api::api_matchers;

use crate::cli::{SilenceArgs, SilenceWhat};

/// Sends the command and prints the answer.
pub async fn run(args: SilenceArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/');
    let api = "Vigil's API";
    let answer: Value = match args.what {
        SilenceWhat::Add {
            matchers,
            duration,
            author,
            comment,
        } => {
            let now = Utc::now();
            let ends = now + chrono::Duration::from_std(duration.0)?;
            let body = json!({
                "matchers": api_matchers(&matchers)?,
                "startsAt": now,
                "endsAt": ends,
                "createdBy": author,
                "comment": comment,
            });
            crate::api_client::call(
                Method::POST,
                &format!("{base}/api/v1/silences"),
                Some(body),
                api,
            )
            .await?
        }
        SilenceWhat::List => {
            crate::api_client::call(Method::GET, &format!("{base}/api/v1/silences"), None, api)
                .await?
        }
        SilenceWhat::Expire { id } => {
            crate::api_client::call(
                Method::DELETE,
                &format!("{base}/api/v1/silences/{id}"),
                None,
                api,
            )
            .await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
