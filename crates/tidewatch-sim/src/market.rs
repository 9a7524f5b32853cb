//! Market generator: equities on NASDAQ and crypto against USDT.
//!
//! Price model per symbol, on the log price `x`: an Ornstein-Uhlenbeck step towards the
//! symbol's anchor (mean reversion, strength `MEAN_REVERSION_PER_YEAR`) plus Brownian noise
//! whose annual volatility depends on a two-state regime (calm, volatile) that switches
//! at random. Trade sizes are log-normal around a fixed notional; the quote spread widens
//! in the volatile regime. Anomalies are injected at `anomaly_rate` per tick and labelled:
//! a price spike (one trade far off the price, which then resumes) or a volume surge (the
//! next `SURGE_TICKS` trades of that symbol at `SURGE_FACTOR` times their size).

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_ingest::ids::assign_id;
use tidewatch_market::schema::{ticks_rollups, ticks_schema};
use tidewatch_types::{EventBatch, FieldColumn, TagColumn, TimestampMs};

use crate::generator::{Generator, StreamDeclaration};

pub use tidewatch_market::schema::TICKS_STREAM;

const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;
const MEAN_REVERSION_PER_YEAR: f64 = 2.0;
/// Chance per trade that a symbol's regime flips.
const REGIME_SWITCH_PROBABILITY: f64 = 0.0005;
const VOLATILE_MULTIPLIER: f64 = 2.5;
/// Typical trade value in USD.
const NOTIONAL_USD: f64 = 5_000.0;
const SURGE_TICKS: u32 = 40;
const SURGE_FACTOR: f64 = 12.0;

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
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            seed: 42,
            events_per_second: 200.0,
            anomaly_rate: 0.0005,
        }
    }
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
    surge_left: u32,
    last_ts: Option<TimestampMs>,
}

pub struct MarketGenerator {
    rng: StdRng,
    config: MarketConfig,
    symbols: Vec<Symbol>,
    /// Fractional events carried between calls, so the rate holds over short steps.
    carry: f64,
    labels: Vec<AnomalyLabel>,
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
            surge_left: 0,
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
        }
    }

    /// Every anomaly injected so far.
    pub fn labels(&self) -> &[AnomalyLabel] {
        &self.labels
    }

    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols.iter().map(|s| &*s.name)
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
            let mut size = NOTIONAL_USD * size_noise.exp() / price;
            if s.surge_left > 0 {
                s.surge_left -= 1;
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
                        s.surge_left = SURGE_TICKS;
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
            batch.ids.push(assign_id());
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
}
