//! [`StreamStore`]: all partitions of one stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tidewatch_types::{EventBatch, EventId, StreamSchema, TimestampMs};

use crate::convert::{BatchView, RowCollector, arrow_schema, to_event_batch};
use crate::partition::Partition;
use crate::partition_start;
use crate::segment::{Segment, SegmentError};

/// Tuning of the hot store.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// Rows after which a partition's open builders are sealed into a record batch.
    pub seal_rows: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { seal_rows: 65_536 }
    }
}

/// Row count and time range of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub rows: u64,
    pub first_ts: Option<TimestampMs>,
    pub last_ts: Option<TimestampMs>,
}

/// A newest-first page of events.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Inclusive lower bound on `ts`.
    pub from: Option<TimestampMs>,
    /// Exclusive upper bound on `ts`.
    pub to: Option<TimestampMs>,
    /// `(tag index, value)` pairs that must all match.
    pub tags: Vec<(usize, String)>,
    /// Return only events strictly older than this `(ts, id)` position.
    pub before: Option<(TimestampMs, EventId)>,
    pub limit: usize,
}

/// One stream's events: hour partitions in memory (hot) and Parquet segments (cold).
/// A partition hour may have both: rows that arrived after its segment was written.
pub struct StreamStore {
    schema: Arc<StreamSchema>,
    arrow_schema: SchemaRef,
    config: StoreConfig,
    partitions: BTreeMap<i64, Partition>,
    segments: BTreeMap<i64, Vec<Arc<Segment>>>,
    stats: StreamStats,
}

/// Rows of one partition handed out for persisting by [`StreamStore::begin_persist`].
pub struct PersistJob {
    pub partition: i64,
    pub batches: Vec<RecordBatch>,
}

/// The data of one stream at an instant: hot batches and the segments, both shared, so
/// a reader can work on them without holding the stream's lock.
#[derive(Clone, Default)]
pub struct StoreSnapshot {
    pub hot: Vec<RecordBatch>,
    pub segments: Vec<Arc<Segment>>,
}

impl StreamStore {
    pub fn new(schema: Arc<StreamSchema>, config: StoreConfig) -> Self {
        StreamStore {
            arrow_schema: arrow_schema(&schema),
            schema,
            config,
            partitions: BTreeMap::new(),
            segments: BTreeMap::new(),
            stats: StreamStats::default(),
        }
    }

