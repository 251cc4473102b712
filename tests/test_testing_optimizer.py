"""adamlib.testing.check_adam_optimizer: correct optimizer classes pass, each known bug is
caught and named.

The student classes are written as a student would: one correct class whose step calls small
methods, and one subclass per bug that rewrites one of them the wrong way.
"""

import pytest

torch = pytest.importorskip("torch")

from adamlib.testing import OPTIMIZER_BUGS, check_adam_optimizer  # noqa: E402


class StudentAdam(torch.optim.Optimizer):
    """A correct Adam: per-tensor state and step count, group lr read at every step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def state_of(self, p):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["m"] = torch.zeros_like(p)
            state["v"] = torch.zeros_like(p)
        return state

    def count(self, state):
        state["step"] += 1
        return state["step"]

    def grad_of(self, p):
        return p.grad

    def lr_of(self, group):
        return group["lr"]

    def decay(self, p, g, group, lr):
        wd = group["weight_decay"]
        if wd and group["decoupled_weight_decay"]:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g + wd * p
        return g

    def begin_step(self):
        pass

    @torch.no_grad()
    def step(self, closure=None):
        self.begin_step()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = self.lr_of(group)
            for p in group["params"]:
                g = self.grad_of(p)
                if g is None:
                    continue
                state = self.state_of(p)
                t = self.count(state)
                g = self.decay(p, g, group, lr)
                state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1**t)
                v_hat = state["v"] / (1 - beta2**t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + group["eps"]))


class FunctionalAdam(torch.optim.Optimizer):
    """A correct Adam in another style: out-of-place tensors, state under its own names,
    no weight decay option."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (b1, b2), eps, lr = group["betas"], group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                t = s.get("t", 0) + 1
                m = b1 * s.get("exp_avg", 0) + (1 - b1) * p.grad
                v = b2 * s.get("exp_avg_sq", 0) + (1 - b2) * p.grad**2
                s.update(t=t, exp_avg=m, exp_avg_sq=v)
                step_size = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
                p.copy_(p - step_size * m / (v.sqrt() + eps * (1 - b2**t) ** 0.5))


