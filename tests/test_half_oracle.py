"""16-bit Adam against the oracle, torch.optim.Adam (its CPU for-loop), option by option.

torch computes each operation on float16/bfloat16 tensors in float32 and rounds once to the
tensor's dtype. adamlib.Adam (NumPy, float16) and adamlib.torch.Adam (float16, bfloat16;
eager and compiled) do the same, so over many steps of gradients that span exact zeros, the
underflow region (1e-7 to 1e-4: (1-beta2) g^2 rounds to 0 and eps=1e-8 is 0 in float16),
normal sizes and |g| > 256 (g^2 overflows float16), NaN and infinities land in the same places
and the finite values agree to the bit (tolerance: 1 ulp).

The tensors have multiples of 64 elements: torch's CPU kernels leave the last ``numel % 64``
elements (AVX-512; fewer with AVX2) to a scalar loop whose ``add(alpha=...)`` also rounds
``weight_decay * param`` to 16 bits, which the vectorized loop (and adamlib) do not; without
L2 weight decay the small tensors are held to the bit as well.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamlib
from adamlib.torch import Adam as TorchAdam

SIZES = [64, 128, 1024]  # whole blocks of torch's vectorized loop
SMALL = [1, 5, 63]  # all in its scalar loop
STEPS = 40
OPTIONS = [
    dict(amsgrad=a, weight_decay=wd, decoupled_weight_decay=d, maximize=m, eps=eps)
    for a, (wd, d), m, eps in itertools.product(
        [False, True], [(0.0, False), (0.1, False), (0.1, True)], [False, True], [1e-8, 1e-4]
    )
]


def ids(options: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in options.items())


def gradients(rng: np.random.Generator, n: int, scale: float | None = None) -> np.ndarray:
    """A quarter each: exact zeros, 1e-7..1e-4, 1e-3..1e2 and 250..3000, random signs (or,
    with ``scale``, standard normal times ``scale``)."""
    if scale is not None:
        return rng.standard_normal(n) * scale
    kind = rng.integers(0, 4, n)
    low, high = np.array([0, -7, -3, np.log10(250)]), np.array([0, -4, 2, np.log10(3000)])
    mag = np.where(kind == 0, 0.0, 10.0 ** rng.uniform(low[kind], high[kind]))
    return mag * rng.choice([-1.0, 1.0], n)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many 16-bit numbers apart ``a`` and ``b`` are (finite, same 16-bit dtype)."""
    ia, ib = (x.view(np.int16).astype(np.int64) for x in (a, b))
    ia, ib = (np.where(i < 0, -32768 - i, i) for i in (ia, ib))  # sign-magnitude to a line
    return np.abs(ia - ib)


def assert_same_16bit(ours: np.ndarray, theirs: np.ndarray, what: str, max_ulps: int = 1) -> None:
    """Same NaN, +inf and -inf masks; finite values at most ``max_ulps`` apart."""
    assert ours.dtype == theirs.dtype and ours.itemsize == 2, what
    for name, mask in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(mask(ours), mask(theirs), err_msg=f"{what}: {name} placement")
    finite = np.isfinite(theirs)
    worst = int(ulps(ours[finite], theirs[finite]).max(initial=0))
    assert worst <= max_ulps, f"{what}: {worst} ulps apart"


def as_bits(t: torch.Tensor) -> np.ndarray:
    """A 16-bit tensor as NumPy float16 bits (bfloat16 viewed as float16: the masks and the
    ulp distance only need the sign, exponent-all-ones and order of the bit patterns)."""
    bits = t.detach().cpu().contiguous().view(torch.int16).numpy()
    if t.dtype == torch.float16:
        return bits.view(np.float16)
    # bfloat16: map NaN/inf (exponent all ones) onto float16's NaN/inf patterns, keep order
    out = bits.view(np.float16).copy()
    exponent_ones = (bits.astype(np.int32) & 0x7F80) == 0x7F80
    mantissa = bits.astype(np.int32) & 0x7F
    special = np.where(mantissa == 0, np.float16(np.inf), np.float16(np.nan)) * np.where(bits < 0, -1, 1)
    out[exponent_ones] = special[exponent_ones].astype(np.float16)
    assert not np.isinf(out[~exponent_ones]).any() and not np.isnan(out[~exponent_ones]).any()
    return out


