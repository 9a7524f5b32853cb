//! The REST API as a client sees it.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn declared_streams_are_listed_with_schema_counts_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base_ms();
    {
        let server = TestServer::start(dir.path()).await;
        server.declare_ticks().await;
        let (status, body) = server
            .post("/api/v1/streams", &json!({"name": "web.events", "tags": ["page"], "fields": {"ms": "i64", "ok": "bool", "agent": "string"}}))
            .await;
        assert_eq!(status, 201, "{body}");
        let batch = json!([tick(t0 + 5, "BTC", 1.0, 1.0), tick(t0, "ETH", 2.0, 1.0)]);
        let (status, _) = server.post("/api/v1/streams/ticks/events", &batch).await;
        assert_eq!(status, 200);
    }
    let server = TestServer::start(dir.path()).await;
    let (status, body) = server.get("/api/v1/streams").await;
    assert_eq!(status, 200);
    let streams = body["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "listed by name");
    // The domains' own streams are listed beside the users' ones.
    for name in ["alerts", "market.ticks", "ticks", "web.events"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let by_name = |name: &str| streams.iter().find(|s| s["name"] == name).unwrap();
    let ticks = by_name("ticks");
    assert_eq!(ticks["tags"], json!(["symbol"]));
    assert_eq!(ticks["fields"], json!({"price": "f64", "size": "f64"}));
    assert_eq!(ticks["rows"], 2);
    assert_eq!(parse_ts(ticks["first_ts"].as_str().unwrap()), t0);
    assert_eq!(parse_ts(ticks["last_ts"].as_str().unwrap()), t0 + 5);
    assert_eq!(ticks["rollups"][0]["name"], "bars");
    assert_eq!(
        by_name("web.events")["fields"],
        json!({"ms": "i64", "ok": "bool", "agent": "string"}),
        "field order is kept"
    );
}

#[tokio::test]
async fn json_ndjson_and_gzip_bodies_are_accepted_with_a_durable_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();

    let (status, receipt) = server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0, "A", 1.0, 1.0)]),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 1);
    assert_eq!(receipt["durable"], true);
    assert_eq!(receipt["fsync"], "always");
    assert!(receipt["first_id"].is_string() && receipt["first_id"] == receipt["last_id"]);

    let ndjson = format!(
        "{}\n{}\n",
        tick(t0 + 1, "A", 2.0, 1.0),
        tick(t0 + 2, "B", 3.0, 1.0)
    );
    let (status, receipt) = server
        .post_raw(
            "/api/v1/streams/ticks/events",
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(
        (status, receipt["accepted"].as_u64()),
        (200, Some(2)),
        "{receipt}"
    );
    assert!(
        receipt["first_id"].as_str() < receipt["last_id"].as_str(),
        "ids are time-ordered"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!([tick(t0 + 3, "C", 4.0, 1.0)]).to_string().as_bytes())
        .unwrap();
    let r = server
        .client
        .post(server.url("/api/v1/streams/ticks/events"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(server.rows("ticks").await, 4);
}

#[tokio::test]
async fn partial_acceptance_lists_each_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let batch = json!([tick(t0, "A", 1.0, 1.0), {"ts": t0, "price": "high"}, {"symbol": "A"}, tick(t0, "B", 2.0, 2.0)]);
    let (status, body) = server
        .post("/api/v1/streams/ticks/events?partial=true", &batch)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["row"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(1, "price"), (2, "ts")]);
    assert_eq!(server.rows("ticks").await, 2);
}

