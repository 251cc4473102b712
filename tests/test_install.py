"""adamlib installs as a course dependency: its wheel, built from the sources, installs into
a fresh virtual environment (no system site-packages, no torch) with NumPy as its only
dependency, reports its version, and runs Adam and the grader.

Marked ``install``: it builds the wheel with this environment's setuptools (no build
isolation, nothing downloaded for the build) and installs NumPy into the new environment
through pip's configured package index. About 30 s.
"""

import email
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import adamlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.install

CHECK = """
import importlib.metadata, importlib.util, sys
import numpy as np
import adamlib
from adamlib.testing import check_adam_step

assert adamlib.__file__.startswith(sys.prefix), adamlib.__file__   # the installed copy
assert adamlib.__version__ == importlib.metadata.version("adamlib")
theta, m, v = adamlib.adam_step(np.array([1.0]), np.array([0.5]), np.zeros(1), np.zeros(1),
                                t=1, lr=0.1)
assert abs(theta[0] - 0.9) < 1e-6  # the first step moves by about lr
check_adam_step(adamlib.adam_step)
assert importlib.util.find_spec("torch") is None and "torch" not in sys.modules
print(adamlib.__version__)
"""


def run(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no path to the sources
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=env)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_into_a_fresh_venv_and_runs_without_torch(tmp_path):
    # Build from a copy of what a clone holds, so that the build leaves nothing in the tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "adamlib", src / "adamlib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", wheels, src)
    (wheel,) = wheels.glob("adamlib-*.whl")

    # The wheel's metadata: the version of adamlib/__init__.py, NumPy the one dependency.
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_string(zf.read(meta).decode())
        assert not any(n.startswith(("tests/", "book/")) for n in zf.namelist())
    version = adamlib.__version__
    assert metadata["Version"] == version
    requires = metadata.get_all("Requires-Dist")
    assert [r for r in requires if "extra ==" not in r] == ["numpy>=1.26"]
    assert {"torch", "book"} <= set(metadata.get_all("Provides-Extra"))

    # A fresh environment without system site-packages: NumPy from the index, then the wheel.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        f"numpy=={np.__version__}", wheel)
    assert run(python, "-c", CHECK, cwd=tmp_path).strip() == version
