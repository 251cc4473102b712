r"""Hyperparameter search: search spaces, quasi-random trials, and how to read a study.

A search space is a list of :class:`Axis`, one per hyperparameter, each mapped to the unit
interval on its own scale:

.. math::

   \text{linear: } x = a + u\,(b - a), \qquad
   \text{log: } x = a\,(b/a)^u, \qquad
   \text{log1m: } 1 - x = (1-a)\left(\frac{1-b}{1-a}\right)^u,

so a "log1m" axis (for a decay rate :math:`\beta`) spaces :math:`1-\beta` evenly on a log scale.
:func:`sample` draws ``n`` points of the unit cube by scrambled Halton or Sobol sequences
(``scipy.stats.qmc``, seeded), by independent uniform draws, or on a grid, and maps them onto the
axes. :data:`ALGOPERF_ADAM` is the AlgoPerf-style Adam space of the book.

Reading a study: :func:`expected_best` is the expected best metric of a study of ``n`` trials
drawn from a pool (exact for the pool's empirical distribution, with a bootstrap interval over
pools); :func:`isolation` keeps the best trial per bin of one hyperparameter; :func:`boundary_check`
says when the best trials sit at the edge of the space, and :func:`widen` widens those axes.

Tables are any mapping from column names to equal-length 1-D arrays (a ``dict`` of arrays, or a
``pandas.DataFrame``).

References
----------
Bergstra, J. & Bengio, Y. (2012). Random Search for Hyper-Parameter Optimization. JMLR 13.
Godbole, V., Dahl, G. E., Gilmer, J., Shallue, C. J. & Nado, Z. (2023). Deep Learning Tuning
Playbook. github.com/google-research/tuning_playbook.
Dahl, G. E. et al. (2023). Benchmarking Neural Network Training Algorithms. arXiv:2306.07179.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Any, Mapping, Sequence

import numpy as np

from .. import hyperparams as hp

__all__ = [
    "ALGOPERF_ADAM",
    "METHODS",
    "Axis",
    "BestOfN",
    "BoundaryReport",
    "SearchSpace",
    "boundary_check",
    "expected_best",
    "isolation",
    "sample",
    "widen",
]

SCALES = ("linear", "log", "log1m")
#: The ways :func:`sample` can place trials.
METHODS = ("halton", "sobol", "random", "grid")


def _check_unit(name: str, value: object, *, open_low: bool = False, open_high: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (0 < value if open_low else 0 <= value) and (value < 1 if open_high else value <= 1)
    if not ok:
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Axis:
    """One hyperparameter of a search space: its name, its range and its scale.

    Attributes
    ----------
    name : str
        The hyperparameter (a keyword of the trainer: ``lr``, ``beta1``, ``eps``, ...).
    low, high : float
        The range, ``low < high``. For ``log``, ``low > 0``; for ``log1m``, ``high < 1``.
    scale : {"linear", "log", "log1m"}
        ``log1m`` spaces ``1 - x`` on a log scale (for decay rates near 1).

    Examples
    --------
    >>> Axis("beta2", 0.9, 0.999, "log1m").from_unit([0.0, 0.5, 1.0]).round(4)
    array([0.9  , 0.99 , 0.999])
    """

    name: str
    low: float
    high: float
    scale: str = "log"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale of axis {self.name!r} must be one of {SCALES}, got {self.scale!r}")
        for which in ("low", "high"):
            v = getattr(self, which)
            if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
                raise ValueError(f"{which} of axis {self.name!r} must be a finite number, got {v!r}")
        if not self.low < self.high:
            raise ValueError(f"axis {self.name!r} needs low < high, got low={self.low!r}, high={self.high!r}")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"low of log axis {self.name!r} must be > 0, got {self.low!r}")
        if self.scale == "log1m" and self.high >= 1:
            raise ValueError(f"high of log1m axis {self.name!r} must be < 1, got {self.high!r}")

    def _ends(self) -> tuple[float, float]:
        if self.scale == "linear":
            return float(self.low), float(self.high)
        if self.scale == "log":
            return math.log(self.low), math.log(self.high)
        return math.log(1 - self.low), math.log(1 - self.high)

    def from_unit(self, u: Any) -> np.ndarray:
        """Map points of [0, 1] onto the axis (0 is ``low``, 1 is ``high``)."""
        a, b = self._ends()
        z = a + np.asarray(u, dtype=float) * (b - a)
        if self.scale == "linear":
            return z
        return np.exp(z) if self.scale == "log" else 1.0 - np.exp(z)

    def to_unit(self, x: Any) -> np.ndarray:
        """The inverse of :meth:`from_unit`: where values of the hyperparameter lie, in [0, 1] units."""
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = x if self.scale == "linear" else np.log(x) if self.scale == "log" else np.log(1.0 - x)
        a, b = self._ends()
        return (z - a) / (b - a)


@dataclass(frozen=True)
class SearchSpace:
    """Axes to search over, and hyperparameters held fixed.

    Attributes
    ----------
    axes : tuple of Axis
        The searched hyperparameters (distinct names).
    fixed : dict
        Hyperparameters every trial shares (e.g. ``{"decoupled": True}``).
    """

    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        axes = tuple(self.axes)
        if not axes or not all(isinstance(a, Axis) for a in axes):
            raise ValueError(f"axes must be a non-empty sequence of Axis, got {self.axes!r}")
        names = [a.name for a in axes]
        if len(set(names)) != len(names):
            raise ValueError(f"axes must have distinct names, got {names}")
        clash = set(names) & set(self.fixed)
        if clash:
            raise ValueError(f"fixed names a searched axis: {sorted(clash)}")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "fixed", dict(self.fixed))

    @property
    def names(self) -> tuple[str, ...]:
        """The searched hyperparameters, in order."""
        return tuple(a.name for a in self.axes)

    def axis(self, name: str) -> Axis:
        """The axis called ``name``."""
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(f"no axis {name!r} in this space; it has {list(self.names)}")

    def restrict(self, names: Sequence[str], fixed: Mapping[str, Any]) -> SearchSpace:
        """The same space searching only ``names``; every other axis is fixed at ``fixed[its name]``.

        Examples
        --------
        >>> lr_only = ALGOPERF_ADAM.restrict(["lr"], {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
        ...                                            "weight_decay": 0.0})
        >>> lr_only.names, lr_only.fixed["beta1"]
        (('lr',), 0.9)
        """
        for n in names:
            self.axis(n)
        dropped = [a.name for a in self.axes if a.name not in names]
        missing = [n for n in dropped if n not in fixed]
        if missing:
            raise ValueError(f"fixed must give a value for every axis not searched; missing {missing}")
        return SearchSpace(
            tuple(a for a in self.axes if a.name in names), {**self.fixed, **{n: fixed[n] for n in dropped}}
        )


ALGOPERF_ADAM = SearchSpace(
    axes=(
        Axis("lr", 1e-4, 1e-2, "log"),
        Axis("beta1", 0.5, 0.98, "log1m"),
        Axis("beta2", 0.9, 0.999, "log1m"),
        Axis("eps", 1e-10, 1e-3, "log"),
        Axis("weight_decay", 5e-3, 1.0, "log"),
    ),
    fixed={"decoupled": True},
)
"""The AlgoPerf-style Adam space, after the AdamW baseline of Dahl et al. (2023), widened.

