"""adamlib.lab.sweeps: grids, sweeps over (value, seed), curve summaries and regime labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adamlib.lab import sweeps


@given(lo=st.integers(-12, 3), span=st.integers(0, 12), n=st.integers(1, 6))
def test_log_grid_is_geometric_and_holds_every_power_of_ten(lo, span, n):
    low, high = 10.0 ** (lo / n), 10.0 ** ((lo + span) / n)
    grid = sweeps.log_grid(low, high, n)
    assert len(grid) == span + 1
    assert grid[0] == pytest.approx(low, rel=1e-12) and grid[-1] == pytest.approx(high, rel=1e-12)
    if span:
        np.testing.assert_allclose(grid[1:] / grid[:-1], 10.0 ** (1 / n), rtol=1e-12)
    for k in range(math.ceil(lo / n), math.floor((lo + span) / n) + 1):
        assert np.any(np.isclose(grid, 10.0**k, rtol=1e-12))


@pytest.mark.parametrize("args, match", [
    ((1e-3, 1e-1, 0), "per_decade"),
    ((2e-3, 1e-1, 1), "low"),
    ((1e-3, 0.5, 2), "high"),
    ((1e-1, 1e-3, 1), "high must be >= low"),
    ((0.0, 1.0, 1), "low"),
    ((1e-3, math.inf, 1), "high"),
])
def test_log_grid_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sweeps.log_grid(*args)


def test_sweep_calls_every_value_and_seed_in_order():
    calls = []

    def fn(value, seed):
        calls.append((value, seed))
        return {"score": (value - 2.0) ** 2 + 0.1 * seed}

    s = sweeps.sweep(fn, [1.0, 2.0, 4.0], seeds=(5, 7))
    assert calls == [(1.0, 5), (1.0, 7), (2.0, 5), (2.0, 7), (4.0, 5), (4.0, 7)]
    scores = s.metric(lambda r: r["score"])
    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores[:, 1] - scores[:, 0], 0.2)
    assert s.best(lambda r: r["score"]) == 2.0
    assert s.seeds == (5, 7) and list(s.grid) == [1.0, 2.0, 4.0]


@given(scores=st.lists(st.floats(0, 10) | st.just(math.nan) | st.just(math.inf), min_size=1, max_size=8))
def test_best_is_the_argmin_and_nan_is_worst(scores):
    grid = np.arange(1.0, len(scores) + 1)
    s = sweeps.sweep(lambda v, seed: scores[int(v) - 1], grid)
    finite = [x for x in scores if np.isfinite(x)]
    if not finite:
        with pytest.raises(ValueError, match="finite"):
            s.best(lambda r: r)
        return
    best = s.best(lambda r: r)
    assert scores[int(best) - 1] == min(finite)
    assert int(best) - 1 == scores.index(min(finite))  # the first one on ties


@pytest.mark.parametrize("fn, grid, seeds, error, match", [
    (None, [1.0], (0,), TypeError, "fn"),
    (lambda v, s: v, [], (0,), ValueError, "grid"),
    (lambda v, s: v, [1.0, math.nan], (0,), ValueError, "grid"),
    (lambda v, s: v, [[1.0]], (0,), ValueError, "grid"),
    (lambda v, s: v, [1.0], (), ValueError, "seeds"),
    (lambda v, s: v, [1.0], (0.5,), ValueError, "seeds"),
])
def test_sweep_rejects_bad_input_before_calling_fn(fn, grid, seeds, error, match):
    with pytest.raises(error, match=match):
        sweeps.sweep(fn, grid, seeds)


def test_tail_mean_and_divergence():
    assert sweeps.tail_mean([5.0, 4.0, 2.0, 1.0], 2) == 1.5
    assert sweeps.tail_mean([5.0, math.nan, 1.0], 1) == math.inf
    with pytest.raises(ValueError, match="k"):
        sweeps.tail_mean([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="losses"):
        sweeps.tail_mean([], 1)


@given(slope=st.floats(-1, 1), intercept=st.floats(-10, 10), k=st.integers(3, 200))
def test_trend_recovers_the_slope_of_a_line(slope, intercept, k):
    y = intercept + slope * np.arange(k + 5)
    b, se = sweeps.trend(y, k)
    assert b == pytest.approx(slope, abs=1e-9)
    assert se <= 1e-9


def test_trend_standard_error_covers_noise():
    """Over many noisy lines, |b - slope| < 3 se nearly always (a two-sided 99.7% interval)."""
    rng = np.random.default_rng(0)
    misses = 0
    for _ in range(400):
        y = -0.01 * np.arange(100) + rng.normal(0, 0.3, 100)
        b, se = sweeps.trend(y, 100)
        misses += abs(b + 0.01) > 3 * se
    assert misses <= 8  # expected ~1


def test_trend_rejects_nonfinite_tail():
    with pytest.raises(ValueError, match="finite"):
        sweeps.trend([1.0, 2.0, math.inf, 3.0], 3)
    with pytest.raises(ValueError, match="k"):
        sweeps.trend([1.0, 2.0, 3.0], 2)


def test_classify_a_u_shaped_sweep():
    lr = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    score = [2.0, 0.3, 0.2, 0.9, 5.0, math.inf]
    final = [1.9, 0.2, 0.01, 0.5, 3.0, math.nan]
    initial = [2.3] * 6
    labels = sweeps.classify_regimes(lr, score, final, initial, tolerance=1.6)
    assert list(labels) == ["too small", "good", "good", "too large", "diverging", "diverging"]


@given(
    data=st.lists(
        st.tuples(st.floats(0.01, 100) | st.just(math.inf), st.floats(0.0, 5.0), st.floats(0.5, 3.0)),
        min_size=1, max_size=10),
    tol=st.floats(1.01, 5),
)
def test_regime_labels_follow_their_definitions(data, tol):
    score, final, initial = (np.array(x) for x in zip(*data))
    lr = 10.0 ** np.arange(len(data))
    labels = sweeps.classify_regimes(lr, score, final, initial, tolerance=tol)
    diverging = (final > initial) | ~np.isfinite(score)
    assert np.all((labels == "diverging") == diverging)
    alive = ~diverging
    if not alive.any():
        assert np.all(labels == "diverging")
        return
    best = np.min(score[alive])
    i_best = np.flatnonzero(alive & (score == best))[0]
    assert labels[i_best] == "good"
    assert np.all(score[labels == "good"] <= tol * best)
    assert np.all(score[(labels == "too small") | (labels == "too large")] > tol * best)
    assert set(labels) <= set(sweeps.REGIMES)
    assert np.all(np.flatnonzero(labels == "too small") < i_best)
    assert np.all(np.flatnonzero(labels == "too large") > i_best)


@pytest.mark.parametrize("args, kwargs, match", [
    (([1.0, 0.5], [1, 1], [1, 1], [1, 1]), {}, "increasing"),
    (([1.0, 2.0], [1], [1, 1], [1, 1]), {}, "score"),
    (([1.0, 2.0], [1, 1], [1, 1], [1]), {}, "initial_loss"),
    (([1.0, 2.0], [1, 1], [1, 1], [1, 1]), {"tolerance": 1.0}, "tolerance"),
])
def test_classify_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sweeps.classify_regimes(*args, **kwargs)


@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=50))
def test_largest_climb_against_a_double_loop(losses):
    expected = max(losses[t] / min(losses[: t + 1]) for t in range(len(losses)))
    assert sweeps.largest_climb(losses) == pytest.approx(expected, rel=1e-12)
    assert sweeps.largest_climb(losses) >= 1.0


def test_largest_climb_of_falling_and_bouncing_curves():
    assert sweeps.largest_climb([5.0, 4.0, 4.0, 1.0]) == 1.0
    assert sweeps.largest_climb([2.0, 0.5, 3.0, 0.1, 0.4]) == 6.0  # 3.0 after a low of 0.5
    assert sweeps.largest_climb([1.0, math.nan]) == math.inf
    with pytest.raises(ValueError, match="positive"):
        sweeps.largest_climb([1.0, 0.0])


def test_from_population_is_the_sweep_of_runs_made_alone():
    """Each member of a population grid becomes the TrainingRun that tasks.train returns."""
    import torch

    from adamlib.lab.population import grid, train_population
    from adamlib.lab.tasks import digits_split, mlp, train

    torch.set_num_threads(1)
    data = digits_split()
    rates, seeds = [1e-3, 3e-2, 1e20], [0, 1]  # the last one overflows

    def alone(lr, seed):
        model = mlp(16, seed=seed)
        return train(model, torch.optim.Adam(model.parameters(), lr=lr), data, 25, seed=seed)

    expected = sweeps.sweep(alone, rates, seeds)
    pop = train_population(data, 25, **grid(lr=rates, seed=seeds), hidden=16, progress=False)
    got = sweeps.from_population(pop)
    np.testing.assert_array_equal(got.grid, rates)
    assert got.seeds == (0, 1)
    for row_got, row_expected in zip(got.runs, expected.runs):
        for g, e in zip(row_got, row_expected):
            assert len(g.train_loss) == len(e.train_loss) and g.diverged == e.diverged
            finite = np.isfinite(e.train_loss)
            np.testing.assert_allclose(g.train_loss[finite], e.train_loss[finite], rtol=1e-4)
            np.testing.assert_allclose(g.lr, e.lr, rtol=1e-12)
            if not e.diverged:
                assert g.val_loss == pytest.approx(e.val_loss, rel=1e-4)
                assert g.val_accuracy == pytest.approx(e.val_accuracy, abs=2e-3)
    assert expected.runs[2][0].diverged  # the test covers a diverged member


def test_from_population_rejects_members_out_of_grid_order():
    import pandas as pd

    class Fake:
        table = pd.DataFrame({"lr": [0.1, 0.2, 0.1, 0.2], "seed": [0, 0, 1, 1],
                              "val_loss": 1.0, "val_accuracy": 0.5})
        train_loss = np.ones((4, 3))
        lr = np.ones((4, 3))

    with pytest.raises(ValueError, match="in order"):
        sweeps.from_population(Fake())
    with pytest.raises(ValueError, match="columns"):
        sweeps.from_population(Fake(), key="beta1")
