//! End-to-end tests of [`Rollup`]: hand-computed bars, recomputation against a direct
//! implementation under random batchings, watermark and retention, filters and snapshots.
//! Submodules: `retention` (evicted rows, time-based expiry), `checkpoint` (restore continues
//! exactly; corrupt input is an error).

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use tidewatch_types::batch::NULL_TAG;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, WindowWidth};

use crate::{Change, Error, Rollup, RollupConfig, RollupRow, RollupSpec};

mod checkpoint;
mod retention;

/// 2026-11-23T00:00:00Z, aligned to every width up to one day.
const T: i64 = 1_795_392_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

#[derive(Debug, Clone)]
struct Tick {
    ts: i64,
    id: u128,
    symbol: Option<&'static str>,
    venue: Option<&'static str>,
    price: Option<f64>,
    size: Option<i64>,
}

fn tick(ts: i64, id: u128, symbol: &'static str, price: f64, size: i64) -> Tick {
    Tick {
        ts,
        id,
        symbol: Some(symbol),
        venue: Some("x"),
        price: Some(price),
        size: Some(size),
    }
}

fn schema() -> StreamSchema {
    StreamSchema::new(
        "market.ticks",
        vec!["symbol".into(), "venue".into(), "desk".into()],
        vec![
            FieldDef {
                name: "price".into(),
                field_type: FieldType::F64,
            },
            FieldDef {
                name: "size".into(),
                field_type: FieldType::I64,
            },
        ],
    )
    .unwrap()
}

/// Dictionary-encodes `ticks` the way ingest does (dictionary in order of first use).
fn batch(ticks: &[Tick]) -> EventBatch {
    let mut batch = EventBatch::empty(&schema());
    let encode = |column: &mut tidewatch_types::TagColumn, value: Option<&str>| {
        let key = match value {
            None => NULL_TAG,
            Some(v) => match column.dict.iter().position(|d| &**d == v) {
                Some(k) => k as u32,
                None => {
                    column.dict.push(Arc::from(v));
                    column.dict.len() as u32 - 1
                }
            },
        };
        column.keys.push(key);
    };
    for t in ticks {
        batch.ids.push(t.id);
        batch.ts.push(t.ts);
        encode(&mut batch.tags[0], t.symbol);
        encode(&mut batch.tags[1], t.venue);
        encode(&mut batch.tags[2], None);
        match &mut batch.fields[0] {
            FieldColumn::F64(v) => v.push(t.price),
            _ => unreachable!(),
        }
        match &mut batch.fields[1] {
            FieldColumn::I64(v) => v.push(t.size),
            _ => unreachable!(),
        }
    }
    assert!(batch.is_consistent_with(&schema()));
    batch
}

fn width(text: &str) -> WindowWidth {
    text.parse().unwrap()
}

fn spec(group_by: &[&str], windows: &[&str], aggregates: &[(&str, &str)]) -> RollupSpec {
    RollupSpec {
        name: "bars".into(),
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        windows: windows.iter().map(|w| width(w)).collect(),
        aggregates: aggregates
            .iter()
            .map(|(n, e)| (n.to_string(), e.parse().unwrap()))
            .collect(),
    }
}

const ALL_AGGREGATES: &[(&str, &str)] = &[
    ("n", "count"),
    ("priced", "count(price)"),
    ("volume", "sum(size)"),
    ("low", "min(price)"),
    ("high", "max(price)"),
    ("avg", "mean(price)"),
    ("open", "first(price)"),
    ("close", "last(price)"),
    ("var", "variance(price)"),
    ("sd", "stddev(price)"),
    ("vwap", "vwap(price, size)"),
    ("venues", "distinct(venue)"),
    ("sizes", "distinct(size)"),
];

fn apply(rollup: &mut Rollup, ticks: &[Tick]) -> Vec<Change> {
    let mut changes = Vec::new();
    rollup.apply(&batch(ticks), &mut changes);
    changes
}

fn value(row: &RollupRow, name: &str) -> Option<f64> {
    row.values
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no aggregate {name}"))
        .1
}

fn assert_close(actual: Option<f64>, expected: Option<f64>, what: &str) {
    match (actual, expected) {
        (Some(a), Some(e)) => assert!(
            (a - e).abs() <= 1e-9 * e.abs().max(1.0),
            "{what}: {a} != {e}"
        ),
        _ => assert_eq!(actual, expected, "{what}"),
    }
}

fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn change(
    width_text: &str,
    window_start: i64,
    rollup: &Rollup,
    symbol: &str,
    correction: bool,
) -> Change {
    let group = (0..64)
        .map(crate::GroupId)
        .find(|&g| {
            rollup
                .group_values(g)
                .is_some_and(|v| v.first().and_then(|s| s.as_deref()) == Some(symbol))
        })
        .unwrap_or_else(|| panic!("no group {symbol}"));
    Change {
        width: width(width_text),
        window_start,
        group,
        correction,
    }
}

#[test]
fn hand_computed_bars_for_two_symbols_across_two_windows() {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1m"], ALL_AGGREGATES),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let a = tick(T + 10 * SEC, 1, "btc", 100.0, 1);
    let b = Tick {
        venue: Some("y"),
        ..tick(T + 20 * SEC, 2, "btc", 102.0, 3)
    };
    let c = tick(T + 5 * SEC, 3, "btc", 101.0, 2); // earliest BTC tick, arrives last
    let d = tick(T + 70 * SEC, 4, "btc", 110.0, 1);
    let e = tick(T + 30 * SEC, 5, "eth", 10.0, 5);
    let f_ = tick(T + 40 * SEC, 6, "eth", 12.0, 5);
    let g = Tick {
        price: None,
        ..tick(T + 45 * SEC, 7, "eth", 0.0, 7)
    };

    let first = apply(&mut rollup, &[a.clone(), e.clone(), b.clone()]);
    assert_eq!(first.len(), 2);
    assert_eq!(rollup.watermark(), Some(T + 25 * SEC));

    let second = apply(&mut rollup, &[f_.clone(), d.clone(), g.clone(), c.clone()]);
    // Watermark T+65s closes the first window; both its cells were also updated, so each
    // cell is reported exactly once, and none was closed before this batch.
    assert_eq!(rollup.watermark(), Some(T + 65 * SEC));
    let mut second_sorted = second.clone();
    second_sorted.sort_by_key(|c| (c.window_start, c.group));
    assert_eq!(
        second_sorted,
        vec![
            change("1m", T, &rollup, "btc", false),
            change("1m", T, &rollup, "eth", false),
            change("1m", T + MIN, &rollup, "btc", false),
        ]
    );

    let rows = rollup.query(width("1m"), None, None, &[]).unwrap();
    let keys: Vec<(i64, Option<&str>, bool)> = rows
        .iter()
        .map(|r| (r.window_start, r.group[0].1.as_deref(), r.closed))
        .collect();
    assert_eq!(
        keys,
        [
            (T, Some("btc"), true),
            (T, Some("eth"), true),
            (T + MIN, Some("btc"), false)
        ]
    );

    type Expected = [(&'static str, Option<f64>); 13];
    let btc_first: Expected = [
        ("n", Some(3.0)),
        ("priced", Some(3.0)),
        ("volume", Some(6.0)),
        ("low", Some(100.0)),
        ("high", Some(102.0)),
        ("avg", Some(101.0)),
        ("open", Some(101.0)),  // c, at T+5s, despite arriving last
        ("close", Some(102.0)), // b, at T+20s
        // deviations -1, 1, 0 from 101: (1 + 1 + 0) / (3 - 1)
        ("var", Some(1.0)),
        ("sd", Some(1.0)),
        // (100*1 + 102*3 + 101*2) / (1 + 3 + 2)
        ("vwap", Some(608.0 / 6.0)),
        ("venues", Some(2.0)),
        ("sizes", Some(3.0)),
    ];
    let eth_first: Expected = [
        ("n", Some(3.0)),
        ("priced", Some(2.0)), // g has no price
        ("volume", Some(17.0)),
        ("low", Some(10.0)),
        ("high", Some(12.0)),
        ("avg", Some(11.0)),
        ("open", Some(10.0)),
        ("close", Some(12.0)), // g is later but its price is null
        ("var", Some(2.0)),    // (1 + 1) / (2 - 1)
        ("sd", Some(2.0f64.sqrt())),
        ("vwap", Some(11.0)), // (50 + 60) / 10; g lacks a price
        ("venues", Some(1.0)),
        ("sizes", Some(2.0)),
    ];
    let btc_second: Expected = [
        ("n", Some(1.0)),
        ("priced", Some(1.0)),
        ("volume", Some(1.0)),
        ("low", Some(110.0)),
        ("high", Some(110.0)),
        ("avg", Some(110.0)),
        ("open", Some(110.0)),
        ("close", Some(110.0)),
        ("var", None), // one value
        ("sd", None),
        ("vwap", Some(110.0)),
        ("venues", Some(1.0)),
        ("sizes", Some(1.0)),
    ];
    for (row, expected) in rows.iter().zip([btc_first, eth_first, btc_second]) {
        for (name, want) in expected {
            assert_close(
                value(row, name),
                want,
                &format!("{} {name}", row.window_start),
            );
        }
    }
    // Values keep declaration order.
    let names: Vec<&str> = rows[0].values.iter().map(|(n, _)| n.as_str()).collect();
    let declared: Vec<&str> = ALL_AGGREGATES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, declared);

    let json = rows[2].to_json();
    assert_eq!(json["window_start"], "2026-11-23T00:01:00.000Z");
    assert_eq!(json["window_end"], "2026-11-23T00:02:00.000Z");
    assert_eq!(json["closed"], false);
    assert_eq!(json["symbol"], "btc");
    assert_eq!(json["n"], 1);
    assert_eq!(json["var"], serde_json::Value::Null);

    // The same events in one batch, in another order, give the same rows.
    let mut again = Rollup::new(
        spec(&["symbol"], &["1m"], ALL_AGGREGATES),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    apply(&mut again, &[g, d, c, f_, b, e, a]);
    assert_eq!(again.query(width("1m"), None, None, &[]).unwrap(), rows);
}

#[test]
fn null_tags_form_their_own_group_and_render_null() {
    let mut rollup = Rollup::new(
        spec(&["symbol", "venue"], &["1m"], &[("n", "count")]),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let anonymous = Tick {
        symbol: None,
        ..tick(T, 1, "btc", 1.0, 1)
    };
    apply(
        &mut rollup,
        &[anonymous.clone(), anonymous, tick(T, 2, "btc", 1.0, 1)],
    );
    let rows = rollup.query(width("1m"), None, None, &[]).unwrap();
    assert_eq!(rows.len(), 2);
    // Nulls sort first.
    assert_eq!(
        rows[0].group,
        vec![
            ("symbol".to_string(), None),
            ("venue".to_string(), Some(Arc::from("x")))
        ]
    );
    assert_eq!(value(&rows[0], "n"), Some(2.0));
    assert_eq!(rows[0].to_json()["symbol"], serde_json::Value::Null);
}

/// A row's identity across queries: (width in ms, window start, group values).
type RowKey = (i64, i64, Vec<Option<String>>);

fn row_key(row: &RollupRow) -> RowKey {
    (
        row.window_end - row.window_start,
        row.window_start,
        row.group
            .iter()
            .map(|(_, v)| v.as_deref().map(str::to_owned))
            .collect(),
    )
}

/// Every row of every width of `rollup`, by key.
fn all_rows(rollup: &Rollup) -> BTreeMap<RowKey, RollupRow> {
    let mut rows = BTreeMap::new();
    for &width in &rollup.spec().windows {
        for row in rollup.query(width, None, None, &[]).unwrap() {
            let previous = rows.insert(row_key(&row), row);
            assert!(previous.is_none(), "a window listed twice");
        }
    }
    rows
}

/// A tick for the recomputation test.
fn arb_tick() -> impl Strategy<
    Value = (
        i64,
        Option<&'static str>,
        &'static str,
        Option<f64>,
        Option<i64>,
    ),
> {
    (
        0..12 * MIN,
        prop::option::weighted(0.9, prop::sample::select(vec!["aa", "bb", "cc"])),
        prop::sample::select(vec!["x", "y", "z"]),
        prop::option::weighted(0.9, -500.0f64..500.0),
        prop::option::weighted(0.9, -20i64..100),
    )
}

/// Direct computation of one group's window, independent of the aggregate states.
fn direct(ticks: &[&Tick]) -> Vec<(&'static str, Option<f64>)> {
    let n = ticks.len() as f64;
    let prices: Vec<f64> = ticks.iter().filter_map(|t| t.price).collect();
    let sizes: Vec<i64> = ticks.iter().filter_map(|t| t.size).collect();
    let some = |x: f64, present: bool| present.then_some(x);
    let sum: f64 = prices.iter().sum();
    let count = prices.len() as f64;
    let mean = sum / count;
    let by_order = |a: &&&Tick, b: &&&Tick| (a.ts, a.id).cmp(&(b.ts, b.id));
    let priced: Vec<&&Tick> = ticks.iter().filter(|t| t.price.is_some()).collect();
    let variance = (prices.len() >= 2)
        .then(|| prices.iter().map(|p| (p - mean) * (p - mean)).sum::<f64>() / (count - 1.0));
    let pairs: Vec<(f64, f64)> = ticks
        .iter()
        .filter_map(|t| Some((t.price?, t.size? as f64)))
        .collect();
    let quantity: f64 = pairs.iter().map(|p| p.1).sum();
    let notional: f64 = pairs.iter().map(|p| p.0 * p.1).sum();
    let mut venues: Vec<&str> = ticks.iter().filter_map(|t| t.venue).collect();
    venues.sort();
    venues.dedup();
    let mut distinct_sizes = sizes.clone();
    distinct_sizes.sort();
    distinct_sizes.dedup();
    vec![
        ("n", Some(n)),
        ("priced", Some(count)),
        (
            "volume",
            some(sizes.iter().sum::<i64>() as f64, !sizes.is_empty()),
        ),
        ("low", prices.iter().copied().reduce(f64::min)),
        ("high", prices.iter().copied().reduce(f64::max)),
        ("avg", some(mean, count > 0.0)),
        (
            "open",
            priced
                .iter()
                .copied()
                .min_by(by_order)
                .and_then(|t| t.price),
        ),
        (
            "close",
            priced
                .iter()
                .copied()
                .max_by(by_order)
                .and_then(|t| t.price),
        ),
        ("var", variance),
        ("sd", variance.map(f64::sqrt)),
        ("vwap", (quantity != 0.0).then(|| notional / quantity)),
        ("venues", Some(venues.len() as f64)),
        ("sizes", Some(distinct_sizes.len() as f64)),
    ]
}

/// A tiny deterministic generator for shuffles and cut points.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % bound.max(1) as u64) as usize
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_batching_and_order_matches_direct_computation(
        raw in prop::collection::vec(arb_tick(), 1..300),
        seed in any::<u64>(),
    ) {
        let ticks: Vec<Tick> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (offset, symbol, venue, price, size))| Tick {
                ts: T + offset,
                // Unique ids, not in time order, so (ts, id) ties are broken by id.
                id: (i as u128 * 7919) % 10_007,
                symbol,
                venue: Some(venue),
                price,
                size,
            })
            .collect();
        let windows = ["1m", "5m", "1h", "15s"];
        // Zero lateness closes windows early, huge retention never drops: closing must not
        // change values.
        let config = RollupConfig { allowed_lateness_ms: 0, retained_windows: 1_000_000 };
        let mut rng = SplitMix(seed);
        let mut results = Vec::new();
        for _attempt in 0..3 {
            let mut order = ticks.clone();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.next(i + 1));
            }
            let mut rollup = Rollup::new(spec(&["symbol"], &windows, ALL_AGGREGATES), &schema(), config).unwrap();
            let mut rest = &order[..];
            while !rest.is_empty() {
                let take = 1 + rng.next(rest.len());
                let (now, later) = rest.split_at(take);
                apply(&mut rollup, now);
                rest = later;
            }
            prop_assert_eq!(rollup.late_dropped(), 0);
            let rows: Vec<Vec<RollupRow>> = windows
                .iter()
                .map(|w| rollup.query(width(w), None, None, &[]).unwrap())
                .collect();
            results.push(rows);
        }

        let max_ts = ticks.iter().map(|t| t.ts).max().unwrap();
        for (w, text) in windows.iter().enumerate() {
            let width = width(text);
            let mut cells: BTreeMap<(i64, Option<&str>), Vec<&Tick>> = BTreeMap::new();
            for t in &ticks {
                cells.entry((width.window_start(t.ts), t.symbol)).or_default().push(t);
            }
            for attempt in &results {
                let rows = &attempt[w];
                prop_assert_eq!(rows.len(), cells.len());
                for (row, ((start, symbol), members)) in rows.iter().zip(&cells) {
                    prop_assert_eq!(row.window_start, *start);
                    prop_assert_eq!(row.window_end, start + width.millis());
                    prop_assert_eq!(row.closed, start + width.millis() <= max_ts);
                    prop_assert_eq!(row.group[0].1.as_deref(), *symbol);
                    let scale = members
                        .iter()
                        .filter_map(|t| t.price)
                        .map(|p| p * p * 100.0)
                        .sum::<f64>()
                        .max(1.0);
                    for (name, want) in direct(members) {
                        let got = value(row, name);
                        let ok = match (got, want) {
                            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(scale.sqrt()),
                            _ => got == want,
                        };
                        prop_assert!(ok, "{} {} {:?} {}: {:?} != {:?}", text, start, symbol, name, got, want);
                    }
                }
            }
            // Exact kinds agree bit for bit across batchings.
            for attempt in &results[1..] {
                for (a, b) in attempt[w].iter().zip(&results[0][w]) {
                    for name in ["n", "priced", "low", "high", "open", "close", "venues", "sizes"] {
                        prop_assert_eq!(value(a, name), value(b, name));
                    }
                }
            }
        }
    }
}

