//! Rollup history: the windows retention evicted from a live rollup, kept until the
//! rollup's own retention drops them.
//!
//! A live rollup holds its newest `retained_windows` windows per width. Older windows are
//! final (late events for them are dropped), so eviction renders them as closed rows and
//! they move here: first into `pending` (in memory, and in every checkpoint, so the WAL
//! behind them can go), then, once every window of a chunk of one width has been evicted,
//! into one Parquet file per (rollup, width, chunk) that the manifest lists. A chunk is a
//! UTC hour for sub-minute widths and a UTC day for the others (see [`chunk_ms`]), so
//! `pending`, which every checkpoint rewrites, holds at most about one chunk per width:
//! 3 600 one-second windows per group rather than a day's 86 400. A chunk that is already
//! in a segment is never collected again, so rows re-evicted by replay or by recomputing a
//! rollup are not duplicated.
//!
//! Queries read the three tiers in window order: segments (oldest days), pending rows,
//! then the live rollup.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use tidewatch_rollup::{RollupRow, RollupSpec};
use tidewatch_store::{Segment, SegmentMeta};
use tidewatch_types::{TimestampMs, WindowWidth};

use crate::checkpoint::StoredRow;
use crate::error::{Error, Result};

pub(crate) const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// What the manifest records about a rollup segment: the windows of one width of one
/// rollup that start in one chunk (see [`chunk_ms`]). In `segment`, `partition` is the
/// chunk's start,
/// `min_ts` the first window's start, `max_ts` the last window's end; `through_seq` is
/// unused (0): rollup rows do not come from one WAL range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupSegmentMeta {
    pub rollup: String,
    pub window: WindowWidth,
    #[serde(flatten)]
    pub segment: SegmentMeta,
}

/// The evicted windows of one rollup.
#[derive(Debug, Default)]
pub(crate) struct RollupHistory {
    /// Evicted rows not yet in a segment, in eviction order.
    pending: Vec<RollupRow>,
    /// Segments, in the order they were written (per width, by day).
    cold: Vec<(WindowWidth, Arc<Segment>)>,
}

/// The rows of one complete chunk of one width, to be written as a segment.
pub(crate) struct ChunkJob {
    pub window: WindowWidth,
    /// The chunk's start.
    pub start: TimestampMs,
    pub rows: Vec<RollupRow>,
}

/// What a query reads from the history, taken under the stream's lock.
pub(crate) struct HistoryPlan {
    segments: Vec<Arc<Segment>>,
    pending: Vec<RollupRow>,
}

