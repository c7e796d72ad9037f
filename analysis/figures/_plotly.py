"""The live plotly views: the Theorem 1 view, trajectories in a data set's chart and the report's sliders."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from toymanifold.samplers import SAMPLERS

from ._report import _RUN_STYLES, _clip_to_box
from ._style import (
    _OTHER,
    DENOISER_COLORS,
    _arr,
    color_of,
)

# ---------------------------------------------------------------------------- live plotly views
# Shared by the explorers of :mod:`analysis.explore` (a FigureWidget whose traces are updated
# in place) and the report's kernel-free sliders (a Figure whose slider steps restyle the same
# traces): one function builds the traces of a state, so both show the same numbers.

#: Fill of Theorem 1's envelope when its conditions hold, and when they fail.
BAND_HOLDS, BAND_FAILS = "rgba(128, 128, 128, 0.28)", "rgba(214, 39, 40, 0.22)"
_PLOTLY_DASH = {"-": "solid", "--": "dash", "-.": "dashdot", ":": "dot"}
_PLOTLY_FONT = {"size": 13}
# Legends go between the title and the panels, clear of a slider below the figure.
_TOP_LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0}


def _nan_joined(x: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
    """Many runs as one plotly line: the rows of ``ys`` (B, T) against ``x`` (T,), separated by NaN gaps."""
    ys = np.atleast_2d(_arr(ys))
    pad = np.full((ys.shape[0], 1), np.nan)
    xs = np.broadcast_to(_arr(x), ys.shape)
    return np.hstack([xs, pad]).ravel(), np.hstack([ys, pad]).ravel()


def _run_style(label: str) -> tuple[str, str]:
    """Colour and dash of a Theorem 1 run: its denoiser's colour, the error mode's dash (as figure 7)."""
    key = "projection" if label.startswith("exact") else label.split(" ")[0]
    color = DENOISER_COLORS.get(key) or color_of(label) or _OTHER[0]
    return color, _PLOTLY_DASH[next((s for mode, s in _RUN_STYLES.items() if mode in label), ":")]


def theorem1_conditions_text(c: Mapping[str, Any]) -> str:
    """One line saying whether Theorem 1's conditions hold (THEORY §3), from ``Theorem1Bounds.conditions()``."""
    runs, head = c["runs"], f"η = {c['eta']:g}, ν = {c['nu']:.3g}"
    if c["hold"] == runs:
        return f"Theorem 1's conditions hold for all {runs} runs ({head}): every iterate stays ν-admissible"
    failed = [] if c["step_condition"] else ["η(ρ − 1) < 1"]
    for key, text in (("initial", "1/ν ≤ r_N ≤ ν"), ("lower", "r_N L₀ ≥ 1/ν"), ("upper", "r_N U₀ ≤ ν")):
        if c[key] < runs:
            failed.append(f"{text} for {runs - c[key]} of {runs} runs")
    fix = f"; they hold from ν = {c['smallest_nu']:.3g}" if c.get("smallest_nu") is not None else ""
    return f"Theorem 1's conditions FAIL ({head}): " + ", ".join(failed) + f" — no guarantee{fix}"


