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

:func:`warmup_cosine_rates` gives the learning rate of every step of nanoGPT's schedule (linear
warmup, cosine decay to a floor), whose rates :func:`retention` turns into the decay a run
really applies, and :func:`normalized_weight_decay` is Loshchilov & Hutter's rule for scaling
:math:`\lambda` with the length of training.

References
----------
Karpathy, A. (2022). nanoGPT. https://github.com/karpathy/nanoGPT (``train.py``, ``get_lr``).
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

__all__ = [
    "best_decay", "equilibrium_rms", "normalized_weight_decay", "parameter_groups", "retention",
    "timescale", "torch_weight_decay", "warmup_cosine_rates",
]


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


def warmup_cosine_rates(peak: float, steps: int, *, warmup: int, min_lr: float,
                        decay_steps: int | None = None) -> np.ndarray:
    r"""The learning rate of every step of nanoGPT's schedule: linear warmup, cosine to a floor.

    As ``get_lr`` in nanoGPT's ``train.py``, for the iterations :math:`i = 0, \dots, T-1`
    (:math:`W` warmup steps, decay over :math:`D` steps, peak :math:`\alpha`, floor
    :math:`\alpha_{\min}`):

    .. math::

       \alpha_i = \begin{cases}
       \alpha\,(i+1)/(W+1) & i < W \\
       \alpha_{\min} + \tfrac12\big(1 + \cos(\pi r)\big)(\alpha - \alpha_{\min}),
       \quad r = (i-W)/(D-W) & W \le i \le D \\
       \alpha_{\min} & i > D.
       \end{cases}

    Parameters
    ----------
    peak : float
        :math:`\alpha` (> 0), the rate at the end of warmup.
    steps : int
        :math:`T`, the number of steps (>= 1).
    warmup : int
        :math:`W` (>= 0).
    min_lr : float
        :math:`\alpha_{\min}`, in [0, peak].
    decay_steps : int, optional
        :math:`D` (> ``warmup``); by default ``steps``, as nanoGPT's ``lr_decay_iters`` equals
        its ``max_iters``.

    Returns
    -------
    ndarray
        The :math:`T` rates, for :func:`retention`.

    Examples
    --------
    >>> warmup_cosine_rates(1.0, 7, warmup=2, min_lr=0.1, decay_steps=6).round(3)
    array([0.333, 0.667, 1.   , 0.868, 0.55 , 0.232, 0.1  ])
    """
    peak = hp.check_lr(peak)
    if peak == 0.0:
        raise ValueError(f"peak must be > 0, got {peak!r}")
    min_lr = hp.check_real("min_lr", min_lr, f"in [0, peak={peak!r}]", lambda x: 0.0 <= x <= peak)
    steps, warmup = hp.check_int("steps", steps, 1), hp.check_int("warmup", warmup, 0)
    decay_steps = hp.check_int("decay_steps", steps if decay_steps is None else decay_steps, warmup + 1)
    i = np.arange(steps, dtype=float)
    ratio = np.clip((i - warmup) / (decay_steps - warmup), 0.0, 1.0)
    cosine = min_lr + 0.5 * (1.0 + np.cos(np.pi * ratio)) * (peak - min_lr)
    return np.where(i < warmup, peak * (i + 1) / (warmup + 1), cosine)


def normalized_weight_decay(normalized: float, batch_size: int, n_train: int, epochs: float) -> float:
    r"""Loshchilov & Hutter's normalized weight decay: :math:`\lambda = \lambda_{\text{norm}}\sqrt{b/(BT)}`.

    The best :math:`\lambda` depends on how long training lasts; the same paper proposes to
    tune :math:`\lambda_{\text{norm}}` instead, with :math:`b` the batch size, :math:`B` the
    number of training points and :math:`T` the number of epochs, so that :math:`BT/b` is the
    number of steps and :math:`\lambda` falls as the square root of it. (Wang & Aitchison's
    timescale rule, :func:`timescale`, keeps :math:`\tau = 1/(\alpha\lambda)` a fixed fraction
    of training instead: :math:`\lambda` proportional to 1/steps.)

    Parameters
    ----------
    normalized : float
        :math:`\lambda_{\text{norm}}` (>= 0).
    batch_size, n_train : int
        :math:`b` and :math:`B` (>= 1).
    epochs : float
        :math:`T` (> 0).

    Examples
    --------
    >>> round(normalized_weight_decay(0.05, 128, 50_000, 100), 6)  # a CIFAR-10 run
    0.000253
    """
    normalized = hp.check_weight_decay(normalized)
    batch_size, n_train = hp.check_int("batch_size", batch_size, 1), hp.check_int("n_train", n_train, 1)
    epochs = hp.check_real("epochs", epochs, "finite and > 0", lambda x: 0.0 < x < math.inf)
    return normalized * math.sqrt(batch_size / (n_train * epochs))
