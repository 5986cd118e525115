//! Root-cause analysis accuracy: `vigil demo` under steady load takes rounds of four faults,
//! one at a time with quiet time between; after each, `GET /api/v1/rca` over the fault's
//! window against the half minute before it must rank the injected service first, with the
//! change the fault made as its evidence and cause. Four sets:
//! - the saga, fully instrumented: latency on payment, errors on inventory, a consumer stall
//!   on shipping, CPU burn on order — first in at least 9 of 10 rounds each;
//! - the saga, sparsely instrumented (spans without status or attributes): an exception
//!   recovered from on inventory, a wrong result from payment, inbound network delay on
//!   shipping, CPU contention on order, which only logs, metrics and timings show — first in
//!   9 of 10, among the first three in every round;
//! - the generated call graph (`--workload graph`, 13 services), fully instrumented: latency,
//!   errors, a stuck handler, CPU burn; and sparsely instrumented: the four hidden faults;
//!   each round's fault on a service picked by a seeded random draw (`VIGIL_RCA_SEED`) — first
//!   in 8 of 10, among the first three in 9.
//!
//! It prints a table per set. Ten rounds of a set take about 45 minutes (`VIGIL_RCA_ROUNDS`
//! sets how many). And fault-free: over 30 minutes of steady load (`VIGIL_RCA_QUIET_MINUTES`),
//! 20 windows analysed at random moments must report no suspect in at least 19. They all
//! run on demand: `cargo test --test rca_accuracy -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use common::chaos::{FAST_EXPORT, chaos, fault_time, steady_load};
use common::web::get_json;
use common::{Vigil, eventually};
use serde_json::Value;
use vigil_sample_services::graph::topology::Topology;

/// The call graph `vigil demo --workload graph` runs.
const SHOP: &str = include_str!("../config/topology/shop.yaml");

/// How long each fault holds, seconds.
const FAULT_SECS: u64 = 20;
/// Quiet time after a fault before the next, so its effects (a drained backlog) are over
/// before the next baseline starts.
const QUIET: Duration = Duration::from_secs(45);
/// The baseline: this long before the fault started.
const BASELINE: chrono::Duration = chrono::Duration::seconds(30);
/// Time for the services' telemetry of a window to reach Vigil.
const SETTLE: Duration = Duration::from_secs(3);

fn rounds() -> usize {
    std::env::var("VIGIL_RCA_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10)
}

/// One fault type: what to inject (a `vigil chaos` command without its service), on which
/// service (for the saga; on the call graph a seeded pick each round), and whether a report's
/// suspect shows the change the fault made.
#[derive(Clone, Copy)]
struct Fault {
    name: &'static str,
    service: &'static str,
    args: &'static [&'static str],
    shows: fn(&Value) -> bool,
}

fn cause(suspect: &Value, cause: &str) -> bool {
    suspect["cause"] == cause
}

fn grew(suspect: &Value, figure: &str, by: f64) -> bool {
    let get = |when: &str| suspect[when][figure].as_f64().unwrap_or(0.0);
    get("after") - get("before") >= by
}

