r"""One Adam update over PyTorch tensors, and the two ways adamlib runs it.

:func:`adam_update` is the whole algorithm for one parameter, in PyTorch's in-place
operations and in the order of :class:`adamlib.Adam` (the NumPy version, where each line
is explained). It runs two ways, on the same code:

* :func:`update_eager` calls it op by op: the readable reference, and the fallback.
* :class:`CompiledUpdate` hands it to ``torch.compile``, a chunk of parameters at a time.
  The compiler fuses the whole update into one loop per parameter (C++ on a CPU, Triton on
  a GPU) that reads :math:`\theta, g, m, v` once and writes :math:`\theta, m, v` once:
  28 bytes per float32 parameter, 36 with AMSGrad, and no temporaries.

The step's numbers (:class:`Scalars`) travel as a tensor, not as Python floats, so that a
learning-rate schedule changes data, not code, and never triggers a recompilation.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import torch
from torch import Tensor


class Scalars(NamedTuple):
    r"""The numbers of one step, computed in float64 on the host as ``torch.optim.Adam`` does.

    Attributes
    ----------
    sign : float
        :math:`-1` to maximize, else :math:`1`.
    l2 : float
        Weight decay folded into the gradient (Adam's L2 penalty); 0 for decoupled decay.
    decay : float
        :math:`1 - \alpha\lambda` for decoupled weight decay (AdamW), else 1.
    beta1, beta2, eps : float
        :math:`\beta_1, \beta_2, \epsilon`.
    step_size : float
        :math:`\alpha / (1 - \beta_1^t)`, or :math:`\alpha` without bias correction.
    bc2_sqrt : float
        :math:`\sqrt{1 - \beta_2^t}`, or 1 without bias correction.
    """

    sign: float
    l2: float
    decay: float
    beta1: float
    beta2: float
    eps: float
    step_size: float
    bc2_sqrt: float

    @classmethod
    def of(cls, group: dict, step: float) -> Scalars:
        """The scalars of step number ``step`` (counted from 1) for a param group's options."""
        lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        bc1, bc2 = (1 - beta1**step, 1 - beta2**step) if group["bias_correction"] else (1.0, 1.0)
        decoupled = group["decoupled_weight_decay"]
        return cls(
            sign=-1.0 if group["maximize"] else 1.0,
            l2=0.0 if decoupled else wd,
            decay=1 - lr * wd if decoupled else 1.0,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            step_size=lr / bc1,
            bc2_sqrt=bc2**0.5,
        )

    def to_tensor(self, device: torch.device) -> Tensor:
        """The scalars as one float64 tensor on ``device`` (what :func:`adam_update` takes)."""
        return torch.tensor(self, dtype=torch.float64, device=device)


def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    scalars: Tensor,
) -> None:
    r"""Update one parameter and its moments in place; ``grad`` is only read.

    .. math::

       g \leftarrow \pm g + \lambda_{L2}\theta, \quad
       \theta \leftarrow \theta(1-\alpha\lambda_{W}), \quad
       m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
       v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
       \theta \leftarrow \theta - \frac{\alpha}{1-\beta_1^t}
       \frac{m}{\sqrt{v\ \text{or}\ v_{\max}}/\sqrt{1-\beta_2^t} + \epsilon}

    Parameters
    ----------
    param, grad, exp_avg, exp_avg_sq : Tensor
        :math:`\theta`, :math:`g`, :math:`m`, :math:`v`, all of one shape, dtype and device.
    max_exp_avg_sq : Tensor or None
        :math:`v_{\max}` for AMSGrad, else ``None``.
    scalars : Tensor
        :meth:`Scalars.to_tensor` of this step.
    """
    s = Scalars(*scalars.unbind())
    g = grad * s.sign  # maximize: climb instead of descend
    g = torch.where(s.l2 != 0, g + s.l2 * param, g)  # Adam's L2 penalty joins the gradient
    param.mul_(s.decay)  # AdamW's decoupled decay shrinks the parameter instead
    exp_avg.lerp_(g, 1 - s.beta1)  # m <- b1 m + (1 - b1) g
    exp_avg_sq.mul_(s.beta2).add_((1 - s.beta2) * g * g)  # v <- b2 v + (1 - b2) g^2
    v = exp_avg_sq
    if max_exp_avg_sq is not None:  # AMSGrad divides by the largest v seen so far
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq, exp_avg_sq))
        v = max_exp_avg_sq
    denom = v.sqrt() / s.bc2_sqrt + s.eps
    param.sub_(s.step_size * (exp_avg / denom))


Tensors = Sequence[Tensor]


