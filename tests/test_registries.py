"""One table per concept: the data sets and the samplers, and the one-way data flow (docs/design.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import toymanifold as tm
from analysis import cli
from toymanifold.datasets import DATASETS
from toymanifold.samplers import SAMPLERS

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- data sets


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_data_set_builds_and_checks_its_dimension(name):
    ds = DATASETS[name]
    n = ds.fixed_ambient_dim or ds.min_ambient_dim
    data = ds.build(n, seed=1)
    K = data.manifold
    assert K.ambient_dim == n and data.name == name
    x = K.sample(5, generator=0)
    coords = data.chart.to_coords(x)
    assert coords.shape == (5, len(data.chart.names)) and coords.shape[1] in (2, 3)
    assert data.chart.background.shape[1] == coords.shape[1]
    with pytest.raises(ValueError, match="ambient_dim"):
        ds.build(n - 1)
    if ds.fixed_ambient_dim is not None:
        with pytest.raises(ValueError, match="ambient_dim"):
            ds.build(n + 1)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_data_set_has_an_interactive_view(name):
    """The report's interactive view works for every data set: 2-D for curves and point clouds, 3-D for surfaces."""
    from analysis.figures import trajectories_interactive_figure

    data = DATASETS[name].build(seed=0)
    chart = data.chart
    traj = torch.stack([chart.to_coords(data.manifold.sample(3, generator=i)) for i in range(4)])
    fig = trajectories_interactive_figure(
        {"coords": list(chart.names), "manifold": chart.background.tolist(), "curve": chart.curve,
         "trajectories": {"DDIM": traj.tolist()}, "denoiser": "MLP"}
    )  # fmt: skip
    k = len(chart.names)
    assert {t.type for t in fig.data} == {"scatter3d" if k == 3 else "scatter"}
    titles = [fig.layout.scene.xaxis.title.text] if k == 3 else [fig.layout.xaxis.title.text]
    assert titles[0] == chart.names[0] and "$" not in titles[0]


def test_data_set_aliases_and_unknown_names():
    assert tm.datasets.resolve_name(" Swiss-Roll ") == "swissroll"
    with pytest.raises(ValueError, match="unknown data set"):
        tm.datasets.resolve_name("klein-bottle")


def test_cli_help_lists_every_data_set(capsys):
    assert cli.main(["report", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, ds in DATASETS.items():
        assert f"{name}: {' '.join(ds.summary.split())}" in text


# --------------------------------------------------------------------------- samplers


class _Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, x, sigma):
        self.calls += 1
        return x / (1.0 + sigma * sigma)  # ε of N(0, I) data (THEORY §4, subspace with d = n)


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("final_zero", [False, True])
def test_registry_cost_is_the_number_of_model_calls(name, final_zero):
    info = SAMPLERS[name]
    sig = tm.schedules.loglinear(10.0, 0.1, 7, final_zero=final_zero)
    den = _Counting()
    kw = {"generator": 0} if info.stochastic else {}
    out = info.run(den, sig, torch.randn(3, 2, dtype=torch.float64), **kw)
    assert out.shape == (3, 2) and bool(torch.isfinite(out).all())
    assert den.calls == info.nfe(7, final_zero) == tm.nfe(name, sig) == tm.nfe(info.run, sig)
    assert info.steps_for_nfe(info.nfe(7)) == 7


def test_registry_entries_are_distinct():
    labels = [s.label for s in SAMPLERS.values()]
    colors = [s.color for s in SAMPLERS.values()]
    assert len(set(labels)) == len(labels) and len(set(colors)) == len(colors)
    for name, info in SAMPLERS.items():
        assert info.name == name and tm.samplers.sampler_info(info.run) is info
    assert tm.samplers.sampler_info("ge") is SAMPLERS["gradient_estimation"]
    with pytest.raises(ValueError, match="sampler must be one of"):
        tm.samplers.sampler_info("euler_ancestral")


# --------------------------------------------------------------------------- data flow


def test_toymanifold_never_imports_analysis():
    pattern = re.compile(r"^\s*(import analysis|from analysis)", re.M)
    offenders = [str(p) for p in (ROOT / "toymanifold").rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []
    code = "import toymanifold, toymanifold.images, toymanifold.testing, sys; assert 'analysis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
