"""The main job behind ``toymanifold report``: experiments, ``results.json``, figures and ``report.html``.

:func:`run_report` runs every experiment of the report and returns a JSON-able ``dict``
(every number the report shows); :func:`write_report` turns that dict into
``results.json``, ``figures/*.png`` (through :mod:`analysis.figures`, which never
re-runs an experiment) and a self-contained ``report.html`` (PNGs embedded as base64,
plotly inlined, so it opens offline).

What is measured (sections of docs/theory.md in brackets):

1. A small σ-conditioned MLP denoiser is trained on ``E‖ε_θ(x0 + σε, σ) − ε‖²`` (§1).
2. ``r`` and ``η(x, σ)`` on noisy samples ``x0 + σε`` for the exact projection, the
   closed-form ideal denoiser (§4), the trained MLP and a ``PerturbedProjectionDenoiser``
   with known ``η``; the empirical ``η̂(ν)`` (§2).
3. DDIM trajectories of the ideal denoiser and the MLP: ``‖ε‖/√n`` (§2, concentration)
   and ``η(x_t, σ_t)`` with the admissibility ``max(r, 1/r)`` along the way (§2).
4. DDIM with ``PerturbedProjectionDenoiser(η)`` (modes random/outward/inward) and the
   exact projection against Theorem 1's envelope, and Lemma 1 at every step (§3).
5. DDIM, DDPM, gradient estimation (γ = 2 and a γ sweep), Heun and DPM-Solver++(2M) at
   equal model evaluations (5, 10, 20, 50) on the paper's schedule construction (§5),
   by ODE error against a fine Heun reference from the same noise, mean ``dist_K`` and
   MMD² to true samples.
6. :func:`analysis.suggest_schedule` (Corollary 2) against the paper's schedule.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import toymanifold as tm

from . import figures as F
from ._common import jsonable
from .bounds import check_trajectory, suggest_schedule, theorem1_bounds
from .metrics import mean_distance, median_bandwidth, mmd_rbf, ode_error, ode_reference
from .projection_error import eta_nu_curve, projection_error, trajectory_error

__all__ = ["NFES", "SAMPLERS", "ReportConfig", "make_manifold", "run_report", "toy_paper_schedule", "write_report"]

#: Model-evaluation budgets compared (THEORY §5: the paper reports 5, 10, 20 and 50).
NFES = (5, 10, 20, 50)
#: Samplers compared, in table order.
SAMPLERS = ("DDIM", "DDPM", "GE (γ=2)", "Heun", "DPM++(2M)")
#: Relative error of the ``PerturbedProjectionDenoiser`` runs (Theorem 1's η).
PERTURBED_ETA = 0.1
#: The last noise level of every schedule: ``σ(t = 0)`` of the DDPM table (THEORY §5, step 3).
_F64 = torch.float64


@dataclass
class ReportConfig:
    """Options of ``toymanifold report`` (see :mod:`analysis.cli`).

    ``steps`` is the number of MLP training steps (``None``: 1500, or 100 with ``quick``);
    ``ambient_dim`` is ``n`` (``None``: 64, the base manifold embedded isometrically).
    """

    manifold: str = "sphere"
    ambient_dim: int | None = None
    steps: int | None = None
    seed: int = 0
    device: str = "cpu"
    quick: bool = False
    progress: bool = True


@dataclass(frozen=True)
class _Sizes:
    train_steps: int
    train_batch: int
    hidden: int
    depth: int
    pe_sigmas: int  # noise levels of the (η, ν) sweep
    pe_samples: int  # pairs per noise level
    traj_batch: int  # DDIM trajectories for figures 1 and 3
    traj_steps: int
    env_batch: int  # trajectories per Theorem 1 run
    env_steps: int
    cmp_batch: int  # samples per sampler run
    ref_refine: int  # Heun sub-steps per step of the 50-step reference grid
    ideal_cmp_batch: int
    show_traj: int  # trajectories drawn in figure 6
    gammas: tuple[float, ...]


def _sizes(cfg: ReportConfig) -> _Sizes:
    if cfg.quick:
        return _Sizes(cfg.steps or 100, 128, 64, 2, 10, 48, 48, 20, 6, 12, 128, 4, 96, 8, (1.0, 1.5, 2.0, 2.5, 3.0))
    return _Sizes(
        cfg.steps or 1500,
        256,
        128,
        3,
        24,
        256,
        256,
        50,
        16,
        20,
        256,
        8,
        256,
        12,
        (1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0),
    )


# --------------------------------------------------------------------------- manifolds


@dataclass
class _ManifoldInfo:
    name: str
    description: str
    manifold: tm.Manifold
    coords: Any  # callable x (B, n) -> (B, k) plot coordinates
    coord_names: list[str]
    curve: bool  # the base is a curve: draw it as a line
    background: torch.Tensor  # points of K in plot coordinates


def _base_manifold(name: str):
    if name == "sphere":
        return tm.Sphere(2), "S² of radius 1"
    if name == "circle":
        return tm.Circle(), "circle of radius 1"
    if name == "torus":
        return tm.Torus(1.0, 0.4), "torus R = 1, r = 0.4"
    if name == "spiral":
        return tm.Spiral(scale=0.1), "Archimedean spiral 0.1θ(cos θ, sin θ), θ ∈ [1.5π, 4.5π]"
    if name == "swissroll":
        return tm.SwissRoll(scale=0.1, height=2.0), "Swiss roll (spiral 0.1θ, θ ∈ [1.5π, 4.5π]) × [0, 2]"
    return None, ""


def make_manifold(cfg: ReportConfig) -> _ManifoldInfo:
    """The data set ``K`` named by ``cfg.manifold`` in ``R^n`` (``n = cfg.ambient_dim`` or 64).

    Curves and surfaces are embedded isometrically (``tm.Embedded``, frame seeded by
    ``cfg.seed``) when ``n`` exceeds their own dimension; plots use the base
    manifold's coordinates ``Qᵀx``. Raises ``ValueError`` for an ``n`` the family cannot take.
    """
    name = cfg.manifold
    n = 64 if cfg.ambient_dim is None else int(cfg.ambient_dim)
    base, desc = _base_manifold(name)
    if base is not None:
        m = base.ambient_dim
        if n < m:
            raise ValueError(f"--ambient-dim must be >= {m} for {name} (it lives in R^{m}), got {n}")
        curve = base.intrinsic_dim == 1
        names = [f"$y_{i + 1}$" for i in range(m)]
        if n == m:
            K = base
            coords = _identity
            label = f"{desc} in R^{m}"
        else:
            K = tm.Embedded(base, n, seed=cfg.seed)
            coords = K.to_base
            label = f"{desc}, embedded isometrically in R^{n} (random frame, seed {cfg.seed})"
            names = [f"$y_{i + 1}=(Q^\\top x)_{i + 1}$" for i in range(m)]
        g = torch.Generator().manual_seed(10_000 + cfg.seed)
        if curve:
            bg = base.project(base.sample(4000, g))
            bg = _order_curve(base, bg)
        else:
            bg = base.sample(2500 if m == 3 else 1500, g)
        return _ManifoldInfo(name, label, K, coords, names, curve, bg)
    if name == "subspace":
        if n < 2:
            raise ValueError(f"--ambient-dim must be >= 2 for subspace (a plane), got {n}")
        K = tm.AffineSubspace.random(2, n, seed=cfg.seed)

        def coords(x):
            return (torch.as_tensor(x, dtype=_F64) - K.offset) @ K.basis.T

        g = torch.Generator().manual_seed(10_000 + cfg.seed)
        bg = coords(K.sample(1500, g))
        return _ManifoldInfo(
            name, f"random plane in R^{n} with data N(0, P)", K, coords, ["$b_1^\\top x$", "$b_2^\\top x$"], False, bg
        )
    if name == "finite":
        if n < 3:
            raise ValueError(f"--ambient-dim must be >= 3 for finite (points of S² in R^n), got {n}")
        emb = tm.Embedded(tm.Sphere(2), n, seed=cfg.seed) if n > 3 else None
        src = emb if emb is not None else tm.Sphere(2)
        pts = src.sample(64, torch.Generator().manual_seed(20_000 + cfg.seed))
        K = tm.FiniteSet(pts)
        coords = emb.to_base if emb is not None else _identity
        return _ManifoldInfo(
            name,
            f"64 points drawn uniformly from S² (embedded in R^{n}), as a finite set",
            K,
            coords,
            [f"$y_{i + 1}$" for i in range(3)],
            False,
            coords(pts),
        )
    if name == "digits":
        if n != 64:
            raise ValueError(f"--ambient-dim must be 64 for digits (8×8 images), got {n}")
        K = tm.datasets.digits()
        pts = K.points
        mean = pts.mean(0)
        _, _, vt = torch.linalg.svd(pts - mean, full_matrices=False)
        pcs = vt[:2]

        def coords(x):
            return (torch.as_tensor(x, dtype=_F64) - mean) @ pcs.T

        return _ManifoldInfo(
            name,
            "scikit-learn's 1797 8×8 digits in [−1, 1]^64, as a finite set",
            K,
            coords,
            ["PC 1", "PC 2"],
            False,
            coords(pts),
        )
    raise ValueError(f"unknown manifold {name!r}")


def _identity(x):
    return torch.as_tensor(x, dtype=_F64)


def _order_curve(base, pts: torch.Tensor) -> torch.Tensor:
    """Order points of a closed or open planar curve for drawing as a line."""
    if isinstance(base, tm.Sphere):  # circle: by angle, closed
        ang = torch.atan2(pts[:, 1], pts[:, 0])
        p = pts[torch.argsort(ang)]
        return torch.cat([p, p[:1]])
    if isinstance(base, tm.Spiral):  # spiral: by θ recovered from radius r = bθ
        r = torch.linalg.vector_norm(pts, dim=1)
        return pts[torch.argsort(r)]
    return pts


# --------------------------------------------------------------------------- helpers


def toy_paper_schedule(n_steps: int, sigma_max: float) -> torch.Tensor:
    """The paper's schedule construction (THEORY §5) with the toy data's ``σ_max``.

    Steps 1–3 of THEORY §5 exactly as :func:`toymanifold.schedules.paper` builds them
    (``σ_end = √(σ(t_{N−1}) σ(0))`` from the DDPM grid, ``N`` log-linear sigmas from
    ``σ_max`` to ``σ_end``, then a final ``σ(0) ≈ 0.01``), with ``σ_max`` chosen for the
    data's scale instead of CIFAR-10's 40. ``N + 1`` sigmas, ``N`` model evaluations.
    """
    ref, _ = tm.schedules.paper(n_steps, "cifar10")
    sigma_end, final = float(ref[-2]), float(ref[-1])
    head = tm.schedules.loglinear(sigma_max, sigma_end, n_steps - 1) if n_steps > 1 else torch.tensor([sigma_max])
    return torch.cat([head, torch.tensor([final], dtype=_F64)])


class _Float64Model:
    """Evaluate a (float32, maybe on a GPU) MLP on float64 CPU input: ``ε`` in float64 on the CPU."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.ambient_dim = model.ambient_dim

    def __call__(self, x, sigma):
        with torch.no_grad():
            dtype = self.model._param().dtype
            xin = x.to(device=self.device, dtype=dtype)
            s = sigma if isinstance(sigma, float) else torch.as_tensor(sigma).to(self.device, dtype)
            return self.model(xin, s).to(device=x.device, dtype=x.dtype)


