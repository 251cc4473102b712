r"""``adamlib.torch.Adam``: a drop-in ``torch.optim.Adam`` whose update is adamlib's own code."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from .. import hyperparams as hp
from .update import Scalars, compiled_update, update_eager

IMPLS = ("auto", "compiled", "eager")

#: ``impl="auto"`` compiles the update for a (device, dtype) holding at least this many
#: parameter elements: below it, the milliseconds a compiled step saves take thousands of
#: steps to repay the compilation (ten seconds and more on a small CPU).
AUTO_COMPILE_MIN_NUMEL = 1 << 20


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
        ``"eager"``: the same update op by op, slower, allocating temporaries.
        ``"auto"``: compiled for a device and dtype with at least
        :data:`AUTO_COMPILE_MIN_NUMEL` parameter elements when compilation works (else
        eager, with a warning), eager below that.

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
        for group in self.param_groups:  # checkpoints from torch or older versions
            for key, default in (("amsgrad", False), ("maximize", False),
                                 ("decoupled_weight_decay", False), ("bias_correction", True)):
                group.setdefault(key, default)
            for p in group["params"]:
                state_p = self.state.get(p)
                if state_p and not torch.is_tensor(state_p["step"]):
                    state_p["step"] = torch.tensor(float(state_p["step"]), dtype=_step_dtype())

    # -- the step --------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (run with gradients enabled).

        Raises
        ------
        RuntimeError
            If a gradient is sparse, or does not have its parameter's shape, dtype and
            device (possible by replacing ``p.grad.data`` or setting ``p.grad_dtype``);
            raised before any parameter or state changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        todo = [[p for p in group["params"] if p.grad is not None] for group in self.param_groups]
        for params in todo:
            _check_gradients(params)
        # Choosing (and compiling) each update comes first: until it is done, nothing changes.
        calls = [(group, *call) for group, params in zip(self.param_groups, todo) for call in self._calls(group, params)]
        for group, update, params, step in calls:
            self._update(group, update, params, step)
        return loss

    def _calls(self, group: dict[str, Any], params: list[Tensor]) -> list[tuple[Callable, list[Tensor], float]]:
        """(update function, parameters, step number) for each call of a group's step.

        Parameters that share a device, a dtype and a step count share one call.
        """
        buckets: dict[tuple, list[Tensor]] = defaultdict(list)
        for p in params:
            state = self.state.get(p)
            buckets[(p.device, p.dtype, (state["step"].item() if state else 0.0) + 1)].append(p)
        plain = group["weight_decay"] == 0 and not group["maximize"]
        return [(self._update_for(device, dtype.to_real(), group["amsgrad"], plain, ps), ps, step)
                for (device, dtype, step), ps in buckets.items()]

    def _update(self, group: dict[str, Any], update: Callable, params: list[Tensor], step: float) -> None:
        """Run one call of the step: ``params`` share a device, a dtype and the step number."""
        states = [self._state(p, group) for p in params]
        moments = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        tensors = [params, [p.grad for p in params]] + [[s[key] for s in states] for key in moments]
        if params[0].is_complex():  # a complex number is a pair of reals, updated independently
            tensors = [[torch.view_as_real(t) for t in ts] for ts in tensors]
        torch._foreach_add_([s["step"] for s in states], 1)  # all the step counters in one call
        memo = self._memos.setdefault((id(group), params[0].device, params[0].dtype), {})
        max_exp_avg_sqs = tensors[4] if group["amsgrad"] else []
        update(*tensors[:4], max_exp_avg_sqs, Scalars.of(group, step).to_tensor(params[0].device), memo)

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

    def _update_for(self, device, dtype, amsgrad: bool, plain: bool, params: list[Tensor]):
        """The update function this step uses for these parameters (see ``impl``)."""
        eager = functools.partial(update_eager, plain=plain)
        if self.impl == "eager" or torch.compiler.is_compiling():
            return eager
        if self.impl == "auto" and sum(p.numel() for p in params) < AUTO_COMPILE_MIN_NUMEL:
            return eager
        compiled = compiled_update(device, dtype, amsgrad, plain, strict=self.impl == "compiled")
        return compiled or eager


def _check_gradients(params: list[Tensor]) -> None:
    """Raise ``RuntimeError`` if a gradient is sparse or unlike its parameter."""
    for p in params:
        g = p.grad
        if g.is_sparse:
            raise RuntimeError(
                "adamlib.torch.Adam does not support sparse gradients (a parameter of shape "
                f"{tuple(p.shape)} has one); use torch.optim.SparseAdam"
            )
        if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
            raise RuntimeError(
                f"a parameter's gradient must have its shape, dtype and device: the parameter has "
                f"{tuple(p.shape)}, {p.dtype}, {p.device} and its gradient {tuple(g.shape)}, {g.dtype}, {g.device}"
            )


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
