use std::sync::Arc;

use tidewatch_types::batch::NULL_TAG;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn};

use super::*;

const HOUR: i64 = 3_600_000;

fn schema() -> Arc<StreamSchema> {
    Arc::new(
        StreamSchema::new(
            "ticks",
            vec!["symbol".into()],
            vec![
                FieldDef {
                    name: "price".into(),
                    field_type: FieldType::F64,
                },
                FieldDef {
                    name: "note".into(),
                    field_type: FieldType::Str,
                },
            ],
        )
        .unwrap(),
    )
}

/// Rows `(id, ts, symbol, price)`.
fn batch(rows: &[(u128, i64, Option<&str>, Option<f64>)]) -> EventBatch {
    let mut dict: Vec<Arc<str>> = Vec::new();
    let keys = rows
        .iter()
        .map(|r| match r.2 {
            None => NULL_TAG,
            Some(s) => match dict.iter().position(|d| &**d == s) {
                Some(i) => i as u32,
                None => {
                    dict.push(Arc::from(s));
                    dict.len() as u32 - 1
                }
            },
        })
        .collect();
    EventBatch {
        ids: rows.iter().map(|r| r.0).collect(),
        ts: rows.iter().map(|r| r.1).collect(),
        tags: vec![TagColumn { keys, dict }],
        fields: vec![
            FieldColumn::F64(rows.iter().map(|r| r.3).collect()),
            FieldColumn::Str(rows.iter().map(|r| r.3.map(|p| format!("p{p}"))).collect()),
        ],
    }
}

fn ids(b: &EventBatch) -> Vec<u128> {
    b.ids.clone()
}

#[test]
fn rows_land_in_hour_partitions_and_seal_at_the_threshold() {
    let mut store = StreamStore::new(schema(), StoreConfig { seal_rows: 2 });
    store.append(
        &batch(&[
            (1, 10, Some("A"), Some(1.0)),
            (2, 20, Some("B"), None),
            (3, 30, None, Some(3.0)),
        ]),
        1,
    );
    store.append(&batch(&[(4, HOUR + 5, Some("A"), Some(4.0))]), 1);
    assert_eq!(store.shape(), (2, 1));
    assert_eq!(
        store.stats(),
        StreamStats {
            rows: 4,
            first_ts: Some(10),
            last_ts: Some(HOUR + 5)
        }
    );
    let all = store.all_events().unwrap();
    let rows: usize = all.iter().map(EventBatch::len).sum();
    assert_eq!(rows, 4, "sealed batches and open rows are both visible");
}

#[test]
fn query_is_newest_first_with_filters_and_cursor() {
    let mut store = StreamStore::new(schema(), StoreConfig { seal_rows: 3 });
    let mut rows = Vec::new();
    for i in 0..20u128 {
        let ts = (i as i64 % 7) * HOUR / 2 + i as i64; // spread over 4 hours, out of order
        rows.push((
            i + 1,
            ts,
            Some(if i % 2 == 0 { "A" } else { "B" }),
            Some(i as f64),
        ));
    }
    store.append(&batch(&rows), 1);

    let mut expected: Vec<(i64, u128)> = rows
        .iter()
        .filter(|r| r.2 == Some("A"))
        .map(|r| (r.1, r.0))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .query(&EventQuery {
                tags: vec![(0, "A".into())],
                before,
                limit: 3,
                ..Default::default()
            })
            .unwrap();
        if page.is_empty() {
            break;
        }
        for r in 0..page.len() {
            seen.push((page.ts[r], page.ids[r]));
            assert_eq!(page.tags[0].value(r).map(|s| &**s), Some("A"));
        }
        before = seen.last().copied();
    }
    assert_eq!(seen, expected);
}

#[test]
fn query_respects_the_time_range() {
    let mut store = StreamStore::new(schema(), StoreConfig::default());
    store.append(
        &batch(&[
            (1, 100, None, None),
            (2, HOUR, None, None),
            (3, 2 * HOUR, None, None),
        ]),
        1,
    );
    let page = store
        .query(&EventQuery {
            from: Some(100),
            to: Some(2 * HOUR),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&page), vec![2, 1]);
    let page = store
        .query(&EventQuery {
            from: Some(101),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&page), vec![3, 2]);
}

#[test]
fn stored_rows_read_back_exactly() {
    let mut store = StreamStore::new(schema(), StoreConfig { seal_rows: 2 });
    let input = batch(&[
        (7, 10, Some("A"), Some(1.5)),
        (8, 11, None, None),
        (9, 12, Some("B"), Some(-2.0)),
    ]);
    store.append(&input, 1);
    let page = store
        .query(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&page), vec![9, 8, 7]);
    assert_eq!(
        page.fields[0],
        FieldColumn::F64(vec![Some(-2.0), None, Some(1.5)])
    );
    assert_eq!(
        page.fields[1],
        FieldColumn::Str(vec![Some("p-2".into()), None, Some("p1.5".into())])
    );
    assert_eq!(page.tags[0].value(1), None);
    assert!(page.is_consistent_with(&schema()));
}

