r"""Optuna studies whose trials train as one population.

The book's tuning chapters search with :mod:`adamlib.lab.search`; a reader tuning their own
model will run the same procedure in a study framework, most often Optuna. This module makes
a :class:`~adamlib.lab.search.SearchSpace` an Optuna search space and runs a study in the
*ask and tell* style, ``K`` trials at a time:

1. ``study.ask`` ``K`` trials with the space's distributions (:func:`distributions`),
2. train them as one population (:func:`adamlib.lab.population.train_population`: one
   batched computation, each member equal to its run alone),
3. ``study.tell`` each trial its validation loss, with its seed and training curve stored
   as trial attributes; a trial whose run diverged is told as failed, not as a number.

A study lives in Optuna's storage: in memory, a SQLite file (``sqlite:///study.db``) or a
server database (``postgresql://...``), the last being how one study spreads over many
machines (:func:`create_study`). Every worker that calls :func:`optimize` on the same storage
and study name shares the study. A run interrupted by an exception (``KeyboardInterrupt``
included) marks its unfinished trials failed (user attribute ``interrupted``) and queues them
again with the same parameters and seed, so the next call runs each of them once; a worker
that dies without a word leaves trials whose heartbeat stops, and the next call on a
heartbeat-enabled storage (the default for a database URL here) fails and re-queues them the
same way. Completed trials are never run again.

Decay rates near 1 are searched as :math:`1-\beta` on a log scale (Optuna has no such scale);
the Optuna parameter is then called ``"1-beta1"`` and :func:`member` converts it back.

A grid, or any list of points chosen in advance, is queued with :func:`enqueue` (Optuna's
``enqueue_trial``): ``study.ask`` returns the queued points first, and the sampler samples
nothing for them. (Optuna's ``GridSampler`` stops the study when its grid is exhausted, which
ends ``Study.optimize`` but raises outside it, in ask and tell.)

Exploration uses Optuna's ``QMCSampler`` (scrambled Halton or Sobol, seeded), as the Tuning
Playbook advises quasi-random search for exploration. As Optuna documents, the sampler infers
its space from the first trial, which its independent sampler (seeded random) draws; every
later trial is a point of the QMC sequence.

References
----------
Akiba, T., Sano, S., Yanase, T., Ohta, T. & Koyama, M. (2019). Optuna: A Next-generation
Hyperparameter Optimization Framework. KDD.
Godbole, V., Dahl, G. E., Gilmer, J., Shallue, C. J. & Nado, Z. (2023). Deep Learning Tuning
Playbook. github.com/google-research/tuning_playbook.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Mapping

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from adamlib import hyperparams as hp
from adamlib.lab import population
from adamlib.lab.search import SearchSpace
from adamlib.lab.tasks import DigitsSplit

__all__ = ["create_study", "distributions", "enqueue", "member", "optimize", "trials_table"]

#: Seconds between a running batch's heartbeats, and before a silent trial counts as stale.
HEARTBEAT_INTERVAL, GRACE_PERIOD = 10, 30


def _name(axis) -> str:
    return f"1-{axis.name}" if axis.scale == "log1m" else axis.name


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """Optuna's distributions for a search space, one per axis.

    A ``log`` axis is ``FloatDistribution(low, high, log=True)``, a ``linear`` one
    ``FloatDistribution(low, high)``, and a ``log1m`` axis (a decay rate :math:`\\beta`) the
    parameter ``"1-NAME"`` with ``FloatDistribution(1 - high, 1 - low, log=True)``.

    Examples
    --------
    >>> from adamlib.lab.search import ALGOPERF_ADAM
    >>> d = distributions(ALGOPERF_ADAM)
    >>> list(d)
    ['lr', '1-beta1', '1-beta2', 'eps', 'weight_decay']
    >>> round(d["1-beta2"].low, 12), round(d["1-beta2"].high, 12), d["1-beta2"].log
    (0.001, 0.1, True)
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be an adamlib.lab.search.SearchSpace, got {type(space).__name__}")
    out = {}
    for a in space.axes:
        if a.scale == "log1m":
            out[_name(a)] = FloatDistribution(1.0 - a.high, 1.0 - a.low, log=True)
        else:
            out[a.name] = FloatDistribution(a.low, a.high, log=a.scale == "log")
    return out


