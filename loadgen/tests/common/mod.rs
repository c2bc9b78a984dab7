//! An in-process fake OTLP endpoint (gRPC and HTTP) that decodes every request with prost,
//! counts datapoints, checks that the data is valid OTLP as real exporters send it, and can
//! refuse the first requests or reject part of each request.

#![allow(dead_code)] // each test binary uses a part of it

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use parking_lot::Mutex;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic_types::{ErrorDetails, StatusExt};

/// How the fake endpoint misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer 503 / UNAVAILABLE to this many requests first.
    pub fail_first: u64,
    /// Retry hint sent with those refusals (Retry-After / RetryInfo).
    pub retry_after: Option<Duration>,
    /// Partial success: reject this many datapoints of every accepted request.
    pub reject_per_request: u64,
}

/// What the fake endpoint saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Requests received, refused ones included.
    pub requests: u64,
    /// Requests refused with 503 / UNAVAILABLE.
    pub refused_requests: u64,
    /// Datapoints in refused requests.
    pub refused_dp: u64,
    /// Datapoints in requests answered 200 / OK.
    pub received_dp: u64,
    /// Of those, datapoints acknowledged (not partially rejected).
    pub acked_dp: u64,
    /// Datapoints per metric type.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Last point per series identity.
    pub series: HashMap<String, LastPoint>,
    /// Everything that is not valid exporter output.
    pub violations: Vec<String>,
}

/// The last point of one series.
#[derive(Debug, Clone, Copy)]
pub struct LastPoint {
    /// time_unix_nano.
    pub time: u64,
    /// start_time_unix_nano.
    pub start: u64,
    /// Counter value or histogram count.
    pub total: f64,
}

/// The fake endpoint's shared state.
#[derive(Debug, Default)]
pub struct Fake {
    behaviour: Behaviour,
    seen: Mutex<Seen>,
}

/// Reply to one request.
enum Reply {
    Busy,
    Ok(u64),
}

impl Fake {
    /// A copy of what was seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().clone()
    }

    fn handle(&self, req: &ExportMetricsServiceRequest) -> Reply {
        let n = count_points(req);
        let mut seen = self.seen.lock();
        seen.requests += 1;
        if seen.refused_requests < self.behaviour.fail_first {
            seen.refused_requests += 1;
            seen.refused_dp += n;
            return Reply::Busy;
        }
        validate(req, &mut seen);
        let rejected = self.behaviour.reject_per_request.min(n);
        seen.received_dp += n;
        seen.acked_dp += n - rejected;
        Reply::Ok(rejected)
    }
}

/// Addresses of a running fake endpoint.
pub struct Endpoint {
    /// The state to inspect.
    pub fake: Arc<Fake>,
    /// OTLP/gRPC address.
    pub grpc: SocketAddr,
    /// OTLP/HTTP address.
    pub http: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Endpoint {
    /// The URL for `phoenix loadgen --endpoint`.
    pub fn url(&self, protocol: phoenix_loadgen::Protocol) -> String {
        match protocol {
            phoenix_loadgen::Protocol::Grpc => format!("http://{}", self.grpc),
            phoenix_loadgen::Protocol::Http => format!("http://{}", self.http),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts both servers on 127.0.0.1:0.
pub async fn start(behaviour: Behaviour) -> Endpoint {
    let fake = Arc::new(Fake {
        behaviour,
        seen: Mutex::default(),
    });
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind grpc");
    let grpc = grpc_listener.local_addr().expect("grpc addr");
    let svc = MetricsServiceServer::new(GrpcFake(fake.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(64 * 1024 * 1024);
    let grpc_task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(grpc_listener))
            .await;
    });
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind http");
    let http = http_listener.local_addr().expect("http addr");
    let router = Router::new()
        .route("/v1/metrics", post(http_export))
        .with_state(fake.clone());
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(http_listener, router).await;
    });
    Endpoint {
        fake,
        grpc,
        http,
        tasks: vec![grpc_task, http_task],
    }
}

struct GrpcFake(Arc<Fake>);

#[tonic::async_trait]
impl MetricsService for GrpcFake {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        match self.0.handle(request.get_ref()) {
            Reply::Busy => Err(match self.0.behaviour.retry_after {
                Some(d) => tonic::Status::with_error_details(
                    tonic::Code::Unavailable,
                    "busy",
                    ErrorDetails::with_retry_info(Some(d)),
                ),
                None => tonic::Status::unavailable("busy"),
            }),
            Reply::Ok(rejected) => Ok(tonic::Response::new(response(rejected))),
        }
    }
}

async fn http_export(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let raw = if gzip {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
        out
    } else {
        body.to_vec()
    };
    let req = match ExportMetricsServiceRequest::decode(&raw[..]) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match fake.handle(&req) {
        Reply::Busy => {
            let mut resp = StatusCode::SERVICE_UNAVAILABLE.into_response();
            if let Some(d) = fake.behaviour.retry_after {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    d.as_secs().to_string().parse().expect("header"),
                );
            }
            resp
        }
        Reply::Ok(rejected) => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response(rejected).encode_to_vec(),
        )
            .into_response(),
    }
}

