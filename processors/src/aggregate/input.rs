//! Typed views of an input batch's columns and the class of each row.

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, ListArray, StringArray, TimestampNanosecondArray,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::{Float64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use phoenix_model::schema::{col, kind, temporality};

use crate::columns::{column, f64s, short_eq, string_map, strings, u64s, MapView};
use crate::{Error, Result};

/// OTLP `FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// How a row is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A gauge value.
    Gauge,
    /// A delta sum.
    DeltaSum,
    /// A cumulative sum, converted to deltas at window close.
    CumulativeSum {
        /// A drop in value is a reset only for monotonic sums.
        monotonic: bool,
    },
    /// A delta explicit-bucket histogram.
    DeltaHistogram,
    /// A cumulative explicit-bucket histogram, converted to deltas at window close.
    CumulativeHistogram,
    /// Anything else (exponential histograms, summaries, sums without temporality): passed
    /// through unchanged.
    Other,
}

/// The output shape a class aggregates into; part of an output series' identity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Shape {
    /// One row per gauge function.
    Gauge = 0,
    /// A sum.
    Sum = 1,
    /// An explicit-bucket histogram.
    Histogram = 2,
    /// A cumulative sum kept as it is (downsampling only).
    CumulativeSum = 3,
    /// A cumulative histogram kept as it is (downsampling only).
    CumulativeHistogram = 4,
}

impl Class {
    /// The output shape, `None` for [`Class::Other`].
    pub(crate) fn shape(self) -> Option<Shape> {
        match self {
            Class::Gauge => Some(Shape::Gauge),
            Class::DeltaSum | Class::CumulativeSum { .. } => Some(Shape::Sum),
            Class::DeltaHistogram | Class::CumulativeHistogram => Some(Shape::Histogram),
            Class::Other => None,
        }
    }

    /// The output shape when downsampling: cumulative series are kept apart from delta ones
    /// of the same id, since they are picked, not summed.
    pub(crate) fn downsample_shape(self) -> Option<Shape> {
        match self {
            Class::CumulativeSum { .. } => Some(Shape::CumulativeSum),
            Class::CumulativeHistogram => Some(Shape::CumulativeHistogram),
            other => other.shape(),
        }
    }
}

/// The columns of one input batch that aggregation reads.
pub(crate) struct Input<'a> {
    pub time: &'a [i64],
    start: &'a TimestampNanosecondArray,
    pub metric: &'a StringArray,
    kind: &'a StringArray,
    temporality: &'a StringArray,
    monotonic: &'a BooleanArray,
    pub unit: &'a StringArray,
    pub service: &'a StringArray,
    pub scope: &'a StringArray,
    pub resource: MapView<'a>,
    pub attributes: MapView<'a>,
    pub series_id: &'a [u64],
    value: &'a Float64Array,
    count: &'a UInt64Array,
    sum: &'a Float64Array,
    min: &'a Float64Array,
    max: &'a Float64Array,
    bounds: &'a ListArray,
    bound_values: &'a [f64],
    buckets: &'a ListArray,
    bucket_values: &'a [u64],
    pub sample_rate: &'a [f64],
    flags: &'a [u32],
}

