//! CSV import of products, suppliers (with their offers), customers and historical
//! transactions.
//!
//! All or nothing per run: every file is read and every row checked first (types, ranges,
//! duplicates, references across the files and to what is stored); any bad row fails the
//! run with every problem listed (file, line, column, reason) and nothing written. Then
//! the entities and the transactions' ledger rows go to the metadata store in one
//! database transaction, and only after it committed the transactions go to the stream
//! (in chunks, each confirmed in the ledger once durable). A storage failure during that
//! last step leaves the confirmed chunks; the rest is undone at once (or, after a crash,
//! at the next start), so the store never names a transaction the stream does not hold.
//!
//! Files (header row required, columns in any order, `?` = optional):
//! - products: `sku, name, category, price, cost, stock, reorder_point, supplier_id?,
//!   lead_time_days?`
//! - suppliers: `id, name, reliability, avg_delivery_days, sku?, unit_price?`, one row per
//!   offer (rows of one supplier repeat its attributes, which must agree); `sku` and
//!   `unit_price` come together or not at all
//! - customers: `id, name, loyalty_tier, region, signup_date` (tier: bronze, silver, gold
//!   or platinum; date: `YYYY-MM-DD`, RFC 3339 or epoch milliseconds)
//! - transactions: `timestamp, customer_id, sku, quantity, id?, unit_price?, region?,
//!   payment_method?` (unit price: the product's price when empty; region: the
//!   customer's; payment method: `card`)
//!
//! Existing entities with the same id are replaced (a product's stock included).
//! Imported transactions are history: they do not change stock, and a transaction id
//! already stored is skipped as a duplicate, so re-running an import is harmless. They are
//! fraud-scored in time order like live ones, and suspicious ones raise alerts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tidewatch_ingest::Format;
use tidewatch_ingest::ids::{assign_id, format_id, parse_id};
use tidewatch_types::time::{format_rfc3339_ms, now_ms, parse_rfc3339_ms};

use crate::error::Error;
use crate::fraud::TxFacts;
use crate::model::{Customer, OrderRequest, Product, Supplier, SupplierOffer};
use crate::schema::TRANSACTIONS_STREAM;
use crate::service::{Commerce, MAX_QUANTITY, MAX_TEXT, Sale};
use crate::store::{CatalogWrite, LedgerEntry, LedgerState};

/// Transactions per stream write: small enough that one write (parsed on the calling
/// task) keeps a runtime worker only briefly, so live traffic interleaves with an import.
const CHUNK: usize = 1000;
/// Loyalty tiers a customer may have.
pub const LOYALTY_TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
/// Rows between two progress reports.
const REPORT_EVERY: u64 = 256;

/// The files of one import; at least one.
#[derive(Debug, Clone, Default)]
pub struct ImportFiles {
    pub products: Option<PathBuf>,
    pub suppliers: Option<PathBuf>,
    pub customers: Option<PathBuf>,
    pub transactions: Option<PathBuf>,
}

/// One bad row (or header, line 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowProblem {
    pub file: String,
    pub line: u64,
    /// The column, when the problem is in one.
    pub column: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{}:{}: {column}: {}", self.file, self.line, self.reason),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.reason),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} bad row{}; nothing was imported", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Rows(Vec<RowProblem>),
    #[error(transparent)]
    Failed(#[from] Error),
}

/// What an import wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub suppliers: usize,
    pub offers: usize,
    pub products: usize,
    pub customers: usize,
    pub transactions: usize,
    /// Transactions skipped because their id was already stored.
    pub duplicates: usize,
    pub suspicious: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Reading and checking rows.
    Checking,
    /// Writing transactions to the stream.
    Streaming,
}

