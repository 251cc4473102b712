r"""Exponential moving averages: the two moment estimates of Adam, on their own.

Adam keeps two exponential moving averages (EMAs), one of the gradient and one of its square:

.. math::

   m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
   v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad m_0 = v_0 = 0.

Unrolled, an EMA started at zero is a weighted sum of the past,

.. math::

   m_t = \sum_{k=0}^{t-1} (1-\beta)\,\beta^k\, g_{t-k},

with weights :math:`(1-\beta)\beta^k` on the gradient :math:`k` steps old
(:func:`ema_weights`). Those weights sum to :math:`1-\beta^t` (:func:`bias_correction_factor`),
not to 1, which is why Adam divides by it; and they fall to :math:`1/e` of their first value
after about :math:`1/(1-\beta)` steps, the EMA's effective window (:func:`effective_window`).

A weight halves every :math:`\ln\frac12 / \ln\beta` steps, the EMA's half-life
(:func:`half_life`); :func:`beta_from_window` and :func:`beta_from_half_life` go back from a
memory length to the decay rate. A memory in steps is a memory in samples only for one batch
size: :func:`beta_for_batch_size` keeps the half-life in samples fixed when the batch size changes
(Marek et al., 2025).

References
----------
Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR, section 3.
Marek, M. et al. (2025). Small Batch Size Training for Language Models: When Vanilla SGD Works,
and Why Gradient Accumulation Is Wasteful. arXiv:2507.07101.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike

from . import hyperparams as hp

__all__ = [
    "beta_for_batch_size",
    "beta_from_half_life",
    "beta_from_window",
    "bias_correction_factor",
    "effective_window",
    "half_life",
    "ema",
    "ema_noise_ratio",
    "ema_weights",
    "step_bound",
    "uncorrected_step",
]


def _check_steps(t: ArrayLike) -> np.ndarray:
    steps = np.asarray(t)
    if steps.dtype == bool or not np.issubdtype(steps.dtype, np.integer):
        raise TypeError(f"t must be an integer step number (or an array of them) >= 1, got {t!r}")
    if np.any(steps < 1):
        raise ValueError(f"t counts steps from 1; got a value below 1 in {t!r}")
    return steps


def ema_weights(beta: float, n: int) -> np.ndarray:
    r"""The weight an EMA gives to each of its last ``n`` inputs, newest first.

    .. math:: w_k = (1-\beta)\,\beta^k, \qquad k = 0, 1, \dots, n-1,

    where :math:`k` is the input's age in steps (:math:`k=0` is the current input). Their sum
    is :math:`1-\beta^n` (:func:`bias_correction_factor`).

    Parameters
    ----------
    beta : float
        The decay rate, in [0, 1).
    n : int
        How many weights (>= 0).

    Examples
    --------
    >>> ema_weights(0.5, 3)
    array([0.5  , 0.25 , 0.125])
    """
    beta = hp.check_beta("beta", beta)
    n = hp.check_int("n", n, 0)
    return (1 - beta) * beta ** np.arange(n, dtype=float)


def effective_window(beta: float) -> float:
    r"""The number of recent inputs an EMA effectively averages: :math:`1/(1-\beta)`.

    It is the mean age plus one of the weights :math:`(1-\beta)\beta^k`, and after about
    that many steps a weight has fallen to :math:`1/e` of the newest one.

    Examples
    --------
    >>> round(effective_window(0.9), 9), round(effective_window(0.999), 9)
    (10.0, 1000.0)
    """
    beta = hp.check_beta("beta", beta)
    return 1.0 / (1.0 - beta)


def _check_positive(name: str, value: object, minimum: float = 0.0, *, inclusive: bool = False) -> float:
    relation = ">=" if inclusive else ">"
    valid = f"a finite number {relation} {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {valid}, got {value!r}")
    value = float(value)
    ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return value


def beta_from_window(window: float) -> float:
    r"""The decay rate whose effective window is ``window`` steps: :math:`\beta = 1 - 1/w`.

    The inverse of :func:`effective_window`.

    Parameters
    ----------
    window : float
        The window :math:`w` in steps, >= 1 (:math:`w = 1` is :math:`\beta = 0`, no memory).

    Examples
    --------
    >>> beta_from_window(10), beta_from_window(1000)
    (0.9, 0.999)
    """
    window = _check_positive("window", window, 1.0, inclusive=True)
    return 1.0 - 1.0 / window


def half_life(beta: float) -> float:
    r"""The number of steps after which an EMA's weight has halved: :math:`\ln\frac12 / \ln\beta`.

    The weight :math:`(1-\beta)\beta^k` of an input :math:`k` steps old is half the newest one's
    at :math:`k = h` with :math:`\beta^h = 1/2`. For :math:`\beta` near 1,
    :math:`h \approx \ln 2 / (1-\beta) \approx 0.69` windows (:func:`effective_window`).
    :math:`\beta = 0` (no memory) has half-life 0.

    Examples
    --------
    >>> round(half_life(0.5), 12), round(half_life(0.9), 2), round(half_life(0.999), 1)
    (1.0, 6.58, 692.8)
    """
    beta = hp.check_beta("beta", beta)
    return 0.0 if beta == 0.0 else math.log(0.5) / math.log(beta)


def beta_from_half_life(steps: float) -> float:
    r"""The decay rate whose weights halve every ``steps`` steps: :math:`\beta = 2^{-1/h}`.

    The inverse of :func:`half_life`.

    Parameters
    ----------
    steps : float
        The half-life :math:`h` in steps, > 0 (it need not be an integer).

    Examples
    --------
    >>> round(beta_from_half_life(1), 12), round(beta_from_half_life(half_life(0.95)), 12)
    (0.5, 0.95)
    """
    steps = _check_positive("steps", steps)
    return 0.5 ** (1.0 / steps)


def beta_for_batch_size(beta: float, batch_size: float, new_batch_size: float) -> float:
    r"""The decay rate with the same memory *in samples* at another batch size.

    An EMA with decay rate :math:`\beta` updated once per batch of :math:`B` samples has a
    half-life of :math:`h\,B` samples (:func:`half_life`). Keeping it fixed at batch
    :math:`B^*` gives (Marek et al., 2025)

    .. math:: \beta^* = \beta^{B^*/B}.

    Smaller batches need a :math:`\beta` closer to 1 (more steps for the same samples).

    Parameters
    ----------
    beta : float
        The decay rate at ``batch_size``, in [0, 1).
    batch_size, new_batch_size : float
        The batch sizes :math:`B` and :math:`B^*`, > 0.

    Examples
    --------
    >>> round(beta_for_batch_size(0.95, 512, 1), 4)      # Marek et al.'s example
    0.9999
    >>> round(beta_for_batch_size(0.999, 64, 256), 6)
    0.996006
    """
    beta = hp.check_beta("beta", beta)
    batch_size = _check_positive("batch_size", batch_size)
    new_batch_size = _check_positive("new_batch_size", new_batch_size)
    return beta ** (new_batch_size / batch_size)


def bias_correction_factor(beta: float, t: ArrayLike) -> np.ndarray | float:
    r"""The total weight an EMA started at zero has after ``t`` inputs: :math:`1-\beta^t`.

    .. math:: \sum_{k=0}^{t-1} (1-\beta)\beta^k = 1-\beta^t.

    If every input has expectation :math:`\mu`, then :math:`E[m_t] = (1-\beta^t)\mu`: the EMA is
    biased towards its starting value 0, and :math:`m_t / (1-\beta^t)` is not.

    Parameters
    ----------
    beta : float
        The decay rate, in [0, 1).
    t : int or ndarray
        Number of inputs so far (the step number), an integer >= 1, or an array of them.

    Returns
    -------
    float or ndarray
        :math:`1-\beta^t`, of ``t``'s shape.

    Examples
    --------
    >>> round(bias_correction_factor(0.999, 1), 6)
    0.001
    """
    beta = hp.check_beta("beta", beta)
    steps = _check_steps(t)
    out = 1.0 - beta ** steps.astype(float)
    return float(out) if out.ndim == 0 else out


def ema(xs: ArrayLike, beta: float, *, bias_correction: bool = True) -> np.ndarray:
    r"""The EMA of a sequence at every step, along axis 0, started at zero.

    .. math::

       m_t = \beta m_{t-1} + (1-\beta) x_t, \quad m_0 = 0; \qquad
       \text{returns } m_t / (1-\beta^t) \text{ (or } m_t \text{ when bias\_correction is False)}.

    Parameters
    ----------
    xs : array_like
        The inputs :math:`x_1, \dots, x_T`, of shape ``(T, ...)`` (axis 0 is time; other axes are
        averaged separately).
    beta : float
        The decay rate, in [0, 1).
    bias_correction : bool, default True
        Divide by :math:`1-\beta^t`, as Adam does.

    Returns
    -------
    ndarray
        :math:`\hat m_1, \dots, \hat m_T` (or :math:`m_1, \dots, m_T`), in float64, of ``xs``'s shape.

    Examples
    --------
    >>> ema([2.0, 2.0, 2.0], 0.9)                      # corrected: exact for a constant
    array([2., 2., 2.])
    >>> ema([2.0, 2.0], 0.9, bias_correction=False)     # uncorrected: starts near 0
    array([0.2 , 0.38])
    """
    beta = hp.check_beta("beta", beta)
    x = np.asarray(xs, dtype=float)
    if x.ndim == 0:
        raise ValueError("xs must be a sequence (axis 0 is time), got a scalar")
    out = np.empty_like(x)
    m = np.zeros_like(x[0]) if len(x) else None
    for t in range(len(x)):
        m = beta * m + (1 - beta) * x[t]
        out[t] = m
    if bias_correction and len(x):
        out /= (1.0 - beta ** np.arange(1, len(x) + 1, dtype=float)).reshape((-1,) + (1,) * (x.ndim - 1))
    return out


def ema_noise_ratio(beta: float) -> float:
    r"""How much an EMA shrinks independent noise, once it has run long: :math:`\sqrt{(1-\beta)/(1+\beta)}`.

    If :math:`x_t = \mu + \sigma z_t` with independent standard :math:`z_t`, the stationary
    standard deviation of the EMA is

    .. math:: \sigma \sqrt{\sum_k (1-\beta)^2 \beta^{2k}} = \sigma\sqrt{\frac{1-\beta}{1+\beta}}.

    The price is lag: the EMA follows a change in :math:`\mu` only over about
    :func:`effective_window` steps.

    Examples
    --------
    >>> round(ema_noise_ratio(0.9), 3)
    0.229
    """
    beta = hp.check_beta("beta", beta)
    return math.sqrt((1 - beta) / (1 + beta))


def uncorrected_step(beta1: float, beta2: float, t: ArrayLike = 1) -> np.ndarray | float:
    r"""Adam's step without bias correction, in units of the learning rate, for a constant gradient.

    If every gradient is the same :math:`g \neq 0` and :math:`\epsilon = 0`, then
    :math:`m_t = (1-\beta_1^t) g` and :math:`v_t = (1-\beta_2^t) g^2`, so the uncorrected step is

    .. math:: \frac{|\Delta\theta_t|}{\alpha} = \frac{|m_t|}{\sqrt{v_t}} = \frac{1-\beta_1^t}{\sqrt{1-\beta_2^t}},

    which is :math:`(1-\beta_1)/\sqrt{1-\beta_2}` at :math:`t=1`: 3.16 at the defaults (0.9, 0.999),
    100 for (0, 0.9999). With bias correction the same step is exactly 1 at every :math:`t`.

    Parameters
    ----------
    beta1, beta2 : float
        In [0, 1).
    t : int or ndarray, default 1
        Step number(s): an integer >= 1, or an array of them.

    Examples
    --------
    >>> round(uncorrected_step(0.9, 0.999), 3)
    3.162
    """
    beta1 = hp.check_beta("beta1", beta1)
    beta2 = hp.check_beta("beta2", beta2)
    steps = _check_steps(t).astype(float)
    out = (1.0 - beta1**steps) / np.sqrt(1.0 - beta2**steps)
    return float(out) if out.ndim == 0 else out


def step_bound(beta1: float, beta2: float, t: int | None = None, *, bias_correction: bool = True) -> float:
    r"""The largest step Adam can take, in units of the learning rate, over all gradient histories.

    With :math:`\epsilon = 0`, the step is :math:`\alpha\, c_t\, |m_t| / \sqrt{v_t}` with
    :math:`c_t = \sqrt{1-\beta_2^t}/(1-\beta_1^t)` (or :math:`c_t = 1` without bias correction).
    Writing :math:`\beta_1^k g = (\beta_1/\sqrt{\beta_2})^k \cdot \beta_2^{k/2} g` and applying
    Cauchy-Schwarz to :math:`m_t = (1-\beta_1)\sum_k \beta_1^k g_{t-k}`,

    .. math::

       \frac{|m_t|}{\sqrt{v_t}} \le \frac{1-\beta_1}{\sqrt{1-\beta_2}}
       \sqrt{\sum_{k=0}^{t-1} r^k}, \qquad r = \frac{\beta_1^2}{\beta_2},

    with equality when :math:`g_{t-k} \propto (\beta_1/\beta_2)^k` (recent gradients large, old
    ones small: a gradient growing by :math:`\beta_2/\beta_1` per step, which :math:`m` follows
    faster than :math:`v`). As
    :math:`t\to\infty` the bound is :math:`(1-\beta_1)/\sqrt{(1-\beta_2)(1-r)}` if
    :math:`\beta_1^2 < \beta_2`, and **infinite** if :math:`\beta_1^2 \ge \beta_2`.

    Parameters
    ----------
    beta1, beta2 : float
        In [0, 1).
    t : int or None
        The step number (>= 1), or ``None`` for the limit :math:`t\to\infty` (where the bias
        corrections tend to 1, so ``bias_correction`` does not matter).
    bias_correction : bool, default True
        Include :math:`c_t`.

    Returns
    -------
    float
        The bound (``inf`` when there is none); it is attained by some gradient sequence.

    Examples
    --------
    >>> round(step_bound(0.9, 0.95), 3), round(step_bound(0.9, 0.999), 3)
    (1.165, 7.27)
    >>> step_bound(0.99, 0.9)
    inf
    >>> round(step_bound(0.9, 0.999, t=1), 12)   # the first step is always lr * sign(g)
    1.0
    """
    beta1 = hp.check_beta("beta1", beta1)
    beta2 = hp.check_beta("beta2", beta2)
    if t is not None:
        t = hp.check_int("t", t, 1)
    if beta1 == 0.0 or t == 1:  # m_t is a multiple of g_t alone (0**0 = 1)
        total = 1.0
    elif beta2 == 0.0:
        total = math.inf
    else:
        r = beta1**2 / beta2
        if t is None:
            total = 1.0 / (1.0 - r) if r < 1.0 else math.inf
        elif r == 1.0:
            total = float(t)
        else:
            total = (1.0 - r**t) / (1.0 - r)
    bound = (1.0 - beta1) / math.sqrt(1.0 - beta2) * math.sqrt(total)
    if t is not None and bias_correction:
        bound *= math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    return bound
