"""The experiments of the model report, one public function per part of ``results.json``.

Each ``*_section(ctx)`` takes the shared
:class:`~analysis.model_report.context.ModelReportContext` (the network, the training set
``K``, its ideal denoiser) and returns its own top-level entries of ``results.json``; the
figure functions of :mod:`analysis.model_figures` draw exactly those entries. The
measurements themselves are the functions of :mod:`analysis.model_report.measures`.

THEORY sections: §2 (``‖ε‖/√n``, ``η``, admissibility), §3 (Theorem 1), §4 (the finite-set
ideal denoiser and projection), §5 (samplers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..metrics import frechet_distance
from ..projection_error import eta_nu_curve
from .context import NFES, ModelReportContext
from .measures import (
    NEAR_COPY_RATIO,
    ideal_norm_band,
    near_copies,
    sampler_sweep,
    sampler_trajectory,
    theorem1_tracking,
    training_set_neighbours,
)

__all__ = [
    "NUS",
    "checks_section",
    "denoiser_norm_section",
    "memorisation_section",
    "model_section",
    "projection_error_section",
    "sampler_section",
    "theorem1_section",
]

_F64 = torch.float64
#: The admissibility levels ν at which η̂(ν) is reported and Theorem 1 is tried.
NUS = (1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0)
#: |r_t/r_N − 1| up to this counts as "r stays at its start" in the Theorem 1 summary.
TRACK_TOL = 0.1
#: |‖ε_θ‖/‖ε*‖ − 1| up to this counts as "the network and the ideal denoiser agree" (section 1).
RATIO_TOL = 0.05
#: Steps of the log-linear grid that the ODE reference of section 5 refines (``ref_refine`` sub-steps each).
REF_STEPS = 50


def _quantiles(v: torch.Tensor, q=(0.1, 0.5, 0.9)) -> dict[str, list[float]]:
    """Per-row 10%, 50% and 90% quantiles and mean of a ``(T, B)`` tensor (NaN ignored)."""
    v = v.to(_F64)
    qs = torch.nanquantile(v, torch.tensor(q, dtype=_F64), dim=1)
    return {"lo": qs[0].tolist(), "median": qs[1].tolist(), "hi": qs[2].tolist(), "mean": v.nanmean(1).tolist()}


def _images(x: torch.Tensor, count: int) -> list:
    """The first ``count`` images as nested lists ``(count, C, H, W)``, 4 decimals (for figures)."""
    return np.round(x[:count].to(torch.float32).cpu().numpy().astype(np.float64), 4).tolist()


# --------------------------------------------------------------------------- the model and K


def model_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``model`` (the network and its σ table), ``data`` (``K``: size, n, radius) and ``runs`` (the DDIM schedule)."""
    sz = ctx.sizes
    sig = ctx.schedule(sz.traj_steps)
    return {
        "model": ctx.model_info(),
        "data": ctx.data_info(),
        "runs": {
            "schedule": "log-linear",
            "steps": sz.traj_steps,
            "sigma_max": float(sig[0]),
            "sigma_min": float(sig[-1]),
            "batch": sz.traj_batch,
            "rho": float(sig[0] / sig[1]),
        },
    }


# --------------------------------------------------------------------------- 1. ‖ε‖/√n


