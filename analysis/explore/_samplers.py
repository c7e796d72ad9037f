"""The samplers explorer: trajectories and ODE error of the registry's samplers (THEORY §5)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
import torch

import toymanifold as tm
from toymanifold.samplers import SAMPLERS
from toymanifold.validation import check_int, check_positive

from .. import figures as F
from .._common import one_cpu_thread
from ..figures._plotly import _TOP_LEGEND
from ..metrics import ode_error, ode_reference
from ._base import (
    _F64,
    NFE_GRID,
    SCHEDULES,
    SIGMA_FINAL,
    Explorer,
    _box,
    _Cache,
    _Counted,
    _default_sigma_max,
    _denoiser_name,
    _figure_widget,
    _toy_data,
)

# --------------------------------------------------------------------------- samplers


@dataclass(frozen=True)
class _Run:
    """One sampler run of the samplers explorer: shown paths, ODE error and cost."""

    coords: np.ndarray  # (N+1, show, k) chart coordinates of the first `show` runs
    ode_error: float  # mean ‖x_0 − x_0^ref‖ over the batch
    nfe: int  # model evaluations actually made


class SamplersExplorer(Explorer):
    """A sampler of :data:`toymanifold.samplers.SAMPLERS` against DDIM, live (THEORY §5).

    Controls: ``sampler`` (the registry's samplers by label), ``nfe`` (model evaluations; a
    sampler with two per step gets ``⌊NFE/2⌋`` steps), ``gamma`` and ``mu`` (gradient
    estimation's γ and μ; disabled for the other samplers, whose settings are fixed),
    ``schedule`` (the paper's construction, log-linear or Karras, all from σ_max to
    σ(0) ≈ 0.01). Every run starts from the same ``x_N = σ_max ξ``; stochastic runs draw
    their noise from the seed, so a setting always gives the same numbers.

    Left: the first ``show`` trajectories of the selected sampler and of DDIM in the data
    set's chart (2-D for curves and planes, 3-D for surfaces; points outside the box are
    cut), with their final samples. Right: the mean ODE error ``‖x_0 − x_0^ref‖`` against
    NFE (5, 10, 20 and the current NFE) for both; the reference is Heun on a 50-step
    log-linear schedule refined ``refine`` times (:func:`analysis.ode_reference`), computed
    once.

    What each control recomputes: ``nfe`` — the two runs at the new NFE (none if it is on
    the curve's grid); ``sampler``, ``gamma``, ``mu`` — the selected sampler's runs at the
    curve's NFEs and the current NFE (DDIM's are kept); ``schedule`` — all runs of both.
    Runs are cached by (sampler, γ, μ, schedule, NFE).

    Trace roles: ``"K"``, ``"ddim paths"``, ``"ddim finals"``, ``"selected paths"``,
    ``"selected finals"``, ``"ddim ode"``, ``"selected ode"`` (the curves), ``"ddim now"``,
    ``"selected now"`` (the current NFE). The selected traces are hidden when the selected
    sampler is DDIM. ``runs`` holds the current :class:`_Run` of each (``"ddim"``,
    ``"selected"``).
    """

    _roles: ClassVar[dict[str, int]] = {
        "K": 0, "ddim paths": 1, "ddim finals": 2, "selected paths": 3, "selected finals": 4,
        "ddim ode": 5, "selected ode": 6, "ddim now": 7, "selected now": 8,
    }  # fmt: skip

    def __init__(self, data, denoiser, name, *, sampler, nfe, gamma, mu, schedule, sigma_max, batch, show, refine,
                 seed, progress):  # fmt: skip
        self.data, self.denoiser_name, self.seed = data, name, seed
        self.model_calls = 0
        self.denoiser = _Counted(denoiser, self)
        K = data.manifold
        n = K.ambient_dim
        self.sigma_max, self.show = sigma_max, show
        self.x = sigma_max * torch.randn(batch, n, generator=torch.Generator().manual_seed(seed), dtype=_F64)
        self.view = {"coords": list(data.chart.names), "manifold": data.chart.background.numpy(),
                     "curve": data.chart.curve, "limits": _box(data.chart)}  # fmt: skip
        self._runs = _Cache(512)
        labels = [(info.label, key) for key, info in SAMPLERS.items()]
        cont = {"continuous_update": False}
        controls = {
            "sampler": widgets.Dropdown(options=labels, value=sampler, description="sampler"),
            "nfe": widgets.IntSlider(value=nfe, min=2, max=max(50, nfe), description="NFE", **cont),
            "gamma": widgets.FloatSlider(value=gamma, min=0.5, max=max(3.5, gamma), step=0.05, description="γ", **cont),
            "mu": widgets.FloatSlider(value=mu, min=0.0, max=0.95, step=0.05, description="μ", **cont),
            "schedule": widgets.Dropdown(options=[(v, k) for k, v in SCHEDULES.items()], value=schedule,
                                         description="schedule"),
        }  # fmt: skip
        super().__init__(controls, progress=progress)
        self.reference_steps = 50 * refine
        with one_cpu_thread(), self._steps(2 * self.reference_steps, "reference (Heun)") as tick:
            heun = functools.partial(tm.heun, callback=lambda _: tick())
            grid = tm.schedules.loglinear(sigma_max, SIGMA_FINAL, 50)
            self.reference = ode_reference(self.denoiser, grid, self.x, refine=refine, sampler=heun)
            state = self._state([])
        traces, layout = self._traces(state), self._layout()
        self._attach(_figure_widget(traces, layout))
        self._show(state)

    # -- computation
    def _schedule(self, family: str, n_steps: int) -> torch.Tensor:
        if family == "paper":
            from ..report.context import toy_paper_schedule

            return toy_paper_schedule(n_steps, self.sigma_max)
        maker = tm.schedules.karras if family == "karras" else tm.schedules.loglinear
        return maker(self.sigma_max, SIGMA_FINAL, n_steps)

    def _run(self, name: str, gamma: float, mu: float, family: str, nfe: int) -> _Run:
        info = SAMPLERS[name]
        sig = self._schedule(family, max(info.steps_for_nfe(nfe), 1))
        kw: dict[str, Any] = {"gamma": gamma, "mu": mu} if name == "gradient_estimation" else {}
        if info.stochastic or mu > 0:
            kw["generator"] = self.seed + 11
        traj = info.run(self.denoiser, sig, self.x, return_trajectory=True, **kw)
        T, _, n = traj.xs.shape
        shown = traj.xs[:, : self.show].reshape(-1, n)
        coords = self.data.chart.to_coords(shown).reshape(T, -1, len(self.view["coords"])).numpy()
        err = float(ode_error(traj.xs[-1], self.reference).mean())
        return _Run(coords, err, traj.nfe)

    def _settings(self) -> tuple[str, float, float, str, int]:
        v = {k: w.value for k, w in self.controls.items()}
        # γ and μ on the slider's grid: a slider may report 0.9999999999999999 for 1.
        gamma, mu = round(float(v["gamma"]), 10), round(float(v["mu"]), 10)
        if v["sampler"] != "gradient_estimation":
            gamma, mu = 1.0, 0.0  # fixed by the sampler itself; not part of its cache key
        return v["sampler"], gamma, mu, v["schedule"], int(v["nfe"])

    def _label(self, name: str, gamma: float, mu: float) -> str:
        if name != "gradient_estimation" or (gamma, mu) == (2.0, 0.0):
            return SAMPLERS[name].label
        return f"GE (γ={gamma:g}" + (f", μ={mu:g})" if mu else ")")

    def _state(self, missed: list[str]) -> dict[str, Any]:
        name, gamma, mu, family, nfe = self._settings()
        nfes = sorted(set(NFE_GRID) | {nfe})
        wanted = [("ddim", 1.0, 0.0, family, k) for k in nfes]
        if name != "ddim":
            wanted += [(name, gamma, mu, family, k) for k in nfes]
        todo = [key for key in wanted if key not in self._runs]
        with self._steps(len(todo), "sampler runs") as tick:
            for key in todo:
                self._runs.get_or(
                    key, lambda key=key: self._run(*key), missed, f"{self._label(*key[:3])} at NFE {key[4]}"
                )
                tick()
        runs = {k: self._runs.get_or(k, lambda k=k: self._run(*k)) for k in wanted}
        return {"name": name, "label": self._label(name, gamma, mu), "gamma": gamma, "mu": mu, "family": family,
                "nfe": nfe, "nfes": nfes, "runs": runs}  # fmt: skip

    # -- drawing
    def _axes(self) -> tuple[str, str]:
        """The 2-D axes of the ODE-error panel: x/y beside a 3-D scene, x2/y2 beside a 2-D chart."""
        return ("x", "y") if len(self.view["coords"]) == 3 else ("x2", "y2")

    def _traces(self, s: dict[str, Any]) -> list[dict[str, Any]]:
        name, family, nfe = s["name"], s["family"], s["nfe"]
        ddim, sel = SAMPLERS["ddim"], SAMPLERS[name]
        key = {"ddim": ("ddim", 1.0, 0.0, family), "selected": (name, s["gamma"], s["mu"], family)}
        now = {who: s["runs"][(*k, nfe)] for who, k in key.items()}
        self.runs = now
        paths = [
            {"name": ddim.label, "color": ddim.color, "coords": now["ddim"].coords},
            {"name": s["label"], "color": sel.color, "coords": now["selected"].coords},
        ]
        traces = F.trajectory_traces(self.view, paths)
        xr, yr = self._axes()
        for who, color, label in (("ddim", ddim.color, ddim.label), ("selected", sel.color, s["label"])):
            runs = [s["runs"][(*key[who], k)] for k in s["nfes"]]
            traces.append({"type": "scatter", "xaxis": xr, "yaxis": yr, "x": [r.nfe for r in runs],
                           "y": [r.ode_error for r in runs], "mode": "lines+markers", "name": f"{label}: ODE error",
                           "line": {"color": color, "width": 1.5}, "showlegend": False})  # fmt: skip
        for who, color, label in (("ddim", ddim.color, ddim.label), ("selected", sel.color, s["label"])):
            run = now[who]
            traces.append({"type": "scatter", "xaxis": xr, "yaxis": yr, "x": [run.nfe], "y": [run.ode_error],
                           "mode": "markers", "name": f"{label}: NFE {run.nfe}", "showlegend": False,
                           "marker": {"color": color, "size": 13, "symbol": "star",
                                      "line": {"color": "black", "width": 1}}})  # fmt: skip
        hidden = name == "ddim"
        for role in ("selected paths", "selected finals", "selected ode", "selected now"):
            traces[self._roles[role]]["visible"] = not hidden
        return traces

    def _layout(self) -> dict[str, Any]:
        xr, yr = self._axes()
        return {
            "template": "plotly_white",
            "font": {"size": 13},
            "title": {"text": "", "font": {"size": 14}, "y": 0.98, "yanchor": "top"},
            **F.trajectory_layout(self.view, (0.0, 0.55)),
            "xaxis" + xr[1:]: {"domain": [0.66, 1.0], "anchor": yr, "type": "log",
                               "title": {"text": "model evaluations (NFE)"}, "tickvals": list(NFE_GRID)},
            "yaxis" + yr[1:]: {"type": "log", "anchor": xr,
                               "title": {"text": "ODE error: mean ‖x₀ − x₀^ref‖"}},
            "legend": _TOP_LEGEND,
            "margin": {"l": 10, "r": 20, "t": 100, "b": 20},
            "height": 600,
        }  # fmt: skip

    def _show(self, state: dict[str, Any]) -> None:
        self.state = state
        self._restyle(self._traces(state), keys=("x", "y", "z", "name", "visible", "line", "marker"))
        for name in ("gamma", "mu"):
            self.controls[name].disabled = state["name"] != "gradient_estimation"
        sel, ddim = self.runs["selected"], self.runs["ddim"]
        vs = "" if state["name"] == "ddim" else f"{state['label']} {sel.ode_error:.3g} (NFE {sel.nfe}) vs "
        text = (
            f"{self.denoiser_name} denoiser, {SCHEDULES[state['family']]} schedule: ODE error {vs}"
            f"DDIM {ddim.ode_error:.3g} (NFE {ddim.nfe}); reference: Heun, {self.reference_steps} steps"
        )
        self._say(text, ok=True)

    def _update(self, missed: list[str]) -> None:
        self._show(self._state(missed))

    def snapshot(self):
        """The current trajectories as the report's figure 6 (:func:`analysis.figures.trajectories_figure`)."""
        runs = {SAMPLERS["ddim"].label: self.runs["ddim"].coords}
        if self.state["name"] != "ddim":
            runs[self.state["label"]] = self.runs["selected"].coords
        data = {**self.view, "manifold": self.view["manifold"].tolist(), "denoiser": self.denoiser_name}
        return F.trajectories_figure({**data, "trajectories": {k: v.tolist() for k, v in runs.items()}})


