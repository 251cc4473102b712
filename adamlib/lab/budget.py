r"""What a budget of trials buys: the expected best of ``n`` trials, and when a pool can say.

Dodge et al. (2019) estimate what a study of :math:`n` trials would find from one finished pool
of :math:`m` trials: a study is :math:`n` draws with replacement from the pool, so with the
pool's values sorted from best to worst, :math:`v_{(1)}, \dots, v_{(m)}`, its best is
:math:`v_{(i)}` with probability

.. math::

   p_i = \left(\frac{m-i+1}{m}\right)^n - \left(\frac{m-i}{m}\right)^n, \qquad
   \mathbb E[\text{best of } n] = \sum_{i=1}^{m} p_i\, v_{(i)}

(:func:`adamlib.lab.search.expected_best` computes it, with a percentile bootstrap over pools).
The pool is itself a sample, so the estimate has an error; the bootstrap measures it well only
while :math:`n` is small next to :math:`m`. As :math:`n` grows, :math:`p_1 = 1 - (1 - 1/m)^n`
puts the weight on the pool's own best trial (:math:`p_1 \approx 0.72` at :math:`n = 100`,
:math:`m = 80`), and a bootstrap cannot see past the best value it resamples: its interval
shrinks onto the pool's minimum while the truth lies below it (the bootstrap of an extreme
order statistic is inconsistent). :func:`bootstrap_coverage` measures how often the interval
covers the truth on a distribution whose truth is known; :func:`best_of_n` refuses budgets
beyond ``max_fraction`` of the pool.

References
----------
Dodge, J., Gururangan, S., Card, D., Schwartz, R. & Smith, N. A. (2019). Show Your Work: Improved
Reporting of Experimental Results. EMNLP. arXiv:1909.03004.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adamlib import hyperparams as hp
from adamlib.lab import search

__all__ = ["MAX_FRACTION", "best_of_n", "bootstrap_coverage"]

#: The largest budget, as a share of the pool, for which :func:`best_of_n` gives an interval.
MAX_FRACTION = 1 / 8


def best_of_n(values: Any, n: int, *, max_fraction: float = MAX_FRACTION, **options: Any) -> search.BestOfN:
    r"""The expected best of ``n`` trials drawn from a pool, where the pool can measure it.

    The estimate and its percentile-bootstrap interval are
    :func:`adamlib.lab.search.expected_best`'s (``options`` are passed on: ``lower_is_better``,
    ``fill``, ``n_boot``, ``confidence``, ``seed``); a budget above ``max_fraction`` of the
    pool's ``m`` trials is refused, because the interval there misses the truth far more often
    than its confidence says (module docstring, :func:`bootstrap_coverage`).

    Parameters
    ----------
    values : array_like
        The metric of every trial of the pool (1-D).
    n : int
        Trials per study, at most ``max_fraction * len(values)``.
    max_fraction : float, default 1/8
        The largest ``n / m`` allowed, in (0, 1].

    Examples
    --------
    >>> pool = np.linspace(0.0, 1.0, 81)
    >>> round(best_of_n(pool, 10).mean, 4)   # continuous uniform: 1/11 = 0.0909
    0.0859
    >>> best_of_n(pool, 20)
    Traceback (most recent call last):
    ...
    ValueError: n = 20 is more than max_fraction = 0.125 of the pool's 81 trials ...
    """
    max_fraction = hp.check_real("max_fraction", max_fraction, "in (0, 1]", lambda x: 0 < x <= 1)
    n = hp.check_int("n", n, 1)
    m = int(np.size(values))
    if n > max_fraction * m:
        raise ValueError(
            f"n = {n} is more than max_fraction = {max_fraction:g} of the pool's {m} trials "
            f"(at most {math.floor(max_fraction * m)}): the bootstrap interval of a best of n "
            "collapses onto the pool's own best there; run a larger pool"
        )
    return search.expected_best(values, n, **options)


def bootstrap_coverage(
    population: Any,
    m: int,
    n: int,
    *,
    reps: int = 200,
    n_boot: int = 500,
    confidence: float = 0.9,
    seed: int = 0,
) -> float:
    r"""How often the bootstrap interval of the expected best of ``n`` covers the truth.

    ``population`` plays the role of the distribution of trials: the true expected best of
    ``n`` trials is Dodge et al.'s sum over the whole population (exact for draws with
    replacement from it). ``reps`` pools of ``m`` trials are drawn from it with replacement;
    each gives :func:`adamlib.lab.search.expected_best`'s ``confidence`` interval, and the
    result is the share of them that contain the truth (``confidence`` if the interval is
    honest).

    Parameters
    ----------
    population : array_like
        Finite values (1-D, at least 2), lower is better.
    m, n : int
        Trials per pool and per study (any ``n >= 1``: larger than ``m`` is the point of
        asking).
    reps, n_boot : int
        Pools drawn, and bootstrap resamples per pool.
    confidence : float, default 0.9
        Coverage the intervals claim.
    seed : int
        Seeds the pools and the resampling.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> population = rng.lognormal(size=20_000)
    >>> bootstrap_coverage(population, 80, 5, reps=100) > 0.8
    True
    >>> bootstrap_coverage(population, 80, 80, reps=100) < 0.7
    True
    """
    x = np.asarray(population, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"population must be a 1-D array of at least 2 finite values, got shape {x.shape}")
    m = hp.check_int("m", m, 2)
    n = hp.check_int("n", n, 1)
    reps = hp.check_int("reps", reps, 1)
    n_boot = hp.check_int("n_boot", n_boot, 1)
    seed = hp.check_int("seed", seed, 0)
    truth = search.expected_best(x, n, n_boot=1).mean
    rng = np.random.default_rng(seed)
    covered = 0
    for r in range(reps):
        pool = x[rng.integers(0, len(x), m)]
        est = search.expected_best(pool, n, n_boot=n_boot, confidence=confidence, seed=seed + r)
        covered += est.low <= truth <= est.high
    return covered / reps
