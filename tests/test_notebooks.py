"""The book's conventions, checked on every notebook under book/ (new chapters included).

What a reader sees: code lines that fit the page, no test plumbing (nbval comments,
``glue`` calls) in visible cells, stored outputs from one clean run with no errors
and no SVG, the Colab install cell first, and chapters that end with exercises and
cite the article they test. Strict nbval (``make test-notebooks``) checks that the
stored outputs are what the code gives; these tests check what it does not.
"""

from __future__ import annotations

import pathlib
import re

import nbformat
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MAX_LINE = 79
HIDDEN = {"remove-cell", "remove-input"}  # cells whose code the page does not show
NOT_CHAPTERS = {"book/index", "book/api", "book/bibliography", "book/instructors"}
SOURCE_ARTICLE = "khare2023adam"

NOTEBOOKS = sorted(
    p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)


def toc_files() -> list[str]:
    """Every ``file:`` entry of _toc.yml (root, parts, chapters, sections)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return found


CHAPTERS = [
    ROOT / f"{name}.ipynb"
    for name in toc_files()
    if name not in NOT_CHAPTERS and (ROOT / f"{name}.ipynb").exists()
]


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def read(path: pathlib.Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_there_are_notebooks_and_chapters():
    assert len(NOTEBOOKS) >= 4 and len(CHAPTERS) >= 3
    assert set(CHAPTERS) <= set(NOTEBOOKS)


def test_every_notebook_is_in_the_toc():
    listed = {ROOT / f"{name}.ipynb" for name in toc_files()}
    assert [str(p) for p in NOTEBOOKS if p not in listed] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_visible_code_lines_fit_the_page(path):
    long = [
        f"cell {i}: {line!r} ({len(line)} characters)"
        for i, cell in enumerate(read(path).cells)
        if cell.cell_type == "code" and "remove-cell" not in tags(cell)
        for line in cell.source.splitlines()
        if len(line) > MAX_LINE
    ]
    assert long == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_test_plumbing_in_visible_cells(path):
    for i, cell in enumerate(read(path).cells):
        assert "NBVAL_" not in cell.source, f"cell {i}: use the cell tag instead"
        if cell.cell_type == "code" and not tags(cell) & HIDDEN:
            assert not re.search(r"\bglue\(", cell.source), (
                f"cell {i}: glue() belongs in a cell tagged remove-cell"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_outputs_are_stored_from_one_clean_run(path):
    cells = code_cells(read(path))
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "execute the notebook top to bottom"
    for i, cell in enumerate(cells):
        for output in cell.outputs:
            assert output.output_type != "error", f"code cell {i} raised"
            assert "image/svg+xml" not in output.get("data", {}), f"code cell {i}: SVG"
            text = output.get("text", "")
            assert "Traceback" not in text and "Warning:" not in text, (
                f"code cell {i} printed a warning"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_first_code_cell_installs_on_colab_only(path):
    first = code_cells(read(path))[0]
    assert "remove-cell" in tags(first)
    assert '"google.colab" in sys.modules' in first.source
    assert f"adamlib[book] @ git+{repository_url()}" in first.source
    assert first.outputs == []  # nothing happens outside Colab


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_figures_use_the_book_style(path):
    nb = read(path)
    has_figure = any(
        "image/png" in output.get("data", {})
        for cell in code_cells(nb)
        for output in cell.outputs
    )
    if has_figure:
        assert any("use_style()" in c.source for c in code_cells(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_cited_keys_are_in_the_bibliography(path):
    bib = (BOOK / "references.bib").read_text()
    known = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    cited = {
        key.strip()
        for keys in re.findall(r"\{cite:[a-z]+\}`([^`]+)`", markdown(read(path)))
        for key in keys.split(",")
    }
    assert cited - known == set()


@pytest.mark.parametrize("path", CHAPTERS, ids=ids(CHAPTERS))
def test_chapter_asserts_its_claims(path):
    assert any(
        re.search(r"^\s*assert\b", c.source, flags=re.M)
        for c in code_cells(read(path))
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=ids(CHAPTERS))
def test_chapter_cites_the_article_it_tests(path):
    text = markdown(read(path))
    assert SOURCE_ARTICLE in text
    assert "seed article" not in text.lower()


@pytest.mark.parametrize("path", CHAPTERS, ids=ids(CHAPTERS))
def test_chapter_ends_with_exercises_and_solutions(path):
    nb = read(path)
    exercises = markdown(nb).count("```{exercise}")
    assert 2 <= exercises <= 4
    assert markdown(nb).count("```{solution-start}") == exercises
    assert markdown(nb).count("```{solution-end}") == exercises
    # at least one solution checks code with an assert
    inside, checked = False, False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("```{solution-start}"):
                    inside = True
                elif line.startswith("```{solution-end}"):
                    inside = False
        elif inside and re.search(r"^\s*assert\b", cell.source, flags=re.M):
            checked = True
    assert checked
