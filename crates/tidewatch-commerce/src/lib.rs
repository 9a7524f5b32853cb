//! Commerce domain: a shop's products, suppliers, customers and orders turned into the
//! analytics of a retail dashboard: a fraud score for every transaction, a daily demand
//! forecast per product, supplier scores and reorder suggestions.
//!
//! The logic modules are pure functions and state machines over the plain records of
//! [`model`]; they know nothing of storage or HTTP, so they are tested with hand-checked
//! cases and measured on the simulator's labelled data (`tests/quality.rs`).
//!
//! Layout:
//! - [`model`]: products, suppliers and offers, customers, order requests.
//! - [`fraud`]: the per-customer fraud scorer (velocity, amount z-score, unusual hour,
//!   new customer with a large amount, region mismatch) and its verdicts with evidence.
//! - [`forecast`]: daily demand forecast (additive Holt-Winters, weekly season) with 95 %
//!   intervals and a backtest against the seasonal-naive baseline.
//! - [`reorder`]: supplier scores (price 40 %, reliability 35 %, delivery 25 %) and the
//!   order-up-to reorder quantity with safety stock.
//!
//! Around them, the domain attached to an engine (`docs/commerce.md`):
//! - [`store`]: the metadata store (SQLite in `<data_dir>/commerce.db` through sqlx,
//!   portable SQL, versioned migrations in `migrations/`): entities, the transaction
//!   ledger, forecasts, suggestions, purchase orders.
//! - [`schema`]: the `commerce.transactions` stream and its rollups.
//! - [`service`]: [`Commerce`]: open and recover, create and query transactions.
//! - [`inventory`]: low stock, forecasts per product, reorder suggestions and approval.
//! - [`analytics`]: the dashboard overview and sales analytics, read from the rollups.
//! - [`import`]: all-or-nothing CSV import with a per-row error report.
//! - [`jobs`]: the scheduled forecast and reorder refreshes.
//! - [`error`]: [`Error`], what the server tells the client.

pub mod analytics;
pub mod error;
pub mod forecast;
pub mod fraud;
pub mod import;
pub mod inventory;
pub mod jobs;
pub mod model;
pub mod reorder;
pub mod schema;
pub mod service;
pub mod store;

pub use forecast::{Forecast, ForecastPoint, forecast};
pub use fraud::{FraudConfig, FraudReason, FraudScorer, FraudVerdict, TxFacts};
pub use model::{Customer, OrderRequest, Product, Supplier, SupplierOffer};
pub use reorder::{ReorderInput, ReorderPlan, SupplierScore, reorder, score_suppliers};

pub use error::{Error, Result};
pub use import::{ImportError, ImportFiles, ImportProgress, ImportSummary, RowProblem};
pub use service::{Commerce, CommerceConfig, DOMAIN, NewTransaction, TransactionQuery};
