//! Command-line flags of `phoenix loadgen` (clap derive, embedded by the binary).

use std::fmt;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::series::Mix;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (`MetricsService/Export`), default port 4317.
    Grpc,
    /// OTLP/HTTP protobuf (`POST /v1/metrics`), default port 4318.
    Http,
}

impl Protocol {
    /// `grpc` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed protobuf.
    None,
    /// gzip (fastest level), as `Content-Encoding: gzip` or `grpc-encoding: gzip`.
    Gzip,
}

impl Compression {
    /// `none` or `gzip`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
}

/// How datapoints are stamped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timestamps {
    /// Each point carries the wall-clock time its request was filled (series of one
    /// collection differ by nanoseconds), as a push exporter stamping at send time would.
    #[default]
    Wall,
    /// Every series of a collection carries the same instant on a fixed grid (start + k ×
    /// interval, interval = series / rate, whole ms when at least 1 ms), like an OTel SDK
    /// periodic reader or a Prometheus scrape; each request holds one point per series.
    Aligned,
}

impl Timestamps {
    /// `wall` or `aligned`.
    pub fn name(self) -> &'static str {
        match self {
            Timestamps::Wall => "wall",
            Timestamps::Aligned => "aligned",
        }
    }
}

/// `phoenix loadgen`: push OTLP metrics at a target rate, like real exporters, and report
/// what the endpoint accepted. The last line on stdout is one JSON object.
///
/// Values come from the flags, else the `--profile`, else the defaults shown.
#[derive(Debug, Clone, Default, Args)]
pub struct LoadgenArgs {
    /// OTLP endpoint [default: http://127.0.0.1:4317 for grpc, http://127.0.0.1:4318 for
    /// http; `/v1/metrics` is appended to an http URL without a path].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Transport [default: grpc].
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Target rate in datapoints per second, open loop: requests go out on a fixed
    /// timetable and latency counts from each request's due time [default: 100000].
    #[arg(long, value_name = "DPS")]
    pub rate: Option<f64>,
    /// Active series [default: 10000].
    #[arg(long, value_name = "N")]
    pub series: Option<u64>,
    /// Run length in seconds [default: 10, or the profile's phases].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Profile: a YAML path, or NAME for configs/loadgen/NAME.yaml (steady,
    /// high-cardinality, churn, spike, regular are built in).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Datapoints per request, at most [default: 1000].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Concurrent connections, one request in flight each [default: 8].
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Attributes per datapoint; the first is a per-series id label [default: 3].
    #[arg(long, value_name = "N")]
    pub attributes: Option<usize>,
    /// Metric-type weights [default: gauge=70,sum_cumulative=10,sum_delta=10,histogram=10].
    #[arg(long, value_name = "KIND=WEIGHT,...")]
    pub mix: Option<Mix>,
    /// Timestamps: `wall` (the fill time of each request) or `aligned` (one instant per
    /// collection on a fixed grid, as regular exporters and scrapers produce) [default: wall].
    #[arg(long, value_enum)]
    pub timestamps: Option<Timestamps>,
    /// Round gauge and delta-sum values to N decimals, as real instruments report bounded
    /// precision (0: integers) [default: full-precision doubles].
    #[arg(long, value_name = "N")]
    pub decimals: Option<u32>,
    /// Request compression [default: none].
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Retry retryable answers (503, 429, UNAVAILABLE, RESOURCE_EXHAUSTED, no answer) with
    /// exponential backoff, honouring Retry-After, as an exporter would.
    #[arg(long, conflicts_with = "no_retry")]
    pub retry: bool,
    /// Do not retry, even if the profile says `retry: true`.
    #[arg(long)]
    pub no_retry: bool,
    /// Seed of the value generator [default: 1].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Runtime worker threads of the generator [default: min(2, cores)].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress line on stderr; only the JSON report on stdout.
    #[arg(long, short = 'q', visible_alias = "json-only")]
    pub quiet: bool,
}
