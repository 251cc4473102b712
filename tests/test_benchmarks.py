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


def test_population_benchmark_runs_and_reports_each_size():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "population.py"), "--sizes", "1", "3", "--steps", "3",
         "--singles", "1", "--mechanisms", "--mechanism-size", "2"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["3"])]
    assert [r[0] for r in rows] == ["1", "3"] and all(len(r) == 6 for r in rows)
    assert "single runs one after another:" in out and "target: K = 64" in out
    assert "torch.func vmap(grad)" in out


def test_torch_benchmark_runs_and_reports_auto_s_choice_and_the_targets():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "torch_step.py"), "--sizes", "2e3:4,3e3", "--rounds", "2",
         "--calls", "1", "--no-eager", "--clock", "cpu", "--target-rounds", "3", "--no-cold"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "2,112 parameters in 4 tensors: impl='auto' chose eager; first step adamlib" in out
    assert "adamlib impl=compiled" in out  # timed too, since auto chose the eager path
    rows = [line.split() for line in out.splitlines() if line.split()[:2] in (["2,112", "4"], ["4,016", "51"])]
    assert len(rows) == 10 and all(r[-2].endswith("x") for r in rows)  # 5 optimizers per size, a ratio each
    assert out.count("the for-loop's time (<= 1)") == 2 and "parameter-sized temporary" in out
