//! The connection loop: connect, read frames into batches, ingest, reconnect with backoff.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidewatch_engine::Engine;
use tidewatch_types::FieldType;
use tidewatch_types::schema::ColumnRef;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::batch::TradeBatch;
use crate::config::BinanceConfig;
use crate::frame::parse_frame;
use crate::{CONNECTOR, TICKS_STREAM};

/// Longest wait for the TCP, TLS and WebSocket handshakes together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Binance pings every 20 s, so this much silence means a dead connection is likely: the
/// connector pings once, and gives up after the same silence again.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection that stayed up this long resets the backoff to its first step.
const STABLE_CONNECTION: Duration = Duration::from_secs(30);
/// Longest wait for the close handshake at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest part of a malformed frame quoted in the log.
const LOGGED_FRAME_CHARS: usize = 200;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Streams trades from `config.url` into `market.ticks` until `shutdown` is cancelled;
/// returns at once if the connector is not `enabled`.
///
/// Waits (logging, with backoff) while `market.ticks` is not declared; returns at once,
/// logging an error, if it is declared with columns the trades do not fit. Connection
/// failures and drops are logged and retried with exponential backoff; malformed frames
/// are logged and skipped. Trades received before cancellation are ingested before this
/// returns.
pub async fn run(engine: Arc<Engine>, config: BinanceConfig, shutdown: CancellationToken) {
    if !config.enabled {
        info!(connector = CONNECTOR, "connector disabled");
        return;
    }
    describe_metrics();
    install_crypto_provider();
    info!(connector = CONNECTOR, url = %config.url, "connector starting");
    if wait_for_stream(&engine, &config, &shutdown).await == StreamCheck::Stop {
        info!(connector = CONNECTOR, "connector stopped");
        return;
    }
    let mut backoff = Backoff::new(config.max_backoff);
    let mut batch = TradeBatch::default();
    loop {
        let end = session(&engine, &config.url, &mut batch, &shutdown).await;
        let delay = match end {
            SessionEnd::Cancelled => break,
            SessionEnd::ConnectFailed(ref reason) => {
                let delay = backoff.next_delay();
                warn!(
                    connector = CONNECTOR,
                    reason,
                    delay_ms = delay.as_millis() as u64,
                    "connection failed; retrying"
                );
                delay
            }
            SessionEnd::Lost { up_for, ref reason } => {
                if up_for >= STABLE_CONNECTION {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                warn!(
                    connector = CONNECTOR,
                    reason,
                    up_for_ms = up_for.as_millis() as u64,
                    delay_ms = delay.as_millis() as u64,
                    "connection lost; reconnecting"
                );
                delay
            }
        };
        if !sleep_unless_cancelled(delay, &shutdown).await {
            break;
        }
        metrics::counter!("tidewatch_connector_reconnects_total", "connector" => CONNECTOR)
            .increment(1);
    }
    info!(connector = CONNECTOR, "connector stopped");
}

/// How one connection ended. Reasons are for the log only.
#[derive(Debug)]
enum SessionEnd {
    Cancelled,
    /// No connection was established.
    ConnectFailed(String),
    /// The connection was up for `up_for`, then ended.
    Lost {
        up_for: Duration,
        reason: String,
    },
}

/// One connection: connect, then read until it ends or `shutdown`. Waiting trades are
/// ingested whichever way it ends.
async fn session(
    engine: &Engine,
    url: &str,
    batch: &mut TradeBatch,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let connected = tokio::select! {
        () = shutdown.cancelled() => return SessionEnd::Cancelled,
        connected = timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)) => connected,
    };
    let mut socket = match connected {
        Ok(Ok((socket, _response))) => socket,
        Ok(Err(e)) => return SessionEnd::ConnectFailed(e.to_string()),
        Err(_) => {
            return SessionEnd::ConnectFailed(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ));
        }
    };
    info!(connector = CONNECTOR, url = %url, "connected");
    let connected_at = Instant::now();
    let ended = read_frames(engine, &mut socket, batch, shutdown).await;
    batch.flush(engine).await;
    match ended {
        ReadEnd::Cancelled => {
            // Best effort: the exchange forgets the connection either way.
            let _ = timeout(CLOSE_TIMEOUT, socket.close(None)).await;
            SessionEnd::Cancelled
        }
        ReadEnd::Lost(reason) => SessionEnd::Lost {
            up_for: connected_at.elapsed(),
            reason,
        },
    }
}

enum ReadEnd {
    Cancelled,
    Lost(String),
}

