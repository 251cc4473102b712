"""The character-level GPT: its size, weight tying, causality, nanoGPT's init and schedule."""

from __future__ import annotations

import math

import pytest
import torch

from adamlib.lab.gpt import GPT, GPTConfig, decay_mask, nanogpt_lr
from adamlib.lab.text import char_data


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_books_model_has_107008_parameters_and_nanogpts_decay_split():
    model = GPT(GPTConfig(), seed=0)
    sizes = [p.numel() for p in model.parameters()]
    assert sum(sizes) == 107_008
    assert model.head.weight is model.tok_emb.weight  # tied: counted once
    mask = decay_mask(model)
    assert sum(mask) == 10 and sum(n for n, m in zip(sizes, mask) if not m) == 5 * 64  # 5 layer-norm gains


def test_nanogpt_init_is_seeded_and_has_the_stated_scales():
    a, b, c = GPT(seed=1), GPT(seed=1), GPT(seed=2)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        if pa.dim() == 1:
            assert torch.equal(pa, torch.ones_like(pa))
            continue
        assert not torch.equal(pa, pc)
        std = 0.02 / math.sqrt(4) if name.endswith("proj.weight") else 0.02
        assert pa.mean().abs() < 4 * std / math.sqrt(pa.numel())  # margins: 4 standard errors
        assert abs(pa.std().item() / std - 1) < 4 * math.sqrt(1 / (2 * pa.numel())) + 0.01


def test_a_fresh_model_predicts_about_uniformly():
    data = char_data()
    x = data.train[:640].view(10, 64)
    y = data.train[1:641].view(10, 64)
    _, loss = GPT(seed=0)(x, y)
    assert abs(loss.item() - math.log(67)) < 0.02


def test_position_t_reads_no_later_position():
    model = GPT(seed=0).double()
    idx = char_data().train[:64].view(1, 64).clone()
    logits, _ = model(idx)
    changed = idx.clone()
    changed[0, 40] = (changed[0, 40] + 1) % 67
    logits2, _ = model(changed)
    assert torch.equal(logits[0, :40], logits2[0, :40])
    assert not torch.allclose(logits[0, 40:], logits2[0, 40:])


def test_generate_appends_sampled_tokens_and_refuses_long_input():
    model = GPT(seed=0)
    out = model.generate(torch.zeros(2, 3, dtype=torch.int64), 70, torch.Generator().manual_seed(0))
    assert out.shape == (2, 73) and out.max() < 67
    with pytest.raises(ValueError, match="idx: at most block_size=64"):
        model(torch.zeros(1, 65, dtype=torch.int64))


def test_bad_config_and_seed_are_refused():
    with pytest.raises(ValueError, match="n_embd must be a multiple of n_head"):
        GPTConfig(n_embd=64, n_head=5)
    with pytest.raises(ValueError, match="n_layer must be an integer >= 1"):
        GPTConfig(n_layer=0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        GPT(seed=-1)


def test_nanogpt_schedule_warms_up_linearly_then_decays_by_a_cosine():
    lr, w, d, lo = 1e-3, 10, 110, 1e-4
    assert nanogpt_lr(0, lr, w, d, lo) == pytest.approx(lr / 11)
    assert nanogpt_lr(9, lr, w, d, lo) == pytest.approx(lr * 10 / 11)
    assert nanogpt_lr(10, lr, w, d, lo) == pytest.approx(lr)
    assert nanogpt_lr(60, lr, w, d, lo) == pytest.approx((lr + lo) / 2)
    assert nanogpt_lr(110, lr, w, d, lo) == pytest.approx(lo)
    assert nanogpt_lr(500, lr, w, d, lo) == lo
    assert all(nanogpt_lr(t, lr, 0, 100, lr) == lr for t in range(101))  # min_lr = lr: constant


def test_adamlib_perturb_moves_every_initial_weight_by_ulps(monkeypatch):
    plain = [p.detach().clone() for p in GPT(seed=3).parameters()]
    monkeypatch.setenv("ADAMLIB_PERTURB", "1")
    moved = list(GPT(seed=3).parameters())
    for a, b in zip(plain, moved):
        assert torch.equal(b, torch.nextafter(a, torch.full_like(a, float("inf"))))
