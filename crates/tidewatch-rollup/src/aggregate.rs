//! Mergeable partial aggregate states, one struct per kind, and [`AggState`] which holds any
//! of them for one aggregate of one window cell.
//!
//! Every state starts empty, takes inputs one at a time and has `merge(&mut self, other)`
//! such that merging the states of two input sets gives the state of their union. Counts,
//! min, max, first, last and distinct merge exactly (commutative and associative bit for
//! bit); float sums and moments merge up to rounding. All states are serde-serializable so
//! open windows can be snapshotted, and have an exact binary encoding for checkpoints
//! (`AggState::encode` writes every field, floats bit for bit).

use serde::{Deserialize, Serialize};
use tidewatch_types::batch::NULL_TAG;
use tidewatch_types::{EventBatch, EventId, FieldColumn, StreamSchema};

use crate::codec::{Reader, Writer};
use crate::hll::{self, HyperLogLog};
use crate::spec::{AggregateExpr, Column, bind_arguments};
use crate::{Error, Result};

/// A float sum with Neumaier compensation: `sum + comp` is the total, `comp` collects the
/// low-order bits that plain addition would drop. Keeps sums of many prices accurate and
/// nearly independent of the order they are added in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct CompensatedSum {
    sum: f64,
    comp: f64,
}

impl CompensatedSum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        // Once the sum overflows, the compensation term would turn into NaN (inf - inf);
        // leave it alone so the total stays the infinity it is.
        if t.is_finite() {
            if self.sum.abs() >= x.abs() {
                self.comp += (self.sum - t) + x;
            } else {
                self.comp += (x - t) + self.sum;
            }
        }
        self.sum = t;
    }

    fn merge(&mut self, other: &Self) {
        self.add(other.sum);
        self.comp += other.comp;
    }

    fn total(&self) -> f64 {
        self.sum + self.comp
    }

    fn encode(&self, w: &mut Writer) {
        w.f64(self.sum);
        w.f64(self.comp);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(CompensatedSum {
            sum: r.f64()?,
            comp: r.f64()?,
        })
    }
}

/// `count` and `count(f)`: the number of (non-null) inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    n: u64,
}

impl Count {
    pub fn add(&mut self) {
        self.n = self.n.saturating_add(1);
    }

    pub fn merge(&mut self, other: &Self) {
        self.n = self.n.saturating_add(other.n);
    }

    pub fn count(&self) -> u64 {
        self.n
    }
}

/// `sum(f)`: null until the first value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sum {
    n: u64,
    total: CompensatedSum,
}

impl Sum {
    pub fn add(&mut self, x: f64) {
        self.n = self.n.saturating_add(1);
        self.total.add(x);
    }

    pub fn merge(&mut self, other: &Self) {
        self.n = self.n.saturating_add(other.n);
        self.total.merge(&other.total);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.total.total())
    }
}

/// `mean(f)`: sum / count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    sum: Sum,
}

impl Mean {
    pub fn add(&mut self, x: f64) {
        self.sum.add(x);
    }

    pub fn merge(&mut self, other: &Self) {
        self.sum.merge(&other.sum);
    }

    pub fn value(&self) -> Option<f64> {
        self.sum.value().map(|total| total / self.sum.n as f64)
    }
}

/// `min(f)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Min {
    value: Option<f64>,
}

impl Min {
    pub fn add(&mut self, x: f64) {
        self.value = Some(self.value.map_or(x, |v| v.min(x)));
    }

    pub fn merge(&mut self, other: &Self) {
        if let Some(x) = other.value {
            self.add(x);
        }
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// `max(f)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Max {
    value: Option<f64>,
}

impl Max {
    pub fn add(&mut self, x: f64) {
        self.value = Some(self.value.map_or(x, |v| v.max(x)));
    }

