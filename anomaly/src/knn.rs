//! kNN distance of the newest lag window to older windows, with `linfa-nn`.
//!
//! Windows are overlapping views of one standardized slice (a strided 2-D view, no copy).
//! The most recent `exclusion` windows are left out, so a drift or a new level is compared with
//! what the series did before it started rather than with its own first steps.

use linfa_nn::distance::{Distance, L2Dist};
use linfa_nn::{LinearSearch, NearestNeighbour};
use ndarray::{ArrayView1, ArrayView2, ShapeBuilder};

/// Mean L2 distance (per window element) from the window ending at the last element of `z`
/// to its `k` nearest windows ending at least `exclusion + 1` points earlier, taking every
/// `stride`-th older window (neighbouring windows of a smooth series are near-duplicates), or
/// `None` if there are too few windows.
pub(crate) fn distance(
    z: &[f64],
    window: usize,
    k: usize,
    exclusion: usize,
    stride: usize,
) -> Option<f64> {
    let n = z.len();
    let span = n.checked_sub(exclusion + window)?;
    let stride = stride.max(1);
    // Align the sampled windows to the newest eligible one, so the choice shifts with the data.
    let first = (span.checked_sub(1)?) % stride;
    let count = (span - first).div_ceil(stride);
    if count < k || count == 0 {
        return None;
    }
    let used = &z[first..first + (count - 1) * stride + window];
    let train = ArrayView2::from_shape((count, window).strides((stride, 1)), used).ok()?;
    let query = ArrayView1::from(&z[n - window..]);
    let index = LinearSearch::new().from_batch(&train, L2Dist).ok()?;
    let nearest = index.k_nearest(query, k).ok()?;
    if nearest.is_empty() {
        return None;
    }
    let sum: f64 = nearest
        .iter()
        .map(|(p, _)| L2Dist.distance(query, p.view()))
        .sum();
    Some(sum / nearest.len() as f64 / (window as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a periodic series, then a window that breaks the pattern. Guarantee: a repeat
    /// of the pattern is near, the break is far.
    #[test]
    fn repeat_is_near_break_is_far() {
        let base: Vec<f64> = (0..200)
            .map(|i| ((i % 20) as f64 / 20.0 * std::f64::consts::TAU).sin())
            .collect();
        let near = distance(&base, 8, 2, 10, 1).expect("enough windows");
        let mut broken = base.clone();
        *broken.last_mut().expect("non-empty") += 3.0;
        let far = distance(&broken, 8, 2, 10, 2).expect("enough windows");
        assert!(near < 1e-9, "{near}");
        assert!(far > 0.5, "{far}");
    }

    /// Scenario: fewer points than window + exclusion. Guarantee: no distance.
    #[test]
    fn too_short() {
        assert!(distance(&[1.0; 10], 8, 2, 5, 1).is_none());
    }
}