def denoiser_norm_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``denoiser_norm`` (section 1): ``‖ε‖/√n`` along DDIM for the network and ``K``'s ideal denoiser (THEORY §2).

    Each denoiser along its own DDIM runs from the same starts ``σ_N ξ``; the ratio
    ``‖ε_θ‖/‖ε*‖`` at the network's iterates; the band ``‖ε*‖/√n`` must lie in
    (:func:`~analysis.model_report.measures.ideal_norm_band`) and the largest per-sample
    deviation ``|‖ε*_t‖ − ‖ξ‖|/√n`` the band's derivation bounds by ``Δ_t/√n``.
    """
    runs = ctx.runs()
    sig = runs["sigmas"]
    net, ide = runs["network_errors"], runs["ideal_errors"]
    band = ideal_norm_band(ctx.K, sig)
    xi_norm = torch.linalg.vector_norm(runs["xi"].reshape(runs["xi"].shape[0], -1), dim=1) / math.sqrt(ctx.n)
    deviation = (ide.eps_norm - xi_norm[None]).abs().max(1).values
    delta = torch.tensor(band["delta"], dtype=_F64)
    ratio = net.eps_norm / net.eps_norm_ideal
    ideal_mean = ide.eps_norm.mean(1)
    ratio_med = ratio.median(1).values
    off = torch.nonzero((ratio_med - 1).abs() > RATIO_TOL)
    agree_idx = int(off[0]) - 1 if off.numel() else ratio_med.shape[0] - 1
    return {
        "denoiser_norm": {
            "n": ctx.n,
            "sigma": sig[:-1].tolist(),
            "network": _quantiles(net.eps_norm),
            "ideal": _quantiles(ide.eps_norm),
            "ratio": _quantiles(ratio),
            "band": band,
            "batch": int(xi_norm.shape[0]),
            "xi_norm_mean": float(xi_norm.mean()),
            "ideal_max_deviation": deviation.tolist(),
            "ideal_within_derived_bound": bool((deviation <= delta * (1 + 1e-9) + 1e-12).all()),
            "ideal_mean_in_band": bool(
                ((ideal_mean >= torch.tensor(band["lo"])) & (ideal_mean <= torch.tensor(band["hi"]))).all()
            ),
            "ratio_tol": RATIO_TOL,
            "agree_down_to_sigma": float(sig[agree_idx]) if agree_idx >= 0 else None,
            "at_sigma_min": {
                "network": float(net.eps_norm[-1].median()),
                "ideal": float(ide.eps_norm[-1].median()),
                "ratio": float(ratio_med[-1]),
            },
            "network_at_sigma_max": {
                "median": float(net.eps_norm[0].median()),
                "lo": float(torch.quantile(net.eps_norm[0], 0.1)),
                "hi": float(torch.quantile(net.eps_norm[0], 0.9)),
            },
        }
    }


# --------------------------------------------------------------------------- 2. η̂ and ν


def _histogram(sigma: np.ndarray, eta: np.ndarray, eta_edges: np.ndarray) -> tuple[list, list]:
    """``(counts, sigma_edges)`` of the ``(σ_t, η)`` pairs: one σ column per step (edges at the geometric
    midpoints), ``eta_edges`` rows; η outside the range is counted in the first or last row."""
    mid = np.sqrt(sigma[:-1] * sigma[1:])
    sigma_edges = np.concatenate([[sigma[0] ** 2 / mid[0]], mid, [sigma[-1] ** 2 / mid[-1]]])[::-1].copy()
    ok = np.isfinite(eta)
    ee = np.clip(eta[ok], eta_edges[0], eta_edges[-1] * (1 - 1e-12))
    ss = np.broadcast_to(sigma[:, None], eta.shape)[ok]
    counts, _, _ = np.histogram2d(ss, ee, bins=[sigma_edges, eta_edges])
    return counts.tolist(), sigma_edges.tolist()


def projection_error_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``eta_sigma`` and ``eta_nu`` (section 2): the network's η along its DDIM runs (THEORY §2).

    Against projection onto ``K`` (``η = ‖x̂0_θ − proj_K(x)‖/dist_K(x)``) and against
    ``K``'s ideal denoiser (``‖x̂0_θ − x̂0*‖/dist_K(x)``), as histograms over σ with
    shared bins; the ideal denoiser's own η at the same points; the admissibility
    ``ν(x, σ) = max(r, 1/r)`` per step; and ``η̂(ν)`` (maximum and 90% quantile over the
    ν-admissible pairs).
    """
    runs = ctx.runs()
    sig = runs["sigmas"][:-1].numpy()
    net = runs["network_errors"]
    kinds = {"projection": net.network, "ideal denoiser": net.versus_ideal}
    pos = np.concatenate([e.eta.numpy().ravel() for e in kinds.values()])
    pos = pos[np.isfinite(pos) & (pos > 0)]
    lo = 10.0 ** math.floor(math.log10(max(pos.min(), 1e-8)))
    hi = 10.0 ** math.ceil(math.log10(max(pos.max(), lo * 10)))
    eta_edges = np.logspace(math.log10(lo), math.log10(hi), 41)
    hist = {}
    for name, e in kinds.items():
        counts, sigma_edges = _histogram(sig, e.eta.numpy(), eta_edges)
        hist[name] = {"counts": counts, "median": torch.nanquantile(e.eta, 0.5, dim=1).tolist()}
    r = net.network.r
    nu = torch.maximum(r, 1.0 / r)
    ideal_eta = net.ideal.eta
    table: dict[str, Any] = {"nus": list(NUS), "max": {}, "q90": {}, "count": {}}
    for name, e in {**kinds, "ideal's own η": net.ideal}.items():
        table["max"][name] = eta_nu_curve(e, NUS).eta_hat.tolist()
        table["q90"][name] = eta_nu_curve(e, NUS, quantile=0.9).eta_hat.tolist()
        table["count"][name] = eta_nu_curve(e, NUS).count.tolist()
    # Three noise levels the reading quotes: the start, the step nearest σ = 1, and the end.
    picks = [0, int(np.argmin(np.abs(np.log(sig)))), len(sig) - 1]
    summary = {"sigma": [float(sig[i]) for i in picks]}
    for name, e in {**kinds, "ideal's own η": net.ideal}.items():
        med = torch.nanquantile(e.eta, 0.5, dim=1)
        summary[name] = [float(med[i]) for i in picks]
    return {
        "eta_sigma": {
            "summary": summary,
            "sigma": sig.tolist(),
            "sigma_edges": sigma_edges,
            "eta_edges": eta_edges.tolist(),
            "eta_floor": lo,
            "against": hist,
            "ideal_eta_median": torch.nanquantile(ideal_eta, 0.5, dim=1).tolist(),
            "nu": _quantiles(nu) | {"max": nu.max(1).values.tolist()},
            "pairs": int(r.numel()),
        },
        "eta_nu": table,
    }


