//! Health, readiness, metrics, logs and shutdown.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn health_readiness_and_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (s, b) = server.get("/healthz").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let (s, b) = server.get("/readyz").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ready")));
    assert!(b["recovery"]["elapsed_ms"].is_number());

    server.declare_ticks().await;
    let batch = json!([
        tick(base_ms(), "A", 1.0, 2.0),
        tick(base_ms(), "B", 1.0, 2.0)
    ]);
    server.post("/api/v1/streams/ticks/events", &batch).await;
    server.get("/api/v1/streams/ticks/events").await;
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"tidewatch_ingest_rows_total{stream="ticks"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tidewatch_ingest_batches_total{stream="ticks"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tidewatch_wal_fsync_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"tidewatch_http_request_duration_seconds_bucket{method="GET",route="/api/v1/streams/{stream}/events",status="200""#),
        "{text}"
    );
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with(
        dir.path(),
        Options {
            args: vec!["--log-format".into(), "json".into()],
            ..Options::default()
        },
    )
    .await;
    server.declare_ticks().await;
    server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(base_ms(), "A", 1.0, 1.0)]),
        )
        .await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    // Give the log reader a moment to drain the pipe.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "shut down cleanly"),
        "{log}"
    );
    let restarted = TestServer::start(dir.path()).await;
    assert_eq!(restarted.rows("ticks").await, 1);
}
