//! [`StreamStore`]: all partitions of one stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tidewatch_types::{EventBatch, EventId, StreamSchema, TimestampMs};

use crate::convert::{BatchView, RowCollector, arrow_schema, to_event_batch};
use crate::partition::Partition;
use crate::partition_start;

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

/// The hot copy of one stream's events.
pub struct StreamStore {
    schema: Arc<StreamSchema>,
    arrow_schema: SchemaRef,
    config: StoreConfig,
    partitions: BTreeMap<i64, Partition>,
    stats: StreamStats,
}

impl StreamStore {
    pub fn new(schema: Arc<StreamSchema>, config: StoreConfig) -> Self {
        StreamStore {
            arrow_schema: arrow_schema(&schema),
            schema,
            config,
            partitions: BTreeMap::new(),
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

    /// Appends every row of `batch` to the partition of its hour.
    pub fn append(&mut self, batch: &EventBatch) {
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
            self.partition_mut(first_partition)
                .append_rows(batch, 0..batch.len());
        } else {
            let mut by_partition: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (row, &ts) in batch.ts.iter().enumerate() {
                by_partition
                    .entry(partition_start(ts))
                    .or_default()
                    .push(row);
            }
            for (start, rows) in by_partition {
                self.partition_mut(start).append_rows(batch, rows);
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

    /// Record batches overlapping `[from, to)`, oldest partition first.
    pub fn scan(&self, from: Option<TimestampMs>, to: Option<TimestampMs>) -> Vec<RecordBatch> {
        let lo = from.map_or(i64::MIN, partition_start);
        let hi = to.unwrap_or(i64::MAX);
        self.partitions
            .range(lo..)
            .take_while(|(start, _)| **start < hi)
            .flat_map(|(_, p)| p.snapshot())
            .collect()
    }

    /// Every stored event, as event batches (one per record batch).
    pub fn all_events(&self) -> Vec<EventBatch> {
        self.scan(None, None)
            .iter()
            .filter_map(|b| to_event_batch(b, &self.schema))
            .collect()
    }

    /// The newest events matching `query`, newest first (by `ts`, then id).
    pub fn query(&self, query: &EventQuery) -> EventBatch {
        let mut collector = RowCollector::new(&self.schema);
        if query.limit == 0 {
            return collector.finish();
        }
        let lo = query.from.map_or(i64::MIN, partition_start);
        let hi = match (query.to, query.before) {
            (Some(to), Some((ts, _))) => to.min(ts.saturating_add(1)),
            (Some(to), None) => to,
            (None, Some((ts, _))) => ts.saturating_add(1),
            (None, None) => i64::MAX,
        };
        // Partitions are disjoint hours, so once `limit` rows are found in newer hours no
        // older hour can contribute.
        let mut candidates: Vec<(TimestampMs, EventId, usize, usize)> = Vec::new();
        let mut batches: Vec<RecordBatch> = Vec::new();
        for (_, partition) in self
            .partitions
            .range(lo..)
            .rev()
            .skip_while(|(start, _)| **start >= hi)
        {
            for batch in partition.snapshot() {
                let Some(view) = BatchView::new(&batch, &self.schema) else {
                    continue;
                };
                let batch_index = batches.len();
                for row in 0..view.len() {
                    if self.row_matches(&view, row, query) {
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
        collector.finish()
    }

    fn row_matches(&self, view: &BatchView<'_>, row: usize, query: &EventQuery) -> bool {
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
