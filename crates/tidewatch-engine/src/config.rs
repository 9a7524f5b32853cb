//! Engine settings. Defaults here are the documented ones; `config/default.toml` in the
//! binary repeats them for users.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidewatch_ingest::IngestLimits;
use tidewatch_rollup::RollupConfig;
use tidewatch_store::StoreConfig;
use tidewatch_wal::FsyncPolicy;

/// When an acknowledged batch is on stable storage; see `docs/durability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncSetting {
    /// Acknowledge after an fdatasync covering the batch (shared by concurrent batches).
    Always,
    /// Acknowledge after write(2); fdatasync at most `fsync_interval` later.
    Interval,
    /// Acknowledge after write(2); leave syncing to the operating system.
    Never,
}

impl FsyncSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncSetting::Always => "always",
            FsyncSetting::Interval => "interval",
            FsyncSetting::Never => "never",
        }
    }

    fn policy(self) -> FsyncPolicy {
        match self {
            FsyncSetting::Always => FsyncPolicy::Always,
            FsyncSetting::Interval => FsyncPolicy::Interval,
            FsyncSetting::Never => FsyncPolicy::Never,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Root of everything Tidewatch keeps on disk.
    pub data_dir: PathBuf,
    pub fsync: FsyncSetting,
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
    pub wal_segment_bytes: u64,
    /// Rows after which a partition's open builders are sealed.
    pub seal_rows: usize,
    /// How far behind the newest event a window stays open.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Closed windows kept in memory per group and window width; older ones move to the
    /// rollup's history on disk (see [`crate::history`]).
    pub retained_windows: u32,
    /// Most rows in one ingest request.
    pub max_batch_rows: usize,
    /// How far past the server clock an event time may be.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Closed windows per group in a rollup subscription's snapshot.
    pub snapshot_closed_windows: usize,
    /// Newest events in a stream subscription's snapshot.
    pub snapshot_events: usize,
    /// How often closed hour partitions are written to Parquet segments (an hour is
    /// closed once the stream's newest event is past its end plus `allowed_lateness`).
    #[serde(with = "humantime_serde")]
    pub persist_interval: Duration,
    /// Longest time between checkpoints of a stream's rollups; it bounds the WAL tail a
    /// restart replays.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Hot (in-memory) bytes across all streams past which every partition is persisted.
    pub hot_memory_limit: u64,
    /// How often retention runs.
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
    /// Default retention per stream name; the API can override it per stream.
    pub retention: BTreeMap<String, Retention>,
}

/// How long a stream's raw events and its rollup windows are kept. `None`: forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub events: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollups: Option<Duration>,
    /// Rollups kept for another time than `rollups`, by rollup name (e.g. daily candles
    /// for a year while the rest go after 90 days).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_rollup: BTreeMap<String, humantime_serde::Serde<Duration>>,
}

impl Retention {
    /// How long the windows of rollup `name` are kept. `None`: forever.
    pub fn for_rollup(&self, name: &str) -> Option<Duration> {
        match self.per_rollup.get(name) {
            Some(keep) => Some(**keep),
            None => self.rollups,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("data"),
            fsync: FsyncSetting::Always,
            fsync_interval: Duration::from_millis(100),
            wal_segment_bytes: 64 * 1024 * 1024,
            seal_rows: StoreConfig::default().seal_rows,
            allowed_lateness: Duration::from_secs(5),
            retained_windows: 1440,
            max_batch_rows: IngestLimits::default().max_rows,
            max_future: Duration::from_secs(300),
            snapshot_closed_windows: 10,
            snapshot_events: 100,
            persist_interval: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(60),
            hot_memory_limit: 512 * 1024 * 1024,
            retention_interval: Duration::from_secs(60),
            retention: std::collections::BTreeMap::new(),
        }
    }
}

impl EngineConfig {
    /// A configuration for tests: data under `data_dir`, small seal threshold.
    pub fn test_config(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            seal_rows: 1024,
            ..EngineConfig::default()
        }
    }

    pub(crate) fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("wal")
    }

    pub(crate) fn lateness_ms(&self) -> i64 {
        millis(self.allowed_lateness)
    }

    pub(crate) fn catalog_path(&self) -> PathBuf {
        self.data_dir.join("catalog.json")
    }

    pub(crate) fn wal_config(&self) -> tidewatch_wal::WalConfig {
        tidewatch_wal::WalConfig {
            dir: self.wal_dir(),
            fsync: self.fsync.policy(),
            fsync_interval: self.fsync_interval,
            segment_bytes: self.wal_segment_bytes,
        }
    }

    pub(crate) fn store_config(&self) -> StoreConfig {
        StoreConfig {
            seal_rows: self.seal_rows.max(1),
        }
    }

    pub(crate) fn rollup_config(&self) -> RollupConfig {
        RollupConfig {
            allowed_lateness_ms: millis(self.allowed_lateness),
            retained_windows: self.retained_windows.max(1),
        }
    }

    pub(crate) fn ingest_limits(&self) -> IngestLimits {
        IngestLimits {
            max_rows: self.max_batch_rows.max(1),
            max_future_ms: millis(self.max_future),
            ..IngestLimits::default()
        }
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
