r"""Two-dimensional test functions with their gradients, and a loop that records a trajectory.

A :class:`Problem` bundles a function :math:`f:\mathbb{R}^2\to\mathbb{R}`, its gradient,
its minimiser and a window to plot it in. :func:`quadratic` is an ill-conditioned bowl,
:func:`rosenbrock` a curved valley; :func:`run` drives any optimizer with the
``Opt([x], ...).step([grad])`` interface of :class:`adamlib.Adam` over one of them and
returns the path it took, so chapters need no training loops; :func:`steps_to_reach` and
:func:`mean_log_gap` score a path.

Every function accepts points of shape ``(..., 2)`` (a single point, a trajectory, or a
grid for contour plots) and returns values of shape ``(...)`` and gradients of shape
``(..., 2)``.

References
----------
Rosenbrock, H. H. (1960). An Automatic Method for Finding the Greatest or Least Value of a
Function. The Computer Journal 3(3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Callable, Protocol, Sequence

import numpy as np

__all__ = ["Problem", "mean_log_gap", "quadratic", "rosenbrock", "run", "steps_to_reach"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Problem:
    r"""A differentiable function of two variables, with what is needed to study it.

    Attributes
    ----------
    name : str
        A label for legends and titles.
    value : callable
        :math:`f`, from points of shape ``(..., 2)`` to values of shape ``(...)``.
    grad : callable
        :math:`\nabla f`, from points of shape ``(..., 2)`` to gradients of the same shape.
    minimizer : ndarray
        :math:`x^\star = \arg\min f`, of shape ``(2,)``.
    xlim, ylim : (float, float)
        A window that shows the interesting part of the landscape.
    """

    name: str
    value: ArrayFn = field(repr=False)
    grad: ArrayFn = field(repr=False)
    minimizer: np.ndarray
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def scaled(self, c: float) -> "Problem":
        r"""The same problem with the loss multiplied by ``c > 0``: :math:`c f`, :math:`c\nabla f`.

        The minimiser does not move; every gradient is ``c`` times larger.
        """
        if isinstance(c, bool) or not isinstance(c, Real) or not (0 < c < math.inf):
            raise ValueError(f"c must be a finite number > 0, got {c!r}")
        c = float(c)
        return Problem(f"{c:g} * {self.name}", lambda x: c * self.value(x), lambda x: c * self.grad(x),
                       self.minimizer, self.xlim, self.ylim)

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X, Y, Z`` of shape ``(n, n)`` over the window, ready for ``ax.contour(X, Y, Z)``."""
        X, Y = np.meshgrid(np.linspace(*self.xlim, n), np.linspace(*self.ylim, n))
        return X, Y, self.value(np.stack([X, Y], axis=-1))


