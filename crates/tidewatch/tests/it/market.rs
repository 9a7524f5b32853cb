//! The market API against the real server: candles and their indicators checked against a
//! straightforward recomputation from the posted trades (sent out of order, with late
//! trades after their windows closed), quotes, sentiment, alerts over REST and WebSocket,
//! and bad parameters.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::*;
use crate::wsclient::*;

const TICKS: &str = "/api/v1/streams/market.ticks/events";

#[derive(Debug, Clone, Copy)]
struct Trade {
    ts: i64,
    price: f64,
    size: f64,
    bid: f64,
    ask: f64,
}

impl Trade {
    fn json(&self, symbol: &str) -> Value {
        json!({"ts": self.ts, "symbol": symbol, "venue": "TESTVENUE", "asset_class": "equity",
               "price": self.price, "size": self.size, "bid": self.bid, "ask": self.ask})
    }
}

/// A small deterministic generator (xorshift), so the data needs no seeding crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 70 minutes of a rising market, four trades a minute, starting at `t0`.
fn rising_market(t0: i64, noise: &mut Noise) -> Vec<Trade> {
    let mut trades = Vec::new();
    for minute in 0..70 {
        for k in 0..4 {
            let price = 100.0 * (0.002 * minute as f64 + 0.001 * (noise.next() - 0.5)).exp();
            let spread = 0.01 + 0.02 * noise.next();
            trades.push(Trade {
                ts: t0 + minute * 60_000 + k * 13_000 + 1_000 + (noise.next() * 900.0) as i64,
                price,
                size: 1.0 + 9.0 * noise.next(),
                bid: price - spread / 2.0,
                ask: price + spread / 2.0,
            });
        }
    }
    trades
}

/// Posts `trades` shuffled (out of order) in batches.
async fn post_shuffled(server: &TestServer, symbol: &str, trades: &[Trade], noise: &mut Noise) {
    let mut order: Vec<usize> = (0..trades.len()).collect();
    for i in (1..order.len()).rev() {
        let j = (noise.next() * (i + 1) as f64) as usize;
        order.swap(i, j.min(i));
    }
    for chunk in order.chunks(37) {
        let batch: Vec<Value> = chunk.iter().map(|&i| trades[i].json(symbol)).collect();
        let (status, body) = server.post(TICKS, &json!(batch)).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// One expected candle, computed the obvious way.
#[derive(Debug)]
struct Expected {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: f64,
    trades: usize,
    spread: f64,
}

fn expected_candles(trades: &[Trade], width_ms: i64) -> BTreeMap<i64, Expected> {
    let mut windows: BTreeMap<i64, Vec<Trade>> = BTreeMap::new();
    for t in trades {
        windows
            .entry(t.ts - t.ts.rem_euclid(width_ms))
            .or_default()
            .push(*t);
    }
    windows
        .into_iter()
        .map(|(start, mut ts)| {
            ts.sort_by_key(|t| t.ts);
            let volume: f64 = ts.iter().map(|t| t.size).sum();
            let n = ts.len() as f64;
            let expected = Expected {
                open: ts[0].price,
                close: ts[ts.len() - 1].price,
                high: ts.iter().map(|t| t.price).fold(f64::MIN, f64::max),
                low: ts.iter().map(|t| t.price).fold(f64::MAX, f64::min),
                volume,
                vwap: ts.iter().map(|t| t.price * t.size).sum::<f64>() / volume,
                trades: ts.len(),
                spread: ts.iter().map(|t| t.ask).sum::<f64>() / n
                    - ts.iter().map(|t| t.bid).sum::<f64>() / n,
            };
            (start, expected)
        })
        .collect()
}

/// EMA seeded with the mean of the first `period` closes.
fn expected_ema(closes: &[f64], period: usize) -> Vec<Option<f64>> {
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut out = vec![None; closes.len()];
    if closes.len() < period {
        return out;
    }
    let mut value = closes[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = Some(value);
    for i in period..closes.len() {
        value = alpha * closes[i] + (1.0 - alpha) * value;
        out[i] = Some(value);
    }
    out
}

/// Sample stddev of the 19 log returns ending at each close (20 closes).
fn expected_volatility(closes: &[f64]) -> Vec<Option<f64>> {
    (0..closes.len())
        .map(|i| {
            if i < 19 {
                return None;
            }
            let returns: Vec<f64> = (i - 18..=i)
                .map(|j| (closes[j] / closes[j - 1]).ln())
                .collect();
            let mean = returns.iter().sum::<f64>() / returns.len() as f64;
            let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
                / (returns.len() - 1) as f64;
            Some(var.sqrt())
        })
        .collect()
}

fn close_to(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual}"));
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected}"
    );
}

fn optional_close_to(actual: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: got {actual}, expected null"),
        Some(e) => close_to(actual, e, what),
    }
}

