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


ADAM_BUGGY = [no_bias_correction, no_m_correction, no_v_correction, t_plus_one, t_minus_one,
              eps_inside_sqrt, no_sqrt, betas_swapped, abs_grad, ema_weights_swapped,
              lr_ignored, ascent, stale_moments]


def diagnosis(check, fn):
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


def test_every_known_adam_bug_has_a_written_out_implementation():
    assert sorted(f.__name__ for f in ADAM_BUGGY) == sorted(STEP_BUGS)


@pytest.mark.parametrize("fn", ADAM_BUGGY, ids=lambda f: f.__name__)
def test_each_adam_bug_is_caught_and_named(fn):
    message = diagnosis(check_adam_step, fn)
    assert message.startswith("adam_step is wrong on case ")
    assert f"Diagnosis: {STEP_BUGS[fn.__name__]}." in message
    assert "param: " in message and "m: " in message and "v: " in message


def test_the_messages_of_different_bugs_differ():
    messages = [diagnosis(check_adam_step, fn).splitlines()[-1] for fn in ADAM_BUGGY]
    assert len(set(messages)) == len(messages)


def test_the_message_shows_the_case_and_the_outputs_that_differ():
    message = diagnosis(check_adam_step, stale_moments)
    assert message.splitlines()[:5] == [
        "adam_step is wrong on case 1 of 12:",
        "  shape (3,), float64, step t = 1, lr = 0.001, beta1 = 0.9, beta2 = 0.999, "
        "eps = 1e-08; gradients of size about 1; m and v zero (the first step)",
        "  param: right",
        "  m: differs: max abs error 0.054, max rel error 1",
        "  v: differs: max abs error 0.00029, max rel error 1",
    ]


def test_a_bug_seen_only_on_later_cases_reports_the_first_failing_one():
    message = diagnosis(check_adam_step, eps_inside_sqrt)
    assert message.startswith("adam_step is wrong on case 3 of 12 (the cases before it passed):")
    assert "eps = 0.001" in message.splitlines()[1]
    assert "m: right" in message and "v: right" in message


def test_no_message_shows_the_reference_code():
    source = inspect.getsource(adamlib.adam_step)
    code_lines = [line.split("#")[0].strip() for line in source.splitlines()]
    code_lines = [line for line in code_lines if len(line) > 12 and not line.startswith(('"', "r\""))]
    for fn in ADAM_BUGGY:
        message = diagnosis(check_adam_step, fn)
        assert not any(line in message for line in code_lines), fn.__name__
        assert "np." not in message and "sqrt(" not in message


def test_two_bugs_at_once_are_both_named():
    def two_bugs(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * np.abs(grad)            # |g|
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        return param - lr * m_hat / np.sqrt(v_hat + eps), m, v  # eps inside

    message = diagnosis(check_adam_step, two_bugs)
    assert "two bugs at once" in message
    assert STEP_BUGS["abs_grad"] in message and STEP_BUGS["eps_inside_sqrt"] in message


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
        "adam_step raised ValueError: not yet\n  on case 1 of 12: shape (3,)")
    assert diagnosis(check_adam_step, two_outputs).startswith(
        "adam_step must return the tuple (param, m, v); it returned tuple of length 2")
    assert diagnosis(check_adam_step, flat).startswith(
        "adam_step: the param returned has shape (6,); expected (2, 3), the shape of param\n"
        "  (case 2 of 12")


def test_a_failure_is_reported_even_when_a_later_case_raises():
    def fails_then_raises(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        if param.dtype == np.float32:
            raise TypeError("float32 not supported")
        return no_sqrt(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    message = diagnosis(check_adam_step, fails_then_raises)
    assert message.startswith("adam_step is wrong on case 1 of 12:")
    assert message.endswith(
        "Diagnosis: none, since not every case ran (on case 9, adam_step raised TypeError).")


def test_a_division_by_zero_at_the_first_step_gets_a_hint():
    def python_floats(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        step_size = lr / (1 - beta1 ** (t - 1))  # a Python float: raises at t = 1
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        return param - step_size * m / (np.sqrt(v / (1 - beta2**t)) + eps), m, v

    message = diagnosis(check_adam_step, python_floats)
    assert message.startswith("adam_step raised ZeroDivisionError")
    assert "is the step number off by one?" in message


def test_float32_results_are_held_to_float32_tolerance():
    def float32_sloppy(param, grad, m, v, t, *, lr, beta1, beta2, eps):
        out = adam_new_arrays(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        return tuple(a.astype(np.float32) for a in out)  # float64 cases rounded to float32

    assert "float64" in diagnosis(check_adam_step, float32_sloppy).splitlines()[1]


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
    assert message.startswith("adamw_step is wrong on case ")
    assert f"Diagnosis: {ADAMW_BUGS.get(bug) or STEP_BUGS[bug]}." in message


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


@pytest.mark.parametrize("fn", [amsgrad, amsgrad_in_place], ids=lambda f: f.__name__)
def test_correct_amsgrad_steps_pass_silently(fn):
    assert check_amsgrad_step(fn) is None


@pytest.mark.parametrize("fn", [max_unused, max_not_kept, max_of_corrected, max_replaces_v],
                         ids=lambda f: f.__name__)
def test_each_amsgrad_bug_is_caught_and_named(fn):
    message = diagnosis(check_amsgrad_step, fn)
    assert message.startswith("amsgrad_step is wrong on case ")
    assert "v_max: " in message
    assert f"Diagnosis: {AMSGRAD_BUGS[fn.__name__]}." in message


def test_plain_adam_graded_as_amsgrad_is_caught():
    def adam_ignoring_the_max(param, grad, m, v, v_max, t, **hyper):
        return (*adam_new_arrays(param, grad, m, v, t, **hyper), v_max)

    message = diagnosis(check_amsgrad_step, adam_ignoring_the_max)
    assert "v_max: differs" in message
    assert "two bugs at once" in message
    assert AMSGRAD_BUGS["max_unused"] in message and AMSGRAD_BUGS["max_not_kept"] in message


# -- the battery can tell the bugs apart -----------------------------------------------------
@pytest.mark.parametrize("variant", ["adam", "adamw", "amsgrad"])
def test_the_battery_tells_every_two_known_bugs_apart(variant):
    """A diagnosis is given only when the outputs match one bug on every case; this holds
    only if no two bugs (nor a bug and the correct step) agree on every case."""
    from adamlib.testing import _VARIANTS, RTOL, _close

    v = _VARIANTS[variant]
    arrays = [c.arrays(seed=i) for i, c in enumerate(v.cases)]
    models = {None: [v.reference(a, c) for a, c in zip(arrays, v.cases)]}
    for bug in v.bugs:
        models[bug] = [v.model(a, c, frozenset([bug])) for a, c in zip(arrays, v.cases)]
    # The model without bugs is the reference.
    for a, c, ref in zip(arrays, v.cases, models[None]):
        assert all(_close(x, y, 1e-13) for x, y in zip(v.model(a, c, frozenset()), ref))
    names = list(models)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            apart = [not all(_close(p, q, RTOL[np.dtype(c.dtype)]) for p, q in zip(ox, oy))
                     for ox, oy, c in zip(models[x], models[y], v.cases)]
            assert any(apart), (x, y)
