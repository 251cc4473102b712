r"""Where :math:`\epsilon` sits: the same name for three different constants.

Every Adam divides the bias-corrected first moment by a floored square root of the second, but
frameworks put the floor in different places. Written in PyTorch's terms (the step is
:math:`\alpha\, \hat m_t / D_t`, with :math:`\hat m_t = m_t/(1-\beta_1^t)`,
:math:`\hat v_t = v_t/(1-\beta_2^t)`):

.. math::

   \begin{aligned}
   \text{PyTorch, Algorithm 1 of the paper:}\quad & D_t = \sqrt{\hat v_t} + \epsilon \\
   \text{the paper's "efficient version", Keras/TensorFlow:}\quad
     & \theta_t = \theta_{t-1} - \alpha \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
       \frac{m_t}{\sqrt{v_t} + \hat\epsilon}
     \;\Longleftrightarrow\; D_t = \sqrt{\hat v_t} + \frac{\hat\epsilon}{\sqrt{1-\beta_2^t}} \\
   \text{optax } (\texttt{eps\_root}):\quad
     & D_t = \sqrt{\hat v_t + \epsilon_{\text{root}}} + \epsilon
   \end{aligned}

So Keras's :math:`\hat\epsilon` is PyTorch's :math:`\epsilon_t = \hat\epsilon/\sqrt{1-\beta_2^t}`:
:math:`\sqrt{1000} \approx 31.6` times larger at the first step for :math:`\beta_2 = 0.999`,
the same constant only once :math:`\beta_2^t \approx 0` (and Keras's default
:math:`\hat\epsilon` is ``1e-7``, not ``1e-8``). optax's :math:`\epsilon_{\text{root}}` floors the
denominator at :math:`\sqrt{\epsilon_{\text{root}}}` when :math:`\hat v_t` is small and vanishes
when it is large: no constant :math:`\epsilon` is equivalent to it.

The functions here are pure and take scalars or arrays; the conversions are exact, step by step,
which the tests check by running each convention from its formula.

References
----------
Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR (section 2,
the paragraph after Algorithm 1).
"""

from __future__ import annotations

import math

import numpy as np

from . import hyperparams as hp

#: What each framework's Adam uses by default, each in its own convention. ``eps`` is PyTorch's
#: :math:`\epsilon` (after bias correction), ``eps_hat`` the paper's efficient-form
#: :math:`\hat\epsilon` (before bias correction), ``eps_root`` optax's term inside the root.
FRAMEWORK_DEFAULTS: dict[str, dict[str, float]] = {
    "pytorch": {"eps": 1e-8, "eps_hat": 0.0, "eps_root": 0.0},
    "keras": {"eps": 0.0, "eps_hat": 1e-7, "eps_root": 0.0},
    "optax": {"eps": 1e-8, "eps_hat": 0.0, "eps_root": 0.0},
}


def _check_step(beta2: object, t: object) -> tuple[float, int]:
    beta2 = hp.check_beta("beta2", beta2)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an integer step number >= 1, got {t!r}")
    return beta2, int(t)


def eps_from_eps_hat(eps_hat: float, beta2: float, t: int) -> float:
    r"""PyTorch's :math:`\epsilon` at step :math:`t` equal to the efficient form's :math:`\hat\epsilon`.

    .. math:: \epsilon_t = \frac{\hat\epsilon}{\sqrt{1-\beta_2^t}}

    Parameters
    ----------
    eps_hat : float
        :math:`\hat\epsilon \ge 0`, added to :math:`\sqrt{v_t}` before bias correction (Keras,
        TensorFlow, the paper's efficient version, the Tuning Playbook's formula).
    beta2 : float
        :math:`\beta_2 \in [0, 1)`.
    t : int
        The step, counting from 1.

    Examples
    --------
    >>> round(eps_from_eps_hat(1e-7, 0.999, 1) / 1e-7, 2)   # 1 / sqrt(1 - 0.999)
    31.62
    >>> round(eps_from_eps_hat(1e-7, 0.999, 10_000) / 1e-7, 5)
    1.00002
    """
    beta2, t = _check_step(beta2, t)
    return hp.check_eps(eps_hat, "eps_hat") / math.sqrt(1 - beta2**t)


def eps_hat_from_eps(eps: float, beta2: float, t: int) -> float:
    r"""The efficient form's :math:`\hat\epsilon` at step :math:`t` equal to PyTorch's :math:`\epsilon`.

    .. math:: \hat\epsilon_t = \epsilon \sqrt{1-\beta_2^t}

    The inverse of :func:`eps_from_eps_hat`.

    Examples
    --------
    >>> round(eps_hat_from_eps(1e-8, 0.999, 1), 12)   # 1e-8 * sqrt(0.001)
    3.16e-10
    """
    beta2, t = _check_step(beta2, t)
    return hp.check_eps(eps) * math.sqrt(1 - beta2**t)


