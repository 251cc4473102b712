"""Adam-atan2 (Everett et al., 2024): adam_atan2_step and AdamAtan2, held to their formula,
to Adam in the limit a = b -> infinity, and to their one property: no epsilon, no scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from conftest import SHAPES, random_grads


def run_step_function(step, grads_seq, params, **kw):
    params = [p.copy() for p in params]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_seq, start=1):
        for i, g in enumerate(grads):
            params[i], ms[i], vs[i] = step(params[i], g, ms[i], vs[i], t, **kw)
    return params


def gradient_sequence(steps=40, seed=0, scale=1.0, zeros=True):
    """random_grads (1e-8 to 1e3, some exact zeros) times ``scale``; without the zeros (where
    Adam with eps = 0 divides 0 by 0) if ``zeros`` is False."""
    rng = np.random.default_rng(seed)
    seq = [random_grads(rng, SHAPES, np.float64) for _ in range(steps)]
    if not zeros:
        seq = [[np.where(g == 0, 1e-3, g) for g in grads] for grads in seq]
    return [[g * scale for g in grads] for grads in seq]


def start(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def test_class_follows_the_step_function():
    grads = gradient_sequence()
    want = run_step_function(adamlib.adam_atan2_step, grads, start(), lr=0.01, beta1=0.8, beta2=0.99, a=1.5, b=0.7)
    params = start()
    opt = adamlib.AdamAtan2(params, lr=0.01, betas=(0.8, 0.99), a=1.5, b=0.7)
    for g in grads:
        opt.step(g)
    for p, q in zip(params, want):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)


@given(log_scale=st.floats(-30, 30), seed=st.integers(0, 2**16))
def test_invariant_to_the_loss_scale(log_scale, seed):
    """Multiplying every gradient by c changes nothing, for any c in 1e-30..1e30."""
    grads = gradient_sequence(steps=20, seed=seed)
    scaled = gradient_sequence(steps=20, seed=seed, scale=10.0**log_scale)
    for step in (adamlib.adam_atan2_step,):
        a = run_step_function(step, grads, start(seed), lr=0.01)
        b = run_step_function(step, scaled, start(seed), lr=0.01)
        for p, q in zip(a, b):
            np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_adam_with_eps_is_not_invariant_where_atan2_is():
    """The property above is not automatic: Adam with eps = 1e-8 loses it at small scales."""
    grads = gradient_sequence(steps=20)
    tiny = gradient_sequence(steps=20, scale=1e-12)
    a = run_step_function(adamlib.adam_step, grads, start(), lr=0.01)
    b = run_step_function(adamlib.adam_step, tiny, start(), lr=0.01)
    assert max(np.max(np.abs(p - q)) for p, q in zip(a, b)) > 1e-3


def test_powers_of_two_give_identical_bits():
    grads = gradient_sequence(steps=20)
    scaled = gradient_sequence(steps=20, scale=2.0**-60)
    a = run_step_function(adamlib.adam_atan2_step, grads, start(), lr=0.01)
    b = run_step_function(adamlib.adam_atan2_step, scaled, start(), lr=0.01)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("big", [1e6, 1e9])
def test_adam_without_eps_is_the_limit_a_equals_b_to_infinity(big):
    grads = gradient_sequence(zeros=False)
    want = run_step_function(adamlib.adam_step, grads, start(), lr=0.01, eps=0.0)
    got = run_step_function(adamlib.adam_atan2_step, grads, start(), lr=0.01, a=big, b=big)
    for p, q in zip(got, want):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [{}, {"amsgrad": True}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
     {"maximize": True}, {"bias_correction": False}],
    ids=lambda o: ",".join(o) or "default",
)
def test_every_option_works_as_in_adam(options):
    """With a = b large, AdamAtan2 is Adam with eps = 0, option by option (and Adam is held
    to torch.optim.Adam by test_adam_oracle)."""
    grads = gradient_sequence(zeros=False)
    p1, p2 = start(), start()
    ours = adamlib.AdamAtan2(p1, lr=0.01, a=1e8, b=1e8, **options)
    adam = adamlib.Adam(p2, lr=0.01, eps=0.0, **options)
    for g in grads:
        ours.step(g)
        adam.step(g)
    for p, q in zip(p1, p2):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


@given(seed=st.integers(0, 2**16), lr=st.floats(1e-4, 1.0), a=st.floats(0.1, 10.0), b=st.floats(0.1, 10.0))
def test_each_step_is_bounded_and_finite(seed, lr, a, b):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    opt = adamlib.AdamAtan2(params, lr=lr, a=a, b=b)
    for _ in range(10):
        before = [p.copy() for p in params]
        grads = random_grads(rng, SHAPES, np.float64)
        opt.step(grads)
        for p, q in zip(params, before):
            assert np.all(np.isfinite(p))
            assert np.all(np.abs(p - q) <= lr * a * math.pi / 2 * (1 + 1e-12))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_zero_gradients_move_nothing_and_give_no_nan(dtype):
    """atan2(0, 0) = 0 where Adam's 0 / (0 + eps) is 0/0 = NaN in float16 (eps rounds to 0)."""
    params = [np.ones(3, dtype=dtype)]
    opt = adamlib.AdamAtan2(params, lr=0.01)
    for _ in range(3):
        opt.step([np.zeros(3, dtype=dtype)])
    np.testing.assert_array_equal(params[0], np.ones(3, dtype=dtype))


