//! Live subscriptions over a real WebSocket.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;
use crate::wsclient::*;

#[tokio::test]
async fn a_subscriber_gets_a_snapshot_then_sequenced_deltas_for_its_filter() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0, "BTC", 100.0, 1.0)]),
        )
        .await;

    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "rollup.ticks.bars.1m", "filter": {"symbol": "BTC"}}),
    )
    .await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["topic"], "rollup.ticks.bars.1m");
    assert_eq!(snapshot["seq"], 0);
    assert_eq!(snapshot["data"][0]["n"], 1);
    let subscription = snapshot["subscription"].clone();

    for i in 1..=3 {
        let batch = json!([
            tick(t0 + i, "ETH", 1.0, 1.0),
            tick(t0 + i, "BTC", 100.0 + i as f64, 1.0)
        ]);
        server.post("/api/v1/streams/ticks/events", &batch).await;
        let delta = next_json(&mut socket).await;
        assert_eq!(delta["type"], "delta", "{delta}");
        assert_eq!(delta["subscription"], subscription);
        assert_eq!(delta["seq"], i, "sequence numbers are dense");
        assert_eq!(
            delta["data"]["symbol"], "BTC",
            "the ETH changes are filtered out"
        );
        assert_eq!(delta["data"]["n"], 1 + i);
        assert_eq!(delta["data"]["close"], 100.0 + i as f64);
        assert_eq!(delta["data"]["correction"], false);
    }

    send(&mut socket, json!({"op": "ping"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "pong");
    send(
        &mut socket,
        json!({"op": "unsubscribe", "subscription": subscription}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "unsubscribed");
    server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0 + 9, "BTC", 1.0, 1.0)]),
        )
        .await;
    send(&mut socket, json!({"op": "ping"})).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "pong",
        "no delta after unsubscribing"
    );
}

#[tokio::test]
async fn stream_topics_carry_raw_events_and_bad_ops_get_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0, "A", 1.0, 1.0)]),
        )
        .await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "stream.ticks"}),
    )
    .await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(
        (
            snapshot["type"].as_str(),
            snapshot["data"].as_array().map(Vec::len)
        ),
        (Some("snapshot"), Some(1))
    );
    server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0 + 1, "B", 2.0, 3.0)]),
        )
        .await;
    let delta = next_json(&mut socket).await;
    assert_eq!(delta["data"]["symbol"], "B");
    assert_eq!(delta["data"]["size"], 3.0);
    assert!(delta["data"]["id"].is_string());

    for (op, code) in [
        (
            json!({"op": "subscribe", "topic": "rollup.ticks.nope.1m"}),
            "not_found",
        ),
        (
            json!({"op": "subscribe", "topic": "rollup.ticks.bars.15m"}),
            "invalid_request",
        ),
        (
            json!({"op": "subscribe", "topic": "weather"}),
            "invalid_request",
        ),
        (
            json!({"op": "subscribe", "topic": "stream.ticks", "filter": {"symbol": 1}}),
            "invalid_filter",
        ),
        (json!({"op": "dance"}), "invalid_message"),
        (
            json!({"op": "unsubscribe", "subscription": 999999}),
            "unknown_subscription",
        ),
    ] {
        send(&mut socket, op.clone()).await;
        let reply = next_json(&mut socket).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(code)),
            "{op} -> {reply}"
        );
    }
    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next_json(&mut socket).await["code"], "invalid_message");
}

