//! Time bounds implied by a scan's filters, used to skip files by the range in their names.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Operator, TryCast};

/// An inclusive time range in ns; `None` bounds are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Smallest time a matching row can have.
    pub min: Option<i64>,
    /// Largest time a matching row can have.
    pub max: Option<i64>,
}

impl TimeRange {
    /// The range every row matching all `filters` lies in (filters are ANDed).
    pub fn from_filters(filters: &[Expr], time_col: &str) -> TimeRange {
        filters
            .iter()
            .map(|f| range_of(f, time_col))
            .fold(TimeRange::default(), TimeRange::intersect)
    }

    /// Whether a file holding times in `[min, max]` can have matching rows.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.min.is_none_or(|lo| max >= lo) && self.max.is_none_or(|hi| min <= hi)
    }

    fn intersect(self, other: TimeRange) -> TimeRange {
        TimeRange {
            min: pick(self.min, other.min, i64::max),
            max: pick(self.max, other.max, i64::min),
        }
    }

    /// The smallest range holding both (an OR of the two conditions).
    fn hull(self, other: TimeRange) -> TimeRange {
        TimeRange {
            min: self.min.zip(other.min).map(|(a, b)| a.min(b)),
            max: self.max.zip(other.max).map(|(a, b)| a.max(b)),
        }
    }
}

fn pick(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// The range implied by one filter; unknown shapes imply nothing (open range).
fn range_of(expr: &Expr, time_col: &str) -> TimeRange {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => range_of(left, time_col).intersect(range_of(right, time_col)),
            Operator::Or => range_of(left, time_col).hull(range_of(right, time_col)),
            _ => {
                if is_time_column(left, time_col) {
                    literal_ns(right).map_or_else(TimeRange::default, |v| bound(*op, v))
                } else if is_time_column(right, time_col) {
                    match (literal_ns(left), op.swap()) {
                        (Some(v), Some(op)) => bound(op, v),
                        _ => TimeRange::default(),
                    }
                } else {
                    TimeRange::default()
                }
            }
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time_column(expr, time_col) => TimeRange {
            min: literal_ns(low),
            max: literal_ns(high),
        },
        _ => TimeRange::default(),
    }
}

/// The range of `time op v`.
fn bound(op: Operator, v: i64) -> TimeRange {
    let (min, max) = match op {
        Operator::Eq => (Some(v), Some(v)),
        Operator::Gt => (Some(v.saturating_add(1)), None),
        Operator::GtEq => (Some(v), None),
        Operator::Lt => (None, Some(v.saturating_sub(1))),
        Operator::LtEq => (None, Some(v)),
        _ => (None, None),
    };
    TimeRange { min, max }
}

/// The time column itself, or a cast of it to another nanosecond timestamp (a time zone
/// change keeps the instant; casts to coarser units truncate and are not trusted).
fn is_time_column(expr: &Expr, time_col: &str) -> bool {
    match expr {
        Expr::Column(c) => c.name == time_col,
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            matches!(
                field.data_type(),
                DataType::Timestamp(TimeUnit::Nanosecond, _)
            ) && is_time_column(expr, time_col)
        }
        _ => false,
    }
}

/// A constant as ns since the epoch: a timestamp literal (any unit), or a literal cast to a
/// timestamp (strings parse as RFC 3339, integers follow the cast's unit).
fn literal_ns(expr: &Expr) -> Option<i64> {
    let scalar = constant(expr)?;
    match scalar {
        ScalarValue::TimestampNanosecond(v, _) => v,
        ScalarValue::TimestampMicrosecond(v, _) => v.map(|v| v.saturating_mul(1_000)),
        ScalarValue::TimestampMillisecond(v, _) => v.map(|v| v.saturating_mul(1_000_000)),
        ScalarValue::TimestampSecond(v, _) => v.map(|v| v.saturating_mul(1_000_000_000)),
        other => match other
            .cast_to(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into()),
            ))
            .ok()?
        {
            ScalarValue::TimestampNanosecond(v, _) => v,
            _ => None,
        },
    }
}

/// A literal, possibly under casts, evaluated.
fn constant(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            constant(expr)?.cast_to(field.data_type()).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    /// Comparisons, BETWEEN, AND/OR and flipped operands all bound the range.
    #[test]
    fn bounds_from_filters() {
        let r = TimeRange::from_filters(
            &[col("time").gt_eq(ts(100)), col("time").lt(ts(200))],
            "time",
        );
        assert_eq!(
            r,
            TimeRange {
                min: Some(100),
                max: Some(199)
            }
        );
        let r = TimeRange::from_filters(&[ts(100).lt(col("time"))], "time");
        assert_eq!(
            r,
            TimeRange {
                min: Some(101),
                max: None
            }
        );
        let r = TimeRange::from_filters(&[col("time").between(ts(5), ts(9))], "time");
        assert_eq!(
            r,
            TimeRange {
                min: Some(5),
                max: Some(9)
            }
        );
        let r =
            TimeRange::from_filters(&[col("time").eq(ts(5)).or(col("time").eq(ts(50)))], "time");
        assert_eq!(
            r,
            TimeRange {
                min: Some(5),
                max: Some(50)
            }
        );
        // An OR with an unbounded side bounds nothing.
        let r = TimeRange::from_filters(
            &[col("time").eq(ts(5)).or(col("value").eq(lit(1.0)))],
            "time",
        );
        assert_eq!(r, TimeRange::default());
        let r = TimeRange::from_filters(&[col("value").gt(lit(1.0))], "time");
        assert_eq!(r, TimeRange::default());
    }

    /// String and second-precision literals convert to nanoseconds.
    #[test]
    fn literal_units() {
        let s = Expr::Cast(Cast::new(
            Box::new(lit("1970-01-01T00:00:01Z")),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ));
        assert_eq!(literal_ns(&s), Some(1_000_000_000));
        let sec = lit(ScalarValue::TimestampSecond(Some(2), None));
        assert_eq!(literal_ns(&sec), Some(2_000_000_000));
    }

    /// Overlap keeps files touching the range and drops the rest.
    #[test]
    fn overlap() {
        let r = TimeRange {
            min: Some(10),
            max: Some(20),
        };
        assert!(r.overlaps(0, 10));
        assert!(r.overlaps(20, 30));
        assert!(!r.overlaps(0, 9));
        assert!(!r.overlaps(21, 30));
        assert!(TimeRange::default().overlaps(i64::MIN, i64::MAX));
    }
}
