r"""One Adam update over PyTorch tensors, and the two ways adamlib runs it.

:func:`adam_update` is the whole algorithm for one parameter, in PyTorch's in-place
operations and in the order of :class:`adamlib.Adam` (the NumPy version, where each line
is explained). It runs two ways, on the same code:

* :func:`update_eager` calls it op by op: the readable reference, and the fallback.
  ``update_foreach`` is the same update over lists of tensors (``torch._foreach_*``
  operations, one call per operation for all the tensors), in ``torch.optim.Adam``'s
  order: what a step without compilation runs when the tensors allow it.
* :class:`CompiledUpdate` hands it to ``torch.compile``, a chunk of parameters at a time,
  once, and then calls the compiled code directly. The compiler fuses the whole update
  into one loop per parameter (C++ on a CPU, Triton on a GPU) that reads
  :math:`\theta, g, m, v` once and writes :math:`\theta, m, v` once: 28 bytes per float32
  parameter, 36 with AMSGrad, and no temporaries.

The step's numbers (:class:`Scalars`) travel as a tensor, not as Python floats, so that a
learning-rate schedule changes data, not code, and never triggers a recompilation.
"""

from __future__ import annotations

import re
import types
import warnings
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from torch.nn import Parameter


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
    lr_hat, bc2_sqrt, eps : float
        :math:`\alpha/(1-\beta_1^t)`, :math:`\sqrt{1-\beta_2^t}` and :math:`\epsilon`: the
        numbers of ``torch.optim.Adam``'s own form of the last line, which 16-bit
        parameters follow (:func:`adam_update`).
    """

    sign: float
    l2: float
    decay: float
    beta1: float
    beta2: float
    step_size: float
    eps_hat: float
    lr_hat: float
    bc2_sqrt: float
    eps: float

    @classmethod
    def of(cls, group: dict, step: float | Tensor) -> Scalars:
        """The scalars of step number ``step`` (counted from 1) for a param group's options.

        With a number ``step`` they are Python floats, computed on the host (a tensor
        hyperparameter is read with ``float``). With a tensor ``step`` (a parameter's
        ``state["step"]``, as under ``torch.compile``) nothing is read back to the host:
        the numbers that depend on it, and any tensor hyperparameter, are float64 tensors,
        so that dynamo traces them as data instead of compiling a graph per value.
        """
        if isinstance(step, Tensor):
            step = step.to(torch.float64)
            number = _as_float64
        else:
            number = float
        lr, wd, eps = number(group["lr"]), number(group["weight_decay"]), number(group["eps"])
        beta1, beta2 = (number(b) for b in group["betas"])
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
            lr_hat=lr / bc1,
            bc2_sqrt=bc2**0.5,
            eps=eps,
        )

    def to_tensor(self, device: torch.device) -> Tensor:
        """The scalars as one float64 tensor on ``device`` (what :func:`adam_update` takes).

        For a GPU the copy goes through pinned memory, so it does not wait for the GPU.
        """
        host = torch.tensor(self, dtype=torch.float64, pin_memory=device.type == "cuda")
        return host.to(device, non_blocking=True)


def _as_float64(x: float | Tensor) -> float | Tensor:
    return x.to(torch.float64) if isinstance(x, Tensor) else x


def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    scalars: Tensor | Scalars,
    plain: bool = False,
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
    scalars : Tensor or Scalars
        :meth:`Scalars.to_tensor` of this step, or the :class:`Scalars` themselves.
    plain : bool, default False
        ``True`` when there is no weight decay and no maximizing
        (:math:`\sigma = 1, \lambda = 0`): the terms they add are left out, three
        operations per element fewer.

    Notes
    -----
    ``torch.optim.Adam`` forms :math:`\sigma\nabla + \lambda\theta = \sigma(\nabla + \sigma\lambda\theta)`:
    this code keeps the bracket as :math:`g` and applies the sign only where it matters, in
    :math:`m` (:math:`v` sees :math:`g^2`), which saves a multiplication per element and
    gives the same numbers. Without ``plain``, zero weight decay makes the L2 term
    :math:`0\cdot\theta`: exact for every finite :math:`\theta`, NaN where :math:`\theta`
    is already infinite (torch skips the term, as ``plain`` does).

    float32 and float64 parameters are updated in their own dtype, as above. float16 and
    bfloat16 ones follow ``torch.optim.Adam``'s for-loop instead (``_adam_update_16``):
    the efficient form's :math:`\alpha_t m` would underflow in 16 bits.
    """
    s = scalars if isinstance(scalars, Scalars) else Scalars(*scalars.unbind())
    if param.dtype in HALF_DTYPES:
        _adam_update_16(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, s, plain)
        return
    g, sign = grad, 1.0
    if not plain:
        g = grad + s.l2 * param  # Adam's L2 penalty joins the gradient (l2 = sign * lambda)
        param.mul_(s.decay)  # AdamW's decoupled decay shrinks the parameter instead
        sign = s.sign
    exp_avg.mul_(s.beta1).add_(sign * (1 - s.beta1) * g)  # m <- b1 m + (1 - b1) sign g
    exp_avg_sq.mul_(s.beta2).add_((1 - s.beta2) * g * g)  # v <- b2 v + (1 - b2) g^2
    v = exp_avg_sq
    if max_exp_avg_sq is not None:  # AMSGrad divides by the largest v seen so far
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq, exp_avg_sq))
        v = max_exp_avg_sq
    param.sub_(s.step_size * exp_avg / (v.sqrt() + s.eps_hat))


