"""The core (adamlib, adamlib.torch) never imports the lab (adamlib.lab)."""

import ast
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[1] / "adamlib"


def core_files():
    return [p for p in CORE.rglob("*.py") if "lab" not in p.relative_to(CORE).parts]


def test_core_sources_name_no_lab_module():
    for path in core_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("lab" in n.split(".") for n in names), f"{path} imports the lab: {names}"


def test_importing_the_core_loads_no_lab_module():
    code = "import sys, adamlib, adamlib.torch; print(sorted(m for m in sys.modules if m.startswith('adamlib.lab')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
