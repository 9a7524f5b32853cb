//! Daily demand forecast per product: additive Holt-Winters with a weekly season and a
//! damped trend, 95 % prediction intervals, and a backtest against the seasonal-naive
//! baseline.
//!
//! **Model** (the hybrid: an exponentially weighted moving average for the level, a trend,
//! and weekly seasonality). In error-correction form, for day `t` with season `m = 7`:
//!
//! ```text
//! forecast  f_t = l + phi * b + s[t mod 7]
//! error     e_t = y_t - f_t
//! level     l  <- l + phi * b + alpha * e_t
//! trend     b  <- phi * b + beta * e_t
//! season    s[t mod 7] <- s[t mod 7] + gamma * e_t
//! h days ahead of the last day n-1:  l + (phi + phi^2 + ... + phi^h) * b + s[(n-1+h) mod 7]
//! ```
//!
//! This is ETS(A,Ad,A) of Hyndman et al., *Forecasting with Exponential Smoothing* (2008);
//! with `beta = alpha * beta*` and `gamma = (1 - alpha) * gamma*` it is the classical
//! Holt-Winters recursion. The damping `phi < 1` keeps a trend from running away over a
//! long horizon.
//!
//! **Start.** The first two weeks set the state: `l` the first week's mean, `b` the
//! difference of the two weekly means over 7, `s[i]` the mean deviation of weekday `i`
//! from the trend line through its week's mean (a week's mean sits at its fourth day),
//! centred to sum 0; `l` is then moved back to the day before the first (`- 4 b`).
//!
//! **Fit.** `(alpha, beta, gamma, phi)` minimise the sum of squared one-day-ahead errors
//! over a small grid ([`ALPHAS`] x [`BETAS`] x [`GAMMAS`] x [`PHIS`], keeping
//! `beta <= alpha` and `gamma <= 1 - alpha`); errors of the first two weeks, which set the
//! start, are not counted once three weeks exist.
//!
//! **Intervals.** `sigma` is the root mean square of those one-day-ahead errors; `h` days
//! ahead the variance is `sigma^2 * (1 + sum_{j=1}^{h-1} c_j^2)` with
//! `c_j = alpha + beta * (phi + ... + phi^j) + gamma * [j mod 7 = 0]` (the same book,
//! class 1 models), and the 95 % interval is `mean -/+ 1.96 * sqrt(variance)`. Demand is
//! not negative: the mean and the lower bound are clamped at 0.
//!
//! **Backtest.** Rolling origin: [`BACKTEST_FOLDS`] folds, the `k`-th cutting the history
//! `7 k` days before its end, fitting on what precedes the cut and forecasting the 7 days
//! after it. The seasonal-naive baseline forecasts each of those days with the same
//! weekday of the last week before the cut. MAPE (percent) is the mean of `|actual -
//! forecast| / actual` over the days whose actual demand is above 0 (zero days have no
//! percentage error), times 100. Folds need two weeks before the cut.
//!
//! **Short histories.** Under two weeks there is no season to learn: the forecast is the
//! mean of the last 7 days (or fewer), flat, with `sigma` their sample standard deviation
//! (`moving_average`). With no history at all every point is 0 (`none`). Negative or
//! non-finite inputs count as 0.

use serde::Serialize;

/// Days in a season.
pub const SEASON: usize = 7;
pub const ALPHAS: [f64; 6] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5];
pub const BETAS: [f64; 4] = [0.0, 0.005, 0.02, 0.05];
pub const GAMMAS: [f64; 4] = [0.02, 0.05, 0.1, 0.2];
pub const PHIS: [f64; 3] = [0.9, 0.98, 1.0];
pub const BACKTEST_FOLDS: usize = 4;
/// Longest horizon forecast, in days; longer requests are cut to it.
pub const MAX_HORIZON: usize = 366;
/// Two-sided 95 % normal quantile.
const Z_95: f64 = 1.959_963_984_540_054;

pub const METHOD_HOLT_WINTERS: &str = "holt_winters";
pub const METHOD_MOVING_AVERAGE: &str = "moving_average";
pub const METHOD_NONE: &str = "none";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// `holt_winters`, `moving_average` (under two weeks of history) or `none`.
    pub method: &'static str,
    pub points: Vec<ForecastPoint>,
    /// Rolling-origin backtest error of this method, percent; `None` under three weeks of
    /// history or when every backtested day had zero demand.
    pub backtest_mape: Option<f64>,
    /// The same for the seasonal-naive baseline.
    pub baseline_mape: Option<f64>,
    pub history_days: usize,
    /// Standard deviation of the one-day-ahead forecast errors over the history: the
    /// daily demand variability a safety stock should cover.
    pub daily_stddev: f64,
}

/// One forecast day with its 95 % prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// Days after the last day of history, from 1.
    pub day: usize,
    pub mean: f64,
    /// At least 0.
    pub lower: f64,
    pub upper: f64,
}

