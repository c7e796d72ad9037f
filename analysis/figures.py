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

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from toymanifold.samplers import SAMPLERS

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

#: η values at or below this are drawn at this level on logarithmic axes (exact
#: projection gives η = 0 up to rounding, which a log axis cannot show).
ETA_FLOOR = 1e-16
#: The report's text column in pixels and the resolution its PNGs are written at.
REPORT_WIDTH_PX, REPORT_DPI = 1068, 130
#: The smallest font size (points) of any text once a figure is scaled to the report's width.
MIN_FONT_PT = 9.0

#: One colour per denoiser of the reports (samplers: the registry's colours).
DENOISER_COLORS = {
    "projection": "#000000",
    "ideal": "#17becf",
    "MLP": "#8c564b",
    "network": "#e377c2",
    "perturbed": "#ff7f0e",
}
_SAMPLER_COLORS = {info.label: info.color for info in SAMPLERS.values()} | {
    info.name: info.color for info in SAMPLERS.values()
}
# For anything else (schedules, user-named curves): Dark2, which shares no colour with the tables above.
_OTHER = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]

_STYLE = {
    "font.size": 10.0,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.0,
    "legend.title_fontsize": 9.0,
    "figure.titlesize": 11.0,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
}


def color_of(name: str) -> str | None:
    """The one colour of a sampler (registry label or name) or a denoiser (key before ``" ("``), else None."""
    return _SAMPLER_COLORS.get(name) or DENOISER_COLORS.get(name.split(" (")[0])


class _Colors:
    """Colours for the curves of one figure: the tables first, then unused colours of :data:`_OTHER`."""

    def __init__(self):
        self.given: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self.given:
            taken = set(self.given.values())
            self.given[name] = color_of(name) or next((c for c in _OTHER if c not in taken), "#999999")
        return self.given[name]


