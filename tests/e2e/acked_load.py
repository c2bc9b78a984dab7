"""A steady OTLP/HTTP sender that records exactly which datapoints the server acknowledged.

Every point is new (never retried: a retry after an unknown outcome may legitimately be stored
twice), carries a unique integer value, and belongs to metric `e2e.acked`. A request counts as
acknowledged only on HTTP 200 with no rejected points; 503 and connection errors are counted as
retryable and the next request carries fresh points.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from phoenix_e2e import PROTOBUF, gauge, now_ns, number_point, parse_export_response, request

METRIC = "e2e.acked"


@dataclass
class AckedLoad:
    """Sends `points_per_request` points every `interval_s` to `url()` on a thread."""

    url: callable
    points_per_request: int = 200
    interval_s: float = 0.02
    series: int = 50
    acked: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    _next: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "AckedLoad":
        self._thread = threading.Thread(target=self._run, name="acked-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def wait_acked(self, n: int, timeout: float) -> None:
        """Waits (bounded) until at least `n` more points are acknowledged than now."""
        target = len(self.acked) + n
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {target} acked; {dict(self.outcomes)}"
            time.sleep(0.05)

    def _request(self) -> tuple[bytes, list[int]]:
        t = now_ns()
        values = list(range(self._next, self._next + self.points_per_request))
        self._next += self.points_per_request
        points = [
            # A series never repeats a timestamp: the time moves with the value.
            number_point(t + v, v, {"s": f"s{v % self.series}"})
            for v in values
        ]
        return request([gauge(METRIC, points)], service="acked").SerializeToString(), values

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            body, values = self._request()
            self.sent.extend(values)
            try:
                r = session.post(self.url(), data=body, headers={"Content-Type": PROTOBUF}, timeout=10)
            except requests.RequestException:
                self.outcomes["connection_error"] += 1
                session = requests.Session()
                time.sleep(0.1)
                continue
            if r.status_code == 200 and parse_export_response(r).partial_success.rejected_data_points == 0:
                self.acked.extend(values)
                self.outcomes["acked"] += 1
            else:
                self.outcomes[f"http_{r.status_code}"] += 1
                time.sleep(0.05)
            time.sleep(self.interval_s)


def stored_values(server) -> Counter:
    """How many times each value of METRIC is stored (SQL over files and buffers)."""
    rows = server.sql(f"SELECT CAST(value AS BIGINT) AS v FROM metrics WHERE metric = '{METRIC}'")["rows"]
    return Counter(int(r[0]) for r in rows)


def wait_exactly_once(server, load: AckedLoad, timeout: float = 60) -> Counter:
    """Polls SQL until every acknowledged value is visible (an acknowledged point may still be
    on its way through the graph when the sender stops, e.g. behind a WAL replay), then checks
    exactly-once. Returns the stored counts."""
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_values(server)
        if all(stored.get(v, 0) for v in load.acked) or time.monotonic() >= deadline:
            assert_exactly_once(stored, load)
            return stored
        time.sleep(0.5)


def assert_exactly_once(stored: Counter, load: AckedLoad) -> None:
    """Every acknowledged value is stored exactly once; nothing is stored twice or unsent."""
    missing = [v for v in load.acked if stored.get(v, 0) == 0]
    dupes = {v: c for v, c in stored.items() if c > 1}
    unsent = set(stored) - set(load.sent)
    assert not missing, f"{len(missing)} acknowledged points lost, e.g. {missing[:10]}"
    assert not dupes, f"{len(dupes)} points stored more than once, e.g. {list(dupes.items())[:10]}"
    assert not unsent, f"stored values never sent: {sorted(unsent)[:10]}"