#[tokio::test]
async fn resending_a_batch_with_ids_stores_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let batch = json!([
        {"id": "0194f5c2-7a3e-7cc1-9d2b-000000000001", "ts": t0, "symbol": "A", "price": 1.0, "size": 1.0},
        {"id": "0194f5c2-7a3e-7cc1-9d2b-000000000002", "ts": t0, "symbol": "A", "price": 1.0, "size": 1.0}
    ]);
    let (_, first) = server.post("/api/v1/streams/ticks/events", &batch).await;
    let (_, second) = server.post("/api/v1/streams/ticks/events", &batch).await;
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        (second["accepted"].as_u64(), second["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(server.rows("ticks").await, 2);
    let events = server.all_events("ticks").await;
    assert_eq!(events[1]["id"], "0194f5c2-7a3e-7cc1-9d2b-000000000001");
}

#[tokio::test]
async fn event_queries_page_newest_first_with_time_and_tag_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let batch: Vec<Value> = (0..50)
        .map(|i| {
            tick(
                t0 + i * 1000,
                if i % 2 == 0 { "A" } else { "B" },
                i as f64,
                1.0,
            )
        })
        .collect();
    server
        .post("/api/v1/streams/ticks/events", &Value::Array(batch))
        .await;

    let from = t0 + 10_000;
    let to = t0 + 40_000;
    let mut prices = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = server
            .get(&format!(
                "/api/v1/streams/ticks/events?symbol=A&from={from}&to={to}&limit=4{cursor}"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 4);
        prices.extend(events.iter().map(|e| e["price"].as_f64().unwrap() as i64));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<i64> = (10..40).rev().filter(|i| i % 2 == 0).collect();
    assert_eq!(prices, expected);

    let rfc_from = "2000-01-01T00:00:00Z";
    let (status, page) = server
        .get(&format!(
            "/api/v1/streams/ticks/events?from={rfc_from}&limit=1"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["price"], 49.0);
}

/// Rollup rows checked against a straightforward recomputation over the same events,
/// sent in shuffled order across several batches.
#[tokio::test]
async fn rollup_rows_equal_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.declare_ticks().await;
    let t0 = base_ms();
    let symbols = ["BTC", "ETH", "SOL"];
    let mut events: Vec<(i64, &str, f64, f64)> = (0..600)
        .map(|i| {
            let ts = t0 + (i * 7919) % 600_000; // ten minutes, scattered
            (
                ts,
                symbols[(i % 3) as usize],
                100.0 + ((i * 37) % 50) as f64,
                0.5 + (i % 7) as f64,
            )
        })
        .collect();
    // Reverse order within each batch so arrival order differs from time order.
    events.reverse();
    for chunk in events.chunks(97) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|(ts, s, p, q)| tick(*ts, s, *p, *q))
            .collect();
        let (status, body) = server
            .post("/api/v1/streams/ticks/events", &Value::Array(batch))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // Independent computation: per (5m window, symbol).
    #[derive(Default)]
    struct Expect {
        n: u64,
        volume: f64,
        pq: f64,
        high: f64,
        low: f64,
        first: (i64, f64),
        last: (i64, f64),
    }
    let mut expected: BTreeMap<(i64, String), Expect> = BTreeMap::new();
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.0);
    for (ts, symbol, price, size) in &sorted {
        let start = ts - ts.rem_euclid(300_000);
        let e = expected
            .entry((start, symbol.to_string()))
            .or_insert_with(|| Expect {
                high: f64::MIN,
                low: f64::MAX,
                first: (*ts, *price),
                ..Default::default()
            });
        e.n += 1;
        e.volume += size;
        e.pq += price * size;
        e.high = e.high.max(*price);
        e.low = e.low.min(*price);
        e.last = (*ts, *price); // sorted by ts; ties keep arrival... see below
    }
    let (status, body) = server
        .get("/api/v1/streams/ticks/rollups/bars?window=5m")
        .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for row in rows {
        let start = parse_ts(row["window_start"].as_str().unwrap());
        assert_eq!(
            parse_ts(row["window_end"].as_str().unwrap()),
            start + 300_000
        );
        let e = &expected[&(start, row["symbol"].as_str().unwrap().to_owned())];
        assert_eq!(row["n"].as_u64(), Some(e.n));
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(&row["volume"], e.volume), "{row}");
        assert!(close(&row["vwap"], e.pq / e.volume), "{row}");
        assert!(
            close(&row["high"], e.high) && close(&row["low"], e.low),
            "{row}"
        );
        assert!(close(&row["open"], e.first.1), "{row}");
        assert!(close(&row["close"], e.last.1), "{row}");
    }
    // A tag filter narrows the rows to one symbol.
    let (_, body) = server
        .get("/api/v1/streams/ticks/rollups/bars?window=5m&symbol=ETH")
        .await;
    let filtered = body["rows"].as_array().unwrap();
    assert!(!filtered.is_empty() && filtered.iter().all(|r| r["symbol"] == "ETH"));
    // Time bounds select windows by start.
    let first_start = expected.keys().next().unwrap().0;
    let (_, body) = server
        .get(&format!(
            "/api/v1/streams/ticks/rollups/bars?window=5m&from={}&to={}",
            first_start,
            first_start + 300_000
        ))
        .await;
    assert!(
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| parse_ts(r["window_start"].as_str().unwrap()) == first_start)
    );
}
