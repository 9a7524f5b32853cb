//! Demand forecasts, reorder suggestions and purchase orders.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::{Error, Result};
use crate::store::{Db, Store, rfc3339, rfc3339_opt};

const MS_PER_DAY: f64 = 86_400_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionStatus {
    /// Waiting for approval; a refresh updates it in place.
    Pending,
    /// Approved: a purchase order exists.
    Approved,
    /// A refresh found the product no longer needs reordering.
    Expired,
}

impl SuggestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Approved => "approved",
            SuggestionStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<SuggestionStatus> {
        match text {
            "pending" => Some(SuggestionStatus::Pending),
            "approved" => Some(SuggestionStatus::Approved),
            "expired" => Some(SuggestionStatus::Expired),
            _ => None,
        }
    }
}

/// A reorder suggestion as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub id: String,
    pub product_id: String,
    pub supplier_id: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<f64>,
    /// `quantity * unit_price`, when the supplier's price is known.
    pub estimated_cost: Option<f64>,
    pub status: SuggestionStatus,
    /// The reorder plan, the forecast it used and the supplier scores.
    pub details: Value,
    #[serde(rename = "created_at", serialize_with = "rfc3339")]
    pub created_ms: i64,
    #[serde(rename = "updated_at", serialize_with = "rfc3339")]
    pub updated_ms: i64,
    #[serde(rename = "decided_at", serialize_with = "rfc3339_opt")]
    pub decided_ms: Option<i64>,
}

/// What a refresh proposes for one product.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestionDraft {
    /// Used only when no suggestion for the product is pending.
    pub new_id: String,
    pub product_id: String,
    pub supplier_id: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<f64>,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurchaseOrder {
    pub id: String,
    pub suggestion_id: String,
    pub product_id: String,
    pub supplier_id: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<f64>,
    pub total_cost: Option<f64>,
    pub status: String,
    #[serde(rename = "created_at", serialize_with = "rfc3339")]
    pub created_ms: i64,
    /// Creation plus the supplier's average delivery days.
    #[serde(rename = "expected_at", serialize_with = "rfc3339_opt")]
    pub expected_ms: Option<i64>,
}

/// A stored forecast: when it was computed and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredForecast {
    pub computed_ms: i64,
    pub forecast: Value,
}

const SUGGESTION_COLUMNS: &str = "id, product_id, supplier_id, quantity, unit_price, status, \
                                  details, created_ms, updated_ms, decided_ms";
const ORDER_COLUMNS: &str = "id, suggestion_id, product_id, supplier_id, quantity, unit_price, status, created_ms, expected_ms";

fn suggestion(row: &SqliteRow) -> Result<Suggestion> {
    let status: String = row.try_get("status")?;
    let details: String = row.try_get("details")?;
    let quantity: i64 = row.try_get("quantity")?;
    let unit_price: Option<f64> = row.try_get("unit_price")?;
    Ok(Suggestion {
        id: row.try_get("id")?,
        product_id: row.try_get("product_id")?,
        supplier_id: row.try_get("supplier_id")?,
        quantity,
        unit_price,
        estimated_cost: unit_price.map(|p| p * quantity as f64),
        status: SuggestionStatus::parse(&status).ok_or_else(|| {
            Error::Internal(format!("suggestion has an unknown status {status:?}"))
        })?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        decided_ms: row.try_get("decided_ms")?,
    })
}

fn purchase_order(row: &SqliteRow) -> Result<PurchaseOrder> {
    let quantity: i64 = row.try_get("quantity")?;
    let unit_price: Option<f64> = row.try_get("unit_price")?;
    Ok(PurchaseOrder {
        id: row.try_get("id")?,
        suggestion_id: row.try_get("suggestion_id")?,
        product_id: row.try_get("product_id")?,
        supplier_id: row.try_get("supplier_id")?,
        quantity,
        unit_price,
        total_cost: unit_price.map(|p| p * quantity as f64),
        status: row.try_get("status")?,
        created_ms: row.try_get("created_ms")?,
        expected_ms: row.try_get("expected_ms")?,
    })
}

