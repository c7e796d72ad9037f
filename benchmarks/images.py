"""Image sampler benchmark on the project's digits UNet (THEORY §5).

For a diffusers ``UNet2DModel`` trained on scikit-learn's 8×8 digits (trained here on
the CPU within a time budget when no checkpoint is given), compare at NFE 5, 10, 20
and 50:

- DDIM on the plain DDIM timestep grid ``σ(t_k)``, ``t_k = ⌊linspace(999, 0, N + 1)⌋``;
- DDIM on the paper's log-linear schedule (THEORY §5), to separate schedule and γ;
- gradient estimation (γ = 2) on the paper's schedule (σ_max = 40);
- Heun (EDM) and DPM-Solver++(2M) on a Karras schedule (σ 80 → 0.01, then 0).

Scores: the Fréchet distance between Gaussians fitted to the 128-d features of a
digits CNN trained here (its test accuracy is printed) for the samples and for all
1 797 digits; the share of samples labelled with confidence > 0.9; and the ODE error:
each sample's RMS per pixel against a 1 000-step DDIM solution of the probability-flow
ODE on the same σ range from the same noise, reported as the median over samples (the
typical sample, which falls with NFE for every sampler here) and as the RMS over samples
(dominated by the few samples whose ODE solution changes a lot under small errors).

    python benchmarks/images.py [--checkpoint DIR] [--device cuda] [--train-minutes 10 | --train-steps 6000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analysis.metrics as metrics
import toymanifold as tm
from toymanifold.images import GradientEstimationScheduler, from_diffusers
from toymanifold.images.classifier import load_classifier, save_classifier, train_classifier
from toymanifold.images.data import load_digits_images
from toymanifold.images.distributed import initial_noise
from toymanifold.images.train import digits_unet_config, load_unet, train_unet
from toymanifold.samplers import SAMPLERS, nfe

NFES = (5, 10, 20, 50)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_within(out: Path, minutes: float, device: torch.device, seed: int, batch: int) -> dict:
    """Calibrate the step time, then train for about ``minutes`` (hard stop at the budget)."""
    budget = 60.0 * minutes
    t0 = time.time()
    probe = train_unet(
        out / "probe", steps=12, checkpoint_every=0, device=device, progress=False, seed=seed, batch_size=batch
    )
    per_step = probe["seconds"] / 12
    spent = time.time() - t0
    steps = max(200, int(0.93 * (budget - spent - 15) / per_step))
    print(
        f"[train] {per_step * 1000:.0f} ms/step measured; training {steps} steps "
        f"(budget {minutes:.1f} min incl. calibration)",
        flush=True,
    )
    summary = train_unet(
        out,
        steps=steps,
        checkpoint_every=max(steps // 4, 1),
        device=device,
        seed=seed,
        batch_size=batch,
        max_seconds=budget - (time.time() - t0) - 5,
        progress=sys.stderr.isatty(),
    )
    summary["wall_total"] = time.time() - t0
    summary["planned_steps"] = steps
    return summary


def schedules_for(n: int, table: torch.Tensor) -> dict[str, tuple]:
    """``row label -> (registry entry, sigmas)`` at a budget of ``n`` model evaluations (``tm.samplers.SAMPLERS``)."""
    T = table.shape[0]
    grid = np.floor(np.linspace(T - 1, 0, n + 1)).astype(np.int64)
    ddim_grid = table[torch.from_numpy(grid)]
    ge = GradientEstimationScheduler(sigma_max=40.0)
    ge.set_timesteps(n)
    paper = ge.sigmas
    k_heun = (n + 1) // 2
    # karras(..., k, final_zero=True): k steps, the last one to σ = 0
    heun_s = tm.schedules.karras(80.0, 0.01, k_heun, final_zero=True)
    dpm_s = tm.schedules.karras(80.0, 0.01, n, final_zero=True)
    return {
        f"{SAMPLERS['ddim'].label} (DDIM grid)": (SAMPLERS["ddim"], ddim_grid),
        f"{SAMPLERS['ddim'].label} (paper sched.)": (SAMPLERS["ddim"], paper),
        f"{SAMPLERS['gradient_estimation'].label} (paper sched.)": (SAMPLERS["gradient_estimation"], paper),
        f"{SAMPLERS['heun'].label} (Karras)": (SAMPLERS["heun"], heun_s),
        f"{SAMPLERS['dpmpp_2m'].label} (Karras)": (SAMPLERS["dpmpp_2m"], dpm_s),
    }


@torch.no_grad()
def run_sampler(fn, den, sigmas, xi, kw, batch) -> torch.Tensor:
    outs = []
    for b in range(0, xi.shape[0], batch):
        x = float(sigmas[0]) * xi[b : b + batch]
        outs.append(fn(den, sigmas, x, **kw).float())
    return torch.cat(outs)


def reference(den, sig_hi: float, sig_lo: float, xi, batch, steps=1000) -> torch.Tensor:
    """1 000-step DDIM reference from ``σ_N = sig_hi`` to ``sig_lo`` (> 0), or to 0 via 1e-3."""
    if sig_lo > 0:
        s = tm.schedules.loglinear(sig_hi, sig_lo, steps)
    else:
        s = torch.cat([tm.schedules.loglinear(sig_hi, 1e-3, steps - 1), torch.zeros(1, dtype=torch.float64)])
    return run_sampler(tm.ddim, den, s, xi, {}, batch)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="a train-images output folder (skips training)")
    ap.add_argument("--out", default="out_images_benchmark")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-minutes", type=float, default=9.5)
    ap.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="train exactly this many steps instead of within --train-minutes (the same model on any machine load)",
    )
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--confidence-samples", type=int, default=500)
    ap.add_argument("--ode-samples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nfe", type=int, nargs="+", default=list(NFES))
    args = ap.parse_args(argv)

    dev = pick_device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, min(torch.get_num_threads(), int(os.environ.get("BENCH_THREADS", "1")))))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"device: {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), "
        f"torch threads: {torch.get_num_threads()}",
        flush=True,
    )

    # 1. the model
    if args.checkpoint is None:
        cpu0 = time.process_time()
        if args.train_steps is None:
            summary = train_within(out / "unet", args.train_minutes, dev, args.seed, args.train_batch)
        else:
            summary = train_unet(
                out / "unet",
                steps=args.train_steps,
                checkpoint_every=0,
                device=dev,
                seed=args.seed,
                batch_size=args.train_batch,
                progress=sys.stderr.isatty(),
            )
            summary["wall_total"] = summary["seconds"]
        print(
            f"[train] {summary['step']} steps, final loss {summary['loss']:.4f}, "
            f"{summary['wall_total'] / 60:.2f} min wall, {(time.process_time() - cpu0) / 60:.2f} min CPU time "
            f"(process), {summary['seconds'] / max(summary['step'], 1) * 1000:.0f} ms/step",
            flush=True,
        )
        ckpt = out / "unet"
    else:
        ckpt = Path(args.checkpoint)
    unet, sched_cfg = load_unet(ckpt, device=dev)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"UNet2DModel: {n_params / 1e6:.2f} M parameters, config {digits_unet_config()['block_out_channels']}")
    den = from_diffusers(unet, sched_cfg, data_shape=(1, 8, 8))
    table = den.sigmas

    # 2. the classifier
    t0 = time.time()
    clf, acc = train_classifier(seed=args.seed, device=dev)
    save_classifier(clf, out / "classifier", acc)
    clf, acc = load_classifier(out / "classifier", device=dev)
    print(f"[classifier] test accuracy {acc * 100:.2f}% on the held-out 20% split ({time.time() - t0:.1f} s)")

    x_all, _ = load_digits_images("all")

    def feats(x):
        with torch.no_grad():
            return torch.cat([clf.features(x[b : b + 1000].to(dev)).double().cpu() for b in range(0, len(x), 1000)])

    def confident(x):
        # a digit label (not the reject class 10) with probability > 0.9
        with torch.no_grad():
            p = torch.cat([clf.predict_proba(x[b : b + 1000].to(dev)).cpu() for b in range(0, len(x), 1000)])
        conf, label = p.max(1)
        return float(((conf > 0.9) & (label != clf.reject_class)).float().mean())

    f_all = feats(x_all)
    # The scored runs compare num_samples samples with all 1 797 digits; so does this reference:
    # num_samples of the training digits themselves (what a sampler that copied them would score).
    pick = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(args.seed))[: args.num_samples]
    fd_real = metrics.frechet_distance(f_all[pick], f_all)
    print(
        f"[reference] FD({len(pick)} of the digits, all {len(x_all)}) = {fd_real:.3f}; "
        f"real digits labelled with confidence > 0.9: {confident(x_all) * 100:.1f}%"
    )

    xi = initial_noise(range(args.num_samples), (1, 8, 8), seed=args.seed).to(dev)
    xi_ode = xi[: args.ode_samples]
    refs: dict[tuple[float, float], torch.Tensor] = {}
    rows = []
    t_start = time.time()
    for n in args.nfe:
        for name, (info, sig) in schedules_for(n, table).items():
            t0 = time.time()
            samples = run_sampler(info.run, den, sig, xi, {}, args.batch)
            dt = time.time() - t0
            key = (round(float(sig[0]), 9), round(float(sig[-1]), 9))
            if key not in refs:
                refs[key] = reference(den, float(sig[0]), float(sig[-1]), xi_ode, args.batch)
            per_sample = (samples[: args.ode_samples] - refs[key]).pow(2).flatten(1).mean(1).sqrt()
            ode_median, ode_rms = float(per_sample.median()), float(per_sample.pow(2).mean().sqrt())
            worst = per_sample.argsort(descending=True)[:3].tolist()
            fd = metrics.frechet_distance(feats(samples), f_all)
            conf = confident(samples[: args.confidence_samples])
            rows.append((n, name, nfe(info.name, sig), fd, conf, ode_median, ode_rms, dt))
            print(
                f"  NFE {n:>2} {name:<22} nfe={rows[-1][2]:>2} FD={fd:8.3f} conf>0.9={conf * 100:5.1f}% "
                f"ODE median {ode_median:.4f} RMS {ode_rms:.4f} (worst samples "
                f"{', '.join(f'{i}: {float(per_sample[i]):.3f}' for i in worst)}) ({dt:.1f} s)",
                flush=True,
            )

    print()
    print(
        f"Fréchet distance in digits-classifier feature space ({args.num_samples} samples vs 1797 digits; "
        f"classifier test accuracy {acc * 100:.2f}%; {len(pick)} real digits score FD {fd_real:.3f})"
    )
    print()
    print(
        f"| NFE | sampler | actual NFE | FD ↓ | conf > 0.9 (first {args.confidence_samples}) "
        f"| ODE error, median ↓ | ODE error, RMS ↓ |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, name, k, fd, conf, ode_median, ode_rms, _ in rows:
        print(f"| {n} | {name} | {k} | {fd:.3f} | {conf * 100:.1f}% | {ode_median:.4f} | {ode_rms:.4f} |")
    print()
    ge10 = [r for r in rows if r[0] == 10 and r[1].startswith("GE")]
    for ddim10 in (r for r in rows if r[0] == 10 and r[1].startswith("DDIM")):
        print(
            f"GE (NFE 10) FD {ge10[0][3]:.3f} vs {ddim10[1]} (NFE 10) FD {ddim10[3]:.3f}: "
            f"{'GE lower' if ge10[0][3] < ddim10[3] else 'GE NOT lower'}"
        )
    print(f"sampling + scoring time: {(time.time() - t_start) / 60:.2f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
