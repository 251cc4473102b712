"""adamlib.lab.schedules: torch's schedulers follow the closed-form rates the docstrings state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from adamlib.lab import schedules
from adamlib.lab.tasks import digits_split, mlp, train

torch.set_num_threads(1)


def cosine_formula(t, total, peak, rho):
    low = rho * peak
    return low + 0.5 * (peak - low) * (1 + np.cos(np.pi * t / total))


@given(total=st.integers(1, 400), peak=st.floats(1e-5, 10.0), rho=st.floats(0.0, 1.0))
def test_cosine_follows_the_formula(total, peak, rho):
    t = np.arange(total)
    expected = cosine_formula(t, total, peak, rho)
    np.testing.assert_allclose(schedules.trace("cosine", peak, total, final_fraction=rho), expected,
                               rtol=1e-9, atol=1e-12 * peak)


@given(total=st.integers(2, 400), drops=st.integers(1, 4), gamma=st.floats(0.01, 1.0), peak=st.floats(1e-5, 10.0))
def test_step_decay_drops_evenly(total, drops, gamma, peak):
    assume(total >= drops + 1)
    rates = schedules.trace("step", peak, total, drops=drops, gamma=gamma)
    size = math.ceil(total / (drops + 1))
    expected = peak * gamma ** (np.arange(total) // size)
    np.testing.assert_allclose(rates, expected, rtol=1e-9)
    assert (np.arange(total) // size).max() <= drops  # never more drops than asked for


@given(
    total=st.integers(2, 400),
    warmup_share=st.floats(0.01, 0.99),
    f=st.floats(1e-3, 1.0),
    rho=st.floats(0.0, 1.0),
    peak=st.floats(1e-5, 10.0),
)
def test_warmup_cosine_is_linear_then_cosine(total, warmup_share, f, rho, peak):
    warmup = min(max(1, int(warmup_share * total)), total - 1)
    rates = schedules.trace("warmup + cosine", peak, total, warmup_steps=warmup, start_fraction=f,
                            final_fraction=rho)
    t = np.arange(total)
    expected = np.where(
        t < warmup,
        peak * (f + (1 - f) * t / warmup),
        cosine_formula(t - warmup, total - warmup, peak, rho),
    )
    np.testing.assert_allclose(rates, expected, rtol=1e-9, atol=1e-12 * peak)
    assert rates.max() <= peak * (1 + 1e-12)
    assert rates[warmup] == pytest.approx(peak, rel=1e-12)


@given(total=st.integers(2, 400), warmup_share=st.floats(0.01, 0.99), f=st.floats(1e-3, 1.0),
       peak=st.floats(1e-5, 10.0))
def test_warmup_constant_is_linear_then_flat(total, warmup_share, f, peak):
    warmup = min(max(1, int(warmup_share * total)), total - 1)
    rates = schedules.trace("warmup + constant", peak, total, warmup_steps=warmup, start_fraction=f)
    t = np.arange(total)
    expected = np.where(t < warmup, peak * (f + (1 - f) * t / warmup), peak)
    np.testing.assert_allclose(rates, expected, rtol=1e-9, atol=1e-12 * peak)


def test_constant_is_constant():
    np.testing.assert_array_equal(schedules.trace("constant", 3e-3, 50), np.full(50, 3e-3))


@pytest.mark.parametrize("name, options", [
    ("constant", {}), ("step", {"drops": 3}), ("cosine", {"final_fraction": 0.1}),
    ("warmup + cosine", {"warmup_steps": 5}), ("warmup + constant", {"warmup_steps": 5}),
])
def test_training_uses_the_traced_rates(name, options):
    """The rates adamlib.lab.tasks.train records are those trace() predicts, step for step."""
    data = digits_split()
    model = mlp(8, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    run = train(model, opt, data, 24, scheduler=schedules.make(name, opt, 24, **options))
    np.testing.assert_allclose(run.lr, schedules.trace(name, 1e-2, 24, **options), rtol=1e-12)


def test_warmup_lowers_the_first_steps_of_real_training():
    """Same model, data and seed: with warmup the first update is smaller than without."""
    data = digits_split()
    moved = {}
    for name, options in (("constant", {}), ("warmup + cosine", {"warmup_steps": 10})):
        model = mlp(8, seed=0)
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        train(model, opt, data, 1, scheduler=schedules.make(name, opt, 50, **options))
        moved[name] = max((p.detach() - q).abs().max().item() for p, q in zip(model.parameters(), before))
    assert moved["warmup + cosine"] < 0.05 * moved["constant"]


def fresh_optimizer(lr=0.1):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


@pytest.mark.parametrize("name, total, options, match", [
    ("step", 2, {"drops": 2}, "total_steps"),
    ("step", 10, {"drops": 0}, "drops"),
    ("step", 10, {"gamma": 0.0}, "gamma"),
    ("step", 10, {"gamma": 1.5}, "gamma"),
    ("cosine", 0, {}, "total_steps"),
    ("cosine", 10, {"final_fraction": -0.1}, "final_fraction"),
    ("cosine", 10, {"final_fraction": math.nan}, "final_fraction"),
    ("cosine", 10.0, {}, "total_steps"),
    ("warmup + cosine", 10, {"warmup_steps": 10}, "total_steps"),
    ("warmup + cosine", 10, {"warmup_steps": 0}, "warmup_steps"),
    ("warmup + cosine", 10, {"warmup_steps": 2, "start_fraction": 0.0}, "start_fraction"),
    ("warmup + cosine", 10, {"warmup_steps": 2, "final_fraction": 2.0}, "final_fraction"),
    ("constant", True, {}, "total_steps"),
    ("warmup + constant", 10, {"warmup_steps": 10}, "total_steps"),
    ("warmup + constant", 10, {"warmup_steps": 0}, "warmup_steps"),
    ("warmup + constant", 10, {"warmup_steps": 2, "start_fraction": 1.5}, "start_fraction"),
])
def test_bad_arguments_are_named_and_change_nothing(name, total, options, match):
    opt = fresh_optimizer()
    with pytest.raises(ValueError, match=match):
        schedules.make(name, opt, total, **options)
    assert opt.param_groups[0]["lr"] == 0.1
    assert "initial_lr" not in opt.param_groups[0]


def test_unknown_schedule_and_non_optimizer():
    with pytest.raises(ValueError, match="name must be one of"):
        schedules.make("linear", fresh_optimizer(), 10)
    with pytest.raises(TypeError, match="optimizer"):
        schedules.cosine([torch.zeros(1)], 10)
    with pytest.raises(TypeError, match="warmup_steps"):
        schedules.make("warmup + cosine", fresh_optimizer(), 10)  # warmup_steps is required
    with pytest.raises(ValueError, match="peak_lr"):
        schedules.trace("cosine", 0.0, 10)
