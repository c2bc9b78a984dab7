//! Checks shared by the OTLP fuzz targets: decoding must never panic, must end in a batch or a
//! clean error, and its counts must add up.

use arrow::array::Array;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use phoenix_ingest::decode::{decode_protobuf_reserving, decode_reserving};
use phoenix_ingest::{DecodeLimits, Error};
use phoenix_model::config::IngestConfig;
use prost::Message;

/// The decoder's clock: just after the seeds' timestamps (1.7e18 ns, November 2023), so the
/// time window accepts them and inputs can step over either edge.
pub const NOW: i64 = 1_700_000_100_000_000_000;

/// Default limits with a smaller decoded size, so inputs stay cheap.
pub fn limits() -> DecodeLimits {
    DecodeLimits {
        max_decoded_bytes: 64 << 20,
        ..DecodeLimits::from_config(&IngestConfig::default())
    }
}

/// Datapoints in `req`.
fn points(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            None => 0,
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
        })
        .sum()
}

/// Decodes `req` and checks the outcome; panics (a finding) on any inconsistency, including a
/// batch larger than the memory the decoder reserved for it.
pub fn check_request(req: &ExportMetricsServiceRequest) {
    let mut reserved = 0;
    let reserve = |n: usize| {
        reserved = reserved.max(n);
        Ok(())
    };
    match decode_reserving(req, &limits(), NOW, reserve) {
        Ok(d) => {
            let rows = d.batch.as_ref().map_or(0, |b| b.num_rows());
            assert_eq!(rows, d.accepted, "batch rows vs accepted");
            assert_eq!(d.accepted + d.rejected, points(req), "every point counted");
            assert_eq!(d.rejections.total(), d.rejected as u64, "reasons add up");
            assert_eq!(
                d.error_message().is_some(),
                d.rejected > 0,
                "message iff rejected"
            );
            if let Some(b) = &d.batch {
                let memory = b.get_array_memory_size();
                assert!(
                    memory <= reserved,
                    "batch of {memory} bytes, {reserved} reserved"
                );
                assert_eq!(b.schema(), phoenix_model::metrics_schema());
                for c in b.columns() {
                    c.to_data().validate_full().expect("valid column");
                }
            }
        }
        // The only clean error for a parsed request: it would decode too large.
        Err(Error::TooLarge { .. }) => {}
        Err(e) => panic!("unexpected decode error: {e}"),
    }
}

/// Decodes protobuf `data` through the zero-copy bytes path and through prost: prost refuses
/// it ⇔ the bytes path does; otherwise [`check_request`] holds and both outcomes are equal.
pub fn check_protobuf(data: &[u8]) {
    let mut reserved = 0;
    let reserve = |n: usize| {
        reserved = reserved.max(n);
        Ok(())
    };
    let wire = decode_protobuf_reserving(data, &limits(), NOW, reserve);
    let Ok(req) = ExportMetricsServiceRequest::decode(data) else {
        assert!(
            matches!(wire, Err(Error::InvalidProtobuf(_))),
            "prost refused the bytes, the bytes path did not"
        );
        return;
    };
    check_request(&req);
    match (wire, decode_reserving(&req, &limits(), NOW, |_| Ok(()))) {
        (Ok(w), Ok(p)) => {
            if let Some(b) = &w.batch {
                let memory = b.get_array_memory_size();
                assert!(
                    memory <= reserved,
                    "batch of {memory} bytes, {reserved} reserved"
                );
            }
            assert_eq!(w.batch, p.batch, "same batch");
            assert_eq!(
                (w.accepted, w.rejected, w.rejections, w.first_error),
                (p.accepted, p.rejected, p.rejections, p.first_error),
                "same counts"
            );
            assert_eq!(w.exemplars_dropped, p.exemplars_dropped);
            assert_eq!(w.metrics_without_data, p.metrics_without_data);
        }
        (Err(Error::TooLarge { .. }), Err(Error::TooLarge { .. })) => {}
        (w, p) => panic!(
            "bytes path {:?} vs prost path {:?}",
            w.map(|d| d.accepted),
            p.map(|d| d.accepted)
        ),
    }
}
