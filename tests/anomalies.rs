//! Anomaly detection end to end: `vigil serve` with its default configuration (the
//! detector's timing aside), fed by the sample services in another process (`vigil demo
//! --otlp-endpoint`) under steady load, learns each service's features; a latency fault injected on payment produces an anomaly on payment within 60 s
//! whose top contributing feature is a latency, with exemplar traces and the expected and
//! observed values, served by `GET /api/v1/anomalies` and stored in the `anomalies` table;
//! a `kind: anomaly` rule turns it into a firing alert that carries the explanation; then a
//! latency fault on one partition of payment's consumer is an anomaly on that partition
//! alone, found by comparing it with its peers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::chaos::{FAST_EXPORT, api, chaos, fault_time, steady_load};
use common::{Services, Vigil, eventually, vigil_cli};
use serde_json::Value;

/// The detector's window (`window` in [`CONFIG`]).
const WINDOW: chrono::Duration = chrono::Duration::seconds(2);

const CONFIG: &str = r#"
[anomaly]
window = "2s"
delay = "1s"
warm_up = 15
"#;

/// Fires once payment's scores stay high for two evaluations.
const RULES: &str = r#"
groups:
  - name: learned
    interval: 1s
    rules:
      - alert: PaymentAnomalous
        kind: anomaly
        service: payment
        min_score: 0.8
        window: 4s
        for: 2s
"#;

fn anomalies(vigil: &Vigil, query: &str) -> Vec<Value> {
    api(vigil, &format!("/api/v1/anomalies?{query}"))["anomalies"]
        .as_array()
        .unwrap()
        .clone()
}

fn payment_warmed(vigil: &Vigil) -> bool {
    let d = &api(vigil, "/api/v1/anomalies")["detector"];
    d["series"].as_u64().unwrap_or(0) > 0
        && !d["warming"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["service"] == "payment")
        && d["windows"].as_u64().unwrap_or(0) > 15
}

#[test]
fn a_latency_fault_is_an_anomaly_explained_by_latency() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    // `vigil serve` as deployed: the default configuration but for the detector's timing.
    let vigil = Vigil::start(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
        ],
    );
    let services = Services::start(&vigil, &["--metric-interval", "1s"], &FAST_EXPORT);
    let gateway = services.gateway.clone();
    let load = steady_load(&gateway, 20, "150s");

    // Warm-up is reported, then every payment series has learnt its baseline.
    let detector = &api(&vigil, "/api/v1/anomalies")["detector"];
    assert_eq!(detector["enabled"], true, "{detector}");
    assert_eq!(detector["warm_up_windows"], 15, "{detector}");
    assert!(
        eventually(Duration::from_secs(60), || payment_warmed(&vigil)),
        "payment warmed up: {}",
        api(&vigil, "/api/v1/anomalies")["detector"]
    );
    std::thread::sleep(Duration::from_secs(10));
    let before = anomalies(&vigil, "limit=1000");
    eprintln!(
        "anomalies before the fault (all services): {}",
        before.len()
    );
    for a in &before {
        eprintln!(
            "  {}/{} {:.2} {}",
            a["service_name"], a["operation"], a["score"], a["top_feature"]
        );
    }

    let id = chaos(
        &gateway,
        &[
            "latency",
            "--service",
            "payment",
            "--ms",
            "150",
            // Longer than the checks below take on a busy machine: the test stops it.
            "--for",
            "180s",
        ],
    );
    let started = fault_time(&vigil, id, "start");
    let t0 = Instant::now();
    let since = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The first window wholly inside the fault: one that only overlaps its first moments
    // may be flagged, but cannot show the whole 150 ms.
    let inside = started + WINDOW;
    let mut found: Option<Value> = None;
    while t0.elapsed() < Duration::from_secs(70) && found.is_none() {
        found = anomalies(&vigil, &format!("service=payment&start={since}&limit=1000"))
            .into_iter()
            .filter(|a| a["top_feature"].as_str().unwrap().starts_with("latency_"))
            .filter(|a| {
                a["time"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap()
                    >= inside
            })
            .min_by_key(|a| a["time"].as_str().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(500));
    }
    let a = found.unwrap_or_else(|| {
        panic!(
            "no latency anomaly on payment; found: {:?}",
            anomalies(&vigil, &format!("start={since}&limit=1000"))
        )
    });
    let at: DateTime<Utc> = a["time"].as_str().unwrap().parse().unwrap();
    let after = (at - started).num_milliseconds() as f64 / 1e3;
    eprintln!("fault at {started}; anomaly window ending {at} (+{after:.1} s): {a}");
    assert!(after <= 60.0, "anomaly {after:.1} s after the fault");
    let score = a["score"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&score), "{a}");
    let top = a["top_feature"].as_str().unwrap();
    assert!(
        a["observed"][top].as_f64().unwrap() > a["expected"][top].as_f64().unwrap() + 0.1,
        "the injected 150 ms shows in {top}: {a}"
    );
    let share = a["contributions"][top].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{a}");
    assert!(!a["trace_ids"].as_array().unwrap().is_empty(), "{a}");
    assert!(!a["detectors"].as_str().unwrap().is_empty(), "{a}");
    // The same rows are in the table, for SQL.
    let rows = vigil.count(&format!(
        "SELECT count(*) FROM anomalies WHERE service_name = 'payment' AND time >= '{since}'"
    ));
    assert!(rows >= 1);
    // Filters apply.
    assert!(anomalies(&vigil, &format!("service=no-such-service&start={since}")).is_empty());
    // Just below the score: the JSON answer may round the stored value's last bit.
    let floor = score - 1e-9;
    let at_least = anomalies(
        &vigil,
        &format!("service=payment&min_score={floor}&start={since}"),
    );
    assert!(
        at_least
            .iter()
            .any(|x| x["time"] == a["time"] && x["operation"] == a["operation"]),
        "min_score={floor} keeps the anomaly itself: {at_least:?}"
    );
    assert!(
        at_least
            .iter()
            .all(|a| a["score"].as_f64().unwrap() >= floor)
    );
    // The rule pages with the detector's explanation.
    let firing = |v: &Vigil| {
        api(v, "/api/v1/alerts?alertname=PaymentAnomalous&state=firing")["alerts"]
            .as_array()
            .unwrap()
            .first()
            .cloned()
    };
    assert!(
        eventually(Duration::from_secs(20), || firing(&vigil).is_some()),
        "PaymentAnomalous fired: {}",
        api(&vigil, "/api/v1/alerts")
    );
    let alert = firing(&vigil).unwrap();
    eprintln!("anomaly alert: {alert}");
    let fired: DateTime<Utc> = alert["firedAt"].as_str().unwrap().parse().unwrap();
    assert!((fired - started).num_seconds() <= 60, "{alert}");
    assert_eq!(alert["labels"]["service"], "payment", "{alert}");
    let notes = &alert["annotations"];
    assert!(
        notes["summary"]
            .as_str()
            .unwrap()
            .contains("is anomalous (score"),
        "{alert}"
    );
    assert!(
        !notes["top_feature"].as_str().unwrap().is_empty(),
        "{alert}"
    );
    assert!(!notes["trace_ids"].as_str().unwrap().is_empty(), "{alert}");
    // What changed: the alert's root-cause analysis and the same over the fault's window
    // both blame payment, with its slower self time and traces to look at.
    let blamed = |report: &Value| {
        let first = &report["suspects"][0];
        assert_eq!(first["service"], "payment", "{report}");
        assert!(
            first["after"]["self_p95"].as_f64().unwrap()
                > first["before"]["self_p95"].as_f64().unwrap() + 0.1,
            "{report}"
        );
        assert!(
            !first["trace_urls"].as_array().unwrap().is_empty(),
            "{report}"
        );
    };
    let fingerprint = alert["fingerprint"].as_str().unwrap();
    let (status, report) = common::web::get_json(&format!(
        "http://{}/api/v1/alerts/{fingerprint}/rca",
        vigil.api
    ));
    assert_eq!(status, 200, "{report}");
    eprintln!("alert rca: {}", report["suspects"]);
    blamed(&report);
    let (status, report) = common::web::get_json(&format!(
        "http://{}/api/v1/rca?start={since}&baseline_end={since}",
        vigil.api
    ));
    assert_eq!(status, 200, "{report}");
    blamed(&report);
    // Every partition was slow; once they are all back to normal, one of them slows down.
    vigil_cli(&["chaos", "--url", &gateway, "stop", &id.to_string()]);
    std::thread::sleep(Duration::from_secs(4));
    a_slow_partition_differs_from_its_peers(&vigil, &gateway);
    load.join().unwrap();
}

