//! Supplier scores and reorder quantities.
//!
//! **Supplier score.** Among the suppliers offering one product, each offer is scored
//! `0.40 * price + 0.35 * reliability + 0.25 * delivery`, every part in `[0, 1]` and higher
//! being better:
//! - price `= lowest unit price offered / this unit price` (the cheapest offer scores 1,
//!   one twice as dear 0.5);
//! - reliability as the supplier states it (share of orders complete and on time),
//!   clamped to `[0, 1]`;
//! - delivery `= shortest delivery time offered / this delivery time`, delivery times
//!   floored at one day (so a same-day supplier does not divide by zero).
//!
//! The ratios are relative to the best offer rather than min-max scaled, so two suppliers
//! a cent apart score almost the same instead of 0 and 1. Offers with a price that is not
//! a positive finite number are left out.
//!
//! **Reorder quantity** (periodic review, order-up-to level). Over the horizon
//! `H = lead time + review period` (days) the expected demand is `D = mean daily demand *
//! H`; the safety stock is `SS = z * sigma_daily * sqrt(H)`, with `z` the standard normal
//! quantile of the service level (the chance of no stock-out before the next delivery;
//! daily demands taken as independent, lead time as fixed). The quantity is
//! `ceil(D + SS - on hand - on order)`, never below 0.
//!
//! `z` comes from Peter J. Acklam's rational approximation of the inverse normal CDF
//! (relative error below 1.15e-9 over the open interval), with the service level clamped to
//! `[0.5, 0.9999]`: below 0.5 a safety stock would be negative.

use serde::Serialize;

use crate::model::Supplier;

pub const PRICE_WEIGHT: f64 = 0.40;
pub const RELIABILITY_WEIGHT: f64 = 0.35;
pub const DELIVERY_WEIGHT: f64 = 0.25;
/// Delivery times below this many days count as this many.
const MIN_DELIVERY_DAYS: f64 = 1.0;
const MIN_SERVICE_LEVEL: f64 = 0.5;
const MAX_SERVICE_LEVEL: f64 = 0.9999;

/// One supplier's score for one product, with the inputs it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplierScore {
    pub supplier_id: String,
    /// Weighted score in `[0, 1]`.
    pub score: f64,
    /// Unit price offered for the product.
    pub price: f64,
    pub reliability: f64,
    pub delivery_days: f64,
}

/// Scores every supplier offering a product, given as `(supplier, unit price)`; best
/// first (ties by supplier id).
pub fn score_suppliers(offers: &[(Supplier, f64)]) -> Vec<SupplierScore> {
    let valid: Vec<&(Supplier, f64)> = offers
        .iter()
        .filter(|(_, price)| price.is_finite() && *price > 0.0)
        .collect();
    let delivery_days = |supplier: &Supplier| {
        if supplier.avg_delivery_days.is_finite() {
            supplier.avg_delivery_days.max(MIN_DELIVERY_DAYS)
        } else {
            f64::INFINITY
        }
    };
    let lowest_price = valid.iter().map(|(_, p)| *p).fold(f64::INFINITY, f64::min);
    let fastest = valid
        .iter()
        .map(|(s, _)| delivery_days(s))
        .fold(f64::INFINITY, f64::min);
    let mut scores: Vec<SupplierScore> = valid
        .into_iter()
        .map(|(supplier, price)| {
            let price_part = lowest_price / price;
            let reliability = if supplier.reliability.is_finite() {
                supplier.reliability.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let days = delivery_days(supplier);
            // An unknown (infinite) delivery time scores 0; all unknown: all 0.
            let delivery_part = if days.is_finite() {
                fastest / days
            } else {
                0.0
            };
            SupplierScore {
                supplier_id: supplier.id.clone(),
                score: PRICE_WEIGHT * price_part
                    + RELIABILITY_WEIGHT * reliability
                    + DELIVERY_WEIGHT * delivery_part,
                price: *price,
                reliability,
                delivery_days: supplier.avg_delivery_days,
            }
        })
        .collect();
    scores.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.supplier_id.cmp(&b.supplier_id))
    });
    scores
}

