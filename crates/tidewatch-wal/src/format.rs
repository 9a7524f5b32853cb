//! Record framing and segment file naming; the single source of truth for the on-disk layout
//! described in the crate documentation.

use std::path::{Path, PathBuf};

/// Bytes of the fixed record header: `u32 payload_len | u32 crc32c | u64 sequence`.
pub(crate) const HEADER_LEN: usize = 16;

/// Largest payload a record may carry. Recovery treats a larger length field as corruption, so
/// a flipped bit in a length can never make it allocate gigabytes.
pub(crate) const MAX_PAYLOAD_LEN: usize = 256 * 1024 * 1024;

/// Extension of segment files; anything else in the directory is ignored.
const SEGMENT_EXT: &str = "wal";

/// Digits of the zero-padded first sequence in a segment file name (`u64::MAX` has 20).
const SEGMENT_NAME_DIGITS: usize = 20;

/// CRC32C over the little-endian sequence followed by the payload, so a record moved to another
/// position (or a torn write that leaves an older record's bytes) fails the check.
pub(crate) fn record_crc(sequence: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&sequence.to_le_bytes()), payload)
}

/// Appends the framed record to `out`. The caller guarantees `payload.len() <= MAX_PAYLOAD_LEN`,
/// which also makes the `u32` length lossless.
pub(crate) fn encode_record(sequence: u64, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(sequence, payload).to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Decoded fixed header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) payload_len: u32,
    pub(crate) crc: u32,
    pub(crate) sequence: u64,
}

impl Header {
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let [l0, l1, l2, l3, c0, c1, c2, c3, s @ ..] = *bytes;
        Header {
            payload_len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            sequence: u64::from_le_bytes(s),
        }
    }
}

/// Path of the segment whose first record has sequence `first_sequence`.
pub(crate) fn segment_path(dir: &Path, first_sequence: u64) -> PathBuf {
    dir.join(format!(
        "{first_sequence:0width$}.{SEGMENT_EXT}",
        width = SEGMENT_NAME_DIGITS
    ))
}

/// First sequence encoded in a segment file name, or `None` if the name is not one of ours.
/// Only the exact shape written by [`segment_path`] is accepted.
pub(crate) fn parse_segment_name(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut out = Vec::new();
        encode_record(42, b"hello", &mut out);
        assert_eq!(out.len(), HEADER_LEN + 5);
        let header = Header::decode(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!(
            header,
            Header {
                payload_len: 5,
                crc: record_crc(42, b"hello"),
                sequence: 42
            }
        );
        assert_ne!(record_crc(42, b"hello"), record_crc(43, b"hello"));
    }

    #[test]
    fn segment_names_round_trip() {
        let path = segment_path(Path::new("/x"), 7);
        assert_eq!(path, Path::new("/x/00000000000000000007.wal"));
        assert_eq!(parse_segment_name("00000000000000000007.wal"), Some(7));
        assert_eq!(
            parse_segment_name(&format!("{}.wal", u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_name("7.wal"), None);
        assert_eq!(parse_segment_name("0000000000000000000x.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000007.wal.tmp"), None);
        assert_eq!(parse_segment_name("99999999999999999999.wal"), None);
        assert_eq!(parse_segment_name("LOCK"), None);
    }
}