/// Latency on one partition of payment's consumer: that partition's series, and no other,
/// is an anomaly from the `peers` detector, explained by a latency against its peers'.
fn a_slow_partition_differs_from_its_peers(vigil: &Vigil, gateway: &str) {
    let id = chaos(
        gateway,
        &[
            "latency",
            "--service",
            "payment",
            "--operation",
            "process inventory",
            "--partition",
            "3",
            "--ms",
            "150",
            "--for",
            "20s",
        ],
    );
    let started = fault_time(vigil, id, "start");
    let since = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let peer_anomalies = || {
        anomalies(vigil, &format!("service=payment&start={since}&limit=1000"))
            .into_iter()
            .filter(|a| a["detectors"].as_str().unwrap().contains("peers"))
            .collect::<Vec<Value>>()
    };
    let member = "process inventory{messaging.destination.partition.id=3}";
    assert!(
        eventually(Duration::from_secs(60), || peer_anomalies()
            .iter()
            .any(|a| a["operation"] == member)),
        "no peer anomaly on partition 3; found: {:?}",
        anomalies(vigil, &format!("start={since}&limit=1000"))
    );
    let found = peer_anomalies();
    let a = found
        .iter()
        .filter(|a| a["operation"] == member)
        .min_by_key(|a| a["time"].as_str().unwrap().to_string())
        .unwrap();
    let at: DateTime<Utc> = a["time"].as_str().unwrap().parse().unwrap();
    let after = (at - started).num_milliseconds() as f64 / 1e3;
    eprintln!("partition fault at {started}; peer anomaly window ending {at} (+{after:.1} s): {a}");
    assert!(after <= 60.0, "peer anomaly {after:.1} s after the fault");
    assert_eq!(a["top_feature"], "latency_p50", "{a}");
    assert!(
        a["observed"]["latency_p50"].as_f64().unwrap()
            > a["expected"]["latency_p50"].as_f64().unwrap() + 0.1,
        "the injected 150 ms shows against the peers' median latency: {a}"
    );
    let others: Vec<&Value> = found.iter().filter(|a| a["operation"] != member).collect();
    assert!(others.is_empty(), "only partition 3 is blamed: {others:?}");
}

/// `vigil bench anomalies` at a small scale: it fills every series' history, then reports
/// scoring and training per window (the figures themselves are for the benchmark's own runs).
#[test]
fn the_anomaly_bench_runs_and_reports() {
    let out = vigil_cli(&[
        "bench",
        "anomalies",
        "--series",
        "50",
        "--history",
        "40",
        "--windows",
        "5",
    ]);
    for line in [
        "anomaly scoring: 50 series x 7 features, history 40 windows",
        "scoring per window (one thread): median",
        "training per window",
        "anomalies reported on steady synthetic load: 0",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
}
