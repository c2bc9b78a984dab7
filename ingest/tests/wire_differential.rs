//! Differential tests of the zero-copy protobuf path: `decode_protobuf_at(bytes)` must equal
//! prost-decoding the bytes and calling `decode_at`, for random requests, mutated bytes and
//! hand-made encodings (unknown fields, unpacked repeats, duplicated fields, deep nesting).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use phoenix_ingest::decode::{decode_at, decode_protobuf_at, estimated_memory_protobuf};
use phoenix_ingest::{DecodeLimits, Decoded, Error};
use proptest::prelude::*;
use prost::Message;
use std::time::Duration;

#[path = "common/otlp_strategies.rs"]
mod strategies;
use strategies::{request, T};

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_attributes: 3,
        max_attribute_value_bytes: 24,
        max_decoded_bytes: 64 << 20,
        max_past: Some(Duration::from_secs(3600)),
        max_future: Some(Duration::from_secs(60)),
    }
}

/// Outcome of one decode, comparable across paths (`Err` keeps the error's kind).
fn outcome(r: Result<Decoded, Error>) -> Result<Decoded, String> {
    r.map_err(|e| match e {
        Error::TooLarge { .. } => "too large".to_string(),
        Error::InvalidProtobuf(_) => "invalid protobuf".to_string(),
        e => format!("other: {e}"),
    })
}

/// Asserts both decodes gave the same batch and counters.
fn assert_same(wire: &Result<Decoded, String>, prost: &Result<Decoded, String>) {
    match (wire, prost) {
        (Ok(w), Ok(p)) => {
            assert_eq!(w.batch, p.batch, "batch");
            assert_eq!(w.accepted, p.accepted, "accepted");
            assert_eq!(w.rejected, p.rejected, "rejected");
            assert_eq!(w.rejections, p.rejections, "rejections");
            assert_eq!(w.first_error, p.first_error, "first_error");
            assert_eq!(w.exemplars_dropped, p.exemplars_dropped, "exemplars");
            assert_eq!(w.metrics_without_data, p.metrics_without_data, "no data");
        }
        (Err(w), Err(p)) => assert_eq!(w, p),
        (w, p) => panic!(
            "wire {:?} vs prost {:?}",
            w.as_ref().map(|d| d.accepted),
            p.as_ref().map(|d| d.accepted)
        ),
    }
}

/// Decodes `bytes` both ways and checks they agree: prost fails ⇔ the wire path fails with
/// `InvalidProtobuf`, else equal outcomes. Returns whether prost accepted the bytes.
fn differential(bytes: &[u8]) -> bool {
    let wire = outcome(decode_protobuf_at(bytes, &limits(), T as i64));
    match ExportMetricsServiceRequest::decode(bytes) {
        Ok(req) => {
            assert_same(&wire, &outcome(decode_at(&req, &limits(), T as i64)));
            assert!(estimated_memory_protobuf(bytes, &limits()).is_ok());
            true
        }
        Err(e) => {
            assert_eq!(
                wire.as_ref().err().map(String::as_str),
                Some("invalid protobuf"),
                "prost failed ({e}) but the wire path did not"
            );
            false
        }
    }
}

/// 1000 cases per property; `PROPTEST_CASES` sets more for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Random requests of every kind and value: the bytes path equals the prost path exactly.
    #[test]
    fn wire_equals_prost(req in request()) {
        let bytes = req.encode_to_vec();
        // Compared with the request as prost reads it back: proto3 does not encode a -0.0
        // double (it equals the 0.0 default), so `req` itself may differ from its bytes there.
        let parsed = ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("round trip");
        let wire = outcome(decode_protobuf_at(&bytes, &limits(), T as i64));
        let prost = outcome(decode_at(&parsed, &limits(), T as i64));
        assert_same(&wire, &prost);
    }

    /// Byte flips, truncations and insertions of valid encodings: prost fails ⇔ the wire path
    /// fails, and when both succeed the outcomes are equal.
    #[test]
    fn mutated_bytes_agree(
        req in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        insert in prop::option::of((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..6))),
    ) {
        let mut bytes = req.encode_to_vec();
        if !bytes.is_empty() {
            for (at, x) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            if let Some((at, more)) = insert {
                let i = at.index(bytes.len());
                bytes.splice(i..i, more);
            }
            if let Some(at) = cut {
                bytes.truncate(at.index(bytes.len()));
            }
        }
        differential(&bytes);
    }

    /// Arbitrary bytes: never a panic, and prost fails ⇔ the wire path fails.
    #[test]
    fn arbitrary_bytes_agree(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        differential(&bytes);
    }
}

