//! [`Rollup`]: the live engine for one rollup of one stream — folds batches into window
//! cells, tracks the watermark, reports changes, evicts old windows and serves rows.
//!
//! Order of work in [`Rollup::apply`], which makes a batch's outcome independent of the order
//! of its rows:
//! 1. advance the watermark over the whole batch;
//! 2. evict windows behind the new retention horizon (only when the watermark entered a new
//!    window of that width);
//! 3. fold every row into one cell per width, skipping (and counting) rows whose window is
//!    already evicted;
//! 4. report retained windows whose end the watermark just passed.
//!
//! A change is a correction when its window was closed under the watermark from BEFORE the
//! batch: subscribers already saw that window final.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidewatch_types::{EventBatch, StreamSchema, WindowWidth};

use crate::aggregate::{AggState, Binding, RowInput};
use crate::group::{GroupId, GroupKey, GroupResolver, Groups, UNRESOLVED};
use crate::hll::hash_str;
use crate::row::RollupRow;
use crate::spec::RollupSpec;
use crate::window::{CellRef, WidthCells, window_bounds};
use crate::{Error, Result};

mod checkpoint;

/// Lateness and retention of a rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollupConfig {
    /// How far behind the newest event the watermark trails. Windows stay open this long
    /// past their end.
    pub allowed_lateness_ms: i64,
    /// Closed windows kept per group and width; older ones are evicted and late events for
    /// them are dropped.
    pub retained_windows: u32,
}

impl Default for RollupConfig {
    fn default() -> Self {
        RollupConfig {
            allowed_lateness_ms: 5_000,
            retained_windows: 1440,
        }
    }
}

impl RollupConfig {
    /// One second of lateness and four retained windows, so tests reach closing and
    /// eviction with a handful of events.
    pub fn test_config() -> Self {
        RollupConfig {
            allowed_lateness_ms: 1_000,
            retained_windows: 4,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.allowed_lateness_ms < 0 {
            return Err(Error::InvalidConfig(
                "allowed_lateness_ms must not be negative",
            ));
        }
        if self.retained_windows == 0 {
            return Err(Error::InvalidConfig("retained_windows must be at least 1"));
        }
        Ok(())
    }
}

/// One window of one group whose row changed in an [`Rollup::apply`] call: its state was
/// updated, or it became closed. Resolve it with [`Rollup::row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub width: WindowWidth,
    pub window_start: i64,
    pub group: GroupId,
    /// The window was already closed before this batch touched it.
    pub correction: bool,
}

/// Per-width state.
#[derive(Debug)]
struct Width {
    width: WindowWidth,
    millis: i64,
    /// Every cell of this width with `start < evicted_before` has been evicted; events for
    /// such windows are dropped. Only grows.
    evicted_before: i64,
    cells: WidthCells,
    /// `[start, end)` of the last window computed, so consecutive rows in the same window
    /// skip the division. Empty (`start == end`) until the first row.
    last_bounds: (i64, i64),
}

impl Width {
    #[inline]
    fn bounds(&mut self, ts: i64) -> Option<(i64, i64)> {
        let (start, end) = self.last_bounds;
        if ts >= start && ts < end {
            return Some(self.last_bounds);
        }
        let bounds = window_bounds(self.width, ts)?;
        self.last_bounds = bounds;
        Some(bounds)
    }
}

/// Buffers reused across batches so the steady state allocates only for new windows and
/// groups.
#[derive(Debug, Default)]
struct Scratch {
    resolver: GroupResolver,
    inputs: Vec<RowInput>,
    /// Per schema tag: the hashes of this batch's dictionary entries (only for tags that a
    /// `distinct` reads).
    tag_hashes: Vec<Vec<u64>>,
}

