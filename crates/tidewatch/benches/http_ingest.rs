//! End-to-end HTTP ingest load generator: batched NDJSON against the real server binary,
//! each request acknowledged only once durable. Reports events/s and ack latency.
//!
//! Run: `cargo bench -p tidewatch --bench http_ingest`
//! Parameters (environment): `TW_FSYNC` (always | interval | never, default always),
//! `TW_BENCH_SECONDS` (10), `TW_CONNECTIONS` (8), `TW_BATCH_ROWS` (5000), `TW_BIN` (the
//! binary to start instead of this build's).
//!
//! Client and server share this machine's cores, so the figure is a lower bound for a
//! server with the machine to itself.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, param, percentiles_ms};
use serde_json::json;

/// Distinct bodies cycled by the clients (different symbols and prices).
const DISTINCT_BODIES: usize = 8;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let fsync: String = param("TW_FSYNC", "always".to_owned());
    let seconds: u64 = param("TW_BENCH_SECONDS", 10);
    let connections: usize = param("TW_CONNECTIONS", 8);
    let batch_rows: usize = param("TW_BATCH_ROWS", 5000);
    let server = Server::start(&fsync, &[]).await;
    let client = reqwest::Client::new();
    let declare = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", server.base))
            .json(&body)
            .send()
    };
    declare(
        "/api/v1/streams",
        json!({"name": "ticks", "tags": ["symbol", "venue"],
        "fields": {"price": "f64", "size": "f64", "bid": "f64", "ask": "f64"}}),
    )
    .await
    .expect("declare stream");
    declare("/api/v1/streams/ticks/rollups", json!({"name": "ohlc", "group_by": ["symbol"],
        "windows": ["1m", "5m", "15m", "1h", "1d"],
        "aggregates": {"open": "first(price)", "high": "max(price)", "low": "min(price)", "close": "last(price)",
                       "volume": "sum(size)", "vwap": "vwap(price, size)", "trades": "count"}}))
    .await
    .expect("declare rollup");

    let t0 = common::now_us() as i64 / 1000 - 60_000;
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..DISTINCT_BODIES)
            .map(|b| {
                (0..batch_rows)
                    .map(|i| {
                        let p = 100.0 + ((b * batch_rows + i) % 1000) as f64 / 100.0;
                        format!(
                            r#"{{"ts":{},"symbol":"SYM{}","venue":"V{}","price":{p},"size":{},"bid":{},"ask":{}}}"#,
                            t0 + (i as i64 % 60_000),
                            i % 50,
                            i % 4,
                            1 + i % 7,
                            p - 0.01,
                            p + 0.01
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect(),
    );

    let url = format!("{}/api/v1/streams/ticks/events", server.base);
    let events = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url, bodies, events) = (
            reqwest::Client::new(),
            url.clone(),
            Arc::clone(&bodies),
            Arc::clone(&events),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = c;
            while Instant::now() < deadline {
                let body = bodies[n % bodies.len()].clone();
                n += 1;
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 200, "ingest failed");
                let _ = response.bytes().await;
                latencies.push(sent.elapsed().as_micros() as u64);
                events.fetch_add(batch_rows as u64, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = events.load(Ordering::Relaxed);
    println!(
        "http_ingest fsync={fsync} connections={connections} batch_rows={batch_rows}: {:.0} events/s ({total} events in {elapsed:.1} s)",
        total as f64 / elapsed
    );
    println!(
        "http_ingest ack latency per batch: {}",
        percentiles_ms(&mut latencies)
    );
}
