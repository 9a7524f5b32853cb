//! What the commands that write a data directory directly (`backfill`, `import`) share:
//! the configuration loaded like `serve`'s but logging only warnings (their progress bar
//! and report are the output), and an engine opened with a clear message when a server
//! holds the directory, persisting as it goes like a server's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tidewatch_engine::Engine;

use crate::config::{self, Config};

/// Where an offline command works: the flags `backfill` and `import` share.
#[derive(clap::Args)]
pub(crate) struct DataDirArgs {
    /// Directory holding the WAL, the catalog, the segments and commerce.db [default:
    /// ./data]. No server may be running on it
    #[arg(long, env = "TIDEWATCH_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// TOML configuration file (see config/default.toml for every key)
    #[arg(long, env = "TIDEWATCH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// Loads the layered configuration with the data directory as the flag layer, and starts
/// logging.
pub(crate) fn load_config(args: &DataDirArgs) -> anyhow::Result<Config> {
    let mut overrides = figment::Figment::new();
    if let Some(dir) = &args.data_dir {
        overrides = overrides.merge(config::flags(json!({"engine": {"data_dir": dir}})));
    }
    let mut config = config::load(args.config.as_deref(), overrides)?;
    // The engine's info lines (recovery, declarations) would only interleave with the
    // progress bar. RUST_LOG still overrides this.
    config.log.level = "warn".into();
    crate::init_logging(&config)?;
    Ok(config)
}

/// An engine opened by an offline command, with the maintenance task a server runs:
/// closed hours go to Parquet and the WAL is truncated while the command writes, so a
/// long backfill holds a bounded amount in memory (it waits past twice
/// `hot_memory_limit`), not all its events.
pub(crate) struct OfflineEngine {
    pub(crate) engine: Arc<Engine>,
    maintenance: tokio::task::JoinHandle<()>,
}

impl OfflineEngine {
    /// Stops maintenance, then persists everything and closes the WAL.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        self.maintenance.abort();
        let _ = self.maintenance.await;
        self.engine
            .close()
            .await
            .context("persisting and closing the data directory")
    }
}

/// Opens (and recovers) the data directory for `command`, e.g. "backfill", and starts
/// persisting.
pub(crate) async fn open(config: &Config, command: &str) -> anyhow::Result<OfflineEngine> {
    let engine = open_engine(config, command).await?;
    let maintenance = tokio::spawn(Arc::clone(&engine).run_maintenance());
    Ok(OfflineEngine {
        engine,
        maintenance,
    })
}

async fn open_engine(config: &Config, command: &str) -> anyhow::Result<Arc<Engine>> {
    let data_dir = config.engine.data_dir.clone();
    let engine_config = config.engine.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config)).await?;
    match engine {
        Ok(engine) => Ok(Arc::new(engine)),
        Err(tidewatch_engine::Error::Wal(tidewatch_wal::Error::Locked { .. })) => {
            Err(anyhow::anyhow!(
                "data directory {} is in use by another process (is `tidewatch serve` running \
                 on it?): {command} writes to the data directory directly, so stop the server, \
                 {command}, then start it again",
                data_dir.display()
            ))
        }
        Err(other) => Err(anyhow::Error::new(other)
            .context(format!("opening the data directory {}", data_dir.display()))),
    }
}
