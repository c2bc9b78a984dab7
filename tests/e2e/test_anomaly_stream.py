"""Streaming anomaly detection end to end: the `anomaly` processor inline in the graph, the
cost (cardinality) detector on the usage accounting, the `anomalies` table, the
`GET /api/v1/anomalies` endpoint, /metrics and the webhook (against a real local HTTP server
whose first answer is a 500)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from phoenix_e2e import (
    cumulative_sum,
    free_ports,
    gauge,
    now_ns,
    number_point,
    prom_samples,
    request,
    retry_until,
    rfc3339_ns,
)

SEC = 1_000_000_000
MINUTE = 60 * SEC
POINTS = 300
SPIKE_AT = 250


class Hook(BaseHTTPRequestHandler):
    """Records every POST body; answers 500 to the very first one, 200 afterwards."""

    bodies: list = []
    attempts = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Hook.lock:
            Hook.attempts += 1
            first = Hook.attempts == 1
            if not first:
                Hook.bodies.append(json.loads(body))
        self.send_response(500 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _wiggle(i: int) -> float:
    return 100.0 + (i * 7919) % 13 - 6.0


@pytest.fixture(scope="module")
def hook():
    port = free_ports(1)[0]
    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, hook):
    """A server with a detector on `e2e.anom.*`, cost anomalies, usage rows written at once
    (grace 0) and the webhook pointing at `hook`."""
    from conftest import _new_server, _teardown

    d = tmp_path_factory.mktemp("anomaly")
    config = d / "phoenix.yaml"
    config.write_text(
        f"""
pipeline:
  processors:
    detect:
      type: anomaly
      inputs: [otlp]
      select: {{ metric: ["e2e.anom.*"] }}
      detector: {{ min_history: 40, min_calibration: 48 }}
  sinks:
    metrics: {{ inputs: [detect] }}
  usage: {{ enabled: true, grace_secs: 0 }}
anomalies:
  cost: {{ min_extra_series: 100 }}
  webhook: {{ url: "{hook}", timeout_ms: 2000, max_retries: 3 }}
