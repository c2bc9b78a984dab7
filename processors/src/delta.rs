//! Per-stream cumulative → delta conversion, following the OTel metrics data model.
//!
//! [`CumulativeState`] remembers, per stream (`series_id`), the last cumulative point and turns
//! each next point into the delta since it. Points of one stream must be fed in time order.
//!
//! Rules, for a point at `time` with optional `start` and the stream's last point `last`:
//! - **Out of order / duplicate**: `time <= last.time` → `None` ([`Skip::OutOfOrder`]); the
//!   state is unchanged.
//! - **Reset**: both starts known and different, or (monotonic sums, histograms) the value /
//!   count / any bucket went down, or (histograms) the bucket layout changed → the delta is
//!   the point's whole value (it counted from 0 since its start), `reset = true`, and its start
//!   is the point's start clamped to `>= last.time` (the previous time when unknown), so a
//!   stream's deltas never overlap.
//! - **Otherwise** the delta is `value - last.value` over `(last.time, time]`.
//! - **First point** of a stream (new, or back after expiring), by [`InitialValue`] as the
//!   collector's `cumulativetodelta` `initial_value`: `Keep` emits its whole value, `Drop`
//!   only records it, `Auto` emits it iff its start is set, is `>=` the state's creation time
//!   (the counter began while we were watching, so nothing of it was seen before) and differs
//!   from its time. A kept first point has `reset = true` and start = its start (its time when
//!   unknown). Dropped first points return `None` ([`Skip::Initial`]).
//! - A NaN sum value returns `None` ([`Skip::NoValue`]) and leaves the state alone.
//!
//! `reset = true` means "the delta is the point's whole cumulative value": only then do the
//! point's histogram min/max describe the delta's observations. Otherwise min/max of a
//! cumulative histogram cannot be turned into a delta's, and callers must emit them null.
//!
//! Idleness is measured on the caller's clock: every point stamps its stream with the `now`
//! of the latest [`CumulativeState::expire`] call (the creation time before any), and
//! `expire(now)` drops streams whose stamp is older than `now - stale_after`. Exporter clock
//! skew therefore never expires a live stream. `stale_after` must exceed the longest gap
//! between two exports of a stream: a stream that comes back after expiring starts over (its
//! first point follows [`InitialValue`] again).
//!
//! Per point the work is allocation-free, except when a stream is new or changes bucket
//! layout, and [`CumulativeState::histogram`], whose result owns its bucket counts
//! ([`CumulativeState::histogram_into`] writes them into a caller's buffer instead).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// What to do with the first point seen of a stream (the collector's `initial_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum InitialValue {
    /// Emit it iff its start is set, not before the state was created and not its time.
    #[default]
    Auto,
    /// Emit its whole value as the first delta.
    Keep,
    /// Only remember it.
    Drop,
}

/// Why a point produced no delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Skip {
    /// The first point of a stream, not emitted per [`InitialValue`].
    Initial,
    /// Its time is not after the stream's last point.
    OutOfOrder,
    /// A NaN value.
    NoValue,
}

/// The delta of one sum point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SumDelta {
    /// Start of the delta's interval (it ends at the point's time).
    pub start_ns: i64,
    /// The increase over the interval.
    pub value: f64,
    /// Whether the delta is the point's whole cumulative value (first point or reset).
    pub reset: bool,
}

/// The delta of one histogram point.
#[allow(dead_code)] // Result of the owning form `histogram`; callers use `histogram_into`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramDelta {
    /// Start of the delta's interval (it ends at the point's time).
    pub start_ns: i64,
    /// Observations in the interval.
    pub count: u64,
    /// Their sum; `None` when this point or the previous one has no sum.
    pub sum: Option<f64>,
    /// Observations per bucket in the interval.
    pub bucket_counts: Vec<u64>,
    /// Whether the delta is the point's whole cumulative value (first point or reset); only
    /// then do the point's min/max apply to it.
    pub reset: bool,
}

