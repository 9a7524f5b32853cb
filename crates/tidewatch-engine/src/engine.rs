//! [`Engine`]: open and recover, declare, ingest, query, subscribe, close.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::{Map, Value};
use tidewatch_bus::{Client, Filter, Hub, SubscriptionId};
use tidewatch_ingest::ids::format_id;
use tidewatch_ingest::{Format, ParsedBatch, RowError, parse_batch};
use tidewatch_rollup::{Rollup, RollupRow, RollupSpec};
use tidewatch_store::{EventQuery, Segment, StoreSnapshot, StreamStore, partition_start};
use tidewatch_types::time::{format_rfc3339_ms, now_ms};
use tidewatch_types::{EventBatch, StreamSchema, TimestampMs, WindowWidth};
use tidewatch_wal::Wal;
use tracing::{info, warn};

use crate::catalog::{Catalog, StreamEntry};
use crate::checkpoint::Checkpoint;
use crate::config::{EngineConfig, Retention, millis};
use crate::error::{Error, Result};
use crate::history::{self, RollupHistory};
use crate::manifest::{Manifest, StreamManifest};
use crate::record;
use crate::render::{decode_cursor, encode_cursor, events_json};
use crate::stream::{LiveRollup, Observer, StreamHandle};
use crate::topic::{Topic, rollup_topic, stream_topic};

/// Most events one page may hold.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Page size when the client gives none.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// What an ingest request achieved. Sent to the client only once `durable` holds.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReceipt {
    pub accepted: usize,
    /// Rows whose producer-given id was already stored: skipped, not an error.
    pub duplicates: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RowError>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// Always true in a receipt: the batch is in the WAL under the `fsync` policy.
    pub durable: bool,
    pub fsync: &'static str,
    pub wal_sequence: Option<u64>,
}

