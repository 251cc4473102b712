"""The benchmark scripts run (on a tiny size: tests never time anything)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_numpy_benchmark_runs_and_reports_the_ratio():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "numpy_step.py"), "--params", "20000", "--repeat", "2"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "ratio adamlib / torch:" in out
    assert "peak extra memory" in out
