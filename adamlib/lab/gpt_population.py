r"""Train a population of K character-level GPTs at once, each with its own seed and AdamW.

:func:`train_gpt` is one run, written the way nanoGPT trains: a :class:`~adamlib.lab.gpt.GPT`,
``torch.optim.AdamW`` with two parameter groups (weight decay on the tensors with at least
two dimensions, none on the layer-norm gains), nanoGPT's learning-rate schedule
(:func:`~adamlib.lab.gpt.nanogpt_lr`: linear warmup over ``warmup`` steps, then a cosine from
``lr`` down to ``lr * lr_floor`` at step ``steps``), global-norm clipping with
``torch.nn.utils.clip_grad_norm_`` (``clip = 0`` turns it off) and minibatches drawn by
:func:`~adamlib.lab.text.get_batch` from a generator seeded with ``seed`` (which also
seeds the model's initial weights).

:func:`train_gpt_population` trains K such runs together. Every per-member argument
(``lr, beta1, beta2, eps, weight_decay, warmup, lr_floor, clip, seed``) may differ between
members. The K models' parameters are one ``(K, P)`` tensor; the forward pass is written
out with batched matrix products (``torch.bmm``) over the ``(K, ...)`` views of it and
``F.scaled_dot_product_attention`` over all members' windows, one autograd backward gives
every member's gradient (the members share no computation), and the update is AdamW's,
applied to every live member's row of the stack (one ``torch._foreach_*`` call per
operation, each member's hyperparameters as its own scalars), in ``torch.optim.AdamW``'s
order:

.. math::

   g &\leftarrow g \cdot \min\bigl(1, c / (\lVert g\rVert_2 + 10^{-6})\bigr)
       \ \text{(if } c > 0\text{)}, \qquad
   \theta \leftarrow (1 - \alpha_t \lambda\, [\theta\ \text{is a matrix}])\,\theta, \\
   m &\leftarrow m + (1-\beta_1)(g - m), \qquad
   v \leftarrow \beta_2 v + (1-\beta_2)\, g^2, \qquad
   \theta \leftarrow \theta - \frac{\alpha_t}{1-\beta_1^t}\,
       \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}.

Member k equals :func:`train_gpt` on its own arguments (tested in float64 to 1e-10
relative over 8 steps); the two order some sums differently, so where training is chaotic (a
large learning rate, many steps) their rounding differences grow as any two runs' would
(``benchmarks/RESULTS.md``: at lr 1e-2, from 1e-15 to 6e-4 over 100 steps in float64).
``torch.func.vmap`` over stacked module states is not used: measured on two CPU cores, it
was no faster than a loop at this size and attention under it fell back to a per-model loop
(``transformer-notes.md``).

Examples
--------
>>> from adamlib.lab.text import char_data
>>> pop = train_gpt_population(char_data(), 3, lr=[1e-3, 3e-3], seed=[0, 1], batch_size=4)
>>> pop.train_loss.shape, pop.table["diverged"].tolist()
((2, 3), [False, False])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from adamlib import hyperparams as hp
from adamlib.lab.gpt import GPT, LN_EPS, GPTConfig, nanogpt_lr
from adamlib.lab.population import _members, _show_progress
from adamlib.lab.text import CharData, get_batch, val_windows

__all__ = ["GPTPopulation", "GPTRun", "train_gpt", "train_gpt_population"]

#: The per-member arguments, in the table's column order.
MEMBER_ARGS = ("lr", "beta1", "beta2", "eps", "weight_decay", "warmup", "lr_floor", "clip", "seed")
#: Defaults: nanoGPT's ``train_shakespeare_char`` config (lr 1e-3, beta2 0.99, decay 0.1,
#: clip 1, min_lr = lr / 10), without its warmup.
DEFAULTS = dict(lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, warmup=0, lr_floor=0.1,
                clip=1.0, seed=0)
#: Windows per forward pass when measuring the validation loss.
EVAL_CHUNK = 32


@dataclass(frozen=True)
class GPTRun:
    """One run of :func:`train_gpt`.

    Attributes
    ----------
    train_loss, lr, grad_norm : ndarray
        ``(steps,)``: the minibatch loss, the learning rate and the global gradient norm
        (before clipping) at every step.
    eval_steps, val_loss : ndarray
        The step counts after which the validation loss was measured, and its values.
    model : GPT
        The trained model.
    """

    train_loss: np.ndarray
    lr: np.ndarray
    grad_norm: np.ndarray
    eval_steps: np.ndarray
    val_loss: np.ndarray
    model: GPT


@dataclass(frozen=True)
class GPTPopulation:
    """What :func:`train_gpt_population` records.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per member: its arguments (``MEMBER_ARGS``), ``train_loss`` (its last
        minibatch loss), ``val_loss`` (after the last step; inf for a diverged member) and
        ``diverged``.
    train_loss, lr, grad_norm : ndarray
        ``(K, steps)``: as in :class:`GPTRun`; NaN after a member diverged.
    eval_steps : ndarray
        Steps after which the validation loss was measured (``eval_every, 2 * eval_every, ...``).
    val_loss : ndarray
        ``(K, len(eval_steps))``; NaN after divergence.
    params : Tensor
        ``(K, P)``: each member's final parameters in the order of ``GPT.parameters()``.
    config : GPTConfig
    """

    table: Any
    train_loss: np.ndarray
    lr: np.ndarray
    grad_norm: np.ndarray
    eval_steps: np.ndarray
    val_loss: np.ndarray
    params: torch.Tensor
    config: GPTConfig

    def model(self, k: int) -> GPT:
        """Member ``k`` as a :class:`~adamlib.lab.gpt.GPT` with its final parameters."""
        net = GPT(self.config).to(self.params.dtype)
        torch.nn.utils.vector_to_parameters(self.params[k].clone(), net.parameters())
        return net


def _check_common(data: CharData, steps, batch_size, eval_every, config, dtype) -> GPTConfig:
    hp.check_int("steps", steps, 1)
    hp.check_int("batch_size", batch_size, 1)
    if eval_every is not None:
        hp.check_int("eval_every", eval_every, 1)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    config = GPTConfig(vocab_size=len(data.vocab)) if config is None else config
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {config!r}")
    if config.vocab_size != len(data.vocab):
        raise ValueError(f"config: vocab_size {config.vocab_size} is not the data's {len(data.vocab)} characters")
    if config.block_size >= len(data.val):
        raise ValueError(f"config: block_size must be less than the {len(data.val)} validation tokens")
    return config


def _check_member(m: dict[str, Any], steps: int) -> dict[str, Any]:
    beta1, beta2 = hp.check_betas((m["beta1"], m["beta2"]))
    warmup = hp.check_int("warmup", m["warmup"], 0)
    if warmup > steps:
        raise ValueError(f"warmup must be at most steps={steps}, got {warmup}")
    return dict(
        lr=hp.check_lr(m["lr"]), beta1=beta1, beta2=beta2, eps=hp.check_eps(m["eps"]),
        weight_decay=hp.check_weight_decay(m["weight_decay"]), warmup=warmup,
        lr_floor=hp.check_real("lr_floor", m["lr_floor"], "in [0, 1]", lambda x: 0.0 <= x <= 1.0),
        clip=hp.check_real("clip", m["clip"], "a finite number >= 0 (0: no clipping)", lambda x: x >= 0.0),
        seed=hp.check_int("seed", m["seed"], 0),
    )


def _rates(m: dict[str, Any], steps: int) -> np.ndarray:
    """Member ``m``'s learning rate at each step (nanoGPT's schedule, decaying until ``steps``)."""
    return np.array([nanogpt_lr(t, m["lr"], m["warmup"], steps, m["lr"] * m["lr_floor"]) for t in range(steps)])


@torch.no_grad()
def _val_loss_one(model: GPT, data: CharData) -> float:
    x, y = val_windows(data.val, model.config.block_size)
    total = 0.0
    for i in range(0, len(x), EVAL_CHUNK):
        logits, _ = model(x[i : i + EVAL_CHUNK])
        total += F.cross_entropy(logits.flatten(0, 1), y[i : i + EVAL_CHUNK].flatten(), reduction="sum").item()
    return total / y.numel()


def train_gpt(
    data: CharData,
    steps: int,
    *,
    lr: float = DEFAULTS["lr"],
    beta1: float = DEFAULTS["beta1"],
    beta2: float = DEFAULTS["beta2"],
    eps: float = DEFAULTS["eps"],
    weight_decay: float = DEFAULTS["weight_decay"],
    warmup: int = DEFAULTS["warmup"],
    lr_floor: float = DEFAULTS["lr_floor"],
    clip: float = DEFAULTS["clip"],
    seed: int = DEFAULTS["seed"],
    config: GPTConfig | None = None,
    batch_size: int = 32,
    eval_every: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> GPTRun:
    """One GPT trained as nanoGPT trains it (module docstring); the reference of the population.

    Parameters
    ----------
    data : CharData
        From :func:`adamlib.lab.text.char_data`.
    steps : int
        Optimizer steps.
    lr, beta1, beta2, eps, weight_decay
        ``torch.optim.AdamW``'s; ``weight_decay`` on the matrices and embeddings only.
    warmup : int
        Linear warmup steps (``0 <= warmup <= steps``).
    lr_floor : float
        The cosine ends at ``lr * lr_floor`` at step ``steps`` (1: constant after warmup).
    clip : float
        Global-norm clipping threshold; 0 turns clipping off.
    seed : int
        Seeds the initial weights and the minibatch generator.
    config : adamlib.lab.gpt.GPTConfig, optional
        The model's sizes; by default :class:`~adamlib.lab.gpt.GPTConfig` with the data's vocabulary.
    batch_size : int
        Windows per minibatch (each ``config.block_size`` characters).
    eval_every : int, optional
        Also measure the validation loss after every ``eval_every`` steps.
    dtype : torch.dtype
        float32 or float64.

    Raises
    ------
    ValueError, TypeError
        Before training, naming the argument that is out of range.
    """
    config = _check_common(data, steps, batch_size, eval_every, config, dtype)
    m = _check_member(dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                           warmup=warmup, lr_floor=lr_floor, clip=clip, seed=seed), steps)
    rates = _rates(m, steps)
    model = GPT(config, m["seed"]).to(dtype)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": m["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=m["lr"], betas=(m["beta1"], m["beta2"]), eps=m["eps"], foreach=False)
    g = torch.Generator().manual_seed(m["seed"])
    train_loss, grad_norm = np.full(steps, np.nan), np.full(steps, np.nan)
    eval_steps = np.arange(eval_every, steps + 1, eval_every) if eval_every else np.zeros(0, dtype=int)
    val_loss = []
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = rates[t]
        x, y = get_batch(data.train, batch_size, config.block_size, g)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, m["clip"] if m["clip"] > 0 else math.inf)
        opt.step()
        train_loss[t], grad_norm[t] = loss.item(), norm.item()
        if eval_every and (t + 1) % eval_every == 0:
            val_loss.append(_val_loss_one(model, data))
    return GPTRun(train_loss, rates, grad_norm, eval_steps, np.array(val_loss), model)


def _layout(config: GPTConfig) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """Each parameter's name -> (start, end, shape) in a flattened ``GPT.parameters()`` row."""
    out, start = {}, 0
    for name, p in GPT(config).named_parameters():
        out[name] = (start, start + p.numel(), tuple(p.shape))
        start += p.numel()
    return out


