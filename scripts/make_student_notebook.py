"""Make the lab's student notebook and its autograder source from the book's notebook.

Usage: .venv/bin/python scripts/make_student_notebook.py [--check]

The book's ``book/lab_implement_adam.ipynb`` is the one source. From it this script writes

- ``coursework/lab_implement_adam_student.ipynb``, the notebook students open (the lab
  page's Colab button opens it): the page without its solutions and outputs, each
  solution replaced by a stub cell whose functions and classes raise
  ``NotImplementedError``, followed by the solution cell's own checks (the grader calls);
- ``coursework/otter/lab_implement_adam.ipynb``, the same lab as an Otter-Grader source
  notebook (``otter assign`` turns it into a student release and an autograder): each
  exercise is a question with a prompt (the stub), a solution (the book's) and a test
  that runs adamlib's grader on the student's code.

Cells tagged ``book-only`` are left out of both. MyST markup that Jupyter does not render
is rewritten: exercises become bold "Exercise n." paragraphs and citations author-year
text. With ``--check`` nothing is written; the script fails when a committed file is not
what it would write.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book" / "lab_implement_adam.ipynb"
STUDENT = ROOT / "coursework" / "lab_implement_adam_student.ipynb"
OTTER = ROOT / "coursework" / "otter" / "lab_implement_adam.ipynb"
BIB = ROOT / "book" / "references.bib"

#: Points of each exercise in the autograder, in the order of the exercises.
POINTS = (3, 2, 2, 3)

HEADER = """\
*This is the student version of the lab: write your code where a cell raises
`NotImplementedError`; the lines after it grade what you wrote, silently when it is right.
The book's page, with solutions, is the lab of "Adam, Step by Step". This notebook is
generated from the book's by `scripts/make_student_notebook.py`: do not edit it by hand.*"""

OTTER_CONFIG = """\
# ASSIGNMENT CONFIG
name: lab_implement_adam
requirements:
  - adamlib[course] @ git+{url}
export_cell: false
check_all_cell: false
run_tests: false
solutions_pdf: false
generate: true
tests:
  ok_format: false"""


# -- MyST to plain Jupyter markdown ----------------------------------------------------
def _authors(bib: str) -> dict[str, str]:
    """``key -> (names, year)`` text for every entry of the bibliography."""
    out = {}
    for entry in re.split(r"\n(?=@)", bib):
        head = re.match(r"@\w+\{([^,]+),", entry.strip())
        author = re.search(r"author\s*=\s*[{\"](.+?)[}\"],?\s*\n", entry, flags=re.S)
        year = re.search(r"year\s*=\s*[{\"]?(\d{4})", entry)
        if not (head and author and year):
            continue
        names = [n.strip() for n in re.split(r"\s+and\s+", author.group(1).replace("\n", " "))]
        last = [n.split(",")[0].strip("{} ") if "," in n else n.split()[-1].strip("{}")
                for n in names]
        who = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
               else f"{last[0]} et al.")
        out[head.group(1).strip()] = (who, year.group(1))
    return out


def plain_markdown(text: str, authors: dict[str, tuple[str, str]]) -> str:
    """Citations as author-year text; any other MyST role as its plain text."""
    def cite(match: re.Match) -> str:
        role, keys = match.group(1), [k.strip() for k in match.group(2).split(",")]
        found = [authors.get(k, (k, "")) for k in keys]
        if role == "t":
            return "; ".join(f"{who} ({year})" for who, year in found)
        return "(" + "; ".join(f"{who}, {year}" for who, year in found) + ")"

    text = re.sub(r"\{cite:([tp])\}`([^`]+)`", cite, text)
    return re.sub(r"\{[\w:-]+\}`([^`]+)`", r"\1", text)


