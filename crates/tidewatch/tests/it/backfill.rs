//! `tidewatch backfill` through the binary: the summary matches what a server then serves,
//! a running server's directory is refused, and the same seed gives the same history.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

/// Runs `tidewatch backfill` with `args` on `data_dir`.
fn backfill(data_dir: &Path, args: &[&str]) -> Output {
    backfill_with_env(data_dir, args, &[])
}

fn backfill_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("backfill")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run tidewatch backfill")
}

/// Runs a backfill that must succeed with `--json`, and returns its summary.
fn backfill_json(data_dir: &Path, args: &[&str]) -> Value {
    summary_of(backfill(data_dir, &[args, &["--json"]].concat()))
}

fn summary_of(output: Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backfill failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

#[tokio::test]
async fn a_backfilled_day_is_served_with_its_candles_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let summary = backfill_json(dir.path(), &["--days", "1", "--rate", "1"]);
    let events = summary["events"].as_u64().unwrap();
    assert_eq!(summary["completed"], true, "{summary}");
    assert!(
        events.abs_diff(86_400) <= 1,
        "1 trade/s for a day: {summary}"
    );
    assert!(summary["anomalies"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["alerts"].is_u64(), "the detectors ran: {summary}");
    assert!(summary["events_per_second"].as_f64().unwrap() > 0.0);
    assert!(
        summary["stored_bytes"].as_u64().unwrap() > events * 4,
        "every event is in a Parquet segment: {summary}"
    );
    assert_eq!(summary["written_until"], summary["until"]);
    let (from, until) = (
        parse_ts(summary["from"].as_str().unwrap()),
        parse_ts(summary["until"].as_str().unwrap()),
    );
    assert_eq!(until - from, 86_400_000);
    assert!((now_ms() - until).abs() < 60_000, "ends now: {summary}");

    let server = TestServer::start(dir.path()).await;
    assert_eq!(server.rows("market.ticks").await, events);
    // Hourly candles: every hour of the day is retained, so their trades add up to all.
    let (status, body) = server
        .get("/api/v1/streams/market.ticks/rollups/ohlc?window=1h")
        .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().unwrap();
    let trades: u64 = rows.iter().map(|r| r["trades"].as_u64().unwrap()).sum();
    assert_eq!(
        trades, events,
        "the ohlc rollup counts every backfilled trade"
    );
    let symbols: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["symbol"].as_str()).collect();
    assert_eq!(symbols.len(), 13, "{symbols:?}");
}

