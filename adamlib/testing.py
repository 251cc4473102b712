r"""Graders for coursework: check a student's Adam and name the bug when there is one.

Each grader runs the student's code on a battery of cases and compares it with the
reference (:func:`adamlib.adam_step`, :class:`adamlib.Adam`, ``torch.optim.Adam``). A
correct implementation passes silently (the grader returns ``None``), whether it updates
its arrays in place or returns new ones. A wrong one raises ``AssertionError`` with what a
student can act on: the first case that fails, described in words; which output differs
and by how much; and, when the outputs match those of a known bug on every case, that bug,
named in words. No message shows the reference code.

- :func:`check_adam_step`: a function with :func:`adamlib.adam_step`'s signature,
  ``fn(param, grad, m, v, t, *, lr, beta1, beta2, eps) -> (param, m, v)``.
- :func:`check_adamw_step`: the same with decoupled weight decay (AdamW, as
  ``torch.optim.Adam(..., decoupled_weight_decay=True)`` applies it):
  ``fn(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay) -> (param, m, v)``.
- :func:`check_amsgrad_step`: AMSGrad as ``torch.optim.Adam(..., amsgrad=True)`` does it
  (the running maximum of the raw :math:`v`, bias-corrected afterwards):
  ``fn(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps) -> (param, m, v, v_max)``.
- :func:`check_adam_optimizer`: a ``torch.optim.Optimizer`` subclass, held to
  ``torch.optim.Adam`` over a few steps of a small model (imports PyTorch when called).

The step graders need only NumPy. Each case draws its arrays from its own seeded generator,
so the battery, and every message, is the same on every run.

Examples
--------
>>> import numpy as np
>>> from adamlib.testing import check_adam_step
>>> def my_adam_step(param, grad, m, v, t, *, lr, beta1, beta2, eps):
...     m = beta1 * m + (1 - beta1) * grad
...     v = beta2 * v + (1 - beta2) * grad**2
...     m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
...     return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
>>> check_adam_step(my_adam_step)  # silent: correct
>>> def no_sqrt(param, grad, m, v, t, *, lr, beta1, beta2, eps):
...     m = beta1 * m + (1 - beta1) * grad
...     v = beta2 * v + (1 - beta2) * grad**2
...     m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
...     return param - lr * m_hat / (v_hat + eps), m, v
>>> check_adam_step(no_sqrt)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
AssertionError: adam_step is wrong on case 1 of 12:
  shape (3,), float64, step t = 1, lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-08; ...
  param: differs: max abs error 0.0085, max rel error 0.068
  m: right
  v: right
  (tolerance for float64: 1e-09 of the array's largest value)
Diagnosis: the square root is missing: the update divides by the corrected second moment ...
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .adam import Adam, adam_step

__all__ = ["check_adam_step", "check_adamw_step", "check_amsgrad_step", "check_adam_optimizer"]

#: Relative tolerance of the step graders per dtype, measured against the array's largest
#: value (a float32 implementation rounds at every operation; float64 must agree closely).
RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-5}


# -- the known bugs of a single step -------------------------------------------------------
# Each bug is a set of switches of one model of the step (`_model_step`), with the sentence
# a student reads. A student's outputs "match" a bug when they equal that model's outputs
# on every case of the battery; the battery is chosen so that no two bugs (nor a bug and the
# correct step) agree on every case (tested).

#: The known bugs of a step, by name, with the diagnosis a student reads.
STEP_BUGS: dict[str, str] = {
    "no_bias_correction": (
        "neither moment is bias-corrected: m and v must be divided by 1 - beta1^t and "
        "1 - beta2^t before the update"),
    "no_m_correction": (
        "the first moment m is not bias-corrected (the second moment v is): m must be "
        "divided by 1 - beta1^t as well"),
    "no_v_correction": (
        "the second moment v is not bias-corrected (the first moment m is): v must be "
        "divided by 1 - beta2^t as well"),
    "t_plus_one": (
        "the step number is off by one: the bias corrections use t + 1 where they should "
        "use t (t counts from 1: the first step has t = 1)"),
    "t_minus_one": (
        "the step number is off by one: the bias corrections use t - 1 where they should "
        "use t (t counts from 1: the first step has t = 1, and 1 - beta^t is then 1 - beta)"),
    "eps_inside_sqrt": (
        "eps is added inside the square root: it belongs outside, added to the square root "
        "of the corrected second moment"),
    "no_sqrt": (
        "the square root is missing: the update divides by the corrected second moment "
        "itself instead of by its square root"),
    "betas_swapped": (
        "beta1 and beta2 are swapped: beta1 belongs to the first moment m (the gradient), "
        "beta2 to the second moment v (the squared gradient)"),
    "abs_grad": (
        "the second moment averages the gradient's absolute value |g| instead of its "
        "square g^2"),
    "ema_weights_swapped": (
        "the moving averages weigh the wrong way round: beta multiplies the old average and "
        "1 - beta the new gradient (m = beta1 m + (1 - beta1) g), not the reverse"),
    "lr_ignored": "the learning rate lr is not applied to the update (the step is as if lr = 1)",
    "ascent": "the update has the wrong sign: Adam subtracts its step from the parameter",
    "stale_moments": (
        "the moments returned are the ones from before the update: return the new m and v "
        "(the parameter itself is right)"),
}

#: The known bugs of AdamW's decoupled weight decay (graded with those of :data:`STEP_BUGS`).
ADAMW_BUGS: dict[str, str] = {
    "decay_missing": "the weight decay is not applied",
    "decay_as_l2": (
        "the weight decay is added to the gradient (L2 regularisation, plain Adam's "
        "weight_decay) instead of being decoupled: AdamW shrinks the parameter directly"),
    "decay_without_lr": (
        "the decoupled decay is not scaled by the learning rate: the parameter shrinks by "
        "the factor 1 - lr * weight_decay, not 1 - weight_decay"),
    "decay_after_update": (
        "the decoupled decay shrinks the parameter after the Adam update; it applies to the "
        "parameter from before the update (torch.optim.AdamW's order)"),
}

#: The known bugs of AMSGrad's running maximum (graded with those of :data:`STEP_BUGS`).
AMSGRAD_BUGS: dict[str, str] = {
    "max_unused": (
        "the running maximum v_max is computed but the update still divides by v: AMSGrad "
        "divides by the maximum"),
    "max_not_kept": (
        "the new running maximum is used in the update but not returned: the v_max returned "
        "must be the updated one"),
    "max_of_corrected": (
        "the running maximum is taken over the bias-corrected v: torch.optim.Adam keeps the "
        "maximum of the raw v and bias-corrects that maximum at each step"),
    "max_replaces_v": (
        "the second moment v is overwritten by the running maximum: v keeps its own moving "
        "average, and v_max is kept beside it"),
}


def _model_step(param, grad, m, v, v_max, t, lr, beta1, beta2, eps, weight_decay=0.0,
                amsgrad=False, bugs=frozenset()):
    """Adam's step as torch.optim.Adam takes it, in float64, with known bugs switched on.

    Used only to diagnose: the verdict comes from adamlib's reference.
    """
    with np.errstate(all="ignore"):  # some bugs divide by zero (t - 1 at t = 1)
        return _model_step_unguarded(param, grad, m, v, v_max, t, lr, beta1, beta2, eps,
                                     weight_decay, amsgrad, bugs)


def _model_step_unguarded(param, grad, m, v, v_max, t, lr, beta1, beta2, eps, weight_decay,
                          amsgrad, bugs):
    if "betas_swapped" in bugs:
        beta1, beta2 = beta2, beta1
    step_lr = 1.0 if "lr_ignored" in bugs else lr
    t = t + 1 if "t_plus_one" in bugs else t - 1 if "t_minus_one" in bugs else t
    p, g = param, grad
    if weight_decay and "decay_missing" not in bugs:
        if "decay_as_l2" in bugs:
            g = g + weight_decay * p
        elif "decay_without_lr" in bugs:
            p = p * (1 - weight_decay)
        elif "decay_after_update" not in bugs:
            p = p * (1 - lr * weight_decay)
    g2 = np.abs(g) if "abs_grad" in bugs else g * g
    if "ema_weights_swapped" in bugs:
        m_new, v_new = (1 - beta1) * m + beta1 * g, (1 - beta2) * v + beta2 * g2
    else:
        m_new, v_new = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g2
    bc1 = 1.0 if bugs & {"no_bias_correction", "no_m_correction"} else 1 - beta1**t
    bc2 = 1.0 if bugs & {"no_bias_correction", "no_v_correction"} else 1 - beta2**t
    v_max_new, second = v_max, v_new
    if amsgrad:
        if "max_of_corrected" in bugs:
            v_max_new = np.maximum(v_max, v_new / bc2)
            bc2 = 1.0
        else:
            v_max_new = np.maximum(v_max, v_new)
        if "max_unused" not in bugs:
            second = v_max_new
    v_hat = second / bc2
    if "eps_inside_sqrt" in bugs:
        denom = np.sqrt(v_hat + eps)
    elif "no_sqrt" in bugs:
        denom = v_hat + eps
    else:
        denom = np.sqrt(v_hat) + eps
    step = step_lr * (m_new / bc1) / denom
    p = p + step if "ascent" in bugs else p - step
    if weight_decay and "decay_after_update" in bugs:
        p = p * (1 - lr * weight_decay)
    if "stale_moments" in bugs:
        m_new, v_new = m, v
    if "max_replaces_v" in bugs:
        v_new = v_max_new
    if "max_not_kept" in bugs:
        v_max_new = v_max
    return (p, m_new, v_new, v_max_new) if amsgrad else (p, m_new, v_new)


# -- the battery ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Case:
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
        state = "m and v zero (the first step)" if self.t == 1 else "m and v from earlier steps"
        hyper = f"lr = {self.lr:g}, beta1 = {self.beta1:g}, beta2 = {self.beta2:g}, eps = {self.eps:g}"
        if self.weight_decay:
            hyper += f", weight_decay = {self.weight_decay:g}"
        return (f"shape {self.shape}, {self.dtype}, step t = {self.t}, {hyper}; "
                f"{self.WORDS[self.grads]}; {state}")

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


_ADAM_CASES = (
    _Case((3,), "float64", 1, "normal"),
    _Case((2, 3), "float64", 2, "normal", lr=1e-2, beta1=0.8, beta2=0.99),
    _Case((4,), "float64", 10, "normal", lr=0.1, beta1=0.9, beta2=0.95, eps=1e-3),
    _Case((2, 2, 2), "float64", 1000, "normal"),
    _Case((5,), "float64", 3, "zero", lr=1e-2),
    _Case((5,), "float64", 4, "tiny", lr=1e-2, beta2=0.99),
    _Case((5,), "float64", 6, "huge", lr=1e-2, beta1=0.5, beta2=0.9),
    _Case((3, 2), "float64", 3, "normal", lr=1e-2, beta1=0.0, beta2=0.9),
    _Case((3, 4), "float32", 1, "normal"),
    _Case((6,), "float32", 7, "normal", lr=1e-2, beta1=0.85, beta2=0.98),
    _Case((4,), "float32", 100, "tiny", lr=1e-2, eps=1e-8),
    _Case((2, 5), "float32", 20, "huge", lr=1e-2, beta1=0.7, beta2=0.9),
)
_ADAMW_CASES = tuple(
    _Case(c.shape, c.dtype, c.t, c.grads, lr=max(c.lr, 1e-2), beta1=c.beta1, beta2=c.beta2,
          eps=c.eps, weight_decay=wd)
    for c, wd in zip(_ADAM_CASES, itertools.cycle((0.1, 0.01, 0.5)))
)
_AMSGRAD_CASES = tuple(
    _Case(c.shape, c.dtype, c.t, c.grads, lr=c.lr, beta1=c.beta1, beta2=min(c.beta2, 0.9),
          eps=c.eps)
    for c in _ADAM_CASES
)


@dataclass(frozen=True)
class _Variant:
    name: str          # the function's name in messages
    outputs: tuple[str, ...]
    cases: tuple[_Case, ...]
    bugs: dict[str, str]
    decoupled: bool = False  # takes weight_decay, decoupled as AdamW's
    amsgrad: bool = False    # takes and returns v_max

    def call(self, fn: Callable, a: dict[str, np.ndarray], case: _Case):
        hyper = dict(lr=case.lr, beta1=case.beta1, beta2=case.beta2, eps=case.eps)
        if self.decoupled:
            hyper["weight_decay"] = case.weight_decay
        args = [a["param"], a["grad"], a["m"], a["v"]]
        if self.amsgrad:
            args.append(a["v_max"])
        return fn(*args, case.t, **hyper)

    def reference(self, a: dict[str, np.ndarray], case: _Case) -> tuple[np.ndarray, ...]:
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

    def model(self, a: dict[str, np.ndarray], case: _Case, bugs: frozenset):
        a = {k: x.astype(np.float64) for k, x in a.items()}
        return _model_step(a["param"], a["grad"], a["m"], a["v"], a["v_max"], case.t,
                           case.lr, case.beta1, case.beta2, case.eps, case.weight_decay,
                           self.amsgrad, bugs)


_VARIANTS = {
    "adam": _Variant("adam_step", ("param", "m", "v"), _ADAM_CASES, STEP_BUGS),
    "adamw": _Variant("adamw_step", ("param", "m", "v"), _ADAMW_CASES,
                      {**STEP_BUGS, **ADAMW_BUGS}, decoupled=True),
    "amsgrad": _Variant("amsgrad_step", ("param", "m", "v", "v_max"), _AMSGRAD_CASES,
                        {**STEP_BUGS, **AMSGRAD_BUGS}, amsgrad=True),
}


# -- comparing arrays ----------------------------------------------------------------------
def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    """Equal within ``rtol`` of the array's largest value (NaN and inf must coincide)."""
    with np.errstate(all="ignore"):
        finite = want[np.isfinite(want)]
        atol = rtol * (float(np.max(np.abs(finite))) if finite.size else 0.0)
        return bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))


