//! The counting pass: sizes every column builder before the decode pass appends.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// Guess for the rendered size of a non-string attribute value.
const NON_STRING_GUESS: usize = 16;
/// Fixed per-row bytes of the non-string columns (timestamps, numbers, offsets, validity).
const FIXED_ROW_BYTES: usize = 160;

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
}

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

impl Capacity {
    /// Counts `req`.
    pub(crate) fn of(req: &ExportMetricsServiceRequest) -> Self {
        let mut c = Capacity::default();
        for rm in &req.resource_metrics {
            let res: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
            let res_bytes = attr_bytes(res);
            // `service` repeats a resource value; bound it by the resource bytes.
            let per_row_text = res_bytes.min(64);
            let rows_before = c.rows;
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref().map_or(0, |s| s.name.len());
                for m in &sm.metrics {
                    let rows_before_metric = c.rows;
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

    fn add_attrs(&mut self, attrs: &[KeyValue]) {
        self.rows += 1;
        self.attr_entries += attrs.len();
        self.attr_bytes += attr_bytes(attrs);
    }

    fn count_points(&mut self, data: Option<&Data>) {
        match data {
            None => {}
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .for_each(|p| self.add_attrs(&p.attributes)),
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .for_each(|p| self.add_attrs(&p.attributes)),
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    self.add_attrs(&p.attributes);
                    self.bounds += p.explicit_bounds.len();
                    self.bucket_counts += p.bucket_counts.len();
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                for p in &h.data_points {
                    self.add_attrs(&p.attributes);
                    self.exp_positive += p.positive.as_ref().map_or(0, |b| b.bucket_counts.len());
                    self.exp_negative += p.negative.as_ref().map_or(0, |b| b.bucket_counts.len());
                }
            }
            Some(Data::Summary(s)) => {
                for p in &s.data_points {
                    self.add_attrs(&p.attributes);
                    self.quantiles += p.quantile_values.len();
                }
            }
        }
    }

    /// Estimated bytes of the finished batch.
    pub(crate) fn estimated_bytes(&self) -> usize {
        let offsets = 8 * (self.resource_entries + self.attr_entries);
        self.rows * FIXED_ROW_BYTES
            + self.resource_bytes
            + self.attr_bytes
            + self.text_bytes
            + offsets
            + 8 * (self.bounds
                + self.bucket_counts
                + self.exp_positive
                + self.exp_negative
                + 2 * self.quantiles)
    }
}