impl RollupHistory {
    pub(crate) fn new(cold: Vec<(WindowWidth, Arc<Segment>)>, pending: Vec<RollupRow>) -> Self {
        let mut history = RollupHistory {
            pending: Vec::new(),
            cold,
        };
        history.collect(pending);
        history
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> &[RollupRow] {
        &self.pending
    }

    /// Adds evicted rows, skipping those of chunks already in a segment.
    pub(crate) fn collect(&mut self, rows: Vec<RollupRow>) {
        if rows.is_empty() {
            return;
        }
        for row in rows {
            let stored = width_of(&row).is_some_and(|window| {
                self.cold.iter().any(|(w, segment)| {
                    // By range, not by chunk start: a data directory written when every
                    // chunk was a day holds day-long segments of sub-minute widths.
                    *w == window
                        && segment.meta.partition <= row.window_start
                        && row.window_start < segment.meta.max_ts
                })
            });
            if !stored {
                self.pending.push(row);
            }
        }
    }

    /// The pending rows a checkpoint must keep when the manifest lists it together with
    /// the segments of `chunks`: the rows of those chunks are in the segments. (Keeping
    /// them too made a checkpoint after a fast backfill hold days of one-second windows.)
    pub(crate) fn pending_outside<'a>(
        &'a self,
        chunks: &'a [ChunkJob],
    ) -> impl Iterator<Item = &'a RollupRow> {
        self.pending.iter().filter(move |row| {
            chunk_key(row).is_none_or(|key| !chunks.iter().any(|c| (c.window, c.start) == key))
        })
    }

    /// The pending chunks every window of which has been evicted: for each width, the
    /// chunks that end at or before `horizon(width)`.
    pub(crate) fn complete_chunks(
        &self,
        horizon: impl Fn(WindowWidth) -> Option<i64>,
    ) -> Vec<ChunkJob> {
        let mut jobs: Vec<ChunkJob> = Vec::new();
        for row in &self.pending {
            let Some((window, start)) = chunk_key(row) else {
                continue;
            };
            if horizon(window).is_none_or(|h| start.saturating_add(chunk_ms(window)) > h) {
                continue;
            }
            match jobs
                .iter_mut()
                .find(|j| j.window == window && j.start == start)
            {
                Some(job) => job.rows.push(row.clone()),
                None => jobs.push(ChunkJob {
                    window,
                    start,
                    rows: vec![row.clone()],
                }),
            }
        }
        for job in &mut jobs {
            sort_rows(&mut job.rows);
        }
        jobs
    }

    /// A chunk's segment is listed by the manifest: its rows leave `pending`.
    pub(crate) fn finish(
        &mut self,
        window: WindowWidth,
        start: TimestampMs,
        segment: Arc<Segment>,
    ) {
        self.pending
            .retain(|row| chunk_key(row) != Some((window, start)));
        self.cold.push((window, segment));
    }

    /// Rows of `window` with `from <= window_start < to` matching `filter`: the segments
    /// that may hold some (read outside the lock by [`HistoryPlan::run`]) and the pending
    /// ones.
    pub(crate) fn plan(
        &self,
        window: WindowWidth,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
    ) -> HistoryPlan {
        let in_range = |start: i64| from.is_none_or(|f| start >= f) && to.is_none_or(|t| start < t);
        let segments = self
            .cold
            .iter()
            .filter(|(w, s)| {
                *w == window
                    && from.is_none_or(|f| s.meta.max_ts > f)
                    && to.is_none_or(|t| s.meta.min_ts < t)
            })
            .map(|(_, s)| Arc::clone(s))
            .collect();
        let mut pending: Vec<RollupRow> = self
            .pending
            .iter()
            .filter(|r| {
                width_of(r) == Some(window) && in_range(r.window_start) && r.matches(filter)
            })
            .cloned()
            .collect();
        sort_rows(&mut pending);
        HistoryPlan { segments, pending }
    }

    /// Drops every window that ended at or before `cutoff`: pending rows, and segments all
    /// of whose windows did (returned, for the manifest and for deleting their files).
    pub(crate) fn expire_before(&mut self, cutoff: TimestampMs) -> Vec<Arc<Segment>> {
        self.pending.retain(|row| row.window_end > cutoff);
        let mut gone = Vec::new();
        self.cold.retain(|(_, segment)| {
            let expired = segment.meta.max_ts <= cutoff;
            if expired {
                gone.push(Arc::clone(segment));
            }
            !expired
        });
        gone
    }

    pub(crate) fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.cold.iter().map(|(_, s)| s)
    }
}

impl HistoryPlan {
    /// Reads the planned segments and returns their rows that lie in range and match, then
    /// the pending rows: ordered by window start, then group values. With `newest`, stops
    /// once it has that many rows, reading segments newest day first (it may return
    /// more).
    pub(crate) fn run(
        self,
        spec: &RollupSpec,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
        newest: Option<usize>,
    ) -> Result<Vec<RollupRow>> {
        let mut segments = self.segments;
        segments.sort_by_key(|s| std::cmp::Reverse(s.meta.partition));
        let mut have = self.pending.len();
        let mut chunks = Vec::new();
        for segment in &segments {
            if newest.is_some_and(|n| have >= n) {
                break;
            }
            let mut rows = Vec::new();
            for batch in &tidewatch_store::segment::read_segment(&segment.path)? {
                rows.extend(batch_to_rows(spec, batch)?.into_iter().filter(|r| {
                    from.is_none_or(|f| r.window_start >= f)
                        && to.is_none_or(|t| r.window_start < t)
                        && r.matches(filter)
                }));
            }
            have += rows.len();
            chunks.push(rows);
        }
        // Oldest chunk first; each chunk's file is sorted already.
        let mut rows: Vec<RollupRow> = chunks.into_iter().rev().flatten().collect();
        rows.extend(self.pending);
        Ok(rows)
    }
}

/// A row as a checkpoint stores it.
pub(crate) fn to_stored(row: &RollupRow) -> StoredRow {
    StoredRow {
        window_start: row.window_start,
        window_end: row.window_end,
        closed: row.closed,
        group: row
            .group
            .iter()
            .map(|(_, v)| v.as_deref().map(str::to_owned))
            .collect(),
        values: row.values.iter().map(|(_, v)| *v).collect(),
    }
}

/// A checkpoint's row, named by `spec` (group values and aggregates in declaration order).
pub(crate) fn from_stored(spec: &RollupSpec, row: &StoredRow) -> RollupRow {
    RollupRow {
        window_start: row.window_start,
        window_end: row.window_end,
        closed: row.closed,
        group: spec
            .group_by
            .iter()
            .cloned()
            .zip(row.group.iter().map(|v| v.as_deref().map(Arc::from)))
            .collect(),
        values: spec
            .aggregates
            .0
            .iter()
            .map(|(name, _)| name.clone())
            .zip(row.values.iter().copied())
            .collect(),
    }
}

