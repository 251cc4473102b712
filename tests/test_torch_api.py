"""adamlib.torch.Adam as a torch.optim.Optimizer: construction, errors, state dicts, copies.

What PyTorch's own optimizer tests (test/test_optim.py) ask of an optimizer, asked of ours,
with torch.optim.Adam as the reference wherever it has an answer.
"""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch
from torch.testing._internal.common_optimizers import (
    OptimizerErrorEnum,
    optim_error_inputs_func_adam,
    optim_inputs_func_adam,
)

from adamlib.torch import Adam
from adamlib.torch import update as update_module
from test_torch_oracle import assert_same_run, mlp, two_groups

TORCH_ONLY_SWITCHES = {"foreach", "fused", "capturable", "differentiable"}


def fresh_pair(dtype=torch.float64, impl="eager", **options):
    """Two equal MLPs, one under our Adam and one under torch.optim.Adam (for-loop)."""
    models = mlp(dtype), mlp(dtype)
    ours = Adam(two_groups(models[0], 0.01), lr=0.01, impl=impl, **options)
    theirs = torch.optim.Adam(two_groups(models[1], 0.01), lr=0.01, foreach=False, **options)
    return models, ours, theirs


def train(model, opt, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    for _ in range(steps):
        x, y = torch.randn(16, 6, generator=gen, dtype=dtype), torch.randn(16, 4, generator=gen, dtype=dtype)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


# -- construction and its errors -------------------------------------------------------------------
def _sample_params():
    return [torch.nn.Parameter(torch.randn(1, 1))]


@pytest.mark.parametrize(
    "error_input",
    [e for e in optim_error_inputs_func_adam("cpu", torch.float32)
     if not TORCH_ONLY_SWITCHES & set(e.optimizer_error_input.kwargs)],
    ids=lambda e: e.optimizer_error_input.desc,
)
def test_pytorchs_error_inputs_raise_as_in_torch(error_input):
    """PyTorch's own error cases for Adam (those using torch-only switches left out)."""
    given = error_input.optimizer_error_input
    assert error_input.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR
    for cls in (torch.optim.Adam, Adam):
        params = given.params if given.params is not None else _sample_params()
        if issubclass(error_input.error_type, Warning):
            with pytest.warns(error_input.error_type):
                cls(params, **given.kwargs)
        else:
            with pytest.raises(error_input.error_type):
                cls(params, **given.kwargs)


BAD_ARGUMENTS = [
    dict(lr=-1e-3), dict(lr=float("nan")), dict(lr="0.1"), dict(lr=None), dict(lr=torch.tensor([1e-3, 1e-3])),
    dict(eps=-1e-8), dict(eps=float("nan")), dict(eps="x"),
    dict(weight_decay=-0.1), dict(weight_decay=float("nan")),
    dict(betas=(1.0, 0.999)), dict(betas=(0.9, 1.0)), dict(betas=(-0.1, 0.999)), dict(betas=(0.9, -1e-3)),
    dict(betas=(float("nan"), 0.999)), dict(betas=(0.9, torch.tensor(0.99))), dict(betas=(0.9, "x")),
]


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS, ids=repr)
def test_bad_arguments_raise_the_exception_type_torch_raises(kwargs):
    with pytest.raises(Exception) as theirs:
        torch.optim.Adam(_sample_params(), **kwargs)
    with pytest.raises(theirs.type):
        Adam(_sample_params(), **kwargs)


@pytest.mark.parametrize("kwargs", [dict(lr=float("inf")), dict(eps=float("inf")), dict(weight_decay=float("inf"))], ids=repr)
def test_infinite_hyperparameters_are_refused_although_torch_takes_them(kwargs):
    torch.optim.Adam(_sample_params(), **kwargs)
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        Adam(_sample_params(), **kwargs)


def test_a_two_element_tensor_beta_gets_a_value_error():
    """torch fails here on the truth value of a two-element tensor (RuntimeError)."""
    with pytest.raises(ValueError, match="betas\\[0\\]"):
        Adam(_sample_params(), betas=(torch.tensor([0.9, 0.8]), torch.tensor(0.99)))


