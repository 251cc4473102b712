"""Time the population trainer against single runs one after another, and its peak memory.

Usage::

    .venv/bin/python benchmarks/population.py [--sizes 1 16 64 256] [--steps 300] [--singles 4]
                                              [--threads 1] [--mechanisms]

Single runs are the book's task run alone (``tasks.mlp`` + ``tasks.train`` +
``torch.optim.Adam``); the population trains K members at once with
:func:`adamlib.lab.population.train_population` on the same task. Both run on ``--threads``
torch threads (1 by default, as the chapters run: on a machine whose cores are busy, two
threads make a small single run many times slower). Speed-ups compare CPU time
(``time.process_time``), which other jobs on the same cores disturb far less than wall
time; both are printed. Each measurement runs in a fresh subprocess, so that its peak resident
memory (``ru_maxrss``) is its own; "extra memory" is that peak minus the peak of a
subprocess that only loads the data and the libraries. The target (issue 9): K = 64 in at
most the time of 8 single runs (8x the throughput or better), memory linear in K.

``--mechanisms`` also times one loss-and-gradient evaluation of K = 64 members
(``--mechanism-size``) three ways:
the hand-written backward the trainer uses, autograd through the same batched matmuls, and
``torch.func.vmap`` over ``torch.func.grad`` of one member's loss.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(kind: str, size: int, steps: int, threads: int) -> dict:
    """One measurement in this process: ``single`` runs ``size`` runs one after another."""
    import torch

    torch.set_num_threads(threads)

    from adamlib.lab import tasks
    from adamlib.lab.population import train_population

    data = tasks.digits_split()
    task = tasks.BOOK_TASK
    start, cpu_start = time.perf_counter(), time.process_time()
    if kind == "single":
        for seed in range(size):
            model = tasks.mlp(task.hidden, seed)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            tasks.train(model, opt, data, steps, batch_size=task.batch_size, seed=seed)
    elif kind == "population":
        lrs = [1e-3 * 10 ** (k % 4 / 2) for k in range(size)]
        train_population(data, steps, lr=lrs, seed=list(range(size)), hidden=task.hidden,
                         batch_size=task.batch_size, progress=False)
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu_start, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "threads": torch.get_num_threads()}


def measure(kind: str, size: int, steps: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(size), str(steps), str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mechanisms(threads: int, K: int, repeat: int = 30) -> None:
    """Time one batched loss-and-gradient three ways, on the same minibatches."""
    import torch

    torch.set_num_threads(threads)

    from adamlib.lab import population, tasks

    hidden, data = tasks.BOOK_TASK.hidden, tasks.digits_split()
    params = torch.stack([population._initial(hidden, s) for s in range(K)]).float()
    idx = torch.randint(len(data.y_train), (K, 64), generator=torch.Generator().manual_seed(0))
    X, y = data.X_train[idx], data.y_train[idx]

    def manual():
        return population._loss_and_grad(params, X, y, hidden)[1]

    def autograd():
        p = params.detach().requires_grad_()
        logits = population._forward(p, X, hidden)[0]  # (K, 10, 64)
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum") / 64
        return torch.autograd.grad(loss, p)[0]

    def one_loss(p, Xk, yk):
        H = hidden
        a = torch.nn.functional.linear(Xk, p[: 64 * H].view(H, 64), p[64 * H : 65 * H]).relu()
        logits = torch.nn.functional.linear(a, p[65 * H : 75 * H].view(10, H), p[75 * H :])
        return torch.nn.functional.cross_entropy(logits, yk)

    vmapped = torch.func.vmap(torch.func.grad(one_loss))

    def vmap():
        return vmapped(params, X, y)

    reference = manual()
    for name, fn in (("hand-written backward (bmm)", manual), ("autograd over bmm", autograd),
                     ("torch.func vmap(grad)", vmap)):
        torch.testing.assert_close(fn(), reference, rtol=1e-4, atol=1e-6)  # the same gradient
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"  {name:28s} {min(times) * 1e3:7.2f} ms (best of {repeat}), K = {K}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--singles", type=int, default=4, help="single runs timed one after another")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mechanisms", action="store_true")
    parser.add_argument("--mechanism-size", type=int, default=64, help="K of --mechanisms")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], *map(int, args.child[1:]))))
        return

    base = measure("none", 0, args.steps, args.threads)
    single = measure("single", args.singles, args.steps, args.threads)
    per_single = single["cpu"] / args.singles
    print(f"digits task, {args.steps} steps, torch threads: {single['threads']}")
    print(f"single runs one after another: {per_single:.3f} s CPU per run ({args.singles} runs, "
          f"{single['seconds'] / args.singles:.3f} s wall), "
          f"extra memory {(single['maxrss_kb'] - base['maxrss_kb']) / 1024:.1f} MiB")
    print("    K  s wall  s CPU  s CPU/member-run  speed-up vs single  extra memory MiB")
    for K in args.sizes:
        r = measure("population", K, args.steps, args.threads)
        per_member = r["cpu"] / K
        extra = (r["maxrss_kb"] - base["maxrss_kb"]) / 1024
        print(f"{K:5d} {r['seconds']:7.2f} {r['cpu']:6.2f} {per_member:17.4f} {per_single / per_member:18.1f}x "
              f"{extra:17.1f}")
    print("target: K = 64 at >= 8x the single runs' throughput; memory linear in K")
    if args.mechanisms:
        print("one batched loss and gradient:")
        mechanisms(args.threads, K=args.mechanism_size)


if __name__ == "__main__":
    main()
