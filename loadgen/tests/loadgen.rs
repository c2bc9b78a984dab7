//! End-to-end runs of the load generator against an in-process fake OTLP endpoint.

mod common;

use std::time::Duration;

use clap::Parser;
use common::{start, Behaviour, Endpoint};
use phoenix_loadgen::{
    run_async, run_with, Compression, LoadgenArgs, Profile, Protocol, Report, Settings,
};

/// A short, modest run against `ep`.
fn args(ep: &Endpoint, protocol: Protocol) -> LoadgenArgs {
    LoadgenArgs {
        endpoint: Some(ep.url(protocol)),
        protocol: Some(protocol),
        rate: Some(20_000.0),
        series: Some(300),
        duration: Some(1.0),
        batch_size: Some(100),
        connections: Some(4),
        mix: Some(
            "gauge=1,sum_cumulative=1,sum_delta=1,histogram=1"
                .parse()
                .expect("mix"),
        ),
        quiet: true,
        ..LoadgenArgs::default()
    }
}

async fn run(args: LoadgenArgs) -> Report {
    run_async(args).await.expect("loadgen run")
}

fn assert_valid(ep: &Endpoint) {
    let seen = ep.fake.seen();
    assert!(
        seen.violations.is_empty(),
        "{} violations, first: {:?}",
        seen.violations.len(),
        seen.violations.iter().take(5).collect::<Vec<_>>()
    );
}

/// Both protocols, with and without gzip: sent == received by the server == accepted,
/// every metric type arrives as valid OTLP, and each series' timestamps strictly increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_counts_both_protocols() {
    for protocol in [Protocol::Grpc, Protocol::Http] {
        for compression in [Compression::None, Compression::Gzip] {
            let ep = start(Behaviour::default()).await;
            let mut a = args(&ep, protocol);
            a.compression = Some(compression);
            let report = run(a).await;
            let seen = ep.fake.seen();
            let case = format!("{protocol} {compression:?}");
            assert!(report.sent > 0, "{case}");
            // The last request due before the end may carry up to one batch past the target.
            assert!(
                report.sent < 20_000 + 100,
                "{case}: sent more than the timetable asked"
            );
            assert_eq!(report.sent, seen.received_dp, "{case}");
            assert_eq!(report.accepted, report.sent, "{case}");
            assert_eq!(
                (
                    report.rejected,
                    report.lost,
                    report.retryable,
                    report.errors
                ),
                (0, 0, 0, 0),
                "{case}"
            );
            assert_eq!(report.requests, seen.requests, "{case}");
            assert_eq!(report.series_created, 300, "{case}");
            assert_eq!(seen.series.len(), 300, "{case}");
            assert_eq!(
                seen.kinds.keys().copied().collect::<Vec<_>>(),
                ["gauge", "histogram", "sum_cumulative", "sum_delta"],
                "{case}"
            );
            assert_valid(&ep);
        }
    }
}

/// The report line carries the contract's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_json_has_contract_keys() {
    let ep = start(Behaviour::default()).await;
    let report = run(args(&ep, Protocol::Http)).await;
    let line = report.to_json_line();
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    for key in [
        "sent",
        "accepted",
        "rejected",
        "duration_s",
        "rate_dps",
        "p50_ms",
        "p99_ms",
        "retryable",
        "errors",
        "requests",
        "protocol",
        "endpoint",
        "target_rate_dps",
        "max_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {line}");
    }
    assert_eq!(v["protocol"], "http");
    assert_eq!(v["endpoint"], format!("http://{}/v1/metrics", ep.http));
    assert_eq!(v["target_rate_dps"], 20_000.0);
    assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
}

/// Partial-success rejections count as rejected, the rest as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_counts_as_rejected() {
    for protocol in [Protocol::Grpc, Protocol::Http] {
        let ep = start(Behaviour {
            reject_per_request: 7,
            ..Behaviour::default()
        })
        .await;
        let report = run(args(&ep, protocol)).await;
        let seen = ep.fake.seen();
        assert!(report.requests > 0);
        assert_eq!(report.rejected, 7 * report.requests, "{protocol}");
        assert_eq!(report.accepted, report.sent - report.rejected, "{protocol}");
        assert_eq!(report.accepted, seen.acked_dp, "{protocol}");
        assert_eq!(report.lost, 0);
        assert_valid(&ep);
    }
}

/// Without --retry, 503/UNAVAILABLE answers count as retryable and their datapoints as
/// lost; nothing is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_without_retry_are_lost() {
    for protocol in [Protocol::Grpc, Protocol::Http] {
        let ep = start(Behaviour {
            fail_first: 3,
            ..Behaviour::default()
        })
        .await;
        let report = run(args(&ep, protocol)).await;
        let seen = ep.fake.seen();
        assert_eq!(seen.refused_requests, 3, "{protocol}");
        assert_eq!(report.retryable, seen.refused_dp, "{protocol}");
        assert_eq!(report.lost, report.retryable, "{protocol}");
        assert_eq!(report.retries, 0, "{protocol}");
        assert_eq!(report.accepted, seen.received_dp, "{protocol}");
        assert_eq!(report.sent, report.accepted + report.lost, "{protocol}");
        assert_eq!(report.errors, 0, "{protocol}");
    }
}

