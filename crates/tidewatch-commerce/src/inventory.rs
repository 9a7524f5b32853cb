//! Inventory: the low-stock report, demand forecasts per product and reorder
//! suggestions, all read from the `sales` rollup's daily windows and the metadata store.
//!
//! Definitions:
//! - **daily demand** (low stock): units sold in the last `demand_days` UTC days, today
//!   included, divided by `demand_days`.
//! - **days of cover**: stock / daily demand (none when nothing sold).
//! - **lead time**: the product's `lead_time_days`, or its supplier's average delivery
//!   days when the product gives none (0).
//! - **urgency**: `critical` when out of stock or the days of cover are below the lead
//!   time; `high` when they are below lead time plus the review period; `medium` when the
//!   stock is at or below the reorder point. Products with none of these are not listed.
//! - **demand history** (forecasts, reorders): units per complete UTC day, oldest first,
//!   from the product's first sale within the last `history_days` days to yesterday, days
//!   without sales as 0.
//! - **reorder quantity**: [`crate::reorder::reorder`] over the forecast (horizon = lead
//!   time + review period) with the best-scored supplier's delivery days as lead time; a
//!   product at or below its reorder point gets at least enough to reach twice its reorder
//!   point (stock and open orders counted), so a product without sales history is still
//!   replenished.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use tidewatch_ingest::ids::{assign_id, format_id};
use tidewatch_types::time::{format_rfc3339_ms, now_ms};
use tidewatch_types::{TimestampMs, WindowWidth};
use tracing::info;

use crate::error::{Error, Result};
use crate::forecast::forecast;
use crate::model::{Product, Supplier};
use crate::reorder::{ReorderInput, reorder, score_suppliers};
use crate::schema::{SALES_ROLLUP, TRANSACTIONS_STREAM};
use crate::service::Commerce;
use crate::store::{PurchaseOrder, Suggestion, SuggestionDraft, SuggestionStatus};

/// Longest forecast horizon, days.
pub const MAX_HORIZON_DAYS: usize = 365;
const DAY: WindowWidth = WindowWidth::constant::<86_400>();
const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Critical,
    High,
    Medium,
}

/// One product of the low-stock report.
#[derive(Debug, Clone, Serialize)]
pub struct LowStock {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub stock: i64,
    pub reorder_point: i64,
    pub daily_demand: f64,
    pub days_of_cover: Option<f64>,
    pub lead_time_days: f64,
    pub urgency: Urgency,
    pub supplier_id: Option<String>,
    /// Units on open purchase orders.
    pub on_order: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LowStockReport {
    /// Most urgent first, then fewest days of cover.
    pub products: Vec<LowStock>,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub demand_days: usize,
}

/// What a refresh did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefreshSummary {
    pub products: usize,
    pub forecasts: usize,
    /// Products with a pending suggestion after the refresh.
    pub suggestions: usize,
    /// Pending suggestions expired because their product no longer needs reordering.
    pub expired: usize,
    pub computed_at: String,
}

