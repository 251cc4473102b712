"""Time K character-level GPTs trained at once against K single runs one after another.

Usage::

    .venv/bin/python benchmarks/population_gpt.py [--size 8] [--steps 30] [--batch-size 32]
                                                  [--threads 1] [--repeat 2]

Single runs are :func:`adamlib.lab.gpt_population.train_gpt` (a
:class:`~adamlib.lab.gpt.GPT`, ``torch.optim.AdamW``, ``clip_grad_norm_``) on seeds
``0 .. K-1`` with K different learning rates, each measuring its validation loss at the end;
the population trains the same K members with
:func:`~adamlib.lab.gpt_population.train_gpt_population`, which measures every member's
validation loss at the end (the same work). The
two are measured alternately ``--repeat`` times in this process (single runs, population,
single runs, ...) and the ratio is taken from the medians of CPU time
(``time.process_time``), which other jobs on the same cores disturb less than wall time;
both are printed. The target (issue 24): K = 8 at at least 3x the throughput of 8 single runs.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8, help="K, the members (and the single runs)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from adamlib.lab.gpt_population import train_gpt, train_gpt_population
    from adamlib.lab.text import char_data

    data, K = char_data(), args.size
    lrs = [1e-3 * 10 ** (k % 4 / 3) for k in range(K)]

    def singles():
        for k in range(K):
            train_gpt(data, args.steps, lr=lrs[k], seed=k, batch_size=args.batch_size, eval_every=args.steps)

    def population():
        train_gpt_population(data, args.steps, lr=lrs, seed=list(range(K)), batch_size=args.batch_size,
                             progress=False)

    times = {"singles": [], "population": []}
    for _ in range(args.repeat):
        for name, fn in (("singles", singles), ("population", population)):
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.process_time() - cpu, time.perf_counter() - start))
    cpu = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    wall = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    tokens = K * args.steps * args.batch_size * 64
    print(f"GPT (107,008 parameters), K = {K}, {args.steps} steps, batch {args.batch_size} x 64 characters, "
          f"torch threads: {torch.get_num_threads()}, median of {args.repeat}")
    for name in times:
        print(f"  {name:10s} {cpu[name]:8.2f} s CPU {wall[name]:8.2f} s wall "
              f"{cpu[name] / (K * args.steps) * 1e3:8.1f} ms CPU per member-step "
              f"{tokens / cpu[name]:10.0f} tokens/s CPU")
    print(f"throughput ratio (population / single runs): {cpu['singles'] / cpu['population']:.2f}x CPU, "
          f"{wall['singles'] / wall['population']:.2f}x wall")
    print(f"target: K = 8 at >= 3x the throughput of 8 single runs")


if __name__ == "__main__":
    main()
