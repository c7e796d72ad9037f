"""Paper-style figures built from analysis results (never from re-run experiments).

Each function takes one section of the results that :mod:`analysis.report` computes
(plain dicts of lists/arrays, exactly what ``results.json`` holds) and returns a
figure: a matplotlib :class:`~matplotlib.figure.Figure` for the static figures and a
plotly ``Figure`` for the interactive 3-D view. Nothing here samples, trains or
evaluates a denoiser, so every curve in a figure is a number in ``results.json``.

Figures of the report:

1. :func:`denoiser_norm_figure` — ``‖ε‖/√n`` along DDIM trajectories against σ
   (THEORY §2, concentration: ``‖ε*‖ ≈ √n``).
2. :func:`denoiser_error_figure` — ``‖ε_θ(x0 + σε, σ) − ε‖/√n`` against σ on held-out points.
3. :func:`eta_sigma_histogram_figure` — relative projection error ``η(x, σ)`` against σ
   along trajectories as a 2-D histogram, with the admissibility ``ν`` overlaid (THEORY §2).
4. :func:`schedules_figure` — σ schedules on a log scale (THEORY §5).
5. :func:`sampler_quality_figure` — quality against NFE per sampler and against γ (THEORY §5).
6. :func:`trajectories_figure` (matplotlib, 2-D or 3-D) and :func:`trajectories_3d_figure`
   (plotly, interactive) — sampler trajectories in the base manifold's coordinates.
7. :func:`envelope_figure` — ``dist_K(x_t)`` along DDIM against Theorem 1's envelope (THEORY §3).
8. :func:`eta_nu_figure` — the empirical curves ``η̂(ν)`` for several denoisers (THEORY §2).

The figures use the non-interactive Agg canvas and never call ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from toymanifold.samplers import SAMPLERS

__all__ = [
    "ETA_FLOOR",
    "denoiser_error_figure",
    "denoiser_norm_figure",
    "envelope_figure",
    "eta_nu_figure",
    "eta_sigma_histogram_figure",
    "sampler_quality_figure",
    "schedules_figure",
    "trajectories_3d_figure",
    "trajectories_figure",
]

#: η values at or below this are drawn at this level on logarithmic axes (exact
#: projection gives η = 0 up to rounding, which a log axis cannot show).
ETA_FLOOR = 1e-16

# One colour per sampler (from the sampler registry) and per denoiser, in every figure.
_COLORS = {info.label: info.color for info in SAMPLERS.values()} | {
    "GE": SAMPLERS["gradient_estimation"].color,
    "projection": "#000000",
    "ideal": "#1f77b4",
    "MLP": "#d62728",
    "perturbed": "#ff7f0e",
}
_CYCLE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def chi_mean(k: int) -> float:
    """Mean of the χ distribution with ``k`` degrees of freedom: ``√2 Γ((k+1)/2)/Γ(k/2)``."""
    from math import exp, lgamma, sqrt

    return sqrt(2.0) * exp(lgamma((k + 1) / 2) - lgamma(k / 2))


def _new_figure(width: float = 6.4, height: float = 4.2, **kw) -> Figure:
    fig = Figure(figsize=(width, height), **kw)
    FigureCanvasAgg(fig)
    return fig


def _color(name: str, i: int) -> str:
    return _COLORS.get(name, _CYCLE[i % len(_CYCLE)])


def _arr(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _spans_decades(values: Any, decades: float = 1.0) -> bool:
    """True when the positive finite values span more than ``decades`` powers of ten."""
    v = _arr(values).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2:
        return False
    return bool(np.log10(v.max() / v.min()) > decades)


def _set_log(ax, axis: str, values: Any = None) -> None:
    """Log scale on ``axis`` ("x" or "y"); when the data span less than ~1.5 decades, label
    1-2-5 ticks so that the axis is still readable."""
    getattr(ax, f"set_{axis}scale")("log")
    if values is None:
        return
    v = _arr(values).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and np.log10(v.max() / v.min()) < 1.5:
        a = ax.yaxis if axis == "y" else ax.xaxis
        a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        a.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
        a.set_minor_formatter(NullFormatter())


def _band(ax, x, mid, lo, hi, *, label: str, color: str, marker: str | None = None) -> None:
    x, mid = _arr(x), _arr(mid)
    ax.plot(x, mid, color=color, label=label, marker=marker, ms=3)
    if lo is not None and hi is not None:
        ax.fill_between(x, _arr(lo), _arr(hi), color=color, alpha=0.12, linewidth=0)
        ax.plot(x, _arr(lo), color=color, lw=0.7, ls="--", alpha=0.8)
        ax.plot(x, _arr(hi), color=color, lw=0.7, ls="--", alpha=0.8)


# ---------------------------------------------------------------------------- 1
def denoiser_norm_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 1: denoiser output norm ``‖ε_θ(x_t, σ_t)‖/√n`` along DDIM trajectories.

    THEORY §2 (concentration): for ``n ≫ d`` the ideal denoiser satisfies
    ``ε* ≈ √n ∇dist_K``, so ``‖ε*‖/√n ≈ 1`` at every σ.

    Parameters
    ----------
    data : mapping
        ``{"n": int, "quantiles": [lo, hi], "denoisers": {name: {"sigma": [...],
        "mean": [...], "lo": [...], "hi": [...]}}}`` — per DDIM step ``t``, the mean and
        the quantile band over the batch.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    for i, (name, d) in enumerate(data["denoisers"].items()):
        _band(ax, d["sigma"], d["mean"], d.get("lo"), d.get("hi"), label=name, color=_color(name, i), marker="o")
    ax.axhline(1.0, color="k", ls="--", lw=1, label=r"$\|\varepsilon\|/\sqrt{n}=1$ (concentration)")
    ax.set_xscale("log")
    ax.invert_xaxis()
    all_y = np.concatenate([_arr(d["mean"]) for d in data["denoisers"].values()] + [np.ones(1)])
    if _spans_decades(all_y):
        _set_log(ax, "y", all_y)
    ax.set_xlabel(r"noise level $\sigma_t$ (DDIM step; sampling runs left to right)")
    ax.set_ylabel(r"$\|\varepsilon_\theta(x_t,\sigma_t)\|\,/\,\sqrt{n}$")
    q = data.get("quantiles")
    band = f" (dashed: {q[0]:.0%} and {q[1]:.0%} quantiles)" if q else ""
    ax.set_title(f"Denoiser output norm along DDIM, n = {data['n']}{band}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="denoiser", title_fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 2
def denoiser_error_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 2: denoiser error ``‖ε_θ(x0 + σε, σ) − ε‖/√n`` against σ on held-out ``x0``.

    ``data``: ``{"n": int, "d": int, "quantiles": [lo, hi], "denoisers": {name:
    {"sigma", "mean", "lo", "hi"}}}``. When ``d > 0`` a dotted line marks
    ``E‖P_T ε‖/√n = √2 Γ((d+1)/2) / (Γ(d/2) √n)``, the mean error of a denoiser that
    projects exactly at small σ: the tangential part ``P_T ε`` of the noise cannot be
    recovered and ``‖P_T ε‖`` is χ-distributed with ``d`` degrees of freedom (THEORY §2).
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    ys = []
    for i, (name, d) in enumerate(data["denoisers"].items()):
        _band(ax, d["sigma"], d["mean"], d.get("lo"), d.get("hi"), label=name, color=_color(name, i), marker="o")
        ys.append(_arr(d["mean"]))
    n, dim = int(data["n"]), int(data.get("d", 0))
    if dim > 0:
        tangential = chi_mean(dim) / np.sqrt(n)
        label = rf"$E\|P_T\varepsilon\|/\sqrt{{n}}$ = {tangential:.3f} (tangential noise, $\chi_{{{dim}}}$ mean)"
        ax.axhline(tangential, color="k", ls=":", lw=1, label=label)
    ax.set_xscale("log")
    if _spans_decades(np.concatenate(ys)):
        _set_log(ax, "y", np.concatenate(ys))
    ax.set_xlabel(r"noise level $\sigma$")
    ax.set_ylabel(r"$\|\varepsilon_\theta(x_0+\sigma\varepsilon,\sigma)-\varepsilon\|\,/\,\sqrt{n}$")
    ax.set_title(f"Denoiser error on held-out points, n = {n}, d = {dim}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="denoiser", title_fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 3
def eta_sigma_histogram_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 3: relative projection error ``η(x_t, σ_t)`` against σ along trajectories.

    A 2-D histogram of the pairs ``(σ_t, η)`` met along DDIM trajectories (THEORY §2:
    ``η = ‖x̂0 − proj_K(x)‖ / dist_K(x)``), with the admissibility of each pair,
    ``ν(x, σ) = max(r, 1/r)`` for ``r = dist_K(x)/(√n σ)``, overlaid on a second axis
    (its median and maximum per σ): a pair is ν-admissible exactly when ``ν(x, σ) ≤ ν``.

    ``data``: ``{"denoiser": str, "sampler": str, "sigma_edges": [...], "eta_edges": [...],
    "counts": [[...]] (len(sigma_edges)−1 × len(eta_edges)−1), "nu": {"sigma": [...],
    "median": [...], "max": [...]}, "eta_floor": float}``. η values below ``eta_floor``
    are counted in the lowest bin.
    """
    fig = _new_figure(6.8, 4.4)
    ax = fig.add_subplot()
    se, ee = _arr(data["sigma_edges"]), _arr(data["eta_edges"])
    counts = _arr(data["counts"])
    masked = np.ma.masked_less_equal(counts.T, 0)
    vmax = max(float(counts.max()), 1.0)
    mesh = ax.pcolormesh(se, ee, masked, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(vmax, 1.5)), shading="flat")
    cb = fig.colorbar(mesh, ax=ax, pad=0.12)
    cb.set_label("pairs $(x_t,\\sigma_t)$ per bin")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(se[0], se[-1])
    ax.set_ylim(ee[0], ee[-1])
    ax.invert_xaxis()
    ax.set_xlabel(r"noise level $\sigma_t$ (sampling runs left to right)")
    ax.set_ylabel(r"relative projection error $\eta(x_t,\sigma_t)$")
    floor = data.get("eta_floor")
    if floor is not None:
        ax.text(
            0.01,
            0.01,
            f"η ≤ {floor:.0e} counted in the lowest row",
            transform=ax.transAxes,
            fontsize=7,
            color="w",
            va="bottom",
        )
    nu = data.get("nu")
    if nu:
        ax2 = ax.twinx()
        ax2.plot(_arr(nu["sigma"]), _arr(nu["median"]), color="#ff7f0e", lw=1.5, label=r"median $\nu(x,\sigma)$")
        ax2.plot(_arr(nu["sigma"]), _arr(nu["max"]), color="#ff7f0e", lw=1, ls="--", label=r"max $\nu(x,\sigma)$")
        ax2.set_ylabel(r"admissibility $\nu(x,\sigma)=\max(r,1/r)$", color="#ff7f0e")
        ax2.tick_params(axis="y", colors="#ff7f0e")
        top = float(np.nanmax(_arr(nu["max"]))) if len(nu["max"]) else 2.0
        ax2.set_ylim(1.0 - 0.02 * max(top - 1, 0.1), max(top * 1.05, 1.1))
        ax2.legend(loc="upper left", fontsize=8)
    ax.set_title(f"η along {data.get('sampler', 'DDIM')} trajectories — {data['denoiser']} denoiser", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 4
def schedules_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 4: σ schedules on a log scale (THEORY §5).

    ``data``: ``{"n_steps": int, "schedules": {label: [σ_N, …, σ_0]}}``, each in sampling
    order. Values ``σ = 0`` (a final step to zero) are drawn at the bottom of the axis and
    listed in the legend.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    positive = np.concatenate([_arr(s)[_arr(s) > 0] for s in data["schedules"].values()])
    bottom = float(positive.min()) / 3.0
    for i, (label, s) in enumerate(data["schedules"].items()):
        s = _arr(s)
        k = np.arange(s.size)
        zero = s <= 0
        lab = label + (" (last σ = 0, drawn at the bottom)" if zero.any() else "")
        ax.plot(k, np.where(zero, bottom, s), marker="o", ms=3, color=_CYCLE[i % len(_CYCLE)], label=lab)
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom / 1.5)
    ax.set_xlabel(r"sampler step $k$ (from $\sigma_N$ at $k=0$)")
    ax.set_ylabel(r"noise level $\sigma$")
    ax.set_title(f"σ schedules with N = {data['n_steps']} model evaluations", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 5
def _quality_axis(
    ax, xs, series: Mapping[str, Sequence[float]], *, ylabel: str, logx: bool, noise: float | None = None
) -> None:
    ys = []
    for i, (name, y) in enumerate(series.items()):
        y = _arr(y)
        ys.append(y)
        ax.plot(xs, y, marker="o", ms=4, color=_color(name, i), label=name)
    allv = np.concatenate(ys) if ys else np.ones(1)
    finite = allv[np.isfinite(allv)]
    if finite.size and (finite > 0).all() and _spans_decades(finite):
        _set_log(ax, "y", finite)
    elif finite.size and (finite <= 0).any():
        ax.axhline(0.0, color="k", lw=0.6)
        if noise is not None and noise > 0 and np.abs(finite).max() > 10 * noise:
            # Values within ±noise are indistinguishable from 0: linear there, logarithmic beyond.
            ax.set_yscale("symlog", linthresh=noise, linscale=0.5)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(int(v)) if float(v).is_integer() else f"{v:g}" for v in xs])
        ax.minorticks_off()
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


