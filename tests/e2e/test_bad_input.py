"""Hostile and malformed OTLP input over HTTP (4318) and gRPC (4317).

Each bad request must get the right error, and afterwards the server still answers `/health` and
a datapoint accepted before the bad input is still queryable.
"""

from __future__ import annotations

import math
import time
import zlib

import grpc
import pytest

from phoenix_e2e import gauge, now_ns, number_point, prom_samples, request, retry_until

MIB = 1024 * 1024
MAX_BODY = 20 * MIB  # ingest.max_body_bytes default
SENTINEL_VALUE = 42.5


@pytest.fixture(scope="module")
def sentinel(phoenix):
    """A datapoint accepted before any bad input; returns its timestamp."""
    t = now_ns()
    req = request([gauge("e2e.sentinel", [number_point(t, SENTINEL_VALUE, {"k": "v"})])], "e2e-bad-input")
    resp = phoenix.export_http(req)
    assert resp.partial_success.rejected_data_points == 0
    phoenix.wait_count("metric = 'e2e.sentinel'", 1, timeout=5)
    return t


def still_serving(phoenix, sentinel_t: int) -> None:
    """The server answers /health and still returns the sentinel datapoint exactly."""
    assert phoenix.running, "server process died"
    assert phoenix.health() == 200
    rows = phoenix.sql_dicts(
        "SELECT CAST(time AS BIGINT) AS t, value FROM metrics WHERE metric = 'e2e.sentinel'"
    )
    assert rows == [{"t": sentinel_t, "value": SENTINEL_VALUE}]