impl Commerce {
    /// Units sold per product over the daily windows starting in `[from, to)`, by day
    /// start; from the `sales` rollup.
    fn daily_units(
        &self,
        product_id: Option<&str>,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<HashMap<String, HashMap<TimestampMs, f64>>> {
        let filter: Vec<(String, String)> = product_id
            .map(|id| vec![("product_id".to_owned(), id.to_owned())])
            .unwrap_or_default();
        let (_, rows) = self.engine.rollup_query(
            TRANSACTIONS_STREAM,
            SALES_ROLLUP,
            Some(DAY),
            Some(from),
            Some(to),
            &filter,
        )?;
        let mut units: HashMap<String, HashMap<TimestampMs, f64>> = HashMap::new();
        for row in &rows {
            let Some(product) = crate::analytics::group(row, "product_id") else {
                continue;
            };
            let sold = crate::analytics::value(row, "units").unwrap_or(0.0);
            *units
                .entry(product)
                .or_default()
                .entry(row.window_start)
                .or_default() += sold;
        }
        Ok(units)
    }

    /// The product's demand history (module doc) ending yesterday, as of `now`.
    fn demand_history(&self, product_id: &str, now: TimestampMs) -> Result<Vec<f64>> {
        let today = DAY.window_start(now);
        let start = today - self.config.history_days as i64 * MS_PER_DAY;
        let units = self.daily_units(Some(product_id), start, today)?;
        let Some(days) = units.get(product_id) else {
            return Ok(Vec::new());
        };
        let Some(&first) = days.keys().min() else {
            return Ok(Vec::new());
        };
        Ok((first..today)
            .step_by(MS_PER_DAY as usize)
            .map(|day| days.get(&day).copied().unwrap_or(0.0))
            .collect())
    }

    fn lead_time(product: &Product, suppliers: &HashMap<String, Supplier>) -> f64 {
        if product.lead_time_days > 0.0 {
            return product.lead_time_days;
        }
        product
            .supplier_id
            .as_ref()
            .and_then(|id| suppliers.get(id))
            .map_or(0.0, |s| s.avg_delivery_days)
    }

    /// Products that need attention, most urgent first (module doc).
    pub async fn low_stock(&self) -> Result<LowStockReport> {
        let now = now_ms();
        let days = self.config.demand_days;
        let today = DAY.window_start(now);
        let from = today - (days as i64 - 1) * MS_PER_DAY;
        let sold = self.daily_units(None, from, today + MS_PER_DAY)?;
        let suppliers: HashMap<String, Supplier> = self
            .store
            .suppliers()
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let on_order = self.store.on_order().await?;
        let mut products = Vec::new();
        for product in self.store.products().await? {
            let units: f64 = sold.get(&product.id).map_or(0.0, |d| d.values().sum());
            let daily_demand = units / days as f64;
            let days_of_cover = (daily_demand > 0.0).then(|| product.stock as f64 / daily_demand);
            let lead_time_days = Self::lead_time(&product, &suppliers);
            let below = |limit: f64| days_of_cover.is_some_and(|cover| cover < limit);
            let urgency = if product.stock == 0 || below(lead_time_days) {
                Urgency::Critical
            } else if below(lead_time_days + self.config.review_days) {
                Urgency::High
            } else if product.stock <= product.reorder_point {
                Urgency::Medium
            } else {
                continue;
            };
            products.push(LowStock {
                on_order: on_order.get(&product.id).copied().unwrap_or(0),
                product_id: product.id,
                name: product.name,
                category: product.category,
                stock: product.stock,
                reorder_point: product.reorder_point,
                daily_demand,
                days_of_cover,
                lead_time_days,
                urgency,
                supplier_id: product.supplier_id,
            });
        }
        products.sort_by(|a, b| {
            a.urgency
                .cmp(&b.urgency)
                .then_with(|| {
                    let cover = |x: &LowStock| x.days_of_cover.unwrap_or(f64::INFINITY);
                    cover(a).total_cmp(&cover(b))
                })
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        let count = |u: Urgency| products.iter().filter(|p| p.urgency == u).count();
        Ok(LowStockReport {
            critical: count(Urgency::Critical),
            high: count(Urgency::High),
            medium: count(Urgency::Medium),
            products,
            demand_days: days,
        })
    }

    /// The demand forecast of a product over `horizon` days: the stored one when it is
    /// younger than `forecast_every`, else computed now and stored.
    pub async fn prediction(&self, product_id: &str, horizon: Option<usize>) -> Result<Value> {
        let horizon = horizon.unwrap_or(self.config.forecast_horizon_days);
        if !(1..=MAX_HORIZON_DAYS).contains(&horizon) {
            return Err(Error::InvalidRequest(format!(
                "parameter \"horizon\": {horizon} is not between 1 and {MAX_HORIZON_DAYS} days"
            )));
        }
        if self.store.product(product_id).await?.is_none() {
            return Err(Error::not_found("product", product_id));
        }
        let now = now_ms();
        let max_age = i64::try_from(self.config.forecast_every.as_millis()).unwrap_or(i64::MAX);
        let stored = self.store.forecast(product_id, horizon as i64).await?;
        let (computed_ms, body) = match stored {
            Some(stored) if now - stored.computed_ms < max_age => {
                (stored.computed_ms, stored.forecast)
            }
            _ => {
                let body = self.compute_forecast(product_id, horizon, now)?;
                self.store
                    .save_forecast(product_id, horizon as i64, now, &body)
                    .await?;
                (now, body)
            }
        };
        let mut out = json!({
            "product_id": product_id,
            "horizon_days": horizon,
            "computed_at": format_rfc3339_ms(computed_ms),
        });
        if let (Some(out), Value::Object(fields)) = (out.as_object_mut(), body) {
            out.extend(fields);
        }
        Ok(out)
    }

    /// A forecast as JSON, with the first forecast day's date.
    fn compute_forecast(
        &self,
        product_id: &str,
        horizon: usize,
        now: TimestampMs,
    ) -> Result<Value> {
        let history = self.demand_history(product_id, now)?;
        let result = forecast(&history, horizon);
        let mut body = serde_json::to_value(&result)
            .map_err(|e| Error::Internal(format!("forecast not serializable: {e}")))?;
        // Day 1 is today: the history ends yesterday.
        let today = DAY.window_start(now);
        if let Some(points) = body.get_mut("points").and_then(Value::as_array_mut) {
            for point in points {
                let day = point["day"].as_i64().unwrap_or(1);
                point["date"] = json!(format_rfc3339_ms(today + (day - 1) * MS_PER_DAY));
            }
        }
        Ok(body)
    }

    /// Recomputes and stores the default-horizon forecast of every product.
    pub async fn refresh_forecasts(&self) -> Result<RefreshSummary> {
        let _serial = self.refresh_lock.lock().await;
        let now = now_ms();
        let horizon = self.config.forecast_horizon_days;
        let products = self.store.products().await?;
        for product in &products {
            let body = self.compute_forecast(&product.id, horizon, now)?;
            self.store
                .save_forecast(&product.id, horizon as i64, now, &body)
                .await?;
        }
        info!(products = products.len(), "demand forecasts refreshed");
        Ok(RefreshSummary {
            products: products.len(),
            forecasts: products.len(),
            computed_at: format_rfc3339_ms(now),
            ..RefreshSummary::default()
        })
    }

    /// Recomputes the reorder suggestions of every product (module doc): a product that
    /// needs stock gets its pending suggestion created or updated in place, one that no
    /// longer does has it expired.
    pub async fn refresh_reorders(&self) -> Result<RefreshSummary> {
        let _serial = self.refresh_lock.lock().await;
        let now = now_ms();
        let products = self.store.products().await?;
        let offers = self.store.offers_by_product().await?;
        let suppliers: HashMap<String, Supplier> = self
            .store
            .suppliers()
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let on_order = self.store.on_order().await?;
        let (mut drafts, mut expire) = (Vec::new(), Vec::new());
        for product in &products {
            let ordered = on_order.get(&product.id).copied().unwrap_or(0);
            match self.plan(product, &offers, &suppliers, ordered, now)? {
                Some(draft) => drafts.push(draft),
                None => expire.push(product.id.clone()),
            }
        }
        let before = self
            .store
            .suggestions(Some(SuggestionStatus::Pending))
            .await?;
        self.store.apply_suggestions(&drafts, &expire, now).await?;
        let expired = before
            .iter()
            .filter(|s| expire.contains(&s.product_id))
            .count();
        info!(
            products = products.len(),
            suggestions = drafts.len(),
            expired,
            "reorder suggestions refreshed"
        );
        Ok(RefreshSummary {
            products: products.len(),
            forecasts: 0,
            suggestions: drafts.len(),
            expired,
            computed_at: format_rfc3339_ms(now),
        })
    }

    /// The suggestion a product needs now, if any.
    fn plan(
        &self,
        product: &Product,
        offers: &HashMap<String, Vec<(Supplier, f64)>>,
        suppliers: &HashMap<String, Supplier>,
        on_order: i64,
        now: TimestampMs,
    ) -> Result<Option<SuggestionDraft>> {
        let scores = offers
            .get(&product.id)
            .map(|o| score_suppliers(o))
            .unwrap_or_default();
        let best = scores.first();
        let lead_time_days = match best {
            Some(best) if best.delivery_days.is_finite() => best.delivery_days,
            _ => Self::lead_time(product, suppliers),
        };
        let horizon = (lead_time_days + self.config.review_days).ceil().max(1.0) as usize;
        let history = self.demand_history(&product.id, now)?;
        let predicted = forecast(&history, horizon.min(MAX_HORIZON_DAYS));
        let daily_mean = if predicted.points.is_empty() {
            0.0
        } else {
            predicted.points.iter().map(|p| p.mean).sum::<f64>() / predicted.points.len() as f64
        };
        let plan = reorder(&ReorderInput {
            forecast_daily_mean: daily_mean,
            daily_demand_stddev: predicted.daily_stddev,
            lead_time_days,
            review_days: self.config.review_days,
            service_level: self.config.service_level,
            on_hand: product.stock,
            on_order,
        });
        let position = product.stock + on_order;
        let floor = if position <= product.reorder_point {
            (2 * product.reorder_point - position).max(1)
        } else {
            0
        };
        let quantity = plan.quantity.max(floor);
        if quantity <= 0 {
            return Ok(None);
        }
        let rule = if plan.quantity >= floor {
            "forecast"
        } else {
            "reorder_point"
        };
        let (supplier_id, unit_price) = match best {
            Some(best) => (Some(best.supplier_id.clone()), Some(best.price)),
            None => (product.supplier_id.clone(), None),
        };
        Ok(Some(SuggestionDraft {
            new_id: format_id(assign_id()),
            product_id: product.id.clone(),
            supplier_id,
            quantity,
            unit_price,
            details: json!({
                "rule": rule,
                "stock": product.stock,
                "on_order": on_order,
                "reorder_point": product.reorder_point,
                "lead_time_days": lead_time_days,
                "review_days": self.config.review_days,
                "service_level": self.config.service_level,
                "plan": plan,
                "forecast": {
                    "method": predicted.method,
                    "daily_mean": daily_mean,
                    "daily_stddev": predicted.daily_stddev,
                    "history_days": predicted.history_days,
                },
                "suppliers": scores,
            }),
        }))
    }

    /// Suggestions with `status` (all when None), newest first.
    pub async fn suggestions(&self, status: Option<&str>) -> Result<Vec<Suggestion>> {
        let status = match status {
            None | Some("all") => None,
            Some(text) => Some(SuggestionStatus::parse(text).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "parameter \"status\": {text:?} is not pending, approved, expired or all"
                ))
            })?),
        };
        self.store.suggestions(status).await
    }

    /// Approves a pending suggestion: creates its purchase order. Twice is a conflict.
    pub async fn approve(&self, suggestion_id: &str) -> Result<PurchaseOrder> {
        let order_id = format_id(assign_id());
        self.store.approve(suggestion_id, &order_id, now_ms()).await
    }

    pub async fn purchase_orders(&self) -> Result<Vec<PurchaseOrder>> {
        self.store.purchase_orders().await
    }
}