    pub fn merge(&mut self, other: &Self) {
        if let Some(x) = other.value {
            self.add(x);
        }
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// A value with the position of its row in event order. The event id is split into two
/// `u64`s so the struct is 8-byte aligned: a `u128` would pad every [`AggState`] to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Stamped {
    ts: i64,
    id_hi: u64,
    id_lo: u64,
    value: f64,
}

impl Stamped {
    fn new(ts: i64, id: EventId, value: f64) -> Self {
        Stamped {
            ts,
            id_hi: (id >> 64) as u64,
            id_lo: id as u64,
            value,
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.i64(self.ts);
        w.u64(self.id_hi);
        w.u64(self.id_lo);
        w.f64(self.value);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Stamped {
            ts: r.i64()?,
            id_hi: r.u64()?,
            id_lo: r.u64()?,
            value: r.f64()?,
        })
    }

    /// Event order, with the value as a last tie-break so that even duplicate
    /// `(ts, id)` pairs select deterministically (a total order makes min/max selection
    /// commutative and associative).
    fn cmp_key(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.id_hi, self.id_lo)
            .cmp(&(other.ts, other.id_hi, other.id_lo))
            .then(self.value.total_cmp(&other.value))
    }
}

/// `first(f)`: the value of the earliest row by `(ts, event id)`, whatever the arrival
/// order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct First {
    best: Option<Stamped>,
}

impl First {
    pub fn add(&mut self, ts: i64, id: EventId, value: f64) {
        self.offer(Stamped::new(ts, id, value));
    }

    fn offer(&mut self, candidate: Stamped) {
        if self
            .best
            .is_none_or(|best| candidate.cmp_key(&best).is_lt())
        {
            self.best = Some(candidate);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if let Some(candidate) = other.best {
            self.offer(candidate);
        }
    }

    pub fn value(&self) -> Option<f64> {
        self.best.map(|b| b.value)
    }
}

/// `last(f)`: the value of the latest row by `(ts, event id)`, whatever the arrival order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Last {
    best: Option<Stamped>,
}

impl Last {
    pub fn add(&mut self, ts: i64, id: EventId, value: f64) {
        self.offer(Stamped::new(ts, id, value));
    }

    fn offer(&mut self, candidate: Stamped) {
        if self
            .best
            .is_none_or(|best| candidate.cmp_key(&best).is_gt())
        {
            self.best = Some(candidate);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if let Some(candidate) = other.best {
            self.offer(candidate);
        }
    }

    pub fn value(&self) -> Option<f64> {
        self.best.map(|b| b.value)
    }
}

/// `variance(f)` and `stddev(f)`: count, mean and M2 (sum of squared deviations from the
/// mean), updated with Welford's method and merged with Chan et al.'s parallel formula.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.n = self.n.saturating_add(1);
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(&mut self, other: &Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        // Both expressions are symmetric in (self, other), so merge is exactly commutative.
        self.mean = (na * self.mean + nb * other.mean) / n;
        self.m2 = (self.m2 + other.m2) + delta * delta * (na * nb / n);
        self.n = self.n.saturating_add(other.n);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Sample variance (n - 1 in the denominator); null below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2.max(0.0) / (self.n - 1) as f64)
    }

    pub fn stddev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// `vwap(p, q)`: sum(p * q) / sum(q) over rows where both are present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Vwap {
    notional: CompensatedSum,
    quantity: CompensatedSum,
}

impl Vwap {
    pub fn add(&mut self, price: f64, quantity: f64) {
        self.notional.add(price * quantity);
        self.quantity.add(quantity);
    }

    pub fn merge(&mut self, other: &Self) {
        self.notional.merge(&other.notional);
        self.quantity.merge(&other.quantity);
    }

    /// Null when no quantity traded (including no rows).
    pub fn value(&self) -> Option<f64> {
        let quantity = self.quantity.total();
        (quantity != 0.0).then(|| self.notional.total() / quantity)
    }
}

/// The partial state of one aggregate in one window cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggState {
    Count(Count),
    Sum(Sum),
    Min(Min),
    Max(Max),
    Mean(Mean),
    First(First),
    Last(Last),
    Variance(Moments),
    Stddev(Moments),
    Vwap(Vwap),
    Distinct(HyperLogLog),
}

