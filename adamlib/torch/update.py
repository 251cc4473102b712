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

import re
import types
import warnings
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
from torch import Tensor


class Scalars(NamedTuple):
    r"""The numbers of one step, computed in float64 on the host as ``torch.optim.Adam`` does.

    The step size and epsilon are those of the "efficient version" of Adam in section 2
    of Kingma & Ba (2015), which moves the bias corrections out of the per-element work
    (one division per element instead of two); with
    :math:`\hat\epsilon = \epsilon\sqrt{1-\beta_2^t}` it is the same update as
    :math:`\alpha\,\hat m / (\sqrt{\hat v} + \epsilon)`, up to rounding.

    Attributes
    ----------
    sign : float
        :math:`-1` to maximize, else :math:`1`.
    l2 : float
        ``sign`` times the weight decay folded into the gradient (Adam's L2 penalty); 0 for
        decoupled decay.
    decay : float
        :math:`1 - \alpha\lambda` for decoupled weight decay (AdamW), else 1.
    beta1, beta2 : float
        :math:`\beta_1, \beta_2`.
    step_size : float
        :math:`\alpha_t = \alpha\sqrt{1-\beta_2^t} / (1-\beta_1^t)` (:math:`\alpha` without bias correction).
    eps_hat : float
        :math:`\hat\epsilon = \epsilon\sqrt{1-\beta_2^t}` (:math:`\epsilon` without bias correction).
    """

    sign: float
    l2: float
    decay: float
    beta1: float
    beta2: float
    step_size: float
    eps_hat: float

    @classmethod
    def of(cls, group: dict, step: float) -> Scalars:
        """The scalars of step number ``step`` (counted from 1) for a param group's options."""
        lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        bc1, bc2 = (1 - beta1**step, 1 - beta2**step) if group["bias_correction"] else (1.0, 1.0)
        decoupled = group["decoupled_weight_decay"]
        sign = -1.0 if group["maximize"] else 1.0
        return cls(
            sign=sign,
            l2=0.0 if decoupled else sign * wd,
            decay=1 - lr * wd if decoupled else 1.0,
            beta1=beta1,
            beta2=beta2,
            step_size=lr * bc2**0.5 / bc1,
            eps_hat=eps * bc2**0.5,
        )

    def to_tensor(self, device: torch.device) -> Tensor:
        """The scalars as one float64 tensor on ``device`` (what :func:`adam_update` takes).

        For a GPU the copy goes through pinned memory, so it does not wait for the GPU.
        """
        host = torch.tensor(self, dtype=torch.float64, pin_memory=device.type == "cuda")
        return host.to(device, non_blocking=True)


def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    scalars: Tensor,
) -> None:
    r"""Update one parameter and its moments in place; ``grad`` is only read.

    With :math:`\sigma = -1` to maximize and :math:`+1` otherwise, and :class:`Scalars`'
    :math:`\alpha_t, \hat\epsilon`:

    .. math::

       g \leftarrow \nabla + \sigma\lambda_{L2}\,\theta, \quad
       \theta \leftarrow (1-\alpha\lambda_{W})\,\theta, \quad
       m \leftarrow \beta_1 m + (1-\beta_1)\,\sigma g, \quad
       v \leftarrow \beta_2 v + (1-\beta_2)\, g^2, \quad
       \theta \leftarrow \theta - \alpha_t \frac{m}{\sqrt{v\ \text{or}\ v_{\max}} + \hat\epsilon}

    Parameters
    ----------
    param, grad, exp_avg, exp_avg_sq : Tensor
        :math:`\theta`, :math:`\nabla`, :math:`m`, :math:`v`, all of one shape, dtype and device.
    max_exp_avg_sq : Tensor or None
        :math:`v_{\max}` for AMSGrad, else ``None``.
    scalars : Tensor
        :meth:`Scalars.to_tensor` of this step.

    Notes
    -----
    ``torch.optim.Adam`` forms :math:`\sigma\nabla + \lambda\theta = \sigma(\nabla + \sigma\lambda\theta)`:
    this code keeps the bracket as :math:`g` and applies the sign only where it matters, in
    :math:`m` (:math:`v` sees :math:`g^2`), which saves a multiplication per element and
    gives the same numbers. With ``weight_decay=0`` the L2 term is :math:`0\cdot\theta`:
    exact for every finite :math:`\theta`, NaN where :math:`\theta` is already infinite
    (torch skips the term).
    """
    s = Scalars(*scalars.unbind())
    g = grad + s.l2 * param  # Adam's L2 penalty joins the gradient (l2 = sign * lambda)
    param.mul_(s.decay)  # AdamW's decoupled decay shrinks the parameter instead
    exp_avg.mul_(s.beta1).add_(s.sign * (1 - s.beta1) * g)  # m <- b1 m + (1 - b1) sign g
    exp_avg_sq.mul_(s.beta2).add_((1 - s.beta2) * g * g)  # v <- b2 v + (1 - b2) g^2
    v = exp_avg_sq
    if max_exp_avg_sq is not None:  # AMSGrad divides by the largest v seen so far
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq, exp_avg_sq))
        v = max_exp_avg_sq
    param.sub_(s.step_size * exp_avg / (v.sqrt() + s.eps_hat))