    pub fn schema(&self) -> &Arc<StreamSchema> {
        &self.schema
    }

    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Appends every row of `batch`, from WAL record `seq`, to the partition of its hour.
    pub fn append(&mut self, batch: &EventBatch, seq: u64) {
        debug_assert!(batch.is_consistent_with(&self.schema));
        let newest_before = self.partitions.last_key_value().map(|(&k, _)| k);
        let Some(&first_ts) = batch.ts.first() else {
            return;
        };
        let first_partition = partition_start(first_ts);
        if batch
            .ts
            .iter()
            .all(|&ts| partition_start(ts) == first_partition)
        {
            // The common case: a batch within one hour.
            let partition = self.partition_mut(first_partition);
            partition.append_rows(batch, 0..batch.len());
            partition.note_seq(seq);
        } else {
            let mut by_partition: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (row, &ts) in batch.ts.iter().enumerate() {
                by_partition
                    .entry(partition_start(ts))
                    .or_default()
                    .push(row);
            }
            for (start, rows) in by_partition {
                let partition = self.partition_mut(start);
                partition.append_rows(batch, rows);
                partition.note_seq(seq);
            }
        }
        let (lo, hi) = batch.ts.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &ts| {
            (lo.min(ts), hi.max(ts))
        });
        self.stats.first_ts = Some(self.stats.first_ts.map_or(lo, |t| t.min(lo)));
        self.stats.last_ts = Some(self.stats.last_ts.map_or(hi, |t| t.max(hi)));
        self.stats.rows += batch.len() as u64;
        // When time moves into a new hour, seal the hours before the previous one: their
        // open builders would otherwise be copied by every query.
        let newest_after = self.partitions.last_key_value().map(|(&k, _)| k);
        if let Some(newest) = newest_after.filter(|_| newest_after != newest_before) {
            let cutoff = newest - crate::PARTITION_MS;
            for (_, partition) in self.partitions.range_mut(..cutoff) {
                if partition.open_rows() > 0 {
                    partition.seal();
                }
            }
        }
    }

    fn partition_mut(&mut self, start: i64) -> &mut Partition {
        let (schema, seal_rows) = (&self.arrow_schema, self.config.seal_rows);
        self.partitions
            .entry(start)
            .or_insert_with(|| Partition::new(schema.clone(), seal_rows))
    }

    /// Seals every partition's open rows (used before a consistent full scan, and by tests).
    pub fn seal_all(&mut self) {
        for partition in self.partitions.values_mut() {
            partition.seal();
        }
    }

    /// Hot record batches overlapping `[from, to)`, oldest partition first.
    pub fn scan(&self, from: Option<TimestampMs>, to: Option<TimestampMs>) -> Vec<RecordBatch> {
        let lo = from.map_or(i64::MIN, partition_start);
        let hi = to.unwrap_or(i64::MAX);
        self.partitions
            .range(lo..)
            .take_while(|(start, _)| **start < hi)
            .flat_map(|(_, p)| p.snapshot())
            .collect()
    }

    /// Hot batches and segments overlapping `[from, to)`.
    pub fn snapshot(&self, from: Option<TimestampMs>, to: Option<TimestampMs>) -> StoreSnapshot {
        let lo = from.map_or(i64::MIN, partition_start);
        let hi = to.unwrap_or(i64::MAX);
        StoreSnapshot {
            hot: self.scan(from, to),
            segments: self
                .segments
                .range(lo..)
                .take_while(|(start, _)| **start < hi)
                .flat_map(|(_, s)| s.iter().cloned())
                .collect(),
        }
    }

    /// Every stored event, hot and cold, as event batches.
    pub fn all_events(&self) -> Result<Vec<EventBatch>, SegmentError> {
        let mut batches = Vec::new();
        for segment in self.segments.values().flatten() {
            batches.extend(segment.read()?);
        }
        batches.extend(self.scan(None, None));
        Ok(batches
            .iter()
            .filter_map(|b| to_event_batch(b, &self.schema))
            .collect())
    }

    /// What [`EventQuery::run`] needs, taken under the stream's lock: the hours that may
    /// hold matching rows, newest first, each with its hot batches and segments.
    pub fn plan(&self, query: &EventQuery) -> QueryPlan {
        let lo = query.from.map_or(i64::MIN, partition_start);
        let hi = query_upper_bound(query);
        let mut hours: BTreeMap<i64, HourSources> = BTreeMap::new();
        if query.limit > 0 {
            for (start, partition) in self.partitions.range(lo..).take_while(|(s, _)| **s < hi) {
                hours.entry(*start).or_default().0 = partition.snapshot();
            }
            for (start, segments) in self.segments.range(lo..).take_while(|(s, _)| **s < hi) {
                hours.entry(*start).or_default().1 = segments.clone();
            }
        }
        QueryPlan {
            schema: Arc::clone(&self.schema),
            query: query.clone(),
            hours: hours.into_iter().rev().collect(),
        }
    }

    /// The newest events matching `query`, newest first (by `ts`, then id). Reads
    /// segment files under the caller's borrow; prefer [`Self::plan`] outside a lock.
    pub fn query(&self, query: &EventQuery) -> Result<EventBatch, SegmentError> {
        self.plan(query).run()
    }

    /// Hands out the rows of every partition `choose(start, max_ts)` accepts (not already
    /// persisting), sealing their open builders. Rows appended later stay in memory.
    pub fn begin_persist(&mut self, mut choose: impl FnMut(i64, i64) -> bool) -> Vec<PersistJob> {
        let mut jobs = Vec::new();
        for (&start, partition) in &mut self.partitions {
            let Some((_, max_ts)) = partition.time_range() else {
                continue;
            };
            if partition.is_persisting() || !choose(start, max_ts) {
                continue;
            }
            if let Some(batches) = partition.begin_persist() {
                jobs.push(PersistJob {
                    partition: start,
                    batches,
                });
            }
        }
        jobs
    }

    /// A persist of `partition` is durable as `segment` (`None`: it had no rows): its
    /// rows leave memory and the segment serves them from now on.
    pub fn finish_persist(&mut self, partition: i64, segment: Option<Arc<Segment>>) {
        if let Some(hot) = self.partitions.get_mut(&partition)
            && !hot.finish_persist()
        {
            self.partitions.remove(&partition);
        }
        if let Some(segment) = segment {
            self.segments.entry(partition).or_default().push(segment);
        }
    }

    /// A persist of `partition` failed: its rows stay in memory.
    pub fn abort_persist(&mut self, partition: i64) {
        if let Some(hot) = self.partitions.get_mut(&partition) {
            hot.abort_persist();
        }
    }

    /// Adds a segment found in the manifest at start.
    pub fn add_segment(&mut self, segment: Arc<Segment>) {
        let meta = &segment.meta;
        self.stats.rows += meta.rows;
        self.stats.first_ts = Some(
            self.stats
                .first_ts
                .map_or(meta.min_ts, |t| t.min(meta.min_ts)),
        );
        self.stats.last_ts = Some(
            self.stats
                .last_ts
                .map_or(meta.max_ts, |t| t.max(meta.max_ts)),
        );
        self.segments
            .entry(meta.partition)
            .or_default()
            .push(segment);
    }

    /// Drops every partition and segment whose hour ends at or before `cutoff`, hot and
    /// cold. Returns the dropped segments and the number of rows dropped. The caller marks
    /// the segments removed (their files go when the last reader lets go) once the
    /// manifest no longer lists them.
    pub fn expire_before(&mut self, cutoff: TimestampMs) -> (Vec<Arc<Segment>>, u64) {
        let last_expired = |start: i64| start.saturating_add(crate::PARTITION_MS) <= cutoff;
        let mut rows = 0u64;
        let hot: Vec<i64> = self
            .partitions
            .iter()
            .filter(|(start, p)| last_expired(**start) && !p.is_persisting())
            .map(|(start, _)| *start)
            .collect();
        for start in hot {
            if let Some(p) = self.partitions.remove(&start) {
                rows += p.rows() as u64;
            }
        }
        let cold: Vec<i64> = self
            .segments
            .keys()
            .copied()
            .filter(|start| last_expired(*start))
            .collect();
        let mut dropped = Vec::new();
        for start in cold {
            for segment in self.segments.remove(&start).unwrap_or_default() {
                rows += segment.meta.rows;
                dropped.push(segment);
            }
        }
        if rows > 0 {
            self.stats.rows = self.stats.rows.saturating_sub(rows);
            let hot_first = self
                .partitions
                .values()
                .filter_map(|p| p.time_range())
                .map(|r| r.0);
            let cold_first = self.segments.values().flatten().map(|s| s.meta.min_ts);
            self.stats.first_ts = hot_first.chain(cold_first).min();
            if self.stats.first_ts.is_none() {
                self.stats.last_ts = None;
            }
        }
        (dropped, rows)
    }

    /// Smallest WAL sequence of rows held only in memory: the WAL must keep it.
    pub fn min_unpersisted_seq(&self) -> Option<u64> {
        self.partitions
            .values()
            .filter_map(Partition::min_seq)
            .min()
    }

    /// Every segment, oldest partition first.
    pub fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.segments.values().flatten()
    }

    /// Approximate bytes of Arrow memory held by the hot partitions.
    pub fn hot_bytes(&self) -> usize {
        self.partitions
            .values()
            .flat_map(|p| p.sealed_batches())
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self
                .partitions
                .values()
                .map(|p| p.open_rows() * 64)
                .sum::<usize>()
    }

    /// Number of partitions and sealed batches, for tests and metrics.
    pub fn shape(&self) -> (usize, usize) {
        let sealed = self
            .partitions
            .values()
            .map(|p| p.sealed_batches().len())
            .sum();
        (self.partitions.len(), sealed)
    }
}

