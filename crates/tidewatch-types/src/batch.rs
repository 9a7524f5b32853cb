//! [`EventBatch`]: the columnar unit of the write path.
//!
//! A batch belongs to one stream and has one entry per row in every column. Tag columns are
//! dictionary-encoded within the batch so that a rollup or the hot store hashes each distinct
//! tag value once per batch, not once per row.

use std::collections::HashMap;
use std::sync::Arc;

use crate::schema::{FieldType, StreamSchema};

/// A time-ordered event id: the 128 bits of a UUID (v7 when Tidewatch assigns it).
pub type EventId = u128;

/// Key of a null tag value in [`TagColumn::keys`].
pub const NULL_TAG: u32 = u32::MAX;

/// One tag column: per-row keys into a batch-local dictionary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagColumn {
    pub keys: Vec<u32>,
    pub dict: Vec<Arc<str>>,
}

impl TagColumn {
    pub fn value(&self, row: usize) -> Option<&Arc<str>> {
        match self.keys.get(row) {
            Some(&key) if key != NULL_TAG => self.dict.get(key as usize),
            _ => None,
        }
    }
}

/// Interns values into one [`TagColumn`]'s dictionary while rows are appended, so each
/// distinct value is stored (and hashed into the dictionary) once per batch.
#[derive(Debug, Clone, Default)]
pub struct TagInterner {
    keys: HashMap<Arc<str>, u32>,
}

impl TagInterner {
    /// Appends `value` (null for `None`) to `column`, adding it to the dictionary when new.
    pub fn push(&mut self, column: &mut TagColumn, value: Option<&str>) {
        let key = match value {
            None => NULL_TAG,
            Some(value) => match self.keys.get(value) {
                Some(&key) => key,
                None => {
                    let key = column.dict.len() as u32;
                    let value: Arc<str> = Arc::from(value);
                    column.dict.push(Arc::clone(&value));
                    self.keys.insert(value, key);
                    key
                }
            },
        };
        column.keys.push(key);
    }
}

/// One field column; `None` is a null (the producer omitted the field).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldColumn {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
}

impl FieldColumn {
    pub fn new(field_type: FieldType) -> Self {
        match field_type {
            FieldType::F64 => FieldColumn::F64(Vec::new()),
            FieldType::I64 => FieldColumn::I64(Vec::new()),
            FieldType::Bool => FieldColumn::Bool(Vec::new()),
            FieldType::Str => FieldColumn::Str(Vec::new()),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            FieldColumn::F64(_) => FieldType::F64,
            FieldColumn::I64(_) => FieldType::I64,
            FieldColumn::Bool(_) => FieldType::Bool,
            FieldColumn::Str(_) => FieldType::Str,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            FieldColumn::F64(v) => v.len(),
            FieldColumn::I64(v) => v.len(),
            FieldColumn::Bool(v) => v.len(),
            FieldColumn::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `row` as a number, for numeric aggregates. Booleans and strings are not
    /// numbers; schemas reject aggregates over them at declaration.
    pub fn as_f64(&self, row: usize) -> Option<f64> {
        match self {
            FieldColumn::F64(v) => v.get(row).copied().flatten(),
            FieldColumn::I64(v) => v.get(row).copied().flatten().map(|x| x as f64),
            FieldColumn::Bool(_) | FieldColumn::Str(_) => None,
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        match self {
            FieldColumn::F64(v) => v.get(row).is_none_or(Option::is_none),
            FieldColumn::I64(v) => v.get(row).is_none_or(Option::is_none),
            FieldColumn::Bool(v) => v.get(row).is_none_or(Option::is_none),
            FieldColumn::Str(v) => v.get(row).is_none_or(Option::is_none),
        }
    }

    fn push_from(&mut self, other: &FieldColumn, row: usize) {
        match (self, other) {
            (FieldColumn::F64(a), FieldColumn::F64(b)) => a.push(b[row]),
            (FieldColumn::I64(a), FieldColumn::I64(b)) => a.push(b[row]),
            (FieldColumn::Bool(a), FieldColumn::Bool(b)) => a.push(b[row]),
            (FieldColumn::Str(a), FieldColumn::Str(b)) => a.push(b[row].clone()),
            (a, b) => debug_assert!(
                false,
                "column type mismatch: {:?} vs {:?}",
                a.field_type(),
                b.field_type()
            ),
        }
    }
}

/// Rows of one stream in columnar form. Every column has `len()` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub ids: Vec<EventId>,
    /// Event time, epoch milliseconds UTC.
    pub ts: Vec<i64>,
    /// One column per schema tag, in schema order.
    pub tags: Vec<TagColumn>,
    /// One column per schema field, in schema order.
    pub fields: Vec<FieldColumn>,
}

impl EventBatch {
    /// An empty batch with the columns of `schema`.
    pub fn empty(schema: &StreamSchema) -> Self {
        EventBatch {
            ids: Vec::new(),
            ts: Vec::new(),
            tags: vec![TagColumn::default(); schema.tags.len()],
            fields: schema
                .fields
                .iter()
                .map(|f| FieldColumn::new(f.field_type))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Whether every column has as many entries as there are rows and the columns match
    /// `schema`. Decoders and tests use it; the write path builds batches that satisfy it.
    pub fn is_consistent_with(&self, schema: &StreamSchema) -> bool {
        let n = self.len();
        self.ids.len() == n
            && self.tags.len() == schema.tags.len()
            && self.fields.len() == schema.fields.len()
            && self.tags.iter().all(|t| {
                t.keys.len() == n
                    && t.keys
                        .iter()
                        .all(|&k| k == NULL_TAG || (k as usize) < t.dict.len())
            })
            && self
                .fields
                .iter()
                .zip(&schema.fields)
                .all(|(c, f)| c.len() == n && c.field_type() == f.field_type)
    }

    /// A new batch holding the rows for which `keep(row)` is true, in order.
    pub fn filter_rows(&self, mut keep: impl FnMut(usize) -> bool) -> EventBatch {
        let rows: Vec<usize> = (0..self.len()).filter(|&r| keep(r)).collect();
        let mut out = EventBatch {
            ids: rows.iter().map(|&r| self.ids[r]).collect(),
            ts: rows.iter().map(|&r| self.ts[r]).collect(),
            tags: Vec::with_capacity(self.tags.len()),
            fields: self
                .fields
                .iter()
                .map(|c| FieldColumn::new(c.field_type()))
                .collect(),
        };
        for tag in &self.tags {
            // Keep the dictionary as it is: unused entries cost little and remapping would
            // cost a hash per row.
            out.tags.push(TagColumn {
                keys: rows.iter().map(|&r| tag.keys[r]).collect(),
                dict: tag.dict.clone(),
            });
        }
        for (dst, src) in out.fields.iter_mut().zip(&self.fields) {
            for &r in &rows {
                dst.push_from(src, r);
            }
        }
        out
    }
}
