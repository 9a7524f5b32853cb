//! [`Market`]: the domain attached to an engine. It declares the market streams, feeds
//! every applied trade to the detectors and keeps each symbol's last trade; its queries
//! answer the `/api/v1/market/*` routes from the `ohlc` rollup, so candles, 24 h figures
//! and indicators already include late and out-of-order trades.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidewatch_alerts::{Alert, AlertSink};
use tidewatch_engine::{Engine, EventsPage, EventsRequest, Observer, RollupRow};
use tidewatch_types::time::{format_rfc3339_ms, parse_rfc3339_ms};
use tidewatch_types::{EventBatch, StreamSchema, TimestampMs, WindowWidth};

use crate::detect::{DetectorConfig, Detectors, PRICE_SPIKE, VOLUME_SURGE};
use crate::error::{Error, Result};
use crate::indicators::{EMA_FAST, EMA_SLOW, VOLATILITY_PERIODS, ema, rolling_volatility};
use crate::instruments::{self, INSTRUMENTS};
use crate::schema::{CANDLE_WINDOWS, OHLC_ROLLUP, TICKS_STREAM, ticks_rollups, ticks_schema};
use crate::sentiment::{self, Components};

const DAY_MS: i64 = 86_400_000;
/// Candles one request returns when it does not say.
pub const DEFAULT_CANDLES: usize = 500;
/// Most candles one request may return (every window retains as many).
pub const MAX_CANDLES: usize = 1440;
const SENTIMENT_WINDOW: WindowWidth = WindowWidth::constant::<300>();
/// Candles read before the first one served, for the indicators to settle.
const INDICATOR_WARMUP: usize = 10 * crate::indicators::EMA_SLOW;
const DAY_STATS_WINDOW: WindowWidth = WindowWidth::constant::<300>();
const SPARKLINE_WINDOW: WindowWidth = WindowWidth::constant::<3600>();

/// `[market]` in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    pub detectors: DetectorConfig,
}

#[derive(Debug, Clone, Copy)]
struct LastTrade {
    ts: TimestampMs,
    price: f64,
    bid: Option<f64>,
    ask: Option<f64>,
}

/// What the observer updates per trade, behind one lock.
struct Live {
    detectors: Detectors,
    last: HashMap<Arc<str>, LastTrade>,
}

pub struct Market {
    engine: Arc<Engine>,
    live: Arc<Mutex<Live>>,
}

