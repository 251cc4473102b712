r"""Learning-rate schedules built from torch's own schedulers, from a few numbers.

Each factory takes an optimizer whose learning rate is the *peak* rate :math:`\alpha`
and returns a ``torch.optim.lr_scheduler.LRScheduler`` to be stepped once after every
optimizer step (as ``adamlib.lab.tasks.train`` does). With :math:`t = 0, 1, \dots` the
number of steps taken so far and :math:`T` the budget in steps:

.. math::

   \begin{aligned}
   \text{step:}\quad & \alpha_t = \alpha\,\gamma^{\lfloor t / s \rfloor} \\
   \text{cosine:}\quad & \alpha_t = \alpha_{\min} + \tfrac12(\alpha - \alpha_{\min})
       \bigl(1 + \cos(\pi t / T)\bigr) \\
   \text{warmup + cosine:}\quad & \alpha_t = \alpha\,\Bigl(f + (1 - f)\tfrac{t}{W}\Bigr)
       \ (t < W), \qquad
       \alpha_{\min} + \tfrac12(\alpha - \alpha_{\min})\bigl(1 + \cos(\pi \tfrac{t - W}{T - W})\bigr)
       \ (t \ge W) \\
   \text{warmup + constant:}\quad & \alpha_t = \alpha\,\Bigl(f + (1 - f)\tfrac{t}{W}\Bigr)
       \ (t < W), \qquad \alpha\ (t \ge W)
   \end{aligned}

with :math:`\alpha_{\min} = \rho\,\alpha` (``final_fraction``), :math:`W` the warmup
steps and :math:`f` the warmup's starting fraction. Step decay is the classic recipe
(used with warmup by Goyal et al., 2017), cosine annealing is Loshchilov & Hutter's
(2017) SGDR without restarts, and warmup then cosine is the usual recipe for large models
(e.g. Brown et al., 2020). Warmup then constant is the schedule of the Deep Learning Tuning
Playbook's warmup protocol (Godbole et al., 2023), which sweeps the warmup length at a fixed peak.

:func:`trace` returns the rates a schedule would give, without training anything.

References
----------
Goyal, P. et al. (2017). Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour.
Loshchilov, I. & Hutter, F. (2017). SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable

import numpy as np
import torch
from torch.optim import lr_scheduler

__all__ = ["SCHEDULES", "constant", "cosine", "make", "step", "trace", "warmup_constant", "warmup_cosine"]

Scheduler = lr_scheduler.LRScheduler


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(name: str, value: object, *, low_open: bool) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (0 < value <= 1 if low_open else 0 <= value <= 1)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _check_optimizer(optimizer: object) -> torch.optim.Optimizer:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


def constant(optimizer: torch.optim.Optimizer, total_steps: int) -> Scheduler:
    r"""No schedule: :math:`\alpha_t = \alpha` (a ``LambdaLR`` with factor 1, for uniform code)."""
    _check_optimizer(optimizer)
    _check_int("total_steps", total_steps, 1)
    return lr_scheduler.LambdaLR(optimizer, lambda t: 1.0)


def step(optimizer: torch.optim.Optimizer, total_steps: int, *, drops: int = 2, gamma: float = 0.1) -> Scheduler:
    r"""Step decay: multiply the rate by ``gamma`` ``drops`` times, evenly spaced over the budget.

    :math:`\alpha_t = \alpha\,\gamma^{\lfloor t / s \rfloor}` with
    :math:`s = \lceil T / (\text{drops} + 1) \rceil` (torch's ``StepLR``).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its current learning rate is the starting (peak) rate.
    total_steps : int
        The budget :math:`T` in optimizer steps (``>= drops + 1``).
    drops : int, default 2
        How many times the rate drops (``>= 1``).
    gamma : float, default 0.1
        The factor of each drop, in ``(0, 1]``.
    """
    _check_optimizer(optimizer)
    drops = _check_int("drops", drops, 1)
    total_steps = _check_int("total_steps", total_steps, drops + 1)
    gamma = _check_fraction("gamma", gamma, low_open=True)
    return lr_scheduler.StepLR(optimizer, step_size=math.ceil(total_steps / (drops + 1)), gamma=gamma)


def cosine(optimizer: torch.optim.Optimizer, total_steps: int, *, final_fraction: float = 0.0) -> Scheduler:
    r"""Cosine annealing from the peak rate down to ``final_fraction`` of it at ``total_steps``.

    :math:`\alpha_t = \alpha_{\min} + \tfrac12(\alpha - \alpha_{\min})(1 + \cos(\pi t / T))`,
    :math:`\alpha_{\min} = \rho\alpha` (torch's ``CosineAnnealingLR``; Loshchilov & Hutter, 2017).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its current learning rate is the peak rate :math:`\alpha`.
    total_steps : int
        :math:`T` (``>= 1``).
    final_fraction : float, default 0
        :math:`\rho \in [0, 1]`.
    """
    _check_optimizer(optimizer)
    total_steps = _check_int("total_steps", total_steps, 1)
    rho = _check_fraction("final_fraction", final_fraction, low_open=False)
    peak = optimizer.param_groups[0]["lr"]
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=rho * float(peak))


def _check_warmup(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, start_fraction: float
) -> tuple[int, int, float]:
    """The checked ``warmup_steps``, ``total_steps`` and ``start_fraction`` of a warmup schedule."""
    _check_optimizer(optimizer)
    warmup_steps = _check_int("warmup_steps", warmup_steps, 1)
    total_steps = _check_int("total_steps", total_steps, warmup_steps + 1)
    return warmup_steps, total_steps, _check_fraction("start_fraction", start_fraction, low_open=True)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    *,
    warmup_steps: int,
    start_fraction: float = 0.01,
    final_fraction: float = 0.0,
) -> Scheduler:
    r"""Linear warmup from ``start_fraction`` of the peak to the peak, then cosine annealing.

    A ``SequentialLR`` of ``LinearLR`` (``warmup_steps`` steps) and ``CosineAnnealingLR``
    (the remaining :math:`T - W` steps); see the module docstring for the formula.

    Parameters
    ----------
    optimizer, total_steps, warmup_steps, start_fraction
        As in :func:`warmup_constant`.
    final_fraction : float, default 0
        :math:`\rho \in [0, 1]`: the rate at :math:`T` is :math:`\rho\alpha`.
    """
    warmup_steps, total_steps, f = _check_warmup(optimizer, total_steps, warmup_steps, start_fraction)
    rho = _check_fraction("final_fraction", final_fraction, low_open=False)
    peak = float(optimizer.param_groups[0]["lr"])
    warm = lr_scheduler.LinearLR(optimizer, start_factor=f, end_factor=1.0, total_iters=warmup_steps)
    anneal = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=rho * peak)
    return lr_scheduler.SequentialLR(optimizer, [warm, anneal], milestones=[warmup_steps])


def warmup_constant(
    optimizer: torch.optim.Optimizer, total_steps: int, *, warmup_steps: int, start_fraction: float = 0.01
) -> Scheduler:
    r"""Linear warmup from ``start_fraction`` of the peak to the peak, then the peak to the end.

    torch's ``LinearLR`` over ``warmup_steps`` steps (it holds its end factor afterwards):
    :math:`\alpha_t = \alpha\,(f + (1 - f)\,t/W)` for :math:`t < W`, then :math:`\alpha`.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its current learning rate is the peak rate :math:`\alpha`.
    total_steps : int
        :math:`T`, which must exceed ``warmup_steps``.
    warmup_steps : int
        :math:`W \ge 1`.
    start_fraction : float, default 0.01
        :math:`f \in (0, 1]`: the first step uses :math:`f\alpha`.
    """
    warmup_steps, _, f = _check_warmup(optimizer, total_steps, warmup_steps, start_fraction)
    return lr_scheduler.LinearLR(optimizer, start_factor=f, end_factor=1.0, total_iters=warmup_steps)


#: The factories by name, as :func:`make` and :func:`trace` take them.
SCHEDULES: dict[str, Callable[..., Scheduler]] = {
    "constant": constant,
    "step": step,
    "cosine": cosine,
    "warmup + cosine": warmup_cosine,
    "warmup + constant": warmup_constant,
}


def make(name: str, optimizer: torch.optim.Optimizer, total_steps: int, **options) -> Scheduler:
    """The schedule called ``name`` (a key of ``SCHEDULES``), with its ``options``.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.Adam(model.parameters(), lr=0.01)
    >>> sched = make("warmup + cosine", opt, 100, warmup_steps=10)
    """
    if name not in SCHEDULES:
        raise ValueError(f"name must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name](optimizer, total_steps, **options)


def trace(name: str, peak_lr: float, total_steps: int, **options) -> np.ndarray:
    r"""The rate :math:`\alpha_t` at each of ``total_steps`` steps, without training anything.

    Runs the schedule on an SGD optimizer over one dummy parameter, reading the rate
    before each step, as ``adamlib.lab.tasks.train`` records it.

    Returns
    -------
    ndarray
        ``total_steps`` rates, :math:`\alpha_0, \dots, \alpha_{T-1}`.
    """
    if isinstance(peak_lr, bool) or not isinstance(peak_lr, Real) or not (0 < peak_lr < math.inf):
        raise ValueError(f"peak_lr must be a finite number > 0, got {peak_lr!r}")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(peak_lr))
    sched = make(name, opt, total_steps, **options)
    rates = np.empty(int(total_steps))
    for t in range(int(total_steps)):
        rates[t] = opt.param_groups[0]["lr"]
        opt.step()  # no gradient: a no-op, but keeps torch from warning about the call order
        sched.step()
    return rates