impl AggState {
    /// The empty state for `expr`.
    pub fn new(expr: &AggregateExpr) -> AggState {
        match expr {
            AggregateExpr::Count | AggregateExpr::CountField(_) => {
                AggState::Count(Count::default())
            }
            AggregateExpr::Sum(_) => AggState::Sum(Sum::default()),
            AggregateExpr::Min(_) => AggState::Min(Min::default()),
            AggregateExpr::Max(_) => AggState::Max(Max::default()),
            AggregateExpr::Mean(_) => AggState::Mean(Mean::default()),
            AggregateExpr::First(_) => AggState::First(First::default()),
            AggregateExpr::Last(_) => AggState::Last(Last::default()),
            AggregateExpr::Variance(_) => AggState::Variance(Moments::default()),
            AggregateExpr::Stddev(_) => AggState::Stddev(Moments::default()),
            AggregateExpr::Vwap { .. } => AggState::Vwap(Vwap::default()),
            AggregateExpr::DistinctCount(_) => AggState::Distinct(HyperLogLog::new()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AggState::Count(_) => "count",
            AggState::Sum(_) => "sum",
            AggState::Min(_) => "min",
            AggState::Max(_) => "max",
            AggState::Mean(_) => "mean",
            AggState::First(_) => "first",
            AggState::Last(_) => "last",
            AggState::Variance(_) => "variance",
            AggState::Stddev(_) => "stddev",
            AggState::Vwap(_) => "vwap",
            AggState::Distinct(_) => "distinct",
        }
    }

    /// The aggregate's current result; `None` is null.
    pub fn value(&self) -> Option<f64> {
        match self {
            AggState::Count(s) => Some(s.count() as f64),
            AggState::Sum(s) => s.value(),
            AggState::Min(s) => s.value(),
            AggState::Max(s) => s.value(),
            AggState::Mean(s) => s.value(),
            AggState::First(s) => s.value(),
            AggState::Last(s) => s.value(),
            AggState::Variance(s) => s.variance(),
            AggState::Stddev(s) => s.stddev(),
            AggState::Vwap(s) => s.value(),
            AggState::Distinct(s) => Some(s.estimate()),
        }
    }

    /// Folds `other` in. Both must be states of the same kind of aggregate.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        match (&mut *self, other) {
            (AggState::Count(a), AggState::Count(b)) => a.merge(b),
            (AggState::Sum(a), AggState::Sum(b)) => a.merge(b),
            (AggState::Min(a), AggState::Min(b)) => a.merge(b),
            (AggState::Max(a), AggState::Max(b)) => a.merge(b),
            (AggState::Mean(a), AggState::Mean(b)) => a.merge(b),
            (AggState::First(a), AggState::First(b)) => a.merge(b),
            (AggState::Last(a), AggState::Last(b)) => a.merge(b),
            (AggState::Variance(a), AggState::Variance(b)) => a.merge(b),
            (AggState::Stddev(a), AggState::Stddev(b)) => a.merge(b),
            (AggState::Vwap(a), AggState::Vwap(b)) => a.merge(b),
            (AggState::Distinct(a), AggState::Distinct(b)) => a.merge(b),
            (into, from) => {
                return Err(Error::StateMismatch {
                    from: from.kind(),
                    into: into.kind(),
                });
            }
        }
        Ok(())
    }

    /// The kind's code in checkpoints. Stable: a new kind takes a new code.
    pub(crate) fn kind_code(&self) -> u8 {
        match self {
            AggState::Count(_) => 0,
            AggState::Sum(_) => 1,
            AggState::Min(_) => 2,
            AggState::Max(_) => 3,
            AggState::Mean(_) => 4,
            AggState::First(_) => 5,
            AggState::Last(_) => 6,
            AggState::Variance(_) => 7,
            AggState::Stddev(_) => 8,
            AggState::Vwap(_) => 9,
            AggState::Distinct(_) => 10,
        }
    }

    /// Appends the state's checkpoint encoding: every field, floats bit for bit, so a
    /// decoded state continues exactly as this one would. The kind itself is not written;
    /// the checkpoint's spec determines it.
    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            AggState::Count(s) => w.u64(s.n),
            AggState::Sum(s) | AggState::Mean(Mean { sum: s }) => {
                w.u64(s.n);
                s.total.encode(w);
            }
            AggState::Min(Min { value }) | AggState::Max(Max { value }) => {
                w.option(*value, Writer::f64);
            }
            AggState::First(First { best }) | AggState::Last(Last { best }) => {
                w.option(best.as_ref(), |w, b| b.encode(w));
            }
            AggState::Variance(s) | AggState::Stddev(s) => {
                w.u64(s.n);
                w.f64(s.mean);
                w.f64(s.m2);
            }
            AggState::Vwap(s) => {
                s.notional.encode(w);
                s.quantity.encode(w);
            }
            AggState::Distinct(s) => s.encode(w),
        }
    }

    /// Replaces this state with one read by [`Self::encode`], keeping its kind.
    pub(crate) fn decode_into(&mut self, r: &mut Reader<'_>) -> Result<()> {
        match self {
            AggState::Count(s) => s.n = r.u64()?,
            AggState::Sum(s) | AggState::Mean(Mean { sum: s }) => {
                s.n = r.u64()?;
                s.total = CompensatedSum::decode(r)?;
            }
            AggState::Min(Min { value }) | AggState::Max(Max { value }) => {
                *value = r.option("min/max", Reader::f64)?;
            }
            AggState::First(First { best }) | AggState::Last(Last { best }) => {
                *best = r.option("first/last", Stamped::decode)?;
            }
            AggState::Variance(s) | AggState::Stddev(s) => {
                s.n = r.u64()?;
                s.mean = r.f64()?;
                s.m2 = r.f64()?;
            }
            AggState::Vwap(s) => {
                s.notional = CompensatedSum::decode(r)?;
                s.quantity = CompensatedSum::decode(r)?;
            }
            AggState::Distinct(s) => *s = HyperLogLog::decode(r)?,
        }
        Ok(())
    }

    /// Folds one row's input in. `input` comes from the [`Binding`] of the same aggregate,
    /// so its shape always matches the state; `Skip` (a null) leaves the state unchanged.
    #[inline]
    pub(crate) fn update(&mut self, input: RowInput, ts: i64, id: EventId) {
        match (self, input) {
            (_, RowInput::Skip) => {}
            (AggState::Count(s), RowInput::Present) => s.add(),
            (AggState::Sum(s), RowInput::Num(x)) => s.add(x),
            (AggState::Min(s), RowInput::Num(x)) => s.add(x),
            (AggState::Max(s), RowInput::Num(x)) => s.add(x),
            (AggState::Mean(s), RowInput::Num(x)) => s.add(x),
            (AggState::First(s), RowInput::Num(x)) => s.add(ts, id, x),
            (AggState::Last(s), RowInput::Num(x)) => s.add(ts, id, x),
            (AggState::Variance(s) | AggState::Stddev(s), RowInput::Num(x)) => s.add(x),
            (AggState::Vwap(s), RowInput::Pair(p, q)) => s.add(p, q),
            (AggState::Distinct(s), RowInput::Hash(h)) => s.insert_hash(h),
            (state, input) => {
                debug_assert!(false, "{} state fed {input:?}", state.kind());
            }
        }
    }
}

