//! The metadata store: products, suppliers and their offers, customers, the transaction
//! ledger, forecasts, reorder suggestions and purchase orders, in an embedded SQLite
//! database (`<data_dir>/commerce.db`, WAL journal) through sqlx.
//!
//! Portability: every statement is standard SQL with `$n` placeholders, epoch
//! milliseconds in `BIGINT`, upserts as `INSERT ... ON CONFLICT`, and `RETURNING`, all of
//! which PostgreSQL speaks too; the backend is named once ([`Db`]) and the connection
//! options once ([`Store::open`]), so pointing at PostgreSQL later changes those two and
//! the migrations folder, not the queries.
//!
//! Concurrency: writes go through a pool of one connection, so SQLite's single writer is
//! never contended inside the process (no `SQLITE_BUSY` under load); reads use a pool of
//! their own and, in WAL mode, never wait for the writer. Invariants that must hold under
//! concurrency are written in SQL (`stock = stock - q WHERE stock >= q`, a unique
//! purchase order per suggestion), so they also hold on a multi-writer database.
//!
//! Layout: [`catalog`] (entities), [`ledger`] (stock reservations of transactions),
//! [`reorder`] (forecasts, suggestions, purchase orders).

pub mod catalog;
pub mod ledger;
pub mod reorder;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serializer;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tidewatch_types::time::format_rfc3339_ms;

use crate::error::Result;

pub use catalog::CatalogWrite;
pub use ledger::{LedgerEntry, LedgerState, Reservation};
pub use reorder::{PurchaseOrder, StoredForecast, Suggestion, SuggestionDraft, SuggestionStatus};

/// The database backend. PostgreSQL later: `sqlx::Postgres`.
pub type Db = sqlx::Sqlite;
type Pool = sqlx::Pool<Db>;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "commerce.db";

/// Reader connections; SQLite in WAL mode serves them concurrently with the writer.
const READERS: u32 = 4;
/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The two pools over one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// One connection: the only writer in the process.
    pub(crate) writer: Pool,
    reader: Pool,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/commerce.db` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Store> {
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed reservation survives a power loss, like an acknowledged
            // event under the WAL's `always` policy.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Store { writer, reader })
    }

    /// Closes both pools, checkpointing the SQLite WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Serializes epoch milliseconds as the API prints times.
pub(crate) fn rfc3339<S: Serializer>(ts: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_rfc3339_ms(*ts))
}

/// [`rfc3339`] for optional times.
pub(crate) fn rfc3339_opt<S: Serializer>(
    ts: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => serializer.serialize_str(&format_rfc3339_ms(*ts)),
        None => serializer.serialize_none(),
    }
}