def _styled(fn):
    """Build the figure under the report's font sizes (matplotlib reads them when text is created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return fn(*args, **kwargs)

    return wrapper


def chi_mean(k: int) -> float:
    """Mean of the χ distribution with ``k`` degrees of freedom: ``√2 Γ((k+1)/2)/Γ(k/2)``."""
    return math.sqrt(2.0) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))


def _new_figure(width: float = 8.0, height: float = 4.6, **kw) -> Figure:
    fig = Figure(figsize=(width, height), **kw)
    FigureCanvasAgg(fig)
    return fig


def _arr(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _spans_decades(values: Any, decades: float = 1.0) -> bool:
    """True when the positive finite values span more than ``decades`` powers of ten."""
    v = _arr(values).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return bool(v.size >= 2 and np.log10(v.max() / v.min()) > decades)


_PLAIN = FuncFormatter(lambda t, _: f"{t:g}")


def _set_log(ax, axis: str, values: Any = None) -> None:
    """Log scale on ``axis`` with plain tick labels (0.01, 0.1, 1, …); 1-2-5 ticks over short ranges."""
    getattr(ax, f"set_{axis}scale")("log")
    a = ax.yaxis if axis == "y" else ax.xaxis
    v = _arr(values if values is not None else []).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and np.log10(v.max() / v.min()) < 1.5:
        a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(_PLAIN)
    a.set_minor_formatter(NullFormatter())


def _sigma_axis(ax, label: str = r"noise level $\sigma_t$ (sampling runs left to right)") -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_PLAIN)
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel(label)


def _band(ax, x, mid, lo, hi, *, label: str, color: str, fill: bool = True) -> None:
    x, mid = _arr(x), _arr(mid)
    ax.plot(x, mid, color=color, label=label, marker="o", ms=3)
    if lo is not None and hi is not None:
        if fill:
            ax.fill_between(x, _arr(lo), _arr(hi), color=color, alpha=0.12, linewidth=0)
        ax.plot(x, _arr(lo), color=color, lw=0.8, ls="--")
        ax.plot(x, _arr(hi), color=color, lw=0.8, ls="--")


# ---------------------------------------------------------------------------- 1
@_styled
def denoiser_norm_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 1: denoiser output norm ``‖ε_θ(x_t, σ_t)‖/√n`` along DDIM trajectories.

    THEORY §2 (concentration): for ``n ≫ d`` the ideal denoiser satisfies
    ``ε* ≈ √n ∇dist_K``, so ``‖ε*‖/√n ≈ 1`` at every σ. Top: the mean over the batch
    (solid) and its quantile band (dashed) per denoiser, against the band of ``‖ξ‖/√n``
    for pure noise ``ξ ~ N(0, I_n)`` (grey: ``χ_n/√n``, same quantiles). Bottom: each
    mean relative to the χ mean, ``mean/(Eχ_n/√n) − 1`` in percent, where differences
    between denoisers of a few per cent are visible.

    Parameters
    ----------
    data : mapping
        ``{"n": int, "quantiles": [lo, hi], "denoisers": {name: {"sigma": [...],
        "mean": [...], "lo": [...], "hi": [...]}}}`` — per DDIM step ``t``, the mean and
        the quantile band over the batch.
    """
    from scipy import stats

    n = int(data["n"])
    q = data.get("quantiles") or [0.1, 0.9]
    fig = _new_figure(8.0, 6.2)
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    color = _Colors()
    sig_all = np.concatenate([_arr(d["sigma"]) for d in data["denoisers"].values()])
    ref_lo, ref_hi = (float(stats.chi.ppf(p, n)) / math.sqrt(n) for p in q)
    ax.axhspan(ref_lo, ref_hi, color="0.88", zorder=0, label=rf"pure noise: $\chi_n/\sqrt{{n}}$, {q[0]:.0%}–{q[1]:.0%}")
    ax.axhline(1.0, color="k", ls=":", lw=1, label=r"$\|\varepsilon\|/\sqrt{n}=1$ (concentration)")
    chi = chi_mean(n) / math.sqrt(n)
    for name, d in data["denoisers"].items():
        c = color(name)
        _band(ax, d["sigma"], d["mean"], d.get("lo"), d.get("hi"), label=f"{name} (mean)", color=c, fill=False)
        ax2.plot(_arr(d["sigma"]), 100 * (_arr(d["mean"]) / chi - 1), color=c, marker="o", ms=3, label=name)
    ax2.axhline(0.0, color="k", ls=":", lw=1)
    ax.set_ylabel(r"$\|\varepsilon_\theta(x_t,\sigma_t)\|\,/\,\sqrt{n}$")
    ax2.set_ylabel("mean vs. $E\\chi_n/\\sqrt{n}$ (%)")
    _sigma_axis(ax2, r"noise level $\sigma_t$ (DDIM step; sampling runs left to right)")
    ax.set_xlim(sig_all.max() * 1.15, sig_all.min() / 1.15)
    for a in (ax, ax2):
        a.grid(True, which="major")
    fig.suptitle(f"Denoiser output norm along DDIM, n = {n} (dashed: {q[0]:.0%} and {q[1]:.0%} quantiles)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 2
@_styled
def denoiser_error_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 2: denoiser error ``‖ε_θ(x0 + σε, σ) − ε‖/√n`` against σ on held-out ``x0``.

    ``data``: ``{"n": int, "d": int, "quantiles": [lo, hi], "denoisers": {name:
    {"sigma", "mean", "lo", "hi"}}}``. When ``d > 0`` a dotted line marks
    ``E‖P_T ε‖/√n = √2 Γ((d+1)/2) / (Γ(d/2) √n)``, the mean error of a denoiser that
    projects exactly at small σ: the tangential part ``P_T ε`` of the noise cannot be
    recovered and ``‖P_T ε‖`` is χ-distributed with ``d`` degrees of freedom (THEORY §2).
    """
    fig = _new_figure(8.0, 4.8)
    ax = fig.add_subplot()
    color = _Colors()
    ys = []
    for name, d in data["denoisers"].items():
        _band(ax, d["sigma"], d["mean"], d.get("lo"), d.get("hi"), label=f"{name} (mean)", color=color(name))
        ys.append(_arr(d["mean"]))
    n, dim = int(data["n"]), int(data.get("d", 0))
    if dim > 0:
        tangential = chi_mean(dim) / np.sqrt(n)
        label = rf"$E\|P_T\varepsilon\|/\sqrt{{n}}$ = {tangential:.3f} (tangential noise)"
        ax.axhline(tangential, color="k", ls=":", lw=1, label=label)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_PLAIN)
    if _spans_decades(np.concatenate(ys)):
        _set_log(ax, "y", np.concatenate(ys))
    ax.set_xlabel(r"noise level $\sigma$")
    ax.set_ylabel(r"$\|\varepsilon_\theta(x_0+\sigma\varepsilon,\sigma)-\varepsilon\|\,/\,\sqrt{n}$")
    q = data.get("quantiles")
    band = f"; dashed: {q[0]:.0%} and {q[1]:.0%} quantiles" if q else ""
    ax.set_title(f"Denoiser error on held-out points, n = {n}, d = {dim}{band}")
    ax.grid(True, which="major")
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 3
@_styled
def eta_sigma_histogram_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 3: relative projection error ``η(x_t, σ_t)`` against σ along trajectories.

    Top: a 2-D histogram of the pairs ``(σ_t, η)`` met along DDIM trajectories (THEORY
    §2: ``η = ‖x̂0 − proj_K(x)‖ / dist_K(x)``). Bottom, on the same σ axis: the
    admissibility of those pairs, ``ν(x, σ) = max(r, 1/r)`` for ``r = dist_K(x)/(√n σ)``
    (median and maximum per σ): a pair is ν-admissible exactly when ``ν(x, σ) ≤ ν``.

    ``data``: ``{"denoiser": str, "sampler": str, "sigma_edges": [...], "eta_edges": [...],
    "counts": [[...]] (len(sigma_edges)−1 × len(eta_edges)−1), "nu": {"sigma": [...],
    "median": [...], "max": [...]}, "eta_floor": float, "nu_range": [lo, hi] (optional:
    the ν axis, shared by the figures of several denoisers so that they compare)}``.
    η values below ``eta_floor`` are counted in the lowest bin.
    """
    se, ee = _arr(data["sigma_edges"]), _arr(data["eta_edges"])
    counts = _arr(data["counts"])
    nu = data.get("nu")
    fig = _new_figure(8.0, 6.4 if nu else 4.6)
    if nu:
        ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    else:
        ax, ax2 = fig.add_subplot(), None
    masked = np.ma.masked_less_equal(counts.T, 0)
    vmax = max(float(counts.max()), 1.5)
    mesh = ax.pcolormesh(se, ee, masked, cmap="viridis", norm=LogNorm(vmin=1, vmax=vmax), shading="flat")
    cb = fig.colorbar(mesh, ax=[a for a in (ax, ax2) if a is not None], pad=0.02, fraction=0.05)
    cb.set_label("pairs $(x_t,\\sigma_t)$ per bin")
    _set_log(ax, "y")
    ax.set_ylim(ee[0], ee[-1])
    ax.set_ylabel(r"projection error $\eta(x_t,\sigma_t)$")
    ax.set_title(f"η along {data.get('sampler', 'DDIM')} trajectories — {data['denoiser']} denoiser")
    floor = data.get("eta_floor")
    if floor is not None:
        ax.text(0.01, 0.02, f"η ≤ {floor:.0e} counted in the lowest row", transform=ax.transAxes, color="w")
    target = ax2 if ax2 is not None else ax
    if ax2 is not None:
        s = _arr(nu["sigma"])
        ax2.plot(s, _arr(nu["median"]), color="k", lw=1.5, label="median")
        ax2.plot(s, _arr(nu["max"]), color="k", lw=1, ls="--", label="max")
        ax2.set_ylabel(r"$\nu(x,\sigma)=\max(r,1/r)$")
        lo_hi = data.get("nu_range") or [1.0, max(float(np.nanmax(_arr(nu["max"]))), 1.1)]
        ax2.set_ylim(lo_hi[0] - 0.03 * (lo_hi[1] - lo_hi[0]), lo_hi[1] * 1.03)
        ax2.grid(True, which="major")
        ax2.legend(loc="upper left", ncol=2)
    _sigma_axis(target)
    target.set_xlim(se[-1], se[0])
    return fig


# ---------------------------------------------------------------------------- 4
@_styled
def schedules_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 4: σ schedules on a log scale (THEORY §5).

    ``data``: ``{"n_steps": int, "schedules": {label: [σ_N, …, σ_0]}, "certified":
    {"label": str, "sigma_max": float, "sigma_min": float} (optional)}``, each schedule
    in sampling order. Values ``σ = 0`` (a final step to zero) are drawn at the bottom of
    the axis and listed in the legend. ``certified`` names a schedule that is a guarantee
    only on ``[sigma_min, sigma_max]`` (Theorem 1 via ``suggest_schedule``): that range is
    shaded and the schedule drawn inside it, so it does not read as a whole schedule.
    """
    fig = _new_figure(7.0, 6.4)
    ax = fig.add_subplot()
    positive = np.concatenate([_arr(s)[_arr(s) > 0] for s in data["schedules"].values()])
    bottom = float(positive.min()) / 3.0
    cert = data.get("certified")
    color = _Colors()
    for label, s in data["schedules"].items():
        s = _arr(s)
        k = np.arange(s.size)
        zero = s <= 0
        lab = label + (" [last σ = 0: drawn at the bottom]" if zero.any() else "")
        is_cert = cert is not None and label == cert["label"]
        ax.plot(
            k, np.where(zero, bottom, s), marker="o", ms=3, color=color(label), ls=":" if is_cert else "-", label=lab
        )
    if cert is not None:
        ax.axhspan(cert["sigma_min"], cert["sigma_max"], color="0.85", zorder=0,
                   label=f"certified by Theorem 1 for the MLP: σ ≤ {cert['sigma_max']:.2g}")  # fmt: skip
    _set_log(ax, "y")
    ax.set_ylim(bottom=bottom / 1.5)
    ax.set_xlabel(r"sampler step $k$ (from $\sigma_N$ at $k=0$)")
    ax.set_ylabel(r"noise level $\sigma$")
    ax.set_title(f"σ schedules with N = {data['n_steps']} model evaluations")
    ax.grid(True, which="major")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 5
_METRIC_LABELS = {
    "ode_error": r"ODE error: mean $\|x_0-x_0^{\rm ref}\|$",
    "mean_dist": r"mean $\mathrm{dist}_K(x_0)$",
    "mmd": r"MMD$^2$ to data (unbiased, RBF)",
}


def _quality_axis(ax, xs, series: Mapping[str, Sequence[float]], color, *, ylabel: str, noise=None) -> None:
    values = np.concatenate([_arr(y) for y in series.values()] + [np.ones(0)])
    for name, y in series.items():
        ax.plot(xs, _arr(y), marker="o", ms=4, color=color(name), label=name)
    finite = values[np.isfinite(values)]
    if finite.size and (finite > 0).all() and _spans_decades(finite):
        _set_log(ax, "y", finite)
    elif finite.size and (finite <= 0).any():
        ax.axhline(0.0, color="k", lw=0.6)
        if noise and np.abs(finite).max() > 10 * noise:
            # Values within ±noise are indistinguishable from 0: linear there, logarithmic beyond,
            # with ticks only at 0 and at decades well outside the linear range (no collisions).
            ax.set_yscale("symlog", linthresh=noise, linscale=1.0)
            top = math.floor(math.log10(np.abs(finite).max()))
            decades = [10.0**k for k in range(math.ceil(math.log10(noise)) + 1, top + 1)]
            ticks = [-t for t in decades if -t >= finite.min()] + [0.0] + decades
            ax.set_yticks(ticks)
            ax.yaxis.set_major_formatter(_PLAIN)
            ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{v:g}" for v in xs])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major")


@_styled
def sampler_quality_figure(samplers: Mapping[str, Any], gamma: Mapping[str, Any] | None = None) -> Figure:
    """Figure 5: sample quality against NFE per sampler, and against γ (THEORY §5).

    ``samplers``: ``{"nfe": [5, 10, 20, 50], "metrics": [names], "samplers": {name:
    {metric: [value per NFE]}}, "denoiser": str, "schedule": str, "dist_floor": float,
    "mmd_floor": float}`` (``dist_floor``, optional: the mean ``dist_K`` of a perfect
    sample still carrying the final noise ``σ_0``, a dotted line on the ``mean_dist``
    panel; ``mmd_floor``, optional: MMD² between two sets of true samples, shaded as ±
    the estimator's noise and used as the linear range of a symmetric-log axis when MMD²
    values are negative and span decades). ``gamma``: ``{"nfe": int, "gammas": [...],
    "metrics": {metric: [value per γ]}}``: ODE error (left axis, solid) and the next
    metric (right axis, dashed) against γ, with the smallest ODE error marked.
    """
    metrics = list(samplers.get("metrics", ["ode_error", "mean_dist", "mmd"]))
    panels = len(metrics) + (1 if gamma else 0)
    rows = (panels + 1) // 2
    fig = _new_figure(8.0, 3.3 * rows + 0.5)
    axes = list(fig.subplots(rows, 2, squeeze=False).ravel())
    for extra in axes[panels:]:
        extra.remove()
    nfe = _arr(samplers["nfe"])
    floor = samplers.get("mmd_floor")
    color = _Colors()
    for ax, m in zip(axes, metrics):
        series = {name: vals[m] for name, vals in samplers["samplers"].items()}
        noise = abs(floor) if (m == "mmd" and floor) else None
        _quality_axis(ax, nfe, series, color, ylabel=_METRIC_LABELS.get(m, m), noise=noise)
        ax.set_xlabel("model evaluations (NFE)")
        if m == "mean_dist" and samplers.get("dist_floor"):
            line = ax.axhline(samplers["dist_floor"], color="k", ls=":", lw=1, label=r"noise left at $\sigma_0$")
            ax.legend(handles=[line], loc="upper right")
        if m == "mmd" and floor:
            band = ax.axhspan(-abs(floor), abs(floor), color="0.88", zorder=0, label="± noise of the estimate")
            ax.legend(handles=[band], loc="upper right")
    if gamma:
        _gamma_panel(axes[panels - 1], gamma)
    title = "Sampler quality at equal NFE"
    if samplers.get("denoiser"):
        title += f" — {samplers['denoiser']} denoiser"
    if samplers.get("schedule"):
        title += f"\nschedule: {samplers['schedule']}"
    fig.suptitle(title)
    # One legend of the samplers for all panels, below them, where it covers no data.
    handles = [ln for ln in axes[0].get_lines() if ln.get_label() in samplers["samplers"]]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.06 / rows, 1, 1))
    return fig


def _gamma_panel(ax, gamma: Mapping[str, Any]) -> None:
    """ODE error (left axis, black, solid) and the next metric (right axis, grey, dashed) against γ."""
    g = _arr(gamma["gammas"])
    items = list(gamma["metrics"].items())[:2]
    for i, (m, vals) in enumerate(items):
        target = ax if i == 0 else ax.twinx()
        style = {"color": "k", "ls": "-", "marker": "s"} if i == 0 else {"color": "0.45", "ls": "--", "marker": "^"}
        target.plot(g, _arr(vals), ms=4, **style)
        label = _METRIC_LABELS.get(m, m) + (" (solid)" if i == 0 else " (dashed)")
        target.set_ylabel(label, color=style["color"])
        if _spans_decades(vals) and (_arr(vals) > 0).all():
            _set_log(target, "y", vals)
    ode = _arr(items[0][1])
    if np.isfinite(ode).any():
        best = int(np.nanargmin(ode))
        label = f"smallest ODE error: γ = {g[best]:g}"
        ax.plot(g[best], ode[best], marker="*", ms=14, color="k", ls="none", label=label)
        ax.legend(loc="upper center")
    for x, text in ((1.0, "DDIM"), (2.0, "paper")):
        ax.axvline(x, color="0.6", ls=":", lw=1)
        ax.text(x, 1.0, f"γ = {x:g}: {text}", transform=ax.get_xaxis_transform(), va="bottom", ha="center")
    ax.set_xlabel(rf"GE extrapolation $\gamma$ (NFE = {gamma['nfe']})")
    ax.grid(True, which="major")


# ---------------------------------------------------------------------------- 6
def _clip_to_box(pts: np.ndarray, lim) -> np.ndarray:
    """Points outside the axis box become NaN (the line breaks there instead of leaving the plot)."""
    if lim is None:
        return pts
    lo, hi = _arr(lim)[:, 0], _arr(lim)[:, 1]
    out = ((pts < lo) | (pts > hi)).any(axis=-1)
    return np.where(out[..., None], np.nan, pts)


@_styled
def trajectories_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 6 (static): sampler trajectories in the data set's chart.

    ``data``: ``{"coords": [names], "manifold": [[...]] points of K (or a dense curve) in
    those coordinates, "curve": bool, "trajectories": {sampler: [[[...]]] (steps+1, B, k)},
    "denoiser": str, "limits": [[lo, hi]] per coordinate (optional)}``. Two coordinates
    give a 2-D plot, three a 3-D one (see :func:`trajectories_interactive_figure` for the
    interactive view). Parts of a trajectory outside ``limits`` are not drawn.
    """
    coords = list(data["coords"])
    k = len(coords)
    fig = _new_figure(7.0, 6.2)
    ax = fig.add_subplot(projection="3d") if k == 3 else fig.add_subplot()
    K = _arr(data["manifold"])
    lim = data.get("limits")
    if k == 3:
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.pane.fill = False
            axis.pane.set_edgecolor("0.8")
        ax.scatter(K[:, 0], K[:, 1], K[:, 2], s=3, color="0.55", alpha=0.3, label="K (samples)", depthshade=False)
    elif data.get("curve"):
        ax.plot(K[:, 0], K[:, 1], color="0.55", lw=2, label="K")
    else:
        ax.scatter(K[:, 0], K[:, 1], s=4, color="0.6", alpha=0.5, label="K (samples)")
    color = _Colors()
    for name, traj in data["trajectories"].items():
        T = _arr(traj)
        c = color(name)
        shown = _clip_to_box(T, lim)
        for b in range(T.shape[1]):
            pts, end = shown[:, b, :], T[-1, b, :]
            lab = name if b == 0 else None
            ax.plot(*pts.T, color=c, lw=1.0, alpha=0.85, label=lab)
            ax.scatter(*end, color=c, s=14, zorder=3, edgecolors="k", linewidths=0.4)
    ax.set_xlabel(coords[0])
    ax.set_ylabel(coords[1])
    if k == 3:
        ax.set_zlabel(coords[2])
    else:
        ax.set_aspect("equal", adjustable="box" if lim is not None else "datalim")
        ax.grid(True)
    if lim is not None:
        ax.set_xlim(*lim[0])
        ax.set_ylim(*lim[1])
        if k == 3:
            ax.set_zlim(*lim[2])
    ax.legend(loc="upper right")
    ax.set_title(f"Sampler trajectories, {data.get('denoiser', '')} denoiser (dots: final samples)")
    fig.tight_layout()
    return fig


def trajectories_interactive_figure(data: Mapping[str, Any]):
    """Figure 6 (interactive): a plotly view of :func:`trajectories_figure`'s data, 2-D or 3-D.

    Returns a ``plotly.graph_objects.Figure`` (write it with ``include_plotlyjs=True``
    for an offline page). Axis titles are plain Unicode: 3-D scenes do not typeset LaTeX.
    """
    import plotly.graph_objects as go

    coords = list(data["coords"])
    k = len(coords)
    if k not in (2, 3):
        raise ValueError(f"data['coords'] must name 2 or 3 coordinates, got {k}")
    scatter = go.Scatter3d if k == 3 else go.Scatter
    K = _arr(data["manifold"])
    xyz = ("x", "y", "z")[:k]
    fig = go.Figure()
    curve = k == 2 and data.get("curve")
    fig.add_trace(
        scatter(
            **{a: K[:, i] for i, a in enumerate(xyz)},
            mode="lines" if curve else "markers",
            name="K" if curve else "K (samples)",
            line={"color": "gray", "width": 2} if curve else None,
            marker=None if curve else {"size": 2 if k == 3 else 4, "color": "lightgray", "opacity": 0.6},
        )
    )
    color = _Colors()
    lim = data.get("limits")
    for name, traj in data["trajectories"].items():
        T = _clip_to_box(_arr(traj), lim)
        c = color(name)
        for b in range(T.shape[1]):
            pts = T[:, b, :]
            fig.add_trace(
                scatter(
                    **{a: pts[:, i] for i, a in enumerate(xyz)},
                    mode="lines+markers",
                    line={"color": c, "width": 3 if k == 3 else 1.5},
                    marker={"size": 2 if k == 3 else 4, "color": c},
                    name=name,
                    legendgroup=name,
                    showlegend=(b == 0),
                )
            )
    if k == 3:
        scene = {f"{a}axis": {"title": {"text": coords[i]}} for i, a in enumerate(xyz)}
        if lim is not None:
            for i, a in enumerate(xyz):
                scene[f"{a}axis"]["range"] = list(lim[i])
        fig.update_layout(scene={**scene, "aspectmode": "cube" if lim is not None else "data"}, height=600)
    else:
        fig.update_xaxes(title_text=coords[0], range=list(lim[0]) if lim is not None else None, automargin=True)
        fig.update_yaxes(
            title_text=coords[1], range=list(lim[1]) if lim is not None else None, automargin=True,
            scaleanchor="x", scaleratio=1,
        )  # fmt: skip
        fig.update_layout(height=560)
    fig.update_layout(
        title=f"Trajectories ({data.get('denoiser', '')} denoiser)" + (", drag to rotate" if k == 3 else ""),
        legend={"title": {"text": "sampler"}},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        autosize=True,
    )
    return fig


def trajectories_3d_figure(data: Mapping[str, Any]):
    """:func:`trajectories_interactive_figure` for three coordinates (``ValueError`` otherwise)."""
    if len(data["coords"]) != 3:
        raise ValueError(f"data['coords'] must name 3 coordinates for a 3-D view, got {len(data['coords'])}")
    return trajectories_interactive_figure(data)


# ---------------------------------------------------------------------------- 7
_RUN_STYLES = {"random": "-", "outward": "--", "inward": "-."}


@_styled
def envelope_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 7: ``dist_K(x_t)`` along DDIM against Theorem 1's envelope (THEORY §3).

    Dividing Theorem 1's bound ``√n σ_t r_N L_t ≤ dist_K(x_t) ≤ √n σ_t r_N U_t`` by
    ``dist_K(x_N) = √n σ_N r_N`` gives an envelope that is the same for every trajectory:
    ``(σ_t/σ_N) L_t ≤ dist_K(x_t)/dist_K(x_N) ≤ (σ_t/σ_N) U_t`` (left panel), equivalently
    ``L_t ≤ r_t/r_N ≤ U_t`` (right panel).

    ``data``: ``{"eta": float, "nu": float, "sigmas": [σ_N … σ_0] (sampling order),
    "L": [...], "U": [...] (same order), "runs": {label: [[dist_K(x_t) for t] per
    trajectory]}}``. ``σ_0`` must be ``> 0`` (Theorem 1's setting). A run's colour is its
    denoiser's (``"perturbed …"``, ``"exact projection …"``); the error modes of the
    perturbed projection differ by line style.
    """
    sig = _arr(data["sigmas"])
    L, U = _arr(data["L"]), _arr(data["U"])
    fig = _new_figure(8.0, 4.4)
    ax1, ax2 = fig.subplots(1, 2)
    scale = sig / sig[0]
    ax1.fill_between(sig, scale * L, scale * U, color="0.88", label="Theorem 1 envelope")
    ax2.fill_between(sig, L, U, color="0.88", label=r"$[L_t, U_t]$")
    for ax, lo, hi in ((ax1, scale * L, scale * U), (ax2, L, U)):
        ax.plot(sig, lo, color="0.3", lw=0.8)
        ax.plot(sig, hi, color="0.3", lw=0.8)
    color = _Colors()
    for label, runs in data["runs"].items():
        D = np.atleast_2d(_arr(runs))
        key = "projection" if label.startswith("exact") else label.split(" ")[0]
        c = DENOISER_COLORS.get(key) or color(label)
        ls = next((s for mode, s in _RUN_STYLES.items() if mode in label), ":")
        rel = D / D[:, :1]
        for b in range(D.shape[0]):
            lab = label if b == 0 else None
            ax1.plot(sig, rel[b], color=c, ls=ls, lw=1.0, alpha=0.7, label=lab)
            ax2.plot(sig, rel[b] / scale, color=c, ls=ls, lw=1.0, alpha=0.7, label=lab)
    for ax in (ax1, ax2):
        _sigma_axis(ax, r"noise level $\sigma_t$ (DDIM runs →)")
        ax.grid(True, which="major")
    _set_log(ax1, "y")
    ax1.set_ylabel(r"$\mathrm{dist}_K(x_t)\,/\,\mathrm{dist}_K(x_N)$")
    ax2.set_ylabel(r"$r_t / r_N$")
    ax1.legend(loc="lower left")
    fig.suptitle(f"DDIM against Theorem 1 (η = {data['eta']:g}, ν = {data['nu']:.3g}, N = {sig.size - 1} steps)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- 8
@_styled
def eta_nu_figure(data: Mapping[str, Any]) -> Figure:
    """Figure 8: empirical ``η̂(ν)`` for several denoisers (THEORY §2).

    ``η̂(ν)`` is the maximum (or the stated quantile) of ``η(x, σ)`` over the sampled
    ν-admissible pairs; it is non-decreasing in ν. ``data``: ``{"nus": [...],
    "statistic": "max" | "q0.9", "denoisers": {name: [η̂ per ν]}}``. NaN (no admissible
    pair) leaves a gap; values at or below :data:`ETA_FLOOR` (exact projection) are
    drawn at the floor and flagged in the legend.
    """
    fig = _new_figure(8.0, 5.2)
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
    color = _Colors()
    for name, v in curves.items():
        low = np.isfinite(v) & (v <= ETA_FLOOR)
        label = name
        if low.any():
            label += f" (η̂ ≤ {max(float(np.nanmax(v[low])), 1e-300):.0e} ≈ 0" + (
                ": drawn along the bottom)" if logy else ")"
            )
        y = np.where(low, bottom * 1.08, v) if logy else v
        ax.plot(xpos, y, marker="v" if low.any() else "o", ms=4, color=color(name), label=label)
    ax.set_xscale("log")
    ax.set_xticks(xpos)
    ax.set_xticklabels([f"{t:g}" for t in nus])
    ax.xaxis.set_minor_locator(NullLocator())
    if logy:
        _set_log(ax, "y", np.concatenate([above, [bottom]]))
        ax.set_ylim(bottom=bottom)
    ax.set_xlabel(
        r"admissibility $\nu$ (pairs with $1/\nu \leq r \leq \nu$)" + (r"; spaced by $\log(\nu-1)$" if shifted else "")
    )
    stat = data.get("statistic", "max")
    ax.set_ylabel(r"$\hat\eta(\nu)$ (" + ("max" if stat == "max" else f"{stat} quantile") + r" of $\eta$)")
    ax.set_title(r"Empirical $\hat\eta(\nu)$: how far each denoiser is from projection")
    ax.grid(True, which="major")
    ax.legend(title="denoiser", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


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
