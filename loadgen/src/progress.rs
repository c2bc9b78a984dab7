//! The live progress line on stderr, once per second.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::stats::Snapshot;
use crate::worker::Shared;

/// Prints one line per second until `done` changes; on a terminal it rewrites one line.
pub(crate) async fn run(shared: Arc<Shared>, mut done: watch::Receiver<bool>) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval_at(
        (shared.start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = Snapshot::default();
    let mut last_at = shared.start;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.changed() => break,
        }
        let now = Instant::now();
        let snap = shared.stats.snapshot();
        let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let elapsed = now.duration_since(shared.start).as_secs_f64();
        let line = format!(
            "loadgen {elapsed:>6.1}s  {phase}  sent {rate}/s (target {target}/s)  accepted {acc}  rejected {rej}  retryable {rty}  errors {err}  p99 {p99:.1} ms",
            phase = shared.timetable.phase_at(elapsed),
            rate = count((snap.sent - last.sent) as f64 / secs),
            target = count(shared.timetable.rate_at(elapsed)),
            acc = count(snap.accepted as f64),
            rej = count(snap.rejected as f64),
            rty = count(snap.retryable as f64),
            err = count(snap.errors as f64),
            p99 = shared.stats.take_interval_p99_ms(),
        );
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the run.
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}").and_then(|()| err.flush())
        } else {
            writeln!(err, "{line}")
        };
        last = snap;
        last_at = now;
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

/// A count with thousands separators (`1,234,567`).
fn count(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts get thousands separators.
    #[test]
    fn separators() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(1_234_567.4), "1,234,567");
    }
}