/// One row's input to one aggregate, read once per row and fed to every width's cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowInput {
    /// Null input: the row does not count for this aggregate.
    Skip,
    /// The row counts (for `count`).
    Present,
    Num(f64),
    Pair(f64, f64),
    Hash(u64),
}

/// Where one aggregate reads its input in a batch: the expression bound to column indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    Count,
    CountPresent(Column),
    Num(usize),
    Pair(usize, usize),
    /// Distinct over a tag; hashes come from the per-batch dictionary memo.
    DistinctTag(usize),
    DistinctField(usize),
}

impl Binding {
    pub(crate) fn new(name: &str, expr: &AggregateExpr, schema: &StreamSchema) -> Result<Self> {
        let columns = bind_arguments(name, expr, schema)?;
        let field = |i: usize| match columns.get(i) {
            Some(&Column::Field(index, _)) => Ok(index),
            // Validation guarantees numeric arguments are fields; stay total anyway.
            _ => Err(Error::InvalidExpression {
                expr: expr.to_string(),
                reason: "argument is not a field".into(),
            }),
        };
        Ok(match expr {
            AggregateExpr::Count => Binding::Count,
            AggregateExpr::CountField(_) => match columns.first() {
                Some(&column) => Binding::CountPresent(column),
                None => Binding::Count,
            },
            AggregateExpr::Vwap { .. } => Binding::Pair(field(0)?, field(1)?),
            AggregateExpr::DistinctCount(_) => match columns.first() {
                Some(&Column::Tag(index)) => Binding::DistinctTag(index),
                Some(&Column::Field(index, _)) => Binding::DistinctField(index),
                None => {
                    return Err(Error::InvalidExpression {
                        expr: expr.to_string(),
                        reason: "missing argument".into(),
                    });
                }
            },
            _ => Binding::Num(field(0)?),
        })
    }