/// A stream as `GET /api/v1/streams` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub tags: Vec<String>,
    pub fields: Map<String, Value>,
    pub rollups: Vec<RollupSpec>,
    pub rows: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    /// Parquet segments (events and rollup history) and the checkpoint.
    pub bytes_on_disk: u64,
    pub segments: usize,
    pub retention: Retention,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct EventsPage {
    pub events: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// Parameters of an events query, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct EventsRequest {
    pub from: Option<TimestampMs>,
    pub to: Option<TimestampMs>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What recovery found, reported in logs and at `/readyz`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverySummary {
    /// Parquet segments listed by the manifest.
    pub segments: usize,
    pub wal_segments: usize,
    pub wal_records: u64,
    pub rows: u64,
    /// Records naming a stream the catalog does not know (never expected).
    pub skipped_records: u64,
    /// What was cut from a torn or corrupt WAL tail, if anything.
    pub truncated: Option<String>,
    pub elapsed_ms: u64,
}

pub struct Engine {
    config: EngineConfig,
    /// Serialises declarations; the file is rewritten under this lock.
    catalog: Mutex<Catalog>,
    streams: RwLock<HashMap<String, Arc<StreamHandle>>>,
    wal: Wal,
    hub: Arc<Hub>,
    recovery: RecoverySummary,
    /// What is persisted; held for a whole persist or retention run, which it serialises.
    manifest: Mutex<Manifest>,
    /// Which WAL records have been applied (see [`Applied`]).
    applied: Arc<Mutex<Applied>>,
}

/// Tracks applied WAL sequences: batches become durable in sequence order but are applied
/// by concurrent tasks, so a persist may only claim "everything up to N" once every
/// record up to N has been applied.
#[derive(Debug)]
pub(crate) struct Applied {
    /// Every record below this sequence has been applied.
    next: u64,
    /// Applied records at or above `next`.
    ahead: std::collections::BTreeSet<u64>,
}

impl Applied {
    fn starting_at(next: u64) -> Self {
        Applied {
            next,
            ahead: std::collections::BTreeSet::new(),
        }
    }

    pub(crate) fn done(&mut self, seq: u64) {
        if seq < self.next {
            return;
        }
        self.ahead.insert(seq);
        while self.ahead.remove(&self.next) {
            self.next += 1;
        }
    }

    pub(crate) fn first_unapplied(&self) -> u64 {
        self.next
    }
}

impl Engine {
    /// Opens the data directory and recovers: loads the catalog and the manifest, restores
    /// each stream's segments and checkpoint, then replays the WAL after them through the
    /// same apply path as live ingest. Blocking; call it from a blocking context.
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let started = Instant::now();
        create_durable_dir(&config.data_dir)?;
        let catalog = Catalog::load(&config.catalog_path())?;
        let manifest = Manifest::load(&config.data_dir)?;
        let debris = manifest.remove_unlisted_files(&config.data_dir)?;
        if debris > 0 {
            info!(files = debris, "removed files of an interrupted persist");
        }
        let mut streams = HashMap::new();
        let mut rebuild = Vec::new();
        let mut replay_filters = HashMap::new();
        for entry in &catalog.streams {
            let name = &entry.schema.name;
            let persisted = manifest.streams.get(name);
            let (handle, stale) = Self::build_stream(&config, entry, persisted)?;
            let handle = Arc::new(handle);
            if !stale.is_empty() {
                rebuild.push((Arc::clone(&handle), stale));
            }
            if let Some(persisted) = persisted {
                replay_filters.insert(
                    name.clone(),
                    (persisted.persisted_through(), persisted.expired_before),
                );
            }
            streams.insert(name.clone(), handle);
        }

        let mut summary = RecoverySummary {
            segments: manifest.streams.values().map(|s| s.segments.len()).sum(),
            ..RecoverySummary::default()
        };
        let (wal, report) = Wal::open(config.wal_config(), |sequence, payload| {
            let decoded = record::decode(payload)?;
            let Some(handle) = streams.get(&decoded.stream) else {
                summary.skipped_records += 1;
                return Ok(());
            };
            if !decoded.batch.is_consistent_with(&handle.schema) {
                return Err(format!(
                    "a record of stream {:?} does not match its schema",
                    decoded.stream
                ));
            }
            remember_producer_ids(handle, &decoded.batch, &decoded.producer_ids);
            let filtered =
                replay_filters
                    .get(&decoded.stream)
                    .and_then(|(through, expired_before)| {
                        not_yet_persisted(&decoded.batch, sequence, through, *expired_before)
                    });
            let store_rows = filtered.as_ref().unwrap_or(&decoded.batch);
            summary.rows += store_rows.len() as u64;
            handle.replay(&decoded.batch, store_rows, sequence);
            Ok(())
        })?;
        for (handle, stale) in rebuild {
            handle.rebuild_rollups(&stale)?;
            warn!(stream = %handle.schema.name, rollups = ?stale, "rollups recomputed from the stored events (no usable checkpoint)");
        }
        summary.wal_segments = report.segments;
        summary.wal_records = report.records;
        summary.truncated = report.truncated.as_ref().map(|t| {
            format!(
                "dropped {} bytes at offset {} of {}: {}",
                t.dropped_bytes,
                t.offset,
                t.segment.display(),
                t.reason
            )
        });
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        if summary.skipped_records > 0 {
            warn!(
                records = summary.skipped_records,
                "wal records of undeclared streams were skipped"
            );
        }
        info!(
            segments = summary.segments,
            wal_segments = summary.wal_segments,
            records = summary.wal_records,
            rows = summary.rows,
            elapsed_ms = summary.elapsed_ms,
            "recovery complete"
        );
        let applied = Applied::starting_at(wal.next_sequence());
        Ok(Engine {
            config,
            catalog: Mutex::new(catalog),
            streams: RwLock::new(streams),
            wal,
            hub: Arc::new(Hub::new()),
            recovery: summary,
            manifest: Mutex::new(manifest),
            applied: Arc::new(Mutex::new(applied)),
        })
    }

    /// Builds a stream's handle from its declaration and what the manifest holds for it.
    /// Returns the names of rollups the checkpoint could not restore: they must be
    /// recomputed from the stored events once the WAL is replayed.
    fn build_stream(
        config: &EngineConfig,
        entry: &StreamEntry,
        persisted: Option<&StreamManifest>,
    ) -> Result<(StreamHandle, Vec<String>)> {
        let schema = Arc::new(entry.schema.clone());
        let mut store = StreamStore::new(Arc::clone(&schema), config.store_config());
        for meta in persisted.iter().flat_map(|p| &p.segments) {
            store.add_segment(Segment::new(meta.clone(), &config.data_dir));
        }
        let checkpoint = match persisted.and_then(|p| p.checkpoint.as_ref()) {
            None => None,
            Some(meta) => {
                let path = config.data_dir.join(&meta.file);
                match std::fs::read(&path)
                    .map_err(|e| Error::Recovery(format!("reading {}: {e}", path.display())))
                    .and_then(|bytes| Checkpoint::decode(&bytes))
                {
                    Ok(checkpoint) => Some(checkpoint),
                    Err(e) => {
                        warn!(stream = %schema.name, error = %e, "checkpoint unusable; rollups will be recomputed");
                        None
                    }
                }
            }
        };
        let handle = StreamHandle::new(Arc::clone(&schema), store);
        let mut stale = Vec::new();
        {
            let mut state = handle.state.write();
            for spec in &entry.rollups {
                let invalid = |e: tidewatch_rollup::Error| {
                    Error::Catalog(format!("rollup {:?} of {:?}: {e}", spec.name, schema.name))
                };
                let saved = checkpoint
                    .as_ref()
                    .and_then(|c| c.rollups.iter().find(|r| r.name == spec.name));
                let restored = saved.and_then(|saved| {
                    Rollup::restore(spec.clone(), &schema, config.rollup_config(), &saved.state)
                        .inspect_err(|e| warn!(stream = %schema.name, rollup = %spec.name, error = %e, "rollup checkpoint refused"))
                        .ok()
                });
                let cold = persisted
                    .iter()
                    .flat_map(|p| &p.rollup_segments)
                    .filter(|s| s.rollup == spec.name)
                    .map(|s| (s.window, Segment::new(s.segment.clone(), &config.data_dir)))
                    .collect();
                let pending = match (&restored, saved) {
                    (Some(_), Some(saved)) => saved
                        .evicted
                        .iter()
                        .map(|row| history::from_stored(spec, row))
                        .collect(),
                    _ => Vec::new(),
                };
                let history = RollupHistory::new(cold, pending);
                let rollup = match restored {
                    Some(rollup) => rollup,
                    None => {
                        if checkpoint.is_some() || persisted.is_some_and(|p| !p.segments.is_empty())
                        {
                            stale.push(spec.name.clone());
                        }
                        Rollup::new(spec.clone(), &schema, config.rollup_config())
                            .map_err(invalid)?
                    }
                };
                state
                    .rollups
                    .push(LiveRollup::new(&schema.name, rollup, history));
            }
            state.checkpoint_bytes = persisted
                .and_then(|p| p.checkpoint.as_ref())
                .map_or(0, |c| c.bytes);
            if let Some(checkpoint) = &checkpoint {
                state.rollups_through = checkpoint.seq;
                handle
                    .producer_ids
                    .lock()
                    .extend(checkpoint.producer_ids.iter().copied());
            }
        }
        Ok((handle, stale))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn recovery(&self) -> &RecoverySummary {
        &self.recovery
    }

    /// Declares a stream. Declaring an existing stream with the same schema is a no-op
    /// (domains declare theirs at every start); a different schema is a conflict.
    /// Returns whether the stream was created.
    pub fn declare_stream(&self, schema: StreamSchema) -> Result<bool> {
        schema.validate()?;
        let mut catalog = self.catalog.lock();
        if let Some(existing) = catalog.stream(&schema.name) {
            return if existing.schema == schema {
                Ok(false)
            } else {
                Err(Error::StreamConflict(schema.name))
            };
        }
        let entry = StreamEntry {
            schema,
            rollups: Vec::new(),
            retention: None,
        };
        let (handle, _) = Self::build_stream(&self.config, &entry, None)?;
        let name = entry.schema.name.clone();
        let mut next = catalog.clone();
        next.streams.push(entry);
        next.store(&self.config.catalog_path())?;
        *catalog = next;
        self.streams.write().insert(name.clone(), Arc::new(handle));
        info!(stream = %name, "stream declared");
        Ok(true)
    }

    /// Declares a rollup and computes it over the events already stored, so that it
    /// equals a recomputation from the stored events from the start. Declaring the same
    /// spec again is a no-op; a different spec under the same name is a conflict.
    pub fn declare_rollup(&self, stream: &str, spec: RollupSpec) -> Result<bool> {
        let handle = self.stream(stream)?;
        let mut catalog = self.catalog.lock();
        let Some(entry) = catalog.stream(stream) else {
            return Err(Error::UnknownStream(stream.to_owned()));
        };
        if let Some(existing) = entry.rollups.iter().find(|r| r.name == spec.name) {
            return if *existing == spec {
                Ok(false)
            } else {
                Err(Error::RollupConflict {
                    stream: stream.to_owned(),
                    rollup: spec.name,
                })
            };
        }
        let mut rollup = Rollup::new(spec.clone(), &handle.schema, self.config.rollup_config())
            .map_err(|e| Error::InvalidRollup(e.to_string()))?;
        rollup.set_keep_evicted(true);
        // Hold the state lock from backfill to registration so no batch slips between.
        let mut state = handle.state.write();
        let mut changes = Vec::new();
        let mut evicted = Vec::new();
        for batch in state.store.all_events()? {
            changes.clear();
            rollup.apply(&batch, &mut changes);
            evicted.append(&mut rollup.take_evicted());
        }
        let mut next = catalog.clone();
        if let Some(entry) = next.stream_mut(stream) {
            entry.rollups.push(spec);
        }
        next.store(&self.config.catalog_path())?;
        *catalog = next;
        let history = RollupHistory::new(Vec::new(), evicted);
        state.rollups.push(LiveRollup::new(stream, rollup, history));
        info!(stream, rollup = %state.rollups.last().map_or("", |r| r.name()), "rollup declared");
        Ok(true)
    }

    /// Registers `observer` for every batch of `stream` applied from now on (see
    /// [`Observer`]). Domains use it for per-event analytics such as anomaly detection.
    pub fn observe(&self, stream: &str, observer: Observer) -> Result<()> {
        let handle = self.stream(stream)?;
        // Under the state lock, so the observer starts exactly between two batches.
        let _state = handle.state.write();
        handle.observers.write().push(observer);
        Ok(())
    }

    pub fn stream(&self, name: &str) -> Result<Arc<StreamHandle>> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStream(name.to_owned()))
    }

    /// Every stream with its schema, rollups, row count and time range, by name.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let mut handles: Vec<Arc<StreamHandle>> = self.streams.read().values().cloned().collect();
        handles.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        handles.iter().map(|handle| self.info(handle)).collect()
    }

    /// One stream as [`Engine::streams`] lists it.
    pub fn stream_info(&self, name: &str) -> Result<StreamInfo> {
        Ok(self.info(&*self.stream(name)?))
    }

    fn info(&self, handle: &StreamHandle) -> StreamInfo {
        let mut info = stream_info(handle);
        info.retention = self.retention(&info.name);
        info
    }

    /// Parses and validates a request body for `stream`. CPU-bound; no I/O.
    pub fn parse(
        &self,
        stream: &str,
        body: &[u8],
        format: Format,
    ) -> Result<(Arc<StreamHandle>, ParsedBatch)> {
        let handle = self.stream(stream)?;
        let parsed = parse_batch(
            &handle.schema,
            body,
            format,
            &self.config.ingest_limits(),
            now_ms(),
        )?;
        Ok((handle, parsed))
    }

    /// Makes a parsed batch durable and live. Without `partial`, any rejected row rejects
    /// the whole batch and nothing is written.
    pub async fn commit(
        &self,
        handle: &Arc<StreamHandle>,
        parsed: ParsedBatch,
        partial: bool,
    ) -> Result<IngestReceipt> {
        let stream = handle.schema.name.as_str();
        if !parsed.rejected.is_empty() {
            metrics::counter!("tidewatch_ingest_rejected_rows_total", "stream" => stream.to_owned())
                .increment(parsed.rejected.len() as u64);
            if !partial || parsed.batch.is_empty() {
                return Err(Error::RejectedRows {
                    rows: parsed.rejected,
                    total: parsed.total_rows,
                });
            }
        }
        let ParsedBatch {
            batch,
            producer_ids,
            rejected,
            ..
        } = parsed;
        let (batch, producer_ids, reserved, duplicates) =
            reserve_producer_ids(handle, batch, producer_ids);
        let mut receipt = IngestReceipt {
            accepted: batch.len(),
            duplicates,
            rejected,
            first_id: None,
            last_id: None,
            durable: true,
            fsync: self.config.fsync.as_str(),
            wal_sequence: None,
        };
        if batch.is_empty() {
            return Ok(receipt);
        }
        receipt.first_id = batch.ids.iter().min().map(|&id| format_id(id));
        receipt.last_id = batch.ids.iter().max().map(|&id| format_id(id));
        let payload = record::encode(stream, &batch, &producer_ids);
        let (durable, turn) = handle.order.issue(|| self.wal.append_detached(payload))?;
        // Waiting for durability and applying run in their own task: if the client goes
        // away and this future is dropped, a batch that reached the WAL still reaches the
        // hot store, the rollups and the subscribers now, not only at the next restart.
        let (handle, hub) = (Arc::clone(handle), Arc::clone(&self.hub));
        let applied = Arc::clone(&self.applied);
        let started = Instant::now();
        let finish = tokio::spawn(async move {
            let outcome = durable.await;
            let append_time = started.elapsed();
            // Durable or not, this commit takes its turn, so later ones are not held up.
            let _turn = handle.order.wait(turn).await;
            let sequence = match outcome {
                Ok(Ok(sequence)) => sequence,
                outcome => {
                    // Not durable, so not stored: let a retry of these ids through.
                    let mut seen = handle.producer_ids.lock();
                    for id in reserved {
                        seen.remove(&id);
                    }
                    return Err(match outcome {
                        Ok(Err(e)) => Error::Wal(e),
                        _ => Error::Wal(tidewatch_wal::Error::Closed),
                    });
                }
            };
            metrics::histogram!("tidewatch_wal_append_seconds").record(append_time.as_secs_f64());
            handle.apply(&batch, sequence, &hub, &applied);
            let stream = handle.schema.name.clone();
            metrics::counter!("tidewatch_ingest_rows_total", "stream" => stream.clone())
                .increment(batch.len() as u64);
            metrics::counter!("tidewatch_ingest_batches_total", "stream" => stream).increment(1);
            Ok(sequence)
        });
        let sequence = finish
            .await
            .map_err(|e| Error::Internal(format!("the commit task failed: {e}")))??;
        receipt.wal_sequence = Some(sequence);
        Ok(receipt)
    }

    /// Parses and commits in one call.
    pub async fn ingest(
        &self,
        stream: &str,
        body: &[u8],
        format: Format,
        partial: bool,
    ) -> Result<IngestReceipt> {
        let (handle, parsed) = self.parse(stream, body, format)?;
        self.commit(&handle, parsed, partial).await
    }

    /// Commits a batch built in-process (simulator, backfill, benchmarks): every id was
    /// assigned by Tidewatch, so there is nothing to deduplicate.
    pub async fn ingest_batch(&self, stream: &str, batch: EventBatch) -> Result<IngestReceipt> {
        let handle = self.stream(stream)?;
        if !batch.is_consistent_with(&handle.schema) {
            return Err(Error::InvalidRequest(format!(
                "batch does not match the schema of {stream:?}"
            )));
        }
        let rows = batch.len();
        let parsed = ParsedBatch {
            batch,
            producer_ids: vec![false; rows],
            source_rows: (0..rows).collect(),
            rejected: Vec::new(),
            total_rows: rows,
        };
        self.commit(&handle, parsed, false).await
    }

    /// Newest-first events of a stream.
    pub fn events(&self, stream: &str, request: &EventsRequest) -> Result<EventsPage> {
        let handle = self.stream(stream)?;
        check_range(request.from, request.to)?;
        let limit = request.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(Error::InvalidRequest(format!(
                "limit must be between 1 and {MAX_PAGE_LIMIT}"
            )));
        }
        let before = match &request.cursor {
            None => None,
            Some(text) => Some(decode_cursor(text).ok_or_else(|| {
                Error::InvalidRequest(format!("cursor {text:?} is not one this server issued"))
            })?),
        };
        let mut tags = Vec::with_capacity(request.tags.len());
        for (name, value) in &request.tags {
            let index = handle.schema.tag_index(name).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "{name:?} is not a tag of stream {stream:?}; tags: {:?}",
                    handle.schema.tags
                ))
            })?;
            tags.push((index, value.clone()));
        }
        let query = EventQuery {
            from: request.from,
            to: request.to,
            tags,
            before,
            // One more than asked tells whether another page exists.
            limit: limit + 1,
        };
        let plan = handle.state.read().store.plan(&query);
        let mut batch = plan.run()?;
        let has_more = batch.len() > limit;
        if has_more {
            batch = batch.filter_rows(|row| row < limit);
        }
        let next_cursor = has_more.then(|| {
            let last = batch.len() - 1;
            encode_cursor(batch.ts[last], batch.ids[last])
        });
        Ok(EventsPage {
            events: events_json(&handle.schema, &batch),
            next_cursor,
        })
    }

    /// Rows of one rollup window width; without `window`, its first declared window.
    /// Returns the window used and the rows as JSON.
    pub fn rollup_rows(
        &self,
        stream: &str,
        rollup: &str,
        window: Option<WindowWidth>,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
    ) -> Result<(WindowWidth, Vec<Value>)> {
        let (window, rows) = self.rollup_query(stream, rollup, window, from, to, filter)?;
        Ok((window, rows.iter().map(RollupRow::to_json).collect()))
    }

    /// [`Engine::rollup_rows`] as typed rows (windows starting in `[from, to)`), for
    /// domains computing on them.
    pub fn rollup_query(
        &self,
        stream: &str,
        rollup: &str,
        window: Option<WindowWidth>,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
    ) -> Result<(WindowWidth, Vec<RollupRow>)> {
        let read = self.rollup_read(stream, rollup, window, from, to, filter)?;
        let mut rows = read.history.run(&read.spec, from, to, filter, None)?;
        rows.extend(read.recent);
        Ok((read.window, unexpired(rows, read.expired_through)))
    }

    /// The newest `n` rows (oldest first) of one rollup width with windows starting
    /// before `to`: reads the rollup's history on disk only as far back as it needs.
    pub fn rollup_tail(
        &self,
        stream: &str,
        rollup: &str,
        window: WindowWidth,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
        n: usize,
    ) -> Result<Vec<RollupRow>> {
        let read = self.rollup_read(stream, rollup, Some(window), None, to, filter)?;
        let need = n.saturating_sub(read.recent.len());
        let mut rows = if need == 0 {
            Vec::new()
        } else {
            read.history.run(&read.spec, None, to, filter, Some(need))?
        };
        rows.extend(read.recent);
        let mut rows = unexpired(rows, read.expired_through);
        let excess = rows.len().saturating_sub(n);
        rows.drain(..excess);
        Ok(rows)
    }

    /// Under the stream's lock: the rollup's rows in memory and the plan for its history.
    fn rollup_read(
        &self,
        stream: &str,
        rollup: &str,
        window: Option<WindowWidth>,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
    ) -> Result<RollupRead> {
        let handle = self.stream(stream)?;
        check_range(from, to)?;
        // Windows that ended by the rollup retention's cutoff are gone, whether or not the
        // retention job has dropped them yet.
        let expired_through = self
            .retention(stream)
            .for_rollup(rollup)
            .map(|keep| now_ms().saturating_sub(millis(keep)));
        let state = handle.state.read();
        let live = find_rollup(&state.rollups, stream, rollup)?;
        let window = match window {
            Some(window) => window,
            // A validated spec always declares at least one window.
            None => live.rollup.spec().windows.first().copied().ok_or_else(|| {
                Error::InvalidRequest(format!("rollup {rollup:?} declares no window"))
            })?,
        };
        check_window(live, window)?;
        let recent = live
            .rollup
            .query(window, from, to, filter)
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        Ok(RollupRead {
            window,
            spec: live.rollup.spec().clone(),
            recent,
            history: live.history.plan(window, from, to, filter),
            expired_through,
        })
    }

    /// The schema and data of a stream (hot batches and segments overlapping `[from,
    /// to)`), for readers that scan it outside the stream's lock, such as SQL.
    pub fn store_snapshot(
        &self,
        stream: &str,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    ) -> Result<(arrow_schema::SchemaRef, StoreSnapshot)> {
        let handle = self.stream(stream)?;
        let state = handle.state.read();
        Ok((
            Arc::clone(state.store.arrow_schema()),
            state.store.snapshot(from, to),
        ))
    }

    /// Subscribes `client` to `topic`: queues a snapshot, then deltas.
    pub fn subscribe(
        &self,
        client: &Arc<Client>,
        topic: &str,
        filter: Filter,
    ) -> Result<SubscriptionId> {
        let topic = Topic::parse(topic).map_err(Error::InvalidRequest)?;
        let handle = self.stream(topic.stream())?;
        let canonical = match &topic {
            Topic::Stream { stream } => stream_topic(stream),
            Topic::Rollup {
                stream,
                rollup,
                window,
            } => rollup_topic(stream, rollup, *window),
        };
        let state = handle.state.read();
        let snapshot = self.snapshot(&handle, &state, &topic, &filter)?;
        // Registered while the read lock still excludes publishers: no delta is lost.
        Ok(self.hub.subscribe(client, &canonical, filter, snapshot))
    }

    /// Sends fresh snapshots to a lagged client for all its subscriptions, then lets
    /// deltas through again. The caller drains the client's queue first; with at most
    /// as many subscriptions as queue slots (the server caps them), every snapshot fits.
    /// If one does not, the client stays lagged and the next resync tries again.
    pub fn resync(&self, client: &Arc<Client>) {
        let mut all_queued = true;
        for info in self.hub.subscriptions_of(client) {
            let Ok(topic) = Topic::parse(&info.topic) else {
                continue;
            };
            let Ok(handle) = self.stream(topic.stream()) else {
                continue;
            };
            let state = handle.state.read();
            if let Ok(snapshot) = self.snapshot(&handle, &state, &topic, &info.filter) {
                all_queued &= self.hub.resnapshot(client, info.id, snapshot);
            }
        }
        // Also when the client has no subscription left: a later subscribe must get through.
        if all_queued {
            client.clear_lagged();
        }
    }

    fn snapshot(
        &self,
        handle: &StreamHandle,
        state: &crate::stream::StreamState,
        topic: &Topic,
        filter: &[(String, String)],
    ) -> Result<Arc<str>> {
        let rows: Vec<Value> = match topic {
            Topic::Stream { stream } => {
                let mut tags = Vec::with_capacity(filter.len());
                for (name, value) in filter {
                    let index = handle.schema.tag_index(name).ok_or_else(|| {
                        Error::InvalidRequest(format!("{name:?} is not a tag of stream {stream:?}"))
                    })?;
                    tags.push((index, value.clone()));
                }
                // Newest events are hot but for a stream that saw nothing since a
                // restart; reading a segment under the lock is then acceptable.
                let batch = state.store.query(&EventQuery {
                    tags,
                    limit: self.config.snapshot_events,
                    ..EventQuery::default()
                })?;
                events_json(&handle.schema, &batch)
            }
            Topic::Rollup {
                stream,
                rollup,
                window,
            } => {
                let live = find_rollup(&state.rollups, stream, rollup)?;
                check_window(live, *window)?;
                live.rollup
                    .snapshot(*window, filter, self.config.snapshot_closed_windows)
                    .map_err(|e| Error::InvalidRequest(e.to_string()))?
                    .iter()
                    .map(|r| r.to_json())
                    .collect()
            }
        };
        Ok(Arc::from(Value::Array(rows).to_string()))
    }

    /// Persists every hot partition and a checkpoint of every stream, flushes the WAL to
    /// stable storage and stops its writer. A failed persist is logged, not fatal: the
    /// WAL still holds everything.
    pub async fn close(&self) -> Result<()> {
        if let Err(e) = self.persist(PersistMode::All) {
            warn!(error = %e, "persist at shutdown failed; the wal keeps the data");
        }
        self.wal.sync().await?;
        self.wal.close()?;
        info!("engine closed, wal synced");
        Ok(())
    }
}

