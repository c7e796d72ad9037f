"""projection_error, trajectory_error and eta_nu_curve (THEORY §2)."""

import json
import math

import numpy as np
import pytest
import torch

import analysis
import toymanifold as tm

EPS = float(np.finfo(np.float64).eps)


class Recording(tm.ProjectionDenoiser):
    """The exact projection, remembering every batch it was called with."""

    def __init__(self, manifold):
        super().__init__(manifold)
        self.calls = []

    def __call__(self, x, sigma):
        self.calls.append((x.clone(), sigma))
        return super().__call__(x, sigma)


class CountingCircle(tm.Circle):
    oracle_calls = 0

    def project_with_distance(self, x):
        CountingCircle.oracle_calls += 1
        return super().project_with_distance(x)


def test_projection_error_fields_match_the_definitions():
    K = CountingCircle(2.0)
    den = Recording(tm.Circle(2.0))
    CountingCircle.oracle_calls = 0
    m = analysis.projection_error(den, K, [0.1, 0.5, 2.0], 10, generator=5, chunk_size=4)
    # σ-major, num_samples per σ; chunks of ≤ 4 pairs: 3 calls per σ, one oracle call each.
    assert m.sigma.tolist() == [0.1] * 10 + [0.5] * 10 + [2.0] * 10
    assert len(den.calls) == 9 and CountingCircle.oracle_calls == 9
    assert [c[0].shape[0] for c in den.calls] == [4, 4, 2] * 3
    x = torch.cat([c[0] for c in den.calls])
    s = torch.tensor([c[1] for c in den.calls for _ in range(c[0].shape[0])], dtype=torch.float64)
    assert torch.equal(s, m.sigma)
    d = tm.Circle(2.0).distance(x)
    assert torch.equal(m.dist, d)
    assert torch.allclose(m.r, d / (math.sqrt(2) * s), rtol=2 * EPS, atol=0)
    # The exact projection: err is rounding only (a few ulps of d, see test_analysis_theory).
    assert bool((m.err <= 8 * EPS * d).all())
    assert m.ambient_dim == 2 and len(m) == 30
    json.dumps(m.to_dict(), allow_nan=False)


def test_projection_error_noise_model_and_reproducibility():
    # x = x0 + σ ε with x0 on K: on an affine line x − proj(x) = σ (I − P) ε exactly, so
    # dist²/σ² ~ χ²_{n−d} (the full KS test is in test_analysis_theory.py).
    K = tm.AffineSubspace.random(1, 3, seed=0)
    a = analysis.projection_error(tm.ProjectionDenoiser(K), K, 0.7, 2000, generator=3)
    b = analysis.projection_error(tm.ProjectionDenoiser(K), K, 0.7, 2000, generator=3)
    c = analysis.projection_error(tm.ProjectionDenoiser(K), K, 0.7, 2000, generator=4)
    assert torch.equal(a.dist, b.dist) and not torch.equal(a.dist, c.dist)
    # E dist² = σ² (n − d) = 0.49 · 2, Var(χ²_2) = 4: 5 standard errors.
    assert abs(float((a.dist**2).mean()) / 0.49 - 2.0) <= 5 * math.sqrt(4 / 2000)


def test_projection_error_validation():
    K = tm.Circle()
    den = tm.ProjectionDenoiser(K)
    with pytest.raises(ValueError, match="sigmas"):
        analysis.projection_error(den, K, [0.1, 0.0], 10)
    with pytest.raises(ValueError, match="sigmas"):
        analysis.projection_error(den, K, [[0.1]], 10)
    with pytest.raises(ValueError, match="sigmas"):
        analysis.projection_error(den, K, [], 10)
    with pytest.raises(ValueError, match="sigmas"):
        analysis.projection_error(den, K, [float("inf")], 10)
    with pytest.raises(ValueError, match="num_samples"):
        analysis.projection_error(den, K, 0.1, 0)
    with pytest.raises(TypeError, match="manifold"):
        analysis.projection_error(den, "circle", 0.1, 10)
    with pytest.raises(TypeError, match="denoiser"):
        analysis.projection_error(None, K, 0.1, 10)
    with pytest.raises(ValueError, match="chunk_size"):
        analysis.projection_error(den, K, 0.1, 10, chunk_size=0)


