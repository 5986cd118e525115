//! Builders the unit tests share: label sets and alerts from literal pairs.

use chrono::DateTime;

pub use vigil_store::alert::labels;
use vigil_store::alert::{Alert, AlertState, Fingerprint, Labels};

/// An alert with these labels in `state`, active since 2023-11-14 22:13:20 UTC, with no
/// annotations.
pub fn alert(pairs: &[(&str, &str)], state: AlertState) -> Alert {
    let labels = labels(pairs);
    Alert {
        fingerprint: Fingerprint::of(&labels),
        labels,
        annotations: Labels::new(),
        state,
        active_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        fired_at: None,
        resolved_at: None,
        value: None,
        generator: String::new(),
    }
}
