//! What a configuration file looked like when it was read (modification time and size), so
//! a reload can tell whether it changed since.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file's identity for change detection: its path, modification time and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    /// Stamps `path` as it is now.
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp {
            path: path.to_path_buf(),
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_that_changes_the_size_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, "a").unwrap();
        let before = FileStamp::of(&path).unwrap();
        assert_eq!(FileStamp::of(&path).unwrap(), before);
        // Same second, different size: still noticed.
        std::fs::write(&path, "ab").unwrap();
        assert_ne!(FileStamp::of(&path).unwrap(), before);
        assert!(FileStamp::of(&dir.path().join("missing")).is_err());
    }
}