/// Rows done out of rows to do, in each phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ImportProgress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// A CSV file read whole: its header and rows with their line numbers.
struct Table {
    file: String,
    /// Column name -> position.
    columns: HashMap<String, usize>,
    rows: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn read(
        path: &Path,
        required: &[&str],
        optional: &[&str],
        problems: &mut Vec<RowProblem>,
    ) -> Option<Table> {
        let file = path.display().to_string();
        let problem = |line: u64, column: Option<&str>, reason: String| RowProblem {
            file: file.clone(),
            line,
            column: column.map(str::to_owned),
            reason,
        };
        let mut reader = match csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
        {
            Ok(reader) => reader,
            Err(e) => {
                problems.push(problem(0, None, format!("cannot open: {e}")));
                return None;
            }
        };
        let header = match reader.headers() {
            Ok(header) => header.clone(),
            Err(e) => {
                problems.push(problem(1, None, format!("cannot read the header: {e}")));
                return None;
            }
        };
        let mut columns = HashMap::new();
        let mut header_ok = true;
        for (position, name) in header.iter().enumerate() {
            let name = name.to_ascii_lowercase();
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                problems.push(problem(
                    1,
                    Some(&name),
                    format!(
                        "unknown column; expected {}{}",
                        required.join(", "),
                        if optional.is_empty() {
                            String::new()
                        } else {
                            format!(" and optionally {}", optional.join(", "))
                        }
                    ),
                ));
                header_ok = false;
            } else if columns.insert(name.clone(), position).is_some() {
                problems.push(problem(1, Some(&name), "column given twice".into()));
                header_ok = false;
            }
        }
        for name in required {
            if !columns.contains_key(*name) {
                problems.push(problem(1, Some(name), "required column is missing".into()));
                header_ok = false;
            }
        }
        if !header_ok {
            return None;
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line());
                    rows.push((line, record));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    problems.push(problem(line, None, format!("malformed CSV: {e}")));
                }
            }
        }
        Some(Table {
            file,
            columns,
            rows,
        })
    }
}

/// One row being checked: reads cells by column name and records problems.
struct Cells<'a> {
    table: &'a Table,
    line: u64,
    record: &'a csv::StringRecord,
    problems: &'a mut Vec<RowProblem>,
    ok: bool,
}

impl<'a> Cells<'a> {
    fn fail(&mut self, column: &str, reason: String) {
        self.ok = false;
        self.problems.push(RowProblem {
            file: self.table.file.clone(),
            line: self.line,
            column: Some(column.to_owned()),
            reason,
        });
    }

    /// The trimmed cell, None when the column is absent or the cell empty.
    fn optional(&self, column: &str) -> Option<&'a str> {
        let position = *self.table.columns.get(column)?;
        self.record.get(position).filter(|v| !v.is_empty())
    }

    fn text(&mut self, column: &str) -> Option<String> {
        match self.optional(column) {
            None => {
                self.fail(column, "must not be empty".into());
                None
            }
            Some(v) if v.len() > MAX_TEXT => {
                self.fail(column, format!("is longer than {MAX_TEXT} bytes"));
                None
            }
            Some(v) => Some(v.to_owned()),
        }
    }

    fn optional_text(&mut self, column: &str) -> Option<String> {
        self.optional(column)?;
        self.text(column)
    }

    fn number(&mut self, column: &str, valid: fn(f64) -> bool, expected: &str) -> Option<f64> {
        let text = self.optional(column);
        match text.map(str::parse::<f64>) {
            None => {
                self.fail(column, format!("must not be empty; expected {expected}"));
                None
            }
            Some(Ok(v)) if v.is_finite() && valid(v) => Some(v),
            Some(_) => {
                let text = text.unwrap_or_default();
                self.fail(column, format!("{text:?} is not {expected}"));
                None
            }
        }
    }

    fn integer(&mut self, column: &str, min: i64, max: i64) -> Option<i64> {
        let text = self.optional(column);
        match text.map(str::parse::<i64>) {
            None => {
                self.fail(column, "must not be empty".into());
                None
            }
            Some(Ok(v)) if (min..=max).contains(&v) => Some(v),
            Some(_) => {
                let text = text.unwrap_or_default();
                self.fail(
                    column,
                    format!("{text:?} is not a whole number between {min} and {max}"),
                );
                None
            }
        }
    }

    fn time(&mut self, column: &str, max: i64) -> Option<i64> {
        let text = self.optional(column);
        let parsed = text.and_then(parse_time);
        match (text, parsed) {
            (None, _) => {
                self.fail(column, "must not be empty".into());
                None
            }
            (Some(_), Some(ts)) if (0..=max).contains(&ts) => Some(ts),
            (Some(text), Some(_)) => {
                self.fail(
                    column,
                    format!(
                        "{text:?} is outside 1970-01-01 .. {}",
                        format_rfc3339_ms(max)
                    ),
                );
                None
            }
            (Some(text), None) => {
                self.fail(
                    column,
                    format!("{text:?} is not a date (YYYY-MM-DD), an RFC 3339 time or epoch milliseconds"),
                );
                None
            }
        }
    }
}

