//! OTLP `ExportMetricsServiceRequest` → one Arrow batch in [`phoenix_model::metrics_schema`].
//!
//! The request is read through borrowed views ([`view`]): either the prost message tree
//! ([`decode`], for OTLP/JSON) or the serialized protobuf bytes read in place
//! ([`decode_protobuf`], for OTLP/gRPC and OTLP/HTTP protobuf; see [`wire`]). Both give
//! identical outcomes; the row logic below is written once and monomorphised for each.
//!
//! Two passes: [`capacity`] counts rows, map entries, bytes and list items to size every
//! builder (for protobuf bodies the structural [`wire::check`] counts the same as it walks);
//! the decode pass validates each datapoint completely ([`validate`], attribute limits)
//! before appending it, so a rejected point leaves no partial row. Resource attributes are
//! validated, rendered and hashed once per `ResourceMetrics`.

pub mod attributes;
mod builder;
mod capacity;
mod prost_view;
pub mod reason;
mod runs;
pub mod series_id;
mod validate;
mod view;
pub mod wire;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use phoenix_model::config::IngestConfig;
use phoenix_model::schema::{kind, temporality};

use crate::error::{Error, Result};
use attributes::RenderedAttrs;
use builder::{Columns, Common, MetricFields, ResourceMap, Values};
use capacity::{memory_for, Capacity, ENTRY_BYTES, FIXED_ROW_BYTES, LIST_ITEM_BYTES};
use prost_view::Prost;
pub use reason::{Reason, RejectCounts};
use validate::TimeWindow;
use view::{Base, Data, MetricView, View};

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
    Capacity::of::<Prost>(prost_view::resources(req), limits.max_attribute_value_bytes)
        .memory_bytes()
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
    reserve: impl FnMut(usize) -> Result<()>,
) -> Result<Decoded> {
    let resources = prost_view::resources(req);
    let cap = Capacity::of::<Prost>(resources.clone(), limits.max_attribute_value_bytes);
    decode_view::<Prost>(resources, cap, limits, now, reserve)
}

/// [`decode`] of a serialized `ExportMetricsServiceRequest` (an OTLP/HTTP protobuf body),
/// read in place without building the prost message.
///
/// # Errors
/// [`Error::InvalidProtobuf`] when prost would not decode `body` either; else as [`decode`].
pub fn decode_protobuf(body: &[u8], limits: &DecodeLimits) -> Result<Decoded> {
    decode_protobuf_reserving(body, limits, now_unix_nanos(), |_| Ok(()))
}

/// [`decode_protobuf`] with the time window around `now` (nanoseconds since the Unix epoch).
///
/// # Errors
/// As [`decode_protobuf`].
pub fn decode_protobuf_at(body: &[u8], limits: &DecodeLimits, now: i64) -> Result<Decoded> {
    decode_protobuf_reserving(body, limits, now, |_| Ok(()))
}

/// Estimated memory one protobuf body holds while decoded: the body plus the batch.
///
/// # Errors
/// [`Error::InvalidProtobuf`] when `body` does not decode.
pub fn estimated_memory_protobuf(body: &[u8], limits: &DecodeLimits) -> Result<usize> {
    Ok(match wire::check(body, limits.max_attribute_value_bytes)? {
        wire::Checked::Clean(cap) => cap.memory_bytes(),
        wire::Checked::NeedsMerge => estimated_memory(&merged(body)?, limits),
    })
}

/// [`decode_reserving`] of a protobuf body: the same outcome as prost-decoding `body` and
/// calling [`decode_reserving`], with the body's bytes standing for the parsed message in the
/// memory estimate. Bodies where a singular message field repeats (prost merges those) go
/// through prost.
///
/// # Errors
/// As [`decode_protobuf`], and whatever `reserve` returns.
pub fn decode_protobuf_reserving(
    body: &[u8],
    limits: &DecodeLimits,
    now: i64,
    reserve: impl FnMut(usize) -> Result<()>,
) -> Result<Decoded> {
    // The check counts the body too: no separate counting pass over the bytes.
    match wire::check(body, limits.max_attribute_value_bytes)? {
        wire::Checked::Clean(cap) => {
            decode_view::<wire::Wire>(wire::resources(body), cap, limits, now, reserve)
        }
        wire::Checked::NeedsMerge => decode_reserving(&merged(body)?, limits, now, reserve),
    }
}

/// The counting pass of the views over a checked body, the body standing for the message:
/// what [`wire::check`] counts (kept to test it).
#[cfg(test)]
fn wire_capacity(body: &[u8], limits: &DecodeLimits) -> Capacity {
    let mut cap =
        Capacity::of::<wire::Wire>(wire::resources(body), limits.max_attribute_value_bytes);
    cap.message_bytes = body.len();
    cap
}

/// The prost message of a checked body whose repeated singular fields must be merged.
fn merged(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    use prost::Message;
    ExportMetricsServiceRequest::decode(body)
        .map_err(|_| Error::InvalidProtobuf(wire::WireError::Merged))
}

