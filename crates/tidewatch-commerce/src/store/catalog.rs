//! Entities: suppliers, products, supplier offers and customers.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::Result;
use crate::model::{Customer, Product, Supplier, SupplierOffer};
use crate::store::ledger::{LedgerEntry, insert_entry};
use crate::store::{Db, Store};

const PRODUCT_COLUMNS: &str =
    "id, name, category, price, cost, stock, reorder_point, supplier_id, lead_time_days";
const CUSTOMER_COLUMNS: &str = "id, name, loyalty_tier, region, signup_ts";
const SUPPLIER_COLUMNS: &str = "id, name, reliability, avg_delivery_days";

/// Everything one import (or the demo seed) writes, in one database transaction.
#[derive(Debug, Clone, Default)]
pub struct CatalogWrite {
    pub suppliers: Vec<Supplier>,
    pub products: Vec<Product>,
    pub offers: Vec<SupplierOffer>,
    pub customers: Vec<Customer>,
    /// Ledger rows of imported transactions, written `pending`.
    pub ledger: Vec<LedgerEntry>,
}

impl CatalogWrite {
    pub fn rows(&self) -> usize {
        self.suppliers.len()
            + self.products.len()
            + self.offers.len()
            + self.customers.len()
            + self.ledger.len()
    }
}

fn product(row: &SqliteRow) -> Result<Product> {
    Ok(Product {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        category: row.try_get("category")?,
        price: row.try_get("price")?,
        cost: row.try_get("cost")?,
        stock: row.try_get("stock")?,
        reorder_point: row.try_get("reorder_point")?,
        supplier_id: row.try_get("supplier_id")?,
        lead_time_days: row.try_get("lead_time_days")?,
    })
}

fn customer(row: &SqliteRow) -> Result<Customer> {
    Ok(Customer {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        loyalty_tier: row.try_get("loyalty_tier")?,
        region: row.try_get("region")?,
        signup_ts: row.try_get("signup_ts")?,
    })
}

fn supplier(row: &SqliteRow) -> Result<Supplier> {
    Ok(Supplier {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        reliability: row.try_get("reliability")?,
        avg_delivery_days: row.try_get("avg_delivery_days")?,
    })
}

impl Store {
    pub async fn product(&self, id: &str) -> Result<Option<Product>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(product).transpose()
    }

    /// Every product, by id.
    pub async fn products(&self) -> Result<Vec<Product>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(product).collect()
    }

    pub async fn customer(&self, id: &str) -> Result<Option<Customer>> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(customer).transpose()
    }

    /// Every customer, by id.
    pub async fn customers(&self) -> Result<Vec<Customer>> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(customer).collect()
    }

    pub async fn supplier(&self, id: &str) -> Result<Option<Supplier>> {
        let sql = format!("SELECT {SUPPLIER_COLUMNS} FROM suppliers WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(supplier).transpose()
    }

    /// Every supplier, by id.
    pub async fn suppliers(&self) -> Result<Vec<Supplier>> {
        let sql = format!("SELECT {SUPPLIER_COLUMNS} FROM suppliers ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(supplier).collect()
    }

    /// Every supplier offer, by supplier then product.
    pub async fn offers(&self) -> Result<Vec<SupplierOffer>> {
        let rows = sqlx::query(
            "SELECT supplier_id, product_id, unit_price FROM supplier_offers \
             ORDER BY supplier_id, product_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SupplierOffer {
                    supplier_id: row.try_get("supplier_id")?,
                    product_id: row.try_get("product_id")?,
                    unit_price: row.try_get("unit_price")?,
                })
            })
            .collect()
    }

    /// The offers for each product: `(supplier, unit price)` per product id.
    pub async fn offers_by_product(&self) -> Result<HashMap<String, Vec<(Supplier, f64)>>> {
        let suppliers: HashMap<String, Supplier> = self
            .suppliers()
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let mut by_product: HashMap<String, Vec<(Supplier, f64)>> = HashMap::new();
        for offer in self.offers().await? {
            if let Some(supplier) = suppliers.get(&offer.supplier_id) {
                by_product
                    .entry(offer.product_id)
                    .or_default()
                    .push((supplier.clone(), offer.unit_price));
            }
        }
        Ok(by_product)
    }

    /// Rows per entity table, for summaries and tests.
    pub async fn counts(&self) -> Result<HashMap<&'static str, i64>> {
        let mut counts = HashMap::new();
        for table in [
            "suppliers",
            "products",
            "supplier_offers",
            "customers",
            "transaction_ledger",
            "reorder_suggestions",
            "purchase_orders",
        ] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&self.reader).await?;
            counts.insert(table, n);
        }
        Ok(counts)
    }

    /// Writes (inserting or replacing by id) every entity of `write`, and its ledger rows
    /// as `pending`, in one transaction: all of it or, on any error, none of it.
    pub async fn write_catalog(&self, write: &CatalogWrite) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for s in &write.suppliers {
            sqlx::query::<Db>(
                "INSERT INTO suppliers (id, name, reliability, avg_delivery_days) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 reliability = excluded.reliability, avg_delivery_days = excluded.avg_delivery_days",
            )
            .bind(&s.id)
            .bind(&s.name)
            .bind(s.reliability)
            .bind(s.avg_delivery_days)
            .execute(&mut *tx)
            .await?;
        }
        for p in &write.products {
            sqlx::query::<Db>(
                "INSERT INTO products (id, name, category, price, cost, stock, reorder_point, \
                 supplier_id, lead_time_days) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 category = excluded.category, price = excluded.price, cost = excluded.cost, \
                 stock = excluded.stock, reorder_point = excluded.reorder_point, \
                 supplier_id = excluded.supplier_id, lead_time_days = excluded.lead_time_days",
            )
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.category)
            .bind(p.price)
            .bind(p.cost)
            .bind(p.stock)
            .bind(p.reorder_point)
            .bind(&p.supplier_id)
            .bind(p.lead_time_days)
            .execute(&mut *tx)
            .await?;
        }
        for o in &write.offers {
            sqlx::query::<Db>(
                "INSERT INTO supplier_offers (supplier_id, product_id, unit_price) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (supplier_id, product_id) DO UPDATE SET unit_price = excluded.unit_price",
            )
            .bind(&o.supplier_id)
            .bind(&o.product_id)
            .bind(o.unit_price)
            .execute(&mut *tx)
            .await?;
        }
        for c in &write.customers {
            sqlx::query::<Db>(
                "INSERT INTO customers (id, name, loyalty_tier, region, signup_ts) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 loyalty_tier = excluded.loyalty_tier, region = excluded.region, \
                 signup_ts = excluded.signup_ts",
            )
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.loyalty_tier)
            .bind(&c.region)
            .bind(c.signup_ts)
            .execute(&mut *tx)
            .await?;
        }
        for entry in &write.ledger {
            insert_entry(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
