//! HyperLogLog distinct counting, and the stable hash that feeds it.
//!
//! The sketch has precision 12: 4096 registers of 6 bits (stored as bytes), a standard error
//! of about 1.6%. Small sets are kept exactly as a sorted list of hashes ("sparse") and
//! converted to registers ("dense") once they exceed [`SPARSE_LIMIT`] distinct hashes.
//! Dense sketches are read with Ertl's improved estimator, which needs neither bias tables
//! nor a switch-over from linear counting (see `estimate_registers`).
//!
//! Invariant: the state is a pure function of the SET of hashes inserted — sparse with
//! exactly that set while it has at most [`SPARSE_LIMIT`] elements, otherwise dense with each
//! register the maximum rank seen for it. Hence insertion order and merge order never change
//! the state, and `merge` is exactly commutative and associative.
//!
//! Hashes must be stable across processes and Rust versions because states are persisted:
//! FNV-1a over a type tag and the value's canonical bytes, then a splitmix64 finalizer for
//! avalanche (FNV alone mixes short inputs poorly into the high bits used as the index).

use serde::{Deserialize, Deserializer, Serialize};

use crate::codec::{Reader, Writer, invalid};

/// Index bits of the hash.
pub const PRECISION: u32 = 12;
/// Number of registers.
pub const REGISTERS: usize = 1 << PRECISION;
/// Largest possible register value: all 52 remaining bits zero gives rank 53.
pub const MAX_RANK: u8 = (64 - PRECISION + 1) as u8;
/// Most distinct hashes kept exactly before switching to registers.
pub const SPARSE_LIMIT: usize = 256;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Type tags so that equal bytes of different types hash apart.
const TAG_STR: u8 = 1;
const TAG_I64: u8 = 2;
const TAG_F64: u8 = 3;
const TAG_BOOL: u8 = 4;

/// The stable 64-bit hash of `bytes` under type tag `tag`.
fn stable_hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    splitmix64(h)
}

/// The splitmix64 finalizer: a bijective mix with full avalanche.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a string value (tag values and string fields).
pub fn hash_str(value: &str) -> u64 {
    stable_hash(TAG_STR, value.as_bytes())
}

/// Hash of an integer field value.
pub fn hash_i64(value: i64) -> u64 {
    stable_hash(TAG_I64, &value.to_le_bytes())
}

/// Hash of a float field value. `-0.0` hashes as `0.0` and every NaN alike, so values that
/// compare equal (or are all "not a number") count once.
pub fn hash_f64(value: f64) -> u64 {
    let canonical = if value == 0.0 {
        0.0
    } else if value.is_nan() {
        f64::NAN
    } else {
        value
    };
    stable_hash(TAG_F64, &canonical.to_bits().to_le_bytes())
}

/// Hash of a boolean field value.
pub fn hash_bool(value: bool) -> u64 {
    stable_hash(TAG_BOOL, &[u8::from(value)])
}

/// A HyperLogLog sketch with an exact sparse phase. See the module docs for the invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HyperLogLog {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Repr {
    /// Sorted, distinct hashes; at most `SPARSE_LIMIT` of them.
    Sparse(Vec<u64>),
    /// `REGISTERS` ranks, each at most `MAX_RANK`.
    Dense(Vec<u8>),
}

impl Default for HyperLogLog {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperLogLog {
    pub fn new() -> Self {
        HyperLogLog {
            repr: Repr::Sparse(Vec::new()),
        }
    }

    /// Adds one hashed value (use [`hash_str`] and friends).
    pub fn insert_hash(&mut self, hash: u64) {
        match &mut self.repr {
            Repr::Sparse(hashes) => {
                if let Err(pos) = hashes.binary_search(&hash) {
                    hashes.insert(pos, hash);
                    if hashes.len() > SPARSE_LIMIT {
                        self.densify();
                    }
                }
            }
            Repr::Dense(registers) => set_register(registers, hash),
        }
    }

