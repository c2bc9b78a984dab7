"""Faults: SIGKILL at random moments under load, SIGTERM under load, a damaged WAL, and object
storage going away mid-load. Each ends with the same check: every acknowledged datapoint is
stored exactly once."""

from __future__ import annotations

import json
import random
import struct
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from acked_load import METRIC, AckedLoad, assert_exactly_once, stored_values, wait_exactly_once
from phoenix_e2e import free_ports, gauge, now_ns, number_point, prom_samples, request, retry_until
from tcp_proxy import TcpProxy
from test_s3_storage import BUCKET, PREFIX, phoenix_env, s3  # noqa: F401  (fixture)

KILLS = 4
SEED = 20261122


def _report(name: str, figures: dict) -> None:
    """Prints figures for the closing note / BENCHMARKS.md (visible with `pytest -s`)."""
    print(f"\n[{name}] {json.dumps(figures, sort_keys=True)}")


def test_sigkill_at_random_moments_loses_nothing(phoenix_factory):
    """Scenario: a steady sender records every acknowledged point while the server is killed
    with SIGKILL 4 times at random moments (seeded) and restarted each time. Guarantee: every
    acknowledged point is stored exactly once, before and after a final clean restart."""
    rng = random.Random(SEED)
    server = phoenix_factory(flush_interval_secs=1)
    load = AckedLoad(url=lambda: server.otlp_http_url).start()
    recoveries = []
    try:
        for _ in range(KILLS):
            load.wait_acked(400, timeout=30)
            time.sleep(rng.uniform(0.2, 2.5))
            server.proc.kill()
            server.proc.wait(timeout=10)
            t0 = time.monotonic()
            server.start()
            recoveries.append(round(time.monotonic() - t0, 2))
        load.wait_acked(400, timeout=30)
    finally:
        load.stop()
    wait_exactly_once(server, load)
    server.restart()
    assert_exactly_once(stored_values(server), load)
    _report(
        "sigkill",
        {"kills": KILLS, "acked": len(load.acked), "sent": len(load.sent), "lost": 0,
         "recovery_s": recoveries, "outcomes": dict(load.outcomes)},
    )


def test_sigterm_under_load_loses_nothing(phoenix_factory):
    """Scenario: SIGTERM while a sender is mid-stream. Guarantee: exit 0 within the stop
    timeout, and after a restart every acknowledged point is stored exactly once."""
    server = phoenix_factory(flush_interval_secs=1)
    load = AckedLoad(url=lambda: server.otlp_http_url).start()
    try:
        load.wait_acked(2000, timeout=30)
        t0 = time.monotonic()
        server.stop_clean()
        stop_s = time.monotonic() - t0
        server.start()
        load.wait_acked(200, timeout=30)
    finally:
        load.stop()
    wait_exactly_once(server, load)
    _report("sigterm", {"acked": len(load.acked), "stop_s": round(stop_s, 2), "lost": 0})


# ---- WAL damage ---------------------------------------------------------------------------------

WAL_MAGIC = 0x3157_5850
WAL_HEADER = struct.Struct("<IIQI")  # magic, payload length, sequence, crc32


def wal_records(wal_dir: Path) -> list[tuple[Path, int, int, int]]:
    """(segment, offset, payload length, seq) of every record, in file order."""
    out = []
    for seg in sorted(wal_dir.glob("*.wal")):
        data = seg.read_bytes()
        at = 0
        while at + WAL_HEADER.size <= len(data):
            magic, length, seq, _crc = WAL_HEADER.unpack_from(data, at)
            if magic != WAL_MAGIC:
                break
            out.append((seg, at, length, seq))
            at += WAL_HEADER.size + length
    return out


def _send_values(server, values: list[int]) -> None:
    t = now_ns()
    points = [number_point(t + v, v, {"s": "wal"}) for v in values]
    resp = server.export_http(request([gauge(METRIC, points)], service="acked"))
    assert resp.partial_success.rejected_data_points == 0


