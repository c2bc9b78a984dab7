//! OTLP `ExportMetricsServiceRequest` → one Arrow batch in [`phoenix_model::metrics_schema`].
//!
//! Two passes: [`capacity`] counts rows, map entries, bytes and list items to size every
//! builder; the decode pass validates each datapoint completely ([`validate`], attribute limits)
//! before appending it, so a rejected point leaves no partial row. Resource attributes are
//! validated, rendered and hashed once per `ResourceMetrics`.

pub mod attributes;
mod builder;
mod capacity;
pub mod reason;
pub mod series_id;
mod validate;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint,
};
use phoenix_model::config::IngestConfig;
use phoenix_model::schema::{kind, temporality};

use crate::error::{Error, Result};
use attributes::RenderedAttrs;
use builder::{Columns, Common, ResourceMap, Values};
use capacity::{memory_for, Capacity, ENTRY_BYTES, FIXED_ROW_BYTES, LIST_ITEM_BYTES};
pub use reason::{Reason, RejectCounts};
use validate::TimeWindow;

/// How many times `max_body_bytes` a request may expand to in decoded columns (resource
/// attributes are repeated on every row, so a small body can otherwise expand enormously).
pub const MAX_EXPANSION: usize = 16;

/// Ceiling of `max_decoded_bytes`: far below the 2 GiB that Arrow's 32-bit string offsets
/// can address, so no column can overflow them.
pub const MAX_DECODED_BYTES: usize = 1 << 30;

/// Per-datapoint limits of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most attributes on one datapoint or one resource.
    pub max_attributes: usize,
    /// Largest attribute key or rendered value, in bytes.
    pub max_attribute_value_bytes: usize,
    /// Largest size of the decoded batch (estimated before, counted while decoding); larger
    /// requests fail with [`Error::TooLarge`].
    pub max_decoded_bytes: usize,
    /// Points older than this before now are rejected (`timestamp_too_old`); `None` accepts any.
    pub max_past: Option<Duration>,
    /// Points further than this after now are rejected (`timestamp_in_future`); `None`
    /// accepts any.
    pub max_future: Option<Duration>,
}

impl DecodeLimits {
    /// Limits from the ingest config: `max_decoded_bytes` = [`MAX_EXPANSION`] ×
    /// `max_body_bytes` (at most [`MAX_DECODED_BYTES`]); a 0 `max_past_secs` /
    /// `max_future_secs` leaves that side of the time window open.
    pub fn from_config(cfg: &IngestConfig) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Self {
            max_attributes: cfg.max_attributes,
            max_attribute_value_bytes: cfg.max_attribute_value_bytes,
            max_decoded_bytes: cfg
                .max_body_bytes
                .saturating_mul(MAX_EXPANSION)
                .min(MAX_DECODED_BYTES),
            max_past: secs(cfg.max_past_secs),
            max_future: secs(cfg.max_future_secs),
        }
    }

    /// These limits without a time window (any representable timestamp is accepted), for
    /// fixtures and imports of old data.
    pub fn without_time_window(self) -> Self {
        Self {
            max_past: None,
            max_future: None,
            ..self
        }
    }
}

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Outcome of decoding one request.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The accepted datapoints; `None` when none were accepted.
    pub batch: Option<RecordBatch>,
    /// Datapoints in `batch`.
    pub accepted: usize,
    /// Datapoints rejected by validation.
    pub rejected: usize,
    /// Rejections per reason.
    pub rejections: RejectCounts,
    /// The first rejection, naming metric and reason.
    pub first_error: Option<String>,
    /// Exemplars seen (and dropped: Phoenix does not store exemplars).
    pub exemplars_dropped: u64,
    /// Metrics that carried no data at all (no points, nothing rejected).
    pub metrics_without_data: u64,
}

impl Decoded {
    /// The `partial_success.error_message` for this request, when points were rejected.
    pub fn error_message(&self) -> Option<String> {
        let first = self.first_error.as_deref()?;
        let total = self.accepted + self.rejected;
        Some(format!(
            "{} of {} data points rejected; first: {}",
            self.rejected, total, first
        ))
    }

    fn reject(&mut self, reason: Reason, metric: &str, n: usize) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        self.rejections.add(reason, n as u64);
        if self.first_error.is_none() {
            self.first_error = Some(format!(
                "metric {metric:?}: {} ({})",
                reason.describe(),
                reason.as_str()
            ));
        }
    }
}

/// Decodes and validates `req` into one batch, with the time window around the current time.
///
/// # Errors
/// [`Error::TooLarge`] when the decoded columns would exceed `limits.max_decoded_bytes`;
/// [`Error::Arrow`] if the batch cannot be assembled (a bug).
pub fn decode(req: &ExportMetricsServiceRequest, limits: &DecodeLimits) -> Result<Decoded> {
    decode_at(req, limits, now_unix_nanos())
}