#[tokio::test]
async fn a_backfill_persists_closed_hours_while_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let output = backfill_with_env(
        dir.path(),
        &["--days", "2", "--rate", "5", "--json"],
        &[("TIDEWATCH_ENGINE__PERSIST_INTERVAL", "50ms")],
    );
    let summary = summary_of(output);
    let events = summary["events"].as_u64().unwrap();

    // Segments are named `<hour>-<last WAL sequence they cover>.parquet`. Closing writes
    // every hour still in memory with one sequence; a persist during the run covers
    // fewer records, so more than one sequence means the command did not hold all its
    // events in memory until the end.
    let sequences: std::collections::BTreeSet<u64> =
        std::fs::read_dir(dir.path().join("segments/market.ticks"))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                let stem = name.strip_suffix(".parquet")?;
                stem.rsplit_once('-')?.1.parse().ok()
            })
            .collect();
    assert!(
        sequences.len() >= 2,
        "every hour was written at the end: {sequences:?}"
    );

    // Persisting as it went lost and duplicated nothing.
    let server = TestServer::start(dir.path()).await;
    assert_eq!(server.rows("market.ticks").await, events);
    let (status, body) = server
        .post(
            "/api/v1/sql",
            &serde_json::json!({"sql": "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM market_ticks"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"].as_u64(), Some(events), "{body}");
    assert_eq!(body["rows"][0]["ids"].as_u64(), Some(events), "{body}");
}

#[tokio::test]
async fn backfill_refuses_a_directory_a_server_is_using() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let output = backfill(dir.path(), &["--days", "0.01"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("is in use") && stderr.contains("tidewatch serve"),
        "a clear reason: {stderr}"
    );
    assert_eq!(server.rows("market.ticks").await, 0);
}

#[tokio::test]
async fn backfills_with_the_same_seed_store_the_same_events() {
    // A fixed end: the history depends on its span, not on when it was made.
    let until = tidewatch_types::time::format_rfc3339_ms(base_ms());
    let args = [
        "--days", "0.05", "--rate", "5", "--seed", "7", "--until", &until,
    ];
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let summary_a = backfill_json(a.path(), &args);
    let summary_b = backfill_json(b.path(), &args);
    for key in ["events", "anomalies", "from", "until"] {
        assert_eq!(summary_a[key], summary_b[key], "{key}");
    }
    assert!(summary_a["events"].as_u64().unwrap().abs_diff(21_600) <= 1);

    // The same span again is refused: those events would be late for the rollups.
    let again = backfill(a.path(), &args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("already holds events") && stderr.contains("--force"),
        "{stderr}"
    );

    let mut stored = Vec::new();
    for dir in [&a, &b] {
        let server = TestServer::start(dir.path()).await;
        let events: Vec<Value> = server
            .all_events("market.ticks")
            .await
            .into_iter()
            .map(|mut event| {
                // Ids are assigned as events are generated; all else must match.
                event.as_object_mut().unwrap().remove("id");
                event
            })
            .collect();
        stored.push(events);
    }
    assert_eq!(
        stored[0].len() as u64,
        summary_a["events"].as_u64().unwrap()
    );
    assert!(stored[0] == stored[1], "the two histories differ");
}

/// The median of the `price` of `events`.
fn median_price(events: &[Value]) -> f64 {
    let mut prices: Vec<f64> = events.iter().filter_map(|e| e["price"].as_f64()).collect();
    prices.sort_by(f64::total_cmp);
    prices[prices.len() / 2]
}

#[tokio::test]
async fn the_demo_feed_continues_the_backfilled_prices() {
    let dir = tempfile::tempdir().unwrap();
    let summary = backfill_json(dir.path(), &["--days", "0.5", "--rate", "2", "--seed", "3"]);
    let until = parse_ts(summary["until"].as_str().unwrap());
    let symbols = [
        "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "NFLX", "BTCUSDT", "ETHUSDT",
        "SOLUSDT", "BNBUSDT", "XRPUSDT",
    ];
    let mut stored = Vec::new();
    {
        let server = TestServer::start(dir.path()).await;
        for symbol in symbols {
            let (_, page) = server
                .get(&format!(
                    "/api/v1/streams/market.ticks/events?symbol={symbol}&limit=5"
                ))
                .await;
            stored.push(median_price(page["events"].as_array().unwrap()));
        }
    }

    let server = TestServer::start_with(
        dir.path(),
        Options {
            args: vec!["--demo".into(), "--demo-rate".into(), "1000".into()],
            ..Options::default()
        },
    )
    .await;
    let from = until + 1;
    for (symbol, last) in symbols.iter().zip(stored) {
        let mut live = Vec::new();
        for _ in 0..100 {
            let (_, page) = server
                .get(&format!(
                    "/api/v1/streams/market.ticks/events?symbol={symbol}&from={from}&limit=1000"
                ))
                .await;
            live = page["events"].as_array().unwrap().clone();
            if live.len() >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(live.len() >= 5, "{symbol}: no demo trades");
        // Oldest first: the first trades of the demo.
        let first = &live[live.len() - 5..];
        let resumed = median_price(first);
        assert!(
            (resumed / last - 1.0).abs() < 0.02,
            "{symbol}: the demo resumed at {resumed}, the history ended at {last}"
        );
    }
}
