//! The OTLP metrics messages as field tables (numbers and types from
//! `opentelemetry-proto`'s generated prost code), for [`super::check`], with what its
//! counting does with each field and at each message's end.

/// How a known field is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Singular varint (int32, int64, uint32, sint32, bool, enum).
    Varint,
    /// Singular 64-bit (fixed64, sfixed64, double).
    Fixed64,
    /// String (singular or repeated): UTF-8.
    Str,
    /// Bytes.
    Bytes,
    /// Repeated message.
    Msgs(&'static Schema),
    /// Singular message (or a message variant of a oneof): a second occurrence merges.
    Msg(&'static Schema),
    /// Repeated varint, packed or not.
    RepVarint,
    /// Repeated 64-bit, packed or not.
    RepFixed64,
    /// Not a field of the message: skipped.
    Unknown,
}

/// What the check's counting (the [`Capacity`](crate::decode::capacity::Capacity) of the
/// request) does with a field once it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Nothing.
    No,
    /// A datapoint attribute (`KeyValue`).
    PointAttr,
    /// A resource attribute (`KeyValue`).
    ResourceAttr,
    /// `Metric.name`.
    MetricName,
    /// `Metric.unit`.
    MetricUnit,
    /// `InstrumentationScope.name`.
    ScopeName,
    /// `ScopeMetrics.scope`.
    Scope,
    /// `ResourceMetrics.resource`.
    Resource,
    /// A variant of the `Metric.data` oneof (the last one counts).
    Data,
    /// `explicit_bounds` items.
    Bounds,
    /// Explicit `bucket_counts` items.
    BucketCounts,
    /// Exponential `Buckets.bucket_counts` items.
    ExpCounts,
    /// `positive` buckets.
    Positive,
    /// `negative` buckets.
    Negative,
    /// A `quantile_values` item.
    Quantile,
}

/// Which message a schema is, where the counting does something at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Nothing to do.
    Other,
    /// A datapoint: one row.
    Point,
    /// A `Metric`: its name and unit on each of its rows.
    Metric,
    /// A `ScopeMetrics`: its scope name on each of its rows.
    ScopeMetrics,
    /// A `ResourceMetrics`: its resource attributes (and service text) on each of its rows.
    ResourceMetrics,
}

/// Field numbers of OTLP metrics messages are below this.
const TAGS: usize = 16;

/// The known fields of one message, indexed by field number, and its counting role.
#[derive(Debug)]
pub(crate) struct Schema {
    fields: [(Kind, Count); TAGS],
    /// What the counting does at the message's end.
    pub(crate) role: Role,
}

impl Schema {
    /// The kind of field `tag` and what the counting does with it.
    #[inline]
    pub(crate) fn field(&self, tag: u32) -> (Kind, Count) {
        usize::try_from(tag)
            .ok()
            .and_then(|t| self.fields.get(t))
            .copied()
            .unwrap_or((Kind::Unknown, Count::No))
    }

    /// This schema with role `role` and the counted fields `counts` (`(field number, count)`).
    const fn counted(mut self, role: Role, counts: &[(usize, Count)]) -> Schema {
        let mut i = 0;
        while i < counts.len() {
            self.fields[counts[i].0].1 = counts[i].1;
            i += 1;
        }
        self.role = role;
        self
    }
}

/// A schema from `(field number, kind)` pairs (numbers below [`TAGS`]), counting nothing.
const fn schema(fields: &[(usize, Kind)]) -> Schema {
    let mut table = [(Kind::Unknown, Count::No); TAGS];
    let mut i = 0;
    while i < fields.len() {
        table[fields[i].0].0 = fields[i].1;
        i += 1;
    }
    Schema {
        fields: table,
        role: Role::Other,
    }
}

use Count::*;
use Kind::*;

