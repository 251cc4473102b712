"""The lab in Otter-Grader, for real: ``otter assign`` on the committed source notebook,
then ``otter run`` on three submissions (correct, a classic bug, one that raises), each
graded in a fresh kernel; the scores and the feedback a student reads are checked."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_student_notebook as maker  # noqa: E402

from adamlib import course  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("otter") is None,
                                reason="needs the course extra (otter-grader)")

NO_BIAS_CORRECTION = '''\
def my_adam_step(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param - lr * m / (np.sqrt(v) + eps), m, v
'''


def _solutions() -> list[str]:
    """The book's solutions (the definitions of each solution cell), in order."""
    return [maker.split_solution(src)[0] for item in maker.read_lab()
            if item["kind"] == "solution" for src in item["cells"]
            if maker.split_solution(src)[1]]


def solution_lines() -> list[str]:
    """The lines of the book's solutions that the page shows nowhere else (outside the
    dropdowns, or in the stubs: the signatures)."""
    items = maker.read_lab()
    public = "\n".join([item.get("text", item.get("source", "")) for item in items
                        if item["kind"] in ("md", "exercise", "code")]
                       + [maker.split_solution(src)[1] for item in items
                          if item["kind"] == "solution" for src in item["cells"]])
    return [line.strip() for solution in _solutions() for line in solution.splitlines()
            if len(line.strip()) > 12 and line.strip() not in public
            and not line.lstrip().startswith(("def ", "class ", "@"))]


def _submission(release: nbformat.NotebookNode, answers: list[str | None]):
    """The release with each answer cell filled in (None: left as handed out)."""
    nb = nbformat.from_dict(release)
    cells = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])
             and c.cell_type == "code" and "NotImplementedError" in c.source]
    assert len(cells) == len(answers) == len(maker.POINTS)
    for cell, answer in zip(cells, answers):
        if answer is not None:
            cell.source = answer
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("course")
    source = tmp / "lab_implement_adam.ipynb"
    source.write_text(maker.OTTER.read_text())
    autograder = course.assign(source, tmp / "dist")
    release = nbformat.read(tmp / "dist" / "student" / "lab_implement_adam.ipynb", 4)
    solutions = _solutions()
    submissions = tmp / "submissions"
    submissions.mkdir()
    for name, answers in {
        "correct": solutions,
        "no_bias_correction": [NO_BIAS_CORRECTION, *solutions[1:]],
        "untouched": [None] * len(solutions),
    }.items():
        nbformat.write(_submission(release, answers), submissions / f"{name}.ipynb")
    grades = course.grade(autograder, submissions, tmp / "out", workers=3)
    return {g.student: g for g in grades}, tmp / "out", release


def test_the_release_holds_no_solution(graded):
    _, _, release = graded
    text = "\n".join(c.source for c in release.cells)
    lines = solution_lines()
    assert len(lines) > 20
    assert [line for line in lines if line in text] == []


def test_a_correct_submission_gets_every_point(graded):
    grades, _, _ = graded
    g = grades["correct"]
    assert g.error == ""
    assert g.points == {f"q{k}": float(p) for k, p in enumerate(maker.POINTS, 1)}
    assert all("All test cases passed!" in text for text in g.feedback.values())


def test_a_classic_bug_loses_its_points_and_is_named(graded):
    grades, _, _ = graded
    g = grades["no_bias_correction"]
    # AdamW's step calls the student's Adam step, so it fails too; AMSGrad and the
    # optimizer do not depend on it.
    assert g.points == {"q1": 0.0, "q2": 0.0, "q3": float(maker.POINTS[2]),
                        "q4": float(maker.POINTS[3])}
    assert "my_adam_step is wrong on case 1 of 12" in g.feedback["q1"]
    assert "Diagnosis: neither moment is bias-corrected" in g.feedback["q1"]
    assert "Diagnosis: neither moment is bias-corrected" in g.feedback["q2"]


def test_a_submission_that_raises_gets_zero_and_says_why(graded):
    grades, _, _ = graded
    g = grades["untouched"]
    assert g.total == 0.0 and g.max_total == sum(maker.POINTS)
    assert "my_adam_step raised NotImplementedError: write my_adam_step here" in g.feedback["q1"]
    assert "MyAdam raised NotImplementedError" in g.feedback["q4"]


def test_grades_and_feedback_are_written_per_student(graded):
    grades, out, _ = graded
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0] == "student,total,max_total,q1,q2,q3,q4,error"
    assert sorted(rows[1:]) == sorted([
        "correct,10.0,10.0,3.0,2.0,2.0,3.0,",
        "no_bias_correction,5.0,10.0,0.0,0.0,2.0,3.0,",
        "untouched,0.0,10.0,0.0,0.0,0.0,0.0,",
    ])
    text = (out / "feedback" / "no_bias_correction.txt").read_text()
    assert text.startswith("no_bias_correction: 5 of 10 points")
    assert "q1: 0 of 3" in text and "neither moment is bias-corrected" in text


def test_bad_arguments_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="source: expected a notebook file"):
        course.assign(tmp_path / "missing.ipynb", tmp_path / "dist")
    with pytest.raises(FileNotFoundError, match="autograder: expected the zip"):
        course.grade(tmp_path / "missing.zip", tmp_path, tmp_path)
