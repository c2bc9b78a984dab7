//! The estimate a series sample supports, with the error it reports.
//!
//! Series sampling keeps each series independently with probability `p` (its `sample_rate`),
//! so it is Poisson sampling of series and the Horvitz–Thompson estimator applies. With `Y_s`
//! the total of kept series `s` over the query's range (points of a series are kept or dropped
//! together, so the unit is the series, not the point):
//!
//! - estimate `Ŷ = Σ_kept Y_s / p_s` (unbiased);
//! - variance estimate `V̂ = Σ_kept (1 − p_s) / p_s² · Y_s²` (unbiased for `Var(Ŷ)`);
//! - standard error `√V̂`; `Ŷ ± 1.96 √V̂` is an approximate 95% interval.
//!
//! The same in SQL over any table written by a sampler (see the sampler's `README.md`).

/// A re-weighted total and its estimated standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The Horvitz–Thompson estimate of the unsampled total.
    pub value: f64,
    /// Its estimated standard error.
    pub std_error: f64,
}

impl Estimate {
    /// The interval `value ± z · std_error` (`z = 1.96` for about 95%).
    pub fn interval(&self, z: f64) -> (f64, f64) {
        (
            self.value - z * self.std_error,
            self.value + z * self.std_error,
        )
    }
}

/// The estimate from kept series totals `(Y_s, p_s)`: each series' total over the query range
/// and its `sample_rate` (in (0, 1]).
pub fn reweighted_sum_rates(series: impl IntoIterator<Item = (f64, f64)>) -> Estimate {
    let (value, variance) = series.into_iter().fold((0.0, 0.0), |(v, var), (y, p)| {
        (v + y / p, var + (1.0 - p) / (p * p) * y * y)
    });
    Estimate {
        value,
        std_error: variance.sqrt(),
    }
}

/// The estimate from the totals of the series kept at one `rate` (in (0, 1]).
pub fn reweighted_sum(series_totals: impl IntoIterator<Item = f64>, rate: f64) -> Estimate {
    reweighted_sum_rates(series_totals.into_iter().map(|y| (y, rate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimator's figures on a hand-computed example; rate 1 is exact with no error.
    #[test]
    fn hand_computed() {
        let e = reweighted_sum([2.0, 4.0], 0.5);
        assert_eq!(e.value, 12.0);
        // (1 − 0.5) / 0.25 · (4 + 16) = 40.
        assert_eq!(e.std_error, 40f64.sqrt());
        assert_eq!(
            e.interval(2.0),
            (12.0 - 2.0 * 40f64.sqrt(), 12.0 + 2.0 * 40f64.sqrt())
        );
        let exact = reweighted_sum([1.0, 2.0, 3.0], 1.0);
        assert_eq!((exact.value, exact.std_error), (6.0, 0.0));
        let mixed = reweighted_sum_rates([(1.0, 1.0), (3.0, 0.25)]);
        assert_eq!(mixed.value, 13.0);
        assert_eq!(mixed.std_error, (0.75 / 0.0625 * 9.0f64).sqrt());
    }
}