#[tokio::test]
async fn candles_and_indicators_equal_a_recomputation_including_late_and_out_of_order_trades() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let t0 = base_ms() - 3_600_000;
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut trades = rising_market(t0, &mut noise);
    // Hold back a few trades of early minutes and send them once their windows closed.
    let late: Vec<Trade> = [3usize, 41, 42, 150]
        .iter()
        .rev()
        .map(|&i| trades.remove(i))
        .collect();
    post_shuffled(&server, "TESTX", &trades, &mut noise).await;
    post_shuffled(&server, "TESTX", &late, &mut noise).await;
    trades.extend(late);

    for (window, width_ms) in [("1m", 60_000), ("5m", 300_000)] {
        let (status, body) = server
            .get(&format!(
                "/api/v1/market/candles?symbol=TESTX&window={window}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let candles = body["candles"].as_array().unwrap();
        let expected = expected_candles(&trades, width_ms);
        assert_eq!(candles.len(), expected.len(), "{window} candles");
        let closes: Vec<f64> = expected.values().map(|e| e.close).collect();
        let (ema20, ema50) = (expected_ema(&closes, 20), expected_ema(&closes, 50));
        let volatility = expected_volatility(&closes);
        for (i, (candle, (start, e))) in candles.iter().zip(&expected).enumerate() {
            let what = |name: &str| format!("{window} candle {i} {name}");
            assert_eq!(parse_ts(candle["window_start"].as_str().unwrap()), *start);
            close_to(&candle["open"], e.open, &what("open"));
            close_to(&candle["high"], e.high, &what("high"));
            close_to(&candle["low"], e.low, &what("low"));
            close_to(&candle["close"], e.close, &what("close"));
            close_to(&candle["volume"], e.volume, &what("volume"));
            close_to(&candle["vwap"], e.vwap, &what("vwap"));
            close_to(&candle["trades"], e.trades as f64, &what("trades"));
            close_to(&candle["spread"], e.spread, &what("spread"));
            optional_close_to(&candle["ema20"], ema20[i], &what("ema20"));
            optional_close_to(&candle["ema50"], ema50[i], &what("ema50"));
            optional_close_to(&candle["volatility"], volatility[i], &what("volatility"));
        }
        if window == "1m" {
            // 70 one-minute candles: both EMAs and the volatility are warm at the end.
            let last = candles.last().unwrap();
            assert!(last["ema50"].is_number() && last["volatility"].is_number());
        }
    }

    // Annualised volatility of 1-minute candles: times sqrt(minutes in a year).
    let (_, plain) = server
        .get("/api/v1/market/candles?symbol=TESTX&window=1m&limit=1")
        .await;
    let (_, yearly) = server
        .get("/api/v1/market/candles?symbol=TESTX&window=1m&limit=1&annualise=true")
        .await;
    assert_eq!(plain["candles"].as_array().unwrap().len(), 1);
    let minutes_per_year: f64 = 365.25 * 1440.0;
    close_to(
        &yearly["candles"][0]["volatility"],
        plain["candles"][0]["volatility"].as_f64().unwrap() * minutes_per_year.sqrt(),
        "annualised volatility",
    );

    // A from/to range returns the candles that overlap it, indicators still warm.
    let from = t0 + 60 * 60_000;
    let (_, ranged) = server
        .get(&format!(
            "/api/v1/market/candles?symbol=TESTX&window=1m&from={from}&to={}",
            from + 5 * 60_000
        ))
        .await;
    let ranged = ranged["candles"].as_array().unwrap();
    assert_eq!(ranged.len(), 5);
    assert!(ranged.iter().all(|c| c["ema50"].is_number()));

    // The quote: last trade, 24 h figures over everything posted, hourly sparkline.
    let (status, quote) = server.get("/api/v1/market/quote/TESTX").await;
    assert_eq!(status, 200, "{quote}");
    let newest = trades.iter().max_by_key(|t| t.ts).unwrap();
    let oldest = trades.iter().min_by_key(|t| t.ts).unwrap();
    close_to(&quote["price"], newest.price, "price");
    close_to(&quote["bid"], newest.bid, "bid");
    close_to(&quote["ask"], newest.ask, "ask");
    close_to(&quote["spread"], newest.ask - newest.bid, "spread");
    close_to(
        &quote["change_24h_pct"],
        (newest.price / oldest.price - 1.0) * 100.0,
        "change",
    );
    close_to(
        &quote["volume_24h"],
        trades.iter().map(|t| t.size).sum(),
        "volume",
    );
    assert_eq!(quote["trades_24h"], trades.len());
    assert_eq!(quote["venue"], "TESTVENUE");
    assert_eq!(quote["name"], "TESTX");
    let hours = expected_candles(&trades, 3_600_000);
    let sparkline: Vec<f64> = quote["sparkline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        sparkline,
        hours.values().map(|h| h.close).collect::<Vec<_>>()
    );

    let (_, symbols) = server.get("/api/v1/market/symbols").await;
    let listed: Vec<&str> = symbols["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["TESTX"]);

    // A steady rise on 5-minute candles reads bullish, with the documented formula.
    let (status, sentiment) = server.get("/api/v1/market/sentiment?symbol=TESTX").await;
    assert_eq!(status, 200, "{sentiment}");
    let five = expected_candles(&trades, 300_000);
    let reading = tidewatch_market::sentiment::sentiment(
        &five.values().map(|e| e.close).collect::<Vec<_>>(),
        &five.values().map(|e| e.volume).collect::<Vec<_>>(),
    );
    close_to(&sentiment["score"], reading.score, "sentiment score");
    assert_eq!(sentiment["label"], "bullish", "{sentiment}");
    let (_, all) = server.get("/api/v1/market/sentiment").await;
    assert_eq!(all["sentiment"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_price_spike_raises_an_alert_kept_by_the_api_and_pushed_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "stream.alerts", "filter": {"domain": "market"}}),
    )
    .await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["data"], json!([]));

    let t0 = base_ms();
    let quiet: Vec<Value> = (0..60)
        .map(|i| {
            let wobble = [0.0, 0.01, -0.01][i % 3];
            Trade {
                ts: t0 + i as i64 * 1_000,
                price: 100.0 + wobble,
                size: 1.0,
                bid: 99.99,
                ask: 100.01,
            }
            .json("SPIKY")
        })
        .collect();
    let (status, _) = server.post(TICKS, &json!(quiet)).await;
    assert_eq!(status, 200);
    let spike = Trade {
        ts: t0 + 60_000,
        price: 106.0,
        size: 1.0,
        bid: 105.9,
        ask: 106.1,
    };
    let after = Trade {
        ts: t0 + 61_000,
        price: 100.0,
        size: 1.0,
        bid: 99.99,
        ask: 100.01,
    };
    let (status, _) = server
        .post(TICKS, &json!([spike.json("SPIKY"), after.json("SPIKY")]))
        .await;
    assert_eq!(status, 200);

    let delta = next_json(&mut socket).await;
    assert_eq!(delta["type"], "delta", "{delta}");
    assert_eq!(delta["data"]["kind"], "price_spike");
    assert_eq!(delta["data"]["subject"], "SPIKY");
    assert_eq!(parse_ts(delta["data"]["ts"].as_str().unwrap()), spike.ts);

    let (status, body) = server.get("/api/v1/market/alerts?symbol=SPIKY").await;
    assert_eq!(status, 200, "{body}");
    let alerts = body["alerts"].as_array().unwrap();
    // One alert: the trade after the spike is back at the old price, which is normal.
    assert_eq!(alerts.len(), 1, "{body}");
    let alert = &alerts[0];
    assert_eq!(alert["symbol"], "SPIKY");
    assert_eq!(alert["domain"], "market");
    // Against the last normal trade (the 60th, at 99.99).
    close_to(
        &alert["evidence"]["change_pct"],
        (106.0 / 99.99 - 1.0) * 100.0,
        "change_pct",
    );
    assert!(alert["evidence"]["z"].as_f64().unwrap() > 8.0);
    let (_, none) = server
        .get("/api/v1/market/alerts?symbol=SPIKY&kind=volume_surge")
        .await;
    assert_eq!(none["alerts"], json!([]));
}

