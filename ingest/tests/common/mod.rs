//! Shared helpers of the integration tests: a test edge, servers on 127.0.0.1:0, requests
//! and a gzip bomb.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use flate2::{Compress, Compression, FlushCompress};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AnyV, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point::Value, Gauge, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use phoenix_ingest::Receiver;
use phoenix_model::config::IngestConfig;
use phoenix_model::{EdgeError, EdgeSender};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Edge that collects batches, or answers `Full` while `full` is set; each send first
/// waits `delay_ms`.
#[derive(Default)]
pub struct TestEdge {
    pub batches: Mutex<Vec<RecordBatch>>,
    pub full: AtomicBool,
    pub delay_ms: AtomicU64,
}

impl TestEdge {
    pub fn rows(&self) -> usize {
        self.batches
            .lock()
            .expect("lock")
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }
}

#[async_trait]
impl EdgeSender for TestEdge {
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(EdgeError::Full {
                retry_after: Duration::from_secs(3),
            });
        }
        self.batches.lock().expect("lock").push(batch);
        Ok(())
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub edge: Arc<TestEdge>,
    pub receiver: Arc<Receiver>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<phoenix_ingest::Result<()>>,
}

impl Server {
    pub fn http_url(&self) -> String {
        format!("http://{}/v1/metrics", self.addr)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cancels and waits for a clean exit.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .expect("server task");
        assert!(res.is_ok(), "server error: {res:?}");
    }
}

pub fn config(max_body_bytes: usize) -> IngestConfig {
    IngestConfig {
        max_body_bytes,
        max_attribute_value_bytes: 16 * 1024,
        // Fixtures use the fixed timestamp `T` (2023): no time window.
        max_past_secs: 0,
        ..IngestConfig::default()
    }
}

pub async fn start(grpc: bool, cfg: IngestConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let edge = Arc::new(TestEdge::default());
    let receiver = Arc::new(Receiver::new(edge.clone(), &cfg));
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = if grpc {
        tokio::spawn(phoenix_ingest::serve_grpc(
            listener,
            receiver.clone(),
            token,
        ))
    } else {
        tokio::spawn(phoenix_ingest::serve_http(
            listener,
            receiver.clone(),
            token,
        ))
    };
    Server {
        addr,
        edge,
        receiver,
        shutdown,
        task,
    }
}

pub fn string_kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(AnyV::StringValue(v.into())),
        }),
        key_strindex: 0,
    }
}

pub const T: u64 = 1_700_000_000_000_000_000;

pub fn point(v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: T,
        value: Some(Value::AsDouble(v)),
        ..Default::default()
    }
}

/// A request with one gauge `name` holding `points`.
pub fn gauge_request(name: &str, points: Vec<NumberDataPoint>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "test")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: points,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

/// Three good points.
pub fn good_request() -> ExportMetricsServiceRequest {
    gauge_request(
        "cpu",
        (0..3)
            .map(|i| point(f64::from(i), vec![string_kv("core", &i.to_string())]))
            .collect(),
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

const MIB: usize = 1 << 20;

/// Raw-deflates 1 MiB of zeros with a sync flush (ends byte-aligned, all input consumed).
fn deflate_zero_chunk(c: &mut Compress, flush: FlushCompress) -> Vec<u8> {
    let zeros = vec![0u8; MIB];
    let mut out = Vec::with_capacity(MIB);
    let before = c.total_in();
    c.compress_vec(&zeros, &mut out, flush).expect("deflate");
    assert_eq!(c.total_in() - before, MIB as u64, "whole chunk consumed");
    out
}

/// A valid single-member gzip of `mib` MiB of zeros, built by repeating one sync-flushed
/// deflate chunk (compressing the whole input would take minutes in a debug build). About
/// 1 KiB per MiB.
pub fn gzip_bomb(mib: usize) -> Vec<u8> {
    assert!(mib >= 2);
    let mut c = Compress::new(Compression::best(), false);
    let first = deflate_zero_chunk(&mut c, FlushCompress::Sync);
    // Compressed with a window of zeros behind it, so it decodes the same after any chunk.
    let repeat = deflate_zero_chunk(&mut c, FlushCompress::Sync);
    let mut end = Vec::with_capacity(64);
    c.compress_vec(&[], &mut end, FlushCompress::Finish)
        .expect("finish");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&first);
    for _ in 1..mib {
        out.extend_from_slice(&repeat);
    }
    out.extend_from_slice(&end);
    let mut crc = flate2::Crc::new();
    crc.update(&vec![0u8; MIB]);
    let chunk_crc = crc.sum();
    let total_crc = (1..mib).fold(chunk_crc, |acc, _| {
        crc32_combine(acc, chunk_crc, MIB as u64)
    });
    out.extend_from_slice(&total_crc.to_le_bytes());
    out.extend_from_slice(&((mib * MIB) as u32).to_le_bytes());
    out
}

/// zlib's `crc32_combine`: CRC of `A ‖ B` from `crc(A)`, `crc(B)` and `len(B)`.
fn crc32_combine(crc1: u32, crc2: u32, mut len2: u64) -> u32 {
    fn times(mat: &[u32; 32], mut vec: u32) -> u32 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 != 0 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(out: &mut [u32; 32], mat: &[u32; 32]) {
        for n in 0..32 {
            out[n] = times(mat, mat[n]);
        }
    }
    if len2 == 0 {
        return crc1;
    }
    let mut even = [0u32; 32];
    let mut odd = [0u32; 32];
    odd[0] = 0xedb8_8320;
    let mut row = 1u32;
    for slot in odd.iter_mut().skip(1) {
        *slot = row;
        row <<= 1;
    }
    square(&mut even, &odd);
    square(&mut odd, &even);
    let mut crc1 = crc1;
    loop {
        square(&mut even, &odd);
        if len2 & 1 != 0 {
            crc1 = times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        square(&mut odd, &even);
        if len2 & 1 != 0 {
            crc1 = times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

/// The bomb builder makes valid gzip: a small one inflates fully (CRC and size checked).
pub fn check_bomb_is_valid_gzip() {
    use std::io::Read;
    let bomb = gzip_bomb(4);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..])
        .read_to_end(&mut out)
        .expect("valid gzip");
    assert_eq!(out.len(), 4 * MIB);
    assert!(out.iter().all(|b| *b == 0));
}

/// Value of the Prometheus sample `name{labels...}` in `text` (labels in any order).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
