"""Time one step of ``adamlib.torch.Adam`` against ``torch.optim.Adam``'s three paths, in one run.

Usage::

    .venv/bin/python benchmarks/torch_step.py                    # CPU: the sizes of issue 23
    .venv/bin/python benchmarks/torch_step.py --clock cpu --threads 1   # on a busy machine
    .venv/bin/python benchmarks/torch_step.py --device cuda      # GPU: 1M, 10M, 100M and 1B
    .venv/bin/python benchmarks/torch_step.py --sizes 1e6,1e7 --amsgrad   # GPT-like, 51 tensors
    .venv/bin/python benchmarks/torch_step.py --adamw     # decoupled weight decay 0.01
    .venv/bin/python benchmarks/torch_step.py --flat     # one tensor per size: the kernels alone
    .venv/bin/python benchmarks/torch_step.py --sizes 1e7:12 --target-rounds 301 --no-cold   # 10M only

A size is ``N`` (a GPT-like mix of about N float32 parameters: an embedding, then per layer
two layer norms, the attention and MLP matrices and their biases, 51 tensors at every size)
or ``N:T`` (an MLP of about N parameters in T tensors: T/2 square weight matrices and their
biases, the shapes of a small MLP). The CPU default, ``1e5:20,1e6:50,1e7:12``, is issue 23's:
100k parameters in 20 tensors, 1M in 50, 10M in 12.

Every optimizer updates the same parameters. ``adamlib`` is ``adamlib.torch.Adam()`` as a
user gets it (``impl="auto"``); the run prints which path it chose for each size, and the
time of its first step in this process (compiling the update, or loading it from
Inductor's on-disk cache: the compiled updates are forgotten before each size). When
``auto`` chose the eager path, ``impl="compiled"`` is timed too. Before the sizes, the run
times the first compiled step of two new processes (``--no-cold`` skips it): one with an
empty Inductor cache (a cold compile), then one with the cache the first left.

The table's steps are timed in interleaved rounds, each in a rotated order, so a busy
machine slows them all alike; each figure is the median over rounds. The targets are timed
apart, pair by pair (adamlib against fused, adamlib against the for-loop): ``--calls``
steps of one then of the other, in the order A B in even rounds and B A in odd ones, for
``--target-rounds`` rounds after two discarded; each target is the median over rounds of
the ratio within a round, printed with the interquartile range of those ratios and the
two optimizers' median ms/step in those rounds (a busy machine shows in them). Both
optimizers of a pair run in the same process, on the same parameters and gradients, with
the same threads, each with its own moments as in training. ``--clock cpu`` times the
process's CPU time instead of wall time (with ``--threads 1``: the work a step does,
whatever else the machine runs). First, the run measures the device's streaming
bandwidth: an in-place ``addcmul_`` over a large tensor (12 bytes per element: two reads
and a write), and it prints the load average at its start and its end.

Columns, one row per optimizer and size:

* ``ms/step``: median time of one ``step()``.
* ``GB/s``: the bytes one step must move, 28 per parameter (read p, g, m, v; write p, m, v;
  36 with ``--amsgrad``), divided by that time: the optimizer's effective bandwidth.
* ``%stream``: that bandwidth as a percentage of the measured streaming bandwidth (it can
  exceed 100: ``addcmul_`` is itself not the fastest possible stream).
* ``adamlib/this``: adamlib's time divided by this row's time, the median over the table's
  rounds of the ratio within a round (below 1: adamlib is faster); the targets use their
  own paired rounds.
* ``alloc MB``: the largest single allocation during one step (torch.profiler on a CPU, the
  CUDA allocator's peak on a GPU): 0.0 means no parameter-sized temporary.

The targets are checked at the end. Issue 23, on a CPU: at every size adamlib at most the
time of torch's default (the for-loop, ``foreach=False``); from 1M parameters up at most
1.15x the time of ``fused=True``, and at most 1.05x from 10M. Issue 3, on a GPU at 100M and
above: at least 0.95x fused's throughput and 85% of the streaming bandwidth.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from adamlib.torch import Adam
from adamlib.torch import update as update_module


def gpt_like_shapes(total: float, layers: int = 4) -> list[tuple[int, ...]]:
    """Shapes of a small GPT (vocabulary 8 d, width d) with about ``total`` parameters."""
    d = max(8, round((total / (8 + 12 * layers)) ** 0.5 / 8) * 8)
    shapes = [(8 * d, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,)]  # norm, attention
        shapes += [(d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]  # norm, MLP
    return shapes + [(d,), (d,)]


def mlp_shapes(total: float, tensors: int) -> list[tuple[int, ...]]:
    """Shapes of an MLP with about ``total`` parameters in ``tensors`` tensors: square weight
    matrices of width d and their biases (one more bias if ``tensors`` is odd)."""
    layers = max(1, tensors // 2)
    d = max(2, round((total / layers) ** 0.5))
    shapes = [s for _ in range(layers) for s in ((d, d), (d,))]
    return shapes + [(d,)] * (tensors - len(shapes))


def shapes_of(size: str, flat: bool) -> list[tuple[int, ...]]:
    """The shapes a ``--sizes`` entry stands for: ``N`` GPT-like, ``N:T`` an MLP in T tensors."""
    total, _, tensors = size.partition(":")
    if flat:
        return [(int(float(total)),)]
    return mlp_shapes(float(total), int(tensors)) if tensors else gpt_like_shapes(float(total))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device: torch.device, calls: int, clock=time.perf_counter) -> float:
    sync(device)
    start = clock()
    for _ in range(calls):
        fn()
    sync(device)
    return (clock() - start) / calls * 1e3


def streaming_gbps(device: torch.device, numel: int, rounds: int, clock=time.perf_counter) -> float:
    """Bandwidth of ``x.addcmul_(y, y)``: 12 bytes per element."""
    x = torch.zeros(numel, device=device)
    y = torch.randn(numel, device=device)
    step = lambda: x.addcmul_(y, y, value=1e-9)  # noqa: E731
    step()
    ms = statistics.median(median_ms(step, device, 3, clock) for _ in range(rounds))
    return 12 * numel / ms / 1e6


def largest_allocation_mb(opt: torch.optim.Optimizer, device: torch.device) -> float:
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        opt.step()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 1e6
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        opt.step()
    return max(e.cpu_memory_usage for e in prof.events()) / 1e6


def interleaved_ms(opts: dict[str, torch.optim.Optimizer], device, rounds: int, calls: int, clock) -> dict[str, list[float]]:
    """Per round, each optimizer's ms/step; each round in another (rotated) order."""
    times: dict[str, list[float]] = {name: [] for name in opts}
    names = list(opts)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(median_ms(opts[name].step, device, calls, clock))
    return times


