"""adamlib.testing.check_adam_optimizer: correct optimizer classes pass, each known bug is
caught and named.

The student classes are written as a student would: one correct class whose step calls small
methods, and one subclass per bug that rewrites one of them the wrong way.
"""

import inspect
import warnings

import pytest

torch = pytest.importorskip("torch")

from adamlib.testing import (  # noqa: E402
    AMSGRAD_BUGS, OPTIMIZER_BUGS, STEP_BUGS, NotTestedWarning, check_adam_optimizer,
)


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
                self.update(p, g, state, t, lr, beta1, beta2, group["eps"])

    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = s["m"] / (1 - b1**t)
        v_hat = self.second_moment(s, g, t, b2)
        p.sub_(lr * m_hat / (v_hat.sqrt() + eps))

    def second_moment(self, s, g, t, b2):
        return s["v"] / (1 - b2**t)


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


class CounterFromZero(StudentAdam):
    def count(self, state):
        t = state["step"]  # used before it is increased: the first step has t = 0
        state["step"] += 1
        return t


class CounterAhead(StudentAdam):
    def state_of(self, p):
        state = super().state_of(p)
        state.setdefault("started", True) and state.update(step=state["step"] or 1)
        return state


class FreshState(StudentAdam):
    def state_of(self, p):
        self.state[p] = {}  # "initialise the state" at every step
        return super().state_of(p)


class DecayAfterUpdate(StudentAdam):
    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        wd, lr = group["weight_decay"], group["lr"]
        decoupled = wd and group["decoupled_weight_decay"]
        if decoupled:
            group["weight_decay"] = 0.0
        super().step(closure)
        if decoupled:
            group["weight_decay"] = wd
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - lr * wd)


class MaximizeIgnored(StudentAdam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay)


class AmsgradIgnored(StudentAdam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay)


class DecayWithoutLr(StudentAdam):
    def decay(self, p, g, group, lr):
        if group["weight_decay"] and group["decoupled_weight_decay"]:
            p.mul_(1 - group["weight_decay"])
            return g
        return super().decay(p, g, group, lr)


class AmsgradAdam(StudentAdam):
    """Takes amsgrad; its running maximum is written by a method that subclasses break."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay)
        self.amsgrad = amsgrad

    def second_moment(self, s, g, t, b2):
        if not self.amsgrad:
            return super().second_moment(s, g, t, b2)
        return self.running_maximum(s, g, t, b2)

    def running_maximum(self, s, g, t, b2):
        s.setdefault("v_max", torch.zeros_like(s["v"]))
        torch.maximum(s["v_max"], s["v"], out=s["v_max"])
        return s["v_max"] / (1 - b2**t)


class MaxOfCorrected(AmsgradAdam):
    def running_maximum(self, s, g, t, b2):
        s.setdefault("v_max", torch.zeros_like(s["v"]))
        torch.maximum(s["v_max"], s["v"] / (1 - b2**t), out=s["v_max"])
        return s["v_max"]


class MaxOfGradSquared(AmsgradAdam):
    def running_maximum(self, s, g, t, b2):
        s.setdefault("v_max", torch.zeros_like(s["v"]))
        torch.maximum(s["v_max"], g * g, out=s["v_max"])
        return s["v_max"] / (1 - b2**t)


# -- bugs in the update itself: each rewrites StudentAdam.update ---------------------------
class EfficientForm(StudentAdam):
    """torch.optim.Adam's formula before 2019: eps added before the corrections."""

    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        step_size = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
        p.addcdiv_(s["m"], s["v"].sqrt().add_(eps), value=-step_size)


class CorrectedMomentsCarried(StudentAdam):
    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1).div_(1 - b1**t)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2).div_(1 - b2**t)
        p.sub_(lr * s["m"] / (s["v"].sqrt() + eps))


class VOfG(StudentAdam):
    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).add_(g, alpha=1 - b2)
        p.sub_(lr * (s["m"] / (1 - b1**t)) / ((s["v"] / (1 - b2**t)).sqrt() + eps))


