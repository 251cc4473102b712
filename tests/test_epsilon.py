"""adamlib.epsilon: the conversions between the frameworks' epsilons, checked by running each
convention from its own formula (Keras/TensorFlow's and optax's written out here in NumPy) and
torch.optim.Adam, converted step by step, for many steps in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from adamlib import epsilon

STEPS, LR, BETAS = 400, 1e-2, (0.9, 0.999)


def gradients(seed=0, steps=STEPS, dim=8):
    """Gradients of very different sizes per coordinate, 1e-10 to 1, so that every epsilon
    below is met somewhere: well above, near, and well below the gradient's RMS."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** np.linspace(-10, 0, dim)
    return rng.standard_normal((steps, dim)) * scale


def keras_adam(grads, x0, lr, betas, eps_hat):
    """TensorFlow/Keras Adam (the paper's efficient version) written from its formula:
    alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t); x -= alpha_t m / (sqrt(v) + eps_hat_t).
    ``eps_hat`` is a constant or a function of t."""
    b1, b2 = betas
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    path = []
    for t, g in enumerate(grads, start=1):
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        e = eps_hat(t) if callable(eps_hat) else eps_hat
        x -= alpha * m / (np.sqrt(v) + e)
        path.append(x.copy())
    return np.array(path)


def optax_adam(grads, x0, lr, betas, eps, eps_root):
    """optax.adam's update written from its formula: x -= lr m_hat / (sqrt(v_hat + eps_root) + eps)."""
    b1, b2 = betas
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    path = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat + eps_root) + eps)
        path.append(x.copy())
    return np.array(path)


def generic_adam(grads, x0, lr, betas, **floors):
    """Adam with adamlib.epsilon.denominator: x -= lr m_hat / D_t."""
    b1, b2 = betas
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    path = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1**t)) / epsilon.denominator(v, b2, t, **floors)
        path.append(x.copy())
    return np.array(path)


def torch_adam(grads, x0, lr, betas, eps):
    """torch.optim.Adam, float64; ``eps`` a constant or a function of t, set before each step."""
    p = torch.tensor(x0.copy(), requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=0.0, foreach=False)
    path = []
    for t, g in enumerate(grads, start=1):
        opt.param_groups[0]["eps"] = eps(t) if callable(eps) else eps
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


def relative_gap(a, b):
    """Largest gap between two paths, per coordinate relative to how far ``b`` moved it."""
    moved = np.max(np.abs(b - X0), axis=0)
    return float(np.max(np.abs(a - b) / moved))


X0 = np.linspace(-1.0, 1.0, 8)


@pytest.mark.parametrize("eps_hat", [1e-7, 1e-4, 1.0])
def test_keras_eps_hat_converted_is_torch(eps_hat):
    grads = gradients()
    keras = keras_adam(grads, X0, LR, BETAS, eps_hat)
    converted = torch_adam(grads, X0, LR, BETAS, lambda t: epsilon.eps_from_eps_hat(eps_hat, BETAS[1], t))
    assert relative_gap(converted, keras) < 1e-12
    # without the conversion the same number means another optimizer
    assert relative_gap(torch_adam(grads, X0, LR, BETAS, eps_hat), keras) > 1e-4


@pytest.mark.parametrize("eps", [1e-8, 1e-5, 1e-1])
def test_torch_eps_converted_is_keras(eps):
    grads = gradients(seed=1)
    reference = torch_adam(grads, X0, LR, BETAS, eps)
    converted = keras_adam(grads, X0, LR, BETAS, lambda t: epsilon.eps_hat_from_eps(eps, BETAS[1], t))
    assert relative_gap(converted, reference) < 1e-12
    assert relative_gap(keras_adam(grads, X0, LR, BETAS, eps), reference) > 1e-4


def test_adamlib_adam_takes_the_converted_eps_too():
    grads, eps_hat = gradients(seed=2), 1e-7
    keras = keras_adam(grads, X0, LR, BETAS, eps_hat)
    x = X0.copy()
    opt = adamlib.Adam([x], lr=LR, betas=BETAS)
    path = []
    for t, g in enumerate(grads, start=1):
        opt.eps = epsilon.eps_from_eps_hat(eps_hat, BETAS[1], t)
        opt.step([g])
        path.append(x.copy())
    assert relative_gap(np.array(path), keras) < 1e-12


