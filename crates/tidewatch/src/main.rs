//! `tidewatch`: the command line. The only crate that knows clap.

mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use tidewatch_engine::{Engine, FsyncSetting};
use tidewatch_server::AppState;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{Config, LogFormat};

/// Tidewatch: a real-time analytics dashboard server.
///
/// Ingests event streams durably, keeps live rollups, and serves a REST and WebSocket API.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on a data directory.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory holding the WAL and the catalog [default: ./data]
    #[arg(long, env = "TIDEWATCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "TIDEWATCH_LISTEN")]
    listen: Option<SocketAddr>,
    /// TOML configuration file (see config/default.toml for every key)
    #[arg(long, env = "TIDEWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// When an acknowledged batch reaches stable storage [default: always]
    #[arg(long, value_enum)]
    fsync: Option<FsyncArg>,
    /// Log output format [default: text]
    #[arg(long, env = "TIDEWATCH_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FsyncArg {
    Always,
    Interval,
    Never,
}

impl ServeArgs {
    /// The flags the user gave, as a configuration layer.
    fn overrides(&self) -> figment::Figment {
        let mut layer = figment::Figment::new();
        if let Some(dir) = &self.data_dir {
            layer = layer.merge(config::flags(json!({"engine": {"data_dir": dir}})));
        }
        if let Some(listen) = self.listen {
            layer = layer.merge(config::flags(json!({"server": {"listen": listen}})));
        }
        if let Some(fsync) = self.fsync {
            let fsync = match fsync {
                FsyncArg::Always => FsyncSetting::Always,
                FsyncArg::Interval => FsyncSetting::Interval,
                FsyncArg::Never => FsyncSetting::Never,
            };
            layer = layer.merge(config::flags(json!({"engine": {"fsync": fsync}})));
        }
        if let Some(format) = self.log_format {
            layer = layer.merge(config::flags(json!({"log": {"format": format}})));
        }
        layer
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = config::load(args.config.as_deref(), args.overrides())?;
            init_logging(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .context("invalid log level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// Binds first (so `/healthz` answers during recovery), recovers, serves; on SIGTERM or
/// Ctrl-C stops accepting, closes WebSocket sessions, then syncs and closes the WAL.
async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let address = listener.local_addr()?;
    // Installed before any metric is recorded, so recovery metrics are kept too.
    let _ = tidewatch_server::telemetry::prometheus();
    let state = AppState::new(config.server.clone(), shutdown.clone());
    let server = tokio::spawn(tidewatch_server::serve(
        listener,
        state.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(wait_for_signal(shutdown.clone()));
    info!(%address, data_dir = %config.engine.data_dir.display(), fsync = config.engine.fsync.as_str(), "listening; recovering");
    // Machine-readable line for scripts and tests that start the server on port 0.
    println!("tidewatch listening on http://{address}");

    let engine_config = config.engine.clone();
    let engine = match tokio::task::spawn_blocking(move || Engine::open(engine_config)).await? {
        Ok(engine) => Arc::new(engine),
        Err(e) => {
            error!(error = %e, "recovery failed");
            shutdown.cancel();
            let _ = server.await;
            return Err(e).context("opening the data directory");
        }
    };
    state.set_engine(Arc::clone(&engine));
    info!(elapsed_ms = engine.recovery().elapsed_ms, "ready");

    let served = server.await;
    engine
        .close()
        .await
        .context("closing the write-ahead log")?;
    served?.context("serving HTTP")?;
    info!("shut down cleanly");
    Ok(())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("ctrl-c received, shutting down"),
        () = terminate => info!("sigterm received, shutting down"),
    }
    shutdown.cancel();
}
