//! The commerce domain's stream and rollups, declared in code.
//!
//! One event per sale in `commerce.transactions`. Tags are what the API filters and the
//! rollups group by (dictionary-encoded, so a few thousand distinct customers are cheap);
//! fields are the figures. The rollups are the analytics: every dashboard and analytics
//! figure is read from them, never recomputed from raw events per request.

use serde_json::json;
use tidewatch_engine::RollupSpec;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

/// Sales: one event per transaction, its id the transaction id.
pub const TRANSACTIONS_STREAM: &str = "commerce.transactions";

/// Per category and product, at 1 h and 1 d: revenue, units, cost of goods, orders.
pub const SALES_ROLLUP: &str = "sales";
/// All sales together, at 1 m, 1 h and 1 d: the live sales metrics.
pub const TOTALS_ROLLUP: &str = "totals";
/// Per risk class (`suspicious` or `ok`), at 1 h and 1 d: the suspicious counts.
pub const RISK_ROLLUP: &str = "risk";
/// Per customer and loyalty tier, at 1 d: active customers, tiers and RFM segments.
pub const CUSTOMERS_ROLLUP: &str = "customers";
/// Commerce alerts per kind on the shared alerts stream, at 1 h and 1 d.
pub const ALERTS_ROLLUP: &str = "commerce_alerts";

/// `risk` tag values.
pub const RISK_SUSPICIOUS: &str = "suspicious";
pub const RISK_OK: &str = "ok";

pub const TAGS: [&str; 7] = [
    "customer_id",
    "product_id",
    "category",
    "region",
    "loyalty_tier",
    "payment_method",
    "risk",
];

pub fn transactions_schema() -> StreamSchema {
    let field = |name: &str, field_type| FieldDef {
        name: name.into(),
        field_type,
    };
    StreamSchema {
        name: TRANSACTIONS_STREAM.into(),
        tags: TAGS.iter().map(|t| (*t).to_owned()).collect(),
        fields: vec![
            // Total paid: unit_price * quantity.
            field("amount", FieldType::F64),
            field("quantity", FieldType::I64),
            field("unit_price", FieldType::F64),
            // Cost of the goods sold: the product's unit cost * quantity.
            field("cost", FieldType::F64),
            // The product's stock right after this sale (null for imported history).
            field("stock_after", FieldType::I64),
            field("fraud_score", FieldType::F64),
            field("suspicious", FieldType::Bool),
            // The fraud reasons as JSON text.
            field("reasons", FieldType::Str),
        ],
    }
}

pub fn transactions_rollups() -> Vec<RollupSpec> {
    let sales = json!({
        "name": SALES_ROLLUP,
        "group_by": ["category", "product_id"],
        "windows": ["1h", "1d"],
        "aggregates": {
            "revenue": "sum(amount)", "units": "sum(quantity)", "cost": "sum(cost)",
            "orders": "count"
        }
    });
    let totals = json!({
        "name": TOTALS_ROLLUP,
        "group_by": [],
        "windows": ["1m", "1h", "1d"],
        "aggregates": {
            "revenue": "sum(amount)", "units": "sum(quantity)", "cost": "sum(cost)",
            "orders": "count"
        }
    });
    let risk = json!({
        "name": RISK_ROLLUP,
        "group_by": ["risk"],
        "windows": ["1h", "1d"],
        "aggregates": {"orders": "count", "amount": "sum(amount)", "max_score": "max(fraud_score)"}
    });
    let customers = json!({
        "name": CUSTOMERS_ROLLUP,
        "group_by": ["customer_id", "loyalty_tier"],
        "windows": ["1d"],
        "aggregates": {"revenue": "sum(amount)", "units": "sum(quantity)", "orders": "count"}
    });
    parse_all([sales, totals, risk, customers])
}

/// The rollup on the shared alerts stream that counts commerce alerts for the overview.
pub fn alerts_rollup() -> Vec<RollupSpec> {
    parse_all([json!({
        "name": ALERTS_ROLLUP,
        "group_by": ["domain", "kind"],
        "windows": ["1h", "1d"],
        "aggregates": {"alerts": "count"}
    })])
}

fn parse_all<const N: usize>(specs: [serde_json::Value; N]) -> Vec<RollupSpec> {
    // Fixed, valid declarations: a parse failure is a bug the tests catch.
    specs
        .into_iter()
        .filter_map(|spec| serde_json::from_value(spec).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarations_are_valid() {
        let schema = transactions_schema();
        schema.validate().unwrap();
        let rollups = transactions_rollups();
        assert_eq!(rollups.len(), 4);
        for rollup in &rollups {
            rollup.validate(&schema).unwrap();
        }
        let alerts = alerts_rollup();
        assert_eq!(alerts.len(), 1);
        alerts[0].validate(&tidewatch_alerts::schema()).unwrap();
    }
}
