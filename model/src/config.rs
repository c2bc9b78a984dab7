//! Phoenix's YAML configuration: the structs, `--set` overrides and validation.
//!
//! Parsing goes through `serde_path_to_error`, so an error names the key path; validation
//! collects every problem instead of stopping at the first.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::pipeline::PipelineConfig;

/// One configuration problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `ingest.grpc_listen`.
    pub key: String,
    /// Why the value is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Errors from loading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not fit the config structs (unknown key, wrong type).
    #[error("{file}: {key}: {reason}")]
    Parse {
        /// The file (or `<default>`).
        file: String,
        /// Dotted key path.
        key: String,
        /// The parser's message.
        reason: String,
    },
    /// A `--set` override is malformed.
    #[error("--set {arg}: {reason}")]
    Override {
        /// The override as given.
        arg: String,
        /// Why it is malformed.
        reason: String,
    },
    /// The config parsed, but values are invalid.
    #[error("{file}: {}", issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file (or `<default>`).
        file: String,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
    },
}

/// The whole configuration. Every key has a default: an empty file is the embedded default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// OTLP receivers.
    pub ingest: IngestConfig,
    /// HTTP API.
    pub api: ApiConfig,
    /// Parquet storage and local state.
    pub storage: StorageConfig,
    /// Transport of graph edges.
    pub bus: BusConfig,
    /// The processor graph.
    pub pipeline: PipelineConfig,
    /// Cost anomaly detection and anomaly notifications.
    pub anomalies: crate::anomaly::AnomaliesConfig,
}

/// OTLP receivers and their limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// OTLP/gRPC listen address.
    pub grpc_listen: String,
    /// OTLP/HTTP listen address.
    pub http_listen: String,
    /// Largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Largest attribute value (rendered as a string) accepted; longer ones reject the point.
    pub max_attribute_value_bytes: usize,
    /// Most attributes on one datapoint (or one resource); more rejects the point.
    pub max_attributes: usize,
    /// How long a request waits for room in a full pipeline before it gets 503/UNAVAILABLE.
    pub admission_timeout_ms: u64,
    /// Retry-After hint, in seconds, given to clients when the pipeline is full.
    pub retry_after_secs: u64,
    /// Memory budget for requests in flight (bodies, parsed messages, decoded batches until
    /// the pipeline took them); past it requests get 503/UNAVAILABLE before their body is read.
    pub max_in_flight_bytes: usize,
    /// Datapoints older than this many seconds are rejected (`timestamp_too_old`); 0 disables.
    pub max_past_secs: u64,
    /// Datapoints more than this many seconds in the future are rejected
    /// (`timestamp_in_future`); 0 disables.
    pub max_future_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            grpc_listen: "127.0.0.1:4317".into(),
            http_listen: "127.0.0.1:4318".into(),
            max_body_bytes: 20 * 1024 * 1024,
            max_attribute_value_bytes: 16 * 1024,
            max_attributes: 128,
            admission_timeout_ms: 250,
            retry_after_secs: 1,
            max_in_flight_bytes: 256 * 1024 * 1024,
            max_past_secs: 30 * 24 * 3600,
            max_future_secs: 3600,
        }
    }
}

/// HTTP API and query limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// API listen address.
    pub listen: String,
    /// A query running longer is cancelled.
    pub query_timeout_secs: u64,
    /// Memory one query may use for sorts, joins and aggregations.
    pub query_memory_bytes: usize,
    /// Queries run at once; more get 503.
    pub max_concurrent_queries: usize,
    /// Most rows a query may return.
    pub max_result_rows: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            query_timeout_secs: 30,
            query_memory_bytes: 1024 * 1024 * 1024,
            max_concurrent_queries: 8,
            max_result_rows: 1_000_000,
        }
    }
}

