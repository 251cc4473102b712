"""adamlib: Adam, step by step.

A readable NumPy reference of the Adam optimizer (:func:`adam_step`, :class:`Adam`), held to
``torch.optim.Adam`` by its tests, and what the book's chapters need around it.
``import adamlib`` needs only NumPy; ``adamlib.torch`` needs PyTorch.
"""

from .adam import Adam, StepInternals, adam_step
from .hyperparams import check_hyperparameters

__all__ = ["Adam", "StepInternals", "adam_step", "check_hyperparameters"]
__version__ = "0.1.0"
