"""adamlib.torch.Adam inside the PyTorch machinery training code puts an optimizer into.

Each test runs the same seeded training twice, once with our Adam and once with
torch.optim.Adam (for-loop), through the same client: torch.compile, learning-rate
schedulers (one of them rewriting the betas), gradient clipping, autocast with a
GradScaler that skips a step, optimizer hooks, SWA and EMA averaging. The distributed
clients (FSDP2, DDP, ZeRO, the distributed checkpoint) are in test_torch_distributed.py;
checkpoints loaded across the two classes in test_torch_api.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters
from torch.optim.optimizer import register_optimizer_step_pre_hook

from adamlib.torch import Adam
from test_torch_oracle import assert_same_run, mlp, two_groups

IMPLS = ["eager", "compiled"]
# torch.compile imports torch code that warns of itself
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def twins(impl, dtype=torch.float64, lr=0.01, **options):
    """Two equal MLPs (two param groups), one under our Adam, one under torch's."""
    models = mlp(dtype), mlp(dtype)
    ours = Adam(two_groups(models[0], lr), lr=lr, impl=impl, **options)
    theirs = torch.optim.Adam(two_groups(models[1], lr), lr=lr, foreach=False, **options)
    return models, (ours, theirs)


def batches(steps, dtype=torch.float64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=gen, dtype=dtype), torch.randn(16, 4, generator=gen, dtype=dtype)) for _ in range(steps)]


def loss_of(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def backward(model, opt, batch):
    opt.zero_grad()
    loss = loss_of(model, batch)
    loss.backward()
    return loss


SCHEDULES = {
    "LinearLR": lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 0.5, 1.0, total_iters=6),
    "SequentialLR": lambda opt: torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, 0.1, total_iters=3),
              torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)], milestones=[3]),
    "OneCycleLR_betas": lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.05, total_steps=12, cycle_momentum=True, base_momentum=0.8, max_momentum=0.95),
    "ReduceLROnPlateau": lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1),
}


# -- torch.compile -----------------------------------------------------------------------------
class CountingBackend:
    """A torch.compile backend that counts the graphs dynamo compiles (each compilation and
    recompilation: distinct compile ids, as Inductor may be handed one graph twice), then
    runs Inductor on them, or runs them as traced."""

    def __init__(self, inductor: bool) -> None:
        self.compiles, self.inductor = set(), inductor

    @property
    def graphs(self) -> int:
        return len(self.compiles)

    def __call__(self, gm, example_inputs):
        self.compiles.add(str(torch._guards.CompileContext.current_compile_id()))
        if self.inductor:
            from torch._inductor.compile_fx import compile_fx

            return compile_fx(gm, example_inputs)
        return gm.forward


@pytest.fixture
def dynamo():
    """Dynamo's caches and counters emptied before and after (its recompile limit counts
    per code object, across optimizers)."""
    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


def compiled_run(cls, compiled, schedule, lr, backend=None, **options):
    """10 steps of an MLP (two param groups) under ``cls`` with an lr ``schedule``, its step
    compiled by ``compiled(opt, backend)`` (``None``: not compiled; torch's then runs its
    for-loop, the oracle). Returns the optimizer, the graphs compiled and the graph breaks."""
    torch._dynamo.reset()
    counters.clear()
    model = mlp(torch.float64)
    extra = dict(foreach=False) if cls is torch.optim.Adam and compiled is None else {}
    opt = cls(two_groups(model, lr), lr=lr, **extra, **options)
    scheduler = SCHEDULES[schedule](opt)
    backend = backend or CountingBackend(inductor=False)
    step = compiled(opt, backend) if compiled else opt.step
    for batch in batches(10):
        backward(model, opt, batch)
        step()
        scheduler.step()
    return opt, backend.graphs, sum(counters["graph_break"].values())


def tutorial(opt, backend):
    """PyTorch's "compiled optimizer" tutorial: ``opt.step()`` inside a compiled function."""

    @torch.compile(backend=backend, fullgraph=False)
    def step():
        opt.step()

    return step


