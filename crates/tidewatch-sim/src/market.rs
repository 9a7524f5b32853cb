//! Market generator: equities on NASDAQ and crypto against USDT.
//!
//! Price model per symbol, on the log price `x`: an Ornstein-Uhlenbeck step towards the
//! symbol's anchor (mean reversion, strength `MEAN_REVERSION_PER_YEAR`) plus Brownian noise
//! whose annual volatility depends on a two-state regime (calm, volatile) that switches
//! at random. Trade sizes are log-normal around a fixed notional; the quote spread widens
//! in the volatile regime. Anomalies are injected at `anomaly_rate` per tick and labelled:
//! a price spike (one trade far off the price, which then resumes) or a volume surge (the
//! trades of that symbol in the next `SURGE_MS` at `SURGE_FACTOR` times their size).
//!
//! Trading hours: by default every symbol trades around the clock, so a demo shows live
//! data whenever it runs. With [`MarketConfig::market_hours`], equities trade only in the
//! regular session (see [`equity_session`]); crypto always trades. The first equity trade
//! after a close then carries the whole overnight move, like a real opening gap.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::America::New_York;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_market::schema::{ticks_rollups, ticks_schema};
use tidewatch_types::{EventBatch, FieldColumn, TagColumn, TimestampMs};

use crate::generator::{Generator, StreamDeclaration};
use crate::ids::IdSequence;

pub use tidewatch_market::schema::TICKS_STREAM;

const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;
const MEAN_REVERSION_PER_YEAR: f64 = 2.0;
/// Chance per trade that a symbol's regime flips.
const REGIME_SWITCH_PROBABILITY: f64 = 0.0005;
const VOLATILE_MULTIPLIER: f64 = 2.5;
/// Typical trade value in USD.
const NOTIONAL_USD: f64 = 5_000.0;
/// A surge lasts this long, whatever the trade rate, so detectors see it in any window
/// of up to twice its length.
const SURGE_MS: TimestampMs = 60_000;
const SURGE_FACTOR: f64 = 10.0;
/// Spread of the log trade size around its typical notional.
const SIZE_DISPERSION: f64 = 0.6;

/// Equities: (symbol, start price, annual volatility).
const EQUITIES: [(&str, f64, f64); 8] = [
    ("AAPL", 230.0, 0.25),
    ("MSFT", 420.0, 0.22),
    ("GOOGL", 170.0, 0.28),
    ("AMZN", 190.0, 0.30),
    ("NVDA", 130.0, 0.50),
    ("META", 560.0, 0.35),
    ("TSLA", 250.0, 0.60),
    ("NFLX", 700.0, 0.35),
];
/// Crypto against USDT: (symbol, start price, annual volatility).
const CRYPTO: [(&str, f64, f64); 5] = [
    ("BTCUSDT", 97_000.0, 0.55),
    ("ETHUSDT", 3_400.0, 0.70),
    ("SOLUSDT", 190.0, 0.90),
    ("BNBUSDT", 620.0, 0.60),
    ("XRPUSDT", 1.10, 0.85),
];

#[derive(Debug, Clone)]
pub struct MarketConfig {
    pub seed: u64,
    /// Trades per second across all symbols.
    pub events_per_second: f64,
    /// Chance per trade of an injected anomaly.
    pub anomaly_rate: f64,
    /// Equities trade only Mon-Fri 09:30-16:00 New York time (holidays ignored); crypto
    /// trades around the clock. Off by default so data flows whenever the demo runs.
    pub market_hours: bool,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            seed: 42,
            events_per_second: 200.0,
            anomaly_rate: 0.0005,
            market_hours: false,
        }
    }
}

/// Whether the equity market is open at a time, and until when that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub open: bool,
    /// The next open or close after the time asked about (exclusive end of this state).
    pub until: TimestampMs,
}

/// Regular session of US equities, in New York local time (so daylight saving time follows
/// the tz database).
const SESSION_OPEN: (u32, u32) = (9, 30);
const SESSION_CLOSE: (u32, u32) = (16, 0);

