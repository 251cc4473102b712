"""adamlib.torch.Adam on every memory layout and tensor subclass a parameter can have.

The compiled update reads and writes memory directly, so each layout that can reach it must
either give torch.optim.Adam's numbers (the kernel takes plain, dense, non-overlapping
tensors; everything else is updated op by op, by the tensor's own operations) or be refused
with a clear error before anything changes. DTensor (FSDP2) is in test_torch_distributed.py.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch.testing._internal.two_tensor import TwoTensor

from adamlib.torch import Adam
from test_torch_oracle import assert_same_run

IMPLS = ["eager", "compiled"]
F64 = torch.float64


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=F64)


def both_runs(make, impl, steps=5, gradient=None, listed=None, **options):
    """Our Adam and torch.optim.Adam (for-loop) each on its own ``make(gen)`` parameters
    (equal values and layouts; ``listed(params)`` is the list the optimizers get), given
    equal gradients: ``gradient(gen, params)``, by default standard normal ones."""
    runs = []
    for cls, extra in ((Adam, dict(impl=impl)), (torch.optim.Adam, dict(foreach=False))):
        params = [torch.nn.Parameter(t) for t in make(torch.Generator().manual_seed(0))]
        params = listed(params) if listed else params
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "optimizer contains a parameter group with duplicate parameters")
            opt = cls(params, lr=0.05, **extra, **options)
        gen = torch.Generator().manual_seed(1)
        for _ in range(steps):
            grads = gradient(gen, params) if gradient else [torch.randn(p.shape, generator=gen, dtype=F64) for p in params]
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
        runs.append(opt)
    return runs


def flat_views(gen):
    """Contiguous views of one larger buffer, at unaligned offsets, on both sides of the
    compiled update's one-thread size (2**15)."""
    b = randn(gen, 1 + 1000 + 497 + 2 + 1 + 40_000 + 40_000)
    return [b[1:1001], b[1001:1498].view(7, 71), b[1498:1500], b[1500:1501], b[1501:41501], b[41501:].view(200, 200)]


class Logged(torch.Tensor):
    """A subclass with memory of its own whose operations (``__torch_function__``) are counted."""

    calls = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        Logged.calls += 1
        return super().__torch_function__(func, types, args, kwargs or {})


LAYOUTS = {
    "channels_last": lambda gen: [randn(gen, 4, 3, 5, 5).to(memory_format=torch.channels_last)],
    "views_of_a_larger_buffer": flat_views,
    "overlapping_views": lambda gen: (lambda b: [b[:1000], b[500:]])(randn(gen, 1500)),
    "the_same_memory_twice": lambda gen: (lambda b: [b[:1000], b[:1000]])(randn(gen, 1000)),
    "interleaved_views": lambda gen: (lambda b: [b[0::2], b[1::2]])(randn(gen, 2000)),
    "transposed_and_sliced": lambda gen: [randn(gen, 60, 40).t(), randn(gen, 50, 40)[:, 3:30]],
    "negative_view": lambda gen: [randn(gen, 300)._neg_view()],
    "a_torch_function_subclass": lambda gen: [randn(gen, 300).as_subclass(Logged)],
    "a_wrapper_subclass_without_memory": lambda gen: [TwoTensor(randn(gen, 300), randn(gen, 300))],
}


def components(t):
    return [t.a, t.b] if isinstance(t, TwoTensor) else [t]


def assert_same(ours, theirs):
    if any(isinstance(p, TwoTensor) for g in ours.param_groups for p in g["params"]):
        for p, q in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
            for a, b in zip(components(p.detach()), components(q.detach())):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    else:
        assert_same_run(ours, theirs, 1e-10)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_parameter_layout_matches_torch(impl, layout):
    def gradient(gen, params):  # a TwoTensor parameter needs a TwoTensor gradient
        gs = [torch.randn(p.shape, generator=gen, dtype=F64) for p in params]
        return [TwoTensor(g, 2 * g) if isinstance(p, TwoTensor) else g for p, g in zip(params, gs)]

    Logged.calls = 0
    ours, theirs = both_runs(LAYOUTS[layout], impl, gradient=gradient)
    assert_same(ours, theirs)
    if layout == "a_torch_function_subclass":
        assert Logged.calls > 0 and type(ours.param_groups[0]["params"][0]) is Logged


