//! Folding overflow points into overflow-series points.
//!
//! Points with the same overflow series, class (kind, unit, scope, temporality, monotonic,
//! sample rate, bucket layout) and time become one point: sums add, histograms and summaries
//! add count, sum and each bucket (min/max while every point has them), a gauge keeps the last
//! value in input order. The first point of a group is its template row: its other columns
//! (metric, resource, bounds, exponential buckets…) are the output's.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Float64Builder, ListBuilder, MapArray, MapBuilder, RecordBatch, StringBuilder,
    TimestampNanosecondArray, UInt32Array, UInt64Builder,
};
use arrow::compute::take_record_batch;
use phoenix_model::schema::col;

use super::runtime::{OVERFLOW_KEY, OVERFLOW_VALUE};
use crate::columns::{map_view, replace, string_map, strings};
use crate::series::series_ids;
use crate::temporality::view::{Kind, PointView, Temp};
use crate::{Error, Result};

/// Where a point's bucket counts are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Buckets {
    /// No buckets.
    None,
    /// Its row's `bucket_counts`.
    Row,
    /// `arena[start..start + len]` (converted deltas).
    Arena(usize, usize),
}

/// One overflow row's contribution, after any cumulative → delta conversion.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub row: u32,
    pub start: Option<i64>,
    pub value: Option<f64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub buckets: Buckets,
    /// Temporality of the emitted point.
    pub temporality: Temp,
}

/// One emitted overflow point being folded.
struct Group {
    template: u32,
    kind: Kind,
    temporality: Temp,
    start: Option<i64>,
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// `buckets[start..start + len]`.
    buckets: Option<(usize, usize)>,
}

/// `f(a, b)` when both are known.
#[inline]
fn both<T>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
    a.zip(b).map(|(a, b)| f(a, b))
}

/// The earlier of two starts, either when only one is known.
#[inline]
fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Folds a batch's overflow points; reused across batches to keep its allocations.
#[derive(Default)]
pub(super) struct Merger {
    /// Keys are hashes and times, so FxHash suffices.
    index: rustc_hash::FxHashMap<(u64, u64, i64), u32>,
    groups: Vec<Group>,
    buckets: Vec<u64>,
}

impl Merger {
    /// Forgets the previous batch's groups.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.groups.clear();
        self.buckets.clear();
    }

    /// Adds point `p` of overflow series `series` and class `class`; `arena` holds converted
    /// bucket counts.
    pub(super) fn add(
        &mut self,
        v: &PointView<'_>,
        series: u64,
        class: u64,
        p: &Point,
        arena: &[u64],
    ) {
        let row = p.row as usize;
        let buckets: &[u64] = match p.buckets {
            Buckets::None => &[],
            Buckets::Row => v.buckets(row),
            Buckets::Arena(start, len) => &arena[start..start + len],
        };
        let key = (series, class, v.time.value(row));
        let kind = v.kind(row);
        if let Some(&g) = self.index.get(&key) {
            let g = &mut self.groups[g as usize];
            if kind == Kind::Gauge {
                // Last value wins, as the SDK's LastValue aggregation of the overflow set.
                g.value = p.value;
                g.start = p.start;
                return;
            }
            g.start = earlier(g.start, p.start);
            g.value = both(g.value, p.value, |a, b| a + b);
            g.count = both(g.count, p.count, u64::saturating_add);
            g.sum = both(g.sum, p.sum, |a, b| a + b);
            g.min = both(g.min, p.min, f64::min);
            g.max = both(g.max, p.max, f64::max);
            if let Some((start, len)) = g.buckets {
                // The class includes the layout, so lengths match.
                for (total, add) in self.buckets[start..start + len].iter_mut().zip(buckets) {
                    *total = total.saturating_add(*add);
                }
            }
            return;
        }
        let bucket_range = (!matches!(p.buckets, Buckets::None)).then(|| {
            let start = self.buckets.len();
            self.buckets.extend_from_slice(buckets);
            (start, buckets.len())
        });
        self.index.insert(key, self.groups.len() as u32);
        self.groups.push(Group {
            template: p.row,
            kind,
            temporality: p.temporality,
            start: p.start,
            value: p.value,
            count: p.count,
            sum: p.sum,
            min: p.min,
            max: p.max,
            buckets: bucket_range,
        });
    }

    /// The folded points as rows of `batch`'s schema, or `None` when there is none.
    ///
    /// # Errors
    /// [`Error::Column`] / [`Error::Arrow`] for a batch not in the metrics schema.
    pub(super) fn finish(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let n = self.groups.len();
        if n == 0 {
            return Ok(None);
        }
        let templates = UInt32Array::from_iter_values(self.groups.iter().map(|g| g.template));
        let base = take_record_batch(batch, &templates)?;

        let mut attrs = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let mut temporality = StringBuilder::with_capacity(n, n * 5);
        let mut start = Vec::with_capacity(n);
        let mut value = Float64Builder::with_capacity(n);
        let mut count = UInt64Builder::with_capacity(n);
        let mut sum = Float64Builder::with_capacity(n);
        let mut min = Float64Builder::with_capacity(n);
        let mut max = Float64Builder::with_capacity(n);
        let mut buckets = ListBuilder::with_capacity(UInt64Builder::new(), n);
        for g in &self.groups {
            attrs.keys().append_value(OVERFLOW_KEY);
            attrs.values().append_value(OVERFLOW_VALUE);
            attrs.append(true)?;
            temporality.append_option(g.temporality.as_str());
            start.push(g.start);
            value.append_option(g.value);
            count.append_option(g.count);
            sum.append_option(g.sum);
            min.append_option(g.min);
            max.append_option(g.max);
            match g.buckets {
                Some((s, len)) => {
                    buckets.values().append_slice(&self.buckets[s..s + len]);
                    buckets.append(true);
                }
                None => buckets.append_null(),
            }
        }
        let attrs: MapArray = attrs.finish();
        let ids = {
            let metric = strings(&base, col::METRIC)?;
            let resource = string_map(&base, col::RESOURCE)?;
            series_ids(metric, &resource, &map_view(&attrs, col::ATTRIBUTES)?)
        };
        let null_of = |name: &'static str| -> Result<_> {
            let field = base
                .schema()
                .field_with_name(name)
                .map_err(|_| Error::Column(name))?
                .clone();
            Ok(new_null_array(field.data_type(), n))
        };
        // Summary quantiles cannot be merged; other kinds have none.
        let has_summary = self.groups.iter().any(|g| g.kind == Kind::Summary);
        let mut columns = vec![
            (col::ATTRIBUTES, Arc::new(attrs) as _),
            (col::SERIES_ID, Arc::new(ids) as _),
            (col::TEMPORALITY, Arc::new(temporality.finish()) as _),
            (
                col::START_TIME,
                Arc::new(TimestampNanosecondArray::from(start).with_timezone("UTC")) as _,
            ),
            (col::VALUE, Arc::new(value.finish()) as _),
            (col::COUNT, Arc::new(count.finish()) as _),
            (col::SUM, Arc::new(sum.finish()) as _),
            (col::MIN, Arc::new(min.finish()) as _),
            (col::MAX, Arc::new(max.finish()) as _),
            (col::BUCKET_COUNTS, Arc::new(buckets.finish()) as _),
        ];
        if has_summary {
            columns.push((col::QUANTILES, null_of(col::QUANTILES)?));
            columns.push((col::QUANTILE_VALUES, null_of(col::QUANTILE_VALUES)?));
        }
        Ok(Some(replace(&base, &columns)?))
    }
}
