"""adamlib.lab.studies: Optuna studies trained as populations: each trial equals its run
alone, diverged trials fail, an interrupted study resumes with nothing lost and nothing run
twice (an exception, and a worker killed outright), and two workers share one study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from adamlib.lab import population, studies
from adamlib.lab.search import ALGOPERF_ADAM, Axis, SearchSpace
from adamlib.lab.tasks import digits_split

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = SearchSpace((Axis("lr", 1e-3, 3e-2, "log"), Axis("beta1", 0.5, 0.95, "log1m"),
                     Axis("beta2", 0.9, 0.999, "log1m")), fixed={"eps": 1e-8})
SMALL = dict(steps=15, hidden=8, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return digits_split()


def finished(study):
    """The trials that ran to the end (complete or diverged), not attempts cut short."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.FAIL) and "diverged" in t.user_attrs]


def key(t):
    return tuple(sorted(t.params.items())), t.user_attrs["seed"]


def test_distributions_and_members_round_trip():
    d = studies.distributions(ALGOPERF_ADAM)
    assert d["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert d["1-beta1"].log and np.isclose(d["1-beta1"].low, 0.02) and np.isclose(d["1-beta1"].high, 0.5)
    params = {"lr": 1e-3, "1-beta1": 0.1, "1-beta2": 1e-3, "eps": 1e-8, "weight_decay": 0.1}
    m = studies.member(params, ALGOPERF_ADAM)
    assert m == {"decoupled": True, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                 "weight_decay": 0.1}
    for a in ALGOPERF_ADAM.axes:  # each axis' range maps onto the distribution's
        lo, hi = sorted(studies.member({n: getattr(dist, end) for n, dist in d.items()},
                                       ALGOPERF_ADAM)[a.name] for end in ("low", "high"))
        assert np.isclose(lo, a.low) and np.isclose(hi, a.high)


def test_bad_arguments_are_refused_before_any_trial(data):
    study = studies.create_study()
    with pytest.raises(TypeError, match="space must be"):
        studies.distributions({"lr": (1e-4, 1e-2)})
    for bad in ({"n_trials": 0}, {"steps": -1}, {"lr": 0.1}, {"beta1": 0.9}, {"progress": True}):
        kwargs = dict(n_trials=2, batch=2, steps=5) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            studies.optimize(study, data, SPACE, **kwargs)
    with pytest.raises(TypeError, match="batch"):  # not an integer
        studies.optimize(study, data, SPACE, n_trials=2, batch=1.5, steps=5)
    with pytest.raises(ValueError, match="qmc_type"):
        studies.create_study(qmc_type="lhs")
    with pytest.raises(ValueError, match="name must be given"):
        studies.create_study(storage="sqlite:///:memory:")
    maximizing = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="minimize"):
        studies.optimize(maximizing, data, SPACE, n_trials=1, steps=5)
    assert study.trials == []


def test_each_trial_is_its_run_alone(data):
    study = studies.create_study(seed=3)
    done = studies.optimize(study, data, SPACE, n_trials=5, batch=3, seed=10, eval_every=5,
                            dtype=torch.float64, **SMALL)
    assert [t.number for t in done] == list(range(5))
    assert len({key(t) for t in done}) == 5
    for t in done:
        assert t.state == TrialState.COMPLETE and t.user_attrs["seed"] == 10 + t.number
        alone = population.train_population(data, SMALL["steps"], **studies.member(t.params, SPACE),
                                            seed=10 + t.number, hidden=8, batch_size=32,
                                            eval_every=5, dtype=torch.float64)
        row = alone.table.iloc[0]
        np.testing.assert_allclose(t.value, row["val_loss"], rtol=1e-10)
        np.testing.assert_allclose(t.user_attrs["train_loss"], alone.train_loss[0], rtol=1e-10)
        np.testing.assert_allclose(t.user_attrs["val_loss_curve"], alone.val_loss[0], rtol=1e-10)
        assert t.user_attrs["eval_steps"] == [5, 10, 15]
        assert t.user_attrs["val_accuracy"] == row["val_accuracy"]
    table = studies.trials_table(study, SPACE)
    assert list(table["number"]) == list(range(5)) and not table["diverged"].any()
    assert {"lr", "beta1", "beta2", "eps", "val_loss"} <= set(table.columns)


