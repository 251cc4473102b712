"""A real task for the chapters: classifying scikit-learn's bundled digits with a small MLP.

Nothing is downloaded: ``sklearn.datasets.load_digits`` ships with scikit-learn. Every
run is seeded, so a chapter that trains with :func:`train` prints the same numbers on
every machine with the pinned versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Callable

import numpy as np
import torch
from torch import nn

from adamlib.lab import perturb


@dataclass(frozen=True)
class DigitsSplit:
    """Standardized 8x8 digit images (64 features) and labels, split into train and validation."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor


@dataclass(frozen=True)
class TaskConfig:
    """The book's digits task: one configuration that every chapter trains unless it says why not.

    Attributes
    ----------
    hidden : int
        Width of the MLP's one hidden layer (:func:`mlp`).
    steps : int
        Optimizer steps of one training run.
    batch_size : int
        Minibatch size (:func:`train`).
    val_fraction : float
        Share of the 1,797 digits held out for validation (:func:`digits_split`).
    """

    hidden: int = 32
    steps: int = 300
    batch_size: int = 64
    val_fraction: float = 0.3


BOOK_TASK = TaskConfig()
"""The configuration the chapters share (a 64-32-10 MLP, 300 steps of batch 64)."""


def digits_split(val_fraction: float = 0.3, seed: int = 0) -> DigitsSplit:
    """Load the digits (1,797 images), shuffle with ``seed``, split, and standardize.

    Features are standardized with the training set's mean and standard deviation only.
    Under ``ADAMLIB_PERTURB`` every non-zero feature moves by that many float32 ulps
    (``adamlib.lab.perturb``).
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(round(val_fraction * len(y)))
    val, tr = order[:n_val], order[n_val:]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0) + 1e-8
    X = (X - mean) / std
    as_x = lambda idx: perturb.nudge(torch.tensor(X[idx], dtype=torch.float32))  # noqa: E731
    as_y = lambda idx: torch.tensor(y[idx], dtype=torch.long)  # noqa: E731
    return DigitsSplit(as_x(tr), as_y(tr), as_x(val), as_y(val))


def mlp(hidden: int = 64, seed: int = 0) -> nn.Sequential:
    """A 64 -> ``hidden`` -> 10 ReLU network, initialized from ``seed``.

    Under ``ADAMLIB_PERTURB`` every non-zero initial weight and bias moves by that many ulps
    (``adamlib.lab.perturb``).
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    n = perturb.ulps()
    if n:
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(perturb.nudge(p, n))
    return net


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`train` records.

    Attributes
    ----------
    train_loss : ndarray
        The minibatch loss at every step (NaN or inf once training diverged).
    lr : ndarray
        The learning rate of the first param group at every step.
    val_loss, val_accuracy : float
        On the validation set after the last step (``val_loss`` is inf after divergence).
    """

    train_loss: np.ndarray
    lr: np.ndarray
    val_loss: float
    val_accuracy: float

    @property
    def diverged(self) -> bool:
        """True when the loss became NaN or inf."""
        return not bool(np.all(np.isfinite(self.train_loss))) or not np.isfinite(self.val_loss)


class NumpyOptimizer:
    """Let a NumPy optimizer (such as :class:`adamlib.Adam`) train a torch model.

    The optimizer gets NumPy views of the model's parameters (CPU tensors share their
    memory with ``Tensor.numpy()``), so its in-place updates are the model's updates.
    It has what :func:`train` uses of a ``torch.optim.Optimizer``: ``zero_grad``,
    ``step`` and ``param_groups[0]["lr"]``.

    Examples
    --------
    >>> import adamlib
    >>> model = mlp()
    >>> opt = NumpyOptimizer(model, lambda params: adamlib.Adam(params, lr=1e-2))
    """

    def __init__(self, model: nn.Module, make_optimizer: Callable[[list[np.ndarray]], object]) -> None:
        self._params = list(model.parameters())
        self.optimizer = make_optimizer([p.detach().numpy() for p in self._params])

    @property
    def param_groups(self) -> list[dict[str, float]]:
        return [{"lr": self.optimizer.lr}]

    def zero_grad(self) -> None:
        for p in self._params:
            p.grad = None

    def step(self) -> None:
        self.optimizer.step(
            [np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy() for p in self._params]
        )


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Cross-entropy loss and accuracy of ``model`` on ``(X, y)``."""
    with torch.no_grad():
        logits = model(X)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DigitsSplit,
    steps: int,
    *,
    batch_size: int = 64,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
    loss_scale: float = 1.0,
) -> TrainingRun:
    """Minibatch training with cross-entropy; stops early once the loss is not finite.

    Parameters
    ----------
    model, optimizer
        Any ``nn.Module`` and any ``torch.optim.Optimizer`` over its parameters.
    data
        From :func:`digits_split`.
    steps
        Number of optimizer steps; minibatches are drawn by a generator seeded with ``seed``.
    scheduler
        Stepped once after every optimizer step.
    callback
        Called as ``callback(step, loss)`` after every step.
    loss_scale
        The optimizer minimizes ``loss_scale`` times the cross-entropy, so every gradient is
        multiplied by it; the recorded losses are the cross-entropy itself.
    """
    if isinstance(loss_scale, bool) or not (isinstance(loss_scale, Real) and 0 < loss_scale < float("inf")):
        raise ValueError(f"loss_scale must be a finite number > 0, got {loss_scale!r}")
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    losses, lrs = [], []
    perm, pos = torch.randperm(n, generator=gen), 0
    for step in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch_size]
        pos += batch_size
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        loss = nn.functional.cross_entropy(model(data.X_train[idx]), data.y_train[idx])
        optimizer.zero_grad()
        (loss * loss_scale if loss_scale != 1 else loss).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step, losses[-1])
        if not np.isfinite(losses[-1]):
            break
    val_loss, val_accuracy = evaluate(model, data.X_val, data.y_val)
    if not np.isfinite(val_loss):
        val_loss = float("inf")
    return TrainingRun(np.array(losses), np.array(lrs), val_loss, val_accuracy)