_METRIC_LABELS = {
    "ode_error": r"ODE error: mean $\|x_0-x_0^{\rm ref}\|$",
    "mean_dist": r"mean $\mathrm{dist}_K(x_0)$",
    "mmd": r"MMD$^2$ to data (unbiased, RBF)",
}


def sampler_quality_figure(samplers: Mapping[str, Any], gamma: Mapping[str, Any] | None = None) -> Figure:
    """Figure 5: sample quality against NFE per sampler, and against γ (THEORY §5).

    ``samplers``: ``{"nfe": [5, 10, 20, 50], "metrics": [names], "samplers": {name:
    {metric: [value per NFE]}}, "denoiser": str, "schedule": str, "dist_floor": float}``
    (``dist_floor``, optional: the mean ``dist_K`` of a perfect sample still carrying the
    final noise ``σ_0``, drawn as a dotted line on the ``mean_dist`` panel; ``mmd_floor``,
    optional: MMD² between two sets of true samples, shaded as ± the noise level and used as
    the linear range of a symmetric-log axis when MMD² values are negative and span
    decades). ``gamma``: ``{"nfe": int,
    "gammas": [...], "metrics": {metric: [value per γ]}}``. Metrics are drawn on a log
    axis when all positive and spanning a decade; the unbiased MMD² estimate can be
    negative, in which case its axis is linear with a zero line.
    """
    metrics = list(samplers.get("metrics", ["ode_error", "mean_dist", "mmd"]))
    ncols = len(metrics) + (1 if gamma else 0)
    fig = _new_figure(3.6 * ncols, 3.8)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    nfe = _arr(samplers["nfe"])
    floor = samplers.get("mmd_floor")
    for ax, m in zip(axes, metrics):
        series = {name: vals[m] for name, vals in samplers["samplers"].items()}
        noise = abs(floor) if (m == "mmd" and floor) else None
        _quality_axis(ax, nfe, series, ylabel=_METRIC_LABELS.get(m, m), logx=True, noise=noise)
        ax.set_xlabel("model evaluations (NFE)")
        if m == "mean_dist" and samplers.get("dist_floor"):
            line = ax.axhline(
                samplers["dist_floor"],
                color="k",
                ls=":",
                lw=1,
                label=r"noise left at $\sigma_0$: $\sigma_0 E\chi_{n-d}$",
            )
            ax.legend(handles=[line], fontsize=7)
        if m == "mmd" and floor:
            band = ax.axhspan(
                -abs(floor), abs(floor), color="0.85", zorder=0, label="± two sets of true samples (noise level)"
            )
            ax.legend(handles=[band], fontsize=7)
    axes[0].legend(fontsize=7, title="sampler", title_fontsize=7)
    if gamma:
        ax = axes[-1]
        g = _arr(gamma["gammas"])
        for i, (m, vals) in enumerate(gamma["metrics"].items()):
            target = ax if i == 0 else ax.twinx()
            color = _CYCLE[(i * 3) % len(_CYCLE)]
            target.plot(g, _arr(vals), marker="s", ms=4, color=color, label=_METRIC_LABELS.get(m, m))
            target.set_ylabel(_METRIC_LABELS.get(m, m), color=color, fontsize=8)
            target.tick_params(axis="y", colors=color)
            if _spans_decades(vals) and (_arr(vals) > 0).all():
                _set_log(target, "y", vals)
            if i >= 1:
                break
        ax.axvline(1.0, color="#1f77b4", ls=":", lw=1)
        ax.axvline(2.0, color="#d62728", ls=":", lw=1)
        ax.text(1.0, 1.0, " DDIM", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="#1f77b4")
        ax.text(2.0, 1.0, " γ=2", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="#d62728")
        ax.set_xlabel(rf"GE extrapolation $\gamma$ (NFE = {gamma['nfe']})")
        ax.grid(True, alpha=0.3)
    den = samplers.get("denoiser")
    sched = samplers.get("schedule")
    title = "Sampler quality at equal NFE"
    if den:
        title += f" — {den} denoiser"
    if sched:
        title += f", {sched} schedule"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 6
