"""The graders: run the student's code, compare it with the reference, write the report."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from . import report
from .bugs import (AMSGRAD_BUGS, OPTIMIZER_AMSGRAD_BUGS, OPTIMIZER_BUGS, OPTIMIZER_STEP_BUGS,
                   STEP_BUGS, diagnose)
from .cases import KINDS, Case, StepKind
from .scenarios import (PARAM_NAMES, Scenario, accepted, describe, scenarios,
                        simulate_steps, student_kwargs, trajectory)


def _name(fn, default: str) -> str:
    """The student's name for their function or class (the default for a lambda)."""
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else default


def _as_outputs(result, given: dict[str, np.ndarray], kind: StepKind,
                name: str) -> tuple[np.ndarray, ...]:
    """The student's outputs as float64 arrays; raise AssertionError when unusable."""
    names = kind.outputs
    if result is None:  # updated in place and returned nothing: grade the arrays it was given
        result = tuple(given[k] for k in ("param", "m", "v", "v_max")[: len(names)])
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise AssertionError(
            f"{name} must return the tuple ({', '.join(names)}); "
            f"it returned {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    out = []
    for key, x in zip(names, result):
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise AssertionError(
                f"{name}: the {key} returned is not an array of numbers "
                f"({type(x).__name__})") from None
        if arr.shape != given["param"].shape:
            raise AssertionError(
                f"{name}: the {key} returned has shape {arr.shape}; "
                f"expected {given['param'].shape}, the shape of param")
        out.append(arr)
    return tuple(out)


def _first_step_hint(case: Case) -> str:
    return ("Hint: at the first step (t = 1) the bias corrections divide by 1 - beta1 and "
            "1 - beta2, not by zero: is the step number off by one?" if case.t == 1 else "")


def check_step(fn: Callable, kind: StepKind) -> None:
    """Grade a step function of one kind (see :func:`check_adam_step`)."""
    if not callable(fn):
        raise TypeError(f"fn: expected a function with {kind.name}'s signature, got {fn!r}")
    name = _name(fn, kind.name)
    cases = kind.cases
    results, failure, later = [], None, ""
    for i, case in enumerate(cases):
        given = case.arrays(seed=i)
        copies = {k: a.copy() for k, a in given.items()}
        try:
            with np.errstate(all="ignore"):
                got = _as_outputs(kind.call(fn, copies, case), copies, kind, name)
        except Exception as e:  # the student's code raised, or returned something unusable
            if failure is not None:  # an earlier case failed already: report that one
                later = f" (on case {i + 1}, {name} raised {type(e).__name__})"
                break
            if isinstance(e, AssertionError):
                raise AssertionError(report.wrap(
                    [str(e), f"  (case {i + 1} of {len(cases)}: {case.describe()})"])) from None
            hint = _first_step_hint(case) if isinstance(e, ZeroDivisionError) else ""
            raise AssertionError(report.wrap(
                [f"{name} raised {type(e).__name__}: {e}",
                 f"  on case {i + 1} of {len(cases)}: {case.describe()}"]
                + [hint] * bool(hint))) from e
        want = kind.reference(given, case)
        ok = [report.close(g, w, case.rtol) for g, w in zip(got, want)]
        results.append(got)
        if failure is None and not all(ok):
            failure = (i, case, got, want, ok)
            # Keep collecting the outputs of every case: the diagnosis needs them all.
    if failure is None:
        return
    i, case, got, want, ok = failure
    lines = [f"{name} is wrong on case {i + 1} of {len(cases)}"
             + (" (the cases before it passed)" if i else "") + ":",
             f"  {case.describe()}"]
    for key, g, w, good in zip(kind.outputs, got, want, ok):
        lines.append(f"  {key}: " + ("right" if good else "differs: " + report.difference(g, w)))
    lines.append(f"  (tolerance for {case.dtype}: {case.rtol:g} of the array's largest value)")
    if later:
        lines.append(f"Diagnosis: none, since not every case ran{later}.")
    else:
        lines.append(_diagnose_step(results, kind))
    if (not all(np.all(np.isfinite(g)) for g in got) and _first_step_hint(case)
            and "off by one" not in lines[-1]):
        lines.append(_first_step_hint(case))
    raise AssertionError(report.wrap(lines))


def _diagnose_step(results: list, kind: StepKind) -> str:
    arrays = [c.arrays(seed=i) for i, c in enumerate(kind.cases)]
    wants = [kind.reference(a, c) for a, c in zip(arrays, kind.cases)]

    def fit(bugs: frozenset) -> tuple[float, bool]:
        worst, exact = 0.0, True
        for got, a, want, case in zip(results, arrays, wants, kind.cases):
            for g, mo, w in zip(got, kind.model(a, case, bugs), want):
                left = report.unexplained(g, mo, w, case.rtol)
                if left > 1.0:
                    return float("inf"), False
                worst = max(worst, left)
                exact = exact and report.matches(g, mo, w, case.rtol)
        return worst, exact

    line = diagnose(kind.bugs, kind.bugs, fit)
    if line.startswith("Diagnosis: none") and _rounded_to_float32(results, kind.cases):
        return LOW_PRECISION
    return line


def _rounded_to_float32(results: list, cases: tuple[Case, ...]) -> bool:
    """Whether every output of every float64 case is a float32 number (and one is not
    a float64 one): the step computed in, or rounded to, float32."""
    wide = [g for got, case in zip(results, cases) if case.dtype == "float64" for g in got]
    with np.errstate(all="ignore"):
        return bool(wide) and all(np.array_equal(g.astype(np.float32), g, equal_nan=True)
                                  for g in wide)


LOW_PRECISION = (
    "Diagnosis: the outputs of the float64 cases are float32 numbers: the step computes "
    "in (or rounds to) float32; keep the arrays' own dtype.")


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
        or returns something else than three arrays of ``param``'s shape. The message,
        lines of at most 79 characters, calls ``fn`` by its name, describes the case,
        says which of param, m and v differ and by how much, and names the bug when the
        model of one known bug (:data:`STEP_BUGS`), or of two together, explains the
        outputs on every case.
    TypeError
        When ``fn`` is not callable.
    """
    check_step(fn, KINDS["adam"])


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
    check_step(fn, KINDS["adamw"])


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
    check_step(fn, KINDS["amsgrad"])


#: The optimizer grader's tolerance, relative to each tensor's largest value.
OPTIMIZER_RTOL = 1e-7


def _trajectories_close(got, want, rtol: float = OPTIMIZER_RTOL) -> bool:
    return all(report.close(g, w, rtol) for gs, ws in zip(got, want) for g, w in zip(gs, ws))


def check_adam_optimizer(cls, *, decoupled: bool = False) -> None:
    """Grade an Adam optimizer class against ``torch.optim.Adam``; silent when correct.

    The class is built like ``torch.optim.Adam`` (``cls(params, lr=..., betas=..., eps=...)``)
    and trains a small model (three weight matrices, float64) for a few steps in several
    scenarios: all tensors with gradients; some tensors without a gradient on some steps
    (``.grad`` is ``None``: torch.optim.Adam skips them and counts each tensor's own steps);
    a scheduler changing the learning rate; ``eps = 1e-3``, where eps matters; and, when
    the constructor accepts them, ``weight_decay`` (L2), ``weight_decay`` with
    ``decoupled_weight_decay=True`` (AdamW), ``amsgrad=True`` and ``maximize=True``.
    After each step every parameter must match ``torch.optim.Adam``'s to 1e-7 of its
    largest value. Imports PyTorch.

    Parameters
    ----------
    cls : type
        A subclass of ``torch.optim.Optimizer``.
    decoupled : bool, default False
        True for an AdamW class, whose ``weight_decay`` is always decoupled (as
        ``torch.optim.AdamW``); it is then graded against ``torch.optim.Adam`` with
        ``decoupled_weight_decay=True`` and passed ``weight_decay`` explicitly.

    Warns
    -----
    NotTestedWarning
        When the class passes but its constructor takes no ``weight_decay`` (or no
        ``decoupled_weight_decay``): that part was not tested.

    Raises
    ------
    AssertionError
        On the first scenario where a parameter differs, naming the step, the tensor and
        the size of the difference, and the bug (:data:`OPTIMIZER_BUGS`, or a step's bug
        of :data:`STEP_BUGS`) whose model explains the class's trajectories in every
        scenario; or when the class cannot be built or its step raises (with a hint for
        the in-place error that ``@torch.no_grad()`` avoids).
    TypeError
        When ``cls`` is not a subclass of ``torch.optim.Optimizer``.
    """
    import torch

    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TypeError(f"cls: expected a subclass of torch.optim.Optimizer, got {cls!r}")
    if not isinstance(decoupled, bool):
        raise TypeError(f"decoupled: expected True or False, got {decoupled!r}")
    takes = accepted(cls)
    tried = scenarios(takes, decoupled)
    name = cls.__name__
    runs, wants, failure, later = [], [], None, ""
    for k, s in enumerate(tried):
        kwargs = student_kwargs(s, takes, decoupled)
        where = (f"scenario {k + 1} of {len(tried)}"
                 + (" (the scenarios before it passed)" if k else "")
                 + f":\n  {describe(s, kwargs)}")
        try:
            with np.errstate(all="ignore"):
                got = trajectory(lambda ps: cls(ps, **kwargs), s)
        except Exception as e:  # the student's class raised: say where, and what
            if failure is not None:  # an earlier scenario failed already: report that one
                later = f" (in scenario {k + 1}, {name} raised {type(e).__name__})"
                break
            hint = report.hint_for(e)
            raise AssertionError(report.wrap(
                [f"{name} raised {type(e).__name__}: {e}", f"  in {where}"]
                + [hint] * bool(hint))) from e
        want = trajectory(lambda ps: torch.optim.Adam(ps, **s.oracle_kwargs()), s)
        runs.append(got)
        wants.append(want)
        if failure is None and not _trajectories_close(got, want):
            failure = (k, where, got, want)
    if failure is None:
        _warn_untested(name, takes, decoupled)
        return
    k, where, got, want = failure
    rtol = OPTIMIZER_RTOL
    step, i = next((step, i) for step, (gs, ws) in enumerate(zip(got, want))
                   for i, (g, w) in enumerate(zip(gs, ws)) if not report.close(g, w, rtol))
    wrong = [n for n, g, w in zip(PARAM_NAMES, got[step], want[step])
             if not report.close(g, w, rtol)]
    verb = "differs" if len(wrong) == 1 else "differ"
    lines = [f"{name} differs from torch.optim.Adam in {where}",
             f"  first after step {step + 1}" + (" (the steps before it matched)" if step else "")
             + f": {', '.join(wrong)} {verb}; {PARAM_NAMES[i]}: "
             + report.difference(got[step][i], want[step][i]),
             f"  (tolerance: {rtol:g} of the tensor's largest value)",
             f"Diagnosis: none, since not every scenario ran{later}." if later
             else _diagnose_optimizer(runs, wants, tried[:len(runs)], first=k)]
    raise AssertionError(report.wrap(lines))


def _warn_untested(name: str, takes: set[str], decoupled: bool) -> None:
    if decoupled:
        return
    missing = ("weight decay not tested: "
               f"{name}'s constructor takes no weight_decay" if "weight_decay" not in takes
               else "decoupled weight decay not tested: "
               f"{name}'s constructor takes no decoupled_weight_decay"
               if "decoupled_weight_decay" not in takes else "")
    if missing:
        warnings.warn(missing, report.NotTestedWarning, stacklevel=3)


def _diagnose_optimizer(runs, wants, tried: list[Scenario], first: int) -> str:
    texts = {**{k: STEP_BUGS[k] for k in OPTIMIZER_STEP_BUGS}, **OPTIMIZER_BUGS,
             **{k: AMSGRAD_BUGS[k] for k in OPTIMIZER_AMSGRAD_BUGS}}
    # The failing scenario first, step by step: most candidates are ruled out at once.
    order = [first] + [k for k in range(len(runs)) if k != first]

    def fit(bugs: frozenset) -> tuple[float, bool]:
        worst, exact = 0.0, True
        for k in order:
            got, want, s = runs[k], wants[k], tried[k]
            for gs, mos, ws in zip(got, simulate_steps(s, bugs), want):
                for g, mo, w in zip(gs, mos, ws):
                    left = report.unexplained(g, mo, w, OPTIMIZER_RTOL)
                    if left > 1.0:
                        return float("inf"), False
                    worst = max(worst, left)
                    exact = exact and report.matches(g, mo, w, OPTIMIZER_RTOL)
        return worst, exact

    return diagnose(texts, texts, fit)
