//! Propagation over the call graph: a suspect whose symptoms a neighbour explains is
//! demoted, so the service where the fault is ranks above the services that only felt it.
//!
//! Symptoms travel one way per kind. A slow or failing callee makes its callers slow or fail
//! (latency and errors travel upstream), so a caller whose cause is latency or errors is
//! explained by the suspects downstream of it whose cause could produce that: latency,
//! errors, network or resource. A service that stops sending starves what it calls or feeds
//! (throughput travels downstream), so a suspect whose cause is throughput is explained by
//! the suspects upstream of it. Network, resource and logic evidence is already pinned on the
//! service it points at (the callee waited for, the process whose resources rose, the sender
//! of rejected data) and is not demoted.
//!
//! The demotion is one step of a random walk on the anomalous subgraph: a walker at a
//! suspect moves to itself or to one of the suspects that explain it, each with probability
//! proportional to its score; the suspect keeps its score times the probability the walker
//! stays. Unlike a full PageRank it never raises a score, so the scores stay calibrated
//! (nothing is reported that lacked evidence of its own) and a lone suspect keeps its score.

use std::collections::{BTreeMap, BTreeSet};

use super::{Cause, Suspect};

/// Which neighbours can explain a suspect, by its cause: downstream or upstream, and the
/// causes that can produce its symptoms there.
fn explained_from(cause: Cause) -> Option<(Direction, &'static [Cause])> {
    match cause {
        Cause::Latency | Cause::Errors => Some((
            Direction::Downstream,
            &[
                Cause::Latency,
                Cause::Errors,
                Cause::Network,
                Cause::Resource,
            ],
        )),
        Cause::Throughput => Some((
            Direction::Upstream,
            &[
                Cause::Latency,
                Cause::Errors,
                Cause::Throughput,
                Cause::Network,
                Cause::Resource,
            ],
        )),
        Cause::Network | Cause::Resource | Cause::Logic => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Downstream,
    Upstream,
}

/// Every service reachable from `from` along `next`, `from` excluded.
fn reachable<'a>(from: &'a str, next: &BTreeMap<&'a str, Vec<&'a str>>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(s) = todo.pop() {
        for n in next.get(s).into_iter().flatten() {
            if *n != from && seen.insert(*n) {
                todo.push(n);
            }
        }
    }
    seen
}

/// Demotes `suspects` (scored) whose symptoms the suspects around them explain, over the
/// call and messaging `edges` (caller, callee); only explainers scoring at least `floor`
/// count. Each demoted suspect says by whom.
pub fn demote(suspects: &mut [Suspect], edges: &BTreeSet<(String, String)>, floor: f64) {
    let mut down: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut up: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (caller, callee) in edges {
        down.entry(caller).or_default().push(callee);
        up.entry(callee).or_default().push(caller);
    }
    let strong: BTreeMap<&str, (f64, Cause)> = suspects
        .iter()
        .filter(|s| s.score >= floor)
        .map(|s| (s.service.as_str(), (s.score, s.cause)))
        .collect();
    let mut demoted: Vec<(usize, f64, Vec<String>, Direction)> = Vec::new();
    for (i, s) in suspects.iter().enumerate() {
        let Some((direction, causes)) = explained_from(s.cause) else {
            continue;
        };
        let next = match direction {
            Direction::Downstream => &down,
            Direction::Upstream => &up,
        };
        let explainers: Vec<(&str, f64)> = reachable(&s.service, next)
            .into_iter()
            .filter_map(|n| {
                let (score, cause) = strong.get(n)?;
                causes.contains(cause).then_some((n, *score))
            })
            .collect();
        let others: f64 = explainers.iter().map(|e| e.1).sum();
        if others > 0.0 && s.score > 0.0 {
            let names = explainers.iter().map(|e| e.0.to_string()).collect();
            demoted.push((i, s.score / (s.score + others), names, direction));
        }
    }
    for (i, keeps, names, direction) in demoted {
        let s = &mut suspects[i];
        s.score *= keeps;
        s.reasons.push(format!(
            "explained in part by {} ({}): keeps {:.0}% of its score",
            names.join(", "),
            match direction {
                Direction::Upstream => "upstream",
                Direction::Downstream => "downstream",
            },
            keeps * 100.0
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspect(service: &str, score: f64, cause: Cause) -> Suspect {
        let mut s = Suspect::new(service);
        (s.score, s.cause) = (score, cause);
        s
    }

    fn edges(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn scores(s: &[Suspect]) -> Vec<(String, f64)> {
        s.iter()
            .map(|s| (s.service.clone(), (s.score * 100.0).round() / 100.0))
            .collect()
    }

    #[test]
    fn callers_failing_because_a_callee_fails_are_demoted_below_it() {
        // frontend → checkout → payment; payment is slow, the callers time out.
        let mut s = vec![
            suspect("frontend", 3.0, Cause::Errors),
            suspect("checkout", 4.0, Cause::Errors),
            suspect("payment", 5.0, Cause::Latency),
        ];
        let e = edges(&[("frontend", "checkout"), ("checkout", "payment")]);
        demote(&mut s, &e, 1.0);
        assert_eq!(
            scores(&s),
            vec![
                ("frontend".into(), 0.75),
                ("checkout".into(), 1.78),
                ("payment".into(), 5.0)
            ]
        );
        assert!(s[1].reasons[0].contains("explained in part by payment (downstream)"));
    }

    #[test]
    fn starved_consumers_are_explained_upstream_and_pinned_evidence_is_kept() {
        // order → shipping → notification; shipping stalls; notification gets less.
        let mut s = vec![
            suspect("notification", 2.0, Cause::Throughput),
            suspect("shipping", 6.0, Cause::Throughput),
            suspect("order", 0.5, Cause::Latency),
            suspect("payment", 4.0, Cause::Logic),
        ];
        let e = edges(&[
            ("order", "shipping"),
            ("shipping", "notification"),
            ("order", "payment"),
        ]);
        demote(&mut s, &e, 1.0);
        assert_eq!(
            scores(&s),
            vec![
                ("notification".into(), 0.5),
                ("shipping".into(), 6.0),
                ("order".into(), 0.5),
                ("payment".into(), 4.0)
            ],
            "order scores under the floor: it explains nothing"
        );
    }

    #[test]
    fn a_callee_whose_output_callers_reject_does_not_explain_their_errors() {
        let mut s = vec![
            suspect("checkout", 3.0, Cause::Errors),
            suspect("pricing", 4.0, Cause::Logic),
        ];
        demote(&mut s, &edges(&[("checkout", "pricing")]), 1.0);
        assert_eq!(s[0].score, 3.0);
    }
}
