"""Cost of ``analysis.projection_error`` over the denoiser and oracle calls it contains.

Measures ``projection_error`` on ``10^6`` pairs (10 noise levels × 10^5 samples) on
``Embedded(Sphere(2), 64)`` and, *in the same run*, the time spent inside the calls it
makes: the denoiser (one call per chunk, timed by a wrapper around ``__call__``) and
the oracle (``manifold.project_with_distance``, one call per chunk, timed by an
instance-level wrapper). The ratio ``total / (denoiser + oracle)`` is what projection
_error adds on top: drawing ``x0`` and ``ε``, forming ``x = x0 + σε``, and ``x̂0 − p``,
its norm and ``r``, ``η``. Target: ≤ 2. The share of the drawing of ``x0``
(``manifold.sample``) is printed separately: it is part of the overhead, not of the
calls counted in the denominator.

Denoisers: the exact projection (the cheapest possible denoiser, hence the hardest case
for the ratio) and the closed-form ideal denoiser of the embedded sphere.

Timing: the calling thread's CPU time (``time.thread_time``) with torch on one thread
(``--threads 1``), so other processes on a shared machine inflate it less than wall
time (printed beside it); one warm-up round, then ``--repeats`` rounds; medians and the
interquartile range of the ratio over rounds.

Usage: ``python benchmarks/analysis.py [--pairs 1000000] [--repeats 5] [--threads 1] [--chunk 65536]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

# This script is named like the package it measures: drop its own folder from the path
# so that `import analysis` finds the package (repo root), not this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import analysis  # noqa: E402
import toymanifold as tm  # noqa: E402
from toymanifold.denoisers.base import Denoiser  # noqa: E402


class Clock:
    def __init__(self):
        self.cpu = 0.0
        self.wall = 0.0

    def timed(self, fn):
        def wrapper(*args, **kwargs):
            c0, w0 = time.thread_time(), time.perf_counter()
            out = fn(*args, **kwargs)
            self.cpu += time.thread_time() - c0
            self.wall += time.perf_counter() - w0
            return out

        return wrapper


class TimedDenoiser(Denoiser):
    """Times every call of ``inner`` (validation included) without changing its output."""

    def __init__(self, inner, clock):
        self.inner, self.ambient_dim = inner, inner.ambient_dim
        self._call = clock.timed(inner.__call__)

    def __call__(self, x, sigma):
        return self._call(x, sigma)

    def _eps(self, x, sigma):  # pragma: no cover - __call__ is overridden
        raise NotImplementedError


def one_round(make_denoiser, pairs, chunk, seed):
    K = tm.Embedded(tm.Sphere(2), 64, seed=0)  # the oracle analysed
    den_clock, oracle_clock, sample_clock = Clock(), Clock(), Clock()
    K.project_with_distance = oracle_clock.timed(K.project_with_distance)
    K.sample = sample_clock.timed(K.sample)
    # The denoiser gets its own (identical) manifold instance so its internal oracle calls
    # are counted once, as denoiser time.
    den = TimedDenoiser(make_denoiser(tm.Embedded(tm.Sphere(2), 64, seed=0)), den_clock)
    sigmas = torch.logspace(-2, 0, 10, dtype=torch.float64).tolist()
    c0, w0 = time.thread_time(), time.perf_counter()
    m = analysis.projection_error(den, K, sigmas, pairs // len(sigmas), generator=seed, chunk_size=chunk)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    assert len(m) == (pairs // len(sigmas)) * len(sigmas)
    inner_cpu = den_clock.cpu + oracle_clock.cpu
    inner_wall = den_clock.wall + oracle_clock.wall
    return {
        "total_cpu": cpu,
        "inner_cpu": inner_cpu,
        "ratio_cpu": cpu / inner_cpu,
        "ratio_wall": wall / inner_wall,
        "den_cpu": den_clock.cpu,
        "oracle_cpu": oracle_clock.cpu,
        "sample_cpu": sample_clock.cpu,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10**6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=65536)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = {
        "ProjectionDenoiser": tm.ProjectionDenoiser,
        "ideal_denoiser": tm.ideal_denoiser,
    }
    print(
        f"projection_error on Embedded(Sphere(2), 64): {args.pairs:.0e} pairs, chunk {args.chunk}, "
        f"{args.threads} thread(s), {args.repeats} rounds (+1 warm-up); CPU seconds per round (medians)"
    )
    header = (
        f"{'denoiser':<20}{'total':>8}{'den':>8}{'oracle':>8}{'sample':>8}"
        f"{'ratio(cpu)':>12}{'IQR':>16}{'ratio(wall)':>13}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, make in cases.items():
        one_round(make, min(args.pairs, 2 * args.chunk), args.chunk, seed=0)  # warm-up
        rounds = [one_round(make, args.pairs, args.chunk, seed=r + 1) for r in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        ratios = sorted(r["ratio_cpu"] for r in rounds)
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
        worst = max(worst, med["ratio_cpu"])
        print(
            f"{name:<20}{med['total_cpu']:>8.2f}{med['den_cpu']:>8.2f}{med['oracle_cpu']:>8.2f}"
            f"{med['sample_cpu']:>8.2f}{med['ratio_cpu']:>12.3f}{f'[{q[0]:.3f}, {q[2]:.3f}]':>16}"
            f"{med['ratio_wall']:>13.3f}"
        )
    print(
        f"\nratio = projection_error time / (denoiser + oracle time inside it); target <= 2: worst median {worst:.3f}"
    )
    return 0 if worst <= 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
