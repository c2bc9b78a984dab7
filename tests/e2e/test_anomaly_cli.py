"""`phoenix anomaly score`: offline scoring of a `timestamp,value` CSV (issue 7)."""

from __future__ import annotations

import csv
import io
import math
import random
import subprocess
from pathlib import Path

import pytest

from phoenix_e2e import phoenix_bin

SPIKE_ROW = 450  # 0-based data row


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(phoenix_bin()), *args], capture_output=True, text=True, timeout=timeout)


def series_csv(n: int = 600) -> str:
    """A daily-seasonal series (5-minute points, NAB-style dates) with Gaussian noise and one spike."""
    rng = random.Random(42)
    lines = ["timestamp,value"]
    for i in range(n):
        minutes = i * 5
        ts = f"2024-03-{1 + minutes // 1440:02d} {minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"
        v = 100 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 1.5)
        if i == SPIKE_ROW:
            v += 25
        lines.append(f"{ts},{v:.3f}")
    return "\n".join(lines) + "\n"


def test_spike_gets_the_top_score(tmp_path: Path):
    """Scenario: a seasonal series with one injected spike, scored to a file and to stdout.
    Guarantee: exit 0, one row per input row with the input echoed, scores in [0, 1], the spike has
    the highest score, and stdout equals the file (same input, same output)."""
    src = tmp_path / "series.csv"
    src.write_text(series_csv())
    out = tmp_path / "scored.csv"
    p = run("anomaly", "score", "--input", str(src), "--output", str(out))
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(out.read_text())))
    inp = list(csv.reader(io.StringIO(src.read_text())))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == len(inp)
    assert [r[:2] for r in rows[1:]] == inp[1:]
    scores = [float(r[2]) for r in rows[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    top = max(range(len(scores)), key=scores.__getitem__)
    assert top == SPIKE_ROW, f"top score {scores[top]} at row {top}, spike scored {scores[SPIKE_ROW]}"
    assert scores[SPIKE_ROW] >= 0.5
    again = run("anomaly", "score", "--input", str(src))
    assert again.returncode == 0, again.stderr
    assert again.stdout == out.read_text()


@pytest.mark.parametrize(
    "body, line, needle",
    [
        ("1,2\n2,3\n", 1, "header"),
        ("timestamp,value\n1,2\n2,3\n3,abc\n4,5\n", 4, "abc"),
        ("timestamp,value\n10,1\n20,2\n15,3\n", 4, "earlier"),
        ("timestamp,value\n1,2\n2,NaN\n", 3, "not finite"),
    ],
    ids=["missing-header", "unparsable-value", "non-monotonic", "nan"],
)
def test_bad_input_names_the_line(tmp_path: Path, body: str, line: int, needle: str):
    """Scenario: a CSV with one kind of bad input. Guarantee: exit 1, one readable stderr line
    naming the file, the line number and the problem, and no output file."""
    src = tmp_path / "bad.csv"
    src.write_text(body)
    out = tmp_path / "out.csv"
    p = run("anomaly", "score", "--input", str(src), "--output", str(out))
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert f"line {line}" in lines[0] and needle in lines[0] and "bad.csv" in lines[0], lines[0]
    assert not out.exists()
