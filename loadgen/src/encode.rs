//! Pre-encoded OTLP request bodies.
//!
//! Every field the generator changes per request (timestamps, values, histogram counts, the
//! churned id label) is fixed-width in protobuf (`fixed64`, `double`, `sfixed64`, a 16-digit
//! string), so each request body is encoded once as a template and later requests only
//! overwrite those bytes in place: no protobuf structs, no allocation per datapoint.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use prost::encoding::{encode_key, encode_varint, WireType};

use crate::args::Timestamps;
use crate::error::{LoadgenError, Result};
use crate::series::{
    identity, Kind, Mix, Rng, SeriesState, HISTOGRAM_BOUNDS, HISTOGRAM_BUCKETS, NO_ID,
};

/// Datapoints (distinct attribute sets) per metric within one request.
const SERIES_PER_METRIC: usize = 10;
/// Width of the id label value: ids are zero-padded decimals, patchable in place.
const ID_WIDTH: usize = 16;

/// What to generate: the series set and how it is cut into request bodies.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Active series (slots); churn replaces identities but keeps this count.
    pub series: u64,
    /// Attributes per datapoint; the first is the id label.
    pub attributes: usize,
    /// Datapoints per request, at most.
    pub batch_size: usize,
    /// Concurrent connections (requests are cut so each can be busy).
    pub connections: usize,
    /// Share of each metric type.
    pub mix: Mix,
    /// Series slots given a fresh identity every second (0 = stable set).
    pub churn_per_sec: u64,
    /// Name of the id label that makes each series unique.
    pub id_attribute: String,
    /// Seed of the value generator.
    pub seed: u64,
    /// How points are stamped; [`Timestamps::Aligned`] puts one point per series in a request.
    pub timestamps: Timestamps,
    /// Decimals of gauge and delta-sum values (`None`: full-precision doubles).
    pub decimals: Option<u32>,
}

impl Workload {
    /// Global series ranges of the request bodies ("chunks"); each chunk is one exporter
    /// instance (one resource) and is sent as a whole.
    ///
    /// There are enough chunks that no body exceeds `batch_size` datapoints and that every
    /// connection has a chunk of its own when there are fewer series than that.
    pub fn partition(&self) -> Vec<Range<u64>> {
        let n = self.series;
        let batch = self.batch_size.max(1) as u64;
        let conns = self.connections.max(1) as u64;
        let chunks = n.div_ceil(batch).max(conns.min(n)).max(1);
        let cut = |j: u64| (u128::from(j) * u128::from(n) / u128::from(chunks)) as u64;
        (0..chunks).map(|j| cut(j)..cut(j + 1)).collect()
    }
}

/// Position of one datapoint in a chunk body.
#[derive(Debug, Clone)]
struct Slot {
    /// Offset of the datapoint message body.
    base: u32,
    /// Offset of the id label's value bytes, 0 when there is none.
    id_off: u32,
    /// Index into `Chunk::states`.
    series: u32,
    /// Id currently written at `id_off`.
    id_written: u64,
}

/// One pre-encoded `ExportMetricsServiceRequest` and the state of its series.
#[derive(Debug)]
pub struct Chunk {
    /// The body as last filled. Requests share it without a copy; the next fill takes it
    /// back once the request let go of it (copying only if a request still holds it).
    buf: Bytes,
    slots: Vec<Slot>,
    states: Vec<SeriesState>,
    rng: Rng,
    series_total: u64,
    churn_per_sec: u64,
    epoch_ns: u64,
    /// `10^decimals` when values are rounded.
    scale: Option<f64>,
}

/// Builds every chunk of `workload`; series start times are `epoch_ns` (unix ns).
///
/// # Errors
/// [`LoadgenError::Invalid`] if a body would exceed 4 GiB.
pub fn build_chunks(workload: &Workload, epoch_ns: u64) -> Result<Vec<Chunk>> {
    workload
        .partition()
        .into_iter()
        .enumerate()
        .map(|(j, range)| Chunk::build(workload, range, j, epoch_ns))
        .collect()
}

