//! One WebSocket session at `/api/v1/ws`.
//!
//! Client to server (JSON text frames):
//! - `{"op": "subscribe", "topic": "rollup.<stream>.<rollup>.<window>" | "stream.<stream>", "filter": {"<tag>": "<value>"}}`
//! - `{"op": "unsubscribe", "subscription": <id>}`
//! - `{"op": "ping"}`
//!
//! Server to client:
//! - `{"type": "snapshot", "topic", "subscription", "seq", "data": [...]}` after a subscribe
//!   (and after a resync);
//! - `{"type": "delta", "topic", "subscription", "seq", "data": {...}}`, `seq` one more than
//!   the previous message of that subscription;
//! - `{"type": "resync", "reason"}` when the client fell behind: queued deltas were dropped
//!   and a fresh snapshot of every subscription follows;
//! - `{"type": "unsubscribed", "subscription"}`, `{"type": "pong"}`,
//!   `{"type": "error", "code", "message"}`.
//!
//! The session also pings every heartbeat interval and closes a client that stays silent
//! for three of them; at server shutdown it sends a close frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt;
use futures_util::stream::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tidewatch_bus::{Client, Outbound, OutboundKind};
use tidewatch_engine::Engine;

use crate::error::ApiError;
use crate::state::AppState;

/// Messages written per wake-up before flushing, to bound a burst's latency.
const WRITE_BATCH: usize = 256;
/// Most subscriptions one connection may hold (and at most `ws_queue`, so that a resync's
/// snapshots always fit in the queue).
const MAX_SUBSCRIPTIONS: usize = 256;

pub async fn upgrade(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let engine = Arc::clone(state.engine()?);
    Ok(ws.on_upgrade(move |socket| session(socket, engine, state)))
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum ClientOp {
    Subscribe {
        topic: String,
        #[serde(default)]
        filter: Map<String, Value>,
    },
    Unsubscribe {
        subscription: u64,
    },
    Ping,
}

async fn session(socket: WebSocket, engine: Arc<Engine>, state: AppState) {
    let (client, mut queue) = engine.hub().connect(state.config.ws_queue);
    metrics::gauge!("tidewatch_ws_clients").increment(1.0);
    let (mut sink, mut incoming) = socket.split();
    let heartbeat_every = state.config.ws_heartbeat;
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat_every,
        heartbeat_every,
    );
    let mut last_heard = Instant::now();
    let close_reason = loop {
        tokio::select! {
            frame = incoming.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let reply = error_message("unsupported_frame", "send JSON text frames");
                        if sink.send(reply).await.is_err() { break None; }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                };
                let max_subscriptions = MAX_SUBSCRIPTIONS.min(state.config.ws_queue.max(1));
                if let Some(reply) = handle_op(&engine, &client, &text, max_subscriptions)
                    && sink.send(reply).await.is_err()
                {
                    break None;
                }
            }
            message = queue.recv() => {
                let Some(message) = message else { break None };
                if sink.feed(outbound_message(&message)).await.is_err() { break None; }
                // Write what else is already queued, then flush once.
                let mut written = 1;
                while written < WRITE_BATCH {
                    let Ok(message) = queue.try_recv() else { break };
                    if sink.feed(outbound_message(&message)).await.is_err() { break; }
                    written += 1;
                }
                if sink.flush().await.is_err() { break None; }
            }
            () = client.lagged() => {
                // Everything still queued is older than the snapshots that follow.
                while queue.try_recv().is_ok() {}
                metrics::counter!("tidewatch_ws_resyncs_total").increment(1);
                let notice = json!({"type": "resync", "reason": "the client fell behind; fresh snapshots follow"});
                if sink.send(Message::Text(notice.to_string().into())).await.is_err() { break None; }
                engine.resync(&client);
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > heartbeat_every * 3 {
                    break Some("heartbeat timeout");
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() { break None; }
            }
            () = state.shutdown.cancelled() => break Some("server shutting down"),
        }
    };
    if let Some(reason) = close_reason {
        let frame = CloseFrame {
            code: axum::extract::ws::close_code::AWAY,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    engine.hub().disconnect(&client);
    metrics::gauge!("tidewatch_ws_clients").decrement(1.0);
}

/// Applies one client op; returns the direct reply, if any. Snapshots arrive through the
/// queue so that they are ordered with the deltas that follow them.
fn handle_op(
    engine: &Engine,
    client: &Arc<Client>,
    text: &str,
    max_subscriptions: usize,
) -> Option<Message> {
    let op: ClientOp = match serde_json::from_str(text) {
        Ok(op) => op,
        Err(e) => {
            return Some(error_message(
                "invalid_message",
                &format!(
                    "{e}; ops are subscribe {{topic, filter}}, unsubscribe {{subscription}} and ping"
                ),
            ));
        }
    };
    match op {
        ClientOp::Ping => Some(Message::Text(r#"{"type":"pong"}"#.into())),
        ClientOp::Unsubscribe { subscription } => {
            if engine.hub().unsubscribe(client, subscription) {
                Some(Message::Text(
                    json!({"type": "unsubscribed", "subscription": subscription})
                        .to_string()
                        .into(),
                ))
            } else {
                Some(error_message(
                    "unknown_subscription",
                    &format!("no subscription {subscription} on this connection"),
                ))
            }
        }
        ClientOp::Subscribe { topic, filter } => {
            if engine.hub().subscriptions_of(client).len() >= max_subscriptions {
                return Some(error_message(
                    "too_many_subscriptions",
                    &format!(
                        "a connection may hold at most {max_subscriptions} subscriptions; unsubscribe first"
                    ),
                ));
            }
            let mut pairs = Vec::with_capacity(filter.len());
            for (name, value) in filter {
                match value {
                    Value::String(value) => pairs.push((name, value)),
                    other => {
                        return Some(error_message(
                            "invalid_filter",
                            &format!("filter {name:?} must be a string, got {other}"),
                        ));
                    }
                }
            }
            match engine.subscribe(client, &topic, pairs) {
                Ok(_) => None,
                Err(e) => {
                    let api = ApiError::from(e);
                    Some(error_message(api.code, &api.message))
                }
            }
        }
    }
}

fn error_message(code: &str, message: &str) -> Message {
    Message::Text(
        json!({"type": "error", "code": code, "message": message})
            .to_string()
            .into(),
    )
}

/// Frames a queued message. `data` is already JSON, shared by all recipients; only the
/// envelope is written per client.
fn outbound_message(message: &Outbound) -> Message {
    let kind = match message.kind {
        OutboundKind::Snapshot => "snapshot",
        OutboundKind::Delta => "delta",
    };
    // Topics are made of [a-z0-9_.] (validated names and windows): no escaping needed.
    debug_assert!(!message.topic.contains(['"', '\\']));
    let text = format!(
        r#"{{"type":"{kind}","topic":"{}","subscription":{},"seq":{},"data":{}}}"#,
        message.topic, message.subscription, message.seq, message.data
    );
    Message::Text(text.into())
}