    /// Folds `other` in: the result is the sketch of the union of both inputs.
    pub fn merge(&mut self, other: &Self) {
        match (&mut self.repr, &other.repr) {
            (Repr::Sparse(mine), Repr::Sparse(theirs)) => {
                let union = sorted_union(mine, theirs);
                *mine = union;
                if mine.len() > SPARSE_LIMIT {
                    self.densify();
                }
            }
            (Repr::Dense(registers), Repr::Sparse(theirs)) => {
                for &hash in theirs {
                    set_register(registers, hash);
                }
            }
            (Repr::Sparse(_), Repr::Dense(_)) => {
                self.densify();
                self.merge(other);
            }
            (Repr::Dense(mine), Repr::Dense(theirs)) => {
                for (a, &b) in mine.iter_mut().zip(theirs) {
                    *a = (*a).max(b);
                }
            }
        }
    }

    /// Whether the sketch still holds its hashes exactly.
    pub fn is_exact(&self) -> bool {
        matches!(self.repr, Repr::Sparse(_))
    }

    /// Estimated number of distinct values: exact while sparse, otherwise Ertl's improved
    /// estimator (see the private `estimate_registers` for the formula).
    pub fn estimate(&self) -> f64 {
        match &self.repr {
            Repr::Sparse(hashes) => hashes.len() as f64,
            Repr::Dense(registers) => estimate_registers(registers),
        }
    }

    /// Appends the checkpoint encoding: `0`, a `u16` count and the sorted hashes while
    /// exact; `1` and the `REGISTERS` register bytes once dense.
    pub(crate) fn encode(&self, w: &mut Writer) {
        match &self.repr {
            Repr::Sparse(hashes) => {
                w.u8(0);
                // At most SPARSE_LIMIT (256) hashes, by the invariant.
                w.u16(u16::try_from(hashes.len()).unwrap_or(u16::MAX));
                for &hash in hashes {
                    w.u64(hash);
                }
            }
            Repr::Dense(registers) => {
                w.u8(1);
                w.raw(registers);
            }
        }
    }

    /// Reads [`Self::encode`]'s output, rejecting anything that breaks the invariant (an
    /// unsorted, repeated or too long exact list, a register above `MAX_RANK`), because
    /// merges and estimates rely on it.
    pub(crate) fn decode(r: &mut Reader<'_>) -> crate::Result<Self> {
        let repr = match r.u8()? {
            0 => {
                let len = usize::from(r.u16()?);
                if len > SPARSE_LIMIT {
                    return Err(invalid(format!(
                        "distinct: {len} exact hashes, at most {SPARSE_LIMIT}"
                    )));
                }
                let mut hashes = Vec::with_capacity(len);
                for _ in 0..len {
                    let hash = r.u64()?;
                    if hashes.last().is_some_and(|&last| last >= hash) {
                        return Err(invalid("distinct: exact hashes not strictly ascending"));
                    }
                    hashes.push(hash);
                }
                Repr::Sparse(hashes)
            }
            1 => {
                let registers = r.raw(REGISTERS)?;
                if registers.iter().any(|&rank| rank > MAX_RANK) {
                    return Err(invalid(format!("distinct: register above {MAX_RANK}")));
                }
                Repr::Dense(registers.to_vec())
            }
            other => return Err(invalid(format!("distinct: representation {other}"))),
        };
        Ok(HyperLogLog { repr })
    }

    /// Switches to registers, keeping every hash seen so far.
    fn densify(&mut self) {
        if let Repr::Sparse(hashes) = &self.repr {
            let mut registers = vec![0u8; REGISTERS];
            for &hash in hashes {
                set_register(&mut registers, hash);
            }
            self.repr = Repr::Dense(registers);
        }
    }
}

impl<'de> Deserialize<'de> for HyperLogLog {
    /// Re-establishes the invariants on load: a sparse list is sorted, deduplicated and
    /// densified when too long; dense registers must have the right count and range.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut sketch = HyperLogLog {
            repr: Repr::deserialize(deserializer)?,
        };
        match &mut sketch.repr {
            Repr::Sparse(hashes) => {
                hashes.sort_unstable();
                hashes.dedup();
                if hashes.len() > SPARSE_LIMIT {
                    sketch.densify();
                }
            }
            Repr::Dense(registers) => {
                if registers.len() != REGISTERS {
                    return Err(serde::de::Error::custom(format!(
                        "a HyperLogLog has {REGISTERS} registers, got {}",
                        registers.len()
                    )));
                }
                if registers.iter().any(|&r| r > MAX_RANK) {
                    return Err(serde::de::Error::custom(format!(
                        "HyperLogLog registers hold at most {MAX_RANK}"
                    )));
                }
            }
        }
        Ok(sketch)
    }
}

