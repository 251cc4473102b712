r"""Wilson et al.'s (2017) separable least-squares problem, where adaptive methods generalize worse.

Section 3.3 of Wilson et al. builds a binary classification problem, fitted by least squares,
on which gradient descent and adaptive methods (AdaGrad, RMSprop, Adam) all reach zero training
loss but only gradient descent classifies new points correctly. For :math:`i = 1, \dots, n`, draw
:math:`y_i = 1` with probability :math:`p > 1/2` (else :math:`-1`) and set the features

.. math::

   x_{i1} = y_i, \qquad x_{i2} = x_{i3} = 1, \qquad
   x_{ij} = 1 \text{ for } j = 4 + 5(i-1), \dots, 4 + 5(i-1) + 2(1-y_i),

and 0 elsewhere: the first feature is the label, two features are always on, and every example
has features of its own, one if :math:`y_i = 1` and five if :math:`y_i = -1`. The loss is
:math:`f(w) = \frac{1}{2n}\lVert Xw - y\rVert^2`, and with :math:`n` examples and
:math:`3 + 5n` features there are many :math:`w` with :math:`Xw = y`.

From :math:`w_0 = 0`, gradient descent stays in the row space of :math:`X` and converges to the
minimum-norm solution, which puts its weight on the first feature: new points are classified by
their label feature, with test error 0. AdaGrad's (and, as the paper shows, Adam's) iterates are
proportional to :math:`\operatorname{sign}(X^\top y)`, which weighs the two always-on features
like the label feature: every new point, whose own features no training point shared, scores
:math:`\lambda(y + 2) > 0` and is called positive, a test error of :math:`1 - p`.

A new point's own features are zero in every training example, so the gradient there is always
zero and every method leaves their weights at 0: :func:`wilson_problem` therefore gives test
points only the :math:`3 + 5n` training features (their own ones would multiply a zero weight).

References
----------
Wilson, A. C., Roelofs, R., Stern, M., Srebro, N. & Recht, B. (2017). The Marginal Value of
Adaptive Gradient Methods in Machine Learning. NeurIPS, section 3.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Sequence

import numpy as np

__all__ = ["SeparableProblem", "fit_least_squares", "wilson_problem"]


@dataclass(frozen=True)
class SeparableProblem:
    """Training and test data of :func:`wilson_problem` (labels in {-1, 1})."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def loss(self, w: np.ndarray) -> float:
        r""":math:`\frac{1}{2n}\lVert X w - y\rVert^2` on the training set."""
        r = self.X_train @ w - self.y_train
        return float(r @ r) / (2 * len(r))

    def gradient(self, w: np.ndarray) -> np.ndarray:
        r""":math:`\frac1n X^\top (Xw - y)`."""
        return self.X_train.T @ (self.X_train @ w - self.y_train) / len(self.y_train)

    def error(self, w: np.ndarray, split: str = "test") -> float:
        """Share of misclassified points (sign of the score; a score of 0 counts as wrong)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        return float(np.mean(np.sign(X @ w) != y))


def _labels(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return np.where(rng.random(n) < p, 1.0, -1.0)


def wilson_problem(n: int = 50, p: float = 0.55, n_test: int = 1000, seed: int = 0) -> SeparableProblem:
    """Wilson et al.'s (2017, section 3.3) problem: ``n`` training points, ``n_test`` test points.

    Parameters
    ----------
    n : int
        Training examples (>= 1); the features number ``3 + 5 n``.
    p : float
        Probability of the label 1, in (1/2, 1).
    n_test : int
        Test examples (>= 1), drawn from the same distribution.
    seed : int
        Seeds the labels.

    Examples
    --------
    >>> prob = wilson_problem(n=2, seed=1)
    >>> prob.X_train.shape
    (2, 13)
    >>> prob.y_train, prob.X_train.sum(axis=1) - prob.y_train     # 3 shared ones + 1 or 5 own
    (array([ 1., -1.]), array([3., 7.]))
    """
    for name, v in (("n", n), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(p, bool) or not isinstance(p, Real) or not (0.5 < p < 1):
        raise ValueError(f"p must be a number in (0.5, 1), got {p!r}")
    rng = np.random.default_rng(seed)
    y = _labels(rng, n, p)
    X = np.zeros((n, 3 + 5 * n))
    X[:, 0], X[:, 1:3] = y, 1.0
    for i in range(n):
        own = 1 if y[i] > 0 else 5  # j = 4 + 5(i-1), ..., 4 + 5(i-1) + 2(1 - y_i), 1-based
        X[i, 3 + 5 * i : 3 + 5 * i + own] = 1.0
    y_test = _labels(rng, n_test, p)
    X_test = np.zeros((n_test, X.shape[1]))
    X_test[:, 0], X_test[:, 1:3] = y_test, 1.0
    return SeparableProblem(X, y, X_test, y_test)


def fit_least_squares(
    problem: SeparableProblem, make_optimizer: Callable[[Sequence[np.ndarray]], object], steps: int
) -> np.ndarray:
    """Full-batch training from ``w = 0``: ``steps`` calls of ``optimizer.step([gradient])``.

    ``make_optimizer`` receives ``[w]`` and returns one of adamlib's NumPy optimizers
    (:class:`adamlib.Adam`, :class:`adamlib.baselines.SGD`, ...), which updates ``w`` in place.

    Examples
    --------
    >>> from adamlib.baselines import SGD
    >>> prob = wilson_problem(n=10)
    >>> w = fit_least_squares(prob, lambda ps: SGD(ps, lr=0.5), 3000)
    >>> prob.loss(w) < 1e-6, prob.error(w)
    (True, 0.0)
    """
    if not isinstance(problem, SeparableProblem):
        raise TypeError(f"problem must be a SeparableProblem, got {type(problem).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    w = np.zeros(problem.X_train.shape[1])
    opt = make_optimizer([w])
    for _ in range(steps):
        opt.step([problem.gradient(w)])
    return w
