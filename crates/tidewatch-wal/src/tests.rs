//! Behavioural tests: durability across reopen, group commit, tail repair, refusal of
//! non-tail corruption, segment rolling and removal.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::format::HEADER_LEN;

type Replayed = Vec<(u64, Vec<u8>)>;

fn config(dir: &Path, fsync: FsyncPolicy) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        fsync,
        ..WalConfig::default()
    }
}

/// Opens the log and collects everything replayed.
fn open(config: WalConfig) -> Result<(Wal, RecoveryReport, Replayed)> {
    let mut replayed = Vec::new();
    let (wal, report) = Wal::open(config, |sequence, payload| {
        replayed.push((sequence, payload.to_vec()));
        Ok(())
    })?;
    Ok((wal, report, replayed))
}

/// Reopens, collects the replay and closes again.
fn replay(config: WalConfig) -> (RecoveryReport, Replayed) {
    let (wal, report, replayed) = open(config).unwrap();
    wal.close().unwrap();
    (report, replayed)
}

/// Appends all payloads pipelined (FIFO order is preserved) and returns their sequences.
fn append_all(wal: &Wal, payloads: &[Vec<u8>]) -> Vec<u64> {
    let receivers: Vec<_> = payloads
        .iter()
        .map(|payload| wal.append_detached(payload.clone()).unwrap())
        .collect();
    receivers
        .into_iter()
        .map(|rx| rx.blocking_recv().unwrap().unwrap())
        .collect()
}

fn payloads(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| (0..size).map(|j| (i * 31 + j) as u8).collect())
        .collect()
}

fn numbered(payloads: &[Vec<u8>], first: u64) -> Replayed {
    (first..).zip(payloads.iter().cloned()).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    recovery::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|segment| segment.path)
        .collect()
}

