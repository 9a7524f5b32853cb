//! A stream's checkpoint file: the state that is not in its segments, as of a WAL
//! sequence, so that recovery replays only the WAL after it.
//!
//! ```text
//! "TWCK" | u8 version | u64 seq | u64 n | n x u128 producer id
//!        | u32 rollups | per rollup: u32 name len, name, u64 state len, state
//!        | u32 CRC32C of everything before it
//! ```
//!
//! Integers are little-endian. A rollup's state is [`tidewatch_rollup::Rollup::checkpoint`].

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"TWCK";
const VERSION: u8 = 1;

/// What a checkpoint holds.
#[derive(Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
    pub producer_ids: Vec<u128>,
    /// `(rollup name, state)`.
    pub rollups: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let state_bytes: usize = self
            .rollups
            .iter()
            .map(|(n, s)| n.len() + s.len() + 12)
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
        for (name, state) in &self.rollups {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(state.len() as u64).to_le_bytes());
            out.extend_from_slice(state);
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
        if r.take(1)?[0] != VERSION {
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
            rollups.push((name, r.take(state_len)?.to_vec()));
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
            rollups: vec![("ohlc".into(), vec![1, 2, 3]), ("empty".into(), vec![])],
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
}
