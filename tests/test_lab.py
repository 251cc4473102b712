"""`make lab`: JupyterLab serves the chapters from .venv, and the population's progress bar is a widget."""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbclient
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.read().decode()


def final_url(url: str, token: str) -> str:
    """Where ``url`` leads after the server's redirects."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.geturl()


@pytest.fixture(scope="module")
def lab():
    """`make lab`, headless on a free local port (the venv is already built: -o its stamp)."""
    port, token = free_port(), secrets.token_hex(16)
    opts = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "lab", f"LAB_OPTS={opts}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get(f"{base}/api/status", token)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGTERM)
                    pytest.fail(f"make lab did not serve on port {port}:\n{proc.communicate(timeout=10)[0]}")
                time.sleep(0.5)
        yield base, token
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_make_lab_serves_jupyterlab_with_the_widgets_extension(lab):
    base, token = lab
    status, page = get(f"{base}/lab", token)
    assert status == 200 and "<title>JupyterLab</title>" in page
    config = json.loads(page.split('id="jupyter-config-data"', 1)[1].split(">", 1)[1].split("</script>", 1)[0])
    names = [ext["name"] for ext in config["federated_extensions"]]
    assert "@jupyter-widgets/jupyterlab-manager" in names  # renders tqdm's ipywidgets bar
    # the server's front page opens the book's first page
    assert final_url(f"{base}/", token) == f"{base}/lab/tree/book/index.ipynb"


def test_make_lab_lists_the_chapters_and_runs_kernels_from_the_venv(lab):
    base, token = lab
    status, body = get(f"{base}/api/contents/book", token)
    # (jupytext, which otter-grader brings, also opens the .md pages as notebooks)
    listed = sorted(item["name"] for item in json.loads(body)["content"]
                    if item["type"] == "notebook" and item["name"].endswith(".ipynb"))
    assert status == 200 and listed == CHAPTERS and "amsgrad.ipynb" in listed
    _, specs = get(f"{base}/api/kernelspecs", token)
    specs = json.loads(specs)
    assert specs["default"] == "python3"
    argv0 = specs["kernelspecs"]["python3"]["spec"]["argv"][0]
    # jupyter_client runs "python" as the server's own interpreter: .venv's
    assert argv0 in ("python", sys.executable), argv0


def test_progress_bar_is_a_widget_in_a_kernel(monkeypatch):
    """In a Jupyter kernel with ADAMLIB_PROGRESS unset, train_population shows tqdm's widget bar."""
    monkeypatch.delenv("ADAMLIB_PROGRESS", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import torch\n"
        "from adamlib.lab.population import train_population\n"
        "from adamlib.lab.tasks import digits_split\n"
        "pop = train_population(digits_split(), 3, lr=[1e-3, 1e-2], hidden=4)\n"
        "print(pop.train_loss.shape)"))
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert views, outputs
    assert "IProgress not found" not in text and "(2, 3)" in text
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["model_name"] == "FloatProgressModel" and s["state"]["max"] == 3 for s in states.values())
