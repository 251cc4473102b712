r"""A character-level GPT small enough for two CPU cores (nanoGPT's architecture, written plainly).

The model reads ``block_size`` token ids and, at every position, gives logits for the next
token. With the book's sizes (:class:`GPTConfig`: 2 layers, width 64, 4 heads, context 64,
the 67 characters of :mod:`adamlib.lab.text`) it has 107,008 parameters. The parts:

- **Token and position embeddings** (``tok_emb``, ``pos_emb``): token ``i`` at position
  ``t`` enters as the sum of row ``i`` of a ``(vocab, width)`` table and row ``t`` of a
  ``(block_size, width)`` table.
- **Blocks** (``blocks``), each pre-LN: ``x = x + attn(ln1(x))``, then
  ``x = x + mlp(ln2(x))``. The residual stream ``x`` is only ever added to.
- **Layer norm** (``ln1``, ``ln2``, ``ln_f``): each position's vector minus its mean,
  divided by its standard deviation (eps 1e-5), times a learned per-channel gain (no bias,
  nanoGPT's ``bias=False``).
- **Causal self-attention** (``attn``): one matrix ``qkv`` maps each position to a query, a
  key and a value, split into ``n_head`` heads of width ``width / n_head``. In each head
  position ``t`` mixes the values of positions ``s <= t`` with weights
  :math:`\mathrm{softmax}_s(q_t \cdot k_s / \sqrt{d_{head}})` (positions after ``t`` are
  masked out: the model cannot read the character it predicts); ``proj`` maps the
  concatenated heads back to the residual stream.
- **MLP** (``mlp``): per position, ``fc`` widens to 4 x width, GELU (the exact, erf form),
  ``proj`` narrows back.
- **Output** (``head``): a final layer norm, then logits = ``x @ tok_emb.weight.T``: the
  output matrix *is* the token embedding (weight tying), so it is one parameter.

Initialisation is nanoGPT's: every matrix and embedding :math:`\mathcal N(0, 0.02^2)`, the
two ``proj`` matrices of each block :math:`\mathcal N(0, (0.02/\sqrt{2\,n_{layer}})^2)`
(the residual stream's variance then does not grow with depth), layer-norm gains 1; drawn
from one ``torch.Generator`` seeded with ``seed``, in the order of ``named_parameters()``.
No dropout: the runs here are short. Under ``ADAMLIB_PERTURB`` (:mod:`adamlib.lab.perturb`)
every initial weight moves by that many ulps after it is drawn (the layer-norm gains of 1
too), so a chapter can check that its results do not hang on rounding; the text, integer
token ids, is not perturbed.

:func:`decay_mask` marks the parameters that AdamW decays in nanoGPT's
``configure_optimizers`` (every tensor with at least two dimensions: the matrices and both
embeddings), and :func:`nanogpt_lr` is nanoGPT's learning-rate schedule.

Examples
--------
>>> model = GPT(GPTConfig(), seed=0)
>>> sum(p.numel() for p in model.parameters())
107008
>>> logits, loss = model(torch.zeros(2, 64, dtype=torch.int64), torch.zeros(2, 64, dtype=torch.int64))
>>> logits.shape
torch.Size([2, 64, 67])

References
----------
Karpathy, A. nanoGPT, ``model.py`` and ``train.py`` (github.com/karpathy/nanoGPT).
Vaswani, A. et al. (2017). Attention Is All You Need. NeurIPS.
Xiong, R. et al. (2020). On Layer Normalization in the Transformer Architecture. ICML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import nn
from torch.nn import functional as F

from adamlib.lab import perturb

__all__ = ["GPT", "GPTConfig", "decay_mask", "nanogpt_lr"]

#: Standard deviation of nanoGPT's initial weights.
INIT_STD = 0.02
#: Layer norm's epsilon (torch's and nanoGPT's default).
LN_EPS = 1e-5


@dataclass(frozen=True)
class GPTConfig:
    """The sizes of a :class:`GPT` (defaults: the book's model, about 107k parameters)."""

    vocab_size: int = 67
    block_size: int = 64
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_embd", "n_head"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be a multiple of n_head, got {self.n_embd} and {self.n_head}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions 0..t (module docstring)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        mask = torch.ones(config.block_size, config.block_size, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.n_head))  # (B, heads, T, T)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.proj(y)


class MLP(nn.Module):
    """Per position: widen 4x, GELU, narrow back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """A pre-LN transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, eps=LN_EPS, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, eps=LN_EPS, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """nanoGPT's decoder-only transformer (module docstring), seeded.

    Parameters
    ----------
    config : GPTConfig
        The sizes.
    seed : int
        Seeds the ``torch.Generator`` that draws the initial weights.
    """

    def __init__(self, config: GPTConfig = GPTConfig(), seed: int = 0):
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=LN_EPS, bias=False)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying: one parameter
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:  # layer-norm gains
                    p.fill_(1.0)
                else:
                    std = INIT_STD / math.sqrt(2 * config.n_layer) if name.endswith("proj.weight") else INIT_STD
                    p.normal_(0.0, std, generator=g)
            n = perturb.ulps()
            if n:
                for p in self.parameters():
                    p.copy_(perturb.nudge(p, n))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits ``(B, T, vocab)`` for token ids ``idx`` ``(B, T)``, and the mean
        cross-entropy against ``targets`` (None without targets)."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"idx: at most block_size={self.config.block_size} positions, got {T}")
        x = self.tok_emb(idx) + self.pos_emb.weight[:T]
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Append ``n`` tokens to ``idx`` ``(B, T)``, each sampled from the softmax of the logits."""
        for _ in range(n):
            logits, _ = self(idx[:, -self.config.block_size:])
            probs = logits[:, -1].softmax(-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx


def decay_mask(model: GPT) -> list[bool]:
    """For each of ``model.parameters()``: whether nanoGPT's AdamW decays it (``p.dim() >= 2``)."""
    return [p.dim() >= 2 for p in model.parameters()]


def nanogpt_lr(step: int, lr: float, warmup: int, decay_steps: int, min_lr: float) -> float:
    r"""nanoGPT's learning rate at step ``step`` (counted from 0): linear warmup, cosine decay.

    .. math::

       \alpha(t) = \begin{cases}
         \alpha\,(t+1)/(w+1) & t < w \\
         \alpha_{min} + \tfrac12\bigl(1 + \cos(\pi\,\tfrac{t-w}{D-w})\bigr)(\alpha-\alpha_{min})
           & w \le t \le D \\
         \alpha_{min} & t > D
       \end{cases}

    with :math:`w` = ``warmup`` and :math:`D` = ``decay_steps`` (nanoGPT's ``get_lr``,
    ``train.py``). ``min_lr == lr`` gives a constant rate after the warmup.
    """
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step > decay_steps:
        return min_lr
    ratio = (step - warmup) / (decay_steps - warmup) if decay_steps > warmup else 1.0
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)
