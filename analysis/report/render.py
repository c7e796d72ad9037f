"""From ``results.json`` to figures and ``report.html`` (no experiment is re-run here).

The page is the Jinja2 template ``templates/report.html.j2``; this module only supplies
its filters (number formatting, table rows) and the figures, embedded as PNG data URIs
so that the page opens offline.
"""

from __future__ import annotations

import base64
import io
import math
from importlib import resources
from typing import Any

import jinja2

from .. import figures as F

__all__ = ["INTERACTIVE", "fmt", "make_figures", "make_slider_figures", "render_html", "slug"]

#: The key of the interactive (plotly) view in :func:`make_figures`.
INTERACTIVE = "trajectories_interactive"


def slug(name: str) -> str:
    """A file-name stem for ``name`` (``"GE (γ=2)"`` → ``"ge___2"``)."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def fmt(v: Any, digits: int = 3) -> str:
    """A number as the report shows it: 3 significant digits, scientific outside [1e-3, 1e4)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v == 0:
            return "0"
        if not math.isfinite(v):
            return str(v)
        if abs(v) >= 1e4 or abs(v) < 1e-3:
            return f"{v:.{digits}e}"
        return f"{v:.{digits}g}"
    return str(v)


def make_figures(results: dict[str, Any]) -> dict[str, Any]:
    """All figures of the report from ``results``: ``{file stem: Figure}``.

    The interactive view (plotly, 2-D or 3-D as the data set's chart) is under
    :data:`INTERACTIVE`; the others are matplotlib figures.
    """
    figs: dict[str, Any] = {
        "fig1_denoiser_norm": F.denoiser_norm_figure(results["denoiser_norm"]),
        "fig2_denoiser_error": F.denoiser_error_figure(results["denoiser_error"]),
    }
    for name, data in results["eta_sigma"].items():
        figs[f"fig3_eta_sigma_{slug(name)}"] = F.eta_sigma_histogram_figure(data)
    figs["fig4_schedules"] = F.schedules_figure(results["schedules"])
    for den, data in results["samplers"].items():
        figs[f"fig5_sampler_quality_{slug(den)}"] = F.sampler_quality_figure(data, results["gamma_sweep"][den])
    figs["fig6_trajectories"] = F.trajectories_figure(results["trajectories"])
    figs[INTERACTIVE] = F.trajectories_interactive_figure(results["trajectories"])
    figs["fig7_theorem1_envelope"] = F.envelope_figure(results["envelope"])
    figs["fig8_eta_nu"] = F.eta_nu_figure(results["eta_nu"])
    return figs


def make_slider_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The report's kernel-free sliders (plotly figures whose slider steps hold precomputed traces).

    ``"theorem1_eta"``: the Theorem 1 view with a slider over η (:func:`analysis.figures.envelope_slider_figure`);
    ``"gamma_<denoiser>"``: GE trajectories and the ODE error with a slider over γ
    (:func:`analysis.figures.gamma_slider_figure`), one per denoiser of the γ sweep. Results
    written before the sliders existed (no ``eta_grid``, no sweep ``trajectories``) give none.
    """
    figs: dict[str, Any] = {}
    if "eta_grid" in results.get("envelope", {}):
        figs["theorem1_eta"] = F.envelope_slider_figure(results["envelope"])
    for den, sweep in results.get("gamma_sweep", {}).items():
        if "trajectories" in sweep and "trajectories" in results:
            figs[f"gamma_{slug(den)}"] = F.gamma_slider_figure(sweep, results["trajectories"])
    return figs


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG, at the resolution of the report."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=F.REPORT_DPI, bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------- template filters


def _rows(table: dict[str, list]) -> list[list]:
    """``{name: [v1, v2, …]}`` → table rows ``[name, v1, v2, …]``."""
    return [[k, *v] for k, v in table.items()]


def _metric_rows(samplers: dict[str, Any], metric: str, nfe_actual: dict[str, list[int]]) -> list[list]:
    return [[s, *vals[metric], ", ".join(map(str, nfe_actual[s]))] for s, vals in samplers.items()]


def _envelope_row(run: str, env: dict[str, Any]) -> list:
    gaps = env["gaps"][run]
    return [run, env["inside"][run], gaps["to_upper"], gaps["to_lower"], env["lemma1_violations"][run]]


def _suggestion_row(v: dict[str, Any]) -> list:
    lo, hi = v["r_N_range"]
    return [
        v["sampler"],
        v["schedule"],
        v["start"],
        v["sigma_max"],
        f"{fmt(lo)}–{fmt(hi)}",
        v["mean_dist"],
        v["max_dist"],
        v["mmd"],
        v.get("theorem1_conditions_hold_fraction"),
        v.get("within_final_bound_fraction"),
    ]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters.update(
        fmt=fmt,
        slug=slug,
        rows=_rows,
        metric_rows=_metric_rows,
        envelope_row=_envelope_row,
        suggestion_row=_suggestion_row,
        fmt_nu=lambda v: f"ν={v:g}",
        fmt_nfe=lambda v: f"NFE {v}",
        fmt_gamma=lambda v: f"γ={v:g}",
    )
    return env


def render_html(
    results: dict[str, Any],
    pngs: dict[str, bytes],
    interactive_html: str | None,
    sliders: dict[str, str] | None = None,
    plotlyjs: str | None = None,
) -> str:
    """``report.html`` from ``results``, the PNG bytes of every static figure and the plotly views' HTML.

    ``interactive_html`` and the ``sliders`` (name → HTML) are plotly figures written without
    plotly.js; ``plotlyjs`` (the library's source) is then inlined once, in the page's head,
    so that every figure can draw offline.
    """
    uris = {stem: "data:image/png;base64," + base64.b64encode(data).decode("ascii") for stem, data in pngs.items()}
    template = _environment().get_template("report.html.j2")
    return template.render(r=results, png=uris, interactive=interactive_html, sliders=sliders or {}, plotlyjs=plotlyjs)
