r"""Adam in NumPy: the paper's Algorithm 1, then a drop-in twin of ``torch.optim.Adam``.

:func:`adam_step` is Algorithm 1 of Kingma & Ba (2015), one line of code per line of
the paper. :class:`Adam` is the same algorithm with every option of
``torch.optim.Adam`` (L2 or decoupled weight decay, AMSGrad, maximize), updating a list
of NumPy arrays in place, with torch's arithmetic in each dtype (float16 computed in
float32 and rounded after each of torch's operations, as torch does), and held to
``torch.optim.Adam`` by the test suite.

.. math::

   \begin{aligned}
   g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) \\
   m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
   v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
   \hat m_t &\leftarrow m_t / (1-\beta_1^t) \\
   \hat v_t &\leftarrow v_t / (1-\beta_2^t) \\
   \theta_t &\leftarrow \theta_{t-1} - \alpha\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
   \end{aligned}

References
----------
Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR.
Reddi, S. J., Kale, S. & Kumar, S. (2018). On the Convergence of Adam and Beyond. ICLR.
Everett, K. et al. (2024). Scaling Exponents Across Parameterizations and Optimizers. ICML.
Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from . import hyperparams as hp
from .optimizer import Optimizer


def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    *,
    lr: float = hp.LR,
    beta1: float = hp.BETAS[0],
    beta2: float = hp.BETAS[1],
    eps: float = hp.EPS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One step of Adam, exactly as Algorithm 1 of Kingma & Ba (2015) writes it.

    .. math::

       m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
       v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

       \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad
       \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
       \theta_t = \theta_{t-1} - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.

    Parameters
    ----------
    param : ndarray
        The parameters :math:`\theta_{t-1}`.
    grad : ndarray
        The gradient :math:`g_t` at ``param``, of the same shape.
    m, v : ndarray
        The moment estimates :math:`m_{t-1}, v_{t-1}` (zeros before the first step).
    t : int
        The step number, counting from 1 (the first step has ``t=1``).
    lr : float
        The learning rate :math:`\alpha`.
    beta1, beta2 : float
        The decay rates :math:`\beta_1, \beta_2` of the moment estimates.
    eps : float
        :math:`\epsilon`, added to :math:`\sqrt{\hat v_t}`.

    Returns
    -------
    (param, m, v) : tuple of ndarray
        :math:`\theta_t`, :math:`m_t`, :math:`v_t`, as new arrays: the inputs are never mutated.

    Examples
    --------
    >>> import numpy as np
    >>> theta, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> theta, m, v = adam_step(theta, np.array([0.5]), m, v, t=1, lr=0.1)
    >>> theta.round(6)  # the first step moves by about lr, whatever the gradient's size
    array([0.9])
    """
    if t < 1:
        raise ValueError(f"t counts steps from 1, got t={t}")
    m = beta1 * m + (1 - beta1) * grad  # update biased first moment estimate
    v = beta2 * v + (1 - beta2) * grad**2  # update biased second raw moment estimate
    m_hat = m / (1 - beta1**t)  # bias-corrected first moment estimate
    v_hat = v / (1 - beta2**t)  # bias-corrected second raw moment estimate
    param = param - lr * m_hat / (np.sqrt(v_hat) + eps)  # update parameters
    return param, m, v


