//! One hour of one stream: sealed record batches plus open builders.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use tidewatch_types::batch::NULL_TAG;
use tidewatch_types::{EventBatch, FieldColumn, TagColumn};

/// Builder for one dictionary-encoded tag column. Unlike Arrow's string dictionary
/// builder, which hashes the string of every row, it maps each batch's own dictionary
/// keys to its keys once per distinct value, then appends integers.
#[derive(Default)]
struct TagBuilder {
    keys: Int32Builder,
    values: Vec<Arc<str>>,
    index: HashMap<Arc<str>, i32>,
    /// Batch dictionary key -> key in `values`, for the batch being appended; -1 = not
    /// yet looked up.
    remap: Vec<i32>,
}

impl TagBuilder {
    fn begin_batch(&mut self, column: &TagColumn) {
        self.remap.clear();
        self.remap.resize(column.dict.len(), -1);
    }

    fn push(&mut self, column: &TagColumn, row: usize) {
        let batch_key = column.keys[row];
        if batch_key == NULL_TAG {
            self.keys.append_null();
            return;
        }
        let slot = batch_key as usize;
        let mut key = self.remap[slot];
        if key < 0 {
            let value = &column.dict[slot];
            key = match self.index.get(value) {
                Some(&key) => key,
                None => {
                    let key = self.values.len() as i32;
                    self.values.push(Arc::clone(value));
                    self.index.insert(Arc::clone(value), key);
                    key
                }
            };
            self.remap[slot] = key;
        }
        self.keys.append_value(key);
    }

    fn array(&self, keys: arrow_array::Int32Array) -> ArrayRef {
        let values = StringArray::from_iter_values(self.values.iter().map(|v| &**v));
        match DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)) {
            Ok(array) => Arc::new(array),
            // Keys always index `values`; an empty all-null column is the safe fallback.
            Err(_) => Arc::new(DictionaryArray::<Int32Type>::from_iter(std::iter::empty::<
                &str,
            >())),
        }
    }

    fn finish_cloned(&self) -> ArrayRef {
        self.array(self.keys.finish_cloned())
    }

    /// Finishes the column and starts a fresh dictionary for the next sealed batch.
    fn finish(&mut self) -> ArrayRef {
        let keys = self.keys.finish();
        let array = self.array(keys);
        self.values.clear();
        self.index.clear();
        self.remap.iter_mut().for_each(|k| *k = -1);
        array
    }
}

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
    tags: Vec<TagBuilder>,
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
                .map(|_| TagBuilder::default())
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

    fn begin_batch(&mut self, batch: &EventBatch) {
        for (builder, column) in self.tags.iter_mut().zip(&batch.tags) {
            builder.begin_batch(column);
        }
    }

    fn push_row(&mut self, batch: &EventBatch, row: usize) {
        // The id builder only fails on a width mismatch, and ids are always 16 bytes.
        let _ = self.ids.append_value(batch.ids[row].to_be_bytes());
        self.ts.append_value(batch.ts[row]);
        for (builder, column) in self.tags.iter_mut().zip(&batch.tags) {
            builder.push(column, row);
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
        columns.extend(self.tags.iter().map(TagBuilder::finish_cloned));
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
    /// Smallest WAL sequence of any row held here (the WAL must keep it until persisted).
    min_seq: Option<u64>,
    /// While a persist is in flight: how many leading sealed batches it took, and the
    /// smallest sequence of rows appended since.
    persisting: Option<(usize, Option<u64>)>,
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
            min_seq: None,
            persisting: None,
        }
    }

    /// Records that rows from WAL record `seq` were appended.
    pub(crate) fn note_seq(&mut self, seq: u64) {
        self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
        if let Some((_, since)) = &mut self.persisting {
            *since = Some(since.map_or(seq, |m| m.min(seq)));
        }
    }

    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    pub fn is_persisting(&self) -> bool {
        self.persisting.is_some()
    }

    /// Seals the open rows and hands out every row held so far for persisting; rows
    /// appended from now on stay behind. `None` when empty or already persisting.
    pub(crate) fn begin_persist(&mut self) -> Option<Vec<RecordBatch>> {
        if self.persisting.is_some() || self.rows == 0 {
            return None;
        }
        self.seal();
        self.persisting = Some((self.sealed.len(), None));
        Some(self.sealed.clone())
    }

    /// The persist begun last is durable: drops the rows it took. Returns whether rows
    /// remain.
    pub(crate) fn finish_persist(&mut self) -> bool {
        if let Some((taken, since)) = self.persisting.take() {
            let gone: usize = self.sealed.drain(..taken).map(|b| b.num_rows()).sum();
            self.rows -= gone;
            self.min_seq = since;
            let (lo, hi) = self
                .snapshot()
                .iter()
                .filter_map(crate::convert::ts_range)
                .fold((i64::MAX, i64::MIN), |(lo, hi), (a, b)| {
                    (lo.min(a), hi.max(b))
                });
            (self.min_ts, self.max_ts) = (lo, hi);
        }
        self.rows > 0
    }

    /// The persist begun last failed: everything stays in memory.
    pub(crate) fn abort_persist(&mut self) {
        self.persisting = None;
    }

    /// Appends `rows` of `batch`, sealing whenever the open builders reach the threshold.
    pub(crate) fn append_rows(
        &mut self,
        batch: &EventBatch,
        rows: impl IntoIterator<Item = usize>,
    ) {
        // Whether the open builders have mapped this batch's tag dictionaries.
        let mut begun = false;
        for row in rows {
            let open = match &mut self.open {
                Some(open) => open,
                None => {
                    begun = false;
                    self.open.insert(OpenBuilders::new(batch))
                }
            };
            if !begun {
                open.begin_batch(batch);
                begun = true;
            }
            open.push_row(batch, row);
            self.rows += 1;
            self.min_ts = self.min_ts.min(batch.ts[row]);
            self.max_ts = self.max_ts.max(batch.ts[row]);
            if open.len() >= self.seal_rows {
                self.seal();
            }
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