Tensors = Sequence[Tensor]


def update_eager(
    params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors, scalars: Tensor, memo: dict | None = None,
) -> None:
    """:func:`adam_update` on each parameter, op by op (``max_exp_avg_sqs`` empty without
    AMSGrad; ``memo`` is unused, see :meth:`CompiledUpdate.__call__`)."""
    for i, p in enumerate(params):
        vmax = max_exp_avg_sqs[i] if max_exp_avg_sqs else None
        adam_update(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, scalars)


def _update_chunk(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars):
    update_eager(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars)


class CompiledUpdate:
    """:func:`adam_update` compiled once for one (device, dtype, AMSGrad) and any parameters.

    ``torch.compile`` sees a chunk of one-dimensional tensors of symbolic sizes (each
    parameter, gradient and moment flattened), so the same generated code serves every
    model. A chunk has :attr:`SMALL` slots for tensors of fewer than :attr:`SMALL_NUMEL`
    elements, compiled to run on one thread (below that size, waking other threads costs
    more than it saves), then :attr:`LARGE` slots compiled to share the work between
    threads. Slots left over are filled with two-element dummies (sizes 0 and 1 would be
    specialized). Compilation happens in the constructor, on dummy tensors: if it fails, no
    parameter has changed.

    The chunks always have the structure the code was compiled for (dtype, device, lengths,
    1-D contiguous tensors of at least two elements, one size for a parameter's tensors),
    so the compiled code runs without re-checking its inputs (``guard_filter_fn``, no size
    asserts): that saves tens of microseconds per call, and lets a flattened view of a
    tensor of any shape in.

    Parameters
    ----------
    device, dtype : torch.device, torch.dtype
        Those of the tensors it will update (a real floating dtype).
    amsgrad : bool
        Whether it also updates a ``max_exp_avg_sq`` per parameter.
    """

    SMALL, LARGE = 6, 4
    SMALL_NUMEL = 1 << 15  # PyTorch's own grain size for parallel loops

    def __init__(self, device: torch.device, dtype: torch.dtype, amsgrad: bool) -> None:
        self.amsgrad = amsgrad
        # A copy of _update_chunk under a name of its own: torch.compile files compiled code
        # under the function's code, and as inputs go unchecked, each compiled chunk must
        # only ever meet its own kind of chunk.
        name = re.sub(r"\W", "_", f"_update_chunk_{self.SMALL}_{self.LARGE}_{device}_{dtype}_{amsgrad}")
        code = _update_chunk.__code__.replace(co_name=name, co_qualname=name)
        self._fn = torch.compile(
            types.FunctionType(code, _update_chunk.__globals__), fullgraph=True, dynamic=True,
            options={
                "guard_filter_fn": torch.compiler.skip_all_guards_unsafe,
                "size_asserts": False,
                "alignment_asserts": False,
                "cpp.max_horizontal_fusion_size": 1,  # threads or not, decided per slot
            },
        )
        n_lists = 5 if amsgrad else 4
        slots = self.SMALL + self.LARGE
        self._pads = [[torch.zeros(2, device=device, dtype=dtype) for _ in range(slots)] for _ in range(n_lists)]
        # The sizes the compiler sees decide each slot's threading. Distinct sizes: equal
        # ones would make the compiled code assume them equal.
        sizes = [64 + 8 * i for i in range(self.SMALL)] + [(1 << 16) + 8 * i for i in range(self.LARGE)]
        warmup = [[torch.zeros(n, device=device, dtype=dtype) for n in sizes] for _ in range(n_lists)]
        with warnings.catch_warnings():  # the compiler imports torch code that warns of itself
            warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated", DeprecationWarning)
            self._call(warmup, Scalars(1.0, 0.0, 1.0, 0.9, 0.999, 1e-3, 1e-8).to_tensor(device))

    def __call__(
        self, params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
        max_exp_avg_sqs: Tensors, scalars: Tensor, memo: dict | None = None,
    ) -> None:
        """Update the parameters in place, as :func:`update_eager` does.

        ``memo``, a dict the caller keeps for these parameters, remembers how they were laid
        out in chunks: while the parameters and moments are the same tensors, over the same
        memory, a step only slots in the new gradients.
        """
        tensors = [*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs]
        plan = (memo or {}).get("plan")
        if plan is None or not plan.fits(tensors, params):
            plan = self._plan(params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
            if memo is not None:
                memo["plan"] = plan
        for i in plan.eager:  # rare (a scalar, a strided view): the same update, op by op
            vmax = max_exp_avg_sqs[i] if self.amsgrad else None
            adam_update(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, scalars)
        for chunk, grad_slots in plan.calls:
            for slot, i in grad_slots:
                chunk[1][slot] = grads[i].reshape(-1)  # a copy only if the gradient is strided
            self._call(chunk, scalars)
            for slot, _ in grad_slots:  # hold no gradient once the step is done
                chunk[1][slot] = self._pads[1][slot]
        torch.autograd.graph.increment_version(list(params))  # the kernel wrote behind autograd's back

    def _plan(self, params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs) -> _Plan:
        """Sort the parameters into small and large, and lay them out in chunks."""
        state = [exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if self.amsgrad else [])
        small, large, eager = [], [], []
        for i, ts in enumerate(zip(params, *state)):
            if ts[0].numel() < 2 or not all([t.is_contiguous() for t in ts]):
                eager.append(i)
            else:
                (small if ts[0].numel() < self.SMALL_NUMEL else large).append(i)
        calls = []
        for c in range(max(-(-len(small) // self.SMALL), -(-len(large) // self.LARGE))):
            s = small[c * self.SMALL : (c + 1) * self.SMALL]
            l = large[c * self.LARGE : (c + 1) * self.LARGE]  # noqa: E741
            slots = s + [None] * (self.SMALL - len(s)) + l + [None] * (self.LARGE - len(l))
            chunk = [
                [pad if i is None or ts is None else ts[i].view(-1) for i, pad in zip(slots, pads)]
                for ts, pads in zip([params, None, *state], self._pads)  # gradients: slotted in each step
            ]
            calls.append((chunk, [(k, i) for k, i in enumerate(slots) if i is not None]))
        return _Plan([*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs], [_layout(p) for p in params], eager, calls)

    def _call(self, lists: list[list[Tensor]], scalars: Tensor) -> None:
        vmaxs = lists[4] if self.amsgrad else []
        self._fn(*lists[:4], vmaxs, scalars)


def _layout(t: Tensor) -> tuple:
    return t.data_ptr(), t.shape, t.stride()


@dataclass
class _Plan:
    """How :class:`CompiledUpdate` laid out a list of parameters in chunks."""

    tensors: list[Tensor]  # the parameters and moments it was made for
    layouts: list[tuple]  # the parameters' memory (``p.data`` may be replaced)
    eager: list[int]  # parameters updated op by op
    calls: list[tuple[list[list[Tensor]], list[tuple[int, int]]]]  # (chunk, [(slot, parameter)] of the gradients)

    def fits(self, tensors: list[Tensor], params: Tensors) -> bool:
        """Whether it was made for these very tensors, their memory unchanged."""
        return (
            len(tensors) == len(self.tensors)
            and all([a is b for a, b in zip(tensors, self.tensors)])
            and [_layout(p) for p in params] == self.layouts
        )


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
