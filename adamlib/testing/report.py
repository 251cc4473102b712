r"""The report a student reads: how outputs are compared, measured and put in words.

Two arrays are *close* when they agree within ``rtol`` of the reference's largest
finite value (NaN and inf must sit at the same places). A failure is described by
the size of the difference, or by the count of values that are not finite. A
candidate bug model *explains* a student's output when it leaves at most a small
fraction of the error unexplained:

.. math::

    \max |x_\text{student} - x_\text{model}| \le
    \max\bigl(\text{tol},\ f \cdot \max |x_\text{student} - x_\text{reference}|\bigr),

with ``tol`` the closeness tolerance (of the reference or of the model's output,
whichever is larger) and :math:`f` = :data:`EXPLAINED` (and NaN/inf
at the same places). Every line of a report is at most :data:`WIDTH` characters.
"""

from __future__ import annotations

import textwrap

import numpy as np

#: The widest line of a report (the book's code width).
WIDTH = 79

#: A bug model explains an output when it leaves at most this fraction of its error.
EXPLAINED = 0.01


class NotTestedWarning(UserWarning):
    """A grader passed a class but could not test a feature its constructor lacks."""


def close(got: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    """Equal within ``rtol`` of ``want``'s largest finite value (NaN/inf must coincide)."""
    with np.errstate(all="ignore"):
        finite = want[np.isfinite(want)]
        atol = rtol * (float(np.max(np.abs(finite))) if finite.size else 0.0)
        return bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))


def _same_non_finite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where a and b are both NaN, or both the same infinity."""
    return (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))


def misfit(got: np.ndarray, model: np.ndarray) -> float:
    """Largest difference between two arrays; inf where one is not finite and the other
    is, or is another non-finite value; 0 where both are the same NaN or inf."""
    with np.errstate(all="ignore"):
        got, model = np.broadcast_arrays(np.asarray(got, float), np.asarray(model, float))
        both = np.isfinite(got) & np.isfinite(model)
        if not np.all(both | _same_non_finite(got, model)):
            return float("inf")
        return float(np.max(np.abs(got - model)[both], initial=0.0))


def error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest difference from the reference over the values both have finite."""
    with np.errstate(all="ignore"):
        both = np.isfinite(got) & np.isfinite(want)
        return float(np.max(np.abs(got - want)[both], initial=0.0))


def tolerance(want: np.ndarray, rtol: float) -> float:
    """``rtol`` times the array's largest finite value (the absolute tolerance)."""
    want = np.asarray(want)
    finite = want[np.isfinite(want)]
    return rtol * (float(np.max(np.abs(finite))) if finite.size else 0.0)


def unexplained(got: np.ndarray, model: np.ndarray, want: np.ndarray,
                rtol: float) -> float:
    """The part of the error a model leaves, in units of what it may leave.

    At most 1 when the model explains ``got`` (see the module's formula): the
    model's misfit divided by ``max(tol, EXPLAINED * error)``.
    """
    allowed = max(tolerance(want, rtol), tolerance(model, rtol),
                  EXPLAINED * error(got, want))
    left = misfit(got, model)
    if left == 0.0:
        return 0.0
    return left / allowed if allowed > 0 else float("inf")


def matches(got: np.ndarray, model: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    """Whether a model gives the student's output within the tolerance."""
    return misfit(got, model) <= max(tolerance(want, rtol), tolerance(model, rtol))


def plural(count: int, noun: str) -> str:
    """``1 value``, ``3 values``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def difference(got: np.ndarray, want: np.ndarray) -> str:
    """The difference in words: non-finite values counted, else the largest errors."""
    with np.errstate(all="ignore"):
        bad = int(np.sum(~np.isfinite(got) & np.isfinite(want)))
        if bad:
            verb = "is" if bad == 1 else "are"
            return (f"{bad} of its {plural(got.size, 'value')} {verb} not finite "
                    f"(nan or inf)")
        err = np.abs(got - want)
        rel = err / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
        return f"max abs error {np.max(err):.2g}, max rel error {np.max(rel):.2g}"


#: Spaces a line is never broken at: around the operators of a formula.
_KEEP = (" - ", " + ", " = ", " * ", " / ")


def wrap(lines: list[str], continuation: str = "    ") -> str:
    """The report: each line wrapped to :data:`WIDTH`, continuations indented deeper.

    A line is not broken inside ``a - b``, ``a = b`` and the like (short formulas);
    its continuation lines are indented by ``continuation`` more than it.
    """
    out = []
    for line in lines:
        for part in line.split("\n"):
            indent = part[: len(part) - len(part.lstrip())]
            for op in _KEEP:
                part = part.replace(op, op.replace(" ", "\0"))
            text = textwrap.fill(part, WIDTH, subsequent_indent=indent + continuation,
                                 break_on_hyphens=False, break_long_words=True)
            out.append(text.replace("\0", " "))
    return "\n".join(out)


def diagnosis(texts: list[str], remainder: bool) -> str:
    """The diagnosis line for one bug, or for two at once."""
    if len(texts) == 1:
        line = f"Diagnosis: {texts[0]}."
    else:
        line = f"Diagnosis: two bugs at once. First, {texts[0]}. Second, {texts[1]}."
    if remainder:
        line += (" (This explains nearly all of the difference; a smaller one "
                 "remains, so look for a second, smaller slip too.)")
    return line


def ambiguous(texts: list[str]) -> str:
    """The diagnosis line when two known bugs explain the outputs equally well."""
    return ("Diagnosis: the outputs fit more than one known bug equally well: "
            + "; or ".join(texts) + ".")


def hint_for(exc: BaseException) -> str:
    """A hint for the exceptions students commonly meet, or ''."""
    text = str(exc)
    if "leaf Variable that requires grad" in text and "in-place" in text:
        return ("Hint: step() changes the parameters in place, which autograd "
                "forbids on tensors that require grad: decorate step with "
                "@torch.no_grad() (as torch.optim.Adam does), or update the "
                "parameters inside `with torch.no_grad():`.")
    if "NoneType" in text:
        return ("Hint: on some steps some parameters have no gradient (their .grad is "
                "None): skip them, as torch.optim.Adam does.")
    return ""
