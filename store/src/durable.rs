//! Making file-system changes survive a crash: the directory fsync that must follow creating,
//! renaming or removing a file in it.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, StoreError};

/// fsyncs a directory so a file created or renamed in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("fsync of directory {}", dir.display()), e))
}