#: The 16-bit dtypes whose update ``_adam_update_16`` computes in float32.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _adam_update_16(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, s: Scalars, plain: bool) -> None:
    r""":func:`adam_update` for float16 and bfloat16: ``torch.optim.Adam``'s for-loop, op by op.

    torch computes each operation on a 16-bit tensor in float32 and rounds its result to
    the tensor's dtype once. This does the same, in torch's order and form:
    :math:`g + \mathrm{fl}(\lambda)\theta`, :math:`(1-\alpha\lambda)\theta`, ``lerp`` for
    :math:`m`, :math:`\beta_2 v`, :math:`v + (1-\beta_2) g\cdot g`,
    :math:`d = \sqrt{v} / \sqrt{1-\beta_2^t} + \mathrm{fl}(\epsilon)` in three roundings
    (torch's ``add`` rounds its scalar, :math:`\lambda` or :math:`\epsilon`, to the dtype
    first), and :math:`\theta - \frac{\alpha}{1-\beta_1^t} m / d`; ``lerp`` and ``addcmul``
    are single fused multiply-adds, as in torch's CPU kernels (``_fma``). Each rounding
    is an explicit round trip through the 16-bit dtype, so that NaN and infinities land
    where torch's do (with :math:`\epsilon = 10^{-8}`, lost in float16, :math:`d` is 0
    where :math:`v` underflowed); compiled, the round trips are kept by Inductor's
    ``emulate_precision_casts`` (:class:`CompiledUpdate`).
    """
    dtype, f32 = param.dtype, torch.float32

    def rounded(x: Tensor) -> Tensor:
        return x.to(dtype).to(f32)

    def number(x: float | Tensor, dtype: torch.dtype = f32) -> float | Tensor:
        """A step's number as torch's kernels take it: rounded to float32 (a Python float
        is, by the operation), or to ``dtype`` and back (``alpha`` of ``add``)."""
        if not isinstance(x, Tensor):
            if dtype == f32:
                return x
            x = torch.tensor(x, dtype=torch.float64)
        return x.to(dtype).to(f32)

    p, g, sign = param.to(f32), grad.to(f32), 1.0
    if not plain:
        l2 = number(s.l2, dtype)  # grad.add(param, alpha=weight_decay), skipped at 0 (no 0 * inf)
        g = torch.where(l2 == 0, g, rounded(g + l2 * p))
        p = rounded(p * number(s.decay))  # param.mul_(1 - lr * weight_decay)
        sign = s.sign
    # exp_avg.lerp_(grad, 1 - beta1), as torch's kernel: fma(w or w - 1, g - m, m or g)
    m, w = exp_avg.to(f32), torch.as_tensor(number(1 - s.beta1), dtype=f32, device=param.device)
    far = w >= 0.5
    m = rounded(_fma(torch.where(far, w - 1, w), sign * g - m, torch.where(far, sign * g, m)))
    v = rounded(exp_avg_sq.to(f32) * number(s.beta2))  # exp_avg_sq.mul_(beta2)
    v = rounded(_fma(number(1 - s.beta2) * g, g, v))  # .addcmul_(grad, grad, value=1 - beta2)
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    if max_exp_avg_sq is not None:
        v = torch.maximum(max_exp_avg_sq.to(f32), v)
        max_exp_avg_sq.copy_(v)
    denom = rounded(rounded(rounded(v.sqrt()) / number(s.bc2_sqrt)) + number(s.eps, dtype))  # add_ rounds eps
    param.copy_(p + number(-s.lr_hat) * m / denom)  # param.addcdiv_(exp_avg, denom, value=-lr / bc1)


