//! The WAL record of an ingested batch:
//!
//! ```text
//! u8 kind (1 = batch) | u32 rows | producer-id bitmap (rows+7)/8 | tidewatch_types::codec batch
//! ```
//!
//! The bitmap marks rows whose id the producer chose, so recovery can rebuild the dedupe
//! set that makes re-sent batches idempotent.

use tidewatch_types::EventBatch;
use tidewatch_types::codec::{decode_batch, encode_batch};

const KIND_BATCH: u8 = 1;

/// Encodes a batch and its producer-id flags into a WAL payload.
pub fn encode(stream: &str, batch: &EventBatch, producer_ids: &[bool]) -> Vec<u8> {
    debug_assert_eq!(batch.len(), producer_ids.len());
    let rows = batch.len();
    let mut out = Vec::with_capacity(64 + rows * 48);
    out.push(KIND_BATCH);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    let bitmap_at = out.len();
    out.resize(bitmap_at + rows.div_ceil(8), 0);
    for (row, _) in producer_ids.iter().enumerate().filter(|(_, given)| **given) {
        out[bitmap_at + row / 8] |= 1 << (row % 8);
    }
    encode_batch(stream, batch, &mut out);
    out
}

/// A decoded WAL payload.
pub struct DecodedRecord {
    pub stream: String,
    pub batch: EventBatch,
    pub producer_ids: Vec<bool>,
}

/// Decodes what [`encode`] wrote.
pub fn decode(payload: &[u8]) -> Result<DecodedRecord, String> {
    let (&kind, rest) = payload.split_first().ok_or("empty record")?;
    if kind != KIND_BATCH {
        return Err(format!("unknown record kind {kind}"));
    }
    let rows_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("truncated record header")?;
    let rows = u32::from_le_bytes(rows_bytes) as usize;
    let bitmap = rest
        .get(4..4 + rows.div_ceil(8))
        .ok_or("truncated producer-id bitmap")?;
    let (stream, batch) = decode_batch(&rest[4 + bitmap.len()..]).map_err(|e| e.to_string())?;
    if batch.len() != rows {
        return Err(format!(
            "record says {rows} rows, batch has {}",
            batch.len()
        ));
    }
    let producer_ids = (0..rows)
        .map(|r| bitmap[r / 8] & (1 << (r % 8)) != 0)
        .collect();
    Ok(DecodedRecord {
        stream,
        batch,
        producer_ids,
    })
}

#[cfg(test)]
mod tests {
    use tidewatch_types::FieldColumn;

    use super::*;

    #[test]
    fn round_trips_batch_and_flags() {
        let batch = EventBatch {
            ids: (1..=10).collect(),
            ts: (0..10).collect(),
            tags: vec![],
            fields: vec![FieldColumn::I64((0..10).map(Some).collect())],
        };
        let flags: Vec<bool> = (0..10).map(|i| i % 3 == 0).collect();
        let decoded = decode(&encode("s", &batch, &flags)).unwrap();
        assert_eq!(decoded.stream, "s");
        assert_eq!(decoded.batch, batch);
        assert_eq!(decoded.producer_ids, flags);
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0, 0, 0, 0]).is_err());
    }
}
