//! `vigil bench queries`: the investigation API over a large store. Fills a store with
//! synthetic spans spread over the last hours plus one large trace, compacts it as a running
//! server would have, starts `vigil serve` on it, and times the trace view, trace search
//! (Vigil's and Jaeger's), RED and the service map over HTTP, next to a full scan of the same
//! spans through the SQL API as the baseline.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_collector::convert::CorrelationIndex;
use vigil_store::query::Window;
use vigil_store::{Store, StoreConfig, sql};

use super::fill::{append, fill};
use super::payload::large_trace;
use super::{Server, data_dir, discard};
use crate::cli::QueryBenchArgs;

/// What the targets ask for.
const TARGET: Duration = Duration::from_secs(1);

/// Runs the benchmark.
pub async fn run(args: QueryBenchArgs) -> anyhow::Result<()> {
    let dir = data_dir(args.keep_data.as_deref(), "vigil-bench-queries")?;
    let result = measure(&dir, &args).await;
    discard(&dir, args.keep_data.as_deref());
    result
}

/// Fills the store in `dir`; returns the large trace's id and the Parquet files written.
async fn prepare(dir: &std::path::Path, args: &QueryBenchArgs) -> anyhow::Result<(String, usize)> {
    let store = Store::open(StoreConfig {
        data_dir: dir.to_path_buf(),
        fsync: vigil_store::FsyncPolicy::Never,
        ..StoreConfig::default()
    })?;
    let filled = async {
        fill(&store, &args.store).await?;
        // The large trace ended ten minutes ago.
        let from = Utc::now().timestamp_nanos_opt().context("clock")? as u64 - 610_000_000_000;
        let (id, req) = large_trace(args.trace_spans, from, args.store.attributes);
        append(&store, &req, &mut CorrelationIndex::new(16)).await?;
        store.flush().await?;
        let compacted = store.compact()?;
        eprintln!("compacted: {compacted:?}");
        anyhow::Ok((id, store.catalog().files().len()))
    }
    .await;
    store.close();
    filled
}

/// One request's time and its JSON answer.
async fn timed(req: reqwest::RequestBuilder) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok((took, body))
}

/// The first (cold) time and the median of `runs` more.
struct Figure {
    first: Duration,
    median: Duration,
}