/// The US equity regular session (NYSE and NASDAQ: Monday to Friday, 09:30 to 16:00
/// America/New_York) at `ts`. Exchange holidays and early closes are ignored: those days
/// trade like any other weekday.
pub fn equity_session(ts: TimestampMs) -> Session {
    let Some(utc) = DateTime::from_timestamp_millis(ts) else {
        // Outside chrono's range (some 262 000 years away): no restriction.
        return Session {
            open: true,
            until: TimestampMs::MAX,
        };
    };
    let local = utc.with_timezone(&New_York);
    let (date, time) = (local.date_naive(), local.time());
    let open = hm(SESSION_OPEN);
    let close = hm(SESSION_CLOSE);
    let trading_day = |d: NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    if trading_day(date) && open <= time && time < close {
        return Session {
            open: true,
            until: new_york_ms(date, close),
        };
    }
    let mut next = if trading_day(date) && time < open {
        Some(date)
    } else {
        date.succ_opt()
    };
    while let Some(day) = next.filter(|d| !trading_day(*d)) {
        next = day.succ_opt();
    }
    Session {
        open: false,
        until: next.map_or(TimestampMs::MAX, |day| new_york_ms(day, open)),
    }
}

fn hm((hour, minute): (u32, u32)) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

/// `date` at `time` in New York, as epoch milliseconds. The session times are never in a
/// daylight-saving gap or fold (those are at 02:00), so the local time is unambiguous.
fn new_york_ms(date: NaiveDate, time: NaiveTime) -> TimestampMs {
    New_York
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map_or(TimestampMs::MAX, |dt| dt.timestamp_millis())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    PriceSpike,
    VolumeSurge,
}

/// An injected anomaly, kept so detectors can be scored against it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyLabel {
    pub ts: TimestampMs,
    pub symbol: String,
    pub kind: AnomalyKind,
}

struct Symbol {
    name: Arc<str>,
    venue: u32,
    asset_class: u32,
    anchor_log_price: f64,
    log_price: f64,
    annual_volatility: f64,
    volatile: bool,
    /// Smallest price increment.
    tick_size: f64,
    /// Half the quoted spread in basis points, calm regime.
    half_spread_bps: f64,
    /// Trades before this time are part of a volume surge.
    surge_until: TimestampMs,
    last_ts: Option<TimestampMs>,
}

pub struct MarketGenerator {
    rng: StdRng,
    config: MarketConfig,
    symbols: Vec<Symbol>,
    /// Fractional events carried between calls, so the rate holds over short steps.
    carry: f64,
    labels: Vec<AnomalyLabel>,
    /// The equity session around the latest generated time, with market hours on. Times
    /// are generated in order, so a lookup in the time-zone database happens only twice
    /// a day, not once per trade.
    session: Option<Session>,
    /// Start of the span `session` was computed for (the cache holds for `[from, until)`).
    session_from: TimestampMs,
}

const VENUES: [&str; 2] = ["NASDAQ", "BINANCE"];
const ASSET_CLASSES: [&str; 2] = ["equity", "crypto"];

impl MarketGenerator {
    pub fn new(config: MarketConfig) -> Self {
        let symbol = |(name, price, vol): (&str, f64, f64), crypto: bool| Symbol {
            name: Arc::from(name),
            venue: u32::from(crypto),
            asset_class: u32::from(crypto),
            anchor_log_price: f64::ln(price),
            log_price: f64::ln(price),
            annual_volatility: vol,
            volatile: false,
            tick_size: if price < 10.0 { 0.0001 } else { 0.01 },
            half_spread_bps: if crypto { 0.5 } else { 1.0 },
            surge_until: TimestampMs::MIN,
            last_ts: None,
        };
        let symbols = EQUITIES
            .iter()
            .map(|&s| symbol(s, false))
            .chain(CRYPTO.iter().map(|&s| symbol(s, true)))
            .collect();
        MarketGenerator {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            symbols,
            carry: 0.0,
            labels: Vec::new(),
            session: None,
            session_from: TimestampMs::MAX,
        }
    }

