//! Windows: checked tumbling-window arithmetic and the cells of one width for every group.
//!
//! Layout, chosen for the per-row path. Each row updates one cell per width, and the rows
//! of a batch hit groups in random order. If every group's newest cell sat in its own
//! allocation, almost every update would be a cache and TLB miss once thousands of
//! retained windows are spread over the heap. So the newest ("hot") window of every group
//! lives in dense arrays indexed by group id. Only windows a group has moved past ("cold")
//! live in a per-group deque. An in-order event touches the hot arrays only. A late event
//! finds its cold cell by binary search. Eviction pops cold cells from the front.
//!
//! Invariants per group: every cold start is below the hot start, and cold starts are
//! sorted and distinct. A group with no hot window has no cold windows either, because
//! eviction removes older windows first. A group with no hot window holds the empty states
//! in its hot slot.

use std::collections::VecDeque;

use tidewatch_types::WindowWidth;

use crate::aggregate::AggState;

/// `[start, end)` of the window of `width` holding `ts`, or `None` when the window would not
/// fit in an `i64` (timestamps that far out never pass ingest; they are skipped, not a panic).
#[inline]
pub(crate) fn window_bounds(width: WindowWidth, ts: i64) -> Option<(i64, i64)> {
    let millis = width.millis();
    let start = ts.checked_sub(ts.rem_euclid(millis))?;
    let end = start.checked_add(millis)?;
    Some((start, end))
}

/// Marks an empty hot slot. No window starts here: starts are multiples of 1000 ms and
/// `i64::MIN` is not.
const NO_WINDOW: i64 = i64::MIN;

/// Start and report mark of one group's hot window.
#[derive(Debug, Clone, Copy)]
struct Hot {
    start: i64,
    reported: u64,
}

/// A window a group has moved past.
#[derive(Debug, Clone)]
struct Cold {
    start: i64,
    reported: u64,
    states: Box<[AggState]>,
}

/// A cell as the per-row path sees it.
pub(crate) struct CellMut<'a> {
    pub(crate) states: &'a mut [AggState],
    /// The `apply` call that last reported this cell as changed; deduplicates changes
    /// within one call without a set.
    pub(crate) reported: &'a mut u64,
}

/// A cell as queries see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellRef<'a> {
    pub(crate) start: i64,
    pub(crate) states: &'a [AggState],
}

/// Every cell of one width, for every group of a rollup.
#[derive(Debug)]
pub(crate) struct WidthCells {
    /// Empty states, one per aggregate; cloned into new cells.
    template: Box<[AggState]>,
    hot: Vec<Hot>,
    /// `template.len()` states per group, group-major.
    hot_states: Vec<AggState>,
    cold: Vec<VecDeque<Cold>>,
    /// State arrays of evicted cells, reused for new cold cells so a steady stream of
    /// windows does not go through the allocator for each one. Contents are stale.
    spare: Vec<Box<[AggState]>>,
}

/// Most spare state arrays kept per width.
const MAX_SPARE: usize = 4096;

impl WidthCells {
    pub(crate) fn new(template: Box<[AggState]>) -> Self {
        WidthCells {
            template,
            hot: Vec::new(),
            hot_states: Vec::new(),
            cold: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Makes room for groups `0..groups`.
    pub(crate) fn ensure_groups(&mut self, groups: usize) {
        while self.hot.len() < groups {
            self.hot.push(Hot {
                start: NO_WINDOW,
                reported: 0,
            });
            self.hot_states.extend_from_slice(&self.template);
            self.cold.push(VecDeque::new());
        }
    }

    fn hot_range(&self, group: usize) -> std::ops::Range<usize> {
        let n = self.template.len();
        group * n..(group + 1) * n
    }

    /// The cell of `group` starting at `start`, created empty if absent. `None` only for a
    /// group that [`Self::ensure_groups`] has not covered.
    #[inline]
    pub(crate) fn cell_mut(&mut self, group: usize, start: i64) -> Option<CellMut<'_>> {
        let hot = self.hot.get(group)?.start;
        if start == hot {
            // The common case: the group's newest window.
        } else if start > hot {
            self.rotate(group, start);
        } else {
            return self.cold_mut(group, start);
        }
        let range = self.hot_range(group);
        Some(CellMut {
            states: self.hot_states.get_mut(range)?,
            reported: &mut self.hot.get_mut(group)?.reported,
        })
    }

    /// Moves the hot window of `group` (if any) to its cold list and opens `start` as hot.
    fn rotate(&mut self, group: usize, start: i64) {
        let range = self.hot_range(group);
        let (Some(hot), Some(states), Some(cold)) = (
            self.hot.get_mut(group),
            self.hot_states.get_mut(range),
            self.cold.get_mut(group),
        ) else {
            return;
        };
        if hot.start != NO_WINDOW {
            let mut moved = match self.spare.pop() {
                Some(spare) if spare.len() == states.len() => spare,
                _ => self.template.clone(),
            };
            moved.swap_with_slice(states);
            cold.push_back(Cold {
                start: hot.start,
                reported: hot.reported,
                states: moved,
            });
        }
        states.clone_from_slice(&self.template);
        *hot = Hot { start, reported: 0 };
    }

    /// A cell older than the hot window: found by binary search or inserted in order.
    fn cold_mut(&mut self, group: usize, start: i64) -> Option<CellMut<'_>> {
        let cold = self.cold.get_mut(group)?;
        let pos = match cold.binary_search_by_key(&start, |c| c.start) {
            Ok(pos) => pos,
            Err(pos) => {
                let states = match self.spare.pop() {
                    Some(mut spare) if spare.len() == self.template.len() => {
                        spare.clone_from_slice(&self.template);
                        spare
                    }
                    _ => self.template.clone(),
                };
                cold.insert(
                    pos,
                    Cold {
                        start,
                        reported: 0,
                        states,
                    },
                );
                pos
            }
        };
        let cell = cold.get_mut(pos)?;
        Some(CellMut {
            states: &mut cell.states,
            reported: &mut cell.reported,
        })
    }

