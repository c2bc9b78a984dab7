"""Fixtures for Phoenix's end-to-end tests: a running `phoenix serve` on free ports.

`phoenix` (module scope) is one server shared by a test module; parametrize it indirectly with
a dict of `Server` options, e.g.
`@pytest.mark.parametrize("phoenix", [{"flush_interval_secs": 60}], indirect=True)`.
`phoenix_factory` (function scope) starts extra servers a test owns.
When a test fails, the tail of every live server's stderr is attached to the report.

`PHOENIX_E2E_BUS=kafka` (with `PHOENIX_KAFKA_BROKERS`) runs these servers with the Kafka bus
(`--role all`, a fresh topic prefix per server) and waits until they own every partition, so
the same tests check the Kafka path (scripts/test.sh does this for the OTLP-to-SQL files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from phoenix_e2e import Server, phoenix_bin

_LIVE: list[Server] = []


def pytest_configure(config):
    b = phoenix_bin()
    if not b.is_file():
        raise pytest.UsageError(
            f"phoenix binary not found at {b}; build it (cargo build -p phoenix) or set PHOENIX_BIN"
        )


E2E_BUS = os.environ.get("PHOENIX_E2E_BUS", "memory")
KAFKA_PARTITIONS = 2


def _bus_opts(opts: dict | None) -> dict:
    """`opts` with the Kafka bus settings added when PHOENIX_E2E_BUS=kafka."""
    opts = dict(opts or {})
    if E2E_BUS != "kafka":
        return opts
    brokers = os.environ.get("PHOENIX_KAFKA_BROKERS")
    if not brokers:
        raise pytest.UsageError("PHOENIX_E2E_BUS=kafka needs PHOENIX_KAFKA_BROKERS")
    prefix = f"e2e-{uuid.uuid4().hex[:10]}."
    opts["extra_sets"] = (
        "bus.kind=kafka",
        f"bus.kafka.brokers={brokers}",
        f"bus.kafka.topic_prefix={prefix}",
        f"bus.kafka.group_id={prefix}process",
        f"bus.kafka.partitions={KAFKA_PARTITIONS}",
    ) + tuple(opts.get("extra_sets", ()))
    return opts


def _wait_partitions(server: Server, timeout: float = 60) -> None:
    """In Kafka mode: until the server's consumer owns every partition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.get(f"{server.api_url}/health/detailed", timeout=5)
        bus = r.json().get("components", {}).get("bus", {}).get("figures", {})
        if len(bus.get("partitions_owned", [])) == KAFKA_PARTITIONS:
            return
        time.sleep(0.25)
    raise AssertionError("the Kafka consumer did not get its partitions in time")


def _new_server(tmp: Path, opts: dict | None) -> Server:
    server = Server(data_dir=tmp, **_bus_opts(opts))
    _LIVE.append(server)
    try:
        server.start()
        if E2E_BUS == "kafka":
            _wait_partitions(server)
    except BaseException:
        server.kill()
        _LIVE.remove(server)
        raise
    return server


def _teardown(server: Server) -> None:
    server.kill()
    if server in _LIVE:
        _LIVE.remove(server)


@pytest.fixture(scope="module")
def phoenix(request, tmp_path_factory):
    """A `phoenix serve` shared by one test module (flush interval 1 s unless parametrized)."""
    opts = getattr(request, "param", None)
    server = _new_server(tmp_path_factory.mktemp("phoenix"), opts)
    yield server
    _teardown(server)


@pytest.fixture
def phoenix_factory(tmp_path):
    """Starts servers owned by one test: `phoenix_factory(flush_interval_secs=1, extra_sets=())`."""
    made: list[Server] = []

    def make(**opts) -> Server:
        d = tmp_path / f"server{len(made)}"
        s = _new_server(d, opts)
        made.append(s)
        return s

    yield make
    for s in made:
        _teardown(s)


@pytest.fixture(scope="session")
def scratch_dir():
    """A scratch directory for files the tests write (configs, bombs)."""
    d = Path(tempfile.mkdtemp(prefix="phoenix-e2e-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for i, server in enumerate(list(_LIVE)):
            report.sections.append((f"phoenix server {i} stderr ({server.data_dir})", server.log_tail()))
    return report