def test_trajectory_error_matches_projection_definitions():
    K = tm.Embedded(tm.Sphere(2), 12, seed=1)
    sig = tm.schedules.loglinear(5.0, 0.05, 8)
    g = torch.Generator().manual_seed(0)
    x = 5.0 * torch.randn(6, 12, generator=g, dtype=torch.float64)
    traj = tm.ddim(tm.PerturbedProjectionDenoiser(K, 0.3, mode="random", seed=2), sig, x, return_trajectory=True)
    te = analysis.trajectory_error(traj, K)
    assert te.r.shape == (8, 6) and te.eta.shape == (8, 6)
    assert torch.equal(te.sigma, sig[:-1, None].expand(8, 6))
    # The perturbed denoiser has η(x, σ) = 0.3 at every pair (rounding: a few ulps of ‖x‖/d).
    xn = traj.xs[:-1].norm(dim=-1)
    tol = 32 * EPS * (1 + (xn + 1) / te.dist)
    assert bool(((te.eta - 0.3).abs() <= tol).all())
    # Without x0_hats the same numbers come from eps (the Trajectory fields are redundant).
    t2 = tm.Trajectory(traj.xs, traj.eps, traj.eps_bar, None, traj.sigmas, traj.nfe)
    te2 = analysis.trajectory_error(t2, K)
    assert torch.allclose(te2.err, te.err, rtol=0, atol=float(tol.max() * te.dist.max()))
    assert te.flatten().r.shape == (48,)


def test_trajectory_error_exact_projection_keeps_r_constant():
    # THEORY §3: with η = 0, DDIM keeps r_t = dist/(√n σ_t) exactly constant.
    K = tm.Torus(2.0, 0.5)
    sig = tm.schedules.loglinear(0.2, 0.002, 15)
    g = torch.Generator().manual_seed(1)
    x = K.sample(5, g) + 0.2 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    te = analysis.trajectory_error(tm.ddim(tm.ProjectionDenoiser(K), sig, x, return_trajectory=True), K)
    # Each step rescales x − p by σ_{t−1}/σ_t up to a few ulps of ‖x‖ ≤ 3, against d ≥ 1e-3 · r.
    np.testing.assert_allclose(te.r.numpy(), te.r[:1].expand_as(te.r).numpy(), rtol=1e-10)


def test_eta_nu_curve_selection_max_and_quantile():
    r = torch.tensor([0.4, 0.9, 1.0, 1.1, 2.5, 0.0], dtype=torch.float64)
    eta = torch.tensor([0.9, 0.2, 0.1, 0.3, 0.7, float("nan")], dtype=torch.float64)
    e = analysis.ProjectionErrors(torch.ones(6, dtype=torch.float64), r, r * eta, r, eta, 1)
    c = analysis.eta_nu_curve(e, [1.0, 1.05, 1.2, 2.5, 3.0])
    assert c.count.tolist() == [1, 1, 3, 5, 5]
    np.testing.assert_array_equal(c.eta_hat.numpy(), [0.1, 0.1, 0.3, 0.9, 0.9])
    q = analysis.eta_nu_curve(e, [1.2], quantile=0.5)
    assert float(q.eta_hat[0]) == pytest.approx(0.2)
    narrow = analysis.eta_nu_curve(e, [1.0 + 1e-3])
    assert narrow.count.tolist() == [1]
    empty = analysis.eta_nu_curve(analysis.ProjectionErrors(*(torch.tensor([5.0]),) * 5, 1), [1.5])
    assert empty.count.tolist() == [0] and math.isnan(float(empty.eta_hat[0]))
    assert json.loads(json.dumps(empty.to_dict(), allow_nan=False))["eta_hat"] == [None]
    with pytest.raises(ValueError, match="nus"):
        analysis.eta_nu_curve(e, [0.5])
    with pytest.raises(ValueError, match="quantile"):
        analysis.eta_nu_curve(e, [2.0], quantile=1.5)
    with pytest.raises(TypeError, match="errors"):
        analysis.eta_nu_curve({"r": r}, [2.0])
