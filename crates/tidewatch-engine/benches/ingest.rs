//! In-process ingest throughput: `Engine::ingest_batch` through the WAL, the hot store and
//! three rollups (five windows each), the path every acknowledged event takes after parsing.
//!
//! Run: `cargo bench -p tidewatch-engine --bench ingest`
//!
//! Event time advances at `EVENTS_PER_SECOND_OF_EVENT_TIME`, like a live feed, so windows
//! open and close at a realistic pace. Batches are prebuilt: parsing is measured separately.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tidewatch_engine::{Engine, EngineConfig, FsyncSetting, RollupSpec};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn};

/// Rows per ingested batch.
const BATCH_ROWS: usize = 10_000;
/// Distinct symbols (groups of the per-symbol rollups).
const SYMBOLS: usize = 50;
const VENUES: usize = 4;
/// How fast event time advances relative to the events.
const EVENTS_PER_SECOND_OF_EVENT_TIME: i64 = 10_000;

fn schema() -> StreamSchema {
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    StreamSchema::new(
        "ticks",
        vec!["symbol".into(), "venue".into()],
        vec![field("price"), field("size"), field("bid"), field("ask")],
    )
    .expect("valid schema")
}

fn rollups() -> Vec<RollupSpec> {
    let windows = json!(["1m", "5m", "15m", "1h", "1d"]);
    [
        json!({"name": "ohlc", "group_by": ["symbol"], "windows": windows, "aggregates": {
            "open": "first(price)", "high": "max(price)", "low": "min(price)", "close": "last(price)",
            "volume": "sum(size)", "vwap": "vwap(price, size)", "trades": "count"}}),
        json!({"name": "venues", "group_by": ["venue"], "windows": windows, "aggregates": {
            "trades": "count", "volume": "sum(size)", "symbols": "distinct(symbol)"}}),
        json!({"name": "spread", "group_by": ["symbol"], "windows": windows, "aggregates": {
            "bid": "mean(bid)", "ask": "mean(ask)", "volatility": "stddev(price)"}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("valid rollup"))
    .collect()
}

/// A batch whose event times start at `first_event` (a running event counter).
fn batch(first_event: i64, t0: i64) -> EventBatch {
    let symbols: Vec<Arc<str>> = (0..SYMBOLS).map(|i| Arc::from(format!("SYM{i}"))).collect();
    let venues: Vec<Arc<str>> = (0..VENUES).map(|i| Arc::from(format!("V{i}"))).collect();
    let n = BATCH_ROWS;
    let price: Vec<Option<f64>> = (0..n)
        .map(|i| Some(100.0 + (i % 97) as f64 * 0.01))
        .collect();
    EventBatch {
        ids: (0..n)
            .map(|i| (first_event as u128 + i as u128) << 16 | 1)
            .collect(),
        ts: (0..n)
            .map(|i| t0 + (first_event + i as i64) * 1000 / EVENTS_PER_SECOND_OF_EVENT_TIME)
            .collect(),
        tags: vec![
            TagColumn {
                keys: (0..n).map(|i| (i % SYMBOLS) as u32).collect(),
                dict: symbols,
            },
            TagColumn {
                keys: (0..n).map(|i| (i % VENUES) as u32).collect(),
                dict: venues,
            },
        ],
        fields: vec![
            FieldColumn::F64(price.clone()),
            FieldColumn::F64((0..n).map(|i| Some(1.0 + (i % 7) as f64)).collect()),
            FieldColumn::F64(price.iter().map(|p| p.map(|p| p - 0.01)).collect()),
            FieldColumn::F64(price.iter().map(|p| p.map(|p| p + 0.01)).collect()),
        ],
    }
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("engine_ingest");
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.sample_size(20);
    for fsync in [FsyncSetting::Never, FsyncSetting::Always] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig {
            fsync,
            ..EngineConfig::test_config(dir.path())
        };
        let engine = Engine::open(config).expect("engine opens");
        engine.declare_stream(schema()).expect("declare stream");
        for spec in rollups() {
            engine
                .declare_rollup("ticks", spec)
                .expect("declare rollup");
        }
        let t0 = 1_795_000_000_000;
        let mut next_event = 0i64;
        group.bench_function(
            BenchmarkId::new("wal_store_3_rollups", fsync.as_str()),
            |b| {
                b.iter_batched(
                    || {
                        let prepared = batch(next_event, t0);
                        next_event += BATCH_ROWS as i64;
                        prepared
                    },
                    |prepared| {
                        runtime
                            .block_on(engine.ingest_batch("ticks", prepared))
                            .expect("ingest")
                    },
                    criterion::BatchSize::LargeInput,
                )
            },
        );
        runtime.block_on(engine.close()).expect("close");
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
