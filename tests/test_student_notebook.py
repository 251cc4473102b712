"""The lab's student notebook: generated from the book's, up to date, without solutions,
with a stub that raises NotImplementedError for each exercise, opened by the Colab button."""

from __future__ import annotations

import pathlib
import sys

import nbformat
import numpy as np
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "_ext"))
import make_student_notebook as maker  # noqa: E402
from test_course import solution_lines  # noqa: E402

STUDENT = nbformat.read(maker.STUDENT, as_version=4)
CODE = [c.source for c in STUDENT.cells if c.cell_type == "code"]


def test_the_committed_notebooks_are_what_the_script_writes():
    assert maker.main(["--check"]) == 0


def test_no_solution_code_and_no_myst_markup():
    text = "\n".join(c.source for c in STUDENT.cells)
    lines = solution_lines()
    assert len(lines) > 20
    assert [line for line in lines if line in text] == []
    for markup in ("{solution", "{exercise}", "{cite:", "{doc}", ":class: dropdown"):
        assert markup not in text


def test_each_exercise_has_a_stub_that_the_grader_reports():
    stubs = [src for src in CODE if "NotImplementedError" in src]
    assert len(stubs) == len(maker.POINTS) == text_count("**Exercise ")
    namespace = {"np": np}
    torch = pytest.importorskip("torch")
    namespace["torch"] = torch
    for src, check, name in zip(stubs, ("check_adam_step", "check_adamw_step",
                                        "check_amsgrad_step", "check_adam_optimizer"),
                                ("my_adam_step", "my_adamw_step", "my_amsgrad_step",
                                 "MyAdam")):
        defs = src.split(f"\n\n\n{check}(")[0]
        exec(compile(defs, "<stub>", "exec"), namespace)
        import adamlib.testing

        with pytest.raises(AssertionError, match=f"{name} raised NotImplementedError"):
            getattr(adamlib.testing, check)(namespace[name])


def text_count(needle: str) -> int:
    return sum(c.source.count(needle) for c in STUDENT.cells if c.cell_type == "markdown")


def test_no_outputs_and_the_colab_install_cell_first():
    assert all(c.outputs == [] and c.execution_count is None
               for c in STUDENT.cells if c.cell_type == "code")
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f"adamlib[book] @ git+{url}" in CODE[0]
    assert max(len(line) for src in CODE[1:] for line in src.splitlines()) <= 79


def test_the_lab_page_s_colab_button_opens_the_student_notebook():
    import student_launch

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    mapping = config["sphinx"]["config"]["student_notebooks"]
    target = mapping["book/lab_implement_adam"]
    assert (ROOT / target).resolve() == maker.STUDENT.resolve()
    url = config["repository"]["url"].replace("https://github.com/", "")
    context = {"header_buttons": [{"label": "launch-buttons", "type": "group", "buttons": [
        {"text": "Colab", "url": "https://colab.research.google.com/github/"
                                 f"{url}/blob/main/book/lab_implement_adam.ipynb"}]}]}
    student_launch.point_launch_buttons(mapping, "book/lab_implement_adam", context)
    colab = context["header_buttons"][0]["buttons"][0]["url"]
    assert colab == ("https://colab.research.google.com/github/"
                     f"{url}/blob/main/{target}")
    other = {"header_buttons": [{"label": "launch-buttons", "buttons": [
        {"url": "https://x/blob/main/book/betas.ipynb"}]}]}
    student_launch.point_launch_buttons(mapping, "book/betas", other)
    assert other["header_buttons"][0]["buttons"][0]["url"].endswith("book/betas.ipynb")