def _stats(values: torch.Tensor, q=(0.1, 0.9)) -> dict[str, list[float]]:
    """Per-row mean and quantiles of a ``(T, B)`` tensor."""
    v = values.to(_F64)
    return {
        "mean": v.mean(1).tolist(),
        "lo": torch.quantile(v, q[0], dim=1).tolist(),
        "hi": torch.quantile(v, q[1], dim=1).tolist(),
    }


def _round_sig(x: float, digits: int = 2) -> float:
    if x <= 0 or not math.isfinite(x):
        return x
    p = digits - 1 - math.floor(math.log10(x))
    return round(x, p)


class _Stages:
    """A stage progress bar (tqdm) that can be turned off."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="report", disable=not enabled, leave=False)
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 3)
        self._t = now
        self.bar.set_postfix_str(name)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


# --------------------------------------------------------------------------- experiments


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    """Run every experiment of the report and return the results as a JSON-able dict.

    The dict has one section per figure (the exact input of the figure function) plus
    tables and checks; :func:`write_report` writes it. Deterministic for a given
    ``cfg`` on a given device (all randomness comes from ``cfg.seed``).
    """
    device = torch.device(cfg.device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # Every tensor here is small (batches of a few hundred points, widths of ~100):
        # one thread is fastest and does not oversubscribe a shared machine.
        torch.set_num_threads(1)
    try:
        return _run_report(cfg, device)
    finally:
        torch.set_num_threads(threads)


def _run_report(cfg: ReportConfig, device: torch.device) -> dict[str, Any]:
    t_start = time.perf_counter()
    sz = _sizes(cfg)
    info = make_manifold(cfg)
    K = info.manifold
    n, d = K.ambient_dim, K.intrinsic_dim
    seed = cfg.seed
    stages = _Stages(9, cfg.progress)

    def gen(k: int) -> torch.Generator:
        return torch.Generator().manual_seed(1_000_003 * seed + k)

    data = K.sample(sz.cmp_batch, gen(1))  # true samples (MMD reference)
    r_rms = float(data.square().sum(1).mean().sqrt())
    sigma_max = _round_sig(10.0 * r_rms)
    sigma_final = float(tm.schedules.ddpm_sigmas()[0])  # σ(t = 0) ≈ 0.01
    sigma_train = (0.5 * sigma_final, sigma_max)

    # 1. train the MLP ------------------------------------------------------------------
    torch.manual_seed(seed)
    model = tm.MLPDenoiser(n, hidden=sz.hidden, depth=sz.depth).to(device)
    t0 = time.perf_counter()
    losses = tm.train_denoiser(
        model,
        K,
        steps=sz.train_steps,
        batch_size=sz.train_batch,
        sigma_min=sigma_train[0],
        sigma_max=sigma_train[1],
        seed=seed,
        progress=cfg.progress,
    )
    train_s = time.perf_counter() - t0
    mlp = _Float64Model(model, device)
    stages.done("train")

    try:
        ideal = tm.ideal_denoiser(K)
        ideal_label = "ideal"
        ideal_note = "closed form (THEORY §4)"
    except TypeError:
        ideal = tm.ideal_denoiser(tm.FiniteSet(K.sample(2000, gen(2))))
        ideal_label = "ideal"
        ideal_note = (
            "no closed form for this family: the ideal denoiser of 2000 samples "
            "(finite-set formula, THEORY §4 — it memorises them)"
        )
    denoisers = {
        "projection": tm.ProjectionDenoiser(K),
        ideal_label: ideal,
        "MLP": mlp,
        f"perturbed (η={PERTURBED_ETA:g})": tm.PerturbedProjectionDenoiser(K, PERTURBED_ETA, mode="random", seed=seed),
    }

    # 2. (η, ν) on noisy samples ---------------------------------------------------------
    pe_sigmas = torch.logspace(math.log10(sigma_final), math.log10(sigma_max), sz.pe_sigmas, dtype=_F64)
    nus = [1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0]
    eta_nu: dict[str, Any] = {"nus": nus, "statistic": "max", "denoisers": {}, "q99": {}, "count": {}}
    pe_summary = {}
    for name, den in denoisers.items():
        errs = projection_error(den, K, pe_sigmas, sz.pe_samples, generator=seed + 2)
        curve = eta_nu_curve(errs, nus)
        q99 = eta_nu_curve(errs, nus, quantile=0.99)
        eta_nu["denoisers"][name] = curve.eta_hat.tolist()
        eta_nu["q99"][name] = q99.eta_hat.tolist()
        eta_nu["count"][name] = curve.count.tolist()
        eta = errs.eta[torch.isfinite(errs.eta)]
        pe_summary[name] = {
            "pairs": len(errs),
            "eta_median": float(eta.median()),
            "eta_max": float(eta.max()),
            "r_min": float(errs.r.min()),
            "r_max": float(errs.r.max()),
        }
    eta_nu["pairs_per_denoiser"] = sz.pe_sigmas * sz.pe_samples
    eta_nu["sigma_range"] = [float(pe_sigmas[0]), float(pe_sigmas[-1])]
    stages.done("eta_nu")

    # 3. denoiser error on held-out points (figure 2) -----------------------------------
    g = gen(3)
    x0 = K.sample(sz.pe_samples, g)
    noise = torch.randn(sz.pe_samples, n, generator=g, dtype=_F64)
    derr: dict[str, Any] = {"n": n, "d": d, "quantiles": [0.1, 0.9], "denoisers": {}}
    for name in ("projection", ideal_label, "MLP"):
        rows = []
        for s in pe_sigmas.tolist():
            e = denoisers[name](x0 + s * noise, s)
            rows.append(torch.linalg.vector_norm(e - noise, dim=1) / math.sqrt(n))
        st = _stats(torch.stack(rows))
        derr["denoisers"][name] = {"sigma": pe_sigmas.tolist(), **st}
    stages.done("denoiser_error")

    # 4. DDIM trajectories: ‖ε‖/√n and η along the way (figures 1, 3) --------------------
    sched_traj = toy_paper_schedule(sz.traj_steps, sigma_max)
    x_start = sigma_max * torch.randn(sz.traj_batch, n, generator=gen(4), dtype=_F64)
    norm_data: dict[str, Any] = {"n": n, "quantiles": [0.1, 0.9], "denoisers": {}}
    hist_data = {}
    for name in (ideal_label, "MLP"):
        traj = tm.ddim(denoisers[name], sched_traj, x_start, return_trajectory=True)
        en = torch.linalg.vector_norm(traj.eps.reshape(sz.traj_steps, sz.traj_batch, -1), dim=-1) / math.sqrt(n)
        norm_data["denoisers"][name] = {"sigma": sched_traj[:-1].tolist(), **_stats(en)}
        te = trajectory_error(traj, K)
        hist_data[name] = _eta_histogram(te, sched_traj, name)
    stages.done("trajectories")

    # 5. Theorem 1 envelope (figure 7) ------------------------------------------------------
    envelope = _envelope_experiment(K, sigma_max, sigma_final, sz, gen(5), seed)
    stages.done("theorem1")

    # 6. samplers at equal NFE, γ sweep (figure 5) -----------------------------------------
    ref_grid = tm.schedules.loglinear(sigma_max, sigma_final, 50)
    cmp_start = sigma_max * torch.randn(sz.cmp_batch, n, generator=gen(6), dtype=_F64)
    bandwidth = median_bandwidth(data)
    floor = float(mmd_rbf(K.sample(sz.cmp_batch, gen(7)), data, bandwidth))
    comparisons = {"MLP": _compare_samplers(mlp, K, data, cmp_start, ref_grid, sigma_max, sz, bandwidth, seed)}
    comparisons["MLP"]["denoiser"] = "MLP"
    stages.done("samplers_mlp")
    if ideal_note.startswith("closed form") or isinstance(K, tm.FiniteSet):
        b = sz.ideal_cmp_batch
        comparisons[ideal_label] = _compare_samplers(
            ideal, K, data, cmp_start[:b], ref_grid, sigma_max, sz, bandwidth, seed, data_batch=b
        )
        comparisons[ideal_label]["denoiser"] = ideal_label
    # A perfect sample of K carrying the final noise σ_0 is x0 + σ_0 ε; for small σ_0 its
    # distance to K is σ_0 ‖P_N ε‖ with ‖P_N ε‖ ~ χ_{n−d} (THEORY §2, exact for a subspace).
    dist_floor = sigma_final * F.chi_mean(n - d) if n > d else 0.0
    for c in comparisons.values():
        c["mmd_floor"] = floor
        c["dist_floor"] = dist_floor
    stages.done("samplers_ideal")

    # 7. suggest_schedule against the paper's schedule ---------------------------------------
    suggestion = _suggestion_experiment(K, denoisers, eta_nu, sigma_max, sigma_final, data, bandwidth, sz, gen(8))
    stages.done("suggest_schedule")

    # 8. trajectories in base coordinates (figure 6) -------------------------------------
    traj_fig = _trajectory_figure_data(info, mlp, sigma_max, r_rms, sz, gen(9))
    stages.done("figure_data")
    stages.close()

    # schedules (figure 4) ---------------------------------------------------------------
    lo_hi = f"{sigma_max:g} → {sigma_final:.3g}"
    sched = {
        "n_steps": 10,
        "schedules": {
            "DDPM default (T = 1000, trailing)": tm.schedules.discrete(10).tolist(),
            "paper, CIFAR-10 (σ_max = 40)": tm.schedules.paper(10, "cifar10")[0].tolist(),
            f"paper construction, toy σ_max = {sigma_max:g} (used here)": toy_paper_schedule(10, sigma_max).tolist(),
            f"log-linear {lo_hi}": tm.schedules.loglinear(sigma_max, sigma_final, 10).tolist(),
            f"Karras ρ = 7, {lo_hi}": tm.schedules.karras(sigma_max, sigma_final, 10).tolist(),
        },
    }
    if suggestion.get("available"):
        sched["schedules"][f"suggested (Theorem 1, η̂ = {suggestion['eta']:.3g}, ν = {suggestion['nu']:g})"] = (
            suggestion["sigmas"]
        )

    # checks -----------------------------------------------------------------------------
    main_cmp = comparisons["MLP"]["samplers"]
    i10 = list(NFES).index(10)
    checks = {
        "ge_beats_ddim_at_10_nfe": {
            den: bool(c["samplers"]["GE (γ=2)"]["ode_error"][i10] < c["samplers"]["DDIM"]["ode_error"][i10])
            for den, c in comparisons.items()
        },
        "ode_error_at_10_nfe": {
            den: {s: c["samplers"][s]["ode_error"][i10] for s in ("DDIM", "GE (γ=2)")} for den, c in comparisons.items()
        },
        "perturbed_inside_envelope": envelope["inside_all"],
        "theorem1_conditions_hold": envelope["conditions_hold"],
        "lemma1_violations": envelope["lemma1_violations_total"],
        "exact_projection_eta_max": pe_summary["projection"]["eta_max"],
        "perturbed_eta_range": [
            float(min(v for v in eta_nu["denoisers"][f"perturbed (η={PERTURBED_ETA:g})"] if v is not None)),
            float(max(v for v in eta_nu["denoisers"][f"perturbed (η={PERTURBED_ETA:g})"] if v is not None)),
        ],
        "all_sampler_numbers_finite": all(
            all(v is not None and math.isfinite(v) for m in s.values() if isinstance(m, list) for v in m)
            for c in comparisons.values()
            for s in c["samplers"].values()
        ),
    }
    del main_cmp

    wall = time.perf_counter() - t_start
    results = {
        "meta": {
            "toymanifold_version": tm.__version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "config": asdict(cfg),
            "device": str(device),
            "wall_time_s": round(wall, 2),
            "stage_times_s": stages.times,
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
        "manifold": {
            "name": info.name,
            "description": info.description,
            "repr": repr(K),
            "n": n,
            "d": d,
            "reach": float(K.reach),
            "rms_norm": r_rms,
            "sigma_max": sigma_max,
            "sigma_final": sigma_final,
        },
        "training": {
            "steps": sz.train_steps,
            "batch_size": sz.train_batch,
            "hidden": sz.hidden,
            "depth": sz.depth,
            "sigma_range": list(sigma_train),
            "sigma_data": model.sigma_data,
            "loss_first": losses[0],
            "loss_last_100_mean": float(np.mean(losses[-100:])),
            "loss_curve": [float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)],
            "wall_s": round(train_s, 2),
        },
        "ideal_denoiser": ideal_note,
        "projection_error_summary": pe_summary,
        "eta_nu": eta_nu,
        "denoiser_norm": norm_data,
        "denoiser_error": derr,
        "eta_sigma": hist_data,
        "schedules": sched,
        "samplers": comparisons,
        "gamma_sweep": {den: c.pop("gamma_sweep") for den, c in comparisons.items()},
        "envelope": envelope,
        "suggest_schedule": suggestion,
        "trajectories": traj_fig,
        "checks": checks,
    }
    return jsonable(results)


def _eta_histogram(te, sigmas: torch.Tensor, name: str) -> dict[str, Any]:
    """Figure 3's data: 2-D histogram of ``(σ_t, η)`` along DDIM, one σ column per step."""
    N = te.eta.shape[0]
    s = sigmas[:N].numpy()
    # Column edges at the geometric midpoints between consecutive σ_t: one column per step.
    mid = np.sqrt(s[:-1] * s[1:])
    sigma_edges = np.concatenate([[s[0] * s[0] / mid[0]], mid, [s[-1] * s[-1] / mid[-1]]])[::-1].copy()
    eta = te.eta.numpy()
    ok = np.isfinite(eta)
    pos = eta[ok & (eta > 0)]
    lo = 10.0 ** math.floor(math.log10(max(pos.min(), F.ETA_FLOOR))) if pos.size else F.ETA_FLOOR
    hi = 10.0 ** math.ceil(math.log10(max(pos.max(), lo * 10))) if pos.size else 1.0
    eta_edges = np.logspace(math.log10(lo), math.log10(hi), 41)
    ee = np.clip(eta[ok], lo, hi * (1 - 1e-12))
    ss = np.broadcast_to(te.sigma.numpy(), eta.shape)[ok]
    counts, _, _ = np.histogram2d(ss, ee, bins=[sigma_edges, eta_edges])
    r = te.r.numpy()
    nu = np.maximum(r, 1.0 / np.where(r > 0, r, np.nan))
    return {
        "denoiser": name,
        "sampler": f"DDIM (N = {N} steps)",
        "sigma_edges": sigma_edges.tolist(),
        "eta_edges": eta_edges.tolist(),
        "counts": counts.tolist(),
        "eta_floor": lo,
        "nu": {"sigma": s.tolist(), "median": np.nanmedian(nu, axis=1).tolist(), "max": np.nanmax(nu, axis=1).tolist()},
        "eta_median_per_step": np.nanmedian(eta, axis=1).tolist(),
        "eta_max_per_step": np.nanmax(eta, axis=1).tolist(),
    }


