//! The value scored for one datapoint: gauge value, sum rate per second (cumulative sums
//! through reset-aware deltas), histogram mean or quantile of the interval's observations.

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, ListArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{Float64Type, UInt64Type};
use phoenix_model::schema::{col, kind, temporality};

use crate::columns::{column, f64s, strings, u64s};
use crate::delta::{bounds_layout, CumulativeState};
use crate::{Error, Result};

/// How a datapoint is turned into a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Gauge,
    DeltaSum,
    CumulativeSum { monotonic: bool },
    DeltaHistogram,
    CumulativeHistogram,
    Unsupported,
}

/// The columns of a batch the processor reads.
pub(crate) struct Input<'a> {
    pub time: &'a [i64],
    start: &'a TimestampNanosecondArray,
    pub metric: &'a StringArray,
    kind: &'a StringArray,
    temporality: &'a StringArray,
    monotonic: &'a BooleanArray,
    pub service: &'a StringArray,
    pub series_id: &'a [u64],
    value: &'a Float64Array,
    count: &'a UInt64Array,
    sum: &'a Float64Array,
    bounds: &'a ListArray,
    bound_values: &'a [f64],
    buckets: &'a ListArray,
    bucket_values: &'a [u64],
}

impl<'a> Input<'a> {
    /// Views `batch`.
    ///
    /// # Errors
    /// [`Error::Column`] when a column is missing or of another type.
    pub(crate) fn new(batch: &'a RecordBatch) -> Result<Self> {
        let bounds = column::<ListArray>(batch, col::BOUNDS)?;
        let buckets = column::<ListArray>(batch, col::BUCKET_COUNTS)?;
        Ok(Input {
            time: column::<TimestampNanosecondArray>(batch, col::TIME)?.values(),
            start: column::<TimestampNanosecondArray>(batch, col::START_TIME)?,
            metric: strings(batch, col::METRIC)?,
            kind: strings(batch, col::KIND)?,
            temporality: strings(batch, col::TEMPORALITY)?,
            monotonic: column::<BooleanArray>(batch, col::MONOTONIC)?,
            service: strings(batch, col::SERVICE)?,
            series_id: u64s(batch, col::SERIES_ID)?.values(),
            value: f64s(batch, col::VALUE)?,
            count: u64s(batch, col::COUNT)?,
            sum: f64s(batch, col::SUM)?,
            bounds,
            bound_values: bounds
                .values()
                .as_primitive_opt::<Float64Type>()
                .map(|a| &a.values()[..])
                .ok_or(Error::Column(col::BOUNDS))?,
            buckets,
            bucket_values: buckets
                .values()
                .as_primitive_opt::<UInt64Type>()
                .map(|a| &a.values()[..])
                .ok_or(Error::Column(col::BUCKET_COUNTS))?,
        })
    }

    /// How row `row` is scored.
    pub(crate) fn class(&self, row: usize) -> Class {
        let t = self
            .temporality
            .is_valid(row)
            .then(|| self.temporality.value(row));
        match (self.kind.value(row), t) {
            (kind::GAUGE, _) => Class::Gauge,
            (kind::SUM, Some(temporality::CUMULATIVE)) => Class::CumulativeSum {
                monotonic: !self.monotonic.is_valid(row) || self.monotonic.value(row),
            },
            (kind::SUM, _) => Class::DeltaSum,
            (kind::HISTOGRAM, Some(temporality::CUMULATIVE)) => Class::CumulativeHistogram,
            (kind::HISTOGRAM, _) => Class::DeltaHistogram,
            _ => Class::Unsupported,
        }
    }

    fn start(&self, row: usize) -> Option<i64> {
        self.start.is_valid(row).then(|| self.start.value(row))
    }

    fn bounds(&self, row: usize) -> &'a [f64] {
        let o = self.bounds.value_offsets();
        &self.bound_values[o[row] as usize..o[row + 1] as usize]
    }

    fn buckets(&self, row: usize) -> &'a [u64] {
        let o = self.buckets.value_offsets();
        &self.bucket_values[o[row] as usize..o[row + 1] as usize]
    }

    /// The value to score for `row` of class `class`, or `None` when it has none (NaN, an
    /// empty or zero-length interval, the first point of a cumulative stream).
    /// `prev_time` is the series' previous point time (for delta sums without a start).
    pub(crate) fn value(
        &self,
        row: usize,
        class: Class,
        prev_time: Option<i64>,
        quantile: Option<f64>,
        cumulative: &mut CumulativeState,
        buf: &mut Vec<u64>,
    ) -> Option<f64> {
        let time = self.time[row];
        let id = self.series_id[row];
        let v = match class {
            Class::Gauge => self.value.is_valid(row).then(|| self.value.value(row))?,
            Class::DeltaSum => {
                let v = self.value.is_valid(row).then(|| self.value.value(row))?;
                let from = self.start(row).filter(|&s| s < time).or(prev_time)?;
                rate(v, from, time)?
            }
            Class::CumulativeSum { monotonic } => {
                let v = self.value.is_valid(row).then(|| self.value.value(row))?;
                let start = self.start(row);
                let d = if monotonic {
                    cumulative.sum(id, start, time, v)
                } else {
                    cumulative.non_monotonic_sum(id, start, time, v)
                }?;
                rate(d.value, d.start_ns, time)?
            }
            Class::DeltaHistogram => {
                let count = self.count.is_valid(row).then(|| self.count.value(row))?;
                let sum = self.sum.is_valid(row).then(|| self.sum.value(row));
                hist_value(count, sum, self.bounds(row), self.buckets(row), quantile)?
            }
            Class::CumulativeHistogram => {
                let count = self.count.is_valid(row).then(|| self.count.value(row))?;
                let sum = self.sum.is_valid(row).then(|| self.sum.value(row));
                let bounds = self.bounds(row);
                let head = cumulative.histogram_into(
                    id,
                    self.start(row),
                    time,
                    count,
                    sum,
                    self.buckets(row),
                    bounds_layout(bounds),
                    buf,
                )?;
                hist_value(head.count, head.sum, bounds, buf, quantile)?
            }
            Class::Unsupported => return None,
        };
        v.is_finite().then_some(v)
    }
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
