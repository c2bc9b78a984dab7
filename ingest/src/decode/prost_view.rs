//! [`View`] over the prost message tree (OTLP/JSON, OTLP/gRPC and the `&ExportMetricsServiceRequest`
//! entry points).

use std::iter::Copied;
use std::mem::size_of;
use std::slice::Iter;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, summary_data_point::ValueAtQuantile,
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};

use super::capacity::attr_bytes;
use super::view::{
    mapped_iter, Attr, Base, Data, ExpPoint, HistogramPoint, MetricView, Nested, NumberPoint,
    ResourceView, ScopeView, SummaryPoint, Val, View,
};

/// The prost implementation of [`View`].
pub(crate) struct Prost;

/// A nested prost value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProstNested<'a> {
    /// An `ArrayValue`.
    Array(&'a ArrayValue),
    /// A `KeyValueList`.
    Kvlist(&'a KeyValueList),
}

type PVal<'a> = Val<'a, ProstNested<'a>>;

mapped_iter!(
    /// An attribute list.
    Attrs, Iter<'a, KeyValue>, Attr<'a, ProstNested<'a>>, attr
);
mapped_iter!(
    /// Exemplars, as their parsed bytes.
    Exemplars, Iter<'a, Exemplar>, usize, exemplar
);
mapped_iter!(
    /// `quantile_values`.
    Quantiles, Iter<'a, ValueAtQuantile>, (f64, f64), |q| (q.quantile, q.value)
);
mapped_iter!(
    /// Number points.
    Numbers, Iter<'a, NumberDataPoint>, NumberPoint<'a, Prost>, number_point
);
mapped_iter!(
    /// Histogram points.
    Histograms, Iter<'a, HistogramDataPoint>, HistogramPoint<'a, Prost>, histogram_point
);
mapped_iter!(
    /// Exponential histogram points.
    Exponentials, Iter<'a, ExponentialHistogramDataPoint>, ExpPoint<'a, Prost>, exp_point
);
mapped_iter!(
    /// Summary points.
    Summaries, Iter<'a, SummaryDataPoint>, SummaryPoint<'a, Prost>, summary_point
);
mapped_iter!(
    /// Metrics.
    Metrics, Iter<'a, Metric>, MetricView<'a, Prost>, metric_view
);
mapped_iter!(
    /// Scopes.
    Scopes, Iter<'a, ScopeMetrics>, ScopeView<'a, Prost>, scope
);
mapped_iter!(
    /// Resources.
    Resources, Iter<'a, ResourceMetrics>, ResourceView<'a, Prost>, resource
);

/// View of an `AnyValue`.
pub(crate) fn val(v: &AnyValue) -> Option<PVal<'_>> {
    Some(match v.value.as_ref()? {
        Value::StringValue(s) => Val::Str(s),
        Value::BoolValue(b) => Val::Bool(*b),
        Value::IntValue(i) => Val::Int(*i),
        Value::DoubleValue(d) => Val::Double(*d),
        Value::BytesValue(b) => Val::Bytes(b),
        Value::StringValueStrindex(i) => Val::Strindex(*i),
        Value::ArrayValue(a) => Val::Array(ProstNested::Array(a)),
        Value::KvlistValue(l) => Val::Kvlist(ProstNested::Kvlist(l)),
    })
}

fn attr(kv: &KeyValue) -> Attr<'_, ProstNested<'_>> {
    (kv.key.as_str(), kv.value.as_ref().and_then(val))
}

impl<'a> Nested<'a> for ProstNested<'a> {
    fn array(self) -> impl Iterator<Item = Option<PVal<'a>>> {
        let items: &'a [AnyValue] = match self {
            ProstNested::Array(a) => &a.values,
            ProstNested::Kvlist(_) => &[],
        };
        items.iter().map(val)
    }

    fn kvlist(self) -> impl Iterator<Item = Attr<'a, Self>> {
        let items: &'a [KeyValue] = match self {
            ProstNested::Kvlist(l) => &l.values,
            ProstNested::Array(_) => &[],
        };
        items.iter().map(attr)
    }
}

impl<'a> View<'a> for Prost {
    const OWNED: bool = true;
    type N = ProstNested<'a>;
    type Attrs = Attrs<'a>;
    type Exemplars = Exemplars<'a>;
    type F64s = Copied<Iter<'a, f64>>;
    type Fixed64s = Copied<Iter<'a, u64>>;
    type Varints = Copied<Iter<'a, u64>>;
    type Quantiles = Quantiles<'a>;
    type Numbers = Numbers<'a>;
    type Histograms = Histograms<'a>;
    type Exponentials = Exponentials<'a>;
    type Summaries = Summaries<'a>;
    type Metrics = Metrics<'a>;
    type Scopes = Scopes<'a>;
    type Resources = Resources<'a>;
}

