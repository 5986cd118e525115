//! `vigil demo` end to end: the real binary runs Vigil and the sample services; `vigil load`
//! drives orders through the gateway and `vigil chaos` injects faults through the admin API.
//! Checked in SQL: every service reports; a transaction's correlation id reaches all six
//! services' spans and logs; consumer links resolve; declined payments are compensated; a
//! payment latency fault raises payment's p95 only; duplicate deliveries are ignored; a
//! stalled consumer's lag grows and then drains. All of it on the in-process broker and on a
//! real NATS JetStream server. And the generated call graph (`--workload graph`): every
//! service of its topology reports, one trace crosses the checkout's services, and an error
//! injected deep in the graph fails the front door's requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use vigil_sample_services::saga::SERVICES;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use common::nats::NatsServer;
use common::{Vigil, eventually, vigil_cli, vigil_cli_fails};
use serde_json::Value;

/// Export the services' spans and logs every 200 ms and metrics every second, so the test
/// need not wait for the SDK's 5 s defaults.
const EXPORT_ENV: [(&str, &str); 2] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
];

fn strings(v: &Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect()
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

struct Demo {
    vigil: Vigil,
    gateway: String,
}

impl Demo {
    fn load(&self, rate: u32, secs: u32) -> String {
        vigil_cli(&[
            "load",
            "--target",
            &self.gateway,
            "--rate",
            &rate.to_string(),
            "--duration",
            &format!("{secs}s"),
        ])
    }

    fn chaos(&self, args: &[&str]) -> Value {
        let mut all = vec!["chaos", "--url", &self.gateway];
        all.extend(args);
        serde_json::from_str(&vigil_cli(&all)).unwrap()
    }

    /// The time (RFC 3339) at which fault `id` logged `action` (start or stop).
    fn fault_time(&self, id: u64, action: &str) -> String {
        let sql = format!(
            "SELECT CAST(time AS VARCHAR) FROM logs WHERE attributes['chaos.fault_id'] = '{id}' \
             AND attributes['chaos.action'] = '{action}'"
        );
        assert!(
            eventually(Duration::from_secs(20), || {
                !strings(&self.vigil.sql(&sql)).is_empty()
            }),
            "fault {id} {action} was recorded"
        );
        strings(&self.vigil.sql(&sql)).remove(0)
    }

    /// p95 duration in ms of `service`'s spans of `kind` starting in [from, to).
    fn p95_ms(&self, service: &str, kind: &str, from: &str, to: &str) -> f64 {
        number(&self.vigil.scalar(&format!(
            "SELECT approx_percentile_cont(duration_ns, 0.95) / 1e6 FROM spans \
             WHERE service_name = '{service}' AND span_kind = '{kind}' \
             AND time >= '{from}' AND time < '{to}'"
        )))
    }
}

fn correlation_and_compensation(d: &Demo) {
    let v = &d.vigil;
    for svc in SERVICES {
        assert!(
            v.count(&format!(
                "SELECT count(*) FROM spans WHERE service_name = '{svc}'"
            )) > 0,
            "no spans from {svc}"
        );
    }
    let completed = strings(&v.sql(
        "SELECT correlation_id FROM spans WHERE span_kind = 'PRODUCER' \
         AND attributes['event.type'] = 'OrderCompleted' ORDER BY correlation_id LIMIT 5",
    ));
    assert_eq!(completed.len(), 5, "completed orders");
    let all: BTreeSet<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    for cid in &completed {
        for table in ["spans", "logs"] {
            let services: BTreeSet<String> = strings(&v.sql(&format!(
                "SELECT DISTINCT service_name FROM {table} WHERE correlation_id = '{cid}'"
            )))
            .into_iter()
            .collect();
            assert_eq!(services, all, "{table} of order {cid}");
        }
        let consumers = v.sql(&format!(
            "SELECT links FROM spans WHERE correlation_id = '{cid}' AND span_kind = 'CONSUMER'"
        ));
        let producers: BTreeSet<String> = strings(&v.sql(&format!(
            "SELECT span_id FROM spans WHERE correlation_id = '{cid}' AND span_kind = 'PRODUCER'"
        )))
        .into_iter()
        .collect();
        for row in consumers["rows"].as_array().unwrap() {
            let links: Value = serde_json::from_str(row[0].as_str().unwrap()).unwrap();
            let linked = links[0]["span_id"].as_str().unwrap();
            assert!(
                producers.contains(linked),
                "consumer link {linked} resolves"
            );
        }
    }
    let declined = strings(&v.sql(
        "SELECT correlation_id FROM spans WHERE span_kind = 'PRODUCER' \
         AND attributes['event.type'] = 'PaymentFailed' LIMIT 1",
    ));
    assert_eq!(declined.len(), 1, "the mix has declined payments");
    let events: BTreeSet<String> = strings(&v.sql(&format!(
        "SELECT DISTINCT attributes['event.type'] FROM spans \
         WHERE correlation_id = '{}' AND span_kind = 'PRODUCER'",
        declined[0]
    )))
    .into_iter()
    .collect();
    for e in ["InventoryReleased", "OrderCancelled"] {
        assert!(events.contains(e), "compensation {e} in {events:?}");
    }
}

fn payment_latency_shows_on_payment_only(d: &Demo, baseline_from: &str) {
    let fault = d.chaos(&["latency", "--service", "payment", "--ms", "150"]);
    let id = fault["id"].as_u64().unwrap();
    d.load(40, 4);
    d.chaos(&["stop", &id.to_string()]);
    let (start, stop) = (d.fault_time(id, "start"), d.fault_time(id, "stop"));
    let base = |svc: &str, kind: &str| d.p95_ms(svc, kind, baseline_from, &start);
    let during = |svc: &str, kind: &str| d.p95_ms(svc, kind, &start, &stop);
    let (pay_before, pay_during) = (base("payment", "CONSUMER"), during("payment", "CONSUMER"));
    eprintln!("payment CONSUMER p95: {pay_before:.1} ms before, {pay_during:.1} ms during +150 ms");
    assert!(
        pay_during >= pay_before + 120.0,
        "payment p95 {pay_before:.1} ms -> {pay_during:.1} ms"
    );
    for (svc, kind) in [
        ("gateway", "SERVER"),
        ("order", "SERVER"),
        ("inventory", "CONSUMER"),
        ("inventory", "PRODUCER"),
    ] {
        let (before, during) = (base(svc, kind), during(svc, kind));
        eprintln!("{svc} {kind} p95: {before:.1} ms before, {during:.1} ms during");
        assert!(
            during < before + 50.0,
            "{svc} {kind} p95 {before:.1} ms -> {during:.1} ms: upstream of payment must not slow down"
        );
    }
}

fn duplicates_are_not_processed_twice(d: &Demo) {
    let fault = d.chaos(&["duplicate", "--service", "inventory", "--rate", "1"]);
    let id = fault["id"].as_u64().unwrap();
    d.load(30, 3);
    d.chaos(&["stop", &id.to_string()]);
    let v = &d.vigil;
    assert!(
        eventually(Duration::from_secs(20), || v.count(
            "SELECT count(*) FROM logs WHERE service_name = 'payment' \
             AND body LIKE 'duplicate %ignored'"
        ) > 10),
        "payment saw and ignored duplicate deliveries"
    );
    for event in ["PaymentProcessed", "PaymentFailed", "OrderCompleted"] {
        let twice = v.count(&format!(
            "SELECT count(*) FROM (SELECT correlation_id FROM spans \
             WHERE span_kind = 'PRODUCER' AND attributes['event.type'] = '{event}' \
             GROUP BY correlation_id HAVING count(*) > 1)"
        ));
        assert_eq!(twice, 0, "orders with {event} emitted more than once");
    }
    assert!(
        eventually(Duration::from_secs(20), || number(&v.scalar(
            "SELECT max(value) FROM metrics WHERE service_name = 'payment' \
             AND metric_name = 'messaging.client.consumed.messages' \
             AND attributes['outcome'] = 'duplicate'"
        )) > 10.0),
        "the duplicate outcome is counted in payment's metrics"
    );
}

fn stalled_consumer_lags_then_drains(d: &Demo) {
    let fault = d.chaos(&["stall", "--service", "shipping"]);
    let id = fault["id"].as_u64().unwrap();
    d.load(30, 4);
    let v = &d.vigil;
    let lag = |extra: &str| {
        number(&v.scalar(&format!(
            "SELECT max(value) FROM metrics WHERE service_name = 'shipping' \
             AND metric_name = 'messaging.consumer.lag' {extra}"
        )))
    };
    let start = d.fault_time(id, "start");
    assert!(
        eventually(Duration::from_secs(20), || lag(&format!(
            "AND time >= '{start}'"
        )) > 50.0),
        "shipping lag grows while stalled: {}",
        lag(&format!("AND time >= '{start}'"))
    );
    d.chaos(&["stop", &id.to_string()]);
    let stop = d.fault_time(id, "stop");
    let latest = || {
        number(&v.scalar(&format!(
            "SELECT value FROM metrics WHERE service_name = 'shipping' \
             AND metric_name = 'messaging.consumer.lag' AND time > '{stop}' \
             ORDER BY time DESC LIMIT 1"
        )))
    };
    assert!(
        eventually(Duration::from_secs(30), || v.count(&format!(
            "SELECT count(*) FROM metrics WHERE service_name = 'shipping' \
             AND metric_name = 'messaging.consumer.lag' AND time > '{stop}'"
        )) > 2
            && latest() == 0.0),
        "shipping lag drains after the stall: {}",
        latest()
    );
    let depth = number(&v.scalar(&format!(
        "SELECT max(value) FROM metrics WHERE service_name = 'shipping' \
         AND metric_name = 'messaging.queue.depth' AND time >= '{start}' AND time < '{stop}'"
    )));
    eprintln!(
        "shipping while stalled: peak lag {}, peak queue depth {depth}; lag after: {}",
        lag(&format!("AND time >= '{start}' AND time < '{stop}'")),
        latest()
    );
    assert!(depth > 50.0, "queue depth grew while stalled: {depth}");
}

/// Runs the whole scenario on one `vigil demo` started with `extra` flags.
fn scenario(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = vec!["--metric-interval", "1s"];
    flags.extend(extra);
    let vigil = Vigil::demo(dir.path(), &flags, &EXPORT_ENV);
    let gateway = vigil.gateway.clone().expect("demo prints the gateway");
    let d = Demo { vigil, gateway };
    let baseline_from = strings(&d.vigil.sql("SELECT CAST(now() AS VARCHAR)")).remove(0);
    let summary = d.load(40, 5);
    assert!(summary.contains("achieved"), "{summary}");
    assert!(
        eventually(Duration::from_secs(20), || d.vigil.count(
            "SELECT count(*) FROM spans WHERE span_kind = 'PRODUCER' \
             AND attributes['event.type'] IN ('OrderCompleted', 'OrderCancelled')"
        ) >= 150),
        "orders of the baseline load finish"
    );
    correlation_and_compensation(&d);
    payment_latency_shows_on_payment_only(&d, &baseline_from);
    duplicates_are_not_processed_twice(&d);
    stalled_consumer_lags_then_drains(&d);
    let faults = d.chaos(&["list"]);
    assert_eq!(faults["faults"], serde_json::json!([]));
    for (bad, why) in [
        (
            vec!["stall", "--service", "billing"],
            "unknown service \"billing\"",
        ),
        (
            vec!["errors", "--service", "payment", "--rate", "2"],
            "rate must be in (0, 1]",
        ),
        (vec!["stop", "999"], "no running fault 999"),
    ] {
        let mut args = vec!["chaos", "--url", &d.gateway];
        args.extend(bad);
        let stderr = vigil_cli_fails(&args);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    d.vigil.stop();
}

/// The scenarios measure latency, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn demo_on_the_in_process_broker() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    scenario(&[]);
}

#[test]
fn demo_on_nats_jetstream() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(dir.path());
    scenario(&["--broker", "nats", "--nats-url", &nats.url]);
}