/// Parquet storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where tables live: a path, `file://…`, `s3://bucket/prefix` or `memory://`.
    pub url: String,
    /// Local state (WAL, scratch).
    pub data_dir: String,
    /// Buffered data is flushed at least this often.
    pub flush_interval_secs: u64,
    /// Buffered rows that trigger a flush.
    pub flush_max_rows: usize,
    /// Buffered Arrow memory (bytes) that triggers a flush; bounds the sink's share of RSS.
    pub flush_max_bytes: u64,
    /// Largest Parquet row group, in rows.
    pub row_group_rows: usize,
    /// Codec of the Parquet files a flush writes: `lz4` or `zstd` (compaction rewrites them
    /// with zstd at `compaction.zstd_level`).
    pub flush_compression: FlushCompression,
    /// zstd level of the Parquet files a flush writes when `flush_compression` is `zstd`.
    pub zstd_level: i32,
    /// Files whose newest point is older than this are deleted (0 keeps everything).
    pub retention_days: u64,
    /// Write every accepted batch to the write-ahead log under `data_dir/wal` before answering.
    pub wal_enabled: bool,
    /// WAL size past which ingest answers retryable errors: data not yet in Parquet, or still
    /// held by a stateful processor (a 1-minute rollup holds about window + lateness of input).
    pub wal_max_bytes: u64,
    /// WAL segment file size; whole segments are deleted once their data is in Parquet.
    pub wal_segment_bytes: u64,
    /// Compression of WAL records: `auto`, `lz4` or `zstd`.
    pub wal_compression: WalCompression,
    /// Write WAL segments with `O_DIRECT` (whole blocks, no page-cache copy); falls back to
    /// buffered writes where the filesystem refuses it.
    pub wal_direct_io: bool,
    /// Stateful processors (rollups, downsampling) save their state under
    /// `data_dir/checkpoints` this often, so the WAL keeps only the input since; 0 turns
    /// checkpoints off (the WAL then keeps everything a window holds).
    pub checkpoint_interval_secs: u64,
    /// Merging of an hour partition's small files into few large ones.
    pub compaction: CompactionConfig,
}

/// Compression of WAL records (`storage.wal_compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WalCompression {
    /// `zstd` when the pipeline holds windows (an `aggregate`, or a `sample` that downsamples)
    /// and checkpoints are off, since their data then stays in the WAL for window + lateness;
    /// else `lz4`.
    #[default]
    Auto,
    /// LZ4 frames: the least CPU, ~100 bytes per loadgen datapoint; OTLP protobuf (gRPC, HTTP)
    /// requests are logged as received instead (~120 bytes a loadgen datapoint, no encode).
    Lz4,
    /// zstd level 1: ~40% smaller records for about twice the encode CPU.
    Zstd,
}

impl StorageConfig {
    /// `lz4` or `zstd` for `pipeline`: what `wal_compression` means there.
    pub fn wal_codec(&self, pipeline: &crate::pipeline::PipelineConfig) -> WalCompression {
        match self.wal_compression {
            WalCompression::Auto
                if pipeline.holds_windows() && self.checkpoint_interval_secs == 0 =>
            {
                WalCompression::Zstd
            }
            WalCompression::Auto => WalCompression::Lz4,
            chosen => chosen,
        }
    }
}

/// Codec of flushed Parquet files (`storage.flush_compression`).
///
/// A flushed file lives until its hour is compacted, so, as in an LSM tree's first level, it
/// takes the fast codec and compaction the dense one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlushCompression {
    /// LZ4 (Parquet's `LZ4_RAW`): a fraction of zstd's CPU per byte, files ~30% larger.
    #[default]
    Lz4,
    /// zstd at `storage.zstd_level`.
    Zstd,
}

