//! Alert state changes as rows of the store's `alerts` table, so the history of every alert
//! can be queried with SQL next to the telemetry that caused it.

use std::sync::Arc;

use crate::Signal;
use crate::schema::schema;
use arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};

use super::{Alert, AlertState, Labels};
use crate::query::nanos;

/// When `alert` entered its current state.
pub fn changed_at(alert: &Alert) -> DateTime<Utc> {
    match alert.state {
        AlertState::Pending => alert.active_at,
        AlertState::Firing => alert.fired_at.unwrap_or(alert.active_at),
        AlertState::Resolved => alert.resolved_at.unwrap_or(alert.active_at),
    }
}

fn map_column(rows: &[Alert], get: impl Fn(&Alert) -> &Labels) -> Result<ArrayRef, ArrowError> {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for alert in rows {
        for (k, v) in get(alert) {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true)?;
    }
    Ok(Arc::new(b.finish()))
}

/// One row per alert in `changes` (each in the state it just entered), in the `alerts` schema.
pub fn history_batch(changes: &[Alert]) -> Result<RecordBatch, ArrowError> {
    let text = |f: &dyn Fn(&Alert) -> String| -> ArrayRef {
        let mut b = StringBuilder::new();
        for a in changes {
            b.append_value(f(a));
        }
        Arc::new(b.finish())
    };
    let time = |f: &dyn Fn(&Alert) -> DateTime<Utc>| -> ArrayRef {
        let mut b = TimestampNanosecondBuilder::new().with_timezone("UTC");
        for a in changes {
            b.append_value(nanos(f(a)));
        }
        Arc::new(b.finish())
    };
    let label =
        |name: &'static str| move |a: &Alert| a.labels.get(name).cloned().unwrap_or_default();
    let mut values = Float64Builder::new();
    for a in changes {
        values.append_option(a.value);
    }
    let columns: Vec<ArrayRef> = vec![
        time(&changed_at),
        text(&label("service")),
        text(&label("alertname")),
        text(&|a| a.fingerprint.to_string()),
        text(&|a| a.state.as_str().to_string()),
        text(&label("severity")),
        Arc::new(values.finish()),
        text(&|a| a.generator.clone()),
        time(&|a| a.active_at),
        map_column(changes, |a| &a.labels)?,
        map_column(changes, |a| &a.annotations)?,
    ];
    RecordBatch::try_new(schema(Signal::Alerts), columns)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, MapArray};

    use super::*;
    use crate::alert::Fingerprint;

    #[test]
    fn state_changes_become_rows_in_the_alerts_schema() {
        let labels: Labels = [
            ("alertname", "PaymentSlow"),
            ("service", "payment"),
            ("severity", "page"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let fired = DateTime::from_timestamp(1_700_000_030, 0).unwrap_or_default();
        let alert = Alert {
            fingerprint: Fingerprint::of(&labels),
            labels,
            annotations: [("summary".to_string(), "slow".to_string())].into(),
            state: AlertState::Firing,
            active_at: start,
            fired_at: Some(fired),
            resolved_at: None,
            value: Some(0.25),
            generator: "rules/latency/PaymentSlow".into(),
        };
        let batch = history_batch(std::slice::from_ref(&alert)).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(col("service_name").as_string::<i32>().value(0), "payment");
        assert_eq!(col("state").as_string::<i32>().value(0), "firing");
        assert_eq!(
            col("fingerprint").as_string::<i32>().value(0),
            alert.fingerprint.to_string()
        );
        assert_eq!(
            col("time")
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .value(0),
            1_700_000_030_000_000_000
        );
        let labels = col("labels");
        let map = labels.as_any().downcast_ref::<MapArray>().unwrap();
        assert_eq!(map.value(0).len(), 3);
    }
}
