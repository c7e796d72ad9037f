"""The explorers' shared machinery: the base class, caches, constants and small helpers."""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

import toymanifold as tm
from toymanifold.datasets import Chart, ToyData
from toymanifold.validation import as_manifold, check_int

from .._common import one_cpu_thread

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
