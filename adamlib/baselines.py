r"""The optimizers Adam grew out of, in NumPy, with the semantics of ``torch.optim``.

Each class updates a list of NumPy arrays in place from ``.step(grads)``, exactly like
:class:`adamlib.Adam`, so that a chapter can swap one optimizer for another in one line.
For a parameter :math:`\theta`, its gradient :math:`g` and the learning rate
:math:`\alpha`:

.. math::

   \begin{aligned}
   \text{SGD:}\quad & \theta \leftarrow \theta - \alpha g \\
   \text{SGD with momentum } \mu\text{:}\quad & b \leftarrow \mu b + g, \qquad
       \theta \leftarrow \theta - \alpha b \\
   \text{RMSprop:}\quad & s \leftarrow \rho s + (1-\rho) g^2, \qquad
       \theta \leftarrow \theta - \alpha\, g / (\sqrt{s} + \epsilon) \\
   \text{AdaGrad:}\quad & S \leftarrow S + g^2, \qquad
       \theta \leftarrow \theta - \alpha\, g / (\sqrt{S} + \epsilon)
   \end{aligned}

All state starts at zero. Each class is held to its ``torch.optim`` twin (``SGD``,
``RMSprop``, ``Adagrad``, with their other options at their defaults) by the tests.

References
----------
Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration methods.
Duchi, J., Hazan, E. & Singer, Y. (2011). Adaptive Subgradient Methods for Online Learning
and Stochastic Optimization. JMLR.
Tieleman, T. & Hinton, G. (2012). Lecture 6.5, RMSProp. COURSERA: Neural Networks for
Machine Learning.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import hyperparams as hp
from .optimizer import Optimizer

__all__ = ["SGD", "RMSprop", "Adagrad"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional heavy-ball momentum (``torch.optim.SGD``).

    .. math::

       b_t = \mu\, b_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \alpha\, b_t,
       \qquad b_0 = 0,

    which for :math:`\mu = 0` is plain gradient descent, :math:`\theta_t = \theta_{t-1} -
    \alpha g_t`. The buffer :math:`b` sums past gradients with weights :math:`\mu^k`, with no
    :math:`(1-\mu)` factor: on a constant gradient the step grows to :math:`\alpha g/(1-\mu)`
    (Polyak, 1964, as PyTorch writes it with ``dampening=0, nesterov=False``).

    Parameters
    ----------
    params : iterable of ndarray
        Floating-point arrays, updated in place.
    lr : float, default 1e-3
        The learning rate :math:`\alpha \ge 0`.
    momentum : float, default 0
        :math:`\mu \in [0, 1)`.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step([np.ones(1)])
    >>> w  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
    array([0.71])
    """

    def __init__(self, params: Iterable[np.ndarray], lr: float = 1e-3, momentum: float = 0.0) -> None:
        self.momentum = hp.check_beta("momentum", momentum)
        super().__init__(params, lr)
        self.momentum_buffer = [np.zeros_like(p) for p in self.params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        if self.momentum == 0:
            p -= self.lr * g
            return
        b = self.momentum_buffer[i]
        b *= self.momentum
        b += g
        p -= self.lr * b

    def _options(self) -> dict[str, object]:
        return {"momentum": self.momentum}


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman & Hinton, 2012) as ``torch.optim.RMSprop`` computes it by default.

    .. math::

       s_t = \rho\, s_{t-1} + (1-\rho)\, g_t^2, \qquad
       \theta_t = \theta_{t-1} - \alpha\, \frac{g_t}{\sqrt{s_t} + \epsilon},
       \qquad s_0 = 0.

    There is no momentum and no bias correction: since :math:`s_1 = (1-\rho) g_1^2`, the first
    step is :math:`\alpha / \sqrt{1-\rho}` per coordinate (10 :math:`\alpha` at
    :math:`\rho = 0.99`). Adam with :math:`\beta_1 = 0`, :math:`\beta_2 = \rho` and no bias
    correction is exactly this.

    Parameters
    ----------
    params : iterable of ndarray
        Floating-point arrays, updated in place.
    lr : float, default 1e-2
        The learning rate :math:`\alpha \ge 0`.
    alpha : float, default 0.99
        The decay :math:`\rho \in [0, 1)` of the running mean of squared gradients (torch's
        name for it).
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`, added to the denominator.
    """

    def __init__(
        self, params: Iterable[np.ndarray], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8
    ) -> None:
        self.alpha = hp.check_beta("alpha", alpha)
        self.eps = hp.check_eps(eps)
        super().__init__(params, lr)
        self.square_avg = [np.zeros_like(p) for p in self.params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        s = self.square_avg[i]
        s *= self.alpha
        s += (1 - self.alpha) * g * g
        p -= self.lr * (g / (np.sqrt(s) + self.eps))

    def _options(self) -> dict[str, object]:
        return {"alpha": self.alpha, "eps": self.eps}


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi et al., 2011) as ``torch.optim.Adagrad`` computes it by default.

    .. math::

       S_t = S_{t-1} + g_t^2, \qquad
       \theta_t = \theta_{t-1} - \alpha\, \frac{g_t}{\sqrt{S_t} + \epsilon},
       \qquad S_0 = 0.

    :math:`S` sums every squared gradient seen so far, so each coordinate's effective
    learning rate :math:`\alpha / (\sqrt{S_t} + \epsilon)` only ever shrinks.

    Parameters
    ----------
    params : iterable of ndarray
        Floating-point arrays, updated in place.
    lr : float, default 1e-2
        The learning rate :math:`\alpha \ge 0`.
    eps : float, default 1e-10
        :math:`\epsilon \ge 0`, added to the denominator.
    """

    def __init__(self, params: Iterable[np.ndarray], lr: float = 1e-2, eps: float = 1e-10) -> None:
        self.eps = hp.check_eps(eps)
        super().__init__(params, lr)
        self.sum = [np.zeros_like(p) for p in self.params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        S = self.sum[i]
        S += g * g
        p -= self.lr * (g / (np.sqrt(S) + self.eps))

    def _options(self) -> dict[str, object]:
        return {"eps": self.eps}