    /// Continues each named symbol from a stored `(symbol, price, ts)`, e.g. the newest
    /// trade in the data directory (see [`crate::runner::last_prices`]), instead of its
    /// start price: a restarted demo then carries on where the chart left off. The next
    /// trade's step covers the time since `ts`. Unknown symbols and non-positive or
    /// non-finite prices are ignored.
    pub fn resume_from(&mut self, last: impl IntoIterator<Item = (String, f64, TimestampMs)>) {
        for (name, price, ts) in last {
            if !(price.is_finite() && price > 0.0) {
                continue;
            }
            if let Some(symbol) = self.symbols.iter_mut().find(|s| *s.name == *name) {
                symbol.log_price = price.ln();
                symbol.last_ts = Some(ts);
            }
        }
    }

    /// Whether equities trade at `ts` (always, with market hours off). `ts` must not go
    /// backwards between calls by more than the cached span, which holds for sorted times.
    fn equities_trade_at(&mut self, ts: TimestampMs) -> bool {
        if !self.config.market_hours {
            return true;
        }
        match self.session {
            Some(session) if self.session_from <= ts && ts < session.until => session.open,
            _ => {
                let session = equity_session(ts);
                self.session = Some(session);
                self.session_from = ts;
                session.open
            }
        }
    }

    /// Every anomaly injected so far.
    pub fn labels(&self) -> &[AnomalyLabel] {
        &self.labels
    }

    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols.iter().map(|s| &*s.name)
    }

    /// Every simulated symbol, equities first, without building a generator.
    pub fn symbol_names() -> Vec<&'static str> {
        EQUITIES
            .iter()
            .chain(&CRYPTO)
            .map(|&(name, ..)| name)
            .collect()
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn round_to(value: f64, step: f64) -> f64 {
        (value / step).round() * step
    }
}

impl Generator for MarketGenerator {
    fn anomalies_injected(&self) -> u64 {
        self.labels.len() as u64
    }

    fn streams(&self) -> Vec<StreamDeclaration> {
        vec![StreamDeclaration {
            schema: ticks_schema(),
            rollups: ticks_rollups(),
        }]
    }

