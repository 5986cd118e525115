//! Silences: matcher sets that mute matching alerts' notifications between a start and an
//! end, in Alertmanager's API v2 shape. Kept in a file rewritten atomically on every change,
//! so they survive restarts; expired silences are kept for a while for the record.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::matcher::{MatchOp, Matcher};
use crate::outbox::{OutboxError, write_atomically};
use vigil_store::alert::Labels;
use vigil_store::query::after;

/// Expired silences are forgotten after this long.
const EXPIRED_KEPT: Duration = Duration::from_secs(5 * 86_400);

/// A matcher as Alertmanager's API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiMatcher {
    /// Label name.
    pub name: String,
    /// Value or regular expression.
    pub value: String,
    /// Whether `value` is a regular expression.
    pub is_regex: bool,
    /// `false` negates (`!=`, `!~`); true when absent.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl ApiMatcher {
    /// As a matcher; fails on a bad name or regular expression.
    pub fn to_matcher(&self) -> Result<Matcher, SilenceError> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(&self.name, op, &self.value).map_err(|e| SilenceError::Invalid(e.to_string()))
    }

    /// From a matcher.
    pub fn from_matcher(m: &Matcher) -> ApiMatcher {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(m.op, MatchOp::Equal | MatchOp::Regex),
        }
    }
}

/// A silence as created through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSilence {
    /// All must match an alert's labels.
    pub matchers: Vec<ApiMatcher>,
    /// From when.
    pub starts_at: DateTime<Utc>,
    /// Until when.
    pub ends_at: DateTime<Utc>,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// Muting now.
    Active,
    /// Over (ended or expired by hand).
    Expired,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its identifier.
    pub id: String,
    /// What it was created with.
    #[serde(flatten)]
    pub spec: NewSilence,
    /// Last change (creation or expiry).
    pub updated_at: DateTime<Utc>,
}

impl Silence {
    /// Its state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.spec.starts_at {
            SilenceState::Pending
        } else if now < self.spec.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// Why a silence operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request is not a valid silence.
    #[error("invalid silence: {0}")]
    Invalid(String),
    /// No silence has that identifier.
    #[error("no silence {0:?}")]
    NotFound(String),
    /// The silence file could not be written.
    #[error(transparent)]
    Store(#[from] OutboxError),
    /// Could not be encoded.
    #[error("silences: {0}")]
    Encode(#[from] serde_json::Error),
    /// The silence file is damaged. Vigil refuses to start rather than page for alerts that
    /// were silenced (as Alertmanager does); move the file away to start without silences.
    #[error("{path}: unreadable silences ({source}); move it away to start without them")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Where and why it does not parse.
        source: serde_json::Error,
    },
}

/// Every silence, with their matchers compiled.
#[derive(Debug)]
pub struct Silences {
    path: PathBuf,
    silences: Vec<(Silence, Vec<Matcher>)>,
}

impl Silences {
    /// Loads the silences kept in `path` (none if it does not exist yet).
    pub fn open(path: &Path) -> Result<Silences, SilenceError> {
        let stored: Vec<Silence> = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| SilenceError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(OutboxError::Io {
                    path: path.to_path_buf(),
                    source,
                }
                .into());
            }
        };
        let mut silences = Vec::with_capacity(stored.len());
        for s in stored {
            let matchers = compile(&s.spec)?;
            silences.push((s, matchers));
        }
        Ok(Silences {
            path: path.to_path_buf(),
            silences,
        })
    }

    /// Adds a silence and returns its identifier.
    pub fn create(&mut self, spec: NewSilence, now: DateTime<Utc>) -> Result<String, SilenceError> {
        let matchers = compile(&spec)?;
        if spec.ends_at <= spec.starts_at || spec.ends_at <= now {
            return Err(SilenceError::Invalid(
                "endsAt must be after startsAt and in the future".into(),
            ));
        }
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        self.silences.push((
            Silence {
                id: id.clone(),
                spec,
                updated_at: now,
            },
            matchers,
        ));
        self.save(now)?;
        Ok(id)
    }

    /// Ends a silence now.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let (s, _) = self
            .silences
            .iter_mut()
            .find(|(s, _)| s.id == id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        if s.state(now) != SilenceState::Expired {
            s.spec.ends_at = now;
            s.spec.starts_at = s.spec.starts_at.min(now);
            s.updated_at = now;
        }
        self.save(now)
    }

    /// Every silence kept, newest first.
    pub fn list(&self) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.silences.iter().map(|(s, _)| s.clone()).collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
        all
    }

    /// Whether an active silence covers `labels` at `now`.
    pub fn silenced(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.silences.iter().any(|(s, m)| {
            s.state(now) == SilenceState::Active && m.iter().all(|m| m.matches(labels))
        })
    }

    fn save(&mut self, now: DateTime<Utc>) -> Result<(), SilenceError> {
        self.silences
            .retain(|(s, _)| after(s.spec.ends_at, EXPIRED_KEPT) > now);
        let stored: Vec<&Silence> = self.silences.iter().map(|(s, _)| s).collect();
        write_atomically(&self.path, &serde_json::to_vec_pretty(&stored)?)?;
        Ok(())
    }
}