Learning rate 1e-4 to 1e-2, 1-β1 0.02 to 0.5, 1-β2 1e-3 to 0.1 (AlgoPerf fixes β2 = 0.999, the
end of this range), ε 1e-10 to 1e-3 and decoupled weight decay 5e-3 to 1, each on a log scale."""


def _unit_points(d: int, n: int, method: str, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    if method == "halton":
        return qmc.Halton(d, scramble=True, seed=seed).random(n)
    if method == "sobol":
        if n & (n - 1):
            raise ValueError(f"n must be a power of 2 for Sobol points (their balance needs it), got {n}")
        return qmc.Sobol(d, scramble=True, seed=seed).random_base2(int(math.log2(n)))
    if method == "random":
        return np.random.default_rng(seed).random((n, d))
    k = int(math.floor(n ** (1.0 / d) + 1e-9))
    levels = (np.arange(k) + 0.5) / k
    return np.array(list(itertools.product(levels, repeat=d)))


def sample(space: SearchSpace, n: int, method: str = "halton", seed: int = 0) -> dict[str, np.ndarray]:
    """Draw trials from ``space``: a dict of equal-length arrays, one per hyperparameter.

    Parameters
    ----------
    space : SearchSpace
    n : int
        The budget: number of trials (>= 1). A grid uses the largest :math:`k` with
        :math:`k^d \\le n` levels per axis, at the centres of :math:`k` equal cells, so it returns
        :math:`k^d` trials; a Sobol sample needs ``n`` a power of 2.
    method : {"halton", "sobol", "random", "grid"}
        Scrambled Halton or Sobol points (``scipy.stats.qmc``), independent uniform points, or a
        grid.
    seed : int
        Seeds the scrambling (or the uniform draws); a grid does not depend on it.

    Returns
    -------
    dict
        ``{name: ndarray}`` for every axis, and the fixed hyperparameters repeated, so that the
        result can go straight to a trainer (``train_population(data, **trials)``).

    Examples
    --------
    >>> trials = sample(ALGOPERF_ADAM, 4, seed=0)
    >>> sorted(trials), trials["lr"].shape
    (['beta1', 'beta2', 'decoupled', 'eps', 'lr', 'weight_decay'], (4,))
    >>> bool(np.all((1e-4 <= trials["lr"]) & (trials["lr"] <= 1e-2)))
    True
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    n = hp.check_int("n", n, 1)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    seed = hp.check_int("seed", seed, 0)
    u = _unit_points(len(space.axes), n, method, seed)
    out = {a.name: a.from_unit(u[:, i]) for i, a in enumerate(space.axes)}
    for name, value in space.fixed.items():
        out[name] = np.full(len(u), value)
    return out


