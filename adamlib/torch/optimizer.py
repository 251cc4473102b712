r"""``adamlib.torch.Adam``: a drop-in ``torch.optim.Adam`` whose update is adamlib's own code."""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from .. import hyperparams as hp
from .update import (
    CompiledUpdate, Scalars, _overlapping, _raw, _storage, adam_update, compiled_update, update_eager, update_foreach,
)

IMPLS = ("auto", "compiled", "eager")

#: ``impl="auto"`` compiles the update for a (device, dtype) holding at least this many
#: parameter elements (half a million), and runs the eager foreach update below it. Chosen
#: from measurements on a 2-core CPU (``benchmarks/torch_step.py``, ``benchmarks/RESULTS.md``):
#: at this size a compiled step saves about 1 ms over the eager one, so a first step that
#: loads the compiled update from Inductor's on-disk cache (a few seconds) is repaid within
#: a few thousand steps; at 100k parameters it would take tens of thousands, and the eager
#: update is already faster there than ``torch.optim.Adam``'s default for-loop.
AUTO_COMPILE_MIN_NUMEL = 1 << 19


class Adam(torch.optim.Optimizer):
    r"""Adam, as ``torch.optim.Adam`` does it, run by adamlib's own update.

    .. math::
       \begin{aligned}
       &\rule{110mm}{0.4pt} \\
       &\textbf{input}: \alpha \text{ (lr)}, \beta_1, \beta_2 \text{ (betas)},
           \theta_0 \text{ (params)}, f(\theta) \text{ (objective)}, \epsilon \text{ (eps)}, \\
       &\hspace{13mm} \lambda \text{ (weight decay)}, \textit{amsgrad}, \textit{maximize},
           \textit{decoupled}, \textit{bias\_correction} \\
       &\textbf{initialize}: m_0 \leftarrow 0, \; v_0 \leftarrow 0, \; v_0^{\max} \leftarrow 0 \\[-1.ex]
       &\rule{110mm}{0.4pt} \\
       &\textbf{for} \: t = 1 \: \textbf{to} \: \ldots \: \textbf{do} \\
       &\hspace{5mm} g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}),
           \quad\text{negated if } \textit{maximize} \\
       &\hspace{5mm} \textbf{if} \: \lambda \neq 0: \;
           \textbf{if} \: \textit{decoupled}: \theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda)
           \; \textbf{else}: g_t \leftarrow g_t + \lambda\theta_{t-1} \\
       &\hspace{5mm} m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
       &\hspace{5mm} v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
       &\hspace{5mm} \textbf{if} \: \textit{amsgrad}: v_t^{\max} \leftarrow \max(v_{t-1}^{\max}, v_t),
           \; \bar v_t \leftarrow v_t^{\max} \; \textbf{else}: \bar v_t \leftarrow v_t \\
       &\hspace{5mm} \textbf{if} \: \textit{bias\_correction}: \widehat{m_t} \leftarrow m_t/(1 - \beta_1^t),
           \; \widehat{v_t} \leftarrow \bar v_t/(1 - \beta_2^t)
           \; \textbf{else}: \widehat{m_t} \leftarrow m_t, \; \widehat{v_t} \leftarrow \bar v_t \\
       &\hspace{5mm} \theta_t \leftarrow \theta_{t-1} - \alpha\, \widehat{m_t} / \big(\sqrt{\widehat{v_t}} + \epsilon\big) \\
       &\rule{110mm}{0.4pt} \\[-1.ex]
       &\textbf{return} \: \theta_t \\[-1.ex]
       &\rule{110mm}{0.4pt}
       \end{aligned}

    This is :class:`adamlib.Adam` (the NumPy version, where every line is explained) for
    PyTorch tensors. One step reads :math:`\theta, g, m, v` and writes :math:`\theta, m, v`
    once per parameter: the update (:func:`adamlib.torch.update.adam_update`) is compiled by
    ``torch.compile`` into one fused loop per parameter, for all the parameters of a device
    and dtype at once.

    Parameters
    ----------
    params : iterable
        Tensors, dicts defining parameter groups (each may override the options below), or
        ``(name, tensor)`` pairs as ``model.named_parameters()`` gives, as in ``torch.optim``.
    lr : float or Tensor, default 1e-3
        The learning rate :math:`\alpha`; a one-element tensor is accepted, as in torch.
    betas : (float, float), default (0.9, 0.999)
        :math:`\beta_1, \beta_2`, each in [0, 1) (both numbers or both one-element tensors).
    eps : float, default 1e-8
        :math:`\epsilon`, added to the denominator.
    weight_decay : float, default 0
        :math:`\lambda`: an L2 penalty folded into the gradient, or decoupled decay.
    amsgrad : bool, default False
        Divide by the running maximum of :math:`v` (Reddi et al., 2018, as torch does it).
    maximize : bool, default False
        Climb the objective instead of descending it.
    decoupled_weight_decay : bool, default False
        Decay the parameters directly, as AdamW (Loshchilov & Hutter, 2019).
    bias_correction : bool, default True
        Divide the moments by :math:`1-\beta^t`. Not in ``torch.optim.Adam``; turning it off
        reproduces the ablation of Kingma & Ba (2015), section 6.4.
    impl : {"auto", "compiled", "eager"}, default "auto"
        How the update runs. ``"compiled"``: ``torch.compile`` of the update (the first
        step of each device, dtype and kind of update compiles it, seconds to a minute on a
        CPU, then cached on disk; errors are raised; with neither weight decay nor
        ``maximize`` the update compiled is three operations per element shorter).
        ``"eager"``: the same update without compiling, allocating temporaries: over
        lists of tensors (``torch._foreach_*`` operations, in cache-sized batches) where
        the tensors allow it, as torch's foreach path does, else op by op per parameter.
        ``"auto"``: compiled for a device and dtype with at least
        :data:`AUTO_COMPILE_MIN_NUMEL` parameter elements in this process (a ``DTensor``
        counts its local shard) when compilation works (else eager, with a warning),
        eager below that.

    Raises
    ------
    ValueError
        When a hyperparameter is out of range (NaN and infinity included) or ``impl`` is
        unknown, as ``torch.optim.Adam`` raises for its own checks.
    TypeError
        When a hyperparameter is not a number, or ``params`` is a single tensor.

    Notes
    -----
    What differs from ``torch.optim.Adam``: the ``foreach``, ``fused``, ``capturable`` and
    ``differentiable`` switches do not exist (``impl`` chooses the path); an infinite lr,
    eps or weight decay is refused, and so are out-of-range options in a param group;
    integer betas are accepted. Parameters without a gradient are skipped, sparse gradients
    raise ``RuntimeError`` before anything changes, complex parameters are updated as real
    pairs as torch does. ``state_dict()`` has ``torch.optim.Adam``'s format, so a checkpoint
    of either loads into the other (torch ignores ``bias_correction``).

    Where it runs: ``DTensor`` parameters (FSDP2's ``fully_shard``, tensor parallelism)
    are updated through their local shards, as torch's fused update does; the compiled
    kernel takes only plain, dense, non-overlapping tensors (torch's rule for its foreach
    and fused kernels), and anything else (tensor subclasses, strided or ``channels_last``
    views, tensors whose memory overlaps, ``meta`` tensors) is updated op by op, by the
    tensor's own operations, as torch's for-loop does. What neither can update (float8,
    expanded or conjugate-view parameters, moments unlike their parameter) raises
    ``RuntimeError`` before anything changes. Under ``torch.compile`` the step is traced
    like torch's (see ``step``).

    The cost of a step: the first step of a param group checks every parameter, gradient
    and moment; while the group then updates the same parameters with the same state
    (plain dense tensors of one device and dtype), a step checks only the new gradients
    and runs the update over lists laid out once, with no work per parameter in Python.
    The step counters are then views of one tensor per group (each ``state["step"]``
    still a 0-dim float tensor of its own, as in torch), incremented by one operation.

    Examples
    --------
    >>> import torch
    >>> from adamlib.torch import Adam
    >>> w = torch.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     (w**2).sum().backward()
    ...     _ = opt.step()
    >>> w.detach()  # each step moved each coordinate by about lr = 0.1
    tensor([ 0.7016, -1.7006])
    """

    def __init__(
        self,
        params: Iterable,
        lr: float | Tensor = hp.LR,
        betas: tuple[float | Tensor, float | Tensor] = hp.BETAS,
        eps: float = hp.EPS,
        weight_decay: float = hp.WEIGHT_DECAY,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
        impl: str = "auto",
    ) -> None:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        betas = _check_hyperparameters(lr, betas, eps, weight_decay)
        self.impl = impl
        self._memos: dict[tuple, dict] = {}  # per param group, device and dtype: the update's memo
        self._plans: dict[int, _GroupPlan | None] = {}  # per param group (by id): the short way of a step
        self._paths: dict[tuple, str] = {}  # per device and dtype: how the last step updated them
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
            bias_correction=bias_correction,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group, its options checked as the constructor checks its own."""
        if isinstance(param_group, dict):
            options = {**self.defaults, **param_group}
            param_group = {**param_group, "betas": _check_hyperparameters(
                options["lr"], options["betas"], options["eps"], options["weight_decay"]
            )}
        super().add_param_group(param_group)

    # -- pickling, deepcopy and old checkpoints ------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "impl": self.impl}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("impl", "auto")
        self._memos = {}
        self._plans = {}
        self._paths = {}
        for group in self.param_groups:  # checkpoints from torch or older versions
            for key, default in (("amsgrad", False), ("maximize", False),
                                 ("decoupled_weight_decay", False), ("bias_correction", True)):
                group.setdefault(key, default)
            for p in group["params"]:
                state_p = self.state.get(p)
                if state_p and not torch.is_tensor(state_p["step"]):
                    state_p["step"] = torch.tensor(float(state_p["step"]), dtype=_step_dtype())

    def paths(self) -> dict[tuple[torch.device, torch.dtype], str]:
        """How the last step updated the parameters of each device and dtype: ``"compiled"``
        or ``"eager"`` (what ``impl="auto"`` chose, or what compilation allowed)."""
        return dict(self._paths)

    # -- the step --------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given.

        Under ``torch.compile`` (a compiled training step, or ``torch.compile(opt.step)``)
        the step is traced as ``torch.optim.Adam``'s is: torch operations only, the step
        counts and the numbers derived from them as tensors, so the graph compiles once and
        a learning-rate schedule does not recompile it (at most once more, for a float
        ``lr`` that changes, as with torch's optimizer).

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (run with gradients enabled).

        Raises
        ------
        RuntimeError
            If a gradient is sparse, or does not have its parameter's shape, dtype and
            device (possible by replacing ``p.grad.data`` or setting ``p.grad_dtype``); if
            a moment in the state does not (a state dict of another model); if a
            ``DTensor`` parameter's gradient or moment is not a ``DTensor`` on its device
            mesh, or a plain parameter's is one; if a parameter is float8, expanded (two
            elements at one address), or a complex conjugate view. Raised before any
            parameter or state changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if torch.compiler.is_compiling():
            self._traced_step()
            return loss
        todo = [[p for p in group["params"] if p.grad is not None] for group in self.param_groups]
        ready = self._ready(todo)
        if ready is not None:  # every group as the last step left it: its checked plan
            for plan, group, grads, update in ready:
                plan.step(group, grads, update)
            return loss
        for params in todo:
            _check(params, self.state)
        # Choosing (and compiling) each update comes first: until it is done, nothing changes.
        calls = [(group, *call) for group, params in zip(self.param_groups, todo) for call in self._calls(group, params)]
        for group, update, params, step in calls:
            self._update(group, update, params, step)
        self._plans = {id(group): _GroupPlan.of(self, group, params) for group, params in zip(self.param_groups, todo)}
        return loss

    def _ready(self, todo: list[list[Tensor]]) -> list[tuple[_GroupPlan, dict, list[Tensor], Callable]] | None:
        """Each group's plan, gradients and update when every group with a gradient can
        take the short way (:class:`_GroupPlan`); else ``None``: the step goes the long
        way, which checks everything (and makes the plans for the next step)."""
        if len(self._plans) != len(self.param_groups):  # a group added or removed: plans made afresh
            return None
        ready = []
        for group, params in zip(self.param_groups, todo):
            if not params:
                continue
            plan = self._plans.get(id(group))
            grads = plan.gradients(group, params, self.state) if plan is not None else None
            if grads is None:
                return None
            ready.append((plan, group, grads, plan.update_for(self, group)))
        return ready

    def _calls(self, group: dict[str, Any], params: list[Tensor]) -> list[tuple[Callable, list[Tensor], float]]:
        """(update function, parameters, step number) for each call of a group's step.

        Parameters that share a device, a dtype and a step count share one call. A
        parameter listed twice in a group (torch warns, and updates it twice) is updated
        again in a later call, at the next step number, as torch's for-loop does.
        """
        buckets: dict[tuple, list[Tensor]] = defaultdict(list)
        seen: dict[Tensor, int] = defaultdict(int)
        for p in params:
            state = self.state.get(p)
            again = seen[p]
            seen[p] += 1
            buckets[(p.device, p.dtype, (state["step"].item() if state else 0.0) + 1 + again, again)].append(p)
        plain = _plain(group)
        return [(self._update_for(device, dtype.to_real(), group["amsgrad"], plain, ps), ps, step)
                for (device, dtype, step, _), ps in buckets.items()]

    def _update(self, group: dict[str, Any], update: Callable, params: list[Tensor], step: float) -> None:
        """Run one call of the step: ``params`` share a device, a dtype and the step number.

        A ``DTensor`` is updated through its local shard (the memory this process holds),
        as torch's fused update does; a gradient laid out otherwise than its parameter is
        redistributed to the parameter's placements first, as a ``DTensor`` operation would.
        """
        states = [self._state(p, group) for p in params]
        moments = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        tensors = [params, [p.grad for p in params]] + [[s[key] for s in states] for key in moments]
        dtensor = _dtensor_type()
        if dtensor is not None and any(isinstance(p, dtensor) for p in params):
            tensors = [[_shard(t, p, dtensor) for t, p in zip(ts, params)] for ts in tensors]
        if params[0].is_complex():  # a complex number is a pair of reals, updated independently
            tensors[1] = [g.resolve_conj() for g in tensors[1]]
            tensors = [[torch.view_as_real(t) for t in ts] for ts in tensors]
        torch._foreach_add_([s["step"] for s in states], 1)  # all the step counters in one call
        memo = self._memos.setdefault((id(group), params[0].device, params[0].dtype), {})
        max_exp_avg_sqs = tensors[4] if group["amsgrad"] else []
        update(*tensors[:4], max_exp_avg_sqs, Scalars.of(group, step).to_tensor(params[0].device), memo)
        if dtensor is not None and (wrappers := [p for p in params if isinstance(p, dtensor)]):
            torch.autograd.graph.increment_version(wrappers)  # their shards changed under them

    def _traced_step(self) -> None:
        """The step as dynamo traces it: ``torch.optim.Adam``'s shape, adamlib's update.

        Dynamo runs :meth:`_init_group` as Python (as it does for torch's optimizers: by
        its name) and traces the rest, parameter by parameter, with the update's numbers
        computed from each ``state["step"]`` tensor (:meth:`Scalars.of`); Inductor then
        fuses it, so ``impl`` has no say here. The checks are traced too (their errors
        are raised while tracing, before the graph runs); the moments' once every state
        exists, from the lists, so that a second look at the code (dynamo may restart its
        analysis) takes the same path.
        """
        groups = [(group, [p for p in group["params"] if p.grad is not None]) for group in self.param_groups]
        for _, params in groups:
            _check_gradients(params)
        lists = []
        for group, _ in groups:
            lists.append(([], [], [], [], [], []))  # params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps
            self._init_group(group, *lists[-1])
        dtensor = _dtensor_type()
        for params, _, *moments, _ in lists:  # read from the lists: dynamo knows them as tensors
            for key, ts in zip(MOMENTS, moments):
                for p, t in zip(params, ts):
                    _check_moment(p, key, t, dtensor)
        for (group, _), (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps) in zip(groups, lists):
            plain = group["weight_decay"] == 0 and not group["maximize"]
            for i, p in enumerate(params):
                steps[i].add_(1)  # one by one: a parameter listed twice is updated twice, as in torch
                tensors = [p, grads[i], exp_avgs[i], exp_avg_sqs[i], max_exp_avg_sqs[i] if group["amsgrad"] else None]
                if torch.is_complex(p):
                    tensors[1] = tensors[1].resolve_conj()
                    tensors = [None if t is None else torch.view_as_real(t) for t in tensors]
                adam_update(*tensors, Scalars.of(group, steps[i]), plain)

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps) -> bool:
        """Fill the lists with a group's parameters that have a gradient, their gradients and
        state (created on the first step), as ``torch.optim.Adam._init_group`` does; return
        whether a parameter is complex."""
        has_complex = False
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._state(p, group)
            has_complex |= torch.is_complex(p)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(state["step"])
        return has_complex

    def _state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        """The state of ``p`` (created on its first step), in ``torch.optim.Adam``'s layout."""
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=_step_dtype())  # on the CPU, as torch keeps it
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _update_for(self, device, dtype, amsgrad: bool, plain: bool, params: list[Tensor] | int, eager: Callable | None = None):
        """The update function this step uses for these parameters (see ``impl``): ``eager``
        (by default :func:`update_eager`) or a :class:`CompiledUpdate`.

        ``"auto"`` counts the elements this process holds (a ``DTensor``'s local shard;
        ``params`` may be that count); tensors on the ``meta`` device, which hold no
        memory, are updated op by op.
        """
        eager = eager or functools.partial(update_eager, plain=plain)
        numel = params if isinstance(params, int) else sum(_local_numel(p) for p in params)
        wanted = self.impl == "compiled" or self.impl == "auto" and numel >= AUTO_COMPILE_MIN_NUMEL
        compiled = None
        if wanted and device.type != "meta":
            compiled = compiled_update(device, dtype, amsgrad, plain, strict=self.impl == "compiled")
        self._paths[(device, dtype)] = "eager" if compiled is None else "compiled"
        return compiled or eager


