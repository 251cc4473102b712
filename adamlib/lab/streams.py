r"""Synthetic gradients for studying the betas, and Adam driven over them.

Two kinds of input:

* **streams**, fixed sequences of gradients that do not depend on the parameters
  (:func:`noisy_gradients`, :func:`scale_shift`): they isolate how Adam's moment estimates
  react to noise and to a sudden change of scale. :func:`adam_updates` feeds one to
  :class:`adamlib.Adam` and returns every step it took.
* a **toy objective** whose gradient does depend on the parameter: :class:`Plateau`, a
  steep slope, then a nearly flat stretch, then steep again. :func:`adam_path` runs Adam on
  it (or on any gradient function) and returns the trajectory.

Everything is float64 and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from .. import hyperparams as hp
from ..adam import Adam

__all__ = ["Plateau", "adam_path", "adam_updates", "noisy_gradients", "scale_shift"]


def noisy_gradients(steps: int, *, mean: float = 1.0, noise: float = 1.0, dim: int = 1,
                    seed: int = 0) -> np.ndarray:
    r"""Independent noisy gradients around a fixed mean: :math:`g_t = \mu + \sigma z_t`.

    Parameters
    ----------
    steps : int
        Number of gradients :math:`T` (>= 0).
    mean, noise : float
        :math:`\mu` (any finite number) and :math:`\sigma` (>= 0).
    dim : int
        Number of coordinates (>= 1); each gets its own noise.
    seed : int
        Seeds ``numpy.random.default_rng``; :math:`z_t` are standard normal.

    Returns
    -------
    ndarray
        The gradients, of shape ``(steps, dim)``.
    """
    steps = hp.check_int("steps", steps, 0)
    dim = hp.check_int("dim", dim, 1)
    mean = hp.check_real("mean", mean, "finite", lambda x: True)
    noise = hp.check_real("noise", noise, "finite and >= 0", lambda x: x >= 0)
    z = np.random.default_rng(seed).standard_normal((steps, dim))
    return mean + noise * z


def scale_shift(steps: int, *, at: int, factor: float, mean: float = 1.0, noise: float = 0.5,
                dim: int = 1, seed: int = 0) -> np.ndarray:
    r"""Noisy gradients whose scale jumps by ``factor`` at step ``at``.

    .. math:: g_t = s_t(\mu + \sigma z_t), \qquad s_t = 1 \text{ for } t < \text{at},
       \quad s_t = \text{factor} \text{ from } t = \text{at} \text{ on (0-based)}.

    A factor above 1 is a gradient that suddenly grows (a loss spike, a new data
    distribution, a layer waking up); below 1, one that suddenly shrinks (reaching a plateau).

    Parameters
    ----------
    steps : int
        Number of gradients (>= 1).
    at : int
        Index of the first rescaled gradient, in [0, steps].
    factor : float
        The new scale relative to the old (> 0).
    mean, noise, dim, seed
        As in :func:`noisy_gradients`.

    Returns
    -------
    ndarray
        The gradients, of shape ``(steps, dim)``.
    """
    steps = hp.check_int("steps", steps, 1)
    at = hp.check_int("at", at, 0)
    if at > steps:
        raise ValueError(f"at must be in [0, steps={steps}], got {at}")
    factor = hp.check_real("factor", factor, "finite and > 0", lambda x: x > 0)
    g = noisy_gradients(steps, mean=mean, noise=noise, dim=dim, seed=seed)
    g[at:] *= factor
    return g


@dataclass(frozen=True)
class Plateau:
    r"""A one-dimensional descent with a nearly flat stretch: steep, flat, steep again.

    .. math::

       f(x) = \begin{cases}
       -s\,x & x < 0 \\
       -f\,x & 0 \le x < w \\
       -f\,w - s\,(x - w) & x \ge w
       \end{cases}
       \qquad f'(x) = -s \text{ off the plateau}, \; -f \text{ on it},

    with ``steep`` :math:`s`, ``flat`` :math:`f < s` and ``width`` :math:`w`. The loss falls as
    :math:`x` grows; an optimizer *escapes* the plateau when :math:`x` reaches :math:`w`.
    """

    steep: float = 1.0
    flat: float = 0.01
    width: float = 1.0

    def __post_init__(self) -> None:
        hp.check_real("steep", self.steep, "finite and > 0", lambda x: x > 0)
        hp.check_real("flat", self.flat, "finite and > 0", lambda x: x > 0)
        hp.check_real("width", self.width, "finite and > 0", lambda x: x > 0)

    def loss(self, x: ArrayLike) -> np.ndarray:
        """:math:`f(x)`, elementwise."""
        x = np.asarray(x, dtype=float)
        s, f, w = self.steep, self.flat, self.width
        return np.where(x < 0, -s * x, np.where(x < w, -f * x, -f * w - s * (x - w)))

    def grad(self, x: ArrayLike) -> np.ndarray:
        """:math:`f'(x)`, elementwise: ``-flat`` on ``[0, width)``, ``-steep`` elsewhere."""
        x = np.asarray(x, dtype=float)
        return np.where((x >= 0) & (x < self.width), -self.flat, -self.steep)

    def escape_step(self, path: ArrayLike) -> int | None:
        """The first index of ``path`` (a trajectory from :func:`adam_path`) at or past the
        plateau's far end, or ``None`` if it never got there."""
        beyond = np.flatnonzero(np.asarray(path, dtype=float).reshape(len(path), -1)[:, 0] >= self.width)
        return int(beyond[0]) if beyond.size else None


