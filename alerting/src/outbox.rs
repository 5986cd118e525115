//! The durable outbox: every notification is a file on disk before anything is sent, and
//! is removed only once delivered (or set aside as a permanent failure). With the
//! notification log snapshot beside it, a restart resumes exactly the deliveries that were
//! pending and notifies nothing twice that the log recorded.
//!
//! Layout under the outbox directory: `pending/<seq>.json` (one dispatch each, written to a
//! temporary file, synced, renamed, directory synced), `failed/<seq>.json` (permanent
//! failures with their error, the newest kept), `nflog.json` (the notification log).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dispatch::Dispatch;
use crate::nflog::{IntegrationId, LogEntry, NotificationLog};
use crate::notification::Notification;

/// Failed notifications kept for inspection.
const FAILED_KEPT: usize = 1000;

/// One pending notification as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Position in the outbox; deliveries of one group go out in this order.
    pub seq: u64,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// Where it goes.
    pub integration: IntegrationId,
    /// What it says.
    pub notification: Notification,
    /// The log entry it set, replayed into the log after a crash.
    pub entry: LogEntry,
}

/// A notification that will never be delivered, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    /// The notification.
    pub pending: Pending,
    /// When it was given up.
    pub failed_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: u32,
    /// The last error (HTTP status and body, or what could not be read).
    pub error: String,
}

/// Why the outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file or directory operation failed.
    #[error("outbox {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Could not be encoded.
    #[error("outbox: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The outbox directory.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    next_seq: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutboxError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

fn seq_of(path: &Path) -> Option<u64> {
    (path.extension()? == "json")
        .then(|| path.file_stem()?.to_str()?.parse().ok())
        .flatten()
}

/// The `*.json` files of `dir` by sequence number.
fn numbered(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OutboxError> {
    let mut files: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| seq_of(&p).map(|s| (s, p)))
        .collect();
    files.sort();
    Ok(files)
}

impl Outbox {
    /// Opens (creating) the outbox in `dir` and reads what is pending, oldest first, and
    /// the notification log with every pending notification's entry replayed into it.
    /// A pending file that cannot be read is set aside as failed, never dropped silently.
    pub fn open(dir: &Path) -> Result<(Outbox, Vec<Pending>, NotificationLog), OutboxError> {
        for sub in ["pending", "failed"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let log_path = dir.join("nflog.json");
        let mut log: NotificationLog = match fs::read(&log_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                // Pending entries still replay below; at worst a notification repeats.
                tracing::error!(file = %log_path.display(), error = %e, "unreadable notification log, starting afresh");
                NotificationLog::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NotificationLog::default(),
            Err(e) => return Err(io(&log_path)(e)),
        };
        let mut outbox = Outbox {
            dir: dir.to_path_buf(),
            next_seq: 0,
        };
        let mut pending = Vec::new();
        for (seq, path) in numbered(&dir.join("pending"))? {
            outbox.next_seq = outbox.next_seq.max(seq + 1);
            let read = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()));
            match read {
                Ok(p) => {
                    let newer = log
                        .get(&p.integration, &p.notification.group_key)
                        .is_none_or(|e| e.at <= p.entry.at);
                    if newer {
                        log.record(&p.integration, &p.notification.group_key, p.entry.clone());
                    }
                    pending.push(p);
                }
                Err(e) => {
                    let aside = dir.join("failed").join(format!("{seq:020}.unreadable"));
                    fs::rename(&path, &aside).map_err(io(&path))?;
                    tracing::error!(file = %aside.display(), error = %e, "unreadable outbox entry set aside");
                }
            }
        }
        for (seq, _) in numbered(&dir.join("failed"))? {
            outbox.next_seq = outbox.next_seq.max(seq + 1);
        }
        Ok((outbox, pending, log))
    }

    /// Makes `dispatches` durable, in order, and returns them as pending entries.
    pub fn push(
        &mut self,
        dispatches: Vec<Dispatch>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pending>, OutboxError> {
        let mut out = Vec::with_capacity(dispatches.len());
        for d in dispatches {
            let p = Pending {
                seq: self.next_seq,
                queued_at: now,
                integration: d.integration,
                notification: d.notification,
                entry: d.entry,
            };
            let path = self.pending_path(p.seq);
            write_atomically(&path, &serde_json::to_vec(&p)?)?;
            self.next_seq += 1;
            out.push(p);
        }
        Ok(out)
    }

    /// Saves the notification log (after the dispatches that changed it are pushed).
    pub fn save_log(&self, log: &NotificationLog) -> Result<(), OutboxError> {
        write_atomically(&self.dir.join("nflog.json"), &serde_json::to_vec(log)?)
    }

    /// Removes a delivered notification.
    pub fn delivered(&self, seq: u64) -> Result<(), OutboxError> {
        let path = self.pending_path(seq);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Sets a notification aside as a permanent failure, keeping the newest failures.
    pub fn failed(&self, failure: &Failed) -> Result<(), OutboxError> {
        let seq = failure.pending.seq;
        let path = self.dir.join("failed").join(format!("{seq:020}.json"));
        write_atomically(&path, &serde_json::to_vec(failure)?)?;
        self.delivered(seq)?;
        let failed = numbered(&self.dir.join("failed"))?;
        for (_, old) in failed.iter().take(failed.len().saturating_sub(FAILED_KEPT)) {
            fs::remove_file(old).map_err(io(old))?;
        }
        Ok(())
    }

    /// The permanent failures kept, newest first.
    pub fn failures(&self) -> Result<Vec<Failed>, OutboxError> {
        let mut out = Vec::new();
        for (_, path) in numbered(&self.dir.join("failed"))?.into_iter().rev() {
            let bytes = fs::read(&path).map_err(io(&path))?;
            out.push(serde_json::from_slice(&bytes)?);
        }
        Ok(out)
    }

    fn pending_path(&self, seq: u64) -> PathBuf {
        self.dir.join("pending").join(format!("{seq:020}.json"))
    }
}

#[cfg(test)]
mod tests;