// ---- hand-made encodings ----------------------------------------------------------------

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn key(num: u32, wire: u8) -> Vec<u8> {
    varint(u64::from(num) << 3 | u64::from(wire))
}

/// A length-delimited field.
fn ld(num: u32, payload: &[u8]) -> Vec<u8> {
    [key(num, 2), varint(payload.len() as u64), payload.to_vec()].concat()
}

/// A 64-bit field.
fn fx(num: u32, v: u64) -> Vec<u8> {
    [key(num, 1), v.to_le_bytes().to_vec()].concat()
}

/// A varint field.
fn vi(num: u32, v: u64) -> Vec<u8> {
    [key(num, 0), varint(v)].concat()
}

/// Unknown fields of every wire type, a nested group included.
fn unknown() -> Vec<u8> {
    [
        vi(15, 300),
        fx(16, 7),
        ld(17, b"zz"),
        key(18, 5),
        vec![1, 2, 3, 4],
        key(19, 3),
        vi(1, 1),
        key(2, 3),
        ld(3, b"in group"),
        key(2, 4),
        key(19, 4),
    ]
    .concat()
}

fn any_str(s: &str) -> Vec<u8> {
    ld(1, s.as_bytes())
}

fn kv(k: &str, any: &[u8]) -> Vec<u8> {
    [ld(1, k.as_bytes()), ld(2, any)].concat()
}

fn point(extra: &[u8]) -> Vec<u8> {
    [
        fx(3, T),
        fx(4, 2.5f64.to_bits()),
        ld(7, &kv("host", &any_str("h1"))),
        extra.to_vec(),
    ]
    .concat()
}

/// A request of one resource (`service.name` = svc), one scope and `metrics`.
fn req(metrics: &[Vec<u8>]) -> Vec<u8> {
    let resource = ld(1, &ld(1, &kv("service.name", &any_str("svc"))));
    let scope = ld(1, &ld(1, b"lib"));
    let sm: Vec<u8> = [scope, metrics.iter().flat_map(|m| ld(2, m)).collect()].concat();
    ld(1, &[resource, ld(2, &sm)].concat())
}

fn gauge(name: &str, points: &[Vec<u8>]) -> Vec<u8> {
    let g: Vec<u8> = points.iter().flat_map(|p| ld(1, p)).collect();
    [ld(1, name.as_bytes()), ld(5, &g)].concat()
}

/// Asserts prost accepts (or refuses) `bytes` as expected and both paths agree; for accepted
/// bytes returns the wire path's outcome.
fn agree(bytes: &[u8], accepted: bool) -> Option<Decoded> {
    assert_eq!(differential(bytes), accepted, "prost acceptance");
    accepted.then(|| decode_protobuf_at(bytes, &limits(), T as i64).expect("decodes"))
}