def eps_from_eps_root(eps_root: float, v_hat: np.ndarray | float) -> np.ndarray:
    r"""The PyTorch :math:`\epsilon` that optax's ``eps_root`` amounts to, coordinate by coordinate.

    .. math::

       \sqrt{\hat v + \epsilon_{\text{root}}} = \sqrt{\hat v} + \epsilon
       \quad\Longleftrightarrow\quad
       \epsilon = \sqrt{\hat v + \epsilon_{\text{root}}} - \sqrt{\hat v}
       = \frac{\epsilon_{\text{root}}}{\sqrt{\hat v + \epsilon_{\text{root}}} + \sqrt{\hat v}},

    between 0 and :math:`\sqrt{\epsilon_{\text{root}}}` (reached at :math:`\hat v = 0`), and about
    :math:`\epsilon_{\text{root}} / (2\sqrt{\hat v})` for :math:`\hat v \gg \epsilon_{\text{root}}`.
    It depends on :math:`\hat v`, so no single ``eps`` reproduces an ``eps_root`` run.

    Examples
    --------
    >>> eps_from_eps_root(1e-16, [0.0, 1e-16, 1.0])
    array([1.00000000e-08, 4.14213562e-09, 5.00000000e-17])
    """
    eps_root = hp.check_eps(eps_root, "eps_root")
    v_hat = np.asarray(v_hat, dtype=float)
    if np.any(~(v_hat >= 0)):
        raise ValueError("v_hat must be >= 0 everywhere (a second moment)")
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(v_hat + eps_root)
        return np.where(eps_root == 0, 0.0, eps_root / (root + np.sqrt(v_hat)))


def efficient_adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    *,
    lr: float = hp.LR,
    beta1: float = hp.BETAS[0],
    beta2: float = hp.BETAS[1],
    eps_hat: float = FRAMEWORK_DEFAULTS["keras"]["eps_hat"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One step of the paper's "efficient version" of Adam, as Keras and TensorFlow run it.

    .. math::

       m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
       v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
       \alpha_t = \alpha \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
       \theta_t = \theta_{t-1} - \alpha_t \frac{m_t}{\sqrt{v_t} + \hat\epsilon}.

    It is :func:`adamlib.adam_step` with :math:`\epsilon_t = \hat\epsilon/\sqrt{1-\beta_2^t}`
    (:func:`eps_from_eps_hat`), not with :math:`\epsilon = \hat\epsilon`. The default
    :math:`\hat\epsilon` is Keras's, ``1e-7``.

    Returns
    -------
    (param, m, v) : tuple of ndarray
        New arrays; the inputs are never mutated.

    Examples
    --------
    >>> from adamlib import adam_step
    >>> z = np.zeros(1)
    >>> keras, _, _ = efficient_adam_step(z, np.array([1e-6]), z, z, 1, lr=1.0)
    >>> torch_like, _, _ = adam_step(z, np.array([1e-6]), z, z, 1, lr=1.0, eps=1e-7)
    >>> keras.round(3), torch_like.round(3)   # the same eps, another first step
    (array([-0.24]), array([-0.909]))
    """
    beta2, t = _check_step(beta2, t)
    eps_hat = hp.check_eps(eps_hat, "eps_hat")
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    alpha_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    param = param - alpha_t * m / (np.sqrt(v) + eps_hat)
    return param, m, v


def denominator(
    v: np.ndarray | float,
    beta2: float,
    t: int,
    *,
    eps: float = 0.0,
    eps_hat: float = 0.0,
    eps_root: float = 0.0,
) -> np.ndarray:
    r"""Adam's denominator in PyTorch's terms, with each framework's floor where it puts it.

    .. math::

       D_t = \sqrt{\hat v_t + \epsilon_{\text{root}}} + \epsilon
             + \frac{\hat\epsilon}{\sqrt{1-\beta_2^t}},
       \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},

    so that every convention's step is :math:`\alpha\, \hat m_t / D_t`: PyTorch sets ``eps``,
    Keras/TensorFlow ``eps_hat``, optax ``eps`` and ``eps_root``
    (:data:`FRAMEWORK_DEFAULTS`).

    Parameters
    ----------
    v : array_like
        The raw second moment :math:`v_t` (before bias correction).
    beta2, t
        :math:`\beta_2` and the step number (from 1).
    eps, eps_hat, eps_root : float
        The three floors, each :math:`\ge 0`.

    Examples
    --------
    >>> g = 1e-7                        # the first step sees v_1 = (1 - beta2) g^2
    >>> v1 = (1 - 0.999) * g**2
    >>> for name, floors in FRAMEWORK_DEFAULTS.items():
    ...     print(name, round(float(g / denominator(v1, 0.999, 1, **floors)), 3))  # step / lr
    pytorch 0.909
    keras 0.031
    optax 0.909
    """
    beta2, t = _check_step(beta2, t)
    eps = hp.check_eps(eps)
    eps_hat, eps_root = hp.check_eps(eps_hat, "eps_hat"), hp.check_eps(eps_root, "eps_root")
    v = np.asarray(v, dtype=float)
    if np.any(~(v >= 0)):
        raise ValueError("v must be >= 0 everywhere (a second moment)")
    bc2 = 1 - beta2**t
    return np.sqrt(v / bc2 + eps_root) + eps + eps_hat / math.sqrt(bc2)
