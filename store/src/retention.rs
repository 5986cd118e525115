//! Retention: files past the age limit go first, then the oldest while the files together
//! are over the size limit; each goes with what derives from it.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::hour_file;
use crate::units::{ByteSize, HumanDuration};

/// Removes expired files from `catalog` and deletes them, as of `now` (ns since the epoch);
/// returns how many went.
pub(crate) fn expire(catalog: &Catalog, age: HumanDuration, size: ByteSize, now: i64) -> usize {
    let cutoff = now.saturating_sub(i64::try_from(age.0.as_nanos()).unwrap_or(i64::MAX));
    let mut removed = catalog.remove_files(|_, f| f.max_time < cutoff);
    let mut files = catalog.files();
    let mut total: u64 = files.iter().map(|(_, f)| f.bytes).sum();
    let limit = size.0;
    if total > limit {
        files.sort_by_key(|(_, f)| f.max_time);
        let mut doomed = HashSet::new();
        for (_, f) in &files {
            if total <= limit {
                break;
            }
            total -= f.bytes;
            doomed.insert(f.path.clone());
        }
        removed.extend(catalog.remove_files(|_, f| doomed.contains(&f.path)));
    }
    for (signal, f) in &removed {
        hour_file::delete(*signal, f);
    }
    removed.len()
}
