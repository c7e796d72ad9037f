"""From the model report's ``results.json`` to figures and ``report.html`` (no experiment is re-run here).

The page is the Jinja2 template ``templates/model_report.html.j2``; it shares the toy
report's style sheet and table/figure macros (``analysis/report/templates``) and its
number format (:func:`analysis.report.render.fmt`).
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from .. import model_figures as MF
from ..report.render import fmt, png_bytes, slug

__all__ = ["make_model_figures", "render_model_html", "write_model_report"]


def make_model_figures(results: dict[str, Any]) -> dict[str, Any]:
    """All figures of the model report from ``results``: ``{file stem: Figure}``."""
    return {
        "model_fig1_denoiser_norm": MF.model_denoiser_norm_figure(results["denoiser_norm"]),
        "model_fig2_eta_sigma": MF.model_eta_sigma_figure(results["eta_sigma"]),
        "model_fig3_theorem1": MF.model_theorem1_figure(results["theorem1"]),
        "model_fig4_memorisation": MF.model_memorisation_figure(results["memorisation"]),
        "model_fig4_nearest_images": MF.nearest_images_figure(results["memorisation"]),
        "model_fig5_samplers": MF.model_sampler_figure(results["samplers"]),
    }


def _environment() -> jinja2.Environment:
    here = resources.files(__package__) / "templates"
    shared = resources.files("analysis.report") / "templates"
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(here)), jinja2.FileSystemLoader(str(shared))]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(fmt=fmt, slug=slug, pct=lambda v: "—" if v is None else f"{100 * v:.1f}%")
    return env


def render_model_html(results: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """``report.html`` from ``results`` and the PNG bytes of every figure."""
    uris = {stem: "data:image/png;base64," + base64.b64encode(data).decode("ascii") for stem, data in pngs.items()}
    return _environment().get_template("model_report.html.j2").render(r=results, png=uris)


def write_model_report(results: dict[str, Any], out_dir) -> Path:
    """Write ``results.json``, ``figures/*.png`` and ``report.html`` into ``out_dir`` (which must exist).

    Pass it as ``writer`` to :func:`analysis.report.write_report_atomically` for a report
    that is never half-written. Returns the path of ``report.html``.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(results, indent=1, allow_nan=False, ensure_ascii=False), encoding="utf-8"
    )
    pngs = {}
    for stem, fig in make_model_figures(results).items():
        pngs[stem] = png_bytes(fig)
        (out / "figures" / f"{stem}.png").write_bytes(pngs[stem])
    (out / "report.html").write_text(render_model_html(results, pngs), encoding="utf-8")
    return out / "report.html"