/// `YYYY-MM-DD`, RFC 3339 or epoch milliseconds.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if text.len() == 10 {
        return parse_rfc3339_ms(&format!("{text}T00:00:00Z"));
    }
    parse_rfc3339_ms(text)
}

/// A checked transaction row.
struct TxRow {
    line: u64,
    id: String,
    ts: i64,
    customer_id: String,
    product_id: String,
    quantity: i64,
    unit_price: Option<f64>,
    region: Option<String>,
    payment_method: Option<String>,
}

/// Everything read from the files, checked row by row (references not yet).
#[derive(Default)]
struct Parsed {
    suppliers: Vec<(u64, Supplier)>,
    offers: Vec<(u64, SupplierOffer)>,
    products: Vec<(u64, Product)>,
    customers: Vec<(u64, Customer)>,
    transactions: Vec<TxRow>,
}

impl Commerce {
    /// Imports `files` (module doc). `progress` is called as rows are checked and as
    /// transactions are written.
    pub async fn import(
        self: &Arc<Self>,
        files: &ImportFiles,
        progress: &mut (dyn FnMut(ImportProgress) + Send),
    ) -> Result<ImportSummary, ImportError> {
        let mut problems = Vec::new();
        let parsed = self.read_files(files, &mut problems, progress);
        let checked = self.check_references(&parsed, files, &mut problems).await?;
        if !problems.is_empty() {
            problems.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
            return Err(ImportError::Rows(problems));
        }
        let Checked {
            products,
            customers,
            duplicates,
        } = checked;
        let mut summary = ImportSummary {
            suppliers: parsed.suppliers.len(),
            offers: parsed.offers.len(),
            products: parsed.products.len(),
            customers: parsed.customers.len(),
            duplicates: duplicates.len(),
            ..ImportSummary::default()
        };
        let mut transactions: Vec<&TxRow> = parsed
            .transactions
            .iter()
            .filter(|t| !duplicates.contains(&t.id))
            .collect();
        transactions.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
        let catalog = CatalogWrite {
            suppliers: parsed.suppliers.iter().map(|(_, s)| s.clone()).collect(),
            products: parsed.products.iter().map(|(_, p)| p.clone()).collect(),
            offers: parsed.offers.iter().map(|(_, o)| o.clone()).collect(),
            customers: parsed.customers.iter().map(|(_, c)| c.clone()).collect(),
            ledger: Vec::new(),
        };
        let (written, suspicious) = self
            .write_history(catalog, &transactions, &products, &customers, progress)
            .await?;
        summary.transactions = written;
        summary.suspicious = suspicious;
        Ok(summary)
    }

