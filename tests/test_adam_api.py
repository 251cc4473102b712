"""adamlib.Adam's interface: validation, failed steps that change nothing, internals, state files."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from conftest import SHAPES, random_grads


def make(dtype=np.float64, seed=0, **options):
    rng = np.random.default_rng(seed)
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
    return adamlib.Adam(params, **options), rng


def trained(steps=5, **options):
    opt, rng = make(**options)
    for _ in range(steps):
        opt.step(random_grads(rng, SHAPES, np.float64))
    return opt, rng


def snapshot(opt: adamlib.Adam):
    return copy.deepcopy(([p.copy() for p in opt.params], opt.state_dict()))


def assert_unchanged(opt: adamlib.Adam, before) -> None:
    params, state = before
    for p, q in zip(opt.params, params):
        np.testing.assert_array_equal(p, q)
    after = opt.state_dict()
    assert after.keys() == state.keys()
    for key, value in state.items():
        if isinstance(value, list):
            for a, b in zip(after[key], value, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            assert after[key] == value, key


# -- hyperparameters ---------------------------------------------------------------------

BAD_HYPERPARAMETERS = [
    ({"lr": -1e-3}, "lr"),
    ({"lr": math.nan}, "lr"),
    ({"lr": math.inf}, "lr"),
    ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
    ({"betas": (-0.1, 0.999)}, r"betas\[0\]"),
    ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ({"betas": (0.9, math.nan)}, r"betas\[1\]"),
    ({"betas": (0.9,)}, "betas must be a pair"),
    ({"eps": -1e-8}, "eps"),
    ({"eps": math.nan}, "eps"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"weight_decay": math.nan}, "weight_decay"),
]


@pytest.mark.parametrize("options,name", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_are_refused_by_name(options, name):
    with pytest.raises(ValueError, match=name):
        adamlib.Adam([np.zeros(3)], **options)


def test_error_message_states_the_valid_range():
    with pytest.raises(ValueError, match=r"betas\[1\] \(beta2\) must be in \[0, 1\), got 1.0"):
        adamlib.Adam([np.zeros(3)], betas=(0.9, 1.0))


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_non_numbers_are_refused_with_a_type_error(value):
    with pytest.raises(TypeError, match="lr must be a real number"):
        adamlib.Adam([np.zeros(3)], lr=value)


def test_boundary_values_are_accepted():
    opt = adamlib.Adam([np.zeros(3)], lr=0.0, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0)
    assert opt.betas == (0.0, 0.0)


def test_setting_a_bad_learning_rate_between_steps_is_refused_and_keeps_the_old_one():
    opt, _ = make(lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.lr == 0.1


@pytest.mark.parametrize(
    "params,error,match",
    [
        ([], ValueError, "empty"),
        (np.zeros(3), TypeError, "single ndarray"),
        ([[1.0, 2.0]], TypeError, r"params\[0\]: expected a NumPy array"),
        ([np.zeros(3, dtype=np.int64)], TypeError, r"params\[0\]: expected dtype float16"),
        ([np.zeros(3, dtype=np.complex128)], TypeError, r"params\[0\]"),
    ],
)
def test_bad_params_are_refused(params, error, match):
    with pytest.raises(error, match=match):
        adamlib.Adam(params)


def test_read_only_and_repeated_params_are_refused():
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        adamlib.Adam([ro])
    p = np.zeros(3)
    with pytest.raises(ValueError, match="more than once"):
        adamlib.Adam([p, p])


# -- a failed step changes nothing -------------------------------------------------------

BAD_GRADS = [
    (lambda g: g[:-1], ValueError, "expected 3 arrays"),
    (lambda g: g + [np.zeros(2)], ValueError, "expected 3 arrays"),
    (lambda g: [g[0], np.zeros(6), g[2]], ValueError, r"grads\[1\]: expected shape \(5,\)"),
    (lambda g: [g[0].T, g[1], g[2]], ValueError, r"grads\[0\]: expected shape \(3, 4\)"),
    (lambda g: [g[0], g[1], g[2].astype(np.complex128)], TypeError, r"grads\[2\]: dtype complex128"),
    (lambda g: [g[0], g[1].astype(object), g[2]], TypeError, r"grads\[1\]: dtype object"),
]


@pytest.mark.parametrize("corrupt,error,match", BAD_GRADS)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_a_step_with_bad_grads_raises_before_changing_anything(corrupt, error, match, amsgrad):
    opt, rng = trained(amsgrad=amsgrad, weight_decay=0.1, decoupled_weight_decay=True)
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.step(corrupt(random_grads(rng, SHAPES, np.float64)))
    assert_unchanged(opt, before)
    assert opt.t == 5


def test_a_float64_gradient_is_refused_for_float32_params_and_nothing_changes():
    opt, rng = make(np.float32)
    before = snapshot(opt)
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype float64 cannot be safely cast .* float32"):
        opt.step(random_grads(rng, SHAPES, np.float64))
    assert_unchanged(opt, before)


def test_a_safely_castable_gradient_is_cast():
    rng = np.random.default_rng(3)
    grads32 = random_grads(rng, SHAPES, np.float32)
    a, _ = make(np.float64)
    b, _ = make(np.float64)
    a.step(grads32)
    b.step([g.astype(np.float64) for g in grads32])
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)
        assert p.dtype == np.float64


def test_step_never_writes_into_the_gradients():
    opt, rng = make(maximize=True, weight_decay=0.1, amsgrad=True)
    grads = random_grads(rng, SHAPES, np.float64)
    copies = [g.copy() for g in grads]
    opt.step(grads)
    for g, c in zip(grads, copies):
        np.testing.assert_array_equal(g, c)


def test_warnings_as_errors_cannot_abort_a_step_halfway():
    """A float16 step that makes NaN must not raise midway when NumPy warnings are errors."""
    p = np.array([1.0, 2.0], dtype=np.float16)
    opt = adamlib.Adam([p])
    with np.errstate(all="raise"):
        opt.step([np.zeros(2, dtype=np.float16)])
    assert opt.t == 1 and np.all(np.isnan(p))


# -- properties of the algorithm ---------------------------------------------------------

@given(
    g=st.lists(st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3), min_size=1, max_size=8),
    lr=st.floats(1e-4, 1.0),
)
def test_first_step_moves_each_coordinate_by_lr_against_the_gradient_sign(g, lr):
    g = np.array(g)
    p = np.zeros_like(g)
    opt = adamlib.Adam([p], lr=lr)
    opt.step([g])
    np.testing.assert_allclose(p, -lr * np.sign(g), rtol=1e-5)
    np.testing.assert_allclose(opt.internals().update[0], p, rtol=1e-12)


@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_steps_are_invariant_to_rescaling_the_gradient_when_eps_is_zero(scale, seed):
    a, rng = make(seed=seed, eps=0.0)
    b, _ = make(seed=seed, eps=0.0)
    for _ in range(10):
        grads = [g + 1e-3 for g in random_grads(rng, SHAPES, np.float64)]  # no exact zeros
        a.step(grads)
        b.step([scale * g for g in grads])
    for p, q in zip(a.params, b.params):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_without_bias_correction_the_first_step_is_inflated_by_1_minus_beta1_over_sqrt_1_minus_beta2():
    for betas, factor in [((0.9, 0.999), 3.1623), ((0.9, 0.9999), 10.0), ((0.0, 0.9999), 100.0)]:
        p = np.zeros(2)
        adamlib.Adam([p], lr=1e-3, betas=betas, eps=0.0, bias_correction=False).step([np.array([0.5, -2.0])])
        np.testing.assert_allclose(p, [-1e-3 * factor, 1e-3 * factor], rtol=1e-4)


def test_internals_describe_the_last_step():
    opt, rng = trained(steps=4, amsgrad=True)
    before = [p.copy() for p in opt.params]
    opt.lr = 0.01
    opt.step(random_grads(rng, SHAPES, np.float64))
    opt.lr = 0.5  # changing lr afterwards does not rewrite history
    inside = opt.internals()
    bc1, bc2 = 1 - 0.9**5, 1 - 0.999**5
    for i, p in enumerate(opt.params):
        np.testing.assert_array_equal(p, before[i] + inside.update[i])
        np.testing.assert_allclose(inside.m_hat[i], opt.exp_avg[i] / bc1, rtol=1e-15)
        np.testing.assert_allclose(inside.v_hat[i], opt.max_exp_avg_sq[i] / bc2, rtol=1e-15)
        np.testing.assert_allclose(inside.effective_lr[i], 0.01 / (np.sqrt(inside.v_hat[i]) + 1e-8), rtol=1e-12)
        np.testing.assert_allclose(inside.update[i], -inside.effective_lr[i] * inside.m_hat[i], rtol=1e-12, atol=1e-300)


def test_internals_before_any_step_is_an_error():
    opt, _ = make()
    with pytest.raises(RuntimeError, match="call step"):
        opt.internals()


def test_a_step_at_lr_zero_changes_no_parameter():
    opt, rng = make(weight_decay=0.1, decoupled_weight_decay=True, lr=0.0)
    before = [p.copy() for p in opt.params]
    opt.step(random_grads(rng, SHAPES, np.float64))
    for p, q in zip(opt.params, before):
        np.testing.assert_array_equal(p, q)


def test_import_adamlib_needs_no_torch():
    code = "import sys; sys.modules['torch'] = None; import adamlib; print(adamlib.Adam.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Adam"


# -- state: round trips, resuming, corrupt input -----------------------------------------

@pytest.mark.parametrize("amsgrad", [False, True])
def test_save_load_resumes_bit_exactly(tmp_path, amsgrad):
    options = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=amsgrad, maximize=True)
    straight, rng = trained(steps=10, **options)
    path = tmp_path / "ckpt.npz"
    straight.save(path)
    later = [random_grads(rng, SHAPES, np.float64) for _ in range(10)]
    for grads in later:
        straight.step(grads)

    resumed, _ = make(seed=123)  # other parameters, default hyperparameters: all come from the file
    resumed.load(path)
    assert resumed.t == 10 and resumed.amsgrad == amsgrad and resumed.maximize
    for grads in later:
        resumed.step(grads)
    for p, q in zip(resumed.params, straight.params):
        np.testing.assert_array_equal(p, q)
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        for a, b in zip(getattr(resumed, key), getattr(straight, key), strict=True):
            np.testing.assert_array_equal(a, b)


def test_checkpoints_hold_no_pickles(tmp_path):
    opt, _ = trained()
    opt.save(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)


def test_state_dict_round_trip_and_independence():
    opt, rng = trained(amsgrad=True)
    state = opt.state_dict()
    state["exp_avg"][0][...] = 99.0  # a copy: editing it does not touch the optimizer
    assert not np.any(opt.exp_avg[0] == 99.0)
    other, _ = make(amsgrad=False)
    other.load_state_dict(opt.state_dict())
    assert other.amsgrad and other.t == opt.t
    grads = random_grads(rng, SHAPES, np.float64)
    for p, q in zip(other.params, opt.params):
        p[...] = q
    other.step(grads)
    opt.step(grads)
    for p, q in zip(other.params, opt.params):
        np.testing.assert_array_equal(p, q)


def _without(key):
    def corrupt(state):
        del state[key]
    return corrupt


def _set(key, value):
    def corrupt(state):
        state[key] = value
    return corrupt


BAD_STATES = [
    (_without("exp_avg"), "missing keys"),
    (_set("exp_avg", []), r"state\['exp_avg'\]: expected 3 arrays"),
    (_set("exp_avg_sq", [np.zeros((4, 3)), np.zeros(5), np.zeros(())]), r"state\['exp_avg_sq'\]\[0\]: expected a float64 array of shape \(3, 4\)"),
    (_set("exp_avg", [np.zeros((3, 4), np.float32), np.zeros(5), np.zeros(())]), r"state\['exp_avg'\]\[0\]: expected a float64"),
    (_set("amsgrad", True), r"state\['max_exp_avg_sq'\]: expected 3 arrays"),
    (_set("step", -1), "step"),
    (_set("step", 2.5), "step"),
    (_set("lr", -0.1), "lr"),
    (_set("betas", (0.9, 1.5)), r"betas\[1\]"),
    (_set("maximize", "yes"), "maximize"),
]


@pytest.mark.parametrize("corrupt,match", BAD_STATES)
def test_load_state_dict_refuses_a_state_that_does_not_fit_and_changes_nothing(corrupt, match):
    opt, _ = trained()
    state = opt.state_dict()
    corrupt(state)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    assert_unchanged(opt, before)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(b"not an npz file at all" * 10)


def _rewrite(path, change):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


CORRUPT_FILES = [
    (_truncate, "not a readable Adam checkpoint"),
    (_garbage, "not a readable Adam checkpoint"),
    (lambda p: _rewrite(p, lambda a: a.pop("step")), "not an Adam checkpoint"),
    (lambda p: _rewrite(p, lambda a: a.pop("param/2")), "param: expected 3 arrays"),
    (lambda p: _rewrite(p, lambda a: a.update({"param/1": np.zeros(4)})), r"param\[1\]: expected a float64 array of shape \(5,\)"),
    (lambda p: _rewrite(p, lambda a: a.update({"exp_avg/0": np.zeros((3, 4), np.float16)})), r"exp_avg'\]\[0\]"),
    (lambda p: _rewrite(p, lambda a: a.update({"lr": np.array(np.nan)})), "lr"),
    (lambda p: _rewrite(p, lambda a: a.update({"exp_avg/1": np.array([object()] * 5, dtype=object)})), "not a readable Adam checkpoint"),
]


@pytest.mark.parametrize("corrupt,match", CORRUPT_FILES)
def test_loading_a_corrupt_file_raises_and_changes_nothing(tmp_path, corrupt, match):
    opt, _ = trained()
    path = tmp_path / "ckpt.npz"
    opt.save(path)
    corrupt(path)
    target, rng = trained(steps=3)
    before = snapshot(target)
    with pytest.raises(ValueError, match=match):
        target.load(path)
    assert_unchanged(target, before)


def test_loading_a_missing_file_raises_file_not_found(tmp_path):
    opt, _ = make()
    with pytest.raises(FileNotFoundError):
        opt.load(tmp_path / "nope.npz")