def adam_atan2_step(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    *,
    lr: float = hp.LR,
    beta1: float = hp.BETAS[0],
    beta2: float = hp.BETAS[1],
    a: float = hp.ATAN2_A,
    b: float = hp.ATAN2_B,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One step of Adam-atan2 (Everett et al., 2024): Adam without :math:`\epsilon`.

    The moments are Adam's (:func:`adam_step`); only the last line changes,

    .. math::

       \theta_t = \theta_{t-1} - \alpha\, a \operatorname{atan2}\big(\hat m_t,\ b\sqrt{\hat v_t}\big).

    Since :math:`\operatorname{atan2}(x, y) = \arctan(x/y)` for :math:`y > 0`, the step is a
    bounded function of :math:`\hat m_t / \sqrt{\hat v_t}` alone: multiplying every gradient by
    :math:`c > 0` multiplies :math:`\hat m_t` and :math:`\sqrt{\hat v_t}` by :math:`c` and
    leaves the step unchanged, however small :math:`c` is (Adam's :math:`\epsilon` breaks this
    once :math:`\sqrt{\hat v_t}` approaches it). Each coordinate moves by at most
    :math:`\alpha a \pi / 2`; a zero gradient history gives :math:`\operatorname{atan2}(0, 0) = 0`,
    no NaN. As :math:`a = b \to \infty`, :math:`a \operatorname{atan2}(x, b y) \to x / y`: Adam
    with :math:`\epsilon = 0`.

    Parameters
    ----------
    param, grad, m, v, t, lr, beta1, beta2
        As in :func:`adam_step`.
    a, b : float, default 1.27 and 1
        The output and input scales of the arctangent (``adamlib.hyperparams.ATAN2_A`` and
        ``ATAN2_B``); both must be positive.

    Returns
    -------
    (param, m, v) : tuple of ndarray
        :math:`\theta_t`, :math:`m_t`, :math:`v_t`, as new arrays: the inputs are never mutated.

    Examples
    --------
    >>> import numpy as np
    >>> theta, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> theta, m, v = adam_atan2_step(theta, np.array([0.5]), m, v, t=1, lr=0.1, a=1.0)
    >>> theta.round(6)  # the first step is lr * a * atan2(g, |g|) = lr * a * pi / 4
    array([0.92146])
    """
    if t < 1:
        raise ValueError(f"t counts steps from 1, got t={t}")
    a, b = hp.check_atan2_scale("a", a), hp.check_atan2_scale("b", b)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    param = param - lr * a * np.arctan2(m_hat, b * np.sqrt(v_hat))
    return param, m, v


@dataclass(frozen=True)
class StepInternals:
    r"""What Adam computed at its last step, one array per parameter.

    Attributes
    ----------
    m_hat, v_hat : list of ndarray
        The bias-corrected moments :math:`\hat m_t` and :math:`\hat v_t` (with AMSGrad,
        :math:`\hat v_t` is the bias-corrected running maximum that the step divided by).
    effective_lr : list of ndarray
        The per-coordinate learning rate :math:`\alpha / (\sqrt{\hat v_t} + \epsilon)`.
    update : list of ndarray
        The Adam term of the step, :math:`-\alpha \hat m_t / (\sqrt{\hat v_t} + \epsilon)`
        (decoupled weight decay, if any, is applied on top of it).
    """

    m_hat: list[np.ndarray]
    v_hat: list[np.ndarray]
    effective_lr: list[np.ndarray]
    update: list[np.ndarray]


class Adam(Optimizer):
    r"""Adam over NumPy arrays, with the semantics of ``torch.optim.Adam``.

    Each call to :meth:`step` does, for every parameter :math:`\theta` and its gradient
    :math:`g`, with the arithmetic ``torch.optim.Adam`` uses on a CPU for the parameter's
    dtype (float32 and float64: in that dtype; float16: each of torch's operations computed
    in float32 and rounded to float16, so :math:`g^2` does not overflow for
    :math:`|g| > 256`; see Notes):

    .. math::

       \begin{aligned}
       &g \leftarrow -g \quad\text{if maximize} \\
       &g \leftarrow g + \lambda\theta \quad\text{(L2, default)} \qquad\text{or}\qquad
         \theta \leftarrow \theta(1-\alpha\lambda) \quad\text{(decoupled, AdamW)} \\
       &m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
       &v_{\max} \leftarrow \max(v_{\max}, v) \quad\text{if amsgrad (on the raw } v\text{)} \\
       &\theta \leftarrow \theta - \frac{\alpha}{1-\beta_1^t}\,
         \frac{m}{\sqrt{v\ \text{or}\ v_{\max}} / \sqrt{1-\beta_2^t} + \epsilon}
       \end{aligned}

    Parameters
    ----------
    params : iterable of ndarray
        Floating-point arrays (float16, float32 or float64), updated in place.
    lr : float, default 1e-3
        The learning rate :math:`\alpha`; may be changed between steps (``opt.lr = ...``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2` of the moment estimates, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator; with float16 parameters the sum is rounded to float16,
        where 1e-8 is lost (a denominator of 0 gives :math:`\pm\infty` or NaN, as in torch).
    weight_decay : float, default 0
        :math:`\lambda`: L2 penalty folded into the gradient, or decoupled decay.
    amsgrad : bool, default False
        Divide by the running maximum of :math:`v` (Reddi et al., 2018, as PyTorch does it).
    maximize : bool, default False
        Ascend instead of descend.
    decoupled_weight_decay : bool, default False
        Decay the parameters directly, as AdamW (Loshchilov & Hutter, 2019).
    bias_correction : bool, default True
        Divide the moments by :math:`1-\beta^t`. Turning it off is not in
        ``torch.optim.Adam``; it exists for the ablation of Kingma & Ba's section 6.4.

    Notes
    -----
    float16 follows torch's for-loop (its CPU default) operation by operation: the decoupled
    decay, the L2 sum :math:`g + \mathrm{fl}_{16}(\lambda)\theta`, ``lerp`` for :math:`m`,
    :math:`\beta_2 v` and then :math:`+ (1-\beta_2)g^2`, :math:`\sqrt{v}`, the division by
    :math:`\sqrt{1-\beta_2^t}`, :math:`+\mathrm{fl}_{16}(\epsilon)`, and the final
    :math:`\theta - \frac{\alpha}{1-\beta_1^t} m / d`, each in float32 and rounded to
    float16 once (``lerp`` and :math:`v + c g \cdot g` as single fused multiply-adds, as
    torch's vectorized kernels compute them). The tests find it equal to torch bit for bit.
    One exception: on the elements torch's CPU kernels leave outside their vectorized loop
    (the last ``numel % 64`` of a float16 tensor with AVX-512, so all of a tensor smaller
    than that), ``add(alpha=...)`` rounds :math:`\lambda\theta` to float16 before the sum;
    there, with L2 weight decay, the two can differ by that rounding.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0, -2.0])
    >>> opt = Adam([w], lr=0.1)
    >>> for _ in range(3):
    ...     opt.step([2 * w])          # gradient of |w|^2
    >>> w.round(3)  # each step moved each coordinate by about lr = 0.1
    array([ 0.702, -1.701])
    """

    def __init__(
        self,
        params: Iterable[np.ndarray],
        lr: float = hp.LR,
        betas: tuple[float, float] = hp.BETAS,
        eps: float = hp.EPS,
        weight_decay: float = hp.WEIGHT_DECAY,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
    ) -> None:
        checked = hp.check_hyperparameters(lr, betas, eps, weight_decay)
        super().__init__(params, lr)
        self.betas: tuple[float, float] = checked["betas"]
        self.eps: float = checked["eps"]
        self.weight_decay: float = checked["weight_decay"]
        self.amsgrad = bool(amsgrad)
        self.maximize = bool(maximize)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self.bias_correction = bool(bias_correction)
        self.exp_avg = [np.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p) for p in self.params]
        self.max_exp_avg_sq = [np.zeros_like(p) for p in self.params] if self.amsgrad else []
        # Two scratch buffers per dtype, as large as the largest parameter of that dtype:
        # a step allocates no parameter-sized temporaries.
        self._scratch: dict[np.dtype, np.ndarray] = {}
        for p in self.params:
            size = max(p.size, self._scratch.get(p.dtype, np.empty((2, 0))).shape[1])
            self._scratch[p.dtype] = np.empty((2, size), dtype=p.dtype)
        # float16 arithmetic runs in float32 (and float64 where torch fuses a multiply-add).
        half = self._scratch.get(np.dtype(np.float16), np.empty((2, 0))).shape[1]
        self._wide = (np.empty(half, np.float32), np.empty(half, np.float64))
        self._last_lr = self._lr

    def _options(self) -> dict[str, object]:
        return {k: v for k, v in self._hyperparameters().items() if k != "lr"}

    # -- the step ------------------------------------------------------------------
    def _bias_corrections(self, t: int) -> tuple[float, float]:
        if not self.bias_correction:
            return 1.0, 1.0
        beta1, beta2 = self.betas
        return 1 - beta1**t, 1 - beta2**t

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : sequence of array_like
            One gradient per parameter, in order, each of its parameter's shape. A gradient
            of another dtype is cast when NumPy calls the cast safe, else refused.

        Raises
        ------
        ValueError, TypeError
            Before anything changes, when the gradients do not fit the parameters.
        """
        super().step(grads)
        self._last_lr = self.lr

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """Step ``self.t`` for parameter ``i``, in place, through two scratch buffers."""
        lr, wd = self.lr, self.weight_decay
        bc1, bc2 = self._bias_corrections(self.t)
        a, b = (s[: p.size].reshape(p.shape) for s in self._scratch[p.dtype])
        if p.dtype == np.float16:
            self._update_float16(i, p, g, bc1, bc2, a, b)
            return
        if self.maximize:
            g = np.negative(g, out=a)
        if wd != 0:
            if self.decoupled_weight_decay:
                p *= 1 - lr * wd
            else:
                g = np.add(g, np.multiply(p, wd, out=b), out=a)
        beta1, beta2 = self.betas
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        _lerp_(m, g, 1 - beta1, b)
        v *= beta2
        v += np.multiply(np.multiply(g, g, out=b), 1 - beta2, out=b)
        if self.amsgrad:
            v = np.maximum(self.max_exp_avg_sq[i], v, out=self.max_exp_avg_sq[i])
        self._descend(p, m, v, bc1, bc2, a, b)

    def _update_float16(self, i: int, p, g, bc1: float, bc2: float, a: np.ndarray, b: np.ndarray) -> None:
        r"""Step ``self.t`` for a float16 parameter as ``torch.optim.Adam`` does on a CPU.

        torch runs each of its operations on float16 tensors in float32 ("opmath") and rounds
        the result to float16 once; this does the same, operation by operation and in
        torch's order, so that nothing overflows or underflows where torch's does not
        (:math:`g^2` is formed in float32: :math:`|g| > 256` no longer gives
        :math:`v = \infty`). ``lerp`` and ``addcmul`` are fused multiply-adds in torch's
        kernels: one rounding, reproduced in float64. The L2 term is ``g + fl16(\lambda)\,\theta``,
        its coefficient rounded to float16 as torch's ``add`` rounds its scalar (so is
        :math:`\epsilon` before :math:`\sqrt{\hat v} + \epsilon`).
        """
        lr, wd = self.lr, self.weight_decay
        beta1, beta2 = self.betas
        x, w = (s[: p.size].reshape(p.shape) for s in self._wide)  # float32, float64
        if self.maximize:
            g = np.negative(g, out=a)
        if wd != 0:
            if self.decoupled_weight_decay:  # param.mul_(1 - lr * wd)
                _round_into(p, np.multiply(p, np.float32(1 - lr * wd), out=x, dtype=np.float32))
            else:  # grad = grad.add(param, alpha=wd)
                np.multiply(p, np.float32(np.float16(wd)), out=x, dtype=np.float32)  # exact
                g = _round_into(a, np.add(x, g, out=x, dtype=np.float32))
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        # exp_avg.lerp_(grad, 1 - beta1): fma(c, g - m, m or g), as torch's lerp_vec
        weight = np.float32(1 - beta1)
        coeff, base = (weight, m) if weight < 0.5 else (weight - np.float32(1), g)
        np.subtract(g, m, out=x, dtype=np.float32)
        np.add(np.multiply(x, coeff, out=w, dtype=np.float64), base, out=w)  # the product is exact
        _round_into(m, _round_into(x, w))
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): fma((1-b2) g, g, v)
        _round_into(v, np.multiply(v, np.float32(beta2), out=x, dtype=np.float32))
        np.multiply(g, np.float32(1 - beta2), out=x, dtype=np.float32)
        np.add(np.multiply(x, g, out=w, dtype=np.float64), v, out=w)  # the product is exact
        _round_into(v, _round_into(x, w))
        if self.amsgrad:
            v = np.maximum(self.max_exp_avg_sq[i], v, out=self.max_exp_avg_sq[i])
        self._descend(p, m, v, bc1, bc2, a, b)

    def _descend(self, p, m, v, bc1: float, bc2: float, a: np.ndarray, b: np.ndarray) -> None:
        r""":math:`\theta \leftarrow \theta - \alpha\, \hat m / (\sqrt{\hat v} + \epsilon)` in place
        (``v`` is the AMSGrad maximum when there is one; ``a``, ``b`` are scratch buffers)."""
        if p.dtype == np.float16:  # param.addcdiv_(exp_avg, denom, value=-lr / bc1), in float32
            x = self._wide[0][: p.size].reshape(p.shape)
            denom = self._denominator(v, bc2, out=b, wide=x)
            np.multiply(m, np.float32(-self.lr / bc1), out=x, dtype=np.float32)
            _round_into(p, np.add(np.divide(x, denom, out=x, dtype=np.float32), p, out=x, dtype=np.float32))
            return
        denom = self._denominator(v, bc2, out=b)
        p += np.multiply(np.divide(m, denom, out=b), -self.lr / bc1, out=b)

    def _denominator(self, v: np.ndarray, bc2: float, out: np.ndarray | None = None,
                     wide: np.ndarray | None = None):
        r""":math:`\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon`, computed as torch computes it
        (in float16: each of the three operations in float32, rounded to float16)."""
        if v.dtype == np.float16:
            out = np.empty_like(v) if out is None else out
            x = np.empty(v.shape, np.float32) if wide is None else wide
            _round_into(out, np.sqrt(v, out=x, dtype=np.float32))
            _round_into(out, np.divide(out, np.float32(bc2**0.5), out=x, dtype=np.float32))
            return _round_into(out, np.add(out, np.float32(np.float16(self.eps)), out=x, dtype=np.float32))
        denom = np.sqrt(v, out=out)
        denom /= math.sqrt(bc2)
        denom += self.eps
        return denom

    def internals(self) -> StepInternals:
        """The bias-corrected moments, effective learning rates and update of the last step."""
        if self.t == 0:
            raise RuntimeError("internals() describes the last step; call step() first")
        bc1, bc2 = self._bias_corrections(self.t)
        second = self.max_exp_avg_sq if self.amsgrad else self.exp_avg_sq
        lr = self._last_lr
        with np.errstate(all="ignore"):
            denoms = [self._denominator(v, bc2) for v in second]
            return StepInternals(
                m_hat=[m / bc1 for m in self.exp_avg],
                v_hat=[v / bc2 for v in second],
                effective_lr=[lr / d for d in denoms],
                update=[-lr / bc1 * (m / d) for m, d in zip(self.exp_avg, denoms)],
            )

    # -- state: a dict of arrays, and .npz files without pickle ------------------------
    def state_dict(self) -> dict[str, object]:
        """A copy of the optimizer's state and hyperparameters (not the parameters).

        Keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (lists of arrays) and
        the hyperparameters by name.
        """
        return {
            "step": self.t,
            "exp_avg": [m.copy() for m in self.exp_avg],
            "exp_avg_sq": [v.copy() for v in self.exp_avg_sq],
            "max_exp_avg_sq": [v.copy() for v in self.max_exp_avg_sq],
            **self._hyperparameters(),
        }

    def _hyperparameters(self) -> dict[str, object]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
            "maximize": self.maximize,
            "decoupled_weight_decay": self.decoupled_weight_decay,
            "bias_correction": self.bias_correction,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore a :meth:`state_dict`; raise ``ValueError`` and change nothing if it does not fit."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict from Adam.state_dict(), got {type(state).__name__}")
        missing = [k for k in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", *self._hyperparameters()) if k not in state]
        if missing:
            raise ValueError(f"state: missing keys {missing}")
        checked = hp.check_hyperparameters(state["lr"], state["betas"], state["eps"], state["weight_decay"])
        flags = {k: state[k] for k in ("amsgrad", "maximize", "decoupled_weight_decay", "bias_correction")}
        for k, flag in flags.items():
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"state[{k!r}]: expected a bool, got {flag!r}")
        step = state["step"]
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"state['step']: expected an integer >= 0, got {step!r}")
        moments = {"exp_avg": self.params, "exp_avg_sq": self.params}
        moments["max_exp_avg_sq"] = self.params if flags["amsgrad"] else []
        arrays = {key: self._check_arrays(f"state[{key!r}]", state[key], like) for key, like in moments.items()}
        # Everything fits: only now does anything change.
        self._lr = checked["lr"]
        self.betas, self.eps, self.weight_decay = checked["betas"], checked["eps"], checked["weight_decay"]
        self.amsgrad, self.maximize = bool(flags["amsgrad"]), bool(flags["maximize"])
        self.decoupled_weight_decay = bool(flags["decoupled_weight_decay"])
        self.bias_correction = bool(flags["bias_correction"])
        self.t = int(step)
        self._last_lr = self._lr
        self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq = (
            arrays["exp_avg"], arrays["exp_avg_sq"], arrays["max_exp_avg_sq"]
        )

    @staticmethod
    def _check_arrays(name: str, arrays: object, like: list[np.ndarray]) -> list[np.ndarray]:
        if not isinstance(arrays, (list, tuple)) or len(arrays) != len(like):
            count = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
            raise ValueError(f"{name}: expected {len(like)} arrays (one per param), got {count}")
        out = []
        for i, (a, p) in enumerate(zip(arrays, like)):
            if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
                got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"{name}[{i}]: expected a {p.dtype} array of shape {p.shape}, got {got}")
            out.append(a.copy())
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the parameters and the optimizer state to an ``.npz`` file (no pickle)."""
        arrays: dict[str, np.ndarray] = {"step": np.array(self.t)}
        for key, value in self._hyperparameters().items():
            arrays[key] = np.array(value)
        for key, group in (("param", self.params), ("exp_avg", self.exp_avg),
                           ("exp_avg_sq", self.exp_avg_sq), ("max_exp_avg_sq", self.max_exp_avg_sq)):
            for i, a in enumerate(group):
                arrays[f"{key}/{i}"] = a
        np.savez(path, **arrays)

    def load(self, path: str | os.PathLike) -> None:
        """Restore parameters (in place) and state from :meth:`save`'s file, bit for bit.

        Raises ``ValueError`` and changes nothing when the file is unreadable or does not
        fit this optimizer's parameters.
        """
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{os.fspath(path)}: not a readable Adam checkpoint ({e})") from e

        def group(key: str) -> list[np.ndarray]:
            return [data[f"{key}/{i}"] for i in range(sum(k.startswith(f"{key}/") for k in data))]

        try:
            state = {
                "step": data["step"].item(),
                "exp_avg": group("exp_avg"),
                "exp_avg_sq": group("exp_avg_sq"),
                "max_exp_avg_sq": group("max_exp_avg_sq"),
                **{k: data[k].item() if k != "betas" else tuple(data[k].tolist()) for k in self._hyperparameters()},
            }
            params = group("param")
        except (KeyError, ValueError) as e:
            raise ValueError(f"{os.fspath(path)}: not an Adam checkpoint (missing or malformed {e})") from e
        params = self._check_arrays(f"{os.fspath(path)}: param", params, self.params)
        self.load_state_dict(state)  # validates everything else, then changes the state
        for p, saved in zip(self.params, params):
            p[...] = saved


class AdamAtan2(Adam):
    r"""Adam-atan2 (Everett et al., 2024): :class:`Adam` with :math:`\epsilon` replaced by an
    arctangent.

    Every option of :class:`Adam` works as there (weight decay, AMSGrad, maximize, bias
    correction, state files); only the last line of the step changes:

    .. math::

       \theta \leftarrow \theta - \alpha\, a \operatorname{atan2}\!\Big(\frac{m}{1-\beta_1^t},\;
       b \frac{\sqrt{v}}{\sqrt{1-\beta_2^t}}\Big),

    which is invariant to the scale of the loss and never divides by zero
    (:func:`adam_step`'s twin is :func:`adam_atan2_step`).

    Parameters
    ----------
    params, lr, betas, weight_decay, amsgrad, maximize, decoupled_weight_decay, bias_correction
        As in :class:`Adam` (there is no ``eps``).
    a, b : float, default 1.27 and 1
        The output and input scales of the arctangent, both positive.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0, -2.0])
    >>> opt = AdamAtan2([w], lr=0.1, a=1.0)
    >>> opt.step([2e-30 * w])          # a tiny gradient: a full-size step all the same
    >>> w.round(4)                     # 0.1 * atan2(g, |g|) = 0.1 * pi / 4
    array([ 0.9215, -1.9215])
    """

    def __init__(
        self,
        params: Iterable[np.ndarray],
        lr: float = hp.LR,
        betas: tuple[float, float] = hp.BETAS,
        weight_decay: float = hp.WEIGHT_DECAY,
        amsgrad: bool = False,
        *,
        a: float = hp.ATAN2_A,
        b: float = hp.ATAN2_B,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
    ) -> None:
        a, b = hp.check_atan2_scale("a", a), hp.check_atan2_scale("b", b)
        super().__init__(params, lr, betas, 0.0, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay, bias_correction=bias_correction)
        self.a, self.b = a, b

    def _descend(self, p, m, v, bc1: float, bc2: float, a: np.ndarray, b: np.ndarray) -> None:
        r""":math:`\theta \leftarrow \theta - \alpha a \operatorname{atan2}(\hat m, b\sqrt{\hat v})`
        in place, through the scratch buffers ``a`` and ``b``."""
        m_hat = np.divide(m, bc1, out=a)
        scaled_rms = np.multiply(np.sqrt(v, out=b), self.b / math.sqrt(bc2), out=b)
        p += np.multiply(np.arctan2(m_hat, scaled_rms, out=b), -self.lr * self.a, out=b)

    def internals(self) -> StepInternals:
        r"""As :meth:`Adam.internals`; the update is :math:`-\alpha a \operatorname{atan2}(\hat m,
        b\sqrt{\hat v})` and the effective learning rate is the update divided by
        :math:`-\hat m` (where :math:`\hat m = 0`, its limit :math:`\alpha a / (b\sqrt{\hat v})`)."""
        if self.t == 0:
            raise RuntimeError("internals() describes the last step; call step() first")
        bc1, bc2 = self._bias_corrections(self.t)
        second = self.max_exp_avg_sq if self.amsgrad else self.exp_avg_sq
        lr = self._last_lr
        m_hats = [m / bc1 for m in self.exp_avg]
        v_hats = [v / bc2 for v in second]
        with np.errstate(all="ignore"):
            updates = [-lr * self.a * np.arctan2(mh, self.b * np.sqrt(vh)) for mh, vh in zip(m_hats, v_hats)]
            rates = [np.where(mh != 0, u / -mh, lr * self.a / (self.b * np.sqrt(vh)))
                     for mh, vh, u in zip(m_hats, v_hats, updates)]
        return StepInternals(m_hat=m_hats, v_hat=v_hats, effective_lr=rates, update=updates)

    def _options(self) -> dict[str, object]:
        return {k: v for k, v in self._hyperparameters().items() if k not in ("lr", "eps")}

    def _hyperparameters(self) -> dict[str, object]:
        return {**super()._hyperparameters(), "a": self.a, "b": self.b}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore a :meth:`state_dict` (with ``a`` and ``b``); raise ``ValueError`` and change
        nothing if it does not fit."""
        if isinstance(state, dict) and "a" in state and "b" in state:
            a, b = hp.check_atan2_scale("state['a']", state["a"]), hp.check_atan2_scale("state['b']", state["b"])
        elif isinstance(state, dict):
            raise ValueError("state: missing keys ['a', 'b'] (not a state of AdamAtan2)")
        super().load_state_dict(state)
        self.a, self.b = a, b


def _round_into(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Round ``x`` into ``out``'s narrower dtype (to nearest, ties to even, as torch rounds a
    float32 result to float16 and a float64 fused multiply-add's to float32); return ``out``."""
    np.copyto(out, x, casting="same_kind")
    return out


def _lerp_(m: np.ndarray, g: np.ndarray, weight: float, buf: np.ndarray) -> None:
    """``m += weight * (g - m)`` in place, from whichever end is nearer, as ``torch.lerp`` does,
    so that ``weight = 1`` (beta1 = 0) gives exactly ``g``."""
    np.subtract(g, m, out=buf)
    if weight < 0.5:
        m += np.multiply(buf, weight, out=buf)
    else:
        np.subtract(g, np.multiply(buf, 1 - weight, out=buf), out=m)
