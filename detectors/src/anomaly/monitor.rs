//! Learns normal behaviour per series and scores each new window of features. Every feature
//! has a univariate detector (level and change surprise against its rolling baseline) and a
//! seasonal baseline (the periods its history repeats with, forecast by MSTL/ETS); the
//! series' whole feature vector, shingled over the last windows, has an isolation forest
//! trained on its recent history. The ensemble score is the largest of them, in [0, 1];
//! contributions say which features made it.

use std::collections::{HashMap, VecDeque};

use linfa::traits::Fit;
use ndarray::{Array2, ArrayView1};

use super::changepoint::{ChangepointConfig, Changepoints};
use super::iforest::{IsolationForest, IsolationForestParams, dataset};
use super::seasonal::SeasonalConfig;
use super::univariate::{Cause, NoiseFloor, Scored, UnivariateConfig, UnivariateDetector};
use crate::features::{Feature, Observation, SeriesKey};
use vigil_store::query::Window;

/// How series are learnt and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// A window whose score reaches this is an anomaly.
    pub sensitivity: f64,
    /// Windows a series must have been seen before it can report anomalies.
    pub warm_up: usize,
    /// Windows of history the baselines and the forest learn from.
    pub history: usize,
    /// Windows per shingle (the current one and the ones before it).
    pub shingle: usize,
    /// Windows between refits of a series' forest.
    pub refit_every: usize,
    /// Each feature's seasonal baseline (its `history` is the monitor's): periods of 4
    /// windows up to a third of the history, refitted every 60 windows.
    pub seasonal: SeasonalConfig,
    /// Each feature's changepoint detector (level shifts that hold).
    pub changepoints: ChangepointConfig,
    /// The forest's parameters. Smaller than the paper's defaults: a series keeps its own
    /// forest, and 50 trees of 128 samples (about 100 KiB) instead of 100 of 256 (about
    /// 800 KiB) keeps a thousand series in memory and in the scoring budget.
    pub forest: IsolationForestParams,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            sensitivity: 0.8,
            warm_up: 30,
            history: 360,
            shingle: 3,
            refit_every: 30,
            seasonal: SeasonalConfig {
                refit_every: 60,
                ..SeasonalConfig::default()
            },
            changepoints: ChangepointConfig::default(),
            forest: IsolationForestParams {
                trees: 50,
                sample_size: 128,
                ..IsolationForestParams::default()
            },
        }
    }
}

/// The detectors an anomaly can come from.
pub const DETECTORS: [&str; 4] = ["baseline", "seasonal", "iforest", "changepoint"];

/// One series' anomalous window.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Which series.
    pub key: SeriesKey,
    /// Which window.
    pub window: Window,
    /// The ensemble score in [0, 1].
    pub score: f64,
    /// The detectors whose own score reached the sensitivity.
    pub detectors: Vec<&'static str>,
    /// The feature that contributed most.
    pub top_feature: Feature,
    /// Each measured feature's share of the anomaly (they add up to 1).
    pub contributions: Vec<(Feature, f64)>,
    /// Each measured feature's baseline.
    pub expected: Vec<(Feature, f64)>,
    /// Each measured feature's value.
    pub observed: Vec<(Feature, f64)>,
    /// Exemplar traces from the window.
    pub trace_ids: Vec<String>,
}

/// What the monitor knows, for the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorStatus {
    /// Series with a model.
    pub series: usize,
    /// Series still warming up (no anomalies until they have `warm_up` windows).
    pub warming_up: usize,
    /// The series warming up, each with the windows it has seen so far.
    pub warming: Vec<(SeriesKey, usize)>,
}

type Row = [f64; Feature::COUNT];

/// Appends the shingle of `len` rows ending with `row`, whose predecessors are
/// `rows[..end]` (the oldest one repeats when there are too few).
fn shingle(rows: &VecDeque<Row>, end: usize, row: &Row, len: usize, out: &mut Vec<f64>) {
    let past = len - 1;
    let start = end.saturating_sub(past);
    for _ in 0..past.saturating_sub(end) {
        out.extend_from_slice(rows.front().unwrap_or(row));
    }
    for r in rows.range(start..end) {
        out.extend_from_slice(r);
    }
    out.extend_from_slice(row);
}

#[derive(Debug)]
struct SeriesModel {
    baselines: Vec<UnivariateDetector>,
    /// Each feature's changepoint detector.
    changes: Vec<Changepoints>,
    /// Feature vectors of past windows, oldest first (unmeasured features carried forward).
    rows: VecDeque<Row>,
    last: Row,
    forest: Option<IsolationForest>,
    since_fit: usize,
    /// Offset of this series' refits, so series created together do not all refit in the
    /// same window.
    phase: usize,
    seen: usize,
    idle: usize,
}