def adam_path(grad: Callable[[np.ndarray, int], ArrayLike], x0: ArrayLike, steps: int, *,
              lr: float = hp.LR, betas: tuple[float, float] = hp.BETAS, eps: float = hp.EPS,
              bias_correction: bool = True) -> np.ndarray:
    r"""Run :class:`adamlib.Adam` for ``steps`` steps and return every point it visited.

    Parameters
    ----------
    grad : callable
        ``grad(x, t)`` returns the gradient at the point ``x`` (an array of ``x0``'s shape) for
        the step with 0-based index ``t``.
    x0 : array_like
        The starting point.
    steps : int
        Number of steps (>= 0).
    lr, betas, eps, bias_correction
        As in :class:`adamlib.Adam`.

    Returns
    -------
    ndarray
        :math:`\theta_0, \theta_1, \dots, \theta_T` in float64, of shape ``(steps + 1, *x0.shape)``.
    """
    steps = hp.check_int("steps", steps, 0)
    if not callable(grad):
        raise TypeError(f"grad must be a callable grad(x, t), got {type(grad).__name__}")
    x = np.array(x0, dtype=float)
    opt = Adam([x], lr=lr, betas=betas, eps=eps, bias_correction=bias_correction)
    path = np.empty((steps + 1,) + x.shape)
    path[0] = x
    for t in range(steps):
        opt.step([np.asarray(grad(x.copy(), t), dtype=float)])
        path[t + 1] = x
    return path


def adam_updates(grads: ArrayLike, *, lr: float = hp.LR, betas: tuple[float, float] = hp.BETAS,
                 eps: float = hp.EPS, bias_correction: bool = True) -> np.ndarray:
    r"""The steps :math:`\Delta\theta_t = \theta_t - \theta_{t-1}` Adam takes on a fixed gradient stream.

    The gradients do not depend on the parameters (an open loop), so the steps show the
    optimizer alone: at step :math:`t` Adam receives ``grads[t - 1]``.

    Parameters
    ----------
    grads : array_like
        The stream, of shape ``(T, ...)``, e.g. from :func:`noisy_gradients` or :func:`scale_shift`.
    lr, betas, eps, bias_correction
        As in :class:`adamlib.Adam`.

    Returns
    -------
    ndarray
        The steps, of ``grads``'s shape.

    Examples
    --------
    >>> steps = adam_updates([[4.0], [4.0]], lr=0.1, bias_correction=False)
    >>> (steps / 0.1).round(2).ravel()   # 3.16 = (1 - 0.9) / sqrt(1 - 0.999) times lr
    array([-3.16, -4.25])
    """
    g = np.asarray(grads, dtype=float)
    if g.ndim == 0:
        raise ValueError("grads must be a sequence of gradients (axis 0 is time), got a scalar")
    path = adam_path(lambda x, t: g[t], np.zeros(g.shape[1:]), len(g), lr=lr, betas=betas, eps=eps,
                     bias_correction=bias_correction)
    return np.diff(path, axis=0)
