//! [`Commerce`]: the commerce domain attached to an engine and a metadata store.
//!
//! Entities (products, suppliers, customers, suggestions, purchase orders) live in the
//! [`Store`]; transactions are events of `commerce.transactions`, addressable by id through
//! the store's ledger. Creating a transaction:
//!
//! 1. validate the request, read the product and the customer;
//! 2. reserve: ledger row `pending` + `stock = stock - q WHERE stock >= q`, one database
//!    transaction (409 when the stock is short, nothing written);
//! 3. score it for fraud (one scorer behind a mutex; it learns every scored transaction);
//! 4. write the event to the stream (durable under the fsync policy when this returns);
//!    if that fails, release the reservation (stock back, id forgotten) and fail;
//! 5. mark the ledger row `committed`; raise a fraud alert if it is suspicious.
//!
//! Steps 2-5 run in a task of their own, so a client that disconnects mid-way does not
//! leave a reservation behind. A crash between 2 and 5 leaves a `pending` row that
//! [`Commerce::open`] resolves against the stream: committed if the event is there,
//! released otherwise. So once `open` returns, every ledger row has its event and every
//! reserved unit belongs to a stored transaction.
//!
//! Queries are split by concern: this file (lifecycle, transactions), [`crate::inventory`]
//! (low stock, forecasts, reorders) and [`crate::analytics`] (rollup-based figures).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidewatch_alerts::{Alert, AlertSink, Severity};
use tidewatch_engine::{Engine, EventsRequest};
use tidewatch_ingest::Format;
use tidewatch_ingest::ids::{assign_id, format_id, parse_id};
use tidewatch_types::TimestampMs;
use tidewatch_types::time::{format_rfc3339_ms, now_ms, parse_rfc3339_ms};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::fraud::{FraudConfig, FraudScorer, FraudVerdict, TxFacts};
use crate::model::{Customer, OrderRequest, Product};
use crate::schema::{
    RISK_OK, RISK_SUSPICIOUS, TRANSACTIONS_STREAM, alerts_rollup, transactions_rollups,
    transactions_schema,
};
use crate::store::{LedgerEntry, LedgerState, Reservation, Store};

/// The `domain` tag of this domain's alerts.
pub const DOMAIN: &str = "commerce";
/// The `kind` of a suspicious-transaction alert.
pub const FRAUD_ALERT: &str = "fraud";

/// Most units one transaction may buy.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Longest id, name, region or payment method accepted.
pub const MAX_TEXT: usize = 128;
/// Score from which a fraud alert is critical rather than a warning.
const CRITICAL_SCORE: f64 = 0.8;
const MS_PER_DAY: i64 = 86_400_000;
/// Events read per page when scanning the stream (warm-up, lookups).
const SCAN_PAGE: usize = 1000;

/// `[commerce]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommerceConfig {
    /// How often the demand forecasts of every product are recomputed.
    #[serde(with = "humantime_serde")]
    pub forecast_every: Duration,
    /// How often reorder suggestions are recomputed.
    #[serde(with = "humantime_serde")]
    pub reorder_every: Duration,
    /// Days the scheduled forecasts cover (and the default `horizon` of the API).
    pub forecast_horizon_days: usize,
    /// Days of daily demand history the forecasts read.
    pub history_days: usize,
    /// Days between two reorder reviews: a reorder covers lead time plus this.
    pub review_days: f64,
    /// Chance of no stock-out before the next delivery that safety stock aims for.
    pub service_level: f64,
    /// Days over which the mean daily demand of the low-stock report is taken.
    pub demand_days: usize,
    /// Days of stored transactions the fraud scorer relearns at start.
    pub fraud_warmup_days: u32,
    pub fraud: FraudConfig,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            forecast_every: Duration::from_secs(6 * 3600),
            reorder_every: Duration::from_secs(12 * 3600),
            forecast_horizon_days: 14,
            history_days: 90,
            review_days: 7.0,
            service_level: 0.95,
            demand_days: 14,
            fraud_warmup_days: 30,
            fraud: FraudConfig::default(),
        }
    }
}

