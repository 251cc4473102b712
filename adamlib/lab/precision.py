r"""Half precision and Adam: which numbers a format can hold, and which updates it loses.

float16 keeps 11 significant bits and a narrow range (smallest subnormal :math:`2^{-24}
\approx 6\times 10^{-8}`, largest finite 65504): Adam's :math:`\epsilon = 10^{-8}` rounds to 0 in
it, and so does :math:`(1-\beta_2) g^2` for gradients of a few :math:`10^{-3}`. bfloat16 keeps
float32's range but only 8 significant bits: nothing underflows, but an update smaller than
half the spacing of the numbers around a parameter is rounded away. The functions here compute
both thresholds exactly; NumPy has no bfloat16, so formats are described by ``torch.finfo``.

References
----------
Micikevicius, P. et al. (2018). Mixed Precision Training. ICLR.
Zamirai, P. et al. (2020). Revisiting BFloat16 Training. arXiv:2010.06192.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import hyperparams as hp

_NAMES = {"float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "float32": torch.float32, "float64": torch.float64}


def torch_dtype(dtype: object) -> torch.dtype:
    """``dtype`` (a name such as ``"bfloat16"``, a NumPy dtype or a torch dtype) as a torch
    floating dtype; raise ``ValueError`` naming ``dtype`` otherwise."""
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    if isinstance(dtype, str) and dtype in _NAMES:
        return _NAMES[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name in _NAMES:
        return _NAMES[name]
    raise ValueError(f"dtype: expected one of {sorted(set(_NAMES) - {'half'})} "
                     f"(a name, NumPy or torch dtype), got {dtype!r}")


@dataclass(frozen=True)
class Format:
    """What a floating-point format can hold.

    Attributes
    ----------
    name : str
    significant_bits : int
        Precision :math:`p`, the implicit leading bit included (11 for float16, 8 for bfloat16).
    eps : float
        :math:`2^{1-p}`, the spacing of the numbers just above 1.
    smallest_subnormal, smallest_normal, max : float
        The smallest positive number, the smallest with full precision, the largest finite.
    """

    name: str
    significant_bits: int
    eps: float
    smallest_subnormal: float
    smallest_normal: float
    max: float


def fmt(dtype: object) -> Format:
    """The :class:`Format` of ``dtype``.

    Examples
    --------
    >>> f = fmt("float16")
    >>> f.significant_bits, f.smallest_subnormal, f.max
    (11, 5.960464477539063e-08, 65504.0)
    >>> fmt("bfloat16").significant_bits
    8
    """
    dt = torch_dtype(dtype)
    info = torch.finfo(dt)
    bits = 1 - int(round(math.log2(info.eps)))
    return Format(str(dt).removeprefix("torch."), bits, float(info.eps),
                  float(info.smallest_normal) * float(info.eps), float(info.smallest_normal), float(info.max))


def ulp(x: np.ndarray | float, dtype: object) -> np.ndarray:
    r"""The unit in the last place of ``x`` in ``dtype``: the gap from :math:`|x|` to the next
    representable number away from zero.

    .. math::

       \operatorname{ulp}(x) = 2^{\lfloor \log_2 |x| \rfloor}\, 2^{1-p}
       \quad (|x| \ge \text{smallest normal}), \qquad
       \text{smallest subnormal otherwise.}

    Examples
    --------
    >>> ulp([1.0, 0.1, 1000.0], "bfloat16")
    array([7.8125000e-03, 4.8828125e-04, 4.0000000e+00])
    """
    f = fmt(dtype)
    x = np.abs(np.asarray(x, dtype=float))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.maximum(x, f.smallest_normal)))
    return np.exp2(exponent) * f.eps


def round_to(x: np.ndarray | float, dtype: object) -> np.ndarray:
    """``x`` (float64) rounded to the nearest number of ``dtype``, returned as float64."""
    return torch.as_tensor(np.asarray(x, dtype=float)).to(torch_dtype(dtype)).double().numpy()


def square_underflow_threshold(beta2: float, dtype: object) -> float:
    r"""The gradient size below which :math:`(1-\beta_2)\, g^2` rounds to zero in ``dtype``.

    A positive number rounds to 0 when it is at most half the smallest subnormal :math:`s`
    (ties go to the even neighbour, 0), so the term vanishes for

    .. math:: |g| \le \sqrt{\frac{s}{2\,(1-\beta_2)}},

    about :math:`5.5\times 10^{-3}` in float16 at :math:`\beta_2 = 0.999`. Below it, Adam's
    second moment stays 0 from a zero start and the step divides by :math:`\epsilon` alone.

    Examples
    --------
    >>> round(square_underflow_threshold(0.999, "float16"), 5)
    0.00546
    >>> square_underflow_threshold(0.999, "bfloat16") < 1e-18
    True
    """
    beta2 = hp.check_beta("beta2", beta2)
    return math.sqrt(fmt(dtype).smallest_subnormal / (2 * (1 - beta2)))


def update_ulps(param: np.ndarray, update: np.ndarray, dtype: object) -> np.ndarray:
    r"""The size of each update in units of its parameter's last place, :math:`|u| / \operatorname{ulp}(\theta)`.

    Rounded to nearest, :math:`\theta + u` gives back :math:`\theta` when this is below 1/2: the
    update is lost. (Moving towards zero from a power of two, the gap below is half as wide, and
    only sizes below 1/4 are sure to be lost.)

    Examples
    --------
    >>> update_ulps(np.array([1.0, 0.01]), np.array([1e-3, 1e-3]), "bfloat16").round(2)
    array([ 0.13, 16.38])
    """
    return np.abs(np.asarray(update, dtype=float)) / ulp(param, dtype)


def lost_updates(param: np.ndarray, update: np.ndarray, dtype: object) -> np.ndarray:
    r"""Where the nonzero ``update`` leaves ``param`` unchanged once :math:`\theta + u` is
    rounded to ``dtype`` (``param`` is taken as rounded to ``dtype`` first).

    Examples
    --------
    >>> lost_updates(np.array([1.0, 0.01, 1.0]), np.array([1e-3, 1e-3, 0.0]), "bfloat16")
    array([ True, False, False])
    """
    p = round_to(param, dtype)
    u = np.asarray(update, dtype=float)
    return (round_to(p + u, dtype) == p) & (u != 0)


class LowPrecision(nn.Module):
    """Run ``model`` in a low-precision ``dtype``, in one of two ways.

    ``master_weights=False``: the parameters themselves are converted to ``dtype``, so the
    optimizer's state and updates are in ``dtype`` too ("pure" half precision).
    ``master_weights=True``: the parameters stay float32 and only the forward pass runs in
    ``dtype`` under ``torch.autocast``, as mixed-precision training does (Micikevicius et al.,
    2018): the optimizer sees float32 gradients and keeps float32 state and weights.

    Inputs are cast as needed and the output is returned as float32, so that
    :func:`adamlib.lab.tasks.train` can train either unchanged.
    """

    def __init__(self, model: nn.Module, dtype: object, *, master_weights: bool = False) -> None:
        super().__init__()
        self.dtype = torch_dtype(dtype)
        self.master_weights = bool(master_weights)
        self.model = model if master_weights else model.to(self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model's output for ``x``, computed in ``dtype``, returned as float32."""
        if self.master_weights:
            with torch.autocast(device_type=x.device.type, dtype=self.dtype):
                return self.model(x).float()
        return self.model(x.to(self.dtype)).float()


