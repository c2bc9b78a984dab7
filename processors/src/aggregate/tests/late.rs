//! Late points, state bounds, positions held, and rows that are not aggregated.

use phoenix_model::pipeline::LatePolicy;

use super::fixture::{aggregator, batch, config, read, run, MIN, P, SEC, T0};
use crate::processor::Processor;

/// Runs `f` with a local Prometheus recorder and returns its result and the rendered text.
fn with_metrics<T>(f: impl FnOnce() -> T) -> (T, String) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let t = metrics::with_local_recorder(&recorder, f);
    (t, handle.render())
}

/// Points for a window that closed are late: counted in `phoenix_late_datapoints_total` and,
/// under `drop`, dropped (reason `late`, returned by `take_dropped`) without changing the
/// closed window's rows.
#[test]
fn late_dropped_and_counted() {
    let ((out, dropped), text) = with_metrics(|| {
        let mut a = aggregator(&config());
        let first = a
            .process_at(
                batch(&[
                    P::gauge("m", "h", T0, 1.0),
                    P::gauge("m", "h", T0 + 75 * SEC, 2.0),
                ]),
                1,
            )
            .expect("processes");
        // Watermark = T0+65s: window [T0, T0+60s) closed; these two are late.
        let late = vec![
            P::gauge("m", "h", T0 + 59 * SEC, 9.0),
            P::gauge("m", "h", T0 + SEC, 9.0),
        ];
        let second = a.process_at(batch(&late), 2).expect("processes");
        assert_eq!(second.num_rows(), 0);
        let dropped = a.take_dropped().map(|b| read(&b)).expect("dropped rows");
        assert!(a.take_dropped().is_none(), "taken once");
        (read(&first), dropped)
    });
    let w0: Vec<(String, Option<f64>)> = out.iter().map(|r| (r.metric.clone(), r.value)).collect();
    assert!(
        w0.contains(&("m.count".into(), Some(1.0))) && w0.contains(&("m.max".into(), Some(1.0)))
    );
    assert_eq!(
        dropped.iter().map(|r| r.value).collect::<Vec<_>>(),
        [Some(9.0), Some(9.0)]
    );
    assert!(
        text.contains("phoenix_late_datapoints_total{processor=\"agg\"} 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "phoenix_processor_datapoints_dropped_total{processor=\"agg\",reason=\"late\"} 2"
        ),
        "{text}"
    );
}

/// Under `pass_through`, late points are emitted unchanged (not aggregated) and still counted.
#[test]
fn late_passed_through() {
    let mut c = config();
    c.late_policy = LatePolicy::PassThrough;
    let (rows, text) = with_metrics(|| {
        let mut a = aggregator(&c);
        a.process_at(batch(&[P::gauge("m", "h", T0 + 75 * SEC, 2.0)]), 1)
            .expect("processes");
        let late = P::gauge("m", "h", T0 + 5 * SEC, 9.0);
        let out = read(
            &a.process_at(batch(std::slice::from_ref(&late)), 2)
                .expect("processes"),
        );
        assert!(a.take_dropped().is_none());
        (out, late)
    });
    let (out, late) = rows;
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].metric.as_str(), out[0].time, out[0].value),
        ("m", late.time, Some(9.0))
    );
    assert_eq!(out[0].series_id, late.series_id());
    assert!(
        text.contains("phoenix_late_datapoints_total{processor=\"agg\"} 1"),
        "{text}"
    );
}

/// `held_since` is the lowest position with data in an open window; it moves when windows
/// close and is `None` after a flush.
#[test]
fn held_since_tracks_open_windows() {
    let mut a = aggregator(&config());
    assert_eq!(a.held_since(), None);
    a.process_at(batch(&[P::gauge("m", "h", T0 + SEC, 1.0)]), 10)
        .expect("processes");
    assert_eq!(a.held_since(), Some(10));
    // Next window, watermark T0+55s: the first is still open.
    a.process_at(batch(&[P::gauge("m", "h", T0 + 65 * SEC, 1.0)]), 11)
        .expect("processes");
    assert_eq!(a.held_since(), Some(10));
    // An empty batch holds nothing new.
    a.process_at(batch(&[]), 12).expect("processes");
    assert_eq!(a.held_since(), Some(10));
    // Watermark T0+70s closes the first window.
    let out = a
        .process_at(batch(&[P::gauge("m", "h", T0 + 80 * SEC, 1.0)]), 13)
        .expect("processes");
    assert!(out.num_rows() > 0);
    assert_eq!(a.held_since(), Some(11));
    let flushed = a.flush().expect("flushes").expect("rows");
    assert!(flushed.num_rows() > 0);
    assert_eq!(a.held_since(), None);
    assert!(a.flush().expect("flushes").is_none(), "nothing left");
}