class _GroupPlan:
    """The short way of a param group's step, made after a step that went the long way.

    That step checked every parameter, gradient and moment (:func:`_check`). While the
    group updates the same parameters (those with a gradient), with the same state
    tensors over the same memory and AMSGrad on or off as then, a step checks only the
    new gradients (:meth:`gradients`) and does no work per parameter in Python: the step
    counters are views of one tensor (``state["step"]`` of each parameter is still its
    own 0-dim float tensor, as in ``torch.optim.Adam``), incremented by one operation,
    and the update runs over lists laid out once.

    A group has a plan when its parameters are plain dense tensors (no subclass, no
    ``DTensor``, real, not on the ``meta`` device) of one device and dtype, contiguous,
    at one step number, listed once, and no two of the tensors the step writes share
    memory; :meth:`of` returns ``None`` otherwise (such a group always goes the long way).
    """

    def __init__(self, opt: Adam, group: dict[str, Any], params: list[Tensor]) -> None:
        states = [opt.state[p] for p in params]
        self.amsgrad = bool(group["amsgrad"])
        self.params, self.states, self.state = params, states, opt.state
        self.moments = [[s[key] for s in states] for key in MOMENTS[: 3 if self.amsgrad else 2]]
        self.ids = list(map(id, params))
        self.device, self.dtype = params[0].device, params[0].dtype
        self.shapes = [p.shape for p in params]
        self.numel = sum(p.numel() for p in params)
        self.written = [t for ts in [params, *self.moments] for t in ts]
        self.pointers = [t.data_ptr() for t in self.written]
        self.storages = {_storage(t) for t in self.written}
        # One tensor holds the group's step counters; each state["step"] becomes a view of it.
        counters = torch.full((len(params),), float(states[0]["step"]), dtype=states[0]["step"].dtype)
        for i, s in enumerate(states):
            s["step"] = counters[i]
        self.counters, self.steps = counters, [s["step"] for s in states]
        self.version = counters._version
        self.count = float(counters[0])  # the counters' value, kept on the host (see step)
        # On a CPU the compiled update reads the step's numbers from one tensor, rewritten
        # in place through NumPy each step (no torch operation: see step).
        self.scalars = torch.zeros(len(Scalars._fields), dtype=torch.float64) if self.device.type == "cpu" else None
        self.host = None if self.scalars is None else self.scalars.numpy()  # its memory, as NumPy sees it
        self.layouts: dict[CompiledUpdate, Any] = {}  # per compiled update: its layout of the tensors

    @classmethod
    def of(cls, opt: Adam, group: dict[str, Any], params: list[Tensor]) -> _GroupPlan | None:
        """The plan of ``group`` after a step of ``params`` (those with a gradient), or ``None``."""
        if not params or len(set(map(id, params))) != len(params):
            return None
        device, dtype = params[0].device, params[0].dtype
        if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64) or device.type == "meta":
            return None
        keys = MOMENTS if group["amsgrad"] else MOMENTS[:2]
        states = [opt.state.get(p) for p in params]
        if not all(s and all(k in s for k in keys) and torch.is_tensor(s["step"]) and s["step"].dim() == 0
                   and s["step"].device.type == "cpu" for s in states):
            return None
        tensors = [(p, t) for p, s in zip(params, states) for t in [p] + [s[k] for k in keys]]
        if not all(_raw(t) and t.is_contiguous() and t.shape == p.shape and t.dtype == dtype and t.device == device
                   for p, t in tensors):
            return None
        if len({float(s["step"]) for s in states}) != 1 or _overlapping([t for _, t in tensors]):
            return None
        return cls(opt, group, params)

    def gradients(self, group: dict[str, Any], params: list[Tensor], state: dict) -> list[Tensor] | None:
        """The gradients of ``params`` if this plan still holds for them and each is one the
        update takes as it is: a plain dense contiguous tensor of its parameter's shape,
        dtype and device, over no memory the step writes. ``None`` otherwise."""
        if (list(map(id, params)) != self.ids or state is not self.state or self.counters._version != self.version
                or bool(group["amsgrad"]) != self.amsgrad):
            return None
        get = state.get
        if not all(get(p) is s and s["step"] is c for p, s, c in zip(params, self.states, self.steps)):
            return None
        if not all(s[key] is t for key, ts in zip(MOMENTS, self.moments) for s, t in zip(self.states, ts)):
            return None
        if [t.data_ptr() for t in self.written] != self.pointers:
            return None
        grads = [p.grad for p in params]
        dtype, device, storages = self.dtype, self.device, self.storages
        if all(type(g) is Tensor and g.layout is torch.strided and g.dtype is dtype and g.shape == shape
               and g.device == device and g.is_contiguous() and not g.is_neg() and _storage(g) not in storages
               for g, shape in zip(grads, self.shapes)):
            return grads
        return None

    def update_for(self, opt: Adam, group: dict[str, Any]) -> Callable:
        """The update this step runs: a :class:`CompiledUpdate` or ``update_foreach`` (``impl``)."""
        plain = _plain(group)
        eager = functools.partial(update_foreach, plain=plain)
        return opt._update_for(self.device, self.dtype, self.amsgrad, plain, self.numel, eager=eager)

    def step(self, group: dict[str, Any], grads: list[Tensor], update: Callable) -> None:
        """Increment the group's step counters and update its parameters.

        The step's Python runs right after the previous step streamed every parameter and
        moment through the CPU's caches, so each torch operation it calls costs tens of
        microseconds there (its code and data come back from memory): the step count is
        kept on the host too (``counters`` cannot change unseen: :meth:`gradients` checks
        its version), rather than read back with ``item()``, while it is an integer that
        the counters' float32 holds exactly; on a CPU the numbers of the step are written
        into the same tensor each step.
        """
        self.counters.add_(1)
        self.version = self.counters._version
        if self.count.is_integer() and self.count < 2**24:
            self.count += 1
        else:  # beyond float32's integers (or a fractional count from a state dict): as stored
            self.count = self.steps[0].item()
        scalars = Scalars.of(group, self.count)
        m, v, *vmax = self.moments
        vmax = vmax[0] if vmax else []
        if isinstance(update, CompiledUpdate):
            layout = self.layouts.get(update)
            if layout is None:
                layout = self.layouts[update] = update.layout(self.params, m, v, vmax)
            if self.scalars is None:
                numbers = scalars.to_tensor(self.device)
            else:
                numbers = self.scalars
                self.host[:] = scalars
            update.run(layout, self.params, grads, m, v, vmax, numbers)
        else:
            update(self.params, grads, m, v, vmax, scalars)


