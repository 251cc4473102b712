"""adamlib: Adam, step by step.

A readable NumPy reference of the Adam optimizer (:func:`adam_step`, :class:`Adam`), held to
``torch.optim.Adam`` by its tests, the optimizers it grew out of (:mod:`adamlib.baselines`),
and what the book's chapters need around them. ``import adamlib`` needs only NumPy;
``adamlib.torch``, ``adamlib.tasks`` and ``adamlib.schedules`` need PyTorch.
"""

from .adam import Adam, StepInternals, adam_step
from .baselines import SGD, Adagrad, RMSprop
from .hyperparams import check_hyperparameters

__all__ = ["Adagrad", "Adam", "RMSprop", "SGD", "StepInternals", "adam_step", "check_hyperparameters"]
__version__ = "0.1.0"
