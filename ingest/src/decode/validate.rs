//! Per-datapoint checks, run before anything of the point is appended.
//!
//! Points flagged `NO_RECORDED_VALUE` carry no meaningful value: their value fields are not
//! checked for finiteness and are stored as null.

use std::time::Duration;

use super::reason::Reason;
use super::view::{ExpPoint, HistogramPoint, Number, NumberPoint, SummaryPoint, View};

/// OTLP `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
pub(crate) const NO_RECORDED_VALUE: u32 = 1;

/// Whether the point is flagged as having no recorded value.
#[inline]
pub(crate) fn no_value(flags: u32) -> bool {
    flags & NO_RECORDED_VALUE != 0
}

/// `Some(v)` when `v` is finite, else `None` (for flagged points).
#[inline]
pub(crate) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// Accepted `time_unix_nano` range, in nanoseconds since the Unix epoch, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWindow {
    /// Oldest accepted time.
    pub oldest: i64,
    /// Newest accepted time.
    pub newest: i64,
}

impl TimeWindow {
    /// Every representable time.
    #[cfg(test)]
    pub(crate) const ANY: TimeWindow = TimeWindow {
        oldest: i64::MIN,
        newest: i64::MAX,
    };

    /// `now` minus `max_past` to `now` plus `max_future`; `None` leaves that side open.
    pub(crate) fn around(
        now: i64,
        max_past: Option<Duration>,
        max_future: Option<Duration>,
    ) -> Self {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        TimeWindow {
            oldest: max_past.map_or(i64::MIN, |d| now.saturating_sub(nanos(d))),
            newest: max_future.map_or(i64::MAX, |d| now.saturating_add(nanos(d))),
        }
    }
}

/// Checks `time_unix_nano` (set, representable, inside `window`) and `start_time_unix_nano`
/// (representable; not windowed: a cumulative series may have started long ago); returns them
/// as column values.
#[inline]
pub(crate) fn times(
    time: u64,
    start: u64,
    window: &TimeWindow,
) -> Result<(i64, Option<i64>), Reason> {
    if time == 0 {
        return Err(Reason::MissingTimestamp);
    }
    let time = i64::try_from(time).map_err(|_| Reason::TimestampOutOfRange)?;
    if time < window.oldest {
        return Err(Reason::TimestampTooOld);
    }
    if time > window.newest {
        return Err(Reason::TimestampInFuture);
    }
    let start = match start {
        0 => None,
        s => Some(i64::try_from(s).map_err(|_| Reason::TimestampOutOfRange)?),
    };
    Ok((time, start))
}

fn check_finite(flags: u32, values: &[Option<f64>]) -> Result<(), Reason> {
    if no_value(flags) || values.iter().flatten().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Reason::NonFiniteValue)
    }
}

/// Checks a gauge / sum point; returns the `value` column (ints converted, null when absent
/// or flagged `NO_RECORDED_VALUE`).
#[inline]
pub(crate) fn number<'a, F: View<'a>>(p: &NumberPoint<'a, F>) -> Result<Option<f64>, Reason> {
    let v = match p.value {
        None => None,
        Some(Number::AsInt(i)) => Some(i as f64),
        Some(Number::AsDouble(d)) => Some(d),
    };
    let flags = p.base.flags;
    check_finite(flags, &[v])?;
    Ok(if no_value(flags) { None } else { v })
}

/// Checks an explicit-bucket histogram point: finite sum/min/max, strictly increasing
/// `explicit_bounds` without NaN, `bucket_counts` either empty or one longer than the bounds,
/// and buckets summing to `count`.
pub(crate) fn histogram<'a, F: View<'a>>(p: &HistogramPoint<'a, F>) -> Result<(), Reason> {
    check_finite(p.base.flags, &[p.sum, p.min, p.max])?;
    // NaN is checked on its own: it compares false both ways.
    let mut prev: Option<f64> = None;
    let mut bounds = 0usize;
    for b in p.bounds.clone() {
        if b.is_nan() || prev.is_some_and(|prev| prev >= b) {
            return Err(Reason::InvalidHistogram);
        }
        prev = Some(b);
        bounds += 1;
    }
    let mut buckets = 0usize;
    let mut total = Some(0u64);
    for c in p.buckets.clone() {
        buckets += 1;
        total = total.and_then(|t| t.checked_add(c));
    }
    if buckets == 0 {
        return Ok(());
    }
    if buckets != bounds + 1 {
        return Err(Reason::InvalidHistogram);
    }
    if total != Some(p.count) {
        return Err(Reason::InvalidHistogram);
    }
    Ok(())
}

/// Checks an exponential histogram point: finite sum, min, max and zero threshold.
pub(crate) fn exponential_histogram<'a, F: View<'a>>(p: &ExpPoint<'a, F>) -> Result<(), Reason> {
    check_finite(p.base.flags, &[p.sum, p.min, p.max, Some(p.zero_threshold)])
}

/// Checks a summary point: finite sum.
pub(crate) fn summary<'a, F: View<'a>>(p: &SummaryPoint<'a, F>) -> Result<(), Reason> {
    check_finite(p.base.flags, &[Some(p.sum)])
}

