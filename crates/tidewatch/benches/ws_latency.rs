//! Event in -> WebSocket delta out, against the real server binary.
//!
//! A producer posts `TW_RATE` events/s (default 10 000) in batches every 10 ms across 10
//! symbols; `TW_CLIENTS` WebSocket clients (default 100) each subscribe to the 1m rollup
//! of one symbol. Every event carries its send time (µs); the rollup keeps `last(sent)`,
//! so each delta says when the newest event in it was sent, and the client measures
//! receive time minus send time: HTTP, parsing, WAL (per `TW_FSYNC`), apply and fan-out.
//!
//! Run: `cargo bench -p tidewatch --bench ws_latency`
//! Parameters: `TW_FSYNC` (always), `TW_CLIENTS` (100), `TW_RATE` (10000), `TW_BENCH_SECONDS` (10),
//! `TW_BIN` (the binary to start instead of this build's).

mod common;

use std::time::{Duration, Instant};

use common::{Server, now_us, param, percentiles_ms};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SYMBOLS: usize = 10;
const TICK: Duration = Duration::from_millis(10);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let fsync: String = param("TW_FSYNC", "always".to_owned());
    let clients: usize = param("TW_CLIENTS", 100);
    let rate: usize = param("TW_RATE", 10_000);
    let seconds: u64 = param("TW_BENCH_SECONDS", 10);
    let server = Server::start(&fsync, &[]).await;
    let http = reqwest::Client::new();
    http.post(format!("{}/api/v1/streams", server.base))
        .json(&json!({"name": "lat", "tags": ["symbol"], "fields": {"sent": "f64", "v": "f64"}}))
        .send()
        .await
        .expect("declare stream");
    http.post(format!("{}/api/v1/streams/lat/rollups", server.base))
        .json(
            &json!({"name": "r", "group_by": ["symbol"], "windows": ["1m"],
                      "aggregates": {"sent": "last(sent)", "n": "count", "v": "sum(v)"}}),
        )
        .send()
        .await
        .expect("declare rollup");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut readers = Vec::new();
    for c in 0..clients {
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("connect");
        let subscribe = json!({"op": "subscribe", "topic": "rollup.lat.r.1m", "filter": {"symbol": format!("S{}", c % SYMBOLS)}});
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .expect("subscribe");
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut resyncs = 0;
            while let Ok(Some(Ok(frame))) =
                tokio::time::timeout_at((deadline + Duration::from_secs(1)).into(), socket.next())
                    .await
            {
                let Message::Text(text) = frame else { continue };
                let message: Value = serde_json::from_str(&text).expect("json");
                match message["type"].as_str() {
                    Some("delta") => {
                        if let Some(sent) = message["data"]["sent"].as_f64() {
                            latencies.push(now_us().saturating_sub(sent as u64));
                        }
                    }
                    Some("resync") => resyncs += 1,
                    _ => {}
                }
            }
            (latencies, resyncs)
        }));
    }

    let per_tick = (rate as f64 * TICK.as_secs_f64()).round() as usize;
    let url = format!("{}/api/v1/streams/lat/events", server.base);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent_events = 0usize;
    let started = Instant::now();
    while Instant::now() < deadline {
        interval.tick().await;
        let sent = now_us();
        let ts = sent / 1000;
        let body: String = (0..per_tick)
            .map(|i| {
                format!(
                    r#"{{"ts":{ts},"symbol":"S{}","sent":{sent},"v":1}}"#,
                    i % SYMBOLS
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let response = http
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("ingest");
        assert_eq!(response.status(), 200);
        sent_events += per_tick;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut resyncs = 0;
    for reader in readers {
        let (l, r) = reader.await.expect("reader");
        latencies.extend(l);
        resyncs += r;
    }
    println!(
        "ws_latency fsync={fsync} clients={clients}: {:.0} events/s offered, {} deltas received, {resyncs} resyncs",
        sent_events as f64 / elapsed,
        latencies.len()
    );
    println!(
        "ws_latency event -> delta: {}",
        percentiles_ms(&mut latencies)
    );
}
