//! The little-endian primitives of the checkpoint format: a [`Writer`] that appends to a
//! buffer and a [`Reader`] that never panics and never allocates more than the input could
//! hold. Every read of malformed input is an [`Error::Checkpoint`].
//!
//! Integers and floats are fixed-width little-endian (floats as their IEEE 754 bits, so
//! every value, including the sign of zero and NaN payloads, round-trips exactly); lengths
//! and counts are `u64`; strings are a length and UTF-8 bytes.

use crate::{Error, Result};

/// Appends encoded values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, value: f64) {
        self.u64(value.to_bits());
    }

    /// A count or length. `usize` is at most 64 bits wide on every Rust target, so the
    /// conversion is lossless.
    pub(crate) fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.len(value.len());
        self.raw(value.as_bytes());
    }

    /// `0` for `None`, else `1` followed by what `write` writes.
    pub(crate) fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
}

/// Reads encoded values from a byte slice, front to back.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

/// The error for malformed input.
pub(crate) fn invalid(reason: impl Into<String>) -> Error {
    Error::Checkpoint(reason.into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn raw(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.bytes.len() {
            return Err(invalid(format!(
                "truncated: {len} more bytes expected, {} left",
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.raw(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A count of items that each take at least `min_item_bytes` of the remaining input
    /// (at least one byte is assumed), so a corrupt count is caught before anything is
    /// allocated or looped over for it.
    pub(crate) fn len(&mut self, min_item_bytes: usize, what: &str) -> Result<usize> {
        let len = self.u64()?;
        let fits = usize::try_from(len)
            .ok()
            .filter(|&len| len.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or_else(|| {
            invalid(format!(
                "{what}: count {len} does not fit in the {} bytes left",
                self.remaining()
            ))
        })
    }

    pub(crate) fn str(&mut self, what: &str) -> Result<&'a str> {
        let len = self.len(1, what)?;
        std::str::from_utf8(self.raw(len)?).map_err(|_| invalid(format!("{what}: not UTF-8")))
    }

    /// Reads the flag written by [`Writer::option`], then the value with `read`.
    pub(crate) fn option<T>(
        &mut self,
        what: &str,
        read: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            flag => Err(invalid(format!("{what}: presence flag {flag}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_reads_past_the_end_are_errors() {
        let mut w = Writer::default();
        w.u8(7);
        w.u16(0xbeef);
        w.u32(0xdead_beef);
        w.u64(u64::MAX - 1);
        w.i64(i64::MIN);
        w.f64(-0.0);
        w.str("héllo");
        w.option(Some(2.5), Writer::f64);
        w.option(None::<f64>, Writer::f64);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0xbeef));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        assert_eq!(r.i64(), Ok(i64::MIN));
        assert_eq!(r.f64().map(f64::to_bits), Ok((-0.0f64).to_bits()));
        assert_eq!(r.str("s"), Ok("héllo"));
        assert_eq!(r.option("o", Reader::f64), Ok(Some(2.5)));
        assert_eq!(r.option("o", Reader::f64), Ok(None));
        assert_eq!(r.remaining(), 0);
        assert!(r.u8().is_err());
    }

    #[test]
    fn counts_are_bounded_by_the_input_left() {
        let mut w = Writer::default();
        w.len(3);
        w.raw(&[0; 6]);
        assert_eq!(Reader::new(&w.bytes).len(2, "pairs"), Ok(3));
        assert!(Reader::new(&w.bytes).len(3, "triples").is_err());
        let mut huge = Writer::default();
        huge.u64(u64::MAX);
        assert!(Reader::new(&huge.bytes).len(0, "items").is_err());
        assert!(Reader::new(&huge.bytes).str("name").is_err());
        let mut flag = Writer::default();
        flag.u8(2);
        assert!(Reader::new(&flag.bytes).option("x", Reader::u8).is_err());
        let mut bad_utf8 = Writer::default();
        bad_utf8.len(1);
        bad_utf8.u8(0xff);
        assert!(Reader::new(&bad_utf8.bytes).str("name").is_err());
    }
}
