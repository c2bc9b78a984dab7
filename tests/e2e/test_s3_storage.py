"""Tables stored in a real S3-compatible server: `storage.url: s3://bucket/prefix`.

The S3 server is moto's standalone server on a free loopback port; Phoenix reaches it through the
standard `AWS_*` variables (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, credentials, region), and the test
inspects the bucket with boto3 and reads the objects with pyarrow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from phoenix_e2e import canonical, free_ports, make_dataset, now_ns, retry_until

BUCKET = "phoenix-e2e"
PREFIX = "phoenix"
PROJECTION = "SELECT CAST(time AS BIGINT) AS t, metric, attributes, value FROM metrics"
# `{prefix}/{table}/date=YYYY-MM-DD/hour=HH/{min_ns}-{max_ns}-{uuid}.parquet`
KEY = re.compile(
    rf"^{PREFIX}/(?P<table>[a-z_][a-z0-9_]*)/date=(?P<date>\d{{4}}-\d{{2}}-\d{{2}})/hour=(?P<hour>\d{{2}})/"
    r"(?P<min>\d+)-(?P<max>\d+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.parquet$"
)
MOTO_START_TIMEOUT = 20.0


@pytest.fixture
def s3(tmp_path: Path):
    """moto's S3 server on a free loopback port holding one empty bucket: (endpoint, boto3 client)."""
    port = free_ports(1)[0]
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + MOTO_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"moto server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"moto server not answering within {MOTO_START_TIMEOUT}s:\n{log.read_text()}")
                time.sleep(0.1)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def phoenix_env(endpoint: str) -> dict[str, str | None]:
    """The server's environment: moto's endpoint and fixed credentials; inherited `AWS_*` removed."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT=endpoint,
        AWS_ALLOW_HTTP="true",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
    )
    return env


def bucket_keys(client) -> list[str]:
    """Every object key in the bucket."""
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def metrics_keys(client) -> list[str]:
    return [k for k in bucket_keys(client) if k.startswith(f"{PREFIX}/metrics/")]


def read_object_rows(client, key: str) -> list[dict]:
    """Downloads one Parquet object with boto3 and returns its rows (pyarrow), checking its types."""
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC"), key
    assert pa.types.is_map(table.schema.field("attributes").type), key
    times = table.column("time").cast(pa.int64()).to_pylist()
    cols = {n: table.column(n).to_pylist() for n in ("metric", "attributes", "value")}
    return [
        {"t": t, "metric": cols["metric"][i], "attributes": dict(cols["attributes"][i]), "value": cols["value"][i]}
        for i, t in enumerate(times)
    ]


def test_tables_live_in_s3_and_survive_a_new_data_dir(s3, phoenix_factory):
    """Scenario: `storage.url=s3://phoenix-e2e/phoenix` on moto; a known dataset sent over
    OTLP/HTTP, flushed (1 s interval), server stopped with SIGTERM; then a second server on the same
    bucket but a new, empty data_dir. Guarantee: SQL returns exactly the sent rows while serving;
    the Parquet objects sit under `phoenix/metrics/date=…/hour=…/` (nothing written locally), each
    readable by pyarrow with rows inside its partition hour and file-name range, together the same
    rows SQL returned; and the second server, rebuilding its manifest from the bucket listing,
    returns every datapoint exactly once."""
    endpoint, client = s3
    opts = {
        "extra_sets": (f"storage.url=s3://{BUCKET}/{PREFIX}",),
        "env": phoenix_env(endpoint),
    }
    server = phoenix_factory(**opts)
    reqs, expected = make_dataset(now_ns() - 600 * 1_000_000_000, "s3")
    for req in reqs:
        assert server.export_http(req).partial_success.rejected_data_points == 0
    server.wait_count("TRUE", len(expected), timeout=10)
    assert canonical(server.sql_dicts(PROJECTION)) == canonical(expected)

    # The periodic flush puts Parquet into the bucket; SQL over flushed objects (read back from S3)
    # plus whatever is still buffered still shows each datapoint once.
    assert retry_until(lambda: metrics_keys(client), timeout=10), f"no objects: {bucket_keys(client)}"
    snapshot = server.sql_dicts(PROJECTION)
    assert canonical(snapshot) == canonical(expected)
    server.stop_clean()

    keys = bucket_keys(client)
    assert all(KEY.match(k) for k in keys), f"objects outside the table layout: {keys}"
    assert not list(server.data_dir.rglob("*.parquet")), "Parquet written to the local data_dir"
    from_objects = []
    for key in metrics_keys(client):
        m = KEY.match(key)
        assert m and m["table"] == "metrics", key
        rows = read_object_rows(client, key)
        assert rows, f"{key} holds no rows"
        for r in rows:
            secs = r["t"] // 1_000_000_000
            assert time.strftime("%Y-%m-%d", time.gmtime(secs)) == m["date"], (key, r["t"])
            assert time.strftime("%H", time.gmtime(secs)) == m["hour"], (key, r["t"])
            assert int(m["min"]) <= r["t"] <= int(m["max"]), (key, r["t"])
        from_objects.extend(rows)
    assert canonical(from_objects) == canonical(snapshot)

    restarted = phoenix_factory(**opts)
    assert restarted.data_dir != server.data_dir
    assert restarted.count() == len(expected)
    assert canonical(restarted.sql_dicts(PROJECTION)) == canonical(expected)
