r"""Learning-rate range tests: Smith's original, and the common exponential variant.

Smith (2017, section 3.3) trains for a few epochs while the rate rises *linearly* from a
low to a high value, plots the *accuracy* against the rate, and reads two rates off it:
where the accuracy starts to rise, and where it slows, turns ragged or falls (he uses them
as the bounds of a cyclical schedule). :func:`accuracy_range_test` is that test.

The finders in libraries (fastai's ``lr_find``; Howard and Gugger, 2020) read the *loss*
instead, over a rate that rises *exponentially*,

.. math::

   \alpha_t = \alpha_{\text{start}}
       \left(\frac{\alpha_{\text{end}}}{\alpha_{\text{start}}}\right)^{t / (N - 1)},
   \qquad t = 0, \dots, N - 1,

smooth the minibatch loss with a bias-corrected exponential moving average,

.. math::

   a_t = \beta a_{t-1} + (1 - \beta) L_t, \quad a_{-1} = 0, \qquad
   \bar L_t = a_t / (1 - \beta^{t+1}),

and stop once :math:`\bar L_t` exceeds a few times (``stop_factor``, fastai's is 4) its
lowest value so far. :func:`lr_range_test` is that variant; :func:`suggest` turns its
curve into one rate: ``"steepest"`` takes the rate where :math:`\bar L` falls fastest per
unit of :math:`\log\alpha` (before its minimum), ``"min/10"`` takes a tenth of the rate at
the minimum, and ``"valley"`` (:func:`valley`, the default suggestion of fastai's ``lr_find``) takes the rate halfway along the longest descending stretch of the curve. fastai
smooths with :math:`\beta = 0.98`; this module's default is 0.9 (a test of 100 to 150
steps averages over about 10 of them instead of 50).

References
----------
Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV.
Howard, J. and Gugger, S. (2020). Fastai: A Layered API for Deep Learning. Information 11(2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from .tasks import DigitsSplit, evaluate, train

__all__ = [
    "METHODS",
    "AccuracyTest",
    "RangeTest",
    "accuracy_range_test",
    "exponential_rates",
    "linear_rates",
    "lr_range_test",
    "smooth",
    "suggest",
    "valley",
]

#: The rules :func:`suggest` knows.
METHODS = ("steepest", "min/10", "valley")


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not (0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def exponential_rates(start: float, end: float, steps: int) -> np.ndarray:
    r"""``steps`` rates rising geometrically from ``start`` to ``end`` (both included).

    :math:`\alpha_t = \alpha_{\text{start}} (\alpha_{\text{end}}/\alpha_{\text{start}})^{t/(N-1)}`.
    """
    start, end = _check_positive("start", start), _check_positive("end", end)
    if not end > start:
        raise ValueError(f"end must be > start, got start={start!r}, end={end!r}")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    return start * (end / start) ** (np.arange(int(steps)) / (int(steps) - 1))


def linear_rates(end: float, steps: int) -> np.ndarray:
    r"""``steps`` rates rising linearly to ``end``: :math:`\alpha_t = \alpha_{\text{end}} (t + 1) / N`."""
    end = _check_positive("end", end)
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    return end * np.arange(1, int(steps) + 1) / int(steps)


def smooth(losses: np.ndarray, beta: float = 0.9) -> np.ndarray:
    r"""The bias-corrected exponential moving average :math:`\bar L_t` of ``losses``.

    Non-finite losses make every later value non-finite (the test stops there anyway).
    """
    if isinstance(beta, bool) or not isinstance(beta, Real) or not (0 <= beta < 1):
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}")
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1:
        raise ValueError(f"losses: expected a 1-D array, got shape {losses.shape}")
    out = np.empty_like(losses)
    avg = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for t, loss in enumerate(losses):
            avg = beta * avg + (1 - beta) * loss
            out[t] = avg / (1 - beta ** (t + 1))
    return out


def suggest(lr: np.ndarray, smoothed: np.ndarray, method: str = "steepest") -> float:
    r"""One rate read off a range test's smoothed loss curve.

    Parameters
    ----------
    lr, smoothed : ndarray
        The rates (increasing) and the smoothed loss at each of them: two 1-D arrays of
        one length ``N >= 3``.
    method : str
        ``"steepest"``: the rate at the most negative :math:`d\bar L / d\log\alpha`
        (central differences), among the points up to the minimum of :math:`\bar L`.
        ``"min/10"``: the rate at the minimum of :math:`\bar L`, divided by 10.
        ``"valley"``: :func:`valley` of the curve without its first tenth and its last 5
        points, the part of the curve fastai's ``lr_find`` hands to its rules.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lr, smoothed = np.asarray(lr, dtype=float), np.asarray(smoothed, dtype=float)
    if lr.ndim != 1 or lr.shape != smoothed.shape or len(lr) < 3:
        raise ValueError(f"lr and smoothed: expected 1-D arrays of one length >= 3, got shapes {lr.shape} and {smoothed.shape}")
    if not np.all(lr > 0) or not np.all(np.diff(lr) > 0):
        raise ValueError("lr: expected positive, strictly increasing rates")
    finite = np.isfinite(smoothed)
    if finite.sum() < 3:
        raise ValueError("smoothed: expected at least 3 finite losses")
    i_min = int(np.argmin(np.where(finite, smoothed, np.inf)))
    if method == "min/10":
        return float(lr[i_min] / 10)
    if method == "valley":
        n = len(lr)
        keep = slice(n // 10, max(n - 5, n // 10 + 3))
        return valley(lr[keep], smoothed[keep])
    stop = max(i_min + 1, 3)  # the minimum's neighbourhood, and at least 3 points for a derivative
    slope = np.gradient(smoothed[:stop], np.log(lr[:stop]))
    return float(lr[int(np.nanargmin(slope))])


def valley(lr: np.ndarray, smoothed: np.ndarray) -> float:
    r"""fastai's ``valley`` rule: the rate halfway along the longest descending stretch.

    With :math:`\ell_i` the length of the longest strictly decreasing subsequence of
    :math:`\bar L` that ends at point :math:`i`, and :math:`e` the first point where
    :math:`\ell` is largest, the stretch is taken to run from :math:`s = e - \ell_e` to
    :math:`e` (:math:`s = 0` on a curve that never descends), and the suggestion is the rate at index
    :math:`s + \lfloor d \rfloor + \lfloor d/2 \rfloor`, :math:`d = (e - s)/3`
    (about halfway; fastai's ``callback/schedule.py``).

    Parameters
    ----------
    lr, smoothed : ndarray
        The rates (increasing) and the smoothed loss: 1-D arrays of one length ``N >= 3``;
        non-finite losses are treated as the largest loss.

    Examples
    --------
    >>> float(valley(np.array([1.0, 2, 3, 4, 5, 6, 7]),
    ...              np.array([5.0, 4, 3, 2, 1, 0.5, 9])))
    3.0
    """
    lr, smoothed = np.asarray(lr, dtype=float), np.asarray(smoothed, dtype=float)
    if lr.ndim != 1 or lr.shape != smoothed.shape or len(lr) < 3:
        raise ValueError(f"lr and smoothed: expected 1-D arrays of one length >= 3, got shapes {lr.shape} and {smoothed.shape}")
    loss = np.where(np.isfinite(smoothed), smoothed, np.inf)
    n = len(loss)
    length = np.ones(n, dtype=int)
    for i in range(1, n):
        below = loss[:i] > loss[i]
        if below.any():
            length[i] = length[:i][below].max() + 1
    end = int(np.argmax(length))
    start = end - int(length[end]) if length[end] > 1 else 0  # no descent: fastai keeps 0
    third = (end - start) / 3
    return float(lr[start + int(third) + int(third / 2)])


@dataclass(frozen=True)
class RangeTest:
    """What :func:`lr_range_test` records, up to the step where it stopped.

    Attributes
    ----------
    lr : ndarray
        The rate used at each step.
    loss : ndarray
        The minibatch loss at each step.
    smoothed : ndarray
        :func:`smooth` of ``loss``.
    stopped_early : bool
        True when the smoothed loss exceeded ``stop_factor`` times its minimum (or was not
        finite) before the last planned step.
    """

    lr: np.ndarray
    loss: np.ndarray
    smoothed: np.ndarray
    stopped_early: bool

    def suggestion(self, method: str = "steepest") -> float:
        """:func:`suggest` applied to this test's curve."""
        return suggest(self.lr, self.smoothed, method)


class _Stop(Exception):
    """Raised from the training callback to end the test."""


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DigitsSplit,
    *,
    start: float = 1e-6,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int = 64,
    beta: float = 0.9,
    stop_factor: float = 4.0,
    seed: int = 0,
) -> RangeTest:
    """Train ``model`` with a rate rising from ``start`` to ``end`` and record the loss.

    Uses ``adamlib.lab.tasks.train`` (same minibatches for the same ``seed``), setting the
    rate of every param group before each step; stops once the smoothed loss exceeds
    ``stop_factor`` times its lowest value so far. ``model`` and ``optimizer`` are trained
    in place: start the real training from a fresh model.

    Parameters
    ----------
    model, optimizer
        A model and any ``torch.optim.Optimizer`` over its parameters (its ``lr`` is overwritten).
    data
        From ``adamlib.lab.tasks.digits_split``.
    start, end : float
        The first and the last rate, ``0 < start < end``.
    steps : int
        The number of steps if the test does not stop early (``>= 2``).
    batch_size, seed
        Passed to ``adamlib.lab.tasks.train``.
    beta : float
        The smoothing of :func:`smooth`.
    stop_factor : float
        Stop when the smoothed loss exceeds this multiple of its minimum (``> 1``).
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    rates = exponential_rates(start, end, steps)
    if isinstance(stop_factor, bool) or not isinstance(stop_factor, Real) or not (1 < stop_factor <= math.inf):
        raise ValueError(f"stop_factor must be a number > 1, got {stop_factor!r}")
    smooth(np.zeros(1), beta)  # validates beta before training
    losses: list[float] = []
    state = {"avg": 0.0, "best": math.inf}

    def set_rate(lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = float(lr)

    def record(step: int, loss: float) -> None:
        losses.append(loss)
        state["avg"] = beta * state["avg"] + (1 - beta) * loss
        smoothed = state["avg"] / (1 - beta ** (step + 1))
        state["best"] = min(state["best"], smoothed)
        if not math.isfinite(smoothed) or smoothed > stop_factor * state["best"]:
            raise _Stop
        if step + 1 < len(rates):
            set_rate(rates[step + 1])

    set_rate(rates[0])
    stopped = False
    try:
        train(model, optimizer, data, len(rates), batch_size=batch_size, seed=seed, callback=record)
    except _Stop:
        stopped = len(losses) < len(rates)
    loss = np.array(losses)
    return RangeTest(rates[: len(loss)], loss, smooth(loss, beta), stopped)


@dataclass(frozen=True)
class AccuracyTest:
    """What :func:`accuracy_range_test` records.

    Attributes
    ----------
    lr : ndarray
        The rate of the step after which each evaluation was made.
    accuracy : ndarray
        The validation accuracy at each evaluation.
    """

    lr: np.ndarray
    accuracy: np.ndarray


def accuracy_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DigitsSplit,
    *,
    end: float,
    steps: int,
    eval_every: int = 5,
    batch_size: int = 64,
    seed: int = 0,
) -> AccuracyTest:
    """Smith's range test: a linearly rising rate, and the validation accuracy along it.

    Trains ``model`` for ``steps`` steps of ``adamlib.lab.tasks.train`` with the rate
    :func:`linear_rates` ``(end, steps)`` and evaluates the validation accuracy after every
    ``eval_every``-th step. ``model`` and ``optimizer`` are trained in place.

    Parameters
    ----------
    model, optimizer
        A model and any ``torch.optim.Optimizer`` over its parameters (its ``lr`` is overwritten).
    data
        From ``adamlib.lab.tasks.digits_split``.
    end : float
        The last (largest) rate, ``> 0``.
    steps : int
        The number of training steps (``>= 2``).
    eval_every : int
        Steps between two evaluations (``1 <= eval_every <= steps``).
    batch_size, seed
        Passed to ``adamlib.lab.tasks.train``.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    rates = linear_rates(end, steps)
    if isinstance(eval_every, bool) or not isinstance(eval_every, Integral) or not 1 <= eval_every <= steps:
        raise ValueError(f"eval_every must be an integer in [1, steps], got {eval_every!r}")
    at: list[float] = []
    accuracy: list[float] = []

    def set_rate(lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = float(lr)

    def record(step: int, loss: float) -> None:
        if (step + 1) % eval_every == 0:
            at.append(float(rates[step]))
            accuracy.append(evaluate(model, data.X_val, data.y_val)[1])
        if step + 1 < len(rates):
            set_rate(rates[step + 1])

    set_rate(rates[0])
    train(model, optimizer, data, len(rates), batch_size=batch_size, seed=seed, callback=record)
    return AccuracyTest(np.array(at), np.array(accuracy))