/// Start of the UTC day holding `ts`.
#[cfg(test)]
pub(crate) fn day_of(ts: TimestampMs) -> TimestampMs {
    ts - ts.rem_euclid(DAY_MS)
}

/// How much time one rollup segment of `width` covers: a UTC hour for sub-minute widths
/// (at most 3 600 windows per group), a UTC day for the others (at most 1 440).
pub(crate) fn chunk_ms(width: WindowWidth) -> i64 {
    if width.seconds() < 60 {
        HOUR_MS
    } else {
        DAY_MS
    }
}

/// Start of the chunk of `width` holding `ts`.
pub(crate) fn chunk_of(width: WindowWidth, ts: TimestampMs) -> TimestampMs {
    ts - ts.rem_euclid(chunk_ms(width))
}

/// The width of `row`'s window and the start of the chunk it belongs to.
fn chunk_key(row: &RollupRow) -> Option<(WindowWidth, TimestampMs)> {
    let width = width_of(row)?;
    Some((width, chunk_of(width, row.window_start)))
}

fn width_of(row: &RollupRow) -> Option<WindowWidth> {
    let millis = row.window_end.checked_sub(row.window_start)?;
    WindowWidth::from_seconds(u32::try_from(millis / 1000).ok()?)
}

/// The order of [`tidewatch_rollup::Rollup::query`]: window start, then group values
/// (nulls first).
fn sort_rows(rows: &mut [RollupRow]) {
    rows.sort_by(|a, b| {
        a.window_start.cmp(&b.window_start).then_with(|| {
            let key = |r: &RollupRow| r.group.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
            key(a).cmp(&key(b))
        })
    });
}

/// The table of a rollup window: `window_start`, `window_end`, `closed`, the group-by tags
/// (Utf8), one Float64 per aggregate. Rollup segments and SQL's rollup tables use it.
pub fn rollup_schema(spec: &RollupSpec) -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("window_start", timestamp.clone(), false),
        Field::new("window_end", timestamp, false),
        Field::new("closed", DataType::Boolean, false),
    ];
    for tag in &spec.group_by {
        fields.push(Field::new(tag, DataType::Utf8, true));
    }
    for (name, _) in &spec.aggregates.0 {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    Arc::new(Schema::new(fields))
}

/// `rows` of `spec` as one batch in [`rollup_schema`].
pub fn rows_to_batch(spec: &RollupSpec, rows: &[RollupRow]) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.window_start))
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.window_end))
                .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.closed)))),
    ];
    // A row's group and values are in declaration order; look them up by name anyway, so
    // a row that lacks one gives a null rather than a shifted column.
    for (i, tag) in spec.group_by.iter().enumerate() {
        columns.push(Arc::new(StringArray::from_iter(rows.iter().map(|row| {
            let value = match row.group.get(i) {
                Some((name, value)) if name == tag => value.as_ref(),
                _ => row
                    .group
                    .iter()
                    .find(|(n, _)| n == tag)
                    .and_then(|(_, v)| v.as_ref()),
            };
            value.map(|v| v.as_ref())
        }))));
    }
    for (i, (aggregate, _)) in spec.aggregates.0.iter().enumerate() {
        columns.push(Arc::new(Float64Array::from_iter(rows.iter().map(|row| {
            match row.values.get(i) {
                Some((name, value)) if name == aggregate => *value,
                _ => row
                    .values
                    .iter()
                    .find(|(n, _)| n == aggregate)
                    .and_then(|(_, v)| *v),
            }
        }))));
    }
    RecordBatch::try_new(rollup_schema(spec), columns).map_err(|e| Error::Internal(e.to_string()))
}

