//! `vigil rules check`: the shipped rule files pass; each malformed fixture fails with its
//! file, line and column, and the exit status says so. `vigil bench rules` runs at small scale.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{vigil_cli, vigil_cli_fails};

#[test]
fn the_example_rules_pass() {
    let out = vigil_cli(&["rules", "check", "config/rules/sample-services.yaml"]);
    assert_eq!(
        out.trim(),
        "config/rules/sample-services.yaml: ok (5 groups, 11 rules, 2 SLOs)"
    );
    let out = vigil_cli(&["rules", "check", "config/rules/shop-graph.yaml"]);
    assert_eq!(
        out.trim(),
        "config/rules/shop-graph.yaml: ok (3 groups, 4 rules, 1 SLOs)"
    );
}

#[test]
fn malformed_rules_fail_with_their_location() {
    let dir = "detectors/tests/fixtures/rules";
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let path = path.to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .unwrap();
        let stderr =
            vigil_cli_fails(&["rules", "check", "config/rules/sample-services.yaml", path]);
        assert!(
            stderr.contains(&format!("{path}:{expect}")),
            "{path}: {stderr}"
        );
        assert!(stderr.contains("1 of 2 rule files have errors"), "{stderr}");
    }
}

/// `vigil bench rules` at a small scale: it fills a store, evaluates every generated rule and
/// prints its figures (the timings themselves are for release builds, not for this test).
#[test]
fn the_rules_bench_runs_and_reports() {
    let out = vigil_cli(&[
        "bench", "rules", "--spans", "20000", "--hours", "1", "--rules", "40", "--rounds", "1",
    ]);
    for line in [
        "store: 20000 spans",
        "baseline: one full scan",
        "first interval (40 rules + 6 SLOs",
        "steady interval, median of 1",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
}
