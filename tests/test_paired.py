"""adamlib.lab.paired: per-seed differences and the paired t interval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adamlib.lab.paired import paired


def test_interval_matches_a_one_sample_t_test():
    from scipy import stats

    a = np.array([0.13, 0.12, 0.15, 0.14])
    b = np.array([0.135, 0.128, 0.149, 0.146])
    r = paired(a, b, level=0.9)
    ci = stats.ttest_1samp(b - a, 0.0).confidence_interval(0.9)
    assert np.isclose(r.low, ci.low) and np.isclose(r.high, ci.high)
    np.testing.assert_allclose(r.differences, b - a)


def test_a_shared_seed_effect_cancels():
    # a seed-to-seed spread far larger than the difference: unpaired, the settings overlap;
    # paired, the constant difference is resolved
    seed_effect = np.array([0.0, 0.3, -0.2, 0.5])
    r = paired(1 + seed_effect, 1.01 + seed_effect + [0, 1e-4, -1e-4, 0])
    assert r.resolved and r.low > 0 and r.same_sign() == 1


def test_mixed_signs_are_not_resolved():
    r = paired([1.0, 1.0, 1.0], [1.01, 0.99, 1.005])
    assert not r.resolved and r.same_sign() == 0 and r.low < 0 < r.high


def test_same_sign_margin():
    r = paired([0.0, 0.0, 0.0], [-0.01, -0.02, -0.001])
    assert r.same_sign() == -1 and r.same_sign(margin=0.005) == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=8), st.floats(-5, 5))
def test_shifting_b_shifts_the_interval(a, shift):
    a = np.array(a)
    r0, r1 = paired(a, a + np.arange(a.size) * 0.01), paired(a, a + np.arange(a.size) * 0.01 + shift)
    assert np.isclose(r1.low, r0.low + shift, atol=1e-9) and np.isclose(r1.high, r0.high + shift, atol=1e-9)


@pytest.mark.parametrize("a, b, kw, word", [
    ([1.0, 2.0], [1.0, 2.0, 3.0], {}, "a and b"),
    ([1.0], [2.0], {}, "at least 2"),
    ([1.0, np.nan], [1.0, 2.0], {}, "finite"),
    ([1.0, 2.0], [1.0, 2.0], {"level": 1.0}, "level"),
])
def test_bad_input(a, b, kw, word):
    with pytest.raises(ValueError, match=word):
        paired(a, b, **kw)