class StudentAdamW(torch.optim.Optimizer):
    """A correct AdamW: weight_decay is always decoupled, as in torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                p.mul_(1 - group["lr"] * group["weight_decay"])
                s["m"].lerp_(p.grad, 1 - b1)
                s["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (s["v"] / (1 - b2 ** s["t"])).sqrt().add_(group["eps"])
                p.addcdiv_(s["m"], denom, value=-group["lr"] / (1 - b1 ** s["t"]))


# -- one subclass per bug ------------------------------------------------------------------
class CounterPerUpdate(StudentAdam):
    def count(self, state):
        self.t = getattr(self, "t", 0) + 1  # one counter, bumped for every tensor
        return self.t


class CounterGlobal(StudentAdam):
    def begin_step(self):
        self.t = getattr(self, "t", 0) + 1  # bumped once per step, for every tensor

    def count(self, state):
        return self.t


class NoneGradAsZero(StudentAdam):
    def grad_of(self, p):
        return torch.zeros_like(p) if p.grad is None else p.grad


class SharedState(StudentAdam):
    def state_of(self, p):
        return super().state_of(self.param_groups[0]["params"][0])


class SharedMoments(StudentAdam):
    """m and v kept once on the optimizer; the step count is right."""

    def state_of(self, p):
        state = self.state[p]
        if not state:
            state["step"] = 0
        if not hasattr(self, "m"):
            self.m, self.v = torch.zeros_like(p), torch.zeros_like(p)
        state["m"], state["v"] = self.m, self.v
        return state


class L2InsteadOfDecoupled(StudentAdam):
    def decay(self, p, g, group, lr):
        return g + group["weight_decay"] * p


class DecoupledInsteadOfL2(StudentAdam):
    def decay(self, p, g, group, lr):
        p.mul_(1 - lr * group["weight_decay"])
        return g


class WeightDecayIgnored(StudentAdam):
    def decay(self, p, g, group, lr):
        return g


class LrFrozen(StudentAdam):
    def __init__(self, params, lr=1e-3, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        self.lr = lr

    def lr_of(self, group):
        return self.lr


class CounterPerUpdateAndLrFrozen(CounterPerUpdate, LrFrozen):
    pass


BUGGY = {
    CounterPerUpdate: "counter_per_update",
    CounterGlobal: "counter_global",
    NoneGradAsZero: "none_grad_as_zero",
    SharedState: "shared_state",
    SharedMoments: "shared_state",
    L2InsteadOfDecoupled: "l2_instead_of_decoupled",
    DecoupledInsteadOfL2: "decoupled_instead_of_l2",
    WeightDecayIgnored: "weight_decay_ignored",
    LrFrozen: "lr_frozen",
}


@pytest.mark.parametrize("cls", [StudentAdam, FunctionalAdam])
def test_correct_classes_pass_silently(cls):
    assert check_adam_optimizer(cls) is None


def test_correct_adamw_class_passes_with_decoupled():
    assert check_adam_optimizer(StudentAdamW, decoupled=True) is None


def test_adamw_class_graded_as_adam_is_caught():
    with pytest.raises(AssertionError, match="differs from torch.optim.Adam"):
        check_adam_optimizer(StudentAdamW)


def test_torch_adam_and_adamw_themselves_pass():
    assert check_adam_optimizer(torch.optim.Adam) is None
    assert check_adam_optimizer(torch.optim.AdamW, decoupled=True) is None


@pytest.mark.parametrize("cls", list(BUGGY), ids=lambda c: c.__name__)
def test_each_bug_is_caught_and_named(cls):
    with pytest.raises(AssertionError) as info:
        check_adam_optimizer(cls)
    message = str(info.value)
    assert f"Diagnosis: {OPTIMIZER_BUGS[BUGGY[cls]]}." in message
    assert message.startswith(f"{cls.__name__} differs from torch.optim.Adam in scenario")
    assert "first after step" in message and "max abs error" in message


def test_two_bugs_at_once_are_both_named():
    with pytest.raises(AssertionError) as info:
        check_adam_optimizer(CounterPerUpdateAndLrFrozen)
    message = str(info.value)
    assert "two bugs at once" in message
    assert OPTIMIZER_BUGS["counter_per_update"] in message
    assert OPTIMIZER_BUGS["lr_frozen"] in message


def test_a_class_that_raises_is_reported_with_its_scenario():
    class Broken(StudentAdam):
        def count(self, state):
            raise RuntimeError("boom")

    with pytest.raises(AssertionError, match=r"Broken raised RuntimeError: boom\n  in scenario 1 of"):
        check_adam_optimizer(Broken)


def test_a_failure_is_reported_even_when_a_later_scenario_raises():
    class NoScheduler(CounterGlobal):
        def lr_of(self, group):
            if group["lr"] != group.get("initial_lr", group["lr"]):
                raise RuntimeError("lr changed")
            return group["lr"]

    message = str(pytest.raises(AssertionError, check_adam_optimizer, NoScheduler).value)
    assert message.startswith("NoScheduler differs from torch.optim.Adam in scenario 2 of 5")
    assert message.endswith("Diagnosis: none, since not every scenario ran "
                            "(in scenario 3, NoScheduler raised RuntimeError).")


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="cls: expected a subclass of torch.optim.Optimizer"):
        check_adam_optimizer(object)
    with pytest.raises(TypeError, match="decoupled: expected True or False"):
        check_adam_optimizer(StudentAdam, decoupled="yes")


def test_the_bug_models_tell_the_bugs_apart_and_the_plain_model_is_torch():
    """The diagnosis compares a class with models of each bug; without bugs the model is
    torch.optim.Adam, and no two bugs behave alike in every scenario."""
    from adamlib.testing import _OPTIMIZER_VARIANTS, _scenarios, _simulate, _trajectories_close
    from adamlib.testing import _trajectory

    scenarios = _scenarios({"weight_decay", "decoupled_weight_decay", "amsgrad"}, False)
    for s in scenarios:
        oracle = _trajectory(lambda ps: torch.optim.Adam(
            ps, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay,
            decoupled_weight_decay=s.decoupled, amsgrad=s.amsgrad), s)
        assert _trajectories_close(_simulate(s, frozenset()), oracle, 1e-12)
    runs = {None: [[_simulate(s, frozenset())] for s in scenarios]}
    for key, variants in _OPTIMIZER_VARIANTS.items():
        runs[key] = [[_simulate(s, bugs) for bugs in variants] for s in scenarios]
    names = list(runs)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            for a in range(len(runs[x][0])):
                for b in range(len(runs[y][0])):
                    assert not all(_trajectories_close(rx[a], ry[b], 1e-7)
                                   for rx, ry in zip(runs[x], runs[y])), (x, y)
