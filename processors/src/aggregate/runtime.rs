//! The running aggregator: routes rows into windows, closes windows on the watermark, and
//! emits their rows.

use std::time::SystemTime;

use arrow::array::{BooleanArray, BooleanBufferBuilder};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::record_batch::RecordBatch;
use phoenix_model::metrics_schema;
use phoenix_model::pipeline::{GaugeFunction, LatePolicy, OutputTemporality};
use phoenix_model::schema::temporality::{CUMULATIVE, DELTA};

use super::buckets::HistAcc;
use super::buckets::HistPoint;
use super::config::Settings;
use super::downsample::{Cand, Down, Mode};
use super::emit::{Capacity, Emitter, Fields};
use super::group::{Grouping, Groups, NameCache, OutSeries, Running};
use super::input::{Class, Input};
use super::metrics::AggregateMetrics;
use super::window::{Acc, GaugeAcc, HistRow, Window};
use crate::delta::{wall_clock_ns, CumulativeState, InitialValue};
use crate::processor::{Processor, StateSnapshot};
use crate::Result;

/// Points stamped further than this ahead of the wall clock are dropped (`reason="future"`),
/// so one exporter with a wrong clock cannot push the watermark past every window.
pub const MAX_FUTURE_NS: i64 = 10 * 60 * 1_000_000_000;

/// Tumbling event-time windows over gauges, sums and histograms; see the module docs.
pub struct Aggregate {
    settings: Settings,
    pub(super) groups: Groups,
    /// Open windows, by start ascending (a few: a vector searched from the newest beats a
    /// tree lookup per row).
    pub(super) windows: Vec<(i64, Window)>,
    /// Cumulative → delta state per input stream.
    pub(super) cumulative: CumulativeState,
    /// Newest event time accepted.
    pub(super) max_time: i64,
    /// Watermark reached by [`Processor::tick`] on an idle input (the event-time watermark
    /// never goes below it).
    pub(super) floor: i64,
    /// `(max_time, wall ns)` at the first tick that saw `max_time`: the input has been idle
    /// since then.
    pub(super) idle_mark: Option<(i64, i64)>,
    /// Position assumed by [`Processor::process`].
    next_position: u64,
    /// Rows the last call dropped on purpose.
    dropped: Option<RecordBatch>,
    /// Delta bucket counts of the conversion in progress.
    scratch: Vec<u64>,
    /// Whether hitting `max_series` was logged.
    capped_logged: bool,
    metrics: AggregateMetrics,
}

/// Per-call tallies, added to the counters once per batch.
#[derive(Default)]
struct Tally {
    late: u64,
    late_dropped: u64,
    no_value: u64,
    max_series: u64,
    future: u64,
}

/// A gauge function's value.
fn apply(f: GaugeFunction, g: &GaugeAcc) -> f64 {
    match f {
        GaugeFunction::Sum => g.sum,
        GaugeFunction::Count => g.count as f64,
        GaugeFunction::Min => g.min,
        GaugeFunction::Max => g.max,
        GaugeFunction::Mean => g.sum / g.count as f64,
        GaugeFunction::Last => g.last(),
    }
}

/// The open window starting at `start`, created (first fed at `position`) when new.
#[inline]
fn window_mut(windows: &mut Vec<(i64, Window)>, start: i64, position: u64) -> &mut Window {
    // Rows mostly go to the newest window: search from the back.
    let at = match windows.iter().rposition(|(s, _)| *s <= start) {
        Some(i) if windows[i].0 == start => return &mut windows[i].1,
        Some(i) => i + 1,
        None => 0,
    };
    windows.insert(at, (start, Window::new(position)));
    &mut windows[at].1
}

/// A boolean mask of `n` false bits.
fn mask(n: usize) -> BooleanBufferBuilder {
    let mut b = BooleanBufferBuilder::new(n);
    b.append_n(n, false);
    b
}

impl Aggregate {
    pub(super) fn new(
        settings: Settings,
        grouping: Grouping,
        suffixes: Vec<String>,
        initial: InitialValue,
        metrics: AggregateMetrics,
    ) -> Self {
        let cumulative = CumulativeState::new(initial, settings.idle_ns);
        Aggregate {
            settings,
            groups: Groups::new(grouping, suffixes),
            windows: Vec::new(),
            cumulative,
            max_time: i64::MIN,
            floor: i64::MIN,
            idle_mark: None,
            next_position: 0,
            dropped: None,
            scratch: Vec::new(),
            capped_logged: false,
            metrics,
        }
    }

    /// Event time up to which windows are complete.
    fn watermark(&self) -> i64 {
        self.max_time
            .saturating_sub(self.settings.lateness_ns)
            .max(self.floor)
    }

