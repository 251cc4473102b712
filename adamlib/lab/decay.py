r"""Decoupled weight decay as a timescale: how long AdamW's weights remember, and where they settle.

With decoupled weight decay (AdamW, ``torch.optim.Adam(decoupled_weight_decay=True)``) one
step is, in PyTorch's convention,

.. math::

   \theta_t = (1 - \alpha_t\lambda)\,\theta_{t-1} - \alpha_t u_t, \qquad
   u_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},

where :math:`\alpha_t` is the learning rate at step :math:`t` (the schedule included). With a
constant rate this is an exponential moving average (:mod:`adamlib.moments`) of
:math:`-u_t/\lambda` with decay rate :math:`\beta = 1 - \alpha\lambda`:

.. math:: \theta_t = \beta\,\theta_{t-1} + (1-\beta)\,(-u_t/\lambda).

So the weights remember their past over the EMA's window :math:`\tau = 1/(\alpha\lambda)` steps
(:func:`timescale`; Wang & Aitchison, 2024), the initialization fades as
:math:`\prod_t (1-\alpha_t\lambda)` (:func:`retention`), and under noise-like updates each weight
settles at an RMS of about :math:`\sqrt{\alpha/(2\lambda)}` (:func:`equilibrium_rms`).
:func:`best_decay` reads the best decay of each learning rate off a learning-rate x decay grid,
and :func:`parameter_groups` leaves biases and normalization gains undecayed, as most recipes do.

Loshchilov & Hutter's Algorithm 2 writes the decay as :math:`\eta_t\lambda_{\text{paper}}`, the
schedule multiplier :math:`\eta_t` times a decay that the peak rate :math:`\alpha` does not
multiply; PyTorch multiplies by the whole rate :math:`\alpha\eta_t`. The two agree when
:math:`\lambda_{\text{torch}} = \lambda_{\text{paper}}/\alpha` (:func:`torch_weight_decay`).

References
----------
Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR. Algorithm 2.
Wang, X. & Aitchison, L. (2024). How to set AdamW's weight decay as you scale model and dataset
size. arXiv:2405.13698.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike

from .. import hyperparams as hp

__all__ = ["best_decay", "equilibrium_rms", "parameter_groups", "retention", "timescale", "torch_weight_decay"]


def _check_positive(name: str, value: object) -> float:
    value = hp.check_lr(value) if name == "lr" else hp.check_weight_decay(value)
    if value == 0.0:
        raise ValueError(f"{name} must be > 0 (no decay has no timescale), got {value!r}")
    return value


def _decay_rate(lr: float, weight_decay: float) -> float:
    """``1 - lr * weight_decay`` for checked positive inputs, which must leave it in (0, 1)."""
    if lr * weight_decay >= 1.0:
        raise ValueError(
            f"lr * weight_decay must be < 1 (each step multiplies the weights by 1 - lr * weight_decay), "
            f"got lr={lr!r}, weight_decay={weight_decay!r}"
        )
    return 1.0 - lr * weight_decay


def timescale(lr: float, weight_decay: float) -> float:
    r"""How many steps decoupled decay remembers: :math:`\tau = 1/(\alpha\lambda)`.

    It is the window (:func:`adamlib.moments.effective_window`) of the EMA with decay rate
    :math:`1-\alpha\lambda`: an update :math:`\tau` steps old still carries
    :math:`(1-\alpha\lambda)^\tau \approx 1/e` of its weight. ``lr`` and ``weight_decay`` are in
    PyTorch's convention (AdamW's ``lr`` and ``weight_decay``).

    Parameters
    ----------
    lr : float
        The learning rate :math:`\alpha` (> 0).
    weight_decay : float
        :math:`\lambda` (> 0), with :math:`\alpha\lambda < 1`.

    Examples
    --------
    >>> round(timescale(6e-4, 0.1))       # nanoGPT's recipe: about 16.7k steps
    16667
    """
    lr, weight_decay = _check_positive("lr", lr), _check_positive("weight_decay", weight_decay)
    _decay_rate(lr, weight_decay)
    return 1.0 / (lr * weight_decay)  # not 1 / (1 - (1 - lr * wd)), which rounds when lr * wd is tiny


def retention(lr: float | ArrayLike, weight_decay: float, steps: int | None = None) -> np.ndarray:
    r"""The share of the initial weights left after each step: :math:`\prod_{k\le t}(1-\alpha_k\lambda)`.

    With a constant rate it is :math:`(1-\alpha\lambda)^t \approx e^{-t/\tau}`. It is exactly what
    AdamW does to the weights when every gradient is zero; otherwise it is the coefficient of
    :math:`\theta_0` in :math:`\theta_t`, whatever the updates are.

    Parameters
    ----------
    lr : float or array_like
        A constant learning rate (then ``steps`` is required), or the rate of every step (a
        schedule, e.g. from :func:`adamlib.lab.schedules.trace`), each >= 0.
    weight_decay : float
        :math:`\lambda` (>= 0), with :math:`\alpha_k\lambda < 1` for every step.
    steps : int, optional
        The number of steps, when ``lr`` is a constant.

    Returns
    -------
    ndarray
        The retention after steps :math:`1, \dots, T`, of length :math:`T`.

    Examples
    --------
    >>> retention(0.1, 1.0, steps=3).round(3)
    array([0.9  , 0.81 , 0.729])
    >>> retention([0.1, 0.05, 0.0], 1.0).round(3)     # a decaying schedule decays less
    array([0.9  , 0.855, 0.855])
    """
    weight_decay = hp.check_weight_decay(weight_decay)
    if np.ndim(lr) == 0:
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0 when lr is a constant, got {steps!r}")
        rates = np.full(int(steps), hp.check_lr(float(lr) if isinstance(lr, np.ndarray) else lr))
    else:
        if steps is not None:
            raise ValueError(f"steps must be None when lr is a schedule (one rate per step), got {steps!r}")
        rates = np.asarray(lr, dtype=float)
        if rates.ndim != 1 or not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError(f"lr must be a 1-D sequence of finite rates >= 0, got {lr!r}")
    factors = 1.0 - rates * weight_decay
    if np.any(factors <= 0):
        raise ValueError(
            f"lr * weight_decay must be < 1 at every step, got a largest lr of {rates.max()!r} "
            f"with weight_decay={weight_decay!r}"
        )
    return np.cumprod(factors)


def equilibrium_rms(lr: float, weight_decay: float, beta1: float = hp.BETAS[0]) -> float:
    r"""The RMS at which a weight settles under noise-like gradients: about :math:`\sqrt{\alpha/(2\lambda)}`.

    Suppose the gradients carry no signal: zero mean, independent from step to step, so that
    :math:`g_t/\sqrt{\hat v_t} = z_t` has RMS 1 once :math:`\hat v_t` has settled. Adam's update
    is then :math:`u_t = \hat m_t/\sqrt{\hat v_t}`, the EMA of :math:`z_t` with :math:`\beta_1`,
    and the weight follows :math:`\theta_t = a\,\theta_{t-1} - \alpha u_t` with
    :math:`a = 1-\alpha\lambda`: a second-order autoregression with roots :math:`a` and
    :math:`\beta_1`, whose stationary variance is

    .. math::

       \operatorname{E}[\theta^2]
       = \frac{\alpha}{\lambda(2-\alpha\lambda)}\,
         \frac{(1-\beta_1)(1+a\beta_1)}{(1+\beta_1)(1-a\beta_1)}
       \;\approx\; \frac{\alpha}{2\lambda}
       \quad (\alpha\lambda \ll 1-\beta_1).

    Without momentum the second factor is 1 and the first is the stationary variance of an EMA
    (decay rate :math:`a`) of :math:`-z_t/\lambda`, :func:`adamlib.moments.ema_noise_ratio`
    squared over :math:`\lambda^2`. Momentum shrinks the update's RMS (to 0.229 at
    :math:`\beta_1 = 0.9`) but correlates successive updates, so that their long-run sum, and with
    it the weight's RMS, barely changes while the momentum window :math:`1/(1-\beta_1)` is short
    against :math:`\tau`.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\alpha` (> 0), constant.
    weight_decay : float
        :math:`\lambda` (> 0), with :math:`\alpha\lambda < 1`.
    beta1 : float, default 0.9
        Adam's :math:`\beta_1`, in [0, 1).

    Returns
    -------
    float
        The stationary RMS of the weight, :math:`\sqrt{\operatorname{E}[\theta^2]}` above.

    Examples
    --------
    >>> round(equilibrium_rms(1e-3, 0.1, beta1=0.0), 4), round((1e-3 / (2 * 0.1)) ** 0.5, 4)
    (0.0707, 0.0707)
    >>> round(equilibrium_rms(1e-2, 1.0, beta1=0.9) / equilibrium_rms(1e-2, 1.0, beta1=0.0), 3)
    0.956
    """
    lr, weight_decay = _check_positive("lr", lr), _check_positive("weight_decay", weight_decay)
    a = _decay_rate(lr, weight_decay)
    b = hp.check_beta("beta1", beta1)
    variance = lr / (weight_decay * (2.0 - lr * weight_decay))
    variance *= (1.0 - b) * (1.0 + a * b) / ((1.0 + b) * (1.0 - a * b))
    return math.sqrt(variance)


def torch_weight_decay(paper_weight_decay: float | ArrayLike, lr: float | ArrayLike) -> float | np.ndarray:
    r"""PyTorch's ``weight_decay`` that reproduces Loshchilov & Hutter's decay: :math:`\lambda_{\text{paper}}/\alpha`.

    Algorithm 2 of the paper shrinks the weights by :math:`\eta_t\lambda_{\text{paper}}` per
    step, where :math:`\eta_t` is the schedule multiplier alone; ``torch.optim.AdamW`` shrinks
    them by :math:`\alpha\eta_t\lambda_{\text{torch}}`, its whole learning rate times its
    ``weight_decay``. With :math:`\lambda_{\text{torch}} = \lambda_{\text{paper}}/\alpha` the two
    are the same optimizer; with a fixed :math:`\lambda_{\text{torch}}`, changing the peak rate
    :math:`\alpha` also changes the decay.

    Parameters
    ----------
    paper_weight_decay : float or array_like
        :math:`\lambda_{\text{paper}}` (>= 0).
    lr : float or array_like
        The peak learning rate :math:`\alpha` (> 0); broadcast against ``paper_weight_decay``.

    Examples
    --------
    >>> round(torch_weight_decay(1e-4, 1e-3), 12)
    0.1
    """
    wd = np.asarray(paper_weight_decay, dtype=float)
    rate = np.asarray(lr, dtype=float)
    if not np.all(np.isfinite(wd)) or np.any(wd < 0):
        raise ValueError(f"paper_weight_decay must be finite and >= 0, got {paper_weight_decay!r}")
    if not np.all(np.isfinite(rate)) or np.any(rate <= 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    out = wd / rate
    return float(out) if out.ndim == 0 else out



def best_decay(losses: ArrayLike, decays: ArrayLike) -> np.ndarray:
    r"""The best weight decay in each row of a (learning rate x decay) grid of losses.

    For each row, the decay with the lowest loss, refined between grid points: a parabola
    through the best point and its two neighbours, in :math:`\log_{10}\lambda`, gives the
    minimum (kept within the neighbours); a best point at the edge of the grid, or with a
    non-finite neighbour, is returned as it is. Fitting :math:`\log_{10}` of the result
    against :math:`\log_{10}` of the learning rates measures how the best decay moves with
    the rate (Loshchilov & Hutter's claim: not at all with decoupled decay).

    Parameters
    ----------
    losses : array_like
        Shape ``(n_lr, n_decay)``; non-finite entries (diverged runs) are never the best.
    decays : array_like
        The ``n_decay`` decays of the columns, > 0 and increasing.

    Returns
    -------
    ndarray
        ``n_lr`` decays (NaN for a row with no finite loss).

    Examples
    --------
    >>> lam = np.array([1e-3, 1e-2, 1e-1])
    >>> losses = [[1.0, 0.0, 1.0],       # symmetric in log10: the middle
    ...           [2.0, 1.0, 1.5],       # between the middle and the right
    ...           [3.0, 2.0, 1.0]]       # at the edge: the edge
    >>> best_decay(losses, lam).round(4)
    array([0.01  , 0.0147, 0.1   ])
    """
    values = np.asarray(losses, dtype=float)
    lam = np.asarray(decays, dtype=float)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0) \
            or np.any(np.diff(lam) <= 0):
        raise ValueError(f"decays must be a non-empty increasing sequence of finite numbers > 0, got {decays!r}")
    if values.ndim != 2 or values.shape[1] != lam.size:
        raise ValueError(f"losses must have shape (n_lr, {lam.size}) to match decays, got {values.shape}")
    x = np.log10(lam)
    out = np.full(values.shape[0], np.nan)
    for r, row in enumerate(values):
        row = np.where(np.isfinite(row), row, np.inf)
        if not np.isfinite(row).any():
            continue
        i = int(np.argmin(row))
        out[r] = x[i]
        if 0 < i < lam.size - 1 and np.isfinite(row[i - 1]) and np.isfinite(row[i + 1]):
            a, b, _ = np.polyfit(x[i - 1 : i + 2], row[i - 1 : i + 2], 2)
            if a > 0:  # a proper minimum (a flat triple keeps the grid point)
                out[r] = float(np.clip(-b / (2 * a), x[i - 1], x[i + 1]))
    return 10.0**out


def parameter_groups(params, weight_decay: float) -> list[dict]:
    r"""Two parameter groups: matrices decayed by ``weight_decay``, vectors and scalars not decayed.

    The usual recipe (e.g. nanoGPT's, and the one most transformer codebases follow) decays the
    weight matrices and leaves biases and normalization gains alone: those are vectors, and a
    pull of a bias or of a LayerNorm gain towards 0 does not limit what the network can express
    the way a smaller weight matrix does. The rule here is the same as nanoGPT's: a parameter
    with two or more dimensions is decayed.

    Parameters
    ----------
    params : iterable
        Tensors, or ``(name, tensor)`` pairs as ``model.named_parameters()`` gives; those with
        ``requires_grad=False`` are left out.
    weight_decay : float
        The decay of the matrices (>= 0).

    Returns
    -------
    list of dict
        ``[{"params": matrices, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]``,
        for any ``torch.optim`` optimizer or :class:`adamlib.torch.Adam` (empty groups are
        dropped).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    >>> [(len(g["params"]), g["weight_decay"]) for g in parameter_groups(net.parameters(), 0.1)]
    [(1, 0.1), (3, 0.0)]
    """
    import torch

    weight_decay = hp.check_weight_decay(weight_decay)
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of tensors (e.g. model.parameters()), got a single tensor")
    decayed, kept = [], []
    for item in params:
        p = item[1] if isinstance(item, tuple) else item
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params must hold tensors or (name, tensor) pairs, got {type(p).__name__}")
        if p.requires_grad:
            (decayed if p.dim() >= 2 else kept).append(p)
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