fn mentions(suspect: &Value, words: &[&str]) -> bool {
    suspect["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| words.iter().any(|w| r.contains(w)))
}

const SPAN_FAULTS: [Fault; 4] = [
    Fault {
        name: "latency 150 ms",
        service: "payment",
        args: &["latency", "--ms", "150"],
        shows: |s| grew(s, "self_p50", 0.1),
    },
    Fault {
        name: "errors 30%",
        service: "inventory",
        args: &["errors", "--rate", "0.3"],
        shows: |s| grew(s, "error_rate", 0.1),
    },
    Fault {
        name: "stall",
        service: "shipping",
        args: &["stall"],
        shows: |s| mentions(s, &["consumer lag", "calls "]),
    },
    Fault {
        name: "CPU burn 30 ms",
        service: "order",
        args: &["cpu-burn", "--ms", "30"],
        shows: |s| grew(s, "self_p50", 0.02),
    },
];

const HIDDEN_FAULTS: [Fault; 4] = [
    Fault {
        name: "exception 30%",
        service: "inventory",
        args: &["exception", "--rate", "0.3"],
        shows: |s| cause(s, "errors") && mentions(s, &["exception"]),
    },
    Fault {
        name: "wrong result 30%",
        service: "payment",
        args: &["wrong-result", "--rate", "0.3"],
        shows: |s| cause(s, "logic"),
    },
    Fault {
        name: "network delay 100 ms",
        service: "shipping",
        args: &["network-delay", "--ms", "100"],
        shows: |s| cause(s, "network"),
    },
    Fault {
        name: "CPU contention 60%",
        service: "order",
        args: &["cpu-contention", "--share", "0.6"],
        shows: |s| mentions(s, &["process.cpu"]),
    },
];

/// The span faults on the call graph: a stuck handler holds each request until its caller
/// gives up; the CPU burn is smaller, as its services take more calls each.
const GRAPH_SPAN_FAULTS: [Fault; 4] = [
    SPAN_FAULTS[0],
    SPAN_FAULTS[1],
    Fault {
        name: "stuck handler",
        service: "",
        args: &["stall"],
        shows: |s| grew(s, "self_p50", 0.1),
    },
    Fault {
        name: "CPU burn 10 ms",
        service: "",
        args: &["cpu-burn", "--ms", "10"],
        shows: |s| grew(s, "self_p50", 0.005),
    },
];

/// A seeded xorshift: the seed is printed, so a run can be repeated (`VIGIL_RCA_SEED`).
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = std::env::var("VIGIL_RCA_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
        eprintln!("seed {seed}");
        Random(seed)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000) as f64 / 1_000.0
    }
}

/// Where the faults of a set run.
enum Workload {
    /// The saga, under `vigil load`; each fault on its own service.
    Saga,
    /// The generated call graph, under its own load; each fault on a service picked at random
    /// among those with callers.
    Graph,
}

/// What one analysis said: the first two suspects, whether the first is right, and whether
/// the injected service is among the first three.
struct Outcome {
    first: Named,
    runner_up: Named,
    ok: bool,
    top3: bool,
}

/// A suspect's service and operation, and its score.
struct Named {
    name: String,
    score: f64,
}

impl Named {
    fn of(s: &Value) -> Named {
        if s.is_null() {
            return Named {
                name: "none".to_string(),
                score: 0.0,
            };
        }
        let op = s["operation"].as_str().unwrap_or_default();
        Named {
            name: format!(
                "{}{}",
                s["service"].as_str().unwrap_or_default(),
                if op.is_empty() {
                    String::new()
                } else {
                    format!(" `{op}`")
                }
            ),
            score: s["score"].as_f64().unwrap_or(0.0),
        }
    }
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:.2})", self.name, self.score)
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The report of `GET /api/v1/rca` over `start`..`end` against the half minute before.
fn analysis(vigil: &Vigil, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    let (status, report) = get_json(&format!(
        "http://{}/api/v1/rca?start={}&end={}&baseline_start={}&baseline_end={}",
        vigil.api,
        time(start),
        time(end),
        time(start - BASELINE),
        time(start)
    ));
    assert_eq!(status, 200, "{report}");
    report
}

/// Injects `fault` on `service`, waits it out, and asks what changed over its window.
fn run(vigil: &Vigil, gateway: &str, fault: &Fault, service: &str) -> Outcome {
    let lasting = format!("{FAULT_SECS}s");
    let mut args = fault.args.to_vec();
    args.extend(["--service", service, "--for", lasting.as_str()]);
    let id = chaos(gateway, &args);
    std::thread::sleep(Duration::from_secs(FAULT_SECS) + SETTLE);
    let (start, end) = (
        fault_time(vigil, id, "start"),
        fault_time(vigil, id, "stop"),
    );
    let report = analysis(vigil, start, end);
    let first = &report["suspects"][0];
    let suspects = report["suspects"].as_array().cloned().unwrap_or_default();
    Outcome {
        first: Named::of(first),
        runner_up: Named::of(&report["suspects"][1]),
        ok: first["service"] == service && (fault.shows)(first),
        top3: suspects
            .iter()
            .take(3)
            .any(|s| s["service"] == service && (fault.shows)(s)),
    }
}