@pytest.mark.parametrize("damage", ["flip_byte", "truncate"])
def test_damaged_wal_tail_is_cut_and_the_rest_kept(phoenix_factory, damage):
    """Scenario: three acknowledged requests live only in the WAL (1 h flush), the process is
    killed, and the last record is damaged (a flipped payload byte, or the file cut mid-record).
    Guarantee: the server starts, reports the bytes it cut, and keeps the first two requests
    exactly; new data is accepted afterwards."""
    server = phoenix_factory(flush_interval_secs=3600)
    batches = [list(range(i * 100, i * 100 + 100)) for i in range(3)]
    for values in batches:
        _send_values(server, values)
    server.proc.kill()
    server.proc.wait(timeout=10)

    records = wal_records(server.data_dir / "wal")
    assert len(records) >= 3, records
    seg, offset, length, _seq = records[-1]
    data = bytearray(seg.read_bytes())
    if damage == "flip_byte":
        data[offset + WAL_HEADER.size + length // 2] ^= 0xFF
    else:
        data = data[: offset + WAL_HEADER.size + length // 2]
    seg.write_bytes(bytes(data))

    server.start()
    stored = stored_values(server)
    kept = [v for values in batches[:2] for v in values]
    assert sorted(stored.elements()) == kept, "exactly the undamaged records survive"
    cut = sum(v for _, v in prom_samples(server.prometheus(), "phoenix_wal_bytes_cut_total"))
    assert cut > 0, "the cut is reported in /metrics"
    assert "WAL damage" in server.log_tail(400), "the cut is reported in the log"

    _send_values(server, list(range(1000, 1010)))
    server.restart()
    assert sorted(stored_values(server).elements()) == kept + list(range(1000, 1010))


# ---- Object storage outage ----------------------------------------------------------------------


def bucket_values(client) -> list[int]:
    """Values of METRIC in every Parquet object of the `metrics` table, read from the bucket."""
    values = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/metrics/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            t = pq.read_table(pa.BufferReader(body), columns=["metric", "value"])
            for m, v in zip(t.column("metric").to_pylist(), t.column("value").to_pylist()):
                if m == METRIC:
                    values.append(int(v))
    return values


def storage_status(server) -> str:
    body = requests.get(f"{server.api_url}/health/detailed", timeout=5).json()
    comps = body.get("components", body)
    return comps["storage"]["status"]


def test_object_store_outage_loses_nothing(s3, phoenix_factory, tmp_path):  # noqa: F811
    """Scenario: tables in S3 (moto) reached through a proxy; mid-load the proxy is cut for
    ~10 s, with a WAL budget small enough to fill during the outage. Guarantee: while storage
    is away `/health/detailed` says storage is degraded and ingest answers retryable 503s once
    the WAL is full (never dropping); after it returns, every acknowledged point reaches the
    bucket exactly once. The pipeline is the plain `otlp → metrics`: a rollup would hold the
    WAL for its window (a minute) and keep this tiny budget full past the outage."""
    endpoint, client = s3
    moto_port = int(endpoint.rsplit(":", 1)[1])
    proxy = TcpProxy(free_ports(1)[0], moto_port).restore()
    plain = tmp_path / "plain.yaml"
    plain.write_text("pipeline: {}\n")
    server = phoenix_factory(
        config=plain,
        flush_interval_secs=1,
        extra_sets=(
            f"storage.url=s3://{BUCKET}/{PREFIX}",
            "storage.wal_max_bytes=2097152",
            "storage.wal_segment_bytes=262144",
        ),
        env=phoenix_env(f"http://127.0.0.1:{proxy.port}"),
    )
    load = AckedLoad(url=lambda: server.otlp_http_url).start()
    try:
        load.wait_acked(1000, timeout=30)
        proxy.cut()
        before = dict(load.outcomes)
        assert retry_until(lambda: storage_status(server) == "degraded", timeout=30), "health says degraded"
        assert retry_until(
            lambda: load.outcomes["http_503"] > before.get("http_503", 0), timeout=60
        ), f"a full WAL answers 503: {dict(load.outcomes)}"
        acked_during = len(load.acked)
        time.sleep(3)
        proxy.restore()
        assert retry_until(lambda: storage_status(server) == "ok", timeout=90), "storage recovers"
        load.wait_acked(1000, timeout=60)
    finally:
        load.stop()
        server.stop_clean()
        proxy.cut()
    assert_exactly_once(Counter(bucket_values(client)), load)
    _report(
        "object_store_outage",
        {"acked": len(load.acked), "acked_before_503": acked_during, "outcomes": dict(load.outcomes), "lost": 0},
    )