#[cfg(test)]
mod tests {
    use super::super::prost_view::{exp_point, histogram_point, number_point, summary_point};
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        number_data_point::Value, ExponentialHistogramDataPoint, HistogramDataPoint,
        NumberDataPoint, SummaryDataPoint,
    };

    fn number(p: &NumberDataPoint) -> Result<Option<f64>, Reason> {
        super::number(&number_point(p))
    }

    fn histogram(p: &HistogramDataPoint) -> Result<(), Reason> {
        super::histogram(&histogram_point(p))
    }

    fn exponential_histogram(p: &ExponentialHistogramDataPoint) -> Result<(), Reason> {
        super::exponential_histogram(&exp_point(p))
    }

    fn summary(p: &SummaryDataPoint) -> Result<(), Reason> {
        super::summary(&summary_point(p))
    }

    /// Timestamps: 0 is missing, beyond i64 is out of range, a 0 start time is null.
    #[test]
    fn timestamps() {
        let any = &TimeWindow::ANY;
        assert_eq!(times(0, 5, any), Err(Reason::MissingTimestamp));
        assert_eq!(times(u64::MAX, 0, any), Err(Reason::TimestampOutOfRange));
        assert_eq!(times(10, u64::MAX, any), Err(Reason::TimestampOutOfRange));
        assert_eq!(times(10, 0, any), Ok((10, None)));
        assert_eq!(times(10, 4, any), Ok((10, Some(4))));
    }

    /// The window rejects times before `now - past` and after `now + future`, keeps both ends,
    /// and never applies to the start time.
    #[test]
    fn timestamp_window() {
        let now = 1_000_000_000_000;
        let w = TimeWindow::around(
            now,
            Some(Duration::from_secs(100)),
            Some(Duration::from_secs(10)),
        );
        let oldest = (now - 100_000_000_000) as u64;
        let newest = (now + 10_000_000_000) as u64;
        assert_eq!(times(oldest, 0, &w), Ok((oldest as i64, None)));
        assert_eq!(times(oldest - 1, 0, &w), Err(Reason::TimestampTooOld));
        assert_eq!(times(newest, 0, &w), Ok((newest as i64, None)));
        assert_eq!(times(newest + 1, 0, &w), Err(Reason::TimestampInFuture));
        assert_eq!(times(now as u64, 1, &w), Ok((now, Some(1))));
        // After 2262 stays out of range, whatever the window.
        assert_eq!(times(u64::MAX, 0, &w), Err(Reason::TimestampOutOfRange));
        // Open sides, and windows that would overflow, saturate.
        let open = TimeWindow::around(now, None, None);
        assert_eq!(open, TimeWindow::ANY);
        let huge = TimeWindow::around(now, Some(Duration::MAX), Some(Duration::MAX));
        assert_eq!(huge.newest, i64::MAX);
        assert_eq!(times(1, 0, &huge), Ok((1, None)));
    }

    /// Number points: ints convert, non-finite rejects unless flagged, flagged is null.
    #[test]
    fn numbers() {
        let mut p = NumberDataPoint {
            value: Some(Value::AsInt(-3)),
            ..Default::default()
        };
        assert_eq!(number(&p), Ok(Some(-3.0)));
        p.value = Some(Value::AsDouble(f64::NAN));
        assert_eq!(number(&p), Err(Reason::NonFiniteValue));
        p.value = Some(Value::AsDouble(f64::NEG_INFINITY));
        assert_eq!(number(&p), Err(Reason::NonFiniteValue));
        p.flags = NO_RECORDED_VALUE;
        assert_eq!(number(&p), Ok(None));
        p.value = None;
        assert_eq!(number(&p), Ok(None));
    }

    /// Histograms: every inconsistency is `invalid_histogram`, NaN sums `non_finite_value`.
    #[test]
    fn histograms() {
        let good = HistogramDataPoint {
            count: 3,
            sum: Some(6.0),
            explicit_bounds: vec![1.0, 2.0],
            bucket_counts: vec![1, 1, 1],
            ..Default::default()
        };
        assert_eq!(histogram(&good), Ok(()));
        let no_buckets = HistogramDataPoint {
            count: 7,
            ..Default::default()
        };
        assert_eq!(histogram(&no_buckets), Ok(()));
        let bad = |f: &dyn Fn(&mut HistogramDataPoint)| {
            let mut p = good.clone();
            f(&mut p);
            histogram(&p)
        };
        assert_eq!(
            bad(&|p| {
                p.bucket_counts.pop();
            }),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(
            bad(&|p| p.explicit_bounds = vec![2.0, 1.0]),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(
            bad(&|p| p.explicit_bounds = vec![1.0, 1.0]),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(
            bad(&|p| p.explicit_bounds = vec![f64::NAN, 1.0]),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(
            bad(&|p| {
                p.explicit_bounds = vec![f64::NAN];
                p.bucket_counts = vec![1, 2];
            }),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(bad(&|p| p.count = 4), Err(Reason::InvalidHistogram));
        assert_eq!(
            bad(&|p| p.bucket_counts = vec![u64::MAX, 4, 0]),
            Err(Reason::InvalidHistogram)
        );
        assert_eq!(
            bad(&|p| p.sum = Some(f64::INFINITY)),
            Err(Reason::NonFiniteValue)
        );
        assert_eq!(
            bad(&|p| p.min = Some(f64::NAN)),
            Err(Reason::NonFiniteValue)
        );
        assert_eq!(
            bad(&|p| p.max = Some(f64::NAN)),
            Err(Reason::NonFiniteValue)
        );
        assert_eq!(
            bad(&|p| {
                p.sum = Some(f64::NAN);
                p.flags = NO_RECORDED_VALUE;
            }),
            Ok(())
        );
    }

    /// Exponential histograms and summaries reject non-finite sums.
    #[test]
    fn exp_and_summary() {
        let mut e = ExponentialHistogramDataPoint::default();
        assert_eq!(exponential_histogram(&e), Ok(()));
        e.sum = Some(f64::NAN);
        assert_eq!(exponential_histogram(&e), Err(Reason::NonFiniteValue));
        let mut s = SummaryDataPoint::default();
        assert_eq!(summary(&s), Ok(()));
        s.sum = f64::INFINITY;
        assert_eq!(summary(&s), Err(Reason::NonFiniteValue));
    }
}