/// Reads frames into `batch`, ingesting it when full or due, until the connection ends or
/// `shutdown`. Pongs to the exchange's pings are queued by tungstenite as each ping is read
/// and flushed here right away.
async fn read_frames(
    engine: &Engine,
    socket: &mut Socket,
    batch: &mut TradeBatch,
    shutdown: &CancellationToken,
) -> ReadEnd {
    let mut silent_until = Instant::now() + IDLE_TIMEOUT;
    let mut pinged = false;
    loop {
        let flush_at = batch.deadline();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return ReadEnd::Cancelled,
            () = sleep_until(flush_at.unwrap_or(silent_until)), if flush_at.is_some() => {
                batch.flush(engine).await;
            }
            () = sleep_until(silent_until) => {
                if pinged {
                    return ReadEnd::Lost(format!(
                        "no frame for {} s, not even a pong",
                        2 * IDLE_TIMEOUT.as_secs()
                    ));
                }
                if let Err(e) = socket.send(Message::Ping(Default::default())).await {
                    return ReadEnd::Lost(format!("sending a ping failed: {e}"));
                }
                pinged = true;
                silent_until = Instant::now() + IDLE_TIMEOUT;
            }
            message = socket.next() => {
                silent_until = Instant::now() + IDLE_TIMEOUT;
                pinged = false;
                let message = match message {
                    None => return ReadEnd::Lost("the server ended the stream".into()),
                    Some(Err(e)) => return ReadEnd::Lost(e.to_string()),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Text(text) => {
                        read_text(text.as_str(), batch);
                        if batch.is_full() {
                            batch.flush(engine).await;
                        }
                    }
                    Message::Binary(bytes) => malformed(
                        &format!("{} bytes", bytes.len()),
                        "a binary frame; the exchange sends text",
                    ),
                    Message::Ping(_) => {
                        if let Err(e) = socket.flush().await {
                            return ReadEnd::Lost(format!("answering a ping failed: {e}"));
                        }
                    }
                    Message::Close(frame) => {
                        let detail = frame.map_or_else(
                            || "no reason given".to_owned(),
                            |f| format!("code {}, {:?}", u16::from(f.code), f.reason.as_str()),
                        );
                        return ReadEnd::Lost(format!("the server closed the connection ({detail})"));
                    }
                    Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}

fn read_text(text: &str, batch: &mut TradeBatch) {
    match parse_frame(text) {
        Ok(Some(trade)) => batch.push(&trade),
        Ok(None) => {}
        Err(e) => malformed(text, &e.to_string()),
    }
}

fn malformed(frame: &str, reason: &str) {
    metrics::counter!("tidewatch_connector_malformed_frames_total", "connector" => CONNECTOR)
        .increment(1);
    let quoted: String = frame.chars().take(LOGGED_FRAME_CHARS).collect();
    warn!(connector = CONNECTOR, reason, frame = %quoted, "malformed frame skipped");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamCheck {
    Ready,
    Stop,
}

/// Waits until `market.ticks` is declared (the market domain declares it at start, so a
/// wait means a misconfiguration or a slow start), then checks that trades fit it.
async fn wait_for_stream(
    engine: &Engine,
    config: &BinanceConfig,
    shutdown: &CancellationToken,
) -> StreamCheck {
    let mut backoff = Backoff::new(config.max_backoff);
    loop {
        match ticks_schema_problem(engine) {
            None => return StreamCheck::Ready,
            Some(SchemaProblem::Missing) => {
                let delay = backoff.next_delay();
                warn!(
                    connector = CONNECTOR,
                    stream = TICKS_STREAM,
                    delay_ms = delay.as_millis() as u64,
                    "the stream is not declared; waiting for it"
                );
                if !sleep_unless_cancelled(delay, shutdown).await {
                    return StreamCheck::Stop;
                }
            }
            Some(SchemaProblem::Mismatch(problem)) => {
                error!(
                    connector = CONNECTOR,
                    stream = TICKS_STREAM,
                    problem,
                    "the stream's schema does not fit trades; the connector does not start"
                );
                return StreamCheck::Stop;
            }
        }
    }
}

enum SchemaProblem {
    Missing,
    Mismatch(String),
}

/// What keeps trades out of `market.ticks`, if anything: each row names these tags and
/// fields, and the engine rejects a row with a key its stream does not declare.
fn ticks_schema_problem(engine: &Engine) -> Option<SchemaProblem> {
    let Ok(handle) = engine.stream(TICKS_STREAM) else {
        return Some(SchemaProblem::Missing);
    };
    let schema = &handle.schema;
    for tag in ["symbol", "venue", "asset_class"] {
        if !matches!(schema.column(tag), Some(ColumnRef::Tag(_))) {
            return Some(SchemaProblem::Mismatch(format!("{tag:?} is not a tag")));
        }
    }
    for field in ["price", "size", "bid", "ask"] {
        if !matches!(
            schema.column(field),
            Some(ColumnRef::Field(_, FieldType::F64))
        ) {
            return Some(SchemaProblem::Mismatch(format!(
                "{field:?} is not an f64 field"
            )));
        }
    }
    None
}

/// Sleeps for `delay`; false if `shutdown` came first.
async fn sleep_unless_cancelled(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = sleep(delay) => true,
    }
}

/// tokio-tungstenite builds its rustls client with the process-wide crypto provider. This
/// crate enables ring; installing it explicitly keeps `wss://` working if another crate
/// ever enables a second provider (rustls then refuses to pick one).
fn install_crypto_provider() {
    // An error means a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn describe_metrics() {
    metrics::describe_counter!(
        "tidewatch_connector_trades_total",
        "Trades a connector stored (re-sent trades the engine dropped as duplicates excluded)"
    );
    metrics::describe_counter!(
        "tidewatch_connector_malformed_frames_total",
        "Frames a connector could not read as a trade, logged and skipped"
    );
    metrics::describe_counter!(
        "tidewatch_connector_reconnects_total",
        "Connection attempts after a failed or lost connection"
    );
}