class LrTwice(StudentAdam):
    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (s["v"] / (1 - b2**t)).sqrt().add_(eps)
        p.addcdiv_(s["m"], denom, value=-lr * lr / (1 - b1**t))


class EpsAfterDivision(StudentAdam):
    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        p.sub_(lr * (s["m"] / (1 - b1**t) / (s["v"] / (1 - b2**t)).sqrt() + eps))


class CorrectionsSwapped(StudentAdam):
    def update(self, p, g, s, t, lr, b1, b2, eps):
        s["m"].mul_(b1).add_(g, alpha=1 - b1)
        s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        p.sub_(lr * (s["m"] / (1 - b2**t)) / ((s["v"] / (1 - b1**t)).sqrt() + eps))


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
    CounterFromZero: "counter_from_zero",
    CounterAhead: "counter_ahead",
    FreshState: "fresh_state",
    DecayAfterUpdate: "decay_after_update",
    MaximizeIgnored: "maximize_ignored",
    EfficientForm: "efficient_form",
    CorrectedMomentsCarried: "corrected_moments_returned",
    VOfG: "v_of_g",
    LrTwice: "lr_twice",
    EpsAfterDivision: "eps_after_division",
    CorrectionsSwapped: "corrections_swapped",
    AmsgradIgnored: "amsgrad_ignored",
    DecayWithoutLr: "decay_without_lr",
    MaxOfCorrected: "max_of_corrected",
    MaxOfGradSquared: "max_of_grad_squared",
}
TEXTS = {**STEP_BUGS, **OPTIMIZER_BUGS, **AMSGRAD_BUGS}


def unwrap(message):
    """The report with its wrapped lines joined again (continuations are 4 deeper)."""
    out = []
    for line in message.splitlines():
        depth = len(line) - len(line.lstrip())
        if out and depth >= out[-1][0] + 4:
            out[-1][1].append(line.strip())
        else:
            out.append((depth, [line.rstrip()]))
    return "\n".join(" ".join(parts) for _, parts in out)


@pytest.mark.parametrize("cls", [StudentAdam, AmsgradAdam])
def test_correct_class_passes_silently(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_adam_optimizer(cls) is None


def test_a_class_that_does_not_skip_missing_gradients_gets_a_hint():
    class NoSkip(StudentAdam):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:  # no check that p.grad is not None
                    s = self.state_of(p)
                    self.update(p, p.grad, s, self.count(s), group["lr"], b1, b2,
                                group["eps"])

    message = str(pytest.raises(AssertionError, check_adam_optimizer, NoSkip).value)
    assert message.startswith("NoSkip raised TypeError")
    assert "in scenario 2 of 6" in message
    assert "(their .grad is None): skip them" in message.replace("\n    ", " ")


def test_a_class_without_weight_decay_passes_with_a_warning_that_says_so():
    with pytest.warns(NotTestedWarning, match="weight decay not tested: FunctionalAdam's"):
        assert check_adam_optimizer(FunctionalAdam) is None


def test_correct_adamw_class_passes_with_decoupled():
    assert check_adam_optimizer(StudentAdamW, decoupled=True) is None


def test_adamw_class_graded_as_adam_is_caught():
    with pytest.raises(AssertionError, match="differs from torch.optim.Adam"):
        check_adam_optimizer(StudentAdamW)


def test_torch_adam_and_adamw_themselves_pass():
    assert check_adam_optimizer(torch.optim.Adam) is None
    assert check_adam_optimizer(torch.optim.AdamW, decoupled=True) is None


def test_every_known_optimizer_bug_has_a_written_out_class():
    assert set(OPTIMIZER_BUGS) <= set(BUGGY.values())


@pytest.mark.parametrize("cls", list(BUGGY), ids=lambda c: c.__name__)
def test_each_bug_is_caught_and_named(cls):
    with pytest.raises(AssertionError) as info:
        check_adam_optimizer(cls)
    message = str(info.value)
    assert f"Diagnosis: {TEXTS[BUGGY[cls]]}." in unwrap(message)
    assert message.startswith(f"{cls.__name__} differs from torch.optim.Adam in scenario")
    assert "first after step" in message
    assert max(map(len, message.splitlines())) <= 79


def test_two_bugs_at_once_are_both_named():
    with pytest.raises(AssertionError) as info:
        check_adam_optimizer(CounterPerUpdateAndLrFrozen)
    message = unwrap(str(info.value))
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
    assert message.startswith("NoScheduler differs from torch.optim.Adam in scenario 2 of 6")
    assert unwrap(message).endswith("Diagnosis: none, since not every scenario ran "
                            "(in scenario 3, NoScheduler raised RuntimeError).")


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="cls: expected a subclass of torch.optim.Optimizer"):
        check_adam_optimizer(object)
    with pytest.raises(TypeError, match="decoupled: expected True or False"):
        check_adam_optimizer(StudentAdam, decoupled="yes")


