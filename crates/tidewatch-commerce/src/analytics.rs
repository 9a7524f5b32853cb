//! Sales analytics, read from the rollups of `commerce.transactions` (maintained as
//! events arrive, so a request sums a few window rows and never rescans transactions).
//!
//! Time ranges are whole windows: `from` is rounded down and `to` up to the hour (to the
//! day when both fall on midnight UTC, or when there is no range, which reads the daily
//! windows and so all retained history). Days are UTC days.
//!
//! Customer segments:
//! - **by loyalty tier**: the tier recorded on each sale (a customer who changed tier
//!   counts in both).
//! - **RFM**: per customer, recency = whole days since the last day with a purchase (0 =
//!   today), frequency = transactions, monetary = revenue, over all retained daily windows.
//!   Recency scores 3 (at most 7 days), 2 (at most 30) or 1; frequency 3 (10 or more), 2
//!   (3 or more) or 1. Segments: `champions` (R3 F3), `loyal` (R2+ F2+, not champions),
//!   `new` (R3 F1), `promising` (R2 F1), `at_risk` (R1 F2+), `hibernating` (R1 F1).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};
use tidewatch_engine::RollupRow;
use tidewatch_types::time::{format_rfc3339_ms, now_ms};
use tidewatch_types::{TimestampMs, WindowWidth};

use crate::error::{Error, Result};
use crate::schema::{
    ALERTS_ROLLUP, CUSTOMERS_ROLLUP, RISK_ROLLUP, RISK_SUSPICIOUS, SALES_ROLLUP, TOTALS_ROLLUP,
    TRANSACTIONS_STREAM,
};
use crate::service::{Commerce, DOMAIN};

const HOUR: WindowWidth = WindowWidth::constant::<3600>();
const DAY: WindowWidth = WindowWidth::constant::<86_400>();
const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Most hours one hourly-sales request covers (the hourly windows retained by default).
pub const MAX_HOURS: i64 = 1440;
pub const DEFAULT_TOP: usize = 10;
pub const MAX_TOP: usize = 100;

/// An aggregate of a rollup row.
pub(crate) fn value(row: &RollupRow, name: &str) -> Option<f64> {
    row.values
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| *v)
}

/// A group tag of a rollup row.
pub(crate) fn group(row: &RollupRow, tag: &str) -> Option<String> {
    row.group
        .iter()
        .find(|(t, _)| t == tag)
        .and_then(|(_, v)| v.as_deref())
        .map(str::to_owned)
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// A range of whole windows, `[from, to)`, and the width it is read at.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub width: WindowWidth,
    pub from: Option<TimestampMs>,
    pub to: Option<TimestampMs>,
}

impl Span {
    /// Rounds `[from, to)` out to whole hours, or days when both are midnights (module doc).
    pub fn new(from: Option<TimestampMs>, to: Option<TimestampMs>) -> Result<Span> {
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(Error::InvalidRequest(format!(
                "from ({}) must be before to ({})",
                format_rfc3339_ms(from),
                format_rfc3339_ms(to)
            )));
        }
        let on_midnight = |t: Option<TimestampMs>| t.is_none_or(|t| t.rem_euclid(MS_PER_DAY) == 0);
        let width = if on_midnight(from) && on_midnight(to) {
            DAY
        } else {
            HOUR
        };
        let unit = width.millis();
        Ok(Span {
            width,
            from: from.map(|t| width.window_start(t)),
            to: to.map(|t| {
                let start = width.window_start(t);
                if start == t {
                    t
                } else {
                    start.saturating_add(unit)
                }
            }),
        })
    }

    fn json(&self) -> Value {
        json!({
            "window": self.width.to_string(),
            "from": self.from.map(format_rfc3339_ms),
            "to": self.to.map(format_rfc3339_ms),
        })
    }
}

/// Figures of one group of sales.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    revenue: f64,
    units: f64,
    cost: f64,
    orders: f64,
}

