//! Time bounds a query's filters put on a timestamp column, so a scan can skip hot batches
//! and whole segments that cannot match. The bounds only ever widen what the filters
//! allow: the filters still run over every row that is read.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

/// `[lo, hi)` in epoch milliseconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TimeBounds {
    pub(crate) lo: Option<i64>,
    pub(crate) hi: Option<i64>,
}

impl TimeBounds {
    /// Bounds every filter in `filters` implies on `column` (filters are ANDed).
    pub(crate) fn from_filters(filters: &[Expr], column: &str) -> TimeBounds {
        let mut bounds = TimeBounds::default();
        for filter in filters {
            for conjunct in split_conjunction(filter) {
                bounds.narrow(conjunct, column);
            }
        }
        bounds
    }

    /// Whether rows with times in `[min, max]` (inclusive) can fall in the bounds.
    pub(crate) fn overlaps(&self, min: i64, max: i64) -> bool {
        self.lo.is_none_or(|lo| max >= lo) && self.hi.is_none_or(|hi| min < hi)
    }

    fn at_least(&mut self, lo: i64) {
        self.lo = Some(self.lo.map_or(lo, |current| current.max(lo)));
    }

    fn below(&mut self, hi: i64) {
        self.hi = Some(self.hi.map_or(hi, |current| current.min(hi)));
    }

    fn narrow(&mut self, expr: &Expr, column: &str) {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, literal) = if is_column(left, column) {
                    (*op, right.as_ref())
                } else if is_column(right, column) {
                    match op.swap() {
                        Some(op) => (op, left.as_ref()),
                        None => return,
                    }
                } else {
                    return;
                };
                let Some(range) = literal_millis(literal) else {
                    return;
                };
                match op {
                    Operator::Eq => {
                        self.at_least(range.floor);
                        self.below(range.ceil.saturating_add(1));
                    }
                    Operator::Gt | Operator::GtEq => self.at_least(range.floor),
                    Operator::Lt | Operator::LtEq => self.below(range.ceil.saturating_add(1)),
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_column(expr, column) => {
                if let Some(low) = literal_millis(low) {
                    self.at_least(low.floor);
                }
                if let Some(high) = literal_millis(high) {
                    self.below(high.ceil.saturating_add(1));
                }
            }
            _ => {}
        }
    }
}

/// `column`, possibly behind casts between timestamp types (which keep the order).
fn is_column(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Column(c) => c.name == column,
        Expr::Cast(cast) if cast.field.data_type().is_temporal() => is_column(&cast.expr, column),
        Expr::TryCast(cast) if cast.field.data_type().is_temporal() => {
            is_column(&cast.expr, column)
        }
        _ => false,
    }
}

/// A timestamp literal in milliseconds, rounded both ways (a nanosecond literal may fall
/// between two milliseconds).
struct Millis {
    floor: i64,
    ceil: i64,
}

fn literal_millis(expr: &Expr) -> Option<Millis> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let (value, per_milli) = match value {
        ScalarValue::TimestampSecond(Some(v), _) => return v.checked_mul(1000).map(exact),
        ScalarValue::TimestampMillisecond(Some(v), _) => return Some(exact(*v)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, 1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => (*v, 1_000_000),
        _ => return None,
    };
    let floor = value.div_euclid(per_milli);
    let ceil = if value.rem_euclid(per_milli) == 0 {
        floor
    } else {
        floor + 1
    };
    Some(Millis { floor, ceil })
}

fn exact(ms: i64) -> Millis {
    Millis {
        floor: ms,
        ceil: ms,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn ms(v: i64) -> Expr {
        lit(ScalarValue::TimestampMillisecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn comparisons_and_between_bound_the_column() {
        let filters = [col("ts").gt_eq(ms(1000)).and(col("ts").lt(ms(5000)))];
        let bounds = TimeBounds::from_filters(&filters, "ts");
        assert_eq!(
            bounds,
            TimeBounds {
                lo: Some(1000),
                hi: Some(5001)
            }
        );
        assert!(bounds.overlaps(0, 1000));
        assert!(!bounds.overlaps(0, 999));
        assert!(!bounds.overlaps(5001, 9000));

        let filters = [
            ms(2000).lt_eq(col("ts")),
            col("ts").between(ms(0), ms(3000)),
        ];
        let bounds = TimeBounds::from_filters(&filters, "ts");
        assert_eq!(
            bounds,
            TimeBounds {
                lo: Some(2000),
                hi: Some(3001)
            }
        );
    }

    #[test]
    fn other_columns_disjunctions_and_negations_do_not_bound() {
        let filters = [
            col("other").gt(ms(10)),
            col("ts").gt(ms(10)).or(col("ts").lt(ms(0))),
            col("ts").not_between(ms(0), ms(10)),
            col("ts").not_eq(ms(10)),
        ];
        assert_eq!(
            TimeBounds::from_filters(&filters, "ts"),
            TimeBounds::default()
        );
    }

    #[test]
    fn finer_units_round_outwards() {
        let ns = lit(ScalarValue::TimestampNanosecond(Some(1_500_000), None));
        let bounds = TimeBounds::from_filters(&[col("ts").gt(ns.clone())], "ts");
        assert_eq!(bounds.lo, Some(1));
        let bounds = TimeBounds::from_filters(&[col("ts").lt(ns)], "ts");
        assert_eq!(bounds.hi, Some(3));
    }
}
