"""Time K character-level GPTs trained at once against K single runs one after another.

Usage::

    .venv/bin/python benchmarks/population_gpt.py [--size 8] [--steps 150] [--batch-size 8 16]
                                                  [--threads 1] [--repeat 3]

Single runs are :func:`adamlib.lab.gpt_population.train_gpt` (a
:class:`~adamlib.lab.gpt.GPT`, ``torch.optim.AdamW``, ``clip_grad_norm_``) on seeds
``0 .. K-1`` with K different learning rates, each measuring its validation loss at the end;
the population trains the same K members with
:func:`~adamlib.lab.gpt_population.train_gpt_population`, which measures every member's
validation loss at the end (the same work). The
two are measured alternately ``--repeat`` times in this process (single runs, population,
single runs, ...) and the ratio is taken from the medians of CPU time
(``time.process_time``), which other jobs on the same cores disturb less than wall time;
both are printed, with the load average before and after. Each batch size given is measured
and printed (the defaults, batch 8 and 16 for 150 steps, are the transformer chapter's
regime). The target (issue 24): K = 8 at at least 3x the throughput of 8 single runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8, help="K, the members (and the single runs)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from adamlib.lab.text import char_data

    data, K = char_data(), args.size
    lrs = [1e-3 * 10 ** (k % 4 / 3) for k in range(K)]

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for batch_size in args.batch_size:
        measure(data, K, lrs, args.steps, batch_size, args.repeat)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("target: K = 8 at >= 3x the throughput of 8 single runs")


def measure(data, K: int, lrs: list[float], steps: int, batch_size: int, repeat: int) -> None:
    """Time the K single runs and the population alternately ``repeat`` times; print the medians."""
    import torch

    from adamlib.lab.gpt_population import train_gpt, train_gpt_population

    def singles():
        for k in range(K):
            train_gpt(data, steps, lr=lrs[k], seed=k, batch_size=batch_size, eval_every=steps)

    def population():
        train_gpt_population(data, steps, lr=lrs, seed=list(range(K)), batch_size=batch_size, progress=False)

    train_gpt(data, 2, batch_size=batch_size)  # warm-up: first calls pay one-time costs
    train_gpt_population(data, 2, lr=lrs, seed=list(range(K)), batch_size=batch_size, progress=False)
    times = {"singles": [], "population": []}
    for _ in range(repeat):
        for name, fn in (("singles", singles), ("population", population)):
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.process_time() - cpu, time.perf_counter() - start))
    cpu = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    wall = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    tokens = K * steps * batch_size * 64
    print(f"GPT (107,008 parameters), K = {K}, {steps} steps, batch {batch_size} x 64 characters, "
          f"torch threads: {torch.get_num_threads()}, median of {repeat}")
    for name in times:
        print(f"  {name:10s} {cpu[name]:8.2f} s CPU {wall[name]:8.2f} s wall "
              f"{cpu[name] / (K * steps) * 1e3:8.1f} ms CPU per member-step "
              f"{tokens / cpu[name]:10.0f} tokens/s CPU")
    ratios = [s[0] / p[0] for s, p in zip(times["singles"], times["population"])]
    print(f"throughput ratio (population / single runs): {cpu['singles'] / cpu['population']:.2f}x CPU, "
          f"{wall['singles'] / wall['population']:.2f}x wall; CPU ratio of each repeat: "
          + " ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
