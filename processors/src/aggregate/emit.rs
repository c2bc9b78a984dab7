//! Builds output rows in the metrics schema with Arrow builders.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BooleanBuilder, Float64Builder, ListBuilder, MapBuilder,
    StringBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::record_batch::RecordBatch;
use phoenix_model::metrics_schema;
use phoenix_model::schema::col;

use super::buckets::HistAcc;
use super::group::{Entries, OutSeries};
use crate::Result;

/// The kind-specific fields of one output row.
pub(super) enum Fields<'a> {
    /// A gauge function's value.
    Gauge(f64),
    /// A sum.
    Sum {
        /// `delta` or `cumulative`.
        temporality: &'static str,
        /// Its value.
        value: f64,
    },
    /// A histogram.
    Histogram {
        /// `delta` or `cumulative`.
        temporality: &'static str,
        /// Its buckets and statistics.
        hist: &'a HistAcc,
    },
}

/// Column builders of one output batch.
pub(super) struct Emitter {
    rows: usize,
    time: TimestampNanosecondBuilder,
    start: TimestampNanosecondBuilder,
    metric: StringBuilder,
    kind: StringBuilder,
    temporality: StringBuilder,
    monotonic: BooleanBuilder,
    unit: StringBuilder,
    service: StringBuilder,
    resource: MapBuilder<StringBuilder, StringBuilder>,
    scope: StringBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    series_id: UInt64Builder,
    value: Float64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bounds: ListBuilder<Float64Builder>,
    buckets: ListBuilder<UInt64Builder>,
    sample_rate: Float64Builder,
    flags: UInt32Builder,
}

/// Entries and bytes a map column will hold.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MapSize {
    entries: usize,
    keys: usize,
    values: usize,
}

impl MapSize {
    fn add(&mut self, entries: &Entries, rows: usize) {
        self.entries += entries.len() * rows;
        for (k, v) in entries.iter() {
            self.keys += k.len() * rows;
            self.values += v.as_deref().map_or(0, str::len) * rows;
        }
    }
}

/// What a batch of output rows will hold, so its builders are sized once and exactly: a
/// window close emits hundreds of thousands of rows, and a guess per row either reallocates
/// or reserves memory the batch then carries until it is stored.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Capacity {
    rows: usize,
    resource: MapSize,
    attributes: MapSize,
}

impl Capacity {
    /// Counts `rows` rows of series `s`.
    pub(super) fn add(&mut self, s: &OutSeries, rows: usize) {
        self.rows += rows;
        self.resource.add(&s.resource, rows);
        self.attributes.add(&s.attributes, rows);
    }
}

/// A map builder for `rows` rows holding `size`.
fn map_builder(rows: usize, size: MapSize) -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::with_capacity(
        None,
        StringBuilder::with_capacity(size.entries, size.keys),
        StringBuilder::with_capacity(size.entries, size.values),
        rows,
    )
}

fn append_map(b: &mut MapBuilder<StringBuilder, StringBuilder>, entries: &Entries) -> Result<()> {
    for (k, v) in entries.iter() {
        b.keys().append_value(k);
        b.values().append_option(v.as_deref());
    }
    Ok(b.append(true)?)
}

impl Emitter {
    /// No rows yet; builders sized for `capacity` (they grow past it if needed).
    pub(super) fn with_capacity(capacity: &Capacity) -> Self {
        let rows = capacity.rows;
        let strings =
            |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Emitter {
            rows: 0,
            time: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            start: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            metric: strings(32),
            kind: strings(9),
            temporality: strings(10),
            monotonic: BooleanBuilder::with_capacity(rows),
            unit: strings(4),
            service: strings(16),
            resource: map_builder(rows, capacity.resource),
            scope: strings(16),
            attributes: map_builder(rows, capacity.attributes),
            series_id: UInt64Builder::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            bounds: ListBuilder::new(Float64Builder::new()),
            buckets: ListBuilder::new(UInt64Builder::new()),
            sample_rate: Float64Builder::with_capacity(rows),
            flags: UInt32Builder::with_capacity(rows),
        }
    }

    /// Rows so far.
    pub(super) fn len(&self) -> usize {
        self.rows
    }