def _difference(got: np.ndarray, want: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(got)) and np.all(np.isfinite(want)):
            bad = int(np.sum(~np.isfinite(got)))
            return f"{bad} of its {got.size} values are not finite (nan or inf)"
        err = np.abs(got - want)
        rel = err / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
        return f"max abs error {np.max(err):.2g}, max rel error {np.max(rel):.2g}"


def _as_outputs(result, given: dict[str, np.ndarray], variant: _Variant) -> tuple[np.ndarray, ...]:
    """The student's outputs as float64 arrays; raise AssertionError when unusable."""
    names = variant.outputs
    if result is None:  # updated in place and returned nothing: grade the arrays it was given
        result = tuple(given[k] for k in ("param", "m", "v", "v_max")[: len(names)])
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise AssertionError(
            f"{variant.name} must return the tuple ({', '.join(names)}); "
            f"it returned {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    out = []
    for name, x in zip(names, result):
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise AssertionError(
                f"{variant.name}: the {name} returned is not an array of numbers "
                f"({type(x).__name__})") from None
        if arr.shape != given["param"].shape:
            raise AssertionError(
                f"{variant.name}: the {name} returned has shape {arr.shape}; "
                f"expected {given['param'].shape}, the shape of param")
        out.append(arr)
    return tuple(out)


# -- the step graders ----------------------------------------------------------------------
def _check_step(fn: Callable, variant: _Variant) -> None:
    if not callable(fn):
        raise TypeError(f"fn: expected a function with {variant.name}'s signature, got {fn!r}")
    cases = variant.cases
    results, failure, later = [], None, ""
    for i, case in enumerate(cases):
        given = case.arrays(seed=i)
        copies = {k: a.copy() for k, a in given.items()}
        try:
            with np.errstate(all="ignore"):
                got = _as_outputs(variant.call(fn, copies, case), copies, variant)
        except Exception as e:  # the student's code raised, or returned something unusable
            if failure is not None:  # an earlier case failed already: report that one
                later = f" (on case {i + 1}, {variant.name} raised {type(e).__name__})"
                break
            if isinstance(e, AssertionError):
                raise AssertionError(f"{e}\n  (case {i + 1} of {len(cases)}: {case.describe()})") from None
            hint = ""
            if isinstance(e, ZeroDivisionError) and case.t == 1:
                hint = ("\nHint: at the first step (t = 1) the bias corrections divide by "
                        "1 - beta1 and 1 - beta2, not by zero: is the step number off by one?")
            raise AssertionError(
                f"{variant.name} raised {type(e).__name__}: {e}\n"
                f"  on case {i + 1} of {len(cases)}: {case.describe()}{hint}") from e
        want = variant.reference(given, case)
        rtol = RTOL[np.dtype(case.dtype)]
        ok = [_close(g, w, rtol) for g, w in zip(got, want)]
        results.append(got)
        if failure is None and not all(ok):
            failure = (i, case, got, want, ok)
            # Keep collecting the outputs of every case: the diagnosis needs them all.
    if failure is None:
        return
    i, case, got, want, ok = failure
    lines = [f"{variant.name} is wrong on case {i + 1} of {len(cases)}"
             + (" (the cases before it passed)" if i else "") + ":",
             f"  {case.describe()}"]
    for name, g, w, good in zip(variant.outputs, got, want, ok):
        lines.append(f"  {name}: " + ("right" if good else "differs: " + _difference(g, w)))
    rtol = RTOL[np.dtype(case.dtype)]
    lines.append(f"  (tolerance for {case.dtype}: {rtol:g} of the array's largest value)")
    if later:
        lines.append(f"Diagnosis: none, since not every case ran{later}.")
    else:
        lines.append(_diagnose_step(results, variant))
    raise AssertionError("\n".join(lines))


def _diagnose_step(results: list, variant: _Variant) -> str:
    arrays = [c.arrays(seed=i) for i, c in enumerate(variant.cases)]

    def matches(bugs: frozenset) -> bool:
        for got, a, case in zip(results, arrays, variant.cases):
            rtol = RTOL[np.dtype(case.dtype)]
            model = variant.model(a, case, bugs)
            if not all(_close(g, w, rtol) for g, w in zip(got, model)):
                return False
        return True

    found = [name for name in variant.bugs if matches(frozenset([name]))]
    if len(found) == 1:
        return f"Diagnosis: {variant.bugs[found[0]]}."
    if not found:
        pairs = [pair for pair in itertools.combinations(variant.bugs, 2) if matches(frozenset(pair))]
        if len(pairs) == 1:
            a, b = pairs[0]
            return f"Diagnosis: two bugs at once. First, {variant.bugs[a]}. Second, {variant.bugs[b]}."
    return ("Diagnosis: none of the known bugs (nor two of them together) gives these outputs; "
            "compare each line of your code with Algorithm 1.")


def check_adam_step(fn: Callable) -> None:
    """Grade ``fn`` against :func:`adamlib.adam_step`; silent when correct.

    Parameters
    ----------
    fn : callable
        ``fn(param, grad, m, v, t, *, lr, beta1, beta2, eps) -> (param, m, v)``, NumPy arrays
        in and out. It may update its arrays in place, return new ones, or both; a function
        that updates in place and returns ``None`` is graded on the arrays it was given.

    Raises
    ------
    AssertionError
        On the first case whose output differs from the reference, or when ``fn`` raises
        or returns something else than three arrays of ``param``'s shape. The message
        describes the case, which of param, m and v differ and by how much, and names the
        bug when the outputs match a known one (:data:`STEP_BUGS`) on every case.
    TypeError
        When ``fn`` is not callable.
    """
    _check_step(fn, _VARIANTS["adam"])


def check_adamw_step(fn: Callable) -> None:
    """Grade an AdamW step: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    The reference is :class:`adamlib.Adam` with ``decoupled_weight_decay=True``: the
    parameter is first shrunk by the factor ``1 - lr * weight_decay``, then Adam's update
    is applied.

    Parameters
    ----------
    fn : callable
        ``fn(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay) -> (param, m, v)``.

    Raises
    ------
    AssertionError, TypeError
        As :func:`check_adam_step`; the known bugs include those of :data:`ADAMW_BUGS`.
    """
    _check_step(fn, _VARIANTS["adamw"])


def check_amsgrad_step(fn: Callable) -> None:
    r"""Grade an AMSGrad step, as ``torch.optim.Adam(..., amsgrad=True)`` takes it.

    The reference is :class:`adamlib.Adam` with ``amsgrad=True``:
    :math:`v_{\max} \leftarrow \max(v_{\max}, v_t)` on the raw second moment, and the
    update divides by :math:`\sqrt{v_{\max} / (1-\beta_2^t)} + \epsilon`.

    Parameters
    ----------
    fn : callable
        ``fn(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps) -> (param, m, v, v_max)``.

    Raises
    ------
    AssertionError, TypeError
        As :func:`check_adam_step`; the known bugs include those of :data:`AMSGRAD_BUGS`.
    """
    _check_step(fn, _VARIANTS["amsgrad"])


# -- the optimizer grader ------------------------------------------------------------------
#: The known bugs of an optimizer class, by name, with the diagnosis a student reads.
OPTIMIZER_BUGS: dict[str, str] = {
    "counter_per_update": (
        "the step counter t goes up once for every parameter tensor updated, not once per "
        "step: with several parameter tensors the bias corrections use a t that is too large"),
    "counter_global": (
        "one step counter serves all parameters: torch.optim.Adam counts, for each parameter "
        "tensor, the steps at which it had a gradient, so a tensor that joins late (or "
        "pauses) keeps its own count, starting at t = 1"),
    "none_grad_as_zero": (
        "a parameter whose .grad is None is still updated, as if its gradient were zero: "
        "torch.optim.Adam skips it, leaving the tensor and its state as they were"),
    "shared_state": (
        "the moments m and v are shared between parameter tensors: each tensor needs its "
        "own state (keep it in self.state[p])"),
    "l2_instead_of_decoupled": (
        "decoupled weight decay (AdamW) was asked for, but the decay is added to the "
        "gradient (L2): decoupled decay shrinks the parameter by 1 - lr * weight_decay"),
    "decoupled_instead_of_l2": (
        "plain weight decay (L2) was asked for, but the parameter is shrunk directly "
        "(decoupled, AdamW): Adam's weight_decay adds weight_decay * param to the gradient"),
    "weight_decay_ignored": "weight_decay has no effect",
    "lr_frozen": (
        "the learning rate is read once, when the optimizer is built, so a scheduler has no "
        "effect: read each param group's 'lr' at every step"),
}
_SHARED_VARIANTS = ({"shared_state"}, {"shared_state", "counter_per_update"},
                    {"shared_state", "counter_global"})
_OPTIMIZER_VARIANTS = {k: [frozenset(s) for s in _SHARED_VARIANTS] if k == "shared_state"
                       else [frozenset([k])] for k in OPTIMIZER_BUGS}
_PARAM_NAMES = ("W1", "W2", "W3")


@dataclass(frozen=True)
class _Scenario:
    words: str
    weight_decay: float = 0.0
    decoupled: bool = False
    amsgrad: bool = False
    no_grad: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (step, tensors without a gradient)
    halve_lr: bool = False
    lr: float = 0.05
    betas: tuple[float, float] = (0.8, 0.95)
    eps: float = 1e-8
    steps: int = 5

    def without_grad(self, step: int) -> tuple[int, ...]:
        return dict(self.no_grad).get(step, ())


def _problem():
    """A small model: three 3x3 weight matrices, x -> tanh(tanh(x W1) W2) W3, squared error."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(8, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    init = [0.7 * torch.randn(3, 3, generator=gen, dtype=torch.float64) for _ in _PARAM_NAMES]

    def loss(params):
        w1, w2, w3 = params
        return ((torch.tanh(torch.tanh(x @ w1) @ w2) @ w3 - y) ** 2).mean()

    return init, loss


def _trajectory(make_optimizer, scenario: _Scenario):
    """Train the small model with an optimizer; the parameters after each step."""
    import torch

    init, loss = _problem()
    params = [torch.nn.Parameter(p.clone()) for p in init]
    opt = make_optimizer(params)
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5**k)
             if scenario.halve_lr else None)
    out = []
    for step in range(1, scenario.steps + 1):
        for p in params:
            p.grad = None
        loss(params).backward()
        for i in scenario.without_grad(step):
            params[i].grad = None
        opt.step()
        if sched is not None:
            sched.step()
        out.append([p.detach().clone() for p in params])
    return out


def _simulate(scenario: _Scenario, bugs: frozenset):
    """The trajectory torch.optim.Adam gives (no bugs), or the one of a known bug."""
    import torch

    init, loss = _problem()
    params = [p.clone() for p in init]
    n = len(params)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    v_max = [torch.zeros_like(p) for p in params]
    own_steps, updates = [0] * n, 0
    b1, b2 = scenario.betas
    wd = 0.0 if "weight_decay_ignored" in bugs else scenario.weight_decay
    decoupled = scenario.decoupled
    if decoupled and "l2_instead_of_decoupled" in bugs:
        decoupled = False
    elif not decoupled and "decoupled_instead_of_l2" in bugs:
        decoupled = True
    out = []
    for step in range(1, scenario.steps + 1):
        lr = scenario.lr * (0.5 ** (step - 1) if scenario.halve_lr and "lr_frozen" not in bugs else 1)
        leaves = [p.clone().requires_grad_(True) for p in params]
        grads = torch.autograd.grad(loss(leaves), leaves)
        for i in range(n):
            if i in scenario.without_grad(step):
                if "none_grad_as_zero" not in bugs:
                    continue
                g = torch.zeros_like(params[i])
            else:
                g = grads[i]
            own_steps[i] += 1
            updates += 1
            t = (step if "counter_global" in bugs else updates if "counter_per_update" in bugs
                 else own_steps[i])
            j = 0 if "shared_state" in bugs else i
            p = params[i]
            if wd and decoupled:
                p = p * (1 - lr * wd)
            elif wd:
                g = g + wd * p
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            second = v[j]
            if scenario.amsgrad:
                v_max[j] = torch.maximum(v_max[j], v[j])
                second = v_max[j]
            denom = (second / (1 - b2**t)).sqrt() + scenario.eps
            params[i] = p - lr * (m[j] / (1 - b1**t)) / denom
        out.append([p.clone() for p in params])
    return out


def _accepted(cls) -> set[str]:
    try:
        names = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return set()
    return {k for k, p in names.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}


def _scenarios(accepted: set[str], decoupled: bool) -> list[_Scenario]:
    out = [
        _Scenario("every parameter tensor has a gradient at every step"),
        _Scenario("some tensors have no gradient on some steps (.grad is None): W2 on steps 1 "
                  "and 2 (a layer unfrozen at step 3), W3 on steps 3 and 4",
                  no_grad=((1, (1,)), (2, (1,)), (3, (2,)), (4, (2,)))),
        _Scenario("a scheduler halves the learning rate after each step (LambdaLR)",
                  halve_lr=True),
    ]
    if "weight_decay" in accepted and not decoupled:
        out.append(_Scenario("weight decay (L2), weight_decay = 0.1", weight_decay=0.1))
    if decoupled or {"weight_decay", "decoupled_weight_decay"} <= accepted:
        out.append(_Scenario("decoupled weight decay (AdamW), weight_decay = 0.1",
                             weight_decay=0.1, decoupled=True))
    if "amsgrad" in accepted:
        out.append(_Scenario("amsgrad = True", amsgrad=True))
    return out


def _student_kwargs(s: _Scenario, accepted: set[str], decoupled: bool) -> dict[str, object]:
    kwargs: dict[str, object] = dict(lr=s.lr, betas=s.betas, eps=s.eps)
    if "weight_decay" in accepted:
        kwargs["weight_decay"] = s.weight_decay
    if s.decoupled and not decoupled:
        kwargs["decoupled_weight_decay"] = True
    if s.amsgrad:
        kwargs["amsgrad"] = True
    return kwargs


def _scenario_words(s: _Scenario, kwargs: dict[str, object]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return (f"{s.words}; {s.steps} steps of a small model with three 3x3 weight matrices "
            f"W1, W2, W3 (float64), optimizer built with ({args})")


def _trajectories_close(got, want, rtol: float) -> bool:
    return all(_close(g.numpy(), w.numpy(), rtol) for gs, ws in zip(got, want) for g, w in zip(gs, ws))


def check_adam_optimizer(cls, *, decoupled: bool = False) -> None:
    """Grade an Adam optimizer class against ``torch.optim.Adam``; silent when correct.

    The class is built like ``torch.optim.Adam`` (``cls(params, lr=..., betas=..., eps=...)``)
    and trains a small model (three weight matrices, float64) for a few steps in several
    scenarios: all tensors with gradients; some tensors without a gradient on some steps
    (``.grad`` is ``None``: torch.optim.Adam skips them and counts each tensor's own steps);
    a scheduler changing the learning rate; and, when the constructor accepts them,
    ``weight_decay`` (L2), ``weight_decay`` with ``decoupled_weight_decay=True`` (AdamW) and
    ``amsgrad=True``. After each step every parameter must match ``torch.optim.Adam``'s to
    1e-7 of its largest value. Imports PyTorch.

    Parameters
    ----------
    cls : type
        A subclass of ``torch.optim.Optimizer``.
    decoupled : bool, default False
        True for an AdamW class, whose ``weight_decay`` is always decoupled (as
        ``torch.optim.AdamW``); it is then graded against ``torch.optim.Adam`` with
        ``decoupled_weight_decay=True`` and passed ``weight_decay`` explicitly.

    Raises
    ------
    AssertionError
        On the first scenario where a parameter differs, naming the step, the tensor and
        the size of the difference, and the bug (:data:`OPTIMIZER_BUGS`) when the class
        behaves as that bug does in every scenario; or when the class cannot be built or
        its step raises.
    TypeError
        When ``cls`` is not a subclass of ``torch.optim.Optimizer``.
    """
    import torch

    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TypeError(f"cls: expected a subclass of torch.optim.Optimizer, got {cls!r}")
    if not isinstance(decoupled, bool):
        raise TypeError(f"decoupled: expected True or False, got {decoupled!r}")
    rtol = 1e-7
    accepted = _accepted(cls)
    scenarios = _scenarios(accepted, decoupled)
    name = cls.__name__
    runs, failure, later = [], None, ""
    for k, s in enumerate(scenarios):
        kwargs = _student_kwargs(s, accepted, decoupled)
        where = (f"scenario {k + 1} of {len(scenarios)}"
                 + (" (the scenarios before it passed)" if k else "")
                 + f":\n  {_scenario_words(s, kwargs)}")
        try:
            got = _trajectory(lambda ps: cls(ps, **kwargs), s)
        except Exception as e:  # the student's class raised: say where, and what
            if failure is not None:  # an earlier scenario failed already: report that one
                later = f" (in scenario {k + 1}, {name} raised {type(e).__name__})"
                break
            raise AssertionError(f"{name} raised {type(e).__name__}: {e}\n  in {where}") from e
        oracle = dict(lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay,
                      decoupled_weight_decay=s.decoupled, amsgrad=s.amsgrad, foreach=False)
        want = _trajectory(lambda ps: torch.optim.Adam(ps, **oracle), s)
        runs.append(got)
        if failure is None and not _trajectories_close(got, want, rtol):
            failure = (k, where, got, want)
    if failure is None:
        return
    k, where, got, want = failure
    step, i = next((step, i) for step, (gs, ws) in enumerate(zip(got, want))
                   for i, (g, w) in enumerate(zip(gs, ws)) if not _close(g.numpy(), w.numpy(), rtol))
    wrong = [n for n, g, w in zip(_PARAM_NAMES, got[step], want[step])
             if not _close(g.numpy(), w.numpy(), rtol)]
    verb = "differs" if len(wrong) == 1 else "differ"
    lines = [f"{name} differs from torch.optim.Adam in {where}",
             f"  first after step {step + 1}" + (" (the steps before it matched)" if step else "")
             + f": {', '.join(wrong)} {verb}; {_PARAM_NAMES[i]}: "
             + _difference(got[step][i].numpy(), want[step][i].numpy()),
             f"  (tolerance: {rtol:g} of the tensor's largest value)",
             f"Diagnosis: none, since not every scenario ran{later}." if later
             else _diagnose_optimizer(runs, scenarios, rtol)]
    raise AssertionError("\n".join(lines))


def _diagnose_optimizer(runs, scenarios: Sequence[_Scenario], rtol: float) -> str:
    def matches(keys: Sequence[str]) -> bool:
        for variants in itertools.product(*(_OPTIMIZER_VARIANTS[k] for k in keys)):
            bugs = frozenset().union(*variants)
            if all(_trajectories_close(got, _simulate(s, bugs), rtol)
                   for got, s in zip(runs, scenarios)):
                return True
        return False

    found = [k for k in OPTIMIZER_BUGS if matches([k])]
    if len(found) == 1:
        return f"Diagnosis: {OPTIMIZER_BUGS[found[0]]}."
    if not found:
        pairs = [pair for pair in itertools.combinations(OPTIMIZER_BUGS, 2) if matches(pair)]
        if len(pairs) == 1:
            a, b = pairs[0]
            return (f"Diagnosis: two bugs at once. First, {OPTIMIZER_BUGS[a]}. "
                    f"Second, {OPTIMIZER_BUGS[b]}.")
    return ("Diagnosis: none of the known bugs (nor two of them together) gives these "
            "parameters.")