# -- reading the book's notebook ---------------------------------------------------------
def _pieces(source: str) -> list[tuple[str, str]]:
    """A markdown cell as ("text" | "exercise" | "solution-start" | "solution-end", text)."""
    out: list[tuple[str, str]] = []
    lines = source.split("\n")
    i, text = 0, []

    def flush():
        if "\n".join(text).strip():
            out.append(("text", "\n".join(text).strip("\n")))
        text.clear()

    while i < len(lines):
        line = lines[i]
        directive = re.match(r"```\{(exercise|solution-start|solution-end)\}", line)
        if not directive:
            text.append(line)
            i += 1
            continue
        flush()
        kind = directive.group(1)
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            if kind == "exercise" and not lines[i].startswith(":"):
                body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        out.append((kind, "\n".join(body).strip("\n")))
    flush()
    return out


def read_lab(path: pathlib.Path = BOOK) -> list[dict]:
    """The lab as a list of items: markdown ("md"), code ("code"), exercises ("exercise")
    and solutions ("solution", with the code cells inside the dropdown)."""
    nb = nbformat.read(path, as_version=4)
    items: list[dict] = []
    solution = None
    for cell in nb.cells:
        if "book-only" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            if solution is not None:
                solution["cells"].append(cell.source)
            else:
                items.append({"kind": "code", "source": cell.source})
            continue
        for kind, text in _pieces(cell.source):
            if kind == "solution-start":
                solution = {"kind": "solution", "cells": []}
            elif kind == "solution-end":
                items.append(solution)
                solution = None
            elif solution is None:
                items.append({"kind": "md" if kind == "text" else "exercise", "text": text})
        if solution is None:
            items.append({"kind": "cell-break"})
    return items


# -- stubs -----------------------------------------------------------------------------
def _checked_names(tree: ast.Module) -> set[str]:
    """Names handed to a ``check_*`` call: the functions and classes the exercise asks for."""
    return {node.args[0].id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_") and node.args
            and isinstance(node.args[0], ast.Name)}


def _header(lines: list[str], node) -> list[str]:
    """The decorators and the signature of a def or class, as written."""
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    return lines[first - 1: node.body[0].lineno - 1]


def _stub(lines: list[str], node, indent: str = "", owner: str = "") -> list[str]:
    """The def or class with each function's body replaced by NotImplementedError."""
    if isinstance(node, ast.ClassDef):
        out = _header(lines, node)
        methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
        for k, method in enumerate(methods):
            out += ([""] if k else []) + _stub(lines, method, indent + "    ", node.name)
        return out
    name = f"{owner}.{node.name}" if owner else node.name
    return _header(lines, node) + [
        f'{indent}    raise NotImplementedError("write {name} here")']


