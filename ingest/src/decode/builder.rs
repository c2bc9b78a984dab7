//! Column builders of one batch in `metrics_schema()` order, and the row append.
//!
//! [`Columns::append`] pushes one slot (value or null) to every per-point column, except that
//! nulls of the kind-specific column groups are owed and appended in runs (before the group's
//! next value, or at finish), which is much cheaper than one null at a time. The columns every
//! point of a metric, scope or resource shares are appended once per run of rows, after the
//! run ([`Columns::metric_run`], [`Columns::scope_run`], [`Columns::resource_run`]): one bulk
//! append instead of one call per row and column.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, MapBuilder,
    StringArray, StringBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use phoenix_model::metrics_schema;
use phoenix_model::schema::col;

use super::attributes::RenderedAttrs;
use super::capacity::Capacity;
use super::runs::{RunMaps, RunStrings};
use super::validate::finite;
use super::view::{ExpPoint, HistogramPoint, SummaryPoint, View};

/// Per-point fields shared by every metric kind.
pub(crate) struct Common {
    /// `time`.
    pub time: i64,
    /// `start_time`.
    pub start_time: Option<i64>,
    /// `series_id`.
    pub series_id: u64,
    /// `flags`.
    pub flags: u32,
}

/// The fields every point of one metric shares.
pub(crate) struct MetricFields<'a> {
    /// `metric`.
    pub metric: &'a str,
    /// `kind`.
    pub kind: &'static str,
    /// `temporality`.
    pub temporality: Option<&'static str>,
    /// `monotonic`.
    pub monotonic: Option<bool>,
    /// `unit`.
    pub unit: &'a str,
}

/// The kind-specific part of a row (already validated).
pub(crate) enum Values<'p, 'a, F: View<'a>> {
    /// Gauge or sum value.
    Number(Option<f64>),
    /// Explicit-bucket histogram.
    Histogram(&'p HistogramPoint<'a, F>),
    /// Exponential histogram.
    Exponential(&'p ExpPoint<'a, F>),
    /// Summary.
    Summary(&'p SummaryPoint<'a, F>),
}

impl<'a, F: View<'a>> Values<'_, 'a, F> {
    /// List items the row appends (bounds, bucket counts, quantiles).
    pub(crate) fn list_items(&self) -> usize {
        match self {
            Values::Number(_) => 0,
            Values::Histogram(p) => p.bounds.clone().count() + p.buckets.clone().count(),
            Values::Exponential(p) => p.positive.clone().count() + p.negative.clone().count(),
            Values::Summary(p) => 2 * p.quantiles.clone().count(),
        }
    }
}

type StringMap = MapBuilder<StringBuilder, StringBuilder>;

/// A resource's attributes, rendered once and appended to each of its rows.
pub(crate) struct ResourceMap {
    keys: StringArray,
    values: StringArray,
}

impl ResourceMap {
    /// From a loaded attribute list.
    pub(crate) fn new(attrs: &RenderedAttrs<'_>) -> Self {
        let (keys, values) = attrs.to_arrays();
        Self { keys, values }
    }
}

/// Column groups that are null for every kind but one; their nulls are appended in runs.
#[derive(Debug, Clone, Copy)]
enum Group {
    Value = 0,
    Stats = 1,
    Explicit = 2,
    Exponential = 3,
    Summary = 4,
}

const GROUPS: [Group; 5] = [
    Group::Value,
    Group::Stats,
    Group::Explicit,
    Group::Exponential,
    Group::Summary,
];

fn string_map(entries: usize, bytes: usize, rows: usize) -> StringMap {
    MapBuilder::with_capacity(
        None,
        StringBuilder::with_capacity(entries, bytes / 2),
        StringBuilder::with_capacity(entries, bytes / 2 + bytes % 2),
        rows,
    )
}

fn f64_list(items: usize, rows: usize) -> ListBuilder<Float64Builder> {
    ListBuilder::with_capacity(Float64Builder::with_capacity(items), rows)
}

fn u64_list(items: usize, rows: usize) -> ListBuilder<UInt64Builder> {
    ListBuilder::with_capacity(UInt64Builder::with_capacity(items), rows)
}