@dataclass(frozen=True)
class BestOfN:
    """The expected best metric of a study of ``n`` trials, with its bootstrap interval.

    Attributes
    ----------
    n : int
        Trials per study.
    mean : float
        The expected best over studies of ``n`` trials drawn with replacement from the pool.
    low, high : float
        The ``confidence`` bootstrap interval of ``mean`` (percentiles over resampled pools).
    spread : tuple of float
        The 10th and 90th percentiles of the best of one study: what a single study may give.
    replicates : ndarray
        ``mean`` on every resampled pool (for intervals of differences, :meth:`minus`).
    """

    n: int
    mean: float
    low: float
    high: float
    spread: tuple[float, float]
    replicates: np.ndarray = field(repr=False)

    def minus(self, other: BestOfN, confidence: float = 0.9) -> tuple[float, float, float]:
        """``self.mean - other.mean`` and its bootstrap interval (pools resampled independently)."""
        confidence = _check_unit("confidence", confidence, open_low=True, open_high=True)
        if len(self.replicates) != len(other.replicates):
            raise ValueError("other must have as many bootstrap replicates as self")
        d = self.replicates - other.replicates
        q = 50 * (1 - confidence)
        return self.mean - other.mean, float(np.percentile(d, q)), float(np.percentile(d, 100 - q))


def _best_weights(m: int, n: int) -> np.ndarray:
    """P(the best of n draws from m sorted values is the i-th), ties broken by position."""
    k = np.arange(m, 0, -1, dtype=float)  # values at or after position i
    return (k / m) ** n - ((k - 1) / m) ** n