def theorem1_view_traces(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The traces of the live Theorem 1 view (THEORY §3), as plotly trace dicts in a fixed order.

    ``data``: ``{"sigmas": [σ_N … σ_0] (σ_0 > 0), "n": n, "nu": ν, "r_N": [per run],
    "lower", "upper": the envelope in units of dist_K(x_N) (``theorem1_bounds(...).lower``
    without ``dist_N``), "L", "U", "conditions": Theorem1Bounds.conditions(), "runs": {label:
    [[dist_K(x_t) per t] per run]}}``.

    Left panel (axes x, y): ``dist_K(x_t)/dist_K(x_N)`` of every run within the envelope.
    Right panel (x2, y2): ``r_t = dist_K(x_t)/(√n σ_t)`` of every run, the band
    ``[min r_N · L_t, max r_N · U_t]`` where Theorem 1 keeps it, and the admissibility lines
    ``1/ν`` and ``ν``. The envelope is grey when the conditions hold, red when they fail.
    Order: envelope lower, envelope upper, band lower, band upper, ν lines, then per run
    label its distance trace and its ratio trace.
    """
    sig = _arr(data["sigmas"])
    r_N = _arr(data["r_N"]).ravel()
    nu = float(data["nu"])
    c = data["conditions"]
    fill = BAND_HOLDS if c["hold"] == c["runs"] else BAND_FAILS
    edge = {"color": "#555555", "width": 1}
    line = {"type": "scatter", "mode": "lines", "x": sig}
    traces = [
        {**line, "y": _arr(data["lower"]), "line": edge, "name": "Theorem 1 lower", "showlegend": False,
         "legendgroup": "envelope", "xaxis": "x", "yaxis": "y"},
        {**line, "y": _arr(data["upper"]), "line": edge, "fill": "tonexty", "fillcolor": fill,
         "name": "Theorem 1 envelope", "legendgroup": "envelope", "xaxis": "x", "yaxis": "y"},
        {**line, "y": r_N.min() * _arr(data["L"]), "line": edge, "name": "min r_N · L_t", "showlegend": False,
         "legendgroup": "envelope", "xaxis": "x2", "yaxis": "y2"},
        {**line, "y": r_N.max() * _arr(data["U"]), "line": edge, "fill": "tonexty", "fillcolor": fill,
         "name": "max r_N · U_t", "showlegend": False, "legendgroup": "envelope", "xaxis": "x2", "yaxis": "y2"},
        {**line, "x": np.array([sig[0], sig[-1], np.nan, sig[0], sig[-1]]),
         "y": np.array([nu, nu, np.nan, 1.0 / nu, 1.0 / nu]), "line": {"color": "#666666", "width": 2.5},
         "name": "admissible: 1/ν ≤ r ≤ ν", "xaxis": "x2", "yaxis": "y2"},
    ]  # fmt: skip
    root_n = math.sqrt(int(data["n"]))
    for label, runs in data["runs"].items():
        D = np.atleast_2d(_arr(runs))
        color, dash = _run_style(label)
        style = {**line, "line": {"color": color, "width": 1.2, "dash": dash}, "opacity": 0.8, "legendgroup": label}
        x, y = _nan_joined(sig, D / D[:, :1])
        traces.append({**style, "x": x, "y": y, "name": label, "xaxis": "x", "yaxis": "y"})
        x, y = _nan_joined(sig, D / (root_n * sig))
        traces.append({**style, "x": x, "y": y, "name": label, "showlegend": False, "xaxis": "x2", "yaxis": "y2"})
    return traces


def theorem1_view_layout(title: str, *, n_steps: int) -> dict[str, Any]:
    """Layout of :func:`theorem1_view_traces`: two log-log panels, σ decreasing to the right."""
    sigma = {"type": "log", "autorange": "reversed", "title": {"text": f"σ_t (DDIM, N = {n_steps} steps →)"}}
    return {
        "template": "plotly_white",
        "font": _PLOTLY_FONT,
        "title": {"text": title, "font": {"size": 14}, "y": 0.98, "yanchor": "top"},
        "xaxis": {**sigma, "domain": [0.0, 0.45]},
        "yaxis": {"type": "log", "title": {"text": "dist_K(x_t) / dist_K(x_N)"}},
        "xaxis2": {**sigma, "domain": [0.56, 1.0]},
        "yaxis2": {"type": "log", "anchor": "x2", "title": {"text": "r_t = dist_K(x_t) / (√n σ_t)"}},
        "legend": _TOP_LEGEND,
        "margin": {"l": 60, "r": 20, "t": 100, "b": 40},
        "height": 520,
    }


def _clipped(coords: np.ndarray, limits: Any) -> np.ndarray:
    """Chart coordinates with the points outside the box ``limits`` set to NaN (a gap in the line)."""
    return coords if limits is None else _clip_to_box(coords, limits)


def trajectory_traces(view: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Trajectories in a data set's chart as plotly trace dicts: ``K``, then per run its paths and its final points.

    ``view``: ``{"coords": [2 or 3 names], "manifold": points of K in those coordinates,
    "curve": bool, "limits": [[lo, hi]] per coordinate or None}`` (the ``trajectories``
    entry of the report has these keys). ``runs``: ``[{"name", "color", "coords": (T, B, k)}]``;
    points outside ``limits`` are cut. Three coordinates give 3-D traces in ``scene``, two give
    2-D traces on axes ``x``, ``y``.
    """
    k = len(view["coords"])
    if k not in (2, 3):
        raise ValueError(f"view['coords'] must name 2 or 3 coordinates, got {k}")
    axes = {"scene": "scene"} if k == 3 else {"xaxis": "x", "yaxis": "y"}
    kind, xyz = ("scatter3d", "xyz") if k == 3 else ("scatter", "xy")
    K = _arr(view["manifold"])
    curve = k == 2 and view.get("curve")
    traces = [
        {"type": kind, **axes, **{a: K[:, i] for i, a in enumerate(xyz)}, "mode": "lines" if curve else "markers",
         "name": "K" if curve else "K (samples)", "hoverinfo": "skip",
         **({"line": {"color": "gray", "width": 2}} if curve else
            {"marker": {"size": 2 if k == 3 else 4, "color": "lightgray", "opacity": 0.6}})},
    ]  # fmt: skip
    for run in runs:
        T = _clipped(_arr(run["coords"]), view.get("limits"))
        pad = np.full((1, T.shape[1], k), np.nan)
        paths = np.concatenate([T, pad]).transpose(1, 0, 2).reshape(-1, k)  # run b's path, then a gap
        c = run["color"]
        traces.append({"type": kind, **axes, **{a: paths[:, i] for i, a in enumerate(xyz)}, "mode": "lines",
                       "line": {"color": c, "width": 3 if k == 3 else 1.5}, "name": run["name"],
                       "legendgroup": run["name"]})  # fmt: skip
        ends = {"color": c, "size": 3 if k == 3 else 7, "line": {"color": "black", "width": 0.5}}
        traces.append({"type": kind, **axes, **{a: T[-1, :, i] for i, a in enumerate(xyz)}, "mode": "markers",
                       "marker": ends, "name": f"{run['name']}: final samples", "legendgroup": run["name"],
                       "showlegend": False})  # fmt: skip
    return traces


def trajectory_layout(view: Mapping[str, Any], domain: Sequence[float] = (0.0, 1.0)) -> dict[str, Any]:
    """Axes of :func:`trajectory_traces`: a cube ``scene`` (3-D) or equal-aspect ``x``/``y`` (2-D) over ``domain``."""
    names, lim = list(view["coords"]), view.get("limits")
    if len(names) == 3:
        scene = {f"{a}axis": {"title": {"text": names[i]}, **({"range": list(lim[i])} if lim else {})}
                 for i, a in enumerate("xyz")}  # fmt: skip
        return {"scene": {**scene, "aspectmode": "cube", "domain": {"x": list(domain), "y": [0.0, 1.0]}}}
    return {
        "xaxis": {"title": {"text": names[0]}, "domain": list(domain), **({"range": list(lim[0])} if lim else {})},
        "yaxis": {"title": {"text": names[1]}, "scaleanchor": "x", "scaleratio": 1,
                  **({"range": list(lim[1])} if lim else {})},
    }  # fmt: skip


def _slider(prefix: str, labels: Sequence[str], args: Sequence[list], active: int) -> dict[str, Any]:
    """A plotly slider whose step ``i`` applies ``Plotly.update(*args[i])``."""
    return {
        "active": active,
        "currentvalue": {"prefix": prefix},
        "pad": {"t": 40},
        "steps": [{"method": "update", "label": lab, "args": a} for lab, a in zip(labels, args)],
    }


def envelope_slider_figure(envelope: Mapping[str, Any]):
    """The Theorem 1 view (:func:`theorem1_view_traces`) with a slider over η: no kernel needed.

    ``envelope``: the report's ``envelope`` entry with its ``eta_grid`` ``{"etas": [...],
    "nu": ν, "lower", "upper", "L", "U": [per η, per step], "conditions": [per η],
    "runs": {label: [per η: [[dist_K(x_t)] per run]]}}``; the η-independent runs of
    ``envelope["runs"]`` (the exact projection) are drawn as they are. Each slider step
    restyles the ``y`` and the envelope colour of every trace with that η's precomputed
    values, and sets the title to whether Theorem 1's conditions hold there.
    Returns a ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    grid = envelope["eta_grid"]
    etas = list(grid["etas"])
    fixed = {k: v for k, v in envelope["runs"].items() if k.startswith("exact")}

    def state(i: int) -> dict[str, Any]:
        runs = {label: per_eta[i] for label, per_eta in grid["runs"].items()} | fixed
        keys = ("lower", "upper", "L", "U", "conditions")
        return {"sigmas": envelope["sigmas"], "n": grid["n"], "nu": grid["nu"], "r_N": envelope["r_N"],
                "runs": runs, **{k: grid[k][i] for k in keys}}  # fmt: skip

    states = [theorem1_view_traces(state(i)) for i in range(len(etas))]
    active = min(range(len(etas)), key=lambda i: abs(etas[i] - envelope["eta"]))
    moving = [j for j, tr in enumerate(states[0]) if tr["name"] not in fixed]
    args = [
        [
            {"y": [states[i][j]["y"] for j in moving], "fillcolor": [states[i][j].get("fillcolor") for j in moving]},
            {"title.text": theorem1_conditions_text(grid["conditions"][i])},
            moving,
        ]
        for i in range(len(etas))
    ]
    n_steps = len(envelope["sigmas"]) - 1
    layout = theorem1_view_layout(theorem1_conditions_text(grid["conditions"][active]), n_steps=n_steps)
    layout["sliders"] = [_slider("η = ", [f"{e:g}" for e in etas], args, active)]
    layout["height"] = 600
    return go.Figure(data=states[active], layout=layout)


def gamma_slider_figure(sweep: Mapping[str, Any], view: Mapping[str, Any]):
    """GE trajectories and quality against γ with a slider over γ (THEORY §5): no kernel needed.

    ``sweep``: a ``gamma_sweep`` entry of the report, with ``trajectories`` ``{"coords": [per γ:
    (T, B, k) chart coordinates of the first B runs]}``; ``view``: the report's ``trajectories``
    entry (chart names, ``K``, box). Left: the GE paths at the slider's γ and, fixed, DDIM's
    (γ = 1, where the grid has it), each in its registry colour. Right: the ODE error against
    γ (the sweep) with a line at the slider's γ. Each step restyles the GE traces and moves the
    line; the title gives the three metrics at that γ. Returns a ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    gammas = list(sweep["gammas"])
    coords, metrics = sweep["trajectories"]["coords"], sweep["metrics"]
    ge, ddim = SAMPLERS["gradient_estimation"], SAMPLERS["ddim"]
    base = [{"name": ddim.label, "color": ddim.color, "coords": coords[gammas.index(1.0)]}] if 1.0 in gammas else []

    def traces(i: int) -> list[dict[str, Any]]:
        run = {"name": f"GE (γ={gammas[i]:g})", "color": ge.color, "coords": coords[i]}
        return trajectory_traces(view, [*base, run])

    def title(i: int) -> str:
        return (
            f"Gradient estimation, {sweep['nfe']} NFE, γ = {gammas[i]:g}: ODE error {metrics['ode_error'][i]:.3g}, "
            f"mean dist_K {metrics['mean_dist'][i]:.3g}, MMD² {metrics['mmd'][i]:.2g}"
        )

    active = gammas.index(2.0) if 2.0 in gammas else 0
    first = traces(active)
    xyz = "xyz"[: len(view["coords"])]
    moving = [len(first) - 2, len(first) - 1]  # the GE paths and final points
    steps = []
    for i, g in enumerate(gammas):
        tr = traces(i)
        data = {a: [tr[j][a] for j in moving] for a in xyz} | {"name": [tr[j]["name"] for j in moving]}
        steps.append([data, {"title.text": title(i), "shapes[0].x0": g, "shapes[0].x1": g}, moving])
    # The quality panel takes the first free 2-D axes: x/y beside a 3-D scene, x2/y2 beside a 2-D chart.
    xr, yr = ("x2", "y2") if len(xyz) == 2 else ("x", "y")
    ode = {"type": "scatter", "xaxis": xr, "yaxis": yr, "x": gammas, "y": metrics["ode_error"],
           "mode": "lines+markers", "line": {"color": "black"}, "name": "ODE error (all γ)"}  # fmt: skip
    line = {"type": "line", "xref": xr, "yref": "paper", "y0": 0, "y1": 1, "line": {"color": ge.color, "width": 2}}
    layout = {
        "template": "plotly_white",
        "font": _PLOTLY_FONT,
        "title": {"text": title(active), "font": {"size": 14}, "y": 0.98, "yanchor": "top"},
        **trajectory_layout(view, (0.0, 0.55)),
        "xaxis" + xr[1:]: {"domain": [0.64, 1.0], "anchor": yr, "title": {"text": "γ (1: DDIM, 2: the paper's)"}},
        "yaxis" + yr[1:]: {"type": "log", "anchor": xr, "title": {"text": "ODE error (mean ‖x₀ − x₀^ref‖)"}},
        "shapes": [{**line, "x0": gammas[active], "x1": gammas[active]}],
        "sliders": [_slider("γ = ", [f"{g:g}" for g in gammas], steps, active)],
        "legend": _TOP_LEGEND,
        "margin": {"l": 10, "r": 20, "t": 100, "b": 20},
        "height": 660,
    }
    return go.Figure(data=[*first, ode], layout=layout)