/// The decode pass over any [`View`], sized by its counting pass `cap`.
fn decode_view<'a, F: View<'a>>(
    resources: F::Resources,
    cap: Capacity,
    limits: &DecodeLimits,
    now: i64,
    mut reserve: impl FnMut(usize) -> Result<()>,
) -> Result<Decoded> {
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
    for rm in resources {
        let resource_start = d.cols.rows();
        let res_len = rm.attrs.clone().count();
        let res_ok = resource.load(rm.attrs, res_len, series_id::RESOURCE_SEED, limits);
        let service = resource.find("service.name").unwrap_or("");
        let resource_map = ResourceMap::new(&resource);
        let resource_bytes = resource.bytes() + ENTRY_BYTES * resource.entries();
        for sm in rm.scopes {
            let scope_start = d.cols.rows();
            let scope = sm.name;
            for m in sm.metrics {
                let ctx = MetricCtx {
                    name: m.name,
                    unit: m.unit,
                    resource: &resource,
                    resource_ok: res_ok,
                    name_hash: series_id::name_hash(m.name),
                    row_bytes: FIXED_ROW_BYTES
                        + resource_bytes
                        + m.name.len()
                        + m.unit.len()
                        + scope.len()
                        + service.len(),
                };
                d.metric::<F>(&ctx, m)?;
            }
            d.cols.scope_run(scope, d.cols.rows() - scope_start)?;
        }
        d.cols
            .resource_run(service, &resource_map, d.cols.rows() - resource_start)?;
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
    name: &'r str,
    unit: &'r str,
    resource: &'a RenderedAttrs<'r>,
    resource_ok: Result<(), Reason>,
    name_hash: u64,
    /// Column bytes of one row of this metric, before its attributes and lists.
    row_bytes: usize,
}

/// Accessors shared by the four datapoint types.
trait Point<'r, F: View<'r>> {
    fn base(&self) -> &Base<'r, F>;
}

macro_rules! impl_point {
    ($t:ident) => {
        impl<'r, F: View<'r>> Point<'r, F> for view::$t<'r, F> {
            fn base(&self) -> &Base<'r, F> {
                &self.base
            }
        }
    };
}

impl_point!(NumberPoint);
impl_point!(HistogramPoint);
impl_point!(ExpPoint);
impl_point!(SummaryPoint);

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
    fn metric<F: View<'r>>(&mut self, ctx: &MetricCtx<'_, 'r>, m: MetricView<'r, F>) -> Result<()> {
        let shape = |kind, temporality, monotonic| Shape {
            kind,
            temporality,
            monotonic,
        };
        match m.data {
            None => {
                self.out.metrics_without_data += 1;
                Ok(())
            }
            Some(Data::Gauge(points)) => {
                self.points(ctx, points, shape(kind::GAUGE, None, None), |p| {
                    validate::number(p).map(Values::Number)
                })
            }
            Some(Data::Sum(points, t, monotonic)) => {
                let sh = shape(kind::SUM, temporality_of(t), Some(monotonic));
                self.points(ctx, points, sh, |p| validate::number(p).map(Values::Number))
            }
            Some(Data::Histogram(points, t)) => {
                let sh = shape(kind::HISTOGRAM, temporality_of(t), None);
                self.points(ctx, points, sh, |p| {
                    validate::histogram(p).map(|()| Values::Histogram(p))
                })
            }
            Some(Data::Exponential(points, t)) => {
                let sh = shape(kind::EXPONENTIAL_HISTOGRAM, temporality_of(t), None);
                self.points(ctx, points, sh, |p| {
                    validate::exponential_histogram(p).map(|()| Values::Exponential(p))
                })
            }
            Some(Data::Summary(points)) => {
                self.points(ctx, points, shape(kind::SUMMARY, None, None), |p| {
                    validate::summary(p).map(|()| Values::Summary(p))
                })
            }
        }
    }

    fn points<F: View<'r>, P: Point<'r, F>>(
        &mut self,
        ctx: &MetricCtx<'_, 'r>,
        points: impl Iterator<Item = P>,
        shape: Shape,
        check: impl for<'p> Fn(&'p P) -> Result<Values<'p, 'r, F>, Reason>,
    ) -> Result<()> {
        let name = ctx.name;
        // Whole-metric rejections: no point can pass.
        let whole = if name.is_empty() {
            Err(Reason::EmptyMetricName)
        } else {
            ctx.resource_ok
        };
        if let Err(reason) = whole {
            let (mut n, mut exemplars) = (0, 0);
            for p in points {
                n += 1;
                exemplars += p.base().exemplars_len as u64;
            }
            self.out.exemplars_dropped += exemplars;
            self.out.reject(reason, name, n);
            return Ok(());
        }
        let first_row = self.cols.rows();
        for p in points {
            let base = p.base();
            self.out.exemplars_dropped += base.exemplars_len as u64;
            let checked = validate::times(base.time, base.start, &self.window)
                .and_then(|t| Ok((t, check(&p)?)));
            let ((time, start_time), values) = match checked {
                Ok(v) => v,
                Err(reason) => {
                    self.out.reject(reason, name, 1);
                    continue;
                }
            };
            if let Err(reason) = self.point.load(
                base.attrs.clone(),
                base.attrs_len,
                series_id::ATTRIBUTE_SEED,
                self.limits,
            ) {
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
                series_id: series_id::combine(
                    ctx.name_hash,
                    ctx.resource.hash(),
                    self.point.hash(),
                ),
                flags: base.flags,
            };
            self.cols.append(&common, &self.point, values)?;
        }
        let fields = MetricFields {
            metric: name,
            kind: shape.kind,
            temporality: shape.temporality,
            monotonic: shape.monotonic,
            unit: ctx.unit,
        };
        self.cols
            .metric_run(&fields, self.cols.rows() - first_row)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
