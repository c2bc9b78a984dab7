//! Downsampling accumulators: one point per series per interval, on the aggregator's windows.
//!
//! The aggregator in [`Mode::Downsample`] groups per input series (its name and `series_id`
//! kept) and accumulates a [`Down`] per series and interval:
//! - gauges keep the chosen point (first, last, min, max) or the mean of the values;
//! - cumulative sums and histograms keep their first point (`first`) or their last (any
//!   other function: min, max or mean of running totals would not be a total);
//! - delta sums add up and delta histograms merge bucket-wise, so no count is lost.
//!
//! A kept point keeps its own `time` and `start_time`; a merged one (mean, deltas) is stamped
//! with the latest `time` and the earliest `start_time` of the points merged, so every output
//! point lies inside its interval and a delta covers what it sums.

use phoenix_model::pipeline::DownsampleFunction;
use phoenix_model::schema::temporality::{CUMULATIVE, DELTA};
use serde::{Deserialize, Serialize};

use super::buckets::{HistAcc, HistPoint};
use super::emit::{Emitter, Fields};
use super::group::OutSeries;
use super::input::Shape;
use crate::Result;

/// What the aggregator computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Rollups: one row per gauge function, sums and histograms merged per window.
    Rollup,
    /// One point per input series per window.
    Downsample(DownsampleFunction),
}

/// The time span of merged points.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Span {
    /// Earliest `start_time` (`None` when no point had one).
    pub start: Option<i64>,
    /// Latest `time`.
    pub time: i64,
}

impl Span {
    fn new(time: i64, start: Option<i64>) -> Self {
        Span { start, time }
    }

