//! Labeled synthetic series for the benchmark: seasonality, trend, noise, missing points and
//! injected anomalies of known kind and position. Deterministic for a seed.

use std::fmt::Write as _;

/// Kinds of injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// One or two points far above the normal band.
    Spike,
    /// One or two points far below the normal band.
    Dip,
    /// The level jumps and stays.
    LevelShift,
    /// The noise grows (or shrinks) for a while.
    VarianceChange,
    /// The level ramps away slowly and stays.
    SlowDrift,
    /// The value freezes (a stuck sensor or exporter).
    Flatline,
}

impl AnomalyKind {
    /// Every kind, in report order.
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::Spike,
        AnomalyKind::Dip,
        AnomalyKind::LevelShift,
        AnomalyKind::VarianceChange,
        AnomalyKind::SlowDrift,
        AnomalyKind::Flatline,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Spike => "spike",
            AnomalyKind::Dip => "dip",
            AnomalyKind::LevelShift => "level shift",
            AnomalyKind::VarianceChange => "variance change",
            AnomalyKind::SlowDrift => "slow drift",
            AnomalyKind::Flatline => "flatline",
        }
    }
}

/// One labeled anomaly: detections with `start_ts <= ts <= end_ts` count for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    /// Kind injected.
    pub kind: AnomalyKind,
    /// First anomalous timestamp (seconds).
    pub start_ts: i64,
    /// Last timestamp at which a detection still counts (seconds).
    pub end_ts: i64,
}

/// A generated series with its labels.
#[derive(Debug, Clone)]
pub struct LabeledSeries {
    /// Name describing the series' shape, for reports.
    pub name: String,
    /// Kind of the injected anomalies, `None` for an anomaly-free series.
    pub kind: Option<AnomalyKind>,
    /// Timestamps in seconds, increasing (gaps where points are missing).
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
    /// Injected anomalies.
    pub labels: Vec<Label>,
}

impl LabeledSeries {
    /// The series as `timestamp,value` CSV, the input of `phoenix anomaly score`.
    pub fn to_csv(&self) -> String {
        let mut s = String::with_capacity(self.values.len() * 24 + 16);
        s.push_str("timestamp,value\n");
        for (t, v) in self.timestamps.iter().zip(&self.values) {
            // Writing to a String cannot fail.
            let _ = writeln!(s, "{t},{v}");
        }
        s
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Series per anomaly kind.
    pub series_per_kind: usize,
    /// Anomaly-free series (false-alarm rate).
    pub normal_series: usize,
    /// Points per series before missing points are removed.
    pub length: usize,
    /// Anomalies injected per series.
    pub anomalies_per_series: usize,
    /// Points after a point-like anomaly (spike, dip, level shift) within which a detection counts.
    pub tolerance: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            series_per_kind: 40,
            normal_series: 40,
            length: 4000,
            anomalies_per_series: 2,
            tolerance: 12,
        }
    }
}

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi).
    pub fn index(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi.saturating_sub(lo).max(1) as u64)) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Generates `series_per_kind` series per kind plus `normal_series` anomaly-free ones.
pub fn generate(cfg: &SynthConfig) -> Vec<LabeledSeries> {
    let mut rng = Rng::new(cfg.seed);
    let mut out = Vec::new();
    for kind in AnomalyKind::ALL {
        for i in 0..cfg.series_per_kind {
            let seed = rng.next_u64();
            out.push(one_series(cfg, Some(kind), i, seed));
        }
    }
    for i in 0..cfg.normal_series {
        let seed = rng.next_u64();
        out.push(one_series(cfg, None, i, seed));
    }
    out
}

/// Shape of the normal behaviour of one series.
struct Profile {
    interval: i64,
    level: f64,
    sigma: f64,
    phi: f64,
    daily: f64,
    business_hours: bool,
    weekend_factor: f64,
    trend: f64,
    integer: bool,
    /// Degrees of freedom of Student-t innovations, 0 for Gaussian.
    dof: u32,
}