/// Creates `dir` and any missing ancestors, fsyncing each new directory's parent so the
/// directory entries themselves survive a power loss.
fn create_durable_dir(dir: &std::path::Path) -> Result<()> {
    let io = |what: &str, path: &std::path::Path, e: std::io::Error| {
        Error::Recovery(format!("{what} {}: {e}", path.display()))
    };
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        cursor = path.parent();
    }
    for path in missing.into_iter().rev() {
        std::fs::create_dir(path).or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(io("creating", path, e)),
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing", parent, e))?;
    }
    Ok(())
}

fn stream_info(handle: &StreamHandle) -> StreamInfo {
    let state = handle.state.read();
    let stats = state.store.stats();
    let schema = &handle.schema;
    // Event segments and rollup segments.
    let segments: Vec<&Arc<Segment>> = state
        .store
        .segments()
        .chain(state.rollups.iter().flat_map(|r| r.history.segments()))
        .collect();
    StreamInfo {
        name: schema.name.clone(),
        tags: schema.tags.clone(),
        fields: schema
            .fields
            .iter()
            .map(|f| (f.name.clone(), Value::from(f.field_type.as_str())))
            .collect(),
        rollups: state
            .rollups
            .iter()
            .map(|r| r.rollup.spec().clone())
            .collect(),
        rows: stats.rows,
        first_ts: stats.first_ts.map(format_rfc3339_ms),
        last_ts: stats.last_ts.map(format_rfc3339_ms),
        bytes_on_disk: segments.iter().map(|s| s.meta.bytes).sum::<u64>() + state.checkpoint_bytes,
        segments: segments.len(),
        retention: Retention::default(),
    }
}

