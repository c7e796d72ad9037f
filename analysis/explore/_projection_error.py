"""The projection-error explorer: η̂(ν) and the histogram of η(x, σ) over σ (THEORY §2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
import torch

import toymanifold as tm
from toymanifold.validation import check_int

from .. import figures as F
from .._common import one_cpu_thread
from ..projection_error import ProjectionErrors, eta_nu_curve
from ..projection_error import projection_error as measure_projection_error
from ._base import (
    _F64,
    SIGMA_FINAL,
    Explorer,
    _Cache,
    _Counted,
    _default_sigma_max,
    _denoiser_name,
    _figure_widget,
    _toy_data,
)

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