@pytest.mark.parametrize(
    "floors, reference",
    [
        ({"eps": 1e-8}, lambda g: torch_adam(g, X0, LR, BETAS, 1e-8)),
        ({"eps_hat": 1e-7}, lambda g: keras_adam(g, X0, LR, BETAS, 1e-7)),
        ({"eps": 1e-8, "eps_root": 1e-12}, lambda g: optax_adam(g, X0, LR, BETAS, 1e-8, 1e-12)),
    ],
    ids=["pytorch", "keras", "optax"],
)
def test_the_denominator_reproduces_each_framework(floors, reference):
    grads = gradients(seed=3)
    assert relative_gap(generic_adam(grads, X0, LR, BETAS, **floors), reference(grads)) < 1e-12


def test_conversions_approach_each_other_late():
    """eps_hat and eps differ by 1/sqrt(1 - beta2^t): 31.6x at t = 1, none once beta2^t ~ 0."""
    first = epsilon.eps_from_eps_hat(1.0, 0.999, 1)
    late = epsilon.eps_from_eps_hat(1.0, 0.999, 50_000)
    assert math.isclose(first, 1 / math.sqrt(0.001), rel_tol=1e-12)
    assert math.isclose(late, 1.0, rel_tol=1e-15)


@given(
    eps=st.floats(0, 1e3),
    beta2=st.floats(0, 0.99999),
    t=st.integers(1, 10**6),
)
def test_the_two_conversions_are_inverse(eps, beta2, t):
    back = epsilon.eps_from_eps_hat(epsilon.eps_hat_from_eps(eps, beta2, t), beta2, t)
    assert math.isclose(back, eps, rel_tol=1e-12, abs_tol=0.0)


@given(eps_root=st.floats(0, 1e3), v_hat=st.floats(0, 1e6))
def test_eps_root_as_an_eps(eps_root, v_hat):
    e = float(epsilon.eps_from_eps_root(eps_root, v_hat))
    assert 0 <= e <= math.sqrt(eps_root) * (1 + 1e-12)
    assert math.isclose(math.sqrt(v_hat) + e, math.sqrt(v_hat + eps_root), rel_tol=1e-12, abs_tol=1e-300)


def test_the_same_eps_means_different_first_steps():
    """The example of the chapter: a gradient of 1e-7 at the first step, each framework's default."""
    g = 1e-7
    v1 = (1 - 0.999) * g**2
    steps = {k: float(g / epsilon.denominator(v1, 0.999, 1, **f)) for k, f in epsilon.FRAMEWORK_DEFAULTS.items()}
    assert math.isclose(steps["pytorch"], 1 / 1.1, rel_tol=1e-12)
    assert steps["keras"] < steps["pytorch"] / 25


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: epsilon.eps_from_eps_hat(-1.0, 0.999, 1), "eps_hat"),
        (lambda: epsilon.eps_hat_from_eps(float("nan"), 0.999, 1), "eps"),
        (lambda: epsilon.eps_from_eps_hat(1e-7, 1.0, 1), "beta2"),
        (lambda: epsilon.eps_from_eps_hat(1e-7, 0.999, 0), "t must"),
        (lambda: epsilon.eps_from_eps_hat(1e-7, 0.999, 1.5), "t must"),
        (lambda: epsilon.eps_from_eps_root(-1.0, 1.0), "eps_root"),
        (lambda: epsilon.eps_from_eps_root(1.0, [-1.0]), "v_hat"),
        (lambda: epsilon.denominator([1.0], 0.999, 1, eps_root=float("inf")), "eps_root"),
        (lambda: epsilon.denominator([-1.0], 0.999, 1), "v must"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_efficient_adam_step_is_the_keras_formula():
    grads, eps_hat = gradients(seed=4), 1e-7
    want = keras_adam(grads, X0, LR, BETAS, eps_hat)
    x, m, v = X0.copy(), np.zeros(8), np.zeros(8)
    path = []
    for t, g in enumerate(grads, start=1):
        x, m, v = epsilon.efficient_adam_step(x, g, m, v, t, lr=LR, beta1=BETAS[0], beta2=BETAS[1],
                                              eps_hat=eps_hat)
        path.append(x)
    assert relative_gap(np.array(path), want) < 1e-12
    with pytest.raises(ValueError, match="eps_hat"):
        epsilon.efficient_adam_step(x, g, m, v, 1, eps_hat=-1.0)
