//! Append throughput of the write-ahead log: 64 KiB payloads under `FsyncPolicy::Never`
//! (write path and framing only) and `FsyncPolicy::Always` (group commit over fdatasync).
//!
//! Appends are issued with `append_detached` and kept `PIPELINE_DEPTH` deep, like concurrent
//! ingest requests, so group commit has something to group. Segments are removed as the run
//! goes so the benchmark does not fill the disk.

use std::collections::VecDeque;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidewatch_wal::{FsyncPolicy, Wal, WalConfig};

/// Size of one appended payload.
const PAYLOAD_BYTES: usize = 64 * 1024;
/// Appends in flight at once.
const PIPELINE_DEPTH: usize = 8;
/// Appends per measured iteration.
const APPENDS_PER_ITER: usize = 64;
/// Segment size; small enough that old segments can be dropped often.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const SAMPLE_SIZE: usize = 10;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASUREMENT: Duration = Duration::from_secs(3);

/// Appends `APPENDS_PER_ITER` payloads, never more than `PIPELINE_DEPTH` unacknowledged.
fn append_pipelined(wal: &Wal, payload: &[u8]) {
    let mut in_flight = VecDeque::with_capacity(PIPELINE_DEPTH);
    for _ in 0..APPENDS_PER_ITER {
        if in_flight.len() == PIPELINE_DEPTH
            && let Some(rx) = in_flight.pop_front()
        {
            wait(rx);
        }
        let rx = wal
            .append_detached(payload.to_vec())
            .expect("append accepted");
        in_flight.push_back(rx);
    }
    in_flight.into_iter().for_each(wait);
}

fn wait(rx: tokio::sync::oneshot::Receiver<tidewatch_wal::Result<u64>>) {
    rx.blocking_recv()
        .expect("writer alive")
        .expect("append succeeded");
}

fn wal_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append_64k");
    group
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .throughput(Throughput::Bytes((PAYLOAD_BYTES * APPENDS_PER_ITER) as u64));
    let payload = vec![0xa5u8; PAYLOAD_BYTES];

    for (name, fsync) in [
        ("never", FsyncPolicy::Never),
        ("always", FsyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = WalConfig {
            dir: dir.path().to_path_buf(),
            fsync,
            segment_bytes: SEGMENT_BYTES,
            ..WalConfig::default()
        };
        let (wal, _) = Wal::open(config, |_, _| Ok(())).expect("open wal");
        group.bench_function(name, |b| {
            b.iter(|| {
                append_pipelined(&wal, &payload);
                // Keep only the active segment on disk.
                wal.remove_segments_before(wal.next_sequence())
                    .expect("remove segments");
            });
        });
        wal.close().expect("close wal");
    }
    group.finish();
}

criterion_group!(benches, wal_append);
criterion_main!(benches);
