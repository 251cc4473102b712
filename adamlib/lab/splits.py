"""A held-out test set for the digits task, carved out of the validation set.

:func:`adamlib.lab.tasks.digits_split` splits the digits into training and validation sets only.
A tuning study chooses its hyperparameters on the validation set, so the validation score of the
chosen setting is biased upwards (it won a selection); an honest final number needs data that no
choice has seen. :func:`hold_out_test` splits a :class:`~adamlib.lab.tasks.DigitsSplit`'s
validation set in two, leaving the training set (and its standardization) untouched: a study runs
on the returned split, and the test set is touched once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

from adamlib.lab.tasks import DigitsSplit

__all__ = ["HeldOut", "hold_out_test"]


@dataclass(frozen=True)
class HeldOut:
    """Held-out examples: standardized features and labels, as in a :class:`~adamlib.lab.tasks.DigitsSplit`."""

    X: torch.Tensor
    y: torch.Tensor


def hold_out_test(data: DigitsSplit, fraction: float = 0.5, seed: int = 0) -> tuple[DigitsSplit, HeldOut]:
    """Split ``data``'s validation set into a smaller validation set and a test set.

    Parameters
    ----------
    data : DigitsSplit
        From :func:`adamlib.lab.tasks.digits_split` (its training set is kept as it is).
    fraction : float, default 0.5
        Share of the validation examples moved to the test set, in (0, 1); both parts keep at
        least one example.
    seed : int, default 0
        Seeds the shuffle of the validation examples before the cut.

    Returns
    -------
    (DigitsSplit, HeldOut)
        The same training set with the remaining validation examples, and the test set.

    Examples
    --------
    >>> from adamlib.lab.tasks import digits_split
    >>> study, test = hold_out_test(digits_split())
    >>> len(study.y_train), len(study.y_val), len(test.y)
    (1258, 269, 270)
    """
    if not isinstance(data, DigitsSplit):
        raise TypeError(f"data must be a DigitsSplit, got {type(data).__name__}")
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not (0 < fraction < 1):
        raise ValueError(f"fraction must be a number in (0, 1), got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    n = len(data.y_val)
    n_test = int(round(fraction * n))
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"fraction={fraction!r} leaves an empty part of {n} validation examples")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    test, val = order[:n_test], order[n_test:]
    study = DigitsSplit(data.X_train, data.y_train, data.X_val[val], data.y_val[val])
    return study, HeldOut(data.X_val[test], data.y_val[test])