/// The live state of one rollup.
#[derive(Debug)]
pub struct Rollup {
    spec: RollupSpec,
    config: RollupConfig,
    /// Schema index of each `group_by` tag, in `group_by` order.
    group_tags: Vec<usize>,
    /// Per aggregate, where its input is read.
    bindings: Vec<Binding>,
    /// Schema indices of the tags `distinct` reads; their dictionaries are hashed per batch.
    hashed_tags: Vec<usize>,
    widths: Vec<Width>,
    groups: Groups,
    max_ts: Option<i64>,
    late_dropped: u64,
    /// Number of `apply` calls with rows; marks cells reported in the current call.
    epoch: u64,
    /// Whether eviction renders the evicted cells into `evicted`; off unless someone drains
    /// them, so nothing accumulates.
    keep_evicted: bool,
    /// Final rows of windows that retention evicted, waiting for [`Rollup::take_evicted`].
    evicted: Vec<RollupRow>,
    scratch: Scratch,
}

impl Rollup {
    /// Validates `spec` against `schema` and binds its names to column indices.
    pub fn new(spec: RollupSpec, schema: &StreamSchema, config: RollupConfig) -> Result<Rollup> {
        spec.validate(schema)?;
        config.validate()?;
        let group_tags = spec
            .group_by
            .iter()
            .map(|tag| {
                schema.tag_index(tag).ok_or_else(|| Error::UnknownGroupTag {
                    tag: tag.clone(),
                    stream: schema.name.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let bindings = spec
            .aggregates
            .iter()
            .map(|(name, expr)| Binding::new(name, expr, schema))
            .collect::<Result<Vec<_>>>()?;
        let mut hashed_tags: Vec<usize> = bindings.iter().filter_map(Binding::hashed_tag).collect();
        hashed_tags.sort_unstable();
        hashed_tags.dedup();
        let template: Box<[AggState]> = spec
            .aggregates
            .iter()
            .map(|(_, expr)| AggState::new(expr))
            .collect();
        let widths = spec
            .windows
            .iter()
            .map(|&width| Width {
                width,
                millis: width.millis(),
                evicted_before: i64::MIN,
                cells: WidthCells::new(template.clone()),
                last_bounds: (0, 0),
            })
            .collect();
        let scratch = Scratch {
            tag_hashes: vec![Vec::new(); schema.tags.len()],
            ..Scratch::default()
        };
        Ok(Rollup {
            spec,
            config,
            group_tags,
            bindings,
            hashed_tags,
            widths,
            groups: Groups::default(),
            max_ts: None,
            late_dropped: 0,
            epoch: 0,
            keep_evicted: false,
            evicted: Vec::new(),
            scratch,
        })
    }

    pub fn spec(&self) -> &RollupSpec {
        &self.spec
    }

    pub fn config(&self) -> &RollupConfig {
        &self.config
    }

    /// The newest event time seen minus the allowed lateness; `None` before any event.
    pub fn watermark(&self) -> Option<i64> {
        self.max_ts
            .map(|ts| ts.saturating_sub(self.config.allowed_lateness_ms))
    }

    /// Events not folded into at least one width because their window there was already
    /// evicted (or lies outside the representable time range).
    pub fn late_dropped(&self) -> u64 {
        self.late_dropped
    }

    /// The `group_by` values of a group, in `group_by` order.
    pub fn group_values(&self, group: GroupId) -> Option<&[Option<Arc<str>>]> {
        self.groups.key(group).map(|key| &**key)
    }

    /// Number of window cells held, over all groups and widths.
    pub fn cell_count(&self) -> usize {
        self.widths.iter().map(|w| w.cells.len()).sum()
    }

    /// Folds `batch` in and appends to `changes` one entry per (width, window, group) whose
    /// state changed in this call, plus each retained window the advancing watermark closed
    /// — each at most once per call. `batch` must have the columns of the schema the rollup
    /// was built with; short or missing columns read as nulls rather than panicking.
    pub fn apply(&mut self, batch: &EventBatch, changes: &mut Vec<Change>) {
        let Some(batch_max) = batch.ts.iter().copied().max() else {
            return;
        };
        self.epoch += 1;
        let before = self.watermark();
        self.max_ts = Some(self.max_ts.map_or(batch_max, |ts| ts.max(batch_max)));
        let after = self.watermark();
        if let Some(watermark) = after
            && after != before
        {
            self.evict(watermark);
        }
        self.fold(batch, before, changes);
        if let Some(watermark) = after
            && after != before
        {
            self.report_closed(before, watermark, changes);
        }
    }

    /// Raises each width's retention horizon to `retained_windows` windows before the window
    /// holding `watermark`, evicting cells behind it. The horizon moves only when the
    /// watermark enters a new window, so most batches do nothing here.
    fn evict(&mut self, watermark: i64) {
        let retained = i64::from(self.config.retained_windows);
        for index in 0..self.widths.len() {
            let Some(width) = self.widths.get(index) else {
                continue;
            };
            let Some((current, _)) = window_bounds(width.width, watermark) else {
                continue;
            };
            let horizon = current.saturating_sub(retained.saturating_mul(width.millis));
            self.raise_horizon(index, horizon, self.keep_evicted);
        }
    }

    /// Raises the horizon of width `index` to `horizon` (if that is higher) and drops its
    /// cells before it, first rendering them into `self.evicted` when `keep` is set. Returns
    /// the number of cells dropped.
    fn raise_horizon(&mut self, index: usize, horizon: i64, keep: bool) -> usize {
        let Some(width) = self.widths.get(index) else {
            return 0;
        };
        if horizon <= width.evicted_before {
            return 0;
        }
        if keep {
            let rows = self.rows_before(width, horizon);
            self.evicted.extend(rows);
        }
        let Some(width) = self.widths.get_mut(index) else {
            return 0;
        };
        width.evicted_before = horizon;
        width.cells.evict_before(horizon)
    }

    /// The rows of every group's cells of `width` starting before `horizon`, ordered like
    /// [`Self::query`].
    fn rows_before(&self, width: &Width, horizon: i64) -> Vec<RollupRow> {
        let mut cells = Vec::new();
        for (group, key) in self.groups.iter() {
            let range = width.cells.range(group.index(), None, Some(horizon));
            cells.extend(range.map(|cell| (key, cell)));
        }
        self.sorted_rows(width, cells)
    }

    /// Whether retention keeps the windows it evicts, as final rows, for
    /// [`Self::take_evicted`]. Off by default so that nothing accumulates when nobody
    /// drains them; turning it off keeps rows already collected until they are taken.
    pub fn set_keep_evicted(&mut self, keep: bool) {
        self.keep_evicted = keep;
    }

    /// Drains the windows evicted by retention since the last call (while
    /// [`Self::set_keep_evicted`] was on): one closed row per evicted cell, exactly as
    /// [`Self::query`] returned it just before eviction (except that a window that one
    /// watermark advance both closed and evicted reads `closed = true` here). Ordered by
    /// eviction: per batch, per width in spec order, then by window start and group values.
    /// The row's width is `window_end - window_start`. These rows are output, not rollup
    /// state: they are not part of [`Self::checkpoint`], so drain them before taking one.
    pub fn take_evicted(&mut self) -> Vec<RollupRow> {
        std::mem::take(&mut self.evicted)
    }

    /// The retention horizon of `width`: every window starting before it has been evicted
    /// (and later events for it are dropped). `None` before the first eviction, or for a
    /// width the rollup does not declare.
    pub fn evicted_before(&self, width: WindowWidth) -> Option<i64> {
        self.widths
            .iter()
            .find(|w| w.width == width)
            .map(|w| w.evicted_before)
            .filter(|&horizon| horizon != i64::MIN)
    }

    /// Time-based retention: drops, without keeping them for [`Self::take_evicted`], the
    /// windows of every width whose `window_end <= cutoff_ms`, and raises each width's
    /// retention horizon to match, so that late events for those windows are dropped (and
    /// counted in [`Self::late_dropped`]) from now on. Returns the number of cells dropped.
    /// A cutoff ahead of the watermark drops open windows too.
    pub fn expire_before(&mut self, cutoff_ms: i64) -> usize {
        let mut dropped = 0;
        for index in 0..self.widths.len() {
            let Some(width) = self.widths.get(index) else {
                continue;
            };
            // A window ends at or before the cutoff iff it starts before the window holding
            // the cutoff. Near i64::MIN that start does not exist, and neither does any
            // window ending before the cutoff.
            let Some(horizon) = cutoff_ms.checked_sub(cutoff_ms.rem_euclid(width.millis)) else {
                continue;
            };
            dropped += self.raise_horizon(index, horizon, false);
        }
        dropped
    }

    /// The per-row loop. `before` is the watermark before this batch (for corrections).
    fn fold(&mut self, batch: &EventBatch, before: Option<i64>, changes: &mut Vec<Change>) {
        let Rollup {
            bindings,
            hashed_tags,
            widths,
            groups,
            group_tags,
            late_dropped,
            epoch,
            scratch,
            ..
        } = self;
        let epoch = *epoch;
        let len = batch.ts.len();
        scratch.resolver.resolve(groups, group_tags, batch, len);
        for width in widths.iter_mut() {
            width.cells.ensure_groups(groups.len());
        }
        for &tag in hashed_tags.iter() {
            if let Some(hashes) = scratch.tag_hashes.get_mut(tag) {
                hashes.clear();
                if let Some(column) = batch.tags.get(tag) {
                    hashes.extend(column.dict.iter().map(|v| hash_str(v)));
                }
            }
        }
        scratch.inputs.clear();
        scratch.inputs.resize(bindings.len(), RowInput::Skip);

        for (row, (&ts, &group)) in batch.ts.iter().zip(&scratch.resolver.rows).enumerate() {
            if group == UNRESOLVED {
                *late_dropped += 1;
                continue;
            }
            let id = batch.ids.get(row).copied().unwrap_or_default();
            for (input, binding) in scratch.inputs.iter_mut().zip(bindings.iter()) {
                *input = binding.input(batch, row, &scratch.tag_hashes);
            }
            let mut dropped = false;
            for width in widths.iter_mut() {
                let Some((start, end)) = width.bounds(ts) else {
                    dropped = true;
                    continue;
                };
                if start < width.evicted_before {
                    // Folding it in would resurrect an evicted window with partial data.
                    dropped = true;
                    continue;
                }
                let Some(cell) = width.cells.cell_mut(group as usize, start) else {
                    continue;
                };
                for (state, &input) in cell.states.iter_mut().zip(scratch.inputs.iter()) {
                    state.update(input, ts, id);
                }
                if *cell.reported != epoch {
                    *cell.reported = epoch;
                    changes.push(Change {
                        width: width.width,
                        window_start: start,
                        group: GroupId(group),
                        correction: before.is_some_and(|wm| end <= wm),
                    });
                }
            }
            if dropped {
                *late_dropped += 1;
            }
        }
    }

    /// Reports every retained window with `before < end <= watermark` not already reported
    /// in this call.
    fn report_closed(&mut self, before: Option<i64>, watermark: i64, changes: &mut Vec<Change>) {
        let low = before.unwrap_or(i64::MIN);
        let epoch = self.epoch;
        for width in &mut self.widths {
            // Window ends are multiples of the width; one lies in (low, watermark] iff the
            // window holding the watermark starts after `low`.
            match window_bounds(width.width, watermark) {
                Some((current, _)) if current > low => {}
                _ => continue,
            }
            let (millis, name) = (width.millis, width.width);
            width.cells.scan_newest_first(|group, start, reported| {
                let end = start.saturating_add(millis);
                if end > watermark {
                    // Still open; older cells may have closed.
                    return true;
                }
                if end <= low {
                    // Closed before this call, and so is everything older.
                    return false;
                }
                if *reported != epoch {
                    *reported = epoch;
                    changes.push(Change {
                        width: name,
                        window_start: start,
                        group: GroupId(group as u32),
                        correction: false,
                    });
                }
                true
            });
        }
    }

    /// Rows of `width` with `from <= window_start < to` (either bound optional) for the
    /// groups matching `filter`, ordered by window start, then group values (nulls first).
    /// Filtering on a tag that is not in `group_by` is an error.
    pub fn query(
        &self,
        width: WindowWidth,
        from: Option<i64>,
        to: Option<i64>,
        filter: &[(String, String)],
    ) -> Result<Vec<RollupRow>> {
        let width = self.width(width)?;
        let filter = self.compile_filter(filter)?;
        let mut cells = Vec::new();
        for (group, key) in self.groups.iter() {
            if group_matches(key, &filter) {
                let range = width.cells.range(group.index(), from, to);
                cells.extend(range.map(|cell| (key, cell)));
            }
        }
        Ok(self.sorted_rows(width, cells))
    }

    /// What a new live subscriber needs: for each group matching `filter`, its open windows
    /// of `width` plus its last `closed_per_group` closed ones, ordered like [`Self::query`].
    pub fn snapshot(
        &self,
        width: WindowWidth,
        filter: &[(String, String)],
        closed_per_group: usize,
    ) -> Result<Vec<RollupRow>> {
        let width = self.width(width)?;
        let filter = self.compile_filter(filter)?;
        let watermark = self.watermark();
        let mut cells = Vec::new();
        for (group, key) in self.groups.iter() {
            if !group_matches(key, &filter) {
                continue;
            }
            let mut closed = 0;
            for cell in width.cells.newest_first(group.index()) {
                if is_closed(cell.start, width.millis, watermark) {
                    if closed == closed_per_group {
                        // Cells are sorted: everything older is closed too.
                        break;
                    }
                    closed += 1;
                }
                cells.push((key, cell));
            }
        }
        Ok(self.sorted_rows(width, cells))
    }

    /// The current row of a changed cell; `None` if it has been evicted since (or the change
    /// is not from this rollup).
    pub fn row(&self, change: &Change) -> Option<RollupRow> {
        let width = self.widths.iter().find(|w| w.width == change.width)?;
        let key = self.groups.key(change.group)?;
        let cell = width.cells.get(change.group.index(), change.window_start)?;
        Some(self.make_row(width, key, cell))
    }

    fn width(&self, width: WindowWidth) -> Result<&Width> {
        self.widths
            .iter()
            .find(|w| w.width == width)
            .ok_or_else(|| Error::UnknownWindow {
                rollup: self.spec.name.clone(),
                width,
            })
    }

    /// Resolves filter tags to positions in the group key.
    fn compile_filter<'f>(&self, filter: &'f [(String, String)]) -> Result<Vec<(usize, &'f str)>> {
        filter
            .iter()
            .map(|(tag, value)| {
                let position = self
                    .spec
                    .group_by
                    .iter()
                    .position(|g| g == tag)
                    .ok_or_else(|| Error::FilterNotGrouped {
                        tag: tag.clone(),
                        rollup: self.spec.name.clone(),
                        group_by: self.spec.group_by.clone(),
                    })?;
                Ok((position, value.as_str()))
            })
            .collect()
    }

    fn sorted_rows(
        &self,
        width: &Width,
        mut cells: Vec<(&GroupKey, CellRef<'_>)>,
    ) -> Vec<RollupRow> {
        cells.sort_by(|(ka, ca), (kb, cb)| ca.start.cmp(&cb.start).then_with(|| ka.cmp(kb)));
        cells
            .into_iter()
            .map(|(key, cell)| self.make_row(width, key, cell))
            .collect()
    }

    fn make_row(&self, width: &Width, key: &GroupKey, cell: CellRef<'_>) -> RollupRow {
        RollupRow {
            window_start: cell.start,
            window_end: cell.start.saturating_add(width.millis),
            closed: is_closed(cell.start, width.millis, self.watermark()),
            group: self
                .spec
                .group_by
                .iter()
                .cloned()
                .zip(key.iter().cloned())
                .collect(),
            values: self
                .spec
                .aggregates
                .iter()
                .zip(cell.states.iter())
                .map(|((name, _), state)| (name.to_owned(), state.value()))
                .collect(),
        }
    }
}

fn is_closed(start: i64, millis: i64, watermark: Option<i64>) -> bool {
    watermark.is_some_and(|wm| start.saturating_add(millis) <= wm)
}

fn group_matches(key: &GroupKey, filter: &[(usize, &str)]) -> bool {
    filter.iter().all(|&(position, value)| {
        key.get(position)
            .is_some_and(|v| v.as_deref() == Some(value))
    })
}
