//! The counting pass: sizes every column builder before the decode pass appends, and
//! estimates the memory the request holds (its parsed message plus the batch).

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};

use super::attributes::rendered_len;

/// Guess for the rendered size of a non-string datapoint attribute value.
const NON_STRING_GUESS: usize = 16;
/// Fixed per-row bytes of the non-string columns (timestamps, numbers, offsets, validity).
pub(crate) const FIXED_ROW_BYTES: usize = 160;
/// Offset bytes of one map entry (key and value offsets).
pub(crate) const ENTRY_BYTES: usize = 8;
/// Bytes of one list item (f64 or u64).
pub(crate) const LIST_ITEM_BYTES: usize = 8;
/// Fixed memory of an (even tiny) batch: buffers of its 30 columns.
const BATCH_OVERHEAD: usize = 8 * 1024;

/// Upper-bound-ish sizes of one request's columns.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Capacity {
    /// Datapoints.
    pub rows: usize,
    /// Resource map entries over all rows.
    pub resource_entries: usize,
    /// Resource key + value bytes over all rows.
    pub resource_bytes: usize,
    /// Attribute map entries over all rows.
    pub attr_entries: usize,
    /// Attribute key + value bytes over all rows.
    pub attr_bytes: usize,
    /// Bytes of metric, unit, scope and service over all rows.
    pub text_bytes: usize,
    /// Explicit bounds.
    pub bounds: usize,
    /// Explicit bucket counts.
    pub bucket_counts: usize,
    /// Exponential positive bucket counts.
    pub exp_positive: usize,
    /// Exponential negative bucket counts.
    pub exp_negative: usize,
    /// Summary quantiles.
    pub quantiles: usize,
    /// Estimated heap and inline bytes of the parsed request message itself.
    pub message_bytes: usize,
}

/// Memory of a parsed message of `message` bytes plus a batch of `batch` column bytes (see
/// [`Capacity::memory_bytes`]).
pub(crate) fn memory_for(message: usize, batch: usize) -> usize {
    message
        .saturating_add(batch)
        .saturating_add(batch / 4)
        .saturating_add(BATCH_OVERHEAD)
}

/// Key and value bytes of a datapoint's attributes (non-string values guessed).
fn attr_bytes(attrs: &[KeyValue]) -> usize {
    attrs
        .iter()
        .map(|kv| {
            kv.key.len()
                + match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => s.len(),
                    _ => NON_STRING_GUESS,
                }
        })
        .sum()
}

/// Key and rendered value bytes of a resource's attributes, exact: they repeat on every row of
/// the resource, so a guess could be off by the row count. Rendering stops at `max` per value
/// (such a resource rejects all its points anyway).
fn resource_bytes(attrs: &[KeyValue], max: usize) -> usize {
    attrs
        .iter()
        .map(|kv| {
            kv.key.len()
                + match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    None => 0,
                    Some(Value::StringValue(s)) => s.len(),
                    Some(v) => rendered_len(v, max).unwrap_or(max),
                }
        })
        .sum()
}

/// Parsed size of an attribute list: the `KeyValue`s and their strings.
fn attrs_message_bytes(attrs: &[KeyValue], bytes: usize) -> usize {
    std::mem::size_of_val(attrs) + bytes
}

impl Capacity {
    /// Counts `req`; `max_value` is the attribute value limit (bounds resource rendering).
    pub(crate) fn of(req: &ExportMetricsServiceRequest, max_value: usize) -> Self {
        let mut c = Capacity::default();
        for rm in &req.resource_metrics {
            let res: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
            let res_bytes = resource_bytes(res, max_value);
            c.message_bytes += size_of::<ResourceMetrics>() + attrs_message_bytes(res, res_bytes);
            // `service` repeats a resource value; bound it by the resource bytes.
            let per_row_text = res_bytes.min(64);
            let rows_before = c.rows;
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref().map_or(0, |s| s.name.len());
                c.message_bytes += size_of::<ScopeMetrics>() + scope;
                for m in &sm.metrics {
                    let rows_before_metric = c.rows;
                    c.message_bytes +=
                        size_of::<Metric>() + m.name.len() + m.unit.len() + m.description.len();
                    c.count_points(m.data.as_ref());
                    let n = c.rows - rows_before_metric;
                    c.text_bytes += n * (m.name.len() + m.unit.len() + scope + per_row_text);
                }
            }
            let n = c.rows - rows_before;
            c.resource_entries += n * res.len();
            c.resource_bytes += n * res_bytes;
        }
        c
    }

    /// Counts one datapoint of type `P` with `attrs` and `exemplars`.
    fn add_point<P>(&mut self, attrs: &[KeyValue], exemplars: &[Exemplar]) {
        let bytes = attr_bytes(attrs);
        self.rows += 1;
        self.attr_entries += attrs.len();
        self.attr_bytes += bytes;
        let exemplar_bytes: usize = exemplars
            .iter()
            .map(|e| {
                size_of::<Exemplar>()
                    + e.span_id.len()
                    + e.trace_id.len()
                    + attrs_message_bytes(
                        &e.filtered_attributes,
                        attr_bytes(&e.filtered_attributes),
                    )
            })
            .sum();
        self.message_bytes += size_of::<P>() + attrs_message_bytes(attrs, bytes) + exemplar_bytes;
    }

    fn count_points(&mut self, data: Option<&Data>) {
        match data {
            None => {}
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .for_each(|p| self.add_point::<NumberDataPoint>(&p.attributes, &p.exemplars)),
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .for_each(|p| self.add_point::<NumberDataPoint>(&p.attributes, &p.exemplars)),
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    self.add_point::<HistogramDataPoint>(&p.attributes, &p.exemplars);
                    self.bounds += p.explicit_bounds.len();
                    self.bucket_counts += p.bucket_counts.len();
                    self.message_bytes +=
                        LIST_ITEM_BYTES * (p.explicit_bounds.len() + p.bucket_counts.len());
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                for p in &h.data_points {
                    self.add_point::<ExponentialHistogramDataPoint>(&p.attributes, &p.exemplars);
                    let pos = p.positive.as_ref().map_or(0, |b| b.bucket_counts.len());
                    let neg = p.negative.as_ref().map_or(0, |b| b.bucket_counts.len());
                    self.exp_positive += pos;
                    self.exp_negative += neg;
                    self.message_bytes += LIST_ITEM_BYTES * (pos + neg);
                }
            }
            Some(Data::Summary(s)) => {
                for p in &s.data_points {
                    self.add_point::<SummaryDataPoint>(&p.attributes, &[]);
                    self.quantiles += p.quantile_values.len();
                    self.message_bytes += size_of::<ValueAtQuantile>() * p.quantile_values.len();
                }
            }
        }
    }

    /// Estimated memory of the parsed message plus its batch, for the memory budget. Arrow
    /// buffers are rounded up and padded: measured, a batch takes up to about a quarter more
    /// than [`estimated_bytes`](Self::estimated_bytes), plus a few KiB for its 30 columns.
    pub(crate) fn memory_bytes(&self) -> usize {
        memory_for(self.message_bytes, self.estimated_bytes())
    }

    /// Estimated bytes of the finished batch.
    pub(crate) fn estimated_bytes(&self) -> usize {
        let offsets = ENTRY_BYTES * (self.resource_entries + self.attr_entries);
        self.rows * FIXED_ROW_BYTES
            + self.resource_bytes
            + self.attr_bytes
            + self.text_bytes
            + offsets
            + LIST_ITEM_BYTES
                * (self.bounds
                    + self.bucket_counts
                    + self.exp_positive
                    + self.exp_negative
                    + 2 * self.quantiles)
    }
}
