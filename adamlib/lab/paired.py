r"""Seed-by-seed comparisons of two settings trained with the same seeds.

Two settings trained with the same seeds share their initial weights and minibatches, so the
seed-to-seed spread (which settings share) cancels in the per-seed differences
:math:`d_s = b_s - a_s`. With :math:`n` seeds the paired :math:`t` interval at level
:math:`1-\alpha` is

.. math::

   \bar d \pm t_{1-\alpha/2,\,n-1}\, \frac{s_d}{\sqrt n},

with :math:`s_d` the standard deviation of the differences (``ddof=1``). A difference is
*resolved* when the interval excludes 0; otherwise the settings are indistinguishable with
:math:`n` seeds (which is not the same as equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Paired:
    """The per-seed differences ``b - a`` of two settings and their paired t interval.

    Attributes
    ----------
    differences : numpy.ndarray
        ``b - a``, one per seed.
    low, high : float
        The paired t interval of the mean difference at the level given to :func:`paired`.
    """

    differences: np.ndarray
    low: float
    high: float

    @property
    def mean(self) -> float:
        """The mean difference :math:`\\bar d`."""
        return float(self.differences.mean())

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes 0."""
        return self.low > 0 or self.high < 0

    def same_sign(self, margin: float = 0.0) -> int:
        """+1 (-1) when every difference is above ``margin`` (below ``-margin``), else 0."""
        d = self.differences
        return 1 if np.all(d > margin) else -1 if np.all(d < -margin) else 0


def paired(a, b, *, level: float = 0.95) -> Paired:
    r"""Compare ``b`` with ``a`` seed by seed: differences ``b - a`` and their t interval.

    Parameters
    ----------
    a, b : array_like
        One value per seed, in the same seed order; at least two seeds, all finite.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    Paired

    Raises
    ------
    ValueError
        When ``a`` and ``b`` differ in shape, hold fewer than two values or a non-finite one,
        or ``level`` is not in (0, 1).

    Examples
    --------
    >>> r = paired([1.0, 2.0, 3.0], [1.5, 2.4, 3.6])
    >>> r.differences.round(2).tolist(), r.resolved
    ([0.5, 0.4, 0.6], True)
    >>> paired([1.0, 2.0, 3.0], [1.1, 1.9, 3.0]).resolved
    False
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b: expected two 1-D arrays of the same length (one value per "
                         f"seed), got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"a and b: expected at least 2 seeds, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a and b: expected finite values")
    if isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    from scipy import stats  # a dependency of scikit-learn, the book's extra

    d = b - a
    half = stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return Paired(d, float(d.mean() - half), float(d.mean() + half))
