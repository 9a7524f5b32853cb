//! The Binance connector against a fake exchange.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tidewatch_connect::{TradeKind, producer_id};
use tidewatch_ingest::ids::format_id;
use tidewatch_types::time::{format_rfc3339_ms, now_ms};
use tokio::io::AsyncReadExt;

use crate::support::{
    FakeExchange, PATIENCE, RunningConnector, agg_trade, combined, eventually, open_engine,
    stored_ticks, ticks_schema, trade,
};

/// The stored ticks keyed by price, for trades whose price encodes their number.
fn ticks_by_price(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event["price"].to_string()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_and_aggregate_trades_are_stored_with_the_mapped_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    engine.declare_stream(ticks_schema()).expect("declare");
    let mut exchange = FakeExchange::start().await;
    let connector = RunningConnector::start(&engine, exchange.url());
    let mut connection = exchange.next_connection().await;

    let ts = now_ms() - 5_000;
    connection
        .send_text(combined(&trade(
            "BTCUSDT",
            4_382_120_611,
            "97012.35000000",
            "0.00150000",
            ts,
        )))
        .await;
    connection
        .send_text(combined(&agg_trade(
            "ETHUSDT",
            2_034_418_877,
            "3401.17000000",
            "1.25000000",
            ts + 1,
        )))
        .await;
    // Raw-stream frames (no envelope) and a lower-case symbol.
    connection
        .send_text(trade("solusdt", 77, "190.5", "3", ts + 2).to_string())
        .await;
    connection
        .send_text(agg_trade("BNBUSDT", 78, "620.25", "0.4", ts + 3).to_string())
        .await;
    // The exchange pings every 20 s and drops clients that do not answer.
    connection.ping_and_expect_pong(b"heartbeat").await;

    eventually("four ticks", || stored_ticks(&engine).len() == 4).await;
    let ticks = stored_ticks(&engine);
    let expected = [
        (
            "BTCUSDT",
            97012.35,
            0.0015,
            ts,
            TradeKind::Trade,
            4_382_120_611,
        ),
        (
            "ETHUSDT",
            3401.17,
            1.25,
            ts + 1,
            TradeKind::AggTrade,
            2_034_418_877,
        ),
        ("SOLUSDT", 190.5, 3.0, ts + 2, TradeKind::Trade, 77),
        ("BNBUSDT", 620.25, 0.4, ts + 3, TradeKind::AggTrade, 78),
    ];
    for (tick, (symbol, price, size, ts, kind, id)) in ticks.iter().zip(expected) {
        assert_eq!(tick["symbol"], symbol, "{tick}");
        assert_eq!(tick["venue"], "BINANCE", "{tick}");
        assert_eq!(tick["asset_class"], "crypto", "{tick}");
        assert_eq!(tick["price"], price, "{tick}");
        assert_eq!(tick["size"], size, "{tick}");
        assert_eq!(tick["bid"], Value::Null, "{tick}");
        assert_eq!(tick["ask"], Value::Null, "{tick}");
        assert_eq!(tick["ts"], format_rfc3339_ms(ts), "{tick}");
        assert_eq!(
            tick["id"],
            format_id(producer_id(kind, symbol, id)),
            "{tick}"
        );
    }

    connector.cancel();
    assert!(
        connection.closed_by_client().await,
        "the connector closes with a close frame"
    );
    connector.finished().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_skipped_and_later_trades_still_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    engine.declare_stream(ticks_schema()).expect("declare");
    let mut exchange = FakeExchange::start().await;
    let connector = RunningConnector::start(&engine, exchange.url());
    let mut connection = exchange.next_connection().await;

    let ts = now_ms() - 5_000;
    connection
        .send_text(combined(&trade("BTCUSDT", 1, "101", "1", ts)))
        .await;
    let mut without_price = trade("BTCUSDT", 2, "102", "1", ts);
    if let Some(object) = without_price.as_object_mut() {
        object.remove("p");
    }
    let malformed = [
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","#.to_owned(), // cut short
        "definitely not json".to_owned(),
        combined(&without_price),
        combined(&trade("BTCUSDT", 3, "abc", "1", ts)),
        combined(&trade("BTCUSDT", 4, "104", "0.00000000", ts)),
        combined(&trade("BTCUSDT", 5, "-105", "1", ts)),
        r#"{"stream":"btcusdt@trade","data":null}"#.to_owned(),
    ];
    for frame in malformed {
        connection.send_text(frame).await;
    }
    connection.send_binary(b"\x00\x01").await;
    // Not a trade: ignored without complaint.
    connection.send_text(r#"{"result":null,"id":1}"#).await;
    connection
        .send_text(r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","s":"BTCUSDT","a":[["1.0","2"]]}}"#)
        .await;
    connection
        .send_text(combined(&trade("BTCUSDT", 6, "106", "1", ts + 1)))
        .await;

    eventually("the trade after the malformed frames", || {
        stored_ticks(&engine).iter().any(|t| t["price"] == 106.0)
    })
    .await;
    let prices: Vec<Value> = stored_ticks(&engine)
        .iter()
        .map(|t| t["price"].clone())
        .collect();
    assert_eq!(
        prices,
        [101.0, 106.0],
        "only the two good trades are stored"
    );

    connector.cancel();
    connector.finished().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reopened_and_resent_trades_are_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    engine.declare_stream(ticks_schema()).expect("declare");
    let mut exchange = FakeExchange::start().await;
    let connector = RunningConnector::start(&engine, exchange.url());
    let ts = now_ms() - 5_000;
    // Trade n has price 100 + n, so stored ticks show which trades arrived and how often.
    let frame = |n: u64| {
        combined(&trade(
            "BTCUSDT",
            1_000 + n,
            &format!("{}.00000000", 100 + n),
            "0.5",
            ts + n as i64,
        ))
    };

    let mut first = exchange.next_connection().await;
    for n in 1..=3 {
        first.send_text(frame(n)).await;
    }
    eventually("trades 1 to 3", || stored_ticks(&engine).len() == 3).await;
    // Mid-stream: trade 4 goes out, then the connection is gone without a close handshake.
    first.send_text(frame(4)).await;
    drop(first);

    let mut second = exchange.next_connection().await;
    // The exchange replays from before the drop: 2, 3 (and maybe 4) were stored already.
    for n in 2..=6 {
        second.send_text(frame(n)).await;
    }
    eventually("trade 6 after the reconnect", || {
        stored_ticks(&engine).iter().any(|t| t["price"] == 106.0)
    })
    .await;
    let counts = ticks_by_price(&stored_ticks(&engine));
    let expected: BTreeMap<String, usize> =
        (1..=6).map(|n| (format!("{}.0", 100 + n), 1)).collect();
    assert_eq!(counts, expected, "each trade stored exactly once");

    // A replay that is all duplicates changes nothing either.
    for n in 1..=6 {
        second.send_text(frame(n)).await;
    }
    second.send_text(frame(7)).await;
    eventually("trade 7", || {
        stored_ticks(&engine).iter().any(|t| t["price"] == 107.0)
    })
    .await;
    assert_eq!(stored_ticks(&engine).len(), 7);

    connector.cancel();
    connector.finished().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connections_are_retried_until_the_token_is_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    engine.declare_stream(ticks_schema()).expect("declare");
    // Accepts TCP connections and drops them before the WebSocket handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "ws://{}/ws/btcusdt@trade",
        listener.local_addr().expect("addr")
    );
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let refuser = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(tcp);
        }
    });
    let connector = RunningConnector::start(&engine, url);
    eventually("three connection attempts", || {
        attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    // Cancelled while backing off or connecting: run returns either way.
    connector.cancel();
    connector.finished().await;
    refuser.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_waits_for_the_stream_to_be_declared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    let mut exchange = FakeExchange::start().await;
    let connector = RunningConnector::start(&engine, exchange.url());
    // Give the connector the chance to find the stream missing; the test holds either way.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    engine.declare_stream(ticks_schema()).expect("declare");

    let mut connection = exchange.next_connection().await;
    connection
        .send_text(combined(&trade("BTCUSDT", 1, "101", "1", now_ms())))
        .await;
    eventually("the trade", || stored_ticks(&engine).len() == 1).await;

    connector.cancel();
    connector.finished().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_trades_do_not_fit_stops_the_connector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    let mut schema = ticks_schema();
    schema.tags.retain(|tag| tag != "venue");
    engine.declare_stream(schema).expect("declare");
    let exchange = FakeExchange::start().await;
    // No cancellation: run returns by itself.
    RunningConnector::start(&engine, exchange.url())
        .finished()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_urls_are_spoken_to_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    engine.declare_stream(ticks_schema()).expect("declare");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "wss://{}/ws/btcusdt@trade",
        listener.local_addr().expect("addr")
    );
    let connector = RunningConnector::start(&engine, url);
    let (mut tcp, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the connector connects")
        .expect("accept");
    let mut first_byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, tcp.read_exact(&mut first_byte))
        .await
        .expect("the client speaks first")
        .expect("read");
    // A TLS handshake record (the ClientHello): the TLS stack is built and used, so a
    // real `wss://` exchange can be reached. This server cannot answer it.
    assert_eq!(first_byte[0], 0x16);
    drop(tcp);
    connector.cancel();
    connector.finished().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_connector_returns_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    let config = tidewatch_connect::BinanceConfig::default();
    assert!(!config.enabled, "off unless configured");
    let never_cancelled = tokio_util::sync::CancellationToken::new();
    tokio::time::timeout(
        PATIENCE,
        tidewatch_connect::run(engine, config, never_cancelled),
    )
    .await
    .expect("run returns");
}
