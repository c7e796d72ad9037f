"""Denoiser benchmarks: trained MLP vs the Bayes floor; finite-set kernel vs the matmul floor.

Run: ``python benchmarks/denoisers.py [--quick]``. Prints ratios measured side by side
in one run (docs/design.md: benchmarks are scripts, not timed unit tests).

(a) The default ``MLPDenoiser`` trained by ``train_denoiser`` (default settings) on
    ``Embedded(Sphere(2), 64)``; its test loss over the training σ distribution against
    the ideal denoiser's loss on the same (x0, σ, ε) draws (the Bayes floor,
    THEORY §1), and the training wall time. Target: ratio ≤ 1.2 within 2 minutes on
    2 CPU cores.
(b) The streaming finite-set ideal denoiser (THEORY §4) for M = 20 000, n = 784,
    B = 256 on the CPU (float32), against the floor of its two matrix products
    ``x @ K.T`` (B×M) and ``W @ K`` timed alone, and against smalldiffusion's
    ``IdealDenoiser`` when importable. Target ≤ 1.15× the floor. Peak memory: the
    kernel's working set computed from its shapes, and the process's ru_maxrss delta.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import toymanifold as tm
from toymanifold.denoisers.ideal import _BLOCK_ELEMENTS, FiniteSetDenoiser
from toymanifold.denoisers.mlp import sample_sigmas


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def bench_mlp(steps: int | None, num_test: int) -> None:
    K = tm.Embedded(tm.Sphere(2), 64)
    torch.manual_seed(0)
    model = tm.MLPDenoiser(64)
    kw = {} if steps is None else {"steps": steps}
    t = time.perf_counter()
    history = tm.train_denoiser(model, K, progress=False, **kw)
    wall = time.perf_counter() - t
    g = torch.Generator().manual_seed(12345)
    x0 = K.sample(num_test, g, dtype=torch.float32)
    s = sample_sigmas(num_test, g)  # the training default: log-uniform on [0.01, 10]
    e = torch.randn(x0.shape, generator=g)
    x = x0 + s[:, None] * e
    with torch.no_grad():
        lm = (model(x, s) - e).square().sum(1)
        li = (tm.ideal_denoiser(K)(x, s) - e).square().sum(1)
    ratio = float(lm.mean() / li.mean())
    # Standard error of the ratio from the paired per-sample losses (delta method).
    d = lm - ratio * li
    se = float(d.std() / li.mean() / num_test**0.5)
    print(f"(a) MLPDenoiser on Embedded(Sphere(2), 64): {len(history)} steps, torch threads {torch.get_num_threads()}")
    print(f"{'quantity':<34}{'value':>12}{'target':>12}")
    print(f"{'test loss (MLP)':<34}{float(lm.mean()):>12.4f}")
    print(f"{'test loss (ideal, Bayes floor)':<34}{float(li.mean()):>12.4f}")
    print(f"{'ratio MLP / floor':<34}{ratio:>12.3f}{'<= 1.20':>12}   (± {se:.3f} s.e.)")
    print(f"{'training wall time [s]':<34}{wall:>12.1f}{'<= 120':>12}")
    for lo, hi in [(0.01, 0.1), (0.1, 1.0), (1.0, 10.0)]:
        m = (s >= lo) & (s < hi)
        print(f"{f'  ratio for sigma in [{lo}, {hi})':<34}{float(lm[m].mean() / li[m].mean()):>12.3f}")
    print()


def bench_finite(m: int, n: int, b: int, reps: int) -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(m, n, generator=g) * 2 - 1  # float32, like image data in [−1, 1]
    x = pts[:b] + 0.5 * torch.randn(b, n, generator=g)
    sigma = 0.5
    den = FiniteSetDenoiser(pts.double())
    den.posterior_mean(x, sigma)  # builds the float32 cache outside the timing

    kf = pts.contiguous()
    w = torch.softmax(torch.randn(b, m, generator=g), 1)

    def floor():
        x @ kf.T
        w @ kf

    rss0 = _maxrss_mib()
    t_floor = _median_time(floor, reps)
    t_ours = _median_time(lambda: den.posterior_mean(x, sigma), reps)
    rss1 = _maxrss_mib()
    chunk = max(256, _BLOCK_ELEMENTS // b)
    chunk = -(-m // -(-m // chunk))  # the kernel splits M into equal chunks
    work_mib = (b * chunk + 2 * b * (n + 2)) * 4 / 2**20
    rows = [("matmul floor (x@K.T + W@K)", t_floor), ("toymanifold FiniteSetDenoiser", t_ours)]
    try:
        from smalldiffusion import IdealDenoiser  # optional peer, not in the main env

        class _DS(torch.utils.data.Dataset):
            def __len__(self):
                return m

            def __getitem__(self, i):
                return pts[i]

        sd = IdealDenoiser(_DS())
        sig = torch.tensor(sigma)  # its forward broadcasts a (B,) sigma against (B, n) wrongly
        with torch.no_grad():
            t_sd = _median_time(lambda: sd(x, sig), reps)
        rows.append(("smalldiffusion IdealDenoiser", t_sd))
    except Exception as exc:  # ImportError, or an API that differs from the one assumed
        print(f"(smalldiffusion not measured: {type(exc).__name__}: {exc})")
    print(f"(b) finite-set ideal denoiser, M={m}, n={n}, B={b}, float32, CPU, threads {torch.get_num_threads()}")
    print(f"{'implementation':<34}{'time [ms]':>12}{'/ floor':>10}{'target':>10}")
    for name, t in rows:
        target = "<= 1.15" if name.startswith("toymanifold") else ""
        print(f"{name:<34}{1e3 * t:>12.1f}{t / t_floor:>10.3f}{target:>10}")
    print(f"working set of the kernel: B×chunk logits + 2 B×(n+2) = {work_mib:.1f} MiB (chunk {chunk});")
    print(
        f"points: M×(n+2) float32 = {m * (n + 2) * 4 / 2**20:.1f} MiB (cached once); full B×M softmax would be "
        f"{b * m * 4 / 2**20:.1f} MiB; ru_maxrss growth during timing {rss1 - rss0:.1f} MiB"
    )
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--skip-finite", action="store_true")
    args = ap.parse_args()
    if not args.skip_finite:
        if args.quick:
            bench_finite(2000, 64, 64, 3)
        else:
            bench_finite(20_000, 784, 256, 7)
    if not args.skip_mlp:
        bench_mlp(50 if args.quick else None, 2000 if args.quick else 20_000)


if __name__ == "__main__":
    main()
