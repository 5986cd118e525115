//! The WAL writer thread: group commit, the fsync policy, and handing durable batches to the tail.
//!
//! Appends arrive over a bounded channel (a full channel is the caller's backpressure signal).
//! The thread takes every command waiting, writes their records in order, syncs once per
//! group as the policy says, appends the batches to the tail, and only then acknowledges.
//! Rotation to a new segment goes through the same channel, so "everything in segments up
//! to N" is exactly "everything acknowledged before the rotate command".

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use crate::Signal;
use crate::catalog::{Catalog, TailEntry};
use crate::config::FsyncPolicy;
use crate::durable::sync_dir;
use crate::error::{Result, StoreError};
use crate::wal::segment_path;

/// Most commands folded into one group commit.
const MAX_GROUP: usize = 4096;

/// A request to the writer thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// Make `record` durable, then put `batch` in the tail and acknowledge.
    Append {
        signal: Signal,
        record: Vec<u8>,
        batch: RecordBatch,
        ack: oneshot::Sender<Result<()>>,
    },
    /// Close the current segment and start a new one; answers the closed segment's id.
    Rotate { ack: oneshot::Sender<Result<u64>> },
}

/// Counters the writer keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Bytes appended to the WAL since start.
    pub bytes: AtomicU64,
    /// Records appended since start.
    pub records: AtomicU64,
    /// fsync calls since start.
    pub syncs: AtomicU64,
    /// Commands sent to the writer and not yet handled.
    pub queue_depth: AtomicUsize,
    /// Bytes in the current segment.
    pub segment_bytes: AtomicU64,
}

pub(crate) struct Writer {
    dir: PathBuf,
    segment: u64,
    file: File,
    len: u64,
    policy: FsyncPolicy,
    dirty_since: Option<Instant>,
    catalog: Arc<Catalog>,
    stats: Arc<WalStats>,
}

struct Pending {
    signal: Signal,
    batch: RecordBatch,
    ack: oneshot::Sender<Result<()>>,
}

impl Writer {
    /// Opens (creating if needed) segment `segment` for appending, cutting off a torn tail at `valid_len`.
    pub fn open(
        dir: PathBuf,
        segment: u64,
        valid_len: u64,
        policy: FsyncPolicy,
        catalog: Arc<Catalog>,
        stats: Arc<WalStats>,
    ) -> Result<Writer> {
        let path = segment_path(&dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        file.set_len(valid_len)
            .map_err(|e| StoreError::io(format!("truncating {}", path.display()), e))?;
        sync_dir(&dir)?;
        stats.segment_bytes.store(valid_len, Ordering::Relaxed);
        Ok(Writer {
            dir,
            segment,
            file,
            len: valid_len,
            policy,
            dirty_since: None,
            catalog,
            stats,
        })
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = match self
                .policy
                .interval()
                .filter(|_| self.dirty_since.is_some())
            {
                Some(interval) => {
                    let waited = self.dirty_since.map_or(Duration::ZERO, |t| t.elapsed());
                    match rx.recv_timeout(interval.saturating_sub(waited)) {
                        Ok(cmd) => cmd,
                        Err(RecvTimeoutError::Timeout) => {
                            self.sync_logged();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                },
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => group.push(cmd),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.stats
                .queue_depth
                .fetch_sub(group.len(), Ordering::Relaxed);
            self.handle_group(group);
        }
        self.sync_logged();
    }

    fn handle_group(&mut self, group: Vec<Command>) {
        let mut pending = Vec::new();
        let mut start_len = self.len;
        let mut failed: Option<String> = None;
        for cmd in group {
            match cmd {
                Command::Append {
                    signal,
                    record,
                    batch,
                    ack,
                } => {
                    if failed.is_none() {
                        if let Err(e) = self.file.write_all(&record) {
                            failed = Some(format!("writing segment {}: {e}", self.segment));
                        } else {
                            self.len += record.len() as u64;
                            self.stats
                                .bytes
                                .fetch_add(record.len() as u64, Ordering::Relaxed);
                            self.stats.records.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    pending.push(Pending { signal, batch, ack });
                }
                Command::Rotate { ack } => {
                    self.commit(std::mem::take(&mut pending), start_len, failed.take());
                    let _ = ack.send(self.rotate());
                    start_len = self.len;
                }
            }
        }
        self.commit(pending, start_len, failed);
    }

    /// Syncs as the policy says, then publishes and acknowledges `pending` (or fails them all).
    fn commit(&mut self, pending: Vec<Pending>, start_len: u64, failed: Option<String>) {
        if pending.is_empty() {
            return;
        }
        let failed = failed.or_else(|| match self.policy {
            FsyncPolicy::Always => self.sync().err().map(|e| e.to_string()),
            FsyncPolicy::Interval { .. } => {
                self.dirty_since.get_or_insert_with(Instant::now);
                None
            }
            FsyncPolicy::Never => None,
        });
        if let Some(reason) = failed {
            // Cut the group's bytes back off so a later replay cannot resurrect refused data.
            if let Err(e) = self.file.set_len(start_len) {
                tracing::error!(error = %e, "could not truncate WAL after a failed write");
            }
            self.len = start_len.min(self.len);
            for p in pending {
                let _ = p.ack.send(Err(StoreError::WalWrite(reason.clone())));
            }
            return;
        }
        self.stats.segment_bytes.store(self.len, Ordering::Relaxed);
        let mut acks = Vec::with_capacity(pending.len());
        let mut entries = Vec::with_capacity(pending.len());
        for p in pending {
            if let Some(entry) = TailEntry::new(self.segment, p.batch) {
                entries.push((p.signal, entry));
            }
            acks.push(p.ack);
        }
        self.catalog.append_tail(entries);
        for ack in acks {
            let _ = ack.send(Ok(()));
        }
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(format!("fsync of WAL segment {}", self.segment), e))?;
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.dirty_since = None;
        Ok(())
    }

    fn sync_logged(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "WAL fsync failed");
        }
    }

    fn rotate(&mut self) -> Result<u64> {
        self.sync()?;
        let closed = self.segment;
        let next = closed + 1;
        let path = segment_path(&self.dir, next);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        sync_dir(&self.dir)?;
        self.segment = next;
        self.len = 0;
        self.stats.segment_bytes.store(0, Ordering::Relaxed);
        Ok(closed)
    }
}
