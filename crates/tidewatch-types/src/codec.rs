//! Binary encoding of an [`EventBatch`] with its stream name: the payload of a WAL record.
//!
//! Little-endian, self-describing column types, no alignment:
//!
//! ```text
//! u8 version | u16 name_len, name | u32 rows | ids: rows x u128 | ts: rows x i64
//! u16 tag_count, per tag:   u32 dict_len, dict_len x (u32 len, utf8) | rows x u32 key
//! u16 field_count, per field: u8 type | validity bitmap (rows+7)/8 | values
//!   values: f64/i64 rows x 8 bytes (0 where null), bool rows x u8, string per non-null (u32 len, utf8)
//! ```
//!
//! The WAL checks integrity with a CRC; decoding still validates every length so that a
//! bug or a foreign file yields an error, never a panic or a huge allocation.

use std::sync::Arc;

use crate::batch::{EventBatch, FieldColumn, NULL_TAG, TagColumn};
use crate::schema::FieldType;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unexpected end of record at byte {0}")]
    Truncated(usize),
    #[error("unsupported batch encoding version {0}")]
    Version(u8),
    #[error("invalid utf-8 at byte {0}")]
    Utf8(usize),
    #[error("unknown field type code {0}")]
    FieldType(u8),
    #[error("tag key {key} outside a dictionary of {dict_len}")]
    TagKey { key: u32, dict_len: usize },
    #[error("{0} trailing bytes after the batch")]
    Trailing(usize),
}

/// Appends the encoding of (`stream`, `batch`) to `out`, so callers can reuse a buffer.
pub fn encode_batch(stream: &str, batch: &EventBatch, out: &mut Vec<u8>) {
    let rows = batch.len();
    out.push(VERSION);
    put_str16(out, stream);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    for id in &batch.ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    for ts in &batch.ts {
        out.extend_from_slice(&ts.to_le_bytes());
    }
    out.extend_from_slice(&(batch.tags.len() as u16).to_le_bytes());
    for tag in &batch.tags {
        out.extend_from_slice(&(tag.dict.len() as u32).to_le_bytes());
        for value in &tag.dict {
            put_str32(out, value);
        }
        for key in &tag.keys {
            out.extend_from_slice(&key.to_le_bytes());
        }
    }
    out.extend_from_slice(&(batch.fields.len() as u16).to_le_bytes());
    for column in &batch.fields {
        out.push(type_code(column.field_type()));
        match column {
            FieldColumn::F64(v) => {
                put_validity(out, v.iter().map(Option::is_some));
                for x in v {
                    out.extend_from_slice(&x.unwrap_or(0.0).to_le_bytes());
                }
            }
            FieldColumn::I64(v) => {
                put_validity(out, v.iter().map(Option::is_some));
                for x in v {
                    out.extend_from_slice(&x.unwrap_or(0).to_le_bytes());
                }
            }
            FieldColumn::Bool(v) => {
                put_validity(out, v.iter().map(Option::is_some));
                out.extend(v.iter().map(|x| u8::from(x.unwrap_or(false))));
            }
            FieldColumn::Str(v) => {
                put_validity(out, v.iter().map(Option::is_some));
                for s in v.iter().flatten() {
                    put_str32(out, s);
                }
            }
        }
    }
}

/// Decodes what [`encode_batch`] wrote: the stream name and the batch.
pub fn decode_batch(bytes: &[u8]) -> Result<(String, EventBatch), DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let name_len = r.u16()? as usize;
    let stream = r.str(name_len)?.to_owned();
    let rows = r.u32()? as usize;
    // Check the fixed-size part fits before allocating for it.
    r.need(rows.saturating_mul(24))?;
    let ids = (0..rows).map(|_| r.u128()).collect::<Result<_, _>>()?;
    let ts = (0..rows).map(|_| r.i64()).collect::<Result<_, _>>()?;
    let tag_count = r.u16()? as usize;
    let mut tags = Vec::with_capacity(tag_count);
    for _ in 0..tag_count {
        let dict_len = r.u32()? as usize;
        r.need(dict_len.saturating_mul(4))?;
        let mut dict = Vec::with_capacity(dict_len);
        for _ in 0..dict_len {
            let len = r.u32()? as usize;
            dict.push(Arc::<str>::from(r.str(len)?));
        }
        r.need(rows.saturating_mul(4))?;
        let mut keys = Vec::with_capacity(rows);
        for _ in 0..rows {
            let key = r.u32()?;
            if key != NULL_TAG && key as usize >= dict_len {
                return Err(DecodeError::TagKey { key, dict_len });
            }
            keys.push(key);
        }
        tags.push(TagColumn { keys, dict });
    }
    let field_count = r.u16()? as usize;
    let mut fields = Vec::with_capacity(field_count);
    for _ in 0..field_count {
        let code = r.u8()?;
        let field_type = field_type(code).ok_or(DecodeError::FieldType(code))?;
        let validity = r.take(rows.div_ceil(8))?;
        let valid = |row: usize| validity[row / 8] & (1 << (row % 8)) != 0;
        let column = match field_type {
            FieldType::F64 => {
                r.need(rows.saturating_mul(8))?;
                let mut v = Vec::with_capacity(rows);
                for row in 0..rows {
                    let x = f64::from_le_bytes(r.array()?);
                    v.push(valid(row).then_some(x));
                }
                FieldColumn::F64(v)
            }
            FieldType::I64 => {
                r.need(rows.saturating_mul(8))?;
                let mut v = Vec::with_capacity(rows);
                for row in 0..rows {
                    let x = r.i64()?;
                    v.push(valid(row).then_some(x));
                }
                FieldColumn::I64(v)
            }
            FieldType::Bool => {
                let raw = r.take(rows)?;
                FieldColumn::Bool(
                    (0..rows)
                        .map(|row| valid(row).then_some(raw[row] != 0))
                        .collect(),
                )
            }
            FieldType::Str => {
                let mut v = Vec::with_capacity(rows);
                for row in 0..rows {
                    if valid(row) {
                        let len = r.u32()? as usize;
                        v.push(Some(r.str(len)?.to_owned()));
                    } else {
                        v.push(None);
                    }
                }
                FieldColumn::Str(v)
            }
        };
        fields.push(column);
    }
    let trailing = bytes.len() - r.pos;
    if trailing != 0 {
        return Err(DecodeError::Trailing(trailing));
    }
    Ok((
        stream,
        EventBatch {
            ids,
            ts,
            tags,
            fields,
        },
    ))
}

