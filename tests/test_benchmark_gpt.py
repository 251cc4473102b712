"""benchmarks/population_gpt.py runs (on a tiny size: tests never time anything)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_gpt_population_benchmark_runs_and_reports_the_ratio():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "population_gpt.py"), "--size", "2", "--steps", "2",
         "--batch-size", "2", "--repeat", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "throughput ratio (population / single runs):" in out
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["singles", "population"]
