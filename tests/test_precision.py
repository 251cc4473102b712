"""adamlib.lab.precision: format facts, ulps, the (1-beta2) g^2 underflow threshold and lost
updates, each checked against what torch and NumPy arithmetic actually do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import adamlib
from adamlib.lab import precision


def test_formats():
    f16, bf16, f32 = (precision.fmt(d) for d in ("float16", "bfloat16", np.float32))
    assert (f16.significant_bits, f16.smallest_subnormal, f16.smallest_normal, f16.max) == (
        11, 2.0**-24, 2.0**-14, 65504.0)
    assert bf16.significant_bits == 8 and bf16.smallest_normal == f32.smallest_normal
    assert f32.significant_bits == 24 and precision.fmt(torch.float64).significant_bits == 53
    assert np.float16(1e-8) == 0 and np.float16(f16.smallest_subnormal) > 0


@pytest.mark.parametrize("bad", ["int8", np.int32, torch.int32, object()])
def test_unknown_dtypes_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="dtype"):
        precision.fmt(bad)


@given(x=st.floats(1e-7, 6e4))
def test_ulp_is_numpys_spacing_in_float16(x):
    x16 = np.float16(x)
    assume(x16 > 0 and np.isfinite(x16))
    assert precision.ulp(float(x16), "float16") == float(np.spacing(x16))


@given(x=st.floats(1e-30, 1e30))
def test_ulp_is_the_gap_to_the_next_bfloat16(x):
    t = torch.tensor([x], dtype=torch.bfloat16)
    following = (t.view(torch.int16) + 1).view(torch.bfloat16)   # next bit pattern up
    assert precision.ulp(t.item(), "bfloat16") == (following.double() - t.double()).item()


@given(x=st.floats(-1e3, 1e3), frac=st.floats(0.01, 2.0), sign=st.sampled_from([-1.0, 1.0]))
def test_update_ulps_tell_which_updates_are_lost(x, frac, sign):
    """Below a quarter ulp an update is always lost, above half an ulp never; lost_updates (by
    rounding) and update_ulps (by the formula) agree."""
    p = float(precision.round_to(x, "bfloat16"))
    assume(p != 0)
    u = sign * frac * float(precision.ulp(p, "bfloat16"))
    size = float(precision.update_ulps(np.array([p]), np.array([u]), "bfloat16")[0])
    assert math.isclose(size, frac, rel_tol=1e-12)
    lost = bool(precision.lost_updates(np.array([p]), np.array([u]), "bfloat16")[0])
    if frac < 0.25:
        assert lost
    elif frac > 0.5 + 1e-9:
        assert not lost
    # the same answer from torch's own bfloat16 addition
    t = torch.tensor([p], dtype=torch.bfloat16)
    t.add_(torch.tensor([u], dtype=torch.float64))
    assert lost == (t.item() == p)


def test_lost_updates_in_float16_match_numpy():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(1000).astype(np.float16).astype(float)
    u = rng.standard_normal(1000) * 10.0 ** rng.uniform(-6, -2, 1000)
    numpy_says = (p + u).astype(np.float16) == p.astype(np.float16)
    np.testing.assert_array_equal(precision.lost_updates(p, u, "float16"), numpy_says)
    assert 0.1 < numpy_says.mean() < 0.9    # both kinds present


def first_v_torch(g, dtype, beta2):
    """Adam's second moment after one step on gradient g, by torch.optim.Adam."""
    p = torch.zeros(1, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([p], betas=(0.9, beta2), foreach=False)
    p.grad = torch.tensor([g], dtype=dtype)
    opt.step()
    return opt.state[p]["exp_avg_sq"].item()


def first_v_adamlib(g, beta2):
    """The same by adamlib.Adam in float16 (NumPy has no bfloat16)."""
    ours = adamlib.Adam([np.zeros(1, dtype=np.float16)], betas=(0.9, beta2))
    ours.step([np.array([g], dtype=np.float16)])
    return float(ours.exp_avg_sq[0][0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("beta2", [0.999, 0.99, 0.95])
def test_square_underflow_threshold(dtype, beta2):
    """torch rounds (1 - beta2) g^2 once: the threshold holds to 2%. adamlib.Adam rounds g^2 to
    float16 first, a subnormal with a few significant bits near the threshold: to 10%."""
    g0 = precision.square_underflow_threshold(beta2, dtype)
    assert first_v_torch(g0 * 0.98, dtype, beta2) == 0 < first_v_torch(g0 * 1.02, dtype, beta2)
    if dtype == torch.float16:
        assert first_v_adamlib(g0 * 0.9, beta2) == 0 < first_v_adamlib(g0 * 1.1, beta2)


def test_float16_threshold_is_a_few_thousandths():
    assert 5e-3 < precision.square_underflow_threshold(0.999, "float16") < 6e-3
    with pytest.raises(ValueError, match="beta2"):
        precision.square_underflow_threshold(1.0, "float16")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_wrapper(dtype):
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    reference = torch.nn.Linear(4, 3)
    pure = precision.LowPrecision(torch.nn.Linear(4, 3), dtype)
    pure.model.load_state_dict(reference.state_dict())
    mixed = precision.LowPrecision(torch.nn.Linear(4, 3), dtype, master_weights=True)
    mixed.model.load_state_dict(reference.state_dict())
    assert pure.model.weight.dtype == dtype and mixed.model.weight.dtype == torch.float32
    for model in (pure, mixed):
        out = model(x)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, reference(x), rtol=0.05, atol=0.05)
        out.sum().backward()
    assert mixed.model.weight.grad.dtype == torch.float32 and pure.model.weight.grad.dtype == dtype


def test_stochastic_rounding_is_right_on_average():
    from adamlib.lab.precision import stochastic_round_bfloat16

    gen = torch.Generator().manual_seed(1)
    for value in (1.0 - 1e-3, -0.3337, 1e-30, 123.456):
        x = torch.full((200_000,), value, dtype=torch.float32)
        r = stochastic_round_bfloat16(x, gen)
        assert r.dtype == torch.bfloat16
        lo, hi = sorted(set(r.double().tolist()))  # the two neighbours only
        assert lo <= np.float32(value) <= hi
        gap = hi - lo
        # the mean is unbiased, to a few standard errors of the coin flips
        assert abs(r.double().mean().item() - np.float32(value)) < 5 * gap / np.sqrt(x.numel())


def test_stochastic_rounding_keeps_bfloat16_numbers_and_many_small_steps_add_up():
    from adamlib.lab.precision import stochastic_round_bfloat16

    gen = torch.Generator().manual_seed(0)
    exact = torch.tensor([1.0, -2.5, 0.0078125, 0.0], dtype=torch.bfloat16).float()
    assert torch.equal(stochastic_round_bfloat16(exact, gen).float(), exact)
    w = torch.ones(20_000, dtype=torch.bfloat16)
    assert torch.equal((w.float() - 1e-3).to(torch.bfloat16), w)  # nearest: lost
    for _ in range(100):  # 100 steps of -1e-3, kept on average
        w = stochastic_round_bfloat16(w.float() - 1e-3, gen)
    assert abs(w.double().mean().item() - 0.9) < 0.005


def test_stochastic_rounding_rejects_other_dtypes():
    from adamlib.lab.precision import stochastic_round_bfloat16

    with pytest.raises(TypeError, match="x: expected a float32"):
        stochastic_round_bfloat16(torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="x: expected a float32"):
        stochastic_round_bfloat16(np.ones(3, dtype=np.float32))
