"""adamlib.torch.Adam in torch.distributed, on 2 gloo processes of this machine, against torch.optim.Adam.

One spawn runs every scenario (starting processes and compiling the update take most of
the time): FSDP2 (``fully_shard``: the parameters are ``DTensor`` shards) under each
``impl``, with a model large enough for ``impl="auto"`` to compile; the distributed
checkpoint's ``get_/set_optimizer_state_dict`` from either class into the other;
``DistributedDataParallel``; ``ZeroRedundancyOptimizer``; and ``DTensor`` gradients and
moments laid out otherwise than their parameter. Each process compares its own shards
with torch's in the same seeded run (float64, to 1e-10) and records each scenario's
outcome, which the test reads.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import traceback
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from torch import nn

from adamlib.torch import AUTO_COMPILE_MIN_NUMEL, Adam
from adamlib.torch import update as update_module

WORLD = 2
TIMEOUT_S = 300  # the whole spawn: a cold compile of the update on a busy 2-core machine included
RTOL = 1e-10

try:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor, init_device_mesh

    UNAVAILABLE = None if dist.is_available() and dist.is_gloo_available() else "torch.distributed with gloo"
except ImportError as error:  # a torch built without torch.distributed
    UNAVAILABLE = f"torch.distributed ({error})"


# -- what each process runs ----------------------------------------------------------------------
def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    if isinstance(actual, DTensor):
        actual, expected = actual.to_local(), expected.to_local()
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=RTOL * scale, msg=lambda m: f"{what}: {m}")


def same_run(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer) -> None:
    """This process's shards of the parameters and of every state tensor agree."""
    pairs = zip((p for g in ours.param_groups for p in g["params"]), (q for g in theirs.param_groups for q in g["params"]))
    for i, (p, q) in enumerate(pairs):
        close(p.detach(), q.detach(), f"parameter {i}")
        assert ours.state[p].keys() == theirs.state[q].keys()
        for key, value in theirs.state[q].items():
            close(ours.state[p][key], value, f"parameter {i} state[{key!r}]")


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, width: int, seed: int) -> None:
    """``steps`` steps on random batches (the same for every model, different on each rank)."""
    gen = torch.Generator().manual_seed(1000 * seed + dist.get_rank())
    for _ in range(steps):
        x = torch.randn(8, width, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def mlp(*widths: int) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.Tanh())][:-1]
    return nn.Sequential(*layers).double()


def sharded(model: nn.Sequential) -> nn.Sequential:
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    return fully_shard(model)


class CompiledCalls:
    """Counts the calls of the compiled update (the path ``impl`` chose)."""

    def __init__(self) -> None:
        self.count, original = 0, update_module.CompiledUpdate.run

        def counted(update, *args, **kwargs):
            self.count += 1
            return original(update, *args, **kwargs)

        update_module.CompiledUpdate.run = counted


BIG = (1024, 1024, 1024, 16)  # 2.1M parameters: over AUTO_COMPILE_MIN_NUMEL in each process's half


def fsdp2(impl: str, compiled: CompiledCalls) -> None:
    models = sharded(mlp(*BIG)), sharded(mlp(*BIG))
    local = sum(p.to_local().numel() for p in models[0].parameters())
    assert isinstance(next(models[0].parameters()), DTensor) and local >= AUTO_COMPILE_MIN_NUMEL
    ours = Adam(models[0].parameters(), lr=0.01, impl=impl)
    theirs = torch.optim.Adam(models[1].parameters(), lr=0.01, foreach=False)
    before = compiled.count
    for model, opt in zip(models, (ours, theirs)):
        train(model, opt, 3, BIG[0], seed=1)
    assert (compiled.count > before) == (impl != "eager"), (impl, compiled.count - before)
    same_run(ours, theirs)


def checkpoint(source_cls: type, target_cls: type) -> None:
    """get_optimizer_state_dict of one class, set_optimizer_state_dict into a fresh other
    (which first steps at lr=0 to create its state), then both go on alike."""
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict, get_optimizer_state_dict, set_model_state_dict, set_optimizer_state_dict)

    def make(cls, model):
        extra = dict(impl="compiled") if cls is Adam else dict(foreach=False)
        return cls(model.parameters(), lr=0.01, **extra)

    source_model = sharded(mlp(64, 64, 8))
    source = make(source_cls, source_model)
    train(source_model, source, 3, 64, seed=2)
    target_model = sharded(mlp(64, 64, 8))
    set_model_state_dict(target_model, get_model_state_dict(source_model))
    target = make(target_cls, target_model)
    saved = copy.deepcopy(get_optimizer_state_dict(source_model, source))  # it shares the source's tensors
    set_optimizer_state_dict(target_model, target, saved)
    for model, opt in ((source_model, source), (target_model, target)):
        train(model, opt, 3, 64, seed=3)
    ours, theirs = (source, target) if source_cls is Adam else (target, source)
    same_run(ours, theirs)


def ddp(zero: bool) -> None:
    """DistributedDataParallel, and ZeroRedundancyOptimizer over it (each rank updates its
    share of the parameters, then broadcasts them)."""
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    models = DistributedDataParallel(mlp(32, 48, 8)), DistributedDataParallel(mlp(32, 48, 8))
    options = [dict(impl="compiled"), dict(foreach=False)]
    if zero:
        opts = [ZeroRedundancyOptimizer(m.parameters(), optimizer_class=cls, lr=0.01, **o)
                for m, cls, o in zip(models, (Adam, torch.optim.Adam), options)]
    else:
        opts = [cls(m.parameters(), lr=0.01, **o) for m, cls, o in zip(models, (Adam, torch.optim.Adam), options)]
    for model, opt in zip(models, opts):
        train(model, opt, 4, 32, seed=4)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        close(p.detach(), q.detach(), "parameter")
    same_run(*(opt.optim if zero else opt for opt in opts))  # ZeRO: this rank's share


