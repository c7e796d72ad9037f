"""``toymanifold report --model``: the model report on a tiny trained digits UNet, its measurements, bad input.

One module fixture trains a tiny ``UNet2DModel`` (300 steps) and one ``--quick`` report
runs on it (together about a minute of CPU time on a shared machine); every section's
numbers and figures are checked against what the theory derives. The measurement
functions are checked against brute force on small finite sets, the band of section 1
by a Hypothesis property test, and the diffusers-folder path against the checkpoint path.
"""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("diffusers")

import toymanifold as tm
from analysis import cli
from analysis._common import jsonable
from analysis.model_report import (
    ModelReportConfig,
    ModelReportContext,
    errors_along_trajectory,
    ideal_norm_band,
    load_model,
    make_model_figures,
    near_copies,
    nearest_training_images,
    sampler_trajectory,
    theorem1_tracking,
    training_set_neighbours,
)
from analysis.model_report.sections import denoiser_norm_section, projection_error_section, theorem1_section
from toymanifold.images.train import load_unet, train_unet
from toymanifold.samplers import SAMPLERS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(
    sample_size=8,
    in_channels=1,
    out_channels=1,
    layers_per_block=1,
    block_out_channels=(8, 16),
    down_block_types=("DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D"),
    norm_num_groups=4,
)
_F64 = torch.float64


def _strict_json(text: str):
    def no_constant(name):
        raise ValueError(f"non-finite constant {name} in results.json")

    return json.loads(text, parse_constant=no_constant)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("unet")
    train_unet(out, steps=300, batch_size=32, unet_config=TINY, progress=False, checkpoint_every=0, warmup=30)
    return out


