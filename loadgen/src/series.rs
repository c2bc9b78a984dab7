//! Series identities (metric type mix, churned ids) and per-series value state.
//!
//! A series keeps its identity until churn replaces it; its timestamps strictly increase,
//! cumulative values grow from a fixed start time, delta values start at the previous point.

use std::fmt;
use std::str::FromStr;

/// The metric types the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Gauge with a double value (a bounded random walk).
    Gauge,
    /// Monotonic cumulative sum with an int value (a request counter).
    SumCumulative,
    /// Monotonic delta sum with a double value (bytes per interval).
    SumDelta,
    /// Cumulative explicit-bucket histogram (latencies in ms).
    Histogram,
}

impl Kind {
    /// All kinds, in the order of [`Mix`] weights.
    pub const ALL: [Kind; 4] = [
        Kind::Gauge,
        Kind::SumCumulative,
        Kind::SumDelta,
        Kind::Histogram,
    ];

    /// The name used in `--mix` and in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::SumCumulative => "sum_cumulative",
            Kind::SumDelta => "sum_delta",
            Kind::Histogram => "histogram",
        }
    }

    /// Prefix of the metric names of this kind.
    pub(crate) fn metric_prefix(self) -> &'static str {
        match self {
            Kind::Gauge => "loadgen.gauge",
            Kind::SumCumulative => "loadgen.requests",
            Kind::SumDelta => "loadgen.bytes",
            Kind::Histogram => "loadgen.latency",
        }
    }

    /// The metric unit (UCUM).
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Kind::Gauge => "1",
            Kind::SumCumulative => "{request}",
            Kind::SumDelta => "By",
            Kind::Histogram => "ms",
        }
    }
}

/// Integer weights of each metric type, e.g. `gauge=70,sum_cumulative=10,sum_delta=10,histogram=10`.
///
/// ```
/// let mix: phoenix_loadgen::Mix = "gauge=70,histogram=30".parse().expect("valid mix");
/// assert_eq!(mix.apportion(10), [7, 0, 0, 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weights in [`Kind::ALL`] order.
    pub weights: [u32; 4],
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            weights: [70, 10, 10, 10],
        }
    }
}

impl Mix {
    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|w| u64::from(*w)).sum()
    }

    /// Splits `n` series among the kinds by largest remainder, so counts sum to `n`.
    pub fn apportion(&self, n: usize) -> [usize; 4] {
        let total = self.total().max(1) as u128;
        let mut counts = [0usize; 4];
        let mut remainders = [(0u128, 0usize); 4];
        for (k, w) in self.weights.iter().enumerate() {
            let exact = n as u128 * u128::from(*w);
            counts[k] = (exact / total) as usize;
            remainders[k] = (exact % total, k);
        }
        let mut left = n - counts.iter().sum::<usize>();
        // Largest remainder first; ties go to the earlier kind.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rem, k) in remainders {
            if left == 0 {
                break;
            }
            if rem > 0 || self.weights[k] > 0 {
                counts[k] += 1;
                left -= 1;
            }
        }
        counts
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .zip(self.weights)
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for Mix {
    type Err = String;

    /// Parses `kind=weight` pairs separated by commas; kinds left out get weight 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0u32; 4];
        let mut seen = [false; 4];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("expected kind=weight, got {part:?}"))?;
            let k = Kind::ALL
                .iter()
                .position(|k| k.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown metric type {:?} (expected gauge, sum_cumulative, sum_delta, histogram)",
                        name.trim()
                    )
                })?;
            if seen[k] {
                return Err(format!("{} given twice", Kind::ALL[k].name()));
            }
            seen[k] = true;
            weights[k] = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of {} must be a whole number", name.trim()))?;
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            return Err("at least one weight must be above 0".into());
        }
        Ok(mix)
    }
}

/// Upper bounds of the histogram buckets, in ms.
pub(crate) const HISTOGRAM_BOUNDS: [f64; 8] = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
/// Number of histogram buckets (bounds + 1).
pub(crate) const HISTOGRAM_BUCKETS: usize = HISTOGRAM_BOUNDS.len() + 1;
/// `SeriesState::id` before the series was first sent.
pub(crate) const NO_ID: u64 = u64::MAX;

/// The identity id of series slot `global` once `replaced` replacements happened.
///
/// Replacement `j` (0, 1, 2, ...) gives slot `j % series` the fresh id `series + j`, so ids are
/// never reused: with churn the id label is unbounded, and the active set stays `series` large.
pub(crate) fn identity(global: u64, series: u64, replaced: u64) -> u64 {
    if series == 0 || replaced <= global {
        return global;
    }
    let last = global + series * ((replaced - 1 - global) / series);
    series.saturating_add(last)
}

/// A small fast PRNG (SplitMix64); fixed seeds make runs repeatable.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Running state of a cumulative histogram series.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistState {
    /// Per-bucket counts (cumulative since start).
    pub buckets: [u64; HISTOGRAM_BUCKETS],
    /// Observations since start.
    pub count: u64,
    /// Sum of observations since start.
    pub sum: f64,
    /// Smallest observation since start.
    pub min: f64,
    /// Largest observation since start.
    pub max: f64,
}

impl HistState {
    /// Adds 1..=8 observations, skewed towards small values.
    fn observe(&mut self, rng: &mut Rng) {
        let n = 1 + rng.below(8);
        for _ in 0..n {
            let u = rng.next_f64();
            let x = 1200.0 * u * u * u;
            let bucket = HISTOGRAM_BOUNDS.partition_point(|b| *b < x);
            if let Some(c) = self.buckets.get_mut(bucket) {
                *c += 1;
            }
            if self.count == 0 {
                self.min = x;
                self.max = x;
            } else {
                self.min = self.min.min(x);
                self.max = self.max.max(x);
            }
            self.count += 1;
            self.sum += x;
        }
    }
}

