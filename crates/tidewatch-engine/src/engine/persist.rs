//! Persisting: hot partitions into Parquet segments, complete chunks of rollup history into
//! rollup segments, rollup state and producer ids into checkpoints, the manifest, WAL
//! truncation, and retention.
//!
//! A persist of one stream:
//! 1. Under the stream's lock, and only when every WAL record up to `through` (the last
//!    applied sequence with none missing before it) has been applied and none after it
//!    touched the stream: hand out the chosen partitions' rows and, when due, encode a
//!    checkpoint. Ingest goes on meanwhile; new rows stay in memory.
//! 2. Without the lock: write the segment and checkpoint files (temp, fsync, rename).
//! 3. Under the stream's lock: write the manifest that lists them, then drop the persisted
//!    rows from memory. Before the manifest is written the new files are debris, deleted
//!    at the next start; after, recovery skips exactly their rows in the WAL.
//!
//! Then WAL segments wholly below every stream's oldest unpersisted sequence are deleted.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tidewatch_rollup::RollupSpec;
use tidewatch_store::segment::{write_parquet, write_segment};
use tidewatch_store::{PersistJob, Segment, SegmentMeta, partition_start};
use tidewatch_types::time::now_ms;
use tracing::{info, warn};

use super::Engine;
use crate::checkpoint::{Checkpoint, RollupCheckpoint};
use crate::config::{Retention, millis};
use crate::error::{Error, Result};
use crate::history::{self, ChunkJob, RollupSegmentMeta};
use crate::manifest::{CHECKPOINTS_DIR, CheckpointMeta, Manifest, SEGMENTS_DIR};
use crate::stream::StreamHandle;

/// Shortest maintenance interval, whatever the configuration says.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Which hot partitions a persist writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistMode {
    /// Hours that are closed: the stream's newest event is past their end plus the
    /// allowed lateness. Checkpoints only when due.
    Closed,
    /// Everything in memory, and a checkpoint of every stream that changed (shutdown,
    /// memory pressure).
    All,
}

/// What one persist run wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistReport {
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
    pub checkpoints: usize,
    pub wal_segments_removed: usize,
}

/// Files of one stream's persist, written but not yet listed by the manifest.
struct Written {
    segments: Vec<(i64, Option<SegmentMeta>)>,
    rollup_segments: Vec<RollupSegmentMeta>,
    checkpoint: Option<CheckpointMeta>,
}

/// What a persist took from a stream under its lock, to write without it.
struct Claim {
    jobs: Vec<PersistJob>,
    rollup_jobs: Vec<RollupJob>,
    checkpoint: Option<Checkpoint>,
    /// The stream's `dirty_since` before the claim, restored if the persist fails.
    dirty_before: Option<u64>,
    /// Every WAL record up to this one is applied, and none after it touched the stream.
    through: u64,
}

enum Claimed {
    Ready(Claim),
    /// A later record was applied before an earlier one: try again in a moment.
    OutOfOrder,
}

/// How often, and how long apart, a persist looks again for a moment when the stream's
/// applied records are contiguous (20 ms in all).
const OUT_OF_ORDER_ATTEMPTS: u32 = 40;
const OUT_OF_ORDER_WAIT: std::time::Duration = std::time::Duration::from_micros(500);

/// A complete chunk of a rollup's history, to be written as a rollup segment.
struct RollupJob {
    spec: RollupSpec,
    chunk: ChunkJob,
}

