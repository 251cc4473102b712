"""adamlib.lab.search: spaces and samples, the expected best of a study, isolation and boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import qmc

from adamlib.lab.search import (
    ALGOPERF_ADAM,
    Axis,
    BoundaryReport,
    SearchSpace,
    boundary_check,
    expected_best,
    isolation,
    sample,
    widen,
)

AXES = [Axis("lr", 1e-4, 1e-2, "log"), Axis("beta1", 0.5, 0.98, "log1m"), Axis("x", -1.0, 3.0, "linear")]


@pytest.mark.parametrize("axis", AXES)
def test_axis_maps_the_unit_interval_onto_its_range_and_back(axis):
    u = np.linspace(0, 1, 11)
    x = axis.from_unit(u)
    assert x[0] == pytest.approx(axis.low, rel=1e-12) and x[-1] == pytest.approx(axis.high, rel=1e-12)
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(axis.to_unit(x), u, atol=1e-12)


def test_log_axes_space_values_evenly_in_log():
    lr = Axis("lr", 1e-4, 1e-2, "log").from_unit([0, 0.5, 1])
    np.testing.assert_allclose(lr, [1e-4, 1e-3, 1e-2], rtol=1e-12)
    b = Axis("beta2", 0.9, 0.999, "log1m").from_unit([0, 0.5, 1])
    np.testing.assert_allclose(1 - b, [0.1, 0.01, 0.001], rtol=1e-9)


def test_algoperf_space_is_the_issues_space():
    ends = {a.name: (a.low, a.high, a.scale) for a in ALGOPERF_ADAM.axes}
    assert ends["lr"] == (1e-4, 1e-2, "log")
    assert (1 - ends["beta1"][1], 1 - ends["beta1"][0], ends["beta1"][2]) == pytest.approx((0.02, 0.5, "log1m"))
    assert ends["beta2"][1] == 0.999 and ends["beta2"][2] == "log1m"
    assert ends["eps"] == (1e-10, 1e-3, "log") and ends["weight_decay"] == (5e-3, 1.0, "log")
    assert ALGOPERF_ADAM.fixed == {"decoupled": True}


@pytest.mark.parametrize("method", ["halton", "sobol", "random"])
def test_samples_lie_in_the_space_and_are_seeded(method):
    a = sample(ALGOPERF_ADAM, 64, method, seed=3)
    b = sample(ALGOPERF_ADAM, 64, method, seed=3)
    c = sample(ALGOPERF_ADAM, 64, method, seed=4)
    for axis in ALGOPERF_ADAM.axes:
        u = axis.to_unit(a[axis.name])
        assert np.all((u >= -1e-12) & (u <= 1 + 1e-12)) and len(u) == 64
        np.testing.assert_array_equal(a[axis.name], b[axis.name])
        assert not np.array_equal(a[axis.name], c[axis.name])
    assert np.all(a["decoupled"])


def test_halton_points_are_scipys_scrambled_halton():
    space = SearchSpace((Axis("a", 0.0, 1.0, "linear"), Axis("b", 0.0, 1.0, "linear")))
    s = sample(space, 10, "halton", seed=7)
    ref = qmc.Halton(2, scramble=True, seed=7).random(10)
    np.testing.assert_allclose(np.column_stack([s["a"], s["b"]]), ref, rtol=0, atol=1e-15)


def test_quasi_random_points_cover_the_cube_more_evenly_than_random_ones():
    d = len(ALGOPERF_ADAM.axes)
    disc = {}
    for method in ("halton", "sobol", "random"):
        vals = []
        for seed in range(5):
            s = sample(ALGOPERF_ADAM, 128, method, seed=seed)
            u = np.column_stack([a.to_unit(s[a.name]) for a in ALGOPERF_ADAM.axes])
            vals.append(qmc.discrepancy(np.clip(u, 0, 1)))
        disc[method] = np.mean(vals)
    assert u.shape[1] == d
    assert disc["halton"] < disc["random"] / 2 and disc["sobol"] < disc["random"] / 2


def test_grid_uses_k_levels_per_axis_and_wastes_them_on_every_axis():
    s = sample(ALGOPERF_ADAM, 40, "grid")
    assert len(s["lr"]) == 2**5                       # 2 levels on each of 5 axes: 32 <= 40 < 3**5
    assert len(np.unique(s["lr"])) == 2               # a grid of 32 tries 2 learning rates
    assert len(np.unique(sample(ALGOPERF_ADAM, 32, "halton")["lr"])) == 32


def test_sobol_needs_a_power_of_two():
    with pytest.raises(ValueError, match="power of 2"):
        sample(ALGOPERF_ADAM, 10, "sobol")


def test_restrict_fixes_the_other_axes():
    space = ALGOPERF_ADAM.restrict(["lr", "beta1"], {"beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0})
    s = sample(space, 8)
    assert space.names == ("lr", "beta1")
    assert np.all(s["eps"] == 1e-8) and np.all(s["weight_decay"] == 0.0) and np.all(s["decoupled"])
    with pytest.raises(ValueError, match="missing"):
        ALGOPERF_ADAM.restrict(["lr"], {"beta1": 0.9})
    with pytest.raises(KeyError, match="momentum"):
        ALGOPERF_ADAM.restrict(["momentum"], {})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="lr", low=1e-2, high=1e-4), "low < high"),
        (dict(name="lr", low=0.0, high=1e-2), "low of log axis"),
        (dict(name="b", low=0.9, high=1.0, scale="log1m"), "high of log1m"),
        (dict(name="lr", low=1e-4, high=1e-2, scale="cubic"), "scale"),
        (dict(name="lr", low=math.nan, high=1e-2), "low"),
        (dict(name="", low=1e-4, high=1e-2), "name"),
    ],
)
def test_bad_axes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Axis(**kwargs)


def test_bad_spaces_and_samples_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        SearchSpace((Axis("lr", 1e-4, 1e-2), Axis("lr", 1e-3, 1e-1)))
    with pytest.raises(ValueError, match="fixed"):
        SearchSpace((Axis("lr", 1e-4, 1e-2),), {"lr": 1e-3})
    with pytest.raises(ValueError, match="axes"):
        SearchSpace(())
    with pytest.raises(ValueError, match="n must"):
        sample(ALGOPERF_ADAM, 0)
    with pytest.raises(TypeError, match="n must be an integer"):
        sample(ALGOPERF_ADAM, 2.5)
    with pytest.raises(ValueError, match="method"):
        sample(ALGOPERF_ADAM, 8, "latin")
    with pytest.raises(TypeError, match="space"):
        sample({"lr": (1e-4, 1e-2)}, 8)


# --- the expected best of n trials -----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=12), st.integers(1, 6))
def test_expected_best_is_exact_for_the_pool(values, n):
    # the expectation over all m**n studies (drawn with replacement), enumerated for small pools
    x = np.array(values)
    m = len(x)
    if m**n > 20_000:
        n = 1
    idx = np.indices((m,) * n).reshape(n, -1)
    exact = x[idx].min(axis=0).mean()
    assert expected_best(x, n, n_boot=10).mean == pytest.approx(exact, abs=1e-9)


def test_expected_best_agrees_with_simulated_studies():
    rng = np.random.default_rng(0)
    pool = rng.lognormal(size=300)
    r = expected_best(pool, 10, n_boot=500)
    studies = pool[rng.integers(0, 300, (50_000, 10))].min(axis=1)
    assert r.mean == pytest.approx(studies.mean(), rel=0.01)
    assert r.spread[0] == pytest.approx(np.percentile(studies, 10), rel=0.05)
    assert r.spread[1] == pytest.approx(np.percentile(studies, 90), rel=0.05)


def test_more_trials_do_better_and_intervals_cover_the_truth():
    rng = np.random.default_rng(1)
    # true distribution: uniform on [0, 1]; expected min of n draws is 1/(n+1)
    covered = 0
    for rep in range(40):
        pool = rng.random(200)
        r = expected_best(pool, 5, n_boot=400, seed=rep)
        covered += r.low <= 1 / 6 <= r.high
    assert covered >= 30                               # 90 % intervals: most of 40 cover 1/6
    means = [expected_best(pool, n, n_boot=50).mean for n in (1, 5, 25, 100)]
    assert np.all(np.diff(means) < 0)


def test_expected_best_for_scores_is_the_mirror_of_losses():
    x = np.array([0.2, 0.9, 0.5, 0.7])
    hi = expected_best(x, 3, lower_is_better=False, n_boot=200)
    lo = expected_best(-x, 3, n_boot=200)
    assert hi.mean == pytest.approx(-lo.mean) and hi.low == pytest.approx(-lo.high)
    assert hi.low <= hi.mean <= hi.high and hi.spread[0] <= hi.spread[1]


def test_differences_of_two_pools():
    rng = np.random.default_rng(2)
    a, b = rng.random(200), rng.random(200) + 0.5
    ra, rb = expected_best(a, 5, seed=1), expected_best(b, 5, seed=2)
    d, lo, hi = ra.minus(rb)
    assert d == pytest.approx(ra.mean - rb.mean) and lo < d < hi < 0


def test_diverged_trials_need_a_fill():
    x = np.array([0.1, np.nan, 0.3, np.inf])
    with pytest.raises(ValueError, match="fill"):
        expected_best(x, 2)
    r = expected_best(x, 1, fill=2.3)
    assert r.mean == pytest.approx((0.1 + 0.3 + 2.3 + 2.3) / 4)


@pytest.mark.parametrize("kwargs, match", [(dict(n=0), "n must"), (dict(n=2, confidence=1.0), "confidence"),
                                           (dict(n=2, n_boot=0), "n_boot")])
def test_expected_best_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_best([1.0, 2.0], **kwargs)
    with pytest.raises(ValueError, match="values"):
        expected_best([1.0], 1)


# --- isolation and the boundary check ---------------------------------------------------------------


def test_isolation_keeps_the_best_trial_of_each_bin():
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, 200)
    loss = (np.log10(lr) + 3) ** 2 + rng.random(200)
    iso = isolation({"lr": lr, "val_loss": loss}, Axis("lr", 1e-4, 1e-2), bins=4)
    np.testing.assert_allclose(iso["edges"], [1e-4, 10**-3.5, 1e-3, 10**-2.5, 1e-2], rtol=1e-12)
    for b in range(4):
        rows = (lr >= iso["edges"][b]) & (lr < iso["edges"][b + 1])
        assert iso["count"][b] == rows.sum() and iso["best"][b] == loss[rows].min()
        assert loss[iso["index"][b]] == iso["best"][b]
    assert iso["count"].sum() == 200


def test_isolation_marks_empty_bins_and_ignores_trials_outside():
    t = {"lr": np.array([2e-4, 5e-2]), "val_loss": np.array([1.0, 0.1])}
    iso = isolation(t, Axis("lr", 1e-4, 1e-2), bins=2)
    assert iso["index"].tolist() == [0, -1] and np.isnan(iso["best"][1])


def test_isolation_treats_diverged_trials_as_worst():
    t = {"lr": np.array([2e-4, 3e-4]), "val_loss": np.array([np.nan, 0.5])}
    assert isolation(t, Axis("lr", 1e-4, 1e-2), bins=1)["index"].tolist() == [1]


def test_boundary_check_flags_a_space_that_is_too_narrow():
    space = SearchSpace((Axis("lr", 1e-5, 1e-4), Axis("eps", 1e-10, 1e-6)))
    s = sample(space, 64, seed=0)
    loss = -np.log10(s["lr"])                          # larger is better, beyond the space's edge
    reports = boundary_check({**s, "val_loss": loss}, space, top=5)
    assert [r.side for r in reports] == ["high", None]
    wider = widen(space, reports)
    assert wider.axis("lr").high == pytest.approx(1e-3) and wider.axis("lr").low == 1e-5
    assert wider.axis("eps") == space.axis("eps")
    s2 = sample(widen(space, reports, factor=2.0), 64, seed=0)
    loss2 = (np.log10(s2["lr"]) + 3.5) ** 2            # optimum inside the widened space
    assert [r.side for r in boundary_check({**s2, "val_loss": loss2}, widen(space, reports, 2.0))] == [None, None]


def test_widening_a_decay_rate_keeps_it_a_decay_rate():
    space = SearchSpace((Axis("beta1", 0.5, 0.98, "log1m"),))
    low = widen(space, [BoundaryReport("beta1", 0.0, 1.0, 0.0, "low")]).axis("beta1")
    high = widen(space, [BoundaryReport("beta1", 1.0, 0.0, 1.0, "high")]).axis("beta1")
    assert low.low == 0.0 and low.high == 0.98
    assert 0.98 < high.high < 1 and 1 - high.high == pytest.approx(0.02 * 0.04)


def test_boundary_and_widen_refuse_bad_input():
    space = SearchSpace((Axis("lr", 1e-5, 1e-4),))
    t = {"lr": np.array([1e-5, 2e-5]), "val_loss": np.array([1.0, 2.0])}
    with pytest.raises(ValueError, match="edge"):
        boundary_check(t, space, edge=0.5)
    with pytest.raises(ValueError, match="top"):
        boundary_check(t, space, top=0)
    with pytest.raises(KeyError, match="accuracy"):
        boundary_check(t, space, metric="accuracy")
    with pytest.raises(ValueError, match="factor"):
        widen(space, [], factor=0)
    with pytest.raises(KeyError, match="eps"):
        widen(space, [BoundaryReport("eps", 1.0, 0.0, 1.0, "high")])


def test_boundary_check_counts_the_top_trials_not_only_the_best():
    space = SearchSpace((Axis("x", 0.0, 1.0, "linear"),))
    t = {"x": np.array([0.5, 0.95, 0.97, 0.99, 0.2, 0.3]), "val_loss": np.array([1.0, 1.1, 1.2, 1.3, 5, 6])}
    r = boundary_check(t, space, top=4)[0]
    assert (r.best_position, r.high_share, r.side) == (0.5, 0.75, "high")
    assert boundary_check(t, space, top=1)[0].side is None
