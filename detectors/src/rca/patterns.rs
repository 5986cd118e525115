//! Log patterns: bodies with their variable parts (numbers, hex ids) replaced by `<*>`,
//! counted per service in a window by the query engine, with their severity, so new or
//! surging messages stand out.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_store::Session;

use crate::eval::EvalError;
use vigil_store::query::{Sql, Window, attribute, floats, strings, text};
use vigil_store::sql;

/// One pattern's count in a window, with an example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternCount {
    /// Records.
    pub count: f64,
    /// One record's body.
    pub sample: String,
    /// The trace of a record carrying one.
    pub trace_id: String,
    /// The highest severity number among its records (17 and above: errors).
    pub severity: f64,
    /// Records carrying an `exception.type` attribute.
    pub exceptions: f64,
}

/// (service, pattern) → count.
pub type Patterns = BTreeMap<(String, String), PatternCount>;

/// A log body's pattern: numbers and hex ids replaced by `<*>`.
pub fn pattern_of_body() -> Sql {
    sql!(
        "regexp_replace(body, '[0-9a-fA-F]{{8,}}(-[0-9a-fA-F]{{4,}})*|[0-9]+([.][0-9]+)?', '<*>', 'g')"
    )
}

/// The SQL counting patterns in `w`.
pub fn patterns_sql(w: Window) -> Sql {
    sql!(
        "SELECT service_name, {} AS pattern, count(*) AS n, first_value(body) AS sample, \
           max(trace_id) AS trace_id, max(severity_number) AS severity, \
           sum(CASE WHEN {} IS NOT NULL THEN 1 ELSE 0 END) AS exceptions \
         FROM logs WHERE {} GROUP BY 1, 2",
        pattern_of_body(),
        attribute("exception.type"),
        w.sql()
    )
}

/// Every pattern's count in `w`.
pub async fn patterns(ctx: &Session, w: Window) -> Result<Patterns, EvalError> {
    let mut out = Patterns::new();
    for b in ctx.fetch(&patterns_sql(w)).await? {
        let (service, pattern) = (strings(&b, "service_name")?, strings(&b, "pattern")?);
        let (n, sample, trace) = (
            floats(&b, "n")?,
            strings(&b, "sample")?,
            strings(&b, "trace_id")?,
        );
        let (severity, exceptions) = (floats(&b, "severity")?, floats(&b, "exceptions")?);
        for i in 0..b.num_rows() {
            out.insert(
                (text(&service, i).to_string(), text(&pattern, i).to_string()),
                PatternCount {
                    count: n.value(i),
                    sample: text(&sample, i).to_string(),
                    trace_id: text(&trace, i).to_string(),
                    severity: severity.value(i),
                    exceptions: exceptions.value(i),
                },
            );
        }
    }
    Ok(out)
}
