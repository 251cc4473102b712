"""adamlib: Adam, step by step.

A readable NumPy reference of the Adam optimizer (:func:`adam_step`, :class:`Adam`), held to
``torch.optim.Adam`` by its tests, the optimizers it grew out of (:mod:`adamlib.baselines`),
and the moving averages behind the betas (:mod:`adamlib.moments`): the core that coursework
imports, with the graders that check a student's Adam (:mod:`adamlib.testing`).
``import adamlib`` needs only NumPy; :mod:`adamlib.torch` needs PyTorch. What the book's
experiments need (problems, tasks, sweeps, schedules, plots) lives apart, in
:mod:`adamlib.lab`, which the core never imports.
"""

from . import testing
from .adam import Adam, AdamAtan2, StepInternals, adam_atan2_step, adam_step
from .baselines import SGD, Adagrad, RMSprop
from .hyperparams import check_hyperparameters

__all__ = ["Adagrad", "Adam", "AdamAtan2", "RMSprop", "SGD", "StepInternals", "adam_atan2_step", "adam_step",
           "check_hyperparameters"]
#: The package's version, stated once: pyproject.toml reads it from here (setuptools'
#: dynamic version), and ``importlib.metadata.version("adamlib")`` reports it once installed.
__version__ = "0.2.0"