def _fma(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """:math:`ab + c` in float32 with one rounding, as torch's CPU kernels compute ``lerp``
    and ``addcmul``: the product of two float32 numbers is exact in float64."""
    return (a.double() * b.double() + c.double()).float()


Tensors = Sequence[Tensor]


def update_eager(
    params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors, scalars: Tensor | Scalars, memo: dict | None = None, plain: bool = False,
) -> None:
    """:func:`adam_update` on each parameter, op by op (``max_exp_avg_sqs`` empty without
    AMSGrad; ``memo`` is unused, see :meth:`CompiledUpdate.__call__`)."""
    for i, p in enumerate(params):
        vmax = max_exp_avg_sqs[i] if max_exp_avg_sqs else None
        adam_update(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, scalars, plain)


def update_foreach(
    params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors, s: Scalars, plain: bool = False,
) -> None:
    r"""Update plain, dense, non-overlapping float32 or float64 parameters of one device, dtype and step.

    ``torch.optim.Adam``'s foreach form, operation by operation over all the tensors at
    once (the gradient negated to maximize, :math:`\lambda\theta` added to it or
    :math:`\theta` decayed, :math:`m` by ``lerp``, :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`),
    with the last line in the efficient form of :func:`adam_update` (one division per
    element): :math:`\theta \leftarrow \theta - \alpha_t m / (\sqrt{v} + \hat\epsilon)`.
    The tensors go in batches of about ``FOREACH_BATCH_NUMEL`` elements (a large tensor
    alone), so that each batch stays in the CPU's cache from one operation to the next,
    as each tensor does in torch's for-loop. It allocates one temporary per parameter
    (the denominator; the gradient too with weight decay or ``maximize``), as torch's
    foreach path does. 16-bit parameters go to :func:`update_eager`, which rounds as
    torch's for-loop does.
    """
    if params[0].dtype in HALF_DTYPES:
        update_eager(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, s, plain=plain)
        return
    start, numel = 0, 0
    for end, p in enumerate(params, 1):
        numel += p.numel()
        if numel >= FOREACH_BATCH_NUMEL or end == len(params):
            batch = slice(start, end)
            vmax = max_exp_avg_sqs[batch] if max_exp_avg_sqs else []
            _foreach_update(params[batch], grads[batch], exp_avgs[batch], exp_avg_sqs[batch], vmax, s, plain)
            start, numel = end, 0


#: ``update_foreach`` updates its tensors in batches of about this many elements.
FOREACH_BATCH_NUMEL = 1 << 15


def _foreach_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, s: Scalars, plain: bool) -> None:
    if not plain:
        if s.sign < 0:
            grads = torch._foreach_neg(grads)
        if s.decay != 1:
            torch._foreach_mul_(params, s.decay)
        if s.l2 != 0:
            grads = torch._foreach_add(grads, params, alpha=s.sign * s.l2)  # sign * l2 = lambda
    torch._foreach_lerp_(exp_avgs, grads, 1 - s.beta1)
    torch._foreach_mul_(exp_avg_sqs, s.beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - s.beta2)
    v = exp_avg_sqs
    if max_exp_avg_sqs:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        v = max_exp_avg_sqs
    denom = torch._foreach_sqrt(v)
    torch._foreach_add_(denom, s.eps_hat)
    torch._foreach_addcdiv_(params, exp_avgs, denom, -s.step_size)


