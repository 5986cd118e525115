//! Peer outliers: "one partition differs from its peers". The members of a group (each
//! partition of a consumer operation) are compared with one another every window, feature by
//! feature: augurs' 1-D DBSCAN finds the members outside the majority cluster, and a member
//! outside it for `confirm` windows in a row is scored by its distance from the other
//! members' median in robust standard deviations (MAD), never less than the feature's noise
//! floor. No history of the member itself is needed: its peers are the baseline.

use std::collections::{BTreeMap, VecDeque};

use augurs::outlier::{DbscanDetector, OutlierDetector};

use super::monitor::Anomaly;
use crate::features::{Feature, Observation, PeerMember, SeriesKey};
use vigil_store::query::Window;

/// The features members are compared on. Latency by its median only: a partition sees few
/// deliveries per window, and one slow message moves its tail percentiles on its own.
pub const PEER_FEATURES: [Feature; 3] = [
    Feature::RequestRate,
    Feature::ErrorRate,
    Feature::LatencyP50,
];

/// The name of this detector in an anomaly's `detectors`.
pub const PEER_DETECTOR: &str = "peers";

/// How peers are compared.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    /// Windows in a row a member must be outside the majority before it is reported.
    pub confirm: usize,
    /// Members a group needs (with a value in every compared window) to be judged.
    pub min_members: usize,
    /// Members within this many robust standard deviations of each other chain into one
    /// cluster (DBSCAN's epsilon).
    pub cluster_width: f64,
    /// The robust distance that scores 0.5.
    pub half_score: f64,
    /// Score from which an outlier is reported.
    pub sensitivity: f64,
    /// Windows without telemetry after which a member is forgotten.
    pub forget_after: usize,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            confirm: 3,
            min_members: 4,
            cluster_width: 3.0,
            half_score: 3.0,
            sensitivity: 0.8,
            forget_after: 30,
        }
    }
}

/// Scale from the median absolute deviation to a normal standard deviation.
const MAD_TO_STD: f64 = 1.4826;

#[derive(Debug)]
struct Member {
    key: SeriesKey,
    /// The last `confirm` windows' values, oldest first.
    rows: VecDeque<[Option<f64>; Feature::COUNT]>,
    trace_ids: Vec<String>,
    idle: usize,
}

/// Every group's members.
#[derive(Debug, Default)]
pub struct PeerMonitor {
    config: PeerConfig,
    groups: BTreeMap<SeriesKey, BTreeMap<String, Member>>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median and robust standard deviation (at least the feature's noise floor at that median).
fn centre_and_spread(values: &[f64], feature: Feature) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let m = median(&mut v);
    let mut deviations: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let (relative, absolute) = feature.noise_floor();
    let floor = (relative * m.abs()).max(absolute).max(f64::MIN_POSITIVE);
    (m, (MAD_TO_STD * median(&mut deviations)).max(floor))
}

/// One feature's verdict on one member in the latest window.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    feature: Feature,
    distance: f64,
    observed: f64,
    expected: f64,
}

impl PeerMonitor {
    /// A monitor that knows no group yet.
    pub fn new(config: PeerConfig) -> Self {
        PeerMonitor {
            config,
            groups: BTreeMap::new(),
        }
    }

    /// Groups being compared.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Records one window's members and returns the members that differ from their peers.
    pub fn observe(&mut self, window: Window, members: Vec<PeerMember>) -> Vec<Anomaly> {
        let mut seen: BTreeMap<SeriesKey, BTreeMap<String, Observation>> = BTreeMap::new();
        for m in members {
            seen.entry(m.group)
                .or_default()
                .insert(m.observation.key.operation.clone(), m.observation);
        }
        for (group, observed) in &seen {
            let members = self.groups.entry(group.clone()).or_default();
            for (name, o) in observed {
                members.entry(name.clone()).or_insert_with(|| Member {
                    key: o.key.clone(),
                    rows: VecDeque::new(),
                    trace_ids: Vec::new(),
                    idle: 0,
                });
            }
        }
        let confirm = self.config.confirm.max(1);
        let forget_after = self.config.forget_after;
        for (group, members) in &mut self.groups {
            let observed = seen.get(group);
            for (name, m) in members.iter_mut() {
                match observed.and_then(|o| o.get(name)) {
                    Some(o) => {
                        m.rows.push_back(o.values);
                        m.trace_ids.clone_from(&o.trace_ids);
                        m.idle = 0;
                    }
                    None => {
                        m.rows.push_back(Observation::idle(m.key.clone()).values);
                        m.trace_ids.clear();
                        m.idle += 1;
                    }
                }
                while m.rows.len() > confirm {
                    m.rows.pop_front();
                }
            }
            members.retain(|_, m| m.idle < forget_after);
        }
        self.groups.retain(|_, members| !members.is_empty());
        let mut out = Vec::new();
        for members in self.groups.values() {
            out.extend(self.judge(window, members));
        }
        out
    }

