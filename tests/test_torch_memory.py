"""The compiled step allocates no parameter-sized temporaries; and the GPU path, where there is one.

Allocations are read from torch.profiler's memory events on the CPU (and from the CUDA
caching allocator's peak on a GPU). The eager path allocates temporaries the size of each
parameter, so the same measurement on it shows that the check can fail.
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from adamlib.torch import Adam
from test_torch_oracle import assert_same_run, lockstep, normal

NUMEL = 50_000  # per parameter: 200 kB in float32


def largest_allocation_during_step(impl: str, amsgrad: bool) -> int:
    params = [torch.nn.Parameter(torch.randn(NUMEL // 100, 100)) for _ in range(3)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = Adam(params, impl=impl, amsgrad=amsgrad, weight_decay=0.1)
    opt.step()  # state is created (and the update compiled) outside the measurement
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        opt.step()
    return max(e.cpu_memory_usage for e in prof.events())


@pytest.mark.parametrize("amsgrad", [False, True])
def test_compiled_step_allocates_nothing_parameter_sized(amsgrad):
    assert largest_allocation_during_step("compiled", amsgrad) < 1024


def test_the_measurement_sees_the_eager_paths_temporaries():
    assert largest_allocation_during_step("eager", False) >= NUMEL * 4


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_gpu_compiled_path_matches_torch(dtype, amsgrad):
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen, dtype=dtype).cuda() for s in [(64, 33), (33,), (), (1000,)]]
    for weight_decay in (0.0, 0.1):  # the plain update and the general one
        ours, theirs = lockstep(start, "compiled", 25, normal(gen), lr=0.01, amsgrad=amsgrad, weight_decay=weight_decay)
        assert_same_run(ours, theirs, 1e-10 if dtype == torch.float64 else 1e-5)


@cuda
def test_gpu_compiled_step_allocates_nothing_parameter_sized():
    params = [torch.nn.Parameter(torch.randn(1000, 1000, device="cuda")) for _ in range(4)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = Adam(params, impl="compiled")
    opt.step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    opt.step()
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - before < 1_000_000 * 4


@pytest.mark.parametrize("impl", ["eager", "compiled"])
def test_a_step_keeps_no_gradient_alive(impl):
    """After zero_grad, last step's gradients are freed (backward must not need twice the memory)."""
    import gc
    import weakref

    params = [torch.nn.Parameter(torch.randn(NUMEL)) for _ in range(2)]
    opt = Adam(params, impl=impl)
    refs = []
    for _ in range(2):
        for p in params:
            p.grad = torch.randn_like(p)
        refs = [weakref.ref(p.grad) for p in params]
        opt.step()
        opt.zero_grad()
    gc.collect()
    assert all(r() is None for r in refs)