GRADIENTS = {
    "channels_last": lambda gen, ps: [torch.randn(ps[0].shape, generator=gen, dtype=F64).to(memory_format=torch.channels_last)],
    "transposed": lambda gen, ps: [torch.randn(ps[0].shape[::-1], generator=gen, dtype=F64).permute(3, 2, 1, 0)],
    "the_parameter_itself": lambda gen, ps: [ps[0].detach()],
    "another_parameter": lambda gen, ps: [torch.randn(ps[0].shape, generator=gen, dtype=F64), ps[0].detach()],
    "a_view_of_a_larger_buffer": lambda gen, ps: list(torch.randn(2, *ps[0].shape, generator=gen, dtype=F64).unbind())[:1],
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", list(GRADIENTS))
def test_every_gradient_layout_matches_torch(impl, kind):
    """Gradients are only read: a strided one is copied, one over memory the step writes
    (another parameter) is read as torch's for-loop reads it, after that parameter's update."""
    n = 2 if kind == "another_parameter" else 1
    ours, theirs = both_runs(lambda gen: [randn(gen, 6, 5, 4, 3) for _ in range(n)], impl, gradient=GRADIENTS[kind])
    assert_same(ours, theirs)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_parameter_listed_twice_is_updated_twice_as_in_torch(impl):
    """torch warns (a future error) and updates it twice, at two step numbers."""
    with pytest.warns(UserWarning, match="duplicate parameters"):
        Adam([torch.nn.Parameter(torch.ones(3))] * 2)
    ours, theirs = both_runs(lambda gen: [randn(gen, 50), randn(gen, 40)], impl, listed=lambda ps: [ps[0], ps[1], ps[0]],
                             gradient=lambda gen, ps: [torch.randn(p.shape, generator=gen, dtype=F64) for p in ps])
    assert_same(ours, theirs)
    assert float(ours.state[ours.param_groups[0]["params"][0]]["step"]) == 10


@pytest.mark.parametrize("impl", ["compiled", "auto"])
def test_meta_parameters_step_as_in_torch(impl, monkeypatch):
    """No memory to read: updated op by op (the kernel is never compiled for them)."""
    monkeypatch.setattr("adamlib.torch.optimizer.AUTO_COMPILE_MIN_NUMEL", 0)
    opts = []
    for cls, extra in ((Adam, dict(impl=impl)), (torch.optim.Adam, {})):
        p = torch.nn.Parameter(torch.empty(300, 200, device="meta"))
        p.grad = torch.empty_like(p)
        opts.append(cls([p], **extra))
        opts[-1].step()
    (p, state), (_, their_state) = (next(iter(opt.state.items())) for opt in opts)
    assert state.keys() == their_state.keys() and float(state["step"]) == 1
    assert state["exp_avg"].device.type == "meta" and state["exp_avg"].shape == p.shape


# -- refused, before anything changes ---------------------------------------------------------
def _another_models_state(opt, params):
    other = [torch.nn.Parameter(torch.randn(p.shape[::-1] if p.dim() == 2 else p.shape, dtype=p.dtype)) for p in params]
    donor = Adam(other)
    for q in other:
        q.grad = torch.ones_like(q)
    donor.step()
    opt.load_state_dict(donor.state_dict())


def _half_precision_moment(opt, params):
    opt.state[params[0]]["exp_avg_sq"] = opt.state[params[0]]["exp_avg_sq"].half()


REFUSED = {
    "a_state_dict_of_another_model": (_another_models_state, "optimizer state must have its shape"),
    "a_moment_of_another_dtype": (_half_precision_moment, "optimizer state must have its shape, dtype"),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_moments_unlike_their_parameter_are_refused_before_anything_changes(impl, case):
    """The compiled kernel would read and write past such a moment's end."""
    spoil, message = REFUSED[case]
    params = [torch.nn.Parameter(torch.randn(40, 30, dtype=F64)), torch.nn.Parameter(torch.randn(30, dtype=F64))]
    opt = Adam(params, impl=impl)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    spoil(opt, params)
    before = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match=message):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before[0]))
    torch.testing.assert_close(opt.state_dict(), before[1], rtol=0, atol=0)


PARAMETERS_REFUSED = {
    "float8": (lambda: torch.randn(30).to(torch.float8_e4m3fn), "got torch.float8_e4m3fn"),
    "expanded": (lambda: torch.randn(1, 30, dtype=F64).expand(4, 30), "elements that share memory"),
    "a_conjugate_view": (lambda: torch.randn(30, dtype=torch.complex128).conj(), "conjugate view"),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(PARAMETERS_REFUSED))
def test_parameters_torch_cannot_update_are_refused_before_anything_changes(impl, case):
    """torch.optim.Adam fails on these too, after updating the parameters before them."""
    make, message = PARAMETERS_REFUSED[case]
    first, bad = torch.nn.Parameter(torch.randn(20, dtype=F64)), torch.nn.Parameter(make())
    first.grad = torch.randn_like(first)
    bad.grad = torch.zeros(bad.shape, dtype=bad.dtype)
    opt = Adam([first, bad], impl=impl)
    before = first.detach().clone(), bad.detach().clone()
    with pytest.raises(RuntimeError, match=message):
        opt.step()
    assert torch.equal(first, before[0]) and torch.equal(_bytes(bad), _bytes(before[1]))
    assert not opt.state


def _bytes(t):
    return t.detach().resolve_conj().contiguous().view(torch.uint8)
