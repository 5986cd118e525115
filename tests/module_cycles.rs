//! No two source files of a crate depend on each other, directly or through others: every
//! crate's modules form a graph without circles, so each can be read (and moved) after what
//! it uses. A file depends on another when it names it in a `use` or in a `crate::`/`super::`
//! path; a module's `pub use` of its own descendants is its public face, not a dependency.
//! ARCHITECTURE.md states the rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod common;
use common::sources::rust_files;

/// Each crate's source directory.
const CRATES: [&str; 7] = [
    "store/src",
    "collector/src",
    "detectors/src",
    "alerting/src",
    "dashboards/src",
    "sample-services/src",
    "src",
];

type Module = Vec<String>;

/// The module path of a file relative to its crate's source directory.
fn module_of(relative: &str) -> Module {
    let stem = relative.trim_end_matches(".rs");
    let mut parts: Module = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its unit-test module.
fn code(source: &str) -> String {
    let source = source
        .find("#[cfg(test)]\nmod tests")
        .map_or(source, |at| &source[..at]);
    source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        if !path.is_empty() {
            out.push(format!("{prefix}{path}"));
        }
        return;
    };
    let head = &tree[..open];
    let close = tree.rfind('}').filter(|c| *c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], &format!("{prefix}{head}"), out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&inner[start..], &format!("{prefix}{head}"), out);
}

/// The file a path names, from module `from`: the longest prefix that is a file.
fn target(from: &Module, path: &str, files: &BTreeSet<Module>) -> Option<Module> {
    let mut segments = path.split("::").map(str::trim).filter(|s| !s.is_empty());
    let mut full: Module = match segments.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        // A child module in scope.
        child => {
            let mut m = from.clone();
            m.push(child.to_string());
            if !files.contains(&m) {
                return None;
            }
            m
        }
    };
    for s in segments {
        if s == "super" {
            full.pop();
        } else {
            full.push(s.to_string());
        }
    }
    (0..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| files.contains(m))
}

/// Which files each file depends on.
fn dependencies(sources: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let files: BTreeSet<Module> = sources.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, source) in sources {
        let code = code(source);
        let mut deps = BTreeSet::new();
        let mut rest = code.as_str();
        let mut outside_use = String::new();
        // `use` items, with `pub use` of descendants left out.
        while let Some(at) = rest.find("use ") {
            let before = &rest[..at];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            // Only a `use` that starts its line, after an optional visibility, is an item.
            let visibility = before[line_start..].trim();
            let starts_item = visibility.is_empty()
                || (visibility.starts_with("pub")
                    && visibility
                        .chars()
                        .all(|c| c.is_alphanumeric() || "():_ ".contains(c)));
            let Some(end) = rest[at..].find(';') else {
                break;
            };
            if !starts_item {
                outside_use.push_str(&rest[..at + 4]);
                rest = &rest[at + 4..];
                continue;
            }
            let public = !visibility.is_empty();
            outside_use.push_str(before);
            let mut paths = Vec::new();
            expand(&rest[at + 4..at + end], "", &mut paths);
            for path in paths {
                let Some(t) = target(module, &path, &files) else {
                    continue;
                };
                if t == *module || (public && t.starts_with(module)) {
                    continue;
                }
                deps.insert(t);
            }
            rest = &rest[at + end + 1..];
        }
        outside_use.push_str(rest);
        // Paths written out in the code.
        for keyword in ["crate::", "super::"] {
            for (at, _) in outside_use.match_indices(keyword) {
                let before = &outside_use[..at];
                if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let path: String = outside_use[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if let Some(t) = target(module, &path, &files)
                    && t != *module
                {
                    deps.insert(t);
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// The groups of two or more files that depend on each other (strongly connected components).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let reach = |from: &Module| -> BTreeSet<Module> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for d in graph.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&Module, BTreeSet<Module>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reachable[m].contains(m) {
            continue;
        }
        let group: Vec<Module> = graph
            .keys()
            .filter(|o| reachable[m].contains(*o) && reachable[*o].contains(m))
            .cloned()
            .collect();
        done.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

fn sources(root: &Path) -> BTreeMap<Module, String> {
    rust_files(root)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy();
            (
                module_of(&relative.replace('\\', "/")),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

#[test]
fn the_checker_finds_circles_and_only_circles() {
    let crate_of = |files: &[(&str, &str)]| -> Vec<Vec<String>> {
        let sources: BTreeMap<Module, String> = files
            .iter()
            .map(|(f, s)| (module_of(f), s.to_string()))
            .collect();
        circles(&dependencies(&sources))
            .iter()
            .map(|g| g.iter().map(name).collect())
            .collect()
    };
    // Through grouped imports, a path in the code and a chain of three.
    assert_eq!(
        crate_of(&[
            ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
            ("a.rs", "use crate::{b::{self, B}, x};"),
            ("b.rs", "fn f() { crate::c::g(); }"),
            ("c.rs", "use super::a::A;"),
        ]),
        vec![vec!["a", "b", "c"]]
    );
    // A child using its parent while the parent re-exports it is no circle; a parent using
    // its child's item privately is.
    assert!(
        crate_of(&[
            ("m/mod.rs", "mod c;\npub use c::Thing;\npub struct Error;"),
            ("m/c.rs", "use super::Error;\npub struct Thing;"),
        ])
        .is_empty()
    );
    assert_eq!(
        crate_of(&[
            ("m/mod.rs", "mod c;\nuse c::Thing;\npub struct Error;"),
            ("m/c.rs", "use super::Error;\npub struct Thing;"),
        ]),
        vec![vec!["m", "m/c"]]
    );
    // Unit tests and comments do not count.
    assert!(
        crate_of(&[
            ("a.rs", "use crate::b::B;"),
            (
                "b.rs",
                "// crate::a::A\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}"
            ),
        ])
        .is_empty()
    );
}

#[test]
fn no_source_files_depend_on_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut files = 0;
    for dir in CRATES {
        let map = sources(&root.join(dir));
        files += map.len();
        for group in circles(&dependencies(&map)) {
            let names: Vec<String> = group.iter().map(name).collect();
            found.push(format!("{dir}: {}", names.join(" ↔ ")));
        }
    }
    assert!(files > 150, "read only {files} files");
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}