/// Raises the register selected by the top `PRECISION` bits of `hash` to the rank of the
/// remaining bits (leading zeros + 1).
fn set_register(registers: &mut [u8], hash: u64) {
    let index = (hash >> (64 - PRECISION)) as usize;
    let rest = hash << PRECISION;
    let rank = (rest.leading_zeros().min(64 - PRECISION) + 1) as u8;
    if let Some(register) = registers.get_mut(index) {
        *register = (*register).max(rank);
    }
}

/// Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches", 2017; also what Redis uses): from the histogram `C_k` of register values,
/// `E = m^2 / (2 ln 2 * (m * sigma(C_0 / m) + sum_k C_k 2^-k + m * tau(1 - C_{q+1} / m)))`.
///
/// The sigma term generalises linear counting (it dominates while many registers are
/// empty) and tau corrects for saturated registers, so the estimate needs no empirical bias
/// tables and no switch-over point. The classic rule (raw estimate with the alpha_m bias
/// constant, linear counting below 2.5 m) is measurably biased right above the switch —
/// about +1.5% at 10 000 distinct values for m = 4096.
fn estimate_registers(registers: &[u8]) -> f64 {
    let m = REGISTERS as f64;
    let q = usize::from(MAX_RANK) - 1;
    let mut histogram = [0u32; MAX_RANK as usize + 1];
    for &rank in registers {
        if let Some(count) = histogram.get_mut(usize::from(rank)) {
            *count += 1;
        }
    }
    let mut z = m * tau(1.0 - f64::from(histogram[q + 1]) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + f64::from(histogram[k]));
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    m * m / (2.0 * std::f64::consts::LN_2) / z
}

/// sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), for x in [0, 1]; infinite at 1 (all registers
/// empty, estimate 0). Iterates until the sum stops changing in f64.
fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

/// tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3, for x in [0, 1].
fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

