"""adamlib.lab.online: the AMSGrad variants against their references (torch.optim.Adam,
adamlib.Adam, optax's definition), the problems of Reddi et al. (2018), the projected run,
regret and Gamma; adamlib.lab.memory: state counted from torch's tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from adamlib.lab import memory, online

STEPS, DIM = 60, 5


def gradient_stream(seed: int = 0) -> np.ndarray:
    """Gradients over five decades of scale, with sign changes: a stream that makes the
    maximum of v differ from v."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((STEPS, DIM)) * 10.0 ** rng.integers(-2, 3, size=(STEPS, DIM))


def unconstrained(rule: str, grads, x0, **hyper) -> np.ndarray:
    """The points x_1..x_{T+1} of ``rule`` run without projection at a constant step size."""
    traj = online.run(grads, rule, x0=x0, power=0.0, bounds=None, **hyper)
    return np.vstack([traj.x, traj.x_final])


def torch_points(grads, x0, **options) -> np.ndarray:
    p = torch.tensor(x0, dtype=torch.float64)
    opt = torch.optim.Adam([p], **options)
    points = [p.detach().clone().numpy()]
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        points.append(p.detach().clone().numpy())
    return np.array(points)


def adamlib_points(grads, x0, **options) -> np.ndarray:
    p = np.array(x0, dtype=np.float64)
    opt = adamlib.Adam([p], **options)
    points = [p.copy()]
    for g in grads:
        opt.step([g])
        points.append(p.copy())
    return np.array(points)


BETAS = [(0.9, 0.999), (0.0, 0.99), (0.5, 0.9)]


