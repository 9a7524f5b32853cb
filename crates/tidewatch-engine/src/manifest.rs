//! The manifest: which Parquet segments and which checkpoint make up each stream's
//! persisted state, written atomically (temp file + fsync + rename + directory fsync)
//! like the catalog. A file under `segments/` or `checkpoints/` that the manifest does not
//! list is debris of an interrupted persist and is deleted at start.
//!
//! Recovery trusts exactly what the manifest says: a row of WAL record `seq` for hour `h`
//! of stream `s` is already persisted iff `seq <= through_seq` of some segment of `(s, h)`;
//! a record is already in the rollups iff `seq <=` the checkpoint's sequence.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tidewatch_store::SegmentMeta;
use tidewatch_types::TimestampMs;

use crate::catalog::write_atomically;
use crate::error::{Error, Result};
use crate::history::RollupSegmentMeta;

pub(crate) const SEGMENTS_DIR: &str = "segments";
pub(crate) const CHECKPOINTS_DIR: &str = "checkpoints";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub streams: BTreeMap<String, StreamManifest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamManifest {
    #[serde(default)]
    pub segments: Vec<SegmentMeta>,
    /// Rollup states and producer ids as of a WAL sequence.
    #[serde(default)]
    pub checkpoint: Option<CheckpointMeta>,
    /// Retention removed every row before this time; replay drops older rows.
    #[serde(default)]
    pub expired_before: Option<TimestampMs>,
    /// Evicted rollup windows, one segment per rollup, width and chunk (a UTC
    /// hour for sub-minute widths, else a UTC day).
    #[serde(default)]
    pub rollup_segments: Vec<RollupSegmentMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMeta {
    pub file: String,
    /// Every record of the stream up to this sequence is in the checkpoint.
    pub seq: u64,
    pub bytes: u64,
}

impl StreamManifest {
    /// Largest `through_seq` per partition: rows of records up to it are persisted.
    pub(crate) fn persisted_through(&self) -> BTreeMap<i64, u64> {
        let mut through = BTreeMap::new();
        for segment in &self.segments {
            let entry = through.entry(segment.partition).or_insert(0);
            *entry = segment.through_seq.max(*entry);
        }
        through
    }
}

impl Manifest {
    pub(crate) fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("manifest.json")
    }

    pub(crate) fn load(data_dir: &Path) -> Result<Manifest> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Recovery(format!("{} is not a valid manifest: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(Error::Recovery(format!("reading {}: {e}", path.display()))),
        }
    }

    pub(crate) fn store(&self, data_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Internal(e.to_string()))?;
        let path = Self::path(data_dir);
        write_atomically(&path, &bytes)
            .map_err(|e| Error::Persist(format!("writing {}: {e}", path.display())))
    }

    /// Deletes every file under `segments/` and `checkpoints/` that this manifest does
    /// not list (left by a persist that crashed before its manifest was written).
    /// Returns how many were deleted.
    pub(crate) fn remove_unlisted_files(&self, data_dir: &Path) -> Result<usize> {
        let listed: HashSet<PathBuf> = self
            .streams
            .values()
            .flat_map(|s| {
                s.segments
                    .iter()
                    .chain(s.rollup_segments.iter().map(|r| &r.segment))
                    .map(|seg| seg.file.as_str())
                    .chain(s.checkpoint.as_ref().map(|c| c.file.as_str()))
            })
            .map(|file| data_dir.join(file))
            .collect();
        let mut removed = 0;
        for dir in [SEGMENTS_DIR, CHECKPOINTS_DIR] {
            let mut pending = vec![data_dir.join(dir)];
            while let Some(dir) = pending.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(Error::Recovery(format!("listing {}: {e}", dir.display())));
                    }
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        pending.push(path);
                    } else if !listed.contains(&path) {
                        std::fs::remove_file(&path).map_err(|e| {
                            Error::Recovery(format!("removing {}: {e}", path.display()))
                        })?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }
}
