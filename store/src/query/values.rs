//! The stored spellings of enumerated values, defined once: span kinds and status codes as the
//! `spans` table holds them, and log severities by their OTLP number ranges.

use std::fmt;

use serde::Deserialize;

use super::sql::{SqlArg, lit};

/// A span's kind, as the `span_kind` column stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanKind {
    /// The exporter did not say.
    Unspecified,
    /// Work inside a service.
    Internal,
    /// Handling a synchronous request.
    Server,
    /// Making a synchronous request.
    Client,
    /// Sending a message.
    Producer,
    /// Handling a message.
    Consumer,
}

impl SpanKind {
    /// The kinds of span that start a service's own work (entry spans): handling a request or
    /// a message.
    pub const ENTRY: [SpanKind; 2] = [SpanKind::Server, SpanKind::Consumer];

    /// The stored `span_kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }

    /// The kind stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<SpanKind> {
        [
            SpanKind::Unspecified,
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A span's status, as the `status_code` column stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatusCode {
    /// No status was set.
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed.
    Error,
}

impl StatusCode {
    /// The stored `status_code` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "UNSET",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }

    /// The status stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<StatusCode> {
        [StatusCode::Unset, StatusCode::Ok, StatusCode::Error]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Log severities, by their OTLP ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// 1–4.
    Trace,
    /// 5–8.
    Debug,
    /// 9–12.
    Info,
    /// 13–16.
    Warn,
    /// 17–20.
    Error,
    /// 21–24.
    Fatal,
}

impl Severity {
    /// The lowest OTLP severity number of this level (the `severity_number` column).
    pub fn number(self) -> i32 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }

    /// The level named `name`, in any case (`warning` is `warn`).
    pub fn from_name(name: &str) -> Option<Severity> {
        Some(match name.to_ascii_lowercase().as_str() {
            "trace" => Severity::Trace,
            "debug" => Severity::Debug,
            "info" => Severity::Info,
            "warn" | "warning" => Severity::Warn,
            "error" => Severity::Error,
            "fatal" => Severity::Fatal,
            _ => return None,
        })
    }
}

impl SqlArg for SpanKind {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        lit(self.as_str()).fmt_sql(f)
    }
}

impl SqlArg for StatusCode {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        lit(self.as_str()).fmt_sql(f)
    }
}

/// A severity in SQL is its lowest number, to compare `severity_number` with.
impl SqlArg for Severity {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_stored() {
        let q = crate::sql!(
            "span_kind = {} AND status_code <> {} AND severity_number >= {}",
            SpanKind::Consumer,
            StatusCode::Error,
            Severity::Error
        );
        assert_eq!(
            q.as_str(),
            "span_kind = 'CONSUMER' AND status_code <> 'ERROR' AND severity_number >= 17"
        );
        assert_eq!(StatusCode::parse("OK"), Some(StatusCode::Ok));
        assert_eq!(StatusCode::parse("ok"), None);
        assert_eq!(Severity::from_name("Warning"), Some(Severity::Warn));
    }
}
