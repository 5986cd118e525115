//! `vigil bench rules`: the cost of one evaluation interval. Fills a store with synthetic
//! spans spread over the last hours, loads generated rule groups (SLI rules of every span
//! measure, SQL rules, SLOs), evaluates every group as the engine does, and prints the
//! interval's time next to a full scan of the same spans as the baseline.

use std::time::{Duration, Instant};

use anyhow::Context;
use vigil_detectors::eval::group::GroupState;
use vigil_detectors::rules;
use vigil_sample_services::saga::SERVICES;
use vigil_store::{ReadLimits, Reader, Store, StoreConfig};

use super::fill::fill;
use super::tempfile_dir;
use crate::cli::RulesBenchArgs;

const MEASURES: [(&str, &str); 6] = [
    ("latency_p95", "40ms"),
    ("latency_p99", "49ms"),
    ("latency_p50", "30ms"),
    ("error_rate", "5%"),
    ("availability", "90%"),
    ("throughput", "1000/s"),
];
const KINDS: [&str; 3] = ["SERVER", "CONSUMER", "CLIENT"];

/// Rule text: `rules` rules in groups of 20 (every 10th an SQL rule) plus one SLO per service.
fn rule_file(rules: usize) -> String {
    let mut out = String::from("groups:\n");
    for g in 0..rules.div_ceil(20) {
        out.push_str(&format!("  - name: g{g}\n    interval: 30s\n    rules:\n"));
        for r in (g * 20)..((g + 1) * 20).min(rules) {
            let service = SERVICES[r % SERVICES.len()];
            if r % 10 == 9 {
                out.push_str(&format!(
                    "      - alert: Sql{r}\n        sql: SELECT service_name AS service, count(*) / 300.0 AS value FROM spans WHERE time > now() - INTERVAL '5 minutes' AND service_name = '{service}' AND status_code = 'ERROR' GROUP BY 1\n        threshold: 100\n"
                ));
                continue;
            }
            let (measure, threshold) = MEASURES[r % MEASURES.len()];
            let window = if r % 2 == 0 { "5m" } else { "1m" };
            let op = if measure == "availability" {
                "\"<\""
            } else {
                "\">\""
            };
            out.push_str(&format!(
                "      - alert: R{r}\n        service: {service}\n        span_kind: {}\n        measure: {measure}\n        window: {window}\n        op: {op}\n        threshold: {threshold}\n        for: 1m\n",
                KINDS[r / SERVICES.len() % KINDS.len()]
            ));
        }
    }
    out.push_str("  - name: slos\n    interval: 1m\n    slos:\n");
    for service in SERVICES {
        out.push_str(&format!(
            "      - name: {service}-ok\n        service: {service}\n        objective: 99.9\n        good: {{ not_error: true, max_duration: 45ms }}\n"
        ));
    }
    out
}

/// One interval: every group evaluated once, as the engine does.
async fn interval(store: &Store, groups: &mut [GroupState]) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut changes = 0;
    for g in groups.iter_mut() {
        let ctx = store.session(Reader::Internal, ReadLimits::INTERNAL)?;
        changes += g.evaluate(&ctx, chrono::Utc::now()).await.len();
    }
    Ok((started.elapsed(), changes))
}

/// Runs the benchmark.
pub async fn run(args: RulesBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir("vigil-bench-rules")?;
    let store = Store::open(StoreConfig {
        data_dir: dir.clone(),
        fsync: vigil_store::FsyncPolicy::Never,
        ..StoreConfig::default()
    })?;
    let result = measure(&store, &args).await;
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(store: &Store, args: &RulesBenchArgs) -> anyhow::Result<()> {
    fill(store, &args.store).await?;
    let text = rule_file(args.rules);
    let parsed = rules::parse("bench.yaml", &text).context("generated rules")?;
    let mut groups: Vec<GroupState> = parsed
        .groups
        .into_iter()
        .map(|g| GroupState::new("bench.yaml".into(), g))
        .collect();
    let slos: usize = groups.iter().map(|g| g.slos.len()).sum();

    let ctx = store.session(Reader::Internal, ReadLimits::INTERNAL)?;
    let t = Instant::now();
    let all = ctx
        .query(
            "SELECT count(*), approx_percentile_cont(duration_ns, 0.95) FROM spans",
            1,
        )
        .await?
        .batches;
    let scan = t.elapsed();
    let rows = all
        .first()
        .and_then(|b| {
            arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Int64Type>(b.column(0))
                .map(|a| a.value(0))
        })
        .unwrap_or(0);

    let (first, changes) = interval(store, &mut groups).await?;
    let mut steady = Vec::new();
    for _ in 0..args.rounds {
        steady.push(interval(store, &mut groups).await?.0);
    }
    steady.sort();
    let median = steady[steady.len() / 2];
    let files = store.catalog().files().len();
    println!(
        "store: {rows} spans over {} h in {files} Parquet files ({} attributes per span)",
        args.store.hours, args.store.attributes
    );
    println!(
        "baseline: one full scan (count + p95 of every span): {:.3} s",
        scan.as_secs_f64()
    );
    println!(
        "first interval ({} rules + {slos} SLOs; SLOs read their whole period once): {:.3} s, {changes} alert changes",
        args.rules,
        first.as_secs_f64()
    );
    println!(
        "steady interval, median of {}: {:.3} s (min {:.3}, max {:.3}) = {:.2}x the full scan; target < 1 s: {}",
        steady.len(),
        median.as_secs_f64(),
        steady[0].as_secs_f64(),
        steady[steady.len() - 1].as_secs_f64(),
        median.as_secs_f64() / scan.as_secs_f64().max(1e-9),
        if median < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
