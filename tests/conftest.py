"""Shared fixtures: torch.optim.Adam as the oracle, and gradients that stress it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHAPES = [(3, 4), (5,), ()]


def random_grads(rng: np.random.Generator, shapes, dtype) -> list[np.ndarray]:
    """Gradients mixing exact zeros, tiny and large magnitudes (1e-8 to 1e3)."""
    grads = []
    for shape in shapes:
        scale = 10.0 ** rng.integers(-8, 4, size=shape)
        g = rng.standard_normal(shape) * scale
        g = np.where(rng.random(shape) < 0.15, 0.0, g)
        grads.append(np.asarray(g, dtype=dtype))
    return grads


TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-300), np.float32: dict(rtol=1e-5, atol=1e-7)}


def step_side_by_side(ours_cls, theirs_cls, dtype, steps: int = 30, seed: int = 0, lrs=None, **options):
    """Step a NumPy optimizer of adamlib and its torch.optim twin (for-loop path) on the same
    random gradients; ``lrs``, if given, is the learning rate of each step, set on both.

    Returns ``(ours, params, theirs, tparams)`` after the last step.
    """
    import torch

    rng = np.random.default_rng(seed)
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = ours_cls(params, **options)
    theirs = theirs_cls(tparams, foreach=False, **options)
    for t in range(steps):
        if lrs is not None:
            ours.lr = lrs[t]
            theirs.param_groups[0]["lr"] = lrs[t]
        grads = random_grads(rng, SHAPES, dtype)
        ours.step(grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        theirs.step()
    return ours, params, theirs, tparams


def assert_matches(got: dict, want: dict, dtype=np.float64) -> None:
    """Each list of arrays in ``got`` equals the one in ``want`` to the dtype's tolerance."""
    for key in want:
        for i, (a, b) in enumerate(zip(got[key], want[key], strict=True)):
            assert a.dtype == b.dtype == dtype, (key, i)
            np.testing.assert_allclose(a, b, err_msg=f"{key}[{i}]", **TOLERANCE[dtype])


@pytest.fixture
def one_torch_thread():
    """torch on one thread during the test, as in the chapters (two test workers share two
    cores); the thread count is restored after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
