//! Retention as the engine sees it: windows evicted by `retained_windows` come out of
//! [`Rollup::take_evicted`] exactly as queries showed them, and [`Rollup::expire_before`]
//! drops exactly the windows that ended by the cutoff.

use proptest::prelude::*;

use super::*;

const RETENTION_WINDOWS: [&str; 3] = ["1m", "15s", "5m"];

/// Ticks that mostly move forward, some arriving up to three minutes late, so the watermark
/// advances, retention evicts, and late events land in retained and evicted windows.
fn arb_stream() -> impl Strategy<Value = Vec<Tick>> {
    prop::collection::vec(
        (
            0..20 * SEC,
            prop::option::weighted(0.3, 0..3 * MIN),
            prop::sample::select(vec!["aa", "bb", "cc"]),
            prop::option::weighted(0.9, -500.0f64..500.0),
            prop::option::weighted(0.9, 0i64..100),
        ),
        1..200,
    )
    .prop_map(|raw| {
        let mut now = T;
        raw.into_iter()
            .enumerate()
            .map(|(i, (advance, late, symbol, price, size))| {
                now += advance;
                Tick {
                    ts: now - late.unwrap_or(0),
                    id: i as u128,
                    symbol: Some(symbol),
                    venue: Some("x"),
                    price,
                    size,
                }
            })
            .collect()
    })
}

/// Splits `ticks` into batches of 1 to 8 rows at points drawn from `cuts`.
fn batches<'t>(ticks: &'t [Tick], cuts: &[usize]) -> Vec<&'t [Tick]> {
    let mut out = Vec::new();
    let mut rest = ticks;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let take = (1 + cuts.next().copied().unwrap_or(0) % 8).min(rest.len());
        let (now, later) = rest.split_at(take);
        out.push(now);
        rest = later;
    }
    out
}