impl SeriesModel {
    fn new(config: &MonitorConfig, phase: usize) -> Self {
        let baseline = |f: Feature| {
            let (relative, absolute) = f.noise_floor();
            let mut d = UnivariateDetector::new(UnivariateConfig {
                window: config.history,
                suppress: 0,
                floor: NoiseFloor { relative, absolute },
                seasonal: Some(SeasonalConfig {
                    history: config.history,
                    ..config.seasonal.clone()
                }),
                novelty: None,
                ..UnivariateConfig::default()
            });
            d.stagger(phase % config.seasonal.refit_every.max(1));
            d
        };
        let changes = |f: Feature| {
            let (relative, absolute) = f.noise_floor();
            Changepoints::new(
                config.changepoints.clone(),
                NoiseFloor { relative, absolute },
            )
        };
        SeriesModel {
            baselines: Feature::ALL.into_iter().map(baseline).collect(),
            changes: Feature::ALL.into_iter().map(changes).collect(),
            rows: VecDeque::with_capacity(config.history + 1),
            last: [0.0; Feature::COUNT],
            forest: None,
            since_fit: 0,
            phase: phase % config.refit_every.max(1),
            seen: 0,
            idle: 0,
        }
    }

    /// Whether the forest is due to be (re)fitted on the current history.
    fn forest_due(&self, config: &MonitorConfig) -> bool {
        self.rows.len() >= config.warm_up.min(config.history).max(2)
            && (self.forest.is_none() || self.since_fit >= config.refit_every)
    }

    /// Whether the forest or a seasonal baseline is due.
    fn refit_due(&self, config: &MonitorConfig) -> bool {
        self.forest_due(config) || self.baselines.iter().any(UnivariateDetector::seasonal_due)
    }

    /// Refits what is due: the forest, and each feature's seasonal baseline.
    fn refit(&mut self, config: &MonitorConfig) {
        for b in self.baselines.iter_mut().filter(|b| b.seasonal_due()) {
            b.refit_seasonal();
        }
        if self.forest_due(config) {
            self.refit_forest(config);
        }
    }

    fn refit_forest(&mut self, config: &MonitorConfig) {
        let len = config.shingle.max(1);
        let width = len * Feature::COUNT;
        let mut flat = Vec::with_capacity(self.rows.len() * width);
        for (i, row) in self.rows.iter().enumerate() {
            shingle(&self.rows, i, row, len, &mut flat);
        }
        let first = self.forest.is_none();
        if let Ok(x) = Array2::from_shape_vec((self.rows.len(), width), flat) {
            self.forest = config.forest.fit(&dataset(x)).ok();
        }
        self.since_fit = if first { self.phase } else { 0 };
    }

