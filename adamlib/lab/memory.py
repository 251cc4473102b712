r"""What an optimizer's state costs: bytes kept per parameter, bytes moved per step.

An Adam-type step reads each parameter, its gradient and every parameter-sized state tensor,
and writes the parameter and every state tensor back. With :math:`n` such state tensors
that is :math:`(2 + n) + (1 + n) = 3 + 2n` tensors per step: Adam keeps ``exp_avg`` and
``exp_avg_sq`` (:math:`n = 2`, 28 bytes per float32 parameter), AMSGrad adds
``max_exp_avg_sq`` (:math:`n = 3`, 36 bytes). For a large model the step is limited by
memory bandwidth, so these counts are its cost.

The functions take any ``torch.optim.Optimizer`` (its ``param_groups`` and ``state``)
without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

__all__ = ["StateFootprint", "state_footprint", "step_traffic"]


def step_traffic(state_tensors: int, itemsize: int = 4) -> int:
    r"""Bytes one step reads and writes per parameter element: :math:`(3 + 2n)` times the
    item size, for :math:`n` parameter-sized state tensors.

    Examples
    --------
    >>> step_traffic(2), step_traffic(3), step_traffic(3, itemsize=8)
    (28, 36, 72)
    """
    for name, value, minimum in (("state_tensors", state_tensors, 0), ("itemsize", itemsize, 1)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return (3 + 2 * int(state_tensors)) * int(itemsize)


@dataclass(frozen=True)
class StateFootprint:
    """An optimizer's state, counted from its tensors.

    Attributes
    ----------
    tensors_per_parameter : int
        Parameter-sized state tensors each parameter has (the same for all of them).
    state_bytes_per_element : float
        Bytes of parameter-sized state per parameter element.
    itemsize : int
        Bytes per element of the parameters.
    parameters : int
        Parameter elements in all.
    """

    tensors_per_parameter: int
    state_bytes_per_element: float
    itemsize: int
    parameters: int

    @property
    def traffic(self) -> int:
        """Bytes one step reads and writes per parameter element (:func:`step_traffic`)."""
        return step_traffic(self.tensors_per_parameter, self.itemsize)


def state_footprint(optimizer) -> StateFootprint:
    """Count the parameter-sized tensors in ``optimizer.state`` (after at least one step).

    The step counter is left out: only tensors with the parameter's shape count.

    Raises
    ------
    ValueError
        When a parameter has no state yet, when parameters differ in their count of state
        tensors or in dtype, or when there are no parameters.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params:
        raise ValueError("optimizer: has no parameters")
    counts, state_bytes = set(), 0
    for p in params:
        state = optimizer.state.get(p)
        if not state:
            raise ValueError("optimizer: a parameter has no state yet; take one step first")
        full = [s for k, s in state.items()
                if k != "step" and hasattr(s, "shape") and tuple(s.shape) == tuple(p.shape)]
        counts.add(len(full))
        state_bytes += sum(s.numel() * s.element_size() for s in full)
    itemsizes = {p.element_size() for p in params}
    if len(counts) != 1 or len(itemsizes) != 1:
        raise ValueError(f"optimizer: parameters differ in state tensors {sorted(counts)} "
                         f"or item size {sorted(itemsizes)}")
    n = sum(p.numel() for p in params)
    return StateFootprint(counts.pop(), state_bytes / n, itemsizes.pop(), n)