"""
    )
    s = _new_server(d, {"config": config})
    yield s
    _teardown(s)


@pytest.fixture(scope="module")
def spiked(server):
    """Sends a gauge with two series (one spikes once) and a counter whose rate spikes once,
    POINTS points each at 10 s steps in the past; returns the first point's time."""
    base = (now_ns() // SEC - POINTS * 10 - 120) * SEC
    for chunk in range(0, POINTS, 50):
        idx = range(chunk, min(chunk + 50, POINTS))
        spiky = [
            number_point(base + i * 10 * SEC, 1000.0 if i == SPIKE_AT else _wiggle(i), {"host": "spiky"})
            for i in idx
        ]
        calm = [number_point(base + i * 10 * SEC, _wiggle(i), {"host": "calm"}) for i in idx]

        def total(i: int) -> int:
            return sum(10 + (k * 31) % 5 for k in range(i + 1)) + (5000 if i >= SPIKE_AT else 0)

        counter = [
            number_point(base + i * 10 * SEC, total(i), {"host": "spiky"}, start_ns=base - SEC)
            for i in idx
        ]
        req = request(
            [gauge("e2e.anom.latency", spiky + calm), cumulative_sum("e2e.anom.requests", counter)],
            service="anom",
        )
        assert server.export_http(req).partial_success.rejected_data_points == 0
    return base


def _point_rows(server, metric: str):
    return server.sql_dicts(
        f"SELECT * FROM anomalies WHERE kind = 'point' AND metric = '{metric}' ORDER BY time"
    )


def test_spike_is_in_anomalies_table(server, spiked):
    """Guarantee: the injected gauge spike yields a `point` row (time, series, attributes,
    value, score, model_version, explanation); the calm series yields none."""
    rows = retry_until(lambda: _point_rows(server, "e2e.anom.latency"), timeout=30)
    assert rows, server.log_tail()
    spike_time = rfc3339_ns(spiked + SPIKE_AT * 10 * SEC)
    hits = [r for r in rows if r["value"] == 1000.0]
    assert len(hits) == 1, rows
    hit = hits[0]
    assert hit["time"].rstrip("Z").startswith(spike_time.rstrip("Z")[:19]), (hit, spike_time)
    assert hit["attributes"] == {"host": "spiky"}
    assert hit["service"] == "anom"
    assert hit["score"] >= 0.5 and hit["model_version"] >= 1 and hit["series_id"] is not None
    assert hit["explanation"].startswith("value 1000 vs expected"), hit
    assert hit["detector"] == "detect"
    assert all(r["attributes"] != {"host": "calm"} for r in rows), rows


def test_counter_rate_spike(server, spiked):
    """Guarantee: a cumulative counter is scored by rate: its one-interval jump (+5000 over
    10 s, i.e. ~500/s vs ~1.2/s) is a `point` row whose value is that rate."""
    rows = retry_until(lambda: _point_rows(server, "e2e.anom.requests"), timeout=30)
    assert rows, server.log_tail()
    assert any(abs(r["value"] - (5000 + 10 + (SPIKE_AT * 31) % 5) / 10) < 1e-6 for r in rows), rows


def test_api_endpoint(server, spiked):
    """Guarantee: GET /api/v1/anomalies answers the same rows as JSON objects, filtered by
    `since` (RFC 3339 or unix seconds) and `min_score`; bad parameters get 400."""
    retry_until(lambda: _point_rows(server, "e2e.anom.latency"), timeout=30)
    for since in (rfc3339_ns(spiked), str(spiked // SEC)):
        r = requests.get(
            f"{server.api_url}/api/v1/anomalies", params={"since": since, "min_score": "0.5"}, timeout=10
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success"
        spikes = [d for d in body["data"] if d["metric"] == "e2e.anom.latency" and d["value"] == 1000.0]
        assert len(spikes) == 1, body
        assert spikes[0]["attributes"] == {"host": "spiky"} and spikes[0]["kind"] == "point"
        assert not [d for d in body["data"] if d["attributes"] == {"host": "calm"}]
    later = requests.get(
        f"{server.api_url}/api/v1/anomalies", params={"since": str(now_ns() // SEC + 3600)}, timeout=10
    )
    assert later.status_code == 200 and later.json()["data"] == []
    high = requests.get(f"{server.api_url}/api/v1/anomalies", params={"min_score": "1.01"}, timeout=10)
    assert high.status_code == 200 and high.json()["data"] == []
    bad = requests.get(f"{server.api_url}/api/v1/anomalies", params={"since": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and "since" in bad.json()["error"]


def test_cardinality_explosion(server):
    """Guarantee: a metric whose series jump 20x in one (closed) minute yields one
    `cardinality` row naming the metric, the label that grew and a 30-day projection."""
    m0 = (now_ns() // MINUTE - 14) * MINUTE
    points = []
    for m in range(10):
        for s in range(10):
            for p in range(2):
                points.append(number_point(m0 + m * MINUTE + p * 20 * SEC, 1.0, {"user": f"u{s}", "region": "eu"}))
    for s in range(200):
        for p in range(2):
            points.append(number_point(m0 + 10 * MINUTE + p * 20 * SEC, 1.0, {"user": f"u{s}", "region": "eu"}))
    req = request([gauge("e2e.card.requests", points)], service="card")
    assert server.export_http(req).partial_success.rejected_data_points == 0

    def rows():
        return server.sql_dicts("SELECT * FROM anomalies WHERE kind = 'cardinality' AND metric = 'e2e.card.requests'")

    got = retry_until(rows, timeout=45)
    assert len(got) == 1, (got, server.log_tail())
    row = got[0]
    assert row["value"] == 200 and row["expected"] == 10, row
    assert row["driver"] == "series" and row["label_keys"] == "user", row
    assert row["projected_extra_series"] == 190 * 30 * 24 * 60
    assert row["time"].startswith(rfc3339_ns(m0 + 10 * MINUTE)[:19]), row
    assert "200 series/min vs median 10" in row["explanation"], row


def test_metrics_and_webhook(server, spiked, hook):
    """Guarantee: /metrics counts scored points, refits and detections; the webhook delivers
    each anomaly as JSON, retrying the attempt the server failed."""
    retry_until(lambda: _point_rows(server, "e2e.anom.latency"), timeout=30)
    text = server.prometheus()
    scored = sum(v for labels, v in prom_samples(text, "phoenix_anomaly_scored_points_total"))
    assert scored >= 3 * POINTS - 10, text
    assert sum(v for _, v in prom_samples(text, "phoenix_anomaly_model_refits_total")) > 0
    detected = {l.get("kind"): v for l, v in prom_samples(text, "phoenix_anomaly_detected_total")}
    assert detected.get("point", 0) >= 2, detected
    assert prom_samples(text, "phoenix_anomaly_open"), text

    def delivered():
        with Hook.lock:
            return [b for b in Hook.bodies if b["metric"] == "e2e.anom.latency" and b["value"] == 1000.0]

    got = retry_until(delivered, timeout=20)
    assert len(got) == 1, Hook.bodies
    assert got[0]["kind"] == "point" and got[0]["attributes"] == {"host": "spiky"}
    text = server.prometheus()
    assert sum(v for _, v in prom_samples(text, "phoenix_anomaly_webhook_retries_total")) >= 1, text
    assert sum(v for _, v in prom_samples(text, "phoenix_anomaly_webhook_sent_total")) >= 1, text


def test_rows_survive_restart(server, spiked):
    """Guarantee: anomaly rows are flushed to Parquet (`tables/anomalies/`) and still answer
    SQL after a clean restart."""
    before = retry_until(lambda: _point_rows(server, "e2e.anom.latency"), timeout=30)
    server.restart()
    after = _point_rows(server, "e2e.anom.latency")
    assert after == before
    assert list((server.tables_dir / "anomalies").rglob("*.parquet")), "no Parquet file"