# -- the variants against their references ----------------------------------------------------
@pytest.mark.parametrize("betas", BETAS)
@pytest.mark.parametrize("amsgrad", [True, False])
def test_torch_rules_equal_torch_optim_adam_and_adamlib_adam_in_float64(betas, amsgrad):
    grads, x0 = gradient_stream(), np.linspace(-1, 1, DIM)
    rule = "amsgrad_torch" if amsgrad else "adam_torch"
    ours = unconstrained(rule, grads, x0, lr=0.01, beta1=betas[0], beta2=betas[1], eps=1e-8)
    options = dict(lr=0.01, betas=betas, eps=1e-8, amsgrad=amsgrad)
    np.testing.assert_allclose(ours, torch_points(grads, x0, **options), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours, adamlib_points(grads, x0, **options), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("betas", BETAS[:2])
@pytest.mark.parametrize("amsgrad", [True, False])
def test_paper_rules_are_adam_without_bias_correction_and_eps(betas, amsgrad):
    grads, x0 = gradient_stream(1), np.zeros(DIM)
    rule = "amsgrad_paper" if amsgrad else "adam_paper"
    ours = unconstrained(rule, grads, x0, lr=0.01, beta1=betas[0], beta2=betas[1])
    theirs = adamlib_points(grads, x0, lr=0.01, betas=betas, eps=0.0, amsgrad=amsgrad,
                            bias_correction=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def optax_scale_by_amsgrad(grads, b1, b2, eps, eps_root=0.0):
    """optax.scale_by_amsgrad's update_fn, transcribed from its source (optax 0.2):
    mu, nu = EMAs; count_inc = count + 1; mu_hat, nu_hat = bias corrections;
    nu_max = maximum(nu_max, nu_hat); update = mu_hat / (sqrt(nu_max + eps_root) + eps)."""
    mu = nu = nu_max = np.zeros(grads.shape[1:])
    count, updates = 0, []
    for g in grads:
        mu = (1 - b1) * g + b1 * mu
        nu = (1 - b2) * g**2 + b2 * nu
        count += 1
        mu_hat, nu_hat = mu / (1 - b1**count), nu / (1 - b2**count)
        nu_max = np.maximum(nu_max, nu_hat)
        updates.append(mu_hat / (np.sqrt(nu_max + eps_root) + eps))
    return np.array(updates)


@pytest.mark.parametrize("betas", BETAS)
def test_optax_rule_matches_optax_definition(betas):
    grads, lr = gradient_stream(2), 0.01
    x = unconstrained("amsgrad_optax", grads, np.zeros(DIM), lr=lr, beta1=betas[0],
                      beta2=betas[1], eps=1e-8)
    expected = -lr * np.cumsum(optax_scale_by_amsgrad(grads, *betas, 1e-8), axis=0)
    np.testing.assert_allclose(x[1:], expected, rtol=1e-12, atol=1e-15)


@given(seed=st.integers(0, 2**32 - 1), beta1=st.sampled_from([0.0, 0.5, 0.9]),
       beta2=st.sampled_from([0.5, 0.9, 0.99, 0.999]))
def test_second_moments_are_ordered_optax_torch_adam(seed, beta1, beta2):
    # optax's max of v/(1-b2^s) >= torch's max(v)/(1-b2^t) >= Adam's v/(1-b2^t), every step
    grads = np.random.default_rng(seed).standard_normal((40, 3)) * 10.0 ** np.arange(-1, 2)
    kw = dict(lr=0.1, beta1=beta1, beta2=beta2, bounds=None)
    vhat = {r: online.run(grads, r, **kw).vhat for r in ("adam_torch", "amsgrad_torch", "amsgrad_optax")}
    assert np.all(vhat["amsgrad_optax"] >= vhat["amsgrad_torch"] * (1 - 1e-12))
    assert np.all(vhat["amsgrad_torch"] >= vhat["adam_torch"] * (1 - 1e-12))
    assert np.all(np.diff(vhat["amsgrad_optax"], axis=0) >= 0)  # a maximum never falls


def test_the_variants_agree_at_step_one_only_where_they_should():
    g = np.array([[2.0], [0.01], [0.01]])  # v falls after the first step (beta2 = 0.5)
    kw = dict(lr=1.0, beta1=0.9, beta2=0.5, power=0.0, bounds=None, x0=0.0)
    later = {r: online.run(g, r, **kw).x_final.item() for r in online.RULES}
    step1 = {r: online.run(g[:1], r, **kw).x_final.item() for r in online.RULES}
    # with bias correction the first step is -lr * sign(g); without it (1-b1)/sqrt(1-b2) lr
    for r in ("adam_torch", "amsgrad_torch", "amsgrad_optax"):
        assert step1[r] == pytest.approx(-1.0, rel=1e-7)
    for r in ("adam_paper", "amsgrad_paper"):
        assert step1[r] == pytest.approx(-0.1 / np.sqrt(0.5), rel=1e-12)
    # later the three AMSGrads differ: optax remembers the first, bias-corrected v_1 = g_1^2
    assert len({round(v, 9) for v in later.values()}) == len(online.RULES)


# -- the problems --------------------------------------------------------------------------------
def test_problem_coefficients():
    np.testing.assert_array_equal(online.reddi_online(7, 3.0), [3, -1, -1, 3, -1, -1, 3])
    c = online.reddi_online(4, C=[3.0, 10.0])
    assert c.shape == (4, 2) and c[0].tolist() == [3.0, 10.0] and c[1].tolist() == [-1.0, -1.0]
    p = online.periodic(303)
    assert p[0] == 1010 and p[101] == 1010 and p[202] == 1010 and (p == 1010).sum() == 3
    assert p.sum() == 3 * (1010 - 100 * 10)  # each period sums to +10: x = -1 is optimal
    s = online.bernoulli(200_000, seed=3)
    assert set(np.unique(s)) == {-10.0, 1010.0}
    assert abs((s == 1010).mean() - 0.01) < 0.001
    np.testing.assert_array_equal(s, online.bernoulli(200_000, seed=3))
    assert online.bernoulli(10, configs=4, seed=0).shape == (10, 4)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: online.reddi_online(5, C=2.0), ValueError, "C"),
        (lambda: online.reddi_online(-1), ValueError, "steps"),
        (lambda: online.periodic(5, period=1), ValueError, "period"),
        (lambda: online.periodic(5, large=float("nan")), ValueError, "large"),
        (lambda: online.bernoulli(5, p=1.5), ValueError, "p"),
        (lambda: online.bernoulli(5, configs=0), ValueError, "configs"),
        (lambda: online.run(np.ones(5), "adamw"), ValueError, "rule"),
        (lambda: online.run(np.ones(5), "adam_paper", lr=0.0), ValueError, "lr"),
        (lambda: online.run(np.ones(5), "adam_paper", beta1=1.0), ValueError, "beta1"),
        (lambda: online.run(np.ones(5), "adam_paper", beta2=-0.1), ValueError, "beta2"),
        (lambda: online.run(np.ones(5), "adam_paper", power=-1.0), ValueError, "power"),
        (lambda: online.run(np.ones(5), "adam_paper", eps=-1.0), ValueError, "eps"),
        (lambda: online.run(np.ones(5), "adam_paper", x0=2.0), ValueError, "x0"),
        (lambda: online.run(np.ones(5), "adam_paper", bounds=(1, -1)), ValueError, "bounds"),
        (lambda: online.run(np.ones((5, 3)), "adam_paper", lr=[0.1, 0.2]), ValueError, "broadcast"),
        (lambda: online.run(np.ones((5, 2, 2)), "adam_paper"), ValueError, "coeffs"),
        (lambda: online.run([1.0, np.inf], "adam_paper"), ValueError, "coeffs"),
        (lambda: online.regret(np.ones(5), np.ones(4)), ValueError, "steps"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


# -- runs, regret, Gamma ----------------------------------------------------------------------
def test_configurations_run_at_once_equal_runs_made_alone():
    T = 400
    c = np.stack([online.reddi_online(T, 3.0), online.periodic(T), online.bernoulli(T, seed=1)], 1)
    lr, beta1, power = np.array([0.5, 1.0, 0.02]), np.array([0.0, 0.9, 0.5]), np.array([0.5, 0.5, 0.0])
    together = online.run(c, "amsgrad_torch", lr=lr, beta1=beta1, beta2=0.99, power=power)
    for k in range(3):
        alone = online.run(c[:, k], "amsgrad_torch", lr=lr[k], beta1=beta1[k], beta2=0.99, power=power[k])
        # equal up to the last bit of a vectorised power (SIMD vs scalar paths)
        np.testing.assert_allclose(together.x[:, k], alone.x, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(together.vhat[:, k], alone.vhat, rtol=1e-13)
    assert np.all(np.abs(together.x) <= 1)


def test_theorem_1_adam_goes_to_the_worst_point_and_amsgrad_to_the_best():
    C, T = 3.0, 3000
    c = online.reddi_online(T, C)
    kw = dict(lr=0.5, beta1=0.0, beta2=1 / (1 + C**2))
    adam, ams = online.run(c, "adam_paper", **kw), online.run(c, "amsgrad_paper", **kw)
    assert np.all(adam.x[::3] == 1.0)  # back at +1 at the start of every period
    assert ams.x[-300:].max() < -0.95
    t = np.arange(1, T + 1)
    avg_adam, avg_ams = online.regret(c, adam.x) / t, online.regret(c, ams.x) / t
    assert abs(avg_adam[-1] - 2 * (C - 2) / 3) < 0.02  # 2(C-2) per period of three steps
    assert avg_ams[-1] < 0.05 and np.all(np.diff(avg_ams[2::3][10:]) < 0)
    # Gamma: negative for Adam on the two steps after each large gradient, never for AMSGrad
    g_adam, g_ams = online.gamma(adam), online.gamma(ams)  # Gamma_t for t = 2..T
    t2 = np.arange(2, T + 1)
    assert np.all(g_adam[t2 % 3 != 1] < 0) and np.all(g_adam[t2 % 3 == 1] > 0)
    assert np.all(g_ams >= 0)


@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 60))
def test_regret_properties(seed, T):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(T) * 10.0 ** rng.integers(0, 3, T)
    x = rng.uniform(-1, 1, T)
    best = -np.sign(c.sum()) if c.sum() != 0 else 0.0
    R = online.regret(c, x)
    np.testing.assert_allclose(online.regret(c, np.full(T, best))[-1], 0.0, atol=1e-9 * np.abs(c).sum())
    for point in (-1.0, 0.0, 0.3, 1.0):  # no fixed point beats the best one in hindsight
        assert online.regret(c, np.full(T, point))[-1] >= -1e-9 * np.abs(c).sum()
    # moving any x_s against its gradient's sign never increases the regret
    moved = np.clip(x - 0.5 * np.sign(c), -1, 1)
    assert np.all(online.regret(c, moved)[-1] <= R[-1] + 1e-9 * np.abs(c).sum())


def test_gamma_of_a_monotone_maximum_with_decaying_steps_is_never_negative():
    c = online.bernoulli(2000, configs=3, seed=4)
    traj = online.run(c, "amsgrad_paper", lr=0.1, beta1=0.9, beta2=np.array([0.5, 0.9, 0.99]))
    assert np.all(online.gamma(traj) >= 0)
    assert np.any(online.gamma(online.run(c, "adam_paper", lr=0.1, beta1=0.9, beta2=0.9)) < 0)


@given(seed=st.integers(0, 2**32 - 1), beta1=st.sampled_from([0.0, 0.5, 0.9]))
def test_adamnc_divides_by_the_mean_of_all_squared_gradients(seed, beta1):
    g = np.random.default_rng(seed).standard_normal(40) * 10.0
    traj = online.run(g, "adamnc_paper", lr=0.1, beta1=beta1, beta2=0.3, bounds=None)
    t = np.arange(1, 41)
    np.testing.assert_allclose(traj.vhat, np.cumsum(g**2) / t, rtol=1e-12)
    m = np.zeros(())
    x = [1.0]
    for s, g_s in enumerate(g, start=1):  # the update written out by hand
        m = beta1 * m + (1 - beta1) * g_s
        x.append(x[-1] - 0.1 / np.sqrt(s) * m / np.sqrt(np.mean(g[:s] ** 2)))
    np.testing.assert_allclose(np.append(traj.x, traj.x_final), x, rtol=1e-12, atol=1e-12)
    assert np.all(online.gamma(traj) >= -1e-9 * np.abs(g).max())  # never grows


def test_adamnc_converges_on_theorem_1_where_adam_does_not():
    c = online.reddi_online(3000, 3.0)
    nc = online.run(c, "adamnc_paper", lr=0.5, beta1=0.0, beta2=0.1)
    assert nc.x[-300:].max() < -0.9
    assert np.all(online.gamma(nc) >= 0)


# -- memory ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("amsgrad, tensors", [(False, 2), (True, 3)])
@pytest.mark.parametrize("dtype, itemsize", [(torch.float32, 4), (torch.float64, 8)])
def test_state_footprint_counts_torch_adams_state(amsgrad, tensors, dtype, itemsize):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), amsgrad=amsgrad)
    model(torch.ones(2, 4, dtype=dtype)).sum().backward()
    opt.step()
    fp = memory.state_footprint(opt)
    assert fp.parameters == 4 * 3 + 3 + 3 + 1
    assert fp.tensors_per_parameter == tensors
    assert fp.state_bytes_per_element == tensors * itemsize
    assert fp.traffic == (3 + 2 * tensors) * itemsize


def test_state_footprint_and_traffic_refuse_bad_input():
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="step first"):
        memory.state_footprint(torch.optim.Adam([p]))
    with pytest.raises(ValueError, match="state_tensors"):
        memory.step_traffic(-1)
    with pytest.raises(ValueError, match="itemsize"):
        memory.step_traffic(2, itemsize=0)
