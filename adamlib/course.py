"""The lab in a course: set it up in Otter-Grader and grade a folder of submissions.

Needs the ``course`` extra (``pip install "adamlib[course]"``), which brings Otter-Grader;
this module runs its command-line tool, ``otter``, and imports nothing else when imported.

- :func:`assign`: ``otter assign`` on the lab's source notebook
  (``coursework/otter/lab_implement_adam.ipynb``): a student release without solutions
  and an autograder zip.
- :func:`grade`: ``otter run`` on every submitted notebook of a folder (locally, no
  Docker), several at a time; writes ``grades.csv`` (one row per student: total and each
  question's points) and ``feedback/<student>.txt`` (each question's result, with the
  grader's report when it failed), and returns the same as :class:`Grade` objects.

From a shell: ``python -m adamlib.course assign SOURCE DIST`` and
``python -m adamlib.course grade AUTOGRADER_ZIP SUBMISSIONS OUT``.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

__all__ = ["Grade", "assign", "grade"]


@dataclass
class Grade:
    """One student's result: points per question, and the feedback they read."""

    student: str
    points: dict[str, float] = field(default_factory=dict)
    max_points: dict[str, float] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)
    error: str = ""  # set when the submission could not be graded at all

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_points.values())

    def feedback_text(self) -> str:
        """The feedback as a student reads it: each question's result in turn."""
        if self.error:
            return f"{self.student}: not graded: {self.error}\n"
        lines = [f"{self.student}: {self.total:g} of {self.max_total:g} points", ""]
        for q, text in self.feedback.items():
            lines += [f"{q}: {self.points[q]:g} of {self.max_points[q]:g}", text.strip(), ""]
        return "\n".join(lines)


def _otter() -> str:
    exe = shutil.which("otter", path=str(pathlib.Path(sys.executable).parent)) or \
        shutil.which("otter")
    if exe is None:
        raise RuntimeError("otter: not found; install the course extra: "
                           'pip install "adamlib[course]"')
    return exe


def assign(source: str | os.PathLike, dist: str | os.PathLike) -> os.PathLike:
    """Run ``otter assign``: the student release and the autograder of a source notebook.

    Parameters
    ----------
    source : str or os.PathLike
        The Otter source notebook (with its solutions and tests).
    dist : str or os.PathLike
        The folder to write to: ``dist/student/`` holds the notebook to hand out,
        ``dist/autograder/`` the autograder zip.

    Returns
    -------
    os.PathLike
        The autograder zip file (a ``pathlib.Path``).
    """
    source, dist = pathlib.Path(source), pathlib.Path(dist)
    if not source.is_file():
        raise FileNotFoundError(f"source: expected a notebook file, got {source}")
    subprocess.run([_otter(), "assign", str(source.resolve()), str(dist.resolve())],
                   check=True, cwd=source.parent, capture_output=True, text=True)
    zips = sorted((dist / "autograder").glob("*.zip"))
    if not zips:
        raise RuntimeError(f"otter assign wrote no autograder zip under {dist}")
    return zips[-1]


def _grade_one(autograder: pathlib.Path, notebook: pathlib.Path, timeout: float) -> Grade:
    result = Grade(student=notebook.stem)
    with tempfile.TemporaryDirectory() as out:
        try:
            run = subprocess.run([_otter(), "run", "--no-logo", "-a", str(autograder),
                                  "-o", out, str(notebook)],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.error = f"grading took more than {timeout:g} s"
            return result
        path = pathlib.Path(out) / "results.json"
        if run.returncode != 0 or not path.exists():
            result.error = (run.stderr.strip().splitlines() or ["otter run failed"])[-1]
            return result
        for test in json.loads(path.read_text())["tests"]:
            if test.get("max_score") is None:  # the summary of the public tests
                continue
            q = test["name"]
            result.points[q] = float(test.get("score") or 0.0)
            result.max_points[q] = float(test["max_score"])
            result.feedback[q] = test.get("output", "")
    return result


def grade(autograder: str | os.PathLike, submissions: str | os.PathLike,
          out: str | os.PathLike, *, workers: int = 2,
          timeout: float = 600.0) -> list[Grade]:
    """Grade every ``*.ipynb`` of a folder with ``otter run``; write grades and feedback.

    Parameters
    ----------
    autograder : str or os.PathLike
        The autograder zip that :func:`assign` made.
    submissions : str or os.PathLike
        A folder of submitted notebooks, one per student (the file name, without
        ``.ipynb``, names the student).
    out : str or os.PathLike
        The folder for ``grades.csv`` and ``feedback/<student>.txt``.
    workers : int, default 2
        How many submissions are graded at a time.
    timeout : float, default 600
        Seconds one submission may take.

    Returns
    -------
    list of Grade
        One per submission, in the order of the file names.
    """
    autograder, submissions, out = (pathlib.Path(p) for p in (autograder, submissions, out))
    if not autograder.is_file():
        raise FileNotFoundError(f"autograder: expected the zip from assign, got {autograder}")
    if not submissions.is_dir():
        raise NotADirectoryError(f"submissions: expected a folder, got {submissions}")
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    notebooks = sorted(submissions.glob("*.ipynb"))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        grades = list(pool.map(lambda nb: _grade_one(autograder.resolve(), nb.resolve(),
                                                     timeout), notebooks))
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    questions = sorted({q for g in grades for q in g.max_points})
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "total", "max_total", *questions, "error"])
        for g in grades:
            writer.writerow([g.student, g.total, g.max_total,
                             *(g.points.get(q, "") for q in questions), g.error])
    for g in grades:
        (out / "feedback" / f"{g.student}.txt").write_text(g.feedback_text())
    return grades


def main(argv: list[str]) -> int:
    """``assign SOURCE DIST`` or ``grade AUTOGRADER_ZIP SUBMISSIONS OUT``."""
    if len(argv) == 3 and argv[0] == "assign":
        print(assign(argv[1], argv[2]))
        return 0
    if len(argv) == 4 and argv[0] == "grade":
        for g in grade(argv[1], argv[2], argv[3]):
            print(f"{g.student}: {g.total:g} / {g.max_total:g}" + (f" ({g.error})" if g.error
                                                                    else ""))
        return 0
    print(__doc__.split("\n\n")[-1].strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