# -- adamlib.Adam (NumPy) in float16 ---------------------------------------------------------------
def run_numpy(sizes, options, steps=STEPS, seed=0, scale=None, lr=1e-2):
    """adamlib.Adam and torch.optim.Adam on the same float16 parameters and gradients,
    compared after every step."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(np.float16) for n in sizes]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = adamlib.Adam(params, lr=lr, **options)
    theirs = torch.optim.Adam(tparams, lr=lr, foreach=False, **options)
    keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if options.get("amsgrad") else [])
    for step in range(steps):
        grads = [gradients(rng, n, scale).astype(np.float16) for n in sizes]
        ours.step(grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        theirs.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert_same_16bit(p, tp.detach().numpy(), f"step {step}, param[{i}]")
            for key in keys:
                assert_same_16bit(getattr(ours, key)[i], theirs.state[tp][key].numpy(), f"step {step}, {key}[{i}]")
    return params


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
def test_numpy_float16_matches_torch_on_every_option(options):
    params = run_numpy(SIZES, options)
    if options["eps"] == 1e-8 and not (options["weight_decay"] and not options["decoupled_weight_decay"]):
        assert any(np.isnan(p).any() for p in params)  # the pitfalls really occur (0/0 ...)
        assert any(np.isinf(p).any() for p in params)  # (... and m/0 in the underflow region)


@pytest.mark.parametrize("options", [o for o in OPTIONS if not (o["weight_decay"] and not o["decoupled_weight_decay"])], ids=ids)
def test_numpy_float16_small_tensors_match_torch(options):
    run_numpy(SMALL, options)


def test_numpy_float16_gradients_above_256_step_as_in_torch():
    """g^2 overflows float16 for |g| > 256; torch forms (1-beta2) g^2 in float32, so v stays
    finite and the first step is about lr, as it is for every other gradient size."""
    g = np.array([300.0, -1000.0, 5000.0, 1.0], dtype=np.float16)  # (1-beta2) g^2 < 65504
    p = np.ones(4, dtype=np.float16)
    adamlib.Adam([p], lr=0.01).step([g])
    tp = torch.ones(4, dtype=torch.float16, requires_grad=True)
    tp.grad = torch.from_numpy(g.copy())
    torch.optim.Adam([tp], lr=0.01, foreach=False).step()
    np.testing.assert_array_equal(p, tp.detach().numpy())
    np.testing.assert_allclose(p, [0.99, 1.01, 0.99, 0.99], atol=1e-3)


def test_numpy_float32_and_float64_untouched_by_the_float16_path():
    """A float16 parameter next to float32 and float64 ones: those step exactly as alone."""
    rng = np.random.default_rng(3)
    mixed = [rng.standard_normal(5).astype(d) for d in (np.float16, np.float32, np.float64)]
    alone = [m.copy() for m in mixed[1:]]
    opt_mixed, opt_alone = adamlib.Adam(mixed, weight_decay=0.1), adamlib.Adam(alone, weight_decay=0.1)
    for _ in range(5):
        grads = [rng.standard_normal(5).astype(m.dtype) for m in mixed]
        opt_mixed.step(grads)
        opt_alone.step(grads[1:])
    for a, b in zip(mixed[1:], alone):
        np.testing.assert_array_equal(a, b)


@given(log_scale=st.floats(-8.0, 3.5), seed=st.integers(0, 2**16), amsgrad=st.booleans(),
       eps=st.sampled_from([1e-8, 1e-4, 1e-3]))
def test_numpy_float16_matches_torch_at_any_gradient_scale(log_scale, seed, amsgrad, eps):
    run_numpy([64], dict(amsgrad=amsgrad, eps=eps), steps=5, seed=seed, scale=10.0**log_scale)


# -- adamlib.torch.Adam in float16 and bfloat16 --------------------------------------------------------
def run_torch(dtype, impl, sizes, options, steps=STEPS, seed=0):
    """adamlib.torch.Adam and torch.optim.Adam (for-loop) on the same 16-bit parameters and
    gradients, compared after every step."""
    rng = np.random.default_rng(seed)
    start = [torch.tensor(rng.standard_normal(n)).to(dtype) for n in sizes]
    ours = TorchAdam([p.clone().requires_grad_() for p in start], lr=1e-2, impl=impl, **options)
    theirs = torch.optim.Adam([p.clone().requires_grad_() for p in start], lr=1e-2, foreach=False, **options)
    ps, qs = ours.param_groups[0]["params"], theirs.param_groups[0]["params"]
    keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if options.get("amsgrad") else [])
    for step in range(steps):
        for p, q in zip(ps, qs):
            g = torch.tensor(gradients(rng, p.numel())).to(dtype)
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        for i, (p, q) in enumerate(zip(ps, qs)):
            assert_same_16bit(as_bits(p), as_bits(q), f"step {step}, param[{i}]")
            for key in keys:
                assert_same_16bit(as_bits(ours.state[p][key]), as_bits(theirs.state[q][key]), f"step {step}, {key}[{i}]")
    return ps


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=ids)
def test_torch_eager_16bit_matches_torch_on_every_option(dtype, options):
    ps = run_torch(dtype, "eager", SIZES, options)
    if dtype == torch.float16 and options["eps"] == 1e-8 and not options["weight_decay"]:
        assert any(p.isnan().any() for p in ps) and any(p.isinf().any() for p in ps)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_torch_eager_16bit_small_tensors_match_torch(dtype):
    for options in OPTIONS[:4]:
        run_torch(dtype, "eager", SMALL, options)


COMPILED = [  # one compile per (dtype, amsgrad, plain): the two plain kinds and L2 with amsgrad
    dict(eps=1e-8), dict(eps=1e-4, maximize=True, weight_decay=0.1, amsgrad=True),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("options", COMPILED, ids=ids)
def test_torch_compiled_16bit_matches_torch(dtype, options):
    run_torch(dtype, "compiled", SIZES, options)
