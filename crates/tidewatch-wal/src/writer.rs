//! The writer thread: sole owner of the active segment file.
//!
//! Loop: block for one request, drain whatever else is already queued into one write group,
//! assign sequences, `write_all` the group's reused buffer once, fdatasync per policy, then
//! complete every sender of the group. Acknowledgements therefore never run ahead of the
//! durability the policy promises, and under [`FsyncPolicy::Always`] all appends that queued
//! up while the previous fdatasync ran share the next one (group commit).
//!
//! After any I/O failure the writer is poisoned: the failing group gets the error, every later
//! request gets [`Error::Poisoned`], and nothing else is written. A half-written group is left
//! for recovery to cut off at the next open.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{debug, error};

use crate::format::{encode_record, segment_path};
use crate::recovery::Segment;
use crate::{Error, FsyncPolicy, Result, Shared, create_segment, io_error};

/// Upper bound of one write group's buffer; a single record may still exceed it alone.
pub(crate) const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// A message from a [`crate::Wal`] handle to the writer thread.
pub(crate) enum Request {
    Append {
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// fdatasync everything written so far; queued after earlier appends, so covers them.
    Sync { reply: oneshot::Sender<Result<()>> },
}

pub(crate) struct Writer {
    pub(crate) rx: Receiver<Request>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) policy: FsyncPolicy,
    pub(crate) interval: Duration,
    pub(crate) segment_bytes: u64,
    /// Active segment, opened for appending.
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    /// Bytes written to the active segment (synced or not).
    pub(crate) size: u64,
    /// Sequence of the next record to be written.
    pub(crate) next_sequence: u64,
    /// When the oldest written-but-not-fdatasynced byte was written; `None` when all is durable.
    pub(crate) unsynced_since: Option<Instant>,
    /// Message of the error that poisoned the writer.
    pub(crate) poisoned: Option<String>,
    /// A non-append request met while draining a group; handled right after that group.
    pub(crate) carry: Option<Request>,
    /// Reused encoding buffer of the current group.
    pub(crate) buf: Vec<u8>,
    /// Sequences and reply channels of the current group.
    pub(crate) group: Vec<(u64, oneshot::Sender<Result<u64>>)>,
    /// Exclusive lock on the directory, released when the writer exits.
    pub(crate) _lock: File,
}

impl Writer {
    /// Serves requests until every [`crate::Wal`] sender is gone, then makes everything written
    /// durable. The result is what [`crate::Wal::close`] reports.
    pub(crate) fn run(mut self) -> Result<()> {
        while let Some(request) = self.next_request() {
            match request {
                Request::Append { payload, reply } => self.append_group(payload, reply),
                Request::Sync { reply } => {
                    // The receiver may have given up waiting; nothing to do then.
                    let _ = reply.send(self.sync_if_dirty());
                }
            }
        }
        let result = self.sync_if_dirty();
        debug!(
            segment = %self.path.display(),
            next_sequence = self.next_sequence,
            "wal writer stopped"
        );
        result
    }