def test_out_of_range_options_in_a_param_group_are_refused_before_anything_is_added():
    p, q = _sample_params()[0], _sample_params()[0]
    opt = Adam([p])
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [q], "lr": -1.0})
    with pytest.raises(ValueError, match="beta"):
        Adam([{"params": [q], "betas": (0.9, 1.5)}])
    assert len(opt.param_groups) == 1


def test_integer_betas_are_numbers_too():
    Adam(_sample_params(), betas=(0, 0))


def test_unknown_impl_and_torch_only_switches_are_refused():
    with pytest.raises(ValueError, match="impl"):
        Adam(_sample_params(), impl="fast")
    with pytest.raises(TypeError, match="fused"):
        Adam(_sample_params(), fused=True)


@pytest.mark.parametrize("given", optim_inputs_func_adam("cpu"), ids=lambda o: o.desc)
def test_pytorchs_adam_inputs_go_the_right_way(given):
    """Minimising a quadratic lowers it (raises it under maximize), with a schedule on the way."""
    x = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = Adam([x], **{"lr": 0.05, **given.kwargs})
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)
    start = float((x**2).sum().detach())
    for _ in range(50):
        opt.zero_grad()
        (x**2).sum().backward()
        opt.step()
        schedule.step()
    end = float((x**2).sum().detach())
    assert (end > start) if given.kwargs.get("maximize") else (end < 0.9 * start)


@pytest.mark.parametrize("impl", ["eager", "compiled"])
def test_named_parameters_and_param_groups_as_torch(impl):
    torch.manual_seed(0)
    models = mlp(torch.float64), mlp(torch.float64)
    ours = Adam(models[0].named_parameters(), lr=0.02, impl=impl)
    theirs = torch.optim.Adam(models[1].named_parameters(), lr=0.02, foreach=False)
    for model, opt in zip(models, (ours, theirs)):
        train(model, opt, 10)
    assert_same_run(ours, theirs, 1e-10)
    assert ours.state_dict()["param_groups"][0]["param_names"] == theirs.state_dict()["param_groups"][0]["param_names"]


def test_closure_zero_grad_and_printing():
    model = mlp(torch.float64)
    opt = Adam(model.parameters())
    x = torch.randn(4, 6, dtype=torch.float64)

    def closure():
        opt.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.shape == () and all(p.grad is not None for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert "bias_correction: True" in repr(opt) and repr(opt).startswith("Adam (")


# -- steps that must change nothing -------------------------------------------------------------------
def test_no_gradients_no_change_no_state():
    model = mlp(torch.float64)
    before = copy.deepcopy(model.state_dict())
    opt = Adam(model.parameters(), weight_decay=0.1)
    opt.step()
    assert not opt.state
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("impl", ["eager", "compiled"])
def test_a_sparse_gradient_raises_and_changes_nothing(impl):
    """Even when an earlier param group has dense gradients (torch would have updated it)."""
    dense, sparse = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = Adam([{"params": [dense]}, {"params": [sparse]}], impl=impl)
    dense.grad = torch.randn(3)
    sparse.grad = torch.randn(3).to_sparse()
    before = dense.detach().clone(), sparse.detach().clone()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    assert torch.equal(dense, before[0]) and torch.equal(sparse, before[1])
    assert not opt.state


def _swap_grad_data(p):  # autograd's setter refuses such gradients; .data lets them in
    p.grad.data = torch.randn(p.numel() + 5, dtype=p.dtype)


def _double_grad(p):
    p.grad_dtype = None  # a parameter may be allowed a gradient of another dtype
    p.grad = torch.randn(p.shape, dtype=torch.float64)


@pytest.mark.parametrize("impl", ["eager", "compiled"])
@pytest.mark.parametrize("spoil", [_swap_grad_data, _double_grad], ids=["shape", "dtype"])
def test_a_gradient_unlike_its_parameter_raises_and_changes_nothing(impl, spoil):
    """The compiled kernel would read past such a gradient's end or misread its bytes."""
    params = [torch.nn.Parameter(torch.randn(40, 30)) for _ in range(3)]
    opt = Adam(params, impl=impl)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    spoil(params[2])
    before = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match="gradient must have its shape, dtype and device"):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before[0]))
    torch.testing.assert_close(opt.state_dict(), before[1], rtol=0, atol=0)


