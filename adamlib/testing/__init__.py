r"""Graders for coursework: check a student's Adam and name the bug when there is one.

Each grader runs the student's code on a battery of cases and compares it with the
reference (:func:`adamlib.adam_step`, :class:`adamlib.Adam`, ``torch.optim.Adam``). A
correct implementation passes silently (the grader returns ``None``), whether it updates
its arrays in place or returns new ones. A wrong one raises ``AssertionError`` with what a
student can act on: the first case that fails, described in words; which output differs
and by how much; and, when the outputs match those of a known bug on every case, that bug,
named in words. No message shows the reference code. Every line of a message is at most
79 characters, and the message calls the student's function or class by its name.

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

The package's modules: ``cases`` (the cases a step is tried on), ``bugs`` (the known bugs,
their models and the diagnosis that fits them to a student's outputs), ``scenarios`` (the
optimizer scenarios), ``report`` (comparisons and messages) and ``graders`` (the graders).

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
AssertionError: no_sqrt is wrong on case 1 of 12:
  shape (3,), float64, step t = 1, lr = 0.001, beta1 = 0.9, beta2 = 0.999,
      eps = 1e-08; gradients of size about 1; m and v zero (the first step)
  param: differs: max abs error 0.0085, max rel error 0.068
  m: right
  v: right
  (tolerance for float64: 1e-09 of the array's largest value)
Diagnosis: the square root is missing: the update divides by the corrected
    second moment itself instead of by its square root.
"""

from . import bugs as _bugs
from .cases import RTOL
from .graders import check_adam_optimizer, check_adam_step, check_adamw_step, check_amsgrad_step
from .report import NotTestedWarning

#: The known bugs of a step, by name, with the diagnosis a student reads.
STEP_BUGS = _bugs.STEP_BUGS
#: The known bugs of AdamW's decoupled weight decay (graded with those of :data:`STEP_BUGS`).
ADAMW_BUGS = _bugs.ADAMW_BUGS
#: The known bugs of AMSGrad's running maximum (graded with those of :data:`STEP_BUGS`).
AMSGRAD_BUGS = _bugs.AMSGRAD_BUGS
#: The known bugs of an optimizer class that a step cannot have (the optimizer grader also
#: knows most of :data:`STEP_BUGS`).
OPTIMIZER_BUGS = _bugs.OPTIMIZER_BUGS

__all__ = ["check_adam_step", "check_adamw_step", "check_amsgrad_step", "check_adam_optimizer",
           "STEP_BUGS", "ADAMW_BUGS", "AMSGRAD_BUGS", "OPTIMIZER_BUGS", "RTOL",
           "NotTestedWarning"]