#[test]
fn watermark_closes_windows_and_late_events_are_corrections_or_dropped() {
    let config = RollupConfig {
        allowed_lateness_ms: SEC,
        retained_windows: 2,
    };
    let mut rollup = Rollup::new(
        spec(
            &["symbol"],
            &["1m"],
            &[("n", "count"), ("volume", "sum(size)")],
        ),
        &schema(),
        config,
    )
    .unwrap();
    assert_eq!(rollup.watermark(), None);

    let changes = apply(&mut rollup, &[tick(T + 10 * SEC, 1, "btc", 1.0, 1)]);
    assert_eq!(changes, [change("1m", T, &rollup, "btc", false)]);
    assert_eq!(rollup.watermark(), Some(T + 9 * SEC));
    let first = changes[0];
    assert!(!rollup.row(&first).unwrap().closed);

    // One millisecond short of closing the first window.
    let changes = apply(&mut rollup, &[tick(T + 60_999, 2, "btc", 1.0, 1)]);
    assert_eq!(changes, [change("1m", T + MIN, &rollup, "btc", false)]);
    assert!(!rollup.row(&first).unwrap().closed);

    // Watermark reaches T+60s: the first window closes and is reported, once.
    let changes = apply(&mut rollup, &[tick(T + 61 * SEC, 3, "eth", 1.0, 1)]);
    assert_eq!(rollup.watermark(), Some(T + MIN));
    assert_eq!(
        changes,
        [
            change("1m", T + MIN, &rollup, "eth", false),
            change("1m", T, &rollup, "btc", false),
        ]
    );
    let row = rollup.row(&first).unwrap();
    assert!(row.closed);
    assert_eq!(value(&row, "n"), Some(1.0));
    // No further closing reports while the watermark stays inside the window.
    let changes = apply(&mut rollup, &[tick(T + 62 * SEC, 4, "eth", 1.0, 1)]);
    assert_eq!(changes, [change("1m", T + MIN, &rollup, "eth", false)]);

    // A late event for the closed window updates it and is flagged as a correction.
    let changes = apply(&mut rollup, &[tick(T + 30 * SEC, 5, "btc", 1.0, 4)]);
    assert_eq!(changes, [change("1m", T, &rollup, "btc", true)]);
    let row = rollup.row(&changes[0]).unwrap();
    assert!(row.closed);
    assert_eq!(value(&row, "n"), Some(2.0));
    assert_eq!(value(&row, "volume"), Some(5.0));
    assert_eq!(rollup.late_dropped(), 0);

    // Jump ahead: watermark T+10m, horizon two windows before T+10m, i.e. T+8m. The old
    // windows are evicted (and not reported as closing).
    let changes = apply(&mut rollup, &[tick(T + 10 * MIN + SEC, 6, "btc", 1.0, 1)]);
    assert_eq!(changes, [change("1m", T + 10 * MIN, &rollup, "btc", false)]);
    assert_eq!(rollup.row(&first), None);
    assert_eq!(rollup.cell_count(), 1);

    // An event older than the horizon is counted and changes nothing.
    let before = rollup.query(width("1m"), None, None, &[]).unwrap();
    let changes = apply(&mut rollup, &[tick(T + 5 * MIN, 7, "btc", 1.0, 1)]);
    assert!(changes.is_empty());
    assert_eq!(rollup.late_dropped(), 1);
    assert_eq!(rollup.query(width("1m"), None, None, &[]).unwrap(), before);
    assert_eq!(rollup.cell_count(), 1);

    // Inside the horizon, a closed window can still be corrected.
    let changes = apply(
        &mut rollup,
        &[tick(T + 8 * MIN + 5 * SEC, 8, "btc", 1.0, 1)],
    );
    assert_eq!(changes, [change("1m", T + 8 * MIN, &rollup, "btc", true)]);
    assert_eq!(rollup.late_dropped(), 1);
}