/// With --retry, refused requests are retried after the server's hint and all datapoints
/// end up accepted exactly once: nothing lost, nothing duplicated, timestamps still rise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_recovers_everything() {
    let cases = [
        (Protocol::Http, Duration::from_secs(1)),
        (Protocol::Grpc, Duration::from_millis(300)),
    ];
    for (protocol, hint) in cases {
        let ep = start(Behaviour {
            fail_first: 3,
            retry_after: Some(hint),
            ..Behaviour::default()
        })
        .await;
        let mut a = args(&ep, protocol);
        a.retry = true;
        let report = run(a).await;
        let seen = ep.fake.seen();
        assert_eq!(seen.refused_requests, 3, "{protocol}");
        assert_eq!(report.retries, 3, "{protocol}");
        assert_eq!(report.retryable, seen.refused_dp, "{protocol}");
        assert_eq!(report.lost, 0, "{protocol}");
        assert_eq!(report.accepted, report.sent, "{protocol}");
        assert_eq!(
            seen.received_dp, report.sent,
            "{protocol}: duplicates or losses"
        );
        assert_eq!(report.requests, seen.requests, "{protocol}");
        // The retried requests waited for the hint, and their latency shows it.
        assert!(
            report.max_ms >= hint.as_secs_f64() * 1000.0,
            "{protocol}: {report:?}"
        );
        assert_valid(&ep);
    }
}

/// Churn gives slots fresh ids every second; each new series is valid and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_creates_new_series() {
    let ep = start(Behaviour::default()).await;
    let profile = Profile::parse(
        "rate_dps: 4000\nduration_secs: 2.5\nbatch_size: 50\nconnections: 2\nseries:\n  count: 100\n  attributes: 2\n  churn_per_sec: 100\n  id_attribute: session.id\n",
        "test",
    )
    .expect("profile");
    let cli = LoadgenArgs {
        endpoint: Some(ep.url(Protocol::Http)),
        protocol: Some(Protocol::Http),
        quiet: true,
        ..LoadgenArgs::default()
    };
    let settings = Settings::merge(&cli, &profile, None).expect("settings");
    let report = run_with(settings).await.expect("run");
    let seen = ep.fake.seen();
    assert_eq!(report.series_created, seen.series.len() as u64);
    assert!(report.series_created >= 200, "{report:?}");
    assert!(seen.series.keys().all(|k| k.contains("session.id=")));
    assert_eq!(report.accepted, report.sent);
    assert_valid(&ep);
}

/// The synchronous entry point builds its own runtime and returns the same report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_run_works() {
    let ep = start(Behaviour::default()).await;
    let a = args(&ep, Protocol::Grpc);
    let report = tokio::task::spawn_blocking(move || phoenix_loadgen::run(a))
        .await
        .expect("join")
        .expect("run");
    assert_eq!(report.accepted, ep.fake.seen().received_dp);
    assert!(report.accepted > 0);
}

/// An endpoint nobody listens on is a connection error with exit code 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_exits_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    for protocol in [Protocol::Grpc, Protocol::Http] {
        let a = LoadgenArgs {
            endpoint: Some(format!("http://{addr}")),
            protocol: Some(protocol),
            duration: Some(0.5),
            quiet: true,
            ..LoadgenArgs::default()
        };
        let e = run_async(a).await.expect_err("nothing listens");
        assert!(
            matches!(e, phoenix_loadgen::LoadgenError::Connect { .. }),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}

/// The fake's checks can fail: a repeated timestamp and an inconsistent histogram are caught.
#[test]
fn fake_detects_bad_exporter_output() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, number_data_point::Value, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let point = NumberDataPoint {
        time_unix_nano: 5,
        value: Some(Value::AsDouble(1.0)),
        ..NumberDataPoint::default()
    };
    let gauge = Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point.clone(), point],
        })),
        ..Metric::default()
    };
    let histogram = Metric {
        name: "h".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: 1,
                time_unix_nano: 5,
                count: 3,
                sum: Some(1.0),
                bucket_counts: vec![1, 1],
                explicit_bounds: vec![10.0],
                min: Some(0.0),
                max: Some(1.0),
                ..HistogramDataPoint::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Metric::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge, histogram],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    let mut seen = common::Seen::default();
    common::validate(&req, &mut seen);
    let all = seen.violations.join("\n");
    assert!(all.contains("not after previous"), "{all}");
    assert!(all.contains("histogram h inconsistent"), "{all}");
    assert!(all.contains("resource without"), "{all}");
}

