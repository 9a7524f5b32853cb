use serde_json::json;
use tidewatch_bus::OutboundKind;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

use super::*;

fn ticks() -> StreamSchema {
    StreamSchema::new(
        "ticks",
        vec!["symbol".into()],
        vec![
            FieldDef {
                name: "price".into(),
                field_type: FieldType::F64,
            },
            FieldDef {
                name: "size".into(),
                field_type: FieldType::F64,
            },
        ],
    )
    .unwrap()
}

fn bars() -> RollupSpec {
    serde_json::from_value(json!({
        "name": "bars", "group_by": ["symbol"], "windows": ["1m", "5m"],
        "aggregates": {"n": "count", "volume": "sum(size)", "vwap": "vwap(price, size)"}
    }))
    .unwrap()
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(EngineConfig::test_config(dir)).unwrap()
}

/// A minute-aligned base time well inside the accepted range.
fn base() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(60_000) - 3_600_000
}

fn rows(events: &[(i64, &str, f64, f64)]) -> String {
    let rows: Vec<Value> = events
        .iter()
        .map(|(ts, s, p, q)| json!({"ts": ts, "symbol": s, "price": p, "size": q}))
        .collect();
    Value::Array(rows).to_string()
}

#[tokio::test]
async fn ingested_events_are_queryable_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base();
    let events = [
        (t0, "BTC", 100.0, 1.0),
        (t0 + 1000, "BTC", 110.0, 3.0),
        (t0 + 61_000, "ETH", 10.0, 2.0),
    ];
    let before = {
        let engine = open(dir.path());
        assert!(engine.declare_stream(ticks()).unwrap());
        assert!(engine.declare_rollup("ticks", bars()).unwrap());
        let receipt = engine
            .ingest("ticks", rows(&events).as_bytes(), Format::JsonArray, false)
            .await
            .unwrap();
        assert_eq!(
            (receipt.accepted, receipt.duplicates, receipt.durable),
            (3, 0, true)
        );
        let window: WindowWidth = "1m".parse().unwrap();
        let rows = engine
            .rollup_rows("ticks", "bars", Some(window), None, None, &[])
            .unwrap()
            .1;
        assert_eq!(rows.len(), 2);
        let btc = &rows[0];
        assert_eq!(btc["symbol"], "BTC");
        assert_eq!(btc["n"], 2.0);
        assert_eq!(btc["volume"], 4.0);
        assert_eq!(btc["vwap"], (100.0 * 1.0 + 110.0 * 3.0) / 4.0);
        // No close, so no persist: the WAL alone brings everything back.
        drop(engine);
        rows
    };
    let engine = open(dir.path());
    assert_eq!(engine.recovery().rows, 3);
    let window: WindowWidth = "1m".parse().unwrap();
    assert_eq!(
        engine
            .rollup_rows("ticks", "bars", Some(window), None, None, &[])
            .unwrap()
            .1,
        before
    );
    let page = engine.events("ticks", &EventsRequest::default()).unwrap();
    let prices: Vec<f64> = page
        .events
        .iter()
        .map(|e| e["price"].as_f64().unwrap())
        .collect();
    assert_eq!(prices, vec![10.0, 110.0, 100.0], "newest first");
    let info = &engine.streams()[0];
    assert_eq!(info.rows, 3);
    assert_eq!(info.rollups.len(), 1);
}