/// Unknown fields of every wire type (nested groups too) at every message level are skipped.
#[test]
fn unknown_fields_everywhere_are_skipped() {
    let u = unknown();
    let any = [any_str("v"), u.clone()].concat();
    let kv_u = [ld(1, b"k"), ld(2, &any), u.clone()].concat();
    let p = [fx(3, T), fx(4, 1f64.to_bits()), ld(7, &kv_u), u.clone()].concat();
    let g = [ld(1, &p), u.clone()].concat();
    let metric = [ld(1, b"m"), u.clone(), ld(5, &g)].concat();
    let resource = [ld(1, &kv("service.name", &any_str("svc"))), u.clone()].concat();
    let scope = [ld(1, b"lib"), u.clone()].concat();
    let sm = [ld(1, &scope), ld(2, &metric), u.clone()].concat();
    let rm = [u.clone(), ld(1, &resource), ld(2, &sm), u.clone()].concat();
    let bytes = [u.clone(), ld(1, &rm), u].concat();
    let d = agree(&bytes, true).expect("accepted");
    assert_eq!(d.accepted, 1);
}

/// Repeated scalars unpacked, packed, or both mixed decode to the same lists as prost.
#[test]
fn unpacked_and_mixed_repeated_scalars() {
    let bounds = [1.0f64, 2.0, 3.0];
    let counts = [1u64, 2, 3, 4];
    let packed_bounds: Vec<u8> = bounds.iter().flat_map(|b| b.to_le_bytes()).collect();
    let unpacked_bounds: Vec<u8> = bounds.iter().flat_map(|b| fx(7, b.to_bits())).collect();
    let unpacked_counts: Vec<u8> = counts.iter().flat_map(|c| fx(6, *c)).collect();
    let mixed_counts = [
        fx(6, 1),
        ld(6, &[2u64.to_le_bytes(), 3u64.to_le_bytes()].concat()),
        fx(6, 4),
    ]
    .concat();
    for (b, c) in [
        (ld(7, &packed_bounds), unpacked_counts.clone()),
        (unpacked_bounds.clone(), unpacked_counts),
        (unpacked_bounds, mixed_counts),
    ] {
        let hp = [fx(3, T), fx(4, 10), b, c].concat();
        let metric = [ld(1, b"h"), ld(9, &[ld(1, &hp), vi(2, 2)].concat())].concat();
        let d = agree(&req(&[metric]), true).expect("accepted");
        assert_eq!(d.accepted, 1, "{:?}", d.first_error);
    }
    // Exponential buckets: varints unpacked and packed, negative offset (sint32).
    let buckets = [
        vi(1, 5),
        vi(2, 7),
        ld(2, &[varint(300), varint(1)].concat()),
    ]
    .concat();
    let ep = [
        fx(3, T),
        fx(4, 3),
        vi(6, 3),
        ld(8, &buckets),
        ld(9, &vi(1, 6)),
    ]
    .concat();
    let metric = [ld(1, b"e"), ld(10, &ld(1, &ep))].concat();
    let d = agree(&req(&[metric]), true).expect("accepted");
    assert_eq!(d.accepted, 1);
}

/// Duplicated singular fields: scalars and strings keep the last value, oneofs the last
/// variant, and repeated singular messages merge (as prost does).
#[test]
fn duplicated_fields_follow_prost() {
    // Scalars and strings twice.
    let p = point(&[fx(3, T + 5), vi(8, 0), fx(6, 9)].concat());
    let m = [ld(1, b"first"), gauge("second", &[p])].concat();
    let d = agree(&req(&[m]), true).expect("accepted");
    assert_eq!(d.accepted, 1);
    // Oneof: gauge then sum keeps the sum; int then double keeps the double.
    let sum = [ld(1, &point(&[])), vi(2, 2), vi(3, 1)].concat();
    let m = [gauge("g", &[point(&[])]), ld(7, &sum)].concat();
    agree(&req(&[m]), true);
    // Singular messages twice merge: two gauges concatenate their points, two resources merge
    // their attributes, a KeyValue's value and an AnyValue's array merge.
    let m = [gauge("g", &[point(&[])]), ld(5, &ld(1, &point(&[])))].concat();
    let d = agree(&req(&[m]), true).expect("accepted");
    assert_eq!(d.accepted, 2);
    let arr = ld(5, &ld(1, &any_str("x")));
    let any = [arr.clone(), arr, any_str("s"), ld(5, &ld(1, &vi(3, 4)))].concat();
    let p = [
        fx(3, T),
        ld(7, &[ld(1, b"k"), ld(2, &any), ld(2, &vi(2, 1))].concat()),
    ]
    .concat();
    agree(&req(&[gauge("g", &[p])]), true);
    let resource2 = ld(1, &ld(1, &kv("host", &any_str("h"))));
    let rm = [
        ld(1, &ld(1, &kv("service.name", &any_str("svc")))),
        resource2,
        ld(2, &ld(2, &gauge("g", &[point(&[])]))),
    ]
    .concat();
    agree(&ld(1, &rm), true);
}