def update_eager(
    params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors, scalars: Tensor,
) -> None:
    """:func:`adam_update` on each parameter, op by op (``max_exp_avg_sqs`` empty without AMSGrad)."""
    for i, p in enumerate(params):
        vmax = max_exp_avg_sqs[i] if max_exp_avg_sqs else None
        adam_update(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, scalars)


def _update_chunk(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars):
    update_eager(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars)


def _flat(t: Tensor) -> Tensor:
    """A 1-D tensor over a contiguous tensor's memory.

    Not a view (it has no ``_base``), so the compiled code depends on no parameter's shape.
    """
    return t.new_empty(0).set_(t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,))


class CompiledUpdate:
    """:func:`adam_update` compiled once for one (device, dtype, AMSGrad) and any parameters.

    ``torch.compile`` sees a chunk of :attr:`CHUNK` one-dimensional tensors of symbolic
    sizes, so the same generated kernel serves every model: a short last chunk is padded
    with two-element dummies (sizes 0 and 1 would be specialized). Compilation happens in
    the constructor, on dummy tensors: if it fails, no parameter has changed.

    Parameters
    ----------
    device, dtype : torch.device, torch.dtype
        Those of the tensors it will update (a real floating dtype).
    amsgrad : bool
        Whether it also updates a ``max_exp_avg_sq`` per parameter.
    """

    CHUNK = 8
    _WARMUP_NUMEL = 1 << 16  # sizes the compiler sees first: large enough for parallel loops

    def __init__(self, device: torch.device, dtype: torch.dtype, amsgrad: bool) -> None:
        self.amsgrad = amsgrad
        self._fn = torch.compile(_update_chunk, fullgraph=True, dynamic=True, isolate_recompiles=True)
        n_lists = 5 if amsgrad else 4
        self._pads = [[torch.zeros(2, device=device, dtype=dtype) for _ in range(self.CHUNK)] for _ in range(n_lists)]
        # Distinct sizes: equal sizes would make the compiled code assume them equal.
        sizes = [self._WARMUP_NUMEL + 8 * i for i in range(self.CHUNK)]
        warmup = [[torch.zeros(n, device=device, dtype=dtype) for n in sizes] for _ in range(n_lists)]
        self._call(warmup, Scalars(1.0, 0.0, 1.0, 0.9, 0.999, 1e-8, 1e-3, 1.0).to_tensor(device))

    def __call__(
        self, params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
        max_exp_avg_sqs: Tensors, scalars: Tensor,
    ) -> None:
        """Update the parameters in place, as :func:`update_eager` does."""
        lists = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if self.amsgrad else [])
        flat: list[list[Tensor]] = [[] for _ in lists]
        for i, p in enumerate(params):
            tensors = [ts[i] for ts in lists]
            if p.numel() >= 2 and all(t.is_contiguous() for t in tensors):
                for out, t in zip(flat, tensors):
                    out.append(_flat(t))
            else:  # rare (a scalar, a strided view): the same update, op by op
                adam_update(*tensors[:4], tensors[4] if self.amsgrad else None, scalars)
        for start in range(0, len(flat[0]), self.CHUNK):
            chunk = [ts[start : start + self.CHUNK] for ts in flat]
            missing = self.CHUNK - len(chunk[0])
            self._call([c + pad[:missing] for c, pad in zip(chunk, self._pads)], scalars)
        torch.autograd.graph.increment_version(list(params))  # the kernel wrote behind autograd's back

    def _call(self, lists: list[list[Tensor]], scalars: Tensor) -> None:
        vmaxs = lists[4] if self.amsgrad else []
        self._fn(*lists[:4], vmaxs, scalars)


_compiled: dict[tuple, CompiledUpdate | None] = {}


def compiled_update(device: torch.device, dtype: torch.dtype, amsgrad: bool, *, strict: bool):
    """The :class:`CompiledUpdate` for these tensors, built on first use.

    When compilation fails, ``strict`` re-raises the error; otherwise it warns once and
    returns ``None`` (the caller then runs :func:`update_eager`).
    """
    key = (device, dtype, amsgrad)
    if key not in _compiled or (strict and _compiled[key] is None):
        try:
            _compiled[key] = CompiledUpdate(device, dtype, amsgrad)
        except Exception as error:
            if strict:
                raise
            warnings.warn(
                f"adamlib.torch.Adam: torch.compile failed for {dtype} on {device} ({type(error).__name__}: "
                f"{error}); using the eager update, which gives the same results more slowly",
                RuntimeWarning,
                stacklevel=3,
            )
            _compiled[key] = None
    return _compiled[key]
