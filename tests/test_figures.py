"""analysis.figures: every figure function builds a labelled figure from small synthetic results.

The inputs are hand-made sections shaped like ``results.json``; nothing is
sampled or trained, which is the point of the figure layer: plotting never re-runs an
experiment.
"""

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

import toymanifold as tm
from analysis import figures as F

SIG = np.geomspace(10.0, 0.01, 8)


def _labelled(fig: Figure) -> None:
    """Every data axis of ``fig`` has an x and a y label (colourbars excepted)."""
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert axes, "figure has no axes"
    for ax in axes:
        if ax.get_shared_x_axes().get_siblings(ax) and not ax.get_xlabel():
            # A twin axis (twinx) shares x with its host, which carries the x label.
            host = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax and a.get_xlabel()]
            assert host, f"axis {ax} has no x label"
        else:
            assert ax.get_xlabel(), f"axis {ax} has no x label"
        assert ax.get_ylabel(), f"axis {ax} has no y label"


def _band(values):
    v = np.asarray(values, dtype=float)
    return {"sigma": SIG.tolist(), "mean": v.tolist(), "lo": (0.9 * v).tolist(), "hi": (1.1 * v).tolist()}


def test_agg_backend_and_no_show(monkeypatch):
    import matplotlib.pyplot as plt

    def boom(*a, **k):  # the library must never call plt.show()
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", boom)
    fig = F.denoiser_norm_figure({"n": 64, "denoisers": {"ideal": _band(np.ones(8))}})
    assert isinstance(fig, Figure)
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"


def test_denoiser_norm_figure():
    fig = F.denoiser_norm_figure(
        {
            "n": 64,
            "quantiles": [0.1, 0.9],
            "denoisers": {"ideal": _band(np.ones(8)), "MLP": _band(np.linspace(1, 1.1, 8))},
        }
    )
    _labelled(fig)
    ax, ax2 = fig.axes[:2]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ideal (mean)" in labels and "MLP (mean)" in labels
    # Bottom panel: mean / (Eχ_n/√n) − 1 in per cent, where 1 % differences are visible.
    mlp = next(ln for ln in ax2.get_lines() if ln.get_label() == "MLP")
    chi = F.chi_mean(64) / 8.0
    np.testing.assert_allclose(mlp.get_ydata(), 100 * (np.linspace(1, 1.1, 8) / chi - 1), rtol=1e-12)