def opt_step(opt, backend):
    return torch.compile(opt.step, backend=backend)


def test_the_tutorials_compiled_step_compiles_once_and_matches_torch(dynamo):
    """Inductor and all, with a tensor lr that a schedule changes every step: compiled once
    (as torch.optim.Adam in the same code), breaking the graph no more than torch's does
    (a scheduler wraps ``opt.step`` in a function dynamo does not trace), torch's numbers."""
    options = dict(amsgrad=True, weight_decay=0.1)
    lr = torch.tensor(0.01, dtype=torch.float64)
    ours, graphs, breaks = compiled_run(Adam, tutorial, "LinearLR", lr, CountingBackend(inductor=True), **options)
    _, torch_graphs, torch_breaks = compiled_run(torch.optim.Adam, tutorial, "LinearLR", lr, **options)
    oracle, _, _ = compiled_run(torch.optim.Adam, None, "LinearLR", lr, **options)
    assert graphs == torch_graphs == 1 and breaks <= torch_breaks, (graphs, torch_graphs, breaks, torch_breaks)
    assert_same_run(ours, oracle, 1e-10)


@pytest.mark.parametrize(("compiled", "schedule"), [(opt_step, "LinearLR"), (tutorial, "OneCycleLR_betas")],
                         ids=["opt_step-LinearLR", "tutorial-OneCycleLR_betas"])
def test_a_schedule_recompiles_no_more_than_torchs_optimizer(dynamo, compiled, schedule):
    """A float lr (or float betas) that a schedule rewrites every step: torch compiles its
    step twice (the second time with them as symbolic floats); ours no more, at torch's
    eager numbers (torch's own compiled step is 1e-6 off those: it computes its bias
    corrections from the float32 step count; ours in float64)."""
    ours, graphs, breaks = compiled_run(Adam, compiled, schedule, 0.01)
    _, torch_graphs, torch_breaks = compiled_run(torch.optim.Adam, compiled, schedule, 0.01)
    oracle, _, _ = compiled_run(torch.optim.Adam, None, schedule, 0.01)
    assert graphs <= min(torch_graphs, 2) and breaks <= torch_breaks, (graphs, torch_graphs, breaks, torch_breaks)
    assert_same_run(ours, oracle, 1e-10)


def test_compiled_step_is_one_graph_and_refuses_bad_input_before_changing_anything(dynamo):
    """With ``fullgraph=True`` (torch's own optimizer breaks its graph on purpose); a
    sparse gradient, or the state of another model, still raises before anything changes."""
    model = mlp(torch.float64)
    opt = Adam(model.parameters(), lr=0.01)
    step = torch.compile(opt.step, backend=CountingBackend(inductor=False), fullgraph=True)
    for batch in batches(2):
        backward(model, opt, batch)
        step()
    before = [p.detach().clone() for p in model.parameters()], copy.deepcopy(opt.state_dict())
    dense = model[2].bias.grad
    model[2].bias.grad = dense.to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        step()
    model[2].bias.grad = dense
    other = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 8)).double()
    donor = Adam(other.parameters())
    backward(other, donor, (torch.randn(16, 6, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)))
    donor.step()
    opt.load_state_dict(donor.state_dict())  # torch's load_state_dict does not look at shapes
    broken = copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match="optimizer state must have its shape"):
        step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before[0]))
    torch.testing.assert_close(opt.state_dict(), broken, rtol=0, atol=0)