/// The values of a list column's items as a slice.
fn list_values<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    list: &'a ListArray,
    name: &'static str,
) -> Result<&'a [T::Native]> {
    list.values()
        .as_primitive_opt::<T>()
        .map(|a| &a.values()[..])
        .ok_or(Error::Column(name))
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
            unit: strings(batch, col::UNIT)?,
            service: strings(batch, col::SERVICE)?,
            scope: strings(batch, col::SCOPE)?,
            resource: string_map(batch, col::RESOURCE)?,
            attributes: string_map(batch, col::ATTRIBUTES)?,
            series_id: u64s(batch, col::SERIES_ID)?.values(),
            value: f64s(batch, col::VALUE)?,
            count: u64s(batch, col::COUNT)?,
            sum: f64s(batch, col::SUM)?,
            min: f64s(batch, col::MIN)?,
            max: f64s(batch, col::MAX)?,
            bounds,
            bound_values: list_values::<Float64Type>(bounds, col::BOUNDS)?,
            buckets,
            bucket_values: list_values::<UInt64Type>(buckets, col::BUCKET_COUNTS)?,
            sample_rate: f64s(batch, col::SAMPLE_RATE)?.values(),
            flags: column::<UInt32Array>(batch, col::FLAGS)?.values(),
        })
    }

    /// How row `row` is aggregated.
    pub(crate) fn class(&self, row: usize) -> Class {
        let kind = self.kind.value(row);
        // Most rows are gauges: no temporality to read, and no `memcmp` call.
        if short_eq(kind, kind::GAUGE) {
            return Class::Gauge;
        }
        let temporality = self
            .temporality
            .is_valid(row)
            .then(|| self.temporality.value(row));
        match (kind, temporality) {
            (kind::GAUGE, _) => Class::Gauge,
            (kind::SUM, Some(temporality::DELTA)) => Class::DeltaSum,
            (kind::SUM, Some(temporality::CUMULATIVE)) => Class::CumulativeSum {
                monotonic: self.monotonic(row),
            },
            (kind::HISTOGRAM, Some(temporality::DELTA)) => Class::DeltaHistogram,
            (kind::HISTOGRAM, Some(temporality::CUMULATIVE)) => Class::CumulativeHistogram,
            _ => Class::Other,
        }
    }

    /// Whether the row carries a value to aggregate (not flagged `NO_RECORDED_VALUE`, a
    /// finite value or a count).
    pub(crate) fn has_value(&self, row: usize, class: Class) -> bool {
        if self.flags[row] & NO_RECORDED_VALUE != 0 {
            return false;
        }
        match class.shape() {
            Some(Shape::Gauge | Shape::Sum | Shape::CumulativeSum) => {
                self.value.is_valid(row) && self.value.value(row).is_finite()
            }
            Some(Shape::Histogram | Shape::CumulativeHistogram) => self.count.is_valid(row),
            None => false,
        }
    }

    /// Whether the row's sum is monotonic; OTLP sums always say, an unknown one is taken for
    /// a counter.
    #[inline]
    pub(crate) fn monotonic(&self, row: usize) -> bool {
        !self.monotonic.is_valid(row) || self.monotonic.value(row)
    }

    /// `start_time`, when set.
    #[inline]
    pub(crate) fn start(&self, row: usize) -> Option<i64> {
        self.start.is_valid(row).then(|| self.start.value(row))
    }

    /// `value` (checked by [`Input::has_value`]).
    #[inline]
    pub(crate) fn value(&self, row: usize) -> f64 {
        self.value.value(row)
    }

    /// `count` (checked by [`Input::has_value`]).
    #[inline]
    pub(crate) fn count(&self, row: usize) -> u64 {
        self.count.value(row)
    }

    /// `sum`, when set.
    #[inline]
    pub(crate) fn sum(&self, row: usize) -> Option<f64> {
        opt(self.sum, row)
    }

    /// `min`, when set.
    #[inline]
    pub(crate) fn min(&self, row: usize) -> Option<f64> {
        opt(self.min, row)
    }

    /// `max`, when set.
    #[inline]
    pub(crate) fn max(&self, row: usize) -> Option<f64> {
        opt(self.max, row)
    }

    /// Explicit bucket bounds (empty when null).
    #[inline]
    pub(crate) fn bounds(&self, row: usize) -> &'a [f64] {
        let o = self.bounds.value_offsets();
        &self.bound_values[o[row] as usize..o[row + 1] as usize]
    }

    /// Bucket counts (empty when null).
    #[inline]
    pub(crate) fn buckets(&self, row: usize) -> &'a [u64] {
        let o = self.buckets.value_offsets();
        &self.bucket_values[o[row] as usize..o[row + 1] as usize]
    }
}

#[inline]
fn opt(a: &Float64Array, row: usize) -> Option<f64> {
    a.is_valid(row).then(|| a.value(row))
}
