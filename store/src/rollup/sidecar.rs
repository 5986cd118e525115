//! Where each `spans` segment file's rollup lives and how it is kept in step with it.
//!
//! `parquet/spans/<day>/<hour>/<name>.parquet` has its rollup at
//! `parquet/span_rollup/<day>/<hour>/<name>.parquet`. The rollup is written before its spans
//! file and deleted with it. After a crash, start-up ([`repair`]) deletes rollups whose spans
//! file is gone and rebuilds those a spans file lacks, so each spans file is counted by
//! exactly one rollup.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::minutes::{aggregate, schema, to_batch};
use crate::catalog::SegmentFile;
use crate::error::Result;
use crate::parquet_files::{files_under, write_parquet};

/// The directory under `parquet/` holding the rollups.
pub const DIR: &str = "span_rollup";

/// The rollup file of the spans file at `spans_file`.
pub fn path_of(spans_file: &Path) -> Option<PathBuf> {
    let name = spans_file.file_name()?;
    let hour = spans_file.parent()?;
    let day = hour.parent()?;
    let root = day.parent()?.parent()?;
    Some(
        root.join(DIR)
            .join(day.file_name()?)
            .join(hour.file_name()?)
            .join(name),
    )
}

/// Writes the rollup of `spans` (the rows of the spans file to be written at `spans_file`).
pub fn write(spans_file: &Path, spans: &[RecordBatch]) -> Result<()> {
    let Some(path) = path_of(spans_file) else {
        return Ok(());
    };
    let batch = to_batch(&aggregate(spans)?)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    write_parquet(&path, schema(), props, |writer| Ok(writer.write(&batch)?))?;
    Ok(())
}

/// Deletes the rollup of the spans file at `spans_file`, if there is one.
pub fn delete(spans_file: &Path) {
    let Some(path) = path_of(spans_file) else {
        return;
    };
    match fs::remove_file(&path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not delete rollup file")
        }
    }
}

/// Deletes rollups (and leftover `*.tmp` files) under `root` that belong to none of
/// `spans_files`, and writes the rollup of each spans file that has none.
pub fn repair(root: &Path, spans_files: &[&SegmentFile]) -> Result<()> {
    let wanted: HashSet<PathBuf> = spans_files
        .iter()
        .filter_map(|f| path_of(&f.path))
        .collect();
    for path in files_under(&root.join(DIR)) {
        if !wanted.contains(&path) {
            tracing::info!(path = %path.display(), "deleting a rollup without its spans file");
            let _ = fs::remove_file(&path);
        }
    }
    for file in spans_files {
        if path_of(&file.path).is_some_and(|p| !p.exists()) {
            tracing::info!(path = %file.path.display(), "rebuilding the rollup of a spans file");
            write(&file.path, &file.read_all()?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollup_mirrors_the_spans_file_under_its_own_directory() {
        let spans = Path::new("/data/parquet/spans/2026-11-28/13/00000000000000000042.parquet");
        assert_eq!(
            path_of(spans).unwrap(),
            Path::new("/data/parquet/span_rollup/2026-11-28/13/00000000000000000042.parquet")
        );
        assert_eq!(path_of(Path::new("x.parquet")), None);
    }
}
