//! Fold throughput: batches of 10 000 ticks (200 symbols, 4 venues) into three rollups of
//! five widths each (1s, 1m, 5m, 1h, 1d) — the target is about one million events per
//! second on one core, i.e. about 10 ms per iteration here.
//!
//! Every iteration feeds the next span of event time, so the watermark moves, windows close
//! and old ones are evicted as in a live stream. Two event-time rates:
//! - `live`: one million events per second of event time, what a stream ingested at that
//!   rate looks like;
//! - `backfill`: one thousand events per second of event time (a replay of a slow stream):
//!   most 1s windows then hold a single event per group, so window creation, closing and
//!   eviction dominate.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_rollup::{Rollup, RollupConfig, RollupSpec};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn};

const BATCH_ROWS: usize = 10_000;
const SYMBOLS: usize = 200;
const VENUES: usize = 4;
/// 2026-11-23T00:00:00Z.
const START_MS: i64 = 1_795_392_000_000;

fn schema() -> StreamSchema {
    let field = |name: &str, field_type| FieldDef {
        name: name.into(),
        field_type,
    };
    StreamSchema::new(
        "market.ticks",
        vec!["symbol".into(), "venue".into()],
        vec![
            field("price", FieldType::F64),
            field("size", FieldType::I64),
        ],
    )
    .expect("valid schema")
}

fn specs() -> Vec<RollupSpec> {
    let windows = r#"["1s", "1m", "5m", "1h", "1d"]"#;
    [
        format!(
            r#"{{"name": "bars", "group_by": ["symbol"], "windows": {windows},
                "aggregates": {{"n": "count", "volume": "sum(size)", "open": "first(price)",
                "high": "max(price)", "low": "min(price)", "close": "last(price)",
                "vwap": "vwap(price, size)"}}}}"#
        ),
        format!(
            r#"{{"name": "spread", "group_by": ["symbol", "venue"], "windows": {windows},
                "aggregates": {{"avg": "mean(price)", "sd": "stddev(price)",
                "quotes": "count(price)"}}}}"#
        ),
        format!(
            r#"{{"name": "venues", "group_by": ["venue"], "windows": {windows},
                "aggregates": {{"n": "count", "symbols": "distinct(symbol)",
                "volume": "sum(size)"}}}}"#
        ),
    ]
    .iter()
    .map(|json| serde_json::from_str(json).expect("valid spec"))
    .collect()
}

/// A batch the way ingest builds it: batch-local dictionaries; row `i` at
/// `START_MS + i / events_per_ms`.
fn batch(events_per_ms: i64) -> EventBatch {
    let symbols: Vec<Arc<str>> = (0..SYMBOLS).map(|i| Arc::from(format!("sym{i}"))).collect();
    let venues: Vec<Arc<str>> = (0..VENUES).map(|i| Arc::from(format!("v{i}"))).collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut symbol_keys = Vec::with_capacity(BATCH_ROWS);
    let mut venue_keys = Vec::with_capacity(BATCH_ROWS);
    let mut prices = Vec::with_capacity(BATCH_ROWS);
    let mut sizes = Vec::with_capacity(BATCH_ROWS);
    for _ in 0..BATCH_ROWS {
        let r = next();
        symbol_keys.push((r % SYMBOLS as u64) as u32);
        venue_keys.push(((r >> 16) % VENUES as u64) as u32);
        prices.push(Some(100.0 + ((r >> 24) % 10_000) as f64 / 100.0));
        sizes.push(Some(((r >> 40) % 500) as i64 + 1));
    }
    EventBatch {
        ids: (0..BATCH_ROWS as u128).collect(),
        ts: (0..BATCH_ROWS as i64)
            .map(|i| START_MS + i / events_per_ms)
            .collect(),
        tags: vec![
            TagColumn {
                keys: symbol_keys,
                dict: symbols,
            },
            TagColumn {
                keys: venue_keys,
                dict: venues,
            },
        ],
        fields: vec![FieldColumn::F64(prices), FieldColumn::I64(sizes)],
    }
}

fn fold(c: &mut Criterion) {
    let schema = schema();
    let mut group = c.benchmark_group("rollup_fold_10k_ticks_3_rollups_5_widths");
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));
    for (name, events_per_ms) in [("live", 1000), ("backfill", 1)] {
        let mut rollups: Vec<Rollup> = specs()
            .into_iter()
            .map(|spec| Rollup::new(spec, &schema, RollupConfig::default()).expect("valid rollup"))
            .collect();
        let mut batch = batch(events_per_ms);
        let span = BATCH_ROWS as i64 / events_per_ms;
        let mut changes = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                // Move the batch to the next span of event time (10 000 adds: noise next to
                // the fold).
                for ts in &mut batch.ts {
                    *ts += span;
                }
                changes.clear();
                for rollup in &mut rollups {
                    rollup.apply(&batch, &mut changes);
                }
                std::hint::black_box(changes.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fold);
criterion_main!(benches);
