//! Locks that outlive a panicked holder: the state behind them stays usable (every writer
//! leaves it consistent between statements), so a poisoned lock is taken as it is.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, poisoned or not.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
