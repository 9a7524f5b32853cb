//! Write-ahead log of Tidewatch: owns the durability of ingested data between the HTTP
//! acknowledgement and the store persisting it.
//!
//! Payloads are opaque bytes (the caller encodes event batches). The contract: once
//! [`Wal::append`] resolves `Ok(sequence)`, the record is durable under the configured
//! [`FsyncPolicy`] and [`Wal::open`] replays it after a crash (kill -9; with
//! [`FsyncPolicy::Always`] also after power loss). A record whose append did not resolve `Ok`
//! may or may not be replayed.
//!
//! # On-disk format
//!
//! The log is a directory of segment files named after the sequence of their first record,
//! zero-padded to 20 digits: `dir/00000000000000000001.wal`. Files with other names are
//! ignored; `dir/LOCK` is held with an exclusive lock while a [`Wal`] is open. A segment is a
//! plain concatenation of records, all integers little-endian:
//!
//! ```text
//! u32 payload_len | u32 crc32c | u64 sequence | payload (payload_len bytes)
//! ```
//!
//! `crc32c` is CRC-32C (Castagnoli) over the 8 sequence bytes followed by the payload.
//! Sequences start at 1 and are dense: each record's sequence is the previous one's plus one,
//! across segment boundaries too, and a segment's first record carries the sequence in its name.
//!
//! When recovery reads a record whose header is incomplete, whose length exceeds 256 MiB or the
//! bytes left in the file, whose CRC mismatches or whose sequence is not the expected one, that
//! record starts the bad tail. In the last segment the tail is what a crash tore off mid-write:
//! it is truncated away (logged at warn, reported in [`RecoveryReport::truncated`]). In any other
//! segment it cannot be a torn write, because a segment is fdatasynced before the next one is
//! created; [`Wal::open`] then refuses with [`Error::Corrupt`].
//!
//! New segment files are fsynced together with the directory, so a segment's existence is as
//! durable as its content. The active segment rolls over to a new one once it reaches
//! [`WalConfig::segment_bytes`] (at a write-group boundary, so it may overshoot by one record).
//!
//! # Writing
//!
//! A dedicated thread owns the active segment (see `writer.rs`): appends queue up, are written
//! as one group with a single `write`, fdatasynced per policy, and then acknowledged together.

mod format;
mod recovery;
mod writer;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{error, info};

use crate::format::{MAX_PAYLOAD_LEN, segment_path};
use crate::recovery::Segment;
use crate::writer::{Request, Writer};

/// Largest payload [`Wal::append`] accepts (256 MiB); recovery rejects longer length fields.
pub const MAX_PAYLOAD_BYTES: usize = MAX_PAYLOAD_LEN;

/// Name of the lock file that keeps two [`Wal`]s (in one or several processes) off one directory.
const LOCK_FILE: &str = "LOCK";

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed. Shared via `Arc` because one failed write is reported to
    /// every append of its group.
    #[error("wal: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// Damage that is not a torn tail of the last segment; the log refuses to open.
    #[error("wal: corrupt segment {} at offset {offset}: {reason}", segment.display())]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The replay callback of [`Wal::open`] failed.
    #[error("wal: replay failed: {0}")]
    Replay(String),
    /// An earlier write or fdatasync failed; the log accepts nothing more until reopened.
    #[error("wal: poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// The log was closed.
    #[error("wal: closed")]
    Closed,
    /// Another open [`Wal`] holds the directory.
    #[error("wal: directory {} is locked by another open log", dir.display())]
    Locked { dir: PathBuf },
    /// A payload larger than [`MAX_PAYLOAD_BYTES`] was offered.
    #[error("wal: payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge { len: usize, max: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adapter for `map_err`: wraps an [`io::Error`] with what was being done to which path.
pub(crate) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        op,
        path,
        source: Arc::new(source),
    }
}