/// [`decode`] with the time window around `now` (nanoseconds since the Unix epoch).
///
/// # Errors
/// As [`decode`].
pub fn decode_at(
    req: &ExportMetricsServiceRequest,
    limits: &DecodeLimits,
    now: i64,
) -> Result<Decoded> {
    decode_reserving(req, limits, now, |_| Ok(()))
}

/// Estimated memory one request holds once parsed: the message plus the batch it decodes to.
pub fn estimated_memory(req: &ExportMetricsServiceRequest, limits: &DecodeLimits) -> usize {
    Capacity::of(req, limits.max_attribute_value_bytes).memory_bytes()
}

/// [`decode_at`] that first calls `reserve` with [`estimated_memory`] and stops with its error
/// before building anything; if the exact column bytes outgrow the estimate while decoding
/// (rendered values are guessed), it calls `reserve` again with a larger total before going on.
///
/// # Errors
/// As [`decode`], and whatever `reserve` returns.
pub fn decode_reserving(
    req: &ExportMetricsServiceRequest,
    limits: &DecodeLimits,
    now: i64,
    mut reserve: impl FnMut(usize) -> Result<()>,
) -> Result<Decoded> {
    let cap = Capacity::of(req, limits.max_attribute_value_bytes);
    let estimated = cap.estimated_bytes();
    if estimated > limits.max_decoded_bytes {
        return Err(Error::TooLarge {
            estimated,
            limit: limits.max_decoded_bytes,
        });
    }
    reserve(cap.memory_bytes())?;
    let mut d = Decoder {
        limits,
        reserve: &mut reserve,
        message_bytes: cap.message_bytes,
        reserved: estimated,
        window: TimeWindow::around(now, limits.max_past, limits.max_future),
        cols: Columns::with_capacity(&cap),
        point: RenderedAttrs::default(),
        out: Decoded::default(),
        bytes: 0,
    };
    let mut resource = RenderedAttrs::default();
    for rm in &req.resource_metrics {
        let res_attrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let res_ok = resource.load(res_attrs, series_id::RESOURCE_SEED, limits);
        let service = resource.find("service.name").unwrap_or("");
        let resource_map = ResourceMap::new(&resource);
        let resource_bytes = resource.bytes() + ENTRY_BYTES * resource.entries();
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map_or("", |s| s.name.as_str());
            for m in &sm.metrics {
                let ctx = MetricCtx {
                    metric: m,
                    scope,
                    service,
                    resource: &resource,
                    resource_map: &resource_map,
                    resource_ok: res_ok,
                    name_hash: series_id::name_hash(&m.name),
                    row_bytes: FIXED_ROW_BYTES
                        + resource_bytes
                        + m.name.len()
                        + m.unit.len()
                        + scope.len()
                        + service.len(),
                };
                d.metric(&ctx)?;
            }
        }
    }
    let mut out = d.out;
    out.accepted = d.cols.rows();
    if out.accepted > 0 {
        out.batch = Some(d.cols.finish()?);
    }
    Ok(out)
}

/// What every point of one metric shares.
struct MetricCtx<'a, 'r> {
    metric: &'r Metric,
    scope: &'a str,
    service: &'a str,
    resource: &'a RenderedAttrs<'r>,
    resource_map: &'a ResourceMap,
    resource_ok: Result<(), Reason>,
    name_hash: u64,
    /// Column bytes of one row of this metric, before its attributes and lists.
    row_bytes: usize,
}

/// Accessors shared by the four datapoint types.
trait Point {
    fn attributes(&self) -> &[KeyValue];
    fn times(&self) -> (u64, u64);
    fn flags(&self) -> u32;
    fn exemplars(&self) -> usize;
}

macro_rules! impl_point {
    ($t:ty, |$p:ident| $exemplars:expr) => {
        impl Point for $t {
            fn attributes(&self) -> &[KeyValue] {
                &self.attributes
            }
            fn times(&self) -> (u64, u64) {
                (self.time_unix_nano, self.start_time_unix_nano)
            }
            fn flags(&self) -> u32 {
                self.flags
            }
            fn exemplars(&self) -> usize {
                let $p = self;
                $exemplars
            }
        }
    };
}

impl_point!(NumberDataPoint, |p| p.exemplars.len());
impl_point!(HistogramDataPoint, |p| p.exemplars.len());
impl_point!(ExponentialHistogramDataPoint, |p| p.exemplars.len());
impl_point!(SummaryDataPoint, |_p| 0);

struct Decoder<'l, 'r> {
    limits: &'l DecodeLimits,
    /// Charges the memory budget (see [`decode_reserving`]).
    reserve: &'l mut dyn FnMut(usize) -> Result<()>,
    /// Estimated bytes of the parsed message.
    message_bytes: usize,
    /// Column bytes covered by the last reservation.
    reserved: usize,
    window: TimeWindow,
    cols: Columns,
    point: RenderedAttrs<'r>,
    out: Decoded,
    /// Column bytes appended so far, counted exactly (the estimate guesses rendered sizes).
    bytes: usize,
}

