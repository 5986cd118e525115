//! Rule evaluation: windows of telemetry (or of anomaly scores) read from the store become one
//! value per series (`spans.rs`, `logs.rs`, `metrics.rs`, `sql_rule.rs`, `anomaly_rule.rs`),
//! values become alerts with a lifecycle (`lifecycle.rs`), SLOs become burn rates and budgets
//! (`slo.rs`), and the engine (`engine.rs`) schedules groups, reloads rule files and reports
//! status.

pub mod anomaly_rule;
pub mod engine;
pub mod group;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod quantile;
pub mod slo;
pub mod source;
pub mod spans;
pub mod sql_rule;
pub mod status;

use std::collections::BTreeMap;

use vigil_store::query::{ColumnError, Sql, attribute, eq};

pub use engine::{AlertSink, Engine};
pub use source::RuleSource;

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The query failed to plan or run.
    #[error("query failed: {0}")]
    Query(#[from] vigil_store::ReadError),
    /// A result had an unexpected shape.
    #[error("{0}")]
    Shape(String),
    /// A result column was missing or of the wrong type.
    #[error("{0}")]
    Column(#[from] ColumnError),
    /// Writing the alert history failed.
    #[error("writing alert history: {0}")]
    History(String),
}

/// One series' value at an evaluation: its labels and the measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`service`, `operation`, attribute names…).
    pub labels: BTreeMap<String, String>,
    /// The value, in the rule's canonical unit.
    pub value: f64,
    /// What explains the value beyond its labels (an anomaly's top feature, exemplar traces);
    /// it becomes annotations the rule does not set itself.
    pub context: BTreeMap<String, String>,
}

/// The SQL expression for a label name: `service` and `operation` are columns, anything else
/// an attribute.
pub fn label_column(label: &str, operation_column: &'static str) -> Sql {
    match label {
        "service" => Sql::from("service_name"),
        "operation" => Sql::from(operation_column),
        attr => attribute(attr),
    }
}

/// The conditions selecting rows of `service` (when given) whose attributes hold `attributes`.
pub fn selector_conditions<'a>(
    service: Option<&str>,
    attributes: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<Sql> {
    service
        .map(|s| eq("service_name", s))
        .into_iter()
        .chain(attributes.into_iter().map(|(k, v)| eq(attribute(k), v)))
        .collect()
}
