//! Decodes a loadgen-shaped OTLP request (1,000 gauges, 3 attributes each) with the zero-copy
//! decoder, for instruction counts under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='decode_cost::measured*' \
//!     target/release/examples/decode_cost [requests]
//! ```
//!
//! Only `measured_decode` is counted (the request is encoded outside it); divide the total by
//! `requests` for the cost of one request of 1,000 datapoints.

use phoenix_ingest::{decode_protobuf, DecodeLimits};
use prost::Message;

/// Decodes `body` `requests` times; returns the datapoints accepted.
#[inline(never)]
fn measured_decode(body: &[u8], limits: &DecodeLimits, requests: usize) -> usize {
    (0..requests)
        .map(|_| decode_protobuf(body, limits).map_or(0, |d| d.accepted))
        .sum()
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let body = phoenix_benches::gauge_request(1000, 1_700_000_000_000_000_000).encode_to_vec();
    let limits = DecodeLimits::from_config(&Default::default()).without_time_window();
    let accepted = measured_decode(&body, &limits, requests);
    println!(
        "{{\"requests\":{requests},\"accepted\":{accepted},\"body_bytes\":{}}}",
        body.len()
    );
}
