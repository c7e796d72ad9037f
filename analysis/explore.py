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

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

import toymanifold as tm
from toymanifold.datasets import Chart, ToyData
from toymanifold.samplers import SAMPLERS
from toymanifold.validation import as_manifold, check_int, check_positive

from . import figures as F
from ._common import one_cpu_thread
from .bounds import theorem1_bounds
from .metrics import ode_error, ode_reference
from .projection_error import ProjectionErrors, eta_nu_curve
from .projection_error import projection_error as measure_projection_error

__all__ = [
    "Explorer",
    "ProjectionErrorExplorer",
    "SamplersExplorer",
    "Theorem1Explorer",
    "UpdateInfo",
    "projection_error",
    "samplers",
    "theorem1",
]

_F64 = torch.float64
#: σ(t = 0) of the DDPM table, ≈ 0.01: where the paper's schedule ends (THEORY §5).
SIGMA_FINAL = float(tm.schedules.ddpm_sigmas()[0])
#: The NFE budgets of the ODE-error curve (the paper's 5, 10, 20; the current NFE is added to it).
NFE_GRID = (5, 10, 20)
#: Schedule families of the samplers explorer, all from σ_max to SIGMA_FINAL.
SCHEDULES = {"paper": "paper construction", "loglinear": "log-linear", "karras": "Karras ρ = 7"}


@dataclass(frozen=True)
class UpdateInfo:
    """What one update did: the ``control`` that moved, what it ``recomputed`` and the wall ``seconds``."""

    control: str
    recomputed: tuple[str, ...]
    seconds: float


class _Cache(OrderedDict):
    """A small least-recently-used cache: ``get(key, compute)`` computes on a miss and remembers it."""

    def __init__(self, maxsize: int = 128):
        super().__init__()
        self.maxsize = maxsize

    def get_or(self, key: Any, compute: Callable[[], Any], missed: list[str] | None = None, what: str = "") -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = compute()
        if missed is not None:
            missed.append(what)
        while len(self) > self.maxsize:
            self.popitem(last=False)
        return value


def _round_sig(x: float, digits: int = 2) -> float:
    return float(f"{x:.{digits - 1}e}")


def _default_sigma_max(K: tm.Manifold, seed: int) -> float:
    """10 × the RMS norm of the data, 2 significant digits (the report's σ_max)."""
    x = K.sample(1000, torch.Generator().manual_seed(seed))
    return _round_sig(10.0 * float(x.square().sum(1).mean().sqrt()))


def _toy_data(manifold: Any, ambient_dim: int | None, seed: int) -> ToyData:
    """A :class:`ToyData` from a data-set name, a ToyData, or a manifold (charted by identity or PCA)."""
    if isinstance(manifold, str):
        return tm.datasets.build(manifold, ambient_dim, seed)
    if isinstance(manifold, ToyData):
        return manifold
    K = as_manifold(manifold, "manifold")
    n = K.ambient_dim
    if ambient_dim is not None and check_int(ambient_dim, "ambient_dim", minimum=1) != n:
        raise ValueError(
            f"ambient_dim must be None or {n} (the manifold's) when a manifold is given, got {ambient_dim}"
        )
    bg = K.sample(2000, torch.Generator().manual_seed(10_000 + seed))
    if n in (2, 3):
        names = tuple(f"x{'₁₂₃'[i]}" for i in range(n))

        def to_coords(x):
            return torch.as_tensor(x, dtype=_F64)
    else:
        k = 2 if K.intrinsic_dim <= 1 else 3
        mean = bg.mean(0)
        pcs = torch.linalg.svd(bg - mean, full_matrices=False)[2][:k]
        names = tuple(f"PC {i + 1}" for i in range(k))

        def to_coords(x):
            return (torch.as_tensor(x, dtype=_F64) - mean) @ pcs.T

    return ToyData("custom", repr(K), K, Chart(names, to_coords, False, to_coords(bg)))


def _box(chart: Chart) -> list[list[float]]:
    """The chart's box: the data's bounding box enlarged by a quarter of its size on each side."""
    lo, hi = chart.background.min(0).values, chart.background.max(0).values
    pad = 0.25 * (hi - lo).clamp_min(1e-3)
    return torch.stack([lo - pad, hi + pad], 1).tolist()


