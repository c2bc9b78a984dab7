"""OTLP/HTTP body formats the contract accepts: protobuf, JSON, and either gzip-compressed."""

from __future__ import annotations

import gzip
import json

import pytest

from phoenix_e2e import cumulative_sum, gauge, now_ns, number_point, parse_export_response, request


def _json_body(metric: str, t: int, start: int) -> bytes:
    """An OTLP/JSON request (64-bit integers as strings, as the OTLP JSON mapping requires)."""
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "e2e-json"}},
                            {"key": "host.name", "value": {"stringValue": "json-host"}},
                        ]
                    },
                    "scopeMetrics": [
                        {
                            "scope": {"name": "phoenix.e2e.json"},
                            "metrics": [
                                {
                                    "name": metric,
                                    "unit": "By",
                                    "sum": {
                                        "aggregationTemporality": 2,
                                        "isMonotonic": True,
                                        "dataPoints": [
                                            {
                                                "startTimeUnixNano": str(start),
                                                "timeUnixNano": str(t),
                                                "asInt": "9007199254740993",
                                                "attributes": [
                                                    {"key": "n", "value": {"intValue": "12"}},
                                                    {"key": "b", "value": {"boolValue": True}},
                                                    {"key": "d", "value": {"doubleValue": 0.5}},
                                                ],
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()


@pytest.mark.parametrize("gzipped", [False, True])
def test_json_body_accepted(phoenix, gzipped):
    """Scenario: an OTLP/JSON monotonic cumulative sum (optionally gzip). Guarantee: 200 and the
    point stored with its timestamps, typed attributes rendered as strings and int value as float."""
    metric = f"e2e.json.{'gz' if gzipped else 'plain'}"
    t = now_ns()
    start = t - 5_000_000_000
    body = _json_body(metric, t, start)
    r = phoenix.post_otlp(gzip.compress(body) if gzipped else body, content_type="application/json",
                          encoding="gzip" if gzipped else None)
    assert r.status_code == 200, r.text
    assert parse_export_response(r).partial_success.rejected_data_points == 0
    phoenix.wait_count(f"metric = '{metric}'", 1, timeout=5)
    rows = phoenix.sql_dicts(
        "SELECT CAST(time AS BIGINT) AS t, CAST(start_time AS BIGINT) AS st, kind, temporality, monotonic,"
        f" unit, service, scope, resource, attributes, value FROM metrics WHERE metric = '{metric}'"
    )
    assert rows == [
        {
            "t": t, "st": start, "kind": "sum", "temporality": "cumulative", "monotonic": True, "unit": "By",
            "service": "e2e-json", "scope": "phoenix.e2e.json",
            "resource": {"service.name": "e2e-json", "host.name": "json-host"},
            "attributes": {"n": "12", "b": "true", "d": "0.5"},
            "value": float(9007199254740993),
        }
    ]


def test_gzip_protobuf_accepted(phoenix):
    """Scenario: a gzip-compressed protobuf request with 3 gauge points. Guarantee: all stored."""
    t = now_ns()
    req = request([gauge("e2e.gzip.pb", [number_point(t + i, i * 1.25, {"i": i}) for i in range(3)])], "e2e-gzip")
    resp = phoenix.export_http(req, gzipped=True)
    assert resp.partial_success.rejected_data_points == 0
    phoenix.wait_count("metric = 'e2e.gzip.pb'", 3, timeout=5)
    rows = phoenix.sql_dicts("SELECT value FROM metrics WHERE metric = 'e2e.gzip.pb' ORDER BY value")
    assert [r["value"] for r in rows] == [0.0, 1.25, 2.5]


def test_missing_service_name_is_empty_string(phoenix):
    """Scenario: a resource without `service.name`. Guarantee: `service` is the empty string."""
    t = now_ns()
    req = request([cumulative_sum("e2e.noservice", [number_point(t, 3, {}, start_ns=t - 1000)])], None,
                  {"host.name": "h"})
    phoenix.export_http(req)
    phoenix.wait_count("metric = 'e2e.noservice'", 1, timeout=5)
    rows = phoenix.sql_dicts("SELECT service, resource FROM metrics WHERE metric = 'e2e.noservice'")
    assert rows == [{"service": "", "resource": {"host.name": "h"}}]
