"""The GPT population: each member equals its run alone with torch.optim.AdamW + clip_grad_norm_."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamlib.lab import gpt_population
from adamlib.lab.gpt import GPTConfig
from adamlib.lab.gpt_population import train_gpt, train_gpt_population
from adamlib.lab.text import char_data

pytest.importorskip("pandas")

STEPS, BATCH = 8, 4
# Every per-member option, mixed: clipping on and off, warmup, constant and decaying rates.
MIXED = dict(
    lr=[1e-3, 3e-3, 2e-3, 1e-2],
    beta1=[0.9, 0.8, 0.95, 0.0],
    beta2=[0.99, 0.95, 0.999, 0.9],
    eps=[1e-8, 1e-6, 1e-10, 1e-3],
    weight_decay=[0.1, 0.0, 0.5, 1.0],
    warmup=[0, 3, 8, 2],
    lr_floor=[0.1, 1.0, 0.0, 0.5],
    clip=[1.0, 0.0, 0.05, 0.3],
    seed=[0, 1, 2, 0],
)


@pytest.fixture(scope="module")
def data():
    return char_data()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def member(k, members=MIXED):
    return {name: values[k] for name, values in members.items()}


def as_vector(run):
    return torch.nn.utils.parameters_to_vector(run.model.parameters()).detach()


def test_float64_members_equal_their_runs_alone(data):
    pop = train_gpt_population(data, STEPS, **MIXED, batch_size=BATCH, eval_every=4, dtype=torch.float64)
    assert pop.train_loss.shape == (4, STEPS) and not pop.table["diverged"].any()
    assert pop.eval_steps.tolist() == [4, 8]
    clipped = 0
    for k in range(4):
        run = train_gpt(data, STEPS, **member(k), batch_size=BATCH, eval_every=4, dtype=torch.float64)
        np.testing.assert_allclose(pop.train_loss[k], run.train_loss, rtol=1e-10, atol=0)
        np.testing.assert_allclose(pop.grad_norm[k], run.grad_norm, rtol=1e-10, atol=0)
        np.testing.assert_allclose(pop.lr[k], run.lr, rtol=1e-15, atol=0)
        np.testing.assert_allclose(pop.val_loss[k], run.val_loss, rtol=1e-10, atol=0)
        params = as_vector(run)
        np.testing.assert_allclose(pop.params[k].numpy(), params.numpy(), rtol=1e-10,
                                   atol=1e-10 * params.abs().max().item())
        assert pop.table["val_loss"][k] == pytest.approx(run.val_loss[-1], rel=1e-10)
        clipped += int((MIXED["clip"][k] > 0) * (run.grad_norm > MIXED["clip"][k]).sum())
    assert clipped > 0  # the test exercises clipping
    assert np.all(pop.lr[2] < MIXED["lr"][2])  # member 2 warms up over all 8 steps


def test_float32_members_equal_their_runs_alone_to_rounding(data):
    pop = train_gpt_population(data, STEPS, **MIXED, batch_size=BATCH)
    for k in range(4):
        run = train_gpt(data, STEPS, **member(k), batch_size=BATCH)
        np.testing.assert_allclose(pop.train_loss[k], run.train_loss, rtol=1e-5, atol=0)
        np.testing.assert_allclose(pop.params[k].numpy(), as_vector(run).numpy(), rtol=0, atol=1e-5)


def test_a_diverging_member_is_marked_and_leaves_the_others_alone(data):
    members = dict(lr=[1e-3, 1e300, 3e-3], clip=0.0, seed=[0, 1, 2])
    pop = train_gpt_population(data, 4, **members, batch_size=BATCH, dtype=torch.float64)
    assert pop.table["diverged"].tolist() == [False, True, False]
    assert np.isfinite(pop.train_loss[1, 0]) and not np.isfinite(pop.train_loss[1, 1:]).any()
    assert pop.table["val_loss"][1] == np.inf and np.isfinite(pop.table["val_loss"][[0, 2]]).all()
    for k in (0, 2):
        run = train_gpt(data, 4, **member(k, {**members, "clip": [0.0] * 3}), batch_size=BATCH, dtype=torch.float64)
        np.testing.assert_allclose(pop.train_loss[k], run.train_loss, rtol=1e-10)
        np.testing.assert_allclose(pop.params[k].numpy(), as_vector(run).numpy(), rtol=1e-10, atol=1e-12)
    alone = train_gpt(data, 4, lr=1e300, clip=0.0, seed=1, batch_size=BATCH, dtype=torch.float64)
    assert pop.train_loss[1, 0] == pytest.approx(alone.train_loss[0], rel=1e-10)
    assert not np.isfinite(alone.train_loss[1])  # it diverges alone at the same step


def test_a_population_of_one_and_its_model(data):
    pop = train_gpt_population(data, 3, lr=2e-3, seed=5, batch_size=BATCH, dtype=torch.float64)
    run = train_gpt(data, 3, lr=2e-3, seed=5, batch_size=BATCH, dtype=torch.float64)
    np.testing.assert_allclose(pop.train_loss[0], run.train_loss, rtol=1e-10)
    model = pop.model(0)
    assert pop.table["val_loss"][0] == pytest.approx(gpt_population._val_loss_one(model, data), rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=[1e-3, 1e-2], seed=[0, 1, 2]), "one length"),
        (dict(lr=[]), "empty population"),
        (dict(lr=[1e-3, -1.0]), r"member 1: lr must be"),
        (dict(beta1=[0.9, 1.0]), r"member 1: betas\[0\] \(beta1\) must be"),
        (dict(beta2=[0.99, float("nan")]), r"member 1: betas\[1\] \(beta2\) must be"),
        (dict(eps=[-1e-8, 1e-8]), "member 0: eps must be"),
        (dict(weight_decay=[0.0, float("inf")]), "member 1: weight_decay must be"),
        (dict(warmup=[0, 6]), "member 1: warmup must be at most steps=5"),
        (dict(warmup=[0, 1.5]), "member 1: warmup must be an integer"),
        (dict(lr_floor=[0.1, 2.0]), r"member 1: lr_floor must be in \[0, 1\]"),
        (dict(clip=[-1.0, 1.0]), "member 0: clip must be a finite number >= 0"),
        (dict(seed=[0, -1]), "member 1: seed must be an integer"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(eval_every=0), "eval_every must be an integer >= 1"),
        (dict(config=GPTConfig(vocab_size=65)), "config: vocab_size 65 is not the data's 67"),
        (dict(dtype=torch.float16), "dtype must be torch.float32 or torch.float64"),
        (dict(lr=[[1e-3]]), "lr: expected a scalar or a 1-D sequence"),
    ],
)
def test_bad_input_is_refused_before_training(data, monkeypatch, kwargs, match):
    def no_training(*args, **kw):
        raise AssertionError("training started")

    monkeypatch.setattr(gpt_population, "_losses", no_training)
    monkeypatch.setattr(gpt_population, "GPT", no_training)
    kwargs = dict(kwargs)
    steps = kwargs.pop("steps", 5)
    with pytest.raises((ValueError, TypeError), match=match):
        train_gpt_population(data, steps, **kwargs)


@pytest.mark.parametrize("kwargs, match", [(dict(lr=-1.0), "lr must be"), (dict(warmup=6), "warmup must be at most"),
                                           (dict(clip=float("nan")), "clip must be"), (dict(batch_size=0), "batch_size")])
def test_the_run_alone_refuses_bad_input_before_training(data, monkeypatch, kwargs, match):
    monkeypatch.setattr(gpt_population, "GPT", None)  # building the model would fail otherwise
    with pytest.raises((ValueError, TypeError), match=match):
        train_gpt(data, 5, **kwargs)
