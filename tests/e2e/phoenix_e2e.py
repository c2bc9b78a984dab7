"""Helpers for Phoenix's end-to-end tests: run `phoenix serve`, query it, send OTLP to it.

Everything here talks to the server only through the public contract (CLI flags, ports,
endpoints, SQL columns; see CONTRACT.md). Every wait is bounded.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

REPO = Path(__file__).resolve().parents[2]

PROTOBUF = "application/x-protobuf"
GRPC_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

# Server lifecycle bounds (seconds).
HEALTH_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def phoenix_bin() -> Path:
    """The `phoenix` binary under test: $PHOENIX_BIN, else the debug build in CARGO_TARGET_DIR."""
    env = os.environ.get("PHOENIX_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/phoenix/target")
    return Path(target) / "debug" / "phoenix"


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports that were free a moment ago (held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SqlError(AssertionError):
    """`POST /api/v1/sql` answered something other than 200."""

    def __init__(self, status: int, body: str):
        super().__init__(f"SQL API answered {status}: {body[:2000]}")
        self.status = status
        self.body = body


@dataclass
class Server:
    """One `phoenix serve` process with its own ports and data directory."""

    data_dir: Path
    flush_interval_secs: int = 1
    extra_sets: tuple[str, ...] = ()
    config: Path | None = None  # passed as `--config`; the `--set`s above still apply on top
    # Environment overrides for the process; a None value removes an inherited variable.
    env: dict[str, str | None] = field(default_factory=dict)
    grpc_port: int = 0
    http_port: int = 0
    api_port: int = 0
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)
    starts: int = 0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.grpc_port and self.http_port and self.api_port):
            self.grpc_port, self.http_port, self.api_port = free_ports(3)

    # ---- addresses -------------------------------------------------------------------------

    @property
    def tables_dir(self) -> Path:
        """`storage.url`: where the server writes each table's Parquet files."""
        return self.data_dir / "tables"

    @property
    def metrics_dir(self) -> Path:
        """Parquet files of the `metrics` table (`{storage.url}/metrics/`)."""
        return self.tables_dir / "metrics"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/metrics"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def args(self) -> list[str]:
        """The exact `phoenix serve` command line."""
        sets = [
            f"ingest.grpc_listen=127.0.0.1:{self.grpc_port}",
            f"ingest.http_listen=127.0.0.1:{self.http_port}",
            f"api.listen=127.0.0.1:{self.api_port}",
            f"storage.url={self.tables_dir}",
            f"storage.data_dir={self.data_dir}",
            f"storage.flush_interval_secs={self.flush_interval_secs}",
            *self.extra_sets,
        ]
        cmd = [str(phoenix_bin()), "serve"]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        for s in sets:
            cmd += ["--set", s]
        return cmd

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> "Server":
        """Starts the process and waits (bounded) until `GET /health` answers 200."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.starts += 1
        log = self.data_dir / f"phoenix-stderr-{self.starts}.log"
        self.logs.append(log)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                self.args(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
            )
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        """Polls `GET /health` until 200; fails with the server log if it dies or times out."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"phoenix serve exited with {rc} during startup:\n{self.log_tail()}"
                )
            try:
                r = requests.get(f"{self.api_url}/health", timeout=2)
                if r.status_code == 200:
                    return
                last = f"status {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        raise AssertionError(
            f"GET /health not 200 within {timeout}s ({last}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM; returns the exit code; fails if the process does not exit within `timeout`."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"phoenix serve did not exit within {timeout}s of SIGTERM:\n{self.log_tail()}"
                )
        return self.proc.returncode

    def stop_clean(self) -> None:
        """SIGTERM and require exit code 0 (a clean, flushed shutdown)."""
        rc = self.stop()
        assert rc == 0, f"phoenix serve exited with {rc} after SIGTERM:\n{self.log_tail()}"

    def restart(self) -> "Server":
        """Clean stop, then start again on the same ports and data directory."""
        self.stop_clean()
        return self.start()

    def kill(self) -> None:
        """Best-effort teardown: SIGTERM, then SIGKILL; never raises."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 150) -> str:
        out = []
        for log in self.logs[-2:]:
            try:
                text = log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            out.append(f"--- {log.name} (last {lines} lines) ---")
            out.extend(text[-lines:])
        return "\n".join(out)

    # ---- HTTP API ----------------------------------------------------------------------------

    def sql_response(self, query: str, accept: str | None = None, timeout: float = 30) -> requests.Response:
        """Raw `POST /api/v1/sql` response."""
        headers = {"Accept": accept} if accept else {}
        return requests.post(
            f"{self.api_url}/api/v1/sql", json={"query": query}, headers=headers, timeout=timeout
        )

    def sql(self, query: str) -> dict[str, Any]:
        """`POST /api/v1/sql` as JSON: `{"columns": [{"name","type"}], "rows": [[...]]}`."""
        r = self.sql_response(query)
        if r.status_code != 200:
            raise SqlError(r.status_code, r.text)
        body = r.json()
        assert set(body) >= {"columns", "rows"}, body
        return body

    def sql_dicts(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query as dicts keyed by column name."""
        body = self.sql(query)
        names = [c["name"] for c in body["columns"]]
        return [dict(zip(names, row)) for row in body["rows"]]

    def sql_scalar(self, query: str) -> Any:
        rows = self.sql(query)["rows"]
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def count(self, where: str = "TRUE") -> int:
        return int(self.sql_scalar(f"SELECT count(*) FROM metrics WHERE {where}"))

    def wait_count(self, where: str, expected: int, timeout: float) -> float:
        """Polls until `count(*) WHERE where` equals `expected`; returns seconds taken."""
        start = time.monotonic()
        deadline = start + timeout
        n = -1
        while True:
            n = self.count(where)
            if n == expected:
                return time.monotonic() - start
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"count(*) WHERE {where} is {n}, expected {expected} within {timeout}s"
                )
            time.sleep(0.05)

    def health(self) -> int:
        return requests.get(f"{self.api_url}/health", timeout=5).status_code

    def prometheus(self) -> str:
        r = requests.get(f"{self.api_url}/metrics", timeout=10)
        assert r.status_code == 200, r.text
        return r.text

    # ---- OTLP ---------------------------------------------------------------------------------

    def post_otlp(
        self,
        body: bytes,
        content_type: str = PROTOBUF,
        encoding: str | None = None,
        timeout: float = 30,
    ) -> requests.Response:
        """`POST /v1/metrics` with a raw body."""
        headers = {"Content-Type": content_type}
        if encoding:
            headers["Content-Encoding"] = encoding
        return requests.post(self.otlp_http_url, data=body, headers=headers, timeout=timeout)

    def export_http(self, req: ms_pb2.ExportMetricsServiceRequest, gzipped: bool = False) -> ms_pb2.ExportMetricsServiceResponse:
        """Sends a request over OTLP/HTTP protobuf; requires 200 and returns the parsed response."""
        body = req.SerializeToString()
        r = self.post_otlp(gzip.compress(body) if gzipped else body, encoding="gzip" if gzipped else None)
        assert r.status_code == 200, f"{r.status_code}: {r.text[:500]}"
        return parse_export_response(r)

    def grpc_channel(self):
        import grpc

        return grpc.insecure_channel(
            self.grpc_target,
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ],
        )

    def export_grpc_raw(self, body: bytes, timeout: float = 30) -> ms_pb2.ExportMetricsServiceResponse:
        """Calls MetricsService/Export with raw request bytes (may be invalid protobuf)."""
        with self.grpc_channel() as ch:
            call = ch.unary_unary(
                GRPC_METHOD,
                request_serializer=None,
                response_deserializer=ms_pb2.ExportMetricsServiceResponse.FromString,
            )
            return call(body, timeout=timeout)

    def export_grpc(self, req: ms_pb2.ExportMetricsServiceRequest, timeout: float = 30) -> ms_pb2.ExportMetricsServiceResponse:
        return self.export_grpc_raw(req.SerializeToString(), timeout=timeout)