def _envelope_experiment(K, sigma_max, sigma_min, sz: _Sizes, g, seed) -> dict[str, Any]:
    """DDIM with ``PerturbedProjectionDenoiser(η)`` and the exact projection against Theorem 1 (THEORY §3).

    The schedule is log-linear with ``σ_0 = sigma_min > 0`` (Theorem 1's setting). ``ν`` is
    the smallest value for which Theorem 1's conditions hold for every trajectory's
    ``r_N``: ``max_b max(r_N, 1/r_N, r_N U_0, 1/(r_N L_0))``. Inside-ness is checked with
    a floating-point slack ``8 (N+1) n ε_64 max_t ‖x_t‖`` (each DDIM step and each distance
    evaluation is a length-n float64 computation).
    """
    n = K.ambient_dim
    N = sz.env_steps
    sig = tm.schedules.loglinear(sigma_max, sigma_min, N)
    x = sigma_max * torch.randn(sz.env_batch, n, generator=g, dtype=_F64)
    dist_N = K.distance(x)
    r_N = dist_N / (math.sqrt(n) * sigma_max)
    probe = theorem1_bounds(sig, PERTURBED_ETA, 1.0, r_N)
    L0, U0 = float(probe.L[-1]), float(probe.U[-1])
    nu = float(torch.max(torch.stack([r_N, 1 / r_N, r_N * U0, 1 / (r_N * L0)])).item()) * (1 + 1e-9)
    bounds = theorem1_bounds(sig, PERTURBED_ETA, nu, r_N, dist_N)
    runs, inside, gaps, lemma = {}, {}, {}, {}
    eps64 = torch.finfo(_F64).eps
    cases = {
        f"perturbed {m}": tm.PerturbedProjectionDenoiser(K, PERTURBED_ETA, mode=m, seed=seed)
        for m in ("random", "outward", "inward")
    }
    cases["exact projection (η = 0)"] = tm.ProjectionDenoiser(K)
    for label, den in cases.items():
        traj = tm.ddim(den, sig, x, return_trajectory=True)
        D = K.distance(traj.xs.reshape(-1, n)).reshape(N + 1, -1)
        slack = 8 * (N + 1) * n * eps64 * float(torch.linalg.vector_norm(traj.xs, dim=-1).max())
        ok = bool(((D >= bounds.lower - slack) & (D <= bounds.upper + slack)).all())
        runs[label] = D.T.tolist()
        inside[label] = ok
        # How close each run comes to the envelope after the start (0 = touches it), relative
        # to dist_K(x_N); at t = N all three coincide, so that row is left out.
        gaps[label] = {
            "to_upper": float(((bounds.upper - D)[1:] / dist_N).min()),
            "to_lower": float(((D - bounds.lower)[1:] / dist_N).min()),
        }
        chk = check_trajectory(traj, K, eta=PERTURBED_ETA if label.startswith("perturbed") else 0.0)
        lemma[label] = len(chk.violations)
    perturbed = [k for k in inside if k.startswith("perturbed")]
    return {
        "eta": PERTURBED_ETA,
        "nu": nu,
        "sigmas": sig.tolist(),
        "L": bounds.L.tolist(),
        "U": bounds.U.tolist(),
        "r_N": r_N.tolist(),
        "dist_N": dist_N.tolist(),
        "conditions_hold": bool(bounds.conditions_hold.all()),
        "final_bound_relative": float(bounds.final_bound[0] / dist_N[0]),
        "runs": runs,
        "inside": inside,
        "inside_all": all(inside[k] for k in perturbed),
        "gaps": gaps,
        "lemma1_violations": lemma,
        "lemma1_violations_total": int(sum(lemma.values())),
    }


