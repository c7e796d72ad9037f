"""Figures of the model report, drawn from its ``results.json`` sections only (never from re-run experiments).

One function per section of :mod:`analysis.model_report` (each returns a matplotlib
:class:`~matplotlib.figure.Figure` on the Agg canvas; nothing calls ``plt.show()``):

1. :func:`model_denoiser_norm_figure` — ``‖ε‖/√n`` along DDIM, network and ideal
   denoiser, with the band the ideal denoiser must lie in; the ratio of the two (THEORY §2);
2. :func:`model_eta_sigma_figure` — η against projection onto ``K`` and against the ideal
   denoiser as histograms over σ, and the admissibility ν (THEORY §2);
3. :func:`model_theorem1_figure` — ``r_t/r_N`` along the network's DDIM runs against
   Theorem 1's envelope for the measured ``(η̂, ν)`` (THEORY §3);
4. :func:`model_memorisation_figure` and :func:`nearest_images_figure` — distances to the
   nearest training image, the near-copy ratio, and samples beside their nearest images;
5. :func:`model_sampler_figure` — ODE error and Fréchet distance against model evaluations (THEORY §5).

Colours: every sampler has its registry colour (:data:`toymanifold.samplers.SAMPLERS`);
the trained network, the ideal denoiser and the training set have the colours of
:data:`COLORS` in every figure. Text is at least 9 pt at the figure's own size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from toymanifold.samplers import SAMPLERS

from .figures import _set_log as _plain_log  # 1-2-3-5 plain tick labels when under ~1.5 decades

__all__ = [
    "COLORS",
    "model_denoiser_norm_figure",
    "model_eta_sigma_figure",
    "model_memorisation_figure",
    "model_sampler_figure",
    "model_theorem1_figure",
    "nearest_images_figure",
]

#: One colour per denoiser and data set: the trained network as the toy report's trained
#: MLP, the ideal denoiser as the toy report's ideal denoiser, the training set in black.
COLORS = {"network": "#d62728", "ideal denoiser": "#1f77b4", "training set": "#000000"}

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _arr(v: Any) -> np.ndarray:
    return np.asarray([np.nan if x is None else x for x in v], dtype=float) if isinstance(v, list) else np.asarray(v)


def _sigma_axis(ax, label: str = r"noise level $\sigma_t$ (sampling runs left to right)") -> None:
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel(label)
    ax.grid(True, which="major")


def _band(ax, x, q: Mapping[str, Any], color: str, label: str) -> None:
    """Median line and 10–90% shading of a ``{"lo", "median", "hi"}`` entry."""
    x = _arr(x)
    ax.fill_between(x, _arr(q["lo"]), _arr(q["hi"]), color=color, alpha=0.18, linewidth=0)
    ax.plot(x, _arr(q["median"]), color=color, lw=1.6, label=label)


# ---------------------------------------------------------------------------- 1
def model_denoiser_norm_figure(data: Mapping[str, Any]) -> Figure:
    """Section 1: ``‖ε‖/√n`` along DDIM (THEORY §2) and the ratio ``‖ε_θ‖/‖ε*‖`` at the network's iterates.

    Left: median (line) and 10–90% of the runs (shaded) for the network and the ideal
    denoiser of ``K``, each along its own runs from the same starts; grey: the
    10–90% band of χ_n/√n (the distribution of ``‖ξ‖/√n``); dashed: that band widened by
    ``Δ_t/√n``, where the ideal denoiser's runs must lie (``ideal_norm_band``). Right:
    ``‖ε_θ(x_t)‖/‖ε*(x_t)‖`` at the same points, median and 10–90%.
    """
    with matplotlib.rc_context(_STYLE):
        fig = _figure(10.0, 4.0)
        ax, ax2 = fig.subplots(1, 2)
        sig = _arr(data["sigma"])
        band = data["band"]
        q = band["quantiles"]
        ax.axhspan(
            band["chi_lo"], band["chi_hi"], color="0.85", zorder=0, label=rf"$\chi_n/\sqrt{{n}}$, {q[0]:.0%}–{q[1]:.0%}"
        )
        ax.plot(
            sig,
            _arr(band["lo"]),
            color="0.35",
            ls="--",
            lw=0.9,
            label=r"band for the ideal denoiser ($\pm\Delta_t/\sqrt{n}$)",
        )
        ax.plot(sig, _arr(band["hi"]), color="0.35", ls="--", lw=0.9)
        _band(ax, sig, data["ideal"], COLORS["ideal denoiser"], "ideal denoiser of K")
        _band(ax, sig, data["network"], COLORS["network"], "network")
        ys = np.concatenate([_arr(data[k][m]) for k in ("ideal", "network") for m in ("lo", "hi")])
        ax.set_ylim(max(0.0, np.nanmin(ys) - 0.1), np.nanmax(ys) + 0.1)
        _sigma_axis(ax)
        ax.set_ylabel(r"$\|\varepsilon(x_t,\sigma_t)\|\,/\,\sqrt{n}$")
        ax.set_title(f"Denoiser output norm along DDIM (n = {data['n']}); line: median over {data['batch']} runs")
        ax.legend(loc="lower left")
        _band(ax2, sig, data["ratio"], COLORS["network"], "median, 10–90% of runs")
        ax2.axhline(1.0, color="k", lw=0.8)
        _sigma_axis(ax2)
        _plain_log(ax2, "y", np.concatenate([_arr(data["ratio"]["lo"]), _arr(data["ratio"]["hi"]), [1.0]]))
        ax2.set_ylabel(r"$\|\varepsilon_\theta(x_t)\|\,/\,\|\varepsilon^*(x_t)\|$")
        ax2.set_title("Network against the ideal denoiser, at the network's iterates")
        ax2.legend(loc="upper left")
    return fig


# ---------------------------------------------------------------------------- 2
def model_eta_sigma_figure(data: Mapping[str, Any]) -> Figure:
    """Section 2: the network's relative error along its DDIM runs as histograms over σ (THEORY §2).

    Left: ``η = ‖x̂0_θ − proj_K(x)‖/dist_K(x)``; middle: ``‖x̂0_θ − x̂0*‖/dist_K(x)`` (the
    ideal denoiser in place of the projection); one σ column per DDIM step, the same bins
    and colour scale in both, white line the median; dashed blue in the left panel: the
    ideal denoiser's own η at the same points (median). Right: the admissibility
    ``ν(x, σ) = max(r, 1/r)`` (median, 10–90% and maximum): a pair is ν-admissible iff
    ``ν(x, σ) ≤ ν``.
    """
    with matplotlib.rc_context(_STYLE):
        fig = _figure(13.0, 4.2)
        axes = fig.subplots(1, 3, width_ratios=[1, 1, 0.8])
        se, ee = _arr(data["sigma_edges"]), _arr(data["eta_edges"])
        sig = _arr(data["sigma"])
        counts = {k: _arr(v["counts"]) for k, v in data["against"].items()}
        vmax = max(max(float(c.max()) for c in counts.values()), 2.0)
        norm = LogNorm(vmin=1, vmax=vmax)
        titles = {"projection": r"against projection onto $K$", "ideal denoiser": r"against the ideal denoiser of $K$"}
        ylabels = {
            "projection": r"$\eta=\|\hat x_0^\theta-\mathrm{proj}_K(x)\|\,/\,\mathrm{dist}_K(x)$",
            "ideal denoiser": r"$\|\hat x_0^\theta-\hat x_0^*\|\,/\,\mathrm{dist}_K(x)$",
        }
        mesh = None
        for ax, (name, c) in zip(axes[:2], counts.items()):
            mesh = ax.pcolormesh(se, ee, np.ma.masked_less_equal(c.T, 0), cmap="viridis", norm=norm, shading="flat")
            ax.plot(sig, _arr(data["against"][name]["median"]), color="w", lw=1.4, label="network, median")
            if name == "projection":
                ideal = np.maximum(_arr(data["ideal_eta_median"]), ee[0])
                ax.plot(sig, ideal, color=COLORS["ideal denoiser"], lw=1.4, ls="--",
                        label="ideal denoiser's own η, median\n(drawn at the bottom below it)")  # fmt: skip
            ax.set_yscale("log")
            ax.set_xlim(se[-1], se[0])
            ax.set_ylim(ee[0], ee[-1])
            _sigma_axis(ax, r"noise level $\sigma_t$")
            ax.set_xlim(se[-1], se[0])
            ax.set_ylabel(ylabels[name])
            ax.set_title(f"Network {titles[name]}")
            ax.legend(loc="lower left", facecolor="0.9")
        cb = fig.colorbar(mesh, ax=list(axes[:2]), pad=0.01)
        fig.get_layout_engine().set(wspace=0.06)
        cb.set_label(r"pairs $(x_t,\sigma_t)$ per bin")
        ax = axes[2]
        nu = data["nu"]
        _band(ax, sig, nu, COLORS["network"], "median, 10–90%")
        ax.plot(sig, _arr(nu["max"]), color=COLORS["network"], lw=0.9, ls="--", label="maximum")
        _sigma_axis(ax, r"noise level $\sigma_t$")
        _plain_log(ax, "y", np.concatenate([_arr(nu["lo"]), _arr(nu["max"]), [1.0]]))
        ax.set_ylabel(r"$\nu(x,\sigma)=\max(r,1/r)$")
        ax.set_title("Admissibility along the network's runs")
        ax.legend(loc="upper left")
        fig.suptitle(f"Relative projection error along DDIM ({data['pairs']} pairs; η below "
                     f"{data['eta_floor']:.0e} counted in the lowest row)")  # fmt: skip
    return fig


# ---------------------------------------------------------------------------- 3
def model_theorem1_figure(data: Mapping[str, Any]) -> Figure:
    """Section 3: ``r_t/r_N`` along the network's DDIM runs against Theorem 1's envelope (THEORY §3).

    Left: the envelope ``L_t ≤ r_t/r_N ≤ U_t`` of Theorem 1 with the measured ``η̂`` of the
    schedule cut at ``t`` (grey where its conditions hold for every run, hatched beyond,
    where the theorem says nothing, up to where ``η̂`` reaches 1); dotted: the admissible
    band ``1/ν ≤ r ≤ ν`` for the median ``r_N``; thin red lines: single runs of the
    network; thick: the median over runs; blue: the ideal denoiser's runs from the same
    starts (median and 10–90%). Right: η along each denoiser's own runs (median and
    10–90%) and the ``η̂`` of the cut schedule.
    """
    with matplotlib.rc_context(_STYLE):
        fig = _figure(10.5, 4.3)
        ax, ax2 = fig.subplots(1, 2)
        sig = _arr(data["sigma"])
        L, U = _arr(data["L"]), _arr(data["U"])
        cert = np.asarray(data["certified"], dtype=bool)
        k = int(cert.sum())
        nu = data["nu"]
        defined = np.isfinite(L) & np.isfinite(U)
        if k > 1:
            ax.fill_between(sig[:k], L[:k], U[:k], color="0.78", label=f"Theorem 1 envelope, certified (ν = {nu:g})")
            ax.axvline(sig[k - 1], color="0.4", lw=0.8, ls=":")
        rest = defined & (np.arange(sig.size) >= max(k - 1, 0))
        if rest.sum() > 1:
            ax.fill_between(sig[rest], L[rest], U[rest], facecolor="none", edgecolor="0.55", hatch="///", linewidth=0,
                            label="envelope where it is not certified")  # fmt: skip
        r_med = data["r_N"]["median"][0]
        ax.axhline(nu / r_med, color="0.3", ls=(0, (1, 2)), lw=1, label=r"admissible band $1/\nu\leq r\leq\nu$")
        ax.axhline(1 / (nu * r_med), color="0.3", ls=(0, (1, 2)), lw=1)
        runs = np.asarray(data["runs_shown"], dtype=float)
        for i, run in enumerate(runs):
            ax.plot(
                sig, run, color=COLORS["network"], lw=0.6, alpha=0.45, label="network, single runs" if i == 0 else None
            )
        ax.plot(sig, _arr(data["rel"]["median"]), color=COLORS["network"], lw=2.0, label="network, median")
        _band(ax, sig, data["rel_ideal"], COLORS["ideal denoiser"], "ideal denoiser, median")
        vals = np.concatenate([runs.ravel(), _arr(data["rel"]["hi"]), _arr(data["rel_ideal"]["lo"]), [0.5, 2.0]])
        ax.set_yscale("log")
        ax.set_ylim(max(np.nanmin(vals[vals > 0]), 1e-3) / 1.3, np.nanmax(vals) * 1.3)
        _sigma_axis(ax)
        ax.set_ylabel(r"$r_t/r_N$,  $r_t=\mathrm{dist}_K(x_t)/(\sqrt{n}\,\sigma_t)$")
        ax.set_title("DDIM against Theorem 1 with the measured η̂")
        ax.legend(loc="upper left")
        _band(ax2, sig[:-1], data["eta"], COLORS["network"], "network")
        _band(ax2, sig[:-1], _floored(data["eta_ideal"]), COLORS["ideal denoiser"], "ideal denoiser (own runs)")
        eta_hat = _arr(data["eta_hat"])
        ax2.plot(
            sig,
            eta_hat,
            color="k",
            ls="--",
            lw=0.9,
            label=rf"$\hat\eta$ of the schedule cut at $\sigma_t$ ($\nu$ = {nu:g})",
        )
        ax2.set_yscale("log")
        _sigma_axis(ax2)
        ax2.set_ylabel(r"$\eta(x_t,\sigma_t)$ against projection onto $K$")
        ax2.set_title("η along each denoiser's own runs (η < 1e−8 drawn at 1e−8)")
        ax2.legend(loc="lower left")
    return fig


def _floored(q: Mapping[str, Any], floor: float = 1e-8) -> dict[str, np.ndarray]:
    return {k: np.maximum(_arr(v), floor) for k, v in q.items()}


# ---------------------------------------------------------------------------- 4
def model_memorisation_figure(data: Mapping[str, Any]) -> Figure:
    """Section 4: distance of samples to the nearest training image, and the near-copy ratio.

    Left: histograms (share of each group per bin, log-spaced bins) of ``d1``, the distance to the nearest
    training image, for the network's DDIM samples, the ideal denoiser's DDIM samples
    and the training images themselves (to the nearest *other* image); dotted: ``σ(0)√n``,
    the noise a perfect copy still carries at the end of a run. Right: ``d1/d2`` with the
    near-copy threshold.
    """
    with matplotlib.rc_context(_STYLE):
        fig = _figure(10.5, 4.0)
        ax, ax2 = fig.subplots(1, 2)
        groups = data["groups"]
        d_all = np.concatenate([_arr(g["d1"]) for g in groups.values()])
        d_all = d_all[d_all > 0]
        edges = np.logspace(math.log10(d_all.min() / 1.2), math.log10(d_all.max() * 1.2), 41)
        r_edges = np.linspace(0.0, 1.0, 41)
        for name, g in groups.items():
            color = COLORS[name]
            label = f"{name} ({g['count']}; near copies {g['share']:.1%})"
            d1 = np.maximum(_arr(g["d1"]), edges[0])
            # Share of the group per bin, not a density: on log-spaced bins a density inflates the
            # narrow bins of near copies by orders of magnitude and flattens everything else.
            ax.hist(d1, bins=edges, weights=np.full(d1.size, 1.0 / max(d1.size, 1)), histtype="step", lw=1.6,
                    color=color, label=label)  # fmt: skip
            ax2.hist(_arr(g["ratio"]), bins=r_edges, density=True, histtype="step", lw=1.6, color=color, label=name)
        ax.axvline(data["final_noise"], color="0.4", ls=":", lw=1, label=r"$\sigma(0)\sqrt{n}$ (final noise)")
        ax.set_xscale("log")
        ax.set_xlabel(r"$d_1$: distance to the nearest training image")
        ax.set_ylabel("share of the group per bin")
        ax.set_title("Distance to the training set")
        ax.grid(True)
        ax.legend(loc="upper left")
        ax2.axvline(
            data["threshold"], color="k", ls="--", lw=1, label=f"near copy: $d_1/d_2$ < {data['threshold']:.3g}"
        )
        ax2.set_xlabel(r"$d_1/d_2$ (nearest over second-nearest training image)")
        ax2.set_ylabel("density")
        ax2.set_title("Near-copy ratio")
        ax2.grid(True)
        ax2.legend(loc="upper left")
    return fig


def _tile(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [−1, 1] → an array ``imshow`` draws: grey ``(H, W)`` or RGB ``(H, W, 3)`` in [0, 1]."""
    img = np.clip((img + 1.0) / 2.0, 0.0, 1.0)
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def nearest_images_figure(data: Mapping[str, Any]) -> Figure:
    """Section 4: the network's first samples (top) above their nearest training images (bottom), with ``d1``.

    The samples are the first of the run, not selected. Grey images are drawn with white
    as the background (−1) and black ink (+1), as digits are usually shown.
    """
    shown = data["shown"]
    samples, nearest = np.asarray(shown["samples"]), np.asarray(shown["nearest"])
    k = samples.shape[0]
    with matplotlib.rc_context(_STYLE):
        width = max(1.0 * k, 6.0)
        fig = _figure(width, 2 * width / k + 0.9)
        axes = fig.subplots(2, k, squeeze=False, gridspec_kw={"wspace": 0.12, "hspace": 0.12})
        cmap = "gray_r" if samples.shape[1] == 1 else None
        for j in range(k):
            for row, img in ((0, samples[j]), (1, nearest[j])):
                a = axes[row, j]
                a.imshow(_tile(img), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
                a.set_xticks([])
                a.set_yticks([])
            axes[1, j].set_xlabel(f"{shown['d1'][j]:.2g}", fontsize=9)
        axes[0, 0].set_ylabel("sample", fontsize=9)
        axes[1, 0].set_ylabel("nearest", fontsize=9)
        fig.suptitle(r"Network samples over their nearest training images (below each: $d_1$)")
    return fig


# ---------------------------------------------------------------------------- 5
_METRICS = {
    "ode_error": r"ODE error: $\|x_0-x_0^{\rm ref}\|/\sqrt{n}$ (mean)",
    "fd": "Fréchet distance (digits classifier features)",
}


def model_sampler_figure(data: Mapping[str, Any]) -> Figure:
    """Section 5: the registry samplers at equal model evaluations (THEORY §5).

    One panel per metric of ``data["metrics"]``; each sampler in its registry colour and
    label, against the model evaluations it actually made. The ODE panel marks the
    reference's own error estimate (dashed: errors near it are not resolved); the
    Fréchet panel marks what digits drawn from the training set score at the same sample
    size (dotted).
    """
    metrics = list(data["metrics"])
    with matplotlib.rc_context(_STYLE):
        fig = _figure(4.6 * len(metrics), 3.9)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, m in zip(axes, metrics):
            ys = []
            for row in data["samplers"].values():
                info = SAMPLERS[row["name"]]
                y = _arr(row[m])
                ys.append(y)
                ax.plot(_arr(row["nfe_actual"]), y, marker="o", ms=4, color=info.color, label=info.label)
            ax.set_xscale("log")
            ax.set_xticks(data["nfe"])
            ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("model evaluations (NFE)")
            ax.set_ylabel(_METRICS.get(m, m))
            allv = np.concatenate(ys)
            if m == "ode_error":
                est = data["reference"]["error_estimate"]
                if est > 0:
                    ax.axhline(est, color="0.4", ls="--", lw=1, label="reference's own error (Richardson est.)")
                    allv = np.concatenate([allv, [est]])
            if m == "fd" and data.get("fd_data_same_size") is not None:
                ax.axhline(data["fd_data_same_size"], color="k", ls=":", lw=1,
                           label=f"training digits, {data['batch']} drawn")  # fmt: skip
                allv = np.concatenate([allv, [data["fd_data_same_size"]]])
            _plain_log(ax, "y", allv)
            ax.grid(True, which="major")
            ax.legend(loc="upper right")
        fig.suptitle(f"Samplers at equal cost: {data['schedule']}, {data['batch']} samples "
                     f"(ODE error on the first {data['ode_samples']})")  # fmt: skip
    return fig
