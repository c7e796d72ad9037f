"""The model report behind ``toymanifold report --model PATH --data NAME``: Section 3 of the paper on a trained network.

The training set is ``K`` (a :class:`toymanifold.FiniteSet`): projection onto ``K`` is
the nearest training image and ``K``'s ideal denoiser is exact (THEORY §4), so the
network's distance from projection can be measured without approximation.
:func:`run_model_report` runs the sections of :mod:`analysis.model_report.sections` on
one :class:`ModelReportContext` and returns a JSON-able dict; :func:`write_model_report`
turns it into ``results.json``, ``figures/*.png`` (:mod:`analysis.model_figures`) and a
self-contained ``report.html`` (Jinja2 template ``templates/model_report.html.j2``).

Sections (THEORY sections in brackets):

1. ``‖ε‖/√n`` along DDIM for the network and ``K``'s ideal denoiser, with the band the
   ideal denoiser must lie in (§2, §4);
2. the network's η against projection onto ``K`` and against the ideal denoiser along
   those runs, as histograms over σ, with the admissibility ν (§2);
3. ``r_t`` along the network's DDIM runs against Theorem 1's envelope for the measured
   ``(η̂, ν)``: where the theorem certifies it, where the runs leave it (§3);
4. generalisation against memorisation: distances of samples to the nearest training
   image, the training set's own nearest-neighbour distances, the share of near copies;
5. the deterministic samplers of :data:`toymanifold.samplers.SAMPLERS` at 5, 10, 20 and 50
   model evaluations: ODE error against a fine reference on the same σ range, and for
   digits the Fréchet distance in the digits classifier's features (§5).

For a notebook, the measurements are the functions of :mod:`analysis.model_report.measures`
(any σ-space denoiser, any ``FiniteSet``); the sections need a context:
``ctx = ModelReportContext.build(ModelReportConfig(model=PATH))``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import torch

from .._common import jsonable, one_cpu_thread, run_metadata
from ..report import _Stages  # shared with the toy report
from .context import (
    DATA_SETS,
    NFES,
    InputError,
    LoadedModel,
    ModelReportConfig,
    ModelReportContext,
    ModelSizes,
    load_model,
    load_training_set,
)
from .measures import (
    NEAR_COPY_RATIO,
    NearCopies,
    Theorem1Tracking,
    TrainingSetErrors,
    errors_along_trajectory,
    ideal_norm_band,
    near_copies,
    nearest_training_images,
    sampler_sweep,
    sampler_trajectory,
    theorem1_tracking,
    training_set_neighbours,
)
from .render import make_model_figures, render_model_html, write_model_report
from .sections import (
    checks_section,
    denoiser_norm_section,
    memorisation_section,
    model_section,
    projection_error_section,
    sampler_section,
    theorem1_section,
)

__all__ = [
    "DATA_SETS",
    "NEAR_COPY_RATIO",
    "NFES",
    "InputError",
    "LoadedModel",
    "ModelReportConfig",
    "ModelReportContext",
    "ModelSizes",
    "NearCopies",
    "Theorem1Tracking",
    "TrainingSetErrors",
    "errors_along_trajectory",
    "ideal_norm_band",
    "load_model",
    "load_training_set",
    "make_model_figures",
    "near_copies",
    "nearest_training_images",
    "render_model_html",
    "run_model_report",
    "sampler_sweep",
    "sampler_trajectory",
    "theorem1_tracking",
    "training_set_neighbours",
    "write_model_report",
]


def run_model_report(cfg: ModelReportConfig, ctx: ModelReportContext | None = None) -> dict[str, Any]:
    """Run every section of the model report and return the results as a JSON-able dict.

    ``ctx`` is the context of ``cfg`` if already built (:meth:`ModelReportContext.build`
    raises :class:`InputError`, before any long computation, when the model or the data
    cannot be used). Deterministic for a given ``cfg`` on a given device.
    """
    t_start = time.perf_counter()
    device = torch.device(cfg.device)
    stage = _Stages(7, cfg.progress, "model report")
    # One CPU thread, as the toy report: the network's batches are small (8×8 or 32×32 images, a few
    # hundred at a time), and on a shared machine OpenMP threads that wait for a busy core spin for
    # milliseconds per operation (a quick run was ~10× slower with two). A GPU run keeps the default.
    with one_cpu_thread(device):
        if ctx is None:
            ctx = stage("load", ModelReportContext.build, cfg)
        else:  # built by the caller (the command line checks its input first): count its loading time
            stage.times["load"] = ctx.load_s
            t_start -= ctx.load_s
            stage.bar.update(1)
        r = model_section(ctx)
        stage("ddim_runs", ctx.runs)
        r |= stage("denoiser_norm", denoiser_norm_section, ctx)
        r |= stage("eta_sigma", projection_error_section, ctx)
        r |= stage("theorem1", theorem1_section, ctx)
        r |= stage("memorisation", memorisation_section, ctx)
        r |= stage("samplers", sampler_section, ctx)
        r |= checks_section(r)
    stage.bar.close()
    meta = run_metadata(cfg, device, t_start, stage.times, sizes=asdict(ctx.sizes))
    return jsonable({"meta": meta, **r})
