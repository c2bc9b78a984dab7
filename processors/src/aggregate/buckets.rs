//! Bucket-wise histogram merging.
//!
//! Histograms with equal bounds add bucket by bucket. When bounds differ, both sides are
//! re-bucketed onto the bounds they share (the intersection): every shared bound is a bucket
//! edge on both sides, so each original bucket lies inside exactly one shared bucket and the
//! merge stays exact in counts, losing only resolution. Histograms without bucket counts
//! (count and sum only) make the merged buckets unknown (empty).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A histogram being merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct HistAcc {
    /// Explicit bounds of `counts`.
    pub bounds: Arc<[f64]>,
    /// Bucket counts, `bounds.len() + 1` of them; empty when some input had none.
    pub counts: Vec<u64>,
    /// Observations.
    pub count: u64,
    /// Their sum; `None` when some input did not say.
    pub sum: Option<f64>,
    /// Smallest observation; `None` when some input did not say.
    pub min: Option<f64>,
    /// Largest observation; `None` when some input did not say.
    pub max: Option<f64>,
}

/// One histogram's fields, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct HistPoint<'a> {
    /// Its bounds, shared with the series that sent it.
    pub bounds: &'a Arc<[f64]>,
    /// Its bucket counts (empty: none).
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

impl HistPoint<'_> {
    /// Whether its bucket counts fit its bounds.
    fn has_buckets(&self) -> bool {
        !self.counts.is_empty() && self.counts.len() == self.bounds.len() + 1
    }
}

impl HistAcc {
    /// A merge that starts with `p`.
    pub(super) fn new(p: HistPoint<'_>) -> Self {
        let (bounds, counts) = if p.has_buckets() {
            (p.bounds.clone(), p.counts.to_vec())
        } else {
            (Arc::from(&[][..]), Vec::new())
        };
        HistAcc {
            bounds,
            counts,
            count: p.count,
            sum: p.sum,
            min: p.min,
            max: p.max,
        }
    }

    /// Adds `p`.
    pub(super) fn add(&mut self, p: HistPoint<'_>) {
        self.count += p.count;
        self.sum = self.sum.zip(p.sum).map(|(a, b)| a + b);
        self.min = self.min.zip(p.min).map(|(a, b)| a.min(b));
        self.max = self.max.zip(p.max).map(|(a, b)| a.max(b));
        if self.counts.is_empty() {
            return;
        }
        if !p.has_buckets() {
            self.counts.clear();
            self.bounds = Arc::from(&[][..]);
            return;
        }
        if Arc::ptr_eq(&self.bounds, p.bounds) || self.bounds[..] == p.bounds[..] {
            for (a, b) in self.counts.iter_mut().zip(p.counts) {
                *a += b;
            }
            return;
        }
        let shared: Arc<[f64]> = intersect(&self.bounds, p.bounds).into();
        if shared[..] != self.bounds[..] {
            self.counts = rebucket(&self.bounds, &self.counts, &shared);
            self.bounds = shared.clone();
        }
        for (a, b) in self
            .counts
            .iter_mut()
            .zip(rebucket(p.bounds, p.counts, &shared))
        {
            *a += b;
        }
    }

    /// Adds another merge (running totals).
    pub(super) fn merge(&mut self, other: &HistAcc) {
        self.add(HistPoint {
            bounds: &other.bounds,
            counts: &other.counts,
            count: other.count,
            sum: other.sum,
            min: other.min,
            max: other.max,
        });
    }
}

/// Bounds present in both (both strictly increasing).
pub(super) fn intersect(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// `counts` over `from` re-bucketed onto `to`, a subset of `from`: bucket `i` covers
/// `(from[i-1], from[i]]` and lands in the `to` bucket whose upper bound is the first one
/// `>= from[i]` (the overflow bucket lands in the overflow bucket).
pub(super) fn rebucket(from: &[f64], counts: &[u64], to: &[f64]) -> Vec<u64> {
    let mut out = vec![0u64; to.len() + 1];
    for (i, &c) in counts.iter().enumerate() {
        let j = match from.get(i) {
            Some(&upper) => to.partition_point(|&b| b < upper),
            None => to.len(),
        };
        out[j] += c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point<'a>(bounds: &'a Arc<[f64]>, counts: &'a [u64]) -> HistPoint<'a> {
        HistPoint {
            bounds,
            counts,
            count: counts.iter().sum(),
            sum: Some(1.0),
            min: Some(0.5),
            max: Some(9.0),
        }
    }

    /// Equal bounds add bucket-wise; count, sum, min and max combine.
    #[test]
    fn equal_bounds_add() {
        let b: Arc<[f64]> = vec![1.0, 5.0].into();
        let mut h = HistAcc::new(point(&b, &[1, 2, 3]));
        h.add(HistPoint {
            min: Some(0.1),
            max: Some(3.0),
            ..point(&b, &[4, 0, 1])
        });
        assert_eq!(h.counts, [5, 2, 4]);
        assert_eq!(
            (h.count, h.sum, h.min, h.max),
            (11, Some(2.0), Some(0.1), Some(9.0))
        );
    }

    /// Different bounds merge onto the shared ones, exactly in counts, whatever the order.
    #[test]
    fn different_bounds_merge_on_shared() {
        let fine: Arc<[f64]> = vec![1.0, 2.0, 5.0, 10.0].into();
        let coarse: Arc<[f64]> = vec![2.0, 10.0, 20.0].into();
        let mut a = HistAcc::new(point(&fine, &[1, 2, 3, 4, 5]));
        a.add(point(&coarse, &[10, 20, 30, 40]));
        // Shared bounds [2, 10]: fine → [1+2, 3+4, 5], coarse → [10, 20, 30+40].
        assert_eq!(&a.bounds[..], &[2.0, 10.0]);
        assert_eq!(a.counts, [13, 27, 75]);
        let mut b = HistAcc::new(point(&coarse, &[10, 20, 30, 40]));
        b.add(point(&fine, &[1, 2, 3, 4, 5]));
        assert_eq!(a, b);
    }

    /// An input without buckets makes the buckets unknown; a missing sum makes the sum unknown.
    #[test]
    fn missing_parts_become_unknown() {
        let b: Arc<[f64]> = vec![1.0].into();
        let none: Arc<[f64]> = Vec::new().into();
        let mut h = HistAcc::new(point(&b, &[1, 1]));
        h.add(HistPoint {
            count: 3,
            sum: None,
            ..point(&none, &[])
        });
        assert!(h.counts.is_empty() && h.bounds.is_empty());
        assert_eq!((h.count, h.sum), (5, None));
    }
}
