"""The cases a step is tried on: the battery of each step grader, and its reference.

Each case fixes a shape, a dtype, the step number, the size of the gradients and the
hyperparameters, and draws its arrays from its own seeded generator, so the battery,
and every message, is the same on every run. The battery is chosen so that every known
bug shows on some case and no two known bugs explain each other's outputs (tested).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..adam import Adam, adam_step
from .bugs import ADAMW_BUGS, AMSGRAD_BUGS, STEP_BUGS, model_step

#: Relative tolerance of the step graders per dtype, measured against the array's largest
#: value (a float32 implementation rounds at every operation; float64 must agree closely).
RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-5}


@dataclass(frozen=True)
class Case:
    """One call of the student's step: shape, dtype, step number, gradients, settings."""

    shape: tuple[int, ...]
    dtype: str
    t: int
    grads: str  # "normal", "zero", "tiny", "huge"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    SCALE = {"normal": 1.0, "zero": 1.0, "tiny": 1e-6, "huge": 1e6}
    WORDS = {"normal": "gradients of size about 1", "zero": "all gradients zero",
             "tiny": "tiny gradients (about 1e-06)", "huge": "huge gradients (about 1e+06)"}

    def describe(self) -> str:
        """The case in words, as a report shows it."""
        state = "m and v zero (the first step)" if self.t == 1 else "m and v from earlier steps"
        hyper = (f"lr = {self.lr:g}, beta1 = {self.beta1:g}, beta2 = {self.beta2:g}, "
                 f"eps = {self.eps:g}")
        if self.weight_decay:
            hyper += f", weight_decay = {self.weight_decay:g}"
        return (f"shape {self.shape}, {self.dtype}, step t = {self.t}, {hyper}; "
                f"{self.WORDS[self.grads]}; {state}")

    @property
    def rtol(self) -> float:
        return RTOL[np.dtype(self.dtype)]

    def arrays(self, seed: int) -> dict[str, np.ndarray]:
        """param, grad, m, v, v_max of this case, in its dtype (the same on every call)."""
        rng = np.random.default_rng(seed)
        scale = self.SCALE[self.grads]
        size = self.shape
        out = {"param": rng.normal(size=size), "grad": scale * rng.normal(size=size)}
        if self.grads == "zero":
            out["grad"] = np.zeros(size)
        if self.t == 1:
            out["m"], out["v"], out["v_max"] = np.zeros(size), np.zeros(size), np.zeros(size)
        else:
            out["m"] = 0.5 * scale * rng.normal(size=size)
            out["v"] = scale**2 * rng.uniform(0.3, 2.0, size=size)
            out["v_max"] = out["v"] * rng.uniform(1.0, 1.5, size=size)
        return {k: a.astype(self.dtype) for k, a in out.items()}


ADAM_CASES = (
    Case((3,), "float64", 1, "normal"),
    Case((2, 3), "float64", 2, "normal", lr=1e-2, beta1=0.8, beta2=0.99),
    Case((4,), "float64", 10, "normal", lr=0.1, beta1=0.9, beta2=0.95, eps=1e-3),
    Case((2, 2, 2), "float64", 1000, "normal"),
    Case((5,), "float64", 3, "zero", lr=1e-2),
    Case((5,), "float64", 4, "tiny", lr=1e-2, beta2=0.99),
    Case((5,), "float64", 6, "huge", lr=1e-2, beta1=0.5, beta2=0.9),
    Case((3, 2), "float64", 3, "normal", lr=1e-2, beta1=0.0, beta2=0.9),
    Case((3, 4), "float32", 1, "normal"),
    Case((6,), "float32", 7, "normal", lr=1e-2, beta1=0.85, beta2=0.98),
    Case((4,), "float32", 100, "tiny", lr=1e-2, eps=1e-8),
    Case((2, 5), "float32", 20, "huge", lr=1e-2, beta1=0.7, beta2=0.9),
)
ADAMW_CASES = tuple(
    Case(c.shape, c.dtype, c.t, c.grads, lr=max(c.lr, 1e-2), beta1=c.beta1, beta2=c.beta2,
         eps=c.eps, weight_decay=wd)
    for c, wd in zip(ADAM_CASES, itertools.cycle((0.1, 0.01, 0.5)))
)
AMSGRAD_CASES = tuple(
    Case(c.shape, c.dtype, c.t, c.grads, lr=c.lr, beta1=c.beta1, beta2=min(c.beta2, 0.9),
         eps=c.eps)
    for c in ADAM_CASES
)


