"""Round trip: what the OpenTelemetry Python SDK exports is exactly what `POST /api/v1/sql` returns.

The SDK's `InMemoryMetricReader` captures the `MetricsData` it produced; that same object is then
exported with the SDK's OTLP exporters (gRPC for one service, HTTP/protobuf for another), and a
summary (which the SDK cannot make) is sent as a raw protobuf request. Expected rows are derived
from those captured objects (and the workload itself is checked against hand-computed values),
never from the server.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.export import ExponentialHistogram as SdkExpHistogram
from opentelemetry.sdk.metrics.export import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from phoenix_e2e import kvs, rendered, request, rfc3339_ns

SCOPE = "phoenix.e2e.sdk"
BOUNDS = [0.005, 0.1, 1.0, 10.0]
FRESHNESS_S = 2.0

COLUMNS = (
    "CAST(time AS BIGINT) AS t_ns, CAST(start_time AS BIGINT) AS st_ns, metric, kind, temporality,"
    " monotonic, unit, service, resource, scope, attributes, value, count, sum, min, max, bounds,"
    " bucket_counts, exp_scale, exp_zero_count, exp_zero_threshold, exp_positive_offset,"
    " exp_positive_counts, exp_negative_offset, exp_negative_counts, quantiles, quantile_values,"
    " sample_rate, flags"
)

# ---- the workload -------------------------------------------------------------------------------

ROUTE_A = {"http.route": "/a", "ok": True, "ratio": 1.5}
ROUTE_B = {"http.route": "/b", "code": 404, "ok": False}


def _gauge_int(options: CallbackOptions):
    yield Observation(21, {"room": "a", "floor": 2})
    yield Observation(-3, {"room": "b", "floor": 0})


def _gauge_double(options: CallbackOptions):
    yield Observation(0.25, {"cpu": 0, "busy": True})
    yield Observation(1.5, {"cpu": 1, "busy": False, "load": 0.75})


_bytes_sent = {"eth0": 1024}


def _bytes_counter(options: CallbackOptions):
    yield Observation(_bytes_sent["eth0"], {"iface": "eth0"})


def _inflight(options: CallbackOptions):
    yield Observation(-2, {"pool": "p1"})


def run_workload(service: str) -> tuple[list[MetricsData], Resource]:
    """Records a fixed workload in two collection rounds; returns what the SDK produced."""
    resource = Resource(
        {"service.name": service, "host.name": "e2e-host-1", "e2e.shard": 7, "e2e.canary": True}
    )
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: AggregationTemporality.DELTA,
            ObservableCounter: AggregationTemporality.CUMULATIVE,
            UpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
            Histogram: AggregationTemporality.CUMULATIVE,
        }
    )
    views = [
        View(instrument_name="e2e.latency", aggregation=ExplicitBucketHistogramAggregation(boundaries=BOUNDS)),
        View(instrument_name="e2e.latency.exp", aggregation=ExponentialBucketHistogramAggregation(max_size=160)),
    ]
    provider = MeterProvider(metric_readers=[reader], resource=resource, views=views)
    meter = provider.get_meter(SCOPE, "0.1")
    meter.create_observable_gauge("e2e.temperature", [_gauge_int], unit="Cel")
    meter.create_observable_gauge("e2e.cpu.ratio", [_gauge_double], unit="1")
    meter.create_observable_counter("e2e.bytes.sent", [_bytes_counter], unit="By")
    meter.create_observable_up_down_counter("e2e.inflight", [_inflight], unit="{request}")
    requests_total = meter.create_counter("e2e.requests", unit="{request}")
    queue = meter.create_up_down_counter("e2e.queue.depth", unit="{item}")
    latency = meter.create_histogram("e2e.latency", unit="s")
    latency_exp = meter.create_histogram("e2e.latency.exp", unit="ms")

    _bytes_sent["eth0"] = 1024
    requests_total.add(5, ROUTE_A)
    requests_total.add(2, ROUTE_A)
    requests_total.add(7, ROUTE_B)
    queue.add(10, {"queue": "q1"})
    queue.add(-4, {"queue": "q1"})
    for v in (0.001, 0.05, 0.05, 2.0, 20.0):
        latency.record(v, ROUTE_A)
    for v in (0.0, 1.0, 2.0, 4.0, 8.0):
        latency_exp.record(v, {"http.route": "/a"})
    first = reader.get_metrics_data()
    time.sleep(0.01)

    _bytes_sent["eth0"] = 4096
    requests_total.add(3, ROUTE_A)
    queue.add(1, {"queue": "q1"})
    latency.record(0.5, ROUTE_A)
    second = reader.get_metrics_data()
    provider.shutdown()
    return [first, second], resource


# ---- expected rows from the SDK's own objects -------------------------------------------------------

_TEMPORALITY = {AggregationTemporality.DELTA: "delta", AggregationTemporality.CUMULATIVE: "cumulative"}


def _blank() -> dict[str, Any]:
    return dict(
        st_ns=None, temporality=None, monotonic=None, value=None, count=None, sum=None, min=None,
        max=None, bounds=None, bucket_counts=None, exp_scale=None, exp_zero_count=None,
        exp_zero_threshold=None, exp_positive_offset=None, exp_positive_counts=None,
        exp_negative_offset=None, exp_negative_counts=None, quantiles=None, quantile_values=None,
        sample_rate=1.0, flags=0,
    )


def expected_rows(datas: list[MetricsData]) -> list[dict[str, Any]]:
    """One row per datapoint the SDK produced, as the contract says Phoenix stores it."""
    rows = []
    for data in datas:
        for rm in data.resource_metrics:
            res = rendered(dict(rm.resource.attributes))
            service = res.get("service.name", "")
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for dp in m.data.data_points:
                        row = _blank()
                        row.update(
                            t_ns=dp.time_unix_nano, metric=m.name, unit=m.unit or "", service=service,
                            resource=res, scope=sm.scope.name, attributes=rendered(dict(dp.attributes)),
                        )
                        d = m.data
                        if isinstance(d, Gauge):
                            # The OTLP encoder does not send a gauge's start time.
                            row.update(kind="gauge", value=float(dp.value))
                        elif isinstance(d, Sum):
                            row.update(
                                kind="sum", st_ns=dp.start_time_unix_nano or None,
                                temporality=_TEMPORALITY[d.aggregation_temporality],
                                monotonic=d.is_monotonic, value=float(dp.value),
                            )
                        elif isinstance(d, SdkHistogram):
                            row.update(
                                kind="histogram", st_ns=dp.start_time_unix_nano or None,
                                temporality=_TEMPORALITY[d.aggregation_temporality],
                                count=dp.count, sum=float(dp.sum), min=float(dp.min), max=float(dp.max),
                                bounds=[float(b) for b in dp.explicit_bounds],
                                bucket_counts=list(dp.bucket_counts),
                            )
                        elif isinstance(d, SdkExpHistogram):
                            row.update(
                                kind="exponential_histogram", st_ns=dp.start_time_unix_nano or None,
                                temporality=_TEMPORALITY[d.aggregation_temporality],
                                count=dp.count, sum=float(dp.sum), min=float(dp.min), max=float(dp.max),
                                exp_scale=dp.scale, exp_zero_count=dp.zero_count, exp_zero_threshold=0.0,
                                flags=dp.flags,
                            )
                            if dp.positive.bucket_counts:
                                row.update(exp_positive_offset=dp.positive.offset,
                                           exp_positive_counts=list(dp.positive.bucket_counts))
                            if dp.negative.bucket_counts:
                                row.update(exp_negative_offset=dp.negative.offset,
                                           exp_negative_counts=list(dp.negative.bucket_counts))
                        else:
                            raise AssertionError(f"unexpected SDK data {type(d)}")
                        rows.append(row)
    return rows


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """Canonical form of a result row; absent exponential buckets may be null or empty."""
    r = dict(row)
    for side in ("positive", "negative"):
        if not r.get(f"exp_{side}_counts"):
            r[f"exp_{side}_counts"] = None
            r[f"exp_{side}_offset"] = None
    if r.get("kind") == "exponential_histogram" and r.get("exp_zero_threshold") is None:
        r["exp_zero_threshold"] = 0.0
    return r


def row_key(r: dict[str, Any]):
    return (r["service"], r["metric"], tuple(sorted(r["attributes"].items())), r["t_ns"])


def assert_rows_equal(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    actual = sorted((normalize(r) for r in actual), key=row_key)
    expected = sorted((normalize(r) for r in expected), key=row_key)
    keys_a, keys_e = [row_key(r) for r in actual], [row_key(r) for r in expected]
    if keys_a != keys_e:
        extra = [k for k in keys_a if k not in keys_e]
        missing = [k for k in keys_e if k not in keys_a]
        raise AssertionError(
            f"row sets differ: {len(actual)} rows vs {len(expected)} expected;"
            f" missing {missing[:5]}; unexpected {extra[:5]}"
        )
    for a, e in zip(actual, expected):
        diff = {k: (a.get(k), v) for k, v in e.items() if a.get(k) != v}
        assert not diff, f"row {row_key(e)}: (actual, expected) differ: {diff}"


# ---- the summary, sent raw ------------------------------------------------------------------------

SUMMARY_SERVICE = "e2e-summary"
SUMMARY_QUANTILES = [(0.0, 1.0), (0.5, 2.5), (0.99, 4.0), (1.0, 4.0)]


def summary_request(t_ns: int, start_ns: int):
    point = metrics_pb2.SummaryDataPoint(
        start_time_unix_nano=start_ns, time_unix_nano=t_ns, count=4, sum=10.0,
        attributes=kvs({"rpc.method": "Get", "retries": 3}),
        quantile_values=[
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in SUMMARY_QUANTILES
        ],
    )
    metric = metrics_pb2.Metric(name="e2e.rpc.duration", unit="ms", summary=metrics_pb2.Summary(data_points=[point]))
    return request([metric], SUMMARY_SERVICE, {"host.name": "e2e-host-2"}, scope="phoenix.e2e.raw")


def summary_expected(t_ns: int, start_ns: int) -> dict[str, Any]:
    row = _blank()
    row.update(
        t_ns=t_ns, st_ns=start_ns, metric="e2e.rpc.duration", kind="summary", unit="ms",
        service=SUMMARY_SERVICE, resource={"service.name": SUMMARY_SERVICE, "host.name": "e2e-host-2"},
        scope="phoenix.e2e.raw", attributes={"rpc.method": "Get", "retries": "3"}, count=4, sum=10.0,
        quantiles=[q for q, _ in SUMMARY_QUANTILES], quantile_values=[v for _, v in SUMMARY_QUANTILES],
    )
    return row


# ---- sending ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sent(phoenix):
    """Runs the workload for two services, exports each over one transport, sends the summary."""
    out: dict[str, Any] = {"fresh": {}}
    for service, make_exporter in (
        ("e2e-sdk-grpc", lambda: GrpcExporter(endpoint=phoenix.grpc_target, insecure=True, timeout=10)),
        ("e2e-sdk-http", lambda: HttpExporter(endpoint=phoenix.otlp_http_url, timeout=10)),
    ):
        datas, _ = run_workload(service)
        exporter = make_exporter()
        try:
            expected = []
            for data in datas:
                expected += expected_rows([data])
                assert exporter.export(data) == MetricExportResult.SUCCESS, f"{service}: export failed"
                # Guarantee: data is queryable within 2 s of the export returning.
                out["fresh"][f"{service}#{len(expected)}"] = _seconds_until_count(
                    phoenix, f"service = '{service}'", len(expected)
                )
        finally:
            exporter.shutdown()
        out[service] = {"datas": datas, "expected": expected}

    t_ns = time.time_ns()
    start_ns = t_ns - 60_000_000_000
    resp = phoenix.export_http(summary_request(t_ns, start_ns))
    assert not resp.HasField("partial_success") or resp.partial_success.rejected_data_points == 0, resp
    out[SUMMARY_SERVICE] = {"expected": [summary_expected(t_ns, start_ns)]}
    out["fresh"][SUMMARY_SERVICE] = _seconds_until_count(phoenix, f"service = '{SUMMARY_SERVICE}'", 1)
    return out


def _seconds_until_count(phoenix, where: str, n: int) -> float | None:
    """Seconds until the rows show up (None if not within the freshness bound)."""
    try:
        return phoenix.wait_count(where, n, timeout=FRESHNESS_S)
    except AssertionError:
        return None


def _rows(phoenix, where: str) -> list[dict[str, Any]]:
    rows = phoenix.sql_dicts(f"SELECT {COLUMNS} FROM metrics WHERE {where}")
    for r in rows:
        r["resource"] = dict(r["resource"])
        r["attributes"] = dict(r["attributes"])
    return rows


# ---- tests ------------------------------------------------------------------------------------------------


def test_sdk_produced_the_known_workload(sent):
    """Scenario: the SDK workload is recorded. Guarantee (of the test itself): the SDK produced the
    hand-computed datapoints, so the expected rows below are independently known."""
    rows = {(r["metric"], tuple(sorted(r["attributes"].items())), i): r
            for i, r in enumerate(sent["e2e-sdk-grpc"]["expected"])}
    by_metric: dict[str, list[dict]] = {}
    for (metric, _, _), r in rows.items():
        by_metric.setdefault(metric, []).append(r)
    first_latency = by_metric["e2e.latency"][0]
    assert first_latency["bounds"] == BOUNDS
    assert first_latency["bucket_counts"] == [1, 2, 0, 1, 1]
    assert first_latency["count"] == 5 and first_latency["min"] == 0.001 and first_latency["max"] == 20.0
    assert by_metric["e2e.latency"][1]["count"] == 6  # cumulative: 5 + 1
    assert sorted(r["value"] for r in by_metric["e2e.requests"]) == [3.0, 7.0, 7.0]
    assert all(r["temporality"] == "delta" and r["monotonic"] is True for r in by_metric["e2e.requests"])
    assert [r["value"] for r in by_metric["e2e.queue.depth"]] == [6.0, 7.0]
    assert all(r["monotonic"] is False for r in by_metric["e2e.queue.depth"])
    assert [r["value"] for r in by_metric["e2e.bytes.sent"]] == [1024.0, 4096.0]
    exp = by_metric["e2e.latency.exp"][0]
    assert exp["count"] == 5 and exp["exp_zero_count"] == 1 and exp["sum"] == 15.0
    assert sum(exp["exp_positive_counts"]) == 4
    assert sorted(r["value"] for r in by_metric["e2e.temperature"]) == [-3.0, -3.0, 21.0, 21.0]
    assert {r["attributes"]["busy"] for r in by_metric["e2e.cpu.ratio"]} == {"true", "false"}
    assert by_metric["e2e.cpu.ratio"][0]["resource"]["e2e.shard"] == "7"


@pytest.mark.parametrize("service", ["e2e-sdk-grpc", "e2e-sdk-http"])
def test_sdk_export_stored_exactly(phoenix, sent, service):
    """Scenario: the SDK's OTLP exporter (gRPC / HTTP protobuf) sends every metric kind.
    Guarantee: SQL returns one row per SDK datapoint with identical metric, kind, temporality,
    monotonic, unit, service, resource, scope, attributes, values and nanosecond timestamps."""
    assert_rows_equal(_rows(phoenix, f"service = '{service}'"), sent[service]["expected"])


def test_summary_stored_exactly(phoenix, sent):
    """Scenario: a raw OTLP summary over HTTP. Guarantee: count, sum, quantiles and timestamps
    round-trip exactly."""
    assert_rows_equal(_rows(phoenix, f"service = '{SUMMARY_SERVICE}'"), sent[SUMMARY_SERVICE]["expected"])


def test_no_extra_rows(phoenix, sent):
    """Scenario: everything above was sent to a fresh server. Guarantee: the table holds exactly the
    sent datapoints, nothing duplicated or invented."""
    total = sum(len(sent[s]["expected"]) for s in ("e2e-sdk-grpc", "e2e-sdk-http", SUMMARY_SERVICE))
    assert phoenix.count() == total


def test_queryable_within_two_seconds(sent):
    """Scenario: each export returns. Guarantee: its datapoints are visible to SQL within 2 s
    (before any Parquet flush is required)."""
    late = {k: v for k, v in sent["fresh"].items() if v is None}
    assert not late, f"not queryable within {FRESHNESS_S}s: {sorted(late)}"


def test_time_renders_as_rfc3339_nanoseconds(phoenix, sent):
    """Scenario: JSON results with timestamps. Guarantee: `time` is RFC 3339 with 9 fractional
    digits and `Z`, equal to the sent nanosecond timestamp."""
    exp = sent[SUMMARY_SERVICE]["expected"][0]
    rows = phoenix.sql_dicts(
        f"SELECT time, start_time FROM metrics WHERE service = '{SUMMARY_SERVICE}'"
    )
    assert rows == [{"time": rfc3339_ns(exp["t_ns"]), "start_time": rfc3339_ns(exp["st_ns"])}]


def test_series_id_identifies_series(phoenix, sent):
    """Scenario: several datapoints per series across services. Guarantee: `series_id` is equal for
    rows of the same metric+resource+attributes and distinct across different series."""
    rows = phoenix.sql_dicts(
        "SELECT series_id, metric, service, resource, attributes FROM metrics"
    )
    by_series: dict[tuple, set[int]] = {}
    for r in rows:
        key = (r["metric"], tuple(sorted(dict(r["resource"]).items())), tuple(sorted(dict(r["attributes"]).items())))
        by_series.setdefault(key, set()).add(r["series_id"])
    assert all(len(ids) == 1 for ids in by_series.values()), by_series
    ids = [next(iter(v)) for v in by_series.values()]
    assert len(set(ids)) == len(ids), "two different series share a series_id"
    assert all(isinstance(i, int) and 0 <= i < 2**64 for i in ids)


def test_map_columns_subscript(phoenix, sent):
    """Scenario: map subscripts in SQL. Guarantee: `attributes['http.route']` and
    `resource['host.name']` select by key."""
    rows = phoenix.sql_dicts(
        "SELECT DISTINCT resource['host.name'] AS host, attributes['http.route'] AS route "
        "FROM metrics WHERE metric = 'e2e.requests' ORDER BY route"
    )
    assert rows == [{"host": "e2e-host-1", "route": "/a"}, {"host": "e2e-host-1", "route": "/b"}]