def _plain(group: dict[str, Any]) -> bool:
    """Whether the group's update leaves out weight decay and ``maximize``."""
    return group["weight_decay"] == 0 and not group["maximize"]


MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex32, torch.complex64, torch.complex128)


def _check(params: list[Tensor], state: dict) -> None:
    """Raise ``RuntimeError`` if a parameter, its gradient or a moment is not one the update can take."""
    _check_gradients(params)
    _check_moments(params, state)


def _check_gradients(params: list[Tensor]) -> None:
    """Raise ``RuntimeError`` unless each parameter and its gradient can be updated.

    A parameter must be dense, of a dtype torch computes in (not float8), with no two
    elements at one address (an expanded tensor), and not a complex conjugate view
    (``torch.view_as_real`` refuses those). Its gradient must be dense and have its shape,
    dtype and device; a ``DTensor`` parameter's must be a ``DTensor`` on its device mesh,
    a plain parameter's must not be one.
    """
    dtensor = _dtensor_type()
    for p in params:
        g = p.grad
        if g.layout != torch.strided or p.layout != torch.strided:
            raise RuntimeError(
                "adamlib.torch.Adam does not support sparse gradients or parameters (a parameter of shape "
                f"{tuple(p.shape)} is {p.layout} and its gradient {g.layout}); use torch.optim.SparseAdam"
            )
        if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
            raise RuntimeError(
                f"a parameter's gradient must have its shape, dtype and device: the parameter has "
                f"{tuple(p.shape)}, {p.dtype}, {p.device} and its gradient {tuple(g.shape)}, {g.dtype}, {g.device}"
            )
        if p.dtype not in DTYPES:
            raise RuntimeError(
                f"adamlib.torch.Adam updates parameters of dtype {', '.join(map(str, DTYPES))}; "
                f"got {p.dtype}, which torch's arithmetic does not support either"
            )
        if 0 in p.stride() and any(stride == 0 and n > 1 for n, stride in zip(p.shape, p.stride())):
            raise RuntimeError(
                f"a parameter of shape {tuple(p.shape)} has elements that share memory (stride "
                f"{p.stride()}: an expanded tensor?), so it cannot be updated in place; clone() it"
            )
        if p.is_complex() and p.is_conj():
            raise RuntimeError(_CONJUGATE)
        if dtensor is not None and isinstance(p, dtensor) != isinstance(g, dtensor):
            raise RuntimeError(_dtensor_error(p, "its gradient", g, dtensor))
        if dtensor is not None and isinstance(p, dtensor) and g.device_mesh != p.device_mesh:
            raise RuntimeError(_dtensor_error(p, "its gradient", g, dtensor))


