//! Attribute values over-represented among an operation's slow or failed spans: for each
//! span and resource attribute value, its share among the bad spans against its share among
//! the rest (e.g. `host.name=node-3` on 90% of slow spans but 10% of the others).

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, MapArray, RecordBatch};
use serde::Serialize;
use vigil_store::Session;

use crate::eval::EvalError;
use vigil_store::query::{StatusCode, Window, eq, floats, strings, text, to_strings};
use vigil_store::sql;

/// Most spans of one operation examined.
const MAX_SPANS: usize = 5_000;
/// Fewest bad spans carrying a value for it to be named.
const MIN_BAD: usize = 3;

/// A value found far more often on bad spans than on the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeValue {
    /// The service.
    pub service: String,
    /// The operation.
    pub operation: String,
    /// Attribute key (span or resource attribute).
    pub key: String,
    /// Its value.
    pub value: String,
    /// Share of the slow or failed spans carrying it.
    pub bad_share: f64,
    /// Share of the other spans carrying it.
    pub good_share: f64,
    /// Slow or failed spans examined.
    pub bad_spans: usize,
    /// One bad span's trace.
    pub trace_id: String,
}

fn pairs(map: &MapArray, i: usize, out: &mut Vec<(String, String)>) -> Result<(), EvalError> {
    let entries = map.value(i);
    let keys = to_strings(entries.column(0))?;
    let values = to_strings(entries.column(1))?;
    for j in 0..entries.len() {
        out.push((text(&keys, j).to_string(), text(&values, j).to_string()));
    }
    Ok(())
}

fn each_span(
    b: &RecordBatch,
    f: &mut dyn FnMut(usize, Vec<(String, String)>),
) -> Result<(), EvalError> {
    let maps: Vec<&MapArray> = ["attributes", "resource_attributes"]
        .iter()
        .filter_map(|c| b.column_by_name(c).map(|c| c.as_map()))
        .collect();
    for i in 0..b.num_rows() {
        let mut kv = Vec::new();
        for m in &maps {
            pairs(m, i, &mut kv)?;
        }
        f(i, kv);
    }
    Ok(())
}

/// Values of `service`'s `operation` in `w` over-represented among spans that failed or took
/// at least `slow_ns`, best first.
pub async fn over_represented(
    ctx: &Session,
    w: Window,
    service: &str,
    operation: &str,
    slow_ns: f64,
) -> Result<Vec<AttributeValue>, EvalError> {
    let sql = sql!(
        "SELECT status_code, duration_ns, trace_id, attributes, resource_attributes FROM spans \
         WHERE {} AND {} AND {} LIMIT {}",
        w.sql(),
        eq("service_name", service),
        eq("span_name", operation),
        MAX_SPANS
    );
    // value → (bad count, good count, a bad trace)
    let mut counts: HashMap<(String, String), (usize, usize, String)> = HashMap::new();
    let (mut bad_total, mut good_total) = (0usize, 0usize);
    let mut distinct: BTreeMap<String, usize> = BTreeMap::new();
    for b in ctx.fetch(&sql).await? {
        let (status, duration, traces) = (
            strings(&b, "status_code")?,
            floats(&b, "duration_ns")?,
            strings(&b, "trace_id")?,
        );
        each_span(&b, &mut |i, kv| {
            let bad = text(&status, i) == StatusCode::Error.as_str()
                || (!duration.is_null(i) && duration.value(i) >= slow_ns);
            if bad {
                bad_total += 1;
            } else {
                good_total += 1;
            }
            for pair in kv {
                let c = counts.entry(pair).or_insert_with(|| (0, 0, String::new()));
                if bad {
                    c.0 += 1;
                    if c.2.is_empty() {
                        c.2 = text(&traces, i).to_string();
                    }
                } else {
                    c.1 += 1;
                }
            }
        })?;
    }
    for (key, _) in counts.keys() {
        *distinct.entry(key.clone()).or_default() += 1;
    }
    let spans = bad_total + good_total;
    let mut out: Vec<AttributeValue> = counts
        .into_iter()
        .filter(|((key, _), (bad, _, _))| {
            // Identifiers (a value per span) explain nothing.
            *bad >= MIN_BAD && distinct.get(key).copied().unwrap_or(0) * 2 <= spans
        })
        .map(|((key, value), (bad, good, trace_id))| AttributeValue {
            service: service.to_string(),
            operation: operation.to_string(),
            key,
            value,
            bad_share: bad as f64 / bad_total.max(1) as f64,
            good_share: good as f64 / good_total.max(1) as f64,
            bad_spans: bad_total,
            trace_id,
        })
        .filter(|a| a.bad_share >= 0.5 && a.bad_share - a.good_share >= 0.3)
        .collect();
    out.sort_by(|a, b| {
        (b.bad_share - b.good_share)
            .total_cmp(&(a.bad_share - a.good_share))
            .then_with(|| (&a.key, &a.value).cmp(&(&b.key, &b.value)))
    });
    Ok(out)
}
