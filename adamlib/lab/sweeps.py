r"""Run an experiment over a grid of hyperparameter values (and seeds), and read the results.

:func:`sweep` calls ``fn(value, seed)`` for every grid value and seed and keeps what it
returns; :meth:`Sweep.metric` turns those results into an array of shape
``(len(grid), len(seeds))``. :func:`log_grid` builds log-spaced grids that land exactly on
powers of ten, :func:`tail_mean`, :func:`trend` and :func:`largest_climb` summarise a loss
curve, and
:func:`classify_regimes` sorts learning rates into four regimes: too small, good, too
large and diverging.

Examples
--------
>>> s = sweep(lambda x, seed: (x - 3.0) ** 2 + seed, [1.0, 2.0, 3.0, 4.0], seeds=(0, 1))
>>> s.metric(lambda r: r).mean(axis=1)
array([4.5, 1.5, 0.5, 1.5])
>>> s.best(lambda r: r)
3.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "REGIMES",
    "Sweep",
    "classify_regimes",
    "from_population",
    "largest_climb",
    "log_grid",
    "sweep",
    "tail_mean",
    "trend",
]

#: The labels :func:`classify_regimes` gives, from the smallest rates to the largest.
REGIMES = ("too small", "good", "too large", "diverging")


def log_grid(low: float, high: float, per_decade: int = 2) -> np.ndarray:
    r"""Log-spaced values :math:`10^{k / n}` from ``low`` to ``high`` (both included).

    With :math:`n` = ``per_decade``, :math:`k` runs over the integers from
    :math:`n\log_{10}(\text{low})` to :math:`n\log_{10}(\text{high})`, which must both be
    integers (up to rounding), so the grid holds every power of ten in its range.

    Examples
    --------
    >>> log_grid(1e-3, 1e-1, per_decade=1)
    array([0.001, 0.01 , 0.1  ])
    """
    if isinstance(per_decade, bool) or not isinstance(per_decade, Integral) or per_decade < 1:
        raise ValueError(f"per_decade must be an integer >= 1, got {per_decade!r}")
    ks = []
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, Real) or not (0 < v < math.inf):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        k = per_decade * math.log10(v)
        if abs(k - round(k)) > 1e-9:
            raise ValueError(f"{name} must be 10**(k/{per_decade}) for an integer k, got {v!r}")
        ks.append(round(k))
    if ks[1] < ks[0]:
        raise ValueError(f"high must be >= low, got low={low!r}, high={high!r}")
    return 10.0 ** (np.arange(ks[0], ks[1] + 1) / per_decade)


@dataclass(frozen=True)
class Sweep:
    """The results of :func:`sweep`: ``runs[i][j]`` is ``fn(grid[i], seeds[j])``."""

    grid: np.ndarray
    seeds: tuple[int, ...]
    runs: tuple[tuple[Any, ...], ...]

    def metric(self, f: Callable[[Any], float]) -> np.ndarray:
        """``f`` of every run, as a float array of shape ``(len(grid), len(seeds))``."""
        return np.array([[float(f(run)) for run in row] for row in self.runs], dtype=float).reshape(
            len(self.grid), len(self.seeds)
        )

    def best(self, f: Callable[[Any], float]) -> float:
        """The grid value with the lowest seed-mean of ``f`` (NaN counts as worst; first on ties)."""
        score = self.metric(f).mean(axis=1)
        if not np.any(np.isfinite(score)):
            raise ValueError("no grid value has a finite score")
        return float(self.grid[int(np.argmin(np.where(np.isnan(score), np.inf, score)))])


def sweep(fn: Callable[[float, int], Any], grid: Sequence[float], seeds: Sequence[int] = (0,)) -> Sweep:
    """Call ``fn(value, seed)`` for every value of ``grid`` and every seed, in order.

    Parameters
    ----------
    fn : callable
        Runs one experiment, e.g. trains a model with learning rate ``value`` from ``seed``
        and returns a ``adamlib.lab.tasks.TrainingRun``. Anything it returns is kept.
    grid : sequence of float
        The hyperparameter values (at least one; finite).
    seeds : sequence of int
        At least one seed; each grid value runs once per seed.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable fn(value, seed), got {type(fn).__name__}")
    values = np.asarray(grid, dtype=float)
    if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"grid: expected a non-empty 1-D sequence of finite numbers, got {grid!r}")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, Integral) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds: expected a non-empty sequence of integers, got {seeds!r}")
    runs = tuple(tuple(fn(float(v), int(s)) for s in seeds) for v in values)
    return Sweep(values, tuple(int(s) for s in seeds), runs)


def from_population(population: Any, key: str = "lr") -> Sweep:
    """A population trained on ``grid(<key>=values, seed=seeds)`` as a :class:`Sweep` of runs.

    ``population`` is what :func:`adamlib.lab.population.train_population` returns for the
    members of ``adamlib.lab.population.grid(**{key: values, "seed": seeds})`` (the
    values varying slowest), trained with any shared options. Each member becomes the
    ``adamlib.lab.tasks.TrainingRun`` that :func:`adamlib.lab.tasks.train` would have
    returned for it alone: its loss at every step (up to and including the first
    non-finite one), its rates, and its final validation loss and accuracy.

    Raises
    ------
    ValueError
        If the members are not that grid, in that order.
    """
    from .tasks import TrainingRun

    table = population.table
    if key not in table.columns or "seed" not in table.columns:
        raise ValueError(f"population: expected the columns {key!r} and 'seed' in its table")
    values = list(dict.fromkeys(table[key].tolist()))
    seeds = list(dict.fromkeys(int(s) for s in table["seed"]))
    expected = [(v, s) for v in values for s in seeds]
    found = list(zip(table[key].tolist(), (int(s) for s in table["seed"])))
    if found != expected:
        raise ValueError(f"population: expected the members of grid({key}=..., seed=...) in order, got {found}")
    runs = []
    for k, row in enumerate(table.itertuples(index=False)):
        loss = np.asarray(population.train_loss[k], dtype=float)
        bad = np.flatnonzero(~np.isfinite(loss))
        n = int(bad[0]) + 1 if bad.size else len(loss)
        runs.append(TrainingRun(loss[:n], np.asarray(population.lr[k][:n], dtype=float),
                                float(row.val_loss), float(row.val_accuracy)))
    shaped = tuple(tuple(runs[i * len(seeds):(i + 1) * len(seeds)]) for i in range(len(values)))
    return Sweep(np.asarray(values, dtype=float), tuple(seeds), shaped)