def gradients_placed_otherwise() -> None:
    """A Shard(0) parameter with a Partial or a Replicate gradient: redistributed first,
    as torch's DTensor operations do."""
    mesh = init_device_mesh("cpu", (WORLD,))
    gen = torch.Generator().manual_seed(5)  # the same numbers on each rank
    start = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    params = [nn.Parameter(distribute_tensor(start, mesh, [Shard(0)])) for _ in range(3)]
    opts = [Adam(params[:1], lr=0.05, impl="eager"), Adam(params[1:2], lr=0.05, impl="compiled"),
            torch.optim.Adam(params[2:], lr=0.05, foreach=False)]
    for step in range(4):
        g = torch.randn(6, 5, generator=gen, dtype=torch.float64)
        for p, opt in zip(params, opts):
            p.grad = (DTensor.from_local(g / WORLD, mesh, [Partial()]) if step % 2
                      else distribute_tensor(g, mesh, [Replicate()]))
            opt.step()
    same_run(opts[0], opts[2])
    same_run(opts[1], opts[2])


def refused() -> None:
    """Gradients and moments that are not placed as their parameter: an error, nothing changed."""
    mesh = init_device_mesh("cpu", (WORLD,))
    dtensor = nn.Parameter(distribute_tensor(torch.ones(4, 3, dtype=torch.float64), mesh, [Shard(0)]))
    plain = nn.Parameter(torch.ones(4, 3, dtype=torch.float64))
    for impl in ("eager", "compiled"):
        opt = Adam([dtensor, plain], impl=impl)
        dtensor.grad, plain.grad = distribute_tensor(torch.ones(4, 3, dtype=torch.float64), mesh, [Shard(0)]), torch.ones(4, 3, dtype=torch.float64)
        opt.step()
        before = dtensor.to_local().clone(), plain.detach().clone()
        spoilt = [
            ("plain tensor parameter needs plain tensor gradients", lambda: setattr(plain, "grad", distribute_tensor(torch.ones(4, 3, dtype=torch.float64), mesh, [Replicate()]))),
            ("DTensor parameter .* needs DTensor gradients", lambda: setattr(dtensor, "grad", torch.ones(4, 3, dtype=torch.float64))),
            ("moments with its placements: state\\['exp_avg'\\]", lambda: opt.state[dtensor].update(exp_avg=opt.state[dtensor]["exp_avg"].redistribute(mesh, [Replicate()]))),
        ]
        for message, spoil in spoilt:
            saved = dtensor.grad, plain.grad, dict(opt.state[dtensor])
            spoil()
            try:
                opt.step()
            except RuntimeError as error:
                assert re.search(message, str(error)), (message, str(error))
            else:
                raise AssertionError(f"no error: {message}")
            assert torch.equal(dtensor.to_local(), before[0]) and torch.equal(plain.detach(), before[1])
            assert all(float(s["step"]) == 1 for s in opt.state.values())
            dtensor.grad, plain.grad = saved[:2]
            opt.state[dtensor].update(saved[2])


def scenarios(compiled: CompiledCalls) -> dict:
    return {
        "fsdp2_eager": lambda: fsdp2("eager", compiled),
        "fsdp2_compiled": lambda: fsdp2("compiled", compiled),
        "fsdp2_auto": lambda: fsdp2("auto", compiled),
        "checkpoint_torch_to_ours": lambda: checkpoint(torch.optim.Adam, Adam),
        "checkpoint_ours_to_torch": lambda: checkpoint(Adam, torch.optim.Adam),
        "ddp": lambda: ddp(zero=False),
        "zero_redundancy_optimizer": lambda: ddp(zero=True),
        "dtensor_gradients_placed_otherwise": gradients_placed_otherwise,
        "dtensor_refusals": refused,
    }


def run(rank: int, store: str, out: str) -> None:
    from torch._inductor import config as inductor_config

    torch.set_num_threads(1)  # two processes on two cores
    inductor_config.compile_threads = 1  # no pool of compile workers per process
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=120))
    compiled, outcomes = CompiledCalls(), {}
    for name, scenario in scenarios(compiled).items():
        start = time.perf_counter()
        try:
            scenario()
            outcomes[name] = dict(ok=True, seconds=time.perf_counter() - start)
        except Exception:
            outcomes[name] = dict(ok=False, error=traceback.format_exc())
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(outcomes, f)
    dist.barrier()
    dist.destroy_process_group()


# -- the test -----------------------------------------------------------------------------------------
def test_every_scenario_on_two_gloo_processes_matches_torch(tmp_path):
    """One test, so that pytest-xdist cannot split the scenarios (and the spawn) over workers;
    a failure lists every scenario that failed, on which rank, with its traceback."""
    if UNAVAILABLE:
        pytest.skip(f"this torch build has no {UNAVAILABLE}, needed to run FSDP2 on a CPU")
    import torch.multiprocessing as mp

    context = mp.start_processes(run, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=max(1.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} processes did not finish within {TIMEOUT_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    outcomes = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    assert all(set(outcome) == set(scenarios(None)) for outcome in outcomes)
    failed = [f"{name} on rank {rank}:\n{outcome[name]['error']}"
              for rank, outcome in enumerate(outcomes) for name in outcome if not outcome[name]["ok"]]
    assert not failed, "\n".join(failed)
