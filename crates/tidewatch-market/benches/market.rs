//! Per-event cost of the market domain on simulated ticks: folding them into the `ohlc`
//! (five windows) and `quotes` (1s) rollups, and running the spike and surge detectors.
//! 200 000 ticks at 2 000 a second of event time (100 s, so windows open, close and are
//! evicted as live), in batches of 10 000, each iteration from fresh state.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_market::detect::{DetectorConfig, Detectors};
use tidewatch_market::schema::{ticks_rollups, ticks_schema};
use tidewatch_rollup::{Rollup, RollupConfig};
use tidewatch_sim::{Generator, MarketConfig, MarketGenerator};
use tidewatch_types::EventBatch;

const T0: i64 = 1_795_428_000_000;
const BATCHES: i64 = 20;
const BATCH_MS: i64 = 5_000;

fn ticks() -> Vec<EventBatch> {
    let mut generator = MarketGenerator::new(MarketConfig {
        events_per_second: 2_000.0,
        ..MarketConfig::default()
    });
    (0..BATCHES)
        .flat_map(|i| generator.generate(T0 + i * BATCH_MS, T0 + (i + 1) * BATCH_MS))
        .map(|(_, batch)| batch)
        .collect()
}

fn market(c: &mut Criterion) {
    let batches = ticks();
    let events: usize = batches.iter().map(EventBatch::len).sum();
    let schema = ticks_schema();
    let mut group = c.benchmark_group("market");
    group.throughput(Throughput::Elements(events as u64));

    group.bench_function("rollups", |b| {
        b.iter_batched(
            || {
                ticks_rollups()
                    .into_iter()
                    .map(|spec| Rollup::new(spec, &schema, RollupConfig::default()))
                    .collect::<Result<Vec<_>, _>>()
                    .expect("the market rollups are valid")
            },
            |mut rollups| {
                let mut changes = Vec::new();
                for batch in &batches {
                    for rollup in &mut rollups {
                        changes.clear();
                        rollup.apply(batch, &mut changes);
                    }
                }
                rollups
            },
            BatchSize::LargeInput,
        );
    });

    group.bench_function("detectors", |b| {
        b.iter_batched(
            || Detectors::new(DetectorConfig::default()),
            |mut detectors| {
                let mut alerts = Vec::new();
                for batch in &batches {
                    let (price, size) = (&batch.fields[0], &batch.fields[1]);
                    for row in 0..batch.len() {
                        let (Some(symbol), Some(p), Some(q)) = (
                            batch.tags[0].value(row),
                            price.as_f64(row),
                            size.as_f64(row),
                        ) else {
                            continue;
                        };
                        detectors.trade(symbol, batch.ts[row], p, q, &mut alerts);
                    }
                }
                (detectors, alerts)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, market);
criterion_main!(benches);
