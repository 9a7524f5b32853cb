//! Reading Arrow record batches back as [`EventBatch`]es: for queries that render rows and
//! for rebuilding a rollup declared after its events arrived.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tidewatch_types::batch::TagInterner;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema};

/// The Arrow schema of a stream: `id` (UUID bytes, big-endian so byte order is id order),
/// `ts`, one dictionary column per tag, one column per field.
pub fn arrow_schema(schema: &StreamSchema) -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::FixedSizeBinary(16), false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ];
    for tag in &schema.tags {
        fields.push(Field::new(
            tag,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ));
    }
    for field in &schema.fields {
        let data_type = match field.field_type {
            FieldType::F64 => DataType::Float64,
            FieldType::I64 => DataType::Int64,
            FieldType::Bool => DataType::Boolean,
            FieldType::Str => DataType::Utf8,
        };
        fields.push(Field::new(&field.name, data_type, true));
    }
    Arc::new(Schema::new(fields))
}

/// Smallest and largest `ts` of a batch in the hot store's layout.
pub fn ts_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let ts = batch
        .column_by_name("ts")?
        .as_primitive_opt::<TimestampMillisecondType>()?;
    let lo = ts.values().iter().copied().min()?;
    let hi = ts.values().iter().copied().max()?;
    Some((lo, hi))
}

/// Typed views of one record batch's columns, downcast once and then read per row.
pub struct BatchView<'a> {
    ids: &'a arrow_array::FixedSizeBinaryArray,
    ts: &'a arrow_array::PrimitiveArray<TimestampMillisecondType>,
    tags: Vec<&'a DictionaryArray<Int32Type>>,
    tag_values: Vec<&'a arrow_array::StringArray>,
    fields: Vec<FieldView<'a>>,
}

enum FieldView<'a> {
    F64(&'a arrow_array::PrimitiveArray<Float64Type>),
    I64(&'a arrow_array::PrimitiveArray<Int64Type>),
    Bool(&'a arrow_array::BooleanArray),
    Str(&'a arrow_array::StringArray),
}

impl<'a> BatchView<'a> {
    /// Views a batch laid out by [`arrow_schema`] for `schema`. Returns `None` when the
    /// columns do not have that layout (a bug, never user input).
    pub fn new(batch: &'a RecordBatch, schema: &StreamSchema) -> Option<Self> {
        let columns = batch.columns();
        let tag_count = schema.tags.len();
        if columns.len() != 2 + tag_count + schema.fields.len() {
            return None;
        }
        let tags: Vec<&DictionaryArray<Int32Type>> = columns[2..2 + tag_count]
            .iter()
            .map(|c| c.as_dictionary_opt::<Int32Type>())
            .collect::<Option<_>>()?;
        let tag_values = tags
            .iter()
            .map(|d| d.values().as_string_opt::<i32>())
            .collect::<Option<_>>()?;
        let fields = columns[2 + tag_count..]
            .iter()
            .zip(&schema.fields)
            .map(|(c, f)| {
                Some(match f.field_type {
                    FieldType::F64 => FieldView::F64(c.as_primitive_opt()?),
                    FieldType::I64 => FieldView::I64(c.as_primitive_opt()?),
                    FieldType::Bool => FieldView::Bool(c.as_boolean_opt()?),
                    FieldType::Str => FieldView::Str(c.as_string_opt::<i32>()?),
                })
            })
            .collect::<Option<_>>()?;
        Some(BatchView {
            ids: columns[0].as_fixed_size_binary_opt()?,
            ts: columns[1].as_primitive_opt()?,
            tags,
            tag_values,
            fields,
        })
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn ts(&self, row: usize) -> i64 {
        self.ts.value(row)
    }

    pub fn id(&self, row: usize) -> u128 {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(self.ids.value(row));
        u128::from_be_bytes(bytes)
    }

    pub fn tag(&self, tag: usize, row: usize) -> Option<&'a str> {
        let dict = self.tags[tag];
        if dict.is_null(row) {
            return None;
        }
        let key = usize::try_from(dict.keys().value(row)).ok()?;
        Some(self.tag_values[tag].value(key))
    }
}

/// Accumulates rows picked from record batches into one [`EventBatch`], re-interning tag
/// values into its dictionaries.
pub struct RowCollector {
    batch: EventBatch,
    interned: Vec<TagInterner>,
}

impl RowCollector {
    pub fn new(schema: &StreamSchema) -> Self {
        RowCollector {
            batch: EventBatch::empty(schema),
            interned: vec![TagInterner::default(); schema.tags.len()],
        }
    }

    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    pub fn push(&mut self, view: &BatchView<'_>, row: usize) {
        self.batch.ids.push(view.id(row));
        self.batch.ts.push(view.ts(row));
        for (t, (column, interned)) in self
            .batch
            .tags
            .iter_mut()
            .zip(&mut self.interned)
            .enumerate()
        {
            interned.push(column, view.tag(t, row));
        }
        for (column, source) in self.batch.fields.iter_mut().zip(&view.fields) {
            let valid = |a: &dyn Array| a.is_valid(row);
            match (column, source) {
                (FieldColumn::F64(v), FieldView::F64(a)) => v.push(valid(*a).then(|| a.value(row))),
                (FieldColumn::I64(v), FieldView::I64(a)) => v.push(valid(*a).then(|| a.value(row))),
                (FieldColumn::Bool(v), FieldView::Bool(a)) => {
                    v.push(valid(*a).then(|| a.value(row)))
                }
                (FieldColumn::Str(v), FieldView::Str(a)) => {
                    v.push(valid(*a).then(|| a.value(row).to_owned()))
                }
                _ => debug_assert!(false, "view does not match the schema"),
            }
        }
    }

    pub fn finish(self) -> EventBatch {
        self.batch
    }
}

/// All rows of `batch` as an [`EventBatch`].
pub fn to_event_batch(batch: &RecordBatch, schema: &StreamSchema) -> Option<EventBatch> {
    let view = BatchView::new(batch, schema)?;
    let mut collector = RowCollector::new(schema);
    for row in 0..view.len() {
        collector.push(&view, row);
    }
    Some(collector.finish())
}
