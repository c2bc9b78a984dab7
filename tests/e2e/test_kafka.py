"""Kafka bus end to end: `bus.kind: kafka` with the roles split across processes, against a
real Kafka-protocol broker (nisshi, started by scripts/kafka-broker.sh).

Every test uses its own topic prefix and consumer group on a broker shared by the module (the
broker-restart test starts its own, with SQLite storage). Results are checked by a separate
reader server opened on the shared storage once the writers stopped, so they count exactly what
is in the Parquet files.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from phoenix_e2e import (
    REPO,
    Server,
    free_ports,
    gauge,
    make_dataset,
    now_ns,
    number_point,
    prom_samples,
    request,
)

BROKER_SCRIPT = REPO / "scripts" / "kafka-broker.sh"
PARTITIONS = 4


@dataclass
class Broker:
    """A broker started by scripts/kafka-broker.sh on its own port and state directory."""

    port: int
    state: Path
    storage: str = "memory://nisshi/"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        env = {**os.environ, "PHOENIX_KAFKA_STATE": str(self.state)}
        subprocess.run([str(BROKER_SCRIPT), *args], env=env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)

    def start(self) -> "Broker":
        self._run("start", str(self.port), self.storage)
        return self

    def stop(self) -> None:
        self._run("stop", str(self.port))

    def produce_raw(self, topic: str, value: str) -> None:
        """Produces one message that is not an Arrow payload (a poison message) to partition 0."""
        nisshi = subprocess.run([str(BROKER_SCRIPT), "cached"], capture_output=True, text=True,
                                check=True).stdout.strip()
        subprocess.run(
            [nisshi, "cat", "produce", topic, "--broker", f"tcp://{self.address}", "--partition", "0"],
            input=f'{{"value": "{value}"}}\n', text=True, check=True, timeout=60,
            capture_output=True,
        )


def broker_available() -> bool:
    return subprocess.run([str(BROKER_SCRIPT), "cached"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(
    not broker_available(),
    reason="no Kafka-protocol broker cached; run scripts/kafka-broker.sh install (scripts/test.sh does)",
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(port=free_ports(1)[0], state=tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


@dataclass
class RoleServer(Server):
    """`phoenix serve --role ROLE` with the config file given."""

    role: str = "all"

    def args(self) -> list[str]:
        return super().args() + ["--role", self.role]


def kafka_config(path: Path, broker: Broker, prefix: str, pipeline: str = "", **kafka: object) -> Path:
    """A config file with the Kafka bus and `pipeline` (YAML text; empty: raw rows into
    `metrics`)."""
    lines = [
        "bus:",
        "  kind: kafka",
        "  kafka:",
        f"    brokers: '{broker.address}'",
        f"    topic_prefix: '{prefix}'",
        f"    group_id: '{prefix}process'",
        f"    partitions: {PARTITIONS}",
    ]
    lines += [f"    {k}: {v}" for k, v in kafka.items()]
    # A dead processing node's partitions move after this long without heartbeats.
    lines += ["    properties:", "      session.timeout.ms: '6000'"]
    path.write_text("\n".join(lines) + "\n" + pipeline)
    return path


class Cluster:
    """Phoenix processes of one test sharing a storage folder and one Kafka topic prefix."""

    def __init__(self, tmp: Path, broker: Broker, pipeline: str = "", **kafka: object):
        self.tmp = tmp
        self.broker = broker
        self.prefix = f"e2e-{uuid.uuid4().hex[:10]}."
        tmp.mkdir(parents=True, exist_ok=True)
        self.tables = tmp / "tables"
        self.config = kafka_config(tmp / "kafka.yaml", broker, self.prefix, pipeline, **kafka)
        self.servers: list[Server] = []

    def start(self, role: str, name: str) -> RoleServer:
        s = RoleServer(
            data_dir=self.tmp / name,
            config=self.config,
            role=role,
            extra_sets=(f"storage.url={self.tables}",),
        )
        self.servers.append(s)
        return s.start()

    def reader(self) -> Server:
        """A plain server over the shared storage, started after the writers stopped."""
        cfg = self.tmp / "reader.yaml"
        cfg.write_text("bus:\n  kind: memory\nstorage:\n  wal_enabled: false\n")
        s = Server(data_dir=self.tmp / "reader", config=cfg,
                   extra_sets=(f"storage.url={self.tables}",))
        self.servers.append(s)
        return s.start()

    def teardown(self) -> None:
        for s in self.servers:
            s.kill()


@pytest.fixture
def cluster(tmp_path, broker):
    c = Cluster(tmp_path, broker)
    yield c
    c.teardown()


def bus_health(server: Server) -> dict:
    r = requests.get(f"{server.api_url}/health/detailed", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["components"]["bus"]["figures"]


def owned(server: Server) -> set[int]:
    return set(bus_health(server).get("partitions_owned", []))


def wait_until(fn, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def drained(servers: list[Server]) -> bool:
    """Every partition is owned by one of `servers`, and each has committed everything."""
    figures = [bus_health(s) for s in servers]
    parts = [p for f in figures for p in f.get("partitions_owned", [])]
    if sorted(parts) != list(range(PARTITIONS)):
        return False
    for f in figures:
        lags = f.get("consumer_lag", {})
        if f.get("pending_messages", 1) != 0 or any(v != 0 for v in lags.values()):
            return False
    return True


def export_all(server: Server, reqs) -> None:
    for req in reqs:
        server.export_http(req)


def stored(reader: Server, tag: str) -> tuple[int, int]:
    """(rows, distinct (series_id, time)) stored for the dataset `tag`."""
    row = reader.sql_dicts(
        "SELECT count(*) AS n, count(DISTINCT (series_id, time)) AS d "
        f"FROM metrics WHERE service = 'e2e-{tag}'"
    )[0]
    return int(row["n"]), int(row["d"])


def test_all_role_on_kafka_otlp_to_sql(cluster):
    """`--role all` with the Kafka bus: OTLP over HTTP and gRPC ends up in SQL exactly once,
    with its values; health and metrics show the bus."""
    node = cluster.start("all", "all")
    reqs, rows = make_dataset(now_ns(), "kall", metrics=3, series=8, points=4)
    for i, req in enumerate(reqs):
        if i % 2:
            node.export_grpc(req)
        else:
            node.export_http(req)
    node.wait_count("service = 'e2e-kall'", len(rows), timeout=60)
    got = node.sql_dicts(
        "SELECT metric, value FROM metrics WHERE service = 'e2e-kall' ORDER BY metric, time"
    )
    want = sorted((r["metric"], r["value"]) for r in rows)
    assert sorted((g["metric"], g["value"]) for g in got) == want
    assert bus_health(node)["kind"] == "kafka"
    # Health figures are refreshed every second.
    wait_until(lambda: owned(node) == set(range(PARTITIONS)), 10, "every partition owned")
    wait_until(lambda: prom_samples(node.prometheus(), "phoenix_bus_consumer_lag"), 30,
               "consumer lag exported")
    node.stop_clean()


def test_split_roles_store_exactly_once(cluster):
    """One ingest and two processing nodes: the group splits the partitions, a known load is
    stored exactly once (by count and by distinct series and time), and every node's SQL
    (the ingest node's too) sees all of it."""
    ingest = cluster.start("ingest", "ingest")
    p1 = cluster.start("process", "p1")
    p2 = cluster.start("process", "p2")
    wait_until(lambda: owned(p1) and owned(p2)
               and owned(p1) | owned(p2) == set(range(PARTITIONS))
               and not owned(p1) & owned(p2), 60, "partitions split between the two nodes")
    reqs, rows = make_dataset(now_ns(), "ksplit", metrics=4, series=30, points=6)
    export_all(ingest, reqs)
    wait_until(lambda: drained([p1, p2]), 90, "both nodes committed everything")
    # Any node's SQL answers over everything stored: nodes re-list storage every 5 s.
    for node in (ingest, p1, p2):
        node.wait_count("service = 'e2e-ksplit'", len(rows), timeout=30)
    for s in (ingest, p1, p2):
        s.stop_clean()
    assert stored(cluster.reader(), "ksplit") == (len(rows), len(rows))


def test_kill_processing_node_mid_load(cluster):
    """SIGKILL one of two processing nodes while data flows: the other takes over its
    partitions and every datapoint is stored exactly once."""
    ingest = cluster.start("ingest", "ingest")
    p1 = cluster.start("process", "p1")
    p2 = cluster.start("process", "p2")
    wait_until(lambda: owned(p1) and owned(p2), 60, "both nodes own partitions")
    reqs, rows = make_dataset(now_ns(), "kkill", metrics=6, series=20, points=5)
    errors: list[BaseException] = []

    def load():
        try:
            for req in reqs:
                ingest.export_http(req)
                time.sleep(0.3)
        except BaseException as e:  # reported below
            errors.append(e)

    sender = threading.Thread(target=load)
    sender.start()
    time.sleep(0.8)
    assert p2.proc is not None
    p2.proc.kill()
    p2.proc.wait(timeout=10)
    sender.join(timeout=60)
    assert not errors, errors
    wait_until(lambda: owned(p1) == set(range(PARTITIONS)), 60, "survivor owns every partition")
    wait_until(lambda: drained([p1]), 90, "survivor committed everything")
    ingest.stop_clean()
    p1.stop_clean()
    assert stored(cluster.reader(), "kkill") == (len(rows), len(rows))


WINDOW_NS = 2_000_000_000
ROLLUP_PIPELINE = """pipeline:
  processors:
    rollup:
      type: aggregate
      inputs: [otlp]
      window: 2s
      allowed_lateness: 1s
      functions: [count, sum]
  sinks:
    metrics: { inputs: [otlp] }
    metrics_1m: { inputs: [rollup] }
"""


def windowed_load(t0: int, ticks: int, series: int):
    """Gauge `e2e.kwin.g` of `series` series, one request per tick of 0.5 s event time, and the
    expected rollup: {(series, window start): (count, sum)}."""
    reqs, want = [], {}
    for k in range(ticks):
        pts = []
        for s in range(series):
            t = t0 + k * 500_000_000 + s * 1_000
            v = s * 1000 + k + 0.25
            pts.append(number_point(t, v, {"series": s}))
            w = t - t % WINDOW_NS
            c, total = want.get((s, w), (0, 0.0))
            want[(s, w)] = (c + 1, total + v)
        reqs.append(request([gauge("e2e.kwin.g", pts)], "e2e-kwin", {"host.name": "h"}))
    return reqs, want


def sql_int(server: Server, query: str) -> int:
    return int(server.sql_scalar(query) or 0)


def test_kill_processing_nodes_windowed_exactly_once(cluster):
    """Two SIGKILLs of processing nodes (one right after taking over partitions and storing
    files past the commit that open windows hold back) under a windowed pipeline: every raw
    datapoint is stored once, and every (series, window) rollup row exactly once with exact
    values; the survivor skipped rows already stored."""
    cluster.config = kafka_config(cluster.tmp / "kafka.yaml", cluster.broker, cluster.prefix,
                                  ROLLUP_PIPELINE)
    ingest = cluster.start("ingest", "ingest")
    p1 = cluster.start("process", "p1")
    p2 = cluster.start("process", "p2")
    wait_until(lambda: owned(p1) and owned(p2), 60, "both nodes own partitions")
    series, ticks = 24, 40
    t0 = now_ns() - 60_000_000_000
    t0 -= t0 % WINDOW_NS
    reqs, want = windowed_load(t0, ticks, series)
    errors: list[BaseException] = []

    def load():
        try:
            for req in reqs:
                ingest.export_http(req)
                time.sleep(0.25)
        except BaseException as e:  # reported below
            errors.append(e)

    sender = threading.Thread(target=load)
    sender.start()
    time.sleep(3)
    assert p2.proc is not None
    p2.proc.kill()
    p2.proc.wait(timeout=10)
    p3 = cluster.start("process", "p3")
    wait_until(lambda: owned(p3), 60, "the new node owns partitions")
    sender.join(timeout=60)
    assert not errors, errors
    # Open windows hold commits back while `metrics` files (1 s flushes) go past them: the
    # successor of p3 must skip those rows.
    time.sleep(3)
    p3.proc.kill()
    p3.proc.wait(timeout=10)
    # Far-later points on many series push every partition's watermark past the load.
    closer = [number_point(t0 + (ticks + 20) * 500_000_000, 1.0, {"closer": i}) for i in range(64)]
    ingest.export_http(request([gauge("e2e.kwin.closer", closer)], "e2e-kwin", {"host.name": "h"}))
    wait_until(lambda: owned(p1) == set(range(PARTITIONS)), 60, "survivor owns every partition")
    windows = len(want)
    wait_until(
        lambda: sql_int(p1, "SELECT count(*) FROM metrics_1m WHERE metric = 'e2e.kwin.g.count'")
        >= windows, 90, "every window stored",
    )
    wait_until(lambda: p1.count("metric = 'e2e.kwin.g'") >= series * ticks, 60, "every point stored")
    skipped = sum(v for _, v in prom_samples(p1.prometheus(), "phoenix_storage_rows_skipped_total"))
    ingest.stop_clean()
    p1.stop_clean()
    reader = cluster.reader()
    row = reader.sql_dicts(
        "SELECT count(*) AS n, count(DISTINCT (series_id, time)) AS d "
        "FROM metrics WHERE metric = 'e2e.kwin.g'"
    )[0]
    assert (int(row["n"]), int(row["d"])) == (series * ticks, series * ticks)
    got: dict = {}
    for r in reader.sql_dicts(
        "SELECT metric, attributes['series'] AS s, CAST(time AS BIGINT) AS w, value "
        "FROM metrics_1m WHERE metric IN ('e2e.kwin.g.count', 'e2e.kwin.g.sum')"
    ):
        key = (int(r["s"]), int(r["w"]))
        got.setdefault(key, {}).setdefault(r["metric"], []).append(float(r["value"]))
    assert set(got) == set(want)
    for key, (count, total) in want.items():
        assert got[key] == {"e2e.kwin.g.count": [float(count)], "e2e.kwin.g.sum": [total]}, key
    assert skipped > 0, "the kills did not make any node read stored rows again"


def test_poison_message_goes_to_dead_letters(cluster, broker):
    """A message that is not an Arrow payload is counted as a dead letter and processing goes
    on with the next messages."""
    node = cluster.start("all", "all")
    broker.produce_raw(f"{cluster.prefix}ingest", "definitely not arrow")
    wait_until(
        lambda: sum(v for _, v in prom_samples(node.prometheus(), "phoenix_bus_dead_letters_total")) >= 1,
        60, "dead letter counted",
    )
    reqs, rows = make_dataset(now_ns(), "kpoison", metrics=1, series=3, points=2)
    export_all(node, reqs)
    node.wait_count("service = 'e2e-kpoison'", len(rows), timeout=60)
    samples = prom_samples(node.prometheus(), "phoenix_bus_dead_letters_total")
    assert [(labels.get("reason"), v) for labels, v in samples] == [("bad_ipc", 1.0)]
    node.stop_clean()


def test_broker_restart_loses_nothing_acknowledged(tmp_path):
    """Broker stopped and restarted mid-load (SQLite storage): ingest answers 503 while it is
    down, and with a retrying client every acknowledged datapoint is stored."""
    broker = Broker(port=free_ports(1)[0], state=tmp_path / "broker",
                    storage="sqlite://broker.db").start()
    c = None
    try:
        c = Cluster(tmp_path / "phoenix", broker, delivery_timeout_ms=2000)
        node = c.start("all", "all")
        reqs, rows = make_dataset(now_ns(), "krestart", metrics=6, series=5, points=4)
        refused = 0
        down = False
        for i, req in enumerate(reqs):
            if i == 2:
                broker.stop()
                down = True
            deadline = time.monotonic() + 90
            while True:
                r = node.post_otlp(req.SerializeToString())
                if r.status_code == 200:
                    break
                assert r.status_code == 503, f"{r.status_code}: {r.text[:300]}"
                assert time.monotonic() < deadline, "never accepted after the broker came back"
                refused += 1
                if down and refused >= 2:
                    broker.start()
                    down = False
                time.sleep(0.5)
        assert refused >= 1, "ingest never refused while the broker was down"
        wait_until(lambda: stored_live(node, "krestart") >= len(rows), 120, "every point stored")
        node.stop_clean()
        n, distinct = stored(c.reader(), "krestart")
        assert distinct == len(rows)
        assert n >= len(rows)
    finally:
        if c is not None:
            c.teardown()
        broker.stop()


def stored_live(node: Server, tag: str) -> int:
    return node.count(f"service = 'e2e-{tag}'")
