//! Shared state of all handlers.

use std::sync::{Arc, OnceLock};

use tidewatch_commerce::Commerce;
use tidewatch_engine::Engine;
use tidewatch_market::Market;
use tidewatch_sql::SqlEngine;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    /// Set once recovery has finished; until then data routes answer 503 and `/readyz`
    /// says why, while `/healthz` already answers.
    engine: Arc<OnceLock<Arc<Engine>>>,
    /// The market domain, attached right after recovery.
    market: Arc<OnceLock<Arc<Market>>>,
    /// The commerce domain, opened (with its metadata store) right after recovery.
    commerce: Arc<OnceLock<Arc<Commerce>>>,
    /// Read-only SQL over the engine, attached right after recovery.
    sql: Arc<OnceLock<Arc<SqlEngine>>>,
    pub config: Arc<ServerConfig>,
    /// Cancelled at shutdown, so WebSocket sessions close cleanly.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(config: ServerConfig, shutdown: CancellationToken) -> Self {
        AppState {
            engine: Arc::new(OnceLock::new()),
            market: Arc::new(OnceLock::new()),
            commerce: Arc::new(OnceLock::new()),
            sql: Arc::new(OnceLock::new()),
            config: Arc::new(config),
            shutdown,
        }
    }

    /// A state whose engine is already open.
    pub fn ready(config: ServerConfig, engine: Arc<Engine>, shutdown: CancellationToken) -> Self {
        let state = AppState::new(config, shutdown);
        state.set_engine(engine);
        state
    }

    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.engine.set(engine);
    }

    pub fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.engine.get().ok_or_else(ApiError::not_ready)
    }

    pub fn set_market(&self, market: Arc<Market>) {
        let _ = self.market.set(market);
    }

    pub fn market(&self) -> Result<&Arc<Market>, ApiError> {
        self.market.get().ok_or_else(ApiError::not_ready)
    }

    pub fn set_commerce(&self, commerce: Arc<Commerce>) {
        let _ = self.commerce.set(commerce);
    }

    pub fn commerce(&self) -> Result<&Arc<Commerce>, ApiError> {
        self.commerce.get().ok_or_else(ApiError::not_ready)
    }

    pub fn set_sql(&self, sql: Arc<SqlEngine>) {
        let _ = self.sql.set(sql);
    }

    pub fn sql(&self) -> Result<&Arc<SqlEngine>, ApiError> {
        self.sql.get().ok_or_else(ApiError::not_ready)
    }
}
