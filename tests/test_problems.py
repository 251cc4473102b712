"""adamlib.lab.problems: gradients against finite differences, minima, shapes, and run()."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adamlib import Adam
from adamlib.baselines import SGD
from adamlib.lab.problems import Problem, mean_log_gap, quadratic, rosenbrock, run, steps_to_reach

coordinate = st.floats(-3.0, 3.0)
condition = st.floats(1.0, 1e3)
angle = st.floats(-math.pi, math.pi)
a_param = st.floats(-2.0, 2.0)
b_param = st.floats(0.1, 200.0)


def problems():
    return st.one_of(
        st.builds(quadratic, condition, angle),
        st.builds(rosenbrock, a_param, b_param),
    )


def central_difference(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(2)])


# -- gradients and minima ------------------------------------------------------------------

@given(problem=problems(), x=coordinate, y=coordinate)
def test_gradient_matches_finite_differences(problem, x, y):
    point = np.array([x, y])
    numeric = central_difference(problem.value, point)
    exact = problem.grad(point)
    assert exact.shape == (2,)
    # central differences err by O(h^2 |f'''|) + O(eps |f| / h): well under 1e-4 here
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-4 * (1 + np.abs(numeric).max()))


@given(problem=problems(), dx=coordinate, dy=coordinate)
def test_minimizer_is_a_zero_of_the_gradient_and_the_lowest_value(problem, dx, dy):
    star = problem.minimizer
    assert problem.value(star) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(problem.grad(star), 0.0, atol=1e-10)
    d = np.array([dx, dy])
    if np.abs(d).max() > 1e-3:
        assert problem.value(star + d) > problem.value(star)


@given(kappa=condition, phi=angle)
def test_quadratic_has_the_requested_condition_number_and_axes(kappa, phi):
    problem = quadratic(kappa, phi)
    hessian = np.stack([problem.grad(e) for e in np.eye(2)])  # f is quadratic: columns of A
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-15)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    np.testing.assert_allclose(eigenvalues, [1 / kappa, 1.0], rtol=1e-9, atol=1e-12)
    if kappa > 1.01:  # the flat direction is the first axis rotated by phi
        flat = eigenvectors[:, 0]
        assert abs(flat @ np.array([math.cos(phi), math.sin(phi)])) == pytest.approx(1.0, abs=1e-9)


def test_rosenbrock_default_minimum_and_classic_start():
    problem = rosenbrock()
    np.testing.assert_array_equal(problem.minimizer, [1.0, 1.0])
    assert problem.value(np.array([-1.2, 1.0])) == pytest.approx(24.2)  # the textbook value


@pytest.mark.parametrize("problem", [quadratic(20, 0.3), rosenbrock(0.5, 10)], ids=["quadratic", "rosenbrock"])
def test_value_and_grad_work_on_batches_of_points(problem):
    points = np.random.default_rng(0).uniform(-2, 2, size=(4, 3, 2))
    values, grads = problem.value(points), problem.grad(points)
    assert values.shape == (4, 3) and grads.shape == (4, 3, 2)
    for idx in np.ndindex(4, 3):
        assert values[idx] == problem.value(points[idx])
        np.testing.assert_array_equal(grads[idx], problem.grad(points[idx]))
    X, Y, Z = problem.grid(n=7)
    assert X.shape == Y.shape == Z.shape == (7, 7)
    assert Z[3, 5] == problem.value(np.array([X[3, 5], Y[3, 5]]))


@given(problem=problems(), c=st.floats(1e-6, 1e6), x=coordinate, y=coordinate)
def test_scaled_problem_multiplies_value_and_gradient(problem, c, x, y):
    point = np.array([x, y])
    scaled = problem.scaled(c)
    assert scaled.value(point) == pytest.approx(c * problem.value(point), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(scaled.grad(point), c * problem.grad(point), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(scaled.minimizer, problem.minimizer)


@pytest.mark.parametrize("make,kwargs,name", [
    (quadratic, dict(condition=0.5), "condition"),
    (quadratic, dict(condition=float("inf")), "condition"),
    (quadratic, dict(angle=float("nan")), "angle"),
    (rosenbrock, dict(b=0.0), "b"),
    (rosenbrock, dict(a=float("inf")), "a"),
])
def test_bad_problem_arguments_are_refused_by_name(make, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(**kwargs)


@pytest.mark.parametrize("c", [0.0, -1.0, float("inf"), float("nan"), True])
def test_bad_scale_is_refused(c):
    with pytest.raises(ValueError, match="c must"):
        rosenbrock().scaled(c)


def test_points_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="x: expected points of shape"):
        rosenbrock().grad(np.zeros(3))


# -- run -----------------------------------------------------------------------------------

def test_run_records_the_same_path_as_a_hand_written_loop():
    problem, x0 = rosenbrock(), [-1.2, 1.0]
    path = run(lambda p: Adam(p, lr=0.05), problem, x0, steps=25)
    x = np.array(x0)
    opt = Adam([x], lr=0.05)
    expected = [x.copy()]
    for _ in range(25):
        opt.step([problem.grad(x)])
        expected.append(x.copy())
    assert path.shape == (26, 2)
    np.testing.assert_array_equal(path, np.array(expected))


def test_run_with_zero_steps_returns_the_start_and_never_mutates_x0():
    x0 = np.array([0.5, -0.5])
    assert run(lambda p: Adam(p), quadratic(), x0, 0).tolist() == [[0.5, -0.5]]
    run(lambda p: SGD(p, lr=0.1), quadratic(), x0, 5)
    np.testing.assert_array_equal(x0, [0.5, -0.5])


def test_gradient_descent_reaches_the_quadratic_minimum():
    # lr = 1 cancels the steep direction at once; the flat one contracts by 1 - 1/kappa per step
    path = run(lambda p: SGD(p, lr=1.0), quadratic(10), [3.0, -2.0], steps=300)
    np.testing.assert_allclose(path[-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(path[1:, 0] / path[:-1, 0], 0.9, rtol=1e-12)


def test_diverging_run_returns_non_finite_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = run(lambda p: SGD(p, lr=0.1), rosenbrock(), [-1.2, 1.0], steps=50)
        values = rosenbrock().value(path)
    first_bad = np.flatnonzero(~np.isfinite(path).all(axis=1))[0]
    assert 0 < first_bad < 50
    assert np.isnan(path[first_bad + 1:]).all()  # the run stopped there
    assert not np.all(np.isfinite(values))


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(x0=[1.0, 2.0, 3.0]), ValueError, "x0"),
    (dict(x0=[float("nan"), 0.0]), ValueError, "x0"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=2.5), ValueError, "steps"),
    (dict(problem="rosenbrock"), TypeError, "problem"),
    (dict(make_optimizer=lambda p: None), TypeError, "make_optimizer"),
])
def test_run_refuses_bad_arguments_by_name(kwargs, error, name):
    arguments = dict(make_optimizer=lambda p: Adam(p), problem=rosenbrock(), x0=[0.0, 0.0], steps=3)
    arguments.update(kwargs)
    with pytest.raises(error, match=name):
        run(**arguments)


def test_problem_is_exported_and_immutable():
    problem = quadratic()
    assert isinstance(problem, Problem)
    with pytest.raises(AttributeError):
        problem.name = "other"  # type: ignore[misc]


def test_steps_to_reach_is_the_first_step_below_the_tolerance():
    problem = quadratic(10)
    path = run(lambda p: SGD(p, lr=1.0), problem, [3.0, -2.0], steps=300)
    t = steps_to_reach(problem, path, 1e-6)
    values = problem.value(path)
    assert t is not None and values[t] < 1e-6 <= values[: t].min()
    assert steps_to_reach(problem, path[:t], 1e-6) is None
    with pytest.raises(ValueError, match="tol"):
        steps_to_reach(problem, path, 0.0)


def test_mean_log_gap_is_the_average_floored_log_suboptimality():
    problem = rosenbrock()
    path = run(lambda p: Adam(p, lr=0.1), problem, [-1.2, 1.0], 1000)
    gap = problem.value(path)
    assert mean_log_gap(problem, path) == pytest.approx(np.mean(np.log10(np.maximum(gap, 1e-12))))
    assert gap.min() < 1e-2 and mean_log_gap(problem, path, floor=1e-2) > mean_log_gap(problem, path)
    diverged = run(lambda p: SGD(p, lr=0.1), problem, [-1.2, 1.0], 50)
    assert mean_log_gap(problem, diverged) == math.inf
    with pytest.raises(ValueError, match="floor"):
        mean_log_gap(problem, path, floor=0.0)


def test_mean_log_gap_prefers_a_run_that_stays_over_one_that_touches_and_leaves():
    # Adam at lr = 1 touches the bottom of the valley first, then is kicked out again
    problem, x0 = rosenbrock(), [-1.2, 1.0]
    settles, leaves = (run(lambda p: Adam(p, lr=lr), problem, x0, 2000) for lr in (0.1, 1.0))
    assert steps_to_reach(problem, leaves, 1e-4) < steps_to_reach(problem, settles, 1e-4)
    assert problem.value(leaves[steps_to_reach(problem, leaves, 1e-4):]).max() > 1e-2
    assert mean_log_gap(problem, settles) < mean_log_gap(problem, leaves)