/// A symbol's latest quote and its last 24 hours (`GET /api/v1/market/quote/{symbol}`,
/// and one entry of `GET /api/v1/market/symbols`).
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    pub symbol: String,
    pub name: String,
    pub venue: Option<String>,
    pub asset_class: Option<String>,
    pub price: f64,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    pub spread: Option<f64>,
    pub spread_bps: Option<f64>,
    /// Time of the last trade.
    pub ts: String,
    /// Change since the open of the 24 hours before the last trade (to the 5-minute window).
    pub change_24h_pct: Option<f64>,
    pub open_24h: Option<f64>,
    pub high_24h: Option<f64>,
    pub low_24h: Option<f64>,
    pub volume_24h: f64,
    pub trades_24h: u64,
    /// Hourly closes over those 24 hours, oldest first.
    pub sparkline: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candle {
    pub window_start: String,
    pub window_end: String,
    pub closed: bool,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub volume: Option<f64>,
    pub vwap: Option<f64>,
    pub trades: Option<f64>,
    /// Mean ask minus mean bid over the window.
    pub spread: Option<f64>,
    /// Stddev of the log returns of the last 20 closes (annualised when asked).
    pub volatility: Option<f64>,
    pub ema20: Option<f64>,
    pub ema50: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candles {
    pub symbol: String,
    pub window: String,
    pub annualised: bool,
    pub candles: Vec<Candle>,
}

/// What a candles request asks for.
#[derive(Debug, Clone)]
pub struct CandlesRequest {
    pub symbol: String,
    pub window: WindowWidth,
    pub from: Option<TimestampMs>,
    pub to: Option<TimestampMs>,
    pub limit: Option<usize>,
    pub annualise: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SymbolSentiment {
    pub symbol: String,
    pub score: f64,
    pub label: &'static str,
    pub window: String,
    pub components: Components,
    pub candles: usize,
    /// End of the newest candle it was computed from.
    pub ts: Option<String>,
}

impl Market {
    /// Declares the market stream and rollups (idempotently) and starts detecting on every
    /// trade applied from now on; alerts go to `alerts`.
    pub fn attach(engine: Arc<Engine>, config: &MarketConfig, alerts: AlertSink) -> Result<Market> {
        engine.declare_stream(ticks_schema())?;
        for rollup in ticks_rollups() {
            engine.declare_rollup(TICKS_STREAM, rollup)?;
        }
        let live = Arc::new(Mutex::new(Live {
            detectors: Detectors::new(config.detectors.clone()),
            last: HashMap::new(),
        }));
        engine.observe(TICKS_STREAM, observer(Arc::clone(&live), alerts))?;
        Ok(Market { engine, live })
    }

    /// Symbols that have traded: the known instruments in their order, then the others.
    pub fn symbol_names(&self) -> Result<Vec<String>> {
        let (_, rows) = self.engine.rollup_query(
            TICKS_STREAM,
            OHLC_ROLLUP,
            Some(WindowWidth::constant::<86_400>()),
            None,
            None,
            &[],
        )?;
        let mut traded: Vec<String> = rows.iter().filter_map(symbol_of).collect();
        traded.sort_unstable();
        traded.dedup();
        let mut names: Vec<String> = INSTRUMENTS
            .iter()
            .filter(|i| traded.iter().any(|s| s == i.symbol))
            .map(|i| i.symbol.to_owned())
            .collect();
        names.extend(
            traded
                .into_iter()
                .filter(|s| instruments::find(s).is_none()),
        );
        Ok(names)
    }

    pub fn symbols(&self) -> Result<Vec<Quote>> {
        self.symbol_names()?
            .iter()
            .map(|symbol| self.quote(symbol))
            .collect()
    }

    pub fn quote(&self, symbol: &str) -> Result<Quote> {
        let last = self.last_trade(symbol)?;
        let filter = [("symbol".to_owned(), symbol.to_owned())];
        let since = last.ts.saturating_sub(DAY_MS);
        let (_, day) = self.engine.rollup_query(
            TICKS_STREAM,
            OHLC_ROLLUP,
            Some(DAY_STATS_WINDOW),
            Some(DAY_STATS_WINDOW.window_start(since)),
            None,
            &filter,
        )?;
        let (_, hours) = self.engine.rollup_query(
            TICKS_STREAM,
            OHLC_ROLLUP,
            Some(SPARKLINE_WINDOW),
            Some(SPARKLINE_WINDOW.window_start(since)),
            None,
            &filter,
        )?;
        let open_24h = day.first().and_then(|r| value(r, "open"));
        let extreme = |name: &str, pick: fn(f64, f64) -> f64| {
            day.iter().filter_map(|r| value(r, name)).reduce(pick)
        };
        let instrument = instruments::find(symbol);
        let tag = |name: &str| {
            instrument.map(|i| match name {
                "venue" => i.venue.to_owned(),
                _ => i.asset_class.to_owned(),
            })
        };
        let spread = last.bid.zip(last.ask).map(|(bid, ask)| ask - bid);
        Ok(Quote {
            symbol: symbol.to_owned(),
            name: instrument.map_or(symbol, |i| i.name).to_owned(),
            venue: tag("venue").or_else(|| self.last_tag(symbol, "venue")),
            asset_class: tag("asset_class").or_else(|| self.last_tag(symbol, "asset_class")),
            price: last.price,
            bid: last.bid,
            ask: last.ask,
            spread,
            spread_bps: spread.map(|s| s / last.price * 10_000.0),
            ts: format_rfc3339_ms(last.ts),
            change_24h_pct: open_24h
                .filter(|&open| open > 0.0)
                .map(|open| (last.price / open - 1.0) * 100.0),
            open_24h,
            high_24h: extreme("high", f64::max),
            low_24h: extreme("low", f64::min),
            volume_24h: day.iter().filter_map(|r| value(r, "volume")).sum(),
            trades_24h: day.iter().filter_map(|r| value(r, "trades")).sum::<f64>() as u64,
            sparkline: hours.iter().filter_map(|r| value(r, "close")).collect(),
        })
    }

    pub fn candles(&self, request: &CandlesRequest) -> Result<Candles> {
        let window = request.window;
        if !CANDLE_WINDOWS.contains(&window.to_string().as_str()) {
            return Err(Error::InvalidRequest(format!(
                "window {window} is not kept; candle windows are {}",
                CANDLE_WINDOWS.join(", ")
            )));
        }
        let limit = request.limit.unwrap_or(DEFAULT_CANDLES);
        if limit == 0 || limit > MAX_CANDLES {
            return Err(Error::InvalidRequest(format!(
                "limit must be between 1 and {MAX_CANDLES}"
            )));
        }
        if let (Some(from), Some(to)) = (request.from, request.to)
            && from > to
        {
            return Err(Error::InvalidRequest(format!(
                "from ({}) is after to ({})",
                format_rfc3339_ms(from),
                format_rfc3339_ms(to)
            )));
        }
        self.require_symbol(&request.symbol)?;
        // The indicators need candles before the first one served too; EMA_SLOW's seed
        // weighs (49/51)^500 < 1e-8 after INDICATOR_WARMUP more candles.
        let rows = self.engine.rollup_tail(
            TICKS_STREAM,
            OHLC_ROLLUP,
            window,
            request.to,
            &[("symbol".to_owned(), request.symbol.clone())],
            limit + INDICATOR_WARMUP,
        )?;
        let rows: Vec<&RollupRow> = rows
            .iter()
            .filter(|r| value(r, "close").is_some_and(|c| c > 0.0))
            .collect();
        let closes: Vec<f64> = rows.iter().filter_map(|r| value(r, "close")).collect();
        let fast = ema(&closes, EMA_FAST);
        let slow = ema(&closes, EMA_SLOW);
        let annualise = request.annualise.then_some(window.seconds());
        let volatility = rolling_volatility(&closes, VOLATILITY_PERIODS, annualise);
        let mut candles: Vec<Candle> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| request.from.is_none_or(|from| r.window_end > from))
            .map(|(i, r)| Candle {
                window_start: format_rfc3339_ms(r.window_start),
                window_end: format_rfc3339_ms(r.window_end),
                closed: r.closed,
                open: value(r, "open"),
                high: value(r, "high"),
                low: value(r, "low"),
                close: value(r, "close"),
                volume: value(r, "volume"),
                vwap: value(r, "vwap"),
                trades: value(r, "trades"),
                spread: value(r, "ask").zip(value(r, "bid")).map(|(a, b)| a - b),
                volatility: volatility[i],
                ema20: fast[i],
                ema50: slow[i],
            })
            .collect();
        let excess = candles.len().saturating_sub(limit);
        candles.drain(..excess);
        Ok(Candles {
            symbol: request.symbol.clone(),
            window: window.to_string(),
            annualised: request.annualise,
            candles,
        })
    }

    pub fn sentiment(&self, symbol: &str) -> Result<SymbolSentiment> {
        self.require_symbol(symbol)?;
        let rows = self.engine.rollup_tail(
            TICKS_STREAM,
            OHLC_ROLLUP,
            SENTIMENT_WINDOW,
            None,
            &[("symbol".to_owned(), symbol.to_owned())],
            sentiment::BASELINE,
        )?;
        let start = rows.len().saturating_sub(sentiment::BASELINE);
        let rows: Vec<&RollupRow> = rows[start..]
            .iter()
            .filter(|r| value(r, "close").is_some())
            .collect();
        let closes: Vec<f64> = rows.iter().filter_map(|r| value(r, "close")).collect();
        let volumes: Vec<f64> = rows
            .iter()
            .map(|r| value(r, "volume").unwrap_or(0.0))
            .collect();
        let reading = sentiment::sentiment(&closes, &volumes);
        Ok(SymbolSentiment {
            symbol: symbol.to_owned(),
            score: reading.score,
            label: reading.label,
            window: SENTIMENT_WINDOW.to_string(),
            components: reading.components,
            candles: reading.candles,
            ts: rows.last().map(|r| format_rfc3339_ms(r.window_end)),
        })
    }

    pub fn sentiments(&self) -> Result<Vec<SymbolSentiment>> {
        self.symbol_names()?
            .iter()
            .map(|symbol| self.sentiment(symbol))
            .collect()
    }

    /// Market alerts, newest first; each carries `symbol` besides the generic `subject`.
    pub fn alerts(
        &self,
        symbol: Option<&str>,
        kind: Option<&str>,
        limit: Option<usize>,
        cursor: Option<String>,
    ) -> Result<EventsPage> {
        let mut tags = vec![("domain".to_owned(), crate::DOMAIN.to_owned())];
        if let Some(kind) = kind {
            if ![PRICE_SPIKE, VOLUME_SURGE].contains(&kind) {
                return Err(Error::InvalidRequest(format!(
                    "kind {kind:?} is not a market alert kind; kinds: {PRICE_SPIKE}, {VOLUME_SURGE}"
                )));
            }
            tags.push(("kind".to_owned(), kind.to_owned()));
        }
        if let Some(symbol) = symbol {
            self.require_symbol(symbol)?;
            tags.push(("subject".to_owned(), symbol.to_owned()));
        }
        let mut page = tidewatch_alerts::query(
            &self.engine,
            &EventsRequest {
                limit,
                cursor,
                tags,
                ..EventsRequest::default()
            },
        )?;
        for event in &mut page.events {
            if let Some(object) = event.as_object_mut() {
                let subject = object.get("subject").cloned().unwrap_or(Value::Null);
                object.insert("symbol".into(), subject);
            }
        }
        Ok(page)
    }

    /// Fails with [`Error::UnknownSymbol`] unless `symbol` has traded.
    fn require_symbol(&self, symbol: &str) -> Result<()> {
        self.last_trade(symbol).map(|_| ())
    }

    /// The symbol's newest trade: kept live, or read from the store after a restart.
    fn last_trade(&self, symbol: &str) -> Result<LastTrade> {
        if let Some(last) = self.live.lock().last.get(symbol) {
            return Ok(*last);
        }
        let page = self.engine.events(
            TICKS_STREAM,
            &EventsRequest {
                limit: Some(1),
                tags: vec![("symbol".to_owned(), symbol.to_owned())],
                ..EventsRequest::default()
            },
        )?;
        let event = page.events.first().ok_or_else(|| Error::UnknownSymbol {
            symbol: symbol.to_owned(),
            known: instruments::find(symbol).is_some(),
        })?;
        let number = |name: &str| event.get(name).and_then(Value::as_f64);
        let (Some(ts), Some(price)) = (
            event
                .get("ts")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339_ms),
            number("price"),
        ) else {
            return Err(Error::UnknownSymbol {
                symbol: symbol.to_owned(),
                known: instruments::find(symbol).is_some(),
            });
        };
        let last = LastTrade {
            ts,
            price,
            bid: number("bid"),
            ask: number("ask"),
        };
        let mut live = self.live.lock();
        // A live trade may have arrived meanwhile; the newer one wins.
        let entry = live.last.entry(Arc::from(symbol)).or_insert(last);
        Ok(*entry)
    }

    /// A tag of the symbol's newest stored trade, for symbols outside the instrument list.
    fn last_tag(&self, symbol: &str, tag: &str) -> Option<String> {
        let page = self
            .engine
            .events(
                TICKS_STREAM,
                &EventsRequest {
                    limit: Some(1),
                    tags: vec![("symbol".to_owned(), symbol.to_owned())],
                    ..EventsRequest::default()
                },
            )
            .ok()?;
        page.events.first()?.get(tag)?.as_str().map(str::to_owned)
    }
}