def _curve(losses: Sequence[float], name: str = "losses") -> np.ndarray:
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or len(losses) == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array, got shape {losses.shape}")
    return losses


def tail_mean(losses: Sequence[float], k: int) -> float:
    """Mean of the last ``k`` losses; ``inf`` if any loss of the curve is not finite.

    A run that diverged (NaN or inf anywhere, or stopped early) counts as infinitely bad.
    """
    losses = _curve(losses)
    if isinstance(k, bool) or not isinstance(k, Integral) or not (1 <= k <= len(losses)):
        raise ValueError(f"k must be an integer in [1, len(losses)={len(losses)}], got {k!r}")
    if not np.all(np.isfinite(losses)):
        return math.inf
    return float(losses[-k:].mean())


def trend(losses: Sequence[float], k: int) -> tuple[float, float]:
    r"""Least-squares slope of the last ``k`` losses per step, and its standard error.

    Fits :math:`L_t \approx a + b t` over the last ``k`` steps and returns :math:`b` and
    :math:`\operatorname{se}(b) = \sqrt{\sum_t r_t^2 / (k - 2)} \,/\, \sqrt{\sum_t (t - \bar t)^2}`
    (:math:`r_t` the residuals). A curve is still falling when :math:`b + 3\operatorname{se}(b) < 0`.
    """
    losses = _curve(losses)
    if isinstance(k, bool) or not isinstance(k, Integral) or not (3 <= k <= len(losses)):
        raise ValueError(f"k must be an integer in [3, len(losses)={len(losses)}], got {k!r}")
    y = losses[-k:]
    if not np.all(np.isfinite(y)):
        raise ValueError("losses: the last k losses must be finite")
    t = np.arange(k, dtype=float) - (k - 1) / 2
    b = float(t @ (y - y.mean()) / (t @ t))
    resid = y - y.mean() - b * t
    return b, float(math.sqrt(resid @ resid / (k - 2) / (t @ t)))


def largest_climb(losses: Sequence[float]) -> float:
    r"""The largest factor by which a loss curve rose above the lowest value it had reached.

    .. math::

       \max_t \frac{L_t}{\min_{s \le t} L_s}

    It is 1 for a curve that never rises, and large for a run that found a low loss and
    was thrown out of it. Pass a smoothed curve (minibatch noise alone makes small climbs).
    Losses must be positive; ``inf`` if any is not finite.
    """
    losses = _curve(losses)
    if not np.all(np.isfinite(losses)):
        return math.inf
    if not np.all(losses > 0):
        raise ValueError("losses: expected positive values")
    return float(np.max(losses / np.minimum.accumulate(losses)))


def classify_regimes(
    lr: Sequence[float],
    score: Sequence[float],
    final_loss: Sequence[float],
    initial_loss: Sequence[float],
    *,
    tolerance: float = 1.5,
) -> np.ndarray:
    r"""Sort learning rates into "too small", "good", "too large" and "diverging".

    For each rate (seed-averaged inputs):

    * **diverging** if the final training loss is not finite or above the initial one
      (training made the model worse than where it started), or the score is not finite;
    * otherwise **good** if ``score`` (e.g. the validation loss; lower is better) is within
      ``tolerance`` times the best score :math:`s^\star` of the non-diverging rates;
    * otherwise **too small** or **too large** by the side of the best rate it lies on.

    Parameters
    ----------
    lr : sequence of float
        Strictly increasing rates.
    score, final_loss, initial_loss : sequence of float
        One value per rate (NaN or inf allowed).
    tolerance : float, default 1.5
        The factor :math:`\tau > 1`: good means :math:`s \le \tau s^\star`.

    Returns
    -------
    ndarray of str
        One of ``REGIMES`` per rate.
    """
    lr = np.asarray(lr, dtype=float)
    arrays = {"score": score, "final_loss": final_loss, "initial_loss": initial_loss}
    arrays = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    if lr.ndim != 1 or len(lr) == 0 or not np.all(np.diff(lr) > 0):
        raise ValueError("lr: expected a non-empty, strictly increasing 1-D sequence")
    for name, a in arrays.items():
        if a.shape != lr.shape:
            raise ValueError(f"{name}: expected shape {lr.shape} (one value per rate), got {a.shape}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not (1 < tolerance < math.inf):
        raise ValueError(f"tolerance must be a finite number > 1, got {tolerance!r}")
    s, final, initial = arrays["score"], arrays["final_loss"], arrays["initial_loss"]
    with np.errstate(invalid="ignore"):
        diverging = ~np.isfinite(final) | (final > initial) | ~np.isfinite(s)
    labels = np.full(lr.shape, "diverging", dtype=object)
    if np.all(diverging):
        return labels.astype(str)
    alive = np.flatnonzero(~diverging)
    i_best = int(alive[np.argmin(s[alive])])
    for i in alive:
        if s[i] <= tolerance * s[i_best]:
            labels[i] = "good"
        else:
            labels[i] = "too small" if i < i_best else "too large"
    return labels.astype(str)