@pytest.fixture(scope="module")
def report(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "report"
    argv = ["report", "--model", str(tiny_model), "--data", "digits", "--out", str(out), "--quick", "--no-progress"]
    assert cli.main(argv) == 0
    return out, _strict_json((out / "results.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the files


def test_every_file_written(report):
    out, r = report
    expected = {f"{stem}.png" for stem in make_model_figures(r)}
    assert {p.name for p in (out / "figures").iterdir()} == expected and len(expected) == 6
    for name in expected:
        data = (out / "figures" / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "results.json"]
    assert [p.name for p in out.parent.iterdir()] == ["report"]  # nothing temporary left beside it
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)) == 6
    assert "http://" not in page and "https://" not in page
    for heading in ("1. The denoiser", "2. How far", "3. DDIM against", "4. Generalisation", "5. Samplers"):
        assert heading in page
    assert r["meta"]["config"]["quick"] is True and r["model"]["kind"] == "toymanifold train-images checkpoint"


# --------------------------------------------------------------------------- section 1


def _derived_delta(sigmas: torch.Tensor, K: tm.FiniteSet) -> torch.Tensor:
    """Δ_t/√n of the band's derivation, from K directly (ideal_norm_band's docstring)."""
    c = K.points.mean(0)
    R = float((K.points - c).norm(dim=1).max())
    a = sigmas[:-1] / sigmas[0]
    return ((2 - a) * R + a * float(c.norm())) / sigmas[:-1] / math.sqrt(K.ambient_dim)


def test_section1_ideal_denoiser_in_its_band(report):
    """‖ε*‖/√n of the digits' ideal denoiser along DDIM from σ_N ξ: per run within ‖ξ‖/√n ± Δ_t/√n (exact),
    and the mean over B runs within E χ_n/√n ± (Δ_t + s_B)/√n, s_B from Gaussian concentration."""
    _, r = report
    dn = r["denoiser_norm"]
    n, B = dn["n"], dn["batch"]
    sig = torch.tensor([*dn["sigma"], r["runs"]["sigma_min"]], dtype=_F64)
    delta = _derived_delta(sig, tm.datasets.digits())
    np.testing.assert_allclose(dn["band"]["delta"], delta.numpy(), rtol=1e-12)
    # Per run: the derivation bounds |‖ε*_t‖ − ‖ξ‖| by Δ_t (float64 arithmetic: 1e-12 is generous).
    assert (np.array(dn["ideal_max_deviation"]) <= delta.numpy() * (1 + 1e-9) + 1e-12).all()
    # ‖ξ‖ is 1-Lipschitz in ξ, so the mean of B norms is (1/B)-sub-Gaussian around E χ_n:
    # P(|mean − E χ_n| > s) ≤ 2 exp(−B s²/2); s_B for a failure probability of 1e-6.
    s_B = math.sqrt(2 * math.log(2 / 1e-6) / B)
    mean = np.array(dn["ideal"]["mean"])
    chi_mean = dn["band"]["chi_mean"]
    assert (np.abs(mean - chi_mean) <= delta.numpy() + s_B / math.sqrt(n)).all()
    # At large σ (Δ_t/√n ≤ 0.05) this is a band of width ~±0.2 about 1: the paper's "close to 1".
    large = delta.numpy() <= 0.05
    assert large.any() and (np.abs(mean[large] - 1) < 0.25).all()
    assert dn["ideal_within_derived_bound"] and dn["ideal_mean_in_band"]


def test_section1_chi_band_numbers(report):
    _, r = report
    band = r["denoiser_norm"]["band"]
    n = band["n"]
    xi = torch.randn(20000, n, generator=torch.Generator().manual_seed(0), dtype=_F64).norm(dim=1) / math.sqrt(n)
    # Monte Carlo: sd(χ_n)/√n ≤ 1/√(2n); 6 standard errors of the mean and of a quantile (density ≥ 1 there).
    assert abs(float(xi.mean()) - band["chi_mean"]) < 6 / math.sqrt(2 * n * 20000)
    for q, v in zip(band["quantiles"], (band["chi_lo"], band["chi_hi"])):
        se = math.sqrt(q * (1 - q) / 20000) / 2.0  # density of χ_n/√n near its 10%/90% quantiles is > 2 for n = 64
        assert abs(float(torch.quantile(xi, q)) - v) < 6 * se
    net = r["denoiser_norm"]["network"]
    assert all(lo <= med <= hi for lo, med, hi in zip(net["lo"], net["median"], net["hi"]))


@settings(max_examples=40)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 6),
    steps=st.integers(1, 12),
    sigma_max=st.floats(0.3, 60.0),
    ratio=st.floats(2.0, 1e4),
    seed=st.integers(0, 2**20),
)
def test_ideal_norm_band_holds_along_ddim(m, n, steps, sigma_max, ratio, seed):
    """THEORY §2–§4: along DDIM with a finite set's ideal denoiser from σ_N ξ, |‖ε*_t‖ − ‖ξ‖| ≤ Δ_t for every run."""
    g = torch.Generator().manual_seed(seed)
    K = tm.FiniteSet(3 * torch.randn(m, n, generator=g, dtype=_F64))
    sig = tm.schedules.loglinear(sigma_max, sigma_max / ratio, steps)
    xi = torch.randn(16, n, generator=g, dtype=_F64)
    traj = tm.ddim(tm.ideal_denoiser(K), sig, float(sig[0]) * xi, return_trajectory=True)
    band = ideal_norm_band(K, sig)
    dev = (traj.eps.norm(dim=-1) - xi.norm(dim=1)).abs() / math.sqrt(n)
    bound = torch.tensor(band["delta"], dtype=_F64)[:, None]
    assert bool((dev <= bound * (1 + 1e-9) + 1e-12).all())


# --------------------------------------------------------------------------- section 2


def test_section2_histograms_and_eta_nu(report):
    _, r = report
    es, en = r["eta_sigma"], r["eta_nu"]
    N, B = r["runs"]["steps"], r["runs"]["batch"]
    assert es["pairs"] == N * B
    for name, h in es["against"].items():
        counts = np.array(h["counts"])
        assert counts.shape == (N, 40), name
        assert counts.sum() == N * B  # every pair counted once (η clipped into the outer rows)
    assert len(es["sigma_edges"]) == N + 1 and np.all(np.diff(es["sigma_edges"]) > 0)
    for table in (en["max"], en["q90"], en["count"]):
        for name, vals in table.items():
            v = np.array([np.nan if x is None else x for x in vals], dtype=float)
            ok = np.isfinite(v)
            if table is not en["q90"]:
                assert np.all(np.diff(v[ok]) >= 0), name  # the max over more pairs, and their number, grow with ν
    q90, mx = np.array(en["q90"]["projection"], dtype=float), np.array(en["max"]["projection"], dtype=float)
    assert np.all(q90[np.isfinite(mx)] <= mx[np.isfinite(mx)])
    nu = es["nu"]
    assert all(v >= 1 for v in nu["lo"]) and all(m <= x for m, x in zip(nu["median"], nu["max"]))


