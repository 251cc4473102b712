r"""A perturbation of the size of rounding, to find results that another machine could change.

Two machines that run the same code on the same inputs can still differ in the last bit of a
matrix product: BLAS libraries pick kernels by CPU model and sum in different orders. A
chaotic training run amplifies such a difference until a printed digit moves. This module
makes that visible on one machine: with the environment variable ``ADAMLIB_PERTURB`` set to a
non-zero integer :math:`n`, the experiments' inputs start :math:`n` units in the last place
(ulps) away from their usual values,

.. math::

   x \leftarrow \operatorname{nextafter}^{|n|}(x, \operatorname{sign}(n)\cdot\infty)
   \qquad (x \ne 0),

while exact zeros stay zero (a zero pixel is zero on every machine; one ulp of zero would
be a subnormal number, which no machine's rounding produces from it). A result that moves
under ``ADAMLIB_PERTURB=1`` is a result that rounding can move: a notebook should not print,
glue or assert it. The book's ``make test`` executes every chapter a second time with
``ADAMLIB_PERTURB=1`` and requires the same outputs as the stored ones.

What is perturbed (each documented where it happens):

- the initial weights and biases of :func:`adamlib.lab.tasks.mlp`, hence also the initial
  parameters of :func:`adamlib.lab.population.train_population`;
- the standardized features of :func:`adamlib.lab.tasks.digits_split` (the data), since
  moving the weights alone does not move every fragile result.

Unset, empty or ``0``: nothing changes, bit for bit.

Examples
--------
>>> import numpy as np
>>> x = np.array([1.0, -2.0, 0.0], dtype=np.float32)
>>> bool(np.array_equal(nudge(x, 0), x))
True
>>> moved = nudge(x, 1)  # the next float32 up; the zero stays
>>> [bool(v) for v in moved > x]
[True, True, False]
>>> bool(moved[0] == np.nextafter(np.float32(1), np.float32(2)))
True
"""

from __future__ import annotations

import os
from typing import TypeVar

import numpy as np

__all__ = ["ENV", "ulps", "nudge"]

#: The environment variable read by :func:`ulps`.
ENV = "ADAMLIB_PERTURB"

ArrayT = TypeVar("ArrayT")


def ulps() -> int:
    """The perturbation asked for: ``int(os.environ["ADAMLIB_PERTURB"])``, 0 when unset or empty.

    Read at every call, so a process can switch it (tests do).

    Raises
    ------
    ValueError
        When the variable is set to something other than an integer.
    """
    value = os.environ.get(ENV, "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{ENV} must be an integer (ulps to move the inputs by; 0 = off), got {value!r}") from None


def nudge(x: ArrayT, n: int | None = None) -> ArrayT:
    """``x`` with every non-zero element moved ``n`` ulps (up for n > 0, down for n < 0).

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Floating point values; a torch tensor is returned as a new tensor of the same dtype,
        an array as a new array. Not modified.
    n : int, optional
        Ulps to move by; by default :func:`ulps` (the environment variable). With 0, ``x``
        itself is returned.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Of ``x``'s type, dtype and shape; zeros, infinities and NaNs unchanged.

    Raises
    ------
    TypeError
        When ``x`` is not a floating point array or tensor, or ``n`` is not an integer.
    """
    if n is None:
        n = ulps()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer number of ulps, got {n!r}")
    is_tensor = type(x).__module__.startswith("torch")
    if is_tensor:
        import torch

        if not x.is_floating_point():
            raise TypeError(f"x must be a floating point tensor, got dtype {x.dtype}")
        if n == 0:
            return x
        target = torch.full_like(x, float("inf") if n > 0 else float("-inf"))
        moved = x.detach().clone()
        for _ in range(abs(int(n))):
            moved = torch.nextafter(moved, target)
        return torch.where((x != 0) & torch.isfinite(x), moved, x.detach())
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating point numpy array or torch tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    if n == 0:
        return x
    target = np.array(np.inf if n > 0 else -np.inf, dtype=x.dtype)
    moved = x.copy()
    for _ in range(abs(int(n))):
        moved = np.nextafter(moved, target)
    return np.where((x != 0) & np.isfinite(x), moved, x)