fn response(rejected: u64) -> ExportMetricsServiceResponse {
    ExportMetricsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: rejected as i64,
            error_message: "rejected by the fake".into(),
        }),
    }
}

/// Datapoints in a request.
pub fn count_points(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                n += match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                } as u64;
            }
        }
    }
    n
}

fn render(attrs: &[KeyValue]) -> String {
    let mut parts: Vec<String> = attrs
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            format!("{}={v}", kv.key)
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// Checks one point against the previous point of its series; records it.
fn check_point(
    seen: &mut Seen,
    key: String,
    time: u64,
    start: u64,
    total: f64,
    kind: &'static str,
) {
    *seen.kinds.entry(kind).or_default() += 1;
    let mut bad = Vec::new();
    if time == 0 {
        bad.push("time is 0".to_string());
    }
    let prev = seen.series.get(&key).copied();
    if let Some(p) = prev {
        if time <= p.time {
            bad.push(format!("time {time} not after previous {}", p.time));
        }
        match kind {
            "sum_cumulative" | "histogram" => {
                if start != p.start {
                    bad.push(format!("start changed {} -> {start}", p.start));
                }
                if total < p.total {
                    bad.push(format!("cumulative value fell {} -> {total}", p.total));
                }
            }
            "sum_delta" if start != p.time => {
                bad.push(format!(
                    "delta start {start} is not the previous time {}",
                    p.time
                ));
            }
            _ => {}
        }
    }
    if kind != "gauge" && (start == 0 || start >= time) {
        bad.push(format!("start {start} not before time {time}"));
    }
    for b in bad {
        seen.violations.push(format!("{kind} {key}: {b}"));
    }
    seen.series.insert(key, LastPoint { time, start, total });
}

/// Validates a request as exporter output and records each series' last point.
pub fn validate(req: &ExportMetricsServiceRequest, seen: &mut Seen) {
    for rm in &req.resource_metrics {
        let res_attrs = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let res = render(res_attrs);
        if !res.contains("service.name=") || !res.contains("host.name=") {
            seen.violations
                .push(format!("resource without service.name/host.name: {res}"));
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let prefix = format!("{res}|{}", m.name);
                match &m.data {
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            if !matches!(p.value, Some(number_data_point::Value::AsDouble(_))) {
                                seen.violations
                                    .push(format!("gauge {} without double", m.name));
                            }
                            let key = format!("{prefix}|{}", render(&p.attributes));
                            check_point(
                                seen,
                                key,
                                p.time_unix_nano,
                                p.start_time_unix_nano,
                                0.0,
                                "gauge",
                            );
                        }
                    }
                    Some(Data::Sum(s)) => {
                        if !s.is_monotonic {
                            seen.violations
                                .push(format!("sum {} not monotonic", m.name));
                        }
                        let kind = match s.aggregation_temporality {
                            1 => "sum_delta",
                            2 => "sum_cumulative",
                            t => {
                                seen.violations
                                    .push(format!("sum {} temporality {t}", m.name));
                                continue;
                            }
                        };
                        for p in &s.data_points {
                            let total = match p.value {
                                Some(number_data_point::Value::AsInt(v)) => v as f64,
                                Some(number_data_point::Value::AsDouble(v)) => v,
                                None => {
                                    seen.violations
                                        .push(format!("sum {} without value", m.name));
                                    0.0
                                }
                            };
                            let key = format!("{prefix}|{}", render(&p.attributes));
                            check_point(
                                seen,
                                key,
                                p.time_unix_nano,
                                p.start_time_unix_nano,
                                total,
                                kind,
                            );
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        if h.aggregation_temporality != 2 {
                            seen.violations
                                .push(format!("histogram {} not cumulative", m.name));
                        }
                        for p in &h.data_points {
                            let buckets: u64 = p.bucket_counts.iter().sum();
                            let consistent = p.bucket_counts.len() == p.explicit_bounds.len() + 1
                                && buckets == p.count
                                && p.count > 0
                                && p.sum.is_some()
                                && p.min.zip(p.max).is_some_and(|(lo, hi)| lo <= hi)
                                && p.explicit_bounds.windows(2).all(|w| w[0] < w[1]);
                            if !consistent {
                                seen.violations
                                    .push(format!("histogram {} inconsistent: {p:?}", m.name));
                            }
                            let key = format!("{prefix}|{}", render(&p.attributes));
                            check_point(
                                seen,
                                key,
                                p.time_unix_nano,
                                p.start_time_unix_nano,
                                p.count as f64,
                                "histogram",
                            );
                        }
                    }
                    other => seen
                        .violations
                        .push(format!("unexpected metric data {other:?}")),
                }
            }
        }
    }
}
