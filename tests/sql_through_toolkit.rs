//! Every SQL text the read side builds goes through the store's query toolkit
//! (`vigil_store::query`, the `sql!` macro): no `format!`, `write!` or `push_str` with SQL in
//! its text in the crates that query, and no `{name}` captures inside `sql!`, which would
//! paste a value in without the toolkit's type check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod common;
use common::sources::rust_files;

/// Where the read side builds queries.
const SCANNED: [&str; 3] = ["dashboards/src", "detectors/src", "src"];

/// Files whose SQL-looking text is data, not queries this program runs.
const NOT_QUERIES: [(&str, &str); 2] = [
    (
        "src/bench/payload.rs",
        "synthetic `db.statement` attribute values",
    ),
    (
        "src/bench/rules.rs",
        "generates rule files for the rule benchmark",
    ),
];

/// Macros and methods that build text.
const BUILDERS: [&str; 5] = [
    "format!(",
    "write!(",
    "writeln!(",
    "push_str(",
    "format_args!(",
];

/// Words that make a text SQL, matched as whole upper-case words (`SELECT` alone is also
/// what messages about queries say).
const SQL_WORDS: [&str; 9] = [
    "FROM", "WHERE", "AND", "OR", "LIMIT", "LIKE", "JOIN", "GROUP", "ORDER",
];

/// The string literal starting at `text` (after optional whitespace), if there is one.
fn literal(text: &str) -> Option<String> {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        out.push('\\');
                        out.push(next);
                    }
                }
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        return None;
    }
    let rest = t.strip_prefix('r')?;
    let hashes = rest.chars().take_while(|c| *c == '#').count();
    let body = rest[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    body.find(&close).map(|end| body[..end].to_string())
}

fn looks_like_sql(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    if words.iter().any(|w| SQL_WORDS.contains(w)) {
        return true;
    }
    // A comparison of a column with a pasted value: `name = {}`, `attributes[{}]`.
    [
        "= {",
        "<> {",
        ">= {",
        "<= {",
        "< {",
        "> {",
        "IN ({",
        "attributes[{",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// `{` must open `{}` (a positional argument) once `{{` and `}}` escapes are removed.
fn captures_a_name(text: &str) -> bool {
    let plain = text.replace("{{", "").replace("}}", "");
    plain
        .match_indices('{')
        .any(|(i, _)| !plain[i + 1..].starts_with('}'))
}

/// Every violation in `source`, as `line: what`.
fn violations(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let line_of = |at: usize| source[..at].matches('\n').count() + 1;
    for builder in BUILDERS {
        for (at, _) in source.match_indices(builder) {
            // `sql!(` itself is the toolkit; `format!(` inside a word is not a call.
            if source[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let Some(text) = literal(&source[at + builder.len()..]) else {
                continue;
            };
            if looks_like_sql(&text) {
                out.push(format!(
                    "{}: SQL built with {builder}…) instead of sql!: {text:?}",
                    line_of(at)
                ));
            }
        }
    }
    for (at, _) in source.match_indices("sql!(") {
        if let Some(text) = literal(&source[at + 5..])
            && captures_a_name(&text)
        {
            out.push(format!(
                "{}: sql! takes positional {{}} arguments only, got {text:?}",
                line_of(at)
            ));
        }
    }
    if source.contains("__formatted(") {
        out.push("Sql::__formatted is for the sql! macro only".into());
    }
    out
}

#[test]
fn the_checker_catches_what_it_is_for() {
    let bad = [
        r#"let q = format!("SELECT * FROM spans WHERE {}", w.sql());"#,
        r#"sql.push_str(&format!(" AND {column} = {}", quote(v)));"#,
        r#"conditions.push(format!("metric_name = {}", quote(&m)));"#,
        r#"let q = sql!("SELECT * FROM t WHERE a = {value}");"#,
        r#"let q = Sql::__formatted(text);"#,
        "let q = format!(r\"SELECT a FROM t\");",
    ];
    for b in bad {
        assert!(!violations(b).is_empty(), "not caught: {b}");
    }
    let good = [
        r#"let q = sql!("SELECT * FROM spans WHERE {} LIMIT {}", w.sql(), 10);"#,
        r#"let q = sql!("regexp_match(links, '[0-9a-f]{{32}}')");"#,
        r#"let m = format!("trace id must be 32 hex digits, got {raw:?}");"#,
        r#"let url = format!("/api/v1/traces/{trace}");"#,
    ];
    for g in good {
        assert!(violations(g).is_empty(), "{g}: {:?}", violations(g));
    }
}

#[test]
fn queries_are_built_through_the_toolkit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<_> = SCANNED
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .collect();
    assert!(files.len() > 50, "scanned only {} files", files.len());
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if NOT_QUERIES.iter().any(|(p, _)| *p == relative) {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        found.extend(
            violations(&source)
                .into_iter()
                .map(|v| format!("{relative}:{v}")),
        );
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
