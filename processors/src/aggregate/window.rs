//! One open window: per output series accumulators, and cumulative points buffered until the
//! window closes (then converted to deltas in time order, so arrival order does not matter).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use super::buckets::{HistAcc, HistPoint};
use super::downsample::Down;
use super::slots::Slots;
use crate::delta::{bounds_layout, CumulativeState};

/// Gauge values of one output series in one window.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct GaugeAcc {
    /// Values seen.
    pub count: u64,
    /// Their sum, in arrival order.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// The latest value by `(time, input series_id, value bits)`, so ties resolve the same
    /// whatever the arrival order.
    pub last: (i64, u64, u64),
    /// Quantile sketch, when quantiles are configured.
    pub sketch: Option<Box<DDSketch>>,
}

impl GaugeAcc {
    fn new(sketch: Option<SketchConfig>) -> Self {
        GaugeAcc {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: (i64::MIN, 0, 0),
            sketch: sketch.map(|c| Box::new(DDSketch::new(c))),
        }
    }

    #[inline]
    fn add(&mut self, time: i64, series: u64, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let last = (time, series, v.to_bits());
        if last > self.last {
            self.last = last;
        }
        if let Some(s) = &mut self.sketch {
            s.add(v);
        }
    }

    /// The latest value.
    pub fn last(&self) -> f64 {
        f64::from_bits(self.last.2)
    }
}

/// What one output series accumulates in one window.
#[derive(Clone, Serialize, Deserialize)]
pub(super) enum Acc {
    /// Gauge values.
    Gauge(GaugeAcc),
    /// Sum of deltas.
    Sum(f64),
    /// Merged delta histograms.
    Histogram(HistAcc),
}

/// A cumulative sum point waiting for its window to close.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct CumSum {
    series: u64,
    out: u32,
    time: i64,
    start: Option<i64>,
    value: f64,
    monotonic: bool,
}

/// A cumulative histogram point waiting for its window to close.
#[derive(Clone, Serialize, Deserialize)]
struct CumHist {
    series: u64,
    out: u32,
    time: i64,
    start: Option<i64>,
    count: u64,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// Range of its bucket counts in [`Window::arena`].
    buckets: (u32, u32),
    bounds: Arc<[f64]>,
}

/// The fields of a histogram row.
pub(super) struct HistRow<'a> {
    /// Bounds, shared with the output series.
    pub bounds: Arc<[f64]>,
    /// Bucket counts.
    pub counts: &'a [u64],
    /// Observations.
    pub count: u64,
    /// Their sum.
    pub sum: Option<f64>,
    /// Smallest observation.
    pub min: Option<f64>,
    /// Largest observation.
    pub max: Option<f64>,
}

/// One open window.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Window {
    /// Lowest input position of the data it holds.
    pub first_position: u64,
    /// Accumulators by output series slot.
    pub accs: Slots<Acc>,
    /// Downsampling accumulators by output series slot.
    pub downs: Slots<Option<Down>>,
    cum_sums: Vec<CumSum>,
    cum_hists: Vec<CumHist>,
    /// Bucket counts of `cum_hists`, back to back.
    arena: Vec<u64>,
}

impl Window {
    /// An empty window first fed at `position`.
    pub(super) fn new(position: u64) -> Self {
        Window {
            first_position: position,
            accs: Slots::default(),
            downs: Slots::default(),
            cum_sums: Vec::new(),
            cum_hists: Vec::new(),
            arena: Vec::new(),
        }
    }

    /// Adds a gauge value of input series `series` to output series `out`.
    #[inline]
    pub(super) fn gauge(
        &mut self,
        out: u32,
        sketch: Option<SketchConfig>,
        time: i64,
        series: u64,
        v: f64,
    ) {
        if let Acc::Gauge(g) = self
            .accs
            .get_or_insert_with(out, || Acc::Gauge(GaugeAcc::new(sketch)))
        {
            g.add(time, series, v);
        }
    }

    /// Adds a delta sum value to output series `out`.
    #[inline]
    pub(super) fn delta_sum(&mut self, out: u32, v: f64) {
        add_sum(&mut self.accs, out, v);
    }

