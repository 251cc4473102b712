"""benchmarks/population_gpt.py runs (on a tiny size: tests never time anything)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_gpt_population_benchmark_runs_and_reports_the_ratio():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "population_gpt.py"), "--size", "2", "--steps", "2",
         "--batch-size", "2", "3", "--repeat", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("load average before:") and lines[-2].startswith("load average after:")
    headers = [i for i, line in enumerate(lines) if line.startswith("GPT (")]
    assert ["batch 2 x" in lines[headers[0]], "batch 3 x" in lines[headers[1]]] == [True, True]
    for i in headers:  # every batch size measured: both sides and their ratio
        assert [line.split()[0] for line in lines[i + 1 : i + 3]] == ["singles", "population"]
        assert lines[i + 3].startswith("throughput ratio (population / single runs):")