/// [`HistogramDelta`] without its bucket counts (see [`CumulativeState::histogram_into`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistogramHead {
    /// Start of the delta's interval.
    pub start_ns: i64,
    /// Observations in the interval.
    pub count: u64,
    /// Their sum, when known.
    pub sum: Option<f64>,
    /// Whether the delta is the point's whole cumulative value.
    pub reset: bool,
}

/// Hasher for keys that are already hashes (`series_id`): passes the `u64` through.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for series ids; fold anything else in for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A `HashMap` keyed by series id.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Last point of a sum stream.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct SumStream {
    start: Option<i64>,
    time: i64,
    touched: i64,
    value: f64,
}

/// Last point of a histogram stream.
#[derive(Clone, Serialize, Deserialize)]
struct HistStream {
    start: Option<i64>,
    time: i64,
    touched: i64,
    count: u64,
    sum: Option<f64>,
    layout: u64,
    buckets: Vec<u64>,
}

/// Per-stream cumulative → delta state; see the module docs for the rules.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CumulativeState {
    initial: InitialValue,
    stale_after_ns: i64,
    /// Creation time (wall clock, ns), for [`InitialValue::Auto`].
    started_ns: i64,
    /// `now` of the latest [`CumulativeState::expire`] call; stamps touched streams.
    now_ns: i64,
    sums: IdMap<SumStream>,
    hists: IdMap<HistStream>,
    last_skip: Option<Skip>,
}

/// Wall-clock now in ns since the epoch (0 if the clock is before it).
pub(crate) fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether a first point is emitted under `initial`.
#[inline]
fn keep_first(initial: InitialValue, started_ns: i64, start: Option<i64>, time: i64) -> bool {
    match initial {
        InitialValue::Keep => true,
        InitialValue::Drop => false,
        InitialValue::Auto => start.is_some_and(|s| s >= started_ns && s != time),
    }
}

/// Whether two starts are both known and differ.
#[inline]
fn start_changed(last: Option<i64>, now: Option<i64>) -> bool {
    matches!((last, now), (Some(a), Some(b)) if a != b)
}

/// Start of a reset delta: the point's start, never before the previous point's time.
#[inline]
fn reset_start(start: Option<i64>, last_time: i64) -> i64 {
    start.map_or(last_time, |s| s.max(last_time))
}

/// Layout key of a bucket-count list when bounds are not given: its length.
#[allow(dead_code)] // Used by `histogram`.
#[inline]
fn len_layout(buckets: &[u64]) -> u64 {
    buckets.len() as u64
}