impl CommerceConfig {
    pub fn test_config() -> Self {
        CommerceConfig::default()
    }

    /// Every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.forecast_every < Duration::from_secs(1) {
            problems.push("commerce.forecast_every must be at least 1s");
        }
        if self.reorder_every < Duration::from_secs(1) {
            problems.push("commerce.reorder_every must be at least 1s");
        }
        if !(1..=crate::inventory::MAX_HORIZON_DAYS).contains(&self.forecast_horizon_days) {
            problems.push("commerce.forecast_horizon_days must be between 1 and 365");
        }
        if !(1..=1440).contains(&self.history_days) {
            problems.push("commerce.history_days must be between 1 and 1440");
        }
        if !(1..=1440).contains(&self.demand_days) {
            problems.push("commerce.demand_days must be between 1 and 1440");
        }
        if !(self.review_days.is_finite() && self.review_days >= 0.0) {
            problems.push("commerce.review_days must be a non-negative number");
        }
        if !(self.service_level > 0.0 && self.service_level < 1.0) {
            problems.push("commerce.service_level must be between 0 and 1 (exclusive)");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidRequest(problems.join("; ")))
        }
    }
}

/// A transaction as `POST /api/v1/transactions` receives it. Only `customer_id`,
/// `product_id` and `quantity` are required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTransaction {
    pub id: Option<String>,
    /// RFC 3339 or epoch milliseconds; the server's clock when absent.
    pub ts: Option<Value>,
    pub customer_id: Option<String>,
    pub product_id: Option<String>,
    pub quantity: Option<i64>,
    /// Where the order comes from; the customer's home region when absent.
    pub region: Option<String>,
    /// `card` when absent.
    pub payment_method: Option<String>,
}

/// What creating a transaction did.
#[derive(Debug, Clone)]
pub struct Created {
    /// The transaction as `GET /api/v1/transactions/{id}` shows it.
    pub transaction: Value,
    /// False when the id was already stored with the same content: an idempotent retry.
    pub created: bool,
}

/// Filters and paging of a transactions query.
#[derive(Debug, Clone, Default)]
pub struct TransactionQuery {
    pub from: Option<TimestampMs>,
    pub to: Option<TimestampMs>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// `(name, value)` among [`FILTERS`].
    pub filters: Vec<(String, String)>,
}

/// Filters a transactions query accepts: the stream's tags, and `suspicious`.
pub const FILTERS: [&str; 7] = [
    "customer_id",
    "product_id",
    "category",
    "region",
    "loyalty_tier",
    "payment_method",
    "suspicious",
];

/// A page of transactions, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionsPage {
    pub transactions: Vec<Value>,
    pub next_cursor: Option<String>,
}

pub struct Commerce {
    pub(crate) engine: Arc<Engine>,
    pub(crate) store: Store,
    pub(crate) config: CommerceConfig,
    alerts: AlertSink,
    /// One scorer for all transactions: per-customer histories, learnt in arrival order.
    scorer: Mutex<FraudScorer>,
    /// Serialises refreshes of forecasts and suggestions (scheduled and on demand).
    pub(crate) refresh_lock: tokio::sync::Mutex<()>,
}