impl Sums {
    fn add(&mut self, row: &RollupRow) {
        self.revenue += value(row, "revenue").unwrap_or(0.0);
        self.units += value(row, "units").unwrap_or(0.0);
        self.cost += value(row, "cost").unwrap_or(0.0);
        self.orders += value(row, "orders").unwrap_or(0.0);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HourlySales {
    pub hour: String,
    pub revenue: f64,
    pub orders: u64,
    pub units: u64,
    pub avg_order_value: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Revenue,
    Units,
    Orders,
}

impl TopBy {
    pub fn parse(text: &str) -> Option<TopBy> {
        match text {
            "revenue" => Some(TopBy::Revenue),
            "units" => Some(TopBy::Units),
            "orders" => Some(TopBy::Orders),
            _ => None,
        }
    }
}

impl Commerce {
    fn rows(
        &self,
        rollup: &str,
        width: WindowWidth,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
        filter: &[(String, String)],
    ) -> Result<Vec<RollupRow>> {
        let (_, rows) =
            self.engine
                .rollup_query(TRANSACTIONS_STREAM, rollup, Some(width), from, to, filter)?;
        Ok(rows)
    }

    /// `GET /api/v1/dashboard/overview`: today's figures (UTC day) and the current state.
    pub async fn overview(&self) -> Result<Value> {
        let now = now_ms();
        let today = DAY.window_start(now);
        let tomorrow = today + MS_PER_DAY;
        let mut totals = Sums::default();
        for row in self.rows(TOTALS_ROLLUP, DAY, Some(today), Some(tomorrow), &[])? {
            totals.add(&row);
        }
        let active_customers = self
            .rows(CUSTOMERS_ROLLUP, DAY, Some(today), Some(tomorrow), &[])?
            .iter()
            .filter(|row| value(row, "orders").unwrap_or(0.0) > 0.0)
            .filter_map(|row| group(row, "customer_id"))
            .collect::<std::collections::HashSet<_>>()
            .len();
        let suspicious: f64 = self
            .rows(
                RISK_ROLLUP,
                DAY,
                Some(today),
                Some(tomorrow),
                &[("risk".to_owned(), RISK_SUSPICIOUS.to_owned())],
            )?
            .iter()
            .filter_map(|row| value(row, "orders"))
            .sum();
        // Alerts have no resolution yet: open = raised in the last 24 hours.
        let alerts_from = HOUR.window_start(now) - 23 * MS_PER_HOUR;
        let (_, alert_rows) = self.engine.rollup_query(
            tidewatch_alerts::ALERTS_STREAM,
            ALERTS_ROLLUP,
            Some(HOUR),
            Some(alerts_from),
            None,
            &[("domain".to_owned(), DOMAIN.to_owned())],
        )?;
        let open_alerts: f64 = alert_rows.iter().filter_map(|r| value(r, "alerts")).sum();
        let low_stock = self.low_stock().await?;
        Ok(json!({
            "as_of": format_rfc3339_ms(now),
            "day": format_rfc3339_ms(today),
            "sales_today": totals.revenue,
            "transactions_today": totals.orders as u64,
            "units_today": totals.units as u64,
            "active_customers": active_customers,
            "avg_order_value": ratio(totals.revenue, totals.orders),
            "low_stock": low_stock.products.len(),
            "critical_stock": low_stock.critical,
            "suspicious_today": suspicious as u64,
            "open_alerts": open_alerts as u64,
        }))
    }

    /// `GET /api/v1/analytics/hourly-sales`: one entry per hour of `[from, to)` (default:
    /// the last 24 hours, this one included), hours without sales as zeros.
    pub fn hourly_sales(
        &self,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    ) -> Result<Value> {
        let now = now_ms();
        let to = match to {
            Some(to) => HOUR.window_start(to.saturating_add(MS_PER_HOUR - 1)),
            None => HOUR.window_start(now) + MS_PER_HOUR,
        };
        let from = HOUR.window_start(from.unwrap_or(to.saturating_sub(24 * MS_PER_HOUR)));
        if from >= to {
            return Err(Error::InvalidRequest(format!(
                "from ({}) must be before to ({})",
                format_rfc3339_ms(from),
                format_rfc3339_ms(to)
            )));
        }
        if to.saturating_sub(from) / MS_PER_HOUR > MAX_HOURS {
            return Err(Error::InvalidRequest(format!(
                "the range covers more than {MAX_HOURS} hours"
            )));
        }
        let mut by_hour: BTreeMap<TimestampMs, Sums> = BTreeMap::new();
        for row in self.rows(TOTALS_ROLLUP, HOUR, Some(from), Some(to), &[])? {
            by_hour.entry(row.window_start).or_default().add(&row);
        }
        let hours: Vec<HourlySales> = (from..to)
            .step_by(MS_PER_HOUR as usize)
            .map(|hour| {
                let sums = by_hour.get(&hour).copied().unwrap_or_default();
                HourlySales {
                    hour: format_rfc3339_ms(hour),
                    revenue: sums.revenue,
                    orders: sums.orders as u64,
                    units: sums.units as u64,
                    avg_order_value: ratio(sums.revenue, sums.orders),
                }
            })
            .collect();
        Ok(json!({
            "from": format_rfc3339_ms(from),
            "to": format_rfc3339_ms(to),
            "hours": hours,
        }))
    }

    /// Sales per product over a span, from the `sales` rollup.
    fn product_sums(&self, span: &Span) -> Result<HashMap<(String, String), Sums>> {
        let mut sums: HashMap<(String, String), Sums> = HashMap::new();
        for row in self.rows(SALES_ROLLUP, span.width, span.from, span.to, &[])? {
            let (Some(category), Some(product)) =
                (group(&row, "category"), group(&row, "product_id"))
            else {
                continue;
            };
            sums.entry((category, product)).or_default().add(&row);
        }
        Ok(sums)
    }

    /// `GET /api/v1/analytics/top-products`.
    pub async fn top_products(&self, span: Span, limit: Option<usize>, by: TopBy) -> Result<Value> {
        let limit = limit.unwrap_or(DEFAULT_TOP);
        if !(1..=MAX_TOP).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "parameter \"limit\": must be between 1 and {MAX_TOP}"
            )));
        }
        let names: HashMap<String, String> = self
            .store
            .products()
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        let mut products: Vec<((String, String), Sums)> =
            self.product_sums(&span)?.into_iter().collect();
        let key = |s: &Sums| match by {
            TopBy::Revenue => s.revenue,
            TopBy::Units => s.units,
            TopBy::Orders => s.orders,
        };
        products.sort_by(|(a_id, a), (b_id, b)| {
            key(b).total_cmp(&key(a)).then_with(|| a_id.1.cmp(&b_id.1))
        });
        products.truncate(limit);
        let products: Vec<Value> = products
            .into_iter()
            .map(|((category, product_id), s)| {
                json!({
                    "product_id": product_id,
                    "name": names.get(&product_id),
                    "category": category,
                    "revenue": s.revenue,
                    "units": s.units as u64,
                    "orders": s.orders as u64,
                    "cost": s.cost,
                    "margin": s.revenue - s.cost,
                })
            })
            .collect();
        Ok(json!({"range": span.json(), "by": match by {
            TopBy::Revenue => "revenue", TopBy::Units => "units", TopBy::Orders => "orders"
        }, "products": products}))
    }

    /// `GET /api/v1/analytics/category-performance`: revenue, units, orders, cost and
    /// margin per category, by revenue.
    pub fn category_performance(&self, span: Span) -> Result<Value> {
        let mut by_category: BTreeMap<String, (Sums, usize)> = BTreeMap::new();
        for ((category, _), sums) in self.product_sums(&span)? {
            let entry = by_category.entry(category).or_default();
            entry.0.revenue += sums.revenue;
            entry.0.units += sums.units;
            entry.0.cost += sums.cost;
            entry.0.orders += sums.orders;
            entry.1 += 1;
        }
        let mut categories: Vec<(String, Sums, usize)> = by_category
            .into_iter()
            .map(|(c, (s, n))| (c, s, n))
            .collect();
        categories.sort_by(|a, b| {
            b.1.revenue
                .total_cmp(&a.1.revenue)
                .then_with(|| a.0.cmp(&b.0))
        });
        let categories: Vec<Value> = categories
            .into_iter()
            .map(|(category, s, products)| {
                let margin = s.revenue - s.cost;
                json!({
                    "category": category,
                    "revenue": s.revenue,
                    "units": s.units as u64,
                    "orders": s.orders as u64,
                    "cost": s.cost,
                    "margin": margin,
                    "margin_pct": ratio(margin * 100.0, s.revenue),
                    "products_sold": products,
                })
            })
            .collect();
        Ok(json!({"range": span.json(), "categories": categories}))
    }

    /// `GET /api/v1/analytics/customer-segments` (module doc).
    pub fn customer_segments(&self) -> Result<Value> {
        let now = now_ms();
        let today = DAY.window_start(now);
        #[derive(Default)]
        struct Customer {
            revenue: f64,
            orders: f64,
            last_day: TimestampMs,
        }
        #[derive(Default)]
        struct Tier {
            customers: std::collections::HashSet<String>,
            revenue: f64,
            orders: f64,
        }
        let mut customers: HashMap<String, Customer> = HashMap::new();
        let mut tiers: BTreeMap<String, Tier> = BTreeMap::new();
        for row in self.rows(CUSTOMERS_ROLLUP, DAY, None, None, &[])? {
            let orders = value(&row, "orders").unwrap_or(0.0);
            let (Some(id), true) = (group(&row, "customer_id"), orders > 0.0) else {
                continue;
            };
            let revenue = value(&row, "revenue").unwrap_or(0.0);
            let tier = tiers
                .entry(group(&row, "loyalty_tier").unwrap_or_default())
                .or_default();
            tier.customers.insert(id.clone());
            tier.revenue += revenue;
            tier.orders += orders;
            let customer = customers.entry(id).or_insert(Customer {
                last_day: row.window_start,
                ..Customer::default()
            });
            customer.revenue += revenue;
            customer.orders += orders;
            customer.last_day = customer.last_day.max(row.window_start);
        }
        let by_tier: Vec<Value> = tiers
            .into_iter()
            .map(|(tier, t)| {
                json!({
                    "loyalty_tier": tier,
                    "customers": t.customers.len(),
                    "orders": t.orders as u64,
                    "revenue": t.revenue,
                    "avg_order_value": ratio(t.revenue, t.orders),
                    "revenue_per_customer": ratio(t.revenue, t.customers.len() as f64),
                })
            })
            .collect();
        #[derive(Default)]
        struct Segment {
            customers: usize,
            orders: f64,
            revenue: f64,
            recency_days: f64,
        }
        let mut segments: BTreeMap<&'static str, Segment> = BTreeMap::new();
        for customer in customers.values() {
            let recency = ((today - customer.last_day) / MS_PER_DAY).max(0);
            let segment = segments
                .entry(rfm_segment(recency, customer.orders as u64))
                .or_default();
            segment.customers += 1;
            segment.orders += customer.orders;
            segment.revenue += customer.revenue;
            segment.recency_days += recency as f64;
        }
        let rfm: Vec<Value> = RFM_SEGMENTS
            .iter()
            .map(|name| {
                let s = segments.remove(name).unwrap_or_default();
                let n = s.customers as f64;
                json!({
                    "segment": name,
                    "customers": s.customers,
                    "orders": s.orders as u64,
                    "revenue": s.revenue,
                    "avg_recency_days": ratio(s.recency_days, n),
                    "avg_frequency": ratio(s.orders, n),
                    "avg_monetary": ratio(s.revenue, n),
                })
            })
            .collect();
        Ok(json!({
            "as_of": format_rfc3339_ms(now),
            "customers": customers.len(),
            "by_loyalty_tier": by_tier,
            "rfm": rfm,
        }))
    }
}