/// Compaction of Parquet files (`storage.compaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// Merge small files of finished hour partitions in the background.
    pub enabled: bool,
    /// Small files an hour partition needs before it is compacted.
    pub min_files: usize,
    /// An hour partition is compacted only once its hour ended this many seconds ago.
    pub min_age_secs: u64,
    /// Largest compacted file, in rows; files of at least half this are left alone.
    pub max_file_rows: u64,
    /// Replaced files are deleted this long after they left the manifest, so queries planned
    /// on them can still read them.
    pub delete_grace_secs: u64,
    /// zstd level of compacted files: compaction runs off the ingest path, so it can spend
    /// more CPU per byte than a flush.
    pub zstd_level: i32,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_files: 8,
            min_age_secs: 300,
            max_file_rows: 50_000_000,
            delete_grace_secs: 120,
            zstd_level: 3,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "./data/tables".into(),
            data_dir: "./data".into(),
            flush_interval_secs: 10,
            flush_max_rows: 2_000_000,
            flush_max_bytes: 64 * 1024 * 1024,
            row_group_rows: 1024 * 1024,
            flush_compression: FlushCompression::Lz4,
            zstd_level: 1,
            retention_days: 0,
            wal_enabled: true,
            wal_max_bytes: 4 * 1024 * 1024 * 1024,
            wal_segment_bytes: 64 * 1024 * 1024,
            wal_compression: WalCompression::Auto,
            wal_direct_io: true,
            checkpoint_interval_secs: 5,
            compaction: CompactionConfig::default(),
        }
    }
}

/// Which transport graph edges use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// Bounded in-memory channels in one process.
    #[default]
    Memory,
    /// Kafka topics.
    Kafka,
}

/// Graph edge transport.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `memory` or `kafka`.
    pub kind: BusKind,
    /// Batches an in-memory edge holds before senders wait.
    pub memory_capacity_batches: usize,
    /// Kafka settings, used when `kind: kafka`.
    pub kafka: KafkaConfig,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Memory,
            memory_capacity_batches: 64,
            kafka: KafkaConfig::default(),
        }
    }
}

/// Kafka connection, topics and client settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port,…`.
    pub brokers: String,
    /// Prefix of every topic Phoenix uses (`{prefix}ingest`, `{prefix}dlq`).
    pub topic_prefix: String,
    /// Partitions of topics Phoenix creates when they are missing. Existing topics keep theirs.
    pub partitions: u32,
    /// Replication factor of topics Phoenix creates; `-1` takes the broker's default.
    pub replication_factor: i32,
    /// Consumer group of processing nodes.
    pub group_id: String,
    /// Compression of the Arrow IPC payload: `lz4`, `zstd` or `none`.
    pub compression: KafkaCompression,
    /// Largest message produced; bigger batches are split by rows.
    pub max_message_bytes: usize,
    /// How long a produced batch may wait for the broker's acknowledgement before ingest
    /// answers a retryable error.
    pub delivery_timeout_ms: u64,
    /// Extra librdkafka properties for every client (e.g. `client.id`), applied last.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "phoenix.".into(),
            partitions: 12,
            replication_factor: -1,
            group_id: "phoenix-process".into(),
            compression: KafkaCompression::Lz4,
            max_message_bytes: 1_000_000,
            delivery_timeout_ms: 5_000,
            properties: Default::default(),
        }
    }
}

/// Compression of Arrow IPC payloads on Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    /// LZ4 frame: fast, the default.
    #[default]
    Lz4,
    /// Zstandard: smaller, slower.
    Zstd,
    /// Uncompressed.
    None,
}

impl KafkaConfig {
    /// Every problem with these settings, keys relative to `bus.kafka`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, reason: String| {
            issues.push(ConfigIssue {
                key: format!("bus.kafka.{key}"),
                reason,
            })
        };
        let brokers: Vec<&str> = self
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .collect();
        if brokers.is_empty() {
            issue(
                "brokers",
                "must name at least one broker (host:port)".into(),
            );
        }
        for b in brokers {
            let port_ok = b
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                issue("brokers", format!("`{b}` is not host:port"));
            }
        }
        // Kafka topic names: at most 249 of [a-zA-Z0-9._-]; the longest suffix is `ingest`.
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !self.topic_prefix.chars().all(legal) {
            issue(
                "topic_prefix",
                format!(
                    "`{}` may only contain letters, digits, `.`, `_` and `-`",
                    self.topic_prefix
                ),
            );
        } else if self.topic_prefix.len() > 240 {
            issue("topic_prefix", "longer than 240 characters".into());
        }
        if self.partitions == 0 {
            issue("partitions", "must be greater than 0".into());
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            issue(
                "replication_factor",
                "must be -1 (broker default) or at least 1".into(),
            );
        }
        if self.group_id.trim().is_empty() {
            issue("group_id", "must not be empty".into());
        }
        if self.max_message_bytes < 1024 {
            issue("max_message_bytes", "must be at least 1024".into());
        }
        if self.delivery_timeout_ms == 0 {
            issue("delivery_timeout_ms", "must be greater than 0".into());
        }
        issues
    }
}