#[tokio::test]
async fn bad_market_parameters_get_a_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let t0 = base_ms();
    let trade = Trade {
        ts: t0,
        price: 10.0,
        size: 1.0,
        bid: 9.9,
        ask: 10.1,
    };
    let (status, _) = server.post(TICKS, &json!([trade.json("AAPL")])).await;
    assert_eq!(status, 200);
    let cases = [
        ("/api/v1/market/quote/NOPE", 404, "unknown_symbol"),
        ("/api/v1/market/quote/MSFT", 404, "unknown_symbol"),
        (
            "/api/v1/market/candles?symbol=NOPE&window=1m",
            404,
            "unknown_symbol",
        ),
        ("/api/v1/market/candles?window=1m", 400, "invalid_request"),
        (
            "/api/v1/market/candles?symbol=AAPL&window=2m",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&window=7x",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&from=yesterday",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&limit=0",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&limit=-3",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&annualise=maybe",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/candles?symbol=AAPL&colour=red",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/market/sentiment?symbol=NOPE",
            404,
            "unknown_symbol",
        ),
        ("/api/v1/market/alerts?kind=meteor", 400, "invalid_request"),
        ("/api/v1/market/alerts?symbol=NOPE", 404, "unknown_symbol"),
        (
            "/api/v1/market/alerts?cursor=garbage",
            400,
            "invalid_request",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = server.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{path}"
        );
    }
    let (status, body) = server.get("/api/v1/market/candles?symbol=AAPL").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window"], "1m");
    assert_eq!(body["candles"].as_array().unwrap().len(), 1);
}
