"""adamlib.lab: what the book's experiments need around the optimizer.

Test problems (:mod:`~adamlib.lab.problems`), gradient streams (:mod:`~adamlib.lab.streams`),
the digits task (:mod:`~adamlib.lab.tasks`), sweeps (:mod:`~adamlib.lab.sweeps`), the
learning-rate range test (:mod:`~adamlib.lab.lr_finder`), schedules
(:mod:`~adamlib.lab.schedules`), the population trainer that runs many digits runs at once
(:mod:`~adamlib.lab.population`) and plots (:mod:`~adamlib.lab.plotting`).

Weight decay as a timescale, its conventions and what to decay: :mod:`~adamlib.lab.decay`.

Reading and running searches: :mod:`~adamlib.lab.search`, :mod:`~adamlib.lab.budget` and
:mod:`~adamlib.lab.studies` (Optuna). Comparing and printing honestly:
:mod:`~adamlib.lab.paired` (seed by seed), :mod:`~adamlib.lab.rounding` and
:mod:`~adamlib.lab.perturb` (``ADAMLIB_PERTURB``). A second task, a small character-level GPT:
:mod:`~adamlib.lab.text`, :mod:`~adamlib.lab.gpt` and :mod:`~adamlib.lab.gpt_population`.

The lab depends on the core (:mod:`adamlib`, :mod:`adamlib.torch`); the core never imports the
lab. Import its modules by name (``from adamlib.lab import sweeps``): some need PyTorch,
scikit-learn or matplotlib, which ``import adamlib`` does not.
"""
