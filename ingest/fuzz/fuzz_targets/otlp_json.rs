//! OTLP/JSON bytes → `ExportMetricsServiceRequest` → Arrow batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) {
        phoenix_ingest_fuzz::check_request(&req);
    }
});
