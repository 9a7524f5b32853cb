//! One hour of one stream: sealed record batches plus open builders.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int64Builder,
    StringBuilder, StringDictionaryBuilder, TimestampMillisecondBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use tidewatch_types::{EventBatch, FieldColumn};

/// Builder for one field column.
enum FieldBuilder {
    F64(Float64Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

impl FieldBuilder {
    fn finish_cloned(&self) -> ArrayRef {
        match self {
            FieldBuilder::F64(b) => Arc::new(b.finish_cloned()),
            FieldBuilder::I64(b) => Arc::new(b.finish_cloned()),
            FieldBuilder::Bool(b) => Arc::new(b.finish_cloned()),
            FieldBuilder::Str(b) => Arc::new(b.finish_cloned()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            FieldBuilder::F64(b) => Arc::new(b.finish()),
            FieldBuilder::I64(b) => Arc::new(b.finish()),
            FieldBuilder::Bool(b) => Arc::new(b.finish()),
            FieldBuilder::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// The columns being filled for the newest rows of a partition.
struct OpenBuilders {
    ids: FixedSizeBinaryBuilder,
    ts: TimestampMillisecondBuilder,
    tags: Vec<StringDictionaryBuilder<Int32Type>>,
    fields: Vec<FieldBuilder>,
}

impl OpenBuilders {
    fn new(template: &EventBatch) -> Self {
        OpenBuilders {
            ids: FixedSizeBinaryBuilder::new(16),
            ts: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            tags: template
                .tags
                .iter()
                .map(|_| StringDictionaryBuilder::new())
                .collect(),
            fields: template
                .fields
                .iter()
                .map(|c| match c {
                    FieldColumn::F64(_) => FieldBuilder::F64(Float64Builder::new()),
                    FieldColumn::I64(_) => FieldBuilder::I64(Int64Builder::new()),
                    FieldColumn::Bool(_) => FieldBuilder::Bool(BooleanBuilder::new()),
                    FieldColumn::Str(_) => FieldBuilder::Str(StringBuilder::new()),
                })
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn push_row(&mut self, batch: &EventBatch, row: usize) {
        // The id builder only fails on a width mismatch, and ids are always 16 bytes.
        let _ = self.ids.append_value(batch.ids[row].to_be_bytes());
        self.ts.append_value(batch.ts[row]);
        for (builder, column) in self.tags.iter_mut().zip(&batch.tags) {
            match column.value(row) {
                Some(value) => {
                    builder.append_value(value.as_ref());
                }
                None => builder.append_null(),
            }
        }
        for (builder, column) in self.fields.iter_mut().zip(&batch.fields) {
            match (builder, column) {
                (FieldBuilder::F64(b), FieldColumn::F64(v)) => b.append_option(v[row]),
                (FieldBuilder::I64(b), FieldColumn::I64(v)) => b.append_option(v[row]),
                (FieldBuilder::Bool(b), FieldColumn::Bool(v)) => b.append_option(v[row]),
                (FieldBuilder::Str(b), FieldColumn::Str(v)) => b.append_option(v[row].as_deref()),
                _ => debug_assert!(false, "batch columns do not match the stream schema"),
            }
        }
    }

    fn columns(&self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish_cloned()),
            Arc::new(self.ts.finish_cloned()),
        ];
        columns.extend(
            self.tags
                .iter()
                .map(|b| Arc::new(b.finish_cloned()) as ArrayRef),
        );
        columns.extend(self.fields.iter().map(FieldBuilder::finish_cloned));
        columns
    }

    fn take_columns(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.ids.finish()), Arc::new(self.ts.finish())];
        columns.extend(
            self.tags
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.extend(self.fields.iter_mut().map(FieldBuilder::finish));
        columns
    }
}

/// One hour of one stream.
pub struct Partition {
    schema: SchemaRef,
    sealed: Vec<RecordBatch>,
    open: Option<OpenBuilders>,
    seal_rows: usize,
    rows: usize,
    min_ts: i64,
    max_ts: i64,
}

impl Partition {
    pub(crate) fn new(schema: SchemaRef, seal_rows: usize) -> Self {
        Partition {
            schema,
            sealed: Vec::new(),
            open: None,
            seal_rows,
            rows: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    pub(crate) fn push_row(&mut self, batch: &EventBatch, row: usize) {
        let open = self.open.get_or_insert_with(|| OpenBuilders::new(batch));
        open.push_row(batch, row);
        self.rows += 1;
        self.min_ts = self.min_ts.min(batch.ts[row]);
        self.max_ts = self.max_ts.max(batch.ts[row]);
        if open.len() >= self.seal_rows {
            self.seal();
        }
    }

    /// Turns the open builders into an immutable record batch.
    pub fn seal(&mut self) {
        if let Some(mut open) = self.open.take() {
            if open.len() == 0 {
                return;
            }
            if let Ok(batch) = RecordBatch::try_new(self.schema.clone(), open.take_columns()) {
                self.sealed.push(batch);
            } else {
                debug_assert!(false, "builders do not match the partition schema");
            }
        }
    }

    /// Sealed batches plus a copy of the open rows: a consistent view at this instant.
    pub fn snapshot(&self) -> Vec<RecordBatch> {
        let mut batches = self.sealed.clone();
        if let Some(open) = self.open.as_ref().filter(|open| open.len() > 0) {
            match RecordBatch::try_new(self.schema.clone(), open.columns()) {
                Ok(batch) => batches.push(batch),
                Err(_) => debug_assert!(false, "builders do not match the partition schema"),
            }
        }
        batches
    }

    pub fn sealed_batches(&self) -> &[RecordBatch] {
        &self.sealed
    }

    pub fn open_rows(&self) -> usize {
        self.open.as_ref().map_or(0, OpenBuilders::len)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.rows > 0).then_some((self.min_ts, self.max_ts))
    }
}