# -- schedulers, clipping, mixed precision, hooks, averaging ----------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["SequentialLR", "OneCycleLR_betas", "ReduceLROnPlateau"])
def test_schedulers_drive_both_alike(impl, name):
    models, opts = twins(impl)
    schedules = [SCHEDULES[name](opt) for opt in opts]
    start = [(g["lr"], g["betas"]) for g in opts[0].param_groups]
    for batch in batches(12):
        for model, opt, schedule in zip(models, opts, schedules):
            backward(model, opt, batch)
            opt.step()
            schedule.step(1.0) if name == "ReduceLROnPlateau" else schedule.step()  # a plateau: the lr halves
    assert_same_run(*opts, 1e-10)
    assert [(g["lr"], g["betas"]) for g in opts[0].param_groups] == [(g["lr"], g["betas"]) for g in opts[1].param_groups]
    changed = 1 if name == "OneCycleLR_betas" else 0  # the schedule really moved what it drives
    assert all(now[changed] != then[changed] for now, then in zip([(g["lr"], g["betas"]) for g in opts[0].param_groups], start))


@pytest.mark.parametrize("impl", IMPLS)
def test_gradient_clipping(impl):
    models, opts = twins(impl)
    for batch in batches(10):
        for model, opt in zip(models, opts):
            backward(model, opt, batch)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.05)
            opt.step()
    assert norm > 0.05  # it clipped
    assert_same_run(*opts, 1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_autocast_and_a_grad_scaler_that_skips_a_step(impl):
    """bfloat16 autocast on the CPU, float32 parameters; an infinite gradient at step 3
    makes the scaler skip that step and lower its scale, for both alike."""
    models, opts = twins(impl, dtype=torch.float32)
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10) for _ in opts]
    for t, batch in enumerate(batches(8, dtype=torch.float32)):
        for model, opt, scaler in zip(models, opts, scalers):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = loss_of(model, batch)
            scaler.scale(loss).backward()
            if t == 3:
                model[0].weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale() < 2.0**10
    assert all(float(s["step"]) == 7 for s in opts[0].state.values())  # 8 steps, one skipped
    assert_same_run(*opts, 1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_optimizer_hooks(impl):
    """Step pre-hooks (one of them rescales the gradients) and post-hooks, the global ones
    too, and state-dict hooks, run for both alike."""
    models, opts = twins(impl)
    seen = {id(opt): [] for opt in opts}

    def halve_gradients(opt, args, kwargs):
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad.mul_(0.5)

    for opt in opts:
        opt.register_step_pre_hook(halve_gradients)
        opt.register_step_post_hook(lambda opt, args, kwargs: seen[id(opt)].append("post"))
        opt.register_state_dict_post_hook(lambda opt, state_dict: {**state_dict, "note": type(opt).__name__})
        opt.register_load_state_dict_pre_hook(lambda opt, state_dict: {k: v for k, v in state_dict.items() if k != "note"})
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen[id(opt)].append("global") if id(opt) in seen else None)
    try:
        for batch in batches(6):
            for model, opt in zip(models, opts):
                backward(model, opt, batch)
                opt.step()
    finally:
        handle.remove()
    assert seen[id(opts[0])] == seen[id(opts[1])] == ["global", "post"] * 6
    assert_same_run(*opts, 1e-10)
    state_dict = opts[0].state_dict()
    assert state_dict["note"] == "Adam"
    opts[1].load_state_dict(state_dict)  # the pre-hook drops the note
    torch.testing.assert_close(opts[1].state_dict()["state"], state_dict["state"], rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_swa_and_ema_averages(impl):
    """torch.optim.swa_utils: an SWA average with its SWALR schedule from step 5, and an
    exponential moving average, of both runs alike."""
    from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn

    models, opts = twins(impl)
    swas = [AveragedModel(model) for model in models]
    emas = [AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9)) for model in models]
    schedules = [SWALR(opt, swa_lr=0.005, anneal_epochs=3) for opt in opts]
    for t, batch in enumerate(batches(12)):
        for model, opt, swa, ema, schedule in zip(models, opts, swas, emas, schedules):
            backward(model, opt, batch)
            opt.step()
            ema.update_parameters(model)
            if t >= 5:
                swa.update_parameters(model)
                schedule.step()
    assert_same_run(*opts, 1e-10)
    for ours, theirs in (swas, emas):
        assert int(ours.n_averaged) == int(theirs.n_averaged) > 1
        for p, q in zip(ours.module.parameters(), theirs.module.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