async fn figure(
    runs: usize,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<(Figure, Value)> {
    let (first, body) = timed(make()).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(timed(make()).await?.0);
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or(first);
    Ok((Figure { first, median }, body))
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

async fn measure(dir: &std::path::Path, args: &QueryBenchArgs) -> anyhow::Result<()> {
    let (trace_id, files) = prepare(dir, args).await?;
    let server = Server::spawn(Server::serve(
        std::process::Command::new(std::env::current_exe()?),
        dir,
    ))?;
    let result = queries(&server.api, &trace_id, files, args).await;
    server.stop()?;
    result
}

async fn queries(
    api: &str,
    trace_id: &str,
    files: usize,
    args: &QueryBenchArgs,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let now = Utc::now();
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let (all_start, end) = (
        now - chrono::Duration::hours(args.store.hours as i64 + 1),
        now,
    );
    let hour = now - chrono::Duration::hours(1);
    let micros = |t: chrono::DateTime<Utc>| t.timestamp_micros().to_string();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{api}{path}");
        move || client.get(&url)
    };

    let (scan, body) = figure(args.runs, || {
        client.post(format!("{api}/api/v1/sql")).json(&json!({
            "sql": "SELECT count(*) AS spans, approx_percentile_cont(duration_ns, 0.95) AS p95 FROM spans"
        }))
    })
    .await?;
    let spans = body["rows"][0][0].as_u64().unwrap_or(0);
    println!(
        "store: {spans} spans over {} h in {files} Parquet files ({} attributes per span); one trace of {} spans",
        args.store.hours, args.store.attributes, args.trace_spans
    );
    println!(
        "{:<58} {:>9} {:>9} {:>9}  target",
        "query", "first", "median", "÷ scan"
    );
    let row = |name: &str, f: &Figure, target: bool| {
        println!(
            "{name:<58} {:>9} {:>9} {:>8.2}x  {}",
            seconds(f.first),
            seconds(f.median),
            f.median.as_secs_f64() / scan.median.as_secs_f64().max(1e-9),
            if !target {
                ""
            } else if f.first.max(f.median) < TARGET {
                "< 1 s met"
            } else {
                "< 1 s NOT met"
            }
        );
    };
    row("baseline: full scan, count + p95 (SQL API)", &scan, false);

    let (view, body) = figure(args.runs, get(format!("/api/v1/traces/{trace_id}"))).await?;
    let returned = body["spans"].as_array().map_or(0, Vec::len);
    let total = body["span_count"].as_u64().unwrap_or(0);
    row(
        &format!("trace view, first page ({returned} of {total} spans)"),
        &view,
        true,
    );
    let started = Instant::now();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let (_, page) =
            timed(client.get(format!("{api}/api/v1/traces/{trace_id}?offset={offset}"))).await?;
        pages += 1;
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    let every = started.elapsed();
    row(
        &format!("trace view, all {pages} pages"),
        &Figure {
            first: every,
            median: every,
        },
        true,
    );

    // An order placed about three hours ago: the searches for it must look past newer files.
    let (_, found) = timed(client.post(format!("{api}/api/v1/sql")).json(&json!({
        "sql": sql!(
            "SELECT attributes['order.id'] AS id FROM spans WHERE {} \
             AND attributes['order.id'] IS NOT NULL LIMIT 1",
            Window::ending(
                now - chrono::Duration::minutes(180),
                Duration::from_secs(600)
            )
            .sql()
        )
        .as_str()
    })))
    .await?;
    let Some(order) = found["rows"][0][0].as_str().map(str::to_string) else {
        bail!("no span with an order.id three hours back to search for: {found}");
    };
    let searches = [
        (
            format!(
                "trace search, {} h: service + min_duration",
                args.store.hours + 1
            ),
            format!(
                "/api/v1/traces?service=payment&min_duration=45ms&start={}&end={}&limit=20",
                rfc(all_start),
                rfc(end)
            ),
            true,
        ),
        (
            format!(
                "trace search, {} h: an attribute no span has + status",
                args.store.hours + 1
            ),
            format!(
                "/api/v1/traces?attr.customer.tier=enterprise&status=error&start={}&end={}&limit=20",
                rfc(all_start),
                rfc(end)
            ),
            true,
        ),
        (
            format!(
                "trace search, {} h: one order's trace by order.id",
                args.store.hours + 1
            ),
            format!(
                "/api/v1/traces?attr.order.id={order}&start={}&end={}&limit=20",
                rfc(all_start),
                rfc(end)
            ),
            true,
        ),
        (
            format!(
                "trace search, {} h: common attribute value + status",
                args.store.hours + 1
            ),
            format!(
                "/api/v1/traces?attr.http.route=/orders&status=error&start={}&end={}&limit=20",
                rfc(all_start),
                rfc(end)
            ),
            true,
        ),
        (
            format!(
                "trace search, {} h: one user (user.id, 1 in 100,000)",
                args.store.hours + 1
            ),
            format!(
                "/api/v1/traces?attr.user.id=user-4242&start={}&end={}&limit=20",
                rfc(all_start),
                rfc(end)
            ),
            true,
        ),
        (
            "trace search, last hour: service".to_string(),
            format!("/api/v1/traces?service=order&start={}&limit=20", rfc(hour)),
            true,
        ),
        (
            format!(
                "Jaeger search, {} h: service + operation",
                args.store.hours + 1
            ),
            format!(
                "/api/traces?service=shipping&operation=charge%20card&start={}&end={}&limit=20",
                micros(all_start),
                micros(end)
            ),
            true,
        ),
        (
            format!("RED per service and operation, {} h", args.store.hours + 1),
            format!("/api/v1/services?start={}&end={}", rfc(all_start), rfc(end)),
            true,
        ),
        (
            "RED per service and operation, last 15 min".to_string(),
            "/api/v1/services".to_string(),
            true,
        ),
        (
            "service map, last hour".to_string(),
            format!("/api/v1/service-map?start={}", rfc(hour)),
            false,
        ),
        (
            "Jaeger services".to_string(),
            "/api/services".to_string(),
            false,
        ),
    ];
    // (what, path, whether the 1 s target applies)
    for (name, path, target) in searches {
        let (f, body) = figure(args.runs, get(path)).await?;
        match body["traces"].as_array().or(body["data"].as_array()) {
            Some(found) => row(&format!("{name} [{} found]", found.len()), &f, target),
            None => row(&name, &f, target),
        }
    }
    Ok(())
}