impl Chunk {
    /// Encodes the template of chunk `index`, covering global series `range`.
    ///
    /// # Errors
    /// [`LoadgenError::Invalid`] if the body would exceed 4 GiB.
    pub fn build(
        workload: &Workload,
        range: Range<u64>,
        index: usize,
        epoch_ns: u64,
    ) -> Result<Chunk> {
        let n = (range.end - range.start) as usize;
        // An aligned request is one collection: each series once, at the collection instant.
        let repeats = match workload.timestamps {
            Timestamps::Aligned => 1,
            Timestamps::Wall => (workload.batch_size / n.max(1)).max(1),
        };
        let per_metric = if workload.attributes == 0 {
            1
        } else {
            SERIES_PER_METRIC
        };
        let counts = workload.mix.apportion(n);

        let mut states = Vec::with_capacity(n);
        let mut scope = Part::default();
        let mut scope_info = Part::default();
        put_str(&mut scope_info.buf, 1, "phoenix-loadgen");
        put_str(&mut scope_info.buf, 2, env!("CARGO_PKG_VERSION"));
        scope.nest(1, scope_info);

        let mut global = range.start;
        for (kind, count) in Kind::ALL.into_iter().zip(counts) {
            let first = states.len();
            for _ in 0..count {
                states.push(SeriesState::new(kind, global));
                global += 1;
            }
            let locals: Vec<usize> = (first..first + count).collect();
            for (m, group) in locals.chunks(per_metric).enumerate() {
                let metric = encode_metric(kind, m, group, repeats, &states, workload);
                scope.nest(2, metric);
            }
        }

        let mut resource = Part::default();
        let service = format!("loadgen-{}", index % 8);
        let host = format!("loadgen-host-{index:05}");
        for (k, v) in [
            ("service.name", service.as_str()),
            ("host.name", host.as_str()),
        ] {
            let (kv, _) = key_value(k, v);
            put_bytes(&mut resource.buf, 1, &kv);
        }
        let mut resource_metrics = Part::default();
        resource_metrics.nest(1, resource);
        resource_metrics.nest(2, scope);
        let mut request = Part::default();
        request.nest(1, resource_metrics);

        let too_large = || {
            LoadgenError::invalid(
                "batch_size (--batch-size)",
                "a request body would exceed 4 GiB",
            )
        };
        u32::try_from(request.buf.len()).map_err(|_| too_large())?;
        let slots = request
            .marks
            .into_iter()
            .map(|m| {
                Ok(Slot {
                    base: u32::try_from(m.base).map_err(|_| too_large())?,
                    id_off: m
                        .id_off
                        .map_or(Ok(0), u32::try_from)
                        .map_err(|_| too_large())?,
                    series: m.series,
                    id_written: NO_ID,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Chunk {
            buf: Bytes::from(request.buf),
            slots,
            states,
            rng: Rng::new(workload.seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
            series_total: workload.series,
            churn_per_sec: workload.churn_per_sec,
            epoch_ns,
            scale: workload
                .decimals
                .map(|d| 10_f64.powi(i32::try_from(d).unwrap_or(i32::MAX))),
        })
    }

    /// Datapoints in each request of this chunk.
    pub fn datapoints(&self) -> usize {
        self.slots.len()
    }

    /// Series slots in this chunk.
    pub fn series(&self) -> usize {
        self.states.len()
    }

    /// The encoded request as last filled.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded request as last filled, shared (no copy).
    pub fn body(&self) -> Bytes {
        self.buf.clone()
    }

    /// Advances every series to its next point at wall time `now_ns` (unix ns) and patches
    /// the body in place. Returns how many series identities were sent for the first time.
    pub fn fill(&mut self, now_ns: u64) -> u64 {
        self.fill_with(now_ns, None)
    }

    /// As [`Chunk::fill`], but every point is stamped `collection_ns` (the collection instant
    /// on the aligned grid, at or before `now_ns`); a series whose last point is not older
    /// moves 1 ns past it, so no timestamp repeats.
    pub fn fill_at(&mut self, now_ns: u64, collection_ns: u64) -> u64 {
        self.fill_with(now_ns, Some(collection_ns))
    }

    fn fill_with(&mut self, now_ns: u64, collection_ns: Option<u64>) -> u64 {
        let replaced = if self.churn_per_sec == 0 {
            0
        } else {
            (now_ns.saturating_sub(self.epoch_ns) / 1_000_000_000)
                .saturating_mul(self.churn_per_sec)
        };
        let mut body = std::mem::take(&mut self.buf)
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let buf: &mut [u8] = &mut body;
        let Chunk {
            slots,
            states,
            rng,
            series_total,
            epoch_ns,
            scale,
            ..
        } = self;
        let scale = *scale;
        let round = |v: f64| scale.map_or(v, |s| (v * s).round() / s);
        let stamp = collection_ns.unwrap_or(now_ns);
        let mut new_series = 0;
        for slot in slots.iter_mut() {
            let Some(st) = states.get_mut(slot.series as usize) else {
                continue;
            };
            let id = identity(st.global, *series_total, replaced);
            if id != st.id {
                // First send starts at the run's epoch (process start); a churned slot is a
                // new series that starts now.
                // Aligned: a churned series started just before the collection that first sees it.
                let start = match (st.id, collection_ns) {
                    (NO_ID, _) => *epoch_ns,
                    (_, Some(c)) => c.saturating_sub(1_000_000),
                    (_, None) => now_ns,
                };
                st.reset(id, start);
                new_series += 1;
            }
            if slot.id_off != 0 && slot.id_written != id {
                put_digits(buf, slot.id_off as usize, id);
                slot.id_written = id;
            }
            let base = slot.base as usize;
            let (start, time) = st.next_times(stamp);
            match st.kind {
                Kind::Gauge => {
                    put_u64(buf, base + 1, time);
                    put_u64(buf, base + 10, round(st.next_gauge(rng)).to_bits());
                }
                Kind::SumCumulative => {
                    put_u64(buf, base + 1, start);
                    put_u64(buf, base + 10, time);
                    put_u64(buf, base + 19, st.next_total(rng) as u64);
                }
                Kind::SumDelta => {
                    put_u64(buf, base + 1, start);
                    put_u64(buf, base + 10, time);
                    put_u64(buf, base + 19, round(rng.next_f64() * 1000.0).to_bits());
                }
                Kind::Histogram => {
                    put_u64(buf, base + 1, start);
                    put_u64(buf, base + 10, time);
                    if let Some(h) = st.next_hist(rng) {
                        put_u64(buf, base + 19, h.count);
                        put_u64(buf, base + 28, h.sum.to_bits());
                        put_u64(buf, base + 37, h.min.to_bits());
                        put_u64(buf, base + 46, h.max.to_bits());
                        for (i, c) in h.buckets.iter().enumerate() {
                            put_u64(buf, base + 56 + 8 * i, *c);
                        }
                    }
                }
            }
        }
        self.buf = body.freeze();
        new_series
    }
}

/// Encodes one `Metric` with the points of `group` (chunk-local series), `repeats` rounds.
fn encode_metric(
    kind: Kind,
    index: usize,
    group: &[usize],
    repeats: usize,
    states: &[SeriesState],
    workload: &Workload,
) -> Part {
    let mut data = Part::default();
    for _ in 0..repeats {
        for &local in group {
            let global = states.get(local).map_or(0, |s| s.global);
            data.nest(1, encode_point(kind, local as u32, global, workload));
        }
    }
    match kind {
        Kind::Gauge => {}
        // aggregation_temporality (2): 1 delta, 2 cumulative; is_monotonic (3).
        Kind::SumCumulative => put_varint_field(&mut data.buf, &[(2, 2), (3, 1)]),
        Kind::SumDelta => put_varint_field(&mut data.buf, &[(2, 1), (3, 1)]),
        Kind::Histogram => put_varint_field(&mut data.buf, &[(2, 2)]),
    }
    let mut metric = Part::default();
    put_str(
        &mut metric.buf,
        1,
        &format!("{}_{index}", kind.metric_prefix()),
    );
    put_str(&mut metric.buf, 3, kind.unit());
    let field = match kind {
        Kind::Gauge => 5,
        Kind::SumCumulative | Kind::SumDelta => 7,
        Kind::Histogram => 9,
    };
    metric.nest(field, data);
    metric
}

/// Encodes one datapoint with zeroed fixed-width fields; the layout matches `Chunk::fill`.
fn encode_point(kind: Kind, local: u32, global: u64, workload: &Workload) -> Part {
    let mut buf = Vec::with_capacity(256);
    let attr_field = match kind {
        Kind::Gauge => {
            put_fixed64(&mut buf, 3, 0); // time_unix_nano @1
            put_fixed64(&mut buf, 4, 0); // as_double @10
            7
        }
        Kind::SumCumulative => {
            put_fixed64(&mut buf, 2, 0); // start_time_unix_nano @1
            put_fixed64(&mut buf, 3, 0); // time_unix_nano @10
            put_fixed64(&mut buf, 6, 0); // as_int (sfixed64) @19
            7
        }
        Kind::SumDelta => {
            put_fixed64(&mut buf, 2, 0);
            put_fixed64(&mut buf, 3, 0);
            put_fixed64(&mut buf, 4, 0); // as_double @19
            7
        }
        Kind::Histogram => {
            put_fixed64(&mut buf, 2, 0); // start @1
            put_fixed64(&mut buf, 3, 0); // time @10
            put_fixed64(&mut buf, 4, 0); // count @19
            put_fixed64(&mut buf, 5, 0); // sum @28
            put_fixed64(&mut buf, 11, 0); // min @37
            put_fixed64(&mut buf, 12, 0); // max @46
            put_bytes(&mut buf, 6, &[0u8; 8 * HISTOGRAM_BUCKETS]); // bucket_counts @56
            let bounds: Vec<u8> = HISTOGRAM_BOUNDS
                .iter()
                .flat_map(|b| b.to_le_bytes())
                .collect();
            put_bytes(&mut buf, 7, &bounds);
            9
        }
    };
    let mut id_off = None;
    for k in 0..workload.attributes {
        let (key, value) = if k == 0 {
            (workload.id_attribute.clone(), "0".repeat(ID_WIDTH))
        } else {
            attribute(k, global)
        };
        let (kv, value_off) = key_value(&key, &value);
        encode_key(attr_field, WireType::LengthDelimited, &mut buf);
        encode_varint(kv.len() as u64, &mut buf);
        if k == 0 {
            id_off = Some(buf.len() + value_off);
        }
        buf.extend_from_slice(&kv);
    }
    Part {
        buf,
        marks: vec![Mark {
            base: 0,
            id_off,
            series: local,
        }],
    }
}

/// The `k`-th (k >= 1) low-cardinality attribute of series `global`.
fn attribute(k: usize, global: u64) -> (String, String) {
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const CODES: [&str; 6] = ["200", "201", "204", "400", "404", "500"];
    const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
    let pick =
        |list: &[&str], div: u64| list[((global / div) % list.len() as u64) as usize].to_string();
    match k {
        1 => (
            "http.route".into(),
            format!("/api/v1/items/{}", global % 20),
        ),
        2 => ("http.request.method".into(), pick(&METHODS, 20)),
        3 => ("http.response.status_code".into(), pick(&CODES, 80)),
        4 => ("cloud.region".into(), pick(&REGIONS, 480)),
        _ => (
            format!("attr.{k}"),
            format!("value-{}", (global + k as u64) % 10),
        ),
    }
}

/// A datapoint's position inside a [`Part`].
#[derive(Debug)]
struct Mark {
    base: usize,
    id_off: Option<usize>,
    series: u32,
}

/// A message body under construction and the datapoints inside it.
#[derive(Debug, Default)]
struct Part {
    buf: Vec<u8>,
    marks: Vec<Mark>,
}

impl Part {
    /// Appends `child` as length-delimited field `field`, shifting its marks.
    fn nest(&mut self, field: u32, child: Part) {
        encode_key(field, WireType::LengthDelimited, &mut self.buf);
        encode_varint(child.buf.len() as u64, &mut self.buf);
        let shift = self.buf.len();
        self.buf.extend_from_slice(&child.buf);
        self.marks.extend(child.marks.into_iter().map(|m| Mark {
            base: m.base + shift,
            id_off: m.id_off.map(|o| o + shift),
            series: m.series,
        }));
    }
}

/// A `KeyValue` with a string value; also returns where the value's bytes start.
fn key_value(key: &str, value: &str) -> (Vec<u8>, usize) {
    let mut any = Vec::with_capacity(value.len() + 2);
    put_str(&mut any, 1, value);
    let value_in_any = any.len() - value.len();
    let mut kv = Vec::with_capacity(key.len() + any.len() + 4);
    put_str(&mut kv, 1, key);
    encode_key(2, WireType::LengthDelimited, &mut kv);
    encode_varint(any.len() as u64, &mut kv);
    let value_off = kv.len() + value_in_any;
    kv.extend_from_slice(&any);
    (kv, value_off)
}

fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    put_bytes(buf, field, s.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(data.len() as u64, buf);
    buf.extend_from_slice(data);
}

fn put_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    encode_key(field, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_varint_field(buf: &mut Vec<u8>, fields: &[(u32, u64)]) {
    for (field, v) in fields {
        encode_key(*field, WireType::Varint, buf);
        encode_varint(*v, buf);
    }
}

/// Overwrites 8 bytes at `off` (little endian, as protobuf fixed64/double).
#[inline]
fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    if let Some(dst) = buf.get_mut(off..off + 8) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Overwrites the id label at `off` with `id` as zero-padded decimal digits.
fn put_digits(buf: &mut [u8], off: usize, id: u64) {
    if let Some(dst) = buf.get_mut(off..off + ID_WIDTH) {
        let mut v = id;
        for b in dst.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    use prost::Message;

    fn workload(series: u64, attributes: usize, batch: usize, churn: u64) -> Workload {
        Workload {
            series,
            attributes,
            batch_size: batch,
            connections: 2,
            mix: Mix {
                weights: [1, 1, 1, 1],
            },
            churn_per_sec: churn,
            id_attribute: "series.id".into(),
            seed: 7,
            timestamps: Timestamps::Wall,
            decimals: None,
        }
    }

    fn decode(chunk: &Chunk) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest::decode(chunk.bytes()).expect("valid protobuf")
    }

    /// Partitions cover every series once, respect the batch size and feed every connection.
    #[test]
    fn partition_covers_series() {
        for (series, batch, conns) in [
            (10_000, 1000, 8),
            (50, 1000, 8),
            (3, 1000, 8),
            (1001, 1000, 1),
        ] {
            let mut w = workload(series, 3, batch, 0);
            w.connections = conns;
            let parts = w.partition();
            assert_eq!(parts.first().map(|r| r.start), Some(0));
            assert_eq!(parts.last().map(|r| r.end), Some(series));
            assert!(parts.windows(2).all(|p| p[0].end == p[1].start));
            assert!(parts.iter().all(|r| (r.end - r.start) as usize <= batch));
            assert!(parts.len() as u64 >= (conns as u64).min(series));
        }
    }

    /// A filled template decodes with prost, with the values the series state holds.
    #[test]
    fn filled_template_decodes() {
        let w = workload(40, 3, 100, 0);
        let mut chunks = build_chunks(&w, 1_000).expect("build");
        let chunk = &mut chunks[0];
        assert_eq!(chunk.series(), 20);
        assert_eq!(chunk.datapoints(), 100);
        assert_eq!(chunk.fill(5_000), 20);
        assert_eq!(chunk.fill(5_000), 0);
        let req = decode(chunk);
        let rm = &req.resource_metrics[0];
        let res = rm.resource.as_ref().expect("resource");
        assert_eq!(res.attributes[0].key, "service.name");
        let metrics = &rm.scope_metrics[0].metrics;
        let mut points = 0;
        for m in metrics {
            match m.data.as_ref().expect("data") {
                Data::Gauge(g) => {
                    for p in &g.data_points {
                        assert!(p.time_unix_nano > 5_000);
                        assert_eq!(p.attributes.len(), 3);
                        assert!(matches!(p.value, Some(Value::AsDouble(_))));
                        points += 1;
                    }
                }
                Data::Sum(s) => {
                    for p in &s.data_points {
                        assert!(p.start_time_unix_nano < p.time_unix_nano);
                        if s.aggregation_temporality == 2 {
                            assert_eq!(p.start_time_unix_nano, 1_000);
                            assert!(matches!(p.value, Some(Value::AsInt(v)) if v > 0));
                        }
                        points += 1;
                    }
                }
                Data::Histogram(h) => {
                    for p in &h.data_points {
                        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
                        assert!(p.count > 0 && p.min <= p.max);
                        points += 1;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(points, 100);
    }

    /// Churn rewrites the id label in place and restarts the cumulative series.
    #[test]
    fn churn_patches_ids() {
        let w = workload(4, 1, 4, 2);
        let mut chunks = build_chunks(&w, 0).expect("build");
        let ids = |c: &Chunk| -> Vec<String> {
            let req = decode(c);
            let mut out = Vec::new();
            for m in &req.resource_metrics[0].scope_metrics[0].metrics {
                if let Some(Data::Gauge(g)) = &m.data {
                    for p in &g.data_points {
                        if let Some(AnyValue::StringValue(s)) =
                            p.attributes[0].value.as_ref().and_then(|v| v.value.clone())
                        {
                            out.push(s);
                        }
                    }
                }
            }
            out
        };
        // One chunk per connection: 2 series each.
        let c = &mut chunks[0];
        c.fill(10);
        // The gauge series appears twice (two rounds fill the batch of 4).
        assert_eq!(ids(c), vec!["0000000000000000".to_string(); 2]);
        // After 1 s two replacements happened: slots 0 and 1 get ids 4 and 5.
        assert_eq!(c.fill(1_000_000_010), 2);
        assert_eq!(ids(c), vec!["0000000000000004".to_string(); 2]);
    }

    /// Aligned fills stamp every point of a request with the collection instant, once per
    /// series, and rounded values have at most the asked decimals; times still never repeat.
    #[test]
    fn aligned_fill_decodes() {
        let mut w = workload(40, 3, 100, 0);
        w.timestamps = Timestamps::Aligned;
        w.decimals = Some(2);
        let mut chunks = build_chunks(&w, 1_000).expect("build");
        let chunk = &mut chunks[0];
        // One collection per request: each of the 20 series once, not repeated to 100.
        assert_eq!(chunk.datapoints(), 20);
        let interval = 10_000_000_000;
        for (k, collection) in [(0, 2_000_000_000), (1, 2_000_000_000 + interval)] {
            chunk.fill_at(collection + 5_000_000 * (k + 1), collection);
            let req = decode(chunk);
            let mut points = 0;
            let whole = |v: f64, scale: f64| ((v * scale).round() / scale - v).abs() == 0.0;
            for m in &req.resource_metrics[0].scope_metrics[0].metrics {
                match m.data.as_ref().expect("data") {
                    Data::Gauge(g) => {
                        for p in &g.data_points {
                            assert_eq!(p.time_unix_nano, collection);
                            let Some(Value::AsDouble(v)) = p.value else {
                                panic!("gauge value {:?}", p.value)
                            };
                            assert!(whole(v, 100.0), "{v} has more than 2 decimals");
                            points += 1;
                        }
                    }
                    Data::Sum(s) => {
                        for p in &s.data_points {
                            assert_eq!(p.time_unix_nano, collection);
                            assert!(p.start_time_unix_nano < p.time_unix_nano);
                            match p.value {
                                Some(Value::AsDouble(v)) => assert!(whole(v, 100.0), "{v}"),
                                Some(Value::AsInt(v)) => assert!(v > 0),
                                None => panic!("sum without value"),
                            }
                            points += 1;
                        }
                    }
                    Data::Histogram(h) => {
                        for p in &h.data_points {
                            assert_eq!(p.time_unix_nano, collection);
                            points += 1;
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(points, 20);
        }
        // A collection instant that does not advance still gives each series a new time.
        chunk.fill_at(30_000_000_000, 2_000_000_000 + interval);
        let req = decode(chunk);
        for m in &req.resource_metrics[0].scope_metrics[0].metrics {
            if let Some(Data::Gauge(g)) = &m.data {
                assert!(g
                    .data_points
                    .iter()
                    .all(|p| p.time_unix_nano == 2_000_000_001 + interval));
            }
        }
    }

    /// A body handed to a request is shared, not copied, and never changes: a fill while it
    /// is held writes a new buffer; once it is dropped, the next fill patches the buffer in
    /// place again.
    #[test]
    fn bodies_are_shared_and_reused() {
        let mut chunks = build_chunks(&workload(40, 3, 100, 0), 1_000).expect("build");
        let chunk = &mut chunks[0];
        chunk.fill(5_000);
        let held = chunk.body();
        assert_eq!(held.as_ptr(), chunk.bytes().as_ptr(), "shared, not copied");
        let sent = held.to_vec();
        chunk.fill(6_000);
        assert_eq!(&held[..], &sent[..], "a held body is never patched");
        assert_ne!(chunk.bytes(), &sent[..], "the fill wrote new points");
        assert_ne!(held.as_ptr(), chunk.bytes().as_ptr());
        drop(held);
        let at = chunk.bytes().as_ptr();
        chunk.fill(7_000);
        assert_eq!(chunk.bytes().as_ptr(), at, "patched in place once unshared");
        assert_eq!(decode(chunk).resource_metrics.len(), 1);
    }

    /// Without `decimals`, gauges stay full-precision doubles (the default is unchanged).
    #[test]
    fn default_values_are_full_precision() {
        let mut chunks = build_chunks(&workload(40, 3, 100, 0), 1_000).expect("build");
        let chunk = &mut chunks[0];
        chunk.fill(5_000);
        let req = decode(chunk);
        let mut fractional = 0;
        for m in &req.resource_metrics[0].scope_metrics[0].metrics {
            if let Some(Data::Gauge(g)) = &m.data {
                for p in &g.data_points {
                    if let Some(Value::AsDouble(v)) = p.value {
                        fractional += usize::from((v * 100.0).fract() != 0.0);
                    }
                }
            }
        }
        assert!(fractional > 0, "gauges should carry full-precision doubles");
    }
}
