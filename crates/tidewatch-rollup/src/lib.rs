//! Live rollups: mergeable partial aggregates over tumbling windows with watermarks.
//!
//! This crate owns everything between "a batch of events arrived" and "these windowed rows
//! changed": the rollup declaration ([`RollupSpec`]) and its validation against a stream
//! schema, the partial aggregate states, the HyperLogLog sketch behind `distinct`, window
//! and group bookkeeping, the watermark, retention, and the rows handed to queries and live
//! subscribers. It does no I/O and knows nothing of HTTP, the WAL or subscribers.
//!
//! Layout:
//! - [`spec`]: [`RollupSpec`], [`Aggregates`], [`AggregateExpr`] — parsing, display, serde
//!   and validation.
//! - [`aggregate`]: the mergeable partial states ([`AggState`] and one struct per kind).
//! - [`hll`]: [`HyperLogLog`] and the stable 64-bit hash it is fed with.
//! - `group`: group keys, their interning, and the per-batch memo from dictionary keys.
//! - `window`: checked window arithmetic and the cells of one width (newest window of every
//!   group in dense arrays, older ones in per-group sorted deques).
//! - `row`: [`RollupRow`], the rendered form of one cell, and its JSON.
//! - `rollup`: [`Rollup`], the engine: apply, watermark, closing, eviction, query, snapshot;
//!   `rollup::checkpoint`: the binary checkpoint of its whole state, and restoring from it.
//! - `codec`: the little-endian writer and the bounds-checked reader checkpoints are made of.
//!
//! # Aggregates
//!
//! Every aggregate skips null inputs, and NaN counts as null (so results do not depend on
//! arrival order). An aggregate with no inputs yields null, except the counts which yield 0.
//! - `count`: rows. `count(f)`: rows where `f` is non-null (`f` may be any field or tag).
//! - `sum`, `min`, `max`, `mean` over a numeric field. Sums use compensated (Neumaier)
//!   summation.
//! - `first(f)` / `last(f)`: the value of `f` in the row with the smallest / largest
//!   `(ts, event id)` among rows where `f` is non-null — independent of arrival order.
//! - `variance(f)`: SAMPLE variance (divides by n - 1), null when n < 2; `stddev(f)` is its
//!   square root. State is (n, mean, M2), merged with Chan et al.'s parallel formula.
//! - `vwap(p, q)`: sum(p * q) / sum(q) over rows where both are non-null; null if sum(q) = 0.
//! - `distinct(f)`: HyperLogLog estimate (precision 12, about 1.6% standard error, Ertl's
//!   improved estimator), exact up to 256 distinct values. `f` may be any tag or field;
//!   values hash by their canonical bytes and type with a hash that is stable across
//!   processes and Rust versions.
//!
//! Every state has `merge(&mut self, other: &Self)` with merge(a, b) = state over the union
//! of the inputs, so states from shards or snapshots can be combined.
//!
//! # Windows, groups and the watermark
//!
//! Windows are tumbling and aligned to the Unix epoch: an event at `ts` belongs to
//! `[width.window_start(ts), window_start + width)` for every width of the rollup. The group
//! of an event is the tuple of its `group_by` tag values; a null tag is a group value of its
//! own (rendered `null`).
//!
//! The watermark is `max event ts seen - allowed_lateness`. A window is closed once
//! `window_end <= watermark`. [`Rollup::apply`] first advances the watermark over the whole
//! batch, then evicts, then folds the rows in, so the result of a batch does not depend on
//! the order of its rows. It reports one [`Change`] per (width, window, group) whose state
//! changed, plus every retained window that became closed because the watermark advanced
//! (so subscribers learn `closed = true` once). A late event still updates its window when
//! that window is retained; the change then carries `correction = true` when the window was
//! already closed before the batch.
//!
//! Retention: per width, windows more than `retained_windows` windows before the window
//! holding the watermark are evicted; eviction runs when the watermark enters a new window of
//! that width. An event whose window (of some width) lies in the evicted range is not folded
//! into that width, because it would create a partial window; such an event counts once in
//! [`Rollup::late_dropped`] (it is still folded into wider windows that are retained).
//! Windows that one watermark advance both closes and evicts (the stream jumped ahead by
//! more than the retention) are not reported; [`Rollup::row`] returns `None` for changes
//! whose window has been evicted since.
//!
//! Evicted windows can be kept for persistence: with [`Rollup::set_keep_evicted`] on,
//! eviction renders each evicted cell as its final, closed [`RollupRow`] (what a query
//! returned just before), and [`Rollup::take_evicted`] drains them. [`Rollup::expire_before`]
//! is time-based retention on top: it drops every window that ended by a cutoff, without
//! keeping it, and raises the horizon so late events for those windows are dropped too.

