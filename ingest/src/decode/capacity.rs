//! The counting pass: sizes every column builder before the decode pass appends, and
//! estimates the memory the request holds (its parsed message plus the batch).

use std::mem::size_of;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    summary_data_point::ValueAtQuantile, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};

use super::attributes::rendered_len;
use super::view::{Attr, Base, Data, Nested, Val, View};

/// Guess for the rendered size of a non-string datapoint attribute value.
pub(crate) const NON_STRING_GUESS: usize = 16;
/// Fixed per-row bytes of the non-string columns (timestamps, numbers, offsets, validity).
pub(crate) const FIXED_ROW_BYTES: usize = 160;
/// Offset bytes of one map entry (key and value offsets).
pub(crate) const ENTRY_BYTES: usize = 8;
/// Bytes of one list item (f64 or u64).
pub(crate) const LIST_ITEM_BYTES: usize = 8;
/// Fixed memory of an (even tiny) batch: buffers of its 30 columns.
const BATCH_OVERHEAD: usize = 8 * 1024;

/// Upper-bound-ish sizes of one request's columns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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
pub(crate) fn attr_bytes<'a, N: Nested<'a>>(attrs: impl Iterator<Item = Attr<'a, N>>) -> usize {
    attrs
        .map(|(key, value)| {
            key.len()
                + match value {
                    Some(Val::Str(s)) => s.len(),
                    _ => NON_STRING_GUESS,
                }
        })
        .sum()
}

/// Key and rendered value bytes of a resource's attributes, exact: they repeat on every row of
/// the resource, so a guess could be off by the row count. Rendering stops at `max` per value
/// (such a resource rejects all its points anyway).
fn resource_bytes<'a, N: Nested<'a>>(
    attrs: impl Iterator<Item = Attr<'a, N>>,
    max: usize,
) -> usize {
    attrs.map(|attr| resource_attr_bytes(attr, max)).sum()
}

/// [`resource_bytes`] of one attribute.
pub(crate) fn resource_attr_bytes<'a, N: Nested<'a>>(
    (key, value): Attr<'a, N>,
    max: usize,
) -> usize {
    key.len()
        + match value {
            None => 0,
            Some(Val::Str(s)) => s.len(),
            Some(v) => rendered_len(v, max).unwrap_or(max),
        }
}

/// Parsed size of an attribute list of `len` entries: the `KeyValue`s and their strings.
fn attrs_message_bytes(len: usize, bytes: usize) -> usize {
    len * size_of::<KeyValue>() + bytes
}

impl Capacity {
    /// Counts a request's `resources`; `max_value` is the attribute value limit (bounds
    /// resource rendering). The parsed message size is counted only for owned views.
    pub(crate) fn of<'a, F: View<'a>>(resources: F::Resources, max_value: usize) -> Self {
        let mut c = Capacity::default();
        for rm in resources {
            let res_len = rm.attrs.clone().count();
            let res_bytes = resource_bytes(rm.attrs, max_value);
            if F::OWNED {
                c.message_bytes +=
                    size_of::<ResourceMetrics>() + attrs_message_bytes(res_len, res_bytes);
            }
            // `service` repeats a resource value; bound it by the resource bytes.
            let per_row_text = res_bytes.min(64);
            let rows_before = c.rows;
            for sm in rm.scopes {
                let scope = sm.name.len();
                if F::OWNED {
                    c.message_bytes += size_of::<ScopeMetrics>() + scope;
                }
                for m in sm.metrics {
                    let rows_before_metric = c.rows;
                    if F::OWNED {
                        c.message_bytes +=
                            size_of::<Metric>() + m.name.len() + m.unit.len() + m.description_len;
                    }
                    c.count_points::<F>(m.data);
                    let n = c.rows - rows_before_metric;
                    c.text_bytes += n * (m.name.len() + m.unit.len() + scope + per_row_text);
                }
            }
            let n = c.rows - rows_before;
            c.resource_entries += n * res_len;
            c.resource_bytes += n * res_bytes;
        }
        c
    }

    /// Counts one datapoint of (prost) type `P`.
    fn add_point<'a, P, F: View<'a>>(&mut self, base: Base<'a, F>) {
        let len = base.attrs_len;
        let bytes = F::attr_bytes(base.attrs);
        self.rows += 1;
        self.attr_entries += len;
        self.attr_bytes += bytes;
        if F::OWNED {
            let exemplar_bytes: usize = base.exemplars.sum();
            self.message_bytes += size_of::<P>() + attrs_message_bytes(len, bytes) + exemplar_bytes;
        }
    }

    fn count_points<'a, F: View<'a>>(&mut self, data: Option<Data<'a, F>>) {
        let own = usize::from(F::OWNED);
        match data {
            None => {}
            Some(Data::Gauge(points) | Data::Sum(points, ..)) => {
                points.for_each(|p| self.add_point::<NumberDataPoint, F>(p.base))
            }
            Some(Data::Histogram(points, _)) => {
                for p in points {
                    let bounds = p.bounds.count();
                    let buckets = p.buckets.count();
                    self.add_point::<HistogramDataPoint, F>(p.base);
                    self.bounds += bounds;
                    self.bucket_counts += buckets;
                    self.message_bytes += own * LIST_ITEM_BYTES * (bounds + buckets);
                }
            }
            Some(Data::Exponential(points, _)) => {
                for p in points {
                    let pos = p.positive.count();
                    let neg = p.negative.count();
                    self.add_point::<ExponentialHistogramDataPoint, F>(p.base);
                    self.exp_positive += pos;
                    self.exp_negative += neg;
                    self.message_bytes += own * LIST_ITEM_BYTES * (pos + neg);
                }
            }
            Some(Data::Summary(points)) => {
                for p in points {
                    let n = p.quantiles.count();
                    self.add_point::<SummaryDataPoint, F>(p.base);
                    self.quantiles += n;
                    self.message_bytes += own * size_of::<ValueAtQuantile>() * n;
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