/// Malformed encodings fail on both paths: bad UTF-8 (even in fields the decoder ignores),
/// wrong wire types, bad varints and keys, packed lengths, stray or mismatched group ends.
#[test]
fn malformed_encodings_fail_like_prost() {
    let bad_utf8 = [ld(1, b"m"), ld(2, &[0xff, 0xfe]), gauge("m", &[point(&[])])].concat();
    agree(&req(&[bad_utf8]), false);
    let bad_key = gauge("m", &[point(&ld(7, &kv("\u{0}", &ld(1, &[0xc0]))))]);
    agree(&req(&[bad_key]), false);
    agree(&req(&[[vi(1, 3), gauge("m", &[])].concat()]), false);
    agree(&req(&[gauge("m", &[[vi(3, 1)].concat()])]), false);
    // Varints: ten bytes ending in 1 are fine, ending in 2 (or longer) are not.
    let ten = |last: u8| [key(8, 0), vec![0xff; 9], vec![last]].concat();
    agree(&req(&[gauge("m", &[point(&ten(1))])]), true);
    agree(&req(&[gauge("m", &[point(&ten(2))])]), false);
    agree(&[key(1, 0), vec![0x80; 11]].concat(), false);
    // Keys: field 0, wire types 6 and 7, over 32 bits.
    agree(&vi(0, 1), false);
    agree(&key(3, 6), false);
    agree(&[key(3, 7), vec![0]].concat(), false);
    agree(&varint(1 << 35), false);
    // Packed fixed64 not a multiple of 8.
    let hp = [fx(3, T), ld(6, &[0; 12])].concat();
    agree(&req(&[[ld(1, b"h"), ld(9, &ld(1, &hp))].concat()]), false);
    // Groups: a stray end, a mismatched end, a known field as a group.
    agree(&[key(20, 4)].concat(), false);
    agree(&[key(20, 3), key(21, 4)].concat(), false);
    agree(&[key(20, 3), key(20, 4)].concat(), true);
    agree(&[key(1, 3), key(1, 4)].concat(), false);
    // Truncated at every byte of a valid request.
    let ok = req(&[gauge("m", &[point(&[]), point(&unknown())])]);
    for n in 0..ok.len() {
        differential(&ok[..n]);
    }
}

/// Nesting near the recursion limit (arrays in attribute values, groups in unknown fields)
/// is accepted and refused exactly where prost draws the line.
#[test]
fn recursion_limit_matches_prost() {
    let mut accepted = Vec::new();
    for depth in [10, 40, 43, 44, 45, 46, 47, 60] {
        let mut any = vi(3, 1);
        for _ in 0..depth {
            any = ld(5, &ld(1, &any));
        }
        let p = [fx(3, T), ld(7, &kv("deep", &any))].concat();
        accepted.push(differential(&req(&[gauge("g", &[p])])));
    }
    assert!(
        accepted.contains(&true) && accepted.contains(&false),
        "{accepted:?}"
    );
    let mut groups = Vec::new();
    for depth in [90, 98, 99, 100, 101, 110] {
        let mut g = Vec::new();
        for _ in 0..depth {
            g = [key(20, 3), g, key(20, 4)].concat();
        }
        groups.push(differential(&g));
    }
    assert!(
        groups.contains(&true) && groups.contains(&false),
        "{groups:?}"
    );
}
