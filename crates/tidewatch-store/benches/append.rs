//! Hot-store append cost: 10 000-row tick batches (2 tags, 4 f64 fields) into one stream.
//!
//! Run: `cargo bench -p tidewatch-store --bench append`

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_store::{StoreConfig, StreamStore};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn};

const BATCH_ROWS: usize = 10_000;
const SYMBOLS: usize = 50;

fn batch() -> (Arc<StreamSchema>, EventBatch) {
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    let schema = StreamSchema::new(
        "ticks",
        vec!["symbol".into(), "venue".into()],
        vec![field("price"), field("size"), field("bid"), field("ask")],
    )
    .expect("valid schema");
    let n = BATCH_ROWS;
    let values = || FieldColumn::F64((0..n).map(|i| Some(i as f64)).collect());
    let batch = EventBatch {
        ids: (0..n as u128).collect(),
        ts: (0..n as i64).map(|i| 1_795_000_000_000 + i / 10).collect(),
        tags: vec![
            TagColumn {
                keys: (0..n).map(|i| (i % SYMBOLS) as u32).collect(),
                dict: (0..SYMBOLS).map(|i| Arc::from(format!("SYM{i}"))).collect(),
            },
            TagColumn {
                keys: (0..n).map(|i| (i % 4) as u32).collect(),
                dict: (0..4).map(|i| Arc::from(format!("V{i}"))).collect(),
            },
        ],
        fields: vec![values(), values(), values(), values()],
    };
    (Arc::new(schema), batch)
}

fn append(c: &mut Criterion) {
    let (schema, batch) = batch();
    let mut group = c.benchmark_group("store_append");
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.bench_function("ticks_10k", |b| {
        b.iter_batched(
            || StreamStore::new(Arc::clone(&schema), StoreConfig::default()),
            |mut store| {
                store.append(&batch, 1);
                store
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
