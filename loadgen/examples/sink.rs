//! A minimal OTLP sink for measuring the generator alone: OTLP/HTTP answers 200 without
//! decoding, OTLP/gRPC decodes (tonic's generated server) and answers OK.
//!
//! `cargo run --release -p phoenix-loadgen --example sink -- 127.0.0.1:14317 127.0.0.1:14318`

use std::net::SocketAddr;

use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;

struct Sink;

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let grpc: SocketAddr = argv.next().unwrap_or("127.0.0.1:14317".into()).parse()?;
    let http: SocketAddr = argv.next().unwrap_or("127.0.0.1:14318".into()).parse()?;
    let svc = MetricsServiceServer::new(Sink)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(64 * 1024 * 1024);
    let grpc_server = tonic::transport::Server::builder()
        .add_service(svc)
        .serve(grpc);
    let router =
        axum::Router::new().route("/v1/metrics", post(|_body: axum::body::Bytes| async { "" }));
    let listener = tokio::net::TcpListener::bind(http).await?;
    eprintln!("sink: grpc {grpc}, http {http}");
    tokio::select! {
        r = grpc_server => r?,
        r = axum::serve(listener, router) => r?,
    }
    Ok(())
}