#[cfg(test)]
mod tests;

/// Exclusive upper bound on the partitions a query can touch.
fn query_upper_bound(query: &EventQuery) -> i64 {
    match (query.to, query.before) {
        (Some(to), Some((ts, _))) => to.min(ts.saturating_add(1)),
        (Some(to), None) => to,
        (None, Some((ts, _))) => ts.saturating_add(1),
        (None, None) => i64::MAX,
    }
}

/// One hour's rows: hot batches and segments.
type HourSources = (Vec<RecordBatch>, Vec<Arc<Segment>>);

/// An events query bound to the data it may read; see [`StreamStore::plan`].
pub struct QueryPlan {
    schema: Arc<StreamSchema>,
    query: EventQuery,
    /// Newest hour first.
    hours: Vec<(i64, HourSources)>,
}

impl QueryPlan {
    /// Runs the query, reading segment files as needed. Hours are disjoint, so once
    /// `limit` rows are found in newer hours no older hour can contribute.
    pub fn run(self) -> Result<EventBatch, SegmentError> {
        let query = &self.query;
        let mut collector = RowCollector::new(&self.schema);
        let mut candidates: Vec<(TimestampMs, EventId, usize, usize)> = Vec::new();
        let mut batches: Vec<RecordBatch> = Vec::new();
        for (_, (hot, segments)) in self.hours {
            let mut hour = hot;
            for segment in &segments {
                hour.extend(segment.read()?);
            }
            for batch in hour {
                let Some(view) = BatchView::new(&batch, &self.schema) else {
                    continue;
                };
                let batch_index = batches.len();
                for row in 0..view.len() {
                    if row_matches(&view, row, query) {
                        candidates.push((view.ts(row), view.id(row), batch_index, row));
                    }
                }
                batches.push(batch);
            }
            if candidates.len() >= query.limit {
                break;
            }
        }
        candidates.sort_unstable_by_key(|&(ts, id, _, _)| std::cmp::Reverse((ts, id)));
        candidates.truncate(query.limit);
        let views: Vec<Option<BatchView<'_>>> = batches
            .iter()
            .map(|b| BatchView::new(b, &self.schema))
            .collect();
        for (_, _, batch_index, row) in candidates {
            if let Some(view) = &views[batch_index] {
                collector.push(view, row);
            }
        }
        Ok(collector.finish())
    }
}

fn row_matches(view: &BatchView<'_>, row: usize, query: &EventQuery) -> bool {
    let ts = view.ts(row);
    if query.from.is_some_and(|from| ts < from) || query.to.is_some_and(|to| ts >= to) {
        return false;
    }
    if query
        .before
        .is_some_and(|position| (ts, view.id(row)) >= position)
    {
        return false;
    }
    query
        .tags
        .iter()
        .all(|(tag, value)| view.tag(*tag, row) == Some(value.as_str()))
}