#[tokio::test]
async fn a_batch_with_a_bad_row_is_rejected_whole_unless_partial() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.declare_stream(ticks()).unwrap();
    let t0 = base();
    let body = format!(r#"[{{"ts": {t0}, "price": 1}}, {{"ts": {t0}, "price": "x"}}]"#);
    match engine
        .ingest("ticks", body.as_bytes(), Format::JsonArray, false)
        .await
    {
        Err(Error::RejectedRows { rows, total }) => {
            assert_eq!(total, 2);
            assert_eq!(rows[0].row, 1);
            assert_eq!(rows[0].field.as_deref(), Some("price"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(engine.streams()[0].rows, 0, "nothing written");
    let receipt = engine
        .ingest("ticks", body.as_bytes(), Format::JsonArray, true)
        .await
        .unwrap();
    assert_eq!((receipt.accepted, receipt.rejected.len()), (1, 1));
    assert_eq!(engine.streams()[0].rows, 1);
}

#[tokio::test]
async fn resending_a_batch_with_producer_ids_is_idempotent_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base();
    let body = format!(
        r#"[{{"ts": {t0}, "id": "0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5d"}}, {{"ts": {t0}, "id": "0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5e"}}]"#
    );
    {
        let engine = open(dir.path());
        engine.declare_stream(ticks()).unwrap();
        let first = engine
            .ingest("ticks", body.as_bytes(), Format::JsonArray, false)
            .await
            .unwrap();
        assert_eq!((first.accepted, first.duplicates), (2, 0));
        let again = engine
            .ingest("ticks", body.as_bytes(), Format::JsonArray, false)
            .await
            .unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 2));
        engine.close().await.unwrap();
    }
    let engine = open(dir.path());
    let after_restart = engine
        .ingest("ticks", body.as_bytes(), Format::JsonArray, false)
        .await
        .unwrap();
    assert_eq!((after_restart.accepted, after_restart.duplicates), (0, 2));
    assert_eq!(engine.streams()[0].rows, 2);
}

#[tokio::test]
async fn a_rollup_declared_late_covers_the_events_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base();
    let events = [(t0, "A", 1.0, 1.0), (t0 + 1, "A", 3.0, 1.0)];
    let early = open(dir.path());
    early.declare_stream(ticks()).unwrap();
    early.declare_rollup("ticks", bars()).unwrap();
    early
        .ingest("ticks", rows(&events).as_bytes(), Format::JsonArray, false)
        .await
        .unwrap();

    let late_dir = tempfile::tempdir().unwrap();
    let late = open(late_dir.path());
    late.declare_stream(ticks()).unwrap();
    late.ingest("ticks", rows(&events).as_bytes(), Format::JsonArray, false)
        .await
        .unwrap();
    late.declare_rollup("ticks", bars()).unwrap();

    let w: WindowWidth = "5m".parse().unwrap();
    let mut a = early
        .rollup_rows("ticks", "bars", Some(w), None, None, &[])
        .unwrap()
        .1;
    let mut b = late
        .rollup_rows("ticks", "bars", Some(w), None, None, &[])
        .unwrap()
        .1;
    assert_eq!(a.len(), 1);
    a.iter_mut().chain(b.iter_mut()).for_each(|r| {
        r.as_object_mut().unwrap().remove("closed");
    });
    assert_eq!(a, b);
}

#[tokio::test]
async fn declarations_conflict_or_repeat_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    assert!(engine.declare_stream(ticks()).unwrap());
    assert!(!engine.declare_stream(ticks()).unwrap());
    let other = StreamSchema::new("ticks", vec![], vec![]).unwrap();
    assert!(matches!(
        engine.declare_stream(other),
        Err(Error::StreamConflict(_))
    ));
    assert!(engine.declare_rollup("ticks", bars()).unwrap());
    assert!(!engine.declare_rollup("ticks", bars()).unwrap());
    let mut changed = bars();
    changed.windows.truncate(1);
    assert!(matches!(
        engine.declare_rollup("ticks", changed),
        Err(Error::RollupConflict { .. })
    ));
    assert!(matches!(
        engine.declare_rollup("nope", bars()),
        Err(Error::UnknownStream(_))
    ));
}

