//! The running temporality processor.
//!
//! Every selected sum or explicit histogram row of the source temporality is converted through
//! the per-stream state, in `(series_id, time)` order (points of a stream may arrive in any
//! order within a batch), and its point columns rewritten in place; other rows are copied.
//! Rows that yield no point are dropped and counted by reason. The output keeps the input's
//! row order, so no column but the rewritten ones is copied.

use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, BooleanBufferBuilder, Float64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampNanosecondArray, UInt64Builder,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use phoenix_model::pattern::AnyOf;
use phoenix_model::pipeline::TargetTemporality;
use phoenix_model::schema::col;

use super::accumulate::{DeltaState, HistogramPoint};
use super::metrics::TemporalityMetrics;
use super::view::{opt_f64, Kind, PointView, Temp};
use crate::columns::{dropped_rows, replace};
use crate::delta::{bounds_layout, CumulativeState, InitialValue, Skip};
use crate::processor::Processor;
use crate::Result;

/// Converts sums and explicit histograms to one temporality.
pub struct Temporality {
    to: TargetTemporality,
    /// Metrics converted; empty converts all.
    metric: AnyOf,
    /// Cumulative → delta state.
    cumulative: CumulativeState,
    /// Delta → cumulative state.
    deltas: DeltaState,
    /// How often idle streams are swept.
    sweep_every_ns: i64,
    last_sweep_ns: i64,
    metrics: TemporalityMetrics,
    /// Rows the last batch dropped, for usage accounting.
    dropped: Option<RecordBatch>,
    /// Scratch bucket counts.
    buf: Vec<u64>,
    /// Converted bucket counts of the current batch.
    arena: Vec<u64>,
}

/// What becomes of one row.
#[derive(Debug, Clone, Copy)]
enum Res {
    /// Copied unchanged.
    Copy,
    /// Dropped.
    Skip(Skip),
    /// A converted sum.
    Sum { start: Option<i64>, value: f64 },
    /// A converted histogram; its buckets are `arena[off..off + len]`.
    Hist {
        start: Option<i64>,
        count: u64,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        off: usize,
        len: usize,
    },
}

/// The rewritten point columns.
struct Out {
    temporality: StringBuilder,
    start: Vec<Option<i64>>,
    value: Float64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    buckets: ListBuilder<UInt64Builder>,
    keep: BooleanBufferBuilder,
    skipped: [u64; 3],
}

impl Out {
    fn new(rows: usize) -> Self {
        Out {
            temporality: StringBuilder::with_capacity(rows, rows * 10),
            start: Vec::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            buckets: ListBuilder::with_capacity(UInt64Builder::new(), rows),
            keep: BooleanBufferBuilder::new(rows),
            skipped: [0; 3],
        }
    }

    /// Appends row `i` of `v` unchanged.
    fn copy(&mut self, v: &PointView<'_>, i: usize) {
        let t = v.temporality;
        self.temporality
            .append_option(t.is_valid(i).then(|| t.value(i)));
        self.start.push(v.start(i));
        self.value.append_option(opt_f64(v.value, i));
        self.count.append_option(v.count(i));
        self.sum.append_option(opt_f64(v.sum, i));
        self.min.append_option(opt_f64(v.min, i));
        self.max.append_option(opt_f64(v.max, i));
        if v.buckets_valid(i) {
            self.buckets.values().append_slice(v.buckets(i));
            self.buckets.append(true);
        } else {
            self.buckets.append_null();
        }
        self.keep.append(true);
    }

    /// Appends a row dropped for `why` (its columns are placeholders, filtered out).
    fn skip(&mut self, why: Skip) {
        self.temporality.append_null();
        self.start.push(None);
        self.value.append_null();
        self.count.append_null();
        self.sum.append_null();
        self.min.append_null();
        self.max.append_null();
        self.buckets.append_null();
        self.keep.append(false);
        self.skipped[why as usize] += 1;
    }

    /// Appends a converted sum.
    fn sum_point(&mut self, to: Temp, start: Option<i64>, value: f64) {
        self.temporality.append_option(to.as_str());
        self.start.push(start);
        self.value.append_value(value);
        self.count.append_null();
        self.sum.append_null();
        self.min.append_null();
        self.max.append_null();
        self.buckets.append_null();
        self.keep.append(true);
    }