    /// Buffers a cumulative sum point.
    #[inline]
    #[allow(clippy::too_many_arguments)] // One point's fields.
    pub(super) fn cumulative_sum(
        &mut self,
        out: u32,
        series: u64,
        time: i64,
        start: Option<i64>,
        value: f64,
        monotonic: bool,
    ) {
        self.cum_sums.push(CumSum {
            series,
            out,
            time,
            start,
            value,
            monotonic,
        });
    }

    /// Adds a delta histogram to output series `out`.
    #[inline]
    pub(super) fn delta_histogram(&mut self, out: u32, h: &HistRow<'_>) {
        add_hist(
            &mut self.accs,
            out,
            HistPoint {
                bounds: &h.bounds,
                counts: h.counts,
                count: h.count,
                sum: h.sum,
                min: h.min,
                max: h.max,
            },
        );
    }

    /// Buffers a cumulative histogram point of input series `series`.
    #[inline]
    pub(super) fn cumulative_histogram(
        &mut self,
        out: u32,
        series: u64,
        time: i64,
        start: Option<i64>,
        h: HistRow<'_>,
    ) {
        let from = self.arena.len();
        self.arena.extend_from_slice(h.counts);
        // Windows hold far fewer than 2^32 bucket counts; saturate rather than wrap.
        let range = (
            u32::try_from(from).unwrap_or(u32::MAX),
            u32::try_from(self.arena.len()).unwrap_or(u32::MAX),
        );
        self.cum_hists.push(CumHist {
            series,
            out,
            time,
            start,
            count: h.count,
            sum: h.sum,
            min: h.min,
            max: h.max,
            buckets: range,
            bounds: h.bounds,
        });
    }

    /// Converts the buffered cumulative points to deltas, each series' points in time order,
    /// and adds them to the accumulators. Points that give no delta (first points per
    /// `initial_value`, repeated times) add nothing.
    pub(super) fn convert(&mut self, state: &mut CumulativeState, scratch: &mut Vec<u64>) {
        let mut sums = std::mem::take(&mut self.cum_sums);
        sums.sort_unstable_by(|a, b| {
            (a.series, a.time, a.value.to_bits()).cmp(&(b.series, b.time, b.value.to_bits()))
        });
        for p in &sums {
            let d = if p.monotonic {
                state.sum(p.series, p.start, p.time, p.value)
            } else {
                state.non_monotonic_sum(p.series, p.start, p.time, p.value)
            };
            if let Some(d) = d {
                add_sum(&mut self.accs, p.out, d.value);
            }
        }
        let mut hists = std::mem::take(&mut self.cum_hists);
        hists.sort_unstable_by_key(|p| (p.series, p.time, p.count));
        for p in &hists {
            let counts = self
                .arena
                .get(p.buckets.0 as usize..p.buckets.1 as usize)
                .unwrap_or(&[]);
            let head = state.histogram_into(
                p.series,
                p.start,
                p.time,
                p.count,
                p.sum,
                counts,
                bounds_layout(&p.bounds),
                scratch,
            );
            let Some(head) = head else {
                continue;
            };
            // Min and max describe the delta only when it is the point's whole value.
            let (min, max) = if head.reset {
                (p.min, p.max)
            } else {
                (None, None)
            };
            add_hist(
                &mut self.accs,
                p.out,
                HistPoint {
                    bounds: &p.bounds,
                    counts: scratch,
                    count: head.count,
                    sum: head.sum,
                    min,
                    max,
                },
            );
        }
    }
}

#[inline]
fn add_sum(accs: &mut Slots<Acc>, out: u32, v: f64) {
    if let Acc::Sum(s) = accs.get_or_insert_with(out, || Acc::Sum(0.0)) {
        *s += v;
    }
}

#[inline]
fn add_hist(accs: &mut Slots<Acc>, out: u32, p: HistPoint<'_>) {
    match accs.get_mut(out) {
        Some(Acc::Histogram(h)) => h.add(p),
        Some(_) => {}
        None => {
            accs.get_or_insert_with(out, || Acc::Histogram(HistAcc::new(p)));
        }
    }
}
