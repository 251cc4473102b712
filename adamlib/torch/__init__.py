"""adamlib for PyTorch: :class:`Adam`, a drop-in ``torch.optim.Adam`` running adamlib's own update.

Inside this package ``import torch`` is PyTorch itself (imports are absolute).
"""

from .optimizer import AUTO_COMPILE_MIN_NUMEL, Adam
from .update import adam_update

__all__ = ["Adam", "adam_update", "AUTO_COMPILE_MIN_NUMEL"]