def test_the_same_seed_gives_the_same_study(data):
    runs = []
    for _ in range(2):
        study = studies.create_study(seed=7)
        studies.optimize(study, data, SPACE, n_trials=4, batch=4, **SMALL)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert isinstance(study.sampler, optuna.samplers.QMCSampler)


def test_a_diverged_trial_fails_and_the_others_do_not(data):
    # Adam's step is bounded by about lr: only a rate that overflows float32 diverges
    space = SearchSpace((Axis("lr", 1e-3, 1e30, "log"),), fixed={"beta1": 0.9})
    study = studies.create_study(seed=0)
    done = studies.optimize(study, data, space, n_trials=8, batch=8, steps=30, hidden=8)
    diverged = [t for t in done if t.user_attrs["diverged"]]
    assert diverged and len(diverged) < len(done)
    assert all(t.state == TrialState.FAIL and t.value is None for t in diverged)
    assert all(t.state == TrialState.COMPLETE and np.isfinite(t.value)
               for t in done if not t.user_attrs["diverged"])
    assert min(t.params["lr"] for t in diverged) > max(
        t.params["lr"] for t in done if not t.user_attrs["diverged"]) / 100


def test_a_queued_grid_runs_each_point_once_with_its_seed(data):
    points = population.grid(lr=[1e-3, 3e-2], beta1=[0.5, 0.95], beta2=[0.999], seed=[4, 5])
    study = studies.create_study(seed=0)
    assert studies.enqueue(study, SPACE, **points) == 8
    done = studies.optimize(study, data, SPACE, n_trials=10, batch=6, dtype=torch.float64, **SMALL)
    grid_done, sampled = done[:8], done[8:]
    assert [(t.params["lr"], 1 - t.params["1-beta1"], 1 - t.params["1-beta2"],
             t.user_attrs["seed"]) for t in grid_done] == list(zip(*points.values()))
    assert len({key(t) for t in done}) == 10  # nothing run twice, then the sampler's points
    assert all(t.user_attrs["seed"] == t.number for t in sampled)
    assert not study.get_trials(states=(TrialState.WAITING,))
    table = studies.trials_table(study, SPACE)
    assert table.beta1.iloc[:8].tolist() == points["beta1"].tolist()  # exactly, back from 1-beta1
    for t in grid_done[::3]:
        alone = population.train_population(data, SMALL["steps"], **studies.member(t.params, SPACE),
                                            seed=t.user_attrs["seed"], hidden=8, batch_size=32,
                                            dtype=torch.float64)
        np.testing.assert_allclose(t.value, alone.table.val_loss.iloc[0], rtol=1e-10)


def test_a_bad_grid_is_refused_before_anything_is_queued():
    study = studies.create_study()
    good = dict(lr=[1e-3, 1e-2], beta1=[0.9, 0.9], beta2=[0.99, 0.99])
    for bad, match in [({"lr": [1e-3, 1.0]}, "lr must be in"), ({"beta2": [0.99]}, "one length"),
                       ({"momentum": [0.9, 0.9]}, "unknown"), ({"seed": [0, -1]}, "seed"),
                       ({"eps": [1e-8, 1e-6]}, "eps is fixed")]:
        with pytest.raises(ValueError, match=match):
            studies.enqueue(study, SPACE, **(good | bad))
    with pytest.raises(ValueError, match="missing"):
        studies.enqueue(study, SPACE, lr=[1e-3])
    assert study.trials == []
    assert studies.enqueue(study, SPACE, **good, eps=[1e-8, 1e-8]) == 2  # the fixed value: fine