/// Beyond `max_series` output series, points of new series are dropped (reason
/// `max_series`); the state gauge reports the series held, and idle series expire.
#[test]
fn max_series_and_idle_expiry() {
    let mut c = config();
    c.max_series = 3;
    c.idle_timeout = phoenix_model::pipeline::Interval(std::time::Duration::from_secs(120));
    let (series_after, text) = with_metrics(|| {
        let mut a = aggregator(&c);
        let pts: Vec<P> = (0..5)
            .map(|h| P::gauge("m", &format!("h{h}"), T0, 1.0))
            .collect();
        a.process_at(batch(&pts), 1).expect("processes");
        let dropped = a.take_dropped().map(|b| b.num_rows());
        assert_eq!(dropped, Some(2));
        // Only h0 keeps reporting; after 2 idle minutes the others are forgotten.
        for k in 1..6 {
            a.process_at(
                batch(&[P::gauge("m", "h0", T0 + k * MIN, 1.0)]),
                1 + k as u64,
            )
            .expect("processes");
        }
        let late_comer = a
            .process_at(batch(&[P::gauge("m", "h4", T0 + 6 * MIN, 1.0)]), 9)
            .expect("processes");
        assert!(a.take_dropped().is_none(), "room again after expiry");
        late_comer.num_rows()
    });
    assert_eq!(series_after, 6, "h0's window closed");
    assert!(
        text.contains(
            "phoenix_processor_datapoints_dropped_total{processor=\"agg\",reason=\"max_series\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("phoenix_processor_state_series{processor=\"agg\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("phoenix_processor_state_windows{processor=\"agg\"} 2"),
        "{text}"
    );
}

/// Summaries and exponential histograms pass through unchanged; points without a value are
/// dropped with reason `no_value`.
#[test]
fn other_kinds_and_missing_values() {
    let mut summary = P::gauge("s", "h", T0, 1.0);
    summary.kind = "summary";
    summary.value = None;
    let mut exp = P::gauge("e", "h", T0, 1.0);
    exp.kind = "exponential_histogram";
    exp.temporality = Some("delta");
    exp.value = None;
    let mut flagged = P::gauge("m", "h", T0, 5.0);
    flagged.flags = 1;
    let mut null = P::gauge("m", "h", T0 + 1, 5.0);
    null.value = None;
    let (out, text) = with_metrics(|| {
        let mut a = aggregator(&config());
        let out = read(
            &a.process_at(batch(&[summary.clone(), flagged, exp.clone(), null]), 1)
                .expect("processes"),
        );
        assert_eq!(a.take_dropped().map(|b| b.num_rows()), Some(2));
        assert_eq!(a.held_since(), None, "nothing held");
        out
    });
    assert_eq!(
        out.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        ["s", "e"]
    );
    assert!(
        text.contains(
            "phoenix_processor_datapoints_dropped_total{processor=\"agg\",reason=\"no_value\"} 2"
        ),
        "{text}"
    );
}

/// A late cumulative point is dropped before conversion, so later deltas are unaffected.
#[test]
fn late_counter_point_ignored() {
    let s = Some(T0 - MIN);
    let batches = vec![
        vec![
            P::counter("c", "h", s, T0, 10.0),
            P::counter("c", "h", s, T0 + 80 * SEC, 30.0),
        ],
        vec![P::counter("c", "h", s, T0 + 30 * SEC, 99.0)],
        vec![P::counter("c", "h", s, T0 + 100 * SEC, 35.0)],
    ];
    let out = run(&config(), &batches);
    let got: Vec<(i64, Option<f64>)> = out.iter().map(|r| (r.time, r.value)).collect();
    assert_eq!(got, [(T0, Some(10.0)), (T0 + MIN, Some(25.0))]);
}

/// Rows of different `sample_rate` never merge; each output row carries its rate.
#[test]
fn sample_rates_kept_apart() {
    let mut sampled = P::delta("c", "h1", T0, 4.0);
    sampled.sample_rate = 0.25;
    let points = vec![
        P::delta("c", "h0", T0, 1.0),
        sampled,
        P::delta("c", "h2", T0 + 1, 2.0),
    ];
    let mut c = config();
    c.group_by = Some(Vec::new());
    let mut out = run(&c, &[points]);
    out.sort_by(|a, b| a.sample_rate.total_cmp(&b.sample_rate));
    let got: Vec<(f64, Option<f64>)> = out.iter().map(|r| (r.sample_rate, r.value)).collect();
    assert_eq!(got, [(0.25, Some(4.0)), (1.0, Some(3.0))]);
}