/// The silence's matchers; at least one, and not all of them matching the empty string
/// (which would silence every alert).
fn compile(spec: &NewSilence) -> Result<Vec<Matcher>, SilenceError> {
    let matchers = spec
        .matchers
        .iter()
        .map(ApiMatcher::to_matcher)
        .collect::<Result<Vec<_>, _>>()?;
    if matchers.iter().all(|m| m.matches(&Labels::new())) {
        return Err(SilenceError::Invalid(
            "at least one matcher must not match an empty label (it would silence everything)"
                .into(),
        ));
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_273_600 + secs, 0).unwrap_or_default()
    }

    fn spec(json: &str) -> NewSilence {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    const PAYMENT: &str = r#"{"matchers":[{"name":"service","value":"pay.*","isRegex":true}],
        "startsAt":"2025-11-27T20:00:00Z","endsAt":"2025-11-27T22:00:00Z",
        "createdBy":"sre","comment":"deploy"}"#;

    #[test]
    fn a_silence_mutes_matching_alerts_while_active_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let mut s = Silences::open(&path).unwrap();
        let id = s.create(spec(PAYMENT), t(0)).unwrap();
        let payment = labels(&[("service", "payment")]);
        assert!(s.silenced(&payment, t(60)));
        assert!(!s.silenced(&labels(&[("service", "order")]), t(60)));
        assert!(!s.silenced(&payment, t(2 * 3600)));
        let reopened = Silences::open(&path).unwrap();
        assert_eq!(reopened.list(), s.list());
        assert!(reopened.silenced(&payment, t(60)));
        s.expire(&id, t(120)).unwrap();
        assert!(!s.silenced(&payment, t(121)));
        assert_eq!(s.list()[0].state(t(121)), SilenceState::Expired);
        assert!(matches!(
            s.expire("nope", t(130)),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn silences_that_would_mute_everything_or_never_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Silences::open(&dir.path().join("s.json")).unwrap();
        let everything = PAYMENT.replace("pay.*", ".*");
        assert!(matches!(
            s.create(spec(&everything), t(0)),
            Err(SilenceError::Invalid(_))
        ));
        let backwards = PAYMENT.replace("22:00", "19:00");
        assert!(matches!(
            s.create(spec(&backwards), t(0)),
            Err(SilenceError::Invalid(_))
        ));
        let bad = PAYMENT.replace("pay.*", "(");
        assert!(matches!(
            s.create(spec(&bad), t(0)),
            Err(SilenceError::Invalid(_))
        ));
        let m = ApiMatcher::from_matcher(&"team!~\"db\"".parse().unwrap());
        assert!(m.is_regex && !m.is_equal);
    }

    #[test]
    fn a_damaged_silence_file_is_named_with_where_it_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        std::fs::write(&path, "[{\"id\": \"x\",\n").unwrap();
        let e = Silences::open(&path).unwrap_err().to_string();
        assert!(e.contains("silences.json") && e.contains("line 2"), "{e}");
    }
}