def _views(flat: torch.Tensor, layout: dict) -> dict[str, torch.Tensor]:
    """Each parameter's ``(K, *shape)`` view of ``flat``, detached: a leaf of its own.

    Updating ``flat`` in place updates the views. Autograd through slices of one ``(K, P)``
    leaf instead would fill and add a full-size zero gradient per parameter (measured: 40% of
    a step's time).
    """
    return {name: flat[:, a:b].view(flat.shape[0], *shape).detach() for name, (a, b, shape) in layout.items()}


def _matrix_runs(layout: dict) -> list[tuple[int, int]]:
    """The column ranges ``(start, end)`` of a flattened row that AdamW decays: the runs of
    consecutive tensors with at least two dimensions (nanoGPT's decay group)."""
    runs: list[tuple[int, int]] = []
    for a, b, shape in layout.values():
        if len(shape) >= 2:
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
    return runs


def _adamw_rows(rows: np.ndarray, state: tuple[torch.Tensor, ...], matrices: list[tuple[int, int]],
                step: int, lr: np.ndarray, beta1: np.ndarray, beta2: np.ndarray, eps: np.ndarray,
                weight_decay: np.ndarray) -> None:
    """One ``torch.optim.AdamW`` step (``foreach=False``'s operations, in its order) of members ``rows``.

    ``state`` is ``(params, exp_avg, exp_avg_sq, grad)``, each ``(K, P)``; the others rows are
    not touched (a diverged member keeps its state). The per-member numbers (``(K,)`` arrays)
    become host scalars in float64, as in AdamW; each operation is one ``torch._foreach_*``
    call over the rows, so it runs on contiguous rows without broadcasting (measured: 3-4x
    faster than the same update on the ``(K, P)`` stack with ``(K, 1)`` columns).
    """
    params, exp_avg, exp_avg_sq, grad = ([t[k] for k in rows] for t in state)

    def per_row(values: np.ndarray) -> list[float]:
        return values[rows].tolist()

    decay = [1 - lr_k * wd_k for lr_k, wd_k in zip(per_row(lr), per_row(weight_decay))]
    torch._foreach_mul_([p[a:b] for p in params for a, b in matrices],
                        [d for d in decay for _ in matrices])
    torch._foreach_lerp_(exp_avg, grad, per_row(1 - beta1))
    torch._foreach_mul_(exp_avg_sq, per_row(beta2))
    torch._foreach_addcmul_(exp_avg_sq, grad, grad, per_row(1 - beta2))
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, per_row((1 - beta2**step) ** 0.5))
    torch._foreach_add_(denom, per_row(eps))
    torch._foreach_addcdiv_(params, exp_avg, denom, per_row(-lr / (1 - beta1**step)))


