//! A stream's checkpoint file: the state that is not in its segments, as of a WAL
//! sequence, so that recovery replays only the WAL after it.
//!
//! ```text
//! "TWCK" | u8 version | u64 seq | u64 n | n x u128 producer id
//!        | u32 rollups | per rollup: u32 name len, name, u64 state len, state,
//!                                    u64 rows, rows (version 2)
//!        | u32 CRC32C of everything before it
//! row:   i64 window_start | i64 window_end | u8 closed
//!        | u32 n, n x value | u32 m, m x (u8 0 | u8 1, f64)
//! value: u8 0 (null) | u8 1, u32 len, UTF-8
//! ```
//!
//! Integers are little-endian. A rollup's state is [`tidewatch_rollup::Rollup::checkpoint`];
//! its rows are the evicted windows not yet in a rollup segment (see [`crate::history`]),
//! group values and aggregate values in the rollup's declaration order. Version 1 files
//! (no rows) are still read.

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"TWCK";
const VERSION: u8 = 2;

/// What a checkpoint holds.
#[derive(Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
    pub producer_ids: Vec<u128>,
    pub rollups: Vec<RollupCheckpoint>,
}

/// One rollup's part of a checkpoint.
#[derive(Debug, Default, PartialEq)]
pub struct RollupCheckpoint {
    pub name: String,
    pub state: Vec<u8>,
    /// Evicted windows not yet in a segment.
    pub evicted: Vec<StoredRow>,
}

/// A rollup row without its names (the rollup's spec has them, in order).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub window_start: i64,
    pub window_end: i64,
    pub closed: bool,
    pub group: Vec<Option<String>>,
    pub values: Vec<Option<f64>>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let state_bytes: usize = self
            .rollups
            .iter()
            .map(|r| r.name.len() + r.state.len() + 20 + r.evicted.len() * 64)
            .sum();
        let mut out = Vec::with_capacity(32 + self.producer_ids.len() * 16 + state_bytes);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.producer_ids.len() as u64).to_le_bytes());
        for id in &self.producer_ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out.extend_from_slice(&(self.rollups.len() as u32).to_le_bytes());
        for rollup in &self.rollups {
            out.extend_from_slice(&(rollup.name.len() as u32).to_le_bytes());
            out.extend_from_slice(rollup.name.as_bytes());
            out.extend_from_slice(&(rollup.state.len() as u64).to_le_bytes());
            out.extend_from_slice(&rollup.state);
            out.extend_from_slice(&(rollup.evicted.len() as u64).to_le_bytes());
            for row in &rollup.evicted {
                encode_row(row, &mut out);
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Checkpoint> {
        let bad = |what: &str| Error::Recovery(format!("checkpoint file: {what}"));
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| bad("too short"))?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Reader(body);
        if r.take(4)? != MAGIC {
            return Err(bad("not a checkpoint"));
        }
        let version = r.take(1)?[0];
        if !(1..=VERSION).contains(&version) {
            return Err(bad("unknown version"));
        }
        let seq = r.u64()?;
        let ids = r.len(16)?;
        let mut producer_ids = Vec::with_capacity(ids);
        for _ in 0..ids {
            let raw: [u8; 16] = r.take(16)?.try_into().map_err(|_| bad("short id"))?;
            producer_ids.push(u128::from_le_bytes(raw));
        }
        let count = r.u32()? as usize;
        let mut rollups = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let name_len = r.u32()? as usize;
            let name = std::str::from_utf8(r.take(name_len)?)
                .map_err(|_| bad("rollup name is not UTF-8"))?
                .to_owned();
            let state_len = r.len(1)?;
            let state = r.take(state_len)?.to_vec();
            let mut evicted = Vec::new();
            if version >= 2 {
                // A row takes at least 25 bytes.
                let rows = r.len(25)?;
                evicted.reserve(rows);
                for _ in 0..rows {
                    evicted.push(r.row()?);
                }
            }
            rollups.push(RollupCheckpoint {
                name,
                state,
                evicted,
            });
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Checkpoint {
            seq,
            producer_ids,
            rollups,
        })
    }
}

fn encode_row(row: &StoredRow, out: &mut Vec<u8>) {
    out.extend_from_slice(&row.window_start.to_le_bytes());
    out.extend_from_slice(&row.window_end.to_le_bytes());
    out.push(u8::from(row.closed));
    out.extend_from_slice(&(row.group.len() as u32).to_le_bytes());
    for value in &row.group {
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    out.extend_from_slice(&(row.values.len() as u32).to_le_bytes());
    for value in &row.values {
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            return Err(Error::Recovery("checkpoint file: truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let raw = self.take(4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn flag(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Recovery("checkpoint file: bad flag".into())),
        }
    }

    /// A u32 count of items of at least `item_bytes` each, refused like [`Self::len`].
    fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes) > self.0.len() {
            return Err(Error::Recovery("checkpoint file: truncated".into()));
        }
        Ok(n)
    }

    fn row(&mut self) -> Result<StoredRow> {
        let window_start = self.u64()? as i64;
        let window_end = self.u64()? as i64;
        let closed = self.flag()?;
        let groups = self.count(1)?;
        let mut group = Vec::with_capacity(groups);
        for _ in 0..groups {
            group.push(if self.flag()? {
                let len = self.u32()? as usize;
                let text = std::str::from_utf8(self.take(len)?).map_err(|_| {
                    Error::Recovery("checkpoint file: group value is not UTF-8".into())
                })?;
                Some(text.to_owned())
            } else {
                None
            });
        }
        let count = self.count(1)?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(if self.flag()? {
                Some(f64::from_bits(self.u64()?))
            } else {
                None
            });
        }
        Ok(StoredRow {
            window_start,
            window_end,
            closed,
            group,
            values,
        })
    }

    /// A u64 count of items of `item_bytes` each, refused when they cannot fit in what
    /// is left (so a corrupt count never becomes a huge allocation).
    fn len(&mut self, item_bytes: usize) -> Result<usize> {
        let n = usize::try_from(self.u64()?).unwrap_or(usize::MAX);
        if n.saturating_mul(item_bytes) > self.0.len() {
            return Err(Error::Recovery("checkpoint file: truncated".into()));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_every_damage_is_refused() {
        let checkpoint = Checkpoint {
            seq: 42,
            producer_ids: vec![1, u128::MAX, 7 << 64],
            rollups: vec![
                RollupCheckpoint {
                    name: "ohlc".into(),
                    state: vec![1, 2, 3],
                    evicted: vec![
                        StoredRow {
                            window_start: -60_000,
                            window_end: 0,
                            closed: true,
                            group: vec![Some("BTC".into()), None],
                            values: vec![Some(1.5), None, Some(f64::MIN_POSITIVE)],
                        },
                        StoredRow {
                            window_start: 0,
                            window_end: 60_000,
                            closed: false,
                            group: vec![],
                            values: vec![],
                        },
                    ],
                },
                RollupCheckpoint {
                    name: "empty".into(),
                    ..RollupCheckpoint::default()
                },
            ],
        };
        let bytes = checkpoint.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), checkpoint);
        for cut in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(Checkpoint::decode(&flipped).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_version_1_file_reads_with_no_evicted_rows() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(1);
        bytes.extend_from_slice(&9u64.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(b"ohlc");
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&[7, 8]);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let checkpoint = Checkpoint::decode(&bytes).unwrap();
        assert_eq!(checkpoint.seq, 9);
        assert_eq!(
            checkpoint.rollups,
            [RollupCheckpoint {
                name: "ohlc".into(),
                state: vec![7, 8],
                evicted: vec![],
            }]
        );
    }
}