    /// Seeds a catalog and its order history (the demo): written like an import, history
    /// that does not change stock. Orders naming an unknown product or customer, or an id
    /// already stored, are skipped.
    pub async fn seed(
        self: &Arc<Self>,
        catalog: CatalogWrite,
        history: &[OrderRequest],
    ) -> Result<ImportSummary, ImportError> {
        let mut products: HashMap<String, Product> = self
            .store
            .products()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        products.extend(catalog.products.iter().map(|p| (p.id.clone(), p.clone())));
        let mut customers: HashMap<String, Customer> = self
            .store
            .customers()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        customers.extend(catalog.customers.iter().map(|c| (c.id.clone(), c.clone())));
        let now = now_ms();
        let rows: Vec<TxRow> = history
            .iter()
            .filter(|o| {
                products.contains_key(&o.product_id) && customers.contains_key(&o.customer_id)
            })
            .filter(|o| (1..=MAX_QUANTITY).contains(&o.quantity))
            .map(|o| TxRow {
                line: 0,
                id: o
                    .id
                    .as_deref()
                    .and_then(parse_id)
                    .map_or_else(|| format_id(assign_id()), format_id),
                ts: o.ts.unwrap_or(now).min(now),
                customer_id: o.customer_id.clone(),
                product_id: o.product_id.clone(),
                quantity: o.quantity,
                unit_price: None,
                region: Some(o.region.clone()).filter(|r| !r.is_empty()),
                payment_method: Some(o.payment_method.clone()).filter(|p| !p.is_empty()),
            })
            .collect();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let known: HashSet<String> = self.store.known_ids(&ids).await?.into_iter().collect();
        let mut fresh: Vec<&TxRow> = rows.iter().filter(|r| !known.contains(&r.id)).collect();
        fresh.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
        let mut summary = ImportSummary {
            suppliers: catalog.suppliers.len(),
            offers: catalog.offers.len(),
            products: catalog.products.len(),
            customers: catalog.customers.len(),
            duplicates: known.len(),
            ..ImportSummary::default()
        };
        let (written, suspicious) = self
            .write_history(catalog, &fresh, &products, &customers, &mut |_| {})
            .await?;
        summary.transactions = written;
        summary.suspicious = suspicious;
        Ok(summary)
    }

    /// Writes `catalog` and the ledger rows of `transactions` in one database transaction,
    /// then the transactions (scored in time order) to the stream in chunks, each
    /// confirmed once durable; raises the alerts of the suspicious ones. Returns the
    /// transactions written and how many were suspicious.
    async fn write_history(
        &self,
        mut catalog: CatalogWrite,
        transactions: &[&TxRow],
        products: &HashMap<String, Product>,
        customers: &HashMap<String, Customer>,
        progress: &mut (dyn FnMut(ImportProgress) + Send),
    ) -> Result<(usize, usize), ImportError> {
        let created_ms = now_ms();
        catalog.ledger = transactions
            .iter()
            .map(|t| LedgerEntry {
                id: t.id.clone(),
                ts: t.ts,
                customer_id: t.customer_id.clone(),
                product_id: t.product_id.clone(),
                quantity: t.quantity,
                reserved: 0,
                state: LedgerState::Pending,
                created_ms,
            })
            .collect();
        self.store.write_catalog(&catalog).await?;

        // Only now, with the store's part committed, the events.
        let mut events = Vec::with_capacity(transactions.len());
        let mut facts = Vec::with_capacity(transactions.len());
        let mut orders = Vec::with_capacity(transactions.len());
        for t in transactions {
            let (Some(product), Some(customer)) =
                (products.get(&t.product_id), customers.get(&t.customer_id))
            else {
                continue; // checked above: never taken
            };
            let order = OrderRequest {
                customer_id: t.customer_id.clone(),
                product_id: t.product_id.clone(),
                quantity: t.quantity,
                ts: Some(t.ts),
                region: t.region.clone().unwrap_or_else(|| customer.region.clone()),
                payment_method: t.payment_method.clone().unwrap_or_else(|| "card".into()),
                id: Some(t.id.clone()),
            };
            let unit_price = t.unit_price.unwrap_or(product.price);
            facts.push(TxFacts {
                customer_id: customer.id.clone(),
                ts: t.ts,
                amount: unit_price * t.quantity as f64,
                customer_region: customer.region.clone(),
                order_region: order.region.clone(),
                customer_signup_ts: customer.signup_ts,
            });
            orders.push((order, product, customer, unit_price));
        }
        let verdicts = self.score_history(&facts);
        for ((order, product, customer, unit_price), verdict) in orders.iter().zip(&verdicts) {
            let id = order.id.clone().unwrap_or_default();
            events.push(
                Sale {
                    id: &id,
                    ts: order.ts.unwrap_or_default(),
                    order,
                    product,
                    loyalty_tier: &customer.loyalty_tier,
                    stock_after: None,
                    verdict,
                    unit_price: *unit_price,
                }
                .event(),
            );
        }
        let total = events.len() as u64;
        progress(ImportProgress {
            phase: Phase::Streaming,
            done: 0,
            total,
        });
        let mut written = 0usize;
        for chunk in events.chunks(CHUNK) {
            let ids: Vec<String> = chunk
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect();
            let body = Value::Array(chunk.to_vec()).to_string();
            let stored = self
                .engine
                .ingest(
                    TRANSACTIONS_STREAM,
                    body.as_bytes(),
                    Format::JsonArray,
                    false,
                )
                .await;
            if let Err(e) = stored {
                // Forget the transactions not written; the confirmed chunks stay.
                for event in &events[written..] {
                    if let Some(id) = event["id"].as_str() {
                        let _ = self.store.release(id).await;
                    }
                }
                return Err(ImportError::Failed(e.into()));
            }
            self.store.confirm(&ids).await?;
            written += chunk.len();
            progress(ImportProgress {
                phase: Phase::Streaming,
                done: written as u64,
                total,
            });
            tokio::task::yield_now().await;
        }
        let mut suspicious = 0;
        for ((order, _, _, unit_price), verdict) in orders.iter().zip(&verdicts) {
            if verdict.suspicious {
                suspicious += 1;
                let id = order.id.clone().unwrap_or_default();
                let amount = unit_price * order.quantity as f64;
                self.raise_fraud_alert(&id, order.ts.unwrap_or_default(), order, amount, verdict);
            }
        }
        Ok((written, suspicious))
    }

