//! Scoring of the detector against labeled series: precision, recall, F1 and detection delay
//! per anomaly kind, with every series run through [`crate::offline::score_csv`], the code path
//! of `phoenix anomaly score`.

use std::collections::BTreeMap;

use crate::offline::{self, CsvError};
use crate::synth::{AnomalyKind, LabeledSeries};
use crate::DetectorConfig;

/// Scores of one series as written by the CSV scorer.
#[derive(Debug, Clone)]
pub struct Scored<'a> {
    /// The series.
    pub series: &'a LabeledSeries,
    /// One score per point.
    pub scores: Vec<f64>,
}

/// Runs every series through the CSV scorer and reads the scores back.
///
/// # Errors
/// [`CsvError`] if a series does not round-trip (a bug in the generator or the scorer).
pub fn score_all<'a>(
    series: &'a [LabeledSeries],
    config: &DetectorConfig,
) -> Result<Vec<Scored<'a>>, CsvError> {
    series
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            offline::score_csv(&s.to_csv(), &mut out, config)?;
            let text = String::from_utf8_lossy(&out);
            let scores = text
                .lines()
                .skip(1)
                .map(|l| {
                    l.rsplit(',')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0.0)
                })
                .collect();
            Ok(Scored { series: s, scores })
        })
        .collect()
}

/// Counts for one group of series (one anomaly kind, or the anomaly-free ones).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Series in the group.
    pub series: usize,
    /// Points in the group.
    pub points: usize,
    /// Labeled anomalies.
    pub anomalies: usize,
    /// Labeled anomalies with at least one detection in their window.
    pub detected: usize,
    /// Detections outside every window.
    pub false_alarms: usize,
    /// Points from anomaly start to first detection, per detected anomaly.
    pub delays: Vec<usize>,
}

impl Tally {
    /// Detected anomalies over detected plus false alarms (1 when there is no detection at all).
    pub fn precision(&self) -> f64 {
        let d = self.detected + self.false_alarms;
        if d == 0 {
            1.0
        } else {
            self.detected as f64 / d as f64
        }
    }

    /// Detected over labeled anomalies.
    pub fn recall(&self) -> f64 {
        if self.anomalies == 0 {
            0.0
        } else {
            self.detected as f64 / self.anomalies as f64
        }
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Median detection delay in points.
    pub fn median_delay(&self) -> Option<usize> {
        let mut d = self.delays.clone();
        d.sort_unstable();
        d.get(d.len() / 2).copied()
    }

    /// Mean detection delay in points.
    pub fn mean_delay(&self) -> Option<f64> {
        (!self.delays.is_empty())
            .then(|| self.delays.iter().sum::<usize>() as f64 / self.delays.len() as f64)
    }

    /// False alarms per 10,000 points.
    pub fn false_alarms_per_10k(&self) -> f64 {
        self.false_alarms as f64 * 10_000.0 / self.points.max(1) as f64
    }

    fn add(&mut self, o: &Tally) {
        self.series += o.series;
        self.points += o.points;
        self.anomalies += o.anomalies;
        self.detected += o.detected;
        self.false_alarms += o.false_alarms;
        self.delays.extend_from_slice(&o.delays);
    }
}

/// Results at one threshold.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Score threshold: a point with score >= threshold is a detection.
    pub threshold: f64,
    /// Per anomaly kind.
    pub per_kind: BTreeMap<AnomalyKind, Tally>,
    /// Anomaly-free series.
    pub normal: Tally,
    /// Everything together.
    pub overall: Tally,
}

/// Tallies one series at `threshold`.
pub fn tally(s: &Scored<'_>, threshold: f64) -> Tally {
    let series = s.series;
    let mut t = Tally {
        series: 1,
        points: series.values.len(),
        anomalies: series.labels.len(),
        ..Tally::default()
    };
    let mut first: Vec<Option<usize>> = vec![None; series.labels.len()];
    for (i, (&ts, &score)) in series.timestamps.iter().zip(&s.scores).enumerate() {
        if score < threshold {
            continue;
        }
        match series
            .labels
            .iter()
            .position(|l| l.start_ts <= ts && ts <= l.end_ts)
        {
            Some(k) => {
                first[k].get_or_insert(i);
            }
            None => t.false_alarms += 1,
        }
    }
    for (label, hit) in series.labels.iter().zip(first) {
        if let Some(i) = hit {
            t.detected += 1;
            let start = series.timestamps.partition_point(|&ts| ts < label.start_ts);
            t.delays.push(i.saturating_sub(start));
        }
    }
    t
}

/// Evaluates scored series at `threshold`.
pub fn report(scored: &[Scored<'_>], threshold: f64) -> Report {
    let mut r = Report {
        threshold,
        ..Report::default()
    };
    for s in scored {
        let t = tally(s, threshold);
        match s.series.kind {
            Some(kind) => r.per_kind.entry(kind).or_default().add(&t),
            None => r.normal.add(&t),
        }
        r.overall.add(&t);
    }
    r
}

impl Report {
    /// The per-kind table in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| kind | series | anomalies | detected | false alarms | precision | recall | F1 | delay median / mean (points) |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        let row = |name: &str, t: &Tally| {
            let delay = match (t.median_delay(), t.mean_delay()) {
                (Some(m), Some(a)) => format!("{m} / {a:.1}"),
                _ => "—".into(),
            };
            format!(
                "| {name} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {delay} |\n",
                t.series,
                t.anomalies,
                t.detected,
                t.false_alarms,
                t.precision(),
                t.recall(),
                t.f1()
            )
        };
        for (kind, t) in &self.per_kind {
            s.push_str(&row(kind.as_str(), t));
        }
        s.push_str(&format!(
            "| none (anomaly-free) | {} | 0 | — | {} ({:.2} per 10k points) | — | — | — | — |\n",
            self.normal.series,
            self.normal.false_alarms,
            self.normal.false_alarms_per_10k()
        ));
        s.push_str(&row("**all**", &self.overall));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Label;

    /// Scenario: one labeled spike, detections inside and outside its window. Guarantee: one
    /// detection, one false alarm, delay counted in points from the window start.
    #[test]
    fn tallies_detections_and_false_alarms() {
        let series = LabeledSeries {
            name: "t".into(),
            kind: Some(AnomalyKind::Spike),
            timestamps: (0..10).collect(),
            values: vec![0.0; 10],
            labels: vec![Label {
                kind: AnomalyKind::Spike,
                start_ts: 4,
                end_ts: 6,
            }],
        };
        let scored = Scored {
            series: &series,
            scores: vec![0.0, 0.9, 0.0, 0.0, 0.1, 0.8, 0.9, 0.0, 0.0, 0.0],
        };
        let t = tally(&scored, 0.5);
        assert_eq!(
            (t.detected, t.false_alarms, t.delays.clone()),
            (1, 1, vec![1])
        );
        assert!((t.precision() - 0.5).abs() < 1e-12);
        assert!((t.recall() - 1.0).abs() < 1e-12);
    }
}