/// Offset at which record `index` (0-based) of a segment holding `payloads` starts.
fn record_offset(payloads: &[Vec<u8>], index: usize) -> u64 {
    payloads[..index]
        .iter()
        .map(|p| (HEADER_LEN + p.len()) as u64)
        .sum()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn truncate_file(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Writes `payloads` into a fresh log with a single segment and returns that segment's path.
fn single_segment_log(dir: &Path, payloads: &[Vec<u8>]) -> PathBuf {
    let (wal, _, _) = open(config(dir, FsyncPolicy::Always)).unwrap();
    append_all(&wal, payloads);
    wal.close().unwrap();
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    files[0].clone()
}

#[test]
fn records_round_trip_and_sequences_continue() {
    let dir = tempfile::tempdir().unwrap();
    let sent = payloads(&[0, 1, 7, 100, 0, 4096, 65_536, 3]);
    let (wal, report, replayed) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
    assert_eq!(report, RecoveryReport::default());
    assert!(replayed.is_empty());
    assert_eq!(wal.next_sequence(), 1);
    let sequences = append_all(&wal, &sent);
    assert_eq!(sequences, (1..=sent.len() as u64).collect::<Vec<_>>());
    wal.close().unwrap();
    assert!(matches!(wal.append_detached(vec![1]), Err(Error::Closed)));

    let (wal, report, replayed) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
    assert_eq!(replayed, numbered(&sent, 1));
    let n = sent.len() as u64;
    assert_eq!(report.records, n);
    assert_eq!(report.segments, 1);
    assert_eq!(report.last_sequence, Some(n));
    assert_eq!(report.truncated, None);
    assert_eq!(report.bytes, file_len(&segment_files(dir.path())[0]));
    assert_eq!(wal.next_sequence(), n + 1);
    assert_eq!(append_all(&wal, &[b"next".to_vec()]), vec![n + 1]);
    drop(wal); // closes too

    let (_, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert_eq!(replayed.len() as u64, n + 1);
    assert_eq!(replayed.last(), Some(&(n + 1, b"next".to_vec())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_fdatasyncs() {
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
    let wal = Arc::new(wal);

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let wal = Arc::clone(&wal);
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_TASK {
                let payload = format!("task {task} append {i}").into_bytes();
                let sequence = wal.append(payload.clone()).await.unwrap();
                acked.push((sequence, payload));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for handle in handles {
        acked.extend(handle.await.unwrap());
    }
    acked.sort();
    let total = TASKS * PER_TASK;
    let sequences: Vec<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (1..=total).collect::<Vec<_>>());

    let syncs = wal.sync_count();
    assert!(syncs > 0);
    assert!(
        syncs < total / 2,
        "group commit should share fdatasyncs: {syncs} syncs for {total} appends"
    );
    wal.close().unwrap();

    let (_, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert_eq!(replayed, acked);
}

#[test]
fn torn_tail_is_truncated_at_every_cut_point() {
    let sent = payloads(&[10, 0, 300, 50, 200]);
    let last = sent.len() - 1;
    let start = record_offset(&sent, last);
    let end = start + (HEADER_LEN + sent[last].len()) as u64;
    for cut in [
        start + 1,
        start + 8,
        start + 15,
        start + 16,
        start + 17,
        start + 100,
        end - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let segment = single_segment_log(dir.path(), &sent);
        assert_eq!(file_len(&segment), end);
        truncate_file(&segment, cut);

        let (wal, report, replayed) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
        assert_eq!(replayed, numbered(&sent[..last], 1), "cut at {cut}");
        let truncation = report.truncated.expect("torn tail reported");
        assert_eq!(truncation.segment, segment);
        assert_eq!(truncation.offset, start, "cut at {cut}");
        assert_eq!(truncation.dropped_bytes, cut - start);
        assert_eq!(report.last_sequence, Some(last as u64));
        assert_eq!(file_len(&segment), start);

        // The log continues right after the last intact record.
        assert_eq!(
            append_all(&wal, &[b"after".to_vec()]),
            vec![last as u64 + 1]
        );
        wal.close().unwrap();
        let (report, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
        assert_eq!(report.truncated, None);
        let mut expected = numbered(&sent[..last], 1);
        expected.push((last as u64 + 1, b"after".to_vec()));
        assert_eq!(replayed, expected);
    }
}

#[test]
fn cut_at_a_record_boundary_is_a_clean_end() {
    let sent = payloads(&[10, 20, 30]);
    let dir = tempfile::tempdir().unwrap();
    let segment = single_segment_log(dir.path(), &sent);
    truncate_file(&segment, record_offset(&sent, 2));
    let (report, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert_eq!(report.truncated, None);
    assert_eq!(replayed, numbered(&sent[..2], 1));
}

#[test]
fn flipped_payload_byte_in_last_record_drops_only_it() {
    let sent = payloads(&[40, 40, 40, 40]);
    let dir = tempfile::tempdir().unwrap();
    let segment = single_segment_log(dir.path(), &sent);
    let start = record_offset(&sent, 3);
    let len = file_len(&segment);
    flip_byte(&segment, start + HEADER_LEN as u64 + 20);

    let (report, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert_eq!(replayed, numbered(&sent[..3], 1));
    let truncation = report.truncated.unwrap();
    assert_eq!(truncation.offset, start);
    assert_eq!(truncation.dropped_bytes, len - start);
    assert!(truncation.reason.contains("crc"), "{}", truncation.reason);
    assert_eq!(file_len(&segment), start);
}

#[test]
fn flipped_header_byte_in_middle_record_drops_the_rest() {
    let sent = payloads(&[40, 0, 40, 40, 40, 40]);
    let broken = 2;
    let start = record_offset(&sent, broken);
    // Every header byte: length (low and high bytes), crc and sequence.
    for byte in 0..HEADER_LEN as u64 {
        let dir = tempfile::tempdir().unwrap();
        let segment = single_segment_log(dir.path(), &sent);
        let len = file_len(&segment);
        flip_byte(&segment, start + byte);

        let (wal, report, replayed) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
        assert_eq!(replayed, numbered(&sent[..broken], 1), "header byte {byte}");
        let truncation = report.truncated.unwrap();
        assert_eq!(truncation.offset, start, "header byte {byte}");
        assert_eq!(truncation.dropped_bytes, len - start);
        assert_eq!(wal.next_sequence(), broken as u64 + 1);
        assert_eq!(append_all(&wal, &[vec![9]]), vec![broken as u64 + 1]);
    }
}

#[test]
fn record_with_wrong_sequence_starts_the_bad_tail() {
    let dir = tempfile::tempdir().unwrap();
    let sent = payloads(&[5, 5]);
    let segment = single_segment_log(dir.path(), &sent);
    // A well-formed record (valid CRC) that skips sequence 3.
    let mut bytes = fs::read(&segment).unwrap();
    let good_len = bytes.len() as u64;
    format::encode_record(4, b"skip", &mut bytes);
    fs::write(&segment, bytes).unwrap();

    let (report, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert_eq!(replayed, numbered(&sent, 1));
    let truncation = report.truncated.unwrap();
    assert_eq!(truncation.offset, good_len);
    assert!(
        truncation.reason.contains("sequence 4"),
        "{}",
        truncation.reason
    );
}

/// Builds a log of 100-byte payloads with `segment_bytes = 256`: three records per segment.
fn rolled_log(dir: &Path, records: usize) -> (WalConfig, Vec<Vec<u8>>) {
    let config = WalConfig {
        segment_bytes: 256,
        ..config(dir, FsyncPolicy::Always)
    };
    let sent = payloads(&vec![100; records]);
    let (wal, _, _) = open(config.clone()).unwrap();
    for payload in &sent {
        // One at a time, so every group is a single record and boundaries are deterministic.
        append_all(&wal, std::slice::from_ref(payload));
    }
    wal.close().unwrap();
    (config, sent)
}

#[test]
fn corruption_outside_the_last_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = rolled_log(dir.path(), 9);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3);

    // A flipped payload byte in the first segment.
    let original = fs::read(&files[0]).unwrap();
    flip_byte(&files[0], 116 + 16 + 5);
    let err = open(config.clone()).unwrap_err();
    match err {
        Error::Corrupt {
            segment, offset, ..
        } => {
            assert_eq!(segment, files[0]);
            assert_eq!(offset, 116);
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    // Nothing was repaired behind the caller's back.
    assert_eq!(file_len(&files[0]), original.len() as u64);

    // A truncated middle segment is not a tail either.
    fs::write(&files[0], &original).unwrap();
    truncate_file(&files[1], 200);
    assert!(matches!(
        open(config.clone()),
        Err(Error::Corrupt { segment, offset: 116, .. }) if segment == files[1]
    ));

    // Nor is a missing middle segment (a gap in the sequence).
    fs::remove_file(&files[1]).unwrap();
    assert!(matches!(
        open(config),
        Err(Error::Corrupt { segment, offset: 0, .. }) if segment == files[2]
    ));
}

#[test]
fn segments_roll_replay_in_order_and_are_removed_when_covered() {
    let dir = tempfile::tempdir().unwrap();
    let (config, sent) = rolled_log(dir.path(), 10);
    let names: Vec<String> = segment_files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "00000000000000000001.wal",
            "00000000000000000004.wal",
            "00000000000000000007.wal",
            "00000000000000000010.wal"
        ]
    );

    let (wal, report, replayed) = open(config.clone()).unwrap();
    assert_eq!(report.segments, 4);
    assert_eq!(replayed, numbered(&sent, 1));

    // Segment 1..=3 still holds sequence 3.
    assert_eq!(wal.remove_segments_before(3).unwrap(), 0);
    assert_eq!(wal.remove_segments_before(4).unwrap(), 1);
    assert_eq!(wal.remove_segments_before(4).unwrap(), 0);
    // Everything is covered, but the active segment (10..) stays.
    assert_eq!(wal.remove_segments_before(u64::MAX).unwrap(), 2);
    assert_eq!(segment_files(dir.path()).len(), 1);
    wal.close().unwrap();

    let (report, replayed) = replay(config.clone());
    assert_eq!(report.segments, 1);
    assert_eq!(replayed, numbered(&sent[9..], 10));

    // Partial removal: the replay starts at the first kept record.
    let dir = tempfile::tempdir().unwrap();
    let (config, sent) = rolled_log(dir.path(), 10);
    let (wal, _, _) = open(config.clone()).unwrap();
    assert_eq!(wal.remove_segments_before(8).unwrap(), 2);
    assert_eq!(append_all(&wal, &[b"x".to_vec()]), vec![11]);
    wal.close().unwrap();
    let (_, replayed) = replay(config);
    let mut expected = numbered(&sent[6..], 7);
    expected.push((11, b"x".to_vec()));
    assert_eq!(replayed, expected);
}

#[test]
fn empty_last_segment_from_a_crash_after_roll_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (config, sent) = rolled_log(dir.path(), 6);
    // The writer crashed right after creating the segment for sequence 7.
    fs::write(format::segment_path(dir.path(), 7), b"").unwrap();

    let (wal, report, replayed) = open(config.clone()).unwrap();
    assert_eq!(replayed, numbered(&sent, 1));
    assert_eq!(report.segments, 3);
    assert_eq!(wal.next_sequence(), 7);
    assert_eq!(append_all(&wal, &[b"seven".to_vec()]), vec![7]);
    wal.close().unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3);
    let (_, replayed) = replay(config);
    assert_eq!(replayed.last(), Some(&(7, b"seven".to_vec())));
}

#[test]
fn interval_and_never_policies_replay_after_reopen() {
    for policy in [FsyncPolicy::Interval, FsyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            fsync_interval: Duration::from_millis(20),
            ..config(dir.path(), policy)
        };
        let sent = payloads(&[1, 0, 500, 64, 9]);
        let (wal, _, _) = open(config.clone()).unwrap();
        assert_eq!(append_all(&wal, &sent), (1..=5).collect::<Vec<_>>());
        wal.close().unwrap();
        let (report, replayed) = replay(config);
        assert_eq!(replayed, numbered(&sent, 1), "{policy:?}");
        assert_eq!(report.truncated, None);
    }
}

#[test]
fn interval_policy_syncs_when_idle_and_never_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let interval = WalConfig {
        fsync_interval: Duration::from_millis(20),
        ..config(dir.path(), FsyncPolicy::Interval)
    };
    let (wal, _, _) = open(interval).unwrap();
    append_all(&wal, &[b"a".to_vec()]);
    // Acknowledged before the sync; the idle writer syncs on its own within the interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while wal.sync_count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(wal.sync_count(), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(wal.sync_count(), 1, "nothing unsynced, nothing to do");
    wal.close().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(config(dir.path(), FsyncPolicy::Never)).unwrap();
    append_all(&wal, &payloads(&[10, 10, 10]));
    assert_eq!(wal.sync_count(), 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(wal.sync()).unwrap();
    assert_eq!(wal.sync_count(), 1);
    runtime.block_on(wal.sync()).unwrap();
    assert_eq!(wal.sync_count(), 1);
    append_all(&wal, &payloads(&[10]));
    wal.close().unwrap();
    assert_eq!(wal.sync_count(), 2, "close syncs what is outstanding");
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
    assert!(matches!(
        open(config(dir.path(), FsyncPolicy::Always)),
        Err(Error::Locked { .. })
    ));
    wal.close().unwrap();
    // Another test of this binary may be spawning a child process right now: between its
    // fork and exec the child shares our descriptors, the lock's included, for a moment.
    let mut attempts = 0;
    let wal = loop {
        match open(config(dir.path(), FsyncPolicy::Always)) {
            Err(Error::Locked { .. }) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.unwrap().0,
        }
    };
    wal.close().unwrap();
}

#[test]
fn replay_error_aborts_open() {
    let dir = tempfile::tempdir().unwrap();
    single_segment_log(dir.path(), &payloads(&[1, 2, 3]));
    let mut seen = Vec::new();
    let err = Wal::open(config(dir.path(), FsyncPolicy::Always), |sequence, _| {
        seen.push(sequence);
        if sequence == 2 {
            Err("bad batch".to_owned())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::Replay(reason) if reason == "bad batch"),
        "{err}"
    );
    assert_eq!(seen, [1, 2]);
    // The directory lock was released with the failed open.
    replay(config(dir.path(), FsyncPolicy::Always));
}

#[test]
fn oversized_payload_is_rejected_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(config(dir.path(), FsyncPolicy::Always)).unwrap();
    let err = wal
        .append_detached(vec![0; MAX_PAYLOAD_BYTES + 1])
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }));
    assert_eq!(append_all(&wal, &[vec![1]]), vec![1]);
}

#[test]
fn directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/wal");
    let (wal, _, _) = open(config(&nested, FsyncPolicy::Always)).unwrap();
    append_all(&wal, &[b"x".to_vec()]);
    wal.close().unwrap();
    assert_eq!(segment_files(&nested).len(), 1);
}

/// Environment variable that turns [`crash_child`] into the process that gets killed.
const CRASH_DIR_ENV: &str = "TIDEWATCH_WAL_CRASH_DIR";
const CRASH_RECORDS: u64 = 200;

/// Child half of [`acknowledged_appends_survive_an_abort`]: appends under `Never`, reports the
/// acknowledged count on stdout, then dies without closing the log. A no-op in a normal run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let (wal, _, _) = open(config(Path::new(&dir), FsyncPolicy::Never)).unwrap();
    for i in 0..CRASH_RECORDS {
        wal.append_detached(i.to_le_bytes().to_vec())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
    }
    // Queued but never acknowledged: may or may not survive.
    let _pending = wal.append_detached(vec![0xff; 1024]).unwrap();
    println!("acked {CRASH_RECORDS}");
    std::process::abort();
}

#[test]
fn acknowledged_appends_survive_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child must die by abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("acked {CRASH_RECORDS}")),
        "{stdout}"
    );

    let (report, replayed) = replay(config(dir.path(), FsyncPolicy::Always));
    assert!(replayed.len() as u64 >= CRASH_RECORDS, "{report:?}");
    for (i, (sequence, payload)) in replayed.iter().take(CRASH_RECORDS as usize).enumerate() {
        assert_eq!(*sequence, i as u64 + 1);
        assert_eq!(payload, &(i as u64).to_le_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_payloads_round_trip(
        sent in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..40),
        segment_bytes in prop_oneof![Just(64 * 1024 * 1024u64), 1u64..2048],
        policy in prop_oneof![Just(FsyncPolicy::Always), Just(FsyncPolicy::Interval), Just(FsyncPolicy::Never)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes, ..config(dir.path(), policy) };
        let (wal, _, _) = open(config.clone()).unwrap();
        let sequences = append_all(&wal, &sent);
        prop_assert_eq!(sequences, (1..=sent.len() as u64).collect::<Vec<_>>());
        wal.close().unwrap();

        let (report, replayed) = replay(config);
        prop_assert_eq!(report.truncated, None);
        prop_assert_eq!(report.records, sent.len() as u64);
        let unique: HashSet<u64> = replayed.iter().map(|(s, _)| *s).collect();
        prop_assert_eq!(unique.len(), sent.len());
        prop_assert_eq!(replayed, numbered(&sent, 1));
    }
}
