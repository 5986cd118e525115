//! The `log_count` measure: matching log records per second, one aggregate query per rule.

use datafusion::prelude::SessionContext;

use super::{EvalError, Sample, Window, floats, label_column, quote, strings};
use crate::rules::model::{LogSelector, SpanSelector};

/// The query counting `logs` of `selector`'s service (and attributes) in `window`, per
/// `group_by` series (`g0`, `g1`, … and `n`).
pub fn query(
    selector: &SpanSelector,
    logs: &LogSelector,
    group_by: &[String],
    window: Window,
) -> String {
    let groups: Vec<String> = group_by
        .iter()
        .enumerate()
        .map(|(i, g)| format!("{} AS g{i}", label_column(g, "event_name")))
        .collect();
    let mut conditions = vec![window.sql()];
    if let Some(s) = &selector.service {
        conditions.push(format!("service_name = {}", quote(s)));
    }
    for (k, v) in &selector.attributes {
        conditions.push(format!("attributes[{}] = {}", quote(k), quote(v)));
    }
    if let Some(min) = logs.min_severity {
        conditions.push(format!("severity_number >= {}", min.number()));
    }
    if let Some(needle) = &logs.body_contains {
        conditions.push(format!("strpos(body, {}) > 0", quote(needle)));
    }
    let select = groups
        .iter()
        .cloned()
        .chain(std::iter::once("count(*) AS n".to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "SELECT {select} FROM logs WHERE {}",
        conditions.join(" AND ")
    );
    if !groups.is_empty() {
        let positions: Vec<String> = (1..=groups.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", positions.join(", ")));
    }
    sql
}

/// Matching log records per second over `window`, per series.
pub async fn evaluate(
    ctx: &SessionContext,
    selector: &SpanSelector,
    logs: &LogSelector,
    group_by: &[String],
    window: Window,
) -> Result<Vec<Sample>, EvalError> {
    let batches = ctx
        .sql(&query(selector, logs, group_by, window))
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let n = floats(b, "n")?;
        let labels = (0..group_by.len())
            .map(|i| strings(b, &format!("g{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..b.num_rows() {
            out.push(Sample {
                labels: group_by
                    .iter()
                    .zip(&labels)
                    .map(|(k, col)| (k.clone(), super::text(col, row).to_string()))
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
                value: n.value(row) / window.seconds(),
                context: Default::default(),
            });
        }
    }
    Ok(out)
}
