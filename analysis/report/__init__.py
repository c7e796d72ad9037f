"""The main job behind ``toymanifold report``: experiments → ``results.json`` → figures → ``report.html``.

:func:`run_report` runs the sections of :mod:`analysis.report.sections` on one shared
:class:`ReportContext` and returns a JSON-able dict (every number the report shows);
:func:`write_report` turns it into ``results.json``, ``figures/*.png`` (through
:mod:`analysis.figures`) and a self-contained ``report.html`` rendered from a Jinja2
template (PNGs embedded, plotly inlined, so it opens offline).

What is measured (THEORY sections in brackets):

1. A small σ-conditioned MLP denoiser is trained on ``E‖ε_θ(x0 + σε, σ) − ε‖²`` (§1).
2. ``r`` and ``η(x, σ)`` on noisy samples ``x0 + σε`` for the exact projection, the
   closed-form ideal denoiser (§4), the trained MLP and a ``PerturbedProjectionDenoiser``
   with known ``η``; the empirical ``η̂(ν)`` (§2).
3. DDIM trajectories of the ideal denoiser and the MLP: ``‖ε‖/√n`` (§2, concentration)
   and ``η(x_t, σ_t)`` with the admissibility ``max(r, 1/r)`` along the way (§2).
4. DDIM with ``PerturbedProjectionDenoiser(η)`` (modes random/outward/inward) and the
   exact projection against Theorem 1's envelope, and Lemma 1 at every step (§3).
5. Every sampler of :data:`toymanifold.samplers.SAMPLERS` (DDIM, DDPM, gradient
   estimation, Heun, DPM-Solver++(2M)) at equal model evaluations (5, 10, 20, 50) on the
   paper's schedule construction (§5), and a γ sweep, by ODE error against a fine Heun
   reference from the same noise, mean ``dist_K`` and MMD² to true samples.
6. :func:`analysis.suggest_schedule` (Corollary 2) against the paper's schedule.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .._common import jsonable, one_cpu_thread, run_metadata
from .context import NFES, PERTURBED_ETA, ReportConfig, ReportContext, Sizes, toy_paper_schedule
from .render import make_figures, render_html
from .sections import (
    checks_section,
    ddim_trajectories_section,
    denoiser_error_section,
    envelope_section,
    manifold_section,
    projection_error_section,
    sampler_comparison_section,
    schedules_section,
    suggest_schedule_section,
    trajectory_view_section,
)
from .write import OutputError, check_output_folder, write_report, write_report_atomically

__all__ = [
    "NFES",
    "PERTURBED_ETA",
    "OutputError",
    "ReportConfig",
    "ReportContext",
    "Sizes",
    "check_output_folder",
    "make_figures",
    "render_html",
    "run_report",
    "toy_paper_schedule",
    "write_report",
    "write_report_atomically",
]


class _Stages:
    """Runs the stages of the report under one progress bar (tqdm, can be turned off) and times them."""

    def __init__(self, total: int, enabled: bool, desc: str = "report"):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False)
        self.times: dict[str, float] = {}

    def __call__(self, name: str, fn, *args):
        t0 = time.perf_counter()
        self.bar.set_postfix_str(name)
        out = fn(*args)
        self.times[name] = round(time.perf_counter() - t0, 3)
        self.bar.update(1)
        return out


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    """Run every section of the report and return the results as a JSON-able dict.

    Deterministic for a given ``cfg`` on a given device (all randomness comes from
    ``cfg.seed``).
    """
    t_start = time.perf_counter()
    device = torch.device(cfg.device)
    stage = _Stages(10, cfg.progress)
    with one_cpu_thread(device):
        ctx = stage("train", ReportContext.build, cfg)
        r = manifold_section(ctx)
        r |= stage("eta_nu", projection_error_section, ctx)
        r |= stage("denoiser_error", denoiser_error_section, ctx)
        r |= stage("trajectories", ddim_trajectories_section, ctx)
        r |= stage("theorem1", envelope_section, ctx)
        r |= stage("samplers", sampler_comparison_section, ctx)
        r |= stage("suggest_schedule", suggest_schedule_section, ctx, r["eta_nu"])
        r |= stage("figure_data", trajectory_view_section, ctx)
        r |= stage("schedules", schedules_section, ctx, r["suggest_schedule"])
        r |= stage("checks", checks_section, r)
    stage.bar.close()
    meta = run_metadata(cfg, device, t_start, stage.times)
    return jsonable({"meta": meta, **r})
