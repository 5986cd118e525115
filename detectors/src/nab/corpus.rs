//! NAB's data as it ships: `data/<category>/<name>.csv` (`timestamp,value`) and
//! `labels/combined_windows.json` (anomaly windows per file), windows turned into row ranges.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDateTime;

use super::NabError;

/// One labelled series.
#[derive(Debug, Clone)]
pub struct LabeledSeries {
    /// Path relative to `data/`, e.g. `realTweets/Twitter_volume_AAPL.csv`.
    pub name: String,
    /// Row timestamps.
    pub timestamps: Vec<NaiveDateTime>,
    /// Row values.
    pub values: Vec<f64>,
    /// Anomaly windows as inclusive row ranges `(left, right)`.
    pub windows: Vec<(usize, usize)>,
}

impl LabeledSeries {
    /// The category directory, e.g. `realTweets`.
    pub fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// The file name without `.csv`.
    pub fn stem(&self) -> &str {
        let file = self.name.rsplit('/').next().unwrap_or(&self.name);
        file.strip_suffix(".csv").unwrap_or(file)
    }

    /// Rows not scored at the start: `min(floor(0.15 n), 750)`.
    pub fn probation(&self) -> usize {
        (self.values.len() * 15 / 100).min(750)
    }
}

/// The whole corpus, files in name order.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Every labelled series.
    pub series: Vec<LabeledSeries>,
}

fn parse_time(path: &str, s: &str) -> Result<NaiveDateTime, NabError> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f").map_err(|e| NabError::Invalid {
        path: path.to_string(),
        message: format!("bad timestamp {s:?}: {e}"),
    })
}

fn read(path: &Path) -> Result<String, NabError> {
    std::fs::read_to_string(path).map_err(|source| NabError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parses one `timestamp,value` CSV.
pub fn parse_csv(path: &str, text: &str) -> Result<(Vec<NaiveDateTime>, Vec<f64>), NabError> {
    let mut times = Vec::new();
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (t, v) = line.split_once(',').ok_or_else(|| NabError::Invalid {
            path: path.to_string(),
            message: format!("line {}: expected timestamp,value", n + 1),
        })?;
        times.push(parse_time(path, t)?);
        values.push(v.trim().parse::<f64>().map_err(|e| NabError::Invalid {
            path: path.to_string(),
            message: format!("line {}: bad value {v:?}: {e}", n + 1),
        })?);
    }
    Ok((times, values))
}

/// The inclusive row range of the window `[start, end]` over `times`.
pub fn window_rows(
    times: &[NaiveDateTime],
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> Option<(usize, usize)> {
    let left = times.iter().position(|t| *t >= start)?;
    let right = times.iter().rposition(|t| *t <= end)?;
    (left <= right).then_some((left, right))
}

impl Corpus {
    /// Reads the corpus under `root` (the directory holding `data/` and `labels/`).
    pub fn load(root: &Path) -> Result<Corpus, NabError> {
        let labels_path = root.join("labels/combined_windows.json");
        let labels: BTreeMap<String, Vec<[String; 2]>> = serde_json::from_str(&read(&labels_path)?)
            .map_err(|e| NabError::Invalid {
                path: labels_path.display().to_string(),
                message: e.to_string(),
            })?;
        let mut series = Vec::with_capacity(labels.len());
        for (name, windows) in labels {
            let path = root.join("data").join(&name);
            let shown = path.display().to_string();
            let (timestamps, values) = parse_csv(&shown, &read(&path)?)?;
            let windows = windows
                .iter()
                .map(|[a, b]| {
                    let (a, b) = (parse_time(&shown, a)?, parse_time(&shown, b)?);
                    window_rows(&timestamps, a, b).ok_or_else(|| NabError::Invalid {
                        path: shown.clone(),
                        message: format!("window {a}..{b} holds no rows"),
                    })
                })
                .collect::<Result<_, _>>()?;
            series.push(LabeledSeries {
                name,
                timestamps,
                values,
                windows,
            });
        }
        Ok(Corpus { series })
    }
}
