"""adamlib.moments: EMA weights, windows, bias correction and step bounds, against torch.optim.Adam
and adamlib.Adam where an optimizer is involved, and against their definitions elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from adamlib.moments import (
    bias_correction_factor,
    effective_window,
    ema,
    ema_noise_ratio,
    ema_weights,
    step_bound,
    uncorrected_step,
)

betas = st.floats(0.0, 0.999, allow_nan=False)
BETA_PAIRS = [(0.0, 0.9), (0.5, 0.9), (0.9, 0.95), (0.9, 0.999), (0.0, 0.9999), (0.9, 0.9999), (0.99, 0.999)]


def torch_moments(grads: np.ndarray, beta1: float, beta2: float):
    """The raw state (exp_avg, exp_avg_sq) of torch.optim.Adam after every step, float64."""
    p = torch.zeros(grads.shape[1:], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-3, betas=(beta1, beta2), foreach=False)
    ms, vs = [], []
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        ms.append(opt.state[p]["exp_avg"].numpy().copy())
        vs.append(opt.state[p]["exp_avg_sq"].numpy().copy())
    return np.array(ms), np.array(vs)


def adam_steps(grads, beta1, beta2, *, bias_correction, lr=0.1):
    """|step| / lr of adamlib.Adam with eps = 0 on a stream of gradients (shape (T, d))."""
    p = np.zeros(np.shape(grads)[1:])
    opt = adamlib.Adam([p], lr=lr, betas=(beta1, beta2), eps=0.0, bias_correction=bias_correction)
    out = []
    for g in grads:  # the update as Adam computed it (p itself turns NaN after a 0/0 step)
        opt.step([np.asarray(g, dtype=float)])
        out.append(np.abs(opt.internals().update[0]) / lr)
    return np.array(out)


# -- ema_weights, effective_window, bias_correction_factor ---------------------------------


@given(beta=betas, n=st.integers(0, 400))
def test_weights_sum_to_the_bias_correction_factor(beta, n):
    w = ema_weights(beta, n)
    assert w.shape == (n,)
    assert np.all(w >= 0)
    if n:
        assert w[0] == pytest.approx(1 - beta)
        assert w.sum() == pytest.approx(bias_correction_factor(beta, n), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_effective_window_is_the_mean_age_plus_one(beta):
    w = ema_weights(beta, 20_000)  # the tail beyond 20,000 steps is below 1e-80 for beta <= 0.99
    assert np.sum(w * np.arange(1, w.size + 1)) == pytest.approx(effective_window(beta), rel=1e-9)


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999])
def test_weight_falls_to_about_1_over_e_after_one_window(beta):
    n = int(round(effective_window(beta)))
    w = ema_weights(beta, n + 1)
    assert w[n] / w[0] == pytest.approx(math.exp(-1), rel=0.06)


def test_bias_correction_factor_is_vectorized_over_steps():
    t = np.arange(1, 50)
    np.testing.assert_allclose(bias_correction_factor(0.9, t), [ema_weights(0.9, k).sum() for k in t], rtol=1e-12)
    assert isinstance(bias_correction_factor(0.9, 3), float)


# -- ema against torch.optim.Adam's moments ---------------------------------------------------


@pytest.mark.parametrize("beta1, beta2", BETA_PAIRS)
def test_ema_reproduces_torch_adam_moments(beta1, beta2):
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((60, 3)) * 10.0 ** rng.integers(-3, 3, size=(60, 3))
    m, v = torch_moments(grads, beta1, beta2)
    np.testing.assert_allclose(ema(grads, beta1, bias_correction=False), m, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(ema(grads**2, beta2, bias_correction=False), v, rtol=1e-10, atol=1e-300)
    t = np.arange(1, 61)[:, None]
    np.testing.assert_allclose(ema(grads, beta1), m / (1 - beta1**t), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("beta1, beta2", BETA_PAIRS)
def test_ema_reproduces_the_bias_corrected_moments_of_adamlib_adam(beta1, beta2):
    rng = np.random.default_rng(2)
    grads = rng.standard_normal((40, 4))
    p = np.zeros(4)
    opt = adamlib.Adam([p], betas=(beta1, beta2))
    m_hat, v_hat = [], []
    for g in grads:
        opt.step([g])
        m_hat.append(opt.internals().m_hat[0])
        v_hat.append(opt.internals().v_hat[0])
    np.testing.assert_allclose(ema(grads, beta1), m_hat, rtol=1e-10)
    np.testing.assert_allclose(ema(grads**2, beta2), v_hat, rtol=1e-10)


@given(beta=betas, c=st.floats(-1e3, 1e3, allow_nan=False), n=st.integers(1, 300))
def test_corrected_ema_of_a_constant_is_that_constant(beta, c, n):
    xs = np.full(n, c)
    np.testing.assert_allclose(ema(xs, beta), xs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ema(xs, beta, bias_correction=False), c * (1 - beta ** np.arange(1, n + 1)),
                               rtol=1e-9, atol=1e-12)


def test_ema_averages_each_column_on_its_own():
    xs = np.random.default_rng(3).standard_normal((30, 2, 3))
    out = ema(xs, 0.8)
    assert out.shape == xs.shape
    np.testing.assert_allclose(out[:, 1, 2], ema(xs[:, 1, 2], 0.8), rtol=1e-14)


def test_ema_of_nothing_is_empty():
    assert ema([], 0.9).shape == (0,)


def test_ema_does_not_modify_its_input():
    xs = np.arange(5.0)
    ema(xs, 0.5)
    np.testing.assert_array_equal(xs, np.arange(5.0))


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_ema_noise_ratio_is_the_stationary_noise_of_the_ema(beta):
    noise = np.random.default_rng(4).standard_normal((20_000, 20))
    tail = ema(noise, beta)[5_000:]  # long past the start: stationary
    assert tail.std() == pytest.approx(ema_noise_ratio(beta), rel=0.05)
    assert ema_noise_ratio(beta) == pytest.approx(np.sqrt(np.sum(ema_weights(beta, 50_000) ** 2)), rel=1e-9)


# -- steps of Adam: without correction, and the worst case ------------------------------------


@pytest.mark.parametrize("beta1, beta2", BETA_PAIRS)
def test_uncorrected_step_is_adams_step_on_a_constant_gradient(beta1, beta2):
    grads = np.full((50, 1), -0.37)
    measured = adam_steps(grads, beta1, beta2, bias_correction=False)[:, 0]
    np.testing.assert_allclose(uncorrected_step(beta1, beta2, np.arange(1, 51)), measured, rtol=1e-12)
    assert uncorrected_step(beta1, beta2) == pytest.approx(measured[0], rel=1e-12)


@pytest.mark.parametrize("beta1, beta2", BETA_PAIRS)
def test_with_correction_torch_steps_exactly_lr_on_a_constant_gradient(beta1, beta2):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1, betas=(beta1, beta2), eps=0.0, foreach=False)
    for _ in range(20):
        before = p.detach().clone()
        p.grad = torch.tensor([-0.37], dtype=torch.float64)
        opt.step()
        assert abs((p.detach() - before).item()) == pytest.approx(0.1, rel=1e-12)


@given(
    beta1=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    beta2=st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.999]),
    bias_correction=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_gradient_stream_beats_the_step_bound(beta1, beta2, bias_correction, seed):
    rng = np.random.default_rng(seed)
    # heavy-tailed gradients with exact zeros and long quiet stretches after large values
    g = rng.standard_cauchy((80, 8)) * (rng.random((80, 8)) < 0.7)
    g[rng.integers(0, 80)] *= 1e4
    steps = adam_steps(g, beta1, beta2, bias_correction=bias_correction)
    finite = np.isfinite(steps)  # 0/0 where every gradient so far was zero
    bounds = np.array([step_bound(beta1, beta2, t, bias_correction=bias_correction) for t in range(1, 81)])
    assert np.all(steps[finite] <= (bounds[:, None] * (1 + 1e-9) + 1e-12).repeat(8, axis=1)[finite])


@pytest.mark.parametrize("beta1, beta2", [(0.5, 0.9), (0.9, 0.95), (0.9, 0.999), (0.0, 0.999)])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_the_step_bound_is_reached(beta1, beta2, bias_correction):
    T = 30
    k = np.arange(T)[::-1]  # age of the gradient fed at each step, the newest last
    g = (beta1 / beta2) ** k if beta1 > 0 else np.where(k == 0, 1.0, 1e-30)  # beta1 = 0: only g_t counts
    steps = adam_steps(g[:, None], beta1, beta2, bias_correction=bias_correction)
    assert steps[-1, 0] == pytest.approx(step_bound(beta1, beta2, T, bias_correction=bias_correction), rel=1e-9)


def test_without_bound_steps_grow_without_limit():
    """beta1**2 >= beta2: a long quiet stretch after a large gradient makes the step as large as we like."""
    assert step_bound(0.99, 0.9) == math.inf
    worst = []
    for T in (20, 60, 120):
        g = (0.99 / 0.9) ** np.arange(T)[::-1]
        worst.append(adam_steps(g[:, None], 0.99, 0.9, bias_correction=True)[-1, 0])
    assert worst[0] < worst[1] < worst[2] and worst[2] > 10


@pytest.mark.parametrize("beta1, beta2", BETA_PAIRS)
def test_the_bound_for_all_time_is_the_limit(beta1, beta2):
    assert step_bound(beta1, beta2, 200_000) == pytest.approx(step_bound(beta1, beta2), rel=1e-6)
    assert step_bound(beta1, beta2, 1, bias_correction=False) == pytest.approx(uncorrected_step(beta1, beta2))
    assert step_bound(beta1, beta2, 1) == pytest.approx(1.0)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [1.0, -0.1, float("nan"), 1.5])
def test_beta_out_of_range_is_refused(beta):
    for call in (lambda: ema_weights(beta, 3), lambda: effective_window(beta), lambda: ema([1.0], beta),
                 lambda: bias_correction_factor(beta, 1), lambda: ema_noise_ratio(beta)):
        with pytest.raises(ValueError, match="beta"):
            call()
    with pytest.raises(ValueError, match="beta1"):
        uncorrected_step(beta, 0.9)
    with pytest.raises(ValueError, match="beta2"):
        step_bound(0.9, beta)


@pytest.mark.parametrize("beta", ["0.9", None, True])
def test_beta_of_the_wrong_type_is_refused(beta):
    with pytest.raises(TypeError, match="beta"):
        ema_weights(beta, 3)


@pytest.mark.parametrize("t", [0, -1, np.array([1, 0])])
def test_step_numbers_start_at_one(t):
    with pytest.raises(ValueError, match="t"):
        bias_correction_factor(0.9, t)
    with pytest.raises(ValueError, match="t"):
        uncorrected_step(0.9, 0.999, t)


@pytest.mark.parametrize("t", [1.5, True, "3"])
def test_step_numbers_are_integers(t):
    with pytest.raises(TypeError, match="t"):
        bias_correction_factor(0.9, t)
    with pytest.raises(TypeError, match="t"):
        step_bound(0.9, 0.999, t)


@pytest.mark.parametrize("n, error", [(-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_weight_count_is_a_natural_number(n, error):
    with pytest.raises(error, match="n"):
        ema_weights(0.9, n)


def test_ema_needs_a_sequence():
    with pytest.raises(ValueError, match="xs"):
        ema(3.0, 0.9)


# --- memory lengths: window, half-life, and the batch-size converter -----------------------------

from adamlib.moments import beta_for_batch_size, beta_from_half_life, beta_from_window, half_life  # noqa: E402


@given(st.floats(0.01, 0.9999))
def test_half_life_is_where_the_weight_halves(beta):
    h = half_life(beta)
    assert beta**h == pytest.approx(0.5, rel=1e-12)
    w = ema_weights(beta, math.ceil(h) + 1)
    assert w[math.floor(h)] / w[0] >= 0.5 - 1e-12 and w[math.ceil(h)] / w[0] <= 0.5 + 1e-12


@given(st.floats(0.5, 0.99999))
def test_half_life_is_about_ln2_windows_near_one(beta):
    assert half_life(beta) / effective_window(beta) == pytest.approx(math.log(2), abs=0.5 * (1 - beta) + 1e-9)


@given(st.floats(0.0, 0.9999))
def test_window_and_half_life_invert(beta):
    assert beta_from_window(effective_window(beta)) == pytest.approx(beta, abs=1e-12)
    if beta > 0:
        assert beta_from_half_life(half_life(beta)) == pytest.approx(beta, abs=1e-12)


def test_no_memory_has_half_life_zero_and_window_one():
    assert half_life(0.0) == 0.0 and beta_from_window(1) == 0.0


@given(st.floats(0.5, 0.999), st.integers(1, 4096), st.integers(1, 4096))
def test_batch_size_converter_keeps_the_half_life_in_samples(beta, b, b_new):
    new = beta_for_batch_size(beta, b, b_new)
    assert half_life(new) * b_new == pytest.approx(half_life(beta) * b, rel=1e-9)
    assert beta_for_batch_size(new, b_new, b) == pytest.approx(beta, rel=1e-12)


def test_batch_size_converter_reproduces_marek_et_al():
    # 0.95 at batch 512 is about 0.9999 at batch 1 (Marek et al., 2025)
    assert beta_for_batch_size(0.95, 512, 1) == pytest.approx(0.9999, abs=5e-6)
    assert beta_for_batch_size(0.9, 64, 64) == 0.9


def test_converter_agrees_with_an_ema_run_on_samples():
    # One EMA per sample with beta_1 and one per batch of 8 with beta_8: after n batches, the first
    # input's weight (relative to the newest) is the same once the rates are converted.
    beta_1 = 0.999
    beta_8 = beta_for_batch_size(beta_1, 1, 8)
    per_sample = ema_weights(beta_1, 8 * 50 + 1)
    per_batch = ema_weights(beta_8, 50 + 1)
    assert per_batch[50] / per_batch[0] == pytest.approx(per_sample[400] / per_sample[0], rel=1e-12)


@pytest.mark.parametrize("fn, arg, name", [(beta_from_window, 0.5, "window"), (beta_from_half_life, 0.0, "steps"),
                                           (beta_from_half_life, math.inf, "steps"), (beta_from_window, math.nan, "window")])
def test_memory_lengths_out_of_range_are_refused(fn, arg, name):
    with pytest.raises(ValueError, match=name):
        fn(arg)


@pytest.mark.parametrize("arg", ["10", True, None])
def test_memory_lengths_of_the_wrong_type_are_refused(arg):
    for fn, name in ((beta_from_window, "window"), (beta_from_half_life, "steps")):
        with pytest.raises(TypeError, match=name):
            fn(arg)


@pytest.mark.parametrize("args, name", [((1.0, 64, 128), "^beta"), ((0.9, 0, 128), "^batch_size"),
                                        ((0.9, 64, -1), "^new_batch_size"), ((0.9, 64, math.inf), "^new_batch_size")])
def test_batch_size_converter_refuses_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        beta_for_batch_size(*args)


def test_half_life_refuses_a_beta_out_of_range():
    with pytest.raises(ValueError, match="beta"):
        half_life(1.0)