# --------------------------------------------------------------------------- 3. Theorem 1


def theorem1_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``theorem1`` (section 3): ``r_t`` along the network's DDIM runs against Theorem 1's envelope (THEORY §3).

    For each ν of :data:`NUS`, Theorem 1 with the network's measured ``η̂`` on every cut of
    the schedule (:func:`~analysis.model_report.measures.theorem1_tracking`): how far down
    in σ it certifies all runs. The ν certifying the longest stretch is drawn. Measured
    besides: down to which σ the median ``r_t`` stays within ``TRACK_TOL`` of ``r_N``,
    where each run's ``r_t`` leaves the admissible band ``[1/ν, ν]``, and ``r_t`` of the
    ideal denoiser's runs from the same starts.
    """
    runs = ctx.runs()
    sig = runs["sigmas"]
    N = sig.shape[0] - 1
    net, ide = runs["network_errors"], runs["ideal_errors"]
    tried, best = [], None
    for nu in NUS:
        tr = theorem1_tracking(net, sig, nu)
        k = tr.certified_steps
        tried.append(
            {
                "nu": nu,
                "certified_steps": k,
                "certified_down_to_sigma": float(sig[k]) if bool(tr.certified[0]) else None,
                "eta_hat_there": float(tr.eta_hat[k]) if k > 0 else None,
                "eta_hat_whole_run": float(eta_nu_curve(net.network, [nu]).eta_hat[0]),
            }
        )
        if best is None or k > best.certified_steps:
            best = tr
    r = net.r_all
    rel = (r / r[0]).median(1).values
    off = torch.nonzero((rel - 1).abs() > TRACK_TOL)
    track_idx = int(off[0]) - 1 if off.numel() else N
    first = best.first_inadmissible
    left = first <= N
    leave_sigma = sig[first.clamp(max=N)][left]
    above = left & (r[first.clamp(max=N), torch.arange(r.shape[1])] > best.nu)
    k = best.certified_steps
    return {
        "theorem1": {
            "sigma": sig.tolist(),
            "tried": tried,
            "nu": best.nu,
            "eta_hat": best.eta_hat.tolist(),
            "L": best.L.tolist(),
            "U": best.U.tolist(),
            "certified": best.certified.tolist(),
            "certified_steps": k,
            "certified_down_to_sigma": float(sig[k]) if bool(best.certified[0]) else None,
            "eta_hat_certified": float(best.eta_hat[k]) if k > 0 else None,
            "inside_where_certified": bool(best.inside[best.certified].all()),
            "inside_fraction": best.inside.to(_F64).mean(1).tolist(),
            "rel": _quantiles(r / r[0]),
            "rel_ideal": _quantiles(ide.r_all / ide.r_all[0]),
            "runs_shown": (r[:, : ctx.sizes.traj_shown] / r[0, : ctx.sizes.traj_shown]).T.tolist(),
            "r_N": _quantiles(r[:1]) | {"min": float(r[0].min()), "max": float(r[0].max())},
            "eta": _quantiles(net.network.eta),
            "eta_ideal": _quantiles(ide.network.eta),
            "track_tol": TRACK_TOL,
            "tracks_down_to_sigma": float(sig[max(track_idx, 0)]),
            "leave_admissible": {
                "fraction": float(left.to(_F64).mean()),
                "above_fraction": float(above.to(_F64).mean()),
                "sigma_median": float(leave_sigma.median()) if left.any() else None,
                "sigma_max": float(leave_sigma.max()) if left.any() else None,
                "sigma_min": float(leave_sigma.min()) if left.any() else None,
            },
            "r_final": {"network_median": float(r[-1].median()), "ideal_median": float(ide.r_all[-1].median())},
        }
    }


# --------------------------------------------------------------------------- 4. memorisation


def memorisation_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``memorisation`` (section 4): distances of samples to the nearest training image, and near copies.

    The network's DDIM samples (``gen_samples`` of them), the ideal denoiser's DDIM
    samples (it reproduces training images: the memorisation reference) and the training
    set's own leave-one-out nearest-neighbour distances. Near copy: ``d1 < d2/3``
    (:func:`~analysis.model_report.measures.near_copies`).
    """
    sz, runs = ctx.sizes, ctx.runs()
    sig = runs["sigmas"]
    x = float(sig[0]) * ctx.noise(sz.gen_samples, 2)
    samples = sampler_trajectory(
        ctx.denoiser, sig, x, batch_size=sz.batch, progress=ctx.config.progress, desc="DDIM samples"
    ).xs[-1]
    ideal_samples = runs["ideal"].xs[-1]
    show = ctx.config.progress
    groups = {
        "network": near_copies(samples, ctx.K, device=ctx.device, progress=show),
        "ideal denoiser": near_copies(ideal_samples, ctx.K, device=ctx.device),
        "training set": training_set_neighbours(
            ctx.K, subset=sz.nn_reference, generator=ctx.gen(3), device=ctx.device, progress=show
        ),
    }
    shown = min(sz.shown, samples.shape[0])
    net = groups["network"]
    return {
        "memorisation": {
            "threshold": NEAR_COPY_RATIO,
            "groups": {
                name: {
                    "count": int(g.d1.numel()),
                    "d1": g.d1.tolist(),
                    "ratio": g.ratio.tolist(),
                    "share": g.share,
                    "d1_median": float(g.d1.median()),
                }
                for name, g in groups.items()
            },
            "final_noise": ctx.sigma_min * math.sqrt(ctx.n),
            "shown": {
                "samples": _images(samples, shown),
                "nearest": _images(ctx.images[net.nearest[:shown]], shown),
                "d1": net.d1[:shown].tolist(),
                "ratio": net.ratio[:shown].tolist(),
            },
            "distinct_nearest": int(torch.unique(net.nearest).numel()),
        }
    }


