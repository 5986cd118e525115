//! Rule files: the shipped examples parse to what they say; every malformed fixture fails
//! with its expected `line:column: message`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::selector::Aggregation;
use super::threshold::{Comparison, Unit};
use super::*;
use vigil_store::query::SpanKind;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_rule_file_parses() {
    let files = yaml_files(&repo().join("config/rules"));
    assert!(!files.is_empty());
    for f in files {
        load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_sample_services_rules_mean_what_they_say() {
    let file = load(&repo().join("config/rules/sample-services.yaml")).unwrap();
    let names: Vec<&str> = file.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latency",
            "errors",
            "throughput-and-queues",
            "anomalies",
            "slos"
        ]
    );
    let latency = &file.groups[0];
    assert_eq!(latency.interval.0, Duration::from_secs(15));
    let slow = &latency.rules[0];
    assert_eq!(slow.alert, "PaymentSlow");
    assert_eq!(
        (slow.threshold.value, slow.threshold.unit),
        (0.2, Unit::Seconds)
    );
    assert_eq!(slow.op, Comparison::Above);
    assert_eq!(slow.for_.0, Duration::from_secs(30));
    assert_eq!(slow.keep_firing_for.0, Duration::from_secs(60));
    let RuleKind::Sli {
        measure,
        spans,
        group_by,
        window,
        ..
    } = &slow.kind
    else {
        panic!("an SLI rule");
    };
    assert_eq!(*measure, Measure::LatencyP95);
    assert_eq!(spans.service.as_deref(), Some("payment"));
    assert_eq!(spans.span_kind, Some(SpanKind::Consumer));
    assert_eq!(
        group_by,
        &["service", "operation"],
        "latency splits by operation by default"
    );
    assert_eq!(window.0, Duration::from_secs(60));

    let errors = &file.groups[1];
    assert_eq!(errors.rules[0].threshold.value, 0.05);
    assert_eq!(errors.rules[0].severity, "page");
    let RuleKind::Sli {
        metric: Some(m), ..
    } = &errors.rules[2].kind
    else {
        panic!("a metric rule");
    };
    assert_eq!(m.aggregation, Aggregation::Increase);
    assert_eq!(m.labels["outcome"], "dead_lettered");
    assert_eq!(errors.rules[3].threshold.unit, Unit::PerSecond);

    let queues = &file.groups[2];
    assert_eq!(queues.rules[0].op, Comparison::Below);
    assert!((queues.rules[0].threshold.value - 1.0 / 60.0).abs() < 1e-12);
    assert!(matches!(&queues.rules[3].kind, RuleKind::Sql { query } if query.contains("GROUP BY")));

    let odd = &file.groups[3].rules[0];
    assert_eq!(odd.op, Comparison::AtLeast);
    assert_eq!(odd.threshold.value, 0.9);
    assert_eq!(odd.for_.0, Duration::from_secs(60));
    let RuleKind::Anomaly {
        group_by, window, ..
    } = &odd.kind
    else {
        panic!("an anomaly rule");
    };
    assert_eq!(group_by, &["service", "operation"]);
    assert_eq!(window.0, Duration::from_secs(20));

    let slos = &file.groups[4].slos;
    assert!((slos[0].objective - 0.999).abs() < 1e-12);
    assert_eq!(slos[0].period.0, Duration::from_secs(30 * 86_400));
    assert_eq!(slos[0].alerts, slo::default_burn_alerts());
    assert_eq!(slos[0].total.service.as_deref(), Some("gateway"));
    assert_eq!(slos[1].alerts.len(), 2);
    assert_eq!(
        slos[1].good.max_duration.map(|d| d.0),
        Some(Duration::from_millis(300))
    );
}

#[test]
fn default_burn_alerts_are_the_multiwindow_set() {
    let set: Vec<(u64, u64, f64, String)> = slo::default_burn_alerts()
        .into_iter()
        .map(|a| {
            (
                a.long.0.as_secs(),
                a.short.0.as_secs(),
                a.burn_rate,
                a.severity,
            )
        })
        .collect();
    assert_eq!(
        set,
        [
            (3600, 300, 14.4, "page".to_string()),
            (21_600, 1800, 6.0, "page".to_string()),
            (86_400, 7200, 3.0, "ticket".to_string()),
            (259_200, 21_600, 1.0, "ticket".to_string()),
        ]
    );
}

/// Each fixture's first line is `# expect: LINE:COLUMN: message prefix`.
#[test]
fn malformed_files_fail_with_their_expected_error() {
    let files = yaml_files(&repo().join("detectors/tests/fixtures/rules"));
    assert!(files.len() >= 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no expectation", f.display()));
        let err = parse("f.yaml", &text).expect_err(&f.display().to_string());
        let got = err.to_string();
        assert!(
            got.starts_with(&format!("f.yaml:{expect}")),
            "{}:\n  expected f.yaml:{expect}\n  got      {got}",
            f.display()
        );
    }
}