def stochastic_round_bfloat16(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Round float32 ``x`` to bfloat16 up or down at random, so that the result is right on average.

    A bfloat16 number is a float32 number whose lower 16 bits are zero. Adding a uniform random
    integer :math:`r \in [0, 2^{16})` to the bit pattern of :math:`x` and clearing the lower 16
    bits rounds :math:`|x|` up with probability

    .. math:: P(\text{up}) = \frac{|x| - \lfloor x \rfloor}{\lceil x \rceil - \lfloor x \rfloor},

    (:math:`\lfloor x \rfloor, \lceil x \rceil` the bfloat16 neighbours of :math:`|x|`), so that
    :math:`E[\operatorname{round}(x)] = x` (Zamirai et al., 2020). An update far smaller than
    the spacing of the numbers around a weight is then not lost: it moves the weight by a whole
    gap with a small probability. Numbers already in bfloat16 are returned unchanged; infinities
    and NaN are not supported.

    Parameters
    ----------
    x : torch.Tensor
        float32 values.
    generator : torch.Generator, optional
        The source of the random bits (for reproducible results).

    Returns
    -------
    torch.Tensor
        bfloat16, of ``x``'s shape.

    Raises
    ------
    TypeError
        When ``x`` is not a float32 tensor.

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> w = stochastic_round_bfloat16(torch.full((10_000,), 1.0 - 1e-3), gen)
    >>> sorted(set(w.tolist()))  # the two bfloat16 neighbours of 0.999
    [0.99609375, 1.0]
    >>> round(w.double().mean().item(), 3)
    0.999
    """
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        raise TypeError(f"x: expected a float32 torch.Tensor, got "
                        f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    bits = x.contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, generator=generator)
    rounded = (bits + noise) & ~0xFFFF
    return rounded.view(torch.float32).to(torch.bfloat16)
