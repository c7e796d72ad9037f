"""analysis: verify the theory of docs/theory.md on toymanifold's exact geometry.

- :mod:`analysis.projection_error` — ``r`` and ``η(x, σ)`` on noisy samples and along
  trajectories, and the empirical ``η̂(ν)`` (THEORY §2);
- :mod:`analysis.bounds` — Lemma 1 checks, Theorem 1's envelope, Corollaries 1–3 and
  :func:`suggest_schedule` (THEORY §3);
- :mod:`analysis.metrics` — ODE error, distance to ``K``, sliced Wasserstein, MMD²,
  Fréchet distance;
- :mod:`analysis.explore` — live explorers for Jupyter (Theorem 1, the samplers, the
  projection error), imported on first use (it loads ipywidgets and plotly's FigureWidget).

``analysis`` imports ``toymanifold``, never the reverse (docs/design.md). Result objects are
frozen dataclasses of float64 CPU tensors with a ``to_dict()`` giving strict JSON.
"""

from .bounds import (
    InitialDistanceBounds,
    Lemma1Violation,
    LogLinearGuarantee,
    SuggestedSchedule,
    Theorem1Bounds,
    TrajectoryCheck,
    check_trajectory,
    corollary1_bound,
    corollary2_loglinear,
    corollary3_initial_distance,
    suggest_schedule,
    theorem1_bounds,
)
from .metrics import (
    frechet_distance,
    frechet_distance_from_stats,
    mean_distance,
    median_bandwidth,
    mmd_rbf,
    ode_error,
    ode_reference,
    refine_schedule,
    sliced_wasserstein,
)
from .projection_error import EtaNuCurve, ProjectionErrors, eta_nu_curve, projection_error, trajectory_error

__all__ = [
    "EtaNuCurve",
    "InitialDistanceBounds",
    "Lemma1Violation",
    "LogLinearGuarantee",
    "ProjectionErrors",
    "SuggestedSchedule",
    "Theorem1Bounds",
    "TrajectoryCheck",
    "check_trajectory",
    "corollary1_bound",
    "corollary2_loglinear",
    "corollary3_initial_distance",
    "eta_nu_curve",
    "frechet_distance",
    "frechet_distance_from_stats",
    "mean_distance",
    "median_bandwidth",
    "mmd_rbf",
    "ode_error",
    "ode_reference",
    "projection_error",
    "refine_schedule",
    "sliced_wasserstein",
    "suggest_schedule",
    "theorem1_bounds",
    "trajectory_error",
]


def __getattr__(name: str):
    # analysis.explore loads ipywidgets and plotly's FigureWidget: only when it is asked for.
    if name == "explore":
        import importlib

        return importlib.import_module(".explore", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
