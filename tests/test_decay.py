"""adamlib.lab.decay: the timescale, retention and equilibrium of decoupled weight decay, against
torch.optim.AdamW and adamlib.Adam, and Loshchilov & Hutter's Algorithm 2 against torch's convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import lfilter

import adamlib
from adamlib import moments
from adamlib.lab import schedules
from adamlib.lab.decay import (
    best_decay,
    equilibrium_rms,
    normalized_weight_decay,
    parameter_groups,
    retention,
    timescale,
    torch_weight_decay,
    warmup_cosine_rates,
)

rates = st.floats(1e-5, 1.0)
decays = st.floats(1e-4, 10.0)


def adamw_path(grads: np.ndarray, theta0: np.ndarray, lr: float, wd: float, steps_schedule=None):
    """torch.optim.AdamW in float64 on a fixed gradient stream; the parameters after every step."""
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=lr, weight_decay=wd, foreach=False)
    sched = schedules.cosine(opt, len(grads)) if steps_schedule == "cosine" else None
    out = []
    for g in grads:
        p.grad = torch.from_numpy(np.array(g, dtype=float))
        opt.step()
        if sched is not None:
            sched.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


@given(lr=rates, wd=decays)
def test_timescale_is_the_window_of_the_decay_rate(lr, wd):
    if lr * wd >= 0.99:
        return
    assert math.isclose(timescale(lr, wd), 1 / (lr * wd), rel_tol=1e-12)
    # the same number as the EMA window of 1 - lr * wd (which rounds 1 - lr * wd first)
    assert math.isclose(timescale(lr, wd), moments.effective_window(1 - lr * wd), rel_tol=1e-6)


@given(lr=st.floats(1e-4, 0.5), wd=st.floats(1e-3, 1.0), steps=st.integers(0, 300))
def test_constant_retention_is_a_power_below_the_exponential(lr, wd, steps):
    r = retention(lr, wd, steps=steps)
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(r, (1 - lr * wd) ** t, rtol=1e-9)
    assert np.all(r <= np.exp(-t / timescale(lr, wd)) * (1 + 1e-12))  # 1 - x <= exp(-x)


@pytest.mark.parametrize("schedule", [None, "cosine"])
def test_retention_is_what_adamw_does_with_zero_gradients(schedule):
    lr, wd, steps = 0.05, 2.0, 60
    theta0 = np.array([1.5, -0.25, 3.0])
    path = adamw_path(np.zeros((steps, 3)), theta0, lr, wd, schedule)
    lrs = np.full(steps, lr) if schedule is None else schedules.trace("cosine", lr, steps)
    expected = retention(lrs, wd)[:, None] * theta0
    np.testing.assert_allclose(path, expected, rtol=1e-12)


def test_retention_is_the_coefficient_of_the_initial_weights():
    # On an open loop (gradients independent of the weights), two starts differ by exactly the
    # retention times their difference: whatever Adam's updates are, they add the same amount.
    rng = np.random.default_rng(0)
    grads = rng.normal(0.3, 1.0, size=(200, 5))
    a, b = rng.normal(size=5), rng.normal(size=5)
    lr, wd = 0.01, 3.0
    diff = adamw_path(grads, a, lr, wd) - adamw_path(grads, b, lr, wd)
    np.testing.assert_allclose(diff, retention(lr, wd, steps=200)[:, None] * (a - b), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("beta1", [0.0, 0.9])
def test_equilibrium_rms_under_noise_like_gradients(beta1):
    lr, wd, steps, dim = 1e-2, 1.0, 1200, 4000  # tau = 100 steps; the start is forgotten by e^-12
    grads = np.random.default_rng(1).normal(size=(steps, dim))
    w = np.zeros(dim)
    opt = adamlib.Adam([w], lr=lr, betas=(beta1, 0.999), weight_decay=wd, decoupled_weight_decay=True)
    for g in grads:
        opt.step([g])
    rms = np.sqrt(np.mean(w**2))
    assert abs(rms / equilibrium_rms(lr, wd, beta1) - 1) < 0.03


@given(lr=st.floats(1e-2, 0.5), wd=st.floats(0.05, 1.0), beta1=st.floats(0.0, 0.99))
def test_equilibrium_rms_is_the_sum_of_the_squared_impulse_response(lr, wd, beta1):
    # theta_t = a theta_{t-1} - lr * m_t, m_t = beta1 m_{t-1} + (1 - beta1) z_t: the weight's
    # response to one unit of noise k steps ago, summed in squares.
    if lr * wd >= 0.9:
        return
    a = 1 - lr * wd
    impulse = np.zeros(int(40 / min(lr * wd, 1 - beta1)) + 100)
    impulse[0] = 1.0
    response = lfilter([lr * (1 - beta1)], np.convolve([1, -a], [1, -beta1]), impulse)
    assert math.isclose(equilibrium_rms(lr, wd, beta1), math.sqrt(np.sum(response**2)), rel_tol=1e-6)


@given(lr=st.floats(1e-4, 0.5), wd=st.floats(1e-3, 1.0))
def test_equilibrium_rms_without_momentum_is_an_ema_of_noise(lr, wd):
    if lr * wd >= 0.9:
        return
    expected = moments.ema_noise_ratio(1 - lr * wd) / wd
    assert math.isclose(equilibrium_rms(lr, wd, beta1=0.0), expected, rel_tol=1e-6)
    assert equilibrium_rms(lr, wd, beta1=0.0) >= math.sqrt(lr / (2 * wd))  # the approximation, from below


def test_without_decay_noise_like_updates_do_not_settle():
    lr, steps, dim = 1e-2, 1200, 4000
    grads = np.random.default_rng(1).normal(size=(steps, dim))
    w = np.zeros(dim)
    opt = adamlib.Adam([w], lr=lr, betas=(0.0, 0.999))
    for g in grads:
        opt.step([g])
    assert np.sqrt(np.mean(w**2)) > 3 * equilibrium_rms(lr, 1.0)  # a random walk: ~lr * sqrt(t)


@pytest.mark.parametrize("peak", [1e-3, 3e-2])
def test_torch_weight_decay_reproduces_loshchilov_hutter_algorithm_2(peak):
    steps, paper_wd = 80, 1e-3
    rng = np.random.default_rng(2)
    grads = rng.normal(0.1, 1.0, size=(steps, 4))
    theta0 = rng.normal(size=4)
    torch_path = adamw_path(grads, theta0, peak, torch_weight_decay(paper_wd, peak), "cosine")
    # Algorithm 2: theta <- theta - eta_t * (alpha * m_hat / (sqrt(v_hat) + eps) + lambda * theta)
    eta = schedules.trace("cosine", 1.0, steps)
    theta, m, v, out = theta0.copy(), np.zeros(4), np.zeros(4), []
    for t, (g, e) in enumerate(zip(grads, eta), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        theta = theta - e * (peak * m_hat / (np.sqrt(v_hat) + 1e-8) + paper_wd * theta)
        out.append(theta)
    np.testing.assert_allclose(torch_path, np.array(out), rtol=1e-10, atol=1e-14)


def test_torch_weight_decay_broadcasts():
    out = torch_weight_decay([1e-4, 1e-3], np.array([[1e-3], [1e-2]]))
    np.testing.assert_allclose(out, [[0.1, 1.0], [0.01, 0.1]])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: timescale(0.0, 0.1), "lr"),
        (lambda: timescale(-1e-3, 0.1), "lr"),
        (lambda: timescale(1e-3, 0.0), "weight_decay"),
        (lambda: timescale(1e-3, float("nan")), "weight_decay"),
        (lambda: timescale(0.5, 2.0), "lr \\* weight_decay"),
        (lambda: equilibrium_rms(1e-3, -1.0), "weight_decay"),
        (lambda: equilibrium_rms(2.0, 1.0), "lr \\* weight_decay"),
        (lambda: equilibrium_rms(1e-3, 1.0, beta1=1.0), "beta1"),
        (lambda: retention(1e-3, 0.1), "steps"),
        (lambda: retention(1e-3, 0.1, steps=-1), "steps"),
        (lambda: retention([1e-3, 1e-3], 0.1, steps=2), "steps"),
        (lambda: retention([[1e-3]], 0.1), "lr"),
        (lambda: retention([1e-3, float("inf")], 0.1), "lr"),
        (lambda: retention([0.1, 0.6], 2.0), "lr \\* weight_decay"),
        (lambda: retention(1e-3, -0.1, steps=3), "weight_decay"),
        (lambda: torch_weight_decay(-1.0, 1e-3), "paper_weight_decay"),
        (lambda: torch_weight_decay(1e-4, 0.0), "lr"),
        (lambda: warmup_cosine_rates(0.0, 10, warmup=2, min_lr=0.0), "peak"),
        (lambda: warmup_cosine_rates(1.0, 0, warmup=2, min_lr=0.0), "steps"),
        (lambda: warmup_cosine_rates(1.0, 10, warmup=-1, min_lr=0.0), "warmup"),
        (lambda: warmup_cosine_rates(1.0, 10, warmup=2, min_lr=2.0), "min_lr"),
        (lambda: warmup_cosine_rates(1.0, 10, warmup=5, min_lr=0.1, decay_steps=5), "decay_steps"),
        (lambda: normalized_weight_decay(-1.0, 32, 100, 1.0), "weight_decay"),
        (lambda: normalized_weight_decay(0.1, 0, 100, 1.0), "batch_size"),
        (lambda: normalized_weight_decay(0.1, 32, 1.5, 1.0), "n_train"),
        (lambda: normalized_weight_decay(0.1, 32, 100, 0.0), "epochs"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_bad_type_is_a_type_error():
    with pytest.raises(TypeError, match="weight_decay"):
        timescale(1e-3, "0.1")


@given(slope=st.floats(-2.0, 2.0), offset=st.floats(-3.5, -1.5))
def test_best_decay_recovers_a_quadratic_valley(slope, offset):
    # loss = (log10 wd - (offset + slope * log10(lr / 1e-2)))^2: the valley's floor is exact
    # wherever it lies between grid points inside the grid.
    lrs = np.array([3e-3, 1e-2, 3e-2])
    decays = 10.0 ** np.arange(-6.0, 1.01, 0.5)
    centre = offset + slope * np.log10(lrs / 1e-2)
    losses = (np.log10(decays)[None, :] - centre[:, None]) ** 2
    np.testing.assert_allclose(np.log10(best_decay(losses, decays)), centre, atol=1e-9)


def test_best_decay_edges_and_divergence():
    decays = [1e-3, 1e-2, 1e-1, 1.0]
    losses = np.array([[0.1, 0.5, 0.9, 1.0],             # best at the edge: the edge
                       [np.inf, 0.3, np.nan, 0.2],       # non-finite never best; edge again
                       [np.nan, 0.2, 0.1, np.inf],       # a non-finite neighbour: the grid point
                       [np.nan] * 4])                    # nothing finite: NaN
    out = best_decay(losses, decays)
    np.testing.assert_allclose(out[:3], [1e-3, 1.0, 1e-1])
    assert np.isnan(out[3])


@pytest.mark.parametrize(
    ("losses", "decays", "name"),
    [
        (np.ones((2, 3)), [0.0, 1e-2, 1e-1], "decays"),
        (np.ones((2, 3)), [1e-1, 1e-2, 1e-3], "decays"),
        (np.ones((2, 3)), [[1e-3, 1e-2, 1e-1]], "decays"),
        (np.ones((2, 4)), [1e-3, 1e-2, 1e-1], "losses"),
        (np.ones(3), [1e-3, 1e-2, 1e-1], "losses"),
    ],
)
def test_best_decay_bad_input(losses, decays, name):
    with pytest.raises(ValueError, match=name):
        best_decay(losses, decays)


def test_parameter_groups_decay_only_the_matrices():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    net[2].bias.requires_grad_(False)
    groups = parameter_groups(net.named_parameters(), 0.5)
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
    assert [p is q for p, q in zip(groups[0]["params"], [net[0].weight, net[2].weight])] == [True, True]
    assert len(groups[1]["params"]) == 3  # the first bias and the LayerNorm's gain and shift
    assert parameter_groups([net[0].bias], 0.1) == [{"params": [net[0].bias], "weight_decay": 0.0}]


@pytest.mark.parametrize("make", [
    lambda groups: torch.optim.AdamW(groups, lr=0.05),
    lambda groups: __import__("adamlib.torch", fromlist=["Adam"]).Adam(groups, lr=0.05, decoupled_weight_decay=True),
])
def test_parameter_groups_leave_the_vectors_undecayed(make):
    # With zero gradients only the decay moves anything: the matrix shrinks, the bias stays.
    w = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = make(parameter_groups([w, b], 2.0))
    for _ in range(10):
        w.grad, b.grad = torch.zeros_like(w), torch.zeros_like(b)
        opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3, 2), (1 - 0.05 * 2.0) ** 10, dtype=torch.float64))
    torch.testing.assert_close(b.detach(), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize(("params", "wd", "error", "name"), [
    (torch.ones(2, requires_grad=True), 0.1, TypeError, "params"),
    ([1.0, 2.0], 0.1, TypeError, "params"),
    ([torch.ones(2, requires_grad=True)], -0.1, ValueError, "weight_decay"),
])
def test_parameter_groups_bad_input(params, wd, error, name):
    with pytest.raises(error, match=name):
        parameter_groups(params, wd)


def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT's train.py get_lr, transcribed."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


@given(peak=st.floats(1e-5, 1.0), floor=st.floats(0.0, 1.0), warmup=st.integers(0, 20),
       length=st.integers(1, 40), extra=st.integers(0, 20))
def test_warmup_cosine_rates_is_nanogpts_get_lr(peak, floor, warmup, length, extra):
    decay_steps = warmup + length
    steps = decay_steps + extra
    rates = warmup_cosine_rates(peak, steps, warmup=warmup, min_lr=floor * peak, decay_steps=decay_steps)
    expected = [nanogpt_get_lr(i, peak, warmup, decay_steps, floor * peak) for i in range(steps)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-300)
    assert rates.max() <= peak * (1 + 1e-12) and rates.min() >= 0


def test_nanogpt_decay_under_its_schedule():
    rates = warmup_cosine_rates(6e-4, 600_000, warmup=2000, min_lr=6e-5)
    assert rates[1999] == pytest.approx(6e-4 * 2000 / 2001) and rates[-1] == pytest.approx(6e-5)
    # the total decay is the sum of lr_t * wd: about 20 timescales, not 600k / 16.7k = 36
    assert -np.log(retention(rates, 0.1)[-1]) == pytest.approx(0.1 * rates.sum(), rel=1e-3)
    assert 19 < 0.1 * rates.sum() < 21


@given(norm=st.floats(1e-4, 1.0), b=st.integers(1, 512), n=st.integers(1, 10**6), epochs=st.floats(0.1, 1e3))
def test_normalized_weight_decay_falls_as_the_root_of_the_steps(norm, b, n, epochs):
    lam = normalized_weight_decay(norm, b, n, epochs)
    assert lam == pytest.approx(norm * math.sqrt(b / (n * epochs)), rel=1e-12)
    assert normalized_weight_decay(norm, b, n, 4 * epochs) == pytest.approx(lam / 2, rel=1e-12)
