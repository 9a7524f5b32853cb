//! Checkpoints: a rollup restored from a checkpoint continues exactly like the rollup it was
//! taken from, and no malformed input panics or restores.

use proptest::prelude::*;

use super::*;

/// A row with its floats as bits, so equality is exact (and NaN equals itself).
type ExactRow = (
    i64,
    i64,
    bool,
    Vec<Option<String>>,
    Vec<(String, Option<u64>)>,
);

fn exact(row: &RollupRow) -> ExactRow {
    (
        row.window_start,
        row.window_end,
        row.closed,
        row.group
            .iter()
            .map(|(_, v)| v.as_deref().map(str::to_owned))
            .collect(),
        row.values
            .iter()
            .map(|(name, v)| (name.clone(), v.map(f64::to_bits)))
            .collect(),
    )
}

/// Everything a rollup shows: every row of every width (in query order), the clock, the
/// drop counter and the groups.
#[derive(Debug, PartialEq)]
struct Observed {
    rows: Vec<Vec<ExactRow>>,
    watermark: Option<i64>,
    late_dropped: u64,
    cells: usize,
    groups: Vec<Vec<Option<String>>>,
}

fn observe(rollup: &Rollup) -> Observed {
    let mut groups = Vec::new();
    let mut id = 0;
    while let Some(values) = rollup.group_values(crate::GroupId(id)) {
        groups.push(
            values
                .iter()
                .map(|v| v.as_deref().map(str::to_owned))
                .collect(),
        );
        id += 1;
    }
    Observed {
        rows: rollup
            .spec()
            .windows
            .iter()
            .map(|&w| {
                rollup
                    .query(w, None, None, &[])
                    .unwrap()
                    .iter()
                    .map(exact)
                    .collect()
            })
            .collect(),
        watermark: rollup.watermark(),
        late_dropped: rollup.late_dropped(),
        cells: rollup.cell_count(),
        groups,
    }
}

const WINDOWS: [&str; 4] = ["15s", "1m", "1h", "5m"];

fn restored(rollup: &Rollup, config: RollupConfig) -> Rollup {
    Rollup::restore(
        rollup.spec().clone(),
        &schema(),
        config,
        &rollup.checkpoint(),
    )
    .unwrap()
}

