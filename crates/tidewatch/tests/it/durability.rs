//! Durability: acknowledged events survive SIGKILL; torn and corrupt WAL tails are cut
//! and reported, keeping every intact record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::support::*;

const KILLS: usize = 22;
const WRITERS: usize = 3;
const ROWS_PER_BATCH: usize = 40;

/// A batch as sent: its rows carry producer ids, so a resend after a kill is idempotent.
#[derive(Clone)]
struct Batch {
    ids: Vec<String>,
    body: Value,
}

/// Where row `n` lies in time.
type Timeline = Arc<dyn Fn(u64) -> i64 + Send + Sync>;

/// Rows `first..` spread over `[t0, t0 + spread_ms)`, out of order.
fn scattered(t0: i64, spread_ms: i64) -> Timeline {
    Arc::new(move |n| t0 + (n as i64 * 37_003) % spread_ms)
}

/// Rows `first..` at the times `timeline` gives them.
fn make_batch(first: u64, timeline: &Timeline) -> Batch {
    let symbols = ["BTC", "ETH", "SOL", "XRP"];
    let mut ids = Vec::new();
    let rows: Vec<Value> = (first..first + ROWS_PER_BATCH as u64)
        .map(|n| {
            let id = format!("00000000-0000-7000-8000-{n:012x}");
            ids.push(id.clone());
            json!({"id": id, "ts": timeline(n), "symbol": symbols[(n % 4) as usize],
                   "price": 100.0 + (n % 13) as f64, "size": 1.0 + (n % 5) as f64})
        })
        .collect();
    Batch {
        ids,
        body: Value::Array(rows),
    }
}

/// Every acknowledged id is stored exactly once, and the 1m rollup equals a recomputation
/// over the stored events.
async fn check_invariants(server: &TestServer, acked: &HashSet<String>) -> usize {
    let events = server.all_events("ticks").await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        *seen.entry(e["id"].as_str().unwrap()).or_default() += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "an event is stored twice");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !seen.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    let mut expected: BTreeMap<(i64, String), (u64, f64)> = BTreeMap::new();
    for e in &events {
        let ts = parse_ts(e["ts"].as_str().unwrap());
        let key = (
            ts - ts.rem_euclid(60_000),
            e["symbol"].as_str().unwrap().to_owned(),
        );
        let entry = expected.entry(key).or_default();
        entry.0 += 1;
        entry.1 += e["size"].as_f64().unwrap();
    }
    let (status, body) = server
        .get("/api/v1/streams/ticks/rollups/bars?window=1m")
        .await;
    assert_eq!(status, 200);
    let actual: BTreeMap<(i64, String), (u64, f64)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (
                parse_ts(r["window_start"].as_str().unwrap()),
                r["symbol"].as_str().unwrap().to_owned(),
            );
            (
                key,
                (r["n"].as_u64().unwrap(), r["volume"].as_f64().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        actual, expected,
        "rollups equal a recomputation from the stored events"
    );
    events.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    kill_repeatedly(
        dir.path(),
        Options::default(),
        WRITERS,
        scattered(base_ms(), 240_000),
    )
    .await;
}

/// Events spread over six past hours, and a persist every 20 ms: hours keep closing and
/// being sealed (late rows keep arriving for them too), so the kills land before, during
/// and after seals, manifest writes and WAL truncations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_seal_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        env: vec![
            ("TIDEWATCH_ENGINE__PERSIST_INTERVAL".into(), "20ms".into()),
            (
                "TIDEWATCH_ENGINE__CHECKPOINT_INTERVAL".into(),
                "50ms".into(),
            ),
        ],
        ..Options::default()
    };
    let hour = 3_600_000;
    let t0 = base_ms() - 7 * hour;
    let timeline = scattered(t0 - t0.rem_euclid(hour), 6 * hour);
    let logs = kill_repeatedly(dir.path(), options(), WRITERS, timeline).await;
    let server = TestServer::start_with(dir.path(), options()).await;
    let (_, streams) = server.get("/api/v1/streams").await;
    let ticks = streams["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ticks")
        .cloned()
        .unwrap();
    assert!(ticks["segments"].as_u64().unwrap() > 0, "{ticks}");
    let persists = logs.iter().filter(|l| l.contains("persisted")).count();
    let debris = logs
        .iter()
        .filter(|l| l.contains("interrupted persist"))
        .count();
    println!("{persists} persists logged; {debris} starts removed debris of an interrupted one");
    assert!(persists > 22, "seals ran between the kills: {persists}");
}

