//! Label matchers as Alertmanager writes them (`severity="page"`, `service=~"pay.*"`,
//! `team!="db"`, `env!~"dev|test"`): parsing with precise errors, and matching a label set.
//! A label an alert lacks matches as the empty string, and regular expressions are anchored.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use vigil_store::alert::Labels;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One condition on one label.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label's name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regular expression as written.
    pub value: String,
    /// `^(?:value)$`, for the regex operators.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Why a matcher did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {input:?}: {reason}")]
pub struct MatcherError {
    input: String,
    reason: String,
}

impl Matcher {
    /// A matcher from its parts; fails on a bad label name or regular expression.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        let err = |reason: String| MatcherError {
            input: format!("{name}{}{value:?}", op.as_str()),
            reason,
        };
        if !valid_label_name(name) {
            return Err(err(format!(
                "label name {name:?} must match [a-zA-Z_][a-zA-Z0-9_]*"
            )));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| err(format!("bad regular expression: {e}")))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `labels` satisfy the matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // `new` always compiles the regex of a regex operator.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Whether every matcher is satisfied (true for none).
pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Whether `name` is a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads a double-quoted value with Go/PromQL escapes (`\"`, `\\`, `\n`, `\t`).
fn unquote(quoted: &str) -> Result<String, String> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or("a quoted value must end with a double quote")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(other) => out.extend(['\\', other]),
                None => return Err("a value cannot end with a lone backslash".into()),
            },
            '"' => return Err("an unescaped double quote inside the value".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl FromStr for Matcher {
    type Err = MatcherError;

    /// `name op value`, where op is `=`, `!=`, `=~` or `!~` and the value is double-quoted or
    /// bare (bare values are trimmed), as in Alertmanager's `matchers`.
    fn from_str(input: &str) -> Result<Matcher, MatcherError> {
        let err = |reason: &str| MatcherError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let at = input
            .find(['=', '!'])
            .ok_or_else(|| err("expected an operator: =, !=, =~ or !~"))?;
        let name = input[..at].trim();
        let rest = &input[at..];
        let (op, value) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (op, v.trim())))
        .ok_or_else(|| err("expected an operator: =, !=, =~ or !~"))?;
        let value = if value.starts_with('"') {
            unquote(value).map_err(|r| err(&r))?
        } else {
            value.to_string()
        };
        Matcher::new(name, op, &value).map_err(|e| err(&e.reason))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    fn parse(s: &str) -> Matcher {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_four_operators_parse_quoted_and_bare() {
        let l = labels(&[("severity", "page"), ("service", "payment")]);
        assert!(parse("severity=\"page\"").matches(&l));
        assert!(parse("severity = page").matches(&l));
        assert!(!parse("severity!=page").matches(&l));
        assert!(parse("service=~\"pay.*\"").matches(&l));
        assert!(!parse("service!~\"pay.*\"").matches(&l));
        assert_eq!(parse("service=~\"pay.*\"").op, MatchOp::Regex);
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let l = labels(&[("service", "payment-v2")]);
        assert!(!parse("service=~\"payment\"").matches(&l));
        assert!(parse("team=\"\"").matches(&l));
        assert!(parse("team!~\".+\"").matches(&l));
        assert!(!parse("team=~\".+\"").matches(&l));
    }

    #[test]
    fn quoted_values_take_escapes() {
        let m = parse(r#"summary="say \"hi\"\\n""#);
        assert_eq!(m.value, "say \"hi\"\\n");
        let round: Matcher = m.to_string().parse().unwrap();
        assert_eq!(round, m);
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (input, reason) in [
            ("severity", "expected an operator"),
            ("1abc=x", "label name"),
            ("service=~\"(\"", "bad regular expression"),
            ("service=\"open", "must end with a double quote"),
        ] {
            let e = input.parse::<Matcher>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input}: {e}");
            assert!(e.contains(&format!("{input:?}")), "{input}: {e}");
        }
    }
}