#[test]
#[ignore = "runs for about 45 minutes; run on demand"]
fn each_injected_fault_is_blamed_on_its_service() {
    let outcomes = rounds_of(&SPAN_FAULTS, Workload::Saga, &[]);
    for (fault, seen) in SPAN_FAULTS.iter().zip(&outcomes) {
        let hits = seen.iter().filter(|o| o.ok).count();
        assert!(
            hits * 10 >= seen.len() * 9,
            "{}: ranked first in {hits} of {} runs",
            fault.name,
            seen.len()
        );
    }
}

#[test]
#[ignore = "runs for about 45 minutes; run on demand"]
fn faults_spans_do_not_show_are_found_in_logs_metrics_and_timings() {
    let outcomes = rounds_of(&HIDDEN_FAULTS, Workload::Saga, &["--sparse"]);
    for (fault, seen) in HIDDEN_FAULTS.iter().zip(&outcomes) {
        let (hits, top3) = (
            seen.iter().filter(|o| o.ok).count(),
            seen.iter().filter(|o| o.top3).count(),
        );
        assert!(
            hits * 10 >= seen.len() * 9 && top3 == seen.len(),
            "{}: ranked first in {hits} and in the first three in {top3} of {} runs",
            fault.name,
            seen.len()
        );
    }
}

#[test]
#[ignore = "runs for about 45 minutes; run on demand"]
fn on_a_call_graph_span_faults_are_blamed_on_the_service_they_hit() {
    let outcomes = rounds_of(&GRAPH_SPAN_FAULTS, Workload::Graph, &[]);
    assert_graph_accuracy(&GRAPH_SPAN_FAULTS, &outcomes);
}

#[test]
#[ignore = "runs for about 45 minutes; run on demand"]
fn on_a_call_graph_faults_spans_do_not_show_are_found() {
    let outcomes = rounds_of(&HIDDEN_FAULTS, Workload::Graph, &["--sparse"]);
    assert_graph_accuracy(&HIDDEN_FAULTS, &outcomes);
}

/// On the call graph: ranked first in 8 of 10 rounds, among the first three in 9.
fn assert_graph_accuracy(faults: &[Fault], outcomes: &[Vec<Outcome>]) {
    for (fault, seen) in faults.iter().zip(outcomes) {
        let (hits, top3) = (
            seen.iter().filter(|o| o.ok).count(),
            seen.iter().filter(|o| o.top3).count(),
        );
        assert!(
            hits * 10 >= seen.len() * 8 && top3 * 10 >= seen.len() * 9,
            "{}: ranked first in {hits} and in the first three in {top3} of {} runs",
            fault.name,
            seen.len()
        );
    }
}