fn type_code(field_type: FieldType) -> u8 {
    match field_type {
        FieldType::F64 => 1,
        FieldType::I64 => 2,
        FieldType::Bool => 3,
        FieldType::Str => 4,
    }
}

fn field_type(code: u8) -> Option<FieldType> {
    Some(match code {
        1 => FieldType::F64,
        2 => FieldType::I64,
        3 => FieldType::Bool,
        4 => FieldType::Str,
        _ => return None,
    })
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // Stream names are at most 64 bytes (validated at declaration).
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_str32(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_validity(out: &mut Vec<u8>, valid: impl ExactSizeIterator<Item = bool>) {
    let start = out.len();
    out.resize(start + valid.len().div_ceil(8), 0);
    for (row, is_valid) in valid.enumerate() {
        if is_valid {
            out[start + row / 8] |= 1 << (row % 8);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.bytes.len() - self.pos < n {
            return Err(DecodeError::Truncated(self.pos));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.need(n)?;
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        self.array().map(u128::from_le_bytes)
    }

    fn str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::Utf8(at))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn batch_strategy() -> impl Strategy<Value = EventBatch> {
        (0usize..40).prop_flat_map(|rows| {
            let tag = (
                prop::collection::vec("[a-z]{0,6}", 1..5),
                prop::collection::vec(any::<u32>(), rows),
                prop::collection::vec(any::<bool>(), rows),
            )
                .prop_map(|(dict, picks, nulls)| TagColumn {
                    keys: picks
                        .iter()
                        .zip(&nulls)
                        .map(|(p, &null)| {
                            if null {
                                NULL_TAG
                            } else {
                                p % dict.len() as u32
                            }
                        })
                        .collect(),
                    dict: dict.into_iter().map(Arc::from).collect(),
                });
            (
                prop::collection::vec(any::<u128>(), rows),
                prop::collection::vec(any::<i64>(), rows),
                prop::collection::vec(tag, 0..3),
                prop::collection::vec(
                    prop::option::of(any::<f64>().prop_filter("nan", |x| !x.is_nan())),
                    rows,
                ),
                prop::collection::vec(prop::option::of(any::<i64>()), rows),
                prop::collection::vec(prop::option::of(any::<bool>()), rows),
                prop::collection::vec(prop::option::of(".{0,8}"), rows),
            )
                .prop_map(|(ids, ts, tags, f, i, b, s)| EventBatch {
                    ids,
                    ts,
                    tags,
                    fields: vec![
                        FieldColumn::F64(f),
                        FieldColumn::I64(i),
                        FieldColumn::Bool(b),
                        FieldColumn::Str(s),
                    ],
                })
        })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(batch in batch_strategy(), name in "[a-z][a-z.]{0,20}") {
            let mut bytes = Vec::new();
            encode_batch(&name, &batch, &mut bytes);
            let (decoded_name, decoded) = decode_batch(&bytes).unwrap();
            prop_assert_eq!(decoded_name, name);
            prop_assert_eq!(decoded, batch);
        }

        #[test]
        fn truncated_or_garbled_input_is_an_error_not_a_panic(batch in batch_strategy(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode_batch("s", &batch, &mut bytes);
            let cut_at = cut.index(bytes.len());
            prop_assert!(decode_batch(&bytes[..cut_at]).is_err());
            let at = flip.index(bytes.len());
            bytes[at] ^= 0xff;
            let _ = decode_batch(&bytes);
        }
    }
}
