"""adamlib.lab.budget: the expected best of n trials, refused where the pool cannot measure it."""

import numpy as np
import pytest

from adamlib.lab import budget, search


def test_best_of_n_is_dodge_et_al_within_the_allowed_budget():
    rng = np.random.default_rng(0)
    pool = rng.lognormal(size=160)
    r = budget.best_of_n(pool, 20, n_boot=300, seed=3)
    ref = search.expected_best(pool, 20, n_boot=300, seed=3)
    assert (r.mean, r.low, r.high) == (ref.mean, ref.low, ref.high)
    # Dodge et al.'s sum, written out: sorted best first, p_i from the formula
    v = np.sort(pool)
    i = np.arange(1, 161)
    p = ((160 - i + 1) / 160) ** 20 - ((160 - i) / 160) ** 20
    assert r.mean == pytest.approx(v @ p, rel=1e-12)


def test_best_of_n_refuses_budgets_the_pool_cannot_measure():
    pool = np.linspace(0, 1, 80)
    budget.best_of_n(pool, 10, n_boot=10)                  # 10 = 80 / 8: allowed
    for n in (11, 80, 100):
        with pytest.raises(ValueError, match=r"n = \d+ is more than max_fraction"):
            budget.best_of_n(pool, n, n_boot=10)
    budget.best_of_n(pool, 40, max_fraction=0.5, n_boot=10)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="max_fraction"):
            budget.best_of_n(pool, 2, max_fraction=bad)
    with pytest.raises(TypeError, match="max_fraction"):  # a bool is not a number
        budget.best_of_n(pool, 2, max_fraction=True)


def test_the_bootstrap_covers_small_budgets_and_fails_at_n_near_m():
    # uniform on [0, 1]: the truth is known in closed form, 1 / (n + 1), and the finite
    # population's own value is within 1e-3 of it
    population = (np.arange(20_000) + 0.5) / 20_000
    assert search.expected_best(population, 40, n_boot=1).mean == pytest.approx(1 / 41, abs=1e-3)
    small = budget.bootstrap_coverage(population, 200, 5, reps=150, n_boot=300, seed=1)
    large = budget.bootstrap_coverage(population, 40, 40, reps=150, n_boot=300, seed=1)
    assert small >= 0.8             # nominal 0.9
    assert large <= 0.7             # far below it


def test_bootstrap_coverage_refuses_bad_arguments():
    with pytest.raises(ValueError, match="population"):
        budget.bootstrap_coverage([1.0, np.nan, 2.0], 10, 2)
    with pytest.raises(ValueError, match="m must"):
        budget.bootstrap_coverage([1.0, 2.0], 1, 2)
    with pytest.raises(ValueError, match="reps"):
        budget.bootstrap_coverage([1.0, 2.0], 10, 2, reps=0)