def _losses(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
            config: GPTConfig) -> torch.Tensor:
    """Mean cross-entropy of each of the K stacked models ``(K,)`` on its own windows.

    ``x``, ``y``: ``(K, B, T)`` token ids; ``weights``: :func:`_views`. The forward pass of
    :class:`GPT`, written out over the ``(K, ...)`` weights: ``torch.bmm`` for every matrix
    product (``torch.baddbmm`` where a residual add follows it), each layer norm's gain folded
    into the matrix that reads it, ``F.scaled_dot_product_attention`` for the attention of all
    ``K * B`` windows. Equal to :class:`GPT` up to rounding.
    """
    K, B, T = x.shape
    N, C, H = B * T, config.n_embd, config.n_head

    def w(name: str) -> torch.Tensor:
        return weights[name]

    def norm(h: torch.Tensor) -> torch.Tensor:  # layer norm without its gain
        return F.layer_norm(h, (C,), eps=LN_EPS)

    def matrix_t(name: str, gain: str | None = None) -> torch.Tensor:  # W.T, (K, in, out)
        # (norm(h) * g) @ W.T = norm(h) @ (W * g).T: the layer norm's gain g scales the
        # columns of the matrix that reads it (fewer numbers than the activations it would scale)
        m = w(name) if gain is None else w(name) * w(gain).unsqueeze(1)
        return m.transpose(1, 2)

    tok = w("tok_emb.weight")
    h = tok[torch.arange(K).unsqueeze(1), x.reshape(K, N)]  # (K, N, C)
    h = (h.view(K, B, T, C) + w("pos_emb.weight")[:, :T].unsqueeze(1)).view(K, N, C)
    for i in range(config.n_layer):
        p = f"blocks.{i}."
        q, k, v = torch.bmm(norm(h), matrix_t(p + "attn.qkv.weight", p + "ln1.weight")) \
            .view(K * B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # each (K * B, heads, T, head width)
        # softmax(q k^T / sqrt(head width)) v over positions s <= t, as GPT's attention computes it,
        # fused (the (T, T) weights are never stored, the masked half is skipped)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(K, N, C)
        h = torch.baddbmm(h, att, matrix_t(p + "attn.proj.weight"))  # h + att @ W.T, one call
        a = F.gelu(torch.bmm(norm(h), matrix_t(p + "mlp.fc.weight", p + "ln2.weight")))
        h = torch.baddbmm(h, a, matrix_t(p + "mlp.proj.weight"))
    logits = torch.bmm(norm(h), matrix_t("tok_emb.weight", "ln_f.weight"))  # tied output: (K, N, vocab)
    return F.cross_entropy(logits.view(K * N, -1), y.reshape(K * N), reduction="none").view(K, N).mean(1)


@torch.no_grad()
def _val_losses(flat: torch.Tensor, data: CharData, config: GPTConfig, layout: dict) -> np.ndarray:
    x, y = val_windows(data.val, config.block_size)
    K, total = flat.shape[0], torch.zeros(flat.shape[0], dtype=torch.float64)
    weights = _views(flat, layout)
    for i in range(0, len(x), EVAL_CHUNK):
        xs, ys = x[i : i + EVAL_CHUNK], y[i : i + EVAL_CHUNK]
        total += _losses(weights, xs.expand(K, -1, -1), ys.expand(K, -1, -1), config).double() * ys.numel()
    return (total / y.numel()).numpy()


def train_gpt_population(
    data: CharData,
    steps: int,
    *,
    lr: float | Sequence[float] = DEFAULTS["lr"],
    beta1: float | Sequence[float] = DEFAULTS["beta1"],
    beta2: float | Sequence[float] = DEFAULTS["beta2"],
    eps: float | Sequence[float] = DEFAULTS["eps"],
    weight_decay: float | Sequence[float] = DEFAULTS["weight_decay"],
    warmup: int | Sequence[int] = DEFAULTS["warmup"],
    lr_floor: float | Sequence[float] = DEFAULTS["lr_floor"],
    clip: float | Sequence[float] = DEFAULTS["clip"],
    seed: int | Sequence[int] = DEFAULTS["seed"],
    config: GPTConfig | None = None,
    batch_size: int = 32,
    eval_every: int | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool | None = None,
) -> GPTPopulation:
    """Train K GPTs at once; member k equals :func:`train_gpt` with its own arguments.

    Parameters
    ----------
    data, steps, config, batch_size, eval_every, dtype
        As :func:`train_gpt`, shared by all members.
    lr, beta1, beta2, eps, weight_decay, warmup, lr_floor, clip, seed
        As :func:`train_gpt`; each a scalar shared by all members or a sequence with one
        value per member (all sequences of one length K; scalars only: K = 1).
    progress : bool, optional
        A tqdm progress bar (by default as :func:`adamlib.lab.population.train_population`).

    Returns
    -------
    GPTPopulation

    Raises
    ------
    ValueError, TypeError
        Before any training: sequences of different lengths, an empty population, or a
        member's value out of range (the message names the member and the argument).

    Notes
    -----
    A member whose minibatch loss is NaN or inf is marked ``diverged`` and frozen: it
    takes no update at that step or later (its later losses are NaN), and the other
    members are not affected (their computations share nothing with it).
    """
    config = _check_common(data, steps, batch_size, eval_every, config, dtype)
    steps = int(steps)
    K, columns = _members({a: v for a, v in zip(MEMBER_ARGS, (lr, beta1, beta2, eps, weight_decay,
                                                             warmup, lr_floor, clip, seed))})
    members = []
    for k in range(K):
        try:
            members.append(_check_member({a: columns[a][k] for a in MEMBER_ARGS}, steps))
        except (TypeError, ValueError) as e:
            raise type(e)(f"member {k}: {e}") from None

    def column(name: str) -> np.ndarray:
        return np.array([m[name] for m in members], dtype=np.float64)

    rates = np.stack([_rates(m, steps) for m in members])
    b1, b2, eps, wd, clips = (column(a) for a in ("beta1", "beta2", "eps", "weight_decay", "clip"))
    max_norm = torch.as_tensor(np.where(clips > 0, clips, np.inf), dtype=dtype)

    layout = _layout(config)
    matrices = _matrix_runs(layout)
    flat = torch.stack([torch.nn.utils.parameters_to_vector(GPT(config, m["seed"]).parameters()).detach()
                        for m in members]).to(dtype)
    weights = {name: w.requires_grad_(True) for name, w in _views(flat, layout).items()}
    exp_avg, exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
    gens = [torch.Generator().manual_seed(m["seed"]) for m in members]

    train_loss, grad_norm = np.full((K, steps), np.nan), np.full((K, steps), np.nan)
    eval_steps = np.arange(eval_every, steps + 1, eval_every) if eval_every else np.zeros(0, dtype=int)
    val_loss = np.full((K, len(eval_steps)), np.nan)
    alive = np.ones(K, dtype=bool)
    last_step = np.full(K, steps - 1)

    loop = range(steps)
    if _show_progress(progress):
        from tqdm.auto import tqdm

        loop = tqdm(loop, desc=f"{K} GPTs", leave=False)
    for t in loop:
        batches = [get_batch(data.train, batch_size, config.block_size, g) for g in gens]
        x, y = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
        losses = _losses(weights, x, y, config)
        loss = losses.detach().double().numpy()
        for k in np.flatnonzero(alive & ~np.isfinite(loss)):
            alive[k], last_step[k] = False, t - 1
            train_loss[k, t] = loss[k]  # the non-finite loss, as the run alone records it
        train_loss[alive, t] = loss[alive]
        if not alive.any():
            break
        live = torch.as_tensor(alive)  # diverged members get no gradient and no update
        for w in weights.values():
            w.grad = None
        losses[live].sum().backward()
        with torch.no_grad():
            grad = torch.cat([w.grad.reshape(K, -1) for w in weights.values()], dim=1)
            # clip_grad_norm_, per member: one global norm over all of the member's parameters
            norm = torch.linalg.vector_norm(grad, dim=1)
            grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0).unsqueeze(1))
            grad_norm[alive, t] = norm.double().numpy()[alive]
            step = t + 1
            _adamw_rows(np.flatnonzero(alive), (flat, exp_avg, exp_avg_sq, grad), matrices, step,
                        rates[:, t], b1, b2, eps, wd)
        if eval_every and step % eval_every == 0:
            val_loss[alive, step // eval_every - 1] = _val_losses(flat, data, config, layout)[alive]

    params = flat
    final_val = _val_losses(params, data, config, layout)
    diverged = ~alive | ~np.isfinite(final_val)
    final_val = np.where(diverged, np.inf, final_val)
    last = train_loss[np.arange(K), np.maximum(last_step, 0)]

    import pandas as pd

    table = pd.DataFrame({name: [m[name] for m in members] for name in MEMBER_ARGS})
    table["train_loss"], table["val_loss"], table["diverged"] = last, final_val, diverged
    return GPTPopulation(table, train_loss, rates, grad_norm, eval_steps, val_loss, params, config)