impl Store {
    pub async fn save_forecast(
        &self,
        product_id: &str,
        horizon_days: i64,
        computed_ms: i64,
        forecast: &Value,
    ) -> Result<()> {
        sqlx::query::<Db>(
            "INSERT INTO demand_forecasts (product_id, horizon_days, computed_ms, forecast) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, horizon_days) DO UPDATE SET \
             computed_ms = excluded.computed_ms, forecast = excluded.forecast",
        )
        .bind(product_id)
        .bind(horizon_days)
        .bind(computed_ms)
        .bind(forecast.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn forecast(
        &self,
        product_id: &str,
        horizon_days: i64,
    ) -> Result<Option<StoredForecast>> {
        let row = sqlx::query(
            "SELECT computed_ms, forecast FROM demand_forecasts \
             WHERE product_id = $1 AND horizon_days = $2",
        )
        .bind(product_id)
        .bind(horizon_days)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("forecast")?;
        Ok(Some(StoredForecast {
            computed_ms: row.try_get("computed_ms")?,
            forecast: serde_json::from_str(&text).unwrap_or(Value::Null),
        }))
    }

    /// Applies one refresh: each draft updates its product's pending suggestion in place
    /// (keeping its id) or creates one; pending suggestions of the products in `expire`
    /// are marked expired. One database transaction.
    pub async fn apply_suggestions(
        &self,
        drafts: &[SuggestionDraft],
        expire: &[String],
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for draft in drafts {
            let details = draft.details.to_string();
            let updated = sqlx::query::<Db>(
                "UPDATE reorder_suggestions SET supplier_id = $1, quantity = $2, unit_price = $3, \
                 details = $4, updated_ms = $5 WHERE product_id = $6 AND status = 'pending'",
            )
            .bind(&draft.supplier_id)
            .bind(draft.quantity)
            .bind(draft.unit_price)
            .bind(&details)
            .bind(now_ms)
            .bind(&draft.product_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                sqlx::query::<Db>(
                    "INSERT INTO reorder_suggestions (id, product_id, supplier_id, quantity, \
                     unit_price, status, details, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7)",
                )
                .bind(&draft.new_id)
                .bind(&draft.product_id)
                .bind(&draft.supplier_id)
                .bind(draft.quantity)
                .bind(draft.unit_price)
                .bind(&details)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        for product_id in expire {
            sqlx::query::<Db>(
                "UPDATE reorder_suggestions SET status = 'expired', decided_ms = $1 \
                 WHERE product_id = $2 AND status = 'pending'",
            )
            .bind(now_ms)
            .bind(product_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Suggestions, newest first; only those with `status` when given.
    pub async fn suggestions(&self, status: Option<SuggestionStatus>) -> Result<Vec<Suggestion>> {
        let rows = match status {
            Some(status) => {
                let sql = format!(
                    "SELECT {SUGGESTION_COLUMNS} FROM reorder_suggestions WHERE status = $1 \
                     ORDER BY created_ms DESC, id DESC"
                );
                sqlx::query(&sql)
                    .bind(status.as_str())
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {SUGGESTION_COLUMNS} FROM reorder_suggestions \
                     ORDER BY created_ms DESC, id DESC"
                );
                sqlx::query(&sql).fetch_all(&self.reader).await?
            }
        };
        rows.iter().map(suggestion).collect()
    }

    pub async fn suggestion(&self, id: &str) -> Result<Option<Suggestion>> {
        let sql = format!("SELECT {SUGGESTION_COLUMNS} FROM reorder_suggestions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(suggestion).transpose()
    }

    /// Approves a pending suggestion and creates its purchase order, in one database
    /// transaction. A suggestion that is not pending (approved before, or expired) is a
    /// [`Error::Conflict`]; an unknown id is [`Error::NotFound`].
    pub async fn approve(&self, id: &str, order_id: &str, now_ms: i64) -> Result<PurchaseOrder> {
        let mut tx = self.writer.begin().await?;
        let approved = sqlx::query::<Db>(
            "UPDATE reorder_suggestions SET status = 'approved', decided_ms = $1 \
             WHERE id = $2 AND status = 'pending' \
             RETURNING product_id, supplier_id, quantity, unit_price",
        )
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = approved else {
            let status = sqlx::query_scalar::<Db, String>(
                "SELECT status FROM reorder_suggestions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Err(match status {
                None => Error::not_found("reorder suggestion", id),
                Some(status) => Error::Conflict(format!(
                    "reorder suggestion {id:?} is {status}, not pending: it cannot be approved"
                )),
            });
        };
        let product_id: String = row.try_get("product_id")?;
        let supplier_id: Option<String> = row.try_get("supplier_id")?;
        let quantity: i64 = row.try_get("quantity")?;
        let unit_price: Option<f64> = row.try_get("unit_price")?;
        let delivery_days = match &supplier_id {
            Some(supplier) => {
                sqlx::query_scalar::<Db, f64>(
                    "SELECT avg_delivery_days FROM suppliers WHERE id = $1",
                )
                .bind(supplier)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };
        let expected_ms = delivery_days.map(|days| now_ms + (days * MS_PER_DAY).round() as i64);
        sqlx::query::<Db>(
            "INSERT INTO purchase_orders (id, suggestion_id, product_id, supplier_id, quantity, \
             unit_price, status, created_ms, expected_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)",
        )
        .bind(order_id)
        .bind(id)
        .bind(&product_id)
        .bind(&supplier_id)
        .bind(quantity)
        .bind(unit_price)
        .bind(now_ms)
        .bind(expected_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PurchaseOrder {
            id: order_id.to_owned(),
            suggestion_id: id.to_owned(),
            product_id,
            supplier_id,
            quantity,
            unit_price,
            total_cost: unit_price.map(|p| p * quantity as f64),
            status: "open".into(),
            created_ms: now_ms,
            expected_ms,
        })
    }

    /// Purchase orders, newest first.
    pub async fn purchase_orders(&self) -> Result<Vec<PurchaseOrder>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM purchase_orders ORDER BY created_ms DESC, id DESC"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(purchase_order).collect()
    }

    /// Units on open purchase orders, per product.
    pub async fn on_order(&self) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS units FROM purchase_orders \
             WHERE status = 'open' GROUP BY product_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("product_id")?, row.try_get("units")?)))
            .collect()
    }
}