#[test]
fn demo_runs_a_generated_call_graph() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--workload",
        "graph",
        "--rate",
        "20",
        "--metric-interval",
        "1s",
    ];
    let vigil = Vigil::demo(dir.path(), &flags, &EXPORT_ENV);
    let gateway = vigil.gateway.clone().expect("demo prints the gateway");
    let services = "SELECT count(DISTINCT service_name) FROM spans WHERE span_kind = 'SERVER'";
    assert!(
        eventually(Duration::from_secs(30), || vigil.count(services) == 13),
        "every service of the shop reports: {}",
        vigil.count(services)
    );
    let widest = "SELECT max(n) FROM (SELECT count(DISTINCT service_name) AS n FROM spans \
                  GROUP BY trace_id)";
    assert!(
        eventually(Duration::from_secs(20), || vigil.count(widest) >= 8),
        "a checkout crosses the graph"
    );
    // Every call is a CLIENT span in the caller with the callee's SERVER span under it (a
    // parent still in its service's export queue is not counted).
    let parents = |kind: &str| {
        vigil.count(&format!(
            "SELECT count(*) FROM spans s JOIN spans p \
             ON s.trace_id = p.trace_id AND s.parent_span_id = p.span_id \
             WHERE s.span_kind = 'SERVER' AND p.span_kind {kind} 'CLIENT'"
        ))
    };
    assert!(eventually(Duration::from_secs(20), || parents("=") > 100));
    assert_eq!(parents("<>"), 0);

    let fault: Value = serde_json::from_str(&vigil_cli(&[
        "chaos",
        "--url",
        &gateway,
        "errors",
        "--service",
        "currency",
        "--rate",
        "1",
        "--for",
        "5s",
    ]))
    .unwrap();
    assert!(fault["id"].as_u64().is_some(), "{fault}");
    let failed = |service: &str| {
        vigil.count(&format!(
            "SELECT count(*) FROM spans WHERE service_name = '{service}' \
             AND span_kind = 'SERVER' AND status_code = 'ERROR'"
        ))
    };
    assert!(
        eventually(Duration::from_secs(20), || failed("frontend") > 0
            && failed("currency") > 0),
        "currency's errors reach the front door"
    );
    // The failing service logs its error, and so does each caller that passes it on.
    let logged = |service: &str| {
        vigil.count(&format!(
            "SELECT count(*) FROM logs WHERE service_name = '{service}' \
             AND severity_text = 'ERROR' AND body LIKE '%failed: injected error'"
        ))
    };
    assert!(eventually(Duration::from_secs(10), || logged("currency")
        > 0
        && logged("frontend") > 0));
    vigil.stop();
}
