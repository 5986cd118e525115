//! `vigil nab`: runs the streaming anomaly detector over the Numenta Anomaly Benchmark (each
//! point scored from earlier points only, one parameter set for every file), prints NAB's
//! three profile scores and per-category scores, and can write NAB's results layout so the
//! official scorer can check them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use vigil_detectors::anomaly::streaming::{self, StreamConfig};
use vigil_detectors::anomaly::univariate::{self, UnivariateConfig};
use vigil_detectors::nab::{Corpus, LabeledSeries, PROFILES, ProfileScore, score};

use crate::cli::{NabArgs, NabDetector};

/// Scores one series with `detector`, each point from earlier points only.
fn score_series(detector: NabDetector, values: &[f64]) -> Vec<f64> {
    match detector {
        NabDetector::Vigil => univariate::score_series(values, &UnivariateConfig::default()),
        NabDetector::Iforest => streaming::score_series(values, &StreamConfig::default()),
    }
}

/// Scores every series, on all cores.
fn detect(series: &[LabeledSeries], detector: NabDetector) -> Vec<Vec<f64>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<Vec<f64>> = vec![Vec::new(); series.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    (w..series.len())
                        .step_by(workers)
                        .map(|i| (i, score_series(detector, &series[i].values)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, scores) in h.join().unwrap_or_default() {
                out[i] = scores;
            }
        }
    });
    out
}

/// Writes `DIR/<detector>/<category>/<detector>_<file>.csv`.
fn write_results(
    dir: &Path,
    name: &str,
    series: &[LabeledSeries],
    scores: &[Vec<f64>],
) -> anyhow::Result<()> {
    for (s, sc) in series.iter().zip(scores) {
        let folder = dir.join(name).join(s.category());
        std::fs::create_dir_all(&folder)?;
        let mut csv = String::from("timestamp,value,anomaly_score,label\n");
        for (i, ((t, v), a)) in s.timestamps.iter().zip(&s.values).zip(sc).enumerate() {
            let label = u8::from(s.windows.iter().any(|(l, r)| (*l..=*r).contains(&i)));
            let _ = writeln!(csv, "{},{v},{a},{label}", t.format("%Y-%m-%d %H:%M:%S"));
        }
        let path = folder.join(format!("{name}_{}.csv", s.stem()));
        std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Reads the `anomaly_score` column of each series' file in `dir`, NAB's results layout for
/// the detector named like `dir`.
fn read_results(dir: &Path, series: &[LabeledSeries]) -> anyhow::Result<Vec<Vec<f64>>> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the results folder needs a name (the detector's)")?;
    series
        .iter()
        .map(|s| {
            let path = dir
                .join(s.category())
                .join(format!("{name}_{}.csv", s.stem()));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut lines = text.lines();
            let column = lines
                .next()
                .and_then(|h| h.split(',').position(|c| c.trim() == "anomaly_score"))
                .with_context(|| format!("{}: no anomaly_score column", path.display()))?;
            let scores = lines
                .enumerate()
                .map(|(i, line)| {
                    line.split(',')
                        .nth(column)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .with_context(|| format!("{}:{}: no score", path.display(), i + 2))
                })
                .collect::<anyhow::Result<Vec<f64>>>()?;
            anyhow::ensure!(
                scores.len() == s.values.len(),
                "{}: {} rows, the data has {}",
                path.display(),
                scores.len(),
                s.values.len()
            );
            Ok(scores)
        })
        .collect()
}

/// Runs `vigil nab`.
pub fn run(args: NabArgs) -> anyhow::Result<()> {
    let mut corpus = Corpus::load(&args.data)?;
    if !args.categories.is_empty() {
        corpus
            .series
            .retain(|s| args.categories.iter().any(|c| c == s.category()));
    }
    anyhow::ensure!(!corpus.series.is_empty(), "no NAB files selected");
    let detector = args.detector;
    let rows: usize = corpus.series.iter().map(|s| s.values.len()).sum();
    let files = corpus.series.len();
    let scores = if let Some(dir) = &args.score_results {
        let scores = read_results(dir, &corpus.series)?;
        println!(
            "NAB: {files} files, {rows} rows, results read from {}",
            dir.display()
        );
        scores
    } else {
        let started = Instant::now();
        let scores = detect(&corpus.series, detector);
        println!(
            "NAB: {files} files, {rows} rows, detector {} in {:.2} s",
            detector.name(),
            started.elapsed().as_secs_f64()
        );
        scores
    };
    println!("{}", ProfileScore::HEADER);
    for p in PROFILES {
        println!("{}", score(&corpus.series, &scores, p));
    }
    println!("per category (standard profile, threshold swept within the category):");
    let mut categories: Vec<&str> = corpus.series.iter().map(LabeledSeries::category).collect();
    categories.dedup();
    for c in categories {
        let (series, sc): (Vec<LabeledSeries>, Vec<Vec<f64>>) = corpus
            .series
            .iter()
            .zip(&scores)
            .filter(|(s, _)| s.category() == c)
            .map(|(s, sc)| (s.clone(), sc.clone()))
            .unzip();
        let r = score(&series, &sc, PROFILES[0]);
        println!("  {c:<24} {:>7.1}", r.normalized);
    }
    if let Some(dir) = &args.write_results {
        write_results(dir, detector.name(), &corpus.series, &scores)?;
        println!(
            "results written under {}",
            dir.join(detector.name()).display()
        );
    }
    Ok(())
}