def _default_denoiser(K: tm.Manifold, denoiser: Any, seed: int) -> tuple[Callable, str]:
    """``(denoiser, name)``: the ideal denoiser by default (of 2000 samples where ``K`` has no closed form)."""
    if denoiser is None or denoiser == "ideal":
        try:
            return tm.ideal_denoiser(K), "ideal"
        except TypeError:
            samples = K.sample(2000, torch.Generator().manual_seed(20_000 + seed))
            return tm.ideal_denoiser(tm.FiniteSet(samples)), "ideal"
    if denoiser == "projection":
        return tm.ProjectionDenoiser(K), "projection"
    if isinstance(denoiser, str):
        raise ValueError(f"denoiser must be a callable, 'ideal' or 'projection', got {denoiser!r}")
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    return denoiser, _denoiser_name(denoiser)


def samplers(
    manifold: Any = "sphere",
    denoiser: Any = None,
    *,
    ambient_dim: int | None = None,
    name: str | None = None,
    sampler: str = "gradient_estimation",
    nfe: int = 10,
    gamma: float = 2.0,
    mu: float = 0.0,
    schedule: str = "paper",
    sigma_max: float | None = None,
    batch: int = 64,
    show: int = 12,
    refine: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> SamplersExplorer:
    """Explore the samplers (THEORY §5): trajectories and ODE error as γ, μ, NFE and the schedule move.

    Parameters
    ----------
    manifold : str, ToyData or Manifold
        A name of :data:`toymanifold.datasets.DATASETS` (its chart gives the plot coordinates:
        2-D for curves and planes, 3-D for surfaces and point clouds), a built data set, or a
        manifold (identity chart in ``R^2``/``R^3``, else its principal components).
    denoiser : callable, "ideal", "projection" or None
        ``denoiser(x, sigma) -> eps`` on ``R^n``. None or ``"ideal"``: the closed-form ideal
        denoiser (THEORY §4), or the ideal denoiser of 2000 samples where ``K`` has none.
    ambient_dim : int, optional
        ``n`` for a data-set name (None: the registry's default, 64).
    name : str, optional
        The denoiser's name in the view (default: from its type).
    sampler, nfe, gamma, mu, schedule : initial values of the controls
        ``sampler`` a key of :data:`~toymanifold.samplers.SAMPLERS`; ``schedule`` one of
        ``"paper"``, ``"loglinear"``, ``"karras"``.
    sigma_max : float, optional
        Where every schedule starts (None: 10 × the RMS norm of the data); all end at σ(0) ≈ 0.01.
    batch : int
        Starting points (the ODE error is their mean).
    show : int
        Trajectories drawn (the first ``show`` of the batch).
    refine : int
        Heun sub-steps per step of the reference's 50-step grid.
    seed : int
        Seeds the starts and the noise of stochastic samplers.
    progress : bool
        Show progress during long recomputations (and while the reference is computed).

    Returns
    -------
    SamplersExplorer
    """
    data = _toy_data(manifold, ambient_dim, check_int(seed, "seed", minimum=0))
    den, default_name = _default_denoiser(data.manifold, denoiser, seed)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    check_int(nfe, "nfe", minimum=2)
    check_positive(gamma, "gamma")
    if not 0.0 <= float(mu) < 1.0:
        raise ValueError(f"mu must lie in [0, 1), got {mu}")
    batch = check_int(batch, "batch", minimum=1)
    show = min(check_int(show, "show", minimum=1), batch)
    sigma_max = _default_sigma_max(data.manifold, seed) if sigma_max is None else float(sigma_max)
    if not sigma_max > SIGMA_FINAL:
        raise ValueError(f"sigma_max must be > σ(0) = {SIGMA_FINAL:.6g}, got {sigma_max}")
    return SamplersExplorer(
        data, den, name or default_name, sampler=sampler, nfe=nfe, gamma=float(gamma), mu=float(mu),
        schedule=schedule, sigma_max=sigma_max, batch=batch, show=show, refine=check_int(refine, "refine", minimum=1),
        seed=seed, progress=progress,
    )  # fmt: skip