/// Layout key of explicit bounds: their count and bit patterns.
pub(crate) fn bounds_layout(bounds: &[f64]) -> u64 {
    bounds.iter().fold(
        (bounds.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        |h, b| {
            (h ^ b.to_bits())
                .wrapping_mul(0x100_0000_01b3)
                .rotate_left(17)
        },
    )
}

impl CumulativeState {
    /// An empty state created now (wall clock).
    pub(crate) fn new(initial: InitialValue, stale_after_ns: i64) -> Self {
        Self::new_at(initial, stale_after_ns, wall_clock_ns())
    }

    /// An empty state created at `started_ns` (tests, replays).
    pub(crate) fn new_at(initial: InitialValue, stale_after_ns: i64, started_ns: i64) -> Self {
        CumulativeState {
            initial,
            stale_after_ns,
            started_ns,
            now_ns: started_ns,
            sums: IdMap::default(),
            hists: IdMap::default(),
            last_skip: None,
        }
    }

    /// Why the latest call returned `None` (`None` when it returned a delta).
    pub(crate) fn last_skip(&self) -> Option<Skip> {
        self.last_skip
    }

    /// The delta of a monotonic cumulative sum point (a drop in value is a reset).
    pub(crate) fn sum(
        &mut self,
        series_id: u64,
        start_ns: Option<i64>,
        time_ns: i64,
        value: f64,
    ) -> Option<SumDelta> {
        self.sum_with(series_id, start_ns, time_ns, value, true)
    }

    /// The delta of a non-monotonic cumulative sum point: a drop is a negative delta, and
    /// only a start change is a reset.
    pub(crate) fn non_monotonic_sum(
        &mut self,
        series_id: u64,
        start_ns: Option<i64>,
        time_ns: i64,
        value: f64,
    ) -> Option<SumDelta> {
        self.sum_with(series_id, start_ns, time_ns, value, false)
    }

    fn sum_with(
        &mut self,
        series_id: u64,
        start: Option<i64>,
        time: i64,
        value: f64,
        monotonic: bool,
    ) -> Option<SumDelta> {
        let r = self.sum_inner(series_id, start, time, value, monotonic);
        self.last_skip = r.err();
        r.ok()
    }

    fn sum_inner(
        &mut self,
        series_id: u64,
        start: Option<i64>,
        time: i64,
        value: f64,
        monotonic: bool,
    ) -> Result<SumDelta, Skip> {
        if value.is_nan() {
            return Err(Skip::NoValue);
        }
        let now = self.now_ns;
        let Some(last) = self.sums.get_mut(&series_id) else {
            self.sums.insert(
                series_id,
                SumStream {
                    start,
                    time,
                    touched: now,
                    value,
                },
            );
            return if keep_first(self.initial, self.started_ns, start, time) {
                Ok(SumDelta {
                    start_ns: start.unwrap_or(time),
                    value,
                    reset: true,
                })
            } else {
                Err(Skip::Initial)
            };
        };
        if time <= last.time {
            return Err(Skip::OutOfOrder);
        }
        let reset = start_changed(last.start, start) || (monotonic && value < last.value);
        let delta = if reset {
            SumDelta {
                start_ns: reset_start(start, last.time),
                value,
                reset: true,
            }
        } else {
            SumDelta {
                start_ns: last.time,
                value: value - last.value,
                reset: false,
            }
        };
        *last = SumStream {
            start: start.or(last.start),
            time,
            touched: now,
            value,
        };
        Ok(delta)
    }

    /// The delta of a cumulative histogram point, with the bucket layout known only by the
    /// number of buckets (see [`CumulativeState::histogram_into`] to pass bounds).
    #[allow(dead_code)] // The owning convenience form; processors use `histogram_into`.
    pub(crate) fn histogram(
        &mut self,
        series_id: u64,
        start_ns: Option<i64>,
        time_ns: i64,
        count: u64,
        sum: Option<f64>,
        bucket_counts: &[u64],
    ) -> Option<HistogramDelta> {
        let mut out = Vec::with_capacity(bucket_counts.len());
        let layout = len_layout(bucket_counts);
        self.histogram_into(
            series_id,
            start_ns,
            time_ns,
            count,
            sum,
            bucket_counts,
            layout,
            &mut out,
        )
        .map(|h| HistogramDelta {
            start_ns: h.start_ns,
            count: h.count,
            sum: h.sum,
            bucket_counts: out,
            reset: h.reset,
        })
    }

    /// As [`CumulativeState::histogram`], writing the delta bucket counts into `out` (cleared
    /// first) and taking the layout key (e.g. [`bounds_layout`]): a change is a reset. A
    /// stream must always be fed with the same kind of layout key.
    #[allow(clippy::too_many_arguments)] // One point's fields; a struct would only rename them.
    pub(crate) fn histogram_into(
        &mut self,
        series_id: u64,
        start: Option<i64>,
        time: i64,
        count: u64,
        sum: Option<f64>,
        buckets: &[u64],
        layout: u64,
        out: &mut Vec<u64>,
    ) -> Option<HistogramHead> {
        out.clear();
        let r = self.hist_inner(series_id, start, time, count, sum, buckets, layout, out);
        self.last_skip = r.err();
        r.ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn hist_inner(
        &mut self,
        series_id: u64,
        start: Option<i64>,
        time: i64,
        count: u64,
        sum: Option<f64>,
        buckets: &[u64],
        layout: u64,
        out: &mut Vec<u64>,
    ) -> Result<HistogramHead, Skip> {
        let now = self.now_ns;
        let Some(last) = self.hists.get_mut(&series_id) else {
            self.hists.insert(
                series_id,
                HistStream {
                    start,
                    time,
                    touched: now,
                    count,
                    sum,
                    layout,
                    buckets: buckets.to_vec(),
                },
            );
            return if keep_first(self.initial, self.started_ns, start, time) {
                out.extend_from_slice(buckets);
                Ok(HistogramHead {
                    start_ns: start.unwrap_or(time),
                    count,
                    sum,
                    reset: true,
                })
            } else {
                Err(Skip::Initial)
            };
        };
        if time <= last.time {
            return Err(Skip::OutOfOrder);
        }
        let same_layout = last.layout == layout && last.buckets.len() == buckets.len();
        let reset = !same_layout
            || start_changed(last.start, start)
            || count < last.count
            || buckets
                .iter()
                .zip(&last.buckets)
                .any(|(now, was)| now < was);
        let head = if reset {
            out.extend_from_slice(buckets);
            HistogramHead {
                start_ns: reset_start(start, last.time),
                count,
                sum,
                reset: true,
            }
        } else {
            out.extend(
                buckets
                    .iter()
                    .zip(&last.buckets)
                    .map(|(now, was)| now - was),
            );
            HistogramHead {
                start_ns: last.time,
                count: count - last.count,
                sum: sum.zip(last.sum).map(|(now, was)| now - was),
                reset: false,
            }
        };
        if same_layout {
            last.buckets.copy_from_slice(buckets);
        } else {
            last.buckets.clear();
            last.buckets.extend_from_slice(buckets);
        }
        last.start = start.or(last.start);
        last.time = time;
        last.touched = now;
        last.count = count;
        last.sum = sum;
        last.layout = layout;
        Ok(head)
    }

    /// Makes `now_ns` the stamp of streams fed from here on, without scanning for stale ones
    /// (call it per batch, and [`CumulativeState::expire`] now and then).
    pub(crate) fn tick(&mut self, now_ns: i64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// Drops streams not fed since `now_ns - stale_after` (on the caller's clock), and makes
    /// `now_ns` the stamp of streams fed from here on. Returns how many were dropped.
    pub(crate) fn expire(&mut self, now_ns: i64) -> usize {
        self.now_ns = self.now_ns.max(now_ns);
        let cutoff = self.now_ns.saturating_sub(self.stale_after_ns);
        let before = self.len();
        self.sums.retain(|_, s| s.touched >= cutoff);
        self.hists.retain(|_, s| s.touched >= cutoff);
        before - self.len()
    }

    /// Streams held.
    pub(crate) fn len(&self) -> usize {
        self.sums.len() + self.hists.len()
    }

    /// Whether no stream is held.
    #[allow(dead_code)] // Pairs with `len`; used by tests and callers that check emptiness.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000;

    fn state(initial: InitialValue) -> CumulativeState {
        CumulativeState::new_at(initial, 100, T0)
    }

    fn sd(start_ns: i64, value: f64, reset: bool) -> Option<SumDelta> {
        Some(SumDelta {
            start_ns,
            value,
            reset,
        })
    }

    /// A steady counter yields the increase since the previous point, over (prev time, time].
    #[test]
    fn steady_deltas() {
        let mut s = state(InitialValue::Drop);
        assert_eq!(s.sum(1, Some(10), 2000, 5.0), None);
        assert_eq!(s.last_skip(), Some(Skip::Initial));
        assert_eq!(s.sum(1, Some(10), 3000, 8.0), sd(2000, 3.0, false));
        assert_eq!(s.sum(1, Some(10), 4000, 8.0), sd(3000, 0.0, false));
        assert_eq!(s.last_skip(), None);
    }

    /// A value drop is a reset: the delta is the whole new value, starting at the previous
    /// time when the start is unknown, at the new start when known.
    #[test]
    fn value_drop_resets() {
        let mut s = state(InitialValue::Drop);
        s.sum(1, None, 2000, 50.0);
        assert_eq!(s.sum(1, None, 3000, 4.0), sd(2000, 4.0, true));
        assert_eq!(s.sum(1, None, 4000, 6.0), sd(3000, 2.0, false));
        s.sum(2, Some(10), 2000, 50.0);
        assert_eq!(s.sum(2, Some(2500), 3000, 4.0), sd(2500, 4.0, true));
    }

    /// A start change is a reset even when the value grew; a start before the previous time
    /// is clamped so deltas never overlap.
    #[test]
    fn start_change_resets() {
        let mut s = state(InitialValue::Drop);
        s.sum(1, Some(10), 2000, 5.0);
        assert_eq!(s.sum(1, Some(2100), 3000, 9.0), sd(2100, 9.0, true));
        assert_eq!(s.sum(1, Some(2100), 4000, 10.0), sd(3000, 1.0, false));
        assert_eq!(s.sum(1, Some(20), 5000, 12.0), sd(4000, 12.0, true));
    }

    /// Out-of-order and duplicate times yield `None` and leave the state alone.
    #[test]
    fn out_of_order_and_duplicates() {
        let mut s = state(InitialValue::Drop);
        s.sum(1, None, 2000, 5.0);
        assert_eq!(s.sum(1, None, 3000, 7.0), sd(2000, 2.0, false));
        assert_eq!(s.sum(1, None, 3000, 7.0), None);
        assert_eq!(s.last_skip(), Some(Skip::OutOfOrder));
        assert_eq!(s.sum(1, None, 2500, 6.0), None);
        assert_eq!(s.sum(1, None, 4000, 10.0), sd(3000, 3.0, false));
    }

    /// Non-monotonic sums: a drop is a negative delta; only a start change resets.
    #[test]
    fn non_monotonic() {
        let mut s = state(InitialValue::Drop);
        s.non_monotonic_sum(1, Some(10), 2000, 5.0);
        assert_eq!(
            s.non_monotonic_sum(1, Some(10), 3000, 2.0),
            sd(2000, -3.0, false)
        );
        assert_eq!(
            s.non_monotonic_sum(1, Some(3500), 4000, 1.0),
            sd(3500, 1.0, true)
        );
    }

    /// Initial-value modes: Keep emits the first point whole, Drop never, Auto iff the start
    /// is set, not before creation, and differs from the time.
    #[test]
    fn initial_value_modes() {
        let mut keep = state(InitialValue::Keep);
        assert_eq!(keep.sum(1, None, 2000, 5.0), sd(2000, 5.0, true));
        assert_eq!(keep.sum(2, Some(10), 2000, 5.0), sd(10, 5.0, true));
        let mut drop = state(InitialValue::Drop);
        assert_eq!(drop.sum(1, Some(T0 + 1), 2000, 5.0), None);
        let mut auto = state(InitialValue::Auto);
        assert_eq!(auto.sum(1, None, 2000, 5.0), None, "no start");
        assert_eq!(auto.sum(2, Some(T0 - 1), 2000, 5.0), None, "started before");
        assert_eq!(auto.sum(3, Some(2000), 2000, 5.0), None, "start == time");
        assert_eq!(auto.sum(4, Some(T0), 2000, 5.0), sd(T0, 5.0, true));
        assert_eq!(auto.sum(4, Some(T0), 3000, 6.0), sd(2000, 1.0, false));
        assert_eq!(auto.len(), 4, "dropped first points are remembered");
    }

    /// NaN values are skipped without touching the state.
    #[test]
    fn nan_is_skipped() {
        let mut s = state(InitialValue::Drop);
        s.sum(1, None, 2000, 5.0);
        assert_eq!(s.sum(1, None, 3000, f64::NAN), None);
        assert_eq!(s.last_skip(), Some(Skip::NoValue));
        assert_eq!(s.sum(1, None, 4000, 6.0), sd(2000, 1.0, false));
    }

    /// Streams idle for longer than `stale_after` on the caller's clock expire and start over.
    #[test]
    fn expiry() {
        let mut s = state(InitialValue::Drop);
        s.sum(1, None, 2000, 5.0);
        s.histogram(2, None, 2000, 1, Some(1.0), &[1, 0]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.expire(T0 + 50), 0);
        s.sum(1, None, 3000, 6.0); // stamped T0 + 50
        assert_eq!(s.expire(T0 + 120), 1, "the histogram idled > 100");
        assert_eq!(s.len(), 1);
        assert_eq!(s.expire(T0 + 151), 1);
        assert!(s.is_empty());
        assert_eq!(s.sum(1, None, 4000, 7.0), None, "starts over");
        assert_eq!(s.last_skip(), Some(Skip::Initial));
    }

    /// Histogram deltas subtract count, sum and each bucket; drops, start and layout changes
    /// reset; out-of-order points are skipped.
    #[test]
    fn histogram_rules() {
        let mut s = state(InitialValue::Drop);
        assert!(s
            .histogram(1, Some(10), 2000, 3, Some(6.0), &[1, 2, 0])
            .is_none());
        let d = s
            .histogram(1, Some(10), 3000, 5, Some(10.0), &[2, 2, 1])
            .expect("delta");
        assert_eq!(
            d,
            HistogramDelta {
                start_ns: 2000,
                count: 2,
                sum: Some(4.0),
                bucket_counts: vec![1, 0, 1],
                reset: false
            }
        );
        assert!(s
            .histogram(1, Some(10), 3000, 6, None, &[2, 3, 1])
            .is_none());
        // A bucket went down although the count grew: reset.
        let d = s
            .histogram(1, Some(10), 4000, 6, None, &[3, 1, 2])
            .expect("delta");
        assert!(d.reset);
        assert_eq!((d.start_ns, d.count, d.sum), (3000, 6, None));
        assert_eq!(d.bucket_counts, vec![3, 1, 2]);
        // Unknown sum on either side gives an unknown delta sum.
        let d = s
            .histogram(1, Some(10), 5000, 7, Some(1.0), &[3, 1, 3])
            .expect("delta");
        assert_eq!((d.count, d.sum, d.reset), (1, None, false));
        // Layout change.
        let d = s
            .histogram(1, Some(10), 6000, 8, Some(2.0), &[4, 4])
            .expect("delta");
        assert!(d.reset);
        assert_eq!(d.bucket_counts, vec![4, 4]);
        // Start change.
        let d = s
            .histogram(1, Some(6500), 7000, 9, Some(3.0), &[5, 4])
            .expect("delta");
        assert!(d.reset);
        assert_eq!(d.start_ns, 6500);
        // Same-length bounds with other values: a reset through the layout key.
        let mut out = Vec::new();
        let a = bounds_layout(&[1.0, 2.0]);
        let b = bounds_layout(&[1.0, 3.0]);
        assert_ne!(a, b);
        s.histogram_into(9, None, 1, 1, None, &[1, 0, 0], a, &mut out);
        let h = s
            .histogram_into(9, None, 2, 2, None, &[1, 1, 0], a, &mut out)
            .expect("delta");
        assert!(!h.reset);
        assert_eq!(out, vec![0, 1, 0]);
        let h = s
            .histogram_into(9, None, 3, 3, None, &[1, 1, 1], b, &mut out)
            .expect("delta");
        assert!(h.reset);
        assert_eq!(out, vec![1, 1, 1]);
    }

    /// Histogram count drop resets and the first point follows the initial-value mode.
    #[test]
    fn histogram_count_drop_and_keep() {
        let mut s = state(InitialValue::Keep);
        let d = s
            .histogram(1, None, 2000, 4, Some(8.0), &[4])
            .expect("kept");
        assert!(d.reset);
        assert_eq!(
            (d.start_ns, d.count, d.bucket_counts.clone()),
            (2000, 4, vec![4])
        );
        let d = s
            .histogram(1, None, 3000, 1, Some(1.0), &[1])
            .expect("delta");
        assert!(d.reset);
        assert_eq!((d.start_ns, d.count, d.sum), (2000, 1, Some(1.0)));
    }
}
