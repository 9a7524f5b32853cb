//! Backfill throughput: `tidewatch_sim::backfill::run` writing `EVENTS` simulated market
//! ticks into a fresh data directory, generation included, through the real commit path
//! (WAL under the default `fsync = always`, hot store, the `ohlc` and `quotes` rollups).
//! This is what `tidewatch backfill` does after argument parsing.
//!
//! Run: `cargo bench -p tidewatch-sim --bench backfill`
//!
//! Each sample opens an engine on a new temporary directory (not timed), backfills, and
//! closes the engine (timed: the final WAL sync is part of a backfill).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_engine::{Engine, EngineConfig};
use tidewatch_sim::backfill::{BackfillPlan, run};
use tidewatch_sim::{MarketConfig, MarketGenerator, Simulator};
use tokio_util::sync::CancellationToken;

/// Events per backfill.
const EVENTS: u64 = 2_000_000;
/// Simulated trades per second of simulated time: `tidewatch backfill`'s default.
const RATE: f64 = 3.0;
/// Start of the simulated span, 2026-11-01T00:00:00Z.
const FROM: i64 = 1_793_491_200_000;

fn backfill(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let span_ms = (EVENTS as f64 / RATE * 1000.0).round() as i64;
    let plan = BackfillPlan::new(FROM, FROM + span_ms, RATE);
    let mut group = c.benchmark_group("backfill");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("market_2m_events", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let dir = tempfile::tempdir().expect("temp dir");
                let engine = Engine::open(EngineConfig {
                    data_dir: dir.path().to_owned(),
                    ..EngineConfig::default()
                })
                .expect("open engine");
                let simulator = Simulator::new().with(MarketGenerator::new(MarketConfig {
                    events_per_second: RATE,
                    ..MarketConfig::default()
                }));
                let started = Instant::now();
                let summary = runtime
                    .block_on(async {
                        let summary =
                            run(&engine, simulator, &plan, &CancellationToken::new(), |_| {})
                                .await?;
                        engine.close().await?;
                        Ok::<_, Box<dyn std::error::Error>>(summary)
                    })
                    .expect("backfill");
                total += started.elapsed();
                assert!(summary.completed);
                assert!(summary.progress.events.abs_diff(EVENTS) <= 1);
                drop(engine); // freeing the hot store is not part of the figure
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, backfill);
criterion_main!(benches);