/// When an appended record is made durable (fdatasync) relative to its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Acknowledge after an fdatasync covering the record; survives power loss.
    #[default]
    Always,
    /// Acknowledge after `write(2)` (survives a process crash); the writer fdatasyncs at most
    /// [`WalConfig::fsync_interval`] later.
    Interval,
    /// Acknowledge after `write(2)`; fdatasync only on [`Wal::sync`], segment roll and close.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory of the segment files; created if missing.
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Upper bound on how long written data stays unsynced under [`FsyncPolicy::Interval`].
    pub fsync_interval: Duration,
    /// The active segment is rolled once it holds at least this many bytes.
    pub segment_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            dir: PathBuf::from("wal"),
            fsync: FsyncPolicy::Always,
            fsync_interval: Duration::from_millis(100),
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What [`Wal::open`] found and repaired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Segment files found in the directory.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// On-disk bytes (headers included) of the replayed records.
    pub bytes: u64,
    /// The torn or corrupt tail cut off the last segment, if there was one.
    pub truncated: Option<Truncation>,
    /// Sequence of the last replayed record.
    pub last_sequence: Option<u64>,
}

/// A bad tail removed from the last segment during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub segment: PathBuf,
    /// Where the first bad record started; the segment's length afterwards.
    pub offset: u64,
    pub dropped_bytes: u64,
    pub reason: String,
}

/// State shared between the [`Wal`] handle and its writer thread.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    /// All segments in sequence order; the last is the writer's active one. The writer appends
    /// on roll, [`Wal::remove_segments_before`] removes from the front.
    pub(crate) segments: Mutex<Vec<Segment>>,
    pub(crate) sync_count: AtomicU64,
    pub(crate) next_sequence: AtomicU64,
}

impl Shared {
    pub(crate) fn lock_segments(&self) -> MutexGuard<'_, Vec<Segment>> {
        // The list is consistent after every statement that changes it, so a panic elsewhere
        // while it was held leaves nothing to repair.
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An open write-ahead log. `Send + Sync`; share it through an `Arc`.
///
/// Dropping it closes it like [`Wal::close`].
pub struct Wal {
    /// `None` once closed. Dropping the sender is what tells the writer to finish.
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<Result<()>>>>,
    shared: Arc<Shared>,
}

impl Wal {
    /// Opens (creating `dir` if needed), replays every intact record in sequence order by
    /// calling `replay(sequence, payload)`, repairs a torn or corrupt tail by truncating the last
    /// segment at the first bad record (logged at warn), then starts the writer.
    ///
    /// An error returned by `replay` aborts with [`Error::Replay`]. Damage in a segment other
    /// than the last is not a tail: open fails with [`Error::Corrupt`]. Either way `replay` may
    /// already have been called for the records before the failure.
    pub fn open<F>(config: WalConfig, mut replay: F) -> Result<(Wal, RecoveryReport)>
    where
        F: FnMut(u64, &[u8]) -> std::result::Result<(), String>,
    {
        let dir = config.dir.clone();
        create_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let recovery::Recovered {
            mut segments,
            last_len,
            next_sequence,
            report,
        } = recovery::recover(&dir, &mut replay)?;

        let (file, path, size) = match segments.last() {
            Some(last) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io_error("open segment", &last.path))?;
                (file, last.path.clone(), last_len)
            }
            None => {
                let path = segment_path(&dir, next_sequence);
                let file = create_segment(&dir, &path)?;
                segments.push(Segment {
                    first_sequence: next_sequence,
                    path: path.clone(),
                });
                (file, path, 0)
            }
        };

