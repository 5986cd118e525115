//! Where rules come from: files and directories (every `*.yaml`/`*.yml` inside), plus rules
//! built into the binary, each file listed with its [`FileStamp`] so a reload can tell what
//! changed.

use std::path::{Path, PathBuf};

use vigil_store::file_stamp::FileStamp;

use crate::rules::{self, Group, RuleError};

/// The rule files to load.
#[derive(Debug, Clone, Default)]
pub struct RuleSource {
    /// Files, or directories whose `*.yaml`/`*.yml` files are read (re-listed on every check).
    pub paths: Vec<PathBuf>,
    /// Rule file text built into the binary, with the name errors give it.
    pub embedded: Option<(String, String)>,
}

/// A group with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedGroup {
    /// The file.
    pub file: String,
    /// The group.
    pub group: Group,
}

fn is_rule_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

impl RuleSource {
    /// True when there is nothing to load.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.embedded.is_none()
    }

    /// Every file the paths name now, sorted, with its stamp.
    pub fn stamps(&self) -> Result<Vec<FileStamp>, RuleError> {
        let mut files = Vec::new();
        for p in &self.paths {
            let read_err = |source| RuleError::Read {
                file: p.display().to_string(),
                source,
            };
            if p.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(read_err)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.is_file() && is_rule_file(f))
                    .collect();
                inside.sort();
                files.extend(inside);
            } else {
                files.push(p.clone());
            }
        }
        files
            .into_iter()
            .map(|path| {
                FileStamp::of(&path).map_err(|source| RuleError::Read {
                    file: path.display().to_string(),
                    source,
                })
            })
            .collect()
    }

    /// Reads every file in `stamps` and the embedded rules; group names must be unique
    /// across all of them.
    pub fn load(&self, stamps: &[FileStamp]) -> Result<Vec<LoadedGroup>, RuleError> {
        let mut loaded: Vec<LoadedGroup> = Vec::new();
        let mut add = |file: String, parsed: rules::RuleFile| -> Result<(), RuleError> {
            for group in parsed.groups {
                if let Some(other) = loaded.iter().find(|g| g.group.name == group.name) {
                    return Err(RuleError::Invalid {
                        file: file.clone(),
                        line: 0,
                        column: 0,
                        message: format!(
                            "group {:?} is also defined in {}",
                            group.name, other.file
                        ),
                    });
                }
                loaded.push(LoadedGroup {
                    file: file.clone(),
                    group,
                });
            }
            Ok(())
        };
        if let Some((name, text)) = &self.embedded {
            add(name.clone(), rules::parse(name, text)?)?;
        }
        for s in stamps {
            add(s.path().display().to_string(), rules::load(s.path())?)?;
        }
        Ok(loaded)
    }
}
