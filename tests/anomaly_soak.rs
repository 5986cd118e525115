//! Anomaly detection's false alarms: `vigil serve` with its default configuration and the
//! sample services' rules (whose `AnomalousBehaviour` rule pages on anomalies that persist for
//! a minute), fed by the sample services in another process (`vigil demo --otlp-endpoint`)
//! with their default OTel export settings, under steady fault-free load, raises at most one
//! anomaly alert. It runs for `VIGIL_SOAK_MINUTES` (default 35:
//! 5 minutes of warm-up, then 30 measured), so it is run on demand:
//! `cargo test --test anomaly_soak -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use common::chaos::{api, steady_load};
use common::{Services, Vigil};

fn minutes() -> u64 {
    std::env::var("VIGIL_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(35)
}

#[test]
#[ignore = "runs for 35 minutes; run on demand"]
fn steady_load_raises_at_most_one_anomaly_alert() {
    let minutes = minutes();
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::start(
        &dir.path().join("data"),
        &["--rules", "config/rules/sample-services.yaml"],
    );
    let services = Services::start(&vigil, &[], &[]);
    let gateway = services.gateway.clone();
    let load = steady_load(&gateway, 20, &format!("{minutes}m"));
    let t0 = Instant::now();
    let end = Duration::from_secs(minutes * 60);
    while t0.elapsed() < end {
        std::thread::sleep(Duration::from_secs(60).min(end.saturating_sub(t0.elapsed())));
        let d = &api(&vigil, "/api/v1/anomalies")["detector"];
        eprintln!(
            "{:>3} min: windows {} series {} warming {} anomalies {} alerts {}",
            t0.elapsed().as_secs() / 60,
            d["windows"],
            d["series"],
            d["warming_up"],
            d["anomalies"],
            vigil.count(
                "SELECT count(DISTINCT fingerprint) FROM alerts \
                 WHERE alertname = 'AnomalousBehaviour' AND state = 'firing'"
            ),
        );
    }
    load.join().unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::minutes(minutes as i64 + 5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ctx = api(
        &vigil,
        &format!("/api/v1/anomalies?start={since}&limit=1000"),
    );
    for a in ctx["anomalies"].as_array().unwrap() {
        eprintln!(
            "  anomaly {} {}/{} {:.3} {} ({})",
            a["time"],
            a["service_name"],
            a["operation"],
            a["score"],
            a["top_feature"],
            a["detectors"]
        );
    }
    let detector = &ctx["detector"];
    assert_eq!(detector["failures"], 0, "{detector}");
    assert!(
        detector["windows"].as_u64().unwrap() >= minutes * 6 - 3,
        "a window every 10 s: {detector}"
    );
    let fired = vigil.count(
        "SELECT count(DISTINCT fingerprint) FROM alerts \
         WHERE alertname = 'AnomalousBehaviour' AND state = 'firing'",
    );
    eprintln!(
        "{minutes} min of steady load: {} anomalies, {fired} anomaly alerts fired",
        detector["anomalies"]
    );
    assert!(fired <= 1, "{fired} anomaly alerts on fault-free load");
}