    pub(crate) fn get(&self, group: usize, start: i64) -> Option<CellRef<'_>> {
        let hot = self.hot.get(group)?;
        if start == hot.start && start != NO_WINDOW {
            return Some(CellRef {
                start,
                states: self.hot_states.get(self.hot_range(group))?,
            });
        }
        let cold = self.cold.get(group)?;
        let pos = cold.binary_search_by_key(&start, |c| c.start).ok()?;
        cold.get(pos).map(|c| CellRef {
            start,
            states: &c.states,
        })
    }

    /// The cells of `group` with `from <= start < to` (unbounded sides when `None`), oldest
    /// first.
    pub(crate) fn range(
        &self,
        group: usize,
        from: Option<i64>,
        to: Option<i64>,
    ) -> impl DoubleEndedIterator<Item = CellRef<'_>> {
        let (cold, hot) = self.cells_of(group);
        let lo = from.map_or(0, |f| cold.partition_point(|c| c.start < f));
        let hi = to.map_or(cold.len(), |t| cold.partition_point(|c| c.start < t));
        let in_range =
            move |start: i64| from.is_none_or(|f| start >= f) && to.is_none_or(|t| start < t);
        cold.range(lo..hi.max(lo))
            .map(|c| CellRef {
                start: c.start,
                states: &c.states,
            })
            .chain(hot.filter(|c| in_range(c.start)))
    }

    /// All cells of `group`, newest first.
    pub(crate) fn newest_first(&self, group: usize) -> impl Iterator<Item = CellRef<'_>> {
        self.range(group, None, None).rev()
    }

    fn cells_of(&self, group: usize) -> (&VecDeque<Cold>, Option<CellRef<'_>>) {
        static EMPTY: VecDeque<Cold> = VecDeque::new();
        let cold = self.cold.get(group).unwrap_or(&EMPTY);
        let hot = self
            .hot
            .get(group)
            .filter(|h| h.start != NO_WINDOW)
            .and_then(|h| {
                Some(CellRef {
                    start: h.start,
                    states: self.hot_states.get(self.hot_range(group))?,
                })
            });
        (cold, hot)
    }

    /// Calls `visit(start, reported)` for the cells of every group, newest first per group,
    /// moving to the next group as soon as `visit` returns `false`.
    pub(crate) fn scan_newest_first(
        &mut self,
        mut visit: impl FnMut(usize, i64, &mut u64) -> bool,
    ) {
        for (group, (hot, cold)) in self.hot.iter_mut().zip(self.cold.iter_mut()).enumerate() {
            if hot.start == NO_WINDOW || !visit(group, hot.start, &mut hot.reported) {
                continue;
            }
            for cell in cold.iter_mut().rev() {
                if !visit(group, cell.start, &mut cell.reported) {
                    break;
                }
            }
        }
    }

    /// Drops every cell with `start < horizon`, in every group; returns how many.
    pub(crate) fn evict_before(&mut self, horizon: i64) -> usize {
        let n = self.template.len();
        let mut dropped = 0;
        for (group, (hot, cold)) in self.hot.iter_mut().zip(self.cold.iter_mut()).enumerate() {
            while let Some(evicted) = cold.pop_front_if(|c| c.start < horizon) {
                dropped += 1;
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(evicted.states);
                }
            }
            if hot.start != NO_WINDOW && hot.start < horizon {
                // Cold cells are older than the hot one, so they are all gone already.
                dropped += 1;
                hot.start = NO_WINDOW;
                if let Some(states) = self.hot_states.get_mut(group * n..(group + 1) * n) {
                    states.clone_from_slice(&self.template);
                }
            }
        }
        dropped
    }

    /// Number of cells of `group`.
    pub(crate) fn group_len(&self, group: usize) -> usize {
        let (cold, hot) = self.cells_of(group);
        cold.len() + usize::from(hot.is_some())
    }

    /// Appends a cell to `group` while loading a checkpoint, returning its (empty) states to
    /// fill in. Cells must come oldest first: `None` unless `start` is above every start the
    /// group holds (or the group is not covered by [`Self::ensure_groups`]). The newest
    /// cell ends up hot, the others cold, as if they had been created in order.
    pub(crate) fn restore_cell(&mut self, group: usize, start: i64) -> Option<&mut [AggState]> {
        let hot = self.hot.get(group)?.start;
        if start == NO_WINDOW || (hot != NO_WINDOW && start <= hot) {
            return None;
        }
        self.rotate(group, start);
        let range = self.hot_range(group);
        self.hot_states.get_mut(range)
    }

    /// Number of cells held, over all groups.
    pub(crate) fn len(&self) -> usize {
        let hot = self.hot.iter().filter(|h| h.start != NO_WINDOW).count();
        hot + self.cold.iter().map(VecDeque::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::RowInput;
    use crate::spec::AggregateExpr;

    fn cells() -> WidthCells {
        let mut cells = WidthCells::new(Box::new([AggState::new(&AggregateExpr::Count)]));
        cells.ensure_groups(2);
        cells
    }

    fn count(cells: &mut WidthCells, group: usize, start: i64) {
        let cell = cells.cell_mut(group, start).unwrap();
        cell.states[0].update(RowInput::Present, 0, 0);
    }

    fn starts(cells: &WidthCells, group: usize) -> Vec<(i64, f64)> {
        cells
            .range(group, None, None)
            .map(|c| (c.start, c.states[0].value().unwrap()))
            .collect()
    }

    #[test]
    fn bounds_are_epoch_aligned_and_checked() {
        let minute: WindowWidth = "1m".parse().unwrap();
        assert_eq!(window_bounds(minute, 125_000), Some((120_000, 180_000)));
        assert_eq!(window_bounds(minute, -1), Some((-60_000, 0)));
        assert_eq!(window_bounds(minute, i64::MIN), None);
        assert_eq!(window_bounds(minute, i64::MAX), None);
        // NO_WINDOW can never be a real start.
        assert_ne!(NO_WINDOW.rem_euclid(1000), 0);
    }

    #[test]
    fn cells_stay_sorted_whatever_the_arrival_order() {
        let mut cells = cells();
        for start in [60, 120, 0, 180, 120, 30, 0, 180] {
            count(&mut cells, 0, start);
        }
        count(&mut cells, 1, 500);
        assert_eq!(
            starts(&cells, 0),
            [(0, 2.0), (30, 1.0), (60, 1.0), (120, 2.0), (180, 2.0)]
        );
        assert_eq!(starts(&cells, 1), [(500, 1.0)]);
        assert_eq!(cells.len(), 6);
        assert_eq!(cells.get(0, 120).map(|c| c.start), Some(120));
        assert_eq!(cells.get(0, 180).map(|c| c.start), Some(180));
        assert!(cells.get(0, 90).is_none());
        assert!(cells.get(0, NO_WINDOW).is_none());
        assert!(cells.get(7, 0).is_none());
        assert!(cells.cell_mut(7, 0).is_none());

        let range: Vec<i64> = cells
            .range(0, Some(30), Some(180))
            .map(|c| c.start)
            .collect();
        assert_eq!(range, [30, 60, 120]);
        let range: Vec<i64> = cells.range(0, Some(100), None).map(|c| c.start).collect();
        assert_eq!(range, [120, 180]);
        assert_eq!(cells.range(0, Some(200), Some(100)).count(), 0);
        let newest: Vec<i64> = cells.newest_first(0).map(|c| c.start).collect();
        assert_eq!(newest, [180, 120, 60, 30, 0]);
    }

    #[test]
    fn eviction_and_scans() {
        let mut cells = cells();
        for start in [0, 60, 120] {
            count(&mut cells, 0, start);
        }
        count(&mut cells, 1, 60);
        let mut seen = Vec::new();
        cells.scan_newest_first(|group, start, reported| {
            *reported = 7;
            seen.push((group, start));
            start > 60
        });
        // Group 0 stops after the first cell at or below 60.
        assert_eq!(seen, [(0, 120), (0, 60), (1, 60)]);

        assert_eq!(cells.evict_before(60), 1);
        assert_eq!(starts(&cells, 0), [(60, 1.0), (120, 1.0)]);
        assert_eq!(cells.evict_before(100), 2);
        assert_eq!(starts(&cells, 0), [(120, 1.0)]);
        assert!(starts(&cells, 1).is_empty());
        // A group whose hot window was evicted starts afresh.
        count(&mut cells, 1, 180);
        assert_eq!(starts(&cells, 1), [(180, 1.0)]);
        assert_eq!(cells.len(), 2);
    }
}
