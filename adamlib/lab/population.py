r"""Train a population of small models at once: K digits MLPs, one batched computation.

:func:`train_population` trains K members of the book's task (the 64 -> ``hidden`` -> 10
ReLU network of :func:`adamlib.lab.tasks.mlp` on :func:`~adamlib.lab.tasks.digits_split`)
together. Member :math:`k` has its own initialisation and data-order seed and its own Adam
hyperparameters; every step runs one batched forward pass, one batched backward pass
(both written out with ``torch.baddbmm``/``torch.bmm``: the ``(K, ...)`` stack of weights
is a batch of matrices) and one Adam update of the ``(K, P)`` stack of all parameters,
with each hyperparameter a ``(K, 1)`` tensor that broadcasts over its member's row.

Each member equals the run made alone with :func:`~adamlib.lab.tasks.mlp`,
:func:`~adamlib.lab.tasks.train` and ``torch.optim.Adam`` on the same seed: same initial
weights, same minibatches (the same ``torch.Generator`` calls), same loss (mean
cross-entropy) and the same update, in ``torch.optim.Adam``'s order. With
:math:`\alpha_t` the (scheduled) learning rate, :math:`\lambda` the weight decay and
:math:`t` counted from 1:

.. math::

   g &\leftarrow \nabla + \lambda_{L2}\,\theta, \qquad
   \theta \leftarrow (1 - \alpha_t\lambda_{W})\,\theta, \\
   m &\leftarrow m + (1-\beta_1)(g - m), \qquad
   v \leftarrow \beta_2 v + (1-\beta_2)\,g^2, \qquad
   \hat v \leftarrow \max(\hat v, v)\ \text{(AMSGrad)}, \\
   \theta &\leftarrow \theta - \frac{\alpha_t}{1-\beta_1^t}\,
       \frac{m}{\sqrt{v\ \text{or}\ \hat v}\,/\sqrt{1-\beta_2^t} + \epsilon}

where :math:`\lambda_{L2} = \lambda` for Adam's L2 penalty and :math:`\lambda_W = \lambda`
for decoupled decay (AdamW; Loshchilov & Hutter, 2019), the other one being 0. The
per-member numbers (:math:`\alpha_t`, the bias corrections) are computed in float64 on the
host, as ``torch.optim.Adam`` computes them, before they meet the parameters' dtype.

:func:`grid` builds the members of a cartesian grid, and :func:`retune` picks, for each
setting of the other hyperparameters, the learning rate with the best seed-mean metric:
the learning rate is a nuisance hyperparameter, re-tuned for each setting compared.

Examples
--------
>>> from adamlib.lab.tasks import digits_split
>>> members = grid(lr=[1e-3, 1e-2], seed=[0, 1])
>>> pop = train_population(digits_split(), steps=20, **members, hidden=16)
>>> pop.table[["lr", "seed", "diverged"]].to_dict("list")
{'lr': [0.001, 0.001, 0.01, 0.01], 'seed': [0, 1, 0, 1], 'diverged': [False, False, False, False]}
>>> pop.train_loss.shape
(4, 20)

References
----------
Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR.
Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR.
"""

from __future__ import annotations

import itertools
import os
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from adamlib import hyperparams as hp
from adamlib.lab import perturb, schedules, tasks

__all__ = ["Population", "grid", "retune", "train_population"]

#: The per-member arguments of :func:`train_population`, in the table's column order.
MEMBER_ARGS = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled", "amsgrad", "schedule", "seed")