def trajectories_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 6 (static): sampler trajectories in the base manifold's coordinates.

    ``data``: ``{"coords": ["x₁", "x₂"(, "x₃")], "manifold": [[...]] points of K (or a
    dense curve) in those coordinates, "curve": bool, "trajectories": {sampler: [[[...]]]
    (steps+1, B, k)}, "denoiser": str, "note": str}``. Two coordinates give a 2-D plot;
    three give a 3-D scatter (see :func:`trajectories_3d_figure` for the interactive one).
    """
    coords = list(data["coords"])
    k = len(coords)
    fig = _new_figure(6.0, 5.6 if k == 3 else 5.2)
    ax = fig.add_subplot(projection="3d") if k == 3 else fig.add_subplot()
    K = _arr(data["manifold"])
    if k == 3:
        ax.scatter(K[:, 0], K[:, 1], K[:, 2], s=2, color="0.5", alpha=0.35, label="K (samples)")
    elif data.get("curve"):
        ax.plot(K[:, 0], K[:, 1], color="0.5", lw=1.5, label="K")
    else:
        ax.scatter(K[:, 0], K[:, 1], s=3, color="0.6", alpha=0.5, label="K (samples)")
    for i, (name, traj) in enumerate(data["trajectories"].items()):
        T = _arr(traj)
        color = _color(name, i)
        for b in range(T.shape[1]):
            pts = T[:, b, :]
            lab = name if b == 0 else None
            if k == 3:
                ax.plot(pts[:, 0], pts[:, 1], pts[:, 2], color=color, lw=0.9, alpha=0.8, label=lab)
                ax.scatter(*pts[-1], color=color, s=8)
            else:
                ax.plot(pts[:, 0], pts[:, 1], color=color, lw=0.9, alpha=0.8, label=lab)
                ax.scatter(pts[-1, 0], pts[-1, 1], color=color, s=8, zorder=3)
    ax.set_xlabel(coords[0])
    ax.set_ylabel(coords[1])
    if k == 3:
        ax.set_zlabel(coords[2])
    lim = data.get("limits")
    if k != 3:
        # Fixed limits and an equal aspect: adjust the box, not the limits.
        ax.set_aspect("equal", adjustable="box" if lim is not None else "datalim")
        ax.grid(True, alpha=0.3)
    if lim is not None:
        ax.set_xlim(*lim[0])
        ax.set_ylim(*lim[1])
        if k == 3:
            ax.set_zlim(*lim[2])
    ax.legend(fontsize=7, loc="upper right")
    title = f"Trajectories ({data.get('denoiser', '')} denoiser); dots = final samples"
    ax.set_title(title, fontsize=9)
    if data.get("note"):
        fig.text(0.01, 0.01, data["note"], fontsize=7, va="bottom")
    fig.tight_layout()
    return fig


def trajectories_3d_figure(data: Mapping[str, Any]):
    """Figure 6 (interactive): a plotly 3-D view of the trajectories of :func:`trajectories_figure`.

    Same ``data`` with three coordinates. Returns a ``plotly.graph_objects.Figure``
    (write it with ``include_plotlyjs=True`` for an offline page).
    """
    import plotly.graph_objects as go

    coords = list(data["coords"])
    if len(coords) != 3:
        raise ValueError(f"data['coords'] must name 3 coordinates for a 3-D view, got {len(coords)}")
    K = _arr(data["manifold"])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter3d(
            x=K[:, 0],
            y=K[:, 1],
            z=K[:, 2],
            mode="markers",
            name="K (samples)",
            marker={"size": 1.5, "color": "lightgray", "opacity": 0.5},
        )
    )
    for i, (name, traj) in enumerate(data["trajectories"].items()):
        T = _arr(traj)
        color = _color(name, i)
        for b in range(T.shape[1]):
            pts = T[:, b, :]
            fig.add_trace(
                go.Scatter3d(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    z=pts[:, 2],
                    mode="lines+markers",
                    line={"color": color, "width": 3},
                    marker={"size": 2, "color": color},
                    name=name,
                    legendgroup=name,
                    showlegend=(b == 0),
                )
            )
    lim = data.get("limits")
    scene = {"xaxis_title": coords[0], "yaxis_title": coords[1], "zaxis_title": coords[2], "aspectmode": "data"}
    if lim is not None:
        scene.update(
            xaxis={"range": list(lim[0]), "title": coords[0]},
            yaxis={"range": list(lim[1]), "title": coords[1]},
            zaxis={"range": list(lim[2]), "title": coords[2]},
            aspectmode="cube",
        )
    fig.update_layout(
        scene=scene,
        title=f"Trajectories ({data.get('denoiser', '')} denoiser), drag to rotate",
        legend={"title": {"text": "sampler"}},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        height=600,
    )
    return fig


# ---------------------------------------------------------------------------- 7
def envelope_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 7: ``dist_K(x_t)`` along DDIM against Theorem 1's envelope (THEORY §3).

    Dividing Theorem 1's bound ``√n σ_t r_N L_t ≤ dist_K(x_t) ≤ √n σ_t r_N U_t`` by
    ``dist_K(x_N) = √n σ_N r_N`` gives an envelope that is the same for every trajectory:
    ``(σ_t/σ_N) L_t ≤ dist_K(x_t)/dist_K(x_N) ≤ (σ_t/σ_N) U_t`` (left panel), equivalently
    ``L_t ≤ r_t/r_N ≤ U_t`` (right panel).

    ``data``: ``{"eta": float, "nu": float, "sigmas": [σ_N … σ_0] (sampling order),
    "L": [...], "U": [...] (same order), "runs": {label: [[dist_K(x_t) for t] per
    trajectory]}}``. ``σ_0`` must be ``> 0`` (Theorem 1's setting).
    """
    sig = _arr(data["sigmas"])
    L, U = _arr(data["L"]), _arr(data["U"])
    fig = _new_figure(10.0, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    scale = sig / sig[0]
    ax1.fill_between(sig, scale * L, scale * U, color="0.85", label="Theorem 1 envelope")
    ax1.plot(sig, scale * L, color="k", lw=0.8)
    ax1.plot(sig, scale * U, color="k", lw=0.8)
    ax1.plot(sig, scale, color="k", ls=":", lw=0.8, label=r"exact projection: $\sigma_t/\sigma_N$")
    ax2.fill_between(sig, L, U, color="0.85", label=r"$[L_t, U_t]$")
    ax2.plot(sig, L, color="k", lw=0.8)
    ax2.plot(sig, U, color="k", lw=0.8)
    for i, (label, runs) in enumerate(data["runs"].items()):
        D = np.atleast_2d(_arr(runs))
        color = _CYCLE[i % len(_CYCLE)]
        rel = D / D[:, :1]
        for b in range(D.shape[0]):
            lab = label if b == 0 else None
            ax1.plot(sig, rel[b], color=color, lw=0.8, alpha=0.6, label=lab)
            ax2.plot(sig, rel[b] / scale, color=color, lw=0.8, alpha=0.6, label=lab)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel(r"noise level $\sigma_t$ (DDIM runs left to right)")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel(r"$\mathrm{dist}_K(x_t)\,/\,\mathrm{dist}_K(x_N)$")
    ax2.set_ylabel(r"$r_t / r_N$, $r_t=\mathrm{dist}_K(x_t)/(\sqrt{n}\,\sigma_t)$")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.suptitle(
        f"DDIM against Theorem 1 (η = {data['eta']:g}, ν = {data['nu']:.3g}, N = {sig.size - 1} steps)", fontsize=10
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 8
def eta_nu_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 8: empirical ``η̂(ν)`` for several denoisers (THEORY §2).

    ``η̂(ν)`` is the maximum (or the stated quantile) of ``η(x, σ)`` over the sampled
    ν-admissible pairs; it is non-decreasing in ν. ``data``: ``{"nus": [...],
    "statistic": "max" | "q0.9", "denoisers": {name: [η̂ per ν]}}``. NaN (no admissible
    pair) leaves a gap; values at or below :data:`ETA_FLOOR` (exact projection) are
    drawn at the floor and flagged in the legend.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    nus = _arr(data["nus"])
    # ν ≥ 1 and the interesting values crowd near 1: space the axis by log(ν − 1) (labelled
    # with ν) unless ν = 1 itself is plotted.
    shifted = bool((nus > 1.0).all())
    xpos = nus - 1.0 if shifted else nus
    curves = {name: _arr(v) for name, v in data["denoisers"].items()}
    above = np.concatenate([v[np.isfinite(v) & (v > ETA_FLOOR)] for v in curves.values()] + [np.empty(0)])
    # On a log axis, curves at or below the floor (exact projection: η = 0 up to rounding)
    # are drawn along the bottom of the axis instead of stretching it over 15 decades.
    bottom = float(above.min()) / 3.0 if above.size else ETA_FLOOR
    logy = bool(above.size) and _spans_decades(np.concatenate([above, [bottom]]))
    for i, (name, v) in enumerate(curves.items()):
        low = np.isfinite(v) & (v <= ETA_FLOOR)
        label = name
        if low.any():
            label += f" (η̂ ≤ {max(float(np.nanmax(v[low])), 1e-300):.0e} ≈ 0" + (
                ": drawn along the bottom)" if logy else ")"
            )
        y = np.where(low, bottom * 1.08, v) if logy else v
        ax.plot(xpos, y, marker="v" if low.any() else "o", ms=3, color=_color(name, i), label=label)
    ax.set_xscale("log")
    ax.set_xticks(xpos)
    ax.set_xticklabels([f"{t:g}" for t in nus], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", which="minor", length=0)
    if logy:
        _set_log(ax, "y", np.concatenate([above, [bottom]]))
        ax.set_ylim(bottom=bottom)
    ax.set_xlabel(
        r"admissibility $\nu$ (pairs with $1/\nu \leq r \leq \nu$)"
        + (r"; axis spaced by $\log(\nu-1)$" if shifted else "")
    )
    stat = data.get("statistic", "max")
    ax.set_ylabel(r"$\hat\eta(\nu)$ (" + ("max" if stat == "max" else f"{stat} quantile") + r" of $\eta$)")
    ax.set_title(r"Empirical $\hat\eta(\nu)$: how far each denoiser is from projection", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        fontsize=8,
        title="denoiser",
        title_fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=2,
        frameon=False,
    )
    fig.tight_layout()
    return fig