def _run_sampler(name: str, den, sigmas, x, seed: int, gamma: float = 2.0):
    if name == "DDIM":
        return tm.ddim(den, sigmas, x)
    if name == "DDPM":
        return tm.ddpm(den, sigmas, x, generator=seed + 11)
    if name.startswith("GE"):
        return tm.gradient_estimation(den, sigmas, x, gamma=gamma)
    if name == "Heun":
        return tm.heun(den, sigmas, x)
    if name == "DPM++(2M)":
        return tm.dpmpp_2m(den, sigmas, x)
    raise ValueError(name)


def _compare_samplers(den, K, data, x, ref_grid, sigma_max, sz: _Sizes, bandwidth, seed, data_batch=None):
    """Samplers at equal NFE on the paper's schedule construction (THEORY §5).

    Every schedule runs from ``σ_max`` to ``σ(0) ≈ 0.01``, so one fine reference from the
    same start serves all: Heun (2nd order) on a 50-step log-linear grid refined
    ``ref_refine`` times. Its own error is estimated by Richardson extrapolation from a
    run with half the sub-steps: ``‖x_ref − x_ref/2‖ / 3`` (error ∝ h²).
    Heun makes 2 evaluations per step, so it gets ``⌊NFE/2⌋`` steps.
    """
    data = data if data_batch is None else data[:data_batch]
    ref = ode_reference(den, ref_grid, x, refine=sz.ref_refine)
    ref_half = ode_reference(den, ref_grid, x, refine=max(sz.ref_refine // 2, 1))
    ref_err = float(ode_error(ref_half, ref).mean()) / 3.0
    out: dict[str, Any] = {
        "nfe": list(NFES),
        "metrics": ["ode_error", "mean_dist", "mmd"],
        "schedule": f"paper construction, σ_max = {sigma_max:g}",
        "batch": x.shape[0],
        "reference": {
            "sampler": "Heun",
            "steps": 50 * sz.ref_refine,
            "nfe": 2 * 50 * sz.ref_refine,
            "error_estimate": ref_err,
            "mean_dist": float(mean_distance(ref, K)),
            "mmd": float(mmd_rbf(ref, data, bandwidth)),
        },
        "mmd_bandwidth": bandwidth,
        "samplers": {},
        "nfe_actual": {},
    }
    for name in SAMPLERS:
        vals = {"ode_error": [], "mean_dist": [], "mmd": []}
        actual = []
        for nfe in NFES:
            steps = nfe // 2 if name == "Heun" else nfe
            sig = toy_paper_schedule(max(steps, 2), sigma_max)
            y = _run_sampler(name, den, sig, x, seed)
            actual.append(tm.samplers.nfe("heun" if name == "Heun" else "ddim", sig))
            vals["ode_error"].append(float(ode_error(y, ref).mean()))
            vals["mean_dist"].append(float(mean_distance(y, K)))
            vals["mmd"].append(float(mmd_rbf(y, data, bandwidth)))
        out["samplers"][name] = vals
        out["nfe_actual"][name] = actual
    gammas = sz.gammas
    sweep = {"nfe": 10, "gammas": list(gammas), "metrics": {"ode_error": [], "mean_dist": [], "mmd": []}}
    sig10 = toy_paper_schedule(10, sigma_max)
    for gma in gammas:
        y = tm.gradient_estimation(den, sig10, x, gamma=gma)
        sweep["metrics"]["ode_error"].append(float(ode_error(y, ref).mean()))
        sweep["metrics"]["mean_dist"].append(float(mean_distance(y, K)))
        sweep["metrics"]["mmd"].append(float(mmd_rbf(y, data, bandwidth)))
    out["gamma_sweep"] = sweep
    return out


def _suggestion_experiment(K, denoisers, eta_nu, sigma_max, sigma_min, data, bandwidth, sz, g) -> dict[str, Any]:
    """``analysis.suggest_schedule`` from the MLP's measured ``η̂(ν)`` against the paper's schedule.

    ``ν = 2`` and ``η = η̂(2)`` (the maximum over the sampled 2-admissible pairs, an
    estimate: the true sup can only be larger), 10 steps down to ``σ_min``. Theorem 1
    guarantees tracking only from a start with ``1/ν ≤ r_N ≤ ν``; by Corollary 3 pure
    noise ``σ_max ξ`` has ``r_N ≈ 1`` only when ``σ_max ≫ R/√n``, which the (narrow)
    suggested schedule may not meet. So the suggested schedule is run from two starts:
    noisy data ``x0 + σ_max ξ`` (``r_N ≈ 1`` by concentration, THEORY §2: the guarantee
    applies, and each run's final distance is checked against its own bound
    ``dist_K(x_N) ∏(1 − β_s(1 − η))``) and pure noise ``σ_max ξ`` (generation). The paper's
    schedule runs from pure noise. DDIM and GE (γ = 2), the MLP denoiser.

    Noisy data has ``r_N`` a little below 1, while ``suggest_schedule`` with ``r_N = 1`` makes
    the lower condition ``r_N L_0 ≥ 1/ν`` bind exactly at 1. So the schedule is computed
    twice: with ``r_N = 1``, then with ``0.97 ×`` the smallest ratio measured on such starts
    (narrowing the range only raises ``r`` for these starts, see notebook 03).
    """
    n = K.ambient_dim
    nu = 2.0
    k = eta_nu["nus"].index(nu)
    eta_hat = eta_nu["denoisers"]["MLP"][k]
    out: dict[str, Any] = {"denoiser": "MLP", "nu": nu, "eta": eta_hat, "n_steps": 10, "sigma_min": sigma_min}
    if eta_hat is None or not (0 < eta_hat < 1):
        out["available"] = False
        out["reason"] = f"η̂(ν = {nu:g}) = {eta_hat} is not in (0, 1): Theorem 1 gives no schedule"
        return out
    xi = torch.randn(sz.cmp_batch, n, generator=g, dtype=_F64)
    x0 = K.sample(sz.cmp_batch, g)
    try:
        first = suggest_schedule(eta_hat, nu, 10, sigma_min, r_N=1.0)
        r_first = K.distance(x0 + first.sigma_max * xi) / (math.sqrt(n) * first.sigma_max)
        r_assumed = 0.97 * float(r_first.min())
        s = suggest_schedule(eta_hat, nu, 10, sigma_min, r_N=r_assumed)
    except ValueError as exc:
        out["available"] = False
        out["reason"] = str(exc)
        return out
    out["r_N_assumed"] = r_assumed
    out["sigma_max_first_pass"] = first.sigma_max
    paper = toy_paper_schedule(10, sigma_max)
    starts = (
        ("suggested", s.sigmas, "noisy data x0 + σ_max ξ", x0 + float(s.sigmas[0]) * xi),
        ("suggested", s.sigmas, "pure noise σ_max ξ", float(s.sigmas[0]) * xi),
        ("paper", paper, "pure noise σ_max ξ", float(paper[0]) * xi),
    )
    rows = {}
    for label, sig, start_label, x in starts:
        dist_N = K.distance(x)
        r_N = dist_N / (math.sqrt(n) * float(sig[0]))
        for sampler in ("DDIM", "GE (γ=2)"):
            y = _run_sampler(sampler, denoisers["MLP"], sig, x, 0)
            dist = K.distance(y)
            row = {
                "schedule": label,
                "start": start_label,
                "sampler": sampler,
                "sigma_max": float(sig[0]),
                "sigma_last": float(sig[-1]),
                "r_N_range": [float(r_N.min()), float(r_N.max())],
                "mean_dist": float(dist.mean()),
                "max_dist": float(dist.max()),
                "mmd": float(mmd_rbf(y, data, bandwidth)),
            }
            if label == "suggested" and sampler == "DDIM":
                # Theorem 1 for each run's own r_N: where its conditions hold, the final
                # distance bound is a guarantee (given that η̂ bounds the MLP's η).
                b = theorem1_bounds(sig, eta_hat, nu, r_N, dist_N)
                hold = b.conditions_hold
                row["theorem1_conditions_hold_fraction"] = float(hold.to(_F64).mean())
                row["within_final_bound_fraction"] = (
                    float((dist[hold] <= b.final_bound[hold]).to(_F64).mean()) if bool(hold.any()) else None
                )
            rows[f"{sampler}, {label}, from {start_label}"] = row
    out.update(
        {
            "available": True,
            "sigmas": s.sigmas.tolist(),
            "sigma_max": s.sigma_max,
            "rho": s.rho,
            "binding": s.binding,
            "U0": s.U0,
            "L0": s.L0,
            "guaranteed_final_ratio": s.final_ratio,
            "guaranteed_final_distance": s.final_distance(n),
            "corollary3_scale": float(K.diameter_bound) / math.sqrt(n) if math.isfinite(K.diameter_bound) else None,
            "runs": rows,
        }
    )
    return out


def _trajectory_figure_data(info: _ManifoldInfo, den, sigma_max, r_rms, sz: _Sizes, g) -> dict[str, Any]:
    """Figure 6's data: DDIM and GE (10 NFE, MLP) trajectories in the base manifold's coordinates.

    Only iterates with ``σ_t ≤ r_rms`` are kept (before that the iterate shrinks almost
    radially from ``σ_max ξ``, far outside the plot), and the axes are fixed to the
    data's box enlarged by half its size.
    """
    K = info.manifold
    n = K.ambient_dim
    sig = toy_paper_schedule(10, sigma_max)
    x = sigma_max * torch.randn(sz.show_traj, n, generator=g, dtype=_F64)
    keep = int(torch.nonzero(sig <= r_rms)[0]) if bool((sig <= r_rms).any()) else 0
    trajs = {}
    for name in ("DDIM", "GE (γ=2)"):
        traj = (
            tm.ddim(den, sig, x, return_trajectory=True)
            if name == "DDIM"
            else tm.gradient_estimation(den, sig, x, gamma=2.0, return_trajectory=True)
        )
        xs = traj.xs[keep:].reshape(-1, n)
        trajs[name] = info.coords(xs).reshape(sig.numel() - keep, sz.show_traj, -1).tolist()
    bg = info.background
    lo, hi = bg.min(0).values, bg.max(0).values
    pad = 0.5 * (hi - lo).clamp_min(1e-3)
    limits = torch.stack([lo - pad, hi + pad], 1).tolist()
    note = f"Steps with σ_t ≤ {r_rms:.2g} (of {sig.numel() - 1}) shown; " + (
        "coordinates in the base manifold's frame."
        if info.name not in ("digits", "subspace")
        else "coordinates: " + ", ".join(c.strip("$") for c in info.coord_names) + "."
    )
    return {
        "coords": info.coord_names,
        "manifold": bg.tolist(),
        "curve": info.curve,
        "trajectories": trajs,
        "denoiser": "MLP",
        "limits": limits,
        "note": note,
        "first_sigma_shown": float(sig[keep]),
    }


# --------------------------------------------------------------------------- writing


def make_figures(results: dict[str, Any]) -> dict[str, Any]:
    """All figures of the report from ``results`` (no experiment is re-run): ``{file stem: Figure}``.

    The interactive 3-D view (plotly) is under ``"trajectories_3d"`` when the plot
    coordinates are three-dimensional.
    """
    figs: dict[str, Any] = {
        "fig1_denoiser_norm": F.denoiser_norm_figure(results["denoiser_norm"]),
        "fig2_denoiser_error": F.denoiser_error_figure(results["denoiser_error"]),
    }
    for name, data in results["eta_sigma"].items():
        figs[f"fig3_eta_sigma_{_slug(name)}"] = F.eta_sigma_histogram_figure(data)
    figs["fig4_schedules"] = F.schedules_figure(results["schedules"])
    for den, data in results["samplers"].items():
        figs[f"fig5_sampler_quality_{_slug(den)}"] = F.sampler_quality_figure(data, results["gamma_sweep"][den])
    figs["fig6_trajectories"] = F.trajectories_figure(results["trajectories"])
    if len(results["trajectories"]["coords"]) == 3:
        figs["trajectories_3d"] = F.trajectories_3d_figure(results["trajectories"])
    figs["fig7_theorem1_envelope"] = F.envelope_figure(results["envelope"])
    figs["fig8_eta_nu"] = F.eta_nu_figure(results["eta_nu"])
    return figs


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def write_report(results: dict[str, Any], out_dir) -> Path:
    """Write ``results.json``, ``figures/*.png`` and ``report.html`` into ``out_dir`` (which must exist).

    Returns the path of ``report.html``.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, allow_nan=False, ensure_ascii=False)
    (out / "results.json").write_text(text, encoding="utf-8")
    figs = make_figures(results)
    pngs: dict[str, bytes] = {}
    interactive = None
    for stem, fig in figs.items():
        if stem == "trajectories_3d":
            interactive = fig
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
        pngs[stem] = buf.getvalue()
        (out / "figures" / f"{stem}.png").write_bytes(pngs[stem])
    page = _html(results, pngs, interactive)
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}.ok{color:#0a7d22;font-weight:600}.bad{color:#b00020;font-weight:600}
.caption{color:#444;font-size:.92em}code{background:#f5f5f5;padding:0 .2em}
"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1e4 or abs(v) < 1e-3:
            return f"{v:.{digits}e}"
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _img(pngs: dict[str, bytes], stem: str, alt: str) -> str:
    data = base64.b64encode(pngs[stem]).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _badge(ok: bool, yes: str = "yes", no: str = "no") -> str:
    return f'<span class="ok">{yes}</span>' if ok else f'<span class="bad">{no}</span>'


def _html(res: dict[str, Any], pngs: dict[str, bytes], interactive) -> str:
    m, meta, ch = res["manifold"], res["meta"], res["checks"]
    esc = html.escape
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>toymanifold report — {esc(m['name'])}</title>"
        f"<style>{_CSS}</style></head><body>"
    ]
    parts.append("<h1>toymanifold report: denoising as projection, DDIM as gradient descent</h1>")
    parts.append(
        f"<p><b>K</b> = {esc(m['description'])} &nbsp;(<code>{esc(m['repr'])}</code>): n = {m['n']}, d = {m['d']}, "
        f"reach = {_fmt(m['reach'])}, RMS norm of the data = {_fmt(m['rms_norm'])}. Noise levels from "
        f"σ_max = {_fmt(m['sigma_max'])} (10 × RMS norm) to σ(t=0) = {_fmt(m['sigma_final'])}. "
        f"Seed {meta['config']['seed']}, device {esc(meta['device'])}, "
        f"{'quick run, ' if meta['config']['quick'] else ''}wall time {meta['wall_time_s']:.1f} s "
        f"(toymanifold {esc(meta['toymanifold_version'])}, torch {esc(meta['torch_version'])}). "
        "Every number on this page is in <code>results.json</code>; the formulas are in docs/theory.md.</p>"
    )

    # summary
    ode10 = ch["ode_error_at_10_nfe"]
    rows = []
    for den, ok in ch["ge_beats_ddim_at_10_nfe"].items():
        rows.append(
            [
                f"GE (γ=2) ODE error < DDIM ODE error at 10 NFE, {den} denoiser",
                f"{_fmt(ode10[den]['GE (γ=2)'])} vs {_fmt(ode10[den]['DDIM'])}",
                ok,
            ]
        )
    rows.append(
        [
            "DDIM with PerturbedProjectionDenoiser(η=0.1) inside Theorem 1's envelope",
            "all modes",
            ch["perturbed_inside_envelope"],
        ]
    )
    rows.append(
        [
            "Theorem 1's conditions hold for those runs",
            f"ν = {_fmt(res['envelope']['nu'])}",
            ch["theorem1_conditions_hold"],
        ]
    )
    rows.append(["Lemma 1 violations along those runs", ch["lemma1_violations"], ch["lemma1_violations"] == 0])
    rows.append(
        [
            "η̂ of the exact projection (max over sampled pairs)",
            ch["exact_projection_eta_max"],
            ch["exact_projection_eta_max"] < 1e-10,
        ]
    )
    rows.append(["Every sampler × NFE number finite", "", ch["all_sampler_numbers_finite"]])
    parts.append("<h2>Summary</h2>")
    parts.append(
        "<table><tr><th>check</th><th>value</th><th>holds</th></tr>"
        + "".join(
            f"<tr><td>{esc(a)}</td><td>{b if isinstance(b, str) else _fmt(b)}</td><td>{_badge(c)}</td></tr>"
            for a, b, c in rows
        )
        + "</table>"
    )

    tr = res["training"]
    parts.append("<h2>The trained denoiser</h2>")
    parts.append(
        f"<p>A σ-conditioned MLP (EDM preconditioning; {tr['depth']} hidden layers of width {tr['hidden']}) "
        f"trained for {tr['steps']} AdamW steps of batch {tr['batch_size']} on E‖ε_θ(x0+σε, σ) − ε‖² "
        f"(THEORY §1), σ log-uniform on [{_fmt(tr['sigma_range'][0])}, {_fmt(tr['sigma_range'][1])}]: "
        f"loss {_fmt(tr['loss_first'])} → {_fmt(tr['loss_last_100_mean'])} (mean of the last 100 steps), "
        f"{tr['wall_s']:.1f} s. Ideal denoiser: {esc(res['ideal_denoiser'])}.</p>"
    )

    # figure 8 + table
    en = res["eta_nu"]
    parts.append("<h2>How far is each denoiser from projection? η̂(ν) (THEORY §2)</h2>")
    parts.append(_img(pngs, "fig8_eta_nu", "eta-hat of nu"))
    parts.append(
        f"<p class='caption'>η(x, σ) = ‖x̂0 − proj_K(x)‖ / dist_K(x) on {en['pairs_per_denoiser']} pairs "
        f"x = x0 + σε per denoiser (the same pairs for each), σ log-spaced in "
        f"[{_fmt(en['sigma_range'][0])}, {_fmt(en['sigma_range'][1])}]. η̂(ν) is the maximum over the pairs "
        "with 1/ν ≤ r ≤ ν, r = dist_K(x)/(√n σ); an estimate from samples (the true sup can only be larger). "
        "The perturbed projection has η = 0.1 by construction, a check of the measurement.</p>"
    )
    header = ["denoiser"] + [f"ν={v:g}" for v in en["nus"]]
    parts.append("<p>Maximum:</p>" + _table(header, [[k, *v] for k, v in en["denoisers"].items()]))
    parts.append("<p>99% quantile:</p>" + _table(header, [[k, *v] for k, v in en["q99"].items()]))
    parts.append("<p>Admissible pairs:</p>" + _table(header, [[k, *v] for k, v in en["count"].items()]))

    # figures 1 and 2
    parts.append("<h2>Denoising approximates projection (THEORY §2)</h2>")
    parts.append(_img(pngs, "fig1_denoiser_norm", "denoiser norm"))
    parts.append(
        "<p class='caption'>‖ε_θ(x_t, σ_t)‖/√n along DDIM trajectories (paper's schedule construction, "
        f"{len(res['denoiser_norm']['denoisers'][next(iter(res['denoiser_norm']['denoisers']))]['sigma'])}"
        " steps); dashed: 10% and 90% quantiles over the batch. Concentration predicts ≈ 1 (the spread "
        "is that of ‖ε‖/√n itself, ε ~ N(0, I_n)).</p>"
    )
    parts.append(_img(pngs, "fig2_denoiser_error", "denoiser error"))
    parts.append(
        "<p class='caption'>‖ε_θ(x0+σε, σ) − ε‖/√n on held-out x0 (mean; dashed: 10% and 90% quantiles). "
        "At small σ the projection's error is the tangential part of the noise, whose mean is "
        "E‖P_T ε‖/√n = E χ_d/√n (dotted); the ideal denoiser has the minimum mean-square error.</p>"
    )
    for name in res["eta_sigma"]:
        stem = f"fig3_eta_sigma_{_slug(name)}"
        parts.append(_img(pngs, stem, f"eta against sigma, {name}"))
    parts.append(
        "<p class='caption'>η(x_t, σ_t) along DDIM trajectories (one column per step) with the "
        "admissibility ν(x, σ) = max(r, 1/r) overlaid: a pair is ν-admissible iff ν(x, σ) ≤ ν.</p>"
    )

    # figure 7
    env = res["envelope"]
    parts.append("<h2>DDIM against Theorem 1's envelope (THEORY §3)</h2>")
    parts.append(_img(pngs, "fig7_theorem1_envelope", "Theorem 1 envelope"))
    parts.append(
        f"<p class='caption'>DDIM on a log-linear schedule ({len(env['sigmas']) - 1} steps, "
        f"σ {_fmt(env['sigmas'][0])} → {_fmt(env['sigmas'][-1])}) with PerturbedProjectionDenoiser(η = {env['eta']:g}) "
        f"in three modes and the exact projection, {len(env['r_N'])} starting points x_N = σ_N ξ. "
        f"ν = {_fmt(env['nu'])} is the smallest value for which Theorem 1's conditions hold for every r_N "
        f"(r_N ∈ [{_fmt(min(env['r_N']))}, {_fmt(max(env['r_N']))}]). Guaranteed final ratio "
        f'dist_K(x_0)/dist_K(x_N) ≤ {_fmt(env["final_bound_relative"])}. "outward" attains the upper envelope '
        "and the exact projection follows σ_t/σ_N exactly (r_t constant). Gaps of order −1e−16 are rounding, inside "
        "the floating-point allowance 8 (N+1) n ε₆₄ max‖x_t‖ used for the inside check.</p>"
    )
    parts.append(
        _table(
            [
                "run",
                "inside envelope",
                "min gap to upper / dist_K(x_N), t < N",
                "min gap to lower / dist_K(x_N), t < N",
                "Lemma 1 violations",
            ],
            [
                [
                    k,
                    env["inside"][k],
                    env["gaps"][k]["to_upper"],
                    env["gaps"][k]["to_lower"],
                    env["lemma1_violations"][k],
                ]
                for k in env["runs"]
            ],
        )
    )

    # samplers
    parts.append("<h2>Samplers at equal cost (THEORY §5)</h2>")
    for den, c in res["samplers"].items():
        stem = f"fig5_sampler_quality_{_slug(den)}"
        ref = c["reference"]
        parts.append(f"<h3>{esc(den)} denoiser</h3>")
        parts.append(_img(pngs, stem, f"sampler quality, {den}"))
        parts.append(
            f"<p class='caption'>{c['batch']} samples from the same x_N = σ_max ξ. Schedule: {esc(c['schedule'])} "
            "(N log-linear sigmas from σ_max to σ_end = √(σ(t_{N−1}) σ(0)) of the DDPM grid, then σ(0)); "
            "Heun gets ⌊NFE/2⌋ steps. ODE error = mean ‖x_0 − x_0^ref‖ against "
            f"Heun with {ref['steps']} steps ({ref['nfe']} NFE) from the same x_N, whose own error is estimated "
            f"at {_fmt(ref['error_estimate'])} (Richardson). DDPM is stochastic: its ODE error is its distance from "
            "the deterministic flow, not a discretisation error. MMD²: unbiased, RBF kernel with the median-heuristic "
            f"bandwidth {_fmt(c['mmd_bandwidth'])} of the true samples; one draw of MMD² between two independent sets "
            f"of true samples gives {_fmt(c['mmd_floor'])}, the size of the estimator's noise (values within ± that "
            f"are indistinguishable from 0). The reference itself has mean dist_K {_fmt(ref['mean_dist'])} "
            f"and MMD² {_fmt(ref['mmd'])}.</p>"
        )
        for metric, label in (("ode_error", "ODE error"), ("mean_dist", "mean dist_K"), ("mmd", "MMD²")):
            parts.append(
                f"<p>{label}:</p>"
                + _table(
                    ["sampler"] + [f"NFE {v}" for v in c["nfe"]] + ["actual NFE"],
                    [
                        [s] + vals[metric] + [", ".join(map(str, c["nfe_actual"][s]))]
                        for s, vals in c["samplers"].items()
                    ],
                )
            )
        gs = res["gamma_sweep"][den]
        parts.append(
            f"<p>γ sweep (gradient estimation, {gs['nfe']} NFE; γ = 1 is DDIM):</p>"
            + _table(["metric"] + [f"γ={v:g}" for v in gs["gammas"]], [[k, *v] for k, v in gs["metrics"].items()])
        )

    # schedules + suggestion
    parts.append("<h2>Schedules, and a schedule from Theorem 1</h2>")
    parts.append(_img(pngs, "fig4_schedules", "schedules"))
    sg = res["suggest_schedule"]
    if sg.get("available"):
        parts.append(
            f"<p><code>analysis.suggest_schedule</code> (Corollary 2; the toolkit's own, not the paper's) with the "
            f"MLP's measured η̂(ν={sg['nu']:g}) = {_fmt(sg['eta'])} and {sg['n_steps']} steps down to σ_min = "
            f"{_fmt(sg['sigma_min'])} gives the widest log-linear schedule on which Theorem 1 guarantees tracking: "
            f"σ_max = {_fmt(sg['sigma_max'])}, ρ = {_fmt(sg['rho'])} (binding condition: {esc(sg['binding'])}), "
            f"guaranteed dist_K(x_0) ≤ {_fmt(sg['guaranteed_final_distance'])} for starts with r_N = "
            f"{_fmt(sg['r_N_assumed'])} (0.97 × the smallest ratio of noisy-data starts at the first pass's σ_max = "
            f"{_fmt(sg['sigma_max_first_pass'])}). The guarantee rests on η̂ bounding the MLP's η, which a sampled "
            "maximum is not guaranteed to do.</p>"
        )
        rows = [
            [
                v["sampler"],
                v["schedule"],
                v["start"],
                v["sigma_max"],
                f"{_fmt(v['r_N_range'][0])}–{_fmt(v['r_N_range'][1])}",
                v["mean_dist"],
                v["max_dist"],
                v["mmd"],
                v.get("theorem1_conditions_hold_fraction"),
                v.get("within_final_bound_fraction"),
            ]
            for v in sg["runs"].values()
        ]
        parts.append(
            _table(
                [
                    "sampler",
                    "schedule",
                    "start x_N",
                    "σ_max",
                    "r_N range",
                    "mean dist_K",
                    "max dist_K",
                    "MMD²",
                    "Thm 1 conditions hold (fraction)",
                    "dist_K(x_0) ≤ own bound (fraction)",
                ],
                rows,
            )
        )
        c3 = sg.get("corollary3_scale")
        if c3 is not None:
            parts.append(
                f"<p class='caption'>Corollary 3: pure noise σ_max ξ has r_N ≈ 1 only when σ_max ≫ R/√n = {_fmt(c3)}; "
                "the suggested σ_max is the widest range the theorem can certify for the measured η̂, so it is "
                "meant for the last stretch of a run that starts at r_N ≈ 1 (here: noisy data), while the paper's "
                "empirically chosen σ_max generates from pure noise without such a guarantee.</p>"
            )
    else:
        parts.append(f"<p><code>analysis.suggest_schedule</code> not applicable: {esc(sg.get('reason', ''))}</p>")

    # trajectories
    parts.append("<h2>Trajectories</h2>")
    parts.append(_img(pngs, "fig6_trajectories", "trajectories"))
    if interactive is not None:
        parts.append("<p>Interactive view (drag to rotate, scroll to zoom):</p>")
        parts.append(interactive.to_html(full_html=False, include_plotlyjs=True))
    parts.append(f"<p class='caption'>{esc(res['trajectories']['note'])}</p>")
    st = meta["stage_times_s"]
    parts.append("<h2>Run</h2><p>Stage times (s): " + ", ".join(f"{esc(k)} {v:.1f}" for k, v in st.items()) + ".</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