def test_a_compiled_step_that_cannot_compile_raises_and_changes_nothing(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(update_module, "CompiledUpdate", broken)
    monkeypatch.setattr(update_module, "_compiled", {})
    first, second = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = Adam([{"params": [first]}, {"params": [second]}], impl="compiled")
    first.grad, second.grad = torch.randn(3), torch.randn(3, dtype=torch.float64)
    before = first.detach().clone(), second.detach().clone()
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        opt.step()
    assert torch.equal(first, before[0]) and torch.equal(second, before[1])
    assert not opt.state


@pytest.mark.parametrize("impl", ["eager", "compiled"])
@pytest.mark.parametrize(
    "options",
    [dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled_weight_decay=True), dict(amsgrad=True, maximize=True)],
    ids=repr,
)
def test_a_step_at_lr_zero_changes_no_parameter(impl, options):
    """torch.distributed.checkpoint creates optimizer state by stepping at lr=0."""
    model = mlp(torch.float64)
    before = [p.detach().clone() for p in model.parameters()]
    opt = Adam(model.parameters(), lr=0.0, impl=impl, **options)
    train(model, opt, 1)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(float(s["step"]) == 1 for s in opt.state.values())


@pytest.mark.parametrize("impl", ["eager", "compiled"])
def test_zero_gradients_change_nothing_and_gradients_are_never_written(impl):
    params = [torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64)) for _ in range(2)]
    before = [p.detach().clone() for p in params]
    opt = Adam(params, impl=impl, amsgrad=True, maximize=True)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    opt.param_groups[0]["weight_decay"] = 0.1
    grads = [torch.randn_like(p) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads))


# -- state dicts: torch.optim.Adam's format, both ways ----------------------------------------------
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
@pytest.mark.parametrize("impl", ["eager", "compiled"])
def test_a_checkpoint_of_either_continues_identically_in_the_other(direction, impl):
    options = dict(amsgrad=True, weight_decay=0.1)
    models, ours, theirs = fresh_pair(impl=impl, **options)
    source, target = (theirs, ours) if direction == "torch_to_ours" else (ours, theirs)
    source_model = models[1] if source is theirs else models[0]
    target_model = models[0] if source is theirs else models[1]
    train(source_model, source, 12)
    target_model.load_state_dict(source_model.state_dict())
    target.load_state_dict(copy.deepcopy(source.state_dict()))
    for model, opt in ((source_model, source), (target_model, target)):
        train(model, opt, 15, seed=2)
    assert_same_run(ours, theirs, 1e-10)


def test_state_dict_has_torchs_layout():
    models, ours, theirs = fresh_pair(amsgrad=True)
    for model, opt in zip(models, (ours, theirs)):
        train(model, opt, 3)
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == reference["state"].keys()
    for index, state in reference["state"].items():
        assert mine["state"][index].keys() == state.keys()
        step = mine["state"][index]["step"]
        assert step.dtype == state["step"].dtype == torch.float32 and step.device.type == "cpu" and step.shape == ()
    extra = {"bias_correction"}
    assert [set(g) - extra for g in mine["param_groups"]] == [set(g) - TORCH_ONLY_SWITCHES for g in reference["param_groups"]]


def test_state_dict_is_deterministic_and_survives_torch_save_with_weights_only():
    models, ours, _ = fresh_pair()
    twin_model = mlp(torch.float64)
    twin = Adam(two_groups(twin_model, 0.01), lr=0.01)
    for model, opt in ((models[0], ours), (twin_model, twin)):
        train(model, opt, 5)
    torch.testing.assert_close(ours.state_dict(), twin.state_dict(), rtol=0, atol=0)
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = Adam(two_groups(mlp(torch.float64), 0.01), lr=0.01)
    fresh.load_state_dict(loaded)
    torch.testing.assert_close(fresh.state_dict(), ours.state_dict(), rtol=0, atol=0)


def test_older_checkpoints_load_numeric_steps_and_missing_options():
    models, ours, theirs = fresh_pair(maximize=True)
    for model, opt in zip(models, (ours, theirs)):
        train(model, opt, 4)
    old = copy.deepcopy(theirs.state_dict())
    for group in old["param_groups"]:
        del group["maximize"], group["decoupled_weight_decay"], group["foreach"]
    for state in old["state"].values():
        state["step"] = state["step"].item()
    fresh_model = copy.deepcopy(models[1])
    fresh = Adam(two_groups(fresh_model, 0.01), lr=0.01)
    fresh.load_state_dict(old)
    assert all(g["bias_correction"] and not g["maximize"] for g in fresh.param_groups)
    assert all(torch.is_tensor(s["step"]) and s["step"].dtype == torch.float32 for s in fresh.state.values())
    train(fresh_model, fresh, 2)


