"""Paper-style figures built from analysis results (never from re-run experiments).

Each function takes one section of the results that :mod:`analysis.report` computes
(plain dicts of lists/arrays, exactly what ``results.json`` holds) and returns a
figure: a matplotlib :class:`~matplotlib.figure.Figure` for the static figures and a
plotly ``Figure`` for the interactive views. Nothing here samples, trains or
evaluates a denoiser, so every curve in a figure is a number in ``results.json``.

Figures of the report:

1. :func:`denoiser_norm_figure` — ``‖ε‖/√n`` along DDIM trajectories against σ, and its
   deviation from the χ reference (THEORY §2, concentration: ``‖ε*‖ ≈ √n``).
2. :func:`denoiser_error_figure` — ``‖ε_θ(x0 + σε, σ) − ε‖/√n`` against σ on held-out points.
3. :func:`eta_sigma_histogram_figure` — relative projection error ``η(x, σ)`` against σ
   along trajectories as a 2-D histogram, with the admissibility ``ν`` below (THEORY §2).
4. :func:`schedules_figure` — σ schedules on a log scale (THEORY §5).
5. :func:`sampler_quality_figure` — quality against NFE per sampler and against γ (THEORY §5).
6. :func:`trajectories_figure` (matplotlib, 2-D or 3-D) and
   :func:`trajectories_interactive_figure` (plotly) — sampler trajectories in the data
   set's chart.
7. :func:`envelope_figure` — ``dist_K(x_t)`` along DDIM against Theorem 1's envelope (THEORY §3).
8. :func:`eta_nu_figure` — the empirical curves ``η̂(ν)`` for several denoisers (THEORY §2).

Live plotly views, shared by the explorers of :mod:`analysis.explore` and the report's
kernel-free sliders: :func:`theorem1_view_traces` (with :func:`theorem1_view_layout` and
:func:`theorem1_conditions_text`) and :func:`trajectory_traces` (with
:func:`trajectory_layout`) build the traces of one state; :func:`envelope_slider_figure`
(a slider over η) and :func:`gamma_slider_figure` (a slider over γ) put the precomputed
states of the report into slider steps.

Colours: every sampler has the colour of its entry in
:data:`toymanifold.samplers.SAMPLERS` and every denoiser the colour of
:data:`DENOISER_COLORS` (looked up by the name before any ``" ("``, so
``"perturbed (η=0.1)"`` is ``"perturbed"``); names in neither table get colours of a
separate palette, never one of those. Metrics are told apart by axis, marker and line
style. Text is at least :data:`MIN_FONT_PT` points once a figure is scaled to the
report's width. The figures use the non-interactive Agg canvas and never call
``plt.show()``.
"""

from ._plotly import (
    BAND_FAILS,
    BAND_HOLDS,
    envelope_slider_figure,
    gamma_slider_figure,
    theorem1_conditions_text,
    theorem1_view_layout,
    theorem1_view_traces,
    trajectory_layout,
    trajectory_traces,
)
from ._report import (
    denoiser_error_figure,
    denoiser_norm_figure,
    envelope_figure,
    eta_nu_figure,
    eta_sigma_histogram_figure,
    sampler_quality_figure,
    schedules_figure,
    trajectories_3d_figure,
    trajectories_figure,
    trajectories_interactive_figure,
)
from ._style import (
    DENOISER_COLORS,
    ETA_FLOOR,
    MIN_FONT_PT,
    REPORT_DPI,
    REPORT_WIDTH_PX,
    chi_mean,
    color_of,
)

# The model report's figures share the report's log-axis ticks.
from ._style import _set_log as _set_log

__all__ = [
    "BAND_FAILS",
    "BAND_HOLDS",
    "DENOISER_COLORS",
    "ETA_FLOOR",
    "MIN_FONT_PT",
    "REPORT_DPI",
    "REPORT_WIDTH_PX",
    "chi_mean",
    "color_of",
    "denoiser_error_figure",
    "denoiser_norm_figure",
    "envelope_figure",
    "envelope_slider_figure",
    "eta_nu_figure",
    "eta_sigma_histogram_figure",
    "gamma_slider_figure",
    "sampler_quality_figure",
    "schedules_figure",
    "theorem1_conditions_text",
    "theorem1_view_layout",
    "theorem1_view_traces",
    "trajectories_3d_figure",
    "trajectories_figure",
    "trajectories_interactive_figure",
    "trajectory_layout",
    "trajectory_traces",
]