/// A client that stops reading fills its queue, is told to resync and gets a fresh
/// snapshot; a client reading alongside it sees every delta in order and no resync.
#[tokio::test]
async fn a_slow_client_is_resynced_without_stalling_others() {
    const SYMBOLS: usize = 2000;
    const BATCHES: i64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            env: vec![("TIDEWATCH_SERVER__WS_QUEUE".into(), "4096".into())],
            ..Options::default()
        },
    )
    .await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let subscribe = json!({"op": "subscribe", "topic": "rollup.ticks.bars.1m"});

    let mut slow = connect(&server).await;
    send(&mut slow, subscribe.clone()).await;
    let mut fast = connect(&server).await;
    send(&mut fast, subscribe).await;
    assert_eq!(next_json(&mut fast).await["type"], "snapshot");

    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let fast_reader = tokio::spawn(async move {
        let mut expected_seq = 1;
        while expected_seq <= SYMBOLS as u64 * BATCHES as u64 {
            let message = next_json(&mut fast).await;
            assert_eq!(
                message["type"], "delta",
                "the fast client is never resynced: {message}"
            );
            assert_eq!(message["seq"], expected_seq);
            if expected_seq % SYMBOLS as u64 == 0 {
                let _ = progress_tx.send(expected_seq);
            }
            expected_seq += 1;
        }
    });
    for batch in 0..BATCHES {
        let rows: Vec<Value> = (0..SYMBOLS)
            .map(|s| tick(t0 + batch, &format!("S{s:04}"), 1.0, 1.0))
            .collect();
        let (status, body) = server
            .post("/api/v1/streams/ticks/events", &Value::Array(rows))
            .await;
        assert_eq!(status, 200, "{body}");
        // Pace on the fast client, so that only the slow one can fall behind.
        let caught_up = progress_rx.recv().await.expect("fast reader alive");
        assert_eq!(caught_up, (batch as u64 + 1) * SYMBOLS as u64);
    }
    fast_reader.await.unwrap();

    // Now read the slow client: snapshot, some deltas, a resync, fresh snapshots, and in
    // the end the full state.
    let mut state: HashMap<String, u64> = HashMap::new();
    let mut resyncs = 0;
    let mut last_seq: Option<u64> = None;
    while state.len() < SYMBOLS || state.values().any(|&n| n < BATCHES as u64) {
        let message = next_json(&mut slow).await;
        match message["type"].as_str().unwrap() {
            "snapshot" => {
                state.clear();
                for row in message["data"].as_array().unwrap() {
                    state.insert(
                        row["symbol"].as_str().unwrap().to_owned(),
                        row["n"].as_u64().unwrap(),
                    );
                }
                last_seq = message["seq"].as_u64();
            }
            "delta" => {
                let seq = message["seq"].as_u64().unwrap();
                assert_eq!(Some(seq - 1), last_seq, "no gap without a resync");
                last_seq = Some(seq);
                let row = &message["data"];
                state.insert(
                    row["symbol"].as_str().unwrap().to_owned(),
                    row["n"].as_u64().unwrap(),
                );
            }
            "resync" => resyncs += 1,
            other => panic!("unexpected {other}: {message}"),
        }
    }
    assert!(resyncs >= 1, "the slow client was resynced");
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tidewatch_ws_resyncs_total"), "{metrics}");
}

#[tokio::test]
async fn sessions_get_a_close_frame_when_the_server_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "stream.ticks"}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "snapshot");
    let status = server.terminate();
    assert!(status.success(), "{status}");
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a frame before the socket ends");
    match frame {
        Some(Ok(Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), 1001, "going away");
            assert_eq!(close.reason.as_str(), "server shutting down");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connection_may_not_hold_more_subscriptions_than_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            env: vec![("TIDEWATCH_SERVER__WS_QUEUE".into(), "4".into())],
            ..Options::default()
        },
    )
    .await;
    server.declare_ticks().await;
    let mut socket = connect(&server).await;
    for _ in 0..4 {
        send(
            &mut socket,
            json!({"op": "subscribe", "topic": "stream.ticks"}),
        )
        .await;
        assert_eq!(next_json(&mut socket).await["type"], "snapshot");
    }
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "stream.ticks"}),
    )
    .await;
    let reply = next_json(&mut socket).await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("error"), Some("too_many_subscriptions")),
        "{reply}"
    );
}
