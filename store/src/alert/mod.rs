//! The alert model every producer (rules, SLOs, anomaly detection) and every consumer
//! (API, history, notifications) shares: labels, annotations, state and times; it lives
//! beside the `alerts` table it is stored in (`history.rs`), so a rule engine can raise
//! alerts without linking the delivery stack.

pub mod history;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Annotation of a firing alert: its likeliest causes, one line per suspect, strongest first.
pub const RCA_SUSPECTS: &str = "rca_suspects";
/// Annotation of a firing alert: the address of its full root-cause report.
pub const RCA_REPORT_URL: &str = "rca_report_url";
/// Annotation of a firing alert: the address of the first suspect's exemplar trace.
pub const RCA_TRACE_URL: &str = "rca_trace_url";

/// Label name → value; ordered, so equal sets compare and hash equally.
pub type Labels = BTreeMap<String, String>;

/// A label set from `(name, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for` duration.
    Pending,
    /// The condition has held long enough; notifications go out.
    Firing,
    /// The condition stopped holding (after `keep_firing_for`).
    Resolved,
}

impl AlertState {
    /// The lowercase name used in the API and the `alerts` table.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// A stable identity of a label set: FNV-1a (64 bit) over the sorted names and values, each
/// followed by the byte 0xff, as Prometheus computes label signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of `labels`.
    pub fn of(labels: &Labels) -> Fingerprint {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let mut feed = |bytes: &[u8]| {
            for b in bytes.iter().chain(std::iter::once(&0xff)) {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(PRIME);
            }
        };
        for (name, value) in labels {
            feed(name.as_bytes());
            feed(value.as_bytes());
        }
        Fingerprint(hash)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    /// Reads the 16 hex digits `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Fingerprint)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One alert: a label set (its identity) in a state, with what explains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identity: `alertname`, `severity`, the series' labels and the rule's extra labels.
    pub labels: Labels,
    /// Human context (summary, description, runbook), already rendered.
    pub annotations: Labels,
    /// Current state.
    pub state: AlertState,
    /// When the condition started to hold.
    pub active_at: DateTime<Utc>,
    /// When the alert started firing, if it has.
    pub fired_at: Option<DateTime<Utc>>,
    /// When the alert resolved, if it has.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The measured value at the last evaluation where the condition held.
    pub value: Option<f64>,
    /// What produced it, e.g. `rules/<group>/<alert>`.
    pub generator: String,
    /// `Fingerprint::of(labels)`.
    pub fingerprint: Fingerprint,
}

impl Alert {
    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_fnv1a_over_sorted_labels() {
        // FNV-1a of the empty input is the offset basis.
        assert_eq!(Fingerprint::of(&Labels::new()).0, 0xcbf2_9ce4_8422_2325);
        let a = labels(&[("alertname", "PaymentSlow"), ("service", "payment")]);
        let b = labels(&[("service", "payment"), ("alertname", "PaymentSlow")]);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(
            Fingerprint::of(&labels(&[("ab", "c")])),
            Fingerprint::of(&labels(&[("a", "bc")]))
        );
        assert_eq!(Fingerprint::of(&a).to_string().len(), 16);
    }

    #[test]
    fn fingerprint_matches_an_independent_fnv1a() {
        // FNV-1a 64 of b"alertname\xffPaymentSlow\xffservice\xffpayment\xff", computed in Python.
        let l = labels(&[("alertname", "PaymentSlow"), ("service", "payment")]);
        assert_eq!(Fingerprint::of(&l).to_string(), "56a1c2abf376834c");
    }
}