/// What a rollup query took under the stream's lock.
struct RollupRead {
    window: WindowWidth,
    spec: RollupSpec,
    /// Rows of the live rollup.
    recent: Vec<RollupRow>,
    history: history::HistoryPlan,
    /// Rollup retention's cutoff: windows ending at or before it are expired.
    expired_through: Option<TimestampMs>,
}

/// `rows` without the windows that ended at or before `cutoff`.
fn unexpired(mut rows: Vec<RollupRow>, cutoff: Option<TimestampMs>) -> Vec<RollupRow> {
    if let Some(cutoff) = cutoff {
        rows.retain(|row| row.window_end > cutoff);
    }
    rows
}

fn find_rollup<'a>(
    rollups: &'a [LiveRollup],
    stream: &str,
    rollup: &str,
) -> Result<&'a LiveRollup> {
    rollups
        .iter()
        .find(|r| r.name() == rollup)
        .ok_or_else(|| Error::UnknownRollup {
            stream: stream.to_owned(),
            rollup: rollup.to_owned(),
        })
}

fn check_window(live: &LiveRollup, window: WindowWidth) -> Result<()> {
    let windows = &live.rollup.spec().windows;
    if windows.contains(&window) {
        return Ok(());
    }
    let declared: Vec<String> = windows.iter().map(ToString::to_string).collect();
    Err(Error::InvalidRequest(format!(
        "rollup {:?} has no {window} window; declared windows: {}",
        live.name(),
        declared.join(", ")
    )))
}