/// Mostly forward ticks, some late; sizes from a wide range so that `distinct(size)` of a
/// busy group crosses from exact to registers within an hour window.
fn arb_ticks() -> impl Strategy<Value = Vec<Tick>> {
    prop::collection::vec(
        (
            0..6 * SEC,
            prop::option::weighted(0.3, 0..4 * MIN),
            prop::option::weighted(0.9, prop::sample::select(vec!["aa", "bb"])),
            prop::option::weighted(0.9, prop::sample::select(vec!["x", "y", "z"])),
            prop::option::weighted(0.9, -500.0f64..500.0),
            prop::option::weighted(0.9, 0i64..1_000_000),
        ),
        1..700,
    )
    .prop_map(|raw| {
        let mut now = T;
        raw.into_iter()
            .enumerate()
            .map(|(i, (advance, late, symbol, venue, price, size))| {
                now += advance;
                Tick {
                    ts: now - late.unwrap_or(0),
                    // Not in time order, so (ts, id) ties matter for first/last.
                    id: (i as u128 * 7919) % 10_007,
                    symbol,
                    venue,
                    price,
                    size,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn restore_then_suffix_equals_the_uninterrupted_rollup(
        ticks in arb_ticks(),
        split in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(1usize..40, 1..8),
        group_by in prop::sample::select(vec![vec![], vec!["symbol"], vec!["symbol", "venue"]]),
        lateness in prop::sample::select(vec![0, 20 * SEC, 2 * MIN]),
        retained in prop::sample::select(vec![2u32, 5, 1000]),
        expire in prop::option::weighted(0.3, 0..30 * MIN),
    ) {
        let config = RollupConfig { allowed_lateness_ms: lateness, retained_windows: retained };
        let spec = spec(&group_by, &WINDOWS, ALL_AGGREGATES);
        let mut original = Rollup::new(spec.clone(), &schema(), config).unwrap();
        let (prefix, suffix) = ticks.split_at(split.index(ticks.len() + 1));
        let mut cuts = cuts.iter().cycle();
        let mut batches = |mut rest: &[Tick]| {
            let mut out = Vec::new();
            while !rest.is_empty() {
                let take = cuts.next().copied().unwrap_or(1).min(rest.len());
                let (now, later) = rest.split_at(take);
                out.push(now.to_vec());
                rest = later;
            }
            out
        };
        for batch in batches(prefix) {
            apply(&mut original, &batch);
        }
        if let Some(offset) = expire {
            // Expiry raises horizons that only the checkpoint remembers.
            original.expire_before(T + offset);
        }

        let bytes = original.checkpoint();
        let mut resumed = Rollup::restore(spec, &schema(), config, &bytes).unwrap();
        prop_assert_eq!(observe(&resumed), observe(&original));
        // Deterministic and complete: the restored state checkpoints to the same bytes.
        prop_assert_eq!(resumed.checkpoint(), bytes);

        original.set_keep_evicted(true);
        resumed.set_keep_evicted(true);
        for batch in batches(suffix) {
            let want = apply(&mut original, &batch);
            let got = apply(&mut resumed, &batch);
            prop_assert_eq!(got, want);
            prop_assert_eq!(resumed.take_evicted(), original.take_evicted());
        }
        prop_assert_eq!(observe(&resumed), observe(&original));
        prop_assert_eq!(resumed.checkpoint(), original.checkpoint());
    }
}

/// A small rollup that uses every aggregate, a null group value, two widths, closed and
/// open windows and a dropped event — the subject of the corruption tests.
fn small_rollup() -> Rollup {
    let config = RollupConfig {
        allowed_lateness_ms: SEC,
        retained_windows: 2,
    };
    let mut rollup = Rollup::new(
        spec(&["symbol", "venue"], &["1m", "5m"], ALL_AGGREGATES),
        &schema(),
        config,
    )
    .unwrap();
    let anonymous = Tick {
        symbol: None,
        ..tick(T + 3 * SEC, 3, "btc", 7.0, 2)
    };
    apply(
        &mut rollup,
        &[
            tick(T + 10 * SEC, 1, "btc", 100.0, 1),
            tick(T + 20 * SEC, 2, "btc", 102.0, 3),
            anonymous,
        ],
    );
    apply(
        &mut rollup,
        &[
            tick(T + 4 * MIN, 4, "eth", 10.0, 5),
            tick(T + 150 * SEC, 6, "btc", 103.0, 4),
        ],
    );
    // Late for the evicted minute T (dropped there), folded into the open 5m window.
    apply(&mut rollup, &[tick(T + 30 * SEC, 5, "btc", 101.0, 2)]);
    assert_eq!(rollup.late_dropped(), 1);
    let minutes = rollup.query(width("1m"), None, None, &[]).unwrap();
    assert_eq!(
        minutes.iter().map(|r| r.closed).collect::<Vec<_>>(),
        [true, false]
    );
    rollup
}

fn restore_bytes(rollup: &Rollup, bytes: &[u8]) -> Result<Rollup, Error> {
    Rollup::restore(rollup.spec().clone(), &schema(), *rollup.config(), bytes)
}

fn with_crc(mut content: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&content);
    content.extend_from_slice(&crc.to_le_bytes());
    content
}

fn reason(result: Result<Rollup, Error>) -> String {
    match result {
        Err(Error::Checkpoint(reason)) => reason,
        Err(other) => panic!("not a checkpoint error: {other}"),
        Ok(_) => panic!("restored"),
    }
}

#[test]
fn every_byte_flip_and_truncation_is_an_error() {
    let rollup = small_rollup();
    let bytes = rollup.checkpoint();
    assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    assert_eq!(
        observe(&restore_bytes(&rollup, &bytes).unwrap()),
        observe(&rollup)
    );
    for index in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[index] ^= flip;
            assert!(
                matches!(restore_bytes(&rollup, &corrupt), Err(Error::Checkpoint(_))),
                "byte {index} ^ {flip:#x}"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(
            matches!(
                restore_bytes(&rollup, &bytes[..len]),
                Err(Error::Checkpoint(_))
            ),
            "truncated to {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(restore_bytes(&rollup, &longer).is_err());
}

/// Past the checksum (as if a corrupt file matched its CRC by chance, or a buggy writer
/// produced it), the decoder itself must reject or accept without panicking or allocating
/// for lengths the input cannot hold.
#[test]
fn a_valid_checksum_over_corrupt_content_never_panics() {
    for rollup in [small_rollup(), dense_rollup()] {
        let bytes = rollup.checkpoint();
        let content = &bytes[..bytes.len() - 4];
        for index in 0..content.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut corrupt = content.to_vec();
                corrupt[index] ^= flip;
                // Ok or Err are both fine; a panic fails the test.
                let _ = restore_bytes(&rollup, &with_crc(corrupt));
            }
        }
        for len in 0..content.len() {
            assert!(
                restore_bytes(&rollup, &with_crc(content[..len].to_vec())).is_err(),
                "content truncated to {len}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(
        garbage in prop::collection::vec(any::<u8>(), 0..512),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let rollup = small_rollup();
        prop_assert!(restore_bytes(&rollup, &garbage).is_err());
        // Framed garbage: right magic, version and checksum.
        let mut framed = rollup.checkpoint()[..12].to_vec();
        framed.extend_from_slice(&garbage);
        let _ = restore_bytes(&rollup, &with_crc(framed));
        // A real checkpoint with a few bytes overwritten and the checksum fixed.
        let bytes = rollup.checkpoint();
        let mut content = bytes[..bytes.len() - 4].to_vec();
        for (index, value) in edits {
            let i = index.index(content.len());
            content[i] = value;
        }
        let _ = restore_bytes(&rollup, &with_crc(content));
    }
}

#[test]
fn header_errors_say_what_is_wrong() {
    let rollup = small_rollup();
    let bytes = rollup.checkpoint();
    assert!(reason(restore_bytes(&rollup, &[])).contains("truncated"));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(reason(restore_bytes(&rollup, &magic)).contains("bad magic"));
    let mut version = bytes[..bytes.len() - 4].to_vec();
    version[8] = 2;
    assert!(reason(restore_bytes(&rollup, &with_crc(version))).contains("version 2"));
    let mut crc = bytes.clone();
    let last = crc.len() - 1;
    crc[last] ^= 1;
    assert!(reason(restore_bytes(&rollup, &crc)).contains("checksum"));
    let mut body = bytes.clone();
    body[40] ^= 1;
    assert!(reason(restore_bytes(&rollup, &body)).contains("checksum"));
}

/// Replaces the unique occurrence of `find` in a checkpoint's content and fixes the CRC.
fn patch(bytes: &[u8], find: &[u8], replace: &[u8]) -> Vec<u8> {
    let content = &bytes[..bytes.len() - 4];
    let at: Vec<usize> = content
        .windows(find.len())
        .enumerate()
        .filter(|(_, w)| *w == find)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{find:?} occurs {} times", at.len());
    let mut patched = content.to_vec();
    patched.splice(at[0]..at[0] + find.len(), replace.iter().copied());
    with_crc(patched)
}

/// A string as the checkpoint writes it: a u64 length and the bytes.
fn encoded(text: &str) -> Vec<u8> {
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

#[test]
fn malformed_content_errors_say_what_is_wrong() {
    let rollup = small_rollup();
    let bytes = rollup.checkpoint();

    // The state kind stored for `n = count` is not count's.
    let mut count = encoded("count");
    count.push(0);
    let mut sum_kind = encoded("count");
    sum_kind.push(1);
    let kind = patch(&bytes, &count, &sum_kind);
    assert!(reason(restore_bytes(&rollup, &kind)).contains("state kind"));

    // A group value that is not UTF-8, and a repeated group.
    let bad = patch(
        &bytes,
        &encoded("btc"),
        &[3, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0xfd],
    );
    assert!(reason(restore_bytes(&rollup, &bad)).contains("UTF-8"));
    let twice = patch(&bytes, &encoded("eth"), &encoded("btc"));
    assert!(reason(restore_bytes(&rollup, &twice)).contains("repeats"));

    // Group tuples of the wrong arity. An empty rollup's content ends with the groups'
    // arity and count (8 bytes each) and one (seconds, horizon) pair per width.
    let empty = Rollup::new(rollup.spec().clone(), &schema(), *rollup.config()).unwrap();
    let bytes = empty.checkpoint();
    let mut content = bytes[..bytes.len() - 4].to_vec();
    let arity_at = content.len() - 12 * 2 - 16;
    assert_eq!(&content[arity_at..arity_at + 8], &2u64.to_le_bytes());
    content[arity_at] = 1;
    let arity = with_crc(content);
    assert!(reason(restore_bytes(&empty, &arity)).contains("1 values, group_by has 2"));
}

#[test]
fn a_checkpoint_of_another_spec_is_refused_and_config_may_change() {
    let rollup = small_rollup();
    let bytes = rollup.checkpoint();
    let aggregates = ALL_AGGREGATES;
    let refused = |spec: RollupSpec, what: &str| {
        let why = reason(Rollup::restore(spec, &schema(), *rollup.config(), &bytes));
        assert!(why.contains(what), "{why}");
    };
    refused(
        spec(&["symbol"], &["1m", "5m"], aggregates),
        "group_by changed",
    );
    refused(
        spec(&["venue", "symbol"], &["1m", "5m"], aggregates),
        "group_by changed",
    );
    refused(
        spec(&["symbol", "venue"], &["5m", "1m"], aggregates),
        "windows changed",
    );
    refused(
        spec(&["symbol", "venue"], &["1m"], aggregates),
        "windows changed",
    );
    refused(
        spec(&["symbol", "venue"], &["1m", "5m"], &aggregates[1..]),
        "aggregates changed",
    );
    let mut renamed = aggregates.to_vec();
    renamed[0] = ("rows", "count");
    refused(
        spec(&["symbol", "venue"], &["1m", "5m"], &renamed),
        "aggregates changed",
    );
    let mut retargeted = aggregates.to_vec();
    retargeted[2] = ("volume", "sum(price)");
    refused(
        spec(&["symbol", "venue"], &["1m", "5m"], &retargeted),
        "aggregates changed",
    );
    let mut other = rollup.spec().clone();
    other.name = "candles".into();
    refused(other, "taken for rollup");

    // Validation comes first, like Rollup::new.
    assert!(matches!(
        Rollup::restore(
            spec(&["nope"], &["1m"], &[("n", "count")]),
            &schema(),
            *rollup.config(),
            &bytes
        ),
        Err(Error::UnknownGroupTag { .. })
    ));

    // Another config is accepted: the state is the same, the watermark follows the lateness.
    let longer = RollupConfig {
        allowed_lateness_ms: 2 * MIN,
        retained_windows: 100,
    };
    let relaxed = restored(&rollup, longer);
    assert_eq!(relaxed.cell_count(), rollup.cell_count());
    assert_eq!(relaxed.late_dropped(), rollup.late_dropped());
    assert_eq!(relaxed.watermark(), Some(T + 4 * MIN - 2 * MIN));
}

/// One group whose hour window holds more distinct sizes than the exact phase keeps.
fn dense_rollup() -> Rollup {
    let mut rollup = Rollup::new(
        spec(&["symbol"], &["1h"], &[("sizes", "distinct(size)")]),
        &schema(),
        RollupConfig::default(),
    )
    .unwrap();
    let ticks: Vec<Tick> = (0..400)
        .map(|i| tick(T + i * SEC, i as u128, "btc", 1.0, i * 7))
        .collect();
    apply(&mut rollup, &ticks);
    rollup
}

#[test]
fn distinct_round_trips_in_exact_and_register_mode() {
    let dense = dense_rollup();
    let rows = dense.query(width("1h"), None, None, &[]).unwrap();
    let estimate = value(&rows[0], "sizes").unwrap();
    assert!(
        estimate != 400.0 && (estimate - 400.0).abs() < 20.0,
        "{estimate}"
    );
    let mut back = restored(&dense, *dense.config());
    assert_eq!(observe(&back), observe(&dense));

    // Both keep merging alike: new values after the restore move both estimates equally.
    let mut original = dense;
    let more: Vec<Tick> = (400..450)
        .map(|i| tick(T + i * SEC, i as u128, "btc", 1.0, i * 7))
        .collect();
    assert_eq!(apply(&mut back, &more), apply(&mut original, &more));
    assert_eq!(observe(&back), observe(&original));

    let exact = small_rollup();
    assert_eq!(observe(&restored(&exact, *exact.config())), observe(&exact));
}

#[test]
fn an_empty_rollup_round_trips() {
    for group_by in [&[][..], &["symbol"][..]] {
        let empty = Rollup::new(
            spec(group_by, &["1m"], ALL_AGGREGATES),
            &schema(),
            RollupConfig::default(),
        )
        .unwrap();
        let mut back = restored(&empty, *empty.config());
        assert_eq!(back.watermark(), None);
        assert_eq!(observe(&back), observe(&empty));
        let changes = apply(&mut back, &[tick(T, 1, "btc", 1.0, 1)]);
        assert_eq!(changes.len(), 1);
    }
}
