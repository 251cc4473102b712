"""Re-execute chapters in place so that their stored outputs are what strict nbval expects.

Usage: .venv/bin/python scripts/execute_notebooks.py [book/chapter.ipynb ...]   (default: all)

Run it after editing a chapter; it prints each notebook's execution time (the budget is
60 s on 2 CPU cores) and fails on the first cell error.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ["ADAMLIB_PROGRESS"] = "0"  # no progress bars in stored outputs (the kernels inherit it)


def execute(path: pathlib.Path) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


def main(paths: list[str]) -> None:
    notebooks = [pathlib.Path(p).resolve() for p in paths] or sorted((ROOT / "book").glob("*.ipynb"))
    for path in notebooks:
        print(f"{path.relative_to(ROOT)}: {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
