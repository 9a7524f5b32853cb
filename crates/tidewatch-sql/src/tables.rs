//! The tables a query sees: one per stream and one per rollup window, resolved lazily.
//!
//! [`TidewatchSchema`] is built per query. It lists table names from the catalog when the
//! query starts and builds a table only when the query references it: a stream table
//! takes a snapshot of the stream (hot batches and segments, shared by `Arc`), a rollup
//! table copies the rows of one window width. A table is built once per query, so a
//! self-join reads one snapshot, and the snapshot (with the segments it holds, which
//! retention cannot delete while held) lives until the query's state is dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DFSchema, project_schema};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::MemTable;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use parking_lot::Mutex;
use tidewatch_engine::{Engine, RollupSpec, Segment, StoreSnapshot};
use tidewatch_store::convert::ts_range;
use tidewatch_types::WindowWidth;

use crate::prune::TimeBounds;

/// `market.ticks` -> `market_ticks`.
pub fn stream_table_name(stream: &str) -> String {
    stream.replace('.', "_")
}

/// `market.ticks`, `ohlc`, 5m -> `market_ticks_ohlc_5m`.
pub fn rollup_table_name(stream: &str, rollup: &str, window: WindowWidth) -> String {
    format!("{}_{rollup}_{window}", stream_table_name(stream))
}

/// What a table name reads.
#[derive(Debug, Clone)]
enum Source {
    Stream(String),
    Rollup {
        stream: String,
        spec: RollupSpec,
        window: WindowWidth,
    },
}

/// The `public` schema of one query.
pub(crate) struct TidewatchSchema {
    engine: Arc<Engine>,
    /// Every table name, from the catalog when the query started. Stream tables win a
    /// name clash with a rollup table; between streams (`a.b` and `a_b`), the first by
    /// name wins.
    sources: BTreeMap<String, Source>,
    /// Tables built so far for this query.
    built: Mutex<BTreeMap<String, Arc<dyn TableProvider>>>,
}

impl fmt::Debug for TidewatchSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TidewatchSchema")
            .field("tables", &self.sources.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TidewatchSchema {
    pub(crate) fn new(engine: Arc<Engine>) -> TidewatchSchema {
        let mut sources = BTreeMap::new();
        let streams = engine.streams();
        for stream in &streams {
            sources
                .entry(stream_table_name(&stream.name))
                .or_insert_with(|| Source::Stream(stream.name.clone()));
        }
        for stream in &streams {
            for spec in &stream.rollups {
                for &window in &spec.windows {
                    sources
                        .entry(rollup_table_name(&stream.name, &spec.name, window))
                        .or_insert_with(|| Source::Rollup {
                            stream: stream.name.clone(),
                            spec: spec.clone(),
                            window,
                        });
                }
            }
        }
        TidewatchSchema {
            engine,
            sources,
            built: Mutex::new(BTreeMap::new()),
        }
    }

    fn build(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.built.lock().get(name) {
            return Ok(Some(Arc::clone(table)));
        }
        let Some(source) = self.sources.get(name) else {
            return Ok(None);
        };
        let table: Arc<dyn TableProvider> = match source {
            Source::Stream(stream) => {
                let (schema, snapshot) = self
                    .engine
                    .store_snapshot(stream, None, None)
                    .map_err(external)?;
                Arc::new(StreamTable::new(stream.clone(), schema, snapshot))
            }
            Source::Rollup {
                stream,
                spec,
                window,
            } => {
                let (_, rows) = self
                    .engine
                    .rollup_query(stream, &spec.name, Some(*window), None, None, &[])
                    .map_err(external)?;
                let batch = tidewatch_engine::rows_to_batch(spec, &rows).map_err(external)?;
                Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)
            }
        };
        Ok(Some(Arc::clone(
            self.built.lock().entry(name.to_owned()).or_insert(table),
        )))
    }
}

// `SchemaProvider` is an `async_trait`; its async method is written out as the macro
// would expand it, so this crate needs no proc-macro dependency of its own.
impl SchemaProvider for TidewatchSchema {
    fn table_names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    fn table<'a, 'b, 'r>(
        &'a self,
        name: &'b str,
    ) -> Pin<Box<dyn Future<Output = DfResult<Option<Arc<dyn TableProvider>>>> + Send + 'r>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        Box::pin(async move { self.build(name) })
    }

    fn table_exist(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }
}

fn external(error: tidewatch_engine::Error) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

/// A stream's events: the hot batches of the snapshot unioned with a Parquet scan of its
/// segments. Tags, dictionary-encoded in the store, are `Utf8View` here: DataFusion groups
/// string views with specialised code and dictionaries through its generic row format
/// (count by tag over 10 M events: about 25% faster, see docs/BENCHMARKS.md).
pub(crate) struct StreamTable {
    stream: String,
    schema: SchemaRef,
    snapshot: StoreSnapshot,
}

impl fmt::Debug for StreamTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTable")
            .field("stream", &self.stream)
            .field("hot_batches", &self.snapshot.hot.len())
            .field("segments", &self.snapshot.segments.len())
            .finish()
    }
}