fn check_range(from: Option<TimestampMs>, to: Option<TimestampMs>) -> Result<()> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(Error::InvalidRequest(format!(
            "from ({}) is after to ({})",
            format_rfc3339_ms(from),
            format_rfc3339_ms(to)
        ))),
        _ => Ok(()),
    }
}

/// The rows of WAL record `seq` that no segment holds yet and retention has not removed;
/// `None` when that is every row (the common case, without a copy).
fn not_yet_persisted(
    batch: &EventBatch,
    seq: u64,
    through: &std::collections::BTreeMap<i64, u64>,
    expired_before: Option<TimestampMs>,
) -> Option<EventBatch> {
    let keep = |row: usize| {
        let ts = batch.ts[row];
        expired_before.is_none_or(|cutoff| ts >= cutoff)
            && through
                .get(&partition_start(ts))
                .is_none_or(|&persisted| seq > persisted)
    };
    if (0..batch.len()).all(keep) {
        return None;
    }
    Some(batch.filter_rows(keep))
}

fn remember_producer_ids(handle: &StreamHandle, batch: &EventBatch, producer_ids: &[bool]) {
    let mut seen = handle.producer_ids.lock();
    for (row, _) in producer_ids.iter().enumerate().filter(|(_, given)| **given) {
        seen.insert(batch.ids[row]);
    }
}