        let shared = Arc::new(Shared {
            dir: dir.clone(),
            segments: Mutex::new(segments),
            sync_count: AtomicU64::new(0),
            next_sequence: AtomicU64::new(next_sequence),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            rx,
            shared: Arc::clone(&shared),
            policy: config.fsync,
            interval: config.fsync_interval,
            segment_bytes: config.segment_bytes,
            file,
            path,
            size,
            next_sequence,
            unsynced_since: None,
            poisoned: None,
            carry: None,
            buf: Vec::new(),
            group: Vec::new(),
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("tidewatch-wal".to_owned())
            .spawn(move || writer.run())
            .map_err(io_error("spawn writer thread for", &dir))?;

        info!(
            dir = %dir.display(),
            segments = report.segments,
            records = report.records,
            bytes = report.bytes,
            truncated = report.truncated.is_some(),
            next_sequence,
            fsync = ?config.fsync,
            "wal opened"
        );
        let wal = Wal {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            shared,
        };
        Ok((wal, report))
    }

    /// Appends one record and resolves with its sequence number once it is durable under the
    /// policy (see [`FsyncPolicy`]). Dropping the future does not withdraw the record.
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64> {
        self.append_detached(payload)?
            .await
            .unwrap_or(Err(Error::Closed))
    }

    /// [`Wal::append`] for callers without an async runtime:
    /// `wal.append_detached(payload)?.blocking_recv()`. The receiver yields exactly what
    /// `append` would resolve with; a receive error means the writer is gone (treat as
    /// [`Error::Closed`]).
    pub fn append_detached(&self, payload: Vec<u8>) -> Result<oneshot::Receiver<Result<u64>>> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Request::Append { payload, reply })?;
        Ok(rx)
    }

    /// Makes everything written so far durable (fdatasync), whatever the policy. Acts as a
    /// barrier for all appends issued before it.
    pub async fn sync(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Sync { reply })?;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Deletes whole segments all of whose records have a sequence below `sequence`; the active
    /// segment is never deleted. Returns how many were deleted. Oldest first, so a failure
    /// (or crash) midway leaves a gap-free suffix of the log.
    pub fn remove_segments_before(&self, sequence: u64) -> Result<usize> {
        let mut segments = self.shared.lock_segments();
        // Segment i ends right before segment i + 1 starts; the last one has no known end.
        let covered = segments
            .windows(2)
            .take_while(|pair| pair[1].first_sequence <= sequence)
            .count();
        let mut removed = 0;
        let mut result = Ok(());
        for segment in &segments[..covered] {
            match fs::remove_file(&segment.path) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => removed += 1,
                Err(err) => {
                    result = Err(io_error("remove segment", &segment.path)(err));
                    break;
                }
            }
        }
        segments.drain(..removed);
        drop(segments);
        result?;
        if removed > 0 {
            sync_dir(&self.shared.dir)?;
            info!(
                dir = %self.shared.dir.display(),
                removed,
                before_sequence = sequence,
                "removed wal segments"
            );
        }
        Ok(removed)
    }

    /// Stops the writer after it has written and fdatasynced everything queued; later calls
    /// fail with [`Error::Closed`]. Returns the writer's final error, e.g. if it was poisoned.
    /// Closing again is a no-op.
    pub fn close(&self) -> Result<()> {
        drop(lock(&self.tx).take());
        // Held while joining, so a concurrent close returns only once the writer is done.
        let mut thread = lock(&self.thread);
        match thread.take() {
            None => Ok(()),
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(Error::Poisoned("wal writer thread panicked".to_owned()))),
        }
    }

    /// Sequence the next appended record will get (informational; racy under concurrency).
    pub fn next_sequence(&self) -> u64 {
        self.shared.next_sequence.load(Ordering::Acquire)
    }

    /// fdatasyncs of segment data done by this instance; shows group commit at work.
    pub fn sync_count(&self) -> u64 {
        self.shared.sync_count.load(Ordering::Relaxed)
    }

    /// Directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn send(&self, request: Request) -> Result<()> {
        let tx = lock(&self.tx);
        tx.as_ref()
            .ok_or(Error::Closed)?
            .send(request)
            .map_err(|_| Error::Closed)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            error!(dir = %self.shared.dir.display(), error = %err, "closing wal on drop failed");
        }
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("next_sequence", &self.next_sequence())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked (an `Option` taken whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates `dir` if missing and makes its entry in the parent durable.
fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Takes the exclusive lock of the directory, held until the returned file is dropped.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(err)) => Err(io_error("lock", &path)(err)),
    }
}

/// Creates a new, empty segment at `path` for appending, durable with its directory entry.
pub(crate) fn create_segment(dir: &Path, path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("create segment", path))?;
    file.sync_all().map_err(io_error("fsync segment", path))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync directory", dir))
}

#[cfg(test)]
mod tests;
