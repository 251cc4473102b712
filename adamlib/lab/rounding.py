r"""Numbers printed only where rounding cannot move them.

A number that a chapter prints or glues is computed on the reader's machine, whose last bits
can differ from the machine that stored the outputs (``adamlib.lab.perturb``). Printed with
:math:`d` decimals, a value :math:`x` shows the same digits on every machine as long as it
moves by less than its distance to the nearest rounding boundary,

.. math::

   \delta(x) = \bigl|\, 10^d x - \lfloor 10^d x \rfloor - \tfrac12 \bigr| \cdot 10^{-d}.

:func:`fixed` formats :math:`x` with :math:`d` decimals and refuses when :math:`\delta(x)` is
smaller than ``margin`` units of the last digit shown (default 0.05: a value must be at least
5% of a last-digit unit away from a tie). Values from runs that are not chaotic move by far
less (about :math:`10^{-6}` relative under a one-ulp perturbation of the inputs); a value that
is refused should be printed with fewer decimals or replaced by a robust fact.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["fixed", "margin_to_boundary"]


def margin_to_boundary(x: float, decimals: int) -> float:
    r"""The distance from ``x`` to the nearest rounding boundary at ``decimals`` decimals, in units of the last decimal.

    .. math::

       \bigl|\, 10^d x - \lfloor 10^d x \rfloor - \tfrac12 \bigr|, \quad \text{between 0 (a tie) and } \tfrac12.

    Parameters
    ----------
    x : float
        A finite number.
    decimals : int
        :math:`d \ge 0`.
    """
    if isinstance(decimals, bool) or not isinstance(decimals, Integral) or decimals < 0:
        raise ValueError(f"decimals must be an integer >= 0, got {decimals!r}")
    if isinstance(x, bool) or not isinstance(x, Real) or not math.isfinite(x):
        raise ValueError(f"x must be a finite number, got {x!r}")
    scaled = float(x) * 10.0**decimals
    return abs(scaled - math.floor(scaled) - 0.5)


def fixed(x: float, decimals: int, margin: float = 0.05) -> str:
    """``x`` formatted with ``decimals`` decimals, or ValueError if it lies within ``margin`` of a rounding boundary.

    Parameters
    ----------
    x : float
        A finite number.
    decimals : int
        Decimals to show (``>= 0``).
    margin : float, default 0.05
        The smallest allowed distance to a rounding boundary, in units of the last decimal
        shown (``0 <= margin < 0.5``).

    Examples
    --------
    >>> fixed(0.13578, 3)
    '0.136'
    >>> fixed(0.1355, 3)
    Traceback (most recent call last):
    ...
    ValueError: x=0.1355 is within 0.05 of a rounding boundary at 3 decimals (distance 0.000); print fewer decimals or a robust fact
    """
    if isinstance(margin, bool) or not isinstance(margin, Real) or not (0 <= margin < 0.5):
        raise ValueError(f"margin must be a number in [0, 0.5), got {margin!r}")
    distance = margin_to_boundary(x, decimals)
    if distance < margin:
        raise ValueError(f"x={x!r} is within {margin} of a rounding boundary at {decimals} decimals "
                         f"(distance {distance:.3f}); print fewer decimals or a robust fact")
    return f"{float(x):.{decimals}f}"
