"""adamlib.lab.rounding: a printed value is refused near a rounding boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adamlib.lab.rounding import fixed, margin_to_boundary


def test_far_values_print_as_usual():
    assert fixed(0.13578, 3) == "0.136"
    assert fixed(1.77, 2) == "1.77"
    assert fixed(-2.4, 0) == "-2"


def test_a_near_tie_is_refused():
    with pytest.raises(ValueError, match="rounding boundary"):
        fixed(0.13549, 3)
    with pytest.raises(ValueError, match="rounding boundary"):
        fixed(3.6049, 2, margin=0.1)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(0, 6))
def test_accepted_values_survive_a_small_move(x, d):
    try:
        shown = fixed(x, d, margin=0.05)
    except ValueError:
        assert margin_to_boundary(x, d) < 0.05
        return
    step = 0.04 * 10.0**-d  # less than the margin, in absolute terms
    for moved in (x - step, x + step):
        assert f"{moved:.{d}f}" == shown or math.isclose(abs(moved), 0, abs_tol=10.0**-d)


def test_distance_is_between_a_tie_and_a_half():
    assert margin_to_boundary(0.125, 2) == pytest.approx(0.0)
    assert margin_to_boundary(0.12, 2) == pytest.approx(0.5, abs=1e-9)
    values = np.random.default_rng(0).uniform(-100, 100, 1000)
    assert all(0 <= margin_to_boundary(float(v), 2) <= 0.5 for v in values)


@pytest.mark.parametrize("args, word", [
    ((float("nan"), 2), "x"), ((0.1, -1), "decimals"), ((0.1, 1.5), "decimals"),
    ((0.1, 2, 0.5), "margin"), (("0.1", 2), "x"),
])
def test_bad_input_names_the_argument(args, word):
    with pytest.raises(ValueError, match=word):
        fixed(*args)
