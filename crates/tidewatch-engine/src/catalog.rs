//! The catalog: every declared stream and rollup, persisted as one JSON file written with
//! temp file + fsync + rename + directory fsync, so a crash leaves the old or the new
//! version, never a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tidewatch_rollup::RollupSpec;
use tidewatch_types::StreamSchema;

use crate::config::Retention;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    pub streams: Vec<StreamEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamEntry {
    pub schema: StreamSchema,
    #[serde(default)]
    pub rollups: Vec<RollupSpec>,
    /// Set through the API; overrides the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

impl Catalog {
    /// Loads the catalog, or an empty one if the file does not exist yet.
    pub fn load(path: &Path) -> Result<Catalog> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Catalog(format!("{} is not a valid catalog: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(Error::Catalog(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Writes the catalog atomically.
    pub fn store(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Catalog(e.to_string()))?;
        write_atomically(path, &bytes)
            .map_err(|e| Error::Catalog(format!("writing {}: {e}", path.display())))
    }

    pub fn stream(&self, name: &str) -> Option<&StreamEntry> {
        self.streams.iter().find(|s| s.schema.name == name)
    }

    pub fn stream_mut(&mut self, name: &str) -> Option<&mut StreamEntry> {
        self.streams.iter_mut().find(|s| s.schema.name == name)
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content: temp
/// file, fsync, rename, directory fsync.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_round_trips_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        assert_eq!(Catalog::load(&path).unwrap(), Catalog::default());
        let catalog = Catalog {
            streams: vec![StreamEntry {
                schema: StreamSchema::new("s", vec!["t".into()], vec![]).unwrap(),
                rollups: vec![],
                retention: None,
            }],
        };
        catalog.store(&path).unwrap();
        assert_eq!(Catalog::load(&path).unwrap(), catalog);
        fs::write(&path, b"{").unwrap();
        assert!(Catalog::load(&path).is_err());
    }
}