fn value(row: &RollupRow, name: &str) -> Option<f64> {
    row.values
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| *v)
}

fn symbol_of(row: &RollupRow) -> Option<String> {
    row.group
        .iter()
        .find(|(tag, _)| tag == "symbol")
        .and_then(|(_, v)| v.as_deref())
        .map(str::to_owned)
}

/// The per-batch hook: column positions are resolved once per batch by name, so the
/// observer works on any schema that has them (and ignores a batch that does not).
fn observer(live: Arc<Mutex<Live>>, sink: AlertSink) -> Observer {
    Arc::new(move |schema: &StreamSchema, batch: &EventBatch| {
        let (Some(symbol), Some(price), Some(size)) = (
            schema.tag_index("symbol"),
            schema.field_index("price"),
            schema.field_index("size"),
        ) else {
            return;
        };
        let bid = schema.field_index("bid");
        let ask = schema.field_index("ask");
        let quote = |column: Option<usize>, row: usize| {
            column
                .and_then(|c| batch.fields.get(c))
                .and_then(|f| f.as_f64(row))
        };
        let mut alerts: Vec<Alert> = Vec::new();
        let mut live = live.lock();
        let Live { detectors, last } = &mut *live;
        for row in 0..batch.len() {
            let (Some(name), Some(p)) = (
                batch.tags[symbol].value(row),
                batch.fields[price].as_f64(row),
            ) else {
                continue;
            };
            let ts = batch.ts[row];
            let q = batch.fields[size].as_f64(row).unwrap_or(0.0);
            detectors.trade(name, ts, p, q, &mut alerts);
            let trade = LastTrade {
                ts,
                price: p,
                bid: quote(bid, row),
                ask: quote(ask, row),
            };
            match last.get_mut(name) {
                Some(previous) if previous.ts <= ts => *previous = trade,
                Some(_) => {}
                None => {
                    last.insert(Arc::clone(name), trade);
                }
            }
        }
        drop(live);
        for alert in alerts {
            sink.raise(alert);
        }
    })
}