/// Kind, temporality and monotonic of one metric.
struct Shape {
    kind: &'static str,
    temporality: Option<&'static str>,
    monotonic: Option<bool>,
}

fn temporality_of(t: i32) -> Option<&'static str> {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => Some(temporality::DELTA),
        Ok(AggregationTemporality::Cumulative) => Some(temporality::CUMULATIVE),
        _ => None,
    }
}

impl<'r> Decoder<'_, 'r> {
    fn metric(&mut self, ctx: &MetricCtx<'_, 'r>) -> Result<()> {
        let shape = |kind, temporality, monotonic| Shape {
            kind,
            temporality,
            monotonic,
        };
        match &ctx.metric.data {
            None => {
                self.out.metrics_without_data += 1;
                Ok(())
            }
            Some(Data::Gauge(g)) => {
                self.points(ctx, &g.data_points, shape(kind::GAUGE, None, None), |p| {
                    validate::number(p).map(Values::Number)
                })
            }
            Some(Data::Sum(s)) => {
                let sh = shape(
                    kind::SUM,
                    temporality_of(s.aggregation_temporality),
                    Some(s.is_monotonic),
                );
                self.points(ctx, &s.data_points, sh, |p| {
                    validate::number(p).map(Values::Number)
                })
            }
            Some(Data::Histogram(h)) => {
                let sh = shape(
                    kind::HISTOGRAM,
                    temporality_of(h.aggregation_temporality),
                    None,
                );
                self.points(ctx, &h.data_points, sh, |p| {
                    validate::histogram(p).map(|()| Values::Histogram(p))
                })
            }
            Some(Data::ExponentialHistogram(h)) => {
                let sh = shape(
                    kind::EXPONENTIAL_HISTOGRAM,
                    temporality_of(h.aggregation_temporality),
                    None,
                );
                self.points(ctx, &h.data_points, sh, |p| {
                    validate::exponential_histogram(p).map(|()| Values::Exponential(p))
                })
            }
            Some(Data::Summary(s)) => {
                self.points(ctx, &s.data_points, shape(kind::SUMMARY, None, None), |p| {
                    validate::summary(p).map(|()| Values::Summary(p))
                })
            }
        }
    }

    fn points<P: Point>(
        &mut self,
        ctx: &MetricCtx<'_, 'r>,
        points: &'r [P],
        shape: Shape,
        check: impl Fn(&'r P) -> Result<Values<'r>, Reason>,
    ) -> Result<()> {
        let name = ctx.metric.name.as_str();
        self.out.exemplars_dropped += points.iter().map(|p| p.exemplars() as u64).sum::<u64>();
        // Whole-metric rejections: no point can pass.
        let whole = if name.is_empty() {
            Err(Reason::EmptyMetricName)
        } else {
            ctx.resource_ok
        };
        if let Err(reason) = whole {
            self.out.reject(reason, name, points.len());
            return Ok(());
        }
        for p in points {
            let (time, start) = p.times();
            let checked =
                validate::times(time, start, &self.window).and_then(|t| Ok((t, check(p)?)));
            let ((time, start_time), values) = match checked {
                Ok(v) => v,
                Err(reason) => {
                    self.out.reject(reason, name, 1);
                    continue;
                }
            };
            if let Err(reason) =
                self.point
                    .load(p.attributes(), series_id::ATTRIBUTE_SEED, self.limits)
            {
                self.out.reject(reason, name, 1);
                continue;
            }
            // Rendered values can be far longer than guessed (a double renders up to ~330
            // digits), so the limit is enforced on the bytes really appended too.
            self.bytes += ctx.row_bytes
                + self.point.bytes()
                + ENTRY_BYTES * self.point.entries()
                + LIST_ITEM_BYTES * values.list_items();
            if self.bytes > self.limits.max_decoded_bytes {
                return Err(Error::TooLarge {
                    estimated: self.bytes,
                    limit: self.limits.max_decoded_bytes,
                });
            }
            if self.bytes > self.reserved {
                // Doubling keeps the calls few; the limit caps it. Builders that outgrow their
                // presized capacity double it, so they may hold twice their bytes.
                let next = self
                    .bytes
                    .saturating_mul(2)
                    .min(self.limits.max_decoded_bytes);
                (self.reserve)(memory_for(self.message_bytes, next.saturating_mul(2)))?;
                self.reserved = next;
            }
            let common = Common {
                time,
                start_time,
                metric: name,
                kind: shape.kind,
                temporality: shape.temporality,
                monotonic: shape.monotonic,
                unit: &ctx.metric.unit,
                service: ctx.service,
                scope: ctx.scope,
                series_id: series_id::combine(
                    ctx.name_hash,
                    ctx.resource.hash(),
                    self.point.hash(),
                ),
                flags: p.flags(),
            };
            self.cols
                .append(&common, ctx.resource_map, &self.point, values)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
