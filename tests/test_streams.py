"""adamlib.lab.streams: synthetic gradient streams, the plateau objective, and Adam driven over them
(held to torch.optim.Adam with bias correction, to a plain reference loop without)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from adamlib.lab.streams import Plateau, adam_path, adam_updates, noisy_gradients, scale_shift

# -- streams ---------------------------------------------------------------------------------


def test_noisy_gradients_are_seeded_and_have_the_asked_mean_and_noise():
    g = noisy_gradients(20_000, mean=1.5, noise=0.3, dim=3, seed=7)
    assert g.shape == (20_000, 3) and g.dtype == np.float64
    np.testing.assert_array_equal(g, noisy_gradients(20_000, mean=1.5, noise=0.3, dim=3, seed=7))
    assert not np.array_equal(g, noisy_gradients(20_000, mean=1.5, noise=0.3, dim=3, seed=8))
    np.testing.assert_allclose(g.mean(axis=0), 1.5, atol=0.01)
    np.testing.assert_allclose(g.std(axis=0), 0.3, rtol=0.03)


def test_noise_free_gradients_are_the_mean():
    np.testing.assert_array_equal(noisy_gradients(5, mean=-2.0, noise=0.0), np.full((5, 1), -2.0))


@pytest.mark.parametrize("at", [0, 7, 20])
def test_scale_shift_rescales_from_step_at(at):
    base = noisy_gradients(20, mean=1.0, noise=0.5, dim=2, seed=3)
    g = scale_shift(20, at=at, factor=10.0, mean=1.0, noise=0.5, dim=2, seed=3)
    np.testing.assert_array_equal(g[:at], base[:at])
    np.testing.assert_allclose(g[at:], 10.0 * base[at:], rtol=1e-15)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=2.0), TypeError, "steps"),
        (dict(steps=3, dim=0), ValueError, "dim"),
        (dict(steps=3, noise=-1.0), ValueError, "noise"),
        (dict(steps=3, mean=float("nan")), ValueError, "mean"),
        (dict(steps=3, mean="1"), TypeError, "mean"),
    ],
)
def test_noisy_gradients_refuse_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        noisy_gradients(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(steps=10, at=11, factor=2.0), ValueError, "at"),
        (dict(steps=10, at=-1, factor=2.0), ValueError, "at"),
        (dict(steps=10, at=5, factor=0.0), ValueError, "factor"),
        (dict(steps=10, at=5, factor=float("inf")), ValueError, "factor"),
        (dict(steps=0, at=0, factor=2.0), ValueError, "steps"),
    ],
)
def test_scale_shift_refuses_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        scale_shift(**kwargs)


# -- the plateau -------------------------------------------------------------------------------


def test_plateau_loss_is_continuous_and_its_grad_is_its_slope():
    f = Plateau(steep=2.0, flat=0.05, width=1.5)
    for kink in (0.0, 1.5):
        assert f.loss(kink - 1e-12) == pytest.approx(f.loss(kink), abs=1e-10)
    x = np.array([-3.0, -0.5, 0.2, 1.0, 1.49, 2.0, 7.0])
    h = 1e-6
    np.testing.assert_allclose(f.grad(x), (f.loss(x + h) - f.loss(x - h)) / (2 * h), rtol=1e-6)
    assert np.all(np.diff(f.loss(np.linspace(-2, 4, 200))) < 0)  # the loss falls as x grows


def test_escape_step_is_the_first_point_past_the_plateau():
    f = Plateau(width=1.0)
    assert f.escape_step(np.array([[-1.0], [0.5], [1.0], [0.9], [2.0]])) == 2
    assert f.escape_step(np.array([-1.0, 0.5, 0.99])) is None


@pytest.mark.parametrize("name", ["steep", "flat", "width"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_plateau_refuses_non_positive_sizes(name, value):
    with pytest.raises(ValueError, match=name):
        Plateau(**{name: value})


# -- Adam over them ------------------------------------------------------------------------------


def torch_path(grad, x0, steps, **options):
    x = torch.tensor(np.array(x0, dtype=float), requires_grad=True)
    opt = torch.optim.Adam([x], foreach=False, **options)
    path = [x.detach().numpy().copy()]
    for t in range(steps):
        x.grad = torch.from_numpy(np.asarray(grad(x.detach().numpy().copy(), t), dtype=float))
        opt.step()
        path.append(x.detach().numpy().copy())
    return np.array(path)


def reference_path(grad, x0, steps, *, lr, betas, eps, bias_correction):
    """Algorithm 1 of Kingma & Ba, written out, with the corrections optional."""
    x = np.array(x0, dtype=float)
    m, v = np.zeros_like(x), np.zeros_like(x)
    path = [x.copy()]
    for t in range(1, steps + 1):
        g = np.asarray(grad(x.copy(), t - 1), dtype=float)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        c1, c2 = (1 - betas[0] ** t, 1 - betas[1] ** t) if bias_correction else (1.0, 1.0)
        x = x - lr * (m / c1) / (np.sqrt(v / c2) + eps)
        path.append(x.copy())
    return np.array(path)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.0, 0.95), (0.99, 0.9)])
def test_adam_path_matches_torch_on_the_plateau(betas):
    f = Plateau()
    options = dict(lr=0.01, betas=betas, eps=1e-8)
    ours = adam_path(lambda x, t: f.grad(x), [-0.5, 0.3], 300, **options)
    np.testing.assert_allclose(ours, torch_path(lambda x, t: f.grad(x), [-0.5, 0.3], 300, **options),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam_path_matches_the_reference_loop(bias_correction):
    g = noisy_gradients(200, mean=0.5, noise=2.0, dim=3, seed=1)
    options = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, bias_correction=bias_correction)
    x0 = [1.0, -1.0, 0.0]
    np.testing.assert_allclose(adam_path(lambda x, t: g[t] + x, x0, 200, **options),
                               reference_path(lambda x, t: g[t] + x, x0, 200, **options), rtol=1e-12, atol=1e-15)


def test_adam_path_leaves_its_inputs_alone():
    x0 = np.array([0.5])
    seen = []

    def grad(x, t):
        seen.append(x)
        x += 100.0  # a careless gradient function must not move the optimizer
        return -np.ones(1)

    path = adam_path(grad, x0, 3, lr=0.1, eps=0.0)
    np.testing.assert_array_equal(x0, [0.5])
    np.testing.assert_allclose(path[:, 0], [0.5, 0.6, 0.7, 0.8], rtol=1e-12)
    assert len(seen) == 3


def test_adam_updates_are_the_path_increments():
    g = scale_shift(100, at=50, factor=10.0, dim=2, seed=0)
    updates = adam_updates(g, lr=0.01)
    path = adam_path(lambda x, t: g[t], np.zeros(2), 100, lr=0.01)
    np.testing.assert_allclose(np.cumsum(updates, axis=0), path[1:], rtol=1e-10, atol=1e-15)


@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 1000), beta2=st.sampled_from([0.9, 0.95, 0.999]))
def test_with_eps_zero_the_steps_ignore_the_gradient_scale(scale, seed, beta2):
    g = noisy_gradients(50, mean=0.3, noise=1.0, dim=4, seed=seed)
    a = adam_updates(g, lr=0.01, betas=(0.9, beta2), eps=0.0)
    b = adam_updates(scale * g, lr=0.01, betas=(0.9, beta2), eps=0.0)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)


def test_the_first_steps_without_correction_are_3_16_then_4_25_lr_at_the_defaults():
    steps = adam_updates(np.full((2, 1), 4.0), lr=0.1, eps=0.0, bias_correction=False)[:, 0] / 0.1
    expected = [(1 - 0.9**t) / np.sqrt(1 - 0.999**t) for t in (1, 2)]
    np.testing.assert_allclose(-steps, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: adam_path("grad", [0.0], 3), TypeError, "grad"),
        (lambda: adam_path(lambda x, t: x, [0.0], -1), ValueError, "steps"),
        (lambda: adam_path(lambda x, t: x, [0.0], 3, betas=(1.0, 0.9)), ValueError, "beta1"),
        (lambda: adam_updates(1.0), ValueError, "grads"),
        (lambda: adam_updates([[1.0]], lr=-1.0), ValueError, "lr"),
    ],
)
def test_adam_drivers_refuse_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
