//! Queries built to hurt — too deep, too wide, too big, too many at once, too far back in
//! time — each answered by the real `vigil serve` with a 4xx and a message, while it keeps
//! serving.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use common::Vigil;
use common::web::{get_json, get_text};
use serde_json::json;

const CONFIG: &str = r#"
[api]
query_timeout = "10s"
max_concurrent_queries = 1
queue_wait = "300ms"

[limits]
memory_limit = "128MiB"
"#;

fn start(dir: &std::path::Path) -> Vigil {
    let config = dir.join("vigil.toml");
    std::fs::write(&config, CONFIG).unwrap();
    Vigil::start(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

/// Asserts `status` is the one wanted and the error message holds `words`.
fn refused(what: &str, (status, body): (u16, serde_json::Value), want: u16, words: &str) {
    let message = body["error"].as_str().unwrap_or_default();
    assert_eq!(status, want, "{what}: {body}");
    assert!(
        message.contains(words),
        "{what}: {message:?} lacks {words:?}"
    );
}

#[test]
fn hostile_queries_get_a_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = start(dir.path());
    let api = format!("http://{}", vigil.api);
    let still_serving = |after: &str| {
        assert_eq!(
            vigil.count("SELECT count(*) FROM spans"),
            0,
            "after {after}"
        );
    };

    let words: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    refused(
        "5,000 words",
        get_json(&format!("{api}/api/v1/logs?q={}", words.join("+"))),
        400,
        "at most 32 words",
    );
    still_serving("5,000 words");

    let terms = vec!["1"; 10_000].join("+");
    refused(
        "10,000 terms",
        vigil.sql_raw(&format!("SELECT {terms}")),
        400,
        "expressions nest more than 256 deep",
    );
    still_serving("10,000 terms");

    let filters: Vec<String> = (0..50).map(|i| format!("attr.k{i}=v")).collect();
    refused(
        "50 attribute filters",
        get_json(&format!("{api}/api/v1/traces?{}", filters.join("&"))),
        400,
        "at most 16 attr.<name> filters",
    );
    still_serving("50 attribute filters");

    // 400 million rows whose values an aggregation must hold: far beyond users' 24 MiB.
    refused(
        "cross join",
        vigil.sql_raw(
            "SELECT array_agg(a.value * b.value) FROM generate_series(1, 20000) a, \
             generate_series(1, 20000) b",
        ),
        422,
        "query needs more than 24MiB of memory; narrow the time range or raise [limits] memory_limit",
    );
    still_serving("cross join");

    refused(
        "repeat",
        vigil.sql_raw("SELECT repeat('x', 1000000000)"),
        400,
        "repeat() would build 1000000000 bytes",
    );
    still_serving("repeat");

    refused(
        "year 1",
        get_json(&format!(
            "{api}/api/v1/logs?start=0001-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"
        )),
        400,
        "start must be between 1970-01-01T00:00:00Z and 2262",
    );
    refused(
        "a year-long window",
        get_json(&format!(
            "{api}/api/v1/traces?start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"
        )),
        400,
        "at most 31 days",
    );
    still_serving("far windows");

    // One slot: a query that runs until its timeout holds it; the next waits 300 ms, then 429.
    let slow_api = api.clone();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = common::web::post_json(
            &format!("{slow_api}/api/v1/sql"),
            &json!({"sql": "SELECT max(a.value + b.value) FROM generate_series(1, 100000) a, \
                    generate_series(1, 100000) b"}),
        );
        (answer, started.elapsed())
    });
    let busy = common::eventually(Duration::from_secs(5), || {
        let (_, running) = get_text(&format!("{api}/metrics"));
        running.contains("vigil_api_queries_running 1")
    });
    assert!(busy, "the slow query never started");
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{api}/api/v1/sql"))
                .json(&json!({"sql": "SELECT 1"}))
                .send()
                .await
                .unwrap()
        });
    assert_eq!(answer.status().as_u16(), 429);
    assert_eq!(answer.headers()["retry-after"], "1");
    // Health and metrics are never queued.
    assert_eq!(get_text(&format!("{api}/healthz")).0, 200);
    let ((status, body), took) = slow.join().unwrap();
    refused("slow", (status, body), 408, "did not finish within 10s");
    assert!(took < Duration::from_secs(20), "the timeout took {took:?}");
    still_serving("the slow query");

    let (_, metrics) = get_text(&format!("{api}/metrics"));
    for (reason, at_least) in [
        ("too_deep", 1),
        ("memory", 1),
        ("invalid", 1),
        ("timeout", 1),
        ("busy", 1),
    ] {
        let line = format!("vigil_queries_refused_total{{reader=\"users\",reason=\"{reason}\"}} ");
        let n: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line} missing:\n{metrics}"))
            .parse()
            .unwrap();
        assert!(n >= at_least as f64, "{line}{n}");
    }
    for family in [
        "vigil_query_memory_bytes{reader=\"users\"}",
        "vigil_query_memory_limit_bytes{reader=\"users\"} 25165824",
        "vigil_query_memory_limit_bytes{reader=\"internal\"} 12582912",
        "vigil_query_spills_total",
        "vigil_api_queries_queued 0",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    vigil.stop();
}