def parse_export_response(r: requests.Response) -> ms_pb2.ExportMetricsServiceResponse:
    """Parses an OTLP/HTTP response body (protobuf, or JSON when the server answered JSON)."""
    ctype = r.headers.get("Content-Type", "")
    resp = ms_pb2.ExportMetricsServiceResponse()
    if "json" in ctype:
        from google.protobuf import json_format

        if r.content.strip():
            json_format.Parse(r.content, resp, ignore_unknown_fields=True)
    else:
        resp.ParseFromString(r.content)
    return resp


# ---- OTLP request builders ----------------------------------------------------------------------


def any_value(v: Any) -> common_pb2.AnyValue:
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, int):
        return common_pb2.AnyValue(int_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    return common_pb2.AnyValue(string_value=str(v))


def kvs(attrs: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def render(v: Any) -> str:
    """How Phoenix renders an attribute value as a string (contract: int decimal, bool true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def rendered(attrs: dict[str, Any]) -> dict[str, str]:
    return {k: render(v) for k, v in attrs.items()}


def request(
    metrics: Iterable[metrics_pb2.Metric],
    service: str | None,
    resource_attrs: dict[str, Any] | None = None,
    scope: str = "phoenix.e2e",
) -> ms_pb2.ExportMetricsServiceRequest:
    """One ResourceMetrics / one ScopeMetrics holding `metrics`."""
    attrs = dict(resource_attrs or {})
    if service is not None:
        attrs = {"service.name": service, **attrs}
    return ms_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource_pb2.Resource(attributes=kvs(attrs)),
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=common_pb2.InstrumentationScope(name=scope, version="1.0"),
                        metrics=list(metrics),
                    )
                ],
            )
        ]
    )


def number_point(t_ns: int, value: float | int, attrs: dict[str, Any], start_ns: int = 0) -> metrics_pb2.NumberDataPoint:
    p = metrics_pb2.NumberDataPoint(
        time_unix_nano=t_ns, start_time_unix_nano=start_ns, attributes=kvs(attrs)
    )
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def gauge(name: str, points: list[metrics_pb2.NumberDataPoint], unit: str = "1") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, gauge=metrics_pb2.Gauge(data_points=points))


def cumulative_sum(name: str, points: list[metrics_pb2.NumberDataPoint], unit: str = "1") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        sum=metrics_pb2.Sum(
            data_points=points,
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True,
        ),
    )


def now_ns() -> int:
    return time.time_ns()


def rfc3339_ns(t_ns: int) -> str:
    """`2026-11-22T00:00:00.123456789Z` for a Unix-nanosecond timestamp."""
    secs, frac = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def map_as_dict(v: Any) -> dict[str, str] | None:
    """A Map<Utf8,Utf8> as returned by any reader (JSON object, list of pairs, dict) → dict."""
    if v is None:
        return None
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, list):
        out = {}
        for item in v:
            if isinstance(item, dict):
                out[item.get("key", item.get("keys"))] = item.get("value", item.get("values"))
            else:
                k, val = item
                out[k] = val
        return out
    raise AssertionError(f"not a map: {v!r}")


def retry_until(fn: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Calls `fn` until it returns a truthy value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def prom_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one metric family in Prometheus text format: (labels, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        labels: dict[str, str] = {}
        if line.startswith(name + "{"):
            inner, _, rest = line[len(name) + 1 :].partition("} ")
            for part in _split_labels(inner):
                k, _, v = part.partition("=")
                labels[k.strip()] = json.loads(v)
        else:
            rest = line[len(name) + 1 :]
        out.append((labels, float(rest.split()[0])))
    return out


def _split_labels(inner: str) -> list[str]:
    parts, cur, quoted, esc = [], "", False, False
    for ch in inner:
        if esc:
            cur += ch
            esc = False
            continue
        if ch == "\\":
            cur += ch
            esc = True
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            if cur.strip():
                parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


# ---- a deterministic dataset ----------------------------------------------------------------------


def make_dataset(
    t0: int, tag: str, metrics: int = 3, series: int = 4, points: int = 5
) -> tuple[list[ms_pb2.ExportMetricsServiceRequest], list[dict[str, Any]]]:
    """Gauges and cumulative sums with known values: (requests, expected rows).

    Expected rows carry `t` (ns), `metric`, `attributes` (rendered) and `value`; one request per
    metric, service `e2e-{tag}`.
    """
    reqs, rows = [], []
    for m in range(metrics):
        name = f"e2e.{tag}.m{m}"
        pts = []
        for s in range(series):
            attrs = {"series": s, "even": s % 2 == 0, "zone": f"z{s % 3}"}
            for p in range(points):
                t = t0 + p * 1_000_000_000 + s * 1_000 + m
                v = m * 1000 + s * 10 + p + 0.5 if m % 2 == 0 else m * 1000 + s * 10 + p
                pts.append(number_point(t, v, attrs, start_ns=t0 - 1 if m % 2 else 0))
                rows.append({"t": t, "metric": name, "attributes": rendered(attrs), "value": float(v)})
        metric = cumulative_sum(name, pts) if m % 2 else gauge(name, pts)
        reqs.append(request([metric], f"e2e-{tag}", {"host.name": "dataset-host"}))
    return reqs, rows


def canonical(rows: Iterable[dict[str, Any]]) -> list[tuple]:
    """Sorted (t, metric, attributes, value) tuples, comparable across readers."""
    return sorted(
        (int(r["t"]), r["metric"], tuple(sorted(map_as_dict(r["attributes"]).items())), float(r["value"]))
        for r in rows
    )
