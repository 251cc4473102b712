"""One figure style for the whole book, and the plots more than one chapter draws.

Every chapter calls :func:`use_style` once; figures are PNG (the inline backend's
default), which strict nbval does not compare byte for byte.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "axes.prop_cycle": __import__("cycler").cycler(
        color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]
    ),
}


def use_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter)."""
    import matplotlib as mpl

    mpl.rcParams.update(STYLE)


def loss_curves(ax, curves: Mapping[str, Sequence[float]], *, log: bool = True, xlabel: str = "step",
                ylabel: str = "loss") -> None:
    """Plot named loss curves on ``ax`` (log scale by default); non-finite values are dropped."""
    for label, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(1, len(ys) + 1)[np.isfinite(ys)], ys[np.isfinite(ys)], label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()


def seed_sweep(ax, x: Sequence[float], values: np.ndarray, *, xlabel: str, ylabel: str,
               label: str | None = None, annotate: Sequence[str] | None = None, logx: bool = True):
    """One setting per point: the mean over seeds, with bars from the lowest to the highest seed.

    Parameters
    ----------
    ax
        A matplotlib ``Axes``.
    x : sequence of float
        The setting of each point (``n`` values).
    values : ndarray
        Shape ``(n, seeds)``: the metric of every seed at every setting.
    xlabel, ylabel : str
        Axis labels (with units).
    label : str, optional
        The legend entry of the points.
    annotate : sequence of str, optional
        A text written next to each point (``n`` values), such as the setting's name.
    logx : bool
        Log scale for ``x`` (default).

    Returns
    -------
    matplotlib.container.ErrorbarContainer
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] != len(x):
        raise ValueError(f"values: expected shape (len(x), seeds) = ({len(x)}, seeds), got {values.shape}")
    mean = values.mean(axis=1)
    bars = ax.errorbar(x, mean, yerr=[mean - values.min(axis=1), values.max(axis=1) - mean], marker="o",
                       capsize=3, label=label)
    for xi, yi, text in zip(x, mean, annotate or []):
        ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return bars


def heatmap(ax, values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *,
            fmt: str = "{:.2f}", cbar_label: str = "", fig=None, log: bool = False):
    """An annotated heatmap of ``values`` (rows x columns); NaN cells are left blank.

    With ``log=True`` the colour scale is logarithmic (``values`` must be positive), so
    that one large cell does not flatten the differences between the others.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    from matplotlib.colors import LogNorm, Normalize

    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (finite.min(), finite.max()) if finite.size else (1.0, 2.0)
    if log and not low > 0:
        raise ValueError(f"log=True needs positive values, got a minimum of {low!r}")
    norm = LogNorm(low, high) if log else Normalize(low, high)
    im = ax.imshow(values, origin="lower", aspect="auto", norm=norm)
    ax.set_xticks(range(len(col_labels)), labels=col_labels)
    ax.set_yticks(range(len(row_labels)), labels=row_labels)
    ax.grid(False)
    for (i, j), x in np.ndenumerate(values):
        if np.isfinite(x):
            bright = high > low and norm(x) > 0.6  # dark text on bright cells
            ax.text(j, i, fmt.format(x), ha="center", va="center", color="k" if bright else "w", fontsize=8)
    if fig is not None:
        fig.colorbar(im, ax=ax, label=cbar_label)
    return im