def expected_best(
    values: Any,
    n: int,
    *,
    lower_is_better: bool = True,
    fill: float | None = None,
    n_boot: int = 2000,
    confidence: float = 0.9,
    seed: int = 0,
) -> BestOfN:
    r"""The expected best of ``n`` trials drawn from a pool of finished trials.

    A study of ``n`` trials is modelled as ``n`` draws with replacement from the pool's ``m``
    values. With the values sorted from best to worst, :math:`x_{(1)}, \dots, x_{(m)}`, the best of
    the study is :math:`x_{(i)}` with probability

    .. math:: p_i = \left(\frac{m-i+1}{m}\right)^n - \left(\frac{m-i}{m}\right)^n,

    so its expectation :math:`\sum_i p_i x_{(i)}` is exact for the pool, with no Monte Carlo
    over studies. The interval comes from the pool itself: ``n_boot`` pools of ``m`` trials are
    resampled with replacement and the expectation recomputed on each (a percentile bootstrap).

    Parameters
    ----------
    values : array_like
        The metric of every trial in the pool (1-D, at least 2).
    n : int
        Trials per study (>= 1).
    lower_is_better : bool, default True
        A loss (``True``) or a score such as accuracy (``False``).
    fill : float, optional
        The value given to non-finite entries (diverged trials); without it they are refused.
    n_boot : int, default 2000
        Bootstrap resamples.
    confidence : float, default 0.9
        Coverage of the interval.
    seed : int, default 0
        Seeds the resampling.

    Examples
    --------
    >>> r = expected_best([1.0, 2.0, 3.0, 4.0], 1)        # one trial: the pool's mean
    >>> float(r.mean)
    2.5
    >>> round(float(expected_best([1.0, 2.0, 3.0, 4.0], 2).mean), 4)   # (7*1+5*2+3*3+1*4)/16
    1.875
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"values must be a 1-D array of at least 2 trials, got shape {x.shape}")
    n = hp.check_int("n", n, 1)
    n_boot = hp.check_int("n_boot", n_boot, 1)
    confidence = _check_unit("confidence", confidence, open_low=True, open_high=True)
    seed = hp.check_int("seed", seed, 0)
    bad = ~np.isfinite(x)
    if bad.any():
        if fill is None or not (isinstance(fill, Real) and math.isfinite(fill)):
            raise ValueError(f"values has {int(bad.sum())} non-finite entries; pass a finite fill to replace them")
        x = np.where(bad, float(fill), x)
    sign = 1.0 if lower_is_better else -1.0
    x = sign * x
    w = _best_weights(len(x), n)
    mean = float(np.sort(x) @ w)
    rng = np.random.default_rng(seed)
    boot = np.sort(x[rng.integers(0, len(x), (n_boot, len(x)))], axis=1) @ w
    q = 50 * (1 - confidence)
    lo, hi = np.percentile(boot, [q, 100 - q])
    # quantiles of one study's best: P(best <= x_(i)) = 1 - ((m-i)/m)^n
    xs = np.sort(x)
    cdf = 1.0 - ((len(x) - np.arange(1, len(x) + 1)) / len(x)) ** n
    spread = tuple(sorted(float(sign * xs[np.searchsorted(cdf, p)]) for p in (0.1, 0.9)))
    if sign < 0:
        lo, hi = -hi, -lo
    return BestOfN(n, sign * mean, float(lo), float(hi), spread, sign * boot)


def _column(table: Mapping[str, Any], name: str) -> np.ndarray:
    try:
        col = table[name]
    except (KeyError, IndexError):
        raise KeyError(f"table has no column {name!r}") from None
    return np.asarray(col, dtype=float)


def isolation(
    table: Mapping[str, Any], axis: Axis, metric: str = "val_loss", bins: int = 10, *, lower_is_better: bool = True
) -> dict[str, np.ndarray]:
    """Isolation-plot data: the best trial in each of ``bins`` equal bins of one hyperparameter.

    The bins divide the axis's range into equal parts on its own scale (log, log1m or linear).
    An isolation plot draws the best metric per bin against the bin: the other hyperparameters
    are, in each bin, at whatever values did best there (the Deep Learning Tuning Playbook's
    "basic hyperparameter axis plot", reduced to its lower envelope).

    Returns
    -------
    dict
        ``centre`` (bin centres, in the hyperparameter's units), ``edges`` (``bins + 1``),
        ``best`` (the best metric per bin, NaN when empty), ``index`` (the row of that trial, -1
        when empty) and ``count`` (trials per bin).

    Examples
    --------
    >>> t = {"lr": np.array([1e-4, 1e-3, 1e-2]), "val_loss": np.array([0.5, 0.1, 0.9])}
    >>> iso = isolation(t, Axis("lr", 1e-4, 1e-2), bins=2)
    >>> iso["best"], iso["index"]
    (array([0.1, 0.9]), array([1, 2]))
    """
    bins = hp.check_int("bins", bins, 1)
    if not isinstance(axis, Axis):
        raise TypeError(f"axis must be an Axis, got {type(axis).__name__}")
    u = axis.to_unit(_column(table, axis.name))
    y = _column(table, metric)
    if len(u) != len(y):
        raise ValueError(f"columns {axis.name!r} and {metric!r} differ in length: {len(u)} and {len(y)}")
    inside = np.isfinite(u) & (u >= -1e-12) & (u <= 1 + 1e-12)
    which = np.clip((np.clip(u, 0, 1) * bins).astype(int), 0, bins - 1)
    score = np.where(np.isfinite(y), y if lower_is_better else -y, np.inf)
    best, index, count = np.full(bins, np.nan), np.full(bins, -1), np.zeros(bins, dtype=int)
    for b in range(bins):
        rows = np.flatnonzero(inside & (which == b))
        count[b] = len(rows)
        if len(rows):
            i = rows[np.argmin(score[rows])]
            index[b], best[b] = i, y[i]
    edges = axis.from_unit(np.linspace(0, 1, bins + 1))
    centre = axis.from_unit((np.arange(bins) + 0.5) / bins)
    return {"centre": centre, "edges": edges, "best": best, "index": index, "count": count}


@dataclass(frozen=True)
class BoundaryReport:
    """Where the best trials of a study sit along one axis (:func:`boundary_check`).

    Attributes
    ----------
    name : str
        The axis.
    best_position : float
        The best trial's position on the axis, in [0, 1] units of its scale.
    low_share, high_share : float
        The share of the ``top`` best trials within ``edge`` of the low and of the high end.
    side : str or None
        ``"low"`` or ``"high"`` when at least half of the top trials sit at that end: the space
        should widen there. ``None`` otherwise.
    """

    name: str
    best_position: float
    low_share: float
    high_share: float
    side: str | None


def boundary_check(
    table: Mapping[str, Any],
    space: SearchSpace,
    metric: str = "val_loss",
    *,
    top: int = 5,
    edge: float = 0.1,
    lower_is_better: bool = True,
) -> list[BoundaryReport]:
    """For each axis, do the best trials sit at an edge of the search space?

    The ``top`` best trials (by ``metric``; non-finite values count as worst) are located on each
    axis in unit coordinates. An axis is flagged at one end when at least half of the ``top``
    trials lie within ``edge`` of it (and fewer at the other end): the optimum may lie outside,
    and the space should be widened on that side (:func:`widen`).

    Examples
    --------
    >>> space = SearchSpace((Axis("lr", 1e-5, 1e-4),))
    >>> t = {"lr": np.array([1e-5, 3e-5, 8e-5, 9e-5, 1e-4]), "val_loss": np.array([5, 4, 3, 2, 1.0])}
    >>> boundary_check(t, space, top=3)[0].side
    'high'
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    top = hp.check_int("top", top, 1)
    edge = _check_unit("edge", edge, open_low=True, open_high=True)
    if edge >= 0.5:
        raise ValueError(f"edge must be below 0.5 (a band at each end), got {edge!r}")
    y = _column(table, metric)
    score = np.where(np.isfinite(y), y if lower_is_better else -y, np.inf)
    order = np.argsort(score, kind="stable")[:top]
    reports = []
    for a in space.axes:
        u = a.to_unit(_column(table, a.name))
        if len(u) != len(y):
            raise ValueError(f"columns {a.name!r} and {metric!r} differ in length: {len(u)} and {len(y)}")
        low, high = float(np.mean(u[order] <= edge)), float(np.mean(u[order] >= 1 - edge))
        best = float(u[order[0]])
        side = None
        if max(low, high) >= 0.5 and low != high:
            side = "low" if low > high else "high"
        reports.append(BoundaryReport(a.name, best, low, high, side))
    return reports


def widen(space: SearchSpace, reports: Sequence[BoundaryReport], factor: float = 1.0) -> SearchSpace:
    """Widen every flagged axis on its flagged side by ``factor`` times its width (on its scale).

    A log axis from 1e-5 to 1e-4 widened at the high end with ``factor=1`` becomes 1e-5 to 1e-3.
    A log1m axis can widen towards 1 without reaching it, and its low end stops at 0.

    Examples
    --------
    >>> space = SearchSpace((Axis("lr", 1e-5, 1e-4), Axis("eps", 1e-10, 1e-6)))
    >>> r = [BoundaryReport("lr", 1.0, 0.0, 1.0, "high"), BoundaryReport("eps", 0.5, 0.0, 0.0, None)]
    >>> [(a.name, float(a.low), round(float(a.high), 12)) for a in widen(space, r).axes]
    [('lr', 1e-05, 0.001), ('eps', 1e-10, 1e-06)]
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    if isinstance(factor, bool) or not isinstance(factor, Real) or not (0 < factor < math.inf):
        raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
    sides = {}
    for r in reports:
        if not isinstance(r, BoundaryReport):
            raise TypeError(f"reports must hold BoundaryReport, got {type(r).__name__}")
        space.axis(r.name)
        if r.side is not None:
            sides[r.name] = r.side
    axes = []
    for a in space.axes:
        if a.name in sides:
            if sides[a.name] == "low":
                new_low = float(a.from_unit(-factor))
                if a.scale == "log1m":
                    new_low = max(new_low, 0.0)  # a decay rate stays in [0, 1)
                a = replace(a, low=new_low)
            else:
                a = replace(a, high=float(a.from_unit(1.0 + factor)))
        axes.append(a)
    return SearchSpace(tuple(axes), space.fixed)
