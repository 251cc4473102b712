r"""The two-dimensional test functions with noisy gradients: many seeds in one run.

Adam was designed for *stochastic* objectives (Kingma & Ba, 2015, section 2.1): its step
:math:`\alpha\,\hat m_t / \sqrt{\hat v_t}` shrinks when the gradient's mean is small next
to its spread, the signal-to-noise ratio. :func:`run_noisy` drives an optimizer over a
:class:`~adamlib.lab.problems.Problem` whose gradient is observed with Gaussian noise,

.. math::

   \tilde g_t = \nabla f(x_{t-1}) + \sigma\, \xi_t, \qquad \xi_t \sim \mathcal{N}(0, I_2),

for several seeds at once: the parameter is an array of shape ``(n_seeds, 2)``, one row per
seed, which is exact for every optimizer that acts coordinate by coordinate (all of
:mod:`adamlib.baselines` and :class:`adamlib.Adam`). The noise of seed ``s`` is drawn from
``numpy.random.default_rng(s)`` before the run, so two optimizers run with the same seeds see
the same noise: their results can be compared seed by seed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable, Sequence

import numpy as np

from adamlib.lab.problems import Problem

__all__ = ["noise_draws", "run_noisy"]


def noise_draws(steps: int, seeds: Sequence[int]) -> np.ndarray:
    r"""The standard normal draws :math:`\xi_1, \dots, \xi_T` of each seed.

    Parameters
    ----------
    steps : int
        :math:`T`, the number of steps (``>= 0``).
    seeds : sequence of int
        One seed per run; seed ``s`` draws from ``numpy.random.default_rng(s)``.

    Returns
    -------
    ndarray
        Of shape ``(steps, len(seeds), 2)``: row ``t - 1`` holds :math:`\xi_t` of every seed.
    """
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, Integral) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers >= 0, got {seeds!r}")
    draws = [np.random.default_rng(int(s)).standard_normal((int(steps), 2)) for s in seeds]
    return np.stack(draws, axis=1)


def run_noisy(
    make_optimizer: Callable[[list[np.ndarray]], object],
    problem: Problem,
    x0: Sequence[float],
    steps: int,
    noise: float,
    seeds: Sequence[int],
) -> np.ndarray:
    r"""Minimise ``problem`` from ``x0`` with noisy gradients, once per seed; every point visited.

    At step :math:`t` the optimizer receives
    :math:`\nabla f(x_{t-1}) + \sigma\, \xi_t` with :math:`\sigma` = ``noise`` and the draws of
    :func:`noise_draws`.

    Parameters
    ----------
    make_optimizer : callable
        Called once with ``[x]``, ``x`` a float64 array of shape ``(len(seeds), 2)`` (row ``s``
        is the run of seed ``seeds[s]``); returns an optimizer whose ``step([g])`` updates ``x``
        in place, coordinate by coordinate, e.g. ``lambda params: Adam(params, lr=0.1)``.
    problem : Problem
        Supplies :math:`\nabla f`.
    x0 : sequence of float
        The starting point of every run, two numbers.
    steps : int
        How many steps to take (``>= 0``).
    noise : float
        :math:`\sigma \ge 0`, the standard deviation of the noise in each coordinate.
    seeds : sequence of int
        One seed per run.

    Returns
    -------
    ndarray
        Of shape ``(steps + 1, len(seeds), 2)``. A run that diverges stays non-finite from
        its first non-finite point on (NaN or inf); the other runs are unaffected.

    Examples
    --------
    >>> from adamlib import Adam
    >>> from adamlib.lab.problems import quadratic
    >>> paths = run_noisy(lambda p: Adam(p, lr=0.1), quadratic(), [1.0, 1.0],
    ...                   steps=5, noise=0.1, seeds=[0, 1, 2])
    >>> paths.shape
    (6, 3, 2)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a Problem (from quadratic() or rosenbrock()), got {type(problem).__name__}")
    start = np.array(x0, dtype=np.float64)
    if start.shape != (2,) or not np.all(np.isfinite(start)):
        raise ValueError(f"x0: expected 2 finite numbers, got {x0!r}")
    if isinstance(noise, bool) or not isinstance(noise, Real) or not (0 <= noise < math.inf):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    xi = noise_draws(steps, seeds)
    x = np.tile(start, (xi.shape[1], 1))
    opt = make_optimizer([x])
    if not callable(getattr(opt, "step", None)):
        raise TypeError(f"make_optimizer: must return an optimizer with .step(grads), got {type(opt).__name__}")
    path = np.empty((int(steps) + 1, *x.shape))
    path[0] = x
    with np.errstate(all="ignore"):
        for t in range(int(steps)):
            opt.step([problem.grad(x) + float(noise) * xi[t]])
            path[t + 1] = x
    return path
