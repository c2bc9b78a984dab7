//! Typed per-row access to the point columns of a metrics batch (shared by `temporality` and
//! `cardinality_limit`).

use arrow::array::{
    Array, BooleanArray, Float64Array, ListArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use phoenix_model::schema::{col, kind, temporality};

use crate::columns::{column, f64s, strings, u64s};
use crate::{Error, Result};

/// A row's metric kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
    /// A value not in the schema's list; passed through untouched.
    Other,
}

/// A row's temporality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Temp {
    Delta,
    Cumulative,
    /// Null or unknown.
    None,
}

impl Temp {
    /// The `temporality` column value.
    pub(crate) fn as_str(self) -> Option<&'static str> {
        match self {
            Temp::Delta => Some(temporality::DELTA),
            Temp::Cumulative => Some(temporality::CUMULATIVE),
            Temp::None => None,
        }
    }
}

/// The point columns of one batch.
pub(crate) struct PointView<'a> {
    pub time: &'a TimestampNanosecondArray,
    pub start: &'a TimestampNanosecondArray,
    pub metric: &'a StringArray,
    pub kind: &'a StringArray,
    pub temporality: &'a StringArray,
    pub monotonic: &'a BooleanArray,
    pub series_id: &'a UInt64Array,
    pub value: &'a Float64Array,
    pub count: &'a UInt64Array,
    pub sum: &'a Float64Array,
    pub min: &'a Float64Array,
    pub max: &'a Float64Array,
    pub sample_rate: &'a Float64Array,
    bounds: &'a ListArray,
    bound_values: &'a Float64Array,
    buckets: &'a ListArray,
    bucket_values: &'a UInt64Array,
}

/// A list column and its child values as `T`.
fn list<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<(&'a ListArray, &'a T)> {
    let l = column::<ListArray>(batch, name)?;
    let v = l
        .values()
        .as_any()
        .downcast_ref::<T>()
        .ok_or(Error::Column(name))?;
    Ok((l, v))
}

/// `Some(a[i])` when valid.
#[inline]
pub(crate) fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    a.is_valid(i).then(|| a.value(i))
}

impl<'a> PointView<'a> {
    /// Views `batch`.
    ///
    /// # Errors
    /// [`Error::Column`] for a column missing or of another type.
    pub(crate) fn new(batch: &'a RecordBatch) -> Result<Self> {
        let (bounds, bound_values) = list::<Float64Array>(batch, col::BOUNDS)?;
        let (buckets, bucket_values) = list::<UInt64Array>(batch, col::BUCKET_COUNTS)?;
        Ok(PointView {
            time: column(batch, col::TIME)?,
            start: column(batch, col::START_TIME)?,
            metric: strings(batch, col::METRIC)?,
            kind: strings(batch, col::KIND)?,
            temporality: strings(batch, col::TEMPORALITY)?,
            monotonic: column(batch, col::MONOTONIC)?,
            series_id: u64s(batch, col::SERIES_ID)?,
            value: f64s(batch, col::VALUE)?,
            count: u64s(batch, col::COUNT)?,
            sum: f64s(batch, col::SUM)?,
            min: f64s(batch, col::MIN)?,
            max: f64s(batch, col::MAX)?,
            sample_rate: f64s(batch, col::SAMPLE_RATE)?,
            bounds,
            bound_values,
            buckets,
            bucket_values,
        })
    }

    /// Kind of row `i`.
    #[inline]
    pub(crate) fn kind(&self, i: usize) -> Kind {
        match self.kind.value(i) {
            kind::GAUGE => Kind::Gauge,
            kind::SUM => Kind::Sum,
            kind::HISTOGRAM => Kind::Histogram,
            kind::EXPONENTIAL_HISTOGRAM => Kind::ExponentialHistogram,
            kind::SUMMARY => Kind::Summary,
            _ => Kind::Other,
        }
    }

    /// Temporality of row `i`.
    #[inline]
    pub(crate) fn temporality(&self, i: usize) -> Temp {
        if self.temporality.is_null(i) {
            return Temp::None;
        }
        match self.temporality.value(i) {
            temporality::DELTA => Temp::Delta,
            temporality::CUMULATIVE => Temp::Cumulative,
            _ => Temp::None,
        }
    }

    /// Start time of row `i`.
    #[inline]
    pub(crate) fn start(&self, i: usize) -> Option<i64> {
        self.start.is_valid(i).then(|| self.start.value(i))
    }

    /// Value of row `i` (NaN when null: no recorded value).
    #[inline]
    pub(crate) fn value_or_nan(&self, i: usize) -> f64 {
        if self.value.is_valid(i) {
            self.value.value(i)
        } else {
            f64::NAN
        }
    }

    /// Whether row `i` is a monotonic sum (null counts as monotonic, like a counter).
    #[inline]
    pub(crate) fn monotonic(&self, i: usize) -> bool {
        self.monotonic.is_null(i) || self.monotonic.value(i)
    }

    /// Count of row `i`.
    #[inline]
    pub(crate) fn count(&self, i: usize) -> Option<u64> {
        self.count.is_valid(i).then(|| self.count.value(i))
    }

    /// Explicit bounds of row `i` (empty when null).
    #[inline]
    pub(crate) fn bounds(&self, i: usize) -> &'a [f64] {
        if self.bounds.is_null(i) {
            return &[];
        }
        let o = self.bounds.value_offsets();
        &self.bound_values.values()[o[i] as usize..o[i + 1] as usize]
    }

    /// Whether row `i` has bucket counts.
    #[inline]
    pub(crate) fn buckets_valid(&self, i: usize) -> bool {
        self.buckets.is_valid(i)
    }

    /// Bucket counts of row `i` (empty when null).
    #[inline]
    pub(crate) fn buckets(&self, i: usize) -> &'a [u64] {
        if self.buckets.is_null(i) {
            return &[];
        }
        let o = self.buckets.value_offsets();
        &self.bucket_values.values()[o[i] as usize..o[i + 1] as usize]
    }
}
