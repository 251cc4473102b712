"""adamlib.lab.lr_finder: the rates, the smoothing, the suggestion rules, and a real range test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from adamlib.lab import lr_finder
from adamlib.lab.tasks import digits_split, mlp, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return digits_split()


@given(start_exp=st.floats(-8, 0), decades=st.floats(0.5, 8), steps=st.integers(2, 500))
def test_exponential_rates_are_geometric_from_start_to_end(start_exp, decades, steps):
    start, end = 10.0**start_exp, 10.0 ** (start_exp + decades)
    rates = lr_finder.exponential_rates(start, end, steps)
    assert rates.shape == (steps,)
    assert rates[0] == pytest.approx(start, rel=1e-12) and rates[-1] == pytest.approx(end, rel=1e-12)
    ratios = rates[1:] / rates[:-1]
    np.testing.assert_allclose(ratios, (end / start) ** (1 / (steps - 1)), rtol=1e-9)


@given(losses=st.lists(st.floats(0, 100), min_size=1, max_size=60), beta=st.floats(0, 0.99))
def test_smooth_is_the_debiased_moving_average(losses, beta):
    """Against the unrolled sum: a_t = sum_i (1 - beta) beta^(t - i) L_i, divided by 1 - beta^(t+1)."""
    L = np.array(losses)
    t = np.arange(len(L))
    weights = np.where(t[:, None] >= t[None, :], (1 - beta) * beta ** np.maximum(t[:, None] - t[None, :], 0), 0.0)
    expected = weights @ L / (1 - beta ** (t + 1))
    np.testing.assert_allclose(lr_finder.smooth(L, beta), expected, rtol=1e-9, atol=1e-9)


@given(level=st.floats(0.01, 100), n=st.integers(1, 50), beta=st.floats(0, 0.999))
def test_smoothing_a_constant_gives_the_constant(level, n, beta):
    np.testing.assert_allclose(lr_finder.smooth(np.full(n, level), beta), level, rtol=1e-9)


def test_smooth_with_beta_zero_is_the_identity():
    L = np.random.default_rng(0).random(20)
    np.testing.assert_allclose(lr_finder.smooth(L, 0.0), L, rtol=1e-15)


@given(centre=st.floats(-4, -1), width=st.floats(0.2, 1.0))
def test_steepest_finds_the_middle_of_a_sigmoid_drop(centre, width):
    """A loss that falls like a sigmoid in log10(lr), then rises: steepest = the sigmoid's centre."""
    lr = 10.0 ** np.linspace(-6, 1, 141)  # 20 points per decade
    x = np.log10(lr)
    loss = 2 - 1.5 / (1 + np.exp(-(x - centre) / width)) + np.where(x > centre + 4 * width, (x - centre - 4 * width) ** 2, 0.0)
    found = lr_finder.suggest(lr, loss, "steepest")
    assert abs(math.log10(found) - centre) <= 0.05 + 1e-9  # within one grid point


def test_min_over_ten_and_nonfinite_tail():
    lr = 10.0 ** np.linspace(-5, 0, 11)
    loss = np.array([3, 2.9, 2.5, 1.5, 0.8, 0.5, 0.4, 0.6, 2.0, np.inf, np.nan])
    assert lr_finder.suggest(lr, loss, "min/10") == pytest.approx(lr[6] / 10)
    steep = lr_finder.suggest(lr, loss, "steepest")
    assert lr[2] <= steep <= lr[4]  # the largest drop per unit log(lr), before the minimum


def test_range_test_uses_rate_t_at_step_t_and_stops_at_the_factor(data):
    model = mlp(16, seed=1)
    rt = lr_finder.lr_range_test(model, torch.optim.Adam(model.parameters()), data, start=1e-5, end=10.0,
                                 steps=120, seed=3)
    n = len(rt.loss)
    assert rt.stopped_early and n < 120
    np.testing.assert_allclose(rt.lr, lr_finder.exponential_rates(1e-5, 10.0, 120)[:n], rtol=1e-12)
    np.testing.assert_allclose(rt.smoothed, lr_finder.smooth(rt.loss, 0.9), rtol=1e-12)
    running_min = np.minimum.accumulate(rt.smoothed)
    assert rt.smoothed[-1] > 4 * running_min[-1]
    assert np.all(rt.smoothed[:-1] <= 4 * running_min[:-1])

    # The same losses from train() with the same rates given by a torch scheduler.
    ratio = (10.0 / 1e-5) ** (1 / 119)
    twin = mlp(16, seed=1)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: ratio**t)
    ref = train(twin, opt, data, n, scheduler=sched, seed=3)
    np.testing.assert_allclose(ref.train_loss, rt.loss, rtol=1e-4)
    np.testing.assert_allclose(ref.lr, rt.lr, rtol=1e-9)


def test_range_test_without_early_stop_runs_every_step(data):
    model = mlp(16, seed=0)
    rt = lr_finder.lr_range_test(model, torch.optim.Adam(model.parameters()), data, start=1e-6, end=1e-5,
                                 steps=30)
    assert not rt.stopped_early and len(rt.loss) == 30
    assert rt.suggestion("min/10") == pytest.approx(rt.lr[np.argmin(rt.smoothed)] / 10)


