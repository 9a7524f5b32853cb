//! The shop's plain records: products, suppliers and their offers, customers, and an order
//! as it is placed. Shared by the metadata store, the API, CSV import and the simulator;
//! no behaviour here.

use serde::{Deserialize, Serialize};

/// A product of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The SKU.
    pub id: String,
    pub name: String,
    pub category: String,
    /// Selling price per unit.
    pub price: f64,
    /// What a unit costs the shop (margin = price - cost).
    pub cost: f64,
    /// Units on hand.
    pub stock: i64,
    /// Stock at or below which the product needs reordering.
    pub reorder_point: i64,
    /// The usual supplier, if any.
    pub supplier_id: Option<String>,
    /// Days from placing a purchase order to the goods being on the shelf.
    pub lead_time_days: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    /// Share of purchase orders delivered complete and on time, in `[0, 1]`.
    pub reliability: f64,
    pub avg_delivery_days: f64,
}

/// What one supplier charges for one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierOffer {
    pub supplier_id: String,
    pub product_id: String,
    pub unit_price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// `bronze`, `silver`, `gold` or `platinum`.
    pub loyalty_tier: String,
    /// Home region: where the customer usually orders from.
    pub region: String,
    /// Sign-up time, epoch milliseconds.
    pub signup_ts: i64,
}

/// An order as a client places it (one product line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub customer_id: String,
    pub product_id: String,
    pub quantity: i64,
    /// Order time, epoch milliseconds; the server's clock when absent.
    pub ts: Option<i64>,
    /// Where the order comes from (shipping address or IP region); compared with the
    /// customer's home region by fraud scoring.
    pub region: String,
    pub payment_method: String,
    /// Client-chosen id (makes a retried order idempotent); assigned by the server when
    /// absent.
    pub id: Option<String>,
}
