"""adamlib.lab.noisy: many seeds in one array are the same as one run per seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from adamlib import Adam
from adamlib.baselines import SGD, Adagrad, RMSprop
from adamlib.lab.noisy import noise_draws, run_noisy
from adamlib.lab.problems import quadratic, rosenbrock, run

MAKERS = [
    lambda p: Adam(p, lr=0.05),
    lambda p: SGD(p, lr=0.1, momentum=0.9),
    lambda p: RMSprop(p, lr=0.01),
    lambda p: Adagrad(p, lr=0.5),
]


@pytest.mark.parametrize("make", MAKERS)
def test_each_seed_is_its_own_noisy_run(make):
    bowl, seeds, steps = quadratic(condition=20), [3, 0, 7], 40
    paths = run_noisy(make, bowl, [1.5, -2.0], steps, noise=0.3, seeds=seeds)
    for k, seed in enumerate(seeds):
        xi = iter(np.random.default_rng(seed).standard_normal((steps, 2)))
        noisy = dataclasses.replace(bowl, grad=lambda x: bowl.grad(x) + 0.3 * next(xi))
        alone = run(make, noisy, [1.5, -2.0], steps)
        np.testing.assert_array_equal(paths[:, k], alone)


def test_zero_noise_is_the_deterministic_run():
    valley = rosenbrock()
    paths = run_noisy(lambda p: Adam(p, lr=0.1), valley, [-1.2, 1.0], 50, noise=0.0, seeds=[0, 1])
    alone = run(lambda p: Adam(p, lr=0.1), valley, [-1.2, 1.0], 50)
    np.testing.assert_array_equal(paths[:, 0], alone)
    np.testing.assert_array_equal(paths[:, 1], alone)


def test_same_seed_same_noise_whatever_the_optimizer():
    a = noise_draws(10, [4, 5])
    b = noise_draws(10, [5])
    np.testing.assert_array_equal(a[:, 1], b[:, 0])
    assert abs(noise_draws(20_000, [0]).std() - 1) < 0.02


def test_a_diverged_run_stays_non_finite():
    bowl = quadratic(condition=2)  # SGD is stable only for lr < 2
    paths = run_noisy(lambda p: SGD(p, lr=10.0), bowl, [1.0, 1.0], 1000, noise=0.1, seeds=[0, 1])
    assert np.isfinite(paths[10]).all() and not np.isfinite(paths[-1]).any()


@pytest.mark.parametrize("kwargs, word", [
    ({"noise": -1.0}, "noise"), ({"noise": float("nan")}, "noise"), ({"seeds": []}, "seeds"),
    ({"seeds": [-1]}, "seeds"), ({"steps": -2}, "steps"), ({"x0": [1.0]}, "x0"),
])
def test_bad_input_names_the_argument(kwargs, word):
    args = {"problem": quadratic(), "x0": [1.0, 1.0], "steps": 3, "noise": 0.1, "seeds": [0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        run_noisy(lambda p: Adam(p), **args)
    with pytest.raises(TypeError, match="problem"):
        run_noisy(lambda p: Adam(p), "bowl", [1.0, 1.0], 3, 0.1, [0])