    /// The watermark an idle input has reached at wall time `now` (ns): once event time has
    /// not advanced for `idle_grace`, it is taken to advance with the wall clock from the
    /// newest event time. `None` while not idle that long.
    fn idle_watermark(&mut self, now: i64) -> Option<i64> {
        match self.idle_mark {
            Some((seen, since)) if seen == self.max_time => {
                let beyond = now
                    .saturating_sub(since)
                    .saturating_sub(self.settings.idle_grace_ns);
                (beyond > 0).then(|| {
                    self.max_time
                        .saturating_add(beyond)
                        .saturating_sub(self.settings.lateness_ns)
                })
            }
            _ => {
                self.idle_mark = Some((self.max_time, now));
                None
            }
        }
    }

    /// Routes every row of `batch` into its window (or the pass / drop masks).
    fn ingest(
        &mut self,
        batch: &RecordBatch,
        position: u64,
        pass: &mut BooleanBufferBuilder,
        drop: &mut BooleanBufferBuilder,
    ) -> Result<Tally> {
        let input = Input::new(batch)?;
        let w = self.settings.window_ns;
        let future = wall_clock_ns().saturating_add(MAX_FUTURE_NS);
        let mut tally = Tally::default();
        let mut names = NameCache::default();
        // Window `[start, end)` of the previous row: most rows fall in the same one.
        let (mut cur_start, mut cur_end) = (i64::MAX, i64::MIN);
        for row in 0..batch.num_rows() {
            let class = input.class(row);
            let shape = match self.settings.mode {
                Mode::Rollup => class.shape(),
                Mode::Downsample(_) => class.downsample_shape(),
            };
            let Some(shape) = shape else {
                pass.set_bit(row, true);
                continue;
            };
            if !input.has_value(row, class) {
                drop.set_bit(row, true);
                tally.no_value += 1;
                continue;
            }
            let t = input.time[row];
            if t > future {
                drop.set_bit(row, true);
                tally.future += 1;
                continue;
            }
            if !(cur_start..cur_end).contains(&t) {
                cur_start = t.saturating_sub(t.rem_euclid(w));
                cur_end = cur_start.saturating_add(w);
            }
            let start = cur_start;
            if start.saturating_add(w) <= self.watermark() {
                tally.late += 1;
                match self.settings.late_policy {
                    LatePolicy::Drop => {
                        drop.set_bit(row, true);
                        tally.late_dropped += 1;
                    }
                    LatePolicy::PassThrough => pass.set_bit(row, true),
                }
                continue;
            }
            self.max_time = self.max_time.max(t);
            let key = self.groups.key(&input, row, shape, &mut names);
            let Some(out) = self
                .groups
                .find_or_insert(key, &input, row, self.settings.max_series)
            else {
                drop.set_bit(row, true);
                tally.max_series += 1;
                continue;
            };
            self.groups.touch(out, start);
            let win = window_mut(&mut self.windows, start, position);
            let id = input.series_id[row];
            if class == Class::Gauge && self.settings.mode == Mode::Rollup {
                // Gauges need nothing of the series itself: skip touching it.
                win.gauge(out, self.settings.sketch, t, id, input.value(row));
                continue;
            }
            let Some(series) = self.groups.get_mut(out) else {
                continue;
            };
            if let Mode::Downsample(f) = self.settings.mode {
                let slot = win.downs.get_or_insert_with(out, || None);
                let start_time = input.start(row);
                match class {
                    Class::Gauge | Class::DeltaSum | Class::CumulativeSum { .. } => {
                        if class != Class::Gauge {
                            series.monotonic &= input.monotonic(row);
                        }
                        let v = input.value(row);
                        let cand = Cand {
                            time: t,
                            start: start_time,
                            value: v,
                            tie: v.to_bits(),
                        };
                        Down::value(slot, shape, f, cand, v);
                    }
                    Class::DeltaHistogram | Class::CumulativeHistogram => {
                        let bounds = series.layout(input.bounds(row));
                        let count = input.count(row);
                        let cand = Cand {
                            time: t,
                            start: start_time,
                            value: count as f64,
                            tie: count,
                        };
                        let h = HistPoint {
                            bounds: &bounds,
                            counts: input.buckets(row),
                            count,
                            sum: input.sum(row),
                            min: input.min(row),
                            max: input.max(row),
                        };
                        Down::histogram(slot, shape, f, cand, h);
                    }
                    Class::Other => {}
                }
                continue;
            }
            match class {
                // Handled above.
                Class::Gauge => {}
                Class::DeltaSum => {
                    series.monotonic &= input.monotonic(row);
                    win.delta_sum(out, input.value(row));
                }
                Class::CumulativeSum { monotonic } => {
                    series.monotonic &= monotonic;
                    win.cumulative_sum(out, id, t, input.start(row), input.value(row), monotonic);
                }
                Class::DeltaHistogram | Class::CumulativeHistogram => {
                    let h = HistRow {
                        bounds: series.layout(input.bounds(row)),
                        counts: input.buckets(row),
                        count: input.count(row),
                        sum: input.sum(row),
                        min: input.min(row),
                        max: input.max(row),
                    };
                    if class == Class::DeltaHistogram {
                        win.delta_histogram(out, &h);
                    } else {
                        win.cumulative_histogram(out, id, t, input.start(row), h);
                    }
                }
                Class::Other => {}
            }
        }
        Ok(tally)
    }

