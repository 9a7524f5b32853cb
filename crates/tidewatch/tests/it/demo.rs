//! The simulator through the binary: `serve --demo` and `simulate --url`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn serve_demo_fills_the_market_stream_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            args: vec!["--demo".into(), "--demo-rate".into(), "500".into()],
            ..Options::default()
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rows = 0;
    while rows < 300 {
        assert!(
            Instant::now() < deadline,
            "only {rows} simulated ticks after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = server.rows("market.ticks").await;
    }
    let (status, body) = server
        .get("/api/v1/streams/market.ticks/rollups/ohlc?window=1m&symbol=BTCUSDT")
        .await;
    assert_eq!(status, 200, "{body}");
    let row = &body["rows"].as_array().unwrap()[0];
    let (low, high, vwap) = (
        row["low"].as_f64().unwrap(),
        row["high"].as_f64().unwrap(),
        row["vwap"].as_f64().unwrap(),
    );
    assert!(low <= vwap && vwap <= high, "{row}");
    assert!(
        low > 10_000.0 && high < 1_000_000.0,
        "a plausible BTC price: {row}"
    );
}

#[tokio::test]
async fn simulate_pushes_to_a_running_server_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let output = tokio::task::spawn_blocking({
        let url = server.base.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_tidewatch"))
                .args([
                    "simulate",
                    "--url",
                    &url,
                    "--rate",
                    "400",
                    "--duration",
                    "2",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let sent: u64 = stdout
        .trim()
        .strip_prefix("sent ")
        .and_then(|s| s.strip_suffix(" events"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent > 200, "{stdout}");
    assert_eq!(
        server.rows("market.ticks").await,
        sent,
        "every event the simulator sent is stored"
    );
    // Declarations are idempotent: a second run against the same server works too.
    let again = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["simulate", "--url", &server.base, "--duration", "1"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