def _update_chunk(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars, plain):
    update_eager(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars, plain=plain)


class CompiledUpdate:
    """:func:`adam_update` compiled once for one (device, dtype, AMSGrad, plain) and any parameters.

    ``torch.compile`` sees a chunk of one-dimensional tensors of symbolic sizes (each
    parameter, gradient and moment flattened), so the same generated code serves every
    model. A chunk has :attr:`SMALL` slots for tensors of fewer than :attr:`SMALL_NUMEL`
    elements, compiled to run on one thread (below that size, waking other threads costs
    more than it saves), then :attr:`LARGE` slots compiled to share the work between
    threads (six: an MLP of six layers takes one call of the generated code a step, and
    each call costs time of its own, see ``benchmarks/RESULTS.md``, issue 23). Slots left
    over are filled with two-element dummies (sizes 0 and 1 would be specialized).

    The kernel reads and writes memory directly, so only tensors for which that means
    what torch's operations mean go to it (:func:`_raw`: plain ``torch.Tensor``, dense,
    not overlapping one another); the others are updated op by op, in order.

    Compilation happens once, in the constructor, on dummy tensors (if it fails, no
    parameter has changed). Steps then call the graph Inductor compiled directly, with the
    chunk's tensors and sizes as arguments: ``torch.compile``'s own entry point would
    spend about a hundred microseconds per call checking and unpacking its inputs, which
    here always have the structure the code was compiled for (dtype, device, lengths, 1-D
    contiguous tensors of at least two elements, one size for a parameter's tensors). The
    order of those arguments is read from the traced graph, and the constructor checks
    that a direct call gives exactly what ``torch.compile``'s entry point gives. Where it
    can, a step calls the ``call`` function of the code Inductor generated, beneath
    AOTAutograd's wrapper (checked the same way).

    Parameters
    ----------
    device, dtype : torch.device, torch.dtype
        Those of the tensors it will update (a real floating dtype).
    amsgrad : bool
        Whether it also updates a ``max_exp_avg_sq`` per parameter.
    plain : bool
        :func:`adam_update`'s ``plain``: no weight decay and no maximizing.

    Raises
    ------
    RuntimeError
        If the compiled graph's arguments cannot be matched to a chunk's tensors, or a
        direct call of it differs from ``torch.compile``'s.
    """

    SMALL, LARGE = 6, 6
    SMALL_NUMEL = 1 << 15  # PyTorch's own grain size for parallel loops
    INDUCTOR_OPTIONS = {
        "size_asserts": False,  # the chunks are laid out as compiled (see above)
        "alignment_asserts": False,  # a parameter's flattened view may start anywhere
        "cpp.max_horizontal_fusion_size": 1,  # threads or not, decided per slot
    }

    def __init__(self, device: torch.device, dtype: torch.dtype, amsgrad: bool, plain: bool) -> None:
        self.amsgrad, self.plain = amsgrad, plain
        # 16 bits: keep the update's explicit roundings (Inductor elides them otherwise).
        half = {"emulate_precision_casts": True} if dtype in HALF_DTYPES else {}
        self._options = {**self.INDUCTOR_OPTIONS, **half}
        n_lists = 5 if amsgrad else 4
        slots = self.SMALL + self.LARGE
        self._pads = [[torch.zeros(2, device=device, dtype=dtype) for _ in range(slots)] for _ in range(n_lists)]
        # The sizes the compiler sees decide each slot's threading. Distinct sizes: equal
        # ones would make the compiled code assume them equal.
        sizes = [64 + 8 * i for i in range(self.SMALL)] + [(1 << 16) + 8 * i for i in range(self.LARGE)]
        gen = torch.Generator(device=device).manual_seed(0)  # the caller's random stream stays untouched
        warmup = [[torch.rand(n, device=device, dtype=dtype, generator=gen) for n in sizes] for _ in range(n_lists)]
        scalars = Scalars(-1.0, 0.1, 0.9, 0.9, 0.999, 1e-3, 1e-8, 0.01, 0.1, 1e-7).to_tensor(device)
        twin = [[t.clone() for t in ts] for ts in warmup]
        # A function of its own for each kind: torch.compile files compiled code under the
        # function's code, and each kind must be traced (and reach the backend) afresh.
        name = re.sub(r"\W", "_", f"_update_chunk_{self.SMALL}_{self.LARGE}_{device}_{dtype}_{amsgrad}_{plain}")
        code = _update_chunk.__code__.replace(co_name=name, co_qualname=name)
        compiled = torch.compile(
            types.FunctionType(code, _update_chunk.__globals__), backend=self._inductor, fullgraph=True, dynamic=True
        )
        with warnings.catch_warnings():  # the compiler imports torch code that warns of itself
            warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated", DeprecationWarning)
            compiled(*twin[:4], twin[4] if amsgrad else [], scalars, plain)
        self._graph, self._order = self._argument_order(twin, scalars)
        self._at_scalars = self._order.index(("scalars",))
        self._graph(*self._arguments(warmup, scalars))
        if not all(torch.equal(a, b) for ts, us in zip(warmup, twin) for a, b in zip(ts, us)):
            raise RuntimeError("adamlib.torch: a direct call of the compiled update differs from torch.compile's")
        self._call = self._generated_call(warmup, scalars) or (
            lambda args: self._graph(*[a.view(-1) if isinstance(a, Tensor) else a for a in args]))

    def _inductor(self, gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        """``torch.compile``'s backend: Inductor, as ``backend="inductor"`` runs it, keeping
        the traced graph and the compiled one for :meth:`_argument_order`."""
        from torch._inductor.compile_fx import compile_fx

        self._traced = gm, list(example_inputs), compile_fx(gm, example_inputs, config_patches=self._options)
        return self._traced[2]

    def _argument_order(self, chunk: list[list[Tensor]], scalars: Tensor) -> tuple[Callable, list[tuple]]:
        """The compiled graph, and what each of its arguments is for the chunk it was traced on.

        Each entry is ``("scalars",)``, ``("tensor", k, slot)`` (list ``k`` of the chunk) or
        ``("numel", slot)`` (the length of that slot's tensors).
        """
        gm, inputs, graph = self._traced
        del self._traced
        where = {id(t): ("tensor", k, slot) for k, ts in enumerate(chunk) for slot, t in enumerate(ts)}
        where[id(scalars)] = ("scalars",)
        placeholders = [node for node in gm.graph.nodes if node.op == "placeholder"]
        order: list[tuple | None] = [where.get(id(x)) if isinstance(x, Tensor) else None for x in inputs]
        lengths = {str(node.meta["example_value"].shape[0]): entry[2]  # a slot's symbolic length
                   for node, entry in zip(placeholders, order) if entry and entry[0] == "tensor"}
        for i, (node, x) in enumerate(zip(placeholders, inputs)):
            if isinstance(x, torch.SymInt) and str(node.meta.get("example_value")) in lengths:
                order[i] = ("numel", lengths[str(node.meta["example_value"])])
        if len(placeholders) != len(inputs) or None in order:
            raise RuntimeError("adamlib.torch: the compiled update takes arguments that are not a chunk's")
        return graph, order

    def _generated_call(self, chunk: list[list[Tensor]], scalars: Tensor) -> Callable | None:
        """The ``call(args)`` of the code Inductor generated, if it takes the compiled graph's
        arguments in their order and gives what the graph gives on ``chunk``; else ``None``.

        The graph's own entry (AOTAutograd's wrapper) costs tens of microseconds per call;
        the generated function unpacks the list and runs the kernel (which reads each
        tensor's data pointer: a contiguous tensor of any shape serves as its flattened view).
        """
        call = getattr(self._graph, "current_callable", None)
        found = re.search(r"def call\(self, args\):\s*\n\s*([\w, ]+?) = args\n", getattr(self._graph, "source_code", "") or "")
        if call is None or found is None or len(found.group(1).split(",")) != len(self._order):
            return None
        expected, ours = [[t.clone() for t in ts] for ts in chunk], [[t.clone() for t in ts] for ts in chunk]
        self._graph(*self._arguments(expected, scalars))
        call(self._arguments(ours, scalars))
        if not all(torch.equal(a, b) for ts, us in zip(ours, expected) for a, b in zip(ts, us)):
            return None
        return call

    def _arguments(self, chunk: list[list[Tensor]], scalars: Tensor | None) -> list:
        """The compiled graph's arguments for a chunk (lists of tensors, as :meth:`layout` makes)."""
        return [scalars if e[0] == "scalars" else chunk[e[1]][e[2]] if e[0] == "tensor" else chunk[0][e[1]].numel()
                for e in self._order]

    def __call__(
        self, params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
        max_exp_avg_sqs: Tensors, scalars: Tensor, memo: dict | None = None,
    ) -> None:
        """Update the parameters in place, as :func:`update_eager` does.

        ``memo``, a dict the caller keeps for these parameters, remembers how they were laid
        out in chunks (under this object, whose compiled graph takes them): while the
        parameters and moments are the same tensors, over the same memory, a step only
        slots in the new gradients and scalars.
        """
        tensors = [*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs]
        plan = (memo or {}).get(self)
        if plan is None or not plan.fits(tensors):
            plan = self.layout(params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
            if memo is not None:
                memo[self] = plan
        if not all(_raw(grads[i]) and _storage(grads[i]) not in plan.storages for i in plan.compiled):
            # A gradient the kernel cannot read as plain memory, or one over a tensor this
            # step writes (torch's for-loop would read it updated): all op by op, in order.
            update_eager(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars, plain=self.plain)
            return
        contiguous = [g if g.is_contiguous() else g.contiguous() for g in grads]  # a copy only if strided
        self.run(plan, params, contiguous, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars)

    def run(
        self, plan: _Plan, params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors,
        max_exp_avg_sqs: Tensors, scalars: Tensor,
    ) -> None:
        """One step over tensors laid out as ``plan`` (made by :meth:`layout` for these
        parameters and moments), the gradients already checked: contiguous, plain, of
        their parameter's shape, dtype and device, over none of the memory the step writes."""
        for i in plan.eager:  # rare (a scalar, a strided view): the same update, op by op
            vmax = max_exp_avg_sqs[i] if self.amsgrad else None
            adam_update(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, scalars, self.plain)
        call, at_scalars = self._call, self._at_scalars
        for template, grad_at in plan.calls:
            args = template.copy()  # the generated code empties the list it is given
            args[at_scalars] = scalars
            for at, i in grad_at:
                args[at] = grads[i]
            call(args)
        torch.autograd.graph.increment_version(params)  # the kernel wrote behind autograd's back

    def layout(self, params: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors, max_exp_avg_sqs: Tensors) -> _Plan:
        """Sort the parameters into small, large and eager, and lay them out in chunks.

        The kernel takes a parameter whose tensors are all plain (:func:`_raw`),
        contiguous, of two elements or more. Parameters whose memory overlaps that of
        another (or of a moment) are all updated op by op, one after the other, as
        torch's for-loop does.
        """
        state = [exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if self.amsgrad else [])
        written = [params, *state]
        small, large, eager = [], [], []
        raw = [t for ts in written for t in ts if _raw(t)]
        overlap = _overlapping(raw)
        for i, ts in enumerate(zip(*written)):
            if overlap or not all([_raw(t) and t.is_contiguous() for t in ts]) or ts[0].numel() < 2:
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
            args = self._arguments(chunk, None)
            grad_at = [(at, slots[e[2]]) for at, e in enumerate(self._order) if e[0] == "tensor" and e[1] == 1]
            calls.append((args, [(at, i) for at, i in grad_at if i is not None]))
        tensors = [*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs]
        kernel = [ts[i] for i in small + large for ts in written]  # the tensors the kernel writes
        storages = {_storage(t) for t in raw if t.numel()}
        return _Plan(tensors, list(map(id, tensors)), kernel, _layouts(kernel), eager, small + large, calls, storages)


def _raw(t: Tensor) -> bool:
    """Whether the compiled kernel may take ``t`` as plain memory: a ``torch.Tensor`` (or
    ``Parameter``) itself, not a subclass (a ``DTensor``, a wrapper that owns no memory, or
    one whose operations mean something else), dense, on a real device, its values as stored.

    The same rule as ``torch.optim``'s for its foreach and fused kernels; what fails it is
    updated op by op, by the tensor's own operations.
    """
    return (type(t) is Tensor or type(t) is Parameter) and t.layout == torch.strided and not (
        t.is_neg() or t.is_conj() or t.is_nested or t.is_meta
    )


def _storage(t: Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _overlapping(tensors: Tensors) -> bool:
    """Whether any two of ``tensors`` reach into the same bytes (by the span from their
    first to their last element, so interleaved strided views count as overlapping)."""
    spans = []
    for t in tensors:
        if t.numel() and not t.is_meta:
            start = t.data_ptr()
            last = sum((n - 1) * abs(stride) for n, stride in zip(t.shape, t.stride()))
            spans.append((start, start + (last + 1) * t.element_size()))
    spans.sort()
    return any(a[1] > b[0] for a, b in zip(spans, spans[1:]))


def _layouts(tensors: Tensors) -> list[tuple]:
    return [(t.data_ptr(), t.shape, t.stride()) for t in tensors]


@dataclass
class _Plan:
    """How :class:`CompiledUpdate` laid out a list of parameters in chunks."""

    tensors: list[Tensor]  # the parameters and moments it was made for
    ids: list[int]  # theirs (held by ``tensors``, so not reused while the plan lives)
    kernel: list[Tensor]  # those the compiled graph writes
    layouts: list[tuple]  # their memory (``p.data`` may be replaced)
    eager: list[int]  # parameters updated op by op
    compiled: list[int]  # parameters the compiled graph updates
    calls: list[tuple[list, list[tuple[int, int]]]]  # (the compiled graph's arguments, [(argument, parameter)] of the gradients)
    storages: set[int]  # the memory the step writes (a gradient in it is read op by op)

    def fits(self, tensors: list[Tensor]) -> bool:
        """Whether it was made for these very tensors, their memory unchanged."""
        return list(map(id, tensors)) == self.ids and _layouts(self.kernel) == self.layouts


_compiled: dict[tuple, CompiledUpdate | None] = {}


def compiled_update(device: torch.device, dtype: torch.dtype, amsgrad: bool, plain: bool, *, strict: bool):
    """The :class:`CompiledUpdate` for these tensors, built on first use.

    When compilation fails, ``strict`` re-raises the error; otherwise it warns once and
    returns ``None`` (the caller then runs :func:`update_eager`).
    """
    key = (device, dtype, amsgrad, plain)
    if key not in _compiled or (strict and _compiled[key] is None):
        try:
            _compiled[key] = CompiledUpdate(device, dtype, amsgrad, plain)
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
