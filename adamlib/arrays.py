"""Checks on the arrays an optimizer updates: its parameters and their gradients.

Shared by every NumPy optimizer in adamlib, so that a bad argument gets the same clear
message from :class:`adamlib.Adam` and from the baselines, raised before anything changes.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def check_params(params: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Return ``params`` as a list, checked to be distinct, writeable float arrays.

    Raises
    ------
    TypeError
        For a single array instead of a list, a non-array, or a non-float dtype.
    ValueError
        For an empty list, a read-only array, or an array listed twice.
    """
    if isinstance(params, np.ndarray):
        raise TypeError("params: expected an iterable of arrays (a list), got a single ndarray")
    params = list(params)
    if not params:
        raise ValueError("params: got an empty list; give at least one array")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}]: expected a NumPy array, got {type(p).__name__}")
        if p.dtype.type not in FLOAT_DTYPES:
            raise TypeError(f"params[{i}]: expected dtype float16, float32 or float64, got {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}]: the array is read-only; optimizers update parameters in place")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("params: the same array appears more than once")
    return params


def check_grads(params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return one gradient array per parameter, of its shape and dtype.

    A gradient of another dtype is cast when NumPy calls the cast safe (float32 into a
    float64 parameter), and refused otherwise (float64 into float32 would lose precision
    silently).

    Raises
    ------
    ValueError
        When the count or a shape does not match the parameters.
    TypeError
        When a dtype cannot be cast safely.
    """
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(f"grads: expected {len(params)} arrays (one per param), got {len(grads)}")
    checked = []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}]: expected shape {p.shape} (that of params[{i}]), got {g.shape}")
        if g.dtype != p.dtype:
            if not np.can_cast(g.dtype, p.dtype, casting="safe"):
                raise TypeError(
                    f"grads[{i}]: dtype {g.dtype} cannot be safely cast to params[{i}]'s "
                    f"dtype {p.dtype}; cast it yourself (g.astype({p.dtype}))"
                )
            g = g.astype(p.dtype)
        checked.append(g)
    return checked
