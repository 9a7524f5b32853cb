//! Parquet segments: the cold, immutable copy of a stream's events.
//!
//! A segment holds rows of one stream and one hour partition, sorted by tags then `ts`,
//! zstd-compressed, with dictionary-encoded tags and page statistics, in the same Arrow
//! schema as the hot store (the Arrow schema travels in the file's metadata, so tags read
//! back as dictionaries). A segment is written to a temporary name, fsynced and renamed;
//! it counts as part of the store only once the manifest (owned by the engine) lists it.
//!
//! [`Segment`] is shared by `Arc`: a reader holding one keeps its file alive. Dropping a
//! segment from the store (retention) marks it removed; the file is deleted when the last
//! holder lets go.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_schema::{DataType, SchemaRef};
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};
use tidewatch_types::TimestampMs;

/// Rows per Parquet row group: small enough that time and tag statistics prune well,
/// large enough that columns compress.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Errors writing or reading a segment file.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("segment {path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// What the manifest records about a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// File name relative to the data directory.
    pub file: String,
    /// Start of the hour partition.
    pub partition: TimestampMs,
    pub min_ts: TimestampMs,
    pub max_ts: TimestampMs,
    pub rows: u64,
    pub bytes: u64,
    /// Every row of this partition from WAL records up to this sequence is in this
    /// segment or an earlier one of the same partition.
    pub through_seq: u64,
}

/// A live segment file.
#[derive(Debug)]
pub struct Segment {
    pub meta: SegmentMeta,
    pub path: PathBuf,
    removed: AtomicBool,
}

impl Segment {
    pub fn new(meta: SegmentMeta, data_dir: &Path) -> Arc<Segment> {
        Arc::new(Segment {
            path: data_dir.join(&meta.file),
            meta,
            removed: AtomicBool::new(false),
        })
    }

    /// Marks the file for deletion once no reader holds this segment.
    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// Reads every row back, in file order.
    pub fn read(&self) -> Result<Vec<RecordBatch>, SegmentError> {
        read_segment(&self.path)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.removed.load(Ordering::Acquire)
            && let Err(e) = fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not delete an expired segment");
        }
    }
}

/// Writes `batches` (rows of hour `partition` of one stream, in the hot store's `schema`)
/// to `data_dir/file` as a sorted, compressed Parquet file: temp file, fsync, rename. The
/// caller fsyncs the directory (once for many files). Returns the segment's manifest
/// entry, covering records up to `through_seq`; `None` for no rows.
pub fn write_segment(
    data_dir: &Path,
    file: String,
    partition: TimestampMs,
    through_seq: u64,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Option<SegmentMeta>, SegmentError> {
    let path = data_dir.join(&file);
    let path = path.as_path();
    let format = |message: String| SegmentError::Format {
        path: path.to_owned(),
        message,
    };
    let all = concat_batches(schema, batches).map_err(|e| format(e.to_string()))?;
    if all.num_rows() == 0 {
        return Ok(None);
    }
    let sorted = sort_by_tags_then_ts(&all).map_err(|e| format(e.to_string()))?;
    let ts = sorted.column(1).as_primitive::<TimestampMillisecondType>();
    let (min_ts, max_ts) = ts
        .values()
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));

    let bytes = write_parquet(path, &sorted)?;
    Ok(Some(SegmentMeta {
        file,
        partition,
        min_ts,
        max_ts,
        rows: all.num_rows() as u64,
        bytes,
        through_seq,
    }))
}

/// Writes `batch` to `path` as one Parquet file (zstd, dictionaries, page statistics, row
/// groups of [`ROW_GROUP_ROWS`]): temporary name, fsync, rename. The caller fsyncs the
/// directory. Returns the file's size.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<u64, SegmentError> {
    let format = |message: String| SegmentError::Format {
        path: path.to_owned(),
        message,
    };
    let io = |what: &'static str| {
        move |source| SegmentError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let tmp = path.with_extension("parquet.tmp");
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
    }
    let out = File::create(&tmp).map_err(io("creating"))?;
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(properties))
        .map_err(|e| format(e.to_string()))?;
    writer.write(batch).map_err(|e| format(e.to_string()))?;
    let out = writer.into_inner().map_err(|e| format(e.to_string()))?;
    out.sync_all().map_err(io("syncing"))?;
    let bytes = out.metadata().map_err(io("measuring"))?.len();
    drop(out);
    fs::rename(&tmp, path).map_err(io("renaming into place"))?;
    Ok(bytes)
}

/// Reads a Parquet file back as record batches in the schema it was written with (for a
/// segment, the hot store's).
pub fn read_segment(path: &Path) -> Result<Vec<RecordBatch>, SegmentError> {
    let format = |message: String| SegmentError::Format {
        path: path.to_owned(),
        message,
    };
    let file = File::open(path).map_err(|source| SegmentError::Io {
        what: "opening",
        path: path.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| format(e.to_string()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format(e.to_string()))
}

/// Sorts rows by every tag column (the dictionary columns; nulls first), then `ts`, then
/// id: the order that makes tag statistics selective and runs of equal tags compress.
fn sort_by_tags_then_ts(batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    // Columns: id, ts, tags..., fields...
    let is_tag = |i: &usize| {
        matches!(
            batch.schema().field(*i).data_type(),
            DataType::Dictionary(..)
        )
    };
    let mut columns: Vec<SortColumn> = (2..batch.num_columns())
        .take_while(is_tag)
        .map(|i| SortColumn {
            values: Arc::clone(batch.column(i)),
            options: None,
        })
        .collect();
    for i in [1, 0] {
        columns.push(SortColumn {
            values: Arc::clone(batch.column(i)),
            options: None,
        });
    }
    let indices = lexsort_to_indices(&columns, None)?;
    take_record_batch(batch, &indices)
}
