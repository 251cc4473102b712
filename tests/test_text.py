"""The shipped text: its checksum is checked, the split is fixed, nothing is downloaded."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import subprocess
import sys
import zipfile
from importlib import resources

import pytest
import torch

from adamlib.lab import text
from adamlib.lab.text import char_data, get_batch, load_text, val_windows

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_text_ships_in_the_package_with_the_stated_checksum():
    raw = resources.files("adamlib.lab").joinpath("data", text.TEXT_FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == text.SHA256
    readme = resources.files("adamlib.lab").joinpath("data", "README.md").read_text()
    assert text.SHA256 in readme and "2264" in readme
    s = load_text()
    assert len(s) == len(raw) == 100_351 and s.isascii() and "gutenberg" not in s.lower()
    assert s.startswith("[The Tragedie of Macbeth") and s.rstrip().endswith("FINIS. THE TRAGEDIE OF MACBETH.")


def test_a_changed_copy_is_refused(monkeypatch):
    monkeypatch.setattr(text, "SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="SHA-256"):
        load_text()


def test_the_split_is_the_first_90_percent_and_the_last_10():
    data = char_data()
    s = load_text()
    n = int(len(s) * 0.9)
    assert data.vocab == "".join(sorted(set(s))) and len(data.vocab) == 67
    assert data.decode(data.train) == s[:n] and data.decode(data.val) == s[n:]
    assert set(data.decode(data.train)) == set(data.vocab)  # every character is seen in training
    assert data.encode("Macbeth").tolist() == [data.vocab.index(c) for c in "Macbeth"]
    with pytest.raises(ValueError, match="s: characters \\['\\$', '5'\\] are not in the vocabulary"):
        data.encode("$5")


def test_batches_are_windows_and_their_next_characters():
    ids = char_data().train
    x, y = get_batch(ids, 16, 64, torch.Generator().manual_seed(3))
    x2, _ = get_batch(ids, 16, 64, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (16, 64) and torch.equal(x, x2)
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row, target in zip(x, y):  # each row is a slice of the text
        o = int(torch.nonzero((ids.unfold(0, 64, 1) == row).all(1))[0])
        assert torch.equal(ids[o + 1 : o + 65], target)
    for name, kwargs in (("batch_size", dict(batch_size=0)), ("block_size", dict(block_size=len(ids)))):
        with pytest.raises(ValueError, match=name):
            get_batch(ids, **{"batch_size": 2, "block_size": 8, **kwargs}, generator=torch.Generator())


def test_validation_windows_tile_the_validation_text():
    val = char_data().val
    x, y = val_windows(val, 64)
    assert x.shape == y.shape == ((len(val) - 1) // 64, 64)
    assert torch.equal(x.flatten(), val[: x.numel()]) and torch.equal(y.flatten(), val[1 : x.numel() + 1])
    with pytest.raises(ValueError, match="block_size"):
        val_windows(val, 0)


@pytest.mark.install
def test_the_wheel_contains_the_text(tmp_path):
    src = tmp_path / "src"  # build from a copy, so that the build leaves nothing in the tree
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "adamlib", src / "adamlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("adamlib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "adamlib/lab/data/macbeth.txt" in names and "adamlib/lab/data/README.md" in names
