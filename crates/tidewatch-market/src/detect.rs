//! Anomaly detectors, fed every trade as it is applied.
//!
//! **Price spike.** Per symbol, the log return of each trade against the last normal
//! trade, scaled down by `sqrt(gap / usual gap)` when the gap since that trade is longer
//! than usual (so a market opening after a night is not a spike). Its z-score against the
//! rolling mean and standard deviation of the last `spike_history` such returns (the
//! deviation floored at `spike_min_stddev`) above `spike_z` raises an alert. The outlying
//! trade does not become the reference and does not enter the statistics, so the trade
//! after a one-off spike is compared with the price before it and raises nothing; if
//! `LEVEL_SHIFT_TRADES` outliers in a row agree in direction, the price has moved for
//! good and becomes the new reference (one alert for the whole episode).
//!
//! **Volume surge.** Per symbol, traded volume in tumbling windows of `surge_window`
//! (event time). When the open window's volume passes `surge_factor` times the mean of
//! the last `surge_history` windows that had trades, an alert is raised at once (one per
//! window); windows that alerted are kept out of that baseline. A trade for a window
//! older than the open one only counts for its own (closed) window, so it is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidewatch_alerts::{Alert, Severity};
use tidewatch_types::time::format_rfc3339_ms;
use tidewatch_types::{TimestampMs, WindowWidth};

/// Outliers in a row, in one direction, after which the new price is accepted.
const LEVEL_SHIFT_TRADES: u32 = 3;
/// Weight of the newest gap in the running "usual gap" between trades.
const GAP_SMOOTHING: f64 = 0.05;
/// A gap counts at most this multiple of the usual gap towards the new usual gap.
const MAX_GAP_STEP: f64 = 4.0;
/// Pushes after which running sums are recomputed from the window (bounds rounding drift).
const RESUM_EVERY: u32 = 1024;

pub const PRICE_SPIKE: &str = "price_spike";
pub const VOLUME_SURGE: &str = "volume_surge";

/// Detector settings (`[market.detectors]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// |z| above which a trade's return is a spike.
    pub spike_z: f64,
    /// Returns in the rolling statistics.
    pub spike_history: usize,
    /// Returns needed before any spike is judged.
    pub spike_min_history: usize,
    /// Floor of the standard deviation (as a log return): moves below
    /// `spike_z * spike_min_stddev` are never spikes, however quiet the market was.
    pub spike_min_stddev: f64,
    /// Window volume above this multiple of the usual volume is a surge.
    pub surge_factor: f64,
    pub surge_window: WindowWidth,
    /// Past windows in the usual volume.
    pub surge_history: usize,
    /// Past windows needed before any surge is judged.
    pub surge_min_history: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            spike_z: 8.0,
            spike_history: 200,
            spike_min_history: 30,
            spike_min_stddev: 1e-4,
            surge_factor: 3.0,
            surge_window: WindowWidth::constant::<60>(),
            surge_history: 30,
            surge_min_history: 5,
        }
    }
}

/// A rolling window of values with running sums.
#[derive(Debug, Default)]
struct Rolling {
    values: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    pushes: u32,
}

impl Rolling {
    fn push(&mut self, value: f64, capacity: usize) {
        self.values.push_back(value);
        self.sum += value;
        self.sum_sq += value * value;
        while self.values.len() > capacity.max(1) {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        self.pushes += 1;
        if self.pushes >= RESUM_EVERY {
            self.pushes = 0;
            self.sum = self.values.iter().sum();
            self.sum_sq = self.values.iter().map(|v| v * v).sum();
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn mean(&self) -> f64 {
        self.sum / self.values.len().max(1) as f64
    }

    /// Sample standard deviation.
    fn stddev(&self) -> f64 {
        let n = self.values.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0))
            .max(0.0)
            .sqrt()
    }
}

#[derive(Debug, Default)]
struct SymbolState {
    // Price spike.
    reference: Option<(f64, TimestampMs)>,
    usual_gap_ms: Option<f64>,
    returns: Rolling,
    outliers_in_a_row: u32,
    outlier_direction: f64,
    // Volume surge.
    window_start: Option<TimestampMs>,
    window_volume: f64,
    window_trades: u32,
    window_alerted: bool,
    volumes: Rolling,
}

/// All symbols' detector state.
#[derive(Debug)]
pub struct Detectors {
    config: DetectorConfig,
    symbols: HashMap<Arc<str>, SymbolState>,
}

impl Detectors {
    pub fn new(config: DetectorConfig) -> Self {
        Detectors {
            config,
            symbols: HashMap::new(),
        }
    }

