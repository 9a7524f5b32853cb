//! Backfill: history generated through the live ingest path, as fast as the engine takes it.
//!
//! [`run`] steps a [`Simulator`] through `[from, to)` of simulated time and commits each
//! step's batches with [`Engine::ingest_batch`], the path every in-process batch takes (WAL
//! append under the fsync policy, hot store, rollups), so backfilled history is stored,
//! recovered and rolled up exactly like live data.
//!
//! Three things overlap: generation runs on a blocking thread up to `in_flight` steps ahead
//! (a bounded channel), up to `in_flight` commits are outstanding at once (their WAL appends
//! share group commits and fsyncs), and the runtime encodes and applies them.
//!
//! Steps go forward in time and each is a few thousand to tens of thousands of events, so
//! every batch advances the rollups' watermark past the previous one and nothing arrives
//! late. Within one batch, windows of a fine width further back than that width's retention
//! (1440 windows: 24 minutes of the 1-second `quotes`) are not kept: the next batch would
//! evict them anyway, as it evicts them in a live feed.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tidewatch_engine::Engine;
use tidewatch_types::time::{format_rfc3339_ms, parse_rfc3339_ms};
use tidewatch_types::{EventBatch, TimestampMs};
use tokio_util::sync::CancellationToken;

use crate::generator::Simulator;
use crate::runner::declare;

/// Events per batch a plan aims at: large enough that per-batch costs (a WAL record, a
/// commit task, a rollup pass) vanish, small enough to keep memory and latency low.
pub const TARGET_BATCH_ROWS: usize = 20_000;
/// Commits outstanding at once (and steps generated ahead).
pub const DEFAULT_IN_FLIGHT: usize = 3;
/// Bounds of a step of simulated time: at least a second, at most a day.
const MIN_STEP_MS: i64 = 1_000;
const MAX_STEP_MS: i64 = 86_400_000;
/// How often a backfill paused by [`BackfillPlan::max_hot_bytes`] looks again.
const HOT_WAIT: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "stream {stream:?} already holds events up to {}, after the backfill start {}: \
         backfilled events would be older than its rollups' watermark, so they would arrive \
         late (as corrections, or dropped where a window is no longer kept)",
        format_rfc3339_ms(*last_ts),
        format_rfc3339_ms(*from)
    )]
    NewerData {
        stream: String,
        last_ts: TimestampMs,
        from: TimestampMs,
    },
    #[error("invalid backfill plan: {0}")]
    Plan(String),
    #[error(transparent)]
    Engine(#[from] tidewatch_engine::Error),
    #[error("the generator failed: {0}")]
    Generator(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to backfill and how.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillPlan {
    /// Simulated time span `[from, to)`, epoch milliseconds.
    pub from: TimestampMs,
    pub to: TimestampMs,
    /// Simulated time per step; a step is one generator call and one batch per stream.
    /// Part of what the events depend on: the same seed and plan give the same events.
    pub step_ms: i64,
    /// Commits outstanding at once, at least 1.
    pub in_flight: usize,
    /// Write even into streams that already hold events at or after `from`.
    pub force: bool,
    /// Start no commit while the engine's hot partitions hold more than this, so that a
    /// backfill faster than persisting waits for it instead of filling memory. Something
    /// else must persist meanwhile (the engine's maintenance task); `None`: never wait.
    pub max_hot_bytes: Option<u64>,
}

impl BackfillPlan {
    /// `[from, to)` in steps of about [`TARGET_BATCH_ROWS`] events at `events_per_second`.
    pub fn new(from: TimestampMs, to: TimestampMs, events_per_second: f64) -> Self {
        let step_ms = if events_per_second > 0.0 {
            TARGET_BATCH_ROWS as f64 * 1000.0 / events_per_second
        } else {
            MAX_STEP_MS as f64
        };
        BackfillPlan {
            from,
            to,
            step_ms: step_ms.clamp(MIN_STEP_MS as f64, MAX_STEP_MS as f64) as i64,
            in_flight: DEFAULT_IN_FLIGHT,
            force: false,
            max_hot_bytes: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.from >= self.to {
            return Err(Error::Plan(format!(
                "the span is empty: from {} is not before to {}",
                format_rfc3339_ms(self.from),
                format_rfc3339_ms(self.to)
            )));
        }
        if self.step_ms <= 0 || self.in_flight == 0 {
            return Err(Error::Plan(format!(
                "step_ms ({}) and in_flight ({}) must be positive",
                self.step_ms, self.in_flight
            )));
        }
        Ok(())
    }

    /// The steps `[start, end)`, in order, covering `[from, to)`.
    fn steps(&self) -> impl Iterator<Item = (TimestampMs, TimestampMs)> + use<> {
        let (to, step) = (self.to, self.step_ms);
        std::iter::successors(Some(self.from), move |&start| {
            Some(start.saturating_add(step)).filter(|&next| next < to)
        })
        .map(move |start| (start, start.saturating_add(step).min(to)))
    }
}

/// Where a backfill stands; handed to the progress callback after each written step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub from: TimestampMs,
    pub to: TimestampMs,
    /// Every step before this simulated time is committed.
    pub written_until: TimestampMs,
    pub events: u64,
    pub batches: u64,
    /// Anomalies injected into the committed events.
    pub anomalies: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn events_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.events as f64 / seconds
        } else {
            0.0
        }
    }
}

