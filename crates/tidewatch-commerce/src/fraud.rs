//! Fraud scoring: every transaction gets a score in `[0, 1]`, a suspicious flag and the
//! reasons behind them, each with its evidence.
//!
//! Five signals, each judged against the customer's own history where it has one:
//!
//! - **velocity**: the customer's transactions within `velocity_window` of this one (this
//!   one included) reach `velocity_count`. Every transaction counts here, suspicious or
//!   not.
//! - **amount_zscore**: `z = (amount - mean) / stddev` over the customer's baseline (their
//!   last `history` unsuspicious transactions, at least `min_history` of them) is above
//!   `amount_z`. The sample stddev is floored at `amount_min_cv * mean`, so a customer who
//!   always spends the same is not flagged for a slightly larger basket. Only large amounts
//!   count: a small one is not suspicious.
//! - **unusual_hour**: the share of transactions within an hour of this one's hour of day
//!   (UTC; the three hourly bins around it, wrapping at midnight) is under
//!   `unusual_hour_share`. The share is the customer's own once they have
//!   `hour_min_history` baseline transactions; until then the whole shop's share stands in
//!   for the ones missing: `share = (near + w * shop_share) / (n + w)` with
//!   `w = hour_min_history - n`, `near` of the customer's `n` baseline transactions being
//!   within the hour. A new customer is thus judged by when the shop is busy, a regular one
//!   by their own habit. The shop's share needs `shop_min_history` baseline transactions
//!   shop-wide (their hours are counted, the counts halved whenever they pass 100 000, so
//!   the pattern follows the shop); before that, only customers with `hour_min_history`
//!   are judged. A habit is a habit whatever the customer's time zone, so hours stay in
//!   UTC.
//! - **new_customer_large_amount**: the account is younger than `new_customer_days` (a
//!   sign-up after the transaction counts as new) and the amount is at least
//!   `new_customer_amount`.
//! - **region_mismatch**: the order's region (shipping or IP) differs from the customer's
//!   home region (compared trimmed and case-insensitively; an empty region is not judged).
//!
//! Each signal that fires adds its weight: `score = min(1, sum of the weights of the
//! reasons)`, and the transaction is suspicious when `score >= suspicious_score`. The
//! default weights are below the threshold one by one and reach it in any pair: a single
//! odd trait is common in honest traffic (a customer travels, shops at night, splurges
//! once), two at once are rare. Behavioural signals (velocity, amount, new account with a
//! large amount) weigh more than contextual ones (hour, region), so they order the score.
//!
//! After scoring, a transaction is learnt: its time joins the velocity window, and, unless
//! it was suspicious, its amount and hour join the baseline (like the market detectors
//! keep outliers out of their statistics, so a fraud burst does not teach the scorer that
//! large night-time orders are this customer's habit).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidewatch_types::{TimestampMs, WindowWidth};

pub const VELOCITY: &str = "velocity";
pub const AMOUNT_ZSCORE: &str = "amount_zscore";
pub const UNUSUAL_HOUR: &str = "unusual_hour";
pub const NEW_CUSTOMER_LARGE_AMOUNT: &str = "new_customer_large_amount";
pub const REGION_MISMATCH: &str = "region_mismatch";

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: f64 = 86_400_000.0;

/// Scorer settings (`[commerce.fraud]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Sliding window of the velocity signal.
    pub velocity_window: WindowWidth,
    /// Transactions within the window, this one included, from which velocity fires.
    pub velocity_count: usize,
    /// z-score above which an amount is large for the customer.
    pub amount_z: f64,
    /// Floor of the amount stddev as a share of the mean amount.
    pub amount_min_cv: f64,
    /// Baseline transactions needed before amounts are judged.
    pub min_history: usize,
    /// Baseline transactions from which a customer's hours are judged by their own habit
    /// alone (the shop's pattern fills in for the missing ones before).
    pub hour_min_history: usize,
    /// Share of transactions within an hour of this one's hour below which it is unusual.
    pub unusual_hour_share: f64,
    /// Baseline transactions shop-wide before the shop's hour pattern is used.
    pub shop_min_history: usize,
    /// Newest unsuspicious transactions kept per customer as the baseline.
    pub history: usize,
    /// Accounts younger than this are new.
    pub new_customer_days: f64,
    /// Amount from which a new account's transaction is large.
    pub new_customer_amount: f64,
    pub weights: FraudWeights,
    /// Score from which a transaction is suspicious.
    pub suspicious_score: f64,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            velocity_window: WindowWidth::constant::<600>(),
            velocity_count: 3,
            amount_z: 4.0,
            amount_min_cv: 0.25,
            min_history: 5,
            hour_min_history: 10,
            unusual_hour_share: 0.05,
            shop_min_history: 200,
            history: 100,
            new_customer_days: 7.0,
            new_customer_amount: 500.0,
            weights: FraudWeights::default(),
            suspicious_score: 0.5,
        }
    }
}