    /// Closes the windows that end at or before `watermark` (all when `None`), in order, and
    /// returns their rows; then forgets idle series.
    fn close(&mut self, watermark: Option<i64>) -> Result<Option<RecordBatch>> {
        let mut closing = Vec::new();
        while let Some(&(start, _)) = self.windows.first() {
            if watermark.is_some_and(|wm| start.saturating_add(self.settings.window_ns) > wm) {
                break;
            }
            closing.push(self.windows.remove(0));
        }
        if closing.is_empty() {
            return Ok(None);
        }
        // Convert first (in window order, as the per-series state needs), so the row count
        // is known and the builders are sized once.
        for (_, win) in &mut closing {
            win.convert(&mut self.cumulative, &mut self.scratch);
        }
        let per_gauge = self.settings.functions.len() + self.settings.quantiles.len();
        let mut capacity = Capacity::default();
        for (_, w) in &closing {
            let accs = w.accs.pairs().map(|(idx, a)| match a {
                Acc::Gauge(_) => (idx, per_gauge),
                _ => (idx, 1),
            });
            for (idx, rows) in accs.chain(w.downs.keys().map(|idx| (idx, 1))) {
                if let Some(series) = self.groups.get(idx) {
                    capacity.add(series, rows);
                }
            }
        }
        let mut out = Emitter::with_capacity(&capacity);
        for (start, win) in closing {
            self.finish_window(start, win, &mut out)?;
        }
        if let Some(wm) = watermark {
            let expired = self.groups.expire(wm.saturating_sub(self.settings.idle_ns));
            let streams = self.cumulative.expire(wm);
            if expired + streams > 0 {
                tracing::debug!(series = expired, streams, "Idle series expired.");
            }
        }
        if out.len() == 0 {
            return Ok(None);
        }
        out.finish().map(Some)
    }

    /// Emits the rows of the window starting at `start` (its cumulative points converted).
    fn finish_window(&mut self, start: i64, win: Window, out: &mut Emitter) -> Result<()> {
        let mut downs: Vec<(u32, Option<Down>)> = win.downs.into_pairs().collect();
        // Output order by series key, not hash order, so runs are reproducible.
        downs.sort_unstable_by_key(|(idx, _)| self.groups.get(*idx).map(|s| s.key));
        for (idx, down) in downs {
            if let (Some(series), Some(down)) = (self.groups.get(idx), down) {
                down.emit(series, out)?;
            }
        }
        let mut accs: Vec<(u32, Acc)> = win.accs.into_pairs().collect();
        accs.sort_unstable_by_key(|(idx, _)| self.groups.get(*idx).map(|s| s.key));
        let s = &self.settings;
        for (idx, acc) in accs {
            let Some(series) = self.groups.get_mut(idx) else {
                continue;
            };
            match acc {
                Acc::Gauge(g) => {
                    for (i, &f) in s.functions.iter().enumerate() {
                        out.row(series, i, start, Some(start), Fields::Gauge(apply(f, &g)))?;
                    }
                    let sketch = g.sketch.as_deref();
                    for (j, &q) in s.quantiles.iter().enumerate() {
                        // In range (validated) and non-empty, so always a value.
                        if let Some(v) = sketch.and_then(|sk| sk.quantile(q).ok().flatten()) {
                            let i = s.functions.len() + j;
                            out.row(series, i, start, Some(start), Fields::Gauge(v))?;
                        }
                    }
                }
                Acc::Sum(v) => emit_sum(series, s.temporality, start, v, out)?,
                Acc::Histogram(h) => emit_histogram(series, s.temporality, start, h, out)?,
            }
        }
        Ok(())
    }