@dataclass(frozen=True)
class Population:
    """What :func:`train_population` records.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per member, in the order given: its hyperparameters (the columns of
        ``MEMBER_ARGS``; ``lr`` is the peak rate of a schedule), ``train_loss`` (the
        minibatch loss of its last step), ``val_loss`` and ``val_accuracy`` (on the
        validation set after the last step; ``val_loss`` is inf for a diverged member, as
        in :func:`adamlib.lab.tasks.train`) and ``diverged``.
    train_loss : ndarray
        ``(K, steps)``: the minibatch loss at every step; NaN after the step where a member
        diverged (its loss there is the first NaN or inf).
    lr : ndarray
        ``(K, steps)``: each member's learning rate at every step (its schedule).
    eval_steps : ndarray
        The step counts after which the validation curves were measured
        (``eval_every, 2 * eval_every, ...``); empty without ``eval_every``.
    val_loss : ndarray
        ``(K, len(eval_steps))``: the validation loss curves; NaN after divergence.
    val_accuracy : ndarray
        ``(K, len(eval_steps))``: the validation accuracy curves; NaN after divergence.
    params : Tensor
        ``(K, P)``: each member's parameters at the end, flattened in the order of
        ``tasks.mlp(hidden).parameters()`` (see :meth:`model`).
    """

    table: Any
    train_loss: np.ndarray
    lr: np.ndarray
    eval_steps: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    params: torch.Tensor

    def model(self, k: int) -> torch.nn.Sequential:
        """Member ``k`` as a :func:`adamlib.lab.tasks.mlp` network with its final parameters."""
        hidden = (self.params.shape[1] - 10) // 75
        net = tasks.mlp(hidden).to(self.params.dtype)
        torch.nn.utils.vector_to_parameters(self.params[k].clone(), net.parameters())
        return net


def grid(**axes: Sequence) -> dict[str, np.ndarray]:
    """The cartesian product of ``axes``: one entry per member, as :func:`train_population` takes them.

    Members are in the order of nested loops over the axes as given, the last axis
    varying fastest (``itertools.product``).

    Examples
    --------
    >>> g = grid(lr=[0.1, 0.2], seed=[0, 1, 2])
    >>> g["lr"].tolist(), g["seed"].tolist()
    ([0.1, 0.1, 0.1, 0.2, 0.2, 0.2], [0, 1, 2, 0, 1, 2])
    """
    if not axes:
        raise ValueError("grid needs at least one axis, e.g. grid(lr=[1e-3, 1e-2])")
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise ValueError(f"{name}: expected a non-empty sequence of values, got {values!r}")
    rows = list(itertools.product(*axes.values()))
    out = {}
    for name, column in zip(axes, zip(*rows)):
        arr = np.empty(len(column), dtype=object)
        arr[:] = column
        out[name] = arr if any(v is None or isinstance(v, str) for v in column) else np.array(column)
    return out


def _members(args: Mapping[str, Any]) -> tuple[int, dict[str, list]]:
    """Broadcast every per-member argument to a list of length K, checking lengths."""
    lengths = {}
    for name, value in args.items():
        if not (value is None or isinstance(value, (str, bytes)) or np.ndim(value) == 0):
            if np.ndim(value) != 1:
                raise ValueError(f"{name}: expected a scalar or a 1-D sequence, got shape {np.shape(value)}")
            lengths[name] = len(value)
    if any(n == 0 for n in lengths.values()):
        raise ValueError(f"empty population: {[k for k, n in lengths.items() if n == 0]} have no members")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"hyperparameter sequences must have one length (the population size), got {lengths}")
    K = next(iter(lengths.values()), 1)
    return K, {name: list(value) if name in lengths else [value] * K for name, value in args.items()}


