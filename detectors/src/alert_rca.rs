//! The cause on the page: when an alert starts firing, its root-cause analysis is computed
//! once and travels with it to every receiver, as annotations (`store::alert::RCA_*`): the
//! top three suspects with a one-line reason each, the address of the full report and of the
//! first suspect's exemplar trace. The analysis is bounded in time: an alert whose analysis
//! is late is handed on without it (and analysed again when next sent).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use vigil_store::alert::{Alert, AlertState, Labels, RCA_REPORT_URL, RCA_SUSPECTS, RCA_TRACE_URL};
use vigil_store::{ReadLimits, Reader, Store};

use crate::eval::{AlertSink, EvalError};
use crate::rca::{RcaWindows, Report, analyse};

/// Suspects named on a page.
const SUSPECTS: usize = 3;
/// Alerts whose analysis is remembered; beyond, the memory starts again.
const REMEMBERED: usize = 10_000;

/// How alerts are annotated.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Longest a batch of alerts waits for its analyses before it is handed on without them.
    pub budget: Duration,
    /// Vigil's address as receivers should link to it (`http://host:8080`).
    pub external_url: String,
}

/// A sink that annotates each firing alert with its root cause (computed once per alert,
/// within `options.budget`) and hands every batch on to `next`, in order. Spawns its worker
/// on the current runtime.
pub fn attaching(store: Store, next: AlertSink, options: AttachOptions) -> AlertSink {
    let (batches, mut incoming) = mpsc::unbounded_channel::<Vec<_>>();
    tokio::spawn(async move {
        let mut known: BTreeMap<u64, Labels> = BTreeMap::new();
        while let Some(mut alerts) = incoming.recv().await {
            let deadline = tokio::time::Instant::now() + options.budget;
            for (alert, _) in &mut alerts {
                annotate(&store, &options, &mut known, alert, deadline).await;
            }
            next(alerts);
        }
    });
    std::sync::Arc::new(move |alerts| {
        // Closed only once the worker ended, with the runtime.
        let _ = batches.send(alerts);
    })
}

