"""The base of adamlib's NumPy optimizers: what Adam and the baselines share."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import hyperparams as hp
from .arrays import check_grads, check_params


class Optimizer:
    """What every NumPy optimizer in adamlib shares: checked params, a settable lr, checked
    grads, a step count ``t``.

    A subclass sets its state in ``__init__`` and writes ``_update``, the update of one
    parameter at step ``self.t`` (already counted: the first step has ``t = 1``).
    """

    def __init__(self, params: Iterable[np.ndarray], lr: float) -> None:
        self._lr = hp.check_lr(lr)
        self.params: list[np.ndarray] = check_params(params)
        self.t = 0

    @property
    def lr(self) -> float:
        """The learning rate used by the next step."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = hp.check_lr(value)

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : sequence of array_like
            One gradient per parameter, in order, each of its parameter's shape.

        Raises
        ------
        ValueError, TypeError
            Before anything changes, when the gradients do not fit the parameters.
        """
        grads = check_grads(self.params, grads)
        self.t += 1
        # NaN and inf propagate as in torch: no warning (or warning turned error) may abort
        # a step halfway.
        with np.errstate(all="ignore"):
            for i, (p, g) in enumerate(zip(self.params, grads)):
                self._update(i, p, g)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self._options().items())
        return f"{type(self).__name__}({len(self.params)} params, lr={self.lr}, {options}, t={self.t})"

    def _options(self) -> dict[str, object]:
        return {}