    /// Refreshes the state gauges.
    fn report_state(&self) {
        self.metrics
            .state_series
            .set((self.groups.len() + self.cumulative.len()) as f64);
        self.metrics.state_windows.set(self.windows.len() as f64);
    }
}

/// Emits a window's sum of series `s` in the output temporality.
fn emit_sum(
    s: &mut OutSeries,
    temporality: OutputTemporality,
    start: i64,
    v: f64,
    out: &mut Emitter,
) -> Result<()> {
    let (since, value, temporality) = match temporality {
        OutputTemporality::Delta => (start, v, DELTA),
        OutputTemporality::Cumulative => match &mut s.running {
            Running::Sum {
                start: since,
                value,
            } => {
                *value += v;
                (*since, *value, CUMULATIVE)
            }
            _ => {
                s.running = Running::Sum { start, value: v };
                (start, v, CUMULATIVE)
            }
        },
    };
    out.row(s, 0, start, Some(since), Fields::Sum { temporality, value })
}

/// Emits a window's histogram of series `s` in the output temporality.
fn emit_histogram(
    s: &mut OutSeries,
    temporality: OutputTemporality,
    start: i64,
    h: HistAcc,
    out: &mut Emitter,
) -> Result<()> {
    if temporality == OutputTemporality::Delta {
        return out.row(
            s,
            0,
            start,
            Some(start),
            Fields::Histogram {
                temporality: DELTA,
                hist: &h,
            },
        );
    }
    match &mut s.running {
        Running::Histogram { hist, .. } => hist.merge(&h),
        _ => s.running = Running::Histogram { start, hist: h },
    }
    if let Running::Histogram { start: since, hist } = &s.running {
        out.row(
            s,
            0,
            start,
            Some(*since),
            Fields::Histogram {
                temporality: CUMULATIVE,
                hist,
            },
        )?;
    }
    Ok(())
}

impl Processor for Aggregate {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let position = self.next_position;
        self.process_at(batch, position)
    }

    fn process_at(&mut self, batch: RecordBatch, position: u64) -> Result<RecordBatch> {
        self.next_position = position.saturating_add(1);
        self.dropped = None;
        let n = batch.num_rows();
        let (mut pass, mut drop) = (mask(n), mask(n));
        let tally = self.ingest(&batch, position, &mut pass, &mut drop)?;
        let m = &self.metrics;
        m.late.increment(tally.late);
        m.dropped_late.increment(tally.late_dropped);
        m.dropped_no_value.increment(tally.no_value);
        m.dropped_max_series.increment(tally.max_series);
        m.dropped_future.increment(tally.future);
        if tally.max_series > 0 && !self.capped_logged {
            self.capped_logged = true;
            tracing::warn!(
                max_series = self.settings.max_series,
                dropped = tally.max_series,
                "Aggregation state is full; points of new series are dropped."
            );
        }
        let aggregated = self.close(Some(self.watermark()))?;
        self.report_state();
        let drop = drop.finish();
        if drop.count_set_bits() > 0 {
            self.dropped = Some(filter_record_batch(&batch, &BooleanArray::new(drop, None))?);
        }
        let pass = pass.finish();
        let passed = (pass.count_set_bits() > 0)
            .then(|| filter_record_batch(&batch, &BooleanArray::new(pass, None)))
            .transpose()?;
        match (aggregated, passed) {
            (Some(a), Some(p)) => Ok(concat_batches(&metrics_schema(), [&a, &p])?),
            (Some(a), None) => Ok(a),
            (None, Some(p)) => Ok(p),
            (None, None) => Ok(batch.slice(0, 0)),
        }
    }

    fn held_since(&self) -> Option<u64> {
        self.windows.iter().map(|(_, w)| w.first_position).min()
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.dropped = None;
        let out = self.close(None)?;
        self.report_state();
        Ok(out)
    }

    fn tick(&mut self, now: SystemTime) -> Result<Option<RecordBatch>> {
        self.dropped = None;
        if self.windows.is_empty() {
            return Ok(None);
        }
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let Some(wm) = self.idle_watermark(now) else {
            return Ok(None);
        };
        if wm <= self.watermark() {
            return Ok(None);
        }
        self.floor = wm;
        let out = self.close(Some(wm))?;
        if out.is_some() {
            tracing::debug!(
                watermark = wm,
                "Input idle; windows closed on the wall clock."
            );
        }
        self.report_state();
        Ok(out)
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }

    fn checkpoint(&self, out: &mut dyn std::io::Write) -> Option<Result<()>> {
        Some(self.save_state(out))
    }

    fn snapshot(&self) -> Option<StateSnapshot> {
        Some(self.snapshot_state())
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.load_state(state)?;
        self.report_state();
        Ok(())
    }
}
