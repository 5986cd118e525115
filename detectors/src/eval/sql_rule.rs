//! SQL rules: a read-only SELECT whose `value` column is the measured value and whose other
//! columns are the series' labels.

use vigil_store::{ReadLimits, Session};

use super::{EvalError, Sample};
use vigil_store::query::{floats, text, to_strings};

/// Runs `query` (DDL, DML and other statements refused) and reads one sample per row with a
/// non-null `value`.
pub async fn evaluate(ctx: &Session, query: &str) -> Result<Vec<Sample>, EvalError> {
    let answer = ctx.query(query, ReadLimits::MAX_ROWS).await?;
    if answer.truncated {
        return Err(EvalError::Shape(format!(
            "more than {} series; aggregate further",
            ReadLimits::MAX_ROWS
        )));
    }
    let batches = answer.batches;
    let mut out = Vec::new();
    for b in &batches {
        let value = floats(b, "value")?;
        let schema = b.schema();
        let labels = schema
            .fields()
            .iter()
            .zip(b.columns())
            .filter(|(f, _)| f.name() != "value")
            .map(|(f, col)| Ok((f.name().clone(), to_strings(col)?)))
            .collect::<Result<Vec<_>, EvalError>>()?;
        for row in 0..b.num_rows() {
            if arrow::array::Array::is_null(&value, row) {
                continue;
            }
            out.push(Sample {
                labels: labels
                    .iter()
                    .map(|(name, col)| (name.clone(), text(col, row).to_string()))
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
                value: value.value(row),
                context: Default::default(),
            });
        }
    }
    Ok(out)
}
