//! The OTLP metrics messages as field tables (numbers and types from
//! `opentelemetry-proto`'s generated prost code), for [`super::check`].

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

/// Field numbers of OTLP metrics messages are below this.
const TAGS: usize = 16;

/// The known fields of one message, indexed by field number.
#[derive(Debug)]
pub(crate) struct Schema([Kind; TAGS]);

impl Schema {
    /// The kind of field `tag`.
    #[inline]
    pub(crate) fn kind(&self, tag: u32) -> Kind {
        usize::try_from(tag)
            .ok()
            .and_then(|t| self.0.get(t))
            .copied()
            .unwrap_or(Kind::Unknown)
    }
}

/// A schema from `(field number, kind)` pairs (numbers below [`TAGS`]).
const fn schema(fields: &[(usize, Kind)]) -> Schema {
    let mut table = [Kind::Unknown; TAGS];
    let mut i = 0;
    while i < fields.len() {
        table[fields[i].0] = fields[i].1;
        i += 1;
    }
    Schema(table)
}

use Kind::*;

/// `ExportMetricsServiceRequest`.
pub(crate) static REQUEST: Schema = schema(&[(1, Msgs(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Schema =
    schema(&[(1, Msg(&RESOURCE)), (2, Msgs(&SCOPE_METRICS)), (3, Str)]);
static RESOURCE: Schema = schema(&[(1, Msgs(&KEY_VALUE)), (2, Varint), (3, Msgs(&ENTITY_REF))]);
static ENTITY_REF: Schema = schema(&[(1, Str), (2, Str), (3, Str), (4, Str)]);
static SCOPE_METRICS: Schema = schema(&[(1, Msg(&SCOPE)), (2, Msgs(&METRIC)), (3, Str)]);
static SCOPE: Schema = schema(&[(1, Str), (2, Str), (3, Msgs(&KEY_VALUE)), (4, Varint)]);
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
]);
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
]);
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
]);
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
]);
static BUCKETS: Schema = schema(&[(1, Varint), (2, RepVarint)]);
static SUMMARY_POINT: Schema = schema(&[
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, Msgs(&QUANTILE)),
    (7, Msgs(&KEY_VALUE)),
    (8, Varint),
]);
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
