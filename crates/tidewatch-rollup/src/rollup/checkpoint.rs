//! Checkpoints: the whole state of a [`Rollup`] as bytes ([`Rollup::checkpoint`]) and back
//! ([`Rollup::restore`]), so a restart replays only the WAL after the checkpoint.
//!
//! Layout (integers little-endian, counts `u64`, strings a count and UTF-8, floats their
//! bits; see `codec`):
//!
//! ```text
//! magic "TWROLLUP" | version u32
//! spec:    name | group_by: count, tags | windows: count, seconds u32 each
//!          | aggregates: count, (name, expression text, kind u8) each
//! clock:   max_ts (0 | 1 i64) | late_dropped u64
//! groups:  arity u64 | count | per group in id order: per tag (0 = null | 1 str)
//! widths:  per spec window: seconds u32 | evicted_before i64
//!          | per group in id order: cell count, per cell oldest first:
//!            start i64, per aggregate in spec order its state (AggState::encode)
//! crc32c u32 of everything before it
//! ```
//!
//! Not saved, because none of it changes what a rollup computes next: the per-call report
//! marks (they only deduplicate changes within one `apply`), the pool of spare state arrays,
//! scratch buffers, and evicted rows not yet taken (output, not state).

use std::sync::Arc;

use tidewatch_types::{StreamSchema, WindowWidth};

use super::Rollup;
use crate::aggregate::AggState;
use crate::codec::{Reader, Writer, invalid};
use crate::group::GroupKey;
use crate::spec::AggregateExpr;
use crate::window::window_bounds;
use crate::{Result, RollupConfig, RollupSpec};

/// Opens every rollup checkpoint.
const MAGIC: [u8; 8] = *b"TWROLLUP";
/// The layout this build writes and reads. Any change to the layout takes a new version;
/// an older checkpoint is then refused and the rollup recomputed.
pub(crate) const CHECKPOINT_VERSION: u32 = 1;
const HEADER_BYTES: usize = MAGIC.len() + 4;
const CRC_BYTES: usize = 4;
/// Smallest encoding of a string or of a counted list: its count.
const COUNT_BYTES: usize = 8;
/// Smallest encoding of a cell: its start.
const CELL_START_BYTES: usize = 8;

impl Rollup {
    /// The complete state of the rollup, to be restored with [`Rollup::restore`]: the
    /// watermark clock, `late_dropped`, the groups in id order (so [`crate::GroupId`]s stay
    /// valid), each width's eviction horizon, and every cell with every aggregate state bit
    /// for bit. A restored rollup then behaves exactly as this one would: same rows, same
    /// changes, same drops. Evicted rows not yet taken with [`Self::take_evicted`] are not
    /// included: drain them first. The layout is versioned and ends with a CRC32C.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.checkpoint_size_hint());
        w.raw(&MAGIC);
        w.u32(CHECKPOINT_VERSION);
        self.encode_spec(&mut w);
        w.option(self.max_ts, Writer::i64);
        w.u64(self.late_dropped);

        w.len(self.spec.group_by.len());
        w.len(self.groups.len());
        for (_, key) in self.groups.iter() {
            debug_assert_eq!(key.len(), self.spec.group_by.len());
            for value in key.iter() {
                w.option(value.as_deref(), Writer::str);
            }
        }

        for width in &self.widths {
            w.u32(width.width.seconds());
            w.i64(width.evicted_before);
            for group in 0..self.groups.len() {
                w.len(width.cells.group_len(group));
                for cell in width.cells.range(group, None, None) {
                    w.i64(cell.start);
                    for state in cell.states {
                        state.encode(&mut w);
                    }
                }
            }
        }