/// Forecasts `horizon` days of demand (at most [`MAX_HORIZON`]) from `daily_demand`
/// (oldest first, one value per day, the last being the most recent complete day).
/// Method and formulas in the module doc.
pub fn forecast(daily_demand: &[f64], horizon: usize) -> Forecast {
    let horizon = horizon.min(MAX_HORIZON);
    let history: Vec<f64> = daily_demand
        .iter()
        .map(|&y| if y.is_finite() { y.max(0.0) } else { 0.0 })
        .collect();
    let (method, means, stddevs, daily_stddev) = match fit(&history) {
        Fitted::HoltWinters(model) => {
            let means = model.predict(horizon);
            let stddevs = (1..=horizon).map(|h| model.stddev_at(h)).collect();
            (METHOD_HOLT_WINTERS, means, stddevs, model.sigma)
        }
        Fitted::MovingAverage { mean, stddev } => (
            METHOD_MOVING_AVERAGE,
            vec![mean; horizon],
            vec![stddev; horizon],
            stddev,
        ),
        Fitted::Nothing => (METHOD_NONE, vec![0.0; horizon], vec![0.0; horizon], 0.0),
    };
    let points = means
        .into_iter()
        .zip(stddevs)
        .enumerate()
        .map(|(index, (mean, stddev))| {
            let mean = mean.max(0.0);
            ForecastPoint {
                day: index + 1,
                mean,
                lower: (mean - Z_95 * stddev).max(0.0),
                upper: mean + Z_95 * stddev,
            }
        })
        .collect();
    let (backtest_mape, baseline_mape) = backtest(&history);
    Forecast {
        method,
        points,
        backtest_mape,
        baseline_mape,
        history_days: history.len(),
        daily_stddev,
    }
}

enum Fitted {
    HoltWinters(HoltWinters),
    MovingAverage { mean: f64, stddev: f64 },
    Nothing,
}