impl Profile {
    fn draw(rng: &mut Rng, length: usize) -> Self {
        let interval = [60, 300, 300, 300, 900, 3600][rng.index(0, 6)];
        let level = 10f64.powf(rng.range(0.0, 4.0));
        let sigma = level * rng.range(0.01, 0.05);
        let daily = if rng.chance(0.8) {
            rng.range(2.0, 10.0) * sigma
        } else {
            0.0
        };
        Self {
            interval,
            level,
            sigma,
            phi: rng.range(0.0, 0.7),
            daily,
            business_hours: rng.chance(0.4),
            weekend_factor: if rng.chance(0.5) {
                rng.range(0.3, 0.8)
            } else {
                1.0
            },
            trend: rng.range(-3.0, 3.0) * sigma / length as f64,
            integer: level > 50.0 && rng.chance(0.25),
            dof: if rng.chance(0.3) {
                [3, 4, 6][rng.index(0, 3)]
            } else {
                0
            },
        }
    }

    /// One innovation with unit variance: Gaussian, or Student-t (heavy-tailed, as real
    /// latencies and counts often are).
    fn innovation(&self, rng: &mut Rng) -> f64 {
        if self.dof == 0 {
            return rng.normal();
        }
        let nu = f64::from(self.dof);
        let chi2: f64 = (0..self.dof).map(|_| rng.normal().powi(2)).sum();
        rng.normal() / (chi2 / nu).sqrt() / (nu / (nu - 2.0)).sqrt()
    }

    /// How much wider the noise's 99.9% quantile is than a Gaussian's, so injected jumps stand
    /// out of heavy-tailed noise as much as out of Gaussian noise.
    fn tail_factor(&self) -> f64 {
        match self.dof {
            0 => 1.0,
            3 => 2.27,
            4 => 1.85,
            _ => 1.48,
        }
    }

    /// Noise-free value at point `i`.
    fn base(&self, i: usize) -> f64 {
        let secs = i as f64 * self.interval as f64;
        let day_phase = (secs % 86_400.0) / 86_400.0;
        let weekday = ((secs / 86_400.0) as u64) % 7;
        let daily = if self.business_hours {
            // A smooth plateau from about 08:00 to 18:00.
            let x = (std::f64::consts::TAU * (day_phase - 0.3)).cos();
            ((x + 0.3).max(0.0) / 1.3).powf(0.7)
        } else {
            0.5 + 0.5 * (std::f64::consts::TAU * day_phase).sin()
        };
        let week = if weekday >= 5 {
            self.weekend_factor
        } else {
            1.0
        };
        self.level + self.daily * daily * week + self.trend * i as f64
    }
}