def split_solution(source: str) -> tuple[str, str, str]:
    """A solution cell as (its definitions, their stubs, the rest: the checks)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    asked = _checked_names(tree)
    defs = [n for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in asked]
    keep, solution, stubs = [], [], []
    taken = set()
    for node in defs:
        first = min([d.lineno for d in node.decorator_list] + [node.lineno])
        taken.update(range(first, node.end_lineno + 1))
        solution.append("\n".join(lines[first - 1: node.end_lineno]))
        stubs.append("\n".join(_stub(lines, node)))
    keep = [line for k, line in enumerate(lines, 1) if k not in taken]
    rest = "\n".join(keep).strip("\n")
    return "\n\n\n".join(solution), "\n\n\n".join(stubs), rest


# -- writing ---------------------------------------------------------------------------
def _new_nb(book: nbformat.NotebookNode, cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": book.metadata["kernelspec"],
                   "language_info": {"name": "python"}}
    nb.cells = cells
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{k}"
    return nb


def _markdown_cells(items: list[dict], authors, on_exercise) -> list:
    """Cells from the items: markdown joined as in the book, exercises and solutions by
    ``on_exercise(number, text, solution_sources) -> cells``."""
    cells, text, number, exercise = [], [], 0, None

    def flush():
        if text:
            cells.append(nbformat.v4.new_markdown_cell(
                plain_markdown("\n\n".join(text), authors)))
            text.clear()

    for item in items:
        kind = item["kind"]
        if kind == "md":
            text.append(item["text"])
        elif kind == "exercise":
            number += 1
            exercise = (number, plain_markdown(item["text"], authors))
        elif kind == "solution":
            flush()
            cells.extend(on_exercise(*exercise, item["cells"]))
            exercise = None
        elif kind == "cell-break":
            if exercise is not None:  # an exercise whose solution follows in a later cell
                continue
            flush()
        elif kind == "code":
            flush()
            cells.append(nbformat.v4.new_code_cell(item["source"]))
    flush()
    return cells


def student_notebook(items: list[dict], book, authors) -> nbformat.NotebookNode:
    """The student version: solutions replaced by stubs."""
    def exercise(number, text, sources):
        cells = [nbformat.v4.new_markdown_cell(f"**Exercise {number}.** {text}")]
        for source in sources:
            _, stubs, rest = split_solution(source)
            if stubs:
                cells.append(nbformat.v4.new_code_cell(
                    stubs + ("\n\n\n" + rest if rest else "")))
        return cells

    cells = _markdown_cells(items, authors, exercise)
    cells.insert(1, nbformat.v4.new_markdown_cell(HEADER))
    return _new_nb(book, cells)


def otter_notebook(items: list[dict], book, authors, url: str) -> nbformat.NotebookNode:
    """The Otter-Grader source: each exercise a question with prompt, solution, test."""
    raw = nbformat.v4.new_raw_cell

    def exercise(number, text, sources):
        cells = [raw(f"# BEGIN QUESTION\nname: q{number}\npoints: {POINTS[number - 1]}"),
                 nbformat.v4.new_markdown_cell(f"**Exercise {number}.** {text}")]
        after = []
        for source in sources:
            solution, stubs, rest = split_solution(source)
            if not stubs:
                continue
            asked = sorted(_checked_names(ast.parse(source)))
            calls = [line.strip() for line in rest.split("\n")
                     if re.match(r"check_\w+\(", line.strip())]
            names = sorted({c.split("(")[0] for c in calls} | set(asked))
            test = (f"def test_q{number}({', '.join(names)}):\n"
                    + "\n".join(f"    {c.split('#')[0].strip()}" for c in calls)
                    + f"\n\n\ntest_q{number}({', '.join(names)})")
            cells += [raw("# BEGIN PROMPT"), nbformat.v4.new_code_cell(stubs),
                      raw("# END PROMPT"), raw("# BEGIN SOLUTION"),
                      nbformat.v4.new_code_cell("# BEGIN SOLUTION NO PROMPT\n" + solution
                                                + "\n# END SOLUTION"),
                      raw("# END SOLUTION"),
                      raw("# BEGIN TESTS"), nbformat.v4.new_code_cell(test),
                      raw("# END TESTS")]
            if rest:
                after.append(nbformat.v4.new_code_cell(rest))
        return cells + [raw("# END QUESTION")] + after

    cells = _markdown_cells(items, authors, exercise)
    return _new_nb(book, [raw(OTTER_CONFIG.format(url=url))] + cells)


def build() -> dict[pathlib.Path, str]:
    """The files this script writes, with their contents."""
    import yaml

    book = nbformat.read(BOOK, as_version=4)
    items = read_lab(BOOK)
    authors = _authors(BIB.read_text())
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    return {STUDENT: nbformat.writes(student_notebook(items, book, authors)) + "\n",
            OTTER: nbformat.writes(otter_notebook(items, book, authors, url)) + "\n"}


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = [str(p.relative_to(ROOT)) for p, text in files.items()
                 if not p.exists() or p.read_text() != text]
        if stale:
            print("out of date (run scripts/make_student_notebook.py):", ", ".join(stale))
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print("wrote", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