/// `ExportMetricsServiceRequest`.
pub(crate) static REQUEST: Schema = schema(&[(1, Msgs(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Schema =
    schema(&[(1, Msg(&RESOURCE)), (2, Msgs(&SCOPE_METRICS)), (3, Str)])
        .counted(Role::ResourceMetrics, &[(1, Resource)]);
static RESOURCE: Schema = schema(&[(1, Msgs(&KEY_VALUE)), (2, Varint), (3, Msgs(&ENTITY_REF))])
    .counted(Role::Other, &[(1, ResourceAttr)]);
static ENTITY_REF: Schema = schema(&[(1, Str), (2, Str), (3, Str), (4, Str)]);
static SCOPE_METRICS: Schema = schema(&[(1, Msg(&SCOPE)), (2, Msgs(&METRIC)), (3, Str)])
    .counted(Role::ScopeMetrics, &[(1, Scope)]);
static SCOPE: Schema = schema(&[(1, Str), (2, Str), (3, Msgs(&KEY_VALUE)), (4, Varint)])
    .counted(Role::Other, &[(1, ScopeName)]);
static METRIC: Schema = schema(&[
    (1, Str),
    (2, Str),
    (3, Str),
    (5, Msg(&GAUGE)),
    (7, Msg(&SUM)),
    (9, Msg(&HISTOGRAM)),
    (10, Msg(&EXP_HISTOGRAM)),
    (11, Msg(&SUMMARY)),
    (12, Msgs(&KEY_VALUE)),
])
.counted(
    Role::Metric,
    &[
        (1, MetricName),
        (3, MetricUnit),
        (5, Data),
        (7, Data),
        (9, Data),
        (10, Data),
        (11, Data),
    ],
);
static GAUGE: Schema = schema(&[(1, Msgs(&NUMBER_POINT))]);
static SUM: Schema = schema(&[(1, Msgs(&NUMBER_POINT)), (2, Varint), (3, Varint)]);
static HISTOGRAM: Schema = schema(&[(1, Msgs(&HISTOGRAM_POINT)), (2, Varint)]);
static EXP_HISTOGRAM: Schema = schema(&[(1, Msgs(&EXP_POINT)), (2, Varint)]);
static SUMMARY: Schema = schema(&[(1, Msgs(&SUMMARY_POINT))]);
static NUMBER_POINT: Schema = schema(&[
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Msgs(&EXEMPLAR)),
    (6, Fixed64),
    (7, Msgs(&KEY_VALUE)),
    (8, Varint),
])
.counted(Role::Point, &[(7, PointAttr)]);
static HISTOGRAM_POINT: Schema = schema(&[
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, RepFixed64),
    (7, RepFixed64),
    (8, Msgs(&EXEMPLAR)),
    (9, Msgs(&KEY_VALUE)),
    (10, Varint),
    (11, Fixed64),
    (12, Fixed64),
])
.counted(
    Role::Point,
    &[(6, BucketCounts), (7, Bounds), (9, PointAttr)],
);
static EXP_POINT: Schema = schema(&[
    (1, Msgs(&KEY_VALUE)),
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, Varint),
    (7, Fixed64),
    (8, Msg(&BUCKETS)),
    (9, Msg(&BUCKETS)),
    (10, Varint),
    (11, Msgs(&EXEMPLAR)),
    (12, Fixed64),
    (13, Fixed64),
    (14, Fixed64),
])
.counted(Role::Point, &[(1, PointAttr), (8, Positive), (9, Negative)]);
static BUCKETS: Schema =
    schema(&[(1, Varint), (2, RepVarint)]).counted(Role::Other, &[(2, ExpCounts)]);
static SUMMARY_POINT: Schema = schema(&[
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, Msgs(&QUANTILE)),
    (7, Msgs(&KEY_VALUE)),
    (8, Varint),
])
.counted(Role::Point, &[(6, Quantile), (7, PointAttr)]);
static QUANTILE: Schema = schema(&[(1, Fixed64), (2, Fixed64)]);
static EXEMPLAR: Schema = schema(&[
    (2, Fixed64),
    (3, Fixed64),
    (4, Bytes),
    (5, Bytes),
    (6, Fixed64),
    (7, Msgs(&KEY_VALUE)),
]);
/// `KeyValue`.
pub(crate) static KEY_VALUE: Schema = schema(&[(1, Str), (2, Msg(&ANY_VALUE)), (3, Varint)]);
static ANY_VALUE: Schema = schema(&[
    (1, Str),
    (2, Varint),
    (3, Varint),
    (4, Fixed64),
    (5, Msg(&ARRAY_VALUE)),
    (6, Msg(&KEY_VALUE_LIST)),
    (7, Bytes),
    (8, Varint),
]);
static ARRAY_VALUE: Schema = schema(&[(1, Msgs(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = schema(&[(1, Msgs(&KEY_VALUE))]);