/// The embedded default, `configs/phoenix.yaml`: what `phoenix serve` runs without `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../configs/phoenix.yaml");

impl Config {
    /// Loads `file` (or the embedded default when `None`), applies `--set` overrides, validates.
    ///
    /// # Errors
    /// Any [`ConfigError`]; errors name the file, the key path and the reason.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let (name, text) = match file {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    file: name.clone(),
                    source,
                })?;
                (name, text)
            }
            None => ("<default>".to_string(), EMBEDDED_DEFAULT.to_string()),
        };
        Self::from_yaml(&name, &text, overrides)
    }

    /// Parses YAML text, applies overrides, validates. `name` labels errors.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_yaml(name: &str, text: &str, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut value: serde_yaml::Value = if text.trim().is_empty() {
            serde_yaml::Value::Mapping(Default::default())
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
                file: name.to_string(),
                key: e
                    .location()
                    .map(|l| format!("line {} column {}", l.line(), l.column()))
                    .unwrap_or_else(|| ".".into()),
                reason: e.to_string(),
            })?
        };
        if value.is_null() {
            value = serde_yaml::Value::Mapping(Default::default());
        }
        for arg in overrides {
            apply_override(&mut value, arg)?;
        }
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                file: name.to_string(),
                key: if key == "." { "<root>".into() } else { key },
                reason: e.into_inner().to_string(),
            }
        })?;
        let issues = config.validate();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                file: name.to_string(),
                issues,
            })
        }
    }

    /// Every value-level problem in the config (empty when valid).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, reason: String| {
            issues.push(ConfigIssue {
                key: key.to_string(),
                reason,
            })
        };
        for (key, addr) in [
            ("ingest.grpc_listen", &self.ingest.grpc_listen),
            ("ingest.http_listen", &self.ingest.http_listen),
            ("api.listen", &self.api.listen),
        ] {
            if let Err(e) = addr.parse::<SocketAddr>() {
                issue(
                    key,
                    format!("`{addr}` is not a socket address (host:port): {e}"),
                );
            }
        }
        let positives: [(&str, u64); 17] = [
            (
                "storage.compaction.min_files",
                self.storage.compaction.min_files as u64,
            ),
            (
                "storage.compaction.min_age_secs",
                self.storage.compaction.min_age_secs,
            ),
            (
                "storage.compaction.max_file_rows",
                self.storage.compaction.max_file_rows,
            ),
            (
                "storage.compaction.delete_grace_secs",
                self.storage.compaction.delete_grace_secs,
            ),
            ("storage.wal_max_bytes", self.storage.wal_max_bytes),
            ("storage.wal_segment_bytes", self.storage.wal_segment_bytes),
            ("ingest.max_body_bytes", self.ingest.max_body_bytes as u64),
            (
                "ingest.max_attribute_value_bytes",
                self.ingest.max_attribute_value_bytes as u64,
            ),
            ("ingest.max_attributes", self.ingest.max_attributes as u64),
            ("api.query_timeout_secs", self.api.query_timeout_secs),
            ("api.query_memory_bytes", self.api.query_memory_bytes as u64),
            (
                "api.max_concurrent_queries",
                self.api.max_concurrent_queries as u64,
            ),
            (
                "storage.flush_interval_secs",
                self.storage.flush_interval_secs,
            ),
            ("storage.flush_max_rows", self.storage.flush_max_rows as u64),
            ("storage.flush_max_bytes", self.storage.flush_max_bytes),
            ("storage.row_group_rows", self.storage.row_group_rows as u64),
            (
                "bus.memory_capacity_batches",
                self.bus.memory_capacity_batches as u64,
            ),
        ];
        for (key, v) in positives {
            if v == 0 {
                issue(key, "must be greater than 0".into());
            }
        }
        if self.storage.checkpoint_interval_secs > 3600 {
            issue(
                "storage.checkpoint_interval_secs",
                "must be at most 3600 (0 turns checkpoints off)".into(),
            );
        }
        // A body the budget can never hold would be refused with 413 forever.
        if self.ingest.max_in_flight_bytes < self.ingest.max_body_bytes {
            issue(
                "ingest.max_in_flight_bytes",
                format!(
                    "{} is less than ingest.max_body_bytes ({})",
                    self.ingest.max_in_flight_bytes, self.ingest.max_body_bytes
                ),
            );
        }
        for (key, level) in [
            ("storage.zstd_level", self.storage.zstd_level),
            (
                "storage.compaction.zstd_level",
                self.storage.compaction.zstd_level,
            ),
        ] {
            if !(1..=22).contains(&level) {
                issue(key, format!("{level} is outside zstd's levels 1..=22"));
            }
        }
        if let Err(reason) = StorageUrl::parse(&self.storage.url) {
            issue("storage.url", reason);
        }
        if self.storage.data_dir.trim().is_empty() {
            issue("storage.data_dir", "must not be empty".into());
        }
        if self.bus.kind == BusKind::Kafka {
            issues.extend(self.bus.kafka.validate());
        }
        issues.extend(self.pipeline.validate());
        issues.extend(self.anomalies.validate());
        issues
    }
}

