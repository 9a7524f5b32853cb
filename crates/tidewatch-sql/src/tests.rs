//! The SQL engine over a real engine: the read-only rule, the limits, stream and rollup
//! tables checked against sums computed here from the posted events, and the cold path
//! (a Parquet segment unioned with hot batches).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use serde_json::json;
use tidewatch_engine::{Engine, EngineConfig, RollupSpec, Segment, StoreSnapshot};
use tidewatch_ingest::Format as Body;
use tidewatch_store::segment::write_segment;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

use super::*;

/// 2024-05-01T00:00:00Z, minute-aligned.
const T0: i64 = 1_714_521_600_000;
const SYMBOLS: [&str; 3] = ["AAA", "BBB", "CCC"];

#[derive(Debug, Clone, Copy)]
struct Tick {
    ts: i64,
    symbol: &'static str,
    price: f64,
    size: f64,
}

/// 300 ticks over 10 minutes, with prices and sizes that sum exactly in binary.
fn ticks() -> Vec<Tick> {
    (0..300)
        .map(|i: i64| Tick {
            ts: T0 + i * 2_000,
            symbol: SYMBOLS[(i % 3) as usize],
            price: 100.0 + (i % 7) as f64 * 0.25,
            size: (1 + i % 5) as f64,
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
}

async fn engine_with(ticks: &[Tick]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(EngineConfig::test_config(dir.path())).unwrap());
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    engine
        .declare_stream(StreamSchema {
            name: "market.ticks".into(),
            tags: vec!["symbol".into()],
            fields: vec![field("price"), field("size")],
        })
        .unwrap();
    let spec: RollupSpec = serde_json::from_value(json!({
        "name": "ohlc", "group_by": ["symbol"], "windows": ["1m", "5m"],
        "aggregates": {"high": "max(price)", "volume": "sum(size)", "trades": "count"}
    }))
    .unwrap();
    engine.declare_rollup("market.ticks", spec).unwrap();
    if !ticks.is_empty() {
        let body: Vec<serde_json::Value> = ticks
            .iter()
            .map(|t| json!({"ts": t.ts, "symbol": t.symbol, "price": t.price, "size": t.size}))
            .collect();
        let body = serde_json::to_vec(&body).unwrap();
        engine
            .ingest("market.ticks", &body, Body::JsonArray, false)
            .await
            .unwrap();
    }
    Fixture { _dir: dir, engine }
}

fn sql_engine(fixture: &Fixture, config: SqlConfig) -> SqlEngine {
    SqlEngine::new(Arc::clone(&fixture.engine), config).unwrap()
}

/// `(key column, value column)` of a two-column result, keys as text.
fn pairs_f64(result: &QueryResult) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for batch in &result.batches {
        let keys = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let keys = keys.as_string::<i32>();
        let values = datafusion::arrow::compute::cast(
            batch.column(1),
            &datafusion::arrow::datatypes::DataType::Float64,
        )
        .unwrap();
        let values = values.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            out.insert(keys.value(i).to_owned(), values.value(i));
        }
    }
    out
}