/// Drops rows whose producer-given id is already stored or repeated within the batch,
/// and reserves the rest. Returns the remaining batch, its flags, the reserved ids and
/// the number of duplicates.
fn reserve_producer_ids(
    handle: &StreamHandle,
    batch: EventBatch,
    producer_ids: Vec<bool>,
) -> (EventBatch, Vec<bool>, Vec<u128>, usize) {
    if !producer_ids.iter().any(|&given| given) {
        return (batch, producer_ids, Vec::new(), 0);
    }
    let mut seen = handle.producer_ids.lock();
    let mut reserved = Vec::new();
    let keep: Vec<bool> = producer_ids
        .iter()
        .zip(&batch.ids)
        .map(|(&given, &id)| {
            if !given {
                return true;
            }
            let fresh = seen.insert(id);
            if fresh {
                reserved.push(id);
            }
            fresh
        })
        .collect();
    drop(seen);
    let duplicates = keep.iter().filter(|&&k| !k).count();
    if duplicates == 0 {
        return (batch, producer_ids, reserved, 0);
    }
    let batch = batch.filter_rows(|row| keep[row]);
    let producer_ids = producer_ids
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(g, _)| *g)
        .collect();
    (batch, producer_ids, reserved, duplicates)
}

mod persist;

pub use persist::{PersistMode, PersistReport};

#[cfg(test)]
mod tests;