    fn observe(
        &mut self,
        config: &MonitorConfig,
        o: &Observation,
        window: Window,
    ) -> Option<Anomaly> {
        let mut row = self.last;
        let mut scored: Vec<(Feature, Scored, f64)> = Vec::new();
        let mut shifts: Vec<(Feature, f64)> = Vec::new();
        for f in Feature::ALL {
            if let Some(v) = o.values[f.index()] {
                row[f.index()] = v;
                scored.push((f, self.baselines[f.index()].update(v), v));
                let shift = self.changes[f.index()].update(v);
                shifts.push((f, shift.map_or(0.0, |c| c.probability)));
            }
        }
        let forest = self.forest.as_ref().map(|forest| {
            let mut x = Vec::with_capacity(config.shingle * Feature::COUNT);
            shingle(
                &self.rows,
                self.rows.len(),
                &row,
                config.shingle.max(1),
                &mut x,
            );
            (forest.score(ArrayView1::from(&x)), x)
        });
        self.last = row;
        self.rows.push_back(row);
        if self.rows.len() > config.history {
            self.rows.pop_front();
        }
        self.seen += 1;
        self.since_fit += 1;
        if self.seen <= config.warm_up {
            return None;
        }
        let by = |seasonal: bool| {
            scored
                .iter()
                .filter(|(_, s, _)| (s.cause == Cause::Seasonal) == seasonal)
                .map(|(_, s, _)| s.raw)
                .fold(0.0, f64::max)
        };
        let (rolling, seasonal) = (by(false), by(true));
        let baseline = rolling.max(seasonal);
        let forest_score = forest.as_ref().map_or(0.0, |(s, _)| *s);
        let changepoint = shifts.iter().map(|(_, p)| *p).fold(0.0, f64::max);
        let score = baseline.max(forest_score).max(changepoint);
        if score < config.sensitivity || scored.is_empty() {
            return None;
        }
        // Each detector's view of which features matter, weighted by its score.
        let mut shares = [0.0; Feature::COUNT];
        let total: f64 = scored.iter().map(|(_, s, _)| s.raw).sum();
        for (f, s, _) in &scored {
            if total > 0.0 {
                shares[f.index()] += baseline * s.raw / total;
            }
        }
        let total: f64 = shifts.iter().map(|(_, p)| p).sum();
        for (f, p) in &shifts {
            if total > 0.0 {
                shares[f.index()] += changepoint * p / total;
            }
        }
        if let (Some(model), Some((s, x))) = (&self.forest, &forest) {
            // Which dimensions of this window's shingle isolated it.
            let (_, per_dim) = model.explain(ArrayView1::from(x));
            for (d, c) in per_dim.iter().enumerate() {
                shares[d % Feature::COUNT] += s * c;
            }
        }
        let measured: Vec<Feature> = scored.iter().map(|(f, _, _)| *f).collect();
        let sum: f64 = measured.iter().map(|f| shares[f.index()]).sum();
        let contributions: Vec<(Feature, f64)> = measured
            .iter()
            .map(|f| {
                (
                    *f,
                    if sum > 0.0 {
                        shares[f.index()] / sum
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let top_feature = contributions
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(measured[0], |(f, _)| *f);
        let detectors = [rolling, seasonal, forest_score, changepoint]
            .iter()
            .zip(DETECTORS)
            .filter(|(s, _)| **s >= config.sensitivity)
            .map(|(_, d)| d)
            .collect();
        Some(Anomaly {
            key: o.key.clone(),
            window,
            score,
            detectors,
            top_feature,
            contributions,
            expected: scored.iter().map(|(f, s, _)| (*f, s.expected)).collect(),
            observed: scored.iter().map(|(f, _, v)| (*f, *v)).collect(),
            trace_ids: o.trace_ids.clone(),
        })
    }
}

/// Every series' model.
#[derive(Debug, Default)]
pub struct Monitor {
    config: MonitorConfig,
    models: HashMap<SeriesKey, SeriesModel>,
}

impl Monitor {
    /// A monitor that knows no series yet.
    pub fn new(config: MonitorConfig) -> Self {
        Monitor {
            config,
            models: HashMap::new(),
        }
    }

    /// Scores one window: `observations` of the series with telemetry in it; every other
    /// known series is observed idle (no requests). Series idle for a whole history are
    /// forgotten. Returns the anomalies, ordered by series.
    pub fn observe(&mut self, window: Window, observations: Vec<Observation>) -> Vec<Anomaly> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(observations.len());
        for o in observations {
            let phase = self.models.len();
            let model = self
                .models
                .entry(o.key.clone())
                .or_insert_with(|| SeriesModel::new(&self.config, phase));
            model.idle = 0;
            out.extend(model.observe(&self.config, &o, window));
            seen.insert(o.key);
        }
        let config = &self.config;
        for (key, model) in self.models.iter_mut().filter(|(k, _)| !seen.contains(*k)) {
            model.idle += 1;
            out.extend(model.observe(config, &Observation::idle(key.clone()), window));
        }
        self.models.retain(|_, m| m.idle <= config.history);
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Refits the forests and seasonal baselines that are due (each series' forest every
    /// `refit_every` windows, its seasonal baselines every `seasonal.refit_every`, staggered).
    /// Kept apart from [`Monitor::observe`] so a window's scores never wait for training;
    /// returns how many were refitted.
    pub fn refit_due(&mut self) -> usize {
        let config = &self.config;
        let mut n = 0;
        for m in self.models.values_mut().filter(|m| m.refit_due(config)) {
            m.refit(config);
            n += 1;
        }
        n
    }

    /// Series known and warming up.
    pub fn status(&self) -> MonitorStatus {
        let mut warming: Vec<(SeriesKey, usize)> = self
            .models
            .iter()
            .filter(|(_, m)| m.seen <= self.config.warm_up)
            .map(|(k, m)| (k.clone(), m.seen))
            .collect();
        warming.sort();
        MonitorStatus {
            series: self.models.len(),
            warming_up: warming.len(),
            warming,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SeriesKey {
        SeriesKey {
            service: "payment".into(),
            operation: String::new(),
        }
    }

    /// A steady service: ~100 req/s, 1% errors, p50 20 ms, p95 40 ms, p99 60 ms, wiggling.
    fn steady(i: usize, latency_factor: f64) -> Observation {
        let w = ((i as f64) * 1.3).sin();
        let mut o = Observation::empty(key());
        o.values = [
            Some(100.0 + 5.0 * w),
            Some(0.01 + 0.002 * w),
            Some((0.020 + 0.001 * w) * latency_factor),
            Some((0.040 + 0.002 * w) * latency_factor),
            Some((0.060 + 0.003 * w) * latency_factor),
            Some(0.0),
            None,
            None,
        ];
        o.trace_ids = vec![format!("{i:032x}")];
        o
    }

    /// One window as the runner handles it: score, then refit what is due.
    fn step(m: &mut Monitor, i: usize, observations: Vec<Observation>) -> Vec<Anomaly> {
        let out = m.observe(window(i), observations);
        m.refit_due();
        out
    }

    fn window(i: usize) -> Window {
        let end = (i as i64 + 1) * 10_000_000_000;
        Window {
            start: end - 10_000_000_000,
            end,
        }
    }

    #[test]
    fn steady_windows_are_quiet_and_a_latency_jump_is_explained_by_latency() {
        let mut m = Monitor::new(MonitorConfig::default());
        let mut quiet = Vec::new();
        for i in 0..200 {
            quiet.extend(step(&mut m, i, vec![steady(i, 1.0)]));
        }
        assert!(quiet.is_empty(), "{quiet:?}");
        let found = step(&mut m, 200, vec![steady(200, 5.0)]);
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert!(a.score >= 0.8 && a.score <= 1.0, "{a:?}");
        assert!(a.top_feature.name().starts_with("latency_"), "{a:?}");
        let sum: f64 = a.contributions.iter().map(|(_, c)| c).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        let expected = a.expected.iter().find(|(f, _)| *f == Feature::LatencyP95);
        assert!(
            expected.is_some_and(|(_, v)| (v - 0.040).abs() < 0.005),
            "{a:?}"
        );
        assert_eq!(a.trace_ids, vec![format!("{:032x}", 200)]);
    }

    #[test]
    fn a_modest_shift_that_holds_is_a_changepoint() {
        let mut m = Monitor::new(MonitorConfig::default());
        for i in 0..200 {
            assert!(
                step(&mut m, i, vec![steady(i, 1.0)]).is_empty(),
                "window {i}"
            );
        }
        // Latency 15% up: a few of its wiggles, too little for one window to stand out.
        let first = step(&mut m, 200, vec![steady(200, 1.15)]);
        assert!(first.is_empty(), "{first:?}");
        let found: Vec<Anomaly> = (201..206)
            .flat_map(|i| step(&mut m, i, vec![steady(i, 1.15)]))
            .collect();
        let a = found.first().unwrap_or_else(|| panic!("no changepoint"));
        assert_eq!(a.detectors, vec!["changepoint"], "{a:?}");
        assert!(a.top_feature.name().starts_with("latency_"), "{a:?}");
    }

    #[test]
    fn nothing_is_reported_while_warming_up_and_silence_is_an_observation() {
        let config = MonitorConfig::default();
        let mut m = Monitor::new(config.clone());
        for i in 0..config.warm_up {
            assert!(step(&mut m, i, vec![steady(i, if i == 20 { 10.0 } else { 1.0 })]).is_empty());
        }
        assert_eq!(m.status().warming_up, 1);
        for i in config.warm_up..100 {
            step(&mut m, i, vec![steady(i, 1.0)]);
        }
        assert_eq!(m.status().warming_up, 0);
        // The service stops sending: its request rate drops to zero.
        let found = step(&mut m, 100, Vec::new());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].top_feature, Feature::RequestRate);
    }

    #[test]
    fn a_periodic_batch_is_learnt_and_a_burst_out_of_phase_is_not() {
        // A batch job doubles the request rate for 2 windows in every 12.
        let batch = |i: usize, burst: bool| {
            let mut o = steady(i, 1.0);
            o.values[Feature::RequestRate.index()] = Some(if burst { 300.0 } else { 100.0 });
            o
        };
        let mut m = Monitor::new(MonitorConfig::default());
        let mut in_phase = Vec::new();
        for i in 0..300 {
            let found = step(&mut m, i, vec![batch(i, i % 12 < 2)]);
            if i >= 150 {
                in_phase.extend(found);
            }
        }
        assert!(in_phase.is_empty(), "{in_phase:?}");
        for i in 300..306 {
            assert!(step(&mut m, i, vec![batch(i, i % 12 < 2)]).is_empty());
        }
        // The same burst half a cycle late: the shingles look like the usual burst, and the
        // rolling baseline's spread covers it; only the seasonal baseline knows it is early.
        let found = step(&mut m, 306, vec![batch(306, true)]);
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(a.top_feature, Feature::RequestRate, "{a:?}");
        assert!(a.detectors.contains(&"seasonal"), "{a:?}");
        let expected = a.expected.iter().find(|(f, _)| *f == Feature::RequestRate);
        assert!(
            expected.is_some_and(|(_, v)| (v - 100.0).abs() < 20.0),
            "the forecast for this point in the cycle, not the mean of 133: {a:?}"
        );
    }
}
