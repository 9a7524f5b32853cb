//! Checkpoint and restore of a market-sized rollup: the market domain's `ohlc` candles (first,
//! max, min, last, sum, vwap, count, two means) plus `stddev(price)` — ten aggregates — for
//! 13 symbols over widths 1m, 5m, 15m, 1h and 1d, with every width holding its full default
//! retention of 1440 closed windows per symbol (plus the open one). That is the largest state
//! the default config lets this rollup reach (the 1d width fills after four years), about
//! 94 000 cells.
//!
//! The state is built through `apply`, one tick per symbol in every retained window of every
//! width, oldest first. `checkpoint` measures encoding (throughput in checkpoint bytes),
//! `restore` decoding, checksum and validation included.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_rollup::{Rollup, RollupConfig, RollupSpec};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn};

const SYMBOLS: usize = 13;
const WIDTHS: [&str; 5] = ["1m", "5m", "15m", "1h", "1d"];
/// `RollupConfig::default().retained_windows`.
const RETAINED_WINDOWS: i64 = 1440;
const BATCH_ROWS: usize = 10_000;
/// 2026-11-23T00:00:00Z: the state ends here.
const END_MS: i64 = 1_795_392_000_000;

fn schema() -> StreamSchema {
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    StreamSchema::new(
        "market.ticks",
        vec!["symbol".into(), "venue".into(), "asset_class".into()],
        vec![field("price"), field("size"), field("bid"), field("ask")],
    )
    .expect("valid schema")
}

fn spec() -> RollupSpec {
    serde_json::from_str(&format!(
        r#"{{"name": "ohlc", "group_by": ["symbol"], "windows": {windows:?},
            "aggregates": {{"open": "first(price)", "high": "max(price)", "low": "min(price)",
            "close": "last(price)", "volume": "sum(size)", "vwap": "vwap(price, size)",
            "trades": "count", "bid": "mean(bid)", "ask": "mean(ask)",
            "volatility": "stddev(price)"}}}}"#,
        windows = WIDTHS
    ))
    .expect("valid spec")
}

/// Event times: for every width, a point inside each of its last `RETAINED_WINDOWS + 1`
/// windows before `END_MS`, oldest first.
fn times() -> Vec<i64> {
    let mut times: Vec<i64> = WIDTHS
        .iter()
        .flat_map(|w| {
            let millis = w
                .parse::<tidewatch_types::WindowWidth>()
                .expect("valid width")
                .millis();
            (0..=RETAINED_WINDOWS).map(move |k| END_MS - k * millis - 1_000)
        })
        .collect();
    times.sort_unstable();
    times.dedup();
    times
}

fn market_rollup() -> Rollup {
    let schema = schema();
    let mut rollup = Rollup::new(spec(), &schema, RollupConfig::default()).expect("valid rollup");
    let symbols: Vec<Arc<str>> = (0..SYMBOLS).map(|i| Arc::from(format!("SYM{i}"))).collect();
    let rows: Vec<(i64, u32)> = times()
        .into_iter()
        .flat_map(|ts| (0..SYMBOLS as u32).map(move |s| (ts, s)))
        .collect();
    let mut changes = Vec::new();
    for (chunk_index, chunk) in rows.chunks(BATCH_ROWS).enumerate() {
        let price = |i: usize| Some(100.0 + ((chunk_index * BATCH_ROWS + i) % 997) as f64 / 10.0);
        let batch = EventBatch {
            ids: (0..chunk.len() as u128)
                .map(|i| ((chunk_index * BATCH_ROWS) as u128) + i)
                .collect(),
            ts: chunk.iter().map(|&(ts, _)| ts).collect(),
            tags: vec![
                TagColumn {
                    keys: chunk.iter().map(|&(_, s)| s).collect(),
                    dict: symbols.clone(),
                },
                TagColumn {
                    keys: vec![0; chunk.len()],
                    dict: vec![Arc::from("xnas")],
                },
                TagColumn {
                    keys: vec![0; chunk.len()],
                    dict: vec![Arc::from("equity")],
                },
            ],
            fields: vec![
                FieldColumn::F64((0..chunk.len()).map(price).collect()),
                FieldColumn::F64(
                    (0..chunk.len())
                        .map(|i| Some((i % 50) as f64 + 1.0))
                        .collect(),
                ),
                FieldColumn::F64(
                    (0..chunk.len())
                        .map(|i| price(i).map(|p| p - 0.01))
                        .collect(),
                ),
                FieldColumn::F64(
                    (0..chunk.len())
                        .map(|i| price(i).map(|p| p + 0.01))
                        .collect(),
                ),
            ],
        };
        changes.clear();
        rollup.apply(&batch, &mut changes);
    }
    rollup
}

fn checkpoint(c: &mut Criterion) {
    let schema = schema();
    let rollup = market_rollup();
    let bytes = rollup.checkpoint();
    eprintln!(
        "market rollup: {} cells, checkpoint {} bytes ({:.1} MiB, {:.0} bytes per cell)",
        rollup.cell_count(),
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        bytes.len() as f64 / rollup.cell_count() as f64
    );

    let mut group = c.benchmark_group("rollup_checkpoint_13_symbols_5_widths_1440_windows");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("checkpoint", |b| {
        b.iter(|| std::hint::black_box(rollup.checkpoint().len()));
    });
    let spec = spec();
    group.bench_function("restore", |b| {
        // Dropping the restored rollup is not part of a restart's cost.
        b.iter_with_large_drop(|| {
            Rollup::restore(spec.clone(), &schema, RollupConfig::default(), &bytes)
                .expect("restores")
        });
    });
    group.finish();
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