@pytest.fixture(scope="session")
def gzip_bomb() -> bytes:
    """2 GiB of zeros, gzip-compressed in-process (about 2 MB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    chunk = bytes(16 * MIB)
    parts = [c.compress(chunk) for _ in range(128)]
    parts.append(c.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 4 * MIB
    return bomb


def _good_request(metric: str, n: int = 2):
    t = now_ns()
    return request([gauge(metric, [number_point(t + i, float(i), {"i": i}) for i in range(n)])], "e2e-bad-input")


# ---- malformed bodies ----------------------------------------------------------------------------------


def test_http_truncated_protobuf_is_400(phoenix, sentinel):
    """Scenario: a protobuf body cut short. Guarantee: 400, nothing stored, server unharmed."""
    body = _good_request("e2e.truncated.http").SerializeToString()
    r = phoenix.post_otlp(body[: len(body) - 7])
    assert r.status_code == 400, r.text
    assert phoenix.count("metric = 'e2e.truncated.http'") == 0
    still_serving(phoenix, sentinel)


def test_grpc_truncated_protobuf_is_invalid_argument(phoenix, sentinel):
    """Scenario: a gRPC Export whose message is cut short. Guarantee: INVALID_ARGUMENT, nothing
    stored, server unharmed."""
    body = _good_request("e2e.truncated.grpc").SerializeToString()
    with pytest.raises(grpc.RpcError) as err:
        phoenix.export_grpc_raw(body[: len(body) - 7])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    assert phoenix.count("metric = 'e2e.truncated.grpc'") == 0
    still_serving(phoenix, sentinel)


def test_http_wrong_content_type_is_415(phoenix, sentinel):
    """Scenario: a valid protobuf body labelled text/plain. Guarantee: 415, nothing stored."""
    body = _good_request("e2e.wrong.ctype").SerializeToString()
    r = phoenix.post_otlp(body, content_type="text/plain")
    assert r.status_code == 415, r.text
    assert phoenix.count("metric = 'e2e.wrong.ctype'") == 0
    still_serving(phoenix, sentinel)


def test_http_json_invalid_utf8_is_400(phoenix, sentinel):
    """Scenario: an OTLP/JSON body containing bytes that are not UTF-8. Guarantee: 400."""
    t = now_ns()
    body = (
        b'{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"e2e-\xff\xfe"}}]},'
        b'"scopeMetrics":[{"metrics":[{"name":"e2e.badutf8","gauge":{"dataPoints":[{"timeUnixNano":"'
        + str(t).encode()
        + b'","asDouble":1.0}]}}]}]}]}'
    )
    r = phoenix.post_otlp(body, content_type="application/json")
    assert r.status_code == 400, r.text
    assert phoenix.count("metric = 'e2e.badutf8'") == 0
    still_serving(phoenix, sentinel)


# ---- size limits -----------------------------------------------------------------------------------------


def test_http_gzip_bomb_is_413_quickly(phoenix, sentinel, gzip_bomb):
    """Scenario: ~2 MB of gzip that inflates to 2 GiB. Guarantee: 413 without inflating it all
    (answered within 15 s; inflating 2 GiB would take far longer or exhaust memory)."""
    start = time.monotonic()
    r = phoenix.post_otlp(gzip_bomb, encoding="gzip", timeout=60)
    elapsed = time.monotonic() - start
    assert r.status_code == 413, r.text[:500]
    assert elapsed < 15, f"413 took {elapsed:.1f}s"
    still_serving(phoenix, sentinel)


def test_http_oversized_body_is_413(phoenix, sentinel):
    """Scenario: an uncompressed body over the 20 MiB default limit. Guarantee: 413, nothing stored."""
    t = now_ns()
    big = "x" * (MAX_BODY + MIB)
    req = request([gauge("e2e.oversized.http", [number_point(t, 1.0, {})])], "e2e-bad-input", {"blob": big})
    r = phoenix.post_otlp(req.SerializeToString(), timeout=60)
    assert r.status_code == 413, r.text[:500]
    assert phoenix.count("metric = 'e2e.oversized.http'") == 0
    still_serving(phoenix, sentinel)


def test_grpc_oversized_message_is_resource_exhausted(phoenix, sentinel):
    """Scenario: a gRPC Export over the 20 MiB limit. Guarantee: RESOURCE_EXHAUSTED, nothing stored."""
    t = now_ns()
    big = "x" * (MAX_BODY + MIB)
    req = request([gauge("e2e.oversized.grpc", [number_point(t, 1.0, {})])], "e2e-bad-input", {"blob": big})
    with pytest.raises(grpc.RpcError) as err:
        phoenix.export_grpc(req, timeout=60)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    assert phoenix.count("metric = 'e2e.oversized.grpc'") == 0
    still_serving(phoenix, sentinel)


# ---- bad datapoints inside a good request -------------------------------------------------------------------


def _nan_inf_request(metric: str, t: int):
    points = [
        number_point(t + 0, 1.0, {"p": "good1"}),
        number_point(t + 1, math.nan, {"p": "nan"}),
        number_point(t + 2, math.inf, {"p": "inf"}),
        number_point(t + 3, -math.inf, {"p": "-inf"}),
        number_point(t + 4, 2.0, {"p": "good2"}),
    ]
    return request([gauge(metric, points)], "e2e-bad-input")


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_nan_and_inf_are_rejected_partially(phoenix, sentinel, transport):
    """Scenario: one request with two finite values, NaN, +Inf and -Inf. Guarantee: success with
    partial_success.rejected_data_points == 3 and an error message; the two good points stored."""
    metric = f"e2e.nan.{transport}"
    t = now_ns()
    req = _nan_inf_request(metric, t)
    resp = phoenix.export_http(req) if transport == "http" else phoenix.export_grpc(req)
    assert resp.partial_success.rejected_data_points == 3, resp
    assert resp.partial_success.error_message, resp
    phoenix.wait_count(f"metric = '{metric}'", 2, timeout=5)
    rows = phoenix.sql_dicts(
        f"SELECT CAST(time AS BIGINT) AS t, value, attributes['p'] AS p FROM metrics WHERE metric = '{metric}' ORDER BY t"
    )
    assert rows == [{"t": t, "value": 1.0, "p": "good1"}, {"t": t + 4, "value": 2.0, "p": "good2"}]
    still_serving(phoenix, sentinel)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_megabyte_attribute_is_rejected_partially(phoenix, sentinel, transport):
    """Scenario: three points, one carrying a 1 MB attribute value. Guarantee: success with
    partial_success.rejected_data_points == 1; the other two points stored."""
    metric = f"e2e.bigattr.{transport}"
    t = now_ns()
    points = [
        number_point(t, 1.0, {"p": "a"}),
        number_point(t + 1, 2.0, {"p": "b", "blob": "y" * 1_000_000}),
        number_point(t + 2, 3.0, {"p": "c"}),
    ]
    req = request([gauge(metric, points)], "e2e-bad-input")
    resp = phoenix.export_http(req) if transport == "http" else phoenix.export_grpc(req)
    assert resp.partial_success.rejected_data_points == 1, resp
    assert resp.partial_success.error_message, resp
    phoenix.wait_count(f"metric = '{metric}'", 2, timeout=5)
    rows = phoenix.sql_dicts(
        f"SELECT value, attributes['p'] AS p FROM metrics WHERE metric = '{metric}' ORDER BY value"
    )
    assert rows == [{"value": 1.0, "p": "a"}, {"value": 3.0, "p": "c"}]
    still_serving(phoenix, sentinel)


def test_rejections_counted_by_reason(phoenix_factory):
    """Scenario: a fresh server gets 3 non-finite values and 1 oversized attribute. Guarantee:
    `/metrics` shows `phoenix_ingest_datapoints_rejected_total` summing to 4 over `reason`
    labels, with different reasons for the two causes."""
    server = phoenix_factory()
    t = now_ns()
    assert server.export_http(_nan_inf_request("e2e.nan.metrics", t)).partial_success.rejected_data_points == 3
    big = request(
        [gauge("e2e.bigattr.metrics", [number_point(t, 1.0, {"blob": "z" * 1_000_000})])], "e2e-bad-input"
    )
    assert server.export_http(big).partial_success.rejected_data_points == 1

    def samples():
        s = prom_samples(server.prometheus(), "phoenix_ingest_datapoints_rejected_total")
        return s if sum(v for _, v in s) >= 4 else None

    found = retry_until(samples, timeout=5) or prom_samples(
        server.prometheus(), "phoenix_ingest_datapoints_rejected_total"
    )
    assert sum(v for _, v in found) == 4, found
    reasons = {labels.get("reason") for labels, v in found if v > 0}
    assert None not in reasons, f"samples without a reason label: {found}"
    assert len(reasons) >= 2, f"NaN/Inf and oversized attributes share one reason: {found}"