/// RFM segments in the order the API lists them.
pub const RFM_SEGMENTS: [&str; 6] = [
    "champions",
    "loyal",
    "new",
    "promising",
    "at_risk",
    "hibernating",
];

/// The RFM segment of a customer (module doc).
pub fn rfm_segment(recency_days: i64, orders: u64) -> &'static str {
    let r = match recency_days {
        ..=7 => 3,
        8..=30 => 2,
        _ => 1,
    };
    let f = match orders {
        10.. => 3,
        3..=9 => 2,
        _ => 1,
    };
    match (r, f) {
        (3, 3) => "champions",
        (3 | 2, 2 | 3) => "loyal",
        (3, _) => "new",
        (2, _) => "promising",
        (_, 2 | 3) => "at_risk",
        _ => "hibernating",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfm_segments_follow_the_documented_grid() {
        assert_eq!(rfm_segment(0, 12), "champions");
        assert_eq!(rfm_segment(7, 10), "champions");
        assert_eq!(rfm_segment(8, 10), "loyal");
        assert_eq!(rfm_segment(2, 3), "loyal");
        assert_eq!(rfm_segment(0, 1), "new");
        assert_eq!(rfm_segment(20, 2), "promising");
        assert_eq!(rfm_segment(31, 5), "at_risk");
        assert_eq!(rfm_segment(90, 1), "hibernating");
    }

    #[test]
    fn spans_round_out_to_whole_windows() {
        let day = Span::new(Some(0), Some(2 * MS_PER_DAY)).unwrap();
        assert_eq!(day.width, DAY);
        let hour = Span::new(Some(MS_PER_HOUR + 5), Some(3 * MS_PER_HOUR - 1)).unwrap();
        assert_eq!(hour.width, HOUR);
        assert_eq!(hour.from, Some(MS_PER_HOUR));
        assert_eq!(hour.to, Some(3 * MS_PER_HOUR));
        assert!(Span::new(Some(5), Some(5)).is_err());
        assert_eq!(Span::new(None, None).unwrap().width, DAY);
    }
}