def _denoiser_name(denoiser: Any) -> str:
    """The name under which the figures colour a denoiser (:data:`analysis.figures.DENOISER_COLORS`)."""
    for cls, name in (
        (tm.PerturbedProjectionDenoiser, "perturbed"),
        (tm.ProjectionDenoiser, "projection"),
        (tm.denoisers.IdealDenoiser, "ideal"),
        (tm.MLPDenoiser, "MLP"),
    ):
        if isinstance(denoiser, cls):
            return name
    return type(denoiser).__name__


class _Counted:
    """A denoiser that counts its calls (``explorer.model_calls``), else unchanged."""

    def __init__(self, denoiser: Callable, owner: Explorer):
        self.denoiser, self.owner = denoiser, owner
        self.ambient_dim = getattr(denoiser, "ambient_dim", None)

    def __call__(self, x, sigma):
        self.owner.model_calls += 1
        return self.denoiser(x, sigma)


# --------------------------------------------------------------------------- the base class


class Explorer:
    """The parts every explorer has; subclasses build the figure and implement ``_update(control)``.

    Attributes
    ----------
    controls : dict[str, ipywidgets.Widget]
        The controls by name; observing their ``value`` drives the updates.
    figure : plotly.graph_objects.FigureWidget
        The live figure; :meth:`trace` finds a trace by its role.
    status : ipywidgets.HTML
        One line on the current state (green when all is well, red when a condition fails
        or a setting is invalid); :attr:`status_text` is its plain text.
    progress : ipywidgets.IntProgress
        Visible only while a recomputation of several parts runs.
    widget : ipywidgets.VBox
        Controls, status, progress and figure; what displaying the explorer shows.
    last_update : UpdateInfo or None
        What the last update recomputed and how long it took.
    model_calls : int
        Denoiser evaluations made so far (the explorer's own denoiser runs).
    """

    _roles: ClassVar[dict[str, int]] = {}

    def __init__(self, controls: dict[str, widgets.Widget], *, progress: bool = True):
        self.controls = controls
        self.status = widgets.HTML()
        self.status_text = ""
        self.progress = widgets.IntProgress(min=0, max=1, layout=widgets.Layout(visibility="hidden", width="60%"))
        self._show_progress = bool(progress)
        self.last_update: UpdateInfo | None = None
        self._holding = False

    def _attach(self, figure: go.FigureWidget) -> None:
        """Install the figure, lay out the view and start listening to the controls."""
        self.figure = figure
        row = widgets.Box(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([row, self.status, self.progress, figure])
        for name, control in self.controls.items():
            control.observe(functools.partial(self._changed, name), names="value")
        self._built = True

    # -- display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={w.value!r}" for k, w in self.controls.items())
        return f"{type(self).__name__}({values})"

    # -- helpers for subclasses and users
    def trace(self, role: str):
        """The figure's trace with this role (the roles are listed in each explorer's docstring)."""
        if role not in self._roles:
            raise ValueError(f"role must be one of {sorted(self._roles)}, got {role!r}")
        return self.figure.data[self._roles[role]]

    def set_values(self, **values: Any) -> None:
        """Set several controls at once, updating the figure once (e.g. ``set_values(gamma=1.0, mu=0.0)``)."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown controls {sorted(unknown)}; the controls are {sorted(self.controls)}")
        with self._held():
            for name, value in values.items():
                self.controls[name].value = value
        self._changed(",".join(values), None)

    def clear_cache(self) -> None:
        """Forget every cached run; :meth:`refresh` then recomputes the current state."""
        for value in vars(self).values():
            if isinstance(value, _Cache):
                value.clear()

    def refresh(self) -> None:
        """Recompute what the current settings need (nothing, unless the cache was cleared) and redraw."""
        self._changed("refresh", None)

    @contextmanager
    def _held(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def _changed(self, name: str, change: Any) -> None:
        if self._holding:
            return
        t0 = time.perf_counter()
        missed: list[str] = []
        try:
            with one_cpu_thread():
                self._update(missed)
        except ValueError as exc:  # a combination of settings the computation rejects
            self._say(f"Invalid setting: {exc}", ok=False)
            missed.append("nothing (invalid setting)")
        self.last_update = UpdateInfo(name, tuple(missed), time.perf_counter() - t0)

    def _update(self, missed: list[str]) -> None:
        raise NotImplementedError

    def _say(self, text: str, *, ok: bool) -> None:
        self.status_text = text
        color = "#0a7d22" if ok else "#b00020"
        self.status.value = f'<span style="color:{color}">{_html_escape(text)}</span>'
        self.figure.layout.title.text = text if len(text) < 150 else text[:147] + "…"

    @contextmanager
    def _steps(self, total: int, text: str) -> Iterator[Callable[[], None]]:
        """Progress over ``total`` parts: the widget's bar once displayed, tqdm while the explorer is built."""
        if total <= 1 or not self._show_progress:
            yield lambda: None
            return
        if not hasattr(self, "_built"):
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=text, leave=False)
            yield lambda: bar.update(1)
            bar.close()
            return
        p = self.progress
        p.max, p.value, p.description = total, 0, text
        p.layout.visibility = "visible"

        def tick():
            p.value += 1

        try:
            yield tick
        finally:
            p.layout.visibility = "hidden"

    def _restyle(self, traces: list[dict[str, Any]], keys=("x", "y", "z", "name", "fillcolor", "line", "visible")):
        """Give the figure's traces the data of ``traces`` (same order and kinds), in one message."""
        with self.figure.batch_update():
            for current, new in zip(self.figure.data, traces, strict=True):
                for key in keys:
                    if key in new:
                        current[key] = new[key]


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _figure_widget(traces: list[dict[str, Any]], layout: dict[str, Any]) -> go.FigureWidget:
    return go.FigureWidget(data=traces, layout=layout)