#[test]
fn retention_is_per_width_and_drops_count_once_per_event() {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1m", "1h", "5m"], &[("n", "count")]),
        &schema(),
        RollupConfig {
            allowed_lateness_ms: 0,
            retained_windows: 2,
        },
    )
    .unwrap();
    apply(&mut rollup, &[tick(T + 10 * MIN, 1, "btc", 1.0, 1)]);
    // 1m horizon: T+8m; 5m horizon: T+10m - 10m = T; 1h horizon: T - 2h.
    let changes = apply(&mut rollup, &[tick(T + 5 * MIN, 2, "btc", 1.0, 1)]);
    assert_eq!(rollup.late_dropped(), 1);
    let mut widths: Vec<String> = changes.iter().map(|c| c.width.to_string()).collect();
    widths.sort();
    assert_eq!(widths, ["1h", "5m"]);
    let hour = rollup.query(width("1h"), None, None, &[]).unwrap();
    assert_eq!(value(&hour[0], "n"), Some(2.0));
    assert_eq!(rollup.query(width("1m"), None, None, &[]).unwrap().len(), 1);
}

#[test]
fn changes_are_deduplicated_per_call() {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1m", "5m"], &[("n", "count")]),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let ticks: Vec<Tick> = (0..100)
        .map(|i| {
            tick(
                T + i * SEC,
                i as u128,
                if i % 2 == 0 { "btc" } else { "eth" },
                1.0,
                1,
            )
        })
        .collect();
    let changes = apply(&mut rollup, &ticks);
    // 2 groups x (1m windows T and T+1m, 5m window T).
    assert_eq!(changes.len(), 6);
    let again = apply(&mut rollup, &ticks[..10]);
    assert_eq!(again.len(), 4, "{again:?}");
}

