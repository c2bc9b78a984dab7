//! OTLP protobuf bytes → Arrow batch, through prost and through the zero-copy bytes path,
//! which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    phoenix_ingest_fuzz::check_protobuf(data);
});