# --------------------------------------------------------------------------- Theorem 1


class Theorem1Explorer(Explorer):
    """DDIM with ``PerturbedProjectionDenoiser(η)`` against Theorem 1's envelope (THEORY §3), live.

    Controls: ``eta`` (η), ``mode`` (the error's direction), ``n_steps`` (N), ``sigma_max``,
    ``sigma_min`` (a log-linear schedule, σ_0 = σ_min > 0), ``nu`` (ν). The starts are
    ``x_N = σ_max ξ`` with one fixed ``ξ``; the exact projection runs beside the perturbed one.

    What each control recomputes: ``eta`` and ``mode`` — the perturbed DDIM runs and the
    bounds; ``n_steps``, ``sigma_min`` — both runs and the bounds; ``sigma_max`` — the starts,
    both runs and the bounds; ``nu`` — the bounds only (no denoiser call). Runs are cached by
    (schedule, η, mode), so returning to a setting costs no denoiser call.

    Trace roles (:meth:`~Explorer.trace`): ``"envelope lower"``, ``"envelope upper"`` (the
    envelope in units of ``dist_K(x_N)``, i.e. ``theorem1_bounds(...).lower``/``.upper``
    without ``dist_N``), ``"band lower"``, ``"band upper"`` (``min r_N · L_t``,
    ``max r_N · U_t``), ``"nu lines"``, ``"perturbed distance"``, ``"perturbed ratio"``,
    ``"exact distance"``, ``"exact ratio"`` (runs joined by NaN gaps: distance relative to
    ``dist_K(x_N)``, and ``r_t``).
    """

    _roles: ClassVar[dict[str, int]] = {
        "envelope lower": 0, "envelope upper": 1, "band lower": 2, "band upper": 3, "nu lines": 4,
        "perturbed distance": 5, "perturbed ratio": 6, "exact distance": 7, "exact ratio": 8,
    }  # fmt: skip
    EXACT = "exact projection (η = 0)"

    def __init__(self, manifold, *, eta, mode, n_steps, sigma_max, sigma_min, nu, batch, seed, progress):
        self.manifold = K = manifold
        self.seed = seed
        n = K.ambient_dim
        self.xi = torch.randn(batch, n, generator=torch.Generator().manual_seed(seed), dtype=_F64)
        self.model_calls = 0
        self._starts = _Cache(8)
        self._runs = _Cache(256)
        hi = math.log10(sigma_max)
        lo = math.log10(sigma_min)
        cont = {"continuous_update": False}
        controls = {
            "eta": widgets.FloatSlider(value=eta, min=0.0, max=0.95, step=0.01, description="η", **cont),
            "mode": widgets.ToggleButtons(options=["random", "outward", "inward"], value=mode, description="error"),
            "n_steps": widgets.IntSlider(value=n_steps, min=1, max=max(200, n_steps), description="N", **cont),
            "sigma_max": widgets.FloatLogSlider(value=sigma_max, base=10, min=hi - 2, max=hi + 2, step=0.05,
                                                description="σ_max", **cont),
            "sigma_min": widgets.FloatLogSlider(value=sigma_min, base=10, min=min(-4.0, lo - 1), max=max(0.0, lo + 1),
                                                step=0.05, description="σ_min", **cont),
            "nu": widgets.FloatSlider(value=nu, min=1.0, max=max(10.0, nu), step=0.05, description="ν"),
        }  # fmt: skip
        super().__init__(controls, progress=progress)
        with one_cpu_thread():
            state = self._state([])
        self._attach(_figure_widget(F.theorem1_view_traces(state), F.theorem1_view_layout("", n_steps=n_steps)))
        self._show(state)

    def _ddim_distances(self, den, sig, x) -> torch.Tensor:
        """``dist_K(x_t)`` along DDIM, ``(B, N+1)``."""
        traj = tm.ddim(_Counted(den, self), sig, x, return_trajectory=True)
        N, B, n = traj.xs.shape
        return self.manifold.distance(traj.xs.reshape(-1, n)).reshape(N, B).T

    def _state(self, missed: list[str]) -> dict[str, Any]:
        v = {name: w.value for name, w in self.controls.items()}
        eta, mode, nu = float(v["eta"]), v["mode"], float(v["nu"])
        sig = tm.schedules.loglinear(float(v["sigma_max"]), float(v["sigma_min"]), int(v["n_steps"]))
        K, n = self.manifold, self.manifold.ambient_dim
        s_max = float(sig[0])

        def start():
            x = s_max * self.xi
            d = K.distance(x)
            return x, d, d / (math.sqrt(n) * s_max)

        x, _, r_N = self._starts.get_or(s_max, start, missed, "starts")
        key = tuple(sig.tolist())
        pert = self._runs.get_or(
            (key, eta, mode),
            lambda: self._ddim_distances(tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=self.seed), sig, x),
            missed,
            "perturbed runs",
        )
        exact = self._runs.get_or(
            (key, "exact"), lambda: self._ddim_distances(tm.ProjectionDenoiser(K), sig, x), missed, "exact runs"
        )
        b = theorem1_bounds(sig, eta, nu, r_N)
        missed.append("bounds")
        self.bounds = b
        return {
            "sigmas": sig, "n": n, "nu": nu, "r_N": r_N, "lower": b.lower[:, 0], "upper": b.upper[:, 0],
            "L": b.L, "U": b.U, "conditions": b.conditions(), "runs": {f"perturbed {mode}": pert, self.EXACT: exact},
        }  # fmt: skip

    def _show(self, state: dict[str, Any]) -> None:
        self.state = state
        self._restyle(F.theorem1_view_traces(state))
        n_steps = len(state["sigmas"]) - 1
        self.figure.layout.xaxis.title.text = self.figure.layout.xaxis2.title.text = f"σ_t (DDIM, N = {n_steps} →)"
        c = state["conditions"]
        self._say(F.theorem1_conditions_text(c), ok=c["hold"] == c["runs"])

    def _update(self, missed: list[str]) -> None:
        self._show(self._state(missed))

    def snapshot(self):
        """The current state as the report's matplotlib figure 7 (:func:`analysis.figures.envelope_figure`)."""
        s, b = self.state, self.bounds
        data = {"eta": b.eta, "nu": b.nu, "sigmas": s["sigmas"].tolist(), "L": b.L.tolist(), "U": b.U.tolist()}
        return F.envelope_figure({**data, "runs": {k: v.tolist() for k, v in s["runs"].items()}})