fn fit(history: &[f64]) -> Fitted {
    if history.len() >= 2 * SEASON {
        return Fitted::HoltWinters(HoltWinters::fit(history));
    }
    if history.is_empty() {
        return Fitted::Nothing;
    }
    let recent = &history[history.len().saturating_sub(SEASON)..];
    let mean = recent.iter().sum::<f64>() / recent.len() as f64;
    let stddev = if recent.len() > 1 {
        (recent.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (recent.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Fitted::MovingAverage { mean, stddev }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

/// A fitted model: its parameters and its state after the last day of history.
#[derive(Debug, Clone)]
struct HoltWinters {
    params: Params,
    level: f64,
    trend: f64,
    season: [f64; SEASON],
    /// Days of history (the next day's season slot is `days mod 7`).
    days: usize,
    /// Root mean square one-day-ahead error.
    sigma: f64,
}

impl HoltWinters {
    /// Fits on `history` (at least two seasons) by grid search.
    fn fit(history: &[f64]) -> HoltWinters {
        debug_assert!(history.len() >= 2 * SEASON);
        let mut best: Option<(f64, HoltWinters)> = None;
        for alpha in ALPHAS {
            for beta in BETAS.into_iter().filter(|&beta| beta <= alpha) {
                for gamma in GAMMAS.into_iter().filter(|&gamma| gamma <= 1.0 - alpha) {
                    for phi in PHIS {
                        let params = Params {
                            alpha,
                            beta,
                            gamma,
                            phi,
                        };
                        let (model, sse) = Self::run(history, params);
                        if best.as_ref().is_none_or(|(best_sse, _)| sse < *best_sse) {
                            best = Some((sse, model));
                        }
                    }
                }
            }
        }
        match best {
            Some((_, model)) => model,
            // Unreachable with non-empty grids; a plain run keeps this total.
            None => {
                let params = Params {
                    alpha: ALPHAS[0],
                    beta: BETAS[0],
                    gamma: GAMMAS[0],
                    phi: PHIS[0],
                };
                Self::run(history, params).0
            }
        }
    }

    /// Runs the recursion over `history` from the two-week start; returns the final state
    /// and the sum of squared one-day-ahead errors counted for the fit.
    fn run(history: &[f64], params: Params) -> (HoltWinters, f64) {
        let week_mean = |week: usize| {
            history[week * SEASON..(week + 1) * SEASON]
                .iter()
                .sum::<f64>()
                / SEASON as f64
        };
        let (first, second) = (week_mean(0), week_mean(1));
        let trend = (second - first) / SEASON as f64;
        let mut season = [0.0; SEASON];
        // A week's mean sits at its fourth day (index 3); deviations are taken from the
        // trend line through it, so a trend does not leak into the season.
        for (day, slot) in season.iter_mut().enumerate() {
            let along_trend = trend * (day as f64 - 3.0);
            *slot = ((history[day] - first - along_trend)
                + (history[day + SEASON] - second - along_trend))
                / 2.0;
        }
        let season_mean = season.iter().sum::<f64>() / SEASON as f64;
        season.iter_mut().for_each(|s| *s -= season_mean);
        let mut model = HoltWinters {
            params,
            level: first - 4.0 * trend,
            trend,
            season,
            days: 0,
            sigma: 0.0,
        };
        // Errors of the start weeks are fitted by construction; skip them when there is
        // more to judge by.
        let counted_from = if history.len() >= 3 * SEASON {
            2 * SEASON
        } else {
            0
        };
        let (mut sse, mut counted) = (0.0, 0usize);
        for (t, &y) in history.iter().enumerate() {
            let error = model.step(y);
            if t >= counted_from {
                sse += error * error;
                counted += 1;
            }
        }
        model.sigma = (sse / counted.max(1) as f64).sqrt();
        (model, sse)
    }

    /// Learns one day; returns its one-day-ahead error.
    fn step(&mut self, y: f64) -> f64 {
        let Params {
            alpha,
            beta,
            gamma,
            phi,
        } = self.params;
        let slot = self.days % SEASON;
        let error = y - (self.level + phi * self.trend + self.season[slot]);
        self.level += phi * self.trend + alpha * error;
        self.trend = phi * self.trend + beta * error;
        self.season[slot] += gamma * error;
        self.days += 1;
        error
    }

    /// Means for days 1..=horizon after the history.
    fn predict(&self, horizon: usize) -> Vec<f64> {
        let phi = self.params.phi;
        let mut damped_sum = 0.0;
        let mut phi_power = 1.0;
        (1..=horizon)
            .map(|h| {
                phi_power *= phi;
                damped_sum += phi_power;
                self.level + damped_sum * self.trend + self.season[(self.days + h - 1) % SEASON]
            })
            .collect()
    }

    /// Standard deviation of the error `h` days ahead.
    fn stddev_at(&self, h: usize) -> f64 {
        let Params {
            alpha,
            beta,
            gamma,
            phi,
        } = self.params;
        let mut variance_factor = 1.0;
        let mut damped_sum = 0.0;
        let mut phi_power = 1.0;
        for j in 1..h {
            phi_power *= phi;
            damped_sum += phi_power;
            let seasonal = if j % SEASON == 0 { gamma } else { 0.0 };
            let c = alpha + beta * damped_sum + seasonal;
            variance_factor += c * c;
        }
        self.sigma * variance_factor.sqrt()
    }
}

/// `(method MAPE, seasonal-naive MAPE)` over the rolling-origin folds (module doc).
fn backtest(history: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut model_errors = Vec::new();
    let mut baseline_errors = Vec::new();
    for fold in (1..=BACKTEST_FOLDS).rev() {
        let Some(cut) = history.len().checked_sub(fold * SEASON) else {
            continue;
        };
        if cut < 2 * SEASON {
            continue;
        }
        let (train, test) = (&history[..cut], &history[cut..cut + SEASON]);
        let model = HoltWinters::fit(train);
        let predicted = model.predict(SEASON);
        let last_week = &train[cut - SEASON..];
        for (day, &actual) in test.iter().enumerate() {
            if actual > 0.0 {
                model_errors.push((actual - predicted[day].max(0.0)).abs() / actual);
                baseline_errors.push((actual - last_week[day]).abs() / actual);
            }
        }
    }
    let mape = |errors: &[f64]| {
        (!errors.is_empty()).then(|| 100.0 * errors.iter().sum::<f64>() / errors.len() as f64)
    };
    (mape(&model_errors), mape(&baseline_errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: [f64; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn a_perfect_weekly_pattern_with_trend_is_continued_exactly() {
        // y_t = 20 + 0.5 t + weekly pattern: the start is exact, every error 0.
        let history: Vec<f64> = (0..42)
            .map(|t| 20.0 + 0.5 * t as f64 + WEEKLY[t % 7])
            .collect();
        let result = forecast(&history, 10);
        assert_eq!(result.method, METHOD_HOLT_WINTERS);
        assert_eq!(result.history_days, 42);
        assert_eq!(result.points.len(), 10);
        for point in &result.points {
            let t = 41 + point.day;
            let expected = 20.0 + 0.5 * t as f64 + WEEKLY[t % 7];
            // Only an undamped trend has no errors at all, so that is the fit.
            assert!(close(point.mean, expected, 1e-9), "{point:?} vs {expected}");
            assert!(close(point.lower, point.mean, 1e-9) && close(point.upper, point.mean, 1e-9));
        }
        assert_eq!(result.daily_stddev, 0.0);
        let mape = result.backtest_mape.unwrap();
        assert!(mape < 1.0, "{mape}");
        // The seasonal-naive forecast misses the week's growth (3.5) on every day.
        let baseline = result.baseline_mape.unwrap();
        assert!(baseline > 5.0, "{baseline}");
    }

    #[test]
    fn the_recursion_matches_a_hand_computed_step() {
        let params = Params {
            alpha: 0.5,
            beta: 0.1,
            gamma: 0.2,
            phi: 1.0,
        };
        // Level 6, trend 1, season WEEKLY; day 0: forecast 6 + 1 - 3 = 4, actual 7: error 3.
        let mut fresh = HoltWinters {
            params,
            level: 6.0,
            trend: 1.0,
            season: WEEKLY,
            days: 0,
            sigma: 0.0,
        };
        let error = fresh.step(7.0);
        assert!(close(error, 3.0, 1e-12));
        assert!(close(fresh.level, 6.0 + 1.0 + 0.5 * 3.0, 1e-12));
        assert!(close(fresh.trend, 1.0 + 0.1 * 3.0, 1e-12));
        assert!(close(fresh.season[0], -3.0 + 0.2 * 3.0, 1e-12));
        assert_eq!(fresh.days, 1);

        // Interval growth: c_1 = 0.5 + 0.1 * 1 = 0.6; h = 2 -> sqrt(1 + 0.36).
        let unit = HoltWinters {
            sigma: 1.0,
            ..fresh
        };
        assert!(close(unit.stddev_at(1), 1.0, 1e-12));
        assert!(close(unit.stddev_at(2), 1.36f64.sqrt(), 1e-12));
        // c_7 includes gamma: 0.5 + 0.1 * 7 + 0.2 = 1.4.
        let expected: f64 = 1.0
            + (1..=7)
                .map(|j| {
                    let c = 0.5 + 0.1 * j as f64 + if j == 7 { 0.2 } else { 0.0 };
                    c * c
                })
                .sum::<f64>();
        assert!(close(unit.stddev_at(8), expected.sqrt(), 1e-12));
    }

    #[test]
    fn noisy_seasonal_demand_beats_the_seasonal_naive_baseline() {
        // Level 50, weekly swing, and a deterministic pseudo-random noise of +-8.
        let mut state: u64 = 12345;
        let mut noise = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 16.0
        };
        let history: Vec<f64> = (0..84)
            .map(|t| 50.0 + 3.0 * WEEKLY[t % 7] + noise())
            .collect();
        let result = forecast(&history, 14);
        let (model, baseline) = (result.backtest_mape.unwrap(), result.baseline_mape.unwrap());
        assert!(model < baseline, "{model} vs {baseline}");
        // The interval widens with the horizon and stays around the mean.
        let first = &result.points[0];
        let last = &result.points[13];
        assert!(last.upper - last.lower > first.upper - first.lower);
        assert!(first.lower < first.mean && first.mean < first.upper);
        assert!(result.daily_stddev > 2.0 && result.daily_stddev < 8.0);
    }

    #[test]
    fn short_histories_fall_back_to_a_moving_average_and_none() {
        let result = forecast(&[4.0, 6.0, 5.0, f64::NAN, -2.0, 5.0], 3);
        assert_eq!(result.method, METHOD_MOVING_AVERAGE);
        // NaN and -2 count as 0: mean of 4, 6, 5, 0, 0, 5 = 20 / 6.
        let mean = 20.0 / 6.0;
        assert!(result.points.iter().all(|p| close(p.mean, mean, 1e-12)));
        assert_eq!(
            result.points.iter().map(|p| p.day).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(result.points[0].lower >= 0.0);
        assert_eq!((result.backtest_mape, result.baseline_mape), (None, None));

        let empty = forecast(&[], 2);
        assert_eq!(empty.method, METHOD_NONE);
        assert!(empty.points.iter().all(|p| p.mean == 0.0 && p.upper == 0.0));
        assert!(forecast(&[1.0; 30], 0).points.is_empty());
        assert_eq!(forecast(&[1.0; 30], usize::MAX).points.len(), MAX_HORIZON);
    }

    #[test]
    fn zero_demand_days_are_left_out_of_the_mape_and_the_lower_bound_is_zero() {
        let mut history = vec![0.0; 35];
        // Demand only on one weekday, always 7.
        for t in (3..35).step_by(7) {
            history[t] = 7.0;
        }
        let result = forecast(&history, 7);
        assert!(
            result
                .points
                .iter()
                .all(|p| p.lower >= 0.0 && p.mean >= 0.0)
        );
        let baseline = result.baseline_mape.unwrap();
        assert!(close(baseline, 0.0, 1e-9), "{baseline}");
        let peak = result
            .points
            .iter()
            .find(|p| (35 + p.day - 1) % 7 == 3)
            .unwrap();
        assert!(close(peak.mean, 7.0, 0.5), "{peak:?}");
    }
}