#[test]
fn filters_queries_and_snapshots() {
    let mut rollup = Rollup::new(
        spec(&["symbol", "venue"], &["1m"], &[("n", "count")]),
        &schema(),
        RollupConfig::test_config(),
    )
    .unwrap();
    let mut ticks = Vec::new();
    for minute in 0..6 {
        for (i, (symbol, venue)) in [("btc", "x"), ("btc", "y"), ("eth", "x")]
            .into_iter()
            .enumerate()
        {
            ticks.push(Tick {
                venue: Some(venue),
                ..tick(
                    T + minute * MIN + 10 * SEC,
                    (minute * 3 + i as i64) as u128,
                    symbol,
                    1.0,
                    1,
                )
            });
        }
    }
    apply(&mut rollup, &ticks);
    // Watermark T+5m+9s: windows 0..=4 closed; with 4 retained, window 0 is evicted.
    assert_eq!(rollup.watermark(), Some(T + 5 * MIN + 9 * SEC));
    let key = |r: &RollupRow| {
        (
            (r.window_start - T) / MIN,
            r.group
                .iter()
                .map(|(_, v)| v.as_deref().unwrap_or("-").to_string())
                .collect::<Vec<_>>()
                .join("/"),
            r.closed,
        )
    };

    let btc = rollup
        .query(width("1m"), None, None, &f(&[("symbol", "btc")]))
        .unwrap();
    let keys: Vec<_> = btc.iter().map(key).collect();
    let mut expected = Vec::new();
    for minute in 1..6 {
        for venue in ["x", "y"] {
            expected.push((minute, format!("btc/{venue}"), minute < 5));
        }
    }
    assert_eq!(keys, expected);
    assert!(btc.iter().all(|r| r.matches(&f(&[("symbol", "btc")]))));

    let ranged = rollup
        .query(width("1m"), Some(T + 2 * MIN), Some(T + 4 * MIN), &[])
        .unwrap();
    let keys: Vec<_> = ranged.iter().map(key).collect();
    assert_eq!(
        keys,
        [
            (2, "btc/x".into(), true),
            (2, "btc/y".into(), true),
            (2, "eth/x".into(), true),
            (3, "btc/x".into(), true),
            (3, "btc/y".into(), true),
            (3, "eth/x".into(), true),
        ]
    );
    let eth_x = rollup
        .query(
            width("1m"),
            None,
            None,
            &f(&[("venue", "x"), ("symbol", "eth")]),
        )
        .unwrap();
    assert_eq!(eth_x.len(), 5);
    assert!(
        rollup
            .query(width("1m"), None, None, &f(&[("symbol", "doge")]))
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        rollup.query(width("1m"), None, None, &f(&[("desk", "a")])),
        Err(Error::FilterNotGrouped {
            tag: "desk".into(),
            rollup: "bars".into(),
            group_by: vec!["symbol".into(), "venue".into()],
        })
    );
    assert!(matches!(
        rollup.query(width("1m"), None, None, &f(&[("price", "1")])),
        Err(Error::FilterNotGrouped { .. })
    ));
    assert!(matches!(
        rollup.query(width("5m"), None, None, &[]),
        Err(Error::UnknownWindow { .. })
    ));
    assert!(matches!(
        rollup.snapshot(width("1m"), &f(&[("desk", "a")]), 1),
        Err(Error::FilterNotGrouped { .. })
    ));

    // Snapshot: the open window plus the last two closed ones, per group.
    let snapshot = rollup
        .snapshot(width("1m"), &f(&[("symbol", "btc")]), 2)
        .unwrap();
    let keys: Vec<_> = snapshot.iter().map(key).collect();
    assert_eq!(
        keys,
        [
            (3, "btc/x".into(), true),
            (3, "btc/y".into(), true),
            (4, "btc/x".into(), true),
            (4, "btc/y".into(), true),
            (5, "btc/x".into(), false),
            (5, "btc/y".into(), false),
        ]
    );
    let open_only = rollup.snapshot(width("1m"), &[], 0).unwrap();
    assert_eq!(
        open_only.iter().map(key).collect::<Vec<_>>(),
        [
            (5, "btc/x".into(), false),
            (5, "btc/y".into(), false),
            (5, "eth/x".into(), false),
        ]
    );
    // Asking for more closed windows than retained returns what is there.
    assert_eq!(rollup.snapshot(width("1m"), &[], 100).unwrap().len(), 15);
}