/// Where tables are stored, classified from `storage.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local folder (absolute or relative path, or `file://`).
    Local(String),
    /// An in-memory store (tests).
    Memory,
    /// `s3://bucket[/prefix]`, configured from the usual `AWS_*` environment variables.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (no leading or trailing slash).
        prefix: String,
    },
}

impl StorageUrl {
    /// Classifies a `storage.url` value.
    ///
    /// # Errors
    /// A reason naming the unsupported scheme or the missing bucket.
    pub fn parse(s: &str) -> Result<StorageUrl, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s == "memory://" || s == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a path".into());
            }
            return Ok(StorageUrl::Local(path.to_string()));
        }
        if s.contains("://") {
            let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
            return match url.scheme() {
                "s3" => {
                    let bucket = url.host_str().unwrap_or_default().to_string();
                    if bucket.is_empty() {
                        return Err(format!("`{s}` names no bucket"));
                    }
                    Ok(StorageUrl::S3 {
                        bucket,
                        prefix: url.path().trim_matches('/').to_string(),
                    })
                }
                other => Err(format!(
                    "scheme `{other}://` is not supported (use a path, file://, s3:// or memory://)"
                )),
            };
        }
        Ok(StorageUrl::Local(s.to_string()))
    }
}

/// Applies one `KEY=VALUE` override to a YAML tree; the value is parsed as a YAML scalar.
fn apply_override(root: &mut serde_yaml::Value, arg: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Override {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("key path has an empty segment"));
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(raw).unwrap_or_else(|_| serde_yaml::Value::String(raw.to_string()));
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let map = match node {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => {
                *node = serde_yaml::Value::Mapping(Default::default());
                match node {
                    serde_yaml::Value::Mapping(m) => m,
                    _ => return Err(bad("internal: mapping expected")),
                }
            }
            _ => return Err(bad(&format!("`{}` is not a mapping", parts[..i].join(".")))),
        };
        let k = serde_yaml::Value::String((*part).to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(serde_yaml::Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty file is the embedded default, bound to loopback.
    #[test]
    fn empty_is_embedded_default() {
        let c = Config::from_yaml("t.yaml", "", &[]).expect("default config is valid");
        assert_eq!(c.ingest.grpc_listen, "127.0.0.1:4317");
        assert_eq!(c.ingest.http_listen, "127.0.0.1:4318");
        assert_eq!(c.api.listen, "127.0.0.1:8080");
        assert_eq!(c.storage.url, "./data/tables");
        assert_eq!(c.bus.kind, BusKind::Memory);
    }

    /// Without a file, `configs/phoenix.yaml` runs: its values equal the built-in defaults
    /// outside `pipeline`, and its pipeline is the capped raw table plus a 1-minute rollup.
    #[test]
    fn embedded_default_is_configs_phoenix_yaml() {
        let c = Config::load(None, &[]).expect("embedded default is valid");
        let bare = Config::default();
        assert_eq!(
            serde_json::to_value((&c.ingest, &c.api, &c.storage, &c.bus)).expect("json"),
            serde_json::to_value((&bare.ingest, &bare.api, &bare.storage, &bare.bus))
                .expect("json"),
            "the file documents the built-in defaults"
        );
        assert_eq!(c.anomalies, bare.anomalies, "anomalies: built-in defaults");
        let sinks: Vec<&str> = c.pipeline.sinks.keys().map(String::as_str).collect();
        assert_eq!(sinks, ["metrics", "metrics_1m"]);
        assert_eq!(
            c.pipeline.processors["cap"].params.type_name(),
            "cardinality_limit"
        );
        assert_eq!(
            c.pipeline.processors["rollup_1m"].params.type_name(),
            "aggregate"
        );
    }

    /// `wal_compression: auto` is LZ4 unless a pipeline's windows stay in the WAL (they hold
    /// it only with checkpoints off); an explicit choice is kept.
    #[test]
    fn wal_compression_auto_follows_windows() {
        let default = Config::load(None, &[]).expect("embedded default");
        assert_eq!(default.storage.wal_compression, WalCompression::Auto);
        assert_eq!(default.storage.checkpoint_interval_secs, 5);
        let codec = |sets: &[&str], path: Option<&Path>| {
            let sets: Vec<String> = sets.iter().map(ToString::to_string).collect();
            let c = Config::load(path, &sets).expect("config");
            c.storage.wal_codec(&c.pipeline)
        };
        assert_eq!(codec(&[], None), WalCompression::Lz4, "checkpointed rollup");
        let no_ckpt = ["storage.checkpoint_interval_secs=0"];
        assert_eq!(
            codec(&no_ckpt, None),
            WalCompression::Zstd,
            "rollup holds WAL"
        );
        let empty = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples/empty.yaml");
        assert_eq!(
            codec(&no_ckpt, Some(&empty)),
            WalCompression::Lz4,
            "no windows"
        );
        let lz4 = [
            "storage.checkpoint_interval_secs=0",
            "storage.wal_compression=lz4",
        ];
        assert_eq!(
            codec(&lz4, None),
            WalCompression::Lz4,
            "explicit choice kept"
        );
    }

    /// The example configs shipped in `configs/examples/` load and validate.
    #[test]
    fn example_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("configs/examples exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let c = Config::load(Some(&path), &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!c.pipeline.sinks.is_empty(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 1, "no example config found in {}", dir.display());
    }

    /// Unknown keys are errors that name the file and the key path.
    #[test]
    fn unknown_key_names_path() {
        let err = Config::from_yaml("x.yaml", "ingest:\n  grpc_lisen: 1\n", &[])
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.starts_with("x.yaml: ingest"), "{msg}");
        assert!(msg.contains("grpc_lisen"), "{msg}");
    }

    /// `--set` overrides reach nested keys and are validated like file values.
    #[test]
    fn set_overrides_and_validates() {
        let c = Config::from_yaml("t", "", &["api.listen=127.0.0.1:9999".into()]).expect("valid");
        assert_eq!(c.api.listen, "127.0.0.1:9999");
        let c = Config::from_yaml("t", "", &["storage.flush_max_rows=10".into()]).expect("valid");
        assert_eq!(c.storage.flush_max_rows, 10);
        let err = Config::from_yaml("t", "", &["api.listen=nope".into()]).expect_err("invalid");
        assert!(err.to_string().contains("api.listen"), "{err}");
        assert!(Config::from_yaml("t", "", &["noequals".into()]).is_err());
    }

    /// The ingest memory budget must hold at least one maximal body; the time window keys
    /// default to 30 days past and 1 hour future and accept 0 (disabled).
    #[test]
    fn ingest_budget_and_window() {
        let c = Config::from_yaml("t", "", &[]).expect("valid");
        assert_eq!(c.ingest.max_in_flight_bytes, 256 * 1024 * 1024);
        assert_eq!(
            (c.ingest.max_past_secs, c.ingest.max_future_secs),
            (2_592_000, 3_600)
        );
        let err = Config::from_yaml("t", "", &["ingest.max_in_flight_bytes=1000".into()])
            .expect_err("smaller than max_body_bytes");
        assert!(
            err.to_string().contains("ingest.max_in_flight_bytes"),
            "{err}"
        );
        let off = [
            "ingest.max_past_secs=0".into(),
            "ingest.max_future_secs=0".into(),
        ];
        let c = Config::from_yaml("t", "", &off).expect("0 disables");
        assert_eq!((c.ingest.max_past_secs, c.ingest.max_future_secs), (0, 0));
    }

    /// Validation collects every problem, not just the first.
    #[test]
    fn collects_all_issues() {
        let yaml = "ingest:\n  grpc_listen: bad\napi:\n  query_timeout_secs: 0\nstorage:\n  url: ftp://x\n";
        match Config::from_yaml("t", yaml, &[]) {
            Err(ConfigError::Invalid { issues, .. }) => {
                let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
                assert_eq!(
                    keys,
                    [
                        "ingest.grpc_listen",
                        "api.query_timeout_secs",
                        "storage.url"
                    ]
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// `bus.kind: kafka` is accepted with valid settings; bad Kafka settings are reported by key.
    #[test]
    fn kafka_bus_settings() {
        let c = Config::from_yaml(
            "t",
            "bus:\n  kind: kafka\n  kafka:\n    brokers: a:9092,b:9093\n    partitions: 4\n    compression: zstd\n",
            &[],
        )
        .expect("valid kafka config");
        assert_eq!(c.bus.kind, BusKind::Kafka);
        assert_eq!(c.bus.kafka.partitions, 4);
        assert_eq!(c.bus.kafka.compression, KafkaCompression::Zstd);
        assert_eq!(c.bus.kafka.topic_prefix, "phoenix.");
        let yaml = "bus:\n  kind: kafka\n  kafka:\n    brokers: nohost\n    topic_prefix: 'a b'\n    partitions: 0\n    group_id: ''\n";
        match Config::from_yaml("t", yaml, &[]) {
            Err(ConfigError::Invalid { issues, .. }) => {
                let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
                assert_eq!(
                    keys,
                    [
                        "bus.kafka.brokers",
                        "bus.kafka.topic_prefix",
                        "bus.kafka.partitions",
                        "bus.kafka.group_id"
                    ]
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        // Kafka settings are not checked while the bus is in memory.
        Config::from_yaml("t", "bus:\n  kafka:\n    partitions: 0\n", &[]).expect("memory bus");
    }

    /// Storage URLs are classified by scheme.
    #[test]
    fn storage_urls() {
        assert_eq!(StorageUrl::parse("memory://"), Ok(StorageUrl::Memory));
        assert_eq!(
            StorageUrl::parse("./data/tables"),
            Ok(StorageUrl::Local("./data/tables".into()))
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x"),
            Ok(StorageUrl::Local("/tmp/x".into()))
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket/a/b/"),
            Ok(StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            })
        );
        assert!(StorageUrl::parse("gs://b").is_err());
        assert!(StorageUrl::parse("s3:///x").is_err());
    }
}
