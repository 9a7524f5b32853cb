//! Backfill throughput: `tidewatch_sim::backfill::run` writing `EVENTS` simulated market
//! ticks into a fresh data directory, generation included, through the real commit path
//! (WAL under the default `fsync = always`, hot store, the `ohlc` and `quotes` rollups).
//!
//! Run: `cargo bench -p tidewatch-sim --bench backfill`
//!
//! - `ingest_path`: the library function alone.
//! - `with_market_detectors`: also the market domain's spike and surge detectors observing
//!   every trade and their alerts written to the alerts stream, as `tidewatch backfill`
//!   runs it.
//!
//! Each sample opens an engine on a new temporary directory (not timed), backfills, and
//! closes the engine (timed: the final WAL sync is part of a backfill).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_alerts::AlertSink;
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

type BoxError = Box<dyn std::error::Error>;

/// One backfill into a fresh directory; returns the timed part.
fn backfill_once(
    runtime: &tokio::runtime::Runtime,
    plan: &BackfillPlan,
    detectors: bool,
) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(
        Engine::open(EngineConfig {
            data_dir: dir.path().to_owned(),
            ..EngineConfig::default()
        })
        .expect("open engine"),
    );
    let simulator = Simulator::new().with(MarketGenerator::new(MarketConfig {
        events_per_second: RATE,
        ..MarketConfig::default()
    }));
    let (elapsed, summary) = runtime
        .block_on(async {
            let stop = CancellationToken::new();
            let writer = if detectors {
                tidewatch_alerts::declare(&engine)?;
                let (sink, alerts) = AlertSink::channel();
                let market = tidewatch_market::MarketConfig::default();
                tidewatch_market::Market::attach(Arc::clone(&engine), &market, sink)?;
                Some(tokio::spawn(tidewatch_alerts::run_writer(
                    Arc::clone(&engine),
                    alerts,
                    stop.clone(),
                )))
            } else {
                None
            };
            let started = Instant::now();
            let summary = run(&engine, simulator, plan, &CancellationToken::new(), |_| {}).await?;
            stop.cancel();
            if let Some(writer) = writer {
                writer.await?;
            }
            engine.close().await?;
            Ok::<_, BoxError>((started.elapsed(), summary))
        })
        .expect("backfill");
    assert!(summary.completed);
    assert!(summary.progress.events.abs_diff(EVENTS) <= 1);
    drop(engine); // freeing the hot store is not part of the figure
    elapsed
}

fn backfill(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let span_ms = (EVENTS as f64 / RATE * 1000.0).round() as i64;
    let plan = BackfillPlan::new(FROM, FROM + span_ms, RATE);
    let mut group = c.benchmark_group("backfill_2m_market_events");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    for (name, detectors) in [("ingest_path", false), ("with_market_detectors", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| backfill_once(&runtime, &plan, detectors))
                    .sum()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, backfill);
criterion_main!(benches);