#[test]
fn new_rejects_bad_specs_and_configs() {
    let good = spec(&["symbol"], &["1m"], &[("n", "count")]);
    assert!(matches!(
        Rollup::new(
            spec(&["nope"], &["1m"], &[("n", "count")]),
            &schema(),
            RollupConfig::default()
        ),
        Err(Error::UnknownGroupTag { .. })
    ));
    let negative = RollupConfig {
        allowed_lateness_ms: -1,
        ..RollupConfig::default()
    };
    assert!(matches!(
        Rollup::new(good.clone(), &schema(), negative),
        Err(Error::InvalidConfig(_))
    ));
    let none_kept = RollupConfig {
        retained_windows: 0,
        ..RollupConfig::default()
    };
    assert!(matches!(
        Rollup::new(good.clone(), &schema(), none_kept),
        Err(Error::InvalidConfig(_))
    ));
    let rollup = Rollup::new(good.clone(), &schema(), RollupConfig::default()).unwrap();
    assert_eq!(rollup.spec(), &good);
    let config: RollupConfig = serde_json::from_str(r#"{"retained_windows": 10}"#).unwrap();
    assert_eq!(config.allowed_lateness_ms, 5_000);
}

#[test]
fn malformed_batches_do_not_panic() {
    let mut rollup = Rollup::new(
        spec(&["symbol", "venue"], &["1m"], ALL_AGGREGATES),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let mut bad = batch(&[tick(T, 1, "btc", 1.0, 1), tick(T + 1, 2, "eth", 2.0, 2)]);
    bad.ids.truncate(1);
    bad.tags[0].keys[1] = 99; // outside the dictionary: read as null
    bad.tags[1].keys.clear();
    bad.fields[0] = FieldColumn::F64(vec![]);
    bad.fields.truncate(1);
    let mut changes = Vec::new();
    rollup.apply(&bad, &mut changes);
    let far = EventBatch {
        ts: vec![i64::MIN, i64::MAX],
        ..batch(&[tick(T, 1, "btc", 1.0, 1), tick(T, 2, "btc", 1.0, 1)])
    };
    rollup.apply(&far, &mut changes);
    assert_eq!(rollup.late_dropped(), 2);
    assert!(rollup.query(width("1m"), None, None, &[]).is_ok());
}
