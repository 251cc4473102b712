"""adamlib.lab.separable: Wilson et al.'s (2017) construction, and who generalizes on it."""

from __future__ import annotations

import numpy as np
import pytest

import adamlib
from adamlib.baselines import SGD, Adagrad
from adamlib.lab.separable import fit_least_squares, wilson_problem


def test_construction_follows_the_paper():
    prob = wilson_problem(n=30, p=0.6, seed=3)
    X, y = prob.X_train, prob.y_train
    assert X.shape == (30, 3 + 5 * 30)
    np.testing.assert_array_equal(X[:, 0], y)
    assert np.all(X[:, 1:3] == 1)
    own = X[:, 3:]
    for i in range(30):                                  # the paper's 1-based j = 4 + 5(i-1) + ...
        block = own[i, 5 * i : 5 * i + 5]
        np.testing.assert_array_equal(block, [1, 0, 0, 0, 0] if y[i] > 0 else [1, 1, 1, 1, 1])
        assert own[i].sum() == block.sum()               # nothing outside its own block
    assert np.all(own.sum(axis=0) <= 1)                  # no two examples share an own feature
    assert np.all(prob.X_test[:, 3:] == 0) and np.all(prob.X_test[:, 0] == prob.y_test)


def test_labels_are_positive_with_probability_p():
    y = wilson_problem(n=10, p=0.7, n_test=20_000, seed=0).y_test
    assert np.mean(y > 0) == pytest.approx(0.7, abs=0.015)


def test_gradient_is_the_gradient_of_the_loss():
    prob = wilson_problem(n=8, seed=1)
    w = np.random.default_rng(0).normal(size=prob.X_train.shape[1])
    e = np.eye(len(w))[5] * 1e-6
    assert (prob.loss(w + e) - prob.loss(w - e)) / 2e-6 == pytest.approx(prob.gradient(w)[5], rel=1e-6)


def test_gradient_descent_finds_the_minimum_norm_solution_and_generalizes():
    prob = wilson_problem(n=20, seed=0)
    w = fit_least_squares(prob, lambda ps: SGD(ps, lr=0.5), 20_000)
    np.testing.assert_allclose(w, np.linalg.pinv(prob.X_train) @ prob.y_train, atol=1e-6)
    assert prob.error(w, "train") == 0 and prob.error(w) == 0


@pytest.mark.parametrize("make", [lambda ps: adamlib.Adam(ps, lr=1e-2), lambda ps: Adagrad(ps, lr=0.1)])
def test_adaptive_methods_fit_the_data_and_call_every_new_point_positive(make):
    prob = wilson_problem(n=20, seed=0)
    w = fit_least_squares(prob, make, 3000)
    assert prob.loss(w) < 1e-8 and prob.error(w, "train") == 0
    assert np.all(prob.X_test @ w > 0)                   # every new point scored positive
    assert prob.error(w) == pytest.approx(np.mean(prob.y_test < 0))
    assert w[1] + w[2] > w[0] > 0                        # the always-on features outweigh the label


@pytest.mark.parametrize("kwargs, match", [(dict(n=0), "n must"), (dict(p=0.5), "p must"), (dict(p=1.0), "p must"),
                                           (dict(n_test=0), "n_test"), (dict(seed=-1), "seed")])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        wilson_problem(**kwargs)


def test_fit_refuses_bad_arguments():
    prob = wilson_problem(n=2)
    with pytest.raises(ValueError, match="steps"):
        fit_least_squares(prob, lambda ps: SGD(ps, lr=0.1), -1)
    with pytest.raises(TypeError, match="problem"):
        fit_least_squares((prob.X_train, prob.y_train), lambda ps: SGD(ps, lr=0.1), 1)
    with pytest.raises(ValueError, match="split"):
        prob.error(np.zeros(13), "val")
