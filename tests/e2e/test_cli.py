"""The `phoenix` CLI: `sql` output formats and exit codes, `config validate`, bad `serve` config."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from phoenix_e2e import REPO, free_ports, gauge, now_ns, number_point, phoenix_bin, request

QUERY = "SELECT metric, value FROM metrics WHERE metric = 'e2e.cli' ORDER BY value"
EXPECTED = [("e2e.cli", 1.5), ("e2e.cli", 2.5)]


def run(*args: str, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(phoenix_bin()), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def stderr_lines(p: subprocess.CompletedProcess) -> list[str]:
    return [line for line in p.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def loaded(phoenix):
    t = now_ns()
    req = request([gauge("e2e.cli", [number_point(t, 2.5, {"i": 0}), number_point(t + 1, 1.5, {"i": 1})])], "e2e-cli")
    phoenix.export_http(req)
    phoenix.wait_count("metric = 'e2e.cli'", 2, timeout=5)
    return phoenix


def _json_rows(out: str) -> list[tuple]:
    """Rows from `--format json` output: the API's `{"columns","rows"}` or a list of objects."""
    doc = json.loads(out)
    if isinstance(doc, dict):
        names = [c["name"] for c in doc["columns"]]
        return [tuple(dict(zip(names, r))[k] for k in ("metric", "value")) for r in doc["rows"]]
    return [(r["metric"], r["value"]) for r in doc]


def test_sql_json(loaded):
    """Scenario: `phoenix sql QUERY --server URL --format json`. Guarantee: exit 0, JSON with the rows."""
    p = run("sql", QUERY, "--server", loaded.api_url, "--format", "json")
    assert p.returncode == 0, p.stderr
    assert _json_rows(p.stdout) == EXPECTED


def test_sql_csv(loaded):
    """Scenario: `--format csv`. Guarantee: exit 0, a header row then the rows."""
    p = run("sql", QUERY, "--server", loaded.api_url, "--format", "csv")
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0] == ["metric", "value"]
    assert [(m, float(v)) for m, v in rows[1:]] == EXPECTED


def test_sql_table(loaded):
    """Scenario: `--format table`. Guarantee: exit 0; a header line naming the columns, then one
    line per row showing its values, in order."""
    p = run("sql", QUERY, "--server", loaded.api_url, "--format", "table")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "metric" in line and "value" in line)
    data = [line for line in lines[header + 1 :] if "e2e.cli" in line]
    assert len(data) == 2, p.stdout
    assert "1.5" in data[0] and "2.5" in data[1], p.stdout


def test_sql_bad_query_exits_1(loaded):
    """Scenario: `phoenix sql` with a query the server refuses. Guarantee: exit 1 and exactly one
    readable error line on stderr, nothing on stdout."""
    p = run("sql", "SELEC nonsense FROM", "--server", loaded.api_url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert len(stderr_lines(p)) == 1, p.stderr
    assert p.stdout.strip() == ""


def test_sql_unreachable_server_exits_2():
    """Scenario: `phoenix sql` against a port nobody listens on. Guarantee: exit 2 (runtime
    failure) with an error on stderr."""
    (port,) = free_ports(1)
    p = run("sql", "SELECT 1", "--server", f"http://127.0.0.1:{port}", timeout=60)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert stderr_lines(p)


@pytest.fixture
def valid_config(tmp_path):
    """configs/phoenix.yaml if present, else a minimal valid config."""
    f = REPO / "configs" / "phoenix.yaml"
    if f.is_file():
        return f
    f = tmp_path / "phoenix.yaml"
    f.write_text(
        "ingest:\n  grpc_listen: 127.0.0.1:4317\n  http_listen: 127.0.0.1:4318\n"
        "api:\n  listen: 127.0.0.1:8080\nstorage:\n  url: ./data/tables\n  data_dir: ./data\n"
    )
    return f


def test_config_validate_ok(valid_config):
    """Scenario: `phoenix config validate` on the shipped config. Guarantee: exit 0."""
    p = run("config", "validate", str(valid_config))
    assert p.returncode == 0, p.stderr


def test_config_validate_unknown_key(tmp_path):
    """Scenario: a config with a misspelt key. Guarantee: exit 1; the error names the key path."""
    f = tmp_path / "bad.yaml"
    f.write_text("ingest:\n  grpc_lisen: 127.0.0.1:4317\n")
    p = run("config", "validate", str(f))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert any("ingest" in line and "grpc_lisen" in line for line in stderr_lines(p)), p.stderr


def test_config_validate_lists_every_error(tmp_path):
    """Scenario: a config with three bad values. Guarantee: exit 1 and one stderr line per error,
    each naming its key path."""
    f = tmp_path / "bad.yaml"
    f.write_text(
        "ingest:\n  grpc_listen: not-an-address\napi:\n  listen: 127.0.0.1:99999\n"
        "storage:\n  zstd_level: 99\n"
    )
    p = run("config", "validate", str(f))
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = stderr_lines(p)
    for key in ("ingest.grpc_listen", "api.listen", "storage.zstd_level"):
        hits = [line for line in lines if key in line]
        assert hits, f"{key} not named in stderr:\n{p.stderr}"
    assert len({next(i for i, line in enumerate(lines) if key in line)
                for key in ("ingest.grpc_listen", "api.listen", "storage.zstd_level")}) == 3, p.stderr


def test_config_validate_missing_file(tmp_path):
    """Scenario: `config validate` on a file that does not exist. Guarantee: exit 1 with an error."""
    p = run("config", "validate", str(tmp_path / "nope.yaml"))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert stderr_lines(p)


def test_serve_bad_override_exits_1(tmp_path):
    """Scenario: `phoenix serve --set api.listen=nope`. Guarantee: exits 1 at once (starts nothing)
    with an error naming `api.listen`."""
    p = run("serve", "--set", "api.listen=nope", "--set", f"storage.data_dir={tmp_path}",
            "--set", f"storage.url={tmp_path}/tables", timeout=30, cwd=tmp_path)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert any("api.listen" in line for line in stderr_lines(p)), p.stderr
