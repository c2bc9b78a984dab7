//! Borrowed views of an OTLP metrics request: one trait set with two implementations, the
//! prost message tree ([`super::prost_view`]) and the raw protobuf bytes ([`super::wire`]), so
//! the counting pass, validation and the row builder exist once and are monomorphised twice.
//!
//! A [`View`] names the iterator types of one implementation; the structs here are what those
//! iterators yield. Everything borrows from the request for `'a` and allocates nothing.

pub(crate) use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;

/// An attribute value (`AnyValue.value`), borrowed; `N` holds a nested array or kvlist.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a, N> {
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `string_value_strindex`.
    Strindex(i32),
    /// `array_value`.
    Array(N),
    /// `kvlist_value`.
    Kvlist(N),
}

/// One attribute: key and value (`None` when the `KeyValue` or its `AnyValue` is empty).
pub(crate) type Attr<'a, N> = (&'a str, Option<Val<'a, N>>);

/// A nested `ArrayValue` or `KeyValueList`.
pub(crate) trait Nested<'a>: Copy + 'a {
    /// Items of an array (empty for a kvlist).
    fn array(self) -> impl Iterator<Item = Option<Val<'a, Self>>>;
    /// Entries of a kvlist (empty for an array).
    fn kvlist(self) -> impl Iterator<Item = Attr<'a, Self>>;
}

/// One implementation of the views: the iterator types it yields.
pub(crate) trait View<'a>: Sized + 'a {
    /// Whether the request is an owned message tree whose size the memory estimate counts
    /// (the raw-bytes views count the body instead).
    const OWNED: bool;
    /// Nested attribute values.
    type N: Nested<'a>;
    /// An attribute list.
    type Attrs: Iterator<Item = Attr<'a, Self::N>> + Clone;
    /// Exemplars of a point, each as its estimated parsed bytes (0 when not [`Self::OWNED`]).
    type Exemplars: Iterator<Item = usize> + Clone;
    /// `explicit_bounds`.
    type F64s: Iterator<Item = f64> + Clone;
    /// Explicit `bucket_counts` (fixed64).
    type Fixed64s: Iterator<Item = u64> + Clone;
    /// Exponential `bucket_counts` (uint64).
    type Varints: Iterator<Item = u64> + Clone;
    /// `quantile_values` as `(quantile, value)`.
    type Quantiles: Iterator<Item = (f64, f64)> + Clone;
    /// Gauge and sum points.
    type Numbers: Iterator<Item = NumberPoint<'a, Self>> + Clone;
    /// Histogram points.
    type Histograms: Iterator<Item = HistogramPoint<'a, Self>> + Clone;
    /// Exponential histogram points.
    type Exponentials: Iterator<Item = ExpPoint<'a, Self>> + Clone;
    /// Summary points.
    type Summaries: Iterator<Item = SummaryPoint<'a, Self>> + Clone;
    /// Metrics of a scope.
    type Metrics: Iterator<Item = MetricView<'a, Self>> + Clone;
    /// Scopes of a resource.
    type Scopes: Iterator<Item = ScopeView<'a, Self>> + Clone;
    /// Resources of a request.
    type Resources: Iterator<Item = ResourceView<'a, Self>> + Clone;

    /// Key and value bytes of an attribute list, non-string values guessed (see
    /// [`super::capacity::attr_bytes`]); implementations may count without rendering.
    fn attr_bytes(attrs: Self::Attrs) -> usize {
        super::capacity::attr_bytes(attrs)
    }
}

/// A `ResourceMetrics`.
pub(crate) struct ResourceView<'a, F: View<'a>> {
    /// Resource attributes (empty without a resource).
    pub attrs: F::Attrs,
    /// Its scopes.
    pub scopes: F::Scopes,
}

/// A `ScopeMetrics`.
pub(crate) struct ScopeView<'a, F: View<'a>> {
    /// Scope name ("" without a scope).
    pub name: &'a str,
    /// Its metrics.
    pub metrics: F::Metrics,
}