/// A batch in [`rollup_schema`] back as rows.
fn batch_to_rows(spec: &RollupSpec, batch: &RecordBatch) -> Result<Vec<RollupRow>> {
    let bad = |what: &str| Error::Internal(format!("rollup segment of {:?}: {what}", spec.name));
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| bad(name));
    let timestamps = |name: &str| {
        column(name)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| bad(name))
    };
    let starts = timestamps("window_start")?;
    let ends = timestamps("window_end")?;
    let closed = column("closed")?
        .as_boolean_opt()
        .ok_or_else(|| bad("closed"))?;
    let tags = spec
        .group_by
        .iter()
        .map(|tag| column(tag)?.as_string_opt::<i32>().ok_or_else(|| bad(tag)))
        .collect::<Result<Vec<_>>>()?;
    let values = spec
        .aggregates
        .0
        .iter()
        .map(|(name, _)| {
            column(name)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| bad(name))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((0..batch.num_rows())
        .map(|row| RollupRow {
            window_start: starts.value(row),
            window_end: ends.value(row),
            closed: closed.value(row),
            group: spec
                .group_by
                .iter()
                .zip(&tags)
                .map(|(tag, column)| {
                    let value = column.is_valid(row).then(|| Arc::from(column.value(row)));
                    (tag.clone(), value)
                })
                .collect(),
            values: spec
                .aggregates
                .0
                .iter()
                .zip(&values)
                .map(|((name, _), column)| {
                    (
                        name.clone(),
                        column.is_valid(row).then(|| column.value(row)),
                    )
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start: i64, width_ms: i64, symbol: Option<&str>, value: f64) -> RollupRow {
        RollupRow {
            window_start: start,
            window_end: start + width_ms,
            closed: true,
            group: vec![("symbol".into(), symbol.map(Arc::from))],
            values: vec![("n".into(), Some(value)), ("missing".into(), None)],
        }
    }

    #[test]
    fn rows_survive_the_arrow_round_trip_and_days_complete_by_horizon() {
        let spec: RollupSpec = serde_json::from_value(serde_json::json!({
            "name": "r", "group_by": ["symbol"], "windows": ["1h"],
            "aggregates": {"n": "count", "missing": "sum(price)"}
        }))
        .unwrap();
        let hour = 3_600_000;
        let rows = vec![
            row(0, hour, Some("B"), 1.0),
            row(0, hour, None, 2.5),
            row(23 * hour, hour, Some("A"), 3.0),
            row(DAY_MS, hour, Some("A"), 4.0),
        ];
        let batch = rows_to_batch(&spec, &rows).unwrap();
        assert_eq!(batch_to_rows(&spec, &batch).unwrap(), rows);

        let history = RollupHistory::new(Vec::new(), rows.clone());
        let width = WindowWidth::from_seconds(3600).unwrap();
        // The horizon inside day 1: only day 0 is complete, its rows sorted, nulls first.
        let jobs = history.complete_chunks(|w| (w == width).then_some(DAY_MS + hour));
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].window, jobs[0].start), (width, 0));
        let groups: Vec<_> = jobs[0].rows.iter().map(|r| r.group[0].1.clone()).collect();
        assert_eq!(groups, [None, Some(Arc::from("B")), Some(Arc::from("A"))]);
        // A horizon one window short of the day's end completes nothing.
        assert!(history.complete_chunks(|_| Some(DAY_MS - hour)).is_empty());
    }

    #[test]
    fn sub_minute_windows_complete_by_the_hour_and_a_stored_chunk_is_not_collected_again() {
        let second = 1000;
        let hour = 3_600_000;
        let width = WindowWidth::from_seconds(1).unwrap();
        // 1-second windows over the first 2.5 hours of a day, one group.
        let rows: Vec<RollupRow> = (0..9000)
            .map(|k| row(k * second, second, Some("A"), k as f64))
            .collect();
        let mut history = RollupHistory::new(Vec::new(), rows.clone());
        let jobs = history.complete_chunks(|_| Some(2 * hour + 30 * 60 * second));
        let chunks: Vec<(i64, usize)> = jobs.iter().map(|j| (j.start, j.rows.len())).collect();
        assert_eq!(chunks, [(0, 3600), (hour, 3600)]);
        // A checkpoint listed with those chunks' segments keeps only the half hour after.
        let outside: Vec<i64> = history
            .pending_outside(&jobs)
            .map(|r| r.window_start)
            .collect();
        assert_eq!(
            outside,
            (7200..9000).map(|k| k * second).collect::<Vec<_>>()
        );
        assert_eq!(history.pending_outside(&[]).count(), 9000);

        // Once the first hour is in a segment its rows leave pending, and replaying them
        // (or rows of a day-long segment an older version wrote) adds nothing.
        let dir = tempfile::tempdir().unwrap();
        let segment = |partition: i64, max_ts: i64| {
            Segment::new(
                SegmentMeta {
                    file: format!("{partition}.parquet"),
                    partition,
                    min_ts: partition,
                    max_ts,
                    rows: 0,
                    bytes: 0,
                    through_seq: 0,
                },
                dir.path(),
            )
        };
        history.finish(width, 0, segment(0, hour));
        assert_eq!(history.pending().len(), 9000 - 3600);
        history.collect(rows[..3600].to_vec());
        assert_eq!(history.pending().len(), 9000 - 3600);

        let mut old_layout = RollupHistory::new(vec![(width, segment(0, 2 * hour))], Vec::new());
        old_layout.collect(rows.clone());
        assert_eq!(old_layout.pending().len(), 9000 - 7200);
    }
}