def member(params: Mapping[str, float], space: SearchSpace) -> dict[str, Any]:
    """The trainer's keyword arguments for a trial's parameters: ``"1-beta1"`` back to
    ``beta1``, and the space's fixed hyperparameters added.

    Examples
    --------
    >>> from adamlib.lab.search import ALGOPERF_ADAM
    >>> m = member({"lr": 1e-3, "1-beta1": 0.1, "1-beta2": 0.01, "eps": 1e-8,
    ...             "weight_decay": 0.1}, ALGOPERF_ADAM)
    >>> m["beta1"], m["beta2"], m["decoupled"]
    (0.9, 0.99, True)
    """
    out = dict(space.fixed)
    for a in space.axes:
        value = params[_name(a)]
        out[a.name] = 1.0 - value if a.scale == "log1m" else value
    return out


def create_study(name: str | None = None, storage: str | optuna.storages.BaseStorage | None = None,
                 *, seed: int = 0, qmc_type: str = "halton", heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> optuna.Study:
    """A study that minimizes the validation loss, sampled by Optuna's seeded ``QMCSampler``.

    Parameters
    ----------
    name : str, optional
        The study's name in its storage; required with a storage. An existing study of that
        name is loaded (how a second worker, or a resumed run, joins it).
    storage : str or optuna.storages.BaseStorage, optional
        ``None`` keeps the study in memory. A database URL (``"sqlite:///study.db"``, or a
        server's, ``"postgresql://user@host/db"``, for many machines) is opened as an
        ``RDBStorage`` with heartbeats, whose stale trials are re-queued
        (``RetryHeartbeatStaleTrialCallback``). Any other Optuna storage is used as it is.
    seed : int
        Seeds the sampler: the same seed gives the same trials.
    qmc_type : {"halton", "sobol"}
        The scrambled sequence.
    heartbeat_interval, grace_period : int
        Seconds between heartbeats of a running trial, and without one before it counts as
        stale (a database URL's storage only).
    """
    if qmc_type not in ("halton", "sobol"):
        raise ValueError(f"qmc_type must be 'halton' or 'sobol', got {qmc_type!r}")
    seed = hp.check_int("seed", seed, 0)
    if storage is not None and not name:
        raise ValueError("name must be given with a storage (it identifies the study there)")
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8 to 3.0, unchanged since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if isinstance(storage, str):
            storage = optuna.storages.RDBStorage(
                storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
        sampler = optuna.samplers.QMCSampler(qmc_type=qmc_type, scramble=True, seed=int(seed),
                                             warn_independent_sampling=False)
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                               direction="minimize", load_if_exists=storage is not None)


def enqueue(study: optuna.Study, space: SearchSpace, **columns: Any) -> int:
    """Queue trials at given points of ``space`` (a grid, say): :func:`optimize` runs them
    first, each once, in the order given, and then asks the sampler for any further trials.

    Each point is queued with ``study.enqueue_trial`` under Optuna's names (``"1-beta1"``
    holds :math:`1-\\beta_1`); a ``seed`` column is stored as the trial's ``seed`` attribute,
    which :func:`optimize` trains it with instead of ``seed + trial.number``.

    Parameters
    ----------
    study : optuna.Study
        The study that :func:`optimize` will run.
    space : SearchSpace
        The space it searches; every point must lie inside its ranges.
    **columns : sequence
        One value per trial for each axis of ``space`` under the trainer's names (``beta1``),
        and optionally ``seed``, all of one length: :func:`adamlib.lab.population.grid`'s
        output, for instance, or :func:`adamlib.lab.search.sample`'s (whose columns of the
        space's fixed values are accepted when they hold those values).

    Returns
    -------
    int
        The number of trials queued.

    Raises
    ------
    ValueError, TypeError
        Before anything is queued: a missing or unknown column, columns of unequal lengths,
        a value outside its axis' range or other than the space's fixed value, or a seed
        that is not an integer >= 0.

    Examples
    --------
    >>> from adamlib.lab.population import grid
    >>> from adamlib.lab.search import Axis, SearchSpace
    >>> space = SearchSpace((Axis("lr", 1e-4, 1e-1), Axis("beta1", 0.9, 0.99, "log1m")))
    >>> study = create_study()
    >>> enqueue(study, space, **grid(lr=[1e-3, 1e-2], beta1=[0.9, 0.99]))
    4
    >>> member(study.ask(distributions(space)).params, space)["beta1"]
    0.9
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be an adamlib.lab.search.SearchSpace, got {type(space).__name__}")
    names = [a.name for a in space.axes]
    missing, unknown = set(names) - set(columns), set(columns) - {*names, *space.fixed, "seed"}
    if missing or unknown:
        raise ValueError(f"columns must be the axes {names} and optionally 'seed' (or the "
                         f"space's fixed values): missing {sorted(missing)}, unknown {sorted(unknown)}")
    for name in set(columns) & set(space.fixed):  # search.sample's output carries them
        if any(v != space.fixed[name] for v in columns[name]):
            raise ValueError(f"{name} is fixed at {space.fixed[name]!r} in the space, "
                             f"got other values in column {name!r}")
    lengths = {k: len(v) if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else None
               for k, v in columns.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"columns must be non-empty sequences of one length, got lengths {lengths}")
    for a in space.axes:
        for value in columns[a.name]:
            hp.check_real(a.name, value, f"in [{a.low:g}, {a.high:g}] (the space's range)",
                          lambda x: a.low <= x <= a.high)
    seeds = [hp.check_int("seed", s, 0) for s in columns["seed"]] if "seed" in columns else None
    n = next(iter(lengths.values()))
    for k in range(n):
        params = {_name(a): (1.0 - float(columns[a.name][k]) if a.scale == "log1m"
                             else float(columns[a.name][k])) for a in space.axes}
        study.enqueue_trial(params, user_attrs={} if seeds is None else {"seed": seeds[k]})
    return n


class _Heartbeat:
    """Records a heartbeat for each of a batch's trials while the batch trains."""

    def __init__(self, study: optuna.Study, trials: list[optuna.Trial]) -> None:
        storage = study._storage
        enabled = optuna.storages._heartbeat.is_heartbeat_enabled(storage)
        self._beat = (lambda: [storage.record_heartbeat(t._trial_id) for t in trials]) if enabled else None
        self._interval = storage.get_heartbeat_interval() if enabled else None
        self._stop = threading.Event()

    def __enter__(self) -> "_Heartbeat":
        if self._beat is not None:
            self._beat()
            threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def __exit__(self, *exc) -> None:
        self._stop.set()


def optimize(study: optuna.Study, data: DigitsSplit, space: SearchSpace, *, n_trials: int,
             batch: int = 16, steps: int, seed: int = 0, **train_options: Any) -> list[FrozenTrial]:
    """Run ``n_trials`` trials of ``study`` in this process, ``batch`` at a time as populations.

    Each trial trains the book's digits MLP with Adam at the trial's hyperparameters for
    ``steps`` steps, on the seed ``seed + trial.number`` (or the seed of the trial it
    retries), and is told its final validation loss. Its user attributes: ``seed``,
    ``train_loss`` (the minibatch loss at every step), ``val_accuracy``, and ``diverged``; with
    ``eval_every`` in ``train_options`` also ``eval_steps``, ``val_loss_curve`` and
    ``val_accuracy_curve``. A diverged trial is told ``TrialState.FAIL``.

    Parameters
    ----------
    study : optuna.Study
        From :func:`create_study` (or any study that minimizes).
    data : DigitsSplit
        From :func:`adamlib.lab.tasks.digits_split`.
    space : SearchSpace
        What to search; its ``fixed`` entries go to every trial.
    n_trials, batch, steps : int
        Trials to finish in this call, trials per population, steps per trial.
    seed : int
        The seeds' offset.
    **train_options
        Passed on to :func:`~adamlib.lab.population.train_population` (``eval_every``,
        ``hidden``, ``batch_size``, ``schedule_options``, ``dtype``, ...).

    Returns
    -------
    list of optuna.trial.FrozenTrial
        The trials this call finished, in the order they were asked.

    Raises
    ------
    ValueError, TypeError
        Before any trial is asked, for a bad argument; a trainer option that names a
        searched or per-trial hyperparameter is refused.
    """
    for arg, value, low in (("n_trials", n_trials, 1), ("batch", batch, 1), ("steps", steps, 1),
                            ("seed", seed, 0)):
        hp.check_int(arg, value, low)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError("study must minimize (it is told validation losses)")
    dists = distributions(space)
    clash = set(train_options) & (set(population.MEMBER_ARGS) | {"progress"})
    if clash:
        raise ValueError(f"train_options may not set {sorted(clash)}: they come from each trial")
    finished: list[FrozenTrial] = []
    while len(finished) < n_trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trials, re-queued
        with warnings.catch_warnings():  # Optuna's note that heartbeats suit Study.optimize:
            warnings.filterwarnings("ignore", "Heartbeat of storage")  # _Heartbeat beats here
            trials = [study.ask(dists) for _ in range(min(batch, n_trials - len(finished)))]
        seeds = [int(t.user_attrs.get("seed", seed + t.number)) for t in trials]
        told: set[int] = set()
        try:
            members = []
            for trial, trial_seed in zip(trials, seeds):
                trial.set_user_attr("seed", trial_seed)
                members.append({**member(trial.params, space), "seed": trial_seed})
            columns = {k: [m[k] for m in members] for k in members[0]}
            with _Heartbeat(study, trials):
                pop = population.train_population(data, steps, progress=False, **columns,
                                                  **train_options)
            rows = pop.table.to_dict("records")
            for k, trial in enumerate(trials):
                _record(trial, pop, k, rows[k])
                if rows[k]["diverged"]:
                    frozen = study.tell(trial, state=TrialState.FAIL)
                else:
                    frozen = study.tell(trial, float(rows[k]["val_loss"]))
                told.add(trial.number)
                finished.append(frozen)
        finally:
            for trial, trial_seed in zip(trials, seeds):
                if trial.number not in told:
                    _requeue(study, trial, trial_seed)
    return finished


def _record(trial: optuna.Trial, pop: population.Population, k: int, row: Mapping) -> None:
    trial.set_user_attr("diverged", bool(row["diverged"]))
    trial.set_user_attr("val_accuracy", float(row["val_accuracy"]))
    trial.set_user_attr("train_loss", [float(x) if np.isfinite(x) else None for x in pop.train_loss[k]])
    if len(pop.eval_steps):
        trial.set_user_attr("eval_steps", [int(s) for s in pop.eval_steps])
        for name, curve in (("val_loss_curve", pop.val_loss[k]), ("val_accuracy_curve", pop.val_accuracy[k])):
            trial.set_user_attr(name, [float(x) if np.isfinite(x) else None for x in curve])


def _requeue(study: optuna.Study, trial: optuna.Trial, seed: int) -> None:
    """Fail an interrupted trial and queue its parameters and seed to run once more."""
    try:
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
        return  # already finished (e.g. failed as stale by another worker, which re-queued it)
    study.enqueue_trial(trial.params, user_attrs={"seed": seed, "retry_of": trial.number})


def trials_table(study: optuna.Study, space: SearchSpace):
    """The study's finished trials as a pandas DataFrame, one row per trial that ran to the
    end (complete or diverged; interrupted attempts left out): ``number``, ``seed``, the
    space's hyperparameters on their own scale (``beta1``, not ``1-beta1``), ``val_loss``
    (inf when diverged), ``val_accuracy`` and ``diverged``, in trial order."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if t.user_attrs.get("interrupted") or "diverged" not in t.user_attrs:
            continue
        rows.append({"number": t.number, "seed": t.user_attrs["seed"], **member(t.params, space),
                     "val_loss": t.value if t.state == TrialState.COMPLETE else float("inf"),
                     "val_accuracy": t.user_attrs["val_accuracy"],
                     "diverged": t.user_attrs["diverged"]})
    return pd.DataFrame(rows)
