"""The explorers of ``analysis.explore``, driven from Python: a control moves, the figure's data follow.

Each test sets ``controls[name].value`` as a user's slider does and compares the figure's
traces with the library's own functions computed independently (``theorem1_bounds``,
``tm.ddim``, ``ode_reference``, ``projection_error``, ``eta_nu_curve``). The numbers are the
same float64 computations, so the comparisons are exact or at 1e-12 (a few roundings of
order-1 quantities). Denoiser calls are counted to check that an update recomputes only
what its control changed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import analysis
import toymanifold as tm
from analysis import explore
from analysis.figures import DENOISER_COLORS
from toymanifold.samplers import SAMPLERS

F64 = torch.float64


class CallCounter:
    """Counts calls of every toymanifold denoiser (``Denoiser.__call__``) while installed."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = tm.denoisers.Denoiser.__call__

        def counted(den, x, sigma):
            self.calls += 1
            return original(den, x, sigma)

        monkeypatch.setattr(tm.denoisers.Denoiser, "__call__", counted)

    def since(self, start: int) -> int:
        return self.calls - start


def joined(x, ys):
    """Runs ``ys`` (B, T) against ``x`` (T,) as one line with NaN gaps (what the figures draw)."""
    ys = np.atleast_2d(np.asarray(ys, dtype=float))
    pad = np.full((ys.shape[0], 1), np.nan)
    return np.hstack([np.broadcast_to(x, ys.shape), pad]).ravel(), np.hstack([ys, pad]).ravel()


