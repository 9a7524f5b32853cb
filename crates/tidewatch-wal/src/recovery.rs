//! Startup scan: lists the segments, replays every intact record in sequence order and decides
//! where the valid log ends.
//!
//! Invariant relied upon (kept by the writer): a segment is fdatasynced before the next one is
//! created, so after any crash only the *last* segment can have a torn tail. Damage anywhere
//! else means lost acknowledged data and is reported as [`Error::Corrupt`] instead of repaired.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::format::{HEADER_LEN, Header, MAX_PAYLOAD_LEN, parse_segment_name, record_crc};
use crate::{Error, RecoveryReport, Result, Truncation, io_error};

/// Read buffer for the scan; records are read header first, then payload.
const READ_BUFFER_BYTES: usize = 1024 * 1024;

/// One segment file: its records start at `first_sequence` and run densely up to the record
/// before the next segment's `first_sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) first_sequence: u64,
    pub(crate) path: PathBuf,
}

/// Outcome of recovery, handed to the writer.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Segments in sequence order; the last one (if any) is where appending continues.
    pub(crate) segments: Vec<Segment>,
    /// Length of the last segment after any truncation.
    pub(crate) last_len: u64,
    /// Sequence the next appended record gets.
    pub(crate) next_sequence: u64,
    pub(crate) report: RecoveryReport,
}

/// Segment files of `dir`, sorted by first sequence. Files that do not carry a segment name
/// (the lock file, editor droppings) are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list directory", dir))? {
        let entry = entry.map_err(io_error("list directory", dir))?;
        let name = entry.file_name();
        let Some(first_sequence) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        segments.push(Segment {
            first_sequence,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|segment| segment.first_sequence);
    Ok(segments)
}

/// Replays all segments of `dir` through `replay` and truncates a torn tail of the last one.
pub(crate) fn recover<F>(dir: &Path, replay: &mut F) -> Result<Recovered>
where
    F: FnMut(u64, &[u8]) -> std::result::Result<(), String>,
{
    let segments = list_segments(dir)?;
    let mut report = RecoveryReport {
        segments: segments.len(),
        ..RecoveryReport::default()
    };
    let mut next_sequence = 1;
    let mut last_len = 0;

    for (index, segment) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        // Segments chain densely: each starts right after the previous one's last record.
        if index > 0 && segment.first_sequence != next_sequence {
            return Err(Error::Corrupt {
                segment: segment.path.clone(),
                offset: 0,
                reason: format!(
                    "segment starts at sequence {} but the previous segment ends before {next_sequence}",
                    segment.first_sequence
                ),
            });
        }
        let scan = scan_segment(segment, replay)?;
        report.records += scan.records;
        report.bytes += scan.valid_len;
        if scan.records > 0 {
            report.last_sequence = Some(scan.next_sequence - 1);
        }
        next_sequence = scan.next_sequence;
        last_len = scan.valid_len;

        let Some(reason) = scan.bad_reason else {
            continue;
        };
        if !is_last {
            return Err(Error::Corrupt {
                segment: segment.path.clone(),
                offset: scan.valid_len,
                reason,
            });
        }
        truncate(&segment.path, scan.valid_len)?;
        let truncation = Truncation {
            segment: segment.path.clone(),
            offset: scan.valid_len,
            dropped_bytes: scan.file_len - scan.valid_len,
            reason,
        };
        warn!(
            segment = %truncation.segment.display(),
            offset = truncation.offset,
            dropped_bytes = truncation.dropped_bytes,
            reason = %truncation.reason,
            "truncated torn wal tail"
        );
        report.truncated = Some(truncation);
    }

    Ok(Recovered {
        segments,
        last_len,
        next_sequence,
        report,
    })
}

/// Result of reading one segment up to its first bad record.
#[derive(Debug)]
struct SegmentScan {
    records: u64,
    /// Bytes of intact records from the start of the file (where a bad tail begins).
    valid_len: u64,
    file_len: u64,
    next_sequence: u64,
    /// Why the record at `valid_len` is not intact; `None` if the file ends cleanly there.
    bad_reason: Option<String>,
}

fn scan_segment<F>(segment: &Segment, replay: &mut F) -> Result<SegmentScan>
where
    F: FnMut(u64, &[u8]) -> std::result::Result<(), String>,
{
    let path = &segment.path;
    let file = File::open(path).map_err(io_error("open segment", path))?;
    let file_len = file
        .metadata()
        .map_err(io_error("stat segment", path))?
        .len();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut payload = Vec::new();
    let mut scan = SegmentScan {
        records: 0,
        valid_len: 0,
        file_len,
        next_sequence: segment.first_sequence,
        bad_reason: None,
    };

    loop {
        // `valid_len <= file_len` holds throughout: it only advances past fully checked records.
        let remaining = file_len - scan.valid_len;
        if remaining == 0 {
            return Ok(scan);
        }
        if remaining < HEADER_LEN as u64 {
            return reject(
                format!("incomplete header: {remaining} of {HEADER_LEN} bytes"),
                scan,
            );
        }
        let mut header = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut header)
            .map_err(io_error("read segment", path))?;
        let header = Header::decode(&header);
        let payload_len = header.payload_len as usize;
        if payload_len > MAX_PAYLOAD_LEN {
            return reject(
                format!("payload length {payload_len} exceeds the maximum of {MAX_PAYLOAD_LEN}"),
                scan,
            );
        }
        let available = remaining - HEADER_LEN as u64;
        if u64::from(header.payload_len) > available {
            return reject(
                format!(
                    "payload length {payload_len} exceeds the {available} bytes left in the segment"
                ),
                scan,
            );
        }
        payload.resize(payload_len, 0);
        reader
            .read_exact(&mut payload)
            .map_err(io_error("read segment", path))?;
        let crc = record_crc(header.sequence, &payload);
        if crc != header.crc {
            return reject(
                format!(
                    "crc mismatch: stored {:#010x}, computed {crc:#010x}",
                    header.crc
                ),
                scan,
            );
        }
        if header.sequence != scan.next_sequence {
            return reject(
                format!(
                    "sequence {} where {} was expected",
                    header.sequence, scan.next_sequence
                ),
                scan,
            );
        }
        replay(header.sequence, &payload).map_err(Error::Replay)?;
        scan.records += 1;
        scan.valid_len += (HEADER_LEN + payload_len) as u64;
        scan.next_sequence += 1;
    }
}

/// Ends a scan at the record at `scan.valid_len`, which failed validation for `reason`.
/// (`reason` first: it is formatted from `scan` before `scan` moves in.)
fn reject(reason: String, scan: SegmentScan) -> Result<SegmentScan> {
    Ok(SegmentScan {
        bad_reason: Some(reason),
        ..scan
    })
}

/// Cuts `path` to `len` bytes and makes the new length durable before anything is appended
/// behind it, so the dropped bytes can never resurface between new records.
fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("open segment for truncation", path))?;
    file.set_len(len)
        .map_err(io_error("truncate segment", path))?;
    file.sync_all().map_err(io_error("fsync segment", path))
}
