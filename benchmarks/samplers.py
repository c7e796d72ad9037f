"""Sampler overhead: sampler time over model-only time, side by side with peer libraries.

For a small 2-D MLP ε-model (B = 4096 points, 50 steps, CPU) every sampler is timed
against the *model-only* loop: the same number of calls to the same network on a
batch of the same shape, and nothing else. The ratio is the cost of the sampler's own
arithmetic and bookkeeping (target ≤ 1.03 for ``tm.ddim``; THEORY §5).

Peers, measured in the same run when importable (they are optional; the script runs
in either the project's environment or a separate one that has them):

- smalldiffusion's ``samples`` (γ = 1 for DDIM, γ = 2 for gradient estimation), on a
  model that uses smalldiffusion's own ``ModelMixin`` (its ``predict_eps_cfg`` and
  ``rand_input``, which ``samples`` calls every step, also at μ = 0) and an
  ``Accelerator`` built once outside the timed loop (as a training script passes its own;
  ``samples`` would otherwise build one per call, ~0.25 ms);
- k-diffusion's ``sample_euler`` (Euler = DDIM in σ-space; k-diffusion models return
  the denoised ``x − σ ε``, so its wrapper's two extra tensor ops belong to its loop);
- diffusers' ``DDIMScheduler`` loop (eta = 0, ``clip_sample=False``), in its own ``z``
  parameterization at its own 50 timesteps, against the same network.

Timing: one warm-up round, then ``--repeats`` rounds; in each round every entry is
timed once, in a rotated order, and its ratio is taken against the model-only time of
the same round and the same number of model calls. The primary clock is the calling
thread's CPU time (``time.thread_time``) with torch limited to one thread
(``--threads 1``, the default), so that other processes on a shared machine inflate it
far less than wall-clock time; the wall-clock ratio is printed beside it. The table
reports medians over rounds and the interquartile range of the ratio: read the IQR.

Outputs are compared where the semantics match, each against a float32 tolerance
(``--tol``, relative to ``max |x|``): k-diffusion Euler vs ``tm.ddim`` and smalldiffusion
vs ``tm.ddim``/``tm.gradient_estimation`` on the same (float32) sigmas, diffusers DDIM vs
``tm.ddim`` through ``tm.images.DiscreteTimeEpsModel``. smalldiffusion's μ > 0 (DDPM) is not
compared: it draws its noise from the global RNG, ours from an explicit generator.

Usage: ``python benchmarks/samplers.py [--repeats 11] [--null-repeats 201] [--batch 4096] [--steps 50]
[--threads 1]`` (``--repeats 5 --null-repeats 51`` for a quick run).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import math
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    import toymanifold as tm
except ImportError:  # running from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import toymanifold as tm

from toymanifold import schedules
from toymanifold.samplers import SAMPLERS, nfe


class MLP(torch.nn.Module):
    """ε(x, c) for 2-D points with a scalar conditioning feature ``c`` (log σ, or its
    value at a discrete timestep): 3 → 128 → 128 → 128 → 2, SiLU."""

    def __init__(self, hidden: int = 128, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, c) -> torch.Tensor:
        if isinstance(c, torch.Tensor):
            cc = c.reshape(-1, 1).to(x.dtype).expand(x.shape[0], 1)
        else:
            cc = x.new_full((x.shape[0], 1), c)
        return self.net(torch.cat([x, cc], dim=1))


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a peer that fails on import in this env
        return None


def build_entries(net: MLP, sigmas: torch.Tensor, x: torch.Tensor):
    """name -> (number of model calls, zero-argument callable returning the output)."""
    sig = sigmas.tolist()
    n = len(sig) - 1

    def den(x, s):
        return net(x, math.log(s))

    entries: dict[str, tuple[int, object]] = {}

    def model_only(k: int):
        def run():
            out = None
            for i in range(k):
                out = net(x, math.log(sig[i % n]))
            return out

        return run

    # Every sampler of the registry, each after the model-only baseline of its own cost.
    for info in SAMPLERS.values():
        k = nfe(info.name, sigmas)
        entries.setdefault(f"model only ({k} calls)", (k, model_only(k)))
        kw = {"generator": 0} if info.stochastic else {}
        entries[f"tm.{info.name}"] = (k, lambda info=info, kw=kw: info.run(den, sigmas, x, **kw))

    sd = _optional("smalldiffusion")
    if sd is not None:
        from accelerate import Accelerator  # a dependency of smalldiffusion

        class SDModel(torch.nn.Module, sd.ModelMixin):
            # smalldiffusion >= 0.4: samples() calls model.predict_eps_cfg(x, sigma, cond,
            # cfg_scale) with sigma a 0-d tensor, and model.rand_input(batchsize) every step.
            input_dims = (2,)

            def __init__(self):
                super().__init__()
                self.inner = net

            def forward(self, x, sigma, cond=None):
                return net(x, sigma.log())

        sdm = SDModel()
        sig_t = sigmas.to(torch.float32)
        accelerator = Accelerator()

        def sd_run(gam):
            def run():
                out = None
                for xt in sd.samples(sdm, sig_t, gam=gam, mu=0.0, xt=x, accelerator=accelerator):
                    out = xt
                return out

            return run

        entries["smalldiffusion samples (γ=1)"] = (n, sd_run(1.0))
        entries["smalldiffusion samples (γ=2)"] = (n, sd_run(2.0))

    kd = _optional("k_diffusion.sampling")
    if kd is not None:
        sig_k = sigmas.to(torch.float32)

        def kd_model(x, sigma):  # k-diffusion models return the denoised x − σ ε
            return x - sigma.reshape(-1, 1) * net(x, sigma.log())

        entries["k-diffusion sample_euler"] = (n, lambda: kd.sample_euler(kd_model, x, sig_k, disable=True))

    if _optional("diffusers") is not None:
        from diffusers import DDIMScheduler

        sch = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)
        sch.set_timesteps(n)
        abar = sch.alphas_cumprod.double()
        logsig = (((1 - abar) / abar).sqrt().log()).tolist()
        z0 = x / math.sqrt(1 + math.exp(2 * logsig[int(sch.timesteps[0])]))  # z = x √ᾱ

        def diffusers_run():
            z = z0
            for t in sch.timesteps:
                eps = net(z, logsig[int(t)])
                z = sch.step(eps, t, z, eta=0.0).prev_sample
            return z

        entries["diffusers DDIMScheduler"] = (n, diffusers_run)
        entries["_diffusers_sched"] = (0, sch)  # for the output check, not timed
    return entries


def compare_outputs(net: MLP, sigmas: torch.Tensor, x: torch.Tensor, entries, tol: float) -> list[str]:
    """One line per peer: max |peer − ours| / max |ours| and OK or MISMATCH against ``tol``."""
    lines = []

    def den(x, s):
        return net(x, math.log(s))

    # The peers run on the float32 sigmas; ours on the same values (float32 ⊂ float64).
    sig32 = sigmas.to(torch.float32).double()
    ours = tm.ddim(den, sig32, x)
    ours_ge = tm.gradient_estimation(den, sig32, x)
    scale = ours.abs().max().item()

    def line(label, a, b, s=scale):
        r = (a - b).abs().max().item() / s
        return f"{label}: max |diff| / max |x| = {r:.2e}  {'OK' if r <= tol else 'MISMATCH'} (tol {tol:.0e})"

    if "k-diffusion sample_euler" in entries:
        lines.append(line("k-diffusion sample_euler vs tm.ddim", entries["k-diffusion sample_euler"][1](), ours))
    if "smalldiffusion samples (γ=1)" in entries:
        lines.append(line("smalldiffusion samples γ=1 vs tm.ddim", entries["smalldiffusion samples (γ=1)"][1](), ours))
        a = entries["smalldiffusion samples (γ=2)"][1]()
        lines.append(line("smalldiffusion samples γ=2 vs tm.gradient_estimation", a, ours_ge))
    if "_diffusers_sched" in entries:
        sch = entries["_diffusers_sched"][1]
        abar = sch.alphas_cumprod.double()
        logsig = ((1 - abar) / abar).sqrt().log().to(torch.float32)

        def model_zt(z, t):
            return net(z, logsig[t.reshape(-1)[0]].item())

        disc = tm.images.DiscreteTimeEpsModel(model_zt, sch.alphas_cumprod, timestep="nearest")
        ts = sch.timesteps.to(torch.int64)
        sig = torch.cat([disc.sigmas[ts], torch.zeros(1, dtype=torch.float64)])
        z = x / 10.0
        zd = z
        for t in sch.timesteps:
            zd = sch.step(net(zd, logsig[int(t)].item()), t, zd, eta=0.0).prev_sample
        xo = tm.ddim(disc, sig, z * math.sqrt(1 + float(sig[0]) ** 2))
        label = "diffusers DDIMScheduler vs tm.ddim (DiscreteTimeEpsModel, same timesteps)"
        lines.append(line(label, xo, zd, zd.abs().max().item()))
    return lines


def _peer_versions() -> str:
    found = []
    for dist, mod in (("smalldiffusion", "smalldiffusion"), ("k-diffusion", "k_diffusion"), ("diffusers", "diffusers")):
        m = _optional(mod)
        if m is not None:
            found.append(f"{dist} {importlib.metadata.version(dist)} ({Path(m.__file__).parent})")
    return "; ".join(found) or "none"


def _time_rounds(entries, repeats: int):
    """Interleaved timing: per round, every entry once in a rotated order (round 0 is a
    warm-up). Returns per-entry lists of CPU seconds, CPU ratios and wall ratios, each
    ratio against the model-only loop of the same round and the same number of calls."""
    names = list(entries)
    baseline_for = {k: f"model only ({k} calls)" for k, _ in entries.values()}
    cpu = {nm: [] for nm in names}
    ratio = {nm: [] for nm in names}
    wall_ratio = {nm: [] for nm in names}
    with torch.no_grad():
        for r in range(repeats + 1):
            order = names[r % len(names) :] + names[: r % len(names)]
            rc, rw = {}, {}
            for nm in order:
                fn = entries[nm][1]
                gc.collect()
                c0, t0 = time.thread_time(), time.perf_counter()
                fn()
                rw[nm] = time.perf_counter() - t0
                rc[nm] = time.thread_time() - c0
            if r == 0:
                continue
            for nm in names:
                base = baseline_for[entries[nm][0]]
                cpu[nm].append(rc[nm])
                ratio[nm].append(rc[nm] / rc[base])
                wall_ratio[nm].append(rw[nm] / rw[base])
    return cpu, ratio, wall_ratio


def _iqr(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[2]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=11, help="rounds with the real network")
    p.add_argument("--null-repeats", type=int, default=201, help="rounds with the null model (cheap)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: stable on a shared machine)")
    p.add_argument("--tol", type=float, default=1e-5, help="output agreement with peers (float32, relative)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    net = MLP().eval()
    for q in net.parameters():
        q.requires_grad_(False)
    sigmas = schedules.loglinear(40.0, 0.01, a.steps)
    x = 40.0 * torch.randn(a.batch, 2, generator=torch.Generator().manual_seed(0))
    entries = build_entries(net, sigmas, x)
    sched = entries.pop("_diffusers_sched", None)
    names = list(entries)
    cpu, ratio, wall_ratio = _time_rounds(entries, a.repeats)

    # The sampler's own cost, measured precisely: the same loops around a null model that
    # returns a fixed tensor (no arithmetic), minus the null model-only loop. Its ratio
    # estimate is 1 + overhead / (model-only time with the real network).
    eps_const = 0.01 * torch.randn(a.batch, 2, generator=torch.Generator().manual_seed(1))

    def null(x, c):
        return eps_const

    null_entries = build_entries(null, sigmas, x)
    null_entries.pop("_diffusers_sched", None)
    ncpu, _, _ = _time_rounds(null_entries, a.null_repeats)

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, B = {a.batch}, "
        f"{a.steps} steps (log-linear 40 -> 0.01); {a.repeats} rounds with the network, "
        f"{a.null_repeats} with a null model"
    )
    print(f"peers: {_peer_versions()}")
    print("direct: CPU time of the calling thread over the model-only loop's (same calls, same round),")
    print("        median over rounds [IQR]; wall = the same in wall-clock time")
    print("overhead: sampler loop around a null model minus the null model-only loop (median CPU ms);")
    print("        est. = 1 + overhead / median model-only CPU time with the network")
    print(
        f"{'sampler':30s} {'NFE':>4s} {'CPU ms':>8s} {'direct':>7s} {'IQR':>16s} {'wall':>6s}"
        f" {'overhead ms':>11s} {'est.':>7s}"
    )
    for nm in names:
        k = entries[nm][0]
        base = f"model only ({k} calls)"
        lo, hi = _iqr(ratio[nm])
        over = 1e3 * (statistics.median(ncpu[nm]) - statistics.median(ncpu[base]))
        est = 1 + over / (1e3 * statistics.median(cpu[base]))
        print(
            f"{nm:30s} {k:4d} {1e3 * statistics.median(cpu[nm]):8.2f} {statistics.median(ratio[nm]):7.3f}"
            f" [{lo:6.3f}, {hi:6.3f}] {statistics.median(wall_ratio[nm]):6.3f} {over:11.3f} {est:7.4f}"
        )
    missing = [m for m in ("smalldiffusion", "k_diffusion.sampling", "diffusers") if _optional(m) is None]
    if missing:
        print(f"not importable here (skipped): {', '.join(missing)}")
    if sched is not None:
        entries["_diffusers_sched"] = sched
    with torch.no_grad():
        for line in compare_outputs(net, sigmas, x, entries, a.tol):
            print(line)


if __name__ == "__main__":
    main()