/// Adds `alert`'s root-cause annotations: remembered, or analysed before `deadline`.
async fn annotate(
    store: &Store,
    options: &AttachOptions,
    known: &mut BTreeMap<u64, Labels>,
    alert: &mut Alert,
    deadline: tokio::time::Instant,
) {
    let key = alert.fingerprint.0;
    if alert.state != AlertState::Firing {
        known.remove(&key);
        return;
    }
    if !known.contains_key(&key) {
        let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(budget, analysed(store, alert, budget)).await {
            Ok(Ok(report)) => {
                if known.len() >= REMEMBERED {
                    known.clear();
                }
                known.insert(key, annotations(&report, alert, &options.external_url));
            }
            Ok(Err(e)) => {
                tracing::warn!(alert = %alert.name(), error = %e, "root-cause analysis failed; paging without it");
            }
            Err(_) => {
                tracing::warn!(alert = %alert.name(), budget = ?options.budget, "root-cause analysis late; paging without it");
            }
        }
    }
    if let Some(notes) = known.get(&key) {
        alert
            .annotations
            .extend(notes.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

async fn analysed(store: &Store, alert: &Alert, budget: Duration) -> Result<Report, EvalError> {
    let session = store.session(Reader::Internal, ReadLimits::within(budget))?;
    let service = alert.labels.get("service").map(String::as_str);
    analyse(&session, RcaWindows::around(alert, Utc::now()), service).await
}

/// The annotations that carry `report` on `alert`'s pages.
pub fn annotations(report: &Report, alert: &Alert, external_url: &str) -> Labels {
    let base = external_url.trim_end_matches('/');
    let mut suspects = String::new();
    for (i, s) in report.suspects.iter().take(SUSPECTS).enumerate() {
        let operation = if s.operation.is_empty() {
            String::new()
        } else {
            format!(" `{}`", s.operation)
        };
        let cause = s.cause.as_str();
        let _ = write!(
            suspects,
            "{}{}. {}{operation} — {cause} (score {:.1}): {}",
            if i == 0 { "" } else { "\n" },
            i + 1,
            s.service,
            s.score,
            s.reasons.first().map_or("", String::as_str)
        );
    }
    if suspects.is_empty() {
        suspects.push_str("no suspect: nothing changed against the quarter of an hour before");
    }
    let mut out = Labels::from([
        (RCA_SUSPECTS.to_string(), suspects),
        (
            RCA_REPORT_URL.to_string(),
            format!("{base}/api/v1/alerts/{}/rca", alert.fingerprint),
        ),
    ]);
    if let Some(trace) = report.suspects.first().and_then(|s| s.trace_ids.first()) {
        out.insert(
            RCA_TRACE_URL.to_string(),
            format!("{base}/api/v1/traces/{trace}"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::{Cause, Suspect};
    use vigil_store::alert::{Fingerprint, labels};

    fn alert() -> Alert {
        let l = labels(&[("alertname", "PaymentSlow"), ("service", "payment")]);
        Alert {
            fingerprint: Fingerprint::of(&l),
            labels: l,
            annotations: Labels::new(),
            state: AlertState::Firing,
            active_at: Utc::now(),
            fired_at: Some(Utc::now()),
            resolved_at: None,
            value: None,
            generator: String::new(),
        }
    }

    #[test]
    fn the_top_three_suspects_with_a_reason_each_and_links() {
        let suspect = |service: &str, cause, score, reason: &str| Suspect {
            operation: if service == "payment" {
                "charge".into()
            } else {
                String::new()
            },
            cause,
            score,
            reasons: vec![reason.into(), "more".into()],
            trace_ids: vec![format!("{service}-trace")],
            ..Suspect::new(service)
        };
        let report = Report {
            suspects: vec![
                suspect(
                    "payment",
                    Cause::Latency,
                    4.25,
                    "self time p50 2.0 ms → 152.0 ms",
                ),
                suspect("shipping", Cause::Network, 1.5, "wait on the way in"),
                suspect("order", Cause::Logic, 1.0, "payment rejects its output"),
                suspect("gateway", Cause::Errors, 0.5, "never shown"),
            ],
            ..Report::default()
        };
        let a = alert();
        let notes = annotations(&report, &a, "https://vigil.example.com/");
        assert_eq!(
            notes[RCA_SUSPECTS],
            "1. payment `charge` — latency (score 4.2): self time p50 2.0 ms → 152.0 ms\n\
             2. shipping — network (score 1.5): wait on the way in\n\
             3. order — logic (score 1.0): payment rejects its output"
        );
        assert_eq!(
            notes[RCA_REPORT_URL],
            format!(
                "https://vigil.example.com/api/v1/alerts/{}/rca",
                a.fingerprint
            )
        );
        assert_eq!(
            notes[RCA_TRACE_URL],
            "https://vigil.example.com/api/v1/traces/payment-trace"
        );
        let quiet = annotations(&Report::default(), &a, "http://127.0.0.1:8080");
        assert!(quiet[RCA_SUSPECTS].starts_with("no suspect"), "{quiet:?}");
        assert!(!quiet.contains_key(RCA_TRACE_URL));
    }

    #[tokio::test]
    async fn firing_alerts_are_annotated_once_and_handed_on_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(vigil_store::StoreConfig {
            data_dir: dir.path().to_path_buf(),
            ..vigil_store::StoreConfig::default()
        })
        .unwrap();
        let (out, mut received) = mpsc::unbounded_channel();
        let next: AlertSink = std::sync::Arc::new(move |alerts| {
            let _ = out.send(alerts);
        });
        let sink = attaching(
            store,
            next,
            AttachOptions {
                budget: Duration::from_secs(5),
                external_url: "http://vigil:8080".into(),
            },
        );
        let mut resolved = alert();
        resolved.state = AlertState::Resolved;
        sink(vec![(alert(), Utc::now())]);
        sink(vec![(resolved, Utc::now())]);
        let first = received.recv().await.unwrap();
        let notes = &first[0].0.annotations;
        assert!(notes[RCA_SUSPECTS].starts_with("no suspect"), "{notes:?}");
        assert!(notes[RCA_REPORT_URL].starts_with("http://vigil:8080/api/v1/alerts/"));
        let second = received.recv().await.unwrap();
        assert!(
            second[0].0.annotations.is_empty(),
            "a resolved alert carries no cause"
        );
    }
}