/// Value state of one series slot.
#[derive(Debug, Clone)]
pub(crate) struct SeriesState {
    /// The metric type.
    pub kind: Kind,
    /// Global slot index (0..series).
    pub global: u64,
    /// Identity currently sent for this slot ([`NO_ID`] before the first send).
    pub id: u64,
    /// Start time of the current identity (cumulative start), unix ns.
    pub start_ns: u64,
    /// Time of the last point sent, unix ns.
    pub last_ns: u64,
    /// Gauge value.
    pub gauge: f64,
    /// Cumulative counter value.
    pub total: i64,
    /// Histogram state (histogram series only).
    pub hist: Option<Box<HistState>>,
}

impl SeriesState {
    /// A slot that has not been sent yet.
    pub(crate) fn new(kind: Kind, global: u64) -> Self {
        SeriesState {
            kind,
            global,
            id: NO_ID,
            start_ns: 0,
            last_ns: 0,
            gauge: 50.0,
            total: 0,
            hist: (kind == Kind::Histogram).then(Box::default),
        }
    }

    /// Starts a new identity at `start_ns`: values and start time reset, like a restarted exporter.
    pub(crate) fn reset(&mut self, id: u64, start_ns: u64) {
        self.id = id;
        self.start_ns = start_ns;
        self.last_ns = start_ns;
        self.gauge = 50.0;
        self.total = 0;
        if let Some(h) = self.hist.as_deref_mut() {
            *h = HistState::default();
        }
    }

    /// Next point's (start, time): time is `max(now, last + 1ns)`, so it never repeats.
    pub(crate) fn next_times(&mut self, now_ns: u64) -> (u64, u64) {
        let time = now_ns.max(self.last_ns.saturating_add(1));
        let start = match self.kind {
            Kind::SumDelta => self.last_ns,
            _ => self.start_ns,
        };
        self.last_ns = time;
        (start, time)
    }

    /// Next gauge value: a random walk kept within [0, 100].
    pub(crate) fn next_gauge(&mut self, rng: &mut Rng) -> f64 {
        self.gauge = (self.gauge + (rng.next_f64() - 0.5) * 4.0).clamp(0.0, 100.0);
        self.gauge
    }

    /// Next cumulative counter value (grows by 1..=100).
    pub(crate) fn next_total(&mut self, rng: &mut Rng) -> i64 {
        self.total = self.total.saturating_add(1 + rng.below(100) as i64);
        self.total
    }

    /// Next histogram state after a few new observations.
    pub(crate) fn next_hist(&mut self, rng: &mut Rng) -> Option<&HistState> {
        let h = self.hist.as_deref_mut()?;
        h.observe(rng);
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mix strings parse, unknown kinds and zero totals are refused.
    #[test]
    fn mix_parses_and_validates() {
        let m: Mix = "gauge=50, histogram=50".parse().expect("parse");
        assert_eq!(m.weights, [50, 0, 0, 50]);
        assert_eq!(
            m.to_string(),
            "gauge=50,sum_cumulative=0,sum_delta=0,histogram=50"
        );
        assert!("gauge=0".parse::<Mix>().is_err());
        assert!("gauges=1"
            .parse::<Mix>()
            .expect_err("unknown kind")
            .contains("gauges"));
        assert!("gauge=1,gauge=2".parse::<Mix>().is_err());
        assert!("gauge".parse::<Mix>().is_err());
    }

    /// Apportioned counts always sum to n and follow the weights.
    #[test]
    fn apportion_sums_to_n() {
        let m = Mix::default();
        for n in [0, 1, 6, 7, 99, 100, 1001] {
            let c = m.apportion(n);
            assert_eq!(c.iter().sum::<usize>(), n, "n={n}");
        }
        assert_eq!(m.apportion(100), [70, 10, 10, 10]);
        let only_hist = Mix {
            weights: [0, 0, 0, 1],
        };
        assert_eq!(only_hist.apportion(5), [0, 0, 0, 5]);
    }

    /// Churned ids are unique and each slot's id only grows.
    #[test]
    fn identities_never_repeat() {
        let n = 7;
        let mut seen = std::collections::HashSet::new();
        for replaced in 0u64..=50 {
            for g in 0..n {
                let id = identity(g, n, replaced);
                assert!(id >= g);
                seen.insert(id);
            }
        }
        // Each replacement creates exactly one new id.
        assert_eq!(seen.len() as u64, n + 50);
        assert_eq!(identity(2, n, 3), n + 2);
        assert_eq!(identity(2, n, 10), n + 9);
    }

    /// Timestamps strictly increase even when the clock does not move.
    #[test]
    fn times_strictly_increase() {
        let mut s = SeriesState::new(Kind::SumDelta, 0);
        s.reset(0, 1_000);
        let (start1, t1) = s.next_times(500);
        let (start2, t2) = s.next_times(500);
        assert_eq!((start1, t1), (1_000, 1_001));
        assert_eq!((start2, t2), (1_001, 1_002));
    }

    /// Histogram bucket counts always add up to the count.
    #[test]
    fn histogram_state_is_consistent() {
        let mut s = SeriesState::new(Kind::Histogram, 0);
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let h = s.next_hist(&mut rng).expect("histogram");
            assert_eq!(h.buckets.iter().sum::<u64>(), h.count);
            assert!(h.min <= h.max && h.sum >= h.min);
        }
    }
}
