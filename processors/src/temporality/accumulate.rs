//! Per-stream delta → cumulative running totals, following the OTel metrics data model.
//!
//! A stream's cumulative series starts at its first delta's start and adds each next delta.
//! A delta whose start is known and differs from the previous point's time (a gap: points
//! missing; an overlap: points counted twice) cannot extend the total, so the stream resets:
//! the total restarts at that delta, with its start. A point not after the last one (duplicate
//! or out of order) is skipped. Histograms also reset on a bucket layout change; their
//! min/max are the running min/max while every delta carried them. Idleness uses the caller's
//! clock as in [`crate::delta`].

use crate::delta::{IdMap, Skip};

/// A running sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SumTotal {
    /// Start of the cumulative series (unknown when its first delta had none).
    pub start_ns: Option<i64>,
    /// The running total.
    pub value: f64,
}

/// A running histogram, without its bucket counts (written to the caller's buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistogramTotal {
    /// Start of the cumulative series.
    pub start_ns: Option<i64>,
    /// Observations since the start.
    pub count: u64,
    /// Their sum, when every delta carried one.
    pub sum: Option<f64>,
    /// Their minimum, when every delta carried one.
    pub min: Option<f64>,
    /// Their maximum, when every delta carried one.
    pub max: Option<f64>,
}

/// One delta histogram point, as read from a row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistogramPoint<'a> {
    pub start_ns: Option<i64>,
    pub time_ns: i64,
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub buckets: &'a [u64],
    /// Layout key of the bounds ([`crate::delta::bounds_layout`]).
    pub layout: u64,
}

struct SumStream {
    time: i64,
    touched: i64,
    total: SumTotal,
}

struct HistStream {
    time: i64,
    touched: i64,
    total: HistogramTotal,
    layout: u64,
    buckets: Vec<u64>,
}

/// Running totals of delta streams.
pub(crate) struct DeltaState {
    stale_after_ns: i64,
    now_ns: i64,
    sums: IdMap<SumStream>,
    hists: IdMap<HistStream>,
}

/// Whether a delta starting at `start` extends a stream whose last point was at `last_time`.
#[inline]
fn contiguous(start: Option<i64>, last_time: i64) -> bool {
    start.is_none_or(|s| s == last_time)
}

/// `a` and `b` combined by `f` when both are known.
#[inline]
fn both(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    a.zip(b).map(|(a, b)| f(a, b))
}

impl DeltaState {
    /// An empty state whose clock starts at `now_ns`.
    pub(crate) fn new(stale_after_ns: i64, now_ns: i64) -> Self {
        DeltaState {
            stale_after_ns,
            now_ns,
            sums: IdMap::default(),
            hists: IdMap::default(),
        }
    }

    /// The running total after a delta sum point.
    pub(crate) fn sum(
        &mut self,
        series_id: u64,
        start_ns: Option<i64>,
        time_ns: i64,
        value: f64,
    ) -> Result<SumTotal, Skip> {
        if value.is_nan() {
            return Err(Skip::NoValue);
        }
        let now = self.now_ns;
        let fresh = SumTotal { start_ns, value };
        let Some(s) = self.sums.get_mut(&series_id) else {
            self.sums.insert(
                series_id,
                SumStream {
                    time: time_ns,
                    touched: now,
                    total: fresh,
                },
            );
            return Ok(fresh);
        };
        if time_ns <= s.time {
            return Err(Skip::OutOfOrder);
        }
        if contiguous(start_ns, s.time) {
            s.total.value += value;
        } else {
            s.total = fresh;
        }
        s.time = time_ns;
        s.touched = now;
        Ok(s.total)
    }