# --------------------------------------------------------------------------- 5. samplers


def _digits_scorer(ctx: ModelReportContext):
    """A Fréchet distance in the digits classifier's features, and what the data itself scores at the same size."""
    from toymanifold.images.classifier import train_classifier

    sz = ctx.sizes
    clf, acc = train_classifier(
        epochs=sz.classifier_epochs, seed=ctx.config.seed, device=ctx.device, progress=ctx.config.progress
    )

    @torch.no_grad()
    def features(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=ctx.device, dtype=torch.float32)
        return torch.cat([clf.features(x[b : b + 1000]).double().cpu() for b in range(0, x.shape[0], 1000)])

    data_features = features(ctx.images)
    # A perfect generator of the training distribution at the same sample size: digits drawn with replacement.
    idx = torch.randint(len(ctx.K), (sz.cmp_samples,), generator=ctx.gen(4))
    reference = frechet_distance(data_features[idx], data_features)

    def score(samples: torch.Tensor) -> dict[str, float]:
        return {"fd": frechet_distance(features(samples), data_features)}

    info = {"classifier_test_accuracy": acc, "classifier_epochs": sz.classifier_epochs, "fd_data_same_size": reference}
    return score, info


def sampler_section(ctx: ModelReportContext) -> dict[str, Any]:
    """``samplers`` (section 5): the deterministic registry samplers at 5, 10, 20, 50 model evaluations (THEORY §5).

    Every sampler on the same log-linear schedule family from ``σ_max`` to ``σ(0)`` and the
    same starts; ODE error (RMS per pixel) against Heun on a log-linear grid of ``REF_STEPS``
    steps over the same range, refined ``ref_refine`` times, with the same denoiser (the same
    σ → timestep mapping); for digits, the Fréchet distance in the digits classifier's
    features against all training digits.
    """
    sz = ctx.sizes
    score, info = (None, {"fd_unavailable": "no offline feature network for this data set"})
    if ctx.config.data == "digits":
        score, info = _digits_scorer(ctx)
    xi = ctx.noise(sz.cmp_samples, 5)
    sweep = sampler_sweep(
        ctx.denoiser,
        xi,
        ctx.schedule,
        ctx.schedule(REF_STEPS),
        nfes=NFES,
        score=score,
        ode_samples=sz.ode_samples,
        refine=sz.ref_refine,
        batch_size=sz.batch,
        progress=ctx.config.progress,
    )
    sweep["schedule"] = f"log-linear σ {ctx.sigma_max:g} → {ctx.sigma_min:.3g}"
    sweep["metrics"] = ["ode_error"] + (["fd"] if score is not None else [])
    return {"samplers": sweep | info}