/// The resources of `req`.
pub(crate) fn resources(req: &ExportMetricsServiceRequest) -> <Prost as View<'_>>::Resources {
    Resources(req.resource_metrics.iter())
}

/// An attribute list.
pub(crate) fn attrs(kvs: &[KeyValue]) -> <Prost as View<'_>>::Attrs {
    Attrs(kvs.iter())
}

/// Parsed bytes of one exemplar.
fn exemplar(e: &Exemplar) -> usize {
    size_of::<Exemplar>()
        + e.span_id.len()
        + e.trace_id.len()
        + size_of_val(e.filtered_attributes.as_slice())
        + attr_bytes(attrs(&e.filtered_attributes))
}

fn base<'a>(
    time: u64,
    start: u64,
    flags: u32,
    kvs: &'a [KeyValue],
    ex: &'a [Exemplar],
) -> Base<'a, Prost> {
    Base {
        time,
        start,
        flags,
        attrs: attrs(kvs),
        attrs_len: kvs.len(),
        exemplars: Exemplars(ex.iter()),
        exemplars_len: ex.len(),
    }
}

fn resource(rm: &ResourceMetrics) -> ResourceView<'_, Prost> {
    let kvs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
    ResourceView {
        attrs: attrs(kvs),
        scopes: Scopes(rm.scope_metrics.iter()),
    }
}

fn scope(sm: &ScopeMetrics) -> ScopeView<'_, Prost> {
    ScopeView {
        name: sm.scope.as_ref().map_or("", |s| s.name.as_str()),
        metrics: Metrics(sm.metrics.iter()),
    }
}

fn metric_view(m: &Metric) -> MetricView<'_, Prost> {
    let data = m.data.as_ref().map(|d| match d {
        metric::Data::Gauge(g) => Data::Gauge(Numbers(g.data_points.iter())),
        metric::Data::Sum(s) => Data::Sum(
            Numbers(s.data_points.iter()),
            s.aggregation_temporality,
            s.is_monotonic,
        ),
        metric::Data::Histogram(h) => {
            Data::Histogram(Histograms(h.data_points.iter()), h.aggregation_temporality)
        }
        metric::Data::ExponentialHistogram(h) => Data::Exponential(
            Exponentials(h.data_points.iter()),
            h.aggregation_temporality,
        ),
        metric::Data::Summary(s) => Data::Summary(Summaries(s.data_points.iter())),
    });
    MetricView {
        name: &m.name,
        unit: &m.unit,
        description_len: m.description.len(),
        data,
    }
}

/// View of one number point.
pub(crate) fn number_point(p: &NumberDataPoint) -> NumberPoint<'_, Prost> {
    NumberPoint {
        base: base(
            p.time_unix_nano,
            p.start_time_unix_nano,
            p.flags,
            &p.attributes,
            &p.exemplars,
        ),
        value: p.value,
    }
}

/// View of one histogram point.
pub(crate) fn histogram_point(p: &HistogramDataPoint) -> HistogramPoint<'_, Prost> {
    HistogramPoint {
        base: base(
            p.time_unix_nano,
            p.start_time_unix_nano,
            p.flags,
            &p.attributes,
            &p.exemplars,
        ),
        count: p.count,
        sum: p.sum,
        min: p.min,
        max: p.max,
        bounds: p.explicit_bounds.iter().copied(),
        buckets: p.bucket_counts.iter().copied(),
    }
}

/// View of one exponential histogram point.
pub(crate) fn exp_point(p: &ExponentialHistogramDataPoint) -> ExpPoint<'_, Prost> {
    fn buckets(b: Option<&Buckets>) -> (i32, Copied<Iter<'_, u64>>) {
        b.map_or((0, [].iter().copied()), |b| {
            (b.offset, b.bucket_counts.iter().copied())
        })
    }
    let (positive_offset, positive) = buckets(p.positive.as_ref());
    let (negative_offset, negative) = buckets(p.negative.as_ref());
    ExpPoint {
        base: base(
            p.time_unix_nano,
            p.start_time_unix_nano,
            p.flags,
            &p.attributes,
            &p.exemplars,
        ),
        count: p.count,
        sum: p.sum,
        min: p.min,
        max: p.max,
        scale: p.scale,
        zero_count: p.zero_count,
        zero_threshold: p.zero_threshold,
        positive_offset,
        positive,
        negative_offset,
        negative,
    }
}

/// View of one summary point.
pub(crate) fn summary_point(p: &SummaryDataPoint) -> SummaryPoint<'_, Prost> {
    SummaryPoint {
        base: base(
            p.time_unix_nano,
            p.start_time_unix_nano,
            p.flags,
            &p.attributes,
            &[],
        ),
        count: p.count,
        sum: p.sum,
        quantiles: Quantiles(p.quantile_values.iter()),
    }
}