/// A `Metric`.
pub(crate) struct MetricView<'a, F: View<'a>> {
    /// `name`.
    pub name: &'a str,
    /// `unit`.
    pub unit: &'a str,
    /// Bytes of `description` (only counted).
    pub description_len: usize,
    /// The `data` oneof.
    pub data: Option<Data<'a, F>>,
}

/// The `Metric.data` oneof.
pub(crate) enum Data<'a, F: View<'a>> {
    /// Gauge points.
    Gauge(F::Numbers),
    /// Sum: points, aggregation temporality, monotonic.
    Sum(F::Numbers, i32, bool),
    /// Histogram: points, aggregation temporality.
    Histogram(F::Histograms, i32),
    /// Exponential histogram: points, aggregation temporality.
    Exponential(F::Exponentials, i32),
    /// Summary points.
    Summary(F::Summaries),
}

/// Fields every datapoint type has.
pub(crate) struct Base<'a, F: View<'a>> {
    /// `time_unix_nano`.
    pub time: u64,
    /// `start_time_unix_nano`.
    pub start: u64,
    /// `flags`.
    pub flags: u32,
    /// `attributes`.
    pub attrs: F::Attrs,
    /// Number of `attributes`.
    pub attrs_len: usize,
    /// `exemplars` (summaries have none).
    pub exemplars: F::Exemplars,
    /// Number of `exemplars`.
    pub exemplars_len: usize,
}

/// A `NumberDataPoint`.
pub(crate) struct NumberPoint<'a, F: View<'a>> {
    /// Shared fields.
    pub base: Base<'a, F>,
    /// The `value` oneof.
    pub value: Option<Number>,
}

/// A `HistogramDataPoint`.
pub(crate) struct HistogramPoint<'a, F: View<'a>> {
    /// Shared fields.
    pub base: Base<'a, F>,
    /// `count`.
    pub count: u64,
    /// `sum`.
    pub sum: Option<f64>,
    /// `min`.
    pub min: Option<f64>,
    /// `max`.
    pub max: Option<f64>,
    /// `explicit_bounds`.
    pub bounds: F::F64s,
    /// `bucket_counts`.
    pub buckets: F::Fixed64s,
}

/// An `ExponentialHistogramDataPoint`; absent bucket messages are offset 0, no counts.
pub(crate) struct ExpPoint<'a, F: View<'a>> {
    /// Shared fields.
    pub base: Base<'a, F>,
    /// `count`.
    pub count: u64,
    /// `sum`.
    pub sum: Option<f64>,
    /// `min`.
    pub min: Option<f64>,
    /// `max`.
    pub max: Option<f64>,
    /// `scale`.
    pub scale: i32,
    /// `zero_count`.
    pub zero_count: u64,
    /// `zero_threshold`.
    pub zero_threshold: f64,
    /// `positive.offset`.
    pub positive_offset: i32,
    /// `positive.bucket_counts`.
    pub positive: F::Varints,
    /// `negative.offset`.
    pub negative_offset: i32,
    /// `negative.bucket_counts`.
    pub negative: F::Varints,
}

/// A `SummaryDataPoint`.
pub(crate) struct SummaryPoint<'a, F: View<'a>> {
    /// Shared fields.
    pub base: Base<'a, F>,
    /// `count`.
    pub count: u64,
    /// `sum`.
    pub sum: f64,
    /// `quantile_values`.
    pub quantiles: F::Quantiles,
}

/// Defines a named iterator mapping each item of an inner iterator with `$f`: [`View`]'s
/// associated types need nameable types (and a `Map` over a closure may not inline).
macro_rules! mapped_iter {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $item:ty, $f:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name<'a>($inner);

        impl<'a> Iterator for $name<'a> {
            type Item = $item;

            #[inline]
            fn next(&mut self) -> Option<$item> {
                self.0.next().map($f)
            }

            #[inline]
            fn count(self) -> usize {
                self.0.count()
            }
        }
    };
}
pub(crate) use mapped_iter;