def _check_moments(params: list[Tensor], state: dict) -> None:
    """Raise ``RuntimeError`` unless each moment already in ``state`` is like its parameter
    (:func:`_check_moment`)."""
    dtensor = _dtensor_type()
    for p in params:
        moments = state.get(p)
        if moments:
            for key in MOMENTS:
                if key in moments:
                    _check_moment(p, key, moments[key], dtensor)


def _check_moment(p: Tensor, key: str, t: Tensor, dtensor: type | None) -> None:
    """Raise ``RuntimeError`` unless ``state[key]`` of ``p`` is like it: its shape, dtype and
    device (a state dict of another model would not have them), not a conjugate view, and a
    ``DTensor`` placed as ``p`` if that is one, a plain tensor otherwise."""
    if not isinstance(t, Tensor) or t.shape != p.shape or t.dtype != p.dtype or t.device != p.device:
        have = f"{tuple(t.shape)}, {t.dtype}, {t.device}" if isinstance(t, Tensor) else type(t).__name__
        raise RuntimeError(
            f"a parameter's optimizer state must have its shape, dtype and device (was a state dict "
            f"of another model loaded?): the parameter has {tuple(p.shape)}, {p.dtype}, {p.device} "
            f"and state[{key!r}] {have}"
        )
    if t.is_complex() and t.is_conj():
        raise RuntimeError(_CONJUGATE)
    if dtensor is not None and (isinstance(p, dtensor) != isinstance(t, dtensor) or isinstance(p, dtensor) and (
            t.device_mesh != p.device_mesh or t.placements != p.placements)):
        raise RuntimeError(_dtensor_error(p, f"state[{key!r}]", t, dtensor))


