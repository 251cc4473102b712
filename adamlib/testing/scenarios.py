"""The optimizer scenarios: a small model trained a few steps in several situations, by the
student's class, by ``torch.optim.Adam`` and by models of the known bugs.

The model has three 3x3 weight matrices, ``x -> tanh(tanh(x W1) W2) W3``, and a squared
error (float64). A scenario fixes the hyperparameters and what happens around the steps:
tensors without a gradient on some steps, a scheduler, weight decay, ``amsgrad``,
``maximize``, an ``eps`` large enough to matter. The bug models (:func:`simulate`) take
the same steps in NumPy, with gradients by hand-written backpropagation, and the step of
:func:`adamlib.testing.bugs.model_step`. PyTorch is imported only when a trajectory is run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .bugs import model_step

PARAM_NAMES = ("W1", "W2", "W3")

#: Switches of the simulation itself (the others go to the step model).
_LOOP_SWITCHES = frozenset({"counter_per_update", "counter_global", "counter_reset",
                            "none_grad_as_zero", "shared_state", "lr_frozen"})


@dataclass(frozen=True)
class Scenario:
    """A few steps of the small model in one situation."""

    words: str
    weight_decay: float = 0.0
    decoupled: bool = False
    amsgrad: bool = False
    maximize: bool = False
    no_grad: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (step, tensors without a gradient)
    halve_lr: bool = False
    lr: float = 0.05
    betas: tuple[float, float] = (0.8, 0.95)
    eps: float = 1e-8
    steps: int = 5

    def without_grad(self, step: int) -> tuple[int, ...]:
        """The tensors whose ``.grad`` is None at this step (counted from 1)."""
        return dict(self.no_grad).get(step, ())

    def oracle_kwargs(self) -> dict[str, object]:
        """``torch.optim.Adam``'s arguments for this scenario."""
        return dict(lr=self.lr, betas=self.betas, eps=self.eps,
                    weight_decay=self.weight_decay, decoupled_weight_decay=self.decoupled,
                    amsgrad=self.amsgrad, maximize=self.maximize, foreach=False)


def accepted(cls) -> set[str]:
    """The keyword arguments a class's constructor names."""
    try:
        names = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return set()
    return {k for k, p in names.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}


def scenarios(takes: set[str], decoupled: bool) -> list[Scenario]:
    """The scenarios for a class whose constructor takes the arguments ``takes``."""
    out = [
        Scenario("every parameter tensor has a gradient at every step"),
        Scenario("some tensors have no gradient on some steps (.grad is None): W2 on steps 1 "
                 "and 2 (a layer unfrozen at step 3), W3 on steps 3 and 4",
                 no_grad=((1, (1,)), (2, (1,)), (3, (2,)), (4, (2,)))),
        Scenario("a scheduler halves the learning rate after each step (LambdaLR)",
                 halve_lr=True),
        Scenario("eps = 1e-3, large enough to matter next to the gradients", eps=1e-3),
    ]
    if "weight_decay" in takes and not decoupled:
        out.append(Scenario("weight decay (L2), weight_decay = 0.1", weight_decay=0.1))
    if decoupled or {"weight_decay", "decoupled_weight_decay"} <= takes:
        out.append(Scenario("decoupled weight decay (AdamW), weight_decay = 0.1",
                            weight_decay=0.1, decoupled=True))
    if "amsgrad" in takes:
        out.append(Scenario("amsgrad = True", amsgrad=True))
    if "maximize" in takes:
        out.append(Scenario("maximize = True (the optimizer climbs the loss)",
                            maximize=True))
    return out


def student_kwargs(s: Scenario, takes: set[str], decoupled: bool) -> dict[str, object]:
    """The arguments the student's class is built with in a scenario."""
    kwargs: dict[str, object] = dict(lr=s.lr, betas=s.betas, eps=s.eps)
    if "weight_decay" in takes:
        kwargs["weight_decay"] = s.weight_decay
    if s.decoupled and not decoupled:
        kwargs["decoupled_weight_decay"] = True
    if s.amsgrad:
        kwargs["amsgrad"] = True
    if s.maximize:
        kwargs["maximize"] = True
    return kwargs


def describe(s: Scenario, kwargs: dict[str, object]) -> str:
    """The scenario in words, as a report shows it."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return (f"{s.words}; {s.steps} steps of a small model with three 3x3 weight matrices "
            f"W1, W2, W3 (float64), optimizer built with ({args})")


def _data() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    import torch

    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(8, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    init = [0.7 * torch.randn(3, 3, generator=gen, dtype=torch.float64) for _ in PARAM_NAMES]
    return x.numpy(), y.numpy(), [w.numpy() for w in init]


def trajectory(make_optimizer, s: Scenario) -> list[list[np.ndarray]]:
    """Train the small model with an optimizer; the parameters after each step."""
    import torch

    x, y, init = _data()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in init]
    opt = make_optimizer(params)
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5**k)
             if s.halve_lr else None)
    out = []
    for step in range(1, s.steps + 1):
        for p in params:
            p.grad = None
        w1, w2, w3 = params
        ((torch.tanh(torch.tanh(x @ w1) @ w2) @ w3 - y) ** 2).mean().backward()
        for i in s.without_grad(step):
            params[i].grad = None
        opt.step()
        if sched is not None:
            sched.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def _gradients(x: np.ndarray, y: np.ndarray, w: list[np.ndarray]) -> list[np.ndarray]:
    """Backpropagation through ``mean((tanh(tanh(x W1) W2) W3 - y)^2)``."""
    h1 = np.tanh(x @ w[0])
    h2 = np.tanh(h1 @ w[1])
    d_out = 2 * (h2 @ w[2] - y) / y.size
    d_a2 = (d_out @ w[2].T) * (1 - h2**2)
    d_a1 = (d_a2 @ w[1].T) * (1 - h1**2)
    return [x.T @ d_a1, h1.T @ d_a2, h2.T @ d_out]


def simulate(s: Scenario, bugs: frozenset) -> list[list[np.ndarray]]:
    """The trajectory torch.optim.Adam gives (no bugs), or the one with known bugs."""
    return list(simulate_steps(s, bugs))


def simulate_steps(s: Scenario, bugs: frozenset) -> Iterator[list[np.ndarray]]:
    """:func:`simulate`, one step at a time: the parameters after each step."""
    x, y, params = _data()
    n = len(params)
    zeros = [np.zeros_like(p) for p in params]
    m, v, v_max = list(zeros), list(zeros), list(zeros)
    own_steps, updates = [0] * n, 0
    step_bugs = bugs - _LOOP_SWITCHES
    with np.errstate(all="ignore"):
        for step in range(1, s.steps + 1):
            lr = s.lr * (0.5 ** (step - 1) if s.halve_lr and "lr_frozen" not in bugs else 1)
            grads = _gradients(x, y, params)
            for i in range(n):
                if i in s.without_grad(step):
                    if "none_grad_as_zero" not in bugs:
                        continue
                    grads[i] = np.zeros_like(params[i])
                own_steps[i] += 1
                updates += 1
                t = (1 if "counter_reset" in bugs else step if "counter_global" in bugs
                     else updates if "counter_per_update" in bugs else own_steps[i])
                j = 0 if "shared_state" in bugs else i
                params[i], m[j], v[j], v_max[j] = model_step(
                    params[i], grads[i], m[j], v[j], v_max[j], t, lr, *s.betas, s.eps,
                    s.weight_decay, decoupled=s.decoupled, amsgrad=s.amsgrad,
                    maximize=s.maximize, bugs=step_bugs)
            yield [p.copy() for p in params]