def test_an_adamw_that_is_l2_with_a_second_tiny_slip_is_named():
    """The L2 model explains nearly all of the error; a tiny extra difference remains."""
    class L2AndEps(L2InsteadOfDecoupled):
        def step(self, closure=None):
            for group in self.param_groups:
                group["eps"] = 1.0001e-8 if group["eps"] == 1e-8 else group["eps"]
            return super().step(closure)

    message = unwrap(str(pytest.raises(AssertionError, check_adam_optimizer, L2AndEps).value))
    assert f"Diagnosis: {OPTIMIZER_BUGS['l2_instead_of_decoupled']}." in message


def test_the_eps_scenario_catches_eps_before_the_correction():
    message = str(pytest.raises(AssertionError, check_adam_optimizer, EfficientForm).value)
    assert "eps = 1e-3" in message.splitlines()[1] or "eps=0.001" in unwrap(message)


def test_the_missing_no_grad_gets_a_hint():
    class NoNoGrad(StudentAdam):
        step = inspect.unwrap(StudentAdam.step)  # without @torch.no_grad()

    message = str(pytest.raises(AssertionError, check_adam_optimizer, NoNoGrad).value)
    assert message.startswith("NoNoGrad raised RuntimeError: a leaf Variable")
    assert "@torch.no_grad()" in message
    assert max(map(len, message.splitlines())) <= 79


def test_the_bug_models_tell_the_bugs_apart_and_the_plain_model_is_torch():
    """The diagnosis names the bug whose model explains the class's trajectories; this is
    right only if without bugs the model is torch.optim.Adam, and no bug's model explains
    another's trajectories."""
    from adamlib.testing import report
    from adamlib.testing.bugs import OPTIMIZER_AMSGRAD_BUGS, OPTIMIZER_STEP_BUGS, variants
    from adamlib.testing.scenarios import scenarios, simulate, trajectory

    tried = scenarios({"weight_decay", "decoupled_weight_decay", "amsgrad", "maximize"},
                      False)
    refs = [trajectory(lambda ps: torch.optim.Adam(ps, **s.oracle_kwargs()), s)
            for s in tried]
    for s, ref in zip(tried, refs):
        assert all(report.close(a, b, 1e-12) for xs, ys in zip(simulate(s, frozenset()), ref)
                   for a, b in zip(xs, ys))
    names = [*OPTIMIZER_STEP_BUGS, *OPTIMIZER_BUGS, *OPTIMIZER_AMSGRAD_BUGS]
    runs = {k: [[simulate(s, sw) for s in tried] for sw in variants(k)] for k in names}

    def explains(model, run):
        return all(report.unexplained(g, mo, w, 1e-7) <= 1.0
                   for ms, gs, ws in zip(model, run, refs)
                   for mo_step, g_step, w_step in zip(ms, gs, ws)
                   for mo, g, w in zip(mo_step, g_step, w_step))

    for x in names:
        for y in names:
            if x != y:
                for run in runs[y]:
                    assert not any(explains(mod, run) for mod in runs[x]), (x, y)
