"""adamlib.testing's step graders: correct implementations in several styles pass silently;
each known bug, written out as a student would write it, is caught and named."""

import inspect

import numpy as np
import pytest

import adamlib
from adamlib.testing import (
    ADAMW_BUGS, AMSGRAD_BUGS, STEP_BUGS, check_adam_step, check_adamw_step, check_amsgrad_step,
)


# -- correct implementations, in several styles ----------------------------------------------
def adam_new_arrays(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adam_in_place(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param -= lr / (1 - beta1**t) * m / (np.sqrt(v / (1 - beta2**t)) + eps)
    return param, m, v


def adam_in_place_no_return(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    adam_in_place(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def adam_float32_scalars(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """Every scalar cast to the arrays' dtype first: all arithmetic in float32 for float32."""
    dt = param.dtype.type
    b1, b2, one = dt(beta1), dt(beta2), dt(1)
    m = b1 * m + (one - b1) * grad
    v = b2 * v + (one - b2) * np.square(grad)
    m_hat = m / (one - b1 ** dt(t))
    v_hat = v / (one - b2 ** dt(t))
    return (param - dt(lr) * m_hat / (np.sqrt(v_hat) + dt(eps))).astype(param.dtype), m, v


def adam_efficient_form(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """Kingma & Ba's efficient form, as torch writes it."""
    m = m + (1 - beta1) * (grad - m)
    v = beta2 * v + (1 - beta2) * grad * grad
    denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + eps
    return param - (lr / (1 - beta1**t)) * (m / denom), m, v


def adam_elementwise_loop(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    param, m, v = param.copy(), m.copy(), v.copy()
    for i in np.ndindex(param.shape):
        m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
        v[i] = beta2 * v[i] + (1 - beta2) * grad[i] ** 2
        param[i] -= lr * (m[i] / (1 - beta1**t)) / ((v[i] / (1 - beta2**t)) ** 0.5 + eps)
    return param, m, v


@pytest.mark.parametrize("fn", [adamlib.adam_step, adam_new_arrays, adam_in_place,
                                adam_in_place_no_return, adam_float32_scalars,
                                adam_efficient_form, adam_elementwise_loop],
                         ids=lambda f: f.__name__)
def test_correct_adam_steps_pass_silently(fn):
    assert check_adam_step(fn) is None


# -- each known bug of a step, written out ---------------------------------------------------
def no_bias_correction(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param - lr * m / (np.sqrt(v) + eps), m, v


def no_m_correction(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    v_hat = v / (1 - beta2**t)
    return param - lr * m / (np.sqrt(v_hat) + eps), m, v


def no_v_correction(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    return param - lr * m_hat / (np.sqrt(v) + eps), m, v


def t_plus_one(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    t = t + 1  # "the step counter starts at 0, so add one"
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def t_minus_one(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1 ** (t - 1))
    v_hat = v / (1 - beta2 ** (t - 1))
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def eps_inside_sqrt(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / np.sqrt(v_hat + eps), m, v


def no_sqrt(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (v_hat + eps), m, v


def betas_swapped(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta2 * m + (1 - beta2) * grad
    v = beta1 * v + (1 - beta1) * grad**2
    m_hat, v_hat = m / (1 - beta2**t), v / (1 - beta1**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def abs_grad(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * np.abs(grad)
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def ema_weights_swapped(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = (1 - beta1) * m + beta1 * grad
    v = (1 - beta2) * v + beta2 * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def lr_ignored(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - m_hat / (np.sqrt(v_hat) + eps), m, v


def ascent(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param + lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def stale_moments(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m_new = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m_new / (1 - beta1**t), v_new / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def corrections_swapped(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta2**t), v / (1 - beta1**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def efficient_form(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """Kingma & Ba's section 2 form, with eps-hat = eps (torch before 2019)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    alpha_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    return param - alpha_t * m / (np.sqrt(v) + eps), m, v


def eps_after_division(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * (m_hat / np.sqrt(v_hat) + eps), m, v


def v_of_g(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def lr_twice(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    step_size = lr / (1 - beta1**t)  # lr folded into the step size ...
    v_hat = v / (1 - beta2**t)
    return param - lr * step_size * m / (np.sqrt(v_hat) + eps), m, v  # ... and again


def corrected_moments_returned(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m /= 1 - beta1**t  # corrected in place: the corrected moments are carried forward
    v /= 1 - beta2**t
    return param - lr * m / (np.sqrt(v) + eps), m, v


def fresh_state(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m, v = np.zeros_like(param), np.zeros_like(param)  # "initialise the moments"
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def corrections_power_misplaced(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1) ** t, v / (1 - beta2) ** t
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def corrections_without_t(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def update_before_moments(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    param = param - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param, m, v


ADAM_BUGGY = [no_bias_correction, no_m_correction, no_v_correction, t_plus_one, t_minus_one,
              eps_inside_sqrt, no_sqrt, betas_swapped, abs_grad, ema_weights_swapped,
              lr_ignored, ascent, stale_moments, corrections_swapped, efficient_form,
              eps_after_division, v_of_g, lr_twice, corrected_moments_returned, fresh_state,
              corrections_power_misplaced, corrections_without_t, update_before_moments]


def diagnosis(check, fn):
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


def unwrap(message):
    """The report with its wrapped lines joined again (continuations are 4 deeper)."""
    out = []
    for line in message.splitlines():
        depth = len(line) - len(line.lstrip())
        if out and depth >= len(out[-1][0]) - len(out[-1][0].lstrip()) + 4:
            out[-1][1].append(line.strip())
        else:
            out.append((line, [line.rstrip()]))
    return "\n".join(" ".join(parts) for _, parts in out)


def test_every_known_adam_bug_has_a_written_out_implementation():
    assert sorted(f.__name__ for f in ADAM_BUGGY) == sorted(STEP_BUGS)


@pytest.mark.parametrize("fn", ADAM_BUGGY, ids=lambda f: f.__name__)
def test_each_adam_bug_is_caught_and_named(fn):
    message = diagnosis(check_adam_step, fn)
    assert message.startswith(f"{fn.__name__} is wrong on case ")
    assert f"Diagnosis: {STEP_BUGS[fn.__name__]}." in unwrap(message)
    assert "param: " in message and "m: " in message and "v: " in message
    assert "remains" not in message  # the model explains the outputs fully
    assert max(len(line) for line in message.splitlines()) <= 79


def test_the_messages_of_different_bugs_differ():
    messages = [unwrap(diagnosis(check_adam_step, fn)).splitlines()[-1] for fn in ADAM_BUGGY]
    assert len(set(messages)) == len(messages)


def test_the_message_shows_the_case_and_the_outputs_that_differ():
    message = diagnosis(check_adam_step, stale_moments)
    assert message.splitlines()[:6] == [
        "stale_moments is wrong on case 1 of 12:",
        "  shape (3,), float64, step t = 1, lr = 0.001, beta1 = 0.9, beta2 = 0.999,",
        "      eps = 1e-08; gradients of size about 1; m and v zero (the first step)",
        "  param: right",
        "  m: differs: max abs error 0.054, max rel error 1",
        "  v: differs: max abs error 0.00029, max rel error 1",
    ]


def test_a_bug_seen_only_on_later_cases_reports_the_first_failing_one():
    message = diagnosis(check_adam_step, eps_inside_sqrt)
    assert message.startswith(
        "eps_inside_sqrt is wrong on case 3 of 12 (the cases before it passed):")
    assert "eps = 0.001" in unwrap(message).splitlines()[1]
    assert "m: right" in message and "v: right" in message


def test_no_message_shows_the_reference_code():
    source = inspect.getsource(adamlib.adam_step)
    code_lines = [line.split("#")[0].strip() for line in source.splitlines()]
    code_lines = [line for line in code_lines if len(line) > 12 and not line.startswith(('"', "r\""))]
    for fn in ADAM_BUGGY:
        message = diagnosis(check_adam_step, fn)
        assert not any(line in message for line in code_lines), fn.__name__
        assert "np." not in message and "**" not in message


def test_two_bugs_at_once_are_both_named():
    def two_bugs(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * np.abs(grad)            # |g|
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        return param - lr * m_hat / np.sqrt(v_hat + eps), m, v  # eps inside

    message = diagnosis(check_adam_step, two_bugs)
    assert "two bugs at once" in message
    assert STEP_BUGS["abs_grad"] in unwrap(message)
    assert STEP_BUGS["eps_inside_sqrt"] in unwrap(message)


def test_an_unknown_bug_gets_no_diagnosis():
    def half_step(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        new_param, m, v = adamlib.adam_step(param, grad, m, v, t, lr=lr, beta1=beta1,
                                            beta2=beta2, eps=eps)
        return (param + new_param) / 2, m, v

    assert "none of the known bugs" in diagnosis(check_adam_step, half_step)


def test_a_function_that_raises_or_returns_the_wrong_thing_is_told_so():
    def raises(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        raise ValueError("not yet")

    def two_outputs(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        return param, m

    def flat(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        return tuple(a.ravel() for a in adam_new_arrays(param, grad, m, v, t, lr=lr,
                                                           beta1=beta1, beta2=beta2, eps=eps))

    assert diagnosis(check_adam_step, raises).startswith(
        "raises raised ValueError: not yet\n  on case 1 of 12: shape (3,)")
    assert diagnosis(check_adam_step, two_outputs).startswith(
        "two_outputs must return the tuple (param, m, v); it returned tuple of length 2")
    assert unwrap(diagnosis(check_adam_step, flat)).startswith(
        "flat: the param returned has shape (6,); expected (2, 3), the shape of param\n"
        "  (case 2 of 12")


def test_a_failure_is_reported_even_when_a_later_case_raises():
    def fails_then_raises(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        if param.dtype == np.float32:
            raise TypeError("float32 not supported")
        return no_sqrt(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    message = diagnosis(check_adam_step, fails_then_raises)
    assert message.startswith("fails_then_raises is wrong on case 1 of 12:")
    assert unwrap(message).endswith(
        "Diagnosis: none, since not every case ran (on case 9, fails_then_raises raised "
        "TypeError).")


def test_a_division_by_zero_at_the_first_step_gets_a_hint():
    def python_floats(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        step_size = lr / (1 - beta1 ** (t - 1))  # a Python float: raises at t = 1
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        return param - step_size * m / (np.sqrt(v / (1 - beta2**t)) + eps), m, v

    message = diagnosis(check_adam_step, python_floats)
    assert message.startswith("python_floats raised ZeroDivisionError")
    assert "is the step number off by one?" in message


def test_float32_results_are_held_to_float32_tolerance():
    def float32_sloppy(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        out = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        return tuple(a.astype(np.float32) for a in out)  # float64 cases rounded to float32

    message = diagnosis(check_adam_step, float32_sloppy)
    assert "float64" in message.splitlines()[1]
    assert "the outputs of the float64 cases are float32 numbers" in unwrap(message)


def test_not_a_function_is_refused_by_name():
    for check in (check_adam_step, check_adamw_step, check_amsgrad_step):
        with pytest.raises(TypeError, match="fn: expected a function"):
            check(42)


def test_the_grader_leaves_the_global_random_state_alone():
    np.random.seed(3)
    before = np.random.random()
    np.random.seed(3)
    check_adam_step(adam_new_arrays)
    assert np.random.random() == before


# -- AdamW ---------------------------------------------------------------------------------
def adamw(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    param = param * (1 - lr * weight_decay)
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def adamw_in_place(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    param *= 1 - lr * weight_decay
    adam_in_place(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    return param, m, v


def decay_missing(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def decay_as_l2(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    grad = grad + weight_decay * param
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def decay_without_lr(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    param = param - weight_decay * param
    return adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def decay_after_update(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    param, m, v = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2,
                                  eps=eps)
    return param * (1 - lr * weight_decay), m, v


def adamw_no_bias_correction(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
    param = param * (1 - lr * weight_decay)
    return no_bias_correction(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


@pytest.mark.parametrize("fn", [adamw, adamw_in_place], ids=lambda f: f.__name__)
def test_correct_adamw_steps_pass_silently(fn):
    assert check_adamw_step(fn) is None


@pytest.mark.parametrize("fn, bug", [
    (decay_missing, "decay_missing"), (decay_as_l2, "decay_as_l2"),
    (decay_without_lr, "decay_without_lr"), (decay_after_update, "decay_after_update"),
    (adamw_no_bias_correction, "no_bias_correction"),
], ids=lambda x: getattr(x, "__name__", ""))
def test_each_adamw_bug_is_caught_and_named(fn, bug):
    message = diagnosis(check_adamw_step, fn)
    assert message.startswith(f"{fn.__name__} is wrong on case ")
    assert f"Diagnosis: {ADAMW_BUGS.get(bug) or STEP_BUGS[bug]}." in unwrap(message)


# -- AMSGrad -------------------------------------------------------------------------------
def amsgrad(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    v_max = np.maximum(v_max, v)
    m_hat, v_hat = m / (1 - beta1**t), v_max / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v, v_max


def amsgrad_in_place(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    adam_in_place(param, grad, m, v, t, lr=0.0, beta1=beta1, beta2=beta2, eps=eps)
    np.maximum(v_max, v, out=v_max)
    param -= lr / (1 - beta1**t) * m / (np.sqrt(v_max / (1 - beta2**t)) + eps)
    return param, m, v, v_max


def max_unused(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    param, m, v = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2,
                                  eps=eps)
    return param, m, v, np.maximum(v_max, v)


def max_not_kept(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    param, m, v, _ = amsgrad(param, grad, m, v, v_max, t, lr=lr, beta1=beta1, beta2=beta2,
                             eps=eps)
    return param, m, v, v_max


def max_of_corrected(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    v_max = np.maximum(v_max, v / (1 - beta2**t))
    return param - lr * (m / (1 - beta1**t)) / (np.sqrt(v_max) + eps), m, v, v_max


def max_replaces_v(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    param, m, v, v_max = amsgrad(param, grad, m, v, v_max, t, lr=lr, beta1=beta1,
                                 beta2=beta2, eps=eps)
    return param, m, v_max, v_max


def max_of_grad_squared(param, grad, m, v, v_max, t, *, lr, beta1, beta2, eps):
    """The maximum of past squared gradients, as Khare (2023) describes AMSGrad."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    v_max = np.maximum(v_max, grad**2)
    return param - lr * (m / (1 - beta1**t)) / (np.sqrt(v_max) + eps), m, v, v_max


@pytest.mark.parametrize("fn", [amsgrad, amsgrad_in_place], ids=lambda f: f.__name__)
def test_correct_amsgrad_steps_pass_silently(fn):
    assert check_amsgrad_step(fn) is None


@pytest.mark.parametrize("fn", [max_unused, max_not_kept, max_of_corrected, max_replaces_v,
                                max_of_grad_squared], ids=lambda f: f.__name__)
def test_each_amsgrad_bug_is_caught_and_named(fn):
    message = diagnosis(check_amsgrad_step, fn)
    assert message.startswith(f"{fn.__name__} is wrong on case ")
    assert "v_max: " in message
    assert f"Diagnosis: {AMSGRAD_BUGS[fn.__name__]}." in unwrap(message)


def test_plain_adam_graded_as_amsgrad_is_caught():
    def adam_ignoring_the_max(param, grad, m, v, v_max, t, **hyper):
        return (*adam_new_arrays(param, grad, m, v, t, **hyper), v_max)

    message = diagnosis(check_amsgrad_step, adam_ignoring_the_max)
    assert "v_max: differs" in message
    assert "two bugs at once" in message
    assert AMSGRAD_BUGS["max_unused"] in unwrap(message)
    assert AMSGRAD_BUGS["max_not_kept"] in unwrap(message)


# -- more ways to write a bug, and correct steps in unusual styles -----------------------
def eps_after_the_step(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - (lr * m_hat / np.sqrt(v_hat) + eps), m, v


def eps_squared_inside_sqrt(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / np.sqrt(v_hat + eps**2), m, v


def only_m_hat_returned(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    param, m, v = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2,
                                  eps=eps)
    return param, m / (1 - beta1**t), v


def t_from_zero_silent_nan(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """t treated as counting from 0: NumPy divides by zero at t = 1 without raising."""
    t = np.int64(t) - 1
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    bc1, bc2 = 1 - np.float64(beta1) ** t, 1 - np.float64(beta2) ** t
    return param - lr * (m / bc1) / (np.sqrt(v / bc2) + eps), m, v


@pytest.mark.parametrize("fn, bug", [
    (eps_after_the_step, "eps_after_division"),
    (eps_squared_inside_sqrt, "eps_inside_sqrt"),
    (only_m_hat_returned, "corrected_moments_returned"),
    (t_from_zero_silent_nan, "t_minus_one"),
], ids=lambda x: getattr(x, "__name__", ""))
def test_other_ways_to_write_a_bug_get_its_diagnosis(fn, bug):
    assert f"Diagnosis: {STEP_BUGS[bug]}." in unwrap(diagnosis(check_adam_step, fn))


def test_silent_nan_at_the_first_step_is_counted_with_grammar():
    message = diagnosis(check_adam_step, t_from_zero_silent_nan)
    assert "param: differs: 3 of its 3 values are not finite (nan or inf)" in message

    def one_nan(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        param, m, v = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1,
                                      beta2=beta2, eps=eps)
        param[0] = np.nan
        return param, m, v

    assert "1 of its 3 values is not finite" in diagnosis(check_adam_step, one_nan)


def efficient_form_right_eps(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """The section 2 form with eps-hat = eps sqrt(1 - beta2^t): Algorithm 1 exactly."""
    return efficient_form(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2,
                          eps=eps * np.sqrt(1 - beta2**t))


def adam_dtype_throughout(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """Every scalar in the arrays' dtype, in place, through NumPy's ufuncs with out=."""
    f = param.dtype.type
    m *= f(beta1)
    m += f(1 - beta1) * grad
    np.multiply(v, f(beta2), out=v)
    v += f(1 - beta2) * np.square(grad)
    denom = np.sqrt(v / f(1 - beta2**t)) + f(eps)
    np.subtract(param, f(lr / (1 - beta1**t)) * m / denom, out=param)


def adam_lerp_style(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    m = m + (1 - beta1) * (grad - m)
    v = v + (1 - beta2) * (grad * grad - v)
    step = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    return param - step * m / (np.sqrt(v) + eps * np.sqrt(1 - beta2**t)), m, v


def adam_lists(param, grad, m, v, t, *, lr, beta1, beta2, eps):
    """Flat Python lists, returned as lists of the right shape."""
    shape = param.shape
    out = [[], [], []]
    for p, g, mi, vi in zip(param.ravel().tolist(), grad.ravel().tolist(),
                            m.ravel().tolist(), v.ravel().tolist()):
        mi = beta1 * mi + (1 - beta1) * g
        vi = beta2 * vi + (1 - beta2) * g * g
        p -= lr * (mi / (1 - beta1**t)) / ((vi / (1 - beta2**t)) ** 0.5 + eps)
        for k, x in enumerate((p, mi, vi)):
            out[k].append(x)
    return tuple(np.reshape(x, shape) for x in out)


@pytest.mark.parametrize("fn", [efficient_form_right_eps, adam_dtype_throughout,
                                adam_lerp_style, adam_lists], ids=lambda f: f.__name__)
def test_correct_steps_in_other_styles_pass(fn):
    assert check_adam_step(fn) is None


def test_a_bug_with_a_small_second_slip_is_named_with_a_remainder():
    """An AdamW that is L2 and also nudges eps: L2 explains nearly all of the error."""
    def l2_and_eps(param, grad, m, v, t, *, lr, beta1, beta2, eps, weight_decay):
        return adamw(param, grad + weight_decay * param, m, v, t, lr=lr, beta1=beta1,
                     beta2=beta2, eps=eps * 1.5, weight_decay=0.0)

    message = unwrap(diagnosis(check_adamw_step, l2_and_eps))
    assert f"Diagnosis: {ADAMW_BUGS['decay_as_l2']}." in message
    assert "a smaller one remains" in message


def test_a_lambda_is_called_by_the_grader_s_name():
    message = diagnosis(check_adam_step, lambda *a, **k: no_sqrt(*a, **k))
    assert message.startswith("adam_step is wrong on case 1 of 12")


def test_every_message_fits_79_characters():
    for fn in ADAM_BUGGY:
        message = diagnosis(check_adam_step, fn)
        assert max(map(len, message.splitlines())) <= 79, fn.__name__
        assert "1 -\n" not in message and "\n  - beta" not in message  # formulas kept whole


# -- the battery can tell the bugs apart -----------------------------------------------------
@pytest.mark.parametrize("kind", ["adam", "adamw", "amsgrad"])
def test_no_known_bug_explains_another(kind):
    """A diagnosis names a bug whose model explains the outputs; this is right only if the
    model of no other bug (nor the correct step) explains them too, on the battery."""
    from adamlib.testing import report
    from adamlib.testing.bugs import variants
    from adamlib.testing.cases import KINDS

    k = KINDS[kind]
    arrays = [c.arrays(seed=i) for i, c in enumerate(k.cases)]
    refs = [k.reference(a, c) for a, c in zip(arrays, k.cases)]
    # The model without bugs is the reference.
    for a, c, ref in zip(arrays, k.cases, refs):
        tol = 1e-13 if c.dtype == "float64" else c.rtol  # the model computes in the dtype
        assert all(report.close(x, y, tol) for x, y in zip(k.model(a, c, frozenset()), ref))
    runs = {None: [refs]}
    for bug in k.bugs:
        runs[bug] = [[k.model(a, c, sw) for a, c in zip(arrays, k.cases)]
                     for sw in variants(bug)]

    def explains(model, outputs):
        return all(report.unexplained(g, mo, w, c.rtol) <= 1.0
                   for got, mod, ref, c in zip(outputs, model, refs, k.cases)
                   for g, mo, w in zip(got, mod, ref))

    for x in runs:
        for y in runs:
            if x != y and y is not None:
                for out in runs[y]:
                    assert not any(explains(mod, out) for mod in runs[x]), (x, y)