#[tokio::test]
async fn subscribers_get_a_snapshot_then_deltas_for_their_filter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.declare_stream(ticks()).unwrap();
    engine.declare_rollup("ticks", bars()).unwrap();
    let t0 = base();
    engine
        .ingest(
            "ticks",
            rows(&[(t0, "BTC", 1.0, 1.0)]).as_bytes(),
            Format::JsonArray,
            false,
        )
        .await
        .unwrap();

    let (client, mut rx) = engine.hub().connect(64);
    engine
        .subscribe(
            &client,
            "rollup.ticks.bars.60s",
            vec![("symbol".into(), "BTC".into())],
        )
        .unwrap();
    let snapshot = rx.recv().await.unwrap();
    assert_eq!(snapshot.kind, OutboundKind::Snapshot);
    assert_eq!(&*snapshot.topic, "rollup.ticks.bars.1m");
    let snapshot_rows: Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(snapshot_rows[0]["n"], 1.0);

    engine
        .ingest(
            "ticks",
            rows(&[(t0 + 5, "ETH", 1.0, 1.0), (t0 + 6, "BTC", 2.0, 1.0)]).as_bytes(),
            Format::JsonArray,
            false,
        )
        .await
        .unwrap();
    let delta = rx.recv().await.unwrap();
    assert_eq!((delta.kind, delta.seq), (OutboundKind::Delta, 1));
    let row: Value = serde_json::from_str(&delta.data).unwrap();
    assert_eq!(
        (row["symbol"].as_str(), row["n"].as_f64()),
        (Some("BTC"), Some(2.0))
    );
    assert!(rx.try_recv().is_err(), "the ETH change is filtered out");

    assert!(
        engine
            .subscribe(&client, "rollup.ticks.bars.15m", vec![])
            .is_err()
    );
    assert!(
        engine
            .subscribe(&client, "rollup.ticks.nope.1m", vec![])
            .is_err()
    );
    assert!(
        engine
            .subscribe(&client, "stream.ticks", vec![("price".into(), "1".into())])
            .is_err()
    );
}

