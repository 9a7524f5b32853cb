//! Persistence through the real server: closed hours go to Parquet, a restart answers the
//! same without replaying them, and retention set through the API drops whole hours.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const HOUR: i64 = 3_600_000;

fn fast_persist(extra: &[(&str, &str)]) -> Options {
    let mut env = vec![(
        "TIDEWATCH_ENGINE__PERSIST_INTERVAL".to_owned(),
        "50ms".to_owned(),
    )];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Options {
        env,
        ..Options::default()
    }
}

async fn ticks_info(server: &TestServer) -> Value {
    let (_, body) = server.get("/api/v1/streams").await;
    body["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ticks")
        .cloned()
        .unwrap()
}

/// Polls until `done` holds for the `ticks` stream info, or fails after 30 s.
async fn wait_for(server: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = ticks_info(server).await;
        if done(&info) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything a client can read about `ticks`.
async fn answers(server: &TestServer) -> Vec<Value> {
    let mut out = vec![Value::Array(server.all_events("ticks").await)];
    for window in ["1m", "5m"] {
        let (status, body) = server
            .get(&format!(
                "/api/v1/streams/ticks/rollups/bars?window={window}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        out.push(body["rows"].clone());
    }
    let info = ticks_info(server).await;
    out.push(json!([info["rows"], info["first_ts"], info["last_ts"]]));
    out
}

#[tokio::test]
async fn closed_hours_go_to_parquet_and_a_restart_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base_ms() - 4 * HOUR;
    let t0 = t0 - t0.rem_euclid(HOUR);
    let mut server = TestServer::start_with(dir.path(), fast_persist(&[])).await;
    server.declare_ticks().await;
    for hour in 0..4 {
        let rows: Vec<Value> = (0..50)
            .map(|i| {
                let symbol = ["BTC", "ETH", "SOL"][i % 3];
                tick(
                    t0 + hour * HOUR + i as i64 * 61_000,
                    symbol,
                    100.0 + i as f64,
                    1.0 + (i % 4) as f64,
                )
            })
            .collect();
        let (status, body) = server
            .post("/api/v1/streams/ticks/events", &Value::Array(rows))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // The three hours before the newest are closed and sealed by the background persist.
    let info = wait_for(&server, "three segments", |i| i["segments"] == 3).await;
    assert!(info["bytes_on_disk"].as_u64().unwrap() > 0, "{info}");
    let parquet: Vec<_> = std::fs::read_dir(dir.path().join("segments/ticks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parquet.len(), 3, "{parquet:?}");
    let before = answers(&server).await;
    assert_eq!(before[0].as_array().unwrap().len(), 200);

    assert!(
        server.terminate().success(),
        "clean shutdown persists the rest"
    );
    let server = TestServer::start_with(dir.path(), fast_persist(&[])).await;
    let (_, ready) = server.get("/readyz").await;
    assert_eq!(
        ready["recovery"]["rows"], 0,
        "nothing left to replay: {ready}"
    );
    assert_eq!(ready["recovery"]["segments"], 4, "{ready}");
    assert_eq!(answers(&server).await, before);
}

#[tokio::test]
async fn retention_set_through_the_api_drops_whole_expired_hours_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let options = || fast_persist(&[("TIDEWATCH_ENGINE__RETENTION_INTERVAL", "50ms")]);
    let server = TestServer::start_with(dir.path(), options()).await;
    server.declare_ticks().await;

    // Bad requests change nothing.
    let put = |path: &str, body: &str| {
        server
            .client
            .put(server.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            put("/api/v1/streams/nope/retention", r#"{"events": "2h"}"#)
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            put("/api/v1/streams/ticks/retention", r#"{"events": "soon"}"#)
                .await
                .unwrap()
        ),
        422
    );
    assert_eq!(
        status(
            put("/api/v1/streams/ticks/retention", r#"{"events": "#)
                .await
                .unwrap()
        ),
        400
    );
    assert_eq!(
        status(
            put("/api/v1/streams/ticks/retention", r#"{"rows": 5}"#)
                .await
                .unwrap()
        ),
        422
    );
    let unknown = put(
        "/api/v1/streams/ticks/retention",
        r#"{"rollups": "1h", "per_rollup": {"candles": "1d"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(unknown.status().as_u16(), 422);
    let error: Value = unknown.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"candles\"") && message.contains("bars"),
        "names the rollup and the ones there are: {error}"
    );
    assert_eq!(ticks_info(&server).await["retention"], json!({}));

    let now = now_ms();
    let old: Vec<Value> = (0..30)
        .map(|i| tick(now - 5 * HOUR + i * 1000, "BTC", 1.0, 1.0))
        .collect();
    let recent: Vec<Value> = (0..20)
        .map(|i| tick(now - 30 * 60_000 + i * 1000, "ETH", 2.0, 1.0))
        .collect();
    for rows in [&old, &recent] {
        let (status, body) = server
            .post("/api/v1/streams/ticks/events", &json!(rows))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(server.rows("ticks").await, 50);

    let response = put(
        "/api/v1/streams/ticks/retention",
        r#"{"events": "2h", "rollups": "3h", "per_rollup": {"bars": "4h"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, shown) = server.get("/api/v1/streams/ticks/retention").await;
    assert_eq!(
        shown["retention"],
        json!({"events": "2h", "rollups": "3h", "per_rollup": {"bars": "4h"}})
    );

    wait_for(&server, "the expired hour to go", |i| i["rows"] == 20).await;
    let events = server.all_events("ticks").await;
    assert_eq!(events.len(), 20);
    assert!(
        events.iter().all(|e| e["symbol"] == "ETH"),
        "only the recent rows remain"
    );
    let (_, bars) = server
        .get("/api/v1/streams/ticks/rollups/bars?window=1m")
        .await;
    assert!(
        bars["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["symbol"] == "ETH"),
        "expired windows are gone from the rollup too: {bars}"
    );

    // The setting and the drop survive a kill.
    let mut server = server;
    server.kill();
    let server = TestServer::start_with(dir.path(), options()).await;
    assert_eq!(server.rows("ticks").await, 20);
    assert_eq!(ticks_info(&server).await["retention"]["events"], "2h");
}
