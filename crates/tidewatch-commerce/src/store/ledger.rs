//! The transaction ledger: one row per transaction id, holding its stock reservation
//! until the transaction's event is durable in the stream.
//!
//! A sale is `reserve` (ledger row `pending` + stock decrement, one database
//! transaction), then the event write, then `confirm` (`committed`). If the event write
//! fails, `release` gives the units back and forgets the id. If the process dies in
//! between, recovery finds the `pending` row and either confirms it (the event is in the
//! stream) or releases it (it is not).

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::{Error, Result};
use crate::store::{Db, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerState {
    Pending,
    Committed,
}

impl LedgerState {
    fn as_str(self) -> &'static str {
        match self {
            LedgerState::Pending => "pending",
            LedgerState::Committed => "committed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerEntry {
    /// The transaction id (a UUID in canonical text form).
    pub id: String,
    /// The event time of the transaction, epoch milliseconds.
    pub ts: i64,
    pub customer_id: String,
    pub product_id: String,
    pub quantity: i64,
    /// Units taken from stock: `quantity` for a sale, 0 for imported history.
    pub reserved: i64,
    pub state: LedgerState,
    pub created_ms: i64,
}

/// What [`Store::reserve`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The units are taken; the row is `pending`.
    Reserved { stock_after: i64 },
    /// The id is already in the ledger: nothing changed.
    Existing(LedgerEntry),
    /// Fewer than the requested units remain: nothing changed.
    Insufficient { available: i64 },
    /// No such product: nothing changed.
    UnknownProduct,
}

const COLUMNS: &str = "id, ts, customer_id, product_id, quantity, reserved, state, created_ms";

fn entry(row: &SqliteRow) -> Result<LedgerEntry> {
    let state: String = row.try_get("state")?;
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        customer_id: row.try_get("customer_id")?,
        product_id: row.try_get("product_id")?,
        quantity: row.try_get("quantity")?,
        reserved: row.try_get("reserved")?,
        state: match state.as_str() {
            "pending" => LedgerState::Pending,
            "committed" => LedgerState::Committed,
            other => {
                return Err(Error::Internal(format!(
                    "ledger row has an unknown state {other:?}"
                )));
            }
        },
        created_ms: row.try_get("created_ms")?,
    })
}

/// Inserts `entry` unless its id exists; returns whether it was inserted.
pub(crate) async fn insert_entry(
    conn: &mut sqlx::SqliteConnection,
    entry: &LedgerEntry,
) -> Result<bool> {
    let inserted = sqlx::query::<Db>(
        "INSERT INTO transaction_ledger (id, ts, customer_id, product_id, quantity, reserved, \
         state, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&entry.id)
    .bind(entry.ts)
    .bind(&entry.customer_id)
    .bind(&entry.product_id)
    .bind(entry.quantity)
    .bind(entry.reserved)
    .bind(entry.state.as_str())
    .bind(entry.created_ms)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

impl Store {
    /// Records `entry` as `pending` and takes `entry.reserved` units of its product, in one
    /// database transaction: `UPDATE ... SET stock = stock - q WHERE stock >= q`, so no
    /// interleaving of concurrent sales ever sells more than the stock.
    pub async fn reserve(&self, entry: &LedgerEntry) -> Result<Reservation> {
        debug_assert_eq!(entry.state, LedgerState::Pending);
        let mut tx = self.writer.begin().await?;
        // A write first, so the transaction holds the write lock from its first statement.
        if !insert_entry(&mut tx, entry).await? {
            let sql = format!("SELECT {COLUMNS} FROM transaction_ledger WHERE id = $1");
            let row = sqlx::query(&sql)
                .bind(&entry.id)
                .fetch_one(&mut *tx)
                .await?;
            let existing = self::entry(&row)?;
            tx.rollback().await?;
            return Ok(Reservation::Existing(existing));
        }
        let updated = sqlx::query_scalar::<Db, i64>(
            "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1 RETURNING stock",
        )
        .bind(entry.reserved)
        .bind(&entry.product_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(stock_after) = updated {
            tx.commit().await?;
            return Ok(Reservation::Reserved { stock_after });
        }
        let available = sqlx::query_scalar::<Db, i64>("SELECT stock FROM products WHERE id = $1")
            .bind(&entry.product_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(match available {
            Some(available) => Reservation::Insufficient { available },
            None => Reservation::UnknownProduct,
        })
    }

    /// Marks `ids` committed: their events are durable in the stream.
    pub async fn confirm(&self, ids: &[String]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for id in ids {
            sqlx::query::<Db>("UPDATE transaction_ledger SET state = 'committed' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Undoes a `pending` entry: gives its reserved units back and forgets the id.
    /// Returns false (and changes nothing) unless the entry exists and is pending.
    pub async fn release(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query::<Db>(
            "DELETE FROM transaction_ledger WHERE id = $1 AND state = 'pending' \
             RETURNING product_id, reserved",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = deleted else {
            tx.rollback().await?;
            return Ok(false);
        };
        let product_id: String = row.try_get("product_id")?;
        let reserved: i64 = row.try_get("reserved")?;
        if reserved > 0 {
            sqlx::query::<Db>("UPDATE products SET stock = stock + $1 WHERE id = $2")
                .bind(reserved)
                .bind(&product_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn ledger_entry(&self, id: &str) -> Result<Option<LedgerEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM transaction_ledger WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(entry).transpose()
    }

    /// The ids among `ids` already in the ledger (for import: skipped as duplicates).
    pub async fn known_ids(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id FROM transaction_ledger WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_scalar::<Db, String>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            known.extend(query.fetch_all(&self.reader).await?);
        }
        Ok(known)
    }

    /// Entries whose event may not have reached the stream, oldest first.
    pub async fn pending_entries(&self) -> Result<Vec<LedgerEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transaction_ledger WHERE state = 'pending' ORDER BY created_ms, id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(entry).collect()
    }
}
