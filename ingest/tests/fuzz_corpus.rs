//! Replays the fuzz seed corpus and every crash regression (`ingest/fuzz/corpus/<target>/`,
//! `ingest/fuzz/regressions/<target>/`) through the same code the fuzz targets drive, as a
//! stable test: OTLP protobuf and JSON into Arrow, config YAML into `Config::from_yaml`. Each
//! input must end in a batch or a clean error, never a panic, with consistent counts.

use std::path::{Path, PathBuf};

use arrow::array::Array;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use phoenix_ingest::decode::{decode_protobuf_reserving, decode_reserving};
use phoenix_ingest::{DecodeLimits, Error};
use phoenix_model::config::IngestConfig;
use phoenix_model::Config;
use prost::Message;

/// The fuzz targets' clock (`phoenix_ingest_fuzz::NOW`), just after the seeds' timestamps.
const NOW: i64 = 1_700_000_100_000_000_000;

/// The fuzz targets' limits.
fn limits() -> DecodeLimits {
    DecodeLimits {
        max_decoded_bytes: 64 << 20,
        ..DecodeLimits::from_config(&IngestConfig::default())
    }
}

/// Input files of `target`: seeds and regressions (dot files and READMEs skipped).
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_file() && !name.starts_with('.') && !name.starts_with("README") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

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

/// Decodes like the fuzz targets and checks the same invariants (counts add up, columns are
/// valid, the batch fits the memory reserved for it); returns (accepted, rejected).
fn check(path: &Path, req: &ExportMetricsServiceRequest) -> (usize, usize) {
    let mut reserved = 0;
    let reserve = |n: usize| {
        reserved = reserved.max(n);
        Ok(())
    };
    match decode_reserving(req, &limits(), NOW, reserve) {
        Ok(d) => {
            let rows = d.batch.as_ref().map_or(0, |b| b.num_rows());
            assert_eq!(rows, d.accepted, "{path:?}");
            assert_eq!(d.accepted + d.rejected, points(req), "{path:?}");
            assert_eq!(d.rejections.total(), d.rejected as u64, "{path:?}");
            if let Some(b) = &d.batch {
                let memory = b.get_array_memory_size();
                assert!(memory <= reserved, "{path:?}: {memory} > {reserved}");
                for c in b.columns() {
                    c.to_data().validate_full().expect("valid column");
                }
            }
            (d.accepted, d.rejected)
        }
        Err(Error::TooLarge { .. }) => (0, 0),
        Err(e) => panic!("{path:?}: unexpected error {e}"),
    }
}

/// Every protobuf seed and regression decodes cleanly; the seeds accept and reject points.
#[test]
fn otlp_protobuf_corpus() {
    let files = inputs("otlp_protobuf");
    assert!(files.len() >= 5, "{files:?}");
    let (mut accepted, mut rejected) = (0, 0);
    for path in &files {
        let data = std::fs::read(path).expect("read");
        if let Ok(req) = ExportMetricsServiceRequest::decode(&data[..]) {
            let (a, r) = check(path, &req);
            accepted += a;
            rejected += r;
        }
    }
    assert!(accepted > 0 && rejected > 0, "{accepted} / {rejected}");
}

/// Every protobuf seed and regression through the zero-copy bytes path: prost refuses the
/// bytes ⇔ the bytes path does, otherwise both give the same batch and counts, and the batch
/// fits the memory the bytes path reserved.
#[test]
fn otlp_protobuf_corpus_bytes_path() {
    let files = inputs("otlp_protobuf");
    let mut compared = 0;
    for path in &files {
        let data = std::fs::read(path).expect("read");
        let mut reserved = 0;
        let reserve = |n: usize| {
            reserved = reserved.max(n);
            Ok(())
        };
        let wire = decode_protobuf_reserving(&data, &limits(), NOW, reserve);
        match ExportMetricsServiceRequest::decode(&data[..]) {
            Err(_) => assert!(
                matches!(wire, Err(Error::InvalidProtobuf(_))),
                "{path:?}: prost refused it, the bytes path did not"
            ),
            Ok(req) => match (wire, decode_reserving(&req, &limits(), NOW, |_| Ok(()))) {
                (Ok(w), Ok(p)) => {
                    if let Some(b) = &w.batch {
                        let memory = b.get_array_memory_size();
                        assert!(memory <= reserved, "{path:?}: {memory} > {reserved}");
                    }
                    assert_eq!(w.batch, p.batch, "{path:?}");
                    assert_eq!(
                        (w.accepted, w.rejected, w.rejections, w.first_error),
                        (p.accepted, p.rejected, p.rejections, p.first_error),
                        "{path:?}"
                    );
                    assert_eq!(w.exemplars_dropped, p.exemplars_dropped, "{path:?}");
                    assert_eq!(w.metrics_without_data, p.metrics_without_data, "{path:?}");
                    compared += 1;
                }
                (Err(Error::TooLarge { .. }), Err(Error::TooLarge { .. })) => {}
                (w, p) => panic!("{path:?}: bytes path {w:?} vs prost path {p:?}"),
            },
        }
    }
    assert!(compared >= 5, "{compared}");
}

/// Every JSON seed and regression decodes cleanly; the seeds accept and reject points.
#[test]
fn otlp_json_corpus() {
    let files = inputs("otlp_json");
    assert!(files.len() >= 5, "{files:?}");
    let (mut accepted, mut rejected) = (0, 0);
    for path in &files {
        let data = std::fs::read(path).expect("read");
        if let Ok(req) = serde_json::from_slice::<ExportMetricsServiceRequest>(&data) {
            let (a, r) = check(path, &req);
            accepted += a;
            rejected += r;
        }
    }
    assert!(accepted > 0 && rejected > 0, "{accepted} / {rejected}");
}

/// Every config seed and regression parses to a config or an error (overrides follow NUL
/// bytes, as in the fuzz target); the shipped config is among them and valid.
#[test]
fn config_yaml_corpus() {
    let files = inputs("config_yaml");
    assert!(files.len() >= 5, "{files:?}");
    let mut valid = 0;
    for path in &files {
        let data = std::fs::read(path).expect("read");
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let mut parts = text.split('\0');
        let yaml = parts.next().unwrap_or("");
        let overrides: Vec<String> = parts.map(str::to_string).collect();
        if Config::from_yaml("fuzz.yaml", yaml, &overrides).is_ok() {
            valid += 1;
        }
    }
    assert!(
        valid > 0 && valid < files.len(),
        "{valid} of {}",
        files.len()
    );
}