    /// Feeds one trade; alerts it raises are pushed to `alerts`.
    pub fn trade(
        &mut self,
        symbol: &Arc<str>,
        ts: TimestampMs,
        price: f64,
        size: f64,
        alerts: &mut Vec<Alert>,
    ) {
        if !(price.is_finite() && price > 0.0) {
            return;
        }
        let state = match self.symbols.get_mut(symbol) {
            Some(state) => state,
            None => self.symbols.entry(Arc::clone(symbol)).or_default(),
        };
        if let Some(alert) = spike(&self.config, state, symbol, ts, price) {
            alerts.push(alert);
        }
        if size.is_finite()
            && size > 0.0
            && let Some(alert) = surge(&self.config, state, symbol, ts, size)
        {
            alerts.push(alert);
        }
    }
}

fn spike(
    config: &DetectorConfig,
    state: &mut SymbolState,
    symbol: &str,
    ts: TimestampMs,
    price: f64,
) -> Option<Alert> {
    let Some((reference, reference_ts)) = state.reference else {
        state.reference = Some((price, ts));
        return None;
    };
    let gap = (ts - reference_ts).max(0) as f64;
    let log_return = (price / reference).ln();
    let scaled = match state.usual_gap_ms {
        Some(usual) if gap > usual => log_return * (usual / gap).sqrt(),
        _ => log_return,
    };
    // A pause (a night, a halt) moves the usual gap only a little.
    if gap > 0.0 {
        state.usual_gap_ms = Some(state.usual_gap_ms.map_or(gap, |usual| {
            usual + GAP_SMOOTHING * (gap.min(MAX_GAP_STEP * usual) - usual)
        }));
    }
    let mut alert = None;
    if state.returns.len() >= config.spike_min_history {
        let mean = state.returns.mean();
        let stddev = state.returns.stddev().max(config.spike_min_stddev);
        let z = (scaled - mean) / stddev;
        if z.abs() > config.spike_z {
            let direction = z.signum();
            if state.outliers_in_a_row > 0 && direction == state.outlier_direction {
                state.outliers_in_a_row += 1;
            } else {
                state.outliers_in_a_row = 1;
                state.outlier_direction = direction;
                let change_pct = (price / reference - 1.0) * 100.0;
                alert = Some(Alert {
                    ts,
                    domain: crate::DOMAIN,
                    kind: PRICE_SPIKE,
                    subject: symbol.to_owned(),
                    severity: if z.abs() >= 4.0 * config.spike_z {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    message: format!(
                        "{symbol} price spike: {change_pct:+.2} % in one trade ({reference} to {price}), z = {z:.1}"
                    ),
                    score: z.abs(),
                    evidence: json!({
                        "price": price,
                        "reference_price": reference,
                        "change_pct": change_pct,
                        "log_return": log_return,
                        "z": z,
                        "threshold": config.spike_z,
                        "mean": mean,
                        "stddev": stddev,
                        "history": state.returns.len(),
                    }),
                });
            }
            if state.outliers_in_a_row >= LEVEL_SHIFT_TRADES {
                state.outliers_in_a_row = 0;
                state.reference = Some((price, ts));
            }
            return alert;
        }
    }
    state.outliers_in_a_row = 0;
    state.returns.push(scaled, config.spike_history);
    state.reference = Some((price, ts));
    alert
}

fn surge(
    config: &DetectorConfig,
    state: &mut SymbolState,
    symbol: &str,
    ts: TimestampMs,
    size: f64,
) -> Option<Alert> {
    let window = config.surge_window;
    let start = window.window_start(ts);
    match state.window_start {
        Some(open) if start < open => return None,
        Some(open) if start > open => {
            if !state.window_alerted && state.window_trades > 0 {
                state
                    .volumes
                    .push(state.window_volume, config.surge_history);
            }
            state.window_start = Some(start);
            state.window_volume = 0.0;
            state.window_trades = 0;
            state.window_alerted = false;
        }
        Some(_) => {}
        None => state.window_start = Some(start),
    }
    state.window_volume += size;
    state.window_trades += 1;
    if state.window_alerted || state.volumes.len() < config.surge_min_history {
        return None;
    }
    let usual = state.volumes.mean();
    if usual <= 0.0 || state.window_volume <= config.surge_factor * usual {
        return None;
    }
    state.window_alerted = true;
    let ratio = state.window_volume / usual;
    Some(Alert {
        ts,
        domain: crate::DOMAIN,
        kind: VOLUME_SURGE,
        subject: symbol.to_owned(),
        severity: if ratio >= 2.0 * config.surge_factor {
            Severity::Critical
        } else {
            Severity::Warning
        },
        message: format!(
            "{symbol} volume surge: {ratio:.1}x the usual {window} volume so far in the window from {}",
            format_rfc3339_ms(start)
        ),
        score: ratio,
        evidence: json!({
            "window": window.to_string(),
            "window_start": format_rfc3339_ms(start),
            "window_volume": state.window_volume,
            "window_trades": state.window_trades,
            "usual_volume": usual,
            "ratio": ratio,
            "threshold": config.surge_factor,
            "history": state.volumes.len(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_428_000_000;

    /// Feeds `(ts, price, size)` trades of one symbol; returns the alerts.
    fn feed(detectors: &mut Detectors, trades: &[(i64, f64, f64)]) -> Vec<Alert> {
        let symbol: Arc<str> = Arc::from("AAPL");
        let mut alerts = Vec::new();
        for &(ts, price, size) in trades {
            detectors.trade(&symbol, ts, price, size, &mut alerts);
        }
        alerts
    }

    /// A quiet series: price wobbling by ±1 bp around 100, a trade every 100 ms.
    fn quiet(n: usize, start: i64) -> Vec<(i64, f64, f64)> {
        (0..n)
            .map(|i| {
                let wobble = [0.0, 1e-4, -1e-4, 0.5e-4][i % 4];
                (start + i as i64 * 100, 100.0 * (1.0 + wobble), 10.0)
            })
            .collect()
    }

    #[test]
    fn a_one_trade_spike_raises_one_alert_and_the_price_after_it_none() {
        let mut d = Detectors::new(DetectorConfig::default());
        let mut trades = quiet(100, T0);
        trades.push((T0 + 10_000, 103.5, 10.0));
        trades.extend(quiet(50, T0 + 10_100));
        let alerts = feed(&mut d, &trades);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(
            (alert.kind, alert.ts, alert.subject.as_str()),
            (PRICE_SPIKE, T0 + 10_000, "AAPL")
        );
        assert!(alert.score > 8.0);
        assert!((alert.evidence["change_pct"].as_f64().unwrap() - 3.5).abs() < 0.05);
    }

    #[test]
    fn a_lasting_jump_is_one_alert_then_the_new_level() {
        let mut d = Detectors::new(DetectorConfig::default());
        let mut trades = quiet(100, T0);
        // The price moves 3 % for good: later trades wobble around 103.
        trades.extend(
            quiet(100, T0 + 10_000)
                .into_iter()
                .map(|(t, p, s)| (t, p * 1.03, s)),
        );
        let alerts = feed(&mut d, &trades);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
    }

    #[test]
    fn a_long_pause_is_not_a_spike_but_moves_below_the_floor_never_are() {
        let mut d = Detectors::new(DetectorConfig::default());
        let mut trades = quiet(100, T0);
        // After a night, the price opens 1 % away: over 16 h that is a normal move.
        trades.extend(
            quiet(50, T0 + 16 * 3_600_000)
                .into_iter()
                .map(|(t, p, s)| (t, p * 1.01, s)),
        );
        assert!(feed(&mut d, &trades).is_empty());

        // A perfectly flat market: a 1-bp move is below the floor's reach (8 bp).
        let mut d = Detectors::new(DetectorConfig::default());
        let mut flat: Vec<_> = (0..100).map(|i| (T0 + i * 100, 100.0, 1.0)).collect();
        flat.push((T0 + 10_000, 100.01, 1.0));
        assert!(feed(&mut d, &flat).is_empty());
    }

    #[test]
    fn a_volume_surge_alerts_once_in_its_window_and_stays_out_of_the_baseline() {
        let mut d = Detectors::new(DetectorConfig::default());
        // Ten quiet minutes at 10 per trade, 600 trades a minute.
        let mut trades = quiet(6_000, T0);
        // The eleventh minute trades 5 times the size.
        trades.extend(
            quiet(600, T0 + 600_000)
                .into_iter()
                .map(|(t, p, s)| (t, p, s * 5.0)),
        );
        trades.extend(quiet(1_200, T0 + 660_000));
        let alerts = feed(&mut d, &trades);
        let surges: Vec<_> = alerts.iter().filter(|a| a.kind == VOLUME_SURGE).collect();
        assert_eq!(surges.len(), 1, "{alerts:?}");
        let surge = surges[0];
        // Raised as soon as the window passed 3x the usual 6000: on its 361st trade.
        assert_eq!(surge.ts, T0 + 600_000 + 360 * 100);
        assert_eq!(surge.evidence["usual_volume"].as_f64(), Some(6000.0));

        // The surge window is not in the baseline: the next 5x window alerts too.
        let mut again = quiet(600, T0 + 780_000);
        again.iter_mut().for_each(|t| t.2 *= 5.0);
        assert_eq!(feed(&mut d, &again).len(), 1);
    }

    #[test]
    fn nothing_is_judged_before_enough_history_and_late_trades_are_skipped() {
        let mut d = Detectors::new(DetectorConfig::default());
        let mut trades = quiet(10, T0);
        trades.push((T0 + 1_000, 150.0, 10_000.0));
        assert!(feed(&mut d, &trades).is_empty());

        let mut d = Detectors::new(DetectorConfig::default());
        let mut trades = quiet(6_000, T0);
        // A huge trade stamped in a window already closed.
        trades.push((T0, 100.0, 1e9));
        let alerts = feed(&mut d, &trades);
        assert!(alerts.iter().all(|a| a.kind != VOLUME_SURGE), "{alerts:?}");
    }
}