fn retention_rollup(lateness_ms: i64) -> Rollup {
    let config = RollupConfig {
        allowed_lateness_ms: lateness_ms,
        retained_windows: 3,
    };
    Rollup::new(
        spec(&["symbol"], &RETENTION_WINDOWS, ALL_AGGREGATES),
        &schema(),
        config,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn evicted_rows_are_the_rows_queries_showed_before_eviction(
        ticks in arb_stream(),
        cuts in prop::collection::vec(0usize..8, 1..16),
        lateness in prop::sample::select(vec![0, 10 * SEC, 2 * MIN]),
    ) {
        let mut kept = retention_rollup(lateness);
        kept.set_keep_evicted(true);
        let mut plain = retention_rollup(lateness);
        let mut evicted_total = 0;
        for batch in batches(&ticks, &cuts) {
            let before = all_rows(&kept);
            let kept_changes = apply(&mut kept, batch);
            let evicted = kept.take_evicted();
            let after = all_rows(&kept);

            // Exactly the windows that disappeared, each once, each as it was.
            let gone: Vec<&RowKey> = before.keys().filter(|k| !after.contains_key(*k)).collect();
            let evicted_keys: Vec<RowKey> = evicted.iter().map(row_key).collect();
            let mut sorted_keys = evicted_keys.clone();
            sorted_keys.sort();
            sorted_keys.dedup();
            prop_assert_eq!(sorted_keys.len(), evicted.len(), "a window evicted twice");
            prop_assert_eq!(sorted_keys.iter().collect::<Vec<_>>(), gone);
            for row in &evicted {
                prop_assert!(row.closed, "evicted rows are final");
                let mut shown = before[&row_key(row)].clone();
                shown.closed = true;
                prop_assert_eq!(row, &shown);
            }
            // Ordered per width in spec order, then by window start and group values.
            let order = |row: &RollupRow| {
                let millis = row.window_end - row.window_start;
                let width_index = RETENTION_WINDOWS.iter().position(|w| width(w).millis() == millis);
                (width_index, row.window_start, row_key(row).2)
            };
            prop_assert!(evicted.windows(2).all(|pair| order(&pair[0]) <= order(&pair[1])));
            evicted_total += evicted.len();

            // Keeping evicted rows changes nothing else.
            prop_assert_eq!(apply(&mut plain, batch), kept_changes);
            prop_assert!(plain.take_evicted().is_empty());
            prop_assert_eq!(all_rows(&plain), after);
        }
        prop_assert_eq!(plain.late_dropped(), kept.late_dropped());
        // The stream is long enough that most cases evict something.
        if ticks.len() > 150 && lateness == 0 {
            prop_assert!(evicted_total > 0);
        }
    }

    #[test]
    fn expire_before_drops_exactly_the_windows_ended_by_the_cutoff(
        ticks in arb_stream(),
        cutoff_offset in -5 * MIN..70 * MIN,
    ) {
        let mut rollup = retention_rollup(0);
        rollup.set_keep_evicted(true);
        apply(&mut rollup, &ticks);
        rollup.take_evicted();
        let cutoff = T + cutoff_offset;
        let before = all_rows(&rollup);
        let watermark = rollup.watermark();

        let dropped = rollup.expire_before(cutoff);

        let expected: BTreeMap<RowKey, RollupRow> = before
            .iter()
            .filter(|(_, row)| row.window_end > cutoff)
            .map(|(k, row)| (k.clone(), row.clone()))
            .collect();
        prop_assert_eq!(dropped, before.len() - expected.len());
        prop_assert_eq!(rollup.cell_count(), expected.len());
        prop_assert_eq!(all_rows(&rollup), expected);
        prop_assert!(rollup.take_evicted().is_empty(), "expired windows are not evicted rows");
        prop_assert_eq!(rollup.watermark(), watermark);
        // Idempotent, and an older cutoff changes nothing.
        prop_assert_eq!(rollup.expire_before(cutoff), 0);
        prop_assert_eq!(rollup.expire_before(cutoff - 10 * MIN), 0);
    }
}

#[test]
fn late_events_for_expired_windows_are_dropped() {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1m", "5m"], &[("n", "count")]),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let ticks: Vec<Tick> = (0..10)
        .map(|minute| tick(T + minute * MIN + SEC, minute as u128, "btc", 1.0, 1))
        .collect();
    apply(&mut rollup, &ticks);
    assert_eq!(rollup.cell_count(), 10 + 2);

    // 1m windows T..T+2m end by T+3m30s; the 5m window [T, T+5m) does not.
    assert_eq!(rollup.expire_before(T + 3 * MIN + 30 * SEC), 3);
    let minutes = rollup.query(width("1m"), None, None, &[]).unwrap();
    assert_eq!(minutes.first().map(|r| r.window_start), Some(T + 3 * MIN));
    assert_eq!(rollup.query(width("5m"), None, None, &[]).unwrap().len(), 2);

    // Late for an expired minute: dropped there (and counted), still folded into 5m.
    let changes = apply(
        &mut rollup,
        &[tick(T + 2 * MIN + 10 * SEC, 20, "btc", 1.0, 1)],
    );
    assert_eq!(changes, [change("5m", T, &rollup, "btc", true)]);
    assert_eq!(rollup.late_dropped(), 1);
    assert_eq!(rollup.query(width("1m"), None, None, &[]).unwrap(), minutes);

    // Late for a retained minute: folded as a correction.
    let changes = apply(
        &mut rollup,
        &[tick(T + 3 * MIN + 10 * SEC, 21, "btc", 1.0, 1)],
    );
    assert_eq!(changes.len(), 2);
    assert_eq!(rollup.late_dropped(), 1);

    // Extreme cutoffs do not panic; i64::MAX drops everything.
    assert_eq!(rollup.expire_before(i64::MIN), 0);
    let held = rollup.cell_count();
    assert_eq!(rollup.expire_before(i64::MAX), held);
    assert_eq!(rollup.cell_count(), 0);
}

#[test]
fn evicted_rows_are_collected_only_while_asked_for() {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1m"], &[("n", "count")]),
        &schema(),
        RollupConfig {
            allowed_lateness_ms: 0,
            retained_windows: 1,
        },
    )
    .unwrap();
    let at = |minute: i64| tick(T + minute * MIN, minute as u128, "btc", 1.0, 1);
    apply(&mut rollup, &[at(0), at(1)]);
    apply(&mut rollup, &[at(2)]);
    assert!(rollup.take_evicted().is_empty(), "off by default");

    rollup.set_keep_evicted(true);
    apply(&mut rollup, &[at(3)]);
    let evicted = rollup.take_evicted();
    assert_eq!(
        evicted.iter().map(|r| r.window_start).collect::<Vec<_>>(),
        [T + MIN]
    );
    assert!(rollup.take_evicted().is_empty(), "take drains");

    apply(&mut rollup, &[at(4)]);
    rollup.set_keep_evicted(false);
    apply(&mut rollup, &[at(5)]);
    // Collected while on, kept until taken; nothing collected after turning it off.
    let evicted = rollup.take_evicted();
    assert_eq!(
        evicted.iter().map(|r| r.window_start).collect::<Vec<_>>(),
        [T + 2 * MIN]
    );
}