/// The shipped profiles parse; the spike profile is 30 s normal, 10 s at 10x, 20 s recovery.
#[test]
fn shipped_profiles_parse() {
    for name in phoenix_loadgen::builtin_names() {
        let path = format!("../configs/loadgen/{name}.yaml");
        let cli = LoadgenArgs {
            profile: Some(path.clone()),
            ..LoadgenArgs::default()
        };
        let s = Settings::resolve(&cli).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(s.profile.as_deref(), Some(path.as_str()));
    }
    let cli = LoadgenArgs {
        profile: Some("../configs/loadgen/spike.yaml".into()),
        rate: Some(1000.0),
        ..LoadgenArgs::default()
    };
    let s = Settings::resolve(&cli).expect("spike");
    assert_eq!(s.duration, Duration::from_secs(60));
    let t = s.timetable();
    assert_eq!(
        (t.rate_at(10.0), t.rate_at(35.0), t.rate_at(50.0)),
        (1000.0, 10_000.0, 1000.0)
    );
    assert_eq!(t.phase_at(35.0), "spike");
    assert!(s.retry);
    let no_retry = LoadgenArgs {
        profile: Some("../configs/loadgen/spike.yaml".into()),
        no_retry: true,
        ..LoadgenArgs::default()
    };
    assert!(!Settings::resolve(&no_retry).expect("spike").retry);
    let hc = Settings::resolve(&LoadgenArgs {
        profile: Some("../configs/loadgen/high-cardinality.yaml".into()),
        ..LoadgenArgs::default()
    })
    .expect("high-cardinality");
    assert_eq!(hc.workload.churn_per_sec, hc.workload.series);
    assert_eq!(hc.workload.id_attribute, "session.id");
}

/// Unknown or bad profile keys are user errors (exit 1) that name the key.
#[test]
fn bad_profile_keys_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("series:\n  count: 10\n  cardinality: 5\n", "cardinality"),
        ("rate: 5\n", "rate"),
        ("phases:\n  - duration_secs: 10\n    factor: 2\n", "factor"),
        ("connections: 0\n", "connections"),
        ("mix:\n  gauge: 0\n", "mix"),
        ("protocol: udp\n", "protocol"),
    ];
    for (i, (yaml, key)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("p{i}.yaml"));
        std::fs::write(&path, yaml).expect("write");
        let cli = LoadgenArgs {
            profile: Some(path.display().to_string()),
            ..LoadgenArgs::default()
        };
        let e = Settings::resolve(&cli).expect_err(yaml);
        let msg = e.to_string();
        assert!(msg.contains(key), "{yaml:?}: {msg}");
        assert_eq!(e.exit_code(), 1, "{msg}");
    }
}

/// The clap struct parses the documented flags and refuses a bad mix.
#[test]
fn cli_flags_parse() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }
    let cli = Cli::try_parse_from([
        "phoenix-loadgen",
        "--protocol",
        "http",
        "--rate",
        "5000",
        "--series",
        "9",
        "--duration",
        "2",
        "--batch-size",
        "10",
        "--connections",
        "3",
        "--attributes",
        "0",
        "--mix",
        "gauge=1,histogram=1",
        "--compression",
        "gzip",
        "--retry",
        "--json-only",
    ])
    .expect("parse");
    let s = Settings::resolve(&cli.args).expect("settings");
    assert_eq!(s.endpoint, "http://127.0.0.1:4318/v1/metrics");
    assert_eq!(s.workload.mix.weights, [1, 0, 0, 1]);
    assert!(s.retry && s.quiet);
    assert_eq!(s.compression, Compression::Gzip);
    assert!(Cli::try_parse_from(["x", "--mix", "gauge=1,counter=2"]).is_err());
    assert!(Cli::try_parse_from(["x", "--protocol", "udp"]).is_err());
    assert!(Cli::try_parse_from(["x", "--retry", "--no-retry"]).is_err());
}

/// `--timestamps aligned`: a real run keeps every series valid (times strictly increase) and
/// stamps points on the whole-millisecond grid, every series of a collection at one instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_timestamps_run() {
    let ep = start(Behaviour::default()).await;
    let mut a = args(&ep, Protocol::Grpc);
    a.timestamps = Some(phoenix_loadgen::Timestamps::Aligned);
    a.decimals = Some(2);
    let report = run(a).await;
    assert!(report.sent > 0 && report.accepted == report.sent);
    assert_valid(&ep);
    let seen = ep.fake.seen();
    assert_eq!(seen.series.len(), 300);
    let last: std::collections::BTreeSet<u64> = seen.series.values().map(|p| p.time).collect();
    assert!(last.iter().all(|t| t % 1_000_000 == 0), "{last:?}");
    // The run stops mid-collection at most once: every series' last point is one of two instants.
    assert!(last.len() <= 2, "{last:?}");
}