/// Rollup windows past the five kept in memory become history: pending in checkpoints,
/// then one Parquet segment per day. One writer sends ticks in time order across a UTC
/// midnight (so no event is dropped as late and the rollup can be recomputed exactly),
/// with a persist every 20 ms: kills land while days of history are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_rollup_history_is_written_loses_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        env: vec![
            ("TIDEWATCH_ENGINE__RETAINED_WINDOWS".into(), "5".into()),
            ("TIDEWATCH_ENGINE__PERSIST_INTERVAL".into(), "20ms".into()),
            (
                "TIDEWATCH_ENGINE__CHECKPOINT_INTERVAL".into(),
                "50ms".into(),
            ),
        ],
        ..Options::default()
    };
    let day = 86_400_000;
    let midnight = now_ms() - now_ms().rem_euclid(day) - day;
    let t0 = midnight - 10 * 60_000;
    // A row every 1.5 s: a batch is one minute, well inside the five kept windows.
    let timeline: Timeline = Arc::new(move |n| t0 + n as i64 * 1_500);
    kill_repeatedly(dir.path(), options(), 1, timeline).await;
    let history = dir.path().join("segments/ticks/rollups/bars");
    for width in ["1m", "5m"] {
        let file = history
            .join(width)
            .join(format!("{}.parquet", midnight - day));
        assert!(
            file.exists(),
            "the day before midnight is history on disk: {file:?}"
        );
    }
}