_CONJUGATE = ("a complex parameter (or its state) is a conjugate view, which cannot be updated in place as "
              "pairs of reals (torch.view_as_real); resolve it first: p.data = p.data.resolve_conj()")


def _dtensor_error(p: Tensor, what: str, t: Tensor, dtensor: type) -> str:
    if not isinstance(p, dtensor):
        return ("a plain tensor parameter needs plain tensor gradients and moments, not DTensors "
                f"({what} is one; distribute the parameter too, e.g. with torch.distributed.fsdp.fully_shard)")
    have = f"a DTensor placed {t.placements} on {t.device_mesh}" if isinstance(t, dtensor) else type(t).__name__
    return (f"a DTensor parameter (placed {p.placements} on {p.device_mesh}) needs DTensor gradients and "
            f"moments on its device mesh, the moments with its placements: {what} is {have}")


def _dtensor_type() -> type | None:
    """``torch.distributed.tensor.DTensor``, or ``None`` while nothing has imported it (then no
    tensor is one), or in a torch built without ``torch.distributed``."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def _shard(t: Tensor, p: Tensor, dtensor: type) -> Tensor:
    """The local shard of ``t`` (a tensor of parameter ``p``), placed as ``p`` is; ``t`` itself if not a ``DTensor``."""
    if not isinstance(t, dtensor):
        return t
    if t.placements != p.placements:  # a gradient (the moments were checked): as a DTensor op would
        t = t.redistribute(p.device_mesh, p.placements)
    return t.to_local()


def _local_numel(p: Tensor) -> int:
    dtensor = _dtensor_type()
    return p.to_local().numel() if dtensor is not None and isinstance(p, dtensor) else p.numel()


def _step_dtype() -> torch.dtype:
    """The dtype of ``state["step"]``: float32, or float64 when that is torch's default dtype."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _check_hyperparameters(lr, betas, eps, weight_decay) -> tuple:
    """Check Adam's numbers as ``torch.optim.Adam`` does; return ``betas`` (tensors squeezed).

    One-element tensors are accepted for ``lr`` and for both betas, as in torch; the
    ranges are those of :mod:`adamlib.hyperparams` (ValueError, naming the argument).
    """
    if isinstance(lr, Tensor):
        if lr.numel() != 1:
            raise ValueError(f"Tensor lr must be 1-element, got shape {tuple(lr.shape)}")
        lr = lr.item()
    hp.check_lr(lr)
    hp.check_eps(eps)
    hp.check_weight_decay(weight_decay)
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    if isinstance(beta1, Tensor) != isinstance(beta2, Tensor):
        raise ValueError(f"betas must be either both numbers or both Tensors, got {betas!r}")
    checked = []
    for i, beta in enumerate((beta1, beta2)):
        if isinstance(beta, Tensor):
            if beta.numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element, got shape {tuple(beta.shape)}")
            beta = beta.squeeze()
        hp.check_beta(f"betas[{i}] (beta{i + 1})", beta.item() if isinstance(beta, Tensor) else beta)
        checked.append(beta)
    return tuple(checked)
