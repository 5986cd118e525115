//! Scalar functions whose output size their arguments choose (`repeat`, `lpad`, `rpad`,
//! `array_repeat`, `range`, `generate_series`), wrapped so a call that would build more than
//! [`MAX_OUTPUT`] bytes or elements for one batch fails instead of allocating it: function
//! results are not drawn from the queries' memory pool.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::length::length;
use arrow::compute::{cast, kernels::numeric::sub};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};

/// Most bytes (strings) or elements (lists) one call may build for one batch of rows.
pub const MAX_OUTPUT: u64 = 64 << 20;

/// How a function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text's length times `n`.
    Repeat,
    /// `lpad(text, n …)`, `rpad`: `n` characters (up to 4 bytes each).
    Pad,
    /// `array_repeat(element, n)`: `n` elements.
    Count,
    /// `range(stop)`, `range(start, stop [, step])` over integers: `(stop - start) / step`.
    Range,
}

const BOUNDED: [(&str, Growth); 6] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::Count),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
];

/// Replaces the functions above in `ctx` with their bounded forms.
pub fn register(ctx: &SessionContext) {
    for (name, growth) in BOUNDED {
        if let Ok(inner) = ctx.udf(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded {
                inner: ScalarUDF::clone(&inner),
                growth,
            }));
        }
    }
}

/// A function checked against [`MAX_OUTPUT`] before it runs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    growth: Growth,
}

impl Bounded {
    /// What this call would build, in bytes or elements; `None` when the arguments are not
    /// of a kind whose size can be told (dates in `range`), which runs unchecked.
    fn output(&self, args: &ScalarFunctionArgs) -> Result<Option<u64>> {
        let rows = args.number_rows;
        let arg = |i: usize| args.args.get(i).map(|a| a.to_array(rows)).transpose();
        let total = match self.growth {
            Growth::Repeat => match (arg(0)?, arg(1)?) {
                (Some(text), Some(n)) => lengths(&text)?
                    .zip(integers(&n)?)
                    .map(|(len, n)| len.saturating_mul(n.max(0) as u64))
                    .fold(0u64, u64::saturating_add),
                _ => return Ok(None),
            },
            Growth::Pad => match arg(1)? {
                Some(n) => integers(&n)?
                    .map(|n| (n.max(0) as u64).saturating_mul(4))
                    .fold(0u64, u64::saturating_add),
                None => return Ok(None),
            },
            Growth::Count => match arg(1)? {
                Some(n) => integers(&n)?
                    .map(|n| n.max(0) as u64)
                    .fold(0u64, u64::saturating_add),
                None => return Ok(None),
            },
            Growth::Range => {
                let all = (0..args.args.len()).map(arg).collect::<Result<Vec<_>>>()?;
                let all: Vec<ArrayRef> = all.into_iter().flatten().collect();
                if all.iter().any(|a| !a.data_type().is_integer()) {
                    return Ok(None);
                }
                let (span, step) = match all.as_slice() {
                    [stop] => (integer_array(stop)?, None),
                    [start, stop] => (difference(stop, start)?, None),
                    [start, stop, step] => (difference(stop, start)?, Some(integer_array(step)?)),
                    _ => return Ok(None),
                };
                let steps = span.iter().enumerate().map(|(i, span)| {
                    let step = step
                        .as_ref()
                        .map_or(1, |s| s.value(i).unsigned_abs().max(1));
                    span.unwrap_or(0).unsigned_abs() / step
                });
                steps.fold(0u64, u64::saturating_add)
            }
        };
        Ok(Some(total))
    }
}

/// Each row's length in bytes (0 for null).
fn lengths(array: &ArrayRef) -> Result<impl Iterator<Item = u64>> {
    let text = cast(array, &DataType::LargeUtf8)?;
    let lengths = cast(&length(&text)?, &DataType::Int64)?;
    let values: Vec<u64> = lengths
        .as_primitive::<Int64Type>()
        .iter()
        .map(|l| l.unwrap_or(0).max(0) as u64)
        .collect();
    Ok(values.into_iter())
}

/// Each row's value as an integer (0 for null).
fn integers(array: &ArrayRef) -> Result<impl Iterator<Item = i64>> {
    let values: Vec<i64> = integer_array(array)?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    Ok(values.into_iter())
}

fn integer_array(array: &ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(cast(array, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// `stop - start` per row, saturating instead of overflowing.
fn difference(stop: &ArrayRef, start: &ArrayRef) -> Result<arrow::array::Int64Array> {
    let (stop, start) = (integer_array(stop)?, integer_array(start)?);
    match sub(&stop, &start) {
        Ok(d) => Ok(d.as_primitive::<Int64Type>().clone()),
        // Overflow: as wide as it gets.
        Err(_) => Ok(arrow::array::Int64Array::from(vec![i64::MAX; stop.len()])),
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(size) = self.output(&args)?
            && size > MAX_OUTPUT
        {
            return Err(DataFusionError::Execution(format!(
                "{}() would build {size} bytes or elements for {} rows; at most {MAX_OUTPUT} \
                 per batch",
                self.name(),
                args.number_rows
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<usize> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn reasonable_calls_run_and_enormous_ones_fail() {
        let ctx = SessionContext::new();
        register(&ctx);
        for ok in [
            "SELECT repeat('ab', 3)",
            "SELECT lpad('7', 5, '0'), rpad('x', 3)",
            "SELECT array_repeat(1, 10)",
            "SELECT range(10), range(1, 10), range(1, 10, 2), generate_series(1, 5)",
            "SELECT range(DATE '2026-01-01', DATE '2026-02-01', INTERVAL '1 day')",
            "SELECT repeat(CAST(value AS VARCHAR), 2) FROM generate_series(1, 100000)",
        ] {
            assert!(run(&ctx, ok).await.is_ok(), "{ok}");
        }
        for bad in [
            "SELECT repeat('x', 1000000000)",
            "SELECT lpad('x', 1000000000)",
            "SELECT array_repeat(1, 1000000000)",
            "SELECT range(1000000000)",
            "SELECT range(-9223372036854775807, 9223372036854775807)",
            "SELECT generate_series(1, 1000000000, 1)",
            "SELECT repeat('x', value * 1000) FROM generate_series(1, 100000)",
        ] {
            let err = run(&ctx, bad).await.unwrap_err().to_string();
            assert!(err.contains("would build"), "{bad}: {err}");
        }
    }
}