def test_range_test_rejects_bad_input_before_training(data):
    model = mlp(16, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bad = [
        ({"start": 0.0}, ValueError, "start"),
        ({"start": 1.0, "end": 0.1}, ValueError, "end"),
        ({"steps": 1}, ValueError, "steps"),
        ({"stop_factor": 1.0}, ValueError, "stop_factor"),
        ({"beta": 1.0}, ValueError, "beta"),
    ]
    for options, error, match in bad:
        with pytest.raises(error, match=match):
            lr_finder.lr_range_test(model, opt, data, **options)
    with pytest.raises(TypeError, match="optimizer"):
        lr_finder.lr_range_test(model, model.parameters(), data)
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)
    assert opt.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("args, match", [
    ((np.array([1e-3, 1e-2]), np.array([1.0, 0.5])), "length >= 3"),
    ((np.array([1e-3, 1e-2, 1e-3]), np.array([1.0, 0.5, 0.4])), "increasing"),
    ((np.array([1e-3, 1e-2, 1e-1]), np.array([1.0, np.nan, np.inf])), "finite"),
])
def test_suggest_rejects_bad_curves(args, match):
    with pytest.raises(ValueError, match=match):
        lr_finder.suggest(*args)
    with pytest.raises(ValueError, match="method"):
        lr_finder.suggest(np.array([1e-3, 1e-2, 1e-1]), np.array([1.0, 0.5, 0.4]), "median")


@given(end=st.floats(1e-6, 10.0), steps=st.integers(2, 500))
def test_linear_rates_rise_evenly_to_end(end, steps):
    rates = lr_finder.linear_rates(end, steps)
    assert rates.shape == (steps,)
    assert rates[-1] == pytest.approx(end, rel=1e-12)
    np.testing.assert_allclose(np.diff(rates), end / steps, rtol=1e-9)
    assert rates[0] == pytest.approx(end / steps, rel=1e-12)


def test_accuracy_range_test_is_training_with_a_linear_schedule(data):
    """Smith's test: the accuracy after every eval_every-th step, at the rate of that step."""
    model = mlp(16, seed=2)
    at = lr_finder.accuracy_range_test(model, torch.optim.Adam(model.parameters()), data, end=0.05,
                                       steps=40, eval_every=10, seed=4)
    np.testing.assert_allclose(at.lr, lr_finder.linear_rates(0.05, 40)[9::10], rtol=1e-12)
    assert at.accuracy.shape == (4,) and np.all((at.accuracy >= 0) & (at.accuracy <= 1))
    for k in (1, 4):  # the same network trained by a torch scheduler for 10 k steps
        twin = mlp(16, seed=2)
        opt = torch.optim.Adam(twin.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (t + 1) / 40)
        ref = train(twin, opt, data, 10 * k, scheduler=sched, seed=4)
        np.testing.assert_allclose(ref.lr, lr_finder.linear_rates(0.05, 40)[: 10 * k], rtol=1e-9)
        assert ref.val_accuracy == pytest.approx(at.accuracy[k - 1], abs=1e-6)
    assert at.accuracy[-1] > at.accuracy[0] - 0.2 and at.accuracy.max() > 0.5  # it learns


def test_accuracy_range_test_rejects_bad_input_before_training(data):
    model = mlp(16, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bad = [
        ({"end": 0.0, "steps": 10}, "end"),
        ({"end": 0.1, "steps": 1}, "steps"),
        ({"end": 0.1, "steps": 10, "eval_every": 0}, "eval_every"),
        ({"end": 0.1, "steps": 10, "eval_every": 11}, "eval_every"),
    ]
    for options, match in bad:
        with pytest.raises(ValueError, match=match):
            lr_finder.accuracy_range_test(model, opt, data, **options)
    with pytest.raises(TypeError, match="optimizer"):
        lr_finder.accuracy_range_test(model, model.parameters(), data, end=0.1, steps=10)
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)
    assert opt.param_groups[0]["lr"] == 1e-3


def _valley_by_loops(lr, loss):
    """fastai's valley rule, as its loops state it (callback/schedule.py), for comparison."""
    n = len(loss)
    lds, end, start = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if loss[i] < loss[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[end] < lds[i]:
                end = i
                start = end - lds[end]
    third = (end - start) / 3
    return lr[start + int(third) + int(third / 2)]


@given(loss=st.lists(st.floats(0, 10), min_size=3, max_size=60))
def test_valley_follows_fastai_rule(loss):
    loss = np.array(loss)
    lr = 10.0 ** np.linspace(-6, 1, len(loss))
    assert lr_finder.valley(lr, loss) == _valley_by_loops(lr, loss)


def test_valley_sits_halfway_down_a_long_descent():
    lr = 10.0 ** np.linspace(-6, 1, 71)
    x = np.log10(lr)
    loss = np.where(x < -1, 2 - 0.5 * (x + 6), 0.5 + (x + 1) ** 2)  # falls from 1e-6 to 1e-1
    assert 0.5 < lr_finder.valley(lr, loss) / 10**-3.5 < 2
    # through suggest: the first tenth and the last five points are dropped first
    assert lr_finder.suggest(lr, loss, "valley") == lr_finder.valley(lr[7:66], loss[7:66])


def test_valley_rejects_bad_input():
    with pytest.raises(ValueError, match="lr and smoothed"):
        lr_finder.valley(np.ones(2), np.ones(2))
