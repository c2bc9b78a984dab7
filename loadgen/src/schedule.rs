//! The open-loop timetable: when each request is due.
//!
//! The target rate is piecewise constant (phases, repeated until the run ends). A request
//! whose first datapoint is the `n`-th of the run is due when the cumulative target reaches
//! `n`, whatever happened to earlier requests; latency is measured from that due time, so a
//! slow server shows up as latency instead of silently lowering the send rate.

/// One stretch of constant rate, as a factor of the base rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Shown in the progress line.
    pub name: String,
    /// Length of the phase.
    pub duration_secs: f64,
    /// Multiplier of the base rate (0 pauses).
    pub rate_factor: f64,
}

/// A phase placed in the cycle.
#[derive(Debug, Clone)]
struct Segment {
    start_s: f64,
    end_s: f64,
    rate: f64,
    dp_start: f64,
    dp_end: f64,
}

/// Maps cumulative datapoint counts to due times and back.
#[derive(Debug, Clone)]
pub struct Timetable {
    segments: Vec<Segment>,
    names: Vec<String>,
    cycle_s: f64,
    cycle_dp: f64,
    duration_s: f64,
}

impl Timetable {
    /// A timetable at `rate_dps` scaled by `phases` (cycled), lasting `duration_s`.
    /// No phases means one constant phase named `steady`.
    pub fn new(rate_dps: f64, duration_s: f64, phases: &[Phase]) -> Timetable {
        let default = [Phase {
            name: "steady".into(),
            duration_secs: duration_s.max(f64::MIN_POSITIVE),
            rate_factor: 1.0,
        }];
        let phases = if phases.is_empty() {
            &default[..]
        } else {
            phases
        };
        let mut segments = Vec::with_capacity(phases.len());
        let (mut t, mut dp) = (0.0, 0.0);
        for p in phases {
            let rate = (rate_dps * p.rate_factor).max(0.0);
            let len = p.duration_secs.max(0.0);
            segments.push(Segment {
                start_s: t,
                end_s: t + len,
                rate,
                dp_start: dp,
                dp_end: dp + rate * len,
            });
            t += len;
            dp += rate * len;
        }
        Timetable {
            segments,
            names: phases.iter().map(|p| p.name.clone()).collect(),
            cycle_s: t,
            cycle_dp: dp,
            duration_s,
        }
    }

    /// Length of the run in seconds.
    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    /// Seconds after the start at which the target reaches `dp` datapoints; `None` if that
    /// is at or after the end of the run.
    pub fn time_of(&self, dp: f64) -> Option<f64> {
        if self.cycle_dp <= 0.0 || self.cycle_s <= 0.0 {
            return None;
        }
        let cycles = (dp / self.cycle_dp).floor();
        // Clamped so float error cannot select a paused segment or a negative time.
        let rem = (dp - cycles * self.cycle_dp).max(0.0);
        let i = self.segments.partition_point(|s| s.dp_end <= rem);
        let s = self.segments.get(i)?;
        let t = cycles * self.cycle_s + s.start_s + (rem - s.dp_start) / s.rate;
        (t < self.duration_s).then_some(t)
    }

    /// Datapoints the target asks for over the whole run.
    pub fn total_dp(&self) -> f64 {
        self.dp_at(self.duration_s)
    }

    /// Cumulative target datapoints `t` seconds after the start.
    pub fn dp_at(&self, t: f64) -> f64 {
        if self.cycle_s <= 0.0 {
            return 0.0;
        }
        let t = t.clamp(0.0, self.duration_s);
        let cycles = (t / self.cycle_s).floor();
        let rem = t - cycles * self.cycle_s;
        let within = self
            .segments
            .iter()
            .map(|s| s.rate * (rem.min(s.end_s) - s.start_s).max(0.0))
            .sum::<f64>();
        cycles * self.cycle_dp + within
    }

    /// Index of the phase active `t` seconds after the start.
    fn phase_index(&self, t: f64) -> usize {
        if self.cycle_s <= 0.0 {
            return 0;
        }
        let rem = t.max(0.0) % self.cycle_s;
        self.segments
            .partition_point(|s| s.end_s <= rem)
            .min(self.segments.len().saturating_sub(1))
    }

    /// Target rate (datapoints/s) `t` seconds after the start.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.segments
            .get(self.phase_index(t))
            .map_or(0.0, |s| s.rate)
    }

    /// Name of the phase active `t` seconds after the start.
    pub fn phase_at(&self, t: f64) -> &str {
        self.names
            .get(self.phase_index(t))
            .map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, secs: f64, factor: f64) -> Phase {
        Phase {
            name: name.into(),
            duration_secs: secs,
            rate_factor: factor,
        }
    }

    /// A constant rate spaces datapoints evenly and ends at the duration.
    #[test]
    fn constant_rate() {
        let t = Timetable::new(1000.0, 2.0, &[]);
        assert_eq!(t.time_of(0.0), Some(0.0));
        assert_eq!(t.time_of(500.0), Some(0.5));
        assert_eq!(t.time_of(1999.0), Some(1.999));
        assert_eq!(t.time_of(2000.0), None);
        assert_eq!(t.total_dp(), 2000.0);
        assert_eq!(t.phase_at(1.0), "steady");
    }

    /// The spike profile's shape: 30 s at 1x, 10 s at 10x, 20 s at 1x, repeated.
    #[test]
    fn spike_phases() {
        let phases = [
            phase("normal", 30.0, 1.0),
            phase("spike", 10.0, 10.0),
            phase("recovery", 20.0, 1.0),
        ];
        let t = Timetable::new(100.0, 130.0, &phases);
        assert_eq!(t.time_of(3000.0), Some(30.0));
        assert_eq!(t.time_of(3000.0 + 5000.0), Some(35.0));
        assert_eq!(t.time_of(3000.0 + 10_000.0), Some(40.0));
        assert_eq!(t.dp_at(60.0), 15_000.0);
        // Second cycle starts at 60 s.
        assert_eq!(t.time_of(15_000.0 + 100.0), Some(61.0));
        assert_eq!(t.phase_at(35.0), "spike");
        assert_eq!(t.phase_at(95.0), "spike");
        assert_eq!(t.rate_at(95.0), 1000.0);
        assert_eq!(t.total_dp(), 15_000.0 * 2.0 + 1000.0);
    }

    /// A paused phase (factor 0) is skipped by the timetable.
    #[test]
    fn paused_phase() {
        let phases = [phase("on", 1.0, 1.0), phase("off", 1.0, 0.0)];
        let t = Timetable::new(10.0, 4.0, &phases);
        assert_eq!(t.time_of(9.0), Some(0.9));
        assert_eq!(t.time_of(10.0), Some(2.0));
        assert_eq!(t.time_of(20.0), None);
        assert_eq!(t.rate_at(1.5), 0.0);
    }
}
