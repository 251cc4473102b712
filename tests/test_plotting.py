"""adamlib.lab.plotting: what each plot draws, its labels and scales."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from adamlib.lab import plotting  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_use_style_sets_the_book_style():
    plotting.use_style()
    assert matplotlib.rcParams["axes.grid"] is True
    assert tuple(matplotlib.rcParams["figure.figsize"]) == (6.4, 4.0)


def test_loss_curves_draws_each_finite_curve_on_a_log_scale(ax):
    plotting.loss_curves(ax, {"a": [3.0, 2.0, 1.0], "b": [2.0, np.nan, 0.5]}, ylabel="val loss")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    np.testing.assert_array_equal(lines[1].get_xdata(), [1, 3])  # the NaN is dropped
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step" and ax.get_ylabel() == "val loss"
    assert ax.get_legend() is not None


def test_seed_sweep_draws_mean_and_seed_range(ax):
    values = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 7.0]])
    bars = plotting.seed_sweep(ax, [0.1, 1.0], values, xlabel="beta", ylabel="loss", label="sweep",
                               annotate=["a", "b"])
    line, _, (segments,) = bars.lines
    np.testing.assert_allclose(line.get_ydata(), [2.0, 5.0])
    ends = np.array([seg[:, 1] for seg in segments.get_segments()])
    np.testing.assert_allclose(ends, [[1.0, 3.0], [4.0, 7.0]])  # from the lowest to the highest seed
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "beta" and ax.get_ylabel() == "loss"
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    with pytest.raises(ValueError, match="values"):
        plotting.seed_sweep(ax, [0.1, 1.0, 2.0], values, xlabel="x", ylabel="y")


def test_heatmap_annotates_finite_cells_and_labels_the_colour_bar(ax):
    values = np.array([[0.1, 0.2], [np.nan, 2.0]])
    im = plotting.heatmap(ax, values, ["r0", "r1"], ["c0", "c1"], fmt="{:.1f}", cbar_label="loss",
                          fig=ax.figure)
    assert sorted(t.get_text() for t in ax.texts) == ["0.1", "0.2", "2.0"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r0", "r1"]
    assert not isinstance(im.norm, LogNorm)
    colorbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert len(colorbar_axes) == 1 and colorbar_axes[0].get_ylabel() == "loss"


def test_heatmap_log_scale_separates_cells_that_a_linear_scale_flattens(ax):
    values = np.array([[0.12, 0.13], [0.18, 1.75]])  # one cell ten times the others
    linear = plotting.heatmap(ax, values, ["a", "b"], ["c", "d"])
    logged = plotting.heatmap(ax, values, ["a", "b"], ["c", "d"], log=True)
    assert isinstance(logged.norm, LogNorm)
    gap = lambda im: im.norm(0.18) - im.norm(0.12)  # noqa: E731
    assert gap(logged) > 2 * gap(linear)
    with pytest.raises(ValueError, match="positive"):
        plotting.heatmap(ax, np.array([[0.0, 1.0]]), ["a"], ["b", "c"], log=True)