impl Engine {
    /// Persists what `mode` selects in every stream, then truncates the WAL. Blocking
    /// (file I/O); runs one at a time.
    pub fn persist(&self, mode: PersistMode) -> Result<PersistReport> {
        let started = Instant::now();
        let mut manifest = self.manifest.lock();
        let mut report = PersistReport::default();
        let mut handles: Vec<Arc<StreamHandle>> = self.streams.read().values().cloned().collect();
        handles.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        let mut first_error = None;
        for handle in &handles {
            if let Err(e) = self.persist_stream(handle, mode, &mut manifest, &mut report) {
                warn!(stream = %handle.schema.name, error = %e, "persist failed; the data stays in memory and in the wal");
                first_error.get_or_insert(e);
            }
        }
        report.wal_segments_removed = self.truncate_wal(&handles)?;
        if report.segments + report.checkpoints + report.wal_segments_removed > 0 {
            metrics::counter!("tidewatch_persisted_rows_total").increment(report.rows);
            metrics::histogram!("tidewatch_persist_seconds")
                .record(started.elapsed().as_secs_f64());
            info!(
                ?mode,
                segments = report.segments,
                rows = report.rows,
                bytes = report.bytes,
                checkpoints = report.checkpoints,
                wal_segments_removed = report.wal_segments_removed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "persisted"
            );
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Runs persists and retention on their intervals until the task is dropped or
    /// aborted (an interrupted persist leaves only debris the next start deletes). Past
    /// `hot_memory_limit` a persist writes every partition, not only closed ones.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut persist = tokio::time::interval(self.config.persist_interval.max(MIN_INTERVAL));
        let mut retention = tokio::time::interval(self.config.retention_interval.max(MIN_INTERVAL));
        persist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let engine = Arc::clone(&self);
            let result = tokio::select! {
                _ = persist.tick() => tokio::task::spawn_blocking(move || {
                    let mode = if engine.hot_bytes() as u64 > engine.config.hot_memory_limit {
                        PersistMode::All
                    } else {
                        PersistMode::Closed
                    };
                    engine.persist(mode).map(|_| ())
                }).await,
                _ = retention.tick() => tokio::task::spawn_blocking(move || {
                    engine.expire(now_ms()).map(|_| ())
                }).await,
            };
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "maintenance run failed; retrying at the next tick")
                }
                Err(e) => warn!(error = %e, "maintenance task failed"),
            }
        }
    }

    /// Bytes held in memory by every stream's hot partitions.
    pub fn hot_bytes(&self) -> usize {
        let handles: Vec<Arc<StreamHandle>> = self.streams.read().values().cloned().collect();
        handles
            .iter()
            .map(|h| h.state.read().store.hot_bytes())
            .sum()
    }

    fn persist_stream(
        &self,
        handle: &StreamHandle,
        mode: PersistMode,
        manifest: &mut Manifest,
        report: &mut PersistReport,
    ) -> Result<()> {
        // Under sustained ingest, commits of other streams that became durable together
        // with this stream's may be applied after them; the moment when every applied
        // record is contiguous comes within an apply or two, so a persist waits for it
        // rather than skipping the round.
        let mut attempts = 0;
        let claim = loop {
            match self.claim(handle, mode) {
                Some(Claimed::Ready(claim)) => break claim,
                None => return Ok(()),
                Some(Claimed::OutOfOrder) if attempts < OUT_OF_ORDER_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(OUT_OF_ORDER_WAIT);
                }
                Some(Claimed::OutOfOrder) => {
                    metrics::counter!("tidewatch_persist_deferred_total").increment(1);
                    return Ok(());
                }
            }
        };
        let Claim {
            jobs,
            rollup_jobs,
            checkpoint,
            dirty_before,
            through,
        } = claim;

        let undo = |files: &[String]| {
            let mut state = handle.state.write();
            for job in &jobs {
                state.store.abort_persist(job.partition);
            }
            if let Some(before) = dirty_before {
                state.dirty_since = Some(state.dirty_since.map_or(before, |d| d.min(before)));
            }
            for file in files {
                let _ = std::fs::remove_file(self.config.data_dir.join(file));
            }
        };
        let written =
            match self.write_files(handle, &jobs, &rollup_jobs, checkpoint.as_ref(), through) {
                Ok(written) => written,
                Err((e, files)) => {
                    undo(&files);
                    return Err(e);
                }
            };

        let name = &handle.schema.name;
        let mut next = manifest.clone();
        let entry = next.streams.entry(name.clone()).or_default();
        entry
            .segments
            .extend(written.segments.iter().filter_map(|(_, m)| m.clone()));
        entry
            .rollup_segments
            .extend(written.rollup_segments.iter().cloned());
        let replaced = match &written.checkpoint {
            Some(meta) => entry.checkpoint.replace(meta.clone()),
            None => None,
        };
        let mut state = handle.state.write();
        if let Err(e) = next.store(&self.config.data_dir) {
            drop(state);
            undo(&written.files());
            return Err(e);
        }
        *manifest = next;
        for (partition, meta) in written.segments {
            if let Some(meta) = &meta {
                report.segments += 1;
                report.rows += meta.rows;
                report.bytes += meta.bytes;
            }
            let segment = meta.map(|m| Segment::new(m, &self.config.data_dir));
            state.store.finish_persist(partition, segment);
        }
        for meta in &written.rollup_segments {
            report.segments += 1;
            report.bytes += meta.segment.bytes;
            let segment = Segment::new(meta.segment.clone(), &self.config.data_dir);
            if let Some(live) = state.rollups.iter_mut().find(|r| r.name() == meta.rollup) {
                live.history
                    .finish(meta.window, meta.segment.partition, segment);
            }
        }
        if let Some(meta) = &written.checkpoint {
            state.checkpoint_bytes = meta.bytes;
        }
        drop(state);
        if let Some(meta) = &written.checkpoint {
            report.checkpoints += 1;
            report.bytes += meta.bytes;
        }
        if let Some(old) =
            replaced.filter(|old| Some(&old.file) != written.checkpoint.as_ref().map(|c| &c.file))
        {
            let _ = std::fs::remove_file(self.config.data_dir.join(old.file));
        }
        Ok(())
    }

    /// Step 1 of a persist, under the stream's lock: hands out the partitions `mode`
    /// selects, the complete chunks of rollup history and, when due, a checkpoint. `None`:
    /// nothing to persist.
    fn claim(&self, handle: &StreamHandle, mode: PersistMode) -> Option<Claimed> {
        let lateness = self.config.lateness_ms();
        let checkpoint_due = millis(self.config.checkpoint_interval);
        let mut state = handle.state.write();
        // Read under the stream's lock: no apply to this stream can slip in between.
        let through = self.applied.lock().first_unapplied().checked_sub(1)?;
        if state.max_applied_seq.is_some_and(|m| m > through) {
            // This stream applied a record while an earlier one, of another stream, is
            // still being applied.
            return Some(Claimed::OutOfOrder);
        }
        let newest = state.store.stats().last_ts;
        let jobs = state.store.begin_persist(|start, _| match mode {
            PersistMode::All => true,
            PersistMode::Closed => newest.is_some_and(|newest| {
                start.saturating_add(tidewatch_store::PARTITION_MS + lateness) <= newest
            }),
        });
        let due = state.dirty_since.is_some()
            && (mode == PersistMode::All
                || !jobs.is_empty()
                || now_ms() - state.checkpointed_at >= checkpoint_due);
        let chunks: Vec<Vec<ChunkJob>> = state
            .rollups
            .iter()
            .map(|r| r.history.complete_chunks(|w| r.rollup.evicted_before(w)))
            .collect();
        // The manifest lists this checkpoint and these chunks' segments together or
        // neither, so the checkpoint leaves the chunks' rows to the segments.
        let checkpoint = due.then(|| Checkpoint {
            seq: through,
            producer_ids: handle.producer_ids.lock().iter().copied().collect(),
            rollups: state
                .rollups
                .iter()
                .zip(&chunks)
                .map(|(r, chunks)| RollupCheckpoint {
                    name: r.name().to_owned(),
                    state: r.rollup.checkpoint(),
                    evicted: r
                        .history
                        .pending_outside(chunks)
                        .map(history::to_stored)
                        .collect(),
                })
                .collect(),
        });
        let rollup_jobs: Vec<RollupJob> = state
            .rollups
            .iter()
            .zip(chunks)
            .flat_map(|(r, chunks)| {
                chunks.into_iter().map(|chunk| RollupJob {
                    spec: r.rollup.spec().clone(),
                    chunk,
                })
            })
            .collect();
        let dirty_before = state.dirty_since;
        if due {
            state.dirty_since = None;
            state.checkpointed_at = now_ms();
        }
        if jobs.is_empty() && rollup_jobs.is_empty() && checkpoint.is_none() {
            return None;
        }
        Some(Claimed::Ready(Claim {
            jobs,
            rollup_jobs,
            checkpoint,
            dirty_before,
            through,
        }))
    }

    /// Writes a persist's segment, rollup segment and checkpoint files. On failure
    /// returns the files already written, for the caller to delete.
    fn write_files(
        &self,
        handle: &StreamHandle,
        jobs: &[PersistJob],
        rollup_jobs: &[RollupJob],
        checkpoint: Option<&Checkpoint>,
        through: u64,
    ) -> std::result::Result<Written, (Error, Vec<String>)> {
        let data_dir = &self.config.data_dir;
        let name = &handle.schema.name;
        let arrow_schema = Arc::clone(handle.state.read().store.arrow_schema());
        let mut written = Written {
            segments: Vec::with_capacity(jobs.len()),
            rollup_segments: Vec::with_capacity(rollup_jobs.len()),
            checkpoint: None,
        };
        // Directories whose entries changed: each new file's, and those create_dir_all
        // may have made on the way (up to `segments/`), so that a power loss cannot lose
        // a file the manifest lists.
        let segments_dir = data_dir.join(SEGMENTS_DIR);
        let mut dirs = HashSet::new();
        for job in rollup_jobs {
            match write_rollup_segment(data_dir, name, job) {
                Ok(meta) => {
                    let path = data_dir.join(&meta.segment.file);
                    dirs.extend(
                        path.ancestors()
                            .skip(1)
                            .take_while(|dir| dir.starts_with(&segments_dir))
                            .map(Path::to_path_buf),
                    );
                    written.rollup_segments.push(meta);
                }
                Err(e) => return Err((e, written.files())),
            }
        }
        for job in jobs {
            let file = format!("{SEGMENTS_DIR}/{name}/{}-{through}.parquet", job.partition);
            let result = write_segment(
                data_dir,
                file,
                job.partition,
                through,
                &arrow_schema,
                &job.batches,
            );
            let meta = match result {
                Ok(meta) => meta,
                Err(e) => return Err((e.into(), written.files())),
            };
            written.segments.push((job.partition, meta));
        }
        if let Some(checkpoint) = checkpoint {
            let file = format!("{CHECKPOINTS_DIR}/{name}-{through}.ckpt");
            let bytes = checkpoint.encode();
            let path = data_dir.join(&file);
            let result = std::fs::create_dir_all(data_dir.join(CHECKPOINTS_DIR))
                .and_then(|()| crate::catalog::write_atomically(&path, &bytes));
            if let Err(e) = result {
                let e = Error::Persist(format!("writing {}: {e}", path.display()));
                return Err((e, written.files()));
            }
            written.checkpoint = Some(CheckpointMeta {
                file,
                seq: through,
                bytes: bytes.len() as u64,
            });
        }
        if !jobs.is_empty() {
            dirs.insert(segments_dir.join(name));
            dirs.insert(segments_dir);
        }
        for dir in &dirs {
            if let Err(e) = sync_dir(dir) {
                return Err((e, written.files()));
            }
        }
        Ok(written)
    }

    /// Deletes WAL segments that hold nothing any stream still needs.
    fn truncate_wal(&self, handles: &[Arc<StreamHandle>]) -> Result<usize> {
        let mut bound = self.applied.lock().first_unapplied();
        for handle in handles {
            let state = handle.state.read();
            for seq in [state.store.min_unpersisted_seq(), state.dirty_since]
                .into_iter()
                .flatten()
            {
                bound = bound.min(seq);
            }
        }
        Ok(self.wal.remove_segments_before(bound)?)
    }

    /// Sets a stream's retention (`None` clears it back to the configured default) and
    /// records it in the catalog.
    pub fn set_retention(&self, stream: &str, retention: Option<Retention>) -> Result<()> {
        let handle = self.stream(stream)?;
        let rollups: Vec<String> = {
            let state = handle.state.read();
            state.rollups.iter().map(|r| r.name().to_owned()).collect()
        };
        let per_rollup = retention.iter().flat_map(|r| r.per_rollup.keys());
        if let Some(unknown) = per_rollup.into_iter().find(|name| !rollups.contains(name)) {
            return Err(Error::InvalidRollup(format!(
                "per_rollup names {unknown:?}, which is not a rollup of stream {stream:?} \
                 (its rollups: {})",
                rollups.join(", ")
            )));
        }
        let mut catalog = self.catalog.lock();
        let mut next = catalog.clone();
        let entry = next
            .stream_mut(stream)
            .ok_or_else(|| Error::UnknownStream(stream.to_owned()))?;
        entry.retention = retention;
        next.store(&self.config.catalog_path())?;
        *catalog = next;
        Ok(())
    }

    /// The retention in force for a stream: set through the API, else configured.
    pub fn retention(&self, stream: &str) -> Retention {
        let set = self
            .catalog
            .lock()
            .stream(stream)
            .and_then(|entry| entry.retention.clone());
        set.or_else(|| self.config.retention.get(stream).cloned())
            .unwrap_or_default()
    }

    /// Drops every stream's expired hours (events) and windows (rollups) as of `now`.
    /// Returns the rows dropped.
    pub fn expire(&self, now: i64) -> Result<u64> {
        let mut manifest = self.manifest.lock();
        let handles: Vec<Arc<StreamHandle>> = self.streams.read().values().cloned().collect();
        let mut dropped_rows = 0;
        for handle in handles {
            let name = &handle.schema.name;
            let retention = self.retention(name);
            let mut state = handle.state.write();
            let mut segments = Vec::new();
            for live in &mut state.rollups {
                if let Some(keep) = retention.for_rollup(live.name()) {
                    let cutoff = now.saturating_sub(millis(keep));
                    live.rollup.expire_before(cutoff);
                    segments.extend(live.history.expire_before(cutoff));
                }
            }
            let mut rows = 0;
            let mut events_cutoff = None;
            if let Some(keep) = retention.events {
                let cutoff = partition_start(now.saturating_sub(millis(keep)));
                let (expired, expired_rows) = state.store.expire_before(cutoff);
                if expired_rows > 0 || !expired.is_empty() {
                    events_cutoff = Some(cutoff);
                }
                segments.extend(expired);
                rows = expired_rows;
            }
            if segments.is_empty() && events_cutoff.is_none() {
                continue;
            }
            let gone: HashSet<&str> = segments.iter().map(|s| s.meta.file.as_str()).collect();
            let mut next = manifest.clone();
            let entry = next.streams.entry(name.clone()).or_default();
            entry.segments.retain(|s| !gone.contains(s.file.as_str()));
            entry
                .rollup_segments
                .retain(|s| !gone.contains(s.segment.file.as_str()));
            if let Some(cutoff) = events_cutoff {
                entry.expired_before = Some(entry.expired_before.map_or(cutoff, |c| c.max(cutoff)));
            }
            next.store(&self.config.data_dir)?;
            *manifest = next;
            drop(state);
            for segment in &segments {
                segment.mark_removed();
            }
            dropped_rows += rows;
            info!(stream = %name, rows, segments = segments.len(), "retention dropped expired data");
        }
        Ok(dropped_rows)
    }
}

