//! A sentiment score in [-1, 1] from momentum, volume trend and volatility.
//!
//! Over the last `LOOKBACK` candles (5-minute candles by default, so one hour):
//!
//! - momentum `m = tanh(t / 2)` where `t = ln(close_last / close_first) / (s * sqrt(n))`,
//!   the move over the lookback in units of its own noise (`s` is the sample stddev of
//!   the `n` per-candle log returns); a flat series has `m = 0`;
//! - volume trend `v = tanh(ln(mean volume of the last RECENT candles / mean volume of
//!   the lookback))`: positive when trading picks up; it confirms the direction of the
//!   move, so it enters as `v * sign(m)`;
//! - volatility damping `d = 1 / (1 + max(0, q - 1))` where `q` is the stddev of returns
//!   over the lookback divided by that over the whole `BASELINE` history: a market
//!   more turbulent than usual makes any reading less sure.
//!
//! `score = d * (0.7 * m + 0.3 * v * sign(m))`, clamped to [-1, 1]; the label is
//! `bearish` at or below -0.25, `bullish` at or above 0.25, `neutral` between.

use serde::Serialize;

use crate::indicators::{log_returns, stddev};

pub const LOOKBACK: usize = 12;
pub const RECENT: usize = 3;
pub const BASELINE: usize = 48;
const MOMENTUM_WEIGHT: f64 = 0.7;
const VOLUME_WEIGHT: f64 = 0.3;
pub const LABEL_THRESHOLD: f64 = 0.25;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Components {
    pub momentum: f64,
    pub volume_trend: f64,
    /// The damping factor `d`: 1 when volatility is at or below its baseline.
    pub volatility: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    pub score: f64,
    pub label: &'static str,
    pub components: Components,
    /// Candles the score was computed from.
    pub candles: usize,
}

pub fn label(score: f64) -> &'static str {
    if score <= -LABEL_THRESHOLD {
        "bearish"
    } else if score >= LABEL_THRESHOLD {
        "bullish"
    } else {
        "neutral"
    }
}

/// The sentiment of a candle series, oldest first (at most the last [`BASELINE`] are
/// used). With fewer than `LOOKBACK + 1` candles there is no reading: neutral, zero.
pub fn sentiment(closes: &[f64], volumes: &[f64]) -> Sentiment {
    let n = closes.len().min(volumes.len());
    let (closes, volumes) = (
        &closes[n - n.min(BASELINE)..n],
        &volumes[n - n.min(BASELINE)..n],
    );
    if closes.len() <= LOOKBACK || closes.iter().any(|&c| c <= 0.0 || !c.is_finite()) {
        return Sentiment {
            score: 0.0,
            label: "neutral",
            components: Components {
                momentum: 0.0,
                volume_trend: 0.0,
                volatility: 1.0,
            },
            candles: closes.len(),
        };
    }
    let recent_closes = &closes[closes.len() - LOOKBACK - 1..];
    let returns = log_returns(recent_closes);
    let noise = stddev(&returns).unwrap_or(0.0);
    let moved = returns.iter().sum::<f64>();
    let momentum = if noise > 0.0 {
        (moved / (noise * (returns.len() as f64).sqrt()) / 2.0).tanh()
    } else {
        0.0
    };

    let lookback_volumes = &volumes[volumes.len() - LOOKBACK..];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (recent, usual) = (
        mean(&lookback_volumes[LOOKBACK - RECENT..]),
        mean(lookback_volumes),
    );
    let volume_trend = if recent > 0.0 && usual > 0.0 {
        (recent / usual).ln().tanh()
    } else {
        0.0
    };

    let baseline_noise = stddev(&log_returns(closes)).unwrap_or(0.0);
    let volatility = if baseline_noise > 0.0 {
        1.0 / (1.0 + (noise / baseline_noise - 1.0).max(0.0))
    } else {
        1.0
    };

    let direction = if momentum > 0.0 {
        1.0
    } else if momentum < 0.0 {
        -1.0
    } else {
        0.0
    };
    let score = (volatility
        * (MOMENTUM_WEIGHT * momentum + VOLUME_WEIGHT * volume_trend * direction))
        .clamp(-1.0, 1.0);
    Sentiment {
        score,
        label: label(score),
        components: Components {
            momentum,
            volume_trend,
            volatility,
        },
        candles: closes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(step: f64, wobble: f64, candles: usize) -> Vec<f64> {
        (0..candles)
            .map(|i| {
                100.0
                    * (step * i as f64).exp()
                    * (1.0 + wobble * if i % 2 == 0 { 1.0 } else { -1.0 })
            })
            .collect()
    }

    #[test]
    fn a_steady_rise_on_rising_volume_is_bullish_and_its_mirror_bearish() {
        let volumes: Vec<f64> = (0..30).map(|i| 100.0 + 10.0 * i as f64).collect();
        let up = sentiment(&trend(0.01, 0.001, 30), &volumes);
        assert_eq!(up.label, "bullish", "{up:?}");
        assert!(up.components.momentum > 0.9 && up.components.volume_trend > 0.0);
        let down = sentiment(&trend(-0.01, 0.001, 30), &volumes);
        assert_eq!(down.label, "bearish", "{down:?}");
        // Rising volume confirms the fall: the score is more negative than momentum alone.
        assert!(down.score < 0.7 * down.components.momentum * down.components.volatility);
        assert!((-1.0..=1.0).contains(&up.score) && (-1.0..=1.0).contains(&down.score));
    }

    #[test]
    fn noise_without_drift_is_neutral_and_short_series_have_no_reading() {
        let volumes = vec![100.0; 30];
        let flat = sentiment(&trend(0.0, 0.002, 30), &volumes);
        assert_eq!(flat.label, "neutral", "{flat:?}");
        let short = sentiment(&trend(0.01, 0.0, 5), &volumes[..5]);
        assert_eq!(
            (short.score, short.label, short.candles),
            (0.0, "neutral", 5)
        );
    }

    #[test]
    fn turbulence_above_the_baseline_damps_the_score() {
        let volumes = vec![100.0; 48];
        let mut closes = trend(0.0005, 0.0005, 36);
        // The last hour: the same drift with ten times the noise.
        let last = *closes.last().unwrap();
        closes.extend((1..=12).map(|i| {
            last * (0.0005 * i as f64).exp() * (1.0 + 0.005 * if i % 2 == 0 { 1.0 } else { -1.0 })
        }));
        let s = sentiment(&closes, &volumes);
        assert!(s.components.volatility < 0.5, "{s:?}");
    }
}