#[test]
fn tag_values_survive_dictionary_remapping_across_batches_and_seals() {
    let mut store = StreamStore::new(schema(), StoreConfig { seal_rows: 3 });
    // Two batches whose dictionaries list the same values in different orders.
    store.append(
        &batch(&[
            (1, 1, Some("A"), None),
            (2, 2, Some("B"), None),
            (3, 3, None, None),
            (4, 4, Some("A"), None),
        ]),
        1,
    );
    store.append(
        &batch(&[
            (5, 5, Some("B"), None),
            (6, 6, Some("C"), None),
            (7, 7, Some("A"), None),
        ]),
        1,
    );
    let page = store
        .query(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let tags: Vec<Option<String>> = (0..page.len())
        .map(|r| page.tags[0].value(r).map(|s| s.to_string()))
        .collect();
    let expected =
        ["A", "C", "B", "A", "", "B", "A"].map(|s| (!s.is_empty()).then(|| s.to_owned()));
    assert_eq!(tags, expected);
    assert_eq!(
        store.shape(),
        (1, 2),
        "two sealed batches of three, one open row"
    );
}

/// Persists the partitions `choose` picks into segment files under `dir`.
fn persist(store: &mut StreamStore, dir: &std::path::Path, choose: impl FnMut(i64, i64) -> bool) {
    for job in store.begin_persist(choose) {
        let file = format!("seg-{}-{}.parquet", job.partition, store.segments().count());
        let written = crate::segment::write_segment(
            dir,
            file,
            job.partition,
            1,
            store.arrow_schema(),
            &job.batches,
        )
        .unwrap();
        let segment = written.map(|meta| Segment::new(meta, dir));
        store.finish_persist(job.partition, segment);
    }
}

fn page(store: &StreamStore, query: &EventQuery) -> Vec<(u128, i64, Option<String>, Option<f64>)> {
    let b = store.query(query).unwrap();
    let FieldColumn::F64(prices) = &b.fields[0] else {
        panic!("price is f64")
    };
    (0..b.len())
        .map(|i| {
            (
                b.ids[i],
                b.ts[i],
                b.tags[0].value(i).map(|v| v.to_string()),
                prices[i],
            )
        })
        .collect()
}

#[test]
fn persisted_rows_read_back_the_same_from_segments_and_late_rows_join_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = StreamStore::new(schema(), StoreConfig { seal_rows: 3 });
    let rows: Vec<(u128, i64, Option<&str>, Option<f64>)> = (0..40u128)
        .map(|i| {
            let symbol = [Some("B"), Some("A"), None][i as usize % 3];
            (
                i + 1,
                (i as i64 * (HOUR / 13) + 17) % (3 * HOUR),
                symbol,
                Some(i as f64 / 4.0),
            )
        })
        .collect();
    store.append(&batch(&rows), 1);
    let queries = [
        EventQuery {
            limit: 100,
            ..EventQuery::default()
        },
        EventQuery {
            limit: 5,
            ..EventQuery::default()
        },
        EventQuery {
            from: Some(HOUR / 2),
            to: Some(2 * HOUR + 10),
            limit: 100,
            ..EventQuery::default()
        },
        EventQuery {
            tags: vec![(0, "A".into())],
            limit: 7,
            ..EventQuery::default()
        },
        EventQuery {
            before: Some((HOUR + 1, 0)),
            limit: 9,
            ..EventQuery::default()
        },
    ];
    let before: Vec<_> = queries.iter().map(|q| page(&store, q)).collect();
    let stats = store.stats();

    // The first two hours go cold; the third stays hot.
    persist(&mut store, dir.path(), |start, _| start < 2 * HOUR);
    assert_eq!(store.segments().count(), 2);
    assert_eq!(store.shape().0, 1, "only the newest hour stays in memory");
    assert!(store.min_unpersisted_seq().is_some());
    let after: Vec<_> = queries.iter().map(|q| page(&store, q)).collect();
    assert_eq!(after, before);
    assert_eq!(store.stats(), stats);

    // A late row for a persisted hour lands in memory beside its segment.
    store.append(&batch(&[(1000, 10, Some("A"), Some(99.0))]), 2);
    let all = page(&store, &queries[0]);
    assert_eq!(all.len(), 41);
    assert_eq!(all.last().unwrap().0, 1000, "ts 10 is the oldest row");
    assert_eq!(store.min_unpersisted_seq(), Some(1));
    persist(&mut store, dir.path(), |_, _| true);
    assert_eq!(store.min_unpersisted_seq(), None);
    assert_eq!(page(&store, &queries[0]), all);
    assert_eq!(
        store
            .all_events()
            .unwrap()
            .iter()
            .map(|b| b.len())
            .sum::<usize>(),
        41
    );

    // Retention drops whole hours, hot and cold, and nothing else.
    let files: Vec<_> = store.segments().map(|s| s.path.clone()).collect();
    let (dropped, rows) = store.expire_before(HOUR);
    assert_eq!(rows as usize, all.iter().filter(|r| r.1 < HOUR).count());
    assert!(files[0].exists(), "kept until marked removed");
    dropped.iter().for_each(|s| s.mark_removed());
    drop(dropped);
    assert!(!files[0].exists(), "the expired segment file is deleted");
    let kept = page(&store, &queries[0]);
    assert_eq!(
        kept,
        all.iter()
            .filter(|r| r.1 >= HOUR)
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(store.stats().rows as usize, kept.len());
}
