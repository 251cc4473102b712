"""tasks.train's loss_scale: the optimizer sees loss_scale times the gradient, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import adamlib
from adamlib.lab.tasks import NumpyOptimizer, digits_split, mlp, train

STEPS = 40


@pytest.fixture(scope="module")
def data():
    return digits_split()


def run(data, make_opt, **kw):
    model = mlp(hidden=16, seed=0)
    return train(model, make_opt(model), data, STEPS, seed=0, **kw)


def test_scale_one_is_the_default(data):
    a = run(data, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2))
    b = run(data, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2), loss_scale=1.0)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)


def test_for_sgd_a_power_of_two_scale_is_a_learning_rate(data):
    a = run(data, lambda m: torch.optim.SGD(m.parameters(), lr=0.05), loss_scale=4.0)
    b = run(data, lambda m: torch.optim.SGD(m.parameters(), lr=0.2))
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-6)


def test_adam_atan2_ignores_it_and_adam_with_eps_does_not(data):
    atan2 = lambda m: NumpyOptimizer(m, lambda ps: adamlib.AdamAtan2(ps, lr=1e-2))  # noqa: E731
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=1e-2)  # noqa: E731
    np.testing.assert_array_equal(run(data, atan2).train_loss, run(data, atan2, loss_scale=2.0**-40).train_loss)
    assert np.max(np.abs(run(data, adam).train_loss - run(data, adam, loss_scale=1e-9).train_loss)) > 0.1


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), True, "1"])
def test_bad_scales_are_refused_before_training(data, bad):
    model = mlp(hidden=16, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="loss_scale"):
        train(model, torch.optim.Adam(model.parameters()), data, STEPS, loss_scale=bad)
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)