/// Runs the rounds of `faults` on `workload`, started with `extra` flags; prints the table.
fn rounds_of(faults: &[Fault], workload: Workload, extra: &[&str]) -> Vec<Vec<Outcome>> {
    let rounds = rounds();
    let dir = tempfile::tempdir().unwrap();
    let mut flags = vec!["--metric-interval", "1s"];
    let graph = Topology::parse(SHOP).unwrap();
    let services = graph.called_services();
    if let Workload::Graph = workload {
        flags.extend(["--workload", "graph", "--rate", "20"]);
    }
    flags.extend(extra);
    let vigil = Vigil::demo(&dir.path().join("data"), &flags, &FAST_EXPORT);
    let gateway = vigil.gateway.clone().unwrap();
    let slot = Duration::from_secs(FAULT_SECS) + QUIET;
    // The warm-up minute, every slot, and room for the wait for first spans and the last
    // analysis: the load must outlast the last fault's window.
    let total = Duration::from_secs(60 + 60) + slot * (faults.len() * rounds) as u32;
    let load = match workload {
        Workload::Saga => Some(steady_load(&gateway, 20, &format!("{}s", total.as_secs()))),
        Workload::Graph => None,
    };
    let mut random = Random::seeded();
    // A minute of normal traffic before the first baseline.
    assert!(eventually(Duration::from_secs(30), || {
        vigil.count("SELECT count(*) FROM spans WHERE span_kind = 'SERVER'") > 100
    }));
    std::thread::sleep(Duration::from_secs(60));

    let mut outcomes: Vec<Vec<Outcome>> = faults.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (fault, seen) in faults.iter().zip(&mut outcomes) {
            let began = Instant::now();
            let service = match workload {
                Workload::Saga => fault.service,
                Workload::Graph => {
                    services
                        [((random.next() * services.len() as f64) as usize).min(services.len() - 1)]
                }
            };
            let o = run(&vigil, &gateway, fault, service);
            eprintln!(
                "round {round} {} on {service}: first {} runner-up {} {}",
                fault.name,
                o.first,
                o.runner_up,
                if o.ok { "ok" } else { "MISSED" }
            );
            seen.push(o);
            std::thread::sleep(slot.saturating_sub(began.elapsed()));
        }
    }

    println!(
        "| fault | ranked first | in the first three | first suspects (scores) | strongest runner-up | misses |"
    );
    println!("|---|---|---|---|---|---|");
    for (fault, seen) in faults.iter().zip(&outcomes) {
        let hits = seen.iter().filter(|o| o.ok).count();
        let top3 = seen.iter().filter(|o| o.top3).count();
        let mut firsts: Vec<&str> = seen.iter().map(|o| o.first.name.as_str()).collect();
        firsts.sort_unstable();
        firsts.dedup();
        let scores = seen.iter().map(|o| o.first.score);
        let (low, high) = (
            scores.clone().fold(f64::INFINITY, f64::min),
            scores.fold(0.0, f64::max),
        );
        let runner_up = seen
            .iter()
            .map(|o| &o.runner_up)
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map_or_else(String::new, ToString::to_string);
        let misses: Vec<String> = seen
            .iter()
            .filter(|o| !o.ok)
            .map(|o| format!("{} over {}", o.first, o.runner_up))
            .collect();
        println!(
            "| {}{} | {hits} of {} | {top3} of {} | {} ({low:.2}–{high:.2}) | {runner_up} | {} |",
            fault.name,
            match workload {
                Workload::Saga => format!(" on {}", fault.service),
                Workload::Graph => String::new(),
            },
            seen.len(),
            seen.len(),
            firsts.join(", "),
            misses.join("; ")
        );
    }
    if let Some(load) = load {
        load.join().unwrap();
    }
    outcomes
}

/// How many fault-free windows are analysed.
const QUIET_WINDOWS: usize = 20;

#[test]
#[ignore = "runs for about 30 minutes; run on demand"]
fn nothing_changed_means_nothing_reported() {
    let minutes: u64 = std::env::var("VIGIL_RCA_QUIET_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let vigil = Vigil::demo(
        &dir.path().join("data"),
        &["--metric-interval", "1s"],
        &FAST_EXPORT,
    );
    let gateway = vigil.gateway.clone().unwrap();
    let total = Duration::from_secs(minutes * 60);
    let load = steady_load(&gateway, 20, &format!("{}s", total.as_secs() + 30));
    let began = Instant::now();
    // One window at a random moment of each of QUIET_WINDOWS slots after the first minute (a
    // seeded xorshift: the seed is printed, so a run can be repeated).
    let warm = Duration::from_secs(60);
    let slot = total.saturating_sub(warm) / QUIET_WINDOWS as u32;
    let mut random = Random::seeded();
    let mut reported = Vec::new();
    for i in 0..QUIET_WINDOWS {
        let at = warm + slot * i as u32 + slot.mul_f64(random.next());
        std::thread::sleep(at.saturating_sub(began.elapsed()));
        let end = Utc::now() - chrono::Duration::from_std(SETTLE).unwrap();
        let start = end - chrono::Duration::seconds(FAULT_SECS as i64);
        let report = analysis(&vigil, start, end);
        let first = Named::of(&report["suspects"][0]);
        eprintln!("window {}: first suspect {first}", i + 1);
        if first.score > 0.0 {
            reported.push(first.to_string());
        }
    }
    println!(
        "fault-free: {} of {QUIET_WINDOWS} windows reported a suspect: {}",
        reported.len(),
        reported.join("; ")
    );
    assert!(
        reported.len() * 20 <= QUIET_WINDOWS,
        "{} of {QUIET_WINDOWS} fault-free windows reported a suspect",
        reported.len()
    );
    load.join().unwrap();
}
