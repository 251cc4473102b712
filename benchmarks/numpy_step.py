"""Time one step of the NumPy ``adamlib.Adam`` against ``torch.optim.Adam(foreach=False)``.

Usage::

    .venv/bin/python benchmarks/numpy_step.py [--params 10_000_000] [--repeat 20]

Both optimizers update the same model-like mix of float32 tensors (a dozen arrays, from a
large embedding-sized matrix down to biases) in the same run, so the printed ratio is
meaningful on any machine. The target (issue 2) is a ratio of at most 3. It also reports
the NumPy step's peak extra memory (tracemalloc), in units of the largest parameter: the
target is at most a couple of parameter-sized temporaries per step, and the scratch buffers
are allocated once, at construction.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def model_shapes(total: int) -> list[tuple[int, ...]]:
    """A dozen shapes whose sizes add up to about ``total``: two large matrices, several
    medium ones and a few vectors, like a small transformer's parameters."""
    fractions = [0.30, 0.20, 0.12, 0.12, 0.08, 0.08, 0.04, 0.04, 0.01, 0.005, 0.003, 0.002]
    shapes = []
    for f in fractions:
        n = max(1, int(total * f))
        cols = 256 if n >= 256 * 4 else 1
        shapes.append((n // cols, cols) if cols > 1 else (n,))
    return shapes


def best_time(step, repeat: int) -> float:
    step()  # warm up: first-touch of state buffers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import torch

    import adamlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shapes = model_shapes(args.params)
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    n = sum(p.size for p in params)

    opt = adamlib.Adam(params, lr=1e-3)
    ours = best_time(lambda: opt.step(grads), args.repeat)

    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.from_numpy(g)
    topt = torch.optim.Adam(tparams, lr=1e-3, foreach=False)
    theirs = best_time(topt.step, args.repeat)

    tracemalloc.start()
    opt.step(grads)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    largest = max(p.nbytes for p in params)

    print(f"{n:,} float32 parameters in {len(params)} arrays, torch threads: {torch.get_num_threads()}")
    print(f"adamlib.Adam (NumPy)           {ours * 1e3:8.1f} ms/step")
    print(f"torch.optim.Adam(foreach=False) {theirs * 1e3:8.1f} ms/step")
    print(f"ratio adamlib / torch: {ours / theirs:.2f}  (target <= 3)")
    print(f"peak extra memory during a step: {peak / largest:.2f} x the largest parameter")


if __name__ == "__main__":
    main()