/// What a backfill wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackfillSummary {
    pub progress: Progress,
    /// False when cancelled: then `[progress.written_until, to)` was not written.
    pub completed: bool,
}

/// One step's output on its way from the generator thread.
struct Step {
    end: TimestampMs,
    batches: Vec<(String, EventBatch)>,
    anomalies: u64,
}

/// What a commit belongs to, so results can be credited in order.
struct Pending {
    step_end: TimestampMs,
    anomalies: u64,
    /// The step's last batch: once it is committed, so is the whole step.
    closes_step: bool,
}

/// Declares the simulator's streams, then generates `plan`'s span and commits it through
/// `engine`, calling `progress` after each step. Stops early when `cancel` fires, after the
/// commits already started have finished: the summary then says how far it got. Refuses
/// (before writing anything) to write into a stream holding events at or after
/// `plan.from`, unless `plan.force`.
pub async fn run(
    engine: &Engine,
    mut simulator: Simulator,
    plan: &BackfillPlan,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&Progress),
) -> Result<BackfillSummary> {
    plan.validate()?;
    declare(engine, &simulator)?;
    if !plan.force {
        for declaration in simulator.streams() {
            let info = engine.stream_info(&declaration.schema.name)?;
            let last_ts = info.last_ts.as_deref().and_then(parse_rfc3339_ms);
            if let Some(last_ts) = last_ts.filter(|&ts| ts >= plan.from) {
                return Err(Error::NewerData {
                    stream: info.name,
                    last_ts,
                    from: plan.from,
                });
            }
        }
    }

    let started = Instant::now();
    let (steps_tx, mut steps_rx) = tokio::sync::mpsc::channel::<Step>(plan.in_flight);
    let steps = plan.steps();
    let generator = tokio::task::spawn_blocking(move || {
        for (start, end) in steps {
            let batches = simulator.generate(start, end);
            let step = Step {
                end,
                batches,
                anomalies: simulator.anomalies_injected(),
            };
            if steps_tx.blocking_send(step).is_err() {
                break; // the backfill stopped
            }
        }
    });

    let mut state = Progress {
        from: plan.from,
        to: plan.to,
        written_until: plan.from,
        events: 0,
        batches: 0,
        anomalies: 0,
        elapsed: Duration::ZERO,
    };
    let mut in_flight = FuturesOrdered::new();
    let (mut generating, mut cancelled) = (true, false);
    let mut failure: Option<Error> = None;
    loop {
        let over_memory = generating
            && plan
                .max_hot_bytes
                .is_some_and(|max| engine.hot_bytes() as u64 > max);
        tokio::select! {
            biased;
            () = cancel.cancelled(), if generating => {
                generating = false;
                cancelled = true;
                steps_rx.close();
            }
            Some((pending, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                let pending: Pending = pending;
                match outcome {
                    Ok(rows) => {
                        state.events += rows as u64;
                        state.batches += u64::from(rows > 0);
                    }
                    Err(e) => {
                        // Commits already started finish; nothing new starts.
                        failure.get_or_insert(Error::Engine(e));
                        generating = false;
                        steps_rx.close();
                    }
                }
                if pending.closes_step && failure.is_none() {
                    state.written_until = pending.step_end;
                    state.anomalies = pending.anomalies;
                    state.elapsed = started.elapsed();
                    progress(&state);
                }
            }
            // Looks at the hot memory again; commits in flight still finish meanwhile.
            () = tokio::time::sleep(HOT_WAIT), if over_memory && in_flight.is_empty() => {}
            step = steps_rx.recv(),
                if generating && !over_memory && in_flight.len() < plan.in_flight => {
                let Some(step) = step else {
                    generating = false;
                    continue;
                };
                let count = step.batches.len();
                let pending = |index: usize| Pending {
                    step_end: step.end,
                    anomalies: step.anomalies,
                    closes_step: index + 1 >= count,
                };
                if count == 0 {
                    // An empty step still moves `written_until`, in order.
                    in_flight.push_back(commit(engine, pending(0), None));
                }
                for (index, batch) in step.batches.into_iter().enumerate() {
                    in_flight.push_back(commit(engine, pending(index), Some(batch)));
                }
            }
            else => break,
        }
    }
    drop(steps_rx);
    generator
        .await
        .map_err(|e| Error::Generator(e.to_string()))?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    state.elapsed = started.elapsed();
    Ok(BackfillSummary {
        progress: state,
        completed: !cancelled && state.written_until == plan.to,
    })
}

/// Commits one batch (or nothing, for an empty step), keeping what it belongs to.
async fn commit(
    engine: &Engine,
    pending: Pending,
    batch: Option<(String, EventBatch)>,
) -> (Pending, tidewatch_engine::Result<usize>) {
    let outcome = match batch {
        Some((stream, batch)) => engine
            .ingest_batch(&stream, batch)
            .await
            .map(|receipt| receipt.accepted),
        None => Ok(0),
    };
    (pending, outcome)
}

#[cfg(test)]
mod tests {
    use tidewatch_engine::EngineConfig;

    use super::*;
    use crate::generator::Generator;
    use crate::market::{MarketConfig, MarketGenerator, TICKS_STREAM};
    use crate::runner::last_prices;

    const FROM: TimestampMs = 1_795_428_000_000; // 2026-11-23T10:00:00Z

    fn market(seed: u64, events_per_second: f64) -> Simulator {
        Simulator::new().with(MarketGenerator::new(MarketConfig {
            seed,
            events_per_second,
            ..MarketConfig::default()
        }))
    }

    fn open(dir: &std::path::Path) -> Engine {
        Engine::open(EngineConfig::test_config(dir)).unwrap()
    }

    #[test]
    fn a_plan_covers_its_span_in_ordered_steps_of_the_target_size() {
        let plan = BackfillPlan::new(FROM, FROM + 86_400_000, 10.0);
        assert_eq!(plan.step_ms, 2_000_000, "20 000 events at 10 per second");
        let steps: Vec<_> = plan.steps().collect();
        assert_eq!(steps.first().map(|s| s.0), Some(FROM));
        assert_eq!(steps.last().map(|s| s.1), Some(FROM + 86_400_000));
        assert!(steps.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(steps.len(), 44); // 43.2 steps, the last one short
        // Very fast and very slow feeds are clamped to 1 s and 1 day.
        assert_eq!(BackfillPlan::new(0, 1, 1e9).step_ms, 1_000);
        assert_eq!(BackfillPlan::new(0, 1, 0.0).step_ms, 86_400_000);
    }

    #[tokio::test]
    async fn a_backfill_writes_every_event_through_the_ingest_path() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let plan = BackfillPlan::new(FROM, FROM + 3_600_000, 20.0); // 72 000 events
        let mut calls = Vec::new();
        let summary = run(
            &engine,
            market(1, 20.0),
            &plan,
            &CancellationToken::new(),
            |p| calls.push(*p),
        )
        .await
        .unwrap();
        let written = summary.progress;
        assert!(summary.completed);
        assert_eq!(written.written_until, FROM + 3_600_000);
        assert!((71_999..=72_000).contains(&written.events), "{written:?}");
        assert!(written.anomalies > 0, "0.05 % of 72 000 trades");
        assert!(
            calls
                .windows(2)
                .all(|w| w[0].written_until < w[1].written_until)
        );
        assert_eq!(calls.last().map(|p| p.events), Some(written.events));

        let info = engine.stream_info(TICKS_STREAM).unwrap();
        assert_eq!(info.rows, written.events);
        let (_, rows) = engine
            .rollup_rows(TICKS_STREAM, "ohlc", None, None, None, &[])
            .unwrap();
        let trades: f64 = rows.iter().map(|r| r["trades"].as_f64().unwrap()).sum();
        assert_eq!(
            trades as u64, written.events,
            "every event is in the 1m candles"
        );
        engine.close().await.unwrap();
        drop(engine);

        // Recovery replays the same events.
        let engine = open(dir.path());
        assert_eq!(
            engine.stream_info(TICKS_STREAM).unwrap().rows,
            written.events
        );
    }

    #[tokio::test]
    async fn a_stream_with_newer_events_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let first = BackfillPlan::new(FROM, FROM + 600_000, 5.0);
        let cancel = CancellationToken::new();
        run(&engine, market(1, 5.0), &first, &cancel, |_| {})
            .await
            .unwrap();
        let rows = engine.stream_info(TICKS_STREAM).unwrap().rows;

        let overlapping = BackfillPlan::new(FROM + 300_000, FROM + 900_000, 5.0);
        let err = run(&engine, market(2, 5.0), &overlapping, &cancel, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NewerData { .. }), "{err}");
        assert!(err.to_string().contains("market.ticks"), "{err}");
        assert_eq!(engine.stream_info(TICKS_STREAM).unwrap().rows, rows);

        // After the stored events: fine. Overlapping with force: written.
        let later = BackfillPlan::new(FROM + 600_000, FROM + 900_000, 5.0);
        run(&engine, market(3, 5.0), &later, &cancel, |_| {})
            .await
            .unwrap();
        let forced = BackfillPlan {
            force: true,
            ..overlapping
        };
        let summary = run(&engine, market(4, 5.0), &forced, &cancel, |_| {})
            .await
            .unwrap();
        assert!(summary.progress.events > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backfill_over_its_memory_bound_waits_for_persisting_and_loses_nothing() {
        const MAX_HOT: u64 = 512 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let engine = std::sync::Arc::new(
            Engine::open(EngineConfig {
                // Half a second between persists: far longer than writing 1 MB takes.
                persist_interval: Duration::from_millis(500),
                hot_memory_limit: MAX_HOT / 2,
                ..EngineConfig::test_config(dir.path())
            })
            .unwrap(),
        );
        let maintenance = tokio::spawn(std::sync::Arc::clone(&engine).run_maintenance());
        // 72 000 events in steps of 2 000 (100 s at 20 per second).
        let plan = BackfillPlan {
            step_ms: 100_000,
            max_hot_bytes: Some(MAX_HOT),
            ..BackfillPlan::new(FROM, FROM + 3_600_000, 20.0)
        };
        let mut peak = 0;
        let summary = run(
            &engine,
            market(1, 20.0),
            &plan,
            &CancellationToken::new(),
            |_| peak = peak.max(engine.hot_bytes() as u64),
        )
        .await
        .unwrap();
        maintenance.abort();
        // A pause lets the commits in flight (3 steps, about 130 kB each) finish.
        assert!(peak <= MAX_HOT + 1024 * 1024, "peak {peak} bytes hot");
        assert!(summary.completed);
        let info = engine.stream_info(TICKS_STREAM).unwrap();
        assert_eq!(info.rows, summary.progress.events);
        assert!((71_999..=72_000).contains(&info.rows), "{info:?}");
        assert!(info.segments > 1, "persisted while writing: {info:?}");
    }

    #[tokio::test]
    async fn a_cancelled_backfill_stops_at_a_step_boundary_and_says_how_far_it_got() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let plan = BackfillPlan {
            step_ms: 60_000,
            ..BackfillPlan::new(FROM, FROM + 86_400_000, 50.0)
        };
        let cancel = CancellationToken::new();
        let summary = run(&engine, market(1, 50.0), &plan, &cancel, |p| {
            if p.written_until >= FROM + 600_000 {
                cancel.cancel();
            }
        })
        .await
        .unwrap();
        let written = summary.progress;
        assert!(!summary.completed);
        assert!(written.written_until < FROM + 86_400_000);
        assert_eq!(
            (written.written_until - FROM) % 60_000,
            0,
            "a step boundary"
        );
        // Every committed event, and nothing else, is stored.
        assert_eq!(
            engine.stream_info(TICKS_STREAM).unwrap().rows,
            written.events
        );
        let newest = engine.stream_info(TICKS_STREAM).unwrap().last_ts.unwrap();
        assert!(parse_rfc3339_ms(&newest).unwrap() < written.written_until);
    }

    #[tokio::test]
    async fn the_same_seed_and_plan_give_the_same_stored_events() {
        let plan = BackfillPlan::new(FROM, FROM + 600_000, 10.0);
        let mut stored = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let engine = open(dir.path());
            run(
                &engine,
                market(9, 10.0),
                &plan,
                &CancellationToken::new(),
                |_| {},
            )
            .await
            .unwrap();
            let mut events = Vec::new();
            let mut cursor = None;
            loop {
                let page = engine
                    .events(
                        TICKS_STREAM,
                        &tidewatch_engine::engine::EventsRequest {
                            limit: Some(1000),
                            cursor: cursor.take(),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                // Ids are assigned when generated; everything else must match.
                events.extend(page.events.into_iter().map(|mut e| {
                    e.as_object_mut().unwrap().remove("id");
                    e
                }));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            stored.push(events);
        }
        assert_eq!(stored[0].len(), 6000);
        assert_eq!(stored[0], stored[1]);
    }

    #[tokio::test]
    async fn a_resumed_feed_continues_from_the_backfilled_prices() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let end = FROM + 3_600_000;
        let plan = BackfillPlan::new(FROM, end, 20.0);
        run(
            &engine,
            market(1, 20.0),
            &plan,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        let last = last_prices(&engine);
        assert_eq!(last.len(), MarketGenerator::symbol_names().len());
        let mut resumed = MarketGenerator::new(MarketConfig {
            anomaly_rate: 0.0,
            events_per_second: 1000.0,
            ..MarketConfig::default()
        });
        resumed.resume_from(last.clone());
        let batches = resumed.generate(end, end + 1000);
        for (symbol, price, ts) in &last {
            let newest = engine
                .events(
                    TICKS_STREAM,
                    &tidewatch_engine::engine::EventsRequest {
                        tags: vec![("symbol".into(), symbol.clone())],
                        limit: Some(1),
                        ..Default::default()
                    },
                )
                .unwrap();
            let newest = &newest.events[0];
            assert_eq!(Some(*ts), newest["ts"].as_str().and_then(parse_rfc3339_ms));
            assert!((newest["price"].as_f64().unwrap() / price - 1.0).abs() < 0.01);
            let first_resumed = first_price(&batches, symbol).unwrap();
            assert!(
                (first_resumed / price - 1.0).abs() < 0.01,
                "{symbol}: resumed at {first_resumed}, last stored {price}"
            );
        }
    }

    fn first_price(batches: &[(String, EventBatch)], symbol: &str) -> Option<f64> {
        let (_, batch) = batches.first()?;
        let row =
            (0..batch.len()).find(|&r| batch.tags[0].value(r).map(|s| &**s) == Some(symbol))?;
        match &batch.fields[0] {
            tidewatch_types::FieldColumn::F64(prices) => prices[row],
            _ => None,
        }
    }
}
