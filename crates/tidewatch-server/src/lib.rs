//! The HTTP, WebSocket and metrics server over the engine. The only crate that knows axum.
//!
//! Layout:
//! - [`config`]: listen address, body limits, WebSocket queue and heartbeat.
//! - [`error`]: [`ApiError`], the one error body: `{"error": {"code", "message", "details"}}`.
//! - [`state`]: [`AppState`]; the engine appears in it once recovery has finished.
//! - [`api`]: REST handlers under `/api/v1`, health, readiness and metrics.
//! - [`ws`]: one WebSocket session: client ops in, snapshots and deltas out.
//! - [`telemetry`]: the Prometheus recorder and per-route latency middleware.
//! - [`ui`]: the embedded web dashboard at `/`, with the single-page-app fallback.
//!
//! [`serve`] takes a bound listener, so tests bind port 0.

pub mod api;
pub mod config;
pub mod error;
pub mod state;
pub mod telemetry;
pub mod ui;
pub mod ws;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use error::ApiError;
pub use state::AppState;

/// Serves `state` on `listener` until `shutdown` is cancelled; open WebSocket sessions are
/// closed with a close frame and in-flight requests finish before this returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = api::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