    /// The members of one group outside the majority on some feature for `confirm` windows,
    /// scored by their robust distance from the others now.
    fn judge(&self, window: Window, members: &BTreeMap<String, Member>) -> Vec<Anomaly> {
        let confirm = self.config.confirm.max(1);
        let ready: Vec<&Member> = members
            .values()
            .filter(|m| m.rows.len() == confirm)
            .collect();
        if ready.len() < self.config.min_members.max(3) {
            return Vec::new();
        }
        let mut verdicts: Vec<Vec<Verdict>> = vec![Vec::new(); ready.len()];
        for feature in PEER_FEATURES {
            let series: Vec<Vec<f64>> = ready
                .iter()
                .map(|m| {
                    m.rows
                        .iter()
                        .map(|r| r[feature.index()].unwrap_or(f64::NAN))
                        .collect()
                })
                .collect();
            let complete: Vec<usize> = (0..ready.len())
                .filter(|&i| series[i].iter().all(|v| v.is_finite()))
                .collect();
            if complete.len() < self.config.min_members.max(3) {
                continue;
            }
            let rows: Vec<&[f64]> = complete.iter().map(|&i| series[i].as_slice()).collect();
            let latest: Vec<f64> = rows.iter().map(|r| r[confirm - 1]).collect();
            let (_, spread) = centre_and_spread(&latest, feature);
            let detector = DbscanDetector::with_epsilon(self.config.cluster_width * spread);
            let Ok(found) = detector.preprocess(&rows).and_then(|p| detector.detect(&p)) else {
                continue;
            };
            for (slot, &i) in complete.iter().enumerate() {
                let outside = found.series_results.get(slot).is_some_and(|r| {
                    r.scores.len() == confirm && r.scores.iter().all(|s| *s > 0.0)
                });
                if !outside {
                    continue;
                }
                let others: Vec<f64> = latest
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != slot)
                    .map(|(_, v)| *v)
                    .collect();
                let (expected, spread) = centre_and_spread(&others, feature);
                let observed = latest[slot];
                verdicts[i].push(Verdict {
                    feature,
                    distance: (observed - expected).abs() / spread,
                    observed,
                    expected,
                });
            }
        }
        ready
            .iter()
            .zip(verdicts)
            .filter_map(|(m, v)| self.anomaly(window, m, &v))
            .collect()
    }

    fn anomaly(&self, window: Window, member: &Member, verdicts: &[Verdict]) -> Option<Anomaly> {
        let top = verdicts
            .iter()
            .max_by(|a, b| a.distance.total_cmp(&b.distance))?;
        let score = top.distance / (top.distance + self.config.half_score);
        if score < self.config.sensitivity {
            return None;
        }
        let total: f64 = verdicts.iter().map(|v| v.distance).sum();
        Some(Anomaly {
            key: member.key.clone(),
            window,
            score,
            detectors: vec![PEER_DETECTOR],
            top_feature: top.feature,
            contributions: verdicts
                .iter()
                .map(|v| (v.feature, v.distance / total))
                .collect(),
            expected: verdicts.iter().map(|v| (v.feature, v.expected)).collect(),
            observed: verdicts.iter().map(|v| (v.feature, v.observed)).collect(),
            trace_ids: member.trace_ids.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(partition: usize, rate: f64, p50: f64) -> PeerMember {
        let group = SeriesKey {
            service: "payment".into(),
            operation: "process inventory".into(),
        };
        let mut o = Observation::empty(SeriesKey {
            service: "payment".into(),
            operation: format!(
                "process inventory{{messaging.destination.partition.id={partition}}}"
            ),
        });
        o.values[Feature::RequestRate.index()] = Some(rate);
        o.values[Feature::ErrorRate.index()] = Some(0.0);
        o.values[Feature::LatencyP50.index()] = Some(p50);
        o.trace_ids = vec![format!("trace-{partition}")];
        PeerMember {
            group,
            observation: o,
        }
    }

    fn window(i: i64) -> Window {
        Window {
            start: i * 10,
            end: (i + 1) * 10,
        }
    }

    /// Eight partitions taking `rate` messages a second with a little jitter; `slow` adds
    /// `extra` seconds to one of them.
    fn members(w: i64, rate: f64, slow: Option<(usize, f64)>) -> Vec<PeerMember> {
        (0..8)
            .map(|p| {
                let jitter = (w as f64 * 3.1 + p as f64 * 1.7).sin();
                let extra = slow.filter(|(s, _)| *s == p).map_or(0.0, |(_, e)| e);
                member(
                    p,
                    rate * (1.0 + 0.02 * jitter),
                    0.005 + 0.001 * jitter + extra,
                )
            })
            .collect()
    }

    #[test]
    fn a_slow_partition_is_reported_once_it_stays_apart_and_its_peers_are_not() {
        let mut m = PeerMonitor::new(PeerConfig::default());
        for w in 0..10 {
            assert!(
                m.observe(window(w), members(w, 2.5, None)).is_empty(),
                "window {w}"
            );
        }
        assert_eq!(m.groups(), 1);
        // Two windows apart are not enough; the third is.
        assert!(
            m.observe(window(10), members(10, 2.5, Some((3, 0.15))))
                .is_empty()
        );
        assert!(
            m.observe(window(11), members(11, 2.5, Some((3, 0.15))))
                .is_empty()
        );
        let found = m.observe(window(12), members(12, 2.5, Some((3, 0.15))));
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert!(a.key.operation.ends_with("partition.id=3}"), "{:?}", a.key);
        assert_eq!(a.detectors, vec![PEER_DETECTOR]);
        assert_eq!(a.top_feature, Feature::LatencyP50);
        assert!(a.score > 0.9, "{a:?}");
        let p50 = |v: &[(Feature, f64)]| {
            v.iter()
                .find(|(f, _)| *f == Feature::LatencyP50)
                .map(|(_, x)| *x)
        };
        assert!((p50(&a.observed).unwrap() - 0.155).abs() < 0.002, "{a:?}");
        assert!((p50(&a.expected).unwrap() - 0.005).abs() < 0.002, "{a:?}");
        assert_eq!(a.trace_ids, vec!["trace-3".to_string()]);
    }

    #[test]
    fn a_stalled_partition_stands_out_by_its_rate() {
        // At 100 messages a second per partition, none at all is far outside the noise.
        let mut m = PeerMonitor::new(PeerConfig::default());
        for w in 0..5 {
            m.observe(window(w), members(w, 100.0, None));
        }
        let mut found = Vec::new();
        for w in 5..9 {
            // Partition 6 delivers nothing: it is missing from the window.
            let ms: Vec<PeerMember> = members(w, 100.0, None)
                .into_iter()
                .filter(|p| !p.observation.key.operation.ends_with("=6}"))
                .collect();
            found = m.observe(window(w), ms);
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].top_feature, Feature::RequestRate);
    }

    #[test]
    fn small_groups_and_uniform_groups_report_nothing() {
        let mut m = PeerMonitor::new(PeerConfig::default());
        for w in 0..6 {
            let three: Vec<PeerMember> = members(w, 2.5, Some((1, 1.0)))
                .into_iter()
                .take(3)
                .collect();
            assert!(m.observe(window(w), three).is_empty());
        }
        let mut m = PeerMonitor::new(PeerConfig::default());
        for w in 0..6 {
            let same: Vec<PeerMember> = (0..8).map(|p| member(p, 2.5, 0.005)).collect();
            assert!(m.observe(window(w), same).is_empty());
        }
    }
}
