//! Detection measured on the simulator's labelled anomalies, through the real write path:
//! simulated trades are ingested into an engine with the market domain attached, and the
//! alerts it stores are matched against the labels the generator recorded.

use std::sync::Arc;

use tidewatch_alerts::AlertSink;
use tidewatch_engine::{Engine, EngineConfig, FsyncSetting};
use tidewatch_market::detect::{PRICE_SPIKE, VOLUME_SURGE};
use tidewatch_market::{Market, MarketConfig};
use tidewatch_sim::{AnomalyKind, Generator, MarketConfig as SimConfig, MarketGenerator};
use tidewatch_types::time::parse_rfc3339_ms;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_795_428_000_000;
/// How long after a surge starts its alert may come: the surge lasts a minute and the
/// detector's window is a minute.
const SURGE_REACH_MS: i64 = 120_000;
const SPIKE_REACH_MS: i64 = 1_000;

struct Scores {
    labels: usize,
    detected: usize,
    alerts: usize,
    true_alerts: usize,
}

impl Scores {
    fn recall(&self) -> f64 {
        self.detected as f64 / self.labels.max(1) as f64
    }
    fn precision(&self) -> f64 {
        self.true_alerts as f64 / self.alerts.max(1) as f64
    }
}

/// Whether an alert at `alert_ts` is explained by an anomaly injected at `label_ts`.
fn explains(kind: AnomalyKind, label_ts: i64, alert_ts: i64) -> bool {
    match kind {
        AnomalyKind::PriceSpike => (alert_ts - label_ts).abs() <= SPIKE_REACH_MS,
        AnomalyKind::VolumeSurge => (label_ts..=label_ts + SURGE_REACH_MS).contains(&alert_ts),
    }
}

/// Simulates `hours` at `rate` trades/s; returns the scores per kind (spike, surge).
async fn measure(seed: u64, rate: f64, hours: i64) -> (Scores, Scores) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open(EngineConfig {
            fsync: FsyncSetting::Never,
            ..EngineConfig::test_config(dir.path())
        })
        .unwrap(),
    );
    tidewatch_alerts::declare(&engine).unwrap();
    let (sink, rx) = AlertSink::channel();
    let shutdown = CancellationToken::new();
    let writer = tokio::spawn(tidewatch_alerts::run_writer(
        Arc::clone(&engine),
        rx,
        shutdown.clone(),
    ));
    let market = Market::attach(Arc::clone(&engine), &MarketConfig::default(), sink).unwrap();

    let mut generator = MarketGenerator::new(SimConfig {
        seed,
        events_per_second: rate,
        anomaly_rate: 0.0005,
        ..SimConfig::default()
    });
    let step = 10_000;
    for i in 0..hours * 3_600_000 / step {
        for (stream, batch) in generator.generate(T0 + i * step, T0 + (i + 1) * step) {
            engine.ingest_batch(&stream, batch).await.unwrap();
        }
    }
    shutdown.cancel();
    writer.await.unwrap();

    let mut alerts = Vec::new();
    let mut cursor = None;
    loop {
        let page = market.alerts(None, None, Some(1000), cursor).unwrap();
        alerts.extend(page.events.into_iter().map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["symbol"].as_str().unwrap().to_owned(),
                parse_rfc3339_ms(e["ts"].as_str().unwrap()).unwrap(),
            )
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let score = |kind: AnomalyKind, name: &str| {
        let labels: Vec<_> = generator
            .labels()
            .iter()
            .filter(|l| l.kind == kind)
            .collect();
        let raised: Vec<_> = alerts.iter().filter(|a| a.0 == name).collect();
        Scores {
            labels: labels.len(),
            detected: labels
                .iter()
                .filter(|l| {
                    raised
                        .iter()
                        .any(|a| a.1 == l.symbol && explains(kind, l.ts, a.2))
                })
                .count(),
            alerts: raised.len(),
            true_alerts: raised
                .iter()
                .filter(|a| {
                    labels
                        .iter()
                        .any(|l| a.1 == l.symbol && explains(kind, l.ts, a.2))
                })
                .count(),
        }
    };
    (
        score(AnomalyKind::PriceSpike, PRICE_SPIKE),
        score(AnomalyKind::VolumeSurge, VOLUME_SURGE),
    )
}

fn check(what: &str, spikes: &Scores, surges: &Scores) {
    for (kind, s) in [("price spike", spikes), ("volume surge", surges)] {
        // Printed so the figures can be read off the test output (`--nocapture`).
        println!(
            "{what}: {kind}: {} labels, {} detected, {} alerts, {} true: recall {:.3}, precision {:.3}",
            s.labels,
            s.detected,
            s.alerts,
            s.true_alerts,
            s.recall(),
            s.precision()
        );
        assert!(
            s.labels >= 20,
            "{what}: too few {kind} labels to measure ({})",
            s.labels
        );
        assert!(s.recall() >= 0.9, "{what}: {kind} recall {:.3}", s.recall());
        assert!(
            s.precision() >= 0.8,
            "{what}: {kind} precision {:.3}",
            s.precision()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_meets_its_targets_on_a_busy_market() {
    // The demo's pace: 50 trades a second over 13 symbols, three hours.
    let (spikes, surges) = measure(7, 50.0, 3).await;
    check("busy market", &spikes, &surges);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_meets_its_targets_on_a_thin_market() {
    // A backfill's pace: 3 trades a second over 13 symbols (14 a minute each), two days.
    let (spikes, surges) = measure(11, 3.0, 48).await;
    check("thin market", &spikes, &surges);
}

#[tokio::test]
async fn alert_queries_validate_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(EngineConfig::test_config(dir.path())).unwrap());
    tidewatch_alerts::declare(&engine).unwrap();
    let (sink, _rx) = AlertSink::channel();
    let market = Market::attach(Arc::clone(&engine), &MarketConfig::default(), sink).unwrap();
    let mut generator = MarketGenerator::new(SimConfig::default());
    for (stream, batch) in generator.generate(T0, T0 + 60_000) {
        engine.ingest_batch(&stream, batch).await.unwrap();
    }
    assert!(matches!(
        market.alerts(None, Some("meteor"), None, None),
        Err(tidewatch_market::Error::InvalidRequest(_))
    ));
    assert!(matches!(
        market.alerts(Some("NOPE"), None, None, None),
        Err(tidewatch_market::Error::UnknownSymbol { known: false, .. })
    ));
    assert!(
        market
            .alerts(Some("AAPL"), Some(PRICE_SPIKE), None, None)
            .is_ok()
    );
}