    /// The input of `row`. `tag_hashes[t][key]` is the hash of dictionary entry `key` of tag
    /// column `t` in this batch (filled for tags that `distinct` reads).
    #[inline]
    pub(crate) fn input(
        &self,
        batch: &EventBatch,
        row: usize,
        tag_hashes: &[Vec<u64>],
    ) -> RowInput {
        match *self {
            Binding::Count => RowInput::Present,
            Binding::CountPresent(Column::Field(index, _)) => match batch.fields.get(index) {
                Some(column) if !column.is_null(row) => RowInput::Present,
                _ => RowInput::Skip,
            },
            Binding::CountPresent(Column::Tag(index)) => {
                match batch.tags.get(index).and_then(|t| t.value(row)) {
                    Some(_) => RowInput::Present,
                    None => RowInput::Skip,
                }
            }
            Binding::Num(index) => match number(batch, index, row) {
                Some(x) => RowInput::Num(x),
                None => RowInput::Skip,
            },
            Binding::Pair(price, quantity) => {
                match (number(batch, price, row), number(batch, quantity, row)) {
                    (Some(p), Some(q)) => RowInput::Pair(p, q),
                    _ => RowInput::Skip,
                }
            }
            Binding::DistinctTag(index) => {
                let key = batch
                    .tags
                    .get(index)
                    .and_then(|t| t.keys.get(row))
                    .copied()
                    .unwrap_or(NULL_TAG);
                let hash = tag_hashes
                    .get(index)
                    .and_then(|hashes| hashes.get(key as usize));
                match hash {
                    Some(&h) => RowInput::Hash(h),
                    None => RowInput::Skip,
                }
            }
            Binding::DistinctField(index) => match batch.fields.get(index) {
                Some(column) => match field_hash(column, row) {
                    Some(h) => RowInput::Hash(h),
                    None => RowInput::Skip,
                },
                None => RowInput::Skip,
            },
        }
    }

    /// The tag column whose dictionary must be hashed for this batch, if any.
    pub(crate) fn hashed_tag(&self) -> Option<usize> {
        match *self {
            Binding::DistinctTag(index) => Some(index),
            _ => None,
        }
    }
}

/// A numeric field value; NaN counts as null so it cannot poison min/max/first/last.
#[inline]
fn number(batch: &EventBatch, index: usize, row: usize) -> Option<f64> {
    batch
        .fields
        .get(index)
        .and_then(|column| column.as_f64(row))
        .filter(|x| !x.is_nan())
}

