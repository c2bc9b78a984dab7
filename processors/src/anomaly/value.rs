//! The value scored for one datapoint: gauge value, sum rate per second (cumulative sums
//! through reset-aware deltas), histogram mean or quantile of the interval's observations.
//! Rows are read and classified by the aggregate processor's batch view, so both processors
//! agree on what a row is.

use crate::aggregate::input::{Class, Input};
use crate::delta::{bounds_layout, CumulativeState};

/// The value to score for `row` of class `class`, or `None` when it has none (no recorded
/// value, NaN, an empty or zero-length interval, the first point of a cumulative stream, a
/// type the detector does not score). `prev_time` is the series' previous point time (for
/// delta sums without a start).
pub(crate) fn scored_value(
    input: &Input<'_>,
    row: usize,
    class: Class,
    prev_time: Option<i64>,
    quantile: Option<f64>,
    cumulative: &mut CumulativeState,
    buf: &mut Vec<u64>,
) -> Option<f64> {
    if !input.has_value(row, class) {
        return None;
    }
    let time = input.time[row];
    let id = input.series_id[row];
    let v = match class {
        Class::Gauge => input.value(row),
        Class::DeltaSum => {
            let from = input.start(row).filter(|&s| s < time).or(prev_time)?;
            rate(input.value(row), from, time)?
        }
        Class::CumulativeSum { monotonic } => {
            let start = input.start(row);
            let v = input.value(row);
            let d = if monotonic {
                cumulative.sum(id, start, time, v)
            } else {
                cumulative.non_monotonic_sum(id, start, time, v)
            }?;
            rate(d.value, d.start_ns, time)?
        }
        Class::DeltaHistogram => hist_value(
            input.count(row),
            input.sum(row),
            input.bounds(row),
            input.buckets(row),
            quantile,
        )?,
        Class::CumulativeHistogram => {
            let bounds = input.bounds(row);
            let head = cumulative.histogram_into(
                id,
                input.start(row),
                time,
                input.count(row),
                input.sum(row),
                input.buckets(row),
                bounds_layout(bounds),
                buf,
            )?;
            hist_value(head.count, head.sum, bounds, buf, quantile)?
        }
        Class::Other => return None,
    };
    v.is_finite().then_some(v)
}

/// Increase per second over `(from, to]`; `None` for an empty interval.
fn rate(increase: f64, from: i64, to: i64) -> Option<f64> {
    (to > from).then(|| increase / ((to - from) as f64 / 1e9))
}

/// Mean (`quantile` None) or quantile of an interval's observations.
fn hist_value(
    count: u64,
    sum: Option<f64>,
    bounds: &[f64],
    buckets: &[u64],
    quantile: Option<f64>,
) -> Option<f64> {
    if count == 0 {
        return None;
    }
    match quantile {
        None => sum.map(|s| s / count as f64),
        Some(q) => bucket_quantile(q, bounds, buckets),
    }
}

/// The `q` quantile of explicit-bucket counts, interpolated linearly inside its bucket as
/// Prometheus' `histogram_quantile` does; the open first and last buckets answer their one
/// finite bound.
pub(crate) fn bucket_quantile(q: f64, bounds: &[f64], buckets: &[u64]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 || bounds.is_empty() || buckets.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, &c) in buckets.iter().enumerate() {
        let before = seen as f64;
        seen += c;
        if (seen as f64) < rank || c == 0 {
            continue;
        }
        if i == 0 {
            return Some(bounds[0]);
        }
        if i == bounds.len() {
            return Some(bounds[i - 1]);
        }
        let (lo, hi) = (bounds[i - 1], bounds[i]);
        return Some(lo + (hi - lo) * ((rank - before) / c as f64));
    }
    bounds.last().copied()
}
