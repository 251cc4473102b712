"""adamlib.baselines (SGD, momentum, RMSprop, AdaGrad) against their torch.optim twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from adamlib.baselines import SGD, Adagrad, RMSprop
from conftest import assert_matches, random_grads, step_side_by_side

# (ours, torch's, state name in torch, our state attribute), keyed by a readable name.
PAIRS = {
    "sgd": (SGD, torch.optim.SGD, None, None),
    "momentum": (SGD, torch.optim.SGD, "momentum_buffer", "momentum_buffer"),
    "rmsprop": (RMSprop, torch.optim.RMSprop, "square_avg", "square_avg"),
    "adagrad": (Adagrad, torch.optim.Adagrad, "sum", "sum"),
}


def run_both(name: str, dtype=np.float64, steps: int = 40, seed: int = 0, lrs=None, **options):
    """Step our optimizer and torch's on the same random gradients; return both final states."""
    ours_cls, theirs_cls, torch_key, our_key = PAIRS[name]
    ours, params, theirs, tparams = step_side_by_side(
        ours_cls, theirs_cls, dtype, steps=steps, seed=seed, lrs=lrs, **options
    )
    got = {"param": params}
    want = {"param": [tp.detach().numpy() for tp in tparams]}
    if torch_key is not None and options.get("momentum", 1) != 0:  # SGD(momentum=0) keeps no buffer
        got["state"] = getattr(ours, our_key)
        want["state"] = [theirs.state[tp][torch_key].numpy() for tp in tparams]
    assert ours.t == steps
    return got, want


# -- against the oracle -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,options", [
    ("sgd", dict(lr=1e-3)),
    ("momentum", dict(lr=1e-2, momentum=0.9)),
    ("rmsprop", dict()),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, eps=1e-3)),
    ("adagrad", dict()),
    ("adagrad", dict(lr=0.5, eps=1e-6)),
])
def test_defaults_and_a_second_setting_match_torch(name, options, dtype):
    got, want = run_both(name, dtype=dtype, **options)
    assert_matches(got, want, dtype)


@given(lr=st.floats(0.0, 1.0), momentum=st.floats(0.0, 0.99), seed=st.integers(0, 2**32 - 1))
def test_sgd_with_momentum_matches_torch(lr, momentum, seed):
    got, want = run_both("momentum", lr=lr, momentum=momentum, seed=seed)
    assert_matches(got, want)


@given(lr=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_plain_sgd_matches_torch(lr, seed):
    got, want = run_both("sgd", lr=lr, seed=seed)
    assert_matches(got, want)


@given(
    lr=st.floats(0.0, 1.0),
    alpha=st.floats(0.0, 0.9999),
    eps=st.floats(1e-12, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_rmsprop_matches_torch(lr, alpha, eps, seed):
    got, want = run_both("rmsprop", lr=lr, alpha=alpha, eps=eps, seed=seed)
    assert_matches(got, want)


@given(lr=st.floats(0.0, 1.0), eps=st.floats(1e-12, 1.0), seed=st.integers(0, 2**32 - 1))
def test_adagrad_matches_torch(lr, eps, seed):
    got, want = run_both("adagrad", lr=lr, eps=eps, seed=seed)
    assert_matches(got, want)


@pytest.mark.parametrize("name,options", [
    ("sgd", {}), ("momentum", dict(momentum=0.5)), ("rmsprop", {}), ("adagrad", {}),
])
def test_learning_rate_changed_between_steps_matches_torch(name, options):
    lrs = np.geomspace(0.3, 1e-4, 35)
    got, want = run_both(name, steps=35, lrs=lrs, **options)
    assert_matches(got, want)


# -- what the chapter claims about them ----------------------------------------------------

@given(
    lr=st.floats(1e-4, 1.0),
    rho=st.floats(0.0, 0.999),
    eps=st.floats(1e-10, 1e-2),
    seed=st.integers(0, 2**32 - 1),
)
def test_adam_without_momentum_or_bias_correction_is_rmsprop(lr, rho, eps, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(5)
    r = a.copy()
    adam = adamlib.Adam([a], lr=lr, betas=(0.0, rho), eps=eps, bias_correction=False)
    rms = RMSprop([r], lr=lr, alpha=rho, eps=eps)
    for _ in range(30):
        g = random_grads(rng, [(5,)], np.float64)
        adam.step(g)
        rms.step(g)
    np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-300)


def test_first_rmsprop_step_is_lr_over_sqrt_one_minus_alpha():
    g = np.array([3e-1, -2.0, 50.0])
    x = np.zeros(3)
    RMSprop([x], lr=0.01, alpha=0.99).step([g])
    # s_1 = (1 - alpha) g^2: no bias correction, so the first step is 10 lr, whatever |g|
    np.testing.assert_allclose(x, -0.01 / np.sqrt(1 - 0.99) * np.sign(g), rtol=1e-6)


def test_adagrad_effective_learning_rate_only_shrinks():
    rng = np.random.default_rng(1)
    x = np.zeros(4)
    opt = Adagrad([x], lr=1.0, eps=0.0)
    previous = np.full(4, np.inf)
    for _ in range(20):
        opt.step([rng.standard_normal(4)])
        effective = 1.0 / np.sqrt(opt.sum[0])
        assert np.all(effective <= previous)
        previous = effective


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.0, momentum=0.9), lambda p: RMSprop(p, lr=0.0), lambda p: Adagrad(p, lr=0.0),
])
def test_zero_learning_rate_leaves_params_unchanged(make):
    x = np.arange(3.0)
    opt = make([x])
    for _ in range(3):
        opt.step([np.ones(3)])
    np.testing.assert_array_equal(x, np.arange(3.0))