fn one_series(
    cfg: &SynthConfig,
    kind: Option<AnomalyKind>,
    idx: usize,
    seed: u64,
) -> LabeledSeries {
    let mut rng = Rng::new(seed);
    let n = cfg.length;
    let p = Profile::draw(&mut rng, n);
    // Noise: AR(1) scaled to a marginal standard deviation of `sigma`.
    let innovation = p.sigma * (1.0 - p.phi * p.phi).sqrt();
    let mut noise_scale = vec![1.0; n];
    let mut offset = vec![0.0; n];
    let mut frozen: Vec<Option<usize>> = vec![None; n];
    let mut labels_idx = Vec::new();

    if let Some(kind) = kind {
        let lo = (n as f64 * 0.3) as usize;
        let hi = (n as f64 * 0.92) as usize;
        let slot = (hi - lo) / cfg.anomalies_per_series.max(1);
        for a in 0..cfg.anomalies_per_series {
            let start = lo + a * slot + rng.index(0, slot / 2);
            let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
            let end = match kind {
                AnomalyKind::Spike | AnomalyKind::Dip => {
                    let m = rng.range(6.0, 12.0)
                        * p.sigma
                        * p.tail_factor()
                        * if kind == AnomalyKind::Dip { -1.0 } else { 1.0 };
                    let width = if rng.chance(0.3) { 2 } else { 1 };
                    for o in offset.iter_mut().skip(start).take(width) {
                        *o += m;
                    }
                    start + cfg.tolerance
                }
                AnomalyKind::LevelShift => {
                    let m = sign * rng.range(4.0, 8.0) * p.sigma * p.tail_factor();
                    for o in offset.iter_mut().skip(start) {
                        *o += m;
                    }
                    start + cfg.tolerance
                }
                AnomalyKind::VarianceChange => {
                    let d = rng.index(96, 288);
                    let f = if rng.chance(0.7) {
                        rng.range(3.0, 5.0)
                    } else {
                        rng.range(0.1, 0.25)
                    };
                    for s in noise_scale.iter_mut().skip(start).take(d) {
                        *s = f;
                    }
                    start + d
                }
                AnomalyKind::SlowDrift => {
                    let d = rng.index(144, 432);
                    let m = sign * rng.range(6.0, 10.0) * p.sigma;
                    for (j, o) in offset.iter_mut().enumerate().skip(start) {
                        *o += m * ((j - start) as f64 / d as f64).min(1.0);
                    }
                    start + d
                }
                AnomalyKind::Flatline => {
                    let d = rng.index(36, 144);
                    for f in frozen.iter_mut().skip(start).take(d) {
                        *f = Some(start);
                    }
                    start + d
                }
            };
            labels_idx.push((kind, start, end.min(n - 1)));
        }
    }

    let mut values = Vec::with_capacity(n);
    let mut e = rng.normal() * p.sigma;
    for i in 0..n {
        e = p.phi * e + innovation * p.innovation(&mut rng);
        let mut v = p.base(i) + offset[i] + e * noise_scale[i];
        if p.integer {
            v = v.round();
        }
        if let Some(at) = frozen[i] {
            v = values.get(at.saturating_sub(1)).copied().unwrap_or(v);
        }
        values.push(v);
    }

    // Missing points: scattered drops and a few gaps; never the first point of a label.
    let mut keep = vec![true; n];
    for k in keep.iter_mut() {
        if rng.chance(0.01) {
            *k = false;
        }
    }
    for _ in 0..rng.index(0, 3) {
        let at = rng.index(0, n - 40);
        let len = rng.index(5, 30);
        for k in keep.iter_mut().skip(at).take(len) {
            *k = false;
        }
    }
    for &(_, start, _) in &labels_idx {
        keep[start] = true;
    }
    let ts = |i: usize| 1_700_000_000 + i as i64 * p.interval;
    let labels = labels_idx
        .iter()
        .map(|&(kind, start, end)| Label {
            kind,
            start_ts: ts(start),
            end_ts: ts(end),
        })
        .collect();
    let (timestamps, values): (Vec<i64>, Vec<f64>) = (0..n)
        .filter(|&i| keep[i])
        .map(|i| (ts(i), values[i]))
        .unzip();
    let name = format!(
        "{}-{idx} interval={}s daily={:.1}sd{} phi={:.2}{}{}",
        kind.map_or("normal", AnomalyKind::as_str),
        p.interval,
        p.daily / p.sigma,
        if p.business_hours {
            " business-hours"
        } else {
            ""
        },
        p.phi,
        if p.integer { " integer" } else { "" },
        if p.dof > 0 {
            format!(" t{}", p.dof)
        } else {
            String::new()
        },
    );
    LabeledSeries {
        name,
        kind,
        timestamps,
        values,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: generate twice with the same seed. Guarantee: identical series and labels.
    #[test]
    fn deterministic() {
        let cfg = SynthConfig {
            series_per_kind: 1,
            normal_series: 1,
            length: 500,
            ..SynthConfig::default()
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.len(), 7);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.values, y.values);
            assert_eq!(x.labels, y.labels);
            assert!(x.timestamps.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(a[..6].iter().all(|s| s.labels.len() == 2));
        assert!(a[6].labels.is_empty());
    }
}