fn timestamps(rows: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

/// Builders of every column.
pub(crate) struct Columns {
    time: TimestampNanosecondBuilder,
    start_time: TimestampNanosecondBuilder,
    metric: RunStrings,
    kind: RunStrings,
    temporality: RunStrings,
    monotonic: BooleanBuilder,
    unit: RunStrings,
    service: RunStrings,
    resource: RunMaps,
    scope: RunStrings,
    attributes: StringMap,
    series_id: UInt64Builder,
    value: Float64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bounds: ListBuilder<Float64Builder>,
    bucket_counts: ListBuilder<UInt64Builder>,
    sample_rate: Float64Builder,
    flags: UInt32Builder,
    exp_scale: Int32Builder,
    exp_zero_count: UInt64Builder,
    exp_zero_threshold: Float64Builder,
    exp_positive_offset: Int32Builder,
    exp_positive_counts: ListBuilder<UInt64Builder>,
    exp_negative_offset: Int32Builder,
    exp_negative_counts: ListBuilder<UInt64Builder>,
    quantiles: ListBuilder<Float64Builder>,
    quantile_values: ListBuilder<Float64Builder>,
    /// Nulls owed to each [`Group`], appended in one run before its next value or at finish.
    pending: [usize; 5],
}

impl Columns {
    /// Builders sized for `c`.
    pub(crate) fn with_capacity(c: &Capacity) -> Self {
        let n = c.rows;
        // text_bytes covers metric + unit + scope + service; split it evenly as a guess.
        let text = c.text_bytes / 3 + 1;
        Self {
            time: timestamps(n),
            start_time: timestamps(n),
            metric: RunStrings::with_capacity(n, text),
            kind: RunStrings::with_capacity(n, n * 9),
            temporality: RunStrings::with_capacity(n, n * 10),
            monotonic: BooleanBuilder::with_capacity(n),
            unit: RunStrings::with_capacity(n, n * 2),
            service: RunStrings::with_capacity(n, text),
            resource: RunMaps::with_capacity(n, c.resource_entries, c.resource_bytes),
            scope: RunStrings::with_capacity(n, text),
            attributes: string_map(c.attr_entries, c.attr_bytes, n),
            series_id: UInt64Builder::with_capacity(n),
            value: Float64Builder::with_capacity(n),
            count: UInt64Builder::with_capacity(n),
            sum: Float64Builder::with_capacity(n),
            min: Float64Builder::with_capacity(n),
            max: Float64Builder::with_capacity(n),
            bounds: f64_list(c.bounds, n),
            bucket_counts: u64_list(c.bucket_counts, n),
            sample_rate: Float64Builder::with_capacity(n),
            flags: UInt32Builder::with_capacity(n),
            exp_scale: Int32Builder::with_capacity(n),
            exp_zero_count: UInt64Builder::with_capacity(n),
            exp_zero_threshold: Float64Builder::with_capacity(n),
            exp_positive_offset: Int32Builder::with_capacity(n),
            exp_positive_counts: u64_list(c.exp_positive, n),
            exp_negative_offset: Int32Builder::with_capacity(n),
            exp_negative_counts: u64_list(c.exp_negative, n),
            quantiles: f64_list(c.quantiles, n),
            quantile_values: f64_list(c.quantiles, n),
            pending: [0; 5],
        }
    }

    /// Appends one row's per-point columns; its metric, scope and resource columns follow in
    /// the runs.
    pub(crate) fn append<'a, F: View<'a>>(
        &mut self,
        c: &Common,
        attributes: &RenderedAttrs<'_>,
        values: Values<'_, 'a, F>,
    ) -> Result<(), ArrowError> {
        self.time.append_value(c.time);
        self.start_time.append_option(c.start_time);
        attributes.append_to(&mut self.attributes)?;
        self.series_id.append_value(c.series_id);
        self.flags.append_value(c.flags);
        use Group::*;
        match values {
            Values::Number(None) => self.owe(&[Value, Stats, Explicit, Exponential, Summary]),
            Values::Number(Some(v)) => {
                self.flush(Value);
                self.value.append_value(v);
                self.owe(&[Stats, Explicit, Exponential, Summary]);
            }
            Values::Histogram(p) => {
                self.stats(Some(p.count), finite(p.sum), finite(p.min), finite(p.max));
                self.explicit(p);
                self.owe(&[Value, Exponential, Summary]);
            }
            Values::Exponential(p) => {
                self.stats(Some(p.count), finite(p.sum), finite(p.min), finite(p.max));
                self.exponential(p);
                self.owe(&[Value, Explicit, Summary]);
            }
            Values::Summary(p) => {
                self.stats(Some(p.count), finite(Some(p.sum)), None, None);
                self.summary(p);
                self.owe(&[Value, Explicit, Exponential]);
            }
        }
        Ok(())
    }

    /// Appends the metric columns of the last `rows` rows (all points of one metric).
    pub(crate) fn metric_run(
        &mut self,
        m: &MetricFields<'_>,
        rows: usize,
    ) -> Result<(), ArrowError> {
        if rows == 0 {
            return Ok(());
        }
        self.metric.append_n(m.metric, rows)?;
        self.kind.append_n(m.kind, rows)?;
        match m.temporality {
            Some(t) => self.temporality.append_n(t, rows)?,
            None => self.temporality.append_nulls(rows)?,
        }
        match m.monotonic {
            Some(v) => self.monotonic.append_n(rows, v),
            None => self.monotonic.append_nulls(rows),
        }
        self.unit.append_n(m.unit, rows)?;
        self.sample_rate.append_value_n(1.0, rows);
        Ok(())
    }

    /// Appends the scope column of the last `rows` rows (all points of one scope).
    pub(crate) fn scope_run(&mut self, scope: &str, rows: usize) -> Result<(), ArrowError> {
        self.scope.append_n(scope, rows)
    }

    /// Appends the service and resource columns of the last `rows` rows (all points of one
    /// resource).
    pub(crate) fn resource_run(
        &mut self,
        service: &str,
        resource: &ResourceMap,
        rows: usize,
    ) -> Result<(), ArrowError> {
        self.service.append_n(service, rows)?;
        self.resource
            .append_n(&resource.keys, &resource.values, rows)
    }

    /// Owes one null to each of `groups`.
    fn owe(&mut self, groups: &[Group]) {
        for g in groups {
            self.pending[*g as usize] += 1;
        }
    }

    /// Appends the nulls owed to `g`.
    fn flush(&mut self, g: Group) {
        let n = std::mem::take(&mut self.pending[g as usize]);
        if n == 0 {
            return;
        }
        match g {
            Group::Value => self.value.append_nulls(n),
            Group::Stats => {
                self.count.append_nulls(n);
                self.sum.append_nulls(n);
                self.min.append_nulls(n);
                self.max.append_nulls(n);
            }
            Group::Explicit => {
                self.bounds.append_nulls(n);
                self.bucket_counts.append_nulls(n);
            }
            Group::Exponential => {
                self.exp_scale.append_nulls(n);
                self.exp_zero_count.append_nulls(n);
                self.exp_zero_threshold.append_nulls(n);
                self.exp_positive_offset.append_nulls(n);
                self.exp_positive_counts.append_nulls(n);
                self.exp_negative_offset.append_nulls(n);
                self.exp_negative_counts.append_nulls(n);
            }
            Group::Summary => {
                self.quantiles.append_nulls(n);
                self.quantile_values.append_nulls(n);
            }
        }
    }

    fn stats(&mut self, count: Option<u64>, sum: Option<f64>, min: Option<f64>, max: Option<f64>) {
        self.flush(Group::Stats);
        self.count.append_option(count);
        self.sum.append_option(sum);
        self.min.append_option(min);
        self.max.append_option(max);
    }

    fn explicit<'a, F: View<'a>>(&mut self, p: &HistogramPoint<'a, F>) {
        self.flush(Group::Explicit);
        self.bounds.values().extend(p.bounds.clone().map(Some));
        self.bounds.append(true);
        self.bucket_counts
            .values()
            .extend(p.buckets.clone().map(Some));
        self.bucket_counts.append(true);
    }

    fn exponential<'a, F: View<'a>>(&mut self, p: &ExpPoint<'a, F>) {
        self.flush(Group::Exponential);
        self.exp_scale.append_value(p.scale);
        self.exp_zero_count.append_value(p.zero_count);
        self.exp_zero_threshold
            .append_option(finite(Some(p.zero_threshold)));
        // An absent Buckets message means offset 0 and no buckets (proto3 defaults).
        self.exp_positive_offset.append_value(p.positive_offset);
        self.exp_positive_counts
            .values()
            .extend(p.positive.clone().map(Some));
        self.exp_positive_counts.append(true);
        self.exp_negative_offset.append_value(p.negative_offset);
        self.exp_negative_counts
            .values()
            .extend(p.negative.clone().map(Some));
        self.exp_negative_counts.append(true);
    }

    fn summary<'a, F: View<'a>>(&mut self, p: &SummaryPoint<'a, F>) {
        self.flush(Group::Summary);
        for (q, v) in p.quantiles.clone() {
            self.quantiles.values().append_value(q);
            self.quantile_values.values().append_value(v);
        }
        self.quantiles.append(true);
        self.quantile_values.append(true);
    }

    /// Number of rows appended.
    pub(crate) fn rows(&self) -> usize {
        self.series_id.len()
    }

    /// Finishes the batch in `metrics_schema()`.
    pub(crate) fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        for g in GROUPS {
            self.flush(g);
        }
        let schema = metrics_schema();
        let resource_type = schema.field_with_name(col::RESOURCE)?.data_type();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.start_time.finish()),
            Arc::new(self.metric.finish()?),
            Arc::new(self.kind.finish()?),
            Arc::new(self.temporality.finish()?),
            Arc::new(self.monotonic.finish()),
            Arc::new(self.unit.finish()?),
            Arc::new(self.service.finish()?),
            self.resource.finish(resource_type)?,
            Arc::new(self.scope.finish()?),
            Arc::new(self.attributes.finish()),
            Arc::new(self.series_id.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bounds.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.sample_rate.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.exp_scale.finish()),
            Arc::new(self.exp_zero_count.finish()),
            Arc::new(self.exp_zero_threshold.finish()),
            Arc::new(self.exp_positive_offset.finish()),
            Arc::new(self.exp_positive_counts.finish()),
            Arc::new(self.exp_negative_offset.finish()),
            Arc::new(self.exp_negative_counts.finish()),
            Arc::new(self.quantiles.finish()),
            Arc::new(self.quantile_values.finish()),
        ];
        RecordBatch::try_new(schema.clone(), columns)
    }
}
