"""The population trainer: each member equals its run alone (torch.optim.Adam and adamlib.torch.Adam)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import adamlib.torch
from adamlib.lab import population, schedules, tasks
from adamlib.lab.population import grid, retune, train_population

pd = pytest.importorskip("pandas")

HIDDEN, STEPS = 16, 50
OPTIONS = {"warmup + cosine": {"warmup_steps": 10}}
# Every option, mixed: a population of 8 members.
MIXED = dict(
    lr=[1e-3, 3e-3, 1e-2, 2e-3, 5e-3, 1e-3, 4e-3, 0.0],
    beta1=[0.9, 0.8, 0.95, 0.9, 0.0, 0.9, 0.5, 0.9],
    beta2=[0.999, 0.99, 0.9, 0.999, 0.98, 0.999, 0.95, 0.999],
    eps=[1e-8, 1e-6, 1e-3, 1e-8, 1e-8, 1e-12, 1e-4, 1e-8],
    weight_decay=[0.0, 1e-2, 0.1, 1e-3, 0.0, 0.5, 0.05, 0.1],
    decoupled=[False, True, False, True, False, True, False, True],
    amsgrad=[False, True, True, False, False, False, True, False],
    schedule=[None, "cosine", "step", "warmup + cosine", None, "cosine", "constant", None],
    seed=[0, 1, 2, 3, 0, 1, 5, 2],
)


@pytest.fixture(scope="module")
def data():
    return tasks.digits_split()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def as_dtype(data, dtype):
    return tasks.DigitsSplit(data.X_train.to(dtype), data.y_train, data.X_val.to(dtype), data.y_val)


def member(k, members=MIXED):
    return {name: values[k] for name, values in members.items()}


def solo(data, m, dtype, optimizer_cls=torch.optim.Adam, steps=STEPS):
    """Member ``m`` trained alone: tasks.mlp + tasks.train + an Adam."""
    model = tasks.mlp(HIDDEN, m["seed"]).to(dtype)
    extra = {"foreach": False} if optimizer_cls is torch.optim.Adam else {}
    opt = optimizer_cls(model.parameters(), lr=m["lr"], betas=(m["beta1"], m["beta2"]), eps=m["eps"],
                        weight_decay=m["weight_decay"], amsgrad=m["amsgrad"],
                        decoupled_weight_decay=m["decoupled"], **extra)
    name = m["schedule"]
    sched = schedules.make(name, opt, steps, **OPTIONS.get(name, {})) if name else None
    run = tasks.train(model, opt, data, steps, batch_size=64, seed=m["seed"], scheduler=sched)
    return run, torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def train_mixed(data, dtype, members=MIXED, **kw):
    return train_population(data, STEPS, **members, hidden=HIDDEN, schedule_options=OPTIONS, dtype=dtype, **kw)


@pytest.mark.parametrize("optimizer_cls", [torch.optim.Adam, adamlib.torch.Adam], ids=["torch", "adamlib"])
def test_float64_members_equal_their_runs_alone(data, optimizer_cls):
    data = as_dtype(data, torch.float64)
    pop = train_mixed(data, torch.float64)
    assert pop.train_loss.shape == (8, STEPS) and not pop.table["diverged"].any()
    for k in range(8):
        run, params = solo(data, member(k), torch.float64, optimizer_cls)
        np.testing.assert_allclose(pop.train_loss[k], run.train_loss, rtol=1e-10, atol=0)
        np.testing.assert_allclose(pop.lr[k], run.lr, rtol=1e-15, atol=0)
        scale = params.abs().max().item()
        np.testing.assert_allclose(pop.params[k].numpy(), params.numpy(), rtol=1e-10, atol=1e-10 * scale)
        assert pop.table["val_loss"][k] == pytest.approx(run.val_loss, rel=1e-10)
        assert pop.table["val_accuracy"][k] == run.val_accuracy
        assert pop.table["train_loss"][k] == pytest.approx(run.train_loss[-1], rel=1e-10)
    assert pop.table["schedule"].tolist() == MIXED["schedule"]


# float32: the batched matmuls sum in another order than the single run's, so the runs
# drift apart by rounding. Measured over 50 steps (2026-11-30, this population and a
# six-member one): losses within 3.2e-7 relative, parameters within 2.2e-7 of their largest
# magnitude. The bound, 3e-6 for both, leaves a margin of about 10x.
F32_LOSS_RTOL, F32_PARAM_TOL = 3e-6, 3e-6


def test_float32_members_equal_their_runs_alone_to_the_stated_bound(data):
    pop = train_mixed(data, torch.float32)
    for k in range(8):
        run, params = solo(data, member(k), torch.float32)
        np.testing.assert_allclose(pop.train_loss[k], run.train_loss, rtol=F32_LOSS_RTOL, atol=0)
        scale = params.abs().max().item()
        np.testing.assert_allclose(pop.params[k].numpy(), params.numpy(), rtol=0, atol=F32_PARAM_TOL * scale)
        assert pop.table["val_loss"][k] == pytest.approx(run.val_loss, rel=F32_LOSS_RTOL)


def test_shuffled_members_give_the_same_rows(data):
    pop = train_mixed(data, torch.float64)
    order = np.random.default_rng(0).permutation(8)
    shuffled = train_mixed(data, torch.float64, members={k: [v[i] for i in order] for k, v in MIXED.items()})
    np.testing.assert_allclose(shuffled.train_loss, pop.train_loss[order], rtol=1e-12, atol=0)
    expected = pop.table.iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(shuffled.table, expected, rtol=1e-12)


def test_a_diverging_member_is_marked_and_leaves_the_others_alone(data):
    members = dict(lr=[1e-3, 1e200, 1e-2], seed=[0, 1, 2], beta1=[0.9, 0.0, 0.9])
    pop = train_population(data, STEPS, **members, hidden=HIDDEN, dtype=torch.float64, eval_every=10)
    assert pop.table["diverged"].tolist() == [False, True, False]
    bad = pop.train_loss[1]
    first = int(np.argmax(~np.isfinite(bad)))
    assert 0 < first < STEPS - 1 and np.isnan(bad[first + 1:]).all() and np.isfinite(bad[:first]).all()
    assert pop.table["val_loss"][1] == np.inf and np.isnan(pop.val_loss[1, -1])
    data64 = as_dtype(data, torch.float64)
    for k in range(3):
        m = dict(member(k, members), beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False,
                 schedule=None)
        run, params = solo(data64, m, torch.float64)
        n = len(run.train_loss)
        np.testing.assert_allclose(pop.train_loss[k, :n], run.train_loss, rtol=1e-10)
        assert run.diverged == pop.table["diverged"][k]
        assert n == (first + 1 if k == 1 else STEPS)
        # the diverged member keeps the parameters of its last step, as the run alone stops there
        np.testing.assert_allclose(pop.params[k].numpy(), params.numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)
        assert pop.table["val_loss"][k] == pytest.approx(run.val_loss, rel=1e-10)


def test_validation_curves_end_at_the_tables_values(data):
    pop = train_population(data, 30, lr=[1e-3, 1e-2], hidden=HIDDEN, eval_every=10)
    assert pop.eval_steps.tolist() == [10, 20, 30]
    assert pop.val_loss.shape == pop.val_accuracy.shape == (2, 3)
    np.testing.assert_array_equal(pop.val_loss[:, -1], pop.table["val_loss"])
    np.testing.assert_array_equal(pop.val_accuracy[:, -1], pop.table["val_accuracy"])
    assert (pop.val_loss[:, 0] > pop.val_loss[:, -1]).all()  # both learn something in 30 steps


def test_scalars_make_a_population_of_one_equal_to_tasks_train(data):
    pop = train_population(data, 20, lr=3e-3, seed=4, hidden=HIDDEN, dtype=torch.float64)
    run, _ = solo(as_dtype(data, torch.float64),
                  dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
                       decoupled=False, schedule=None, seed=4), torch.float64, steps=20)
    assert len(pop.table) == 1
    np.testing.assert_allclose(pop.train_loss[0], run.train_loss, rtol=1e-10)
    assert pop.model(0)(data.X_val[:1].double()).shape == (1, 10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=[1e-3, 1e-2], seed=[0, 1, 2]), "one length"),
        (dict(lr=[]), "empty population"),
        (dict(lr=[1e-3, -1.0]), r"member 1: lr must be"),
        (dict(beta1=[0.9, 0.9, 1.0]), r"member 2: betas\[0\] \(beta1\) must be"),
        (dict(beta2=[0.999, float("nan")]), r"member 1: betas\[1\] \(beta2\) must be"),
        (dict(eps=[-1e-8, 1e-8]), "member 0: eps must be"),
        (dict(weight_decay=[0.0, float("inf")]), "member 1: weight_decay must be"),
        (dict(amsgrad=[False, 1]), "member 1: amsgrad must be a bool"),
        (dict(schedule=[None, "linear"]), "member 1: schedule must be None or one of"),
        (dict(seed=[0, -1]), "member 1: seed must be an integer"),
        (dict(schedule="warmup + cosine"), "member 0: .*warmup_steps"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(batch_size=5000), "batch_size must be at most"),
        (dict(eval_every=0), "eval_every must be None or an integer"),
        (dict(lr=[[1e-3]]), "lr: expected a scalar or a 1-D sequence"),
    ],
)
def test_bad_input_is_refused_before_training(data, monkeypatch, kwargs, match):
    def no_training(*args, **kw):
        raise AssertionError("training started")

    monkeypatch.setattr(population, "_loss_and_grad", no_training)
    kwargs = dict(kwargs)
    steps = kwargs.pop("steps", 5)
    with pytest.raises((ValueError, TypeError), match=match):
        train_population(data, steps, hidden=HIDDEN, **kwargs)


def test_grid_is_the_cartesian_product_last_axis_fastest():
    g = grid(lr=[1e-3, 1e-2], schedule=[None, "cosine"], seed=[0, 1, 2])
    assert {len(v) for v in g.values()} == {12}
    rows = list(zip(g["lr"], g["schedule"], g["seed"]))
    assert rows[:4] == [(1e-3, None, 0), (1e-3, None, 1), (1e-3, None, 2), (1e-3, "cosine", 0)]
    assert len(set(rows)) == 12
    with pytest.raises(ValueError, match="lr: expected a non-empty sequence"):
        grid(lr=[])
    with pytest.raises(ValueError, match="at least one axis"):
        grid()


def test_retune_picks_the_best_seed_mean_rate_and_flags_the_edge():
    t = pd.DataFrame({"beta1": [0.9] * 6 + [0.99] * 6, "lr": [1, 1, 2, 2, 3, 3] * 2, "seed": [0, 1] * 6,
                      "val_loss": [3.0, 3.2, 1.0, 1.4, 2.0, 2.0, 5.0, 4.0, 3.0, 3.0, np.inf, 1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = retune(t, by=["beta1"])
    assert r["lr"].tolist() == [2, 2]  # for 0.99, lr 3 has the best seed but an infinite mean
    assert r["val_loss_mean"].tolist() == [pytest.approx(1.2), 3.0]
    assert r["val_loss_min"].tolist() == [1.0, 3.0] and r["val_loss_max"].tolist() == [1.4, 3.0]
    assert r["n_lrs"].tolist() == [3, 3] and r["n_seeds"].tolist() == [2, 2]
    assert not r["at_edge"].any()
    t.loc[t["lr"] == 2, "val_loss"] = 10.0
    with pytest.warns(UserWarning, match="edge"):
        r = retune(t, by=["beta1"])
    assert r["lr"].tolist() == [3, 1] and r["at_edge"].all()
    with pytest.warns(UserWarning, match="edge"):
        acc = retune(t.assign(val_accuracy=-t["val_loss"]), by=["beta1"], metric="val_accuracy")
    assert acc["lr"].tolist() == [3, 1]
    with pytest.raises(ValueError, match="no column"):
        retune(t, by=["beta2"])


def test_retune_keeps_none_as_a_group_of_its_own():
    schedule = pd.Series([None] * 3 + ["cosine"] * 3, dtype=object)  # as in Population.table
    t = pd.DataFrame({"schedule": schedule, "lr": [1, 2, 3] * 2, "val_loss": [3.0, 1.0, 2.0, 3.0, 2.0, 1.0]})
    with pytest.warns(UserWarning, match="cosine"):
        r = retune(t, by=["schedule"])
    assert r["schedule"].tolist() == ["cosine", None] and r["lr"].tolist() == [3, 2]
    assert r["at_edge"].tolist() == [True, False]


def test_a_progress_bar_when_asked(data, capsys):
    train_population(data, 3, lr=[1e-3, 1e-2], hidden=HIDDEN, progress=True)
    assert "population of 2" in capsys.readouterr().err


def test_retune_on_a_population(data):
    pop = train_population(data, 30, **grid(lr=[1e-4, 3e-3, 1.0], seed=[0, 1]), hidden=HIDDEN)
    best = retune(pop.table, by=[])
    assert best["lr"].tolist() == [3e-3] and best["n_lrs"].tolist() == [3] and not best["at_edge"][0]


def test_no_progress_bar_outside_a_kernel_or_when_switched_off(monkeypatch):
    # outside a kernel (another test in this process may have imported ipykernel)
    monkeypatch.delitem(__import__("sys").modules, "ipykernel", raising=False)
    assert population._show_progress(None) is False
    monkeypatch.setitem(__import__("sys").modules, "ipykernel", object())
    monkeypatch.setenv("ADAMLIB_PROGRESS", "0")
    assert population._show_progress(None) is False
    assert population._show_progress(True) is True
