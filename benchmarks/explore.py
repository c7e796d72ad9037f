"""Update time of every control of every explorer of ``analysis.explore``, at the default sizes.

Target: at most 0.3 s per update on two CPU cores. For each control and each repeat the
explorer's caches are cleared, the current state is recomputed (untimed), and then the
control is set to a value it has not had — so every timed update recomputes exactly what
that control changes, as a user's first move to a new value does (a return to a value seen
before costs no denoiser call at all). The time is the wall-clock time of setting the value
(the observer runs, recomputes and restyles the ``FigureWidget``), and the process CPU time
beside it: on a shared machine the wall-clock time includes waiting for a core.

Explorers at their defaults: ``theorem1("sphere", 64)`` (16 runs, N = 20),
``samplers("sphere")`` (ideal denoiser, 64 starts, 12 drawn, paper schedule, NFE 10, GE
γ = 2; reference Heun 400 steps), ``projection_error(ideal, sphere)`` (24 levels × 256 pairs).
The explorers compute on one torch thread (small tensors; see ``analysis._common.one_cpu_thread``).

Usage: ``python benchmarks/explore.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# The repository root first: this folder's analysis.py would otherwise shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import toymanifold as tm
from analysis import explore

TARGET_S = 0.3

#: Per explorer and control: (value before, value after) of the timed move; every other control
#: stays at the explorer's default.
MOVES = {
    "theorem1": {
        "eta": (0.1, 0.15),
        "mode": ("random", "outward"),
        "n_steps": (20, 25),
        "sigma_max": (10.0, 20.0),
        "sigma_min": (0.01, 0.02),
        "nu": (3.5, 2.5),
    },
    "samplers": {
        "sampler": ("gradient_estimation", "heun"),
        "nfe": (10, 15),
        "gamma": (2.0, 1.5),
        "mu": (0.0, 0.5),
        "schedule": ("paper", "karras"),
    },
    # A wider σ range measures the levels it adds; ν only re-selects pairs.
    "projection_error": {"sigma_range": ((4, 19), (0, 23)), "nu": (2.0, 1.5)},
}


def build(name: str):
    if name == "theorem1":
        return explore.theorem1("sphere", 64, progress=False)
    if name == "samplers":
        return explore.samplers("sphere", progress=False)
    K = tm.datasets.build("sphere").manifold
    return explore.projection_error(tm.ideal_denoiser(K), K, progress=False)


def time_control(ex, control: str, move: tuple, repeats: int) -> tuple[list[float], list[float], list[int]]:
    before_value, after_value = move
    walls, cpus, calls = [], [], []
    for _ in range(repeats):
        ex.controls[control].value = before_value
        ex.clear_cache()
        ex.refresh()  # the state before the move, untimed
        before = ex.model_calls
        t0, c0 = time.perf_counter(), time.process_time()
        ex.controls[control].value = after_value
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        calls.append(ex.model_calls - before)
    ex.controls[control].value = before_value
    return walls, cpus, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; target {TARGET_S} s per update\n")
    header = (
        f"{'explorer':17s} {'control':11s} {'model calls':>11s} {'wall median':>11s} {'wall max':>9s} "
        f"{'CPU median':>10s} {'CPU max':>8s}  result"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, moves in MOVES.items():
        t0 = time.perf_counter()
        ex = build(name)
        built = time.perf_counter() - t0
        for control, move in moves.items():
            walls, cpus, calls = time_control(ex, control, move, args.repeats)
            med, top = statistics.median(walls), max(walls)
            worst = max(worst, med)
            result = "PASS" if med <= TARGET_S else "FAIL"
            print(
                f"{name:17s} {control:11s} {statistics.median(calls):11.0f} {med:10.3f}s {top:8.3f}s "
                f"{statistics.median(cpus):9.3f}s {max(cpus):7.3f}s  {result}"
            )
        print(f"{name:17s} (built in {built:.1f} s)")
    print(f"\nslowest median update: {worst:.3f} s (target {TARGET_S} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
