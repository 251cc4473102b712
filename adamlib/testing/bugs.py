r"""The known bugs: what a student reads for each, a model of the step with the bug, and
the diagnosis that fits those models to what the student's code returned.

A bug is a set of switches of one model of Adam's step (:func:`model_step`, in float64,
as ``torch.optim.Adam`` takes it). Some bugs can be written in more than one way (the
bias-corrected moments returned: both, or only one of them); each way is a *variant*,
and a bug fits when one of its variants does. :func:`diagnose` fits every known bug, then
every two of them together, to the student's outputs on every case, and names the bug
whose model explains the outputs (:func:`adamlib.testing.report.unexplained` at most 1
on every output of every case) clearly better than any other.

Kingma & Ba's "efficient" form (their section 2) folds the bias corrections into the
step size, :math:`\alpha_t = \alpha \sqrt{1-\beta_2^t} / (1-\beta_1^t)`, and adds
:math:`\hat\epsilon` to :math:`\sqrt{v_t}` before any correction:

.. math::

    \theta_t = \theta_{t-1} - \alpha_t\, m_t / (\sqrt{v_t} + \hat\epsilon)
             = \theta_{t-1} - \alpha\, \hat m_t / \bigl(\sqrt{\hat v_t}
               + \hat\epsilon / \sqrt{1-\beta_2^t}\bigr),

which is Algorithm 1 with :math:`\epsilon = \hat\epsilon / \sqrt{1-\beta_2^t}`. With
:math:`\hat\epsilon = \epsilon` (the bug, ``efficient_form``) it differs from Algorithm 1;
with :math:`\hat\epsilon = \epsilon \sqrt{1-\beta_2^t}` it is Algorithm 1, and passes.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Mapping

import numpy as np

from . import report

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
    "corrections_swapped": (
        "the bias corrections are swapped: m is divided by 1 - beta2^t and v by "
        "1 - beta1^t; m's correction uses beta1, v's uses beta2"),
    "corrections_power_misplaced": (
        "the bias corrections raise the wrong thing to the power t: they are 1 - beta1^t and "
        "1 - beta2^t, not (1 - beta1)^t and (1 - beta2)^t"),
    "corrections_without_t": (
        "the bias corrections leave out the step number: they are 1 - beta1^t and "
        "1 - beta2^t, which change at every step, not the constants 1 - beta1 and "
        "1 - beta2"),
    "t_plus_one": (
        "the step number is off by one: the bias corrections use t + 1 where they should "
        "use t (t counts from 1: the first step has t = 1)"),
    "t_minus_one": (
        "the step number is off by one, as if the step counter started at 0: the bias "
        "corrections use t - 1 where they should use t, so the first step divides by "
        "1 - beta^0 = 0 (inf or nan, silently with NumPy arrays); t counts from 1, and "
        "1 - beta^t is then 1 - beta"),
    "eps_inside_sqrt": (
        "eps is added inside the square root: it belongs outside, added to the square root "
        "of the corrected second moment"),
    "efficient_form": (
        "eps is added to sqrt(v) before the bias corrections: this is the 'efficient' form "
        "of Kingma & Ba's section 2 (step size lr sqrt(1 - beta2^t) / (1 - beta1^t), "
        "eps-hat added to sqrt(v_t)), torch.optim.Adam's formula until mid-2019. It is "
        "Algorithm 1 with eps = eps-hat / sqrt(1 - beta2^t), a larger eps in the early "
        "steps, so with eps-hat = eps it is not the Adam this exercise asks for: add eps to "
        "sqrt(v_hat), as Algorithm 1 does (the efficient form passes only with eps-hat = "
        "eps sqrt(1 - beta2^t))"),
    "eps_after_division": (
        "eps is added after the division (m_hat / sqrt(v_hat) + eps): it belongs in the "
        "denominator, added to sqrt(v_hat) before dividing"),
    "no_sqrt": (
        "the square root is missing: the update divides by the corrected second moment "
        "itself instead of by its square root"),
    "betas_swapped": (
        "beta1 and beta2 are swapped: beta1 belongs to the first moment m (the gradient), "
        "beta2 to the second moment v (the squared gradient)"),
    "abs_grad": (
        "the second moment averages the gradient's absolute value |g| instead of its "
        "square g^2"),
    "v_of_g": (
        "the second moment averages the gradient g itself instead of its square g^2 (v "
        "can then be negative, and its square root nan)"),
    "ema_weights_swapped": (
        "the moving averages weigh the wrong way round: beta multiplies the old average and "
        "1 - beta the new gradient (m = beta1 m + (1 - beta1) g), not the reverse"),
    "lr_ignored": "the learning rate lr is not applied to the update (the step is as if lr = 1)",
    "lr_twice": (
        "the learning rate is applied twice (the step is scaled by lr^2): multiply by lr "
        "once"),
    "ascent": "the update has the wrong sign: Adam subtracts its step from the parameter",
    "update_before_moments": (
        "the parameter is updated with the moments from before this step (m and v are "
        "updated after the parameter): update m and v with the new gradient first, then "
        "the parameter with them"),
    "stale_moments": (
        "the moments returned are the ones from before the update: return the new m and v "
        "(the parameter itself is right)"),
    "corrected_moments_returned": (
        "the moments returned (and so carried to the next step) are the bias-corrected "
        "m_hat and v_hat: return the raw moving averages m and v; the corrections are "
        "applied afresh at every step, to the raw averages"),
    "fresh_state": (
        "the m and v passed in are ignored (the moments start from zero at every call): "
        "the step must update the moments it is given"),
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
    "max_of_grad_squared": (
        "the running maximum is taken over the squared gradients g^2: AMSGrad (Reddi et "
        "al., and torch.optim.Adam) keeps the moving average v and takes the maximum of "
        "its values, v_max = max(v_max, v)"),
}

#: The known bugs of an optimizer class that a single step cannot have, by name, with the
#: diagnosis a student reads. The optimizer grader also knows most bugs of a step.
OPTIMIZER_BUGS: dict[str, str] = {
    "counter_per_update": (
        "the step counter t goes up once for every parameter tensor updated, not once per "
        "step: with several parameter tensors the bias corrections use a t that is too large"),
    "counter_global": (
        "one step counter serves all parameters: torch.optim.Adam counts, for each parameter "
        "tensor, the steps at which it had a gradient, so a tensor that joins late (or "
        "pauses) keeps its own count, starting at t = 1"),
    "counter_from_zero": (
        "the step counter starts at 0: the first step uses t = 0, where the bias "
        "corrections divide by 1 - beta^0 = 0 (inf or nan, silently with tensors); "
        "increase state['step'] before using it, so that the first step has t = 1"),
    "counter_ahead": (
        "the step counter is one ahead: the first step uses t = 2 (the counter starts at 1 "
        "and is increased before it is used); the first step has t = 1"),
    "fresh_state": (
        "the state is created anew at every step (m and v start from zero and t from 1 "
        "each time): create it only when self.state[p] is still empty"),
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
    "decay_after_update": ADAMW_BUGS["decay_after_update"],
    "decay_without_lr": ADAMW_BUGS["decay_without_lr"],
    "maximize_ignored": (
        "maximize=True is accepted but ignored: a maximizing Adam steps up the gradient "
        "(it negates the gradient before the moments are updated)"),
    "amsgrad_ignored": (
        "amsgrad=True is accepted but ignored: AMSGrad divides by the running maximum of "
        "v, kept in the state beside it"),
    "lr_frozen": (
        "the learning rate is read once, when the optimizer is built, so a scheduler has no "
        "effect: read each param group's 'lr' at every step"),
}

#: The step bugs the optimizer grader also looks for (a step function's bugs that an
#: optimizer can have too).
OPTIMIZER_STEP_BUGS = tuple(k for k in STEP_BUGS if k not in {
    "stale_moments", "t_plus_one", "t_minus_one", "fresh_state"})

#: AMSGrad's bugs the optimizer grader also looks for, when the class takes ``amsgrad``
#: (its "max_unused" and "max_not_kept" are, for a class, ``amsgrad_ignored``).
OPTIMIZER_AMSGRAD_BUGS = ("max_of_corrected", "max_replaces_v", "max_of_grad_squared")

#: Each bug's variants (sets of model switches); a bug not listed has one, its own name.
VARIANTS: dict[str, list[frozenset]] = {
    "corrected_moments_returned": [frozenset(s) for s in (
        {"m_hat_returned", "v_hat_returned"}, {"m_hat_returned"}, {"v_hat_returned"})],
    "eps_after_division": [frozenset({"eps_after_division"}), frozenset({"eps_after_step"})],
    "shared_state": [frozenset(s) for s in (
        {"shared_state"}, {"shared_state", "counter_per_update"},
        {"shared_state", "counter_global"})],
    "counter_from_zero": [frozenset({"t_minus_one"})],
    "counter_ahead": [frozenset({"t_plus_one"})],
    "fresh_state": [frozenset({"fresh_state", "counter_reset"})],
    "eps_inside_sqrt": [frozenset({"eps_inside_sqrt"}), frozenset({"eps2_inside_sqrt"})],
    "corrections_power_misplaced": [frozenset(s) for s in (
        {"power_misplaced_m", "power_misplaced_v"}, {"power_misplaced_m"},
        {"power_misplaced_v"})],
    "corrections_without_t": [frozenset(s) for s in (
        {"without_t_m", "without_t_v"}, {"without_t_m"}, {"without_t_v"})],
    "max_of_grad_squared": [frozenset({"max_of_grad_squared"}),
                            frozenset({"max_of_grad_squared", "max_uncorrected"})],
    "l2_instead_of_decoupled": [frozenset({"decay_as_l2"})],
    "weight_decay_ignored": [frozenset({"decay_missing"})],
}


def variants(name: str) -> list[frozenset]:
    """The sets of model switches that are ways to write bug ``name``."""
    return VARIANTS.get(name, [frozenset([name])])


def model_step(param, grad, m, v, v_max, t, lr, beta1, beta2, eps, weight_decay=0.0,
               decoupled=True, amsgrad=False, maximize=False, bugs=frozenset()):
    """Adam's step as torch.optim.Adam takes it, in float64, with known bugs switched on.

    Returns ``(param, m, v, v_max)``. Used only to diagnose: the verdict comes from
    adamlib's reference.
    """
    with np.errstate(all="ignore"):  # some bugs divide by zero (t - 1 at t = 1)
        return _model_step(param, grad, m, v, v_max, t, lr, beta1, beta2, eps,
                           weight_decay, decoupled, amsgrad, maximize, bugs)


def _model_step(param, grad, m, v, v_max, t, lr, beta1, beta2, eps, weight_decay,
                decoupled, amsgrad, maximize, bugs):
    m_in, v_in = m, v
    if "fresh_state" in bugs:
        m, v, v_max = np.zeros_like(m), np.zeros_like(v), np.zeros_like(v_max)
    if "betas_swapped" in bugs:
        beta1, beta2 = beta2, beta1
    step_lr = 1.0 if "lr_ignored" in bugs else lr * lr if "lr_twice" in bugs else lr
    t = t + 1 if "t_plus_one" in bugs else t - 1 if "t_minus_one" in bugs else t
    p, g = param, -grad if maximize and "maximize_ignored" not in bugs else grad
    if weight_decay and "decay_missing" not in bugs:
        if decoupled and "decay_as_l2" not in bugs or "decoupled_instead_of_l2" in bugs:
            if "decay_without_lr" in bugs:
                p = p * (1 - weight_decay)
            elif "decay_after_update" not in bugs:
                p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    g2 = np.abs(g) if "abs_grad" in bugs else g if "v_of_g" in bugs else g * g
    if "ema_weights_swapped" in bugs:
        m_new, v_new = (1 - beta1) * m + beta1 * g, (1 - beta2) * v + beta2 * g2
    else:
        m_new, v_new = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g2
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    if "power_misplaced_m" in bugs:
        bc1 = (1 - beta1) ** t
    if "power_misplaced_v" in bugs:
        bc2 = (1 - beta2) ** t
    if "without_t_m" in bugs:
        bc1 = 1 - beta1
    if "without_t_v" in bugs:
        bc2 = 1 - beta2
    if "corrections_swapped" in bugs:
        bc1, bc2 = bc2, bc1
    if bugs & {"no_bias_correction", "no_m_correction"}:
        bc1 = 1.0
    if bugs & {"no_bias_correction", "no_v_correction"}:
        bc2 = 1.0
    v_max_new, second = v_max, v_new
    if amsgrad and "amsgrad_ignored" not in bugs:
        if "max_of_corrected" in bugs:
            v_max_new = np.maximum(v_max, v_new / bc2)
            bc2 = 1.0
        elif "max_of_grad_squared" in bugs:
            v_max_new = np.maximum(v_max, g2)
            bc2 = 1.0 if "max_uncorrected" in bugs else bc2
        else:
            v_max_new = np.maximum(v_max, v_new)
        if "max_unused" not in bugs:
            second = v_max_new
    m_hat, v_hat = m_new / bc1, second / bc2
    if "update_before_moments" in bugs:
        m_hat, v_hat = m / bc1, v / bc2
    if "eps_inside_sqrt" in bugs:
        step = step_lr * m_hat / np.sqrt(v_hat + eps)
    elif "eps2_inside_sqrt" in bugs:
        step = step_lr * m_hat / np.sqrt(v_hat + eps * eps)
    elif "no_sqrt" in bugs:
        step = step_lr * m_hat / (v_hat + eps)
    elif "efficient_form" in bugs:
        step = step_lr * np.sqrt(bc2) / bc1 * m_new / (np.sqrt(second) + eps)
    elif "eps_after_division" in bugs:
        step = step_lr * (m_hat / np.sqrt(v_hat) + eps)
    elif "eps_after_step" in bugs:
        step = step_lr * m_hat / np.sqrt(v_hat) + eps
    else:
        step = step_lr * m_hat / (np.sqrt(v_hat) + eps)
    p = p + step if "ascent" in bugs else p - step
    if weight_decay and decoupled and "decay_after_update" in bugs:
        p = p * (1 - lr * weight_decay)
    if "m_hat_returned" in bugs:
        m_new = m_hat
    if "v_hat_returned" in bugs:
        v_new = v_new / bc2
    if "stale_moments" in bugs:
        m_new, v_new = m_in, v_in
    if "max_replaces_v" in bugs:
        v_new = v_max_new
    if "max_not_kept" in bugs:
        v_max_new = v_max
    return p, m_new, v_new, v_max_new


def diagnose(names: Iterable[str], texts: Mapping[str, str],
             fit: Callable[[frozenset], tuple[float, bool]]) -> str:
    """The diagnosis line: the known bug (or two) whose model explains the outputs.

    Parameters
    ----------
    names : iterable of str
        The candidate bugs (keys of ``texts``; their variants from :func:`variants`).
    texts : mapping
        The sentence a student reads for each bug.
    fit : callable
        ``fit(switches) -> (unexplained, exact)``: the largest
        :func:`adamlib.testing.report.unexplained` over every output of every case (at
        most 1 when the model explains them; may stop early with inf above 1) and whether
        the model matches within the tolerance everywhere.

    Returns
    -------
    str
        One bug, when its model explains the outputs at least ten times better than the
        next; else two at once, the same way; else the known bugs that fit equally well;
        else a line saying that none of the known bugs explains the outputs.
    """
    names = list(names)

    def best(group: tuple[str, ...]) -> tuple[float, bool]:
        scores = [fit(frozenset().union(*choice))
                  for choice in itertools.product(*(variants(k) for k in group))]
        return min(scores, key=lambda s: s[0])

    for size in (1, 2):
        found = sorted(((score, exact, group)
                        for group in itertools.combinations(names, size)
                        for score, exact in [best(group)] if score <= 1.0),
                       key=lambda s: s[0])
        if not found:
            continue
        score, exact, group = found[0]
        if len(found) == 1 or score < 0.1 * found[1][0]:
            return report.diagnosis([texts[k] for k in group], remainder=not exact)
        if size == 1:
            return report.ambiguous([texts[k] for _, _, (k,) in found[:2]])
        break
    return ("Diagnosis: none of the known bugs (nor two of them together) explains these "
            "outputs; compare each line of your code with Algorithm 1.")
