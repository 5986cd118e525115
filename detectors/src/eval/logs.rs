//! The `log_count` measure: matching log records per second, one aggregate query per rule.

use vigil_store::Session;

use vigil_store::query::{Sql, Window, all, floats, lit, strings};
use vigil_store::sql;

use super::{EvalError, Sample, label_column, selector_conditions};
use crate::rules::selector::{LogSelector, SpanSelector};

/// The query counting `logs` of `selector`'s service (and attributes) in `window`, per
/// `group_by` series (`g0`, `g1`, … and `n`).
pub fn query(
    selector: &SpanSelector,
    logs: &LogSelector,
    group_by: &[String],
    window: Window,
) -> Sql {
    let groups: Vec<Sql> = group_by
        .iter()
        .enumerate()
        .map(|(i, g)| sql!("{} AS g{}", label_column(g, "event_name"), i))
        .collect();
    let mut conditions = vec![window.sql()];
    conditions.extend(selector_conditions(
        selector.service.as_deref(),
        &selector.attributes,
    ));
    if let Some(min) = logs.min_severity {
        conditions.push(sql!("severity_number >= {}", min));
    }
    if let Some(needle) = &logs.body_contains {
        conditions.push(sql!("strpos(body, {}) > 0", lit(needle)));
    }
    let n = groups.len();
    let select = Sql::join(groups.into_iter().chain([Sql::from("count(*) AS n")]), ", ");
    let mut sql = sql!("SELECT {} FROM logs WHERE {}", select, all(conditions));
    if n > 0 {
        let positions = (1..=n).map(|i| sql!("{}", i));
        sql.push(sql!(" GROUP BY {}", Sql::join(positions, ", ")));
    }
    sql
}

/// Matching log records per second over `window`, per series.
pub async fn evaluate(
    ctx: &Session,
    selector: &SpanSelector,
    logs: &LogSelector,
    group_by: &[String],
    window: Window,
) -> Result<Vec<Sample>, EvalError> {
    let batches = ctx.fetch(&query(selector, logs, group_by, window)).await?;
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
                    .map(|(k, col)| (k.clone(), vigil_store::query::text(col, row).to_string()))
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
                value: n.value(row) / window.seconds(),
                context: Default::default(),
            });
        }
    }
    Ok(out)
}
