"""Fixtures for Phoenix's end-to-end tests: a running `phoenix serve` on free ports.

`phoenix` (module scope) is one server shared by a test module; parametrize it indirectly with
a dict of `Server` options, e.g.
`@pytest.mark.parametrize("phoenix", [{"flush_interval_secs": 60}], indirect=True)`.
`phoenix_factory` (function scope) starts extra servers a test owns.
When a test fails, the tail of every live server's stderr is attached to the report.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from phoenix_e2e import Server, phoenix_bin

_LIVE: list[Server] = []


def pytest_configure(config):
    b = phoenix_bin()
    if not b.is_file():
        raise pytest.UsageError(
            f"phoenix binary not found at {b}; build it (cargo build -p phoenix) or set PHOENIX_BIN"
        )


def _new_server(tmp: Path, opts: dict | None) -> Server:
    server = Server(data_dir=tmp, **(opts or {}))
    _LIVE.append(server)
    try:
        server.start()
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
