r"""The book's second task: predicting the next character of *Macbeth*.

The text ships with adamlib (``adamlib/lab/data/macbeth.txt``; its source, checksum,
licence status and what was removed are in ``adamlib/lab/data/README.md``): the First
Folio *Tragedie of Macbeth* as Project Gutenberg distributed it, 100,351 ASCII
characters. Nothing is downloaded; :func:`load_text` checks the file's SHA-256 before
returning it.

:func:`char_data` encodes it with a character vocabulary (the sorted distinct characters
of the whole text, as nanoGPT's ``shakespeare_char`` does) and splits it once: the first
90% of the characters train, the last 10% validate (``data[:int(n * 0.9)]``,
``data[int(n * 0.9):]``). :func:`get_batch` draws a minibatch of windows at random offsets
(with replacement, as nanoGPT's ``get_batch``), and :func:`val_windows` cuts the
validation text into fixed non-overlapping windows, the same for every run.

Examples
--------
>>> data = char_data()
>>> len(data.vocab), len(data.train), len(data.val)
(67, 90315, 10036)
>>> data.decode(data.encode("Macbeth"))
'Macbeth'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from adamlib import hyperparams as hp

import torch

__all__ = ["CharData", "SHA256", "TEXT_FILE", "char_data", "get_batch", "load_text", "val_windows"]

#: The shipped text, inside the installed package (``adamlib/lab/data/``).
TEXT_FILE = "macbeth.txt"
#: Its SHA-256 (stated in ``adamlib/lab/data/README.md``).
SHA256 = "d4a204352cfe5924cbae76f764225d120e9f7617d39cb8c949dedd3f306353ac"
#: The fraction of the characters that train: the first 90% (nanoGPT's split).
TRAIN_FRACTION = 0.9


def load_text() -> str:
    """The shipped text, after checking its SHA-256.

    Raises
    ------
    RuntimeError
        If the file's checksum is not :data:`SHA256` (a changed or damaged copy).
    """
    raw = resources.files("adamlib.lab").joinpath("data", TEXT_FILE).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{TEXT_FILE}: SHA-256 {digest} is not the shipped text's {SHA256}")
    return raw.decode("ascii")


@dataclass(frozen=True)
class CharData:
    """The encoded text, split once into train and validation.

    Attributes
    ----------
    vocab : str
        The distinct characters of the whole text, sorted; character ``vocab[i]`` is token ``i``.
    train, val : Tensor
        int64 token ids: the first 90% of the text and the last 10%.
    """

    vocab: str
    train: torch.Tensor
    val: torch.Tensor

    def encode(self, s: str) -> torch.Tensor:
        """Token ids of ``s`` (each character must be in :attr:`vocab`)."""
        index = {c: i for i, c in enumerate(self.vocab)}
        missing = sorted(set(s) - set(index))
        if missing:
            raise ValueError(f"s: characters {missing} are not in the vocabulary")
        return torch.tensor([index[c] for c in s], dtype=torch.int64)

    def decode(self, ids) -> str:
        """The string of token ids ``ids`` (a sequence or 1-D tensor of ints)."""
        return "".join(self.vocab[int(i)] for i in ids)


@lru_cache(maxsize=1)
def char_data() -> CharData:
    """The shipped text, encoded and split: first 90% train, last 10% validation."""
    text = load_text()
    vocab = "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.int64)
    n = int(len(ids) * TRAIN_FRACTION)
    return CharData(vocab, ids[:n], ids[n:])


def get_batch(ids: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A minibatch of ``batch_size`` windows at random offsets, and their next characters.

    Offsets are ``torch.randint(len(ids) - block_size, (batch_size,), generator=generator)``
    (nanoGPT's ``get_batch``: sampling with replacement, no epochs); the inputs are
    ``ids[o : o + block_size]`` and the targets ``ids[o + 1 : o + 1 + block_size]``.

    Returns
    -------
    x, y : Tensor
        ``(batch_size, block_size)`` int64 each.
    """
    batch_size = hp.check_int("batch_size", batch_size, 1)
    block_size = hp.check_int("block_size", block_size, 1)
    if block_size >= len(ids):
        raise ValueError(f"block_size must be less than the {len(ids)} tokens, got {block_size}")
    offsets = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    window = offsets.unsqueeze(1) + torch.arange(block_size)
    return ids[window], ids[window + 1]


def val_windows(ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids`` cut into consecutive non-overlapping windows (the tail that fits none is dropped).

    Returns
    -------
    x, y : Tensor
        ``(len(ids) - 1) // block_size`` windows of ``block_size`` tokens and their targets
        (the same windows shifted by one character).
    """
    block_size = hp.check_int("block_size", block_size, 1)
    n = (len(ids) - 1) // block_size
    if n < 1:
        raise ValueError(f"block_size must be less than the {len(ids)} tokens, got {block_size}")
    x = ids[: n * block_size].view(n, block_size)
    y = ids[1 : n * block_size + 1].view(n, block_size)
    return x, y