def _brute_force(traj, K, ideal):
    """η, ‖x̂0 − x̂0*‖/d and the ideal's own η by full distance matrices and full softmax weights."""
    N = traj.sigmas.shape[0] - 1
    xs = traj.xs.reshape(N + 1, traj.xs.shape[1], -1)
    x0h = traj.x0_hats.reshape(N, xs.shape[1], -1)
    out = {"eta": [], "vs": [], "own": [], "d_final": None}
    for t in range(N):
        x, s = xs[t], float(traj.sigmas[t])
        d = torch.cdist(x, K.points)
        dmin, i = d.min(dim=1)
        p = K.points[i]
        w = torch.softmax(-(d**2) / (2 * s * s), dim=1)
        star = w @ K.points
        out["eta"].append((x0h[t] - p).norm(dim=1) / dmin)
        out["vs"].append((x0h[t] - star).norm(dim=1) / dmin)
        out["own"].append((star - p).norm(dim=1) / dmin)
    out["d_final"] = torch.cdist(xs[-1], K.points).min(dim=1).values
    return {k: torch.stack(v) if isinstance(v, list) else v for k, v in out.items()}


def test_errors_along_trajectory_against_brute_force():
    g = torch.Generator().manual_seed(3)
    K = tm.FiniteSet(torch.randn(40, 5, generator=g, dtype=_F64))
    ideal = tm.ideal_denoiser(K)

    def network(x, s):  # not the ideal denoiser: a smooth, wrong one
        return 0.8 * ideal(x, s) + 0.1 * x / math.sqrt(1 + s * s)

    sig = tm.schedules.loglinear(20.0, 0.05, 12)
    traj = sampler_trajectory(network, sig, 20.0 * torch.randn(7, 5, generator=g, dtype=_F64), batch_size=3)
    e = errors_along_trajectory(traj, K, ideal)
    bf = _brute_force(traj, K, ideal)
    torch.testing.assert_close(e.network.eta, bf["eta"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e.versus_ideal.eta, bf["vs"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e.ideal.eta, bf["own"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(e.final_dist, bf["d_final"], rtol=1e-12, atol=1e-12)
    # triangle inequality: η ≤ ‖x̂0 − x̂0*‖/d + η*
    assert bool((e.network.eta <= e.versus_ideal.eta + e.ideal.eta + 1e-12).all())
    torch.testing.assert_close(e.eps_norm, traj.eps.norm(dim=-1) / math.sqrt(5), rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- section 3


def test_section3_numbers(report):
    _, r = report
    th = r["theorem1"]
    N = r["runs"]["steps"]
    cert = np.array(th["certified"], dtype=bool)
    k = int(cert.sum())
    assert cert[:k].all() and not cert[k:].any()  # a prefix of the schedule
    L = np.array([np.nan if v is None else v for v in th["L"]], dtype=float)
    U = np.array([np.nan if v is None else v for v in th["U"]], dtype=float)
    ok = np.isfinite(L)
    assert (L[ok] <= 1 + 1e-15).all() and (U[ok] >= 1 - 1e-15).all()
    assert np.all(np.diff(L[ok]) <= 1e-15) and np.all(np.diff(U[ok]) >= -1e-15)
    assert th["inside_where_certified"]
    eta = np.array([np.nan if v is None else v for v in th["eta_hat"]], dtype=float)
    assert np.all(np.diff(eta[np.isfinite(eta)]) >= 0)  # the maximum over more pairs
    assert 0 <= th["leave_admissible"]["above_fraction"] <= th["leave_admissible"]["fraction"] <= 1
    assert th["r_final"]["ideal_median"] > 0 and len(th["runs_shown"][0]) == N + 1
    # Corollary 3: |dist_K(σ_N ξ) − σ_N ‖ξ‖| ≤ max‖k‖, so r_N lies within max‖k‖/(σ_N √n) of ‖ξ‖/√n,
    # whose median over 16 runs lies in the χ_n/√n 10–90% band except with probability < 1e-3.
    K = tm.datasets.digits()
    slack = float(K.points.norm(dim=1).max()) / (r["runs"]["sigma_max"] * 8)
    band = r["denoiser_norm"]["band"]
    assert band["chi_lo"] - slack <= th["r_N"]["median"][0] <= band["chi_hi"] + slack


def test_theorem1_tracking_of_exact_and_perturbed_projection():
    g = torch.Generator().manual_seed(5)
    K = tm.FiniteSet(torch.randn(30, 8, generator=g, dtype=_F64))
    sig = tm.schedules.loglinear(30.0, 0.01, 25)
    x = 30.0 * torch.randn(6, 8, generator=g, dtype=_F64)
    exact = errors_along_trajectory(sampler_trajectory(tm.ProjectionDenoiser(K), sig, x), K)
    tr = theorem1_tracking(exact, sig, 2.0)
    # η = 0: the envelope is [1, 1], r_t is constant (THEORY §3) and every step is certified.
    assert float(torch.nan_to_num(tr.eta_hat, 0.0).max()) < 1e-12
    assert bool(tr.certified.all()) and tr.certified_steps == 25 and bool(tr.inside.all())
    torch.testing.assert_close(tr.r / tr.r_N, torch.ones_like(tr.r), rtol=1e-12, atol=0)
    pert = tm.PerturbedProjectionDenoiser(K, 0.1, mode="outward", seed=0)
    e = errors_along_trajectory(sampler_trajectory(pert, sig, x), K)
    tr = theorem1_tracking(e, sig, 2.0)
    assert tr.certified_steps > 0 and bool(tr.inside[tr.certified].all())
    assert float(tr.eta_hat[tr.certified_steps]) <= 0.1 + 1e-12


# --------------------------------------------------------------------------- section 4


def test_section4_numbers(report):
    _, r = report
    mem = r["memorisation"]
    g = mem["groups"]
    assert g["network"]["count"] == 64 and g["ideal denoiser"]["count"] == r["runs"]["batch"]
    # The ideal denoiser ends its runs on training images (Lemma 2), carrying only the final noise σ(0)ε:
    # every one of its samples is a near copy, at about σ(0)√n.
    assert g["ideal denoiser"]["share"] == 1.0
    assert 0.5 * mem["final_noise"] < g["ideal denoiser"]["d1_median"] < 2 * mem["final_noise"]
    # A training image's nearest other image is at least twice the reach away (the reach is half the
    # smallest pairwise distance).
    assert min(g["training set"]["d1"]) >= 2 * tm.datasets.digits().reach * (1 - 1e-12)
    for name, grp in g.items():
        ratio = np.array(grp["ratio"])
        assert ((ratio > 0) & (ratio <= 1)).all(), name
        assert grp["share"] == pytest.approx(float((ratio < mem["threshold"]).mean()), abs=0)
    shown = mem["shown"]
    assert np.array(shown["samples"]).shape == np.array(shown["nearest"]).shape == (8, 1, 8, 8)


def test_nearest_training_images_against_brute_force():
    g = torch.Generator().manual_seed(7)
    K = tm.FiniteSet(torch.randn(700, 6, generator=g, dtype=_F64))
    x = torch.randn(50, 6, generator=g, dtype=_F64)
    d, i = nearest_training_images(x, K, 3, batch_size=16)
    full = torch.cdist(x, K.points)
    dd, ii = full.topk(3, dim=1, largest=False)
    torch.testing.assert_close(d, dd, rtol=1e-12, atol=1e-13)
    assert torch.equal(i, ii)
    # leave-one-out within K
    loo = training_set_neighbours(K)
    self_d = torch.cdist(K.points, K.points).fill_diagonal_(math.inf)
    dd, _ = self_d.topk(2, dim=1, largest=False)
    torch.testing.assert_close(loo.d1, dd[:, 0], rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(loo.ratio, dd[:, 0] / dd[:, 1], rtol=1e-12, atol=1e-13)
    # near copies: points next to training points are copies, far ones are not
    near = near_copies(K.points[:5] + 1e-3, K)
    far = near_copies(torch.full((3, 6), 100.0, dtype=_F64), K)
    assert near.share == 1.0 and far.share == 0.0


# --------------------------------------------------------------------------- section 5


def test_section5_numbers(report):
    _, r = report
    s = r["samplers"]
    deterministic = [info for info in SAMPLERS.values() if not info.stochastic]
    assert list(s["samplers"]) == [info.label for info in deterministic]
    for info in deterministic:
        row = s["samplers"][info.label]
        assert row["name"] == info.name and row["color"] == info.color
        assert row["nfe_actual"] == [info.nfe(st_, False) for st_ in row["steps"]]
        assert all(v <= b for v, b in zip(row["nfe_actual"], s["nfe"]))
        ode = row["ode_error"]
        assert all(a > b for a, b in itertools.pairwise(ode)), (info.label, ode)  # convergence: the error falls
        assert all(math.isfinite(v) and v > 0 for v in row["fd"])
    # The reference spans the samplers' σ range, and its own error (Richardson estimate) is below every
    # measured error, so the falls above are the samplers' own.
    assert s["reference"]["sigma_range"] == [r["runs"]["sigma_min"], r["runs"]["sigma_max"]]
    assert s["reference"]["error_estimate"] < 0.5 * min(min(row["ode_error"]) for row in s["samplers"].values())
    assert s["fd_data_same_size"] > 0 and s["metrics"] == ["ode_error", "fd"]


def test_figures_use_registry_colours_and_readable_text(report):
    from matplotlib.text import Text

    from analysis.model_figures import COLORS

    _, r = report
    figs = make_model_figures(r)
    lines = {ln.get_label(): ln.get_color() for ax in figs["model_fig5_samplers"].axes for ln in ax.get_lines()}
    for info in SAMPLERS.values():
        if not info.stochastic:
            assert lines[info.label] == info.color
    net = {ln.get_color() for ln in figs["model_fig3_theorem1"].axes[0].get_lines() if "network" in ln.get_label()}
    assert net == {COLORS["network"]}
    for stem, fig in figs.items():
        fig.canvas.draw()
        for t in fig.findobj(Text):
            if t.get_text().strip() and t.get_visible():
                assert t.get_fontsize() >= 9, (stem, t.get_text(), t.get_fontsize())
        for ax in fig.axes:  # no tick label like 3.36725×10⁻¹: at most 3 significant digits per number
            for lab in ax.get_yticklabels() + ax.get_xticklabels():
                for number in re.findall(r"\d+(?:\.\d+)?", lab.get_text()):
                    significant = number.replace(".", "").strip("0")
                    assert len(significant) <= 3, (stem, lab.get_text())


# --------------------------------------------------------------------------- diffusers folders


@pytest.mark.parametrize("layout", ["pipeline", "flat"])
def test_diffusers_folder_gives_the_same_numbers(report, tiny_model, tmp_path, layout):
    from diffusers import DDPMPipeline, DDPMScheduler

    unet, sched_cfg = load_unet(tiny_model)
    scheduler = DDPMScheduler.from_config(sched_cfg)
    folder = tmp_path / "saved"
    if layout == "pipeline":
        DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)
    else:
        unet.save_pretrained(folder)
        scheduler.save_pretrained(folder)
    assert load_model(folder).kind == "diffusers folder"
    ctx = ModelReportContext.build(ModelReportConfig(model=str(folder), data="digits", quick=True, progress=False))
    torch.set_num_threads(1)
    _, r = report
    got = jsonable(denoiser_norm_section(ctx) | projection_error_section(ctx) | theorem1_section(ctx))
    for key in ("denoiser_norm", "eta_sigma", "eta_nu", "theorem1"):
        assert got[key] == r[key], key  # the same weights and seeds: the same numbers


# --------------------------------------------------------------------------- bad input


def _fails(capsys, argv, fragment: str):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(r"toymanifold( report)?: error: ", err), err
    assert fragment in err, err
    return err


def _fake_cifar(root, per_batch=4):
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), b"labels": [0] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch))
    return root


def test_bad_input_is_one_line_and_writes_nothing(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["report", "--out", str(out), "--quick", "--no-progress"]
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, [*base, "--model", str(empty), "--data", "digits"], "is not a model")
    _fails(capsys, [*base, "--model", str(tmp_path / "missing"), "--data", "digits"], "is not a folder")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("{not json")
    (junk / "scheduler_config.json").write_text("{}")
    _fails(capsys, [*base, "--model", str(junk), "--data", "digits"], "cannot load a model")
    _fails(capsys, [*base, "--model", str(tiny_model)], "--model needs --data")
    _fails(capsys, [*base, "--model", str(tiny_model), "--data", "cifar10"], "--data-root")
    _fails(
        capsys, [*base, "--model", str(tiny_model), "--data", "cifar10", "--data-root", str(tmp_path)], "not found in"
    )
    cifar = _fake_cifar(tmp_path / "cifar")
    _fails(
        capsys,
        [*base, "--model", str(tiny_model), "--data", "cifar10", "--data-root", str(cifar)],
        "does not fit --data cifar10",
    )
    _fails(capsys, [*base, "--model", str(tiny_model), "--data", "digits", "--steps", "5"], "--steps")
    _fails(capsys, [*base, "--model", str(tiny_model), "--data", "digits", "--manifold", "circle"], "not allowed")
    _fails(capsys, [*base, "--data", "digits"], "--data is an option of the model report")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar", "empty", "junk"]


def test_refuses_pickled_weights_wrong_sizes_and_flow_models(tiny_model, tmp_path, capsys):
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler, UNet2DModel

    unet, sched_cfg = load_unet(tiny_model)
    pickled = tmp_path / "pickled"
    unet.save_pretrained(pickled, safe_serialization=False)  # diffusion_pytorch_model.bin only
    DDPMScheduler.from_config(sched_cfg).save_pretrained(pickled)
    base = ["report", "--out", str(tmp_path / "out"), "--quick", "--no-progress", "--data", "digits"]
    _fails(capsys, [*base, "--model", str(pickled)], "cannot load a model")
    wrong_size = tmp_path / "wrong_size"  # one channel as the digits, but 16×16 images instead of 8×8
    UNet2DModel(**{**TINY, "sample_size": 16}).save_pretrained(wrong_size)
    DDPMScheduler.from_config(sched_cfg).save_pretrained(wrong_size)
    _fails(capsys, [*base, "--model", str(wrong_size)], "does not fit --data digits")
    # A flow-matching scheduler has no ᾱ_t table: the report's σ range and timesteps are undefined.
    flow = tmp_path / "flow"
    unet.save_pretrained(flow)
    FlowMatchEulerDiscreteScheduler().save_pretrained(flow)
    _fails(capsys, [*base, "--model", str(flow)], "cannot use the model")


def test_x0_and_v_prediction_models_are_measured_through_their_sigma_space_epsilon(tiny_model, tmp_path):
    """THEORY §7: an x0- or v-prediction network is the same σ-space denoiser after a change of
    variables, so the report takes it (and never reads its output as ε)."""
    from diffusers import DDPMScheduler

    from toymanifold.images import DiscreteTimeModel, from_diffusers

    unet, sched_cfg = load_unet(tiny_model)
    for prediction in ("sample", "v_prediction"):
        folder = tmp_path / prediction
        unet.save_pretrained(folder)
        DDPMScheduler.from_config(sched_cfg, prediction_type=prediction).save_pretrained(folder)
        loaded = load_model(folder)
        den = from_diffusers(loaded.unet, loaded.scheduler_config, data_shape=(1, 8, 8))
        assert isinstance(den, DiscreteTimeModel) and den.prediction == prediction
    assert not (tmp_path / "out").exists()


def test_cifar10_path_end_to_end(tmp_path, monkeypatch):
    """CIFAR-10 (a fake local copy of its python batches) with an untrained 32×32 RGB UNet: every section runs,
    the Fréchet distance is reported as unavailable, and the report is written (RGB image grid included)."""
    import dataclasses

    from diffusers import DDPMScheduler, UNet2DModel

    from analysis.model_report import run_model_report, write_model_report
    from analysis.report import write_report_atomically

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    folder = tmp_path / "cifar_unet"
    unet.save_pretrained(folder)
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder)
    cfg = ModelReportConfig(
        model=str(folder), data="cifar10", data_root=str(_fake_cifar(tmp_path / "data")), quick=True, progress=False
    )
    ctx = ModelReportContext.build(cfg)
    assert len(ctx.K) == 20 and ctx.n == 3072
    ctx.sizes = dataclasses.replace(
        ctx.sizes, traj_batch=4, traj_steps=6, traj_shown=2, gen_samples=6, nn_reference=10, cmp_samples=4,
        ode_samples=2, batch=8, shown=3,
    )  # fmt: skip
    import analysis.model_report.sections as sections

    monkeypatch.setattr(sections, "NFES", (4, 6))  # a smoke run: two budgets, a short reference
    monkeypatch.setattr(sections, "REF_STEPS", 6)
    r = jsonable(run_model_report(cfg, ctx))
    assert r["samplers"]["metrics"] == ["ode_error"] and "fd_unavailable" in r["samplers"]
    assert r["memorisation"]["groups"]["training set"]["count"] == 10
    assert np.array(r["memorisation"]["shown"]["samples"]).shape == (3, 3, 32, 32)
    out = write_report_atomically(r, tmp_path / "report", writer=write_model_report)
    assert "no offline feature network" in out.read_text(encoding="utf-8")