    /// The running total after a delta histogram point; its bucket counts go to `out`.
    pub(crate) fn histogram(
        &mut self,
        series_id: u64,
        p: &HistogramPoint<'_>,
        out: &mut Vec<u64>,
    ) -> Result<HistogramTotal, Skip> {
        out.clear();
        let now = self.now_ns;
        let fresh = HistogramTotal {
            start_ns: p.start_ns,
            count: p.count,
            sum: p.sum,
            min: p.min,
            max: p.max,
        };
        let Some(s) = self.hists.get_mut(&series_id) else {
            self.hists.insert(
                series_id,
                HistStream {
                    time: p.time_ns,
                    touched: now,
                    total: fresh,
                    layout: p.layout,
                    buckets: p.buckets.to_vec(),
                },
            );
            out.extend_from_slice(p.buckets);
            return Ok(fresh);
        };
        if p.time_ns <= s.time {
            return Err(Skip::OutOfOrder);
        }
        let same_layout = s.layout == p.layout && s.buckets.len() == p.buckets.len();
        if same_layout && contiguous(p.start_ns, s.time) {
            let t = &mut s.total;
            t.count = t.count.saturating_add(p.count);
            t.sum = both(t.sum, p.sum, |a, b| a + b);
            t.min = both(t.min, p.min, f64::min);
            t.max = both(t.max, p.max, f64::max);
            for (total, add) in s.buckets.iter_mut().zip(p.buckets) {
                *total = total.saturating_add(*add);
            }
        } else {
            s.total = fresh;
            s.buckets.clear();
            s.buckets.extend_from_slice(p.buckets);
            s.layout = p.layout;
        }
        s.time = p.time_ns;
        s.touched = now;
        out.extend_from_slice(&s.buckets);
        Ok(s.total)
    }

    /// Makes `now_ns` the stamp of streams fed from here on.
    pub(crate) fn tick(&mut self, now_ns: i64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// Drops streams not fed since `now_ns - stale_after`; returns how many.
    pub(crate) fn expire(&mut self, now_ns: i64) -> usize {
        self.tick(now_ns);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(start_ns: Option<i64>, value: f64) -> Result<SumTotal, Skip> {
        Ok(SumTotal { start_ns, value })
    }

    /// Contiguous deltas add up from the first start; a gap or an overlap resets; duplicates
    /// and late points are skipped.
    #[test]
    fn sums() {
        let mut s = DeltaState::new(100, 0);
        assert_eq!(s.sum(1, Some(0), 10, 2.0), total(Some(0), 2.0));
        assert_eq!(s.sum(1, Some(10), 20, 3.0), total(Some(0), 5.0));
        assert_eq!(
            s.sum(1, None, 30, 1.0),
            total(Some(0), 6.0),
            "unknown start"
        );
        assert_eq!(s.sum(1, Some(20), 30, 1.0), Err(Skip::OutOfOrder));
        assert_eq!(s.sum(1, Some(35), 40, 4.0), total(Some(35), 4.0), "gap");
        assert_eq!(s.sum(1, Some(38), 50, 1.0), total(Some(38), 1.0), "overlap");
        assert_eq!(s.sum(1, Some(50), 60, f64::NAN), Err(Skip::NoValue));
        assert_eq!(s.sum(1, Some(50), 60, 1.0), total(Some(38), 2.0));
    }

    /// Histograms add count, sum and buckets; min/max run while known; layout change resets.
    #[test]
    fn histograms() {
        let mut s = DeltaState::new(100, 0);
        let mut out = Vec::new();
        let p = |start, time, count, min: Option<f64>, buckets: &'static [u64], layout| {
            HistogramPoint {
                start_ns: Some(start),
                time_ns: time,
                count,
                sum: Some(count as f64),
                min,
                max: min.map(|m| m + 1.0),
                buckets,
                layout,
            }
        };
        s.histogram(1, &p(0, 10, 2, Some(3.0), &[1, 1], 7), &mut out)
            .expect("first");
        let t = s
            .histogram(1, &p(10, 20, 3, Some(1.0), &[0, 3], 7), &mut out)
            .expect("adds");
        assert_eq!(
            t,
            HistogramTotal {
                start_ns: Some(0),
                count: 5,
                sum: Some(5.0),
                min: Some(1.0),
                max: Some(4.0)
            }
        );
        assert_eq!(out, vec![1, 4]);
        let t = s
            .histogram(1, &p(20, 30, 1, None, &[1, 0], 7), &mut out)
            .expect("adds");
        assert_eq!((t.count, t.min, t.max), (6, None, None));
        let t = s
            .histogram(1, &p(30, 40, 1, None, &[1, 0, 0], 8), &mut out)
            .expect("resets");
        assert_eq!((t.start_ns, t.count), (Some(30), 1));
        assert_eq!(out, vec![1, 0, 0]);
        assert!(s
            .histogram(1, &p(30, 40, 1, None, &[1, 0, 0], 8), &mut out)
            .is_err());
    }

    /// Idle streams expire on the caller's clock.
    #[test]
    fn expiry() {
        let mut s = DeltaState::new(100, 0);
        s.sum(1, None, 10, 1.0).expect("first");
        s.tick(80);
        s.sum(2, None, 10, 1.0).expect("first");
        assert_eq!(s.expire(150), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.sum(1, None, 20, 5.0), total(None, 5.0), "starts over");
    }
}