def test_an_interrupted_study_resumes_with_nothing_lost_or_run_twice(data, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = studies.create_study("interrupted", url, seed=1)
    real, calls = population.train_population, []

    def interrupted_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(population, "train_population", interrupted_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        studies.optimize(study, data, SPACE, n_trials=8, batch=4, **SMALL)
    monkeypatch.setattr(population, "train_population", real)
    first = finished(study)
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(first) == 4 and len(interrupted) == 4
    assert [t.state for t in study.trials].count(TrialState.WAITING) == 4

    resumed = studies.create_study("interrupted", url, seed=1)  # a new process would do this
    done = studies.optimize(resumed, data, SPACE, n_trials=4, batch=4, **SMALL)
    assert sorted(key(t) for t in done) == sorted(key(t) for t in interrupted)
    assert sorted(t.user_attrs["retry_of"] for t in done) == [t.number for t in interrupted]
    everything = finished(resumed)
    assert len(everything) == 8 and len({key(t) for t in everything}) == 8
    assert [t.number for t in everything[:4]] == [t.number for t in first]  # kept, not re-run


WORKER = textwrap.dedent("""
    import sys, time, optuna
    from adamlib.lab import population, studies
    from adamlib.lab.search import Axis, SearchSpace
    from adamlib.lab.tasks import digits_split
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, name, n, hang = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "hang"
    if hang:  # trains forever: the parent kills this worker mid-batch
        population.train_population = lambda *a, **k: time.sleep(600)
    space = SearchSpace((Axis("lr", 1e-3, 3e-2, "log"), Axis("beta1", 0.5, 0.95, "log1m"),
                         Axis("beta2", 0.9, 0.999, "log1m")), fixed={"eps": 1e-8})
    if url.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend
        url = optuna.storages.JournalStorage(JournalFileBackend(url))
    study = studies.create_study(name, url, seed=2, heartbeat_interval=1, grace_period=3)
    studies.optimize(study, digits_split(), space, n_trials=n, batch=3, steps=15, hidden=8,
                     batch_size=32)
""")


def worker(tmp_path, storage, n, hang=False):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, ADAMLIB_PROGRESS="0", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), storage, "shared", str(n),
                             "hang" if hang else "run"], env=env)


def test_a_killed_worker_is_resumed_from_its_heartbeats(data, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = worker(tmp_path, url, 3, hang=True)
    study = studies.create_study("shared", url, seed=2, heartbeat_interval=1, grace_period=3)
    deadline = time.monotonic() + 120
    while len(study.get_trials(states=(TrialState.RUNNING,))) < 3:
        assert time.monotonic() < deadline and proc.poll() is None, "the worker did not start"
        time.sleep(0.5)
    time.sleep(1.5)  # it is training, heartbeats recorded
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lost = study.get_trials(states=(TrialState.RUNNING,))
    time.sleep(4)  # past the grace period: the next call fails them as stale and re-queues them
    done = studies.optimize(study, data, SPACE, n_trials=3, batch=3, **SMALL)
    assert sorted(key(t) for t in done) == sorted(key(t) for t in lost)
    assert all(t.state == TrialState.FAIL for t in study.trials if t.number in {x.number for x in lost})
    assert len(finished(study)) == 3


def test_two_workers_share_one_study(tmp_path):
    storage = str(tmp_path / "journal.log")
    procs = [worker(tmp_path, storage, 6) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    from optuna.storages.journal import JournalFileBackend
    study = optuna.load_study(study_name="shared",
                              storage=optuna.storages.JournalStorage(JournalFileBackend(storage)))
    done = finished(study)
    assert len(done) == len(study.trials) == 12
    assert sorted(t.number for t in done) == list(range(12))
    assert sorted(t.user_attrs["seed"] for t in done) == list(range(12))
    assert all(t.state == TrialState.COMPLETE and len(t.user_attrs["train_loss"]) == 15 for t in done)