impl StreamTable {
    /// `store_schema` is the hot store's (and the segment files') Arrow schema.
    pub(crate) fn new(
        stream: String,
        store_schema: SchemaRef,
        snapshot: StoreSnapshot,
    ) -> StreamTable {
        let fields: Vec<Field> = store_schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Dictionary(_, _) => {
                    field.as_ref().clone().with_data_type(DataType::Utf8View)
                }
                _ => field.as_ref().clone(),
            })
            .collect();
        StreamTable {
            stream,
            schema: Arc::new(Schema::new(fields)),
            snapshot,
        }
    }

    fn plan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let bounds = TimeBounds::from_filters(filters, "ts");
        let partitions = state.config().target_partitions().max(1);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);

        let hot: Vec<&RecordBatch> = self
            .snapshot
            .hot
            .iter()
            .filter(|batch| {
                batch.num_rows() > 0
                    && ts_range(batch).is_none_or(|(min, max)| bounds.overlaps(min, max))
            })
            .collect();
        if !hot.is_empty() {
            let mut groups = vec![Vec::new(); partitions.min(hot.len())];
            let group_count = groups.len();
            for (i, batch) in hot.into_iter().enumerate() {
                groups[i % group_count].push(self.cast_hot(batch, projection)?);
            }
            let source = MemorySourceConfig::try_new(
                &groups,
                Arc::clone(&self.schema),
                projection.cloned(),
            )?
            .with_limit(limit);
            inputs.push(DataSourceExec::from_data_source(source));
        }

        let segments: Vec<&Arc<Segment>> = self
            .snapshot
            .segments
            .iter()
            .filter(|s| bounds.overlaps(s.meta.min_ts, s.meta.max_ts))
            .collect();
        if !segments.is_empty() {
            inputs
                .push(self.parquet_scan(state, &segments, projection, filters, limit, partitions)?);
        }

        if inputs.is_empty() {
            return Ok(Arc::new(EmptyExec::new(project_schema(
                &self.schema,
                projection,
            )?)));
        }
        UnionExec::try_new(inputs)
    }

    /// A hot batch in the table's schema (tags as string views). Only the projected
    /// columns are cast; the others become nulls the plan never reads.
    fn cast_hot(
        &self,
        batch: &RecordBatch,
        projection: Option<&Vec<usize>>,
    ) -> DfResult<RecordBatch> {
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .enumerate()
            .map(|(i, (column, field))| {
                if column.data_type() == field.data_type() {
                    Ok(Arc::clone(column))
                } else if projection.is_none_or(|p| p.contains(&i)) {
                    Ok(cast(column, field.data_type())?)
                } else {
                    Ok(new_null_array(field.data_type(), column.len()))
                }
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Reads the segment files with the query's filters as the Parquet predicate, so row
    /// groups and pages whose statistics (time, tags) cannot match are skipped.
    fn parquet_scan(
        &self,
        state: &dyn Session,
        segments: &[&Arc<Segment>],
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
        partitions: usize,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut options = TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..TableParquetOptions::default()
        };
        // Decode the dictionary-encoded tag pages straight into string views (the
        // table's tag type) rather than into the dictionaries the files' Arrow schema
        // names.
        options.global.skip_metadata = true;
        options.global.schema_force_view_types = true;
        // Segments never change once written (a new seal is a new file), so their footers
        // and page indexes are parsed once and kept in the runtime's metadata cache
        // rather than read again by every query.
        let runtime = state.runtime_env();
        let store = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
        let readers = CachedParquetFileReaderFactory::new(
            store,
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let mut source = ParquetSource::new(Arc::clone(&self.schema))
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(readers));
        if let Some(predicate) = conjunction(filters.iter().cloned()) {
            let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
            // A filter that cannot become a predicate only loses pruning: it still runs.
            if let Ok(predicate) = state.create_physical_expr(predicate, &df_schema) {
                source = source.with_predicate(predicate);
            }
        }

        let mut groups: Vec<Vec<PartitionedFile>> =
            vec![Vec::new(); partitions.min(segments.len())];
        let group_count = groups.len();
        for (i, segment) in segments.iter().enumerate() {
            let location = ObjectPath::from_filesystem_path(&segment.path)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut file = PartitionedFile::new(String::new(), segment.meta.bytes);
            file.object_meta.location = location;
            groups[i % group_count].push(file);
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

// `TableProvider` is an `async_trait`; `scan` is written out as the macro would expand it.
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn scan<'a, 'b, 'c, 'd, 'r>(
        &'a self,
        state: &'b dyn Session,
        projection: Option<&'c Vec<usize>>,
        filters: &'d [Expr],
        limit: Option<usize>,
    ) -> Pin<Box<dyn Future<Output = DfResult<Arc<dyn ExecutionPlan>>> + Send + 'r>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        'd: 'r,
        Self: 'r,
    {
        Box::pin(async move { self.plan(state, projection, filters, limit) })
    }

    /// Every filter is passed to the scan for pruning and still applied above it.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}
