"""Shared fixtures: torch.optim.Adam as the oracle, and gradients that stress it."""

from __future__ import annotations

import os

import numpy as np
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