def test_deepcopy_and_pickle_keep_everything_public():
    models, ours, _ = fresh_pair(impl="compiled")
    train(models[0], ours, 3)
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        public = {k for k in vars(ours) if not k.startswith("_")}
        assert {k for k in vars(clone) if not k.startswith("_")} == public and clone.impl == "compiled"
        torch.testing.assert_close(clone.state_dict(), ours.state_dict(), rtol=0, atol=0)
    clone = copy.deepcopy(ours)
    first = next(iter(clone.state.values()))
    first["exp_avg"].add_(1.0)
    assert not torch.equal(first["exp_avg"], next(iter(ours.state.values()))["exp_avg"])


def test_a_scheduler_changes_lr_between_steps_as_in_torch():
    models, ours, theirs = fresh_pair()
    schedules = [torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=20) for opt in (ours, theirs)]
    for _ in range(20):
        for model, opt in zip(models, (ours, theirs)):
            train(model, opt, 1)
        for schedule in schedules:
            schedule.step()
    assert_same_run(ours, theirs, 1e-10)


# -- choosing the path ------------------------------------------------------------------------------
def test_auto_uses_eager_below_the_threshold_and_compiled_above(monkeypatch):
    used, run = [], update_module.CompiledUpdate.run
    monkeypatch.setattr(update_module.CompiledUpdate, "run", lambda self, *a: used.append("compiled") or run(self, *a))
    models, ours, theirs = fresh_pair(impl="auto")
    train(models[0], ours, 2)  # the second step takes the short way (the plan the first made)
    assert used == [] and ours.paths() == {(torch.device("cpu"), torch.float64): "eager"}
    monkeypatch.setattr("adamlib.torch.optimizer.AUTO_COMPILE_MIN_NUMEL", 0)
    train(models[0], ours, 1)
    assert used == ["compiled", "compiled"]  # one call per param group
    assert ours.paths() == {(torch.device("cpu"), torch.float64): "compiled"}
    train(models[1], theirs, 2)
    train(models[1], theirs, 1)
    assert_same_run(ours, theirs, 1e-10)


def test_compiling_leaves_the_global_random_stream_alone(monkeypatch):
    """A first step must not shift a seeded run's later random numbers (dropout, shuffling)."""
    monkeypatch.setattr(update_module, "_compiled", {})  # compile afresh
    p = torch.nn.Parameter(torch.randn(5))
    p.grad = torch.randn(5)
    opt = Adam([p], impl="compiled")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    opt.step()
    assert torch.equal(torch.rand(3), expected)


def test_without_inductor_s_generated_call_the_compiled_graph_s_entry_gives_the_same(monkeypatch):
    """A step calls the code Inductor generated when it can; else the compiled graph's own
    entry (AOTAutograd's wrapper), with the same results."""
    monkeypatch.setattr(update_module.CompiledUpdate, "_generated_call", lambda self, *a: None)
    monkeypatch.setattr(update_module, "_compiled", {})  # compile afresh
    models, ours, theirs = fresh_pair(impl="compiled", amsgrad=True, weight_decay=0.1)
    for model, opt in zip(models, (ours, theirs)):
        train(model, opt, 4)
    assert_same_run(ours, theirs, 1e-10)
    assert all(u._call.__name__ == "<lambda>" for u in update_module._compiled.values())


def test_auto_falls_back_to_eager_with_a_warning_when_compilation_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(update_module, "CompiledUpdate", broken)
    monkeypatch.setattr(update_module, "_compiled", {})
    monkeypatch.setattr("adamlib.torch.optimizer.AUTO_COMPILE_MIN_NUMEL", 0)
    models, ours, theirs = fresh_pair(impl="auto")
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        for model, opt in zip(models, (ours, theirs)):
            train(model, opt, 5)
    assert_same_run(ours, theirs, 1e-10)
    model = mlp(torch.float64)
    strict = Adam(model.parameters(), impl="compiled")
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"), warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, strict, 1)