impl Written {
    fn files(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter_map(|(_, m)| m.as_ref().map(|m| m.file.clone()))
            .chain(self.rollup_segments.iter().map(|r| r.segment.file.clone()))
            .chain(self.checkpoint.as_ref().map(|c| c.file.clone()))
            .collect()
    }
}

/// Writes one complete chunk of a rollup width as
/// `segments/<stream>/rollups/<rollup>/<width>/<chunk start>.parquet`.
fn write_rollup_segment(
    data_dir: &Path,
    stream: &str,
    job: &RollupJob,
) -> Result<RollupSegmentMeta> {
    let ChunkJob {
        window,
        start,
        rows,
    } = &job.chunk;
    let file = format!(
        "{SEGMENTS_DIR}/{stream}/rollups/{}/{window}/{start}.parquet",
        job.spec.name
    );
    let batch = history::rows_to_batch(&job.spec, rows)?;
    let bytes = write_parquet(&data_dir.join(&file), &batch)?;
    Ok(RollupSegmentMeta {
        rollup: job.spec.name.clone(),
        window: *window,
        segment: SegmentMeta {
            file,
            partition: *start,
            min_ts: rows.iter().map(|r| r.window_start).min().unwrap_or(*start),
            max_ts: rows.iter().map(|r| r.window_end).max().unwrap_or(*start),
            rows: rows.len() as u64,
            bytes,
            through_seq: 0,
        },
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Persist(format!("syncing {}: {e}", dir.display())))
}