    fn generate(&mut self, from: TimestampMs, to: TimestampMs) -> Vec<(String, EventBatch)> {
        let span_ms = (to - from).max(0);
        self.carry += self.config.events_per_second * span_ms as f64 / 1000.0;
        let count = self.carry.floor() as usize;
        self.carry -= count as f64;
        let mut times: Vec<TimestampMs> = (0..count)
            .map(|_| self.rng.random_range(from..to.max(from + 1)))
            .collect();
        times.sort_unstable();

        let mut ids = IdSequence::starting_now();
        let mut batch = EventBatch {
            ids: Vec::with_capacity(count),
            ts: Vec::with_capacity(count),
            tags: vec![
                TagColumn {
                    keys: Vec::with_capacity(count),
                    dict: self.symbols.iter().map(|s| Arc::clone(&s.name)).collect(),
                },
                TagColumn {
                    keys: Vec::with_capacity(count),
                    dict: VENUES.iter().map(|&v| Arc::from(v)).collect(),
                },
                TagColumn {
                    keys: Vec::with_capacity(count),
                    dict: ASSET_CLASSES.iter().map(|&c| Arc::from(c)).collect(),
                },
            ],
            fields: vec![FieldColumn::F64(Vec::with_capacity(count)); 4],
        };
        let mut columns: [Vec<Option<f64>>; 4] = Default::default();
        for ts in times {
            let index = self.rng.random_range(0..self.symbols.len());
            let z = self.normal();
            let size_noise = self.normal();
            let regime_flip = self.rng.random_bool(REGIME_SWITCH_PROBABILITY);
            let anomaly = self
                .rng
                .random_bool(self.config.anomaly_rate.clamp(0.0, 1.0));
            let spike_up = self.rng.random_bool(0.5);
            let spike_kind = self.rng.random_bool(0.5);
            // A closed market: this equity trade does not happen. Its draws were made all
            // the same, so market hours change the equities' events and nothing else.
            if self.symbols[index].asset_class == 0 && !self.equities_trade_at(ts) {
                continue;
            }
            let s = &mut self.symbols[index];

            let dt_years = s.last_ts.map_or(0.0, |last| {
                (ts - last).max(0) as f64 / 1000.0 / SECONDS_PER_YEAR
            });
            s.last_ts = Some(ts);
            if regime_flip {
                s.volatile = !s.volatile;
            }
            let sigma = s.annual_volatility * if s.volatile { VOLATILE_MULTIPLIER } else { 1.0 };
            s.log_price += MEAN_REVERSION_PER_YEAR * (s.anchor_log_price - s.log_price) * dt_years
                + sigma * dt_years.sqrt() * z;
            let mut price = s.log_price.exp();
            let mut size = NOTIONAL_USD * (SIZE_DISPERSION * size_noise).exp() / price;
            if ts < s.surge_until {
                size *= SURGE_FACTOR;
            }
            if anomaly {
                let kind = if spike_kind {
                    AnomalyKind::PriceSpike
                } else {
                    AnomalyKind::VolumeSurge
                };
                match kind {
                    // One trade 3-4 % off; the price process itself is untouched.
                    AnomalyKind::PriceSpike => price *= if spike_up { 1.035 } else { 1.0 / 1.035 },
                    AnomalyKind::VolumeSurge => {
                        s.surge_until = ts + SURGE_MS;
                        size *= SURGE_FACTOR;
                    }
                }
                self.labels.push(AnomalyLabel {
                    ts,
                    symbol: s.name.to_string(),
                    kind,
                });
            }
            let half_spread =
                price * s.half_spread_bps / 10_000.0 * if s.volatile { 3.0 } else { 1.0 };
            let price = Self::round_to(price, s.tick_size).max(s.tick_size);
            let size = if s.asset_class == 0 {
                size.round().max(1.0)
            } else {
                Self::round_to(size, 0.0001).max(0.0001)
            };
            batch.ids.push(ids.next_id());
            batch.ts.push(ts);
            batch.tags[0].keys.push(index as u32);
            batch.tags[1].keys.push(s.venue);
            batch.tags[2].keys.push(s.asset_class);
            columns[0].push(Some(price));
            columns[1].push(Some(size));
            columns[2].push(Some(
                Self::round_to(price - half_spread, s.tick_size).min(price),
            ));
            columns[3].push(Some(
                Self::round_to(price + half_spread, s.tick_size).max(price),
            ));
        }
        batch.fields = columns.into_iter().map(FieldColumn::F64).collect();
        vec![(TICKS_STREAM.to_owned(), batch)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_428_000_000;

    fn run(seed: u64, steps: i64) -> (Vec<EventBatch>, Vec<AnomalyLabel>) {
        let mut g = MarketGenerator::new(MarketConfig {
            seed,
            events_per_second: 1000.0,
            anomaly_rate: 0.01,
            ..MarketConfig::default()
        });
        let batches = (0..steps)
            .flat_map(|i| g.generate(T0 + i * 100, T0 + (i + 1) * 100))
            .map(|(_, b)| b)
            .collect();
        (batches, g.labels().to_vec())
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
        // Ids are assigned at ingest time, not part of the generated content.
        let without_ids = |(batches, labels): (Vec<EventBatch>, Vec<AnomalyLabel>)| {
            let batches: Vec<EventBatch> = batches
                .into_iter()
                .map(|b| EventBatch {
                    ids: Vec::new(),
                    ..b
                })
                .collect();
            (batches, labels)
        };
        let (a, la) = without_ids(run(7, 50));
        let (b, lb) = without_ids(run(7, 50));
        let (c, _) = without_ids(run(8, 50));
        assert_eq!(a, b);
        assert_eq!(la, lb);
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_well_formed_in_range_and_at_the_configured_rate() {
        let (batches, labels) = run(1, 100); // 10 s at 1000/s
        let rows: usize = batches.iter().map(EventBatch::len).sum();
        assert_eq!(rows, 10_000, "fractional events carry over between steps");
        for (step, batch) in batches.iter().enumerate() {
            assert!(batch.is_consistent_with(&ticks_schema()));
            let lo = T0 + step as i64 * 100;
            assert!(batch.ts.iter().all(|&ts| (lo..lo + 100).contains(&ts)));
            assert!(batch.ts.windows(2).all(|w| w[0] <= w[1]));
            let (
                FieldColumn::F64(price),
                FieldColumn::F64(size),
                FieldColumn::F64(bid),
                FieldColumn::F64(ask),
            ) = (
                &batch.fields[0],
                &batch.fields[1],
                &batch.fields[2],
                &batch.fields[3],
            )
            else {
                panic!("f64 columns")
            };
            for r in 0..batch.len() {
                let (p, q, b, a) = (
                    price[r].unwrap(),
                    size[r].unwrap(),
                    bid[r].unwrap(),
                    ask[r].unwrap(),
                );
                assert!(p > 0.0 && q > 0.0 && b <= p && p <= a, "{p} {q} {b} {a}");
            }
        }
        // 1 % of 10 000 trades, with generous bounds for chance.
        assert!(
            (50..200).contains(&labels.len()),
            "{} anomalies",
            labels.len()
        );
        assert!(labels.iter().any(|l| l.kind == AnomalyKind::PriceSpike));
        assert!(labels.iter().any(|l| l.kind == AnomalyKind::VolumeSurge));
    }

    /// Epoch milliseconds of a UTC date and time.
    fn utc(date: &str, hour: u32, minute: u32) -> TimestampMs {
        let date: NaiveDate = date.parse().unwrap();
        date.and_hms_opt(hour, minute, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn the_equity_session_follows_new_york_time_in_winter_and_summer() {
        // Thursday 15 January 2026, EST (UTC-5): 09:30-16:00 is 14:30-21:00 UTC.
        let (open, close) = (utc("2026-01-15", 14, 30), utc("2026-01-15", 21, 0));
        assert_eq!(
            equity_session(open - 1),
            Session {
                open: false,
                until: open
            }
        );
        assert_eq!(
            equity_session(open),
            Session {
                open: true,
                until: close
            }
        );
        assert_eq!(
            equity_session(close - 1),
            Session {
                open: true,
                until: close
            }
        );
        let next_open = utc("2026-01-16", 14, 30);
        assert_eq!(
            equity_session(close),
            Session {
                open: false,
                until: next_open
            }
        );
        // Wednesday 15 July 2026, EDT (UTC-4): 09:30-16:00 is 13:30-20:00 UTC.
        let (open, close) = (utc("2026-07-15", 13, 30), utc("2026-07-15", 20, 0));
        assert!(!equity_session(open - 1).open);
        assert_eq!(
            equity_session(open),
            Session {
                open: true,
                until: close
            }
        );
        assert!(equity_session(close - 1).open);
        assert!(!equity_session(close).open);
        // 14:30-15:00 UTC is in the session in summer; 20:30 UTC is only in winter's.
        assert!(equity_session(utc("2026-07-15", 13, 45)).open);
        assert!(!equity_session(utc("2026-01-15", 13, 45)).open);
        assert!(equity_session(utc("2026-01-15", 20, 30)).open);
        assert!(!equity_session(utc("2026-07-15", 20, 30)).open);
    }

    #[test]
    fn the_equity_market_is_closed_over_the_weekend_and_reopens_on_monday() {
        // Friday 6 March 2026 closes at 16:00 EST; Monday 9 March opens at 09:30 EDT, the
        // day after the clocks moved forward.
        let friday_close = utc("2026-03-06", 21, 0);
        let monday_open = utc("2026-03-09", 13, 30);
        for ts in [
            friday_close,
            utc("2026-03-07", 15, 0), // Saturday 10:00 in New York
            utc("2026-03-08", 18, 0), // Sunday
            monday_open - 1,
        ] {
            assert_eq!(
                equity_session(ts),
                Session {
                    open: false,
                    until: monday_open
                },
                "at {ts}"
            );
        }
        assert!(equity_session(monday_open).open);
        // Back to EST: Friday 30 October is EDT, Monday 2 November EST.
        assert_eq!(
            equity_session(utc("2026-10-31", 12, 0)),
            Session {
                open: false,
                until: utc("2026-11-02", 14, 30)
            }
        );
    }

    /// A week of ticks from Friday 6 March 2026 00:00 UTC, in 10-minute steps.
    fn week(market_hours: bool) -> Vec<EventBatch> {
        let mut g = MarketGenerator::new(MarketConfig {
            seed: 3,
            events_per_second: 0.2,
            market_hours,
            ..MarketConfig::default()
        });
        let start = utc("2026-03-06", 0, 0);
        let step = 600_000;
        (0..7 * 24 * 6)
            .flat_map(|i| g.generate(start + i * step, start + (i + 1) * step))
            .map(|(_, b)| b)
            .collect()
    }

    /// `(ts, symbol, price, size)` of every row whose asset class is `class`.
    fn rows_of(batches: &[EventBatch], class: &str) -> Vec<(TimestampMs, String, f64, f64)> {
        let mut rows = Vec::new();
        for b in batches {
            let (FieldColumn::F64(price), FieldColumn::F64(size)) = (&b.fields[0], &b.fields[1])
            else {
                panic!("f64 columns")
            };
            for r in 0..b.len() {
                if b.tags[2].value(r).map(|c| &**c) == Some(class) {
                    let symbol = b.tags[0].value(r).unwrap().to_string();
                    rows.push((b.ts[r], symbol, price[r].unwrap(), size[r].unwrap()));
                }
            }
        }
        rows
    }

    #[test]
    fn with_market_hours_equities_trade_only_in_session_and_crypto_is_unchanged() {
        let (around_the_clock, in_hours) = (week(false), week(true));
        let equities = rows_of(&in_hours, "equity");
        assert!(!equities.is_empty());
        for (ts, symbol, ..) in &equities {
            assert!(
                equity_session(*ts).open,
                "{symbol} traded at {ts}, market closed"
            );
        }
        // Five sessions of 6.5 h in the week: every one of them has trades.
        let sessions: std::collections::BTreeSet<TimestampMs> = equities
            .iter()
            .map(|(ts, ..)| equity_session(*ts).until)
            .collect();
        assert_eq!(sessions.len(), 5, "{sessions:?}");
        let all_day = rows_of(&around_the_clock, "equity");
        assert!(all_day.iter().any(|(ts, ..)| !equity_session(*ts).open));
        assert!(equities.len() < all_day.len() / 3);
        assert_eq!(
            rows_of(&in_hours, "crypto"),
            rows_of(&around_the_clock, "crypto"),
            "crypto trades around the clock, unaffected by the equity session"
        );
    }

    #[test]
    fn a_resumed_generator_continues_from_the_stored_prices() {
        let mut g = MarketGenerator::new(MarketConfig {
            seed: 5,
            events_per_second: 1000.0,
            anomaly_rate: 0.0,
            ..MarketConfig::default()
        });
        g.resume_from([
            ("AAPL".to_owned(), 1000.0, T0 - 100),
            ("BTCUSDT".to_owned(), 50_000.0, T0 - 100),
            ("NOT-A-SYMBOL".to_owned(), 1.0, T0 - 100),
            ("MSFT".to_owned(), f64::NAN, T0 - 100),
        ]);
        let batches: Vec<EventBatch> = g
            .generate(T0, T0 + 1000)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let rows = [rows_of(&batches, "equity"), rows_of(&batches, "crypto")].concat();
        let prices = |name: &str| -> Vec<f64> {
            rows.iter()
                .filter(|(_, s, ..)| s == name)
                .map(|(_, _, p, _)| *p)
                .collect()
        };
        let near = |prices: Vec<f64>, target: f64| {
            assert!(!prices.is_empty());
            for p in prices {
                assert!((p / target - 1.0).abs() < 0.01, "{p} is not near {target}");
            }
        };
        near(prices("AAPL"), 1000.0);
        near(prices("BTCUSDT"), 50_000.0);
        // Not resumed: their start prices.
        near(prices("MSFT"), 420.0);
        near(prices("ETHUSDT"), 3_400.0);
    }
}
