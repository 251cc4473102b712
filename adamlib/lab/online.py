r"""The online and stochastic convex problems on which Adam fails, and AMSGrad, its fix.

Reddi, Kale & Kumar (2018) showed Adam failing to converge on one-dimensional linear
losses :math:`f_t(x) = c_t\,x` over the interval :math:`\mathcal F = [-1, 1]`:

* **Theorem 1** (:func:`reddi_online`): :math:`c_t = C` when :math:`t \bmod 3 = 1`, else
  :math:`-1`, with :math:`C > 2`. The sum of three losses is :math:`(C-2)x`, minimised at
  :math:`x = -1`; with :math:`\beta_1 = 0` and :math:`\beta_2 = 1/(1+C^2)` Adam goes to
  :math:`x = +1`, the worst point.
* **Section 5** (:func:`periodic`, :func:`bernoulli`): :math:`c_t = 1010` once every 101
  steps, else :math:`-10` (online), or :math:`1010` with probability 0.01, else
  :math:`-10` (stochastic, expected gradient 0.2).

The gradient of a linear loss does not depend on :math:`x`, so a problem is its sequence
of coefficients :math:`c_1, \dots, c_T`. :func:`run` drives an update rule over such a
sequence, projecting onto :math:`[-1, 1]` after every step, for many configurations at once
(hyperparameters and coefficients broadcast over a trailing axis of configurations), and
:func:`regret` scores the trajectory.

The update rules are small pure functions, one per variant, each with the formula it
computes. With :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t` and
:math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2` (both from zero), and the step size
:math:`\alpha_t`:

=====================  ==================================================================
rule                   update :math:`u_t` (the step is :math:`x \leftarrow x - u_t`)
=====================  ==================================================================
:func:`adam_paper`     :math:`\alpha_t m_t / \sqrt{v_t}` (Reddi et al.'s Adam: no bias
                       correction)
:func:`adam_torch`     :math:`\frac{\alpha_t}{1-\beta_1^t}\, m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t}
                       + \epsilon)` (``torch.optim.Adam``)
:func:`amsgrad_paper`  :math:`\hat v_t = \max(\hat v_{t-1}, v_t)`, :math:`\alpha_t m_t /
                       \sqrt{\hat v_t}` (Reddi et al.'s Algorithm 2)
:func:`amsgrad_torch`  :math:`\hat v_t = \max(\hat v_{t-1}, v_t)` on the raw :math:`v`, then
                       :math:`\frac{\alpha_t}{1-\beta_1^t}\, m_t / (\sqrt{\hat v_t}/
                       \sqrt{1-\beta_2^t} + \epsilon)` (``torch.optim.Adam(amsgrad=True)``)
:func:`amsgrad_optax`  :math:`\hat v_t = \max(\hat v_{t-1}, v_t/(1-\beta_2^t))`, the maximum
                       of the *bias-corrected* :math:`v`, then
                       :math:`\alpha_t \frac{m_t}{1-\beta_1^t} / (\sqrt{\hat v_t} + \epsilon)`
                       (``optax.scale_by_amsgrad``)
:func:`adamnc_paper`   :math:`v_t` with :math:`\beta_{2t} = 1 - 1/t`, the plain mean of
                       :math:`g_1^2, \dots, g_t^2`, then :math:`\alpha_t m_t / \sqrt{v_t}`
                       (Reddi et al.'s AdamNC, Algorithm 3, with that choice of
                       :math:`\beta_{2t}`)
=====================  ==================================================================

References
----------
Reddi, S. J., Kale, S. & Kumar, S. (2018). On the Convergence of Adam and Beyond. ICLR.
Zhang, Y., Chen, C., Shi, N., Sun, R. & Luo, Z.-Q. (2022). Adam Can Converge Without Any
Modification On Update Rules. NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .. import hyperparams as hp

__all__ = [
    "Moments", "Trajectory", "RULES", "adam_paper", "adam_torch", "amsgrad_paper",
    "amsgrad_torch", "amsgrad_optax", "adamnc_paper", "reddi_online", "periodic", "bernoulli", "run",
    "regret", "gamma",
]


class Moments(NamedTuple):
    r"""The state of an update rule: :math:`m_{t}`, :math:`v_{t}` and the running maximum
    :math:`\hat v_t` (unused, and left at zero, by the Adam rules)."""

    m: np.ndarray
    v: np.ndarray
    vmax: np.ndarray


StepResult = tuple[np.ndarray, Moments, np.ndarray]


def _moments(g, state: Moments, beta1, beta2) -> tuple[np.ndarray, np.ndarray]:
    m = beta1 * state.m + (1 - beta1) * g
    v = beta2 * state.v + (1 - beta2) * g * g
    return m, v


def adam_paper(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
               beta2: ArrayLike, eps: float = 0.0) -> StepResult:
    r"""Adam as Reddi et al. (2018) analyse it: no bias correction.

    .. math::

       u_t = \alpha_t\, \frac{m_t}{\sqrt{v_t} + \epsilon}
       \qquad (\epsilon = 0 \text{ in the paper})

    Every rule takes the same arguments and returns the same triple.

    Parameters
    ----------
    g : array_like
        The gradient :math:`g_t`, one entry per configuration.
    state : Moments
        :math:`m_{t-1}, v_{t-1}, \hat v_{t-1}` (zeros before the first step).
    t : int
        The step number, from 1.
    lr : array_like
        The step size :math:`\alpha_t` of this step (a schedule is applied by the caller).
    beta1, beta2 : array_like
        The decay rates.
    eps : float
        Added to the square root of the second moment.

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and the second moment the step divided by
        (here :math:`v_t`).
    """
    m, v = _moments(g, state, beta1, beta2)
    return lr * m / (np.sqrt(v) + eps), Moments(m, v, state.vmax), v


def adam_torch(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
               beta2: ArrayLike, eps: float = hp.EPS) -> StepResult:
    r"""Adam as ``torch.optim.Adam`` computes it (bias-corrected, :math:`\epsilon` outside
    the square root).

    .. math::

       u_t = \frac{\alpha_t}{1-\beta_1^t}\,
             \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Arguments as :func:`adam_paper`.

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and :math:`\hat v = v_t/(1-\beta_2^t)`.
    """
    m, v = _moments(g, state, beta1, beta2)
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    update = lr / bc1 * m / (np.sqrt(v) / np.sqrt(bc2) + eps)
    return update, Moments(m, v, state.vmax), v / bc2


def amsgrad_paper(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
                  beta2: ArrayLike, eps: float = 0.0) -> StepResult:
    r"""AMSGrad, Algorithm 2 of Reddi et al. (2018): the maximum of :math:`v`, no bias
    correction.

    .. math::

       \hat v_t = \max(\hat v_{t-1}, v_t), \qquad
       u_t = \alpha_t\, \frac{m_t}{\sqrt{\hat v_t} + \epsilon}
       \qquad (\epsilon = 0 \text{ in the paper})

    Arguments as :func:`adam_paper`.

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and :math:`\hat v_t` as above.
    """
    m, v = _moments(g, state, beta1, beta2)
    vmax = np.maximum(state.vmax, v)
    return lr * m / (np.sqrt(vmax) + eps), Moments(m, v, vmax), vmax


def amsgrad_torch(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
                  beta2: ArrayLike, eps: float = hp.EPS) -> StepResult:
    r"""AMSGrad as ``torch.optim.Adam(amsgrad=True)`` computes it: the maximum of the raw
    :math:`v` (``max_exp_avg_sq``), bias-corrected afterwards with the current step's factor.

    .. math::

       \hat v_t = \max(\hat v_{t-1}, v_t), \qquad
       u_t = \frac{\alpha_t}{1-\beta_1^t}\,
             \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Arguments as :func:`adam_paper`.

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and :math:`\hat v_t/(1-\beta_2^t)`, what
        the step divided by.
    """
    m, v = _moments(g, state, beta1, beta2)
    vmax = np.maximum(state.vmax, v)
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    update = lr / bc1 * m / (np.sqrt(vmax) / np.sqrt(bc2) + eps)
    return update, Moments(m, v, vmax), vmax / bc2


def amsgrad_optax(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
                  beta2: ArrayLike, eps: float = hp.EPS) -> StepResult:
    r"""AMSGrad as ``optax.scale_by_amsgrad`` computes it: the maximum of the
    *bias-corrected* :math:`v` (``nu_max``).

    .. math::

       \hat v_t = \max\!\Big(\hat v_{t-1}, \frac{v_t}{1-\beta_2^t}\Big), \qquad
       u_t = \alpha_t\, \frac{m_t/(1-\beta_1^t)}{\sqrt{\hat v_t} + \epsilon}

    Since :math:`1-\beta_2^s \le 1-\beta_2^t` for :math:`s \le t`, this maximum is never
    below PyTorch's :math:`\max_s v_s / (1-\beta_2^t)`: optax's steps are never larger.

    Arguments as :func:`adam_paper`.

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and :math:`\hat v_t` as above.
    """
    m, v = _moments(g, state, beta1, beta2)
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    vmax = np.maximum(state.vmax, v / bc2)
    return lr * (m / bc1) / (np.sqrt(vmax) + eps), Moments(m, v, vmax), vmax


def adamnc_paper(g: ArrayLike, state: Moments, t: int, *, lr: ArrayLike, beta1: ArrayLike,
                 beta2: ArrayLike, eps: float = 0.0) -> StepResult:
    r"""AdamNC, Algorithm 3 of Reddi et al. (2018), with :math:`\beta_{2t} = 1 - 1/t`.

    Reddi et al.'s other fix keeps Adam's update but lets :math:`\beta_2` change with
    :math:`t`. With :math:`\beta_{2t} = 1 - 1/t` (their example) the second moment is the
    plain mean of all squared gradients so far, as in AdaGrad:

    .. math::

       v_t = \Big(1 - \frac1t\Big) v_{t-1} + \frac1t\, g_t^2
           = \frac1t \sum_{s \le t} g_s^2, \qquad
       u_t = \alpha_t\, \frac{m_t}{\sqrt{v_t} + \epsilon}.

    With :math:`\alpha_t = \alpha/\sqrt t`, :math:`\sqrt{v_t}/\alpha_t =
    \sqrt{\sum_{s\le t} g_s^2}/\alpha` never decreases, so :math:`\Gamma_t \ge 0`
    (:func:`gamma`). Arguments as :func:`adam_paper`; ``beta2`` is not used (the schedule
    above replaces it) and ``beta1`` stays constant (the paper's analysis lets it decay).

    Returns
    -------
    (update, state, vhat) : tuple
        :math:`u_t`, the new :class:`Moments`, and :math:`v_t`, what the step divided by.
    """
    m = beta1 * state.m + (1 - beta1) * g
    v = state.v + (g * g - state.v) / t
    return lr * m / (np.sqrt(v) + eps), Moments(m, v, state.vmax), v


Rule = Callable[..., StepResult]

RULES: dict[str, Rule] = {
    "adam_paper": adam_paper,
    "adam_torch": adam_torch,
    "amsgrad_paper": amsgrad_paper,
    "amsgrad_torch": amsgrad_torch,
    "amsgrad_optax": amsgrad_optax,
    "adamnc_paper": adamnc_paper,
}
"""The update rules by name."""


# -- the problems -----------------------------------------------------------------------
def periodic(steps: int, *, large: float = 1010.0, small: float = -10.0,
             period: int = 101) -> np.ndarray:
    r"""Coefficients :math:`c_t = ` ``large`` when :math:`t \bmod` ``period`` :math:`= 1`,
    else ``small``, for :math:`t = 1, \dots, T` (Reddi et al. 2018, section 5: 1010, -10, 101).

    Examples
    --------
    >>> periodic(5, large=3.0, small=-1.0, period=3)
    array([ 3., -1., -1.,  3., -1.])
    """
    steps = hp.check_int("steps", steps, 0)
    period = hp.check_int("period", period, 2)
    large = hp.check_real("large", large, "finite", lambda x: True)
    small = hp.check_real("small", small, "finite", lambda x: True)
    t = np.arange(1, steps + 1)
    return np.where(t % period == 1 % period, large, small)


def reddi_online(steps: int, C: ArrayLike = 3.0) -> np.ndarray:
    r"""Theorem 1's coefficients: :math:`c_t = C` when :math:`t \bmod 3 = 1`, else
    :math:`-1`.

    ``C`` may be an array (each > 2, where :math:`x = -1` is the minimum of the summed
    loss); the result then has shape ``(steps, *C.shape)``, one column per value.
    """
    steps = hp.check_int("steps", steps, 0)
    C = np.asarray(C, dtype=float)
    if not np.all(np.isfinite(C)) or not np.all(C > 2):
        raise ValueError(f"C must be finite and > 2 (each value), got {C!r}")
    first = (np.arange(1, steps + 1) % 3 == 1).reshape((steps,) + (1,) * C.ndim)
    return np.where(first, C, -1.0)


def bernoulli(steps: int, *, large: float = 1010.0, small: float = -10.0, p: float = 0.01,
              configs: int | None = None, seed: int = 0) -> np.ndarray:
    r"""Stochastic coefficients: ``large`` with probability ``p``, else ``small``
    (Reddi et al. 2018, section 5: 1010 with probability 0.01, else -10; expected
    gradient :math:`0.01 \cdot 1010 - 0.99 \cdot 10 = 0.2`).

    Parameters
    ----------
    configs : int, optional
        Draw an independent sequence for each of this many configurations (shape
        ``(steps, configs)``); by default one sequence, shape ``(steps,)``.
    seed : int
        Seeds ``numpy.random.default_rng``.
    """
    steps = hp.check_int("steps", steps, 0)
    p = hp.check_real("p", p, "in [0, 1]", lambda x: 0.0 <= x <= 1.0)
    large = hp.check_real("large", large, "finite", lambda x: True)
    small = hp.check_real("small", small, "finite", lambda x: True)
    shape = (steps,) if configs is None else (steps, hp.check_int("configs", configs, 1))
    hit = np.random.default_rng(seed).random(shape) < p
    return np.where(hit, large, small)


# -- running a rule ---------------------------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    r"""What :func:`run` records, one row per step :math:`t = 1, \dots, T`.

    Attributes
    ----------
    x : ndarray
        :math:`x_t`, the point at which :math:`f_t` is evaluated (``x[0]`` is the start).
    vhat : ndarray
        The second moment the step :math:`t` divided by (see each rule's docstring).
    lr : ndarray
        The step sizes :math:`\alpha_t`.
    x_final : ndarray
        :math:`x_{T+1}`, the point after the last step.
    """

    x: np.ndarray
    vhat: np.ndarray
    lr: np.ndarray
    x_final: np.ndarray


def run(coeffs: ArrayLike, rule: str, *, lr: ArrayLike = 0.5, beta1: ArrayLike = 0.9,
        beta2: ArrayLike = 0.999, power: ArrayLike = 0.5, eps: float = 0.0,
        x0: ArrayLike = 1.0, bounds: tuple[float, float] | None = (-1.0, 1.0)) -> Trajectory:
    r"""Run an update rule on :math:`f_t(x) = c_t x`, projecting onto ``bounds`` each step.

    .. math::

       g_t = c_t, \qquad x_{t+1} = \Pi_{[-1, 1]}\big(x_t - u_t\big), \qquad
       \alpha_t = \alpha / t^{p}

    with :math:`p = 1/2` the step size of the paper's analysis (:math:`\alpha/\sqrt t`)
    and :math:`p = 0` a constant one. Every configuration runs at once: ``coeffs`` of shape
    ``(T,)`` or ``(T, K)`` and the hyperparameters (scalars or arrays of shape ``(K,)``)
    broadcast to ``K`` configurations.

    Parameters
    ----------
    coeffs : array_like
        :math:`c_1, \dots, c_T` (the gradients), one column per configuration or one shared.
    rule : str
        A key of :data:`RULES`.
    lr, beta1, beta2 : array_like
        :math:`\alpha` (> 0) and the decay rates (each in [0, 1)).
    power : array_like
        :math:`p` (>= 0) in :math:`\alpha_t = \alpha / t^p`.
    eps : float
        Added to the square root of the second moment. 0 by default, as in the paper
        (the gradients here are never 0); ``torch.optim.Adam`` uses 1e-8.
    x0 : array_like
        The starting point :math:`x_1` (Reddi et al. start at 1).
    bounds : (float, float) or None
        The interval to project onto; ``None`` runs unconstrained.

    Returns
    -------
    Trajectory
        Arrays of shape ``(T, K)`` (``(T,)`` when nothing has a configuration axis).

    Examples
    --------
    >>> c = reddi_online(3000, C=3.0)
    >>> beta2 = 1 / (1 + 3.0**2)
    >>> adam = run(c, "adam_paper", lr=0.5, beta1=0.0, beta2=beta2)
    >>> ams = run(c, "amsgrad_paper", lr=0.5, beta1=0.0, beta2=beta2)
    >>> float(adam.x_final), round(float(ams.x_final), 2)
    (1.0, -0.99)
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    c = np.asarray(coeffs, dtype=float)
    if c.ndim not in (1, 2) or not np.all(np.isfinite(c)):
        raise ValueError(f"coeffs must be a finite array of shape (T,) or (T, K), got shape {c.shape}")
    lr, beta1, beta2, power, x0 = (np.asarray(a, dtype=float) for a in (lr, beta1, beta2, power, x0))
    named = {"lr": lr, "beta1": beta1, "beta2": beta2, "power": power, "x0": x0}
    for name, a in named.items():
        if a.ndim > 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array of configurations, got shape {a.shape}")
    if not np.all((lr > 0) & np.isfinite(lr)):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    if not np.all((power >= 0) & np.isfinite(power)):
        raise ValueError(f"power must be finite and >= 0, got {power!r}")
    for name, b in (("beta1", beta1), ("beta2", beta2)):
        if not np.all((b >= 0) & (b < 1)):
            raise ValueError(f"{name} must be in [0, 1), got {b!r}")
    eps = hp.check_real("eps", eps, "finite and >= 0", lambda x: x >= 0)
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not lo < hi:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
        if not np.all((x0 >= lo) & (x0 <= hi)):
            raise ValueError(f"x0 must lie within bounds {bounds!r}, got {x0!r}")
    try:
        shape = np.broadcast_shapes(c.shape[1:], *(a.shape for a in named.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in named.items())
        raise ValueError(f"coeffs' configuration axis and the hyperparameters must broadcast, got "
                         f"coeffs {c.shape}, {shapes}") from None

    step_rule = RULES[rule]
    T = c.shape[0]
    t = np.arange(1, T + 1).reshape((T,) + (1,) * len(shape))
    lrs = np.broadcast_to(lr / t**power, (T, *shape))
    xs, vhats = np.empty((T, *shape)), np.empty((T, *shape))
    x = np.broadcast_to(x0, shape).astype(float)
    zeros = np.zeros(shape)
    state = Moments(zeros, zeros, zeros)
    for i in range(T):
        xs[i] = x
        update, state, vhats[i] = step_rule(c[i], state, i + 1, lr=lrs[i], beta1=beta1,
                                            beta2=beta2, eps=eps)
        x = x - update
        if bounds is not None:
            x = np.minimum(np.maximum(x, lo), hi)
    return Trajectory(xs, vhats, lrs, x)


def regret(coeffs: ArrayLike, x: ArrayLike) -> np.ndarray:
    r"""The cumulative regret :math:`R_t` of the points :math:`x_1, \dots, x_T` against the
    best fixed point of :math:`[-1, 1]` in hindsight:

    .. math::

       R_t = \sum_{s \le t} c_s x_s - \min_{x \in [-1, 1]} \sum_{s \le t} c_s x
           = \sum_{s \le t} c_s x_s + \Big|\sum_{s \le t} c_s\Big|.

    ``coeffs`` and ``x`` broadcast (shape ``(T,)`` or ``(T, K)``); divide by
    :math:`t` for the average regret :math:`R_t/t`, which goes to 0 for an algorithm that
    converges.

    Examples
    --------
    >>> c = reddi_online(6)                      # 3, -1, -1, 3, -1, -1
    >>> regret(c, -np.ones(6)).tolist()          # x = -1 is best: no regret
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    >>> regret(c, np.ones(6)).tolist()           # x = +1: 2(C - 2) = 2 more per period
    [6.0, 4.0, 2.0, 8.0, 6.0, 4.0]
    """
    c, x = np.asarray(coeffs, dtype=float), np.asarray(x, dtype=float)
    if c.shape[:1] != x.shape[:1]:
        raise ValueError(f"coeffs and x must have the same number of steps, got {c.shape} and {x.shape}")
    return np.cumsum(c * x, axis=0) + np.abs(np.cumsum(c, axis=0))


def gamma(traj: Trajectory) -> np.ndarray:
    r"""The change of the inverse effective step size, for :math:`t = 2, \dots, T`:

    .. math::

       \Gamma_t = \frac{\sqrt{\hat v_t}}{\alpha_t} - \frac{\sqrt{\hat v_{t-1}}}{\alpha_{t-1}}.

    The convergence proofs of Adam-type methods (Kingma & Ba 2015; Reddi et al. 2018)
    need :math:`\Gamma_t \ge 0`: the effective step :math:`\alpha_t/\sqrt{\hat v_t}` never
    grows. AMSGrad's maximum with a non-increasing :math:`\alpha_t` guarantees it; Adam's
    :math:`v_t` can fall, and then :math:`\Gamma_t < 0`.
    """
    return np.diff(np.sqrt(traj.vhat) / traj.lr, axis=0)