    fn read_files(
        &self,
        files: &ImportFiles,
        problems: &mut Vec<RowProblem>,
        progress: &mut (dyn FnMut(ImportProgress) + Send),
    ) -> Parsed {
        let tables = [
            files.suppliers.as_deref().and_then(|p| {
                Table::read(
                    p,
                    &["id", "name", "reliability", "avg_delivery_days"],
                    &["sku", "unit_price"],
                    problems,
                )
            }),
            files.products.as_deref().and_then(|p| {
                Table::read(
                    p,
                    &[
                        "sku",
                        "name",
                        "category",
                        "price",
                        "cost",
                        "stock",
                        "reorder_point",
                    ],
                    &["supplier_id", "lead_time_days"],
                    problems,
                )
            }),
            files.customers.as_deref().and_then(|p| {
                Table::read(
                    p,
                    &["id", "name", "loyalty_tier", "region", "signup_date"],
                    &[],
                    problems,
                )
            }),
            files.transactions.as_deref().and_then(|p| {
                Table::read(
                    p,
                    &["timestamp", "customer_id", "sku", "quantity"],
                    &["id", "unit_price", "region", "payment_method"],
                    problems,
                )
            }),
        ];
        let total: u64 = tables.iter().flatten().map(|t| t.rows.len() as u64).sum();
        let mut done = 0u64;
        let mut tick = |progress: &mut (dyn FnMut(ImportProgress) + Send)| {
            done += 1;
            if done.is_multiple_of(REPORT_EVERY) || done == total {
                progress(ImportProgress {
                    phase: Phase::Checking,
                    done,
                    total,
                });
            }
        };
        let now = now_ms();
        let max_future = i64::try_from(self.engine.config().max_future.as_millis()).unwrap_or(0);
        let mut parsed = Parsed::default();
        let [suppliers, products, customers, transactions] = tables;
        if let Some(table) = &suppliers {
            let mut seen: HashMap<String, Supplier> = HashMap::new();
            let mut offered: HashSet<(String, String)> = HashSet::new();
            for (line, record) in &table.rows {
                tick(progress);
                let mut cells = Cells {
                    table,
                    line: *line,
                    record,
                    problems,
                    ok: true,
                };
                let id = cells.text("id");
                let name = cells.text("name");
                let reliability = cells.number(
                    "reliability",
                    |v| (0.0..=1.0).contains(&v),
                    "between 0 and 1",
                );
                let days = cells.number(
                    "avg_delivery_days",
                    |v| v >= 0.0,
                    "a non-negative number of days",
                );
                let sku = cells.optional_text("sku");
                let unit_price = match cells.optional("unit_price") {
                    Some(_) => cells.number("unit_price", |v| v > 0.0, "a positive price"),
                    None => None,
                };
                if sku.is_some() != cells.optional("unit_price").is_some() {
                    cells.fail(
                        if sku.is_some() { "unit_price" } else { "sku" },
                        "sku and unit_price come together or not at all".into(),
                    );
                }
                let (Some(id), Some(name), Some(reliability), Some(days), true) =
                    (id, name, reliability, days, cells.ok)
                else {
                    continue;
                };
                let supplier = Supplier {
                    id: id.clone(),
                    name,
                    reliability,
                    avg_delivery_days: days,
                };
                match seen.get(&id) {
                    Some(first) if *first != supplier => {
                        cells.fail(
                            "id",
                            format!("supplier {id:?} is repeated with different attributes"),
                        );
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(id.clone(), supplier.clone());
                        parsed.suppliers.push((*line, supplier));
                    }
                }
                if let (Some(sku), Some(unit_price)) = (sku, unit_price) {
                    if !offered.insert((id.clone(), sku.clone())) {
                        cells.fail("sku", format!("supplier {id:?} offers {sku:?} twice"));
                        continue;
                    }
                    parsed.offers.push((
                        *line,
                        SupplierOffer {
                            supplier_id: id,
                            product_id: sku,
                            unit_price,
                        },
                    ));
                }
            }
        }
        if let Some(table) = &products {
            let mut seen = HashSet::new();
            for (line, record) in &table.rows {
                tick(progress);
                let mut cells = Cells {
                    table,
                    line: *line,
                    record,
                    problems,
                    ok: true,
                };
                let sku = cells.text("sku");
                let name = cells.text("name");
                let category = cells.text("category");
                let price = cells.number("price", |v| v > 0.0, "a positive price");
                let cost = cells.number("cost", |v| v >= 0.0, "a non-negative cost");
                let stock = cells.integer("stock", 0, i64::from(i32::MAX));
                let reorder_point = cells.integer("reorder_point", 0, i64::from(i32::MAX));
                let supplier_id = cells.optional_text("supplier_id");
                let lead_time_days = match cells.optional("lead_time_days") {
                    Some(_) => cells.number(
                        "lead_time_days",
                        |v| v >= 0.0,
                        "a non-negative number of days",
                    ),
                    None => Some(0.0),
                };
                let (
                    Some(sku),
                    Some(name),
                    Some(category),
                    Some(price),
                    Some(cost),
                    Some(stock),
                    Some(reorder_point),
                    Some(lead_time_days),
                    true,
                ) = (
                    sku,
                    name,
                    category,
                    price,
                    cost,
                    stock,
                    reorder_point,
                    lead_time_days,
                    cells.ok,
                )
                else {
                    continue;
                };
                if !seen.insert(sku.clone()) {
                    cells.fail("sku", format!("product {sku:?} appears twice"));
                    continue;
                }
                parsed.products.push((
                    *line,
                    Product {
                        id: sku,
                        name,
                        category,
                        price,
                        cost,
                        stock,
                        reorder_point,
                        supplier_id,
                        lead_time_days,
                    },
                ));
            }
        }
        if let Some(table) = &customers {
            let mut seen = HashSet::new();
            for (line, record) in &table.rows {
                tick(progress);
                let mut cells = Cells {
                    table,
                    line: *line,
                    record,
                    problems,
                    ok: true,
                };
                let id = cells.text("id");
                let name = cells.text("name");
                let tier = cells.text("loyalty_tier").map(|t| t.to_ascii_lowercase());
                if let Some(t) = &tier
                    && !LOYALTY_TIERS.contains(&t.as_str())
                {
                    cells.fail(
                        "loyalty_tier",
                        format!("{t:?} is not one of {}", LOYALTY_TIERS.join(", ")),
                    );
                }
                let region = cells.text("region");
                let signup = cells.time("signup_date", now + max_future);
                let (Some(id), Some(name), Some(tier), Some(region), Some(signup_ts), true) =
                    (id, name, tier, region, signup, cells.ok)
                else {
                    continue;
                };
                if !seen.insert(id.clone()) {
                    cells.fail("id", format!("customer {id:?} appears twice"));
                    continue;
                }
                parsed.customers.push((
                    *line,
                    Customer {
                        id,
                        name,
                        loyalty_tier: tier,
                        region,
                        signup_ts,
                    },
                ));
            }
        }
        if let Some(table) = &transactions {
            let mut seen = HashSet::new();
            for (line, record) in &table.rows {
                tick(progress);
                let mut cells = Cells {
                    table,
                    line: *line,
                    record,
                    problems,
                    ok: true,
                };
                let id = match cells.optional("id") {
                    None => Some(format_id(assign_id())),
                    Some(text) => match parse_id(text) {
                        Some(id) => Some(format_id(id)),
                        None => {
                            cells.fail("id", format!("{text:?} is not a UUID"));
                            None
                        }
                    },
                };
                let ts = cells.time("timestamp", now + max_future);
                let customer_id = cells.text("customer_id");
                let product_id = cells.text("sku");
                let quantity = cells.integer("quantity", 1, MAX_QUANTITY);
                let unit_price = match cells.optional("unit_price") {
                    Some(_) => cells.number("unit_price", |v| v > 0.0, "a positive price"),
                    None => None,
                };
                let region = cells.optional_text("region");
                let payment_method = cells.optional_text("payment_method");
                let (Some(id), Some(ts), Some(customer_id), Some(product_id), Some(quantity), true) =
                    (id, ts, customer_id, product_id, quantity, cells.ok)
                else {
                    continue;
                };
                if !seen.insert(id.clone()) {
                    cells.fail("id", format!("transaction {id:?} appears twice"));
                    continue;
                }
                parsed.transactions.push(TxRow {
                    line: *line,
                    id,
                    ts,
                    customer_id,
                    product_id,
                    quantity,
                    unit_price,
                    region,
                    payment_method,
                });
            }
        }
        parsed
    }

