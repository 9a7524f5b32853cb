//! Bad input: every case answers a clear 4xx in the documented error shape, and nothing
//! is written.

use serde_json::{Value, json};

use crate::support::*;

fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_bodies_and_bad_rows_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            env: vec![
                ("TIDEWATCH_SERVER__MAX_BODY_BYTES".into(), "65536".into()),
                ("TIDEWATCH_ENGINE__MAX_BATCH_ROWS".into(), "100".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let good = tick(t0, "A", 1.0, 1.0);
    let path = "/api/v1/streams/ticks/events";

    // Whole-body problems.
    let (s, b) = server
        .post_raw(path, "application/json", "[{\"ts\": 1,")
        .await;
    assert_error(s, &b, 400, "malformed_body");
    assert!(b["error"]["details"]["line"].is_number());
    let (s, b) = server
        .post_raw(
            path,
            "application/json",
            format!("[{good}, {{\"ts\": {t0}, \"price\": NaN}}]"),
        )
        .await;
    assert_error(s, &b, 400, "malformed_body");
    let (s, b) = server
        .post_raw(
            path,
            "application/json",
            format!("[{{\"ts\": {t0}, \"price\": Infinity}}]"),
        )
        .await;
    assert_error(s, &b, 400, "malformed_body");
    let mut invalid_utf8 = format!("[{{\"ts\": {t0}, \"symbol\": \"").into_bytes();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(b"\"}]");
    let (s, b) = server
        .post_raw(path, "application/json", invalid_utf8)
        .await;
    assert_error(s, &b, 400, "malformed_body");
    let (s, b) = server.post_raw(path, "application/json", "[]").await;
    assert_error(s, &b, 400, "empty_batch");
    let (s, b) = server.post_raw(path, "text/csv", "ts,price").await;
    assert_error(s, &b, 415, "unsupported_media_type");

    // Size limits.
    let huge = format!("[{}]", vec![good.to_string(); 2000].join(","));
    assert!(huge.len() > 65536);
    let (s, b) = server.post_raw(path, "application/json", huge).await;
    assert_error(s, &b, 413, "body_too_large");
    let many = Value::Array(vec![good.clone(); 101]);
    let (s, b) = server.post(path, &many).await;
    assert_error(s, &b, 413, "batch_too_large");

    // Row problems: 422 naming the row and field.
    let cases = [
        (json!({"price": 1.0}), "ts"),
        (json!({"ts": t0, "price": "1.0"}), "price"),
        (json!({"ts": t0, "price": "NaN"}), "price"),
        (json!({"ts": t0, "symbol": 5}), "symbol"),
        (json!({"ts": t0, "colour": "red"}), "colour"),
        (json!({"ts": "last tuesday"}), "ts"),
        (json!({"ts": -1}), "ts"),
        (json!({"ts": now_ms() + 86_400_000}), "ts"),
        (json!({"ts": "9999-01-01T00:00:00Z"}), "ts"),
    ];
    for (bad, field) in cases {
        let (s, b) = server.post(path, &json!([good, bad])).await;
        assert_error(s, &b, 422, "invalid_rows");
        let rejected = &b["error"]["details"]["rejected"][0];
        assert_eq!(rejected["row"], 1, "{b}");
        assert_eq!(rejected["field"], field, "{b}");
    }

    // Unknown stream.
    let (s, b) = server
        .post("/api/v1/streams/nope/events", &json!([good]))
        .await;
    assert_error(s, &b, 404, "not_found");

    assert_eq!(
        server.rows("ticks").await,
        0,
        "no request above wrote anything"
    );
    assert_eq!(server.all_events("ticks").await.len(), 0);
}

#[tokio::test]
async fn bad_declarations_and_query_parameters_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;

    let (s, b) = server
        .post("/api/v1/streams", &json!({"name": "Bad Name"}))
        .await;
    assert_error(s, &b, 422, "invalid_declaration");
    let (s, b) = server
        .post(
            "/api/v1/streams",
            &json!({"name": "x", "fields": {"a": "float"}}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_declaration");
    let (s, b) = server
        .post("/api/v1/streams", &json!({"name": "x", "colour": 1}))
        .await;
    assert_error(s, &b, 422, "invalid_declaration");
    let (s, b) = server
        .post_raw("/api/v1/streams", "application/json", "{\"name\": ")
        .await;
    assert_error(s, &b, 400, "malformed_body");
    let (s, b) = server
        .post("/api/v1/streams", &json!({"name": "ticks", "tags": []}))
        .await;
    assert_error(s, &b, 409, "conflict");

    let bad_rollups = [
        json!({"name": "r", "windows": ["1m"], "aggregates": {"x": "median(price)"}}),
        json!({"name": "r", "windows": ["7x"], "aggregates": {"n": "count"}}),
        json!({"name": "r", "windows": ["1m"], "aggregates": {"x": "sum(nope)"}}),
        json!({"name": "r", "group_by": ["price"], "windows": ["1m"], "aggregates": {"n": "count"}}),
    ];
    for spec in bad_rollups {
        let (s, b) = server.post("/api/v1/streams/ticks/rollups", &spec).await;
        assert_error(s, &b, 422, "invalid_declaration");
    }

    for (path, status, code) in [
        (
            "/api/v1/streams/ticks/rollups/bars?window=15m",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/rollups/bars?window=forever",
            400,
            "invalid_request",
        ),
        ("/api/v1/streams/ticks/rollups/nope", 404, "not_found"),
        (
            "/api/v1/streams/ticks/rollups/bars?from=20&to=10",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/rollups/bars?price=1",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?limit=0",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?limit=1000000",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?limit=ten",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?cursor=abc",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?from=yesterday",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/streams/ticks/events?venue=x",
            400,
            "invalid_request",
        ),
        ("/api/v1/streams/nope/events", 404, "not_found"),
        ("/api/v1/nothing/here", 404, "not_found"),
    ] {
        let (s, b) = server.get(path).await;
        assert_error(s, &b, status, code);
    }
    // Extreme but well-formed bounds are answered, not a crash.
    for path in [
        "/api/v1/streams/ticks/events?from=-9223372036854775808&to=9223372036854775807",
        "/api/v1/streams/ticks/events?cursor=-9223372036854775808_00000000000000000000000000000000",
        "/api/v1/streams/ticks/rollups/bars?from=-9223372036854775808&to=9223372036854775807",
    ] {
        let (s, b) = server.get(path).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    let (s, b) = server
        .post("/api/v1/streams/ticks/events?partial=maybe", &json!([]))
        .await;
    assert_error(s, &b, 400, "invalid_request");
}
