//! Indicators over a series of candle closes, oldest first. Pure functions: the candle
//! series comes from the `ohlc` rollup, so late and out-of-order trades are already in
//! the closes they belong to.

/// Periods of the two exponential moving averages the charts overlay.
pub const EMA_FAST: usize = 20;
pub const EMA_SLOW: usize = 50;
/// Closes (so `VOLATILITY_PERIODS - 1` returns) in the rolling volatility.
pub const VOLATILITY_PERIODS: usize = 20;
const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

/// Exponential moving average with smoothing `2 / (period + 1)`, seeded with the simple
/// mean of the first `period` closes: `None` until `period` closes have been seen.
pub fn ema(closes: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(closes.len());
    if period == 0 {
        out.resize(closes.len(), None);
        return out;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut value: Option<f64> = None;
    for (i, &close) in closes.iter().enumerate() {
        value = match value {
            Some(previous) => Some(previous + alpha * (close - previous)),
            None if i + 1 == period => Some(closes[..period].iter().sum::<f64>() / period as f64),
            None => None,
        };
        out.push(value);
    }
    out
}

/// Log returns between consecutive closes; `returns[i]` is from close `i` to `i + 1`.
pub fn log_returns(closes: &[f64]) -> Vec<f64> {
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// Sample standard deviation; `None` with fewer than two values.
pub fn stddev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    Some((squares / (n - 1.0)).sqrt())
}

/// Per close: the sample standard deviation of the log returns over the last `periods`
/// closes ending at it (`periods - 1` returns), `None` until that many closes exist.
/// Multiplied by `sqrt(periods per year)` when `annualise_width_s` gives the candle width
/// (markets here trade around the clock, so a year has `365.25 * 86400 / width` periods).
pub fn rolling_volatility(
    closes: &[f64],
    periods: usize,
    annualise_width_s: Option<u32>,
) -> Vec<Option<f64>> {
    let returns = log_returns(closes);
    let scale = annualise_width_s.map_or(1.0, |w| (SECONDS_PER_YEAR / f64::from(w.max(1))).sqrt());
    (0..closes.len())
        .map(|i| {
            if periods < 3 || i + 1 < periods {
                return None;
            }
            // Returns ending at close i: indices i - periods + 1 .. i (exclusive end i).
            stddev(&returns[i + 1 - periods..i]).map(|s| s * scale)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_seeded_with_the_mean_then_smooths() {
        let closes = [1.0, 2.0, 3.0, 4.0, 5.0];
        let e = ema(&closes, 3);
        assert_eq!(e[0], None);
        assert_eq!(e[1], None);
        assert_eq!(e[2], Some(2.0));
        // alpha = 0.5: 2 + 0.5 * (4 - 2) = 3, then 3 + 0.5 * (5 - 3) = 4.
        assert_eq!(e[3], Some(3.0));
        assert_eq!(e[4], Some(4.0));
        assert!(ema(&closes, 10).iter().all(Option::is_none));
        assert!(ema(&closes, 0).iter().all(Option::is_none));
    }

    #[test]
    fn volatility_is_the_sample_stddev_of_the_last_returns() {
        // Returns ln(2), ln(0.5), ln(2): mean ln(2)/3.
        let closes = [1.0, 2.0, 1.0, 2.0];
        let v = rolling_volatility(&closes, 4, None);
        assert_eq!(&v[..3], &[None, None, None]);
        let l = 2f64.ln();
        let mean = l / 3.0;
        let expected = (((l - mean).powi(2) * 2.0 + (-l - mean).powi(2)) / 2.0).sqrt();
        assert!((v[3].unwrap() - expected).abs() < 1e-12);
        // A constant series has no volatility; annualising scales by sqrt(periods/year).
        let flat = rolling_volatility(&[5.0; 6], 3, Some(60));
        assert_eq!(flat[5], Some(0.0));
        let yearly = rolling_volatility(&closes, 4, Some(86_400)).pop().flatten();
        assert!((yearly.unwrap() - expected * 365.25f64.sqrt()).abs() < 1e-9);
    }
}