/// The stable hash of a field value, `None` for null (and NaN).
fn field_hash(column: &FieldColumn, row: usize) -> Option<u64> {
    match column {
        FieldColumn::F64(values) => values
            .get(row)
            .copied()
            .flatten()
            .filter(|x| !x.is_nan())
            .map(hll::hash_f64),
        FieldColumn::I64(values) => values.get(row).copied().flatten().map(hll::hash_i64),
        FieldColumn::Bool(values) => values.get(row).copied().flatten().map(hll::hash_bool),
        FieldColumn::Str(values) => values
            .get(row)
            .and_then(|v| v.as_deref())
            .map(hll::hash_str),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One input row: (ts, id, value).
    type Row = (i64, u128, f64);

    fn close(a: Option<f64>, b: Option<f64>, scale: f64) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(scale),
            _ => false,
        }
    }

    fn exprs() -> Vec<AggregateExpr> {
        let f = || "x".to_owned();
        vec![
            AggregateExpr::Count,
            AggregateExpr::Sum(f()),
            AggregateExpr::Min(f()),
            AggregateExpr::Max(f()),
            AggregateExpr::Mean(f()),
            AggregateExpr::First(f()),
            AggregateExpr::Last(f()),
            AggregateExpr::Variance(f()),
            AggregateExpr::Stddev(f()),
            AggregateExpr::Vwap {
                price: f(),
                quantity: "q".into(),
            },
            AggregateExpr::DistinctCount(f()),
        ]
    }

    fn input_for(state: &AggState, value: f64) -> RowInput {
        match state {
            AggState::Count(_) => RowInput::Present,
            // Quantities derived from the value keep vwap's denominator away from zero.
            AggState::Vwap(_) => RowInput::Pair(value, (value.abs() % 7.0) + 1.0),
            // Coarse buckets so sets cross the sparse limit only sometimes.
            AggState::Distinct(_) => RowInput::Hash(hll::hash_i64((value * 4.0) as i64)),
            _ => RowInput::Num(value),
        }
    }

    fn fold(expr: &AggregateExpr, rows: &[Row]) -> AggState {
        let mut state = AggState::new(expr);
        for &(ts, id, value) in rows {
            let input = input_for(&state, value);
            state.update(input, ts, id);
        }
        state
    }

    fn merged(mut a: AggState, b: &AggState) -> AggState {
        a.merge(b).unwrap();
        a
    }

    /// Whether two states give the same result: exactly for the order-free kinds, within
    /// 1e-9 relative (to the magnitude of the data) for float sums and moments.
    fn agrees(a: &AggState, b: &AggState, scale: f64) -> bool {
        match (a, b) {
            (AggState::Sum(_), _)
            | (AggState::Mean(_), _)
            | (AggState::Vwap(_), _)
            | (AggState::Variance(_), _)
            | (AggState::Stddev(_), _) => close(a.value(), b.value(), scale),
            _ => a == b,
        }
    }

    fn rows() -> impl Strategy<Value = Vec<Row>> {
        // Few distinct timestamps and ids so that ties in event order are exercised.
        prop::collection::vec((0i64..20, 0u128..4, -1_000.0f64..1_000.0), 0..400)
    }

    proptest! {
        #[test]
        fn merge_of_parts_equals_fold_of_all(
            all in rows(),
            cut1 in any::<prop::sample::Index>(),
            cut2 in any::<prop::sample::Index>(),
        ) {
            let i = cut1.index(all.len() + 1);
            let j = i + cut2.index(all.len() - i + 1);
            let (left, right) = all.split_at(i);
            let (mid, tail) = right.split_at(j - i);
            // Scale for tolerances: sums and moments of values up to 1e3 in size.
            let scale = all.iter().map(|r| r.2 * r.2).sum::<f64>().max(1.0);
            for expr in exprs() {
                let whole = fold(&expr, &all);
                let (l, r) = (fold(&expr, left), fold(&expr, right));
                prop_assert!(agrees(&merged(l.clone(), &r), &whole, scale), "{expr}: split");
                // Commutative.
                let lr = merged(l.clone(), &r);
                let rl = merged(r.clone(), &l);
                prop_assert!(agrees(&lr, &rl, scale), "{expr}: commutative");
                // Associative.
                let (a, b, c) = (fold(&expr, left), fold(&expr, mid), fold(&expr, tail));
                let ab_c = merged(merged(a.clone(), &b), &c);
                let a_bc = merged(a, &merged(b, &c));
                prop_assert!(agrees(&ab_c, &a_bc, scale), "{expr}: associative");
                prop_assert!(agrees(&ab_c, &whole, scale), "{expr}: three parts");
                // Merging an empty state changes nothing.
                let with_empty = merged(whole.clone(), &AggState::new(&expr));
                prop_assert_eq!(&with_empty, &whole, "{}: empty", expr);
            }
        }

        #[test]
        fn results_match_direct_computation(all in rows()) {
            let values: Vec<f64> = all.iter().map(|r| r.2).collect();
            let n = values.len();
            let scale = values.iter().map(|v| v * v).sum::<f64>().max(1.0);
            let total: f64 = values.iter().sum();
            let sum_state = fold(&AggregateExpr::Sum("x".into()), &all);
            prop_assert!(close(sum_state.value(), (n > 0).then_some(total), scale));
            let var = fold(&AggregateExpr::Variance("x".into()), &all);
            let direct = (n >= 2).then(|| {
                let mean = total / n as f64;
                values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64
            });
            prop_assert!(close(var.value(), direct, scale));
            let first = fold(&AggregateExpr::First("x".into()), &all);
            let expected = all
                .iter()
                .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)))
                .map(|r| r.2);
            prop_assert_eq!(first.value(), expected);
        }
    }

    #[test]
    fn states_stay_small() {
        // Cells hold one state per aggregate; keep them compact.
        assert!(std::mem::size_of::<AggState>() <= 48);
    }

    #[test]
    fn empty_states_are_null_and_counts_zero() {
        for expr in exprs() {
            let value = AggState::new(&expr).value();
            match expr {
                AggregateExpr::Count | AggregateExpr::DistinctCount(_) => {
                    assert_eq!(value, Some(0.0), "{expr}")
                }
                _ => assert_eq!(value, None, "{expr}"),
            }
        }
    }

    #[test]
    fn variance_needs_two_values_and_vwap_needs_quantity() {
        let mut m = Moments::default();
        m.add(3.0);
        assert_eq!(m.variance(), None);
        m.add(5.0);
        assert_eq!(m.variance(), Some(2.0));
        assert_eq!(m.stddev(), Some(2.0f64.sqrt()));

        let mut v = Vwap::default();
        v.add(100.0, 0.0);
        assert_eq!(v.value(), None);
        v.add(110.0, 2.0);
        assert_eq!(v.value(), Some(110.0));
        // Offsetting quantities sum to zero: null rather than a division by zero.
        v.add(90.0, -2.0);
        assert_eq!(v.value(), None);
    }

    #[test]
    fn first_and_last_ignore_arrival_order() {
        let mut first = First::default();
        let mut last = Last::default();
        for (ts, id, v) in [(20, 1, 2.0), (10, 9, 1.0), (30, 0, 3.0), (10, 8, 0.5)] {
            first.add(ts, id, v);
            last.add(ts, id, v);
        }
        assert_eq!(first.value(), Some(0.5));
        assert_eq!(last.value(), Some(3.0));
        // Equal timestamps are ordered by the whole 128-bit event id.
        let mut first = First::default();
        let mut last = Last::default();
        for (id, v) in [
            (1u128 << 64, 1.0),
            (u128::from(u64::MAX), 2.0),
            ((1 << 64) + 1, 3.0),
        ] {
            first.add(5, id, v);
            last.add(5, id, v);
        }
        assert_eq!(first.value(), Some(2.0));
        assert_eq!(last.value(), Some(3.0));
    }

    #[test]
    fn compensated_sum_survives_overflow_and_cancellation() {
        let mut s = Sum::default();
        for x in [1e16, 1.0, -1e16, 1.0] {
            s.add(x);
        }
        assert_eq!(s.value(), Some(2.0));
        let mut big = Sum::default();
        big.add(f64::MAX);
        big.add(f64::MAX);
        assert_eq!(big.value(), Some(f64::INFINITY));
    }

    #[test]
    fn mismatched_merge_is_an_error() {
        let mut a = AggState::new(&AggregateExpr::Count);
        let b = AggState::new(&AggregateExpr::Sum("x".into()));
        assert_eq!(
            a.merge(&b),
            Err(Error::StateMismatch {
                from: "sum",
                into: "count"
            })
        );
    }

    #[test]
    fn states_round_trip_through_serde() {
        let rows: Vec<Row> = (0..300)
            .map(|i| (i, i as u128, (i % 17) as f64 * 1.5))
            .collect();
        for expr in exprs() {
            let state = fold(&expr, &rows);
            let json = serde_json::to_string(&state).unwrap();
            let back: AggState = serde_json::from_str(&json).unwrap();
            assert_eq!(back, state, "{expr}: {json:.200}");
        }
    }
}
