//! Windows of an idle input close on the wall clock ([`Processor::tick`]), with an injected
//! clock.

use std::time::{Duration, SystemTime};

use super::fixture::{aggregator, batch, config, read, run, MIN, P, SEC, T0};
use crate::processor::Processor;

/// An arbitrary wall clock origin; only differences matter.
fn wall(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000 + secs)
}

/// With the newest point at T0+50 s (window [T0, T0+60 s), lateness 10 s, grace 5 s), the
/// window stays open until the input has been idle for 25 s (+ grace measured from the first
/// tick), then a tick emits exactly the rows a flush would; `held_since` clears; a point for
/// the closed window is late afterwards, and a newer point restarts the idle clock.
#[test]
fn idle_tick_closes_the_last_window() {
    let points = vec![
        P::gauge("m", "h", T0 + 5 * SEC, 1.0),
        P::gauge("m", "h", T0 + 50 * SEC, 3.0),
        P::delta("d", "h", T0 + 20 * SEC, 4.0),
    ];
    let want = run(&config(), std::slice::from_ref(&points));
    let mut a = aggregator(&config());
    assert_eq!(
        a.process_at(batch(&points), 1)
            .expect("processes")
            .num_rows(),
        0
    );
    assert_eq!(
        a.tick(wall(0)).expect("ticks"),
        None,
        "first tick marks the idle start"
    );
    assert_eq!(
        a.tick(wall(20)).expect("ticks"),
        None,
        "grace 5 s + 10 s more, not 20 s"
    );
    assert_eq!(
        a.tick(wall(24)).expect("ticks"),
        None,
        "watermark T0+59 s < T0+60 s"
    );
    assert_eq!(a.held_since(), Some(1));
    let got = a.tick(wall(26)).expect("ticks").expect("window closed");
    assert_eq!(read(&got), want);
    assert_eq!(a.held_since(), None);
    assert_eq!(a.tick(wall(27)).expect("ticks"), None, "nothing left");

    let late = a
        .process_at(batch(&[P::gauge("m", "h", T0 + 55 * SEC, 9.0)]), 2)
        .expect("processes");
    assert_eq!(late.num_rows(), 0);
    assert_eq!(
        a.take_dropped().map(|b| b.num_rows()),
        Some(1),
        "late: dropped"
    );

    // A newer point: the idle clock starts over.
    let next = a
        .process_at(batch(&[P::gauge("m", "h", T0 + MIN + 2 * SEC, 7.0)]), 3)
        .expect("processes");
    assert_eq!(next.num_rows(), 0);
    assert_eq!(a.tick(wall(100)).expect("ticks"), None, "new idle mark");
    assert_eq!(
        a.tick(wall(160)).expect("ticks"),
        None,
        "T0+62+55-10 < T0+120"
    );
    let closed = a.tick(wall(175)).expect("ticks").expect("second window");
    assert!(read(&closed).iter().all(|r| r.time == T0 + MIN));
}

/// While event time keeps advancing, ticks close nothing: windows close on the event-time
/// watermark only, so a replay or a lagging exporter is never cut short by the wall clock.
#[test]
fn ticks_do_nothing_while_event_time_advances() {
    let mut a = aggregator(&config());
    let mut emitted = 0;
    for k in 0..100 {
        let p = P::gauge("m", "h", T0 + k * SEC, k as f64);
        emitted += a
            .process_at(batch(&[p]), k as u64 + 1)
            .expect("processes")
            .num_rows();
        // A tick per point, each an hour of wall time later: never idle at a tick.
        assert_eq!(a.tick(wall(3600 * k as u64)).expect("ticks"), None);
    }
    // Window [T0, T0+60 s) closed by the watermark (T0+89 s) only.
    assert_eq!(emitted, 6);
    assert_eq!(a.held_since(), Some(61));
}