/// What a reorder is computed from. Negative or non-finite figures count as 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ReorderInput {
    /// Forecast mean demand per day over the horizon.
    pub forecast_daily_mean: f64,
    /// Standard deviation of daily demand (e.g. of the forecast's residuals).
    pub daily_demand_stddev: f64,
    pub lead_time_days: f64,
    /// Days until the next chance to order (the review period).
    pub review_days: f64,
    /// Wanted chance of no stock-out before the next delivery, e.g. 0.95.
    pub service_level: f64,
    pub on_hand: i64,
    /// Ordered from suppliers, not yet received.
    pub on_order: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReorderPlan {
    /// Units to order now, at least 0.
    pub quantity: i64,
    pub safety_stock: f64,
    /// Expected demand over lead time plus review period.
    pub demand_over_horizon: f64,
    /// Standard normal quantile of the (clamped) service level.
    pub z: f64,
}

/// The order-up-to quantity for one product (formula in the module doc).
pub fn reorder(input: &ReorderInput) -> ReorderPlan {
    let non_negative = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
    let horizon_days = non_negative(input.lead_time_days) + non_negative(input.review_days);
    let demand_over_horizon = non_negative(input.forecast_daily_mean) * horizon_days;
    let service_level = if input.service_level.is_finite() {
        input
            .service_level
            .clamp(MIN_SERVICE_LEVEL, MAX_SERVICE_LEVEL)
    } else {
        MIN_SERVICE_LEVEL
    };
    let z = inverse_normal_cdf(service_level).max(0.0);
    let safety_stock = z * non_negative(input.daily_demand_stddev) * horizon_days.sqrt();
    let inventory_position = input.on_hand.max(0).saturating_add(input.on_order.max(0)) as f64;
    let shortfall = (demand_over_horizon + safety_stock - inventory_position).ceil();
    // `as` saturates: an absurd demand yields i64::MAX rather than wrapping.
    let quantity = if shortfall > 0.0 { shortfall as i64 } else { 0 };
    ReorderPlan {
        quantity,
        safety_stock,
        demand_over_horizon,
        z,
    }
}