//!
//! # Checkpoints
//!
//! [`Rollup::checkpoint`] encodes the whole state of a rollup, so that a restart can restore
//! it with [`Rollup::restore`] and replay only the events after it instead of all history.
//! The restored rollup continues exactly as the original would have: the same rows bit for
//! bit, the same [`Change`]s (including corrections and closings) for later batches, the same
//! drops, the same [`GroupId`]s.
//!
//! Format, version 1: `"TWROLLUP"`, the version (u32), the spec it was taken under (name,
//! `group_by`, windows, aggregates with their state kinds), the max event time and
//! `late_dropped`, the group tuples in id order, then per width its eviction horizon and per
//! group its cells oldest first with every aggregate state field; last a CRC32C of everything
//! before it. Integers are little-endian, counts u64, floats their bits. A cell takes 8 bytes
//! plus 8 (`count`) to 33 (`first`, `last`) per aggregate; a `distinct` takes 8 per value
//! while exact and 4 KiB of registers beyond.
//!
//! Guarantees: restoring never panics and never allocates more than the input holds.
//! Whatever it cannot load exactly is an [`Error::Checkpoint`] — not a checkpoint, another
//! version, a checksum mismatch, truncated or malformed content, or a checkpoint taken under
//! another spec — and the caller recomputes the rollup from events instead. The config is
//! not part of the checkpoint and may change across a restore. Not part of the state, so not
//! saved: evicted rows not yet taken (drain them with [`Rollup::take_evicted`] before taking a
//! checkpoint), the keep-evicted switch, and buffers that only avoid allocations.

pub mod aggregate;
pub mod hll;
pub mod spec;

mod codec;
mod group;
mod rollup;
mod row;
mod window;

#[cfg(test)]
mod tests;

pub use aggregate::AggState;
pub use group::GroupId;
pub use hll::HyperLogLog;
pub use rollup::{Change, Rollup, RollupConfig};
pub use row::RollupRow;
pub use spec::{AggregateExpr, Aggregates, RollupSpec};

use tidewatch_types::{SchemaError, WindowWidth};

/// Why a rollup declaration, configuration or request was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error(transparent)]
    InvalidName(#[from] SchemaError),
    #[error("invalid aggregate expression {expr:?}: {reason}")]
    InvalidExpression { expr: String, reason: String },
    #[error("group_by tag {tag:?} is not a tag of stream {stream:?}")]
    UnknownGroupTag { tag: String, stream: String },
    #[error("group_by lists tag {0:?} twice")]
    DuplicateGroupTag(String),
    #[error("a rollup needs at least one window")]
    NoWindows,
    #[error("window {0} is listed twice")]
    DuplicateWindow(WindowWidth),
    #[error("a rollup needs at least one aggregate")]
    NoAggregates,
    #[error("aggregate output {0:?} is declared twice")]
    DuplicateAggregate(String),
    #[error("aggregate output {name:?} clashes with {clash}")]
    AggregateNameClash { name: String, clash: String },
    #[error("aggregate {name:?} = {expr:?}: {column:?} is not a {expected} of stream {stream:?}")]
    UnknownColumn {
        name: String,
        expr: String,
        column: String,
        expected: &'static str,
        stream: String,
    },
    #[error("aggregate {name:?} = {expr:?}: field {field:?} is {field_type}, not numeric")]
    NonNumericField {
        name: String,
        expr: String,
        field: String,
        field_type: &'static str,
    },
    #[error("invalid rollup config: {0}")]
    InvalidConfig(&'static str),
    #[error("rollup {rollup:?} has no window {width}")]
    UnknownWindow { rollup: String, width: WindowWidth },
    #[error("cannot filter on {tag:?}: rollup {rollup:?} groups by {group_by:?}")]
    FilterNotGrouped {
        tag: String,
        rollup: String,
        group_by: Vec<String>,
    },
    /// A checkpoint that cannot be restored exactly (malformed, corrupt, another format
    /// version, or taken under a different spec); recompute the rollup instead.
    #[error("unusable rollup checkpoint: {0}")]
    Checkpoint(String),
    #[error("cannot merge a {from} state into a {into} state")]
    StateMismatch {
        from: &'static str,
        into: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