def arr(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


# --------------------------------------------------------------------------- Theorem 1


@pytest.fixture
def t1(monkeypatch):
    counter = CallCounter(monkeypatch)
    ex = explore.theorem1("sphere", 16, batch=4, n_steps=10, sigma_max=10.0, sigma_min=0.01, progress=False)
    return ex, counter


def ddim_distances(K, den, sigmas, x):
    xs = tm.ddim(den, sigmas, x, return_trajectory=True).xs
    return K.distance(xs.reshape(-1, xs.shape[-1])).reshape(xs.shape[0], -1).T


def test_theorem1_envelope_follows_eta(t1):
    ex, _ = t1
    for eta in (0.2, 0.05, 0.3):
        ex.controls["eta"].value = eta
        sig = tm.schedules.loglinear(10.0, 0.01, 10)
        K, n = ex.manifold, ex.manifold.ambient_dim
        x = 10.0 * torch.randn(4, n, generator=torch.Generator().manual_seed(0), dtype=F64)
        r_N = K.distance(x) / (math.sqrt(n) * 10.0)
        b = analysis.theorem1_bounds(sig, eta, ex.controls["nu"].value, r_N)
        np.testing.assert_allclose(arr(ex.trace("envelope upper").y), b.upper[:, 0].numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(arr(ex.trace("envelope lower").y), b.lower[:, 0].numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(arr(ex.trace("band upper").y), (r_N.max() * b.U).numpy(), rtol=1e-12)
        np.testing.assert_allclose(arr(ex.trace("band lower").y), (r_N.min() * b.L).numpy(), rtol=1e-12)
        # The perturbed runs are DDIM with PerturbedProjectionDenoiser(η) from x_N = σ_max ξ.
        D = ddim_distances(K, tm.PerturbedProjectionDenoiser(K, eta, mode="random", seed=0), sig, x)
        gx, gy = joined(sig.numpy(), (D / D[:, :1]).numpy())
        np.testing.assert_allclose(arr(ex.trace("perturbed distance").y), gy, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(arr(ex.trace("perturbed distance").x), gx)
        _, ry = joined(sig.numpy(), (D / (math.sqrt(n) * sig)).numpy())
        np.testing.assert_allclose(arr(ex.trace("perturbed ratio").y), ry, rtol=1e-12, atol=0)


def test_theorem1_says_when_the_conditions_fail(t1):
    ex, _ = t1
    ex.set_values(eta=0.1, nu=5.0)
    assert bool(ex.bounds.conditions_hold.all())
    assert ex.status_text.startswith("Theorem 1's conditions hold")
    assert ex.figure.layout.title.text == ex.status_text
    assert ex.trace("envelope upper").fillcolor == analysis.figures.BAND_HOLDS
    ex.controls["eta"].value = 0.15  # L_0 = 0.85^10 ≈ 0.2: r_N L_0 ≥ 1/ν fails for r_N < 1
    assert not bool(ex.bounds.conditions_hold.all())
    assert "FAIL" in ex.status_text
    c = ex.bounds.conditions()
    for key, text in (("lower", "r_N L₀ ≥ 1/ν"), ("upper", "r_N U₀ ≤ ν"), ("initial", "1/ν ≤ r_N ≤ ν")):
        assert (f"{text} for {4 - c[key]} of 4 runs" in ex.status_text) == (c[key] < 4), key
    assert c["lower"] < 4
    assert "#b00020" in ex.status.value
    assert ex.trace("envelope upper").fillcolor == analysis.figures.BAND_FAILS
    nu_needed = float(ex.bounds.smallest_nu().max())
    assert f"they hold from ν = {nu_needed:.3g}" in ex.status_text
    ex.controls["nu"].value = math.ceil(nu_needed * 20) / 20  # the next slider step at or above it
    assert bool(ex.bounds.conditions_hold.all()) and "hold for all 4 runs" in ex.status_text


def test_theorem1_recomputes_only_what_changed(t1):
    ex, counter = t1
    N = ex.controls["n_steps"].value
    start = counter.calls
    ex.controls["nu"].value = 2.0  # bounds only
    assert counter.since(start) == 0 and ex.last_update.recomputed == ("bounds",)
    start = counter.calls
    ex.controls["eta"].value = 0.2  # the perturbed runs: one DDIM run of N steps
    assert counter.since(start) == N
    assert ex.last_update.recomputed == ("perturbed runs", "bounds")
    start = counter.calls
    ex.controls["mode"].value = "outward"
    assert counter.since(start) == N
    start = counter.calls
    ex.controls["eta"].value = 0.1  # (η = 0.1, outward) was never computed
    ex.controls["mode"].value = "random"  # (η = 0.1, random) was: cached
    assert counter.since(start) == N
    start = counter.calls
    ex.controls["n_steps"].value = 12  # a new schedule: perturbed and exact runs
    assert counter.since(start) == 2 * 12
    assert ex.model_calls == counter.calls  # the explorer's own count agrees


def test_theorem1_invalid_setting_is_reported_not_raised(t1):
    ex, counter = t1
    ex.controls["sigma_max"].value = 0.1
    before = list(ex.trace("envelope upper").y)
    start = counter.calls
    ex.controls["sigma_min"].value = 0.5
    assert ex.status_text.startswith("Invalid setting:") and "sigma_min" in ex.status_text
    assert ex.last_update.recomputed == ("nothing (invalid setting)",)
    assert counter.since(start) == 0 and list(ex.trace("envelope upper").y) == before


def test_theorem1_colours_snapshot_and_display(t1):
    ex, _ = t1
    assert ex.trace("perturbed distance").line.color == DENOISER_COLORS["perturbed"]
    assert ex.trace("exact distance").line.color == DENOISER_COLORS["projection"]
    fig = ex.snapshot()
    assert type(fig).__name__ == "Figure" and fig.axes
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert set(ex.controls) == {"eta", "mode", "n_steps", "sigma_max", "sigma_min", "nu"}


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="eta"):
        explore.theorem1("circle", 2, eta=1.5, progress=False)
    with pytest.raises(ValueError, match="sigma_min"):
        explore.theorem1("circle", 2, sigma_max=1.0, sigma_min=2.0, progress=False)
    with pytest.raises(ValueError, match="sampler"):
        explore.samplers("circle", sampler="euler-maruyama", progress=False)
    with pytest.raises(ValueError, match="schedule"):
        explore.samplers("circle", schedule="cosine", progress=False)
    with pytest.raises(TypeError, match="denoiser"):
        explore.projection_error("not a denoiser", tm.Circle(), progress=False)
    with pytest.raises(ValueError, match="sigma_range"):
        explore.projection_error(tm.ProjectionDenoiser(tm.Circle()), tm.Circle(), sigma_range=(5, 2), progress=False)


# --------------------------------------------------------------------------- samplers


@pytest.fixture(params=["circle", "sphere"], ids=["2-D chart", "3-D chart"])
def smp(request, monkeypatch):
    counter = CallCounter(monkeypatch)
    n = 2 if request.param == "circle" else 8
    ex = explore.samplers(request.param, ambient_dim=n, batch=6, show=3, refine=2, progress=False)
    return ex, counter


def path_coords(trace) -> np.ndarray:
    keys = "xyz" if trace.type == "scatter3d" else "xy"
    return np.stack([arr(trace[k]) for k in keys], axis=1)


def test_ge_with_gamma_one_is_ddim_bit_for_bit(smp):
    ex, _ = smp
    assert ex.controls["sampler"].value == "gradient_estimation"
    ex.controls["gamma"].value = 1.0
    for what in ("paths", "finals"):
        a, b = path_coords(ex.trace(f"selected {what}")), path_coords(ex.trace(f"ddim {what}"))
        np.testing.assert_array_equal(a, b)
    assert np.array_equal(ex.runs["selected"].coords, ex.runs["ddim"].coords)
    assert ex.runs["selected"].ode_error == ex.runs["ddim"].ode_error
    assert ex.trace("selected ode").y == ex.trace("ddim ode").y
    ex.controls["gamma"].value = 2.0
    assert not np.array_equal(ex.runs["selected"].coords, ex.runs["ddim"].coords)


def test_samplers_ode_error_against_an_independent_reference(smp):
    ex, _ = smp
    ex.set_values(gamma=1.5, nfe=8, schedule="karras")
    K = ex.data.manifold
    n = K.ambient_dim
    x = ex.sigma_max * torch.randn(6, n, generator=torch.Generator().manual_seed(0), dtype=F64)
    den = tm.ideal_denoiser(K)
    ref = analysis.ode_reference(den, tm.schedules.loglinear(ex.sigma_max, explore.SIGMA_FINAL, 50), x, refine=2)
    sig = tm.schedules.karras(ex.sigma_max, explore.SIGMA_FINAL, 8)
    traj = tm.gradient_estimation(den, sig, x, gamma=1.5, return_trajectory=True)
    expected = float(analysis.ode_error(traj.final, ref).mean())
    assert ex.trace("selected now").y == (expected,) and ex.trace("selected now").x == (8,)
    coords = ex.data.chart.to_coords(traj.xs[:, :3].reshape(-1, n)).reshape(9, 3, -1).numpy()
    np.testing.assert_array_equal(ex.runs["selected"].coords, coords)
    # The ODE-error curve: NFE 5, 8, 10, 20 (the grid and the current NFE).
    assert ex.trace("selected ode").x == (5, 8, 10, 20)


def test_samplers_recompute_only_what_changed(smp):
    ex, counter = smp
    start = counter.calls
    ex.controls["nfe"].value = 20  # on the curve's grid: both runs are cached
    assert counter.since(start) == 0
    ex.controls["gamma"].value = 1.25  # GE at NFE 5, 10, 20: 35 evaluations, DDIM kept
    assert counter.since(start) == 35
    start = counter.calls
    ex.controls["sampler"].value = "heun"  # Heun at 5, 10, 20 NFE: 2·(2 + 5 + 10) evaluations
    assert counter.since(start) == 34
    assert ex.controls["gamma"].disabled and ex.controls["mu"].disabled
    start = counter.calls
    ex.controls["sampler"].value = "ddim"  # DDIM is the baseline: nothing new
    assert counter.since(start) == 0
    assert ex.trace("selected paths").visible is False
    start = counter.calls
    ex.controls["schedule"].value = "loglinear"  # a new schedule: DDIM at 5, 10, 20
    assert counter.since(start) == 35
    start = counter.calls
    ex.set_values(sampler="gradient_estimation", schedule="paper")  # seen before
    assert counter.since(start) == 0 and ex.trace("selected paths").visible is True
    assert not ex.controls["gamma"].disabled


def test_samplers_stochastic_runs_are_reproducible_and_coloured(smp):
    ex, _ = smp
    ex.controls["mu"].value = 0.5
    first = ex.runs["selected"].coords.copy()
    ex.clear_cache()
    ex.refresh()
    np.testing.assert_array_equal(ex.runs["selected"].coords, first)
    assert ex.trace("selected paths").line.color == SAMPLERS["gradient_estimation"].color
    assert ex.trace("ddim paths").line.color == SAMPLERS["ddim"].color
    assert ex.trace("ddim paths").name == SAMPLERS["ddim"].label
    assert (ex.trace("K").type == "scatter3d") == (len(ex.data.chart.names) == 3)
    assert type(ex.snapshot()).__name__ == "Figure"


# --------------------------------------------------------------------------- projection error


@pytest.fixture
def pe(monkeypatch):
    counter = CallCounter(monkeypatch)
    K = tm.Circle()
    sigmas = torch.logspace(-2, 0, 8, dtype=F64)
    ex = explore.projection_error(
        tm.ideal_denoiser(K), K, sigmas=sigmas, num_samples=64, sigma_range=(2, 5), seed=3, progress=False
    )
    return ex, counter, K, sigmas


def independent_pairs(K, sigmas, levels, seed):
    """The pairs of the given levels, each measured by analysis.projection_error with its documented seed."""
    parts = [
        analysis.projection_error(tm.ideal_denoiser(K), K, [float(sigmas[k])], 64, generator=1_000_003 * seed + k)
        for k in levels
    ]
    return {f: torch.cat([getattr(p, f) for p in parts]) for f in ("sigma", "dist", "err", "r", "eta")}


def test_eta_hat_follows_the_sigma_range_and_nu(pe):
    ex, _, K, sigmas = pe
    for rng, nu in (((1, 6), 2.0), ((3, 4), 1.3), ((0, 7), 5.0)):
        ex.set_values(sigma_range=rng, nu=nu)
        pairs = independent_pairs(K, sigmas, range(rng[0], rng[1] + 1), seed=3)
        for f, v in pairs.items():
            assert torch.equal(getattr(ex.errors, f), v), f
        expected = analysis.eta_nu_curve(ex.errors, ex.nus)
        np.testing.assert_array_equal(arr(ex.trace("eta_hat").y), expected.eta_hat.numpy())
        np.testing.assert_array_equal(arr(ex.trace("eta_hat").x), ex.nus.numpy() - 1.0)
        now = analysis.eta_nu_curve(ex.errors, [nu])
        assert ex.trace("eta_hat now").y == (float(now.eta_hat[0]),)
        # The histogram holds exactly the ν-admissible pairs, one column per level.
        counts = np.nan_to_num(arr(ex.trace("histogram").z))
        assert counts.sum() == int(now.count[0]) and counts.shape[1] == rng[1] - rng[0] + 1
        hist = ex.trace("histogram")
        assert arr(hist.z).shape == (len(hist.y) - 1, len(hist.x) - 1)


def test_projection_error_recomputes_only_new_levels(pe):
    ex, counter, _, _ = pe
    start = counter.calls
    ex.controls["nu"].value = 1.5
    assert counter.since(start) == 0
    ex.controls["sigma_range"].value = (1, 6)  # levels 1 and 6 are new: one denoiser call each
    assert counter.since(start) == 2
    ex.controls["sigma_range"].value = (3, 4)  # inside what was measured
    assert counter.since(start) == 2
    assert ex.trace("eta_hat").line.color == DENOISER_COLORS["ideal"]
    assert type(ex.snapshot()).__name__ == "Figure"


def test_explorers_accept_any_manifold_with_a_chart():
    K = tm.Embedded(tm.Torus(1.0, 0.4), 6, seed=1)
    ex = explore.samplers(K, tm.ProjectionDenoiser(K), batch=4, show=2, refine=1, progress=False)
    assert ex.view["coords"] == ["PC 1", "PC 2", "PC 3"] and ex.trace("K").type == "scatter3d"
    assert ex.denoiser_name == "projection"
    ex.controls["nfe"].value = 4
    assert ex.runs["ddim"].coords.shape == (5, 2, 3)
