//! Rule files: YAML groups of SLI rules, SQL rules and SLOs, read with errors that name the
//! file, line and column, and checked for what serde cannot see (unique names).

pub mod model;
pub mod selector;
pub mod slo;
pub mod template;
pub mod threshold;

use std::collections::BTreeSet;
use std::path::Path;

pub use model::{Group, Measure, Rule, RuleFile, RuleKind};
pub use slo::Slo;

/// Why a rule file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a valid rule file.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Parses rule file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<RuleFile, RuleError> {
    let rules: RuleFile = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        // The location is given up front; drop serde_yaml's repeat of it.
        let message = e
            .to_string()
            .replace(&format!(" at line {line} column {column}"), "");
        let (line, column) = quoted_value(text, &message, line).unwrap_or((line, column));
        RuleError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    })?;
    check_names(file, text, &rules)?;
    Ok(rules)
}

/// Reads and parses a rule file.
pub fn load(path: &Path) -> Result<RuleFile, RuleError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// The (line, column) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Where the `nth` (0-based) occurrence of `needle` outside comments is, as (line, column).
fn locate(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    text.match_indices(needle)
        .filter(|(offset, _)| {
            let line_start = text[..*offset].rfind('\n').map_or(0, |i| i + 1);
            !text[line_start..*offset].trim_start().starts_with('#')
        })
        .nth(nth)
        .map_or((0, 0), |(offset, _)| position(text, offset))
}

/// The parser places a bad value's error at the mapping that holds it; when the message
/// quotes the value (`invalid duration "30 seconds"`), point at the value itself: its first
/// occurrence on or after `from_line`.
fn quoted_value(text: &str, message: &str, from_line: usize) -> Option<(usize, usize)> {
    let (_, rest) = message.split_once('"')?;
    let (value, _) = rest.split_once('"')?;
    if value.is_empty() {
        return None;
    }
    let start: usize = text
        .split_inclusive('\n')
        .take(from_line.saturating_sub(1))
        .map(str::len)
        .sum();
    let offset = text[start..].find(value)? + start;
    Some(position(text, offset))
}

/// Group names are unique in a file, and so are SLO names; alert names are unique within a
/// group.
fn check_names(file: &str, text: &str, rules: &RuleFile) -> Result<(), RuleError> {
    let duplicate = |what: &str, name: &str| {
        let (line, column) = locate(text, name, 1);
        RuleError::Invalid {
            file: file.to_string(),
            line,
            column,
            message: format!("duplicate {what} {name:?}"),
        }
    };
    let mut groups = BTreeSet::new();
    let mut slos = BTreeSet::new();
    for g in &rules.groups {
        if !groups.insert(g.name.as_str()) {
            return Err(duplicate("group name", &g.name));
        }
        let mut alerts = BTreeSet::new();
        for r in &g.rules {
            if !alerts.insert(r.alert.as_str()) {
                return Err(duplicate("alert name in a group", &r.alert));
            }
        }
        for s in &g.slos {
            if !slos.insert(s.name.as_str()) {
                return Err(duplicate("slo name", &s.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