/// Union of two sorted, distinct lists, sorted and distinct.
fn sorted_union(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sketch_of(values: impl IntoIterator<Item = u64>) -> HyperLogLog {
        let mut hll = HyperLogLog::new();
        for v in values {
            hll.insert_hash(hash_i64(v as i64));
        }
        hll
    }

    #[test]
    fn hashes_are_stable_and_typed() {
        // Pinned outputs: changing the hash would corrupt persisted sketches.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let fnv_of_tag = (FNV_OFFSET ^ u64::from(TAG_STR)).wrapping_mul(FNV_PRIME);
        assert_eq!(hash_str(""), splitmix64(fnv_of_tag));
        assert_eq!(hash_str("BTC"), 0xe993_29a0_22e6_d6d8);
        assert_eq!(hash_i64(42), 0x332e_c886_ecfe_03ca);

        assert_ne!(hash_str("1"), hash_i64(1));
        assert_ne!(hash_i64(1), hash_f64(1.0));
        assert_eq!(hash_f64(0.0), hash_f64(-0.0));
        assert_eq!(hash_f64(f64::NAN), hash_f64(-f64::NAN));
        assert_ne!(hash_bool(true), hash_bool(false));
    }

    #[test]
    fn exact_while_sparse() {
        let mut hll = HyperLogLog::new();
        assert_eq!(hll.estimate(), 0.0);
        for round in 0..3 {
            for v in 0..SPARSE_LIMIT as u64 {
                hll.insert_hash(hash_i64(v as i64));
            }
            assert!(hll.is_exact(), "round {round}");
            assert_eq!(hll.estimate(), SPARSE_LIMIT as f64);
        }
        hll.insert_hash(hash_i64(-1));
        assert!(!hll.is_exact());
        // Just past the switch, linear counting is still within a fraction of a value or so.
        assert!((hll.estimate() - 257.0).abs() < 10.0, "{}", hll.estimate());
    }

    fn relative_error(hll: &HyperLogLog, n: u64) -> f64 {
        (hll.estimate() - n as f64) / n as f64
    }

    #[test]
    fn estimates_within_three_percent() {
        for n in [10_000u64, 100_000] {
            let ints = sketch_of(0..n);
            assert!(
                relative_error(&ints, n).abs() < 0.03,
                "n = {n}: {}",
                ints.estimate()
            );
            let mut names = HyperLogLog::new();
            for i in 0..n {
                names.insert_hash(hash_str(&format!("user-{i}")));
            }
            assert!(
                relative_error(&names, n).abs() < 0.03,
                "n = {n}: {}",
                names.estimate()
            );
        }
    }

    /// Over many independent sets the estimator is unbiased with the expected spread
    /// (standard error 1.04 / sqrt(4096) = 1.6%), including right where the classic
    /// estimator would switch from linear counting (about 10 000).
    #[test]
    fn estimates_are_unbiased_across_data_sets() {
        for (n, sets) in [(2_000u64, 20u64), (10_000, 20), (30_000, 10), (100_000, 8)] {
            let errors: Vec<f64> = (0..sets)
                .map(|set| {
                    relative_error(&sketch_of(set * 1_000_000_000..set * 1_000_000_000 + n), n)
                })
                .collect();
            let mean = errors.iter().sum::<f64>() / errors.len() as f64;
            let rms = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt();
            assert!(mean.abs() < 0.01, "n = {n}: mean error {mean:.4}");
            assert!(rms < 0.025, "n = {n}: rms error {rms:.4}");
        }
    }

    #[test]
    fn estimator_edge_cases() {
        assert_eq!(estimate_registers(&[0; REGISTERS]), 0.0);
        // Every register saturated: the sketch has overflowed and says so.
        assert_eq!(estimate_registers(&[MAX_RANK; REGISTERS]), f64::INFINITY);
        let mut half = [MAX_RANK; REGISTERS];
        half[..REGISTERS / 2].fill(1);
        assert!(estimate_registers(&half).is_finite());
        assert_eq!(sigma(0.0), 0.0);
        assert_eq!(tau(0.0), 0.0);
        assert_eq!(tau(1.0), 0.0);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        for n in [3u64, 1000] {
            let hll = sketch_of(0..n);
            let json = serde_json::to_string(&hll).unwrap();
            assert_eq!(serde_json::from_str::<HyperLogLog>(&json).unwrap(), hll);
        }
        let unsorted: HyperLogLog = serde_json::from_str(r#"{"sparse":[3,1,3]}"#).unwrap();
        assert_eq!(unsorted.estimate(), 2.0);
        assert!(serde_json::from_str::<HyperLogLog>(r#"{"dense":[1,2]}"#).is_err());
        let too_high = format!(r#"{{"dense":[{}]}}"#, vec!["54"; REGISTERS].join(","));
        assert!(serde_json::from_str::<HyperLogLog>(&too_high).is_err());
    }

    proptest! {
        #[test]
        fn merge_equals_sketch_of_union(
            values in prop::collection::vec(0u64..2_000, 0..1_500),
            split in any::<prop::sample::Index>(),
            split2 in any::<prop::sample::Index>(),
        ) {
            let all = sketch_of(values.iter().copied());
            let cut = split.index(values.len() + 1);
            let (left, right) = values.split_at(cut);
            let mut merged = sketch_of(left.iter().copied());
            merged.merge(&sketch_of(right.iter().copied()));
            prop_assert_eq!(&merged, &all);
            prop_assert_eq!(merged.estimate(), all.estimate());

            // Commutative.
            let mut flipped = sketch_of(right.iter().copied());
            flipped.merge(&sketch_of(left.iter().copied()));
            prop_assert_eq!(&flipped, &all);

            // Associative over three parts.
            let cut2 = split2.index(right.len() + 1);
            let (mid, tail) = right.split_at(cut2);
            let (a, b, c) = (
                sketch_of(left.iter().copied()),
                sketch_of(mid.iter().copied()),
                sketch_of(tail.iter().copied()),
            );
            let mut ab_c = a.clone();
            ab_c.merge(&b);
            ab_c.merge(&c);
            let mut bc = b.clone();
            bc.merge(&c);
            let mut a_bc = a;
            a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            prop_assert_eq!(&ab_c, &all);
        }
    }
}