@dataclass(frozen=True)
class StepKind:
    """One kind of step a grader checks: its signature, battery, reference and bugs."""

    name: str          # the function's name in messages when it has none of its own
    outputs: tuple[str, ...]
    cases: tuple[Case, ...]
    bugs: dict[str, str]
    decoupled: bool = False  # takes weight_decay, decoupled as AdamW's
    amsgrad: bool = False    # takes and returns v_max

    def call(self, fn: Callable, a: dict[str, np.ndarray], case: Case):
        """Call the student's ``fn`` on the arrays of a case."""
        hyper = dict(lr=case.lr, beta1=case.beta1, beta2=case.beta2, eps=case.eps)
        if self.decoupled:
            hyper["weight_decay"] = case.weight_decay
        args = [a["param"], a["grad"], a["m"], a["v"]]
        if self.amsgrad:
            args.append(a["v_max"])
        return fn(*args, case.t, **hyper)

    def reference(self, a: dict[str, np.ndarray], case: Case) -> tuple[np.ndarray, ...]:
        """adamlib's outputs on a case, in float64."""
        a = {k: x.astype(np.float64) for k, x in a.items()}
        if not (self.decoupled or self.amsgrad):
            return adam_step(a["param"], a["grad"], a["m"], a["v"], case.t, lr=case.lr,
                             beta1=case.beta1, beta2=case.beta2, eps=case.eps)
        p = a["param"].copy()
        opt = Adam([p], lr=case.lr, betas=(case.beta1, case.beta2), eps=case.eps,
                   weight_decay=case.weight_decay, amsgrad=self.amsgrad,
                   decoupled_weight_decay=True)
        state = opt.state_dict()
        state.update(step=case.t - 1, exp_avg=[a["m"]], exp_avg_sq=[a["v"]],
                     max_exp_avg_sq=[a["v_max"]] if self.amsgrad else [])
        opt.load_state_dict(state)
        opt.step([a["grad"]])
        out = (p, opt.exp_avg[0], opt.exp_avg_sq[0])
        return out + (opt.max_exp_avg_sq[0],) if self.amsgrad else out

    def model(self, a: dict[str, np.ndarray], case: Case, bugs: frozenset):
        """The outputs of the step with known bugs switched on, computed in the case's
        dtype as a student's NumPy code would (Python floats as hyperparameters, so a
        float32 case overflows and underflows where a float32 step does), as float64."""
        with np.errstate(all="ignore"):
            out = model_step(a["param"], a["grad"], a["m"], a["v"], a["v_max"], case.t,
                             case.lr, case.beta1, case.beta2, case.eps, case.weight_decay,
                             decoupled=True, amsgrad=self.amsgrad, bugs=bugs)
        out = tuple(np.asarray(x, dtype=np.float64) for x in out)
        return out if self.amsgrad else out[:3]


KINDS = {
    "adam": StepKind("adam_step", ("param", "m", "v"), ADAM_CASES, STEP_BUGS),
    "adamw": StepKind("adamw_step", ("param", "m", "v"), ADAMW_CASES,
                      {**STEP_BUGS, **ADAMW_BUGS}, decoupled=True),
    "amsgrad": StepKind("amsgrad_step", ("param", "m", "v", "v_max"), AMSGRAD_CASES,
                        {**STEP_BUGS, **AMSGRAD_BUGS}, amsgrad=True),
}