        let crc = crc32c::crc32c(&w.bytes);
        w.u32(crc);
        w.bytes
    }

    /// A rollup with the state `bytes` (from [`Rollup::checkpoint`]) holds. Validates
    /// `spec` and `config` like [`Rollup::new`], then refuses with
    /// [`crate::Error::Checkpoint`] anything it cannot load exactly: bytes that are not a
    /// checkpoint, another version, a failed checksum, a truncated or malformed body, or a
    /// checkpoint taken under a different spec (name, `group_by`, windows or aggregates) —
    /// the caller then recomputes the rollup from events instead.
    ///
    /// `config` may differ from the one the checkpoint was taken under: the watermark
    /// follows the new lateness at once, and a smaller retention evicts the surplus windows
    /// when the watermark next enters a new window. Evicted rows are not kept until
    /// [`Self::set_keep_evicted`] is called again.
    pub fn restore(
        spec: RollupSpec,
        schema: &StreamSchema,
        config: RollupConfig,
        bytes: &[u8],
    ) -> Result<Rollup> {
        let mut rollup = Rollup::new(spec, schema, config)?;
        let mut r = Reader::new(open(bytes)?);
        rollup.check_spec(&mut r)?;
        rollup.max_ts = r.option("max_ts", Reader::i64)?;
        rollup.late_dropped = r.u64()?;
        rollup.decode_groups(&mut r)?;
        for index in 0..rollup.widths.len() {
            rollup.decode_width(index, &mut r)?;
        }
        if r.remaining() != 0 {
            return Err(invalid(format!(
                "{} bytes after the last width",
                r.remaining()
            )));
        }
        Ok(rollup)
    }

    /// A guess at the checkpoint's size, so encoding rarely reallocates.
    fn checkpoint_size_hint(&self) -> usize {
        let per_cell = CELL_START_BYTES + 24 * self.spec.aggregates.len();
        let groups = self.groups.len() * (COUNT_BYTES * self.widths.len() + 16);
        256 + groups + self.cell_count() * per_cell
    }

    fn encode_spec(&self, w: &mut Writer) {
        w.str(&self.spec.name);
        w.len(self.spec.group_by.len());
        for tag in &self.spec.group_by {
            w.str(tag);
        }
        w.len(self.spec.windows.len());
        for width in &self.spec.windows {
            w.u32(width.seconds());
        }
        w.len(self.spec.aggregates.len());
        for (name, expr) in self.spec.aggregates.iter() {
            w.str(name);
            w.str(&expr.to_string());
            w.u8(AggState::new(expr).kind_code());
        }
    }

    /// Reads the spec section and compares it with the rollup's own spec.
    fn check_spec(&self, r: &mut Reader<'_>) -> Result<()> {
        let spec = &self.spec;
        let name = r.str("rollup name")?;
        if name != spec.name {
            return Err(invalid(format!(
                "taken for rollup {name:?}, not {:?}",
                spec.name
            )));
        }

        let count = r.len(COUNT_BYTES, "group_by")?;
        let mut group_by = Vec::with_capacity(count);
        for _ in 0..count {
            group_by.push(r.str("group_by tag")?);
        }
        if group_by != spec.group_by {
            return Err(changed("group_by", &group_by, &spec.group_by));
        }

        let count = r.len(4, "windows")?;
        let mut windows = Vec::with_capacity(count);
        for _ in 0..count {
            let seconds = r.u32()?;
            let width = WindowWidth::from_seconds(seconds)
                .ok_or_else(|| invalid(format!("window of {seconds} s")))?;
            windows.push(width);
        }
        if windows != spec.windows {
            let render = |widths: &[WindowWidth]| -> Vec<String> {
                widths.iter().map(ToString::to_string).collect()
            };
            return Err(changed(
                "windows",
                &render(&windows),
                &render(&spec.windows),
            ));
        }

        let count = r.len(2 * COUNT_BYTES + 1, "aggregates")?;
        let mut aggregates = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.str("aggregate name")?;
            let text = r.str("aggregate expression")?;
            let expr: AggregateExpr = text
                .parse()
                .map_err(|_| invalid(format!("aggregate {name:?}: unreadable {text:?}")))?;
            let kind = r.u8()?;
            if kind != AggState::new(&expr).kind_code() {
                return Err(invalid(format!(
                    "aggregate {name:?} = {expr}: state kind {kind} is not {}'s",
                    expr.function()
                )));
            }
            aggregates.push((name, expr));
        }
        if !aggregates
            .iter()
            .map(|(n, e)| (*n, e))
            .eq(spec.aggregates.iter())
        {
            let render = |pairs: &mut dyn Iterator<Item = (&str, &AggregateExpr)>| {
                pairs
                    .map(|(name, expr)| format!("{name} = {expr}"))
                    .collect::<Vec<_>>()
            };
            return Err(changed(
                "aggregates",
                &render(&mut aggregates.iter().map(|(n, e)| (*n, e))),
                &render(&mut spec.aggregates.iter()),
            ));
        }
        Ok(())
    }

    fn decode_groups(&mut self, r: &mut Reader<'_>) -> Result<()> {
        let arity = r.u64()?;
        let tags = self.spec.group_by.len();
        if usize::try_from(arity).ok() != Some(tags) {
            return Err(invalid(format!(
                "groups have {arity} values, group_by has {tags} tags"
            )));
        }
        // Each value takes at least its presence flag; no group_by allows one (empty) group.
        let count = r.len(tags, "groups")?;
        for index in 0..count {
            let key = (0..tags)
                .map(|_| r.option("group value", |r| r.str("group value").map(Arc::from)))
                .collect::<Result<GroupKey>>()?;
            if self.groups.push_restored(key).is_none() {
                return Err(invalid(format!("group {index} repeats an earlier group")));
            }
        }
        let groups = self.groups.len();
        for width in &mut self.widths {
            width.cells.ensure_groups(groups);
        }
        Ok(())
    }

    fn decode_width(&mut self, index: usize, r: &mut Reader<'_>) -> Result<()> {
        let groups = self.groups.len();
        let Some(width) = self.widths.get_mut(index) else {
            return Ok(());
        };
        let seconds = r.u32()?;
        if seconds != width.width.seconds() {
            return Err(invalid(format!(
                "width {index} is {seconds} s, the spec says {}",
                width.width
            )));
        }
        width.evicted_before = r.i64()?;
        for group in 0..groups {
            let cells = r.len(CELL_START_BYTES, "cells")?;
            for _ in 0..cells {
                let start = r.i64()?;
                if !matches!(window_bounds(width.width, start), Some((s, _)) if s == start) {
                    return Err(invalid(format!(
                        "{start} does not start a {} window",
                        width.width
                    )));
                }
                if start < width.evicted_before {
                    return Err(invalid(format!(
                        "{} window {start} lies before the eviction horizon {}",
                        width.width, width.evicted_before
                    )));
                }
                let states = width.cells.restore_cell(group, start).ok_or_else(|| {
                    invalid(format!(
                        "{} windows of group {group} out of order at {start}",
                        width.width
                    ))
                })?;
                for state in states.iter_mut() {
                    state.decode_into(r)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks the frame (magic, version, checksum) and returns the body between header and
/// checksum.
fn open(bytes: &[u8]) -> Result<&[u8]> {
    if bytes.len() < HEADER_BYTES + CRC_BYTES {
        return Err(invalid(format!(
            "truncated: {} bytes, a checkpoint has at least {}",
            bytes.len(),
            HEADER_BYTES + CRC_BYTES
        )));
    }
    let Some((content, stored)) = bytes.split_last_chunk::<CRC_BYTES>() else {
        return Err(invalid("truncated: no checksum"));
    };
    let mut header = Reader::new(content);
    if header.raw(MAGIC.len())? != MAGIC {
        return Err(invalid("not a rollup checkpoint (bad magic)"));
    }
    let version = header.u32()?;
    if version != CHECKPOINT_VERSION {
        return Err(invalid(format!(
            "version {version}, this build reads version {CHECKPOINT_VERSION}"
        )));
    }
    let stored = u32::from_le_bytes(*stored);
    let computed = crc32c::crc32c(content);
    if stored != computed {
        return Err(invalid(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    header.raw(header.remaining())
}

/// The error for a checkpoint taken under a different spec.
fn changed<A: std::fmt::Debug + ?Sized, B: std::fmt::Debug + ?Sized>(
    what: &str,
    checkpoint: &A,
    spec: &B,
) -> crate::Error {
    invalid(format!(
        "{what} changed since the checkpoint: {checkpoint:?} then, {spec:?} now"
    ))
}