/// Kills the server `KILLS` times while `writers` post batches with producer ids (each
/// writer's rows in order along `timeline`, never later than a minute ago), checking after
/// each restart that every acknowledged event is stored exactly once and that the rollup
/// equals a recomputation. Returns the servers' log lines.
async fn kill_repeatedly(
    dir: &std::path::Path,
    options: Options,
    writers: usize,
    timeline: Timeline,
) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7_1de);
    let mut logs = Vec::new();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    // Each writer's next row, carried across kills.
    let mut next_rows: Vec<u64> = (0..writers as u64).map(|w| w * 1_000_000_000).collect();
    // Batches in flight when the server died: resent after the restart.
    let mut unacked: Vec<Batch> = Vec::new();
    let mut stored = 0;

    for kill in 0..KILLS {
        let server = TestServer::start_with(
            dir,
            Options {
                env: options.env.clone(),
                args: options.args.clone(),
            },
        )
        .await;
        if kill == 0 {
            server.declare_ticks().await;
        }
        let acked_now = acked.lock().unwrap().clone();
        stored = check_invariants(&server, &acked_now).await;

        for batch in std::mem::take(&mut unacked) {
            let (status, receipt) = server
                .post("/api/v1/streams/ticks/events", &batch.body)
                .await;
            assert_eq!(status, 200, "{receipt}");
            let accepted =
                receipt["accepted"].as_u64().unwrap() + receipt["duplicates"].as_u64().unwrap();
            assert_eq!(
                accepted, ROWS_PER_BATCH as u64,
                "a resend is stored or recognised, row by row"
            );
            acked.lock().unwrap().extend(batch.ids);
        }

        let pending: Arc<Mutex<Vec<Batch>>> = Arc::default();
        let mut tasks = Vec::new();
        for &first in &next_rows {
            let client = server.client.clone();
            let url = server.url("/api/v1/streams/ticks/events");
            let acked = Arc::clone(&acked);
            let pending = Arc::clone(&pending);
            let timeline = Arc::clone(&timeline);
            tasks.push(tokio::spawn(async move {
                let mut n = first;
                loop {
                    if timeline(n + ROWS_PER_BATCH as u64) > now_ms() - 60_000 {
                        // Caught up with the clock.
                        return n;
                    }
                    let batch = make_batch(n, &timeline);
                    n += ROWS_PER_BATCH as u64;
                    pending.lock().unwrap().push(batch.clone());
                    let Ok(response) = client.post(&url).json(&batch.body).send().await else {
                        return n;
                    };
                    if response.status() != 200 {
                        return n;
                    }
                    // Acknowledged only once the body says so.
                    let Ok(receipt) = response.json::<Value>().await else {
                        return n;
                    };
                    assert_eq!(receipt["durable"], true);
                    pending.lock().unwrap().retain(|b| b.ids[0] != batch.ids[0]);
                    acked.lock().unwrap().extend(batch.ids);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(30..300))).await;
        let mut server = server;
        server.kill(); // SIGKILL
        logs.extend(server.log_text().lines().map(str::to_owned));
        for (next, task) in next_rows.iter_mut().zip(tasks) {
            *next = task.await.unwrap();
        }
        unacked = std::mem::take(&mut *pending.lock().unwrap());
    }
    let server = TestServer::start_with(dir, options).await;
    let acked_now = acked.lock().unwrap().clone();
    let total = check_invariants(&server, &acked_now).await;
    assert!(total >= stored && total > 0);
    assert!(
        acked.lock().unwrap().len() > KILLS * ROWS_PER_BATCH,
        "the writers made progress between kills"
    );
    logs
}

fn last_segment(data_dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("a wal segment")
}

#[tokio::test]
async fn a_torn_or_corrupt_wal_tail_is_cut_and_reported_keeping_intact_records() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = base_ms();
    {
        let mut server = TestServer::start(dir.path()).await;
        server.declare_ticks().await;
        for b in 0..10 {
            let rows: Vec<Value> = (0..10)
                .map(|i| tick(t0 + b * 10 + i, "A", 1.0, 1.0))
                .collect();
            let (status, _) = server
                .post("/api/v1/streams/ticks/events", &Value::Array(rows))
                .await;
            assert_eq!(status, 200);
        }
        server.kill();
    }
    // Torn: cut the last record in half.
    let segment = last_segment(dir.path());
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 100).unwrap();
    drop(file);
    {
        let mut server = TestServer::start(dir.path()).await;
        let (_, ready) = server.get("/readyz").await;
        assert!(
            ready["recovery"]["truncated"]
                .as_str()
                .is_some_and(|t| t.contains("dropped")),
            "{ready}"
        );
        assert_eq!(
            server.rows("ticks").await,
            90,
            "the nine intact batches are kept"
        );
        assert!(
            server.log_text().contains("dropped") || server.log_text().contains("truncat"),
            "recovery logs the cut"
        );
        server.kill();
    }
    // Corrupt: flip bytes in the payload of the (now) last record.
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0xff;
    bytes[at + 1] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, ready) = server.get("/readyz").await;
    assert!(ready["recovery"]["truncated"].is_string(), "{ready}");
    assert_eq!(server.rows("ticks").await, 80);
    let prices: Vec<i64> = server
        .all_events("ticks")
        .await
        .iter()
        .map(|e| parse_ts(e["ts"].as_str().unwrap()) - t0)
        .collect();
    let expected: Vec<i64> = (0..80).rev().collect();
    assert_eq!(prices, expected, "exactly the first eight batches remain");
    // The repaired log takes new writes.
    let (status, _) = server
        .post(
            "/api/v1/streams/ticks/events",
            &json!([tick(t0 + 500, "A", 1.0, 1.0)]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(server.rows("ticks").await, 81);
}