def paired_ratios(a: torch.optim.Optimizer, b: torch.optim.Optimizer, device, rounds: int, calls: int, clock,
                  warmup: int = 2) -> tuple[list[float], float, float]:
    """``a``'s time over ``b``'s within each round: ``calls`` steps of one, then of the other,
    in the order A B in even rounds and B A in odd ones (each in first and second place
    alike), so that whatever drifts during the run (other jobs, the clock's frequency)
    weighs on both; the first ``warmup`` rounds are discarded. Returns the ratios and the
    median ms/step of ``a`` and of ``b`` over those rounds."""
    ratios, times_a, times_b = [], [], []
    for r in range(warmup + rounds):
        if r % 2 == 0:
            ta = median_ms(a.step, device, calls, clock)
            tb = median_ms(b.step, device, calls, clock)
        else:
            tb = median_ms(b.step, device, calls, clock)
            ta = median_ms(a.step, device, calls, clock)
        if r >= warmup:
            ratios.append(ta / tb)
            times_a.append(ta)
            times_b.append(tb)
    return ratios, statistics.median(times_a), statistics.median(times_b)


def spread(paired: tuple[list[float], float, float]) -> str:
    """The median of a pair's ratios, their interquartile range and the pair's ms/step
    (:func:`paired_ratios`), as the targets print them."""
    ratios, ms_a, ms_b = paired
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return (f"{statistics.median(ratios):.3f}x (IQR {q1:.3f}-{q3:.3f}, {len(ratios)} rounds; "
            f"{ms_a:.2f} against {ms_b:.2f} ms/step)")


FIRST_STEP = """
import json, sys, time
t0 = time.perf_counter()
import torch
from adamlib.torch import Adam
device, threads, options = torch.device(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
torch.set_num_threads(threads)
params = [torch.nn.Parameter(torch.randn(1000, 1000, device=device)), torch.nn.Parameter(torch.randn(1000, device=device))]
for p in params:
    p.grad = torch.randn(p.shape, device=device)
opt = Adam(params, **options, impl="compiled")
start, cpu = time.perf_counter(), time.process_time()
opt.step()
if device.type == "cuda":
    torch.cuda.synchronize(device)
print(json.dumps(dict(wall=time.perf_counter() - start, cpu=time.process_time() - cpu, start=start - t0)))
"""


