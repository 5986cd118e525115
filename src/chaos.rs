//! `vigil chaos`: starts, lists and stops faults through the sample services' admin API.

use reqwest::Method;
use vigil_sample_services::chaos::{FaultKind, FaultSpec};

use crate::cli::{ChaosArgs, ChaosWhat};

/// The fault a start command asks for, and where; none for `list` and `stop`.
fn requested(what: ChaosWhat) -> Option<FaultSpec> {
    let (target, kind) = match what {
        ChaosWhat::List | ChaosWhat::Stop { .. } => return None,
        ChaosWhat::Latency { target, ms } => (target, FaultKind::Latency { ms }),
        ChaosWhat::Errors { target, rate } => (target, FaultKind::Errors { rate }),
        ChaosWhat::Stall { target } => (target, FaultKind::Stall {}),
        ChaosWhat::Duplicate { target, rate } => (target, FaultKind::Duplicate { rate }),
        ChaosWhat::Outage { target } => (target, FaultKind::Outage {}),
        ChaosWhat::CpuBurn { target, ms } => (target, FaultKind::CpuBurn { ms }),
        ChaosWhat::Exception { target, rate } => (target, FaultKind::Exception { rate }),
        ChaosWhat::WrongResult { target, rate } => (target, FaultKind::WrongResult { rate }),
        ChaosWhat::NetworkDelay { target, ms } => (target, FaultKind::NetworkDelay { ms }),
        ChaosWhat::CpuContention { target, share } => (target, FaultKind::CpuContention { share }),
    };
    Some(FaultSpec {
        service: target.service,
        operation: target.operation,
        partition: target.partition,
        kind,
        duration_secs: target.for_.map(|d| d.0.as_secs().max(1)),
    })
}

/// Sends the command and prints the answer as JSON.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let base = format!("{}/admin/faults", args.url.trim_end_matches('/'));
    let (method, url, body) = match args.what {
        ChaosWhat::List => (Method::GET, base, None),
        ChaosWhat::Stop { id: Some(id), .. } => (Method::DELETE, format!("{base}/{id}"), None),
        ChaosWhat::Stop { id: None, .. } => (Method::DELETE, base, None),
        start => (Method::POST, base, requested(start)),
    };
    let body = body.map(|b| serde_json::to_value(&b)).transpose()?;
    let answer = crate::api_client::call(method, &url, body, "the services' admin API").await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
