"""The figures' shared style: one colour per sampler and denoiser, fonts, log axes and bands."""

from __future__ import annotations

import functools
import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from toymanifold.samplers import SAMPLERS

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
    """Log scale on ``axis`` with plain tick labels (0.01, 0.1, 1, …); 1-2-3-5 ticks over short ranges
    (so that a curve near the top of a short axis, e.g. at 0.4, has a labelled tick near it)."""
    getattr(ax, f"set_{axis}scale")("log")
    a = ax.yaxis if axis == "y" else ax.xaxis
    v = _arr(values if values is not None else []).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and np.log10(v.max() / v.min()) < 1.5:
        a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
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