def theorem1(
    manifold: Any = "sphere",
    ambient_dim: int | None = 64,
    *,
    eta: float = 0.1,
    mode: str = "random",
    n_steps: int = 20,
    sigma_max: float | None = None,
    sigma_min: float = 0.01,
    nu: float = 3.5,
    batch: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Theorem1Explorer:
    """Explore Theorem 1 (THEORY §3): DDIM with a projection of known error η against its envelope.

    Parameters
    ----------
    manifold : str, ToyData or Manifold
        A name of :data:`toymanifold.datasets.DATASETS` (built in ``R^ambient_dim``), a built
        data set, or any manifold.
    ambient_dim : int or None
        ``n`` for a data-set name (None: the registry's default, 64).
    eta, mode, n_steps, sigma_max, sigma_min, nu : initial values of the controls
        ``sigma_max`` None: 10 × the RMS norm of the data (the report's σ_max).
    batch : int
        Starting points ``x_N = σ_max ξ``.
    seed : int
        Seeds ``ξ`` and the random error directions.
    progress : bool
        Show progress during long recomputations.

    Returns
    -------
    Theorem1Explorer
    """
    K = _toy_data(manifold, ambient_dim, seed).manifold if not isinstance(manifold, tm.Manifold) else manifold
    batch = check_int(batch, "batch", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    sigma_max = _default_sigma_max(K, seed) if sigma_max is None else float(sigma_max)
    # Validate the initial values once, with the library's own messages.
    tm.schedules.loglinear(sigma_max, sigma_min, n_steps)
    tm.PerturbedProjectionDenoiser(K, eta, mode=mode)
    theorem1_bounds([2.0, 1.0], eta, nu, 1.0)
    return Theorem1Explorer(
        K, eta=eta, mode=mode, n_steps=n_steps, sigma_max=sigma_max, sigma_min=sigma_min, nu=nu,
        batch=batch, seed=seed, progress=progress,
    )  # fmt: skip


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
            from .report.context import toy_paper_schedule

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
            "legend": F._TOP_LEGEND,
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


# --------------------------------------------------------------------------- projection error


def _concat(parts: list[ProjectionErrors]) -> ProjectionErrors:
    """Measurements of several noise levels as one flat :class:`ProjectionErrors` (σ-major, in the given order)."""
    fields = ("sigma", "dist", "err", "r", "eta")
    return ProjectionErrors(*(torch.cat([getattr(p, f) for p in parts]) for f in fields), parts[0].ambient_dim)


class ProjectionErrorExplorer(Explorer):
    """How far a denoiser is from projection (THEORY §2), live: ``η̂(ν)`` and ``η`` over σ.

    The noise levels form a fixed log-spaced grid; each level holds ``num_samples`` pairs
    ``x = x0 + σ ε`` measured by :func:`analysis.projection_error` with the seed
    :meth:`level_seed` ``(k)``, so a level's pairs do not depend on which other levels were
    measured. Controls: ``sigma_range`` (the levels used, a range of the grid) and ``nu``.

    Left: ``η̂(ν)`` (the maximum of ``η`` over ν-admissible pairs, :func:`analysis.eta_nu_curve`)
    over the ν grid, plotted at ``ν − 1`` on a log axis, with a star at the control's ν.
    Right: the histogram of ``η(x, σ)`` of the ν-admissible pairs per noise level (colour:
    number of pairs), their maximum per level, and the line ``η̂(ν)``.

    What each control recomputes: ``sigma_range`` — the levels not measured before (one
    denoiser call each), then the curve and the histogram; ``nu`` — the star and the
    histogram (no denoiser call).

    Trace roles: ``"eta_hat"`` (the curve; ``x = ν − 1``, ``y = η̂``), ``"eta_hat now"``,
    ``"histogram"`` (a heatmap: ``x`` the σ bin edges, ``y`` the η bin edges, ``z`` counts,
    None where 0), ``"level max"``, ``"eta_hat line"``. ``errors`` holds the pairs of the
    current range (a flat :class:`~analysis.ProjectionErrors`).
    """

    _roles: ClassVar[dict[str, int]] = {"eta_hat": 0, "eta_hat now": 1, "histogram": 2, "level max": 3,
                                        "eta_hat line": 4}  # fmt: skip

    def __init__(self, denoiser, manifold, name, *, sigmas, num_samples, nus, sigma_range, nu, seed, progress):
        self.manifold, self.denoiser_name, self.seed = manifold, name, seed
        self.model_calls = 0
        self.denoiser = _Counted(denoiser, self)
        self.sigmas, self.nus, self.num_samples = sigmas, nus, num_samples
        self._levels = _Cache(maxsize=len(sigmas))
        options = [(f"{s:.3g}", i) for i, s in enumerate(sigmas.tolist())]
        controls = {
            "sigma_range": widgets.SelectionRangeSlider(options=options, index=sigma_range, description="σ range",
                                                        continuous_update=False),
            "nu": widgets.FloatSlider(value=nu, min=1.0, max=float(nus.max()), step=0.01, description="ν"),
        }  # fmt: skip
        super().__init__(controls, progress=progress)
        with one_cpu_thread():
            state = self._state([])
        traces = self._traces(state)
        self._attach(_figure_widget(traces, self._layout()))
        self._show(state)

    def level_seed(self, k: int) -> int:
        """The generator seed of noise level ``k``: ``1_000_003 · seed + k``."""
        return 1_000_003 * self.seed + k

    def _level(self, k: int) -> ProjectionErrors:
        return measure_projection_error(
            self.denoiser, self.manifold, [float(self.sigmas[k])], self.num_samples, generator=self.level_seed(k)
        )

    def _state(self, missed: list[str]) -> dict[str, Any]:
        i, j = self.controls["sigma_range"].value
        nu = float(self.controls["nu"].value)
        todo = [k for k in range(i, j + 1) if k not in self._levels]
        with self._steps(len(todo), "noise levels") as tick:
            for k in todo:
                self._levels.get_or(k, lambda k=k: self._level(k), missed, f"level σ = {float(self.sigmas[k]):.3g}")
                tick()
        self.errors = errors = _concat([self._levels.get_or(k, lambda k=k: self._level(k)) for k in range(i, j + 1)])
        missed.append("curve and histogram")
        return {"range": (i, j), "nu": nu, "errors": errors, "curve": eta_nu_curve(errors, self.nus),
                "now": eta_nu_curve(errors, [nu])}  # fmt: skip

    def _histogram(self, s: dict[str, Any]) -> dict[str, np.ndarray]:
        """Counts of the ν-admissible pairs per (noise level, log-spaced η bin)."""
        i, j = s["range"]
        e = s["errors"]
        r, eta = e.r.numpy(), e.eta.numpy()
        ok = np.isfinite(eta) & (r >= 1.0 / s["nu"]) & (r <= s["nu"])
        pos = eta[np.isfinite(eta) & (eta > 0)]
        lo = 10.0 ** math.floor(math.log10(max(pos.min(), F.ETA_FLOOR))) if pos.size else F.ETA_FLOOR
        hi = 10.0 ** math.ceil(math.log10(max(pos.max(), lo * 10))) if pos.size else 1.0
        eta_edges = np.logspace(math.log10(lo), math.log10(hi), 41)
        levels = self.sigmas[i : j + 1].numpy()
        level_of = np.repeat(np.arange(levels.size), self.num_samples)
        clipped = np.clip(eta[ok], lo, hi * (1 - 1e-12))
        counts, _, _ = np.histogram2d(level_of[ok], clipped, bins=[np.arange(levels.size + 1) - 0.5, eta_edges])
        # Column edges at the geometric midpoints of the levels (one column per level).
        mid = np.sqrt(levels[:-1] * levels[1:]) if levels.size > 1 else np.empty(0)
        ratio = levels[1] / levels[0] if levels.size > 1 else 1.5
        sigma_edges = np.concatenate([[levels[0] / math.sqrt(ratio)], mid, [levels[-1] * math.sqrt(ratio)]])
        per_level = np.full(levels.size, np.nan)
        for k in range(levels.size):
            sel = ok & (level_of == k)
            if sel.any():
                per_level[k] = eta[sel].max()
        return {"sigma_edges": sigma_edges, "eta_edges": eta_edges, "counts": counts, "levels": levels,
                "max": per_level}  # fmt: skip

    def _traces(self, s: dict[str, Any]) -> list[dict[str, Any]]:
        color = F.color_of(self.denoiser_name) or "#1b9e77"
        curve, now = s["curve"], s["now"]
        h = self._histogram(s)
        self.histogram = h
        z = np.where(h["counts"].T > 0, h["counts"].T, np.nan)
        eta_now = float(now.eta_hat[0])
        ends = [h["sigma_edges"][0], h["sigma_edges"][-1]]
        return [
            {"type": "scatter", "x": self.nus.numpy() - 1.0, "y": curve.eta_hat.numpy(), "mode": "lines+markers",
             "line": {"color": color}, "name": f"{self.denoiser_name}: η̂(ν)", "xaxis": "x", "yaxis": "y"},
            {"type": "scatter", "x": [s["nu"] - 1.0], "y": [eta_now], "mode": "markers", "name": f"ν = {s['nu']:g}",
             "marker": {"color": color, "size": 15, "symbol": "star", "line": {"color": "black", "width": 1}},
             "xaxis": "x", "yaxis": "y", "showlegend": False},
            {"type": "heatmap", "x": h["sigma_edges"], "y": h["eta_edges"], "z": z, "colorscale": "Viridis",
             "colorbar": {"title": {"text": "pairs"}, "x": 1.0, "len": 0.8}, "name": "η of ν-admissible pairs",
             "xaxis": "x2", "yaxis": "y2", "hovertemplate": "σ ≈ %{x:.3g}<br>η ≈ %{y:.2e}<br>%{z} pairs"},
            {"type": "scatter", "x": h["levels"], "y": h["max"], "mode": "markers", "name": "max per level",
             "marker": {"color": "white", "size": 6, "line": {"color": "black", "width": 1}}, "xaxis": "x2",
             "yaxis": "y2", "showlegend": False},
            {"type": "scatter", "x": ends, "y": [eta_now, eta_now], "mode": "lines", "name": "η̂(ν)",
             "line": {"color": color, "dash": "dash", "width": 2}, "xaxis": "x2", "yaxis": "y2", "showlegend": False},
        ]  # fmt: skip

    def _layout(self) -> dict[str, Any]:
        ticks = [v for v in (1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2, 3, 5, 10) if self.nus[0] <= v <= self.nus[-1]]
        return {
            "template": "plotly_white",
            "font": {"size": 13},
            "title": {"text": "", "font": {"size": 14}},
            "xaxis": {"type": "log", "domain": [0.0, 0.42], "tickvals": [v - 1 for v in ticks],
                      "ticktext": [f"{v:g}" for v in ticks], "title": {"text": "admissibility ν (spaced by ν − 1)"}},
            "yaxis": {"type": "log", "exponentformat": "power",
                      "title": {"text": "η̂(ν): max η over ν-admissible pairs"}},
            "xaxis2": {"type": "log", "domain": [0.54, 0.93], "anchor": "y2", "title": {"text": "noise level σ"}},
            "yaxis2": {"type": "log", "anchor": "x2", "exponentformat": "power",
                       "title": {"text": "η(x, σ) = ‖x̂₀ − proj_K(x)‖ / dist_K(x)"}},
            "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
            "height": 500,
            "showlegend": False,
        }  # fmt: skip

    def _show(self, state: dict[str, Any]) -> None:
        self.state = state
        self._restyle(self._traces(state), keys=("x", "y", "z", "name"))
        i, j = state["range"]
        now = state["now"]
        count, total = int(now.count[0]), now.total
        value = "none is admissible" if count == 0 else f"η̂ = {float(now.eta_hat[0]):.3g}"
        text = (f"{self.denoiser_name} denoiser, ν = {state['nu']:g}: {value} over {count} ν-admissible pairs of "
                f"{total} (σ from {float(self.sigmas[i]):.3g} to {float(self.sigmas[j]):.3g}, {j - i + 1} levels × "
                f"{self.num_samples})")  # fmt: skip
        self._say(text, ok=count > 0)

    def _update(self, missed: list[str]) -> None:
        self._show(self._state(missed))

    def snapshot(self):
        """The current ``η̂(ν)`` as the report's matplotlib figure 8 (:func:`analysis.figures.eta_nu_figure`)."""
        curve = self.state["curve"]
        data = {
            "nus": curve.nus.tolist(),
            "statistic": "max",
            "denoisers": {self.denoiser_name: curve.eta_hat.tolist()},
        }
        return F.eta_nu_figure(data)


def projection_error(
    denoiser: Callable,
    K: Any,
    *,
    ambient_dim: int | None = None,
    name: str | None = None,
    sigmas: Any = None,
    num_samples: int = 256,
    nus: Any = None,
    sigma_range: tuple[int, int] | None = None,
    nu: float = 2.0,
    seed: int = 0,
    progress: bool = True,
) -> ProjectionErrorExplorer:
    """Explore a denoiser's projection error (THEORY §2): ``η̂(ν)`` and ``η`` over σ as the σ range and ν move.

    Parameters
    ----------
    denoiser : callable ``(x, sigma) -> eps``
    K : Manifold, ToyData or str
        The data set (a name of :data:`toymanifold.datasets.DATASETS` is built in ``R^ambient_dim``).
    ambient_dim : int, optional
        ``n`` for a data-set name.
    name : str, optional
        The denoiser's name (and colour) in the view; default from its type.
    sigmas : 1-D array, optional
        The grid of noise levels (> 0, increasing); default 24 levels log-spaced from
        σ(0) ≈ 0.01 to 10 × the RMS norm of the data.
    num_samples : int
        Pairs per noise level.
    nus : 1-D array, optional
        The ν grid of the curve (≥ 1, increasing); default 31 values with ``ν − 1`` log-spaced
        from 0.01 to 9.
    sigma_range : (int, int), optional
        Initial range as indices into ``sigmas`` (default: the whole grid).
    nu : float
        Initial ν.
    seed : int
        Seeds the pairs (:meth:`ProjectionErrorExplorer.level_seed`).
    progress : bool
        Show progress while levels are measured.

    Returns
    -------
    ProjectionErrorExplorer
    """
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    seed = check_int(seed, "seed", minimum=0)
    manifold = K if isinstance(K, tm.Manifold) else _toy_data(K, ambient_dim, seed).manifold
    if sigmas is None:
        top = _default_sigma_max(manifold, seed)
        sigmas = torch.logspace(math.log10(SIGMA_FINAL), math.log10(top), 24, dtype=_F64)
    sigmas = torch.as_tensor(sigmas, dtype=_F64).reshape(-1)
    if sigmas.numel() < 2 or not bool((sigmas > 0).all()) or not bool((sigmas[1:] > sigmas[:-1]).all()):
        raise ValueError(f"sigmas must hold at least 2 increasing noise levels > 0, got {sigmas.tolist()}")
    nus = 1.0 + torch.logspace(-2, math.log10(9.0), 31, dtype=_F64) if nus is None else torch.as_tensor(nus, dtype=_F64)
    nus = nus.reshape(-1)
    if nus.numel() < 2 or not bool((nus >= 1).all()) or not bool((nus[1:] > nus[:-1]).all()):
        raise ValueError(f"nus must hold at least 2 increasing values >= 1, got {nus.tolist()}")
    last = sigmas.numel() - 1
    i, j = (0, last) if sigma_range is None else (int(sigma_range[0]), int(sigma_range[1]))
    if not 0 <= i <= j <= last:
        raise ValueError(f"sigma_range must be indices 0 <= i <= j <= {last} into sigmas, got {sigma_range}")
    return ProjectionErrorExplorer(
        denoiser, manifold, name or _denoiser_name(denoiser), sigmas=sigmas,
        num_samples=check_int(num_samples, "num_samples", minimum=1), nus=nus, sigma_range=(i, j), nu=float(nu),
        seed=seed, progress=progress,
    )  # fmt: skip