def test_internals_describe_the_step():
    params = start()
    opt = adamlib.AdamAtan2(params, lr=0.05)
    grads = gradient_sequence(steps=3)
    for g in grads[:2]:
        opt.step(g)
    before = [p.copy() for p in params]
    opt.step(grads[2])
    info = opt.internals()
    for p, q, u, rate, mh, vh in zip(params, before, info.update, info.effective_lr, info.m_hat, info.v_hat):
        np.testing.assert_allclose(p - q, u, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(-rate * mh, u, rtol=1e-12, atol=1e-15)
    # where m_hat = 0 the rate is its limit lr * a / (b * sqrt(v_hat)), not 0/0
    opt = adamlib.AdamAtan2([np.ones(2)], lr=0.05, a=2.0, b=0.5)
    opt.step([np.array([0.0, 3.0])])
    opt.step([np.array([0.0, -2.0])])
    info = opt.internals()
    assert info.m_hat[0][0] == 0 and np.isinf(info.effective_lr[0][0])  # v_hat = 0 too: no finite limit
    opt.step([np.array([1.0, 0.0])])
    opt.step([np.array([-0.9, 0.0])])
    info = opt.internals()
    mh, vh, rate = info.m_hat[0], info.v_hat[0], info.effective_lr[0]
    limit = 0.05 * 2.0 / (0.5 * np.sqrt(vh))
    assert mh[0] == 0 and np.all(np.isfinite(rate))
    np.testing.assert_allclose(rate[mh == 0], limit[mh == 0], rtol=1e-12)


@pytest.mark.parametrize("name, value", [("a", 0.0), ("b", -1.0), ("a", float("nan")), ("b", float("inf"))])
def test_bad_scales_are_refused_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        adamlib.AdamAtan2([np.zeros(2)], **{name: value})
    with pytest.raises(ValueError, match=name):
        adamlib.adam_atan2_step(np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1), 1, **{name: value})
    with pytest.raises(TypeError, match=name):
        adamlib.AdamAtan2([np.zeros(2)], **{name: "1"})


def test_step_counts_from_one():
    with pytest.raises(ValueError, match="t="):
        adamlib.adam_atan2_step(np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1), 0)


def test_state_round_trip_and_foreign_states(tmp_path):
    params = start()
    opt = adamlib.AdamAtan2(params, lr=0.02, a=2.0, b=0.5, amsgrad=True)
    for g in gradient_sequence(steps=5):
        opt.step(g)
    state = opt.state_dict()
    assert state["a"] == 2.0 and state["b"] == 0.5
    other = adamlib.AdamAtan2([p.copy() for p in params], amsgrad=True)
    other.load_state_dict(state)
    assert (other.a, other.b, other.t) == (2.0, 0.5, 5)
    # a plain Adam's state has no a, b: refused, nothing changed
    adam = adamlib.Adam([p.copy() for p in params], amsgrad=True)
    adam.step(gradient_sequence(steps=1)[0])
    before = other.state_dict()
    with pytest.raises(ValueError, match="'a', 'b'"):
        other.load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"state\['b'\]"):
        other.load_state_dict({**state, "b": 0.0})
    after = other.state_dict()
    assert (after["a"], after["b"], after["step"]) == (before["a"], before["b"], before["step"])
    # files keep a and b
    opt.save(tmp_path / "atan2.npz")
    fresh = adamlib.AdamAtan2([np.zeros_like(p) for p in params], amsgrad=True)
    fresh.load(tmp_path / "atan2.npz")
    assert (fresh.a, fresh.b) == (2.0, 0.5)
    for p, q in zip(fresh.params, params):
        np.testing.assert_array_equal(p, q)
    assert "a=2.0" in repr(opt) and "eps" not in repr(opt)