fn single_i64(result: &QueryResult) -> i64 {
    let batch = &result.batches[0];
    assert_eq!(result.row_count(), 1);
    batch.column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn counts_and_sums_by_symbol_match_the_posted_ticks() {
    let ticks = ticks();
    let fixture = engine_with(&ticks).await;
    let sql = sql_engine(&fixture, SqlConfig::test_config());

    let result = sql
        .query("SELECT symbol, count(*) FROM market_ticks GROUP BY symbol")
        .await
        .unwrap();
    let mut expected_counts: BTreeMap<String, f64> = BTreeMap::new();
    let mut expected_volume: BTreeMap<String, f64> = BTreeMap::new();
    for t in &ticks {
        *expected_counts.entry(t.symbol.into()).or_default() += 1.0;
        *expected_volume.entry(t.symbol.into()).or_default() += t.size;
    }
    assert_eq!(pairs_f64(&result), expected_counts);

    let result = sql
        .query("SELECT symbol, sum(size) FROM market_ticks WHERE ts >= '2024-05-01T00:00:00Z' GROUP BY symbol")
        .await
        .unwrap();
    assert_eq!(pairs_f64(&result), expected_volume);

    // A time filter: the first five minutes only.
    let cut = T0 + 300_000;
    let result = sql
        .query(&format!(
            "SELECT count(*) FROM market_ticks WHERE ts < to_timestamp_millis({cut})"
        ))
        .await
        .unwrap();
    let expected = ticks.iter().filter(|t| t.ts < cut).count() as i64;
    assert_eq!(single_i64(&result), expected);
}

#[tokio::test]
async fn rollup_tables_hold_the_rollup_rows() {
    let fixture = engine_with(&ticks()).await;
    let sql = sql_engine(&fixture, SqlConfig::test_config());
    let window = "5m".parse().unwrap();
    let (_, rows) = fixture
        .engine
        .rollup_query("market.ticks", "ohlc", Some(window), None, None, &[])
        .unwrap();
    assert!(!rows.is_empty());

    let result = sql
        .query(
            "SELECT window_start, window_end, closed, symbol, high, volume, trades \
             FROM market_ticks_ohlc_5m ORDER BY window_start, symbol",
        )
        .await
        .unwrap();
    assert_eq!(result.row_count(), rows.len());
    let mut expected = rows.clone();
    expected.sort_by(|a, b| {
        (a.window_start, a.group[0].1.clone()).cmp(&(b.window_start, b.group[0].1.clone()))
    });
    let mut i = 0;
    for batch in &result.batches {
        let starts = batch.column(0).as_primitive::<TimestampMillisecondType>();
        let ends = batch.column(1).as_primitive::<TimestampMillisecondType>();
        let closed = batch.column(2).as_boolean();
        let symbols = batch.column(3).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let want = &expected[i];
            assert_eq!(starts.value(row), want.window_start);
            assert_eq!(ends.value(row), want.window_end);
            assert_eq!(closed.value(row), want.closed);
            assert_eq!(Some(symbols.value(row)), want.group[0].1.as_deref());
            for (column, (name, value)) in want.values.iter().enumerate() {
                let got = batch.column(4 + column).as_primitive::<Float64Type>();
                assert_eq!(result.schema.field(4 + column).name(), name);
                assert_eq!(Some(got.value(row)), *value, "{name} of row {i}");
            }
            i += 1;
        }
    }

    // Every declared window is a table; undeclared ones are not.
    let names = sql
        .query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")
        .await
        .unwrap();
    let names: Vec<String> = names
        .batches
        .iter()
        .flat_map(|b| {
            let column = datafusion::arrow::compute::cast(
                b.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            (0..column.len())
                .map(move |i| column.as_string::<i32>().value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        names,
        [
            "market_ticks",
            "market_ticks_ohlc_1m",
            "market_ticks_ohlc_5m"
        ]
    );
    let err = sql
        .query("SELECT * FROM market_ticks_ohlc_15m")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err:?}");
}

#[tokio::test]
async fn only_single_read_only_queries_are_accepted() {
    let fixture = engine_with(&ticks()[..10]).await;
    let sql = sql_engine(&fixture, SqlConfig::test_config());
    let rejected = [
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        (
            "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc'",
            "CREATE EXTERNAL TABLE",
        ),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("INSERT INTO market_ticks (symbol) VALUES ('X')", "INSERT"),
        ("UPDATE market_ticks SET price = 0", "UPDATE"),
        ("DELETE FROM market_ticks", "DELETE"),
        ("DROP TABLE market_ticks", "DROP TABLE"),
        (
            "COPY (SELECT 1) TO '/tmp/tidewatch-sql-copy-test.csv'",
            "COPY",
        ),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("SELECT 1 INTO t2", "SELECT INTO"),
        ("EXPLAIN CREATE TABLE t (a INT)", "CREATE TABLE"),
        (
            "WITH w AS (SELECT 1) INSERT INTO market_ticks (symbol) SELECT 'x'",
            "INSERT",
        ),
        ("", "no statement"),
    ];
    for (statement, reason) in rejected {
        match sql.query(statement).await {
            Err(Error::Rejected(message)) => {
                assert!(
                    message.starts_with("only SELECT, WITH and EXPLAIN are allowed")
                        && message.ends_with(&format!("got {reason}")),
                    "{statement:?}: {message}"
                );
            }
            other => panic!("{statement:?} was not rejected: {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/tidewatch-sql-copy-test.csv").exists());

    // No way to read files: URL tables are off, file-reading functions do not exist.
    for statement in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/x')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        let err = sql.query(statement).await.unwrap_err();
        assert!(matches!(err, Error::Query(_)), "{statement:?}: {err:?}");
    }

    // Read-only statements pass.
    for statement in [
        "SELECT 1",
        "WITH w AS (SELECT count(*) AS n FROM market_ticks) SELECT n FROM w",
        "VALUES (1), (2)",
        "EXPLAIN SELECT * FROM market_ticks WHERE symbol = 'AAA'",
        "SELECT * FROM generate_series(1, 3)",
    ] {
        sql.query(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement:?}: {e}"));
    }
    let result = sql
        .query("select count(*) from market_ticks")
        .await
        .unwrap();
    assert_eq!(single_i64(&result), 10);
}

#[tokio::test]
async fn a_query_past_its_timeout_is_cancelled_and_the_next_one_runs() {
    let fixture = engine_with(&[]).await;
    let sql = sql_engine(
        &fixture,
        SqlConfig {
            timeout: Duration::from_millis(200),
            ..SqlConfig::test_config()
        },
    );
    let started = std::time::Instant::now();
    let err = sql
        .query("SELECT sum(a.value * b.value) FROM generate_series(1, 200000) a CROSS JOIN generate_series(1, 200000) b")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert_eq!(err.to_string(), "query exceeded the 200ms timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let result = sql
        .query("SELECT count(*) FROM generate_series(1, 1000)")
        .await
        .unwrap();
    assert_eq!(single_i64(&result), 1000);
}

#[tokio::test]
async fn a_query_over_the_memory_limit_fails_and_the_next_one_runs() {
    let fixture = engine_with(&[]).await;
    let sql = sql_engine(
        &fixture,
        SqlConfig {
            memory_limit: ByteSize(1 << 20),
            ..SqlConfig::test_config()
        },
    );
    let err = sql
        .query("SELECT count(*) FROM (SELECT value, count(*) FROM generate_series(1, 3000000) GROUP BY value)")
        .await
        .unwrap_err();
    match &err {
        Error::MemoryLimit { limit, .. } => assert_eq!(*limit, ByteSize(1 << 20)),
        other => panic!("not a memory error: {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("query exceeded the memory limit of 1MiB"),
        "{err}"
    );
    let result = sql
        .query("SELECT count(*) FROM (SELECT value % 10, count(*) FROM generate_series(1, 10000) GROUP BY value % 10)")
        .await
        .unwrap();
    assert_eq!(single_i64(&result), 10);
}

#[tokio::test]
async fn results_over_max_rows_are_refused() {
    let fixture = engine_with(&[]).await;
    let sql = sql_engine(
        &fixture,
        SqlConfig {
            max_rows: 100,
            ..SqlConfig::test_config()
        },
    );
    assert_eq!(
        sql.query("SELECT * FROM generate_series(1, 100)")
            .await
            .unwrap()
            .row_count(),
        100
    );
    let err = sql
        .query("SELECT * FROM generate_series(1, 101)")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyRows { max: 100 }), "{err:?}");
    assert!(err.to_string().contains("more than 100 rows"), "{err}");
}

/// The stream's hot batches, split at `cut`: rows before it as a Parquet segment in
/// `dir`, the rest still hot.
fn split_cold(
    batches: &[RecordBatch],
    schema: &datafusion::arrow::datatypes::SchemaRef,
    cut: i64,
    dir: &std::path::Path,
) -> StoreSnapshot {
    use datafusion::arrow::array::{Scalar, TimestampMillisecondArray};
    use datafusion::arrow::compute::filter_record_batch;
    use datafusion::arrow::compute::kernels::cmp::{gt_eq, lt};
    let cut = Scalar::new(TimestampMillisecondArray::from(vec![cut]).with_timezone("UTC"));
    let mut cold = Vec::new();
    let mut hot = Vec::new();
    for batch in batches {
        let ts = batch.column_by_name("ts").unwrap();
        cold.push(filter_record_batch(batch, &lt(ts, &cut).unwrap()).unwrap());
        hot.push(filter_record_batch(batch, &gt_eq(ts, &cut).unwrap()).unwrap());
    }
    let file = "segments/market.ticks/cold.parquet";
    let oldest = cold
        .iter()
        .filter_map(tidewatch_store::convert::ts_range)
        .map(|(lo, _)| lo)
        .min()
        .unwrap();
    let partition = tidewatch_store::partition_start(oldest);
    let meta = write_segment(dir, file.into(), partition, 0, schema, &cold)
        .unwrap()
        .unwrap();
    StoreSnapshot {
        hot,
        segments: vec![Segment::new(meta, dir)],
    }
}

async fn query_table(table: tables::StreamTable, sql: &str) -> QueryResult {
    let ctx = datafusion::prelude::SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(2),
    );
    ctx.register_table("market_ticks", Arc::new(table)).unwrap();
    let frame = ctx.sql(sql).await.unwrap();
    let schema = Arc::new(frame.schema().as_arrow().clone());
    QueryResult {
        schema,
        batches: frame.collect().await.unwrap(),
    }
}

#[tokio::test]
async fn hot_batches_and_parquet_segments_are_one_table() {
    let ticks = ticks();
    let fixture = engine_with(&ticks).await;
    let (schema, snapshot) = fixture
        .engine
        .store_snapshot("market.ticks", None, None)
        .unwrap();
    assert!(snapshot.segments.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let cut = T0 + 250_000;
    let split = split_cold(&snapshot.hot, &schema, cut, dir.path());
    let cold_rows = ticks.iter().filter(|t| t.ts < cut).count();
    assert_eq!(split.segments[0].meta.rows as usize, cold_rows);
    assert!(cold_rows > 0 && cold_rows < ticks.len());

    let table =
        || tables::StreamTable::new("market.ticks".into(), Arc::clone(&schema), split.clone());
    let result = query_table(
        table(),
        "SELECT symbol, count(*), sum(size), sum(price * size) FROM market_ticks GROUP BY symbol ORDER BY symbol",
    )
    .await;
    let mut expected: BTreeMap<&str, (i64, f64, f64)> = BTreeMap::new();
    for t in &ticks {
        let e = expected.entry(t.symbol).or_default();
        e.0 += 1;
        e.1 += t.size;
        e.2 += t.price * t.size;
    }
    let mut got: BTreeMap<String, (i64, f64, f64)> = BTreeMap::new();
    for batch in &result.batches {
        let symbol = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        for row in 0..batch.num_rows() {
            got.insert(
                symbol.as_string::<i32>().value(row).to_owned(),
                (
                    batch.column(1).as_primitive::<Int64Type>().value(row),
                    batch.column(2).as_primitive::<Float64Type>().value(row),
                    batch.column(3).as_primitive::<Float64Type>().value(row),
                ),
            );
        }
    }
    let expected: BTreeMap<String, (i64, f64, f64)> = expected
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(got, expected);

    // Filters on tags and time read both parts too.
    let result = query_table(
        table(),
        &format!("SELECT count(*) FROM market_ticks WHERE symbol = 'BBB' AND ts >= to_timestamp_millis({})", cut - 60_000),
    )
    .await;
    let want = ticks
        .iter()
        .filter(|t| t.symbol == "BBB" && t.ts >= cut - 60_000)
        .count() as i64;
    assert_eq!(single_i64(&result), want);
}

#[tokio::test]
async fn segments_outside_the_time_filter_are_not_opened() {
    let ticks = ticks();
    let fixture = engine_with(&ticks).await;
    let (schema, snapshot) = fixture
        .engine
        .store_snapshot("market.ticks", None, None)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = T0 + 250_000;
    let split = split_cold(&snapshot.hot, &schema, cut, dir.path());
    // The file goes away: a scan that opened it would fail.
    std::fs::remove_file(&split.segments[0].path).unwrap();
    let table =
        || tables::StreamTable::new("market.ticks".into(), Arc::clone(&schema), split.clone());

    let result = query_table(
        table(),
        &format!("SELECT count(*) FROM market_ticks WHERE ts >= to_timestamp_millis({cut})"),
    )
    .await;
    let want = ticks.iter().filter(|t| t.ts >= cut).count() as i64;
    assert_eq!(single_i64(&result), want);

    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("market_ticks", Arc::new(table()))
        .unwrap();
    let opened = ctx
        .sql("SELECT count(*) FROM market_ticks")
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        opened.is_err(),
        "the whole-table scan should have opened the missing file"
    );
}

#[tokio::test]
async fn rows_the_engine_persisted_and_rows_still_hot_are_all_read() {
    let ticks = ticks();
    let (older, newer) = ticks.split_at(180);
    let fixture = engine_with(older).await;
    let engine = Arc::clone(&fixture.engine);
    tokio::task::spawn_blocking(move || engine.persist(tidewatch_engine::PersistMode::All))
        .await
        .unwrap()
        .unwrap();
    let body: Vec<serde_json::Value> = newer
        .iter()
        .map(|t| json!({"ts": t.ts, "symbol": t.symbol, "price": t.price, "size": t.size}))
        .collect();
    fixture
        .engine
        .ingest(
            "market.ticks",
            &serde_json::to_vec(&body).unwrap(),
            Body::JsonArray,
            false,
        )
        .await
        .unwrap();
    let (_, snapshot) = fixture
        .engine
        .store_snapshot("market.ticks", None, None)
        .unwrap();
    let hot_rows: usize = snapshot.hot.iter().map(RecordBatch::num_rows).sum();
    let cold_rows: u64 = snapshot.segments.iter().map(|s| s.meta.rows).sum();
    assert_eq!((hot_rows, cold_rows), (newer.len(), older.len() as u64));

    let sql = sql_engine(&fixture, SqlConfig::test_config());
    let result = sql
        .query("SELECT symbol, sum(price * size) / sum(size) FROM market_ticks GROUP BY symbol")
        .await
        .unwrap();
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for t in &ticks {
        let e = sums.entry(t.symbol.into()).or_default();
        e.0 += t.price * t.size;
        e.1 += t.size;
    }
    let got = pairs_f64(&result);
    assert_eq!(got.len(), SYMBOLS.len());
    for (symbol, (notional, volume)) in sums {
        let vwap = notional / volume;
        assert!(
            (got[&symbol] - vwap).abs() < 1e-9,
            "{symbol}: {} != {vwap}",
            got[&symbol]
        );
    }
    let result = sql
        .query("SELECT count(*) FROM market_ticks")
        .await
        .unwrap();
    assert_eq!(single_i64(&result), ticks.len() as i64);
}
