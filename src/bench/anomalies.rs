//! `vigil bench anomalies`: the cost of scoring one feature window. Feeds a [`Monitor`]
//! synthetic windows of `series` services/operations (seven features each, with noise and a
//! daily-like wave) until every series has a full history and a fitted forest, then times
//! scoring (`observe`, on this one thread) and training (`refit_due`, which runs after a
//! window's anomalies are written) separately for each measured window.

use std::time::{Duration, Instant};

use vigil_detectors::anomaly::monitor::{Monitor, MonitorConfig};
use vigil_detectors::anomaly::rng::Rng;
use vigil_detectors::features::{Feature, Observation, SeriesKey};
use vigil_store::query::Window;

use crate::cli::AnomalyBenchArgs;

const WINDOW_NS: i64 = 10_000_000_000;

fn observations(series: usize, w: usize, rng: &mut Rng) -> Vec<Observation> {
    (0..series)
        .map(|s| {
            let mut o = Observation::empty(SeriesKey {
                service: format!("service-{}", s / 10),
                operation: format!("operation-{}", s % 10),
            });
            let wave = 1.0 + 0.2 * ((w as f64) / 60.0 + s as f64).sin();
            let base = 50.0 + (s % 7) as f64 * 10.0;
            for f in Feature::ALL {
                let level = match f {
                    Feature::RequestRate => base * wave,
                    Feature::ErrorRate => 0.01,
                    Feature::LatencyP50 => 0.02 * wave,
                    Feature::LatencyP95 => 0.05 * wave,
                    Feature::LatencyP99 => 0.08 * wave,
                    Feature::LogErrorRate => 0.2,
                    Feature::ConsumerLag => 3.0,
                    // Watched metrics are series of their own.
                    Feature::Metric => continue,
                };
                o.values[f.index()] = Some(level * (1.0 + 0.05 * (rng.unit() - 0.5)));
            }
            o.trace_ids = vec![format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())];
            o
        })
        .collect()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the benchmark and prints its figures.
pub fn run(args: AnomalyBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.series > 0 && args.windows > 0, "nothing to measure");
    let config = MonitorConfig {
        history: args.history,
        ..MonitorConfig::default()
    };
    let mut monitor = Monitor::new(config.clone());
    let mut rng = Rng::new(7);
    let window = |w: usize| Window {
        start: w as i64 * WINDOW_NS,
        end: (w as i64 + 1) * WINDOW_NS,
    };
    let fill = Instant::now();
    for w in 0..args.history {
        let obs = observations(args.series, w, &mut rng);
        monitor.observe(window(w), obs);
        monitor.refit_due();
    }
    println!(
        "anomaly scoring: {} series x {} features, history {} windows, forest {} trees x {} samples over shingles of {} windows; filled in {:.1} s",
        args.series,
        Feature::COUNT - 1, // every feature but `metric`
        args.history,
        config.forest.trees,
        config.forest.sample_size,
        config.shingle,
        fill.elapsed().as_secs_f64()
    );
    let (mut scoring, mut training) = (Vec::new(), Vec::new());
    let (mut found, mut refits) = (0, 0);
    for w in args.history..args.history + args.windows {
        let obs = observations(args.series, w, &mut rng);
        let t = Instant::now();
        found += monitor.observe(window(w), obs).len();
        scoring.push(t.elapsed());
        let t = Instant::now();
        refits += monitor.refit_due();
        training.push(t.elapsed());
    }
    scoring.sort();
    training.sort();
    let per_series = ms(quantile(&scoring, 0.5)) * 1e3 / args.series as f64;
    println!(
        "scoring per window (one thread): median {:.1} ms, p99 {:.1} ms, max {:.1} ms ({per_series:.1} µs per series; target < 50 ms for 1,000 series)",
        ms(quantile(&scoring, 0.5)),
        ms(quantile(&scoring, 0.99)),
        ms(quantile(&scoring, 1.0)),
    );
    println!(
        "training per window (after the window's anomalies are written): median {:.1} ms, p99 {:.1} ms; {refits} forests refitted over {} windows",
        ms(quantile(&training, 0.5)),
        ms(quantile(&training, 0.99)),
        args.windows
    );
    println!("anomalies reported on steady synthetic load: {found}");
    Ok(())
}