def first_step_of_a_process(device: torch.device, options: dict) -> str:
    """The first compiled step of a new Python process, twice: compiling from nothing (a
    fresh, empty ``TORCHINDUCTOR_CACHE_DIR``, so no cache of Inductor's, AOTAutograd's or
    the C++ compiler's is found), then in another new process with the cache the first one
    left (what each later run of a program pays), the update of ``options`` (those of the
    benchmark: AMSGrad, weight decay). Wall time, and the CPU time of the
    process (the C++ compiler and Inductor's workers run in others)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="adamlib-inductor-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", FIRST_STEP, str(device), str(torch.get_num_threads()),
                                  json.dumps(options)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.splitlines()[-1]))
    (cold, warm) = results
    return (f"first compiled step of a new process: {cold['wall']:.1f} s compiling from nothing (empty "
            f"TORCHINDUCTOR_CACHE_DIR; {cold['cpu']:.1f} s CPU in the process), {warm['wall']:.1f} s with "
            f"that cache on disk ({warm['cpu']:.1f} s CPU; import torch and adamlib before it: {warm['start']:.1f} s)")


def first_step(opt: torch.optim.Optimizer, device: torch.device) -> str:
    """Seconds of ``opt``'s first step, with no compiled update in this process yet: wall
    time, and the CPU time of this process (the C++ compiler runs in others)."""
    update_module._compiled.clear()
    start, cpu = time.perf_counter(), time.process_time()
    opt.step()
    sync(device)
    return f"{time.perf_counter() - start:.1f} s ({time.process_time() - cpu:.1f} s CPU)"


def options_of(args) -> dict:
    """The optimizers' options: AMSGrad or not, AdamW's decoupled weight decay 0.01 or none."""
    if args.adamw:
        return dict(amsgrad=args.amsgrad, weight_decay=0.01, decoupled_weight_decay=True)
    return dict(amsgrad=args.amsgrad)


def bench_size(size: str, device: torch.device, args) -> list[dict]:
    gen = torch.Generator(device=device).manual_seed(0)
    shapes = shapes_of(size, args.flat)
    params = [torch.nn.Parameter(torch.randn(s, device=device, generator=gen) * 0.02) for s in shapes]
    for p in params:  # all optimizers share the parameters and their (fixed) gradients
        p.grad = torch.randn(p.shape, device=device, generator=gen)
    n = sum(p.numel() for p in params)
    ams = args.amsgrad
    options = options_of(args)
    opts = {"adamlib": Adam(params, **options)}
    first = {"adamlib": first_step(opts["adamlib"], device)}
    chose = "/".join(sorted(set(opts["adamlib"].paths().values())))
    if chose != "compiled":
        opts["adamlib impl=compiled"] = Adam(params, **options, impl="compiled")
        first["adamlib impl=compiled"] = first_step(opts["adamlib impl=compiled"], device)
    opts |= {
        "torch foreach=False": torch.optim.Adam(params, **options, foreach=False),
        "torch foreach=True": torch.optim.Adam(params, **options, foreach=True),
        "torch fused=True": torch.optim.Adam(params, **options, fused=True),
    }
    for opt in opts.values():
        opt.step()  # state is created outside the timing (and every plan made)
        opt.step()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times = interleaved_ms(opts, device, args.rounds, args.calls, clock)
    ratios = {name: [a / b for a, b in zip(times["adamlib"], t)] for name, t in times.items()}  # within rounds
    # The targets' pairs, each timed apart in rounds of its own: adamlib and the other only.
    against = ["torch foreach=False", "torch fused=True"] if device.type == "cpu" else ["torch fused=True"]
    paired = {name: paired_ratios(opts["adamlib"], opts[name], device, args.target_rounds, args.calls, clock)
              for name in against}
    if args.eager and chose != "eager" and n <= 2 * 10**7:  # slow and allocating: timed apart, not to disturb the others
        opts["adamlib impl=eager"] = eager = Adam(params, **options, impl="eager")
        eager.step()
        eager.step()
        apart = interleaved_ms({"adamlib": opts["adamlib"], "eager": eager}, device, 3, 1, clock)
        times["adamlib impl=eager"] = apart["eager"]
        ratios["adamlib impl=eager"] = [a / b for a, b in zip(apart["adamlib"], apart["eager"])]
    bytes_per_step = (36 if ams else 28) * n
    rows = []
    for name, opt in opts.items():
        ms = statistics.median(times[name])
        rows.append(dict(n=n, tensors=len(params), name=name, ms=ms, gbps=bytes_per_step / ms / 1e6, chose=chose,
                         ratio=statistics.median(ratios[name]), alloc=largest_allocation_mb(opt, device),
                         largest=max(torch.Size(s).numel() for s in shapes), paired=paired.get(name)))
    print(f"  {n:,} parameters in {len(params)} tensors: impl='auto' chose {chose}; first step "
          + ", ".join(f"{name} {seconds}" for name, seconds in first.items())
          + " (compiling the update, or loading it from the on-disk cache)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--sizes", default=None, help="comma-separated N (GPT-like, 51 tensors) or N:T (an MLP in T tensors); "
                        "default: 1e5:20,1e6:50,1e7:12 on a CPU, 1e6,1e7,1e8,1e9 on a GPU")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--calls", type=int, default=3, help="steps per optimizer per round")
    parser.add_argument("--target-rounds", type=int, default=101,
                        help="rounds of each target's pair (adamlib against fused, and against the for-loop)")
    parser.add_argument("--no-cold", dest="cold", action="store_false",
                        help="skip timing the first compiled step of new processes (an empty Inductor cache, then a warm one)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time.perf_counter (default) or the process's CPU time (with --threads 1 on a busy machine)")
    parser.add_argument("--amsgrad", action="store_true")
    parser.add_argument("--adamw", action="store_true", help="decoupled weight decay 0.01 (AdamW)")
    parser.add_argument("--flat", action="store_true", help="one tensor per size instead of the GPT-like mix")
    parser.add_argument("--no-eager", dest="eager", action="store_false", help="skip adamlib's eager path")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = (args.sizes or ("1e5:20,1e6:50,1e7:12" if device.type == "cpu" else "1e6,1e7,1e8,1e9")).split(",")

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"adamlib.torch.Adam step benchmark: {device.type} ({where}), float32{' AMSGrad' if args.amsgrad else ''}{' AdamW' if args.adamw else ''}, "
          f"torch {torch.__version__}, {args.clock} clock, {datetime.date.today()}")
    if hasattr(os, "getloadavg"):
        print("load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)")
    if args.cold:
        print(first_step_of_a_process(device, options_of(args)), flush=True)
    largest = max(int(float(size.partition(":")[0])) for size in sizes)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    stream = streaming_gbps(device, max(2**25, largest) if device.type == "cpu" else 2**28, args.rounds, clock)
    print(f"streaming bandwidth (in-place addcmul_): {stream:.1f} GB/s")
    rows = [row for size in sizes for row in bench_size(size, device, args)]
    if hasattr(os, "getloadavg"):
        print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)")

    print(f"\n{'params':>13} {'tensors':>7}  {'optimizer':<21} {'ms/step':>8} {'GB/s':>7} {'%stream':>8} {'adamlib/this':>12} {'alloc MB':>9}")
    for r in rows:
        print(f"{r['n']:>13,} {r['tensors']:>7}  {r['name']:<21} {r['ms']:>8.2f} {r['gbps']:>7.1f} "
              f"{100 * r['gbps'] / stream:>7.0f}% {r['ratio']:>11.2f}x {r['alloc']:>9.1f}")

    print("\ntargets:")
    by = {(r["n"], r["tensors"], r["name"]): r for r in rows}
    for n, tensors in dict.fromkeys((r["n"], r["tensors"]) for r in rows):
        fused, loop, ours = (by[(n, tensors, name)] for name in ("torch fused=True", "torch foreach=False", "adamlib"))
        what = f"{n:,} in {tensors} tensors (auto: {ours['chose']})"
        if device.type == "cpu":
            bound = 1.05 if n >= 0.9e7 else 1.15 if n >= 0.9e6 else None
            to_loop, to_fused = (statistics.median(r["paired"][0]) for r in (loop, fused))
            ok = to_loop <= 1 and (bound is None or to_fused <= bound)
            print(f"  CPU {what}: {spread(loop['paired'])} the for-loop's time (<= 1), {spread(fused['paired'])} "
                  f"fused's{f' (<= {bound})' if bound else ''}: {'met' if ok else 'NOT met'}")
        if device.type == "cuda" and n >= 10**8 * 0.9:
            to_fused = statistics.median(fused["paired"][0])
            ok = to_fused <= 1 / 0.95 and ours["gbps"] >= 0.85 * stream
            print(f"  GPU {what}: {1 / to_fused:.2f}x fused's throughput (>= 0.95; adamlib's time "
                  f"{spread(fused['paired'])} fused's), {100 * ours['gbps'] / stream:.0f}% of streaming (>= 85%): "
                  f"{'met' if ok else 'NOT met'}")
        mb = 4 * ours["largest"] / 1e6
        print(f"  {what}: largest allocation in adamlib's step {ours['alloc']:.3f} MB, largest parameter {mb:.1f} MB: "
              f"{'no' if ours['alloc'] < mb / 100 else 'A'} parameter-sized temporary")


if __name__ == "__main__":
    main()
