//! `vigil query`: SQL against a running Vigil, printed as a table.

use anyhow::{Context, bail};
use arrow::ipc::reader::StreamReader;
use arrow::util::pretty::pretty_format_batches;

use crate::cli::QueryArgs;

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Sends the query, asking for Arrow IPC, and prints the rows.
pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/sql", args.url.trim_end_matches('/'));
    let mut body = serde_json::Map::new();
    body.insert("sql".into(), args.sql.clone().into());
    if let Some(limit) = args.limit {
        body.insert("limit".into(), limit.into());
    }
    let response = reqwest::Client::new()
        .post(&url)
        .header(reqwest::header::ACCEPT, ARROW_STREAM)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach Vigil at {url}"))?;
    let status = response.status();
    let bytes = response.bytes().await.context("reading the response")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("query failed ({status}): {message}");
    }
    let reader = StreamReader::try_new(&bytes[..], None).context("decoding the Arrow stream")?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .context("decoding the Arrow stream")?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("{}", pretty_format_batches(&batches)?);
    println!("({rows} row{})", if rows == 1 { "" } else { "s" });
    Ok(())
}
