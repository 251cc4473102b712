"""ADAMLIB_PERTURB: unset changes nothing, bit for bit; set, it moves the lab's inputs by n ulps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from adamlib.lab import perturb, tasks
from adamlib.lab.population import train_population

pytest.importorskip("sklearn")


@pytest.fixture
def unset(monkeypatch):
    monkeypatch.delenv(perturb.ENV, raising=False)


def reference_mlp(hidden: int, seed: int) -> list[torch.Tensor]:
    """The network's initial parameters as torch makes them, with no adamlib code in between."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return [p.detach().clone() for p in net.parameters()]


def reference_digits(val_fraction: float = 0.3, seed: int = 0):
    """The digits split written out again from its docstring (shuffle, split, standardize)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(round(val_fraction * len(y)))
    val, tr = order[:n_val], order[n_val:]
    X = (X - X[tr].mean(axis=0)) / (X[tr].std(axis=0) + 1e-8)
    return (torch.tensor(X[tr], dtype=torch.float32), torch.tensor(y[tr]),
            torch.tensor(X[val], dtype=torch.float32), torch.tensor(y[val]))


def up(t: torch.Tensor, n: int = 1) -> torch.Tensor:
    """``t`` moved n ulps towards +inf (n < 0: towards -inf), zeros kept."""
    moved = t.clone()
    for _ in range(abs(n)):
        moved = torch.nextafter(moved, torch.full_like(t, np.inf if n > 0 else -np.inf))
    return torch.where(t != 0, moved, t)


# --- the switch itself ------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [(None, 0), ("", 0), ("0", 0), ("1", 1), (" -2 ", -2), ("3", 3)])
def test_ulps_reads_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(perturb.ENV, raising=False)
    else:
        monkeypatch.setenv(perturb.ENV, value)
    assert perturb.ulps() == expected


@pytest.mark.parametrize("value", ["yes", "1.5", "on"])
def test_ulps_rejects_a_non_integer_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(perturb.ENV, value)
    with pytest.raises(ValueError, match="ADAMLIB_PERTURB must be an integer"):
        perturb.ulps()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, -1, -3])
def test_nudge_moves_numpy_arrays_n_ulps(dtype, n):
    x = np.array([1.0, -2.5, 3e-3, 6e4, 0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    before = x.copy()
    got = perturb.nudge(x, n)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(x, before)  # not modified
    want = x[:4].copy()
    for _ in range(abs(n)):
        want = np.nextafter(want, np.array(np.inf if n > 0 else -np.inf, dtype=dtype))
    np.testing.assert_array_equal(got[:4], want)
    assert np.all(np.sign(got[:4] - x[:4]) == np.sign(n))
    np.testing.assert_array_equal(got[4:], x[4:])  # zeros (signs too), infinities, NaN
    assert np.signbit(got[5]) and not np.signbit(got[4])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, -2])
def test_nudge_moves_tensors_n_ulps_and_agrees_with_numpy(dtype, n):
    x = torch.tensor([0.1, -7.0, 0.0, float("inf"), float("nan"), 1e-30], dtype=dtype)
    got = perturb.nudge(x, n)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype and got is not x
    assert torch.equal(got[:2], up(x[:2], n)) and torch.equal(got[-1:], up(x[-1:], n))
    assert got[2] == 0 and torch.isinf(got[3]) and torch.isnan(got[4])
    if dtype != torch.bfloat16:
        np.testing.assert_array_equal(got.numpy(), perturb.nudge(x.numpy(), n))


@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=2, max_side=5),
                  elements=st.floats(-2.0**100, 2.0**100, allow_subnormal=False, width=32)),
       st.integers(-3, 3))
def test_nudge_is_n_ulps_and_undoes(x, n):
    got = perturb.nudge(x, n)
    nonzero = x != 0
    # one ulp at a time: the distance in representable numbers is exactly |n|
    as_int = lambda a: np.where(a < 0, -(a.view(np.int32) & 0x7FFFFFFF), a.view(np.int32)).astype(np.int64)  # noqa: E731
    np.testing.assert_array_equal((as_int(got) - as_int(x))[nonzero], n)
    np.testing.assert_array_equal(got[~nonzero], x[~nonzero])
    back = perturb.nudge(got, -n)
    np.testing.assert_array_equal(back[nonzero & (got != 0)], x[nonzero & (got != 0)])


def test_nudge_zero_ulps_returns_the_input_itself():
    x, t = np.ones(3), torch.ones(3)
    assert perturb.nudge(x, 0) is x and perturb.nudge(t, 0) is t


def test_nudge_reads_the_environment_by_default(monkeypatch):
    x = np.array([1.0, 2.0])
    monkeypatch.setenv(perturb.ENV, "2")
    np.testing.assert_array_equal(perturb.nudge(x), perturb.nudge(x, 2))
    monkeypatch.setenv(perturb.ENV, "0")
    assert perturb.nudge(x) is x


@pytest.mark.parametrize("x, n, match", [
    (np.arange(3), 1, "floating point"),
    (torch.arange(3), 1, "floating point"),
    ([1.0, 2.0], 1, "floating point"),
    (np.ones(2), 1.0, "integer number of ulps"),
    (np.ones(2), True, "integer number of ulps"),
])
def test_nudge_rejects_bad_input(x, n, match):
    with pytest.raises(TypeError, match=match):
        perturb.nudge(x, n)


# --- the lab honours it -----------------------------------------------------------------


@pytest.mark.parametrize("hidden, seed", [(32, 0), (16, 3)])
def test_unset_mlp_is_torchs_own_initialisation_bit_for_bit(unset, hidden, seed):
    for got, want in zip(tasks.mlp(hidden, seed).parameters(), reference_mlp(hidden, seed), strict=True):
        assert torch.equal(got, want)


def test_unset_digits_are_the_documented_split_bit_for_bit(unset):
    got = tasks.digits_split()
    for a, b in zip((got.X_train, got.y_train, got.X_val, got.y_val), reference_digits(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("n", [1, -1, 2])
def test_perturbed_mlp_weights_move_n_ulps(monkeypatch, n):
    monkeypatch.setenv(perturb.ENV, str(n))
    for got, want in zip(tasks.mlp(32, 1).parameters(), reference_mlp(32, 1), strict=True):
        assert isinstance(got, nn.Parameter) and got.requires_grad
        assert torch.equal(got.detach(), up(want, n))
        assert not torch.equal(got.detach(), want)


def test_perturbed_digits_move_one_ulp_and_keep_labels_and_zeros(monkeypatch):
    monkeypatch.setenv(perturb.ENV, "1")
    got = tasks.digits_split()
    X_train, y_train, X_val, y_val = reference_digits()
    assert torch.equal(got.X_train, up(X_train)) and torch.equal(got.X_val, up(X_val))
    assert torch.equal(got.y_train, y_train) and torch.equal(got.y_val, y_val)
    assert (got.X_train != X_train).float().mean() > 0.5  # most features moved
    assert torch.equal(got.X_train == 0, X_train == 0)


def test_population_starts_from_the_perturbed_mlp_and_switches_back(monkeypatch):
    """lr = 0 leaves the parameters where they started; the cache follows the variable."""
    data = tasks.digits_split()

    def start(value):
        monkeypatch.setenv(perturb.ENV, value)
        return train_population(data, 1, lr=0.0, seed=[0, 2], hidden=8, dtype=torch.float64).params

    def flat(seed):
        return torch.cat([p.detach().reshape(-1).double() for p in tasks.mlp(8, seed).parameters()])

    plain = start("0")
    moved = start("1")
    assert torch.equal(moved[1], flat(2)) and not torch.equal(moved, plain)
    assert torch.equal(start("0"), plain)
    monkeypatch.setenv(perturb.ENV, "0")
    assert torch.equal(plain[0], flat(0))


def test_notebook_kernels_inherit_the_setting(monkeypatch):
    """`make test-notebooks-perturbed` sets it for pytest: nbval's kernels must see it too."""
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("from adamlib.lab import perturb\nprint(perturb.ulps())"))
    monkeypatch.setenv(perturb.ENV, "1")
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"] == "1\n"