# --------------------------------------------------------------------------- summary


def checks_section(results: dict[str, Any]) -> dict[str, Any]:
    """``checks``: the summary table. ``kind`` says whether a row is a finding or holds by construction."""
    dn, th, mem, smp = results["denoiser_norm"], results["theorem1"], results["memorisation"], results["samplers"]
    rows = [
        {
            "check": "ideal denoiser: |‖ε*_t‖ − ‖ξ‖| ≤ Δ_t for every run and step, and the mean ‖ε*_t‖/√n in the "
            "widened χ band",
            "value": f"{len(dn['sigma'])} steps × {dn['batch']} runs",
            "holds": dn["ideal_within_derived_bound"] and dn["ideal_mean_in_band"],
            "kind": "check of the derivation",
        },
        {
            "check": "network: median ‖ε_θ‖/√n at σ_max (the paper: close to 1)",
            "value": dn["network_at_sigma_max"]["median"],
            "holds": abs(dn["network_at_sigma_max"]["median"] - 1.0) < 0.1,
            "kind": "finding",
        },
    ]
    if th["certified_down_to_sigma"] is not None:
        rows.append(
            {
                "check": "DDIM runs inside Theorem 1's envelope where it is certified",
                "value": f"ν = {th['nu']:g}, down to σ = {th['certified_down_to_sigma']:.3g}",
                "holds": th["inside_where_certified"],
                "kind": "by construction (η̂ is the maximum over these pairs)",
            }
        )
    rows.append(
        {
            "check": f"median r_t within ±{th['track_tol']:.0%} of r_N",
            "value": f"down to σ = {th['tracks_down_to_sigma']:.3g}",
            "holds": None,
            "kind": "finding",
        }
    )
    for name in ("network", "ideal denoiser"):
        g = mem["groups"][name]
        rows.append(
            {
                "check": f"near copies among the {name}'s samples (d1 < d2/3)",
                "value": f"{g['share']:.1%} of {g['count']}",
                "holds": None,
                "kind": "finding" if name == "network" else "reference (memorises by construction)",
            }
        )
    finite = all(
        v is not None and math.isfinite(v) for s in smp["samplers"].values() for m in smp["metrics"] for v in s[m]
    )
    rows.append({"check": "every sampler × budget number finite", "value": "", "holds": finite, "kind": "sanity"})
    ode = {label: s["ode_error"] for label, s in smp["samplers"].items()}
    rows.append(
        {
            "check": "ODE error falls from 5 to 50 model evaluations for every sampler",
            "value": ", ".join(f"{k}: {v[0]:.3g} → {v[-1]:.3g}" for k, v in ode.items()),
            "holds": all(v[-1] < v[0] for v in ode.values()),
            "kind": "finding",
        }
    )
    return {"checks": rows}