    /// Checks references across the files and the store; returns the products and
    /// customers transactions may name, and the transaction ids already stored.
    async fn check_references(
        &self,
        parsed: &Parsed,
        files: &ImportFiles,
        problems: &mut Vec<RowProblem>,
    ) -> Result<Checked, Error> {
        let file = |path: &Option<PathBuf>| {
            path.as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let mut suppliers: HashSet<String> = self
            .store
            .suppliers()
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        suppliers.extend(parsed.suppliers.iter().map(|(_, s)| s.id.clone()));
        let mut products: HashMap<String, Product> = self
            .store
            .products()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        products.extend(
            parsed
                .products
                .iter()
                .map(|(_, p)| (p.id.clone(), p.clone())),
        );
        let mut customers: HashMap<String, Customer> = self
            .store
            .customers()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        customers.extend(
            parsed
                .customers
                .iter()
                .map(|(_, c)| (c.id.clone(), c.clone())),
        );
        let mut missing = |path: &Option<PathBuf>, line: u64, column: &str, reason: String| {
            problems.push(RowProblem {
                file: file(path),
                line,
                column: Some(column.to_owned()),
                reason,
            });
        };
        for (line, product) in &parsed.products {
            if let Some(supplier) = &product.supplier_id
                && !suppliers.contains(supplier)
            {
                missing(
                    &files.products,
                    *line,
                    "supplier_id",
                    format!("no supplier {supplier:?} in the suppliers file or the store"),
                );
            }
        }
        for (line, offer) in &parsed.offers {
            if !products.contains_key(&offer.product_id) {
                missing(
                    &files.suppliers,
                    *line,
                    "sku",
                    format!(
                        "no product {:?} in the products file or the store",
                        offer.product_id
                    ),
                );
            }
        }
        for t in &parsed.transactions {
            if !customers.contains_key(&t.customer_id) {
                missing(
                    &files.transactions,
                    t.line,
                    "customer_id",
                    format!(
                        "no customer {:?} in the customers file or the store",
                        t.customer_id
                    ),
                );
            }
            if !products.contains_key(&t.product_id) {
                missing(
                    &files.transactions,
                    t.line,
                    "sku",
                    format!(
                        "no product {:?} in the products file or the store",
                        t.product_id
                    ),
                );
            }
        }
        let ids: Vec<String> = parsed.transactions.iter().map(|t| t.id.clone()).collect();
        let duplicates: HashSet<String> = self.store.known_ids(&ids).await?.into_iter().collect();
        Ok(Checked {
            products,
            customers,
            duplicates,
        })
    }
}

struct Checked {
    products: HashMap<String, Product>,
    customers: HashMap<String, Customer>,
    duplicates: HashSet<String>,
}