    /// Appends a converted histogram whose bucket counts are `buckets`.
    #[allow(clippy::too_many_arguments)] // One argument per rewritten column.
    fn hist_point(
        &mut self,
        to: Temp,
        start: Option<i64>,
        count: u64,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        buckets: &[u64],
    ) {
        self.temporality.append_option(to.as_str());
        self.start.push(start);
        self.value.append_null();
        self.count.append_value(count);
        self.sum.append_option(sum);
        self.min.append_option(min);
        self.max.append_option(max);
        self.buckets.values().append_slice(buckets);
        self.buckets.append(true);
        self.keep.append(true);
    }
}

impl Temporality {
    pub(crate) fn new(
        to: TargetTemporality,
        metric: AnyOf,
        initial: InitialValue,
        stale_after_ns: i64,
        metrics: TemporalityMetrics,
        now_ns: i64,
    ) -> Self {
        Temporality {
            to,
            metric,
            cumulative: CumulativeState::new_at(initial, stale_after_ns, now_ns),
            deltas: DeltaState::new(stale_after_ns, now_ns),
            sweep_every_ns: (stale_after_ns / 10).max(1),
            last_sweep_ns: now_ns,
            metrics,
            dropped: None,
            buf: Vec::new(),
            arena: Vec::new(),
        }
    }

    /// The temporality rows are converted from.
    fn source(&self) -> Temp {
        match self.to {
            TargetTemporality::Delta => Temp::Cumulative,
            TargetTemporality::Cumulative => Temp::Delta,
        }
    }

    /// Whether row `i` is converted.
    #[inline]
    fn converts<'a>(
        &self,
        v: &PointView<'a>,
        i: usize,
        last: &mut Option<(&'a str, bool)>,
    ) -> bool {
        if !matches!(v.kind(i), Kind::Sum | Kind::Histogram) || v.temporality(i) != self.source() {
            return false;
        }
        if self.metric.is_empty() {
            return true;
        }
        let name = v.metric.value(i);
        match *last {
            Some((prev, hit)) if prev == name => hit,
            _ => {
                let hit = self.metric.is_match(name);
                *last = Some((name, hit));
                hit
            }
        }
    }

    /// Advances the state's clock, sweeping idle streams now and then.
    fn clock(&mut self, now_ns: i64) {
        if now_ns.saturating_sub(self.last_sweep_ns) >= self.sweep_every_ns {
            let gone = self.cumulative.expire(now_ns) + self.deltas.expire(now_ns);
            if gone > 0 {
                tracing::debug!(expired = gone, "Idle streams forgotten.");
            }
            self.last_sweep_ns = now_ns;
        } else {
            self.cumulative.tick(now_ns);
            self.deltas.tick(now_ns);
        }
    }

    /// Converts the point of row `i`.
    fn convert(&mut self, v: &PointView<'_>, i: usize) -> Res {
        let id = v.series_id.value(i);
        let (start, time) = (v.start(i), v.time.value(i));
        let skip = |s: &CumulativeState| Res::Skip(s.last_skip().unwrap_or(Skip::NoValue));
        match (self.to, v.kind(i)) {
            (TargetTemporality::Delta, Kind::Sum) => {
                let value = v.value_or_nan(i);
                let d = if v.monotonic(i) {
                    self.cumulative.sum(id, start, time, value)
                } else {
                    self.cumulative.non_monotonic_sum(id, start, time, value)
                };
                match d {
                    Some(d) => Res::Sum {
                        start: Some(d.start_ns),
                        value: d.value,
                    },
                    None => skip(&self.cumulative),
                }
            }
            (TargetTemporality::Delta, Kind::Histogram) => {
                let Some(count) = v.count(i) else {
                    return Res::Skip(Skip::NoValue);
                };
                let h = self.cumulative.histogram_into(
                    id,
                    start,
                    time,
                    count,
                    opt_f64(v.sum, i),
                    v.buckets(i),
                    bounds_layout(v.bounds(i)),
                    &mut self.buf,
                );
                let Some(h) = h else {
                    return skip(&self.cumulative);
                };
                // Min/max describe the delta only when it is the whole cumulative point.
                let (min, max) = if h.reset {
                    (opt_f64(v.min, i), opt_f64(v.max, i))
                } else {
                    (None, None)
                };
                let off = self.arena.len();
                self.arena.extend_from_slice(&self.buf);
                Res::Hist {
                    start: Some(h.start_ns),
                    count: h.count,
                    sum: h.sum,
                    min,
                    max,
                    off,
                    len: self.buf.len(),
                }
            }
            (TargetTemporality::Cumulative, Kind::Sum) => {
                match self.deltas.sum(id, start, time, v.value_or_nan(i)) {
                    Ok(t) => Res::Sum {
                        start: t.start_ns,
                        value: t.value,
                    },
                    Err(why) => Res::Skip(why),
                }
            }
            (TargetTemporality::Cumulative, Kind::Histogram) => {
                let Some(count) = v.count(i) else {
                    return Res::Skip(Skip::NoValue);
                };
                let p = HistogramPoint {
                    start_ns: start,
                    time_ns: time,
                    count,
                    sum: opt_f64(v.sum, i),
                    min: opt_f64(v.min, i),
                    max: opt_f64(v.max, i),
                    buckets: v.buckets(i),
                    layout: bounds_layout(v.bounds(i)),
                };
                match self.deltas.histogram(id, &p, &mut self.buf) {
                    Ok(t) => {
                        let off = self.arena.len();
                        self.arena.extend_from_slice(&self.buf);
                        Res::Hist {
                            start: t.start_ns,
                            count: t.count,
                            sum: t.sum,
                            min: t.min,
                            max: t.max,
                            off,
                            len: self.buf.len(),
                        }
                    }
                    Err(why) => Res::Skip(why),
                }
            }
            _ => Res::Copy,
        }
    }