def _check_member(k: int, m: dict[str, Any], steps: int, options: Mapping[str, Mapping]) -> dict[str, Any]:
    """Check member ``k`` as :mod:`adamlib.hyperparams` checks one optimizer; name it on failure."""
    try:
        checked = hp.check_hyperparameters(m["lr"], (m["beta1"], m["beta2"]), m["eps"], m["weight_decay"])
        for name in ("decoupled", "amsgrad"):
            if not isinstance(m[name], (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {m[name]!r}")
        seed = m["seed"]
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if m["schedule"] is not None and m["schedule"] not in schedules.SCHEDULES:
            raise ValueError(f"schedule must be None or one of {sorted(schedules.SCHEDULES)}, got {m['schedule']!r}")
        rates = _rates(m["schedule"], checked["lr"], steps, tuple(sorted(options.get(m["schedule"], {}).items())))
    except (TypeError, ValueError) as e:
        raise type(e)(f"member {k}: {e}") from None
    beta1, beta2 = checked["betas"]
    return dict(m, lr=checked["lr"], beta1=beta1, beta2=beta2, eps=checked["eps"],
                weight_decay=checked["weight_decay"], decoupled=bool(m["decoupled"]),
                amsgrad=bool(m["amsgrad"]), seed=int(seed), rates=rates)


@lru_cache(maxsize=1024)
def _rates(schedule: str | None, lr: float, steps: int, options: tuple) -> np.ndarray:
    """The learning rate at each step: torch's own scheduler (:func:`schedules.trace`)."""
    if schedule is None or lr == 0.0:  # every schedule scales the peak rate
        return np.full(steps, lr)
    return schedules.trace(schedule, lr, steps, **dict(options))


def _initial(hidden: int, seed: int) -> torch.Tensor:
    """The parameters of ``tasks.mlp(hidden, seed)``, flattened into one row (float64, exact).

    Cached per ``ADAMLIB_PERTURB`` too (``adamlib.lab.perturb``): ``tasks.mlp`` honours it.
    """
    return _initial_cached(hidden, seed, perturb.ulps())


@lru_cache(maxsize=1024)
def _initial_cached(hidden: int, seed: int, ulps: int) -> torch.Tensor:
    """:func:`_initial`; ``ulps`` (what ``tasks.mlp`` reads from the environment) keys the cache."""
    return torch.cat([p.detach().reshape(-1).double() for p in tasks.mlp(hidden, seed).parameters()])


def _show_progress(progress: bool | None) -> bool:
    """``progress``, or by default: in an IPython kernel with widgets, unless ADAMLIB_PROGRESS=0."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("ADAMLIB_PROGRESS", "1") == "0" or "ipykernel" not in sys.modules:
        return False
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook bar needs it)
    except ImportError:
        return False
    return True


def _forward(params: torch.Tensor, X: torch.Tensor, hidden: int):
    """Logits ``(K, 10, N)`` and hidden activations ``(K, hidden, N)`` of K stacked networks.

    Examples are columns (``W @ X.T``): the softmax then runs over dimension 1, which
    PyTorch's CPU kernels do several times faster than over a last dimension of size 10.
    """
    K, H = params.shape[0], hidden
    W1 = params[:, : 64 * H].view(K, H, 64)
    b1 = params[:, 64 * H : 65 * H]
    W2 = params[:, 65 * H : 75 * H].view(K, 10, H)
    b2 = params[:, 75 * H :]
    a = torch.baddbmm(b1.unsqueeze(2), W1, X.transpose(1, 2)).relu_()
    return torch.baddbmm(b2.unsqueeze(2), W2, a), a, W2


def _loss_and_grad(params: torch.Tensor, X: torch.Tensor, y: torch.Tensor, hidden: int):
    r"""Mean cross-entropy of each member ``(K,)`` and its gradient ``(K, P)``, by hand.

    With :math:`p` the softmax of the logits and :math:`B` the batch size,
    :math:`\partial L/\partial z = (p - \text{onehot}(y)) / B`, then back through the two
    linear layers and the ReLU (whose gradient is 0 where the activation is 0, as torch's).
    """
    logits, a, W2 = _forward(params, X, hidden)
    logp = logits.log_softmax(1)
    target = y.unsqueeze(1)
    loss = -logp.gather(1, target).squeeze(1).mean(1)
    dz = logp.exp().scatter_add_(1, target, -torch.ones_like(logp[:, :1])).div_(X.shape[1])
    dW2, db2 = torch.bmm(dz, a.transpose(1, 2)), dz.sum(2)
    dh = torch.bmm(W2.transpose(1, 2), dz).mul_(a > 0)
    dW1, db1 = torch.bmm(dh, X), dh.sum(2)
    return loss, torch.cat([dW1.flatten(1), db1, dW2.flatten(1), db2], dim=1)


def _evaluate(params: torch.Tensor, X: torch.Tensor, y: torch.Tensor, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation loss and accuracy of each member, as :func:`adamlib.lab.tasks.evaluate`."""
    with torch.no_grad():
        logits = _forward(params, X.expand(params.shape[0], -1, -1), hidden)[0]
        target = y.expand(params.shape[0], -1).unsqueeze(1)
        loss = -logits.log_softmax(1).gather(1, target).squeeze(1).mean(1)
        accuracy = (logits.argmax(1, keepdim=True) == target).float().squeeze(1).mean(1)
    return loss.double().numpy(), accuracy.double().numpy()


def train_population(
    data: tasks.DigitsSplit,
    steps: int,
    *,
    lr: float | Sequence[float] = hp.LR,
    beta1: float | Sequence[float] = hp.BETAS[0],
    beta2: float | Sequence[float] = hp.BETAS[1],
    eps: float | Sequence[float] = hp.EPS,
    weight_decay: float | Sequence[float] = hp.WEIGHT_DECAY,
    decoupled: bool | Sequence[bool] = False,
    amsgrad: bool | Sequence[bool] = False,
    schedule: str | None | Sequence[str | None] = None,
    seed: int | Sequence[int] = 0,
    hidden: int = tasks.BOOK_TASK.hidden,
    batch_size: int = tasks.BOOK_TASK.batch_size,
    eval_every: int | None = None,
    schedule_options: Mapping[str, Mapping[str, Any]] | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool | None = None,
) -> Population:
    """Train K digits MLPs with Adam at once; member k equals its run alone (module docstring).

    Parameters
    ----------
    data : DigitsSplit
        From :func:`adamlib.lab.tasks.digits_split`.
    steps : int
        Optimizer steps of every member (``>= 1``).
    lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, schedule, seed
        Each a scalar shared by all members or a sequence with one value per member (all
        sequences of one length K; scalars only: K = 1). ``decoupled`` chooses AdamW's
        decay over Adam's L2 penalty; ``schedule`` is None or a name of
        :data:`adamlib.lab.schedules.SCHEDULES` (``lr`` is then its peak rate), stepped
        after every step like :func:`adamlib.lab.tasks.train`'s ``scheduler``; ``seed``
        seeds both :func:`~adamlib.lab.tasks.mlp` and the minibatch order. Defaults are
        ``torch.optim.Adam``'s.
    hidden, batch_size : int
        The network's width and the minibatch size (the book's task by default).
    eval_every : int, optional
        Also measure validation loss and accuracy after every ``eval_every`` steps
        (:attr:`Population.val_loss`, :attr:`Population.val_accuracy`).
    schedule_options : dict, optional
        Options per schedule name, e.g. ``{"warmup + cosine": {"warmup_steps": 30}}``.
    dtype : torch.dtype, default float32
        Of the parameters, the optimizer state and the data.
    progress : bool, optional
        Show tqdm's notebook progress bar. By default only in a Jupyter kernel where
        ``ipywidgets`` is installed and the environment variable ``ADAMLIB_PROGRESS`` is
        not ``"0"`` (the book's test and build commands set it to ``"0"``).

    Returns
    -------
    Population

    Raises
    ------
    ValueError, TypeError
        Before any training: sequences of different lengths, an empty population, a
        member's value out of range (naming the member and the argument), ``steps < 1``.

    Notes
    -----
    A member whose minibatch loss becomes NaN or inf is marked ``diverged``: like
    :func:`adamlib.lab.tasks.train`, it takes that step's update and then stops (its
    parameters are frozen, its later losses are NaN); the other members are not affected.

    In float64 each member equals its run alone up to rounding (tested to 1e-10 relative
    over 50 steps; the losses measured agree to 5e-16). In float32 the
    batched matrix products sum in another order than a single run's, and the rounding
    differences grow with training: within 3e-6 relative after 50 steps (tested), about
    1e-3 in the minibatch losses and 1e-4 in the validation loss after the book's 300 steps
    (measured on a mixed population, 2026-11-30), far below the spread between seeds.
    """
    for name, value, low in (("steps", steps, 1), ("hidden", hidden, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    n = len(data.y_train)
    if batch_size > n:
        raise ValueError(f"batch_size must be at most the {n} training examples, got {batch_size}")
    bad_every = isinstance(eval_every, bool) or not isinstance(eval_every, Integral) or eval_every < 1
    if eval_every is not None and bad_every:
        raise ValueError(f"eval_every must be None or an integer >= 1, got {eval_every!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    args = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                decoupled=decoupled, amsgrad=amsgrad, schedule=schedule, seed=seed)
    K, columns = _members(args)
    options = dict(schedule_options or {})
    members = [_check_member(k, {a: columns[a][k] for a in MEMBER_ARGS}, int(steps), options) for k in range(K)]

    def column(name: str, dt=np.float64) -> np.ndarray:
        return np.array([m[name] for m in members], dtype=dt)

    def per_member(values: np.ndarray) -> torch.Tensor:  # float64 host numbers -> (K, 1) of dtype
        return torch.as_tensor(values, dtype=torch.float64).to(dtype).unsqueeze(1)

    steps = int(steps)
    rates = np.stack([m["rates"] for m in members])
    b1, b2, epsv, wd = column("beta1"), column("beta2"), column("eps"), column("weight_decay")
    dec, ams = column("decoupled", bool), column("amsgrad", bool)
    l2 = per_member(np.where(dec, 0.0, wd))
    l2_any, decay_any = bool((~dec & (wd != 0)).any()), bool((dec & (wd != 0)).any())
    one_minus_b1, b2_t, one_minus_b2, eps_t = per_member(1 - b1), per_member(b2), per_member(1 - b2), per_member(epsv)
    ams_t = torch.as_tensor(ams).unsqueeze(1) if ams.any() else None

    X, y = data.X_train.to(dtype), data.y_train
    Xv, yv = data.X_val.to(dtype), data.y_val
    params = torch.stack([_initial(hidden, m["seed"]) for m in members]).to(dtype)
    exp_avg, exp_avg_sq = torch.zeros_like(params), torch.zeros_like(params)
    max_exp_avg_sq = torch.zeros_like(params) if ams_t is not None else None

    seeds = sorted({m["seed"] for m in members})
    row_of_seed = torch.tensor([seeds.index(m["seed"]) for m in members])
    gens = [torch.Generator().manual_seed(s) for s in seeds]  # the calls of tasks.train, per seed
    perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
    pos = 0

    train_loss = np.full((K, steps), np.nan)
    eval_steps = np.arange(eval_every, steps + 1, eval_every) if eval_every else np.zeros(0, dtype=int)
    val_curves = np.full((2, K, len(eval_steps)), np.nan)
    alive = np.ones(K, dtype=bool)
    last_step = np.full(K, steps - 1)  # where each member's loss was last recorded
    frozen: dict[int, torch.Tensor] = {}

    loop = range(steps)
    if _show_progress(progress):
        from tqdm.auto import tqdm

        loop = tqdm(loop, desc=f"population of {K}", leave=False)
    for t in loop:
        if pos + batch_size > n:
            perms, pos = torch.stack([torch.randperm(n, generator=g) for g in gens]), 0
        idx = perms[row_of_seed, pos : pos + batch_size]
        pos += batch_size
        loss, grad = _loss_and_grad(params, X[idx], y[idx], hidden)
        loss = loss.double().numpy()
        train_loss[alive, t] = loss[alive]

        # Adam, torch.optim.Adam's order, every member at once (scalars in float64 on the host)
        step = t + 1
        lr_t = rates[:, t]
        bc1, bc2_sqrt = 1 - b1**step, (1 - b2**step) ** 0.5
        if l2_any:  # as torch.optim.Adam, no term at all when no member has it
            grad = grad + l2 * params
        if decay_any:
            params.mul_(per_member(np.where(dec, 1 - lr_t * wd, 1.0)))
        exp_avg.lerp_(grad, one_minus_b1)
        exp_avg_sq.mul_(b2_t).addcmul_(grad * one_minus_b2, grad)
        v = exp_avg_sq
        if max_exp_avg_sq is not None:
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            v = torch.where(ams_t, max_exp_avg_sq, exp_avg_sq)
        denom = (v.sqrt() / per_member(bc2_sqrt)).add_(eps_t)
        params.addcdiv_(exp_avg * per_member(-lr_t / bc1), denom)

        for k in frozen:  # diverged members keep the parameters of the step they diverged at
            params[k] = frozen[k]
        for k in np.flatnonzero(alive & ~np.isfinite(loss)):
            alive[k], last_step[k], frozen[int(k)] = False, t, params[k].clone()
        if eval_every and step % eval_every == 0:
            col = step // eval_every - 1
            val_curves[:, alive, col] = np.stack(_evaluate(params, Xv, yv, hidden))[:, alive]

    val_loss, val_accuracy = _evaluate(params, Xv, yv, hidden)
    last = train_loss[np.arange(K), last_step]
    diverged = ~alive | ~np.isfinite(val_loss)
    val_loss = np.where(np.isfinite(val_loss), val_loss, np.inf)

    import pandas as pd

    table = pd.DataFrame({name: [m[name] for m in members] for name in MEMBER_ARGS})
    table["schedule"] = pd.Series([m["schedule"] for m in members], dtype=object)  # None stays None
    table["train_loss"], table["val_loss"], table["val_accuracy"] = last, val_loss, val_accuracy
    table["diverged"] = diverged
    return Population(table, train_loss, rates, eval_steps, val_curves[0], val_curves[1], params)


def retune(table, by: Sequence[str] = (), metric: str = "val_loss", *, lr: str = "lr",
           maximize: bool | None = None):
    """For each group of ``by`` columns, the learning rate with the best seed-mean ``metric``.

    Rows with the same ``by`` values and the same ``lr`` are the seeds of one setting;
    their mean ranks the learning rates of the group (diverged runs count with their
    ``val_loss`` of inf). A best rate at the smallest or largest rate tried is flagged in
    ``at_edge`` (and warned about): the grid may not contain the true best.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`Population.table`, or any table with the columns ``by``, ``lr`` and ``metric``.
    by : sequence of str
        The columns that define a setting (for example ``["beta1"]``); empty: one group.
    metric : str, default "val_loss"
        The column to rank by.
    maximize : bool, optional
        Higher is better; by default True only for a metric whose name ends in "accuracy".

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, ``lr`` (the best), ``<metric>_mean``,
        ``<metric>_min`` and ``<metric>_max`` over that rate's seeds, ``n_seeds``,
        ``n_lrs`` (how many rates the group tried) and ``at_edge``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"beta1": [0.9] * 6, "lr": [1, 1, 2, 2, 3, 3],
    ...                   "val_loss": [3.0, 3.2, 1.0, 1.4, 2.0, 2.0]})
    >>> retune(t, by=["beta1"]).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'beta1': 0.9, 'lr': 2, 'val_loss_mean': 1.2, 'val_loss_min': 1.0, 'val_loss_max': 1.4,
      'n_seeds': 2, 'n_lrs': 3, 'at_edge': False}]
    """
    import pandas as pd

    by = list(by)
    missing = [c for c in [*by, lr, metric] if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}; it has {list(table.columns)}")
    if len(table) == 0:
        raise ValueError("table is empty")
    if maximize is None:
        maximize = metric.endswith("accuracy")
    rows = []
    for _, group in (table.groupby(by, sort=True, dropna=False) if by else [((), table)]):
        g = group.groupby(lr, sort=True)[metric].agg(["mean", "min", "max", "count"])
        means = g["mean"].to_numpy(dtype=float)
        means = np.where(np.isnan(means), -np.inf if maximize else np.inf, means)
        i = int(np.argmax(means) if maximize else np.argmin(means))
        rates = g.index.to_numpy()
        rows.append({**{c: group[c].iloc[0] for c in by},
                     lr: rates[i], f"{metric}_mean": g["mean"].iloc[i], f"{metric}_min": g["min"].iloc[i],
                     f"{metric}_max": g["max"].iloc[i], "n_seeds": int(g["count"].iloc[i]),
                     "n_lrs": len(rates), "at_edge": bool(rates[i] in (rates.min(), rates.max()))})
    out = pd.DataFrame(rows)
    for c in by:  # with the table's dtypes (an object column keeps None as None)
        out[c] = pd.Series([row[c] for row in rows], dtype=table[c].dtype)
    if out["at_edge"].any():
        edge = out.loc[out["at_edge"], by].to_dict("records") if by else "the only group"
        warnings.warn(f"the best {lr} is at the edge of the rates tried for {edge}: widen the grid",
                      stacklevel=2)
    return out
