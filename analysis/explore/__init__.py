"""Interactive explorers: move η, γ and the schedule, and watch the bounds and the trajectories answer.

Three explorers for Jupyter (JupyterLab, Notebook 7, VS Code), built on ipywidgets and a
plotly ``FigureWidget``:

- :func:`theorem1` — DDIM runs of ``PerturbedProjectionDenoiser(η)`` against Theorem 1's
  envelope and the admissibility band (THEORY §3); the view says when the conditions fail;
- :func:`samplers` — trajectories of any sampler of :data:`toymanifold.samplers.SAMPLERS`
  against DDIM in the data set's chart, and the ODE error against a many-step reference
  (THEORY §5);
- :func:`projection_error` — the empirical ``η̂(ν)`` and the histogram of ``η(x, σ)`` over σ
  of a denoiser (THEORY §2).

Each returns an :class:`Explorer`: ``controls`` (a dict of ipywidgets by name), ``figure``
(the ``FigureWidget``), ``status`` (a line of text), ``progress`` (a bar shown while a long
recomputation runs) and ``widget`` (all of them in one box; displaying the explorer displays
it). Moving a control — or setting ``controls[name].value`` from Python — updates the figure
in place. Every update recomputes only what the control changed: denoiser runs are cached by
the settings they depend on, and ``last_update`` says what was recomputed and how long it
took. ``snapshot()`` draws the current state with the report's matplotlib figures, from the
same numbers. Nothing here downloads anything; the figures need no internet connection.

Examples
--------
>>> from analysis import explore
>>> ex = explore.theorem1("sphere", 64, batch=4)          # doctest: +SKIP
>>> ex                                                     # doctest: +SKIP (the live view)
>>> ex.controls["eta"].value = 0.2                         # doctest: +SKIP
>>> ex.status.value                                        # doctest: +SKIP
"""

from ._base import NFE_GRID, SCHEDULES, SIGMA_FINAL, Explorer, UpdateInfo
from ._projection_error import ProjectionErrorExplorer, projection_error
from ._samplers import SamplersExplorer, samplers
from ._theorem1 import Theorem1Explorer, theorem1

__all__ = [
    "NFE_GRID",
    "SCHEDULES",
    "SIGMA_FINAL",
    "Explorer",
    "ProjectionErrorExplorer",
    "SamplersExplorer",
    "Theorem1Explorer",
    "UpdateInfo",
    "projection_error",
    "samplers",
    "theorem1",
]
