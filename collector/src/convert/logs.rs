//! Log export requests → rows of the `logs` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use vigil_store::{Signal, schema::schema};

use super::Converted;
use super::common::{CommonColumns, Origin, RowKey, nanos, strings};
use super::correlation::{self, CorrelationIndex};
use super::ids::hex_id;
use super::values::append_text;

struct LogColumns {
    common: CommonColumns,
    observed: TimestampNanosecondBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    event_name: StringBuilder,
    flags: UInt32Builder,
    dropped_attributes: UInt32Builder,
}

/// Converts a log export request; records inherit the correlation id of their span or trace.
pub fn convert_logs(
    req: &ExportLogsServiceRequest,
    index: &CorrelationIndex,
) -> Result<Converted, ArrowError> {
    let mut out = Converted::default();
    let records = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records);
    let (rows, attributes) = records.fold((0, 0), |(n, a), r| (n + 1, a + r.attributes.len()));
    let mut cols = LogColumns {
        common: CommonColumns::with_capacity(rows, attributes),
        observed: TimestampNanosecondBuilder::with_capacity(rows),
        severity_number: Int32Builder::with_capacity(rows),
        severity_text: strings(rows, 5),
        body: strings(rows, 64),
        event_name: strings(rows, 0),
        flags: UInt32Builder::with_capacity(rows),
        dropped_attributes: UInt32Builder::with_capacity(rows),
    };
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            let origin = Origin::new(
                rl.resource.as_ref(),
                &rl.schema_url,
                sl.scope.as_ref(),
                &sl.schema_url,
            );
            for record in &sl.log_records {
                out.received += 1;
                let ids = hex_id(&record.trace_id, 16, "trace_id", false)
                    .and_then(|t| Ok((t, hex_id(&record.span_id, 8, "span_id", false)?)));
                let (trace_id, span_id) = match ids {
                    Ok(ids) => ids,
                    Err(reason) => {
                        out.reject(format!("log record: {reason}"));
                        continue;
                    }
                };
                let cid: Option<Arc<str>> = correlation::explicit(&record.attributes)
                    .map(Arc::from)
                    .or_else(|| index.span(&span_id))
                    .or_else(|| index.trace(&trace_id));
                // OTLP: when the event time is unknown, the observed time stands in for it.
                let time = if record.time_unix_nano != 0 {
                    record.time_unix_nano
                } else {
                    record.observed_time_unix_nano
                };
                let key = RowKey {
                    time: nanos(time),
                    trace_id: &trace_id,
                    span_id: &span_id,
                    correlation_id: cid.as_deref(),
                };
                cols.common.push(&origin, key, &record.attributes);
                cols.observed.append_option(
                    (record.observed_time_unix_nano != 0)
                        .then(|| nanos(record.observed_time_unix_nano)),
                );
                cols.severity_number.append_value(record.severity_number);
                cols.severity_text.append_value(&record.severity_text);
                append_text(&mut cols.body, record.body.as_ref());
                cols.event_name.append_value(&record.event_name);
                cols.flags.append_value(record.flags);
                cols.dropped_attributes
                    .append_value(record.dropped_attributes_count);
            }
        }
    }
    if !cols.common.is_empty() {
        let middle: Vec<ArrayRef> = vec![
            Arc::new(cols.observed.with_timezone("UTC").finish()),
            Arc::new(cols.severity_number.finish()),
            Arc::new(cols.severity_text.finish()),
            Arc::new(cols.body.finish()),
            Arc::new(cols.event_name.finish()),
            Arc::new(cols.flags.finish()),
            Arc::new(cols.dropped_attributes.finish()),
        ];
        out.batch = Some(cols.common.finish(schema(Signal::Logs), middle)?);
    }
    Ok(out)
}