    /// Next request to serve, or `None` once the channel is closed and drained. Under
    /// [`FsyncPolicy::Interval`] the wait is bounded so unsynced data gets its fdatasync on time
    /// even when no further appends arrive.
    fn next_request(&mut self) -> Option<Request> {
        if let Some(request) = self.carry.take() {
            return Some(request);
        }
        loop {
            let deadline = match (self.policy, self.unsynced_since) {
                (FsyncPolicy::Interval, Some(since)) => since + self.interval,
                _ => return self.rx.recv().ok(),
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                self.background_sync();
                continue;
            }
            match self.rx.recv_timeout(wait) {
                Ok(request) => return Some(request),
                Err(RecvTimeoutError::Timeout) => self.background_sync(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Interval sync nobody waits for; a failure poisons the log (and is logged there).
    fn background_sync(&mut self) {
        let _ = self.sync_if_dirty();
    }

    /// Writes `payload` plus everything already queued behind it as one group.
    fn append_group(&mut self, payload: Vec<u8>, reply: oneshot::Sender<Result<u64>>) {
        if let Some(message) = &self.poisoned {
            let _ = reply.send(Err(Error::Poisoned(message.clone())));
            return;
        }
        if self.size >= self.segment_bytes
            && self.size > 0
            && let Err(err) = self.roll()
        {
            let _ = reply.send(Err(err));
            return;
        }

        self.buf.clear();
        self.group.clear();
        self.push(&payload, reply);
        // Stop at the group cap, and at the segment limit so that rolling happens between
        // groups: a segment overshoots `segment_bytes` by at most one record.
        while self.buf.len() < MAX_GROUP_BYTES
            && self.size + (self.buf.len() as u64) < self.segment_bytes
        {
            match self.rx.try_recv() {
                Ok(Request::Append { payload, reply }) => self.push(&payload, reply),
                Ok(other) => {
                    self.carry = Some(other);
                    break;
                }
                // Empty, or closed: a closed channel is noticed by the next blocking receive.
                Err(_) => break,
            }
        }

        let result = self.write_group();
        for (sequence, reply) in self.group.drain(..) {
            let _ = reply.send(result.clone().map(|()| sequence));
        }
        // One oversized record must not pin its buffer for the life of the log.
        if self.buf.capacity() > 2 * MAX_GROUP_BYTES {
            self.buf = Vec::with_capacity(MAX_GROUP_BYTES);
        }
    }

    fn push(&mut self, payload: &[u8], reply: oneshot::Sender<Result<u64>>) {
        let sequence = self.next_sequence + self.group.len() as u64;
        encode_record(sequence, payload, &mut self.buf);
        self.group.push((sequence, reply));
    }

    /// Writes the encoded group and syncs it as the policy requires.
    fn write_group(&mut self) -> Result<()> {
        if let Err(err) = self.file.write_all(&self.buf) {
            return Err(self.poison(io_error("write segment", &self.path)(err)));
        }
        self.size += self.buf.len() as u64;
        self.next_sequence += self.group.len() as u64;
        self.shared
            .next_sequence
            .store(self.next_sequence, Ordering::Release);
        let since = *self.unsynced_since.get_or_insert_with(Instant::now);
        match self.policy {
            FsyncPolicy::Always => self.sync_if_dirty(),
            FsyncPolicy::Interval if since.elapsed() >= self.interval => self.sync_if_dirty(),
            FsyncPolicy::Interval | FsyncPolicy::Never => Ok(()),
        }
    }

    /// fdatasyncs the active segment if anything written is not yet durable.
    fn sync_if_dirty(&mut self) -> Result<()> {
        if let Some(message) = &self.poisoned {
            return Err(Error::Poisoned(message.clone()));
        }
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        if let Err(err) = self.file.sync_data() {
            return Err(self.poison(io_error("fdatasync segment", &self.path)(err)));
        }
        metrics::histogram!("tidewatch_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
        self.shared.sync_count.fetch_add(1, Ordering::Relaxed);
        self.unsynced_since = None;
        Ok(())
    }

    /// Closes the full active segment and continues in a new one named after the next sequence.
    fn roll(&mut self) -> Result<()> {
        // Recovery treats only the last segment as possibly torn, so the old one must be fully
        // durable before a newer segment can exist on disk.
        self.sync_if_dirty()?;
        let path = segment_path(&self.shared.dir, self.next_sequence);
        let file = match create_segment(&self.shared.dir, &path) {
            Ok(file) => file,
            Err(err) => return Err(self.poison(err)),
        };
        self.shared.lock_segments().push(Segment {
            first_sequence: self.next_sequence,
            path: path.clone(),
        });
        debug!(
            previous = %self.path.display(),
            previous_bytes = self.size,
            segment = %path.display(),
            "rolled wal segment"
        );
        self.file = file;
        self.path = path;
        self.size = 0;
        Ok(())
    }

    /// Records `err` as fatal for this log and hands it back for the current caller(s).
    fn poison(&mut self, err: Error) -> Error {
        error!(
            segment = %self.path.display(),
            error = %err,
            "wal write failed, refusing further appends"
        );
        self.poisoned = Some(err.to_string());
        // Nothing more will be synced; without this the interval timer would spin.
        self.unsynced_since = None;
        err
    }
}