    /// Processes `batch` with `now_ns` as the state's clock (wall clock in production).
    ///
    /// # Errors
    /// A batch not in the metrics schema, or a kernel failure.
    pub(crate) fn process_now(&mut self, batch: RecordBatch, now_ns: i64) -> Result<RecordBatch> {
        self.dropped = None;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch);
        }
        self.clock(now_ns);
        let v = PointView::new(&batch)?;
        // Rows converted, in `(series_id, time)` order.
        let mut order: Vec<(u64, i64, u32)> = Vec::new();
        let mut last = None;
        for i in 0..rows {
            if self.converts(&v, i, &mut last) {
                order.push((v.series_id.value(i), v.time.value(i), i as u32));
            }
        }
        if order.is_empty() {
            return Ok(batch);
        }
        if !order.is_sorted() {
            order.sort_unstable();
        }
        let mut results = vec![Res::Copy; rows];
        self.arena.clear();
        for &(_, _, i) in &order {
            results[i as usize] = self.convert(&v, i as usize);
        }
        let to = match self.to {
            TargetTemporality::Delta => Temp::Delta,
            TargetTemporality::Cumulative => Temp::Cumulative,
        };
        let mut out = Out::new(rows);
        for (i, r) in results.iter().enumerate() {
            match *r {
                Res::Copy => out.copy(&v, i),
                Res::Skip(why) => out.skip(why),
                Res::Sum { start, value } => out.sum_point(to, start, value),
                Res::Hist {
                    start,
                    count,
                    sum,
                    min,
                    max,
                    off,
                    len,
                } => out.hist_point(to, start, count, sum, min, max, &self.arena[off..off + len]),
            }
        }
        self.metrics
            .state_series
            .set((self.cumulative.len() + self.deltas.len()) as f64);
        for why in [Skip::Initial, Skip::OutOfOrder, Skip::NoValue] {
            self.metrics.skipped(why, out.skipped[why as usize]);
        }
        let start =
            TimestampNanosecondArray::from(std::mem::take(&mut out.start)).with_timezone("UTC");
        let rewritten = replace(
            &batch,
            &[
                (col::TEMPORALITY, Arc::new(out.temporality.finish())),
                (col::START_TIME, Arc::new(start)),
                (col::VALUE, Arc::new(out.value.finish())),
                (col::COUNT, Arc::new(out.count.finish())),
                (col::SUM, Arc::new(out.sum.finish())),
                (col::MIN, Arc::new(out.min.finish())),
                (col::MAX, Arc::new(out.max.finish())),
                (col::BUCKET_COUNTS, Arc::new(out.buckets.finish())),
            ],
        )?;
        let keep: BooleanBuffer = out.keep.finish();
        let kept = keep.count_set_bits();
        if kept == rows {
            return Ok(rewritten);
        }
        self.dropped = Some(dropped_rows(&batch, &keep)?);
        Ok(filter_record_batch(
            &rewritten,
            &BooleanArray::new(keep, None),
        )?)
    }
}

impl Processor for Temporality {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        self.process_now(batch, crate::delta::wall_clock_ns())
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }
}