    /// Appends one row of series `s` under its output name `name` (an index into its names),
    /// stamped `time` with start `start` (null when `None`).
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] when a map entry cannot be appended (a bug).
    pub(super) fn row(
        &mut self,
        s: &OutSeries,
        name: usize,
        time: i64,
        start: Option<i64>,
        fields: Fields<'_>,
    ) -> Result<()> {
        let (Some(metric), Some(&id)) = (s.names.get(name), s.ids.get(name)) else {
            return Ok(());
        };
        self.time.append_value(time);
        self.start.append_option(start);
        self.metric.append_value(metric);
        self.unit.append_value(&s.unit);
        self.service.append_value(&s.service);
        append_map(&mut self.resource, &s.resource)?;
        self.scope.append_value(&s.scope);
        append_map(&mut self.attributes, &s.attributes)?;
        self.series_id.append_value(id);
        self.sample_rate.append_value(s.sample_rate);
        self.flags.append_value(0);
        match fields {
            Fields::Gauge(v) => {
                self.kind.append_value(phoenix_model::schema::kind::GAUGE);
                self.temporality.append_null();
                self.monotonic.append_null();
                self.value.append_value(v);
                self.histogram(None);
            }
            Fields::Sum { temporality, value } => {
                self.kind.append_value(phoenix_model::schema::kind::SUM);
                self.temporality.append_value(temporality);
                self.monotonic.append_value(s.monotonic);
                self.value.append_value(value);
                self.histogram(None);
            }
            Fields::Histogram { temporality, hist } => {
                self.kind
                    .append_value(phoenix_model::schema::kind::HISTOGRAM);
                self.temporality.append_value(temporality);
                self.monotonic.append_null();
                self.value.append_null();
                self.histogram(Some(hist));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends the histogram columns (nulls for other kinds).
    fn histogram(&mut self, h: Option<&HistAcc>) {
        match h {
            None => {
                self.count.append_null();
                self.sum.append_null();
                self.min.append_null();
                self.max.append_null();
                self.bounds.append_null();
                self.buckets.append_null();
            }
            Some(h) => {
                self.count.append_value(h.count);
                self.sum.append_option(h.sum);
                self.min.append_option(h.min);
                self.max.append_option(h.max);
                self.bounds.values().append_slice(&h.bounds);
                self.bounds.append(true);
                self.buckets.values().append_slice(&h.counts);
                self.buckets.append(true);
            }
        }
    }

    /// The rows as a batch in the metrics schema.
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] when the columns do not fit the schema (a bug).
    pub(super) fn finish(mut self) -> Result<RecordBatch> {
        let schema = metrics_schema();
        let n = self.rows;
        let mut built: Vec<(&'static str, ArrayRef)> = vec![
            (col::TIME, Arc::new(self.time.finish())),
            (col::START_TIME, Arc::new(self.start.finish())),
            (col::METRIC, Arc::new(self.metric.finish())),
            (col::KIND, Arc::new(self.kind.finish())),
            (col::TEMPORALITY, Arc::new(self.temporality.finish())),
            (col::MONOTONIC, Arc::new(self.monotonic.finish())),
            (col::UNIT, Arc::new(self.unit.finish())),
            (col::SERVICE, Arc::new(self.service.finish())),
            (col::RESOURCE, Arc::new(self.resource.finish())),
            (col::SCOPE, Arc::new(self.scope.finish())),
            (col::ATTRIBUTES, Arc::new(self.attributes.finish())),
            (col::SERIES_ID, Arc::new(self.series_id.finish())),
            (col::VALUE, Arc::new(self.value.finish())),
            (col::COUNT, Arc::new(self.count.finish())),
            (col::SUM, Arc::new(self.sum.finish())),
            (col::MIN, Arc::new(self.min.finish())),
            (col::MAX, Arc::new(self.max.finish())),
            (col::BOUNDS, Arc::new(self.bounds.finish())),
            (col::BUCKET_COUNTS, Arc::new(self.buckets.finish())),
            (col::SAMPLE_RATE, Arc::new(self.sample_rate.finish())),
            (col::FLAGS, Arc::new(self.flags.finish())),
        ];
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                match built
                    .iter()
                    .position(|(name, _)| *name == f.name().as_str())
                {
                    Some(i) => built.swap_remove(i).1,
                    // Exponential-histogram and summary columns: never produced here.
                    None => new_null_array(f.data_type(), n),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
