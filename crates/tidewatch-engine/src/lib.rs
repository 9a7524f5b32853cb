//! Engine: owns the write path from a parsed batch to a durable, queryable, published one.
//!
//! `parse -> dedupe -> WAL append (durable) -> hot store + rollups -> bus -> receipt`
//!
//! Invariants:
//! - A receipt is returned only after the WAL append resolved, i.e. the batch is durable
//!   under the fsync policy; the hot store and rollups are updated before the receipt too,
//!   so a client that got a receipt reads its own writes.
//! - Everything in memory is derivable from the catalog plus the WAL: recovery replays the
//!   WAL through the same apply path as live ingest (minus publishing), and live commits
//!   of a stream are applied in WAL order too, so both see the same sequence of batches.
//! - Deltas are published while the stream's state lock is held, and snapshots are taken
//!   under the same lock, so a subscriber never misses a change between its snapshot and
//!   its first delta.
//! - Nothing in this crate knows HTTP.
//!
//! Layout:
//! - [`config`]: engine settings with their documented defaults.
//! - [`catalog`]: stream and rollup declarations, persisted atomically.
//! - [`record`]: the WAL record format of an ingested batch.
//! - [`stream`]: one stream's hot store, rollups, dedupe set and statistics.
//! - [`history`]: rollup windows past `retained_windows`: pending in memory and in
//!   checkpoints, then one Parquet segment per rollup, width and hour (sub-minute
//!   widths) or day.
//! - [`render`]: JSON shapes of events and rollup rows for the API and the bus.
//! - [`topic`]: live topic names.
//! - [`engine`]: [`Engine`], tying them together: open and recover, declare, ingest,
//!   query, subscribe, close.

pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod error;
pub mod history;
pub mod manifest;
pub mod record;
pub mod render;
pub mod stream;
pub mod topic;

pub use config::{EngineConfig, FsyncSetting, Retention};
pub use engine::{
    Engine, EventsPage, EventsRequest, IngestReceipt, PersistMode, PersistReport, RecoverySummary,
    StreamInfo,
};
pub use error::{Error, Result};
pub use history::{rollup_schema, rows_to_batch};
pub use stream::Observer;
pub use tidewatch_rollup::{RollupRow, RollupSpec};
pub use tidewatch_store::{Segment, StoreSnapshot};