#[tokio::test]
async fn event_pages_follow_cursors_and_validate_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.declare_stream(ticks()).unwrap();
    let t0 = base();
    let events: Vec<(i64, &str, f64, f64)> =
        (0..25).map(|i| (t0 + i * 10, "A", i as f64, 1.0)).collect();
    engine
        .ingest("ticks", rows(&events).as_bytes(), Format::JsonArray, false)
        .await
        .unwrap();
    let mut prices = Vec::new();
    let mut request = EventsRequest {
        limit: Some(10),
        ..Default::default()
    };
    loop {
        let page = engine.events("ticks", &request).unwrap();
        prices.extend(page.events.iter().map(|e| e["price"].as_f64().unwrap()));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<f64> = (0..25).rev().map(|i| i as f64).collect();
    assert_eq!(prices, expected);
    for bad in [
        EventsRequest {
            limit: Some(0),
            ..Default::default()
        },
        EventsRequest {
            limit: Some(MAX_PAGE_LIMIT + 1),
            ..Default::default()
        },
        EventsRequest {
            cursor: Some("garbage".into()),
            ..Default::default()
        },
        EventsRequest {
            from: Some(10),
            to: Some(5),
            ..Default::default()
        },
        EventsRequest {
            tags: vec![("price".into(), "1".into())],
            ..Default::default()
        },
    ] {
        assert!(
            matches!(engine.events("ticks", &bad), Err(Error::InvalidRequest(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_lagged_client_without_subscriptions_can_subscribe_again_after_resync() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.declare_stream(ticks()).unwrap();
    let t0 = base();
    let (client, mut rx) = engine.hub().connect(1);
    let id = engine.subscribe(&client, "stream.ticks", vec![]).unwrap();
    // The snapshot fills the one-message queue, so the next event makes the client lagged.
    engine
        .ingest(
            "ticks",
            rows(&[(t0, "A", 1.0, 1.0)]).as_bytes(),
            Format::JsonArray,
            false,
        )
        .await
        .unwrap();
    assert!(client.is_lagged());
    assert!(engine.hub().unsubscribe(&client, id));
    while rx.try_recv().is_ok() {}
    engine.resync(&client);
    assert!(!client.is_lagged());
    engine.subscribe(&client, "stream.ticks", vec![]).unwrap();
    let snapshot = rx
        .try_recv()
        .expect("the new subscription's snapshot is queued");
    assert_eq!(snapshot.kind, OutboundKind::Snapshot);
}

/// Every answer the REST queries give about `ticks`: pages of events (all, by tag, by
/// range, following cursors) and every rollup window.
fn answers(engine: &Engine, t0: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let requests = [
        EventsRequest {
            limit: Some(1000),
            ..EventsRequest::default()
        },
        EventsRequest {
            limit: Some(7),
            tags: vec![("symbol".into(), "ETH".into())],
            ..EventsRequest::default()
        },
        EventsRequest {
            from: Some(t0 + 30 * 60_000),
            to: Some(t0 + 150 * 60_000),
            limit: Some(1000),
            ..EventsRequest::default()
        },
    ];
    for request in requests {
        let mut request = request;
        loop {
            let page = engine.events("ticks", &request).unwrap();
            out.push(Value::Array(page.events));
            match page.next_cursor {
                Some(cursor) if out.len() < 200 => request.cursor = Some(cursor),
                _ => break,
            }
        }
    }
    for window in ["1m", "5m"] {
        let rows = engine
            .rollup_rows(
                "ticks",
                "bars",
                Some(window.parse().unwrap()),
                None,
                None,
                &[],
            )
            .unwrap()
            .1;
        out.push(Value::Array(rows));
    }
    let info = engine.stream_info("ticks").unwrap();
    out.push(json!([info.rows, info.first_ts, info.last_ts]));
    out
}

/// Three hours of ticks, two symbols, one batch per ten minutes.
fn three_hours(t0: i64) -> Vec<String> {
    (0..18)
        .map(|step| {
            let events: Vec<(i64, &str, f64, f64)> = (0..20)
                .map(|i| {
                    let ts = t0 + step * 600_000 + i * 29_000;
                    let symbol = if i % 3 == 0 { "ETH" } else { "BTC" };
                    (
                        ts,
                        symbol,
                        100.0 + (step * 20 + i) as f64 * 0.25,
                        1.0 + (i % 4) as f64,
                    )
                })
                .collect();
            rows(&events)
        })
        .collect()
}

#[tokio::test]
async fn queries_answer_the_same_before_and_after_a_seal_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base() - 3 * 3_600_000;
    let t0 = t0 - t0.rem_euclid(3_600_000);
    let (before, wal_files_before) = {
        let engine = open(dir.path());
        engine.declare_stream(ticks()).unwrap();
        engine.declare_rollup("ticks", bars()).unwrap();
        for body in three_hours(t0) {
            engine
                .ingest("ticks", body.as_bytes(), Format::JsonArray, false)
                .await
                .unwrap();
        }
        let before = answers(&engine, t0);

        // The two hours before the newest are closed: they go to Parquet.
        let report = engine.persist(PersistMode::Closed).unwrap();
        assert_eq!(report.segments, 2, "{report:?}");
        assert_eq!(report.rows, 240);
        assert_eq!(report.checkpoints, 1);
        assert_eq!(answers(&engine, t0), before, "after sealing closed hours");
        let info = engine.stream_info("ticks").unwrap();
        assert_eq!(info.segments, 2);
        assert!(info.bytes_on_disk > 0);

        // A late event for a sealed hour, then everything.
        let late = rows(&[(t0 + 5_000, "ETH", 1.0, 9.0)]);
        engine
            .ingest("ticks", late.as_bytes(), Format::JsonArray, false)
            .await
            .unwrap();
        let with_late = answers(&engine, t0);
        assert_ne!(with_late, before);
        engine.persist(PersistMode::All).unwrap();
        assert_eq!(answers(&engine, t0), with_late, "after sealing everything");
        let wal_files = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
        engine.close().await.unwrap();
        (with_late, wal_files)
    };
    let engine = open(dir.path());
    assert_eq!(answers(&engine, t0), before, "after a restart");
    let recovery = engine.recovery();
    assert_eq!(recovery.rows, 0, "nothing left to replay: {recovery:?}");
    assert_eq!(recovery.segments, 4);
    assert!(
        wal_files_before >= 2,
        "LOCK and the active segment at least"
    );

    // Retention: drop the first hour, exactly.
    engine
        .set_retention(
            "ticks",
            Some(Retention {
                events: Some(std::time::Duration::from_secs(1)),
                rollups: None,
            }),
        )
        .unwrap();
    let dropped = engine.expire(t0 + 3_600_000 + 1000).unwrap();
    assert_eq!(dropped, 121, "the first hour's 120 events and the late one");
    let page = engine
        .events(
            "ticks",
            &EventsRequest {
                limit: Some(1000),
                ..EventsRequest::default()
            },
        )
        .unwrap();
    assert_eq!(page.events.len(), 360 - 120);
    let oldest = page.events.last().unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(oldest, format_rfc3339_ms(t0 + 3_600_000));
    engine.close().await.unwrap();
    drop(engine);
    let engine = open(dir.path());
    assert_eq!(
        engine.stream_info("ticks").unwrap().rows,
        240,
        "expired rows stay gone"
    );
    assert_eq!(engine.stream_info("ticks").unwrap().segments, 2);
}