# -- bad input: a clear error naming the argument, nothing changed ---------------------

OPTIMIZERS = {"SGD": SGD, "RMSprop": RMSprop, "Adagrad": Adagrad}


@pytest.mark.parametrize("cls", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("lr", [-1e-3, float("nan"), float("inf")])
def test_bad_lr_is_refused(cls, lr):
    with pytest.raises(ValueError, match="lr"):
        cls([np.zeros(2)], lr=lr)
    opt = cls([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = lr
    assert opt.lr == 0.1


@pytest.mark.parametrize("cls", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_non_number_lr_is_a_type_error(cls):
    with pytest.raises(TypeError, match="lr"):
        cls([np.zeros(2)], lr="0.1")


@pytest.mark.parametrize("cls,kwargs,name", [
    (SGD, dict(momentum=1.0), "momentum"),
    (SGD, dict(momentum=-0.1), "momentum"),
    (RMSprop, dict(alpha=1.0), "alpha"),
    (RMSprop, dict(alpha=-0.5), "alpha"),
    (RMSprop, dict(eps=-1e-8), "eps"),
    (Adagrad, dict(eps=float("nan")), "eps"),
])
def test_bad_hyperparameter_is_refused_by_name(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([np.zeros(2)], **kwargs)


@pytest.mark.parametrize("cls", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("params,error", [
    ([], ValueError),
    (np.zeros(3), TypeError),  # a bare array, not a list of arrays
    ([[1.0, 2.0]], TypeError),  # a list, not an ndarray
    ([np.zeros(3, dtype=int)], TypeError),
])
def test_bad_params_are_refused(cls, params, error):
    with pytest.raises(error, match="params"):
        cls(params, lr=0.1)


@pytest.mark.parametrize("cls", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("grads,error", [
    ([np.ones(3)], ValueError),  # one gradient for two params
    ([np.ones(3), np.ones(3)], ValueError),  # wrong shape for params[1]
    ([np.ones(3), np.ones((2, 2), dtype=np.complex128)], TypeError),
])
def test_bad_grads_are_refused_before_anything_changes(cls, grads, error):
    params = [np.arange(3.0), np.ones((2, 2))]
    opt = cls(params, lr=0.1, **({"momentum": 0.9} if cls is SGD else {}))
    opt.step([np.ones(3), np.ones((2, 2))])
    before = [p.copy() for p in params]
    with pytest.raises(error, match="grads"):
        opt.step(grads)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert opt.t == 1


@pytest.mark.parametrize("cls", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_repr_names_the_optimizer_and_its_settings(cls):
    text = repr(cls([np.zeros(2)], lr=0.25))
    assert text.startswith(cls.__name__) and "lr=0.25" in text