impl Commerce {
    /// Declares the commerce stream and rollups (idempotently), opens
    /// `<data_dir>/commerce.db` (migrating it), resolves ledger rows left `pending` by a
    /// crash, and relearns the fraud scorer from the last `fraud_warmup_days` of stored
    /// transactions.
    pub async fn open(
        engine: Arc<Engine>,
        data_dir: &Path,
        config: CommerceConfig,
        alerts: AlertSink,
    ) -> Result<Commerce> {
        config.validate()?;
        engine.declare_stream(transactions_schema())?;
        for rollup in transactions_rollups() {
            engine.declare_rollup(TRANSACTIONS_STREAM, rollup)?;
        }
        tidewatch_alerts::declare(&engine)?;
        for rollup in alerts_rollup() {
            engine.declare_rollup(tidewatch_alerts::ALERTS_STREAM, rollup)?;
        }
        let store = Store::open(data_dir).await?;
        let commerce = Commerce {
            engine,
            store,
            scorer: Mutex::new(FraudScorer::new(config.fraud.clone())),
            config,
            alerts,
            refresh_lock: tokio::sync::Mutex::new(()),
        };
        commerce.resolve_pending().await?;
        commerce.warm_scorer().await?;
        Ok(commerce)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn config(&self) -> &CommerceConfig {
        &self.config
    }

    /// Closes the metadata store.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Ledger rows still `pending` were reserved but maybe never written: keep those whose
    /// event is in the stream, release the others (their units go back to stock).
    async fn resolve_pending(&self) -> Result<()> {
        let pending = self.store.pending_entries().await?;
        if pending.is_empty() {
            return Ok(());
        }
        let (mut kept, mut released) = (Vec::new(), 0usize);
        for entry in &pending {
            if self.find_event(&entry.id, entry.ts)?.is_some() {
                kept.push(entry.id.clone());
            } else if self.store.release(&entry.id).await? {
                released += 1;
            }
        }
        self.store.confirm(&kept).await?;
        warn!(
            committed = kept.len(),
            released, "resolved transactions left pending by an interrupted run"
        );
        Ok(())
    }

    /// Scores the stored transactions of the last `fraud_warmup_days` in time order, so
    /// the per-customer histories are as if the server had not restarted.
    async fn warm_scorer(&self) -> Result<()> {
        let since = now_ms() - i64::from(self.config.fraud_warmup_days) * MS_PER_DAY;
        let customers: HashMap<String, Customer> = self
            .store
            .customers()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut facts = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.engine.events(
                TRANSACTIONS_STREAM,
                &EventsRequest {
                    from: Some(since),
                    limit: Some(SCAN_PAGE),
                    cursor,
                    ..EventsRequest::default()
                },
            )?;
            for event in &page.events {
                if let Some(fact) = tx_facts(event, &customers) {
                    facts.push(fact);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        facts.sort_by_key(|f| f.ts);
        let mut scorer = self.scorer.lock();
        for fact in &facts {
            scorer.score(fact);
        }
        if !facts.is_empty() {
            info!(
                transactions = facts.len(),
                customers = scorer.customers(),
                "fraud scorer relearnt"
            );
        }
        Ok(())
    }

    /// Validates a request into an order, reading the product and customer it names.
    /// Every problem is reported at once (422 `invalid_transaction`).
    pub async fn validate_order(
        &self,
        request: &NewTransaction,
    ) -> Result<(OrderRequest, Product, Customer)> {
        let mut problems: Vec<Value> = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(json!({"field": field, "message": message}));
        };
        let id = match &request.id {
            None => None,
            Some(text) => match parse_id(text) {
                Some(id) => Some(format_id(id)),
                None => {
                    problem("id", format!("{text:?} is not a UUID"));
                    None
                }
            },
        };
        let now = now_ms();
        let max_future = i64::try_from(self.engine.config().max_future.as_millis()).unwrap_or(0);
        let ts = match &request.ts {
            None => Some(now),
            Some(value) => match parse_ts(value) {
                Some(ts) if ts < 0 => {
                    problem("ts", "must not be before 1970".into());
                    None
                }
                Some(ts) if ts > now + max_future => {
                    problem(
                        "ts",
                        format!(
                            "{} is more than {} s in the future",
                            format_rfc3339_ms(ts),
                            max_future / 1000
                        ),
                    );
                    None
                }
                Some(ts) => Some(ts),
                None => {
                    problem(
                        "ts",
                        format!("{value} is neither an RFC 3339 time nor epoch milliseconds"),
                    );
                    None
                }
            },
        };
        let mut text = |field: &str, value: &Option<String>, required: bool| match value {
            None if required => {
                problem(field, "is required".into());
                None
            }
            None => None,
            Some(v) if v.trim().is_empty() => {
                problem(field, "must not be empty".into());
                None
            }
            Some(v) if v.len() > MAX_TEXT => {
                problem(field, format!("is longer than {MAX_TEXT} bytes"));
                None
            }
            Some(v) => Some(v.trim().to_owned()),
        };
        let customer_id = text("customer_id", &request.customer_id, true);
        let product_id = text("product_id", &request.product_id, true);
        let region = text("region", &request.region, false);
        let payment_method = text("payment_method", &request.payment_method, false);
        let quantity = match request.quantity {
            None => {
                problem("quantity", "is required".into());
                None
            }
            Some(q) if !(1..=MAX_QUANTITY).contains(&q) => {
                problem(
                    "quantity",
                    format!("{q} is not between 1 and {MAX_QUANTITY}"),
                );
                None
            }
            Some(q) => Some(q),
        };
        let product = match &product_id {
            Some(id) => {
                let product = self.store.product(id).await?;
                if product.is_none() {
                    problem("product_id", format!("no product {id:?} exists"));
                }
                product
            }
            None => None,
        };
        let customer = match &customer_id {
            Some(id) => {
                let customer = self.store.customer(id).await?;
                if customer.is_none() {
                    problem("customer_id", format!("no customer {id:?} exists"));
                }
                customer
            }
            None => None,
        };
        let (Some(ts), Some(quantity), Some(product), Some(customer), true) =
            (ts, quantity, product, customer, problems.is_empty())
        else {
            let message = format!(
                "the transaction is invalid ({} problem{}); nothing was written",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            return Err(Error::invalid(message, json!({ "problems": problems })));
        };
        let order = OrderRequest {
            customer_id: customer.id.clone(),
            product_id: product.id.clone(),
            quantity,
            ts: Some(ts),
            region: region.unwrap_or_else(|| customer.region.clone()),
            payment_method: payment_method.unwrap_or_else(|| "card".to_owned()),
            id,
        };
        Ok((order, product, customer))
    }

    /// Creates a transaction (module doc): validated, stock reserved atomically, scored,
    /// written to the stream. Retrying with the same `id` and content returns the stored
    /// transaction (`created: false`).
    pub async fn create_transaction(self: &Arc<Self>, request: &NewTransaction) -> Result<Created> {
        let (order, product, customer) = self.validate_order(request).await?;
        self.place(order, product, customer).await
    }

    /// Places a validated order; see [`Commerce::create_transaction`].
    pub async fn place(
        self: &Arc<Self>,
        order: OrderRequest,
        product: Product,
        customer: Customer,
    ) -> Result<Created> {
        let commerce = Arc::clone(self);
        // Its own task: dropping the caller (a client gone) must not strand a reservation.
        tokio::spawn(async move { commerce.place_inner(order, product, customer).await })
            .await
            .map_err(|e| Error::Internal(format!("the transaction task failed: {e}")))?
    }

    async fn place_inner(
        &self,
        order: OrderRequest,
        product: Product,
        customer: Customer,
    ) -> Result<Created> {
        let id = order.id.clone().unwrap_or_else(|| format_id(assign_id()));
        let ts = order.ts.unwrap_or_else(now_ms);
        let entry = LedgerEntry {
            id: id.clone(),
            ts,
            customer_id: order.customer_id.clone(),
            product_id: order.product_id.clone(),
            quantity: order.quantity,
            reserved: order.quantity,
            state: LedgerState::Pending,
            created_ms: now_ms(),
        };
        let stock_after = match self.store.reserve(&entry).await? {
            Reservation::Reserved { stock_after } => stock_after,
            Reservation::Existing(existing) => return self.replay(&entry, &existing),
            Reservation::Insufficient { available } => {
                return Err(Error::InsufficientStock {
                    product_id: order.product_id,
                    requested: order.quantity,
                    available,
                });
            }
            Reservation::UnknownProduct => {
                return Err(Error::invalid(
                    format!("no product {:?} exists", order.product_id),
                    json!({"problems": [{"field": "product_id", "message": "does not exist"}]}),
                ));
            }
        };
        let amount = product.price * order.quantity as f64;
        let verdict = self.scorer.lock().score(&TxFacts {
            customer_id: customer.id.clone(),
            ts,
            amount,
            customer_region: customer.region.clone(),
            order_region: order.region.clone(),
            customer_signup_ts: customer.signup_ts,
        });
        let event = Sale {
            id: &id,
            ts,
            order: &order,
            product: &product,
            loyalty_tier: &customer.loyalty_tier,
            stock_after: Some(stock_after),
            verdict: &verdict,
            unit_price: product.price,
        }
        .event();
        let body = Value::Array(vec![event.clone()]).to_string();
        if let Err(e) = self
            .engine
            .ingest(
                TRANSACTIONS_STREAM,
                body.as_bytes(),
                Format::JsonArray,
                false,
            )
            .await
        {
            match self.store.release(&id).await {
                Ok(_) => {}
                Err(release) => warn!(
                    transaction = %id, error = %release,
                    "cannot release the reservation now; the next start will"
                ),
            }
            return Err(e.into());
        }
        if let Err(e) = self.store.confirm(std::slice::from_ref(&id)).await {
            // The event is durable; the next start confirms the row from the stream.
            warn!(transaction = %id, error = %e, "transaction stored, ledger not yet confirmed");
        }
        if verdict.suspicious {
            self.raise_fraud_alert(&id, ts, &order, amount, &verdict);
        }
        Ok(Created {
            transaction: render(event),
            created: true,
        })
    }

    /// The answer to a request whose id is in the ledger already.
    fn replay(&self, request: &LedgerEntry, existing: &LedgerEntry) -> Result<Created> {
        let same = existing.customer_id == request.customer_id
            && existing.product_id == request.product_id
            && existing.quantity == request.quantity;
        if !same {
            return Err(Error::Conflict(format!(
                "transaction id {:?} is already used by a different transaction",
                request.id
            )));
        }
        match self.find_event(&existing.id, existing.ts)? {
            Some(event) if existing.state == LedgerState::Committed => Ok(Created {
                transaction: render(event),
                created: false,
            }),
            _ => Err(Error::Conflict(format!(
                "transaction {:?} is still being processed; retry shortly",
                request.id
            ))),
        }
    }

    /// The stored transaction `id` (any UUID spelling).
    pub async fn transaction(&self, id: &str) -> Result<Value> {
        let canonical = parse_id(id)
            .map(format_id)
            .ok_or_else(|| Error::InvalidRequest(format!("{id:?} is not a transaction id")))?;
        let entry = self
            .store
            .ledger_entry(&canonical)
            .await?
            .ok_or_else(|| Error::not_found("transaction", id))?;
        match self.find_event(&entry.id, entry.ts)? {
            Some(event) => Ok(render(event)),
            None => Err(Error::not_found("transaction", id)),
        }
    }

    /// The event of transaction `id` at time `ts`, from the stream.
    fn find_event(&self, id: &str, ts: TimestampMs) -> Result<Option<Value>> {
        let mut cursor = None;
        loop {
            let page = self.engine.events(
                TRANSACTIONS_STREAM,
                &EventsRequest {
                    from: Some(ts),
                    to: Some(ts.saturating_add(1)),
                    limit: Some(SCAN_PAGE),
                    cursor,
                    tags: Vec::new(),
                },
            )?;
            if let Some(event) = page.events.into_iter().find(|e| e["id"] == id) {
                return Ok(Some(event));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }

    /// Transactions, newest first, filtered and paged.
    pub fn transactions(&self, query: &TransactionQuery) -> Result<TransactionsPage> {
        let mut tags = Vec::with_capacity(query.filters.len());
        for (name, value) in &query.filters {
            match name.as_str() {
                "suspicious" => {
                    let risk = match value.as_str() {
                        "true" => RISK_SUSPICIOUS,
                        "false" => RISK_OK,
                        other => {
                            return Err(Error::InvalidRequest(format!(
                                "parameter \"suspicious\": {other:?} is not true or false"
                            )));
                        }
                    };
                    tags.push(("risk".to_owned(), risk.to_owned()));
                }
                known if FILTERS.contains(&known) => tags.push((name.clone(), value.clone())),
                other => {
                    return Err(Error::InvalidRequest(format!(
                        "unknown parameter {other:?}; filters: {}",
                        FILTERS.join(", ")
                    )));
                }
            }
        }
        let page = self.engine.events(
            TRANSACTIONS_STREAM,
            &EventsRequest {
                from: query.from,
                to: query.to,
                limit: query.limit,
                cursor: query.cursor.clone(),
                tags,
            },
        )?;
        Ok(TransactionsPage {
            transactions: page.events.into_iter().map(render).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Suspicious transactions, newest first.
    pub fn suspicious(&self, query: &TransactionQuery) -> Result<TransactionsPage> {
        if query.filters.iter().any(|(name, _)| name == "suspicious") {
            return Err(Error::InvalidRequest(
                "this route lists suspicious transactions only; drop \"suspicious\"".into(),
            ));
        }
        let mut query = query.clone();
        query
            .filters
            .push(("suspicious".to_owned(), "true".to_owned()));
        self.transactions(&query)
    }

    pub async fn products(&self) -> Result<Vec<Product>> {
        self.store.products().await
    }

    pub async fn product(&self, id: &str) -> Result<Product> {
        self.store
            .product(id)
            .await?
            .ok_or_else(|| Error::not_found("product", id))
    }

    pub async fn customers(&self) -> Result<Vec<Customer>> {
        self.store.customers().await
    }

    /// Suppliers, each with its offers.
    pub async fn suppliers(&self) -> Result<Vec<Value>> {
        let offers = self.store.offers().await?;
        let suppliers = self.store.suppliers().await?;
        Ok(suppliers
            .into_iter()
            .map(|s| {
                let mine: Vec<Value> = offers
                    .iter()
                    .filter(|o| o.supplier_id == s.id)
                    .map(|o| json!({"product_id": o.product_id, "unit_price": o.unit_price}))
                    .collect();
                json!({"id": s.id, "name": s.name, "reliability": s.reliability,
                       "avg_delivery_days": s.avg_delivery_days, "offers": mine})
            })
            .collect())
    }

    /// Raises the alert of a suspicious transaction, with the reasons as evidence.
    pub(crate) fn raise_fraud_alert(
        &self,
        id: &str,
        ts: TimestampMs,
        order: &OrderRequest,
        amount: f64,
        verdict: &FraudVerdict,
    ) {
        self.alerts
            .raise(fraud_alert(id, ts, order, amount, verdict));
    }

    /// Learns and scores imported history (in time order) for [`crate::import`].
    pub(crate) fn score_history(&self, facts: &[TxFacts]) -> Vec<FraudVerdict> {
        let mut scorer = self.scorer.lock();
        facts.iter().map(|fact| scorer.score(fact)).collect()
    }
}

/// One sale as the event written to the stream.
pub(crate) struct Sale<'a> {
    pub(crate) id: &'a str,
    pub(crate) ts: TimestampMs,
    pub(crate) order: &'a OrderRequest,
    pub(crate) product: &'a Product,
    pub(crate) loyalty_tier: &'a str,
    /// None for imported history, which does not change stock.
    pub(crate) stock_after: Option<i64>,
    pub(crate) verdict: &'a FraudVerdict,
    pub(crate) unit_price: f64,
}

impl Sale<'_> {
    /// The event, keys in the order the events API renders them.
    pub(crate) fn event(&self) -> Value {
        let quantity = self.order.quantity;
        let reasons = serde_json::to_string(&self.verdict.reasons).unwrap_or_else(|_| "[]".into());
        let risk = if self.verdict.suspicious {
            RISK_SUSPICIOUS
        } else {
            RISK_OK
        };
        json!({
            "id": self.id,
            "ts": format_rfc3339_ms(self.ts),
            "customer_id": self.order.customer_id,
            "product_id": self.order.product_id,
            "category": self.product.category,
            "region": self.order.region,
            "loyalty_tier": self.loyalty_tier,
            "payment_method": self.order.payment_method,
            "risk": risk,
            "amount": self.unit_price * quantity as f64,
            "quantity": quantity,
            "unit_price": self.unit_price,
            "cost": self.product.cost * quantity as f64,
            "stock_after": self.stock_after,
            "fraud_score": self.verdict.score,
            "suspicious": self.verdict.suspicious,
            "reasons": reasons,
        })
    }
}

/// A stored event as the API shows a transaction: `reasons` as JSON again, without the
/// internal `risk` tag (`suspicious` says the same).
pub(crate) fn render(event: Value) -> Value {
    let Value::Object(mut object) = event else {
        return event;
    };
    object.remove("risk");
    if let Some(reasons) = object.get_mut("reasons")
        && let Some(text) = reasons.as_str()
    {
        *reasons = serde_json::from_str(text).unwrap_or(Value::Array(Vec::new()));
    }
    Value::Object(object)
}

/// The scorer's facts of a stored transaction; None for an event missing any of them.
fn tx_facts(event: &Value, customers: &HashMap<String, Customer>) -> Option<TxFacts> {
    let customer = customers.get(event["customer_id"].as_str()?)?;
    Some(TxFacts {
        customer_id: customer.id.clone(),
        ts: parse_rfc3339_ms(event["ts"].as_str()?)?,
        amount: event["amount"].as_f64()?,
        customer_region: customer.region.clone(),
        order_region: event["region"].as_str().unwrap_or_default().to_owned(),
        customer_signup_ts: customer.signup_ts,
    })
}

fn fraud_alert(
    id: &str,
    ts: TimestampMs,
    order: &OrderRequest,
    amount: f64,
    verdict: &FraudVerdict,
) -> Alert {
    let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code).collect();
    Alert {
        ts,
        domain: DOMAIN,
        kind: FRAUD_ALERT,
        subject: id.to_owned(),
        severity: if verdict.score >= CRITICAL_SCORE {
            Severity::Critical
        } else {
            Severity::Warning
        },
        message: format!(
            "suspicious transaction {id} by customer {}: score {:.2} ({})",
            order.customer_id,
            verdict.score,
            codes.join(", ")
        ),
        score: verdict.score,
        evidence: json!({
            "transaction_id": id,
            "customer_id": order.customer_id,
            "product_id": order.product_id,
            "amount": amount,
            "region": order.region,
            "reasons": verdict.reasons,
        }),
    }
}

/// A time as JSON: an RFC 3339 string or integer epoch milliseconds.
pub(crate) fn parse_ts(value: &Value) -> Option<TimestampMs> {
    match value {
        Value::String(text) => parse_rfc3339_ms(text),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use tidewatch_engine::EngineConfig;

    use super::*;
    use crate::model::Supplier;
    use crate::store::CatalogWrite;

    fn catalog() -> CatalogWrite {
        CatalogWrite {
            suppliers: vec![Supplier {
                id: "S1".into(),
                name: "Acme".into(),
                reliability: 0.9,
                avg_delivery_days: 2.0,
            }],
            products: vec![Product {
                id: "P1".into(),
                name: "Lamp".into(),
                category: "home".into(),
                price: 20.0,
                cost: 12.0,
                stock: 10,
                reorder_point: 2,
                supplier_id: Some("S1".into()),
                lead_time_days: 2.0,
            }],
            offers: Vec::new(),
            customers: vec![Customer {
                id: "C1".into(),
                name: "Ada".into(),
                loyalty_tier: "gold".into(),
                region: "EU".into(),
                signup_ts: 0,
            }],
            ledger: Vec::new(),
        }
    }

    async fn open(dir: &Path) -> (Arc<Engine>, Arc<Commerce>) {
        let engine = Arc::new(Engine::open(EngineConfig::test_config(dir)).unwrap());
        let (sink, _alerts) = AlertSink::channel();
        let commerce = Commerce::open(
            Arc::clone(&engine),
            dir,
            CommerceConfig::test_config(),
            sink,
        )
        .await
        .unwrap();
        (engine, Arc::new(commerce))
    }

    fn request(quantity: i64) -> NewTransaction {
        NewTransaction {
            customer_id: Some("C1".into()),
            product_id: Some("P1".into()),
            quantity: Some(quantity),
            ..NewTransaction::default()
        }
    }

    #[tokio::test]
    async fn a_sale_is_an_event_and_a_ledger_row_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let (engine, commerce) = open(dir.path()).await;
            commerce.store.write_catalog(&catalog()).await.unwrap();
            let created = commerce.create_transaction(&request(3)).await.unwrap();
            assert!(created.created);
            assert_eq!(created.transaction["stock_after"], 7);
            let id = created.transaction["id"].as_str().unwrap().to_owned();
            assert_eq!(
                commerce.transaction(&id).await.unwrap(),
                created.transaction
            );
            commerce.close().await;
            engine.close().await.unwrap();
            id
        };
        let (_engine, commerce) = open(dir.path()).await;
        assert_eq!(commerce.product("P1").await.unwrap().stock, 7);
        let stored = commerce.transaction(&id).await.unwrap();
        assert_eq!(stored["quantity"], 3);
        assert_eq!(stored["amount"], 60.0);
    }

    #[tokio::test]
    async fn a_reservation_without_its_event_is_released_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (engine, commerce) = open(dir.path()).await;
            commerce.store.write_catalog(&catalog()).await.unwrap();
            // A crash between the reservation and the event write.
            let entry = LedgerEntry {
                id: format_id(assign_id()),
                ts: now_ms(),
                customer_id: "C1".into(),
                product_id: "P1".into(),
                quantity: 4,
                reserved: 4,
                state: LedgerState::Pending,
                created_ms: now_ms(),
            };
            commerce.store.reserve(&entry).await.unwrap();
            assert_eq!(commerce.product("P1").await.unwrap().stock, 6);
            commerce.close().await;
            engine.close().await.unwrap();
        }
        let (_engine, commerce) = open(dir.path()).await;
        assert_eq!(
            commerce.product("P1").await.unwrap().stock,
            10,
            "units back"
        );
        assert!(commerce.store.pending_entries().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_durable_event_whose_ledger_row_stayed_pending_is_kept_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let (engine, commerce) = open(dir.path()).await;
            commerce.store.write_catalog(&catalog()).await.unwrap();
            let created = commerce.create_transaction(&request(2)).await.unwrap();
            let id = created.transaction["id"].as_str().unwrap().to_owned();
            // A crash between the event write and the confirmation: put it back to pending.
            sqlx::query("UPDATE transaction_ledger SET state = 'pending' WHERE id = $1")
                .bind(&id)
                .execute(&commerce.store.writer)
                .await
                .unwrap();
            commerce.close().await;
            engine.close().await.unwrap();
            id
        };
        let (_engine, commerce) = open(dir.path()).await;
        assert_eq!(commerce.product("P1").await.unwrap().stock, 8, "still sold");
        let entry = commerce.store.ledger_entry(&id).await.unwrap().unwrap();
        assert_eq!(entry.state, LedgerState::Committed);
        assert!(commerce.transaction(&id).await.is_ok());
    }

    #[tokio::test]
    async fn invalid_configurations_are_refused_with_every_problem() {
        let config = CommerceConfig {
            forecast_every: Duration::ZERO,
            service_level: 1.0,
            ..CommerceConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("forecast_every"), "{message}");
        assert!(message.contains("service_level"), "{message}");
        CommerceConfig::default().validate().unwrap();
    }
}