def _xy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two coordinates of points of shape ``(..., 2)``, as float arrays."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"x: expected points of shape (..., 2), got shape {x.shape}")
    return x[..., 0], x[..., 1]


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def quadratic(condition: float = 10.0, angle: float = 0.0) -> Problem:
    r"""An ill-conditioned quadratic bowl, :math:`f(x) = \tfrac12 x^\top A x`.

    .. math::

       A = R_\phi \begin{pmatrix} 1/\kappa & 0 \\ 0 & 1 \end{pmatrix} R_\phi^\top,
       \qquad \nabla f(x) = A x, \qquad x^\star = 0,

    with :math:`R_\phi` the rotation by :math:`\phi`. The curvature is 1 along the steep
    direction and :math:`1/\kappa` along the flat one: gradient descent is stable only for
    :math:`\alpha < 2` and then needs about :math:`\kappa` steps along the flat direction.
    With :math:`\phi = 0` the axes of the bowl are the coordinate axes (the case
    per-coordinate methods such as Adam like best).

    Parameters
    ----------
    condition : float, default 10
        The condition number :math:`\kappa \ge 1` of :math:`A`.
    angle : float, default 0
        :math:`\phi` in radians.
    """
    if isinstance(condition, bool) or not isinstance(condition, Real) or not (1 <= condition < math.inf):
        raise ValueError(f"condition must be a finite number >= 1, got {condition!r}")
    if isinstance(angle, bool) or not isinstance(angle, Real) or not math.isfinite(angle):
        raise ValueError(f"angle must be a finite number (radians), got {angle!r}")
    R = _rotation(float(angle))
    A = R @ np.diag([1 / float(condition), 1.0]) @ R.T
    A = (A + A.T) / 2  # exactly symmetric

    def value(x: np.ndarray) -> np.ndarray:
        u, w = _xy(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * (A[0, 0] * u * u + 2 * A[0, 1] * u * w + A[1, 1] * w * w)

    def grad(x: np.ndarray) -> np.ndarray:
        u, w = _xy(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.stack([A[0, 0] * u + A[0, 1] * w, A[1, 0] * u + A[1, 1] * w], axis=-1)

    name = f"quadratic (condition {condition:g}" + (f", angle {angle:.2g} rad)" if angle else ")")
    return Problem(name, value, grad, np.zeros(2), (-5.0, 5.0), (-2.5, 2.5))


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Problem:
    r"""Rosenbrock's banana-shaped valley (Rosenbrock, 1960).

    .. math::

       f(x, y) = (a - x)^2 + b\,(y - x^2)^2, \qquad
       \nabla f = \begin{pmatrix} -2(a - x) - 4 b x (y - x^2) \\ 2 b (y - x^2) \end{pmatrix},
       \qquad x^\star = (a, a^2), \quad f(x^\star) = 0.

    The valley floor :math:`y = x^2` is easy to reach and slow to follow.

    Parameters
    ----------
    a, b : float, default 1 and 100
        Position of the minimum and steepness of the valley walls (``b > 0``).
    """
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if b <= 0:
        raise ValueError(f"b must be > 0, got {b!r}")
    a, b = float(a), float(b)

    def value(x: np.ndarray) -> np.ndarray:
        u, w = _xy(x)
        with np.errstate(over="ignore", invalid="ignore"):  # far from home: inf, not a warning
            return (a - u) ** 2 + b * (w - u**2) ** 2

    def grad(x: np.ndarray) -> np.ndarray:
        u, w = _xy(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.stack([-2 * (a - u) - 4 * b * u * (w - u**2), 2 * b * (w - u**2)], axis=-1)

    return Problem("Rosenbrock", value, grad, np.array([a, a * a]), (-2.0, 2.0), (-1.0, 3.0))


class _Optimizer(Protocol):
    def step(self, grads: Sequence[np.ndarray]) -> None: ...


def run(
    make_optimizer: Callable[[list[np.ndarray]], _Optimizer],
    problem: Problem,
    x0: Sequence[float],
    steps: int,
) -> np.ndarray:
    r"""Minimise ``problem`` from ``x0`` and return every point visited.

    Parameters
    ----------
    make_optimizer : callable
        Called once with ``[x]``, a list holding the float64 parameter of shape ``(2,)``;
        returns an optimizer whose ``step([g])`` updates ``x`` in place, e.g.
        ``lambda params: Adam(params, lr=0.1)``.
    problem : Problem
        Supplies :math:`\nabla f`.
    x0 : sequence of float
        The starting point, two numbers.
    steps : int
        How many steps to take (``>= 0``).

    Returns
    -------
    ndarray
        Of shape ``(steps + 1, 2)``: :math:`x_0, x_1, \dots, x_{\text{steps}}`. A run that
        diverges stops, without warnings, at the first non-finite point; the rows after it
        are NaN.

    Examples
    --------
    >>> from adamlib import Adam
    >>> path = run(lambda p: Adam(p, lr=0.1), rosenbrock(), [-1.0, 1.0], steps=3)
    >>> path.shape
    (4, 2)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a Problem (from quadratic() or rosenbrock()), got {type(problem).__name__}")
    x = np.array(x0, dtype=np.float64)
    if x.shape != (2,) or not np.all(np.isfinite(x)):
        raise ValueError(f"x0: expected 2 finite numbers, got {x0!r}")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    opt = make_optimizer([x])
    if not callable(getattr(opt, "step", None)):
        raise TypeError(f"make_optimizer: must return an optimizer with .step(grads), got {type(opt).__name__}")
    path = np.full((int(steps) + 1, 2), np.nan)
    path[0] = x
    with np.errstate(all="ignore"):
        for t in range(1, int(steps) + 1):
            opt.step([problem.grad(x)])
            path[t] = x
            if not np.isfinite(x).all():  # diverged: the rest of the path stays NaN
                break
    return path


def steps_to_reach(problem: Problem, path: np.ndarray, tol: float) -> int | None:
    r"""The first step :math:`t` at which :math:`f(x_t) - f(x^\star) < \text{tol}`, or ``None``.

    Parameters
    ----------
    problem : Problem
        The function the path was run on.
    path : ndarray
        A trajectory from :func:`run`, of shape ``(steps + 1, 2)`` (row ``t`` is :math:`x_t`).
    tol : float
        The tolerance on the gap to the minimum value, ``> 0``.
    """
    if isinstance(tol, bool) or not isinstance(tol, Real) or not (0 < tol < math.inf):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    gap = problem.value(path) - problem.value(problem.minimizer)
    hits = np.flatnonzero(gap < tol)
    return int(hits[0]) if hits.size else None


def mean_log_gap(problem: Problem, path: np.ndarray, floor: float = 1e-12) -> float:
    r"""How well a run did overall: the mean of :math:`\log_{10}(f(x_t) - f(x^\star))` over its path.

    .. math::

       \frac{1}{T+1} \sum_{t=0}^{T} \log_{10} \max\bigl(f(x_t) - f(x^\star),\ \text{floor}\bigr)

    Low when the run gets close quickly *and stays* close; a run that touches the minimum
    and leaves again scores worse than one that settles. Gaps below ``floor`` count as
    ``floor``, so that runs which reach the minimum to machine precision tie rather than race
    on rounding. A run that diverged (any non-finite point) scores ``inf``.

    Parameters
    ----------
    problem : Problem
        The function the path was run on.
    path : ndarray
        A trajectory from :func:`run`, of shape ``(steps + 1, 2)``.
    floor : float, default 1e-12
        The smallest gap that counts, ``> 0``.
    """
    if isinstance(floor, bool) or not isinstance(floor, Real) or not (0 < floor < math.inf):
        raise ValueError(f"floor must be a finite number > 0, got {floor!r}")
    gap = problem.value(path) - problem.value(problem.minimizer)
    if not np.isfinite(gap).all():
        return math.inf
    return float(np.mean(np.log10(np.maximum(gap, floor))))