/// What each signal adds to the score when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudWeights {
    pub velocity: f64,
    pub amount_zscore: f64,
    pub unusual_hour: f64,
    pub new_customer_large_amount: f64,
    pub region_mismatch: f64,
}

impl Default for FraudWeights {
    fn default() -> Self {
        FraudWeights {
            velocity: 0.35,
            amount_zscore: 0.35,
            unusual_hour: 0.25,
            new_customer_large_amount: 0.35,
            region_mismatch: 0.25,
        }
    }
}

/// The facts of one transaction the scorer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TxFacts {
    pub customer_id: String,
    /// Transaction time, epoch milliseconds.
    pub ts: TimestampMs,
    /// Order value (quantity times unit price).
    pub amount: f64,
    /// The customer's home region.
    pub customer_region: String,
    /// Where the order comes from.
    pub order_region: String,
    pub customer_signup_ts: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraudVerdict {
    /// In `[0, 1]`: the sum of the reasons' weights, capped.
    pub score: f64,
    pub suspicious: bool,
    /// The signals that fired, in the order of the module doc.
    pub reasons: Vec<FraudReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraudReason {
    /// `velocity`, `amount_zscore`, `unusual_hour`, `new_customer_large_amount` or
    /// `region_mismatch`.
    pub code: &'static str,
    /// What the reason added to the score.
    pub weight: f64,
    /// One line for a person.
    pub detail: String,
    /// The figures the signal was judged on.
    pub evidence: serde_json::Value,
}

/// One customer's recent activity.
#[derive(Debug, Default)]
struct CustomerHistory {
    /// Times of the transactions within the velocity window of the newest one (all
    /// transactions, suspicious or not), oldest first.
    recent: VecDeque<TimestampMs>,
    /// Amount and UTC hour of the newest unsuspicious transactions, oldest first.
    baseline: VecDeque<(f64, usize)>,
    /// Baseline transactions per UTC hour of day (derived from `baseline`, kept in step).
    hour_counts: [u32; 24],
}

/// Shop-wide hour counts are halved when their total passes this.
const SHOP_HOURS_MAX_TOTAL: u64 = 100_000;

/// Baseline transactions of the whole shop per UTC hour: the prior of unusual hours.
#[derive(Debug, Default)]
struct ShopHours {
    counts: [u64; 24],
    total: u64,
}

impl ShopHours {
    fn add(&mut self, hour: usize) {
        self.counts[hour] += 1;
        self.total += 1;
        if self.total > SHOP_HOURS_MAX_TOTAL {
            self.counts.iter_mut().for_each(|c| *c /= 2);
            self.total = self.counts.iter().sum();
        }
    }
}

/// Scores transactions against each customer's history (module doc).
#[derive(Debug)]
pub struct FraudScorer {
    config: FraudConfig,
    customers: HashMap<String, CustomerHistory>,
    shop_hours: ShopHours,
}

impl FraudScorer {
    pub fn new(config: FraudConfig) -> Self {
        FraudScorer {
            config,
            customers: HashMap::new(),
            shop_hours: ShopHours::default(),
        }
    }

    pub fn config(&self) -> &FraudConfig {
        &self.config
    }

    /// Customers with a history.
    pub fn customers(&self) -> usize {
        self.customers.len()
    }

    /// Scores a transaction and then learns it into the customer's history (call in ts
    /// order per customer as far as possible).
    pub fn score(&mut self, tx: &TxFacts) -> FraudVerdict {
        let config = &self.config;
        let history = match self.customers.get_mut(&tx.customer_id) {
            Some(history) => history,
            None => self.customers.entry(tx.customer_id.clone()).or_default(),
        };
        let amount = (tx.amount.is_finite() && tx.amount >= 0.0).then_some(tx.amount);
        let hour = usize::try_from(tx.ts.rem_euclid(24 * MS_PER_HOUR) / MS_PER_HOUR).unwrap_or(0);

        let mut reasons = Vec::new();
        reasons.extend(velocity(config, history, tx.ts));
        if let Some(amount) = amount {
            reasons.extend(amount_zscore(config, history, amount));
        }
        reasons.extend(unusual_hour(config, history, &self.shop_hours, hour));
        if let Some(amount) = amount {
            reasons.extend(new_customer_large_amount(config, tx, amount));
        }
        reasons.extend(region_mismatch(config, tx));

        // A fold from +0.0: an empty f64 `sum` is -0.0, which would print as "-0.0".
        let score = reasons
            .iter()
            .fold(0.0, |total, r| total + r.weight)
            .clamp(0.0, 1.0);
        let suspicious = score >= config.suspicious_score;

        history.recent.push_back(tx.ts);
        if !suspicious && let Some(amount) = amount {
            history.baseline.push_back((amount, hour));
            history.hour_counts[hour] += 1;
            self.shop_hours.add(hour);
            while history.baseline.len() > config.history.max(1) {
                if let Some((_, old_hour)) = history.baseline.pop_front() {
                    history.hour_counts[old_hour] = history.hour_counts[old_hour].saturating_sub(1);
                }
            }
        }
        FraudVerdict {
            score,
            suspicious,
            reasons,
        }
    }
}

fn velocity(
    config: &FraudConfig,
    history: &mut CustomerHistory,
    ts: TimestampMs,
) -> Option<FraudReason> {
    let window_ms = config.velocity_window.millis();
    // Forget what is out of reach of this and any later transaction; a late transaction
    // only sees what is left.
    let newest = history.recent.iter().copied().max().unwrap_or(ts).max(ts);
    while history
        .recent
        .front()
        .is_some_and(|&old| old <= newest - window_ms)
    {
        history.recent.pop_front();
    }
    let in_window: Vec<TimestampMs> = history
        .recent
        .iter()
        .copied()
        .filter(|&other| (other - ts).abs() < window_ms)
        .collect();
    let count = in_window.len() + 1;
    if count < config.velocity_count {
        return None;
    }
    let first = in_window.iter().copied().min().unwrap_or(ts).min(ts);
    let window = config.velocity_window;
    Some(FraudReason {
        code: VELOCITY,
        weight: config.weights.velocity,
        detail: format!(
            "{count} transactions within {window} (from {})",
            config.velocity_count
        ),
        evidence: json!({
            "transactions": count,
            "window": window.to_string(),
            "threshold": config.velocity_count,
            "first_ts": first,
        }),
    })
}

fn amount_zscore(
    config: &FraudConfig,
    history: &CustomerHistory,
    amount: f64,
) -> Option<FraudReason> {
    let n = history.baseline.len();
    if n < config.min_history.max(2) {
        return None;
    }
    let mean = history.baseline.iter().map(|(a, _)| a).sum::<f64>() / n as f64;
    let variance = history
        .baseline
        .iter()
        .map(|(a, _)| (a - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    let stddev = variance.sqrt().max(config.amount_min_cv * mean);
    if stddev <= 0.0 {
        return None;
    }
    let z = (amount - mean) / stddev;
    if z <= config.amount_z {
        return None;
    }
    Some(FraudReason {
        code: AMOUNT_ZSCORE,
        weight: config.weights.amount_zscore,
        detail: format!(
            "amount {amount:.2} is {z:.1} standard deviations above this customer's mean {mean:.2} (from {})",
            config.amount_z
        ),
        evidence: json!({
            "amount": amount,
            "mean": mean,
            "stddev": stddev,
            "z": z,
            "threshold": config.amount_z,
            "history": n,
        }),
    })
}

fn unusual_hour(
    config: &FraudConfig,
    history: &CustomerHistory,
    shop: &ShopHours,
    hour: usize,
) -> Option<FraudReason> {
    let near_hours = [23, 0, 1].map(|offset| (hour + offset) % 24);
    let n = history.baseline.len();
    let near: u32 = near_hours.iter().map(|&h| history.hour_counts[h]).sum();
    let shop_share = (shop.total >= config.shop_min_history.max(1) as u64).then(|| {
        near_hours.iter().map(|&h| shop.counts[h]).sum::<u64>() as f64 / shop.total as f64
    });
    let missing = config.hour_min_history.max(1).saturating_sub(n);
    let (prior_weight, prior_share) = match shop_share {
        _ if missing == 0 => (0.0, 0.0),
        Some(share) => (missing as f64, share),
        None => return None,
    };
    let share = (f64::from(near) + prior_weight * prior_share) / (n as f64 + prior_weight);
    if share >= config.unusual_hour_share {
        return None;
    }
    let mut by_count: Vec<(usize, u32)> = history
        .hour_counts
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, count)| count > 0)
        .collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let usual_hours: Vec<usize> = by_count.iter().take(3).map(|&(h, _)| h).collect();
    let customer_share = (n > 0).then(|| f64::from(near) / n as f64);
    Some(FraudReason {
        code: UNUSUAL_HOUR,
        weight: config.weights.unusual_hour,
        detail: format!(
            "{hour:02}:00 UTC is unusual for this customer: {:.1} % of their orders fall within an hour of it ({n} of their own, the shop's pattern for {missing} more)",
            share * 100.0
        ),
        evidence: json!({
            "hour_utc": hour,
            "share": share,
            "customer_share": customer_share,
            "shop_share": shop_share,
            "threshold": config.unusual_hour_share,
            "history": n,
            "usual_hours_utc": usual_hours,
        }),
    })
}

fn new_customer_large_amount(
    config: &FraudConfig,
    tx: &TxFacts,
    amount: f64,
) -> Option<FraudReason> {
    let age_days = (tx.ts.saturating_sub(tx.customer_signup_ts) as f64 / MS_PER_DAY).max(0.0);
    if age_days >= config.new_customer_days || amount < config.new_customer_amount {
        return None;
    }
    Some(FraudReason {
        code: NEW_CUSTOMER_LARGE_AMOUNT,
        weight: config.weights.new_customer_large_amount,
        detail: format!(
            "an account {age_days:.1} days old spends {amount:.2} (large from {} within {} days)",
            config.new_customer_amount, config.new_customer_days
        ),
        evidence: json!({
            "account_age_days": age_days,
            "amount": amount,
            "threshold": config.new_customer_amount,
            "new_customer_days": config.new_customer_days,
        }),
    })
}

fn region_mismatch(config: &FraudConfig, tx: &TxFacts) -> Option<FraudReason> {
    let (home, from) = (tx.customer_region.trim(), tx.order_region.trim());
    if home.is_empty() || from.is_empty() || home.eq_ignore_ascii_case(from) {
        return None;
    }
    Some(FraudReason {
        code: REGION_MISMATCH,
        weight: config.weights.region_mismatch,
        detail: format!("ordered from {from}, customer's home region is {home}"),
        evidence: json!({
            "customer_region": home,
            "order_region": from,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-11-23 00:00 UTC.
    const T0: i64 = 1_795_392_000_000;
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 86_400_000;

    fn tx(ts: i64, amount: f64) -> TxFacts {
        TxFacts {
            customer_id: "c1".to_owned(),
            ts,
            amount,
            customer_region: "EU-West".to_owned(),
            order_region: "EU-West".to_owned(),
            customer_signup_ts: T0 - 365 * DAY,
        }
    }

    fn codes(verdict: &FraudVerdict) -> Vec<&'static str> {
        verdict.reasons.iter().map(|r| r.code).collect()
    }

    /// A customer who shops at 19:00-20:00 UTC once a day for 20 days, spending 90-110.
    fn habitual(scorer: &mut FraudScorer) {
        for day in 0..20 {
            let ts = T0 + day * DAY + 19 * HOUR + (day % 3) * 20 * MINUTE;
            let amount = [90.0, 100.0, 110.0][day as usize % 3];
            let verdict = scorer.score(&tx(ts, amount));
            assert!(verdict.reasons.is_empty(), "day {day}: {verdict:?}");
        }
    }

    #[test]
    fn a_habitual_customer_raises_nothing_and_one_odd_trait_is_not_suspicious() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        habitual(&mut scorer);
        let day = T0 + 30 * DAY;
        // At 03:00: unusual hour alone.
        let night = scorer.score(&tx(day + 3 * HOUR, 100.0));
        assert_eq!(codes(&night), [UNUSUAL_HOUR]);
        assert_eq!(night.score, 0.25);
        assert!(!night.suspicious);
        // Travelling: region alone.
        let abroad = scorer.score(&TxFacts {
            order_region: "US-East".to_owned(),
            ..tx(day + DAY + 19 * HOUR, 100.0)
        });
        assert_eq!(codes(&abroad), [REGION_MISMATCH]);
        assert!(!abroad.suspicious);
        assert_eq!(abroad.reasons[0].evidence["order_region"], "US-East");
    }

    #[test]
    fn a_large_amount_is_judged_by_the_customers_own_mean_and_stddev() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        habitual(&mut scorer);
        // Baseline: 20 amounts cycling 90, 100, 110 (7x90, 7x100, 6x110): mean 99.5,
        // sample stddev 8.256, floored at 0.25 * 99.5 = 24.875.
        // 220 is (220 - 99.5) / 24.875 = 4.84 sd above: fires alone, not suspicious.
        let verdict = scorer.score(&tx(T0 + 20 * DAY + 19 * HOUR, 220.0));
        assert_eq!(codes(&verdict), [AMOUNT_ZSCORE]);
        let z = verdict.reasons[0].evidence["z"].as_f64().unwrap();
        assert!((z - 120.5 / 24.875).abs() < 1e-9, "{z}");
        assert_eq!(verdict.reasons[0].evidence["history"], 20);
        assert!(!verdict.suspicious);
        // 220 was learnt (one signal is not suspicious): mean 105.24, sample stddev 27.50;
        // 200 is 3.45 sd above: not large.
        let verdict = scorer.score(&tx(T0 + 21 * DAY + 19 * HOUR, 200.0));
        assert!(verdict.reasons.is_empty(), "{verdict:?}");
        // No reason, a plain zero (not -0.0, which JSON would show as "-0.0").
        assert!(verdict.score == 0.0 && verdict.score.is_sign_positive());
    }

    #[test]
    fn two_signals_together_are_suspicious_and_stay_out_of_the_baseline() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        habitual(&mut scorer);
        // Large and at night, from abroad: three reasons, score 0.85.
        let takeover = TxFacts {
            order_region: "APAC".to_owned(),
            ..tx(T0 + 25 * DAY + 3 * HOUR, 2_000.0)
        };
        let verdict = scorer.score(&takeover);
        assert_eq!(
            codes(&verdict),
            [AMOUNT_ZSCORE, UNUSUAL_HOUR, REGION_MISMATCH]
        );
        assert!((verdict.score - 0.85).abs() < 1e-12);
        assert!(verdict.suspicious);
        // Not learnt: the same amount at night is still large and unusual.
        let again = scorer.score(&tx(T0 + 26 * DAY + 3 * HOUR, 2_000.0));
        assert_eq!(codes(&again), [AMOUNT_ZSCORE, UNUSUAL_HOUR]);
        assert!(again.suspicious);
    }

    #[test]
    fn velocity_counts_every_transaction_in_the_sliding_window() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        let start = T0 + 19 * HOUR;
        assert!(scorer.score(&tx(start, 50.0)).reasons.is_empty());
        assert!(
            scorer
                .score(&tx(start + 4 * MINUTE, 50.0))
                .reasons
                .is_empty()
        );
        // Third within 10 minutes of the others.
        let third = scorer.score(&tx(start + 9 * MINUTE, 50.0));
        assert_eq!(codes(&third), [VELOCITY]);
        assert_eq!(third.reasons[0].evidence["transactions"], 3);
        assert_eq!(third.reasons[0].evidence["first_ts"], start);
        // 14 minutes after the second, 5 after the third: two in the window.
        let later = scorer.score(&tx(start + 14 * MINUTE, 50.0));
        assert_eq!(later.reasons.len(), 0, "{later:?}");
        // Velocity with a region mismatch: 0.35 + 0.25 is suspicious.
        let burst = scorer.score(&TxFacts {
            order_region: "APAC".to_owned(),
            ..tx(start + 15 * MINUTE, 50.0)
        });
        assert_eq!(codes(&burst), [VELOCITY, REGION_MISMATCH]);
        assert!((burst.score - 0.6).abs() < 1e-12 && burst.suspicious);
    }

    #[test]
    fn a_new_account_with_a_large_amount_needs_a_second_signal() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        let signup = T0;
        let new = |ts: i64, amount: f64, region: &str| TxFacts {
            customer_id: "new".to_owned(),
            ts,
            amount,
            customer_region: "EU-North".to_owned(),
            order_region: region.to_owned(),
            customer_signup_ts: signup,
        };
        let first = scorer.score(&new(signup + 2 * DAY, 1_200.0, "EU-North"));
        assert_eq!(codes(&first), [NEW_CUSTOMER_LARGE_AMOUNT]);
        assert!(!first.suspicious);
        let age = first.reasons[0].evidence["account_age_days"]
            .as_f64()
            .unwrap();
        assert!((age - 2.0).abs() < 1e-12);
        let shipped_away = scorer.score(&new(signup + 3 * DAY, 900.0, "US-West"));
        assert_eq!(
            codes(&shipped_away),
            [NEW_CUSTOMER_LARGE_AMOUNT, REGION_MISMATCH]
        );
        assert!(shipped_away.suspicious);
        // Small amounts and old accounts are not judged.
        assert!(
            scorer
                .score(&new(signup + 4 * DAY, 100.0, "EU-North"))
                .reasons
                .is_empty()
        );
        assert!(
            scorer
                .score(&new(signup + 8 * DAY, 5_000.0, "EU-North"))
                .reasons
                .is_empty()
        );
    }

    #[test]
    fn the_score_is_capped_at_one_and_nonsense_amounts_are_not_judged() {
        let config = FraudConfig {
            weights: FraudWeights {
                velocity: 0.9,
                region_mismatch: 0.9,
                ..FraudWeights::default()
            },
            velocity_count: 2,
            ..FraudConfig::default()
        };
        let mut scorer = FraudScorer::new(config);
        let abroad = |ts, amount| TxFacts {
            order_region: "US-East".to_owned(),
            customer_signup_ts: ts,
            ..tx(ts, amount)
        };
        let first = scorer.score(&abroad(T0, f64::NAN));
        assert_eq!(codes(&first), [REGION_MISMATCH]);
        let second = scorer.score(&abroad(T0 + MINUTE, -5.0));
        assert_eq!(codes(&second), [VELOCITY, REGION_MISMATCH]);
        assert_eq!(second.score, 1.0);
    }

    #[test]
    fn until_a_customer_has_a_habit_the_shops_hours_stand_in() {
        let mut scorer = FraudScorer::new(FraudConfig::default());
        // 30 customers with 10 orders each, all in the evening: the shop's pattern.
        for customer in 0..30 {
            for day in 0..10 {
                let verdict = scorer.score(&TxFacts {
                    customer_id: format!("regular-{customer}"),
                    ..tx(T0 + day * DAY + (18 + customer % 3) * HOUR, 100.0)
                });
                assert!(!verdict.suspicious);
            }
        }
        let newcomer = |ts: i64| TxFacts {
            customer_id: "newcomer".to_owned(),
            ..tx(ts, 100.0)
        };
        // No history of their own: 03:00 is unusual for the shop, so for them.
        let night = scorer.score(&newcomer(T0 + 20 * DAY + 3 * HOUR));
        assert_eq!(codes(&night), [UNUSUAL_HOUR]);
        assert_eq!(night.reasons[0].evidence["history"], 0);
        assert_eq!(night.reasons[0].evidence["shop_share"], 0.0);
        assert!(
            scorer
                .score(&newcomer(T0 + 21 * DAY + 19 * HOUR))
                .reasons
                .is_empty()
        );
        // A night owl: after five nights and one evening of their own, the share near
        // 03:00 is (5 + 4 * 0) / (6 + 4) = 0.5: usual.
        for day in 22..26 {
            scorer.score(&newcomer(T0 + day * DAY + 3 * HOUR));
        }
        let owl = scorer.score(&newcomer(T0 + 27 * DAY + 3 * HOUR));
        assert!(owl.reasons.is_empty(), "{owl:?}");
    }

    #[test]
    fn config_reads_partial_json_and_rejects_unknown_fields() {
        let config: FraudConfig =
            serde_json::from_str(r#"{"velocity_window": "5m", "weights": {"velocity": 0.5}}"#)
                .unwrap();
        assert_eq!(config.velocity_window.seconds(), 300);
        assert_eq!(config.weights.velocity, 0.5);
        assert_eq!(config.weights.region_mismatch, 0.25);
        assert_eq!(config.suspicious_score, 0.5);
        assert!(serde_json::from_str::<FraudConfig>(r#"{"velocity_windw": "5m"}"#).is_err());
    }
}