def test_denoiser_error_figure_tangential_line():
    n, d = 64, 2
    fig = F.denoiser_error_figure(
        {
            "n": n,
            "d": d,
            "quantiles": [0.1, 0.9],
            "denoisers": {"projection": _band(np.geomspace(0.16, 0.01, 8)), "MLP": _band(np.geomspace(0.2, 0.01, 8))},
        }
    )
    _labelled(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # 0.2 → 0.01 spans more than a decade
    # E χ_2 = √(π/2): the dotted line sits at √(π/2)/√64.
    line = next(ln for ln in ax.get_lines() if ln.get_linestyle() == ":")
    assert line.get_ydata()[0] == pytest.approx(math.sqrt(math.pi / 2) / 8, rel=1e-12)


@pytest.mark.parametrize(
    "k, expected", [(1, math.sqrt(2 / math.pi)), (2, math.sqrt(math.pi / 2)), (3, 2 * math.sqrt(2 / math.pi))]
)
def test_chi_mean(k, expected):
    assert F.chi_mean(k) == pytest.approx(expected, rel=1e-14)


def test_eta_sigma_histogram_figure():
    se = np.geomspace(0.005, 20, 9)
    ee = np.geomspace(1e-4, 1, 6)
    counts = np.zeros((8, 5))
    counts[2, 3] = 5
    counts[5, 1] = 2
    data = {
        "denoiser": "ideal",
        "sampler": "DDIM, N = 8 steps",
        "sigma_edges": se.tolist(),
        "eta_edges": ee.tolist(),
        "counts": counts.tolist(),
        "eta_floor": 1e-4,
        "nu": {"sigma": SIG.tolist(), "median": [1.05] * 8, "max": [1.2] * 8},
    }
    fig = F.eta_sigma_histogram_figure(data)
    _labelled(fig)
    main = fig.axes[0]
    assert main.get_xscale() == "log" and main.get_yscale() == "log"
    assert "ideal" in main.get_title()


def test_schedules_figure_with_final_zero():
    data = {"n_steps": 3, "schedules": {"a": [10.0, 1.0, 0.1, 0.0], "b": [40.0, 4.0, 0.4, 0.01]}}
    fig = F.schedules_figure(data)
    _labelled(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("σ = 0" in t for t in texts)
    # The zero is drawn (at the bottom), not dropped: every line has all 4 points, all positive.
    for ln in ax.get_lines():
        assert len(ln.get_ydata()) == 4 and (np.asarray(ln.get_ydata()) > 0).all()


def test_sampler_quality_figure():
    nfe = [5, 10, 20, 50]
    samplers = {
        "nfe": nfe,
        "metrics": ["ode_error", "mean_dist", "mmd"],
        "denoiser": "MLP",
        "schedule": "paper",
        "dist_floor": 0.079,
        "samplers": {
            name: {
                "ode_error": list(np.geomspace(1, 1e-3, 4) * (i + 1)),
                "mean_dist": [0.2, 0.12, 0.1, 0.09],
                "mmd": [0.01, 0.002, -0.0005, 0.0001],
            }
            for i, name in enumerate(["DDIM", "GE (γ=2)", "Heun"])
        },
    }
    gamma = {
        "nfe": 10,
        "gammas": [1.0, 1.5, 2.0, 2.5],
        "metrics": {"ode_error": [0.1, 0.05, 0.03, 0.08], "mean_dist": [0.1, 0.1, 0.09, 0.1]},
    }
    fig = F.sampler_quality_figure(samplers, gamma)
    _labelled(fig)
    axes = fig.axes
    assert axes[0].get_yscale() == "log"  # ODE errors span 3 decades
    assert axes[2].get_yscale() == "linear"  # MMD² estimate can be negative
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # one sampler legend for all panels
    assert legend == ["DDIM", "GE (γ=2)", "Heun"]
    assert "gamma" in axes[3].get_xlabel()
    # The γ-sweep optimum is marked where the ODE error is smallest.
    star = next(ln for ln in axes[3].get_lines() if ln.get_marker() == "*")
    assert star.get_xdata()[0] == 2.0 and "γ = 2" in star.get_label()


@pytest.mark.parametrize("k", [2, 3])
def test_trajectories_figure(k):
    rng = np.random.default_rng(0)
    traj = rng.normal(size=(5, 3, k))
    data = {
        "coords": [f"y{i}" for i in range(k)],
        "manifold": rng.normal(size=(50, k)).tolist(),
        "curve": k == 2,
        "trajectories": {"DDIM": traj.tolist(), "GE (γ=2)": (traj * 0.9).tolist()},
        "denoiser": "MLP",
        "note": "synthetic",
    }
    fig = F.trajectories_figure(data)
    _labelled(fig)
    if k == 3:
        assert fig.axes[0].get_zlabel() == "y2"


def test_trajectories_interactive_figure_2d_and_3d():
    import plotly.graph_objects as go

    rng = np.random.default_rng(2)
    for k in (2, 3):
        data = {
            "coords": ["y₁ = (Qᵀx)₁", "y₂", "y₃"][:k],
            "manifold": rng.normal(size=(20, k)).tolist(),
            "curve": k == 2,
            "trajectories": {"DDIM": rng.normal(size=(4, 2, k)).tolist()},
            "denoiser": "MLP",
            "limits": [[-1, 1]] * k,
        }
        fig = F.trajectories_interactive_figure(data)
        assert isinstance(fig, go.Figure)
        title = fig.layout.scene.xaxis.title.text if k == 3 else fig.layout.xaxis.title.text
        assert title == "y₁ = (Qᵀx)₁" and "$" not in title  # plain Unicode: 3-D scenes do not typeset LaTeX
        ddim = [t for t in fig.data if t.name == "DDIM"]
        assert ddim and all(t.line.color == tm.samplers.SAMPLERS["ddim"].color for t in ddim)
        # Points outside the box are cut (NaN), not drawn outside the axes.
        xs = np.concatenate([np.asarray(t.x, dtype=float) for t in ddim])
        assert np.nanmax(np.abs(xs)) <= 1.0


def test_trajectories_3d_figure_is_plotly():
    import plotly.graph_objects as go

    rng = np.random.default_rng(1)
    data = {
        "coords": ["a", "b", "c"],
        "manifold": rng.normal(size=(20, 3)).tolist(),
        "trajectories": {"DDIM": rng.normal(size=(4, 2, 3)).tolist()},
        "denoiser": "ideal",
        "limits": [[-2, 2]] * 3,
    }
    fig = F.trajectories_3d_figure(data)
    assert isinstance(fig, go.Figure)
    assert fig.layout.scene.xaxis.title.text == "a" and fig.layout.scene.zaxis.title.text == "c"
    names = {t.name for t in fig.data}
    assert {"K (samples)", "DDIM"} <= names
    with pytest.raises(ValueError, match="3 coordinates"):
        F.trajectories_3d_figure({**data, "coords": ["a", "b"]})


def test_envelope_figure_normalised_envelope():
    sig = np.geomspace(10, 0.1, 5)
    eta = 0.1
    rho = sig[:-1] / sig[1:]
    U = np.concatenate([[1.0], np.cumprod(1 + eta * (rho - 1))])
    L = np.concatenate([[1.0], np.cumprod(1 - eta * (rho - 1))])
    d0 = 3.0
    runs = {"outward": [(d0 * sig / sig[0] * U).tolist()], "exact": [(d0 * sig / sig[0]).tolist()]}
    fig = F.envelope_figure(
        {"eta": eta, "nu": 2.0, "sigmas": sig.tolist(), "L": L.tolist(), "U": U.tolist(), "runs": runs}
    )
    _labelled(fig)
    ax1, ax2 = fig.axes[:2]
    # Right panel: the outward run is r_t/r_N = U_t, drawn exactly on the upper envelope.
    out = next(ln for ln in ax2.get_lines() if ln.get_label() == "outward")
    np.testing.assert_allclose(out.get_ydata(), U, rtol=1e-12)
    assert ax1.get_yscale() == "log"


def test_eta_nu_figure_zero_curve_at_bottom():
    nus = [1.1, 1.5, 2.0, 5.0]
    data = {
        "nus": nus,
        "statistic": "max",
        "denoisers": {
            "projection": [0.0, 1e-17, 0.0, 0.0],
            "ideal": [0.01, 0.05, 0.1, 0.2],
            "MLP": [0.3, 0.4, None, 0.5],
        },
    }
    fig = F.eta_nu_figure(data)
    _labelled(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # 0.01 … 0.5 plus the floor line span more than a decade
    bottom = ax.get_ylim()[0]
    assert bottom == pytest.approx(0.01 / 3)
    proj = next(ln for ln in ax.get_lines() if ln.get_label().startswith("projection"))
    assert "≈ 0" in proj.get_label()
    assert (np.asarray(proj.get_ydata()) >= bottom).all()


# --------------------------------------------------------------------------- what a referee checks


def _report_like_sections():
    """Every figure of the report on small, hand-made sections shaped like results.json."""
    sig = SIG.tolist()
    nfe = [5, 10, 20, 50]
    names = [info.label for info in tm.samplers.SAMPLERS.values()]
    rng = np.random.default_rng(3)
    traj3 = {n: rng.normal(size=(4, 3, 3)).tolist() for n in names[:3]}
    runs = {f"perturbed {m}": [list(np.geomspace(3, 0.01, 8))] for m in ("random", "outward", "inward")}
    runs["exact projection (η = 0)"] = [list(np.geomspace(3, 0.01, 8))]
    denoisers = {"projection": _band(np.ones(8)), "ideal": _band(np.ones(8)), "MLP": _band(1.01 * np.ones(8))}
    return {
        "fig1": F.denoiser_norm_figure({"n": 64, "quantiles": [0.1, 0.9], "denoisers": denoisers}),
        "fig2": F.denoiser_error_figure({"n": 64, "d": 2, "quantiles": [0.1, 0.9], "denoisers": denoisers}),
        "fig3": F.eta_sigma_histogram_figure(
            {
                "denoiser": "MLP",
                "sampler": "DDIM",
                "sigma_edges": np.geomspace(20, 0.005, 9).tolist(),
                "eta_edges": np.geomspace(1e-4, 1, 6).tolist(),
                "counts": rng.integers(0, 5, size=(8, 5)).tolist(),
                "nu": {"sigma": sig, "median": [1.05] * 8, "max": [1.3] * 8},
                "nu_range": [1.0, 2.0],
                "eta_floor": 1e-4,
            }
        ),
        "fig4": F.schedules_figure(
            {
                "n_steps": 3,
                "schedules": {"a": [10.0, 1.0, 0.1, 0.0], "suggested": [0.03, 0.02, 0.015, 0.01]},
                "certified": {"label": "suggested", "sigma_max": 0.03, "sigma_min": 0.01},
            }
        ),
        "fig5": F.sampler_quality_figure(
            {
                "nfe": nfe,
                "metrics": ["ode_error", "mean_dist", "mmd"],
                "denoiser": "MLP",
                "schedule": "paper construction, σ_max = 10",
                "dist_floor": 0.08,
                "mmd_floor": 0.002,
                "samplers": {
                    n: {
                        "ode_error": list(np.geomspace(1, 1e-3, 4) * (i + 1)),
                        "mean_dist": [0.2, 0.12, 0.1, 0.09],
                        "mmd": [0.5, 0.02, -0.001, 0.0001],
                    }
                    for i, n in enumerate(names)
                },
            },
            {"nfe": 10, "gammas": [1.0, 1.5, 2.0], "metrics": {"ode_error": [0.1, 0.02, 0.05], "mean_dist": [1, 2, 3]}},
        ),
        "fig6_2d": F.trajectories_figure(
            {
                "coords": ["y₁", "y₂"],
                "manifold": rng.normal(size=(30, 2)).tolist(),
                "curve": True,
                "trajectories": {n: rng.normal(size=(4, 3, 2)).tolist() for n in names[:3]},
                "denoiser": "MLP",
                "limits": [[-2, 2], [-2, 2]],
            }
        ),
        "fig6_3d": F.trajectories_figure(
            {
                "coords": ["y₁", "y₂", "y₃"],
                "manifold": rng.normal(size=(30, 3)).tolist(),
                "trajectories": traj3,
                "denoiser": "MLP",
                "limits": [[-2, 2]] * 3,
            }
        ),
        "fig7": F.envelope_figure(
            {
                "eta": 0.1,
                "nu": 2.0,
                "sigmas": sig,
                "L": np.linspace(1, 0.5, 8).tolist(),
                "U": np.linspace(1, 2, 8).tolist(),
                "runs": runs,
            }
        ),
        "fig8": F.eta_nu_figure(
            {"nus": [1.1, 2.0], "statistic": "max", "denoisers": {k: [0.1, 0.2] for k in ("ideal", "MLP", "x")}}
        ),
    }


FIGURES = _report_like_sections()


def _labelled_lines(ax):
    return [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_curve_has_its_registry_colour_and_no_two_share_one(name):
    from matplotlib.colors import to_hex

    fig = FIGURES[name]
    for ax in fig.axes:
        lines = _labelled_lines(ax)
        colours = {}
        for ln in lines:
            label, colour = ln.get_label(), to_hex(ln.get_color())
            expected = F.color_of(label)
            if expected is not None:
                assert colour == expected, (name, label, colour, expected)
            elif label.split(" ")[0] in ("perturbed", "exact"):
                pass  # the envelope's runs: the denoiser's colour, told apart by line style
            else:
                # References and other curves never borrow a sampler's colour (black/grey references
                # may share a denoiser's black, told apart by style: checked below).
                assert colour not in {i.color for i in tm.samplers.SAMPLERS.values()}, (name, label, colour)
            colours.setdefault((colour, ln.get_linestyle(), ln.get_marker()), []).append(label)
        shared = {k: v for k, v in colours.items() if len(v) > 1}
        assert not shared, (name, shared)  # labelled lines differ in colour, or in line style/marker


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_text_below_the_minimum_at_the_report_width(name):
    """At the report's width (PNG scaled down to the text column), no text is smaller than MIN_FONT_PT."""
    fig = FIGURES[name]
    renderer = fig.canvas.get_renderer()
    width_px = fig.get_tightbbox(renderer).width * F.REPORT_DPI
    scale = min(1.0, F.REPORT_WIDTH_PX / width_px)
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))]
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_visible() and t.get_text().strip()
             and t.get_fontsize() * scale < F.MIN_FONT_PT - 1e-9]  # fmt: skip
    assert not small, (name, scale, small[:5])


def test_sampler_colours_come_from_the_registry():
    fig = FIGURES["fig5"]
    from matplotlib.colors import to_hex

    for info in tm.samplers.SAMPLERS.values():
        line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == info.label)
        assert to_hex(line.get_color()) == info.color
