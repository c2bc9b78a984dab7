//! The check's count equals the views' counting pass ([`Capacity::of`] over [`Wire`]) on every
//! clean body, whatever the order of its fields.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as AnyV, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, Gauge, NumberDataPoint, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;
use prost::Message;

use super::super::reader::{wt, Reader};
use super::super::schema::{Kind, Schema};
use super::{check, Checked, REQUEST};
use crate::decode::capacity::Capacity;
use crate::decode::prost_view::{self, Prost};
use crate::decode::{wire_capacity, DecodeLimits};

/// Value limit of every test: small, so resource rendering is capped sometimes.
const MAX: usize = 24;

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_attributes: 8,
        max_attribute_value_bytes: MAX,
        max_decoded_bytes: 1 << 30,
        max_past: None,
        max_future: None,
    }
}

/// The check's count of a body it must find clean.
fn folded(body: &[u8]) -> Capacity {
    match check(body, MAX) {
        Ok(Checked::Clean(cap)) => cap,
        other => panic!("not clean: {other:?}"),
    }
}

/// Asserts the folded count equals the views' counting pass, and (but for the parsed
/// message's size) prost's counting pass over the message prost reads from `body`.
fn assert_counts(body: &[u8]) -> Capacity {
    let cap = folded(body);
    assert_eq!(cap, wire_capacity(body, &limits()));
    let req = ExportMetricsServiceRequest::decode(body).expect("prost decodes");
    let prost = Capacity {
        message_bytes: body.len(),
        ..Capacity::of::<Prost>(prost_view::resources(&req), MAX)
    };
    assert_eq!(cap, prost);
    cap
}

// ---- field order ------------------------------------------------------------------------

/// The length-delimited field `num`.
fn ld(num: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(num, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// `buf` (a checked message of `schema`) re-encoded with the fields of every message in an
/// order drawn from `seed`: the same message for prost, in another layout.
fn shuffled(buf: &[u8], schema: &Schema, seed: &mut u64) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let start = buf.len() - r.remaining();
        let (tag, wire) = r.key().expect("checked");
        let field = match (schema.field(tag).0, wire) {
            (Kind::Msgs(inner) | Kind::Msg(inner), wt::LEN) => {
                let body = r.len_delimited().expect("checked");
                ld(tag, &shuffled(body, inner, seed))
            }
            _ => {
                r.skip(tag, wire, u32::MAX).expect("checked");
                buf[start..buf.len() - r.remaining()].to_vec()
            }
        };
        fields.push(field);
    }
    // Fisher–Yates with xorshift.
    for i in (1..fields.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        fields.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
    fields.concat()
}

// ---- generated requests -----------------------------------------------------------------

// The strategies of the decoder's differential tests.
#[path = "../../../../tests/common/otlp_strategies.rs"]
mod strategies;
use strategies::request;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random requests of every metric and value kind, as prost lays them out and with the
    /// fields of every message shuffled: the check counts what the views count.
    #[test]
    fn folded_count_equals_views(req in request(), seed in any::<u64>()) {
        let body = req.encode_to_vec();
        assert_counts(&body);
        let mut seed = seed | 1;
        let body = shuffled(&body, &REQUEST, &mut seed);
        assert_counts(&body);
    }
}

// ---- hand-made layouts ------------------------------------------------------------------

fn kv(key: &str, value: AnyV) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn point(attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        value: Some(number_data_point::Value::AsInt(1)),
        ..Default::default()
    }
}

/// Each message's shared fields after its children: a metric's name and unit after its
/// gauge, a scope after its metrics, a resource after its scope metrics; a metric with a
/// gauge then a sum counts only the sum (the oneof keeps the last variant).
#[test]
fn fields_out_of_order() {
    let gauge = Gauge {
        data_points: vec![point(vec![kv("host", AnyV::StringValue("h1".into()))])],
    };
    // name "m1" (2) + unit "ms" (2) after one point.
    let m1 = [ld(5, &gauge.encode_to_vec()), ld(3, b"ms"), ld(1, b"m1")].concat();
    let sum = Sum {
        data_points: vec![point(vec![]), point(vec![kv("n", AnyV::IntValue(7))])],
        aggregation_temporality: 1,
        is_monotonic: false,
    };
    // name "m2" (2), gauge replaced by the sum's two points.
    let m2 = [
        ld(5, &gauge.encode_to_vec()),
        ld(1, b"m2"),
        ld(7, &sum.encode_to_vec()),
    ]
    .concat();
    let scope = InstrumentationScope {
        name: "lib".into(),
        ..Default::default()
    };
    let sm = [ld(2, &m1), ld(2, &m2), ld(1, &scope.encode_to_vec())].concat();
    let resource = Resource {
        attributes: vec![
            kv("service.name", AnyV::StringValue("svc".into())),
            kv("pi", AnyV::DoubleValue(3.5)),
        ],
        ..Default::default()
    };
    let rm = [ld(2, &sm), ld(1, &resource.encode_to_vec())].concat();
    let body = ld(1, &rm);
    let cap = assert_counts(&body);
    // Three rows: one of m1, two of m2 (the gauge point of m2 is not counted).
    assert_eq!(cap.rows, 3);
    assert_eq!(cap.attr_entries, 2);
    assert_eq!(cap.attr_bytes, (4 + 2) + (1 + 16));
    // Resource: "service.name" + "svc" (15) and "pi" + "3.5" (5) on every row.
    assert_eq!(cap.resource_entries, 3 * 2);
    assert_eq!(cap.resource_bytes, 3 * 20);
    // Per row: metric name and unit, scope "lib", the resource bytes (20, under 64).
    assert_eq!(cap.text_bytes, (2 + 2 + 3 + 20) + 2 * (2 + 3 + 20));
    assert_eq!(cap.message_bytes, body.len());
}

/// Bodies that need prost's merging are reported, not counted.
#[test]
fn repeated_singular_message_needs_merge() {
    let rm = [ld(1, &[]), ld(1, &[])].concat();
    assert_eq!(check(&ld(1, &rm), MAX), Ok(Checked::NeedsMerge));
}
