"""adamlib.Adam and adam_step against the oracle, torch.optim.Adam, option by option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from conftest import assert_matches, random_grads, step_side_by_side

def run_both(dtype, steps: int = 30, seed: int = 0, lrs=None, **options):
    """adamlib.Adam and torch.optim.Adam after the same steps: (ours, theirs) parameters and state."""
    ours, params, theirs, tparams = step_side_by_side(
        adamlib.Adam, torch.optim.Adam, dtype, steps=steps, seed=seed, lrs=lrs, **options
    )
    keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if options.get("amsgrad") else [])
    got = {"param": params, **{k: getattr(ours, k) for k in keys}}
    want = {
        "param": [tp.detach().numpy() for tp in tparams],
        **{k: [theirs.state[tp][k].numpy() for tp in tparams] for k in keys},
    }
    return got, want


OPTIONS = list(
    itertools.product(
        [1e-3, 0.1],  # lr
        [(0.9, 0.999), (0.0, 0.9)],  # betas
        [1e-8, 1e-3],  # eps
        [0.0, 0.1],  # weight_decay
        [False, True],  # amsgrad
        [False, True],  # maximize
        [False, True],  # decoupled_weight_decay
    )
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lr,betas,eps,weight_decay,amsgrad,maximize,decoupled", OPTIONS)
def test_every_option_combination_matches_torch(dtype, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    got, want = run_both(
        dtype, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
        maximize=maximize, decoupled_weight_decay=decoupled,
    )
    assert_matches(got, want, dtype)


@given(
    lr=st.floats(0.0, 1.0),
    beta1=st.floats(0.0, 0.999),
    beta2=st.floats(0.0, 0.99999),
    eps=st.floats(0.0, 1.0),
    weight_decay=st.floats(0.0, 1.0),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    seed=st.integers(0, 2**16),
)
def test_random_hyperparameters_match_torch_float64(lr, beta1, beta2, eps, weight_decay, flags, seed):
    amsgrad, maximize, decoupled = flags
    got, want = run_both(
        np.float64, steps=30, seed=seed, lr=lr, betas=(beta1, beta2), eps=eps,
        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled,
    )
    assert_matches(got, want, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_learning_rate_changing_every_step_matches_torch(dtype):
    lrs = 0.05 * (1 + np.cos(np.linspace(0, np.pi, 30))) / 2  # a cosine schedule, down to 0
    got, want = run_both(dtype, lrs=list(lrs), weight_decay=0.1, decoupled_weight_decay=True)
    assert_matches(got, want, dtype)


def test_adam_step_is_algorithm_1_and_equals_adam_at_defaults():
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(7)
    m, v = np.zeros(7), np.zeros(7)
    reference = [theta.copy()]
    opt = adamlib.Adam(reference)
    for t in range(1, 41):
        g = random_grads(rng, [(7,)], np.float64)[0]
        before = (theta.copy(), g.copy(), m.copy(), v.copy())
        new_theta, new_m, new_v = adamlib.adam_step(theta, g, m, v, t)
        for original, arg in zip(before, (theta, g, m, v)):
            np.testing.assert_array_equal(original, arg)  # pure: inputs untouched
        theta, m, v = new_theta, new_m, new_v
        opt.step([g])
        np.testing.assert_allclose(theta, reference[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(m, opt.exp_avg[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(v, opt.exp_avg_sq[0], rtol=1e-12, atol=0)


def test_adam_step_counts_from_one():
    z = np.zeros(2)
    with pytest.raises(ValueError, match="t counts steps from 1"):
        adamlib.adam_step(z, z, z, z, t=0)


@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"weight_decay": 0.1}])
def test_float16_nan_and_inf_land_where_torch_puts_them(options):
    """eps=1e-8 rounds to 0 in float16: a zero gradient gives 0/0 = NaN, and a gradient whose
    square underflows gives m/0 = inf, in the same places as torch.optim.Adam."""
    g = np.array([0.0, 1e-5, -3e-5, 1e-4, 0.5, -2.0, 100.0], dtype=np.float16)
    p = np.linspace(-1, 1, g.size).astype(np.float16)
    tp = torch.tensor(p.copy(), requires_grad=True)
    ours = adamlib.Adam([p], **options)
    theirs = torch.optim.Adam([tp], foreach=False, **options)
    for _ in range(3):
        ours.step([g])
        tp.grad = torch.from_numpy(g.copy())
        theirs.step()
        want = tp.detach().numpy()
        assert p.dtype == np.float16
        np.testing.assert_array_equal(np.isnan(p), np.isnan(want))
        np.testing.assert_array_equal(np.isposinf(p), np.isposinf(want))
        np.testing.assert_array_equal(np.isneginf(p), np.isneginf(want))
        finite = np.isfinite(want)
        np.testing.assert_allclose(p[finite], want[finite], rtol=2e-3, atol=1e-3)
    if "weight_decay" not in options:  # with L2 decay the gradient wd * p is no longer 0
        assert np.isnan(p[0]) and np.isinf(p[1])  # the pitfalls really occur
    assert np.float16(1e-8) == 0


def test_float16_with_an_eps_that_survives_stays_finite():
    g = np.array([0.0, 1e-5, 0.5], dtype=np.float16)
    p = np.zeros(3, dtype=np.float16)
    adamlib.Adam([p], eps=1e-4).step([g])
    assert np.all(np.isfinite(p))
