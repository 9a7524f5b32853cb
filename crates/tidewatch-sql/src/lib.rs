//! Read-only SQL (DataFusion) over streams and rollups.
//!
//! `hot store + Parquet segments + rollups -> tables -> DataFusion -> result -> format`
//!
//! Every stream is a table (`market.ticks` -> `market_ticks`) that unions the stream's hot
//! record batches with a Parquet scan of its segments; every rollup window width is a
//! table (`market_ticks_ohlc_5m`). Tables are resolved per query from a fresh snapshot.
//!
//! Invariants:
//! - Nothing a query says can write: one statement, a query or `EXPLAIN` of one, checked
//!   on the syntax tree and again on the plan; no file-reading table functions, no URL
//!   tables, no table factories or file formats registered.
//! - A query ends within `timeout` (it is dropped, which cancels its operators, and the
//!   caller gets [`Error::Timeout`]), holds at most `memory_limit` in its operators
//!   (shared by running queries; nothing spills) and returns at most `max_rows` rows.
//! - Queries run on the SQL runtime's own threads, never on the caller's workers.
//!
//! Layout:
//! - [`config`]: [`SqlConfig`], the limits and their defaults.
//! - [`error`]: [`Error`], one variant per answer the server gives.
//! - `guard`: the read-only rule on the parsed statement.
//! - [`tables`]: table names, the per-query schema, stream and rollup tables.
//! - `prune`: time bounds from filters, to skip batches and segments.
//! - [`format`]: [`Format`] and [`encode`]: JSON, CSV, NDJSON, Arrow IPC, Parquet.

pub mod config;
pub mod error;
pub mod format;
mod guard;
mod prune;
pub mod tables;

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig};
use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures_util::StreamExt;
use tidewatch_engine::Engine;
use tokio::task::JoinHandle;

pub use config::{ByteSize, SqlConfig};
/// The Arrow and Parquet crates this one writes with, for readers of its output (the CLI,
/// tests).
pub use datafusion::{arrow, parquet};
pub use error::{Error, Result};
pub use format::{Format, encode};

/// Catalog and schema the tables live in; unqualified names resolve there.
const CATALOG: &str = "tidewatch";
const SCHEMA: &str = "public";

/// A query's answer.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Runs read-only SQL over an engine's streams and rollups under the configured limits.
pub struct SqlEngine {
    engine: Arc<Engine>,
    config: SqlConfig,
    /// Settings, functions and the memory pool every query shares; each query runs on a
    /// clone with its own catalog.
    base: SessionState,
    /// The threads queries run on. `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl SqlEngine {
    pub fn new(engine: Arc<Engine>, config: SqlConfig) -> Result<SqlEngine> {
        let threads = config.threads.max(1);
        let pool_bytes = usize::try_from(config.memory_limit.bytes()).unwrap_or(usize::MAX);
        // Names the three largest consumers when the limit is hit.
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(pool_bytes),
            NonZeroUsize::MIN.saturating_add(2),
        );
        let runtime_env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            // Over the limit is an error, not a spill to disk.
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| Error::Internal(format!("building the SQL runtime: {e}")))?;
        let session = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, SCHEMA);
        let base = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(runtime_env)
            .with_default_features()
            // No CREATE EXTERNAL TABLE or COPY targets, even if a statement got through.
            .with_table_factories(Default::default())
            .with_file_formats(Vec::new())
            .build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tidewatch-sql")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the SQL threads: {e}")))?;
        Ok(SqlEngine {
            engine,
            config,
            base,
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &SqlConfig {
        &self.config
    }

    /// Runs one read-only statement and collects its result, within the limits.
    pub async fn query(&self, sql: &str) -> Result<QueryResult> {
        let started = Instant::now();
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Internal("the SQL engine is shut down".into()))?;
        let state = self.session()?;
        let work = run(
            state,
            sql.to_owned(),
            self.config.max_rows,
            self.config.memory_limit,
        );
        // Dropping the task (timeout, or the caller going away) aborts it, which drops
        // the plan's streams and the tasks they spawned.
        let task = AbortOnDrop(runtime.spawn(work));
        let outcome = match tokio::time::timeout(self.config.timeout, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Err(Error::Internal(format!("the query task failed: {join}"))),
            Err(_) => Err(Error::Timeout(self.config.timeout)),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(result) => tracing::debug!(elapsed_ms, rows = result.row_count(), "sql query"),
            Err(e) if e.is_client_error() => {
                tracing::debug!(elapsed_ms, error = %e, "sql query refused")
            }
            Err(e) => tracing::warn!(elapsed_ms, error = %e, "sql query failed"),
        }
        outcome
    }

    /// A session whose `tidewatch.public` schema lists the engine's tables now.
    fn session(&self) -> Result<SessionState> {
        let internal = |e: datafusion::error::DataFusionError| Error::Internal(e.to_string());
        let schema = tables::TidewatchSchema::new(Arc::clone(&self.engine));
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(SCHEMA, Arc::new(schema))
            .map_err(internal)?;
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(CATALOG.to_owned(), Arc::new(catalog));
        let mut state = self.base.clone();
        state.register_catalog_list(Arc::new(catalogs));
        // Fixes now() for the query.
        state.mark_start_execution();
        Ok(state)
    }
}

impl Drop for SqlEngine {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it go.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Parses, checks, plans, executes and collects, on the SQL runtime.
async fn run(
    state: SessionState,
    sql: String,
    max_rows: usize,
    memory_limit: ByteSize,
) -> Result<QueryResult> {
    let fail = |e| Error::from_datafusion(e, memory_limit);
    let recursion_limit = state.config().options().sql_parser.recursion_limit.get();
    let statements = DFParserBuilder::new(sql.as_str())
        .with_dialect(&GenericDialect {})
        .with_recursion_limit(recursion_limit)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(fail)?;
    let statement = guard::single_read_only_statement(statements)?;
    let plan = state.statement_to_plan(statement).await.map_err(fail)?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| {
            Error::Rejected(format!(
                "only SELECT, WITH and EXPLAIN are allowed; {}",
                e.strip_backtrace()
            ))
        })?;
    let physical = state.create_physical_plan(&plan).await.map_err(fail)?;
    let physical = yielding_joins(physical).map_err(fail)?;
    let schema = physical.schema();
    let mut stream = execute_stream(physical, state.task_ctx()).map_err(fail)?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(fail)?;
        rows += batch.num_rows();
        if rows > max_rows {
            return Err(Error::TooManyRows { max: max_rows });
        }
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok(QueryResult { schema, batches })
}

/// Wraps the output of every operator that can emit many batches per batch it reads
/// (joins, unnest) so each batch spends the task's cooperative budget. Without it an
/// aggregation over a large cross join polls in a loop that never yields, and a timed-out
/// query keeps its threads busy for seconds: cancellation takes effect only at a yield.
fn yielding_joins(
    plan: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let amplifies = node.children().len() >= 2 || node.name() == "UnnestExec";
        if amplifies {
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|transformed| transformed.data)
}

/// A spawned task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