/// The standard normal quantile `z` with `P(Z <= z) = p`, for `p` in `(0, 1)` (Acklam's
/// algorithm: a rational function of `p - 0.5` in the centre, of `sqrt(-2 ln p)` in the
/// tails). Returns -inf at 0 and below, +inf at 1 and above, NaN for NaN.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supplier(id: &str, reliability: f64, avg_delivery_days: f64) -> Supplier {
        Supplier {
            id: id.to_owned(),
            name: id.to_owned(),
            reliability,
            avg_delivery_days,
        }
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn inverse_normal_cdf_matches_table_values() {
        // Quantiles from standard normal tables.
        for (p, z) in [
            (0.5, 0.0),
            (0.8413447460685429, 1.0),
            (0.9, 1.2815515655446004),
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.99, 2.3263478740408408),
            (0.999, 3.090232306167813),
            (0.01, -2.3263478740408408),
            (1e-6, -4.753424308822899),
        ] {
            let got = inverse_normal_cdf(p);
            assert!(
                close(got, z, 1e-8 * z.abs().max(1.0)),
                "p = {p}: {got} != {z}"
            );
        }
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
        assert!(inverse_normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn suppliers_are_scored_by_weighted_relative_price_reliability_and_delivery() {
        let offers = [
            (supplier("cheap-slow", 0.90, 10.0), 80.0),
            (supplier("dear-fast", 0.98, 2.0), 100.0),
            (supplier("middling", 0.80, 5.0), 90.0),
        ];
        let scores = score_suppliers(&offers);
        // By hand:
        // cheap-slow: 0.40 * 80/80  + 0.35 * 0.90 + 0.25 * 2/10 = 0.400 + 0.315 + 0.050 = 0.7650
        // dear-fast:  0.40 * 80/100 + 0.35 * 0.98 + 0.25 * 2/2  = 0.320 + 0.343 + 0.250 = 0.9130
        // middling:   0.40 * 80/90  + 0.35 * 0.80 + 0.25 * 2/5  = 0.3556 + 0.280 + 0.100 = 0.7356
        let got: Vec<(&str, f64)> = scores
            .iter()
            .map(|s| (s.supplier_id.as_str(), s.score))
            .collect();
        assert_eq!(got[0].0, "dear-fast");
        assert!(close(got[0].1, 0.913, 1e-9));
        assert_eq!(got[1].0, "cheap-slow");
        assert!(close(got[1].1, 0.765, 1e-9));
        assert_eq!(got[2].0, "middling");
        assert!(close(got[2].1, 0.32 * 10.0 / 9.0 + 0.28 + 0.1, 1e-9));
        assert_eq!(scores[0].price, 100.0);
        assert_eq!(scores[0].delivery_days, 2.0);
    }

    #[test]
    fn invalid_offers_are_left_out_and_fast_delivery_is_floored_at_a_day() {
        let offers = [
            (supplier("free", 1.0, 1.0), 0.0),
            (supplier("nan", 1.0, 1.0), f64::NAN),
            (supplier("same-day", 0.5, 0.0), 10.0),
            (supplier("next-day", 0.5, 1.0), 10.0),
        ];
        let scores = score_suppliers(&offers);
        assert_eq!(scores.len(), 2);
        // Same-day counts as one day: a tie, broken by id.
        assert_eq!(scores[0].supplier_id, "next-day");
        assert_eq!(scores[1].supplier_id, "same-day");
        assert!(close(scores[0].score, 0.4 + 0.175 + 0.25, 1e-12));
        assert!(close(scores[0].score, scores[1].score, 1e-12));
        assert!(score_suppliers(&[]).is_empty());
    }

    #[test]
    fn reorder_covers_demand_and_safety_stock_over_lead_time_and_review() {
        let plan = reorder(&ReorderInput {
            forecast_daily_mean: 10.0,
            daily_demand_stddev: 4.0,
            lead_time_days: 7.0,
            review_days: 2.0,
            service_level: 0.95,
            on_hand: 40,
            on_order: 20,
        });
        // H = 9 days: D = 90; SS = 1.6449 * 4 * 3 = 19.74; 90 + 19.74 - 60 = 49.74 -> 50.
        assert!(close(plan.z, 1.6448536, 1e-6));
        assert!(close(plan.demand_over_horizon, 90.0, 1e-12));
        assert!(close(plan.safety_stock, 19.738243, 1e-5));
        assert_eq!(plan.quantity, 50);
    }

    #[test]
    fn nothing_is_ordered_when_stock_covers_the_horizon_and_bad_inputs_count_as_zero() {
        let covered = reorder(&ReorderInput {
            forecast_daily_mean: 5.0,
            daily_demand_stddev: 1.0,
            lead_time_days: 3.0,
            review_days: 1.0,
            service_level: 0.99,
            on_hand: 100,
            on_order: 0,
        });
        assert_eq!(covered.quantity, 0);

        // A service level below one half gives no (negative) safety stock.
        let low_service = reorder(&ReorderInput {
            forecast_daily_mean: 5.0,
            daily_demand_stddev: 3.0,
            lead_time_days: 4.0,
            review_days: 0.0,
            service_level: 0.2,
            on_hand: 0,
            on_order: 0,
        });
        assert_eq!(low_service.z, 0.0);
        assert_eq!(low_service.safety_stock, 0.0);
        assert_eq!(low_service.quantity, 20);

        let nonsense = reorder(&ReorderInput {
            forecast_daily_mean: f64::NAN,
            daily_demand_stddev: -1.0,
            lead_time_days: f64::INFINITY,
            review_days: -3.0,
            service_level: f64::NAN,
            on_hand: -5,
            on_order: i64::MAX,
        });
        assert_eq!(nonsense.quantity, 0);
        assert_eq!(nonsense.demand_over_horizon, 0.0);
    }
}
