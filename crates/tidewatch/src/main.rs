//! `tidewatch`: the command line. The only crate that knows clap.

mod backfill;
mod config;
mod demo;
mod domains;
mod import;
mod offline;
mod simulate;
mod sql;

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

use tidewatch_sim::{MarketConfig, MarketGenerator, Simulator};

use crate::config::{Config, LogFormat};

/// How often the demo feed generates and ingests the events of the elapsed time.
const DEMO_STEP: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Push simulated events to a running server over HTTP (until Ctrl-C).
    Simulate(simulate::SimulateArgs),
    /// Write days of simulated history into a data directory, fast, through the ingest path.
    ///
    /// Run it while no server uses the directory; then `serve --demo` continues the
    /// prices where the history ends.
    Backfill(backfill::BackfillArgs),
    /// Import data from files into a data directory (run it while no server uses it).
    Import(import::ImportArgs),
    /// Run a read-only SQL query on a running server and print the result.
    ///
    /// Every stream is a table (market.ticks -> market_ticks), and so is every rollup
    /// window (market_ticks_ohlc_5m). Only SELECT, WITH and EXPLAIN are allowed.
    Sql(sql::SqlArgs),
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
    /// Feed the server with the deterministic simulator (market ticks for now)
    #[arg(long)]
    demo: bool,
    /// Simulated trades per second with --demo
    #[arg(long, default_value_t = 200.0, requires = "demo")]
    demo_rate: f64,
    /// Simulator seed with --demo
    #[arg(long, default_value_t = 42, requires = "demo")]
    demo_seed: u64,
    /// With --demo, equities trade only Mon-Fri 09:30-16:00 America/New_York (holidays
    /// ignored); crypto trades around the clock
    #[arg(long, requires = "demo")]
    market_hours: bool,
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
            let demo = args.demo.then(|| MarketConfig {
                seed: args.demo_seed,
                events_per_second: args.demo_rate,
                market_hours: args.market_hours,
                ..MarketConfig::default()
            });
            runtime()?.block_on(serve(config, demo))
        }
        Command::Simulate(args) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .init();
            runtime()?.block_on(simulate::run(args))
        }
        Command::Backfill(args) => backfill::main(args),
        Command::Import(args) => import::main(args),
        Command::Sql(args) => runtime()?.block_on(sql::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
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
async fn serve(config: Config, demo: Option<MarketConfig>) -> anyhow::Result<()> {
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
    let mut domains = domains::Domains::start(&engine, &config.market)?;
    state.set_market(Arc::clone(&domains.market));
    let commerce = domains
        .open_commerce(&engine, &config.engine.data_dir, &config.commerce, true)
        .await?;
    state.set_commerce(Arc::clone(&commerce));
    let sql = tidewatch_sql::SqlEngine::new(Arc::clone(&engine), config.sql.clone())
        .context("starting the SQL engine")?;
    state.set_sql(Arc::new(sql));
    state.set_engine(Arc::clone(&engine));
    info!(elapsed_ms = engine.recovery().elapsed_ms, "ready");
    // Persisting to Parquet and retention, until shutdown persists the rest.
    let maintenance = tokio::spawn(Arc::clone(&engine).run_maintenance());

    // The simulated shop: catalog and history on an empty store, then live orders.
    let shop = demo.as_ref().map(|market| {
        demo::spawn_commerce(
            Arc::clone(&commerce),
            market.seed,
            DEMO_STEP,
            shutdown.clone(),
        )
    });
    let feed = match demo {
        Some(market) => {
            let mut generator = MarketGenerator::new(market);
            // Continue from the stored prices (e.g. after a backfill), not the start prices.
            generator.resume_from(tidewatch_sim::runner::last_prices(&engine));
            let simulator = Simulator::new().with(generator);
            tidewatch_sim::runner::declare(&engine, &simulator)
                .context("declaring the demo streams")?;
            Some(tokio::spawn(tidewatch_sim::runner::run(
                Arc::clone(&engine),
                simulator,
                DEMO_STEP,
                shutdown.clone(),
            )))
        }
        None => None,
    };

    let connector = config.connectors.binance.enabled.then(|| {
        tokio::spawn(tidewatch_connect::run(
            Arc::clone(&engine),
            config.connectors.binance.clone(),
            shutdown.clone(),
        ))
    });

    let served = server.await;
    // The feed stops on the same token; it must be done before the WAL closes.
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    if let Some(shop) = shop {
        let _ = shop.await;
    }
    if let Some(connector) = connector {
        let _ = connector.await;
    }
    domains.stop().await;
    maintenance.abort();
    let _ = maintenance.await;
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
