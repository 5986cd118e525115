//! Metric series per service in a window: the mean of gauges and non-monotonic sums, the
//! increase per second of monotonic counters, with their spread, so a series that moved at
//! the time of an anomaly can be compared with its baseline.

use std::collections::BTreeMap;

use arrow::array::Array;
use datafusion::prelude::SessionContext;

use crate::eval::{EvalError, Window, floats, strings, text};

/// One series' level in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Mean value (gauges) or increase per second (counters).
    pub value: f64,
    /// Standard deviation of the points (0 for counters).
    pub spread: f64,
}

/// (service, metric) → level.
pub type Levels = BTreeMap<(String, String), Level>;

/// The SQL giving every series' level in `w`.
pub fn levels_sql(w: Window) -> String {
    format!(
        "SELECT service_name, metric_name, \
           CASE WHEN bool_or(coalesce(is_monotonic, false)) \
                THEN (max(value) - min(value)) / {secs} ELSE avg(value) END AS level, \
           CASE WHEN bool_or(coalesce(is_monotonic, false)) THEN 0 \
                ELSE coalesce(stddev(value), 0) END AS spread \
         FROM metrics WHERE {w} AND value IS NOT NULL GROUP BY 1, 2",
        secs = w.seconds().max(1.0),
        w = w.sql()
    )
}

/// Every series' level in `w`.
pub async fn levels(ctx: &SessionContext, w: Window) -> Result<Levels, EvalError> {
    let mut out = Levels::new();
    for b in ctx.sql(&levels_sql(w)).await?.collect().await? {
        let (service, metric) = (strings(&b, "service_name")?, strings(&b, "metric_name")?);
        let (level, spread) = (floats(&b, "level")?, floats(&b, "spread")?);
        for i in 0..b.num_rows() {
            if level.is_null(i) {
                continue;
            }
            out.insert(
                (text(&service, i).to_string(), text(&metric, i).to_string()),
                Level {
                    value: level.value(i),
                    spread: if spread.is_null(i) {
                        0.0
                    } else {
                        spread.value(i)
                    },
                },
            );
        }
    }
    Ok(out)
}