    fn add(&mut self, time: i64, start: Option<i64>) {
        self.time = self.time.max(time);
        self.start = match (self.start, start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// One input point, as a candidate to be kept.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Cand {
    /// `time`.
    pub time: i64,
    /// `start_time`.
    pub start: Option<i64>,
    /// The value compared by min and max (a histogram's count).
    pub value: f64,
    /// Tie-break bits (the value's bits, a histogram's count), so equal times resolve the
    /// same whatever the arrival order.
    pub tie: u64,
}

impl Cand {
    /// Whether `self` should replace `cur` under `pick` (first, last, min or max).
    fn beats(&self, cur: &Cand, pick: DownsampleFunction) -> bool {
        let order = |c: &Cand| (c.time, c.tie, c.start);
        match pick {
            DownsampleFunction::First => order(self) < order(cur),
            DownsampleFunction::Min => self
                .value
                .total_cmp(&cur.value)
                .then_with(|| order(self).cmp(&order(cur)))
                .is_lt(),
            DownsampleFunction::Max => self
                .value
                .total_cmp(&cur.value)
                .then_with(|| order(cur).cmp(&order(self)))
                .is_gt(),
            DownsampleFunction::Last | DownsampleFunction::Mean => order(self) > order(cur),
        }
    }
}

/// What one series accumulates in one interval.
#[derive(Clone, Serialize, Deserialize)]
pub(super) enum Down {
    /// A kept point (gauges under first/last/min/max; cumulative sums and histograms).
    Point {
        /// The point.
        cand: Cand,
        /// Its histogram fields (histograms only).
        hist: Option<HistAcc>,
    },
    /// Gauge mean.
    Mean {
        /// Sum of values, in arrival order.
        sum: f64,
        /// Values.
        count: u64,
        /// Span of the points.
        span: Span,
    },
    /// Delta sum total.
    Sum {
        /// Sum of deltas.
        value: f64,
        /// Span of the points.
        span: Span,
    },
    /// Merged delta histograms.
    Histogram {
        /// The merge.
        hist: HistAcc,
        /// Span of the points.
        span: Span,
    },
}

/// The point cumulative series keep under `f`.
fn cumulative_pick(f: DownsampleFunction) -> DownsampleFunction {
    match f {
        DownsampleFunction::First => DownsampleFunction::First,
        _ => DownsampleFunction::Last,
    }
}

impl Down {
    /// Offers a gauge or cumulative sum value.
    pub(super) fn value(
        slot: &mut Option<Down>,
        shape: Shape,
        f: DownsampleFunction,
        cand: Cand,
        value: f64,
    ) {
        match (shape, f) {
            (Shape::Gauge, DownsampleFunction::Mean) => match slot {
                Some(Down::Mean { sum, count, span }) => {
                    *sum += value;
                    *count += 1;
                    span.add(cand.time, cand.start);
                }
                Some(_) => {}
                None => {
                    *slot = Some(Down::Mean {
                        sum: value,
                        count: 1,
                        span: Span::new(cand.time, cand.start),
                    });
                }
            },
            (Shape::Sum, _) => match slot {
                Some(Down::Sum { value: total, span }) => {
                    *total += value;
                    span.add(cand.time, cand.start);
                }
                Some(_) => {}
                None => {
                    *slot = Some(Down::Sum {
                        value,
                        span: Span::new(cand.time, cand.start),
                    });
                }
            },
            _ => {
                let pick = if shape == Shape::Gauge {
                    f
                } else {
                    cumulative_pick(f)
                };
                match slot {
                    Some(Down::Point { cand: cur, .. }) => {
                        if cand.beats(cur, pick) {
                            *cur = cand;
                        }
                    }
                    Some(_) => {}
                    None => *slot = Some(Down::Point { cand, hist: None }),
                }
            }
        }
    }

    /// Offers a histogram (delta: merged; cumulative: first or last kept).
    pub(super) fn histogram(
        slot: &mut Option<Down>,
        shape: Shape,
        f: DownsampleFunction,
        cand: Cand,
        h: HistPoint<'_>,
    ) {
        if shape == Shape::Histogram {
            match slot {
                Some(Down::Histogram { hist, span }) => {
                    hist.add(h);
                    span.add(cand.time, cand.start);
                }
                Some(_) => {}
                None => {
                    *slot = Some(Down::Histogram {
                        hist: HistAcc::new(h),
                        span: Span::new(cand.time, cand.start),
                    });
                }
            }
            return;
        }
        match slot {
            Some(Down::Point {
                cand: cur,
                hist: Some(hist),
            }) => {
                if cand.beats(cur, cumulative_pick(f)) {
                    *cur = cand;
                    *hist = HistAcc::new(h);
                }
            }
            Some(_) => {}
            None => {
                *slot = Some(Down::Point {
                    cand,
                    hist: Some(HistAcc::new(h)),
                });
            }
        }
    }

    /// Emits the interval's point of series `s`.
    pub(super) fn emit(self, s: &OutSeries, out: &mut Emitter) -> Result<()> {
        match self {
            Down::Point { cand, hist } => {
                let fields = match (s.key.shape, &hist) {
                    (Shape::CumulativeHistogram, Some(hist)) => Fields::Histogram {
                        temporality: CUMULATIVE,
                        hist,
                    },
                    (Shape::CumulativeSum, _) => Fields::Sum {
                        temporality: CUMULATIVE,
                        value: f64::from_bits(cand.tie),
                    },
                    _ => Fields::Gauge(f64::from_bits(cand.tie)),
                };
                out.row(s, 0, cand.time, cand.start, fields)
            }
            Down::Mean { sum, count, span } => out.row(
                s,
                0,
                span.time,
                span.start,
                Fields::Gauge(sum / count as f64),
            ),
            Down::Sum { value, span } => out.row(
                s,
                0,
                span.time,
                span.start,
                Fields::Sum {
                    temporality: DELTA,
                    value,
                },
            ),
            Down::Histogram { hist, span } => out.row(
                s,
                0,
                span.time,
                span.start,
                Fields::Histogram {
                    temporality: DELTA,
                    hist: &hist,
                },
            ),
        }
    }
}
